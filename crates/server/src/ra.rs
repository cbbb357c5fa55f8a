//! ICMPv6 Router Advertisements into a PPP link (RFC 4861 §4.2, §4.6.2,
//! §4.6.4): after IPv6CP gives the client only a link-local address, the
//! advertisement tells it the /64 to form its global address from
//! (RFC 5072 §5, SLAAC per RFC 4862), as RRAS does.

use std::net::Ipv6Addr;

/// Valid and preferred lifetimes of the advertised prefix (seconds).
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;
/// How long the client may use us as its default router (seconds).
const ROUTER_LIFETIME: u16 = 1_800;

/// fe80::/64 with the interface identifier negotiated by IPv6CP.
pub fn link_local(interface_id: [u8; 8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(o)
}

/// A complete IPv6 packet: a Router Advertisement from the server's
/// link-local address to all nodes, with the prefix and the link MTU.
pub fn router_advertisement(server_interface_id: [u8; 8], prefix: Ipv6Addr, mtu: u32) -> Vec<u8> {
    let src = link_local(server_interface_id);
    let dst: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
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
    icmp.extend_from_slice(&prefix.octets());
    // §4.6.4 MTU: type 5, length 1, reserved, MTU.
    icmp.extend_from_slice(&[5, 1, 0, 0]);
    icmp.extend_from_slice(&mtu.to_be_bytes());
    let sum = checksum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut packet = Vec::with_capacity(40 + icmp.len());
    packet.extend_from_slice(&[0x60, 0, 0, 0]);
    packet.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    // Next header ICMPv6, hop limit 255 (§6.1.2: receivers require it).
    packet.extend_from_slice(&[58, 255]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&icmp);
    packet
}

/// RFC 4443 §2.3: the ICMPv6 checksum over the RFC 8200 §8.1 pseudo-header.
pub fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn checksum_matches_a_hand_computed_value() {
        // An echo request (type 128) with id 1, seq 1 from ::1 to ::1: the
        // pseudo-header sum is 0x0001 + 0x0001 + 0x0008 + 0x003a = 0x0044;
        // with 0x8000 + 0x0001 + 0x0001 the total is 0x8046, so 0x7fb9.
        let icmp = [128, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(
            checksum(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST, &icmp),
            0x7fb9
        );
    }
}
