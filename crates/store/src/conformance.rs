//! The conformance suite: every storage contract, run against every backend.
//!
//! Each test is an `async fn(&TestDatabase)`; `backend_tests!` runs it on a fresh SQLite
//! file and on a fresh PostgreSQL schema (skipped, by name, without `TECHPASS_TEST_POSTGRES_URL`).
//! The tenancy, access, accounts and outbox contracts have their own `conformance_*` modules,
//! which share the record fixtures defined here.

use crate::testing::TestDatabase;
use crate::{
    AuditFilter, AuditRecord, AuthCodeRecord, ClientRecord, ClientSecretRecord, GrantRecord,
    LoginAttemptRecord, Redemption, RefreshTokenRecord, SessionRecord, SigningKeyRecord,
    StoreError, TenantRecord, UserRecord,
};
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::TenantStatus;

crate::backend_tests!(
    "store::conformance",
    migrate_is_idempotent,
    ping_reaches_the_database,
    keys_are_listed_in_generation_order,
    same_generation_is_a_conflict_and_writes_nothing,
    same_kid_is_a_conflict,
    generations_count_per_algorithm,
    concurrent_rotations_add_exactly_one_key,
    delete_removes_only_named_keys,
    login_attempt_is_taken_exactly_once,
    expired_login_attempts_are_purged,
    session_lifecycle,
    sessions_of_a_person_end_together,
    expired_and_idle_sessions_are_purged,
    audit_log_appends_and_filters_newest_first,
    users_are_keyed_by_upstream_identity,
    client_and_secrets_are_written_together,
    looking_at_a_code_changes_nothing,
    refresh_tokens_are_redeemed_exactly_once,
    grants_are_revoked_by_id_and_by_session,
    revoked_access_tokens_are_remembered,
    client_assertions_are_single_use,
);

fn key(kid: &str, generation: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_string(),
        generation,
        algorithm: "RS256".into(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        private_key_sealed: vec![0, 1, 2, 255, generation as u8],
        created_at: 1_700_000_000,
        activates_at: 1_700_000_000 + generation * 60,
    }
}

async fn migrate_is_idempotent(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    // A second and third migration (as every replica runs at start) change nothing.
    crate::migrate(&db.connect_options()).await.unwrap();
    crate::migrate(&db.connect_options()).await.unwrap();
    assert_eq!(store.list_signing_keys().await.unwrap(), vec![key("a", 1)]);
}

async fn ping_reaches_the_database(db: &TestDatabase) {
    let store = db.store().await;
    store.ping().await.unwrap();
}

async fn keys_are_listed_in_generation_order(db: &TestDatabase) {
    let store = db.store().await;
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    let (k2, k1, k3) = (key("b", 2), key("a", 1), key("c", 3));
    for k in [&k2, &k1, &k3] {
        store.insert_signing_key(k).await.unwrap();
    }
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed, vec![k1, k2, k3], "every field round-trips, sorted");
}

async fn same_generation_is_a_conflict_and_writes_nothing(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    let err = store.insert_signing_key(&key("b", 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let kids: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["a"]);
}

async fn same_kid_is_a_conflict(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("a", 1)).await.unwrap();
    let err = store.insert_signing_key(&key("a", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn generations_count_per_algorithm(db: &TestDatabase) {
    let store = db.store().await;
    let es256 = |kid: &str, generation| SigningKeyRecord {
        algorithm: "ES256".into(),
        ..key(kid, generation)
    };
    store.insert_signing_key(&key("rsa1", 1)).await.unwrap();
    // Generation 1 of another algorithm is not taken by RS256's.
    store.insert_signing_key(&es256("ec1", 1)).await.unwrap();
    let err = store
        .insert_signing_key(&es256("ec1b", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.insert_signing_key(&es256("ec2", 2)).await.unwrap();
    let listed: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.algorithm, k.generation))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("ec1".to_string(), "ES256".to_string(), 1),
            ("rsa1".into(), "RS256".into(), 1),
            ("ec2".into(), "ES256".into(), 2),
        ],
        "by generation, then algorithm"
    );
}

async fn concurrent_rotations_add_exactly_one_key(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_signing_key(&key("first", 1)).await.unwrap();
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.insert_signing_key(&key(&format!("r{i}"), 2)).await })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 2);
}

async fn delete_removes_only_named_keys(db: &TestDatabase) {
    let store = db.store().await;
    for (kid, g) in [("a", 1), ("b", 2), ("c", 3)] {
        store.insert_signing_key(&key(kid, g)).await.unwrap();
    }
    let deleted = store
        .delete_signing_keys(&["a".into(), "c".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let kids: Vec<_> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["b"]);
    assert_eq!(store.delete_signing_keys(&[]).await.unwrap(), 0);
}

fn attempt(state_hash: &str, expires_at: i64) -> LoginAttemptRecord {
    LoginAttemptRecord {
        state_hash: state_hash.into(),
        browser_hash: "browser".into(),
        upstream: "wog".into(),
        return_to: "/portal?x=1".into(),
        created_at: expires_at - 600,
        expires_at,
    }
}

async fn login_attempt_is_taken_exactly_once(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_login_attempt(&attempt("s1", 2_000))
        .await
        .unwrap();
    let err = store
        .insert_login_attempt(&attempt("s1", 2_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Several replicas receiving the same callback at once: one of them gets it.
    let takers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_login_attempt("s1").await.unwrap() })
    });
    let mut taken = Vec::new();
    for t in takers {
        if let Some(a) = t.await.unwrap() {
            taken.push(a);
        }
    }
    assert_eq!(taken, vec![attempt("s1", 2_000)]);
    assert_eq!(store.take_login_attempt("s1").await.unwrap(), None);
    assert_eq!(store.take_login_attempt("unknown").await.unwrap(), None);
}

async fn expired_login_attempts_are_purged(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_login_attempt(&attempt("old", 100))
        .await
        .unwrap();
    store
        .insert_login_attempt(&attempt("new", 300))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_login_attempts(200).await.unwrap(), 1);
    assert!(store.take_login_attempt("old").await.unwrap().is_none());
    assert!(store.take_login_attempt("new").await.unwrap().is_some());
}

fn session(id: &str, tid: &str, oid: &str) -> SessionRecord {
    SessionRecord {
        id_hash: id.into(),
        user_id: format!("user-{tid}-{oid}"),
        upstream: "wog".into(),
        tenant_id: tid.into(),
        object_id: oid.into(),
        identity: r#"{"name":"Alice"}"#.into(),
        auth_time: 1_000,
        created_at: 1_000,
        last_seen_at: 1_000,
        expires_at: 50_000,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0".into()),
        address: Some("203.0.113.7".into()),
    }
}

async fn session_lifecycle(db: &TestDatabase) {
    let store = db.store().await;
    assert_eq!(store.get_session("a").await.unwrap(), None);
    store.insert_session(&session("a", "t", "o")).await.unwrap();
    assert!(matches!(
        store.insert_session(&session("a", "t", "o")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_session("a").await.unwrap(),
        Some(session("a", "t", "o"))
    );

    assert!(store.touch_session("a", 2_000).await.unwrap());
    assert_eq!(
        store.get_session("a").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    // Activity never moves backwards (a slow replica's late write).
    assert!(store.touch_session("a", 1_500).await.unwrap());
    assert_eq!(
        store.get_session("a").await.unwrap().unwrap().last_seen_at,
        2_000
    );
    assert!(!store.touch_session("missing", 2_000).await.unwrap());

    assert!(store.delete_session("a").await.unwrap());
    assert!(!store.delete_session("a").await.unwrap());
    assert_eq!(store.get_session("a").await.unwrap(), None);
}

async fn sessions_of_a_person_end_together(db: &TestDatabase) {
    let store = db.store().await;
    for (id, tid, oid) in [
        ("a", "t1", "o1"),
        ("b", "t1", "o1"),
        ("c", "t1", "o2"),
        ("d", "t2", "o1"),
    ] {
        store.insert_session(&session(id, tid, oid)).await.unwrap();
    }
    let of_user: Vec<_> = store
        .sessions_of_user("user-t1-o1")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id_hash)
        .collect();
    assert_eq!(of_user, vec!["a", "b"]);
    assert_eq!(store.delete_sessions_of("t1", "o1").await.unwrap(), 2);
    for (id, present) in [("a", false), ("b", false), ("c", true), ("d", true)] {
        assert_eq!(
            store.get_session(id).await.unwrap().is_some(),
            present,
            "{id}"
        );
    }
}

async fn expired_and_idle_sessions_are_purged(db: &TestDatabase) {
    let store = db.store().await;
    let mut past_end = session("ended", "t", "o");
    past_end.expires_at = 5_000;
    past_end.last_seen_at = 9_000;
    let mut idle = session("idle", "t", "o");
    idle.last_seen_at = 3_000;
    let mut live = session("live", "t", "o");
    live.last_seen_at = 9_000;
    for s in [&past_end, &idle, &live] {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(
        store.delete_expired_sessions(10_000, 4_000).await.unwrap(),
        2
    );
    assert!(store.get_session("live").await.unwrap().is_some());
}

async fn audit_log_appends_and_filters_newest_first(db: &TestDatabase) {
    let store = db.store().await;
    let event = |at: i64, event: &str, subject: &str| AuditRecord {
        at,
        event: event.into(),
        outcome: "success".into(),
        subject: Some(subject.into()),
        tenant: Some("t1".into()),
        details: "{}".into(),
        ..AuditRecord::default()
    };
    let mut ids = Vec::new();
    for (at, ev, subj) in [
        (1, "signin", "alice"),
        (2, "signin", "bob"),
        (3, "signout", "alice"),
    ] {
        ids.push(store.append_audit(&event(at, ev, subj)).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), vec![3, 2, 1]);
    assert_eq!(all[2].id, ids[0]);
    assert_eq!(all[2].subject.as_deref(), Some("alice"));

    let alice = store
        .list_audit(&AuditFilter {
            subject: Some("alice".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 2);
    let signouts = store
        .list_audit(&AuditFilter {
            event: Some("signout".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(signouts.len(), 1);
    let page = store
        .list_audit(&AuditFilter {
            before_id: Some(ids[2]),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[1]]);
    let other_tenant = store
        .list_audit(&AuditFilter {
            tenant: Some("t2".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other_tenant.is_empty());
}

async fn users_are_keyed_by_upstream_identity(db: &TestDatabase) {
    let store = db.store().await;
    let user = |id: &str, email: &str, at: i64| UserRecord {
        id: id.into(),
        tenant_id: "tid".into(),
        object_id: "oid".into(),
        email: Some(email.into()),
        name: Some("Alice".into()),
        created_at: at,
        last_signin_at: at,
        status: UserStatus::Unregistered,
        account_type: "public_officer".into(),
        terms_version: None,
        registered_at: None,
        access_ends_at: None,
        status_reason: None,
        exempt: false,
        app_signin_at: None,
        given_name: None,
        family_name: None,
        email_verified: false,
        enabled_at: None,
        terminated_at: None,
    };
    let first = store
        .upsert_user(&user("u1", "a@x.gov.sg", 10))
        .await
        .unwrap();
    assert_eq!(first.id, "u1");
    // The same person again, with a changed email: same id, attributes updated.
    let again = store
        .upsert_user(&user("u2", "new@x.gov.sg", 20))
        .await
        .unwrap();
    assert_eq!(again.id, "u1");
    assert_eq!(again.email.as_deref(), Some("new@x.gov.sg"));
    assert_eq!((again.created_at, again.last_signin_at), (10, 20));
    assert_eq!(store.get_user("u1").await.unwrap(), Some(again));
    assert_eq!(store.get_user("u2").await.unwrap(), None);
    let racers = (0..6).map(|i| {
        let store = store.clone();
        let mut u = user(&format!("r{i}"), "a@x.gov.sg", 30);
        u.object_id = "other".into();
        tokio::spawn(async move { store.upsert_user(&u).await.unwrap().id })
    });
    let mut ids = std::collections::HashSet::new();
    for r in racers {
        ids.insert(r.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "concurrent first sign-ins agree on one user");

    // Registration happens once; a sign-in never changes the status.
    assert!(store
        .register_user("u1", UserStatus::Registered, "terms-1", 40)
        .await
        .unwrap());
    assert!(!store
        .register_user("u1", UserStatus::Registered, "terms-2", 41)
        .await
        .unwrap());
    let registered = store
        .upsert_user(&user("u9", "new@x.gov.sg", 50))
        .await
        .unwrap();
    assert_eq!(registered.status, UserStatus::Registered);
    assert_eq!(registered.terms_version.as_deref(), Some("terms-1"));
    assert_eq!(registered.registered_at, Some(40));
    // A newer version of the terms, accepted later, replaces the recorded one; an
    // unregistered or unknown person has nothing to update.
    assert!(store.accept_terms("u1", "terms-3").await.unwrap());
    let accepted = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(accepted.terms_version.as_deref(), Some("terms-3"));
    assert_eq!(accepted.registered_at, Some(40), "registration unchanged");
    assert!(!store.accept_terms("nobody", "terms-3").await.unwrap());
    let mut newcomer = user("u10", "newcomer@x.gov.sg", 51);
    newcomer.object_id = "oid-newcomer".into();
    let newcomer = store.upsert_user(&newcomer).await.unwrap();
    assert_eq!(newcomer.status, UserStatus::Unregistered);
    assert!(!store.accept_terms(&newcomer.id, "terms-3").await.unwrap());
    assert_eq!(
        store
            .get_user(&newcomer.id)
            .await
            .unwrap()
            .unwrap()
            .terms_version,
        None
    );
    assert!(store
        .set_user_status("u1", UserStatus::Suspended, Some("investigation"))
        .await
        .unwrap());
    let suspended = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(
        (
            suspended.status.as_str(),
            suspended.status_reason.as_deref()
        ),
        ("suspended", Some("investigation"))
    );
    assert!(!store
        .set_user_status("nobody", UserStatus::Suspended, None)
        .await
        .unwrap());
    let found = store.find_users_by_email("NEW@X.GOV.SG").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "u1");
}

/// A confidential platform app (no tenant). Shared with the other conformance modules.
pub(crate) fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        name: "App".into(),
        confidential: true,
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        grant_types: vec!["authorization_code".into()],
        enabled: true,
        created_at: 1,
        jwks: Some(r#"{"keys":[]}"#.into()),
        tenant_id: None,
        homepage: None,
        access_policy: AccessPolicy::Officers,
        access_token_lifetime_secs: None,
        refresh_token_idle_secs: None,
        api_access: false,
        id_token_signed_response_alg: None,
        access_token_signed_response_alg: Some("ES256".into()),
        dpop_bound_access_tokens: false,
    }
}

/// A live secret of `client_id`, expiring at 100.
pub(crate) fn secret(id: &str, client_id: &str) -> ClientSecretRecord {
    ClientSecretRecord {
        id: id.into(),
        client_id: client_id.into(),
        secret_hash: format!("hash-{id}"),
        created_at: 1,
        expires_at: 100,
        revoked_at: None,
    }
}

/// An unregistered officer whose upstream object id is `id`.
pub(crate) fn user(id: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        tenant_id: "tid".into(),
        object_id: format!("oid-{id}"),
        email: Some(format!("{id}@agency.gov.sg")),
        name: Some(format!("Name of {id}")),
        created_at: 1,
        last_signin_at: 1,
        status: UserStatus::Unregistered,
        account_type: "public_officer".into(),
        terms_version: None,
        registered_at: None,
        access_ends_at: None,
        status_reason: None,
        exempt: false,
        app_signin_at: None,
        given_name: None,
        family_name: None,
        email_verified: false,
        enabled_at: None,
        terminated_at: None,
    }
}

/// A requested tenant whose slug is its id.
pub(crate) fn tenant(id: &str, created_at: i64) -> TenantRecord {
    TenantRecord {
        id: id.into(),
        slug: id.into(),
        name: format!("Tenant {id}"),
        description: "A service".into(),
        purpose: "Testing".into(),
        status: TenantStatus::Requested,
        requested_by: "officer".into(),
        created_at,
        status_at: None,
        status_by: None,
        status_reason: None,
    }
}

async fn client_and_secrets_are_written_together(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_client(&client("c1"), &[secret("s1", "c1"), secret("s2", "c1")])
        .await
        .unwrap();
    assert_eq!(store.get_client("c1").await.unwrap(), Some(client("c1")));
    assert_eq!(
        store.client_secrets("c1").await.unwrap(),
        vec![secret("s1", "c1"), secret("s2", "c1")]
    );
    // A failure part-way (duplicate secret id) leaves nothing of the new client behind.
    let err = store
        .insert_client(&client("c2"), &[secret("s3", "c2"), secret("s1", "c2")])
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.get_client("c2").await.unwrap(), None);
    assert!(store.client_secrets("c2").await.unwrap().is_empty());
    assert!(matches!(
        store.insert_client(&client("c1"), &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_client("nope").await.unwrap(), None);
}

pub(crate) fn code(hash: &str) -> AuthCodeRecord {
    AuthCodeRecord {
        code_hash: hash.into(),
        client_id: "c1".into(),
        user_id: "u1".into(),
        session_hash: "s".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid".into(),
        nonce: Some("n".into()),
        code_challenge: None,
        auth_time: 5,
        amr: vec!["mfa".into()],
        acr: None,
        created_at: 5,
        expires_at: 65,
        used_at: None,
        grant_id: None,
    }
}

/// Looking at a code changes nothing: it is still there to redeem. (Redeeming it:
/// `conformance_rows::a_code_is_redeemed_into_its_grant_exactly_once`.)
async fn looking_at_a_code_changes_nothing(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_code(&code("k")).await.unwrap();
    assert_eq!(store.get_code("k").await.unwrap(), Some(code("k")));
    assert_eq!(store.get_code("k").await.unwrap(), Some(code("k")));
    assert_eq!(store.get_code("missing").await.unwrap(), None);
}

pub(crate) fn grant(id: &str, session: Option<&str>) -> GrantRecord {
    GrantRecord {
        id: id.into(),
        client_id: "c1".into(),
        user_id: Some("u1".into()),
        session_hash: session.map(String::from),
        scope: "openid offline_access".into(),
        auth_time: Some(5),
        amr: vec![],
        acr: None,
        created_at: 5,
        expires_at: 1_000,
        revoked_at: None,
        dpop_jkt: None,
    }
}

async fn refresh_tokens_are_redeemed_exactly_once(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_grant(&grant("g1", None)).await.unwrap();
    let token = RefreshTokenRecord {
        token_hash: "r1".into(),
        grant_id: "g1".into(),
        created_at: 5,
        expires_at: 500,
        used_at: None,
    };
    store.insert_refresh_token(&token).await.unwrap();
    assert_eq!(
        store.get_refresh_token("r1").await.unwrap(),
        Some(token.clone())
    );
    let successor = |hash: &str| RefreshTokenRecord {
        token_hash: hash.into(),
        grant_id: "g1".into(),
        created_at: 7,
        expires_at: 500,
        used_at: None,
    };
    let first = store
        .redeem_refresh_token("r1", 7, Some(&successor("r2")))
        .await
        .unwrap();
    assert!(matches!(first, Redemption::Redeemed(ref t) if t.used_at == Some(7)));
    assert_eq!(
        store.get_refresh_token("r2").await.unwrap(),
        Some(successor("r2")),
        "the successor is stored with the redemption"
    );
    assert!(matches!(
        store
            .redeem_refresh_token("r1", 8, Some(&successor("r3")))
            .await
            .unwrap(),
        Redemption::Replayed(_)
    ));
    assert_eq!(
        store.get_refresh_token("r3").await.unwrap(),
        None,
        "a replay stores no successor"
    );
    assert_eq!(
        store.redeem_refresh_token("nope", 8, None).await.unwrap(),
        Redemption::NotFound
    );

    // A retry after a lost answer: r1 (used at 7) replaces its unused successor r2 with r4.
    assert!(store
        .reissue_refresh_token("r1", 5, &successor("r4"))
        .await
        .unwrap());
    assert_eq!(
        store.get_refresh_token("r2").await.unwrap(),
        None,
        "r2 is gone"
    );
    assert_eq!(
        store.get_refresh_token("r4").await.unwrap(),
        Some(successor("r4"))
    );
    // Too late (used before `used_since`), an unknown token: nothing changes.
    assert!(!store
        .reissue_refresh_token("r1", 8, &successor("r5"))
        .await
        .unwrap());
    assert!(!store
        .reissue_refresh_token("nope", 0, &successor("r5"))
        .await
        .unwrap());
    assert_eq!(store.get_refresh_token("r5").await.unwrap(), None);
    // Once the successor was used, r1 has nothing to replace: a replay.
    assert!(matches!(
        store
            .redeem_refresh_token("r4", 9, Some(&successor("r6")))
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    ));
    assert!(!store
        .reissue_refresh_token("r1", 5, &successor("r5"))
        .await
        .unwrap());
    assert_eq!(
        store
            .get_refresh_token("r4")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(9)
    );
    assert_eq!(store.get_refresh_token("r5").await.unwrap(), None);
}

async fn grants_are_revoked_by_id_and_by_session(db: &TestDatabase) {
    let store = db.store().await;
    store
        .insert_grant(&grant("g1", Some("sess1")))
        .await
        .unwrap();
    store
        .insert_grant(&grant("g2", Some("sess1")))
        .await
        .unwrap();
    // A grant bound to a DPoP key keeps its key.
    let mut bound = grant("g3", Some("sess2"));
    bound.dpop_jkt = Some("jkt-1".into());
    store.insert_grant(&bound).await.unwrap();
    assert_eq!(store.get_grant("g3").await.unwrap(), Some(bound));
    assert_eq!(store.get_grant("g1").await.unwrap().unwrap().dpop_jkt, None);
    let of_session: Vec<_> = store
        .grants_of_session("sess1")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(of_session, vec!["g1", "g2"]);
    assert!(store.grants_of_session("none").await.unwrap().is_empty());
    assert!(store.revoke_grant("g1", 50).await.unwrap());
    assert!(!store.revoke_grant("unknown", 50).await.unwrap());
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(50)
    );
    assert_eq!(
        store.get_grant("g2").await.unwrap().unwrap().revoked_at,
        None
    );
    // Revocation keeps its first time.
    assert_eq!(
        store.revoke_grants_of_session("sess1", 60).await.unwrap(),
        1
    );
    assert_eq!(
        store.get_grant("g1").await.unwrap().unwrap().revoked_at,
        Some(50)
    );
    assert_eq!(
        store.get_grant("g2").await.unwrap().unwrap().revoked_at,
        Some(60)
    );
    assert_eq!(
        store.get_grant("g3").await.unwrap().unwrap().revoked_at,
        None
    );
    store.insert_grant(&grant("g4", None)).await.unwrap();
    // Live grants of a person (g1 and g2 were revoked by id and by their session).
    let live = |now| {
        let store = store.clone();
        async move {
            store
                .live_grants_of_user("u1", now)
                .await
                .unwrap()
                .into_iter()
                .map(|g| g.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(live(60).await, vec!["g3", "g4"]);
    assert!(live(1_000).await.is_empty(), "past their end");
    let mut other = grant("g5", None);
    other.client_id = "c2".into();
    store.insert_grant(&other).await.unwrap();
    assert_eq!(
        store
            .revoke_grants_of_user_for_client("u1", "c2", 62)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_grants_of_user_for_client("u1", "c2", 63)
            .await
            .unwrap(),
        0,
        "once"
    );
    assert_eq!(live(60).await, vec!["g3", "g4"], "c1's grants untouched");
    assert_eq!(
        store.revoke_grants_of_user("u1", 65).await.unwrap(),
        2,
        "g3 and g4"
    );
    assert_eq!(
        store.get_grant("g4").await.unwrap().unwrap().revoked_at,
        Some(65)
    );
    assert!(store.revoke_grant("g3", 70).await.unwrap());
    assert!(!store.revoke_grant("nope", 70).await.unwrap());
}

async fn revoked_access_tokens_are_remembered(db: &TestDatabase) {
    let store = db.store().await;
    assert!(!store.is_access_token_revoked("j1").await.unwrap());
    store.revoke_access_token("j1", 100).await.unwrap();
    store.revoke_access_token("j1", 100).await.unwrap();
    assert!(store.is_access_token_revoked("j1").await.unwrap());
    assert!(!store.is_access_token_revoked("j2").await.unwrap());
}

async fn client_assertions_are_single_use(db: &TestDatabase) {
    let store = db.store().await;
    let racers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.record_assertion("c1", "jti-1", 100).await.unwrap() })
    });
    let mut fresh = 0;
    for r in racers {
        fresh += usize::from(r.await.unwrap());
    }
    assert_eq!(fresh, 1, "one of the concurrent uses wins");
    assert!(
        store.record_assertion("c2", "jti-1", 100).await.unwrap(),
        "per client"
    );
    assert!(store.record_assertion("c1", "jti-2", 50).await.unwrap());
    assert_eq!(store.delete_expired_assertions(60).await.unwrap(), 1);
    assert!(
        !store.record_assertion("c1", "jti-1", 100).await.unwrap(),
        "still remembered"
    );
    // DPoP proofs: single use per key, apart from clients' assertions, purged alike.
    assert!(store
        .record_dpop_proof("jkt-a", "jti-1", 100)
        .await
        .unwrap());
    assert!(!store
        .record_dpop_proof("jkt-a", "jti-1", 100)
        .await
        .unwrap());
    assert!(store.record_dpop_proof("jkt-b", "jti-1", 40).await.unwrap());
    assert_eq!(store.delete_expired_assertions(60).await.unwrap(), 1);
    assert!(store
        .record_dpop_proof("jkt-b", "jti-1", 100)
        .await
        .unwrap());
}
