//! The application state: every concrete dependency, wired once at startup and handed to the
//! router. No globals: two servers in one process (as in tests) share nothing.
//!
//! What services need is the [`ServiceContext`] (store, clock, randomness, secrets, keys,
//! settings, outbound HTTP); the rest is the HTTP shell's own (pages, cookies, metrics, rate
//! limits, the development upstream). `AppState` dereferences to the context while handlers
//! move to calling services with it explicitly.

use std::ops::Deref;
use std::sync::Arc;

use techpass_service::ServiceContext;
use techpass_upstream::dev::DevUpstream;

use crate::config::Config;
use crate::cookies::CookiePolicy;
use crate::metrics::Metrics;
use crate::web::Pages;

#[derive(Clone, Debug)]
pub struct AppState {
    pub svc: Arc<ServiceContext>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub pages: Arc<Pages>,
    /// The terms of use and privacy policy, rendered at start-up.
    pub terms: Arc<crate::terms::Terms>,
    pub cookies: CookiePolicy,
    /// The development upstream, when enabled (its routes are mounted under /dev/azure).
    pub dev_upstream: Option<Arc<DevUpstream>>,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
    /// Wrong user codes at the device verification page, overall on this replica.
    pub user_code_guesses: Arc<crate::guesses::UserCodeGuesses>,
}

impl AppState {
    /// Whether the development pages are served: development mode on a loopback issuer.
    pub fn dev_tools_enabled(&self) -> bool {
        self.config.mode == crate::config::Mode::Development && self.dev_upstream.is_some()
    }
}

impl Deref for AppState {
    type Target = ServiceContext;

    fn deref(&self) -> &ServiceContext {
        &self.svc
    }
}
