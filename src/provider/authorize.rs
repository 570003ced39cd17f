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
use axum::Extension;
use axum_extra::extract::cookie::CookieJar;
use techpass_domain::account::AccountType;
use techpass_domain::client::match_redirect_uri;
use techpass_domain::gate::Denial;
use techpass_domain::session::needs_reauthentication;
use techpass_domain::Timestamp;
use techpass_oidc::{ErrorCode, OAuthError, Params};
use techpass_service::authorize::{self, AuthorizationRequest};
use techpass_service::consent;
use techpass_store::UserRecord;
use tower_http::request_id::RequestId;
use url::Url;

use super::clients::{find_client, Client};
use crate::app_return::AppReturn;
use crate::signin::{current_session, Session};
use crate::state::AppState;

pub use techpass_service::authorize::{proven_amr, CODE_LIFETIME_SECS};

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
    request: Option<Extension<RequestId>>,
) -> Response {
    let params = Params::parse_keeping_first(query.unwrap_or_default().as_bytes());
    handle(&state, &jar, params, reference(&request)).await
}

/// The request id, shown on a refusal page as its reference and kept with the audit event.
fn reference(request: &Option<Extension<RequestId>>) -> Option<String> {
    request
        .as_ref()
        .and_then(|Extension(id)| id.header_value().to_str().ok())
        .map(String::from)
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    request: Option<Extension<RequestId>>,
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
    handle(&state, &jar, params, reference(&request)).await
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
    let description = techpass_oidc::error::description_text(&e.description);
    let mut pairs = vec![
        ("error", e.code.as_str()),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = app_state {
        pairs.push(("state", s));
    }
    back_to_app(state, redirect_uri, &pairs)
}

/// Where the answer goes once the app and its redirect URI are known good: every error from
/// then on goes back to the app, with its `state` (RFC 6749 §4.1.2.1).
struct Reply<'a> {
    redirect_uri: String,
    app_state: Option<&'a str>,
}

impl Reply<'_> {
    fn error(&self, state: &AppState, e: &OAuthError) -> Response {
        error_to_app(state, &self.redirect_uri, self.app_state, e)
    }

    fn unavailable(&self, state: &AppState, detail: impl std::fmt::Display) -> Response {
        let e = OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail(detail.to_string());
        self.error(state, &e)
    }
}

async fn handle(
    state: &AppState,
    jar: &CookieJar,
    params: Result<(Params, Vec<String>), OAuthError>,
    request_id: Option<String>,
) -> Response {
    let (params, repeated) = match params {
        Ok(p) => p,
        Err(e) => return bad_request_page(state, &e.description),
    };
    let (client, reply) = match known_app(state, &params, &repeated).await {
        Ok(known) => known,
        Err(page) => return page,
    };
    if let Some(key) = repeated.first() {
        let e = OAuthError::invalid_request(format!("parameter {key} was sent more than once"));
        return reply.error(state, &e);
    }
    if let Err(e) = params.check_bounds() {
        return reply.error(state, &e);
    }
    let request = match authorize::check(&params, &client) {
        Ok(r) => r,
        Err(e) => return reply.error(state, &e),
    };
    let session = match signed_in(state, jar, &params, &request, &reply).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let user = match through_gate(
        state, &session, &client, &request, &params, &reply, request_id,
    )
    .await
    {
        Ok(user) => user,
        Err(response) => return response,
    };
    if let Err(response) =
        consented(state, &user, &session, &client, &request, &params, &reply).await
    {
        return response;
    }
    match authorize::issue_code(state, &request, &session).await {
        Ok(code) => {
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = reply.app_state {
                pairs.push(("state", s));
            }
            back_to_app(state, &reply.redirect_uri, &pairs)
        }
        Err(e) => reply.error(state, &e),
    }
}

/// Step 1: the app and its redirect URI. Until both are known good, every error is a page for
/// the person and never a redirect (RFC 6749 §4.1.2.1), a repeated `client_id` or
/// `redirect_uri` included.
async fn known_app<'p>(
    state: &AppState,
    params: &'p Params,
    repeated: &[String],
) -> Result<(Client, Reply<'p>), Response> {
    if let Some(key) = repeated
        .iter()
        .find(|k| *k == "client_id" || *k == "redirect_uri")
    {
        return Err(bad_request_page(
            state,
            &format!("it names {key} more than once"),
        ));
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(bad_request_page(
            state,
            "it names no app (client_id is missing)",
        ));
    };
    let client = match find_client(state.store.as_ref(), client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(bad_request_page(
                state,
                "the app is not registered with TechPass",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            return Err(state.pages.unavailable());
        }
    };
    let Some(requested_uri) = params.get("redirect_uri") else {
        return Err(bad_request_page(
            state,
            "it does not say where to return (redirect_uri is missing)",
        ));
    };
    if match_redirect_uri(&client.redirect_uris, requested_uri, !client.confidential).is_none() {
        return Err(bad_request_page(
            state,
            "the return address is not registered for this app",
        ));
    }
    // An over-long `state` is not reflected back (it is what the bound is for).
    let app_state = params
        .get("state")
        .filter(|s| s.len() <= techpass_oidc::params::max_len("state"));
    let reply = Reply {
        redirect_uri: requested_uri.to_string(),
        app_state,
    };
    Ok((client, reply))
}

/// Step 2: a live SSO session that satisfies the request. Without one (or when `prompt=login`,
/// `max_age` or an `id_token_hint` for someone else demand a fresh sign-in) the person is sent
/// to sign in and comes back here; with `prompt=none` the app hears `login_required`.
async fn signed_in(
    state: &AppState,
    jar: &CookieJar,
    params: &Params,
    request: &AuthorizationRequest,
    reply: &Reply<'_>,
) -> Result<Session, Response> {
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = current_session(state, cookie.as_deref())
        .await
        .map_err(|e| reply.unavailable(state, e))?;
    let hint_mismatch = match (params.get("id_token_hint"), &session) {
        (Some(hint), Some(s)) => {
            authorize::id_token_hint_subject(state, hint).as_deref() != Some(s.user_id.as_str())
        }
        _ => false,
    };
    let now = state.clock.now();
    let stale = session
        .as_ref()
        .is_some_and(|s| needs_reauthentication(Timestamp(s.auth_time), request.max_age, now));
    let forced = request.forces_login();
    let mut unconfirmed = false;
    let session = match session {
        Some(s) if !stale && !forced && !hint_mismatch => {
            // Bounded staleness: past the bound, the upstream confirms the person first.
            match techpass_service::reverify::check(
                state,
                &s.user_id,
                Some(&s.upstream),
                s.auth_time,
                None,
            )
            .await
            {
                Ok(verdict) if verdict.allows() => return Ok(s),
                // Refused (their sessions are already ended) or unconfirmable: a fresh sign-in
                // at the upstream, which confirms them (or refuses them) anew.
                Ok(_) => {
                    unconfirmed = true;
                    None
                }
                Err(e) => return Err(reply.unavailable(state, e)),
            }
        }
        other => other,
    };
    let forced = forced || unconfirmed;
    match session {
        Some(s) if !stale && !forced && !hint_mismatch => Ok(s),
        _ if request.silent() => Err(reply.error(
            state,
            &OAuthError::new(ErrorCode::LoginRequired, "the person must sign in"),
        )),
        _ => Err(to_sign_in(params, forced || stale || hint_mismatch)),
    }
}

/// Step 3: the gate, before any code exists. A refusal is a page that explains and leads back
/// to the app (or, with `prompt=none`, the error straight back); an officer who has not
/// registered yet registers and comes back here.
async fn through_gate(
    state: &AppState,
    session: &Session,
    client: &Client,
    request: &AuthorizationRequest,
    params: &Params,
    reply: &Reply<'_>,
    request_id: Option<String>,
) -> Result<UserRecord, Response> {
    let user = match crate::accounts::get(state, &session.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(to_sign_in(params, true)),
        Err(e) => return Err(reply.unavailable(state, e)),
    };
    let enforced =
        super::gate::enforce(state, &user, client, "authorize", request_id.clone()).await;
    let denial = match enforced {
        Ok(_) if crate::accounts::terms_outdated(state, &user) => {
            // A new version of the terms of use: accepted before any code is issued.
            if request.silent() {
                return Err(reply.error(
                    state,
                    &OAuthError::new(
                        ErrorCode::InteractionRequired,
                        "the person must accept the new terms of use",
                    ),
                ));
            }
            return Err(Redirect::to(&crate::paths::terms_accept_url(&this_request(
                params,
                Met::Nothing,
            )))
            .into_response());
        }
        Ok(_) => return Ok(user),
        Err(super::gate::Refusal::Denied(d)) => d,
        Err(super::gate::Refusal::Unavailable(e)) => return Err(reply.unavailable(state, e)),
    };
    let officer_to_register =
        denial == Denial::NotRegistered && user.account_type == AccountType::PublicOfficer.as_str();
    if request.silent() {
        // No page may be shown (OpenID Connect Core §3.1.2.1): straight back to the app.
        let e = if officer_to_register {
            OAuthError::new(
                ErrorCode::InteractionRequired,
                "the person must register with TechPass first",
            )
        } else {
            OAuthError::new(ErrorCode::AccessDenied, denial.reason())
        };
        return Err(reply.error(state, &e));
    }
    if officer_to_register {
        return Err(Redirect::to(&crate::paths::register_url(&this_request(
            params,
            Met::Nothing,
        )))
        .into_response());
    }
    let back = AppReturn::new(&client.name, &reply.redirect_uri, reply.app_state);
    Err(denied_page(state, &back, denial, request_id))
}

/// Step 4: consent, where the app would receive the identity of someone with no relationship
/// to it ([`techpass_service::consent`]). With `prompt=none` the app hears `consent_required`;
/// otherwise the person sees the consent page, which comes back here once they allow it.
/// `prompt=consent` asks again even if they consented before.
async fn consented(
    state: &AppState,
    user: &UserRecord,
    session: &Session,
    client: &Client,
    request: &AuthorizationRequest,
    params: &Params,
    reply: &Reply<'_>,
) -> Result<(), Response> {
    let force = request.prompt.iter().any(|p| p == "consent");
    match consent::needed(state, user, client, &request.scope, force).await {
        Ok(false) => Ok(()),
        Err(e) => Err(reply.unavailable(state, e)),
        Ok(true) if request.silent() => Err(reply.error(
            state,
            &OAuthError::new(
                ErrorCode::ConsentRequired,
                "the person must consent to this app first",
            ),
        )),
        Ok(true) => {
            // The way back drops `prompt=consent`, so it is not asked twice.
            let return_to = this_request(params, if force { Met::Consent } else { Met::Nothing });
            let back = AppReturn::new(&client.name, &reply.redirect_uri, reply.app_state);
            Err(super::consent::page(
                state,
                user,
                session,
                client,
                &request.scope,
                &return_to,
                &back,
            )
            .await)
        }
    }
}

/// A clear page for the person, with a way back to the app that carries `access_denied`.
fn denied_page(
    state: &AppState,
    back: &AppReturn,
    denial: Denial,
    request_id: Option<String>,
) -> Response {
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
            app_link => link, app_name => back.app_name, request_id => request_id,
        },
    )
}

/// What a way back to this request leaves out, because the step it comes back from met it.
#[derive(Clone, Copy)]
enum Met {
    Nothing,
    /// A fresh sign-in: `prompt=login` and `max_age` are met.
    SignIn,
    /// The consent page: `prompt=consent` is met.
    Consent,
}

/// This authorization request as a local URL, without what `met` satisfied (so the way back
/// does not ask again); any other `prompt` value stays (`prompt=login consent` still asks for
/// consent after the sign-in).
fn this_request(params: &Params, met: Met) -> String {
    let dropped: &[&str] = match met {
        Met::Nothing => &[],
        Met::SignIn => &["login"],
        Met::Consent => &["consent"],
    };
    let prompt: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty() && !dropped.contains(p))
        .collect();
    let prompt = prompt.join(" ");
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| *k != "prompt" && !(matches!(met, Met::SignIn) && *k == "max_age"))
        .collect();
    if !prompt.is_empty() {
        pairs.push(("prompt", &prompt));
    }
    pairs.sort();
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        back.append_pair(k, v);
    }
    format!("{}?{}", techpass_oidc::paths::AUTHORIZE, back.finish())
}

/// Sends the person to sign in, to come back to this same request. A forced sign-in drops
/// `prompt=login` and `max_age` from the way back, so the fresh session satisfies the request.
fn to_sign_in(params: &Params, forced: bool) -> Response {
    let return_to = this_request(params, if forced { Met::SignIn } else { Met::Nothing });
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("return_to", &return_to);
    if let Some(hint) = params.get("login_hint") {
        login.append_pair("login_hint", hint);
    }
    if forced {
        login.append_pair("prompt", "login");
    }
    Redirect::to(&format!("{}?{}", crate::paths::LOGIN, login.finish())).into_response()
}
