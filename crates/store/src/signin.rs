//! Sign-in state: login attempts that span the redirect to an upstream, and SSO sessions.
//! Both are looked up by a keyed hash computed by the caller; raw values never reach storage.

use async_trait::async_trait;

use crate::StoreError;

/// A sign-in in progress at an upstream.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginAttemptRecord {
    pub state_hash: String,
    /// Keyed hash of the browser-binding cookie that started the attempt.
    pub browser_hash: String,
    pub upstream: String,
    /// Local path to return to after sign-in.
    pub return_to: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait LoginAttemptStore {
    /// Records an attempt. [`StoreError::Conflict`] if the state hash exists.
    async fn insert_login_attempt(&self, attempt: &LoginAttemptRecord) -> Result<(), StoreError>;

    /// Removes and returns the attempt in one step, so a state is redeemed at most once even
    /// when two replicas receive the same callback. `None` if unknown or already taken. Expiry
    /// is the caller's to check.
    async fn take_login_attempt(
        &self,
        state_hash: &str,
    ) -> Result<Option<LoginAttemptRecord>, StoreError>;

    /// Deletes attempts that expired before `now`; returns how many.
    async fn delete_expired_login_attempts(&self, now: i64) -> Result<u64, StoreError>;
}

/// An SSO session. `identity` is the verified upstream identity as JSON (opaque here).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: String,
    /// The TechPass user (`sub`) the session belongs to.
    pub user_id: String,
    pub upstream: String,
    pub tenant_id: String,
    pub object_id: String,
    pub identity: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Absolute end of the session.
    pub expires_at: i64,
    /// The browser's User-Agent at sign-in (at most 256 characters).
    pub user_agent: Option<String>,
    /// The address the browser signed in from.
    pub address: Option<String>,
}

#[async_trait]
pub trait SessionStore {
    /// [`StoreError::Conflict`] if the id hash exists.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session, if it exists (expiry is the caller's to check).
    async fn get_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity; never moves `last_seen_at` backwards. False if no such session.
    async fn touch_session(&self, id_hash: &str, last_seen_at: i64) -> Result<bool, StoreError>;

    /// Ends one session. False if it did not exist.
    async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;

    /// Every session of a TechPass user.
    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError>;

    /// Ends every session of the person (`tenant_id`, `object_id`); returns how many.
    async fn delete_sessions_of(&self, tenant_id: &str, object_id: &str)
        -> Result<u64, StoreError>;

    /// Deletes sessions whose absolute end is before `now`, or idle since before `idle_before`.
    async fn delete_expired_sessions(&self, now: i64, idle_before: i64) -> Result<u64, StoreError>;
}
