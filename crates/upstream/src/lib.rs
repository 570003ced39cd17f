//! Upstream identity providers: where people prove who they are. TechPass owns no passwords.
//!
//! Owns the connector trait (Dex's shape: build the login redirect carrying state, nonce and
//! PKCE; handle the callback; return one [`UpstreamIdentity`]), the OpenID Connect connector used
//! for Azure AD (Entra ID) on the `openidconnect` crate, and the development upstream that plays
//! Azure AD. It must not know about tenants, apps or the tokens TechPass issues.

pub mod dev;
mod identity;
mod oidc_connector;

pub use identity::{MfaRule, UpstreamError, UpstreamIdentity};
pub use oidc_connector::{OidcConnector, OidcConnectorConfig};

use async_trait::async_trait;
use url::Url;

/// What a login attempt needs to carry across the redirect to the upstream and back. The caller
/// derives these from its own per-attempt secret and keeps no copy in memory.
#[derive(Debug, Clone)]
pub struct LoginParams {
    pub state: String,
    pub nonce: String,
    /// PKCE verifier (RFC 7636 §4.1); the connector sends its S256 challenge.
    pub pkce_verifier: String,
    /// Passed through to the upstream (`login_hint`), when known.
    pub login_hint: Option<String>,
    /// Ask the upstream to authenticate again even with a session there (`prompt=login`).
    pub force_reauthentication: bool,
}

/// One upstream identity provider.
#[async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The configured id (`wog`, `vendors`, …), stable across restarts.
    fn id(&self) -> &str;

    /// What the sign-in page shows ("Public officer").
    fn display_name(&self) -> &str;

    /// The exact issuer the upstream's tokens must carry (mix-up defence, RFC 9700 §4.4).
    fn issuer(&self) -> &str;

    /// The URL to send the browser to.
    async fn login_url(&self, params: &LoginParams) -> Result<Url, UpstreamError>;

    /// Redeems the authorization code from the callback and verifies the ID token completely
    /// (signature, issuer, audience, nonce, expiry, issued-at, tenant, MFA).
    async fn exchange(
        &self,
        code: &str,
        params: &LoginParams,
    ) -> Result<UpstreamIdentity, UpstreamError>;
}
