//! The OpenID Provider side: the endpoints tenant apps talk to (authorization, token, device
//! authorization, userinfo, introspection, revocation). Handlers parse input once into typed
//! requests, run the shared checks, and map results and [`OAuthError`]s to RFC-shaped responses
//! here.

pub mod authorize;
pub mod consent;
pub mod device;
pub mod gate;
pub mod logout;
mod mint;
pub mod resource;
pub mod token;

/// Apps as OAuth clients: registration, lookup and authentication (the service layer's).
pub use techpass_service::clients;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use techpass_oidc::{paths, OAuthError};

use crate::state::AppState;

/// Scopes TechPass understands and the scope parameter's grammar (the service layer's).
pub use techpass_service::scopes::{parse_scope, SCOPES};

/// The endpoints where client credentials are presented, limited per source address.
pub fn credential_router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(paths::TOKEN, post(token::endpoint))
        .route(paths::DEVICE_AUTHORIZATION, post(device::endpoint))
        .route(paths::INTROSPECT, post(resource::introspect))
        .route(paths::REVOKE, post(resource::revoke))
        .route_layer(axum::middleware::from_fn_with_state(
            state.rate_limits.clone(),
            crate::ratelimit::per_address,
        ))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(crate::paths::CONSENT, post(consent::submit))
        .route(
            paths::USERINFO,
            get(resource::userinfo_get).post(resource::userinfo_post),
        )
        .route(
            paths::END_SESSION,
            get(logout::end_session_get).post(logout::end_session_post),
        )
}

/// `Cache-Control: no-store` (RFC 6749 §5.1) on anything carrying tokens.
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON error response with the code's status. Server errors are logged with their detail and
/// shown without it.
pub fn error_response(error: &OAuthError) -> Response {
    if error.code == techpass_oidc::ErrorCode::ServerError {
        tracing::error!(detail = %error.detail, "server error");
    } else if !error.detail.is_empty() {
        tracing::info!(error = error.code.as_str(), detail = %error.detail, "request refused");
    }
    let status = StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    no_store((status, Json(error.body())).into_response())
}
