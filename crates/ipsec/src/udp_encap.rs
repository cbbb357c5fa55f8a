//! UDP encapsulation of ESP for NAT traversal (RFC 3948).
//!
//! On port 4500 one socket carries three things (§2): ESP packets (a
//! non-zero SPI first), IKE messages behind a 4-byte zero "non-ESP marker"
//! (§2.2), and 1-byte NAT-keepalives of 0xFF (§2.3). After transport-mode
//! decapsulation behind a NAT, the inner TCP/UDP checksum was computed over
//! addresses the NAT has since rewritten; §3.1.2 says how to repair it.

use std::net::IpAddr;

use thiserror::Error;

/// RFC 3948 §2.2: four zero bytes in place of an SPI mark an IKE message.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// RFC 3948 §2.3: the NAT-keepalive payload.
pub const NAT_KEEPALIVE: u8 = 0xFF;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// What a UDP payload received on port 4500 carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port4500<'a> {
    /// §2.3: a keepalive; drop it silently.
    Keepalive,
    /// §2.2: an IKE message, the marker stripped.
    Ike(&'a [u8]),
    /// §2.1: an ESP packet starting at its (non-zero) SPI.
    Esp(&'a [u8]),
    /// None of these: too short for ESP, or a lone non-0xFF byte.
    Malformed,
}

/// Classifies a UDP payload received on the NAT-T port.
pub fn classify(udp_payload: &[u8]) -> Port4500<'_> {
    match udp_payload {
        [NAT_KEEPALIVE] => Port4500::Keepalive,
        [0, 0, 0, 0, ike @ ..] => Port4500::Ike(ike),
        // SPI (4) and sequence number (4) at least (RFC 4303 §2).
        esp if esp.len() >= 8 => Port4500::Esp(esp),
        _ => Port4500::Malformed,
    }
}

/// How to repair the inner TCP/UDP checksum after transport-mode
/// decapsulation of a NAT-traversed packet (RFC 3948 §3.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumFix {
    /// The peer's original addresses are known (NAT-OA, RFC 3947 §5.2):
    /// incrementally swap the original addresses for the ones in the
    /// received IP header (RFC 1624 §3, eqn. 3).
    Incremental {
        original_src: IpAddr,
        original_dst: IpAddr,
        received_src: IpAddr,
        received_dst: IpAddr,
    },
    /// Recompute the checksum over the addresses of the received IP header.
    Recompute { src: IpAddr, dst: IpAddr },
    /// UDP over IPv4 only: set the checksum to zero, "not computed" (RFC 768).
    ZeroUdp,
}

/// Why a checksum could not be repaired.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumError {
    #[error("next header {0} is neither TCP nor UDP")]
    NotTcpOrUdp(u8),
    #[error("transport segment of {0} bytes is too short for its header")]
    Truncated(usize),
    #[error("IPv4 and IPv6 addresses mixed in one checksum fix")]
    MixedFamilies,
    #[error("a zero UDP checksum is only allowed for UDP over IPv4")]
    ZeroNotAllowed,
}

/// Repairs the checksum of `segment` (a TCP or UDP header and data, as
/// returned by decapsulation) according to `fix`.
pub fn fix_transport_checksum(
    next_header: u8,
    segment: &mut [u8],
    fix: ChecksumFix,
) -> Result<(), ChecksumError> {
    let (offset, header_len) = match next_header {
        PROTO_UDP => (6, 8),
        PROTO_TCP => (16, 20),
        other => return Err(ChecksumError::NotTcpOrUdp(other)),
    };
    if segment.len() < header_len {
        return Err(ChecksumError::Truncated(segment.len()));
    }
    match fix {
        ChecksumFix::ZeroUdp => {
            if next_header != PROTO_UDP {
                return Err(ChecksumError::ZeroNotAllowed);
            }
            segment[offset..offset + 2].copy_from_slice(&[0, 0]);
        }
        ChecksumFix::Recompute { src, dst } => {
            segment[offset..offset + 2].copy_from_slice(&[0, 0]);
            let mut sum = pseudo_header_sum(src, dst, next_header, segment.len())?;
            sum = add_words(sum, segment);
            let mut checksum = !fold(sum);
            // RFC 768: a computed zero is sent as all ones.
            if checksum == 0 && next_header == PROTO_UDP {
                checksum = 0xFFFF;
            }
            segment[offset..offset + 2].copy_from_slice(&checksum.to_be_bytes());
        }
        ChecksumFix::Incremental {
            original_src,
            original_dst,
            received_src,
            received_dst,
        } => {
            let old = u16::from_be_bytes([segment[offset], segment[offset + 1]]);
            // RFC 768: zero means the sender computed no UDP checksum.
            if old == 0 && next_header == PROTO_UDP {
                return Ok(());
            }
            let removed = add_addresses(original_src, original_dst)?;
            let added = add_addresses(received_src, received_dst)?;
            if original_src.is_ipv4() != received_src.is_ipv4() {
                return Err(ChecksumError::MixedFamilies);
            }
            // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with m summed first.
            let sum = u32::from(!old) + u32::from(!fold(removed)) + u32::from(fold(added));
            let mut checksum = !fold(sum);
            if checksum == 0 && next_header == PROTO_UDP {
                checksum = 0xFFFF;
            }
            segment[offset..offset + 2].copy_from_slice(&checksum.to_be_bytes());
        }
    }
    Ok(())
}

/// One's-complement sum of the addresses' 16-bit words.
fn add_addresses(src: IpAddr, dst: IpAddr) -> Result<u32, ChecksumError> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ok(add_words(add_words(0, &s.octets()), &d.octets())),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ok(add_words(add_words(0, &s.octets()), &d.octets())),
        _ => Err(ChecksumError::MixedFamilies),
    }
}

/// The pseudo-header sum: RFC 768 / RFC 793 for IPv4, RFC 8200 §8.1 for IPv6.
fn pseudo_header_sum(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    len: usize,
) -> Result<u32, ChecksumError> {
    let sum = add_addresses(src, dst)?;
    let len = len as u32;
    Ok(sum + u32::from(protocol) + (len >> 16) + (len & 0xFFFF))
}

/// Adds `bytes` as big-endian 16-bit words (an odd last byte padded with zero).
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum = fold_once(sum + u32::from(u16::from_be_bytes([pair[0], pair[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = fold_once(sum + (u32::from(*last) << 8));
    }
    sum
}

fn fold_once(sum: u32) -> u32 {
    (sum & 0xFFFF) + (sum >> 16)
}

/// Folds carries until the sum fits 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = fold_once(sum);
    }
    sum as u16
}

#[cfg(test)]
#[path = "udp_encap_tests.rs"]
mod tests;
