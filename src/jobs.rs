//! The scheduled jobs every replica runs every `jobs.interval_secs`: the account lifecycle
//! (and the deletion of accounts terminated long enough ago),
//! invitation expiry, credential expiry reminders, and delivery of the email outbox and of
//! webhooks. Each is safe to run on several replicas at once: every state change is a
//! compare-and-set in the database and every notice is recorded once, so exactly one replica
//! acts on each account, invitation or message.

use std::time::Duration;

use techpass_domain::gate::UserStatus;
use techpass_domain::lifecycle::{next_step, AccountFacts, LifecycleStep};
use techpass_domain::tenancy::TenantStatus;
use techpass_domain::Timestamp;
use techpass_store::{StoreError, UserRecord};

use crate::mail::{notify, Email};
use crate::state::AppState;
use crate::tenancy::{audit, Actor};

/// What one run did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub transitions: usize,
    pub accounts_deleted: usize,
    pub reminders: usize,
    pub invitations_expired: usize,
    pub credential_reminders: usize,
    pub review_reminders: usize,
    pub emails_sent: usize,
    pub webhooks_delivered: usize,
}

/// Runs every job once. A failing job is logged and does not stop the others.
pub async fn run_once(state: &AppState) -> JobReport {
    let mut report = JobReport::default();
    match lifecycle(state, &mut report).await {
        Ok(()) => {}
        Err(e) => tracing::warn!(error = %e, "lifecycle job failed"),
    }
    match crate::accounts::delete_terminated(state).await {
        Ok(n) => report.accounts_deleted = n,
        Err(e) => tracing::warn!(error = %e, "deletion of terminated accounts failed"),
    }
    match crate::tenancy::invitations::expire_due(state).await {
        Ok(n) => report.invitations_expired = n,
        Err(e) => tracing::warn!(error = %e, "invitation expiry job failed"),
    }
    match credential_reminders(state).await {
        Ok(n) => report.credential_reminders = n,
        Err(e) => tracing::warn!(error = %e, "credential reminder job failed"),
    }
    match review_reminders(state).await {
        Ok(n) => report.review_reminders = n,
        Err(e) => tracing::warn!(error = %e, "access review reminder job failed"),
    }
    match crate::mail::deliver_due(state).await {
        Ok(n) => report.emails_sent = n,
        Err(e) => tracing::warn!(error = %e, "email delivery failed"),
    }
    match crate::webhooks::deliver_due(state).await {
        Ok(n) => report.webhooks_delivered = n,
        Err(e) => tracing::warn!(error = %e, "webhook delivery failed"),
    }
    if report != JobReport::default() {
        tracing::info!(?report, "scheduled jobs ran");
    }
    report
}

/// Runs the jobs forever, every `jobs.interval_secs`.
pub fn spawn(state: &AppState) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    let every = Duration::from_secs(state.config.jobs.interval_secs);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            run_once(&state).await;
        }
    })
}

fn facts(user: &UserRecord) -> AccountFacts {
    AccountFacts {
        status: user.status,
        exempt: user.exempt,
        created_at: Timestamp(user.created_at),
        last_signin_at: Timestamp(user.last_signin_at),
        app_signin_at: user.app_signin_at.map(Timestamp),
        access_ends_at: user.access_ends_at.map(Timestamp),
        enabled_at: user.enabled_at.map(Timestamp),
    }
}

const PAGE: i64 = 200;

async fn lifecycle(state: &AppState, report: &mut JobReport) -> Result<(), StoreError> {
    let policy = state.config.lifecycle.policy();
    let statuses = [
        UserStatus::Registered,
        UserStatus::Active,
        UserStatus::Disabled,
    ];
    let mut after = String::new();
    loop {
        let page = state
            .store
            .users_for_lifecycle(&statuses, &after, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for user in &page {
            let now = state.clock.now();
            match next_step(&facts(user), &policy, now) {
                None => {}
                Some(LifecycleStep::Transition { from, to, reason }) => {
                    // Compare-and-set: only the replica that moves the account acts on it.
                    let moved = state
                        .store
                        .transition_user(&user.id, from, to, Some(reason.as_str()), now.as_secs())
                        .await?;
                    if moved {
                        report.transitions += 1;
                        after_transition(state, user, to, reason.as_str()).await?;
                    }
                }
                Some(LifecycleStep::Remind { to, reason, due_at }) => {
                    let kind = format!("lifecycle.{}", to.as_str());
                    let first = state
                        .store
                        .record_notice(&user.id, &kind, due_at.as_secs(), now.as_secs())
                        .await?;
                    if first {
                        report.reminders += 1;
                        remind(state, user, to, reason.as_str(), due_at).await;
                    }
                }
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(())
}

async fn after_transition(
    state: &AppState,
    user: &UserRecord,
    to: UserStatus,
    reason: &str,
) -> Result<(), StoreError> {
    // Nothing issued before keeps working: sessions end (apps are told) and grants are revoked.
    crate::accounts::end_everything(state, &user.id).await?;
    audit(
        state,
        &Actor::Operator,
        &format!("user.{}", to.as_str()),
        None,
        Some(&user.id),
        serde_json::json!({ "reason": reason, "by": "lifecycle" }),
    )
    .await;
    let event = if to == UserStatus::Terminated {
        "user-deleted"
    } else {
        "user-updated"
    };
    for m in state.store.memberships_of_user(&user.id).await? {
        crate::webhooks::emit(
            state,
            &m.tenant_id,
            event,
            serde_json::json!({ "user_id": user.id, "email": user.email, "status": to.as_str(), "reason": reason }),
        )
        .await;
    }
    if let Some(to_addr) = &user.email {
        let (subject, body) = match to {
            UserStatus::Expired => (
                "Your TechPass access has ended",
                "The access end date of your TechPass invitation has passed, so you can no longer sign in to the toolchain's apps. Ask your project manager to invite you again if you still need access.",
            ),
            UserStatus::Disabled => (
                "Your TechPass account is disabled",
                "Your TechPass account was disabled because it was not used for a long time. Contact the TechPass team to have it enabled again.",
            ),
            _ => (
                "Your TechPass account was closed",
                "Your TechPass account was closed because it was not used. Register again (officers) or ask your project manager for a new invitation (vendors) if you need access.",
            ),
        };
        notify(
            state,
            Email {
                to: to_addr.clone(),
                subject: subject.into(),
                body: body.into(),
                kind: "lifecycle",
            },
        )
        .await;
    }
    Ok(())
}

async fn remind(state: &AppState, user: &UserRecord, to: UserStatus, reason: &str, due: Timestamp) {
    let Some(addr) = &user.email else { return };
    let when = techpass_service::dates::date(due.as_secs());
    let body = match reason {
        "access_ended" => format!(
            "Your TechPass access ends on {when}. Ask your project manager to extend it if you still need it."
        ),
        _ => format!(
            "Your TechPass account will be {} on {when} because it has not been used. Sign in to any toolchain app before then to keep it.",
            to.as_str()
        ),
    };
    notify(
        state,
        Email {
            to: addr.clone(),
            subject: "Your TechPass account needs attention".into(),
            body,
            kind: "lifecycle.reminder",
        },
    )
    .await;
}

/// Tenant admins hear about client secrets expiring within `apps.credential_reminder_days`
/// (once per secret), and their webhooks get `app-credentials-expiring`.
async fn credential_reminders(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now().as_secs();
    let window = i64::try_from(state.config.apps.credential_reminder_days)
        .unwrap_or(14)
        .saturating_mul(86_400);
    let mut sent = 0;
    for secret in state.store.secrets_expiring(now, now + window).await? {
        if !state
            .store
            .record_notice(&secret.id, "credential.expiring", secret.expires_at, now)
            .await?
        {
            continue;
        }
        sent += 1;
        let Some(app) = state.store.get_client(&secret.client_id).await? else {
            continue;
        };
        let Some(tenant_id) = app.tenant_id.clone() else {
            continue;
        };
        let when = techpass_service::dates::date(secret.expires_at);
        for admin in state.store.tenant_admins(&tenant_id).await? {
            if let Some(addr) = state
                .store
                .get_user(&admin.user_id)
                .await?
                .and_then(|u| u.email)
            {
                notify(
                    state,
                    Email {
                        to: addr,
                        subject: format!("A client secret of {} expires on {when}", app.name),
                        body: format!(
                            "The client secret {} of the app {} ({}) expires on {when}. Create a new secret, deploy it, then revoke the old one.",
                            secret.id, app.name, app.client_id
                        ),
                        kind: "credential.expiring",
                    },
                )
                .await;
            }
        }
        crate::webhooks::emit(
            state,
            &tenant_id,
            "app-credentials-expiring",
            serde_json::json!({ "client_id": app.client_id, "secret_id": secret.id, "expires_at": secret.expires_at }),
        )
        .await;
    }
    Ok(sent)
}

/// Every `apps.access_review_interval_days`, the admins of each active tenant are asked to review
/// who has access to its apps (once per tenant and period, whichever replica runs first).
async fn review_reminders(state: &AppState) -> Result<usize, StoreError> {
    let interval = i64::try_from(state.config.apps.access_review_interval_days)
        .unwrap_or(0)
        .saturating_mul(86_400);
    if interval <= 0 {
        return Ok(0);
    }
    let now = state.clock.now().as_secs();
    let period = now - now.rem_euclid(interval);
    let mut sent = 0;
    let mut offset = 0;
    loop {
        let tenants = state
            .store
            .list_tenants(Some(TenantStatus::Active), PAGE, offset)
            .await?;
        for tenant in &tenants {
            // A tenant approved during this period is reviewed from the next one.
            if tenant.status_at.unwrap_or(tenant.created_at) >= period {
                continue;
            }
            if !state
                .store
                .record_notice(&tenant.id, "access.review", period, now)
                .await?
            {
                continue;
            }
            sent += 1;
            for admin in state.store.tenant_admins(&tenant.id).await? {
                if let Some(addr) = state
                    .store
                    .get_user(&admin.user_id)
                    .await?
                    .and_then(|u| u.email)
                {
                    notify(
                        state,
                        Email {
                            to: addr,
                            subject: format!("Time to review who can use {}'s apps", tenant.name),
                            body: format!(
                                "Please review who has access to the apps of {}: open each app's access review in TechPass, check everyone still needs access, and remove those who do not.",
                                tenant.name
                            ),
                            kind: "access.review",
                        },
                    )
                    .await;
                }
            }
        }
        if (tenants.len() as i64) < PAGE {
            break;
        }
        offset += PAGE;
    }
    Ok(sent)
}
