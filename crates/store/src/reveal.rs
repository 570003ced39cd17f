//! Things a page shows once: stored sealed, taken (read and deleted) once by their owner.

use async_trait::async_trait;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevealRecord {
    pub id_hash: String,
    pub owner: String,
    /// Sealed by the caller; the store never sees the plaintext.
    pub sealed: String,
    pub expires_at: i64,
}

#[async_trait]
pub trait RevealStore {
    /// Stores a reveal, and forgets every reveal past its expiry at `now`.
    async fn put_reveal(&self, reveal: &RevealRecord, now: i64) -> Result<(), StoreError>;

    /// Takes the reveal: returned and deleted in one statement if `owner` owns it and it has not
    /// expired at `now`, so of concurrent takers exactly one gets it. Anyone else, a second take
    /// or a late one gets `None`, and a wrong owner leaves it in place.
    async fn take_reveal(
        &self,
        id_hash: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<RevealRecord>, StoreError>;
}
