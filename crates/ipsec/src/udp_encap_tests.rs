//! RFC 3948 demultiplexing and the §3.1.2 checksum repair.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

#[test]
fn port_4500_demultiplexing() {
    assert_eq!(classify(&[0xFF]), Port4500::Keepalive);
    assert_eq!(classify(&[0xFE]), Port4500::Malformed);
    assert_eq!(classify(&[]), Port4500::Malformed);
    let ike = [0, 0, 0, 0, 0x11, 0x22];
    assert_eq!(classify(&ike), Port4500::Ike(&[0x11, 0x22]));
    assert_eq!(classify(&[0, 0, 0, 0]), Port4500::Ike(&[]));
    let esp = [0, 0, 0x43, 0x21, 0, 0, 0, 1, 0xAA];
    assert_eq!(classify(&esp), Port4500::Esp(&esp));
    // Non-zero SPI but shorter than SPI + sequence number.
    assert_eq!(classify(&[1, 2, 3, 4, 5]), Port4500::Malformed);
}

/// An independent verifier: the one's-complement sum over pseudo-header
/// and segment, checksum included, is 0xFFFF when the checksum is right.
fn verifies(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> bool {
    let mut bytes = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&[0, proto]);
            bytes.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => unreachable!(),
    }
    bytes.extend_from_slice(segment);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|p| u64::from(u16::from_be_bytes([p[0], p[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum == 0xFFFF
}

/// An L2TP-over-UDP datagram: ports 1701, odd length to exercise padding.
fn udp_segment() -> Vec<u8> {
    let data = b"\xc8\x02\x00\x0b\x00\x01\x00\x00\x00\x00\x00";
    let len = (8 + data.len()) as u16;
    let mut seg = vec![0x06, 0xA5, 0x06, 0xA5];
    seg.extend_from_slice(&len.to_be_bytes());
    seg.extend_from_slice(&[0, 0]);
    seg.extend_from_slice(data);
    seg
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn recompute_produces_a_valid_checksum() {
    let (src, dst) = (v4(10, 0, 0, 2), v4(203, 0, 113, 7));
    let mut seg = udp_segment();
    fix_transport_checksum(17, &mut seg, ChecksumFix::Recompute { src, dst }).unwrap();
    assert_ne!(&seg[6..8], &[0, 0]);
    assert!(verifies(src, dst, 17, &seg));
    assert!(!verifies(v4(10, 0, 0, 3), dst, 17, &seg));

    let (s6, d6) = (
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe)),
    );
    fix_transport_checksum(17, &mut seg, ChecksumFix::Recompute { src: s6, dst: d6 }).unwrap();
    assert!(verifies(s6, d6, 17, &seg));
}

#[test]
fn incremental_fix_with_nat_oa_matches_recompute() {
    // The client behind a NAT computed the checksum over its private
    // address (sent to us in NAT-OA); we received the packet from the NAT's
    // public address.
    let original_src = v4(192, 168, 1, 20);
    let received_src = v4(198, 51, 100, 9);
    let dst = v4(203, 0, 113, 7);
    for proto in [17u8, 6] {
        let mut seg = if proto == 17 {
            udp_segment()
        } else {
            let mut tcp = vec![0u8; 20];
            tcp[..4].copy_from_slice(&[0x04, 0xD2, 0x00, 0x50]);
            tcp[12] = 0x50;
            tcp.extend_from_slice(b"hello");
            tcp
        };
        fix_transport_checksum(
            proto,
            &mut seg,
            ChecksumFix::Recompute {
                src: original_src,
                dst,
            },
        )
        .unwrap();
        assert!(verifies(original_src, dst, proto, &seg));
        assert!(!verifies(received_src, dst, proto, &seg));

        let mut incremental = seg.clone();
        fix_transport_checksum(
            proto,
            &mut incremental,
            ChecksumFix::Incremental {
                original_src,
                original_dst: dst,
                received_src,
                received_dst: dst,
            },
        )
        .unwrap();
        assert!(
            verifies(received_src, dst, proto, &incremental),
            "proto {proto}"
        );
    }
}

#[test]
fn zero_udp_checksum_is_left_alone_or_set() {
    let mut seg = udp_segment();
    let fix = ChecksumFix::Incremental {
        original_src: v4(1, 1, 1, 1),
        original_dst: v4(2, 2, 2, 2),
        received_src: v4(3, 3, 3, 3),
        received_dst: v4(2, 2, 2, 2),
    };
    // Zero means "no checksum" (RFC 768): nothing to repair.
    fix_transport_checksum(17, &mut seg, fix).unwrap();
    assert_eq!(&seg[6..8], &[0, 0]);

    fix_transport_checksum(
        17,
        &mut seg,
        ChecksumFix::Recompute {
            src: v4(1, 1, 1, 1),
            dst: v4(2, 2, 2, 2),
        },
    )
    .unwrap();
    fix_transport_checksum(17, &mut seg, ChecksumFix::ZeroUdp).unwrap();
    assert_eq!(&seg[6..8], &[0, 0]);
    let mut tcp = vec![0u8; 20];
    assert_eq!(
        fix_transport_checksum(6, &mut tcp, ChecksumFix::ZeroUdp),
        Err(ChecksumError::ZeroNotAllowed)
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let fix = ChecksumFix::Recompute {
        src: v4(1, 1, 1, 1),
        dst: v4(2, 2, 2, 2),
    };
    assert_eq!(
        fix_transport_checksum(47, &mut [0; 20], fix),
        Err(ChecksumError::NotTcpOrUdp(47))
    );
    assert_eq!(
        fix_transport_checksum(17, &mut [0; 7], fix),
        Err(ChecksumError::Truncated(7))
    );
    assert_eq!(
        fix_transport_checksum(6, &mut [0; 19], fix),
        Err(ChecksumError::Truncated(19))
    );
    let mixed = ChecksumFix::Recompute {
        src: v4(1, 1, 1, 1),
        dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    assert_eq!(
        fix_transport_checksum(17, &mut udp_segment(), mixed),
        Err(ChecksumError::MixedFamilies)
    );
}
