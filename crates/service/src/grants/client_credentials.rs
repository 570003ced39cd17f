//! The client credentials grant: RFC 6749 §4.4, a confidential client acting for itself. The
//! audience is the requested `resource` (RFC 8707) or the client itself. No refresh token, no
//! ID token.

use techpass_oidc::{ErrorCode, OAuthError};

use super::Tokens;
use crate::clients::Client;
use crate::mint::{self, Subject};
use crate::scopes::parse_scope;
use crate::ServiceContext;

pub(super) fn run(
    ctx: &ServiceContext,
    client: &Client,
    scope: Option<String>,
    resource: Option<String>,
) -> Result<Tokens, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "only confidential apps may use client_credentials",
        ));
    }
    let scope = parse_scope(scope.as_deref().unwrap_or(""))?;
    if scope.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "openid and offline_access need a person; client_credentials has none",
        ));
    }
    if let Some(r) = &resource {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "resource must be an absolute URI",
            ));
        }
    }
    let audience = resource.unwrap_or_else(|| client.id.clone());
    let access = mint::access_token(
        ctx,
        &Subject {
            user: None,
            client_id: &client.id,
            audience: &audience,
            scope: &scope,
            grant_id: None,
            auth_time: None,
            amr: &[],
            acr: None,
            groups: &[],
            roles: &[],
            access_lifetime: client.access_token_lifetime_secs,
        },
    )?;
    Ok(Tokens {
        access,
        id_token: None,
        refresh_token: None,
        scope,
    })
}
