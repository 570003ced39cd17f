//! Client authentication with a signed assertion, `private_key_jwt` (RFC 7523 §2.2 and §3,
//! OpenID Connect Core §9). The client signs a short-lived JWT with a key whose public half it
//! registered; the provider checks the signature against that key only, with an algorithm from a
//! fixed allow-list (never `none`, never an HMAC), and `iss` = `sub` = the client id, `aud` =
//! the token endpoint or the issuer, an `exp` that is near, and a `jti` used once (the caller
//! records it).

use aws_lc_rs::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Accepted signing algorithms.
pub const ALGORITHMS: [&str; 3] = ["RS256", "PS256", "ES256"];
/// At most this many keys per client.
pub const MAX_KEYS: usize = 5;
/// An assertion may not be valid for longer than this.
pub const MAX_LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
}

#[derive(Debug, Clone)]
struct ClientKey {
    kid: Option<String>,
    key: PublicKey,
}

/// A client's registered public keys, validated.
#[derive(Debug, Clone)]
pub struct ClientJwks(Vec<ClientKey>);

fn b64(value: &Value, member: &str) -> Result<Vec<u8>, String> {
    value[member]
        .as_str()
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
        .ok_or_else(|| format!("key member {member} is missing or not base64url"))
}

/// Parses and checks a JWK set (RFC 7517 §5): 1 to 5 public RSA (≥ 2048 bits) or EC P-256 keys.
pub fn parse_client_jwks(text: &str) -> Result<ClientJwks, String> {
    let set: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = set["keys"].as_array().ok_or("no keys array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("a client registers 1 to {MAX_KEYS} keys"));
    }
    let mut parsed = Vec::new();
    for k in keys {
        if k.get("d").is_some() || k.get("p").is_some() {
            return Err("a private key was sent; register only the public key".into());
        }
        let key = public_key(k)?;
        parsed.push(ClientKey {
            kid: k["kid"].as_str().map(String::from),
            key,
        });
    }
    Ok(ClientJwks(parsed))
}

/// One public JWK (RFC 7517): RSA of at least 2048 bits or EC P-256.
pub(crate) fn public_key(k: &Value) -> Result<PublicKey, String> {
    Ok(match k["kty"].as_str() {
        Some("RSA") => {
            let n = b64(k, "n")?;
            let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
            if n.len() < 256 {
                return Err("RSA keys must have at least 2048 bits".into());
            }
            PublicKey::Rsa { n, e: b64(k, "e")? }
        }
        Some("EC") if k["crv"] == "P-256" => {
            let (x, y) = (b64(k, "x")?, b64(k, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("malformed P-256 key".into());
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::P256 { point }
        }
        _ => return Err("only RSA and EC P-256 keys are supported".into()),
    })
}

/// A verified assertion: what the caller must still record to make it single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub exp: i64,
}

pub(crate) fn verify_signature(
    key: &PublicKey,
    alg: &str,
    message: &[u8],
    signature: &[u8],
) -> bool {
    match (key, alg) {
        (PublicKey::Rsa { n, e }, "RS256") => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
        (PublicKey::Rsa { n, e }, "PS256") => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PSS_2048_8192_SHA256, message, signature)
            .is_ok(),
        (PublicKey::P256 { point }, "ES256") => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        _ => false,
    }
}

/// Checks an assertion of `client_id`. The error is a reason for the logs, never for clients.
pub fn verify_assertion(
    assertion: &str,
    client_id: &str,
    keys: &ClientJwks,
    audiences: &[&str],
    now: i64,
    skew: i64,
) -> Result<VerifiedAssertion, String> {
    let (signing_input, signature) = assertion.rsplit_once('.').ok_or("not a JWS")?;
    let (header, payload) = signing_input.split_once('.').ok_or("not a JWS")?;
    let decode = |part: &str| -> Result<Value, String> {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| "malformed JWS part".to_string())
    };
    let header = decode(header)?;
    let alg = header["alg"].as_str().unwrap_or("");
    if !ALGORITHMS.contains(&alg) {
        return Err(format!("algorithm {alg:?} is not allowed"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "malformed signature")?;
    let kid = header["kid"].as_str();
    let candidates: Vec<&ClientKey> = keys
        .0
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if !candidates
        .iter()
        .any(|k| verify_signature(&k.key, alg, signing_input.as_bytes(), &signature))
    {
        return Err("signature does not verify with a registered key".into());
    }
    let claims = decode(payload)?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss and sub must both be the client id".into());
    }
    let audience_ok = match &claims["aud"] {
        Value::String(a) => audiences.contains(&a.as_str()),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => false,
    };
    if !audience_ok {
        return Err("aud is not this token endpoint or issuer".into());
    }
    let exp = claims["exp"].as_i64().ok_or("exp is required")?;
    if now >= exp + skew {
        return Err("the assertion has expired".into());
    }
    if exp - now > MAX_LIFETIME_SECS {
        return Err(format!(
            "the assertion lives longer than {MAX_LIFETIME_SECS} s"
        ));
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + skew) {
        return Err("the assertion is not yet valid".into());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("jti is required")?;
    Ok(VerifiedAssertion {
        jti: jti.to_string(),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn p256() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        (pair, jwks.to_string())
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    const AUD: &str = "https://id.example/token";

    #[test]
    fn assertion_rules() {
        let (pair, jwks) = p256();
        let keys = parse_client_jwks(&jwks).unwrap();
        let claims = |f: &dyn Fn(&mut Value)| {
            let mut c = serde_json::json!({"iss": "app_1", "sub": "app_1", "aud": AUD, "exp": 1_060, "jti": "j1"});
            f(&mut c);
            c
        };
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let ok = sign(&pair, header.clone(), claims(&|_| {}));
        assert_eq!(
            verify_assertion(&ok, "app_1", &keys, &[AUD], 1_000, 5).unwrap(),
            VerifiedAssertion {
                jti: "j1".into(),
                exp: 1_060
            }
        );
        let refused = |jwt: &str| verify_assertion(jwt, "app_1", &keys, &[AUD], 1_000, 5).is_err();
        assert!(refused(&sign(
            &pair,
            header.clone(),
            claims(&|c| c["aud"] = "https://other".into())
        )));
        assert!(refused(&sign(
            &pair,
            header.clone(),
            claims(&|c| c["sub"] = "app_2".into())
        )));
        assert!(refused(&sign(
            &pair,
            header.clone(),
            claims(&|c| c["exp"] = 990.into())
        )));
        assert!(refused(&sign(
            &pair,
            header.clone(),
            claims(&|c| c["exp"] = 9_999.into())
        )));
        assert!(refused(&sign(
            &pair,
            header.clone(),
            claims(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })
        )));
        assert!(refused(&sign(
            &pair,
            serde_json::json!({"alg": "none"}),
            claims(&|_| {})
        )));
        assert!(refused(&sign(
            &pair,
            serde_json::json!({"alg": "HS256"}),
            claims(&|_| {})
        )));
        let (other, _) = p256();
        assert!(
            refused(&sign(&other, header.clone(), claims(&|_| {}))),
            "another key"
        );
        assert!(!refused(&sign(
            &pair,
            header,
            claims(&|c| c["aud"] = serde_json::json!(["x", AUD]))
        )));
    }

    #[test]
    fn registration_rules() {
        assert!(parse_client_jwks("{}").is_err());
        assert!(parse_client_jwks(r#"{"keys":[]}"#).is_err());
        assert!(parse_client_jwks(r#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#).is_err());
        let (_, jwks) = p256();
        let mut with_private: Value = serde_json::from_str(&jwks).unwrap();
        with_private["keys"][0]["d"] = "AAAA".into();
        assert!(parse_client_jwks(&with_private.to_string())
            .unwrap_err()
            .contains("private"));
        let six = serde_json::json!({"keys": vec![serde_json::from_str::<Value>(&jwks).unwrap()["keys"][0].clone(); 6]});
        assert!(parse_client_jwks(&six.to_string()).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const NOW: i64 = 1_000;
        const SKEW: i64 = 5;

        /// What RFC 7523 §3 and our limits say of these claims, written apart from the code.
        fn acceptable(c: &Value) -> bool {
            let aud_ok = match &c["aud"] {
                Value::String(a) => a == AUD,
                Value::Array(list) => list.iter().any(|a| a == AUD),
                _ => false,
            };
            let exp = c["exp"].as_i64();
            let jti = c["jti"].as_str();
            c["iss"] == "app_1"
                && c["sub"] == "app_1"
                && aud_ok
                && exp.is_some_and(|e| NOW < e + SKEW && e - NOW <= MAX_LIFETIME_SECS)
                && c["nbf"].as_i64().is_none_or(|nbf| nbf <= NOW + SKEW)
                && jti.is_some_and(|j| !j.is_empty() && j.len() <= 256)
        }

        fn claims() -> impl Strategy<Value = Value> {
            let who = prop_oneof![Just("app_1"), Just("app_2"), Just("")];
            let aud = prop_oneof![
                Just(Value::from(AUD)),
                Just(Value::from("https://other/token")),
                Just(serde_json::json!(["x", AUD])),
                Just(serde_json::json!(["x"])),
                Just(Value::from(7)),
            ];
            let jti = prop_oneof![
                Just(None),
                Just(Some(String::new())),
                "[a-z0-9]{1,300}".prop_map(Some),
            ];
            (
                who.clone(),
                who,
                aud,
                proptest::option::weighted(0.95, NOW - 30..NOW + 400),
                proptest::option::of(NOW - 30..NOW + 30),
                jti,
            )
                .prop_map(|(iss, sub, aud, exp, nbf, jti)| {
                    let mut c = serde_json::json!({"iss": iss, "sub": sub, "aud": aud});
                    if let Some(exp) = exp {
                        c["exp"] = exp.into();
                    }
                    if let Some(nbf) = nbf {
                        c["nbf"] = nbf.into();
                    }
                    if let Some(jti) = jti {
                        c["jti"] = jti.into();
                    }
                    c
                })
        }

        proptest! {
            /// A genuinely signed assertion is accepted exactly when the claims model says so.
            #[test]
            fn signed_claims_are_judged_as_the_rfc_says(c in claims()) {
                let (pair, jwks) = p256();
                let keys = parse_client_jwks(&jwks).unwrap();
                let jwt = sign(&pair, serde_json::json!({"alg": "ES256", "kid": "k1"}), c.clone());
                let verdict = verify_assertion(&jwt, "app_1", &keys, &[AUD], NOW, SKEW);
                prop_assert_eq!(verdict.is_ok(), acceptable(&c), "{} -> {:?}", c, verdict);
            }

            /// Any byte of a sound assertion changed, any truncation, any segment replaced:
            /// refused, never a panic.
            #[test]
            fn any_change_to_a_sound_assertion_is_refused(
                at in any::<prop::sample::Index>(),
                to in proptest::char::range('!', '~'),
                cut in any::<prop::sample::Index>(),
                which in 0..3usize,
                with in "[A-Za-z0-9_-]{0,200}",
            ) {
                let (pair, jwks) = p256();
                let keys = parse_client_jwks(&jwks).unwrap();
                let sound = sign(
                    &pair,
                    serde_json::json!({"alg": "ES256", "kid": "k1"}),
                    serde_json::json!({"iss": "app_1", "sub": "app_1", "aud": AUD, "exp": NOW + 60, "jti": "j"}),
                );
                let verify = |jwt: &str| verify_assertion(jwt, "app_1", &keys, &[AUD], NOW, SKEW);
                prop_assert!(verify(&sound).is_ok());
                let mut bytes = sound.clone().into_bytes();
                let i = at.index(bytes.len());
                bytes[i] = to as u8;
                let changed = String::from_utf8(bytes).unwrap();
                if changed != sound {
                    prop_assert!(verify(&changed).is_err(), "{changed}");
                }
                let truncated = &sound[..cut.index(sound.len())];
                prop_assert!(verify(truncated).is_err());
                let mut parts: Vec<&str> = sound.split('.').collect();
                if parts[which] != with {
                    parts[which] = &with;
                    prop_assert!(verify(&parts.join(".")).is_err());
                }
            }

            /// Any text as an assertion or as a registered key set: an answer, never a panic.
            #[test]
            fn any_text_gets_an_answer(text in ".{0,400}", jwks in ".{0,400}") {
                let (_, sound) = p256();
                let keys = parse_client_jwks(&sound).unwrap();
                prop_assert!(verify_assertion(&text, "app_1", &keys, &[AUD], NOW, SKEW).is_err());
                let _ = parse_client_jwks(&jwks);
            }
        }
    }
}
