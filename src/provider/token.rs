//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6). The form and the `Authorization` header
//! become one [`TokenRequest`] (a variant per grant type); the shared checks (content type,
//! client authentication, grant type allowed) run once, then the grant runs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use techpass_oidc::{pkce, ErrorCode, OAuthError, Params};
use techpass_store::{GrantRecord, Redemption};

use super::clients::{
    authenticate, claimed_client_id, AuthMethod, Client, GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
};
use super::mint::{self, IdTokenInput, Subject, PURPOSE_CODE, PURPOSE_REFRESH};
use super::{error_response, parse_scope};
use crate::state::AppState;

/// A token request, parsed: grants never see the raw form.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
        resource: Option<String>,
    },
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<TokenRequest, OAuthError> {
        let opt = |k: &str| params.get(k).map(String::from);
        match params.require("grant_type")? {
            GRANT_AUTHORIZATION_CODE => Ok(TokenRequest::AuthorizationCode {
                code: params.require("code")?.to_string(),
                redirect_uri: opt("redirect_uri"),
                code_verifier: opt("code_verifier"),
            }),
            GRANT_REFRESH_TOKEN => Ok(TokenRequest::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_string(),
                scope: opt("scope"),
            }),
            GRANT_CLIENT_CREDENTIALS => Ok(TokenRequest::ClientCredentials {
                scope: opt("scope"),
                resource: opt("resource"),
            }),
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant type {other} is not supported"),
            )),
        }
    }

    fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode { .. } => GRANT_AUTHORIZATION_CODE,
            TokenRequest::RefreshToken { .. } => GRANT_REFRESH_TOKEN,
            TokenRequest::ClientCredentials { .. } => GRANT_CLIENT_CREDENTIALS,
        }
    }
}

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
/// failed Basic attempt, RFC 6749 §5.2).
pub async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, Response> {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    // Throttle by the claimed client id before looking at any secret.
    if let Some(claimed) = claimed_client_id(authorization, params) {
        if let Err(wait) = state.rate_limits.check_client(&claimed) {
            tracing::warn!(client_id = %claimed, "rate limit: too many requests for one client");
            return Err(crate::ratelimit::too_many_requests(wait));
        }
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

pub async fn endpoint(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let client = match authenticated_client(&state, &headers, &params).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let result = match TokenRequest::parse(&params) {
        Ok(request) => run(&state, &client, request).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

async fn run(
    state: &AppState,
    client: &Client,
    request: TokenRequest,
) -> Result<Response, OAuthError> {
    if !client.enabled {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this app is disabled",
        ));
    }
    if !client.allows(request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this app may not use the {} grant", request.grant_type()),
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => authorization_code(state, client, &code, redirect_uri, code_verifier).await,
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh(state, client, &refresh_token, scope).await,
        TokenRequest::ClientCredentials { scope, resource } => {
            client_credentials(state, client, scope, resource)
        }
    }
}

/// The token gate at a grant: a refusal is `invalid_grant` with the reason for the app.
/// The gate at the token endpoint; on success, the app's tenant as the gate read it.
async fn gate(
    state: &AppState,
    user: &techpass_store::UserRecord,
    client: &Client,
) -> Result<Option<techpass_store::TenantRecord>, OAuthError> {
    super::gate::enforce(state, user, client, "token", None)
        .await
        .map_err(|r| match r {
            super::gate::Refusal::Denied(d) => {
                OAuthError::invalid_grant(format!("access denied: {}", d.reason()))
            }
            super::gate::Refusal::Unavailable(e) => store_error(e),
        })
}

fn store_error(e: techpass_store::StoreError) -> OAuthError {
    OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later").with_detail(e.to_string())
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6 and RFC 9700 §2.1.1 (no PKCE downgrade).
async fn authorization_code(
    state: &AppState,
    client: &Client,
    code: &str,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
) -> Result<Response, OAuthError> {
    let now = state.clock.now().as_secs();
    let code_hash = state.secrets.keyed_hash(PURPOSE_CODE, code);
    let record = match state
        .store
        .redeem_code(&code_hash, now)
        .await
        .map_err(store_error)?
    {
        Redemption::Redeemed(r) => r,
        Redemption::Replayed(r) => {
            // RFC 6749 §4.1.2 / §10.5: a second use revokes what the first one produced.
            let revoked = state
                .store
                .revoke_grants_of_code(&code_hash, now)
                .await
                .map_err(store_error)?;
            tracing::warn!(client_id = %r.client_id, revoked, "authorization code replayed; its grant is revoked");
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        Redemption::NotFound => return Err(OAuthError::invalid_grant("unknown code")),
    };
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&record.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify_s256(&verifier, challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but no code_challenge was",
            ))
        }
        (None, None) => {}
    }
    let user = state
        .store
        .get_user(&record.user_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let tenant = gate(state, &user, client).await?;
    let scope: Vec<String> = record
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let amr: Vec<String> = serde_json::from_str(&record.amr).unwrap_or_default();
    let grant = GrantRecord {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id.clone(),
        user_id: Some(user.id.clone()),
        session_hash: Some(record.session_hash.clone()),
        code_hash: Some(code_hash),
        scope: record.scope.clone(),
        auth_time: Some(record.auth_time),
        amr: record.amr.clone(),
        acr: record.acr.clone(),
        created_at: now,
        expires_at: now + state.config.tokens.refresh_token_max_lifetime_secs as i64,
        revoked_at: None,
    };
    state
        .store
        .insert_grant(&grant)
        .await
        .map_err(store_error)?;
    let access_claims = mint::groups_and_roles(state, client, tenant.as_ref(), &user)
        .await
        .map_err(store_error)?;
    let subject = Subject {
        user: Some(&user),
        client_id: &client.id,
        audience: &client.id,
        scope: &scope,
        grant_id: Some(&grant.id),
        auth_time: Some(record.auth_time),
        amr: &amr,
        acr: record.acr.as_deref(),
        groups: &access_claims.0,
        roles: &access_claims.1,
        access_lifetime: client.access_token_lifetime_secs,
    };
    let access = mint::access_token(state, &subject)?;
    let id_token = mint::id_token(
        state,
        &IdTokenInput {
            subject: &subject,
            nonce: record.nonce.as_deref(),
            session_hash: Some(&record.session_hash),
            access_token: &access.token,
        },
    )?;
    let refresh_token =
        if scope.iter().any(|s| s == "offline_access") && client.allows(GRANT_REFRESH_TOKEN) {
            Some(
                mint::refresh_token(
                    state,
                    &grant.id,
                    grant.expires_at,
                    client.refresh_token_idle_secs,
                )
                .await?,
            )
        } else {
            None
        };
    Ok(mint::token_response(
        access,
        id_token,
        refresh_token,
        &scope,
    ))
}

/// RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each use returns a new refresh token; using a
/// rotated one again revokes the whole grant.
async fn refresh(
    state: &AppState,
    client: &Client,
    token: &str,
    requested_scope: Option<String>,
) -> Result<Response, OAuthError> {
    let now = state.clock.now().as_secs();
    let token_hash = state.secrets.keyed_hash(PURPOSE_REFRESH, token);
    let record = match state
        .store
        .redeem_refresh_token(&token_hash, now)
        .await
        .map_err(store_error)?
    {
        Redemption::Redeemed(r) => r,
        Redemption::Replayed(r) => {
            state
                .store
                .revoke_grant(&r.grant_id, now)
                .await
                .map_err(store_error)?;
            tracing::warn!(client_id = %client.id, "rotated refresh token reused; its grant is revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ));
        }
        Redemption::NotFound => return Err(OAuthError::invalid_grant("unknown refresh token")),
    };
    let grant = state
        .store
        .get_grant(&record.grant_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the grant was revoked"));
    }
    if now >= record.expires_at || now >= grant.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let granted: Vec<String> = grant
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let scope = match requested_scope {
        Some(text) => {
            let asked = parse_scope(&text)?;
            if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {extra} was not granted"),
                ));
            }
            asked
        }
        None => granted,
    };
    let user_id = grant.user_id.clone().unwrap_or_default();
    let user = state
        .store
        .get_user(&user_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let tenant = gate(state, &user, client).await?;
    let amr: Vec<String> = serde_json::from_str(&grant.amr).unwrap_or_default();
    let access_claims = mint::groups_and_roles(state, client, tenant.as_ref(), &user)
        .await
        .map_err(store_error)?;
    let subject = Subject {
        user: Some(&user),
        client_id: &client.id,
        audience: &client.id,
        scope: &scope,
        grant_id: Some(&grant.id),
        auth_time: grant.auth_time,
        amr: &amr,
        acr: grant.acr.as_deref(),
        groups: &access_claims.0,
        roles: &access_claims.1,
        access_lifetime: client.access_token_lifetime_secs,
    };
    let access = mint::access_token(state, &subject)?;
    let id_token = mint::id_token(
        state,
        &IdTokenInput {
            subject: &subject,
            nonce: None,
            session_hash: grant.session_hash.as_deref(),
            access_token: &access.token,
        },
    )?;
    let next = mint::refresh_token(
        state,
        &grant.id,
        grant.expires_at,
        client.refresh_token_idle_secs,
    )
    .await?;
    Ok(mint::token_response(access, id_token, Some(next), &scope))
}

/// RFC 6749 §4.4: a confidential client acting for itself. The audience is the requested
/// `resource` (RFC 8707) or the client itself. No refresh token, no ID token.
fn client_credentials(
    state: &AppState,
    client: &Client,
    scope: Option<String>,
    resource: Option<String>,
) -> Result<Response, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "only confidential apps may use client_credentials",
        ));
    }
    let scope = parse_scope(scope.as_deref().unwrap_or(""))?;
    if scope.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "openid and offline_access need a person; client_credentials has none",
        ));
    }
    if let Some(r) = &resource {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "resource must be an absolute URI",
            ));
        }
    }
    let audience = resource.unwrap_or_else(|| client.id.clone());
    let access = mint::access_token(
        state,
        &Subject {
            user: None,
            client_id: &client.id,
            audience: &audience,
            scope: &scope,
            grant_id: None,
            auth_time: None,
            amr: &[],
            acr: None,
            groups: &[],
            roles: &[],
            access_lifetime: client.access_token_lifetime_secs,
        },
    )?;
    Ok(mint::token_response(access, None, None, &scope))
}
