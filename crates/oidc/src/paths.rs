//! Route paths of the provider, shared by the router and the discovery document so they cannot
//! drift apart.

/// OpenID Connect Discovery 1.0 §4.
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3: the same metadata under the OAuth name.
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// RFC 7517 key set.
pub const JWKS: &str = "/jwks";
