//! The RADIUS packet codec (RFC 2865 §3 and §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Authenticator (16)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attributes ...  (Type, Length, Value)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-
//! ```
//!
//! The decoder never panics: it refuses a Length outside 20..=4096, a
//! datagram shorter than its Length, and attributes whose length is below 2
//! or runs past the packet. Octets past the Length are padding and are
//! ignored, as RFC 2865 §3 requires.

use thiserror::Error;

/// Size of the fixed header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// Smallest legal Length (RFC 2865 §3).
pub const MIN_PACKET_LEN: usize = 20;
/// Largest legal Length (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Largest attribute value: the Length octet counts Type and Length too.
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Largest value of a sub-attribute inside a Vendor-Specific attribute
/// (253 − 4 octets of Vendor-Id − 2 octets of vendor type and length).
pub const MAX_VSA_SUB_VALUE_LEN: usize = MAX_ATTR_VALUE_LEN - 4 - 2;
/// Length of the Authenticator field.
pub const AUTHENTICATOR_LEN: usize = 16;

/// Attribute type of Vendor-Specific (RFC 2865 §5.26).
const VENDOR_SPECIFIC: u8 = 26;

/// The Code field (RFC 2865 §3, RFC 2866 §3, RFC 5176 §2.3, RFC 5997).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1
    AccessRequest,
    /// 2
    AccessAccept,
    /// 3
    AccessReject,
    /// 4 (RFC 2866)
    AccountingRequest,
    /// 5 (RFC 2866)
    AccountingResponse,
    /// 11
    AccessChallenge,
    /// 12 (RFC 5997)
    StatusServer,
    /// 13 (reserved)
    StatusClient,
    /// 40 (RFC 5176)
    DisconnectRequest,
    /// 41 (RFC 5176)
    DisconnectAck,
    /// 42 (RFC 5176)
    DisconnectNak,
    /// 43 (RFC 5176)
    CoaRequest,
    /// 44 (RFC 5176)
    CoaAck,
    /// 45 (RFC 5176)
    CoaNak,
    /// Any other code.
    Other(u8),
}

impl Code {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::DisconnectRequest => 40,
            Code::DisconnectAck => 41,
            Code::DisconnectNak => 42,
            Code::CoaRequest => 43,
            Code::CoaAck => 44,
            Code::CoaNak => 45,
            Code::Other(c) => c,
        }
    }

    /// The code for a wire value (never fails: unknown values are `Other`).
    pub fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            c => Code::Other(c),
        }
    }
}

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer than 20 octets: no complete header.
    #[error("datagram of {0} octets is shorter than the 20-octet header")]
    Short(usize),
    /// The Length field is outside 20..=4096 (RFC 2865 §3).
    #[error("Length field {0} is outside 20..=4096")]
    BadLength(u16),
    /// The datagram holds fewer octets than the Length field says.
    #[error("Length field {length} exceeds the {got} octets received")]
    Truncated {
        /// The Length field.
        length: u16,
        /// Octets received.
        got: usize,
    },
    /// An attribute has a length below 2 or runs past the packet.
    #[error("malformed attribute at offset {offset}")]
    BadAttribute {
        /// Offset of the attribute's Type octet in the packet.
        offset: usize,
    },
}

/// Why a packet or attribute could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// An attribute value longer than 253 octets (RFC 2865 §5).
    #[error("attribute {typ} value of {len} octets exceeds 253")]
    ValueTooLong {
        /// Attribute type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// A vendor sub-attribute value too long to fit.
    #[error("vendor sub-attribute {typ} value of {len} octets exceeds {MAX_VSA_SUB_VALUE_LEN}")]
    SubValueTooLong {
        /// Vendor type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// The encoded packet would exceed 4096 octets (RFC 2865 §3).
    #[error("encoded packet of {0} octets exceeds 4096")]
    PacketTooLong(usize),
}

/// One attribute: Type and Value (the Length is derived).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The Type octet.
    pub typ: u8,
    /// The Value (0..=253 octets when encoded).
    pub value: Vec<u8>,
}

impl Attribute {
    /// An attribute from its type and value.
    pub fn new(typ: u8, value: impl Into<Vec<u8>>) -> Attribute {
        Attribute {
            typ,
            value: value.into(),
        }
    }

    /// A 32-bit integer attribute (RFC 2865 §5, "integer").
    pub fn u32(typ: u8, v: u32) -> Attribute {
        Attribute::new(typ, v.to_be_bytes().to_vec())
    }

    /// An IPv4 address attribute (RFC 2865 §5, "address").
    pub fn ipv4(typ: u8, a: std::net::Ipv4Addr) -> Attribute {
        Attribute::new(typ, a.octets().to_vec())
    }

    /// A Vendor-Specific attribute (26) holding sub-attributes in the
    /// format RFC 2865 §5.26 recommends.
    pub fn vendor_specific(
        vendor_id: u32,
        subs: &[SubAttribute],
    ) -> Result<Attribute, EncodeError> {
        let vsa = Vsa {
            vendor_id,
            data: encode_sub_attributes(subs)?,
        };
        vsa.to_attribute()
    }

    /// The value read as a 32-bit integer, if it is exactly 4 octets.
    pub fn as_u32(&self) -> Option<u32> {
        let b: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }

    /// The Vendor-Specific content, if this is a well-formed attribute 26.
    pub fn as_vsa(&self) -> Option<Vsa> {
        if self.typ != VENDOR_SPECIFIC {
            return None;
        }
        Vsa::decode(&self.value).ok()
    }
}

/// A Vendor-Specific attribute's content (RFC 2865 §5.26): a Vendor-Id
/// (the high octet is 0, then the SMI Network Management Private Enterprise
/// Code) followed by vendor data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vsa {
    /// The Vendor-Id.
    pub vendor_id: u32,
    /// Everything after the Vendor-Id.
    pub data: Vec<u8>,
}

impl Vsa {
    /// Reads the value of an attribute 26.
    pub fn decode(value: &[u8]) -> Result<Vsa, DecodeError> {
        if value.len() < 4 {
            return Err(DecodeError::BadAttribute { offset: 0 });
        }
        let vendor_id = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
        Ok(Vsa {
            vendor_id,
            data: value[4..].to_vec(),
        })
    }

    /// The sub-attributes, in the recommended type/length/value format.
    pub fn sub_attributes(&self) -> Result<Vec<SubAttribute>, DecodeError> {
        let mut out = Vec::new();
        let mut i = 0;
        let d = &self.data;
        while i < d.len() {
            if d.len() - i < 2 {
                return Err(DecodeError::BadAttribute { offset: 4 + i });
            }
            let len = usize::from(d[i + 1]);
            if len < 2 || i + len > d.len() {
                return Err(DecodeError::BadAttribute { offset: 4 + i });
            }
            out.push(SubAttribute {
                typ: d[i],
                value: d[i + 2..i + len].to_vec(),
            });
            i += len;
        }
        Ok(out)
    }

    /// The attribute 26 carrying this content.
    pub fn to_attribute(&self) -> Result<Attribute, EncodeError> {
        let mut value = Vec::with_capacity(4 + self.data.len());
        value.extend_from_slice(&self.vendor_id.to_be_bytes());
        value.extend_from_slice(&self.data);
        if value.len() > MAX_ATTR_VALUE_LEN {
            return Err(EncodeError::ValueTooLong {
                typ: VENDOR_SPECIFIC,
                len: value.len(),
            });
        }
        Ok(Attribute::new(VENDOR_SPECIFIC, value))
    }
}

/// One vendor sub-attribute (vendor type, vendor length, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAttribute {
    /// Vendor type.
    pub typ: u8,
    /// Value.
    pub value: Vec<u8>,
}

impl SubAttribute {
    /// A sub-attribute from its type and value.
    pub fn new(typ: u8, value: impl Into<Vec<u8>>) -> SubAttribute {
        SubAttribute {
            typ,
            value: value.into(),
        }
    }
}

fn encode_sub_attributes(subs: &[SubAttribute]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    for s in subs {
        if s.value.len() > MAX_VSA_SUB_VALUE_LEN {
            return Err(EncodeError::SubValueTooLong {
                typ: s.typ,
                len: s.value.len(),
            });
        }
        out.push(s.typ);
        // Fits: value ≤ 247, so 2 + value ≤ 249.
        out.push((2 + s.value.len()) as u8);
        out.extend_from_slice(&s.value);
    }
    Ok(out)
}

/// A decoded packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Code.
    pub code: Code,
    /// Identifier, matching requests and replies.
    pub identifier: u8,
    /// Request or Response Authenticator.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// A packet without attributes.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; AUTHENTICATOR_LEN]) -> Packet {
        Packet {
            code,
            identifier,
            authenticator,
            attributes: Vec::new(),
        }
    }

    /// Decodes one datagram (RFC 2865 §3). Octets beyond the Length field
    /// are padding and are ignored.
    pub fn decode(datagram: &[u8]) -> Result<Packet, DecodeError> {
        let bytes = packet_bytes(datagram)?;
        let mut authenticator = [0u8; AUTHENTICATOR_LEN];
        authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
        let mut attributes = Vec::new();
        for item in AttrIter::new(bytes) {
            let (_, typ, value) = item?;
            attributes.push(Attribute {
                typ,
                value: value.to_vec(),
            });
        }
        Ok(Packet {
            code: Code::from_u8(bytes[0]),
            identifier: bytes[1],
            authenticator,
            attributes,
        })
    }

    /// The encoded length of this packet.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| 2 + a.value.len())
                .sum::<usize>()
    }

    /// Appends the encoded packet to `out`. On error nothing is appended.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for a in &self.attributes {
            if a.value.len() > MAX_ATTR_VALUE_LEN {
                return Err(EncodeError::ValueTooLong {
                    typ: a.typ,
                    len: a.value.len(),
                });
            }
        }
        let len = self.encoded_len();
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong(len));
        }
        out.reserve(len);
        out.push(self.code.to_u8());
        out.push(self.identifier);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            out.push(a.typ);
            out.push((2 + a.value.len()) as u8);
            out.extend_from_slice(&a.value);
        }
        Ok(())
    }

    /// The encoded packet in a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }

    /// The first attribute of a type.
    pub fn attr(&self, typ: u8) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.typ == typ)
    }

    /// All attributes of a type, in order.
    pub fn attrs(&self, typ: u8) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(move |a| a.typ == typ)
    }

    /// The values of all sub-attributes of `vendor_type` in Vendor-Specific
    /// attributes of `vendor_id`, in order. Malformed VSAs are skipped.
    pub fn vendor_attrs(&self, vendor_id: u32, vendor_type: u8) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for a in self.attrs(VENDOR_SPECIFIC) {
            let Some(vsa) = a.as_vsa() else { continue };
            if vsa.vendor_id != vendor_id {
                continue;
            }
            let Ok(subs) = vsa.sub_attributes() else {
                continue;
            };
            out.extend(
                subs.into_iter()
                    .filter(|s| s.typ == vendor_type)
                    .map(|s| s.value),
            );
        }
        out
    }

    /// The concatenated values of all attributes of a type, e.g. EAP-Message
    /// (RFC 3579 §3.1). `None` if there is none.
    pub fn concat(&self, typ: u8) -> Option<Vec<u8>> {
        let mut it = self.attrs(typ).peekable();
        it.peek()?;
        Some(it.flat_map(|a| a.value.iter().copied()).collect())
    }
}

/// The octets of the packet proper: the datagram cut at its Length field,
/// after checking the header.
pub(crate) fn packet_bytes(datagram: &[u8]) -> Result<&[u8], DecodeError> {
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::Short(datagram.len()));
    }
    let length = u16::from_be_bytes([datagram[2], datagram[3]]);
    let l = usize::from(length);
    if !(MIN_PACKET_LEN..=MAX_PACKET_LEN).contains(&l) {
        return Err(DecodeError::BadLength(length));
    }
    if datagram.len() < l {
        return Err(DecodeError::Truncated {
            length,
            got: datagram.len(),
        });
    }
    Ok(&datagram[..l])
}

/// Iterates the attributes of an encoded packet (already cut at its
/// Length), yielding (offset of the Type octet, type, value).
pub(crate) struct AttrIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> AttrIter<'a> {
    pub(crate) fn new(packet: &'a [u8]) -> Self {
        AttrIter {
            bytes: packet,
            pos: HEADER_LEN,
            failed: false,
        }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<(usize, u8, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.bytes[offset..];
        // RFC 2865 §5: Length counts Type, Length and Value, so it is ≥ 2.
        if rest.len() < 2 || rest[1] < 2 || usize::from(rest[1]) > rest.len() {
            self.failed = true;
            return Some(Err(DecodeError::BadAttribute { offset }));
        }
        let len = usize::from(rest[1]);
        self.pos += len;
        Some(Ok((offset, rest[0], &rest[2..len])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_limits() {
        let mut b = vec![1, 0, 0, 19];
        b.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::decode(&b), Err(DecodeError::BadLength(19)));
        b[2..4].copy_from_slice(&4097u16.to_be_bytes());
        assert_eq!(Packet::decode(&b), Err(DecodeError::BadLength(4097)));
        b[2..4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(
            Packet::decode(&b),
            Err(DecodeError::Truncated {
                length: 22,
                got: 20
            })
        );
        assert_eq!(Packet::decode(&b[..5]), Err(DecodeError::Short(5)));
        // An attribute of length 1, then one past the end.
        b.extend_from_slice(&[1, 1]);
        assert_eq!(
            Packet::decode(&b),
            Err(DecodeError::BadAttribute { offset: 20 })
        );
        b[21] = 3;
        assert_eq!(
            Packet::decode(&b),
            Err(DecodeError::BadAttribute { offset: 20 })
        );
        // A lone Type octet.
        b[3] = 21;
        assert_eq!(
            Packet::decode(&b[..21]),
            Err(DecodeError::BadAttribute { offset: 20 })
        );
        // Length 2 is an empty value; trailing octets are padding.
        b[3] = 22;
        b[21] = 2;
        b.extend_from_slice(&[9, 9]);
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.attributes, vec![Attribute::new(1, vec![])]);
        assert_eq!(p.to_bytes().unwrap(), b[..22]);
    }

    #[test]
    fn encode_limits() {
        let mut p = Packet::new(Code::AccessRequest, 1, [0; 16]);
        p.attributes.push(Attribute::new(1, vec![0; 254]));
        let mut out = vec![7];
        assert_eq!(
            p.encode(&mut out),
            Err(EncodeError::ValueTooLong { typ: 1, len: 254 })
        );
        assert_eq!(out, vec![7]);
        p.attributes.clear();
        for _ in 0..16 {
            p.attributes.push(Attribute::new(18, vec![b'x'; 253]));
        }
        assert_eq!(p.encode(&mut out), Err(EncodeError::PacketTooLong(4100)));
        p.attributes.pop();
        p.attributes.push(Attribute::new(18, vec![b'x'; 253 - 4]));
        assert_eq!(p.encoded_len(), 4096);
        p.encode(&mut out).unwrap();
        assert_eq!(out.len(), 1 + 4096);
    }

    #[test]
    fn vendor_specific() {
        let a = Attribute::vendor_specific(
            311,
            &[
                SubAttribute::new(7, vec![0, 0, 0, 1]),
                SubAttribute::new(8, vec![0, 0, 0, 6]),
            ],
        )
        .unwrap();
        assert_eq!(a.typ, 26);
        assert_eq!(a.value, [0, 0, 1, 0x37, 7, 6, 0, 0, 0, 1, 8, 6, 0, 0, 0, 6]);
        let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
        p.attributes.push(a);
        assert_eq!(p.vendor_attrs(311, 8), vec![vec![0, 0, 0, 6]]);
        assert!(p.vendor_attrs(9, 8).is_empty());
        assert!(Attribute::vendor_specific(311, &[SubAttribute::new(1, vec![0; 248])]).is_err());
        assert!(Attribute::vendor_specific(311, &[SubAttribute::new(1, vec![0; 247])]).is_ok());
        // Malformed sub-attributes.
        let v = Vsa {
            vendor_id: 311,
            data: vec![7, 1],
        };
        assert!(v.sub_attributes().is_err());
        let v = Vsa {
            vendor_id: 311,
            data: vec![7, 9, 0],
        };
        assert!(v.sub_attributes().is_err());
        assert!(Vsa::decode(&[0, 0, 1]).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(Code::from_u8(c).to_u8(), c);
        }
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        (
            any::<u8>(),
            any::<u8>(),
            any::<[u8; 16]>(),
            proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253)),
                0..12,
            ),
        )
            .prop_map(|(c, id, auth, attrs)| Packet {
                code: Code::from_u8(c),
                identifier: id,
                authenticator: auth,
                attributes: attrs
                    .into_iter()
                    .map(|(t, v)| Attribute::new(t, v))
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_packet()) {
            let bytes = p.to_bytes().unwrap();
            prop_assert_eq!(bytes.len(), p.encoded_len());
            prop_assert_eq!(Packet::decode(&bytes).unwrap(), p);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(p) = Packet::decode(&bytes) {
                let again = p.to_bytes().unwrap();
                prop_assert_eq!(Packet::decode(&again).unwrap(), p);
            }
        }

        #[test]
        fn framed_random_bodies_never_panic(
            code in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut b = vec![code, 0];
            b.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&body);
            if let Ok(p) = Packet::decode(&b) {
                prop_assert_eq!(p.to_bytes().unwrap(), b);
            }
        }
    }
}
