//! CI workload identity: checking the OIDC ID token a CI job holds (GitLab CI's `id_tokens`,
//! GitHub Actions' `ACTIONS_ID_TOKEN_REQUEST_URL`) before TechPass exchanges it for an access
//! token (RFC 8693). The issuer is one a tenant admin registered; its keys come from its own
//! JWKS. Only asymmetric algorithms from a fixed list are accepted (never `none`, never an HMAC,
//! so a public key can never be used as an HMAC secret), and only with the key type they belong
//! to.
//!
//! This module verifies; fetching the keys, the registered rules and single use of `jti` are
//! the service layer's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::assertion::{public_key, verify_signature, PublicKey, ALGORITHMS};

/// RFC 8693 §2.1.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the subject token types a CI job's ID token may be presented as.
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693 §3: what TechPass issues in return.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// At most this many keys are read from an issuer's JWKS (GitLab and GitHub publish two or
/// three); the rest are ignored.
pub const MAX_ISSUER_KEYS: usize = 20;
/// The largest subject token looked at.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// An issuer's signing keys, as its JWKS published them: the RSA (≥ 2048 bits) and EC P-256
/// keys meant for signatures. Keys of other types or for encryption are skipped, so one odd
/// key does not make the issuer unusable.
#[derive(Debug, Clone, Default)]
pub struct IssuerKeys(Vec<(Option<String>, PublicKey)>);

impl IssuerKeys {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.0.iter().any(|(k, _)| k.as_deref() == Some(kid))
    }
}

/// Reads a JWK set (RFC 7517 §5) published by a CI issuer.
pub fn parse_issuer_jwks(set: &Value) -> Result<IssuerKeys, String> {
    let keys = set["keys"].as_array().ok_or("the JWKS has no keys array")?;
    let usable: Vec<(Option<String>, PublicKey)> = keys
        .iter()
        .filter(|k| k.get("d").is_none())
        .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            public_key(k)
                .ok()
                .map(|key| (k["kid"].as_str().map(String::from), key))
        })
        .take(MAX_ISSUER_KEYS)
        .collect();
    if usable.is_empty() {
        return Err("the JWKS holds no RSA or EC P-256 signing key".into());
    }
    Ok(IssuerKeys(usable))
}

/// Why a subject token was refused. The texts are safe to return to the CI job (they say which
/// check failed, never a key or the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the subject token is not a signed JWT: {0}")]
    Malformed(String),
    /// The header names a key the issuer's JWKS does not hold (yet): the caller may refetch the
    /// JWKS once and try again.
    #[error("the subject token is signed with key {0:?}, which the issuer does not publish")]
    UnknownKey(String),
    #[error("the subject token's signature does not verify with the issuer's keys")]
    BadSignature,
    #[error("{0}")]
    Claims(String),
}

/// What the token must say besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub now: i64,
    /// Clock difference tolerated on `exp`, `nbf` and `iat`.
    pub skew: i64,
}

/// A subject token split into its parts, read but not yet verified.
#[derive(Debug, Clone)]
pub struct Unverified {
    alg: String,
    kid: Option<String>,
    signing_input: String,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

/// Splits and decodes a JWS in compact form (RFC 7515 §7.1), checking the algorithm against
/// the allow-list before anything else.
pub fn read(token: &str) -> Result<Unverified, Rejection> {
    let malformed = |why: &str| Rejection::Malformed(why.to_string());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed("it is larger than 16 KiB"));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("no parts"))?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or_else(|| malformed("it has two parts, not three"))?;
    if payload.contains('.') {
        return Err(malformed(
            "it has more than three parts (an encrypted JWT?)",
        ));
    }
    let decode = |part: &str, what: &str| -> Result<Map<String, Value>, Rejection> {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
            .ok_or_else(|| malformed(&format!("its {what} is not base64url JSON")))
    };
    let header = decode(header, "header")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !ALGORITHMS.contains(&alg) {
        return Err(malformed(&format!(
            "algorithm {alg:?} is not accepted (accepted: {})",
            ALGORITHMS.join(", ")
        )));
    }
    if header.contains_key("crit") {
        return Err(malformed("it has critical header parameters"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("its signature is not base64url"))?;
    Ok(Unverified {
        alg: alg.to_string(),
        kid: header.get("kid").and_then(Value::as_str).map(String::from),
        signing_input: signing_input.to_string(),
        signature,
        claims: decode(payload, "payload")?,
    })
}

impl Unverified {
    /// The `iss` the token claims, to find which registration (and keys) to check it with.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The key the header names, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Verifies the signature with `keys` and the registered claims against `expected`; the
    /// claims are returned for the caller's rules. `aud` may be a string or a list holding the
    /// expected audience; `exp` is required, `nbf` and `iat` are checked when present.
    pub fn verify(
        self,
        keys: &IssuerKeys,
        expected: &Expected<'_>,
    ) -> Result<Map<String, Value>, Rejection> {
        if let Some(kid) = &self.kid {
            if !keys.has_kid(kid) {
                return Err(Rejection::UnknownKey(kid.clone()));
            }
        }
        let verified = keys
            .0
            .iter()
            .filter(|(kid, _)| self.kid.is_none() || kid.as_deref() == self.kid.as_deref())
            .any(|(_, key)| {
                verify_signature(
                    key,
                    &self.alg,
                    self.signing_input.as_bytes(),
                    &self.signature,
                )
            });
        if !verified {
            return Err(Rejection::BadSignature);
        }
        let claims = self.claims;
        let claim = |why: String| Rejection::Claims(why);
        if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
            return Err(claim(format!("iss is not {}", expected.issuer)));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == expected.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a == expected.audience),
            _ => false,
        };
        if !audience_ok {
            return Err(claim(format!(
                "aud does not name {:?}, the audience this app requires",
                expected.audience
            )));
        }
        let time = |name: &str| -> Result<Option<i64>, Rejection> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| claim(format!("{name} is not a number of seconds"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| claim("exp is required".into()))?;
        if expected.now >= exp.saturating_add(expected.skew) {
            return Err(claim("the subject token has expired (exp)".into()));
        }
        if time("nbf")?.is_some_and(|nbf| nbf > expected.now.saturating_add(expected.skew)) {
            return Err(claim("the subject token is not valid yet (nbf)".into()));
        }
        if time("iat")?.is_some_and(|iat| iat > expected.now.saturating_add(expected.skew)) {
            return Err(claim(
                "the subject token was issued in the future (iat)".into(),
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    fn p256(kid: &str) -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        (pair, jwk)
    }

    fn jws(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    const ISS: &str = "https://gitlab.example";
    const NOW: i64 = 1_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISS,
            audience: "https://id.example",
            now: NOW,
            skew: 30,
        }
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "https://id.example", "sub": "project_path:g/p:ref_type:branch:ref:main",
               "exp": NOW + 300, "iat": NOW - 5, "nbf": NOW - 5, "jti": "j1"})
    }

    fn check(keys: &IssuerKeys, token: &str) -> Result<Map<String, Value>, Rejection> {
        read(token)?.verify(keys, &expected())
    }

    #[test]
    fn jwks_keeps_only_signing_keys_it_can_use() {
        let (_, jwk) = p256("k1");
        let set = json!({"keys": [
            jwk,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "OKP", "crv": "X25519", "x": "AAAA", "kid": "x"},
            {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc", "x": "AAAA", "y": "AAAA"},
        ]});
        let keys = parse_issuer_jwks(&set).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.has_kid("k1") && !keys.has_kid("hmac"));
        assert!(parse_issuer_jwks(&json!({"keys": []})).is_err());
        assert!(parse_issuer_jwks(&json!({"nokeys": 1})).is_err());
    }

    #[test]
    fn a_good_token_verifies_and_each_check_refuses() {
        let (pair, jwk) = p256("k1");
        let keys = parse_issuer_jwks(&json!({"keys": [jwk]})).unwrap();
        let header = json!({"alg": "ES256", "kid": "k1", "typ": "JWT"});
        let ok = jws(&pair, header.clone(), claims());
        let got = check(&keys, &ok).unwrap();
        assert_eq!(got["sub"], "project_path:g/p:ref_type:branch:ref:main");
        // aud as a list holding the audience.
        let mut c = claims();
        c["aud"] = json!(["other", "https://id.example"]);
        assert!(check(&keys, &jws(&pair, header.clone(), c)).is_ok());

        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            jws(&pair, header.clone(), c)
        };
        let refused = |token: String| check(&keys, &token).unwrap_err();
        assert!(
            matches!(refused(with(&|c| c["aud"] = json!("https://else"))), Rejection::Claims(m) if m.contains("aud"))
        );
        assert!(
            matches!(refused(with(&|c| c["iss"] = json!("https://else"))), Rejection::Claims(m) if m.contains("iss"))
        );
        assert!(
            matches!(refused(with(&|c| c["exp"] = json!(NOW - 31))), Rejection::Claims(m) if m.contains("expired"))
        );
        // Within the skew it is still good.
        assert!(check(&keys, &with(&|c| c["exp"] = json!(NOW - 29))).is_ok());
        assert!(
            matches!(refused(with(&|c| { c.as_object_mut().unwrap().remove("exp"); })), Rejection::Claims(m) if m.contains("exp is required"))
        );
        assert!(
            matches!(refused(with(&|c| c["nbf"] = json!(NOW + 60))), Rejection::Claims(m) if m.contains("nbf"))
        );
        assert!(
            matches!(refused(with(&|c| c["iat"] = json!(NOW + 60))), Rejection::Claims(m) if m.contains("iat"))
        );
        assert!(matches!(
            refused(with(&|c| c["exp"] = json!("soon"))),
            Rejection::Claims(_)
        ));

        // Another key with the same kid: the signature fails.
        let (other, _) = p256("k1");
        assert_eq!(
            refused(jws(&other, header.clone(), claims())),
            Rejection::BadSignature
        );
        // An unknown kid asks for the issuer's keys again.
        let unknown = jws(&pair, json!({"alg": "ES256", "kid": "k2"}), claims());
        assert!(!keys.has_kid(read(&unknown).unwrap().kid().unwrap()));
        assert_eq!(refused(unknown), Rejection::UnknownKey("k2".into()));
        // A tampered payload under the original signature.
        let mut tampered = claims();
        tampered["sub"] = json!("project_path:evil");
        let payload = URL_SAFE_NO_PAD.encode(tampered.to_string());
        let mut parts: Vec<&str> = ok.split('.').collect();
        parts[1] = &payload;
        assert_eq!(refused(parts.join(".")), Rejection::BadSignature);
    }

    #[test]
    fn algorithms_outside_the_list_and_malformed_tokens_are_refused() {
        let (pair, jwk) = p256("k1");
        let keys = parse_issuer_jwks(&json!({"keys": [jwk.clone()]})).unwrap();
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        // alg none, with an empty signature.
        let none = format!("{}.{}.", b64(json!({"alg": "none"})), b64(claims()));
        assert!(
            matches!(check(&keys, &none), Err(Rejection::Malformed(m)) if m.contains("\"none\""))
        );
        // HS256 keyed with the issuer's public key (the key-confusion attack).
        let hs = format!(
            "{}.{}.AAAA",
            b64(json!({"alg": "HS256", "kid": "k1"})),
            b64(claims())
        );
        assert!(matches!(check(&keys, &hs), Err(Rejection::Malformed(m)) if m.contains("HS256")));
        // RS256 claimed over an EC key: no key of that type verifies it.
        let rs = jws(&pair, json!({"alg": "RS256", "kid": "k1"}), claims());
        assert_eq!(check(&keys, &rs).unwrap_err(), Rejection::BadSignature);
        for bad in ["", "abc", "a.b", "a.b.c.d.e", "!!.!!.!!"] {
            assert!(
                matches!(check(&keys, bad), Err(Rejection::Malformed(_))),
                "{bad}"
            );
        }
        let crit = jws(
            &pair,
            json!({"alg": "ES256", "kid": "k1", "crit": ["x"]}),
            claims(),
        );
        assert!(matches!(check(&keys, &crit), Err(Rejection::Malformed(_))));
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(check(&keys, &huge), Err(Rejection::Malformed(_))));
    }
}
