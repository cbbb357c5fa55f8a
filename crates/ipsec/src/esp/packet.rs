//! ESP packet layout (RFC 4303 §2) and the decapsulation result.

use std::ops::Range;

/// SPI (4) and sequence number (4): RFC 4303 §2.1, §2.2.
pub const ESP_HEADER_LEN: usize = 8;

/// Next header for tunnel mode carrying IPv4 (RFC 4303 §2.6, IANA protocol 4).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next header for tunnel mode carrying IPv6 (IANA protocol 41).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// RFC 4303 §2.6: next header 59 marks a dummy packet, to be discarded.
pub const NEXT_HEADER_NO_NEXT: u8 = 59;

/// Pad length and next header bytes of the trailer (RFC 4303 §2.5, §2.6).
pub(crate) const TRAILER_LEN: usize = 2;

/// A successfully decapsulated packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decapsulated {
    /// SPI of the SA that accepted it.
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub seq: u32,
    /// RFC 4303 §2.6: the protocol of the payload (17 UDP in transport
    /// mode, 4 or 41 in tunnel mode, 59 for a dummy packet).
    pub next_header: u8,
    /// Where the payload lies in the buffer that was decapsulated.
    pub payload: Range<usize>,
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
pub(crate) fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads the SPI of an ESP packet, if it is long enough to have one.
pub(crate) fn spi_of(packet: &[u8]) -> Option<u32> {
    (packet.len() >= 4).then(|| be_u32(packet, 0))
}

/// RFC 4303 §2.4: padding bytes are 1, 2, 3, ... unless the algorithm says
/// otherwise; none of ours does.
pub(crate) fn padding_is_valid(padding: &[u8]) -> bool {
    padding
        .iter()
        .enumerate()
        .fold(0u8, |bad, (i, &b)| bad | (b ^ (i as u8).wrapping_add(1)))
        == 0
}
