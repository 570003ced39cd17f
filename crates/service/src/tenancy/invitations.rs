//! Invitations: a tenant admin invites an email address to the tenant with an access end date
//! (required for vendors). The link is single use, stored as a keyed hash, and expires; a new
//! invitation to the same address replaces the pending one. The invitee signs in upstream and
//! accepts; the verified upstream email must equal the invited one (case-insensitive, exact
//! otherwise). The inviter is told when it is accepted or expires.

use serde::{Deserialize, Serialize};
use techpass_domain::account::{classify, AccountType};
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{
    check_access_end, combined_access_end, email_matches, InvitationStatus, TenantStatus,
};
use techpass_domain::Timestamp;
use techpass_store::{AcceptOutcome, Acceptance, InvitationRecord, TenantRecord, UserRecord};

use super::{admin_tenant, audit, new_id, normalise_email, Actor, Result, TenancyError};
use crate::mail::{notify, queue, Email};
use crate::ServiceContext;

pub const PURPOSE_INVITATION: &str = "invitation";
/// Where an invitation link points; the secret follows in the query (never in the path, which
/// is logged).
pub const INVITATION_PATH: &str = "/invite?token=";

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewInvitation {
    pub email: String,
    /// Unix seconds; required for vendors, at most `invitations.max_vendor_access_days` away.
    pub access_ends_at: Option<i64>,
}

fn link(state: &ServiceContext, token: &str) -> String {
    let base = state.issuer.as_str().trim_end_matches('/');
    format!("{base}{INVITATION_PATH}{token}")
}

/// Who the invitation email says invited the person: the acting admin by name and address, or
/// the tenant's automation, or TechPass's operators.
async fn inviter(state: &ServiceContext, actor: &Actor) -> Result<String> {
    Ok(match actor {
        Actor::User { id, .. } => {
            let user = state.store.get_user(id).await?;
            let name = user.as_ref().and_then(|u| u.name.clone());
            let email = user.and_then(|u| u.email);
            match (name.as_deref().map(str::trim), email) {
                (Some(name), Some(email)) if !name.is_empty() => format!("{name} ({email})"),
                (_, Some(email)) => email,
                (Some(name), None) if !name.is_empty() => name.to_string(),
                _ => "A tenant admin".to_string(),
            }
        }
        Actor::App { .. } => "The tenant's automation".to_string(),
        Actor::Operator => "The TechPass operators".to_string(),
    })
}

fn invitation_email(
    state: &ServiceContext,
    tenant: &TenantRecord,
    inv: &InvitationRecord,
    token: &str,
    inviter: &str,
) -> Email {
    let days = (inv.expires_at - state.clock.now().as_secs()) / 86_400;
    let until = inv
        .access_ends_at
        .map(|t| format!(" Your access will last until {}.", crate::dates::date(t)))
        .unwrap_or_default();
    Email {
        to: inv.email.clone(),
        subject: format!("{inviter} invited you to {} on TechPass", tenant.name),
        body: format!(
            "{inviter} invited you to use {} through TechPass, the government developer toolchain's sign-in.{until}\n\n\
             To accept, open this link within {days} day(s) and sign in with the account of this email address ({}):\n\n{}\n\n\
             The link works once. If you did not expect this invitation, ignore this email.",
            tenant.name, inv.email, link(state, token)
        ),
        kind: "invitation",
    }
}

/// Invites `email` to the tenant. The link is in the email only; the response never carries it.
pub async fn invite(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    new: NewInvitation,
) -> Result<InvitationRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    if tenant.status != TenantStatus::Active {
        return Err(TenancyError::Conflict(
            "only an active tenant can invite people".into(),
        ));
    }
    let email = normalise_email(&new.email)
        .ok_or_else(|| TenancyError::Invalid("that is not an email address".into()))?;
    let now = state.clock.now();
    let kind = classify(&email, &state.classification);
    let policy = state.settings.invitations.policy();
    check_access_end(kind, new.access_ends_at.map(Timestamp), &policy, now)
        .map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let token = super::random_secret(state)?;
    let invitation = InvitationRecord {
        id: new_id(state, "inv"),
        tenant_id: tenant.id.clone(),
        email,
        token_hash: state.secrets.keyed_hash(PURPOSE_INVITATION, &token),
        invited_by: actor.audit_name(),
        created_at: now.as_secs(),
        expires_at: now.plus(policy.link_lifetime_secs).as_secs(),
        access_ends_at: new.access_ends_at,
        status: InvitationStatus::Pending,
        status_at: None,
        accepted_by: None,
        sent_count: 1,
    };
    let replaced = state.store.insert_invitation(&invitation).await?;
    let by = inviter(state, actor).await?;
    queue(
        state,
        invitation_email(state, &tenant, &invitation, &token, &by),
    )
    .await?;
    audit(
        state,
        actor,
        "invitation.created",
        Some(&tenant.id),
        Some(&invitation.id),
        serde_json::json!({
            "email": invitation.email,
            "account_type": kind.as_str(),
            "access_ends_at": invitation.access_ends_at,
            "replaced": replaced.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        }),
    )
    .await;
    crate::webhooks::emit(
        state,
        &tenant.id,
        "user-invited",
        serde_json::json!({
            "invitation_id": invitation.id,
            "email": invitation.email,
            "access_ends_at": invitation.access_ends_at,
            "expires_at": invitation.expires_at,
        }),
    )
    .await;
    Ok(invitation)
}

/// One of the tenant's invitations, for its admins.
pub async fn get(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    invitation_id: &str,
) -> Result<InvitationRecord> {
    Ok(tenant_invitation(state, actor, tenant_id, invitation_id)
        .await?
        .1)
}

/// The address an invitation link was sent to, to suggest it at sign-in (`login_hint`): the
/// link's holder already has it.
pub async fn email_of_link(state: &ServiceContext, token: &str) -> Option<String> {
    let hash = state.secrets.keyed_hash(PURPOSE_INVITATION, token);
    match state.store.find_invitation_by_token(&hash).await {
        Ok(found) => found.map(|i| i.email),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read invitations");
            None
        }
    }
}

/// The invitations waiting for the signed-in `user` (to their email address, pending, not
/// expired), with their tenants, newest first: what to tell an invitee who signed in without
/// the link.
pub async fn waiting_for(
    state: &ServiceContext,
    user: &UserRecord,
) -> Result<Vec<(InvitationRecord, TenantRecord)>> {
    // An address TechPass does not believe (AZURE.md §3) matches no invitation.
    let Some(email) = user
        .email
        .as_deref()
        .filter(|_| user.email_verified)
        .and_then(normalise_email)
    else {
        return Ok(Vec::new());
    };
    let now = state.clock.now().as_secs();
    let mut waiting = Vec::new();
    for invitation in state
        .store
        .pending_invitations_to_email(&email, now)
        .await?
    {
        if let Some(tenant) = state.store.get_tenant(&invitation.tenant_id).await? {
            waiting.push((invitation, tenant));
        }
    }
    Ok(waiting)
}

async fn tenant_invitation(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    invitation_id: &str,
) -> Result<(TenantRecord, InvitationRecord)> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let invitation = state
        .store
        .get_invitation(invitation_id)
        .await?
        .filter(|i| i.tenant_id == tenant.id)
        .ok_or(TenancyError::NotFound("invitation"))?;
    Ok((tenant, invitation))
}

/// Sends a pending invitation again with a new link (the old one stops working) and a new
/// expiry.
pub async fn resend(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    invitation_id: &str,
) -> Result<InvitationRecord> {
    let (tenant, invitation) = tenant_invitation(state, actor, tenant_id, invitation_id).await?;
    let token = super::random_secret(state)?;
    let expires_at = state
        .clock
        .now()
        .plus(state.settings.invitations.policy().link_lifetime_secs)
        .as_secs();
    let renewed = state
        .store
        .renew_invitation(
            &invitation.id,
            &state.secrets.keyed_hash(PURPOSE_INVITATION, &token),
            expires_at,
        )
        .await?;
    if !renewed {
        return Err(TenancyError::Conflict(format!(
            "the invitation is {}; only a pending invitation can be resent",
            invitation.status.as_str()
        )));
    }
    let invitation = state
        .store
        .get_invitation(&invitation.id)
        .await?
        .ok_or(TenancyError::NotFound("invitation"))?;
    let by = inviter(state, actor).await?;
    queue(
        state,
        invitation_email(state, &tenant, &invitation, &token, &by),
    )
    .await?;
    audit(
        state,
        actor,
        "invitation.resent",
        Some(&tenant.id),
        Some(&invitation.id),
        serde_json::json!({ "email": invitation.email }),
    )
    .await;
    Ok(invitation)
}

pub async fn revoke(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    invitation_id: &str,
) -> Result<()> {
    let (tenant, invitation) = tenant_invitation(state, actor, tenant_id, invitation_id).await?;
    if !state
        .store
        .revoke_invitation(&invitation.id, state.clock.now().as_secs())
        .await?
    {
        return Err(TenancyError::Conflict(format!(
            "the invitation is {}; only a pending invitation can be revoked",
            invitation.status.as_str()
        )));
    }
    audit(
        state,
        actor,
        "invitation.revoked",
        Some(&tenant.id),
        Some(&invitation.id),
        serde_json::json!({ "email": invitation.email }),
    )
    .await;
    Ok(())
}

pub async fn list(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    status: Option<InvitationStatus>,
    limit: i64,
    offset: i64,
) -> Result<Vec<InvitationRecord>> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    Ok(state
        .store
        .invitations_of_tenant(&tenant.id, status, limit, offset)
        .await?)
}

/// Why an invitation link cannot be used, in the invitee's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Unknown, or replaced by a newer link.
    Unknown,
    Expired,
    Revoked,
    AlreadyAccepted,
    /// Signed in as someone whose verified email is not the invited one.
    WrongEmail,
    /// Signed in with the invited address, but the upstream did not prove it (AZURE.md §3).
    EmailUnverified,
    /// The account is suspended, disabled or terminated.
    AccountBlocked,
    /// The tenant is not active.
    TenantInactive,
    /// An officer must accept the terms to register in the same step.
    TermsRequired,
}

impl LinkProblem {
    pub fn reason(self) -> &'static str {
        match self {
            LinkProblem::Unknown => "invitation_unknown",
            LinkProblem::Expired => "invitation_expired",
            LinkProblem::Revoked => "invitation_revoked",
            LinkProblem::AlreadyAccepted => "invitation_used",
            LinkProblem::WrongEmail => "invitation_email_mismatch",
            LinkProblem::EmailUnverified => "invitation_email_unverified",
            LinkProblem::AccountBlocked => "account_blocked",
            LinkProblem::TenantInactive => "tenant_inactive",
            LinkProblem::TermsRequired => "terms_required",
        }
    }
}

/// An invitation as its invitee sees it: the invitation, its tenant, and whether the signed-in
/// person must also register (an officer without an account).
#[derive(Debug, Clone)]
pub struct Invited {
    pub invitation: InvitationRecord,
    pub tenant: TenantRecord,
    pub registers: bool,
}

/// Looks up the link for the signed-in `user` and checks it could be accepted by them.
pub async fn open(
    state: &ServiceContext,
    token: &str,
    user: &UserRecord,
) -> std::result::Result<Invited, LinkProblem> {
    let hash = state.secrets.keyed_hash(PURPOSE_INVITATION, token);
    let invitation = match state.store.find_invitation_by_token(&hash).await {
        Ok(Some(i)) => i,
        Ok(None) => return Err(LinkProblem::Unknown),
        Err(e) => {
            tracing::error!(error = %e, "cannot read invitations");
            return Err(LinkProblem::Unknown);
        }
    };
    let now = state.clock.now().as_secs();
    match invitation.status {
        InvitationStatus::Pending if invitation.expires_at > now => {}
        InvitationStatus::Pending | InvitationStatus::Expired => return Err(LinkProblem::Expired),
        InvitationStatus::Revoked => return Err(LinkProblem::Revoked),
        InvitationStatus::Accepted => return Err(LinkProblem::AlreadyAccepted),
        InvitationStatus::Replaced => return Err(LinkProblem::Unknown),
    }
    let verified = user.email.as_deref().unwrap_or("");
    if !email_matches(&invitation.email, verified) {
        return Err(LinkProblem::WrongEmail);
    }
    if !user.email_verified {
        crate::audit(
            state,
            techpass_store::AuditRecord {
                at: now,
                event: "invitation.accept".into(),
                outcome: "denied".into(),
                reason: Some(LinkProblem::EmailUnverified.reason().into()),
                actor: Some(user.id.clone()),
                subject: Some(invitation.id.clone()),
                tenant: Some(invitation.tenant_id.clone()),
                details: serde_json::json!({ "email": invitation.email }).to_string(),
                ..techpass_store::AuditRecord::default()
            },
        )
        .await;
        return Err(LinkProblem::EmailUnverified);
    }
    let status = user.status;
    if matches!(
        status,
        UserStatus::Suspended | UserStatus::Disabled | UserStatus::Terminated
    ) {
        return Err(LinkProblem::AccountBlocked);
    }
    let tenant = match state.store.get_tenant(&invitation.tenant_id).await {
        Ok(Some(t)) if t.status == TenantStatus::Active => t,
        _ => return Err(LinkProblem::TenantInactive),
    };
    let officer = classify(verified, &state.classification) == AccountType::PublicOfficer;
    Ok(Invited {
        registers: officer && status == UserStatus::Unregistered,
        invitation,
        tenant,
    })
}

/// Accepts the invitation for the signed-in `user`: binds that upstream identity to the
/// account (status registered for officers, active for vendors, with the access end date), the
/// person joins the tenant, and the inviter is told.
pub async fn accept(
    state: &ServiceContext,
    token: &str,
    user: &UserRecord,
    accepted_terms: Option<&str>,
) -> std::result::Result<Invited, LinkProblem> {
    let invited = open(state, token, user).await?;
    let terms = &state.settings.accounts.terms_version;
    if invited.registers && accepted_terms != Some(terms.as_str()) {
        return Err(LinkProblem::TermsRequired);
    }
    let verified = user.email.as_deref().unwrap_or("");
    let kind = classify(verified, &state.classification);
    let status = user.status;
    let (new_status, access_ends_at) = match kind {
        AccountType::PublicOfficer => (
            UserStatus::Registered,
            // An officer's account has no end; the membership keeps the invitation's date.
            user.access_ends_at,
        ),
        AccountType::Vendor => {
            // An expired vendor starts afresh from this invitation.
            let current = (status == UserStatus::Active)
                .then_some(user.access_ends_at)
                .flatten();
            (
                UserStatus::Active,
                combined_access_end(
                    current.map(Timestamp),
                    invited.invitation.access_ends_at.map(Timestamp),
                )
                .map(Timestamp::as_secs),
            )
        }
    };
    let outcome = state
        .store
        .accept_invitation(&Acceptance {
            invitation_id: invited.invitation.id.clone(),
            user_id: user.id.clone(),
            at: state.clock.now().as_secs(),
            status: new_status,
            terms_version: invited.registers.then(|| terms.clone()),
            access_ends_at,
        })
        .await;
    match outcome {
        Ok(AcceptOutcome::Accepted) => {}
        Ok(AcceptOutcome::NotPending) => return Err(LinkProblem::AlreadyAccepted),
        Ok(AcceptOutcome::UserNotEligible) => return Err(LinkProblem::AccountBlocked),
        Err(e) => {
            tracing::error!(error = %e, "cannot accept an invitation");
            return Err(LinkProblem::Unknown);
        }
    }
    let actor = Actor::User {
        id: user.id.clone(),
        platform_admin: false,
    };
    audit(
        state,
        &actor,
        "invitation.accepted",
        Some(&invited.tenant.id),
        Some(&invited.invitation.id),
        serde_json::json!({
            "email": invited.invitation.email,
            "user_id": user.id,
            "registered": invited.registers,
            "access_ends_at": access_ends_at,
        }),
    )
    .await;
    tell_inviter(
        state,
        &invited.invitation,
        "invitation.accepted",
        format!("{} accepted your invitation", invited.invitation.email),
        format!(
            "{} accepted your invitation to {} and can now be given access to its apps.",
            invited.invitation.email, invited.tenant.name
        ),
    )
    .await;
    crate::webhooks::emit(
        state,
        &invited.tenant.id,
        "user-updated",
        serde_json::json!({
            "user_id": user.id,
            "email": invited.invitation.email,
            "status": new_status.as_str(),
            "access_ends_at": access_ends_at,
            "invitation_id": invited.invitation.id,
        }),
    )
    .await;
    Ok(invited)
}

async fn tell_inviter(
    state: &ServiceContext,
    invitation: &InvitationRecord,
    kind: &'static str,
    subject: String,
    body: String,
) {
    let inviter = match state.store.get_user(&invitation.invited_by).await {
        Ok(Some(u)) => u,
        // Invited from the command line or by an automation app: nobody to tell by email.
        _ => return,
    };
    if let Some(to) = inviter.email {
        notify(
            state,
            Email {
                to,
                subject,
                body,
                kind,
            },
        )
        .await;
    }
}

/// The scheduled job: pending invitations past their expiry become expired (each exactly once,
/// whichever replica runs it) and their inviters are told.
pub async fn expire_due(state: &ServiceContext) -> Result<usize> {
    let expired = state
        .store
        .expire_invitations(state.clock.now().as_secs())
        .await?;
    for invitation in &expired {
        let tenant = state.store.get_tenant(&invitation.tenant_id).await?;
        let name = tenant
            .as_ref()
            .map(|t| t.name.as_str())
            .unwrap_or("your tenant");
        audit(
            state,
            &Actor::Operator,
            "invitation.expired",
            Some(&invitation.tenant_id),
            Some(&invitation.id),
            serde_json::json!({ "email": invitation.email }),
        )
        .await;
        if tenant.is_some() {
            tell_inviter(
                state,
                invitation,
                "invitation.expired",
                format!("Your invitation to {} expired", invitation.email),
                format!(
                    "The invitation you sent to {} for {name} expired before it was accepted. Invite them again from the tenant's invitations page if they still need access.",
                    invitation.email
                ),
            )
            .await;
        }
    }
    Ok(expired.len())
}

/// The longest reason kept with an ended membership.
pub const MAX_END_REASON_CHARS: usize = 500;

/// What ending a membership did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndedMembership {
    pub tenant_id: String,
    pub user_id: String,
    pub joined_at: i64,
    /// Unix seconds: now, or the earlier end the membership already had.
    pub access_ends_at: Option<i64>,
    pub grants_revoked: u64,
    pub assignments_removed: u64,
    pub roles_removed: u64,
    pub groups_left: u64,
    /// The tenant's pending invitations to the person, revoked.
    pub invitations_revoked: u64,
}

/// A member of the tenant (current or ended), for its admins; anyone else is unknown.
pub async fn member(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    user_id: &str,
) -> Result<techpass_store::MembershipRecord> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    state
        .store
        .membership(&tenant.id, user_id)
        .await?
        .ok_or(TenancyError::NotFound("member"))
}

/// Ends a member's access to the tenant now (a tenant admin of it, or a platform admin): the
/// membership's end date becomes now and is kept for the record; in one transaction the
/// person's grants and refresh tokens at the tenant's apps are revoked, their assignments,
/// roles and groups in the tenant removed and the tenant's pending invitations to them revoked. Their access through other tenants is untouched. A
/// person who is not a member of this tenant is answered as unknown; an officer who is not a
/// member is told so (officers reach apps by assignment or policy, not membership).
pub async fn end_membership(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    user_id: &str,
    reason: &str,
) -> Result<EndedMembership> {
    let tenant = admin_tenant(state, actor, tenant_id).await?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(TenancyError::Invalid(
            "give a reason for ending the membership (it is kept in the audit log)".into(),
        ));
    }
    if reason.chars().count() > MAX_END_REASON_CHARS {
        return Err(TenancyError::Invalid(format!(
            "the reason is longer than {MAX_END_REASON_CHARS} characters"
        )));
    }
    let now = state.clock.now().as_secs();
    let Some(ended) = state.store.end_membership(&tenant.id, user_id, now).await? else {
        let officer = state
            .store
            .get_user(user_id)
            .await?
            .is_some_and(|u| u.account_type == AccountType::PublicOfficer.as_str());
        if officer {
            return Err(TenancyError::Conflict(
                "this person is a public officer, not a member invited to this tenant: there is \
                 no membership to end; remove their access to the apps instead"
                    .into(),
            ));
        }
        return Err(TenancyError::NotFound("member"));
    };
    audit(
        state,
        actor,
        "membership.ended",
        Some(&tenant.id),
        Some(user_id),
        serde_json::json!({
            "reason": reason,
            "access_ends_at": ended.membership.access_ends_at,
            "grants_revoked": ended.grants_revoked,
            "assignments_removed": ended.assignments_removed,
            "roles_removed": ended.roles_removed,
            "groups_left": ended.groups_left,
            "invitations_revoked": ended.invitations_revoked,
        }),
    )
    .await;
    Ok(EndedMembership {
        tenant_id: ended.membership.tenant_id,
        user_id: ended.membership.user_id,
        joined_at: ended.membership.joined_at,
        access_ends_at: ended.membership.access_ends_at,
        grants_revoked: ended.grants_revoked,
        assignments_removed: ended.assignments_removed,
        roles_removed: ended.roles_removed,
        groups_left: ended.groups_left,
        invitations_revoked: ended.invitations_revoked,
    })
}
