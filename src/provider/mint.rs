//! The token response (RFC 6749 §5.1) around what the service layer minted.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub use techpass_service::mint::*;

use techpass_service::grants::Tokens;

use super::no_store;

/// RFC 6749 §5.1, with RFC 8693 §2.2.1's `issued_token_type` after a token exchange.
pub fn token_response(t: Tokens) -> Response {
    let mut body = json!({
        "access_token": t.access.token,
        "token_type": if t.access.dpop { "DPoP" } else { "Bearer" },
        "expires_in": t.access.expires_in,
        "scope": t.scope.join(" "),
    });
    if let Some(id) = t.id_token {
        body["id_token"] = json!(id);
    }
    if let Some(rt) = t.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    if let Some(issued) = t.issued_token_type {
        body["issued_token_type"] = json!(issued);
    }
    no_store(Json(body).into_response())
}
