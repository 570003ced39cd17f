//! Relying parties' redirect URIs: what may be registered and how a requested one is matched.
//!
//! Matching is exact string comparison (RFC 9700 §2.1, RFC 3986 §6.2.1), with one exception:
//! a native app's loopback redirect (`http://127.0.0.1`, `http://[::1]`) may use any port
//! (RFC 8252 §7.3), because the port is chosen when the app starts.

use url::Url;

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("is not an absolute URL")]
    NotAbsolute,
    #[error("must not contain a fragment (RFC 6749 §3.1.2)")]
    Fragment,
    #[error("must use https (plain http only on a loopback address)")]
    NotHttps,
    #[error("must not contain user information")]
    UserInfo,
}

fn loopback_ip(url: &Url) -> bool {
    matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

/// Checks a URI an app wants to register (RFC 6749 §3.1.2, RFC 9700 §2.6). Private-use schemes
/// of native apps (`com.example.app:/callback`) are allowed.
pub fn validate_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
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

/// The registered URI that `requested` matches, if any.
pub fn match_redirect_uri<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Some(exact);
    }
    let requested_url = Url::parse(requested).ok()?;
    if requested_url.scheme() != "http" || !loopback_ip(&requested_url) {
        return None;
    }
    registered.iter().map(String::as_str).find(|r| {
        Url::parse(r).is_ok_and(|reg| {
            reg.scheme() == "http"
                && loopback_ip(&reg)
                && reg.host() == requested_url.host()
                && reg.path() == requested_url.path()
                && reg.query() == requested_url.query()
                && requested_url.fragment().is_none()
        })
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
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let registered = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(match_redirect_uri(&registered, "https://app.example/cb").is_some());
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
            assert!(match_redirect_uri(&registered, miss).is_none(), "{miss}");
        }
        assert_eq!(
            match_redirect_uri(&registered, "http://127.0.0.1:51234/native"),
            Some("http://127.0.0.1/native")
        );
    }
}
