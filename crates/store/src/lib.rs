//! Storage for TechPass: one trait per concern, each method's contract in its doc, and one
//! implementation per backend (PostgreSQL for production, SQLite embedded for a laptop).
//!
//! Owns SQL, migrations and connection pools. Nothing of sqlx (types, rows, errors) leaks past
//! this crate: callers see domain-shaped records and [`StoreError`]. Every method has a test in
//! the shared conformance suite, which runs on both backends.

mod audit;
mod ci;
mod column;
mod device;
mod error;
mod keys;
mod outbox;
mod portable;
mod portable_access;
mod portable_accounts;
mod portable_ci;
mod portable_device;
mod portable_outbox;
mod portable_pending;
mod portable_resources;
mod portable_reveal;
mod portable_tenancy;
mod portable_upstream_links;
mod postgres;
mod provider;
mod resources;
mod reveal;
mod rows;
mod signin;
mod sqlite;
mod sqlite_inline;
mod sqlite_turns;
mod tenancy;
mod upstream_links;
mod webhooks;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_access;
#[cfg(test)]
mod conformance_accounts;
#[cfg(test)]
mod conformance_audit;
#[cfg(test)]
mod conformance_ci;
#[cfg(test)]
mod conformance_columns;
#[cfg(test)]
mod conformance_device;
#[cfg(test)]
mod conformance_outbox;
#[cfg(test)]
mod conformance_pending;
#[cfg(test)]
mod conformance_resources;
#[cfg(test)]
mod conformance_reveal;
#[cfg(test)]
mod conformance_rows;
#[cfg(test)]
mod conformance_tenancy;
#[cfg(test)]
mod conformance_upgrades;
#[cfg(test)]
mod conformance_upstream_links;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use audit::{AuditFilter, AuditRecord, AuditStore};
pub use ci::{CiIssuerRecord, CiIssuerStore};
pub use device::{DeviceApproval, DeviceCodeRecord, DeviceCodeStore};
pub use error::StoreError;
pub use keys::{SigningKeyRecord, SigningKeyStore};
pub use outbox::{EmailRecord, NoticeLog, OutboxStore, GIVEN_UP};
pub use provider::{
    AssertionLog, AuthCodeRecord, ClientRecord, ClientSecretRecord, ClientStore, GrantRecord,
    GrantStore, Redemption, RefreshFamily, RefreshTokenRecord, UserRecord, UserStore,
};
pub use resources::{ApiResourceRecord, ResourceGrantRecord, ResourceStore};
pub use reveal::{RevealRecord, RevealStore};
pub use rows::CachedRows;
pub use signin::{LoginAttemptRecord, LoginAttemptStore, SessionRecord, SessionStore};
pub use tenancy::{
    AcceptOutcome, Acceptance, AccessHolder, AccessStore, AssignmentRecord, ConsentRecord,
    EndedMembership, GroupRecord, InvitationRecord, InvitationStore, MembershipRecord,
    PendingGrantRecord, PendingGrantStore, RoleAssignmentRecord, TenantAdminRecord, TenantRecord,
    TenantStore, GRANT_APP_ACCESS, GRANT_PLATFORM_ADMIN, GRANT_TENANT_ADMIN, PRINCIPAL_GROUP,
    PRINCIPAL_USER,
};
pub use upstream_links::{UpstreamLinkRecord, UpstreamLinkStore};
pub use webhooks::{DeliveryRecord, WebhookRecord, WebhookStore};

/// Liveness of the database, for readiness probes.
#[async_trait]
pub trait HealthStore {
    /// Succeeds only after a round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the application stores, as one object-safe handle.
pub trait Store:
    SigningKeyStore
    + LoginAttemptStore
    + SessionStore
    + AuditStore
    + UserStore
    + ClientStore
    + AssertionLog
    + GrantStore
    + DeviceCodeStore
    + TenantStore
    + InvitationStore
    + AccessStore
    + PendingGrantStore
    + ResourceStore
    + OutboxStore
    + NoticeLog
    + WebhookStore
    + RevealStore
    + UpstreamLinkStore
    + CiIssuerStore
    + CachedRows
    + HealthStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Which backend this is ("sqlite" or "postgres"), for logs and tests.
    fn backend(&self) -> &'static str;
}

/// How to connect; the URL's scheme picks the backend.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing (and readiness reports
    /// the database as down).
    pub acquire_timeout: Duration,
    /// SQLite only: whether every commit waits for the disk (`FULL`, the default) or only
    /// checkpoints do (`NORMAL`). See [`SqliteSync`].
    pub sqlite_synchronous: SqliteSync,
    /// How long a cached app or tenant row may be served at most ([`CachedRows`]); zero turns
    /// the cache off. 1 s by default.
    pub row_cache_ttl: Duration,
    /// PostgreSQL only: a pooled connection idle at least this long is pinged before it is
    /// handed out ([`PING_IDLE_AFTER`] by default).
    pub ping_idle_after: Duration,
}

/// SQLite's `synchronous` setting in WAL mode. `Full`: a commit returns once it is on disk, so
/// nothing acknowledged is lost on power loss. `Normal`: commits since the last checkpoint can
/// be lost on power loss or an OS crash (never on a process crash, and the file is never
/// corrupted) — for an identity provider that means sign-ins, registrations and refresh-token
/// rotations that clients already received can roll back, so a rotated refresh token works
/// again and its successor is unknown. Hence `Full` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    #[default]
    Full,
    Normal,
}

/// A pooled PostgreSQL connection idle this long is pinged before it is handed out, so one that
/// the server or the network closed meanwhile is replaced instead of failing a request. One in
/// steady use is not: sqlx's default, a ping before every statement, doubles the round trips of
/// the token path (HikariCP likewise skips its check for connections used in the last 500 ms).
/// A connection that dies in use fails the statement it was running and is not reused: sqlx
/// tests each connection as it goes back to the pool.
pub const PING_IDLE_AFTER: Duration = Duration::from_millis(500);

/// The default and longest staleness of a cached app or tenant row.
pub const ROW_CACHE_TTL: Duration = Duration::from_secs(1);

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous: SqliteSync::Full,
            row_cache_ttl: ROW_CACHE_TTL,
            ping_idle_after: PING_IDLE_AFTER,
        }
    }
}

/// The backend a database URL names, or `None` for an unsupported scheme.
pub fn backend_of(url: &str) -> Option<&'static str> {
    if url.starts_with("sqlite:") {
        Some("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some("postgres")
    } else {
        None
    }
}

/// Opens a pool for the URL (`sqlite:` or `postgres://`). A SQLite file is created if missing.
/// Does not migrate: call [`migrate`] (idempotent, safe from several replicas at once).
pub async fn connect(options: &ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    match backend_of(&options.url) {
        Some("sqlite") => Ok(Arc::new(sqlite::SqliteStore::connect(options).await?)),
        Some(_) => Ok(Arc::new(postgres::PgStore::connect(options).await?)),
        None => Err(StoreError::Backend(
            "database_url must start with sqlite: or postgres://".into(),
        )),
    }
}

/// Brings the schema up to date. Applying it twice is a no-op; on PostgreSQL concurrent callers
/// serialise on an advisory lock.
pub async fn migrate(options: &ConnectOptions) -> Result<(), StoreError> {
    match backend_of(&options.url) {
        Some("sqlite") => sqlite::SqliteStore::connect(options).await?.migrate().await,
        Some(_) => postgres::PgStore::connect(options).await?.migrate().await,
        None => Err(StoreError::Backend(
            "database_url must start with sqlite: or postgres://".into(),
        )),
    }
}
