//! Refusal of cross-origin writes to TechPass's own forms and API (the portal, registration,
//! sign-out, invitations, the JSON API, development tools).
//!
//! A CSRF token already ties each form to a page TechPass rendered; this is the second,
//! independent wall: a browser names the page that sent a request in `Origin` (and
//! `Sec-Fetch-Site`), so a write sent by any other origin is refused with 403 even when it
//! carries a valid token. Programs that send neither header (curl, a CI job with a bearer
//! token) are not browsers and are not affected. Never layered on the protocol endpoints that
//! apps legitimately post to from their own origin (`/authorize`, `/end-session`, `/token`…).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::state::AppState;

/// Why a write was refused, for the log. `Sec-Fetch-Site` decides when the browser sends it
/// (every current one does): it is set whatever the referrer policy, whereas TechPass's own
/// `Referrer-Policy: no-referrer` makes browsers send `Origin: null` with same-origin form
/// posts. Without it, an `Origin` naming another origin is refused; `Origin: null` alone
/// proves nothing either way and is left to the CSRF token.
fn foreign(headers: &HeaderMap, own_origin: &str) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => None,
            _ => Some("cross-origin Sec-Fetch-Site"),
        };
    }
    match headers.get(header::ORIGIN).map(|o| o.as_bytes()) {
        None | Some(b"null") => None,
        Some(origin) if origin == own_origin.as_bytes() => None,
        Some(_) => Some("foreign Origin"),
    }
}

/// The origin (`scheme://host[:port]`) people reach TechPass at: that of its issuer.
fn own_origin(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Some(why) = foreign(request.headers(), &own_origin(&state.metadata.issuer)) else {
        return next.run(request).await;
    };
    tracing::warn!(
        path = request.uri().path(),
        why,
        "cross-origin write refused"
    );
    if request.uri().path().starts_with("/api/") {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({
                "error": "cross_origin",
                "message": "requests sent by another website are refused",
            })),
        )
            .into_response();
    }
    state.pages.message(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another website, so TechPass did not act on it. If you meant to do this, open TechPass directly and try again there.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn browsers_name_the_sender() {
        let own = own_origin("https://id.example.gov.sg");
        assert_eq!(own, "https://id.example.gov.sg");
        assert_eq!(foreign(&with(&[]), &own), None, "not a browser");
        assert_eq!(
            foreign(&with(&[("origin", "https://id.example.gov.sg")]), &own),
            None
        );
        assert_eq!(
            foreign(&with(&[("sec-fetch-site", "same-origin")]), &own),
            None
        );
        assert_eq!(foreign(&with(&[("sec-fetch-site", "none")]), &own), None);
        // What Chromium sends for a same-origin form post under `no-referrer`.
        assert_eq!(
            foreign(
                &with(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
                &own
            ),
            None
        );
        for refused in [
            with(&[("origin", "https://evil.example")]),
            with(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            with(&[
                ("origin", "https://id.example.gov.sg"),
                ("sec-fetch-site", "cross-site"),
            ]),
            with(&[("origin", "http://id.example.gov.sg")]),
            with(&[("origin", "https://id.example.gov.sg:8443")]),
            with(&[("sec-fetch-site", "cross-site")]),
            with(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(foreign(&refused, &own).is_some(), "{refused:?}");
        }
    }

    #[test]
    fn the_own_origin_drops_the_issuer_path() {
        assert_eq!(
            own_origin("http://127.0.0.1:8080/tenant"),
            "http://127.0.0.1:8080"
        );
    }
}
