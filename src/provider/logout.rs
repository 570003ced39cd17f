//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the confirmation page and its
//! answer. Ending the session and telling apps over the back channel is the service layer's
//! ([`techpass_service::logout`]).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use techpass_domain::client::match_redirect_uri;
use techpass_oidc::Params;

pub use techpass_service::logout::*;

use super::clients::find_client;
use super::mint::PURPOSE_SID;
use crate::signin::{csrf_token, current_session, Session};
use crate::state::AppState;

pub async fn end_session_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let params = Params::parse(q.unwrap_or_default().as_bytes());
    handle(&state, jar, params, None).await
}

pub async fn end_session_post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = super::token::form_params(&headers, &body);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    handle(&state, jar, params, request_id).await
}

fn bad_request_page(state: &AppState, why: &str) -> Response {
    state.pages.message(
        StatusCode::BAD_REQUEST,
        "This sign-out request is not valid",
        &format!("{why}. You are still signed in; sign out from TechPass's own page instead."),
    )
}

async fn handle(
    state: &AppState,
    jar: CookieJar,
    params: Result<Params, techpass_oidc::OAuthError>,
    request_id: Option<String>,
) -> Response {
    let params = match params {
        Ok(p) => p,
        Err(e) => return bad_request_page(state, &e.description),
    };
    // The ID token hint names the app and the person; an expired hint is still a hint, but
    // only an ID token of ours is one (an access token never stands in for it).
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(h) => match id_token_hint(state, h).await {
            Ok(claims) => Some(claims),
            Err(HintRefused::NotOurs) => {
                return bad_request_page(
                    state,
                    "The sign-out request carries an ID token TechPass did not issue",
                )
            }
            Err(HintRefused::NotAnIdToken) => {
                return bad_request_page(
                    state,
                    "The sign-out request carries a token that is not an ID token",
                )
            }
            Err(HintRefused::Unavailable) => {
                return state.pages.message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TechPass cannot sign you out just now",
                    "Try again in a moment. You are still signed in.",
                )
            }
        },
    };
    let hinted_client = hint
        .as_ref()
        .and_then(|c| c["aud"].as_str().map(String::from));
    let client_id = match (params.get("client_id"), hinted_client) {
        (Some(a), Some(b)) if a != b => {
            return bad_request_page(state, "The app named does not match the ID token")
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b,
    };
    // post_logout_redirect_uri: exact match against the app's registration, else no redirect.
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = &client_id else {
                return bad_request_page(
                    state,
                    "A return address needs the app to be named (id_token_hint or client_id)",
                );
            };
            let client = match find_client(state.store.as_ref(), client_id).await {
                Ok(Some(c)) => c,
                _ => return bad_request_page(state, "The app is not registered with TechPass"),
            };
            if match_redirect_uri(&client.post_logout_redirect_uris, uri, !client.confidential)
                .is_none()
            {
                return bad_request_page(
                    state,
                    "The return address is not registered for this app",
                );
            }
            Some(uri.to_string())
        }
    };

    let cookie = jar
        .get(state.cookies.session())
        .map(|c| c.value().to_string());
    let session = current_session(state, cookie.as_deref())
        .await
        .ok()
        .flatten();
    if let Some(session) = &session {
        let hint_matches = hint.as_ref().is_some_and(|c| {
            c["sub"].as_str() == Some(session.user_id.as_str())
                && c["sid"].as_str().is_none_or(|sid| {
                    sid == state.secrets.keyed_hash(PURPOSE_SID, &session.id_hash)
                })
        });
        let confirmed = params
            .get("csrf_token")
            .is_some_and(|t| crate::signin::csrf_valid(&state.secrets, session, t));
        if !hint_matches && !confirmed {
            // Without proof that the request is the person's own, ask (logout CSRF).
            return confirm_page(state, session, &params, redirect.as_deref());
        }
        end_session(state, &SessionRef::from(session), request_id).await;
    }
    let mut removal = Cookie::build((state.cookies.session(), ""))
        .path("/")
        .build();
    removal.make_removal();
    let jar = jar.remove(removal);
    match redirect {
        Some(uri) => {
            let Ok(mut url) = url::Url::parse(&uri) else {
                return bad_request_page(state, "The return address is malformed");
            };
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            (jar, Redirect::to(url.as_str())).into_response()
        }
        None => (
            jar,
            state.pages.message(
                StatusCode::OK,
                "You have signed out",
                "You have signed out of TechPass.",
            ),
        )
            .into_response(),
    }
}

/// The confirmation form; its answer redirects to the app's (checked) `post_logout_redirect_uri`,
/// so the page's `form-action` admits that origin.
fn confirm_page(
    state: &AppState,
    session: &Session,
    params: &Params,
    redirect: Option<&str>,
) -> Response {
    let fields: Vec<_> = params
        .iter()
        .filter(|(k, _)| *k != "csrf_token")
        .map(|(k, v)| minijinja::context! { name => k, value => v })
        .collect();
    let mut response = state.pages.render_with_form_target(
        StatusCode::OK,
        "confirm_logout.html",
        minijinja::context! {
            action => techpass_oidc::paths::END_SESSION,
            fields => fields,
            csrf_token => csrf_token(&state.secrets, session),
        },
        redirect
            .and_then(crate::app_return::form_action_source)
            .as_deref(),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
