//! The enhanced GRE header that carries PPP frames (RFC 2637 §4.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
//! |    Key (HW) Payload Length    |       Key (LW) Call ID        |
//! |                  Sequence Number (Optional)                   |
//! |               Acknowledgment Number (Optional)                |
//! ```
//!
//! C, R and s are 0, K is 1, Recur and Flags are 0, Ver is 1 and the
//! Protocol Type is 0x880B (PPP). S says a sequence number is present (every
//! packet with a payload), A says an acknowledgment number is present. This
//! differs from RFC 2784/2890 GRE (version 0) in the A bit, in the version
//! and in the meaning of the key field.

use thiserror::Error;

/// GRE Protocol Type for PPP (RFC 2637 §4.1).
pub const PROTOCOL_PPP: u16 = 0x880B;
/// The GRE version PPTP uses (RFC 2637 §4.1).
pub const VERSION: u8 = 1;
/// Length of the header without the optional sequence and ack numbers.
pub const BASE_HEADER_LEN: usize = 8;
/// Length of the header with both optional numbers.
pub const MAX_HEADER_LEN: usize = 16;

const FLAG_C: u8 = 0x80;
const FLAG_R: u8 = 0x40;
const FLAG_K: u8 = 0x20;
const FLAG_S: u8 = 0x10;
const FLAG_STRICT: u8 = 0x08;
const FLAG_A: u8 = 0x80;
const VERSION_MASK: u8 = 0x07;

/// Errors decoding or encoding an enhanced GRE packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GreError {
    /// Fewer octets than the header or the payload length needs.
    #[error("truncated GRE packet: need {need} octets, have {have}")]
    Truncated {
        /// Octets needed.
        need: usize,
        /// Octets available.
        have: usize,
    },
    /// Version is not 1.
    #[error("GRE version {0} is not 1")]
    BadVersion(u8),
    /// Protocol Type is not 0x880B.
    #[error("GRE protocol type {0:#06x} is not PPP (0x880b)")]
    BadProtocol(u16),
    /// The Key bit is clear.
    #[error("GRE key bit not set")]
    NoKey,
    /// C, R or s is set: checksum or routing, which PPTP never uses.
    #[error("GRE checksum or routing flags set ({0:#04x})")]
    UnsupportedFlags(u8),
    /// A payload without a sequence number (RFC 2637 §4.1: S is set on
    /// every packet carrying a payload).
    #[error("GRE payload without sequence number")]
    PayloadWithoutSequence,
    /// The payload does not fit the 16-bit Payload Length field.
    #[error("payload of {0} octets is too long for GRE")]
    PayloadTooLong(usize),
    /// The packet is for another call.
    #[error("GRE packet for call ID {got}, expected {expected}")]
    WrongCallId {
        /// The Call ID in the key field.
        got: u16,
        /// The local Call ID.
        expected: u16,
    },
}

/// The fields of an enhanced GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreHeader {
    /// Payload Length (high half of the key).
    pub payload_len: u16,
    /// Call ID: the receiver's Call ID (low half of the key).
    pub call_id: u16,
    /// Sequence Number, present when there is a payload.
    pub seq: Option<u32>,
    /// Acknowledgment Number: the highest sequence number received.
    pub ack: Option<u32>,
}

impl GreHeader {
    /// The encoded header length.
    pub fn len(&self) -> usize {
        BASE_HEADER_LEN
            + if self.seq.is_some() { 4 } else { 0 }
            + if self.ack.is_some() { 4 } else { 0 }
    }

    /// Never empty; provided for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b0 = FLAG_K;
        if self.seq.is_some() {
            b0 |= FLAG_S;
        }
        let mut b1 = VERSION;
        if self.ack.is_some() {
            b1 |= FLAG_A;
        }
        out.push(b0);
        out.push(b1);
        out.extend_from_slice(&PROTOCOL_PPP.to_be_bytes());
        out.extend_from_slice(&self.payload_len.to_be_bytes());
        out.extend_from_slice(&self.call_id.to_be_bytes());
        if let Some(seq) = self.seq {
            out.extend_from_slice(&seq.to_be_bytes());
        }
        if let Some(ack) = self.ack {
            out.extend_from_slice(&ack.to_be_bytes());
        }
    }
}

/// A decoded enhanced GRE packet borrowing its payload (a PPP frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrePacket<'a> {
    /// The header.
    pub header: GreHeader,
    /// The payload, `header.payload_len` octets.
    pub payload: &'a [u8],
}

/// Appends a whole GRE packet to `out`. With an empty payload and no
/// sequence number this is an ack-only packet (RFC 2637 §4.2).
pub fn encode(
    call_id: u16,
    seq: Option<u32>,
    ack: Option<u32>,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), GreError> {
    let payload_len =
        u16::try_from(payload.len()).map_err(|_| GreError::PayloadTooLong(payload.len()))?;
    if payload_len > 0 && seq.is_none() {
        return Err(GreError::PayloadWithoutSequence);
    }
    let header = GreHeader {
        payload_len,
        call_id,
        seq,
        ack,
    };
    out.reserve(header.len() + payload.len());
    header.encode(out);
    out.extend_from_slice(payload);
    Ok(())
}

/// Decodes an enhanced GRE packet (the IP payload, without the IP header).
///
/// Strict about what changes the layout or the meaning (version, protocol,
/// K, C, R, s, truncation, a payload without a sequence number); Recur and
/// the reserved Flags are ignored. Octets after the payload (link padding)
/// are ignored, as the Payload Length field is authoritative.
pub fn decode(buf: &[u8]) -> Result<GrePacket<'_>, GreError> {
    if buf.len() < BASE_HEADER_LEN {
        return Err(GreError::Truncated {
            need: BASE_HEADER_LEN,
            have: buf.len(),
        });
    }
    let b0 = buf[0];
    let b1 = buf[1];
    let version = b1 & VERSION_MASK;
    if version != VERSION {
        return Err(GreError::BadVersion(version));
    }
    let protocol = u16::from_be_bytes([buf[2], buf[3]]);
    if protocol != PROTOCOL_PPP {
        return Err(GreError::BadProtocol(protocol));
    }
    if b0 & FLAG_K == 0 {
        return Err(GreError::NoKey);
    }
    if b0 & (FLAG_C | FLAG_R | FLAG_STRICT) != 0 {
        return Err(GreError::UnsupportedFlags(b0));
    }
    let payload_len = u16::from_be_bytes([buf[4], buf[5]]);
    let call_id = u16::from_be_bytes([buf[6], buf[7]]);
    let mut pos = BASE_HEADER_LEN;
    let read_u32 = |pos: &mut usize| -> Result<u32, GreError> {
        let s = buf.get(*pos..*pos + 4).ok_or(GreError::Truncated {
            need: *pos + 4,
            have: buf.len(),
        })?;
        *pos += 4;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let seq = if b0 & FLAG_S != 0 {
        Some(read_u32(&mut pos)?)
    } else {
        None
    };
    let ack = if b1 & FLAG_A != 0 {
        Some(read_u32(&mut pos)?)
    } else {
        None
    };
    if payload_len > 0 && seq.is_none() {
        return Err(GreError::PayloadWithoutSequence);
    }
    let end = pos + usize::from(payload_len);
    let payload = buf.get(pos..end).ok_or(GreError::Truncated {
        need: end,
        have: buf.len(),
    })?;
    Ok(GrePacket {
        header: GreHeader {
            payload_len,
            call_id,
            seq,
            ack,
        },
        payload,
    })
}

/// The Call ID of a GRE packet, for demultiplexing before full decoding.
/// `None` if the packet is not an enhanced GRE (version 1, PPP) packet.
pub fn peek_call_id(buf: &[u8]) -> Option<u16> {
    if buf.len() < BASE_HEADER_LEN
        || buf[1] & VERSION_MASK != VERSION
        || u16::from_be_bytes([buf[2], buf[3]]) != PROTOCOL_PPP
    {
        return None;
    }
    Some(u16::from_be_bytes([buf[6], buf[7]]))
}
