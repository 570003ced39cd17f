//! What a verified upstream sign-in yields, and every way one can fail.

use serde::{Deserialize, Serialize};

/// A person as proven by an upstream. Keyed by (`tenant_id`, `object_id`) — Azure AD's `tid`
/// and `oid`, immutable — never by email or UPN, which are mutable and reusable; the rest are
/// attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamIdentity {
    /// The connector that verified it.
    pub upstream: String,
    pub issuer: String,
    pub tenant_id: String,
    pub object_id: String,
    /// The upstream's `sub` (pairwise per application in Azure AD): an attribute only.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    /// OpenID Connect Core §5.1; absent from sessions stored before they were kept.
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    /// Whether the upstream proved `email` (see the connector); never assumed.
    #[serde(default)]
    pub email_verified: bool,
    /// Azure AD `acct` = 1: a B2B guest in the issuing tenant.
    pub guest: bool,
    /// Azure AD `idp`: the home identity provider of a guest.
    pub home_idp: Option<String>,
    /// Authentication methods the upstream reported (`amr`).
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// When the person authenticated at the upstream (`auth_time`, else `iat`), Unix seconds.
    pub auth_time: i64,
    /// How MFA was established: `"amr"` (the token said so) or `"trusted-upstream"` (the
    /// operator declared that the upstream enforces it by Conditional Access).
    pub mfa: String,
}

/// How an upstream must prove MFA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaRule {
    /// The ID token's `amr` must contain one of these values; absent evidence fails closed.
    Amr(Vec<String>),
    /// The upstream enforces MFA itself (Azure AD Conditional Access on the app registration).
    TrustedUpstream,
}

/// Why an upstream sign-in was refused. [`UpstreamError::reason`] is the short, stable code
/// written to the audit log and metrics; `Display` is for logs, never for the person's page.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream discovery failed: {0}")]
    Discovery(String),
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream token endpoint refused the code: {error} {description}")]
    TokenEndpoint { error: String, description: String },
    #[error("upstream returned no ID token")]
    MissingIdToken,
    #[error("ID token is not signed")]
    Unsigned,
    #[error("ID token algorithm not allowed: {0}")]
    DisallowedAlgorithm(String),
    #[error("ID token signed by an unknown key")]
    UnknownKey,
    #[error("ID token signature invalid")]
    BadSignature,
    #[error("ID token issuer mismatch: {0}")]
    WrongIssuer(String),
    #[error("ID token audience mismatch: {0}")]
    WrongAudience(String),
    #[error("ID token nonce mismatch or missing: {0}")]
    WrongNonce(String),
    #[error("ID token expired: {0}")]
    Expired(String),
    #[error("ID token issued in the future: {0}")]
    IssuedInFuture(String),
    #[error("tenant {0:?} is not allowed")]
    WrongTenant(Option<String>),
    #[error("ID token lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("no evidence of multi-factor authentication (amr {0:?})")]
    NoMfa(Vec<String>),
    #[error("ID token malformed: {0}")]
    Malformed(String),
    /// RFC 9207 §2.4: the authorization response's `iss` parameter is not this upstream's
    /// issuer (a mix-up attempt or a misrouted response); the code is not redeemed.
    #[error("authorization response iss parameter {0:?} is not the upstream's issuer")]
    WrongIssuerParameter(String),
    /// RFC 9207 §2.4: the upstream's metadata says it sends `iss`
    /// (`authorization_response_iss_parameter_supported`), yet the response had none.
    #[error("authorization response lacks the iss parameter the upstream promises to send")]
    MissingIssuerParameter,
    /// RFC 7519 §4.1.5: the ID token's `nbf` is later than now plus the accepted clock skew.
    #[error("ID token not valid yet: {0}")]
    NotYetValid(String),
    /// The token endpoint's response body is larger than [`crate::TOKEN_RESPONSE_LIMIT`]; it
    /// was not parsed.
    #[error("upstream token response exceeds {limit} bytes")]
    TokenResponseTooLarge { limit: usize },
    /// The ID token is larger than [`crate::ID_TOKEN_LIMIT`]; it was not parsed.
    #[error("ID token is {size} bytes, over the {limit}-byte bound")]
    IdTokenTooLarge { size: usize, limit: usize },
    /// Not a JWS compact serialization TechPass accepts (RFC 7515 §7.1, §4.1.11): other than
    /// three segments, or a protected header that is oversized, not a JSON object, or marks
    /// extensions critical.
    #[error("ID token is not an acceptable JWS: {0}")]
    MalformedJws(String),
}

impl UpstreamError {
    /// A short, stable reason code for the audit log and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Discovery(_) => "upstream_discovery_failed",
            UpstreamError::Unreachable(_) => "upstream_unreachable",
            UpstreamError::TokenEndpoint { .. } => "upstream_code_refused",
            UpstreamError::MissingIdToken => "missing_id_token",
            UpstreamError::Unsigned => "unsigned_token",
            UpstreamError::DisallowedAlgorithm(_) => "disallowed_algorithm",
            UpstreamError::UnknownKey => "unknown_signing_key",
            UpstreamError::BadSignature => "bad_signature",
            UpstreamError::WrongIssuer(_) => "wrong_issuer",
            UpstreamError::WrongAudience(_) => "wrong_audience",
            UpstreamError::WrongNonce(_) => "wrong_nonce",
            UpstreamError::Expired(_) => "expired_token",
            UpstreamError::IssuedInFuture(_) => "issued_in_future",
            UpstreamError::WrongTenant(_) => "tenant_not_allowed",
            UpstreamError::MissingClaim(_) => "missing_claim",
            UpstreamError::NoMfa(_) => "no_mfa",
            UpstreamError::Malformed(_) => "malformed_token",
            UpstreamError::WrongIssuerParameter(_) => "wrong_iss_parameter",
            UpstreamError::MissingIssuerParameter => "missing_iss_parameter",
            UpstreamError::NotYetValid(_) => "not_yet_valid",
            UpstreamError::TokenResponseTooLarge { .. } => "token_response_too_large",
            UpstreamError::IdTokenTooLarge { .. } => "id_token_too_large",
            UpstreamError::MalformedJws(_) => "malformed_jws",
        }
    }
}

/// Why re-verifying a person at the upstream ([`crate::Connector::refresh`]) failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RefreshError {
    /// The upstream refused the refresh token (`invalid_grant`): the person must sign in there
    /// again, if they still can.
    #[error("the upstream refused the refresh token: {error} {description}")]
    Refused { error: String, description: String },
    /// No usable answer (unreachable, a 5xx, another error code, a malformed response).
    #[error("the upstream gave no usable answer to the refresh: {0}")]
    Unavailable(String),
}

impl RefreshError {
    /// A short, stable reason code for the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            RefreshError::Refused { .. } => "upstream_refused",
            RefreshError::Unavailable(_) => "upstream_unavailable",
        }
    }
}
