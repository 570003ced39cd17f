//! Scopes TechPass understands (OpenID Connect Core §5.4, §11) and the scope parameter's
//! grammar (RFC 6749 §3.3).

use techpass_oidc::{ErrorCode, OAuthError};

pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Splits a space-delimited scope string, refusing unknown scopes and dropping repeats.
pub fn parse_scope(text: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for s in text.split(' ').filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("unknown scope {s}"),
            ));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    Ok(scopes)
}

/// A stored, already validated scope string as a list.
pub fn stored_scope(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_refused_and_repeats_dropped() {
        assert_eq!(
            parse_scope("openid  email openid").unwrap(),
            vec!["openid".to_string(), "email".to_string()]
        );
        assert_eq!(parse_scope("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_scope("openid admin").unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(stored_scope(" a  b "), vec!["a", "b"]);
    }
}
