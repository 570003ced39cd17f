//! Structural checks on an ID token before any JWT parser sees it: a size bound, the three
//! segments of the JWS compact serialization (RFC 7515 §7.1), and a protected header that is
//! small, a JSON object, names its `alg` (§4.1.1) and marks nothing critical (§4.1.11: TechPass
//! understands no extension, so it must refuse any it is told it must understand).
//!
//! Limits: only the shape is checked here; the signature, the algorithm allow list and every
//! claim are verified afterwards by the connector. A JWE (five segments) is refused: the
//! upstream is not configured to encrypt ID tokens.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::UpstreamError;

/// Largest ID token accepted, in bytes of its compact serialization. Azure AD ID tokens are a
/// few KiB even with 200 groups (AZURE.md §5: beyond that, an overage claim replaces them).
pub const ID_TOKEN_LIMIT: usize = 16 * 1024;
/// Largest protected header accepted, in bytes of its base64url encoding; Azure AD's
/// (`typ`, `alg`, `kid`, perhaps `x5t`) take about 120.
pub const JWS_HEADER_LIMIT: usize = 2048;

/// Refuses a token that is too large or not a plain three-segment JWS with a sane header.
pub(crate) fn check_compact_jws(raw: &str) -> Result<(), UpstreamError> {
    if raw.len() > ID_TOKEN_LIMIT {
        return Err(UpstreamError::IdTokenTooLarge {
            size: raw.len(),
            limit: ID_TOKEN_LIMIT,
        });
    }
    let segments = raw.split('.').count();
    let header = match raw.split_once('.') {
        Some((header, _)) if segments == 3 => header,
        _ => {
            return Err(UpstreamError::MalformedJws(format!(
                "{segments} dot-separated segments, where a JWS has 3 (RFC 7515 §7.1)"
            )))
        }
    };
    if header.len() > JWS_HEADER_LIMIT {
        return Err(UpstreamError::MalformedJws(format!(
            "protected header is {} bytes encoded, over the {JWS_HEADER_LIMIT}-byte bound",
            header.len()
        )));
    }
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| UpstreamError::MalformedJws("protected header is not base64url".into()))?;
    let fields: Map<String, Value> = serde_json::from_slice(&json)
        .map_err(|_| UpstreamError::MalformedJws("protected header is not a JSON object".into()))?;
    if !fields.get("alg").is_some_and(Value::is_string) {
        return Err(UpstreamError::MalformedJws(
            "protected header has no alg string (RFC 7515 §4.1.1)".into(),
        ));
    }
    if fields.contains_key("crit") {
        return Err(UpstreamError::MalformedJws(
            "protected header marks extensions critical, and none is understood \
             (RFC 7515 §4.1.11)"
                .into(),
        ));
    }
    Ok(())
}

/// The one member of a token response (RFC 6749 §5.1) looked at before `openidconnect` parses
/// the whole: `id_token`, as an opaque string.
#[derive(Deserialize)]
struct IdTokenMember<'a> {
    #[serde(borrow, default)]
    id_token: Option<Cow<'a, str>>,
}

/// Screens a token response body (already within [`crate::TOKEN_RESPONSE_LIMIT`]) so that an
/// oversized or misshapen ID token is refused before it is parsed as a JWT. A body that is not a
/// JSON object with a string `id_token` passes: `openidconnect` reports it.
pub(crate) fn screen_token_response(body: &[u8]) -> Result<(), UpstreamError> {
    match serde_json::from_slice::<IdTokenMember<'_>>(body) {
        Ok(IdTokenMember {
            id_token: Some(raw),
        }) => check_compact_jws(&raw),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(r#"{"sub":"x"}"#))
    }

    fn reason(raw: &str) -> &'static str {
        match check_compact_jws(raw) {
            Ok(()) => "accepted",
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn shapes_and_headers() {
        let ok = token(r#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#);
        let padded = |n: usize| token(&format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(n)));
        let cases: Vec<(&str, String, &str)> = vec![
            ("ordinary", ok.clone(), "accepted"),
            (
                "alg none, empty signature",
                format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}")),
                "accepted",
            ),
            ("four segments", format!("{ok}.AAAA"), "malformed_jws"),
            (
                "five segments (JWE)",
                format!("{ok}.AAAA.BBBB"),
                "malformed_jws",
            ),
            (
                "two segments",
                ok.rsplit_once('.').unwrap().0.to_owned(),
                "malformed_jws",
            ),
            ("one segment", "abc".into(), "malformed_jws"),
            (
                "header at the bound",
                padded(JWS_HEADER_LIMIT * 3 / 4 - 24),
                "accepted",
            ),
            (
                "header over the bound",
                padded(JWS_HEADER_LIMIT * 3 / 4 - 23),
                "malformed_jws",
            ),
            (
                "header not base64url",
                format!("a+b/.{}.c2ln", b64("{}")),
                "malformed_jws",
            ),
            (
                "header an array",
                token(r#"["alg","RS256"]"#),
                "malformed_jws",
            ),
            ("header a string", token(r#""RS256""#), "malformed_jws"),
            (
                "header without alg",
                token(r#"{"kid":"k1"}"#),
                "malformed_jws",
            ),
            (
                "alg not a string",
                token(r#"{"alg":["RS256"]}"#),
                "malformed_jws",
            ),
            (
                "crit",
                token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#),
                "malformed_jws",
            ),
            (
                "over the size bound",
                format!("{ok}{}", "A".repeat(ID_TOKEN_LIMIT)),
                "id_token_too_large",
            ),
        ];
        let header_len = |raw: &str| raw.split('.').next().unwrap().len();
        assert_eq!(
            header_len(&padded(JWS_HEADER_LIMIT * 3 / 4 - 24)),
            JWS_HEADER_LIMIT
        );
        assert_eq!(
            header_len(&padded(JWS_HEADER_LIMIT * 3 / 4 - 23)),
            JWS_HEADER_LIMIT + 2
        );
        for (name, raw, expected) in &cases {
            assert_eq!(reason(raw), *expected, "{name}");
        }
        // The bound is inclusive: exactly ID_TOKEN_LIMIT bytes passes the size check.
        let mut at_limit = ok.clone();
        at_limit.push_str(&"A".repeat(ID_TOKEN_LIMIT - ok.len()));
        assert_eq!(at_limit.len(), ID_TOKEN_LIMIT);
        assert_eq!(reason(&at_limit), "accepted");
        assert_eq!(reason(&format!("{at_limit}A")), "id_token_too_large");
    }

    #[test]
    fn token_responses_are_screened_for_their_id_token() {
        let ok = token(r#"{"alg":"RS256"}"#);
        let body = |id_token: &str| format!(r#"{{"access_token":"a","id_token":"{id_token}"}}"#);
        assert_eq!(screen_token_response(body(&ok).as_bytes()), Ok(()));
        let refused = screen_token_response(body(&format!("{ok}.x")).as_bytes());
        assert_eq!(refused.map_err(|e| e.reason()), Err("malformed_jws"));
        let large = format!("{ok}{}", "A".repeat(ID_TOKEN_LIMIT));
        let refused = screen_token_response(body(&large).as_bytes());
        assert_eq!(refused.map_err(|e| e.reason()), Err("id_token_too_large"));
        // Not for the screen to judge: no ID token, or no JSON at all.
        assert_eq!(screen_token_response(br#"{"access_token":"a"}"#), Ok(()));
        assert_eq!(screen_token_response(b"<html>"), Ok(()));
    }
}
