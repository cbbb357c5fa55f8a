//! Attribute-Value Pairs (RFC 2661 §4.1, §4.4) and hidden AVPs (§4.3).
//!
//! ```text
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! |         Attribute Type        |        Attribute Value...
//! ```

use md5::{Digest, Md5};
use thiserror::Error;

/// M bit: the recipient must understand the AVP (§4.1).
pub const FLAG_MANDATORY: u16 = 0x8000;
/// H bit: the value is hidden (§4.3).
pub const FLAG_HIDDEN: u16 = 0x4000;
const FLAG_RESERVED: u16 = 0x3c00;
const LENGTH_MASK: u16 = 0x03ff;
/// The AVP header: flags and length, Vendor ID, Attribute Type.
pub const AVP_HEADER_LEN: usize = 6;
/// Attribute type of the Random Vector AVP (§4.4.1, used by §4.3).
pub const ATTR_RANDOM_VECTOR: u16 = 36;

/// Why AVP octets could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AvpError {
    /// The AVP header or value runs past the message.
    #[error("truncated AVP")]
    Truncated,
    /// A Length field below the 6-octet header.
    #[error("AVP length {0} below the header size")]
    BadLength(u16),
    /// A known attribute with a value of the wrong size (§4.4).
    #[error("attribute {attribute} has a value of {length} octets")]
    BadValue {
        /// The attribute type.
        attribute: u16,
        /// Value length seen.
        length: usize,
    },
    /// An AVP with the M bit we do not know: §4.2 says to tear down the
    /// session or tunnel the message belongs to.
    #[error("unknown mandatory attribute {attribute} from vendor {vendor}")]
    UnknownMandatory {
        /// Vendor ID (0: IETF).
        vendor: u16,
        /// Attribute type.
        attribute: u16,
    },
    /// A hidden AVP without a shared secret to reveal it.
    #[error("hidden attribute {0} but no tunnel secret is configured")]
    HiddenWithoutSecret(u16),
    /// A hidden AVP before any Random Vector AVP (§4.3).
    #[error("hidden attribute {0} without a preceding Random Vector")]
    HiddenWithoutRandomVector(u16),
    /// A hidden value whose embedded length exceeds what was sent.
    #[error("hidden attribute {0} does not decrypt to a valid length (wrong secret?)")]
    HiddenLength(u16),
    /// A value too long for the 10-bit Length field.
    #[error("attribute {0} value too long to encode")]
    TooLong(u16),
}

/// Result Code AVP value (§4.4.2): used by StopCCN and CDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultCode {
    /// Result code (meaning depends on the message, §4.4.2).
    pub result: u16,
    /// Error code, when result is 2 "general error".
    pub error: Option<u16>,
    /// Optional human-readable message.
    pub message: Vec<u8>,
}

/// Q.931 Cause Code AVP value (§4.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Q931Cause {
    /// Cause code.
    pub cause: u16,
    /// Cause message.
    pub message_code: u8,
    /// Advisory text.
    pub advisory: Vec<u8>,
}

/// Call Errors AVP value (§4.4.6, WEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallErrors {
    /// CRC errors.
    pub crc: u32,
    /// Framing errors.
    pub framing: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeouts: u32,
    /// Alignment errors.
    pub alignment: u32,
}

/// The typed value of an AVP (§4.4). IETF attributes this crate acts on
/// are typed; others (proxy authentication and LCP AVPs of §4.4.5) are
/// kept as octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvpValue {
    /// 0: Message Type (§4.4.1).
    MessageType(u16),
    /// 1: Result Code (§4.4.2).
    ResultCode(ResultCode),
    /// 2: Protocol Version: version, revision (§4.4.3; 1.0 for RFC 2661).
    ProtocolVersion(u8, u8),
    /// 3: Framing Capabilities (bit 1 async, bit 0 sync).
    FramingCapabilities(u32),
    /// 4: Bearer Capabilities (bit 1 analog, bit 0 digital).
    BearerCapabilities(u32),
    /// 5: Tie Breaker.
    TieBreaker([u8; 8]),
    /// 6: Firmware Revision.
    FirmwareRevision(u16),
    /// 7: Host Name.
    HostName(Vec<u8>),
    /// 8: Vendor Name.
    VendorName(Vec<u8>),
    /// 9: Assigned Tunnel ID.
    AssignedTunnelId(u16),
    /// 10: Receive Window Size.
    ReceiveWindowSize(u16),
    /// 11: Challenge.
    Challenge(Vec<u8>),
    /// 12: Q.931 Cause Code.
    Q931Cause(Q931Cause),
    /// 13: Challenge Response (an MD5 digest).
    ChallengeResponse([u8; 16]),
    /// 14: Assigned Session ID.
    AssignedSessionId(u16),
    /// 15: Call Serial Number.
    CallSerialNumber(u32),
    /// 16: Minimum BPS.
    MinimumBps(u32),
    /// 17: Maximum BPS.
    MaximumBps(u32),
    /// 18: Bearer Type.
    BearerType(u32),
    /// 19: Framing Type.
    FramingType(u32),
    /// 21: Called Number.
    CalledNumber(Vec<u8>),
    /// 22: Calling Number.
    CallingNumber(Vec<u8>),
    /// 23: Sub-Address.
    SubAddress(Vec<u8>),
    /// 24: (Tx) Connect Speed.
    TxConnectSpeed(u32),
    /// 25: Physical Channel ID.
    PhysicalChannelId(u32),
    /// 34: Call Errors.
    CallErrors(CallErrors),
    /// 35: ACCM: send, receive (§4.4.6, SLI).
    Accm {
        /// Send ACCM.
        send: u32,
        /// Receive ACCM.
        receive: u32,
    },
    /// 36: Random Vector (§4.4.1 and §4.3).
    RandomVector(Vec<u8>),
    /// 37: Private Group ID.
    PrivateGroupId(Vec<u8>),
    /// 38: Rx Connect Speed.
    RxConnectSpeed(u32),
    /// 39: Sequencing Required (no value).
    SequencingRequired,
    /// Any other attribute (vendor AVPs, proxy authentication and LCP
    /// AVPs 26-33, unknown optional ones): kept as octets.
    Raw {
        /// Vendor ID (0: IETF).
        vendor: u16,
        /// Attribute type.
        attribute: u16,
        /// The value.
        value: Vec<u8>,
    },
}

/// One AVP: its flags and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp {
    /// The M bit.
    pub mandatory: bool,
    /// The H bit: hide the value on the wire (needs the secret and a
    /// preceding Random Vector, §4.3).
    pub hidden: bool,
    /// The value.
    pub value: AvpValue,
}

impl Avp {
    /// A mandatory, not hidden AVP: what §4.4 asks for most attributes.
    pub fn mandatory(value: AvpValue) -> Self {
        Avp {
            mandatory: true,
            hidden: false,
            value,
        }
    }

    /// An optional, not hidden AVP.
    pub fn optional(value: AvpValue) -> Self {
        Avp {
            mandatory: false,
            hidden: false,
            value,
        }
    }
}

fn u16_of(v: &[u8]) -> u16 {
    u16::from_be_bytes([v[0], v[1]])
}

fn u32_of(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}

impl AvpValue {
    /// (Vendor ID, Attribute Type).
    pub fn kind(&self) -> (u16, u16) {
        use AvpValue::*;
        let attribute = match self {
            MessageType(_) => 0,
            ResultCode(_) => 1,
            ProtocolVersion(..) => 2,
            FramingCapabilities(_) => 3,
            BearerCapabilities(_) => 4,
            TieBreaker(_) => 5,
            FirmwareRevision(_) => 6,
            HostName(_) => 7,
            VendorName(_) => 8,
            AssignedTunnelId(_) => 9,
            ReceiveWindowSize(_) => 10,
            Challenge(_) => 11,
            Q931Cause(_) => 12,
            ChallengeResponse(_) => 13,
            AssignedSessionId(_) => 14,
            CallSerialNumber(_) => 15,
            MinimumBps(_) => 16,
            MaximumBps(_) => 17,
            BearerType(_) => 18,
            FramingType(_) => 19,
            CalledNumber(_) => 21,
            CallingNumber(_) => 22,
            SubAddress(_) => 23,
            TxConnectSpeed(_) => 24,
            PhysicalChannelId(_) => 25,
            CallErrors(_) => 34,
            Accm { .. } => 35,
            RandomVector(_) => 36,
            PrivateGroupId(_) => 37,
            RxConnectSpeed(_) => 38,
            SequencingRequired => 39,
            Raw {
                vendor, attribute, ..
            } => return (*vendor, *attribute),
        };
        (0, attribute)
    }

    /// Parses a value; `Ok(None)` for an unknown attribute, kept raw by
    /// the caller.
    fn parse(vendor: u16, attribute: u16, v: &[u8]) -> Result<Option<AvpValue>, AvpError> {
        use AvpValue::*;
        if vendor != 0 {
            return Ok(None);
        }
        let bad = || AvpError::BadValue {
            attribute,
            length: v.len(),
        };
        let exact = |n: usize| if v.len() == n { Ok(()) } else { Err(bad()) };
        Ok(Some(match attribute {
            0 => {
                exact(2)?;
                MessageType(u16_of(v))
            }
            1 => {
                // §4.4.2: result code, then optionally error code and message.
                if v.len() < 2 || v.len() == 3 {
                    return Err(bad());
                }
                ResultCode(self::ResultCode {
                    result: u16_of(v),
                    error: (v.len() >= 4).then(|| u16_of(&v[2..])),
                    message: v.get(4..).unwrap_or_default().to_vec(),
                })
            }
            2 => {
                exact(2)?;
                ProtocolVersion(v[0], v[1])
            }
            3 => {
                exact(4)?;
                FramingCapabilities(u32_of(v))
            }
            4 => {
                exact(4)?;
                BearerCapabilities(u32_of(v))
            }
            5 => TieBreaker(v.try_into().map_err(|_| bad())?),
            6 => {
                exact(2)?;
                FirmwareRevision(u16_of(v))
            }
            7 => HostName(v.to_vec()),
            8 => VendorName(v.to_vec()),
            9 => {
                exact(2)?;
                AssignedTunnelId(u16_of(v))
            }
            10 => {
                exact(2)?;
                ReceiveWindowSize(u16_of(v))
            }
            11 => Challenge(v.to_vec()),
            12 => {
                if v.len() < 3 {
                    return Err(bad());
                }
                Q931Cause(self::Q931Cause {
                    cause: u16_of(v),
                    message_code: v[2],
                    advisory: v[3..].to_vec(),
                })
            }
            13 => ChallengeResponse(v.try_into().map_err(|_| bad())?),
            14 => {
                exact(2)?;
                AssignedSessionId(u16_of(v))
            }
            15 | 16 | 17 | 18 | 19 | 24 | 25 | 38 => {
                exact(4)?;
                let n = u32_of(v);
                match attribute {
                    15 => CallSerialNumber(n),
                    16 => MinimumBps(n),
                    17 => MaximumBps(n),
                    18 => BearerType(n),
                    19 => FramingType(n),
                    24 => TxConnectSpeed(n),
                    25 => PhysicalChannelId(n),
                    _ => RxConnectSpeed(n),
                }
            }
            21 => CalledNumber(v.to_vec()),
            22 => CallingNumber(v.to_vec()),
            23 => SubAddress(v.to_vec()),
            // 26-33: LCP CONFREQs and proxy authentication: kept raw.
            26..=33 => return Ok(None),
            34 => {
                // §4.4.6: 2 reserved octets, then six 32-bit counters.
                exact(26)?;
                let c = |i: usize| u32_of(&v[2 + 4 * i..]);
                CallErrors(self::CallErrors {
                    crc: c(0),
                    framing: c(1),
                    hardware_overruns: c(2),
                    buffer_overruns: c(3),
                    timeouts: c(4),
                    alignment: c(5),
                })
            }
            35 => {
                exact(10)?;
                Accm {
                    send: u32_of(&v[2..]),
                    receive: u32_of(&v[6..]),
                }
            }
            36 => RandomVector(v.to_vec()),
            37 => PrivateGroupId(v.to_vec()),
            39 => {
                exact(0)?;
                SequencingRequired
            }
            _ => return Ok(None),
        }))
    }

    /// Appends the value octets.
    fn write_value(&self, out: &mut Vec<u8>) {
        use AvpValue::*;
        match self {
            MessageType(n) | FirmwareRevision(n) | AssignedTunnelId(n) | ReceiveWindowSize(n)
            | AssignedSessionId(n) => out.extend_from_slice(&n.to_be_bytes()),
            ResultCode(r) => {
                out.extend_from_slice(&r.result.to_be_bytes());
                if r.error.is_some() || !r.message.is_empty() {
                    out.extend_from_slice(&r.error.unwrap_or(0).to_be_bytes());
                    out.extend_from_slice(&r.message);
                }
            }
            ProtocolVersion(v, r) => out.extend_from_slice(&[*v, *r]),
            FramingCapabilities(n)
            | BearerCapabilities(n)
            | CallSerialNumber(n)
            | MinimumBps(n)
            | MaximumBps(n)
            | BearerType(n)
            | FramingType(n)
            | TxConnectSpeed(n)
            | PhysicalChannelId(n)
            | RxConnectSpeed(n) => out.extend_from_slice(&n.to_be_bytes()),
            TieBreaker(b) => out.extend_from_slice(b),
            ChallengeResponse(b) => out.extend_from_slice(b),
            HostName(b) | VendorName(b) | Challenge(b) | CalledNumber(b) | CallingNumber(b)
            | SubAddress(b) | RandomVector(b) | PrivateGroupId(b) => out.extend_from_slice(b),
            Q931Cause(q) => {
                out.extend_from_slice(&q.cause.to_be_bytes());
                out.push(q.message_code);
                out.extend_from_slice(&q.advisory);
            }
            CallErrors(c) => {
                out.extend_from_slice(&[0, 0]);
                for n in [
                    c.crc,
                    c.framing,
                    c.hardware_overruns,
                    c.buffer_overruns,
                    c.timeouts,
                    c.alignment,
                ] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            Accm { send, receive } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send.to_be_bytes());
                out.extend_from_slice(&receive.to_be_bytes());
            }
            SequencingRequired => {}
            Raw { value, .. } => out.extend_from_slice(value),
        }
    }
}

/// The MD5 key stream of §4.3 over `data` (in place). `hide` selects the
/// direction: the chaining input is always the ciphertext block.
///
/// §4.3: b(1) = MD5(Attribute Type + secret + RV), c(1) = p(1) xor b(1);
/// b(i) = MD5(secret + c(i-1)), c(i) = p(i) xor b(i).
fn hide_xor(attribute: u16, secret: &[u8], random_vector: &[u8], data: &mut [u8], hide: bool) {
    let mut digest: [u8; 16] = {
        let mut h = Md5::new();
        h.update(attribute.to_be_bytes());
        h.update(secret);
        h.update(random_vector);
        h.finalize().into()
    };
    for chunk in data.chunks_mut(16) {
        let mut cipher = [0u8; 16];
        for (i, b) in chunk.iter_mut().enumerate() {
            if hide {
                *b ^= digest[i];
                cipher[i] = *b;
            } else {
                cipher[i] = *b;
                *b ^= digest[i];
            }
        }
        let mut h = Md5::new();
        h.update(secret);
        h.update(&cipher[..chunk.len()]);
        digest = h.finalize().into();
    }
}

/// Hides a value (§4.3): the "Original Attribute Value Length" (2 octets),
/// the value and `padding`, then the MD5 key stream over all of it.
pub fn hide_value(
    attribute: u16,
    secret: &[u8],
    random_vector: &[u8],
    value: &[u8],
    padding: &[u8],
) -> Vec<u8> {
    let mut data = Vec::with_capacity(2 + value.len() + padding.len());
    data.extend_from_slice(&(value.len() as u16).to_be_bytes());
    data.extend_from_slice(value);
    data.extend_from_slice(padding);
    hide_xor(attribute, secret, random_vector, &mut data, true);
    data
}

/// Reveals a hidden value (§4.3), dropping the length subfield and padding.
pub fn reveal_value(
    attribute: u16,
    secret: &[u8],
    random_vector: &[u8],
    hidden: &[u8],
) -> Result<Vec<u8>, AvpError> {
    let mut data = hidden.to_vec();
    hide_xor(attribute, secret, random_vector, &mut data, false);
    if data.len() < 2 {
        return Err(AvpError::HiddenLength(attribute));
    }
    let length = u16_of(&data) as usize;
    if length > data.len() - 2 {
        return Err(AvpError::HiddenLength(attribute));
    }
    Ok(data[2..2 + length].to_vec())
}

/// Decodes every AVP of a control message body. Hidden values are revealed
/// with `secret` and the last Random Vector seen (§4.3).
pub fn decode_avps(mut body: &[u8], secret: Option<&[u8]>) -> Result<Vec<Avp>, AvpError> {
    let mut avps = Vec::new();
    let mut random_vector: Option<Vec<u8>> = None;
    while !body.is_empty() {
        if body.len() < AVP_HEADER_LEN {
            return Err(AvpError::Truncated);
        }
        let bits = u16_of(body);
        let length = bits & LENGTH_MASK;
        if (length as usize) < AVP_HEADER_LEN {
            return Err(AvpError::BadLength(length));
        }
        if length as usize > body.len() {
            return Err(AvpError::Truncated);
        }
        let vendor = u16_of(&body[2..]);
        let attribute = u16_of(&body[4..]);
        let raw = &body[AVP_HEADER_LEN..length as usize];
        body = &body[length as usize..];
        let mandatory = bits & FLAG_MANDATORY != 0;
        let hidden = bits & FLAG_HIDDEN != 0;
        // §4.1: reserved bits set make the AVP unrecognized.
        let recognised_bits = bits & FLAG_RESERVED == 0;
        let value_owned;
        let value: &[u8] = if hidden {
            let secret = secret.ok_or(AvpError::HiddenWithoutSecret(attribute))?;
            let rv = random_vector
                .as_deref()
                .ok_or(AvpError::HiddenWithoutRandomVector(attribute))?;
            value_owned = reveal_value(attribute, secret, rv, raw)?;
            &value_owned
        } else {
            raw
        };
        if !recognised_bits && !mandatory {
            // §4.1: an AVP with a reserved bit set is unrecognized; an
            // unrecognized optional AVP is ignored.
            continue;
        }
        let typed = if recognised_bits {
            AvpValue::parse(vendor, attribute, value)?
        } else {
            None
        };
        let value = match typed {
            Some(v) => v,
            None if mandatory
                && (vendor != 0 || !recognised_bits || !(26..=33).contains(&attribute)) =>
            {
                return Err(AvpError::UnknownMandatory { vendor, attribute })
            }
            None => AvpValue::Raw {
                vendor,
                attribute,
                value: value.to_vec(),
            },
        };
        if let AvpValue::RandomVector(rv) = &value {
            random_vector = Some(rv.clone());
        }
        avps.push(Avp {
            mandatory,
            hidden,
            value,
        });
    }
    Ok(avps)
}

/// Encodes AVPs, hiding those marked hidden with `secret` and the last
/// preceding Random Vector (§4.3; no padding is added).
pub fn encode_avps(avps: &[Avp], secret: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), AvpError> {
    let mut random_vector: Option<&[u8]> = None;
    let mut value = Vec::new();
    for avp in avps {
        let (vendor, attribute) = avp.value.kind();
        value.clear();
        avp.value.write_value(&mut value);
        if avp.hidden {
            let secret = secret.ok_or(AvpError::HiddenWithoutSecret(attribute))?;
            let rv = random_vector.ok_or(AvpError::HiddenWithoutRandomVector(attribute))?;
            value = hide_value(attribute, secret, rv, &value, &[]);
        }
        let length = AVP_HEADER_LEN + value.len();
        if length > LENGTH_MASK as usize {
            return Err(AvpError::TooLong(attribute));
        }
        let mut bits = length as u16;
        if avp.mandatory {
            bits |= FLAG_MANDATORY;
        }
        if avp.hidden {
            bits |= FLAG_HIDDEN;
        }
        out.extend_from_slice(&bits.to_be_bytes());
        out.extend_from_slice(&vendor.to_be_bytes());
        out.extend_from_slice(&attribute.to_be_bytes());
        out.extend_from_slice(&value);
        if let AvpValue::RandomVector(rv) = &avp.value {
            random_vector = Some(rv);
        }
    }
    Ok(())
}

/// The Challenge Response of §4.4.3 / §5.1.1: MD5 over the CHAP-style ID
/// (the Message Type of the message carrying the response: 2 for SCCRP,
/// 3 for SCCCN), the secret and the peer's challenge.
pub fn challenge_response(message_type: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([message_type]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_values() -> Vec<AvpValue> {
        use AvpValue::*;
        vec![
            MessageType(1),
            ResultCode(super::ResultCode {
                result: 2,
                error: Some(8),
                message: b"unknown AVP".to_vec(),
            }),
            ResultCode(super::ResultCode {
                result: 1,
                error: None,
                message: Vec::new(),
            }),
            ProtocolVersion(1, 0),
            FramingCapabilities(3),
            BearerCapabilities(3),
            TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]),
            FirmwareRevision(0x0680),
            HostName(b"lns".to_vec()),
            VendorName(b"ras".to_vec()),
            AssignedTunnelId(0xbeef),
            ReceiveWindowSize(8),
            Challenge(vec![9; 16]),
            Q931Cause(super::Q931Cause {
                cause: 16,
                message_code: 1,
                advisory: b"bye".to_vec(),
            }),
            ChallengeResponse([7; 16]),
            AssignedSessionId(42),
            CallSerialNumber(1000),
            MinimumBps(1),
            MaximumBps(2),
            BearerType(2),
            FramingType(1),
            CalledNumber(b"123".to_vec()),
            CallingNumber(b"456".to_vec()),
            SubAddress(b"7".to_vec()),
            TxConnectSpeed(100_000_000),
            PhysicalChannelId(5),
            CallErrors(super::CallErrors {
                crc: 1,
                framing: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeouts: 5,
                alignment: 6,
            }),
            Accm {
                send: 0xffff_ffff,
                receive: 0,
            },
            RandomVector(vec![1, 2, 3, 4]),
            PrivateGroupId(b"g".to_vec()),
            RxConnectSpeed(9600),
            SequencingRequired,
            Raw {
                vendor: 311,
                attribute: 1,
                value: vec![1, 2],
            },
            Raw {
                vendor: 0,
                attribute: 30,
                value: b"proxy-user".to_vec(),
            },
        ]
    }

    #[test]
    fn every_value_round_trips() {
        let avps: Vec<Avp> = all_values().into_iter().map(Avp::optional).collect();
        let mut out = Vec::new();
        encode_avps(&avps, None, &mut out).unwrap();
        assert_eq!(decode_avps(&out, None).unwrap(), avps);
    }

    #[test]
    fn message_type_avp_wire_format() {
        let mut out = Vec::new();
        encode_avps(&[Avp::mandatory(AvpValue::MessageType(1))], None, &mut out).unwrap();
        assert_eq!(out, [0x80, 0x08, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn unknown_mandatory_is_an_error_and_unknown_optional_is_kept() {
        let mandatory = [0x80, 0x07, 0, 0, 0, 99, 5];
        assert_eq!(
            decode_avps(&mandatory, None),
            Err(AvpError::UnknownMandatory {
                vendor: 0,
                attribute: 99
            })
        );
        let vendor_mandatory = [0x80, 0x06, 0x01, 0x37, 0, 1];
        assert!(matches!(
            decode_avps(&vendor_mandatory, None),
            Err(AvpError::UnknownMandatory { vendor: 311, .. })
        ));
        let optional = [0x00, 0x07, 0, 0, 0, 99, 5];
        assert_eq!(
            decode_avps(&optional, None).unwrap()[0].value,
            AvpValue::Raw {
                vendor: 0,
                attribute: 99,
                value: vec![5]
            }
        );
    }

    #[test]
    fn reserved_bits_make_an_avp_unrecognized() {
        // Host Name with a reserved bit: optional is skipped, mandatory fails.
        assert_eq!(
            decode_avps(&[0x04, 0x07, 0, 0, 0, 7, b'x'], None),
            Ok(vec![])
        );
        assert_eq!(
            decode_avps(&[0x84, 0x07, 0, 0, 0, 7, b'x'], None),
            Err(AvpError::UnknownMandatory {
                vendor: 0,
                attribute: 7
            })
        );
    }

    #[test]
    fn bad_lengths_are_typed() {
        assert_eq!(
            decode_avps(&[0x80, 0x05, 0, 0, 0, 0], None),
            Err(AvpError::BadLength(5))
        );
        assert_eq!(
            decode_avps(&[0x80, 0x09, 0, 0, 0, 0, 0], None),
            Err(AvpError::Truncated)
        );
        assert_eq!(
            decode_avps(&[0x80, 0x07, 0, 0, 0, 0, 1], None),
            Err(AvpError::BadValue {
                attribute: 0,
                length: 1
            })
        );
    }

    #[test]
    fn hidden_avp_round_trips_and_needs_the_secret() {
        let avps = vec![
            Avp::mandatory(AvpValue::MessageType(10)),
            Avp::mandatory(AvpValue::RandomVector(vec![0x5a; 16])),
            Avp {
                mandatory: true,
                hidden: true,
                value: AvpValue::CallingNumber(
                    b"a calling number longer than one MD5 block".to_vec(),
                ),
            },
        ];
        let mut out = Vec::new();
        encode_avps(&avps, Some(b"secret"), &mut out).unwrap();
        assert!(!out.windows(9).any(|w| w == b"a calling"));
        assert_eq!(decode_avps(&out, Some(b"secret")).unwrap(), avps);
        assert!(matches!(
            decode_avps(&out, None),
            Err(AvpError::HiddenWithoutSecret(22))
        ));
        // Without the Random Vector first, hiding is refused.
        let mut out = Vec::new();
        assert_eq!(
            encode_avps(&avps[2..], Some(b"s"), &mut out),
            Err(AvpError::HiddenWithoutRandomVector(22))
        );
    }

    #[test]
    fn hidden_value_hand_checked_vector() {
        // One block, computed outside this crate (md5sum):
        // b1 = MD5(00 05 | "secret" | 01 02 03 04)
        //    = e1bea2fdf644177d0a15ddef01f69f24,
        // c1 = (00 02 'h' 'i') xor b1 = e1 bc ca 94.
        let hidden = hide_value(5, b"secret", &[1, 2, 3, 4], b"hi", &[]);
        assert_eq!(hex::encode(&hidden), "e1bcca94");
        assert_eq!(
            reveal_value(5, b"secret", &[1, 2, 3, 4], &hidden).unwrap(),
            b"hi"
        );
        // A second block chains on the first ciphertext block.
        let long = hide_value(5, b"k", &[9], &[0u8; 20], &[]);
        let mut h = Md5::new();
        h.update(b"k");
        h.update(&long[..16]);
        let b2: [u8; 16] = h.finalize().into();
        assert_eq!(&long[16..], &b2[..6]);
        // Padding is dropped on reveal.
        let padded = hide_value(7, b"k", &[9], b"name", &[0xaa; 11]);
        assert_eq!(reveal_value(7, b"k", &[9], &padded).unwrap(), b"name");
    }

    #[test]
    fn challenge_response_is_chap_md5() {
        // MD5(02 | "s3cret" | ab * 16), computed with Python's hashlib.
        let want = "cc619c0c2f448660b74bd59b654deb0d";
        assert_eq!(
            hex::encode(challenge_response(2, b"s3cret", &[0xab; 16])),
            want
        );
        assert_ne!(
            hex::encode(challenge_response(3, b"s3cret", &[0xab; 16])),
            want
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_avps(&bytes, Some(b"x"));
        }

        #[test]
        fn hide_reveal_round_trip(
            attribute in any::<u16>(),
            secret in proptest::collection::vec(any::<u8>(), 0..40),
            rv in proptest::collection::vec(any::<u8>(), 1..32),
            value in proptest::collection::vec(any::<u8>(), 0..100),
            pad in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let hidden = hide_value(attribute, &secret, &rv, &value, &pad);
            prop_assert_eq!(reveal_value(attribute, &secret, &rv, &hidden).unwrap(), value);
        }
    }
}
