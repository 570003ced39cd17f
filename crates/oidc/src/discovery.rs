//! Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
//!
//! Lists only what is implemented: an endpoint or a capability appears here in the same change
//! that adds it. Every URL is derived from the configured issuer.

use serde::Serialize;
use url::Url;

use crate::paths;

/// The one authentication context class TechPass issues: every TechPass session proved
/// multi-factor authentication at the upstream (or it would not exist), and `acr` says so with
/// the OpenID PAPE multi-factor policy URI.
pub const ACR_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// RFC 8628 §3.4: the device authorization grant's `grant_type`.
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The metadata document. Optional members are omitted rather than advertised early.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub end_session_endpoint: String,
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    /// Every algorithm TechPass signs ID tokens with (RS256 by default; an app may choose
    /// ES256 or EdDSA). Its JWT access tokens and logout tokens use the same set.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9449 §5.1: DPoP proofs are accepted signed with these.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    /// Defaults to true when absent (OpenID Connect Discovery §3), so it is said explicitly.
    pub request_uri_parameter_supported: bool,
    /// OpenID Connect Back-Channel Logout §2.1.
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
}

/// `issuer` joined with an absolute route path, without doubling the slash.
pub fn endpoint(issuer: &Url, path: &str) -> String {
    format!("{}{}", issuer.as_str().trim_end_matches('/'), path)
}

impl ProviderMetadata {
    pub fn new(issuer: &Url) -> Self {
        let client_auth = vec![
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ];
        ProviderMetadata {
            issuer: issuer_string(issuer),
            authorization_endpoint: endpoint(issuer, paths::AUTHORIZE),
            token_endpoint: endpoint(issuer, paths::TOKEN),
            userinfo_endpoint: endpoint(issuer, paths::USERINFO),
            jwks_uri: endpoint(issuer, paths::JWKS),
            revocation_endpoint: endpoint(issuer, paths::REVOKE),
            introspection_endpoint: endpoint(issuer, paths::INTROSPECT),
            end_session_endpoint: endpoint(issuer, paths::END_SESSION),
            device_authorization_endpoint: endpoint(issuer, paths::DEVICE_AUTHORIZATION),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
                GRANT_DEVICE_CODE,
                crate::workload::GRANT_TOKEN_EXCHANGE,
            ],
            scopes_supported: vec!["openid", "profile", "email", "offline_access"],
            claims_supported: vec![
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "acr",
                "azp",
                "sid",
                "at_hash",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "email_verified",
                // TechPass's own: the account's kind, and the person's groups in the app's
                // tenant and roles in the app.
                "account_type",
                "groups",
                "roles",
            ],
            acr_values_supported: vec![ACR_MFA],
            id_token_signing_alg_values_supported: crate::keys::SigningAlg::names(),
            subject_types_supported: vec!["public"],
            code_challenge_methods_supported: vec!["S256"],
            token_endpoint_auth_methods_supported: client_auth.clone(),
            token_endpoint_auth_signing_alg_values_supported: crate::assertion::ALGORITHMS.to_vec(),
            dpop_signing_alg_values_supported: crate::assertion::ALGORITHMS.to_vec(),
            revocation_endpoint_auth_methods_supported: client_auth.clone(),
            introspection_endpoint_auth_methods_supported: client_auth,
            authorization_response_iss_parameter_supported: true,
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
        }
    }
}

/// The issuer identifier exactly as it appears in tokens: the configured URL without a trailing
/// slash (`Url` adds one to a bare host), so `iss` compares equal to what relying parties pinned.
pub fn issuer_string(issuer: &Url) -> String {
    issuer.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_derive_from_the_issuer() {
        let issuer = Url::parse("https://id.example.gov.sg").unwrap();
        let m = ProviderMetadata::new(&issuer);
        assert_eq!(m.issuer, "https://id.example.gov.sg");
        assert_eq!(m.jwks_uri, "https://id.example.gov.sg/jwks");
        assert_eq!(m.token_endpoint, "https://id.example.gov.sg/token");
        assert_eq!(
            m.device_authorization_endpoint,
            "https://id.example.gov.sg/device_authorization"
        );
        assert!(m.grant_types_supported.contains(&GRANT_DEVICE_CODE));

        let with_path = Url::parse("https://example.gov.sg/techpass/").unwrap();
        let m = ProviderMetadata::new(&with_path);
        assert_eq!(m.issuer, "https://example.gov.sg/techpass");
        assert_eq!(m.jwks_uri, "https://example.gov.sg/techpass/jwks");
    }
}
