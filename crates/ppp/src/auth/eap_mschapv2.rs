//! EAP-MSCHAPv2 framing (EAP type 26), draft-kamath-pppext-eap-mschapv2
//! §2 and [MS-CHAP] (Microsoft open specification).
//!
//! The Type-Data of an EAP Request/Response of type 26 starts with an
//! OpCode. Challenge, Response, Success-Request and Failure-Request carry
//! MS-CHAPv2-ID (1) and MS-Length (2, = EAP Length − 5, i.e. the octets
//! from the OpCode on) and then the MS-CHAPv2 packet's data (RFC 2759
//! §3–§6); the peer's Success and Failure Responses are the OpCode alone.

use std::fmt;

use super::eap::{self, TYPE_MSCHAPV2};
use super::packet::{clamp, ParseError, MAX_TEXT};

/// draft-kamath-pppext-eap-mschapv2 §2: OpCodes.
pub const OP_CHALLENGE: u8 = 1;
pub const OP_RESPONSE: u8 = 2;
pub const OP_SUCCESS: u8 = 3;
pub const OP_FAILURE: u8 = 4;
pub const OP_CHANGE_PASSWORD: u8 = 7;

/// The Type-Data of an EAP-MSCHAPv2 packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EapMsChapV2Packet<'a> {
    /// Request, OpCode 1: a 16-octet challenge and the server's Name.
    Challenge {
        ms_id: u8,
        challenge: [u8; 16],
        name: &'a [u8],
    },
    /// Response, OpCode 2: the 49-octet MS-CHAPv2 Response Value
    /// (RFC 2759 §4) and the user's Name.
    Response {
        ms_id: u8,
        value: &'a [u8],
        name: &'a [u8],
    },
    /// Request, OpCode 3: "S=... M=..." (RFC 2759 §5).
    SuccessRequest { ms_id: u8, message: &'a [u8] },
    /// Request, OpCode 4: "E=... R=... C=... V=... M=..." (RFC 2759 §6).
    FailureRequest { ms_id: u8, message: &'a [u8] },
    /// Response, OpCode 3: the peer acknowledges the Success-Request.
    SuccessResponse,
    /// Response, OpCode 4: the peer acknowledges the Failure-Request.
    FailureResponse,
}

impl fmt::Debug for EapMsChapV2Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EapMsChapV2Packet::Challenge { ms_id, name, .. } => write!(
                f,
                "Challenge {{ ms_id: {ms_id}, name: {:?}, .. }}",
                String::from_utf8_lossy(name)
            ),
            EapMsChapV2Packet::Response { ms_id, name, .. } => write!(
                f,
                "Response {{ ms_id: {ms_id}, name: {:?}, .. }}",
                String::from_utf8_lossy(name)
            ),
            EapMsChapV2Packet::SuccessRequest { ms_id, message } => write!(
                f,
                "SuccessRequest {{ ms_id: {ms_id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
            EapMsChapV2Packet::FailureRequest { ms_id, message } => write!(
                f,
                "FailureRequest {{ ms_id: {ms_id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
            EapMsChapV2Packet::SuccessResponse => f.write_str("SuccessResponse"),
            EapMsChapV2Packet::FailureResponse => f.write_str("FailureResponse"),
        }
    }
}

/// Parse the Type-Data (after the Type octet) of an EAP Request
/// (`is_request`) or Response of type 26.
pub fn parse(type_data: &[u8], is_request: bool) -> Result<EapMsChapV2Packet<'_>, ParseError> {
    let &opcode = type_data
        .first()
        .ok_or(ParseError::Malformed("EAP-MSCHAPv2 OpCode"))?;
    if !is_request {
        match opcode {
            OP_SUCCESS => return Ok(EapMsChapV2Packet::SuccessResponse),
            OP_FAILURE => return Ok(EapMsChapV2Packet::FailureResponse),
            _ => {}
        }
    }
    if type_data.len() < 4 {
        return Err(ParseError::Malformed("EAP-MSCHAPv2 header"));
    }
    let ms_id = type_data[1];
    let ms_length = usize::from(u16::from_be_bytes([type_data[2], type_data[3]]));
    if ms_length < 4 || ms_length > type_data.len() {
        return Err(ParseError::Malformed("EAP-MSCHAPv2 MS-Length"));
    }
    let body = &type_data[4..ms_length];
    let value_and_name = |size: usize| -> Result<(&[u8], &[u8]), ParseError> {
        match body.split_first() {
            Some((&vs, rest)) if usize::from(vs) == size && rest.len() >= size => {
                Ok(rest.split_at(size))
            }
            _ => Err(ParseError::Malformed("EAP-MSCHAPv2 Value-Size")),
        }
    };
    match (opcode, is_request) {
        (OP_CHALLENGE, true) => {
            let (value, name) = value_and_name(16)?;
            let mut challenge = [0u8; 16];
            challenge.copy_from_slice(value);
            Ok(EapMsChapV2Packet::Challenge {
                ms_id,
                challenge,
                name,
            })
        }
        (OP_RESPONSE, false) => {
            let (value, name) = value_and_name(super::mschapv2::RESPONSE_VALUE_LEN)?;
            Ok(EapMsChapV2Packet::Response { ms_id, value, name })
        }
        (OP_SUCCESS, true) => Ok(EapMsChapV2Packet::SuccessRequest {
            ms_id,
            message: body,
        }),
        (OP_FAILURE, true) => Ok(EapMsChapV2Packet::FailureRequest {
            ms_id,
            message: body,
        }),
        _ => Err(ParseError::Malformed("EAP-MSCHAPv2 OpCode")),
    }
}

/// Type-Data with the OpCode/MS-CHAPv2-ID/MS-Length header.
fn with_header(opcode: u8, ms_id: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body_len: usize = parts.iter().map(|p| p.len()).sum();
    let ms_length = (4 + body_len).min(usize::from(u16::MAX) - 5) as u16;
    let mut out = Vec::with_capacity(4 + body_len);
    out.push(opcode);
    out.push(ms_id);
    out.extend_from_slice(&ms_length.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// An EAP Request carrying an EAP-MSCHAPv2 Challenge.
pub fn build_challenge(eap_id: u8, ms_id: u8, challenge: &[u8; 16], name: &[u8]) -> Vec<u8> {
    let data = with_header(
        OP_CHALLENGE,
        ms_id,
        &[&[16], challenge, clamp(name, MAX_TEXT)],
    );
    eap::build_request(eap_id, TYPE_MSCHAPV2, &data)
}

/// An EAP Response carrying an EAP-MSCHAPv2 Response.
pub fn build_response(eap_id: u8, ms_id: u8, value: &[u8; 49], name: &[u8]) -> Vec<u8> {
    let data = with_header(OP_RESPONSE, ms_id, &[&[49], value, clamp(name, MAX_TEXT)]);
    eap::build_response(eap_id, TYPE_MSCHAPV2, &data)
}

/// An EAP Request carrying an EAP-MSCHAPv2 Success-Request.
pub fn build_success_request(eap_id: u8, ms_id: u8, message: &[u8]) -> Vec<u8> {
    let data = with_header(OP_SUCCESS, ms_id, &[clamp(message, MAX_TEXT)]);
    eap::build_request(eap_id, TYPE_MSCHAPV2, &data)
}

/// An EAP Request carrying an EAP-MSCHAPv2 Failure-Request.
pub fn build_failure_request(eap_id: u8, ms_id: u8, message: &[u8]) -> Vec<u8> {
    let data = with_header(OP_FAILURE, ms_id, &[clamp(message, MAX_TEXT)]);
    eap::build_request(eap_id, TYPE_MSCHAPV2, &data)
}

/// The peer's Success Response (OpCode 3 alone).
pub fn build_success_response(eap_id: u8) -> Vec<u8> {
    eap::build_response(eap_id, TYPE_MSCHAPV2, &[OP_SUCCESS])
}

/// The peer's Failure Response (OpCode 4 alone).
pub fn build_failure_response(eap_id: u8) -> Vec<u8> {
    eap::build_response(eap_id, TYPE_MSCHAPV2, &[OP_FAILURE])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::eap::{parse_packet, EapPacket};

    #[test]
    fn ms_length_is_eap_length_minus_5() {
        let p = build_challenge(9, 9, &[7; 16], b"srv");
        let eap_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        assert_eq!(eap_len, p.len());
        let ms_len = usize::from(u16::from_be_bytes([p[7], p[8]]));
        assert_eq!(ms_len, eap_len - 5);
        let EapPacket::Request { data, .. } = parse_packet(&p).unwrap() else {
            panic!()
        };
        assert_eq!(
            parse(data, true).unwrap(),
            EapMsChapV2Packet::Challenge {
                ms_id: 9,
                challenge: [7; 16],
                name: b"srv"
            }
        );
        assert_eq!(build_success_response(3), vec![2, 3, 0, 6, 26, 3]);
    }
}
