//! The OpenID Provider end to end, driven by a real relying-party library (the `openidconnect`
//! crate) and a cookie-keeping browser, plus tables of bad requests per endpoint.

use std::sync::Arc;

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use techpass::provider::clients::{create_app, CreatedApp, NewApp};
use techpass_domain::{Clock, ManualClock, SystemClock};
use techpass_store::testing::{Backend, TestDatabase};

use crate::signin::{register_if_asked, sign_in_via_hint};
use crate::support::{browser, client, see_other, test_config, TempDir, TestServer};

pub const APP_CALLBACK: &str = "https://app.example.gov.sg/callback";

pub async fn register(server: &TestServer, confidential: bool, grant_types: &[&str]) -> CreatedApp {
    create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: "Test app".into(),
            confidential,
            redirect_uris: vec![APP_CALLBACK.into(), "http://127.0.0.1/native".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
            jwks: None,
            ..NewApp::default()
        },
    )
    .await
    .unwrap()
}

fn http() -> reqwest::Client {
    client()
}

/// Follows a browser through `/authorize` (signing in at the development upstream if needed)
/// until TechPass redirects to the app; returns that URL.
pub async fn authorize(
    b: &reqwest::Client,
    server: &TestServer,
    authorize_url: &str,
    person: &str,
) -> url::Url {
    let mut response = b.get(authorize_url).send().await.unwrap();
    let mut location = see_other(&response);
    if location.starts_with("/login") {
        let done = sign_in_via_hint(b, &server.base, &location, person).await;
        let back = register_if_asked(b, &server.base, &see_other(&done)).await;
        assert!(back.starts_with("/authorize?"), "{back}");
        response = b.get(server.url(&back)).send().await.unwrap();
        location = see_other(&response);
    }
    let url = url::Url::parse(&location).unwrap();
    if query(&url, "code").is_some() {
        // A redirect that carries a code is never stored by a cache (RFC 9111 §5.2.2.5).
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{location}"
        );
    }
    url
}

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn relying_party_signs_in_refreshes_and_revokes(backend: Backend) {
    let Some(server) =
        TestServer::start(backend, "e2e::relying_party_signs_in_refreshes_and_revokes").await
    else {
        return;
    };
    let app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let http = http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.client_secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("login_hint", "alice_tan@tech.gov.sg")
        .set_pkce_challenge(challenge)
        .url();

    let b = browser();
    let back = authorize(&b, &server, auth_url.as_str(), "alice").await;
    assert!(back.as_str().starts_with(APP_CALLBACK), "{back}");
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(server.base.as_str()),
        "RFC 9207 iss"
    );
    let code = query(&back, "code").unwrap();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let claims = id_token.claims(&rp.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice_tan@tech.gov.sg");
    // The directory vouches for its own members' addresses (xms_edov), so TechPass does too.
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(
        claims.given_name().unwrap().get(None).unwrap().as_str(),
        "Alice"
    );
    assert_eq!(
        claims.family_name().unwrap().get(None).unwrap().as_str(),
        "Tan"
    );
    assert_eq!(
        claims.name().unwrap().get(None).unwrap().as_str(),
        "Alice Tan"
    );
    assert!(claims.auth_time().is_some());
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    assert!(amr.contains(&"mfa".to_string()), "{amr:?}");
    let sub = claims.subject().as_str().to_string();
    let id_payload: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.to_string().split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(id_payload["account_type"], "public_officer");
    // acr reflects the proven MFA, in a value discovery lists.
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        techpass_oidc::ACR_MFA
    );
    let discovery: Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["acr_values_supported"][0], techpass_oidc::ACR_MFA);
    for claim in [
        "account_type",
        "groups",
        "roles",
        "email_verified",
        "given_name",
    ] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim} in claims_supported"
        );
    }
    assert_eq!(discovery["claims_parameter_supported"], false);
    // at_hash binds the access token (openidconnect checks it when asked).
    let expected_hash = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&rp.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    // The access token is an RFC 9068 JWT.
    let at = tokens.access_token().secret().clone();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            at.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");

    // userinfo, GET with a Bearer header and POST with a form.
    let info = http
        .get(server.url("/userinfo"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    assert_eq!(info.headers()["cache-control"], "no-store");
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], sub);
    assert_eq!(info["email"], "alice_tan@tech.gov.sg");
    assert_eq!(info["account_type"], "public_officer");
    let posted = http
        .post(server.url("/userinfo"))
        .form(&[("access_token", &at)])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    // Introspection by the client it was issued to.
    let secret = app.client_secret.clone().unwrap();
    let introspect = |token: String| {
        let (http, url, id, secret) = (
            http.clone(),
            server.url("/introspect"),
            app.client_id.clone(),
            secret.clone(),
        );
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let active = introspect(at.clone()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], sub);
    assert_eq!(active["client_id"], app.client_id);

    // Refresh: rotation; the old token's reuse, once its successor was used, revokes the whole
    // family.
    let rt1 = tokens.refresh_token().unwrap().clone();
    assert_eq!(introspect(rt1.secret().clone()).await["active"], true);
    let refreshed = rp
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let rt2 = refreshed.refresh_token().unwrap().clone();
    assert_ne!(rt1.secret(), rt2.secret());
    assert!(refreshed.id_token().is_some());
    let rt2 = rp
        .exchange_refresh_token(&rt2)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap()
        .refresh_token()
        .unwrap()
        .clone();
    let new_at = refreshed.access_token().secret().clone();
    let reuse = rp
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(reuse.is_err(), "a rotated refresh token is refused");
    let after_reuse = rp
        .exchange_refresh_token(&rt2)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after_reuse.is_err(), "reuse revoked the family");
    let denied = http
        .get(server.url("/userinfo"))
        .bearer_auth(&new_at)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert!(denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(
        introspect(new_at.clone()).await,
        serde_json::json!({"active": false})
    );

    // SSO: a second sign-in of the same browser gets a code without a trip upstream.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (second_url, _, nonce2) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let direct = b.get(second_url.as_str()).send().await.unwrap();
    let back = url::Url::parse(&see_other(&direct)).unwrap();
    assert!(
        back.as_str().starts_with(APP_CALLBACK),
        "no second trip upstream: {back}"
    );
    let second = rp
        .exchange_code(AuthorizationCode::new(query(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    second
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce2)
        .unwrap();

    // Revocation: an access token, then a refresh token (which ends its access tokens too).
    let at3 = second.access_token().secret().clone();
    let revoke = |token: String| {
        let (http, url, id, secret) = (
            http.clone(),
            server.url("/revoke"),
            app.client_id.clone(),
            secret.clone(),
        );
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(revoke(at3.clone()).await, 200);
    assert_eq!(
        http.get(server.url("/userinfo"))
            .bearer_auth(&at3)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(introspect(at3).await["active"], false);
    let rt = second.refresh_token().unwrap().secret().clone();
    assert_eq!(revoke(rt.clone()).await, 200);
    assert_eq!(introspect(rt).await["active"], false);
    assert_eq!(
        revoke("never-issued".into()).await,
        200,
        "unknown tokens: 200 (RFC 7009 §2.2)"
    );
    server.stop().await;
}

crate::both_backends!(relying_party_signs_in_refreshes_and_revokes);

#[tokio::test]
async fn client_credentials_for_machine_clients() {
    let Some(server) = TestServer::start(Backend::Sqlite, "e2e::client_credentials").await else {
        return;
    };
    let machine = register(&server, true, &["client_credentials"]).await;
    let http = http();
    let token = |form: Vec<(&'static str, String)>| {
        let (http, url, id, secret) = (
            http.clone(),
            server.url("/token"),
            machine.client_id.clone(),
            machine.client_secret.clone().unwrap(),
        );
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // An audience nobody registered is never minted (RFC 8707 §2); see tests/e2e/machine.rs
    // for registered resources.
    let chosen = token(vec![
        ("grant_type", "client_credentials".into()),
        ("resource", "https://api.example.gov.sg/".into()),
    ])
    .await;
    assert_eq!(chosen.status(), 400);
    assert_eq!(
        chosen.json::<Value>().await.unwrap()["error"],
        "invalid_target"
    );
    let ok = token(vec![("grant_type", "client_credentials".into())]).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let body: Value = ok.json().await.unwrap();
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let at = body["access_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            at.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], machine.client_id);
    assert_eq!(payload["sub"], machine.client_id);
    assert_eq!(payload["client_id"], machine.client_id);
    // No person: userinfo refuses it.
    let info = http
        .get(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 403);

    let openid = token(vec![
        ("grant_type", "client_credentials".into()),
        ("scope", "openid".into()),
    ])
    .await;
    assert_eq!(openid.status(), 400);
    assert_eq!(
        openid.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );

    // A public app may not use it; an app without the grant may not either.
    let web = register(&server, true, &["authorization_code"]).await;
    let refused = http
        .post(server.url("/token"))
        .basic_auth(&web.client_id, web.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    server.stop().await;
}

/// One token-endpoint call with its expected status and error code.
async fn expect_error(response: reqwest::Response, status: u16, error: &str, case: &str) {
    assert_eq!(response.status().as_u16(), status, "{case}");
    assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{case}: {body}");
}

#[tokio::test]
async fn bad_token_requests_get_the_rfc_error() {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let config = test_config(&db.url, &dir);
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with(config, clock.clone(), dir, Some(db)).await;
    let app = register(&server, true, &["authorization_code", "refresh_token"]).await;
    let other = register(&server, true, &["authorization_code"]).await;
    let public = register(&server, false, &["authorization_code"]).await;
    let secret = app.client_secret.clone().unwrap();
    let b = browser();
    let http = http();

    // Gets a fresh code for `client_id` with the given PKCE challenge.
    let code_for = |client_id: String, challenge: Option<&'static str>| {
        let (b, server) = (b.clone(), &server);
        async move {
            let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
            url.query_pairs_mut()
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", APP_CALLBACK)
                .append_pair("response_type", "code")
                .append_pair("scope", "openid offline_access")
                .append_pair("state", "s")
                .append_pair("login_hint", "bob_lim@hdb.gov.sg");
            if let Some(c) = challenge {
                url.query_pairs_mut()
                    .append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
            let back = authorize(&b, server, url.as_str(), "bob").await;
            query(&back, "code").unwrap_or_else(|| panic!("no code: {back}"))
        }
    };
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let post = |form: Vec<(&str, String)>, id: &str, secret: &str| {
        http.post(server.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
    };
    let exchange = |code: &str, verifier: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", APP_CALLBACK.to_string()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_string()));
        }
        form
    };

    // Code reuse: refused, and the tokens of the first exchange are revoked.
    let code = code_for(app.client_id.clone(), Some(CHALLENGE)).await;
    let first = post(exchange(&code, Some(VERIFIER)), &app.client_id, &secret)
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let at = first["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        http.get(server.url("/userinfo"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    expect_error(
        post(exchange(&code, Some(VERIFIER)), &app.client_id, &secret)
            .await
            .unwrap(),
        400,
        "invalid_grant",
        "code reuse",
    )
    .await;
    assert_eq!(
        http.get(server.url("/userinfo"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "replay revoked the first tokens"
    );
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    expect_error(
        post(
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt),
            ],
            &app.client_id,
            &secret,
        )
        .await
        .unwrap(),
        400,
        "invalid_grant",
        "refresh after code replay",
    )
    .await;

    // A code of another client.
    let code = code_for(other.client_id.clone(), None).await;
    expect_error(
        post(exchange(&code, None), &app.client_id, &secret)
            .await
            .unwrap(),
        400,
        "invalid_grant",
        "code of another client",
    )
    .await;

    // Wrong verifier; missing verifier; verifier without a challenge (downgrade).
    let code = code_for(app.client_id.clone(), Some(CHALLENGE)).await;
    expect_error(
        post(
            exchange(&code, Some(&"x".repeat(43))),
            &app.client_id,
            &secret,
        )
        .await
        .unwrap(),
        400,
        "invalid_grant",
        "wrong verifier",
    )
    .await;
    let code = code_for(app.client_id.clone(), Some(CHALLENGE)).await;
    expect_error(
        post(exchange(&code, None), &app.client_id, &secret)
            .await
            .unwrap(),
        400,
        "invalid_grant",
        "missing verifier",
    )
    .await;
    let code = code_for(app.client_id.clone(), None).await;
    expect_error(
        post(exchange(&code, Some(VERIFIER)), &app.client_id, &secret)
            .await
            .unwrap(),
        400,
        "invalid_grant",
        "PKCE downgrade",
    )
    .await;

    // Wrong redirect URI.
    let code = code_for(app.client_id.clone(), None).await;
    let mut form = exchange(&code, None);
    form[2].1 = "https://app.example.gov.sg/other".into();
    expect_error(
        post(form, &app.client_id, &secret).await.unwrap(),
        400,
        "invalid_grant",
        "wrong redirect_uri",
    )
    .await;

    // Expired code (60 s).
    let code = code_for(app.client_id.clone(), None).await;
    clock.advance(61);
    expect_error(
        post(exchange(&code, None), &app.client_id, &secret)
            .await
            .unwrap(),
        400,
        "invalid_grant",
        "expired code",
    )
    .await;

    // Client authentication.
    let code = code_for(app.client_id.clone(), None).await;
    let wrong = post(exchange(&code, None), &app.client_id, "wrong-secret")
        .await
        .unwrap();
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    expect_error(wrong, 401, "invalid_client", "wrong secret").await;
    let mut both = exchange(&code, None);
    both.push(("client_secret", secret.clone()));
    expect_error(
        post(both, &app.client_id, &secret).await.unwrap(),
        400,
        "invalid_request",
        "two auth methods",
    )
    .await;
    let none = http
        .post(server.url("/token"))
        .form(&exchange(&code, None))
        .send()
        .await
        .unwrap();
    expect_error(none, 401, "invalid_client", "no client authentication").await;
    let mut as_public = exchange(&code, None);
    as_public.push(("client_id", public.client_id.clone()));
    let public_call = http
        .post(server.url("/token"))
        .form(&as_public)
        .send()
        .await
        .unwrap();
    expect_error(
        public_call,
        400,
        "invalid_grant",
        "public client with another's code",
    )
    .await;
    let post_auth = http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", &app.client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    expect_error(
        post_auth,
        400,
        "invalid_grant",
        "client_secret_post with an unknown refresh token",
    )
    .await;

    // Malformed requests.
    let raw = |body: &'static [u8], content_type: &'static str| {
        http.post(server.url("/token"))
            .basic_auth(&app.client_id, Some(&secret))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    expect_error(
        raw(b"grant_type=authorization_code", form).await.unwrap(),
        400,
        "invalid_request",
        "missing code",
    )
    .await;
    expect_error(
        raw(b"", form).await.unwrap(),
        400,
        "invalid_request",
        "missing grant_type",
    )
    .await;
    expect_error(
        raw(b"grant_type=password&username=a&password=b", form)
            .await
            .unwrap(),
        400,
        "unsupported_grant_type",
        "ROPC",
    )
    .await;
    expect_error(
        raw(b"grant_type=authorization_code&code=a&code=b", form)
            .await
            .unwrap(),
        400,
        "invalid_request",
        "duplicated parameter",
    )
    .await;
    expect_error(
        raw(b"grant_type=authorization_code&code=\xff\xfe", form)
            .await
            .unwrap(),
        400,
        "invalid_request",
        "invalid UTF-8",
    )
    .await;
    expect_error(
        raw(
            b"{\"grant_type\":\"client_credentials\"}",
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid_request",
        "JSON body",
    )
    .await;
    let huge = http
        .post(server.url("/token"))
        .header("content-type", form)
        .body(format!(
            "grant_type=authorization_code&code={}",
            "a".repeat(70_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413, "oversized body");
    for (name, len) in [
        ("code", 3000),
        ("scope", 3000),
        ("client_assertion", 17_000),
        ("x", 3000),
    ] {
        let long = http
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=authorization_code&{name}={}",
                "a".repeat(len)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(long.status(), 400, "over-long {name}");
        let body: Value = long.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "over-long {name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn authorization_request_errors() {
    let Some(server) =
        TestServer::start(Backend::Sqlite, "e2e::authorization_request_errors").await
    else {
        return;
    };
    let app = register(&server, true, &["authorization_code"]).await;
    let public = register(&server, false, &["authorization_code"]).await;
    let b = browser();
    let get = |query: String| {
        let (b, url) = (b.clone(), server.url(&format!("/authorize?{query}")));
        async move { b.get(url).send().await.unwrap() }
    };
    let base = |client: &str| {
        format!(
            "client_id={client}&redirect_uri={}&response_type=code&scope=openid&state=xyz",
            urlencode(APP_CALLBACK)
        )
    };

    // Never a redirect while the client or redirect URI is not known good.
    for (case, q) in [
        ("unknown client", base("app_nope")),
        (
            "unregistered redirect_uri",
            base(&app.client_id).replace(
                &urlencode(APP_CALLBACK),
                &urlencode("https://evil.example/cb"),
            ),
        ),
        (
            "missing redirect_uri",
            format!(
                "client_id={}&response_type=code&scope=openid",
                app.client_id
            ),
        ),
        (
            "missing client_id",
            "response_type=code&scope=openid".to_string(),
        ),
        (
            "duplicated parameter",
            format!("{}&client_id={}", base(&app.client_id), app.client_id),
        ),
        (
            "duplicated redirect_uri",
            format!(
                "{}&redirect_uri={}",
                base(&app.client_id),
                urlencode(APP_CALLBACK)
            ),
        ),
        (
            // RFC 8252 §7.3's any-port loopback is for native (public) apps only.
            "loopback on another port for a confidential app",
            base(&app.client_id).replace(
                &urlencode(APP_CALLBACK),
                &urlencode("http://127.0.0.1:5000/native"),
            ),
        ),
    ] {
        let response = get(q).await;
        assert_eq!(response.status(), 400, "{case}");
        assert!(
            response.headers().get("location").is_none(),
            "{case}: no redirect"
        );
        assert!(response.headers()["x-frame-options"] == "DENY", "{case}");
    }

    // Afterwards errors go back to the app, with state and iss.
    for (case, q, error) in [
        (
            "token response type",
            base(&app.client_id).replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            "plain PKCE",
            format!(
                "{}&code_challenge={}&code_challenge_method=plain",
                base(&app.client_id),
                "a".repeat(43)
            ),
            "invalid_request",
        ),
        (
            "no openid scope",
            base(&app.client_id).replace("scope=openid", "scope=profile"),
            "invalid_scope",
        ),
        (
            "state given twice",
            format!("{}&state=other", base(&app.client_id)),
            "invalid_request",
        ),
        (
            "scope given twice",
            format!("{}&scope=openid%20email", base(&app.client_id)),
            "invalid_request",
        ),
        (
            "request object",
            format!("{}&request=eyJhbGciOiJub25lIn0.e30.", base(&app.client_id)),
            "request_not_supported",
        ),
        (
            "request_uri",
            format!(
                "{}&request_uri={}",
                base(&app.client_id),
                urlencode("https://app.example.gov.sg/req.jwt")
            ),
            "request_uri_not_supported",
        ),
        (
            "public client without PKCE",
            base(&public.client_id),
            "invalid_request",
        ),
        (
            "prompt=none without a session",
            format!("{}&prompt=none", base(&app.client_id)),
            "login_required",
        ),
        (
            "an over-long parameter",
            format!("{}&login_hint={}", base(&app.client_id), "h".repeat(3000)),
            "invalid_request",
        ),
        (
            "an over-long unknown parameter",
            format!("{}&extra={}", base(&app.client_id), "e".repeat(3000)),
            "invalid_request",
        ),
        (
            "too many parameters",
            format!(
                "{}&{}",
                base(&app.client_id),
                (0..70)
                    .map(|i| format!("p{i}=1"))
                    .collect::<Vec<_>>()
                    .join("&")
            ),
            "invalid_request",
        ),
    ] {
        let response = get(q).await;
        let location = url::Url::parse(&see_other(&response)).unwrap();
        assert!(location.as_str().starts_with(APP_CALLBACK), "{case}");
        assert_eq!(query(&location, "error").as_deref(), Some(error), "{case}");
        assert_eq!(query(&location, "state").as_deref(), Some("xyz"), "{case}");
        assert_eq!(
            query(&location, "iss").as_deref(),
            Some(server.base.as_str()),
            "{case}"
        );
    }

    // An over-long state (20 KB) is refused back to the app, without being reflected.
    let long_state =
        base(&app.client_id).replace("state=xyz", &format!("state={}", "s".repeat(20_000)));
    let response = get(long_state).await;
    let location = url::Url::parse(&see_other(&response)).unwrap();
    assert!(location.as_str().starts_with(APP_CALLBACK));
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(query(&location, "error_description")
        .unwrap()
        .contains("state"));
    assert_eq!(query(&location, "state"), None);
    assert!(
        location.as_str().len() < 1000,
        "{}",
        location.as_str().len()
    );
    // ...and with an unknown app, a page, no redirect.
    let response = get(format!(
        "client_id=app_nope&redirect_uri={}&response_type=code&state={}",
        urlencode(APP_CALLBACK),
        "s".repeat(20_000)
    ))
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());

    // Loopback redirect URIs of native (public) apps may use any port.
    let native = format!(
        "client_id={}&redirect_uri={}&response_type=code&scope=openid&prompt=none\
         &code_challenge={}&code_challenge_method=S256",
        public.client_id,
        urlencode("http://127.0.0.1:53120/native"),
        "a".repeat(43)
    );
    let location = see_other(&get(native).await);
    assert!(
        location.starts_with("http://127.0.0.1:53120/native?error=login_required"),
        "{location}"
    );

    // Scope values TechPass does not understand are ignored (OpenID Connect Core §3.1.2.1):
    // the request goes on to sign-in.
    let unknown_scope = base(&app.client_id).replace("scope=openid", "scope=openid%20admin");
    let location = see_other(&get(unknown_scope).await);
    assert!(location.starts_with("/login?"), "{location}");
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A token server with the given limits; `trusted_proxies` lets the test speak for several
/// client addresses through `X-Forwarded-For` (the test is the proxy, on 127.0.0.1).
async fn limited_server(
    client: (u32, u32),
    address: (u32, u32),
    failures: (u32, u32),
    trusted_proxies: &[&str],
) -> TestServer {
    let db = TestDatabase::sqlite().await;
    let dir = TempDir::new();
    let mut config = test_config(&db.url, &dir);
    config.rate_limit.client_per_second = client.0;
    config.rate_limit.client_burst = client.1;
    config.rate_limit.address_per_second = address.0;
    config.rate_limit.address_burst = address.1;
    config.rate_limit.failed_auth_per_minute = failures.0;
    config.rate_limit.failed_auth_burst = failures.1;
    config.http.trusted_proxies = trusted_proxies.iter().map(|p| p.to_string()).collect();
    TestServer::start_with(config, Arc::new(SystemClock), dir, Some(db)).await
}

/// A client-credentials request as `app` with `secret` (empty: the right one), from `from`
/// (an `X-Forwarded-For` value; empty: none).
async fn token_call(
    server: &TestServer,
    app: &CreatedApp,
    secret: &str,
    from: &str,
) -> reqwest::Response {
    let secret = if secret.is_empty() {
        app.client_secret.clone().unwrap()
    } else {
        secret.to_string()
    };
    let mut request = http()
        .post(server.url("/token"))
        .basic_auth(&app.client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")]);
    if !from.is_empty() {
        request = request.header("x-forwarded-for", from);
    }
    request.send().await.unwrap()
}

async fn assert_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429, "over the limit");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
}

#[tokio::test]
async fn token_endpoint_is_rate_limited_per_client_and_per_address() {
    // Per authenticated client: its own traffic only.
    let server = limited_server((1, 2), (0, 0), (0, 0), &[]).await;
    let a = register(&server, true, &["client_credentials"]).await;
    let b = register(&server, true, &["client_credentials"]).await;
    assert_eq!(token_call(&server, &a, "wrong", "").await.status(), 401);
    for _ in 0..2 {
        assert_eq!(token_call(&server, &a, "", "").await.status(), 200);
    }
    assert_limited(token_call(&server, &a, "", "").await).await;
    assert_eq!(
        token_call(&server, &b, "", "").await.status(),
        200,
        "another client is not affected by the first one's limit"
    );
    server.stop().await;

    // Per address, whatever the client.
    let server = limited_server((0, 0), (1, 3), (0, 0), &[]).await;
    let a = register(&server, true, &["client_credentials"]).await;
    let b = register(&server, true, &["client_credentials"]).await;
    for _ in 0..3 {
        assert_eq!(token_call(&server, &a, "", "").await.status(), 200);
    }
    assert_limited(token_call(&server, &a, "", "").await).await;
    assert_eq!(
        token_call(&server, &b, "", "").await.status(),
        429,
        "the same address is limited whatever the client"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_strangers_failures_do_not_lock_out_the_real_client() {
    let server = limited_server((100, 200), (0, 0), (1, 3), &["127.0.0.1"]).await;
    let app = register(&server, true, &["client_credentials"]).await;
    let attacker = "203.0.113.66";
    for _ in 0..3 {
        assert_eq!(
            token_call(&server, &app, "guess", attacker).await.status(),
            401
        );
    }
    // The attacker's address is throttled before any secret is checked, even the right one...
    assert_limited(token_call(&server, &app, "guess", attacker).await).await;
    assert_limited(token_call(&server, &app, "", attacker).await).await;
    // ...while the app, from its own address (forwarded or direct), is served.
    for _ in 0..5 {
        assert_eq!(
            token_call(&server, &app, "", "198.51.100.7").await.status(),
            200
        );
        assert_eq!(token_call(&server, &app, "", "").await.status(), 200);
    }
    // Introspection and revocation count the same failures.
    let introspect = http()
        .post(server.url("/introspect"))
        .basic_auth(&app.client_id, Some("guess"))
        .header("x-forwarded-for", attacker)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_limited(introspect).await;
    server.stop().await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Not a trusted proxy: X-Forwarded-For is ignored, every request is 127.0.0.1's.
    let server = limited_server((0, 0), (1, 2), (0, 0), &[]).await;
    let app = register(&server, true, &["client_credentials"]).await;
    assert_eq!(
        token_call(&server, &app, "", "203.0.113.1").await.status(),
        200
    );
    assert_eq!(
        token_call(&server, &app, "", "203.0.113.2").await.status(),
        200
    );
    assert_limited(token_call(&server, &app, "", "203.0.113.3").await).await;
    server.stop().await;

    // A trusted proxy: each forwarded address has its own limit (the rightmost untrusted
    // entry counts, so a client cannot pick one by prepending).
    let server = limited_server((0, 0), (1, 2), (0, 0), &["127.0.0.0/8"]).await;
    let app = register(&server, true, &["client_credentials"]).await;
    for from in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(
            token_call(&server, &app, "", from).await.status(),
            200,
            "{from}"
        );
    }
    assert_eq!(
        token_call(&server, &app, "", "9.9.9.9, 203.0.113.1")
            .await
            .status(),
        200
    );
    assert_limited(token_call(&server, &app, "", "8.8.8.8, 203.0.113.1").await).await;
    server.stop().await;
}

#[tokio::test]
async fn the_basic_scheme_is_case_insensitive() {
    use base64::Engine;
    let server = limited_server((0, 0), (0, 0), (0, 0), &[]).await;
    let app = register(&server, true, &["client_credentials"]).await;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        app.client_id,
        app.client_secret.clone().unwrap()
    ));
    for scheme in ["Basic", "BASIC", "basic", "bAsIc"] {
        let response = http()
            .post(server.url("/token"))
            .header("authorization", format!("{scheme} {credentials}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{}:nope", app.client_id));
    let response = http()
        .post(server.url("/token"))
        .header("authorization", format!("BASIC {wrong}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    server.stop().await;
}

pub(crate) mod private_key_jwt {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    pub(crate) fn p256() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        (pair, jwks.to_string())
    }

    pub(crate) fn jws(pair: &EcdsaKeyPair, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    #[tokio::test]
    async fn assertions_authenticate_and_forgeries_do_not() {
        let Some(server) = TestServer::start(Backend::Sqlite, "e2e::private_key_jwt").await else {
            return;
        };
        let (pair, jwks) = p256();
        let app = create_app(
            server.state.store.as_ref(),
            &server.state.secrets,
            server.state.clock.now().as_secs(),
            server.state.http.policy(),
            NewApp {
                name: "Keyed app".into(),
                confidential: true,
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                backchannel_logout_uri: None,
                grant_types: vec!["client_credentials".into()],
                jwks: Some(jwks),
                ..NewApp::default()
            },
        )
        .await
        .unwrap();
        assert!(app.client_secret.is_none(), "a keyed app gets no secret");
        let now = server.state.clock.now().as_secs();
        let token_endpoint = server.url("/token");
        let claims = |f: &dyn Fn(&mut Value)| {
            let mut c = serde_json::json!({
                "iss": app.client_id, "sub": app.client_id, "aud": token_endpoint,
                "exp": now + 60, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
            });
            f(&mut c);
            c
        };
        let es256 = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let send = |assertion: String, extra: Vec<(&'static str, String)>| {
            let mut form = vec![
                ("grant_type", "client_credentials".to_string()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ),
                ("client_assertion", assertion),
            ];
            form.extend(extra);
            let request = http().post(server.url("/token")).form(&form);
            async move { request.send().await.unwrap() }
        };

        let good = claims(&|_| {});
        let ok = send(jws(&pair, es256.clone(), &good), vec![]).await;
        assert_eq!(ok.status(), 200);
        expect_error(
            send(jws(&pair, es256.clone(), &good), vec![]).await,
            401,
            "invalid_client",
            "replayed jti",
        )
        .await;
        let issuer_aud = claims(&|c| c["aud"] = server.base.clone().into());
        assert_eq!(
            send(jws(&pair, es256.clone(), &issuer_aud), vec![])
                .await
                .status(),
            200,
            "aud = issuer"
        );

        let (other, _) = p256();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims(&|_| {}).to_string())
        );
        let cases: Vec<(&str, String)> = vec![
            ("alg none", unsigned),
            (
                "HS256",
                jws(
                    &pair,
                    serde_json::json!({"alg": "HS256", "kid": "k1"}),
                    &claims(&|_| {}),
                ),
            ),
            (
                "wrong aud",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| c["aud"] = "https://elsewhere.example/token".into()),
                ),
            ),
            (
                "expired",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| c["exp"] = (now - 120).into()),
                ),
            ),
            (
                "exp too far",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| c["exp"] = (now + 3600).into()),
                ),
            ),
            (
                "no exp",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| {
                        c.as_object_mut().unwrap().remove("exp");
                    }),
                ),
            ),
            (
                "no jti",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| {
                        c.as_object_mut().unwrap().remove("jti");
                    }),
                ),
            ),
            (
                "iss is not sub",
                jws(
                    &pair,
                    es256.clone(),
                    &claims(&|c| c["sub"] = "someone".into()),
                ),
            ),
            ("another key", jws(&other, es256.clone(), &claims(&|_| {}))),
        ];
        for (case, assertion) in cases {
            expect_error(send(assertion, vec![]).await, 401, "invalid_client", case).await;
        }
        let two_methods = send(
            jws(&pair, es256.clone(), &claims(&|_| {})),
            vec![("client_secret", "x".into())],
        )
        .await;
        expect_error(two_methods, 400, "invalid_request", "assertion and secret").await;
        let wrong_type = http()
            .post(server.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:other"),
                ("client_assertion", &jws(&pair, es256, &claims(&|_| {}))),
            ])
            .send()
            .await
            .unwrap();
        expect_error(
            wrong_type,
            401,
            "invalid_client",
            "unsupported assertion type",
        )
        .await;
        server.stop().await;
    }
}
