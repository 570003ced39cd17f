//! The self-service portal under `/portal`: server-rendered pages (the [`crate::web::Pages`]
//! environment, no scripts) for everyone signed in, for tenant admins and for platform admins.
//!
//! This module owns the portal's route table (one router per area file), the signed-in person
//! as an extractor ([`Me`]: session → [`Actor`], blocked accounts refused, the unregistered sent
//! to register), posted forms checked against the session's CSRF token before anything else
//! runs ([`Posted`]), pagination, result messages (`?done=<key>`), the confirmation page of
//! destructive actions and the one mapping of service errors to pages.
//!
//! It must not hold business rules or decide who may do what: every change goes through the
//! same service functions as the JSON API ([`crate::tenancy`], [`crate::webhooks`],
//! [`crate::accounts`]), which check the actor ([`crate::accounts`] does not: the admin pages
//! check for a platform admin before calling it). The only write outside a service is "sign
//! out everywhere" (`account.rs`), which has none yet. The few reads without a service function
//! (audit log, user search, sessions, a person's apps, names of user ids) are marked where they
//! happen.

// A handler's error is the page that replaces it (a refusal, a 404): a `Response`, returned once
// per request and never carried further, so its size does not matter.
#![allow(clippy::result_large_err)]

mod access;
mod account;
mod admin;
mod apps;
mod audit;
mod ci;
mod credentials;
mod device;
mod forms;
mod groups;
mod invitations;
mod lists;
pub use crate::paths;
mod tenants;
mod webhooks;

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Serialize;
use techpass_domain::gate::UserStatus;
use techpass_store::UserRecord;

use crate::signin::routes::{register_url, LOGIN};
use crate::signin::{csrf_token, current_session, Session};
use crate::state::AppState;
use crate::tenancy::{Actor, TenancyError};

pub use forms::{confirm, done, done_message, Confirm, Fields, Flash, Posted};
pub use lists::{date, datetime, end_of_day, slice, trim, window, Pager, PER_PAGE};
pub use paths::fill;

/// The portal's pages (their templates are registered by [`crate::web::Pages`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(account::router())
        .merge(tenants::router())
        .merge(apps::router())
        .merge(credentials::router())
        .merge(ci::router())
        .merge(access::router())
        .merge(groups::router())
        .merge(invitations::router())
        .merge(webhooks::router())
        .merge(audit::router())
        .merge(admin::router())
        .merge(device::router())
        .route(paths::SHOWN, axum::routing::get(shown))
}

/// Answers a form whose result is shown once: stores it for the person and redirects to it
/// (Post/Redirect/Get), so a reload neither repeats the action nor shows the secret again.
pub async fn show_once(state: &AppState, me: &Me, shown: &reveal::Shown) -> Page {
    match reveal::stash(state, &me.user.id, shown).await {
        Ok(id) => Ok(Redirect::to(&fill(paths::SHOWN, &[("id", &id)])).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "could not keep a value to show once");
            Err(state.pages.unavailable())
        }
    }
}

/// One value of a page shown once.
pub fn shown_value(label: &str, name: &str, value: String, secret: bool) -> reveal::ShownValue {
    reveal::ShownValue {
        label: label.into(),
        name: name.into(),
        value,
        secret,
    }
}

async fn shown(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    me: Me,
) -> Page {
    match reveal::take(&state, &me.user.id, &id).await {
        Ok(Some(shown)) => Ok(render(
            &state,
            &me,
            &Flash::default(),
            "portal/secret.html",
            minijinja::context! {
                title => shown.title,
                intro => shown.intro,
                values => shown.values,
                next_href => shown.next_href,
                next_label => shown.next_label,
            },
        )),
        Ok(None) => Err(problem(
            &state,
            StatusCode::GONE,
            "Shown only once",
            "A new secret is shown once, for a few minutes, to the person who created it, and this one has been shown or has expired. If it was not copied, create a new secret and revoke the one you cannot use.",
        )),
        Err(e) => Err(unavailable(&state, &e)),
    }
}

/// What a portal handler returns: the page, or the page that replaces it (refusal, error).
pub type Page = Result<Response, Response>;

/// The signed-in person the portal acts for. Extracting it sends the unauthenticated to sign in
/// (and back), the unregistered to register, and refuses blocked accounts with a 403 page.
#[derive(Debug, Clone)]
pub struct Me {
    pub session: Session,
    pub user: UserRecord,
    pub actor: Actor,
    pub csrf: String,
}

/// How the pages show the signed-in person.
#[derive(Debug, Serialize)]
pub struct MeView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub platform_admin: bool,
}

impl Me {
    pub fn platform_admin(&self) -> bool {
        self.actor.is_platform_admin()
    }

    pub fn view(&self) -> MeView {
        MeView {
            name: self.user.name.clone(),
            email: self.user.email.clone(),
            platform_admin: self.platform_admin(),
        }
    }
}

use crate::accounts;
/// Suspended, disabled, expired and terminated accounts (and unknown statuses) use nothing.
pub use crate::accounts::blocked;
use techpass_service::reveal;

impl FromRequestParts<AppState> for Me {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Me, Response> {
        // After signing in, come back to the page (a form's target serves no GET: the portal).
        let return_to = if parts.method == Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or(paths::PORTAL.to_string(), |p| p.as_str().to_string())
        } else {
            paths::PORTAL.to_string()
        };
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie = jar
            .get(state.cookies.session())
            .map(|c| c.value().to_string());
        let session = match current_session(state, cookie.as_deref()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login(&return_to)),
            Err(e) => return Err(unavailable(state, &e)),
        };
        // Bounded staleness holds for the portal too: past the bound, the upstream confirms
        // the person before they change anything; otherwise they sign in there again.
        match techpass_service::reverify::check(
            state,
            &session.user_id,
            Some(&session.upstream),
            session.auth_time,
            None,
        )
        .await
        {
            Ok(verdict) if verdict.allows() => {}
            Ok(_) => return Err(to_fresh_login(&return_to)),
            Err(e) => return Err(unavailable(state, &e)),
        }
        let user = match accounts::get(state, &session.user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(to_login(&return_to)),
            Err(e) => return Err(unavailable(state, &e)),
        };
        if user.status == UserStatus::Unregistered {
            return Err(Redirect::to(&register_url(&return_to)).into_response());
        }
        if blocked(&user) {
            // The portal is closed to them, so the way forward is signing out, not "back".
            return Err(state.pages.render(
                StatusCode::FORBIDDEN,
                "portal/problem.html",
                minijinja::context! {
                    title => "Your account is blocked",
                    text => format!(
                        "Your TechPass account is {}, so the portal is closed to you. Contact the TechPass team if you think this is a mistake.",
                        user.status.as_str()
                    ),
                    sign_out_csrf => csrf_token(&state.secrets, &session),
                },
            ));
        }
        let actor = match accounts::actor(state, &user).await {
            Ok(actor) => actor,
            Err(e) => return Err(unavailable(state, &e)),
        };
        let csrf = csrf_token(&state.secrets, &session);
        Ok(Me {
            actor,
            session,
            user,
            csrf,
        })
    }
}

/// To the upstream's sign-in, even with a live session (the upstream must confirm the person).
fn to_fresh_login(return_to: &str) -> Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    q.append_pair("prompt", "login");
    Redirect::to(&format!("{LOGIN}?{}", q.finish())).into_response()
}

fn to_login(return_to: &str) -> Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    Redirect::to(&format!("{LOGIN}?{}", q.finish())).into_response()
}

fn unavailable(state: &AppState, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "the portal cannot reach its database");
    state.pages.unavailable()
}

/// A page with a title and an explanation, and a way back to the portal.
pub fn problem(state: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    state.pages.render(
        status,
        "portal/problem.html",
        minijinja::context! { title => title, text => text, portal => paths::PORTAL },
    )
}

/// The answer to a form without the session's CSRF token.
pub fn refused(state: &AppState) -> Response {
    problem(
        state,
        StatusCode::FORBIDDEN,
        "Request refused",
        "The form was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
    )
}

/// A service error shown as a page of its own (no form to show it on).
pub fn error_page(state: &AppState, error: TenancyError) -> Response {
    match error {
        TenancyError::NotFound(what) => problem(
            state,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("The {what} does not exist, or it is not one you can see."),
        ),
        TenancyError::Forbidden(why) => problem(
            state,
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("You cannot do this: {why}."),
        ),
        TenancyError::Invalid(message) => problem(
            state,
            StatusCode::BAD_REQUEST,
            "That did not work",
            &message,
        ),
        TenancyError::Conflict(message) => {
            problem(state, StatusCode::CONFLICT, "That did not work", &message)
        }
        TenancyError::Store(e) => unavailable(state, &e),
    }
}

/// On a form that names a person by email, an unknown one is the form's problem, not a
/// missing page.
pub fn person_on_form(error: TenancyError) -> TenancyError {
    match error {
        TenancyError::NotFound("user") => TenancyError::Invalid(
            "no TechPass account has that email address or id; the person must sign in to TechPass once first (on an app's access page, grant access by email instead)".into(),
        ),
        other => other,
    }
}

/// For a form: `Invalid` and `Conflict` are shown on the form again (400, 409) with what was
/// typed; everything else is a page of its own.
pub fn form_failure(
    state: &AppState,
    error: TenancyError,
    fields: &Fields,
) -> Result<Flash, Response> {
    match error {
        TenancyError::Invalid(m) => Ok(Flash::error(StatusCode::BAD_REQUEST, m, fields)),
        TenancyError::Conflict(m) => Ok(Flash::error(StatusCode::CONFLICT, m, fields)),
        other => Err(error_page(state, other)),
    }
}

/// Renders a portal page: the person, the CSRF token of its forms, the flash, and `context`.
pub fn render(
    state: &AppState,
    me: &Me,
    flash: &Flash,
    template: &str,
    context: minijinja::Value,
) -> Response {
    state.pages.render(
        flash.status,
        template,
        minijinja::context! {
            me => me.view(),
            csrf_token => me.csrf,
            done => flash.done,
            error => flash.error,
            form => flash.form,
            dev => crate::state::AppState::dev_tools_enabled(state).then(|| minijinja::context! {
                outbox => crate::paths::OUTBOX,
                demo => crate::paths::DEMO,
                make_admin => crate::paths::MAKE_PLATFORM_ADMIN,
                switch_person => crate::paths::SWITCH_PERSON,
            }),
            links => minijinja::context! {
                portal => paths::PORTAL,
                tenants => paths::TENANTS,
                admin => paths::ADMIN,
                admin_queue => paths::ADMIN_QUEUE,
                admin_tenants => paths::ADMIN_TENANTS,
                admin_users => paths::ADMIN_USERS,
                admin_keys => paths::ADMIN_KEYS,
                admin_audit => paths::ADMIN_AUDIT,
            },
            ..context
        },
    )
}

/// The email (or the name, or the id) of each user id, for lists that name people.
pub async fn emails_of(
    state: &AppState,
    ids: &[String],
) -> Result<BTreeMap<String, String>, Response> {
    accounts::labels(state, ids)
        .await
        .map_err(|e| unavailable(state, &e))
}
