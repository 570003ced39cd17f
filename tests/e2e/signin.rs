//! Federation: signing in through the development upstream over real HTTP, the SSO session, and
//! a table of forged or broken upstream responses, each refused with its reason.

use std::sync::Arc;

use techpass::config::{AccountTypeName, MfaMode, UpstreamConfig};
use techpass_domain::{Clock, ManualClock, SystemClock};
use techpass_store::testing::{Backend, TestDatabase};
use techpass_store::AuditFilter;
use techpass_upstream::dev::{self, Tamper};
use tokio::net::TcpListener;

use crate::support::{browser, secret, see_other, test_config, TempDir, TestServer};

/// Drives a browser from `/login?…` through the person picker to the callback and returns the
/// callback's response (not followed). `person` "cancel" presses Cancel.
pub async fn sign_in_via(
    browser: &reqwest::Client,
    base: &str,
    login_query: &str,
    person: &str,
) -> reqwest::Response {
    let start = browser
        .get(format!("{base}/login?{login_query}"))
        .send()
        .await
        .unwrap();
    let authorize = see_other(&start);
    let picker = browser.get(&authorize).send().await.unwrap();
    assert_eq!(picker.status(), 200, "person picker at {authorize}");
    let page = picker.text().await.unwrap();
    assert!(page.contains("Alice Tan"), "picker lists the test people");
    let url = url::Url::parse(&authorize).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if person == "cancel" {
        form.push(("cancel".into(), "1".into()));
    } else {
        form.push(("person".into(), person.into()));
    }
    let mut action = url.clone();
    action.set_query(None);
    let chosen = browser.post(action).form(&form).send().await.unwrap();
    let callback = see_other(&chosen);
    assert!(
        callback.starts_with(&format!("{base}/callback?")),
        "{callback}"
    );
    browser.get(&callback).send().await.unwrap()
}

/// As [`sign_in_via`], starting from a `/login?…` location TechPass redirected to (which
/// carries a `login_hint` that picks the upstream).
pub async fn sign_in_via_hint(
    browser: &reqwest::Client,
    base: &str,
    login_location: &str,
    person: &str,
) -> reqwest::Response {
    let query = login_location.trim_start_matches("/login?");
    sign_in_via(browser, base, query, person).await
}

/// If TechPass sent the browser to register (a first-time officer), accepts the terms and
/// returns where registration leads; otherwise returns `location` unchanged.
pub async fn register_if_asked(browser: &reqwest::Client, base: &str, location: &str) -> String {
    if !location.starts_with("/register") {
        return location.to_string();
    }
    let page = browser
        .get(format!("{base}{location}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "registration page");
    let html = page.text().await.unwrap();
    let field = |name: &str| {
        html.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in the registration form"))
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
            .replace("&#x3d;", "=")
            .replace("&#x3f;", "?")
    };
    let form = [
        ("csrf_token", field("csrf_token")),
        ("terms_version", field("terms_version")),
        ("return_to", field("return_to")),
        ("accept_terms", "yes".to_string()),
    ];
    let done = browser
        .post(format!("{base}/register"))
        .form(&form)
        .send()
        .await
        .unwrap();
    see_other(&done)
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn officer_signs_in_through_the_development_upstream(backend: Backend) {
    let Some(server) = TestServer::start(
        backend,
        "e2e::officer_signs_in_through_the_development_upstream",
    )
    .await
    else {
        return;
    };
    let b = browser();

    // Two upstreams: the sign-in page offers the choice.
    let chooser = b.get(server.url("/login")).send().await.unwrap();
    assert_eq!(chooser.status(), 200);
    let csp = chooser.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = chooser.text().await.unwrap();
    assert!(page.contains("Public officer (development)") && page.contains("Vendor (development)"));
    assert!(
        !page.contains("asked you to sign in"),
        "no app asked: none is named"
    );

    let done = sign_in_via(&b, &server.base, "upstream=dev-wog&return_to=/", "alice").await;
    let cookies = set_cookies(&done);
    let location = see_other(&done);
    assert_eq!(
        location, "/register?return_to=%2F",
        "a first-time officer registers"
    );
    let before = b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(before.contains("You have not registered for TechPass yet"));
    // The registration form refuses a post without its CSRF token or without the terms.
    let forged = b
        .post(server.url("/register"))
        .form(&[("accept_terms", "yes"), ("terms_version", "2026-11")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let page = b
        .get(server.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Register for TechPass") && page.contains("alice_tan@tech.gov.sg"));
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let unaccepted = b
        .post(server.url("/register"))
        .form(&[
            ("csrf_token", csrf),
            ("terms_version", "2026-11"),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unaccepted.status(), 400);
    assert_eq!(register_if_asked(&b, &server.base, &location).await, "/");
    let events = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("registration".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "registration audited");
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("tp_session="))
        .expect("session cookie set");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Secure"),
        "plain-HTTP loopback issuer: {session_cookie}"
    );
    let raw = session_cookie
        .trim_start_matches("tp_session=")
        .split(';')
        .next()
        .unwrap();
    assert!(
        server.state.store.get_session(raw).await.unwrap().is_none(),
        "the database holds only a keyed hash of the cookie"
    );

    let home = b.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let page = home.text().await.unwrap();
    for expected in [
        "Alice Tan",
        "alice_tan@tech.gov.sg",
        "Public officer",
        "pwd, mfa",
        dev::WOG_TENANT_ID,
    ] {
        assert!(page.contains(expected), "landing page shows {expected}");
    }

    // The audit log has the sign-in.
    let events = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("signin".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "success");
    assert!(events[0].request_id.is_some());

    // A second login in the same browser at the vendor upstream is offered directly by hint.
    let hinted = b
        .get(server.url("/login?login_hint=dave@vendorco.example"))
        .send()
        .await
        .unwrap();
    let location = see_other(&hinted);
    assert!(location.contains(dev::VENDOR_TENANT_ID), "{location}");

    // Sign-out needs the form's CSRF token.
    let refused = b
        .post(server.url("/logout"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Alice Tan"));
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let out = b
        .post(server.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&out), "/?signed_out=1");
    let after = b
        .get(server.url("/?signed_out=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(after.contains("You have signed out") && !after.contains("Alice Tan"));
    server.stop().await;
}

crate::both_backends!(officer_signs_in_through_the_development_upstream);

#[tokio::test]
async fn sessions_end_after_idle_timeout_and_state_cannot_be_replayed() {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    let b = browser();
    let done = sign_in_via(&b, &server.base, "upstream=dev-wog", "bob").await;
    assert_eq!(done.status(), 303);
    let callback_url = done.url().to_string();

    // The same callback again (a replayed state) is refused and creates no session.
    let replay = browser().get(&callback_url).send().await.unwrap();
    assert_eq!(replay.status(), 403);
    assert!(replay
        .text()
        .await
        .unwrap()
        .contains("unknown_or_replayed_state"));

    assert!(b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Bob Lim"));
    clock.advance(server.state.config.session.idle_timeout_secs as i64 + 1);
    let page = b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("Bob Lim") && page.contains("Sign in"),
        "idle session ended"
    );
    server.stop().await;
}

#[tokio::test]
async fn callback_refusals_without_a_valid_attempt() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::callback_refusals").await else {
        return;
    };
    let b = browser();
    let missing = b
        .get(server.url("/callback?code=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("missing_state"));

    // The callback of a sign-in started in another browser is refused (login CSRF).
    let start = b
        .get(server.url("/login?upstream=dev-wog"))
        .send()
        .await
        .unwrap();
    let authorize = see_other(&start);
    let url = url::Url::parse(&authorize).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut action = url.clone();
    action.set_query(None);
    let chosen = b.post(action).form(&form).send().await.unwrap();
    let callback = see_other(&chosen);
    let elsewhere = browser().get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert!(elsewhere.text().await.unwrap().contains("browser_mismatch"));

    let unknown = b
        .get(server.url("/login?upstream=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    server.stop().await;
}

struct Case {
    name: &'static str,
    tamper: Tamper,
    person: &'static str,
    account_types: Vec<AccountTypeName>,
    reason: &'static str,
}

fn case(name: &'static str, tamper: Tamper, person: &'static str, reason: &'static str) -> Case {
    Case {
        name,
        tamper,
        person,
        account_types: vec![AccountTypeName::PublicOfficer],
        reason,
    }
}

/// TechPass configured with one upstream: a development upstream on its own port that forges
/// its tokens as `tamper` says.
async fn run_case(c: &Case) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let (upstream, upstream_task) =
        crate::support::standalone_upstream(&base, clock.clone(), c.tamper).await;
    let issuer = upstream.issuer(dev::WOG_TENANT_ID);

    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.dev_upstream.enabled = Some(false);
    config.upstreams = vec![UpstreamConfig {
        id: "wog".into(),
        display_name: "Public officer".into(),
        issuer,
        client_id: "techpass".into(),
        client_secret: Some(secret("upstream-secret")),
        client_secret_env: None,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        allowed_tenants: vec![dev::WOG_TENANT_ID.into()],
        account_types: c.account_types.clone(),
        mfa: MfaMode::Amr,
        mfa_amr_values: vec!["mfa".into()],
        email_authority: Default::default(),
    }];
    let server = TestServer::start_on(listener, config, clock, dir, Some(db)).await;

    let b = browser();
    let response = sign_in_via(&b, &server.base, "", c.person).await;
    let status = response.status().as_u16();
    let cookies = set_cookies(&response);
    let page = response.text().await.unwrap();
    assert_eq!(status, 403, "{}: {page}", c.name);
    assert!(
        page.contains(c.reason),
        "{}: expected reason {} in the page",
        c.name,
        c.reason
    );
    assert!(
        !cookies.iter().any(|c| c.starts_with("tp_session=")),
        "{}: no session",
        c.name
    );
    assert!(
        !b.get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Signed in as"),
        "{}: not signed in",
        c.name
    );
    let denied = server
        .state
        .store
        .list_audit(&AuditFilter {
            event: Some("signin".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.len(), 1, "{}", c.name);
    assert_eq!(denied[0].outcome, "denied");
    assert_eq!(denied[0].reason.as_deref(), Some(c.reason), "{}", c.name);
    // The reference the page shows finds this event in the audit log.
    let reference = page
        .split("Reference: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("{}: a reference on the page", c.name));
    assert!(!reference.is_empty(), "{}", c.name);
    let found = server
        .state
        .store
        .list_audit(&AuditFilter {
            reference: Some(reference.to_string()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{}: found by its reference", c.name);
    assert_eq!(found[0].id, denied[0].id, "{}", c.name);
    let metrics = server.metrics().await;
    let line = format!(
        r#"techpass_signins_total{{upstream="wog",outcome="denied",reason="{}"}} 1"#,
        c.reason
    );
    assert!(metrics.contains(&line), "{}: {line} in metrics", c.name);
    server.stop().await;
    upstream_task.abort();
}

#[tokio::test]
async fn forged_and_broken_upstream_responses_are_refused_with_their_reason() {
    let cases = vec![
        case("wrong issuer", Tamper::WrongIssuer, "alice", "wrong_issuer"),
        case(
            "iss parameter of another tenant (RFC 9207)",
            Tamper::WrongIssParameter,
            "alice",
            "wrong_iss_parameter",
        ),
        case(
            "a cancel carrying another tenant's iss parameter (RFC 9207)",
            Tamper::WrongIssParameter,
            "cancel",
            "wrong_iss_parameter",
        ),
        case(
            "wrong audience",
            Tamper::WrongAudience,
            "alice",
            "wrong_audience",
        ),
        case("wrong nonce", Tamper::WrongNonce, "alice", "wrong_nonce"),
        case(
            "missing nonce",
            Tamper::MissingNonce,
            "alice",
            "wrong_nonce",
        ),
        case("expired", Tamper::Expired, "alice", "expired_token"),
        case(
            "issued in the future",
            Tamper::IssuedInFuture,
            "alice",
            "issued_in_future",
        ),
        case(
            "unsigned (alg none)",
            Tamper::Unsigned,
            "alice",
            "unsigned_token",
        ),
        case(
            "HS256 keyed with the public key",
            Tamper::AlgConfusion,
            "alice",
            "disallowed_algorithm",
        ),
        case(
            "signed by an unknown key",
            Tamper::UnknownKey,
            "alice",
            "unknown_signing_key",
        ),
        case(
            "tid not allowed",
            Tamper::WrongTenant,
            "alice",
            "tenant_not_allowed",
        ),
        case("no MFA", Tamper::None, "carol", "no_mfa"),
        case(
            "someone from another tenant",
            Tamper::None,
            "mallory",
            "wrong_issuer",
        ),
        case(
            "cancelled at the upstream",
            Tamper::None,
            "cancel",
            "upstream_access_denied",
        ),
        Case {
            name: "officer at a vendor-only upstream",
            tamper: Tamper::None,
            person: "alice",
            account_types: vec![AccountTypeName::Vendor],
            reason: "account_type_not_allowed",
        },
        // AZURE.md §3: a guest's gov.sg address the directory did not verify is no officer's
        // under email_authority = "verified" (the default).
        case(
            "unverified email at an officer-only upstream",
            Tamper::None,
            "erin",
            "email_unverified",
        ),
    ];
    for c in &cases {
        run_case(c).await;
    }
}

/// `audit.stream` (issue 16 item 2): every stored audit event is also appended to the file as
/// one JSON line, for a SIEM's agent to tail; a sign-in and a registration land there.
#[tokio::test]
async fn audit_events_stream_to_a_file_as_json_lines() {
    let db = TestDatabase::new(Backend::Sqlite, "e2e::audit_stream")
        .await
        .unwrap();
    let dir = TempDir::new();
    let stream = dir.0.join("audit.jsonl");
    let mut config = test_config(&db.url, &dir);
    config.audit.stream = stream.to_str().unwrap().to_string();
    let server =
        TestServer::start_with(config, Arc::new(SystemClock), TempDir::new(), Some(db)).await;
    let b = browser();
    let done = sign_in_via(&b, &server.base, "upstream=dev-wog&return_to=/", "alice").await;
    register_if_asked(&b, &server.base, &see_other(&done)).await;
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored = server
        .state
        .store
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        lines.len(),
        stored.len(),
        "every stored event, once: {text}"
    );
    let signin = lines.iter().find(|l| l["event"] == "signin").unwrap();
    assert_eq!(signin["outcome"], "success");
    assert_eq!(signin["details"]["email"], "alice_tan@tech.gov.sg");
    assert!(stored
        .iter()
        .any(|e| e.id == signin["id"].as_i64().unwrap()));
    assert!(lines.iter().any(|l| l["event"] == "registration"));
    server.stop().await;
}
