//! The audit log: append-only security events.

use async_trait::async_trait;

use crate::StoreError;

/// One security event. `details` is a JSON object with event-specific fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct AuditRecord {
    /// Assigned by the store; ignored on append.
    pub id: i64,
    pub at: i64,
    /// What happened, e.g. `signin`, `signout`, `key.rotated`.
    pub event: String,
    /// `success` or `denied` (or `failure`).
    pub outcome: String,
    /// A short stable code for denials, e.g. `no_mfa`.
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub upstream: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    /// The reference shown to the person on a refusal page, so the event can be found from it.
    pub reference: Option<String>,
    /// The email of the person concerned when known, also when no account exists (refused sign-ins).
    pub subject_email: Option<String>,
}

/// Which events to list. Every `Some` field must match (exact comparison); `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<String>,
    pub actor: Option<String>,
    pub reference: Option<String>,
    pub subject_email: Option<String>,
    /// Events at or after this time (inclusive).
    pub since: Option<i64>,
    /// Events before this time (exclusive).
    pub until: Option<i64>,
    /// Only events with an id below this (for paging backwards).
    pub before_id: Option<i64>,
    /// Keyset cursor `(at, id)` of the last event of the previous page: only events strictly
    /// older in the log's order (`at` descending, then `id` descending).
    pub after: Option<(i64, i64)>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditStore {
    /// Appends an event; returns its id. Events are never updated or deleted through this API.
    async fn append_audit(&self, event: &AuditRecord) -> Result<i64, StoreError>;

    /// Events matching `filter`, newest first (`at` descending, then `id` descending), at most
    /// `filter.limit` (capped at 1000). Passing the `(at, id)` of a page's last event as
    /// `filter.after` returns the next page with no duplicates or gaps over the whole log.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
}
