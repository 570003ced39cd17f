//! The audit log as pages: a tenant's events for its admins, and the whole log for platform
//! admins, newest first, 50 a page over the whole log (the store's keyset cursor), filtered by
//! event, outcome, a date range and a refusal's reference, and on the whole log also by actor,
//! subject, tenant and the email of a refused sign-in. Ids read as names (people by email,
//! apps, groups, tenants, invitations). The same filters download as CSV or JSON lines. Read
//! through [`crate::tenancy::audit_events`], which decides who may see what; it never writes
//! to the log.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use techpass_store::{AuditFilter, AuditRecord};

use super::tenants::{administered, tenant_context};
use super::{
    datetime, emails_of, error_page, fill, paths, render, Fields, Flash, Me, Page, PER_PAGE,
};
use crate::state::AppState;
use crate::tenancy::{require_platform_admin, Actor, TenancyError};

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
    let wanted = Wanted::of(&q, false).map_err(|e| error_page(&state, e))?;
    let mut filter = wanted.filter(&state).await?;
    filter.tenant = Some(tenant.id.clone());
    export(&state, &me.actor, filter, &q.text("format")).await
}

async fn whole_export(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    require_platform_admin(&me.actor).map_err(|e| error_page(&state, e))?;
    let q = Fields::query(q);
    let wanted = Wanted::of(&q, true).map_err(|e| error_page(&state, e))?;
    let filter = wanted.filter(&state).await?;
    export(&state, &me.actor, filter, &q.text("format")).await
}

/// What a page's filter form asks for, as typed (the form shows it back), checked.
#[derive(Debug, Default, Serialize)]
struct Wanted {
    event: String,
    outcome: String,
    /// `YYYY-MM-DD`, days in UTC: from the start of `from` to the end of `to`.
    from: String,
    to: String,
    reference: String,
    /// The whole log only: people by id or email, a tenant by id, a refused sign-in's email.
    actor: String,
    subject: String,
    tenant: String,
    email: String,
    #[serde(skip)]
    since: Option<i64>,
    #[serde(skip)]
    until: Option<i64>,
}

/// The Unix time at the start of a `YYYY-MM-DD` day (UTC).
fn day_start(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

impl Wanted {
    fn of(q: &Fields, whole: bool) -> Result<Wanted, TenancyError> {
        let text = |k: &str| q.text(k).trim().to_string();
        let mut w = Wanted {
            event: text("event"),
            outcome: text("outcome"),
            from: text("from"),
            to: text("to"),
            reference: text("reference"),
            ..Wanted::default()
        };
        if whole {
            w.actor = text("actor");
            w.subject = text("subject");
            w.tenant = text("tenant");
            w.email = text("email").to_ascii_lowercase();
        }
        if !["", "success", "denied", "failure"].contains(&w.outcome.as_str()) {
            return Err(TenancyError::Invalid(format!(
                "there is no outcome {:?}: choose success, denied or failure",
                w.outcome
            )));
        }
        let day = |label: &str, value: &str| -> Result<Option<i64>, TenancyError> {
            if value.is_empty() {
                return Ok(None);
            }
            day_start(value).map(Some).ok_or_else(|| {
                TenancyError::Invalid(format!("{label} {value:?} is not a date (YYYY-MM-DD)"))
            })
        };
        w.since = day("from", &w.from)?;
        w.until = day("to", &w.to)?.map(|t| t + 86_400);
        Ok(w)
    }

    fn any(&self) -> bool {
        [
            &self.event,
            &self.outcome,
            &self.from,
            &self.to,
            &self.reference,
            &self.actor,
            &self.subject,
            &self.tenant,
            &self.email,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }

    /// The query parameters that carry these filters (for links).
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("event", &self.event),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
            ("reference", &self.reference),
            ("actor", &self.actor),
            ("subject", &self.subject),
            ("tenant", &self.tenant),
            ("email", &self.email),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect()
    }

    /// The store's filter: an email names its person's id (the first, if several share it).
    async fn filter(&self, state: &AppState) -> Result<AuditFilter, Response> {
        let some = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
        let person = |text: String| async move {
            match some(&text) {
                None => Ok(None),
                Some(t) => Ok(user_ids(state, &t).await?.into_iter().next()),
            }
        };
        Ok(AuditFilter {
            event: some(&self.event),
            outcome: some(&self.outcome),
            reference: some(&self.reference),
            subject_email: some(&self.email),
            tenant: some(&self.tenant),
            actor: person(self.actor.clone()).await?,
            subject: person(self.subject.clone()).await?,
            since: self.since,
            until: self.until,
            ..AuditFilter::default()
        })
    }
}

#[derive(Debug, Serialize)]
struct EventRow {
    at: String,
    event: String,
    outcome: String,
    reason: Option<String>,
    reference: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    tenant: Option<String>,
    details: String,
}

/// One page of events and the cursor of the next (older) one.
struct Events {
    rows: Vec<EventRow>,
    older: Option<String>,
}

/// A page of the log, newest first, from `cursor` (the `at.id` of the previous page's last
/// event): the store pages by that cursor over the whole log, so no page is out of reach and
/// none repeats or skips an event while new ones arrive.
async fn events(
    state: &AppState,
    actor: &Actor,
    mut filter: AuditFilter,
    cursor: &str,
) -> Result<Events, Response> {
    filter.limit = PER_PAGE as u32;
    if !cursor.is_empty() {
        let parsed = cursor
            .split_once('.')
            .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)));
        filter.after = Some(parsed.ok_or_else(|| {
            error_page(
                state,
                TenancyError::Invalid("that page of the log does not exist".into()),
            )
        })?);
    }
    let records = crate::tenancy::audit_events(state, actor, &filter)
        .await
        .map_err(|e| error_page(state, e))?;
    let older = (records.len() == PER_PAGE)
        .then(|| records.last().map(|r| format!("{}.{}", r.at, r.id)))
        .flatten();
    let names = Names::look_up(state, &records).await?;
    let rows = records
        .into_iter()
        .map(|r| EventRow {
            at: datetime(r.at),
            event: r.event,
            outcome: r.outcome,
            reason: r.reason,
            reference: r.reference,
            actor: r.actor.map(|a| names.of(a)),
            subject: r.subject.map(|s| names.of(s)).or(r.subject_email),
            tenant: r.tenant.map(|t| names.of(t)),
            details: readable_details(&r.details),
        })
        .collect();
    Ok(Events { rows, older })
}

/// What the ids in a page of events are called: people by email, apps, groups and tenants by
/// name, invitations by the address invited. Each id is looked up once; an id that names
/// nothing (deleted since) stays as it is.
struct Names {
    known: std::collections::BTreeMap<String, String>,
}

impl Names {
    async fn look_up(state: &AppState, records: &[AuditRecord]) -> Result<Names, Response> {
        let failed = |e: techpass_store::StoreError| error_page(state, e.into());
        let mut ids: Vec<String> = records
            .iter()
            .flat_map(|r| [r.actor.clone(), r.subject.clone(), r.tenant.clone()])
            .flatten()
            .collect();
        ids.sort();
        ids.dedup();
        let people: Vec<String> = ids
            .iter()
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .cloned()
            .collect();
        let mut known = emails_of(state, &people).await?;
        let store = &state.store;
        for id in ids {
            let app = id.strip_prefix("app:").unwrap_or(&id);
            let name = if app.starts_with("app_") {
                store
                    .get_client(app)
                    .await
                    .map_err(failed)?
                    .map(|c| format!("app {}", c.name))
            } else if id.starts_with("grp_") {
                store
                    .get_group(&id)
                    .await
                    .map_err(failed)?
                    .map(|g| format!("group {}", g.name))
            } else if id.starts_with("inv_") {
                store
                    .get_invitation(&id)
                    .await
                    .map_err(failed)?
                    .map(|i| format!("invitation of {}", i.email))
            } else if id.starts_with("tnt_") {
                store.get_tenant(&id).await.map_err(failed)?.map(|t| t.name)
            } else {
                None
            };
            if let Some(name) = name {
                known.insert(id, name);
            }
        }
        Ok(Names { known })
    }

    fn of(&self, id: String) -> String {
        self.known.get(&id).cloned().unwrap_or(id)
    }
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
    let here = fill(paths::TENANT_AUDIT, &[("tenant_id", &tenant.id)]);
    let wanted = Wanted::of(&q, false).map_err(|e| error_page(&state, e))?;
    let mut filter = wanted.filter(&state).await?;
    filter.tenant = Some(tenant.id.clone());
    let found = events(&state, &me.actor, filter, &q.text("cursor")).await?;
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/audit.html",
        minijinja::context! {
            title => format!("Audit log of {}", tenant.name),
            whole => false,
            ..minijinja::context! {
                ..page_context(&here, &wanted, found, !q.text("cursor").is_empty()),
                ..tenant_context(&tenant, "audit")
            }
        },
    ))
}

async fn whole_log(State(state): State<AppState>, me: Me, RawQuery(q): RawQuery) -> Page {
    require_platform_admin(&me.actor).map_err(|e| error_page(&state, e))?;
    let q = Fields::query(q);
    let wanted = Wanted::of(&q, true).map_err(|e| error_page(&state, e))?;
    let filter = wanted.filter(&state).await?;
    let found = events(&state, &me.actor, filter, &q.text("cursor")).await?;
    Ok(render(
        &state,
        &me,
        &Flash::from_query(&q),
        "portal/audit.html",
        minijinja::context! {
            title => "Audit log",
            whole => true,
            admin_section => "audit",
            ..page_context(paths::ADMIN_AUDIT, &wanted, found, !q.text("cursor").is_empty())
        },
    ))
}

/// What both pages show: the filters, the rows, links to the newest and to older events, and
/// the exports of the same filters.
fn page_context(here: &str, wanted: &Wanted, found: Events, paged: bool) -> minijinja::Value {
    let link = |path: &str, extra: &[(&str, &str)]| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in wanted.pairs().into_iter().chain(extra.iter().copied()) {
            q.append_pair(k, v);
        }
        let q = q.finish();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    };
    let with = |extra: &[(&str, &str)]| link(here, extra);
    let export = |format: &str| link(&format!("{here}/export"), &[("format", format)]);
    minijinja::context! {
        events => found.rows,
        action => here,
        filters => wanted,
        filtered => wanted.any(),
        newest => paged.then(|| with(&[])),
        older => found.older.map(|c| with(&[("cursor", &c)])),
        export_csv => export("csv"),
        export_jsonl => export("jsonl"),
    }
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
