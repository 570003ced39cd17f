//! A tenant's webhooks over the API: register (the signing secret is shown once, in the 201),
//! list, change its events, delete, send the challenge again (and read why it failed), send a
//! test event, read the delivery log and deliver an event again. Thin handlers over
//! [`crate::webhooks`]; the sealed secret never leaves the store.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_store::DeliveryRecord;

use super::{created, paths, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, Page};
use crate::state::AppState;
use crate::tenancy::Actor;
use crate::webhooks::{self, AttemptOutcome, CreatedWebhook, RotatedSecret, WebhookInfo};

#[utoipa::path(
    get,
    path = paths::WEBHOOKS,
    tag = "webhooks",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [WebhookInfo]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<WebhookInfo>>> {
    Ok(Json(webhooks::list(&state, &actor, &tenant_id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewWebhook {
    /// Where events are POSTed (http(s)).
    pub url: String,
    /// Some of `user-invited`, `user-updated`, `user-deleted`, `app-credentials-expiring`.
    pub events: Vec<String>,
}

/// Registers a webhook and sends it the challenge at once (`verified` says whether it
/// answered); only a verified webhook receives events.
#[utoipa::path(
    post,
    path = paths::WEBHOOKS,
    tag = "webhooks",
    params(("tenant_id" = String, Path)),
    request_body = NewWebhook,
    responses(
        (status = 201, body = CreatedWebhook),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(new): ApiJson<NewWebhook>,
) -> ApiResult<Response> {
    let made = webhooks::create(&state, &actor, &tenant_id, &new.url, &new.events).await?;
    Ok(created(made))
}

#[utoipa::path(
    delete,
    path = paths::WEBHOOK,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    webhooks::delete(&state, &actor, &tenant_id, &webhook_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Whether the endpoint echoed the challenge.
    pub verified: bool,
    /// Why not, when it did not (an HTTP status, no JSON, another value, unreachable).
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct WebhookChange {
    /// The events it receives from now on: one or more of `user-invited`, `user-updated`,
    /// `user-deleted`, `app-credentials-expiring`.
    pub events: Vec<String>,
}

/// Changes the events a webhook receives.
#[utoipa::path(
    patch,
    path = paths::WEBHOOK,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path)),
    request_body = WebhookChange,
    responses(
        (status = 200, body = WebhookInfo),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
    ApiJson(change): ApiJson<WebhookChange>,
) -> ApiResult<Json<WebhookInfo>> {
    Ok(Json(
        webhooks::update_events(&state, &actor, &tenant_id, &webhook_id, &change.events).await?,
    ))
}

/// Sends a signed `test` event to a verified webhook now (recorded in its delivery log).
#[utoipa::path(
    post,
    path = paths::WEBHOOK_TEST,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path)),
    responses(
        (status = 200, body = AttemptOutcome),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The webhook is not verified"),
    )
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<AttemptOutcome>> {
    Ok(Json(
        webhooks::send_test(&state, &actor, &tenant_id, &webhook_id).await?,
    ))
}

/// Rotates the signing secret: the new one is in the answer, shown once; the previous one
/// keeps signing next to it (a second `v1`) until `previous_signs_until`.
#[utoipa::path(
    post,
    path = paths::WEBHOOK_SECRET,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path)),
    responses(
        (status = 200, body = RotatedSecret),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<RotatedSecret>> {
    Ok(Json(
        webhooks::rotate_secret(&state, &actor, &tenant_id, &webhook_id).await?,
    ))
}

/// Delivers a delivered or failed event again now (same body, attempts from zero).
#[utoipa::path(
    post,
    path = paths::WEBHOOK_REDELIVER,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 200, body = AttemptOutcome),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No such delivered or failed delivery"),
    )
)]
pub async fn redeliver(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id, delivery_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<AttemptOutcome>> {
    Ok(Json(
        webhooks::redeliver(&state, &actor, &tenant_id, &webhook_id, &delivery_id).await?,
    ))
}

/// Sends the challenge again (after fixing the endpoint).
#[utoipa::path(
    post,
    path = paths::WEBHOOK_VERIFY,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path)),
    responses(
        (status = 200, body = Verification),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn verify_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Verification>> {
    let failure = webhooks::reverify(&state, &actor, &tenant_id, &webhook_id).await?;
    Ok(Json(Verification {
        verified: failure.is_none(),
        reason: failure,
    }))
}

/// One delivery of an event to a webhook, with its latest attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event: String,
    /// The body that was (or will be) signed and sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        DeliveryView {
            payload: serde_json::from_str(&d.payload)
                .unwrap_or(serde_json::Value::String(d.payload)),
            id: d.id,
            event: d.event,
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            attempts: d.attempts,
            status: d.status.as_str().to_string(),
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
        }
    }
}

/// The delivery log, newest first.
#[utoipa::path(
    get,
    path = paths::WEBHOOK_DELIVERIES,
    tag = "webhooks",
    params(("tenant_id" = String, Path), ("webhook_id" = String, Path), Page),
    responses(
        (status = 200, body = [DeliveryView]),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, webhook_id)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let (limit, offset) = page.bounds()?;
    let list = webhooks::deliveries(&state, &actor, &tenant_id, &webhook_id, limit, offset).await?;
    Ok(Json(list.into_iter().map(DeliveryView::from).collect()))
}
