//! Traffic Selector payloads TSi/TSr (RFC 7296 §3.13): address ranges with
//! an IP protocol and a port range, IPv4 (type 7) or IPv6 (type 8).

use std::net::IpAddr;
use thiserror::Error;

pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// At most this many selectors are read from one payload.
pub const MAX_SELECTORS: usize = 32;

/// One traffic selector (§3.13.1). Protocol 0 means any; ports 0..=65535
/// mean any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficSelector {
    pub protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TsError {
    #[error("traffic selector payload truncated")]
    Truncated,
    #[error("traffic selector count {declared} does not match the {actual} selectors present")]
    Count { declared: u8, actual: usize },
    #[error("more than {MAX_SELECTORS} traffic selectors")]
    TooMany,
    #[error("traffic selector {0} has a bad length")]
    Length(u8),
}

impl TrafficSelector {
    /// Every address and port of one family (what a client asking for a
    /// full tunnel proposes).
    pub fn any_ipv4() -> Self {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::from([0, 0, 0, 0]),
            end: IpAddr::from([255, 255, 255, 255]),
        }
    }

    pub fn any_ipv6() -> Self {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::from([0u16; 8]),
            end: IpAddr::from([0xffffu16; 8]),
        }
    }

    /// One address, all ports and protocols.
    pub fn host(address: IpAddr) -> Self {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: address,
            end: address,
        }
    }

    /// An IPv4 network (`network`/`length`), all ports and protocols.
    pub fn ipv4_prefix(network: std::net::Ipv4Addr, length: u8) -> Self {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(length.min(32)))
            .unwrap_or(0);
        let start = u32::from(network) & mask;
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::from(start.to_be_bytes()),
            end: IpAddr::from((start | !mask).to_be_bytes()),
        }
    }

    /// A network of either family (`network`/`length`), all ports and
    /// protocols.
    pub fn prefix(network: IpAddr, length: u8) -> Self {
        match network {
            IpAddr::V4(a) => Self::ipv4_prefix(a, length),
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(length.min(128)))
                    .unwrap_or(0);
                let start = u128::from(a) & mask;
                TrafficSelector {
                    protocol: 0,
                    start_port: 0,
                    end_port: 65535,
                    start: IpAddr::from(start.to_be_bytes()),
                    end: IpAddr::from((start | !mask).to_be_bytes()),
                }
            }
        }
    }

    /// Whether the range is well formed: one family, start ≤ end.
    pub fn is_valid(&self) -> bool {
        match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a <= b && self.start_port <= self.end_port,
            (IpAddr::V6(a), IpAddr::V6(b)) => a <= b && self.start_port <= self.end_port,
            _ => false,
        }
    }

    /// The intersection with `other` (§2.9 narrowing), if any.
    pub fn intersect(&self, other: &TrafficSelector) -> Option<TrafficSelector> {
        let protocol = match (self.protocol, other.protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        let (start, end) = match (self.start, self.end, other.start, other.end) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(c), IpAddr::V4(d)) => {
                (IpAddr::V4(a.max(c)), IpAddr::V4(b.min(d)))
            }
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(c), IpAddr::V6(d)) => {
                (IpAddr::V6(a.max(c)), IpAddr::V6(b.min(d)))
            }
            _ => return None,
        };
        let narrowed = TrafficSelector {
            protocol,
            start_port,
            end_port,
            start,
            end,
        };
        narrowed.is_valid().then_some(narrowed)
    }
}

/// Parses a TSi or TSr payload body.
pub fn parse(body: &[u8]) -> Result<Vec<TrafficSelector>, TsError> {
    if body.len() < 4 {
        return Err(TsError::Truncated);
    }
    let declared = body[0];
    let mut rest = &body[4..];
    let mut out = Vec::new();
    let mut seen = 0usize;
    while !rest.is_empty() {
        if seen == MAX_SELECTORS {
            return Err(TsError::TooMany);
        }
        if rest.len() < 8 {
            return Err(TsError::Truncated);
        }
        let kind = rest[0];
        let protocol = rest[1];
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let address_len = match kind {
            TS_IPV4_ADDR_RANGE => 4,
            TS_IPV6_ADDR_RANGE => 16,
            // An unknown selector type cannot be skipped safely inside a
            // proposal; it is simply not one we can honour.
            _ => 0,
        };
        if len < 8 || len > rest.len() || (address_len != 0 && len != 8 + 2 * address_len) {
            return Err(TsError::Length(kind));
        }
        if address_len != 0 {
            let start_port = u16::from_be_bytes([rest[4], rest[5]]);
            let end_port = u16::from_be_bytes([rest[6], rest[7]]);
            let start = address(&rest[8..8 + address_len]);
            let end = address(&rest[8 + address_len..8 + 2 * address_len]);
            out.push(TrafficSelector {
                protocol,
                start_port,
                end_port,
                start,
                end,
            });
        }
        seen += 1;
        rest = &rest[len..];
    }
    // The count includes selectors of unknown types, which were skipped.
    if declared as usize != seen {
        return Err(TsError::Count {
            declared,
            actual: seen,
        });
    }
    Ok(out)
}

fn address(bytes: &[u8]) -> IpAddr {
    if bytes.len() == 4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(bytes);
        IpAddr::from(octets)
    }
}

/// Encodes a TS payload body.
pub fn encode(selectors: &[TrafficSelector]) -> Vec<u8> {
    let mut out = vec![selectors.len() as u8, 0, 0, 0];
    for ts in selectors {
        let (kind, len) = match ts.start {
            IpAddr::V4(_) => (TS_IPV4_ADDR_RANGE, 16u16),
            IpAddr::V6(_) => (TS_IPV6_ADDR_RANGE, 40u16),
        };
        out.extend_from_slice(&[kind, ts.protocol]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&ts.start_port.to_be_bytes());
        out.extend_from_slice(&ts.end_port.to_be_bytes());
        for a in [ts.start, ts.end] {
            match a {
                IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "traffic_selectors_tests.rs"]
mod tests;
