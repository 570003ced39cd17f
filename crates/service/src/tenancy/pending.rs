//! Grants to people named by email before they have signed in: access to a tenant's app (a
//! tenant admin's), a tenant's administration (a platform admin's, when it pre-registers a
//! tenant) and the platform's (an operator's, `techpass admin grant-platform-admin EMAIL`).
//!
//! A grant waits under the lowercased address and becomes the real one when someone whose
//! upstream email is that address signs in ([`resolve_at_signin`], called once by the sign-in
//! service right after the person's row is written). Until then it is listed and revocable.
//!
//! A tenant admin's grant never says whether the address already has an account: the answer,
//! the listing and the later resolution are the same either way (someone who already has an
//! account gets the access at their next sign-in; assign them directly for access at once).
//! It does not widen who a tenant reaches: an officer's address (in an officer domain) may be
//! named as an existing officer may be assigned; a vendor's only once the tenant has invited
//! it (the rule is [`techpass_domain::tenancy::check_email_grant`]).

use techpass_domain::account::{classify, AccountType};
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{check_email_grant, EmailGrant, InvitationStatus};
use techpass_store::{
    AuditRecord, PendingGrantRecord, UserRecord, GRANT_APP_ACCESS, GRANT_PLATFORM_ADMIN,
    GRANT_TENANT_ADMIN,
};

use super::{
    admin_tenant, apps, audit, new_id, normalise_email, require_platform_admin, Actor, Result,
    TenancyError,
};
use crate::ServiceContext;

/// The address as stored, or a clear refusal.
pub fn email_or_refuse(text: &str) -> Result<String> {
    normalise_email(text).ok_or_else(|| {
        TenancyError::Invalid(format!(
            "{:?} is not an email address",
            text.chars().take(100).collect::<String>()
        ))
    })
}

/// Whether the tenant invited the address: a pending invitation whose link still works, or an
/// accepted one.
async fn invited_by_tenant(state: &ServiceContext, tenant_id: &str, email: &str) -> Result<bool> {
    let now = state.clock.now().as_secs();
    Ok(state
        .store
        .invitations_to_email(tenant_id, email)
        .await?
        .iter()
        .any(|i| {
            i.status == InvitationStatus::Accepted
                || (i.status == InvitationStatus::Pending && i.expires_at > now)
        }))
}

/// The domain rule, with the address in the message.
async fn check(
    state: &ServiceContext,
    grant: EmailGrant,
    tenant_id: &str,
    email: &str,
) -> Result<AccountType> {
    let kind = classify(email, &state.classification);
    let invited = match (grant, kind) {
        (EmailGrant::AppAccess, AccountType::Vendor) => {
            invited_by_tenant(state, tenant_id, email).await?
        }
        _ => false,
    };
    check_email_grant(grant, kind, invited)
        .map_err(|e| TenancyError::Invalid(format!("{email} {e}")))?;
    Ok(kind)
}

/// A tenant admin grants access to one of the tenant's apps to the person with this email, from
/// their next sign-in (their first, for someone new). The same answer whether or not the
/// address has an account; `Conflict` if the same grant is already pending.
pub async fn grant_app_access(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    email: &str,
) -> Result<PendingGrantRecord> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    let email = email_or_refuse(email)?;
    check(state, EmailGrant::AppAccess, tenant_id, &email).await?;
    let grant = PendingGrantRecord {
        id: new_id(state, "pg"),
        email,
        kind: GRANT_APP_ACCESS.into(),
        tenant_id: Some(tenant_id.to_string()),
        client_id: Some(app.client_id.clone()),
        granted_by: actor.audit_name(),
        granted_at: state.clock.now().as_secs(),
    };
    if !state.store.insert_pending_grant(&grant).await? {
        return Err(TenancyError::Conflict(format!(
            "access to this app is already pending for {}",
            grant.email
        )));
    }
    audit(
        state,
        actor,
        "access.pending_granted",
        Some(tenant_id),
        Some(&grant.id),
        serde_json::json!({ "client_id": app.client_id, "email": grant.email }),
    )
    .await;
    Ok(grant)
}

/// Makes the person with this email an admin of the tenant when they sign in (a platform
/// admin's pre-registration of a tenant). The address must be a public officer's.
pub(crate) async fn grant_tenant_admin(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    email: &str,
) -> Result<PendingGrantRecord> {
    require_platform_admin(actor)?;
    let email = email_or_refuse(email)?;
    check(state, EmailGrant::TenantAdmin, tenant_id, &email).await?;
    let grant = PendingGrantRecord {
        id: new_id(state, "pg"),
        email,
        kind: GRANT_TENANT_ADMIN.into(),
        tenant_id: Some(tenant_id.to_string()),
        client_id: None,
        granted_by: actor.audit_name(),
        granted_at: state.clock.now().as_secs(),
    };
    if !state.store.insert_pending_grant(&grant).await? {
        return Err(TenancyError::Conflict(format!(
            "{} is already to become an admin of this tenant",
            grant.email
        )));
    }
    audit(
        state,
        actor,
        "tenant.admin_pending",
        Some(tenant_id),
        Some(&grant.id),
        serde_json::json!({ "email": grant.email }),
    )
    .await;
    Ok(grant)
}

/// Makes the person with this email a platform admin when they first sign in (an operator
/// naming the first platform admin before anyone has signed in). False if that is already
/// pending.
pub async fn grant_platform_admin(
    state: &ServiceContext,
    actor: &Actor,
    email: &str,
) -> Result<bool> {
    require_platform_admin(actor)?;
    let email = email_or_refuse(email)?;
    let grant = PendingGrantRecord {
        id: new_id(state, "pg"),
        email,
        kind: GRANT_PLATFORM_ADMIN.into(),
        tenant_id: None,
        client_id: None,
        granted_by: actor.audit_name(),
        granted_at: state.clock.now().as_secs(),
    };
    if !state.store.insert_pending_grant(&grant).await? {
        return Ok(false);
    }
    audit(
        state,
        actor,
        "platform_admin.pending",
        None,
        Some(&grant.id),
        serde_json::json!({ "email": grant.email }),
    )
    .await;
    Ok(true)
}

/// The tenant's pending grants (access to its apps, and its administration), oldest first.
pub async fn list(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Vec<PendingGrantRecord>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    Ok(state.store.pending_grants_of_tenant(&tenant.id).await?)
}

/// The pending grants of one of the tenant's apps, oldest first.
pub async fn of_app(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<PendingGrantRecord>> {
    let app = apps::get(state, actor, tenant_id, client_id).await?;
    Ok(state
        .store
        .pending_grants_of_tenant(tenant_id)
        .await?
        .into_iter()
        .filter(|g| g.client_id.as_deref() == Some(app.client_id.as_str()))
        .collect())
}

/// Revokes one of the tenant's pending grants. Who administers a tenant is for people to
/// decide: an automation app cannot revoke a pending admin.
pub async fn revoke(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    grant_id: &str,
) -> Result<PendingGrantRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let grant = state
        .store
        .get_pending_grant(grant_id)
        .await?
        .filter(|g| g.tenant_id.as_deref() == Some(tenant.id.as_str()))
        .ok_or(TenancyError::NotFound("pending grant"))?;
    if grant.kind == GRANT_TENANT_ADMIN && matches!(actor, Actor::App { .. }) {
        return Err(TenancyError::Forbidden(
            "an automation app cannot change who administers a tenant",
        ));
    }
    if !state.store.delete_pending_grant(&grant.id).await? {
        return Err(TenancyError::NotFound("pending grant"));
    }
    audit(
        state,
        actor,
        "pending_grant.revoked",
        Some(&tenant.id),
        Some(&grant.id),
        serde_json::json!({ "kind": grant.kind, "email": grant.email, "client_id": grant.client_id }),
    )
    .await;
    Ok(grant)
}

/// Revokes a pending platform-admin grant (operators). False if none was pending.
pub async fn revoke_platform_admin(
    state: &ServiceContext,
    actor: &Actor,
    email: &str,
) -> Result<bool> {
    require_platform_admin(actor)?;
    let email = email_or_refuse(email)?;
    let mut revoked = false;
    for grant in state.store.pending_grants_for_email(&email).await? {
        if grant.kind == GRANT_PLATFORM_ADMIN && state.store.delete_pending_grant(&grant.id).await?
        {
            revoked = true;
            audit(
                state,
                actor,
                "pending_grant.revoked",
                None,
                Some(&grant.id),
                serde_json::json!({ "kind": grant.kind, "email": grant.email }),
            )
            .await;
        }
    }
    Ok(revoked)
}

/// Turns the pending grants to the person's email into real ones, right after a sign-in wrote
/// their row. Never fails the sign-in: a failure is logged and the grants stay pending for the
/// next one. A suspended, disabled, expired or terminated account redeems nothing, and each
/// grant is checked again against the domain rule (a vendor's app access needs the tenant's
/// invitation still to stand). Returns how many grants were redeemed.
pub async fn resolve_at_signin(state: &ServiceContext, user: &UserRecord) -> usize {
    match resolve(state, user).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, user = %user.id, "pending grants not resolved at sign-in");
            0
        }
    }
}

async fn resolve(state: &ServiceContext, user: &UserRecord) -> Result<usize> {
    let Some(email) = user.email.as_deref().and_then(normalise_email) else {
        return Ok(0);
    };
    if !user.email_verified {
        // AZURE.md §3: an address the upstream did not prove claims no grant made to it.
        tracing::info!(user = %user.id, "pending grants not matched: the email is not verified");
        return Ok(0);
    }
    let eligible_status = matches!(
        user.status,
        UserStatus::Unregistered | UserStatus::Registered | UserStatus::Active
    );
    if !eligible_status {
        return Ok(0);
    }
    // The common case: nothing pending, one indexed read.
    let grants = state.store.pending_grants_for_email(&email).await?;
    let officer = user.account_type == AccountType::PublicOfficer.as_str();
    let mut redeemed = 0;
    for grant in grants {
        let tenant = grant.tenant_id.as_deref().unwrap_or_default();
        let allowed = match grant.kind.as_str() {
            GRANT_PLATFORM_ADMIN => true,
            GRANT_TENANT_ADMIN => officer,
            GRANT_APP_ACCESS => officer || invited_by_tenant(state, tenant, &email).await?,
            _ => false,
        };
        if !allowed {
            continue;
        }
        let now = state.clock.now().as_secs();
        if !state
            .store
            .redeem_pending_grant(&grant.id, &user.id, now)
            .await?
        {
            continue;
        }
        redeemed += 1;
        let event = match grant.kind.as_str() {
            GRANT_APP_ACCESS => "access.assigned",
            GRANT_TENANT_ADMIN => "tenant.admin_added",
            _ => "platform_admin.granted",
        };
        crate::audit(
            state,
            AuditRecord {
                at: now,
                event: event.into(),
                outcome: "success".into(),
                actor: Some(grant.granted_by.clone()),
                subject: Some(user.id.clone()),
                tenant: grant.tenant_id.clone(),
                details: serde_json::json!({
                    "pending_grant": grant.id,
                    "email": grant.email,
                    "client_id": grant.client_id,
                    "principal_type": "user",
                })
                .to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    Ok(redeemed)
}
