//! The CI issuers an app trusts (CI workload identity, issue 14 item 3): a tenant admin names a
//! CI system's OIDC issuer (GitLab, GitHub Actions, a self-hosted GitLab), the audience the
//! job's token must carry, and claim rules (`project_path = group/*`, `ref = main`); a job
//! whose token meets one registration exchanges it at `/token` for a short-lived access token
//! of the app ([`crate::workload`]), with no stored secret in the pipeline.
//!
//! Registering trust is a decision for people: an automation app cannot make itself (or
//! another app) exchangeable. The first registration lets the app use the token-exchange
//! grant.

use serde::{Deserialize, Serialize};
use techpass_oidc::workload::GRANT_TOKEN_EXCHANGE;
use techpass_store::CiIssuerRecord;

use super::apps::active_tenant;
use super::{admin_tenant, audit, new_id, Actor, Result, TenancyError};
use crate::ServiceContext;

pub use crate::workload::{glob_matches, rules_of, ClaimRule};

/// At most this many issuers per app, and rules per issuer.
pub const MAX_ISSUERS: usize = 10;
pub const MAX_RULES: usize = 10;
/// Claims the token's checks own: a rule on them would be checked twice or mean nothing.
const RESERVED_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];

/// What registering a trusted CI issuer asks for.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewCiIssuer {
    /// The issuer exactly as the job's tokens say in `iss`, e.g. `https://gitlab.com` or
    /// `https://token.actions.githubusercontent.com`; its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `aud` the job's token must carry (GitLab: the `aud` of its `id_tokens` entry;
    /// GitHub: the `audience` the job asks for).
    pub audience: String,
    /// Every rule must match; at least one rule that is not a bare `*`.
    pub rules: Vec<ClaimRule>,
    /// What the pipeline is, for people reading the page.
    #[serde(default)]
    pub description: String,
}

fn valid_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

fn checked(ctx: &ServiceContext, spec: &NewCiIssuer) -> Result<(String, String, Vec<ClaimRule>)> {
    let invalid = |m: String| TenancyError::Invalid(m);
    let issuer = spec.issuer.trim();
    let url = ctx
        .http
        .policy()
        .check_url(issuer)
        .map_err(|e| invalid(format!("issuer {issuer} {e}")))?;
    if url.query().is_some() || url.fragment().is_some() || issuer.len() > 255 {
        return Err(invalid(format!(
            "issuer {issuer}: give the issuer URL itself, without query or fragment, at most \
             255 characters"
        )));
    }
    if issuer.trim_end_matches('/') == ctx.metadata.issuer.trim_end_matches('/') {
        return Err(invalid(
            "issuer: TechPass's own tokens are not CI tokens; use a refresh or client_credentials \
             grant instead"
                .into(),
        ));
    }
    let audience = spec.audience.trim();
    if audience.is_empty() || audience.len() > 255 || audience.chars().any(char::is_control) {
        return Err(invalid(
            "audience: the aud the job's token must carry (1 to 255 characters)".into(),
        ));
    }
    if spec.rules.is_empty() || spec.rules.len() > MAX_RULES {
        return Err(invalid(format!(
            "give 1 to {MAX_RULES} claim rules (such as project_path = group/project): without \
             one, every pipeline of the issuer would get this app's tokens"
        )));
    }
    let mut rules = Vec::new();
    for r in &spec.rules {
        let claim = r.claim.trim();
        let pattern = r.pattern.trim();
        if !valid_claim_name(claim) {
            return Err(invalid(format!(
                "claim {claim:?}: a claim name (letters, digits, _ - . :, at most 64)"
            )));
        }
        if RESERVED_CLAIMS.contains(&claim) {
            return Err(invalid(format!(
                "claim {claim}: checked by TechPass itself; rules are for the job's own claims"
            )));
        }
        if pattern.is_empty() || pattern.len() > 255 || pattern.chars().any(char::is_control) {
            return Err(invalid(format!(
                "claim {claim}: the pattern must be 1 to 255 characters"
            )));
        }
        rules.push(ClaimRule {
            claim: claim.to_string(),
            pattern: pattern.to_string(),
        });
    }
    if rules.iter().all(|r| r.pattern.chars().all(|c| c == '*')) {
        return Err(invalid(
            "at least one rule must narrow the pipelines (a pattern other than *)".into(),
        ));
    }
    Ok((issuer.to_string(), audience.to_string(), rules))
}

/// The app, if it is one of the tenant's; `NotFound` otherwise.
async fn app_of(
    ctx: &ServiceContext,
    tenant_id: &str,
    client_id: &str,
) -> Result<techpass_store::ClientRecord> {
    ctx.store
        .get_client(client_id)
        .await?
        .filter(|c| c.tenant_id.as_deref() == Some(tenant_id))
        .ok_or(TenancyError::NotFound("app"))
}

/// Registers a CI issuer for one of an active tenant's apps, and lets the app use the
/// token-exchange grant if it did not already.
pub async fn create(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    spec: NewCiIssuer,
) -> Result<CiIssuerRecord> {
    let tenant = active_tenant(ctx, actor, tenant_id).await?;
    if matches!(actor, Actor::App { .. }) {
        return Err(TenancyError::Forbidden(
            "only a tenant admin decides which CI pipelines may act as an app",
        ));
    }
    let mut app = app_of(ctx, &tenant.id, client_id).await?;
    let (issuer, audience, rules) = checked(ctx, &spec)?;
    let description = spec.description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(TenancyError::Invalid(
            "the description is at most 200 characters on one line".into(),
        ));
    }
    if ctx.store.ci_issuers_of_client(&app.client_id).await?.len() >= MAX_ISSUERS {
        return Err(TenancyError::Conflict(format!(
            "an app trusts at most {MAX_ISSUERS} CI issuers; remove one first"
        )));
    }
    let record = CiIssuerRecord {
        id: new_id(ctx, "cii"),
        client_id: app.client_id.clone(),
        issuer,
        audience,
        rules: serde_json::to_string(&rules).unwrap_or_else(|_| "[]".into()),
        description: description.to_string(),
        created_at: ctx.clock.now().as_secs(),
        created_by: actor.audit_name(),
    };
    let grant_added = !app.grant_types.iter().any(|g| g == GRANT_TOKEN_EXCHANGE);
    if grant_added {
        app.grant_types.push(GRANT_TOKEN_EXCHANGE.to_string());
        if !ctx.store.update_client(&app).await? {
            return Err(TenancyError::NotFound("app"));
        }
    }
    ctx.store.insert_ci_issuer(&record).await?;
    audit(
        ctx,
        actor,
        "ci_issuer.added",
        Some(&tenant.id),
        Some(&app.client_id),
        serde_json::json!({
            "issuer": record.issuer,
            "audience": record.audience,
            "rules": rules,
            "ci_issuer": record.id,
            "token_exchange_enabled": grant_added,
        }),
    )
    .await;
    Ok(record)
}

/// The CI issuers one of the tenant's apps trusts.
pub async fn list(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
) -> Result<Vec<CiIssuerRecord>> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    let app = app_of(ctx, &tenant.id, client_id).await?;
    Ok(ctx.store.ci_issuers_of_client(&app.client_id).await?)
}

/// Stops trusting one: from then on its jobs' tokens are refused (tokens already issued live
/// out their short lifetime).
pub async fn delete(
    ctx: &ServiceContext,
    actor: &Actor,
    tenant_id: &str,
    client_id: &str,
    issuer_id: &str,
) -> Result<()> {
    let tenant = admin_tenant(ctx, actor, tenant_id).await?;
    let app = app_of(ctx, &tenant.id, client_id).await?;
    let found = ctx
        .store
        .ci_issuers_of_client(&app.client_id)
        .await?
        .into_iter()
        .find(|i| i.id == issuer_id)
        .ok_or(TenancyError::NotFound("CI issuer"))?;
    if !ctx
        .store
        .delete_ci_issuer(&app.client_id, issuer_id)
        .await?
    {
        return Err(TenancyError::NotFound("CI issuer"));
    }
    audit(
        ctx,
        actor,
        "ci_issuer.removed",
        Some(&tenant.id),
        Some(&app.client_id),
        serde_json::json!({ "issuer": found.issuer, "ci_issuer": found.id }),
    )
    .await;
    Ok(())
}
