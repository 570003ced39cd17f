//! The token response (RFC 6749 §5.1) around what the service layer minted.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub use techpass_service::mint::*;

use super::no_store;

/// RFC 6749 §5.1.
pub fn token_response(
    access: AccessToken,
    id_token: Option<String>,
    refresh_token: Option<String>,
    scope: &[String],
) -> Response {
    let mut body = json!({
        "access_token": access.token,
        "token_type": if access.dpop { "DPoP" } else { "Bearer" },
        "expires_in": access.expires_in,
        "scope": scope.join(" "),
    });
    if let Some(id) = id_token {
        body["id_token"] = json!(id);
    }
    if let Some(rt) = refresh_token {
        body["refresh_token"] = json!(rt);
    }
    no_store(Json(body).into_response())
}
