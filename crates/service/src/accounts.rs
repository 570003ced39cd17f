//! Account administration: suspending and reinstating a person. Suspension takes effect at once
//! through the gate; it also ends the person's sessions (with back-channel logout to their apps)
//! and revokes every grant, so nothing issued before keeps working.

use std::collections::BTreeMap;
use techpass_domain::account::AccountType;
use techpass_domain::gate::UserStatus;
use techpass_domain::lifecycle::re_enabled_status;
use techpass_domain::Timestamp;

use techpass_domain::tenancy::TenantStatus;
use techpass_store::{
    AuditRecord, ClientRecord, SessionRecord, StoreError, TenantRecord, UserRecord,
};

use crate::actor::Actor;
use crate::audit;
use crate::logout::{end_session, SessionRef};
use crate::ServiceContext;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no user has the email or id {0}")]
    NotFound(String),
    #[error("several users have the email {email}; name one by id: {ids}")]
    Ambiguous { email: String, ids: String },
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The account is not in the state the operation starts from.
    #[error("{0}")]
    WrongStatus(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user named by an id or an email address. An address TechPass does not believe
/// (`email_verified` false, AZURE.md §3) names nobody: such a person is named by id.
pub async fn find_user(
    ctx: &ServiceContext,
    id_or_email: &str,
) -> Result<UserRecord, AccountError> {
    if let Some(user) = ctx.store.get_user(id_or_email).await? {
        return Ok(user);
    }
    let mut found = ctx.store.find_users_by_email(id_or_email).await?;
    found.retain(|u| u.email_verified);
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
        .set_user_status(&user.id, UserStatus::Suspended, Some(reason))
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

/// Lifts a suspension: back to registered (officers), active (vendors, or expired when their
/// access has ended meanwhile) or unregistered (never registered); inactivity counts from now.
/// Refused for an account that is not suspended.
pub async fn reinstate(
    ctx: &ServiceContext,
    user: &UserRecord,
    actor: &str,
) -> Result<UserStatus, AccountError> {
    give_back(
        ctx,
        user,
        UserStatus::Suspended,
        ("user.reinstated", "reinstated"),
        actor.to_string(),
    )
    .await
}

/// A platform admin re-enables a `disabled` account (the person named by id or email): it
/// returns to the status [`re_enabled_status`] gives, and inactivity counts from now. Audited.
/// Refused for anyone but a platform admin (or the CLI operator), for an unknown person, and
/// for an account that is not disabled.
pub async fn enable(
    ctx: &ServiceContext,
    actor: &Actor,
    id_or_email: &str,
) -> Result<(UserRecord, UserStatus), AccountError> {
    if !actor.is_platform_admin() {
        return Err(AccountError::Forbidden("platform admins only"));
    }
    let user = find_user(ctx, id_or_email).await?;
    let status = give_back(
        ctx,
        &user,
        UserStatus::Disabled,
        ("user.enabled", "re-enabled"),
        actor.audit_name(),
    )
    .await?;
    Ok((user, status))
}

/// Gives `user` their access back from `from` (suspended or disabled): the status
/// [`re_enabled_status`] gives, with now recorded so that the lifecycle does not count the time
/// away as inactivity. A compare-and-set from `from`, so a concurrent change (another admin,
/// the lifecycle job) wins; audited as `event`. `verb` names the act in a refusal.
async fn give_back(
    ctx: &ServiceContext,
    user: &UserRecord,
    from: UserStatus,
    (event, verb): (&str, &str),
    actor: String,
) -> Result<UserStatus, AccountError> {
    let now = ctx.clock.now();
    let status = re_enabled_status(
        user.registered_at.is_some(),
        user.account_type == AccountType::Vendor.as_str(),
        user.access_ends_at.map(Timestamp),
        now,
    );
    let moved = ctx
        .store
        .enable_user(&user.id, from, status, now.as_secs())
        .await?;
    if !moved {
        let from = from.as_str();
        return Err(match ctx.store.get_user(&user.id).await? {
            Some(current) => AccountError::WrongStatus(format!(
                "{} is {}, not {from}: only a {from} account can be {}",
                user.email.as_deref().unwrap_or(&user.id),
                current.status.as_str(),
                verb,
            )),
            None => AccountError::NotFound(user.id.clone()),
        });
    }
    audit(
        ctx,
        AuditRecord {
            at: now.as_secs(),
            event: event.into(),
            outcome: "success".into(),
            actor: Some(actor),
            subject: Some(user.id.clone()),
            details: serde_json::json!({ "from": from.as_str(), "status": status.as_str() })
                .to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok(status)
}

/// Deletes the accounts terminated at least `lifecycle.delete_terminated_after_days` ago, each
/// in one transaction with its grants, tokens, sessions and memberships (see
/// [`techpass_store::UserStore::delete_terminated_user`]); the audit log keeps their history
/// and gets a `user.deleted` entry. Safe on several replicas at once: one deletes each account.
/// Returns how many this call deleted.
pub async fn delete_terminated(ctx: &ServiceContext) -> Result<usize, StoreError> {
    let after = i64::try_from(ctx.settings.lifecycle.delete_terminated_after_days)
        .unwrap_or(i64::MAX / 86_400)
        .saturating_mul(86_400);
    let now = ctx.clock.now().as_secs();
    let before = now.saturating_sub(after);
    let mut deleted = 0;
    loop {
        let due = ctx.store.terminated_before(before, 200).await?;
        let mut progress = false;
        for user in &due {
            if !ctx.store.delete_terminated_user(&user.id, before).await? {
                continue;
            }
            progress = true;
            deleted += 1;
            audit(
                ctx,
                AuditRecord {
                    at: now,
                    event: "user.deleted".into(),
                    outcome: "success".into(),
                    actor: Some("lifecycle".into()),
                    subject: Some(user.id.clone()),
                    details: serde_json::json!({
                        "email": user.email,
                        "terminated_at": user.terminated_at,
                    })
                    .to_string(),
                    ..AuditRecord::default()
                },
            )
            .await;
        }
        if due.len() < 200 || !progress {
            break;
        }
    }
    Ok(deleted)
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

/// The account of `user_id`, if it still exists.
pub async fn get(ctx: &ServiceContext, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
    ctx.store.get_user(user_id).await
}

/// Whether the account's status closes TechPass to the person (portal, API, tokens alike).
pub fn blocked(user: &UserRecord) -> bool {
    matches!(
        user.status,
        UserStatus::Suspended | UserStatus::Disabled | UserStatus::Expired | UserStatus::Terminated
    )
}

/// The person as an actor of the portal or the API: their id and whether they are a platform
/// admin, read now.
pub async fn actor(ctx: &ServiceContext, user: &UserRecord) -> Result<Actor, StoreError> {
    Ok(Actor::User {
        id: user.id.clone(),
        platform_admin: ctx.store.is_platform_admin(&user.id).await?,
    })
}

/// An officer's registration: the terms they accepted, once (an account that is not
/// unregistered stays as it is). True if this call registered them; audited then.
pub async fn register(
    ctx: &ServiceContext,
    user: &UserRecord,
    terms_version: &str,
    upstream: &str,
    request_id: Option<String>,
) -> Result<bool, StoreError> {
    let now = ctx.clock.now().as_secs();
    let registered = ctx
        .store
        .register_user(&user.id, UserStatus::Registered, terms_version, now)
        .await?;
    if registered {
        audit(
            ctx,
            AuditRecord {
                at: now,
                event: "registration".into(),
                outcome: "success".into(),
                actor: Some(user.id.clone()),
                subject: Some(user.id.clone()),
                upstream: Some(upstream.to_string()),
                request_id,
                details: serde_json::json!({ "terms_version": terms_version, "email": user.email })
                    .to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    Ok(registered)
}

/// Whether the person accepted an earlier version of the terms of use than the current one
/// (`accounts.terms_version`), and so is asked to accept the new one before going on. People
/// with no recorded acceptance (not yet registered, or created by an operator's command) are
/// not: registration or the invitation asks them.
pub fn terms_outdated(ctx: &ServiceContext, user: &UserRecord) -> bool {
    user.status != UserStatus::Unregistered
        && user
            .terms_version
            .as_deref()
            .is_some_and(|accepted| accepted != ctx.settings.accounts.terms_version)
}

/// Records that a registered person accepted `terms_version`, which must be the current
/// version (a form shown before the version changed accepts nothing): audited as
/// `terms.accepted` with the version accepted before. False, writing nothing, otherwise.
pub async fn accept_terms(
    ctx: &ServiceContext,
    user: &UserRecord,
    terms_version: &str,
    request_id: Option<String>,
) -> Result<bool, StoreError> {
    if terms_version != ctx.settings.accounts.terms_version {
        return Ok(false);
    }
    let accepted = ctx.store.accept_terms(&user.id, terms_version).await?;
    if accepted {
        audit(
            ctx,
            AuditRecord {
                at: ctx.clock.now().as_secs(),
                event: "terms.accepted".into(),
                outcome: "success".into(),
                actor: Some(user.id.clone()),
                subject: Some(user.id.clone()),
                request_id,
                details: serde_json::json!({
                    "terms_version": terms_version,
                    "previous_version": user.terms_version,
                    "email": user.email,
                })
                .to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    Ok(accepted)
}

/// The person's own sessions, newest first.
pub async fn sessions(
    ctx: &ServiceContext,
    user_id: &str,
) -> Result<Vec<SessionRecord>, StoreError> {
    let mut sessions = ctx.store.sessions_of_user(user_id).await?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(sessions)
}

/// The enabled apps of active tenants the person is assigned to (directly or through a group
/// of the app's tenant), with their tenant. Apps open to every registered user are not listed.
pub async fn assigned_apps(
    ctx: &ServiceContext,
    user_id: &str,
) -> Result<Vec<(ClientRecord, TenantRecord)>, StoreError> {
    let mut apps = Vec::new();
    for app in ctx.store.apps_assigned_to(user_id).await? {
        let Some(tenant_id) = &app.tenant_id else {
            continue;
        };
        let Some(tenant) = ctx.store.get_tenant(tenant_id).await? else {
            continue;
        };
        if app.enabled && tenant.status == TenantStatus::Active {
            apps.push((app, tenant));
        }
    }
    Ok(apps)
}

/// How pages name the people behind `ids`: their email, else their name, else the id itself.
pub async fn labels(
    ctx: &ServiceContext,
    ids: &[String],
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut names = BTreeMap::new();
    for id in ids {
        if names.contains_key(id) {
            continue;
        }
        let label = ctx
            .store
            .get_user(id)
            .await?
            .and_then(|u| u.email.or(u.name))
            .unwrap_or_else(|| id.clone());
        names.insert(id.clone(), label);
    }
    Ok(names)
}

/// The ids a search names: the users with that email address, or the text itself (a user id,
/// `cli`, `app:<client id>`, or another subject id). Nobody with that email: the text itself,
/// so that a filter on it matches nothing.
pub async fn ids_named_by(ctx: &ServiceContext, text: &str) -> Result<Vec<String>, StoreError> {
    if !text.contains('@') {
        return Ok(vec![text.to_string()]);
    }
    let users = ctx.store.find_users_by_email(text).await?;
    Ok(if users.is_empty() {
        vec![text.to_string()]
    } else {
        users.into_iter().map(|u| u.id).collect()
    })
}

/// Platform admins search people by email, name or id.
pub async fn search(
    ctx: &ServiceContext,
    actor: &Actor,
    query: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRecord>, AccountError> {
    search_filtered(ctx, actor, query, None, None, limit, offset).await
}

/// As [`search`], only people with `status` (a registered officer and a vendor who accepted
/// an invitation are both live: `Registered` and `Active` find both) and of `account_type`.
pub async fn search_filtered(
    ctx: &ServiceContext,
    actor: &Actor,
    query: &str,
    status: Option<UserStatus>,
    account_type: Option<AccountType>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRecord>, AccountError> {
    if !actor.is_platform_admin() {
        return Err(AccountError::Forbidden("platform admins only"));
    }
    let statuses = match status {
        None => vec![],
        Some(UserStatus::Registered | UserStatus::Active) => {
            vec![UserStatus::Registered, UserStatus::Active]
        }
        Some(other) => vec![other],
    };
    Ok(ctx
        .store
        .search_users_filtered(
            query,
            &statuses,
            account_type.map(AccountType::as_str),
            limit,
            offset,
        )
        .await?)
}

/// A session as its person, or a platform admin, sees it: what tells it apart (browser,
/// address, the apps it signed in to) and the reference that names it in a form (a keyed hash
/// of its id, so pages never carry the id itself).
#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub record: SessionRecord,
    pub reference: String,
    /// The names of the apps the session signed in to, sorted.
    pub apps: Vec<String>,
}

const PURPOSE_SESSION_REF: &str = "session-reference";

fn session_reference(ctx: &ServiceContext, id_hash: &str) -> String {
    ctx.secrets
        .keyed_hash(PURPOSE_SESSION_REF, id_hash)
        .chars()
        .take(22)
        .collect()
}

/// The person's sessions, newest first, each with the apps it signed in to.
pub async fn session_details(
    ctx: &ServiceContext,
    user_id: &str,
) -> Result<Vec<SessionDetail>, StoreError> {
    let mut details = Vec::new();
    // App names by client id, each read once however many sessions used it.
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for record in sessions(ctx, user_id).await? {
        let mut apps = Vec::new();
        for grant in ctx.store.grants_of_session(&record.id_hash).await? {
            if !names.contains_key(&grant.client_id) {
                let name = ctx
                    .store
                    .get_client(&grant.client_id)
                    .await?
                    .map(|c| c.name);
                names.insert(grant.client_id.clone(), name);
            }
            if let Some(Some(name)) = names.get(&grant.client_id) {
                apps.push(name.clone());
            }
        }
        apps.sort();
        apps.dedup();
        details.push(SessionDetail {
            reference: session_reference(ctx, &record.id_hash),
            record,
            apps,
        });
    }
    Ok(details)
}

/// Ends one session of `user_id`, named by its reference: by the person themselves or by a
/// platform admin. The session is deleted, its grants revoked and its apps told (back-channel
/// logout, in the background), audited as `session.ended` with who ended it. False if the
/// person has no such session (already ended, or never theirs).
pub async fn end_one_session(
    ctx: &ServiceContext,
    actor: &Actor,
    user_id: &str,
    reference: &str,
    request_id: Option<String>,
) -> Result<bool, AccountError> {
    let own = matches!(actor, Actor::User { id, .. } if id == user_id);
    if !own && !actor.is_platform_admin() {
        return Err(AccountError::Forbidden(
            "only the person or a platform admin ends a session",
        ));
    }
    let Some(record) = sessions(ctx, user_id)
        .await?
        .into_iter()
        .find(|s| session_reference(ctx, &s.id_hash) == reference)
    else {
        return Ok(false);
    };
    let subject = format!("{}/{}", record.tenant_id, record.object_id);
    end_session(
        ctx,
        &SessionRef {
            id_hash: record.id_hash.clone(),
            user_id: record.user_id.clone(),
            subject,
            upstream: record.upstream.clone(),
        },
        request_id.clone(),
    )
    .await;
    audit(
        ctx,
        AuditRecord {
            at: ctx.clock.now().as_secs(),
            event: "session.ended".into(),
            outcome: "success".into(),
            actor: Some(actor.audit_name()),
            subject: Some(user_id.to_string()),
            upstream: Some(record.upstream.clone()),
            request_id,
            details: serde_json::json!({
                "by": if own { "the person" } else { "a platform admin" },
                "user_agent": record.user_agent,
                "address": record.address,
            })
            .to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    Ok(true)
}

/// Where a person belongs in one tenant, for an admin's view of them.
#[derive(Debug, Clone)]
pub struct TenantPlace {
    pub tenant: TenantRecord,
    pub admin: bool,
    pub member: bool,
    /// The person's groups in the tenant, by name.
    pub groups: Vec<String>,
}

/// Everything a platform admin sees of one person.
#[derive(Debug, Clone)]
pub struct PersonOverview {
    pub user: UserRecord,
    pub platform_admin: bool,
    pub tenants: Vec<TenantPlace>,
    pub sessions: Vec<SessionDetail>,
    /// The newest events about the person.
    pub events: Vec<AuditRecord>,
}

/// How many of a person's events their overview shows.
const OVERVIEW_EVENTS: u32 = 20;

/// A person's overview (platform admins only): status and type, tenants with their groups,
/// sessions, and recent events about them (by their id or their upstream identity).
pub async fn overview(
    ctx: &ServiceContext,
    actor: &Actor,
    user_id: &str,
) -> Result<PersonOverview, AccountError> {
    if !actor.is_platform_admin() {
        return Err(AccountError::Forbidden("platform admins only"));
    }
    let user = ctx
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(user_id.to_string()))?;
    let mut places: BTreeMap<String, TenantPlace> = BTreeMap::new();
    for tenant in ctx.store.tenants_of_admin(&user.id).await? {
        places.insert(
            tenant.id.clone(),
            TenantPlace {
                tenant,
                admin: true,
                member: false,
                groups: vec![],
            },
        );
    }
    for membership in ctx.store.memberships_of_user(&user.id).await? {
        if let Some(place) = places.get_mut(&membership.tenant_id) {
            place.member = true;
            continue;
        }
        if let Some(tenant) = ctx.store.get_tenant(&membership.tenant_id).await? {
            places.insert(
                tenant.id.clone(),
                TenantPlace {
                    tenant,
                    admin: false,
                    member: true,
                    groups: vec![],
                },
            );
        }
    }
    for place in places.values_mut() {
        place.groups = ctx
            .store
            .groups_of_user(&place.tenant.id, &user.id)
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
    }
    let mut events = Vec::new();
    for subject in [
        user.id.clone(),
        format!("{}/{}", user.tenant_id, user.object_id),
    ] {
        events.extend(
            ctx.store
                .list_audit(&techpass_store::AuditFilter {
                    subject: Some(subject),
                    limit: OVERVIEW_EVENTS,
                    ..Default::default()
                })
                .await?,
        );
    }
    events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    events.dedup_by_key(|e| e.id);
    events.truncate(OVERVIEW_EVENTS as usize);
    Ok(PersonOverview {
        platform_admin: ctx.store.is_platform_admin(&user.id).await?,
        tenants: places.into_values().collect(),
        sessions: session_details(ctx, &user.id).await?,
        events,
        user,
    })
}

/// An app that holds live grants of the person: what they see under "apps with access".
#[derive(Debug, Clone)]
pub struct GrantedApp {
    pub client_id: String,
    pub name: String,
    /// The app's tenant, or `None` for a platform app.
    pub tenant: Option<String>,
    /// When the oldest live grant was made.
    pub since: i64,
    /// Whether the app holds a refresh token (`offline_access`): it keeps access while the
    /// person is away.
    pub offline: bool,
}

/// The apps holding live grants of the person, by name.
pub async fn granted_apps(
    ctx: &ServiceContext,
    user_id: &str,
) -> Result<Vec<GrantedApp>, StoreError> {
    let now = ctx.clock.now().as_secs();
    let mut apps: BTreeMap<String, GrantedApp> = BTreeMap::new();
    for grant in ctx.store.live_grants_of_user(user_id, now).await? {
        let offline = grant.scope.split(' ').any(|s| s == "offline_access");
        if let Some(app) = apps.get_mut(&grant.client_id) {
            app.offline |= offline;
            continue;
        }
        let Some(client) = ctx.store.get_client(&grant.client_id).await? else {
            continue;
        };
        let tenant = match &client.tenant_id {
            Some(id) => ctx.store.get_tenant(id).await?.map(|t| t.name),
            None => None,
        };
        apps.insert(
            grant.client_id.clone(),
            GrantedApp {
                client_id: grant.client_id,
                name: client.name,
                tenant,
                since: grant.created_at,
                offline,
            },
        );
    }
    let mut apps: Vec<GrantedApp> = apps.into_values().collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(apps)
}

/// The person takes an app's access away: every live grant of theirs to it is revoked (its
/// refresh tokens stop working, its access tokens fail introspection), audited as
/// `grant.revoked`. The app can ask again at their next sign-in. Zero if it held none.
pub async fn revoke_app(
    ctx: &ServiceContext,
    user: &UserRecord,
    client_id: &str,
    request_id: Option<String>,
) -> Result<u64, StoreError> {
    let now = ctx.clock.now().as_secs();
    let revoked = ctx
        .store
        .revoke_grants_of_user_for_client(&user.id, client_id, now)
        .await?;
    if revoked > 0 {
        audit(
            ctx,
            AuditRecord {
                at: now,
                event: "grant.revoked".into(),
                outcome: "success".into(),
                actor: Some(user.id.clone()),
                subject: Some(user.id.clone()),
                request_id,
                details: serde_json::json!({ "client_id": client_id, "grants": revoked, "by": "the person" })
                    .to_string(),
                ..AuditRecord::default()
            },
        )
        .await;
    }
    Ok(revoked)
}
