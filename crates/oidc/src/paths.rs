//! Route paths of the provider, shared by the router and the discovery document so they cannot
//! drift apart.

/// OpenID Connect Discovery 1.0 §4.
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3: the same metadata under the OAuth name.
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
/// RFC 7517 key set.
pub const JWKS: &str = "/jwks";
/// OpenID Connect Core §3.1.2; RFC 6749 §3.1.
pub const AUTHORIZE: &str = "/authorize";
/// RFC 6749 §3.2.
pub const TOKEN: &str = "/token";
/// OpenID Connect Core §5.3.
pub const USERINFO: &str = "/userinfo";
/// RFC 7662.
pub const INTROSPECT: &str = "/introspect";
/// OpenID Connect RP-Initiated Logout 1.0 §2.
pub const END_SESSION: &str = "/end-session";
/// RFC 7009.
pub const REVOKE: &str = "/revoke";
/// RFC 8628 §3.1: where a device asks for a device code and a user code.
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// RFC 8628 §3.3: the page where the person enters the user code (`verification_uri`).
pub const DEVICE_VERIFICATION: &str = "/device";
