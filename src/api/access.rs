//! Who may use an app, over the API: its user and group assignments, its roles and their
//! grants, and the access review (who has access, with their last sign-in; remove in bulk).
//! Thin handlers over [`crate::tenancy::access`]. A principal in a path is
//! `{principal_type}/{principal_id}` with the type `user` or `group`. Also the tenant's pending
//! grants: app access given by email before the person's first sign-in, over
//! [`crate::tenancy::pending`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_store::{AssignmentRecord, PendingGrantRecord, PRINCIPAL_USER};

use super::{created, paths, ApiError, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::access::{self, Principal, ReviewEntry};
use crate::tenancy::{pending, Actor};

/// `user` or `group` and an id (for a user, an email address also works).
fn principal(kind: &str, id: String) -> ApiResult<Principal> {
    match kind {
        "user" => Ok(Principal::User(id)),
        "group" => Ok(Principal::Group(id)),
        _ => Err(ApiError::bad_request(
            "the principal type is `user` or `group`",
        )),
    }
}

/// A user or group assigned to an app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub principal: Principal,
    pub assigned_at: i64,
    pub assigned_by: String,
}

impl From<AssignmentRecord> for AssignmentView {
    fn from(a: AssignmentRecord) -> Self {
        AssignmentView {
            principal: if a.principal_type == PRINCIPAL_USER {
                Principal::User(a.principal_id)
            } else {
                Principal::Group(a.principal_id)
            },
            assigned_at: a.assigned_at,
            assigned_by: a.assigned_by,
        }
    }
}

#[utoipa::path(
    get,
    path = paths::APP_ASSIGNMENTS,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = [AssignmentView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_assignments(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<AssignmentView>>> {
    let list = access::assignments(&state, &actor, &tenant_id, &client_id).await?;
    Ok(Json(list.into_iter().map(AssignmentView::from).collect()))
}

/// Assigns a user or a group of the tenant to the app.
#[utoipa::path(
    post,
    path = paths::APP_ASSIGNMENTS,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = Principal,
    responses(
        (status = 204, description = "Assigned"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already assigned", body = ErrorBody),
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(who): ApiJson<Principal>,
) -> ApiResult<Response> {
    access::assign(&state, &actor, &tenant_id, &client_id, &who).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes an assignment (and that principal's roles in the app).
#[utoipa::path(
    delete,
    path = paths::APP_ASSIGNMENT,
    tag = "access",
    params(
        ("tenant_id" = String, Path),
        ("client_id" = String, Path),
        ("principal_type" = String, Path, description = "`user` or `group`"),
        ("principal_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn unassign(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id, kind, id)): ApiPath<(String, String, String, String)>,
) -> ApiResult<Response> {
    let who = principal(&kind, id)?;
    access::unassign(&state, &actor, &tenant_id, &client_id, &who).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = paths::APP_ROLES,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = [String]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_roles(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        access::roles(&state, &actor, &tenant_id, &client_id).await?,
    ))
}

/// An app role (shown in tokens' `roles` claim).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Role {
    /// 1 to 64 letters, digits, `-`, `_`, `.` or `:`.
    pub role: String,
}

#[utoipa::path(
    post,
    path = paths::APP_ROLES,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = Role,
    responses(
        (status = 201, body = Role),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The app has that role", body = ErrorBody),
    )
)]
pub async fn define_role(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(role): ApiJson<Role>,
) -> ApiResult<Response> {
    access::define_role(&state, &actor, &tenant_id, &client_id, &role.role).await?;
    Ok(created(role))
}

/// Grants the role to a user or group.
#[utoipa::path(
    post,
    path = paths::APP_ROLE_GRANTS,
    tag = "access",
    params(
        ("tenant_id" = String, Path),
        ("client_id" = String, Path),
        ("role" = String, Path),
    ),
    request_body = Principal,
    responses(
        (status = 204, description = "Granted"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such app, role or group", body = ErrorBody),
        (status = 409, description = "Already granted", body = ErrorBody),
    )
)]
pub async fn grant_role(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id, role)): ApiPath<(String, String, String)>,
    ApiJson(who): ApiJson<Principal>,
) -> ApiResult<Response> {
    access::grant_role(&state, &actor, &tenant_id, &client_id, &role, &who, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Takes the role back from a user or group.
#[utoipa::path(
    delete,
    path = paths::APP_ROLE_GRANT,
    tag = "access",
    params(
        ("tenant_id" = String, Path),
        ("client_id" = String, Path),
        ("role" = String, Path),
        ("principal_type" = String, Path, description = "`user` or `group`"),
        ("principal_id" = String, Path),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not granted", body = ErrorBody),
    )
)]
pub async fn revoke_role(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id, role, kind, id)): ApiPath<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> ApiResult<Response> {
    let who = principal(&kind, id)?;
    access::grant_role(&state, &actor, &tenant_id, &client_id, &role, &who, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Everyone with access to the app, directly or through groups, with their last sign-in.
#[utoipa::path(
    get,
    path = paths::APP_REVIEW,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    responses(
        (status = 200, body = [ReviewEntry]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn access_review(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<ReviewEntry>>> {
    Ok(Json(
        access::review(&state, &actor, &tenant_id, &client_id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Removal {
    /// Users whose direct assignment to the app ends (group access is changed on the group).
    pub user_ids: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Removed {
    /// How many assignments were removed.
    pub removed: usize,
}

/// The outcome of an access review: removes the listed users' direct access.
#[utoipa::path(
    post,
    path = paths::APP_REVIEW_REMOVE,
    tag = "access",
    params(("tenant_id" = String, Path), ("client_id" = String, Path)),
    request_body = Removal,
    responses(
        (status = 200, body = Removed),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn remove_access(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, client_id)): ApiPath<(String, String)>,
    ApiJson(removal): ApiJson<Removal>,
) -> ApiResult<Json<Removed>> {
    let removed =
        access::remove_in_bulk(&state, &actor, &tenant_id, &client_id, &removal.user_ids).await?;
    Ok(Json(Removed { removed }))
}

/// A grant waiting for a person's sign-in: access to an app (`app_access`) or the tenant's
/// administration (`tenant_admin`). It says nothing of whether the address has an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PendingGrantView {
    pub id: String,
    /// Lowercased.
    pub email: String,
    /// `app_access` or `tenant_admin`.
    pub kind: String,
    pub client_id: Option<String>,
    /// Who granted it (a user id, `app:<client_id>` or `cli`).
    pub granted_by: String,
    pub granted_at: i64,
}

impl From<PendingGrantRecord> for PendingGrantView {
    fn from(g: PendingGrantRecord) -> Self {
        PendingGrantView {
            id: g.id,
            email: g.email,
            kind: g.kind,
            client_id: g.client_id,
            granted_by: g.granted_by,
            granted_at: g.granted_at,
        }
    }
}

/// The tenant's pending grants, oldest first.
#[utoipa::path(
    get,
    path = paths::PENDING_GRANTS,
    tag = "access",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [PendingGrantView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_pending_grants(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<PendingGrantView>>> {
    let list = pending::list(&state, &actor, &tenant_id).await?;
    Ok(Json(list.into_iter().map(PendingGrantView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailGrant {
    /// One of the tenant's apps.
    pub client_id: String,
    /// A public officer's address (in an officer domain), or an address the tenant invited.
    pub email: String,
}

/// Gives the person with this email access to the app from their next sign-in (their first,
/// for someone new). The answer is the same whether or not the address has an account.
#[utoipa::path(
    post,
    path = paths::PENDING_GRANTS,
    tag = "access",
    params(("tenant_id" = String, Path)),
    request_body = EmailGrant,
    responses(
        (status = 201, body = PendingGrantView),
        (status = 400, description = "Not an email address, or a vendor's address the tenant has not invited", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such tenant or app", body = ErrorBody),
        (status = 409, description = "Already pending", body = ErrorBody),
    )
)]
pub async fn grant_by_email(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(grant): ApiJson<EmailGrant>,
) -> ApiResult<Response> {
    let made =
        pending::grant_app_access(&state, &actor, &tenant_id, &grant.client_id, &grant.email)
            .await?;
    Ok(created(PendingGrantView::from(made)))
}

/// Revokes a pending grant (an automation app cannot revoke a pending admin).
#[utoipa::path(
    delete,
    path = paths::PENDING_GRANT,
    tag = "access",
    params(("tenant_id" = String, Path), ("grant_id" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn revoke_pending_grant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, grant_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    pending::revoke(&state, &actor, &tenant_id, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
