//! [`CiIssuerStore`](crate::CiIssuerStore) in SQL that is the same on SQLite and PostgreSQL.

macro_rules! ci_issuer_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::CiIssuerStore for $store {
            async fn insert_ci_issuer(
                &self,
                i: &$crate::CiIssuerRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO ci_issuers
                        (id, client_id, issuer, audience, rules, description, created_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&i.id)
                .bind(&i.client_id)
                .bind(&i.issuer)
                .bind(&i.audience)
                .bind(&i.rules)
                .bind(&i.description)
                .bind(i.created_at)
                .bind(&i.created_by)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn ci_issuers_of_client(
                &self,
                client_id: &str,
            ) -> Result<Vec<$crate::CiIssuerRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::CiIssuerRecord>(
                    "SELECT id, client_id, issuer, audience, rules, description, created_at,
                            created_by
                     FROM ci_issuers WHERE client_id = $1 ORDER BY created_at, id",
                )
                .bind(client_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_ci_issuer(
                &self,
                client_id: &str,
                id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(
                    sqlx::query("DELETE FROM ci_issuers WHERE client_id = $1 AND id = $2")
                        .bind(client_id)
                        .bind(id)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1,
                )
            }
        }
    };
}

pub(crate) use ci_issuer_impls;
