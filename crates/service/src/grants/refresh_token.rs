//! The refresh token grant: RFC 6749 §6 with rotation (RFC 9700 §4.14.2). Each use returns a
//! new refresh token; using a rotated one again revokes the whole grant. Only the client the
//! token was issued to can use it, or set off that revocation.
//!
//! One exception keeps a lost response from ending a person's session: a client that uses the
//! same token again within `tokens.refresh_reuse_grace_secs` of its first use, while the token
//! it was rotated to has never been used, is retrying a request whose answer it did not get
//! (a replica killed mid-request, a dropped connection). It gets new tokens, and the successor
//! it never received is deleted, so at most one successor of a token is ever live.

use techpass_oidc::{ErrorCode, OAuthError};
use techpass_store::{Redemption, RefreshFamily};

use super::{for_person, revoke_spent, store_error, PersonGrant, Tokens};
use crate::clients::Client;
use crate::mint;
use crate::reverify::{self, Verdict};
use crate::scopes::{parse_scope, stored_scope};
use crate::ServiceContext;

/// A rotated refresh token used again by its own client: the whole grant is revoked.
async fn replayed(ctx: &ServiceContext, client: &Client, grant_id: &str) -> OAuthError {
    match revoke_spent(ctx, Some(grant_id)).await {
        Ok(_) => {
            tracing::warn!(client_id = %client.id, "rotated refresh token reused; its grant is revoked");
            OAuthError::invalid_grant("the refresh token was already used")
        }
        Err(e) => e,
    }
}

pub(super) async fn run(
    ctx: &ServiceContext,
    client: &Client,
    token: &str,
    requested_scope: Option<String>,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let now = ctx.clock.now().as_secs();
    let token_hash = mint::refresh_token_key(ctx, token);
    let unknown = || OAuthError::invalid_grant("unknown refresh token");
    // Look, check the caller, then redeem (a conditional update): a refresh token presented by
    // another client is neither consumed nor allowed to revoke its family.
    let RefreshFamily {
        token: stored,
        grant,
        person,
    } = ctx
        .store
        .get_refresh_token_with_grant(&token_hash)
        .await
        .map_err(store_error)?
        .ok_or_else(unknown)?;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // A revoked grant first: revocation (sign-out, an ended membership, a withdrawn consent) may
    // also have spent its tokens, and that is not a replay.
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the grant was revoked"));
    }
    let grace = ctx.settings.tokens.refresh_reuse_grace_secs as i64;
    let retry_since = now.saturating_sub(grace);
    let retry = match stored.used_at {
        None => false,
        Some(used) if grace > 0 && used >= retry_since => true,
        Some(_) => return Err(replayed(ctx, client, &grant.id).await),
    };
    if now >= stored.expires_at || now >= grant.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    // A grant bound to a DPoP key (a public client's, RFC 9449 §5): only a proof of that key
    // refreshes it; the token is not spent otherwise.
    if let Some(bound) = grant.dpop_jkt.as_deref() {
        match jkt {
            Some(key) if key == bound => {}
            Some(_) => {
                return Err(OAuthError::invalid_grant(
                    "the refresh token is bound to another DPoP key",
                ))
            }
            None => {
                return Err(OAuthError::invalid_grant(
                    "the refresh token is bound to a DPoP key: send a DPoP proof signed by it",
                ))
            }
        }
    }
    // Bounded staleness: past `upstream.reverify_after_secs`, the upstream confirms the person
    // first (before the token is spent: a refusal leaves nothing half-done).
    if let Some(user_id) = grant.user_id.as_deref() {
        let verdict = reverify::check(
            ctx,
            user_id,
            None,
            grant.auth_time.unwrap_or(grant.created_at),
            None,
        )
        .await
        .map_err(store_error)?;
        match verdict {
            Verdict::Current | Verdict::WithinGrace => {}
            Verdict::Refused => {
                return Err(OAuthError::invalid_grant(
                    "re-verification failed: the upstream no longer accepts the person; they must \
                     sign in again",
                ))
            }
            Verdict::Unverifiable => {
                return Err(OAuthError::invalid_grant(
                    "re-verification failed: the upstream could not confirm the person in time; \
                     they must sign in again",
                ))
            }
        }
    }
    let granted = stored_scope(&grant.scope);
    let scope = match requested_scope {
        Some(text) => {
            let asked = parse_scope(&text)?;
            if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {extra} was not granted"),
                ));
            }
            asked
        }
        None => granted,
    };
    // The gate and the new tokens before the old refresh token is spent: a refusal or a bad
    // request leaves it as it was.
    let (access, id_token) = for_person(
        ctx,
        client,
        &PersonGrant {
            person: person.as_ref(),
            grant_id: &grant.id,
            scope: &scope,
            auth_time: grant.auth_time,
            amr: &grant.amr,
            acr: grant.acr.as_deref(),
            nonce: None,
            session_hash: grant.session_hash.as_deref(),
            jkt,
        },
    )
    .await?;
    let (next, successor) = mint::next_refresh_token(
        ctx,
        &grant.id,
        grant.expires_at,
        client.refresh_token_idle_secs,
    )?;
    if retry {
        // The successor it was rotated to, if still unused, gives way to this one; if it was
        // used (or another retry came first), this is a replay after all.
        if !ctx
            .store
            .reissue_refresh_token(&token_hash, retry_since, &successor)
            .await
            .map_err(store_error)?
        {
            return Err(replayed(ctx, client, &grant.id).await);
        }
        tracing::info!(client_id = %client.id, "refresh retried after a lost response; its unused successor was replaced");
    } else {
        // Spent and succeeded in one transaction: never a spent token without its successor.
        match ctx
            .store
            .redeem_refresh_token(&token_hash, now, Some(&successor))
            .await
            .map_err(store_error)?
        {
            Redemption::Redeemed(_) => {}
            // Another request of the same client used it in between.
            Redemption::Replayed(_) => return Err(replayed(ctx, client, &grant.id).await),
            Redemption::NotFound => return Err(unknown()),
        }
    }
    Ok(Tokens {
        access,
        id_token,
        refresh_token: Some(next),
        scope,
        issued_token_type: None,
    })
}
