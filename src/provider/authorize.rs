//! The authorization endpoint (OpenID Connect Core §3.1.2, RFC 6749 §4.1.1, RFC 7636, RFC 9207).
//!
//! Until the client and its redirect URI are known good, errors are a page for the person and
//! never a redirect (RFC 6749 §4.1.2.1). After that, errors go back to the app with `state` and
//! `iss`. Only `response_type=code`; PKCE S256 only, required for public clients. Without a live
//! SSO session, or when `prompt=login`/`max_age` demand it, the person is sent to sign in and
//! comes back here.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use techpass_domain::account::AccountType;
use techpass_domain::client::match_redirect_uri;
use techpass_domain::gate::Denial;
use techpass_domain::session::needs_reauthentication;
use techpass_domain::Timestamp;
use techpass_oidc::{pkce, ErrorCode, OAuthError, Params, Secrets};
use techpass_store::AuthCodeRecord;
use url::Url;

use super::clients::{find_client, GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN};
use super::mint::PURPOSE_CODE;
use super::parse_scope;
use crate::app_return::AppReturn;
use crate::signin::current_session;
use crate::state::AppState;

/// RFC 6749 §4.1.2 asks for short-lived codes; FAPI 2.0 uses 60 s.
pub const CODE_LIFETIME_SECS: i64 = 60;

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse_keeping_first(query.unwrap_or_default().as_bytes());
    handle(&state, &jar, params).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = if is_form {
        Params::parse_keeping_first(&body)
    } else {
        Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ))
    };
    handle(&state, &jar, params).await
}

fn bad_request_page(state: &AppState, why: &str) -> Response {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "This sign-in request is not valid",
        &format!("The app that sent you here made a request TechPass cannot accept: {why}. Contact the app's team."),
    )
}

/// A redirect back to the app (RFC 6749 §4.1.2, RFC 9207 §2: `iss` on every response), never
/// stored by a cache: it may carry a code (RFC 9111 §5.2.2.5; RFC 9700 §4.2.4).
fn back_to_app(state: &AppState, redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return bad_request_page(state, "its redirect URI is malformed");
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        query.append_pair("iss", &state.metadata.issuer);
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn error_to_app(
    state: &AppState,
    redirect_uri: &str,
    app_state: Option<&str>,
    e: &OAuthError,
) -> Response {
    tracing::info!(error = e.code.as_str(), description = %e.description, "authorization request refused");
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", e.description.as_str()),
    ];
    if let Some(s) = app_state {
        pairs.push(("state", s));
    }
    back_to_app(state, redirect_uri, &pairs)
}

/// The checked request, ready to issue a code for.
struct Request {
    client_id: String,
    redirect_uri: String,
    scope: Vec<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Vec<String>,
    max_age: Option<i64>,
}

async fn handle(
    state: &AppState,
    jar: &CookieJar,
    params: Result<(Params, Vec<String>), OAuthError>,
) -> Response {
    let (params, repeated) = match params {
        Ok(p) => p,
        Err(e) => return bad_request_page(state, &e.description),
    };
    // Until the app and its redirect URI are known, a repeated parameter is a page (RFC 6749
    // §4.1.2.1); once they are, it goes back to the app as `invalid_request` (§3.1).
    if let Some(key) = repeated
        .iter()
        .find(|k| *k == "client_id" || *k == "redirect_uri")
    {
        return bad_request_page(state, &format!("it names {key} more than once"));
    }
    let Some(client_id) = params.get("client_id") else {
        return bad_request_page(state, "it names no app (client_id is missing)");
    };
    let client = match find_client(state.store.as_ref(), client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return bad_request_page(state, "the app is not registered with TechPass"),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return state.pages.unavailable();
        }
    };
    let Some(requested_uri) = params.get("redirect_uri") else {
        return bad_request_page(
            state,
            "it does not say where to return (redirect_uri is missing)",
        );
    };
    if match_redirect_uri(&client.redirect_uris, requested_uri, !client.confidential).is_none() {
        return bad_request_page(state, "the return address is not registered for this app");
    }
    let redirect_uri = requested_uri.to_string();
    // An over-long `state` is not reflected back (it is what the bound is for).
    let app_state = params
        .get("state")
        .filter(|s| s.len() <= techpass_oidc::params::max_len("state"));
    if let Some(key) = repeated.first() {
        let e = OAuthError::invalid_request(format!("parameter {key} was sent more than once"));
        return error_to_app(state, &redirect_uri, app_state, &e);
    }
    if let Err(e) = params.check_bounds() {
        return error_to_app(state, &redirect_uri, app_state, &e);
    }

    let request = match check(&params, &client) {
        Ok(r) => r,
        Err(e) => return error_to_app(state, &redirect_uri, app_state, &e),
    };

    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = match current_session(state, cookie.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            let err = OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                .with_detail(e.to_string());
            return error_to_app(state, &redirect_uri, app_state, &err);
        }
    };
    let now = state.clock.now();
    let hint_mismatch = match (params.get("id_token_hint"), &session) {
        (Some(hint), Some(s)) => {
            id_token_hint_subject(state, hint).as_deref() != Some(s.user_id.as_str())
        }
        _ => false,
    };
    let stale = session
        .as_ref()
        .is_some_and(|s| needs_reauthentication(Timestamp(s.auth_time), request.max_age, now));
    let forced = request.prompt.iter().any(|p| p == "login");
    let session = match session {
        Some(s) if !stale && !forced && !hint_mismatch => s,
        _ => {
            if request.prompt.iter().any(|p| p == "none") {
                let e = OAuthError::new(ErrorCode::LoginRequired, "the person must sign in");
                return error_to_app(state, &redirect_uri, app_state, &e);
            }
            return to_sign_in(&params, forced || stale || hint_mismatch);
        }
    };

    // The gate, before any code exists.
    let user = match state.store.get_user(&session.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return to_sign_in(&params, true),
        Err(e) => {
            let err = OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                .with_detail(e.to_string());
            return error_to_app(state, &redirect_uri, app_state, &err);
        }
    };
    if let Err(refusal) = super::gate::enforce(state, &user, &client, "authorize", None).await {
        let denial = match refusal {
            super::gate::Refusal::Denied(d) => d,
            super::gate::Refusal::Unavailable(e) => {
                let err = OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                    .with_detail(e.to_string());
                return error_to_app(state, &redirect_uri, app_state, &err);
            }
        };
        let officer_to_register = denial == Denial::NotRegistered
            && user.account_type == AccountType::PublicOfficer.as_str();
        if request.prompt.iter().any(|p| p == "none") {
            // No page may be shown (OpenID Connect Core §3.1.2.1): straight back to the app.
            let e = if officer_to_register {
                OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "the person must register with TechPass first",
                )
            } else {
                OAuthError::new(ErrorCode::AccessDenied, denial.reason())
            };
            return error_to_app(state, &redirect_uri, app_state, &e);
        }
        if officer_to_register {
            // An officer who has not registered yet: register, then come back here.
            return Redirect::to(&crate::signin::routes::register_url(&this_request(
                &params, false,
            )))
            .into_response();
        }
        let back = AppReturn::new(&client.name, &redirect_uri, app_state);
        return denied_page(state, &back, denial);
    }

    let code = match Secrets::random_token() {
        Ok(c) => c,
        Err(e) => {
            return error_to_app(
                state,
                &redirect_uri,
                app_state,
                &OAuthError::server_error(e),
            )
        }
    };
    let amr = serde_json::to_string(&proven_amr(&session.identity)).unwrap_or_else(|_| "[]".into());
    let record = AuthCodeRecord {
        code_hash: state.secrets.keyed_hash(PURPOSE_CODE, &code),
        client_id: request.client_id,
        user_id: session.user_id.clone(),
        session_hash: session.id_hash.clone(),
        redirect_uri: request.redirect_uri,
        scope: request.scope.join(" "),
        nonce: request.nonce,
        code_challenge: request.code_challenge,
        auth_time: session.auth_time,
        amr,
        // Every session proved MFA; `acr` says so in TechPass's own terms (the upstream's
        // own `acr` stays in the session for the audit log).
        acr: Some(techpass_oidc::ACR_MFA.to_string()),
        created_at: now.as_secs(),
        expires_at: now.as_secs() + CODE_LIFETIME_SECS,
        used_at: None,
    };
    if let Err(e) = state.store.insert_code(&record).await {
        let err = OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail(e.to_string());
        return error_to_app(state, &redirect_uri, app_state, &err);
    }
    // An app sign-in is what keeps an account alive for the lifecycle jobs.
    if let Err(e) = state
        .store
        .record_app_signin(&session.user_id, now.as_secs())
        .await
    {
        tracing::warn!(error = %e, "could not record the app sign-in");
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = app_state {
        pairs.push(("state", s));
    }
    back_to_app(state, &redirect_uri, &pairs)
}

/// What the upstream proved, re-emitted as TechPass's `amr`: the upstream's methods, plus `mfa`,
/// which every session proved (by `amr` or by a trusted upstream's Conditional Access) or it
/// would not exist.
pub fn proven_amr(identity: &techpass_upstream::UpstreamIdentity) -> Vec<String> {
    let mut amr = identity.amr.clone();
    if !amr.iter().any(|a| a == "mfa") {
        amr.push("mfa".into());
    }
    amr
}

fn check(params: &Params, client: &super::clients::Client) -> Result<Request, OAuthError> {
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
    // OpenID Connect Core §3.1.2.1: scope values not understood are ignored.
    let understood: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| super::SCOPES.contains(s))
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
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if pkce::is_valid_challenge(challenge) => {
            Some(challenge.to_string())
        }
        (Some(_), Some("S256")) => {
            return Err(OAuthError::invalid_request("malformed code_challenge"))
        }
        (Some(_), _) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            ))
        }
        (None, None) if !client.confidential => {
            return Err(OAuthError::invalid_request(
                "PKCE (code_challenge with S256) is required for this app",
            ))
        }
        (None, None) => None,
    };
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
    Ok(Request {
        client_id: client.id.clone(),
        redirect_uri: params.get("redirect_uri").unwrap_or_default().to_string(),
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
    })
}

/// The `sub` of an ID token TechPass issued (expired ones too: OpenID Connect Core §3.1.2.1).
fn id_token_hint_subject(state: &AppState, hint: &str) -> Option<String> {
    let (_, claims) = state.keys.verify_jwt(hint).ok()?;
    if claims["iss"] != state.metadata.issuer.as_str() {
        return None;
    }
    claims["sub"].as_str().map(String::from)
}

/// A clear page for the person, with a way back to the app that carries `access_denied`.
fn denied_page(state: &AppState, back: &AppReturn, denial: Denial) -> Response {
    let link = back.error_url(
        &state.metadata.issuer,
        ErrorCode::AccessDenied,
        denial.reason(),
    );
    let (title, text, next_step) = super::gate::explain(denial);
    state.pages.render(
        StatusCode::FORBIDDEN,
        "denied.html",
        minijinja::context! {
            title => title, text => text, next_step => next_step, reason => denial.reason(),
            app_link => link, app_name => back.app_name,
        },
    )
}

/// This authorization request as a local URL; a forced sign-in drops `prompt` and `max_age`
/// from it, so the fresh session satisfies the request on the way back.
fn this_request(params: &Params, forced: bool) -> String {
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !forced || (*k != "prompt" && *k != "max_age"))
        .collect();
    pairs.sort();
    for (k, v) in pairs {
        back.append_pair(k, v);
    }
    format!("{}?{}", techpass_oidc::paths::AUTHORIZE, back.finish())
}

/// Sends the person to sign in, to come back to this same request. A forced sign-in drops
/// `prompt` and `max_age` from the way back, so the fresh session satisfies the request.
fn to_sign_in(params: &Params, forced: bool) -> Response {
    let return_to = this_request(params, forced);
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &return_to);
    if let Some(hint) = params.get("login_hint") {
        login.append_pair("login_hint", hint);
    }
    if forced {
        login.append_pair("prompt", "login");
    }
    Redirect::to(&format!(
        "{}?{}",
        crate::signin::routes::LOGIN,
        login.finish()
    ))
    .into_response()
}
