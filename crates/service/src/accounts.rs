//! Account administration: suspending and reinstating a person. Suspension takes effect at once
//! through the gate; it also ends the person's sessions (with back-channel logout to their apps)
//! and revokes every grant, so nothing issued before keeps working.

use techpass_domain::account::AccountType;
use techpass_domain::gate::UserStatus;
use techpass_store::{AuditRecord, StoreError, UserRecord};

use crate::audit;
use crate::logout::{end_session, SessionRef};
use crate::ServiceContext;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no user has the email or id {0}")]
    NotFound(String),
    #[error("several users have the email {email}; name one by id: {ids}")]
    Ambiguous { email: String, ids: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user named by an id or an email address.
pub async fn find_user(
    ctx: &ServiceContext,
    id_or_email: &str,
) -> Result<UserRecord, AccountError> {
    if let Some(user) = ctx.store.get_user(id_or_email).await? {
        return Ok(user);
    }
    let mut found = ctx.store.find_users_by_email(id_or_email).await?;
    match found.len() {
        0 => Err(AccountError::NotFound(id_or_email.to_string())),
        1 => Ok(found.remove(0)),
        _ => Err(AccountError::Ambiguous {
            email: id_or_email.to_string(),
            ids: found
                .iter()
                .map(|u| u.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// What ending a person's sessions did.
#[derive(Debug)]
pub struct Suspension {
    pub sessions_ended: usize,
    pub grants_revoked: u64,
    /// Back-channel logouts under way (a short-lived caller should wait for them).
    pub deliveries: Vec<tokio::task::JoinHandle<()>>,
}

/// Ends every session of the person (apps with a back-channel URI are told, in the background)
/// and revokes every grant, so nothing issued before keeps working: for a suspension, a
/// lifecycle transition, or the person's own "sign out everywhere".
pub async fn end_everything(ctx: &ServiceContext, user_id: &str) -> Result<Suspension, StoreError> {
    let sessions = ctx.store.sessions_of_user(user_id).await?;
    let mut deliveries = Vec::new();
    for s in &sessions {
        deliveries.extend(end_session(ctx, &SessionRef::from(s), None).await);
    }
    // Grants whose session has already ended still hold refresh tokens.
    let grants_revoked = ctx
        .store
        .revoke_grants_of_user(user_id, ctx.clock.now().as_secs())
        .await?;
    Ok(Suspension {
        sessions_ended: sessions.len(),
        grants_revoked,
        deliveries,
    })
}

pub async fn suspend(
    ctx: &ServiceContext,
    user: &UserRecord,
    reason: &str,
    actor: &str,
) -> Result<Suspension, AccountError> {
    let now = ctx.clock.now().as_secs();
    ctx.store
        .set_user_status(&user.id, UserStatus::Suspended.as_str(), Some(reason))
        .await?;
    let ended = end_everything(ctx, &user.id).await?;
    audit(
        ctx,
        AuditRecord {
            at: now,
            event: "user.suspended".into(),
            outcome: "success".into(),
            actor: Some(actor.to_string()),
            subject: Some(user.id.clone()),
            details:
                serde_json::json!({ "reason": reason, "sessions_ended": ended.sessions_ended })
                    .to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok(ended)
}

/// Lifts a suspension: back to registered (officers) or active (vendors); an account that never
/// registered goes back to unregistered.
pub async fn reinstate(
    ctx: &ServiceContext,
    user: &UserRecord,
    actor: &str,
) -> Result<UserStatus, AccountError> {
    let status = if user.registered_at.is_none() {
        UserStatus::Unregistered
    } else if user.account_type == AccountType::Vendor.as_str() {
        UserStatus::Active
    } else {
        UserStatus::Registered
    };
    ctx.store
        .set_user_status(&user.id, status.as_str(), None)
        .await?;
    audit(
        ctx,
        AuditRecord {
            at: ctx.clock.now().as_secs(),
            event: "user.reinstated".into(),
            outcome: "success".into(),
            actor: Some(actor.to_string()),
            subject: Some(user.id.clone()),
            details: serde_json::json!({ "status": status.as_str() }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok(status)
}

/// Marks an account exempt from the lifecycle jobs, or subject to them again.
pub async fn set_exempt(
    ctx: &ServiceContext,
    user: &UserRecord,
    exempt: bool,
    actor: &str,
) -> Result<(), AccountError> {
    if !ctx.store.set_user_exempt(&user.id, exempt).await? {
        return Err(AccountError::NotFound(user.id.clone()));
    }
    audit(
        ctx,
        AuditRecord {
            at: ctx.clock.now().as_secs(),
            event: if exempt {
                "user.exempted"
            } else {
                "user.unexempted"
            }
            .into(),
            outcome: "success".into(),
            actor: Some(actor.to_string()),
            subject: Some(user.id.clone()),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok(())
}
