//! [`UserStore`](crate::UserStore) and [`ClientStore`](crate::ClientStore) in SQL that is the same
//! on SQLite and PostgreSQL, generated for each backend's store type (see `portable`).

macro_rules! account_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::UserStore for $store {
            async fn upsert_user(
                &self,
                u: &$crate::UserRecord,
            ) -> Result<$crate::UserRecord, $crate::StoreError> {
                // A sign-in refreshes what the upstream says; the status, registration, exemption
                // and app sign-in time are TechPass's own and stay.
                Ok(sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "INSERT INTO users (id, tenant_id, object_id, email, name, created_at,
                       last_signin_at, status, account_type, terms_version, registered_at,
                       access_ends_at, status_reason, exempt, app_signin_at, given_name,
                       family_name, email_verified)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                       $16, $17, $18)
                     ON CONFLICT (tenant_id, object_id) DO UPDATE
                       SET email = excluded.email, name = excluded.name,
                           given_name = excluded.given_name,
                           family_name = excluded.family_name,
                           email_verified = excluded.email_verified,
                           last_signin_at = excluded.last_signin_at,
                           account_type = excluded.account_type
                     RETURNING {}",
                    $crate::portable::USER_COLUMNS
                ))
                .bind(&u.id)
                .bind(&u.tenant_id)
                .bind(&u.object_id)
                .bind(&u.email)
                .bind(&u.name)
                .bind(u.created_at)
                .bind(u.last_signin_at)
                .bind(u.status.as_str())
                .bind(&u.account_type)
                .bind(&u.terms_version)
                .bind(u.registered_at)
                .bind(u.access_ends_at)
                .bind(&u.status_reason)
                .bind(u.exempt)
                .bind(u.app_signin_at)
                .bind(&u.given_name)
                .bind(&u.family_name)
                .bind(u.email_verified)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn get_user(
                &self,
                id: &str,
            ) -> Result<Option<$crate::UserRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "SELECT {} FROM users WHERE id = $1",
                    $crate::portable::USER_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn find_users_by_email(
                &self,
                email: &str,
            ) -> Result<Vec<$crate::UserRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "SELECT {} FROM users WHERE LOWER(email) = LOWER($1) ORDER BY created_at, id",
                    $crate::portable::USER_COLUMNS
                ))
                .bind(email)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn register_user(
                &self,
                id: &str,
                status: techpass_domain::gate::UserStatus,
                terms_version: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE users SET status = $2, terms_version = $3, registered_at = $4
                     WHERE id = $1 AND status = 'unregistered'",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(terms_version)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn accept_terms(
                &self,
                id: &str,
                terms_version: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE users SET terms_version = $2
                     WHERE id = $1 AND status <> 'unregistered'",
                )
                .bind(id)
                .bind(terms_version)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn set_user_status(
                &self,
                id: &str,
                status: techpass_domain::gate::UserStatus,
                reason: Option<&str>,
            ) -> Result<bool, $crate::StoreError> {
                Ok(
                    sqlx::query("UPDATE users SET status = $2, status_reason = $3 WHERE id = $1")
                        .bind(id)
                        .bind(status.as_str())
                        .bind(reason)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1,
                )
            }

            async fn transition_user(
                &self,
                id: &str,
                from: techpass_domain::gate::UserStatus,
                to: techpass_domain::gate::UserStatus,
                reason: Option<&str>,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE users SET status = $3, status_reason = $4,
                       terminated_at = CASE WHEN $3 = 'terminated' THEN $5 ELSE NULL END
                     WHERE id = $1 AND status = $2",
                )
                .bind(id)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(reason)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn enable_user(
                &self,
                id: &str,
                from: techpass_domain::gate::UserStatus,
                status: techpass_domain::gate::UserStatus,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE users SET status = $2, status_reason = NULL, enabled_at = $3
                     WHERE id = $1 AND status = $4",
                )
                .bind(id)
                .bind(status.as_str())
                .bind(at)
                .bind(from.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn terminated_before(
                &self,
                before: i64,
                limit: i64,
            ) -> Result<Vec<$crate::UserRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "SELECT {} FROM users
                     WHERE status = 'terminated' AND terminated_at <= $1
                     ORDER BY id LIMIT $2",
                    $crate::portable::USER_COLUMNS
                ))
                .bind(before)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_terminated_user(
                &self,
                id: &str,
                before: i64,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // The user row first: it decides (and, deleted, locks out) concurrent callers.
                let deleted = sqlx::query(
                    "DELETE FROM users
                     WHERE id = $1 AND status = 'terminated' AND terminated_at <= $2",
                )
                .bind(id)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !deleted {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for sql in [
                    "DELETE FROM refresh_tokens
                     WHERE grant_id IN (SELECT id FROM grants WHERE user_id = $1)",
                    "DELETE FROM grants WHERE user_id = $1",
                    "DELETE FROM auth_codes WHERE user_id = $1",
                    "DELETE FROM sessions WHERE user_id = $1",
                    "DELETE FROM device_codes WHERE user_id = $1",
                    "DELETE FROM tenant_members WHERE user_id = $1",
                    "DELETE FROM tenant_admins WHERE user_id = $1",
                    "DELETE FROM platform_admins WHERE user_id = $1",
                    "DELETE FROM group_members WHERE user_id = $1",
                    "DELETE FROM app_assignments
                     WHERE principal_type = 'user' AND principal_id = $1",
                    "DELETE FROM role_assignments
                     WHERE principal_type = 'user' AND principal_id = $1",
                    "DELETE FROM notices WHERE subject = $1",
                    "DELETE FROM consents WHERE user_id = $1",
                    "DELETE FROM upstream_links WHERE user_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn set_user_exempt(
                &self,
                id: &str,
                exempt: bool,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("UPDATE users SET exempt = $2 WHERE id = $1")
                    .bind(id)
                    .bind(exempt)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn record_app_signin(&self, id: &str, at: i64) -> Result<(), $crate::StoreError> {
                // Never moves backwards (a slow replica's late write).
                sqlx::query(
                    "UPDATE users SET app_signin_at = $2
                     WHERE id = $1 AND (app_signin_at IS NULL OR app_signin_at < $2)",
                )
                .bind(id)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn users_for_lifecycle(
                &self,
                statuses: &[techpass_domain::gate::UserStatus],
                after_id: &str,
                limit: i64,
            ) -> Result<Vec<$crate::UserRecord>, $crate::StoreError> {
                if statuses.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {} FROM users
                     WHERE exempt = FALSE AND id > $1 AND status IN ({})
                     ORDER BY id LIMIT $2",
                    $crate::portable::USER_COLUMNS,
                    $crate::portable::placeholders(3, statuses.len()),
                );
                let mut query = sqlx::query_as::<_, $crate::UserRecord>(&sql)
                    .bind(after_id)
                    .bind(limit.max(0));
                for status in statuses {
                    query = query.bind(status.as_str());
                }
                Ok(query.fetch_all(&self.pool).await?)
            }

            async fn search_users(
                &self,
                query: &str,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::UserRecord>, $crate::StoreError> {
                // `email IS NULL` first in the order: both backends then put people without an
                // email last (their default NULL orders differ).
                Ok(sqlx::query_as::<_, $crate::UserRecord>(&format!(
                    "SELECT {} FROM users
                     WHERE LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\'
                        OR LOWER(id) LIKE $1 ESCAPE '\\'
                     ORDER BY email IS NULL, email, id LIMIT $2 OFFSET $3",
                    $crate::portable::USER_COLUMNS
                ))
                .bind($crate::portable::contains_pattern(query))
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn search_users_filtered(
                &self,
                query: &str,
                statuses: &[techpass_domain::gate::UserStatus],
                account_type: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::UserRecord>, $crate::StoreError> {
                // One placeholder per status (at most the seven there are), then the type.
                let statuses: Vec<&str> = statuses.iter().take(8).map(|s| s.as_str()).collect();
                let status_clause = if statuses.is_empty() {
                    String::new()
                } else {
                    let marks: Vec<String> =
                        (0..statuses.len()).map(|i| format!("${}", i + 4)).collect();
                    format!(" AND status IN ({})", marks.join(", "))
                };
                let type_mark = statuses.len() + 4;
                let type_clause = if account_type.is_some() {
                    format!(" AND account_type = ${type_mark}")
                } else {
                    String::new()
                };
                let sql = format!(
                    "SELECT {} FROM users
                     WHERE (LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\'
                        OR LOWER(id) LIKE $1 ESCAPE '\\'){status_clause}{type_clause}
                     ORDER BY email IS NULL, email, id LIMIT $2 OFFSET $3",
                    $crate::portable::USER_COLUMNS
                );
                let mut q = sqlx::query_as::<_, $crate::UserRecord>(&sql)
                    .bind($crate::portable::contains_pattern(query))
                    .bind(limit.max(0))
                    .bind(offset.max(0));
                for status in &statuses {
                    q = q.bind(*status);
                }
                if let Some(kind) = account_type {
                    q = q.bind(kind);
                }
                Ok(q.fetch_all(&self.pool).await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::ClientStore for $store {
            async fn insert_client(
                &self,
                c: &$crate::ClientRecord,
                secrets: &[$crate::ClientSecretRecord],
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO clients ({})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                       $16, $17, $18, $19)",
                    $crate::portable::CLIENT_COLUMNS
                ))
                .bind(&c.client_id)
                .bind(&c.name)
                .bind(c.confidential)
                .bind($crate::column::json_list(&c.redirect_uris))
                .bind($crate::column::json_list(&c.post_logout_redirect_uris))
                .bind(&c.backchannel_logout_uri)
                .bind($crate::column::json_list(&c.grant_types))
                .bind(&c.jwks)
                .bind(c.enabled)
                .bind(c.created_at)
                .bind(&c.tenant_id)
                .bind(&c.homepage)
                .bind(c.access_policy.as_str())
                .bind(c.access_token_lifetime_secs)
                .bind(c.refresh_token_idle_secs)
                .bind(c.api_access)
                .bind(&c.id_token_signed_response_alg)
                .bind(&c.access_token_signed_response_alg)
                .bind(c.dpop_bound_access_tokens)
                .execute(&mut *tx)
                .await?;
                for s in secrets {
                    sqlx::query(&format!(
                        "INSERT INTO client_secrets ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                        $crate::portable::SECRET_COLUMNS
                    ))
                    .bind(&s.id)
                    .bind(&s.client_id)
                    .bind(&s.secret_hash)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .bind(s.revoked_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                self.rows.changed();
                Ok(())
            }

            async fn get_client(
                &self,
                client_id: &str,
            ) -> Result<Option<$crate::ClientRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ClientRecord>(&format!(
                    "SELECT {} FROM clients WHERE client_id = $1",
                    $crate::portable::CLIENT_COLUMNS
                ))
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn client_secrets(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::ClientSecretRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ClientSecretRecord>(&format!(
                    "SELECT {} FROM client_secrets WHERE client_id = $1 ORDER BY created_at, id",
                    $crate::portable::SECRET_COLUMNS
                ))
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn update_client(
                &self,
                c: &$crate::ClientRecord,
            ) -> Result<bool, $crate::StoreError> {
                let updated = sqlx::query(
                    "UPDATE clients SET name = $2, confidential = $3, redirect_uris = $4,
                       post_logout_redirect_uris = $5, backchannel_logout_uri = $6,
                       grant_types = $7, jwks = $8, enabled = $9, homepage = $10,
                       access_policy = $11, access_token_lifetime_secs = $12,
                       refresh_token_idle_secs = $13, api_access = $14,
                       id_token_signed_response_alg = $15, access_token_signed_response_alg = $16,
                       dpop_bound_access_tokens = $17
                     WHERE client_id = $1",
                )
                .bind(&c.client_id)
                .bind(&c.name)
                .bind(c.confidential)
                .bind($crate::column::json_list(&c.redirect_uris))
                .bind($crate::column::json_list(&c.post_logout_redirect_uris))
                .bind(&c.backchannel_logout_uri)
                .bind($crate::column::json_list(&c.grant_types))
                .bind(&c.jwks)
                .bind(c.enabled)
                .bind(&c.homepage)
                .bind(c.access_policy.as_str())
                .bind(c.access_token_lifetime_secs)
                .bind(c.refresh_token_idle_secs)
                .bind(c.api_access)
                .bind(&c.id_token_signed_response_alg)
                .bind(&c.access_token_signed_response_alg)
                .bind(c.dpop_bound_access_tokens)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1;
                self.rows.changed();
                Ok(updated)
            }

            async fn clients_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::ClientRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ClientRecord>(&format!(
                    "SELECT {} FROM clients WHERE tenant_id = $1 ORDER BY name, client_id",
                    $crate::portable::CLIENT_COLUMNS
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn add_client_secret(
                &self,
                s: &$crate::ClientSecretRecord,
                now: i64,
                max_live: i64,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // Count, then insert, as one unit: this first write takes the client's row lock
                // (PostgreSQL) or the database write lock (SQLite), so concurrent adds for the
                // client wait here and count what the winner added.
                let known =
                    sqlx::query("UPDATE clients SET enabled = enabled WHERE client_id = $1")
                        .bind(&s.client_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if known == 0 {
                    // No client to add to (rather than a foreign-key error from the insert).
                    tx.rollback().await?;
                    return Err($crate::StoreError::NotFound);
                }
                let live = sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM client_secrets
                     WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(&s.client_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                if live >= max_live {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(&format!(
                    "INSERT INTO client_secrets ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                    $crate::portable::SECRET_COLUMNS
                ))
                .bind(&s.id)
                .bind(&s.client_id)
                .bind(&s.secret_hash)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(s.revoked_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.rows.changed();
                Ok(true)
            }

            async fn revoke_client_secret(
                &self,
                client_id: &str,
                secret_id: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                let revoked = sqlx::query(
                    "UPDATE client_secrets SET revoked_at = $3
                     WHERE client_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(client_id)
                .bind(secret_id)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1;
                self.rows.changed();
                Ok(revoked)
            }

            async fn delete_client(&self, client_id: &str) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                // The client row first: it decides (and, deleted, locks out) concurrent callers.
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !deleted {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // Most of these cascade from the client row already; said explicitly so the
                // contract holds whatever a later migration does to the foreign keys.
                for sql in [
                    "DELETE FROM client_secrets WHERE client_id = $1",
                    "DELETE FROM refresh_tokens
                     WHERE grant_id IN (SELECT id FROM grants WHERE client_id = $1)",
                    "DELETE FROM grants WHERE client_id = $1",
                    "DELETE FROM auth_codes WHERE client_id = $1",
                    "DELETE FROM device_codes WHERE client_id = $1",
                    "DELETE FROM role_assignments WHERE client_id = $1",
                    "DELETE FROM app_roles WHERE client_id = $1",
                    "DELETE FROM app_assignments WHERE client_id = $1",
                    "DELETE FROM consents WHERE client_id = $1",
                    "DELETE FROM resource_grants WHERE client_id = $1",
                    "DELETE FROM pending_grants WHERE client_id = $1",
                    "DELETE FROM used_assertions WHERE client_id = $1",
                    "DELETE FROM ci_issuers WHERE client_id = $1",
                ] {
                    sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                self.rows.changed();
                Ok(true)
            }

            async fn secrets_expiring(
                &self,
                now: i64,
                before: i64,
            ) -> Result<Vec<$crate::ClientSecretRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::ClientSecretRecord>(&format!(
                    "SELECT {} FROM client_secrets
                     WHERE revoked_at IS NULL AND expires_at > $1 AND expires_at <= $2
                     ORDER BY expires_at, id",
                    $crate::portable::SECRET_COLUMNS
                ))
                .bind(now)
                .bind(before)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use account_impls;
