//! Implementations whose SQL is the same on SQLite and PostgreSQL (`$N` parameters, `RETURNING`),
//! generated for each backend's store type so that neither branches on the other: sign-in state,
//! sessions and the audit log here, client assertions and grants in `provider_impls`. Sibling
//! files do the same for users and clients (`portable_accounts`), tenants and invitations
//! (`portable_tenancy`), app access (`portable_access`), pending grants (`portable_pending`), and the outbox and webhooks
//! (`portable_outbox`). This module also holds the column lists and small SQL helpers they share.
//!
//! Where a statement cannot be the same on both backends, the backend supplies the difference
//! (see `CLAIM_LOCK` in `sqlite.rs` and `postgres.rs`).

/// Column lists in the field order of the records they load.
pub(crate) const USER_COLUMNS: &str = "id, tenant_id, object_id, email, name, created_at,
    last_signin_at, status, account_type, terms_version, registered_at, access_ends_at,
    status_reason, exempt, app_signin_at, given_name, family_name, email_verified, enabled_at,
    terminated_at";
pub(crate) const CLIENT_COLUMNS: &str = "client_id, name, confidential, redirect_uris,
    post_logout_redirect_uris, backchannel_logout_uri, grant_types, jwks, enabled, created_at,
    tenant_id, homepage, access_policy, access_token_lifetime_secs,
    refresh_token_idle_secs, api_access, id_token_signed_response_alg,
    access_token_signed_response_alg, dpop_bound_access_tokens";
pub(crate) const SECRET_COLUMNS: &str =
    "id, client_id, secret_hash, created_at, expires_at, revoked_at";
pub(crate) const TENANT_COLUMNS: &str = "id, slug, name, description, purpose, status,
    requested_by, created_at, status_at, status_by, status_reason";
pub(crate) const INVITATION_COLUMNS: &str = "id, tenant_id, email, token_hash, invited_by,
    created_at, expires_at, access_ends_at, status, status_at, accepted_by, sent_count";
pub(crate) const PENDING_GRANT_COLUMNS: &str =
    "id, email, kind, tenant_id, client_id, granted_by, granted_at";
pub(crate) const MEMBER_COLUMNS: &str =
    "tenant_id, user_id, joined_at, access_ends_at, invitation_id";
pub(crate) const EMAIL_COLUMNS: &str = "id, recipient, subject, body, kind, created_at,
    next_attempt_at, attempts, sent_at, last_error";
pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, url, events, secret_sealed, verified_at, created_at, created_by";
pub(crate) const DELIVERY_COLUMNS: &str = "id, webhook_id, event, payload, created_at,
    next_attempt_at, attempts, status, last_status_code, last_error, delivered_at";

/// `columns` qualified by `table` and named as before (`a, b` → `t.a AS a, t.b AS b`), for the
/// select list of a join.
pub(crate) fn qualified(columns: &str, table: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{c} AS {c}", c = c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The person's columns of a `LEFT JOIN users u`, each named with a `u_` prefix
/// (`u.id AS u_id, …`), as [`crate::provider::JoinedUser`] reads them.
pub(crate) fn joined_user_columns() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        USER_COLUMNS
            .split(',')
            .map(|c| format!("u.{c} AS u_{c}", c = c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    });
    COLUMNS.as_str()
}

/// `count` numbered parameters from `$first` (`$3, $4, $5`), for an `IN (…)` list: neither
/// backend binds a list portably (SQLite has no arrays).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `LIKE … ESCAPE '\'` pattern matching values that contain `query` (lowercased, with the
/// pattern's own metacharacters escaped), for comparison with `LOWER(column)`.
pub(crate) fn contains_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in query.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// An authorization code's columns, as [`crate::AuthCodeRecord`] reads them.
pub(crate) const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_hash, redirect_uri,
    scope, nonce, code_challenge, auth_time, amr, acr, created_at, expires_at, used_at, grant_id";

/// The columns of a grant's INSERT, in the order [`bind_grant`] binds them.
pub(crate) const GRANT_INSERT_COLUMNS: &str = "id, client_id, user_id, session_hash, scope,
    auth_time, amr, acr, created_at, expires_at, revoked_at, dpop_jkt";
/// How many columns [`GRANT_INSERT_COLUMNS`] names.
pub(crate) const GRANT_INSERT_COUNT: usize = 12;
/// The columns of a refresh token's INSERT, in the order [`bind_refresh_token`] binds them (and
/// the order of [`crate::RefreshTokenRecord`]'s fields).
pub(crate) const REFRESH_INSERT_COLUMNS: &str =
    "token_hash, grant_id, created_at, expires_at, used_at";

/// Binds the [`GRANT_INSERT_COUNT`] values of a grant's INSERT ([`GRANT_INSERT_COLUMNS`]) to the
/// next parameters.
pub(crate) fn bind_grant<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    g: &'q crate::GrantRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(g.id.as_str())
        .bind(g.client_id.as_str())
        .bind(g.user_id.as_deref())
        .bind(g.session_hash.as_deref())
        .bind(g.scope.as_str())
        .bind(g.auth_time)
        .bind(crate::column::json_list(&g.amr))
        .bind(g.acr.as_deref())
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(g.revoked_at)
        .bind(g.dpop_jkt.as_deref())
}

/// Binds the 5 values of a refresh token's INSERT ([`REFRESH_INSERT_COLUMNS`]) to the next
/// parameters; `None` binds five NULLs (a statement that inserts a token only when there is one).
pub(crate) fn bind_refresh_token<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    t: Option<&'q crate::RefreshTokenRecord>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(t.map(|t| t.token_hash.as_str()))
        .bind(t.map(|t| t.grant_id.as_str()))
        .bind(t.map(|t| t.created_at))
        .bind(t.map(|t| t.expires_at))
        .bind(t.and_then(|t| t.used_at))
}

/// The INSERT of a grant, for either backend and any executor (the pool or a transaction).
pub(crate) fn insert_grant_query<'q, DB>(
    g: &'q crate::GrantRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO grants ({GRANT_INSERT_COLUMNS}) VALUES ({})",
            placeholders(1, GRANT_INSERT_COUNT)
        )
    });
    bind_grant(sqlx::query(SQL.as_str()), g)
}

/// The INSERT of a refresh token, for either backend and any executor.
pub(crate) fn insert_refresh_token_query<'q, DB>(
    t: &'q crate::RefreshTokenRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO refresh_tokens ({REFRESH_INSERT_COLUMNS}) VALUES ({})",
            placeholders(1, 5)
        )
    });
    bind_refresh_token(sqlx::query(SQL.as_str()), Some(t))
}

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
                       auth_time, created_at, last_seen_at, expires_at, user_id, user_agent, address)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                .bind(&s.user_id)
                .bind(&s.user_agent)
                .bind(&s.address)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_session(
                &self,
                id_hash: &str,
            ) -> Result<Option<$crate::SessionRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::SessionRecord>(
                    "SELECT id_hash, user_id, upstream, tenant_id, object_id, identity, auth_time,
                            created_at, last_seen_at, expires_at, user_agent, address
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

            async fn sessions_of_user(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::SessionRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::SessionRecord>(
                    "SELECT id_hash, user_id, upstream, tenant_id, object_id, identity, auth_time,
                            created_at, last_seen_at, expires_at, user_agent, address
                     FROM sessions WHERE user_id = $1 ORDER BY created_at, id_hash",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
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
                       upstream, request_id, details, reference, subject_email)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
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
                .bind(&e.reference)
                .bind(&e.subject_email)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn list_audit(
                &self,
                f: &$crate::AuditFilter,
            ) -> Result<Vec<$crate::AuditRecord>, $crate::StoreError> {
                // NULL filters match everything; one statement for every combination.
                let (after_at, after_id) = f.after.unzip();
                Ok(sqlx::query_as::<_, $crate::AuditRecord>(
                    "SELECT id, at, event, outcome, reason, actor, subject, tenant, upstream,
                            request_id, details, reference, subject_email
                     FROM audit_log
                     WHERE ($1 IS NULL OR subject = $1)
                       AND ($2 IS NULL OR tenant = $2)
                       AND ($3 IS NULL OR event = $3)
                       AND ($4 IS NULL OR id < $4)
                       AND ($5 IS NULL OR outcome = $5)
                       AND ($6 IS NULL OR actor = $6)
                       AND ($7 IS NULL OR reference = $7)
                       AND ($8 IS NULL OR subject_email = $8)
                       AND ($9 IS NULL OR at >= $9)
                       AND ($10 IS NULL OR at < $10)
                       AND ($11 IS NULL OR at < $11 OR (at = $11 AND id < $12))
                     ORDER BY at DESC, id DESC LIMIT $13",
                )
                .bind(&f.subject)
                .bind(&f.tenant)
                .bind(&f.event)
                .bind(f.before_id)
                .bind(&f.outcome)
                .bind(&f.actor)
                .bind(&f.reference)
                .bind(&f.subject_email)
                .bind(f.since)
                .bind(f.until)
                .bind(after_at)
                .bind(after_id)
                .bind(i64::from(f.limit.min(1000)))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use portable_impls;

macro_rules! provider_impls {
    ($store:ty) => {
        use $crate::portable::CODE_COLUMNS;

        #[async_trait::async_trait]
        impl $crate::AssertionLog for $store {
            async fn record_assertion(
                &self,
                client_id: &str,
                jti: &str,
                expires_at: i64,
            ) -> Result<bool, $crate::StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }

            async fn delete_expired_assertions(&self, now: i64) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::GrantStore for $store {
            async fn insert_grant(&self, g: &$crate::GrantRecord) -> Result<(), $crate::StoreError> {
                $crate::portable::insert_grant_query(g)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_grant(
                &self,
                id: &str,
            ) -> Result<Option<$crate::GrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GrantRecord>(
                    "SELECT id, client_id, user_id, session_hash, scope, auth_time, amr,
                            acr, created_at, expires_at, revoked_at, dpop_jkt
                     FROM grants WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn revoke_grant(&self, id: &str, at: i64) -> Result<bool, $crate::StoreError> {
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(self.get_grant(id).await?.is_some())
            }

            async fn grants_of_session(
                &self,
                session_hash: &str,
            ) -> Result<Vec<$crate::GrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GrantRecord>(
                    "SELECT id, client_id, user_id, session_hash, scope, auth_time, amr,
                            acr, created_at, expires_at, revoked_at, dpop_jkt
                     FROM grants WHERE session_hash = $1 ORDER BY created_at, id",
                )
                .bind(session_hash)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_grants_of_user(
                &self,
                user_id: &str,
                at: i64,
            ) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn live_grants_of_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> Result<Vec<$crate::GrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::GrantRecord>(
                    "SELECT id, client_id, user_id, session_hash, scope, auth_time, amr,
                            acr, created_at, expires_at, revoked_at, dpop_jkt
                     FROM grants WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
                     ORDER BY created_at, id",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_grants_of_user_for_client(
                &self,
                user_id: &str,
                client_id: &str,
                at: i64,
            ) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE grants SET revoked_at = $3
                     WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(client_id)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn revoke_grants_of_session(
                &self,
                session_hash: &str,
                at: i64,
            ) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE grants SET revoked_at = $2 WHERE session_hash = $1 AND revoked_at IS NULL",
                )
                .bind(session_hash)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn insert_code(&self, c: &$crate::AuthCodeRecord) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO auth_codes (code_hash, client_id, user_id, session_hash,
                       redirect_uri, scope, nonce, code_challenge, auth_time, amr, acr, created_at,
                       expires_at, used_at, grant_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(&c.user_id)
                .bind(&c.session_hash)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(&c.nonce)
                .bind(&c.code_challenge)
                .bind(c.auth_time)
                .bind($crate::column::json_list(&c.amr))
                .bind(&c.acr)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.used_at)
                .bind(&c.grant_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_code(
                &self,
                code_hash: &str,
            ) -> Result<Option<$crate::AuthCodeRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::AuthCodeRecord>(&format!(
                    "SELECT {CODE_COLUMNS} FROM auth_codes WHERE code_hash = $1"
                ))
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn get_code_with_user(
                &self,
                code_hash: &str,
            ) -> Result<
                Option<($crate::AuthCodeRecord, Option<$crate::UserRecord>)>,
                $crate::StoreError,
            > {
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT {code}, {person}
                         FROM auth_codes c LEFT JOIN users u ON u.id = c.user_id
                         WHERE c.code_hash = $1",
                        code = $crate::portable::qualified(CODE_COLUMNS, "c"),
                        person = $crate::portable::joined_user_columns(),
                    )
                });
                // Each backend's `read_code_with_user`: SQLite reads on this thread.
                let found = self.read_code_with_user(SQL.as_str(), code_hash).await?;
                found.map($crate::provider::CodeWithUser::split).transpose()
            }

            async fn insert_refresh_token(
                &self,
                t: &$crate::RefreshTokenRecord,
            ) -> Result<(), $crate::StoreError> {
                $crate::portable::insert_refresh_token_query(t)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn redeem_refresh_token(
                &self,
                token_hash: &str,
                now: i64,
                successor: Option<&$crate::RefreshTokenRecord>,
            ) -> Result<$crate::Redemption<$crate::RefreshTokenRecord>, $crate::StoreError> {
                // Spent and succeeded in one transaction, the successor inserted only if the
                // token was spent (each backend's `spend_refresh_token`).
                match self.spend_refresh_token(token_hash, now, successor).await? {
                    Some(token) => Ok($crate::Redemption::Redeemed(token)),
                    None => Ok(self
                        .get_refresh_token(token_hash)
                        .await?
                        .map_or($crate::Redemption::NotFound, $crate::Redemption::Replayed)),
                }
            }

            async fn reissue_refresh_token(
                &self,
                token_hash: &str,
                used_since: i64,
                successor: &$crate::RefreshTokenRecord,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let replaced = sqlx::query(
                    "DELETE FROM refresh_tokens
                     WHERE used_at IS NULL AND token_hash = (
                        SELECT successor_hash FROM refresh_tokens
                        WHERE token_hash = $1 AND used_at >= $2)",
                )
                .bind(token_hash)
                .bind(used_since)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !replaced {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("UPDATE refresh_tokens SET successor_hash = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(&successor.token_hash)
                    .execute(&mut *tx)
                    .await?;
                $crate::portable::insert_refresh_token_query(successor)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn redeem_code_into_grant(
                &self,
                code_hash: &str,
                now: i64,
                grant: &$crate::GrantRecord,
                refresh: Option<&$crate::RefreshTokenRecord>,
            ) -> Result<$crate::Redemption<$crate::AuthCodeRecord>, $crate::StoreError> {
                // Spent, the grant and its first refresh token inserted, in one transaction,
                // the inserts only if the code was spent (each backend's `spend_code`).
                match self.spend_code(code_hash, now, grant, refresh).await? {
                    Some(code) => Ok($crate::Redemption::Redeemed(code)),
                    None => Ok(self
                        .get_code(code_hash)
                        .await?
                        .map_or($crate::Redemption::NotFound, $crate::Redemption::Replayed)),
                }
            }

            async fn get_refresh_token_with_grant(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::RefreshFamily>, $crate::StoreError> {
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT g.id, g.client_id, g.user_id, g.session_hash, g.scope,
                                g.auth_time, g.amr, g.acr, g.created_at, g.expires_at,
                                g.revoked_at, g.dpop_jkt, r.token_hash,
                                r.created_at AS token_created_at,
                                r.expires_at AS token_expires_at, r.used_at AS token_used_at,
                                {person}
                         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
                         LEFT JOIN users u ON u.id = g.user_id
                         WHERE r.token_hash = $1",
                        person = $crate::portable::joined_user_columns(),
                    )
                });
                // Each backend's `read_refresh_family`: SQLite reads on this thread.
                let found = self.read_refresh_family(SQL.as_str(), token_hash).await?;
                found.map($crate::provider::RefreshTokenWithGrant::split).transpose()
            }

            async fn get_refresh_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::RefreshTokenRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::RefreshTokenRecord>(
                    "SELECT token_hash, grant_id, created_at, expires_at, used_at
                     FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn revoke_access_token(
                &self,
                jti: &str,
                expires_at: i64,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query_scalar::<_, i64>("SELECT expires_at FROM revoked_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some())
            }
        }
    };
}

pub(crate) use provider_impls;
