//! Conformance of the tenant and invitation contracts ([`crate::TenantStore`],
//! [`crate::InvitationStore`]), on every backend.

use crate::conformance::{tenant, user};
use crate::testing::TestDatabase;
use crate::{
    AcceptOutcome, Acceptance, AssignmentRecord, GrantRecord, GroupRecord, InvitationRecord,
    MembershipRecord, RefreshTokenRecord, RoleAssignmentRecord, StoreError, TenantAdminRecord,
    PRINCIPAL_USER,
};
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{InvitationStatus, TenantStatus};

crate::backend_tests!(
    "store::conformance_tenancy",
    tenants_are_stored_listed_and_unique,
    transition_tenant_is_compare_and_set_with_first_admin,
    concurrent_tenant_decisions_have_one_winner,
    tenant_admins_are_added_and_listed,
    last_tenant_admin_cannot_be_removed,
    concurrent_removals_leave_one_admin,
    platform_admins_are_granted_once,
    new_invitation_replaces_the_pending_one,
    invitations_are_found_and_listed,
    renewal_changes_the_link_and_counts_the_send,
    invitation_is_revoked_once,
    acceptance_registers_the_user_and_adds_the_membership,
    expired_invitation_is_not_accepted,
    ineligible_user_accepts_nothing,
    concurrent_acceptances_have_one_winner,
    expired_invitations_are_returned_once,
    ending_a_membership_revokes_only_that_tenant_s_access,
);

fn admin(tenant_id: &str, user_id: &str, added_at: i64) -> TenantAdminRecord {
    TenantAdminRecord {
        tenant_id: tenant_id.into(),
        user_id: user_id.into(),
        added_at,
        added_by: "platform".into(),
    }
}

async fn tenants_are_stored_listed_and_unique(db: &TestDatabase) {
    let store = db.store().await;
    let (t1, t2, mut t3) = (tenant("t1", 10), tenant("t2", 20), tenant("t3", 30));
    t3.status = TenantStatus::Active;
    for t in [&t3, &t1, &t2] {
        store.insert_tenant(t).await.unwrap();
    }
    assert_eq!(store.get_tenant("t1").await.unwrap().as_ref(), Some(&t1));
    assert_eq!(
        store.get_tenant_by_slug("t2").await.unwrap().as_ref(),
        Some(&t2)
    );
    assert_eq!(store.get_tenant("nope").await.unwrap(), None);
    assert_eq!(store.get_tenant_by_slug("nope").await.unwrap(), None);

    let mut same_slug = tenant("t4", 40);
    same_slug.slug = "t1".into();
    let err = store.insert_tenant(&same_slug).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let mut same_id = tenant("t1", 40);
    same_id.slug = "other".into();
    let err = store.insert_tenant(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let ids = |ts: Vec<crate::TenantRecord>| ts.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_tenants(None, 10, 0).await.unwrap()),
        vec!["t1", "t2", "t3"]
    );
    assert_eq!(
        ids(store.list_tenants(None, 1, 1).await.unwrap()),
        vec!["t2"]
    );
    assert_eq!(
        ids(store
            .list_tenants(Some(TenantStatus::Requested), 10, 0)
            .await
            .unwrap()),
        vec!["t1", "t2"]
    );
    assert_eq!(
        ids(store
            .list_tenants(Some(TenantStatus::Active), 10, 0)
            .await
            .unwrap()),
        vec!["t3"]
    );
}

async fn transition_tenant_is_compare_and_set_with_first_admin(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 10)).await.unwrap();
    assert!(store
        .transition_tenant(
            "t1",
            &[TenantStatus::Requested],
            TenantStatus::Active,
            "pa",
            Some("ok"),
            50,
            Some("u1")
        )
        .await
        .unwrap());
    let approved = store.get_tenant("t1").await.unwrap().unwrap();
    assert_eq!(approved.status, TenantStatus::Active);
    assert_eq!(approved.status_at, Some(50));
    assert_eq!(approved.status_by.as_deref(), Some("pa"));
    assert_eq!(approved.status_reason.as_deref(), Some("ok"));
    assert_eq!(
        store.tenant_admins("t1").await.unwrap(),
        vec![TenantAdminRecord {
            added_by: "pa".into(),
            ..admin("t1", "u1", 50)
        }]
    );
    // The same decision again: not in a `from` state any more, nothing written.
    assert!(!store
        .transition_tenant(
            "t1",
            &[TenantStatus::Requested],
            TenantStatus::Rejected,
            "pa2",
            None,
            60,
            Some("u2")
        )
        .await
        .unwrap());
    assert_eq!(store.get_tenant("t1").await.unwrap().unwrap(), approved);
    assert!(!store.is_tenant_admin("t1", "u2").await.unwrap());
    assert!(store
        .transition_tenant(
            "t1",
            &[TenantStatus::Requested, TenantStatus::Active],
            TenantStatus::Suspended,
            "pa",
            None,
            70,
            None
        )
        .await
        .unwrap());
    assert_eq!(
        store.get_tenant("t1").await.unwrap().unwrap().status,
        TenantStatus::Suspended
    );
    assert!(!store
        .transition_tenant(
            "nope",
            &[TenantStatus::Requested],
            TenantStatus::Active,
            "pa",
            None,
            70,
            None
        )
        .await
        .unwrap());
    assert!(!store
        .transition_tenant("t1", &[], TenantStatus::Active, "pa", None, 70, None)
        .await
        .unwrap());
}

async fn concurrent_tenant_decisions_have_one_winner(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 10)).await.unwrap();
    let decide = |to: TenantStatus, admin: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .transition_tenant("t1", &[TenantStatus::Requested], to, "pa", None, 50, admin)
                .await
                .unwrap()
        }
    };
    let (approved, rejected) = tokio::join!(
        decide(TenantStatus::Active, Some("u1")),
        decide(TenantStatus::Rejected, None)
    );
    assert!(approved ^ rejected, "{approved} {rejected}");
    let status = store.get_tenant("t1").await.unwrap().unwrap().status;
    assert_eq!(
        status,
        if approved {
            TenantStatus::Active
        } else {
            TenantStatus::Rejected
        }
    );
    assert_eq!(store.is_tenant_admin("t1", "u1").await.unwrap(), approved);
}

async fn tenant_admins_are_added_and_listed(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 10)).await.unwrap();
    store.insert_tenant(&tenant("t2", 20)).await.unwrap();
    assert!(store.add_tenant_admin(&admin("t1", "u2", 5)).await.unwrap());
    assert!(store.add_tenant_admin(&admin("t1", "u1", 6)).await.unwrap());
    assert!(!store.add_tenant_admin(&admin("t1", "u1", 7)).await.unwrap());
    assert!(store.add_tenant_admin(&admin("t2", "u1", 8)).await.unwrap());
    assert_eq!(
        store.tenant_admins("t1").await.unwrap(),
        vec![admin("t1", "u2", 5), admin("t1", "u1", 6)]
    );
    let of_u1: Vec<_> = store
        .tenants_of_admin("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(of_u1, vec!["t1", "t2"]);
    assert!(store.tenants_of_admin("u9").await.unwrap().is_empty());
    let mut mine = tenant("t3", 30);
    mine.requested_by = "u7".into();
    store.insert_tenant(&mine).await.unwrap();
    let requested: Vec<_> = store
        .tenants_requested_by("u7")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(requested, vec!["t3"]);
    assert!(store.tenants_requested_by("u1").await.unwrap().is_empty());
    assert!(store.is_tenant_admin("t1", "u2").await.unwrap());
    assert!(!store.is_tenant_admin("t2", "u2").await.unwrap());
}

async fn last_tenant_admin_cannot_be_removed(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 10)).await.unwrap();
    store.add_tenant_admin(&admin("t1", "u1", 1)).await.unwrap();
    store.add_tenant_admin(&admin("t1", "u2", 2)).await.unwrap();
    assert!(!store.remove_tenant_admin("t1", "u9").await.unwrap());
    assert!(store.remove_tenant_admin("t1", "u1").await.unwrap());
    let err = store.remove_tenant_admin("t1", "u2").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.tenant_admins("t1").await.unwrap(),
        vec![admin("t1", "u2", 2)]
    );
    assert!(!store.remove_tenant_admin("t1", "u1").await.unwrap());
}

async fn concurrent_removals_leave_one_admin(db: &TestDatabase) {
    let store = db.store().await;
    // Several tenants, so that the two removals really overlap at least once.
    for round in 0..5 {
        let t = format!("t{round}");
        store.insert_tenant(&tenant(&t, 10)).await.unwrap();
        store.add_tenant_admin(&admin(&t, "u1", 1)).await.unwrap();
        store.add_tenant_admin(&admin(&t, "u2", 2)).await.unwrap();
        let remove = |user_id: &'static str| {
            let (store, t) = (store.clone(), t.clone());
            async move { store.remove_tenant_admin(&t, user_id).await }
        };
        let (a, b) = tokio::join!(remove("u1"), remove("u2"));
        let outcomes = [a, b];
        let removed = outcomes.iter().filter(|r| matches!(r, Ok(true))).count();
        let refused = outcomes
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
            .count();
        assert_eq!((removed, refused), (1, 1), "{outcomes:?}");
        assert_eq!(store.tenant_admins(&t).await.unwrap().len(), 1);
    }
}

async fn platform_admins_are_granted_once(db: &TestDatabase) {
    let store = db.store().await;
    assert!(!store.is_platform_admin("u1").await.unwrap());
    assert!(store.grant_platform_admin("u1", "cli", 5).await.unwrap());
    assert!(!store.grant_platform_admin("u1", "cli", 6).await.unwrap());
    assert!(store.is_platform_admin("u1").await.unwrap());
    assert!(!store.is_platform_admin("u2").await.unwrap());
    // Taken away once; granted again afterwards.
    assert!(store.revoke_platform_admin("u1").await.unwrap());
    assert!(!store.revoke_platform_admin("u1").await.unwrap());
    assert!(!store.is_platform_admin("u1").await.unwrap());
    assert!(store
        .grant_platform_admin("u1", "admin-2", 7)
        .await
        .unwrap());
}

pub(crate) fn invitation(
    id: &str,
    tenant_id: &str,
    email: &str,
    created_at: i64,
) -> InvitationRecord {
    InvitationRecord {
        id: id.into(),
        tenant_id: tenant_id.into(),
        email: email.into(),
        token_hash: format!("token-{id}"),
        invited_by: "admin".into(),
        created_at,
        expires_at: created_at + 1_000,
        access_ends_at: Some(50_000),
        status: InvitationStatus::Pending,
        status_at: None,
        accepted_by: None,
        sent_count: 1,
    }
}

async fn new_invitation_replaces_the_pending_one(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_tenant(&tenant("t2", 1)).await.unwrap();
    let first = invitation("i1", "t1", "a@vendor.com", 10);
    assert!(store.insert_invitation(&first).await.unwrap().is_empty());
    let elsewhere = invitation("i2", "t2", "a@vendor.com", 15);
    assert!(
        store
            .insert_invitation(&elsewhere)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's invitation stays"
    );
    let second = invitation("i3", "t1", "a@vendor.com", 20);
    let replaced = store.insert_invitation(&second).await.unwrap();
    let expected = InvitationRecord {
        status: InvitationStatus::Replaced,
        status_at: Some(20),
        ..first
    };
    assert_eq!(replaced, vec![expected.clone()]);
    assert_eq!(store.get_invitation("i1").await.unwrap(), Some(expected));
    assert_eq!(
        store.get_invitation("i3").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.get_invitation("i2").await.unwrap().unwrap().status,
        InvitationStatus::Pending
    );
    let mut same_link = invitation("i4", "t1", "b@vendor.com", 30);
    same_link.token_hash = second.token_hash.clone();
    let err = store.insert_invitation(&same_link).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_invitation("i4").await.unwrap(), None);
}

async fn invitations_are_found_and_listed(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    for (id, email, at) in [
        ("i1", "a@x.sg", 10),
        ("i2", "b@x.sg", 20),
        ("i3", "c@x.sg", 30),
    ] {
        store
            .insert_invitation(&invitation(id, "t1", email, at))
            .await
            .unwrap();
    }
    assert!(store.revoke_invitation("i2", 40).await.unwrap());
    let found = store.find_invitation_by_token("token-i3").await.unwrap();
    assert_eq!(found, Some(invitation("i3", "t1", "c@x.sg", 30)));
    assert_eq!(
        store
            .find_invitation_by_token("token-i2")
            .await
            .unwrap()
            .unwrap()
            .status,
        InvitationStatus::Revoked,
        "whatever its status"
    );
    assert_eq!(store.find_invitation_by_token("nope").await.unwrap(), None);
    assert_eq!(store.get_invitation("nope").await.unwrap(), None);
    let ids = |is: Vec<InvitationRecord>| is.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let all = store
        .invitations_of_tenant("t1", None, 10, 0)
        .await
        .unwrap();
    assert_eq!(ids(all), vec!["i3", "i2", "i1"]);
    let page = store.invitations_of_tenant("t1", None, 1, 1).await.unwrap();
    assert_eq!(ids(page), vec!["i2"]);
    let pending = store
        .invitations_of_tenant("t1", Some(InvitationStatus::Pending), 10, 0)
        .await
        .unwrap();
    assert_eq!(ids(pending), vec!["i3", "i1"]);
    assert!(store
        .invitations_of_tenant("t2", None, 10, 0)
        .await
        .unwrap()
        .is_empty());
}

async fn renewal_changes_the_link_and_counts_the_send(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store
        .insert_invitation(&invitation("i1", "t1", "a@x.sg", 10))
        .await
        .unwrap();
    assert!(store.renew_invitation("i1", "fresh", 5_000).await.unwrap());
    assert_eq!(
        store.find_invitation_by_token("token-i1").await.unwrap(),
        None
    );
    let renewed = store
        .find_invitation_by_token("fresh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renewed.id.as_str(), renewed.expires_at, renewed.sent_count),
        ("i1", 5_000, 2)
    );
    assert!(store.revoke_invitation("i1", 20).await.unwrap());
    assert!(!store.renew_invitation("i1", "again", 6_000).await.unwrap());
    assert_eq!(store.find_invitation_by_token("again").await.unwrap(), None);
}

async fn invitation_is_revoked_once(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store
        .insert_invitation(&invitation("i1", "t1", "a@x.sg", 10))
        .await
        .unwrap();
    assert!(store.revoke_invitation("i1", 20).await.unwrap());
    assert!(!store.revoke_invitation("i1", 30).await.unwrap());
    assert!(!store.revoke_invitation("nope", 30).await.unwrap());
    let revoked = store.get_invitation("i1").await.unwrap().unwrap();
    assert_eq!(
        (revoked.status.as_str(), revoked.status_at),
        ("revoked", Some(20))
    );
}

fn acceptance(invitation_id: &str, user_id: &str, at: i64) -> Acceptance {
    Acceptance {
        invitation_id: invitation_id.into(),
        user_id: user_id.into(),
        at,
        status: UserStatus::Active,
        terms_version: Some("terms-1".into()),
        access_ends_at: Some(50_000),
    }
}

async fn acceptance_registers_the_user_and_adds_the_membership(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.insert_tenant(&tenant("t2", 1)).await.unwrap();
    store.upsert_user(&user("u1")).await.unwrap();
    store
        .insert_invitation(&invitation("i1", "t1", "u1@agency.gov.sg", 10))
        .await
        .unwrap();
    assert_eq!(
        store
            .accept_invitation(&acceptance("i1", "u1", 100))
            .await
            .unwrap(),
        AcceptOutcome::Accepted
    );
    let u = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(u.status, UserStatus::Active);
    assert_eq!(u.terms_version.as_deref(), Some("terms-1"));
    assert_eq!(
        (u.registered_at, u.access_ends_at),
        (Some(100), Some(50_000))
    );
    let accepted = store.get_invitation("i1").await.unwrap().unwrap();
    assert_eq!(accepted.status, InvitationStatus::Accepted);
    assert_eq!(accepted.status_at, Some(100));
    assert_eq!(accepted.accepted_by.as_deref(), Some("u1"));
    let membership = MembershipRecord {
        tenant_id: "t1".into(),
        user_id: "u1".into(),
        joined_at: 100,
        access_ends_at: Some(50_000),
        invitation_id: Some("i1".into()),
    };
    assert_eq!(
        store.members_of_tenant("t1").await.unwrap(),
        vec![membership.clone()]
    );
    assert_eq!(
        store
            .accept_invitation(&acceptance("i1", "u1", 110))
            .await
            .unwrap(),
        AcceptOutcome::NotPending
    );

    // A later invitation: registration time and terms stay, the membership is updated.
    let mut again = invitation("i2", "t1", "u1@agency.gov.sg", 200);
    again.access_ends_at = Some(60_000);
    store.insert_invitation(&again).await.unwrap();
    store
        .insert_invitation(&invitation("i3", "t2", "u1@agency.gov.sg", 210))
        .await
        .unwrap();
    let later = Acceptance {
        terms_version: None,
        access_ends_at: Some(60_000),
        ..acceptance("i2", "u1", 300)
    };
    assert_eq!(
        store.accept_invitation(&later).await.unwrap(),
        AcceptOutcome::Accepted
    );
    assert_eq!(
        store
            .accept_invitation(&acceptance("i3", "u1", 310))
            .await
            .unwrap(),
        AcceptOutcome::Accepted
    );
    let u = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(u.terms_version.as_deref(), Some("terms-1"));
    assert_eq!(u.registered_at, Some(100));
    let updated = MembershipRecord {
        access_ends_at: Some(60_000),
        invitation_id: Some("i2".into()),
        ..membership
    };
    assert_eq!(
        store.members_of_tenant("t1").await.unwrap(),
        vec![updated.clone()]
    );
    let tenants: Vec<_> = store
        .memberships_of_user("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.tenant_id)
        .collect();
    assert_eq!(tenants, vec!["t1", "t2"]);
    assert!(store.memberships_of_user("u9").await.unwrap().is_empty());
    // One membership by tenant and person: the updated one, and none where there is none.
    assert_eq!(
        store.membership("t1", "u1").await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        store
            .membership("t2", "u1")
            .await
            .unwrap()
            .map(|m| m.invitation_id),
        Some(Some("i3".into()))
    );
    assert_eq!(store.membership("t1", "u9").await.unwrap(), None);
    assert_eq!(store.membership("t9", "u1").await.unwrap(), None);
}

async fn expired_invitation_is_not_accepted(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    store.upsert_user(&user("u1")).await.unwrap();
    let i = invitation("i1", "t1", "u1@agency.gov.sg", 10);
    store.insert_invitation(&i).await.unwrap();
    // The link works until `expires_at`, exclusive.
    assert_eq!(
        store
            .accept_invitation(&acceptance("i1", "u1", i.expires_at))
            .await
            .unwrap(),
        AcceptOutcome::NotPending
    );
    assert_eq!(store.get_invitation("i1").await.unwrap(), Some(i));
    assert_eq!(store.get_user("u1").await.unwrap(), Some(user("u1")));
    assert!(store.members_of_tenant("t1").await.unwrap().is_empty());
    assert_eq!(
        store
            .accept_invitation(&acceptance("nope", "u1", 20))
            .await
            .unwrap(),
        AcceptOutcome::NotPending
    );
}

async fn ineligible_user_accepts_nothing(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    let mut suspended = user("u1");
    suspended.status = UserStatus::Suspended;
    store.upsert_user(&suspended).await.unwrap();
    let i = invitation("i1", "t1", "u1@agency.gov.sg", 10);
    store.insert_invitation(&i).await.unwrap();
    assert_eq!(
        store
            .accept_invitation(&acceptance("i1", "u1", 100))
            .await
            .unwrap(),
        AcceptOutcome::UserNotEligible
    );
    assert_eq!(
        store.get_invitation("i1").await.unwrap(),
        Some(i),
        "still pending"
    );
    assert_eq!(store.get_user("u1").await.unwrap(), Some(suspended));
    assert!(store.members_of_tenant("t1").await.unwrap().is_empty());
    assert_eq!(
        store
            .accept_invitation(&acceptance("i1", "nobody", 100))
            .await
            .unwrap(),
        AcceptOutcome::UserNotEligible
    );
    assert_eq!(
        store.get_invitation("i1").await.unwrap().unwrap().status,
        InvitationStatus::Pending
    );
}

async fn concurrent_acceptances_have_one_winner(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    for i in 0..6 {
        store.upsert_user(&user(&format!("u{i}"))).await.unwrap();
    }
    store
        .insert_invitation(&invitation("i1", "t1", "someone@x.sg", 10))
        .await
        .unwrap();
    let racers = (0..6).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .accept_invitation(&acceptance("i1", &format!("u{i}"), 100))
                .await
                .unwrap()
        })
    });
    let mut outcomes = Vec::new();
    for r in racers {
        outcomes.push(r.await.unwrap());
    }
    let accepted = outcomes
        .iter()
        .filter(|o| **o == AcceptOutcome::Accepted)
        .count();
    let not_pending = outcomes
        .iter()
        .filter(|o| **o == AcceptOutcome::NotPending)
        .count();
    assert_eq!((accepted, not_pending), (1, 5), "{outcomes:?}");
    assert_eq!(store.members_of_tenant("t1").await.unwrap().len(), 1);
}

async fn expired_invitations_are_returned_once(db: &TestDatabase) {
    let store = db.store().await;
    store.insert_tenant(&tenant("t1", 1)).await.unwrap();
    for (id, at) in [
        ("i1", 100),
        ("i2", 200),
        ("i3", 300),
        ("i4", 400),
        ("i5", 150),
    ] {
        let mut i = invitation(id, "t1", &format!("{id}@x.sg"), 1);
        i.expires_at = at;
        store.insert_invitation(&i).await.unwrap();
    }
    assert!(store.revoke_invitation("i5", 10).await.unwrap());
    let ids = |is: Vec<InvitationRecord>| is.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let expired = store.expire_invitations(200).await.unwrap();
    assert!(expired
        .iter()
        .all(|i| i.status == InvitationStatus::Expired && i.status_at == Some(200)));
    assert_eq!(ids(expired), vec!["i1", "i2"], "revoked ones stay revoked");
    assert!(store.expire_invitations(200).await.unwrap().is_empty());
    // Two replicas' jobs at once: each invitation is returned by one of them.
    let run = || {
        let store = store.clone();
        async move { store.expire_invitations(400).await.unwrap() }
    };
    let (a, b) = tokio::join!(run(), run());
    let mut both = ids(a);
    both.extend(ids(b));
    both.sort();
    assert_eq!(both, vec!["i3", "i4"]);
    assert_eq!(
        store.get_invitation("i5").await.unwrap().unwrap().status,
        InvitationStatus::Revoked
    );
}

async fn ending_a_membership_revokes_only_that_tenant_s_access(db: &TestDatabase) {
    let store = db.store().await;
    // u1 is a member of t1 and t2 (app c1 of t1, c2 of t2), with a grant, refresh token,
    // assignment, role and group at each; u2 is another member of t1.
    for (t, c, g) in [("t1", "c1", "g1"), ("t2", "c2", "g2")] {
        store.insert_tenant(&tenant(t, 1)).await.unwrap();
        let mut app = crate::conformance::client(c);
        app.tenant_id = Some(t.into());
        store.insert_client(&app, &[]).await.unwrap();
        store
            .insert_group(&GroupRecord {
                id: g.into(),
                tenant_id: t.into(),
                name: "devs".into(),
                created_at: 1,
            })
            .await
            .unwrap();
        assert!(store.define_role(c, "dev").await.unwrap());
    }
    for u in ["u1", "u2"] {
        store.upsert_user(&user(u)).await.unwrap();
    }
    let grant = |id: &str, client: &str, u: &str| GrantRecord {
        id: id.into(),
        client_id: client.into(),
        user_id: Some(u.into()),
        session_hash: None,
        scope: "openid offline_access".into(),
        auth_time: Some(5),
        amr: vec![],
        acr: None,
        created_at: 5,
        expires_at: 100_000,
        revoked_at: None,
        dpop_jkt: None,
    };
    for (inv, t, u, g, c, gr) in [
        ("i1", "t1", "u1", "g1", "c1", "gr1"),
        ("i2", "t2", "u1", "g2", "c2", "gr2"),
        ("i3", "t1", "u2", "g1", "c1", "gr3"),
    ] {
        store
            .insert_invitation(&invitation(inv, t, &format!("{u}@vendor.example"), 10))
            .await
            .unwrap();
        assert_eq!(
            store
                .accept_invitation(&acceptance(inv, u, 100))
                .await
                .unwrap(),
            AcceptOutcome::Accepted
        );
        store.insert_grant(&grant(gr, c, u)).await.unwrap();
        store
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: format!("r-{gr}"),
                grant_id: gr.into(),
                created_at: 5,
                expires_at: 100_000,
                used_at: None,
            })
            .await
            .unwrap();
        store
            .assign(&AssignmentRecord {
                client_id: c.into(),
                principal_type: PRINCIPAL_USER.into(),
                principal_id: u.into(),
                assigned_at: 100,
                assigned_by: "admin".into(),
            })
            .await
            .unwrap();
        store
            .assign_role(&RoleAssignmentRecord {
                client_id: c.into(),
                role: "dev".into(),
                principal_type: PRINCIPAL_USER.into(),
                principal_id: u.into(),
            })
            .await
            .unwrap();
        assert!(store.add_group_member(g, u).await.unwrap());
    }

    // A pending invitation of t1 (an extension) and one of t2 to u1's email.
    let u1_email = store.get_user("u1").await.unwrap().unwrap().email.unwrap();
    for (inv, t) in [("i4", "t1"), ("i5", "t2")] {
        store
            .insert_invitation(&invitation(inv, t, &u1_email.to_lowercase(), 500))
            .await
            .unwrap();
    }
    let ended = store
        .end_membership("t1", "u1", 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ended.membership,
        MembershipRecord {
            tenant_id: "t1".into(),
            user_id: "u1".into(),
            joined_at: 100,
            access_ends_at: Some(1_000),
            invitation_id: Some("i1".into()),
        }
    );
    assert_eq!(
        (
            ended.grants_revoked,
            ended.assignments_removed,
            ended.roles_removed,
            ended.groups_left
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(ended.invitations_revoked, 1);
    let i4 = store.get_invitation("i4").await.unwrap().unwrap();
    assert_eq!((i4.status.as_str(), i4.status_at), ("revoked", Some(1_000)));
    let i5 = store.get_invitation("i5").await.unwrap().unwrap();
    assert_eq!(i5.status, InvitationStatus::Pending);
    // Kept for the record, with its end date.
    assert_eq!(
        store.membership("t1", "u1").await.unwrap(),
        Some(ended.membership.clone())
    );
    let g1 = store.get_grant("gr1").await.unwrap().unwrap();
    assert_eq!(g1.revoked_at, Some(1_000));
    let r1 = store.get_refresh_token("r-gr1").await.unwrap().unwrap();
    assert_eq!(r1.used_at, Some(1_000));
    assert!(!store.has_access("c1", "u1").await.unwrap());
    assert!(store.roles_of_user("c1", "u1").await.unwrap().is_empty());
    assert_eq!(store.group_members("g1").await.unwrap(), vec!["u2"]);

    // Tenant t2, and the other member of t1, are untouched.
    assert_eq!(
        store
            .membership("t2", "u1")
            .await
            .unwrap()
            .unwrap()
            .access_ends_at,
        Some(50_000)
    );
    for gr in ["gr2", "gr3"] {
        assert_eq!(store.get_grant(gr).await.unwrap().unwrap().revoked_at, None);
        let r = store
            .get_refresh_token(&format!("r-{gr}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.used_at, None);
    }
    assert!(store.has_access("c2", "u1").await.unwrap());
    assert!(store.has_access("c1", "u2").await.unwrap());
    assert_eq!(store.roles_of_user("c2", "u1").await.unwrap(), vec!["dev"]);
    assert_eq!(store.group_members("g2").await.unwrap(), vec!["u1"]);

    // Ending again keeps the first end date; a non-member ends nothing.
    let again = store
        .end_membership("t1", "u1", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.membership.access_ends_at, Some(1_000));
    assert_eq!(again.grants_revoked, 0);
    assert_eq!(
        store.end_membership("t1", "nobody", 2_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.end_membership("nope", "u1", 2_000).await.unwrap(),
        None
    );
}
