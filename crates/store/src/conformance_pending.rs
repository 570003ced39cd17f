//! Conformance of pending grants ([`crate::PendingGrantStore`]) and of the invitations to one
//! address ([`crate::InvitationStore::invitations_to_email`]), on every backend.

use std::sync::Arc;

use crate::conformance::{client, tenant, user};
use crate::testing::TestDatabase;
use crate::{
    InvitationRecord, PendingGrantRecord, Store, GRANT_APP_ACCESS, GRANT_PLATFORM_ADMIN,
    GRANT_TENANT_ADMIN,
};
use techpass_domain::tenancy::InvitationStatus;

crate::backend_tests!(
    "store::conformance_pending",
    a_pending_grant_is_stored_once_per_kind_email_and_target,
    pending_grants_are_listed_by_tenant_and_by_email,
    a_pending_grant_is_revoked_once,
    redeeming_gives_what_the_grant_names_exactly_once,
    redeeming_keeps_what_the_person_already_has,
    concurrent_redemptions_have_one_winner,
    a_grant_for_an_unknown_app_is_refused,
    invitations_to_one_email_are_listed_newest_first,
    pending_invitations_to_one_email_are_found_across_tenants,
);

/// Tenants t1 and t2, app c1 of t1, app c2 of t2, users u1 and u2.
async fn setup(db: &TestDatabase) -> Arc<dyn Store> {
    let store = db.store().await;
    for t in ["t1", "t2"] {
        store.insert_tenant(&tenant(t, 1)).await.unwrap();
    }
    for (c, t) in [("c1", "t1"), ("c2", "t2")] {
        let mut app = client(c);
        app.tenant_id = Some(t.into());
        store.insert_client(&app, &[]).await.unwrap();
    }
    for u in ["u1", "u2"] {
        store.upsert_user(&user(u)).await.unwrap();
    }
    store
}

fn access(id: &str, client_id: &str, tenant_id: &str, email: &str, at: i64) -> PendingGrantRecord {
    PendingGrantRecord {
        id: id.into(),
        email: email.into(),
        kind: GRANT_APP_ACCESS.into(),
        tenant_id: Some(tenant_id.into()),
        client_id: Some(client_id.into()),
        granted_by: "admin".into(),
        granted_at: at,
    }
}

fn tenant_admin(id: &str, tenant_id: &str, email: &str, at: i64) -> PendingGrantRecord {
    PendingGrantRecord {
        id: id.into(),
        email: email.into(),
        kind: GRANT_TENANT_ADMIN.into(),
        tenant_id: Some(tenant_id.into()),
        client_id: None,
        granted_by: "cli".into(),
        granted_at: at,
    }
}

fn platform_admin(id: &str, email: &str, at: i64) -> PendingGrantRecord {
    PendingGrantRecord {
        id: id.into(),
        email: email.into(),
        kind: GRANT_PLATFORM_ADMIN.into(),
        tenant_id: None,
        client_id: None,
        granted_by: "cli".into(),
        granted_at: at,
    }
}

async fn a_pending_grant_is_stored_once_per_kind_email_and_target(db: &TestDatabase) {
    let store = setup(db).await;
    let first = access("p1", "c1", "t1", "new@agency.gov.sg", 10);
    assert!(store.insert_pending_grant(&first).await.unwrap());
    assert_eq!(store.get_pending_grant("p1").await.unwrap(), Some(first));
    // The same grant again, under another id: nothing written.
    assert!(!store
        .insert_pending_grant(&access("p2", "c1", "t1", "new@agency.gov.sg", 11))
        .await
        .unwrap());
    assert_eq!(store.get_pending_grant("p2").await.unwrap(), None);
    // Another app, another email, another kind: each its own grant.
    for grant in [
        access("p3", "c2", "t2", "new@agency.gov.sg", 12),
        access("p4", "c1", "t1", "other@agency.gov.sg", 13),
        tenant_admin("p5", "t1", "new@agency.gov.sg", 14),
        platform_admin("p6", "new@agency.gov.sg", 15),
    ] {
        assert!(
            store.insert_pending_grant(&grant).await.unwrap(),
            "{grant:?}"
        );
    }
    assert!(!store
        .insert_pending_grant(&tenant_admin("p7", "t1", "new@agency.gov.sg", 16))
        .await
        .unwrap());
    assert!(!store
        .insert_pending_grant(&platform_admin("p8", "new@agency.gov.sg", 17))
        .await
        .unwrap());
    // The same id again is no second grant either.
    assert!(!store
        .insert_pending_grant(&platform_admin("p6", "third@agency.gov.sg", 18))
        .await
        .unwrap());
}

async fn pending_grants_are_listed_by_tenant_and_by_email(db: &TestDatabase) {
    let store = setup(db).await;
    for grant in [
        tenant_admin("p3", "t1", "a@agency.gov.sg", 30),
        access("p1", "c1", "t1", "a@agency.gov.sg", 10),
        access("p2", "c1", "t1", "b@agency.gov.sg", 20),
        access("p4", "c2", "t2", "a@agency.gov.sg", 40),
        platform_admin("p5", "a@agency.gov.sg", 50),
    ] {
        store.insert_pending_grant(&grant).await.unwrap();
    }
    let ids = |grants: Vec<PendingGrantRecord>| -> Vec<String> {
        grants.into_iter().map(|g| g.id).collect()
    };
    assert_eq!(
        ids(store.pending_grants_of_tenant("t1").await.unwrap()),
        ["p1", "p2", "p3"]
    );
    assert_eq!(
        ids(store.pending_grants_of_tenant("t2").await.unwrap()),
        ["p4"]
    );
    assert!(store
        .pending_grants_of_tenant("t9")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store
            .pending_grants_for_email("a@agency.gov.sg")
            .await
            .unwrap()),
        ["p1", "p3", "p4", "p5"]
    );
    assert!(store
        .pending_grants_for_email("nobody@agency.gov.sg")
        .await
        .unwrap()
        .is_empty());
}

async fn a_pending_grant_is_revoked_once(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_pending_grant(&access("p1", "c1", "t1", "a@agency.gov.sg", 10))
        .await
        .unwrap();
    assert!(store.delete_pending_grant("p1").await.unwrap());
    assert!(!store.delete_pending_grant("p1").await.unwrap());
    assert!(!store.delete_pending_grant("unknown").await.unwrap());
    assert_eq!(store.get_pending_grant("p1").await.unwrap(), None);
    // A revoked grant is never redeemed, and may be given again.
    assert!(!store.redeem_pending_grant("p1", "u1", 20).await.unwrap());
    assert!(!store.has_access("c1", "u1").await.unwrap());
    assert!(store
        .insert_pending_grant(&access("p2", "c1", "t1", "a@agency.gov.sg", 30))
        .await
        .unwrap());
}

async fn redeeming_gives_what_the_grant_names_exactly_once(db: &TestDatabase) {
    let store = setup(db).await;
    for grant in [
        access("p1", "c1", "t1", "a@agency.gov.sg", 10),
        tenant_admin("p2", "t1", "a@agency.gov.sg", 11),
        platform_admin("p3", "a@agency.gov.sg", 12),
    ] {
        store.insert_pending_grant(&grant).await.unwrap();
    }
    for id in ["p1", "p2", "p3"] {
        assert!(store.redeem_pending_grant(id, "u1", 100).await.unwrap());
        assert!(!store.redeem_pending_grant(id, "u2", 101).await.unwrap());
    }
    assert!(store.has_access("c1", "u1").await.unwrap());
    assert!(!store.has_access("c1", "u2").await.unwrap());
    let assignments = store.assignments_of_app("c1").await.unwrap();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].principal_id, "u1");
    assert_eq!(
        assignments[0].assigned_by, "admin",
        "the granter is recorded"
    );
    assert_eq!(assignments[0].assigned_at, 100);
    assert!(store.is_tenant_admin("t1", "u1").await.unwrap());
    assert!(!store.is_tenant_admin("t1", "u2").await.unwrap());
    let admins = store.tenant_admins("t1").await.unwrap();
    assert_eq!(admins[0].added_by, "cli");
    assert!(store.is_platform_admin("u1").await.unwrap());
    assert!(!store.is_platform_admin("u2").await.unwrap());
    assert!(store
        .pending_grants_for_email("a@agency.gov.sg")
        .await
        .unwrap()
        .is_empty());
    assert!(!store
        .redeem_pending_grant("unknown", "u1", 100)
        .await
        .unwrap());
}

async fn redeeming_keeps_what_the_person_already_has(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .assign(&crate::AssignmentRecord {
            client_id: "c1".into(),
            principal_type: crate::PRINCIPAL_USER.into(),
            principal_id: "u1".into(),
            assigned_at: 5,
            assigned_by: "earlier".into(),
        })
        .await
        .unwrap();
    store
        .grant_platform_admin("u1", "earlier", 5)
        .await
        .unwrap();
    for grant in [
        access("p1", "c1", "t1", "a@agency.gov.sg", 10),
        platform_admin("p2", "a@agency.gov.sg", 11),
    ] {
        store.insert_pending_grant(&grant).await.unwrap();
    }
    assert!(store.redeem_pending_grant("p1", "u1", 100).await.unwrap());
    assert!(store.redeem_pending_grant("p2", "u1", 100).await.unwrap());
    let assignments = store.assignments_of_app("c1").await.unwrap();
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0].assigned_by, "earlier");
    assert!(store.get_pending_grant("p1").await.unwrap().is_none());
}

async fn concurrent_redemptions_have_one_winner(db: &TestDatabase) {
    let store = setup(db).await;
    store
        .insert_pending_grant(&tenant_admin("p1", "t1", "a@agency.gov.sg", 10))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.redeem_pending_grant("p1", "u1", 100),
        store.redeem_pending_grant("p1", "u2", 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a ^ b, "exactly one redemption: {a} {b}");
    let admins = store.tenant_admins("t1").await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].user_id, if a { "u1" } else { "u2" });
}

async fn a_grant_for_an_unknown_app_is_refused(db: &TestDatabase) {
    let store = setup(db).await;
    assert!(store
        .insert_pending_grant(&access("p1", "c9", "t1", "a@agency.gov.sg", 10))
        .await
        .is_err());
    assert!(store
        .insert_pending_grant(&tenant_admin("p2", "t9", "a@agency.gov.sg", 10))
        .await
        .is_err());
    assert!(store
        .pending_grants_for_email("a@agency.gov.sg")
        .await
        .unwrap()
        .is_empty());
}

fn invitation(id: &str, tenant_id: &str, email: &str, created_at: i64) -> InvitationRecord {
    InvitationRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        email: email.into(),
        token_hash: format!("token-{id}"),
        invited_by: "admin".into(),
        created_at,
        expires_at: created_at + 1_000,
        access_ends_at: None,
        status: InvitationStatus::Pending,
        status_at: None,
        accepted_by: None,
        sent_count: 1,
    }
}

async fn invitations_to_one_email_are_listed_newest_first(db: &TestDatabase) {
    let store = setup(db).await;
    for (id, tenant, email, at) in [
        ("i1", "t1", "dave@vendor.example", 10),
        ("i2", "t1", "dave@vendor.example", 20),
        ("i3", "t1", "erin@vendor.example", 30),
        ("i4", "t2", "dave@vendor.example", 40),
    ] {
        store
            .insert_invitation(&invitation(id, tenant, email, at))
            .await
            .unwrap();
    }
    store.revoke_invitation("i2", 50).await.unwrap();
    let found = store
        .invitations_to_email("t1", "dave@vendor.example")
        .await
        .unwrap();
    let summary: Vec<(&str, &str)> = found
        .iter()
        .map(|i| (i.id.as_str(), i.status.as_str()))
        .collect();
    assert_eq!(summary, [("i2", "revoked"), ("i1", "replaced")]);
    assert!(store
        .invitations_to_email("t2", "erin@vendor.example")
        .await
        .unwrap()
        .is_empty());
}

async fn pending_invitations_to_one_email_are_found_across_tenants(db: &TestDatabase) {
    let store = setup(db).await;
    for (id, tenant, email, at) in [
        ("i1", "t1", "dave@vendor.example", 10),
        ("i2", "t2", "dave@vendor.example", 20),
        ("i3", "t2", "erin@vendor.example", 30),
        ("i4", "t1", "dave@other.example", 40),
    ] {
        store
            .insert_invitation(&invitation(id, tenant, email, at))
            .await
            .unwrap();
    }
    let ids = |found: Vec<crate::InvitationRecord>| -> Vec<String> {
        found.into_iter().map(|i| i.id).collect()
    };
    let waiting = store
        .pending_invitations_to_email("dave@vendor.example", 100)
        .await
        .unwrap();
    assert_eq!(ids(waiting), ["i2", "i1"]);
    store.revoke_invitation("i2", 50).await.unwrap();
    let waiting = store
        .pending_invitations_to_email("dave@vendor.example", 100)
        .await
        .unwrap();
    assert_eq!(ids(waiting), ["i1"], "a revoked one is not waiting");
    // i1 expires at 1_010.
    let late = store
        .pending_invitations_to_email("dave@vendor.example", 1_010)
        .await
        .unwrap();
    assert!(late.is_empty(), "an expired one is not waiting");
}
