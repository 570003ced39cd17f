//! The way back to the app a person came from, when what happens in between (sign-in at the
//! upstream, registration, a refusal) is decided on a TechPass page.
//!
//! A sign-in started by an app carries the app's authorization request as a local return URL
//! (`/authorize?…`). From it this module recovers the app and its redirect URI, checked exactly
//! as `/authorize` checks them (registered client, registered redirect URI), so a return URL
//! can never become an open redirector (RFC 9700 §4.11). It builds the error response the app
//! expects (RFC 6749 §4.1.2.1 with `state`, RFC 9207 `iss`) and the CSP `form-action` source
//! that lets a form whose answer ends at the app complete (CSP Level 3 applies `form-action`
//! to the redirects that follow a form submission).

use techpass_domain::client::match_redirect_uri;
use techpass_oidc::{paths, ErrorCode, Params};
use url::Url;

use crate::state::AppState;
use techpass_service::clients::find_client;

/// An app's authorization request, recovered from a return URL and checked.
#[derive(Debug, Clone)]
pub struct AppReturn {
    /// The app's name, for "Return to <app>".
    pub app_name: String,
    redirect_uri: String,
    state: Option<String>,
}

impl AppReturn {
    /// The way back for a request `/authorize` has already checked.
    pub fn new(app_name: &str, redirect_uri: &str, state: Option<&str>) -> AppReturn {
        AppReturn {
            app_name: app_name.to_string(),
            redirect_uri: redirect_uri.to_string(),
            state: state.map(String::from),
        }
    }

    /// The app behind `return_to`, if it is an authorization request of a registered app with a
    /// registered redirect URI; `None` for any other local URL, an unknown app, or when the
    /// database cannot say (the page then offers no way back rather than an unchecked one).
    pub async fn of(state: &AppState, return_to: &str) -> Option<AppReturn> {
        let query = return_to
            .strip_prefix(paths::AUTHORIZE)?
            .strip_prefix('?')?;
        let params = Params::parse(query.as_bytes()).ok()?;
        let client = find_client(state.store.as_ref(), params.get("client_id")?)
            .await
            .ok()??;
        let redirect_uri = params.get("redirect_uri")?;
        match_redirect_uri(&client.redirect_uris, redirect_uri, !client.confidential)?;
        Some(AppReturn::new(
            &client.name,
            redirect_uri,
            params.get("state"),
        ))
    }

    /// The redirect that tells the app the request ended with `error` (RFC 6749 §4.1.2.1), with
    /// the app's `state` and TechPass's `iss` (RFC 9207 §2).
    pub fn error_url(&self, issuer: &str, error: ErrorCode, description: &str) -> Option<String> {
        let mut url = Url::parse(&self.redirect_uri).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("error", error.as_str());
            q.append_pair("error_description", description);
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", issuer);
        }
        Some(url.into())
    }

    /// The CSP source of the app's redirect URI (see [`form_action_source`]).
    pub fn form_action_source(&self) -> Option<String> {
        form_action_source(&self.redirect_uri)
    }
}

/// The CSP `form-action` source that admits redirects to `uri`: its origin for http(s), its
/// scheme for a native app's private-use scheme (RFC 8252 §7.1). Built from the parsed URL, so
/// it can carry no `;`, `,` or space into the policy.
pub fn form_action_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => {
            let scheme = url.scheme();
            (scheme.contains('.')
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')))
            .then(|| format!("{scheme}:"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_action_sources() {
        assert_eq!(
            form_action_source("https://app.example.gov.sg:8443/cb?x=1").as_deref(),
            Some("https://app.example.gov.sg:8443")
        );
        assert_eq!(
            form_action_source("http://127.0.0.1:5000/cb").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            form_action_source("sg.gov.tech.cli:/callback").as_deref(),
            Some("sg.gov.tech.cli:")
        );
        assert_eq!(form_action_source("not a url"), None);
        assert_eq!(form_action_source("data:text/html,x"), None);
    }

    #[test]
    fn the_error_url_carries_state_and_iss() {
        let back = AppReturn::new("Wiki", "https://wiki.example/cb?tenant=1", Some("s 1"));
        let url = back
            .error_url("https://id.example", ErrorCode::AccessDenied, "no_mfa")
            .unwrap();
        assert_eq!(
            url,
            "https://wiki.example/cb?tenant=1&error=access_denied&error_description=no_mfa&state=s+1&iss=https%3A%2F%2Fid.example"
        );
    }
}
