//! The application state: every concrete dependency, wired once at startup and handed to the
//! router. No globals: two servers in one process (as in tests) share nothing.

use std::sync::Arc;

use techpass_domain::account::ClassificationRules;
use techpass_domain::Clock;
use techpass_oidc::discovery::ProviderMetadata;
use techpass_oidc::{KeyManager, Secrets};
use techpass_store::Store;
use techpass_upstream::dev::DevUpstream;
use url::Url;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::signin::{CookiePolicy, Upstreams};
use crate::web::Pages;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The resolved public issuer URL.
    pub issuer: Url,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyManager>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// The discovery document, serialised once.
    pub metadata: Arc<ProviderMetadata>,
    /// Keyed hashing and random values, under a key derived from the master key.
    pub secrets: Secrets,
    pub upstreams: Arc<Upstreams>,
    pub classification: Arc<ClassificationRules>,
    pub pages: Arc<Pages>,
    pub cookies: CookiePolicy,
    /// The development upstream, when enabled (its routes are mounted under /dev/azure).
    pub dev_upstream: Option<Arc<DevUpstream>>,
    /// Outbound HTTP (back-channel logout): no redirects followed, bounded time.
    pub http: reqwest::Client,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
    /// Seals secrets that must be recovered later (webhook signing secrets).
    pub sealer: Arc<techpass_oidc::MasterKey>,
    /// The SMTP relay; `None`: emails stay in the outbox (development).
    pub smtp: Option<Arc<crate::mail::Smtp>>,
}
