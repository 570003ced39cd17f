//! Randomness as an input, like the clock: production draws from the operating system, tests
//! fix the sequence so that what a service generates can be predicted and asserted.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use techpass_oidc::{KeyError, Secrets};

/// A source of the random values services hand out.
pub trait Random: Send + Sync + Debug {
    /// 256 random bits as 43 characters of base64url: codes, tokens, cookies, secrets.
    fn token(&self) -> Result<String, KeyError>;
    /// A random (v4) UUID: identifiers of rows.
    fn uuid(&self) -> uuid::Uuid;
}

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn token(&self) -> Result<String, KeyError> {
        Secrets::random_token()
    }

    fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }
}

/// A predictable sequence for tests: the n-th value is derived from n, and every value has the
/// shape of the real one (43 base64url characters; a version-4 UUID).
#[derive(Debug, Default)]
pub struct SeqRandom(AtomicU64);

impl SeqRandom {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Random for SeqRandom {
    fn token(&self) -> Result<String, KeyError> {
        // 32 bytes encode to 43 base64url characters, as a real token does.
        Ok(format!("{:0>43}", format!("seq{}", self.next())))
    }

    fn uuid(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(u128::from(self.next()).to_be_bytes()).into_uuid()
    }
}

/// `prefix` followed by a random UUID in simple form (`tnt_…`, `inv_…`).
pub fn new_id(random: &dyn Random, prefix: &str) -> String {
    format!("{prefix}{}", random.uuid().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_fixed_and_shaped_like_the_real_thing() {
        let (a, b) = (SeqRandom::default(), SeqRandom::default());
        let first = a.token().unwrap();
        assert_eq!(first, b.token().unwrap(), "the same sequence every time");
        assert_eq!(first.len(), 43);
        assert_ne!(first, a.token().unwrap(), "each value differs");
        let id = a.uuid();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(new_id(&b, "tnt_").len(), 4 + 32);
        let real = OsRandom.token().unwrap();
        assert_eq!(real.len(), 43);
        assert_ne!(real, OsRandom.token().unwrap());
    }
}
