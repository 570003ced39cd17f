//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6; RFC 8628 §3.4), one per file behind one shape:
//! the shell parses the form and authenticates the client, [`TokenRequest::parse`] types the
//! request, [`run`] applies the checks every grant shares and runs the grant, and the grant
//! returns the [`Tokens`] it minted. A grant for a person redeems what it was given and then
//! goes through [`for_person`]: user → gate → claims → mint, written once.

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;
mod token_exchange;

use techpass_oidc::{ErrorCode, OAuthError, Params};
use techpass_store::{GrantRecord, RefreshTokenRecord, StoreError, UserRecord};

use crate::clients::{
    Client, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE,
    GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE,
};
use crate::gate::{enforce, enforce_app, Refusal};
use crate::mint::{self, AccessToken, IdTokenInput, Subject};
use crate::ServiceContext;

/// A token request, parsed: grants never see the raw form. Not `Debug`: it holds codes and
/// refresh tokens, which never reach a log.
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
        resource: Option<String>,
    },
    DeviceCode {
        device_code: String,
    },
    /// RFC 8693: a CI job's own ID token for an access token of the app.
    TokenExchange(token_exchange::Exchange),
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<TokenRequest, OAuthError> {
        let opt = |k: &str| params.get(k).map(String::from);
        match params.require("grant_type")? {
            GRANT_AUTHORIZATION_CODE => Ok(TokenRequest::AuthorizationCode {
                code: params.require("code")?.to_string(),
                redirect_uri: opt("redirect_uri"),
                code_verifier: opt("code_verifier"),
            }),
            GRANT_REFRESH_TOKEN => Ok(TokenRequest::RefreshToken {
                refresh_token: params.require("refresh_token")?.to_string(),
                scope: opt("scope"),
            }),
            GRANT_CLIENT_CREDENTIALS => Ok(TokenRequest::ClientCredentials {
                scope: opt("scope"),
                resource: opt("resource"),
            }),
            GRANT_DEVICE_CODE => Ok(TokenRequest::DeviceCode {
                device_code: params.require("device_code")?.to_string(),
            }),
            GRANT_TOKEN_EXCHANGE => Ok(TokenRequest::TokenExchange(
                token_exchange::Exchange::parse(params)?,
            )),
            other => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant type {other} is not supported"),
            )),
        }
    }

    pub fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode { .. } => GRANT_AUTHORIZATION_CODE,
            TokenRequest::RefreshToken { .. } => GRANT_REFRESH_TOKEN,
            TokenRequest::ClientCredentials { .. } => GRANT_CLIENT_CREDENTIALS,
            TokenRequest::DeviceCode { .. } => GRANT_DEVICE_CODE,
            TokenRequest::TokenExchange(_) => GRANT_TOKEN_EXCHANGE,
        }
    }
}

/// What a grant hands back: the shell turns it into the RFC 6749 §5.1 response.
pub struct Tokens {
    pub access: AccessToken,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Vec<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued (`None` for the other grants).
    pub issued_token_type: Option<&'static str>,
}

/// Runs `request` for the authenticated `client`: the checks every grant shares, then the
/// grant. The app's half of the gate (tenant active, app enabled) comes first, before any code
/// or refresh token is looked at, so a refused app consumes nothing. Its refusal is
/// `unauthorized_client` for an app acting for itself and `invalid_grant` for a grant of a
/// person (as the person's gate answers there).
///
/// `jkt` is the key the request proved it holds with a DPoP proof ([`crate::dpop::check`]):
/// the access token is bound to it, and so is a public client's new grant (its refresh tokens).
/// An app that registered `dpop_bound_access_tokens` gets nothing without one.
pub async fn run(
    ctx: &ServiceContext,
    client: &Client,
    request: TokenRequest,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    if let Err(refusal) = enforce_app(ctx, client, "token", None).await {
        return Err(match refusal {
            Refusal::Denied(d) => {
                let code = match request {
                    TokenRequest::ClientCredentials { .. } | TokenRequest::TokenExchange(_) => {
                        ErrorCode::UnauthorizedClient
                    }
                    _ => ErrorCode::InvalidGrant,
                };
                OAuthError::new(code, format!("access denied: {}", d.reason()))
            }
            Refusal::Unavailable(e) => store_error(e),
        });
    }
    if client.dpop_bound_access_tokens && jkt.is_none() {
        return Err(OAuthError::invalid_request(
            "this app requires DPoP-bound tokens (dpop_bound_access_tokens): send a DPoP proof \
             with the token request",
        ));
    }
    if !client.allows(request.grant_type()) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this app may not use the {} grant", request.grant_type()),
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => authorization_code::run(ctx, client, &code, redirect_uri, code_verifier, jkt).await,
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::run(ctx, client, &refresh_token, scope, jkt).await,
        TokenRequest::ClientCredentials { scope, resource } => {
            client_credentials::run(ctx, client, scope, resource, jkt).await
        }
        TokenRequest::DeviceCode { device_code } => {
            device_code::run(ctx, client, &device_code, jkt).await
        }
        TokenRequest::TokenExchange(exchange) => {
            token_exchange::run(ctx, client, exchange, jkt).await
        }
    }
}

/// A storage failure at the token endpoint: the app may try again.
fn store_error(e: StoreError) -> OAuthError {
    OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later").with_detail(e.to_string())
}

/// What a redeemed code or refresh token says about the sign-in it continues.
struct PersonGrant<'a> {
    /// The person, as read with the code or the grant (`None`: no longer there).
    person: Option<&'a UserRecord>,
    grant_id: &'a str,
    scope: &'a [String],
    auth_time: Option<i64>,
    amr: &'a [String],
    acr: Option<&'a str>,
    nonce: Option<&'a str>,
    session_hash: Option<&'a str>,
    /// The DPoP key the new access token is bound to.
    jkt: Option<&'a str>,
}

/// The DPoP key a new grant of `client` is bound to: a public client's proof key (RFC 9449 §5:
/// its refresh tokens are then usable only with that key). A confidential client's refresh
/// tokens are already bound to its authentication, so its grant is not.
fn grant_key(client: &Client, jkt: Option<&str>) -> Option<String> {
    jkt.filter(|_| !client.confidential).map(String::from)
}

/// A code or a rotated refresh token used a second time (RFC 6749 §10.5, RFC 9700 §4.14.2;
/// RFC 8628's device code likewise): the grant its first use was redeemed into or belongs to,
/// `grant`, is revoked with every token in it (`None`: that use made no grant, nothing to
/// revoke). Whether the grant was there to revoke.
async fn revoke_spent(ctx: &ServiceContext, grant: Option<&str>) -> Result<bool, OAuthError> {
    let Some(id) = grant else {
        return Ok(false);
    };
    let now = ctx.clock.now().as_secs();
    ctx.store.revoke_grant(id, now).await.map_err(store_error)
}

/// The sequence every grant for a person ends with: the user as stored now (read with the code
/// or refresh token, in the same request), the gate, the app's groups and roles, then the access
/// and ID tokens. The refresh token is the grant's own business.
async fn for_person(
    ctx: &ServiceContext,
    client: &Client,
    grant: &PersonGrant<'_>,
) -> Result<(AccessToken, Option<String>), OAuthError> {
    let user = grant
        .person
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    let tenant = enforce(ctx, user, client, "token", None)
        .await
        .map_err(|r| match r {
            Refusal::Denied(d) => {
                OAuthError::invalid_grant(format!("access denied: {}", d.reason()))
            }
            Refusal::Unavailable(e) => store_error(e),
        })?;
    // Consent is a condition of every token, not only of the code: a person who has since left
    // the tenant (so now needs one) or withdrew theirs gets nothing more.
    if crate::consent::needed(ctx, user, client, grant.scope, false)
        .await
        .map_err(store_error)?
    {
        return Err(OAuthError::invalid_grant(
            "the person has not consented to this app; they must sign in to it again",
        ));
    }
    let (groups, roles) = mint::groups_and_roles(ctx, client, tenant.as_ref(), user)
        .await
        .map_err(store_error)?;
    let subject = Subject {
        user: Some(user),
        client_id: &client.id,
        audience: &client.id,
        scope: grant.scope,
        grant_id: Some(grant.grant_id),
        auth_time: grant.auth_time,
        amr: grant.amr,
        acr: grant.acr,
        groups: &groups,
        roles: &roles,
        access_lifetime: client.access_token_lifetime_secs,
        access_token_alg: client.access_token_alg,
        id_token_alg: client.id_token_alg,
        jkt: grant.jkt,
        ci: None,
    };
    let access = mint::access_token(ctx, &subject)?;
    let id_token = mint::id_token(
        ctx,
        &IdTokenInput {
            subject: &subject,
            nonce: grant.nonce,
            session_hash: grant.session_hash,
            access_token: &access.token,
        },
    )?;
    Ok((access, id_token))
}

/// The first refresh token of a person's new grant, not yet stored: with `offline_access`, for
/// an app that may refresh.
fn first_refresh_token(
    ctx: &ServiceContext,
    client: &Client,
    grant: &GrantRecord,
    scope: &[String],
) -> Result<Option<(String, RefreshTokenRecord)>, OAuthError> {
    if scope.iter().any(|s| s == "offline_access") && client.allows(GRANT_REFRESH_TOKEN) {
        mint::next_refresh_token(
            ctx,
            &grant.id,
            grant.expires_at,
            client.refresh_token_idle_secs,
        )
        .map(Some)
    } else {
        Ok(None)
    }
}

/// Stores the grant a person's first tokens open (after the gate let them through, so a refusal
/// writes nothing) with its first refresh token, if any ([`first_refresh_token`]).
async fn new_grant(
    ctx: &ServiceContext,
    client: &Client,
    grant: &GrantRecord,
    scope: Vec<String>,
    access: AccessToken,
    id_token: Option<String>,
) -> Result<Tokens, OAuthError> {
    let refresh = first_refresh_token(ctx, client, grant, &scope)?;
    ctx.store.insert_grant(grant).await.map_err(store_error)?;
    if let Some((_, record)) = &refresh {
        ctx.store
            .insert_refresh_token(record)
            .await
            .map_err(store_error)?;
    }
    Ok(Tokens {
        access,
        id_token,
        refresh_token: refresh.map(|(token, _)| token),
        scope,
        issued_token_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Params::parse(body.join("&").as_bytes()).unwrap()
    }

    #[test]
    fn a_request_is_typed_by_its_grant_type() {
        let r = TokenRequest::parse(&params(&[
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", "https%3A%2F%2Fapp%2Fcb"),
        ]))
        .ok()
        .unwrap();
        assert_eq!(r.grant_type(), GRANT_AUTHORIZATION_CODE);
        let missing = TokenRequest::parse(&params(&[("grant_type", "refresh_token")]));
        assert_eq!(missing.err().unwrap().code, ErrorCode::InvalidRequest);
        let other = TokenRequest::parse(&params(&[("grant_type", "password")]));
        assert_eq!(other.err().unwrap().code, ErrorCode::UnsupportedGrantType);
        let none = TokenRequest::parse(&params(&[]));
        assert_eq!(none.err().unwrap().code, ErrorCode::InvalidRequest);
    }
}
