//! The client's address, for rate limits, the WebSocket cap and the audit log: the TCP peer,
//! unless the peer is one of our own proxies (`PUSHHAND_TRUSTED_PROXIES`), in which case
//! the rightmost `X-Forwarded-For` hop that is not a trusted proxy.
//!
//! Only trusted proxies are believed: a client talking to us directly could write any
//! `X-Forwarded-For` it likes, and a proxy appends the address it saw to what the client
//! sent, so the hops left of the last trusted one are the client's own claims. Walking from
//! the right and stopping at the first untrusted hop gives the address the outermost trusted
//! proxy saw.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// One trusted network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `bits`-bit address.
fn masked(value: u128, bits: u32, prefix: u8) -> u128 {
    let drop = bits - u32::from(prefix);
    value.checked_shr(drop).unwrap_or(0)
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 192.168.1.7, ::1` (empty: none).
    ///
    /// # Errors
    ///
    /// The first entry that is not an IP address or a CIDR.
    pub fn parse(list: &str) -> anyhow::Result<TrustedProxies> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Cidr::parse(s).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer.ip());
        if !self.trusts(client) {
            return client;
        }
        // Every X-Forwarded-For header, in order, as one list; walked from the right.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from a trusted hop: the last address we can vouch for stands.
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("header value"));
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40_000)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::parse("").expect("parses");
        assert_eq!(
            none.client(peer("10.0.0.1"), &headers(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_an_address() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("parses");
        assert_eq!(
            proxies.client(peer("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7,::1").expect("parses");
        // The client spoofs 6.6.6.6; the edge proxy (10.1.1.1) appended what it saw.
        assert_eq!(
            proxies.client(
                peer("10.0.0.2"),
                &headers(&["6.6.6.6, 198.51.100.4", "10.1.1.1"])
            ),
            ip("198.51.100.4")
        );
        assert_eq!(
            proxies.client(peer("192.168.1.7"), &headers(&["[2001:db8::5]:443"])),
            ip("2001:db8::5")
        );
        assert_eq!(
            proxies.client(peer("::ffff:10.0.0.3"), &headers(&["198.51.100.4:1234"])),
            ip("198.51.100.4")
        );
        // No header, or only trusted hops: the leftmost address known.
        assert_eq!(proxies.client(peer("::1"), &headers(&[])), ip("::1"));
        assert_eq!(
            proxies.client(peer("::1"), &headers(&["10.9.9.9, 10.0.0.5"])),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last hop vouched for.
        assert_eq!(
            proxies.client(peer("10.0.0.2"), &headers(&["1.2.3.4, nonsense"])),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.1/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        let all = TrustedProxies::parse("0.0.0.0/0").expect("parses");
        assert!(all.trusts(ip("203.0.113.1")));
        assert!(!all.trusts(ip("2001:db8::1")));
    }
}
