//! Consent (issue 13 item 4): before TechPass hands a person's identity to an app they have no
//! relationship with, they agree once.
//!
//! Only an app open to every registered officer ([`AccessPolicy::Officers`]) can receive the
//! identity of someone unrelated to it; at an app for assigned people or for the tenant's
//! members the relationship is the consent. So a person is asked when the app is a tenant's app
//! under that policy and they are neither assigned to it nor a member of its tenant (platform
//! apps, registered by operators, are first-party). A consent is remembered per person and app
//! with the scopes it covered: a request for more asks again. Withdrawing it on the account page
//! also revokes the app's grants for the person, so its refresh tokens stop working.

use techpass_domain::account::AccountType;
use techpass_domain::client::AccessPolicy;
use techpass_store::{AuditRecord, ConsentRecord, StoreError, UserRecord};

use crate::audit::audit;
use crate::clients::{find_client, Client};
use crate::scopes::stored_scope;
use crate::ServiceContext;

/// Whether `user` must consent before `client` receives `scope` for them (`force`: the app
/// asked with `prompt=consent`, so a remembered consent does not count).
pub async fn needed(
    state: &ServiceContext,
    user: &UserRecord,
    client: &Client,
    scope: &[String],
    force: bool,
) -> Result<bool, StoreError> {
    let Some(tenant_id) = &client.tenant_id else {
        return Ok(false);
    };
    if client.access_policy != AccessPolicy::Officers
        || user.account_type != AccountType::PublicOfficer.as_str()
    {
        return Ok(false);
    }
    let now = state.clock.now().as_secs();
    if state.store.has_access(&client.id, &user.id).await?
        || state
            .store
            .belongs_to_tenant(tenant_id, &user.id, now)
            .await?
    {
        return Ok(false);
    }
    if force {
        return Ok(true);
    }
    Ok(match state.store.consent(&user.id, &client.id).await? {
        None => true,
        Some(given) => {
            let covered = stored_scope(&given.scopes);
            !scope.iter().all(|s| covered.contains(s))
        }
    })
}

/// What the app will receive, in words, for the consent page.
pub fn claims(scope: &[String]) -> Vec<&'static str> {
    let mut claims = Vec::new();
    for s in scope {
        match s.as_str() {
            "openid" => claims.push("An identifier for you that stays the same for this app"),
            "profile" => claims.push("Your name"),
            "email" => claims.push("Your email address"),
            "offline_access" => {
                claims.push("Access while you are away, until you withdraw this consent")
            }
            _ => {}
        }
    }
    claims
}

/// Records the person's consent to the app for `scope` (merged with what they consented to
/// before), audited.
pub async fn give(
    state: &ServiceContext,
    user: &UserRecord,
    client: &Client,
    scope: &[String],
    request_id: Option<String>,
) -> Result<(), StoreError> {
    let mut scopes = match state.store.consent(&user.id, &client.id).await? {
        Some(given) => stored_scope(&given.scopes),
        None => Vec::new(),
    };
    for s in scope {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let now = state.clock.now().as_secs();
    state
        .store
        .grant_consent(&ConsentRecord {
            user_id: user.id.clone(),
            client_id: client.id.clone(),
            scopes: scopes.join(" "),
            granted_at: now,
        })
        .await?;
    record(state, "consent.granted", user, client, &scopes, request_id).await;
    Ok(())
}

/// A consent as the account page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GivenConsent {
    pub client_id: String,
    pub app_name: String,
    pub tenant_name: Option<String>,
    pub claims: Vec<&'static str>,
    pub granted_at: i64,
}

/// The person's consents, newest first, with the apps' and tenants' names (a consent to an
/// app deleted since is not listed: the row went with it).
pub async fn of_user(
    state: &ServiceContext,
    user_id: &str,
) -> Result<Vec<GivenConsent>, StoreError> {
    let mut out = Vec::new();
    for c in state.store.consents_of_user(user_id).await? {
        let Some(client) = find_client(state.store.as_ref(), &c.client_id).await? else {
            continue;
        };
        let tenant_name = match &client.tenant_id {
            Some(id) => state.store.get_tenant(id).await?.map(|t| t.name),
            None => None,
        };
        out.push(GivenConsent {
            client_id: c.client_id,
            app_name: client.name,
            tenant_name,
            claims: claims(&stored_scope(&c.scopes)),
            granted_at: c.granted_at,
        });
    }
    Ok(out)
}

/// Withdraws the person's consent to the app and revokes the app's grants for them; false if
/// there was none. Audited.
pub async fn withdraw(
    state: &ServiceContext,
    user: &UserRecord,
    client_id: &str,
    request_id: Option<String>,
) -> Result<bool, StoreError> {
    let now = state.clock.now().as_secs();
    let Some(client) = find_client(state.store.as_ref(), client_id).await? else {
        return Ok(false);
    };
    if !state.store.revoke_consent(&user.id, client_id, now).await? {
        return Ok(false);
    }
    record(state, "consent.revoked", user, &client, &[], request_id).await;
    Ok(true)
}

async fn record(
    state: &ServiceContext,
    event: &str,
    user: &UserRecord,
    client: &Client,
    scopes: &[String],
    request_id: Option<String>,
) {
    audit(
        state,
        AuditRecord {
            at: state.clock.now().as_secs(),
            event: event.into(),
            outcome: "success".into(),
            actor: Some(user.id.clone()),
            subject: Some(user.id.clone()),
            tenant: client.tenant_id.clone(),
            request_id,
            details: serde_json::json!({ "client_id": client.id, "scopes": scopes }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
}
