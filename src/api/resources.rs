//! A tenant's API resources over the API (RFC 8707): register one (its identifier is the `aud`
//! of the tokens minted for it, with the scopes it defines), list, delete, and grant or withdraw
//! an app's scopes of it. Thin handlers over [`crate::tenancy::resources`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_store::{ApiResourceRecord, ResourceGrantRecord};

use super::{created, paths, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::resources::{self, NewResource};
use crate::tenancy::Actor;

fn list_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    pub id: String,
    pub tenant_id: String,
    /// The `resource` apps send, and the `aud` of their tokens.
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl From<ApiResourceRecord> for ResourceView {
    fn from(r: ApiResourceRecord) -> Self {
        ResourceView {
            scopes: list_of(&r.scopes),
            id: r.id,
            tenant_id: r.tenant_id,
            identifier: r.identifier,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceGrantView {
    pub resource_id: String,
    pub client_id: String,
    /// The scopes of the resource the app may request.
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

impl From<ResourceGrantRecord> for ResourceGrantView {
    fn from(g: ResourceGrantRecord) -> Self {
        ResourceGrantView {
            scopes: list_of(&g.scopes),
            resource_id: g.resource_id,
            client_id: g.client_id,
            granted_at: g.granted_at,
        }
    }
}

#[utoipa::path(
    get,
    path = paths::RESOURCES,
    tag = "resources",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [ResourceView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_resources(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<ResourceView>>> {
    let listed = resources::list(&state, &actor, &tenant_id).await?;
    Ok(Json(listed.into_iter().map(ResourceView::from).collect()))
}

#[utoipa::path(
    post,
    path = paths::RESOURCES,
    tag = "resources",
    params(("tenant_id" = String, Path)),
    request_body = NewResource,
    responses(
        (status = 201, body = ResourceView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The identifier is registered already", body = ErrorBody),
    )
)]
pub async fn create_resource(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(new): ApiJson<NewResource>,
) -> ApiResult<Response> {
    let made = resources::create(&state, &actor, &tenant_id, new).await?;
    Ok(created(ResourceView::from(made)))
}

/// Deletes a resource and every grant on it.
#[utoipa::path(
    delete,
    path = paths::RESOURCE,
    tag = "resources",
    params(("tenant_id" = String, Path), ("resource_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn delete_resource(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, resource_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    resources::delete(&state, &actor, &tenant_id, &resource_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = paths::RESOURCE_GRANTS,
    tag = "resources",
    params(("tenant_id" = String, Path), ("resource_id" = String, Path)),
    responses(
        (status = 200, body = [ResourceGrantView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_resource_grants(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, resource_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<ResourceGrantView>>> {
    let listed = resources::grants(&state, &actor, &tenant_id, &resource_id).await?;
    Ok(Json(
        listed.into_iter().map(ResourceGrantView::from).collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ScopeGrant {
    /// Scopes the resource defines; the app's tokens for the resource carry only these.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Lets one of the tenant's apps ask tokens for the resource with these scopes (replacing what
/// it had). People only: an automation app cannot grant scopes.
#[utoipa::path(
    put,
    path = paths::RESOURCE_GRANT,
    tag = "resources",
    params(
        ("tenant_id" = String, Path),
        ("resource_id" = String, Path),
        ("client_id" = String, Path),
    ),
    request_body = ScopeGrant,
    responses(
        (status = 200, body = ResourceGrantView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn grant_resource(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, resource_id, client_id)): ApiPath<(String, String, String)>,
    ApiJson(grant): ApiJson<ScopeGrant>,
) -> ApiResult<Json<ResourceGrantView>> {
    let made = resources::grant(
        &state,
        &actor,
        &tenant_id,
        &resource_id,
        &client_id,
        grant.scopes,
    )
    .await?;
    Ok(Json(made.into()))
}

/// Withdraws the app's grant: its next token request for the resource is `invalid_target`.
#[utoipa::path(
    delete,
    path = paths::RESOURCE_GRANT,
    tag = "resources",
    params(
        ("tenant_id" = String, Path),
        ("resource_id" = String, Path),
        ("client_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn revoke_resource(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, resource_id, client_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    resources::revoke(&state, &actor, &tenant_id, &resource_id, &client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
