//! Grants by email before a first sign-in, end to end through the development upstream: a
//! tenant registered directly with its admin named by email, app access given by email to an
//! officer and (after an invitation) to a vendor, the first platform admin named by email, each
//! redeemed when the person signs in; the refusals (bad address, a vendor the tenant did not
//! invite, duplicates, unknown app or tenant, callers without the right) and a grant to an
//! address that already has an account answering the same as one that has none.

use techpass::tenancy::invitations::NewInvitation;
use techpass::tenancy::tenants::{DirectTenant, FirstAdmin};
use techpass::tenancy::{self, pending, Actor, TenancyError};
use techpass_domain::tenancy::TenantStatus;
use techpass_store::testing::Backend;

use crate::signin::sign_in_via;
use crate::support::browser;
use crate::tenancy::{signed_in, start_with_clock, tenant_app, user, DAY, T0};

const ALICE: &str = "alice_tan@tech.gov.sg";
const BOB: &str = "bob_lim@hdb.gov.sg";
const DAVE: &str = "dave@vendorco.example";

fn direct(slug: Option<&str>, name: &str, admin: &str) -> DirectTenant {
    DirectTenant {
        slug: slug.map(String::from),
        name: name.into(),
        description: String::new(),
        purpose: String::new(),
        admin: admin.into(),
    }
}

fn invalid<T: std::fmt::Debug>(result: Result<T, TenancyError>, needle: &str) {
    match result {
        Err(TenancyError::Invalid(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected Invalid({needle}), got {other:?}"),
    }
}

async fn grants_by_email_are_redeemed_at_first_sign_in(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(
        backend,
        "e2e::pending::grants_by_email_are_redeemed_at_first_sign_in",
    )
    .await
    else {
        return;
    };
    let state = &server.state;
    let op = &Actor::Operator;

    // A tenant registered directly: active at once, its admin waiting for Bob's sign-in.
    let (tenant, first) = tenancy::tenants::create(state, op, direct(None, "Code Wiki", BOB))
        .await
        .unwrap();
    assert_eq!(tenant.slug, "code-wiki");
    assert_eq!(tenant.status, TenantStatus::Active);
    let FirstAdmin::Pending(admin_grant) = first else {
        panic!("Bob has never signed in: {first:?}");
    };
    assert_eq!(admin_grant.email, BOB);
    let approvals = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("tenant.approved".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(approvals
        .iter()
        .any(|a| a.tenant.as_deref() == Some(tenant.id.as_str())
            && a.details.contains("\"direct\":true")));
    let mails = state.store.list_emails(Some(BOB), 10, 0).await.unwrap();
    assert!(mails[0].subject.contains("Code Wiki"), "the admin is told");

    // Refusals of a direct registration.
    let taken = tenancy::tenants::create(state, op, direct(Some("code-wiki"), "Again", BOB)).await;
    assert!(matches!(taken, Err(TenancyError::Conflict(_))), "{taken:?}");
    invalid(
        tenancy::tenants::create(state, op, direct(None, "Vendor run", DAVE)).await,
        "public officer",
    );
    invalid(
        tenancy::tenants::create(state, op, direct(None, "Bad", "not-an-email")).await,
        "not an email address",
    );
    invalid(
        tenancy::tenants::create(state, op, direct(None, "42", BOB)).await,
        "slug",
    );
    invalid(
        tenancy::tenants::create(state, op, direct(Some("Bad Slug"), "Bad", BOB)).await,
        "slug",
    );
    let not_admin = tenancy::tenants::create(state, &user("someone"), direct(None, "X", BOB)).await;
    assert!(
        matches!(not_admin, Err(TenancyError::Forbidden(_))),
        "{not_admin:?}"
    );

    let (app, _) = tenant_app(&server, op, &tenant.id).await;

    // App access by email: an officer's address as it is (normalised), once.
    let alice_grant =
        pending::grant_app_access(state, op, &tenant.id, &app, " Alice_Tan@Tech.gov.sg ")
            .await
            .unwrap();
    assert_eq!(alice_grant.email, ALICE);
    let again = pending::grant_app_access(state, op, &tenant.id, &app, ALICE).await;
    assert!(matches!(again, Err(TenancyError::Conflict(_))), "{again:?}");
    invalid(
        pending::grant_app_access(state, op, &tenant.id, &app, "alice@").await,
        "not an email address",
    );
    // A vendor only once the tenant has invited them.
    invalid(
        pending::grant_app_access(state, op, &tenant.id, &app, DAVE).await,
        "invite the person to this tenant first",
    );
    tenancy::invitations::invite(
        state,
        op,
        &tenant.id,
        NewInvitation {
            email: DAVE.into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();
    let dave_grant = pending::grant_app_access(state, op, &tenant.id, &app, DAVE)
        .await
        .unwrap();
    let unknown_app = pending::grant_app_access(state, op, &tenant.id, "app_nope", ALICE).await;
    assert!(
        matches!(unknown_app, Err(TenancyError::NotFound("app"))),
        "{unknown_app:?}"
    );
    let unknown_tenant = pending::grant_app_access(state, op, "tnt_nope", &app, ALICE).await;
    assert!(
        matches!(unknown_tenant, Err(TenancyError::NotFound("tenant"))),
        "{unknown_tenant:?}"
    );
    let stranger =
        pending::grant_app_access(state, &user("someone"), &tenant.id, &app, ALICE).await;
    assert!(
        matches!(stranger, Err(TenancyError::Forbidden(_))),
        "{stranger:?}"
    );
    assert!(matches!(
        pending::list(state, &user("someone"), &tenant.id).await,
        Err(TenancyError::Forbidden(_))
    ));

    // The first platform admin, named before anyone signed in.
    assert!(pending::grant_platform_admin(state, op, ALICE)
        .await
        .unwrap());
    assert!(
        !pending::grant_platform_admin(state, op, ALICE)
            .await
            .unwrap(),
        "once"
    );
    assert!(pending::grant_platform_admin(state, op, BOB).await.unwrap());
    assert!(pending::revoke_platform_admin(state, op, BOB)
        .await
        .unwrap());
    assert!(!pending::revoke_platform_admin(state, op, BOB)
        .await
        .unwrap());
    assert!(matches!(
        pending::grant_platform_admin(state, &user("someone"), BOB).await,
        Err(TenancyError::Forbidden(_))
    ));

    // The clock stands still here: grants of one instant are listed by id.
    let mut listed: Vec<String> = pending::list(state, op, &tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    listed.sort();
    let mut expected = vec![
        admin_grant.id.clone(),
        alice_grant.id.clone(),
        dave_grant.id.clone(),
    ];
    expected.sort();
    assert_eq!(listed, expected);

    // Bob's first sign-in makes him the tenant's admin; Alice's gives her the app and the
    // platform.
    let bob = signed_in(&server, &browser(), "bob", BOB).await;
    assert!(state.store.is_tenant_admin(&tenant.id, &bob).await.unwrap());
    assert!(!state.store.is_platform_admin(&bob).await.unwrap());
    let alice = signed_in(&server, &browser(), "alice", ALICE).await;
    assert!(state.store.has_access(&app, &alice).await.unwrap());
    assert!(state.store.is_platform_admin(&alice).await.unwrap());
    assert!(!state.store.has_access(&app, &bob).await.unwrap());
    let left: Vec<String> = pending::list(state, &user(&bob), &tenant.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(
        left.as_slice(),
        std::slice::from_ref(&dave_grant.id),
        "only the vendor's is still waiting"
    );

    // A grant to an address that has an account answers and lists as one that has none, and
    // takes effect at that person's next sign-in.
    let bob_grant = pending::grant_app_access(state, &user(&bob), &tenant.id, &app, BOB)
        .await
        .unwrap();
    assert_eq!(bob_grant.kind, alice_grant.kind);
    assert!(!state.store.has_access(&app, &bob).await.unwrap());
    signed_in(&server, &browser(), "bob", BOB).await;
    assert!(state.store.has_access(&app, &bob).await.unwrap());

    // Withdrawn, a grant gives nothing: Dave signs in and is not assigned.
    let revoked = pending::revoke(state, &user(&bob), &tenant.id, &dave_grant.id)
        .await
        .unwrap();
    assert_eq!(revoked.email, DAVE);
    let twice = pending::revoke(state, &user(&bob), &tenant.id, &dave_grant.id).await;
    assert!(matches!(twice, Err(TenancyError::NotFound(_))), "{twice:?}");
    sign_in_via(
        &browser(),
        &server.base,
        "upstream=dev-vendors&return_to=/",
        "dave",
    )
    .await;
    let dave = state
        .store
        .find_users_by_email(DAVE)
        .await
        .unwrap()
        .remove(0);
    assert!(!state.store.has_access(&app, &dave.id).await.unwrap());
}

async fn a_vendor_grant_waits_for_the_tenant_s_invitation(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(
        backend,
        "e2e::pending::a_vendor_grant_waits_for_the_tenant_s_invitation",
    )
    .await
    else {
        return;
    };
    let state = &server.state;
    let op = &Actor::Operator;
    let (tenant, _) = tenancy::tenants::create(state, op, direct(Some("ci"), "CI", BOB))
        .await
        .unwrap();
    let (app, _) = tenant_app(&server, op, &tenant.id).await;
    let invitation = tenancy::invitations::invite(
        state,
        op,
        &tenant.id,
        NewInvitation {
            email: DAVE.into(),
            access_ends_at: Some(T0 + 30 * DAY),
        },
    )
    .await
    .unwrap();
    let grant = pending::grant_app_access(state, op, &tenant.id, &app, DAVE)
        .await
        .unwrap();
    // The invitation is revoked before Dave signs in: the grant is not redeemed, and stays
    // listed for an admin to withdraw.
    tenancy::invitations::revoke(state, op, &tenant.id, &invitation.id)
        .await
        .unwrap();
    sign_in_via(
        &browser(),
        &server.base,
        "upstream=dev-vendors&return_to=/",
        "dave",
    )
    .await;
    let dave = state
        .store
        .find_users_by_email(DAVE)
        .await
        .unwrap()
        .remove(0);
    assert!(!state.store.has_access(&app, &dave.id).await.unwrap());
    let listed = pending::list(state, op, &tenant.id).await.unwrap();
    assert!(listed.iter().any(|g| g.id == grant.id));
}

crate::both_backends!(
    grants_by_email_are_redeemed_at_first_sign_in,
    a_vendor_grant_waits_for_the_tenant_s_invitation,
);
