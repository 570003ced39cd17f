//! [`ResourceStore`](crate::ResourceStore) in SQL that is the same on SQLite and PostgreSQL,
//! generated for each backend's store type (see `portable`).

pub(crate) const RESOURCE_COLUMNS: &str =
    "id, tenant_id, identifier, name, scopes, created_at, created_by";
pub(crate) const RESOURCE_GRANT_COLUMNS: &str =
    "resource_id, client_id, scopes, granted_at, granted_by";

macro_rules! resource_impls {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::ResourceStore for $store {
            async fn insert_resource(
                &self,
                r: &$crate::ApiResourceRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO api_resources ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    $crate::portable_resources::RESOURCE_COLUMNS
                ))
                .bind(&r.id)
                .bind(&r.tenant_id)
                .bind(&r.identifier)
                .bind(&r.name)
                .bind(&r.scopes)
                .bind(r.created_at)
                .bind(&r.created_by)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_resource(
                &self,
                id: &str,
            ) -> Result<Option<$crate::ApiResourceRecord>, $crate::StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM api_resources WHERE id = $1",
                    $crate::portable_resources::RESOURCE_COLUMNS
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn resource_by_identifier(
                &self,
                identifier: &str,
            ) -> Result<Option<$crate::ApiResourceRecord>, $crate::StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM api_resources WHERE identifier = $1",
                    $crate::portable_resources::RESOURCE_COLUMNS
                ))
                .bind(identifier)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn resources_of_tenant(
                &self,
                tenant_id: &str,
            ) -> Result<Vec<$crate::ApiResourceRecord>, $crate::StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM api_resources WHERE tenant_id = $1 ORDER BY identifier",
                    $crate::portable_resources::RESOURCE_COLUMNS
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_resource(&self, id: &str) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query("DELETE FROM api_resources WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn set_resource_grant(
                &self,
                g: &$crate::ResourceGrantRecord,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(&format!(
                    "INSERT INTO resource_grants ({}) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (resource_id, client_id) DO UPDATE
                     SET scopes = excluded.scopes, granted_at = excluded.granted_at,
                         granted_by = excluded.granted_by",
                    $crate::portable_resources::RESOURCE_GRANT_COLUMNS
                ))
                .bind(&g.resource_id)
                .bind(&g.client_id)
                .bind(&g.scopes)
                .bind(g.granted_at)
                .bind(&g.granted_by)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn resource_grant(
                &self,
                resource_id: &str,
                client_id: &str,
            ) -> Result<Option<$crate::ResourceGrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM resource_grants WHERE resource_id = $1 AND client_id = $2",
                    $crate::portable_resources::RESOURCE_GRANT_COLUMNS
                ))
                .bind(resource_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn grants_of_resource(
                &self,
                resource_id: &str,
            ) -> Result<Vec<$crate::ResourceGrantRecord>, $crate::StoreError> {
                Ok(sqlx::query_as(&format!(
                    "SELECT {} FROM resource_grants WHERE resource_id = $1 ORDER BY client_id",
                    $crate::portable_resources::RESOURCE_GRANT_COLUMNS
                ))
                .bind(resource_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_resource_grant(
                &self,
                resource_id: &str,
                client_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                Ok(sqlx::query(
                    "DELETE FROM resource_grants WHERE resource_id = $1 AND client_id = $2",
                )
                .bind(resource_id)
                .bind(client_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }
        }
    };
}

pub(crate) use resource_impls;
