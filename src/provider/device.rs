//! The device authorization endpoint (RFC 8628 §3.1–3.2): parse the form, authenticate the
//! client as at the token endpoint (a public app names itself; a confidential one presents its
//! credentials, with the same failure limits), and answer with the codes the service layer
//! issued ([`techpass_service::device`]) or the RFC's error.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use techpass_service::device;

use super::token::{authenticated_client, form_params};
use super::{error_response, no_store};
use crate::client_address::ClientAddress;
use crate::state::AppState;

pub async fn endpoint(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let address = address.map(|Extension(a)| a);
    let client = match authenticated_client(&state, &headers, &params, address).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    match device::authorize_device(&state, &client, params.get("scope")).await {
        Ok(codes) => no_store(Json(codes).into_response()),
        Err(e) => error_response(&e),
    }
}
