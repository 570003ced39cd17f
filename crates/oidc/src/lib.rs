//! The protocol engine of TechPass as an OpenID Provider.
//!
//! Owns signing keys (generation, sealing at rest, rotation, JWKS), JWT minting, the discovery
//! document and the route paths that both the router and discovery use. It must not render HTML,
//! read configuration files or know which HTTP framework serves it.

pub mod assertion;
pub mod discovery;
pub mod dpop;
pub mod error;
pub use keys::jwt;
pub mod keys;
pub mod params;
pub mod paths;
pub mod pkce;
pub mod secrets;
pub mod workload;

pub use discovery::{ACR_MFA, GRANT_DEVICE_CODE};
pub use error::{ErrorCode, OAuthError};
pub use keys::{KeyError, KeyManager, KeySettings, MasterKey};
pub use params::Params;
pub use secrets::Secrets;
