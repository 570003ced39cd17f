//! Who may use an app: its user and group assignments (assign a person by email or a group of
//! the tenant; removing asks first), its roles (define, grant, take away) and the access review
//! (everyone with access and their last sign-in; remove the selected people's direct access
//! after a confirmation), and access granted by email before a person's first sign-in (listed,
//! withdrawn after a confirmation). Thin handlers over [`crate::tenancy::access`]; it must not work out
//! who has access itself.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_store::PRINCIPAL_USER;

use super::account::account_type_label;
use super::apps::{administered_app, app_context};
use super::{
    confirm, date, datetime, done, emails_of, error_page, fill, form_failure, paths,
    person_on_form, render, slice, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::state::AppState;
use crate::tenancy::access::{self, Principal};
use crate::tenancy::pending;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ACCESS, get(page))
        .route(paths::ASSIGN, post(assign))
        .route(paths::UNASSIGN, post(unassign))
        .route(paths::ROLES, post(define_role))
        .route(paths::ROLE_GRANT, post(grant_role))
        .route(paths::EMAIL_GRANT, post(grant_by_email))
        .route(paths::EMAIL_GRANT_REVOKE, post(revoke_email_grant))
        .route(paths::REVIEW, get(review).post(remove_selected))
        .route(paths::REVIEW_COMPLETE, post(complete_review))
}

#[derive(Debug, Serialize)]
struct AssignmentRow {
    kind: &'static str,
    id: String,
    label: String,
    assigned: String,
    assigned_by: String,
}

#[derive(Debug, Serialize)]
struct GroupOption {
    id: String,
    name: String,
}

/// The principal a form names: `type=user` with `who` (an email or user id), or `type=group`
/// with `group_id`; `None` when the form left it empty.
fn principal(fields: &Fields) -> Option<Principal> {
    match fields.get("type") {
        Some("group") => fields.opt("group_id").map(Principal::Group),
        _ => fields.opt("who").map(Principal::User),
    }
}

async fn page(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show(
        &state,
        &me,
        &tenant_id,
        &client_id,
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    client_id: &str,
    page: u32,
    flash: Flash,
) -> Page {
    let (tenant, app) = administered_app(state, me, tenant_id, client_id).await?;
    let failed = |e| error_page(state, e);
    let assignments = access::assignments(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(failed)?;
    let groups = access::groups(state, &me.actor, tenant_id)
        .await
        .map_err(failed)?;
    let roles = access::roles(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(failed)?;
    let grants = access::role_grants(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(failed)?;
    let email_grants = pending::of_app(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(failed)?;
    let group_names: BTreeMap<String, String> = groups
        .iter()
        .map(|g| (g.id.clone(), g.name.clone()))
        .collect();
    let (assignments, more) = slice(assignments, page);
    let mut ids: Vec<String> = assignments
        .iter()
        .filter(|a| a.principal_type == PRINCIPAL_USER)
        .map(|a| a.principal_id.clone())
        .collect();
    ids.extend(assignments.iter().map(|a| a.assigned_by.clone()));
    ids.extend(email_grants.iter().map(|g| g.granted_by.clone()));
    ids.extend(
        grants
            .iter()
            .filter(|g| g.principal_type == PRINCIPAL_USER)
            .map(|g| g.principal_id.clone()),
    );
    // Only people the tenant may see are named.
    let names = access::labels(state, tenant_id, &ids)
        .await
        .map_err(failed)?;
    let holder_of: Vec<(String, String)> = grants
        .iter()
        .map(|g| {
            let who = if g.principal_type == PRINCIPAL_USER {
                names.get(&g.principal_id).cloned()
            } else {
                group_names
                    .get(&g.principal_id)
                    .map(|n| format!("{}:{n} (group)", tenant.slug))
            };
            (
                g.role.clone(),
                who.unwrap_or_else(|| g.principal_id.clone()),
            )
        })
        .collect();
    let role_rows: Vec<minijinja::Value> = roles
        .iter()
        .map(|r| {
            let held: Vec<&str> = holder_of
                .iter()
                .filter(|(role, _)| role == r)
                .map(|(_, who)| who.as_str())
                .collect();
            minijinja::context! { name => r, held => held }
        })
        .collect();
    let rows: Vec<AssignmentRow> = assignments
        .into_iter()
        .map(|a| {
            let user = a.principal_type == PRINCIPAL_USER;
            AssignmentRow {
                kind: if user { "user" } else { "group" },
                label: if user {
                    names.get(&a.principal_id).cloned()
                } else {
                    group_names
                        .get(&a.principal_id)
                        .map(|n| format!("{}:{n}", tenant.slug))
                }
                .unwrap_or_else(|| a.principal_id.clone()),
                assigned: date(a.assigned_at),
                assigned_by: names
                    .get(&a.assigned_by)
                    .cloned()
                    .unwrap_or_else(|| a.assigned_by.clone()),
                id: a.principal_id,
            }
        })
        .collect();
    let email_rows: Vec<minijinja::Value> = email_grants
        .into_iter()
        .map(|g| {
            minijinja::context! {
                id => g.id,
                email => g.email,
                granted => date(g.granted_at),
                granted_by => names.get(&g.granted_by).cloned().unwrap_or(g.granted_by),
            }
        })
        .collect();
    let options: Vec<GroupOption> = groups
        .into_iter()
        .map(|g| GroupOption {
            name: format!("{}:{}", tenant.slug, g.name),
            id: g.id,
        })
        .collect();
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    let here = fill(paths::ACCESS, &ids);
    Ok(render(
        state,
        me,
        &flash,
        "portal/access.html",
        minijinja::context! {
            assignments => rows,
            groups => options,
            roles => roles,
            role_rows => role_rows,
            assign_action => fill(paths::ASSIGN, &ids),
            unassign_action => fill(paths::UNASSIGN, &ids),
            roles_action => fill(paths::ROLES, &ids),
            grant_action => fill(paths::ROLE_GRANT, &ids),
            email_grants => email_rows,
            email_grant_action => fill(paths::EMAIL_GRANT, &ids),
            email_revoke_action => fill(paths::EMAIL_GRANT_REVOKE, &ids),
            groups_href => fill(paths::GROUPS, &[("tenant_id", &tenant.id)]),
            pager => Pager::new(&here, &[], page, more),
            ..app_context(&tenant, &app, "access")
        },
    ))
}

fn missing(fields: &Fields, what: &str) -> Flash {
    Flash::error(StatusCode::BAD_REQUEST, format!("Enter {what}."), fields)
}

async fn assign(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let Some(who) = principal(&fields) else {
        let flash = missing(&fields, "the person's email address, or choose a group");
        return show(&state, &me, &tenant_id, &client_id, 1, flash).await;
    };
    match access::assign(&state, &me.actor, &tenant_id, &client_id, &who).await {
        Ok(()) => Ok(done(
            &fill(
                paths::ACCESS,
                &[("tenant_id", &tenant_id), ("client_id", &client_id)],
            ),
            "assigned",
        )),
        Err(e) => {
            let flash = form_failure(&state, person_on_form(e), &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}

async fn unassign(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    let Some(who) = principal(&fields) else {
        return Err(error_page(
            &state,
            crate::tenancy::TenancyError::Invalid("the form names nobody to remove".into()),
        ));
    };
    if !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        let label = match &who {
            Principal::User(id) => emails_of(&state, std::slice::from_ref(id))
                .await?
                .remove(id)
                .unwrap_or_else(|| id.clone()),
            Principal::Group(id) => {
                let groups = access::groups(&state, &me.actor, &tenant_id)
                    .await
                    .map_err(|e| error_page(&state, e))?;
                let name = groups
                    .into_iter()
                    .find(|g| &g.id == id)
                    .map_or(id.clone(), |g| g.name);
                format!("the group {name}")
            }
        };
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Remove {label} from {}?", app.name),
                text: "Their assignment and the roles given with it are removed. People who have access only through it cannot sign in to the app any more; their tokens stop working at the next refresh.".into(),
                items: vec![],
                action: fill(paths::UNASSIGN, &ids),
                button: "Remove access",
                cancel: fill(paths::ACCESS, &ids),
            },
        ));
    }
    access::unassign(&state, &me.actor, &tenant_id, &client_id, &who)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(&fill(paths::ACCESS, &ids), "unassigned"))
}

/// Access by email for someone who may not have signed in yet; the answer is the same whether
/// or not the address has an account.
async fn grant_by_email(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let Some(email) = fields.opt("email") else {
        let flash = missing(&fields, "the person's email address");
        return show(&state, &me, &tenant_id, &client_id, 1, flash).await;
    };
    match pending::grant_app_access(&state, &me.actor, &tenant_id, &client_id, &email).await {
        Ok(_) => Ok(done(
            &fill(
                paths::ACCESS,
                &[("tenant_id", &tenant_id), ("client_id", &client_id)],
            ),
            "email-granted",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}

/// Withdraws access granted by email that is still waiting (asking first).
async fn revoke_email_grant(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    let failed = |e| error_page(&state, e);
    let grant_id = fields.text("grant_id");
    let grant = pending::of_app(&state, &me.actor, &tenant_id, &client_id)
        .await
        .map_err(failed)?
        .into_iter()
        .find(|g| g.id == grant_id)
        .ok_or_else(|| failed(crate::tenancy::TenancyError::NotFound("pending grant")))?;
    if !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Withdraw the access of {} to {}?", grant.email, app.name),
                text: "The grant is still waiting for their sign-in; withdrawn, it gives nothing."
                    .into(),
                items: vec![],
                action: fill(paths::EMAIL_GRANT_REVOKE, &ids),
                button: "Withdraw",
                cancel: fill(paths::ACCESS, &ids),
            },
        ));
    }
    pending::revoke(&state, &me.actor, &tenant_id, &grant.id)
        .await
        .map_err(failed)?;
    Ok(done(&fill(paths::ACCESS, &ids), "email-grant-revoked"))
}

async fn define_role(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let role = fields.text("role");
    match access::define_role(&state, &me.actor, &tenant_id, &client_id, &role).await {
        Ok(()) => Ok(done(
            &fill(
                paths::ACCESS,
                &[("tenant_id", &tenant_id), ("client_id", &client_id)],
            ),
            "role-defined",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}

/// Grants a role (`grant=yes`) or takes it away (asking first).
async fn grant_role(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    let granted = fields.get("grant") != Some("no");
    let role = fields.text("role");
    let Some(who) = principal(&fields).filter(|_| !role.is_empty()) else {
        let flash = missing(
            &fields,
            "a role and the person's email address, or choose a group",
        );
        return show(&state, &me, &tenant_id, &client_id, 1, flash).await;
    };
    if !granted && !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        let label = match &who {
            Principal::User(who) => who.clone(),
            Principal::Group(id) => format!("group {id}"),
        };
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Take the role {role} away from {label}?"),
                text: format!(
                    "Tokens for {} carry the role no more from their next refresh.",
                    app.name
                ),
                items: vec![],
                action: fill(paths::ROLE_GRANT, &ids),
                button: "Take the role away",
                cancel: fill(paths::ACCESS, &ids),
            },
        ));
    }
    match access::grant_role(
        &state, &me.actor, &tenant_id, &client_id, &role, &who, granted,
    )
    .await
    {
        Ok(()) => Ok(done(
            &fill(paths::ACCESS, &ids),
            if granted {
                "role-granted"
            } else {
                "role-revoked"
            },
        )),
        Err(e) => {
            let flash = form_failure(&state, person_on_form(e), &fields)?;
            show(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}

#[derive(Debug, Serialize)]
struct ReviewRow {
    user_id: String,
    label: String,
    name: Option<String>,
    status: String,
    account_type: &'static str,
    last_signin: String,
    direct: bool,
    via_groups: Vec<String>,
}

async fn review(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_review(
        &state,
        &me,
        &tenant_id,
        &client_id,
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show_review(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    client_id: &str,
    page: u32,
    flash: Flash,
) -> Page {
    let (tenant, app) = administered_app(state, me, tenant_id, client_id).await?;
    let entries = access::review(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let total = entries.len();
    let (entries, more) = slice(entries, page);
    let rows: Vec<ReviewRow> = entries
        .into_iter()
        .map(|e| ReviewRow {
            label: e.email.clone().unwrap_or_else(|| e.user_id.clone()),
            user_id: e.user_id,
            name: e.name,
            status: e.status,
            account_type: account_type_label(&e.account_type),
            last_signin: datetime(e.last_signin_at),
            direct: e.direct,
            via_groups: e.via_groups,
        })
        .collect();
    let ids = [
        ("tenant_id", tenant.id.as_str()),
        ("client_id", &app.client_id),
    ];
    let here = fill(paths::REVIEW, &ids);
    let last = access::last_review(state, &me.actor, tenant_id, client_id)
        .await
        .map_err(|e| error_page(state, e))?
        .map(|r| {
            minijinja::context! {
                when => datetime(r.at), by => r.by, people => r.people_with_access,
            }
        });
    Ok(render(
        state,
        me,
        &flash,
        "portal/review.html",
        minijinja::context! {
            entries => rows,
            total => total,
            last_review => last,
            complete_action => fill(paths::REVIEW_COMPLETE, &ids),
            action => here,
            groups_href => fill(paths::GROUPS, &[("tenant_id", &tenant.id)]),
            pager => Pager::new(&here, &[], page, more),
            ..app_context(&tenant, &app, "review")
        },
    ))
}

/// Records that the review is complete, as it stands now.
async fn complete_review(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields: _ }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    access::complete_review(&state, &me.actor, &tenant_id, &client_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(&fill(paths::REVIEW, &ids), "review-completed"))
}

async fn remove_selected(
    State(state): State<AppState>,
    Path((tenant_id, client_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let ids = [("tenant_id", tenant_id.as_str()), ("client_id", &client_id)];
    let selected = fields.all("user");
    if selected.is_empty() {
        let flash = Flash::error(
            StatusCode::BAD_REQUEST,
            "Select at least one person whose access to remove.",
            &fields,
        );
        return show_review(&state, &me, &tenant_id, &client_id, 1, flash).await;
    }
    if !fields.confirmed() {
        let (_, app) = administered_app(&state, &me, &tenant_id, &client_id).await?;
        let names = emails_of(&state, &selected).await?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!(
                    "Remove the direct access of {} people to {}?",
                    selected.len(),
                    app.name
                ),
                text: "Their direct assignments (and the roles given with them) are removed. Access through a group stays until they leave the group.".into(),
                items: selected
                    .iter()
                    .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                    .collect(),
                action: fill(paths::REVIEW, &ids),
                button: "Remove their access",
                cancel: fill(paths::REVIEW, &ids),
            },
        ));
    }
    match access::remove_in_bulk(&state, &me.actor, &tenant_id, &client_id, &selected).await {
        Ok(_) => Ok(done(&fill(paths::REVIEW, &ids), "access-removed")),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show_review(&state, &me, &tenant_id, &client_id, 1, flash).await
        }
    }
}
