//! Every [`Tamper`] defect, checked on the token it spoils.

use super::*;

/// One sign-in as Alice on an instance with `tamper`: the harness, the ID token, its header and
/// its claims.
async fn tampered(tamper: Tamper) -> (Harness, String, Value, Value) {
    let h = start(tamper).await;
    let tokens = h.sign_in("alice").await;
    let jwt = tokens["id_token"].as_str().unwrap().to_owned();
    let (header, claims) = parts(&jwt);
    (h, jwt, header, claims)
}

#[tokio::test]
async fn tamper_claims() {
    let wog_issuer = |h: &Harness| h.dev.issuer(WOG_TENANT_ID);
    let (h, jwt, _, claims) = tampered(Tamper::WrongIssuer).await;
    assert_eq!(claims["iss"], h.dev.issuer(OTHER_TENANT_ID));
    assert_eq!(claims["tid"], WOG_TENANT_ID);
    h.verify(&jwt, &h.dev.issuer(OTHER_TENANT_ID)).await;

    let (h, _, _, claims) = tampered(Tamper::WrongTenant).await;
    assert_eq!(claims["iss"], wog_issuer(&h));
    assert_eq!(claims["tid"], OTHER_TENANT_ID);

    let (_, _, _, claims) = tampered(Tamper::WrongAudience).await;
    assert_eq!(claims["aud"], "00000000-0000-0000-0000-00000000dead");

    let (_, _, _, claims) = tampered(Tamper::WrongNonce).await;
    assert_eq!(claims["nonce"], "not-the-nonce-you-sent");

    let (_, _, _, claims) = tampered(Tamper::MissingNonce).await;
    assert!(claims.get("nonce").is_none());

    let (h, _, _, claims) = tampered(Tamper::Expired).await;
    let now = h.clock.now().as_secs();
    assert_eq!(
        (&claims["iat"], &claims["nbf"], &claims["exp"]),
        (
            &(now - 7200).into(),
            &(now - 7200).into(),
            &(now - 3600).into()
        )
    );

    let (h, _, _, claims) = tampered(Tamper::IssuedInFuture).await;
    let now = h.clock.now().as_secs();
    assert_eq!(
        (&claims["iat"], &claims["nbf"], &claims["exp"]),
        (
            &(now + 3600).into(),
            &(now + 3600).into(),
            &(now + 7200).into()
        )
    );
}

#[tokio::test]
async fn tamper_signatures() {
    let (h, jwt, header, claims) = tampered(Tamper::Unsigned).await;
    assert_eq!(header, serde_json::json!({"alg": "none", "typ": "JWT"}));
    assert!(jwt.ends_with('.'));
    assert_eq!(jwt.split('.').count(), 3);
    assert_eq!(claims["iss"], h.dev.issuer(WOG_TENANT_ID));

    let (h, jwt, header, _) = tampered(Tamper::AlgConfusion).await;
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], h.dev.key.kid());
    let pem = h.dev.key.public_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[CLIENT_ID]);
    let key = jsonwebtoken::DecodingKey::from_secret(pem.as_bytes());
    jsonwebtoken::decode::<Value>(&jwt, &key, &validation).unwrap();

    let (h, jwt, header, _) = tampered(Tamper::UnknownKey).await;
    assert_eq!(header["alg"], "RS256");
    let kid = header["kid"].as_str().unwrap();
    let jwks = h.jwks().await;
    assert!(jwks.find(kid).is_none());
    // It is a real signature, by a key nobody published.
    let rogue = serde_json::to_value(h.dev.rogue_key.as_ref().unwrap().jwk()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        rogue["n"].as_str().unwrap(),
        rogue["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    jsonwebtoken::decode::<Value>(&jwt, &key, &validation).unwrap();
    let published = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&jwt, &published, &validation).is_err());
}

/// The defects the connector must catch before or besides the signature: `nbf`, sizes, shapes.
#[tokio::test]
async fn tamper_sizes_and_shapes() {
    use crate::{ID_TOKEN_LIMIT, JWS_HEADER_LIMIT, TOKEN_RESPONSE_LIMIT};

    /// Checks the signature over the first three segments, and returns the claims.
    async fn soundly_signed(h: &Harness, jwt: &str) -> Value {
        let three: Vec<&str> = jwt.split('.').take(3).collect();
        h.verify(&three.join("."), &h.dev.issuer(WOG_TENANT_ID))
            .await
    }

    let (h, jwt, _, claims) = tampered(Tamper::NotYetValid).await;
    let now = h.clock.now().as_secs();
    assert_eq!(
        (&claims["iat"], &claims["nbf"], &claims["exp"]),
        (&now.into(), &(now + 3600).into(), &(now + 7200).into())
    );
    assert_eq!(soundly_signed(&h, &jwt).await["nbf"], now + 3600);

    let h = start(Tamper::OversizedIdToken).await;
    let tokens = h.sign_in("alice").await;
    let jwt = tokens["id_token"].as_str().unwrap();
    assert!(jwt.len() > ID_TOKEN_LIMIT, "{}", jwt.len());
    assert!(serde_json::to_vec(&tokens).unwrap().len() < TOKEN_RESPONSE_LIMIT);
    assert_eq!(
        soundly_signed(&h, jwt).await["groups"]
            .as_array()
            .unwrap()
            .len(),
        500
    );

    let h = start(Tamper::OversizedTokenResponse).await;
    let code = h.pick("alice", &[]).await;
    let body = h.redeem_code(&code, VERIFIER).await.bytes().await.unwrap();
    assert!(body.len() > TOKEN_RESPONSE_LIMIT, "{}", body.len());
    let tokens: Value = serde_json::from_slice(&body).unwrap();
    let jwt = tokens["id_token"].as_str().unwrap();
    assert!(jwt.len() < ID_TOKEN_LIMIT);
    soundly_signed(&h, jwt).await;

    let (h, jwt, _, _) = tampered(Tamper::ExtraJwsSegments).await;
    let segments: Vec<&str> = jwt.split('.').collect();
    assert_eq!(segments.len(), 4);
    assert_eq!(segments[3], segments[2]);
    soundly_signed(&h, &jwt).await;

    let (h, jwt, header, _) = tampered(Tamper::OversizedJwsHeader).await;
    assert!(jwt.split('.').next().unwrap().len() > JWS_HEADER_LIMIT);
    assert!(jwt.len() < ID_TOKEN_LIMIT);
    assert_eq!(jwt.split('.').count(), 3);
    assert_eq!(header["x5c"].as_array().unwrap().len(), 3);
    soundly_signed(&h, &jwt).await;
}
