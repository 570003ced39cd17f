//! Who is asking: an operator at the command line, a signed-in person, or a tenant's
//! automation app. Services that act on someone's behalf take one and check it first.

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
