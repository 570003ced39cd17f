//! Implementations whose SQL is the same on SQLite and PostgreSQL (`$N` parameters, `RETURNING`),
//! generated for each backend's store type so that neither branches on the other.

macro_rules! portable_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::LoginAttemptStore for $store {
            async fn insert_login_attempt(
                &self,
                a: &$crate::LoginAttemptRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO login_attempts
                       (state_hash, browser_hash, upstream, return_to, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&a.state_hash)
                .bind(&a.browser_hash)
                .bind(&a.upstream)
                .bind(&a.return_to)
                .bind(a.created_at)
                .bind(a.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_login_attempt(
                &self,
                state_hash: &str,
            ) -> Result<Option<$crate::LoginAttemptRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::LoginAttemptRecord>(
                    "DELETE FROM login_attempts WHERE state_hash = $1
                     RETURNING state_hash, browser_hash, upstream, return_to, created_at, expires_at",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn delete_expired_login_attempts(
                &self,
                now: i64,
            ) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM login_attempts WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::SessionStore for $store {
            async fn insert_session(
                &self,
                s: &$crate::SessionRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, upstream, tenant_id, object_id, identity,
                       auth_time, created_at, last_seen_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&s.id_hash)
                .bind(&s.upstream)
                .bind(&s.tenant_id)
                .bind(&s.object_id)
                .bind(&s.identity)
                .bind(s.auth_time)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_session(
                &self,
                id_hash: &str,
            ) -> Result<Option<$crate::SessionRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::SessionRecord>(
                    "SELECT id_hash, upstream, tenant_id, object_id, identity, auth_time,
                            created_at, last_seen_at, expires_at
                     FROM sessions WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn touch_session(
                &self,
                id_hash: &str,
                last_seen_at: i64,
            ) -> Result<bool, $crate::StoreError> {
                let updated = sqlx::query(
                    "UPDATE sessions
                     SET last_seen_at = CASE WHEN last_seen_at < $2 THEN $2 ELSE last_seen_at END
                     WHERE id_hash = $1",
                )
                .bind(id_hash)
                .bind(last_seen_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(updated > 0)
            }

            async fn delete_session(&self, id_hash: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn delete_sessions_of(
                &self,
                tenant_id: &str,
                object_id: &str,
            ) -> Result<u64, $crate::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND object_id = $2")
                        .bind(tenant_id)
                        .bind(object_id)
                        .execute(&self.pool)
                        .await?
                        .rows_affected(),
                )
            }

            async fn delete_expired_sessions(
                &self,
                now: i64,
                idle_before: i64,
            ) -> Result<u64, $crate::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2")
                        .bind(now)
                        .bind(idle_before)
                        .execute(&self.pool)
                        .await?
                        .rows_affected(),
                )
            }
        }

        #[async_trait::async_trait]
        impl $crate::AuditStore for $store {
            async fn append_audit(&self, e: &$crate::AuditRecord) -> Result<i64, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, i64>(
                    "INSERT INTO audit_log (at, event, outcome, reason, actor, subject, tenant,
                       upstream, request_id, details)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(e.at)
                .bind(&e.event)
                .bind(&e.outcome)
                .bind(&e.reason)
                .bind(&e.actor)
                .bind(&e.subject)
                .bind(&e.tenant)
                .bind(&e.upstream)
                .bind(&e.request_id)
                .bind(&e.details)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn list_audit(
                &self,
                f: &$crate::AuditFilter,
            ) -> Result<Vec<$crate::AuditRecord>, $crate::StoreError> {
                // NULL filters match everything; one statement for every combination.
                Ok(sqlx::query_as::<_, $crate::AuditRecord>(
                    "SELECT id, at, event, outcome, reason, actor, subject, tenant, upstream,
                            request_id, details
                     FROM audit_log
                     WHERE ($1 IS NULL OR subject = $1)
                       AND ($2 IS NULL OR tenant = $2)
                       AND ($3 IS NULL OR event = $3)
                       AND ($4 IS NULL OR id < $4)
                     ORDER BY id DESC LIMIT $5",
                )
                .bind(&f.subject)
                .bind(&f.tenant)
                .bind(&f.event)
                .bind(f.before_id)
                .bind(i64::from(f.limit.min(1000)))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use portable_impls;
