//! The JWS algorithms TechPass signs with (RFC 7518 §3, RFC 8037 §3.1). Each has its own series
//! of keys, rotated on the same schedule; apps choose theirs per token kind and the platform
//! default stays RS256, the one every OpenID Connect relying party must accept (Core §15.1).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over an RSA-2048 key.
    RS256,
    /// ECDSA over P-256 with SHA-256 (a 64-byte `r || s` signature).
    ES256,
    /// Ed25519 (RFC 8037), named `EdDSA` in JWS headers.
    EdDSA,
}

impl SigningAlg {
    /// Every algorithm, in the order discovery lists them (the default first).
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// What an app that chose nothing gets.
    pub const DEFAULT: SigningAlg = SigningAlg::RS256;

    /// The JWS `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// The kind and size of this algorithm's keys, for people (the keys page, `keys list`).
    pub fn key_type(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RSA 2048-bit",
            SigningAlg::ES256 => "EC P-256",
            SigningAlg::EdDSA => "Ed25519",
        }
    }

    /// The `alg` values of [`Self::ALL`], for discovery and error messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|a| a.as_str()).collect()
    }

    /// OpenID Connect Core §3.1.3.6 / §3.3.2.11: `at_hash` and `c_hash` are the left half of the
    /// hash the JWS algorithm uses. Ed25519 hashes with SHA-512 (as the `openidconnect` crate
    /// and openid-client both compute it).
    pub fn left_half_hash(self, input: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            SigningAlg::RS256 | SigningAlg::ES256 => &aws_lc_rs::digest::SHA256,
            SigningAlg::EdDSA => &aws_lc_rs::digest::SHA512,
        };
        let digest = aws_lc_rs::digest::digest(algorithm, input);
        let bytes = digest.as_ref();
        bytes[..bytes.len() / 2].to_vec()
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that names no algorithm TechPass signs with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm {given:?}: use one of {}", SigningAlg::names().join(", "))]
pub struct UnsupportedAlg {
    pub given: String,
}

impl FromStr for SigningAlg {
    type Err = UnsupportedAlg;

    /// Exact, case-sensitive JWA names (RFC 7515 §4.1.1: `alg` is case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnsupportedAlg {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlg>(), Ok(alg));
        }
        for bad in [
            "rs256", "es256", "EDDSA", "HS256", "none", "", "ES384", "PS256",
        ] {
            let err = bad.parse::<SigningAlg>().unwrap_err();
            assert_eq!(err.given, bad);
            assert!(err.to_string().contains("RS256, ES256, EdDSA"), "{err}");
        }
        assert_eq!(SigningAlg::DEFAULT, SigningAlg::RS256);
    }

    #[test]
    fn hash_halves_follow_the_algorithm() {
        assert_eq!(SigningAlg::RS256.left_half_hash(b"x").len(), 16);
        assert_eq!(SigningAlg::ES256.left_half_hash(b"x").len(), 16);
        assert_eq!(SigningAlg::EdDSA.left_half_hash(b"x").len(), 32);
        let sha512 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"x");
        assert_eq!(
            SigningAlg::EdDSA.left_half_hash(b"x"),
            sha512.as_ref()[..32]
        );
    }
}
