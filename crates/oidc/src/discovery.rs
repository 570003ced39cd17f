//! Provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
//!
//! Lists only what is implemented: an endpoint or a capability appears here in the same change
//! that adds it. Every URL is derived from the configured issuer.

use serde::Serialize;
use url::Url;

use crate::paths;

/// The metadata document. Optional members are omitted rather than advertised early.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    /// The only signing algorithm TechPass uses (RS256, RFC 7518 §3.3).
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
}

/// `issuer` joined with an absolute route path, without doubling the slash.
pub fn endpoint(issuer: &Url, path: &str) -> String {
    format!("{}{}", issuer.as_str().trim_end_matches('/'), path)
}

impl ProviderMetadata {
    pub fn new(issuer: &Url) -> Self {
        ProviderMetadata {
            issuer: issuer_string(issuer),
            jwks_uri: endpoint(issuer, paths::JWKS),
            id_token_signing_alg_values_supported: vec!["RS256"],
            subject_types_supported: vec!["public"],
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

        let with_path = Url::parse("https://example.gov.sg/techpass/").unwrap();
        let m = ProviderMetadata::new(&with_path);
        assert_eq!(m.issuer, "https://example.gov.sg/techpass");
        assert_eq!(m.jwks_uri, "https://example.gov.sg/techpass/jwks");
    }
}
