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
    #[error("must use https (plain http only on a loopback address)")]
    NotHttps,
    #[error("must not contain user information")]
    UserInfo,
    #[error(
        "must not contain a wildcard (*): every address is matched exactly, so register each one"
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
                    if digits == 0 || digits > 5 {
                        return None;
                    }
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
        assert!(RedirectUriError::Wildcard.to_string().contains("wildcard"));
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
