//! The platform admins' pages under `/portal/admin`: the onboarding queue (approve, or reject
//! with a reason), every tenant (suspend with a reason, reinstate), people (search, suspend
//! with a reason, reinstate, re-enable a disabled account, exempt from the lifecycle jobs) and the signing keys (list,
//! rotate). Each handler checks the person is a platform admin first, then calls the one
//! service function ([`crate::tenancy::tenants::decide`], [`crate::accounts`], the key manager).
//! It must not change a tenant's or a person's state by any other path.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::account::AccountType;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{TenantAction, TenantStatus};
use techpass_oidc::KeyError;
use techpass_store::UserRecord;

use super::account::account_type_label;
use super::tenants::TenantView;
use super::{
    confirm, datetime, done, emails_of, error_page, fill, form_failure, paths, render, trim,
    window, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::accounts::{self, AccountError};
use crate::state::AppState;
use crate::tenancy::tenants;
use crate::tenancy::{require_platform_admin, TenancyError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ADMIN, get(index))
        .route(paths::ADMIN_QUEUE, get(queue))
        .route(paths::ADMIN_TENANTS, get(all_tenants))
        .route(paths::ADMIN_DECISION, post(decide))
        .route(paths::ADMIN_USERS, get(users))
        .route(paths::ADMIN_USER, get(person_page))
        .route(paths::ADMIN_USER_SESSION_END, post(end_person_session))
        .route(paths::ADMIN_USER_PLATFORM_ADMIN, post(platform_admin_role))
        .route(paths::ADMIN_USER_SUSPEND, post(suspend))
        .route(paths::ADMIN_USER_REINSTATE, post(reinstate))
        .route(paths::ADMIN_USER_ENABLE, post(enable))
        .route(paths::ADMIN_USER_EXEMPT, post(exempt))
        .route(paths::ADMIN_KEYS, get(keys))
        .route(paths::ADMIN_KEYS_ROTATE, post(rotate))
        .route(paths::ADMIN_KEYS_RETIRE, post(retire_now))
}

/// Platform admins only: the page saying so for anyone else.
fn platform_admin(state: &AppState, me: &Me) -> Result<(), Response> {
    require_platform_admin(&me.actor).map_err(|e| error_page(state, e))
}

async fn index(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    platform_admin(&state, &me)?;
    let q = Fields::query(q);
    let waiting = tenants::list(
        &state,
        &me.actor,
        Some(TenantStatus::Requested),
        (super::PER_PAGE + 1) as i64,
        0,
    )
    .await
    .map_err(|e| error_page(&state, e))?
    .len();
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/admin.html",
        minijinja::context! {
            waiting => waiting,
            more_waiting => waiting > super::PER_PAGE,
            sections => minijinja::context! {
                queue => paths::ADMIN_QUEUE, tenants => paths::ADMIN_TENANTS,
                users => paths::ADMIN_USERS, keys => paths::ADMIN_KEYS, audit => paths::ADMIN_AUDIT,
            },
        },
    ))
}

#[derive(Debug, Serialize)]
struct TenantRow {
    tenant: TenantView,
    requester: String,
    decide: String,
}

/// Tenants with a status (any when `None`), one page, for the queue and the tenants list.
async fn tenant_rows(
    state: &AppState,
    me: &Me,
    status: Option<TenantStatus>,
    page: u32,
) -> Result<(Vec<TenantRow>, bool), Response> {
    let (limit, offset) = window(page);
    let found = tenants::list(state, &me.actor, status, limit, offset)
        .await
        .map_err(|e| error_page(state, e))?;
    let (found, more) = trim(found);
    let ids: Vec<String> = found.iter().map(|t| t.requested_by.clone()).collect();
    let names = emails_of(state, &ids).await?;
    let rows = found
        .iter()
        .map(|t| TenantRow {
            tenant: TenantView::from(t),
            requester: names
                .get(&t.requested_by)
                .cloned()
                .unwrap_or_else(|| t.requested_by.clone()),
            decide: fill(paths::ADMIN_DECISION, &[("tenant_id", &t.id)]),
        })
        .collect();
    Ok((rows, more))
}

async fn queue(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    show_queue(&state, &me, q.page(), Flash::from_query(&q)).await
}

async fn show_queue(state: &AppState, me: &Me, page: u32, flash: Flash) -> Page {
    platform_admin(state, me)?;
    let (rows, more) = tenant_rows(state, me, Some(TenantStatus::Requested), page).await?;
    Ok(render(
        state,
        me,
        &flash,
        "portal/admin_queue.html",
        minijinja::context! {
            requests => rows,
            admin_section => "queue",
            pager => Pager::new(paths::ADMIN_QUEUE, &[], page, more),
        },
    ))
}

async fn all_tenants(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    let status = q.opt("status");
    show_tenants(
        &state,
        &me,
        status.as_deref(),
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show_tenants(
    state: &AppState,
    me: &Me,
    status: Option<&str>,
    page: u32,
    flash: Flash,
) -> Page {
    platform_admin(state, me)?;
    let status = status.and_then(TenantStatus::parse);
    let (rows, more) = tenant_rows(state, me, status, page).await?;
    let status_name = status.map(TenantStatus::as_str).unwrap_or("");
    let statuses: Vec<&str> = TenantStatus::ALL.iter().map(|s| s.as_str()).collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/admin_tenants.html",
        minijinja::context! {
            tenants => rows,
            status => status_name,
            statuses => statuses,
            action => paths::ADMIN_TENANTS,
            admin_section => "tenants",
            pager => Pager::new(paths::ADMIN_TENANTS, &[("status", status_name)], page, more),
        },
    ))
}

/// Approve, reject (with a reason, asks first), suspend (with a reason, asks first) or
/// reinstate; back to the queue or the tenants list the form came from.
async fn decide(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let from_queue = fields.get("back") == Some("queue");
    let back = if from_queue {
        paths::ADMIN_QUEUE
    } else {
        paths::ADMIN_TENANTS
    };
    let (action, key) = match fields.get("action") {
        Some("approve") => (TenantAction::Approve, "tenant-approved"),
        Some("reject") => (TenantAction::Reject, "tenant-rejected"),
        Some("suspend") => (TenantAction::Suspend, "tenant-suspended"),
        Some("reinstate") => (TenantAction::Reinstate, "tenant-reinstated"),
        _ => {
            return Err(error_page(
                &state,
                TenancyError::Invalid("the form names no decision".into()),
            ))
        }
    };
    let reason = fields.opt("reason");
    if action.needs_reason() && !fields.confirmed() {
        if reason.is_none() {
            let error =
                TenancyError::Invalid("Give a reason: the tenant's people are told it.".into());
            return decision_failed(&state, &me, from_queue, &fields, error).await;
        }
        let tenant = tenants::get(&state, &me.actor, &tenant_id)
            .await
            .map_err(|e| error_page(&state, e))?;
        let (title, text, button) = if action == TenantAction::Reject {
            (
                format!("Reject the request for {}?", tenant.name),
                "The requester is told by email, with your reason. They can request again.",
                "Reject the request",
            )
        } else {
            (
                format!("Suspend the tenant {}?", tenant.name),
                "Its apps sign nobody in, and their tokens stop working at the next refresh, until it is reinstated. Its admins are told by email, with your reason.",
                "Suspend the tenant",
            )
        };
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title,
                text: text.into(),
                items: reason.iter().map(|r| format!("Reason: {r}")).collect(),
                action: fill(paths::ADMIN_DECISION, &[("tenant_id", &tenant.id)]),
                button,
                cancel: back.into(),
            },
        ));
    }
    match tenants::decide(&state, &me.actor, &tenant_id, action, reason.as_deref()).await {
        Ok(_) => Ok(done(back, key)),
        Err(e) => decision_failed(&state, &me, from_queue, &fields, e).await,
    }
}

/// The page the decision form came from, with why it did nothing.
async fn decision_failed(
    state: &AppState,
    me: &Me,
    from_queue: bool,
    fields: &Fields,
    error: TenancyError,
) -> Page {
    let flash = form_failure(state, error, fields)?;
    if from_queue {
        show_queue(state, me, 1, flash).await
    } else {
        show_tenants(state, me, None, 1, flash).await
    }
}

#[derive(Debug, Serialize)]
struct UserRow {
    href: String,
    id: String,
    email: Option<String>,
    name: Option<String>,
    account_type: &'static str,
    status: String,
    status_reason: Option<String>,
    exempt: bool,
    last_signin: String,
    suspended: bool,
    disabled: bool,
    is_me: bool,
    suspend: String,
    reinstate: String,
    enable: String,
    exempt_action: String,
}

async fn users(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    let status = match q.text("status").as_str() {
        "" => None,
        text => Some(UserStatus::parse(text).ok_or_else(|| {
            error_page(
                &state,
                TenancyError::Invalid(format!("there is no account status {text:?}")),
            )
        })?),
    };
    let kind = match q.text("type").as_str() {
        "" => None,
        "public_officer" => Some(AccountType::PublicOfficer),
        "vendor" => Some(AccountType::Vendor),
        text => {
            return Err(error_page(
                &state,
                TenancyError::Invalid(format!("there is no account type {text:?}")),
            ))
        }
    };
    show_users_filtered(
        &state,
        &me,
        &q.text("q"),
        (status, kind),
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show_users(state: &AppState, me: &Me, query: &str, page: u32, flash: Flash) -> Page {
    show_users_filtered(state, me, query, (None, None), page, flash).await
}

/// The statuses the people filter offers: one "Active" for registered officers and vendors
/// who accepted an invitation.
const STATUS_FILTERS: [UserStatus; 6] = [
    UserStatus::Active,
    UserStatus::Unregistered,
    UserStatus::Suspended,
    UserStatus::Disabled,
    UserStatus::Expired,
    UserStatus::Terminated,
];

async fn show_users_filtered(
    state: &AppState,
    me: &Me,
    query: &str,
    (status, kind): (Option<UserStatus>, Option<AccountType>),
    page: u32,
    flash: Flash,
) -> Page {
    platform_admin(state, me)?;
    let (limit, offset) = window(page);
    let found = accounts::search_filtered(state, &me.actor, query, status, kind, limit, offset)
        .await
        .map_err(|e| account_failure(state, e))?;
    let (found, more) = trim(found);
    let rows: Vec<UserRow> = found
        .into_iter()
        .map(|u| {
            let ids = [("user_id", u.id.as_str())];
            UserRow {
                href: fill(paths::ADMIN_USER, &ids),
                suspend: fill(paths::ADMIN_USER_SUSPEND, &ids),
                reinstate: fill(paths::ADMIN_USER_REINSTATE, &ids),
                enable: fill(paths::ADMIN_USER_ENABLE, &ids),
                disabled: u.status == UserStatus::Disabled,
                exempt_action: fill(paths::ADMIN_USER_EXEMPT, &ids),
                suspended: u.status == UserStatus::Suspended,
                is_me: u.id == me.user.id,
                account_type: account_type_label(&u.account_type),
                last_signin: datetime(
                    u.app_signin_at
                        .map_or(u.last_signin_at, |a| a.max(u.last_signin_at)),
                ),
                id: u.id,
                email: u.email,
                name: u.name,
                status: u.status.label().to_string(),
                status_reason: u.status_reason,
                exempt: u.exempt,
            }
        })
        .collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/admin_users.html",
        minijinja::context! {
            users => rows,
            query => query,
            status => status.map(|s| if s == UserStatus::Registered { "active" } else { s.as_str() }).unwrap_or(""),
            statuses => STATUS_FILTERS.iter().map(|s| minijinja::context! { value => s.as_str(), label => s.label() }).collect::<Vec<_>>(),
            account_type => kind.map(AccountType::as_str).unwrap_or(""),
            action => paths::ADMIN_USERS,
            admin_section => "users",
            pager => Pager::new(
                paths::ADMIN_USERS,
                &[
                    ("q", query),
                    ("status", status.map(UserStatus::as_str).unwrap_or("")),
                    ("type", kind.map(AccountType::as_str).unwrap_or("")),
                ],
                page,
                more,
            ),
        },
    ))
}

#[derive(Debug, Serialize)]
struct PlaceRow {
    name: String,
    href: String,
    role: &'static str,
    groups: String,
}

#[derive(Debug, Serialize)]
struct EventRow {
    when: String,
    event: String,
    outcome: String,
    reason: String,
    by: String,
}

/// One person: status and type, tenants with their groups, sessions (each can be ended) and
/// their latest events.
async fn person_page(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    platform_admin(&state, &me)?;
    let q = Fields::query(q);
    let overview = accounts::overview(&state, &me.actor, &user_id)
        .await
        .map_err(|e| account_failure(&state, e))?;
    let u = &overview.user;
    let tenants: Vec<PlaceRow> = overview
        .tenants
        .iter()
        .map(|p| PlaceRow {
            name: p.tenant.name.clone(),
            href: fill(paths::TENANT, &[("tenant_id", &p.tenant.id)]),
            role: match (p.admin, p.member) {
                (true, _) => "Admin",
                (false, true) => "Member",
                _ => "",
            },
            groups: p.groups.join(", "),
        })
        .collect();
    let sessions: Vec<super::account::SessionRow> = overview
        .sessions
        .into_iter()
        .map(|d| {
            let end = fill(
                paths::ADMIN_USER_SESSION_END,
                &[("user_id", &u.id), ("reference", &d.reference)],
            );
            super::account::SessionRow::new(&state, d, Some(&me.session.id_hash), end)
        })
        .collect();
    let events: Vec<EventRow> = overview
        .events
        .iter()
        .map(|e| EventRow {
            when: datetime(e.at),
            event: e.event.clone(),
            outcome: e.outcome.clone(),
            reason: e.reason.clone().unwrap_or_default(),
            by: match e.actor.as_deref() {
                Some(a) if a == u.id => "themselves".to_string(),
                Some(a) => a.to_string(),
                None => String::new(),
            },
        })
        .collect();
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/admin_user.html",
        minijinja::context! {
            person => minijinja::context! {
                id => u.id,
                name => u.name,
                email => u.email,
                account_type => account_type_label(&u.account_type),
                status => u.status.label(),
                status_reason => u.status_reason,
                registered => u.registered_at.map(datetime),
                last_signin => datetime(u.app_signin_at.map_or(u.last_signin_at, |a| a.max(u.last_signin_at))),
                access_ends => u.access_ends_at.map(datetime),
                exempt => u.exempt,
                platform_admin => overview.platform_admin,
                live => matches!(u.status, UserStatus::Registered | UserStatus::Active),
            },
            tenants => tenants,
            sessions => sessions,
            events => events,
            audit => format!("{}?subject={}", paths::ADMIN_AUDIT, u.id),
            is_me => u.id == me.user.id,
            role_action => fill(paths::ADMIN_USER_PLATFORM_ADMIN, &[("user_id", &u.id)]),
            back => paths::ADMIN_USERS,
            admin_section => "users",
        },
    ))
}

/// A platform admin makes another person a platform admin, or takes the role away, after a
/// confirmation; never their own role.
async fn platform_admin_role(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    let grant = match fields.text("grant").as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Err(error_page(
                &state,
                TenancyError::Invalid(
                    "say whether to grant (yes) or take away (no) the role".into(),
                ),
            ))
        }
    };
    let back = fill(paths::ADMIN_USER, &[("user_id", &user.id)]);
    let who = user.email.clone().unwrap_or(user.id.clone());
    if !fields.confirmed() {
        let (title, text, button) = if grant {
            (
                format!("Make {who} a platform admin?"),
                "They will approve and suspend tenants, suspend people, end anyone's sessions, rotate and retire signing keys and read the whole audit log.",
                "Make platform admin",
            )
        } else {
            (
                format!("Take the platform admin role from {who}?"),
                "They keep their account and their tenants, but lose the platform admin pages at their next request.",
                "Remove platform admin",
            )
        };
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title,
                text: text.into(),
                items: vec![],
                action: fill(paths::ADMIN_USER_PLATFORM_ADMIN, &[("user_id", &user.id)]),
                button,
                cancel: back,
            },
        ));
    }
    let changed = if grant {
        tenants::grant_platform_admin_to_other(&state, &me.actor, &user).await
    } else {
        tenants::revoke_platform_admin(&state, &me.actor, &user).await
    };
    changed.map_err(|e| error_page(&state, e))?;
    Ok(done(
        &back,
        if grant {
            "platform-admin-granted"
        } else {
            "platform-admin-revoked"
        },
    ))
}

/// A platform admin ends one session of a person (a lost laptop, a shared machine).
async fn end_person_session(
    State(state): State<AppState>,
    Path((user_id, reference)): Path<(String, String)>,
    Posted { me, fields: _ }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    let ended = accounts::end_one_session(&state, &me.actor, &user.id, &reference, None)
        .await
        .map_err(|e| account_failure(&state, e))?;
    if !ended {
        return Err(error_page(&state, TenancyError::NotFound("session")));
    }
    Ok(done(
        &fill(paths::ADMIN_USER, &[("user_id", &user.id)]),
        "session-ended",
    ))
}

/// The users page the form came from, with its search.
fn users_href(fields: &Fields) -> String {
    let q = fields.text("q");
    if q.is_empty() {
        paths::ADMIN_USERS.to_string()
    } else {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &q);
        format!("{}?{}", paths::ADMIN_USERS, s.finish())
    }
}

/// The person a form names, or the page saying there is none.
async fn person(state: &AppState, user_id: &str) -> Result<UserRecord, Response> {
    accounts::get(state, user_id)
        .await
        .map_err(|e| error_page(state, e.into()))?
        .ok_or_else(|| error_page(state, TenancyError::NotFound("user")))
}

pub(super) fn account_failure(state: &AppState, e: AccountError) -> Response {
    match e {
        AccountError::Store(s) => error_page(state, s.into()),
        AccountError::NotFound(_) => error_page(state, TenancyError::NotFound("user")),
        AccountError::Forbidden(why) => error_page(state, TenancyError::Forbidden(why)),
        other => error_page(state, TenancyError::Invalid(other.to_string())),
    }
}

async fn suspend(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    let back = users_href(&fields);
    let query = fields.text("q");
    let refuse = |message: &str| {
        let flash = Flash::error(StatusCode::BAD_REQUEST, message, &fields);
        show_users(&state, &me, &query, 1, flash)
    };
    if user.id == me.user.id {
        return refuse("You cannot suspend yourself; ask another platform admin.").await;
    }
    let Some(reason) = fields.opt("reason") else {
        return refuse(
            "Give a reason for the suspension: it is kept with the account and in the audit log.",
        )
        .await;
    };
    if !fields.confirmed() {
        let who = user.email.clone().unwrap_or(user.id.clone());
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Suspend {who}?"),
                text: "Their sessions end at once (apps are told by back-channel logout), every grant is revoked, and no app signs them in until they are reinstated.".into(),
                items: vec![format!("Reason: {reason}")],
                action: fill(paths::ADMIN_USER_SUSPEND, &[("user_id", &user.id)]),
                button: "Suspend",
                cancel: back,
            },
        ));
    }
    // Back-channel logouts continue in the background.
    drop(
        accounts::suspend(&state, &user, &reason, &me.actor.audit_name())
            .await
            .map_err(|e| account_failure(&state, e))?,
    );
    Ok(done(&back, "user-suspended"))
}

async fn reinstate(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    if user.status != UserStatus::Suspended {
        let flash = Flash::error(
            StatusCode::CONFLICT,
            format!("That account is {}, not suspended.", user.status.as_str()),
            &fields,
        );
        return show_users(&state, &me, &fields.text("q"), 1, flash).await;
    }
    accounts::reinstate(&state, &user, &me.actor.audit_name())
        .await
        .map_err(|e| account_failure(&state, e))?;
    Ok(done(&users_href(&fields), "user-reinstated"))
}

/// Re-enables a disabled account; any other status is said on the people page (409).
async fn enable(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    match accounts::enable(&state, &me.actor, &user.id).await {
        Ok(_) => Ok(done(&users_href(&fields), "user-enabled")),
        Err(AccountError::WrongStatus(message)) => {
            let flash = Flash::error(StatusCode::CONFLICT, message, &fields);
            show_users(&state, &me, &fields.text("q"), 1, flash).await
        }
        Err(e) => Err(account_failure(&state, e)),
    }
}

async fn exempt(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    platform_admin(&state, &me)?;
    let user = person(&state, &user_id).await?;
    let on = fields.get("exempt") == Some("yes");
    accounts::set_exempt(&state, &user, on, &me.actor.audit_name())
        .await
        .map_err(|e| account_failure(&state, e))?;
    Ok(done(
        &users_href(&fields),
        if on {
            "user-exempted"
        } else {
            "user-unexempted"
        },
    ))
}

#[derive(Debug, Serialize)]
struct KeyRow {
    algorithm: &'static str,
    key_type: &'static str,
    kid: String,
    generation: i64,
    state: &'static str,
    created: String,
    activates: String,
    published_until: Option<String>,
}

async fn keys(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    show_keys(&state, &me, Flash::from_query(&q))
}

fn show_keys(state: &AppState, me: &Me, flash: Flash) -> Page {
    platform_admin(state, me)?;
    let rows: Vec<KeyRow> = state
        .keys
        .statuses()
        .into_iter()
        .rev()
        .map(|k| KeyRow {
            algorithm: k.algorithm.as_str(),
            key_type: k.key_type,
            kid: k.kid,
            generation: k.generation,
            state: k.state,
            created: datetime(k.created_at),
            activates: datetime(k.activates_at),
            published_until: k.published_until.map(datetime),
        })
        .collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/admin_keys.html",
        minijinja::context! {
            keys => rows,
            action => paths::ADMIN_KEYS_ROTATE,
            retire => paths::ADMIN_KEYS_RETIRE,
            delay_minutes => state.config.keys.prepublication_delay_secs / 60,
            admin_section => "keys",
        },
    ))
}

/// Emergency retirement of a key believed compromised: a confirmation that says what follows,
/// then [`techpass_oidc::KeyManager::retire_now`], audited as `key.retired_now`.
async fn retire_now(State(state): State<AppState>, Posted { me, fields }: Posted) -> Page {
    platform_admin(&state, &me)?;
    let kid = fields.text("kid");
    let Some(key) = state.keys.statuses().into_iter().find(|k| k.kid == kid) else {
        let flash = Flash::error(
            StatusCode::NOT_FOUND,
            "No published key has that id: it may have been retired already.".to_string(),
            &fields,
        );
        return show_keys(&state, &me, flash);
    };
    let alg = key.algorithm.as_str();
    if !fields.confirmed() {
        let mut items = Vec::new();
        if key.state == "active" {
            items.push(format!(
                "A new {alg} key is created and signs at once, without the usual {} minutes of pre-publication: apps that cached the key set must fetch it again (most libraries do when they meet an unknown key id). {alg} keys still pending are withdrawn with it.",
                state.config.keys.prepublication_delay_secs / 60
            ));
        }
        items.push(
            "Every ID token and access token this key signed stops verifying: at once at TechPass's userinfo and introspection, at apps once they fetch the key set again. Apps get new tokens with their refresh tokens; some people may have to sign in again.".into(),
        );
        items.push(format!(
            "Other replicas stop publishing it within {} seconds (keys.reload_interval_secs).",
            state.config.keys.reload_interval_secs
        ));
        items.push("Keys of other algorithms, and apps that use them, are not affected.".into());
        return Ok(super::forms::confirm(
            &state,
            &me,
            &fields,
            super::forms::Confirm {
                title: format!("Retire the {alg} key {kid} now?"),
                text: format!(
                    "Only for a key you believe is compromised. The key ({}, {}) is deleted at once: it is no longer published in the JWKS and nothing it signed verifies any more. This cannot be undone.",
                    key.key_type, key.state
                ),
                items,
                action: paths::ADMIN_KEYS_RETIRE.into(),
                button: "Retire the key now",
                cancel: paths::ADMIN_KEYS.into(),
            },
        ));
    }
    match state.keys.retire_now(&kid).await {
        Ok(retirement) => {
            crate::tenancy::audit(
                &state,
                &me.actor,
                "key.retired_now",
                None,
                Some(&retirement.kid),
                serde_json::json!({
                    "algorithm": alg,
                    "was": retirement.was,
                    "replacement": retirement.replacement.as_ref().map(|r| r.kid.clone()),
                    "withdrawn": retirement.withdrawn,
                }),
            )
            .await;
            Ok(done(paths::ADMIN_KEYS, "key-retired"))
        }
        Err(KeyError::UnknownKey(_)) => {
            let flash = Flash::error(
                StatusCode::NOT_FOUND,
                "No published key has that id: it may have been retired already.".to_string(),
                &fields,
            );
            show_keys(&state, &me, flash)
        }
        Err(e @ KeyError::ConcurrentRotation { .. }) => {
            let flash = Flash::error(
                StatusCode::CONFLICT,
                format!("The key was not retired: {e}. Look at the keys again and retry."),
                &fields,
            );
            show_keys(&state, &me, flash)
        }
        Err(e) => {
            tracing::error!(error = %e, "emergency key retirement failed");
            Err(super::problem(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The key was not retired",
                "TechPass could not retire the key. Try again; if it persists, check the logs. Meanwhile the key is still published.",
            ))
        }
    }
}

async fn rotate(State(state): State<AppState>, Posted { me, fields }: Posted) -> Page {
    platform_admin(&state, &me)?;
    let force = fields.checked("force");
    match state.keys.rotate(force).await {
        Ok(rotations) => {
            for rotation in rotations {
                crate::tenancy::audit(
                    &state,
                    &me.actor,
                    "key.rotated",
                    None,
                    Some(&rotation.kid),
                    serde_json::json!({
                        "algorithm": rotation.alg,
                        "generation": rotation.generation,
                        "activates_at": rotation.activates_at.as_secs(),
                        "force": force,
                    }),
                )
                .await;
            }
            Ok(done(paths::ADMIN_KEYS, "key-rotated"))
        }
        Err(e @ (KeyError::Refused(_) | KeyError::ConcurrentRotation { .. })) => {
            let flash = Flash::error(StatusCode::CONFLICT, format!("No new key: {e}."), &fields);
            show_keys(&state, &me, flash)
        }
        Err(e) => {
            tracing::error!(error = %e, "key rotation failed");
            Err(super::problem(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The key was not rotated",
                "TechPass could not create a new signing key. Try again later; if it persists, check the logs.",
            ))
        }
    }
}
