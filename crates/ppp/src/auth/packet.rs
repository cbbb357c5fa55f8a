//! The packet layout shared by PAP (RFC 1334 §2.2), CHAP (RFC 1994 §4)
//! and EAP (RFC 3748 §4): Code (1), Identifier (1), Length (2, big
//! endian, counting the header), then the body. Octets past Length are
//! padding and ignored (RFC 1661 §5); a Length beyond the received data
//! makes the packet malformed.
//!
//! Also the CHAP framing used by CHAP-MD5 and MS-CHAPv2 (RFC 1994 §4.1,
//! §4.2).

use std::fmt;

/// Why a packet could not be parsed. Such packets are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet shorter than its header")]
    Truncated,
    #[error("length field {0} inconsistent with {1} octets received")]
    BadLength(u16, usize),
    #[error("unknown code {0}")]
    UnknownCode(u8),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// The header and body of a packet, body limited to the Length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub code: u8,
    pub id: u8,
    pub body: &'a [u8],
}

/// Parse the Code/Identifier/Length header.
pub fn parse_header(data: &[u8]) -> Result<Header<'_>, ParseError> {
    if data.len() < 4 {
        return Err(ParseError::Truncated);
    }
    let length = u16::from_be_bytes([data[2], data[3]]);
    let len = usize::from(length);
    if len < 4 || len > data.len() {
        return Err(ParseError::BadLength(length, data.len()));
    }
    Ok(Header {
        code: data[0],
        id: data[1],
        body: &data[4..len],
    })
}

/// The longest name or message this module puts in a packet: keeps every
/// packet well below the 1500-octet default MRU (RFC 1661 §6.1).
pub const MAX_TEXT: usize = 1024;

/// `text` cut to at most `max` octets.
pub fn clamp(text: &[u8], max: usize) -> &[u8] {
    &text[..text.len().min(max)]
}

/// Build a packet from its parts. Callers keep parts small (see
/// [`MAX_TEXT`]); the total is additionally capped at 65535 octets.
pub fn build(code: u8, id: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.extend_from_slice(&[code, id, 0, 0]);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.truncate(usize::from(u16::MAX));
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// RFC 1994 §4: CHAP codes.
pub mod chap_code {
    pub const CHALLENGE: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const SUCCESS: u8 = 3;
    pub const FAILURE: u8 = 4;
}

/// A CHAP packet (RFC 1994 §4), as used by CHAP-MD5 and MS-CHAPv2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChapPacket<'a> {
    /// RFC 1994 §4.1: Value-Size, Value, Name.
    Challenge {
        id: u8,
        value: &'a [u8],
        name: &'a [u8],
    },
    /// RFC 1994 §4.1: Value-Size, Value, Name.
    Response {
        id: u8,
        value: &'a [u8],
        name: &'a [u8],
    },
    /// RFC 1994 §4.2: Message.
    Success { id: u8, message: &'a [u8] },
    /// RFC 1994 §4.2: Message.
    Failure { id: u8, message: &'a [u8] },
}

impl fmt::Debug for ChapPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChapPacket::Challenge { id, value, name } => write!(
                f,
                "Challenge {{ id: {id}, value: {} octets, name: {:?} }}",
                value.len(),
                String::from_utf8_lossy(name)
            ),
            ChapPacket::Response { id, value, name } => write!(
                f,
                "Response {{ id: {id}, value: {} octets, name: {:?} }}",
                value.len(),
                String::from_utf8_lossy(name)
            ),
            ChapPacket::Success { id, message } => write!(
                f,
                "Success {{ id: {id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
            ChapPacket::Failure { id, message } => write!(
                f,
                "Failure {{ id: {id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
        }
    }
}

/// Parse a CHAP packet (RFC 1994 §4). Codes other than 1..4 (such as
/// MS-CHAP Change-Password, code 7) are [`ParseError::UnknownCode`].
pub fn parse_chap_packet(data: &[u8]) -> Result<ChapPacket<'_>, ParseError> {
    let h = parse_header(data)?;
    match h.code {
        chap_code::CHALLENGE | chap_code::RESPONSE => {
            let (&size, rest) = h
                .body
                .split_first()
                .ok_or(ParseError::Malformed("CHAP Value-Size"))?;
            let size = usize::from(size);
            // RFC 1994 §4.1: "The Value-Size field is one octet and
            // indicates the length of the Value field" — at least one.
            if size == 0 || size > rest.len() {
                return Err(ParseError::Malformed("CHAP Value"));
            }
            let (value, name) = rest.split_at(size);
            Ok(if h.code == chap_code::CHALLENGE {
                ChapPacket::Challenge {
                    id: h.id,
                    value,
                    name,
                }
            } else {
                ChapPacket::Response {
                    id: h.id,
                    value,
                    name,
                }
            })
        }
        chap_code::SUCCESS => Ok(ChapPacket::Success {
            id: h.id,
            message: h.body,
        }),
        chap_code::FAILURE => Ok(ChapPacket::Failure {
            id: h.id,
            message: h.body,
        }),
        other => Err(ParseError::UnknownCode(other)),
    }
}

/// Build a CHAP Challenge or Response (RFC 1994 §4.1). `value` must be at
/// most 255 octets (it is cut otherwise); `name` is cut to [`MAX_TEXT`].
pub fn build_chap_value(code: u8, id: u8, value: &[u8], name: &[u8]) -> Vec<u8> {
    let value = clamp(value, 255);
    build(
        code,
        id,
        &[&[value.len() as u8], value, clamp(name, MAX_TEXT)],
    )
}

/// Build a CHAP Success or Failure (RFC 1994 §4.2).
pub fn build_chap_message(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
    build(code, id, &[clamp(message, MAX_TEXT)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(parse_header(&[1, 2, 0]), Err(ParseError::Truncated));
        assert_eq!(
            parse_header(&[1, 2, 0, 3]),
            Err(ParseError::BadLength(3, 4))
        );
        assert_eq!(
            parse_header(&[1, 2, 0, 6, 9]),
            Err(ParseError::BadLength(6, 5))
        );
        // Padding past Length is ignored.
        let h = parse_header(&[1, 2, 0, 5, 9, 7, 7]).unwrap();
        assert_eq!(h.body, &[9]);
    }

    #[test]
    fn chap_roundtrip() {
        let p = build_chap_value(chap_code::CHALLENGE, 7, &[1, 2, 3], b"srv");
        assert_eq!(
            parse_chap_packet(&p).unwrap(),
            ChapPacket::Challenge {
                id: 7,
                value: &[1, 2, 3],
                name: b"srv"
            }
        );
        assert!(parse_chap_packet(&[1, 1, 0, 5, 0]).is_err());
        assert!(parse_chap_packet(&[1, 1, 0, 6, 5, 0]).is_err());
        assert_eq!(
            parse_chap_packet(&[7, 1, 0, 4]),
            Err(ParseError::UnknownCode(7))
        );
    }
}
