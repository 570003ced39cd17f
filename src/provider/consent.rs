//! The consent page (OpenID Connect Core §3.1.2.4; issue 13 item 4): shown by `/authorize`
//! when the person must agree before an app receives their identity, answered at `/consent`.
//!
//! The form carries the authorization request as a local return URL. Allowing records the
//! consent and goes back to that request, which then issues the code; refusing sends the app
//! `access_denied` (with its `state` and TechPass's `iss`), recovered from the return URL exactly
//! as `/authorize` checks it, so the form can never redirect anywhere else.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use techpass_oidc::{paths as oidc_paths, ErrorCode, Params};
use techpass_service::consent;
use techpass_store::{AuditRecord, UserRecord};
use tower_http::request_id::RequestId;

use super::clients::{find_client, Client};
use super::parse_scope;
use crate::app_return::AppReturn;
use crate::paths::CONSENT;
use crate::signin::routes::form_sender;
use crate::signin::{audit, csrf_token, safe_return_to, Session};
use crate::state::AppState;

/// The consent page for `client` receiving `scope` for `user`; `return_to` is the authorization
/// request to resume once they allow it.
pub async fn page(
    state: &AppState,
    user: &UserRecord,
    session: &Session,
    client: &Client,
    scope: &[String],
    return_to: &str,
    back: &AppReturn,
) -> Response {
    let tenant_name = match &client.tenant_id {
        Some(id) => match state.store.get_tenant(id).await {
            Ok(t) => t.map(|t| t.name),
            Err(_) => return state.pages.unavailable(),
        },
        None => None,
    };
    state.pages.render_with_form_target(
        StatusCode::OK,
        "consent.html",
        minijinja::context! {
            app_name => client.name, tenant_name => tenant_name,
            claims => consent::claims(scope),
            email => user.email, name => user.name,
            csrf_token => csrf_token(&state.secrets, session),
            return_to => return_to, action => CONSENT,
        },
        back.form_action_source().as_deref(),
    )
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf_token: Option<String>,
    return_to: Option<String>,
    decision: Option<String>,
}

/// The authorization request a consent form resumes: its app and scope, if it is a request of
/// a registered app with a registered redirect URI and a valid scope.
async fn resumed(state: &AppState, return_to: &str) -> Option<(Client, Vec<String>, AppReturn)> {
    let back = AppReturn::of(state, return_to).await?;
    let query = return_to
        .strip_prefix(oidc_paths::AUTHORIZE)?
        .strip_prefix('?')?;
    let params = Params::parse(query.as_bytes()).ok()?;
    let client = find_client(state.store.as_ref(), params.get("client_id")?)
        .await
        .ok()??;
    let scope = parse_scope(params.get("scope").unwrap_or("")).ok()?;
    Some((client, scope, back))
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Option<Extension<RequestId>>,
    Form(form): Form<ConsentForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    let (_, user) = match form_sender(
        &state,
        &jar,
        &return_to,
        form.csrf_token.as_deref(),
        "The consent form was not sent by this TechPass page (its security token is missing or wrong). Go back to the app and sign in again.",
    )
    .await
    {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some((client, scope, back)) = resumed(&state, &return_to).await else {
        return state.pages.message(
            StatusCode::BAD_REQUEST,
            "This consent request is not valid",
            "The sign-in request it belongs to is not one TechPass can resume. Go back to the app and sign in again.",
        );
    };
    let request_id = request
        .as_ref()
        .and_then(|Extension(id)| id.header_value().to_str().ok().map(String::from));
    match form.decision.as_deref() {
        Some("allow") => match consent::give(&state, &user, &client, &scope, request_id).await {
            // Back to the request: the gate runs again there, and the code is issued.
            Ok(()) => Redirect::to(&return_to).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "could not record a consent");
                state.pages.unavailable()
            }
        },
        Some("deny") => {
            audit(
                &state,
                AuditRecord {
                    at: state.clock.now().as_secs(),
                    event: "consent.denied".into(),
                    outcome: "denied".into(),
                    reason: Some("consent_denied".into()),
                    actor: Some(user.id.clone()),
                    subject: Some(user.id.clone()),
                    tenant: client.tenant_id.clone(),
                    request_id,
                    details: serde_json::json!({ "client_id": client.id }).to_string(),
                    ..AuditRecord::default()
                },
            )
            .await;
            match back.error_url(
                &state.metadata.issuer,
                ErrorCode::AccessDenied,
                "the person did not consent",
            ) {
                Some(url) => Redirect::to(&url).into_response(),
                None => state.pages.unavailable(),
            }
        }
        _ => state.pages.message(
            StatusCode::BAD_REQUEST,
            "Choose one",
            "Choose whether to allow the app or not. Go back and try again.",
        ),
    }
}
