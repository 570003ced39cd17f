//! A tenant's groups over the API (shown in tokens as `<tenant-slug>:<group>`) and their
//! members. Thin handlers over the group functions of [`crate::tenancy::access`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_store::GroupRecord;

use super::{created, paths, ApiJson, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::access;
use crate::tenancy::Actor;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: String,
    pub tenant_id: String,
    /// The name within the tenant.
    pub name: String,
    pub created_at: i64,
}

impl From<GroupRecord> for GroupView {
    fn from(g: GroupRecord) -> Self {
        GroupView {
            id: g.id,
            tenant_id: g.tenant_id,
            name: g.name,
            created_at: g.created_at,
        }
    }
}

#[utoipa::path(
    get,
    path = paths::GROUPS,
    tag = "groups",
    params(("tenant_id" = String, Path)),
    responses(
        (status = 200, body = [GroupView]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_groups(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Vec<GroupView>>> {
    let groups = access::groups(&state, &actor, &tenant_id).await?;
    Ok(Json(groups.into_iter().map(GroupView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewGroup {
    /// 1 to 64 letters, digits, `-`, `_` or `.`; unique in the tenant.
    pub name: String,
}

#[utoipa::path(
    post,
    path = paths::GROUPS,
    tag = "groups",
    params(("tenant_id" = String, Path)),
    request_body = NewGroup,
    responses(
        (status = 201, body = GroupView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn create_group(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(new): ApiJson<NewGroup>,
) -> ApiResult<Response> {
    let group = access::create_group(&state, &actor, &tenant_id, &new.name).await?;
    Ok(created(GroupView::from(group)))
}

/// Deletes a group (its members lose the access it gave).
#[utoipa::path(
    delete,
    path = paths::GROUP,
    tag = "groups",
    params(("tenant_id" = String, Path), ("group_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn delete_group(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    access::delete_group(&state, &actor, &tenant_id, &group_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The members' user ids.
#[utoipa::path(
    get,
    path = paths::GROUP_MEMBERS,
    tag = "groups",
    params(("tenant_id" = String, Path), ("group_id" = String, Path)),
    responses(
        (status = 200, body = [String]),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(
        access::group_members(&state, &actor, &tenant_id, &group_id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewMember {
    /// A user id or email address.
    pub user: String,
}

#[utoipa::path(
    post,
    path = paths::GROUP_MEMBERS,
    tag = "groups",
    params(("tenant_id" = String, Path), ("group_id" = String, Path)),
    request_body = NewMember,
    responses(
        (status = 204, description = "Added"),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, group_id)): ApiPath<(String, String)>,
    ApiJson(new): ApiJson<NewMember>,
) -> ApiResult<Response> {
    access::set_membership(&state, &actor, &tenant_id, &group_id, &new.user, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = paths::GROUP_MEMBER,
    tag = "groups",
    params(
        ("tenant_id" = String, Path),
        ("group_id" = String, Path),
        ("user_id" = String, Path, description = "A user id or email address"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, group_id, user)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    access::set_membership(&state, &actor, &tenant_id, &group_id, &user, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
