//! Random values handed out (session ids, states, codes, tokens) and the keyed hashes under
//! which they are stored (RFC 6819 §5.1.4.1.3: no cleartext storage). HMAC-SHA-256 under a key
//! derived from the master key: a stolen database cannot even test guesses offline, and a
//! lookup costs microseconds, unlike a password hash, which buys nothing for 256-bit randoms.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::keys::{KeyError, MasterKey};

/// Bytes of entropy in every random value (RFC 6749 §10.10 asks for at most 2^-128 guessing
/// probability; 256 bits exceed the 2^-160 of RFC 6819 §5.1.4.2.2).
pub const RANDOM_BYTES: usize = 32;

#[derive(Clone)]
pub struct Secrets {
    key: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    pub fn derive(master: &MasterKey) -> Result<Self, KeyError> {
        Ok(Secrets {
            key: master.derive_hmac_key("techpass-keyed-hash-v1")?,
        })
    }

    /// A fresh random value: 256 bits, base64url without padding (43 characters).
    pub fn random_token() -> Result<String, KeyError> {
        let mut bytes = [0u8; RANDOM_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Crypto("random source failed".into()))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The keyed hash of `value` for `purpose` (purposes never collide: a session id's hash can
    /// never be presented as a code's).
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, value).as_ref())
    }

    /// Whether `value` hashes to `expected` for `purpose`, in constant time.
    pub fn verify(&self, purpose: &str, value: &str, expected: &str) -> bool {
        let Ok(expected) = URL_SAFE_NO_PAD.decode(expected) else {
            return false;
        };
        let mut message = Vec::with_capacity(purpose.len() + 1 + value.len());
        message.extend_from_slice(purpose.as_bytes());
        message.push(0);
        message.extend_from_slice(value.as_bytes());
        hmac::verify(&self.key, &message, &expected).is_ok()
    }

    fn mac(&self, purpose: &str, value: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        ctx.sign()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(master: &str) -> Secrets {
        Secrets::derive(&MasterKey::from_base64(master).unwrap()).unwrap()
    }

    #[test]
    fn keyed_hashes_are_stable_per_master_key_and_purpose() {
        let master = MasterKey::generate_base64().unwrap();
        let (a, b) = (secrets(&master), secrets(&master));
        assert_eq!(
            a.keyed_hash("session", "x"),
            b.keyed_hash("session", "x"),
            "every replica agrees"
        );
        assert_ne!(a.keyed_hash("session", "x"), a.keyed_hash("code", "x"));
        assert_ne!(
            a.keyed_hash("a", "bc"),
            a.keyed_hash("ab", "c"),
            "purpose is delimited"
        );
        let other = secrets(&MasterKey::generate_base64().unwrap());
        assert_ne!(
            a.keyed_hash("session", "x"),
            other.keyed_hash("session", "x")
        );
        let h = a.keyed_hash("session", "x");
        assert!(a.verify("session", "x", &h));
        assert!(!a.verify("session", "y", &h));
        assert!(!a.verify("code", "x", &h));
        assert!(!a.verify("session", "x", "not base64!"));
    }

    #[test]
    fn random_tokens_have_256_bits() {
        let t = Secrets::random_token().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, Secrets::random_token().unwrap());
    }
}
