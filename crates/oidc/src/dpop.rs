//! Demonstrating Proof of Possession (DPoP, RFC 9449): a client proves, request by request,
//! that it holds the private key its tokens are bound to. A proof is a JWT of type `dpop+jwt`
//! signed with that key, carrying the public key itself (`jwk`), the request's method (`htm`)
//! and URL without query or fragment (`htu`), a fresh `iat`, a single-use `jti`, and with an
//! access token the hash of it (`ath`). The key is named by its JWK SHA-256 thumbprint
//! (RFC 7638), the `jkt` that bound tokens carry in `cnf`.
//!
//! This module checks one proof; the caller makes `jti` single use for as long as the proof is
//! accepted ([`MAX_AGE_SECS`] plus the skew) and compares the thumbprint with the token's.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::assertion::{public_key, verify_signature, ALGORITHMS};

/// The request header (RFC 9449 §4.1).
pub const HEADER: &str = "dpop";
/// The JWT `typ` of a proof.
pub const PROOF_TYPE: &str = "dpop+jwt";
/// A proof is accepted this long after its `iat` (and as long before, for clock skew).
pub const MAX_AGE_SECS: i64 = 60;
/// A proof larger than this is refused before parsing.
const MAX_PROOF_BYTES: usize = 8 * 1024;

/// A proof that verified: the key's thumbprint, and the `jti` the caller must record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

/// What the proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub method: &'a str,
    /// The endpoint's URL as the client addressed it, without query or fragment.
    pub url: &'a str,
    /// With an access token (at userinfo, introspection's resource servers): `ath` must be
    /// its hash.
    pub access_token: Option<&'a str>,
    pub now: i64,
}

/// `base64url(SHA-256(token))`: the `ath` of a proof sent with `token` (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members in lexicographic order,
/// no whitespace, hashed.
pub fn thumbprint(jwk: &Value) -> Result<String, String> {
    let member = |name: &str| {
        jwk[name]
            .as_str()
            .ok_or_else(|| format!("the jwk has no {name}"))
    };
    let canonical = match member("kty")? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?),
            Value::from(member("y")?)
        ),
        "RSA" => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            Value::from(member("e")?),
            Value::from(member("n")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            Value::from(member("crv")?),
            Value::from(member("x")?)
        ),
        other => return Err(format!("key type {other} is not supported")),
    };
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// The URL a proof's `htu` is compared with: scheme and host lower-cased, default port
/// dropped, no query or fragment (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2-3).
fn normalized(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    Some(parsed.to_string())
}

/// Checks one proof. The error says which check failed (for the `error_description`; it holds
/// nothing secret).
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, String> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err("the DPoP proof is too large".into());
    }
    let (signing_input, signature) = proof
        .rsplit_once('.')
        .ok_or("the DPoP proof is not a JWT")?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or("the DPoP proof is not a JWT")?;
    let decode = |part: &str| -> Result<Value, String> {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
            .ok_or_else(|| "the DPoP proof is malformed".to_string())
    };
    let header = decode(header)?;
    if header["typ"] != PROOF_TYPE {
        return Err(format!("the DPoP proof's typ must be {PROOF_TYPE}"));
    }
    let alg = header["alg"].as_str().unwrap_or("");
    if !ALGORITHMS.contains(&alg) {
        return Err(format!(
            "the DPoP proof's alg {alg:?} is not one of {}",
            ALGORITHMS.join(", ")
        ));
    }
    let jwk = &header["jwk"];
    if !jwk.is_object() {
        return Err("the DPoP proof carries no jwk".into());
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|private| jwk.get(private).is_some())
    {
        return Err("the DPoP proof's jwk holds a private key".into());
    }
    let key = public_key(jwk).map_err(|e| format!("the DPoP proof's jwk: {e}"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the DPoP proof's signature is malformed")?;
    if !verify_signature(&key, alg, signing_input.as_bytes(), &signature) {
        return Err("the DPoP proof's signature does not verify with its jwk".into());
    }
    let claims = decode(payload)?;
    let htm = claims["htm"].as_str().unwrap_or("");
    if htm != expected.method {
        return Err(format!("the DPoP proof's htm must be {}", expected.method));
    }
    let htu = claims["htu"].as_str().and_then(normalized);
    if htu.is_none() || htu != normalized(expected.url) {
        return Err(format!("the DPoP proof's htu must be {}", expected.url));
    }
    let iat = claims["iat"].as_i64().ok_or("the DPoP proof has no iat")?;
    if iat > expected.now + MAX_AGE_SECS || iat < expected.now - MAX_AGE_SECS {
        return Err(format!(
            "the DPoP proof's iat is more than {MAX_AGE_SECS} s from now"
        ));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("the DPoP proof has no jti")?;
    match (expected.access_token, claims["ath"].as_str()) {
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), Some(_)) => {
            return Err("the DPoP proof's ath is not the access token's hash".into())
        }
        (Some(_), None) => return Err("the DPoP proof has no ath".into()),
        (None, _) => {}
    }
    Ok(Proof {
        jkt: thumbprint(jwk)?,
        jti: jti.to_string(),
        iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    const URL: &str = "https://id.example.gov.sg/token";
    const NOW: i64 = 1_800_000_000;

    struct Key {
        pair: EcdsaKeyPair,
        jwk: Value,
    }

    fn key() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Key { pair, jwk }
    }

    fn sign(key: &Key, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = key
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn header(key: &Key) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk})
    }

    fn claims() -> Value {
        json!({"htm": "POST", "htu": URL, "iat": NOW, "jti": "j1"})
    }

    fn expected() -> Expected<'static> {
        Expected {
            method: "POST",
            url: URL,
            access_token: None,
            now: NOW,
        }
    }

    #[test]
    fn a_good_proof_names_its_key() {
        let k = key();
        let proof = verify(&sign(&k, header(&k), claims()), &expected()).unwrap();
        assert_eq!(proof.jkt, thumbprint(&k.jwk).unwrap());
        assert_eq!(proof.jti, "j1");
        // The htu compares as a URL: case of scheme and host, a default port, a query.
        let mut c = claims();
        c["htu"] = json!("HTTPS://ID.example.gov.sg:443/token?x=1");
        assert!(verify(&sign(&k, header(&k), c), &expected()).is_ok());
        // With an access token: ath must be its hash.
        let mut c = claims();
        c["ath"] = json!(access_token_hash("at-1"));
        let with_token = Expected {
            access_token: Some("at-1"),
            ..expected()
        };
        assert!(verify(&sign(&k, header(&k), c), &with_token).is_ok());
    }

    #[test]
    fn rfc_7638_thumbprint() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn bad_proofs_are_refused_naming_the_check() {
        let k = key();
        let other = key();
        let good = |h: Value, c: Value| sign(&k, h, c);
        let with = |member: &str, value: Value| {
            let mut c = claims();
            c[member] = value;
            good(header(&k), c)
        };
        let without = |member: &str| {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(member);
            good(header(&k), c)
        };
        let forged = sign(&other, header(&k), claims());
        let mut none = header(&k);
        none["alg"] = json!("none");
        let mut hs = header(&k);
        hs["alg"] = json!("HS256");
        let mut jwt = header(&k);
        jwt["typ"] = json!("JWT");
        let mut private = header(&k);
        private["jwk"]["d"] = json!("c2VjcmV0");
        let mut no_jwk = header(&k);
        no_jwk.as_object_mut().unwrap().remove("jwk");
        let cases: Vec<(String, &str)> = vec![
            ("not a jwt".into(), "not a JWT"),
            ("a.b.c".into(), "malformed"),
            (good(jwt, claims()), "typ"),
            (good(none, claims()), "alg"),
            (good(hs, claims()), "alg"),
            (good(no_jwk, claims()), "no jwk"),
            (good(private, claims()), "private key"),
            (forged, "signature"),
            (with("htm", json!("GET")), "htm"),
            (
                with("htu", json!("https://id.example.gov.sg/userinfo")),
                "htu",
            ),
            (with("htu", json!("https://evil.example/token")), "htu"),
            (without("htu"), "htu"),
            (with("iat", json!(NOW - 61)), "iat"),
            (with("iat", json!(NOW + 61)), "iat"),
            (without("iat"), "iat"),
            (without("jti"), "jti"),
            (with("jti", json!("")), "jti"),
            ("x".repeat(MAX_PROOF_BYTES + 1), "too large"),
        ];
        for (proof, reason) in cases {
            let e = verify(&proof, &expected()).unwrap_err();
            assert!(e.contains(reason), "{reason}: {e}");
        }
        // With an access token: ath is required and must match.
        let with_token = Expected {
            access_token: Some("at-1"),
            ..expected()
        };
        let e = verify(&good(header(&k), claims()), &with_token).unwrap_err();
        assert!(e.contains("no ath"), "{e}");
        let e = verify(&with("ath", json!(access_token_hash("at-2"))), &with_token).unwrap_err();
        assert!(e.contains("ath"), "{e}");
    }
}
