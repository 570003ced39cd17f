//! Request parameters, parsed by hand so that a bad request gets an Azure-shaped answer rather
//! than a framework rejection, and so that repeated parameters are refused (RFC 6749 §3.1, §3.2).

use axum::http::{header, HeaderMap};

/// `application/x-www-form-urlencoded` pairs from a query string or a request body.
#[derive(Debug)]
pub(super) struct Params(Vec<(String, String)>);

/// A parameter that was sent more than once.
#[derive(Debug)]
pub(super) struct Repeated(pub(super) &'static str);

impl Params {
    pub(super) fn parse(input: &[u8]) -> Self {
        Params(
            url::form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The value of `name`. RFC 6749 §3.1: a parameter sent without a value is treated as
    /// omitted, and none may be sent more than once.
    pub(super) fn get(&self, name: &'static str) -> Result<Option<&str>, Repeated> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(Repeated(name)),
            (Some(""), None) | (None, _) => Ok(None),
            (Some(value), None) => Ok(Some(value)),
        }
    }
}

/// Whether the body is declared as `application/x-www-form-urlencoded` (RFC 6749 §4.1.3).
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Decodes one `application/x-www-form-urlencoded` component: RFC 6749 §2.3.1 encodes the client
/// id and secret this way before joining them for HTTP Basic.
pub(super) fn form_decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push((hex(h) << 4) | hex(l));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}
