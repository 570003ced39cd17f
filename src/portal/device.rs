//! The device verification page (RFC 8628 §3.3): the signed-in, registered person (the [`Me`]
//! extractor sends everyone else through sign-in and registration and back) types the user code
//! shown by a command-line tool, or arrives with it from `verification_uri_complete`, sees which
//! app of which tenant asks, and approves or denies with a CSRF-protected form answered by a
//! redirect (Post/Redirect/Get). The gate runs at approval, in the service
//! ([`techpass_service::device::decide`]).
//!
//! Wrong user codes are limited before any lookup ([`crate::guesses`]); a malformed one is
//! refused without a lookup.

use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use techpass_service::device::{self, Decided, DeviceRequest};

use super::{done, paths, problem, render, Fields, Flash, Me, Page, Posted};
use crate::client_address::ClientAddress;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::DEVICE, get(page).post(decide))
}

fn address_of(address: Option<Extension<ClientAddress>>) -> IpAddr {
    address.map_or(
        IpAddr::from([0, 0, 0, 0]),
        |Extension(ClientAddress(ip))| ip,
    )
}

/// The form asking for the code, with what was typed and why it did not work.
fn ask(state: &AppState, me: &Me, flash: &Flash) -> Response {
    render(
        state,
        me,
        flash,
        "portal/device.html",
        minijinja::context! { action => paths::DEVICE },
    )
}

fn limited(state: &AppState, wait: std::time::Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    problem(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many wrong codes",
        &format!(
            "Too many codes that match no waiting request were entered. Wait {minutes} minute(s), then type the code your device shows again."
        ),
    )
}

/// The pending request with the typed code, after the guessing limits; `Err` is the page to
/// show instead (the form again for a malformed or wrong code).
async fn lookup(
    state: &AppState,
    me: &Me,
    address: IpAddr,
    fields: &Fields,
) -> Result<DeviceRequest, Response> {
    let typed = fields.text("user_code");
    let Some(code) = device::normalize_user_code(&typed) else {
        return Err(ask(
            state,
            me,
            &Flash::error(
                StatusCode::BAD_REQUEST,
                "A code has 8 letters and digits, like WDJB-MJHT. Check what your device shows.",
                fields,
            ),
        ));
    };
    if let Err(wait) = state
        .user_code_guesses
        .check(&state.rate_limits, &me.user.id, address)
    {
        tracing::warn!(user_id = %me.user.id, %address, "rate limit: too many wrong user codes");
        return Err(limited(state, wait));
    }
    match device::find_request(state, &code).await {
        Ok(Some(request)) => Ok(request),
        Ok(None) => {
            state
                .user_code_guesses
                .wrong(&state.rate_limits, &me.user.id, address);
            Err(ask(
                state,
                me,
                &Flash::error(
                    StatusCode::NOT_FOUND,
                    "No device is waiting with this code: it may be mistyped, already used, or expired (codes last 10 minutes). Check the code, or start again on your device.",
                    fields,
                ),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "the device verification page cannot reach its database");
            Err(state.pages.unavailable())
        }
    }
}

/// `GET /device[?user_code=…]`: the form, the request to decide on, or the outcome of the
/// decision just made (`?done=…`).
async fn page(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    me: Me,
    RawQuery(query): RawQuery,
) -> Page {
    let fields = Fields::query(query);
    if fields.get("user_code").is_none() {
        return Ok(ask(&state, &me, &Flash::from_query(&fields)));
    }
    let request = match lookup(&state, &me, address_of(address), &fields).await {
        Ok(r) => r,
        Err(page) => return Ok(page),
    };
    Ok(render(
        &state,
        &me,
        &Flash::default(),
        "portal/device_confirm.html",
        minijinja::context! {
            action => paths::DEVICE,
            user_code => device::display_user_code(&request.user_code),
            app_name => request.client.name,
            tenant_name => request.tenant_name,
            scope => request.scope,
        },
    ))
}

/// `POST /device`: approve or deny, then a redirect to the outcome.
async fn decide(
    State(state): State<AppState>,
    address: Option<Extension<ClientAddress>>,
    Posted { me, fields }: Posted,
) -> Page {
    let approve = match fields.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(problem(
                &state,
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "Choose Approve or Deny on the device sign-in page.",
            ))
        }
    };
    let request = match lookup(&state, &me, address_of(address), &fields).await {
        Ok(r) => r,
        Err(page) => return Ok(page),
    };
    match device::decide(&state, &me.user, &me.session, &request, approve).await {
        Ok(Decided::Approved) => Ok(done(paths::DEVICE, "device-approved")),
        // Re-verification failed: a fresh sign-in at the upstream, then back to this code.
        Ok(Decided::SignInAgain) => {
            let back = format!(
                "{}?user_code={}",
                paths::DEVICE,
                device::display_user_code(&request.user_code)
            );
            let mut login = url::form_urlencoded::Serializer::new(String::new());
            login.append_pair("return_to", &back);
            login.append_pair("prompt", "login");
            Ok(axum::response::Redirect::to(&format!(
                "{}?{}",
                crate::paths::LOGIN,
                login.finish()
            ))
            .into_response())
        }
        Ok(Decided::Denied) => Ok(done(paths::DEVICE, "device-denied")),
        Ok(Decided::Gone) => Ok(ask(
            &state,
            &me,
            &Flash::error(
                StatusCode::CONFLICT,
                "This request was decided already or has expired. Start again on your device if it still needs signing in.",
                &Fields::default(),
            ),
        )),
        Ok(Decided::Refused(denial)) => {
            let (title, text, next_step) = crate::provider::gate::explain(denial);
            Err(state.pages.render(
                StatusCode::FORBIDDEN,
                "denied.html",
                minijinja::context! {
                    title => title, text => text, next_step => next_step, reason => denial.reason(),
                    app_name => request.client.name,
                },
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "the device verification page cannot reach its database");
            Err(state.pages.unavailable())
        }
    }
}
