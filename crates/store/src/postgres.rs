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
    /// What the claim subqueries (outbox, webhook deliveries) add to lock the rows they pick:
    /// rows another replica is claiming are skipped rather than leased twice (the outer UPDATE
    /// would not re-run the subquery after waiting for them).
    pub(crate) const CLAIM_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";

    /// [`crate::GrantStore::get_refresh_token_with_grant`]'s read (`sql`, one parameter).
    pub(crate) async fn read_refresh_family(
        &self,
        sql: &str,
        token_hash: &str,
    ) -> Result<Option<crate::provider::RefreshTokenWithGrant>, StoreError> {
        Ok(sqlx::query_as(sql)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// [`crate::GrantStore::get_code_with_user`]'s read (`sql`, one parameter).
    pub(crate) async fn read_code_with_user(
        &self,
        sql: &str,
        code_hash: &str,
    ) -> Result<Option<crate::provider::CodeWithUser>, StoreError> {
        Ok(sqlx::query_as(sql)
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(crate) async fn connect(options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(&options.url)?.application_name("techpass");
        let ping_idle_after = options.ping_idle_after;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // Not sqlx's ping before every statement: only before one that was idle for a
            // while (see `crate::PING_IDLE_AFTER`).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= ping_idle_after {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await?;
        Ok(PgStore {
            pool,
            rows: std::sync::Arc::new(crate::rows::RowCache::new(options.row_cache_ttl)),
        })
    }

    /// Spends a refresh token and inserts its successor, if any, in one statement (one round
    /// trip, a data-modifying CTE): the successor only from the row the UPDATE spent. The
    /// token as spent, or `None` when it was not there unused.
    pub(crate) async fn spend_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<&crate::RefreshTokenRecord>,
    ) -> Result<Option<crate::RefreshTokenRecord>, StoreError> {
        use crate::portable::{placeholders, REFRESH_INSERT_COLUMNS as COLUMNS};
        use sqlx::FromRow as _;
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "WITH spent AS (
                    UPDATE refresh_tokens SET used_at = $2, successor_hash = $3
                    WHERE token_hash = $1 AND used_at IS NULL
                    RETURNING {COLUMNS}),
                  successor AS (
                    INSERT INTO refresh_tokens ({COLUMNS})
                    SELECT {values} FROM spent WHERE $3 IS NOT NULL)
                 SELECT {COLUMNS} FROM spent",
                values = placeholders(3, 5),
            )
        });
        let query = sqlx::query(SQL.as_str()).bind(token_hash).bind(now);
        let query = crate::portable::bind_refresh_token(query, successor);
        let spent = query.fetch_optional(&self.pool).await?;
        Ok(spent
            .as_ref()
            .map(crate::RefreshTokenRecord::from_row)
            .transpose()?)
    }

    /// Spends an authorization code into its grant (the code names the grant) and inserts the
    /// grant, and the grant's first refresh token if any, in one statement (a data-modifying
    /// CTE): the grant only from the code the UPDATE spent, its refresh token only with it. The
    /// code as spent, or `None`.
    pub(crate) async fn spend_code(
        &self,
        code_hash: &str,
        now: i64,
        grant: &crate::GrantRecord,
        refresh: Option<&crate::RefreshTokenRecord>,
    ) -> Result<Option<crate::AuthCodeRecord>, StoreError> {
        use crate::portable::{
            placeholders, CODE_COLUMNS, GRANT_INSERT_COLUMNS, GRANT_INSERT_COUNT,
            REFRESH_INSERT_COLUMNS,
        };
        use sqlx::FromRow as _;
        // $1, $2: the code and now; then the grant ($3 its id); then its refresh token.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let refresh_first = 3 + GRANT_INSERT_COUNT;
            format!(
                "WITH spent AS (
                    UPDATE auth_codes SET used_at = $2, grant_id = $3
                    WHERE code_hash = $1 AND used_at IS NULL
                    RETURNING {CODE_COLUMNS}),
                  new_grant AS (
                    INSERT INTO grants ({GRANT_INSERT_COLUMNS})
                    SELECT {grant_values} FROM spent RETURNING id),
                  first_refresh AS (
                    INSERT INTO refresh_tokens ({REFRESH_INSERT_COLUMNS})
                    SELECT {refresh_values} FROM new_grant WHERE ${refresh_first} IS NOT NULL)
                 SELECT {CODE_COLUMNS} FROM spent",
                grant_values = placeholders(3, GRANT_INSERT_COUNT),
                refresh_values = placeholders(refresh_first, 5),
            )
        });
        let query = sqlx::query(SQL.as_str()).bind(code_hash).bind(now);
        let query = crate::portable::bind_grant(query, grant);
        let query = crate::portable::bind_refresh_token(query, refresh);
        let spent = query.fetch_optional(&self.pool).await?;
        Ok(spent
            .as_ref()
            .map(crate::AuthCodeRecord::from_row)
            .transpose()?)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use crate::testing::{TestDatabase, POSTGRES_URL_VAR};

    /// A store with one pooled connection on a fresh schema, pinging connections idle at least
    /// `ping_idle_after`.
    async fn store(db: &TestDatabase, ping_idle_after: Duration) -> PgStore {
        let mut options = db.connect_options();
        options.max_connections = 1;
        options.ping_idle_after = ping_idle_after;
        PgStore::connect(&options).await.unwrap()
    }

    /// The server process behind the pool's connection, once that connection is back in the
    /// pool (sqlx tests it on release, in a task of its own).
    async fn idle_backend(store: &PgStore) -> i32 {
        let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        for _ in 0..200 {
            if store.pool.num_idle() == 1 {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the connection did not come back to the pool");
    }

    /// Ends a server process the way a database restart or an administrator would, and waits
    /// until it is gone.
    async fn terminate(pid: i32) {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&std::env::var(POSTGRES_URL_VAR).unwrap())
            .await
            .unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&admin)
            .await
            .unwrap();
        assert!(ended, "backend {pid} still running");
        admin.close().await;
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_before_it_is_used() {
        let Some(db) = TestDatabase::postgres("a_connection_closed_while_idle_is_replaced").await
        else {
            return;
        };
        let store = store(&db, Duration::from_millis(50)).await;
        let pid = idle_backend(&store).await;
        terminate(pid).await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Idle long enough to be pinged: the dead connection is dropped and a new one opened,
        // so the statement succeeds.
        store
            .ping()
            .await
            .expect("the pool replaced the closed connection");
        assert_ne!(idle_backend(&store).await, pid);
    }

    #[tokio::test]
    async fn a_connection_closed_in_use_fails_one_statement_and_is_not_reused() {
        let Some(db) = TestDatabase::postgres("a_connection_closed_in_use_fails_one").await else {
            return;
        };
        // Never idle long enough to be pinged, as under steady traffic.
        let store = store(&db, Duration::from_secs(3600)).await;
        let pid = idle_backend(&store).await;
        terminate(pid).await;

        // Not pinged first, so the statement meets the closed connection and fails cleanly...
        let failed = store.ping().await;
        assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
        // ...and that connection is not handed out again: the next statement gets a new one.
        store.ping().await.expect("a new connection");
        assert_ne!(idle_backend(&store).await, pid);
    }
}
