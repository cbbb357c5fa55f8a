//! The ISAKMP message layout (RFC 2408 §3.1, §3.2): the fixed header and
//! the chain of generic payloads, parsed without copying and built into one
//! buffer.

use thiserror::Error;

/// RFC 2408 §3.1: the fixed header is 28 bytes.
pub const HEADER_LEN: usize = 28;
/// RFC 2408 §3.2: every payload starts with a 4-byte generic header.
pub const GENERIC_HEADER_LEN: usize = 4;
/// RFC 2408 §3.1: major version 1, minor version 0.
pub const VERSION_1_0: u8 = 0x10;
/// The largest message we accept. Certificates with chains fit well within it;
/// anything bigger is refused before any work is done.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// RFC 2408 §3.1 flags.
pub mod flags {
    /// Encryption: everything after the header is encrypted.
    pub const ENCRYPTED: u8 = 0x01;
    /// Commit (§3.1): we never set it and ignore it.
    pub const COMMIT: u8 = 0x02;
    /// Authentication only.
    pub const AUTH_ONLY: u8 = 0x04;
}

/// Exchange types (RFC 2408 §3.1, RFC 2409 §5.5).
pub mod exchange {
    /// Identity Protection, the "Main Mode" of RFC 2409 §5.
    pub const MAIN_MODE: u8 = 2;
    /// Aggressive (RFC 2409 §5): refused by default.
    pub const AGGRESSIVE: u8 = 4;
    /// Informational (RFC 2408 §4.8).
    pub const INFORMATIONAL: u8 = 5;
    /// Quick Mode (RFC 2409 §5.5).
    pub const QUICK_MODE: u8 = 32;
    /// Mode Config / XAUTH transaction (draft-ietf-ipsec-isakmp-mode-cfg).
    pub const TRANSACTION: u8 = 6;
}

/// Payload types (RFC 2408 §3.1 table; RFC 3947 §3, §5 and the NAT-T drafts).
pub mod payload {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 1;
    pub const PROPOSAL: u8 = 2;
    pub const TRANSFORM: u8 = 3;
    pub const KEY_EXCHANGE: u8 = 4;
    pub const IDENTIFICATION: u8 = 5;
    pub const CERTIFICATE: u8 = 6;
    pub const CERTIFICATE_REQUEST: u8 = 7;
    pub const HASH: u8 = 8;
    pub const SIGNATURE: u8 = 9;
    pub const NONCE: u8 = 10;
    pub const NOTIFICATION: u8 = 11;
    pub const DELETE: u8 = 12;
    pub const VENDOR_ID: u8 = 13;
    /// RFC 3947 §3.2.
    pub const NAT_D: u8 = 20;
    /// RFC 3947 §5.2.
    pub const NAT_OA: u8 = 21;
    /// draft-ietf-ipsec-nat-t-ike-02/03 numbers, still sent by older clients.
    pub const NAT_D_DRAFT: u8 = 130;
    pub const NAT_OA_DRAFT: u8 = 131;
    /// IKEv1 fragmentation (the Cisco/Microsoft "FRAGMENTATION" vendor ID).
    pub const FRAGMENT: u8 = 132;
}

/// The fixed ISAKMP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub initiator_cookie: [u8; 8],
    pub responder_cookie: [u8; 8],
    pub next_payload: u8,
    pub version: u8,
    pub exchange: u8,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}

/// Why a message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("shorter than an ISAKMP header ({0} bytes)")]
    Short(usize),
    #[error("ISAKMP version {0:#04x} is not 1.0")]
    Version(u8),
    #[error("header length {declared} does not match the {actual} bytes received")]
    Length { declared: u32, actual: usize },
    #[error("message of {0} bytes is over our limit")]
    TooLong(usize),
    #[error("payload {0} runs past the end of the message")]
    PayloadOverrun(u8),
    #[error("payload {0} is shorter than its generic header")]
    PayloadShort(u8),
    #[error("more than {0} payloads in one message")]
    TooManyPayloads(usize),
}

impl Header {
    /// Reads the header and checks the version and the length field against
    /// the datagram (RFC 2408 §3.1: Length is the whole message).
    pub fn parse(message: &[u8]) -> Result<Header, WireError> {
        if message.len() < HEADER_LEN {
            return Err(WireError::Short(message.len()));
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(WireError::TooLong(message.len()));
        }
        let header = Header {
            initiator_cookie: message[0..8].try_into().expect("8 bytes"),
            responder_cookie: message[8..16].try_into().expect("8 bytes"),
            next_payload: message[16],
            version: message[17],
            exchange: message[18],
            flags: message[19],
            message_id: u32::from_be_bytes(message[20..24].try_into().expect("4 bytes")),
            length: u32::from_be_bytes(message[24..28].try_into().expect("4 bytes")),
        };
        // RFC 2408 §5.1: a major version we do not speak is refused; minor
        // versions are ignored.
        if header.version >> 4 != 1 {
            return Err(WireError::Version(header.version));
        }
        if header.length as usize != message.len() {
            return Err(WireError::Length {
                declared: header.length,
                actual: message.len(),
            });
        }
        Ok(header)
    }

    /// Writes the header into the first 28 bytes of `out` (length as given).
    pub fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.initiator_cookie);
        out[8..16].copy_from_slice(&self.responder_cookie);
        out[16] = self.next_payload;
        out[17] = self.version;
        out[18] = self.exchange;
        out[19] = self.flags;
        out[20..24].copy_from_slice(&self.message_id.to_be_bytes());
        out[24..28].copy_from_slice(&self.length.to_be_bytes());
    }

    pub fn is_encrypted(&self) -> bool {
        self.flags & flags::ENCRYPTED != 0
    }
}

/// One payload of the chain: its type, and its body without the generic
/// header. `whole` includes the generic header (some hashes cover it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    pub kind: u8,
    pub body: &'a [u8],
    pub whole: &'a [u8],
}

/// A limit on payloads per message, so a message of a thousand empty
/// payloads costs no more than a bounded amount of work.
///
/// Not too low: a client sends one certificate request per CA it trusts
/// (Windows one per trusted root, strongSwan one per loaded CA, and a
/// machine may trust well over a hundred); splitting the chain is linear
/// in the message, whose size is bounded anyway.
pub const MAX_PAYLOADS: usize = 512;

/// Splits a payload chain that starts with type `first` (RFC 2408 §3.2).
/// Bytes after the last payload (the zero padding of an encrypted message,
/// RFC 2408 §3.1) are ignored.
pub fn payloads(first: u8, mut bytes: &[u8]) -> Result<Vec<RawPayload<'_>>, WireError> {
    let mut out = Vec::new();
    let mut kind = first;
    while kind != payload::NONE {
        if out.len() == MAX_PAYLOADS {
            return Err(WireError::TooManyPayloads(MAX_PAYLOADS));
        }
        if bytes.len() < GENERIC_HEADER_LEN {
            return Err(WireError::PayloadOverrun(kind));
        }
        let next = bytes[0];
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if len < GENERIC_HEADER_LEN {
            return Err(WireError::PayloadShort(kind));
        }
        if len > bytes.len() {
            return Err(WireError::PayloadOverrun(kind));
        }
        out.push(RawPayload {
            kind,
            body: &bytes[GENERIC_HEADER_LEN..len],
            whole: &bytes[..len],
        });
        bytes = &bytes[len..];
        kind = next;
    }
    Ok(out)
}

/// Builds a payload chain: each `push` writes a generic header whose "next
/// payload" field is patched by the following push.
#[derive(Default, Clone)]
pub struct PayloadChain {
    bytes: Vec<u8>,
    first: u8,
    last_header_at: Option<usize>,
}

impl PayloadChain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a payload of type `kind` with `body`.
    pub fn push(&mut self, kind: u8, body: &[u8]) -> &mut Self {
        match self.last_header_at {
            Some(at) => self.bytes[at] = kind,
            None => self.first = kind,
        }
        self.last_header_at = Some(self.bytes.len());
        let len = (GENERIC_HEADER_LEN + body.len()) as u16;
        self.bytes.extend_from_slice(&[0, 0]);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(body);
        self
    }

    /// Overwrites bytes of the chain at `at` (a HASH body computed after the
    /// payloads it covers were written).
    pub fn patch(&mut self, at: usize, data: &[u8]) {
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    /// The type of the first payload (the header's Next Payload).
    pub fn first(&self) -> u8 {
        self.first
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The chain's bytes, generic headers included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Builds a whole unencrypted message from a header template and a chain.
pub fn message(header: &Header, chain: &PayloadChain) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(chain.bytes());
    let mut h = *header;
    h.next_payload = chain.first();
    h.length = out.len() as u32;
    h.write(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            initiator_cookie: [1; 8],
            responder_cookie: [2; 8],
            next_payload: 0,
            version: VERSION_1_0,
            exchange: exchange::MAIN_MODE,
            flags: 0,
            message_id: 7,
            length: 0,
        }
    }

    #[test]
    fn a_built_chain_parses_back() {
        let mut chain = PayloadChain::new();
        chain
            .push(payload::SA, b"sa-body")
            .push(payload::VENDOR_ID, b"vid")
            .push(payload::NONCE, &[9; 16]);
        let msg = message(&header(), &chain);
        let h = Header::parse(&msg).unwrap();
        assert_eq!(h.next_payload, payload::SA);
        assert_eq!(h.message_id, 7);
        let p = payloads(h.next_payload, &msg[HEADER_LEN..]).unwrap();
        let kinds: Vec<u8> = p.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [payload::SA, payload::VENDOR_ID, payload::NONCE]);
        assert_eq!(p[1].body, b"vid");
        assert_eq!(p[1].whole.len(), 7);
    }

    #[test]
    fn bad_lengths_are_errors() {
        let mut chain = PayloadChain::new();
        chain.push(payload::SA, b"abc");
        let mut msg = message(&header(), &chain);
        // Payload length past the end.
        msg[HEADER_LEN + 3] = 200;
        let h = Header::parse(&msg).unwrap();
        assert_eq!(
            payloads(h.next_payload, &msg[HEADER_LEN..]),
            Err(WireError::PayloadOverrun(payload::SA))
        );
        // Payload length below the generic header.
        msg[HEADER_LEN + 3] = 2;
        assert_eq!(
            payloads(h.next_payload, &msg[HEADER_LEN..]),
            Err(WireError::PayloadShort(payload::SA))
        );
        // Header length disagreeing with the datagram.
        let short = &msg[..msg.len() - 1];
        assert!(matches!(
            Header::parse(short),
            Err(WireError::Length { .. })
        ));
        // Wrong major version.
        msg[17] = 0x20;
        assert_eq!(Header::parse(&msg), Err(WireError::Version(0x20)));
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &[5; 20]);
        let mut bytes = chain.into_bytes();
        bytes.extend_from_slice(&[0; 8]);
        let p = payloads(payload::HASH, &bytes).unwrap();
        assert_eq!(p.len(), 1);
    }
}
