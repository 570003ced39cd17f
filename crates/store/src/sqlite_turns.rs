//! The SQLite pool as the store's code uses it: a read goes straight to sqlx's pool, and every
//! write first takes this process's turn at the database's single write lock, the turn the
//! token path's writes take too ([`crate::sqlite::SqliteStore::spend`]).
//!
//! Why: the token path commits in groups, so under a storm of refreshes its transaction holds
//! SQLite's write lock nearly all the time. A write that found the lock taken slept in SQLite's
//! busy handler (1, 2, 5, 10 ms, then up to 100 ms between tries) and kept missing the short
//! gaps between two groups: a sign-in or a background job waited hundreds of milliseconds, and
//! up to seconds. Queued for the turn instead, it runs as soon as the writes queued before it
//! have run and their group is committed, first come, first served.
//!
//! What counts as a write: a statement that does not start with `SELECT` (so `INSERT`,
//! `UPDATE`, `DELETE` and `PRAGMA`s; a read that starts otherwise only waits needlessly), and
//! every transaction ([`TurnPool::begin`]), for all of its life. Limits: other processes on the
//! same file (a `techpass` command) still meet the busy handler; and a write that holds the
//! turn must not start another write through the pool (it would wait for itself).
//!
//! The turn is the mutex of the token path's [`Writer`], its connection and the transaction
//! open on it, which the store's `spend` and its committer use.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool, SqliteQueryResult, SqliteRow};
use sqlx::{Either, Error, Execute, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The connection of the token path's writes ([`crate::sqlite::SqliteStore::spend`]), outside
/// the pool, and the transaction open on it; its mutex is the turn. Only one write runs on it
/// at a time, as SQLite's single write lock allows. Its statements run on the thread that holds
/// the turn ([`crate::sqlite_inline`]), its `COMMIT` on a blocking thread ([`commit`]). The
/// connection is `None` until the first write, and again after a failure (closing the
/// connection rolls back whatever it had begun).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) connection: Option<rusqlite::Connection>,
    /// The transaction open on the connection: the writes that ran in it wait for its commit,
    /// which this sends (`true`). Dropped without sending, it tells them it rolled back.
    pub(crate) group: Option<tokio::sync::watch::Sender<bool>>,
}

impl Writer {
    /// Opens the connection and begins the token path's transaction on it, as needed, and
    /// returns the connection with what tells the writes run in that transaction whether it
    /// committed; `None` when another process (a `techpass` command on the same file) holds the
    /// write lock: nothing was begun, and the caller tries again later, without holding the
    /// turn meanwhile. Never waits: the writer's connection has no busy timeout, as its
    /// statements run on the runtime's threads ([`crate::sqlite_inline`]).
    pub(crate) fn open_group(
        &mut self,
        file: &crate::sqlite_inline::DatabaseFile,
    ) -> Result<
        Option<(&rusqlite::Connection, tokio::sync::watch::Receiver<bool>)>,
        crate::StoreError,
    > {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => file.open_writer()?,
        };
        if self.group.is_none() {
            match connection.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => {}
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy =>
                {
                    self.connection = Some(connection);
                    return Ok(None);
                }
                // The connection is dropped, so closed.
                Err(e) => return Err(e.into()),
            }
        }
        let committed = self
            .group
            .get_or_insert_with(|| tokio::sync::watch::channel(false).0)
            .subscribe();
        Ok(Some((self.connection.insert(connection), committed)))
    }

    /// Commits the open transaction, if any, on this thread (it waits for the disk), and tells
    /// its writes. A commit that fails closes the connection, which rolls it back, and they
    /// are told so.
    fn commit_here(&mut self) {
        let Some(group) = self.group.take() else {
            return;
        };
        match self.connection.as_ref().map(|c| c.execute_batch("COMMIT")) {
            Some(Ok(())) => {
                let _ = group.send(true);
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "the token path's group commit failed; its writes are undone");
                self.connection = None;
            }
            None => {}
        }
    }
}

/// Commits the writer's open transaction, if any, on a blocking thread, and hands the turn
/// back (`None`: the runtime is shutting down). Once begun it runs to its end whether or not
/// anyone still waits: SQLite runs a `COMMIT` it was sent, and the group's writes must hear
/// that it committed, not that it rolled back.
pub(crate) async fn commit(turn: Turn) -> Option<Turn> {
    if turn.group.is_none() {
        return Some(turn);
    }
    tokio::task::spawn_blocking(move || {
        let mut turn = turn;
        turn.commit_here();
        turn
    })
    .await
    .ok()
}

/// This process's turn at the write lock: held, no other write of the process runs, and the
/// token path's writer has no transaction open.
pub(crate) type Turn = OwnedMutexGuard<Writer>;

/// sqlx's pool, with writes taking turns at the token path's writer.
#[derive(Debug, Clone)]
pub(crate) struct TurnPool {
    pool: SqlitePool,
    writer: Arc<Mutex<Writer>>,
}

impl TurnPool {
    pub(crate) fn new(pool: SqlitePool, writer: Arc<Mutex<Writer>>) -> TurnPool {
        TurnPool { pool, writer }
    }

    /// The pool itself, for what takes a pool rather than an executor (migrations, closing).
    pub(crate) fn inner(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for this process's turn; the token path's open transaction, if any, is committed
    /// first, as it holds the write lock.
    pub(crate) async fn turn(&self) -> Turn {
        take_turn(self.writer.clone()).await
    }

    /// A transaction that holds the turn until it is committed, rolled back or dropped.
    pub(crate) async fn begin(&self) -> Result<WriteTransaction, Error> {
        let turn = self.turn().await;
        let tx = self.pool.begin().await?;
        Ok(WriteTransaction { tx, _turn: turn })
    }
}

async fn take_turn(writer: Arc<Mutex<Writer>>) -> Turn {
    loop {
        let turn = Arc::clone(&writer).lock_owned().await;
        if turn.group.is_none() {
            return turn;
        }
        // The token path's open transaction holds the write lock: committed first.
        if let Some(turn) = commit(turn).await {
            return turn;
        }
        // The blocking thread's runtime is shutting down: the turn went with it.
    }
}

/// Whether a statement may write: anything but a `SELECT`.
fn writes(sql: &str) -> bool {
    !sql.trim_start()
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("select"))
}

impl<'p> Executor<'p> for &'_ TurnPool {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        if !writes(query.sql()) {
            return self.pool.fetch_many(query);
        }
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        futures_util::stream::once(async move {
            let turn = take_turn(writer).await;
            // The turn is held until the last row is taken (or the stream is dropped).
            pool.fetch_many(query).map(move |step| {
                let _held = &turn;
                step
            })
        })
        .flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        if !writes(query.sql()) {
            return self.pool.fetch_optional(query);
        }
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        async move {
            let _turn = take_turn(writer).await;
            pool.fetch_optional(query).await
        }
        .boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement<'q>, Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}

/// A transaction of the pool ([`TurnPool::begin`]) and the turn it holds. It derefs to its
/// connection (`&mut *tx` runs a statement in it), like sqlx's own transaction.
pub(crate) struct WriteTransaction {
    // Dropped first: an uncommitted transaction queues its rollback before the turn goes. The
    // rollback may run just after, and the next holder then waits that moment in SQLite's
    // busy handler; likewise after a statement cancelled mid-way.
    tx: sqlx::Transaction<'static, Sqlite>,
    _turn: Turn,
}

impl WriteTransaction {
    pub(crate) async fn commit(self) -> Result<(), Error> {
        let WriteTransaction { tx, _turn } = self;
        tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), Error> {
        let WriteTransaction { tx, _turn } = self;
        tx.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::writes;

    #[test]
    fn only_a_select_is_a_read() {
        assert!(!writes("SELECT 1"));
        assert!(!writes("\n   select id FROM users"));
        assert!(writes("INSERT INTO users VALUES (1)"));
        assert!(writes("  UPDATE users SET name = 'x'"));
        assert!(writes("DELETE FROM users"));
        assert!(writes("PRAGMA synchronous"));
        assert!(writes("WITH x AS (SELECT 1) DELETE FROM users"));
        assert!(writes("SEL"));
    }
}
