//! JWS compact serialisation (RFC 7515 §7.1) of JWTs signed with a key's own algorithm: how the
//! key manager signs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::keys::{KeyError, SigningKey};

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` with `key`. `typ` is the JOSE header type: `JWT` for ID tokens, `at+jwt` for
/// access tokens (RFC 9068 §2.1), `logout+jwt` for logout tokens.
pub fn encode(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::to_vec(&Header {
        alg: key.alg().as_str(),
        typ,
        kid: key.kid(),
    })
    .map_err(|e| KeyError::Crypto(format!("header encoding: {e}")))?;
    let payload = serde_json::to_vec(claims)
        .map_err(|e| KeyError::Crypto(format!("claims encoding: {e}")))?;
    let mut token = String::with_capacity(512);
    token.push_str(&URL_SAFE_NO_PAD.encode(header));
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}
