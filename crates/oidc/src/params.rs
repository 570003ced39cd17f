//! Request parameters: parsed once, refusing what RFC 6749 §3.1/§3.2 forbids. A parameter sent
//! more than once is an error, parameters without a value count as absent, unknown parameters are
//! ignored by the callers, and bytes that are not UTF-8 are refused rather than replaced.

use std::collections::HashMap;

use crate::error::OAuthError;

/// The most parameters one request may carry (known and unknown alike).
pub const MAX_PARAMS: usize = 64;
/// The longest parameter name.
pub const MAX_NAME_LEN: usize = 64;
/// The longest value of a parameter, in bytes after decoding: `state`, `nonce`, `scope`,
/// `redirect_uri`, codes, tokens... An app that needs a longer `state` keeps it on its side and
/// sends a reference.
pub const MAX_VALUE_LEN: usize = 2048;
/// The longest value of a parameter that carries a JWT (client assertions, ID token hints).
pub const MAX_JWT_LEN: usize = 16 * 1024;

/// The longest value accepted for the parameter `name`.
pub fn max_len(name: &str) -> usize {
    match name {
        "client_assertion" | "id_token_hint" | "assertion" | "logout_token" => MAX_JWT_LEN,
        _ => MAX_VALUE_LEN,
    }
}

/// The parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body),
    /// refusing repeated parameters and any beyond the bounds ([`Params::check_bounds`]).
    pub fn parse(bytes: &[u8]) -> Result<Params, OAuthError> {
        let (params, repeated) = Params::parse_keeping_first(bytes)?;
        if let Some(key) = repeated.first() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {key} was sent more than once"
            )));
        }
        params.check_bounds()?;
        Ok(params)
    }

    /// `invalid_request` when there are too many parameters, or a name or a value is too long
    /// ([`MAX_PARAMS`], [`MAX_NAME_LEN`], [`max_len`]). The description never repeats the value.
    pub fn check_bounds(&self) -> Result<(), OAuthError> {
        if self.0.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request(format!(
                "too many parameters (at most {MAX_PARAMS})"
            )));
        }
        if self.0.keys().any(|k| k.len() > MAX_NAME_LEN) {
            return Err(OAuthError::invalid_request(format!(
                "a parameter name is longer than {MAX_NAME_LEN} bytes"
            )));
        }
        let mut long: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, v)| v.len() > max_len(k))
            .map(|(k, _)| k.as_str())
            .collect();
        long.sort_unstable();
        match long.first() {
            Some(key) => Err(OAuthError::invalid_request(format!(
                "parameter {key} is longer than {} bytes",
                max_len(key)
            ))),
            None => Ok(()),
        }
    }

    /// Parses like [`Params::parse`], but a repeated parameter keeps its first value and is
    /// named in the second list instead of failing the whole parse. For the authorization
    /// endpoint, which must first learn whether it may redirect the error to the app (RFC 6749
    /// §4.1.2.1) before refusing the duplicate with `invalid_request`.
    pub fn parse_keeping_first(bytes: &[u8]) -> Result<(Params, Vec<String>), OAuthError> {
        let mut map = HashMap::new();
        let mut repeated = Vec::new();
        for (key, value) in form_urlencoded_pairs(bytes)? {
            if map.contains_key(&key) {
                if !repeated.contains(&key) {
                    repeated.push(key);
                }
                continue;
            }
            map.insert(key, value);
        }
        // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
        map.retain(|_, v| !v.is_empty());
        Ok((Params(map), repeated))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {key}")))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Every pair, for re-encoding (for example into a return URL).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn without(&self, key: &str) -> Params {
        let mut map = self.0.clone();
        map.remove(key);
        Params(map)
    }
}

fn form_urlencoded_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut pairs = Vec::new();
    for part in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        pairs.push((decode(k)?, decode(v)?));
    }
    Ok(pairs)
}

fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus_as_space)
        .ok_or_else(|| OAuthError::invalid_request("malformed percent-encoding"))?;
    if bytes.contains(&0) {
        // No OAuth parameter may hold a NUL (RFC 6749 Appendix A: visible characters and
        // spaces), and PostgreSQL cannot store one in text: refused here, once, for all.
        return Err(OAuthError::invalid_request(
            "parameters must not contain a NUL character",
        ));
    }
    String::from_utf8(bytes).map_err(|_| OAuthError::invalid_request("parameters must be UTF-8"))
}

fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            // Two hex digits, nothing else (`from_str_radix` alone would also take a sign).
            let hex = input
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_nul_anywhere_is_invalid_request() {
        for form in ["client_id=app_%00x", "client%00_id=x", "state=a\0b"] {
            let e = Params::parse(form.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{form}");
            assert!(e.description.contains("NUL"), "{form}: {}", e.description);
        }
    }

    #[test]
    fn bounds_are_enforced_without_echoing_values() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let e = Params::parse(format!("a=1&state={long}").as_bytes()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("state"), "{}", e.description);
        assert!(!e.description.contains("xxxx"));
        let fits = "x".repeat(MAX_VALUE_LEN);
        assert!(Params::parse(format!("state={fits}").as_bytes()).is_ok());
        let jwt = "e".repeat(MAX_VALUE_LEN * 4);
        assert!(Params::parse(format!("client_assertion={jwt}").as_bytes()).is_ok());
        let too_long_jwt = "e".repeat(MAX_JWT_LEN + 1);
        assert!(Params::parse(format!("id_token_hint={too_long_jwt}").as_bytes()).is_err());
        let name = "n".repeat(MAX_NAME_LEN + 1);
        let e = Params::parse(format!("{name}=1").as_bytes()).unwrap_err();
        assert!(!e.description.contains(&name));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert!(Params::parse(many.join("&").as_bytes()).is_err());
        // The authorization endpoint parses first and checks once it knows the app.
        let (kept, _) = Params::parse_keeping_first(format!("state={long}").as_bytes()).unwrap();
        assert!(kept.check_bounds().is_err());
    }

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(b"a=1&b=x+y%2Fz&empty=&flag&c=%C3%A9").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x y/z"));
        assert_eq!(p.get("c"), Some("é"));
        assert_eq!(p.get("empty"), None, "empty values count as omitted");
        assert_eq!(p.get("flag"), None);
    }

    #[test]
    fn refuses_duplicates_bad_encoding_and_non_utf8() {
        for bad in [&b"a=1&a=2"[..], b"a=%zz", b"a=%4", b"a=%ff%fe", b"a=\xff"] {
            let err = Params::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{bad:?}");
        }
        assert!(Params::parse(b"scope=a&scope=b")
            .unwrap_err()
            .description
            .contains("scope"));
    }

    #[test]
    fn keeping_first_names_the_repeated_parameters() {
        let (p, repeated) = Params::parse_keeping_first(b"state=a&x=1&state=b&state=c").unwrap();
        assert_eq!(p.get("state"), Some("a"));
        assert_eq!(p.get("x"), Some("1"));
        assert_eq!(repeated, vec!["state".to_string()]);
        let (_, none) = Params::parse_keeping_first(b"a=1&b=2").unwrap();
        assert!(none.is_empty());
        assert!(Params::parse_keeping_first(b"a=%zz").is_err());
    }

    #[test]
    fn require_names_the_parameter() {
        let err = Params::parse(b"").unwrap().require("code").unwrap_err();
        assert_eq!(err.description, "missing parameter code");
    }
}

/// Properties over any input (issue 15 item 10). `PROPTEST_CASES` raises the case count for a
/// long run (README, "Property tests").
#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any bytes get an answer, never a panic, and whatever is accepted is within bounds.
        #[test]
        fn any_bytes_are_parsed_or_refused(bytes in vec(any::<u8>(), 0..4096)) {
            if let Ok(params) = Params::parse(&bytes) {
                prop_assert!(params.0.len() <= MAX_PARAMS);
                for (name, value) in params.iter() {
                    prop_assert!(name.len() <= MAX_NAME_LEN);
                    prop_assert!(!value.is_empty() && value.len() <= max_len(name));
                    prop_assert!(!name.contains('\0') && !value.contains('\0'));
                }
            }
            let _ = Params::parse_keeping_first(&bytes);
        }

        /// Differential against the WHATWG form decoder of the `url` crate: whatever we accept,
        /// it reads the same way (it never refuses, so only our accepted inputs are compared).
        #[test]
        fn accepted_input_reads_as_the_url_crate_reads_it(text in "[a-zA-Z0-9=&%+ ._~-]{0,120}") {
            if let Ok(params) = Params::parse(text.as_bytes()) {
                let theirs: BTreeMap<String, String> = url::form_urlencoded::parse(text.as_bytes())
                    .into_owned()
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let ours: BTreeMap<String, String> =
                    params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                prop_assert_eq!(ours, theirs);
            }
        }

        /// Pairs encoded by a standard encoder come back unchanged.
        #[test]
        fn encoded_pairs_round_trip(pairs in btree_map("\\PC{1,16}", "\\PC{1,200}", 0..20)) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let params = Params::parse(body.as_bytes()).unwrap();
            let ours: BTreeMap<String, String> =
                params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(ours, pairs);
        }
    }

    /// Found by the differential property: `u8::from_str_radix` takes a sign, so `%+1` used to
    /// decode to byte 1 where every other decoder keeps it as text or refuses it.
    #[test]
    fn a_percent_escape_is_two_hex_digits() {
        for bad in [&b"a=%+1"[..], b"a=%-1", b"a=% 1", b"a=%1"] {
            assert!(
                Params::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(Params::parse(b"a=%41").unwrap().get("a"), Some("A"));
    }
}
