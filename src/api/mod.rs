//! The versioned JSON API under `/api/v1`: the same tenant operations as the portal, over the
//! service functions of [`crate::tenancy`] and [`crate::webhooks`], with an OpenAPI document
//! generated from this code (`GET /api/v1/openapi.json`).
//!
//! This module owns the route table (one list that builds the router, the route constants and
//! the OpenAPI document), the typed extractors whose rejections are JSON, and the single mapping
//! of service errors to HTTP statuses. Authentication lives in [`auth`]; each area's handlers
//! and response types (never store records: no hashes or sealed secrets leave here) in their
//! own file. It must not hold business rules or authorisation decisions beyond *who is
//! calling*: those belong to the service layer, which every handler calls exactly once.

mod access;
mod apps;
mod audit;
pub mod auth;
mod ci_issuers;
mod groups;
mod invitations;
mod resources;
mod tenants;
mod users;
mod webhooks;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use techpass_store::StoreError;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

pub use auth::api_audience;

use crate::provider::no_store;
use crate::state::AppState;
use crate::tenancy::TenancyError;

/// The API's route templates (axum and OpenAPI share the `{name}` syntax).
pub mod paths {
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    pub const ME: &str = "/api/v1/me";
    pub const TENANTS: &str = "/api/v1/tenants";
    pub const TENANT: &str = "/api/v1/tenants/{tenant_id}";
    pub const TENANT_DECISION: &str = "/api/v1/tenants/{tenant_id}/decision";
    pub const DIRECT_TENANTS: &str = "/api/v1/admin/tenants";
    pub const AUDIT: &str = "/api/v1/admin/audit";
    pub const TENANT_AUDIT: &str = "/api/v1/tenants/{tenant_id}/audit";
    pub const ADMIN_USER_ENABLE: &str = "/api/v1/admin/users/{user_id}/enable";
    pub const PENDING_GRANTS: &str = "/api/v1/tenants/{tenant_id}/pending-grants";
    pub const PENDING_GRANT: &str = "/api/v1/tenants/{tenant_id}/pending-grants/{grant_id}";
    pub const ADMINS: &str = "/api/v1/tenants/{tenant_id}/admins";
    pub const ADMIN: &str = "/api/v1/tenants/{tenant_id}/admins/{user_id}";
    pub const INVITATIONS: &str = "/api/v1/tenants/{tenant_id}/invitations";
    pub const INVITATION: &str = "/api/v1/tenants/{tenant_id}/invitations/{invitation_id}";
    pub const INVITATION_RESEND: &str =
        "/api/v1/tenants/{tenant_id}/invitations/{invitation_id}/resend";
    pub const MEMBER_END: &str = "/api/v1/tenants/{tenant_id}/members/{user_id}/end";
    pub const APPS: &str = "/api/v1/tenants/{tenant_id}/apps";
    pub const APP: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}";
    pub const APP_SECRETS: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/secrets";
    pub const APP_SECRET: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/secrets/{secret_id}";
    pub const APP_KEYS: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/keys";
    pub const APP_CI_ISSUERS: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/ci-issuers";
    pub const APP_CI_ISSUER: &str =
        "/api/v1/tenants/{tenant_id}/apps/{client_id}/ci-issuers/{issuer_id}";
    pub const APP_ASSIGNMENTS: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/assignments";
    pub const APP_ASSIGNMENT: &str =
        "/api/v1/tenants/{tenant_id}/apps/{client_id}/assignments/{principal_type}/{principal_id}";
    pub const APP_ROLES: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/roles";
    pub const APP_ROLE_GRANTS: &str =
        "/api/v1/tenants/{tenant_id}/apps/{client_id}/roles/{role}/grants";
    pub const APP_ROLE_GRANT: &str =
        "/api/v1/tenants/{tenant_id}/apps/{client_id}/roles/{role}/grants/{principal_type}/{principal_id}";
    pub const APP_REVIEW: &str = "/api/v1/tenants/{tenant_id}/apps/{client_id}/access-review";
    pub const APP_REVIEW_REMOVE: &str =
        "/api/v1/tenants/{tenant_id}/apps/{client_id}/access-review/remove";
    pub const GROUPS: &str = "/api/v1/tenants/{tenant_id}/groups";
    pub const GROUP: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}";
    pub const GROUP_MEMBERS: &str = "/api/v1/tenants/{tenant_id}/groups/{group_id}/members";
    pub const GROUP_MEMBER: &str =
        "/api/v1/tenants/{tenant_id}/groups/{group_id}/members/{user_id}";
    pub const RESOURCES: &str = "/api/v1/tenants/{tenant_id}/resources";
    pub const RESOURCE: &str = "/api/v1/tenants/{tenant_id}/resources/{resource_id}";
    pub const RESOURCE_GRANTS: &str = "/api/v1/tenants/{tenant_id}/resources/{resource_id}/grants";
    pub const RESOURCE_GRANT: &str =
        "/api/v1/tenants/{tenant_id}/resources/{resource_id}/grants/{client_id}";
    pub const WEBHOOKS: &str = "/api/v1/tenants/{tenant_id}/webhooks";
    pub const WEBHOOK: &str = "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}";
    pub const WEBHOOK_VERIFY: &str = "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/verify";
    pub const WEBHOOK_DELIVERIES: &str =
        "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries";
    pub const WEBHOOK_TEST: &str = "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test";
    pub const WEBHOOK_SECRET: &str = "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/secret";
    pub const WEBHOOK_REDELIVER: &str =
        "/api/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver";
}

/// One table of (method, path, handler) builds the router, [`ROUTES`] and the OpenAPI
/// document, so a route cannot be served without being documented (the e2e test also checks
/// each handler's `#[utoipa::path]` names the same method and path).
macro_rules! api_routes {
    ($($method:ident $path:ident => $module:ident :: $handler:ident,)*) => {
        /// Every (method, path template) the API serves, in lowercase method names.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), paths::$path)),*];

        /// The API's routes; every response carries `Cache-Control: no-store`.
        pub fn router() -> Router<AppState> {
            Router::new()
                $(.route(paths::$path, axum::routing::$method($module::$handler)))*
                .layer(axum::middleware::map_response(always_no_store))
        }

        /// The OpenAPI document of the API.
        #[derive(OpenApi)]
        #[openapi(
            info(
                title = "TechPass API",
                version = "1",
                description = "Tenant administration: tenants, co-admins, invitations, apps and \
                    their credentials, access, groups, API resources and webhooks. Call it with the portal's \
                    session cookie (and `X-CSRF-Token` on anything but GET, from `GET /api/v1/me`) \
                    or with a `client_credentials` access token of a tenant app granted API \
                    access, requested with `resource=<issuer>/api/v1` (the API audience)."
            ),
            paths($($module::$handler),*),
            modifiers(&SecuritySchemes),
            security(("bearer" = []), ("session" = [])),
            tags(
                (name = "caller", description = "Who is calling, and the API document"),
                (name = "tenants", description = "Onboarding, direct registration and co-admins"),
                (name = "invitations", description = "Inviting people to a tenant"),
                (name = "apps", description = "A tenant's OIDC clients, their credentials and the CI issuers they trust"),
                (name = "access", description = "Who may use an app (also by email before a first sign-in), and its roles"),
                (name = "groups", description = "A tenant's groups"),
                (name = "resources", description = "A tenant's API resources (RFC 8707): audiences and scopes granted to its apps"),
                (name = "webhooks", description = "Signed event notifications"),
                (name = "people", description = "Platform administration of people's accounts"),
                (name = "audit", description = "The audit log: a tenant's events, or the whole log for platform admins"),
            )
        )]
        pub struct ApiDoc;
    };
}

api_routes! {
    get OPENAPI => auth::openapi_document,
    get ME => auth::me,
    get TENANTS => tenants::list_tenants,
    post TENANTS => tenants::request_tenant,
    get TENANT => tenants::get_tenant,
    post TENANT_DECISION => tenants::decide_tenant,
    post DIRECT_TENANTS => tenants::create_tenant,
    post ADMIN_USER_ENABLE => users::enable_user,
    get AUDIT => audit::whole_audit,
    get TENANT_AUDIT => audit::tenant_audit,
    get ADMINS => tenants::list_admins,
    post ADMINS => tenants::add_admin,
    delete ADMIN => tenants::remove_admin,
    get INVITATIONS => invitations::list_invitations,
    post INVITATIONS => invitations::invite,
    delete INVITATION => invitations::revoke_invitation,
    post INVITATION_RESEND => invitations::resend_invitation,
    post MEMBER_END => invitations::end_membership,
    get APPS => apps::list_apps,
    post APPS => apps::create_app,
    get APP => apps::get_app,
    patch APP => apps::update_app,
    delete APP => apps::delete_app,
    get APP_SECRETS => apps::list_secrets,
    post APP_SECRETS => apps::add_secret,
    delete APP_SECRET => apps::revoke_secret,
    put APP_KEYS => apps::set_keys,
    get APP_CI_ISSUERS => ci_issuers::list_ci_issuers,
    post APP_CI_ISSUERS => ci_issuers::add_ci_issuer,
    delete APP_CI_ISSUER => ci_issuers::remove_ci_issuer,
    get APP_ASSIGNMENTS => access::list_assignments,
    post APP_ASSIGNMENTS => access::assign,
    delete APP_ASSIGNMENT => access::unassign,
    get APP_ROLES => access::list_roles,
    post APP_ROLES => access::define_role,
    post APP_ROLE_GRANTS => access::grant_role,
    delete APP_ROLE_GRANT => access::revoke_role,
    get APP_REVIEW => access::access_review,
    post APP_REVIEW_REMOVE => access::remove_access,
    get PENDING_GRANTS => access::list_pending_grants,
    post PENDING_GRANTS => access::grant_by_email,
    delete PENDING_GRANT => access::revoke_pending_grant,
    get GROUPS => groups::list_groups,
    post GROUPS => groups::create_group,
    delete GROUP => groups::delete_group,
    get GROUP_MEMBERS => groups::list_members,
    post GROUP_MEMBERS => groups::add_member,
    delete GROUP_MEMBER => groups::remove_member,
    get RESOURCES => resources::list_resources,
    post RESOURCES => resources::create_resource,
    delete RESOURCE => resources::delete_resource,
    get RESOURCE_GRANTS => resources::list_resource_grants,
    put RESOURCE_GRANT => resources::grant_resource,
    delete RESOURCE_GRANT => resources::revoke_resource,
    get WEBHOOKS => webhooks::list_webhooks,
    post WEBHOOKS => webhooks::create_webhook,
    delete WEBHOOK => webhooks::delete_webhook,
    post WEBHOOK_VERIFY => webhooks::verify_webhook,
    get WEBHOOK_DELIVERIES => webhooks::list_deliveries,
    patch WEBHOOK => webhooks::update_webhook,
    post WEBHOOK_TEST => webhooks::test_webhook,
    post WEBHOOK_SECRET => webhooks::rotate_secret,
    post WEBHOOK_REDELIVER => webhooks::redeliver,
}

async fn always_no_store(response: Response) -> Response {
    no_store(response)
}

/// The security schemes the document names: a Bearer access token (JWT, RFC 9068) and the
/// portal's session cookie.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "A client_credentials access token whose `aud` is the API audience \
             (`<issuer>/api/v1`), of an enabled app of an active tenant with API access."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "tp_session",
                "The portal's session cookie (`__Host-tp_session` over https). Requests other \
                 than GET must also send `X-CSRF-Token` (from `GET /api/v1/me`).",
            ))),
        );
    }
}

/// An error as the API shows it: `{"error": "<code>", "message": "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid_request`, `unauthorized`, `invalid_token`, `insufficient_scope`,
    /// `csrf_failed`, `forbidden`, `not_found`, `conflict`, `unavailable`, …
    pub error: String,
    pub message: String,
}

/// A refused request. The only error type of this module that becomes a response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// A `WWW-Authenticate` challenge (RFC 6750 §3).
    challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The store failed: logged with its detail, shown without it.
    pub fn unavailable(error: &StoreError) -> Self {
        tracing::error!(error = %error, "the API cannot reach its database");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "TechPass cannot reach its database right now; try again shortly",
        )
    }
}

/// The one mapping of service errors to statuses.
impl From<TenancyError> for ApiError {
    fn from(error: TenancyError) -> Self {
        let message = error.to_string();
        match error {
            TenancyError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            TenancyError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            TenancyError::Invalid(_) => ApiError::bad_request(message),
            TenancyError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            TenancyError::Store(e) => ApiError::unavailable(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::unavailable(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.into(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        no_store(response)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body; malformed or mistyped JSON is a 400 naming the problem, never a 500.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            rejection.body_text(),
        );
    }
    let message = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as JSON with `Content-Type: application/json`".to_string()
        }
        other => other.body_text(),
    };
    ApiError::bad_request(message)
}

/// Path parameters; a rejection is a 400 in the API's error shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Query parameters; a rejection is a 400 in the API's error shape.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// `?limit=&offset=` of list routes: limit 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most 200; 50 when absent.
    pub limit: Option<i64>,
    /// How many to skip; 0 when absent.
    pub offset: Option<i64>,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

impl Page {
    /// (limit, offset), or a 400 saying what is allowed.
    pub fn bounds(self) -> ApiResult<(i64, i64)> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::bad_request("offset must not be negative"));
        }
        Ok((limit, offset))
    }
}

/// `201 Created` with a JSON body.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The document, with this deployment's issuer as its server.
pub fn document(state: &AppState) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(
        state.metadata.issuer.trim_end_matches('/'),
    )]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_method_and_path() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let served: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(Page::default().bounds().unwrap(), (50, 0));
        assert!(Page {
            limit: Some(201),
            offset: None
        }
        .bounds()
        .is_err());
        assert!(Page {
            limit: Some(0),
            offset: None
        }
        .bounds()
        .is_err());
        assert!(Page {
            limit: None,
            offset: Some(-1)
        }
        .bounds()
        .is_err());
        assert_eq!(
            Page {
                limit: Some(200),
                offset: Some(3)
            }
            .bounds()
            .unwrap(),
            (200, 3)
        );
    }
}
