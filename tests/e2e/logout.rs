//! RP-initiated and back-channel logout: the session ends, its refresh families with it, the
//! apps are told, and the person's other devices are untouched.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Form, Router};
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::Value;
use techpass::provider::clients::{create_app, CreatedApp, NewApp};
use techpass_store::testing::Backend;
use tokio::net::TcpListener;

use crate::provider::{authorize, APP_CALLBACK};
use crate::support::{browser, client, see_other, TestServer};

const BYE: &str = "https://app.example.gov.sg/bye";

struct Tokens {
    id_token: String,
    refresh_token: String,
}

async fn sign_in(
    b: &reqwest::Client,
    server: &TestServer,
    app: &CreatedApp,
    person: &str,
    email: &str,
) -> Tokens {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email offline_access")
        .append_pair("nonce", "n-1")
        .append_pair("login_hint", email);
    let back = authorize(b, server, url.as_str(), person).await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body: Value = client()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, app.client_secret.as_deref())
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
    Tokens {
        id_token: body["id_token"].as_str().unwrap().to_string(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
    }
}

async fn refresh_status(server: &TestServer, app: &CreatedApp, rt: &str) -> u16 {
    client()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, app.client_secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).unwrap(),
    )
    .unwrap()
}

async fn logout_ends_one_session_and_tells_the_app(backend: Backend) {
    let Some(server) =
        TestServer::start(backend, "e2e::logout_ends_one_session_and_tells_the_app").await
    else {
        return;
    };
    // The app's back-channel endpoint: records every logout token posted to it.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let receiver = Router::new().route(
        "/backchannel",
        post(
            move |Form(form): Form<std::collections::HashMap<String, String>>| {
                let sink = sink.clone();
                async move {
                    if let Some(t) = form.get("logout_token") {
                        sink.lock().unwrap().push(t.clone());
                    }
                    ""
                }
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backchannel = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let receiver_task = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let app = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Logout app".into(),
            confidential: true,
            redirect_uris: vec![APP_CALLBACK.into()],
            post_logout_redirect_uris: vec![BYE.into()],
            backchannel_logout_uri: Some(backchannel),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            jwks: None,
            ..NewApp::default()
        },
    )
    .await
    .unwrap();

    // Alice on two devices.
    let laptop = browser();
    let phone = browser();
    let on_laptop = sign_in(&laptop, &server, &app, "alice", "alice_tan@tech.gov.sg").await;
    let on_phone = sign_in(&phone, &server, &app, "alice", "alice_tan@tech.gov.sg").await;

    // A return address that is not registered: refused without redirect, nothing ended.
    let bad = laptop
        .get(server.url(&format!(
            "/end-session?id_token_hint={}&post_logout_redirect_uri={}",
            on_laptop.id_token,
            url::form_urlencoded::byte_serialize(b"https://evil.example/").collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("location").is_none());
    assert_eq!(
        refresh_status(&server, &app, &on_laptop.refresh_token).await,
        200
    );
    // (That refresh rotated the laptop's token; the family is what matters from here.)

    let out = laptop
        .get(server.url(&format!(
            "/end-session?id_token_hint={}&post_logout_redirect_uri={}&state=st-9",
            on_laptop.id_token,
            url::form_urlencoded::byte_serialize(BYE.as_bytes()).collect::<String>()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(see_other(&out), format!("{BYE}?state=st-9"));
    let home = laptop
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !home.contains("Signed in as"),
        "the laptop's SSO session ended"
    );
    assert!(phone
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as"));
    assert_eq!(
        refresh_status(&server, &app, &on_phone.refresh_token).await,
        200,
        "the phone keeps its family"
    );

    // The app was told, with a logout token it can verify.
    let mut token = None;
    for _ in 0..50 {
        if let Some(t) = received.lock().unwrap().first().cloned() {
            token = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = token.expect("back-channel logout delivered within 5 s");
    let header = decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = server.get("/jwks").await.json().await.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&app.client_id]);
    validation.set_issuer(&[server.base.as_str()]);
    let claims = decode::<Value>(&token, &key, &validation).unwrap().claims;
    let id_claims = payload(&on_laptop.id_token);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "one app, one notification"
    );

    // Without an ID token hint the person is asked first (logout CSRF), with a CSRF-bound form.
    let ask = phone.get(server.url("/end-session")).send().await.unwrap();
    assert_eq!(ask.status(), 200);
    let page = ask.text().await.unwrap();
    assert!(page.contains("Sign out of TechPass?"));
    let forged = phone
        .post(server.url("/end-session"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("Sign out of TechPass?"),
        "not signed out by a forged form"
    );
    assert!(phone
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as"));
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let confirmed = phone
        .post(server.url("/end-session"))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed
        .text()
        .await
        .unwrap()
        .contains("You have signed out"));
    assert!(!phone
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as"));
    receiver_task.abort();
    server.stop().await;
}

/// Bounded staleness at `/authorize` (issue 13 item 6), with the in-process development
/// upstream: Alice, disabled there, keeps refreshing until `upstream.reverify_after_secs` has
/// passed (TechPass does not ask before); the first SSO reuse after it asks, hears
/// `invalid_grant`, ends both her sessions (her app told by back-channel logout), revokes her
/// refresh tokens and sends her to sign in again, which the upstream refuses.
async fn an_upstream_refusal_at_sso_reuse_signs_the_person_out_everywhere(backend: Backend) {
    upstream_refusal(backend, "authorize").await;
}

/// As above, with the portal as the first request past the bound: a portal session is held to
/// the same bound (a disabled admin cannot keep changing apps for the rest of a 12-hour session).
async fn an_upstream_refusal_at_the_portal_signs_the_person_out_everywhere(backend: Backend) {
    upstream_refusal(backend, "portal").await;
}

/// As above, with the JSON API (session cookie) as the first request past the bound: 401.
async fn an_upstream_refusal_at_the_api_signs_the_person_out_everywhere(backend: Backend) {
    upstream_refusal(backend, "api").await;
}

async fn upstream_refusal(backend: Backend, via: &str) {
    let test = format!("e2e::an_upstream_refusal_via_{via}");
    let test = test.as_str();
    let Some(db) = techpass_store::testing::TestDatabase::new(backend, test).await else {
        return;
    };
    let dir = crate::support::TempDir::new();
    let config = crate::support::test_config(&db.url, &dir);
    let bound = config.upstream.reverify_after_secs as i64;
    let clock = Arc::new(techpass_domain::ManualClock::new(
        techpass_domain::Clock::now(&techpass_domain::SystemClock),
    ));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let receiver = Router::new().route(
        "/backchannel",
        post(
            move |Form(form): Form<std::collections::HashMap<String, String>>| {
                let sink = sink.clone();
                async move {
                    if let Some(t) = form.get("logout_token") {
                        sink.lock().unwrap().push(t.clone());
                    }
                    ""
                }
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backchannel = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let receiver_task = tokio::spawn(async move { axum::serve(listener, receiver).await });
    let app = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Reverified app".into(),
            confidential: true,
            redirect_uris: vec![APP_CALLBACK.into()],
            backchannel_logout_uri: Some(backchannel),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let laptop = browser();
    let phone = browser();
    let on_laptop = sign_in(&laptop, &server, &app, "alice", "alice_tan@tech.gov.sg").await;
    sign_in(&phone, &server, &app, "alice", "alice_tan@tech.gov.sg").await;

    // Disabled at the upstream, on its people page.
    let disabled = client()
        .post(server.url("/dev/azure/people"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("person", "alice"), ("action", "disable")])
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);

    // Within the bound TechPass does not ask: the refresh still works.
    clock.advance(bound - 1);
    let refreshed: Value = client()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, app.client_secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &on_laptop.refresh_token),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated = refreshed["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{refreshed}"))
        .to_string();

    // Past it, the first request asks the upstream: refused, sent to sign in again.
    clock.advance(2);
    let location = if via == "api" {
        let me = laptop.get(server.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(me.status(), 401);
        let body = me.text().await.unwrap();
        assert!(body.contains("confirmed with the upstream"), "{body}");
        "/login?return_to=%2F&prompt=login".to_string()
    } else if via == "portal" {
        let page = laptop.get(server.url("/portal")).send().await.unwrap();
        let location = see_other(&page);
        assert!(
            location.starts_with("/login?") && location.contains("prompt=login"),
            "{location}"
        );
        location
    } else {
        let again = laptop
            .get(server.url(&format!(
                "/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&login_hint=alice_tan%40tech.gov.sg",
                app.client_id,
                url::form_urlencoded::byte_serialize(APP_CALLBACK.as_bytes()).collect::<String>()
            )))
            .send()
            .await
            .unwrap();
        let location = see_other(&again);
        assert!(location.starts_with("/login?"), "{location}");
        location
    };
    // Both sessions ended (the phone is signed out too), the refresh token is dead.
    for b in [&laptop, &phone] {
        let home = b.get(server.url("/")).send().await.unwrap();
        assert!(!home.text().await.unwrap().contains("Signed in as"));
    }
    assert_eq!(refresh_status(&server, &app, &rotated).await, 400);
    // The app is told, once per session, by back-channel logout.
    for _ in 0..50 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tokens = received.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2, "one logout token per session");
    assert_eq!(payload(&tokens[0])["aud"], app.client_id.as_str());
    let audited = server
        .state
        .store
        .list_audit(&techpass_store::AuditFilter {
            event: Some("upstream.reverify_failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].reason.as_deref(), Some("upstream_refused"));
    assert_eq!(audited[0].upstream.as_deref(), Some("dev-wog"));

    // Signing in again: the upstream refuses her.
    // (From the portal there is no login hint: she picks the upstream.)
    let location = if via != "authorize" {
        format!("{location}&upstream=dev-wog")
    } else {
        location
    };
    let login = laptop.get(server.url(&location)).send().await.unwrap();
    let to_upstream = url::Url::parse(&see_other(&login)).unwrap();
    let mut form: Vec<(String, String)> = to_upstream.query_pairs().into_owned().collect();
    form.push(("person".into(), "alice".into()));
    let mut action = to_upstream.clone();
    action.set_query(None);
    let picked = laptop.post(action).form(&form).send().await.unwrap();
    assert_eq!(picked.status(), 403);
    receiver_task.abort();
    server.stop().await;
}

crate::both_backends!(
    an_upstream_refusal_at_the_api_signs_the_person_out_everywhere,
    an_upstream_refusal_at_the_portal_signs_the_person_out_everywhere,
    logout_ends_one_session_and_tells_the_app,
    an_upstream_refusal_at_sso_reuse_signs_the_person_out_everywhere
);
