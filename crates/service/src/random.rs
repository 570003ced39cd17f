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
    /// A time-ordered (v7) UUID: identifiers of the rows the token endpoint creates (grants).
    /// Each new one sorts after the last, so its inserts land on the last page of the primary
    /// key and of the indexes that hold it (`refresh_tokens.grant_id`), not on a random page:
    /// fewer pages written per commit. It tells when it was made, to the millisecond, and is
    /// less random than a v4 UUID (a counter seeded at random each millisecond, then 32 random
    /// bits): a grant id is no secret (it is the access token's `gid`) and opens nothing alone.
    fn ordered_uuid(&self) -> uuid::Uuid;
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

    fn ordered_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// A predictable sequence for tests: the n-th value is derived from n, and every value has the
/// shape of the real one (43 base64url characters; a version-4 or version-7 UUID).
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

    fn ordered_uuid(&self) -> uuid::Uuid {
        let n = self.next();
        let mut rest = [0u8; 10];
        rest[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(n, &rest).into_uuid()
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
        let ordered = a.ordered_uuid();
        assert_eq!(ordered.get_version_num(), 7);
        assert!(a.ordered_uuid().to_string() > ordered.to_string());
    }

    #[test]
    fn ordered_ids_sort_in_the_order_they_were_made() {
        // As the database's text index sees them: each grant id after the one before, also
        // when many are made within one millisecond.
        let ids: Vec<String> = (0..2000)
            .map(|_| OsRandom.ordered_uuid().to_string())
            .collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ids
            .iter()
            .all(|id| uuid::Uuid::parse_str(id).unwrap().get_version_num() == 7));
    }
}
