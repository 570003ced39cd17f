//! Upstream identity providers: where people prove who they are. TechPass owns no passwords.
//!
//! Owns the connector trait (Dex's shape: build the login redirect carrying state, nonce and
//! PKCE; handle the callback; return one [`UpstreamIdentity`]), the OpenID Connect connector used
//! for Azure AD (Entra ID) on the `openidconnect` crate, and the development upstream that plays
//! Azure AD. It must not know about tenants, apps or the tokens TechPass issues.

mod bounded;
pub mod dev;
mod identity;
mod jws;
mod oidc_connector;

pub use bounded::{DOCUMENT_LIMIT, TOKEN_RESPONSE_LIMIT};
pub use identity::{MfaRule, RefreshError, UpstreamError, UpstreamIdentity};
pub use jws::{ID_TOKEN_LIMIT, JWS_HEADER_LIMIT};
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

/// What the upstream's authorization response brought back to the callback (RFC 6749 §4.1.2),
/// beyond `state`, which the caller has already matched to its login attempt.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationResponse<'a> {
    /// The authorization code to redeem.
    pub code: &'a str,
    /// The `iss` parameter (RFC 9207 §2), when the upstream sent one. An empty value counts as
    /// absent (RFC 6749 §3.1).
    pub iss: Option<&'a str>,
}

impl<'a> AuthorizationResponse<'a> {
    pub fn new(code: &'a str, iss: Option<&'a str>) -> Self {
        AuthorizationResponse { code, iss }
    }
}

/// A verified sign-in at the upstream: the identity and, when the upstream issued one (Azure AD
/// does for the `offline_access` scope), its refresh token, which the caller keeps sealed to
/// re-verify the person later ([`Connector::refresh`]).
#[derive(Clone)]
pub struct SignedIn {
    pub identity: UpstreamIdentity,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("identity", &self.identity)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The upstream still honours the person's refresh token: it may have rotated it.
#[derive(Clone, Default)]
pub struct Refreshed {
    /// The new refresh token, when the upstream sent one (rotation); keep it instead.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshed")
            .field("rotated", &self.refresh_token.is_some())
            .finish()
    }
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

    /// Checks the authorization response's `iss` parameter (RFC 9207 §2.4) before anything is
    /// done with the response: present, it must equal [`Connector::issuer`]; absent, it is
    /// accepted unless the upstream's metadata sets
    /// `authorization_response_iss_parameter_supported`. [`Connector::exchange`] calls it
    /// first; a caller may call it on an error response too.
    async fn check_issuer_parameter(&self, iss: Option<&str>) -> Result<(), UpstreamError>;

    /// Checks the response's `iss` ([`Connector::check_issuer_parameter`]), only then redeems
    /// the authorization code, and verifies the ID token completely (size and JWS shape,
    /// signature, issuer, audience, nonce, expiry, not-before, issued-at, tenant, MFA).
    async fn exchange(
        &self,
        response: &AuthorizationResponse<'_>,
        params: &LoginParams,
    ) -> Result<SignedIn, UpstreamError>;

    /// Re-verifies a person: redeems their upstream refresh token (RFC 6749 §6) with the
    /// configured scopes. `invalid_grant` (the account disabled, the password reset, the
    /// sessions revoked, the token expired: AZURE.md §8) is [`RefreshError::Refused`]; no
    /// answer, a 5xx, any other error or an unreadable answer is [`RefreshError::Unavailable`].
    /// The answer's ID token, if any, is not used: the token endpoint's acceptance is the proof.
    async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, RefreshError>;
}
