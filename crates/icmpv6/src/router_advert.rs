//! Router Advertisements into a PPP link (RFC 4861 §4.2, §4.6.2, §4.6.4):
//! after IPv6CP gives the client only a link-local address, the
//! advertisement tells it the /64 to form its global address from
//! (RFC 5072 §5, SLAAC per RFC 4862), as RRAS does.

use std::net::Ipv6Addr;

use crate::{ipv6_packet, link_local};

/// Valid and preferred lifetimes of the advertised prefix (seconds).
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;
/// How long the client may use us as its default router (seconds).
const ROUTER_LIFETIME: u16 = 1_800;

/// What a session's advertisements say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvert {
    /// The /64 the client forms its address in.
    pub prefix: Ipv6Addr,
    /// The link MTU (§4.6.4).
    pub mtu: u32,
}

/// A complete IPv6 packet: a Router Advertisement from the server's
/// link-local address to all nodes, with the prefix and the link MTU.
pub fn router_advertisement(server_interface_id: [u8; 8], prefix: Ipv6Addr, mtu: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + 56);
    build(
        &link_local(server_interface_id),
        &crate::ALL_NODES,
        &RouterAdvert { prefix, mtu },
        &mut out,
    );
    out
}

/// The advertisement from `src` to `dst` into `out`.
pub(crate) fn build(src: &Ipv6Addr, dst: &Ipv6Addr, ra: &RouterAdvert, out: &mut Vec<u8>) {
    let mut icmp = Vec::with_capacity(16 + 32 + 8);
    // RFC 4861 §4.2: type 134, code 0, checksum, Cur Hop Limit, M/O flags,
    // Router Lifetime, Reachable Time, Retrans Timer.
    icmp.extend_from_slice(&[134, 0, 0, 0, 64, 0]);
    icmp.extend_from_slice(&ROUTER_LIFETIME.to_be_bytes());
    icmp.extend_from_slice(&0u32.to_be_bytes());
    icmp.extend_from_slice(&0u32.to_be_bytes());
    // §4.6.2 Prefix Information: type 3, length 4 (×8 bytes), /64,
    // L (on-link) and A (autonomous address configuration).
    icmp.extend_from_slice(&[3, 4, 64, 0x80 | 0x40]);
    icmp.extend_from_slice(&VALID_LIFETIME.to_be_bytes());
    icmp.extend_from_slice(&PREFERRED_LIFETIME.to_be_bytes());
    icmp.extend_from_slice(&0u32.to_be_bytes());
    icmp.extend_from_slice(&ra.prefix.octets());
    // §4.6.4 MTU: type 5, length 1, reserved, MTU.
    icmp.extend_from_slice(&[5, 1, 0, 0]);
    icmp.extend_from_slice(&ra.mtu.to_be_bytes());
    // Hop limit 255 (§6.1.2: receivers require it).
    ipv6_packet(src, dst, 255, icmp, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;

    #[test]
    fn advertisement_is_well_formed() {
        let prefix: Ipv6Addr = "fd12:3456:789a:1::".parse().unwrap();
        let p = router_advertisement([0, 0, 0, 0, 0, 0, 0, 1], prefix, 1400);
        assert_eq!(p.len(), 40 + 56);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 56);
        assert_eq!((p[6], p[7]), (58, 255));
        assert_eq!(&p[8..24], &link_local([0, 0, 0, 0, 0, 0, 0, 1]).octets());
        let icmp = &p[40..];
        assert_eq!(icmp[0], 134);
        // A correct checksum makes the sum over everything come out zero.
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap());
        assert_eq!(checksum(&src, &dst, icmp), 0);
        assert_eq!(&icmp[32..48], &prefix.octets());
        assert_eq!(u32::from_be_bytes(icmp[52..56].try_into().unwrap()), 1400);
    }
}
