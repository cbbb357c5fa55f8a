//! The server's own end of each PPP link, in IPv6.
//!
//! IPv6CP negotiates only interface identifiers (RFC 5072 §4.1); each end
//! then has the link-local address `fe80::<its identifier>` (§5). pppd and
//! RRAS put the server's on the PPP interface, so the kernel answers pings
//! and Neighbor Discovery there. `ras server` has one TUN device for every
//! session, which cannot hold them: the server's identifiers differ per
//! session, and the clients' link-local addresses (where answers go) are
//! not unique across sessions, so the router could not tell whose an
//! answer is. So each session answers for its own link here, in user
//! space, before anything reaches the TUN:
//!
//! - ICMPv6 Echo Request to the server's link-local address → Echo Reply
//!   (RFC 4443 §4.1, §4.2);
//! - Router Solicitation → Router Advertisement (RFC 4861 §6.2.6);
//! - Neighbor Solicitation for one of the server's addresses on the link
//!   → Neighbor Advertisement (RFC 4861 §7.2.4).
//!
//! Everything else with a link-scope destination (the server's link-local
//! address, other link-local addresses, link-local multicast) ends here:
//! RFC 4291 §2.5.6 forbids forwarding it, and the TUN is not this link.
//! Other packets pass. Every check is bounds-checked; a malformed packet
//! is dropped and costs nothing else.

mod checksum;
mod responder;
mod router_advert;

pub use checksum::checksum;
pub use responder::{Responder, Stats, Verdict};
pub use router_advert::{router_advertisement, RouterAdvert};

use std::net::Ipv6Addr;

/// `fe80::<interface identifier>` (RFC 5072 §5).
pub fn link_local(interface_id: [u8; 8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(o)
}

/// ff02::1, all nodes on the link (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// IPv6 next header value of ICMPv6 (RFC 4443 §1).
pub const NEXT_HEADER_ICMPV6: u8 = 58;

/// A whole IPv6 packet carrying `icmp` (checksum filled in here).
pub(crate) fn ipv6_packet(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    hop_limit: u8,
    mut icmp: Vec<u8>,
    out: &mut Vec<u8>,
) {
    icmp[2] = 0;
    icmp[3] = 0;
    let sum = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    out.clear();
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    out.extend_from_slice(&[NEXT_HEADER_ICMPV6, hop_limit]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.extend_from_slice(&icmp);
}
