//! People over the API: a platform admin re-enables a disabled account. A thin handler over
//! [`crate::accounts::enable`], which decides who may and from which status.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::{paths, ApiError, ApiPath, ApiResult, ErrorBody};
use crate::accounts::{self, AccountError};
use crate::state::AppState;
use crate::tenancy::Actor;

/// An account's status after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountStatusView {
    pub user_id: String,
    pub email: Option<String>,
    /// `registered` (officers), `active` (vendors), `expired` (a vendor past the access end
    /// date) or `unregistered` (never registered).
    pub status: String,
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let message = error.to_string();
        match error {
            AccountError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            AccountError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            AccountError::WrongStatus(_) | AccountError::Ambiguous { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            AccountError::Store(e) => ApiError::unavailable(&e),
        }
    }
}

/// Re-enable a `disabled` account (platform admins only): officers become registered again,
/// vendors active (or expired past their access end date); inactivity counts from now. 409 if
/// the account is not disabled.
#[utoipa::path(
    post,
    path = paths::ADMIN_USER_ENABLE,
    tag = "people",
    params(("user_id" = String, Path, description = "The person's TechPass user id")),
    responses(
        (status = 200, body = AccountStatusView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    )
)]
pub async fn enable_user(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<Json<AccountStatusView>> {
    let (user, status) = accounts::enable(&state, &actor, &user_id).await?;
    Ok(Json(AccountStatusView {
        user_id: user.id,
        email: user.email,
        status: status.as_str().to_string(),
    }))
}
