//! Conformance of the user lifecycle and app management contracts ([`crate::UserStore`] and
//! [`crate::ClientStore`] methods added with tenancy), on every backend.

use crate::conformance::{client, secret, tenant, user};
use crate::testing::TestDatabase;
use crate::{
    ApiResourceRecord, AssignmentRecord, AuditFilter, AuditRecord, AuthCodeRecord, ClientRecord,
    ClientSecretRecord, ConsentRecord, DeviceCodeRecord, GrantRecord, PendingGrantRecord,
    RefreshTokenRecord, ResourceGrantRecord, RoleAssignmentRecord, SessionRecord, StoreError,
    TenantAdminRecord, GRANT_APP_ACCESS,
};
use techpass_domain::client::AccessPolicy;
use techpass_domain::device::DeviceStatus;
use techpass_domain::gate::UserStatus;

crate::backend_tests!(
    "store::conformance_accounts",
    sign_in_keeps_exemption_and_app_signin,
    sign_in_refreshes_names_and_email_verification,
    transition_user_is_compare_and_set,
    termination_is_timed_and_cleared_by_other_moves,
    enable_user_moves_only_from_the_named_status,
    terminated_users_are_deleted_with_what_names_them,
    exemption_and_app_signin_are_recorded,
    lifecycle_pages_by_id_and_skips_exempt_users,
    user_search_is_case_insensitive_and_paged,
    update_client_round_trips_every_field,
    clients_of_tenant_by_name,
    client_secrets_respect_the_live_limit,
    concurrent_secret_adds_take_the_last_slot_once,
    client_secret_is_revoked_once,
    secrets_expiring_in_the_window,
    a_client_is_deleted_with_what_names_it,
);

async fn sign_in_keeps_exemption_and_app_signin(db: &TestDatabase) {
    let store = db.store().await;
    let mut first = user("u1");
    first.exempt = true;
    first.app_signin_at = Some(7);
    assert_eq!(
        store.upsert_user(&first).await.unwrap(),
        first,
        "written on creation"
    );
    assert!(store.set_user_exempt("u1", false).await.unwrap());
    store.record_app_signin("u1", 20).await.unwrap();
    // The next sign-in carries the defaults; what TechPass recorded stays.
    let mut again = user("u1");
    again.last_signin_at = 30;
    let stored = store.upsert_user(&again).await.unwrap();
    assert_eq!(
        (stored.exempt, stored.app_signin_at, stored.last_signin_at),
        (false, Some(20), 30)
    );
    assert!(store.set_user_exempt("u1", true).await.unwrap());
    let stored = store.upsert_user(&again).await.unwrap();
    assert!(stored.exempt);
}

async fn sign_in_refreshes_names_and_email_verification(db: &TestDatabase) {
    let store = db.store().await;
    let mut first = user("u1");
    first.given_name = Some("Alice".into());
    first.family_name = Some("Tan".into());
    first.email_verified = true;
    assert_eq!(store.upsert_user(&first).await.unwrap(), first);
    // The upstream stops vouching for the email and drops the family name: so does TechPass.
    let mut again = user("u1");
    again.given_name = Some("Alicia".into());
    let stored = store.upsert_user(&again).await.unwrap();
    assert_eq!(
        (
            stored.given_name.as_deref(),
            stored.family_name.as_deref(),
            stored.email_verified
        ),
        (Some("Alicia"), None, false)
    );
    assert_eq!(store.get_user("u1").await.unwrap().unwrap(), stored);
}

async fn transition_user_is_compare_and_set(db: &TestDatabase) {
    let store = db.store().await;
    let mut u = user("u1");
    u.status = UserStatus::Active;
    store.upsert_user(&u).await.unwrap();
    assert!(store
        .transition_user(
            "u1",
            UserStatus::Active,
            UserStatus::Suspended,
            Some("dormant"),
            5,
        )
        .await
        .unwrap());
    assert!(!store
        .transition_user("u1", UserStatus::Active, UserStatus::Disabled, None, 5)
        .await
        .unwrap());
    let stored = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.status_reason.as_deref()),
        ("suspended", Some("dormant")),
        "the failed transition wrote nothing"
    );
    assert!(!store
        .transition_user("nobody", UserStatus::Active, UserStatus::Suspended, None, 5)
        .await
        .unwrap());
    let racers = (0..6).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let to = [UserStatus::Active, UserStatus::Disabled][i % 2];
            store
                .transition_user("u1", UserStatus::Suspended, to, None, 5)
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "of concurrent transitions exactly one wins");
}

async fn termination_is_timed_and_cleared_by_other_moves(db: &TestDatabase) {
    let store = db.store().await;
    let mut u = user("u1");
    u.status = UserStatus::Disabled;
    store.upsert_user(&u).await.unwrap();
    assert_eq!(
        store.get_user("u1").await.unwrap().unwrap().terminated_at,
        None
    );
    assert!(store
        .transition_user(
            "u1",
            UserStatus::Disabled,
            UserStatus::Terminated,
            Some("inactive"),
            40,
        )
        .await
        .unwrap());
    assert_eq!(
        store.get_user("u1").await.unwrap().unwrap().terminated_at,
        Some(40)
    );
    assert!(store
        .transition_user(
            "u1",
            UserStatus::Terminated,
            UserStatus::Registered,
            None,
            50
        )
        .await
        .unwrap());
    assert_eq!(
        store.get_user("u1").await.unwrap().unwrap().terminated_at,
        None,
        "a move away from terminated forgets the time"
    );
}

async fn enable_user_moves_only_from_the_named_status(db: &TestDatabase) {
    let store = db.store().await;
    let mut u = user("u1");
    u.status = UserStatus::Disabled;
    u.status_reason = Some("inactive".into());
    store.upsert_user(&u).await.unwrap();
    let mut other = user("u2");
    other.status = UserStatus::Suspended;
    store.upsert_user(&other).await.unwrap();
    assert!(!store
        .enable_user("u2", UserStatus::Disabled, UserStatus::Registered, 9)
        .await
        .unwrap());
    assert!(!store
        .enable_user("nobody", UserStatus::Disabled, UserStatus::Registered, 9)
        .await
        .unwrap());
    let racers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .enable_user("u1", UserStatus::Disabled, UserStatus::Registered, 9)
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "of concurrent re-enablements exactly one wins");
    let stored = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.status.as_str(),
            stored.status_reason,
            stored.enabled_at
        ),
        ("registered", None, Some(9))
    );
    let untouched = store.get_user("u2").await.unwrap().unwrap();
    assert_eq!(
        (untouched.status.as_str(), untouched.enabled_at),
        ("suspended", None)
    );
    // Reinstating moves only from suspended, and records the time too.
    assert!(!store
        .enable_user("u1", UserStatus::Suspended, UserStatus::Active, 11)
        .await
        .unwrap());
    assert!(store
        .enable_user("u2", UserStatus::Suspended, UserStatus::Registered, 12)
        .await
        .unwrap());
    let reinstated = store.get_user("u2").await.unwrap().unwrap();
    assert_eq!(
        (reinstated.status.as_str(), reinstated.enabled_at),
        ("registered", Some(12))
    );
}

async fn terminated_users_are_deleted_with_what_names_them(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_client(&client("c1"), &[]).await.unwrap();
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    for id in ["u1", "u2"] {
        let mut u = user(id);
        u.status = UserStatus::Disabled;
        store.upsert_user(&u).await.unwrap();
        assert!(store
            .transition_user(
                id,
                UserStatus::Disabled,
                UserStatus::Terminated,
                Some("inactive"),
                100,
            )
            .await
            .unwrap());
        let grant = GrantRecord {
            id: format!("g-{id}"),
            client_id: "c1".into(),
            user_id: Some(id.into()),
            session_hash: Some(format!("s-{id}")),
            scope: "openid offline_access".into(),
            auth_time: Some(5),
            amr: vec![],
            acr: None,
            created_at: 5,
            expires_at: 1_000,
            revoked_at: None,
            dpop_jkt: None,
        };
        store.insert_grant(&grant).await.unwrap();
        store
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: format!("r-{id}"),
                grant_id: grant.id.clone(),
                created_at: 5,
                expires_at: 500,
                used_at: None,
            })
            .await
            .unwrap();
        store
            .insert_code(&AuthCodeRecord {
                code_hash: format!("k-{id}"),
                client_id: "c1".into(),
                user_id: id.into(),
                session_hash: format!("s-{id}"),
                redirect_uri: "https://app.example/cb".into(),
                scope: "openid".into(),
                nonce: None,
                code_challenge: None,
                auth_time: 5,
                amr: vec![],
                acr: None,
                created_at: 5,
                expires_at: 65,
                used_at: None,
                grant_id: None,
            })
            .await
            .unwrap();
        store
            .insert_session(&SessionRecord {
                id_hash: format!("s-{id}"),
                user_id: id.into(),
                upstream: "wog".into(),
                tenant_id: "tid".into(),
                object_id: format!("oid-{id}"),
                identity: "{}".into(),
                auth_time: 5,
                created_at: 5,
                last_seen_at: 5,
                expires_at: 50_000,
                user_agent: None,
                address: None,
            })
            .await
            .unwrap();
        store
            .add_tenant_admin(&TenantAdminRecord {
                tenant_id: "t1".into(),
                user_id: id.into(),
                added_at: 5,
                added_by: "cli".into(),
            })
            .await
            .unwrap();
        store.grant_platform_admin(id, "cli", 5).await.unwrap();
        store
            .assign(&AssignmentRecord {
                client_id: "c1".into(),
                principal_type: "user".into(),
                principal_id: id.into(),
                assigned_at: 5,
                assigned_by: "cli".into(),
            })
            .await
            .unwrap();
        store
            .append_audit(&AuditRecord {
                at: 100,
                event: "user.terminated".into(),
                outcome: "success".into(),
                subject: Some(id.into()),
                ..AuditRecord::default()
            })
            .await
            .unwrap();
    }
    // A suspended account is never deleted, however old.
    let mut suspended = user("u3");
    suspended.status = UserStatus::Suspended;
    store.upsert_user(&suspended).await.unwrap();

    assert!(store.terminated_before(99, 10).await.unwrap().is_empty());
    assert!(
        !store.delete_terminated_user("u1", 99).await.unwrap(),
        "not before its time"
    );
    assert!(store.get_user("u1").await.unwrap().is_some());
    let due: Vec<String> = store
        .terminated_before(100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(due, ["u1", "u2"]);
    assert_eq!(store.terminated_before(100, 1).await.unwrap().len(), 1);
    assert!(!store.delete_terminated_user("u3", i64::MAX).await.unwrap());

    let racers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.delete_terminated_user("u1", 100).await.unwrap() })
    });
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "of concurrent deletions exactly one wins");
    assert!(store.get_user("u1").await.unwrap().is_none());
    assert!(store.get_grant("g-u1").await.unwrap().is_none());
    assert!(store.get_refresh_token("r-u1").await.unwrap().is_none());
    assert!(store.get_code("k-u1").await.unwrap().is_none());
    assert!(store.get_session("s-u1").await.unwrap().is_none());
    assert!(!store.is_tenant_admin("t1", "u1").await.unwrap());
    assert!(!store.is_platform_admin("u1").await.unwrap());
    let assigned: Vec<String> = store
        .assignments_of_app("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.principal_id)
        .collect();
    assert_eq!(assigned, ["u2"], "the other person keeps everything");
    assert!(store.get_grant("g-u2").await.unwrap().is_some());
    assert!(store.get_session("s-u2").await.unwrap().is_some());
    assert!(store.is_platform_admin("u2").await.unwrap());
    let audit = store
        .list_audit(&AuditFilter {
            subject: Some("u1".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the audit log is kept");
    assert!(store.get_user("u3").await.unwrap().is_some());
}

async fn exemption_and_app_signin_are_recorded(db: &TestDatabase) {
    let store = db.store().await;
    store.upsert_user(&user("u1")).await.unwrap();
    assert!(store.set_user_exempt("u1", true).await.unwrap());
    assert!(store.get_user("u1").await.unwrap().unwrap().exempt);
    assert!(store.set_user_exempt("u1", false).await.unwrap());
    assert!(!store.get_user("u1").await.unwrap().unwrap().exempt);
    assert!(!store.set_user_exempt("nobody", true).await.unwrap());

    let app_signin = |store: std::sync::Arc<dyn crate::Store>| async move {
        store.get_user("u1").await.unwrap().unwrap().app_signin_at
    };
    store.record_app_signin("u1", 100).await.unwrap();
    assert_eq!(app_signin(store.clone()).await, Some(100));
    store.record_app_signin("u1", 50).await.unwrap();
    assert_eq!(
        app_signin(store.clone()).await,
        Some(100),
        "keeps the latest"
    );
    store.record_app_signin("u1", 150).await.unwrap();
    assert_eq!(app_signin(store.clone()).await, Some(150));
    store.record_app_signin("nobody", 150).await.unwrap();
}

async fn lifecycle_pages_by_id_and_skips_exempt_users(db: &TestDatabase) {
    let store = db.store().await;
    for (id, status, exempt) in [
        ("u5", UserStatus::Active, false),
        ("u1", UserStatus::Active, false),
        ("u3", UserStatus::Active, true),
        ("u2", UserStatus::Registered, false),
        ("u4", UserStatus::Suspended, false),
        ("u6", UserStatus::Registered, false),
    ] {
        let mut u = user(id);
        u.status = status;
        u.exempt = exempt;
        store.upsert_user(&u).await.unwrap();
    }
    let ids = |users: Vec<crate::UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let statuses = [UserStatus::Active, UserStatus::Registered];
    let page = store.users_for_lifecycle(&statuses, "", 2).await.unwrap();
    assert_eq!(ids(page), vec!["u1", "u2"]);
    let page = store.users_for_lifecycle(&statuses, "u2", 2).await.unwrap();
    assert_eq!(ids(page), vec!["u5", "u6"], "u3 is exempt, u4 suspended");
    let page = store.users_for_lifecycle(&statuses, "u6", 2).await.unwrap();
    assert!(page.is_empty());
    let suspended = store
        .users_for_lifecycle(&[UserStatus::Suspended], "", 10)
        .await
        .unwrap();
    assert_eq!(ids(suspended), vec!["u4"]);
    assert!(store
        .users_for_lifecycle(&[], "", 10)
        .await
        .unwrap()
        .is_empty());
}

async fn user_search_is_case_insensitive_and_paged(db: &TestDatabase) {
    let store = db.store().await;
    for (id, email, name) in [
        ("u1", Some("carol@agency.gov.sg"), Some("Carol Tan")),
        ("u2", Some("alice@agency.gov.sg"), Some("Alice Lim")),
        ("u3", None, Some("Bob Alicesson")),
        ("u4", Some("dan@vendor.com"), None),
        ("u5", Some("x_y%z@vendor.com"), None),
    ] {
        let mut u = user(id);
        u.email = email.map(String::from);
        u.name = name.map(String::from);
        if email.is_some_and(|e| e.ends_with("@vendor.com")) {
            u.account_type = "vendor".into();
        }
        store.upsert_user(&u).await.unwrap();
    }
    let ids = |users: Vec<crate::UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let found = store.search_users("ALICE", 10, 0).await.unwrap();
    assert_eq!(
        ids(found),
        vec!["u2", "u3"],
        "email or name, by email, no email last"
    );
    assert_eq!(
        ids(store.search_users("U4", 10, 0).await.unwrap()),
        vec!["u4"]
    );
    assert_eq!(
        ids(store.search_users("vendor", 10, 0).await.unwrap()),
        vec!["u4", "u5"]
    );
    // LIKE's metacharacters are matched literally.
    assert_eq!(
        ids(store.search_users("_y%", 10, 0).await.unwrap()),
        vec!["u5"]
    );
    assert_eq!(
        ids(store.search_users("%", 10, 0).await.unwrap()),
        vec!["u5"]
    );
    let all = store.search_users("", 10, 0).await.unwrap();
    assert_eq!(ids(all), vec!["u2", "u1", "u4", "u5", "u3"]);
    let page = store.search_users("", 2, 2).await.unwrap();
    assert_eq!(ids(page), vec!["u4", "u5"]);

    // Filters by status and account type, with the text search and paging.
    assert!(store
        .set_user_status("u4", UserStatus::Suspended, Some("test"))
        .await
        .unwrap());
    assert!(store
        .register_user("u2", UserStatus::Registered, "t", 5)
        .await
        .unwrap());
    let filtered =
        |query: &'static str, statuses: &'static [UserStatus], kind: Option<&'static str>| {
            let store = store.clone();
            async move {
                ids(store
                    .search_users_filtered(query, statuses, kind, 10, 0)
                    .await
                    .unwrap())
            }
        };
    assert_eq!(
        filtered("", &[UserStatus::Suspended], None).await,
        vec!["u4"]
    );
    assert_eq!(
        filtered("", &[UserStatus::Registered, UserStatus::Active], None).await,
        vec!["u2"]
    );
    assert_eq!(filtered("", &[], Some("vendor")).await, vec!["u4", "u5"]);
    assert_eq!(
        filtered("", &[UserStatus::Unregistered], Some("vendor")).await,
        vec!["u5"]
    );
    assert_eq!(
        filtered("alice", &[UserStatus::Unregistered], Some("public_officer")).await,
        vec!["u3"]
    );
    assert_eq!(filtered("", &[], None).await.len(), 5);
    assert!(filtered("%", &[UserStatus::Suspended], None)
        .await
        .is_empty());
}

async fn update_client_round_trips_every_field(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    let mut original = client("c1");
    original.tenant_id = Some("t1".into());
    store.insert_client(&original, &[]).await.unwrap();
    assert_eq!(
        store.get_client("c1").await.unwrap().as_ref(),
        Some(&original)
    );
    let changed = ClientRecord {
        client_id: "c1".into(),
        name: "Renamed".into(),
        confidential: false,
        redirect_uris: vec!["https://new.example/cb".into()],
        post_logout_redirect_uris: vec!["https://new.example/bye".into()],
        backchannel_logout_uri: Some("https://new.example/bc".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        jwks: None,
        enabled: false,
        // Not editable: these two stay as stored.
        created_at: 999,
        tenant_id: None,
        homepage: Some("https://new.example".into()),
        access_policy: AccessPolicy::Assigned,
        access_token_lifetime_secs: Some(300),
        refresh_token_idle_secs: Some(3_600),
        api_access: true,
        id_token_signed_response_alg: Some("EdDSA".into()),
        access_token_signed_response_alg: None,
        dpop_bound_access_tokens: true,
    };
    assert!(store.update_client(&changed).await.unwrap());
    let expected = ClientRecord {
        created_at: original.created_at,
        tenant_id: original.tenant_id.clone(),
        ..changed.clone()
    };
    assert_eq!(store.get_client("c1").await.unwrap(), Some(expected));
    let mut unknown = changed;
    unknown.client_id = "nope".into();
    assert!(!store.update_client(&unknown).await.unwrap());
}

async fn clients_of_tenant_by_name(db: &TestDatabase) {
    let store = db.store().await;
    for t in ["t1", "t2"] {
        store.insert_tenant(&tenant(t, 1)).await.unwrap();
    }
    for (id, name, owner) in [
        ("c1", "beta", Some("t1")),
        ("c2", "alpha", Some("t1")),
        ("c3", "alpha", Some("t2")),
        ("c4", "aardvark", None),
    ] {
        let mut c = client(id);
        c.name = name.into();
        c.tenant_id = owner.map(String::from);
        store.insert_client(&c, &[]).await.unwrap();
    }
    let of_t1: Vec<_> = store
        .clients_of_tenant("t1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.client_id, c.tenant_id))
        .collect();
    assert_eq!(
        of_t1,
        vec![
            ("c2".into(), Some("t1".into())),
            ("c1".into(), Some("t1".into()))
        ]
    );
    assert!(store.clients_of_tenant("t9").await.unwrap().is_empty());
}

fn secret_at(id: &str, expires_at: i64, revoked_at: Option<i64>) -> ClientSecretRecord {
    ClientSecretRecord {
        expires_at,
        revoked_at,
        ..secret(id, "c1")
    }
}

async fn client_secrets_respect_the_live_limit(db: &TestDatabase) {
    let store = db.store().await;
    let now = 50;
    // Expired (at `now` exactly) and revoked secrets do not count.
    let initial = [
        secret_at("expired", now, None),
        secret_at("revoked", 1_000, Some(10)),
        secret_at("live", 1_000, None),
    ];
    store.insert_client(&client("c1"), &initial).await.unwrap();
    assert!(store
        .add_client_secret(&secret_at("s1", 1_000, None), now, 2)
        .await
        .unwrap());
    assert!(!store
        .add_client_secret(&secret_at("s2", 1_000, None), now, 2)
        .await
        .unwrap());
    let ids: Vec<_> = store
        .client_secrets("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        vec!["expired", "live", "revoked", "s1"],
        "s2 not written"
    );
    assert_eq!(
        store.client_secrets("c1").await.unwrap()[2],
        secret_at("revoked", 1_000, Some(10)),
        "revoked secrets stay listed"
    );
    assert!(store.revoke_client_secret("c1", "live", now).await.unwrap());
    assert!(store
        .add_client_secret(&secret_at("s2", 1_000, None), now, 2)
        .await
        .unwrap());
    let mut orphan = secret_at("s3", 1_000, None);
    orphan.client_id = "nope".into();
    assert!(matches!(
        store.add_client_secret(&orphan, now, 2).await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_secret_adds_take_the_last_slot_once(db: &TestDatabase) {
    let store = db.store().await;
    // Several rounds, so that the two adds really overlap at least once.
    for round in 0..5 {
        let client_id = format!("c{round}");
        let mut first = secret(&format!("{client_id}-s0"), &client_id);
        first.expires_at = 1_000;
        store
            .insert_client(&client(&client_id), &[first])
            .await
            .unwrap();
        let add = |n: u32| {
            let store = store.clone();
            let mut s = secret(&format!("{client_id}-s{n}"), &client_id);
            s.expires_at = 1_000;
            async move { store.add_client_secret(&s, 50, 2).await.unwrap() }
        };
        let (a, b) = tokio::join!(add(1), add(2));
        assert_eq!(usize::from(a) + usize::from(b), 1, "round {round}: {a} {b}");
        assert_eq!(store.client_secrets(&client_id).await.unwrap().len(), 2);
    }
}

async fn client_secret_is_revoked_once(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_client(&client("c1"), &[secret("s1", "c1")])
        .await
        .unwrap();
    store.insert_client(&client("c2"), &[]).await.unwrap();
    assert!(
        !store.revoke_client_secret("c2", "s1", 10).await.unwrap(),
        "another client's secret"
    );
    assert!(store.revoke_client_secret("c1", "s1", 10).await.unwrap());
    assert!(!store.revoke_client_secret("c1", "s1", 20).await.unwrap());
    assert!(!store.revoke_client_secret("c1", "nope", 20).await.unwrap());
    assert_eq!(
        store.client_secrets("c1").await.unwrap()[0].revoked_at,
        Some(10),
        "the first revocation time stays"
    );
}

async fn secrets_expiring_in_the_window(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_client(
            &client("c1"),
            &[
                secret_at("at-now", 100, None),
                secret_at("soon", 150, None),
                secret_at("revoked", 150, Some(90)),
                secret_at("at-end", 200, None),
                secret_at("later", 201, None),
            ],
        )
        .await
        .unwrap();
    let mut other = secret("other", "c2");
    other.expires_at = 120;
    store.insert_client(&client("c2"), &[other]).await.unwrap();
    let expiring: Vec<_> = store
        .secrets_expiring(100, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.client_id, s.id))
        .collect();
    assert_eq!(
        expiring,
        vec![
            ("c2".into(), "other".into()),
            ("c1".into(), "soon".into()),
            ("c1".into(), "at-end".into()),
        ]
    );
}

/// Everything that names `client_id`, for the deletion test: one of each.
async fn give_client_everything(store: &std::sync::Arc<dyn crate::Store>, c: &str) {
    store
        .insert_client(&client(c), &[secret(&format!("sec-{c}"), c)])
        .await
        .unwrap();
    let grant = GrantRecord {
        id: format!("g-{c}"),
        client_id: c.into(),
        user_id: Some("u1".into()),
        session_hash: Some("s1".into()),
        scope: "openid offline_access".into(),
        auth_time: Some(5),
        amr: vec![],
        acr: None,
        created_at: 5,
        expires_at: 1_000,
        revoked_at: None,
        dpop_jkt: None,
    };
    store.insert_grant(&grant).await.unwrap();
    store
        .insert_refresh_token(&RefreshTokenRecord {
            token_hash: format!("r-{c}"),
            grant_id: grant.id.clone(),
            created_at: 5,
            expires_at: 500,
            used_at: None,
        })
        .await
        .unwrap();
    store
        .insert_code(&AuthCodeRecord {
            code_hash: format!("k-{c}"),
            client_id: c.into(),
            user_id: "u1".into(),
            session_hash: "s1".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: None,
            auth_time: 5,
            amr: vec![],
            acr: None,
            created_at: 5,
            expires_at: 65,
            used_at: None,
            grant_id: None,
        })
        .await
        .unwrap();
    store
        .insert_device_code(
            &DeviceCodeRecord {
                device_code_hash: format!("d-{c}"),
                user_code_hash: format!("uc-{c}"),
                client_id: c.into(),
                scope: "openid".into(),
                created_at: 5,
                expires_at: 900,
                interval_secs: 5,
                last_polled_at: None,
                status: DeviceStatus::Pending,
                decided_at: None,
                user_id: None,
                session_hash: None,
                auth_time: None,
                amr: None,
                acr: None,
                grant_id: None,
            },
            5,
        )
        .await
        .unwrap();
    store
        .assign(&AssignmentRecord {
            client_id: c.into(),
            principal_type: "user".into(),
            principal_id: "u1".into(),
            assigned_at: 5,
            assigned_by: "cli".into(),
        })
        .await
        .unwrap();
    assert!(store.define_role(c, "reader").await.unwrap());
    assert!(store
        .assign_role(&RoleAssignmentRecord {
            client_id: c.into(),
            role: "reader".into(),
            principal_type: "user".into(),
            principal_id: "u1".into(),
        })
        .await
        .unwrap());
    store
        .grant_consent(&ConsentRecord {
            user_id: "u1".into(),
            client_id: c.into(),
            scopes: "openid".into(),
            granted_at: 5,
        })
        .await
        .unwrap();
    store
        .set_resource_grant(&ResourceGrantRecord {
            resource_id: "res1".into(),
            client_id: c.into(),
            scopes: "read".into(),
            granted_at: 5,
            granted_by: "u1".into(),
        })
        .await
        .unwrap();
    assert!(store
        .insert_pending_grant(&PendingGrantRecord {
            id: format!("p-{c}"),
            email: "new@agency.gov.sg".into(),
            kind: GRANT_APP_ACCESS.into(),
            tenant_id: Some("t1".into()),
            client_id: Some(c.into()),
            granted_by: "admin".into(),
            granted_at: 5,
        })
        .await
        .unwrap());
    assert!(store.record_assertion(c, "jti-1", 900).await.unwrap());
}

async fn a_client_is_deleted_with_what_names_it(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.upsert_user(&user("u1")).await.unwrap();
    store
        .insert_resource(&ApiResourceRecord {
            id: "res1".into(),
            tenant_id: "t1".into(),
            identifier: "https://api.example/".into(),
            name: "API".into(),
            scopes: r#"["read"]"#.into(),
            created_at: 5,
            created_by: "u1".into(),
        })
        .await
        .unwrap();
    for c in ["c1", "c2"] {
        give_client_everything(&store, c).await;
    }
    store
        .append_audit(&AuditRecord {
            at: 100,
            event: "app.created".into(),
            outcome: "success".into(),
            subject: Some("c1".into()),
            ..AuditRecord::default()
        })
        .await
        .unwrap();

    assert!(!store.delete_client("nobody").await.unwrap(), "unknown");
    let racers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.delete_client("c1").await.unwrap() })
    });
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "of concurrent deletions exactly one wins");

    assert!(store.get_client("c1").await.unwrap().is_none());
    assert!(store.client_secrets("c1").await.unwrap().is_empty());
    assert!(store.get_grant("g-c1").await.unwrap().is_none());
    assert!(store.get_refresh_token("r-c1").await.unwrap().is_none());
    assert!(store.get_code("k-c1").await.unwrap().is_none());
    assert!(store.get_device_code("d-c1").await.unwrap().is_none());
    assert!(store.assignments_of_app("c1").await.unwrap().is_empty());
    assert!(store.roles_of_app("c1").await.unwrap().is_empty());
    assert!(store
        .role_assignments_of_app("c1")
        .await
        .unwrap()
        .is_empty());
    assert!(store.consent("u1", "c1").await.unwrap().is_none());
    assert!(store.resource_grant("res1", "c1").await.unwrap().is_none());
    assert!(store.get_pending_grant("p-c1").await.unwrap().is_none());
    assert!(
        store.record_assertion("c1", "jti-1", 900).await.unwrap(),
        "its used assertions are forgotten"
    );

    // The other app keeps everything.
    assert!(store.get_client("c2").await.unwrap().is_some());
    assert_eq!(store.client_secrets("c2").await.unwrap().len(), 1);
    assert!(store.get_grant("g-c2").await.unwrap().is_some());
    assert!(store.get_refresh_token("r-c2").await.unwrap().is_some());
    assert!(store.get_code("k-c2").await.unwrap().is_some());
    assert!(store.get_device_code("d-c2").await.unwrap().is_some());
    assert_eq!(store.assignments_of_app("c2").await.unwrap().len(), 1);
    assert_eq!(store.roles_of_app("c2").await.unwrap(), ["reader"]);
    assert_eq!(store.role_assignments_of_app("c2").await.unwrap().len(), 1);
    assert!(store.consent("u1", "c2").await.unwrap().is_some());
    assert!(store.resource_grant("res1", "c2").await.unwrap().is_some());
    assert!(store.get_pending_grant("p-c2").await.unwrap().is_some());
    assert!(!store.record_assertion("c2", "jti-1", 900).await.unwrap());
    // The person and the audit log stay.
    assert!(store.get_user("u1").await.unwrap().is_some());
    let audit = store
        .list_audit(&AuditFilter {
            subject: Some("c1".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the audit log is kept");
}
