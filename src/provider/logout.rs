//! Ending sessions: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and back-channel
//! logout (OpenID Connect Back-Channel Logout 1.0).
//!
//! Ending an SSO session deletes it and revokes the grants made in it (the refresh families of
//! that session only; the person's other devices keep theirs), then tells every app of the
//! session that registered a `backchannel_logout_uri`, in the background with bounded retries,
//! so the person's logout never waits on an app.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde_json::json;
use techpass_domain::client::match_redirect_uri;
use techpass_oidc::{Params, Secrets};
use techpass_store::AuditRecord;

use super::clients::find_client;
use super::mint::PURPOSE_SID;
use crate::signin::{audit, csrf_token, current_session, Session};
use crate::state::AppState;

/// Attempts per back-channel notification, with doubling pauses from one second.
pub const BACKCHANNEL_ATTEMPTS: u32 = 3;
/// How long a logout token is valid (Back-Channel Logout §2.4 recommends a short lifetime).
const LOGOUT_TOKEN_LIFETIME_SECS: i64 = 120;

/// Which session to end.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id_hash: String,
    pub user_id: String,
    /// `tid/oid`, for the audit log.
    pub subject: String,
    pub upstream: String,
}

impl From<&Session> for SessionRef {
    fn from(s: &Session) -> Self {
        SessionRef {
            id_hash: s.id_hash.clone(),
            user_id: s.user_id.clone(),
            subject: format!("{}/{}", s.tenant_id, s.object_id),
            upstream: s.upstream.clone(),
        }
    }
}

impl From<&techpass_store::SessionRecord> for SessionRef {
    fn from(s: &techpass_store::SessionRecord) -> Self {
        SessionRef {
            id_hash: s.id_hash.clone(),
            user_id: s.user_id.clone(),
            subject: format!("{}/{}", s.tenant_id, s.object_id),
            upstream: s.upstream.clone(),
        }
    }
}

/// Ends a session: deleted, its grants revoked, its apps told (in the background). Returns the
/// back-channel deliveries under way, for a caller that must wait for them (the CLI).
pub async fn end_session(
    state: &AppState,
    session: &SessionRef,
    request_id: Option<String>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let now = state.clock.now().as_secs();
    let grants = state
        .store
        .grants_of_session(&session.id_hash)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list the session's grants");
            Vec::new()
        });
    if let Err(e) = state.store.delete_session(&session.id_hash).await {
        tracing::error!(error = %e, "could not delete the session");
    }
    let revoked = state
        .store
        .revoke_grants_of_session(&session.id_hash, now)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not revoke the session's grants");
            0
        });
    let mut client_ids: Vec<String> = grants.into_iter().map(|g| g.client_id).collect();
    client_ids.sort();
    client_ids.dedup();
    let sid = state.secrets.keyed_hash(PURPOSE_SID, &session.id_hash);
    let mut deliveries = Vec::new();
    for client_id in client_ids {
        match find_client(state.store.as_ref(), &client_id).await {
            Ok(Some(client)) => {
                if let Some(uri) = client.backchannel_logout_uri {
                    deliveries.push(spawn_backchannel(
                        state.clone(),
                        client.id,
                        uri,
                        session.user_id.clone(),
                        sid.clone(),
                    ));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, %client_id, "could not read a client for back-channel logout")
            }
        }
    }
    audit(
        state,
        AuditRecord {
            at: now,
            event: "signout".into(),
            outcome: "success".into(),
            subject: Some(session.subject.clone()),
            upstream: Some(session.upstream.clone()),
            request_id,
            details: json!({ "grants_revoked": revoked }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    deliveries
}

/// Back-Channel Logout §2.4: the logout token.
fn logout_token(state: &AppState, client_id: &str, sub: &str, sid: &str) -> Option<String> {
    let now = state.clock.now().as_secs();
    let claims = json!({
        "iss": state.metadata.issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME_SECS,
        "jti": Secrets::random_token().ok()?,
        "sub": sub,
        "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    state.keys.sign_jwt("logout+jwt", &claims).ok()
}

fn spawn_backchannel(
    state: AppState,
    client_id: String,
    uri: String,
    sub: String,
    sid: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(token) = logout_token(&state, &client_id, &sub, &sid) else {
            tracing::error!(%client_id, "could not sign a logout token");
            return;
        };
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=BACKCHANNEL_ATTEMPTS {
            let sent = state
                .http
                .post(&uri, |r| r.form(&[("logout_token", token.as_str())]))
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(%client_id, attempt, "back-channel logout delivered");
                    return;
                }
                Ok(r) => {
                    tracing::warn!(%client_id, attempt, status = r.status().as_u16(), "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(%client_id, attempt, error = %e, "back-channel logout failed")
                }
            }
            if attempt < BACKCHANNEL_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        tracing::error!(%client_id, "back-channel logout not delivered; giving up");
    })
}

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
    // The ID token hint names the app and the person; an expired hint is still a hint.
    let hint = params
        .get("id_token_hint")
        .map(|h| state.keys.verify_jwt(h).map(|(_, c)| c));
    let hint = match hint {
        Some(Ok(claims)) if claims["iss"] == state.metadata.issuer.as_str() => Some(claims),
        Some(_) => {
            return bad_request_page(
                state,
                "The sign-out request carries an ID token TechPass did not issue",
            )
        }
        None => None,
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
            .and_then(crate::provider::app_return::form_action_source)
            .as_deref(),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
