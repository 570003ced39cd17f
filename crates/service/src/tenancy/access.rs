//! Who may use a tenant's apps: users and groups assigned to an app, the tenant's groups
//! (`<tenant>:<group>` in tokens), app roles assigned to users or groups, and access reviews
//! (who has access, with their last sign-in; remove in bulk).

use serde::{Deserialize, Serialize};
use techpass_domain::account::AccountType;
use techpass_domain::tenancy::{qualified_group, validate_group_name};
use techpass_store::{
    AssignmentRecord, GroupRecord, RoleAssignmentRecord, StoreError, PRINCIPAL_GROUP,
    PRINCIPAL_USER,
};

use super::{admin_tenant, apps, audit, new_id, Actor, Result, TenancyError};
use crate::ServiceContext;

/// A user or a group, as the API names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Principal {
    /// A user id or an email address.
    User(String),
    /// A group id of the tenant.
    Group(String),
}

/// Whether the tenant's admins may see `user` and give them access: an officer, or a vendor
/// who is a member of the tenant (invited by it). Vendors reach only the tenants that invited
/// them, so nobody else's name, status or sign-ins is the tenant's business.
async fn visible_to_tenant(
    state: &ServiceContext,
    tenant_id: &str,
    user: &techpass_store::UserRecord,
) -> Result<bool> {
    if user.account_type == AccountType::PublicOfficer.as_str() {
        return Ok(true);
    }
    Ok(state.store.membership(tenant_id, &user.id).await?.is_some())
}

/// The email (or else the name) of each of `ids` the tenant may see, for the tenant's pages;
/// anyone else (a vendor of another tenant assigned before the rule, an unknown id) keeps their
/// id.
pub async fn labels(
    state: &ServiceContext,
    tenant_id: &str,
    ids: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut names = std::collections::BTreeMap::new();
    for id in ids {
        if names.contains_key(id) {
            continue;
        }
        let label = match state.store.get_user(id).await? {
            Some(u) if visible_to_tenant(state, tenant_id, &u).await? => u.email.or(u.name),
            _ => None,
        };
        names.insert(id.clone(), label.unwrap_or_else(|| id.clone()));
    }
    Ok(names)
}

/// What a principal is resolved for: giving access (only people the tenant may see) or taking
/// it away (also a person outside the tenant named by the id an earlier assignment holds).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Give,
    TakeAway,
}

/// Resolves a principal to its stored (type, id), checking that a group is the tenant's and a
/// user exists and is one the tenant may see; a person the tenant may not see is answered
/// exactly as an unknown one, so lookups by email reveal nobody outside the tenant.
async fn resolve(
    state: &ServiceContext,
    tenant_id: &str,
    p: &Principal,
    purpose: Purpose,
) -> Result<(&'static str, String)> {
    match p {
        Principal::User(who) => {
            let user = super::find_user(state, who).await?;
            let removing_by_id = purpose == Purpose::TakeAway && *who == user.id;
            if !removing_by_id && !visible_to_tenant(state, tenant_id, &user).await? {
                return Err(TenancyError::NotFound("user"));
            }
            Ok((PRINCIPAL_USER, user.id))
        }
        Principal::Group(id) => {
            let group = state
                .store
                .get_group(id)
                .await?
                .filter(|g| g.tenant_id == tenant_id)
                .ok_or(TenancyError::NotFound("group"))?;
            Ok((PRINCIPAL_GROUP, group.id))
        }
    }
}

pub async fn assign(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    principal: &Principal,
) -> Result<()> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let (kind, id) = resolve(state, tenant_id, principal, Purpose::Give).await?;
    let added = state
        .store
        .assign(&AssignmentRecord {
            client_id: app.client_id.clone(),
            principal_type: kind.into(),
            principal_id: id.clone(),
            assigned_at: state.clock.now().as_secs(),
            assigned_by: actor.audit_name(),
        })
        .await?;
    if !added {
        return Err(TenancyError::Conflict(
            "already assigned to this app".into(),
        ));
    }
    audit(
        state,
        actor,
        "access.assigned",
        Some(tenant_id),
        Some(&id),
        serde_json::json!({ "client_id": app.client_id, "principal_type": kind }),
    )
    .await;
    Ok(())
}

pub async fn unassign(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    principal: &Principal,
) -> Result<()> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let (kind, id) = resolve(state, tenant_id, principal, Purpose::TakeAway).await?;
    if !state.store.unassign(&app.client_id, kind, &id).await? {
        return Err(TenancyError::NotFound("assignment"));
    }
    audit(
        state,
        actor,
        "access.removed",
        Some(tenant_id),
        Some(&id),
        serde_json::json!({ "client_id": app.client_id, "principal_type": kind }),
    )
    .await;
    Ok(())
}

pub async fn assignments(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<AssignmentRecord>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    Ok(state.store.assignments_of_app(&app.client_id).await?)
}

pub async fn create_group(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    name: &str,
) -> Result<GroupRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let name = name.trim();
    validate_group_name(name).map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let group = GroupRecord {
        id: new_id(state, "grp"),
        tenant_id: tenant.id.clone(),
        name: name.to_string(),
        created_at: state.clock.now().as_secs(),
    };
    match state.store.insert_group(&group).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(TenancyError::Conflict(format!(
                "the tenant already has a group {name}"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state,
        actor,
        "group.created",
        Some(&tenant.id),
        Some(&group.id),
        serde_json::json!({ "name": qualified_group(&tenant.slug, name) }),
    )
    .await;
    Ok(group)
}

pub async fn groups(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<GroupRecord>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    Ok(state.store.groups_of_tenant(&tenant.id).await?)
}

async fn tenant_group(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    group_id: &str,
) -> Result<GroupRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    state
        .store
        .get_group(group_id)
        .await?
        .filter(|g| g.tenant_id == tenant.id)
        .ok_or(TenancyError::NotFound("group"))
}

pub async fn delete_group(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    group_id: &str,
) -> Result<()> {
    let group = tenant_group(state, actor, tenant_id, group_id).await?;
    if !state.store.delete_group(&group.id).await? {
        return Err(TenancyError::NotFound("group"));
    }
    audit(
        state,
        actor,
        "group.deleted",
        Some(tenant_id),
        Some(&group.id),
        serde_json::json!({ "name": group.name }),
    )
    .await;
    Ok(())
}

pub async fn set_membership(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    group_id: &str,
    user: &str,
    member: bool,
) -> Result<()> {
    let group = tenant_group(state, actor, tenant_id, group_id).await?;
    let purpose = if member {
        Purpose::Give
    } else {
        Purpose::TakeAway
    };
    let (_, user_id) = resolve(
        state,
        tenant_id,
        &Principal::User(user.to_string()),
        purpose,
    )
    .await?;
    let changed = if member {
        state.store.add_group_member(&group.id, &user_id).await?
    } else {
        state.store.remove_group_member(&group.id, &user_id).await?
    };
    if !changed {
        return Err(TenancyError::Conflict(if member {
            "already a member".into()
        } else {
            "not a member".into()
        }));
    }
    audit(
        state,
        actor,
        if member {
            "group.member_added"
        } else {
            "group.member_removed"
        },
        Some(tenant_id),
        Some(&user_id),
        serde_json::json!({ "group_id": group.id }),
    )
    .await;
    Ok(())
}

pub async fn group_members(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    group_id: &str,
) -> Result<Vec<String>> {
    let group = tenant_group(state, actor, tenant_id, group_id).await?;
    Ok(state.store.group_members(&group.id).await?)
}

fn validate_role(role: &str) -> Result<()> {
    let ok = (1..=64).contains(&role.len())
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(TenancyError::Invalid(
            "a role name is 1 to 64 characters of letters, digits, '-', '_', '.' or ':'".into(),
        ))
    }
}

pub async fn define_role(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    role: &str,
) -> Result<()> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    validate_role(role)?;
    if !state.store.define_role(&app.client_id, role).await? {
        return Err(TenancyError::Conflict(
            "the app already has that role".into(),
        ));
    }
    audit(
        state,
        actor,
        "role.defined",
        Some(tenant_id),
        Some(&app.client_id),
        serde_json::json!({ "role": role }),
    )
    .await;
    Ok(())
}

pub async fn roles(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<String>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    Ok(state.store.roles_of_app(&app.client_id).await?)
}

/// Who holds each of the app's roles (users and groups, directly).
pub async fn role_grants(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<RoleAssignmentRecord>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    Ok(state.store.role_assignments_of_app(&app.client_id).await?)
}

pub async fn grant_role(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    role: &str,
    principal: &Principal,
    granted: bool,
) -> Result<()> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let purpose = if granted {
        Purpose::Give
    } else {
        Purpose::TakeAway
    };
    let (kind, id) = resolve(state, tenant_id, principal, purpose).await?;
    let assignment = RoleAssignmentRecord {
        client_id: app.client_id.clone(),
        role: role.to_string(),
        principal_type: kind.into(),
        principal_id: id.clone(),
    };
    let changed = if granted {
        match state.store.assign_role(&assignment).await {
            Err(StoreError::NotFound) => return Err(TenancyError::NotFound("role")),
            other => other?,
        }
    } else {
        state.store.unassign_role(&assignment).await?
    };
    if !changed {
        return Err(TenancyError::Conflict(if granted {
            "already has that role".into()
        } else {
            "does not have that role".into()
        }));
    }
    audit(
        state,
        actor,
        if granted {
            "role.granted"
        } else {
            "role.revoked"
        },
        Some(tenant_id),
        Some(&id),
        serde_json::json!({ "client_id": app.client_id, "role": role, "principal_type": kind }),
    )
    .await;
    Ok(())
}

/// One line of an access review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewEntry {
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: String,
    pub account_type: String,
    /// The later of the last upstream sign-in and the last sign-in to an app.
    pub last_signin_at: i64,
    pub direct: bool,
    pub via_groups: Vec<String>,
}

/// The record of an access review's completion: when, by whom, and how many people had access.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewCompletion {
    pub at: i64,
    /// The reviewer's email (or how the audit log names them).
    pub by: String,
    pub people_with_access: usize,
}

pub const REVIEW_COMPLETED: &str = "access_review.completed";

/// A tenant admin records that they reviewed who can sign in to the app: audited as
/// `access_review.completed` with the app, the tenant, the reviewer and everyone who had access
/// at that moment. The audit event is the record, so a failure to write it is an error.
pub async fn complete_review(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<ReviewCompletion> {
    let entries = review(state, actor, tenant_id, client_id).await?;
    let now = state.clock.now().as_secs();
    let people: Vec<String> = entries
        .iter()
        .map(|e| e.email.clone().unwrap_or_else(|| e.user_id.clone()))
        .collect();
    crate::audit::record_event(
        state,
        &techpass_store::AuditRecord {
            at: now,
            event: REVIEW_COMPLETED.into(),
            outcome: "success".into(),
            actor: Some(actor.audit_name()),
            subject: Some(client_id.to_string()),
            tenant: Some(tenant_id.to_string()),
            details: serde_json::json!({
                "people_with_access": people.len(),
                "people": people,
            })
            .to_string(),
            ..Default::default()
        },
    )
    .await?;
    Ok(ReviewCompletion {
        at: now,
        by: reviewer(state, &actor.audit_name()).await,
        people_with_access: entries.len(),
    })
}

/// How a reviewer reads on the page: their email when the audit log names a person.
async fn reviewer(state: &ServiceContext, audit_name: &str) -> String {
    match state.store.get_user(audit_name).await {
        Ok(Some(user)) => user.email.unwrap_or(user.id),
        _ => audit_name.to_string(),
    }
}

/// The app's last completed access review, if any.
pub async fn last_review(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Option<ReviewCompletion>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let last = state
        .store
        .list_audit(&techpass_store::AuditFilter {
            subject: Some(app.client_id.clone()),
            tenant: Some(tenant_id.to_string()),
            event: Some(REVIEW_COMPLETED.into()),
            limit: 1,
            ..Default::default()
        })
        .await?;
    let Some(event) = last.into_iter().next() else {
        return Ok(None);
    };
    let details: serde_json::Value = serde_json::from_str(&event.details).unwrap_or_default();
    Ok(Some(ReviewCompletion {
        at: event.at,
        by: reviewer(state, event.actor.as_deref().unwrap_or("")).await,
        people_with_access: details["people_with_access"].as_u64().unwrap_or(0) as usize,
    }))
}

pub async fn review(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<ReviewEntry>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    // Only people the tenant may see: a vendor of another tenant assigned before the rule
    // existed is left out (the gate refuses them anyway; the assignment list still shows the
    // id, to remove it).
    let members: std::collections::HashSet<String> = state
        .store
        .members_of_tenant(tenant_id)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    Ok(state
        .store
        .access_holders(&app.client_id)
        .await?
        .into_iter()
        .filter(|h| {
            h.user.account_type == AccountType::PublicOfficer.as_str()
                || members.contains(&h.user.id)
        })
        .map(|h| ReviewEntry {
            last_signin_at: h
                .user
                .app_signin_at
                .map_or(h.user.last_signin_at, |a| a.max(h.user.last_signin_at)),
            user_id: h.user.id,
            email: h.user.email,
            name: h.user.name,
            status: h.user.status.as_str().to_string(),
            account_type: h.user.account_type,
            direct: h.direct,
            via_groups: h.via_groups,
        })
        .collect())
}

/// The most people one bulk removal names.
pub const MAX_BULK: usize = 500;

/// Removes the direct access of each listed user (group access is changed on the group).
/// Returns how many assignments were removed.
pub async fn remove_in_bulk(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    user_ids: &[String],
) -> Result<usize> {
    if user_ids.len() > MAX_BULK {
        return Err(TenancyError::Invalid(format!(
            "at most {MAX_BULK} people at a time"
        )));
    }
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let mut removed = 0;
    for user_id in user_ids {
        if state
            .store
            .unassign(&app.client_id, PRINCIPAL_USER, user_id)
            .await?
        {
            removed += 1;
        }
    }
    audit(
        state,
        actor,
        "access.review_removed",
        Some(tenant_id),
        Some(&app.client_id),
        serde_json::json!({ "users": user_ids, "removed": removed }),
    )
    .await;
    Ok(removed)
}
