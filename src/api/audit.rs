//! The audit log over the API: a tenant's events for its admins (and its automation app), the
//! whole log for platform admins, filtered as the portal's pages and exports are and paged with
//! the log's keyset cursor (no duplicates or gaps while events keep arriving). Thin handlers
//! over [`crate::tenancy::audit_events`].

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Serialize;
use techpass_store::{AuditFilter, AuditRecord};

use super::{paths, ApiPath, ApiResult, ErrorBody};
use crate::state::AppState;
use crate::tenancy::{self, Actor, TenancyError};

/// Events per page: 50 unless `limit` says otherwise, at most 200.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    /// Unix seconds, and the same as RFC 3339 in `time`.
    pub at: i64,
    pub time: String,
    /// e.g. `signin`, `app.created`, `ci.exchange`.
    pub event: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// A short stable code for refusals, e.g. `no_mfa`.
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub upstream: Option<String>,
    pub request_id: Option<String>,
    /// The reference a refusal page showed the person.
    pub reference: Option<String>,
    /// The email of the person concerned, also for refused sign-ins without an account.
    pub subject_email: Option<String>,
    /// What the event says besides, as a JSON object.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditRecord> for AuditEventView {
    fn from(r: AuditRecord) -> Self {
        AuditEventView {
            details: serde_json::from_str(&r.details)
                .unwrap_or(serde_json::Value::String(r.details.clone())),
            time: techpass_service::dates::rfc3339(r.at),
            id: r.id,
            at: r.at,
            event: r.event,
            outcome: r.outcome,
            reason: r.reason,
            actor: r.actor,
            subject: r.subject,
            tenant: r.tenant,
            upstream: r.upstream,
            request_id: r.request_id,
            reference: r.reference,
            subject_email: r.subject_email,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The filter a query asks for. Unknown parameters and malformed values are a 400 naming them.
fn filter_of(query: Option<String>, whole_log: bool) -> Result<AuditFilter, TenancyError> {
    let invalid = |m: String| TenancyError::Invalid(m);
    let mut filter = AuditFilter {
        limit: DEFAULT_LIMIT,
        ..AuditFilter::default()
    };
    let query = query.unwrap_or_default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let text = || Some(value.to_string()).filter(|v| !v.is_empty());
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| invalid(format!("{key} must be a whole number, not {value:?}")))
        };
        match key.as_ref() {
            "event" => filter.event = text(),
            "outcome" => {
                if !["", "success", "denied", "failure"].contains(&value.as_ref()) {
                    return Err(invalid(format!(
                        "outcome is success, denied or failure, not {value:?}"
                    )));
                }
                filter.outcome = text();
            }
            "actor" => filter.actor = text(),
            "subject" => filter.subject = text(),
            "reference" => filter.reference = text(),
            "email" => filter.subject_email = text().map(|e| e.to_ascii_lowercase()),
            "tenant" if whole_log => filter.tenant = text(),
            "since" => filter.since = Some(number()?),
            "until" => filter.until = Some(number()?),
            "limit" => {
                let n = number()?;
                if !(1..=i64::from(MAX_LIMIT)).contains(&n) {
                    return Err(invalid(format!("limit is 1 to {MAX_LIMIT}")));
                }
                filter.limit = n as u32;
            }
            "cursor" => {
                let parsed = value
                    .split_once('.')
                    .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)));
                filter.after = Some(parsed.ok_or_else(|| {
                    invalid("cursor is the next_cursor of a previous page".into())
                })?);
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?} (event, outcome, actor, subject, reference, \
                     email, since, until, limit, cursor{})",
                    if whole_log { ", tenant" } else { "" }
                )))
            }
        }
    }
    Ok(filter)
}

fn page_of(records: Vec<AuditRecord>, limit: u32) -> AuditPage {
    let next_cursor = (records.len() == limit as usize)
        .then(|| records.last().map(|r| format!("{}.{}", r.at, r.id)))
        .flatten();
    AuditPage {
        events: records.into_iter().map(AuditEventView::from).collect(),
        next_cursor,
    }
}

/// A tenant's audit log: its admins, platform admins and the tenant's automation app.
#[utoipa::path(
    get,
    path = paths::TENANT_AUDIT,
    tag = "audit",
    params(
        ("tenant_id" = String, Path),
        ("event" = Option<String>, Query), ("outcome" = Option<String>, Query),
        ("actor" = Option<String>, Query), ("subject" = Option<String>, Query),
        ("reference" = Option<String>, Query), ("email" = Option<String>, Query),
        ("since" = Option<i64>, Query, description = "Unix seconds, inclusive"),
        ("until" = Option<i64>, Query, description = "Unix seconds, exclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn tenant_audit(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(tenant_id): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    let mut filter = filter_of(query, false)?;
    filter.tenant = Some(tenant_id);
    let records = tenancy::audit_events(&state, &actor, &filter).await?;
    Ok(Json(page_of(records, filter.limit)))
}

/// The whole audit log: platform admins only; `tenant` narrows it to one tenant.
#[utoipa::path(
    get,
    path = paths::AUDIT,
    tag = "audit",
    params(
        ("tenant" = Option<String>, Query),
        ("event" = Option<String>, Query), ("outcome" = Option<String>, Query),
        ("actor" = Option<String>, Query), ("subject" = Option<String>, Query),
        ("reference" = Option<String>, Query), ("email" = Option<String>, Query),
        ("since" = Option<i64>, Query, description = "Unix seconds, inclusive"),
        ("until" = Option<i64>, Query, description = "Unix seconds, exclusive"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub async fn whole_audit(
    State(state): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    tenancy::require_platform_admin(&actor)?;
    let filter = filter_of(query, true)?;
    let records = tenancy::audit_events(&state, &actor, &filter).await?;
    Ok(Json(page_of(records, filter.limit)))
}
