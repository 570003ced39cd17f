//! A tenant's groups (`<tenant>:<group>` in tokens), which apps can be assigned to: the list
//! and creation form, a group's members (add by email; removing asks first) and deleting a
//! group (asks first). Thin handlers over [`crate::tenancy::access`]; it must not decide who
//! may change a group.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_store::GroupRecord;

use super::tenants::{administered, tenant_context};
use super::{
    confirm, date, done, emails_of, error_page, fill, form_failure, paths, person_on_form, render,
    slice, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::state::AppState;
use crate::tenancy::access;
use crate::tenancy::TenancyError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::GROUPS, get(list).post(create))
        .route(paths::GROUP, get(members).post(add_member))
        .route(paths::GROUP_DELETE, post(delete))
        .route(paths::GROUP_MEMBER_REMOVE, post(remove_member))
}

#[derive(Debug, Serialize)]
struct GroupRow {
    name: String,
    qualified: String,
    created: String,
    href: String,
    delete: String,
}

async fn list(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_list(&state, &me, &tenant_id, q.page(), Flash::from_query(&q)).await
}

async fn show_list(state: &AppState, me: &Me, tenant_id: &str, page: u32, flash: Flash) -> Page {
    let tenant = administered(state, me, tenant_id).await?;
    let groups = access::groups(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let (groups, more) = slice(groups, page);
    let rows: Vec<GroupRow> = groups
        .into_iter()
        .map(|g| {
            let ids = [("tenant_id", tenant.id.as_str()), ("group_id", &g.id)];
            GroupRow {
                qualified: format!("{}:{}", tenant.slug, g.name),
                created: date(g.created_at),
                href: fill(paths::GROUP, &ids),
                delete: fill(paths::GROUP_DELETE, &ids),
                name: g.name,
            }
        })
        .collect();
    let here = fill(paths::GROUPS, &[("tenant_id", &tenant.id)]);
    Ok(render(
        state,
        me,
        &flash,
        "portal/groups.html",
        minijinja::context! {
            groups => rows,
            action => here,
            pager => Pager::new(&here, &[], page, more),
            ..tenant_context(&tenant, "groups")
        },
    ))
}

async fn create(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    match access::create_group(&state, &me.actor, &tenant_id, &fields.text("name")).await {
        Ok(group) => Ok(done(
            &fill(
                paths::GROUP,
                &[("tenant_id", &tenant_id), ("group_id", &group.id)],
            ),
            "group-created",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show_list(&state, &me, &tenant_id, 1, flash).await
        }
    }
}

/// The tenant's group, or the page saying why not.
async fn group_of(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    group_id: &str,
) -> Result<GroupRecord, axum::response::Response> {
    access::groups(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))?
        .into_iter()
        .find(|g| g.id == group_id)
        .ok_or_else(|| error_page(state, TenancyError::NotFound("group")))
}

#[derive(Debug, Serialize)]
struct MemberRow {
    label: String,
    remove: String,
}

async fn members(
    State(state): State<AppState>,
    Path((tenant_id, group_id)): Path<(String, String)>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_members(
        &state,
        &me,
        &tenant_id,
        &group_id,
        q.page(),
        Flash::from_query(&q),
    )
    .await
}

async fn show_members(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
    group_id: &str,
    page: u32,
    flash: Flash,
) -> Page {
    let tenant = administered(state, me, tenant_id).await?;
    let group = group_of(state, me, tenant_id, group_id).await?;
    let ids = access::group_members(state, &me.actor, tenant_id, group_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let (ids, more) = slice(ids, page);
    let names = emails_of(state, &ids).await?;
    let rows: Vec<MemberRow> = ids
        .iter()
        .map(|id| MemberRow {
            label: names.get(id).cloned().unwrap_or_else(|| id.clone()),
            remove: fill(
                paths::GROUP_MEMBER_REMOVE,
                &[
                    ("tenant_id", &tenant.id),
                    ("group_id", &group.id),
                    ("user_id", id),
                ],
            ),
        })
        .collect();
    let here = fill(
        paths::GROUP,
        &[("tenant_id", &tenant.id), ("group_id", &group.id)],
    );
    Ok(render(
        state,
        me,
        &flash,
        "portal/group.html",
        minijinja::context! {
            group => minijinja::context! {
                name => group.name,
                qualified => format!("{}:{}", tenant.slug, group.name),
            },
            members => rows,
            action => here,
            delete_action => fill(paths::GROUP_DELETE, &[("tenant_id", &tenant.id), ("group_id", &group.id)]),
            groups_href => fill(paths::GROUPS, &[("tenant_id", &tenant.id)]),
            pager => Pager::new(&here, &[], page, more),
            ..tenant_context(&tenant, "groups")
        },
    ))
}

async fn add_member(
    State(state): State<AppState>,
    Path((tenant_id, group_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let who = fields.text("who");
    let result = if who.is_empty() {
        Err(TenancyError::Invalid(
            "enter the email address of the person to add".into(),
        ))
    } else {
        access::set_membership(&state, &me.actor, &tenant_id, &group_id, &who, true).await
    };
    match result {
        Ok(()) => Ok(done(
            &fill(
                paths::GROUP,
                &[("tenant_id", &tenant_id), ("group_id", &group_id)],
            ),
            "member-added",
        )),
        Err(e) => {
            let flash = form_failure(&state, person_on_form(e), &fields)?;
            show_members(&state, &me, &tenant_id, &group_id, 1, flash).await
        }
    }
}

async fn remove_member(
    State(state): State<AppState>,
    Path((tenant_id, group_id, user_id)): Path<(String, String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let back = fill(
        paths::GROUP,
        &[("tenant_id", &tenant_id), ("group_id", &group_id)],
    );
    if !fields.confirmed() {
        let group = group_of(&state, &me, &tenant_id, &group_id).await?;
        let who = emails_of(&state, std::slice::from_ref(&user_id))
            .await?
            .remove(&user_id)
            .unwrap_or(user_id.clone());
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Remove {who} from the group {}?", group.name),
                text: "They lose the access and roles that the group gives them.".into(),
                items: vec![],
                action: fill(
                    paths::GROUP_MEMBER_REMOVE,
                    &[
                        ("tenant_id", &tenant_id),
                        ("group_id", &group_id),
                        ("user_id", &user_id),
                    ],
                ),
                button: "Remove from the group",
                cancel: back,
            },
        ));
    }
    match access::set_membership(&state, &me.actor, &tenant_id, &group_id, &user_id, false).await {
        Ok(()) => Ok(done(&back, "member-removed")),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show_members(&state, &me, &tenant_id, &group_id, 1, flash).await
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    Path((tenant_id, group_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    if !fields.confirmed() {
        let group = group_of(&state, &me, &tenant_id, &group_id).await?;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Delete the group {}?", group.name),
                text: "Its memberships, app assignments and roles are deleted with it: people who have access only through it lose that access.".into(),
                items: vec![],
                action: fill(
                    paths::GROUP_DELETE,
                    &[("tenant_id", &tenant_id), ("group_id", &group_id)],
                ),
                button: "Delete the group",
                cancel: fill(
                    paths::GROUP,
                    &[("tenant_id", &tenant_id), ("group_id", &group_id)],
                ),
            },
        ));
    }
    access::delete_group(&state, &me.actor, &tenant_id, &group_id)
        .await
        .map_err(|e| error_page(&state, e))?;
    Ok(done(
        &fill(paths::GROUPS, &[("tenant_id", &tenant_id)]),
        "group-deleted",
    ))
}
