//! [`RevealStore`](crate::RevealStore) in SQL that is the same on SQLite and PostgreSQL.

macro_rules! reveal_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::RevealStore for $store {
            async fn put_reveal(
                &self,
                r: &$crate::RevealRecord,
                now: i64,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query("DELETE FROM reveals WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO reveals (id_hash, owner, sealed, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&r.id_hash)
                .bind(&r.owner)
                .bind(&r.sealed)
                .bind(r.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_reveal(
                &self,
                id_hash: &str,
                owner: &str,
                now: i64,
            ) -> Result<Option<$crate::RevealRecord>, $crate::StoreError> {
                Ok(sqlx::query_as::<_, $crate::RevealRecord>(
                    "DELETE FROM reveals WHERE id_hash = $1 AND owner = $2 AND expires_at > $3
                     RETURNING id_hash, owner, sealed, expires_at",
                )
                .bind(id_hash)
                .bind(owner)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use reveal_impls;
