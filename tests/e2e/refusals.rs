//! Every way a sign-in can end reaches the app that started it: refusals decided during
//! sign-in offer "Return to <app>" (or go straight back when the person chose to leave, or
//! with `prompt=none`); forms whose answer ends at an app let the browser follow; another
//! client's token cannot be revoked; writes sent by another website are refused.

use std::collections::HashMap;

use serde_json::Value;
use std::sync::Arc;
use techpass::provider::clients::{create_app, NewApp};

use techpass_domain::SystemClock;
use techpass_store::testing::{Backend, TestDatabase};

use crate::provider::{authorize, register, APP_CALLBACK};
use crate::signin::sign_in_via_hint;
use crate::support::{browser, client, see_other, test_config, TempDir, TestServer};

const BYE: &str = "https://app.example.gov.sg/bye";

fn authorize_url(server: &TestServer, client_id: &str, hint: &str, extra: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st-1")
        .append_pair("login_hint", hint);
    format!("{url}{extra}")
}

pub fn unescape(html: &str) -> String {
    crate::support::unescape_html(html)
}

/// The "Return to <app>" link of a page, parsed.
fn return_link(html: &str) -> url::Url {
    let href = html
        .split(" href=\"")
        .find_map(|rest| {
            let href = unescape(rest.split('"').next()?);
            href.starts_with(APP_CALLBACK).then_some(href)
        })
        .unwrap_or_else(|| panic!("no link back to the app in {html}"));
    url::Url::parse(&href).unwrap()
}

fn pairs(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// What the app must get back: the error, its own `state`, and TechPass's `iss`.
fn assert_app_told(url: &url::Url, server: &TestServer, error: &str, description: &str) {
    assert!(url.as_str().starts_with(APP_CALLBACK), "{url}");
    let q = pairs(url);
    assert_eq!(q["error"], error, "{url}");
    assert_eq!(q["error_description"], description, "{url}");
    assert_eq!(q["state"], "st-1", "{url}");
    assert_eq!(q["iss"], server.base, "{url}");
    assert!(!q.contains_key("code"), "{url}");
}

async fn refusals_during_sign_in_reach_the_app(backend: Backend) {
    let Some(db) = TestDatabase::new(backend, "e2e::refusals_reach_the_app").await else {
        return;
    };
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.support.contact = "the Service Desk".into();
    config.support.url = "mailto:desk@tech.gov.sg".into();
    config.support.mfa_help_url = "https://help.tech.gov.sg/mfa".into();
    let server = TestServer::start_with(config, Arc::new(SystemClock), dir, Some(db)).await;
    let app = register(&server, true, &["authorization_code"]).await;

    // No MFA: the person can act (sign in again with MFA), so a page explains, with the way
    // back to the app.
    let b = browser();
    let start = b
        .get(authorize_url(
            &server,
            &app.client_id,
            "carol_ng@tech.gov.sg",
            "",
        ))
        .send()
        .await
        .unwrap();
    let done = sign_in_via_hint(&b, &server.base, &see_other(&start), "carol").await;
    assert_eq!(done.status(), 403);
    let html = done.text().await.unwrap();
    assert!(
        html.contains("Multi-factor authentication required"),
        "{html}"
    );
    assert!(html.contains("Return to Test app"), "{html}");
    // The configured help: the MFA set-up page, and the contact with the reference to quote.
    assert!(
        html.contains(r#"<a href="https:&#x2f;&#x2f;help.tech.gov.sg&#x2f;mfa">How to set up multi-factor authentication</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="mailto:desk@tech.gov.sg">Contact the Service Desk</a> and quote the reference below."#),
        "{html}"
    );
    assert_app_told(&return_link(&html), &server, "access_denied", "no_mfa");

    // Cancelled at the upstream: the person chose to leave, so straight back to the app.
    let b = browser();
    let start = b
        .get(authorize_url(
            &server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
            "",
        ))
        .send()
        .await
        .unwrap();
    let cancelled = sign_in_via_hint(&b, &server.base, &see_other(&start), "cancel").await;
    let back = url::Url::parse(&see_other(&cancelled)).unwrap();
    assert_app_told(&back, &server, "access_denied", "upstream_access_denied");

    // A sign-in started from TechPass itself (no app) still ends on the page.
    let b = browser();
    let cancelled = crate::signin::sign_in_via(
        &b,
        &server.base,
        "login_hint=alice_tan%40tech.gov.sg",
        "cancel",
    )
    .await;
    assert_eq!(cancelled.status(), 403);
    let html = cancelled.text().await.unwrap();
    assert!(html.contains("Sign-in cancelled"), "{html}");
    assert!(html.contains("href=\"/login\""), "{html}");
    server.stop().await;
}

async fn prompt_none_refusals_go_straight_back(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::prompt_none_refusals").await else {
        return;
    };
    let app = register(&server, true, &["authorization_code"]).await;

    // A vendor with a session but no invitation: prompt=none shows no page.
    let vendor = browser();
    let start = vendor
        .get(authorize_url(
            &server,
            &app.client_id,
            "dave@vendorco.example",
            "",
        ))
        .send()
        .await
        .unwrap();
    let done = sign_in_via_hint(&vendor, &server.base, &see_other(&start), "dave").await;
    see_other(&done);
    let silent = vendor
        .get(authorize_url(
            &server,
            &app.client_id,
            "dave@vendorco.example",
            "&prompt=none",
        ))
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(&see_other(&silent)).unwrap();
    assert_app_told(&back, &server, "access_denied", "not_registered");

    // An officer who has not registered yet must interact (OpenID Connect Core §3.1.2.6).
    let officer = browser();
    let start = officer
        .get(authorize_url(
            &server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
            "",
        ))
        .send()
        .await
        .unwrap();
    let done = sign_in_via_hint(&officer, &server.base, &see_other(&start), "alice").await;
    let register_at = see_other(&done);
    assert!(register_at.starts_with("/register?"), "{register_at}");
    let silent = officer
        .get(authorize_url(
            &server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
            "&prompt=none",
        ))
        .send()
        .await
        .unwrap();
    let back = url::Url::parse(&see_other(&silent)).unwrap();
    assert_eq!(pairs(&back)["error"], "interaction_required", "{back}");
    assert_eq!(pairs(&back)["state"], "st-1");

    // The registration page says where it leads: its CSP lets the redirect to the app through
    // (form-action applies to redirects after a form post), and "Not now" goes back with
    // access_denied.
    let page = officer.get(server.url(&register_at)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://app.example.gov.sg;"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Not now: return to Test app"), "{html}");
    assert_app_told(
        &return_link(&html),
        &server,
        "access_denied",
        "not_registered",
    );

    // A page that leads nowhere else keeps form-action to TechPass alone.
    let home = officer.get(server.url("/")).send().await.unwrap();
    assert!(home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("form-action 'self';"));
    server.stop().await;
}

#[tokio::test]
async fn the_logout_confirmation_lets_the_browser_return_to_the_app() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::logout_confirmation_csp").await
    else {
        return;
    };
    let app = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Bye app".into(),
            confidential: true,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![BYE.into()],
            grant_types: vec!["authorization_code".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let b = browser();
    let signed_in = sign_in_via_hint(
        &b,
        &server.base,
        "/login?login_hint=bob_lim%40hdb.gov.sg",
        "bob",
    )
    .await;
    see_other(&signed_in);
    let ask = b
        .get(server.url(&format!(
            "/end-session?client_id={}&post_logout_redirect_uri={}&state=s",
            app.client_id,
            url::form_urlencoded::byte_serialize(BYE.as_bytes()).collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(ask.status(), 200);
    let csp = ask.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example.gov.sg;"),
        "{csp}"
    );
    server.stop().await;
}

#[tokio::test]
async fn another_clients_token_cannot_be_revoked() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::revoke_other_client").await else {
        return;
    };
    let a = register(
        &server,
        true,
        &["authorization_code", "refresh_token", "client_credentials"],
    )
    .await;
    let b_app = register(&server, true, &["client_credentials"]).await;
    let (a_id, a_secret) = (&a.client_id, a.client_secret.as_deref().unwrap());
    let (b_id, b_secret) = (&b_app.client_id, b_app.client_secret.as_deref().unwrap());

    // A's refresh token, through a real sign-in.
    let person = browser();
    let url = authorize(
        &person,
        &server,
        &authorize_url(&server, a_id, "alice_tan@tech.gov.sg", ""),
        "alice",
    )
    .await;
    let code = pairs(&url)["code"].clone();
    let tokens: Value = client()
        .post(server.url("/token"))
        .basic_auth(a_id, Some(a_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let access = tokens["access_token"].as_str().unwrap().to_string();

    // B presents A's tokens: refused with an error (RFC 7009 §2.1), and they stay valid.
    for (kind, token) in [("refresh", &refresh), ("access", &access)] {
        let refused = client()
            .post(server.url("/revoke"))
            .basic_auth(b_id, Some(b_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{kind}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client", "{kind}");
    }
    let introspected: Value = client()
        .post(server.url("/introspect"))
        .basic_auth(a_id, Some(a_secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "A's access token still valid");
    let refreshed = client()
        .post(server.url("/token"))
        .basic_auth(a_id, Some(a_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200, "A's refresh token still valid");

    // A unknown token is still a success (RFC 7009 §2.2), and A may revoke its own.
    for token in ["not-a-token", access.as_str()] {
        let ok = client()
            .post(server.url("/revoke"))
            .basic_auth(a_id, Some(a_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_write_from_another_website_is_refused_even_with_its_csrf_token() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::cross_origin_writes").await else {
        return;
    };
    let b = browser();
    let signed_in = sign_in_via_hint(
        &b,
        &server.base,
        "/login?login_hint=bob_lim%40hdb.gov.sg",
        "bob",
    )
    .await;
    see_other(&signed_in);
    let home = b
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = home
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let still_signed_in = || async {
        b.get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Signed in as")
    };
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let refused = b
            .post(server.url("/logout"))
            .header(header, value)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{header}: {value}");
        assert!(refused.text().await.unwrap().contains("another website"));
        assert!(still_signed_in().await, "{header}: {value}");
    }
    // The same form from TechPass's own page (as Chromium sends it under no-referrer).
    let signed_out = b
        .post(server.url("/logout"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&signed_out), "/?signed_out=1");
    assert!(!still_signed_in().await);

    // Apps post to the protocol endpoints from their own origin: those are not affected.
    let from_app = b
        .post(server.url("/end-session"))
        .header("origin", "https://app.example.gov.sg")
        .header("sec-fetch-site", "cross-site")
        .form(&[("state", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(from_app.status(), 200);
    server.stop().await;
}

crate::both_backends!(
    refusals_during_sign_in_reach_the_app,
    prompt_none_refusals_go_straight_back
);

/// TechPass with one upstream, a development upstream on its own port that the test can stop.
async fn with_a_separate_upstream() -> (TestServer, tokio::task::JoinHandle<std::io::Result<()>>) {
    use std::sync::Arc;
    use techpass::config::{AccountTypeName, MfaMode, UpstreamConfig};
    use techpass_domain::{Clock, SystemClock};
    use techpass_upstream::dev::{self, Tamper};
    use tokio::net::TcpListener;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (upstream, upstream_task) =
        crate::support::standalone_upstream(&base, clock.clone(), Tamper::None).await;
    let issuer = upstream.issuer(dev::WOG_TENANT_ID);
    let db = techpass_store::testing::TestDatabase::sqlite().await;
    let dir = crate::support::TempDir::new();
    let mut config = crate::support::test_config(&db.url, &dir);
    config.dev_upstream.enabled = Some(false);
    config.upstreams = vec![UpstreamConfig {
        id: "wog".into(),
        display_name: "Public officer".into(),
        issuer,
        client_id: "techpass".into(),
        client_secret: Some(crate::support::secret("upstream-secret")),
        client_secret_env: None,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        allowed_tenants: vec![dev::WOG_TENANT_ID.into()],
        account_types: vec![AccountTypeName::PublicOfficer],
        mfa: MfaMode::Amr,
        mfa_amr_values: vec!["mfa".into()],
        email_authority: Default::default(),
    }];
    let server = TestServer::start_on(listener, config, clock, dir, Some(db)).await;
    (server, upstream_task)
}

#[tokio::test]
async fn an_upstream_that_stops_answering_sends_the_app_temporarily_unavailable() {
    let (server, upstream) = with_a_separate_upstream().await;
    let app = register(&server, true, &["authorization_code"]).await;
    let b = browser();
    let start = b
        .get(authorize_url(
            &server,
            &app.client_id,
            "alice_tan@tech.gov.sg",
            "",
        ))
        .send()
        .await
        .unwrap();
    let login = see_other(&start);
    let to_upstream = see_other(&b.get(server.url(&login)).send().await.unwrap());
    let picker_url = url::Url::parse(&to_upstream).unwrap();
    let mut form: Vec<(String, String)> = picker_url.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut action = picker_url.clone();
    action.set_query(None);
    let chosen = b.post(action).form(&form).send().await.unwrap();
    let callback = see_other(&chosen);

    // The upstream goes away between the person's sign-in and TechPass's code exchange.
    upstream.abort();
    let _ = upstream.await;
    let failed = b.get(&callback).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    let html = failed.text().await.unwrap();
    assert!(html.contains("Sign-in is unavailable"), "{html}");
    assert!(html.contains("Return to Test app"), "{html}");
    let link = return_link(&html);
    let q = pairs(&link);
    assert_eq!(q["error"], "temporarily_unavailable", "{link}");
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], server.base);
    server.stop().await;
}
