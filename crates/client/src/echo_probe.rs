//! ICMP echo packets for the `ras client` daemon's round-trip time probe:
//! the request it sends to a VPN server and the test of whether a packet
//! read from a raw socket is the reply to it. Pure functions: the socket
//! is the daemon's.
//!
//! IPv4 (RFC 792): a raw ICMP socket reads the IP header too, and the
//! checksum is ours to compute. IPv6 (RFC 4443 section 4.2): a raw ICMPv6
//! socket reads no IP header, and the kernel computes the checksum (RFC
//! 3542 section 3.1).

/// Echo Request (RFC 792 type 8, RFC 4443 type 128) with `id` and `seq`.
pub fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"ras rtt probe");
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// True when `packet` (as a raw socket of that family read it) is the
/// Echo Reply (type 0, or 129 for IPv6) to our request `id`/`seq`.
/// Anything else, short or malformed, is not.
pub fn is_echo_reply(v6: bool, packet: &[u8], id: u16, seq: u16) -> bool {
    let icmp = if v6 {
        packet
    } else {
        // The IPv4 header's length is in its first byte (RFC 791 IHL).
        let Some(first) = packet.first() else {
            return false;
        };
        if first >> 4 != 4 {
            return false;
        }
        let header = usize::from(first & 0x0f) * 4;
        if header < 20 {
            return false;
        }
        match packet.get(header..) {
            Some(rest) => rest,
            None => return false,
        }
    };
    let Some(head) = icmp.get(..8) else {
        return false;
    };
    let reply_type = if v6 { 129 } else { 0 };
    head[0] == reply_type
        && head[1] == 0
        && head[4..6] == id.to_be_bytes()
        && head[6..8] == seq.to_be_bytes()
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v4_request_checksums_to_zero() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(p[0], 8);
        // The checksum over a packet with its checksum in is 0 (RFC 1071).
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn only_the_matching_reply_matches() {
        let mut reply = vec![0x45u8];
        reply.extend_from_slice(&[0; 19]);
        let mut icmp = echo_request(false, 0x1234, 7);
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert!(is_echo_reply(false, &reply, 0x1234, 7));
        assert!(!is_echo_reply(false, &reply, 0x1234, 8), "another seq");
        assert!(!is_echo_reply(false, &reply, 0x1235, 7), "another id");
        assert!(!is_echo_reply(false, &reply[..24], 0x1234, 7), "short");
        // Our own request, looped back, is not a reply.
        let mut request = reply.clone();
        request[20] = 8;
        assert!(!is_echo_reply(false, &request, 0x1234, 7));
        // An IHL past the end, or below 5 words.
        assert!(!is_echo_reply(false, &[0x4f, 0, 0], 1, 1));
        assert!(!is_echo_reply(false, &[0x41; 30], 1, 1));
        let mut v6 = echo_request(true, 9, 10);
        assert!(!is_echo_reply(true, &v6, 9, 10));
        v6[0] = 129;
        assert!(is_echo_reply(true, &v6, 9, 10));
        assert!(!is_echo_reply(true, &[], 9, 10));
    }
}
