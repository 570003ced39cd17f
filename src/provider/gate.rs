//! Applying the token gate ([`techpass_domain::gate`]) to a stored user, the app, its tenant and
//! the user's access, and recording refusals in the audit log. Everything is read fresh from
//! the database at every call (no cache, so the staleness bound is zero): a suspension, an
//! expiry, a tenant suspension, a disabled app or a removed access takes effect at the next
//! request on every replica.

use techpass_domain::gate::{check, Denial, GateInput, UserStatus};
use techpass_domain::tenancy::TenantStatus;
use techpass_domain::Timestamp;
use techpass_store::{AuditRecord, StoreError, TenantRecord, UserRecord};

use super::clients::Client;
use crate::signin::audit;
use crate::state::AppState;

/// Why the gate did not let a token through.
#[derive(Debug)]
pub enum Refusal {
    /// The rules refuse (audited, shown to the person, `access_denied` for the app).
    Denied(Denial),
    /// The facts could not be read: nothing is issued, and the caller says "try again".
    Unavailable(StoreError),
}

/// The gate's decision for `user` at `client` now, with the app's tenant as read for it (so
/// that minting does not read it again). An unknown stored status or a missing tenant fails
/// closed; a storage failure is [`Refusal::Unavailable`].
pub async fn decide(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
) -> Result<Option<TenantRecord>, Refusal> {
    let facts = async {
        let tenant = match &client.tenant_id {
            None => None,
            Some(id) => state.store.get_tenant(id).await?,
        };
        let assigned = if client.user_assignment_required {
            state.store.has_access(&client.id, &user.id).await?
        } else {
            false
        };
        Ok::<_, StoreError>((tenant, assigned))
    };
    let (tenant, assigned) = facts.await.map_err(Refusal::Unavailable)?;
    let tenant_status = client.tenant_id.as_ref().map(|_| {
        tenant
            .as_ref()
            .and_then(|t| TenantStatus::parse(&t.status))
            .unwrap_or(TenantStatus::Suspended)
    });
    check(GateInput {
        status: UserStatus::parse(&user.status).unwrap_or(UserStatus::Terminated),
        access_ends_at: user.access_ends_at.map(Timestamp),
        tenant: tenant_status,
        app_enabled: client.enabled,
        assignment_required: client.user_assignment_required,
        assigned,
        now: state.clock.now(),
    })
    .map_err(Refusal::Denied)?;
    Ok(tenant)
}

/// As [`decide`], writing a refusal to the audit log with where it happened.
pub async fn enforce(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
    at: &str,
    request_id: Option<String>,
) -> Result<Option<TenantRecord>, Refusal> {
    let decision = decide(state, user, client).await;
    if let Err(Refusal::Denied(denial)) = &decision {
        let denial = *denial;
        tracing::info!(user = %user.id, client_id = %client.id, reason = denial.reason(), at, "token gate refused");
        audit(
            state,
            AuditRecord {
                at: state.clock.now().as_secs(),
                event: "token.denied".into(),
                outcome: "denied".into(),
                reason: Some(denial.reason().to_string()),
                subject: Some(user.id.clone()),
                request_id,
                details: serde_json::json!({ "client_id": client.id, "at": at }).to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    decision
}

/// What the person reads for each refusal: what happened and what to do.
pub fn explain(denial: Denial) -> (&'static str, &'static str, &'static str) {
    match denial {
        Denial::NotRegistered => (
            "You are not registered for TechPass",
            "Only registered officers and invited vendors can use the toolchain's apps. TechPass accounts for vendors and contractors are by invitation only.",
            "Ask your project manager to invite you, then open the link in the invitation email.",
        ),
        Denial::Suspended => (
            "Your TechPass account is suspended",
            "A TechPass administrator suspended your account.",
            "Contact the TechPass team to find out why and how to have it reinstated.",
        ),
        Denial::Disabled => (
            "Your TechPass account is disabled",
            "Your account was disabled because it was not used for a long time.",
            "Contact the TechPass team to have it enabled again.",
        ),
        Denial::Expired => (
            "Your access has ended",
            "The access end date of your invitation has passed.",
            "Ask your project manager to extend your access or invite you again.",
        ),
        Denial::Terminated => (
            "Your TechPass account was closed",
            "This account can no longer be used.",
            "Contact the TechPass team if you need access again.",
        ),
        Denial::TenantInactive => (
            "This app is not available",
            "The service this app belongs to is not active on TechPass at the moment.",
            "Contact the app's team.",
        ),
        Denial::AppDisabled => (
            "This app is not available",
            "Sign-in to this app has been switched off by its owners.",
            "Contact the app's team.",
        ),
        Denial::NoAccess => (
            "You do not have access to this app",
            "This app admits only the people its team has given access.",
            "Ask the app's team (your project manager) to give you access.",
        ),
    }
}
