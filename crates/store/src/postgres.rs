//! The PostgreSQL backend: the production database, shared by every replica.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{ConnectOptions, HealthStore, SigningKeyRecord, SigningKeyStore, Store, StoreError};

#[derive(Debug, Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    /// The app and tenant rows of the token path ([`crate::CachedRows`]), shared by clones.
    pub(crate) rows: std::sync::Arc<crate::rows::RowCache>,
}

impl PgStore {
    /// Whether a write of the token path (spend a code or refresh token and insert what
    /// replaces it) is one statement: PostgreSQL has data-modifying CTEs, so one round trip.
    pub(crate) const WRITES_IN_ONE_STATEMENT: bool = true;

    /// What the claim subqueries (outbox, webhook deliveries) add to lock the rows they pick:
    /// rows another replica is claiming are skipped rather than leased twice (the outer UPDATE
    /// would not re-run the subquery after waiting for them).
    pub(crate) const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";

    pub(crate) async fn connect(options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(&options.url)?.application_name("techpass");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(PgStore {
            pool,
            rows: std::sync::Arc::new(crate::rows::RowCache::new(options.row_cache_ttl)),
        })
    }

    /// PostgreSQL locks rows, not the database: write transactions need no turn
    /// (see `SqliteStore::write_turn`).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}

#[async_trait]
impl HealthStore for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl PgStore {
    /// Listens on the channel migration 0024's triggers notify at every change of an app, a
    /// secret or a tenant (by any replica or tool on this database).
    pub(crate) async fn follow_changes(&self) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(crate::rows::CHANNEL).await?;
        // Whatever changed before this (or while the last follower was down) is not trusted.
        self.rows.changed();
        loop {
            // `None`: the connection was lost (and is back): what was sent meanwhile is lost.
            let _ = listener.try_recv().await?;
            self.rows.changed();
        }
    }
}

#[async_trait]
impl SigningKeyStore for PgStore {
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let keys = sqlx::query_as::<_, SigningKeyRecord>(
            "SELECT kid, generation, algorithm, public_jwk, private_key_sealed, created_at, activates_at
             FROM signing_keys ORDER BY generation, algorithm",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(keys)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys
               (kid, generation, algorithm, public_jwk, private_key_sealed, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(key.generation)
        .bind(&key.algorithm)
        .bind(&key.public_jwk)
        .bind(&key.private_key_sealed)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM signing_keys WHERE kid = ANY($1)")
            .bind(kids)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }
}

crate::portable::portable_impls!(PgStore);
crate::rows::cached_rows_impls!(PgStore);
crate::portable::provider_impls!(PgStore);
crate::portable_accounts::account_impls!(PgStore);
crate::portable_tenancy::tenancy_impls!(PgStore);
crate::portable_access::access_impls!(PgStore);
crate::portable_pending::pending_impls!(PgStore);
crate::portable_outbox::outbox_impls!(PgStore);
crate::portable_reveal::reveal_impls!(PgStore);
crate::portable_upstream_links::upstream_link_impls!(PgStore);
crate::portable_ci::ci_issuer_impls!(PgStore);
crate::portable_device::device_impls!(PgStore);
crate::portable_resources::resource_impls!(PgStore);
