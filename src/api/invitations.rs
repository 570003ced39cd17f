//! A tenant's invitations over the API: list (by status, paged), invite, resend, revoke. Thin
//! handlers over [`crate::tenancy::invitations`]. The link's secret is only ever in the email,
//! and its hash never leaves the store: responses are [`InvitationView`]s.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use techpass_domain::tenancy::InvitationStatus;
use techpass_store::InvitationRecord;

use super::{created, paths, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody, Page};
use crate::state::AppState;
use crate::tenancy::invitations::{self, EndedMembership, NewInvitation};
use crate::tenancy::Actor;

/// An invitation, without its link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    /// Who invited (a user id, or `app:<client_id>`).
    pub invited_by: String,
    pub created_at: i64,
    /// The link works until then.
    pub expires_at: i64,
    /// The invitee's access ends then (always set for vendors).
    pub access_ends_at: Option<i64>,
    /// `pending`, `accepted`, `revoked`, `expired` or `replaced`.
    pub status: String,
    pub status_at: Option<i64>,
    pub accepted_by: Option<String>,
    pub sent_count: i64,
}

impl From<InvitationRecord> for InvitationView {
    fn from(i: InvitationRecord) -> Self {
        InvitationView {
            id: i.id,
            tenant_id: i.tenant_id,
            email: i.email,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
            access_ends_at: i.access_ends_at,
            status: i.status.as_str().to_string(),
            status_at: i.status_at,
            accepted_by: i.accepted_by,
            sent_count: i.sent_count,
        }
    }
}

/// `?status=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// `pending`, `accepted`, `revoked`, `expired` or `replaced`.
    pub status: Option<String>,
    /// At most 200; 50 when absent.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(
    get,
    path = paths::INVITATIONS,
    tag = "invitations",
    params(("tenant_id" = String, Path), InvitationQuery),
    responses(
        (status = 200, body = [InvitationView]),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<InvitationQuery>,
) -> ApiResult<Json<Vec<InvitationView>>> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(InvitationStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status must be pending, accepted, revoked, expired or replaced")
        })?),
    };
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .bounds()?;
    let list = invitations::list(&state, &actor, &tenant_id, status, limit, offset).await?;
    Ok(Json(list.into_iter().map(InvitationView::from).collect()))
}

/// Invites an email address to the (active) tenant; the link goes by email only. A pending
/// invitation to the same address is replaced.
#[utoipa::path(
    post,
    path = paths::INVITATIONS,
    tag = "invitations",
    params(("tenant_id" = String, Path)),
    request_body = NewInvitation,
    responses(
        (status = 201, body = InvitationView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The tenant is not active", body = ErrorBody),
    )
)]
pub async fn invite(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(new): ApiJson<NewInvitation>,
) -> ApiResult<Response> {
    let invitation = invitations::invite(&state, &actor, &tenant_id, new).await?;
    Ok(created(InvitationView::from(invitation)))
}

/// Sends a pending invitation again with a new link and expiry (the old link stops working).
#[utoipa::path(
    post,
    path = paths::INVITATION_RESEND,
    tag = "invitations",
    params(("tenant_id" = String, Path), ("invitation_id" = String, Path)),
    responses(
        (status = 200, body = InvitationView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not pending", body = ErrorBody),
    )
)]
pub async fn resend_invitation(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, invitation_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<InvitationView>> {
    let invitation = invitations::resend(&state, &actor, &tenant_id, &invitation_id).await?;
    Ok(Json(invitation.into()))
}

/// Revokes a pending invitation.
#[utoipa::path(
    delete,
    path = paths::INVITATION,
    tag = "invitations",
    params(("tenant_id" = String, Path), ("invitation_id" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not pending", body = ErrorBody),
    )
)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, invitation_id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    invitations::revoke(&state, &actor, &tenant_id, &invitation_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Why a membership is ended (kept in the audit log).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EndMembership {
    pub reason: String,
}

/// Ends a member's access to the tenant now: the membership's end date becomes now (kept),
/// their grants and refresh tokens at the tenant's apps are revoked and their assignments,
/// roles and groups in the tenant removed. Their access through other tenants is untouched.
#[utoipa::path(
    post,
    path = paths::MEMBER_END,
    tag = "invitations",
    params(("tenant_id" = String, Path), ("user_id" = String, Path)),
    request_body = EndMembership,
    responses(
        (status = 200, description = "Ended", body = EndedMembership),
        (status = 400, description = "No reason, or too long", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Not a member of this tenant", body = ErrorBody),
        (status = 409, description = "A public officer who is not a member", body = ErrorBody),
    )
)]
pub async fn end_membership(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((tenant_id, user_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<EndMembership>,
) -> ApiResult<Json<EndedMembership>> {
    Ok(Json(
        invitations::end_membership(&state, &actor, &tenant_id, &user_id, &body.reason).await?,
    ))
}
