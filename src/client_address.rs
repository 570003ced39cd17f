//! The client's address, as rate limits see it: the connection's peer, unless the peer is one of
//! the configured trusted proxies (`http.trusted_proxies`), in which case the forwarding header
//! it sets (`http.forwarded_header`: `X-Forwarded-For` or RFC 7239 `Forwarded`) is read from the
//! right: the first address that is not itself a trusted proxy is the client. A header from any
//! other peer is never read, so a client cannot choose its own address (RFC 9700 §4.13:
//! forwarding headers are honoured only from the proxy that sets them).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;

/// The header the trusted proxies set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
}

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR block");
        let (ip, prefix) = match text.trim().split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = ip.parse().map_err(|_| bad())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// How to find the client's address.
#[derive(Debug, Clone)]
pub struct ClientAddresses {
    trusted: Vec<Cidr>,
    header: ForwardedHeader,
}

impl ClientAddresses {
    pub fn new(trusted: &[String], header: ForwardedHeader) -> Result<Self, String> {
        let trusted = trusted
            .iter()
            .map(|t| Cidr::parse(t))
            .collect::<Result<_, _>>()?;
        Ok(ClientAddresses { trusted, header })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                // Anything unreadable ends the chain of trust: keep the last trusted hop.
                None => return client,
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.is_trusted(client) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

/// Every `X-Forwarded-For` value, left to right (`None` for one that is not an address).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(node).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` of every element of every `Forwarded` header (RFC 7239 §4), left to right.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(text) => text
                .split(',')
                .map(|element| {
                    element.split(';').find_map(|pair| {
                        let (name, value) = pair.trim().split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| node(value.trim().trim_matches('"')))
                            .flatten()
                    })
                })
                .collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// A node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse().ok())
}

/// The client's address of a request, set by [`middleware`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Middleware: works out the client's address once and puts it in the request's extensions.
/// Without a connection (in-process `oneshot` tests) it is the unspecified address.
pub async fn middleware(
    State(addresses): State<Arc<ClientAddresses>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let address = match peer {
        Some(peer) => addresses.resolve(peer, request.headers()),
        None => IpAddr::from([0, 0, 0, 0]),
    };
    request.extensions_mut().insert(ClientAddress(address));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    type Pairs = &'static [(&'static str, &'static str)];

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped peers");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "::/129", "proxy", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_are_read_only_from_trusted_proxies() {
        let xff = ClientAddresses::new(
            &["10.0.0.0/8".into(), "127.0.0.1".into()],
            ForwardedHeader::XForwardedFor,
        )
        .unwrap();
        let proxy = ip("10.0.0.2");
        let table: &[(IpAddr, Pairs, &str)] = &[
            // An untrusted peer's header is ignored.
            (
                ip("198.51.100.1"),
                &[("x-forwarded-for", "203.0.113.9")],
                "198.51.100.1",
            ),
            // A trusted proxy's: the rightmost untrusted address.
            (proxy, &[("x-forwarded-for", "203.0.113.9")], "203.0.113.9"),
            (
                proxy,
                &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")],
                "203.0.113.9",
            ),
            (
                proxy,
                &[
                    ("x-forwarded-for", "1.1.1.1"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "203.0.113.9",
            ),
            (
                proxy,
                &[("x-forwarded-for", "[2001:db8::9]:4711")],
                "2001:db8::9",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.9:4711")],
                "203.0.113.9",
            ),
            // No header, only proxies, or garbage: the nearest trusted hop.
            (proxy, &[], "10.0.0.2"),
            (proxy, &[("x-forwarded-for", "10.0.0.9")], "10.0.0.9"),
            (
                proxy,
                &[("x-forwarded-for", "1.1.1.1, garbage")],
                "10.0.0.2",
            ),
            // The other header is not read.
            (proxy, &[("forwarded", "for=203.0.113.9")], "10.0.0.2"),
        ];
        for (peer, pairs, expected) in table {
            assert_eq!(
                xff.resolve(*peer, &headers(pairs)),
                ip(expected),
                "{pairs:?}"
            );
        }
        let rfc7239 =
            ClientAddresses::new(&["10.0.0.0/8".into()], ForwardedHeader::Forwarded).unwrap();
        let table: &[(Pairs, &str)] = &[
            (
                &[("forwarded", "for=203.0.113.9;proto=https")],
                "203.0.113.9",
            ),
            (
                &[("forwarded", "For=\"[2001:db8:cafe::17]:4711\"")],
                "2001:db8:cafe::17",
            ),
            (
                &[("forwarded", "for=1.1.1.1, for=203.0.113.9;by=10.0.0.2")],
                "203.0.113.9",
            ),
            (&[("forwarded", "for=unknown")], "10.0.0.2"),
            (&[("x-forwarded-for", "203.0.113.9")], "10.0.0.2"),
        ];
        for (pairs, expected) in table {
            assert_eq!(
                rfc7239.resolve(proxy, &headers(pairs)),
                ip(expected),
                "{pairs:?}"
            );
        }
        let none = ClientAddresses::new(&[], ForwardedHeader::XForwardedFor).unwrap();
        assert_eq!(
            none.resolve(
                ip("127.0.0.1"),
                &headers(&[("x-forwarded-for", "203.0.113.9")])
            ),
            ip("127.0.0.1")
        );
    }
}
