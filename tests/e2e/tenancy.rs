//! The tenant model end to end through the development upstream: a tenant requested, approved
//! and given an app; a vendor invited, accepting in the browser, signing in only once given
//! access, and refused after the access end date (injected clock); the invitation link's
//! failure cases; tenant suspension and removed access stopping the next refresh; groups and
//! roles scoped to the tenant in tokens.

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;
use techpass::tenancy::access::Principal;
use techpass::tenancy::apps::AppSpec;
use techpass::tenancy::invitations::NewInvitation;
use techpass::tenancy::tenants::NewTenant;
use techpass::tenancy::{self, Actor, TenancyError};
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::InvitationStatus;
use techpass_domain::tenancy::TenantAction;
use techpass_domain::tenancy::TenantStatus;
use techpass_domain::{ManualClock, Timestamp};
use techpass_store::testing::{Backend, TestDatabase};

use crate::provider::APP_CALLBACK;
use crate::signin::{register_if_asked, sign_in_via_hint};
use crate::support::{browser, client, see_other, test_config, TempDir, TestServer};

pub const DAY: i64 = 86_400;
pub const T0: i64 = 1_800_000_000;

/// A server on `backend` whose clock the test moves.
pub async fn start_with_clock(
    backend: Backend,
    test: &str,
) -> Option<(TestServer, Arc<ManualClock>)> {
    let db = TestDatabase::new(backend, test).await?;
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    Some((server, clock))
}

/// Signs `person` in at TechPass (registering an officer on the way) and returns their user id.
pub async fn signed_in(
    server: &TestServer,
    b: &reqwest::Client,
    person: &str,
    email: &str,
) -> String {
    let login = format!(
        "/login?return_to=%2F&login_hint={}",
        email.replace('@', "%40")
    );
    let done = sign_in_via_hint(b, &server.base, &login, person).await;
    let next = register_if_asked(b, &server.base, &see_other(&done)).await;
    assert_eq!(next, "/", "{person} lands on the home page");
    server
        .state
        .store
        .find_users_by_email(email)
        .await
        .unwrap()
        .remove(0)
        .id
}

pub fn user(id: &str) -> Actor {
    Actor::User {
        id: id.to_string(),
        platform_admin: false,
    }
}

/// Alice requests tenant `slug`, the operator approves it: returns (tenant id, Alice's id).
pub async fn approved_tenant(server: &TestServer, alice: &str, slug: &str) -> String {
    let tenant = tenancy::tenants::request(
        &server.state,
        &user(alice),
        NewTenant {
            slug: slug.into(),
            name: format!("Tenant {slug}"),
            description: "A toolchain service".into(),
            purpose: "Testing".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(tenant.status, TenantStatus::Requested);
    // The requester follows the request before it is approved; nobody else sees it.
    let seen = tenancy::tenants::get(&server.state, &user(alice), &tenant.id)
        .await
        .unwrap();
    assert_eq!(seen.status, TenantStatus::Requested);
    let mine = tenancy::tenants::list(&server.state, &user(alice), None, 50, 0)
        .await
        .unwrap();
    assert!(mine.iter().any(|t| t.id == tenant.id));
    let stranger = tenancy::tenants::get(&server.state, &user("someone-else"), &tenant.id).await;
    assert!(
        matches!(stranger, Err(TenancyError::Forbidden(_))),
        "{stranger:?}"
    );
    let approved = tenancy::tenants::decide(
        &server.state,
        &Actor::Operator,
        &tenant.id,
        TenantAction::Approve,
        None,
    )
    .await
    .unwrap();
    assert_eq!(approved.status, TenantStatus::Active);
    tenant.id
}

pub async fn tenant_app(server: &TestServer, actor: &Actor, tenant_id: &str) -> (String, String) {
    let created = tenancy::apps::create(
        &server.state,
        actor,
        tenant_id,
        AppSpec {
            name: "Wiki".into(),
            homepage: None,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            confidential: true,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            access_policy: Some(AccessPolicy::Assigned),
            user_assignment_required: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
        },
    )
    .await
    .unwrap();
    (created.client_id, created.client_secret.unwrap())
}

/// The secret link of the newest email to `to`, from the outbox.
pub async fn invitation_link(server: &TestServer, to: &str) -> String {
    let mails = server
        .state
        .store
        .list_emails(Some(to), 10, 0)
        .await
        .unwrap();
    let body = &mails.first().expect("an invitation email").body;
    body.split_whitespace()
        .find(|w| w.contains("/invite?token="))
        .expect("a link in the email")
        .to_string()
}

/// Follows the link in `b`, signing in as `person` if asked; returns the invitation page.
pub async fn open_link(
    server: &TestServer,
    b: &reqwest::Client,
    link: &str,
    person: &str,
) -> reqwest::Response {
    let first = b.get(link).send().await.unwrap();
    assert_eq!(
        see_other(&first),
        "/invite",
        "the secret leaves the URL at once"
    );
    let page = b.get(server.url("/invite")).send().await.unwrap();
    if page.status() == 303 {
        let login = see_other(&page);
        assert!(login.starts_with("/login?"), "{login}");
        let done = sign_in_via_hint(b, &server.base, &login, person).await;
        assert_eq!(see_other(&done), "/invite");
        return b.get(server.url("/invite")).send().await.unwrap();
    }
    page
}

pub fn field(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .to_string()
}

pub async fn accept(
    server: &TestServer,
    b: &reqwest::Client,
    page_html: &str,
) -> reqwest::Response {
    let mut form = vec![("csrf_token", field(page_html, "csrf_token"))];
    if page_html.contains("accept_terms") {
        form.push(("terms_version", field(page_html, "terms_version")));
        form.push(("accept_terms", "yes".into()));
    }
    b.post(server.url("/invite"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

pub fn authorize_url(server: &TestServer, client_id: &str, hint: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st")
        .append_pair("login_hint", hint);
    url.to_string()
}

/// Where /authorize sends an already signed-in browser: the app's callback (code or error) or a
/// denial page (status, body).
pub async fn authorize(
    server: &TestServer,
    b: &reqwest::Client,
    client_id: &str,
    hint: &str,
) -> Result<String, (u16, String)> {
    let r = b
        .get(authorize_url(server, client_id, hint))
        .send()
        .await
        .unwrap();
    if r.status() == 303 {
        let to = see_other(&r);
        let url = url::Url::parse(&to).unwrap();
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned());
        return code.ok_or((303, to));
    }
    Err((r.status().as_u16(), r.text().await.unwrap()))
}

pub async fn tokens(server: &TestServer, client_id: &str, secret: &str, code: &str) -> Value {
    let r = client()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", APP_CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn refresh(server: &TestServer, client_id: &str, secret: &str, rt: &str) -> (u16, Value) {
    let r = client()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn vendor_invited_accepts_signs_in_then_expires(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::vendor_journey").await else {
        return;
    };
    let state = &server.state;
    let alice_browser = browser();
    let alice = signed_in(&server, &alice_browser, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);
    let (client_id, secret) = tenant_app(&server, &admin, &tenant).await;
    // Approval told Alice by email.
    let alice_mail = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert!(
        alice_mail.iter().any(|m| m.subject.contains("is approved")),
        "{alice_mail:?}"
    );

    // A vendor needs an end date, within a year.
    let no_end = tenancy::invitations::invite(
        state,
        &admin,
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: None,
        },
    )
    .await;
    assert!(
        matches!(no_end, Err(TenancyError::Invalid(_))),
        "{no_end:?}"
    );
    let too_far = tenancy::invitations::invite(
        state,
        &admin,
        &tenant,
        NewInvitation {
            email: "dave@vendorco.example".into(),
            access_ends_at: Some(T0 + 400 * DAY),
        },
    )
    .await;
    assert!(
        matches!(too_far, Err(TenancyError::Invalid(_))),
        "{too_far:?}"
    );
    // Within the refresh token's idle and absolute lifetimes, so only the gate can refuse.
    let ends = T0 + 3600;
    let invitation = tenancy::invitations::invite(
        state,
        &admin,
        &tenant,
        NewInvitation {
            email: "Dave@VendorCo.example".into(),
            access_ends_at: Some(ends),
        },
    )
    .await
    .unwrap();
    assert_eq!(invitation.email, "dave@vendorco.example");
    let link = invitation_link(&server, "dave@vendorco.example").await;
    let stored = state
        .store
        .get_invitation(&invitation.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !link.contains(&stored.token_hash),
        "only a hash of the link is stored"
    );

    // Dave first signs in without the link (from /login, to the portal): he is told where his
    // invitation waits, not to ask for one.
    let lost = browser();
    let done = sign_in_via_hint(
        &lost,
        &server.base,
        "/login?return_to=%2Fportal&login_hint=dave%40vendorco.example",
        "dave",
    )
    .await;
    let to_portal = lost
        .get(server.url(&see_other(&done)))
        .send()
        .await
        .unwrap();
    let register = see_other(&to_portal);
    assert!(register.starts_with("/register"), "{register}");
    let told = lost.get(server.url(&register)).send().await.unwrap();
    assert_eq!(told.status(), 403);
    let told = told.text().await.unwrap();
    assert!(told.contains("Your invitation is waiting"), "{told}");
    assert!(told.contains("Tenant wiki") && told.contains("dave@vendorco.example"));
    assert!(!told.contains("Ask your project manager"));

    // Dave opens the link, signs in through the vendor directory, and accepts.
    let dave_browser = browser();
    let page = open_link(&server, &dave_browser, &link, "dave").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("You are invited to Tenant wiki"), "{html}");
    assert!(!html.contains("accept_terms"), "vendors do not register");
    // Without the CSRF token the acceptance is refused and nothing changes.
    let forged = dave_browser
        .post(server.url("/invite"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        state
            .store
            .get_invitation(&invitation.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        InvitationStatus::Pending
    );
    let accepted = accept(&server, &dave_browser, &html).await;
    assert_eq!(accepted.status(), 200);
    assert!(accepted
        .text()
        .await
        .unwrap()
        .contains("You joined Tenant wiki"));
    let dave = state
        .store
        .find_users_by_email("dave@vendorco.example")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(dave.status, UserStatus::Active);
    assert_eq!(dave.access_ends_at, Some(ends));
    let members = state.store.members_of_tenant(&tenant).await.unwrap();
    assert!(members.iter().any(|m| m.user_id == dave.id));
    // The inviter hears of it.
    let alice_mail = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert!(alice_mail
        .iter()
        .any(|m| m.subject.contains("accepted your invitation")));
    // The link works once.
    let again = open_link(&server, &dave_browser, &link, "dave").await;
    assert_eq!(again.status(), 403);
    assert!(again.text().await.unwrap().contains("already used"));

    // Assignment is required: no access yet, then access.
    let denied = authorize(&server, &dave_browser, &client_id, "dave@vendorco.example").await;
    let (status, body) = denied.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no_access"), "{body}");
    tenancy::access::assign(
        state,
        &admin,
        &tenant,
        &client_id,
        &Principal::User(dave.id.clone()),
    )
    .await
    .unwrap();
    let code = authorize(&server, &dave_browser, &client_id, "dave@vendorco.example")
        .await
        .unwrap();
    let t = tokens(&server, &client_id, &secret, &code).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["account_type"],
        "vendor"
    );
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let (status, t2) = refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(status, 200, "{t2}");
    let rt = t2["refresh_token"].as_str().unwrap().to_string();

    // Past the access end date: the next refresh is refused, and the lifecycle job expires him.
    clock.set(Timestamp(ends + 1));
    let (status, refused) = refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant");
    let denials = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("token.denied".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denials[0].reason.as_deref(), Some("access_expired"));
    let report = techpass::jobs::run_once(state).await;
    assert!(report.transitions >= 1, "{report:?}");
    let dave = state.store.get_user(&dave.id).await.unwrap().unwrap();
    assert_eq!(dave.status, UserStatus::Expired);
    server.stop().await;
}

async fn invitation_links_that_cannot_be_used(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::invitation_failures").await else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "ci").await;
    let admin = user(&alice);
    let invite = |email: &'static str| {
        // One second apart, so "the newest email" is well defined.
        clock.advance(1);
        tenancy::invitations::invite(
            state,
            &admin,
            &tenant,
            NewInvitation {
                email: email.into(),
                access_ends_at: Some(T0 + 10 * DAY),
            },
        )
    };

    // Replaced: a second invitation to the same address makes the first link useless.
    invite("dave@vendorco.example").await.unwrap();
    let first = invitation_link(&server, "dave@vendorco.example").await;
    let second_inv = invite("dave@vendorco.example").await.unwrap();
    let second = invitation_link(&server, "dave@vendorco.example").await;
    assert_ne!(first, second);
    let b = browser();
    let page = open_link(&server, &b, &first, "dave").await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("not valid"));

    // Revoked.
    tenancy::invitations::revoke(state, &admin, &tenant, &second_inv.id)
        .await
        .unwrap();
    let page = open_link(&server, &b, &second, "dave").await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("withdrawn"));
    let again = tenancy::invitations::revoke(state, &admin, &tenant, &second_inv.id).await;
    assert!(matches!(again, Err(TenancyError::Conflict(_))));

    // Accepted by a different email: Dave cannot take an invitation addressed to someone else.
    invite("dave.kumar@vendorco.example").await.unwrap();
    let other = invitation_link(&server, "dave.kumar@vendorco.example").await;
    let page = open_link(&server, &b, &other, "dave").await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("another email address"));

    // Expired: after the link lifetime, and the job marks it and tells the inviter.
    let expiring = invite("dave@vendorco.example").await.unwrap();
    let link = invitation_link(&server, "dave@vendorco.example").await;
    clock.advance(5 * DAY + 1);
    let page = open_link(&server, &b, &link, "dave").await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("expired"));
    let report = techpass::jobs::run_once(state).await;
    assert!(report.invitations_expired >= 1, "{report:?}");
    assert_eq!(
        state
            .store
            .get_invitation(&expiring.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        InvitationStatus::Expired
    );
    let mail = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert!(mail.iter().any(|m| m.subject.contains("expired")));
    // A second run does not tell her twice.
    techpass::jobs::run_once(state).await;
    let again = state
        .store
        .list_emails(Some("alice_tan@tech.gov.sg"), 10, 0)
        .await
        .unwrap();
    assert_eq!(mail.len(), again.len());
    let dave = state
        .store
        .find_users_by_email("dave@vendorco.example")
        .await
        .unwrap();
    assert_eq!(
        dave[0].status,
        UserStatus::Unregistered,
        "no failed link made Dave a user"
    );
    server.stop().await;
}

async fn tenant_state_and_access_gate_every_refresh(backend: Backend) {
    let Some((server, _clock)) = start_with_clock(backend, "e2e::tenant_gate").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "registry").await;
    let other_tenant = approved_tenant(&server, &alice, "tickets").await;
    let admin = user(&alice);
    let (client_id, secret) = tenant_app(&server, &admin, &tenant).await;
    let (other_id, other_secret) = tenant_app(&server, &admin, &other_tenant).await;

    // A group and a role in the first tenant; a group in the second.
    let devs = tenancy::access::create_group(state, &admin, &tenant, "devs")
        .await
        .unwrap();
    let dup = tenancy::access::create_group(state, &admin, &tenant, "devs").await;
    assert!(matches!(dup, Err(TenancyError::Conflict(_))));
    let ops = tenancy::access::create_group(state, &admin, &other_tenant, "ops")
        .await
        .unwrap();
    tenancy::access::set_membership(state, &admin, &tenant, &devs.id, &alice, true)
        .await
        .unwrap();
    tenancy::access::set_membership(state, &admin, &other_tenant, &ops.id, &alice, true)
        .await
        .unwrap();
    tenancy::access::define_role(state, &admin, &tenant, &client_id, "publisher")
        .await
        .unwrap();
    tenancy::access::grant_role(
        state,
        &admin,
        &tenant,
        &client_id,
        "publisher",
        &Principal::Group(devs.id.clone()),
        true,
    )
    .await
    .unwrap();
    // Access through the group; the other tenant's group cannot be used here.
    let foreign = tenancy::access::assign(
        state,
        &admin,
        &tenant,
        &client_id,
        &Principal::Group(ops.id.clone()),
    )
    .await;
    assert!(
        matches!(foreign, Err(TenancyError::NotFound(_))),
        "{foreign:?}"
    );
    tenancy::access::assign(
        state,
        &admin,
        &tenant,
        &client_id,
        &Principal::Group(devs.id.clone()),
    )
    .await
    .unwrap();
    tenancy::access::assign(
        state,
        &admin,
        &other_tenant,
        &other_id,
        &Principal::User(alice.clone()),
    )
    .await
    .unwrap();

    // The portal's access page says who holds each role.
    let access = techpass::paths::fill(
        techpass::paths::ACCESS,
        &[("tenant_id", &tenant), ("client_id", &client_id)],
    );
    let page = b.get(server.url(&access)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("registry:devs (group)"), "{html}");

    let code = authorize(&server, &b, &client_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap();
    let t = tokens(&server, &client_id, &secret, &code).await;
    for token in ["id_token", "access_token"] {
        let c = claims(t[token].as_str().unwrap());
        assert_eq!(
            c["groups"],
            serde_json::json!(["registry:devs"]),
            "{token}: only this tenant's groups"
        );
        assert_eq!(c["roles"], serde_json::json!(["publisher"]), "{token}");
    }
    let code = authorize(&server, &b, &other_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap();
    let other = tokens(&server, &other_id, &other_secret, &code).await;
    let c = claims(other["access_token"].as_str().unwrap());
    assert_eq!(c["groups"], serde_json::json!(["tickets:ops"]));
    assert!(c.get("roles").is_none(), "no roles of another app");

    // Tenant suspended: the next refresh is refused; reinstated: it works again.
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let no_reason = tenancy::tenants::decide(
        state,
        &Actor::Operator,
        &tenant,
        TenantAction::Suspend,
        None,
    )
    .await;
    assert!(matches!(no_reason, Err(TenancyError::Invalid(_))));
    tenancy::tenants::decide(
        state,
        &Actor::Operator,
        &tenant,
        TenantAction::Suspend,
        Some("audit"),
    )
    .await
    .unwrap();
    let (status, body) = refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // Audited under the tenant, where its admins read it.
    let under_tenant = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            tenant: Some(tenant.clone()),
            event: Some("token.denied".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        under_tenant
            .iter()
            .any(|r| r.reason.as_deref() == Some("tenant_inactive")),
        "{under_tenant:?}"
    );
    let denied = authorize(&server, &b, &client_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap_err();
    assert!(denied.1.contains("tenant_inactive"), "{denied:?}");
    tenancy::tenants::decide(
        state,
        &Actor::Operator,
        &tenant,
        TenantAction::Reinstate,
        None,
    )
    .await
    .unwrap();
    let code = authorize(&server, &b, &client_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap();
    let t = tokens(&server, &client_id, &secret, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();

    // Access removed (the group unassigned): the next refresh is refused.
    tenancy::access::unassign(
        state,
        &admin,
        &tenant,
        &client_id,
        &Principal::Group(devs.id.clone()),
    )
    .await
    .unwrap();
    let (status, _) = refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(status, 400);

    // The sign-in kill switch.
    tenancy::apps::update(
        state,
        &admin,
        &other_tenant,
        &other_id,
        techpass::tenancy::apps::AppChanges {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let denied = authorize(&server, &b, &other_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap_err();
    assert_eq!(denied.0, 303, "the app learns of it: {denied:?}");
    assert!(
        denied.1.starts_with(APP_CALLBACK) && denied.1.contains("error=access_denied"),
        "{denied:?}"
    );
    server.stop().await;
}

/// Secrets: at most `apps.max_secrets` live (expired and revoked ones free a slot), each for at
/// most a year; a revoked secret no longer authenticates.
#[tokio::test]
async fn credential_limits_and_expiry() {
    let Some((server, clock)) = start_with_clock(Backend::Sqlite, "e2e::credential_limits").await
    else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    let admin = user(&alice);
    let (client_id, first) = tenant_app(&server, &admin, &tenant).await;
    let too_long = tenancy::apps::add_secret(state, &admin, &tenant, &client_id, Some(366)).await;
    assert!(
        matches!(too_long, Err(TenancyError::Invalid(_))),
        "{too_long:?}"
    );
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(
            tenancy::apps::add_secret(state, &admin, &tenant, &client_id, Some(30))
                .await
                .unwrap(),
        );
    }
    // Five live (the first from registration and four more): a sixth is refused.
    let sixth = tenancy::apps::add_secret(state, &admin, &tenant, &client_id, None).await;
    assert!(matches!(sixth, Err(TenancyError::Conflict(_))), "{sixth:?}");
    // Revoking one frees a slot, and the revoked secret stops working at once.
    tenancy::apps::revoke_secret(state, &admin, &tenant, &client_id, &made[0].id)
        .await
        .unwrap();
    let token = |secret: String| {
        let url = server.url("/token");
        let id = client_id.clone();
        async move {
            client()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(token(made[0].secret.clone()).await, 401, "revoked");
    assert_eq!(
        token(made[1].secret.clone()).await,
        400,
        "live: past client authentication"
    );
    tenancy::apps::add_secret(state, &admin, &tenant, &client_id, None)
        .await
        .unwrap();
    // After 31 days the four 30-day secrets have expired: they no longer count or work.
    clock.advance(31 * DAY);
    assert_eq!(token(made[1].secret.clone()).await, 401, "expired");
    assert_eq!(
        token(first.clone()).await,
        400,
        "the year-long first secret still works"
    );
    for _ in 0..3 {
        tenancy::apps::add_secret(state, &admin, &tenant, &client_id, None)
            .await
            .unwrap();
    }
    server.stop().await;
}

/// An officer invited before registering registers in the same step, and must accept the terms.
#[tokio::test]
async fn an_invited_officer_registers_while_accepting() {
    let Some((server, _clock)) = start_with_clock(Backend::Sqlite, "e2e::invited_officer").await
    else {
        return;
    };
    let state = &server.state;
    let alice = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "wiki").await;
    tenancy::invitations::invite(
        state,
        &user(&alice),
        &tenant,
        NewInvitation {
            email: "bob_lim@hdb.gov.sg".into(),
            access_ends_at: None,
        },
    )
    .await
    .unwrap();
    let link = invitation_link(&server, "bob_lim@hdb.gov.sg").await;
    let b = browser();
    let page = open_link(&server, &b, &link, "bob").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("accept_terms"),
        "an unregistered officer registers here"
    );
    // Without ticking the terms: refused, nothing written.
    let csrf = field(&html, "csrf_token");
    let refused = b
        .post(server.url("/invite"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let bob = state
        .store
        .find_users_by_email("bob_lim@hdb.gov.sg")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(bob.status, UserStatus::Unregistered);
    let accepted = accept(&server, &b, &html).await;
    assert_eq!(accepted.status(), 200);
    let bob = state.store.get_user(&bob.id).await.unwrap().unwrap();
    assert_eq!(bob.status, UserStatus::Registered);
    assert_eq!(
        bob.terms_version.as_deref(),
        Some(state.config.accounts.terms_version.as_str())
    );
    assert!(bob.registered_at.is_some());
    assert_eq!(
        bob.access_ends_at, None,
        "an officer's account has no end date"
    );
    server.stop().await;
}

/// A terminated account is deleted `lifecycle.delete_terminated_after_days` (5) after its
/// termination, not before; its tokens answer as unknown (refresh `invalid_grant`,
/// introspection inactive), its audit trail stays, and signing in again makes a new account.
async fn terminated_accounts_are_deleted_after_the_grace_days(backend: Backend) {
    let Some((server, clock)) = start_with_clock(backend, "e2e::deletion").await else {
        return;
    };
    let state = &server.state;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", "alice_tan@tech.gov.sg").await;
    let tenant = approved_tenant(&server, &alice, "registry").await;
    let admin = user(&alice);
    let (client_id, secret) = tenant_app(&server, &admin, &tenant).await;
    tenancy::access::assign(
        state,
        &admin,
        &tenant,
        &client_id,
        &Principal::User(alice.clone()),
    )
    .await
    .unwrap();
    let code = authorize(&server, &b, &client_id, "alice_tan@tech.gov.sg")
        .await
        .unwrap();
    let t = tokens(&server, &client_id, &secret, &code).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let at = t["access_token"].as_str().unwrap().to_string();

    // Disabled, then terminated (180 days without use).
    clock.set(Timestamp(T0 + 181 * DAY));
    techpass::jobs::run_once(state).await;
    techpass::jobs::run_once(state).await;
    let terminated = state.store.get_user(&alice).await.unwrap().unwrap();
    assert_eq!(terminated.status, UserStatus::Terminated);
    let terminated_at = terminated.terminated_at.unwrap();
    clock.set(Timestamp(terminated_at + 5 * DAY - 1));
    assert_eq!(techpass::jobs::run_once(state).await.accounts_deleted, 0);
    assert!(
        state.store.get_user(&alice).await.unwrap().is_some(),
        "not before"
    );
    clock.set(Timestamp(terminated_at + 5 * DAY));
    assert_eq!(techpass::jobs::run_once(state).await.accounts_deleted, 1);
    assert!(state.store.get_user(&alice).await.unwrap().is_none());
    assert!(state
        .store
        .sessions_of_user(&alice)
        .await
        .unwrap()
        .is_empty());
    assert!(!state.store.is_tenant_admin(&tenant, &alice).await.unwrap());

    let (status, body) = refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let inactive: Value = client()
        .post(server.url("/introspect"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive["active"], false);

    let history: Vec<String> = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            subject: Some(alice.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.event)
        .collect();
    for event in ["registration", "user.terminated", "user.deleted"] {
        assert!(history.iter().any(|e| e == event), "{event}: {history:?}");
    }
    // Signing in again is a new, unregistered account.
    let again = signed_in(&server, &browser(), "alice", "alice_tan@tech.gov.sg").await;
    assert_ne!(again, alice);
    server.stop().await;
}

crate::both_backends!(
    terminated_accounts_are_deleted_after_the_grace_days,
    vendor_invited_accepts_signs_in_then_expires,
    invitation_links_that_cannot_be_used,
    tenant_state_and_access_gate_every_refresh,
);
