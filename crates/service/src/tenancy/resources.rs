//! A tenant's API resources (RFC 8707): an identifier (the `aud` of the access tokens minted
//! for it), the scopes it defines, and which of the tenant's apps may request which of those
//! scopes. Audiences are granted here and never chosen by the caller: the token endpoint asks
//! [`audience`] what a `client_credentials` request may get, and anything else is
//! `invalid_target` (a resource) or `invalid_scope` (a scope).
//!
//! Limits: resources serve `client_credentials` tokens; tokens for people keep the app itself as
//! audience. A grant names apps of the resource's own tenant only.

use serde::{Deserialize, Serialize};
use techpass_oidc::{ErrorCode, OAuthError};
use techpass_store::{ApiResourceRecord, ResourceGrantRecord, StoreError};

use super::apps::active_tenant;
use super::{admin_tenant, audit, new_id, Actor, Result, TenancyError};
use crate::clients::Client;
use crate::scopes::SCOPES;
use crate::ServiceContext;

/// At most this many scopes per resource.
const MAX_SCOPES: usize = 50;

/// What registering a resource asks for.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewResource {
    /// An absolute `https` URI in its normal form, e.g. `https://registry.example.gov.sg/`:
    /// the `resource` apps send and the `aud` of their tokens.
    pub identifier: String,
    pub name: String,
    /// The scopes the resource defines (RFC 6749 §3.3 scope tokens).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// TechPass's own API as a resource: any tenant app may ask for it (no scopes); the API itself
/// checks at every request that the app was granted API access.
pub fn api_audience(ctx: &ServiceContext) -> String {
    format!("{}/api/v1", ctx.metadata.issuer.trim_end_matches('/'))
}

/// A scope token of RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A JSON list of scopes as stored (the service wrote it; an unreadable one grants nothing).
fn scope_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json(scopes: &[String]) -> String {
    serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into())
}

/// The resource's scopes, checked: scope tokens, none of the OpenID Connect ones, no repeats.
fn valid_scopes(scopes: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.trim();
        if !is_scope_token(s) {
            return Err(TenancyError::Invalid(format!(
                "scope {s:?} is not a scope name (printable ASCII, no spaces, quotes or \
                 backslashes, at most 64 characters)"
            )));
        }
        if SCOPES.contains(&s) {
            return Err(TenancyError::Invalid(format!(
                "scope {s} belongs to OpenID Connect, not to a resource"
            )));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    if out.len() > MAX_SCOPES {
        return Err(TenancyError::Invalid(format!(
            "a resource defines at most {MAX_SCOPES} scopes"
        )));
    }
    Ok(out)
}

fn valid_identifier(ctx: &ServiceContext, identifier: &str) -> Result<()> {
    let invalid = |why: &str| TenancyError::Invalid(format!("identifier {identifier}: {why}"));
    let url = url::Url::parse(identifier).map_err(|_| invalid("not an absolute URI"))?;
    if url.scheme() != "https" {
        return Err(invalid("must be an https URI"));
    }
    if url.fragment().is_some() || url.query().is_some() {
        return Err(invalid("must have no query and no fragment"));
    }
    if url.as_str() != identifier || identifier.len() > 255 {
        return Err(invalid(&format!(
            "give it in its normal form ({url}), at most 255 characters"
        )));
    }
    if identifier.starts_with(ctx.metadata.issuer.trim_end_matches('/')) {
        return Err(invalid(
            "TechPass's own addresses are not a tenant's to register",
        ));
    }
    Ok(())
}

/// Registers a resource of an active tenant. An identifier another tenant registered is a
/// conflict.
pub async fn create(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    spec: NewResource,
) -> Result<ApiResourceRecord> {
    let tenant = active_tenant(ctx, actor, tenant_id).await?;
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(TenancyError::Invalid(
            "the resource needs a name (at most 100 characters)".into(),
        ));
    }
    let identifier = spec.identifier.trim();
    valid_identifier(ctx, identifier)?;
    let scopes = valid_scopes(&spec.scopes)?;
    let record = ApiResourceRecord {
        id: new_id(ctx, "res"),
        tenant_id: tenant.id.clone(),
        identifier: identifier.to_string(),
        name: name.to_string(),
        scopes: json(&scopes),
        created_at: ctx.clock.now().as_secs(),
        created_by: actor.audit_name(),
    };
    ctx.store
        .insert_resource(&record)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                TenancyError::Conflict(format!("{identifier} is already registered"))
            }
            other => other.into(),
        })?;
    audit(
        ctx,
        actor,
        "resource.created",
        Some(&tenant.id),
        Some(&record.id),
        serde_json::json!({ "identifier": record.identifier, "scopes": scopes }),
    )
    .await;
    Ok(record)
}

/// The tenant's resources.
pub async fn list(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<ApiResourceRecord>> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    Ok(ctx.store.resources_of_tenant(&tenant.id).await?)
}

async fn resource_of(
    ctx: &ServiceContext,
    tenant_id: &str,
    resource_id: &str,
) -> Result<ApiResourceRecord> {
    ctx.store
        .get_resource(resource_id)
        .await?
        .filter(|r| r.tenant_id == tenant_id)
        .ok_or(TenancyError::NotFound("resource"))
}

/// Deletes a resource and every grant on it: no new token names it from then on.
pub async fn delete(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    resource_id: &str,
) -> Result<()> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    let resource = resource_of(ctx, &tenant.id, resource_id).await?;
    if !ctx.store.delete_resource(&resource.id).await? {
        return Err(TenancyError::NotFound("resource"));
    }
    audit(
        ctx,
        actor,
        "resource.deleted",
        Some(&tenant.id),
        Some(&resource.id),
        serde_json::json!({ "identifier": resource.identifier }),
    )
    .await;
    Ok(())
}

/// Lets one of the tenant's apps request `scopes` of the resource (replacing what it had);
/// every scope must be one the resource defines. A decision for people: an automation app
/// cannot grant (itself) scopes.
pub async fn grant(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    resource_id: &str,
    client_id: &str,
    scopes: Vec<String>,
) -> Result<ResourceGrantRecord> {
    let tenant = active_tenant(ctx, actor, tenant_id).await?;
    if matches!(actor, Actor::App { .. }) {
        return Err(TenancyError::Forbidden(
            "only a tenant admin grants an app scopes of a resource",
        ));
    }
    let resource = resource_of(ctx, &tenant.id, resource_id).await?;
    ctx.store
        .get_client(client_id)
        .await?
        .filter(|c| c.tenant_id.as_deref() == Some(tenant.id.as_str()))
        .ok_or(TenancyError::NotFound("app"))?;
    let defined = scope_list(&resource.scopes);
    let mut granted: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.trim().to_string();
        if !defined.contains(&s) {
            return Err(TenancyError::Invalid(format!(
                "the resource defines no scope {s:?}"
            )));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    let record = ResourceGrantRecord {
        resource_id: resource.id.clone(),
        client_id: client_id.to_string(),
        scopes: json(&granted),
        granted_at: ctx.clock.now().as_secs(),
        granted_by: actor.audit_name(),
    };
    ctx.store.set_resource_grant(&record).await?;
    audit(
        ctx,
        actor,
        "resource.granted",
        Some(&tenant.id),
        Some(client_id),
        serde_json::json!({ "resource": resource.identifier, "scopes": granted }),
    )
    .await;
    Ok(record)
}

/// Withdraws an app's grant on the resource: its next token request for it is
/// `invalid_target`.
pub async fn revoke(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    resource_id: &str,
    client_id: &str,
) -> Result<()> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    let resource = resource_of(ctx, &tenant.id, resource_id).await?;
    if !ctx
        .store
        .delete_resource_grant(&resource.id, client_id)
        .await?
    {
        return Err(TenancyError::NotFound("grant"));
    }
    audit(
        ctx,
        actor,
        "resource.revoked",
        Some(&tenant.id),
        Some(client_id),
        serde_json::json!({ "resource": resource.identifier }),
    )
    .await;
    Ok(())
}

/// The grants on a resource.
pub async fn grants(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    resource_id: &str,
) -> Result<Vec<ResourceGrantRecord>> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    let resource = resource_of(ctx, &tenant.id, resource_id).await?;
    Ok(ctx.store.grants_of_resource(&resource.id).await?)
}

/// What a `client_credentials` request of `client` may get: the audience and the scopes of its
/// access token. Without `resource`, the app itself with no scope; TechPass's API for a
/// tenant's app, with no scope; a registered resource only if the app was granted it, with the
/// asked scopes (all granted ones when none are asked) if every one was granted. Anything else
/// is `invalid_target` (RFC 8707 §2) or `invalid_scope` (RFC 6749 §5.2).
pub async fn audience(
    ctx: &ServiceContext,
    client: &Client,
    resource: Option<&str>,
    asked: &[String],
) -> std::result::Result<(String, Vec<String>), OAuthError> {
    let no_scope = |what: &str| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            format!("{what} has no scopes; name a resource this app was granted"),
        )
    };
    let not_granted = || {
        OAuthError::new(
            ErrorCode::InvalidTarget,
            "the resource is not one this app may ask a token for",
        )
    };
    let Some(resource) = resource else {
        if !asked.is_empty() {
            return Err(no_scope("a token for the app itself"));
        }
        return Ok((client.id.clone(), Vec::new()));
    };
    if resource == api_audience(ctx) {
        if client.tenant_id.is_none() {
            return Err(not_granted());
        }
        if !asked.is_empty() {
            return Err(no_scope("the TechPass API"));
        }
        return Ok((resource.to_string(), Vec::new()));
    }
    let unavailable = |e: StoreError| {
        OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail(e.to_string())
    };
    let Some(record) = ctx
        .store
        .resource_by_identifier(resource)
        .await
        .map_err(unavailable)?
    else {
        return Err(not_granted());
    };
    if client.tenant_id.as_deref() != Some(record.tenant_id.as_str()) {
        return Err(not_granted());
    }
    let Some(grant) = ctx
        .store
        .resource_grant(&record.id, &client.id)
        .await
        .map_err(unavailable)?
    else {
        return Err(not_granted());
    };
    let granted = scope_list(&grant.scopes);
    if asked.is_empty() {
        return Ok((record.identifier, granted));
    }
    if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope {extra} of this resource was not granted to this app"),
        ));
    }
    Ok((record.identifier, asked.to_vec()))
}

/// Splits a `scope` parameter into scope tokens (RFC 6749 §3.3), dropping repeats; a value that
/// is not a scope token is `invalid_scope`.
pub fn scope_tokens(text: &str) -> std::result::Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in text.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the scope parameter is malformed",
            ));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("registry:read"));
        assert!(is_scope_token("a!#[]~"));
        for bad in ["", "a b", "a\"b", "a\\b", "é", &"x".repeat(65)] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
        assert_eq!(scope_tokens(" a  b a ").unwrap(), vec!["a", "b"]);
        assert_eq!(
            scope_tokens("a \u{7f}").unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn a_resource_defines_its_own_scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            valid_scopes(&s(&["read", " read", "write"])).unwrap(),
            s(&["read", "write"])
        );
        assert!(valid_scopes(&s(&["openid"])).is_err());
        assert!(valid_scopes(&s(&["a b"])).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        assert!(valid_scopes(&many).is_err());
    }
}
