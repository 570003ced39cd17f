//! Limits on guessing user codes at the device verification page (RFC 8628 §5.1): a user code
//! has 40 bits, so wrong codes are bounded three ways before any lookup is made:
//!
//! - per client address and per signed-in person, through the failed-authentication buckets of
//!   [`crate::ratelimit`] (`rate_limit.failed_auth_burst` wrong codes, then
//!   `failed_auth_per_minute`), under keys of their own so they never touch a client's;
//! - overall, across every address and person on this replica ([`OVERALL_BURST`] wrong codes,
//!   then [`OVERALL_PER_MINUTE`]): a spread-out attack stays slow, at the cost of a pause for
//!   everyone while it lasts.
//!
//! Only wrong codes spend; a malformed code is refused without a lookup and spends nothing.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ratelimit::RateLimits;

pub const OVERALL_PER_MINUTE: u32 = 300;
pub const OVERALL_BURST: u32 = 300;

/// The key the per-address count is kept under ([`RateLimits::check_failures`]).
const ADDRESS_KEY: &str = "device-user-code";
/// Per person, the count is kept under `device-user-code:<user id>` and this address.
const PERSON_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

#[derive(Debug)]
pub struct UserCodeGuesses {
    per_second: f64,
    burst: f64,
    /// Wrong codes left to spend, as of the instant.
    overall: Mutex<(f64, Instant)>,
}

impl Default for UserCodeGuesses {
    fn default() -> Self {
        UserCodeGuesses::new(OVERALL_PER_MINUTE, OVERALL_BURST)
    }
}

impl UserCodeGuesses {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        UserCodeGuesses {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst,
            overall: Mutex::new((burst, Instant::now())),
        }
    }

    fn level(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        (tokens + now.duration_since(since).as_secs_f64() * self.per_second).min(self.burst)
    }

    fn person_key(user_id: &str) -> String {
        format!("{ADDRESS_KEY}:{user_id}")
    }

    /// `Err(wait)` when this person, this address or everyone together has no wrong code
    /// left to spend. Spends nothing.
    pub fn check(
        &self,
        limits: &RateLimits,
        user_id: &str,
        address: IpAddr,
    ) -> Result<(), Duration> {
        limits.check_failures(ADDRESS_KEY, address)?;
        limits.check_failures(&Self::person_key(user_id), PERSON_ADDRESS)?;
        let Ok(overall) = self.overall.lock() else {
            return Ok(());
        };
        let level = self.level(overall.0, overall.1, Instant::now());
        if level >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - level) / self.per_second))
        }
    }

    /// Counts a wrong code against this person, this address and everyone.
    pub fn wrong(&self, limits: &RateLimits, user_id: &str, address: IpAddr) {
        limits.authentication_failed(ADDRESS_KEY, address);
        limits.authentication_failed(&Self::person_key(user_id), PERSON_ADDRESS);
        if let Ok(mut overall) = self.overall.lock() {
            let now = Instant::now();
            let level = self.level(overall.0, overall.1, now);
            *overall = ((level - 1.0).max(0.0), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ForwardedHeader, HttpConfig, RateLimitConfig};

    #[test]
    fn wrong_codes_are_bounded_per_person_per_address_and_overall() {
        let config = RateLimitConfig {
            client_per_second: 0,
            client_burst: 0,
            address_per_second: 0,
            address_burst: 0,
            failed_auth_per_minute: 1,
            failed_auth_burst: 3,
        };
        let http = HttpConfig {
            max_body_bytes: 1024,
            request_timeout_secs: 1,
            shutdown_grace_secs: 1,
            header_read_timeout_secs: 1,
            idle_timeout_secs: 1,
            max_connections: 1,
            max_in_flight_requests: 1,
            trusted_proxies: vec![],
            forwarded_header: ForwardedHeader::XForwardedFor,
        };
        let limits = RateLimits::new(&config, &http).unwrap();
        let guesses = UserCodeGuesses::new(1, 5);
        let (a, b) = (
            IpAddr::from([203, 0, 113, 9]),
            IpAddr::from([198, 51, 100, 7]),
        );
        for _ in 0..3 {
            assert!(guesses.check(&limits, "alice", a).is_ok());
            guesses.wrong(&limits, "alice", a);
        }
        assert!(
            guesses.check(&limits, "alice", a).is_err(),
            "Alice's address"
        );
        assert!(
            guesses.check(&limits, "alice", b).is_err(),
            "Alice from elsewhere"
        );
        assert!(guesses.check(&limits, "bob", b).is_ok(), "someone else");
        guesses.wrong(&limits, "bob", b);
        guesses.wrong(&limits, "carol", IpAddr::from([192, 0, 2, 1]));
        // Five wrong codes in all: the overall bound closes for everyone.
        assert!(guesses
            .check(&limits, "dave", IpAddr::from([192, 0, 2, 2]))
            .is_err());
    }
}
