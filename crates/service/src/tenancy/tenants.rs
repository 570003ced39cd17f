//! Tenant onboarding and administration: a registered officer requests a tenant; a platform
//! admin approves (the requester becomes its first admin) or rejects it with a reason, or
//! registers one directly with its first admin named by email, and may suspend and reinstate it; tenant admins add and remove co-admins (never the last one).

use serde::{Deserialize, Serialize};
use techpass_domain::account::{classify, AccountType};
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{slug_from_name, validate_slug, TenantAction, TenantStatus};
use techpass_store::{StoreError, TenantAdminRecord, TenantRecord, UserRecord};

use super::{admin_tenant, audit, new_id, require_platform_admin, Actor, Result, TenancyError};
use crate::mail::{notify, Email};
use crate::ServiceContext;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewTenant {
    /// Short name, `[a-z][a-z0-9-]`, 2–40 characters; prefixes the tenant's group names.
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Why the service should be onboarded.
    pub purpose: String,
}

/// A user who may act as an officer of the toolchain: registered, public officer.
fn registered_officer(user: &UserRecord) -> bool {
    user.status == UserStatus::Registered
        && user.account_type == AccountType::PublicOfficer.as_str()
}

fn checked_slug(slug: &str) -> Result<String> {
    let slug = slug.trim().to_string();
    validate_slug(&slug).map_err(|e| TenancyError::Invalid(format!("slug {e}")))?;
    Ok(slug)
}

/// A trimmed text field of at most `max` characters (and not empty when `required`).
fn field(name: &str, value: &str, max: usize, required: bool) -> Result<String> {
    let v = value.trim();
    if (required && v.is_empty()) || v.chars().count() > max {
        let what = if required { "is required" } else { "is" };
        Err(TenancyError::Invalid(format!(
            "{name} {what} at most {max} characters"
        )))
    } else {
        Ok(v.to_string())
    }
}

async fn insert(state: &ServiceContext, tenant: &TenantRecord) -> Result<()> {
    match state.store.insert_tenant(tenant).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(TenancyError::Conflict(format!(
            "the slug {} is taken; choose another",
            tenant.slug
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A registered officer asks for a tenant; it waits in the platform admins' onboarding queue.
pub async fn request(
    state: &ServiceContext,
    actor: &Actor,
    new: NewTenant,
) -> Result<TenantRecord> {
    let Some(user_id) = actor.user_id() else {
        return Err(TenancyError::Forbidden(
            "only a signed-in officer can request a tenant",
        ));
    };
    let user = state
        .store
        .get_user(user_id)
        .await?
        .ok_or(TenancyError::NotFound("user"))?;
    if !registered_officer(&user) {
        return Err(TenancyError::Forbidden(
            "only registered public officers can request a tenant",
        ));
    }
    let slug = checked_slug(&new.slug)?;
    let tenant = TenantRecord {
        id: new_id(state, "tnt"),
        slug,
        name: field("name", &new.name, 100, true)?,
        description: field("description", &new.description, 2000, true)?,
        purpose: field("purpose", &new.purpose, 2000, true)?,
        status: TenantStatus::Requested,
        requested_by: user.id.clone(),
        created_at: state.clock.now().as_secs(),
        status_at: None,
        status_by: None,
        status_reason: None,
    };
    insert(state, &tenant).await?;
    audit(
        state,
        actor,
        "tenant.requested",
        Some(&tenant.id),
        None,
        serde_json::json!({ "slug": tenant.slug, "name": tenant.name }),
    )
    .await;
    Ok(tenant)
}

/// A platform admin's decision: approve, reject (with a reason), suspend (with a reason) or
/// reinstate. The requester (approve, reject) or the tenant's admins (suspend, reinstate) are
/// told by email.
pub async fn decide(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    action: TenantAction,
    reason: Option<&str>,
) -> Result<TenantRecord> {
    require_platform_admin(actor)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if action.needs_reason() && reason.is_none() {
        return Err(TenancyError::Invalid(
            "a reason is required (the tenant's people are told it)".into(),
        ));
    }
    let tenant = state
        .store
        .get_tenant(tenant_id)
        .await?
        .ok_or(TenancyError::NotFound("tenant"))?;
    let (from, to) = action.transition();
    let first_admin = (action == TenantAction::Approve).then_some(tenant.requested_by.as_str());
    let moved = state
        .store
        .transition_tenant(
            &tenant.id,
            &[from],
            to,
            &actor.audit_name(),
            reason,
            state.clock.now().as_secs(),
            first_admin,
        )
        .await?;
    if !moved {
        return Err(TenancyError::Conflict(format!(
            "the tenant is {}, not {}",
            tenant.status.as_str(),
            from.as_str()
        )));
    }
    let event = match action {
        TenantAction::Approve => "tenant.approved",
        TenantAction::Reject => "tenant.rejected",
        TenantAction::Suspend => "tenant.suspended",
        TenantAction::Reinstate => "tenant.reinstated",
    };
    audit(
        state,
        actor,
        event,
        Some(&tenant.id),
        None,
        serde_json::json!({ "reason": reason }),
    )
    .await;
    let portal = state
        .issuer
        .join("/portal")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let because = reason
        .map(|r| format!("\n\nReason: {r}"))
        .unwrap_or_default();
    let (subject, text) = match action {
        TenantAction::Approve => (
            format!("Your tenant {} is approved", tenant.name),
            format!("Your request to onboard {} to TechPass was approved. You are its first tenant admin: create its apps and invite its people at {portal}.", tenant.name),
        ),
        TenantAction::Reject => (
            format!("Your tenant request {} was not approved", tenant.name),
            format!("Your request to onboard {} to TechPass was rejected.{because}", tenant.name),
        ),
        TenantAction::Suspend => (
            format!("Tenant {} is suspended", tenant.name),
            format!("TechPass suspended the tenant {}: its apps cannot sign anyone in until it is reinstated.{because}", tenant.name),
        ),
        TenantAction::Reinstate => (
            format!("Tenant {} is reinstated", tenant.name),
            format!("TechPass reinstated the tenant {}: its apps sign people in again.", tenant.name),
        ),
    };
    let recipients: Vec<String> = match action {
        TenantAction::Approve | TenantAction::Reject => vec![tenant.requested_by.clone()],
        _ => state
            .store
            .tenant_admins(&tenant.id)
            .await?
            .into_iter()
            .map(|a| a.user_id)
            .collect(),
    };
    for user_id in recipients {
        if let Some(email) = state.store.get_user(&user_id).await?.and_then(|u| u.email) {
            notify(
                state,
                Email {
                    to: email,
                    subject: subject.clone(),
                    body: text.clone(),
                    kind: event,
                },
            )
            .await;
        }
    }
    state
        .store
        .get_tenant(&tenant.id)
        .await?
        .ok_or(TenancyError::NotFound("tenant"))
}

/// A tenant a platform admin registers directly, active at once, with its first admin.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DirectTenant {
    /// Short name, `[a-z][a-z0-9-]`, 2–40 characters; proposed from the name when absent.
    #[serde(default)]
    pub slug: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub purpose: String,
    /// The first tenant admin: a public officer's email address (or a registered officer's
    /// user id). Someone who has not signed in yet becomes admin at their first sign-in.
    pub admin: String,
}

/// Who the first admin of a directly registered tenant is.
// Returned once per registration and never stored in bulk: the size difference is harmless.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum FirstAdmin {
    /// A registered officer, admin from now.
    Now(UserRecord),
    /// An address that becomes admin at its next sign-in (its first, for someone new).
    Pending(techpass_store::PendingGrantRecord),
}

/// The first admin named for a direct registration: a registered officer now; an officer's
/// address with no account (or an officer who signed in but has not registered yet) at their
/// next sign-in; anything else is refused.
async fn first_admin(
    state: &ServiceContext,
    who: &str,
) -> Result<std::result::Result<UserRecord, String>> {
    match super::find_user(state, who).await {
        Ok(user) if registered_officer(&user) => Ok(Ok(user)),
        Ok(user) => {
            let unregistered_officer = user.status == UserStatus::Unregistered
                && user.account_type == AccountType::PublicOfficer.as_str();
            match user.email {
                Some(email) if unregistered_officer => Ok(Err(email)),
                _ => Err(TenancyError::Invalid(format!(
                    "{who} cannot administer a tenant: a tenant admin must be a registered \
                     public officer (this account is {} and {})",
                    user.account_type,
                    user.status.as_str()
                ))),
            }
        }
        Err(TenancyError::NotFound(_)) => {
            let email = super::pending::email_or_refuse(who)?;
            Ok(Err(email))
        }
        Err(e) => Err(e),
    }
}

/// A platform admin registers a tenant directly (no request and approval): it is active at
/// once, audited as an approval, and its first admin is told by email. The admin may be named
/// by the email of someone who has not signed in yet.
pub async fn create(
    state: &ServiceContext,
    actor: &Actor,
    new: DirectTenant,
) -> Result<(TenantRecord, FirstAdmin)> {
    require_platform_admin(actor)?;
    let name = field("name", &new.name, 100, true)?;
    let slug = match new.slug.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) => checked_slug(slug)?,
        None => slug_from_name(&name).ok_or_else(|| {
            TenancyError::Invalid(format!(
                "no slug can be made from the name {name:?}; give one (2 to 40 lowercase \
                 letters, digits and '-', starting with a letter)"
            ))
        })?,
    };
    let description = field("description", &new.description, 2000, false)?;
    let purpose = field("purpose", &new.purpose, 2000, false)?;
    let admin = first_admin(state, new.admin.trim()).await?;
    if let Err(email) = &admin {
        // Refuse a vendor's address before anything is written.
        if classify(email, &state.classification) != AccountType::PublicOfficer {
            return Err(TenancyError::Invalid(format!(
                "{email} is not a public officer's address; a tenant admin must be a public officer"
            )));
        }
    }
    let now = state.clock.now().as_secs();
    let tenant = TenantRecord {
        id: new_id(state, "tnt"),
        slug,
        name,
        description,
        purpose,
        status: TenantStatus::Active,
        requested_by: actor.audit_name(),
        created_at: now,
        status_at: Some(now),
        status_by: Some(actor.audit_name()),
        status_reason: None,
    };
    insert(state, &tenant).await?;
    let (first, email) = match admin {
        Ok(user) => {
            state
                .store
                .add_tenant_admin(&TenantAdminRecord {
                    tenant_id: tenant.id.clone(),
                    user_id: user.id.clone(),
                    added_at: now,
                    added_by: actor.audit_name(),
                })
                .await?;
            let email = user.email.clone();
            (FirstAdmin::Now(user), email)
        }
        Err(email) => {
            let grant =
                super::pending::grant_tenant_admin(state, actor, &tenant.id, &email).await?;
            (FirstAdmin::Pending(grant), Some(email))
        }
    };
    let (admin_id, pending) = match &first {
        FirstAdmin::Now(user) => (Some(user.id.as_str()), false),
        FirstAdmin::Pending(_) => (None, true),
    };
    audit(
        state,
        actor,
        "tenant.approved",
        Some(&tenant.id),
        admin_id,
        serde_json::json!({
            "direct": true,
            "slug": tenant.slug,
            "name": tenant.name,
            "admin": email,
            "admin_pending": pending,
        }),
    )
    .await;
    if let Some(to) = email {
        let portal = state
            .issuer
            .join("/portal")
            .map(|u| u.to_string())
            .unwrap_or_default();
        notify(
            state,
            Email {
                to,
                subject: format!("You administer {} on TechPass", tenant.name),
                body: format!(
                    "TechPass registered the service {} as a tenant and made you its first tenant admin. Sign in at {portal} to create its apps and invite its people.",
                    tenant.name
                ),
                kind: "tenant.approved",
            },
        )
        .await;
    }
    Ok((tenant, first))
}

/// The tenants the actor can see: all (platform admins), or those they administer.
pub async fn list(
    state: &ServiceContext,
    actor: &Actor,
    status: Option<TenantStatus>,
    limit: i64,
    offset: i64,
) -> Result<Vec<TenantRecord>> {
    let page = |tenants: Vec<TenantRecord>| -> Vec<TenantRecord> {
        tenants
            .into_iter()
            .filter(|t| status.is_none_or(|s| t.status == s))
            .skip(offset.max(0) as usize)
            .take(limit.max(0) as usize)
            .collect()
    };
    match actor {
        a if a.is_platform_admin() => Ok(state.store.list_tenants(status, limit, offset).await?),
        Actor::User { id, .. } => {
            // The tenants they administer, and the requests they made (pending or rejected).
            let mut tenants = state.store.tenants_of_admin(id).await?;
            for t in state.store.tenants_requested_by(id).await? {
                if !tenants.iter().any(|x| x.id == t.id) {
                    tenants.push(t);
                }
            }
            tenants.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(page(tenants))
        }
        Actor::App { tenant_id, .. } => Ok(page(
            state
                .store
                .get_tenant(tenant_id)
                .await?
                .into_iter()
                .collect(),
        )),
        _ => Ok(Vec::new()),
    }
}

/// A tenant, for its admins, platform admins, its automation app, and the officer who asked
/// for it (who follows the request before it is approved).
pub async fn get(state: &ServiceContext, actor: &Actor, tenant_id: &str) -> Result<TenantRecord> {
    match admin_tenant(state, actor, tenant_id).await {
        Err(TenancyError::Forbidden(why)) => {
            let tenant = state
                .store
                .get_tenant(tenant_id)
                .await?
                .ok_or(TenancyError::NotFound("tenant"))?;
            if actor.user_id() == Some(tenant.requested_by.as_str()) {
                Ok(tenant)
            } else {
                Err(TenancyError::Forbidden(why))
            }
        }
        other => other,
    }
}

/// Who administers a tenant is a decision for people: an automation app may not change it.
fn people_only(actor: &Actor) -> Result<()> {
    if matches!(actor, Actor::App { .. }) {
        return Err(TenancyError::Forbidden(
            "an automation app cannot change who administers a tenant",
        ));
    }
    Ok(())
}

/// Makes a person who has signed in a platform admin (the first one from the command line;
/// before a first sign-in see [`super::pending::grant_platform_admin`]).
pub async fn grant_platform_admin(
    state: &ServiceContext,
    actor: &Actor,
    user: &UserRecord,
) -> Result<bool> {
    require_platform_admin(actor)?;
    let granted = state
        .store
        .grant_platform_admin(&user.id, &actor.audit_name(), state.clock.now().as_secs())
        .await?;
    if granted {
        audit(
            state,
            actor,
            "platform_admin.granted",
            None,
            Some(&user.id),
            serde_json::json!({ "email": user.email }),
        )
        .await;
    }
    Ok(granted)
}

/// A platform admin takes the role from another (audited as `platform_admin.revoked`). Nobody
/// changes their own role: a platform admin is made and unmade by another one (or the CLI
/// operator), so nobody grants it to themselves and the last one cannot lock everyone out.
pub async fn revoke_platform_admin(
    state: &ServiceContext,
    actor: &Actor,
    user: &UserRecord,
) -> Result<bool> {
    require_platform_admin(actor)?;
    not_oneself(actor, user)?;
    let revoked = state.store.revoke_platform_admin(&user.id).await?;
    if revoked {
        audit(
            state,
            actor,
            "platform_admin.revoked",
            None,
            Some(&user.id),
            serde_json::json!({ "email": user.email }),
        )
        .await;
    }
    Ok(revoked)
}

fn not_oneself(actor: &Actor, user: &UserRecord) -> Result<()> {
    match actor {
        Actor::User { id, .. } if *id == user.id => Err(TenancyError::Forbidden(
            "nobody changes their own platform admin role; ask another platform admin",
        )),
        _ => Ok(()),
    }
}

/// The platform admin role from the portal: as [`grant_platform_admin`], for a registered
/// public officer only, and never to oneself.
pub async fn grant_platform_admin_to_other(
    state: &ServiceContext,
    actor: &Actor,
    user: &UserRecord,
) -> Result<bool> {
    require_platform_admin(actor)?;
    not_oneself(actor, user)?;
    let live = matches!(user.status, UserStatus::Registered | UserStatus::Active);
    if user.account_type != techpass_domain::account::AccountType::PublicOfficer.as_str() || !live {
        return Err(TenancyError::Invalid(
            "only a registered public officer with a live account can be a platform admin".into(),
        ));
    }
    grant_platform_admin(state, actor, user).await
}

/// Tenant admins add a co-admin: a registered officer, named by email or user id.
pub async fn add_admin(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    who: &str,
) -> Result<UserRecord> {
    people_only(actor)?;
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let user = super::find_user(state, who).await?;
    if !registered_officer(&user) {
        return Err(TenancyError::Invalid(
            "a tenant admin must be a registered public officer".into(),
        ));
    }
    let added = state
        .store
        .add_tenant_admin(&TenantAdminRecord {
            tenant_id: tenant.id.clone(),
            user_id: user.id.clone(),
            added_at: state.clock.now().as_secs(),
            added_by: actor.audit_name(),
        })
        .await?;
    if !added {
        return Err(TenancyError::Conflict(
            "already an admin of this tenant".into(),
        ));
    }
    audit(
        state,
        actor,
        "tenant.admin_added",
        Some(&tenant.id),
        Some(&user.id),
        serde_json::json!({}),
    )
    .await;
    Ok(user)
}

pub async fn remove_admin(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    user_id: &str,
) -> Result<()> {
    people_only(actor)?;
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    match state.store.remove_tenant_admin(&tenant.id, user_id).await {
        Ok(true) => {}
        Ok(false) => return Err(TenancyError::NotFound("tenant admin")),
        Err(StoreError::Conflict(_)) => {
            return Err(TenancyError::Conflict(
                "the last admin of a tenant cannot be removed; add another admin first".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state,
        actor,
        "tenant.admin_removed",
        Some(&tenant.id),
        Some(user_id),
        serde_json::json!({}),
    )
    .await;
    Ok(())
}

pub async fn admins(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<TenantAdminRecord>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    Ok(state.store.tenant_admins(&tenant.id).await?)
}
