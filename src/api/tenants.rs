//! Tenants over the API: the list the caller may see, onboarding requests, a platform admin's
//! decisions, and co-admins. Thin handlers over [`crate::tenancy::tenants`]; the response types
//! are views, not store records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_domain::tenancy::{TenantAction, TenantStatus};
use techpass_store::{TenantAdminRecord, TenantRecord, UserRecord};

use super::{created, paths, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::tenants::{self, DirectTenant, FirstAdmin, NewTenant};
use crate::tenancy::Actor;

/// A tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub purpose: String,
    /// `requested`, `active`, `rejected` or `suspended`.
    pub status: String,
    /// The user id of the officer who asked for it.
    pub requested_by: String,
    pub created_at: i64,
    pub status_at: Option<i64>,
    pub status_by: Option<String>,
    pub status_reason: Option<String>,
}

impl From<TenantRecord> for TenantView {
    fn from(t: TenantRecord) -> Self {
        TenantView {
            id: t.id,
            slug: t.slug,
            name: t.name,
            description: t.description,
            purpose: t.purpose,
            status: t.status.as_str().to_string(),
            requested_by: t.requested_by,
            created_at: t.created_at,
            status_at: t.status_at,
            status_by: t.status_by,
            status_reason: t.status_reason,
        }
    }
}

/// `?status=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// `requested`, `active`, `rejected` or `suspended`.
    pub status: Option<String>,
    /// At most 200; 50 when absent.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The tenants the caller may see: all of them for platform admins, the ones they administer
/// for others, its own for an app.
#[utoipa::path(
    get,
    path = paths::TENANTS,
    tag = "tenants",
    params(TenantQuery),
    responses(
        (status = 200, body = [TenantView]),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> ApiResult<Json<Vec<TenantView>>> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(TenantStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status must be requested, active, rejected or suspended")
        })?),
    };
    let (limit, offset) = super::Page {
        limit: q.limit,
        offset: q.offset,
    }
    .bounds()?;
    let list = tenants::list(&state, &actor, status, limit, offset).await?;
    Ok(Json(list.into_iter().map(TenantView::from).collect()))
}

/// A registered officer asks for a tenant; it waits for a platform admin's decision.
#[utoipa::path(
    post,
    path = paths::TENANTS,
    tag = "tenants",
    request_body = NewTenant,
    responses(
        (status = 201, body = TenantView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    )
)]
pub async fn request_tenant(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<NewTenant>,
) -> ApiResult<Response> {
    let tenant = tenants::request(&state, &actor, new).await?;
    Ok(created(TenantView::from(tenant)))
}

#[utoipa::path(
    get,
    path = paths::TENANT,
    tag = "tenants",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = TenantView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(tenants::get(&state, &actor, &tenant_id).await?.into()))
}

/// A platform admin's decision.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    Approve,
    Reject,
    Suspend,
    Reinstate,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    pub action: DecisionAction,
    /// Required to reject or suspend: the tenant's people are told it.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Approve or reject a requested tenant, suspend an active one, reinstate a suspended one
/// (platform admins).
#[utoipa::path(
    post,
    path = paths::TENANT_DECISION,
    tag = "tenants",
    params(("tenant_id" = String, Path)),
    request_body = Decision,
    responses(
        (status = 200, body = TenantView),
        (status = 400, description = "A reason is required", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not in a state this action applies to", body = ErrorBody),
    )
)]
pub async fn decide_tenant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(decision): ApiJson<Decision>,
) -> ApiResult<Json<TenantView>> {
    let action = match decision.action {
        DecisionAction::Approve => TenantAction::Approve,
        DecisionAction::Reject => TenantAction::Reject,
        DecisionAction::Suspend => TenantAction::Suspend,
        DecisionAction::Reinstate => TenantAction::Reinstate,
    };
    let tenant = tenants::decide(
        &state,
        &actor,
        &tenant_id,
        action,
        decision.reason.as_deref(),
    )
    .await?;
    Ok(Json(tenant.into()))
}

/// The first admin of a directly registered tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FirstAdminView {
    pub email: Option<String>,
    /// Their user id when they are admin already; absent while pending.
    pub user_id: Option<String>,
    /// True when they become admin at their next sign-in (their first, for someone new).
    pub pending: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTenantView {
    pub tenant: TenantView,
    pub admin: FirstAdminView,
}

/// Registers a tenant directly, active at once, with its first admin named by email (platform
/// admins). Audited as an approval; the admin is emailed.
#[utoipa::path(
    post,
    path = paths::DIRECT_TENANTS,
    tag = "tenants",
    request_body = DirectTenant,
    responses(
        (status = 201, body = CreatedTenantView),
        (status = 400, description = "A bad slug, name or email; an admin who is not a public officer", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    )
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(new): ApiJson<DirectTenant>,
) -> ApiResult<Response> {
    let (tenant, first) = tenants::create(&state, &actor, new).await?;
    let admin = match first {
        FirstAdmin::Now(user) => FirstAdminView {
            email: user.email,
            user_id: Some(user.id),
            pending: false,
        },
        FirstAdmin::Pending(grant) => FirstAdminView {
            email: Some(grant.email),
            user_id: None,
            pending: true,
        },
    };
    Ok(created(CreatedTenantView {
        tenant: tenant.into(),
        admin,
    }))
}

/// A tenant admin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminView {
    pub user_id: String,
    pub added_at: i64,
    /// Who added them (a user id, `app:<client_id>` or `cli`).
    pub added_by: String,
}

impl From<TenantAdminRecord> for AdminView {
    fn from(a: TenantAdminRecord) -> Self {
        AdminView {
            user_id: a.user_id,
            added_at: a.added_at,
            added_by: a.added_by,
        }
    }
}

#[utoipa::path(
    get,
    path = paths::ADMINS,
    tag = "tenants",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [AdminView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_admins(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<AdminView>>> {
    let admins = tenants::admins(&state, &actor, &tenant_id).await?;
    Ok(Json(admins.into_iter().map(AdminView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewAdmin {
    /// A registered officer's user id or email address.
    pub user: String,
}

/// A person, as the API names them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: String,
    pub account_type: String,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            id: u.id,
            email: u.email,
            name: u.name,
            status: u.status.as_str().to_string(),
            account_type: u.account_type,
        }
    }
}

/// Adds a co-admin (a registered public officer).
#[utoipa::path(
    post,
    path = paths::ADMINS,
    tag = "tenants",
    params(("tenant_id" = String, Path)),
    request_body = NewAdmin,
    responses(
        (status = 201, body = UserView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Already an admin", body = ErrorBody),
    )
)]
pub async fn add_admin(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(new): ApiJson<NewAdmin>,
) -> ApiResult<Response> {
    let user = tenants::add_admin(&state, &actor, &tenant_id, &new.user).await?;
    Ok(created(UserView::from(user)))
}

/// Removes a co-admin (never the last one).
#[utoipa::path(
    delete,
    path = paths::ADMIN,
    tag = "tenants",
    params(("tenant_id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last admin", body = ErrorBody),
    )
)]
pub async fn remove_admin(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    tenants::remove_admin(&state, &actor, &tenant_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
