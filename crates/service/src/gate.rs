//! Applying the token gate ([`techpass_domain::gate`]) to a stored user, the app, its tenant and
//! the user's access, and recording refusals in the audit log. The person's facts (status,
//! expiry, access, membership) are read fresh from the database at every call: a suspension, an
//! expiry or a removed access takes effect at the next request on every replica. The app and its
//! tenant come from the per-replica row cache ([`techpass_store::CachedRows`]): a disabled app or a suspended
//! tenant takes effect at once on the replica that made the change, and within a second
//! everywhere (at once where the database's change notices arrive).
//!
//! A vendor at a tenant's app brings their membership of that tenant, with the end date of the
//! invitation that made it; an officer at an app for the tenant's members brings whether they
//! belong to it (admin, group, invitation); the pure gate decides. An account type that cannot be read counts
//! as a vendor's (fail closed).
//!
//! An app acting for itself (`client_credentials` tokens, their introspection) goes through the
//! app's half of the gate ([`enforce_app`]): tenant active, app enabled. Every refusal is
//! audited with the app's tenant, so the tenant's admins see refusals of their own apps.

use techpass_domain::account::AccountType;
use techpass_domain::client::AccessPolicy;
use techpass_domain::gate::{check, check_app, AppGateInput, Denial, GateInput, Membership};
use techpass_domain::tenancy::TenantStatus;
use techpass_domain::Timestamp;
use techpass_store::{AuditRecord, StoreError, TenantRecord, UserRecord};

use crate::audit;
use crate::clients::Client;
use crate::ServiceContext;

/// Why the gate did not let a token through.
#[derive(Debug)]
pub enum Refusal {
    /// The rules refuse (audited, shown to the person, `access_denied` for the app).
    Denied(Denial),
    /// The facts could not be read: nothing is issued, and the caller says "try again".
    Unavailable(StoreError),
}

/// The app's tenant as stored now and its status for the gate: `None` for a platform app; a
/// tenant that is missing or has an unknown status counts as suspended (fail closed).
async fn tenant_of(
    state: &ServiceContext,
    client: &Client,
) -> Result<(Option<TenantRecord>, Option<TenantStatus>), StoreError> {
    let tenant = match &client.tenant_id {
        None => None,
        Some(id) => state.store.cached_tenant(id).await?,
    };
    let status = client.tenant_id.as_ref().map(|_| {
        tenant
            .as_ref()
            .map(|t| t.status)
            .unwrap_or(TenantStatus::Suspended)
    });
    Ok((tenant, status))
}

/// The gate's decision for `user` at `client` now, with the app's tenant as read for it (so
/// that minting does not read it again). A missing tenant fails closed (an unknown stored
/// status never loads); a storage failure is [`Refusal::Unavailable`].
pub async fn decide(
    state: &ServiceContext,
    user: &UserRecord,
    client: &Client,
) -> Result<Option<TenantRecord>, Refusal> {
    let account_type = if user.account_type == AccountType::PublicOfficer.as_str() {
        AccountType::PublicOfficer
    } else {
        AccountType::Vendor
    };
    let now = state.clock.now();
    let policy = client.access_policy;
    let facts = async {
        let tenant = tenant_of(state, client).await?;
        // Each fact is read only when the gate asks for it.
        let assigned = match policy {
            AccessPolicy::Assigned => state.store.has_access(&client.id, &user.id).await?,
            AccessPolicy::Members if client.tenant_id.is_none() => {
                state.store.has_access(&client.id, &user.id).await?
            }
            _ => false,
        };
        let belongs = match &client.tenant_id {
            Some(tenant_id)
                if policy == AccessPolicy::Members
                    && account_type == AccountType::PublicOfficer =>
            {
                state
                    .store
                    .belongs_to_tenant(tenant_id, &user.id, now.as_secs())
                    .await?
            }
            _ => false,
        };
        // A vendor at a tenant's app.
        let membership = match &client.tenant_id {
            Some(tenant_id) if account_type == AccountType::Vendor => state
                .store
                .membership(tenant_id, &user.id)
                .await?
                .map(|m| Membership {
                    ends_at: m.access_ends_at.map(Timestamp),
                }),
            _ => None,
        };
        Ok::<_, StoreError>((tenant, assigned, belongs, membership))
    };
    let ((tenant, tenant_status), assigned, belongs, membership) =
        facts.await.map_err(Refusal::Unavailable)?;
    check(GateInput {
        status: user.status,
        account_type,
        access_ends_at: user.access_ends_at.map(Timestamp),
        membership,
        tenant: tenant_status,
        app_enabled: client.enabled,
        policy,
        assigned,
        belongs,
        now,
    })
    .map_err(Refusal::Denied)?;
    Ok(tenant)
}

/// The gate's decision for `client` acting for itself (no person): its tenant active, the app
/// enabled. Fails closed as [`decide`].
pub async fn decide_app(
    state: &ServiceContext,
    client: &Client,
) -> Result<Option<TenantRecord>, Refusal> {
    let (tenant, tenant_status) = tenant_of(state, client)
        .await
        .map_err(Refusal::Unavailable)?;
    check_app(AppGateInput {
        tenant: tenant_status,
        app_enabled: client.enabled,
    })
    .map_err(Refusal::Denied)?;
    Ok(tenant)
}

/// As [`decide_app`], writing a refusal to the audit log (subject `app:<client id>`, the app's
/// tenant) with where it happened.
pub async fn enforce_app(
    state: &ServiceContext,
    client: &Client,
    at: &str,
    request_id: Option<String>,
) -> Result<Option<TenantRecord>, Refusal> {
    let decision = decide_app(state, client).await;
    if let Err(Refusal::Denied(denial)) = &decision {
        tracing::info!(client_id = %client.id, reason = denial.reason(), at, "token gate refused an app");
        refused(
            state,
            *denial,
            format!("app:{}", client.id),
            None,
            client,
            at,
            request_id,
        )
        .await;
    }
    decision
}

/// Writes one refusal of the gate to the audit log, under the app's tenant.
async fn refused(
    state: &ServiceContext,
    denial: Denial,
    subject: String,
    subject_email: Option<String>,
    client: &Client,
    at: &str,
    request_id: Option<String>,
) {
    audit(
        state,
        AuditRecord {
            at: state.clock.now().as_secs(),
            event: "token.denied".into(),
            outcome: "denied".into(),
            reason: Some(denial.reason().to_string()),
            subject: Some(subject),
            tenant: client.tenant_id.clone(),
            // A refusal page shows the request id as its reference.
            reference: request_id.clone(),
            subject_email,
            request_id,
            details: serde_json::json!({ "client_id": client.id, "at": at }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
}

/// As [`decide`], writing a refusal to the audit log with where it happened.
pub async fn enforce(
    state: &ServiceContext,
    user: &UserRecord,
    client: &Client,
    at: &str,
    request_id: Option<String>,
) -> Result<Option<TenantRecord>, Refusal> {
    let decision = decide(state, user, client).await;
    if let Err(Refusal::Denied(denial)) = &decision {
        let denial = *denial;
        tracing::info!(user = %user.id, client_id = %client.id, reason = denial.reason(), at, "token gate refused");
        refused(
            state,
            denial,
            user.id.clone(),
            user.email.clone(),
            client,
            at,
            request_id,
        )
        .await;
    }
    decision
}
