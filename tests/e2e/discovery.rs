//! Discovery and JWKS over HTTP, on both backends.

use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::Value;
use techpass_oidc::keys::SigningAlg;
use techpass_store::testing::Backend;

use crate::support::TestServer;

async fn discovery_lists_what_is_implemented(backend: Backend) {
    let Some(server) = TestServer::start(backend, "e2e::discovery_lists_what_is_implemented").await
    else {
        return;
    };
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], server.base, "issuer without trailing slash");
        assert_eq!(doc["jwks_uri"], format!("{}/jwks", server.base));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256", "ES256", "EdDSA"]),
            "the default first"
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["request_uri_parameter_supported"], false);
        // Nothing advertised ahead of its implementation.
        assert!(
            doc.get("registration_endpoint").is_none(),
            "registration_endpoint advertised but not implemented"
        );
        // Every advertised endpoint is served (a GET may be refused, but never 404).
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
            "introspection_endpoint",
            "end_session_endpoint",
            "device_authorization_endpoint",
        ] {
            let url = doc[key].as_str().unwrap();
            assert!(url.starts_with(&server.base), "{key}: {url}");
            let status = server
                .get(url.trim_start_matches(&server.base))
                .await
                .status();
            assert_ne!(status, 404, "{key} is not served");
        }
    }
    server.stop().await;
}

async fn token_signed_by_active_key_verifies_against_published_jwks(backend: Backend) {
    let Some(server) = TestServer::start(
        backend,
        "e2e::token_signed_by_active_key_verifies_against_published_jwks",
    )
    .await
    else {
        return;
    };
    let claims = serde_json::json!({"iss": server.base, "sub": "someone", "aud": "app", "exp": 4_000_000_000u64});
    let algs = [
        (SigningAlg::RS256, jsonwebtoken::Algorithm::RS256),
        (SigningAlg::ES256, jsonwebtoken::Algorithm::ES256),
        (SigningAlg::EdDSA, jsonwebtoken::Algorithm::EdDSA),
    ];

    let response = server.get("/jwks").await;
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(cache, "public, max-age=300");
    let jwks: jsonwebtoken::jwk::JwkSet = response.json().await.unwrap();
    let published: Vec<_> = jwks.keys.iter().map(|k| k.common.key_algorithm).collect();
    assert_eq!(
        published,
        vec![
            Some(jsonwebtoken::jwk::KeyAlgorithm::RS256),
            Some(jsonwebtoken::jwk::KeyAlgorithm::ES256),
            Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA),
        ],
        "one key per algorithm"
    );
    for jwk in &jwks.keys {
        assert!(jwk.common.key_id.is_some());
        assert_eq!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
        );
    }
    for (ours, theirs) in algs {
        let token = server.state.keys.sign_jwt(ours, "JWT", &claims).unwrap();
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, theirs);
        let kid = header.kid.unwrap();
        let key =
            DecodingKey::from_jwk(jwks.find(&kid).expect("signing key is published")).unwrap();
        let mut validation = Validation::new(theirs);
        validation.set_audience(&["app"]);
        validation.set_issuer(&[server.base.as_str()]);
        let verified = decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(verified.claims["sub"], "someone");
    }
    server.stop().await;
}

crate::both_backends!(
    discovery_lists_what_is_implemented,
    token_signed_by_active_key_verifies_against_published_jwks,
);
