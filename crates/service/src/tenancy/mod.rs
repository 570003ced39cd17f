//! The tenant model's service layer: what tenant admins and platform admins do (onboarding,
//! co-admins, invitations, apps and their credentials, access, grants by email before a first
//! sign-in). The JSON API, the portal pages
//! and the command line call these same functions, which check who may do what ([`Actor`]),
//! apply the domain rules, write the audit log and queue the emails. No HTTP, no SQL here.

pub mod access;
pub mod apps;
pub mod ci_issuers;
pub mod invitations;
pub mod pending;
pub mod resources;
pub mod tenants;
pub mod webhooks;

use techpass_domain::tenancy::TenantStatus;
use techpass_store::{AuditRecord, StoreError, TenantRecord};

use crate::ServiceContext;

pub use crate::actor::Actor;

/// Why a service call did nothing. Each maps to one HTTP status and one portal message.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::clients::AppError> for TenancyError {
    fn from(e: crate::clients::AppError) -> Self {
        use crate::clients::AppError;
        match e {
            AppError::Invalid(m) => TenancyError::Invalid(m),
            AppError::Store(s) => TenancyError::Store(s),
            AppError::Key(k) => TenancyError::Store(StoreError::Backend(k.to_string())),
        }
    }
}

pub type Result<T> = std::result::Result<T, TenancyError>;

/// The tenant, if the actor may administer it: platform admins, the tenant's admins, and the
/// tenant's own automation app. Others get `Forbidden` (and an unknown tenant `NotFound`).
pub async fn admin_tenant(
    state: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
) -> Result<TenantRecord> {
    let tenant = state
        .store
        .get_tenant(tenant_id)
        .await?
        .ok_or(TenancyError::NotFound("tenant"))?;
    let allowed = match actor {
        Actor::Operator => true,
        Actor::User {
            platform_admin: true,
            ..
        } => true,
        Actor::User { id, .. } => state.store.is_tenant_admin(&tenant.id, id).await?,
        Actor::App { tenant_id, .. } => tenant_id == &tenant.id,
    };
    if !allowed {
        return Err(TenancyError::Forbidden(
            "you are not an admin of this tenant",
        ));
    }
    Ok(tenant)
}

/// The audit log as `actor` may read it: a tenant's events for its admins (and platform
/// admins), the whole log for platform admins only. Newest first, at most `filter.limit`.
pub async fn audit_events(
    state: &ServiceContext,
    actor: &Actor,
    filter: &techpass_store::AuditFilter,
) -> Result<Vec<AuditRecord>> {
    match &filter.tenant {
        Some(tenant_id) => {
            admin_tenant(state, actor, tenant_id).await?;
        }
        None => require_platform_admin(actor)?,
    }
    Ok(state.store.list_audit(filter).await?)
}

/// At most this many events go into one export.
pub const EXPORT_LIMIT: usize = 10_000;

/// Every event matching `filter` (newest first, up to [`EXPORT_LIMIT`]), read page by page
/// with the log's keyset cursor; the same rule as [`audit_events`] on who may read them.
pub async fn audit_export(
    state: &ServiceContext,
    actor: &Actor,
    filter: &techpass_store::AuditFilter,
) -> Result<Vec<AuditRecord>> {
    const PAGE: u32 = 1_000;
    let mut filter = filter.clone();
    filter.limit = PAGE;
    filter.after = None;
    let mut page = audit_events(state, actor, &filter).await?;
    let mut all = Vec::new();
    loop {
        let full = page.len() == PAGE as usize;
        filter.after = page.last().map(|last| (last.at, last.id));
        all.extend(page);
        if !full || all.len() >= EXPORT_LIMIT {
            break;
        }
        page = state.store.list_audit(&filter).await?;
    }
    all.truncate(EXPORT_LIMIT);
    Ok(all)
}

/// The events as CSV (RFC 4180), one row each with a header; a cell a spreadsheet would read
/// as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is prefixed with `'`.
pub fn audit_csv(records: &[AuditRecord]) -> String {
    fn cell(text: &str) -> String {
        let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", guarded.replace('"', "\"\""))
        } else {
            guarded
        }
    }
    let mut out = String::from(
        "id,time,event,outcome,reason,actor,subject,tenant,upstream,request_id,details\r\n",
    );
    for r in records {
        let opt = |v: &Option<String>| cell(v.as_deref().unwrap_or(""));
        out.push_str(
            &[
                r.id.to_string(),
                crate::dates::rfc3339(r.at),
                cell(&r.event),
                cell(&r.outcome),
                opt(&r.reason),
                opt(&r.actor),
                opt(&r.subject),
                opt(&r.tenant),
                opt(&r.upstream),
                opt(&r.request_id),
                cell(&r.details),
            ]
            .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// The events as JSON lines, the same lines as the SIEM stream.
pub fn audit_jsonl(records: &[AuditRecord]) -> String {
    records
        .iter()
        .map(crate::audit_stream::AuditStream::line)
        .collect()
}

/// Why an automation app may not act through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRefusal {
    UnknownOrDisabled,
    NoApiAccess,
    NoTenant,
    TenantInactive,
}

/// The actor an automation app is, if it may call the API now: enabled, granted API access by
/// its tenant, and that tenant active.
pub async fn app_actor(
    state: &ServiceContext,
    client_id: &str,
) -> Result<std::result::Result<Actor, AppRefusal>> {
    let Some(client) = state
        .store
        .get_client(client_id)
        .await?
        .filter(|c| c.enabled)
    else {
        return Ok(Err(AppRefusal::UnknownOrDisabled));
    };
    if !client.api_access {
        return Ok(Err(AppRefusal::NoApiAccess));
    }
    let Some(tenant_id) = client.tenant_id else {
        return Ok(Err(AppRefusal::NoTenant));
    };
    let active = state
        .store
        .get_tenant(&tenant_id)
        .await?
        .is_some_and(|t| t.status == TenantStatus::Active);
    if !active {
        return Ok(Err(AppRefusal::TenantInactive));
    }
    Ok(Ok(Actor::App {
        client_id: client.client_id,
        tenant_id,
    }))
}

/// Platform admins only.
pub fn require_platform_admin(actor: &Actor) -> Result<()> {
    if actor.is_platform_admin() {
        Ok(())
    } else {
        Err(TenancyError::Forbidden("platform admins only"))
    }
}

/// Appends an audit event of a tenant operation (never fails the operation: a failure to write
/// is logged).
pub async fn audit(
    state: &ServiceContext,
    actor: &Actor,
    event: &str,
    tenant: Option<&str>,
    subject: Option<&str>,
    details: serde_json::Value,
) {
    crate::audit(
        state,
        AuditRecord {
            at: state.clock.now().as_secs(),
            event: event.into(),
            outcome: "success".into(),
            actor: Some(actor.audit_name()),
            subject: subject.map(String::from),
            tenant: tenant.map(String::from),
            details: details.to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
}

/// The user named by an id or email address (unknown → `NotFound`, several → `Invalid`).
pub async fn find_user(state: &ServiceContext, who: &str) -> Result<techpass_store::UserRecord> {
    crate::accounts::find_user(state, who)
        .await
        .map_err(|e| match e {
            crate::accounts::AccountError::Store(s) => TenancyError::Store(s),
            crate::accounts::AccountError::NotFound(_) => TenancyError::NotFound("user"),
            other => TenancyError::Invalid(other.to_string()),
        })
}

/// A fresh 256-bit random value; failure of the random source is a server fault, not the
/// caller's.
pub fn random_secret(state: &ServiceContext) -> Result<String> {
    state
        .random
        .token()
        .map_err(|e| TenancyError::Store(StoreError::Backend(e.to_string())))
}

/// A new random id with a prefix saying what it is.
pub fn new_id(state: &ServiceContext, prefix: &str) -> String {
    crate::random::new_id(state.random.as_ref(), &format!("{prefix}_"))
}

/// An email address as stored: trimmed, lowercased; `None` if it is not one.
pub fn normalise_email(text: &str) -> Option<String> {
    let email = text.trim().to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(
            normalise_email(" Dave@VendorCo.Example ").as_deref(),
            Some("dave@vendorco.example")
        );
        for bad in [
            "",
            "dave",
            "@x.example",
            "a@b@c.example",
            "a@localhost",
            "a b@x.example",
            "a@x.example.",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn audit_csv_quotes_and_defuses_formulas() {
        let record = AuditRecord {
            id: 3,
            at: 1_800_000_000,
            event: "signin".into(),
            outcome: "denied".into(),
            reason: Some("no_mfa".into()),
            actor: Some("=HYPERLINK(\"http://evil\")".into()),
            subject: Some("@SUM(A1)".into()),
            details: r#"{"email":"a@b.gov.sg","note":"x, y"}"#.into(),
            ..AuditRecord::default()
        };
        let csv = audit_csv(&[record]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "id,time,event,outcome,reason,actor,subject,tenant,upstream,request_id,details"
        );
        assert_eq!(
            lines[1],
            r#"3,2027-01-15T08:00:00Z,signin,denied,no_mfa,"'=HYPERLINK(""http://evil"")",'@SUM(A1),,,,"{""email"":""a@b.gov.sg"",""note"":""x, y""}""#
        );
        assert_eq!(lines[2], "", "ends with a line break");
    }

    #[test]
    fn platform_admins_are_operators_and_flagged_users() {
        assert!(Actor::Operator.is_platform_admin());
        assert!(Actor::User {
            id: "u".into(),
            platform_admin: true
        }
        .is_platform_admin());
        assert!(!Actor::User {
            id: "u".into(),
            platform_admin: false
        }
        .is_platform_admin());
        assert!(!Actor::App {
            client_id: "c".into(),
            tenant_id: "t".into()
        }
        .is_platform_admin());
    }
}
