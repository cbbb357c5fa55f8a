//! Anti-spoofing on the server's side of a session: an IP packet from the
//! peer goes to the network only when its source is one of the peer's own
//! addresses or lies in a network routed through the session (RADIUS
//! Framed-Route, RFC 2865 §5.22; Framed-IPv6-Route, RFC 3162 §2.5).
//! RFC 2827 (BCP 38) ingress filtering: a client must not send as another
//! client, or as a network it was not given.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The sources one session may send from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFilter {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl SourceFilter {
    /// Allows nothing yet.
    pub fn new() -> SourceFilter {
        SourceFilter::default()
    }

    /// Allows sources in `net`/`len` (one address: `len` 32 or 128).
    pub fn allow(&mut self, net: IpAddr, len: u8) {
        match net {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0);
                self.v4.push((u32::from(a) & mask, mask));
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0);
                self.v6.push((u128::from(a) & mask, mask));
            }
        }
    }

    /// Allows the IPv6 link-local sources (fe80::/10) a PPP peer uses for
    /// Neighbor and Router Discovery (RFC 5072 §5).
    pub fn allow_link_local(&mut self) {
        self.allow(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10);
    }

    /// Whether `packet` (IPv4 or IPv6) has an allowed source. Truncated
    /// packets are refused.
    pub fn allows(&self, packet: &[u8]) -> bool {
        match packet.first().map(|b| b >> 4) {
            Some(4) if packet.len() >= 20 => {
                let s = u32::from(Ipv4Addr::new(
                    packet[12], packet[13], packet[14], packet[15],
                ));
                self.v4.iter().any(|(net, mask)| s & mask == *net)
            }
            Some(6) if packet.len() >= 40 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&packet[8..24]);
                let s = u128::from_be_bytes(b);
                self.v6.iter().any(|(net, mask)| s & mask == *net)
            }
            _ => false,
        }
    }
}

/// A dropped packet's source address for a log line ("a truncated
/// header" when it has none).
pub fn describe_source(packet: &[u8]) -> String {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]).to_string()
        }
        Some(6) if packet.len() >= 40 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&packet[8..24]);
            Ipv6Addr::from(b).to_string()
        }
        _ => "a truncated header".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_from(src: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45u8];
        p.extend_from_slice(&[0; 11]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&[10, 0, 10, 20]);
        p
    }

    fn v6_from(src: &str) -> Vec<u8> {
        let mut p = vec![0x60u8];
        p.extend_from_slice(&[0; 7]);
        p.extend_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&[0; 16]);
        p
    }

    #[test]
    fn own_address_and_routed_networks_only() {
        let mut f = SourceFilter::new();
        assert!(!f.allows(&v4_from([10, 0, 10, 21])), "nothing before allow");
        f.allow("10.0.10.21".parse().unwrap(), 32);
        f.allow("10.77.0.0".parse().unwrap(), 24);
        assert!(f.allows(&v4_from([10, 0, 10, 21])));
        assert!(f.allows(&v4_from([10, 77, 0, 1])));
        assert!(f.allows(&v4_from([10, 77, 0, 255])));
        assert!(!f.allows(&v4_from([10, 0, 10, 22])), "another client");
        assert!(!f.allows(&v4_from([10, 77, 1, 1])));
        assert!(!f.allows(&v4_from([10, 77, 0, 1])[..19]), "truncated");
        assert!(!f.allows(&v6_from("fd00::1")), "no IPv6 allowed");
        f.allow("fd01:2:3:4::".parse().unwrap(), 64);
        f.allow_link_local();
        assert!(f.allows(&v6_from("fd01:2:3:4:a:b:c:d")));
        assert!(f.allows(&v6_from("fe80::1234")));
        assert!(!f.allows(&v6_from("fd01:2:3:5::1")));
        assert!(!f.allows(&[0x12, 0x34]));
    }
}
