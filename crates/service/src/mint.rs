//! Minting tokens: JWT access tokens (RFC 9068), ID tokens (OpenID Connect Core §2), rotating
//! refresh tokens (opaque, stored as keyed hashes). The HTTP token response is the shell's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use techpass_oidc::keys::SigningAlg;
use techpass_oidc::OAuthError;
use techpass_store::{RefreshTokenRecord, UserRecord};

use crate::ServiceContext;

pub const PURPOSE_REFRESH: &str = "refresh-token";
/// How many hexadecimal digits of its minting time (Unix milliseconds) a refresh token starts with.
const REFRESH_TIME_DIGITS: usize = 12;
pub const PURPOSE_CODE: &str = "auth-code";
pub const PURPOSE_SID: &str = "sid";

/// Who and what a token is for.
pub struct Subject<'a> {
    /// The user, or `None` for a client acting for itself (client_credentials).
    pub user: Option<&'a UserRecord>,
    pub client_id: &'a str,
    pub audience: &'a str,
    pub scope: &'a [String],
    pub grant_id: Option<&'a str>,
    pub auth_time: Option<i64>,
    pub amr: &'a [String],
    pub acr: Option<&'a str>,
    /// The user's groups in the app's tenant (`tenant:group`) and roles in the app: never
    /// another tenant's.
    pub groups: &'a [String],
    pub roles: &'a [String],
    /// The app's own access token lifetime, if it chose one (within the platform's).
    pub access_lifetime: Option<i64>,
    /// The algorithms the app chose for its access token and its ID token.
    pub access_token_alg: SigningAlg,
    pub id_token_alg: SigningAlg,
    /// DPoP (RFC 9449): the thumbprint of the key the access token is bound to (`cnf.jkt`).
    pub jkt: Option<&'a str>,
    /// A CI job acting as the app (token exchange): the token's `sub` names the job, and its
    /// `ci` claim carries the job token's issuer, subject and matched claims.
    pub ci: Option<&'a crate::workload::CiIdentity>,
}

impl<'a> Subject<'a> {
    /// An app acting for itself (`client_credentials`): no person, so no authentication,
    /// groups or roles; the app's own lifetime and algorithms.
    pub fn app(
        client: &'a crate::clients::Client,
        audience: &'a str,
        scope: &'a [String],
        jkt: Option<&'a str>,
    ) -> Subject<'a> {
        Subject {
            user: None,
            client_id: &client.id,
            audience,
            scope,
            grant_id: None,
            auth_time: None,
            amr: &[],
            acr: None,
            groups: &[],
            roles: &[],
            access_lifetime: client.access_token_lifetime_secs,
            access_token_alg: client.access_token_alg,
            id_token_alg: client.id_token_alg,
            jkt,
            ci: None,
        }
    }
}

/// The `groups` and `roles` claims of `user` for `client`: only the client's tenant's groups
/// (named with `tenant`'s slug, the tenant the gate just read) and only the client's roles. A
/// platform app (no tenant) gets neither.
pub async fn groups_and_roles(
    state: &ServiceContext,
    client: &crate::clients::Client,
    tenant: Option<&techpass_store::TenantRecord>,
    user: &UserRecord,
) -> Result<(Vec<String>, Vec<String>), techpass_store::StoreError> {
    let Some(tenant) = tenant.filter(|t| client.tenant_id.as_deref() == Some(t.id.as_str())) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let groups = state
        .store
        .groups_of_user(&tenant.id, &user.id)
        .await?
        .into_iter()
        .map(|g| techpass_domain::tenancy::qualified_group(&tenant.slug, &g.name))
        .collect();
    let roles = state.store.roles_of_user(&client.id, &user.id).await?;
    Ok((groups, roles))
}

fn authorization_claims(s: &Subject<'_>, claims: &mut Map<String, Value>) {
    if !s.groups.is_empty() {
        claims.insert("groups".into(), json!(s.groups));
    }
    if !s.roles.is_empty() {
        claims.insert("roles".into(), json!(s.roles));
    }
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
    /// Bound to a DPoP key: `token_type` `DPoP` (RFC 9449 §5).
    pub dpop: bool,
}

pub fn access_token(state: &ServiceContext, s: &Subject<'_>) -> Result<AccessToken, OAuthError> {
    let now = state.clock.now().as_secs();
    let platform = state.settings.tokens.access_token_lifetime_secs as i64;
    let lifetime = s.access_lifetime.map_or(platform, |l| l.clamp(1, platform));
    let jti = state.random.token().map_err(OAuthError::server_error)?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.metadata.issuer));
    let sub = match (s.user, s.ci) {
        (Some(user), _) => user.id.clone(),
        (None, Some(ci)) => ci.subject(),
        (None, None) => s.client_id.to_string(),
    };
    claims.insert("sub".into(), json!(sub));
    claims.insert("aud".into(), json!(s.audience));
    claims.insert("client_id".into(), json!(s.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("jti".into(), json!(jti));
    claims.insert("scope".into(), json!(s.scope.join(" ")));
    if let Some(grant) = s.grant_id {
        claims.insert("gid".into(), json!(grant));
    }
    authorization_claims(s, &mut claims);
    if let Some(t) = s.auth_time {
        claims.insert("auth_time".into(), json!(t));
    }
    if !s.amr.is_empty() {
        claims.insert("amr".into(), json!(s.amr));
    }
    if let Some(acr) = s.acr {
        claims.insert("acr".into(), json!(acr));
    }
    if let Some(jkt) = s.jkt {
        claims.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    if let Some(ci) = s.ci {
        claims.insert(
            "ci".into(),
            json!({
                "iss": ci.registration.issuer,
                "sub": ci.ci_subject,
                "ci_issuer": ci.registration.id,
                "claims": ci.matched,
            }),
        );
    }
    let token = state
        .keys
        .sign_jwt(s.access_token_alg, "at+jwt", &Value::Object(claims))
        .map_err(OAuthError::server_error)?;
    Ok(AccessToken {
        token,
        expires_in: lifetime,
        dpop: s.jkt.is_some(),
    })
}

/// OpenID Connect Core §3.1.3.6: the left half of the hash of the access token, with the hash
/// of the ID token's own algorithm (SHA-256, or SHA-512 for Ed25519).
fn at_hash(id_token_alg: SigningAlg, access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(id_token_alg.left_half_hash(access_token.as_bytes()))
}

/// Claims released by scope (OpenID Connect Core §5.4).
pub fn profile_claims(user: &UserRecord, scope: &[String], claims: &mut Map<String, Value>) {
    let has = |s: &str| scope.iter().any(|x| x == s);
    if has("profile") {
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
        if let Some(given) = &user.given_name {
            claims.insert("given_name".into(), json!(given));
        }
        if let Some(family) = &user.family_name {
            claims.insert("family_name".into(), json!(family));
        }
        if let Some(email) = &user.email {
            claims.insert("preferred_username".into(), json!(email));
        }
    }
    if has("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            // True only when the upstream proved it (OpenID Connect Core §5.1).
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
    }
}

pub struct IdTokenInput<'a> {
    pub subject: &'a Subject<'a>,
    pub nonce: Option<&'a str>,
    pub session_hash: Option<&'a str>,
    pub access_token: &'a str,
}

pub fn id_token(
    state: &ServiceContext,
    input: &IdTokenInput<'_>,
) -> Result<Option<String>, OAuthError> {
    let s = input.subject;
    let Some(user) = s.user else {
        return Ok(None);
    };
    if !s.scope.iter().any(|x| x == "openid") {
        return Ok(None);
    }
    let now = state.clock.now().as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.metadata.issuer));
    claims.insert("sub".into(), json!(user.id));
    claims.insert("account_type".into(), json!(user.account_type));
    claims.insert("aud".into(), json!(s.client_id));
    claims.insert("azp".into(), json!(s.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert(
        "exp".into(),
        json!(now + state.settings.tokens.id_token_lifetime_secs as i64),
    );
    if let Some(t) = s.auth_time {
        claims.insert("auth_time".into(), json!(t));
    }
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if !s.amr.is_empty() {
        claims.insert("amr".into(), json!(s.amr));
    }
    if let Some(acr) = s.acr {
        claims.insert("acr".into(), json!(acr));
    }
    if let Some(session) = input.session_hash {
        claims.insert(
            "sid".into(),
            json!(state.secrets.keyed_hash(PURPOSE_SID, session)),
        );
    }
    claims.insert(
        "at_hash".into(),
        json!(at_hash(s.id_token_alg, input.access_token)),
    );
    authorization_claims(s, &mut claims);
    profile_claims(user, s.scope, &mut claims);
    state
        .keys
        .sign_jwt(s.id_token_alg, "JWT", &Value::Object(claims))
        .map(Some)
        .map_err(OAuthError::server_error)
}

/// A new refresh token in `grant_id`'s family, valid for the idle lifetime (the app's own
/// choice within the platform's, capped by the grant).
pub async fn refresh_token(
    state: &ServiceContext,
    grant_id: &str,
    grant_expires_at: i64,
    app_idle_secs: Option<i64>,
) -> Result<String, OAuthError> {
    let (token, record) = next_refresh_token(state, grant_id, grant_expires_at, app_idle_secs)?;
    state
        .store
        .insert_refresh_token(&record)
        .await
        .map_err(OAuthError::server_error)?;
    Ok(token)
}

/// The key a refresh token is stored and looked up under. A token is its minting time in Unix
/// milliseconds as 12 lowercase hexadecimal digits, a `.`, and 256 random bits; its key is those
/// digits followed by the keyed hash of the whole token. Keys so grow in time order: a new
/// token's row goes to the end of the key's index, to the few pages every token of the last
/// moments shares, instead of to a random page of an index of millions (on PostgreSQL each page
/// first changed after a checkpoint is written into the WAL whole). The digits prove nothing:
/// the hash covers them, and nothing but the hash is secret. A token of any other shape (those
/// minted before: 43 base64url characters, never a `.`) is keyed by its hash alone, as it was
/// stored; the two kinds of key differ in length, so neither can stand for the other.
pub fn refresh_token_key(state: &ServiceContext, token: &str) -> String {
    let hash = state.secrets.keyed_hash(PURPOSE_REFRESH, token);
    match token.split_once('.') {
        Some((time, _)) if is_refresh_time(time) => format!("{time}{hash}"),
        _ => hash,
    }
}

fn is_refresh_time(digits: &str) -> bool {
    digits.len() == REFRESH_TIME_DIGITS
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new refresh token of the grant and its record (stored under [`refresh_token_key`]), not
/// yet stored: a rotation stores it with the redemption of its predecessor.
pub fn next_refresh_token(
    state: &ServiceContext,
    grant_id: &str,
    grant_expires_at: i64,
    app_idle_secs: Option<i64>,
) -> Result<(String, RefreshTokenRecord), OAuthError> {
    let now = state.clock.now().as_secs();
    // A version 7 UUID starts with its Unix time in milliseconds, 48 bits.
    let time = state.random.ordered_uuid().simple().to_string();
    let secret = state.random.token().map_err(OAuthError::server_error)?;
    let token = format!(
        "{}.{secret}",
        time.get(..REFRESH_TIME_DIGITS).unwrap_or(&time)
    );
    let platform = state.settings.tokens.refresh_token_idle_secs as i64;
    let idle = app_idle_secs.map_or(platform, |i| i.clamp(1, platform));
    let record = RefreshTokenRecord {
        token_hash: refresh_token_key(state, &token),
        grant_id: grant_id.to_string(),
        created_at: now,
        expires_at: (now + idle).min(grant_expires_at),
        used_at: None,
    };
    Ok((token, record))
}
