//! A tenant's apps (OIDC clients) and their credentials: registration and edits within the
//! platform's limits, the sign-in kill switch, deletion (with everything that names the app),
//! client secrets (generated here, shown once,
//! stored as keyed hashes, each with an expiry of at most a year and at most
//! `apps.max_secrets` live, so rotation overlaps) and public keys for `private_key_jwt`.

use serde::{Deserialize, Serialize};
use techpass_domain::client::{validate_redirect_uri, AccessPolicy};
use techpass_domain::tenancy::TenantStatus;
use techpass_oidc::assertion::parse_client_jwks;
use techpass_store::{ClientRecord, ClientSecretRecord, TenantRecord};

use super::{admin_tenant, audit, Actor, Result, TenancyError};
use crate::clients::{
    check_backchannel_logout_uri, choose_alg, create_app, CreatedApp, NewApp,
    GRANT_CLIENT_CREDENTIALS, PURPOSE_CLIENT_SECRET,
};
use crate::ServiceContext;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AppSpec {
    pub name: String,
    #[serde(default)]
    pub homepage: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// A public app (native or single-page) has no secret and must use PKCE.
    #[serde(default = "yes")]
    pub confidential: bool,
    /// Any of `authorization_code`, `refresh_token`, `client_credentials` and
    /// `urn:ietf:params:oauth:grant-type:device_code` (command-line tools, RFC 8628).
    #[serde(default = "default_grants")]
    pub grant_types: Vec<String>,
    /// Who may sign in: `assigned` (the default), `members` or `officers`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "members")]
    pub access_policy: Option<AccessPolicy>,
    /// Deprecated, for API clients written before `access_policy`: `true` is `assigned`,
    /// `false` is `officers`. Refused when it contradicts `access_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_assignment_required: Option<bool>,
    /// The JWS algorithm of its ID tokens: `RS256` (the default), `ES256` or `EdDSA`.
    #[serde(default)]
    #[schema(example = "ES256")]
    pub id_token_signed_response_alg: Option<String>,
    /// The JWS algorithm of its JWT access tokens: `RS256` (the default), `ES256` or `EdDSA`.
    #[serde(default)]
    #[schema(example = "ES256")]
    pub access_token_signed_response_alg: Option<String>,
}

/// The policy asked for by `access_policy` and the deprecated `user_assignment_required`
/// (`None` when neither says anything); a contradiction is refused.
fn asked_policy(
    policy: Option<AccessPolicy>,
    assignment_required: Option<bool>,
) -> Result<Option<AccessPolicy>> {
    let legacy = assignment_required.map(|required| {
        if required {
            AccessPolicy::Assigned
        } else {
            AccessPolicy::Officers
        }
    });
    // `members` does not require assignment either, so it agrees with `false`.
    let agrees = |p: AccessPolicy, l: AccessPolicy| {
        p == l || (p == AccessPolicy::Members && l == AccessPolicy::Officers)
    };
    match (policy, legacy) {
        (Some(p), Some(l)) if !agrees(p, l) => Err(TenancyError::Invalid(format!(
            "access_policy {:?} contradicts user_assignment_required {}; send access_policy only",
            p.as_str(),
            l == AccessPolicy::Assigned
        ))),
        (Some(p), _) => Ok(Some(p)),
        (None, l) => Ok(l),
    }
}

fn yes() -> bool {
    true
}

fn default_grants() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}

/// What may be changed after registration; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AppChanges {
    pub name: Option<String>,
    pub homepage: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
    /// The sign-in kill switch.
    pub enabled: Option<bool>,
    /// Who may sign in: `assigned`, `members` or `officers`.
    #[schema(value_type = Option<String>, example = "members")]
    pub access_policy: Option<AccessPolicy>,
    /// Deprecated: see [`AppSpec::user_assignment_required`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_assignment_required: Option<bool>,
    /// Within `tokens.access_token_lifetime_secs` (the platform's limit).
    pub access_token_lifetime_secs: Option<i64>,
    /// Within `tokens.refresh_token_idle_secs`.
    pub refresh_token_idle_secs: Option<i64>,
    /// Lets this client_credentials app call the TechPass API for its tenant.
    pub api_access: Option<bool>,
    /// `RS256`, `ES256` or `EdDSA`; the empty string goes back to the platform default (RS256).
    pub id_token_signed_response_alg: Option<String>,
    /// `RS256`, `ES256` or `EdDSA`; the empty string goes back to the platform default (RS256).
    pub access_token_signed_response_alg: Option<String>,
    /// RFC 9449 §5.2: every token request of the app must prove a DPoP key, so none of its
    /// access tokens is a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
}

pub(super) async fn active_tenant(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<TenantRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    if tenant.status != TenantStatus::Active {
        return Err(TenancyError::Conflict(format!(
            "the tenant is {}; only an active tenant's apps can be changed",
            tenant.status.as_str()
        )));
    }
    Ok(tenant)
}

/// The app, if it belongs to the tenant the actor administers.
pub async fn get(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<ClientRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    state
        .store
        .get_client(client_id)
        .await?
        .filter(|c| c.tenant_id.as_deref() == Some(tenant.id.as_str()))
        .ok_or(TenancyError::NotFound("app"))
}

pub async fn list(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<ClientRecord>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    Ok(state.store.clients_of_tenant(&tenant.id).await?)
}

pub async fn create(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    spec: AppSpec,
) -> Result<CreatedApp> {
    let tenant = active_tenant(state, actor, tenant_id).await?;
    let access_policy = asked_policy(spec.access_policy, spec.user_assignment_required)?
        .unwrap_or(AccessPolicy::Assigned);
    name_is_free(state, &tenant.id, &spec.name, None).await?;
    let id_token_alg = spec
        .id_token_signed_response_alg
        .as_deref()
        .map_or(Ok(None), |a| choose_alg("id_token_signed_response_alg", a))?;
    let access_token_alg = spec
        .access_token_signed_response_alg
        .as_deref()
        .map_or(Ok(None), |a| {
            choose_alg("access_token_signed_response_alg", a)
        })?;
    let created = create_app(
        state.store.as_ref(),
        &state.secrets,
        state.clock.now().as_secs(),
        state.http.policy(),
        NewApp {
            name: spec.name,
            confidential: spec.confidential,
            redirect_uris: spec.redirect_uris,
            post_logout_redirect_uris: spec.post_logout_redirect_uris,
            backchannel_logout_uri: spec.backchannel_logout_uri,
            grant_types: spec.grant_types,
            jwks: None,
            tenant_id: Some(tenant.id.clone()),
            homepage: spec.homepage,
            access_policy,
            secret_lifetime_secs: Some(secret_max_lifetime(state)),
            id_token_signed_response_alg: id_token_alg,
            access_token_signed_response_alg: access_token_alg,
        },
    )
    .await?;
    audit(
        state,
        actor,
        "app.created",
        Some(&tenant.id),
        Some(&created.client_id),
        serde_json::json!({
            "secret_created": created.client_secret.is_some(),
            "access_policy": access_policy.as_str(),
        }),
    )
    .await;
    Ok(created)
}

fn secret_max_lifetime(state: &ServiceContext) -> i64 {
    i64::try_from(state.settings.apps.secret_max_lifetime_days)
        .unwrap_or(365)
        .saturating_mul(86_400)
}

/// Two apps of one tenant may not share a name (compared trimmed and case-insensitively): a
/// person choosing between them on a consent or access page could not tell them apart.
async fn name_is_free(
    state: &ServiceContext,
    tenant_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<()> {
    let wanted = name.trim().to_lowercase();
    let taken = state
        .store
        .clients_of_tenant(tenant_id)
        .await?
        .into_iter()
        .any(|c| Some(c.client_id.as_str()) != except && c.name.trim().to_lowercase() == wanted);
    if taken {
        return Err(TenancyError::Conflict(format!(
            "this tenant already has an app named {:?}; choose another name",
            name.trim()
        )));
    }
    Ok(())
}

pub async fn update(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    changes: AppChanges,
) -> Result<ClientRecord> {
    active_tenant(state, actor, tenant_id).await?;
    let mut app = get(state, actor, tenant_id, client_id).await?;
    let invalid = |m: String| TenancyError::Invalid(m);
    if let Some(name) = &changes.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid(
                "the app needs a name (at most 100 characters)".into(),
            ));
        }
        name_is_free(state, tenant_id, name, Some(client_id)).await?;
        app.name = name.to_string();
    }
    if let Some(home) = changes.homepage {
        if home.is_empty() {
            app.homepage = None;
        } else {
            validate_redirect_uri(&home).map_err(|e| invalid(format!("homepage {home} {e}")))?;
            app.homepage = Some(home);
        }
    }
    if let Some(uris) = &changes.redirect_uris {
        for uri in uris {
            validate_redirect_uri(uri).map_err(|e| invalid(format!("redirect URI {uri} {e}")))?;
        }
        if uris.is_empty() && app.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(invalid(
                "an app that signs people in needs at least one redirect URI".into(),
            ));
        }
        app.redirect_uris = uris.clone();
    }
    if let Some(uris) = &changes.post_logout_redirect_uris {
        for uri in uris {
            validate_redirect_uri(uri)
                .map_err(|e| invalid(format!("post-logout redirect URI {uri} {e}")))?;
        }
        app.post_logout_redirect_uris = uris.clone();
    }
    if let Some(uri) = changes.backchannel_logout_uri {
        if uri.is_empty() {
            app.backchannel_logout_uri = None;
        } else {
            check_backchannel_logout_uri(state.http.policy(), &uri)
                .map_err(|e| invalid(e.to_string()))?;
            app.backchannel_logout_uri = Some(uri);
        }
    }
    if let Some(enabled) = changes.enabled {
        app.enabled = enabled;
    }
    if let Some(policy) = asked_policy(changes.access_policy, changes.user_assignment_required)? {
        // The deprecated `false` alone means "not assignment": an app for the tenant's members
        // already is one, and an old script must not widen it to every officer.
        let legacy_only = changes.access_policy.is_none();
        let members = app.access_policy == AccessPolicy::Members;
        if !(legacy_only && members && policy == AccessPolicy::Officers) {
            app.access_policy = policy;
        }
    }
    let within = |key: &str, value: i64, max: u64| {
        if value < 1 || value as u64 > max {
            Err(invalid(format!(
                "{key} must be between 1 and {max} seconds"
            )))
        } else {
            Ok(Some(value))
        }
    };
    if let Some(v) = changes.access_token_lifetime_secs {
        app.access_token_lifetime_secs = within(
            "access_token_lifetime_secs",
            v,
            state.settings.tokens.access_token_lifetime_secs,
        )?;
    }
    if let Some(v) = changes.refresh_token_idle_secs {
        app.refresh_token_idle_secs = within(
            "refresh_token_idle_secs",
            v,
            state.settings.tokens.refresh_token_idle_secs,
        )?;
    }
    if changes.api_access.is_some() && matches!(actor, Actor::App { .. }) {
        return Err(TenancyError::Forbidden(
            "an automation app cannot grant API access",
        ));
    }
    if let Some(api) = changes.api_access {
        if api
            && !app
                .grant_types
                .iter()
                .any(|g| g == GRANT_CLIENT_CREDENTIALS)
        {
            return Err(invalid(
                "only an app with the client_credentials grant can be given API access".into(),
            ));
        }
        app.api_access = api;
    }
    if let Some(alg) = &changes.id_token_signed_response_alg {
        app.id_token_signed_response_alg = choose_alg("id_token_signed_response_alg", alg)
            .map_err(|e| invalid(e.to_string()))?
            .map(|a| a.as_str().to_string());
    }
    if let Some(alg) = &changes.access_token_signed_response_alg {
        app.access_token_signed_response_alg = choose_alg("access_token_signed_response_alg", alg)
            .map_err(|e| invalid(e.to_string()))?
            .map(|a| a.as_str().to_string());
    }
    if let Some(bound) = changes.dpop_bound_access_tokens {
        app.dpop_bound_access_tokens = bound;
    }
    if !state.store.update_client(&app).await? {
        return Err(TenancyError::NotFound("app"));
    }
    audit(
        state,
        actor,
        "app.updated",
        app.tenant_id.as_deref(),
        Some(&app.client_id),
        serde_json::json!({
            "enabled": app.enabled,
            "access_policy": app.access_policy.as_str(),
            "api_access": app.api_access,
            "id_token_signed_response_alg": app.id_token_signed_response_alg,
            "access_token_signed_response_alg": app.access_token_signed_response_alg,
            "dpop_bound_access_tokens": app.dpop_bound_access_tokens,
        }),
    )
    .await;
    Ok(app)
}

/// Deletes one of the tenant's apps with everything that names it (secrets, codes, grants and
/// their refresh tokens, device codes, assignments, roles, consents, resource grants, pending
/// grants), audited; the audit log keeps its history. Tokens already issued to it stop working
/// at once: introspection, userinfo and refresh find no app or grant and refuse them. No
/// back-channel logout is sent (the app is gone). An automation app cannot delete itself.
pub async fn delete(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<()> {
    let app = get(state, actor, tenant_id, client_id).await?;
    remove(state, actor, app).await
}

/// Deletes any app, a platform app included, as [`delete`] does: for the operator at the
/// command line and platform admins.
pub async fn delete_any(state: &ServiceContext, actor: &Actor, client_id: &str) -> Result<()> {
    super::require_platform_admin(actor)?;
    let app = state
        .store
        .get_client(client_id)
        .await?
        .ok_or(TenancyError::NotFound("app"))?;
    remove(state, actor, app).await
}

async fn remove(state: &ServiceContext, actor: &Actor, app: ClientRecord) -> Result<()> {
    if matches!(actor, Actor::App { client_id, .. } if client_id == &app.client_id) {
        return Err(TenancyError::Forbidden(
            "an automation app cannot delete itself",
        ));
    }
    // Of concurrent deletions one does it; the others find nothing.
    if !state.store.delete_client(&app.client_id).await? {
        return Err(TenancyError::NotFound("app"));
    }
    audit(
        state,
        actor,
        "app.deleted",
        app.tenant_id.as_deref(),
        Some(&app.client_id),
        serde_json::json!({ "name": app.name }),
    )
    .await;
    Ok(())
}

/// A secret's public description: never the secret or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<&ClientSecretRecord> for SecretInfo {
    fn from(s: &ClientSecretRecord) -> Self {
        SecretInfo {
            id: s.id.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
        }
    }
}

pub async fn secrets(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<SecretInfo>> {
    let app = get(state, actor, tenant_id, client_id).await?;
    Ok(state
        .store
        .client_secrets(&app.client_id)
        .await?
        .iter()
        .map(SecretInfo::from)
        .collect())
}

/// A new secret, returned in the clear only here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewSecret {
    pub id: String,
    pub secret: String,
    pub expires_at: i64,
}

pub async fn add_secret(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    lifetime_days: Option<i64>,
) -> Result<NewSecret> {
    active_tenant(state, actor, tenant_id).await?;
    let app = get(state, actor, tenant_id, client_id).await?;
    if !app.confidential {
        return Err(TenancyError::Invalid("a public app has no secrets".into()));
    }
    let max = secret_max_lifetime(state);
    let lifetime = match lifetime_days {
        None => max,
        Some(d) if d >= 1 && d.saturating_mul(86_400) <= max => d * 86_400,
        Some(_) => {
            return Err(TenancyError::Invalid(format!(
                "a secret lives between 1 and {} days",
                max / 86_400
            )))
        }
    };
    let now = state.clock.now().as_secs();
    let secret = super::random_secret(state)?;
    let record = ClientSecretRecord {
        id: super::new_id(state, "sec"),
        client_id: app.client_id.clone(),
        secret_hash: state.secrets.keyed_hash(PURPOSE_CLIENT_SECRET, &secret),
        created_at: now,
        expires_at: now + lifetime,
        revoked_at: None,
    };
    let max_live = i64::from(state.settings.apps.max_secrets);
    if !state
        .store
        .add_client_secret(&record, now, max_live)
        .await?
    {
        return Err(TenancyError::Conflict(format!(
            "an app has at most {max_live} live secrets; revoke one first"
        )));
    }
    audit(
        state,
        actor,
        "app.secret_created",
        app.tenant_id.as_deref(),
        Some(&app.client_id),
        serde_json::json!({ "secret_id": record.id, "expires_at": record.expires_at }),
    )
    .await;
    Ok(NewSecret {
        id: record.id,
        secret,
        expires_at: record.expires_at,
    })
}

pub async fn revoke_secret(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    secret_id: &str,
) -> Result<()> {
    let app = get(state, actor, tenant_id, client_id).await?;
    if !state
        .store
        .revoke_client_secret(&app.client_id, secret_id, state.clock.now().as_secs())
        .await?
    {
        return Err(TenancyError::NotFound("live secret"));
    }
    audit(
        state,
        actor,
        "app.secret_revoked",
        app.tenant_id.as_deref(),
        Some(&app.client_id),
        serde_json::json!({ "secret_id": secret_id }),
    )
    .await;
    Ok(())
}

/// Replaces the app's public keys for `private_key_jwt` (a JWK set of at most
/// `apps.max_public_keys` keys; an empty set removes them).
pub async fn set_keys(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    jwks: &str,
) -> Result<usize> {
    active_tenant(state, actor, tenant_id).await?;
    let mut app = get(state, actor, tenant_id, client_id).await?;
    if !app.confidential {
        return Err(TenancyError::Invalid(
            "a public app cannot register keys".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(jwks)
        .map_err(|e| TenancyError::Invalid(format!("the key set is not JSON: {e}")))?;
    let count = value
        .get("keys")
        .and_then(|k| k.as_array())
        .map(Vec::len)
        .ok_or_else(|| TenancyError::Invalid("a JWK set has a \"keys\" array".into()))?;
    let max = state.settings.apps.max_public_keys as usize;
    if count > max {
        return Err(TenancyError::Invalid(format!(
            "an app has at most {max} public keys"
        )));
    }
    if count == 0 {
        app.jwks = None;
    } else {
        parse_client_jwks(jwks)
            .map_err(|e| TenancyError::Invalid(format!("the key set is not usable: {e}")))?;
        app.jwks = Some(jwks.to_string());
    }
    if !state.store.update_client(&app).await? {
        return Err(TenancyError::NotFound("app"));
    }
    audit(
        state,
        actor,
        "app.keys_set",
        app.tenant_id.as_deref(),
        Some(&app.client_id),
        serde_json::json!({ "keys": count }),
    )
    .await;
    Ok(count)
}
