//! The token endpoint, and the `openidconnect` crate signing in end to end.

use super::*;
use crate::dev::id_token::pairwise_sub;

#[tokio::test]
async fn client_secret_post_yields_a_verifiable_azure_id_token() {
    let h = start(Tamper::None).await;
    let code = h.pick("alice", &[]).await;
    let response = h.redeem_code(&code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["ext_expires_in"], 3599);
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    assert!(tokens["access_token"].as_str().unwrap().len() > 40);
    assert!(tokens["refresh_token"].as_str().unwrap().len() > 40);

    let jwt = tokens["id_token"].as_str().unwrap();
    let (header, _) = parts(jwt);
    assert_eq!(
        header,
        serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": h.dev.key.kid()})
    );
    let claims = h.verify(jwt, &h.dev.issuer(WOG_TENANT_ID)).await;
    let alice = person("alice").unwrap();
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["tid"], WOG_TENANT_ID);
    assert_eq!(claims["oid"], alice.oid);
    assert_eq!(claims["sub"], pairwise_sub(alice.oid, CLIENT_ID));
    assert_eq!(claims["sub"].as_str().unwrap().len(), 43);
    assert_eq!(claims["name"], "Alice Tan");
    assert_eq!(claims["email"], "alice_tan@tech.gov.sg");
    assert_eq!(claims["preferred_username"], "alice_tan@tech.gov.sg");
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "mfa"]));
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["acct"], 0);
    assert!(claims.get("idp").is_none());
    assert!(claims["uti"].is_string());
    let now = h.clock.now().as_secs();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["exp"], now + 3600);
}

#[tokio::test]
async fn basic_auth_with_form_encoded_credentials_works() {
    let h = start(Tamper::None).await;
    let code = h
        .pick("dave", &[("scope", "openid profile"), ("nonce", "")])
        .await;
    // RFC 6749 §2.3.1: form-encode each part, then Basic.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", encode(CLIENT_ID), encode(SECRET)));
    let response = h
        .http
        .post(h.url(WOG_TENANT_ID, TOKEN_PATH))
        .header("authorization", format!("Basic {credentials}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none(), "no offline_access");
    let jwt = tokens["id_token"].as_str().unwrap();
    let claims = h.verify(jwt, &h.dev.issuer(VENDOR_TENANT_ID)).await;
    assert_eq!(claims["tid"], VENDOR_TENANT_ID);
    assert_eq!(claims["acct"], 1);
    assert_eq!(
        claims["idp"],
        "https://sts.windows.net/5d1e2c3b-0000-4000-8000-00000000b0b0/"
    );
    assert!(claims.get("nonce").is_none(), "none was sent");
}

#[tokio::test]
async fn people_sign_in_to_their_own_tenant_and_sub_is_pairwise() {
    let h = start(Tamper::None).await;
    let tokens = h.sign_in("mallory").await;
    let claims = h
        .verify(
            tokens["id_token"].as_str().unwrap(),
            &h.dev.issuer(OTHER_TENANT_ID),
        )
        .await;
    assert_eq!(claims["tid"], OTHER_TENANT_ID);

    let tokens = h.sign_in("carol").await;
    let (_, claims) = parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    let carol = person("carol").unwrap();
    assert_ne!(
        pairwise_sub(carol.oid, CLIENT_ID),
        pairwise_sub(carol.oid, OTHER_CLIENT_ID)
    );
}

#[tokio::test]
async fn erin_is_a_guest_whose_email_the_directory_does_not_verify() {
    let h = start(Tamper::None).await;
    let tokens = h.sign_in("erin").await;
    let claims = h
        .verify(
            tokens["id_token"].as_str().unwrap(),
            &h.dev.issuer(WOG_TENANT_ID),
        )
        .await;
    assert_eq!(claims["email"], "erin_goh@tech.gov.sg");
    assert_eq!(claims["acct"], 1, "a guest");
    assert_eq!(claims["xms_edov"], false, "AZURE.md §3: not verified");
    assert!(claims.get("email_verified").is_none());
    assert!(claims.get("verified_primary_email").is_none());
    // The members keep their verified addresses.
    let tokens = h.sign_in("alice").await;
    let (_, claims) = parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["xms_edov"], true);
}

#[tokio::test]
async fn codes_are_single_use_and_expire() {
    let h = start(Tamper::None).await;
    let code = h.pick("bob", &[]).await;
    assert_eq!(
        h.redeem_code(&code, VERIFIER).await.status(),
        StatusCode::OK
    );
    let again = h.redeem_code(&code, VERIFIER).await;
    error_of(again, StatusCode::BAD_REQUEST, "invalid_grant", 54005).await;

    let never_issued = h.redeem_code("bm90LWEtY29kZQ", VERIFIER).await;
    error_of(
        never_issued,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        70000,
    )
    .await;

    let code = h.pick("bob", &[]).await;
    h.clock.advance(301);
    let late = h.redeem_code(&code, VERIFIER).await;
    error_of(late, StatusCode::BAD_REQUEST, "invalid_grant", 70008).await;
}

#[tokio::test]
async fn pkce_is_enforced() {
    let h = start(Tamper::None).await;
    let code = h.pick("alice", &[]).await;
    let wrong = h
        .redeem_code(&code, "wrong-verifier-wrong-verifier-wrong-verifier")
        .await;
    error_of(wrong, StatusCode::BAD_REQUEST, "invalid_grant", 501481).await;
    // The failed attempt spent the code.
    let retry = h.redeem_code(&code, VERIFIER).await;
    error_of(retry, StatusCode::BAD_REQUEST, "invalid_grant", 54005).await;

    let code = h.pick("alice", &[]).await;
    let missing = h.redeem_code(&code, "").await;
    error_of(missing, StatusCode::BAD_REQUEST, "invalid_grant", 501481).await;

    // No challenge at authorize: a verifier at the token endpoint is refused (RFC 9700 §2.1.1),
    // and leaving it out works.
    let mut params = authorize_params(&[]);
    params.retain(|(k, _)| !k.starts_with("code_challenge"));
    params.push(("person".into(), "alice".into()));
    for (verifier, ok) in [(VERIFIER, false), ("", true)] {
        let response = h.post_authorize(WOG_TENANT_ID, &params).await;
        let query = query_of(response.headers()[LOCATION].to_str().unwrap());
        let response = h
            .redeem_code(param(&query, "code").unwrap(), verifier)
            .await;
        if ok {
            assert_eq!(response.status(), StatusCode::OK);
        } else {
            error_of(response, StatusCode::BAD_REQUEST, "invalid_grant", 501481).await;
        }
    }
}

#[tokio::test]
async fn client_authentication_and_binding_are_enforced() {
    let h = start(Tamper::None).await;
    let code = h.pick("alice", &[]).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut form = base.to_vec();
        form.extend_from_slice(extra);
        form
    };
    let wrong_secret = h
        .redeem(&with(&[
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
        ]))
        .await;
    assert_eq!(
        wrong_secret.headers()["www-authenticate"],
        "Basic realm=\"techpass-dev-upstream\""
    );
    error_of(
        wrong_secret,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
    )
    .await;
    let unknown = h
        .redeem(&with(&[("client_id", "nobody"), ("client_secret", "x")]))
        .await;
    error_of(unknown, StatusCode::UNAUTHORIZED, "invalid_client", 700016).await;
    let no_secret = h.redeem(&with(&[("client_id", CLIENT_ID)])).await;
    error_of(
        no_secret,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000218,
    )
    .await;
    let repeated = h
        .redeem(&with(&[
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("code", "x"),
        ]))
        .await;
    error_of(
        repeated,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        9002313,
    )
    .await;
    let grant = h
        .redeem(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .await;
    error_of(
        grant,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        70003,
    )
    .await;

    // The code is bound to its client and redirect URI.
    let stolen = h
        .redeem(&with(&[
            ("client_id", OTHER_CLIENT_ID),
            ("client_secret", OTHER_SECRET),
        ]))
        .await;
    error_of(stolen, StatusCode::BAD_REQUEST, "invalid_grant", 70000).await;
    let code = h.pick("alice", &[]).await;
    let moved = h
        .redeem(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .await;
    error_of(moved, StatusCode::BAD_REQUEST, "invalid_grant", 500112).await;
}

/// The `openidconnect` crate, which the production connector is built on, signs in end to end.
#[tokio::test]
async fn openidconnect_crate_signs_in() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
        RedirectUrl, Scope, TokenResponse,
    };

    let h = start(Tamper::None).await;
    let issuer = IssuerUrl::new(h.dev.issuer(WOG_TENANT_ID)).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &h.http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = h.http.get(url.clone()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    form.push(("person".into(), "bob".into()));
    let response = h.post_authorize(WOG_TENANT_ID, &form).await;
    let query = query_of(response.headers()[LOCATION].to_str().unwrap());
    assert_eq!(param(&query, "state"), Some(csrf.secret().as_str()));
    let code = param(&query, "code").unwrap().to_owned();

    // openidconnect authenticates with HTTP Basic by default.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&h.http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "bob_lim@hdb.gov.sg");
    assert_eq!(claims.issuer().as_str(), h.dev.issuer(WOG_TENANT_ID));
}
