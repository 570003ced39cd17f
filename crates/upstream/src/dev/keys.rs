//! The development upstream's RSA signing key: generated in memory with aws-lc-rs, published
//! Azure-style in the JWKS, signing RS256 (RFC 7518 §3.3). Never persisted, never rotated.

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;

use super::DevError;

/// A public key as Azure AD publishes it: no `alg`, and an `x5t` equal to the `kid`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Jwk {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    kid: String,
    x5t: String,
    n: String,
    e: String,
}

pub(super) struct SigningKey {
    pair: KeyPair,
    jwk: Jwk,
    /// The SubjectPublicKeyInfo as PEM text: what a confused verifier uses as an HMAC secret.
    public_pem: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.jwk.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(super) fn generate() -> Result<Self, DevError> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| DevError::Crypto("RSA key generation failed"))?;
        let public = pair.public_key();
        let spki = public
            .as_der()
            .map_err(|_| DevError::Crypto("public key encoding failed"))?;
        // Azure's kid and x5t are the SHA-1 thumbprint of the signing certificate. There is no
        // certificate here, so the thumbprint is taken over the public key; it is only a name.
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, spki.as_ref()));
        let jwk = Jwk {
            kty: "RSA",
            use_: "sig",
            x5t: kid.clone(),
            kid,
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        };
        Ok(SigningKey {
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
            pair,
            jwk,
            rng: SystemRandom::new(),
        })
    }

    pub(super) fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub(super) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(super) fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`).
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DevError> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .map_err(|_| DevError::Crypto("RS256 signing failed"))?;
        Ok(signature)
    }
}

/// RFC 7468 textual encoding, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}
