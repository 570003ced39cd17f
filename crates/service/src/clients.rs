//! Relying parties: registering an app (for now from the CLI) and authenticating a client at the
//! token, introspection and revocation endpoints (RFC 6749 §2.3.1: HTTP Basic or the body, never
//! both; secrets compared as keyed hashes in constant time).

use base64::Engine;
use techpass_domain::client::{validate_redirect_uri, AccessPolicy};
use techpass_oidc::assertion::{parse_client_jwks, verify_assertion, ASSERTION_TYPE};
use techpass_oidc::keys::SigningAlg;
use techpass_oidc::{OAuthError, Params, Secrets};
use techpass_store::{ClientRecord, ClientSecretRecord, Store, StoreError};

use crate::outbound::OutboundPolicy;

pub const PURPOSE_CLIENT_SECRET: &str = "client-secret";
/// Client secrets live at most a year (rotate with overlap before).
pub const SECRET_LIFETIME_SECS: i64 = 365 * 24 * 3600;

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 8628 §3.4: command-line tools and devices without a browser of their own.
pub const GRANT_DEVICE_CODE: &str = techpass_oidc::GRANT_DEVICE_CODE;
/// RFC 8693: a CI job exchanges its own OIDC ID token for the app's access token (CI workload
/// identity, [`crate::workload`]); the app's registered CI issuers decide which jobs may.
pub const GRANT_TOKEN_EXCHANGE: &str = techpass_oidc::workload::GRANT_TOKEN_EXCHANGE;
pub const GRANT_TYPES: [&str; 5] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_TOKEN_EXCHANGE,
];

/// A registered client, with its JSON lists parsed.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub confidential: bool,
    pub enabled: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    /// Registered public keys for `private_key_jwt`.
    pub jwks: Option<String>,
    /// The owning tenant (`None`: a platform app registered by an operator).
    pub tenant_id: Option<String>,
    pub homepage: Option<String>,
    pub access_policy: AccessPolicy,
    pub access_token_lifetime_secs: Option<i64>,
    pub refresh_token_idle_secs: Option<i64>,
    pub api_access: bool,
    /// What its ID tokens (and back-channel logout tokens) are signed with.
    pub id_token_alg: SigningAlg,
    /// What its JWT access tokens are signed with.
    pub access_token_alg: SigningAlg,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof (no bearer tokens).
    pub dpop_bound_access_tokens: bool,
}

/// An app's stored algorithm choice: `None` is the platform default; a value this version does
/// not sign with is an error (the service never stores one).
pub fn stored_alg(client_id: &str, stored: Option<&str>) -> Result<SigningAlg, StoreError> {
    stored.map_or(Ok(SigningAlg::DEFAULT), |alg| {
        alg.parse()
            .map_err(|e| StoreError::Backend(format!("client {client_id}: {e}")))
    })
}

/// Checks an algorithm an app asks for (`id_token_signed_response_alg` or
/// `access_token_signed_response_alg`): one TechPass signs with, named exactly; the empty string
/// means the platform default. The error names the field and the supported values.
pub fn choose_alg(field: &str, value: &str) -> Result<Option<SigningAlg>, AppError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| AppError::Invalid(format!("{field}: {e}")))
}

impl Client {
    fn from_record(r: ClientRecord) -> Result<Client, StoreError> {
        Ok(Client {
            id_token_alg: stored_alg(&r.client_id, r.id_token_signed_response_alg.as_deref())?,
            access_token_alg: stored_alg(
                &r.client_id,
                r.access_token_signed_response_alg.as_deref(),
            )?,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            grant_types: r.grant_types,
            id: r.client_id,
            name: r.name,
            confidential: r.confidential,
            enabled: r.enabled,
            backchannel_logout_uri: r.backchannel_logout_uri,
            jwks: r.jwks,
            tenant_id: r.tenant_id,
            homepage: r.homepage,
            access_policy: r.access_policy,
            access_token_lifetime_secs: r.access_token_lifetime_secs,
            refresh_token_idle_secs: r.refresh_token_idle_secs,
            api_access: r.api_access,
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
        })
    }

    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// The app as it stands (at most the row cache's second old: [`techpass_store::CachedRows`]), for deciding what
/// a request may do. A change to the app reads the database instead.
pub async fn find_client(store: &dyn Store, client_id: &str) -> Result<Option<Client>, StoreError> {
    match store.cached_client(client_id).await? {
        Some(record) => Ok(Some(Client::from_record(record)?)),
        None => Ok(None),
    }
}

/// Registers an app with a fixed id and no secret if no app has that id yet, or brings its
/// redirect and post-logout URIs up to date (the development demo app at start-up; replicas
/// racing to do it all succeed).
pub async fn ensure_registered(store: &dyn Store, record: &ClientRecord) -> Result<(), StoreError> {
    if let Some(existing) = store.get_client(&record.client_id).await? {
        // A built-in app's addresses follow the issuer it is started under (and registrations
        // made by an older version); everything an operator may have changed is kept.
        if existing.redirect_uris != record.redirect_uris
            || existing.post_logout_redirect_uris != record.post_logout_redirect_uris
        {
            store
                .update_client(&ClientRecord {
                    redirect_uris: record.redirect_uris.clone(),
                    post_logout_redirect_uris: record.post_logout_redirect_uris.clone(),
                    ..existing
                })
                .await?;
        }
        return Ok(());
    }
    match store.insert_client(record, &[]).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What registering an app asks for (`techpass app create`, or a tenant admin).
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    /// Public keys (a JWK set) for `private_key_jwt`; such an app gets no secret.
    pub jwks: Option<String>,
    pub tenant_id: Option<String>,
    pub homepage: Option<String>,
    /// Who may sign in (the default: every registered officer, as for a platform app).
    pub access_policy: AccessPolicy,
    /// How long its first secret lives (default and maximum: a year).
    pub secret_lifetime_secs: Option<i64>,
    /// Signing algorithms for its ID tokens and access tokens (`None`: the platform default).
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub access_token_signed_response_alg: Option<SigningAlg>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] techpass_oidc::KeyError),
}

/// The created app: its id and, for a confidential app, the secret (shown once, stored hashed).
#[derive(Debug)]
pub struct CreatedApp {
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Registers an app. Client ids carry a prefix (`app_`) that user ids (UUIDs) never have, so a
/// client can never be mistaken for a user (RFC 9700 §4.15).
pub async fn create_app(
    store: &dyn Store,
    secrets: &Secrets,
    now: i64,
    outbound: &OutboundPolicy,
    app: NewApp,
) -> Result<CreatedApp, AppError> {
    let invalid = |m: String| AppError::Invalid(m);
    if app.name.trim().is_empty() || app.name.trim().chars().count() > 100 {
        return Err(invalid(
            "the app needs a name (at most 100 characters)".into(),
        ));
    }
    if let Some(home) = &app.homepage {
        validate_redirect_uri(home).map_err(|e| invalid(format!("homepage {home} {e}")))?;
    }
    for g in &app.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(invalid(format!(
                "unsupported grant type {g} (supported: {})",
                GRANT_TYPES.join(", ")
            )));
        }
    }
    if app.grant_types.is_empty() {
        return Err(invalid("the app needs at least one grant type".into()));
    }
    if !app.confidential
        && app
            .grant_types
            .iter()
            .any(|g| g == GRANT_CLIENT_CREDENTIALS)
    {
        return Err(invalid("a public app cannot use client_credentials".into()));
    }
    if app
        .grant_types
        .iter()
        .any(|g| g == GRANT_AUTHORIZATION_CODE)
        && app.redirect_uris.is_empty()
    {
        return Err(invalid(
            "an app that signs people in needs at least one redirect URI".into(),
        ));
    }
    for uri in app
        .redirect_uris
        .iter()
        .chain(&app.post_logout_redirect_uris)
    {
        validate_redirect_uri(uri).map_err(|e| invalid(format!("redirect URI {uri} {e}")))?;
    }
    if let Some(uri) = &app.backchannel_logout_uri {
        check_backchannel_logout_uri(outbound, uri)?;
    }
    if let Some(jwks) = &app.jwks {
        if !app.confidential {
            return Err(invalid("a public app cannot register keys".into()));
        }
        parse_client_jwks(jwks).map_err(|e| invalid(format!("the key set is not usable: {e}")))?;
    }
    let client_id = format!("app_{}", &Secrets::random_token()?[..22]);
    let secret = if app.confidential && app.jwks.is_none() {
        Some(Secrets::random_token()?)
    } else {
        None
    };
    let secret_records: Vec<ClientSecretRecord> = secret
        .iter()
        .map(|s| ClientSecretRecord {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client_id.clone(),
            secret_hash: secrets.keyed_hash(PURPOSE_CLIENT_SECRET, s),
            created_at: now,
            expires_at: now
                + app
                    .secret_lifetime_secs
                    .unwrap_or(SECRET_LIFETIME_SECS)
                    .clamp(1, SECRET_LIFETIME_SECS),
            revoked_at: None,
        })
        .collect();
    store
        .insert_client(
            &ClientRecord {
                client_id: client_id.clone(),
                name: app.name.trim().to_string(),
                confidential: app.confidential,
                redirect_uris: app.redirect_uris.clone(),
                post_logout_redirect_uris: app.post_logout_redirect_uris.clone(),
                backchannel_logout_uri: app.backchannel_logout_uri,
                grant_types: app.grant_types.clone(),
                enabled: true,
                created_at: now,
                jwks: app.jwks,
                tenant_id: app.tenant_id,
                homepage: app.homepage,
                access_policy: app.access_policy,
                access_token_lifetime_secs: None,
                refresh_token_idle_secs: None,
                api_access: false,
                id_token_signed_response_alg: app
                    .id_token_signed_response_alg
                    .map(|a| a.as_str().to_string()),
                access_token_signed_response_alg: app
                    .access_token_signed_response_alg
                    .map(|a| a.as_str().to_string()),
                dpop_bound_access_tokens: false,
            },
            &secret_records,
        )
        .await?;
    Ok(CreatedApp {
        client_id,
        client_secret: secret,
    })
}

/// Sets whether every token request of an app must carry a DPoP proof (RFC 9449 §5.2
/// `dpop_bound_access_tokens`), for the operator's `techpass app update --require-dpop`.
pub async fn set_dpop_bound(
    store: &dyn Store,
    client_id: &str,
    bound: bool,
) -> Result<(), AppError> {
    change_client(store, client_id, |r| r.dpop_bound_access_tokens = bound).await?;
    Ok(())
}

/// Reads an app's record, applies `change` and stores it (the operator's `techpass app update`).
async fn change_client(
    store: &dyn Store,
    client_id: &str,
    change: impl FnOnce(&mut ClientRecord),
) -> Result<ClientRecord, AppError> {
    let mut record = store
        .get_client(client_id)
        .await?
        .ok_or_else(|| AppError::Invalid(format!("no app {client_id}")))?;
    change(&mut record);
    if !store.update_client(&record).await? {
        return Err(AppError::Invalid(format!("no app {client_id}")));
    }
    Ok(record)
}

/// Sets the signing algorithms of an app's ID tokens and access tokens (`None`: unchanged), for
/// the operator's `techpass app update`. Returns the app's algorithms after the change.
pub async fn set_signing_algs(
    store: &dyn Store,
    client_id: &str,
    id_token: Option<SigningAlg>,
    access_token: Option<SigningAlg>,
) -> Result<(SigningAlg, SigningAlg), AppError> {
    let record = change_client(store, client_id, |record| {
        if let Some(alg) = id_token {
            record.id_token_signed_response_alg = Some(alg.as_str().into());
        }
        if let Some(alg) = access_token {
            record.access_token_signed_response_alg = Some(alg.as_str().into());
        }
    })
    .await?;
    let client = Client::from_record(record)?;
    Ok((client.id_token_alg, client.access_token_alg))
}

/// A back-channel logout URI is a redirect-shaped URI that TechPass will POST to, so it must
/// also pass the outbound policy (https to a public host outside development).
pub fn check_backchannel_logout_uri(outbound: &OutboundPolicy, uri: &str) -> Result<(), AppError> {
    validate_redirect_uri(uri)
        .map_err(|e| AppError::Invalid(format!("back-channel logout URI {uri} {e}")))?;
    outbound
        .check_url(uri)
        .map_err(|e| AppError::Invalid(format!("back-channel logout URI {uri} {e}")))?;
    Ok(())
}

/// How a client authenticated, to shape an `invalid_client` answer (RFC 6749 §5.2: a failed
/// Basic attempt gets 401 with `WWW-Authenticate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    PrivateKeyJwt,
    None,
}

/// An authentication failure and the method tried.
#[derive(Debug)]
pub struct ClientAuthError {
    pub error: OAuthError,
    pub method: AuthMethod,
}

/// The credentials of an `Authorization: Basic` header, given as its raw bytes (a header that
/// is not text is malformed, not absent).
fn basic_credentials(authorization: Option<&[u8]>) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .ok_or_else(bad)?;
    // RFC 7235 §2.1: `auth-scheme 1*SP token68`, the scheme case-insensitive (RFC 7617 §2).
    let (scheme, encoded) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: each part is form-urlencoded before base64.
    let unescape = |s: &str| {
        Params::parse(format!("v={s}").as_bytes())
            .ok()
            .and_then(|p| p.get("v").map(String::from))
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The client id a request claims (Basic user name, `client_id`, or an assertion's `iss`),
/// before any check.
pub fn claimed_client_id(authorization: Option<&[u8]>, params: &Params) -> Option<String> {
    match basic_credentials(authorization) {
        Ok(Some((id, _))) => Some(id),
        _ => params
            .get("client_id")
            .map(String::from)
            .or_else(|| params.get("client_assertion").and_then(unverified_issuer)),
    }
}

/// The `iss` of an assertion, read without verification, only to find whose keys to verify with.
fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(String::from)
}

/// RFC 7523 §2.2 client authentication.
async fn authenticate_assertion(
    store: &dyn Store,
    now: i64,
    params: &Params,
    audiences: &[&str],
) -> Result<Client, ClientAuthError> {
    let fail = |description: &str| ClientAuthError {
        error: OAuthError::invalid_client(description.to_string()),
        method: AuthMethod::PrivateKeyJwt,
    };
    if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(fail("unsupported client_assertion_type"));
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(|| fail("client_assertion is missing"))?;
    let claimed = params
        .get("client_id")
        .map(String::from)
        .or_else(|| unverified_issuer(assertion))
        .ok_or_else(|| fail("the assertion names no client"))?;
    let server_error = |e: StoreError| ClientAuthError {
        error: OAuthError::unavailable(e),
        method: AuthMethod::PrivateKeyJwt,
    };
    let client = find_client(store, &claimed)
        .await
        .map_err(server_error)?
        .ok_or_else(|| fail("unknown client or invalid assertion"))?;
    let keys = client
        .jwks
        .as_deref()
        .and_then(|j| parse_client_jwks(j).ok())
        .ok_or_else(|| fail("the client has registered no keys"))?;
    let verified = verify_assertion(
        assertion,
        &client.id,
        &keys,
        audiences,
        now,
        ASSERTION_SKEW_SECS,
    )
    .map_err(|reason| {
        tracing::info!(client_id = %client.id, %reason, "client assertion refused");
        fail("unknown client or invalid assertion")
    })?;
    // The assertion is accepted until `exp` + skew, so its `jti` is kept as long (SECURITY 34).
    if !store
        .record_assertion(
            &client.id,
            &verified.jti,
            verified.exp.saturating_add(ASSERTION_SKEW_SECS),
        )
        .await
        .map_err(server_error)?
    {
        tracing::warn!(client_id = %client.id, "client assertion replayed");
        return Err(fail("the assertion was already used"));
    }
    Ok(client)
}

/// Clock difference tolerated on assertion times.
const ASSERTION_SKEW_SECS: i64 = 30;

/// Whether a token request is a CI job's token exchange that presents no client credentials:
/// the job's own token authenticates it ([`crate::workload`]), so the app is named by
/// `client_id` alone, public or confidential. With credentials, [`authenticate`] applies as
/// for any request.
pub fn is_credential_free_exchange(authorization: Option<&[u8]>, params: &Params) -> bool {
    params.get("grant_type") == Some(GRANT_TOKEN_EXCHANGE)
        && authorization.is_none()
        && !["client_secret", "client_assertion", "client_assertion_type"]
            .iter()
            .any(|p| params.contains(p))
}

/// The app a credential-free token exchange names ([`is_credential_free_exchange`]); the
/// grant then refuses it unless the job's token meets one of the app's CI issuers.
pub async fn identify_for_exchange(
    store: &dyn Store,
    params: &Params,
) -> Result<Client, ClientAuthError> {
    let fail = |description: &str| ClientAuthError {
        error: OAuthError::invalid_client(description.to_string()),
        method: AuthMethod::None,
    };
    let id = params
        .get("client_id")
        .ok_or_else(|| fail("client_id is missing: name the app the CI job acts as"))?;
    find_client(store, id)
        .await
        .map_err(|e| ClientAuthError {
            error: OAuthError::unavailable(e),
            method: AuthMethod::None,
        })?
        .ok_or_else(|| fail("unknown client or wrong credentials"))
}

/// Authenticates the calling client. A public client identifies itself by `client_id` alone; a
/// confidential one must present a live secret by exactly one method.
pub async fn authenticate(
    store: &dyn Store,
    secrets: &Secrets,
    now: i64,
    authorization: Option<&[u8]>,
    params: &Params,
    audiences: &[&str],
) -> Result<Client, ClientAuthError> {
    let basic = basic_credentials(authorization).map_err(|error| ClientAuthError {
        error,
        method: AuthMethod::Basic,
    })?;
    if params.contains("client_assertion") || params.contains("client_assertion_type") {
        if basic.is_some() || params.contains("client_secret") {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request("use one client authentication method, not two"),
                method: AuthMethod::PrivateKeyJwt,
            });
        }
        return authenticate_assertion(store, now, params, audiences).await;
    }
    let fail = |method: AuthMethod, description: &str| ClientAuthError {
        error: OAuthError::invalid_client(description.to_string()),
        method,
    };
    let (method, client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request("use one client authentication method, not two"),
                method: AuthMethod::Basic,
            })
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(fail(
                    AuthMethod::Basic,
                    "client_id does not match the credentials",
                ));
            }
            (AuthMethod::Basic, id, Some(secret))
        }
        (None, Some(secret)) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| fail(AuthMethod::Post, "client_id is missing"))?;
            (AuthMethod::Post, id.to_string(), Some(secret.to_string()))
        }
        (None, None) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| fail(AuthMethod::None, "client authentication is required"))?;
            (AuthMethod::None, id.to_string(), None)
        }
    };
    let client = find_client(store, &client_id)
        .await
        .map_err(|e| ClientAuthError {
            error: OAuthError::unavailable(e),
            method,
        })?
        .ok_or_else(|| fail(method, "unknown client or wrong credentials"))?;
    if !client.confidential {
        if secret.is_some() {
            return Err(fail(method, "a public client has no secret"));
        }
        return Ok(client);
    }
    let Some(secret) = secret else {
        let hint = if client.jwks.is_some() {
            "this client authenticates with private_key_jwt"
        } else {
            "client authentication is required"
        };
        return Err(fail(method, hint));
    };
    let stored = store
        .cached_client_secrets(&client.id)
        .await
        .map_err(|e| ClientAuthError {
            error: OAuthError::unavailable(e),
            method,
        })?;
    // Every live secret is checked (no early exit), each comparison in constant time.
    let matched = stored
        .iter()
        .filter(|s| s.expires_at > now && s.revoked_at.is_none())
        .fold(false, |found, s| {
            secrets.verify(PURPOSE_CLIENT_SECRET, &secret, &s.secret_hash) | found
        });
    if !matched {
        return Err(fail(method, "unknown client or wrong credentials"));
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_from_the_raw_header() {
        let basic = |raw: &[u8]| basic_credentials(Some(raw));
        assert_eq!(basic_credentials(None).unwrap(), None);
        // "app_1:s%3Acret" → the secret's ':' was form-encoded (RFC 6749 §2.3.1).
        assert_eq!(
            basic(b"Basic YXBwXzE6cyUzQWNyZXQ=").unwrap(),
            Some(("app_1".into(), "s:cret".into()))
        );
        assert_eq!(basic(b"Bearer abc").unwrap(), None, "another scheme");
        assert_eq!(basic(b"Basicabc").unwrap(), None, "another scheme");
        // RFC 7235 §2.1: the scheme is case-insensitive, followed by one or more spaces.
        for scheme in [&b"BASIC"[..], b"basic", b"bAsIc"] {
            let mut header = scheme.to_vec();
            header.extend_from_slice(b"  YXBwXzE6cyUzQWNyZXQ=");
            assert_eq!(
                basic(&header).unwrap(),
                Some(("app_1".into(), "s:cret".into())),
                "{scheme:?}"
            );
        }
        for malformed in [
            &b"Basic !!!"[..],
            b"Basic YXBwXzE=",
            b"Basic \xff\xfe",
            b"Basic YXBw\x01",
        ] {
            let e = basic(malformed).unwrap_err();
            assert_eq!(
                e.code,
                techpass_oidc::ErrorCode::InvalidClient,
                "{malformed:?}"
            );
        }
    }

    #[tokio::test]
    async fn backchannel_logout_uris_follow_the_outbound_policy() {
        let db = techpass_store::testing::TestDatabase::sqlite().await;
        let store = db.store().await;
        let master = techpass_oidc::MasterKey::from_base64(
            &techpass_oidc::MasterKey::generate_base64().unwrap(),
        )
        .unwrap();
        let secrets = Secrets::derive(&master).unwrap();
        let app = |uri: &str| NewApp {
            name: "Logout app".into(),
            confidential: true,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            backchannel_logout_uri: Some(uri.into()),
            grant_types: vec![GRANT_AUTHORIZATION_CODE.into()],
            ..NewApp::default()
        };
        let production = OutboundPolicy::production();
        for (uri, why) in [
            ("http://127.0.0.1:8080/logout", "https"),
            ("https://127.0.0.1/logout", "internal"),
            ("https://169.254.169.254/latest", "internal"),
            ("https://10.0.0.5/logout", "internal"),
            ("https://[::ffff:10.0.0.5]/logout", "internal"),
            ("https://localhost:2375/containers", "internal"),
            ("https://app.localhost/logout", "internal"),
        ] {
            let e = create_app(store.as_ref(), &secrets, 0, &production, app(uri))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("back-channel logout URI") && e.contains(why),
                "{uri}: {e}"
            );
        }
        create_app(
            store.as_ref(),
            &secrets,
            0,
            &production,
            app("https://app.example.com/logout"),
        )
        .await
        .unwrap();
        let development = OutboundPolicy::development();
        create_app(
            store.as_ref(),
            &secrets,
            0,
            &development,
            app("http://127.0.0.1:8080/logout"),
        )
        .await
        .unwrap();
    }
}

/// Properties of the `Authorization` header parser over any input (issue 15 item 10).
#[cfg(test)]
mod properties {
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    fn form_encode(text: &str) -> String {
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    proptest! {
        /// Any header bytes: credentials, "not Basic", or `invalid_client`; never a panic.
        #[test]
        fn any_header_is_read_or_refused(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = basic_credentials(Some(&raw)) {
                prop_assert_eq!(e.code, techpass_oidc::ErrorCode::InvalidClient);
            }
            let _ = claimed_client_id(Some(&raw), &Params::default());
        }

        /// What a client library sends (each part form-encoded, then base64, any scheme case,
        /// one or more spaces) comes back as the same id and secret.
        #[test]
        fn encoded_credentials_round_trip(
            id in "\\PC{1,64}",
            secret in "\\PC{1,128}",
            scheme in "[bB][aA][sS][iI][cC]",
            spaces in 1usize..4,
        ) {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
            let header = format!("{scheme}{}{encoded}", " ".repeat(spaces));
            prop_assert_eq!(
                basic_credentials(Some(header.as_bytes())).unwrap(),
                Some((id, secret))
            );
        }

        /// A JWT-shaped string of any content names an issuer or nothing; never a panic.
        #[test]
        fn any_assertion_names_an_issuer_or_nothing(parts in proptest::collection::vec("[A-Za-z0-9_=+/-]{0,64}", 0..5)) {
            let _ = unverified_issuer(&parts.join("."));
        }
    }
}
