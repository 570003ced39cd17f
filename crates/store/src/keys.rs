//! Signing keys: the contract of their storage.

use async_trait::async_trait;

use crate::StoreError;

/// One signing key as stored. The private key is sealed by the caller; this crate never sees it
/// in the clear.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub generation: i64,
    /// JWS algorithm, e.g. `RS256`; generations count per algorithm.
    pub algorithm: String,
    /// The public key as a JWK (RFC 7517) JSON object.
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
}

#[async_trait]
pub trait SigningKeyStore {
    /// Every stored key, ordered by ascending generation (then algorithm).
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Adds a key. Fails with [`StoreError::Conflict`] and writes nothing when its kid, or its
    /// generation within its algorithm, is already taken: this is how two replicas rotating at once end with one new key.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;

    /// Deletes the keys with these kids (unknown kids are ignored); returns how many went.
    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError>;
}
