//! The HTTP surface: `app(state)` composes each module's router and the layers every response
//! shares (request id, tracing, metrics, body limit, timeout, security headers). Handlers are
//! thin: extract, call one service, map the result.

mod discovery;
mod health;
mod origin;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{middleware, Json, Router};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let http = &state.config.http;
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings can carry codes and tokens.
                    tracing::info_span!(
                        "request",
                        request_id,
                        method = %request.method(),
                        path = request.uri().path(),
                    )
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(RequestBodyLimitLayer::new(http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ));

    // The pages and API of a signed-in person: writes only from TechPass's own origin.
    let own_forms = Router::new()
        .merge(crate::signin::routes::router(&state))
        .merge(crate::invitation::router())
        .merge(crate::portal::router())
        .merge(crate::dev::router())
        .merge(crate::api::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            origin::same_origin,
        ));
    let mut router = Router::new()
        .merge(discovery::router())
        .merge(health::router())
        .merge(own_forms)
        .merge(crate::provider::router())
        .merge(crate::provider::credential_router(&state))
        .merge(crate::web::router())
        // Per matched route, so requests are labelled by route template (as `MatchedPath`).
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.rate_limits.addresses.clone(),
            crate::client_address::middleware,
        ))
        .fallback(not_found);
    if let Some(dev) = &state.dev_upstream {
        router = router.nest_service(techpass_upstream::dev::PATH_PREFIX, dev.clone().router());
    }
    let shed = Arc::new(Semaphore::new(http.max_in_flight_requests));
    router
        .layer(layers)
        // Outermost, so that a request holds its place while its body arrives.
        .layer(middleware::from_fn(move |request, next| {
            shed_load(shed.clone(), request, next)
        }))
        .with_state(state)
}

/// The router of the metrics listener (`metrics_listen`): `/metrics` and nothing else, so the
/// counters (routes, sign-in outcomes per upstream) never reach the public listener.
pub fn metrics_app(state: AppState) -> Router {
    health::metrics_router()
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .with_state(state)
}

/// Load shedding: beyond `http.max_in_flight_requests` requests at once, answer 503 with
/// `Retry-After` (RFC 9110 §15.6.4) at once rather than queue until everything is slow. Liveness
/// is never shed (an overloaded replica is alive; readiness may fail and steer traffic away).
async fn shed_load(
    in_flight: Arc<Semaphore>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if request.uri().path() == health::HEALTHZ {
        return next.run(request).await;
    }
    let Ok(permit) = in_flight.try_acquire_owned() else {
        tracing::warn!("too many requests in flight: shedding load with 503");
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "the server is busy; retry later",
            })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::transport::RETRY_AFTER_SECS),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// An unknown path: a page for a browser (one that asks for HTML), JSON for everyone else.
/// A known address asked with a method it does not take, typically a form's address opened as
/// a link or left in the address bar after a failed form: a page with a way forward for
/// browsers (not the browser's own "this page isn't working"), JSON for programs.
async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    page_or_json(
        &state,
        &headers,
        StatusCode::METHOD_NOT_ALLOWED,
        "This address is for a form",
        "This address receives what a form sends; it is not a page to open. Go back to the page with the form and send it again, or start again from the TechPass home page.",
        "method_not_allowed",
    )
}

async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    page_or_json(
        &state,
        &headers,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. Check the link, or start again from the TechPass home page.",
        "not_found",
    )
}

/// A message page for a browser (it accepts HTML), `{"error": code}` for a program.
fn page_or_json(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    status: StatusCode,
    title: &str,
    text: &str,
    code: &str,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return state.pages.message(status, title, text);
    }
    (status, Json(serde_json::json!({ "error": code }))).into_response()
}
