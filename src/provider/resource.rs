//! Endpoints that take tokens back: userinfo (OpenID Connect Core §5.3, RFC 6750), introspection
//! (RFC 7662) and revocation (RFC 7009). Every check runs on every call (signature, expiry,
//! revocation of the token and of its grant), so a revocation takes effect at the next request.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use techpass_oidc::{ErrorCode, OAuthError, Params};

use super::clients::{find_client, Client};
use super::mint::{profile_claims, PURPOSE_REFRESH};
use super::token::{authenticated_client, form_params};
use super::{error_response, no_store};
use crate::client_address::ClientAddress;
use crate::state::AppState;

/// A verified access token.
#[derive(Debug)]
pub struct AccessClaims {
    pub claims: Value,
    pub sub: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub jti: String,
    pub exp: i64,
    pub grant_id: Option<String>,
}

/// Verifies an access token TechPass issued and that nothing has revoked it. The reason of a
/// refusal is for logs only.
pub async fn validate_access_token(state: &AppState, token: &str) -> Result<AccessClaims, String> {
    let (typ, claims) = state.keys.verify_jwt(token).map_err(|e| e.to_string())?;
    let typ = typ.to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err("not an access token".into());
    }
    if claims["iss"] != state.metadata.issuer.as_str() {
        return Err("issued by someone else".into());
    }
    let now = state.clock.now().as_secs();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if now >= exp {
        return Err("expired".into());
    }
    let text = |k: &str| claims[k].as_str().map(String::from);
    let jti = text("jti").ok_or("no jti")?;
    let revoked = state
        .store
        .is_access_token_revoked(&jti)
        .await
        .map_err(|e| e.to_string())?;
    if revoked {
        return Err("revoked".into());
    }
    let grant_id = text("gid");
    if let Some(gid) = &grant_id {
        let grant = state
            .store
            .get_grant(gid)
            .await
            .map_err(|e| e.to_string())?;
        match grant {
            Some(g) if g.revoked_at.is_none() && now < g.expires_at => {}
            _ => return Err("its grant was revoked or has ended".into()),
        }
    }
    Ok(AccessClaims {
        sub: text("sub").ok_or("no sub")?,
        client_id: text("client_id").ok_or("no client_id")?,
        scope: text("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        jti,
        exp,
        grant_id,
        claims,
    })
}

/// RFC 6750 §3: the challenge a resource server answers with.
fn bearer_error(status: StatusCode, code: Option<ErrorCode>, description: &str) -> Response {
    let challenge = match code {
        Some(code) => format!(
            "Bearer realm=\"techpass\", error=\"{}\", error_description=\"{}\"",
            code.as_str(),
            description.replace('"', "'")
        ),
        None => "Bearer realm=\"techpass\"".to_string(),
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

fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ())?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(()),
    }
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, &headers, None).await
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
    userinfo(&state, &headers, form.as_ref()).await
}

async fn userinfo(state: &AppState, headers: &HeaderMap, form: Option<&Params>) -> Response {
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
    let form_token = form.and_then(|f| f.get("access_token")).map(String::from);
    let token = match (header_token, form_token) {
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
    let access = match validate_access_token(state, &token).await {
        Ok(a) => a,
        Err(reason) => {
            tracing::info!(%reason, "userinfo refused a token");
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some(ErrorCode::InvalidToken),
                "the access token is invalid, expired or revoked",
            );
        }
    };
    if !access.scope.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some(ErrorCode::InsufficientScope),
            "the openid scope is required",
        );
    }
    let user = match state.store.get_user(&access.sub).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some(ErrorCode::InvalidToken),
                "the user no longer exists",
            )
        }
        Err(e) => return error_response(&OAuthError::server_error(e)),
    };
    let client = match find_client(state.store.as_ref(), &access.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some(ErrorCode::InvalidToken),
                "the app no longer exists",
            )
        }
        Err(e) => return error_response(&OAuthError::server_error(e)),
    };
    match super::gate::enforce(state, &user, &client, "userinfo", None).await {
        Ok(_) => {}
        Err(super::gate::Refusal::Unavailable(e)) => {
            return error_response(
                &OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                    .with_detail(e.to_string()),
            )
        }
        Err(super::gate::Refusal::Denied(_)) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some(ErrorCode::InvalidToken),
                "access to this app has been withdrawn",
            )
        }
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    claims.insert("account_type".into(), json!(user.account_type));
    profile_claims(&user, &access.scope, &mut claims);
    no_store(Json(Value::Object(claims)).into_response())
}

fn inactive() -> Response {
    no_store(Json(json!({"active": false})).into_response())
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
    if let Ok(access) = validate_access_token(&state, &token).await {
        if access.client_id != client.id {
            return inactive();
        }
        if !gate_allows(&state, &access.sub, &client).await {
            return inactive();
        }
        let c = &access.claims;
        return no_store(
            Json(json!({
                "active": true,
                "token_type": "Bearer",
                "scope": access.scope.join(" "),
                "client_id": access.client_id,
                "sub": access.sub,
                "aud": c["aud"],
                "iss": c["iss"],
                "exp": access.exp,
                "iat": c["iat"],
                "jti": access.jti,
            }))
            .into_response(),
        );
    }
    match refresh_token_of(&state, &token).await {
        // Another client's refresh token is none of this client's business.
        Ok(Some((grant, _))) if grant.client_id != client.id => inactive(),
        Ok(Some((grant, _)))
            if !gate_allows(&state, grant.user_id.as_deref().unwrap_or(""), &client).await =>
        {
            inactive()
        }
        Ok(Some((grant, expires_at))) => no_store(
            Json(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": grant.scope,
                "client_id": grant.client_id,
                "sub": grant.user_id,
                "iss": state.metadata.issuer,
                "exp": expires_at,
                "iat": grant.created_at,
            }))
            .into_response(),
        ),
        Ok(None) => inactive(),
        Err(e) => error_response(&e),
    }
}

/// Whether the gate lets the token's subject use `client` now. A client acting for itself
/// (client_credentials: `sub` is the client) has no person to check: the app's half of the
/// gate decides (tenant active, app enabled).
async fn gate_allows(state: &AppState, sub: &str, client: &Client) -> bool {
    if sub == client.id {
        return super::gate::enforce_app(state, client, "introspect", None)
            .await
            .is_ok();
    }
    match state.store.get_user(sub).await {
        Ok(Some(user)) => super::gate::enforce(state, &user, client, "introspect", None)
            .await
            .is_ok(),
        _ => false,
    }
}

/// The live grant of a refresh token, whichever client it was issued to, with the token's
/// expiry.
async fn refresh_token_of(
    state: &AppState,
    token: &str,
) -> Result<Option<(techpass_store::GrantRecord, i64)>, OAuthError> {
    let hash = state.secrets.keyed_hash(PURPOSE_REFRESH, token);
    let Some(record) = state
        .store
        .get_refresh_token(&hash)
        .await
        .map_err(OAuthError::server_error)?
    else {
        return Ok(None);
    };
    let now = state.clock.now().as_secs();
    if record.used_at.is_some() || now >= record.expires_at {
        return Ok(None);
    }
    let Some(grant) = state
        .store
        .get_grant(&record.grant_id)
        .await
        .map_err(OAuthError::server_error)?
    else {
        return Ok(None);
    };
    if grant.revoked_at.is_some() || now >= grant.expires_at {
        return Ok(None);
    }
    Ok(Some((grant, record.expires_at)))
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
    let now = state.clock.now().as_secs();
    // RFC 7009 §2.1: a token issued to another client is refused with an error and stays
    // valid; an unknown or dead token is a success (§2.2).
    let not_yours = || {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )
    };
    let result = async {
        if let Some((grant, _)) = refresh_token_of(&state, &token).await? {
            if grant.client_id != client.id {
                return Err(not_yours());
            }
            state
                .store
                .revoke_grant(&grant.id, now)
                .await
                .map_err(OAuthError::server_error)?;
            tracing::info!(client_id = %client.id, "refresh token revoked with its grant");
        } else if let Ok(access) = validate_access_token(&state, &token).await {
            if access.client_id != client.id {
                return Err(not_yours());
            }
            state
                .store
                .revoke_access_token(&access.jti, access.exp)
                .await
                .map_err(OAuthError::server_error)?;
            tracing::info!(client_id = %client.id, "access token revoked");
        }
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => error_response(&e),
    }
}
