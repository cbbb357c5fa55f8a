//! Framed-Route (RFC 2865 §5.22) and Framed-IPv6-Route (RFC 3162 §2.5):
//! a network behind the user (a branch router dialing in) that the NAS
//! routes over the user's session.
//!
//! The value is text: a destination, then optionally a gateway and
//! metrics, separated by spaces. The forms accepted are those RFC 2865 and
//! RFC 3162 give and those FreeRADIUS and NPS users write:
//!
//! ```text
//! 10.9.0.0/24 0.0.0.0 1            RFC 2865: prefix/length, gateway, metrics
//! 10.9.0.0 255.255.255.0 0.0.0.0 1 a netmask instead of the length
//! 10.9.0.0/24                      the destination alone
//! 10.9.0.7                         one host (/32)
//! 2001:db8:9::/48 :: 1             RFC 3162
//! ```
//!
//! A gateway of 0.0.0.0 (or `::`) means "the user's own address" (RFC 2865
//! §5.22). Over a point-to-point session the user is the only next hop
//! there is, so any gateway routes over the session; it is kept only to be
//! shown. Metrics are read and kept (the first one), never used to choose.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most metrics read after the gateway; more is not a route.
const MAX_TOKENS: usize = 8;

/// One route the Access-Accept gave for the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FramedRoute {
    /// The network (host bits zero).
    pub prefix: IpAddr,
    /// Its length in bits.
    pub len: u8,
    /// The gateway, when given and not 0.0.0.0 / `::` (the user itself).
    pub gateway: Option<IpAddr>,
    /// The first metric, when given.
    pub metric: Option<u32>,
}

impl FramedRoute {
    /// Whether `addr` lies inside this route's network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.prefix, addr) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = v4_mask(self.len);
                u32::from(a) & mask == u32::from(p)
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = v6_mask(self.len);
                u128::from(a) & mask == u128::from(p)
            }
            _ => false,
        }
    }
}

/// The network as `prefix/len`, as `ip route` writes it.
impl fmt::Display for FramedRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.prefix, self.len)
    }
}

/// Why a Framed-Route value was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramedRouteError {
    /// Not UTF-8 text.
    #[error("not text")]
    NotText,
    /// Nothing but spaces.
    #[error("empty")]
    Empty,
    /// Too many words.
    #[error("more than {MAX_TOKENS} words")]
    TooLong,
    /// The first word is not an address.
    #[error("the destination is not an address")]
    BadDestination,
    /// The length after the slash is out of range (the family's maximum).
    #[error("the prefix length is not a number from 0 to {0}")]
    BadLength(u8),
    /// A netmask with holes.
    #[error("the netmask is not contiguous")]
    BadNetmask,
    /// Bits set past the length.
    #[error("the destination has bits set beyond its prefix length")]
    HostBits,
    /// The gateway is not an address of the family.
    #[error("the gateway is not an address of the same family")]
    BadGateway,
    /// A metric is not a number.
    #[error("a metric is not a number")]
    BadMetric,
    /// A prefix length of 0.
    #[error("a default route through a client is refused")]
    Default,
    /// Multicast, loopback or reserved.
    #[error("not a unicast network")]
    NotUnicast,
    /// The other family than the attribute's.
    #[error("an IPv6 route in Framed-Route, or an IPv4 route in Framed-IPv6-Route")]
    WrongFamily,
}

/// Framed-Route (RFC 2865 §5.22): an IPv4 route.
pub fn parse_framed_route(value: &[u8]) -> Result<FramedRoute, FramedRouteError> {
    let r = parse(value)?;
    if !r.prefix.is_ipv4() {
        return Err(FramedRouteError::WrongFamily);
    }
    Ok(r)
}

/// Framed-IPv6-Route (RFC 3162 §2.5): an IPv6 route.
pub fn parse_framed_ipv6_route(value: &[u8]) -> Result<FramedRoute, FramedRouteError> {
    let r = parse(value)?;
    if !r.prefix.is_ipv6() {
        return Err(FramedRouteError::WrongFamily);
    }
    Ok(r)
}

fn parse(value: &[u8]) -> Result<FramedRoute, FramedRouteError> {
    let text = std::str::from_utf8(value).map_err(|_| FramedRouteError::NotText)?;
    // FreeRADIUS users sometimes leave the quotes' content padded, and
    // some servers end text with a NUL.
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let mut words = text.split_ascii_whitespace();
    let first = words.next().ok_or(FramedRouteError::Empty)?;
    let rest: Vec<&str> = words.by_ref().take(MAX_TOKENS).collect();
    if words.next().is_some() {
        return Err(FramedRouteError::TooLong);
    }
    let (addr, given_len) = match first.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (first, None),
    };
    let prefix: IpAddr = addr.parse().map_err(|_| FramedRouteError::BadDestination)?;
    let max = if prefix.is_ipv4() { 32 } else { 128 };
    let mut rest = rest.as_slice();
    let len = match given_len {
        Some(l) => {
            let n: u8 = l.parse().map_err(|_| FramedRouteError::BadLength(max))?;
            if n > max {
                return Err(FramedRouteError::BadLength(max));
            }
            n
        }
        // "10.9.0.0 255.255.255.0 …": a contiguous netmask after an IPv4
        // destination is its length (the form of the classic route
        // command). 0.0.0.0 there is the gateway, not a mask.
        None => match (prefix, rest.first().map(|w| w.parse::<Ipv4Addr>())) {
            (IpAddr::V4(_), Some(Ok(mask))) if mask.octets()[0] == 255 => {
                rest = &rest[1..];
                netmask_len(mask).ok_or(FramedRouteError::BadNetmask)?
            }
            _ => max,
        },
    };
    let masked = match prefix {
        IpAddr::V4(p) => IpAddr::V4(Ipv4Addr::from(u32::from(p) & v4_mask(len))),
        IpAddr::V6(p) => IpAddr::V6(Ipv6Addr::from(u128::from(p) & v6_mask(len))),
    };
    if masked != prefix {
        return Err(FramedRouteError::HostBits);
    }
    if len == 0 {
        return Err(FramedRouteError::Default);
    }
    let unicast = match prefix {
        IpAddr::V4(p) => {
            let first = p.octets()[0];
            !(p.is_multicast() || p.is_loopback() || first == 0 || first >= 240)
        }
        IpAddr::V6(p) => !(p.is_multicast() || p.is_loopback() || p.is_unspecified()),
    };
    if !unicast {
        return Err(FramedRouteError::NotUnicast);
    }
    let gateway = match rest.first() {
        Some(g) => {
            let g: IpAddr = g.parse().map_err(|_| FramedRouteError::BadGateway)?;
            if g.is_ipv4() != prefix.is_ipv4() {
                return Err(FramedRouteError::BadGateway);
            }
            (!g.is_unspecified()).then_some(g)
        }
        None => None,
    };
    let mut metric = None;
    for m in rest.iter().skip(1) {
        let m: u32 = m.parse().map_err(|_| FramedRouteError::BadMetric)?;
        metric.get_or_insert(m);
    }
    Ok(FramedRoute {
        prefix,
        len,
        gateway,
        metric,
    })
}

fn v4_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn v6_mask(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// The length of a contiguous netmask ("255.255.255.0" → 24).
fn netmask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Result<FramedRoute, FramedRouteError> {
        parse_framed_route(text.as_bytes())
    }

    fn net(text: &str) -> String {
        v4(text).unwrap().to_string()
    }

    #[test]
    fn the_forms_users_write() {
        let r = v4("10.77.0.0/24 0.0.0.0 1").unwrap();
        assert_eq!(r.to_string(), "10.77.0.0/24");
        assert_eq!(r.gateway, None, "0.0.0.0 is the user itself");
        assert_eq!(r.metric, Some(1));
        assert_eq!(net("10.9.0.0 255.255.255.0"), "10.9.0.0/24");
        assert_eq!(net("10.9.0.0 255.255.0.0 0.0.0.0 1"), "10.9.0.0/16");
        assert_eq!(net("10.9.0.0/16"), "10.9.0.0/16");
        assert_eq!(net("  10.9.0.7\0"), "10.9.0.7/32");
        assert_eq!(net("10.9.0.7 0.0.0.0 5"), "10.9.0.7/32");
        let g = v4("192.168.1.0/24 192.168.1.1 1 2").unwrap();
        assert_eq!(g.gateway, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(g.metric, Some(1));
        let six = parse_framed_ipv6_route(b"2001:db8:9::/48 :: 1").unwrap();
        assert_eq!(six.to_string(), "2001:db8:9::/48");
        assert_eq!(six.gateway, None);
    }

    #[test]
    fn bad_values_say_why() {
        use FramedRouteError::*;
        assert_eq!(v4(""), Err(Empty));
        assert_eq!(v4("   "), Err(Empty));
        assert_eq!(parse_framed_route(&[0xff, 0x31]), Err(NotText));
        assert_eq!(v4("10.77.0.0/33"), Err(BadLength(32)));
        assert_eq!(v4("10.77.0.0/x"), Err(BadLength(32)));
        assert_eq!(v4("10.77.0.1/24"), Err(HostBits));
        assert_eq!(v4("branch/24"), Err(BadDestination));
        assert_eq!(v4("10.9.0.0 255.0.255.0"), Err(BadNetmask));
        assert_eq!(v4("0.0.0.0/0 0.0.0.0 1"), Err(Default));
        assert_eq!(v4("224.0.0.0/4"), Err(NotUnicast));
        assert_eq!(v4("127.0.0.0/8"), Err(NotUnicast));
        assert_eq!(v4("10.77.0.0/24 gw 1"), Err(BadGateway));
        assert_eq!(v4("10.77.0.0/24 ::1 1"), Err(BadGateway));
        assert_eq!(v4("10.77.0.0/24 0.0.0.0 one"), Err(BadMetric));
        assert_eq!(v4("10.77.0.0/24 0.0.0.0 1 1 1 1 1 1 1 1"), Err(TooLong));
        assert_eq!(v4("2001:db8::/32"), Err(WrongFamily));
        assert_eq!(parse_framed_ipv6_route(b"10.0.0.0/8"), Err(WrongFamily));
        assert_eq!(parse_framed_ipv6_route(b"ff02::/16"), Err(NotUnicast));
    }

    #[test]
    fn contains_uses_the_length() {
        let r = v4("10.77.0.0/24").unwrap();
        assert!(r.contains("10.77.0.1".parse().unwrap()));
        assert!(r.contains("10.77.0.255".parse().unwrap()));
        assert!(!r.contains("10.77.1.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        let host = v4("10.9.0.7").unwrap();
        assert!(host.contains("10.9.0.7".parse().unwrap()));
        assert!(!host.contains("10.9.0.6".parse().unwrap()));
        let six = parse_framed_ipv6_route(b"2001:db8:9::/48").unwrap();
        assert!(six.contains("2001:db8:9:ffff::1".parse().unwrap()));
        assert!(!six.contains("2001:db8:a::1".parse().unwrap()));
    }
}
