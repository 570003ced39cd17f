//! The token endpoint (RFC 6749 §3.2): parse the form, authenticate the client, hand the typed
//! request to the service layer's grants ([`techpass_service::grants`]), answer with the
//! token response or the RFC's error.

use axum::body::Bytes;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Extension;
use techpass_oidc::{ErrorCode, OAuthError, Params};
use techpass_service::grants::{self, TokenRequest};

use super::clients::{authenticate, claimed_client_id, AuthMethod, Client};
use super::error_response;
use super::mint::token_response;
use crate::client_address::ClientAddress;
use crate::state::AppState;

/// Parses a form body, refusing other content types (RFC 6749 §3.2).
pub fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body)
}

/// Authenticates the client as a response-shaped error (401 with `WWW-Authenticate` after a
/// failed Basic attempt, RFC 6749 §5.2). Failures are throttled per (claimed client, address),
/// checked before any secret is looked at; an authenticated client's traffic is limited per
/// client ([`crate::ratelimit`]).
pub async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    address: Option<ClientAddress>,
) -> Result<Client, Response> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let address = address.map_or(IpAddr::from([0, 0, 0, 0]), |ClientAddress(ip)| ip);
    let claimed = claimed_client_id(authorization, params);
    if let Some(claimed) = &claimed {
        if let Err(wait) = state.rate_limits.check_failures(claimed, address) {
            tracing::warn!(client_id = %claimed, %address, "rate limit: too many failed authentications");
            return Err(crate::ratelimit::too_many_requests(wait));
        }
    }
    let client = authenticate_client(state, authorization, params).await;
    match (&client, &claimed) {
        (Err(_), Some(claimed)) => state.rate_limits.authentication_failed(claimed, address),
        (Ok(client), _) => {
            if let Err(wait) = state.rate_limits.check_client(&client.id) {
                tracing::warn!(client_id = %client.id, "rate limit: too many requests for one client");
                return Err(crate::ratelimit::too_many_requests(wait));
            }
        }
        (Err(_), None) => {}
    }
    client
}

async fn authenticate_client(
    state: &AppState,
    authorization: Option<&[u8]>,
    params: &Params,
) -> Result<Client, Response> {
    if techpass_service::clients::is_credential_free_exchange(authorization, params) {
        return techpass_service::clients::identify_for_exchange(state.store.as_ref(), params)
            .await
            .map_err(|failure| error_response(&failure.error));
    }
    let now = state.clock.now().as_secs();
    let audiences = [
        state.metadata.token_endpoint.as_str(),
        state.metadata.issuer.as_str(),
    ];
    authenticate(
        state.store.as_ref(),
        &state.secrets,
        now,
        authorization,
        params,
        &audiences,
    )
    .await
    .map_err(|failure| {
        let mut response = error_response(&failure.error);
        if failure.error.code == ErrorCode::InvalidClient && failure.method == AuthMethod::Basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"techpass\""),
            );
        }
        response
    })
}

/// The request's `DPoP` header values (RFC 9449 §4.1); one that is not text counts as a proof
/// (and fails its check) rather than vanishing.
pub fn dpop_proofs(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(techpass_oidc::dpop::HEADER)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect()
}

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
    let result = match TokenRequest::parse(&params) {
        Ok(request) => {
            match techpass_service::dpop::check(
                &state,
                &dpop_proofs(&headers),
                "POST",
                &state.metadata.token_endpoint,
                None,
            )
            .await
            {
                Ok(jkt) => grants::run(&state, &client, request, jkt.as_deref()).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    // A credential-free token exchange is authenticated by the CI job's token: a refused one
    // counts as a failed authentication of (app, address), as a wrong secret would.
    if let Err(e) = &result {
        let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if e.code == ErrorCode::InvalidGrant
            && techpass_service::clients::is_credential_free_exchange(authorization, &params)
        {
            let address = address.map_or(IpAddr::from([0, 0, 0, 0]), |ClientAddress(ip)| ip);
            state.rate_limits.authentication_failed(&client.id, address);
        }
    }
    match result {
        Ok(t) => token_response(t),
        Err(e) => error_response(&e),
    }
}
