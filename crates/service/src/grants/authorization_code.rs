//! The authorization code grant: RFC 6749 §4.1.3 with RFC 7636 §4.6 and RFC 9700 §2.1.1 (no
//! PKCE downgrade). The code is consumed only after its caller proved to be its rightful owner
//! (client, `redirect_uri`, PKCE) and the gate let the person through; a wrong caller or a
//! refusal changes nothing. Spending the code and storing the grant with its first refresh
//! token are one transaction (one commit, one fsync on SQLite).

use techpass_oidc::{pkce, OAuthError};
use techpass_store::{AuthCodeRecord, GrantRecord, Redemption};

use super::{
    first_refresh_token, for_person, grant_key, revoke_spent, store_error, PersonGrant, Tokens,
};
use crate::clients::Client;
use crate::mint::PURPOSE_CODE;
use crate::scopes::stored_scope;
use crate::ServiceContext;

/// Whether the caller is the code's rightful owner: the client it was issued to, the
/// `redirect_uri` of the authorization request, the PKCE verifier of its challenge (RFC 6749
/// §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1). Decided before anything is written, so a wrong
/// caller neither burns the code nor revokes what it produced.
fn check_caller(
    record: &AuthCodeRecord,
    client: &Client,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if redirect_uri != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&record.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify_s256(verifier, challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but no code_challenge was",
            ))
        }
        (None, None) => {}
    }
    Ok(())
}

/// A second use of a code by its rightful caller: RFC 6749 §4.1.2 / §10.5, what the first use
/// produced (the grant the code names, with every token in it) is revoked.
async fn replayed(ctx: &ServiceContext, client: &Client, spent: &AuthCodeRecord) -> OAuthError {
    match revoke_spent(ctx, spent.grant_id.as_deref()).await {
        Ok(revoked) => {
            tracing::warn!(client_id = %client.id, revoked, "authorization code replayed; its grant is revoked");
            OAuthError::invalid_grant("the code was already used")
        }
        Err(e) => e,
    }
}

pub(super) async fn run(
    ctx: &ServiceContext,
    client: &Client,
    code: &str,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    let now = ctx.clock.now().as_secs();
    let code_hash = ctx.secrets.keyed_hash(PURPOSE_CODE, code);
    // Look, check the caller, decide, then redeem: the checked fields never change, and the
    // redemption is a conditional update, so exactly one rightful caller gets the code.
    let (record, person) = ctx
        .store
        .get_code_with_user(&code_hash)
        .await
        .map_err(store_error)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown code"))?;
    check_caller(
        &record,
        client,
        redirect_uri.as_deref(),
        code_verifier.as_deref(),
    )?;
    if record.used_at.is_some() {
        return Err(replayed(ctx, client, &record).await);
    }
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    let scope = stored_scope(&record.scope);
    let grant = GrantRecord {
        id: ctx.random.ordered_uuid().to_string(),
        client_id: client.id.clone(),
        user_id: Some(record.user_id.clone()),
        session_hash: Some(record.session_hash.clone()),
        scope: record.scope.clone(),
        auth_time: Some(record.auth_time),
        amr: record.amr.clone(),
        acr: record.acr.clone(),
        created_at: now,
        expires_at: now + ctx.settings.tokens.refresh_token_max_lifetime_secs as i64,
        revoked_at: None,
        dpop_jkt: grant_key(client, jkt),
    };
    let (access, id_token) = for_person(
        ctx,
        client,
        &PersonGrant {
            person: person.as_ref(),
            grant_id: &grant.id,
            scope: &scope,
            auth_time: Some(record.auth_time),
            amr: &record.amr,
            acr: record.acr.as_deref(),
            nonce: record.nonce.as_deref(),
            session_hash: Some(&record.session_hash),
            jkt,
        },
    )
    .await?;
    let refresh = first_refresh_token(ctx, client, &grant, &scope)?;
    let redemption = ctx
        .store
        .redeem_code_into_grant(&code_hash, now, &grant, refresh.as_ref().map(|(_, r)| r))
        .await
        .map_err(store_error)?;
    match redemption {
        Redemption::Redeemed(_) => {}
        // Another request of the rightful caller redeemed it in between: what it got is revoked
        // and the tokens made here are never handed out.
        Redemption::Replayed(spent) => return Err(replayed(ctx, client, &spent).await),
        Redemption::NotFound => return Err(OAuthError::invalid_grant("unknown code")),
    }
    Ok(Tokens {
        access,
        id_token,
        refresh_token: refresh.map(|(token, _)| token),
        scope,
        issued_token_type: None,
    })
}
