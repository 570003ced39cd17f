//! The audit log as pages: a tenant's events for its admins, and the whole log with filters
//! (event, actor, subject, tenant as query parameters) for platform admins, newest first, 50 a
//! page. The log has no service function, so this reads the store (`list_audit`) after the
//! service layer said the person may see it; it must never write to the log.
//!
//! Limits of the store's filter: it pages by id, not offset, and has no actor filter, so pages
//! reach back over the newest 1,000 matching events, and the actor filter looks among those.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use techpass_store::{AuditFilter, AuditRecord};

use super::tenants::{administered, tenant_context};
use super::{
    datetime, emails_of, error_page, fill, paths, render, slice, Fields, Flash, Me, Page, Pager,
    PER_PAGE,
};
use crate::state::AppState;
use crate::tenancy::require_platform_admin;
use crate::tenancy::Actor;

/// How far back the pages reach (the store's cap on one listing).
const REACH: u32 = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::TENANT_AUDIT, get(tenant_log))
        .route(paths::ADMIN_AUDIT, get(whole_log))
        .route(paths::TENANT_AUDIT_EXPORT, get(tenant_export))
        .route(paths::ADMIN_AUDIT_EXPORT, get(whole_export))
}

/// The events of `filter` as a download: `csv` or `jsonl` (up to the newest 10,000).
async fn export(state: &AppState, actor: &Actor, filter: AuditFilter, format: &str) -> Page {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let (content_type, extension) = match format {
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "jsonl" => ("application/x-ndjson", "jsonl"),
        other => {
            return Err(error_page(
                state,
                crate::tenancy::TenancyError::Invalid(format!(
                    "there is no export format {other:?}: choose csv or jsonl"
                )),
            ))
        }
    };
    let records = crate::tenancy::audit_export(state, actor, &filter)
        .await
        .map_err(|e| error_page(state, e))?;
    let body = if extension == "csv" {
        crate::tenancy::audit_csv(&records)
    } else {
        crate::tenancy::audit_jsonl(&records)
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"techpass-audit.{extension}\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn tenant_export(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    let tenant = administered(&state, &me, &tenant_id).await?;
    let filter = AuditFilter {
        tenant: Some(tenant.id.clone()),
        event: q.opt("event"),
        ..AuditFilter::default()
    };
    export(&state, &me.actor, filter, &q.text("format")).await
}

async fn whole_export(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    require_platform_admin(&me.actor).map_err(|e| error_page(&state, e))?;
    let q = Fields::query(q);
    let some = |v: String| Some(v).filter(|v| !v.is_empty());
    let actor = match some(q.text("actor")) {
        None => None,
        Some(a) => user_ids(&state, &a).await?.into_iter().next(),
    };
    let subject = match some(q.text("subject")) {
        None => None,
        Some(s) => user_ids(&state, &s).await?.into_iter().next(),
    };
    let filter = AuditFilter {
        event: some(q.text("event")),
        actor,
        subject,
        tenant: some(q.text("tenant")),
        ..AuditFilter::default()
    };
    export(&state, &me.actor, filter, &q.text("format")).await
}

#[derive(Debug, Serialize)]
struct EventRow {
    at: String,
    event: String,
    outcome: String,
    reason: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    tenant: Option<String>,
    details: String,
}

/// One page of events: the rows, whether another page follows, and whether the listing hit
/// the reach (so older events exist that these pages do not show).
struct Events {
    rows: Vec<EventRow>,
    more: bool,
    beyond_reach: bool,
}

async fn events(
    state: &AppState,
    actor: &Actor,
    mut filter: AuditFilter,
    actors: Option<&[String]>,
    page: u32,
) -> Result<Events, Response> {
    let wanted = page.saturating_mul(PER_PAGE as u32).saturating_add(1);
    // Without an actor filter, only what this page needs; with one, the whole reach.
    filter.limit = if actors.is_some() {
        REACH
    } else {
        wanted.min(REACH)
    };
    let listed = crate::tenancy::audit_events(state, actor, &filter)
        .await
        .map_err(|e| error_page(state, e))?;
    let beyond_reach = listed.len() as u32 >= REACH;
    let matching: Vec<AuditRecord> = match actors {
        Some(ids) => listed
            .into_iter()
            .filter(|r| r.actor.as_ref().is_some_and(|a| ids.contains(a)))
            .collect(),
        None => listed,
    };
    let (records, more) = slice(matching, page);
    let mut ids: Vec<String> = records.iter().filter_map(|r| r.actor.clone()).collect();
    ids.extend(records.iter().filter_map(|r| r.subject.clone()));
    // Only ids that look like user ids are looked up; others (cli, app:…, invitation ids) stay.
    ids.retain(|id| uuid::Uuid::parse_str(id).is_ok());
    let names = emails_of(state, &ids).await?;
    let name = |id: Option<String>| id.map(|i| names.get(&i).cloned().unwrap_or(i));
    // Tenants by name, each looked up once.
    let mut tenant_names = std::collections::HashMap::new();
    for id in records.iter().filter_map(|r| r.tenant.clone()) {
        if let std::collections::hash_map::Entry::Vacant(slot) = tenant_names.entry(id) {
            let found = state
                .store
                .get_tenant(slot.key())
                .await
                .map_err(|e| error_page(state, e.into()))?;
            if let Some(t) = found {
                slot.insert(t.name);
            }
        }
    }
    let rows = records
        .into_iter()
        .map(|r| EventRow {
            at: datetime(r.at),
            event: r.event,
            outcome: r.outcome,
            reason: r.reason,
            actor: name(r.actor),
            subject: name(r.subject),
            tenant: r.tenant.map(|t| tenant_names.get(&t).cloned().unwrap_or(t)),
            details: readable_details(&r.details),
        })
        .collect();
    Ok(Events {
        rows,
        more: more && wanted <= REACH,
        beyond_reach,
    })
}

/// An event's details as a person reads them: `key: value` pairs separated by semicolons
/// (nested values as compact JSON), or the text itself when it is not a JSON object.
fn readable_details(details: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(details) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{}: {s}", k.replace('_', " ")),
                other => format!("{}: {other}", k.replace('_', " ")),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => details.to_string(),
    }
}

/// The query of an export link: the page's filters and the format.
fn export_query(filters: &[(&str, &str)], format: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.append_pair("format", format);
    q.finish()
}

/// The ids a filter names: the users with that email address, or the text itself (a user id,
/// `cli`, `app:<client id>`, or another subject id).
async fn user_ids(state: &AppState, text: &str) -> Result<Vec<String>, Response> {
    crate::accounts::ids_named_by(state, text)
        .await
        .map_err(|e| error_page(state, e.into()))
}

async fn tenant_log(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    me: Me,
    RawQuery(q): RawQuery,
) -> Page {
    let q = Fields::query(q);
    let tenant = administered(&state, &me, &tenant_id).await?;
    let event = q.opt("event");
    let page = q.page();
    let found = events(
        &state,
        &me.actor,
        AuditFilter {
            tenant: Some(tenant.id.clone()),
            event: event.clone(),
            ..AuditFilter::default()
        },
        None,
        page,
    )
    .await?;
    let here = fill(paths::TENANT_AUDIT, &[("tenant_id", &tenant.id)]);
    let event = event.unwrap_or_default();
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/audit.html",
        minijinja::context! {
            title => format!("Audit log of {}", tenant.name),
            events => found.rows,
            beyond_reach => found.beyond_reach,
            action => here,
            filters => minijinja::context! { event => event },
            whole => false,
            export_csv => format!("{here}/export?{}", export_query(&[("event", &event)], "csv")),
            export_jsonl => format!("{here}/export?{}", export_query(&[("event", &event)], "jsonl")),
            pager => Pager::new(&here, &[("event", &event)], page, found.more),
            ..tenant_context(&tenant, "audit")
        },
    ))
}

async fn whole_log(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    require_platform_admin(&me.actor).map_err(|e| error_page(&state, e))?;
    let q = Fields::query(q);
    let page = q.page();
    let (event, actor, subject, tenant) = (
        q.text("event"),
        q.text("actor"),
        q.text("subject"),
        q.text("tenant"),
    );
    let some = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
    let actors = match some(&actor) {
        None => None,
        Some(a) => Some(user_ids(&state, &a).await?),
    };
    let subject_ids = match some(&subject) {
        None => None,
        Some(s) => Some(user_ids(&state, &s).await?),
    };
    let found = events(
        &state,
        &me.actor,
        AuditFilter {
            event: some(&event),
            // An email names its person's id (the first, if several people share it).
            subject: subject_ids.and_then(|ids| ids.into_iter().next()),
            tenant: some(&tenant),
            ..AuditFilter::default()
        },
        actors.as_deref(),
        page,
    )
    .await?;
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/audit.html",
        minijinja::context! {
            title => "Audit log",
            events => found.rows,
            beyond_reach => found.beyond_reach,
            action => paths::ADMIN_AUDIT,
            filters => minijinja::context! {
                event => event, actor => actor, subject => subject, tenant => tenant,
            },
            whole => true,
            admin_section => "audit",
            export_csv => format!("{}?{}", paths::ADMIN_AUDIT_EXPORT, export_query(&[("event", &event), ("actor", &actor), ("subject", &subject), ("tenant", &tenant)], "csv")),
            export_jsonl => format!("{}?{}", paths::ADMIN_AUDIT_EXPORT, export_query(&[("event", &event), ("actor", &actor), ("subject", &subject), ("tenant", &tenant)], "jsonl")),
            pager => Pager::new(
                paths::ADMIN_AUDIT,
                &[("event", &event), ("actor", &actor), ("subject", &subject), ("tenant", &tenant)],
                page,
                found.more,
            ),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::readable_details;

    #[test]
    fn details_read_as_text() {
        assert_eq!(
            readable_details(
                r#"{"email":"a@b.gov.sg","grants_revoked":2,"by":null,"amr":["pwd","mfa"]}"#
            ),
            "amr: [\"pwd\",\"mfa\"]; email: a@b.gov.sg; grants revoked: 2"
        );
        assert_eq!(readable_details("plain"), "plain");
        assert_eq!(readable_details("{}"), "");
    }
}
