//! The client credentials grant: RFC 6749 §4.4, a confidential client acting for itself. The
//! audience is the client itself, or a `resource` (RFC 8707) the app was granted, with only
//! granted scopes ([`crate::tenancy::resources::audience`]). No refresh token, no ID token.

use techpass_oidc::{ErrorCode, OAuthError};

use super::Tokens;
use crate::clients::Client;
use crate::mint::{self, Subject};
use crate::tenancy::resources::{self, scope_tokens};
use crate::ServiceContext;

pub(super) async fn run(
    ctx: &ServiceContext,
    client: &Client,
    scope: Option<String>,
    resource: Option<String>,
    jkt: Option<&str>,
) -> Result<Tokens, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "only confidential apps may use client_credentials",
        ));
    }
    let asked = scope_tokens(scope.as_deref().unwrap_or(""))?;
    if asked.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "openid and offline_access need a person; client_credentials has none",
        ));
    }
    if let Some(r) = &resource {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ));
        }
    }
    let (audience, scope) = resources::audience(ctx, client, resource.as_deref(), &asked).await?;
    let access = mint::access_token(ctx, &Subject::app(client, &audience, &scope, jkt))?;
    Ok(Tokens {
        access,
        id_token: None,
        refresh_token: None,
        scope,
        issued_token_type: None,
    })
}
