//! Tenants' webhooks and their deliveries. A delivery is stored with the event that caused it
//! and delivered by a background job on any replica, leased like outbox emails.

use async_trait::async_trait;
use techpass_domain::tenancy::DeliveryStatus;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRecord {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// Event names (`user-invited`, `user-updated`, `user-deleted`,
    /// `app-credentials-expiring`).
    #[sqlx(try_from = "crate::column::JsonList")]
    pub events: Vec<String>,
    /// The signing secret, sealed under the master key (it must be recoverable to sign).
    pub secret_sealed: Vec<u8>,
    /// Set once the endpoint answered the registration challenge.
    pub verified_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    /// The exact JSON body that is signed and sent.
    pub payload: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    #[sqlx(try_from = "crate::column::Stored<DeliveryStatus>")]
    pub status: DeliveryStatus,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[async_trait]
pub trait WebhookStore {
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError>;

    async fn get_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError>;

    /// The tenant's webhooks, oldest first.
    async fn webhooks_of_tenant(&self, tenant_id: &str) -> Result<Vec<WebhookRecord>, StoreError>;

    async fn mark_webhook_verified(&self, id: &str, at: i64) -> Result<bool, StoreError>;

    /// Deletes the webhook and its deliveries. False if unknown.
    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;

    async fn insert_delivery(&self, delivery: &DeliveryRecord) -> Result<(), StoreError>;

    /// Up to `limit` pending deliveries due at `now`, leased until `lease_until`
    /// (`next_attempt_at` set, `attempts` + 1) in one statement: concurrent callers never get
    /// the same delivery.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Records an attempt's result: `status` delivered, pending (retry at `next_attempt_at`) or
    /// failed.
    #[allow(clippy::too_many_arguments)]
    async fn record_delivery_attempt(
        &self,
        id: &str,
        status: DeliveryStatus,
        status_code: Option<i64>,
        error: Option<&str>,
        next_attempt_at: i64,
        at: i64,
    ) -> Result<(), StoreError>;

    /// Records the outcome of a challenge sent at `at`: `error` says why it failed, `None` that
    /// it was answered. False if the webhook is unknown.
    async fn record_webhook_challenge(
        &self,
        id: &str,
        at: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// The last challenge's time and failure reason (`None` after a success), if one was sent.
    async fn webhook_challenge(
        &self,
        id: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError>;

    /// Replaces the subscribed events. False if the webhook is unknown.
    async fn set_webhook_events(&self, id: &str, events: &[String]) -> Result<bool, StoreError>;

    /// Queues a delivered or failed delivery of `webhook_id` again, due at `now` with its
    /// attempts counted from zero (the log keeps one row per event). False if there is no such
    /// delivery of that webhook, or it is already pending.
    async fn requeue_delivery(
        &self,
        id: &str,
        webhook_id: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Claims one pending delivery now (as [`WebhookStore::claim_deliveries`] does, leased
    /// until `lease_until`), for an attempt made at once; `None` if it is not pending or a job
    /// holds it.
    async fn claim_delivery(
        &self,
        id: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Replaces the signing secret with `sealed`, keeping the current one as the previous
    /// secret until `previous_until`. False if the webhook is unknown.
    async fn rotate_webhook_secret(
        &self,
        id: &str,
        sealed: &[u8],
        previous_until: i64,
    ) -> Result<bool, StoreError>;

    /// The previous secret while it still signs (its `previous_until` after `now`).
    async fn webhook_previous_secret(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError>;

    /// The webhook's deliveries, newest first.
    async fn deliveries_of_webhook(
        &self,
        webhook_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
}
