//! Signing people in through an upstream, and the SSO session that results.
//!
//! Nothing of a sign-in lives in one process's memory: the attempt is a database row keyed by
//! the keyed hash of `state`, bound to the browser by a cookie, and redeemed exactly once
//! (`DELETE … RETURNING`); the PKCE verifier and nonce are derived from `state` with the server
//! key, so they are never stored. The session is a database row keyed by the keyed hash of the
//! cookie value, so any replica can serve it. Every denial is audited with its reason.

pub mod routes;
pub mod terms;

pub use techpass_service::audit;
pub use techpass_service::signin::{
    csrf_token, csrf_valid, current_session, finish_login, start_login, CallbackQuery, Denial,
    NewSession, Session, Upstream, Upstreams,
};

pub use crate::cookies::CookiePolicy;

/// A local path to return to after sign-in; anything else becomes `/` (no open redirect,
/// RFC 9700 §4.11).
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 4096
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_local_only() {
        for ok in ["/", "/portal", "/authorize?client_id=a&state=b"] {
            assert_eq!(safe_return_to(Some(ok)), ok);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/ok\\..",
            "javascript:alert(1)",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
