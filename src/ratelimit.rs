//! Rate limits on the endpoints where credentials are tried (RFC 6819 §4.4.1.11, §5.1.4.2.3),
//! shaped so that nobody can aim them at someone else (SECURITY.md 37):
//!
//! - failed client authentications at the token, introspection and revocation endpoints, per
//!   (claimed client id, client address): checked before the secret, so guessing is throttled,
//!   but a stranger's failures lock out only the stranger's address, never the real client;
//! - requests of an authenticated client, per client id (its own traffic, after authentication);
//! - requests per client address at those endpoints and at sign-in.
//!
//! The client address is the peer's, or what a configured trusted proxy forwards
//! ([`crate::client_address`]). Every count lives in each replica's memory: with N replicas
//! behind a load balancer that spreads requests evenly the effective limits are up to N times
//! the configured ones (README, "Rate limits").

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_address::{ClientAddress, ClientAddresses};
use crate::config::{HttpConfig, RateLimitConfig};

/// Failure counts kept at most for this many (client, address) pairs; past that, the oldest
/// are forgotten first by [`RateLimits::shrink`], and new pairs are not counted until then.
const MAX_FAILURE_KEYS: usize = 100_000;
/// A claimed client id longer than this cannot exist (ids are `app_` and 22 characters); such
/// claims are counted under one key.
const MAX_CLIENT_ID_LEN: usize = 64;

/// Token buckets of failed authentications, which can be looked at without spending a token
/// (governor's limiters only check by spending).
#[derive(Debug)]
struct FailureBuckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, IpAddr), (f64, Instant)>>,
}

impl FailureBuckets {
    fn new(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then(|| FailureBuckets {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn key(client_id: &str, address: IpAddr) -> (String, IpAddr) {
        let id = if client_id.len() > MAX_CLIENT_ID_LEN {
            "(too long)"
        } else {
            client_id
        };
        (id.to_string(), address)
    }

    fn level(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        (tokens + now.duration_since(since).as_secs_f64() * self.per_second).min(self.burst)
    }

    /// `Err(wait)` when the pair has no failure left to spend.
    fn check(&self, client_id: &str, address: IpAddr) -> Result<(), Duration> {
        let Ok(buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let Some(&(tokens, since)) = buckets.get(&Self::key(client_id, address)) else {
            return Ok(());
        };
        let level = self.level(tokens, since, Instant::now());
        if level >= 1.0 {
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - level) / self.per_second))
    }

    fn fail(&self, client_id: &str, address: IpAddr) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let now = Instant::now();
        let key = Self::key(client_id, address);
        if buckets.len() >= MAX_FAILURE_KEYS && !buckets.contains_key(&key) {
            return;
        }
        let (tokens, since) = buckets.get(&key).copied().unwrap_or((self.burst, now));
        let level = self.level(tokens, since, now);
        buckets.insert(key, ((level - 1.0).max(0.0), now));
    }

    fn shrink(&self) {
        let now = Instant::now();
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.retain(|_, (tokens, since)| self.level(*tokens, *since, now) < self.burst);
        }
    }
}

#[derive(Debug)]
pub struct RateLimits {
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<FailureBuckets>,
    /// How the client's address is found (trusted proxies).
    pub addresses: Arc<ClientAddresses>,
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(rate)))
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig, http: &HttpConfig) -> Result<Self, String> {
        Ok(RateLimits {
            per_client: quota(config.client_per_second, config.client_burst)
                .map(RateLimiter::keyed),
            per_address: quota(config.address_per_second, config.address_burst)
                .map(RateLimiter::keyed),
            failures: FailureBuckets::new(config.failed_auth_per_minute, config.failed_auth_burst),
            addresses: Arc::new(ClientAddresses::new(
                &http.trusted_proxies,
                http.forwarded_header,
            )?),
        })
    }

    /// `Err(wait)` when the authenticated client `client_id` is over its limit.
    pub fn check_client(&self, client_id: &str) -> Result<(), Duration> {
        match &self.per_client {
            Some(limiter) => limiter
                .check_key(&client_id.to_string())
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    /// `Err(wait)` when `address` has failed to authenticate as `client_id` too often. Spends
    /// nothing: call [`RateLimits::authentication_failed`] after a failure.
    pub fn check_failures(&self, client_id: &str, address: IpAddr) -> Result<(), Duration> {
        match &self.failures {
            Some(f) => f.check(client_id, address),
            None => Ok(()),
        }
    }

    pub fn authentication_failed(&self, client_id: &str, address: IpAddr) {
        if let Some(f) = &self.failures {
            f.fail(client_id, address);
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
        if let Some(f) = &self.failures {
            f.shrink();
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

/// Middleware: limits requests per client address (after [`crate::client_address`]).
pub async fn per_address(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(ClientAddress(ip)) = request.extensions().get::<ClientAddress>().copied() {
        if let Err(wait) = limits.check_address(ip) {
            tracing::warn!(%ip, "rate limit: too many requests from one address");
            return too_many_requests(wait);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_per_client_and_address_and_refill() {
        let f = FailureBuckets::new(60, 2).unwrap();
        let (a, b) = (
            IpAddr::from([203, 0, 113, 9]),
            IpAddr::from([198, 51, 100, 7]),
        );
        assert!(f.check("app_1", a).is_ok());
        f.fail("app_1", a);
        assert!(f.check("app_1", a).is_ok(), "within the burst");
        f.fail("app_1", a);
        let wait = f.check("app_1", a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(f.check("app_1", b).is_ok(), "another address");
        assert!(f.check("app_2", a).is_ok(), "another client");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(f.check("app_1", a).is_ok(), "one failure back per second");
        let long = "x".repeat(1000);
        f.fail(&long, a);
        f.fail(&"y".repeat(1000), a);
        assert!(f.check(&long, a).is_err(), "over-long claims share one key");
        f.shrink();
        assert!(f.buckets.lock().unwrap().len() <= 2);
    }
}
