//! The device code grant: RFC 8628 §3.4–3.5. The device polls with its device code; the answer
//! is `authorization_pending` until the person decides, `slow_down` (and an interval raised by
//! 5 s and remembered) when it polls faster than told, `access_denied` when the person denied,
//! `expired_token` after the code's lifetime, and the tokens once, as the code flow would give
//! them (the gate again, a refresh token for `offline_access`). The code is looked at and
//! consumed only for the client it was issued to: another client's poll changes nothing.

use techpass_domain::device::DeviceStatus;
use techpass_oidc::{ErrorCode, OAuthError};
use techpass_store::{DeviceCodeRecord, GrantRecord};

use super::{for_person, grant_key, new_grant, revoke_spent, store_error, PersonGrant, Tokens};
use crate::clients::Client;
use crate::device::PURPOSE_DEVICE_CODE;
use crate::scopes::stored_scope;
use crate::ServiceContext;

/// RFC 8628 §3.5: what a `slow_down` adds to the interval.
pub const SLOW_DOWN_SECS: i64 = 5;

/// A second redemption by the rightful client (a stolen code used after the device, or the
/// other way round): what the first one produced, `grant` as the code names it, is revoked, as
/// for a replayed code (RFC 6749 §10.5).
async fn replayed(ctx: &ServiceContext, client: &Client, grant: Option<&str>) -> OAuthError {
    match revoke_spent(ctx, grant).await {
        Ok(revoked) => {
            tracing::warn!(client_id = %client.id, revoked, "device code used again; its grant is revoked");
            OAuthError::invalid_grant("the device code was already used")
        }
        Err(e) => e,
    }
}

/// Records this poll; `Err(slow_down)` if it came sooner than the interval after the last one
/// (the raised interval is kept for the next polls) or at the same time as another poll.
async fn paced(
    ctx: &ServiceContext,
    code_hash: &str,
    stored: &DeviceCodeRecord,
    now: i64,
) -> Result<(), OAuthError> {
    let too_fast = stored
        .last_polled_at
        .is_some_and(|last| now - last < stored.interval_secs);
    let interval = if too_fast {
        stored.interval_secs + SLOW_DOWN_SECS
    } else {
        stored.interval_secs
    };
    let recorded = ctx
        .store
        .record_device_poll(code_hash, stored.last_polled_at, interval, now)
        .await
        .map_err(store_error)?;
    if too_fast || !recorded {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!("poll at most every {interval} seconds"),
        ));
    }
    Ok(())
}

pub(super) async fn run(
    ctx: &ServiceContext,
    client: &Client,
    device_code: &str,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let now = ctx.clock.now().as_secs();
    let code_hash = ctx.secrets.keyed_hash(PURPOSE_DEVICE_CODE, device_code);
    let stored = ctx
        .store
        .get_device_code(&code_hash)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown device code"))?;
    if stored.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if now >= stored.expires_at {
        return Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start again",
        ));
    }
    paced(ctx, &code_hash, &stored, now).await?;
    match stored.status {
        DeviceStatus::Pending => {
            return Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the person has not approved the request yet",
            ))
        }
        DeviceStatus::Denied => {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the request was denied",
            ))
        }
        DeviceStatus::Approved => {}
        DeviceStatus::Redeemed => {
            return Err(replayed(ctx, client, stored.grant_id.as_deref()).await)
        }
    }
    let grant_id = ctx.random.ordered_uuid().to_string();
    let Some(record) = ctx
        .store
        .redeem_device_code(&code_hash, now, &grant_id)
        .await
        .map_err(store_error)?
    else {
        // Another poll of the same client redeemed it in between: the grant it names is the
        // one to revoke.
        let spent = ctx
            .store
            .get_device_code(&code_hash)
            .await
            .map_err(store_error)?;
        let grant = spent.and_then(|s| s.grant_id);
        return Err(replayed(ctx, client, grant.as_deref()).await);
    };
    let (Some(user_id), Some(auth_time)) = (record.user_id.clone(), record.auth_time) else {
        return Err(OAuthError::server_error(
            "an approved device code without its person",
        ));
    };
    let amr = record.amr.clone().unwrap_or_default();
    let scope = stored_scope(&record.scope);
    let grant = GrantRecord {
        id: grant_id,
        client_id: client.id.clone(),
        user_id: Some(user_id.clone()),
        session_hash: record.session_hash.clone(),
        scope: record.scope.clone(),
        auth_time: Some(auth_time),
        amr: amr.clone(),
        acr: record.acr.clone(),
        created_at: now,
        expires_at: now + ctx.settings.tokens.refresh_token_max_lifetime_secs as i64,
        revoked_at: None,
        dpop_jkt: grant_key(client, jkt),
    };
    let person = ctx.store.get_user(&user_id).await.map_err(store_error)?;
    let (access, id_token) = for_person(
        ctx,
        client,
        &PersonGrant {
            person: person.as_ref(),
            grant_id: &grant.id,
            scope: &scope,
            auth_time: Some(auth_time),
            amr: &amr,
            acr: record.acr.as_deref(),
            nonce: None,
            session_hash: record.session_hash.as_deref(),
            jkt,
        },
    )
    .await?;
    new_grant(ctx, client, &grant, scope, access, id_token).await
}
