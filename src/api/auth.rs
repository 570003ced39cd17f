//! Who is calling the API: a tenant's automation app with a Bearer access token (RFC 6750) for
//! the API audience, or a person with the portal's session cookie (plus the CSRF token on
//! anything but GET). It turns the request into an [`Actor`] or refuses it (401, or 403 for a
//! known caller that may not use the API at all); what the actor may then do is decided by the
//! service layer, never here.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::CookieJar;
use serde::Serialize;

use super::{ApiError, ApiResult};
use crate::accounts;
use crate::provider::resource::{validate_access_token, AccessTokenError};
use crate::signin::{csrf_token, csrf_valid, current_session, Session};
use crate::state::AppState;
use crate::tenancy::{Actor, AppRefusal};

/// The header carrying the session's CSRF token on requests other than GET.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The audience (`aud`) an access token must carry to call the API: the issuer (without a
/// trailing slash) followed by `/api/v1`. Apps ask for it with `resource=` (RFC 8707) in their
/// `client_credentials` token request; a token for any other audience is refused.
pub fn api_audience(state: &AppState) -> String {
    techpass_service::tenancy::resources::api_audience(state)
}

/// An authenticated caller: the actor, and the portal session it came with (if any).
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub session: Option<Session>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        authenticate(state, &parts.method, &parts.headers).await
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Ok(authenticate(state, &parts.method, &parts.headers)
            .await?
            .actor)
    }
}

/// RFC 6750 §3: a 401 (or 403) with its `WWW-Authenticate` challenge.
fn bearer_refusal(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    let challenge = format!(
        "Bearer realm=\"techpass\", error=\"{code}\", error_description=\"{}\"",
        message.replace('"', "'")
    );
    ApiError::new(status, code, message).with_challenge(challenge)
}

fn invalid_token(message: &str) -> ApiError {
    bearer_refusal(StatusCode::UNAUTHORIZED, "invalid_token", message)
}

fn no_api_access(message: &str) -> ApiError {
    bearer_refusal(StatusCode::FORBIDDEN, "insufficient_scope", message)
}

async fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap) -> ApiResult<Caller> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
            })
            .map(|(_, token)| token.trim().to_string())
            .ok_or_else(|| {
                bearer_refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the Authorization header must be `Bearer <access token>`",
                )
            })?;
        let actor = app_actor(state, &token).await?;
        return Ok(Caller {
            actor,
            session: None,
        });
    }
    let jar = CookieJar::from_headers(headers);
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    if cookie.is_some() {
        if let Some(session) = current_session(state, cookie.as_deref()).await? {
            let actor = user_actor(state, method, headers, &session).await?;
            return Ok(Caller {
                actor,
                session: Some(session),
            });
        }
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "sign in to the portal, or send a Bearer access token for the API",
    )
    .with_challenge("Bearer realm=\"techpass\"".into()))
}

/// A `client_credentials` token for the API audience, of an enabled app with API access whose
/// tenant is active. Checked at every request, so withdrawing API access, disabling the app or
/// suspending the tenant takes effect at once.
async fn app_actor(state: &AppState, token: &str) -> ApiResult<Actor> {
    let access = validate_access_token(state, token)
        .await
        .map_err(|error| match error {
            AccessTokenError::Unavailable(e) => ApiError::unavailable(&e),
            AccessTokenError::Invalid(reason) => {
                tracing::info!(%reason, "the API refused an access token");
                invalid_token("the access token is invalid, expired or revoked")
            }
        })?;
    let audience = api_audience(state);
    let for_api = match &access.claims["aud"] {
        serde_json::Value::String(aud) => aud == &audience,
        serde_json::Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(&audience)),
        _ => false,
    };
    if !for_api {
        return Err(invalid_token(&format!(
            "the access token is not for the API; request it with resource={audience}"
        )));
    }
    if access.sub != access.client_id {
        return Err(invalid_token(
            "the access token was issued for a person; the API takes client_credentials tokens",
        ));
    }
    match crate::tenancy::app_actor(state, &access.client_id).await {
        Ok(Ok(actor)) => Ok(actor),
        Ok(Err(refusal)) => Err(match refusal {
            AppRefusal::UnknownOrDisabled => invalid_token("the app is unknown or disabled"),
            AppRefusal::NoApiAccess => {
                no_api_access("this app has no API access; a tenant admin can grant it")
            }
            AppRefusal::NoTenant => no_api_access("only a tenant's app can call the API"),
            AppRefusal::TenantInactive => no_api_access("the app's tenant is not active"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The signed-in person. A request that changes something must carry the session's CSRF
/// token in `X-CSRF-Token`: a cookie alone travels with cross-site requests.
async fn user_actor(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    session: &Session,
) -> ApiResult<Actor> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|csrf| csrf_valid(&state.secrets, session, csrf)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "send the session's CSRF token (from GET /api/v1/me) in X-CSRF-Token",
            ));
        }
    }
    // Past the bound, the upstream confirms the person first (as at /authorize and refresh).
    let verdict = techpass_service::reverify::check(
        state,
        &session.user_id,
        Some(&session.upstream),
        session.auth_time,
        None,
    )
    .await?;
    if !verdict.allows() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the sign-in could not be confirmed with the upstream again; sign in again",
        ));
    }
    let user = accounts::get(state, &session.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the session's account no longer exists; sign in again",
            )
        })?;
    if accounts::blocked(&user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_blocked",
            format!("the account is {}", user.status.as_str()),
        ));
    }
    Ok(accounts::actor(state, &user).await?)
}

/// The caller as the API sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallerView {
    /// `user` (portal session) or `app` (access token).
    pub kind: String,
    pub user_id: Option<String>,
    pub platform_admin: bool,
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    /// For a session: the value to send in `X-CSRF-Token` on anything but GET.
    pub csrf_token: Option<String>,
}

/// Who is calling, and (for a session) the CSRF token its changes must carry.
#[utoipa::path(
    get,
    path = super::paths::ME,
    tag = "caller",
    responses(
        (status = 200, body = CallerView),
        (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
    )
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Json<CallerView> {
    let csrf = caller
        .session
        .as_ref()
        .map(|s| csrf_token(&state.secrets, s));
    Json(match caller.actor {
        Actor::App {
            client_id,
            tenant_id,
        } => CallerView {
            kind: "app".into(),
            user_id: None,
            platform_admin: false,
            client_id: Some(client_id),
            tenant_id: Some(tenant_id),
            csrf_token: None,
        },
        actor => CallerView {
            kind: "user".into(),
            platform_admin: actor.is_platform_admin(),
            user_id: actor.user_id().map(String::from),
            client_id: None,
            tenant_id: None,
            csrf_token: csrf,
        },
    })
}

/// This document (OpenAPI 3.1). Public: it describes the API, not anyone's data.
#[utoipa::path(
    get,
    path = super::paths::OPENAPI,
    tag = "caller",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_document(State(state): State<AppState>) -> Response {
    Json(super::document(&state)).into_response()
}
