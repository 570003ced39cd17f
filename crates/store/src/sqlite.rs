//! The SQLite backend: an embedded database file for development and single-node installs.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{ConnectOptions, HealthStore, SigningKeyRecord, SigningKeyStore, Store, StoreError};

#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// The app and tenant rows of the token path ([`crate::CachedRows`]), shared by clones.
    pub(crate) rows: std::sync::Arc<crate::rows::RowCache>,
    /// Turns at the database's single write lock for the token path's transactions (see
    /// [`SqliteStore::write_turn`]), and the connection they run on, shared by clones.
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
    /// How the pool's connections are opened: the writer's opens the same way.
    connect: SqliteConnectOptions,
}

/// The connection of the token path's writes ([`SqliteStore::spend`]), outside the pool: each
/// write is one hop to its thread (the pool would add a hop to hand it back), and only one
/// runs at a time, as SQLite's single write lock allows. `None` until the first write, and
/// again after a write that failed or was cancelled half-way (closing the connection rolls
/// back whatever it had begun).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    connection: Option<sqlx::SqliteConnection>,
}

/// A write in flight on the writer's connection. Dropped before [`InFlight::done`] (the
/// request was cancelled mid-write, or the write failed), it closes the connection: SQLite then
/// rolls back a transaction the batch began, and the write lock is free again at once rather
/// than at the next write.
struct InFlight<'a> {
    writer: tokio::sync::MutexGuard<'a, Writer>,
    finished: bool,
}

impl InFlight<'_> {
    fn done(mut self) {
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.writer.connection = None;
        }
    }
}

impl SqliteStore {
    /// Whether a write of the token path is one statement: SQLite has no data-modifying CTEs,
    /// so a transaction (in process, under [`SqliteStore::write_turn`]).
    pub(crate) const WRITES_IN_ONE_STATEMENT: bool = false;

    /// What the claim subqueries (outbox, webhook deliveries) add to lock the rows they pick:
    /// nothing, as a SQLite write statement runs under the database write lock.
    pub(crate) const CLAIM_LOCK: &'static str = "";

    pub(crate) async fn connect(options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(&options.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.sqlite_synchronous {
                crate::SqliteSync::Full => SqliteSynchronous::Full,
                crate::SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // An SQLite connection is a file handle in this process, which does not go away
            // while idle: sqlx's ping before each statement would only be one more hop to
            // the connection's worker thread and back.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await?;
        Ok(SqliteStore {
            pool,
            rows: std::sync::Arc::new(crate::rows::RowCache::new(options.row_cache_ttl)),
            writer: std::sync::Arc::default(),
            connect,
        })
    }

    /// Waits for this process's turn to run a write transaction. SQLite has one write lock per
    /// file, and a transaction that finds it taken sleeps in the busy handler (1, 2, 5, 10 ms
    /// and longer) however soon it is released: under concurrent refreshes and code exchanges
    /// those sleeps, not the work, set the pace and the tail. Queued here instead, each
    /// transaction starts the moment the one before commits.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, Writer>> {
        Some(self.writer.lock().await)
    }

    /// Runs a write of the token path under the write turn, on the writer's connection, and
    /// returns its first row: the row it spent, if any. The query is the whole transaction
    /// (`BEGIN IMMEDIATE; …; COMMIT`), sent in one hop; each statement after the first writes
    /// only if the one before it did (`changes()`), so a write that spent nothing commits
    /// nothing. A statement that fails stops the batch before `COMMIT`: closing the connection
    /// then rolls back the rest (see [`InFlight`]).
    pub(crate) async fn spend<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<Option<sqlx::sqlite::SqliteRow>, StoreError> {
        use sqlx::ConnectOptions as _;
        let mut turn = InFlight {
            writer: self.writer.lock().await,
            finished: false,
        };
        let connection = match &mut turn.writer.connection {
            Some(connection) => connection,
            empty => empty.insert(self.connect.connect().await?),
        };
        // Every row, so that every statement runs (asking for a first row stops after it).
        let row = query.fetch_all(&mut *connection).await?.into_iter().next();
        turn.done();
        Ok(row)
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[async_trait]
impl HealthStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Polls the version row that migration 0024's triggers bump at every change of an app, a
    /// secret or a tenant (by any process on this file).
    pub(crate) async fn follow_changes(&self) -> Result<(), StoreError> {
        // Whatever changed before this (or while the last follower was down) is not trusted.
        self.rows.changed();
        let mut seen: Option<i64> = None;
        loop {
            let version = sqlx::query_scalar::<_, i64>(
                "SELECT version FROM row_versions WHERE name = 'apps'",
            )
            .fetch_one(&self.pool)
            .await?;
            if seen.is_some_and(|s| s != version) {
                self.rows.changed();
            }
            seen = Some(version);
            tokio::time::sleep(crate::rows::SQLITE_POLL).await;
        }
    }
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
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
             VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        let mut tx = self.pool.begin().await?;
        let mut deleted = 0;
        for kid in kids {
            deleted += sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
                .bind(kid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

crate::portable::portable_impls!(SqliteStore);
crate::rows::cached_rows_impls!(SqliteStore);
crate::portable::provider_impls!(SqliteStore);
crate::portable_accounts::account_impls!(SqliteStore);
crate::portable_tenancy::tenancy_impls!(SqliteStore);
crate::portable_access::access_impls!(SqliteStore);
crate::portable_pending::pending_impls!(SqliteStore);
crate::portable_outbox::outbox_impls!(SqliteStore);
crate::portable_reveal::reveal_impls!(SqliteStore);
crate::portable_upstream_links::upstream_link_impls!(SqliteStore);
crate::portable_ci::ci_issuer_impls!(SqliteStore);
crate::portable_device::device_impls!(SqliteStore);
crate::portable_resources::resource_impls!(SqliteStore);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `database.sqlite_synchronous` reaches every pooled connection: FULL (2) by default,
    /// NORMAL (1) when asked.
    #[tokio::test]
    async fn durability_is_the_configured_one() {
        let dir = std::env::temp_dir().join(format!("techpass-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (sync, expected) in [(crate::SqliteSync::Full, 2), (crate::SqliteSync::Normal, 1)] {
            let path = dir.join(format!("{sync:?}.db"));
            let mut options = ConnectOptions::new(format!("sqlite://{}", path.display()));
            options.sqlite_synchronous = sync;
            let store = SqliteStore::connect(&options).await.unwrap();
            let value: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(value, expected, "{sync:?}");
            store.pool.close().await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write of the token path cancelled after it was sent (the request went away while the
    /// writer's thread ran it) is all or nothing, and does not keep the database's write lock:
    /// writes through the pool go on at once (they would otherwise wait out the busy timeout
    /// and fail with "database is locked").
    #[tokio::test]
    async fn a_cancelled_write_of_the_token_path_leaves_the_database_writable() {
        use crate::conformance::grant;
        use crate::conformance_rows::refresh;
        use std::future::Future;
        use std::task::{Context, Poll};

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = db.store().await;
        store.insert_grant(&grant("g1", None, None)).await.unwrap();
        store
            .insert_refresh_token(&refresh("r0", "g1"))
            .await
            .unwrap();
        for round in 1..=8 {
            let (spent, next) = (format!("r{}", round - 1), format!("r{round}"));
            // Polled until the batch is on its way to the writer's thread, then dropped.
            let record = refresh(&next, "g1");
            let mut write = Box::pin(store.redeem_refresh_token(&spent, 20, Some(&record)));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            for _ in 0..round {
                if let Poll::Ready(done) = write.as_mut().poll(&mut cx) {
                    done.unwrap();
                    break;
                }
                tokio::task::yield_now().await;
            }
            drop(write);
            // A write through the pool, not through the writer's connection.
            store
                .insert_refresh_token(&refresh(&format!("other{round}"), "g1"))
                .await
                .unwrap();
            // All or nothing: spent with its successor stored, or neither.
            let was_spent = store
                .get_refresh_token(&spent)
                .await
                .unwrap()
                .unwrap()
                .used_at
                .is_some();
            let successor = store.get_refresh_token(&next).await.unwrap();
            assert_eq!(was_spent, successor.is_some(), "round {round}");
            if !was_spent {
                assert!(matches!(
                    store
                        .redeem_refresh_token(&spent, 21, Some(&refresh(&next, "g1")))
                        .await
                        .unwrap(),
                    crate::Redemption::Redeemed(_)
                ));
            }
        }
    }
}
