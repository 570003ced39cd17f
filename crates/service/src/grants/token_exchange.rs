//! The token exchange grant (RFC 8693) for CI workload identity: a CI job presents its own OIDC
//! ID token as `subject_token` (type `…:token-type:jwt` or `…:token-type:id_token`) with the
//! app's `client_id`, and gets a short-lived access token of the app whose `sub` names the job
//! ([`crate::workload`]). The job's token is the credential: an app's registered CI issuers
//! decide which jobs may, and no secret lives in the pipeline. The gate's app half (tenant
//! active, app enabled) ran before ([`super::run`]); the audience is the app or a resource
//! granted to it, as for `client_credentials`. No refresh token, no ID token, no delegation
//! (`actor_token`).
//!
//! Every refusal is `invalid_grant` with a description naming the failed check, and audited
//! (`ci.exchange`, outcome `denied`); so is every token issued.

use serde_json::json;
use techpass_oidc::workload::{TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT};
use techpass_oidc::{ErrorCode, OAuthError, Params};
use techpass_store::AuditRecord;

use super::{store_error, Tokens};
use crate::clients::Client;
use crate::mint::{self, Subject};
use crate::tenancy::resources::{self, scope_tokens};
use crate::workload::{self, CiIdentity, Refused};
use crate::ServiceContext;

/// The longest a CI job's access token lives, whatever the app's own lifetime.
pub const MAX_LIFETIME_SECS: i64 = 900;

/// A token exchange request, parsed. Not `Debug`: it holds the job's token.
pub struct Exchange {
    subject_token: String,
    scope: Option<String>,
    resource: Option<String>,
}

impl Exchange {
    pub fn parse(params: &Params) -> Result<Exchange, OAuthError> {
        let subject_token = params.require("subject_token")?.to_string();
        match params.require("subject_token_type")? {
            TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN => {}
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type {other} is not supported: a CI job's ID token is \
                     {TOKEN_TYPE_JWT} or {TOKEN_TYPE_ID_TOKEN}"
                )))
            }
        }
        if let Some(asked) = params.get("requested_token_type") {
            if asked != TOKEN_TYPE_ACCESS_TOKEN {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type {asked} is not supported: TechPass issues \
                     {TOKEN_TYPE_ACCESS_TOKEN}"
                )));
            }
        }
        if params.contains("actor_token") || params.contains("actor_token_type") {
            return Err(OAuthError::invalid_request(
                "delegation (actor_token) is not supported: the CI job acts as itself",
            ));
        }
        // RFC 8693 §2.1 names the target by `resource` (RFC 8707) or `audience`; both are the
        // identifier of a resource granted to the app here.
        let resource = match (params.get("resource"), params.get("audience")) {
            (Some(r), Some(a)) if r != a => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource and audience name different targets; send one",
                ))
            }
            (r, a) => r.or(a).map(String::from),
        };
        Ok(Exchange {
            subject_token,
            scope: params.get("scope").map(String::from),
            resource,
        })
    }
}

pub(super) async fn run(
    ctx: &ServiceContext,
    client: &Client,
    exchange: Exchange,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let identity = match workload::identify(ctx, client, &exchange.subject_token).await {
        Ok(identity) => identity,
        Err(Refused::Unavailable(e)) => return Err(store_error(e)),
        Err(Refused::Invalid(why)) => return Err(refuse(ctx, client, None, why).await),
    };
    let asked = scope_tokens(exchange.scope.as_deref().unwrap_or(""))?;
    if asked.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "openid and offline_access need a person; a CI job is not one",
        ));
    }
    if let Some(r) = &exchange.resource {
        if !url::Url::parse(r).is_ok_and(|u| u.fragment().is_none()) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ));
        }
    }
    let (audience, scope) =
        resources::audience(ctx, client, exchange.resource.as_deref(), &asked).await?;
    // Spent only now, so a request refused for its scope or target can be corrected with the
    // same job token.
    if !workload::spend(ctx, &identity).await.map_err(store_error)? {
        let why = "the subject token was already exchanged (its jti was seen before)".to_string();
        return Err(refuse(ctx, client, Some(&identity), why).await);
    }
    let platform = ctx.settings.tokens.access_token_lifetime_secs as i64;
    let lifetime = client
        .access_token_lifetime_secs
        .unwrap_or(platform)
        .min(MAX_LIFETIME_SECS);
    let access = mint::access_token(
        ctx,
        &Subject {
            access_lifetime: Some(lifetime),
            ci: Some(&identity),
            ..Subject::app(client, &audience, &scope, jkt)
        },
    )?;
    record(
        ctx,
        client,
        Some(&identity),
        "success",
        json!({ "audience": audience, "scope": scope.join(" ") }),
    )
    .await;
    Ok(Tokens {
        access,
        id_token: None,
        refresh_token: None,
        scope,
        issued_token_type: Some(TOKEN_TYPE_ACCESS_TOKEN),
    })
}

/// Audits a refusal and shapes it: `invalid_grant` with the reason.
async fn refuse(
    ctx: &ServiceContext,
    client: &Client,
    identity: Option<&CiIdentity>,
    why: String,
) -> OAuthError {
    tracing::info!(client_id = %client.id, reason = %why, "CI token exchange refused");
    record(ctx, client, identity, "denied", json!({ "reason": why })).await;
    OAuthError::invalid_grant(why)
}

async fn record(
    ctx: &ServiceContext,
    client: &Client,
    identity: Option<&CiIdentity>,
    outcome: &str,
    mut details: serde_json::Value,
) {
    if let Some(ci) = identity {
        details["ci_issuer"] = json!(ci.registration.id);
        details["issuer"] = json!(ci.registration.issuer);
        details["ci_sub"] = json!(ci.ci_subject);
        details["claims"] = json!(ci.matched);
    }
    crate::audit(
        ctx,
        AuditRecord {
            at: ctx.clock.now().as_secs(),
            event: "ci.exchange".into(),
            outcome: outcome.into(),
            reason: (outcome == "denied").then(|| "ci_token_refused".into()),
            actor: identity.map(|ci| format!("ci:{}", ci.subject())),
            subject: Some(client.id.clone()),
            tenant: client.tenant_id.clone(),
            details: details.to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
}
