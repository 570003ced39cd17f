//! Rate limits on the endpoints where credentials are tried (RFC 6819 §4.4.1.11, §5.1.4.2.3):
//! the token, introspection and revocation endpoints per client id (checked before the secret,
//! so guessing a client's secret is throttled too) and per source address; sign-in per source
//! address. Generic cell rate algorithm (`governor`), in each replica's memory: with N replicas
//! behind a load balancer the effective limit is up to N times the configured one.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::state::AppState;

#[derive(Debug)]
pub struct RateLimits {
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(rate)))
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimits {
            per_client: quota(config.client_per_second, config.client_burst)
                .map(RateLimiter::keyed),
            per_address: quota(config.address_per_second, config.address_burst)
                .map(RateLimiter::keyed),
        }
    }

    /// `Err(wait)` when `client_id` is over its limit.
    pub fn check_client(&self, client_id: &str) -> Result<(), Duration> {
        match &self.per_client {
            Some(limiter) => limiter
                .check_key(&client_id.to_string())
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    pub fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        match &self.per_address {
            Some(limiter) => limiter
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    /// Forgets keys whose limits are back to full, bounding memory.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_client {
            l.retain_recent();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
        }
    }
}

/// 429 with `Retry-After` (RFC 6585 §4) and an OAuth-shaped body.
pub fn too_many_requests(wait: Duration) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many requests; retry later",
        })),
    )
        .into_response();
    let seconds = wait.as_secs().max(1);
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Middleware: limits requests per source address.
pub async fn per_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(ip) = peer {
        if let Err(wait) = state.rate_limits.check_address(ip) {
            tracing::warn!(%ip, "rate limit: too many requests from one address");
            return too_many_requests(wait);
        }
    }
    next.run(request).await
}
