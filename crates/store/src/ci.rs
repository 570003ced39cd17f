//! What CI workload identity stores (issue 14 item 3): the CI issuers each app trusts, with the
//! audience and claim rules a job's token must meet. Rule lists are JSON; the service layer
//! writes and checks them.

use async_trait::async_trait;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CiIssuerRecord {
    pub id: String,
    pub client_id: String,
    /// The issuer URL, exactly as the job's tokens carry it in `iss`.
    pub issuer: String,
    /// The `aud` the job's token must carry.
    pub audience: String,
    /// JSON array of `{"claim": …, "pattern": …}`.
    pub rules: String,
    pub description: String,
    pub created_at: i64,
    pub created_by: String,
}

#[async_trait]
pub trait CiIssuerStore {
    /// Stores a new trusted issuer for an app. [`StoreError::Conflict`] if the id is taken.
    async fn insert_ci_issuer(&self, issuer: &CiIssuerRecord) -> Result<(), StoreError>;

    /// The issuers an app trusts, oldest first.
    async fn ci_issuers_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<CiIssuerRecord>, StoreError>;

    /// Removes one; false if there was none with that id for that app.
    async fn delete_ci_issuer(&self, client_id: &str, id: &str) -> Result<bool, StoreError>;
}
