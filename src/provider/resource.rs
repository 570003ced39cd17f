//! Endpoints that take tokens back: userinfo (OpenID Connect Core §5.3, RFC 6750), introspection
//! (RFC 7662) and revocation (RFC 7009). Each parses the request, authenticates the caller and
//! calls one function of the service layer (`techpass_service::tokens`), which runs every check.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use techpass_oidc::{ErrorCode, Params};
use techpass_service::tokens::{self, UserinfoRefusal};

pub use techpass_service::tokens::{validate_access_token, AccessClaims, AccessTokenError};

use super::token::{authenticated_client, form_params};
use super::{error_response, no_store};
use crate::client_address::ClientAddress;
use crate::state::AppState;

/// The authentication scheme a token came with (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// RFC 6750 §3: the challenge a resource server answers with.
fn bearer_error(status: StatusCode, code: Option<ErrorCode>, description: &str) -> Response {
    challenge_error(Scheme::Bearer, status, code, description)
}

/// The challenge of `scheme` (RFC 9449 §7.1: `DPoP` with the accepted proof algorithms).
fn challenge_error(
    scheme: Scheme,
    status: StatusCode,
    code: Option<ErrorCode>,
    description: &str,
) -> Response {
    let name = match scheme {
        Scheme::Bearer => "Bearer realm=\"techpass\"".to_string(),
        Scheme::Dpop => format!(
            "DPoP realm=\"techpass\", algs=\"{}\"",
            techpass_oidc::assertion::ALGORITHMS.join(" ")
        ),
    };
    let challenge = match code {
        Some(code) => format!(
            "{name}, error=\"{}\", error_description=\"{}\"",
            code.as_str(),
            description.replace('"', "'")
        ),
        None => name,
    };
    let mut response = match code {
        Some(code) => (
            status,
            Json(json!({"error": code.as_str(), "error_description": description})),
        )
            .into_response(),
        None => status.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(response)
}

fn bearer_token(headers: &HeaderMap) -> Result<Option<(Scheme, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ())?;
    match text.split_once(' ') {
        Some((scheme, token)) if !token.trim().is_empty() => {
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                Scheme::Bearer
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Scheme::Dpop
            } else {
                return Err(());
            };
            Ok(Some((scheme, token.trim().to_string())))
        }
        _ => Err(()),
    }
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, "GET", &headers, None).await
}

pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = if body.is_empty() {
        None
    } else {
        match form_params(&headers, &body) {
            Ok(p) => Some(p),
            Err(e) => {
                return bearer_error(
                    StatusCode::BAD_REQUEST,
                    Some(ErrorCode::InvalidRequest),
                    &e.description,
                )
            }
        }
    };
    userinfo(&state, "POST", &headers, form.as_ref()).await
}

async fn userinfo(
    state: &AppState,
    method: &str,
    headers: &HeaderMap,
    form: Option<&Params>,
) -> Response {
    let header_token = match bearer_token(headers) {
        Ok(t) => t,
        Err(()) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::InvalidRequest),
                "malformed Authorization header",
            )
        }
    };
    let form_token = form
        .and_then(|f| f.get("access_token"))
        .map(|t| (Scheme::Bearer, t.to_string()));
    let (scheme, token) = match (header_token, form_token) {
        (Some(_), Some(_)) => {
            // RFC 6750 §2: one method per request.
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::InvalidRequest),
                "send the token once",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
    };
    // Under the DPoP scheme, the proof of the key for this request and this token (RFC 9449
    // §7.1); a bearer token with a proof is still a bearer token.
    let proven = match scheme {
        Scheme::Bearer => None,
        Scheme::Dpop => {
            let proofs = super::token::dpop_proofs(headers);
            match techpass_service::dpop::check(
                state,
                &proofs,
                method,
                &state.metadata.userinfo_endpoint,
                Some(&token),
            )
            .await
            {
                Ok(Some(jkt)) => Some(jkt),
                Ok(None) => {
                    return challenge_error(
                        Scheme::Dpop,
                        StatusCode::UNAUTHORIZED,
                        Some(ErrorCode::InvalidDpopProof),
                        "the DPoP scheme needs a DPoP proof",
                    )
                }
                Err(e) if e.code == ErrorCode::InvalidDpopProof => {
                    return challenge_error(
                        Scheme::Dpop,
                        StatusCode::UNAUTHORIZED,
                        Some(e.code),
                        &e.description,
                    )
                }
                Err(e) => return error_response(&e),
            }
        }
    };
    let presentation = match &proven {
        Some(jkt) => tokens::Presentation::Dpop(jkt),
        None => tokens::Presentation::Bearer,
    };
    match tokens::userinfo(state, &token, presentation).await {
        Ok(claims) => no_store(Json(Value::Object(claims)).into_response()),
        Err(UserinfoRefusal::InvalidToken(description)) => challenge_error(
            scheme,
            StatusCode::UNAUTHORIZED,
            Some(ErrorCode::InvalidToken),
            description,
        ),
        Err(UserinfoRefusal::WrongPresentation(description)) => challenge_error(
            Scheme::Dpop,
            StatusCode::UNAUTHORIZED,
            Some(ErrorCode::InvalidToken),
            description,
        ),
        Err(UserinfoRefusal::InsufficientScope) => challenge_error(
            scheme,
            StatusCode::FORBIDDEN,
            Some(ErrorCode::InsufficientScope),
            "the openid scope is required",
        ),
        Err(UserinfoRefusal::Unavailable(e)) => error_response(&e),
    }
}

/// RFC 7662. A client may introspect only tokens issued to it; anything else is inactive.
pub async fn introspect(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let client = match authenticated_client(
        &state,
        &headers,
        &params,
        address.map(|Extension(a)| a),
    )
    .await
    {
        Ok(c) => c,
        Err(response) => return response,
    };
    let token = match params.require("token") {
        Ok(t) => t.to_string(),
        Err(e) => return error_response(&e),
    };
    match tokens::introspect(&state, &client, &token).await {
        Ok(Some(answer)) => no_store(Json(answer).into_response()),
        Ok(None) => no_store(Json(json!({"active": false})).into_response()),
        Err(e) => error_response(&e),
    }
}

/// RFC 7009. Revoking a refresh token revokes its grant, and with it every access token of the
/// grant (RFC 7009 §2.1 SHOULD). A token of another client is refused (`unauthorized_client`)
/// and stays valid; an unknown or dead token is a 200 (§2.2).
pub async fn revoke(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let client = match authenticated_client(
        &state,
        &headers,
        &params,
        address.map(|Extension(a)| a),
    )
    .await
    {
        Ok(c) => c,
        Err(response) => return response,
    };
    let token = match params.require("token") {
        Ok(t) => t.to_string(),
        Err(e) => return error_response(&e),
    };
    match tokens::revoke(&state, &client, &token).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => error_response(&e),
    }
}
