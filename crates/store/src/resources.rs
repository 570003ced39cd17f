//! What a tenant's API resources store (RFC 8707): the resource (its identifier is the `aud` of
//! the tokens minted for it, unique across tenants), the scopes it defines, and which app may
//! request which of them. Scope lists are JSON arrays; the service layer checks their contents.

use async_trait::async_trait;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiResourceRecord {
    pub id: String,
    pub tenant_id: String,
    /// An absolute URI: the `aud` of the access tokens minted for it.
    pub identifier: String,
    pub name: String,
    /// JSON array of the scope names the resource defines.
    pub scopes: String,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResourceGrantRecord {
    pub resource_id: String,
    pub client_id: String,
    /// JSON array: the scopes of the resource this app may request.
    pub scopes: String,
    pub granted_at: i64,
    pub granted_by: String,
}

#[async_trait]
pub trait ResourceStore {
    /// Stores a new resource. [`StoreError::Conflict`] if the id or the identifier is taken
    /// (by any tenant: one audience has one owner).
    async fn insert_resource(&self, resource: &ApiResourceRecord) -> Result<(), StoreError>;

    async fn get_resource(&self, id: &str) -> Result<Option<ApiResourceRecord>, StoreError>;

    /// The resource whose identifier is exactly `identifier`.
    async fn resource_by_identifier(
        &self,
        identifier: &str,
    ) -> Result<Option<ApiResourceRecord>, StoreError>;

    /// The tenant's resources, by identifier.
    async fn resources_of_tenant(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<ApiResourceRecord>, StoreError>;

    /// Deletes a resource and its grants in one statement. False if unknown.
    async fn delete_resource(&self, id: &str) -> Result<bool, StoreError>;

    /// Grants an app scopes of a resource, replacing what it had (one row per resource and
    /// app).
    async fn set_resource_grant(&self, grant: &ResourceGrantRecord) -> Result<(), StoreError>;

    /// What `client_id` may request of the resource, if anything.
    async fn resource_grant(
        &self,
        resource_id: &str,
        client_id: &str,
    ) -> Result<Option<ResourceGrantRecord>, StoreError>;

    /// The grants of a resource, by client id.
    async fn grants_of_resource(
        &self,
        resource_id: &str,
    ) -> Result<Vec<ResourceGrantRecord>, StoreError>;

    /// Withdraws an app's grant on a resource. False if it had none.
    async fn delete_resource_grant(
        &self,
        resource_id: &str,
        client_id: &str,
    ) -> Result<bool, StoreError>;
}
