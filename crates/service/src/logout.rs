//! Ending sessions: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and back-channel
//! logout (OpenID Connect Back-Channel Logout 1.0).
//!
//! Ending an SSO session deletes it and revokes the grants made in it (the refresh families of
//! that session only; the person's other devices keep theirs), then tells every app of the
//! session that registered a `backchannel_logout_uri`, in the background with bounded retries,
//! so the person's logout never waits on an app.

use std::time::Duration;

use serde_json::json;
use techpass_oidc::keys::SigningAlg;
use techpass_store::AuditRecord;

use crate::audit;
use crate::clients::find_client;
use crate::mint::PURPOSE_SID;
use crate::signin::Session;
use crate::ServiceContext;

/// Attempts per back-channel notification, with doubling pauses from one second.
pub const BACKCHANNEL_ATTEMPTS: u32 = 3;
/// How long a logout token is valid (Back-Channel Logout §2.4 recommends a short lifetime).
const LOGOUT_TOKEN_LIFETIME_SECS: i64 = 120;

/// Which session to end.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id_hash: String,
    pub user_id: String,
    /// `tid/oid`, for the audit log.
    pub subject: String,
    pub upstream: String,
}

impl From<&Session> for SessionRef {
    fn from(s: &Session) -> Self {
        SessionRef {
            id_hash: s.id_hash.clone(),
            user_id: s.user_id.clone(),
            subject: format!("{}/{}", s.tenant_id, s.object_id),
            upstream: s.upstream.clone(),
        }
    }
}

impl From<&techpass_store::SessionRecord> for SessionRef {
    fn from(s: &techpass_store::SessionRecord) -> Self {
        SessionRef {
            id_hash: s.id_hash.clone(),
            user_id: s.user_id.clone(),
            subject: format!("{}/{}", s.tenant_id, s.object_id),
            upstream: s.upstream.clone(),
        }
    }
}

/// Why an `id_token_hint` is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintRefused {
    /// Not signed by our keys, or another issuer.
    NotOurs,
    /// Ours, but another kind of token (an access token, a logout token).
    NotAnIdToken,
    /// The app it names could not be read: the caller says "try again".
    Unavailable,
}

/// The claims of an `id_token_hint` (RP-Initiated Logout 1.0 §2) if it is an ID token TechPass
/// issued: our signature and issuer, the header `typ` of our ID tokens (`JWT`; access tokens
/// are `at+jwt`, logout tokens `logout+jwt`), none of the access-token claims (RFC 9068
/// `client_id`, `scope`), and an `aud` naming one registered app (SECURITY 35). An expired ID
/// token is still a hint.
pub async fn id_token_hint(
    ctx: &ServiceContext,
    hint: &str,
) -> Result<serde_json::Value, HintRefused> {
    let (typ, claims) = ctx
        .keys
        .verify_jwt(hint)
        .map_err(|_| HintRefused::NotOurs)?;
    if claims["iss"] != ctx.metadata.issuer.as_str() {
        return Err(HintRefused::NotOurs);
    }
    let shaped = typ.eq_ignore_ascii_case("JWT")
        && claims.get("client_id").is_none()
        && claims.get("scope").is_none()
        && claims["sub"].is_string();
    let Some(aud) = claims["aud"].as_str().filter(|_| shaped) else {
        return Err(HintRefused::NotAnIdToken);
    };
    match find_client(ctx.store.as_ref(), aud).await {
        Ok(Some(_)) => Ok(claims),
        Ok(None) => Err(HintRefused::NotAnIdToken),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the app an id_token_hint names");
            Err(HintRefused::Unavailable)
        }
    }
}

/// Ends a session: deleted, its grants revoked, its apps told (in the background). Returns the
/// back-channel deliveries under way, for a caller that must wait for them (the CLI).
pub async fn end_session(
    ctx: &ServiceContext,
    session: &SessionRef,
    request_id: Option<String>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let now = ctx.clock.now().as_secs();
    let grants = ctx
        .store
        .grants_of_session(&session.id_hash)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list the session's grants");
            Vec::new()
        });
    if let Err(e) = ctx.store.delete_session(&session.id_hash).await {
        tracing::error!(error = %e, "could not delete the session");
    }
    let revoked = ctx
        .store
        .revoke_grants_of_session(&session.id_hash, now)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not revoke the session's grants");
            0
        });
    let mut client_ids: Vec<String> = grants.into_iter().map(|g| g.client_id).collect();
    client_ids.sort();
    client_ids.dedup();
    let sid = ctx.secrets.keyed_hash(PURPOSE_SID, &session.id_hash);
    let mut deliveries = Vec::new();
    for client_id in client_ids {
        match find_client(ctx.store.as_ref(), &client_id).await {
            Ok(Some(client)) => {
                if let Some(uri) = client.backchannel_logout_uri {
                    deliveries.push(spawn_backchannel(
                        ctx.clone(),
                        client.id_token_alg,
                        client.id,
                        uri,
                        session.user_id.clone(),
                        sid.clone(),
                    ));
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, %client_id, "could not read a client for back-channel logout")
            }
        }
    }
    audit(
        ctx,
        AuditRecord {
            at: now,
            event: "signout".into(),
            outcome: "success".into(),
            subject: Some(session.subject.clone()),
            upstream: Some(session.upstream.clone()),
            request_id,
            details: json!({ "grants_revoked": revoked }).to_string(),
            ..AuditRecord::default()
        },
    )
    .await;
    deliveries
}

/// Back-Channel Logout §2.4: the logout token, signed like the app's ID tokens (§2.4: "the
/// same algorithm ... as for ID Tokens").
fn logout_token(
    ctx: &ServiceContext,
    alg: SigningAlg,
    client_id: &str,
    sub: &str,
    sid: &str,
) -> Option<String> {
    let now = ctx.clock.now().as_secs();
    let claims = json!({
        "iss": ctx.metadata.issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME_SECS,
        "jti": ctx.random.token().ok()?,
        "sub": sub,
        "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    ctx.keys.sign_jwt(alg, "logout+jwt", &claims).ok()
}

fn spawn_backchannel(
    ctx: ServiceContext,
    alg: SigningAlg,
    client_id: String,
    uri: String,
    sub: String,
    sid: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(token) = logout_token(&ctx, alg, &client_id, &sub, &sid) else {
            tracing::error!(%client_id, "could not sign a logout token");
            return;
        };
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=BACKCHANNEL_ATTEMPTS {
            let sent = ctx
                .http
                .post(&uri, |r| r.form(&[("logout_token", token.as_str())]))
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(%client_id, attempt, "back-channel logout delivered");
                    return;
                }
                Ok(r) => {
                    tracing::warn!(%client_id, attempt, status = r.status().as_u16(), "back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(%client_id, attempt, error = %e, "back-channel logout failed")
                }
            }
            if attempt < BACKCHANNEL_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        tracing::error!(%client_id, "back-channel logout not delivered; giving up");
    })
}
