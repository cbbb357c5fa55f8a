//! SSTP attributes (MS-SSTP §2.2.4 – §2.2.8).
//!
//! Every attribute starts with the common 4-byte header of MS-SSTP §2.2.4:
//! `Reserved (1) | Attribute ID (1) | R (4 bits) | Length (12 bits)`, where
//! Length covers the whole attribute including this header. Reserved fields
//! are written as zero and ignored on receipt, as the specification requires.
//! Each attribute's exact length is checked on decode.

use crate::codec::CodecError;

/// MS-SSTP §2.2.4: SSTP_ATTRIB_ENCAPSULATED_PROTOCOL_ID.
pub const ATTRIB_ENCAPSULATED_PROTOCOL_ID: u8 = 0x01;
/// MS-SSTP §2.2.4: SSTP_ATTRIB_STATUS_INFO.
pub const ATTRIB_STATUS_INFO: u8 = 0x02;
/// MS-SSTP §2.2.4: SSTP_ATTRIB_CRYPTO_BINDING.
pub const ATTRIB_CRYPTO_BINDING: u8 = 0x03;
/// MS-SSTP §2.2.4: SSTP_ATTRIB_CRYPTO_BINDING_REQ.
pub const ATTRIB_CRYPTO_BINDING_REQ: u8 = 0x04;
/// MS-SSTP §2.2.8: SSTP_ATTRIB_NO_ERROR, used as the AttribID of a Status
/// Info attribute that does not refer to another attribute.
pub const ATTRIB_NO_ERROR: u8 = 0x00;

/// MS-SSTP §2.2.5: SSTP_ENCAPSULATED_PROTOCOL_PPP.
pub const ENCAPSULATED_PROTOCOL_PPP: u16 = 0x0001;

/// Size of the attribute header (MS-SSTP §2.2.4).
pub const ATTRIBUTE_HEADER_LEN: usize = 4;
/// MS-SSTP §2.2.5: the Encapsulated Protocol ID attribute is 6 bytes long.
pub const ENCAPSULATED_PROTOCOL_ID_LEN: usize = 6;
/// MS-SSTP §2.2.6: the Crypto Binding Request attribute is 40 (0x028) bytes.
pub const CRYPTO_BINDING_REQ_LEN: usize = 40;
/// MS-SSTP §2.2.7: the Crypto Binding attribute is 104 (0x068) bytes.
pub const CRYPTO_BINDING_LEN: usize = 104;
/// MS-SSTP §2.2.8: a Status Info attribute is its AttribValue plus 12 bytes.
pub const STATUS_INFO_MIN_LEN: usize = 12;

/// Length of the nonces of MS-SSTP §2.2.6 / §2.2.7.
pub const NONCE_LEN: usize = 32;

/// Status values of the Status Info attribute (MS-SSTP §2.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode(pub u32);

impl StatusCode {
    /// ATTRIB_STATUS_NO_ERROR.
    pub const NO_ERROR: StatusCode = StatusCode(0x0000_0000);
    /// ATTRIB_STATUS_DUPLICATE_ATTRIBUTE.
    pub const DUPLICATE_ATTRIBUTE: StatusCode = StatusCode(0x0000_0001);
    /// ATTRIB_STATUS_UNRECOGNIZED_ATTRIBUTE.
    pub const UNRECOGNIZED_ATTRIBUTE: StatusCode = StatusCode(0x0000_0002);
    /// ATTRIB_STATUS_INVALID_ATTRIB_VALUE_LENGTH.
    pub const INVALID_ATTRIB_VALUE_LENGTH: StatusCode = StatusCode(0x0000_0003);
    /// ATTRIB_STATUS_VALUE_NOT_SUPPORTED.
    pub const VALUE_NOT_SUPPORTED: StatusCode = StatusCode(0x0000_0004);
    /// ATTRIB_STATUS_UNACCEPTED_FRAME_RECEIVED.
    pub const UNACCEPTED_FRAME_RECEIVED: StatusCode = StatusCode(0x0000_0005);
    /// ATTRIB_STATUS_RETRY_COUNT_EXCEEDED.
    pub const RETRY_COUNT_EXCEEDED: StatusCode = StatusCode(0x0000_0006);
    /// ATTRIB_STATUS_INVALID_FRAME_RECEIVED.
    pub const INVALID_FRAME_RECEIVED: StatusCode = StatusCode(0x0000_0007);
    /// ATTRIB_STATUS_NEGOTIATION_TIMEOUT.
    pub const NEGOTIATION_TIMEOUT: StatusCode = StatusCode(0x0000_0008);
    /// ATTRIB_STATUS_ATTRIB_NOT_SUPPORTED_IN_MSG.
    pub const ATTRIB_NOT_SUPPORTED_IN_MSG: StatusCode = StatusCode(0x0000_0009);
    /// ATTRIB_STATUS_REQUIRED_ATTRIBUTE_MISSING.
    pub const REQUIRED_ATTRIBUTE_MISSING: StatusCode = StatusCode(0x0000_000A);
    /// ATTRIB_STATUS_STATUS_INFO_NOT_SUPPORTED_IN_MSG.
    pub const STATUS_INFO_NOT_SUPPORTED_IN_MSG: StatusCode = StatusCode(0x0000_000B);
}

impl std::fmt::Display for StatusCode {
    /// MS-SSTP §2.2.8's meaning of the status, in words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words = match self.0 {
            0 => "no error",
            1 => "duplicate attribute",
            2 => "unrecognized attribute",
            3 => "invalid attribute value length",
            4 => "value not supported",
            5 => "unaccepted frame received",
            6 => "retry count exceeded",
            7 => "invalid frame received",
            8 => "negotiation timeout",
            9 => "attribute not supported in message",
            10 => "required attribute missing",
            11 => "status info not supported in message",
            other => return write!(f, "status {other:#x}"),
        };
        f.write_str(words)
    }
}

impl std::fmt::Display for StatusInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        if self.attrib_id != 0 {
            write!(f, " (attribute {})", self.attrib_id)?;
        }
        Ok(())
    }
}

/// MS-SSTP §2.2.8 Status Info attribute body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// The attribute ID whose status is reported (or [`ATTRIB_NO_ERROR`]).
    pub attrib_id: u8,
    /// The status.
    pub status: StatusCode,
    /// The offending attribute's value (may be empty).
    pub value: Vec<u8>,
}

/// MS-SSTP §2.2.7 Crypto Binding attribute body. The 32-byte Cert Hash and
/// Compound MAC fields are stored with their padding: for SHA-1 only the
/// first 20 bytes are meaningful and the rest are the zero Padding fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoBindingAttr {
    /// Hash Protocol (1 = SHA-1, 2 = SHA-256); raw as received.
    pub hash_protocol: u8,
    /// The nonce echoed from the Call Connect Acknowledge.
    pub nonce: [u8; NONCE_LEN],
    /// Cert Hash plus Padding.
    pub cert_hash: [u8; 32],
    /// Compound MAC plus Padding1.
    pub compound_mac: [u8; 32],
}

/// An SSTP attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// MS-SSTP §2.2.5 Encapsulated Protocol ID.
    EncapsulatedProtocolId(u16),
    /// MS-SSTP §2.2.8 Status Info.
    StatusInfo(StatusInfo),
    /// MS-SSTP §2.2.7 Crypto Binding.
    CryptoBinding(CryptoBindingAttr),
    /// MS-SSTP §2.2.6 Crypto Binding Request.
    CryptoBindingReq {
        /// Hash Protocol Bitmask (bit 0x01 SHA-1, 0x02 SHA-256).
        hash_bitmask: u8,
        /// The server nonce.
        nonce: [u8; NONCE_LEN],
    },
}

impl Attribute {
    /// The Attribute ID of this attribute.
    pub fn id(&self) -> u8 {
        match self {
            Attribute::EncapsulatedProtocolId(_) => ATTRIB_ENCAPSULATED_PROTOCOL_ID,
            Attribute::StatusInfo(_) => ATTRIB_STATUS_INFO,
            Attribute::CryptoBinding(_) => ATTRIB_CRYPTO_BINDING,
            Attribute::CryptoBindingReq { .. } => ATTRIB_CRYPTO_BINDING_REQ,
        }
    }

    /// Encoded length including the 4-byte header.
    pub fn encoded_len(&self) -> usize {
        match self {
            Attribute::EncapsulatedProtocolId(_) => ENCAPSULATED_PROTOCOL_ID_LEN,
            Attribute::StatusInfo(s) => STATUS_INFO_MIN_LEN + s.value.len(),
            Attribute::CryptoBinding(_) => CRYPTO_BINDING_LEN,
            Attribute::CryptoBindingReq { .. } => CRYPTO_BINDING_REQ_LEN,
        }
    }

    /// Append the encoding to `out`. The caller has checked that the
    /// attribute fits in an SSTP packet (see [`crate::codec::ControlMessage::encode`]).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        debug_assert!(len <= 0x0FFF);
        // MS-SSTP §2.2.4: Reserved (1) | Attribute ID (1) | R:4 Length:12.
        out.push(0);
        out.push(self.id());
        out.extend_from_slice(&((len as u16) & 0x0FFF).to_be_bytes());
        match self {
            Attribute::EncapsulatedProtocolId(p) => out.extend_from_slice(&p.to_be_bytes()),
            Attribute::StatusInfo(s) => {
                // MS-SSTP §2.2.8: Reserved1 (3) | AttribID (1) | Status (4) | AttribValue.
                out.extend_from_slice(&[0, 0, 0, s.attrib_id]);
                out.extend_from_slice(&s.status.0.to_be_bytes());
                out.extend_from_slice(&s.value);
            }
            Attribute::CryptoBinding(b) => {
                // MS-SSTP §2.2.7: Reserved1 (3) | Hash Protocol (1) | Nonce (32)
                // | Cert Hash + Padding (32) | Compound MAC + Padding1 (32).
                out.extend_from_slice(&[0, 0, 0, b.hash_protocol]);
                out.extend_from_slice(&b.nonce);
                out.extend_from_slice(&b.cert_hash);
                out.extend_from_slice(&b.compound_mac);
            }
            Attribute::CryptoBindingReq {
                hash_bitmask,
                nonce,
            } => {
                // MS-SSTP §2.2.6: Reserved1 (3) | Hash Protocol Bitmask (1) | Nonce (32).
                out.extend_from_slice(&[0, 0, 0, *hash_bitmask]);
                out.extend_from_slice(nonce);
            }
        }
    }

    /// Decode one attribute from the start of `buf`; returns it and the
    /// number of bytes it occupied.
    pub fn decode(buf: &[u8]) -> Result<(Attribute, usize), CodecError> {
        if buf.len() < ATTRIBUTE_HEADER_LEN {
            return Err(CodecError::Truncated);
        }
        // buf[0] is Reserved: ignored on receipt (MS-SSTP §2.2.4).
        let id = buf[1];
        // The R nibble is reserved and ignored on receipt.
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]) & 0x0FFF);
        let bad_len = || CodecError::BadAttributeLength { id, len };
        if len < ATTRIBUTE_HEADER_LEN {
            return Err(bad_len());
        }
        if len > buf.len() {
            return Err(CodecError::Truncated);
        }
        let body = &buf[ATTRIBUTE_HEADER_LEN..len];
        let attr = match id {
            ATTRIB_ENCAPSULATED_PROTOCOL_ID => {
                if len != ENCAPSULATED_PROTOCOL_ID_LEN {
                    return Err(bad_len());
                }
                Attribute::EncapsulatedProtocolId(u16::from_be_bytes([body[0], body[1]]))
            }
            ATTRIB_STATUS_INFO => {
                if len < STATUS_INFO_MIN_LEN {
                    return Err(bad_len());
                }
                Attribute::StatusInfo(StatusInfo {
                    attrib_id: body[3],
                    status: StatusCode(u32::from_be_bytes([body[4], body[5], body[6], body[7]])),
                    value: body[8..].to_vec(),
                })
            }
            ATTRIB_CRYPTO_BINDING => {
                if len != CRYPTO_BINDING_LEN {
                    return Err(bad_len());
                }
                let mut b = CryptoBindingAttr {
                    hash_protocol: body[3],
                    nonce: [0; 32],
                    cert_hash: [0; 32],
                    compound_mac: [0; 32],
                };
                b.nonce.copy_from_slice(&body[4..36]);
                b.cert_hash.copy_from_slice(&body[36..68]);
                b.compound_mac.copy_from_slice(&body[68..100]);
                Attribute::CryptoBinding(b)
            }
            ATTRIB_CRYPTO_BINDING_REQ => {
                if len != CRYPTO_BINDING_REQ_LEN {
                    return Err(bad_len());
                }
                let mut nonce = [0u8; 32];
                nonce.copy_from_slice(&body[4..36]);
                Attribute::CryptoBindingReq {
                    hash_bitmask: body[3],
                    nonce,
                }
            }
            other => return Err(CodecError::UnknownAttribute(other)),
        };
        Ok((attr, len))
    }
}
