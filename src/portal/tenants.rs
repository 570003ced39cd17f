//! A person's tenants: the ones they administer or asked for, the "request a new tenant" form,
//! a tenant's overview (with the sections its admins manage) and its co-admins. Thin handlers
//! over [`crate::tenancy::tenants`]; the shared tenant view and section navigation of every
//! tenant page live here too. It must not decide who administers what: the service does.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::TenantStatus;
use techpass_store::TenantRecord;

use super::{
    confirm, date, datetime, done, emails_of, error_page, fill, form_failure, paths,
    person_on_form, render, trim, window, Confirm, Fields, Flash, Me, Page, Pager, Posted,
};
use crate::state::AppState;
use crate::tenancy::tenants::{self, NewTenant};
use crate::tenancy::{admin_tenant, Actor, TenancyError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::TENANTS, get(list).post(request))
        .route(paths::TENANT, get(overview))
        .route(paths::ADMINS, get(admins).post(add_admin))
        .route(paths::ADMIN_REMOVE, post(remove_admin))
}

/// A tenant as its pages show it.
#[derive(Debug, Serialize)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub purpose: String,
    pub status: String,
    pub created: String,
    pub status_at: Option<String>,
    pub status_reason: Option<String>,
    pub href: String,
}

impl From<&TenantRecord> for TenantView {
    fn from(t: &TenantRecord) -> Self {
        TenantView {
            id: t.id.clone(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            purpose: t.purpose.clone(),
            status: t.status.as_str().to_string(),
            created: date(t.created_at),
            status_at: t.status_at.map(datetime),
            status_reason: t.status_reason.clone(),
            href: fill(paths::TENANT, &[("tenant_id", &t.id)]),
        }
    }
}

/// One link of a tenant's section navigation.
#[derive(Debug, Serialize)]
pub struct NavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
}

/// The sections of a tenant's pages.
pub fn tenant_nav(tenant_id: &str) -> Vec<NavItem> {
    let t = [("tenant_id", tenant_id)];
    [
        ("overview", "Overview", paths::TENANT),
        ("apps", "Apps", paths::APPS),
        ("invitations", "Invitations", paths::INVITATIONS),
        ("groups", "Groups", paths::GROUPS),
        ("admins", "Co-admins", paths::ADMINS),
        ("webhooks", "Webhooks", paths::WEBHOOKS),
        ("audit", "Audit log", paths::TENANT_AUDIT),
    ]
    .into_iter()
    .map(|(key, label, path)| NavItem {
        key,
        label,
        href: fill(path, &t),
    })
    .collect()
}

/// The context every tenant section page shares: the tenant, its navigation, the section.
pub fn tenant_context(tenant: &TenantRecord, section: &str) -> minijinja::Value {
    minijinja::context! {
        tenant => TenantView::from(tenant),
        tenant_nav => tenant_nav(&tenant.id),
        section => section,
        area => "tenants",
    }
}

/// The tenant if the person administers it, or the page saying why not.
pub async fn administered(
    state: &AppState,
    me: &Me,
    tenant_id: &str,
) -> Result<TenantRecord, axum::response::Response> {
    admin_tenant(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))
}

fn may_request(me: &Me) -> bool {
    me.user.status == UserStatus::Registered && me.user.account_type == "public_officer"
}

async fn list(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    let q = Fields::query(q);
    show_list(&state, &me, q.page(), Flash::from_query(&q)).await
}

async fn show_list(state: &AppState, me: &Me, page: u32, flash: Flash) -> Page {
    // "My" tenants even for a platform admin (who sees all of them under /portal/admin).
    let as_person = Actor::User {
        id: me.user.id.clone(),
        platform_admin: false,
    };
    let (limit, offset) = window(page);
    let found = tenants::list(state, &as_person, None, limit, offset)
        .await
        .map_err(|e| error_page(state, e))?;
    let (found, more) = trim(found);
    let views: Vec<TenantView> = found.iter().map(TenantView::from).collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/tenants.html",
        minijinja::context! {
            tenants => views,
            pager => Pager::new(paths::TENANTS, &[], page, more),
            may_request => may_request(me),
            action => paths::TENANTS,
            area => "tenants",
        },
    ))
}

async fn request(State(state): State<AppState>, Posted { me, fields }: Posted) -> Page {
    let new = NewTenant {
        slug: fields.text("slug").to_ascii_lowercase(),
        name: fields.text("name"),
        description: fields.text("description"),
        purpose: fields.text("purpose"),
    };
    match tenants::request(&state, &me.actor, new).await {
        Ok(tenant) => Ok(done(
            &fill(paths::TENANT, &[("tenant_id", &tenant.id)]),
            "tenant-requested",
        )),
        Err(e) => {
            let flash = form_failure(&state, e, &fields)?;
            show_list(&state, &me, 1, flash).await
        }
    }
}

async fn overview(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    // Its admins manage it; the officer who asked for it follows the request.
    let (tenant, admin) = match admin_tenant(&state, &me.actor, &tenant_id).await {
        Ok(t) => (t, true),
        Err(TenancyError::Forbidden(_)) => (
            tenants::get(&state, &me.actor, &tenant_id)
                .await
                .map_err(|e| error_page(&state, e))?,
            false,
        ),
        Err(e) => return Err(error_page(&state, e)),
    };
    let manageable = admin
        && matches!(
            tenant.status,
            TenantStatus::Active | TenantStatus::Suspended
        );
    let context = if manageable {
        tenant_context(&tenant, "overview")
    } else {
        minijinja::context! { tenant => TenantView::from(&tenant), area => "tenants" }
    };
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/tenant.html",
        minijinja::context! { manageable => manageable, ..context },
    ))
}

#[derive(Debug, Serialize)]
struct AdminView {
    user_id: String,
    email: String,
    added: String,
    added_by: String,
    is_me: bool,
    remove: String,
}

async fn admins(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    show_admins(&state, &me, &tenant_id, Flash::from_query(&q)).await
}

async fn show_admins(state: &AppState, me: &Me, tenant_id: &str, flash: Flash) -> Page {
    let tenant = administered(state, me, tenant_id).await?;
    let list = tenants::admins(state, &me.actor, tenant_id)
        .await
        .map_err(|e| error_page(state, e))?;
    let mut ids: Vec<String> = list.iter().map(|a| a.user_id.clone()).collect();
    ids.extend(list.iter().map(|a| a.added_by.clone()));
    let names = emails_of(state, &ids).await?;
    let label = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let views: Vec<AdminView> = list
        .iter()
        .map(|a| AdminView {
            email: label(&a.user_id),
            added: date(a.added_at),
            added_by: label(&a.added_by),
            is_me: a.user_id == me.user.id,
            remove: fill(
                paths::ADMIN_REMOVE,
                &[("tenant_id", &tenant.id), ("user_id", &a.user_id)],
            ),
            user_id: a.user_id.clone(),
        })
        .collect();
    Ok(render(
        state,
        me,
        &flash,
        "portal/admins.html",
        minijinja::context! {
            admins => views,
            action => fill(paths::ADMINS, &[("tenant_id", &tenant.id)]),
            ..tenant_context(&tenant, "admins")
        },
    ))
}

async fn add_admin(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Posted { me, fields }: Posted,
) -> Page {
    let who = fields.text("email");
    if who.is_empty() {
        let flash = Flash::error(
            axum::http::StatusCode::BAD_REQUEST,
            "Enter the email address of the officer to add.",
            &fields,
        );
        return show_admins(&state, &me, &tenant_id, flash).await;
    }
    match tenants::add_admin(&state, &me.actor, &tenant_id, &who).await {
        Ok(_) => Ok(done(
            &fill(paths::ADMINS, &[("tenant_id", &tenant_id)]),
            "admin-added",
        )),
        Err(e) => {
            let flash = form_failure(&state, person_on_form(e), &fields)?;
            show_admins(&state, &me, &tenant_id, flash).await
        }
    }
}

async fn remove_admin(
    State(state): State<AppState>,
    Path((tenant_id, user_id)): Path<(String, String)>,
    Posted { me, fields }: Posted,
) -> Page {
    let back = fill(paths::ADMINS, &[("tenant_id", &tenant_id)]);
    if !fields.confirmed() {
        let tenant = administered(&state, &me, &tenant_id).await?;
        let names = emails_of(&state, std::slice::from_ref(&user_id)).await?;
        let who = names.get(&user_id).cloned().unwrap_or(user_id.clone());
        let yourself = user_id == me.user.id;
        return Ok(confirm(
            &state,
            &me,
            &fields,
            Confirm {
                title: format!("Remove {who} as an admin of {}?", tenant.name),
                text: if yourself {
                    "You are removing yourself: you will no longer be able to manage this tenant."
                        .into()
                } else {
                    "They will no longer be able to manage the tenant's apps, access and invitations.".into()
                },
                items: vec![],
                action: fill(
                    paths::ADMIN_REMOVE,
                    &[("tenant_id", &tenant.id), ("user_id", &user_id)],
                ),
                button: "Remove the admin",
                cancel: back,
            },
        ));
    }
    match tenants::remove_admin(&state, &me.actor, &tenant_id, &user_id).await {
        Ok(()) if user_id == me.user.id && !me.platform_admin() => {
            Ok(done(paths::TENANTS, "admin-removed"))
        }
        Ok(()) => Ok(done(&back, "admin-removed")),
        Err(e) => {
            let flash = form_failure(&state, e, &Fields::default())?;
            show_admins(&state, &me, &tenant_id, flash).await
        }
    }
}
