//! Relying parties' redirect URIs: what may be registered and how a requested one is matched.
//!
//! Matching is exact string comparison (RFC 9700 §2.1, RFC 3986 §6.2.1), with one exception:
//! a native (public) app's loopback redirect (`http://127.0.0.1`, `http://[::1]`) may use any
//! port (RFC 8252 §7.3), because the port is chosen when the app starts. Everything but the port
//! is still compared as a string.

use url::Url;

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("is not an absolute URL")]
    NotAbsolute,
    #[error("must not contain a fragment (RFC 6749 §3.1.2)")]
    Fragment,
    #[error(
        "must use https (plain http only on localhost, 127.0.0.1 or [::1]; a native app may use its own scheme with a dot, such as com.example.app:/callback)"
    )]
    NotHttps,
    #[error("must not contain user information")]
    UserInfo,
    #[error(
        "must not contain a wildcard (*): wildcards are not supported, redirect URIs are compared exactly, so register each address in full"
    )]
    Wildcard,
}

fn loopback_ip(url: &Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

/// Checks a URI an app wants to register (RFC 6749 §3.1.2, RFC 9700 §2.6). Private-use schemes
/// of native apps (`com.example.app:/callback`) are allowed.
pub fn validate_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    // `*` is a legal URL character, but here it only ever means a hoped-for pattern.
    if uri.contains('*') || uri.contains("%2A") || uri.contains("%2a") {
        return Err(RedirectUriError::Wildcard);
    }
    let url = Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute)?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectUriError::UserInfo);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback_ip(&url) || url.host_str() == Some("localhost") => Ok(()),
        "http" | "javascript" | "data" | "file" => Err(RedirectUriError::NotHttps),
        // A native app's private-use scheme must contain a dot (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(RedirectUriError::NotHttps),
    }
}

/// The registered URI that `requested` matches, if any. Only a `native` (public) app gets the
/// any-port loopback exception of RFC 8252 §7.3; a confidential web app's loopback URI is
/// matched exactly like any other.
pub fn match_redirect_uri<'a>(
    registered: &'a [String],
    requested: &str,
    native: bool,
) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Some(exact);
    }
    if !native {
        return None;
    }
    let requested = without_loopback_port(requested)?;
    registered
        .iter()
        .map(String::as_str)
        .find(|r| without_loopback_port(r).as_deref() == Some(requested.as_str()))
}

/// `uri` with the port of a literal loopback host removed (`http://127.0.0.1:8400/cb` →
/// `http://127.0.0.1/cb`), or `None` when `uri` is not an `http` loopback address. The rest of
/// the string is left as it is, so the comparison stays a string comparison.
fn without_loopback_port(uri: &str) -> Option<String> {
    ["http://127.0.0.1", "http://[::1]"]
        .iter()
        .find_map(|host| {
            let rest = uri.strip_prefix(host)?;
            let rest = match rest.strip_prefix(':') {
                Some(port) => {
                    let digits = port.chars().take_while(char::is_ascii_digit).count();
                    // A port a browser can reach (found by the property tests: `:99999`).
                    port[..digits].parse::<u16>().ok()?;
                    &port[digits..]
                }
                None => rest,
            };
            (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
                .then(|| format!("{host}{rest}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(validate_redirect_uri("https://app.example.gov.sg/callback").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1/callback").is_ok());
        assert!(validate_redirect_uri("http://[::1]:8400/cb").is_ok());
        assert!(validate_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(validate_redirect_uri("sg.gov.tech.cli:/callback").is_ok());
        assert_eq!(
            validate_redirect_uri("/relative"),
            Err(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            validate_redirect_uri("https://a.example/cb#x"),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(
            validate_redirect_uri("http://app.example/cb"),
            Err(RedirectUriError::NotHttps)
        );
        assert_eq!(
            validate_redirect_uri("javascript:alert(1)"),
            Err(RedirectUriError::NotHttps)
        );
        assert_eq!(
            validate_redirect_uri("https://u:p@a.example/"),
            Err(RedirectUriError::UserInfo)
        );
        for wildcard in [
            "https://*.example.com/cb",
            "https://app.example.com/cb*",
            "https://app.example.com/*/cb",
            "https://app.example.com/cb%2A",
        ] {
            assert_eq!(
                validate_redirect_uri(wildcard),
                Err(RedirectUriError::Wildcard),
                "{wildcard}"
            );
        }
        let wildcard = RedirectUriError::Wildcard.to_string();
        assert!(
            wildcard.contains("wildcards are not supported"),
            "{wildcard}"
        );
        assert!(wildcard.contains("compared exactly"), "{wildcard}");
        assert!(RedirectUriError::NotHttps
            .to_string()
            .contains("must use https"));
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let registered = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(match_redirect_uri(&registered, "https://app.example/cb", true).is_some());
        for miss in [
            "https://app.example/cb/",
            "https://app.example/CB",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example.evil/cb",
            "http://app.example/cb",
            "http://127.0.0.1:8080/other",
            "http://localhost:8080/native",
        ] {
            assert!(
                match_redirect_uri(&registered, miss, true).is_none(),
                "{miss}"
            );
        }
        assert_eq!(
            match_redirect_uri(&registered, "http://127.0.0.1:51234/native", true),
            Some("http://127.0.0.1/native")
        );
    }

    #[test]
    fn the_loopback_port_exception_is_for_native_apps_only() {
        let registered = vec!["http://127.0.0.1:8080/cb".to_string()];
        assert!(match_redirect_uri(&registered, "http://127.0.0.1:8080/cb", false).is_some());
        assert!(match_redirect_uri(&registered, "http://127.0.0.1:9090/cb", false).is_none());
        assert_eq!(
            match_redirect_uri(&registered, "http://127.0.0.1:9090/cb", true),
            Some("http://127.0.0.1:8080/cb")
        );
        let v6 = vec!["http://[::1]/cb?app=1".to_string()];
        assert!(match_redirect_uri(&v6, "http://[::1]:5000/cb?app=1", true).is_some());
    }

    #[test]
    fn beyond_the_port_the_loopback_string_is_compared_exactly() {
        let registered = vec!["http://127.0.0.1/native".to_string()];
        for miss in [
            // Each would normalise to the registered URL if parsed; a string comparison refuses.
            "http://127.0.0.1:5000/native/../native",
            "http://127.0.0.1:5000/./native",
            "http://127.0.0.1:5000/%6eative",
            "http://127.0.0.1:5000/native?",
            "http://127.0.0.1:5000/native#",
            "http://127.0.0.1:/native",
            "http://127.0.0.1:123456/native",
            "http://127.0.0.2:5000/native",
            "http://127.0.0.1:5000@evil.example/native",
            "http://localhost:5000/native",
            "https://127.0.0.1:5000/native",
        ] {
            assert!(
                match_redirect_uri(&registered, miss, true).is_none(),
                "{miss}"
            );
        }
    }
}

/// Properties over any input (issue 15 item 10).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;

    /// A redirect URI from parts, so the expected match is known by construction.
    #[derive(Debug, Clone, PartialEq)]
    struct Parts {
        scheme: &'static str,
        host: &'static str,
        port: Option<u16>,
        path: &'static str,
        query: &'static str,
    }

    impl Parts {
        fn uri(&self) -> String {
            let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}{}{}",
                self.scheme, self.host, self.path, self.query
            )
        }

        fn loopback_literal(&self) -> bool {
            self.scheme == "http" && matches!(self.host, "127.0.0.1" | "[::1]")
        }
    }

    fn parts() -> impl Strategy<Value = Parts> {
        (
            select(vec!["http", "https"]),
            select(vec![
                "127.0.0.1",
                "[::1]",
                "localhost",
                "app.example",
                "127.0.0.2",
            ]),
            proptest::option::of(select(vec![80u16, 443, 8080, 8400, 65535])),
            select(vec!["", "/", "/cb", "/cb/", "/CB", "/cb/../cb"]),
            select(vec!["", "?a=1", "?a=2"]),
        )
            .prop_map(|(scheme, host, port, path, query)| Parts {
                scheme,
                host,
                port,
                path,
                query,
            })
    }

    proptest! {
        /// A match is exactly the registered string, or (a native app only) the same loopback
        /// URI with another port; nothing else, whatever the mix of registered URIs.
        #[test]
        fn a_match_is_byte_equal_apart_from_a_native_loopback_port(
            registered in proptest::collection::vec(parts(), 1..4),
            requested in parts(),
            native in any::<bool>(),
        ) {
            let uris: Vec<String> = registered.iter().map(Parts::uri).collect();
            let found = match_redirect_uri(&uris, &requested.uri(), native);
            let exact = uris.contains(&requested.uri());
            let port_only = native && requested.loopback_literal() && registered.iter().any(|r| {
                Parts { port: requested.port, ..r.clone() } == requested
            });
            prop_assert_eq!(found.is_some(), exact || port_only, "{:?}", found);
            if let Some(found) = found {
                prop_assert!(uris.iter().any(|u| u == found));
                if found != requested.uri() {
                    prop_assert!(native);
                }
            }
        }

        /// Any string: an answer, never a panic; for a confidential app a match is byte-equal.
        #[test]
        fn any_string_is_matched_exactly_or_not_at_all(
            registered in proptest::collection::vec("\\PC{0,40}", 0..4),
            requested in "\\PC{0,40}",
            native in any::<bool>(),
        ) {
            let _ = validate_redirect_uri(&requested);
            match match_redirect_uri(&registered, &requested, native) {
                Some(found) if !native => prop_assert_eq!(found, requested.as_str()),
                Some(found) => prop_assert!(registered.iter().any(|r| r == found)),
                None => prop_assert!(!registered.contains(&requested)),
            }
        }

        /// A registered loopback URI never matches a requested one whose authority only begins
        /// like it (`http://127.0.0.1:80@evil.example/`, `http://127.0.0.1.evil.example/`).
        #[test]
        fn a_loopback_prefix_does_not_smuggle_another_host(
            suffix in "[@.a-z0-9:]{1,20}",
            port in proptest::option::of(any::<u16>()),
        ) {
            let registered = vec!["http://127.0.0.1/cb".to_string()];
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let requested = format!("http://127.0.0.1{port}{suffix}/cb");
            if let Some(found) = match_redirect_uri(&registered, &requested, true) {
                let url = Url::parse(&requested);
                prop_assert!(url.is_ok(), "{} matched {} but is no URL", requested, found);
                let host = url.ok().and_then(|u| u.host_str().map(String::from));
                prop_assert_eq!(host.as_deref(), Some("127.0.0.1"), "{} matched {}", requested, found);
            }
        }
    }
}

/// Who may sign in to an app (issue 13 item 3). A vendor must in every case be a member of the
/// app's tenant (invited by it); the policy decides who else.
///
/// The default is the policy of a platform app, registered by an operator from the command line
/// (first-party: every registered officer, no consent asked). A tenant's app states its policy;
/// the portal, the API and the CLI default to [`AccessPolicy::Assigned`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Only people assigned to the app, directly or through one of the tenant's groups.
    Assigned,
    /// The tenant's members: its admins, people in its groups, vendors it invited.
    Members,
    /// Every registered officer; one with no relationship to the tenant consents once.
    #[default]
    Officers,
}

impl AccessPolicy {
    pub const ALL: [AccessPolicy; 3] = [
        AccessPolicy::Assigned,
        AccessPolicy::Members,
        AccessPolicy::Officers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessPolicy::Assigned => "assigned",
            AccessPolicy::Members => "members",
            AccessPolicy::Officers => "officers",
        }
    }

    pub fn parse(text: &str) -> Option<AccessPolicy> {
        AccessPolicy::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// For the portal: who may sign in, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            AccessPolicy::Assigned => "Assigned people and groups",
            AccessPolicy::Members => "Members of this tenant",
            AccessPolicy::Officers => "All registered officers (with their consent)",
        }
    }
}
