//! Throwaway databases for tests: a fresh SQLite file or a fresh PostgreSQL schema per test, so
//! tests share no state and run in parallel. PostgreSQL comes from `TECHPASS_TEST_POSTGRES_URL`;
//! without it the PostgreSQL variants print that they were skipped, by name.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;

use crate::{ConnectOptions, Store};

/// The environment variable that points tests at a PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "TECHPASS_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed when dropped (even when the test fails).
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL to hand to `connect` (or to a `techpass` process as `database_url`).
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteDir(std::path::PathBuf),
    PostgresSchema { admin_url: String, schema: String },
}

fn unique_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl TestDatabase {
    /// A new SQLite file in its own temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = std::env::temp_dir().join(format!("techpass-test-{}", unique_name()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TestDatabase {
            url: format!("sqlite://{}/techpass.db", dir.display()),
            backend: Backend::Sqlite,
            cleanup: Cleanup::SqliteDir(dir),
        }
    }

    /// A new schema in the test PostgreSQL database, or `None` (with a line saying that `test`
    /// was skipped) when `TECHPASS_TEST_POSTGRES_URL` is not set.
    pub async fn postgres(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            // Written past the test harness's output capture, so a newcomer sees it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test} on PostgreSQL: {POSTGRES_URL_VAR} is not set"
            );
            return None;
        };
        let schema = format!("t_{}", unique_name());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unreachable: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .expect("create schema");
        pool.close().await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        Some(TestDatabase {
            url: format!("{admin_url}{sep}options=-c%20search_path%3D{schema}"),
            backend: Backend::Postgres,
            cleanup: Cleanup::PostgresSchema { admin_url, schema },
        })
    }

    /// A database of the given backend; `None` only for a skipped PostgreSQL.
    pub async fn new(backend: Backend, test: &str) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => Some(TestDatabase::sqlite().await),
            Backend::Postgres => TestDatabase::postgres(test).await,
        }
    }

    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions::new(self.url.clone())
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Arc<dyn Store> {
        let options = self.connect_options();
        crate::migrate(&options).await.expect("migrate");
        crate::connect(&options).await.expect("connect")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresSchema { admin_url, schema } => {
                let (admin_url, schema) = (admin_url.clone(), schema.clone());
                // Drop may run inside a runtime (or while unwinding): use a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let pool = PgPoolOptions::new()
                            .max_connections(1)
                            .connect(&admin_url)
                            .await
                            .map_err(std::io::Error::other)?;
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&pool)
                            .await
                            .map_err(std::io::Error::other)?;
                        pool.close().await;
                        Ok::<_, std::io::Error>(())
                    })
                })
                .join();
            }
        }
    }
}

/// Runs each named `async fn(&TestDatabase)` twice: as `sqlite::NAME` on a fresh SQLite file and
/// as `postgres::NAME` on a fresh PostgreSQL schema (skipped, by name, without
/// `TECHPASS_TEST_POSTGRES_URL`). The first argument prefixes the name in the skip message.
#[macro_export]
macro_rules! backend_tests {
    ($prefix:literal, $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::testing::TestDatabase::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!($prefix, "::", stringify!($name));
                    let Some(db) = $crate::testing::TestDatabase::postgres(test).await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}
