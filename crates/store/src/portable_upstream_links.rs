//! [`UpstreamLinkStore`](crate::UpstreamLinkStore) in SQL that is the same on SQLite and
//! PostgreSQL.

macro_rules! upstream_link_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::UpstreamLinkStore for $store {
            async fn put_upstream_link(
                &self,
                l: &$crate::UpstreamLinkRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO upstream_links
                        (user_id, upstream, sealed_refresh_token, last_verified_at, failures)
                     VALUES ($1, $2, $3, $4, 0)
                     ON CONFLICT (user_id, upstream) DO UPDATE SET
                        sealed_refresh_token = excluded.sealed_refresh_token,
                        last_verified_at = excluded.last_verified_at,
                        failures = 0,
                        checking_until = NULL",
                )
                .bind(&l.user_id)
                .bind(&l.upstream)
                .bind(&l.sealed_refresh_token)
                .bind(l.last_verified_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn upstream_links_of_user(
                &self,
                user_id: &str,
            ) -> Result<Vec<$crate::UpstreamLinkRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::UpstreamLinkRecord>(
                    "SELECT user_id, upstream, sealed_refresh_token, last_verified_at, failures
                     FROM upstream_links WHERE user_id = $1
                     ORDER BY last_verified_at DESC, upstream",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn upstream_link_verified(
                &self,
                user_id: &str,
                upstream: &str,
                sealed_refresh_token: Option<&str>,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE upstream_links SET
                        sealed_refresh_token = COALESCE($3, sealed_refresh_token),
                        last_verified_at = CASE WHEN last_verified_at > $4
                                                THEN last_verified_at ELSE $4 END,
                        failures = 0,
                        checking_until = NULL
                     WHERE user_id = $1 AND upstream = $2",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(sealed_refresh_token)
                .bind(at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn claim_upstream_check(
                &self,
                user_id: &str,
                upstream: &str,
                seen_verified_at: i64,
                now: i64,
                until: i64,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "UPDATE upstream_links SET checking_until = $5
                     WHERE user_id = $1 AND upstream = $2 AND last_verified_at = $3
                       AND (checking_until IS NULL OR checking_until <= $4)",
                )
                .bind(user_id)
                .bind(upstream)
                .bind(seen_verified_at)
                .bind(now)
                .bind(until)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn upstream_link_failed(
                &self,
                user_id: &str,
                upstream: &str,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "UPDATE upstream_links SET failures = failures + 1, checking_until = NULL
                     WHERE user_id = $1 AND upstream = $2",
                )
                .bind(user_id)
                .bind(upstream)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_upstream_links_of_user(
                &self,
                user_id: &str,
            ) -> Result<u64, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM upstream_links WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn set_dev_person_disabled(
                &self,
                person: &str,
                disabled: bool,
                at: i64,
            ) -> Result<(), $crate::StoreError> {
                if disabled {
                    sqlx::query(
                        "INSERT INTO dev_upstream_disabled (person, disabled_at) VALUES ($1, $2)
                         ON CONFLICT (person) DO NOTHING",
                    )
                    .bind(person)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                } else {
                    sqlx::query("DELETE FROM dev_upstream_disabled WHERE person = $1")
                        .bind(person)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }

            async fn dev_people_disabled(&self) -> Result<Vec<String>, $crate::StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT person FROM dev_upstream_disabled ORDER BY person")
                        .fetch_all(&self.pool)
                        .await?,
                )
            }
        }
    };
}

pub(crate) use upstream_link_impls;
