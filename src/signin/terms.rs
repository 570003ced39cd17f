//! The terms of use and privacy policy: `/terms` shows the current version to anyone, and
//! `/terms/accept` asks a person who accepted an earlier version to accept the current one
//! before going on (sign-in and `/authorize` send them there), then back to where they were.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use techpass_oidc::ErrorCode;
use techpass_store::UserRecord;
use tower_http::request_id::RequestId;

use super::routes::{form_sender, signed_in_or_back};
use super::{csrf_token, safe_return_to, Session};
use crate::app_return::AppReturn;
use crate::paths::{terms_accept_url, TERMS, TERMS_ACCEPT};
use crate::state::AppState;
use techpass_service::accounts;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(TERMS, get(document))
        .route(TERMS_ACCEPT, get(accept_page).post(accept_submit))
}

/// The document, for anyone (linked from every page's footer and from the forms that accept it).
async fn document(State(state): State<AppState>) -> Response {
    state.pages.render(
        StatusCode::OK,
        "terms.html",
        minijinja::context! {
            version => state.terms.version,
            document => minijinja::Value::from_safe_string(state.terms.html.clone()),
        },
    )
}

#[derive(Debug, Deserialize)]
struct AcceptQuery {
    return_to: Option<String>,
}

async fn accept_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<AcceptQuery>,
) -> Response {
    let return_to = safe_return_to(query.return_to.as_deref());
    let (session, user) = match signed_in_or_back(&state, &jar, &terms_accept_url(&return_to)).await
    {
        Ok(v) => v,
        Err(response) => return response,
    };
    if !accounts::terms_outdated(&state, &user) {
        return Redirect::to(&return_to).into_response();
    }
    acceptance_page(&state, &user, &session, &return_to, None).await
}

#[derive(Debug, Deserialize)]
struct AcceptForm {
    csrf_token: Option<String>,
    accept_terms: Option<String>,
    terms_version: Option<String>,
    return_to: Option<String>,
}

async fn accept_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Option<Extension<RequestId>>,
    Form(form): Form<AcceptForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    let (session, user) = match form_sender(
        &state,
        &jar,
        &return_to,
        form.csrf_token.as_deref(),
        "The form accepting the terms was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
    )
    .await
    {
        Ok(v) => v,
        Err(response) => return response,
    };
    if !accounts::terms_outdated(&state, &user) {
        return Redirect::to(&return_to).into_response();
    }
    if form.accept_terms.as_deref() != Some("yes") {
        return acceptance_page(
            &state,
            &user,
            &session,
            &return_to,
            Some("Please tick the box to accept the new terms of use and privacy policy, or return to the app without accepting."),
        )
        .await;
    }
    let version = form.terms_version.unwrap_or_default();
    let request_id = request
        .as_ref()
        .and_then(|Extension(id)| id.header_value().to_str().ok())
        .map(String::from);
    match accounts::accept_terms(&state, &user, &version, request_id).await {
        Ok(true) => Redirect::to(&return_to).into_response(),
        // The version changed while the page was open: show the current one.
        Ok(false) => {
            acceptance_page(
                &state,
                &user,
                &session,
                &return_to,
                Some("The terms changed again while this page was open. Please read and accept the current version."),
            )
            .await
        }
        Err(_) => state.pages.unavailable(),
    }
}

async fn acceptance_page(
    state: &AppState,
    user: &UserRecord,
    session: &Session,
    return_to: &str,
    error: Option<&str>,
) -> Response {
    let back = AppReturn::of(state, return_to).await;
    let app_link = back.as_ref().and_then(|b| {
        b.error_url(
            &state.metadata.issuer,
            ErrorCode::AccessDenied,
            "the person did not accept the new terms of use",
        )
    });
    state.pages.render_with_form_target(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "terms_accept.html",
        minijinja::context! {
            email => user.email,
            accepted_version => user.terms_version,
            version => state.terms.version,
            document => minijinja::Value::from_safe_string(state.terms.html.clone()),
            csrf_token => csrf_token(&state.secrets, session),
            return_to => return_to, error => error,
            app_link => app_link,
            app_name => back.as_ref().map(|b| b.app_name.clone()),
        },
        back.and_then(|b| b.form_action_source()).as_deref(),
    )
}
