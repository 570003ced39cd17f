//! What a service needs from the world, and nothing of HTTP: storage, time, randomness, the
//! server's keyed secrets and signing keys, the issuer, the settings and an outbound HTTP
//! client. Built once at startup; tests build their own with a manual clock and fixed
//! randomness.

use std::sync::Arc;

use techpass_domain::account::ClassificationRules;
use techpass_domain::Clock;
use techpass_oidc::discovery::ProviderMetadata;
use techpass_oidc::{KeyManager, MasterKey, Secrets};
use techpass_store::Store;
use url::Url;

use crate::mailer::Smtp;
use crate::outbound::Outbound;
use crate::random::Random;
use crate::settings::Settings;
use crate::upstreams::Upstreams;

#[derive(Clone, Debug)]
pub struct ServiceContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// Keyed hashing, under a key derived from the master key.
    pub secrets: Secrets,
    pub keys: Arc<KeyManager>,
    /// Seals secrets that must be recovered later (webhook signing secrets).
    pub sealer: Arc<MasterKey>,
    /// The resolved public issuer URL.
    pub issuer: Url,
    /// The discovery document: the issuer string and the endpoints tokens name.
    pub metadata: Arc<ProviderMetadata>,
    pub classification: Arc<ClassificationRules>,
    /// The upstreams people sign in through, in configured order.
    pub upstreams: Arc<Upstreams>,
    pub settings: Arc<Settings>,
    /// The SMTP relay; `None`: emails stay in the outbox (development).
    pub mailer: Option<Arc<Smtp>>,
    /// Outbound HTTP to registered URLs (back-channel logout, webhooks) under one policy:
    /// https to public addresses only outside development, no redirects, bounded time and size.
    pub http: Outbound,
    /// The CI issuers' signing keys, cached per replica (CI workload identity).
    pub ci_keys: Arc<crate::ci_keys::IssuerKeyCache>,
    /// The audit events' copy for a SIEM (`audit.stream`), if configured.
    pub audit_stream: Option<Arc<crate::audit_stream::AuditStream>>,
}
