//! SSTP packet codec (MS-SSTP §2.2.1 – §2.2.3 and the control messages of §2.2.9 ff.) and a
//! bounded streaming deframer for the HTTPS byte stream.
//!
//! MS-SSTP §2.2.1 packet header:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Version    |  Reserved   |C|   R   |        Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Version MUST be 0x10 (1.0). Length (12 bits) is the length of the whole
//! packet including the header. The Reserved/R bits "MUST be set to zero when
//! sent and MUST be ignored on receipt" (MS-SSTP §2.2.2), so this decoder
//! ignores them rather than rejecting them.

use std::ops::Range;

use crate::attributes::{Attribute, StatusInfo};

/// MS-SSTP §2.2.1: Version 1.0.
pub const SSTP_VERSION: u8 = 0x10;
/// Size of the SSTP packet header.
pub const HEADER_LEN: usize = 4;
/// Size of the control-message header that follows the packet header
/// (Message Type (2) | Num Attributes (2)), MS-SSTP §2.2.2.
pub const CONTROL_HEADER_LEN: usize = 4;
/// The largest packet the 12-bit Length field can describe.
pub const MAX_PACKET_LEN: usize = 0x0FFF;
/// The largest data-packet payload (a PPP frame).
pub const MAX_DATA_PAYLOAD: usize = MAX_PACKET_LEN - HEADER_LEN;
/// Length of a Call Connected message (MS-SSTP §2.2.11: 112 bytes).
pub const CALL_CONNECTED_LEN: usize = 112;

/// Codec errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not enough bytes for the structure being decoded.
    #[error("truncated SSTP packet")]
    Truncated,
    /// Version field is not 0x10.
    #[error("unsupported SSTP version 0x{0:02x}")]
    BadVersion(u8),
    /// Length field below the minimum for the packet kind.
    #[error("invalid SSTP packet length {0}")]
    BadLength(usize),
    /// The buffer does not hold exactly the declared length.
    #[error("SSTP length field says {declared} bytes but the packet has {actual}")]
    LengthMismatch {
        /// Length from the header.
        declared: usize,
        /// Bytes present.
        actual: usize,
    },
    /// An encoder was asked to produce more than 4095 bytes.
    #[error("SSTP packet of {0} bytes exceeds the 4095-byte maximum")]
    TooLarge(usize),
    /// Message Type is not one of MS-SSTP §2.2.2's values.
    #[error("unknown SSTP control message type {0}")]
    UnknownMessageType(u16),
    /// Attribute ID is not one of MS-SSTP §2.2.4's values.
    #[error("unknown SSTP attribute id {0}")]
    UnknownAttribute(u8),
    /// An attribute's Length field is wrong for its ID.
    #[error("attribute {id} has invalid length {len}")]
    BadAttributeLength {
        /// Attribute ID.
        id: u8,
        /// Length from the attribute header.
        len: usize,
    },
    /// Bytes remain after the declared number of attributes.
    #[error("trailing bytes after the last attribute")]
    TrailingBytes,
}

/// MS-SSTP §2.2.2 control message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MessageType {
    /// SSTP_MSG_CALL_CONNECT_REQUEST (§2.2.9).
    CallConnectRequest = 0x0001,
    /// SSTP_MSG_CALL_CONNECT_ACK (§2.2.10).
    CallConnectAck = 0x0002,
    /// SSTP_MSG_CALL_CONNECT_NAK.
    CallConnectNak = 0x0003,
    /// SSTP_MSG_CALL_CONNECTED (§2.2.11).
    CallConnected = 0x0004,
    /// SSTP_MSG_CALL_ABORT (§2.2.13).
    CallAbort = 0x0005,
    /// SSTP_MSG_CALL_DISCONNECT.
    CallDisconnect = 0x0006,
    /// SSTP_MSG_CALL_DISCONNECT_ACK.
    CallDisconnectAck = 0x0007,
    /// SSTP_MSG_ECHO_REQUEST.
    EchoRequest = 0x0008,
    /// SSTP_MSG_ECHO_RESPONSE (§2.2.15).
    EchoResponse = 0x0009,
}

impl std::fmt::Display for MessageType {
    /// MS-SSTP §2.2's name of the message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MessageType::CallConnectRequest => "Call Connect Request",
            MessageType::CallConnectAck => "Call Connect Acknowledge",
            MessageType::CallConnectNak => "Call Connect Nak",
            MessageType::CallConnected => "Call Connected",
            MessageType::CallAbort => "Call Abort",
            MessageType::CallDisconnect => "Call Disconnect",
            MessageType::CallDisconnectAck => "Call Disconnect Acknowledge",
            MessageType::EchoRequest => "Echo Request",
            MessageType::EchoResponse => "Echo Response",
        })
    }
}

impl MessageType {
    /// Parse a Message Type value.
    pub fn from_u16(v: u16) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::CallConnectRequest,
            2 => MessageType::CallConnectAck,
            3 => MessageType::CallConnectNak,
            4 => MessageType::CallConnected,
            5 => MessageType::CallAbort,
            6 => MessageType::CallDisconnect,
            7 => MessageType::CallDisconnectAck,
            8 => MessageType::EchoRequest,
            9 => MessageType::EchoResponse,
            _ => return None,
        })
    }
}

/// An SSTP control message (MS-SSTP §2.2.2): a message type and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// Message Type.
    pub msg_type: MessageType,
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl ControlMessage {
    /// A control message without attributes.
    pub fn new(msg_type: MessageType) -> ControlMessage {
        ControlMessage {
            msg_type,
            attributes: Vec::new(),
        }
    }

    /// MS-SSTP §2.2.9: Call Connect Request carrying the PPP protocol ID.
    pub fn call_connect_request() -> ControlMessage {
        ControlMessage {
            msg_type: MessageType::CallConnectRequest,
            attributes: vec![Attribute::EncapsulatedProtocolId(
                crate::attributes::ENCAPSULATED_PROTOCOL_PPP,
            )],
        }
    }

    /// A message with one optional Status Info attribute (Abort, Disconnect, Nak).
    pub fn with_status(msg_type: MessageType, status: Option<StatusInfo>) -> ControlMessage {
        ControlMessage {
            msg_type,
            attributes: status.into_iter().map(Attribute::StatusInfo).collect(),
        }
    }

    /// Total encoded length including the packet header.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + CONTROL_HEADER_LEN
            + self
                .attributes
                .iter()
                .map(Attribute::encoded_len)
                .sum::<usize>()
    }

    /// Append the encoded packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let len = self.encoded_len();
        if len > MAX_PACKET_LEN || self.attributes.len() > usize::from(u16::MAX) {
            return Err(CodecError::TooLarge(len));
        }
        out.reserve(len);
        write_header(out, true, len);
        out.extend_from_slice(&(self.msg_type as u16).to_be_bytes());
        out.extend_from_slice(&(self.attributes.len() as u16).to_be_bytes());
        for a in &self.attributes {
            a.encode(out);
        }
        Ok(())
    }

    /// Decode the body of a control packet (everything after the 4-byte
    /// packet header). The body's size is authoritative: the attributes must
    /// fill it exactly.
    pub fn decode_body(body: &[u8]) -> Result<ControlMessage, CodecError> {
        if body.len() < CONTROL_HEADER_LEN {
            return Err(CodecError::BadLength(body.len() + HEADER_LEN));
        }
        let raw_type = u16::from_be_bytes([body[0], body[1]]);
        let msg_type =
            MessageType::from_u16(raw_type).ok_or(CodecError::UnknownMessageType(raw_type))?;
        let count = usize::from(u16::from_be_bytes([body[2], body[3]]));
        let mut rest = &body[CONTROL_HEADER_LEN..];
        // Every attribute takes at least 4 bytes, so this bounds the allocation.
        if count * crate::attributes::ATTRIBUTE_HEADER_LEN > rest.len() {
            return Err(CodecError::Truncated);
        }
        let mut attributes = Vec::with_capacity(count);
        for _ in 0..count {
            let (a, used) = Attribute::decode(rest)?;
            attributes.push(a);
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes);
        }
        Ok(ControlMessage {
            msg_type,
            attributes,
        })
    }
}

/// A decoded SSTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// MS-SSTP §2.2.3 data packet: the payload is one PPP frame.
    Data(&'a [u8]),
    /// MS-SSTP §2.2.2 control packet.
    Control(ControlMessage),
}

/// The parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The C bit.
    pub control: bool,
    /// Total packet length.
    pub length: usize,
}

/// Parse and validate a packet header from the first 4 bytes of `buf`.
pub fn parse_header(buf: &[u8]) -> Result<Header, CodecError> {
    if buf.len() < HEADER_LEN {
        return Err(CodecError::Truncated);
    }
    if buf[0] != SSTP_VERSION {
        return Err(CodecError::BadVersion(buf[0]));
    }
    // buf[1]: 7 reserved bits (ignored on receipt) and the C bit.
    let control = buf[1] & 0x01 != 0;
    let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]) & 0x0FFF);
    let min = if control {
        HEADER_LEN + CONTROL_HEADER_LEN
    } else {
        HEADER_LEN
    };
    if length < min {
        return Err(CodecError::BadLength(length));
    }
    Ok(Header { control, length })
}

fn write_header(out: &mut Vec<u8>, control: bool, len: usize) {
    debug_assert!(len <= MAX_PACKET_LEN);
    out.push(SSTP_VERSION);
    out.push(u8::from(control));
    out.extend_from_slice(&(len as u16 & 0x0FFF).to_be_bytes());
}

/// Decode exactly one packet; `buf` must be exactly the packet.
pub fn decode_packet(buf: &[u8]) -> Result<Packet<'_>, CodecError> {
    let h = parse_header(buf)?;
    if h.length != buf.len() {
        return Err(CodecError::LengthMismatch {
            declared: h.length,
            actual: buf.len(),
        });
    }
    let body = &buf[HEADER_LEN..];
    if h.control {
        ControlMessage::decode_body(body).map(Packet::Control)
    } else {
        Ok(Packet::Data(body))
    }
}

/// Append an SSTP data packet carrying `ppp_frame` to `out` (MS-SSTP §2.2.3).
/// Only the header is written besides the payload copy: no allocation
/// happens when `out` has capacity.
pub fn encode_data(ppp_frame: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let len = HEADER_LEN + ppp_frame.len();
    if len > MAX_PACKET_LEN {
        return Err(CodecError::TooLarge(len));
    }
    out.reserve(len);
    write_header(out, false, len);
    out.extend_from_slice(ppp_frame);
    Ok(())
}

/// Append several data packets back to back. Stops at the first frame that
/// is too large (frames before it have been written); returns the number of
/// packets written.
pub fn encode_data_packets<'a, I>(frames: I, out: &mut Vec<u8>) -> Result<usize, CodecError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut n = 0;
    for f in frames {
        encode_data(f, out)?;
        n += 1;
    }
    Ok(n)
}

/// Capacity of the deframer's buffer: room for two maximal packets, so one
/// complete packet can always be extracted while the next is arriving.
pub const DEFRAMER_CAPACITY: usize = 2 * MAX_PACKET_LEN;

/// Streaming deframer for the HTTPS byte stream.
///
/// The buffer never grows past [`DEFRAMER_CAPACITY`]: [`Deframer::push`]
/// accepts only what fits and returns how much it took; the caller drains
/// packets with [`Deframer::next_packet`] and pushes the rest. A framing error
/// (bad version or length) is fatal: MS-SSTP §3.1.5.1 says the connection
/// "MUST be forcefully aborted" when delineation fails, and the deframer stays
/// in the error state.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    error: Option<CodecError>,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer::new()
    }
}

impl Deframer {
    /// An empty deframer (allocates its fixed buffer once).
    pub fn new() -> Deframer {
        Deframer {
            // Grows on demand up to DEFRAMER_CAPACITY; see `shrink`.
            buf: Vec::new(),
            start: 0,
            error: None,
        }
    }

    /// Give the buffer's memory back when nothing is buffered (an idle
    /// connection should cost almost nothing).
    pub fn shrink(&mut self) {
        if self.start >= self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// Append stream bytes; returns how many were accepted (possibly fewer
    /// than offered when the buffer is full, or 0 after a framing error).
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.error.is_some() {
            return 0;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let n = data.len().min(DEFRAMER_CAPACITY - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// Bytes buffered and not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Free space for [`Deframer::push`] (after compaction).
    pub fn free_space(&self) -> usize {
        DEFRAMER_CAPACITY - self.buffered()
    }

    /// The framing error, if one occurred.
    pub fn error(&self) -> Option<&CodecError> {
        self.error.as_ref()
    }

    /// The next complete packet (header included) with a valid header, or
    /// `None` when more bytes are needed. Decode it with [`decode_packet`].
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, CodecError> {
        match self.next_range()? {
            Some(r) => Ok(Some(&self.buf[r])),
            None => Ok(None),
        }
    }

    pub(crate) fn next_range(&mut self) -> Result<Option<Range<usize>>, CodecError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let h = match parse_header(avail) {
            Ok(h) => h,
            Err(e) => {
                self.error = Some(e.clone());
                return Err(e);
            }
        };
        if avail.len() < h.length {
            return Ok(None);
        }
        let r = self.start..self.start + h.length;
        self.start += h.length;
        Ok(Some(r))
    }

    pub(crate) fn slice(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }
}
