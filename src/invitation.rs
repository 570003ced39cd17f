//! The invitee's pages: `/invite?token=…` from the email. The secret moves at once into a
//! short-lived HttpOnly cookie and the browser is sent on to `/invite` without it, so the link
//! never sits in a logged path, a stored return URL or a Referer. Then the person signs in
//! upstream (the invited email picks the right directory), sees the invitation, and accepts it
//! with a CSRF-protected form.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use crate::paths::LOGIN;
use crate::signin::{csrf_token, csrf_valid, current_session, Session};
use crate::state::AppState;
use crate::tenancy::invitations::{self, Invited, LinkProblem};
use techpass_store::UserRecord;

pub use crate::paths::INVITE;
/// How long the link's secret waits in the browser for the sign-in to finish.
const PENDING_SECS: u64 = 900;

pub fn router() -> Router<AppState> {
    Router::new().route(INVITE, get(page).post(submit))
}

#[derive(Debug, Deserialize)]
struct InviteQuery {
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AcceptForm {
    csrf_token: Option<String>,
    accept_terms: Option<String>,
    terms_version: Option<String>,
}

fn explain(problem: LinkProblem) -> (&'static str, &'static str) {
    match problem {
        LinkProblem::Unknown => (
            "This invitation link is not valid",
            "The link is wrong, or a newer invitation replaced it. Use the link in the latest invitation email, or ask your project manager to invite you again.",
        ),
        LinkProblem::Expired => (
            "This invitation has expired",
            "Invitation links work for a limited time. Ask your project manager to send it again.",
        ),
        LinkProblem::Revoked => (
            "This invitation was withdrawn",
            "The tenant's admins withdrew this invitation. Ask your project manager if you still need access.",
        ),
        LinkProblem::AlreadyAccepted => (
            "This invitation was already used",
            "Each invitation link works once. If you accepted it, you can sign in to the tenant's apps now.",
        ),
        LinkProblem::WrongEmail => (
            "This invitation is for another email address",
            "You signed in with an account whose email address is not the one invited. Sign out, then open the link again and sign in with the invited account.",
        ),
        LinkProblem::EmailUnverified => (
            "Your email address is not verified",
            "You signed in with the invited address, but your directory (Azure AD) did not confirm that the address is yours, so TechPass cannot accept the invitation with it. This is common for guest accounts.",
        ),
        LinkProblem::AccountBlocked => (
            "Your account cannot accept invitations",
            "Your TechPass account is suspended, disabled or closed. Contact the TechPass team.",
        ),
        LinkProblem::TenantInactive => (
            "This tenant is not active",
            "The tenant that invited you is not active on TechPass at the moment. Ask your project manager.",
        ),
        LinkProblem::TermsRequired => (
            "Please accept the terms",
            "Accepting this invitation registers you; read and accept the terms of use and privacy policy to go on.",
        ),
    }
}

fn problem_page(state: &AppState, problem: LinkProblem) -> Response {
    let (title, text) = explain(problem);
    let status = match problem {
        LinkProblem::TermsRequired => StatusCode::BAD_REQUEST,
        LinkProblem::Unknown => StatusCode::NOT_FOUND,
        _ => StatusCode::FORBIDDEN,
    };
    state.pages.render(
        status,
        "denied.html",
        minijinja::context! { title => title, text => text, next_step => "", reason => problem.reason() },
    )
}

async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<InviteQuery>,
) -> Response {
    if let Some(token) = query.token {
        // Park the secret in a cookie and drop it from the URL.
        let jar = jar.add(
            state
                .cookies
                .cookie(state.cookies.invitation(), token, PENDING_SECS),
        );
        return (jar, Redirect::to(INVITE)).into_response();
    }
    let Some(token) = jar
        .get(state.cookies.invitation())
        .map(|c| c.value().to_string())
    else {
        return problem_page(&state, LinkProblem::Unknown);
    };
    let (session, user) = match signed_in(&state, &jar, &token).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    match invitations::open(&state, &token, &user).await {
        Ok(invited) => render(&state, &session, &user, &invited, None),
        Err(problem) => problem_page(&state, problem),
    }
}

async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<AcceptForm>,
) -> Response {
    let Some(token) = jar
        .get(state.cookies.invitation())
        .map(|c| c.value().to_string())
    else {
        return problem_page(&state, LinkProblem::Unknown);
    };
    let (session, user) = match signed_in(&state, &jar, &token).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if !csrf_valid(
        &state.secrets,
        &session,
        form.csrf_token.as_deref().unwrap_or(""),
    ) {
        return state.pages.message(
            StatusCode::FORBIDDEN,
            "Request refused",
            "The form was not sent by this TechPass page (its security token is missing or wrong). Go back, reload the page and try again.",
        );
    }
    let terms = (form.accept_terms.as_deref() == Some("yes"))
        .then_some(form.terms_version.as_deref())
        .flatten();
    match invitations::accept(&state, &token, &user, terms).await {
        Ok(invited) => {
            let jar = jar.remove(state.cookies.removal(state.cookies.invitation()));
            let text = format!(
                "You joined {}. Its admins can now give you access to its apps; sign in to them with TechPass.",
                invited.tenant.name
            );
            (jar, state.pages.message(StatusCode::OK, "Invitation accepted", &text)).into_response()
        }
        Err(LinkProblem::TermsRequired) => match invitations::open(&state, &token, &user).await {
            Ok(invited) => render(
                &state,
                &session,
                &user,
                &invited,
                Some("Please read and accept the terms of use and privacy policy to accept the invitation."),
            ),
            Err(problem) => problem_page(&state, problem),
        },
        Err(problem) => problem_page(&state, problem),
    }
}

fn render(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    invited: &Invited,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "invitation.html",
        minijinja::context! {
            tenant_name => invited.tenant.name,
            email => invited.invitation.email,
            name => user.name,
            signed_in_email => user.email,
            access_ends => invited.invitation.access_ends_at.map(techpass_service::dates::date),
            expires => techpass_service::dates::date(invited.invitation.expires_at),
            registers => invited.registers,
            terms_version => state.config.accounts.terms_version,
            csrf_token => csrf_token(&state.secrets, session),
            action => INVITE,
            error => error,
        },
    )
}

/// The signed-in person, or a redirect to sign in (with the invited email as the hint that
/// picks the right directory) and back here.
async fn signed_in(
    state: &AppState,
    jar: &CookieJar,
    token: &str,
) -> Result<(Session, UserRecord), Response> {
    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    match current_session(state, cookie.as_deref()).await {
        Ok(Some(session)) => match crate::accounts::get(state, &session.user_id).await {
            Ok(Some(user)) => Ok((session, user)),
            _ => Err(state.pages.unavailable()),
        },
        Ok(None) => {
            let hint = invitations::email_of_link(state, token).await;
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("return_to", INVITE);
            if let Some(hint) = hint {
                q.append_pair("login_hint", &hint);
            }
            Err(Redirect::to(&format!("{LOGIN}?{}", q.finish())).into_response())
        }
        Err(_) => Err(state.pages.unavailable()),
    }
}
