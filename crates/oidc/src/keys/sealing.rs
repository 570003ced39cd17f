//! Sealing private keys at rest: AES-256-GCM under the master key, with the key id as associated
//! data so a sealed blob cannot be swapped onto another key's row.
//!
//! Format: `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;

use super::KeyError;

const FORMAT_V1: u8 = 1;
/// Length of a master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// The key that seals signing keys. Never printed: its `Debug` shows nothing of it.
pub struct MasterKey {
    key: LessSafeKey,
    /// For deriving other server keys (HKDF, RFC 5869), so one secret is configured.
    prk: aws_lc_rs::hkdf::Prk,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(KeyError::MalformedMasterKey(format!(
                "must be {MASTER_KEY_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::MalformedMasterKey("rejected by AES-256-GCM".into()))?;
        let prk = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"techpass-master-key")
            .extract(bytes);
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
            prk,
        })
    }

    /// Parses the base64 (standard or URL-safe, padded or not) text form of a master key.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(text).ok())
            .ok_or_else(|| KeyError::MalformedMasterKey("is not base64".into()))?;
        MasterKey::from_bytes(&bytes)
    }

    /// A fresh random master key in its text form (standard base64 of 32 bytes).
    pub fn generate_base64() -> Result<String, KeyError> {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Crypto("random source failed".into()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// An HMAC-SHA-256 key derived for one purpose (`info`); the same on every replica.
    pub fn derive_hmac_key(&self, info: &str) -> Result<aws_lc_rs::hmac::Key, KeyError> {
        let info = [info.as_bytes()];
        let okm = self
            .prk
            .expand(&info, aws_lc_rs::hmac::HMAC_SHA256)
            .map_err(|_| KeyError::Crypto("key derivation failed".into()))?;
        Ok(aws_lc_rs::hmac::Key::from(okm))
    }

    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("random source failed".into()))?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(kid)),
                &mut in_out,
            )
            .map_err(|_| KeyError::Crypto("sealing failed".into()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens what [`MasterKey::seal`] produced for the same `kid`. A different master key, another
    /// kid or any altered byte gives [`KeyError::WrongMasterKey`].
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let wrong = || KeyError::WrongMasterKey {
            kid: kid.to_string(),
        };
        let (version, rest) = sealed.split_first().ok_or_else(wrong)?;
        if *version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad(kid)), &mut in_out)
            .map_err(|_| wrong())?;
        Ok(plaintext.to_vec())
    }
}

fn aad(kid: &str) -> Vec<u8> {
    format!("techpass-signing-key:{kid}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap()
    }

    #[test]
    fn round_trip() {
        let k = key();
        let sealed = k.seal("kid-1", b"private key bytes").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"), "not in clear");
        assert_eq!(k.open("kid-1", &sealed).unwrap(), b"private key bytes");
    }

    #[test]
    fn wrong_master_key_is_refused() {
        let sealed = key().seal("kid-1", b"secret").unwrap();
        let err = key().open("kid-1", &sealed).unwrap_err();
        assert!(matches!(err, KeyError::WrongMasterKey { ref kid } if kid == "kid-1"));
    }

    #[test]
    fn blob_bound_to_its_kid_and_tamper_evident() {
        let k = key();
        let sealed = k.seal("kid-1", b"secret").unwrap();
        assert!(k.open("kid-2", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open("kid-1", &tampered).is_err());
        assert!(k.open("kid-1", &[]).is_err());
        assert!(k.open("kid-1", &sealed[..5]).is_err());
    }

    #[test]
    fn malformed_master_keys_are_rejected() {
        assert!(matches!(
            MasterKey::from_base64("not base64!"),
            Err(KeyError::MalformedMasterKey(_))
        ));
        assert!(matches!(
            MasterKey::from_base64("c2hvcnQ="),
            Err(KeyError::MalformedMasterKey(_))
        ));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        assert_eq!(format!("{:?}", key()), "MasterKey(..)");
    }
}
