//! Provider metadata (OpenID Connect Discovery 1.0 §4, RFC 8414 §3) and the JWKS (RFC 7517).
//! Both are public and cacheable, and may be read cross-origin (RFC 9700 §2.6 allows CORS here).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use techpass_oidc::paths;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(metadata))
        .route(paths::OAUTH_METADATA, get(metadata))
        .route(paths::JWKS, get(jwks))
}

async fn metadata(State(state): State<AppState>) -> Response {
    public_json(Json(state.metadata.as_ref()).into_response(), 300)
}

async fn jwks(State(state): State<AppState>) -> Response {
    let max_age = state.config.keys.jwks_max_age_secs;
    public_json(Json(state.keys.jwks()).into_response(), max_age)
}

fn public_json(mut response: Response, max_age: u64) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
