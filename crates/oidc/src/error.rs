//! The error catalogue of the protocol endpoints: the codes of RFC 6749 §4.1.2.1 and §5.2,
//! RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 8628 §3.5, RFC 8707 §2 and OpenID Connect Core §3.1.2.6, with each code's HTTP status
//! in one place. The description is safe to show the client; the detail reaches only the logs.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: the person must interact (register, consent) first.
    InteractionRequired,
    /// OpenID Connect Core §3.1.2.6: the person must consent first.
    ConsentRequired,
    UnsupportedTokenType,
    /// OpenID Connect Core §3.1.2.6: `request` objects are not supported.
    RequestNotSupported,
    /// OpenID Connect Core §3.1.2.6: `request_uri` is not supported.
    RequestUriNotSupported,
    /// RFC 8707 §2: the `resource` is not one the client may ask a token for.
    InvalidTarget,
    /// RFC 8628 §3.5: the person has not yet approved or denied the device's request.
    AuthorizationPending,
    /// RFC 8628 §3.5: the device polls too fast; its interval grew by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired before it was approved.
    ExpiredToken,
    /// RFC 9449 §5: the `DPoP` proof is missing, malformed, replayed or does not match.
    InvalidDpopProof,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
        }
    }

    /// The HTTP status of a direct (non-redirect) error response. `access_denied` is answered
    /// directly only by the token endpoint (RFC 8628 §3.5), where every error is a 400 (RFC 6749
    /// §5.2); elsewhere it travels in a redirect.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// A protocol error: the code, a description for the client, and detail for the logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({description}){}", code.as_str(), if detail.is_empty() { String::new() } else { format!(": {detail}") })]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub detail: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            detail: String::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidClient, description)
    }

    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
        .with_detail(detail.to_string())
    }

    /// A dependency (the database) could not answer: the caller may try again later
    /// (`temporarily_unavailable`, a 503), not a fault of the server's own (`server_error`).
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        OAuthError::new(ErrorCode::TemporarilyUnavailable, "try again later")
            .with_detail(detail.to_string())
    }

    /// The JSON body (RFC 6749 §5.2), the description in the characters it allows.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.code.as_str(),
            "error_description": description_text(&self.description),
        })
    }
}

/// RFC 6749 §5.2: `error_description` is `1*( %x20-21 / %x23-5B / %x5D-7E )`. Descriptions may
/// quote what a request carried (a claim value of a CI job's token, a grant type), so a double
/// quote becomes a single quote, a backslash a slash, and any other character outside the set
/// (control characters, non-ASCII) a question mark.
pub fn description_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_characters_rfc_6749_allows() {
        let e = OAuthError::invalid_grant("the token's ref is \"dev\\x\"\n\u{1b}[31mé");
        let text = e.body()["error_description"].as_str().unwrap().to_string();
        assert_eq!(text, "the token's ref is 'dev/x'??[31m?");
        assert!(text.bytes().all(|b| b == 0x20
            || b == 0x21
            || (0x23..=0x5b).contains(&b)
            || (0x5d..=0x7e).contains(&b)));
        // The description itself (for logs and tests) is unchanged.
        assert!(e.description.contains("\"dev"));
    }
}
