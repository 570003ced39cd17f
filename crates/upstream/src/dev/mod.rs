//! The development upstream: a real OpenID provider, served by axum, that plays Azure AD
//! (Entra ID) v2.0 so that the production OIDC connector can sign in against it over HTTP.
//!
//! Role: local development, demos and tests. It imitates what Azure AD really sends (tenant
//! specific issuers, pairwise `sub`, `oid`/`tid`, `acct`/`idp` for B2B guests, AADSTS error
//! shapes) and can deliberately issue defective ID tokens ([`Tamper`]) to prove that the
//! connector's verification rejects them.
//!
//! By default it sends no `iss` in its authorization responses and its metadata does not
//! advertise `authorization_response_iss_parameter_supported`, as TechPass must expect of Azure
//! AD, which cannot be relied on to send it; [`DevUpstream::with_iss_parameter`] makes it an
//! RFC 9207 upstream instead (advertised, and `iss` on every response, errors included).
//!
//! Limits: development and tests only, never enabled in production. Anyone who reaches the
//! authorization page can sign in as any listed person, with no password. The signing key and
//! pending authorization codes live in memory and are lost on restart; there is one RSA key per
//! instance and no rotation. Only the authorization code flow with `response_mode=query` and the
//! refresh token grant are served; refresh tokens are MACed with the client's secret, so any
//! instance with the same registration accepts them ([`refresh`]); access tokens are opaque
//! random strings that nothing accepts; there is no userinfo or logout endpoint.
//!
//! A test person can be disabled (as an Azure AD administrator would): they cannot sign in and
//! their refresh tokens are refused with `invalid_grant` (AADSTS50057). Who is disabled is kept by
//! a [`DisabledPeople`] (in memory by default; TechPass keeps it in its database so every replica
//! and the CLI agree) and managed on the people page (`{PATH_PREFIX}/people`).
//!
//! The directory is global: whichever tenant's endpoint a person is picked on, they sign in to
//! their own tenant, so their ID token carries their tenant's issuer and `tid` (picking Mallory
//! yields the other tenant's issuer). Rejecting that is the connector's job.

mod authorize;
mod codes;
mod id_token;
mod keys;
mod params;
mod people;
mod refresh;
mod token;

pub use people::{DisabledPeople, InMemoryDisabled};

#[cfg(test)]
mod tests;

use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use techpass_domain::Clock;
use url::Url;

use codes::CodeStore;
use keys::SigningKey;

/// Where TechPass nests [`DevUpstream::router`].
pub const PATH_PREFIX: &str = "/dev/azure";

/// The whole-of-government tenant: public officers.
pub const WOG_TENANT_ID: &str = "5d1e2c3b-0000-4000-8000-00000000a001";
/// The vendor directory tenant: external vendors, as B2B guests.
pub const VENDOR_TENANT_ID: &str = "5d1e2c3b-0000-4000-8000-00000000a002";
/// Some other Azure AD tenant, whose people TechPass must not let in.
pub const OTHER_TENANT_ID: &str = "5d1e2c3b-0000-4000-8000-00000000a003";

const TENANTS: [&str; 3] = [WOG_TENANT_ID, VENDOR_TENANT_ID, OTHER_TENANT_ID];

// Route suffixes after `/{tid}`, shared by the router and the discovery document.
const DISCOVERY_PATH: &str = "/v2.0/.well-known/openid-configuration";
const JWKS_PATH: &str = "/discovery/v2.0/keys";
const AUTHORIZE_PATH: &str = "/oauth2/v2.0/authorize";
const TOKEN_PATH: &str = "/oauth2/v2.0/token";

/// An application registered with the development upstream (an Azure AD app registration).
#[derive(Debug, Clone)]
pub struct DevClient {
    pub client_id: String,
    pub client_secret: String,
    /// Matched exactly, character for character, as Azure AD does.
    pub redirect_uris: Vec<String>,
}

/// Deliberate defects for tests of the connector's verification; applies to every authorization
/// response, token response or ID token this instance issues, as each variant says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tamper {
    #[default]
    None,
    /// `iss` is another tenant's issuer (the other tenant's; WOG's when the person is already
    /// there); `tid` unchanged.
    WrongIssuer,
    /// `aud` is `00000000-0000-0000-0000-00000000dead`.
    WrongAudience,
    /// `nonce` is `not-the-nonce-you-sent`.
    WrongNonce,
    /// No `nonce` claim at all.
    MissingNonce,
    /// `iat` = `nbf` = now − 2 h, `exp` = now − 1 h.
    Expired,
    /// `iat` = `nbf` = now + 1 h, `exp` = now + 2 h.
    IssuedInFuture,
    /// `alg: none` and an empty signature part (the token ends with `.`).
    Unsigned,
    /// `alg: HS256` with the published key's `kid`, HMAC keyed with the PEM text of the published
    /// RSA public key (RFC 8725 §2.1).
    AlgConfusion,
    /// RS256 by a second RSA key whose `kid` is not in the JWKS.
    UnknownKey,
    /// `tid` is the other tenant (WOG when the person is already there); `iss` unchanged.
    WrongTenant,
    /// The authorization response's `iss` parameter (RFC 9207 §2) is another tenant's issuer
    /// (the other tenant's; WOG's for a request to the other tenant), whether or not
    /// [`DevUpstream::with_iss_parameter`] is on. The ID token is sound.
    WrongIssParameter,
    /// The metadata advertises `authorization_response_iss_parameter_supported`, but the
    /// authorization response carries no `iss` (RFC 9207 §2.4 says refuse).
    MissingIssParameter,
    /// `nbf` = now + 1 h (RFC 7519 §4.1.5) while `iat` = now, `exp` = now + 2 h: only `nbf`
    /// is wrong.
    NotYetValid,
    /// A `groups` claim of 500 group ids (Azure AD would send the overage claim instead), so
    /// the signed ID token is over 16 KiB while the token response stays under 64 KiB.
    OversizedIdToken,
    /// An 80 KiB access token: the token response is over 64 KiB, its ID token is sound.
    OversizedTokenResponse,
    /// A correctly signed ID token with a fourth segment (a copy of the signature) appended.
    ExtraJwsSegments,
    /// A correctly signed ID token whose protected header carries an `x5c` chain of about
    /// 4 KiB (OpenID Connect Core §2 says ID tokens SHOULD NOT use `x5c`); the token stays
    /// under 16 KiB.
    OversizedJwsHeader,
}

/// A test person in the development directory.
#[derive(Debug, Clone, Copy)]
pub struct DevPerson {
    /// What the picker form submits.
    pub key: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    /// Fixed Azure AD object id.
    pub oid: &'static str,
    /// The tenant the person signs in to.
    pub tid: &'static str,
    pub amr: &'static [&'static str],
    /// For a B2B guest: the tenant the account is homed in.
    pub guest_home_tenant: Option<&'static str>,
    pub description: &'static str,
}

impl DevPerson {
    fn has_mfa(&self) -> bool {
        self.amr.contains(&"mfa")
    }
}

static PEOPLE: [DevPerson; 6] = [
    DevPerson {
        key: "alice",
        name: "Alice Tan",
        email: "alice_tan@tech.gov.sg",
        oid: "8d1e2f30-0000-4000-8000-0000000000a1",
        tid: WOG_TENANT_ID,
        amr: &["pwd", "mfa"],
        guest_home_tenant: None,
        description: "Public officer who signed in with MFA: the ordinary case.",
    },
    DevPerson {
        key: "bob",
        name: "Bob Lim",
        email: "bob_lim@hdb.gov.sg",
        oid: "8d1e2f30-0000-4000-8000-0000000000b0",
        tid: WOG_TENANT_ID,
        amr: &["pwd", "rsa", "mfa"],
        guest_home_tenant: None,
        description: "A second public officer (another agency), MFA with an authenticator app.",
    },
    DevPerson {
        key: "carol",
        name: "Carol Ng",
        email: "carol_ng@tech.gov.sg",
        oid: "8d1e2f30-0000-4000-8000-0000000000c0",
        tid: WOG_TENANT_ID,
        amr: &["pwd"],
        guest_home_tenant: None,
        description: "Public officer who signed in WITHOUT MFA (password only).",
    },
    DevPerson {
        key: "dave",
        name: "Dave Kumar",
        email: "dave@vendorco.example",
        oid: "8d1e2f30-0000-4000-8000-0000000000d0",
        tid: VENDOR_TENANT_ID,
        amr: &["pwd", "mfa"],
        guest_home_tenant: Some("5d1e2c3b-0000-4000-8000-00000000b0b0"),
        description: "Vendor: a B2B guest in the vendor directory, homed in his company's tenant.",
    },
    DevPerson {
        key: "mallory",
        name: "Mallory Ong",
        email: "mallory@other-agency.example",
        oid: "8d1e2f30-0000-4000-8000-0000000000e0",
        tid: OTHER_TENANT_ID,
        amr: &["pwd", "mfa"],
        guest_home_tenant: None,
        description: "Someone from another Azure AD tenant, whom TechPass must turn away.",
    },
    DevPerson {
        key: "erin",
        name: "Erin Goh",
        email: "erin_goh@tech.gov.sg",
        oid: "8d1e2f30-0000-4000-8000-0000000000f0",
        tid: WOG_TENANT_ID,
        amr: &["pwd", "mfa"],
        guest_home_tenant: Some("5d1e2c3b-0000-4000-8000-00000000e0e0"),
        description: "A B2B guest in the WOG directory whose email claim is NOT verified (no \
                      xms_edov, AZURE.md §3): an officer's address only if the upstream's \
                      email_authority is \"trusted\".",
    },
];

/// Everyone in the development directory.
pub fn people() -> &'static [DevPerson] {
    &PEOPLE
}

/// The test person `key`, if there is one.
pub fn person(key: &str) -> Option<&'static DevPerson> {
    PEOPLE.iter().find(|p| p.key == key)
}

fn tenant_label(tid: &str) -> &'static str {
    match tid {
        WOG_TENANT_ID => "Whole of government (WOG)",
        VENDOR_TENANT_ID => "Vendor directory",
        OTHER_TENANT_ID => "Another Azure AD tenant",
        _ => "Unknown tenant",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the base URL {0} must be an absolute http(s) URL without query or fragment")]
    BaseUrl(String),
    #[error("no client is registered")]
    NoClients,
    #[error("client id {0:?} is empty or registered twice")]
    ClientId(String),
    #[error("client {0:?} has an empty secret")]
    EmptySecret(String),
    #[error("client {client_id:?}: redirect URI {uri:?} {reason}")]
    RedirectUri {
        client_id: String,
        uri: String,
        reason: &'static str,
    },
    #[error("page template: {0}")]
    Template(String),
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    #[error("encoding failed: {0}")]
    Encoding(&'static str),
}

/// The development upstream. Build it once, share it behind an `Arc`.
pub struct DevUpstream {
    /// `base` without a trailing slash.
    base: String,
    /// The path part of `base`, for form actions that must stay on the page's own origin.
    base_path: String,
    clients: Vec<DevClient>,
    clock: Arc<dyn Clock>,
    tamper: Tamper,
    /// Behave as an RFC 9207 upstream: advertise it and send `iss` in authorization responses.
    iss_parameter: bool,
    key: SigningKey,
    /// Signs [`Tamper::UnknownKey`] tokens; never published.
    rogue_key: Option<SigningKey>,
    codes: CodeStore,
    disabled: Arc<dyn DisabledPeople>,
    rng: SystemRandom,
    templates: minijinja::Environment<'static>,
}

impl std::fmt::Debug for DevUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let client_ids: Vec<&str> = self.clients.iter().map(|c| c.client_id.as_str()).collect();
        f.debug_struct("DevUpstream")
            .field("base", &self.base)
            .field("client_ids", &client_ids)
            .field("tamper", &self.tamper)
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

impl DevUpstream {
    /// `base` is the absolute URL where PATH_PREFIX is served, e.g. http://127.0.0.1:8080/dev/azure
    pub fn new(
        base: Url,
        clients: Vec<DevClient>,
        clock: Arc<dyn Clock>,
        tamper: Tamper,
    ) -> Result<Self, DevError> {
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.query().is_some()
            || base.fragment().is_some()
        {
            return Err(DevError::BaseUrl(base.to_string()));
        }
        check_clients(&clients)?;
        let mut templates = minijinja::Environment::new();
        for (name, source) in [
            ("pick.html", include_str!("pick.html")),
            ("error.html", include_str!("error.html")),
            ("people.html", include_str!("people.html")),
        ] {
            templates
                .add_template(name, source)
                .map_err(|e| DevError::Template(e.to_string()))?;
        }
        let rogue_key = match tamper {
            Tamper::UnknownKey => Some(SigningKey::generate()?),
            _ => None,
        };
        Ok(DevUpstream {
            base: base.as_str().trim_end_matches('/').to_owned(),
            base_path: base.path().trim_end_matches('/').to_owned(),
            clients,
            clock,
            tamper,
            iss_parameter: false,
            key: SigningKey::generate()?,
            rogue_key,
            codes: CodeStore::default(),
            disabled: Arc::new(InMemoryDisabled::default()),
            rng: SystemRandom::new(),
            templates,
        })
    }

    /// Sends `iss` (RFC 9207 §2) in every authorization response, errors included, and
    /// advertises `authorization_response_iss_parameter_supported` (§3). Off by default: Azure
    /// AD cannot be relied on to do so.
    pub fn with_iss_parameter(mut self, on: bool) -> Self {
        self.iss_parameter = on;
        self
    }

    /// Keeps who is disabled in `disabled` instead of this instance's memory.
    pub fn with_disabled_people(mut self, disabled: Arc<dyn DisabledPeople>) -> Self {
        self.disabled = disabled;
        self
    }

    /// Whether the test person `key` is disabled; an unreadable list is a `server_error`
    /// (fail closed).
    async fn is_disabled(&self, key: &str) -> Result<bool, Failure> {
        match self.disabled.disabled().await {
            Ok(list) => Ok(list.iter().any(|k| k == key)),
            Err(e) => {
                tracing::error!(error = %e, "development upstream: disabled people unreadable");
                Err(Failure::server_error())
            }
        }
    }

    /// Whether the metadata promises `iss` in authorization responses (RFC 9207 §3).
    fn advertises_iss_parameter(&self) -> bool {
        self.iss_parameter || self.tamper == Tamper::MissingIssParameter
    }

    /// The `iss` parameter for an authorization response from `tenant`'s endpoint, if any.
    fn iss_parameter(&self, tenant: &str) -> Option<String> {
        match self.tamper {
            Tamper::WrongIssParameter => Some(self.issuer(foreign_tenant(tenant))),
            Tamper::MissingIssParameter => None,
            _ => self.iss_parameter.then(|| self.issuer(tenant)),
        }
    }

    /// `{base}/{tid}/v2.0` — exactly like https://login.microsoftonline.com/{tid}/v2.0
    pub fn issuer(&self, tid: &str) -> String {
        format!("{}/{tid}/v2.0", self.base)
    }

    /// Routes relative to PATH_PREFIX; the caller does Router::new().nest(PATH_PREFIX, dev.router()).
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(&format!("/{{tid}}{DISCOVERY_PATH}"), get(discovery))
            .route(&format!("/{{tid}}{JWKS_PATH}"), get(jwks))
            .route(
                &format!("/{{tid}}{AUTHORIZE_PATH}"),
                get(authorize::show).post(authorize::submit),
            )
            .route(&format!("/{{tid}}{TOKEN_PATH}"), post(token::exchange))
            .route(people::PEOPLE_PATH, get(people::show).post(people::change))
            .with_state(self)
    }

    fn endpoint(&self, tid: &str, path: &str) -> String {
        format!("{}/{tid}{path}", self.base)
    }

    fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    fn now(&self) -> i64 {
        self.clock.now().as_secs()
    }

    /// `len` random bytes, base64url without padding.
    fn random_token(&self, len: usize) -> Result<String, DevError> {
        let mut bytes = vec![0u8; len];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| DevError::Crypto("random generation failed"))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A random UUID, the shape of Azure AD's trace and correlation ids.
    fn random_uuid(&self) -> String {
        let mut bytes = [0u8; 16];
        // An all-zero id on failure is harmless: these ids only label log lines.
        let _ = self.rng.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Azure AD's error timestamp format: `2024-01-31 09:15:02Z`.
    fn timestamp(&self) -> String {
        match time::OffsetDateTime::from_unix_timestamp(self.now()) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => self.now().to_string(),
        }
    }

    /// An Azure-shaped JSON error (`AADSTSxxxx: …` with trace and correlation ids), never cached.
    fn json_error(&self, failure: Failure) -> Response {
        let Failure {
            status,
            error,
            code,
            message,
        } = failure;
        let trace_id = self.random_uuid();
        let correlation_id = self.random_uuid();
        let timestamp = self.timestamp();
        let body = AzureError {
            error,
            error_description: format!(
                "AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id} \
                 Timestamp: {timestamp}"
            ),
            error_codes: [code],
            timestamp,
            trace_id,
            correlation_id,
        };
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a failed client authentication answers with the scheme to use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"techpass-dev-upstream\""),
            );
        }
        response
    }
}

/// An error answered as Azure-shaped JSON: the OAuth error code (RFC 6749 §5.2), the HTTP status
/// and the AADSTS code and text Azure AD would send.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl Failure {
    fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            code,
            message: message.into(),
        }
    }

    fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            code,
            message: message.into(),
        }
    }

    fn invalid_grant(code: u32, message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            code,
            message: message.into(),
        }
    }

    fn missing(name: &str) -> Self {
        Failure::invalid_request(
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    fn unknown_tenant(tid: &str) -> Self {
        Failure {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_tenant",
            code: 90002,
            message: format!(
                "Tenant '{tid}' not found. Check to make sure you have the correct tenant ID and \
                 are signing into the correct cloud. The development upstream serves only its \
                 three tenants."
            ),
        }
    }

    fn server_error() -> Self {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            code: 50000,
            message: "There was an error issuing a token.".to_owned(),
        }
    }
}

fn check_clients(clients: &[DevClient]) -> Result<(), DevError> {
    if clients.is_empty() {
        return Err(DevError::NoClients);
    }
    for (i, client) in clients.iter().enumerate() {
        let id = &client.client_id;
        if id.is_empty() || clients[..i].iter().any(|c| &c.client_id == id) {
            return Err(DevError::ClientId(id.clone()));
        }
        if client.client_secret.is_empty() {
            return Err(DevError::EmptySecret(id.clone()));
        }
        for uri in &client.redirect_uris {
            let refuse = |reason| DevError::RedirectUri {
                client_id: id.clone(),
                uri: uri.clone(),
                reason,
            };
            // RFC 6749 §3.1.2: an absolute URI without a fragment.
            let parsed = Url::parse(uri).map_err(|_| refuse("is not an absolute URL"))?;
            if parsed.fragment().is_some() {
                return Err(refuse("has a fragment"));
            }
        }
    }
    Ok(())
}

/// A tenant that is not `tid`, for the defects that must always be wrong.
fn foreign_tenant(tid: &str) -> &'static str {
    if tid == OTHER_TENANT_ID {
        WOG_TENANT_ID
    } else {
        OTHER_TENANT_ID
    }
}

/// The tenant, if it is one of ours.
fn known_tenant(tid: &str) -> Option<&'static str> {
    TENANTS.into_iter().find(|t| *t == tid)
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[derive(Serialize)]
struct AzureError {
    error: &'static str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
}

/// OpenID Connect Discovery 1.0 §3, in Azure AD v2.0's shape.
async fn discovery(State(dev): State<Arc<DevUpstream>>, Path(tid): Path<String>) -> Response {
    let Some(tid) = known_tenant(&tid) else {
        return dev.json_error(Failure::unknown_tenant(&tid));
    };
    let mut document = serde_json::json!({
        "issuer": dev.issuer(tid),
        "authorization_endpoint": dev.endpoint(tid, AUTHORIZE_PATH),
        "token_endpoint": dev.endpoint(tid, TOKEN_PATH),
        "jwks_uri": dev.endpoint(tid, JWKS_PATH),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
            "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email",
        ],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "AS",
        "cloud_instance_name": "microsoftonline.com",
    });
    if let Some(members) = document
        .as_object_mut()
        .filter(|_| dev.advertises_iss_parameter())
    {
        // RFC 9207 §3; absent means false.
        members.insert(
            "authorization_response_iss_parameter_supported".into(),
            true.into(),
        );
    }
    Json(document).into_response()
}

/// The tenant's signing keys (RFC 7517 §5), without `alg`, as Azure AD publishes them.
async fn jwks(State(dev): State<Arc<DevUpstream>>, Path(tid): Path<String>) -> Response {
    if known_tenant(&tid).is_none() {
        return dev.json_error(Failure::unknown_tenant(&tid));
    }
    Json(serde_json::json!({ "keys": [dev.key.jwk()] })).into_response()
}
