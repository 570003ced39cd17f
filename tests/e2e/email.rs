//! Email authority (`../shared/AZURE.md` §3, issue 13 item 7) through the development upstream:
//! Erin is a B2B guest in the WOG directory whose `tech.gov.sg` address the directory did not
//! verify. Under `email_authority = "verified"` (the default) that address neither makes her an
//! officer nor matches the invitation sent to it; under `"trusted"` it does both.

use std::sync::Arc;

use techpass::tenancy::invitations::NewInvitation;
use techpass::tenancy::{self};
use techpass_domain::account::EmailAuthority;
use techpass_domain::gate::UserStatus;
use techpass_domain::{ManualClock, Timestamp};
use techpass_store::testing::{Backend, TestDatabase};
use techpass_store::AuditFilter;

use crate::signin::sign_in_via_hint;
use crate::support::{browser, see_other, test_config, TempDir, TestServer};
use crate::tenancy::{
    accept, approved_tenant, invitation_link, open_link, signed_in, user, DAY, T0,
};

const ERIN: &str = "erin_goh@tech.gov.sg";

async fn start(backend: Backend, test: &str, authority: EmailAuthority) -> Option<TestServer> {
    let db = TestDatabase::new(backend, test).await?;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.dev_upstream.email_authority = authority;
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    Some(TestServer::start_with(config, clock, dir, Some(db)).await)
}

/// Alice's tenant invites Erin's address; returns the link from the email.
async fn invite_erin(server: &TestServer) -> String {
    let alice = signed_in(server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(server, &alice, "erin-team").await;
    tenancy::invitations::invite(
        &server.state,
        &user(&alice),
        &tenant,
        NewInvitation {
            email: ERIN.into(),
            access_ends_at: Some(T0 + 10 * DAY),
        },
    )
    .await
    .unwrap();
    invitation_link(server, ERIN).await
}

async fn unverified_email_neither_classifies_nor_matches_an_invitation(backend: Backend) {
    let Some(server) = start(backend, "e2e::email_unverified", EmailAuthority::Verified).await
    else {
        return;
    };
    let link = invite_erin(&server).await;

    // The picker lists her, with what she is for.
    let b = browser();
    let login = b
        .get(server.url("/login?return_to=%2F&login_hint=erin_goh%40tech.gov.sg"))
        .send()
        .await
        .unwrap();
    let picker = b.get(see_other(&login)).send().await.unwrap();
    let html = picker.text().await.unwrap();
    assert!(html.contains("Erin Goh"), "{html}");
    assert!(html.contains("NOT verified"), "{html}");

    // Following the invitation sent to her unverified address: TechPass will not take that
    // address as an officer's, and the WOG directory admits only officers, so the sign-in is
    // refused with a page that says why and what to do, not a 500.
    let b = browser();
    let first = b.get(&link).send().await.unwrap();
    assert_eq!(see_other(&first), "/invite");
    let page = b.get(server.url("/invite")).send().await.unwrap();
    let login = see_other(&page);
    assert!(login.starts_with("/login?"), "{login}");
    let done = sign_in_via_hint(&b, &server.base, &login, "erin").await;
    assert_eq!(done.status(), 403);
    let html = done.text().await.unwrap();
    assert!(html.contains("Email address not verified"), "{html}");
    assert!(html.contains("own agency account"), "{html}");

    // Audited with the reason; no account made, the invitation still waits.
    let denied = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("signin".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .collect::<Vec<_>>();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].reason.as_deref(), Some("email_unverified"));
    assert_eq!(denied[0].upstream.as_deref(), Some("dev-wog"));
    assert!(server
        .state
        .store
        .find_users_by_email(ERIN)
        .await
        .unwrap()
        .is_empty());
    let waiting = server
        .state
        .store
        .pending_invitations_to_email(ERIN, T0 + 1)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
}

async fn trusted_email_classifies_and_matches_the_invitation(backend: Backend) {
    let Some(server) = start(backend, "e2e::email_trusted", EmailAuthority::Trusted).await else {
        return;
    };
    let link = invite_erin(&server).await;
    let b = browser();
    let page = open_link(&server, &b, &link, "erin").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let accepted = accept(&server, &b, &html).await;
    assert!(
        accepted.status().is_success() || accepted.status().is_redirection(),
        "{}",
        accepted.status()
    );
    let erin = server
        .state
        .store
        .find_users_by_email(ERIN)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(erin.account_type, "public_officer");
    assert_eq!(erin.status, UserStatus::Registered);
    assert!(
        erin.email_verified,
        "the operator vouches for this upstream's addresses"
    );
    assert!(server
        .state
        .store
        .pending_invitations_to_email(ERIN, T0 + 1)
        .await
        .unwrap()
        .is_empty());
}

/// An upstream that admits vendors, under "verified": Dave (a guest, his address unproven)
/// signs in as a vendor, but the invitation sent to his address refuses him with a page.
#[tokio::test]
async fn an_invitation_refuses_an_unverified_address_with_a_page() {
    use techpass::config::{AccountTypeName, MfaMode, UpstreamConfig};
    use techpass::tenancy::tenants::{self, DirectTenant};
    use techpass::tenancy::Actor;
    use techpass_domain::{Clock, SystemClock};
    use techpass_upstream::dev::{self, Tamper};
    use tokio::net::TcpListener;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (upstream, upstream_task) =
        crate::support::standalone_upstream(&base, clock.clone(), Tamper::None).await;
    let issuer = upstream.issuer(dev::VENDOR_TENANT_ID);
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.dev_upstream.enabled = Some(false);
    config.upstreams = vec![UpstreamConfig {
        id: "vendors".into(),
        display_name: "Vendor".into(),
        issuer,
        client_id: "techpass".into(),
        client_secret: Some(crate::support::secret("upstream-secret")),
        client_secret_env: None,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        allowed_tenants: vec![dev::VENDOR_TENANT_ID.into()],
        account_types: vec![AccountTypeName::Vendor],
        mfa: MfaMode::Amr,
        mfa_amr_values: vec!["mfa".into()],
        email_authority: EmailAuthority::Verified,
    }];
    let server = TestServer::start_on(listener, config, clock, dir, Some(db)).await;

    let (tenant, _) = tenants::create(
        &server.state,
        &Actor::Operator,
        DirectTenant {
            slug: None,
            name: "Agency Tools".into(),
            description: String::new(),
            purpose: String::new(),
            admin: "owner@agency.gov.sg".into(),
        },
    )
    .await
    .unwrap();
    tenancy::invitations::invite(
        &server.state,
        &Actor::Operator,
        &tenant.id,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(server.state.clock.now().as_secs() + 10 * DAY),
        },
    )
    .await
    .unwrap();
    let link = invitation_link(&server, "dave@vendorco.example").await;
    let b = browser();
    let page = open_link(&server, &b, &link, "dave").await;
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Your email address is not verified"),
        "{html}"
    );
    assert!(html.contains("invitation_email_unverified"), "{html}");
    let dave = server
        .state
        .store
        .find_users_by_email("dave@vendorco.example")
        .await
        .unwrap()
        .remove(0);
    let refused = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("invitation.accept".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|e| e.outcome == "denied"
        && e.reason.as_deref() == Some("invitation_email_unverified")
        && e.tenant.as_deref() == Some(tenant.id.as_str())));
    assert_eq!(dave.account_type, "vendor");
    assert!(!dave.email_verified, "passed on to apps as unverified");
    assert_eq!(
        server
            .state
            .store
            .pending_invitations_to_email(
                "dave@vendorco.example",
                server.state.clock.now().as_secs()
            )
            .await
            .unwrap()
            .len(),
        1,
        "the invitation still waits"
    );
    server.stop().await;
    upstream_task.abort();
}

crate::both_backends!(
    unverified_email_neither_classifies_nor_matches_an_invitation,
    trusted_email_classifies_and_matches_the_invitation,
);
