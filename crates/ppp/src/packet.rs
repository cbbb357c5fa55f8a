//! The control-packet format shared by LCP and every NCP (RFC 1661 §5) and
//! the Type-Length-Data configuration options they carry (RFC 1661 §6).

use thiserror::Error;

/// RFC 1661 §5 and RFC 1570 / RFC 1962 packet codes.
pub mod code {
    pub const CONFIGURE_REQUEST: u8 = 1;
    pub const CONFIGURE_ACK: u8 = 2;
    pub const CONFIGURE_NAK: u8 = 3;
    pub const CONFIGURE_REJECT: u8 = 4;
    pub const TERMINATE_REQUEST: u8 = 5;
    pub const TERMINATE_ACK: u8 = 6;
    pub const CODE_REJECT: u8 = 7;
    pub const PROTOCOL_REJECT: u8 = 8;
    pub const ECHO_REQUEST: u8 = 9;
    pub const ECHO_REPLY: u8 = 10;
    pub const DISCARD_REQUEST: u8 = 11;
    /// RFC 1570 §2.1.
    pub const IDENTIFICATION: u8 = 12;
    /// RFC 1570 §2.2.
    pub const TIME_REMAINING: u8 = 13;
    /// RFC 1962 §2.2 (CCP only).
    pub const RESET_REQUEST: u8 = 14;
    /// RFC 1962 §2.2 (CCP only).
    pub const RESET_ACK: u8 = 15;
}

/// Why a control packet or option list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("packet shorter than its 4-byte header ({0} bytes)")]
    TooShort(usize),
    #[error("length field {declared} is below 4 or beyond the {available} bytes received")]
    BadLength { declared: usize, available: usize },
    #[error("option at offset {offset} has an invalid length {length}")]
    BadOption { offset: usize, length: usize },
}

/// A borrowed control packet: Code, Identifier, and the data inside Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket<'a> {
    pub code: u8,
    pub id: u8,
    pub data: &'a [u8],
}

impl<'a> ControlPacket<'a> {
    /// Parse a control packet. RFC 1661 §5: octets beyond Length are padding
    /// and are ignored; a Length larger than the packet makes it invalid.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PacketError> {
        if bytes.len() < 4 {
            return Err(PacketError::TooShort(bytes.len()));
        }
        let declared = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if declared < 4 || declared > bytes.len() {
            return Err(PacketError::BadLength {
                declared,
                available: bytes.len(),
            });
        }
        Ok(ControlPacket {
            code: bytes[0],
            id: bytes[1],
            data: &bytes[4..declared],
        })
    }

    /// The packet as bytes, with a correct Length.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        write_packet(&mut out, self.code, self.id, self.data);
        out
    }
}

/// Append a control packet with the given code, identifier and data.
/// Data longer than 65531 bytes is truncated so the Length field stays valid.
pub fn write_packet(out: &mut Vec<u8>, code: u8, id: u8, data: &[u8]) {
    let data = &data[..data.len().min(u16::MAX as usize - 4)];
    out.push(code);
    out.push(id);
    out.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// One configuration option: Type and the Data after the Length octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigOption<'a> {
    pub kind: u8,
    pub data: &'a [u8],
}

impl ConfigOption<'_> {
    /// Append this option (Type, Length, Data) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_option(out, self.kind, self.data);
    }
}

/// Append an option. RFC 1661 §6: Length covers Type, Length and Data, so
/// data longer than 253 bytes cannot be expressed and is truncated.
pub fn write_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    out.push((data.len() + 2) as u8);
    out.extend_from_slice(data);
}

/// Iterate over the options of a Configure-Request/Ack/Nak/Reject.
pub fn options(data: &[u8]) -> OptionIter<'_> {
    OptionIter { data, offset: 0 }
}

/// Parse all options at once, failing on the first malformed one.
/// RFC 1661 §5.1: a packet with an invalid option length is silently
/// discarded, so callers drop the whole packet on error.
pub fn parse_options(data: &[u8]) -> Result<Vec<ConfigOption<'_>>, PacketError> {
    options(data).collect()
}

/// Iterator over Type-Length-Data options; yields one error and then stops.
pub struct OptionIter<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<ConfigOption<'a>, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.offset..];
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 2 || (rest[1] as usize) < 2 || rest[1] as usize > rest.len() {
            let length = rest.get(1).copied().unwrap_or(0) as usize;
            let offset = self.offset;
            self.offset = self.data.len();
            return Some(Err(PacketError::BadOption { offset, length }));
        }
        let length = rest[1] as usize;
        self.offset += length;
        Some(Ok(ConfigOption {
            kind: rest[0],
            data: &rest[2..length],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_ignores_padding() {
        let bytes = [1, 7, 0, 8, 1, 4, 5, 0xdc, 0xee, 0xee];
        let packet = ControlPacket::parse(&bytes).unwrap();
        assert_eq!(packet.code, 1);
        assert_eq!(packet.id, 7);
        assert_eq!(packet.data, &[1, 4, 5, 0xdc]);
        let opts = parse_options(packet.data).unwrap();
        assert_eq!(
            opts,
            vec![ConfigOption {
                kind: 1,
                data: &[5, 0xdc]
            }]
        );
        assert_eq!(packet.to_vec(), &bytes[..8]);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(
            ControlPacket::parse(&[1, 1, 0]),
            Err(PacketError::TooShort(3))
        );
        assert!(ControlPacket::parse(&[1, 1, 0, 3]).is_err());
        assert!(ControlPacket::parse(&[1, 1, 0, 9, 0]).is_err());
        assert!(parse_options(&[1, 1]).is_err());
        assert!(parse_options(&[1, 5, 0]).is_err());
        assert!(parse_options(&[1]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(p) = ControlPacket::parse(&bytes) {
                let n = options(p.data).count();
                proptest::prop_assert!(n <= p.data.len());
            }
        }
    }
}
