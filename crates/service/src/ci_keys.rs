//! CI issuers' signing keys (CI workload identity, [`crate::workload`]): each issuer's
//! discovery document and its `jwks_uri`, fetched through the outbound policy
//! ([`crate::outbound`]: https to public addresses outside development, bounded in time and
//! size, no redirects) and cached per replica for [`KEYS_MAX_AGE_SECS`]. A token signed with a
//! key the cache does not hold makes one refetch (an issuer rotated its key), at most once per
//! [`REFETCH_AFTER_SECS`] per issuer, so tokens with made-up `kid`s cannot turn TechPass into a
//! load generator against the issuer. Apart from the context, so that the context can hold the
//! cache without importing the services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use techpass_oidc::workload::{self, IssuerKeys};

use crate::outbound::Outbound;

/// Cached keys are refetched after this long.
pub const KEYS_MAX_AGE_SECS: i64 = 3600;
/// At most one fetch per issuer in this long (a refetch for an unknown `kid`, or a retry after
/// a failed fetch).
pub const REFETCH_AFTER_SECS: i64 = 10;

#[derive(Debug, Default)]
struct Entry {
    keys: Option<Arc<IssuerKeys>>,
    /// When keys were last fetched, successfully or not.
    fetched_at: Option<i64>,
}

/// Per-issuer JWKS cache. One lock per issuer: a slow issuer delays only its own jobs, and
/// concurrent requests that need a fetch wait for one fetch.
#[derive(Debug, Default)]
pub struct IssuerKeyCache {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl IssuerKeyCache {
    fn entry(&self, issuer: &str) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.entry(issuer.to_string()).or_default().clone()
    }

    /// The issuer's keys: cached ones while fresh, unless `need_kid` names a key they lack and
    /// the last fetch is older than [`REFETCH_AFTER_SECS`]. When a fetch fails, keys fetched
    /// before keep serving.
    pub async fn keys(
        &self,
        http: &Outbound,
        now: i64,
        issuer: &str,
        need_kid: Option<&str>,
    ) -> Result<Arc<IssuerKeys>, String> {
        let entry = self.entry(issuer);
        let mut entry = entry.lock().await;
        let age = entry.fetched_at.map(|at| now.saturating_sub(at));
        let fresh = age.is_some_and(|a| a < KEYS_MAX_AGE_SECS);
        let may_fetch = age.is_none_or(|a| a >= REFETCH_AFTER_SECS);
        if let Some(keys) = &entry.keys {
            let lacks_kid = need_kid.is_some_and(|kid| !keys.has_kid(kid));
            if fresh && !(lacks_kid && may_fetch) {
                return Ok(keys.clone());
            }
        }
        if !may_fetch {
            return entry.keys.clone().ok_or_else(|| {
                format!("the keys of {issuer} could not be fetched; try again in a few seconds")
            });
        }
        entry.fetched_at = Some(now);
        match fetch_keys(http, issuer).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                entry.keys = Some(keys.clone());
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(%issuer, reason = %why, "cannot fetch a CI issuer's keys");
                entry
                    .keys
                    .clone()
                    .ok_or_else(|| format!("the keys of {issuer} could not be fetched: {why}"))
            }
        }
    }
}

/// OpenID Connect Discovery §4: the issuer's document (whose `issuer` must be the issuer
/// itself), then its `jwks_uri`.
async fn fetch_keys(http: &Outbound, issuer: &str) -> Result<IssuerKeys, String> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let get_json = |url: String| async move {
        let reply = http
            .get(&url, |r| r.header("accept", "application/json"))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !reply.status().is_success() {
            return Err(format!("{url} answered {}", reply.status()));
        }
        reply
            .json::<Value>()
            .map_err(|e| format!("{url} is not JSON: {e}"))
    };
    let document = get_json(discovery.clone()).await?;
    if document["issuer"].as_str() != Some(issuer) {
        return Err(format!("{discovery} names another issuer"));
    }
    let jwks_uri = document["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("{discovery} has no jwks_uri"))?
        .to_string();
    workload::parse_issuer_jwks(&get_json(jwks_uri.clone()).await?)
        .map_err(|e| format!("{jwks_uri}: {e}"))
}
