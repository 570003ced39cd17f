//! Apps that chose ES256 or EdDSA (issue 17 item 3): their ID tokens verify in the `openidconnect`
//! crate from the published JWKS (at_hash included, SHA-512 for Ed25519), their access tokens
//! carry the chosen algorithm and pass userinfo and introspection, on a refresh and on
//! client_credentials too; an app that chose nothing keeps RS256.

use openidconnect::core::{
    CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use techpass::provider::clients::{create_app, NewApp};
use techpass_oidc::keys::SigningAlg;
use techpass_store::testing::Backend;

use crate::provider::{authorize, APP_CALLBACK};
use crate::support::{browser, client, TestServer};

fn header_alg(jwt: &str) -> String {
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwt.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    header["alg"].as_str().unwrap().to_string()
}

async fn register(server: &TestServer, alg: Option<SigningAlg>) -> (String, String) {
    let app = create_app(
        server.state.store.as_ref(),
        &server.state.secrets,
        server.state.clock.now().as_secs(),
        server.state.http.policy(),
        NewApp {
            name: format!("App {alg:?}"),
            confidential: true,
            redirect_uris: vec![APP_CALLBACK.into()],
            grant_types: ["authorization_code", "refresh_token", "client_credentials"]
                .map(String::from)
                .to_vec(),
            id_token_signed_response_alg: alg,
            access_token_signed_response_alg: alg,
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    (app.client_id, app.client_secret.unwrap())
}

async fn signs_with_the_apps_algorithm(
    server: &TestServer,
    chosen: Option<SigningAlg>,
    theirs: CoreJwsSigningAlgorithm,
) {
    let alg = chosen.unwrap_or(SigningAlg::DEFAULT);
    let (client_id, secret) = register(server, chosen).await;
    let http = client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("login_hint", "alice_tan@tech.gov.sg")
        .set_pkce_challenge(challenge)
        .url();
    let b = browser();
    let back = authorize(&b, server, auth_url.as_str(), "alice").await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();

    // The ID token, through a verifier that allows exactly this algorithm.
    let id_verifier = rp
        .id_token_verifier()
        .set_allowed_algs(vec![theirs.clone()]);
    let id_token = tokens.id_token().unwrap();
    assert_eq!(id_token.signing_alg().unwrap(), &theirs);
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(claims.email().unwrap().as_str(), "alice_tan@tech.gov.sg");
    let expected_hash = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash), "{alg}");
    // The RP's default verifier takes the algorithms discovery lists, so it accepts this one;
    // a verifier pinned to RS256 alone refuses a token of another algorithm.
    id_token.claims(&rp.id_token_verifier(), &nonce).unwrap();
    if alg != SigningAlg::RS256 {
        let rs256_only = rp
            .id_token_verifier()
            .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
        assert!(id_token.claims(&rs256_only, &nonce).is_err());
    }

    // The access token: the chosen algorithm, accepted by userinfo and introspection.
    let at = tokens.access_token().secret().clone();
    assert_eq!(header_alg(&at), alg.as_str());
    let info = http
        .get(server.url("/userinfo"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "{alg}");
    let introspect = |token: String| {
        let (http, url, id, secret) = (
            http.clone(),
            server.url("/introspect"),
            client_id.clone(),
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
    assert_eq!(introspect(at.clone()).await["active"], true, "{alg}");
    // A flipped signature byte: refused by both.
    let mut forged = at.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let denied = http
        .get(server.url("/userinfo"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(
        introspect(forged).await,
        serde_json::json!({"active": false})
    );

    // A refresh signs both again with the same algorithm.
    let refreshed = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let new_id = refreshed.id_token().unwrap();
    assert_eq!(new_id.signing_alg().unwrap(), &theirs);
    new_id
        .claims(&id_verifier, |_: Option<&Nonce>| Ok::<_, String>(()))
        .unwrap();
    let new_at = refreshed.access_token().secret().clone();
    assert_eq!(header_alg(&new_at), alg.as_str());
    assert_eq!(introspect(new_at).await["active"], true);

    // client_credentials: the machine's access token too.
    let machine = http
        .post(server.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(machine.status(), 200);
    let machine: Value = machine.json().await.unwrap();
    let machine_at = machine["access_token"].as_str().unwrap().to_string();
    assert_eq!(header_alg(&machine_at), alg.as_str());
    assert_eq!(introspect(machine_at).await["active"], true);
}

async fn apps_get_tokens_signed_with_their_algorithm(backend: Backend) {
    let Some(server) =
        TestServer::start(backend, "e2e::apps_get_tokens_signed_with_their_algorithm").await
    else {
        return;
    };
    signs_with_the_apps_algorithm(
        &server,
        Some(SigningAlg::ES256),
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    )
    .await;
    signs_with_the_apps_algorithm(
        &server,
        Some(SigningAlg::EdDSA),
        CoreJwsSigningAlgorithm::EdDsa,
    )
    .await;
    signs_with_the_apps_algorithm(&server, None, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256)
        .await;
    server.stop().await;
}

crate::both_backends!(apps_get_tokens_signed_with_their_algorithm);
