//! The outbound-URL policy: every request TechPass sends to a URL that someone registered
//! (back-channel logout, webhooks, and any later fetch such as a client's or a CI issuer's
//! JWKS) goes through [`Outbound`], so that a tenant admin cannot aim TechPass at its own host
//! or internal network (server-side request forgery; SECURITY.md 31).
//!
//! Outside development mode:
//! - only `https` URLs, without credentials;
//! - an IP-literal host must be public, and a DNS name is resolved by a resolver that drops
//!   every internal address, so the address actually connected to is the one checked (a name
//!   that resolves to 127.0.0.1, or is rebound to it after registration, is refused at connect
//!   time); `localhost` and `*.localhost` names are refused by name as well (RFC 6761 §6.3);
//! - internal means loopback, RFC 1918, link-local (169.254/16 with the cloud metadata
//!   service, fe80::/10), carrier-grade NAT 100.64/10, unique local fc00::/7, site-local,
//!   multicast, broadcast, unspecified, reserved, IPv4-mapped and IPv4-compatible IPv6, and
//!   NAT64/6to4 addresses that embed an internal IPv4 address.
//!
//! Always: no redirect is followed, no environment proxy is used (a proxy would resolve the
//! name itself, past the check), the whole exchange is bounded in time and the response body in
//! size. Development mode allows plain `http` and internal addresses so that a laptop's
//! loopback receivers work; the same checks stay testable by building a production policy.
//!
//! This module checks and sends; it does not decide who may register what.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

use crate::settings::Mode;

/// How long one outbound exchange (connect, send, read the answer) may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take, within [`TIMEOUT`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response body read; a larger one is an error (nothing TechPass calls needs more).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What outbound requests may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Plain `http` URLs are allowed (development only).
    pub allow_http: bool,
    /// Loopback and internal addresses may be reached (development only).
    pub allow_internal: bool,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

impl OutboundPolicy {
    /// The production policy: https to public addresses only.
    pub fn production() -> Self {
        OutboundPolicy {
            allow_http: false,
            allow_internal: false,
            timeout: TIMEOUT,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }

    /// The development policy: as production, but http and loopback receivers are allowed.
    pub fn development() -> Self {
        OutboundPolicy {
            allow_http: true,
            allow_internal: true,
            ..OutboundPolicy::production()
        }
    }

    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Development => OutboundPolicy::development(),
            Mode::Production => OutboundPolicy::production(),
        }
    }

    /// Whether `url` may be registered and called. DNS names are checked again, by address, when
    /// a request connects.
    pub fn check_url(&self, url: &str) -> Result<Url, OutboundError> {
        let parsed = Url::parse(url).map_err(|e| OutboundError::NotAUrl(e.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(OutboundError::NotHttps),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(OutboundError::Credentials);
        }
        if self.allow_internal {
            return Ok(parsed);
        }
        let internal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => is_localhost_name(d),
            None => true,
        };
        if internal {
            return Err(OutboundError::Internal(
                parsed.host_str().unwrap_or_default().to_string(),
            ));
        }
        Ok(parsed)
    }
}

/// `localhost` and its subdomains (RFC 6761 §6.3), with or without the final dot.
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Why an outbound URL is refused or a request failed. The texts complete "URL <url> …" in
/// registration errors, and are safe to show to the admin who registered the URL.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("is not a URL: {0}")]
    NotAUrl(String),
    #[error("must use https")]
    NotHttps,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must point to a public host; {0} is a loopback or internal address")]
    Internal(String),
    #[error("could not be reached: {0}")]
    Request(String),
    #[error("answered with more than {0} bytes")]
    TooLarge(usize),
}

impl From<reqwest::Error> for OutboundError {
    fn from(e: reqwest::Error) -> Self {
        // The source chain names the resolver's refusal ("only internal addresses").
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        OutboundError::Request(text)
    }
}

/// Whether an address is on the public internet as far as TechPass is concerned.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let internal = a == 0 // "this network", 0.0.0.0
        || a == 10 // RFC 1918
        || a == 127 // loopback
        || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT, 100.64.0.0/10 (RFC 6598)
        || (a == 169 && b == 254) // link-local, the cloud metadata service (RFC 3927)
        || (a == 172 && (b & 0xf0) == 16) // RFC 1918
        || (a == 192 && b == 168) // RFC 1918
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15 (RFC 2544)
        || a >= 224; // multicast 224/4, reserved 240/4, broadcast
    !internal
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.to_ipv4_mapped().is_some() || s[..6] == [0; 6] {
        // IPv4-mapped ::ffff:0:0/96 (reaches the IPv4 address behind it), IPv4-compatible
        // ::/96 with loopback ::1 and unspecified ::.
        return false;
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s[0] {
        // NAT64 (RFC 6052, RFC 8215): as public as the IPv4 address it carries.
        0x0064 if s[1] == 0xff9b => is_public_v4(embedded(s[6], s[7])),
        // 6to4 (RFC 3056): the IPv4 address in bits 16..48.
        0x2002 => is_public_v4(embedded(s[1], s[2])),
        // Teredo 2001::/32 tunnels to anything.
        0x2001 if s[1] == 0 => false,
        // Discard-only 100::/64.
        0x0100 if s[1..4] == [0, 0, 0] => false,
        first => {
            (first & 0xfe00) != 0xfc00 // unique local fc00::/7
                && (first & 0xffc0) != 0xfe80 // link-local fe80::/10
                && (first & 0xffc0) != 0xfec0 // site-local fec0::/10 (deprecated)
                && (first & 0xff00) != 0xff00 // multicast ff00::/8
        }
    }
}

/// Resolves with the system resolver (getaddrinfo, as reqwest does by default).
#[derive(Debug, Default)]
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Keeps only the public addresses another resolver returns; a name with none left fails to
/// resolve. reqwest connects only to what this returns, so the check holds at connect time.
struct PublicOnly {
    inner: Arc<dyn Resolve>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to loopback or internal addresses")]
struct OnlyInternal(String);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let resolving = self.inner.resolve(name);
        Box::pin(async move {
            let public: Vec<SocketAddr> = resolving.await?.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                tracing::warn!(%host, "outbound request refused: the name resolves only to internal addresses");
                return Err(
                    Box::new(OnlyInternal(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// An answer, its body read up to the policy's bound.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The HTTP client for registered URLs, with its policy. Not a `reqwest::Client` on purpose:
/// every request goes through [`Outbound::post`] or [`Outbound::get`], which check the URL
/// first (reqwest does not consult the resolver for an IP-literal host).
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: OutboundPolicy,
}

impl Outbound {
    /// A client on the system resolver.
    pub fn new(policy: OutboundPolicy) -> Result<Self, OutboundError> {
        Outbound::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// A client on the given resolver (tests give one that answers chosen addresses); outside
    /// development its answers are filtered like the system resolver's.
    pub fn with_resolver(
        policy: OutboundPolicy,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Self, OutboundError> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(policy.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(policy.timeout))
            .https_only(!policy.allow_http);
        let builder = if policy.allow_internal {
            builder.dns_resolver(Arc::new(Shared(resolver)))
        } else {
            builder.dns_resolver(Arc::new(PublicOnly { inner: resolver }))
        };
        let client = builder.build()?;
        Ok(Outbound { client, policy })
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// POSTs to `url` (checked against the policy), the request shaped by `build`.
    pub async fn post(
        &self,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply, OutboundError> {
        let url = self.policy.check_url(url)?;
        self.send(build(self.client.post(url))).await
    }

    /// GETs `url` (checked against the policy), the request shaped by `build`.
    pub async fn get(
        &self,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply, OutboundError> {
        let url = self.policy.check_url(url)?;
        self.send(build(self.client.get(url))).await
    }

    async fn send(&self, request: RequestBuilder) -> Result<Reply, OutboundError> {
        let mut response = request.send().await?;
        let status = response.status();
        let max = self.policy.max_response_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(OutboundError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > max {
                return Err(OutboundError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, body })
    }
}

/// An `Arc<dyn Resolve>` as a `Resolve` (reqwest wants a sized type).
struct Shared(Arc<dyn Resolve>);

impl Resolve for Shared {
    fn resolve(&self, name: Name) -> Resolving {
        self.0.resolve(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashMap;
    use std::str::FromStr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A resolver that answers from a table (and fails for other names).
    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolve for Table {
        fn resolve(&self, name: Name) -> Resolving {
            let found = self.0.get(name.as_str()).cloned();
            Box::pin(async move {
                let ips = found.ok_or("no such name")?;
                let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                Ok(addrs)
            })
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_are_classified() {
        let public = [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "169.253.1.1",
            "203.0.113.7",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ];
        for a in public {
            assert!(is_public(ip(a)), "{a} is public");
        }
        let internal = [
            "127.0.0.1",
            "127.255.0.1",
            "0.0.0.0",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:0001::1",
            "2001:0:4136:e378::1",
            "100::1",
        ];
        for a in internal {
            assert!(!is_public(ip(a)), "{a} is internal");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_host() {
        let production = OutboundPolicy::production();
        for ok in [
            "https://hooks.example.gov.sg/techpass",
            "https://203.0.113.7/hook",
            "https://[2606:4700::1111]/hook",
            "https://app.example.com:8443/backchannel?x=1",
        ] {
            assert!(production.check_url(ok).is_ok(), "{ok}");
        }
        let refused = [
            ("http://hooks.example.gov.sg/x", "https"),
            ("ftp://hooks.example.gov.sg/x", "https"),
            ("https://user:pw@hooks.example.gov.sg/x", "credentials"),
            ("https://127.0.0.1/x", "127.0.0.1"),
            ("https://2130706433/x", "127.0.0.1"),
            ("https://0x7f.1/x", "127.0.0.1"),
            ("https://10.0.0.5/x", "internal"),
            ("https://169.254.169.254/latest/meta-data", "internal"),
            ("https://100.64.0.1/x", "internal"),
            ("https://[::1]/x", "internal"),
            ("https://[::ffff:127.0.0.1]/x", "internal"),
            ("https://[::ffff:10.0.0.1]/x", "internal"),
            ("https://[fd00::1]/x", "internal"),
            ("https://[fe80::1]/x", "internal"),
            ("https://[ff02::1]/x", "internal"),
            ("https://0.0.0.0/x", "internal"),
            ("https://localhost/x", "internal"),
            ("https://LocalHost./x", "internal"),
            ("https://docker.localhost:2375/x", "internal"),
            ("not a url", "not a URL"),
        ];
        for (url, why) in refused {
            let e = production.check_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
        let development = OutboundPolicy::development();
        assert!(development.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(development.check_url("http://localhost:9000/hook").is_ok());
        assert!(development.check_url("ftp://127.0.0.1/").is_err());
        assert_eq!(
            OutboundPolicy::for_mode(Mode::Production),
            OutboundPolicy::production()
        );
    }

    fn table() -> Arc<dyn Resolve> {
        Arc::new(Table(HashMap::from([
            ("rebound.example", vec![ip("127.0.0.1")]),
            ("metadata.example", vec![ip("169.254.169.254")]),
            ("corp.example", vec![ip("10.0.0.5"), ip("fd00::5")]),
            ("mapped.example", vec![ip("::ffff:127.0.0.1")]),
            ("mixed.example", vec![ip("10.0.0.5"), ip("93.184.216.34")]),
            ("public.example", vec![ip("93.184.216.34")]),
        ])))
    }

    #[tokio::test]
    async fn names_are_checked_by_the_addresses_they_resolve_to() {
        let filter = PublicOnly { inner: table() };
        for name in [
            "rebound.example",
            "metadata.example",
            "corp.example",
            "mapped.example",
        ] {
            let e = filter
                .resolve(Name::from_str(name).unwrap())
                .await
                .err()
                .unwrap();
            assert!(e.to_string().contains("internal"), "{name}: {e}");
        }
        let mixed: Vec<SocketAddr> = filter
            .resolve(Name::from_str("mixed.example").unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(mixed, vec![SocketAddr::new(ip("93.184.216.34"), 0)]);
        // The real system resolver: localhost resolves to loopback, which is refused.
        let system = PublicOnly {
            inner: Arc::new(SystemResolver),
        };
        let e = system
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("internal"), "{e}");
    }

    /// A receiver on loopback that counts connections and answers `answer` to each.
    async fn receiver(answer: &'static str) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_connect_time() {
        let (port, connections) =
            receiver("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        // The production rules apart from https, so that a plain loopback receiver can stand in.
        let policy = OutboundPolicy {
            allow_http: true,
            ..OutboundPolicy::production()
        };
        let outbound = Outbound::with_resolver(policy, table()).unwrap();
        let url = format!("http://rebound.example:{port}/backchannel");
        assert!(policy.check_url(&url).is_ok(), "the name itself passes");
        let e = outbound.post(&url, |r| r.body("x")).await.unwrap_err();
        assert!(e.to_string().contains("internal"), "{e}");
        let e = outbound
            .post(&format!("http://127.0.0.1:{port}/"), |r| r)
            .await
            .unwrap_err();
        assert!(matches!(e, OutboundError::Internal(_)), "{e}");
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);

        // The same receiver under the development policy is reached.
        let dev = Outbound::with_resolver(OutboundPolicy::development(), table()).unwrap();
        let reply = dev.post(&url, |r| r.body("x")).await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_answers_are_bounded() {
        let dev = Outbound::new(OutboundPolicy {
            max_response_bytes: 16,
            ..OutboundPolicy::development()
        })
        .unwrap();
        let (port, connections) = receiver(
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        let reply = dev
            .post(&format!("http://127.0.0.1:{port}/"), |r| r)
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::FOUND);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);

        let (port, _) = receiver(
            "HTTP/1.1 200 OK\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{\"a\":\"0123456789\"}",
        )
        .await;
        let e = dev
            .get(&format!("http://127.0.0.1:{port}/"), |r| r)
            .await
            .unwrap_err();
        assert!(matches!(e, OutboundError::TooLarge(16)), "{e}");
        let (port, _) =
            receiver("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n0123456789abcdefghijkl").await;
        let e = dev
            .get(&format!("http://127.0.0.1:{port}/"), |r| r)
            .await
            .unwrap_err();
        assert!(matches!(e, OutboundError::TooLarge(16)), "{e}");
    }

    #[tokio::test]
    async fn a_slow_receiver_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let dev = Outbound::new(OutboundPolicy {
            timeout: Duration::from_millis(300),
            ..OutboundPolicy::development()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let e = dev
            .post(&format!("http://127.0.0.1:{port}/"), |r| r)
            .await
            .unwrap_err();
        assert!(matches!(e, OutboundError::Request(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

/// Properties of the outbound-URL policy over any address and any text (issue 15 item 10).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The ranges the policy must refuse (issue 15 item 2), written independently of
    /// `is_public_v4` as network/prefix pairs.
    fn must_refuse_v4(ip: u32) -> bool {
        [
            (0x0000_0000u32, 8u32), // this network
            (0x0a00_0000, 8),       // RFC 1918
            (0x7f00_0000, 8),       // loopback
            (0x6440_0000, 10),      // CGNAT
            (0xa9fe_0000, 16),      // link-local, cloud metadata
            (0xac10_0000, 12),      // RFC 1918
            (0xc0a8_0000, 16),      // RFC 1918
            (0xe000_0000, 4),       // multicast
            (0xf000_0000, 4),       // reserved, broadcast
        ]
        .iter()
        .any(|(net, bits)| ip >> (32 - bits) == net >> (32 - bits))
    }

    proptest! {
        /// Every IPv4 address in a refused range is refused, in every spelling a URL parser
        /// accepts (dotted, one decimal number, hex) and as IPv4-mapped IPv6.
        #[test]
        fn internal_addresses_are_refused_in_every_spelling(ip in any::<u32>()) {
            let policy = OutboundPolicy::production();
            let v4 = Ipv4Addr::from(ip);
            let spellings = [
                format!("https://{v4}/logout"),
                format!("https://{ip}/logout"),
                format!("https://0x{ip:x}/logout"),
                format!("https://[::ffff:{v4}]/logout"),
            ];
            for url in &spellings {
                let accepted = policy.check_url(url).is_ok();
                if must_refuse_v4(ip) {
                    prop_assert!(!accepted, "{} was accepted", url);
                }
                // IPv4-mapped IPv6 reaches the IPv4 host behind it: always refused.
                if url.contains("::ffff:") {
                    prop_assert!(!accepted, "{} was accepted", url);
                } else {
                    prop_assert_eq!(accepted, is_public(IpAddr::V4(v4)), "{}", url);
                }
            }
        }

        /// NAT64 and 6to4 addresses carry an IPv4 address and are as public as it is.
        #[test]
        fn embedded_ipv4_decides_for_nat64_and_6to4(ip in any::<u32>()) {
            let v4 = Ipv4Addr::from(ip);
            let [a, b, c, d] = v4.octets();
            let nat64: Ipv6Addr = format!("64:ff9b::{v4}").parse().unwrap();
            let six_to_four = Ipv6Addr::new(
                0x2002,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
                0, 0, 0, 0, 1,
            );
            prop_assert_eq!(is_public(IpAddr::V6(nat64)), is_public(IpAddr::V4(v4)));
            prop_assert_eq!(is_public(IpAddr::V6(six_to_four)), is_public(IpAddr::V4(v4)));
        }

        /// Any text: a URL or a reason, never a panic; an accepted production URL is https
        /// with no credentials.
        #[test]
        fn any_text_is_checked_without_panic(text in "\\PC{0,80}") {
            if let Ok(url) = OutboundPolicy::production().check_url(&text) {
                prop_assert_eq!(url.scheme(), "https");
                prop_assert!(url.username().is_empty() && url.password().is_none());
            }
            let _ = OutboundPolicy::development().check_url(&text);
        }
    }
}
