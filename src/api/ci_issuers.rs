//! The CI issuers an app trusts, over the API (CI workload identity): register one, list, and
//! remove. Thin handlers over [`crate::tenancy::ci_issuers`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use techpass_service::tenancy::ci_issuers::{self, ClaimRule, NewCiIssuer};
use techpass_store::CiIssuerRecord;

use super::{created, paths, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::Actor;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CiIssuerView {
    pub id: String,
    pub client_id: String,
    /// The `iss` of the CI jobs' tokens.
    pub issuer: String,
    /// The `aud` their tokens must carry.
    pub audience: String,
    /// Every rule must match the job token's claims (`*` matches any run of characters).
    pub rules: Vec<ClaimRule>,
    pub description: String,
    pub created_at: i64,
    pub created_by: String,
}

impl From<CiIssuerRecord> for CiIssuerView {
    fn from(r: CiIssuerRecord) -> Self {
        CiIssuerView {
            rules: ci_issuers::rules_of(&r).unwrap_or_default(),
            id: r.id,
            client_id: r.client_id,
            issuer: r.issuer,
            audience: r.audience,
            description: r.description,
            created_at: r.created_at,
            created_by: r.created_by,
        }
    }
}

#[utoipa::path(
    get,
    path = paths::APP_CI_ISSUERS,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = [CiIssuerView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_ci_issuers(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<CiIssuerView>>> {
    let listed = ci_issuers::list(&state, &actor, &tenant_id, &client_id).await?;
    Ok(Json(listed.into_iter().map(CiIssuerView::from).collect()))
}

/// Trusts a CI issuer for the app: jobs whose ID token comes from `issuer`, carries
/// `audience` and meets every rule may exchange it at `/token` (RFC 8693) for a short-lived
/// access token of the app. The app may use the token-exchange grant from then on. People
/// only: an automation app cannot register one.
#[utoipa::path(
    post,
    path = paths::APP_CI_ISSUERS,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = NewCiIssuer,
    responses(
        (status = 201, body = CiIssuerView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The app trusts as many issuers as it may", body = ErrorBody),
    )
)]
pub async fn add_ci_issuer(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(new): ApiJson<NewCiIssuer>,
) -> ApiResult<Response> {
    let made = ci_issuers::create(&state, &actor, &tenant_id, &client_id, new).await?;
    Ok(created(CiIssuerView::from(made)))
}

/// Stops trusting a CI issuer: its jobs' next exchanges are refused.
#[utoipa::path(
    delete,
    path = paths::APP_CI_ISSUER,
    tag = "apps",
    params(
        ("tenant_id" = String, Path),
        ("client_id" = String, Path),
        ("issuer_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn remove_ci_issuer(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id, issuer_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    ci_issuers::delete(&state, &actor, &tenant_id, &client_id, &issuer_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
