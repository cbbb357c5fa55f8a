//! The IPv4/UDP wrapping of NetBIOS packets on the tunnel side: clients'
//! packets arrive as whole IP packets from their session, and what the
//! gateway sends them is built as one (RFC 791, RFC 768).

use std::net::{Ipv4Addr, SocketAddrV4};

/// IPv4 protocol number of UDP (RFC 790).
const PROTO_UDP: u8 = 17;
/// TTL of the packets we build: they only cross the tunnel.
const TTL: u8 = 64;

/// A UDP datagram inside an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp4<'a> {
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub payload: &'a [u8],
}

/// The UDP datagram in `packet` when it is IPv4, unfragmented UDP whose
/// lengths agree; anything else is `None` (and is not the gateway's).
pub fn parse_udp4(packet: &[u8]) -> Option<Udp4<'_>> {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != PROTO_UDP {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if ihl < 20 || total < ihl + 8 || total > packet.len() {
        return None;
    }
    // RFC 791 §3.1: MF set or a fragment offset: a fragment; NetBIOS
    // packets from a client fit one packet, and a fragment's ports may
    // not even be there.
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    if frag & 0x3fff != 0 {
        return None;
    }
    let udp = &packet[ihl..total];
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < 8 || udp_len > udp.len() {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Some(Udp4 {
        from: SocketAddrV4::new(src, u16::from_be_bytes([udp[0], udp[1]])),
        to: SocketAddrV4::new(dst, u16::from_be_bytes([udp[2], udp[3]])),
        payload: &udp[8..udp_len],
    })
}

/// The UDP destination port of an IPv4 packet, cheaply, before any other
/// check (the sink looks at every packet a client sends).
pub fn udp4_destination_port(packet: &[u8]) -> Option<u16> {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != PROTO_UDP {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let port = packet.get(ihl + 2..ihl + 4)?;
    Some(u16::from_be_bytes([port[0], port[1]]))
}

/// An IPv4 packet (no options, DF clear) carrying `payload` in UDP from
/// `from` to `to`, with both checksums. `None` when it would not fit an
/// IPv4 packet.
pub fn build_udp4(
    from: SocketAddrV4,
    to: SocketAddrV4,
    id: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let udp_len = u16::try_from(8 + payload.len()).ok()?;
    let total = udp_len.checked_add(20)?;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, TTL, PROTO_UDP, 0, 0]);
    p.extend_from_slice(&from.ip().octets());
    p.extend_from_slice(&to.ip().octets());
    let ip_sum = checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p.extend_from_slice(&from.port().to_be_bytes());
    p.extend_from_slice(&to.port().to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    // RFC 768: the checksum covers a pseudo header (addresses, protocol,
    // UDP length) and the datagram; a computed 0 is sent as all ones.
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&from.ip().octets());
    pseudo[4..8].copy_from_slice(&to.ip().octets());
    pseudo[9] = PROTO_UDP;
    pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
    let sum = checksum(sum_words(0, &pseudo), &p[20..]);
    let sum = if sum == 0 { 0xffff } else { sum };
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    Some(p)
}

/// The one's complement sum of `data` as 16-bit words, added to `acc`
/// (RFC 1071).
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// The Internet checksum (RFC 1071) of `data`, starting from `acc`.
fn checksum(acc: u32, data: &[u8]) -> u16 {
    let mut sum = sum_words(acc, data);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    /// A broadcast NAME QUERY REQUEST for FRED<20> (RFC 1002 §4.2.12)
    /// from 192.168.50.10:40000 to the subnet broadcast, IP ID 0x1c46.
    /// The checksums were worked out separately (a few lines of Python
    /// following RFC 1071 over the same octets), not taken from this code.
    #[test]
    fn builds_a_known_packet() {
        let payload: [u8; 50] = [
            0x5b, 0x2a, 0x01, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x45,
            0x47, 0x46, 0x43, 0x45, 0x46, 0x45, 0x45, 0x43, 0x41, 0x43, 0x41, 0x43, 0x41, 0x43,
            0x41, 0x43, 0x41, 0x43, 0x41, 0x43, 0x41, 0x43, 0x41, 0x43, 0x41, 0x43, 0x41, 0x43,
            0x41, 0x43, 0x41, 0x00, 0x00, 0x20, 0x00, 0x01,
        ];
        let p = build_udp4(
            sa("192.168.50.10:40000"),
            sa("192.168.50.255:137"),
            0x1c46,
            &payload,
        )
        .unwrap();
        assert_eq!(p.len(), 20 + 8 + 50);
        assert_eq!(
            &p[..20],
            &[
                0x45, 0x00, 0x00, 0x4e, 0x1c, 0x46, 0x00, 0x00, 0x40, 0x11, 0x77, 0xff, 0xc0, 0xa8,
                0x32, 0x0a, 0xc0, 0xa8, 0x32, 0xff
            ]
        );
        assert_eq!(&p[20..26], &[0x9c, 0x40, 0x00, 0x89, 0x00, 0x3a]);
        assert_eq!(&p[26..28], &[0xda, 0xbc], "UDP checksum");
        assert_eq!(&p[28..], &payload);
    }

    /// A received packet verifies: the one's complement sum over a header
    /// with its checksum is 0, and so is the UDP sum with the pseudo header.
    #[test]
    fn checksums_verify() {
        let payload = b"odd length!";
        let p = build_udp4(sa("10.0.10.1:138"), sa("10.0.10.21:138"), 7, payload).unwrap();
        assert_eq!(checksum(0, &p[..20]), 0);
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&p[12..16]);
        pseudo[4..8].copy_from_slice(&p[16..20]);
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&p[24..26]);
        assert_eq!(checksum(sum_words(0, &pseudo), &p[20..]), 0);
    }

    #[test]
    fn parses_what_it_builds_and_refuses_the_rest() {
        let p = build_udp4(sa("10.0.10.21:137"), sa("255.255.255.255:137"), 1, b"abc").unwrap();
        let u = parse_udp4(&p).unwrap();
        assert_eq!(u.from, sa("10.0.10.21:137"));
        assert_eq!(u.to, sa("255.255.255.255:137"));
        assert_eq!(u.payload, b"abc");
        assert_eq!(udp4_destination_port(&p), Some(137));
        // Trailing octets past the IP total length are ignored.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_udp4(&padded).unwrap().payload, b"abc");
        // Truncated, a fragment, not UDP, a UDP length past the end.
        assert!(parse_udp4(&p[..p.len() - 1]).is_none());
        let mut frag = p.clone();
        frag[6] = 0x20;
        assert!(parse_udp4(&frag).is_none());
        let mut tcp = p.clone();
        tcp[9] = 6;
        assert!(parse_udp4(&tcp).is_none());
        assert_eq!(udp4_destination_port(&tcp), None);
        let mut long = p.clone();
        long[25] = 200;
        assert!(parse_udp4(&long).is_none());
        assert!(parse_udp4(&[0x45]).is_none());
        assert_eq!(udp4_destination_port(&[0x45, 0, 0]), None);
    }
}
