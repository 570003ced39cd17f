//! The application state: every concrete dependency, wired once at startup and handed to the
//! router. No globals: two servers in one process (as in tests) share nothing.

use std::sync::Arc;

use techpass_domain::Clock;
use techpass_oidc::discovery::ProviderMetadata;
use techpass_oidc::KeyManager;
use techpass_store::Store;
use url::Url;

use crate::config::Config;
use crate::metrics::Metrics;

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
}
