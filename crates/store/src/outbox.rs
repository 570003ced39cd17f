//! The email outbox: messages are stored in the same request that decides to send them, and a
//! background job on any replica delivers them. A message is claimed with a lease before it is
//! sent, so two replicas never send the same message at once.

use async_trait::async_trait;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailRecord {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// What caused it (`invitation`, `invitation.accepted`, `tenant.approved`, …), for the log.
    pub kind: String,
    pub created_at: i64,
    /// Not to be tried before this (a lease while being sent, a back-off after a failure).
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The `next_attempt_at` of a message given up ([`OutboxStore::mark_email_failed`] with `None`):
/// later than any `now`, so no claim returns it again.
pub const GIVEN_UP: i64 = i64::MAX;

#[async_trait]
pub trait OutboxStore {
    async fn enqueue_email(&self, email: &EmailRecord) -> Result<(), StoreError>;

    /// Up to `limit` unsent messages due at `now` (`next_attempt_at` ≤ `now`), oldest first,
    /// each leased until `lease_until` (its `next_attempt_at` set to it, `attempts` + 1) in the
    /// same statement: concurrent callers never get the same message.
    async fn claim_emails(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<EmailRecord>, StoreError>;

    /// Marks a message sent.
    async fn mark_email_sent(&self, id: &str, at: i64) -> Result<(), StoreError>;

    /// Records a failed attempt; the message is tried again from `next_attempt_at` (or never,
    /// when `None`: given up, stored as `next_attempt_at` = [`GIVEN_UP`]).
    async fn mark_email_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Messages newest first (the development outbox page), optionally to one recipient.
    async fn list_emails(
        &self,
        recipient: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<EmailRecord>, StoreError>;
}

/// A lifecycle notice already sent: one per user, kind and due date, so every replica running
/// the lifecycle job sends each reminder once.
#[async_trait]
pub trait NoticeLog {
    /// Records that the notice is being sent. False, writing nothing, if it was recorded before.
    async fn record_notice(
        &self,
        subject: &str,
        kind: &str,
        due_at: i64,
        at: i64,
    ) -> Result<bool, StoreError>;
}
