//! A person's links to the upstreams they signed in through: when each last confirmed them, and
//! its refresh token, sealed under the master key and bound to that person and upstream (the
//! sealing key id names both, so a sealed value moved to another row does not open). Written at
//! every sign-in; read by [`crate::reverify`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use techpass_store::{StoreError, UpstreamLinkRecord};

use crate::ServiceContext;

/// The sealing key id: binds a sealed token to its person and upstream, so a sealed value moved
/// to another row does not open.
fn kid(user_id: &str, upstream: &str) -> String {
    format!("upstream-refresh:{user_id}:{upstream}")
}

pub(crate) fn seal(
    ctx: &ServiceContext,
    user_id: &str,
    upstream: &str,
    token: &str,
) -> Option<String> {
    match ctx.sealer.seal(&kid(user_id, upstream), token.as_bytes()) {
        Ok(sealed) => Some(STANDARD.encode(sealed)),
        Err(e) => {
            tracing::error!(error = %e, "could not seal an upstream refresh token");
            None
        }
    }
}

pub(crate) fn open(ctx: &ServiceContext, link: &UpstreamLinkRecord) -> Option<String> {
    let sealed = STANDARD
        .decode(link.sealed_refresh_token.as_deref()?)
        .ok()?;
    let plain = ctx
        .sealer
        .open(&kid(&link.user_id, &link.upstream), &sealed)
        .ok()?;
    String::from_utf8(plain).ok()
}

/// After a sign-in at `upstream`: the upstream confirmed the person now; its refresh token (if
/// it issued one) is kept sealed for the next re-verification.
pub async fn remember(
    ctx: &ServiceContext,
    user_id: &str,
    upstream: &str,
    refresh_token: Option<&str>,
) -> Result<(), StoreError> {
    let sealed = refresh_token.and_then(|t| seal(ctx, user_id, upstream, t));
    ctx.store
        .put_upstream_link(&UpstreamLinkRecord {
            user_id: user_id.to_string(),
            upstream: upstream.to_string(),
            sealed_refresh_token: sealed,
            last_verified_at: ctx.clock.now().as_secs(),
            failures: 0,
        })
        .await
}
