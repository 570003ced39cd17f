//! The device authorization grant (RFC 8628) end to end: a command-line app asks for codes, a
//! signed-in person approves at the verification page over HTTP, the app polls `/token`
//! (pending, slow_down with the raised interval remembered, the tokens once, a refresh);
//! tables of bad input at `/device_authorization`, `/token` and the verification page, each
//! answered with the RFC's error and never a 500; and `techpass login`, `techpass token` (plain
//! and as a Kubernetes exec credential) and `techpass git-credential` run as processes against a
//! test server, fed what kubectl and git send.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use techpass::provider::clients::{create_app, NewApp};
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::UserStatus;
use techpass_domain::{ManualClock, SystemClock, Timestamp};
use techpass_store::testing::{Backend, TestDatabase};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::signin::{register_if_asked, sign_in_via_hint};
use crate::support::{
    browser, client, see_other, techpass_command, test_config, TempDir, TestServer,
};
use crate::tenancy::{approved_tenant, signed_in, T0};

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ALICE: &str = "alice_tan@tech.gov.sg";

/// A server whose clock the test moves, and whose wrong-code limit is small.
pub async fn start(backend: Backend, test: &str) -> Option<(TestServer, Arc<ManualClock>)> {
    let db = TestDatabase::new(backend, test).await?;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.rate_limit.failed_auth_burst = 3;
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    Some((server, clock))
}

/// An app of `tenant` (or a platform app) registered for the device grant.
pub async fn device_app(
    server: &TestServer,
    tenant: Option<&str>,
    confidential: bool,
    grants: &[&str],
    assignment_required: bool,
) -> (String, Option<String>) {
    let created = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Deploy CLI".into(),
            confidential,
            grant_types: grants.iter().map(|g| g.to_string()).collect(),
            tenant_id: tenant.map(String::from),
            access_policy: if assignment_required {
                AccessPolicy::Assigned
            } else {
                AccessPolicy::Officers
            },
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    (created.client_id, created.client_secret)
}

pub async fn device_authorization(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(server.url("/device_authorization"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (status, response.json().await.unwrap())
}

pub async fn poll(server: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    let response = client()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn assert_error(answer: &(u16, Value), status: u16, error: &str, case: &str) {
    assert_eq!(answer.0, status, "{case}: {}", answer.1);
    assert_eq!(answer.1["error"], error, "{case}: {}", answer.1);
}

/// The `value` of the first field named `name` on a page.
fn value_of(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    html[at..]
        .split("value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no value for {name}"))
        .to_string()
}

/// Opens `path` (the verification page) in the browser, signing `person` in (and registering
/// them) on the way if the browser has no session; returns the page.
async fn open_page(b: &reqwest::Client, server: &TestServer, path: &str) -> (u16, String) {
    let response = b.get(server.url(path)).send().await.unwrap();
    if response.status() == 303 {
        let location = see_other(&response);
        assert!(location.starts_with("/login?"), "{location}");
        let done = sign_in_via_hint(b, &server.base, &location, "alice").await;
        let back = register_if_asked(b, &server.base, &see_other(&done)).await;
        assert_eq!(back, path, "back to the verification page after sign-in");
        let response = b.get(server.url(&back)).send().await.unwrap();
        let status = response.status().as_u16();
        return (status, response.text().await.unwrap());
    }
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Approves or denies `user_code` on its confirmation page; returns the redirect.
pub async fn decide(
    b: &reqwest::Client,
    server: &TestServer,
    user_code: &str,
    decision: &str,
) -> reqwest::Response {
    let (status, page) = open_page(b, server, &format!("/device?user_code={user_code}")).await;
    assert_eq!(status, 200, "{page}");
    b.post(server.url("/device"))
        .form(&[
            ("csrf_token", value_of(&page, "csrf_token").as_str()),
            ("user_code", user_code),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn a_person_approves_a_device_which_polls_for_its_tokens(backend: Backend) {
    let Some((server, clock)) = start(
        backend,
        "e2e::a_person_approves_a_device_which_polls_for_its_tokens",
    )
    .await
    else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "deploy").await;
    let (app, _) = device_app(
        &server,
        Some(&tenant),
        false,
        &[DEVICE_GRANT, "refresh_token"],
        false,
    )
    .await;

    let (status, codes) = device_authorization(
        &server,
        &[
            ("client_id", app.as_str()),
            ("scope", "openid profile offline_access unknown"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{codes}");
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    let device_code = codes["device_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)));
    assert_eq!(codes["verification_uri"], format!("{}/device", server.base));
    assert_eq!(
        codes["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", server.base)
    );
    assert_eq!(codes["expires_in"], 600);
    assert_eq!(codes["interval"], 5);
    assert!(device_code.len() >= 43, "256 bits");
    // Stored only as keyed hashes.
    let stored = server
        .state
        .store
        .get_device_code(&server.state.secrets.keyed_hash("device-code", &device_code))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.device_code_hash, device_code);
    assert!(!stored.user_code_hash.contains(&user_code.replace('-', "")));
    assert_eq!(
        stored.scope, "openid profile offline_access",
        "unknown scopes ignored"
    );

    // Polling: pending, then too fast (the interval grows by 5 s, and stays grown).
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "authorization_pending",
        "first poll",
    );
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "slow_down",
        "at once again",
    );
    clock.advance(6);
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "slow_down",
        "6 s < the raised 10 s",
    );
    clock.advance(15);
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "authorization_pending",
        "after 15 s",
    );

    // The person, with the SSO session of this browser: the page names the app and its tenant.
    let typed = user_code.to_lowercase().replace('-', " ");
    let (status, page) = open_page(
        &b,
        &server,
        &format!("/device?user_code={}", typed.replace(' ', "+")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Deploy CLI"), "{page}");
    assert!(page.contains("Tenant deploy"), "{page}");
    assert!(page.contains(&user_code), "the code as the device shows it");
    assert!(page.contains("value=\"approve\"") && page.contains("value=\"deny\""));
    let approved = decide(&b, &server, &user_code, "approve").await;
    let done = see_other(&approved);
    assert_eq!(done, "/device?done=device-approved");
    let (status, page) = open_page(&b, &server, &done).await;
    assert_eq!(status, 200);
    assert!(page.contains("The device is signed in"), "{page}");

    // The tokens, once.
    clock.advance(15);
    let (status, tokens) = poll(&server, &app, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], alice);
    assert_eq!(access["client_id"], app);
    assert!(access["amr"].as_array().unwrap().iter().any(|m| m == "mfa"));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], app);
    assert_eq!(id["sub"], alice);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // The refresh token works as for the code flow (rotated)...
    let refreshed = client()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", app.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let next: Value = refreshed.json().await.unwrap();
    let next_refresh = next["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(next_refresh, refresh);

    // ...until the device code is presented again: refused, and what it produced is revoked.
    clock.advance(15);
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "invalid_grant",
        "second redemption",
    );
    let after = client()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", next_refresh.as_str()),
            ("client_id", app.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 400);

    // Bob is no member of the tenant, and the app is open to every officer: approving on the
    // page that names the app and its tenant is his consent, recorded so that his account page
    // lists it and withdrawing it ends the device's refresh tokens.
    let bob_browser = browser();
    let bob = signed_in(&server, &bob_browser, "bob", "bob_lim@hdb.gov.sg").await;
    assert_eq!(server.state.store.consent(&bob, &app).await.unwrap(), None);
    let (status, codes) = device_authorization(
        &server,
        &[
            ("client_id", app.as_str()),
            ("scope", "openid offline_access"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{codes}");
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    let approved = decide(&bob_browser, &server, &user_code, "approve").await;
    assert_eq!(see_other(&approved), "/device?done=device-approved");
    let consent = server.state.store.consent(&bob, &app).await.unwrap();
    assert!(
        consent.is_some_and(|c| c.scopes.contains("offline_access")),
        "the approval is recorded as a consent"
    );
    server.stop().await;
}

async fn bad_device_requests_get_the_rfc_error(backend: Backend) {
    let Some((server, clock)) = start(backend, "e2e::bad_device_requests_get_the_rfc_error").await
    else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "tools").await;
    let (public, _) = device_app(&server, Some(&tenant), false, &[DEVICE_GRANT], false).await;
    let (other, _) = device_app(&server, Some(&tenant), false, &[DEVICE_GRANT], false).await;
    let (confidential, secret) = device_app(
        &server,
        Some(&tenant),
        true,
        &[DEVICE_GRANT, "refresh_token"],
        false,
    )
    .await;
    let secret = secret.unwrap();
    let (no_grant, _) =
        device_app(&server, Some(&tenant), true, &["client_credentials"], false).await;
    let (assigned_only, _) = device_app(&server, Some(&tenant), false, &[DEVICE_GRANT], true).await;

    // The grant is offered per app: in the portal's form (as the tenant admin)...
    let apps_path = format!("/portal/tenants/{tenant}/apps");
    let (status, page) = open_page(&b, &server, &apps_path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("value=\"{DEVICE_GRANT}\"")),
        "a checkbox for the grant"
    );
    let created = b
        .post(server.url(&apps_path))
        .form(&[
            ("csrf_token", value_of(&page, "csrf_token").as_str()),
            ("name", "Portal CLI"),
            ("kind", "public"),
            ("grant", DEVICE_GRANT),
            ("grant", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303, "{}", created.text().await.unwrap());
    // ...and through the service the API calls.
    techpass::tenancy::apps::create(
        &server.state,
        &crate::tenancy::user(&alice),
        &tenant,
        serde_json::from_value(serde_json::json!({
            "name": "API CLI", "confidential": false, "grant_types": [DEVICE_GRANT]
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let registered = server.state.store.clients_of_tenant(&tenant).await.unwrap();
    for name in ["Portal CLI", "API CLI"] {
        let app = registered.iter().find(|c| c.name == name).unwrap();
        assert!(app.grant_types.iter().any(|g| g == DEVICE_GRANT), "{name}");
    }

    // The device authorization endpoint.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown client",
            vec![("client_id", "app_nobody")],
            401,
            "invalid_client",
        ),
        (
            "no client at all",
            vec![("scope", "openid")],
            401,
            "invalid_client",
        ),
        (
            "confidential app without its secret",
            vec![("client_id", confidential.as_str())],
            401,
            "invalid_client",
        ),
        (
            "confidential app, wrong secret",
            vec![
                ("client_id", confidential.as_str()),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
        ),
        (
            "app without the grant",
            vec![("client_id", no_grant.as_str()), ("client_secret", "x")],
            401,
            "invalid_client",
        ),
        (
            "scope repeated",
            vec![
                ("client_id", public.as_str()),
                ("scope", "openid"),
                ("scope", "email"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (case, form, status, error) in cases {
        assert_error(
            &device_authorization(&server, &form).await,
            status,
            error,
            case,
        );
    }
    let nonform = client()
        .post(server.url("/device_authorization"))
        .json(&serde_json::json!({"client_id": public}))
        .send()
        .await
        .unwrap();
    assert_eq!(nonform.status(), 400, "JSON is not a form");
    let mut ok = device_authorization(
        &server,
        &[
            ("client_id", confidential.as_str()),
            ("client_secret", secret.as_str()),
        ],
    )
    .await;
    assert_eq!(
        ok.0, 200,
        "a confidential app authenticates as at /token: {}",
        ok.1
    );
    let machine = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        T0,
        server.state.http.policy(),
        NewApp {
            name: "Machine".into(),
            confidential: true,
            grant_types: vec!["client_credentials".into()],
            tenant_id: Some(tenant.clone()),
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    assert_error(
        &device_authorization(
            &server,
            &[
                ("client_id", machine.client_id.as_str()),
                ("client_secret", machine.client_secret.as_deref().unwrap()),
            ],
        )
        .await,
        400,
        "unauthorized_client",
        "an app that did not register the grant",
    );

    // Polling.
    let (_, codes) = device_authorization(&server, &[("client_id", public.as_str())]).await;
    let device_code = codes["device_code"].as_str().unwrap().to_string();
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    let hash = server.state.secrets.keyed_hash("device-code", &device_code);
    let before = server
        .state
        .store
        .get_device_code(&hash)
        .await
        .unwrap()
        .unwrap();
    assert_error(
        &poll(&server, &public, "not-a-device-code").await,
        400,
        "invalid_grant",
        "unknown device code",
    );
    assert_error(
        &poll(&server, &other, &device_code).await,
        400,
        "invalid_grant",
        "another client's code",
    );
    assert_eq!(
        server
            .state
            .store
            .get_device_code(&hash)
            .await
            .unwrap()
            .unwrap(),
        before,
        "another client's poll changes nothing"
    );
    let missing = client()
        .post(server.url("/token"))
        .form(&[("grant_type", DEVICE_GRANT), ("client_id", public.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let forbidden = client()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code.as_str()),
            ("client_id", no_grant.as_str()),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        forbidden.status(),
        401,
        "a wrong secret is invalid_client first"
    );
    assert_error(
        &poll(&server, &public, &device_code).await,
        400,
        "authorization_pending",
        "rightful client",
    );
    assert_error(
        &poll(&server, &public, &device_code).await,
        400,
        "slow_down",
        "too fast",
    );
    let slowed = server
        .state
        .store
        .get_device_code(&hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        slowed.interval_secs, 10,
        "the raised interval is remembered"
    );

    // The verification page: malformed codes are refused without a lookup; wrong ones are
    // limited (3 here), and the limit holds for good codes too until it refills.
    let (status, page) = open_page(&b, &server, "/device").await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"user_code\""));
    for malformed in ["ABC", "ABCD-EFG0", "IIII-IIII", "ABCD-EFGH-JKLM", "%00"] {
        let (status, page) =
            open_page(&b, &server, &format!("/device?user_code={malformed}")).await;
        assert_eq!(status, 400, "malformed {malformed}: {page}");
        assert!(page.contains("8 letters and digits"), "{page}");
    }
    // Denied by the person: the device hears access_denied.
    let denied = decide(&b, &server, &user_code, "deny").await;
    assert_eq!(see_other(&denied), "/device?done=device-denied");
    clock.advance(11);
    assert_error(
        &poll(&server, &public, &device_code).await,
        400,
        "access_denied",
        "denied",
    );
    // A decided code is not pending any more (and counts as a wrong code).
    let (status, _) = open_page(&b, &server, &format!("/device?user_code={user_code}")).await;
    assert_eq!(status, 404, "decided already");

    // The gate at approval: an app for assigned people only refuses Alice, and the device hears
    // access_denied.
    let (_, codes) = device_authorization(&server, &[("client_id", assigned_only.as_str())]).await;
    let refused = decide(&b, &server, codes["user_code"].as_str().unwrap(), "approve").await;
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("You do not have access to this app"));
    assert_error(
        &poll(
            &server,
            &assigned_only,
            codes["device_code"].as_str().unwrap(),
        )
        .await,
        400,
        "access_denied",
        "refused by the gate at approval",
    );

    // A form without the CSRF token, or with no decision, changes nothing.
    let (_, codes) = device_authorization(&server, &[("client_id", public.as_str())]).await;
    let fresh_code = codes["user_code"].as_str().unwrap().to_string();
    let forged = b
        .post(server.url("/device"))
        .form(&[("user_code", fresh_code.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let (_, page) = open_page(&b, &server, &format!("/device?user_code={fresh_code}")).await;
    let undecided = b
        .post(server.url("/device"))
        .form(&[
            ("csrf_token", value_of(&page, "csrf_token").as_str()),
            ("user_code", fresh_code.as_str()),
            ("decision", "maybe"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(undecided.status(), 400);
    assert_error(
        &poll(&server, &public, codes["device_code"].as_str().unwrap()).await,
        400,
        "authorization_pending",
        "still pending",
    );

    // The gate at the token: approved, then suspended before the device polls.
    let (_, gated) = device_authorization(
        &server,
        &[
            ("client_id", confidential.as_str()),
            ("client_secret", secret.as_str()),
        ],
    )
    .await;
    let approved = decide(&b, &server, gated["user_code"].as_str().unwrap(), "approve").await;
    assert_eq!(see_other(&approved), "/device?done=device-approved");
    server
        .state
        .store
        .set_user_status(&alice, UserStatus::Suspended, Some("test"))
        .await
        .unwrap();
    let answer = client()
        .post(server.url("/token"))
        .basic_auth(&confidential, Some(&secret))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", gated["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{body}"
    );
    server
        .state
        .store
        .set_user_status(&alice, UserStatus::Registered, None)
        .await
        .unwrap();

    // Expired: the lifetime passed before anyone approved.
    ok = device_authorization(&server, &[("client_id", public.as_str())]).await;
    let late_code = ok.1["device_code"].as_str().unwrap().to_string();
    let late_user = ok.1["user_code"].as_str().unwrap().to_string();
    clock.advance(601);
    assert_error(
        &poll(&server, &public, &late_code).await,
        400,
        "expired_token",
        "expired",
    );
    let (status, _) = open_page(&b, &server, &format!("/device?user_code={late_user}")).await;
    assert_eq!(status, 404, "an expired code cannot be approved");

    // Wrong codes: a few, then the limit (429) whatever is typed.
    let (status, _) = open_page(&b, &server, "/device?user_code=ZZZZ-ZZZZ").await;
    assert!(status == 404 || status == 429, "{status}");
    let mut limited = false;
    for _ in 0..5 {
        let (status, page) = open_page(&b, &server, "/device?user_code=ZZZZ-ZZZZ").await;
        if status == 429 {
            assert!(page.contains("Too many wrong codes"), "{page}");
            limited = true;
            break;
        }
        assert_eq!(status, 404);
    }
    assert!(limited, "the guessing limit was reached");
    let (_, codes) = device_authorization(&server, &[("client_id", public.as_str())]).await;
    let (status, _) = open_page(
        &b,
        &server,
        &format!("/device?user_code={}", codes["user_code"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        status, 429,
        "limited until it refills, even for a good code"
    );
    server.stop().await;
}

/// Bounded staleness (issue 13 item 6): approving a device with an SSO session the upstream has
/// not confirmed within `upstream.reverify_after_secs` asks the upstream first; Alice, disabled
/// there, is signed out and sent to sign in again, and the device request stays pending.
async fn an_approval_past_the_bound_asks_the_upstream_first(backend: Backend) {
    let Some((server, clock)) = start(
        backend,
        "e2e::an_approval_past_the_bound_asks_the_upstream_first",
    )
    .await
    else {
        return;
    };
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "deploy").await;
    let (app, _) = device_app(&server, Some(&tenant), false, &[DEVICE_GRANT], false).await;
    let disabled = client()
        .post(server.url("/dev/azure/people"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("person", "alice"), ("action", "disable")])
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    clock.advance(server.state.config.upstream.reverify_after_secs as i64);

    let (status, codes) = device_authorization(&server, &[("client_id", app.as_str())]).await;
    assert_eq!(status, 200, "{codes}");
    let user_code = codes["user_code"].as_str().unwrap().to_string();
    let device_code = codes["device_code"].as_str().unwrap().to_string();
    // The verification page itself asks the upstream first (as every portal page does past the
    // bound): refused, so she is sent to sign in again, back to this code.
    let opened = b
        .get(server.url(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap();
    let location = see_other(&opened);
    assert!(
        location.starts_with("/login?") && location.contains("prompt=login"),
        "{location}"
    );
    assert!(
        location.contains(&user_code),
        "back to this code: {location}"
    );
    assert!(
        server
            .state
            .store
            .sessions_of_user(&alice)
            .await
            .unwrap()
            .is_empty(),
        "the upstream refused her: signed out everywhere"
    );
    assert_error(
        &poll(&server, &app, &device_code).await,
        400,
        "authorization_pending",
        "nothing decided",
    );
    server.stop().await;
}

crate::both_backends!(
    an_approval_past_the_bound_asks_the_upstream_first,
    a_person_approves_a_device_which_polls_for_its_tokens,
    bad_device_requests_get_the_rfc_error,
);

/// Runs `techpass` with `args`, feeding `stdin`, under the CLI's own config directory.
async fn run_cli(
    cwd: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = techpass_command(cwd);
    cmd.args(args)
        .env("TECHPASS_CLI_CONFIG_DIR", home)
        .stdin(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("techpass did not finish within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn techpass_login_then_token_exec_credential_and_git_credential() {
    let db = TestDatabase::new(Backend::Sqlite, "e2e::techpass_login")
        .await
        .unwrap();
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.tokens.device_poll_interval_secs = 1;
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, Some(db)).await;
    let b = browser();
    let alice = signed_in(&server, &b, "alice", ALICE).await;
    let tenant = approved_tenant(&server, &alice, "kube").await;
    let (app, _) = device_app(
        &server,
        Some(&tenant),
        false,
        &[DEVICE_GRANT, "refresh_token"],
        false,
    )
    .await;
    let cwd = TempDir::new();
    let home = TempDir::new();
    let config_dir = home.0.join("techpass");

    // Not signed in yet: a clear message, no token.
    let (code, out, err) = run_cli(&cwd.0, &config_dir, &["token"], "", &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty() && err.contains("techpass login"), "{err}");

    let mut login = techpass_command(&cwd.0);
    login
        .args(["login", "--issuer", &server.base, "--client-id", &app])
        .env("TECHPASS_CLI_CONFIG_DIR", &config_dir);
    let mut child = login.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let user_code = first
        .split("enter the code ")
        .nth(1)
        .unwrap_or_else(|| panic!("no code in {first:?}"))
        .to_string();
    assert!(
        first.contains(&format!("{}/device", server.base)),
        "{first}"
    );
    let approved = decide(&b, &server, &user_code, "approve").await;
    assert_eq!(see_other(&approved), "/device?done=device-approved");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("techpass login did not finish")
        .unwrap();
    assert!(status.success());

    // The cache: private directory, private files.
    assert_eq!(mode(&config_dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&config_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.iter().any(|f| f
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("tokens-")));
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // `techpass token`: the cached access token, for Alice, bound to the CLI's DPoP key (kept
    // in the private cache file).
    let (code, token, err) = run_cli(&cwd.0, &config_dir, &["token"], "", &[]).await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert_eq!(claims(&token)["sub"], alice);
    let jkt = claims(&token)["cnf"]["jkt"]
        .as_str()
        .expect("techpass login binds its tokens with DPoP")
        .to_string();

    // The headers that present it (for `curl -H @-`): userinfo accepts them, once.
    let userinfo = server.url("/userinfo");
    let (code, headers, err) = run_cli(
        &cwd.0,
        &config_dir,
        &["token", "--dpop", "GET", &userinfo],
        "",
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<(&str, &str)> = headers
        .lines()
        .map(|l| l.split_once(": ").unwrap())
        .collect();
    assert_eq!(
        lines[0],
        ("Authorization", format!("DPoP {token}").as_str())
    );
    assert_eq!(lines[1].0, "DPoP");
    let presented = || {
        client()
            .get(&userinfo)
            .header("authorization", lines[0].1)
            .header("DPoP", lines[1].1)
            .send()
    };
    let answer = presented().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["sub"], alice);
    assert_eq!(
        presented().await.unwrap().status(),
        401,
        "a proof is used once"
    );

    // kubectl's exec credential plugin call (as a kubeconfig `exec` section makes it).
    let exec_info = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
    let (code, out, err) = run_cli(
        &cwd.0,
        &config_dir,
        &[
            "token",
            "--exec-credential",
            "--issuer",
            &server.base,
            "--client-id",
            &app,
        ],
        "",
        &[("KUBERNETES_EXEC_INFO", exec_info)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let credential: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["status"]["token"], token);
    let expiry = credential["status"]["expirationTimestamp"]
        .as_str()
        .unwrap();
    let parsed =
        time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(
        parsed.unix_timestamp(),
        claims(&token)["exp"].as_i64().unwrap()
    );
    let (code, out, _) = run_cli(
        &cwd.0,
        &config_dir,
        &["token", "--exec-credential", "--id-token"],
        "",
        &[],
    )
    .await;
    assert_eq!(code, 0);
    let id: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claims(id["status"]["token"].as_str().unwrap())["aud"], app);

    // git's credential helper protocol: `get` with what git writes, `store` and `erase` ignored.
    let (code, out, err) = run_cli(
        &cwd.0,
        &config_dir,
        &["git-credential", "get"],
        "protocol=https\nhost=git.example.gov.sg\n\n",
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("username=oauth2\npassword={token}\n"));
    let (code, out, _) = run_cli(
        &cwd.0,
        &config_dir,
        &[
            "git-credential",
            "--issuer",
            &server.base,
            "--client-id",
            &app,
            "get",
        ],
        "protocol=https\nhost=git.example.gov.sg\nusername=alice\n\n",
        &[],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(out, format!("username=alice\npassword={token}\n"));
    for op in ["store", "erase"] {
        let (code, out, _) = run_cli(
            &cwd.0,
            &config_dir,
            &["git-credential", op],
            &format!(
                "protocol=https\nhost=git.example.gov.sg\nusername=oauth2\npassword={token}\n\n"
            ),
            &[],
        )
        .await;
        assert_eq!((code, out.as_str()), (0, ""), "{op}");
    }

    // A token about to expire is refreshed silently, once, by concurrent callers taking turns.
    let cache = files
        .iter()
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("tokens-")
        })
        .unwrap();
    let mut cached: Value = serde_json::from_str(&std::fs::read_to_string(cache).unwrap()).unwrap();
    let old_refresh = cached["refresh_token"].clone();
    cached["expires_at"] = serde_json::json!(0);
    std::fs::write(cache, serde_json::to_vec(&cached).unwrap()).unwrap();
    let (a, b2, c) = tokio::join!(
        run_cli(&cwd.0, &config_dir, &["token"], "", &[]),
        run_cli(&cwd.0, &config_dir, &["token"], "", &[]),
        run_cli(&cwd.0, &config_dir, &["token"], "", &[]),
    );
    let fresh: Vec<String> = [a, b2, c]
        .iter()
        .map(|(code, out, err)| {
            assert_eq!(*code, 0, "{err}");
            out.trim().to_string()
        })
        .collect();
    assert!(fresh.iter().all(|t| *t == fresh[0]), "one refresh, shared");
    assert_ne!(fresh[0], token, "a new access token");
    assert_eq!(
        claims(&fresh[0])["cnf"]["jkt"],
        jkt.as_str(),
        "refreshed with a proof of the same key"
    );
    let after: Value = serde_json::from_str(&std::fs::read_to_string(cache).unwrap()).unwrap();
    assert_ne!(
        after["refresh_token"], old_refresh,
        "the rotated refresh token is kept"
    );
    assert_eq!(mode(cache), 0o600);
    server.stop().await;
}
