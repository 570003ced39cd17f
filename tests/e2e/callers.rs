//! One-time values are consumed only by their rightful caller (issue 13, SECURITY 33–35): a
//! code by its client with its `redirect_uri` and PKCE verifier, a refresh token by its
//! client; a replay by the rightful caller still revokes what the value produced, a wrong
//! caller changes nothing. Client assertions stay single-use until `exp` + the accepted skew.
//! Only an ID token of ours is an `id_token_hint`.

use serde_json::Value;
use techpass::provider::clients::{create_app, NewApp};
use techpass_store::testing::Backend;

use crate::machine::active;
use crate::provider::{authorize, register, APP_CALLBACK};
use crate::support::{browser, client, TestServer};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A fresh code for `client_id` (Alice, PKCE S256 with [`CHALLENGE`]).
async fn code_for(server: &TestServer, b: &reqwest::Client, client_id: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", APP_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s")
        .append_pair("login_hint", "alice_tan@tech.gov.sg")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let back = authorize(b, server, url.as_str(), "alice").await;
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {back}"))
        .1
        .into_owned()
}

/// A token request by (`id`, `secret`): (status, body).
async fn token(server: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn refresh(server: &TestServer, id: &str, secret: &str, rt: &str) -> (u16, Value) {
    token(
        server,
        id,
        secret,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// A named token request by a client: (case, client id, secret, form).
type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>);

fn assert_invalid_grant((status, body): &(u16, Value), case: &str) {
    assert_eq!(
        (*status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{case}: {body}"
    );
    assert!(body.get("access_token").is_none(), "{case}");
}

async fn a_code_is_consumed_only_by_its_rightful_caller(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::code_rightful_caller").await else {
        return;
    };
    let a = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let b_app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let (a_id, a_secret) = (&a.client_id, a.client_secret.as_deref().unwrap());
    let (b_id, b_secret) = (&b_app.client_id, b_app.client_secret.as_deref().unwrap());
    let b = browser();
    let code = code_for(&server, &b, a_id).await;
    let exchange = |redirect: &'static str, verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        form
    };
    let wrong_verifier = "x".repeat(43).leak() as &'static str;

    // Wrong callers: each refused, and none of them burns the code.
    let cases: [Case; 4] = [
        (
            "another client",
            b_id,
            b_secret,
            exchange(APP_CALLBACK, Some(VERIFIER)),
        ),
        (
            "another redirect_uri",
            a_id,
            a_secret,
            exchange("http://127.0.0.1/native", Some(VERIFIER)),
        ),
        (
            "a wrong verifier",
            a_id,
            a_secret,
            exchange(APP_CALLBACK, Some(wrong_verifier)),
        ),
        ("no verifier", a_id, a_secret, exchange(APP_CALLBACK, None)),
    ];
    for (case, id, secret, form) in &cases {
        assert_invalid_grant(&token(&server, id, secret, form).await, case);
    }

    // The rightful exchange still works.
    let (status, first) = token(
        &server,
        a_id,
        a_secret,
        &exchange(APP_CALLBACK, Some(VERIFIER)),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let at = first["access_token"].as_str().unwrap().to_string();
    let rt = first["refresh_token"].as_str().unwrap().to_string();

    // The used code presented again by wrong callers: refused, A's tokens untouched.
    for (case, id, secret, form) in &cases {
        assert_invalid_grant(&token(&server, id, secret, form).await, case);
        assert!(active(&server, a_id, a_secret, &at).await, "after {case}");
    }
    // Replayed by its rightful caller: refused, and what the first exchange produced is revoked.
    assert_invalid_grant(
        &token(
            &server,
            a_id,
            a_secret,
            &exchange(APP_CALLBACK, Some(VERIFIER)),
        )
        .await,
        "replay",
    );
    assert!(!active(&server, a_id, a_secret, &at).await);
    assert!(!active(&server, a_id, a_secret, &rt).await);
    server.stop().await;
}

async fn a_refresh_token_is_consumed_only_by_its_client(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::refresh_rightful_caller").await else {
        return;
    };
    let a = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let b_app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let (a_id, a_secret) = (&a.client_id, a.client_secret.as_deref().unwrap());
    let (b_id, b_secret) = (&b_app.client_id, b_app.client_secret.as_deref().unwrap());
    let b = browser();
    let code = code_for(&server, &b, a_id).await;
    let (status, first) = token(
        &server,
        a_id,
        a_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let at = first["access_token"].as_str().unwrap().to_string();
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    // B presents A's refresh token: refused; the token is neither consumed nor its grant revoked.
    assert_invalid_grant(
        &refresh(&server, b_id, b_secret, &rt1).await,
        "another client, live token",
    );
    assert!(active(&server, a_id, a_secret, &at).await);
    assert!(active(&server, a_id, a_secret, &rt1).await);
    let (status, second) = refresh(&server, a_id, a_secret, &rt1).await;
    assert_eq!(status, 200, "A's own refresh after B's attempt: {second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();

    // B replays A's rotated token: refused, and A's family lives on.
    assert_invalid_grant(
        &refresh(&server, b_id, b_secret, &rt1).await,
        "another client, used token",
    );
    assert!(active(&server, a_id, a_secret, &rt2).await);

    // A moves on to rt3, then replays its rotated rt1: refused, and the whole family is revoked
    // (RFC 9700 §4.14.2). (Before rt2 was used, rt1 again would be a retry after a lost answer.)
    let (status, third) = refresh(&server, a_id, a_secret, &rt2).await;
    assert_eq!(status, 200, "{third}");
    let rt3 = third["refresh_token"].as_str().unwrap().to_string();
    assert_invalid_grant(&refresh(&server, a_id, a_secret, &rt1).await, "replay");
    assert!(!active(&server, a_id, a_secret, &rt3).await);
    assert_invalid_grant(
        &refresh(&server, a_id, a_secret, &rt3).await,
        "family revoked",
    );
    server.stop().await;
}

async fn an_assertion_stays_single_use_until_exp_plus_skew(backend: Backend) {
    use crate::provider::private_key_jwt::{jws, p256};
    let Some((server, clock)) =
        crate::tenancy::start_with_clock(backend, "e2e::assertion_replay_skew").await
    else {
        return;
    };
    let (pair, jwks) = p256();
    let app = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        crate::tenancy::T0,
        server.state.http.policy(),
        NewApp {
            name: "Keyed app".into(),
            confidential: true,
            grant_types: vec!["client_credentials".into()],
            jwks: Some(jwks),
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let now = crate::tenancy::T0;
    let assertion = jws(
        &pair,
        serde_json::json!({"alg": "ES256", "kid": "k1"}),
        &serde_json::json!({
            "iss": app.client_id, "sub": app.client_id, "aud": server.url("/token"),
            "exp": now + 60, "iat": now, "jti": "once",
        }),
    );
    let send = || {
        let request = client().post(server.url("/token")).form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ]);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(send().await.status(), 200);
    // One second after `exp`, inside the accepted skew, after the background purge ran.
    clock.advance(61);
    let purged = server
        .state
        .store
        .delete_expired_assertions(now + 61)
        .await
        .unwrap();
    assert_eq!(purged, 0, "the jti is kept until exp + skew");
    let replay = send().await;
    assert_eq!(replay.status(), 401);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // Past exp + skew the assertion is dead anyway, and its record may go.
    clock.advance(30);
    assert_eq!(send().await.status(), 401);
    assert_eq!(
        server
            .state
            .store
            .delete_expired_assertions(now + 92)
            .await
            .unwrap(),
        1
    );
    server.stop().await;
}

/// Issue 15 item 8: the answer to a refresh is lost (a replica killed mid-request, a dropped
/// connection) and the app retries with the same token: it gets new tokens instead of having
/// its session ended as a replay; the refresh token it never received is refused without
/// harm, and a later replay is still caught.
async fn a_refresh_whose_answer_was_lost_is_retried(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::refresh_retry").await else {
        return;
    };
    let a = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let (a_id, a_secret) = (&a.client_id, a.client_secret.as_deref().unwrap());
    let b = browser();
    let code = code_for(&server, &b, a_id).await;
    let (status, first) = token(
        &server,
        a_id,
        a_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    // The answer never reaches the app.
    let (status, lost) = refresh(&server, a_id, a_secret, &rt1).await;
    assert_eq!(status, 200, "{lost}");
    let never_received = lost["refresh_token"].as_str().unwrap().to_string();
    // Its retry, seconds later, with the same token.
    let (status, retried) = refresh(&server, a_id, a_secret, &rt1).await;
    assert_eq!(status, 200, "a retry within the grace: {retried}");
    let rt2 = retried["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt2, never_received);
    assert_invalid_grant(
        &refresh(&server, a_id, a_secret, &never_received).await,
        "the successor the app never got",
    );
    let (status, third) = refresh(&server, a_id, a_secret, &rt2).await;
    assert_eq!(status, 200, "the family lives on: {third}");
    let rt3 = third["refresh_token"].as_str().unwrap().to_string();
    // rt1 once more, now that its successor was used: a replay; the family ends.
    assert_invalid_grant(&refresh(&server, a_id, a_secret, &rt1).await, "replay");
    assert!(!active(&server, a_id, a_secret, &rt3).await);
    server.stop().await;
}

crate::both_backends!(
    a_refresh_whose_answer_was_lost_is_retried,
    a_code_is_consumed_only_by_its_rightful_caller,
    a_refresh_token_is_consumed_only_by_its_client,
    an_assertion_stays_single_use_until_exp_plus_skew,
);

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).unwrap(),
    )
    .unwrap()
}

/// Whether `b` still has a TechPass session (the home page greets it).
async fn signed_in(server: &TestServer, b: &reqwest::Client) -> bool {
    b.get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as")
}

#[tokio::test]
async fn only_an_id_token_of_ours_is_a_logout_hint() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::logout_hint_kind").await else {
        return;
    };
    let a = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let machine = register(&server, true, &["client_credentials"]).await;
    let (a_id, a_secret) = (&a.client_id, a.client_secret.as_deref().unwrap());
    let b = browser();
    let code = code_for(&server, &b, a_id).await;
    let (status, tokens) = token(
        &server,
        a_id,
        a_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", APP_CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, machine_tokens) = token(
        &server,
        &machine.client_id,
        machine.client_secret.as_deref().unwrap(),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert!(signed_in(&server, &b).await);

    // A person's access token (same sub, same iss, aud = the app) and an app's own token: each
    // refused with a page, and the person stays signed in.
    for (case, hint) in [
        (
            "a person's access token",
            tokens["access_token"].as_str().unwrap(),
        ),
        (
            "an app's access token",
            machine_tokens["access_token"].as_str().unwrap(),
        ),
    ] {
        let url = format!(
            "/end-session?id_token_hint={}",
            url::form_urlencoded::byte_serialize(hint.as_bytes()).collect::<String>()
        );
        let page = b.get(server.url(&url)).send().await.unwrap();
        assert_eq!(page.status(), 400, "{case}");
        let html = page.text().await.unwrap();
        assert!(html.contains("ID token"), "{case}: {html}");
        assert!(signed_in(&server, &b).await, "{case}: still signed in");
    }

    // A JWT TechPass did not sign: refused too.
    let (pair, _) = crate::provider::private_key_jwt::p256();
    let mut forged_claims = payload(tokens["id_token"].as_str().unwrap());
    forged_claims["forged"] = true.into();
    let forged = crate::provider::private_key_jwt::jws(
        &pair,
        serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
        &forged_claims,
    );
    let page = b
        .get(server.url(&format!("/end-session?id_token_hint={forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("did not issue"));
    assert!(signed_in(&server, &b).await);

    // The ID token itself is a hint: signed out without a question.
    let url = format!(
        "/end-session?id_token_hint={}",
        tokens["id_token"].as_str().unwrap()
    );
    let page = b.get(server.url(&url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You have signed out"));
    assert!(!signed_in(&server, &b).await);
    server.stop().await;
}
