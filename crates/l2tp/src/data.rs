//! Data messages (RFC 2661 §3.1, §5.4): PPP frames addressed by tunnel
//! and session ID, with optional Ns/Nr when the LNS asked for sequencing
//! (Sequencing Required AVP, §4.4.4). Decoding borrows the payload and
//! encoding appends to the caller's buffer, so the hot path allocates
//! nothing.

use crate::header::{
    read_u16, HeaderError, FLAG_LENGTH, FLAG_OFFSET, FLAG_PRIORITY, FLAG_SEQUENCE, FLAG_TYPE,
    VERSION,
};
use crate::seq::seq_lt;

/// A decoded data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataMessage<'a> {
    /// The recipient's tunnel ID.
    pub tunnel_id: u16,
    /// The recipient's session ID.
    pub session_id: u16,
    /// Ns and Nr when the S bit is set (§3.1).
    pub sequence: Option<(u16, u16)>,
    /// The P bit: preferential treatment asked (§3.1).
    pub priority: bool,
    /// The PPP frame.
    pub payload: &'a [u8],
}

/// Decodes a data message (T bit clear). The version was checked by the
/// caller or is checked here.
pub fn decode_data(buf: &[u8]) -> Result<DataMessage<'_>, HeaderError> {
    let flags = read_u16(buf, 0)?;
    if flags & 0x000f != VERSION {
        return Err(HeaderError::Version(flags & 0x000f));
    }
    if flags & FLAG_TYPE != 0 {
        return Err(HeaderError::ControlBits);
    }
    let mut at = 2;
    let mut end = buf.len();
    if flags & FLAG_LENGTH != 0 {
        let length = read_u16(buf, at)?;
        if length as usize > buf.len() || (length as usize) < 6 {
            return Err(HeaderError::Length {
                length,
                available: buf.len(),
            });
        }
        end = length as usize;
        at += 2;
    }
    let tunnel_id = read_u16(buf, at)?;
    let session_id = read_u16(buf, at + 2)?;
    at += 4;
    let sequence = if flags & FLAG_SEQUENCE != 0 {
        let ns = read_u16(buf, at)?;
        let nr = read_u16(buf, at + 2)?;
        at += 4;
        Some((ns, nr))
    } else {
        None
    };
    if flags & FLAG_OFFSET != 0 {
        let offset = read_u16(buf, at)? as usize;
        at += 2 + offset;
    }
    if at > end {
        return Err(if flags & FLAG_OFFSET != 0 {
            HeaderError::Offset
        } else {
            HeaderError::Truncated
        });
    }
    Ok(DataMessage {
        tunnel_id,
        session_id,
        sequence,
        priority: flags & FLAG_PRIORITY != 0,
        payload: &buf[at..end],
    })
}

/// Appends a data message to `out`: no Length field (it is optional on
/// data messages, §3.1), Ns/Nr when `sequence` is given.
pub fn encode_data(
    tunnel_id: u16,
    session_id: u16,
    sequence: Option<(u16, u16)>,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let mut flags = VERSION;
    if sequence.is_some() {
        flags |= FLAG_SEQUENCE;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&tunnel_id.to_be_bytes());
    out.extend_from_slice(&session_id.to_be_bytes());
    if let Some((ns, nr)) = sequence {
        out.extend_from_slice(&ns.to_be_bytes());
        out.extend_from_slice(&nr.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Sequencing of one session's data messages (§5.4 when Sequencing
/// Required was given): our Ns, and the next Ns expected from the peer.
/// Data messages are never retransmitted, so Nr is only informational
/// (§3.1: "Nr is reserved" on data messages, sent as our expected Ns);
/// late packets are dropped because PPP (and the compression and
/// encryption under it) expects order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataSequence {
    next_ns: u16,
    expected: u16,
}

impl DataSequence {
    /// The Ns/Nr pair for the next message sent.
    pub fn next_send(&mut self) -> (u16, u16) {
        let ns = self.next_ns;
        self.next_ns = ns.wrapping_add(1);
        (ns, self.expected)
    }

    /// Whether a received message with this Ns is in order (or after a
    /// gap, which is accepted: the lost ones never come); a late or
    /// duplicated message returns false and should be dropped.
    pub fn accept(&mut self, ns: u16) -> bool {
        if seq_lt(ns, self.expected) {
            return false;
        }
        self.expected = ns.wrapping_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_with_and_without_sequence() {
        for seq in [None, Some((65535, 3))] {
            let mut out = vec![0xee]; // appended, not overwritten
            encode_data(7, 9, seq, &[0xff, 0x03, 0xc0, 0x21], &mut out);
            let m = decode_data(&out[1..]).unwrap();
            assert_eq!(m.tunnel_id, 7);
            assert_eq!(m.session_id, 9);
            assert_eq!(m.sequence, seq);
            assert_eq!(m.payload, &[0xff, 0x03, 0xc0, 0x21]);
            assert_eq!(out[0], 0xee);
        }
    }

    #[test]
    fn data_with_length_and_offset() {
        // L, O set: length 14, offset size 2 with 2 pad octets.
        let buf = [
            0x42, 0x02, 0, 14, 0, 1, 0, 2, 0, 2, 0xaa, 0xbb, 0x11, 0x22, 0x99,
        ];
        let m = decode_data(&buf).unwrap();
        assert_eq!(m.payload, &[0x11, 0x22]);
        let bad = [0x02, 0x02, 0, 1, 0, 2, 0, 9, 0];
        assert_eq!(decode_data(&bad), Err(HeaderError::Offset));
    }

    #[test]
    fn data_sequence_drops_late_and_wraps() {
        let mut s = DataSequence {
            next_ns: 65535,
            expected: 65534,
        };
        assert_eq!(s.next_send(), (65535, 65534));
        assert_eq!(s.next_send().0, 0);
        assert!(s.accept(65534));
        assert!(!s.accept(65534));
        assert!(s.accept(1)); // a gap across the wrap
        assert!(!s.accept(65535));
        assert!(s.accept(2));
    }
}
