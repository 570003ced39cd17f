//! A tenant's apps over the API: register, read, change (including the sign-in kill switch and
//! API access), client secrets (a new one is shown once, in the 201), and public keys for
//! `private_key_jwt`. Thin handlers over [`crate::tenancy::apps`]; responses are views that
//! never carry a secret's hash.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_domain::client::AccessPolicy;
use techpass_oidc::keys::SigningAlg;
use techpass_store::ClientRecord;

use super::{created, paths, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::apps::{self, AppChanges, AppSpec, NewSecret, SecretInfo};
use crate::tenancy::Actor;

/// An app (OIDC client) of a tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppView {
    pub client_id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub homepage: Option<String>,
    /// Confidential apps authenticate (secret or key); public apps use PKCE.
    pub confidential: bool,
    /// The sign-in kill switch.
    pub enabled: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    /// Who may sign in: `assigned`, `members` (the tenant's admins, people in its groups and
    /// vendors it invited) or `officers` (every registered officer, with their consent).
    pub access_policy: String,
    /// Deprecated (read `access_policy`): whether the policy is `assigned`.
    pub user_assignment_required: bool,
    /// `None`: the platform's lifetime.
    pub access_token_lifetime_secs: Option<i64>,
    pub refresh_token_idle_secs: Option<i64>,
    /// Whether this client_credentials app may call this API for its tenant.
    pub api_access: bool,
    /// The JWS algorithm of its ID tokens (and back-channel logout tokens): `RS256` (the
    /// platform default), `ES256` or `EdDSA`.
    #[schema(example = "ES256")]
    pub id_token_signed_response_alg: String,
    /// The JWS algorithm of its JWT access tokens: `RS256` (the platform default), `ES256` or
    /// `EdDSA`.
    #[schema(example = "ES256")]
    pub access_token_signed_response_alg: String,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// The public keys (a JWK set) registered for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub created_at: i64,
}

impl From<ClientRecord> for AppView {
    fn from(c: ClientRecord) -> Self {
        AppView {
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            client_id: c.client_id,
            tenant_id: c.tenant_id,
            name: c.name,
            homepage: c.homepage,
            confidential: c.confidential,
            enabled: c.enabled,
            backchannel_logout_uri: c.backchannel_logout_uri,
            user_assignment_required: c.access_policy == AccessPolicy::Assigned,
            access_policy: c.access_policy.as_str().to_string(),
            access_token_lifetime_secs: c.access_token_lifetime_secs,
            refresh_token_idle_secs: c.refresh_token_idle_secs,
            api_access: c.api_access,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            id_token_signed_response_alg: c
                .id_token_signed_response_alg
                .unwrap_or_else(|| SigningAlg::DEFAULT.as_str().into()),
            access_token_signed_response_alg: c
                .access_token_signed_response_alg
                .unwrap_or_else(|| SigningAlg::DEFAULT.as_str().into()),
            created_at: c.created_at,
        }
    }
}

/// A newly registered app, with its first secret (confidential apps), shown only here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedAppView {
    #[serde(flatten)]
    pub app: AppView,
    pub client_secret: Option<String>,
}

#[utoipa::path(
    get,
    path = paths::APPS,
    tag = "apps",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [AppView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_apps(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<AppView>>> {
    let apps = apps::list(&state, &actor, &tenant_id).await?;
    Ok(Json(apps.into_iter().map(AppView::from).collect()))
}

/// Registers an app of the (active) tenant.
#[utoipa::path(
    post,
    path = paths::APPS,
    tag = "apps",
    params(("tenant_id" = String, Path)),
    request_body = AppSpec,
    responses(
        (status = 201, body = CreatedAppView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The tenant is not active", body = ErrorBody),
    )
)]
pub async fn create_app(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(spec): ApiJson<AppSpec>,
) -> ApiResult<Response> {
    let made = apps::create(&state, &actor, &tenant_id, spec).await?;
    // The service returns the id and secret; the view comes from the stored app.
    let app = apps::get(&state, &actor, &tenant_id, &made.client_id).await?;
    Ok(created(CreatedAppView {
        app: app.into(),
        client_secret: made.client_secret,
    }))
}

#[utoipa::path(
    get,
    path = paths::APP,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = AppView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_app(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(
        apps::get(&state, &actor, &tenant_id, &client_id)
            .await?
            .into(),
    ))
}

/// Changes an app; absent fields stay as they are.
#[utoipa::path(
    patch,
    path = paths::APP,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = AppChanges,
    responses(
        (status = 200, body = AppView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The tenant is not active", body = ErrorBody),
    )
)]
pub async fn update_app(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(changes): ApiJson<AppChanges>,
) -> ApiResult<Json<AppView>> {
    let app = apps::update(&state, &actor, &tenant_id, &client_id, changes).await?;
    Ok(Json(app.into()))
}

/// Deletes the app with its secrets, grants (its tokens stop working at once), assignments,
/// roles and consents; the audit log keeps its history. An automation app cannot delete itself.
#[utoipa::path(
    delete,
    path = paths::APP,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn delete_app(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    apps::delete(&state, &actor, &tenant_id, &client_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The app's secrets (never the secrets themselves).
#[utoipa::path(
    get,
    path = paths::APP_SECRETS,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = [SecretInfo]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_secrets(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<SecretInfo>>> {
    Ok(Json(
        apps::secrets(&state, &actor, &tenant_id, &client_id).await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SecretRequest {
    /// 1 to `apps.secret_max_lifetime_days`; the maximum when absent.
    #[serde(default)]
    pub lifetime_days: Option<i64>,
}

/// A new secret (rotation: the old ones keep working until revoked or expired). The secret is
/// in this response only.
#[utoipa::path(
    post,
    path = paths::APP_SECRETS,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = SecretRequest,
    responses(
        (status = 201, body = NewSecret),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Too many live secrets", body = ErrorBody),
    )
)]
pub async fn add_secret(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<SecretRequest>,
) -> ApiResult<Response> {
    let secret = apps::add_secret(
        &state,
        &actor,
        &tenant_id,
        &client_id,
        request.lifetime_days,
    )
    .await?;
    Ok(created(secret))
}

/// Revokes a secret at once.
#[utoipa::path(
    delete,
    path = paths::APP_SECRET,
    tag = "apps",
    params(
        ("tenant_id" = String, Path),
        ("client_id" = String, Path),
        ("secret_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn revoke_secret(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id, secret_id)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    apps::revoke_secret(&state, &actor, &tenant_id, &client_id, &secret_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JWK set (RFC 7517 §5).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysView {
    /// How many public keys the app now has.
    pub keys: usize,
}

/// Replaces the app's public keys for `private_key_jwt`; an empty set removes them.
#[utoipa::path(
    put,
    path = paths::APP_KEYS,
    tag = "apps",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = JwkSet,
    responses(
        (status = 200, body = KeysView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn set_keys(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(jwks): ApiJson<JwkSet>,
) -> ApiResult<Json<KeysView>> {
    let text = serde_json::to_string(&jwks)
        .map_err(|e| super::ApiError::bad_request(format!("the key set: {e}")))?;
    let keys = apps::set_keys(&state, &actor, &tenant_id, &client_id, &text).await?;
    Ok(Json(KeysView { keys }))
}
