//! The authorization endpoint's decisions without HTTP (OpenID Connect Core §3.1.2, RFC 6749
//! §4.1.1, RFC 7636): checking a request once its app and redirect URI are known, and issuing
//! the code for a signed-in person whom the gate let through. Pages, redirects and the order of
//! the steps are the shell's.

use techpass_oidc::{pkce, ErrorCode, OAuthError, Params};
use techpass_store::AuthCodeRecord;
use techpass_upstream::UpstreamIdentity;

use crate::clients::{Client, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN};
use crate::mint::PURPOSE_CODE;
use crate::scopes::{parse_scope, SCOPES};
use crate::signin::Session;
use crate::ServiceContext;

/// RFC 6749 §4.1.2 asks for short-lived codes; FAPI 2.0 uses 60 s.
pub const CODE_LIFETIME_SECS: i64 = 60;

/// A checked authorization request, ready to issue a code for.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
}

impl AuthorizationRequest {
    /// `prompt=none`: no page may be shown (OpenID Connect Core §3.1.2.1).
    pub fn silent(&self) -> bool {
        self.prompt.iter().any(|p| p == "none")
    }

    /// `prompt=login`: the person must authenticate again.
    pub fn forces_login(&self) -> bool {
        self.prompt.iter().any(|p| p == "login")
    }
}

/// Checks what the app asked for, once `client` and the request's `redirect_uri` are known
/// good (so every error here goes back to the app).
pub fn check(params: &Params, client: &Client) -> Result<AuthorizationRequest, OAuthError> {
    if !client.enabled {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "sign-in to this app is disabled",
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(OAuthError::invalid_request(
                "missing parameter response_type",
            ))
        }
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if !client.allows(GRANT_AUTHORIZATION_CODE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this app may not use the authorization code flow",
        ));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    // OpenID Connect Core §3.1.2.6: the specific codes, so the app knows what to change.
    if params.contains("request") {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; send the parameters in the query",
        ));
    }
    if params.contains("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported; send the parameters in the query",
        ));
    }
    let scope = requested_scope(params, client)?;
    let code_challenge = code_challenge(params, client)?;
    let prompt = prompt(params)?;
    let max_age = match params.get("max_age") {
        Some(v) => Some(v.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
            OAuthError::invalid_request("max_age must be a non-negative integer")
        })?),
        None => None,
    };
    let nonce = params.get("nonce").map(String::from);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: params.get("redirect_uri").unwrap_or_default().to_string(),
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
    })
}

/// The scopes understood (OpenID Connect Core §3.1.2.1: others are ignored); `openid` is
/// required; `offline_access` only for an app that may refresh.
fn requested_scope(params: &Params, client: &Client) -> Result<Vec<String>, OAuthError> {
    let understood: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| SCOPES.contains(s))
        .collect();
    let mut scope = parse_scope(&understood.join(" "))?;
    if !scope.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }
    if !client.allows(GRANT_REFRESH_TOKEN) {
        scope.retain(|s| s != "offline_access");
    }
    Ok(scope)
}

/// PKCE: S256 only, required for public apps (RFC 7636, RFC 9700 §2.1.1).
fn code_challenge(params: &Params, client: &Client) -> Result<Option<String>, OAuthError> {
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if pkce::is_valid_challenge(challenge) => {
            Ok(Some(challenge.to_string()))
        }
        (Some(_), Some("S256")) => Err(OAuthError::invalid_request("malformed code_challenge")),
        (Some(_), _) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (None, None) if !client.confidential => Err(OAuthError::invalid_request(
            "PKCE (code_challenge with S256) is required for this app",
        )),
        (None, None) => Ok(None),
    }
}

fn prompt(params: &Params) -> Result<Vec<String>, OAuthError> {
    let prompt: Vec<String> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    for p in &prompt {
        if !["none", "login", "consent", "select_account"].contains(&p.as_str()) {
            return Err(OAuthError::invalid_request(format!(
                "unsupported prompt value {p}"
            )));
        }
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// What the upstream proved, re-emitted as TechPass's `amr`: the upstream's methods, plus `mfa`,
/// which every session proved (by `amr` or by a trusted upstream's Conditional Access) or it
/// would not exist.
pub fn proven_amr(identity: &UpstreamIdentity) -> Vec<String> {
    let mut amr = identity.amr.clone();
    if !amr.iter().any(|a| a == "mfa") {
        amr.push("mfa".into());
    }
    amr
}

/// The `sub` of an ID token TechPass issued (expired ones too: OpenID Connect Core §3.1.2.1).
pub fn id_token_hint_subject(ctx: &ServiceContext, hint: &str) -> Option<String> {
    let (_, claims) = ctx.keys.verify_jwt(hint).ok()?;
    if claims["iss"] != ctx.metadata.issuer.as_str() {
        return None;
    }
    claims["sub"].as_str().map(String::from)
}

/// Issues the code for `request` in `session` (the gate has let the person through): stored as
/// a keyed hash, valid [`CODE_LIFETIME_SECS`], bound to the client, redirect URI, PKCE challenge
/// and nonce. The app sign-in is recorded (it keeps an account alive for the lifecycle jobs).
/// A storage failure is `temporarily_unavailable`.
pub async fn issue_code(
    ctx: &ServiceContext,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<String, OAuthError> {
    let code = ctx.random.token().map_err(OAuthError::server_error)?;
    let now = ctx.clock.now().as_secs();
    let amr = proven_amr(&session.identity);
    let record = AuthCodeRecord {
        code_hash: ctx.secrets.keyed_hash(PURPOSE_CODE, &code),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        session_hash: session.id_hash.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.join(" "),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        amr,
        // Every session proved MFA; `acr` says so in TechPass's own terms (the upstream's own
        // `acr` stays in the session for the audit log).
        acr: Some(techpass_oidc::ACR_MFA.to_string()),
        created_at: now,
        expires_at: now + CODE_LIFETIME_SECS,
        used_at: None,
        grant_id: None,
    };
    ctx.store.insert_code(&record).await.map_err(|e| {
        OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail(e.to_string())
    })?;
    if let Err(e) = ctx.store.record_app_signin(&session.user_id, now).await {
        tracing::warn!(error = %e, "could not record the app sign-in");
    }
    Ok(code)
}
