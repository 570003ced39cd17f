//! RSA signing keys. The `rsa` crate generates and serialises them only: its private-key
//! operations carry an unfixed timing advisory (RUSTSEC-2023-0071). Signing goes through
//! aws-lc-rs, with the key parsed once and kept in memory.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use super::KeyError;

/// Modulus size of generated keys.
pub const RSA_BITS: usize = 2048;
pub const ALGORITHM: &str = "RS256";

/// A public key as published in the JWKS (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// A freshly generated key: its PKCS#8 DER (to be sealed) and its public JWK.
pub struct GeneratedKey {
    pub pkcs8_der: Vec<u8>,
    pub jwk: PublicJwk,
}

/// Generates an RSA-2048 key. The kid is the RFC 7638 JWK thumbprint, so it names the key
/// material itself.
pub fn generate() -> Result<GeneratedKey, KeyError> {
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, RSA_BITS)
        .map_err(|e| KeyError::Crypto(format!("RSA key generation failed: {e}")))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| KeyError::Crypto(format!("PKCS#8 encoding failed: {e}")))?;
    let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
    let kid = thumbprint(&n, &e);
    Ok(GeneratedKey {
        pkcs8_der: der.as_bytes().to_vec(),
        jwk: PublicJwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: ALGORITHM.into(),
            kid,
            n,
            e,
        },
    })
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// A private key ready to sign: parsed once into aws-lc-rs.
pub struct Signer {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| KeyError::Crypto(format!("unusable private key: {e}")))?;
        Ok(Signer {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .map_err(|_| KeyError::Crypto("signing failed".into()))?;
        Ok(signature)
    }

    /// Verifies an RS256 signature with the public half.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let public = self.pair.public_key();
        let components = aws_lc_rs::signature::RsaPublicKeyComponents {
            n: public.modulus().big_endian_without_leading_zero(),
            e: public.exponent().big_endian_without_leading_zero(),
        };
        components
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            )
            .map_err(|_| KeyError::InvalidToken("bad signature".into()))
    }

    /// Whether this private key belongs to `jwk` (guards against a row whose columns disagree).
    pub fn matches(&self, jwk: &PublicJwk) -> bool {
        let public = self.pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        n == jwk.n && e == jwk.e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_signs_and_has_a_thumbprint_kid() {
        let key = generate().unwrap();
        assert_eq!(key.jwk.kid, thumbprint(&key.jwk.n, &key.jwk.e));
        assert_eq!(key.jwk.kid.len(), 43, "base64url of 32 bytes");
        assert_eq!(key.jwk.e, "AQAB");
        let signer = Signer::from_pkcs8(&key.pkcs8_der).unwrap();
        assert!(signer.matches(&key.jwk));
        assert_eq!(signer.sign(b"hello").unwrap().len(), 256);
        let other = generate().unwrap();
        assert!(!signer.matches(&other.jwk));
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
