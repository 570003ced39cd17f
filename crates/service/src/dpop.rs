//! DPoP (RFC 9449) at TechPass's endpoints: a request's proof checked for the endpoint it was
//! sent to and made single use. A token request with a proof gets an access token bound to the
//! proof's key (`cnf.jkt`, `token_type` `DPoP`), and a public client's grant is bound to it, so
//! its refresh tokens are honoured only with a proof signed by the same key (§5). Userinfo takes
//! a bound token only under the `DPoP` scheme with a proof of that key (§7).

use techpass_oidc::dpop::{self, Expected, MAX_AGE_SECS};
use techpass_oidc::{ErrorCode, OAuthError};

use crate::ServiceContext;

/// The thumbprint of the key a request proved it holds: `None` without a proof.
pub type Jkt = Option<String>;

fn refused(reason: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, reason)
}

/// Checks the proofs a request carried (the values of its `DPoP` headers) for `method` and
/// `url`, with `access_token` its `ath` too, and records the proof's `jti` for as long as the
/// proof is accepted: a replay is refused. No proof: `Ok(None)`; more than one: refused.
pub async fn check(
    ctx: &ServiceContext,
    proofs: &[&str],
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<Jkt, OAuthError> {
    let proof = match proofs {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(refused("send one DPoP proof")),
    };
    let now = ctx.clock.now().as_secs();
    let verified = dpop::verify(
        proof,
        &Expected {
            method,
            url,
            access_token,
            now,
        },
    )
    .map_err(refused)?;
    let fresh = ctx
        .store
        .record_dpop_proof(
            &verified.jkt,
            &verified.jti,
            verified.iat.saturating_add(MAX_AGE_SECS + 1),
        )
        .await
        .map_err(|e| {
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
                .with_detail(e.to_string())
        })?;
    if !fresh {
        return Err(refused("the DPoP proof was already used"));
    }
    Ok(Some(verified.jkt))
}

/// The key an access token is bound to (its `cnf.jkt`), if any.
pub fn bound_key(claims: &serde_json::Value) -> Option<&str> {
    claims["cnf"]["jkt"].as_str()
}
