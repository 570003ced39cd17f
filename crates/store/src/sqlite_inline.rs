//! The token path's statements on SQLite, run on the calling thread.
//!
//! sqlx runs each SQLite connection's statements on a thread of its own: a read is a hop to
//! that thread and back, and another as the connection returns to the pool (its ping). Each hop
//! parks one thread and wakes another, which in a virtual machine costs more CPU than the
//! statement (BENCHMARKS.md, "Where a grant's time goes beyond its signatures"). So the token
//! path's statements run here instead, on connections of their own, with the same SQLite
//! library as sqlx's (both link `libsqlite3-sys`):
//! - the reads a grant makes before it spends its code or refresh token ([`InlineReads`]), with
//!   the same SQL as PostgreSQL's: one indexed lookup of a few pages, nearly always in the page
//!   cache;
//! - its write, within the writer's open transaction ([`crate::sqlite_turns::Writer`]): pages
//!   changed in memory, written out by the group's `COMMIT`, which waits for the disk on a
//!   blocking thread instead.
//!
//! These connections need a database file: an in-memory database is private to the connection
//! that opened it, so the store refuses one ([`DatabaseFile::of`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use crate::provider::{CodeWithUser, JoinedUser, RefreshTokenWithGrant};
use crate::{AuthCodeRecord, GrantRecord, RefreshTokenRecord, StoreError};

/// How long a statement waits for a lock another process holds (a `techpass` command writing
/// to the same file), as sqlx's connections do.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The database file, and how its connections are opened (as sqlx's pool opens its own).
#[derive(Debug, Clone)]
pub(crate) struct DatabaseFile {
    path: PathBuf,
    synchronous: crate::SqliteSync,
}

impl DatabaseFile {
    /// The file sqlx's pool has opened at `path` (and created if missing), or an error for a
    /// database that is not a file.
    pub(crate) fn of(path: &Path, synchronous: crate::SqliteSync) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Backend(format!(
                "the SQLite database must be a file (an in-memory database is private to each \
                 connection): {} is not one",
                path.display()
            )));
        }
        Ok(DatabaseFile {
            path: path.to_path_buf(),
            synchronous,
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(connection)
    }

    /// A connection for reads only: SQLite refuses any write sent on it.
    fn open_reader(&self) -> Result<Connection, StoreError> {
        let connection = self.open()?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }

    /// The connection of the token path's writes: foreign keys enforced and the configured
    /// durability, as on the pool's connections. No busy timeout: its statements run on the
    /// runtime's threads, which must not sleep in SQLite's busy handler while another process
    /// holds the write lock ([`crate::sqlite_turns::Writer::open_group`] answers `None`; the
    /// store waits for it without blocking, up to [`BUSY_TIMEOUT`]).
    pub(crate) fn open_writer(&self) -> Result<Connection, StoreError> {
        let connection = self.open()?;
        connection.busy_timeout(std::time::Duration::ZERO)?;
        connection.pragma_update(None, "foreign_keys", true)?;
        let synchronous = match self.synchronous {
            crate::SqliteSync::Full => "FULL",
            crate::SqliteSync::Normal => "NORMAL",
        };
        connection.pragma_update(None, "synchronous", synchronous)?;
        // A write's savepoint keeps the pages it changes in a statement journal, which SQLite
        // moves to a temporary file past 64 KiB: about one code exchange in twenty created,
        // unlinked and closed a file in `/var/tmp` (or `SQLITE_TMPDIR`), and wrote its pages
        // there. In memory it never spills: a savepoint holds a few pages, until released.
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(connection)
    }
}

/// Read-only connections to the database file, handed to one read at a time.
#[derive(Debug)]
pub(crate) struct InlineReads {
    file: DatabaseFile,
    /// Connections not in use. A read takes one (or opens one when none is left) and puts it
    /// back, up to `keep` of them.
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl InlineReads {
    /// `keep` bounds the connections kept open between reads: a read holds its connection
    /// only while its thread runs it, so as many as the threads that read.
    pub(crate) fn new(file: DatabaseFile, keep: usize) -> InlineReads {
        InlineReads {
            file,
            idle: Mutex::default(),
            keep,
        }
    }

    /// Runs `read` on an idle connection (opened if none is), on this thread.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let idle = self.lock().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.file.open_reader()?,
        };
        let answer = read(&connection);
        let mut idle = self.lock();
        if idle.len() < self.keep {
            idle.push(connection);
        }
        Ok(answer?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first row of `sql` (one parameter, `$1`), mapped by `map`, or `None`.
    fn first<T>(
        &self,
        sql: &str,
        key: &str,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.with(|connection| {
            connection
                .prepare_cached(sql)?
                .query_row([key], map)
                .optional()
        })
    }

    /// [`crate::GrantStore::get_refresh_token_with_grant`]'s read (`sql`), here.
    pub(crate) fn refresh_family(
        &self,
        sql: &str,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenWithGrant>, StoreError> {
        self.first(sql, token_hash, |row| {
            let row = Columns::of(row);
            Ok(RefreshTokenWithGrant {
                grant: grant(&row)?,
                token_hash: row.get("token_hash")?,
                token_created_at: row.get("token_created_at")?,
                token_expires_at: row.get("token_expires_at")?,
                token_used_at: row.get("token_used_at")?,
                person: person(&row)?,
            })
        })
    }

    /// [`crate::GrantStore::get_code_with_user`]'s read (`sql`), here.
    pub(crate) fn code_with_user(
        &self,
        sql: &str,
        code_hash: &str,
    ) -> Result<Option<CodeWithUser>, StoreError> {
        self.first(sql, code_hash, |row| {
            let row = Columns::of(row);
            Ok(CodeWithUser {
                code: code_columns(&row)?,
                person: person(&row)?,
            })
        })
    }
}

/// A row's columns found by name, cheaply. rusqlite's `Row::get("name")` compares the name
/// with every column's before it, each read from SQLite and measured anew: for the 38 columns
/// of a refresh token with its grant and person, about 700 comparisons, some 1 % of a
/// refresh's CPU (BENCHMARKS.md). Here the names are read once per row, and each lookup starts
/// after the column found last: fields read in the statement's order are found at the first
/// try, and any other order still finds them.
struct Columns<'r, 's> {
    row: &'r Row<'s>,
    names: Vec<&'r str>,
    next: std::cell::Cell<usize>,
}

impl<'r, 's> Columns<'r, 's> {
    fn of(row: &'r Row<'s>) -> Self {
        Columns {
            row,
            names: row.as_ref().column_names(),
            next: std::cell::Cell::new(0),
        }
    }

    /// The index of the column `name` (ASCII case ignored, as rusqlite's lookup does).
    fn index(&self, name: &str) -> rusqlite::Result<usize> {
        let count = self.names.len();
        let start = self.next.get();
        (0..count)
            .map(|step| (start + step) % count)
            .find(|&i| self.names[i].eq_ignore_ascii_case(name))
            .inspect(|&i| self.next.set(i + 1))
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_string()))
    }

    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> rusqlite::Result<T> {
        self.row.get(self.index(name)?)
    }
}

/// An authorization code's row ([`crate::portable::CODE_COLUMNS`]).
pub(crate) fn code(row: &Row<'_>) -> rusqlite::Result<AuthCodeRecord> {
    code_columns(&Columns::of(row))
}

fn code_columns(row: &Columns<'_, '_>) -> rusqlite::Result<AuthCodeRecord> {
    Ok(AuthCodeRecord {
        code_hash: row.get("code_hash")?,
        client_id: row.get("client_id")?,
        user_id: row.get("user_id")?,
        session_hash: row.get("session_hash")?,
        redirect_uri: row.get("redirect_uri")?,
        scope: row.get("scope")?,
        nonce: row.get("nonce")?,
        code_challenge: row.get("code_challenge")?,
        auth_time: row.get("auth_time")?,
        amr: list(row, "amr")?,
        acr: row.get("acr")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        used_at: row.get("used_at")?,
        grant_id: row.get("grant_id")?,
    })
}

/// A refresh token's row ([`crate::portable::REFRESH_INSERT_COLUMNS`]).
pub(crate) fn refresh_token(row: &Row<'_>) -> rusqlite::Result<RefreshTokenRecord> {
    let row = Columns::of(row);
    Ok(RefreshTokenRecord {
        token_hash: row.get("token_hash")?,
        grant_id: row.get("grant_id")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        used_at: row.get("used_at")?,
    })
}

/// Inserts a refresh token ([`crate::portable::insert_refresh_token_query`], here).
pub(crate) fn insert_refresh_token(
    connection: &Connection,
    t: &RefreshTokenRecord,
) -> rusqlite::Result<()> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO refresh_tokens ({}) VALUES (?1, ?2, ?3, ?4, ?5)",
            crate::portable::REFRESH_INSERT_COLUMNS
        )
    });
    connection.prepare_cached(&SQL)?.execute(rusqlite::params![
        t.token_hash,
        t.grant_id,
        t.created_at,
        t.expires_at,
        t.used_at
    ])?;
    Ok(())
}

/// Inserts a grant ([`crate::portable::insert_grant_query`], here).
pub(crate) fn insert_grant(connection: &Connection, g: &GrantRecord) -> rusqlite::Result<()> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO grants ({}) VALUES ({})",
            crate::portable::GRANT_INSERT_COLUMNS,
            (1..=crate::portable::GRANT_INSERT_COUNT)
                .map(|n| format!("?{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    connection.prepare_cached(&SQL)?.execute(rusqlite::params![
        g.id,
        g.client_id,
        g.user_id,
        g.session_hash,
        g.scope,
        g.auth_time,
        crate::column::json_list(&g.amr),
        g.acr,
        g.created_at,
        g.expires_at,
        g.revoked_at,
        g.dpop_jkt
    ])?;
    Ok(())
}

/// A JSON list column, as [`crate::column::JsonList`] reads it.
fn list(row: &Columns<'_, '_>, column: &str) -> rusqlite::Result<Vec<String>> {
    let index = row.index(column)?;
    let text: String = row.row.get(index)?;
    crate::column::parse_list(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e)
    })
}

fn grant(row: &Columns<'_, '_>) -> rusqlite::Result<GrantRecord> {
    Ok(GrantRecord {
        id: row.get("id")?,
        client_id: row.get("client_id")?,
        user_id: row.get("user_id")?,
        session_hash: row.get("session_hash")?,
        scope: row.get("scope")?,
        auth_time: row.get("auth_time")?,
        amr: list(row, "amr")?,
        acr: row.get("acr")?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        revoked_at: row.get("revoked_at")?,
        dpop_jkt: row.get("dpop_jkt")?,
    })
}

/// The `u_`-prefixed columns of a `LEFT JOIN users u` ([`crate::portable::joined_user_columns`]).
fn person(row: &Columns<'_, '_>) -> rusqlite::Result<JoinedUser> {
    Ok(JoinedUser {
        u_id: row.get("u_id")?,
        u_tenant_id: row.get("u_tenant_id")?,
        u_object_id: row.get("u_object_id")?,
        u_email: row.get("u_email")?,
        u_name: row.get("u_name")?,
        u_created_at: row.get("u_created_at")?,
        u_last_signin_at: row.get("u_last_signin_at")?,
        u_status: row.get("u_status")?,
        u_account_type: row.get("u_account_type")?,
        u_terms_version: row.get("u_terms_version")?,
        u_registered_at: row.get("u_registered_at")?,
        u_access_ends_at: row.get("u_access_ends_at")?,
        u_status_reason: row.get("u_status_reason")?,
        u_exempt: row.get("u_exempt")?,
        u_app_signin_at: row.get("u_app_signin_at")?,
        u_given_name: row.get("u_given_name")?,
        u_family_name: row.get("u_family_name")?,
        u_email_verified: row.get("u_email_verified")?,
        u_enabled_at: row.get("u_enabled_at")?,
        u_terminated_at: row.get("u_terminated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::Columns;

    #[test]
    fn columns_are_found_by_name_in_any_order_and_an_unknown_one_is_an_error_naming_it() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let read = |names: &[&str]| {
            connection.query_row("SELECT 1 AS a, 'two' AS b, 3 AS c", [], |row| {
                let row = Columns::of(row);
                let a: i64 = row.get(names[0])?;
                let b: String = row.get(names[1])?;
                let c: i64 = row.get(names[2])?;
                Ok((a, b, c))
            })
        };
        let expected = (1, "two".to_string(), 3);
        // The statement's order, then backwards and with another case (found by scanning on).
        assert_eq!(read(&["a", "b", "c"]).unwrap(), expected);
        let backwards = connection
            .query_row("SELECT 1 AS a, 'two' AS b, 3 AS c", [], |row| {
                let row = Columns::of(row);
                Ok((
                    row.get::<i64>("C")?,
                    row.get::<String>("b")?,
                    row.get::<i64>("A")?,
                ))
            })
            .unwrap();
        assert_eq!(backwards, (3, "two".to_string(), 1));
        match read(&["a", "missing", "c"]) {
            Err(rusqlite::Error::InvalidColumnName(name)) => assert_eq!(name, "missing"),
            other => panic!("expected an unknown column error, got {other:?}"),
        }
    }
}
