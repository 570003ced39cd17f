//! Applying the token gate ([`techpass_domain::gate`]) to a stored user and client, and
//! recording refusals in the audit log. Read fresh from the database at every call: a
//! suspension, an expiry or a disabled app takes effect at the next request on every replica.

use techpass_domain::gate::{check, Denial, GateInput, UserStatus};
use techpass_domain::Timestamp;
use techpass_store::{AuditRecord, UserRecord};

use super::clients::Client;
use crate::signin::audit;
use crate::state::AppState;

/// The gate's decision for `user` at `client` now. An unknown stored status fails closed.
pub fn decide(state: &AppState, user: &UserRecord, client: &Client) -> Result<(), Denial> {
    check(GateInput {
        status: UserStatus::parse(&user.status).unwrap_or(UserStatus::Terminated),
        access_ends_at: user.access_ends_at.map(Timestamp),
        app_enabled: client.enabled,
        now: state.clock.now(),
    })
}

/// As [`decide`], writing a refusal to the audit log with where it happened.
pub async fn enforce(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
    at: &str,
    request_id: Option<String>,
) -> Result<(), Denial> {
    let decision = decide(state, user, client);
    if let Err(denial) = decision {
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
            "Only registered officers and invited vendors can use the toolchain's apps.",
            "Officers: sign in again and register. Vendors: ask your project manager to invite you.",
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
        Denial::AppDisabled => (
            "This app is not available",
            "Sign-in to this app has been switched off by its owners.",
            "Contact the app's team.",
        ),
    }
}
