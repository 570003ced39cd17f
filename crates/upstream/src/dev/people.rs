//! The people page: the development directory, with a button to disable or enable each test
//! person (what an Azure AD administrator does when someone leaves). A disabled person cannot
//! sign in and their refresh tokens are refused, so TechPass's re-verification can be tried.
//!
//! The form is guarded against cross-site requests by the browser's own headers (OWASP's
//! "verifying origin with standard headers"): a change is accepted only when `Sec-Fetch-Site`
//! is `same-origin` or, without it, when `Origin` is this upstream's origin. Like the rest of the
//! development upstream it has no login: anyone who reaches it can change it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::params::{is_form, Params};
use super::{people, person, tenant_label, DevUpstream};

pub(super) const PEOPLE_PATH: &str = "/people";

/// Where the development upstream keeps who is disabled.
#[async_trait]
pub trait DisabledPeople: Send + Sync + std::fmt::Debug {
    /// The disabled people's keys.
    async fn disabled(&self) -> Result<Vec<String>, String>;
    /// Disables (`true`) or enables the person `key`; idempotent.
    async fn set_disabled(&self, key: &str, disabled: bool) -> Result<(), String>;
}

/// This process's memory: for a development upstream on its own (tests).
#[derive(Debug, Default)]
pub struct InMemoryDisabled(Mutex<BTreeSet<String>>);

#[async_trait]
impl DisabledPeople for InMemoryDisabled {
    async fn disabled(&self) -> Result<Vec<String>, String> {
        let set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(set.iter().cloned().collect())
    }

    async fn set_disabled(&self, key: &str, disabled: bool) -> Result<(), String> {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if disabled {
            set.insert(key.to_owned());
        } else {
            set.remove(key);
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct Row {
    key: &'static str,
    name: &'static str,
    email: &'static str,
    tenant: &'static str,
    disabled: bool,
}

#[derive(Serialize)]
struct View {
    action: String,
    people: Vec<Row>,
    changed: Option<String>,
}

pub(super) async fn show(State(dev): State<Arc<DevUpstream>>) -> Response {
    dev.people_page(StatusCode::OK, None).await
}

pub(super) async fn change(
    State(dev): State<Arc<DevUpstream>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !dev.same_origin(&headers) {
        return dev.error_page(
            StatusCode::FORBIDDEN,
            None,
            "This change did not come from the people page itself (cross-site request refused).",
        );
    }
    if !is_form(&headers) {
        return dev.error_page(
            StatusCode::BAD_REQUEST,
            Some(900144),
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let params = Params::parse(&body);
    let (Ok(Some(key)), Ok(Some(action))) = (params.get("person"), params.get("action")) else {
        return dev.error_page(
            StatusCode::BAD_REQUEST,
            None,
            "Name one person and one action (disable or enable).",
        );
    };
    let Some(person) = person(key) else {
        return dev.error_page(
            StatusCode::BAD_REQUEST,
            None,
            &format!("There is no test person '{key}'."),
        );
    };
    let disable = match action {
        "disable" => true,
        "enable" => false,
        _ => {
            return dev.error_page(
                StatusCode::BAD_REQUEST,
                None,
                "The action must be disable or enable.",
            )
        }
    };
    if let Err(e) = dev.disabled.set_disabled(person.key, disable).await {
        tracing::error!(error = %e, "development upstream: could not change a person");
        return dev.error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(50000),
            "The change could not be saved; try again.",
        );
    }
    let changed = format!(
        "{} is now {}.",
        person.name,
        if disable { "disabled" } else { "enabled" }
    );
    dev.people_page(StatusCode::OK, Some(changed)).await
}

impl DevUpstream {
    /// `Sec-Fetch-Site: same-origin`, or (older browsers) an `Origin` equal to this upstream's.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        if let Some(site) = headers.get("sec-fetch-site") {
            return site.as_bytes() == b"same-origin";
        }
        let Ok(base) = url::Url::parse(&self.base) else {
            return false;
        };
        headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|origin| origin == base.origin().ascii_serialization())
    }

    async fn people_page(&self, status: StatusCode, changed: Option<String>) -> Response {
        let disabled = match self.disabled.disabled().await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "development upstream: disabled people unreadable");
                return self.error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(50000),
                    "Who is disabled could not be read; try again.",
                );
            }
        };
        let view = View {
            action: format!("{}{PEOPLE_PATH}", self.base_path),
            people: people()
                .iter()
                .map(|p| Row {
                    key: p.key,
                    name: p.name,
                    email: p.email,
                    tenant: tenant_label(p.tid),
                    disabled: disabled.iter().any(|k| k == p.key),
                })
                .collect(),
            changed,
        };
        let mut response = self.render(status, "people.html", &view, Some("'self'"));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
