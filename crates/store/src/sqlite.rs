//! The SQLite backend: an embedded database file for development and single-node installs.

use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::OptionalExtension as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::sqlite_inline::{DatabaseFile, InlineReads};
use crate::sqlite_turns::Writer;
use crate::{ConnectOptions, HealthStore, SigningKeyRecord, SigningKeyStore, Store, StoreError};

#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    /// sqlx's pool; its writes take turns with the token path's ([`crate::sqlite_turns`]).
    pool: crate::sqlite_turns::TurnPool,
    /// The app and tenant rows of the token path ([`crate::CachedRows`]), shared by clones.
    pub(crate) rows: std::sync::Arc<crate::rows::RowCache>,
    /// Turns at the database's single write lock, for the token path's writes and every other
    /// write of this process ([`crate::sqlite_turns`]), and the connection the token path's
    /// writes run on, shared by clones.
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
    /// Wakes the committer ([`SqliteStore::spend`]): a write is waiting for its group's commit.
    wake_committer: std::sync::Arc<tokio::sync::Notify>,
    /// The committer's task: started by the first write, on the runtime that runs it (again
    /// if that runtime has gone), and stopped when the last clone of the store goes.
    committer: std::sync::Arc<std::sync::Mutex<Option<Committer>>>,
    /// The database file, which the writer's connection opens as the pool opens its own.
    file: DatabaseFile,
    /// The token path's reads on the calling thread ([`crate::sqlite_inline`]).
    inline: std::sync::Arc<InlineReads>,
}

/// The task that commits the writer's transaction when asked ([`SqliteStore::spend`]).
#[derive(Debug)]
struct Committer(tokio::task::AbortHandle);

impl Committer {
    fn start(
        writer: std::sync::Weak<tokio::sync::Mutex<Writer>>,
        soon: std::sync::Arc<tokio::sync::Notify>,
    ) -> Committer {
        let task = tokio::spawn(async move {
            loop {
                soon.notified().await;
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                let turn = writer.lock_owned().await;
                drop(crate::sqlite_turns::commit(turn).await);
            }
        });
        Committer(task.abort_handle())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqliteStore {
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
        let file = match DatabaseFile::of(connect.get_filename(), options.sqlite_synchronous) {
            Ok(file) => file,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        let writer = std::sync::Arc::default();
        let inline = std::sync::Arc::new(InlineReads::new(
            file.clone(),
            options.max_connections as usize,
        ));
        Ok(SqliteStore {
            pool: crate::sqlite_turns::TurnPool::new(pool, std::sync::Arc::clone(&writer)),
            rows: std::sync::Arc::new(crate::rows::RowCache::new(options.row_cache_ttl)),
            writer,
            wake_committer: std::sync::Arc::default(),
            committer: std::sync::Arc::default(),
            file,
            inline,
        })
    }

    /// [`crate::GrantStore::get_refresh_token_with_grant`]'s read (`sql`), on this thread
    /// ([`crate::sqlite_inline`]).
    pub(crate) async fn read_refresh_family(
        &self,
        sql: &str,
        token_hash: &str,
    ) -> Result<Option<crate::provider::RefreshTokenWithGrant>, StoreError> {
        self.inline.refresh_family(sql, token_hash)
    }

    /// [`crate::GrantStore::get_code_with_user`]'s read (`sql`), on this thread
    /// ([`crate::sqlite_inline`]).
    pub(crate) async fn read_code_with_user(
        &self,
        sql: &str,
        code_hash: &str,
    ) -> Result<Option<crate::provider::CodeWithUser>, StoreError> {
        self.inline.code_with_user(sql, code_hash)
    }

    /// Waits for this process's turn at the write lock ([`crate::sqlite_turns::TurnPool::turn`]).
    #[cfg(test)]
    pub(crate) async fn write_turn(&self) -> crate::sqlite_turns::Turn {
        self.pool.turn().await
    }

    /// Runs a write of the token path on the writer's connection, on this thread
    /// ([`crate::sqlite_inline`]), and returns what it returned (the row it spent, if any) once
    /// it is committed.
    ///
    /// Group commit: a write runs in the transaction open on the connection (or begins one),
    /// within a savepoint, and then waits for the committer. The writes that queued for the
    /// connection meanwhile run first (the turn is first come, first served), so one `COMMIT`,
    /// and one `fsync` with `synchronous = FULL`, makes all of them durable. Nothing is answered
    /// before that. A write that fails is undone to its savepoint and the others go on; a
    /// savepoint that cannot be undone or released closes the connection, which rolls back the
    /// whole transaction, and every write in it fails. Nothing here waits once the turn is
    /// taken, so a cancelled request leaves no write half-sent.
    async fn spend<T>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<Option<T>>,
    ) -> Result<Option<T>, StoreError> {
        let deadline = tokio::time::Instant::now() + crate::sqlite_inline::BUSY_TIMEOUT;
        let mut pause = std::time::Duration::from_millis(1);
        let (ran, mut committed) = loop {
            let mut writer = self.writer.lock().await;
            let Some((connection, committed)) = writer.open_group(&self.file)? else {
                // Another process holds the write lock: waited for here, as SQLite's busy
                // handler would (a doubling pause), but without blocking this thread.
                drop(writer);
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::Backend(
                        "database is locked: another process held its write lock too long".into(),
                    ));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
                continue;
            };
            let (ran, intact) = in_savepoint(connection, write);
            if !intact {
                writer.connection = None;
                writer.group = None;
            }
            break (ran, committed);
        };
        self.commit_soon();
        let row = ran?;
        if committed.wait_for(|done| *done).await.is_err() {
            return Err(StoreError::Backend(
                "the transaction of this write was rolled back".into(),
            ));
        }
        Ok(row)
    }

    /// Spends a refresh token and inserts its successor, if any, in the writer's transaction
    /// ([`Self::spend`]). The token as spent, or `None` when it was not there unused.
    pub(crate) async fn spend_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<&crate::RefreshTokenRecord>,
    ) -> Result<Option<crate::RefreshTokenRecord>, StoreError> {
        use crate::portable::REFRESH_INSERT_COLUMNS as COLUMNS;
        static SPEND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE refresh_tokens SET used_at = ?2, successor_hash = ?3
                 WHERE token_hash = ?1 AND used_at IS NULL RETURNING {COLUMNS}"
            )
        });
        self.spend(|connection| {
            let spent = connection
                .prepare_cached(&SPEND)?
                .query_row(
                    rusqlite::params![token_hash, now, successor.map(|t| &t.token_hash)],
                    crate::sqlite_inline::refresh_token,
                )
                .optional()?;
            if let (Some(_), Some(next)) = (&spent, successor) {
                crate::sqlite_inline::insert_refresh_token(connection, next)?;
            }
            Ok(spent)
        })
        .await
    }

    /// Spends an authorization code into its grant (the code names the grant) and inserts the
    /// grant, and the grant's first refresh token if any, in the writer's transaction
    /// ([`Self::spend`]). The code as spent, or `None`.
    pub(crate) async fn spend_code(
        &self,
        code_hash: &str,
        now: i64,
        grant: &crate::GrantRecord,
        refresh: Option<&crate::RefreshTokenRecord>,
    ) -> Result<Option<crate::AuthCodeRecord>, StoreError> {
        use crate::portable::CODE_COLUMNS;
        static SPEND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE auth_codes SET used_at = ?2, grant_id = ?3
                 WHERE code_hash = ?1 AND used_at IS NULL RETURNING {CODE_COLUMNS}"
            )
        });
        self.spend(|connection| {
            let spent = connection
                .prepare_cached(&SPEND)?
                .query_row(
                    rusqlite::params![code_hash, now, grant.id],
                    crate::sqlite_inline::code,
                )
                .optional()?;
            if spent.is_some() {
                crate::sqlite_inline::insert_grant(connection, grant)?;
                if let Some(first) = refresh {
                    crate::sqlite_inline::insert_refresh_token(connection, first)?;
                }
            }
            Ok(spent)
        })
        .await
    }

    /// Asks the committer for a commit, starting it first if it is not running.
    fn commit_soon(&self) {
        let mut committer = self
            .committer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if committer.as_ref().is_none_or(|c| c.0.is_finished()) {
            *committer = Some(Committer::start(
                std::sync::Arc::downgrade(&self.writer),
                self.wake_committer.clone(),
            ));
        }
        drop(committer);
        self.wake_committer.notify_one();
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(self.pool.inner())
            .await?;
        Ok(())
    }
}

/// Runs `write` within a savepoint: released when it succeeds, undone when it fails. The
/// second value is whether the transaction is intact (`false`: the savepoint could not be
/// begun, released or undone, and the caller closes the connection, rolling it all back).
fn in_savepoint<T>(
    connection: &rusqlite::Connection,
    write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<Option<T>>,
) -> (Result<Option<T>, StoreError>, bool) {
    // Prepared once per connection, as every statement of the token path is.
    let run = |sql: &str| connection.prepare_cached(sql)?.execute([]).map(drop);
    if let Err(e) = run("SAVEPOINT spend") {
        return (Err(e.into()), false);
    }
    match write(connection) {
        Ok(row) => match run("RELEASE spend") {
            Ok(()) => (Ok(row), true),
            Err(e) => (Err(e.into()), false),
        },
        Err(e) => {
            let undone = run("ROLLBACK TO spend").and_then(|()| run("RELEASE spend"));
            (Err(e.into()), undone.is_ok())
        }
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

    /// `database.sqlite_synchronous` reaches every pooled connection and the token path's
    /// writer: FULL (2) by default, NORMAL (1) when asked. The writer also enforces foreign
    /// keys, as the pool's connections do, has no busy timeout (its statements run on the
    /// runtime's threads: [`SqliteStore::spend`] waits for another process's lock instead),
    /// and keeps its statement journals in memory (`temp_store = MEMORY`, 2).
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
            let writer = store.file.open_writer().unwrap();
            let pragma = |name: &str| -> i64 {
                writer
                    .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                    .unwrap()
            };
            assert_eq!(pragma("synchronous"), expected, "the writer, {sync:?}");
            assert_eq!(
                pragma("foreign_keys"),
                1,
                "the writer enforces foreign keys"
            );
            assert_eq!(
                pragma("busy_timeout"),
                0,
                "the writer never sleeps in SQLite's busy handler"
            );
            assert_eq!(
                pragma("temp_store"),
                2,
                "the writer's savepoints never spill to a file"
            );
            drop(writer);
            store.pool.inner().close().await;
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An in-memory database is refused with a reason: it would be private to each connection,
    /// and the token path's connections would not see the pool's.
    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_a_reason() {
        let Err(e) = SqliteStore::connect(&ConnectOptions::new("sqlite::memory:")).await else {
            panic!("an in-memory database was accepted");
        };
        let message = e.to_string();
        assert!(message.contains("must be a file"), "{message}");
    }

    /// A migrated SQLite store on a new file, as this module's type (for its write turn).
    async fn sqlite_store(db: &crate::testing::TestDatabase) -> SqliteStore {
        let options = db.connect_options();
        crate::migrate(&options).await.unwrap();
        SqliteStore::connect(&options).await.unwrap()
    }

    /// [`sqlite_store`] holding grant `g1` and its unused refresh tokens `r0`, `r1`, … (`count`).
    async fn store_with_tokens(db: &crate::testing::TestDatabase, count: usize) -> SqliteStore {
        use crate::GrantStore as _;
        let store = sqlite_store(db).await;
        store
            .insert_grant(&crate::conformance::grant("g1", None))
            .await
            .unwrap();
        for i in 0..count {
            store
                .insert_refresh_token(&crate::conformance_rows::refresh(&format!("r{i}"), "g1"))
                .await
                .unwrap();
        }
        store
    }

    /// A write of the token path cancelled at any of its waits (the request went away while it
    /// waited for its turn or for its group's commit) is all or nothing, and does not keep the
    /// database's write lock: writes through the pool go on (they would otherwise wait out the
    /// busy timeout and fail with "database is locked").
    #[tokio::test]
    async fn a_cancelled_write_of_the_token_path_leaves_the_database_writable() {
        use crate::conformance_rows::refresh;
        use crate::GrantStore as _;
        use std::future::Future;
        use std::task::{Context, Poll};

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 1).await;
        for round in 1..=8 {
            let (spent, next) = (format!("r{}", round - 1), format!("r{round}"));
            // Polled a few times (round by round, further along), then dropped.
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
            // Whatever the cancelled write left in the writer's transaction is committed now.
            drop(store.write_turn().await);
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

    /// Puts the token path's writer where a storm of refreshes keeps it: a spent token in a
    /// transaction that holds SQLite's write lock and waits for its commit (the committer is
    /// not asked here). Returns what tells that write its group committed.
    async fn hold_an_open_group(
        store: &SqliteStore,
        spent: &str,
    ) -> tokio::sync::watch::Receiver<bool> {
        let mut writer = store.writer.lock().await;
        let (connection, committed) = writer.open_group(&store.file).unwrap().unwrap();
        connection
            .execute(
                "UPDATE refresh_tokens SET used_at = 20 WHERE token_hash = ?1",
                [spent],
            )
            .unwrap();
        committed
    }

    /// A connection of its own (another process, as far as SQLite's locks go) holding the
    /// database's write lock until it commits or rolls back.
    fn another_process_takes_the_write_lock(store: &SqliteStore) -> rusqlite::Connection {
        let other = store.file.open_writer().unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        other
    }

    /// Another process (here a connection of its own) holding the database's write lock: a
    /// write of the token path waits for it, while reads go on, and goes through once it is
    /// free. It waits on the runtime's timer, not in SQLite's busy handler (the writer's
    /// connection has none: [`durability_is_the_configured_one`]), which would hold this
    /// one-thread runtime, and the test with it.
    #[tokio::test]
    async fn a_write_waits_for_another_process_without_blocking_its_thread() {
        use crate::conformance_rows::refresh;
        use crate::{GrantStore as _, Redemption};

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 1).await;
        let other = another_process_takes_the_write_lock(&store);
        let write = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .redeem_refresh_token("r0", 20, Some(&refresh("r1", "g1")))
                    .await
            }
        });
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!write.is_finished(), "the write waits for the lock");
        // Reads go on meanwhile.
        assert_eq!(
            store
                .get_refresh_token("r0")
                .await
                .unwrap()
                .unwrap()
                .used_at,
            None
        );
        other.execute_batch("COMMIT").unwrap();
        assert!(matches!(
            write.await.unwrap().unwrap(),
            Redemption::Redeemed(_)
        ));
        assert!(store.get_refresh_token("r1").await.unwrap().is_some());
    }

    /// A write of the token path that waits longer than the busy timeout for another process's
    /// write lock fails with a reason, and writes nothing.
    #[tokio::test]
    async fn a_write_that_waits_out_the_busy_timeout_fails_and_writes_nothing() {
        use crate::conformance_rows::refresh;
        use crate::GrantStore as _;

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 1).await;
        let other = another_process_takes_the_write_lock(&store);
        // The busy timeout passes at once on paused time (only the write waits on a timer:
        // sqlx's pool, which the reads below use, would time out too).
        tokio::time::pause();
        let Err(e) = store
            .redeem_refresh_token("r0", 20, Some(&refresh("r1", "g1")))
            .await
        else {
            panic!("the write went through a held write lock");
        };
        tokio::time::resume();
        assert!(e.to_string().contains("database is locked"), "{e}");
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(
            store
                .get_refresh_token("r0")
                .await
                .unwrap()
                .unwrap()
                .used_at,
            None
        );
        assert!(store.get_refresh_token("r1").await.unwrap().is_none());
    }

    /// Every other write of the process takes its turn with the token path's: it commits the
    /// token path's open group and goes on at once, whether it is one statement (run to its
    /// end, or answered with a row) or a transaction. Were it left to SQLite's busy handler, it
    /// would wait as long as the group stays open, here for ever: "database is locked" after
    /// the 5 s busy timeout.
    #[tokio::test]
    async fn other_writes_commit_the_token_paths_open_group_and_go_on() {
        use crate::conformance_rows::refresh;
        use crate::{AuditRecord, AuditStore as _, GrantStore as _};

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 3).await;
        store
            .insert_signing_key(&SigningKeyRecord {
                kid: "old".into(),
                generation: 1,
                algorithm: "RS256".into(),
                public_jwk: "{}".into(),
                private_key_sealed: vec![1],
                created_at: 1,
                activates_at: 1,
            })
            .await
            .unwrap();
        let reader = sqlite_store(&db).await;

        // One statement run to its end (sqlx's `execute`).
        let committed = hold_an_open_group(&store, "r0").await;
        store
            .insert_refresh_token(&refresh("other", "g1"))
            .await
            .unwrap();
        assert!(*committed.borrow(), "the open group was committed first");
        assert!(reader.get_refresh_token("other").await.unwrap().is_some());

        // One statement answered with a row (`INSERT … RETURNING`).
        let committed = hold_an_open_group(&store, "r1").await;
        let audit = AuditRecord {
            at: 1,
            event: "signin".into(),
            outcome: "success".into(),
            details: "{}".into(),
            ..AuditRecord::default()
        };
        assert!(store.append_audit(&audit).await.unwrap() > 0);
        assert!(*committed.borrow());

        // A transaction.
        let committed = hold_an_open_group(&store, "r2").await;
        assert_eq!(store.delete_signing_keys(&["old".into()]).await.unwrap(), 1);
        assert!(*committed.borrow());
        assert!(reader.list_signing_keys().await.unwrap().is_empty());

        // What the token path spent is on disk, as each group was committed.
        for spent in ["r0", "r1", "r2"] {
            let token = reader.get_refresh_token(spent).await.unwrap().unwrap();
            assert_eq!(token.used_at, Some(20), "{spent}");
        }
    }

    /// A write through the pool that commits the token path's open group and is then cancelled
    /// (its request went away) does not undo that answer: SQLite runs the `COMMIT` it was sent,
    /// so the group's writes are told it committed, never that it rolled back (for a code
    /// exchange, a 503 whose retry would count as a replay).
    #[tokio::test]
    async fn a_write_cancelled_while_it_commits_the_open_group_tells_the_group_it_committed() {
        use crate::conformance_rows::refresh;
        use crate::GrantStore as _;
        use std::future::Future;
        use std::task::Context;

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 1).await;
        let mut committed = hold_an_open_group(&store, "r0").await;
        // Polled once: it takes the turn and hands the group's COMMIT to a blocking thread; then
        // it is dropped.
        let record = refresh("other", "g1");
        let mut write = Box::pin(store.insert_refresh_token(&record));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(write.as_mut().poll(&mut cx).is_pending());
        drop(write);
        assert!(
            committed.wait_for(|done| *done).await.is_ok(),
            "the group's writes are told their commit went through"
        );
        let reader = sqlite_store(&db).await;
        let spent = reader.get_refresh_token("r0").await.unwrap().unwrap();
        assert_eq!(spent.used_at, Some(20));
        // The turn is free again and the token path writes on.
        store
            .insert_refresh_token(&refresh("after", "g1"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .redeem_refresh_token("after", 30, Some(&refresh("next", "g1")))
                .await
                .unwrap(),
            crate::Redemption::Redeemed(_)
        ));
    }

    /// Group commit: writes that queue while one commits share the next transaction. Each is
    /// answered only once that transaction is committed (what it answered is then on disk: a
    /// new connection reads it), and one that fails is undone alone.
    #[tokio::test]
    async fn writes_that_queue_commit_together_and_fail_alone() {
        use crate::conformance_rows::refresh;
        use crate::{GrantStore as _, Redemption};

        let db = crate::testing::TestDatabase::sqlite().await;
        let store = store_with_tokens(&db, 24).await;
        // Held, so that every write below queues behind it and they run together.
        let turn = store.write_turn().await;
        let writes: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Every fourth successor collides with a stored token: that write fails.
                    let next = if i % 4 == 3 {
                        format!("r{}", i - 1)
                    } else {
                        format!("n{i}")
                    };
                    store
                        .redeem_refresh_token(&format!("r{i}"), 20, Some(&refresh(&next, "g1")))
                        .await
                })
            })
            .collect();
        // The test's runtime has one thread: these turns let every write start and queue.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        drop(turn);
        let mut answered = Vec::new();
        for write in writes {
            answered.push(write.await.unwrap());
        }
        // Read back through a new connection: only what was committed.
        let reader = sqlite_store(&db).await;
        for (i, answer) in answered.into_iter().enumerate() {
            let spent = reader
                .get_refresh_token(&format!("r{i}"))
                .await
                .unwrap()
                .unwrap();
            if i % 4 == 3 {
                assert!(answer.is_err(), "write {i} collides");
                assert_eq!(spent.used_at, None, "write {i} is undone");
            } else {
                assert!(matches!(answer, Ok(Redemption::Redeemed(_))), "write {i}");
                assert_eq!(spent.used_at, Some(20), "write {i} is committed");
                assert!(
                    reader
                        .get_refresh_token(&format!("n{i}"))
                        .await
                        .unwrap()
                        .is_some(),
                    "the successor of write {i} is committed"
                );
            }
        }
    }
}
