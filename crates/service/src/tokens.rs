//! Tokens coming back: verification of TechPass access tokens, userinfo (OpenID Connect Core
//! §5.3), introspection (RFC 7662) and revocation (RFC 7009). Every check runs on every call
//! (signature, expiry, revocation of the token and of its grant, and the gate), so a revocation,
//! a suspension or a disabled app takes effect at the next request.

use serde_json::{json, Map, Value};
use techpass_oidc::{ErrorCode, OAuthError};
use techpass_store::{RefreshFamily, StoreError};

use crate::clients::{find_client, Client};
use crate::context::ServiceContext;
use crate::gate::{self, Refusal};
use crate::mint::profile_claims;

/// A verified access token.
#[derive(Debug)]
pub struct AccessClaims {
    pub claims: Value,
    pub sub: String,
    pub client_id: String,
    pub scope: Vec<String>,
    pub jti: String,
    pub exp: i64,
    pub grant_id: Option<String>,
}

/// Why an access token was not accepted.
#[derive(Debug)]
pub enum AccessTokenError {
    /// The token is not (or no longer) good: `invalid_token`. The reason is for logs only.
    Invalid(String),
    /// Whether it was revoked could not be read (the database is away): the caller answers
    /// `temporarily_unavailable`, and the app keeps its token.
    Unavailable(StoreError),
}

impl From<String> for AccessTokenError {
    fn from(reason: String) -> Self {
        AccessTokenError::Invalid(reason)
    }
}

impl From<&str> for AccessTokenError {
    fn from(reason: &str) -> Self {
        AccessTokenError::Invalid(reason.to_string())
    }
}

impl std::fmt::Display for AccessTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessTokenError::Invalid(reason) => f.write_str(reason),
            AccessTokenError::Unavailable(e) => write!(f, "the database is unavailable: {e}"),
        }
    }
}

/// Verifies an access token TechPass issued and that nothing has revoked it.
pub async fn validate_access_token(
    ctx: &ServiceContext,
    token: &str,
) -> Result<AccessClaims, AccessTokenError> {
    let (typ, claims) = ctx.keys.verify_jwt(token).map_err(|e| e.to_string())?;
    let typ = typ.to_ascii_lowercase();
    if typ != "at+jwt" && typ != "application/at+jwt" {
        return Err("not an access token".into());
    }
    if claims["iss"] != ctx.metadata.issuer.as_str() {
        return Err("issued by someone else".into());
    }
    let now = ctx.clock.now().as_secs();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if now >= exp {
        return Err("expired".into());
    }
    let text = |k: &str| claims[k].as_str().map(String::from);
    let jti = text("jti").ok_or("no jti")?;
    let revoked = ctx
        .store
        .is_access_token_revoked(&jti)
        .await
        .map_err(AccessTokenError::Unavailable)?;
    if revoked {
        return Err("revoked".into());
    }
    let grant_id = text("gid");
    if let Some(gid) = &grant_id {
        let grant = ctx
            .store
            .get_grant(gid)
            .await
            .map_err(AccessTokenError::Unavailable)?;
        match grant {
            Some(g) if g.revoked_at.is_none() && now < g.expires_at => {}
            _ => return Err("its grant was revoked or has ended".into()),
        }
    }
    Ok(AccessClaims {
        sub: text("sub").ok_or("no sub")?,
        client_id: text("client_id").ok_or("no client_id")?,
        scope: text("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        jti,
        exp,
        grant_id,
        claims,
    })
}

/// Why userinfo answers no claims (RFC 6750 §3.1).
#[derive(Debug)]
pub enum UserinfoRefusal {
    /// `invalid_token`, with what the app is told.
    InvalidToken(&'static str),
    /// `invalid_token` because of how a token was presented (RFC 9449 §7): a bound token
    /// without its proof, or a bearer token under the `DPoP` scheme. Answered with the `DPoP`
    /// challenge.
    WrongPresentation(&'static str),
    /// `insufficient_scope`: the token was not issued for `openid`.
    InsufficientScope,
    /// The database could not be read: `temporarily_unavailable` or `server_error`.
    Unavailable(OAuthError),
}

/// How an access token was presented (RFC 9449 §7): as a bearer token, or under the `DPoP`
/// scheme with a proof (already checked by [`crate::dpop::check`]) of the key `jkt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation<'a> {
    Bearer,
    Dpop(&'a str),
}

/// A bound token only with a proof of its key; a bearer token only as a bearer token.
fn presented_rightly(claims: &Value, presentation: Presentation<'_>) -> Result<(), &'static str> {
    match (crate::dpop::bound_key(claims), presentation) {
        (None, Presentation::Bearer) => Ok(()),
        (Some(bound), Presentation::Dpop(key)) if bound == key => Ok(()),
        (Some(_), Presentation::Bearer) => {
            Err("the access token is bound to a DPoP key: send it with the DPoP scheme and a proof")
        }
        (Some(_), Presentation::Dpop(_)) => {
            Err("the DPoP proof is signed by another key than the access token is bound to")
        }
        (None, Presentation::Dpop(_)) => {
            Err("the access token is not bound to a DPoP key: send it as a Bearer token")
        }
    }
}

/// The claims userinfo returns for an access token presented as `presentation`.
pub async fn userinfo(
    ctx: &ServiceContext,
    token: &str,
    presentation: Presentation<'_>,
) -> Result<Map<String, Value>, UserinfoRefusal> {
    let access = validate_access_token(ctx, token)
        .await
        .map_err(|error| match error {
            AccessTokenError::Unavailable(e) => {
                UserinfoRefusal::Unavailable(OAuthError::unavailable(e))
            }
            AccessTokenError::Invalid(reason) => {
                tracing::info!(%reason, "userinfo refused a token");
                UserinfoRefusal::InvalidToken("the access token is invalid, expired or revoked")
            }
        })?;
    presented_rightly(&access.claims, presentation).map_err(UserinfoRefusal::WrongPresentation)?;
    if !access.scope.iter().any(|s| s == "openid") {
        return Err(UserinfoRefusal::InsufficientScope);
    }
    let user = ctx
        .store
        .get_user(&access.sub)
        .await
        .map_err(|e| UserinfoRefusal::Unavailable(OAuthError::unavailable(e)))?
        .ok_or(UserinfoRefusal::InvalidToken("the user no longer exists"))?;
    let client = find_client(ctx.store.as_ref(), &access.client_id)
        .await
        .map_err(|e| UserinfoRefusal::Unavailable(OAuthError::unavailable(e)))?
        .ok_or(UserinfoRefusal::InvalidToken("the app no longer exists"))?;
    match gate::enforce(ctx, &user, &client, "userinfo", None).await {
        Ok(_) => {}
        Err(Refusal::Unavailable(e)) => {
            return Err(UserinfoRefusal::Unavailable(
                OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                    .with_detail(e.to_string()),
            ))
        }
        Err(Refusal::Denied(_)) => {
            return Err(UserinfoRefusal::InvalidToken(
                "access to this app has been withdrawn",
            ))
        }
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    claims.insert("account_type".into(), json!(user.account_type));
    profile_claims(&user, &access.scope, &mut claims);
    Ok(claims)
}

/// RFC 7662 §2.2: what an authenticated `client` learns of `token`; `None` is
/// `{"active": false}`. A client may introspect only tokens issued to it, and only while the
/// gate holds for the token's subject and the app.
pub async fn introspect(
    ctx: &ServiceContext,
    client: &Client,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    let checked = validate_access_token(ctx, token).await;
    if let Err(AccessTokenError::Unavailable(e)) = checked {
        return Err(OAuthError::unavailable(e));
    }
    if let Ok(access) = checked {
        let allowed = match access.claims["ci"]["ci_issuer"].as_str() {
            Some(registration) => ci_gate_allows(ctx, &access.sub, registration, client).await,
            None => gate_allows(ctx, &access.sub, client).await,
        };
        if access.client_id != client.id || !allowed {
            return Ok(None);
        }
        let c = &access.claims;
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": access.scope.join(" "),
            "client_id": access.client_id,
            "sub": access.sub,
            "aud": c["aud"],
            "iss": c["iss"],
            "exp": access.exp,
            "iat": c["iat"],
            "jti": access.jti,
        });
        // A CI job's token: the job's issuer, subject and matched claims.
        if c.get("ci").is_some() {
            answer["ci"] = c["ci"].clone();
        }
        // RFC 9449 §6.2: a resource server learns the key to check the proof against.
        if let Some(jkt) = crate::dpop::bound_key(c) {
            answer["token_type"] = json!("DPoP");
            answer["cnf"] = json!({ "jkt": jkt });
        }
        return Ok(Some(answer));
    }
    let Some(RefreshFamily {
        token: record,
        grant,
        person,
    }) = refresh_token_of(ctx, token).await?
    else {
        return Ok(None);
    };
    // Another client's refresh token is none of this client's business.
    if grant.client_id != client.id {
        return Ok(None);
    }
    // A person the gate refuses (or who is gone) holds no active token.
    let Some(person) = person else {
        return Ok(None);
    };
    if gate::enforce(ctx, &person, client, "introspect", None)
        .await
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "iss": ctx.metadata.issuer,
        "exp": record.expires_at,
        "iat": grant.created_at,
    })))
}

/// RFC 7009. Revoking a refresh token revokes its grant, and with it every access token of the
/// grant (§2.1 SHOULD). A token issued to another client is refused (`unauthorized_client`) and
/// stays valid; an unknown or dead token is a success (§2.2).
pub async fn revoke(ctx: &ServiceContext, client: &Client, token: &str) -> Result<(), OAuthError> {
    let now = ctx.clock.now().as_secs();
    let not_yours = || {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )
    };
    if let Some(RefreshFamily { grant, .. }) = refresh_token_of(ctx, token).await? {
        if grant.client_id != client.id {
            return Err(not_yours());
        }
        ctx.store
            .revoke_grant(&grant.id, now)
            .await
            .map_err(OAuthError::unavailable)?;
        tracing::info!(client_id = %client.id, "refresh token revoked with its grant");
    } else {
        let access = match validate_access_token(ctx, token).await {
            Ok(access) => access,
            Err(AccessTokenError::Unavailable(e)) => return Err(OAuthError::unavailable(e)),
            Err(AccessTokenError::Invalid(_)) => return Ok(()),
        };
        if access.client_id != client.id {
            return Err(not_yours());
        }
        ctx.store
            .revoke_access_token(&access.jti, access.exp)
            .await
            .map_err(OAuthError::unavailable)?;
        tracing::info!(client_id = %client.id, "access token revoked");
    }
    Ok(())
}

/// Whether the gate lets the token's subject use `client` now. A client acting for itself
/// (client_credentials: `sub` is the client) has no person to check: the app's half of the
/// gate decides (tenant active, app enabled).
/// A CI job's token (token exchange) stays active while the app's gate holds and the app still
/// trusts the CI issuer registration that admitted the job.
async fn ci_gate_allows(
    ctx: &ServiceContext,
    sub: &str,
    registration: &str,
    client: &Client,
) -> bool {
    if !sub.starts_with(&format!("{registration}:")) {
        return false;
    }
    let trusted = ctx
        .store
        .ci_issuers_of_client(&client.id)
        .await
        .is_ok_and(|all| all.iter().any(|i| i.id == registration));
    trusted
        && gate::enforce_app(ctx, client, "introspect", None)
            .await
            .is_ok()
}

async fn gate_allows(ctx: &ServiceContext, sub: &str, client: &Client) -> bool {
    if sub == client.id {
        return gate::enforce_app(ctx, client, "introspect", None)
            .await
            .is_ok();
    }
    match ctx.store.get_user(sub).await {
        Ok(Some(user)) => gate::enforce(ctx, &user, client, "introspect", None)
            .await
            .is_ok(),
        _ => false,
    }
}

/// A live refresh token with its grant and person (one joined read), whichever client it was
/// issued to.
async fn refresh_token_of(
    ctx: &ServiceContext,
    token: &str,
) -> Result<Option<RefreshFamily>, OAuthError> {
    let hash = crate::mint::refresh_token_key(ctx, token);
    let Some(family) = ctx
        .store
        .get_refresh_token_with_grant(&hash)
        .await
        .map_err(OAuthError::unavailable)?
    else {
        return Ok(None);
    };
    let now = ctx.clock.now().as_secs();
    let (record, grant) = (&family.token, &family.grant);
    if record.used_at.is_some() || now >= record.expires_at {
        return Ok(None);
    }
    if grant.revoked_at.is_some() || now >= grant.expires_at {
        return Ok(None);
    }
    Ok(Some(family))
}
