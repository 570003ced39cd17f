//! [`PendingGrantStore`](crate::PendingGrantStore) in SQL that is the same on SQLite and
//! PostgreSQL, generated for each backend's store type (see `portable`).
//!
//! Redemption deletes the pending row first (`DELETE … RETURNING`): that write is the
//! compare-and-set that lets exactly one of concurrent sign-ins redeem a grant, and on SQLite it
//! takes the write lock before anything else is read.

macro_rules! pending_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::PendingGrantStore for $store {
            async fn insert_pending_grant(
                &self,
                g: &$crate::PendingGrantRecord,
            ) -> Result<bool, $crate::StoreError> {
                // No conflict target: any of the per-kind unique indexes (or the id) counts.
                Ok(sqlx::query(&format!(
                    "INSERT INTO pending_grants ({})
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    $crate::portable::PENDING_GRANT_COLUMNS
                ))
                .bind(&g.id)
                .bind(&g.email)
                .bind(&g.kind)
                .bind(&g.tenant_id)
                .bind(&g.client_id)
                .bind(&g.granted_by)
                .bind(g.granted_at)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn get_pending_grant(
                &self,
                id: &str,
            ) -> Result<Option<$crate::PendingGrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::PendingGrantRecord>(&format!(
                    "SELECT {} FROM pending_grants WHERE id = $1",
                    $crate::portable::PENDING_GRANT_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn pending_grants_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::PendingGrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::PendingGrantRecord>(&format!(
                    "SELECT {} FROM pending_grants WHERE tenant_id = $1
                     ORDER BY granted_at, id",
                    $crate::portable::PENDING_GRANT_COLUMNS
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn pending_grants_for_email(
                &self,
                email: &str,
            ) -> Result<Vec<$crate::PendingGrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::PendingGrantRecord>(&format!(
                    "SELECT {} FROM pending_grants WHERE email = $1
                     ORDER BY granted_at, id",
                    $crate::portable::PENDING_GRANT_COLUMNS
                ))
                .bind(email)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_pending_grant(&self, id: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM pending_grants WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn redeem_pending_grant(
                &self,
                id: &str,
                user_id: &str,
                at: i64,
            ) -> Result<bool, $crate::StoreError> {
                let mut tx = self.pool.begin().await?;
                let taken = sqlx::query_as::<_, $crate::PendingGrantRecord>(&format!(
                    "DELETE FROM pending_grants WHERE id = $1 RETURNING {}",
                    $crate::portable::PENDING_GRANT_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(grant) = taken else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                let effect = match (
                    grant.kind.as_str(),
                    grant.tenant_id.as_deref(),
                    grant.client_id.as_deref(),
                ) {
                    ($crate::GRANT_APP_ACCESS, _, Some(client_id)) => sqlx::query(
                        "INSERT INTO app_assignments
                           (client_id, principal_type, principal_id, assigned_at, assigned_by)
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(client_id)
                    .bind($crate::PRINCIPAL_USER)
                    .bind(user_id)
                    .bind(at)
                    .bind(&grant.granted_by),
                    ($crate::GRANT_TENANT_ADMIN, Some(tenant_id), _) => sqlx::query(
                        "INSERT INTO tenant_admins (tenant_id, user_id, added_at, added_by)
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(at)
                    .bind(&grant.granted_by),
                    ($crate::GRANT_PLATFORM_ADMIN, _, _) => sqlx::query(
                        "INSERT INTO platform_admins (user_id, granted_by, granted_at)
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(&grant.granted_by)
                    .bind(at),
                    (kind, _, _) => {
                        tx.rollback().await?;
                        return Err($crate::StoreError::Backend(format!(
                            "pending grant {id} of kind {kind} lacks its target"
                        )));
                    }
                };
                effect.execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use pending_impls;
