//! The L2TP header (RFC 2661 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
//! |           Tunnel ID           |           Session ID          |
//! |             Ns (opt)          |             Nr (opt)          |
//! |      Offset Size (opt)        |    Offset pad... (opt)
//! ```

use thiserror::Error;

/// T: control message (§3.1).
pub const FLAG_TYPE: u16 = 0x8000;
/// L: the Length field is present.
pub const FLAG_LENGTH: u16 = 0x4000;
/// S: the Ns and Nr fields are present.
pub const FLAG_SEQUENCE: u16 = 0x0800;
/// O: the Offset Size field is present.
pub const FLAG_OFFSET: u16 = 0x0200;
/// P: priority (data messages only).
pub const FLAG_PRIORITY: u16 = 0x0100;
/// The version L2TP v2 uses (§3.1; 1 is L2F).
pub const VERSION: u16 = 2;
/// Size of a control message header: flags, Length, IDs, Ns, Nr.
pub const CONTROL_HEADER_LEN: usize = 12;

/// Why a datagram is not an L2TP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Fewer octets than the header needs.
    #[error("truncated L2TP header")]
    Truncated,
    /// Version other than 2 (§3.1: "packets with an unknown Ver field MUST
    /// be discarded").
    #[error("L2TP version {0} (only 2 is supported)")]
    Version(u16),
    /// A control message without the L or S bit, or with O or P (§3.1:
    /// "L bit MUST be set to 1 for control messages", S likewise, O and P
    /// MUST be 0).
    #[error("control message with invalid header bits")]
    ControlBits,
    /// The Length field disagrees with the datagram.
    #[error("L2TP length field {length} but {available} octets")]
    Length {
        /// The Length field.
        length: u16,
        /// Octets in the datagram.
        available: usize,
    },
    /// The offset padding runs past the message.
    #[error("L2TP offset beyond the message")]
    Offset,
}

/// The header of a control message (§3.1; the L and S bits are always set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlHeader {
    /// The recipient's tunnel ID (0 before it is known, §3.1).
    pub tunnel_id: u16,
    /// The recipient's session ID (0 for tunnel-level messages).
    pub session_id: u16,
    /// Sequence number of this message (§5.8).
    pub ns: u16,
    /// Next sequence number expected from the peer.
    pub nr: u16,
}

impl ControlHeader {
    /// Writes a header for a message whose AVPs are `body_len` octets.
    pub fn encode(&self, body_len: usize, out: &mut Vec<u8>) {
        let length = (CONTROL_HEADER_LEN + body_len) as u16;
        let flags = FLAG_TYPE | FLAG_LENGTH | FLAG_SEQUENCE | VERSION;
        for v in [
            flags,
            length,
            self.tunnel_id,
            self.session_id,
            self.ns,
            self.nr,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// Encodes a whole control message: header and AVP octets.
    pub fn to_message(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONTROL_HEADER_LEN + body.len());
        self.encode(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }
}

/// A datagram split into its header and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A control message; `body` holds its AVPs (empty: a ZLB, §5.8).
    Control {
        /// The header.
        header: ControlHeader,
        /// The AVP octets.
        body: &'a [u8],
    },
    /// A data message.
    Data(crate::data::DataMessage<'a>),
}

pub(crate) fn read_u16(buf: &[u8], at: usize) -> Result<u16, HeaderError> {
    buf.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(HeaderError::Truncated)
}

/// Splits a datagram into header and body (control or data).
pub fn decode(buf: &[u8]) -> Result<Packet<'_>, HeaderError> {
    let flags = read_u16(buf, 0)?;
    let version = flags & 0x000f;
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    if flags & FLAG_TYPE == 0 {
        return crate::data::decode_data(buf).map(Packet::Data);
    }
    if flags & FLAG_LENGTH == 0
        || flags & FLAG_SEQUENCE == 0
        || flags & (FLAG_OFFSET | FLAG_PRIORITY) != 0
    {
        return Err(HeaderError::ControlBits);
    }
    let length = read_u16(buf, 2)?;
    if (length as usize) < CONTROL_HEADER_LEN || length as usize > buf.len() {
        return Err(HeaderError::Length {
            length,
            available: buf.len(),
        });
    }
    let header = ControlHeader {
        tunnel_id: read_u16(buf, 4)?,
        session_id: read_u16(buf, 6)?,
        ns: read_u16(buf, 8)?,
        nr: read_u16(buf, 10)?,
    };
    Ok(Packet::Control {
        header,
        body: &buf[CONTROL_HEADER_LEN..length as usize],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_header_round_trips() {
        let h = ControlHeader {
            tunnel_id: 0x1234,
            session_id: 0,
            ns: 65535,
            nr: 7,
        };
        let bytes = h.to_message(&[1, 2, 3]);
        assert_eq!(
            bytes,
            [0xc8, 0x02, 0, 15, 0x12, 0x34, 0, 0, 0xff, 0xff, 0, 7, 1, 2, 3]
        );
        assert_eq!(
            decode(&bytes),
            Ok(Packet::Control {
                header: h,
                body: &[1, 2, 3]
            })
        );
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        assert_eq!(decode(&[0xc8]), Err(HeaderError::Truncated));
        assert_eq!(decode(&[0xc8, 0x03, 0, 12]), Err(HeaderError::Version(3)));
        // Control without S.
        assert_eq!(
            decode(&[0xc0, 0x02, 0, 8, 0, 1, 0, 0]),
            Err(HeaderError::ControlBits)
        );
        // Length beyond the datagram.
        let mut m = ControlHeader {
            tunnel_id: 1,
            session_id: 0,
            ns: 0,
            nr: 0,
        }
        .to_message(&[]);
        m[3] = 40;
        assert!(matches!(decode(&m), Err(HeaderError::Length { .. })));
    }

    #[test]
    fn trailing_octets_after_length_are_ignored() {
        let mut m = ControlHeader {
            tunnel_id: 1,
            session_id: 2,
            ns: 3,
            nr: 4,
        }
        .to_message(&[9]);
        m.extend_from_slice(&[0xaa, 0xbb]);
        match decode(&m).unwrap() {
            Packet::Control { body, .. } => assert_eq!(body, &[9]),
            Packet::Data(_) => panic!("decoded as data"),
        }
    }
}
