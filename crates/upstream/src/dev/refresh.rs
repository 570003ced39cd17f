//! Refresh tokens of the development upstream (RFC 6749 §6), made so that any instance serving
//! the same client registration accepts them and nothing needs storing: the token is
//! `base64url(claims) "." base64url(HMAC-SHA-256)`, keyed by the client's secret, naming the
//! person, tenant, client and scope. Like Azure AD, every refresh answers with a new refresh
//! token, and the old one stays valid until it expires (90 days); a disabled person's tokens
//! are refused with Azure AD's `invalid_grant` (AADSTS50057).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::codes::Grant;
use super::{person, DevClient, DevError, DevUpstream, Failure};

/// Azure AD's refresh tokens live 90 days.
pub(super) const REFRESH_TOKEN_LIFETIME: i64 = 90 * 86_400;
/// Separates these MACs from any other use of the client secret.
const LABEL: &[u8] = b"techpass-dev-upstream refresh token v1\0";

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Person key.
    p: String,
    /// Tenant whose token endpoint issued it.
    t: String,
    c: String,
    s: String,
    exp: i64,
    /// Random, so two tokens are never equal.
    n: String,
}

fn mac(client: &DevClient, payload: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, client.client_secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(LABEL);
    context.update(payload);
    context.sign()
}

fn invalid(message: &str) -> Failure {
    Failure::invalid_grant(9002313, format!("Invalid request: {message}"))
}

impl DevUpstream {
    /// A new refresh token for what `grant` granted.
    pub(super) fn issue_refresh_token(&self, grant: &Grant, now: i64) -> Result<String, DevError> {
        let claims = Claims {
            p: grant.person.key.to_owned(),
            t: grant.tenant.to_owned(),
            c: grant.client_id.clone(),
            s: grant.scope.clone(),
            exp: now + REFRESH_TOKEN_LIFETIME,
            n: self.random_token(16)?,
        };
        let client = self
            .client(&grant.client_id)
            .ok_or(DevError::Encoding("unknown client"))?;
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).map_err(|_| DevError::Encoding("refresh token"))?);
        let tag = URL_SAFE_NO_PAD.encode(mac(client, payload.as_bytes()));
        Ok(format!("{payload}.{tag}"))
    }

    /// What a refresh token presented by `client` at `tenant`'s endpoint grants; the person's
    /// disabled state is the caller's to check.
    pub(super) fn redeem_refresh_token(
        &self,
        client: &DevClient,
        tenant: &'static str,
        token: &str,
        now: i64,
    ) -> Result<Grant, Failure> {
        let (payload, tag) = token
            .split_once('.')
            .ok_or_else(|| invalid("the refresh token is malformed."))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| invalid("the refresh token is malformed."))?;
        // Keyed by the presenting client's secret: another client's token does not verify.
        verify_slices_are_equal(mac(client, payload.as_bytes()).as_ref(), &tag).map_err(|_| {
            Failure::invalid_grant(
                9002313,
                "Invalid request: the refresh token was not issued to this client or is \
                 malformed.",
            )
        })?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| invalid("the refresh token is malformed."))?;
        if claims.c != client.client_id {
            return Err(invalid("the refresh token was issued to another client."));
        }
        if claims.t != tenant {
            return Err(Failure::invalid_grant(
                700005,
                "Provided refresh token is intended to use against other tenant, thus rejected.",
            ));
        }
        if now >= claims.exp {
            return Err(Failure::invalid_grant(
                700082,
                "The refresh token has expired due to inactivity. The token was issued more \
                 than 90 days ago.",
            ));
        }
        let person = person(&claims.p).ok_or_else(|| invalid("unknown user."))?;
        Ok(Grant {
            person,
            client_id: client.client_id.clone(),
            redirect_uri: String::new(),
            tenant,
            nonce: None,
            code_challenge: None,
            scope: claims.s,
            expires_at: claims.exp,
        })
    }
}

/// Azure AD's answer for a disabled account.
pub(super) fn disabled_account() -> Failure {
    Failure::invalid_grant(
        50057,
        "The user account is disabled. The account has been disabled by an administrator.",
    )
}
