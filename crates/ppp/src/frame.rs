//! Raw PPP frames (RFC 1661 §2, §6.5, §6.6), as carried inside SSTP,
//! PPTP/GRE and L2TP, or inside the HDLC-like framing of [`crate::hdlc`]
//! once flags, escaping and FCS are removed.
//!
//! ```text
//! +----------+----------+----------+-------------+
//! | Address  | Control  | Protocol | Information |
//! |   0xFF   |   0x03   | 8/16 bits|      *      |
//! +----------+----------+----------+-------------+
//!   (absent with ACFC)    (8 bits with PFC)
//! ```
//!
//! The decoder accepts every legal combination of Address-and-Control-Field
//! Compression (ACFC) and Protocol-Field-Compression (PFC); the encoder
//! writes the header chosen by [`FrameOptions`], except that LCP packets
//! always go out in the full, uncompressed form (RFC 1661 §5, §6.5, §6.6).

/// PPP Protocol field values (from the IANA "PPP DLL Protocol Numbers").
pub mod protocol {
    /// Padding Protocol.
    pub const PADDING: u16 = 0x0001;
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0021;
    /// Van Jacobson Compressed TCP/IP.
    pub const VJ_COMPRESSED_TCP: u16 = 0x002D;
    /// Van Jacobson Uncompressed TCP/IP.
    pub const VJ_UNCOMPRESSED_TCP: u16 = 0x002F;
    /// Multi-Link Protocol (RFC 1990).
    pub const MULTILINK: u16 = 0x003D;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x0057;
    /// Individual-link compressed datagram (RFC 1962).
    pub const COMPRESSED_DATAGRAM_LINK: u16 = 0x00FB;
    /// Compressed datagram (RFC 1962); MPPE packets use this number.
    pub const COMPRESSED_DATAGRAM: u16 = 0x00FD;
    /// Alias of [`COMPRESSED_DATAGRAM`]: MPPE-encrypted/compressed packets.
    pub const MPPE: u16 = COMPRESSED_DATAGRAM;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPv6 Control Protocol (RFC 5072).
    pub const IPV6CP: u16 = 0x8057;
    /// Individual-link Compression Control Protocol (RFC 1962).
    pub const CCP_LINK: u16 = 0x80FB;
    /// Compression Control Protocol (RFC 1962).
    pub const CCP: u16 = 0x80FD;
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xC021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xC023;
    /// Link Quality Report (RFC 1989).
    pub const LQR: u16 = 0xC025;
    /// Callback Control Protocol (Microsoft CBCP).
    pub const CBCP: u16 = 0xC029;
    /// Bandwidth Allocation Control Protocol (RFC 2125).
    pub const BACP: u16 = 0xC02B;
    /// Bandwidth Allocation Protocol (RFC 2125).
    pub const BAP: u16 = 0xC02D;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xC223;
    /// Extensible Authentication Protocol (RFC 3748).
    pub const EAP: u16 = 0xC227;

    /// Whether `p` is a well-formed protocol number (RFC 1661 §2): the
    /// least-significant octet is odd and the most-significant octet even.
    #[inline]
    pub const fn is_valid(p: u16) -> bool {
        p & 0x0001 == 0x0001 && p & 0x0100 == 0
    }

    /// Network-layer protocols (0x0xxx–0x3xxx).
    #[inline]
    pub const fn is_network_layer(p: u16) -> bool {
        p < 0x4000
    }

    /// Network Control Protocols (0x8xxx–0xbxxx).
    #[inline]
    pub const fn is_network_control(p: u16) -> bool {
        p >= 0x8000 && p < 0xC000
    }

    /// Link-layer control protocols such as LCP and authentication
    /// (0xcxxx–0xfxxx).
    #[inline]
    pub const fn is_link_control(p: u16) -> bool {
        p >= 0xC000
    }

    /// Whether `p` can be sent in a one-octet (compressed) Protocol field.
    #[inline]
    pub const fn is_compressible(p: u16) -> bool {
        p < 0x0100
    }
}

/// The Address field value (All-Stations).
pub const ADDRESS: u8 = 0xFF;
/// The Control field value (Unnumbered Information).
pub const CONTROL: u8 = 0x03;
/// The longest header [`encode_header`] ever writes: address, control and
/// a two-octet protocol field.
pub const MAX_HEADER_LEN: usize = 4;

/// A decoded PPP frame, borrowing its payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The protocol number, always [`protocol::is_valid`].
    pub protocol: u16,
    /// The Information field (plus any padding the peer added).
    pub payload: &'a [u8],
    /// The frame carried the 0xFF 0x03 Address and Control fields.
    pub address_control: bool,
    /// The Protocol field was a single octet (PFC).
    pub protocol_compressed: bool,
}

/// Why [`decode`] rejected a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame ends before its Protocol field does.
    #[error("PPP frame truncated before the end of the protocol field")]
    Truncated,
    /// The frame starts with the Address octet 0xFF but is not followed
    /// by the Control octet 0x03.
    #[error("PPP frame has address 0xff with control field {0:#04x}")]
    BadControl(u8),
    /// The Protocol field is not a valid protocol number (RFC 1661 §2).
    #[error("invalid PPP protocol field {0:#06x}")]
    InvalidProtocol(u16),
}

/// Header layout for [`encode_header`] / [`encode`].
///
/// `Default` is the RFC 1661 default: Address and Control present and an
/// uncompressed Protocol field, i.e. [`FrameOptions::FULL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameOptions {
    /// Send the 0xFF 0x03 Address and Control fields (false = ACFC
    /// negotiated, or a transport such as L2TP where they are omitted).
    pub address_control: bool,
    /// Send a one-octet Protocol field when the protocol is < 0x100
    /// (PFC negotiated).
    pub compress_protocol: bool,
}

impl FrameOptions {
    /// The uncompressed header: 0xFF 0x03 and a two-octet protocol field.
    pub const FULL: Self = Self {
        address_control: true,
        compress_protocol: false,
    };

    /// The header actually used for `protocol`: LCP is always sent in the
    /// full form (RFC 1661 §5, §6.5, §6.6); protocol compression only
    /// applies to protocol numbers below 0x100.
    #[inline]
    pub const fn effective(self, protocol: u16) -> Self {
        if protocol == protocol::LCP {
            Self::FULL
        } else {
            Self {
                address_control: self.address_control,
                compress_protocol: self.compress_protocol && protocol::is_compressible(protocol),
            }
        }
    }
}

impl Default for FrameOptions {
    fn default() -> Self {
        Self::FULL
    }
}

/// Decode a raw PPP frame: optional 0xFF 0x03, then a one- or two-octet
/// Protocol field, then the payload.
///
/// A first octet of 0xFF is always taken as the Address field (0x00FF is
/// not a usable protocol number), so it must be followed by 0x03.
pub fn decode(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (address_control, rest) = match frame {
        [ADDRESS, CONTROL, rest @ ..] => (true, rest),
        [ADDRESS, c, ..] => return Err(FrameError::BadControl(*c)),
        [ADDRESS] => return Err(FrameError::Truncated),
        _ => (false, frame),
    };
    let (protocol, compressed, payload) = match rest {
        [] => return Err(FrameError::Truncated),
        // An odd first octet is the whole (compressed) protocol field.
        [p, payload @ ..] if p & 1 == 1 => (u16::from(*p), true, payload),
        [_] => return Err(FrameError::Truncated),
        [hi, lo, payload @ ..] => (u16::from_be_bytes([*hi, *lo]), false, payload),
    };
    if !protocol::is_valid(protocol) {
        return Err(FrameError::InvalidProtocol(protocol));
    }
    Ok(Frame {
        protocol,
        payload,
        address_control,
        protocol_compressed: compressed,
    })
}

/// Length of the header [`encode_header`] writes for `protocol` with
/// `opts` (after applying [`FrameOptions::effective`]); at most
/// [`MAX_HEADER_LEN`].
#[inline]
pub const fn header_len(protocol: u16, opts: FrameOptions) -> usize {
    let o = opts.effective(protocol);
    let ac = if o.address_control { 2 } else { 0 };
    let p = if o.compress_protocol { 1 } else { 2 };
    ac + p
}

/// Write the header for `protocol` into a fixed buffer and return it with
/// its length (`&buf[..len]` is the header). Never allocates.
#[inline]
pub const fn header(protocol: u16, opts: FrameOptions) -> ([u8; MAX_HEADER_LEN], usize) {
    debug_assert!(protocol::is_valid(protocol), "invalid PPP protocol number");
    let o = opts.effective(protocol);
    let mut buf = [0u8; MAX_HEADER_LEN];
    let mut n = 0;
    if o.address_control {
        buf[0] = ADDRESS;
        buf[1] = CONTROL;
        n = 2;
    }
    if o.compress_protocol {
        buf[n] = protocol as u8;
        n += 1;
    } else {
        buf[n] = (protocol >> 8) as u8;
        buf[n + 1] = protocol as u8;
        n += 2;
    }
    (buf, n)
}

/// Append the header for `protocol` to `out`.
///
/// LCP always gets the full header; protocol compression applies only to
/// protocols below 0x100. `protocol` must be [`protocol::is_valid`]
/// (checked in debug builds).
#[inline]
pub fn encode_header(protocol: u16, opts: FrameOptions, out: &mut Vec<u8>) {
    let (buf, n) = header(protocol, opts);
    out.extend_from_slice(&buf[..n]);
}

/// Append a whole frame (header and payload) to `out`, which the caller
/// may reuse from packet to packet.
#[inline]
pub fn encode(protocol: u16, payload: &[u8], opts: FrameOptions, out: &mut Vec<u8>) {
    out.reserve(header_len(protocol, opts) + payload.len());
    encode_header(protocol, opts, out);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_OPTS: [FrameOptions; 4] = [
        FrameOptions {
            address_control: true,
            compress_protocol: false,
        },
        FrameOptions {
            address_control: true,
            compress_protocol: true,
        },
        FrameOptions {
            address_control: false,
            compress_protocol: false,
        },
        FrameOptions {
            address_control: false,
            compress_protocol: true,
        },
    ];

    #[test]
    fn protocol_validity() {
        for p in [
            protocol::LCP,
            protocol::PAP,
            protocol::CHAP,
            protocol::EAP,
            protocol::CBCP,
            protocol::IPCP,
            protocol::IPV6CP,
            protocol::CCP,
            protocol::IPV4,
            protocol::IPV6,
            protocol::MPPE,
        ] {
            assert!(protocol::is_valid(p), "{p:#06x}");
        }
        assert!(!protocol::is_valid(0x0000));
        assert!(!protocol::is_valid(0x0020));
        assert!(!protocol::is_valid(0x0121));
        assert!(!protocol::is_valid(0xFF03));
        assert!(protocol::is_network_control(protocol::IPCP));
        assert!(protocol::is_link_control(protocol::LCP));
        assert!(protocol::is_network_layer(protocol::IPV4));
    }

    #[test]
    fn decode_full_header() {
        let f = decode(&[0xFF, 0x03, 0xC0, 0x21, 1, 2, 3]).unwrap();
        assert_eq!(f.protocol, protocol::LCP);
        assert_eq!(f.payload, &[1, 2, 3]);
        assert!(f.address_control);
        assert!(!f.protocol_compressed);
    }

    #[test]
    fn decode_compressed_forms() {
        let f = decode(&[0x21, 0x45, 0x00]).unwrap();
        assert_eq!(f.protocol, protocol::IPV4);
        assert_eq!(f.payload, &[0x45, 0x00]);
        assert!(!f.address_control);
        assert!(f.protocol_compressed);

        let f = decode(&[0xFF, 0x03, 0xFD, 0x90, 0x01]).unwrap();
        assert_eq!(f.protocol, protocol::MPPE);
        assert!(f.address_control && f.protocol_compressed);

        let f = decode(&[0x00, 0x21]).unwrap();
        assert_eq!(f.protocol, protocol::IPV4);
        assert!(f.payload.is_empty());
        assert!(!f.protocol_compressed);

        let f = decode(&[0x80, 0x21, 0x01]).unwrap();
        assert_eq!(f.protocol, protocol::IPCP);
    }

    #[test]
    fn decode_errors() {
        assert_eq!(decode(&[]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0xFF]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0xFF, 0x03]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0xFF, 0x03, 0xC0]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0xC0]), Err(FrameError::Truncated));
        assert_eq!(
            decode(&[0xFF, 0x13, 0xC0, 0x21]),
            Err(FrameError::BadControl(0x13))
        );
        // Even low octet.
        assert_eq!(
            decode(&[0x00, 0x20, 1]),
            Err(FrameError::InvalidProtocol(0x0020))
        );
        // An odd first octet is a one-octet field: 0x01 is PADDING.
        assert_eq!(decode(&[0x01, 0x21]).unwrap().protocol, protocol::PADDING);
        // A two-octet field with an even low octet is rejected. (An odd high
        // octet can't occur: an odd first octet is read as a one-octet field.)
        assert_eq!(
            decode(&[0xC0, 0x22]),
            Err(FrameError::InvalidProtocol(0xC022))
        );
        assert_eq!(
            decode(&[0xFF, 0x03, 0x80, 0x20]),
            Err(FrameError::InvalidProtocol(0x8020))
        );
        assert_eq!(decode(&[0x02, 0x21]).unwrap().protocol, 0x0221);
    }

    #[test]
    fn lcp_is_never_compressed() {
        for opts in ALL_OPTS {
            let mut out = Vec::new();
            encode(protocol::LCP, &[1, 1, 0, 4], opts, &mut out);
            assert_eq!(out, [0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4]);
            assert_eq!(header_len(protocol::LCP, opts), 4);
        }
    }

    #[test]
    fn header_forms() {
        let both = FrameOptions {
            address_control: false,
            compress_protocol: true,
        };
        let mut out = Vec::new();
        encode_header(protocol::IPV4, both, &mut out);
        assert_eq!(out, [0x21]);
        out.clear();
        // Protocol >= 0x100 is never compressed.
        encode_header(protocol::IPCP, both, &mut out);
        assert_eq!(out, [0x80, 0x21]);
        out.clear();
        encode_header(protocol::CHAP, FrameOptions::default(), &mut out);
        assert_eq!(out, [0xFF, 0x03, 0xC2, 0x23]);
        assert_eq!(header_len(protocol::IPV4, both), 1);
        assert_eq!(header_len(protocol::IPCP, both), 2);
        assert_eq!(header_len(protocol::IPV6, FrameOptions::FULL), 4);
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![0xAA];
        encode(protocol::IPV6, &[0x60], FrameOptions::FULL, &mut out);
        assert_eq!(out, [0xAA, 0xFF, 0x03, 0x00, 0x57, 0x60]);
    }

    fn valid_protocol() -> impl Strategy<Value = u16> {
        any::<u16>().prop_map(|p| (p | 1) & !0x0100)
    }

    proptest! {
        #[test]
        fn round_trip(p in valid_protocol(), payload in proptest::collection::vec(any::<u8>(), 0..64), opts_i in 0usize..4) {
            let opts = ALL_OPTS[opts_i];
            let mut out = Vec::new();
            encode(p, &payload, opts, &mut out);
            prop_assert_eq!(out.len(), header_len(p, opts) + payload.len());
            let f = decode(&out).unwrap();
            prop_assert_eq!(f.protocol, p);
            prop_assert_eq!(f.payload, &payload[..]);
            let eff = opts.effective(p);
            prop_assert_eq!(f.address_control, eff.address_control);
            prop_assert_eq!(f.protocol_compressed, eff.compress_protocol);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(f) = decode(&data) {
                prop_assert!(protocol::is_valid(f.protocol));
                prop_assert!(f.payload.len() < data.len());
            }
        }
    }
}
