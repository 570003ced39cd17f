//! The tenant model's service layer: what tenant admins and platform admins do (onboarding,
//! co-admins, invitations, apps and their credentials, access, grants by email before a first
//! sign-in). The JSON API, the portal pages
//! and the command line call these same functions, which check who may do what ([`Actor`]),
//! apply the domain rules, write the audit log and queue the emails. No HTTP, no SQL here.

pub mod access;
pub mod apps;
pub mod invitations;
pub mod pending;
pub mod resources;
pub mod tenants;
pub mod webhooks;

use techpass_store::{AuditRecord, StoreError, TenantRecord};

use crate::ServiceContext;

/// Who is asking. Every service function takes one and checks it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the command line of a TechPass host: full authority.
    Operator,
    /// A signed-in person (portal session).
    User { id: String, platform_admin: bool },
    /// A tenant's automation app, authenticated by a `client_credentials` access token for
    /// the API, granted API access by its tenant. It acts only on that tenant.
    App {
        client_id: String,
        tenant_id: String,
    },
}

impl Actor {
    /// How the audit log names the actor.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Operator => "cli".into(),
            Actor::User { id, .. } => id.clone(),
            Actor::App { client_id, .. } => format!("app:{client_id}"),
        }
    }

    pub fn is_platform_admin(&self) -> bool {
        matches!(
            self,
            Actor::Operator
                | Actor::User {
                    platform_admin: true,
                    ..
                }
        )
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User { id, .. } => Some(id),
            _ => None,
        }
    }
}

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
