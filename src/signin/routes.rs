//! HTTP handlers of sign-in: `/login`, `/callback`, `/logout` and the landing page `/`.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use techpass_domain::account::AccountType;
use techpass_domain::gate::UserStatus;
use techpass_service::dates::rfc3339;
use techpass_store::{AuditRecord, UserRecord};
use tower_http::request_id::RequestId;

use crate::app_return::AppReturn;
use techpass_oidc::ErrorCode;

use super::{
    audit, csrf_token, csrf_valid, current_session, safe_return_to, start_login, CallbackQuery,
    Denial,
};
use crate::state::AppState;

pub use crate::paths::{register_url, CALLBACK, HOME, LOGIN, LOGOUT, REGISTER};

pub fn router(state: &AppState) -> Router<AppState> {
    let limited = Router::new()
        .route(LOGIN, get(login))
        .route(CALLBACK, get(callback))
        .route_layer(axum::middleware::from_fn_with_state(
            state.rate_limits.clone(),
            crate::ratelimit::per_address,
        ));
    Router::new()
        .route(HOME, get(home))
        .route(LOGOUT, post(logout))
        .route(REGISTER, get(register_page).post(register_submit))
        .merge(super::terms::router())
        .merge(limited)
}

fn request_id(id: &Option<Extension<RequestId>>) -> Option<String> {
    id.as_ref()
        .and_then(|Extension(id)| id.header_value().to_str().ok())
        .map(String::from)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    upstream: Option<String>,
    return_to: Option<String>,
    login_hint: Option<String>,
    /// An `idp` hint names the upstream, like `upstream`.
    idp: Option<String>,
    prompt: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
    request: Option<Extension<RequestId>>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    let chosen = query.upstream.as_deref().or(query.idp.as_deref());
    let upstream = match chosen {
        Some(id) => match state.upstreams.get(id) {
            Some(u) => u,
            None => {
                return state.pages.message(
                    StatusCode::BAD_REQUEST,
                    "Unknown sign-in option",
                    "That sign-in option does not exist. Go back and choose one of the options offered.",
                )
            }
        },
        None => match state
            .upstreams
            .implied(query.login_hint.as_deref(), &state.classification)
        {
            Some(u) => u,
            None => return choose(&state, &return_to, query.login_hint.as_deref()).await,
        },
    };
    let browser = jar
        .get(state.cookies.login())
        .map(|c| c.value().to_string());
    let force = query.prompt.as_deref() == Some("login");
    match start_login(
        &state,
        upstream,
        return_to,
        query.login_hint,
        force,
        browser,
    )
    .await
    {
        Ok((url, browser)) => {
            let jar = jar.add(state.cookies.cookie(
                state.cookies.login(),
                browser,
                state.config.session.login_timeout_secs,
            ));
            (jar, Redirect::to(url.as_str())).into_response()
        }
        Err(denial) => deny(&state, denial, request_id(&request)).await,
    }
}

/// The sign-in chooser, naming the app that asked when the sign-in continues an `/authorize`
/// request.
async fn choose(state: &AppState, return_to: &str, login_hint: Option<&str>) -> Response {
    let app_name = AppReturn::of(state, return_to).await.map(|a| a.app_name);
    let upstreams: Vec<_> = state
        .upstreams
        .0
        .iter()
        .map(|u| {
            let mut href = url::form_urlencoded::Serializer::new(String::new());
            href.append_pair("upstream", u.connector.id());
            href.append_pair("return_to", return_to);
            if let Some(hint) = login_hint {
                href.append_pair("login_hint", hint);
            }
            minijinja::context! {
                name => u.connector.display_name(),
                href => format!("{LOGIN}?{}", href.finish()),
            }
        })
        .collect();
    state.pages.render(
        StatusCode::OK,
        "choose.html",
        minijinja::context! { upstreams => upstreams, app_name => app_name },
    )
}

async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    address: Option<Extension<crate::client_address::ClientAddress>>,
    Query(query): Query<CallbackQuery>,
    request: Option<Extension<RequestId>>,
) -> Response {
    let request_id = request_id(&request);
    let browser = jar
        .get(state.cookies.login())
        .map(|c| c.value().to_string());
    let device = techpass_service::signin::Device {
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        address: address.map(|Extension(crate::client_address::ClientAddress(ip))| ip.to_string()),
    };
    match techpass_service::signin::finish_login_from(&state, query, browser.as_deref(), &device)
        .await
    {
        Ok(session) => {
            // Access granted to this email before the person's first sign-in takes effect now.
            crate::tenancy::pending::resolve_at_signin(&state, &session.user).await;
            let who = &session.identity;
            state.metrics.signin(&who.upstream, "success", "");
            tracing::info!(upstream = %who.upstream, tid = %who.tenant_id, oid = %who.object_id, mfa = %who.mfa, "signed in");
            audit(
                &state,
                AuditRecord {
                    at: state.clock.now().as_secs(),
                    event: "signin".into(),
                    outcome: "success".into(),
                    subject: Some(format!("{}/{}", who.tenant_id, who.object_id)),
                    upstream: Some(who.upstream.clone()),
                    request_id,
                    details: serde_json::json!({
                        "email": who.email,
                        "amr": who.amr,
                        "acr": who.acr,
                        "auth_time": who.auth_time,
                        "mfa": who.mfa,
                        "guest": who.guest,
                    })
                    .to_string(),
                    ..AuditRecord::default()
                },
            )
            .await;
            let jar = jar
                .remove(state.cookies.removal(state.cookies.login()))
                .add(state.cookies.cookie(
                    state.cookies.session(),
                    session.cookie,
                    state.config.session.max_lifetime_secs,
                ));
            // A first-time officer registers before going on. A first-time vendor cannot
            // register: the request itself goes on, and its refusal (with the way back to the
            // app) explains the invitation. An invitee registers (or not) on the invitation
            // page itself.
            let next = if session.user.status == UserStatus::Unregistered
                && session.user.account_type == AccountType::PublicOfficer.as_str()
                && session.return_to != crate::paths::INVITE
            {
                register_url(&session.return_to)
            } else if crate::accounts::terms_outdated(&state, &session.user) {
                // Accepted an earlier version of the terms: the current one first.
                crate::paths::terms_accept_url(&session.return_to)
            } else {
                session.return_to.clone()
            };
            // 303: never replay anything to the next URL (RFC 9700 §4.12).
            (jar, Redirect::to(&next)).into_response()
        }
        Err(denial) => deny(&state, denial, request_id).await,
    }
}

/// What the person reads for each reason: what happened and what to do.
fn explain(reason: &str) -> (&'static str, &'static str, &'static str) {
    match reason {
        "no_mfa" => (
            "Multi-factor authentication required",
            "Your sign-in did not use multi-factor authentication, which TechPass requires.",
            "Sign in again and approve the prompt in Microsoft Authenticator (or your other second factor).",
        ),
        "tenant_not_allowed" | "wrong_issuer" => (
            "Account not accepted",
            "You signed in with an account from an organisation whose accounts TechPass does not accept here.",
            "Sign in with your government (WOG) account, or the account your project manager invited.",
        ),
        "account_type_not_allowed" => (
            "Wrong sign-in option",
            "This sign-in option is not for your kind of account (public officer or vendor).",
            "Go back and choose the other sign-in option.",
        ),
        "email_unverified" => (
            "Email address not verified",
            "Your directory (Azure AD) did not confirm that the email address on your account is yours, so TechPass cannot tell from it that you are a public officer. This is common for guest accounts.",
            "Sign in with your own agency account rather than a guest account. If that is not possible, ask your directory administrator to verify the address. Quote the reference below if you contact the TechPass team.",
        ),
        "upstream_access_denied" => (
            "Sign-in cancelled",
            "The sign-in was cancelled at Microsoft.",
            "Start again if you meant to sign in.",
        ),
        "missing_state" | "unknown_or_replayed_state" | "login_expired" | "browser_mismatch" => (
            "This sign-in link is no longer valid",
            "The sign-in expired, was already completed, or was started in another browser.",
            "Start the sign-in again from this browser.",
        ),
        "missing_email" => (
            "Email address missing",
            "Your directory did not tell TechPass your email address, which TechPass needs to know who you are.",
            "Contact the TechPass team with the reference below.",
        ),
        "upstream_unreachable" | "upstream_discovery_failed" | "storage_unavailable" => (
            "Sign-in is unavailable",
            "TechPass could not complete the sign-in right now.",
            "Try again in a few minutes. If it persists, contact the TechPass team with the reference below.",
        ),
        _ => (
            "Sign-in could not be verified",
            "TechPass could not verify the response from your directory, so it did not sign you in.",
            "Try again. If it persists, contact the TechPass team with the reference below.",
        ),
    }
}

/// A refusal: audited with its reason, counted, logged with detail, and explained on a page.
async fn deny(state: &AppState, denial: Denial, request_id: Option<String>) -> Response {
    let upstream = denial.upstream.clone().unwrap_or_default();
    state.metrics.signin(&upstream, "denied", denial.reason);
    tracing::warn!(reason = denial.reason, upstream = %upstream, detail = %denial.detail, "sign-in denied");
    audit(
        state,
        AuditRecord {
            at: state.clock.now().as_secs(),
            event: "signin".into(),
            outcome: "denied".into(),
            reason: Some(denial.reason.to_string()),
            upstream: denial.upstream.clone(),
            request_id: request_id.clone(),
            // The page shows the request id as its reference: searchable in the audit log.
            reference: request_id.clone(),
            details: serde_json::json!({ "detail": denial.detail }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    let (title, text, next_step) = explain(denial.reason);
    let status = match denial.reason {
        "upstream_unreachable" | "upstream_discovery_failed" | "storage_unavailable" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        "internal_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::FORBIDDEN,
    };
    // The app that sent the person is told too, so it does not wait forever.
    let back = match &denial.return_to {
        Some(return_to) => AppReturn::of(state, return_to).await,
        None => None,
    };
    let error = if status == StatusCode::FORBIDDEN {
        ErrorCode::AccessDenied
    } else {
        ErrorCode::TemporarilyUnavailable
    };
    let app_link = back
        .as_ref()
        .and_then(|b| b.error_url(&state.metadata.issuer, error, denial.reason));
    if denial.reason == "upstream_access_denied" {
        // The person chose to leave at the upstream: back to the app at once.
        if let Some(url) = &app_link {
            return Redirect::to(url).into_response();
        }
    }
    state.pages.render(
        status,
        "denied.html",
        minijinja::context! {
            title => title, text => text, next_step => next_step,
            reason => denial.reason, request_id => request_id,
            app_link => app_link, app_name => back.map(|b| b.app_name),
        },
    )
}

#[derive(Debug, Deserialize)]
struct HomeQuery {
    signed_out: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<HomeQuery>,
) -> Response {
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = match current_session(&state, cookie.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the session");
            return state.pages.unavailable();
        }
    };
    let view = session.as_ref().map(|s| {
        let upstream_name = state
            .upstreams
            .get(&s.upstream)
            .map(|u| u.connector.display_name().to_string())
            .unwrap_or_else(|| s.upstream.clone());
        minijinja::context! {
            name => s.identity.name,
            email => s.identity.email,
            account_type => match s.account_type {
                techpass_domain::account::AccountType::PublicOfficer => "Public officer",
                techpass_domain::account::AccountType::Vendor => "Vendor",
            },
            upstream_name => upstream_name,
            tenant_id => s.tenant_id,
            object_id => s.object_id,
            guest => s.identity.guest,
            home_idp => s.identity.home_idp,
            mfa => s.identity.mfa,
            amr => s.identity.amr,
            acr => s.identity.acr,
            auth_time => rfc3339(s.auth_time),
            expires_at => rfc3339(s.expires_at),
            idle_minutes => state.config.session.idle_timeout_secs / 60,
        }
    });
    let csrf = session.as_ref().map(|s| csrf_token(&state.secrets, s));
    let status = match &session {
        Some(s) => crate::accounts::get(&state, &s.user_id)
            .await
            .ok()
            .flatten()
            .map(|u| u.status),
        None => None,
    };
    let response = state.pages.render(
        StatusCode::OK,
        "home.html",
        minijinja::context! {
            session => view,
            unregistered => status == Some(UserStatus::Unregistered),
            officer => session.as_ref().is_some_and(|s| s.account_type == AccountType::PublicOfficer),
            register_href => register_url("/"),
            account_status => status.map(UserStatus::label),
            csrf_token => csrf,
            signed_out => query.signed_out.is_some() && session.is_none(),
        },
    );
    if cookie.is_some() && session.is_none() {
        // A stale cookie: drop it.
        return (
            jar.remove(state.cookies.removal(state.cookies.session())),
            response,
        )
            .into_response();
    }
    response
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf_token: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Option<Extension<RequestId>>,
    Form(form): Form<LogoutForm>,
) -> Response {
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = match current_session(&state, cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (
                jar.remove(state.cookies.removal(state.cookies.session())),
                Redirect::to("/?signed_out=1"),
            )
                .into_response()
        }
        Err(_) => return state.pages.unavailable(),
    };
    if !csrf_valid(
        &state.secrets,
        &session,
        form.csrf_token.as_deref().unwrap_or(""),
    ) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The sign-out form was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
        );
    }
    techpass_service::logout::end_session(
        &state,
        &techpass_service::logout::SessionRef::from(&session),
        request_id(&request),
    )
    .await;
    (
        jar.remove(state.cookies.removal(state.cookies.session())),
        Redirect::to("/?signed_out=1"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct RegisterQuery {
    return_to: Option<String>,
}

/// The signed-in person's user record, or a response to give instead.
/// The signed-in person who sent a form of these pages, with its CSRF token checked: otherwise
/// the answer (to sign in, unavailable, or 403 with `refused`, which says what to do).
pub(crate) async fn form_sender(
    state: &AppState,
    jar: &CookieJar,
    return_to: &str,
    csrf: Option<&str>,
    refused: &str,
) -> Result<(super::Session, UserRecord), Response> {
    let (session, user) = signed_in_user(state, jar, return_to).await?;
    if !csrf_valid(&state.secrets, &session, csrf.unwrap_or("")) {
        return Err(state
            .pages
            .message(StatusCode::FORBIDDEN, "Request refused", refused));
    }
    Ok((session, user))
}

/// The signed-in person and their session, or the answer that sends them to sign in (and to
/// registration, then back to `return_to`), or says the database is unavailable.
async fn signed_in_user(
    state: &AppState,
    jar: &CookieJar,
    return_to: &str,
) -> Result<(super::Session, UserRecord), Response> {
    signed_in_or_back(state, jar, &register_url(return_to)).await
}

/// As [`signed_in_user`], sending someone not signed in to sign in and then to `back`.
pub(crate) async fn signed_in_or_back(
    state: &AppState,
    jar: &CookieJar,
    back: &str,
) -> Result<(super::Session, UserRecord), Response> {
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let unavailable = || state.pages.unavailable();
    let session = match current_session(state, cookie.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("return_to", back);
            return Err(Redirect::to(&format!("{LOGIN}?{}", q.finish())).into_response());
        }
        Err(_) => return Err(unavailable()),
    };
    match crate::accounts::get(state, &session.user_id).await {
        Ok(Some(user)) => Ok((session, user)),
        _ => Err(unavailable()),
    }
}

/// The page a person without an account sees: officers register; others are told to ask for an
/// invitation. It shows only the signed-in person's own details, never whether another email
/// has an account.
async fn registration_page(
    state: &AppState,
    user: &UserRecord,
    session: &super::Session,
    return_to: &str,
    error: Option<&str>,
) -> Response {
    // The app the person came from: the form's answer ends there (so the page's CSP must let
    // the redirect through), and a person who does not register can still go back to it.
    let back = AppReturn::of(state, return_to).await;
    let app_link = back.as_ref().and_then(|b| {
        b.error_url(
            &state.metadata.issuer,
            ErrorCode::AccessDenied,
            "not_registered",
        )
    });
    let app_name = back.as_ref().map(|b| b.app_name.clone());
    if user.account_type != AccountType::PublicOfficer.as_str() {
        // An invitee who signed in without the link: say where the invitation is, not "ask
        // for one".
        let waiting = crate::tenancy::invitations::waiting_for(state, user)
            .await
            .unwrap_or_default();
        let (title, text, next_step) = match waiting.first() {
            Some((invitation, tenant)) => (
                "Your invitation is waiting".to_string(),
                format!(
                    "{} invited you to TechPass. You join by opening the link in the invitation email sent to {}.",
                    tenant.name, invitation.email
                ),
                format!(
                    "Open the link in that email (it works once, until {}). If you cannot find it, ask the person who invited you to send it again.",
                    techpass_service::dates::date(invitation.expires_at)
                ),
            ),
            None => (
                "You are not registered for TechPass".to_string(),
                "TechPass accounts for vendors and contractors are by invitation only.".to_string(),
                "Ask your project manager to invite you; then open the link in the invitation email.".to_string(),
            ),
        };
        return state.pages.render(
            StatusCode::FORBIDDEN,
            "denied.html",
            minijinja::context! {
                title => title,
                text => text,
                next_step => next_step,
                reason => "not_registered",
                app_link => app_link, app_name => app_name,
            },
        );
    }
    state.pages.render_with_form_target(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "register.html",
        minijinja::context! {
            name => user.name, email => user.email,
            terms_version => state.config.accounts.terms_version,
            csrf_token => csrf_token(&state.secrets, session),
            return_to => return_to, error => error,
            app_link => app_link, app_name => app_name,
        },
        back.and_then(|b| b.form_action_source()).as_deref(),
    )
}

async fn register_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<RegisterQuery>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    let (session, user) = match signed_in_user(&state, &jar, &return_to).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if user.status != UserStatus::Unregistered {
        return Redirect::to(&return_to).into_response();
    }
    registration_page(&state, &user, &session, &return_to, None).await
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    csrf_token: Option<String>,
    accept_terms: Option<String>,
    terms_version: Option<String>,
    return_to: Option<String>,
}

async fn register_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Option<Extension<RequestId>>,
    Form(form): Form<RegisterForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    let (session, user) = match form_sender(
        &state,
        &jar,
        &return_to,
        form.csrf_token.as_deref(),
        "The registration form was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
    )
    .await
    {
        Ok(v) => v,
        Err(response) => return response,
    };
    if user.status != UserStatus::Unregistered {
        return Redirect::to(&return_to).into_response();
    }
    if user.account_type != AccountType::PublicOfficer.as_str() {
        return registration_page(&state, &user, &session, &return_to, None).await;
    }
    let current_terms = &state.config.accounts.terms_version;
    if form.accept_terms.as_deref() != Some("yes")
        || form.terms_version.as_deref() != Some(current_terms.as_str())
    {
        return registration_page(
            &state,
            &user,
            &session,
            &return_to,
            Some("Please read and accept the terms of use and privacy policy to register."),
        )
        .await;
    }
    let registered = crate::accounts::register(
        &state,
        &user,
        current_terms,
        &session.upstream,
        request_id(&request),
    )
    .await;
    match registered {
        Ok(_) => Redirect::to(&return_to).into_response(),
        Err(_) => state.pages.unavailable(),
    }
}
