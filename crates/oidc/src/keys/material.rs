//! Key material per algorithm: generation, the public JWK and its RFC 7638 thumbprint (the kid),
//! and the parsed private key that signs.
//!
//! RSA keys: the `rsa` crate generates and serialises them only, since its private-key
//! operations carry an unfixed timing advisory (RUSTSEC-2023-0071); signing goes through
//! aws-lc-rs. P-256 and Ed25519 keys are generated, serialised and used by aws-lc-rs alone.
//! Every key is parsed once and kept in memory.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;

use super::{KeyError, SigningAlg};

/// Modulus size of generated RSA keys.
pub const RSA_BITS: usize = 2048;
/// Length of a P-256 coordinate in bytes.
const P256_COORDINATE: usize = 32;

/// A public key as published in the JWKS (RFC 7517 §4): RSA (`n`, `e`, RFC 7518 §6.3.1), EC
/// (`crv`, `x`, `y`, §6.2.1) or OKP (`crv`, `x`, RFC 8037 §2).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// The public members a key is identified by, without `alg`, `use` and `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicParts {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
    Okp { x: String },
}

impl PublicParts {
    /// The JWK for `alg`, its kid the RFC 7638 thumbprint (so it names the key material).
    fn into_jwk(self, alg: SigningAlg) -> PublicJwk {
        let kid = self.thumbprint();
        let mut jwk = PublicJwk {
            kty: String::new(),
            use_: "sig".into(),
            alg: alg.as_str().into(),
            kid,
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
        };
        match self {
            PublicParts::Rsa { n, e } => {
                jwk.kty = "RSA".into();
                jwk.n = Some(n);
                jwk.e = Some(e);
            }
            PublicParts::Ec { x, y } => {
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(x);
                jwk.y = Some(y);
            }
            PublicParts::Okp { x } => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(x);
            }
        }
        jwk
    }

    /// RFC 7638 §3 (and RFC 8037 §2 for OKP): SHA-256 over the required members in
    /// lexicographic order, no whitespace.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicParts::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            PublicParts::Ec { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            PublicParts::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Whether `jwk` publishes exactly these parts (and nothing of another key type).
    fn matches(&self, jwk: &PublicJwk) -> bool {
        let same = |field: &Option<String>, value: &str| field.as_deref() == Some(value);
        match self {
            PublicParts::Rsa { n, e } => jwk.kty == "RSA" && same(&jwk.n, n) && same(&jwk.e, e),
            PublicParts::Ec { x, y } => {
                jwk.kty == "EC" && same(&jwk.crv, "P-256") && same(&jwk.x, x) && same(&jwk.y, y)
            }
            PublicParts::Okp { x } => {
                jwk.kty == "OKP" && same(&jwk.crv, "Ed25519") && same(&jwk.x, x)
            }
        }
    }
}

/// A freshly generated key: its PKCS#8 DER (to be sealed) and its public JWK.
pub struct GeneratedKey {
    pub pkcs8_der: Vec<u8>,
    pub jwk: PublicJwk,
}

/// Generates a key for `alg`: RSA-2048, P-256 or Ed25519.
pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyError> {
    let pkcs8_der = match alg {
        SigningAlg::RS256 => {
            let mut rng = rsa::rand_core::OsRng;
            let private = rsa::RsaPrivateKey::new(&mut rng, RSA_BITS)
                .map_err(|e| KeyError::Crypto(format!("RSA key generation failed: {e}")))?;
            let der = private
                .to_pkcs8_der()
                .map_err(|e| KeyError::Crypto(format!("PKCS#8 encoding failed: {e}")))?;
            debug_assert_eq!(private.size() * 8, RSA_BITS);
            der.as_bytes().to_vec()
        }
        SigningAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto("P-256 key generation failed".into()))?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| KeyError::Crypto("Ed25519 key generation failed".into()))?
            .as_ref()
            .to_vec(),
    };
    // The JWK is derived from the parsed key, the very thing that will sign.
    let signer = Signer::from_pkcs8(alg, &pkcs8_der)?;
    Ok(GeneratedKey {
        jwk: signer.public_parts().into_jwk(alg),
        pkcs8_der,
    })
}

enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key ready to sign: parsed once into aws-lc-rs.
pub struct Signer {
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// Parses the PKCS#8 DER of a key for `alg`; a key of another type is refused.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let unusable = |e: aws_lc_rs::error::KeyRejected| {
            KeyError::Crypto(format!("unusable {alg} private key: {e}"))
        };
        let pair = match alg {
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(unusable)?;
                if pair.public_modulus_len() * 8 < RSA_BITS {
                    return Err(KeyError::Crypto("RSA key shorter than 2048 bits".into()));
                }
                Pair::Rsa(pair)
            }
            SigningAlg::ES256 => Pair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(unusable)?,
            ),
            SigningAlg::EdDSA => Pair::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(unusable)?),
        };
        Ok(Signer {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256; ES256: the 64-byte `r || s` (RFC 7518 §3.4);
    /// EdDSA: the 64-byte Ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Crypto("signing failed".into());
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            Pair::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Verifies a signature of this key's algorithm with the public half.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let outcome = match &self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                aws_lc_rs::signature::RsaPublicKeyComponents {
                    n: public.modulus().big_endian_without_leading_zero(),
                    e: public.exponent().big_endian_without_leading_zero(),
                }
                .verify(
                    &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            Pair::Ecdsa(pair) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key())
                    .verify(message, signature)
            }
            Pair::Ed25519(pair) => {
                UnparsedPublicKey::new(&ED25519, pair.public_key()).verify(message, signature)
            }
        };
        outcome.map_err(|_| KeyError::InvalidToken("bad signature".into()))
    }

    fn public_parts(&self) -> PublicParts {
        match &self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                PublicParts::Rsa {
                    n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                }
            }
            Pair::Ecdsa(pair) => {
                // SEC 1 uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(P256_COORDINATE.min(point.len().saturating_sub(1)));
                PublicParts::Ec {
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: URL_SAFE_NO_PAD.encode(y),
                }
            }
            Pair::Ed25519(pair) => PublicParts::Okp {
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            },
        }
    }

    /// Whether this private key belongs to `jwk`, which must also name its kid as the thumbprint
    /// (guards against a row whose columns disagree).
    pub fn matches(&self, jwk: &PublicJwk) -> bool {
        let parts = self.public_parts();
        parts.matches(jwk) && parts.thumbprint() == jwk.kid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_verify_and_have_thumbprint_kids() {
        for (alg, kty, signature_len) in [
            (SigningAlg::RS256, "RSA", 256),
            (SigningAlg::ES256, "EC", 64),
            (SigningAlg::EdDSA, "OKP", 64),
        ] {
            let key = generate(alg).unwrap();
            assert_eq!(key.jwk.kty, kty);
            assert_eq!(key.jwk.alg, alg.as_str());
            assert_eq!(key.jwk.kid.len(), 43, "base64url of 32 bytes");
            let signer = Signer::from_pkcs8(alg, &key.pkcs8_der).unwrap();
            assert!(signer.matches(&key.jwk));
            let signature = signer.sign(b"hello").unwrap();
            assert_eq!(signature.len(), signature_len, "{alg}");
            signer.verify(b"hello", &signature).unwrap();
            assert!(signer.verify(b"hellO", &signature).is_err());
            let other = generate(alg).unwrap();
            assert!(!signer.matches(&other.jwk));
            // A key of one algorithm is not accepted as another's.
            for wrong in SigningAlg::ALL.into_iter().filter(|a| *a != alg) {
                assert!(
                    Signer::from_pkcs8(wrong, &key.pkcs8_der).is_err(),
                    "{alg} as {wrong}"
                );
            }
        }
        let ec = generate(SigningAlg::ES256).unwrap().jwk;
        assert_eq!(ec.crv.as_deref(), Some("P-256"));
        assert_eq!(URL_SAFE_NO_PAD.decode(ec.x.unwrap()).unwrap().len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.decode(ec.y.unwrap()).unwrap().len(), 32);
        assert_eq!(
            generate(SigningAlg::RS256).unwrap().jwk.e.as_deref(),
            Some("AQAB")
        );
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let parts = PublicParts::Rsa {
            n: n.into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            parts.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc8037_example_thumbprint() {
        // RFC 8037 §A.3.
        let parts = PublicParts::Okp {
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        };
        assert_eq!(
            parts.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
