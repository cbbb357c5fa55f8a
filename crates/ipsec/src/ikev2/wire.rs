//! The IKEv2 message layout (RFC 7296 §3.1, §3.2): the fixed header and the
//! chain of generic payloads, parsed without copying and built into one
//! buffer.

use thiserror::Error;

/// RFC 7296 §3.1: the fixed header is 28 bytes.
pub const HEADER_LEN: usize = 28;
/// RFC 7296 §3.2: every payload starts with a 4-byte generic header.
pub const GENERIC_HEADER_LEN: usize = 4;
/// RFC 7296 §3.1: major version 2, minor version 0.
pub const VERSION_2_0: u8 = 0x20;
/// The largest message we accept before reassembly. RFC 7296 §2 requires
/// accepting at least 1280 bytes; unfragmented IKE_AUTH with a certificate
/// chain can reach a few kilobytes. Anything bigger is refused before work.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// A limit on payloads per message, so that a message of many empty
/// payloads costs a bounded amount of work.
///
/// Not too low: a client sends one certificate request per CA it trusts
/// (Windows one per trusted root, strongSwan one per loaded CA, and a
/// machine may trust well over a hundred); splitting the chain is linear
/// in the message, whose size is bounded anyway.
pub const MAX_PAYLOADS: usize = 512;

/// RFC 7296 §3.1 flags.
pub mod flags {
    /// Initiator: set in messages from the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// Version: the sender could speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// Response: this message answers one with the same Message ID.
    pub const RESPONSE: u8 = 0x20;
}

/// Exchange types (RFC 7296 §3.1).
pub mod exchange {
    pub const IKE_SA_INIT: u8 = 34;
    pub const IKE_AUTH: u8 = 35;
    pub const CREATE_CHILD_SA: u8 = 36;
    pub const INFORMATIONAL: u8 = 37;
}

/// Payload types (RFC 7296 §3.2; RFC 7383 §2.5 for SKF).
pub mod payload {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 33;
    pub const KE: u8 = 34;
    pub const IDI: u8 = 35;
    pub const IDR: u8 = 36;
    pub const CERT: u8 = 37;
    pub const CERTREQ: u8 = 38;
    pub const AUTH: u8 = 39;
    pub const NONCE: u8 = 40;
    pub const NOTIFY: u8 = 41;
    pub const DELETE: u8 = 42;
    pub const VENDOR_ID: u8 = 43;
    pub const TSI: u8 = 44;
    pub const TSR: u8 = 45;
    /// Encrypted and Authenticated (§3.14): always the last payload.
    pub const SK: u8 = 46;
    pub const CP: u8 = 47;
    pub const EAP: u8 = 48;
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5).
    pub const SKF: u8 = 53;

    /// Payload types this implementation understands (§2.5: an unknown
    /// payload with the critical bit set is refused).
    pub fn is_known(kind: u8) -> bool {
        matches!(kind, SA..=EAP | SKF)
    }

    /// A short name for log lines.
    pub fn name(kind: u8) -> &'static str {
        match kind {
            SA => "SA",
            KE => "KE",
            IDI => "IDi",
            IDR => "IDr",
            CERT => "CERT",
            CERTREQ => "CERTREQ",
            AUTH => "AUTH",
            NONCE => "Nonce",
            NOTIFY => "Notify",
            DELETE => "Delete",
            VENDOR_ID => "Vendor ID",
            TSI => "TSi",
            TSR => "TSr",
            SK => "SK",
            CP => "CP",
            EAP => "EAP",
            SKF => "SKF",
            _ => "unknown",
        }
    }
}

/// The fixed IKEv2 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
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
    #[error("shorter than an IKE header ({0} bytes)")]
    Short(usize),
    /// RFC 7296 §2.5: answered with INVALID_MAJOR_VERSION, not processed.
    #[error("IKE major version {0} is not 2")]
    Version(u8),
    #[error("header length {declared} does not match the {actual} bytes received")]
    Length { declared: u32, actual: usize },
    #[error("message of {0} bytes is over our limit")]
    TooLong(usize),
    #[error("{} payload runs past the end of the message", payload::name(*.0))]
    PayloadOverrun(u8),
    #[error("{} payload is shorter than its generic header", payload::name(*.0))]
    PayloadShort(u8),
    #[error("more than {0} payloads in one message")]
    TooManyPayloads(usize),
    /// RFC 7296 §2.5: answered with UNSUPPORTED_CRITICAL_PAYLOAD.
    #[error("unknown payload type {0} marked critical")]
    UnsupportedCritical(u8),
    /// RFC 7296 §3.14: the Encrypted payload must be the last one.
    #[error("payloads follow the encrypted payload")]
    AfterEncrypted,
}

impl Header {
    /// A header for a message of `exchange` on the SA named by the SPIs;
    /// Next Payload and Length are filled in when the message is built.
    pub fn new(spi_i: [u8; 8], spi_r: [u8; 8], exchange: u8, flags: u8, message_id: u32) -> Header {
        Header {
            spi_i,
            spi_r,
            next_payload: 0,
            version: VERSION_2_0,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Reads the header and checks the version and the length field against
    /// the datagram (§3.1: Length is the whole message).
    pub fn parse(message: &[u8]) -> Result<Header, WireError> {
        if message.len() < HEADER_LEN {
            return Err(WireError::Short(message.len()));
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(WireError::TooLong(message.len()));
        }
        let mut spi_i = [0u8; 8];
        let mut spi_r = [0u8; 8];
        spi_i.copy_from_slice(&message[0..8]);
        spi_r.copy_from_slice(&message[8..16]);
        let header = Header {
            spi_i,
            spi_r,
            next_payload: message[16],
            version: message[17],
            exchange: message[18],
            flags: message[19],
            message_id: u32::from_be_bytes([message[20], message[21], message[22], message[23]]),
            length: u32::from_be_bytes([message[24], message[25], message[26], message[27]]),
        };
        // §2.5: a major version above ours is answered (by the caller) with
        // INVALID_MAJOR_VERSION; minor versions are ignored.
        if header.version >> 4 != 2 {
            return Err(WireError::Version(header.version >> 4));
        }
        if header.length as usize != message.len() {
            return Err(WireError::Length {
                declared: header.length,
                actual: message.len(),
            });
        }
        Ok(header)
    }

    /// Writes the header into the first 28 bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.spi_i);
        out[8..16].copy_from_slice(&self.spi_r);
        out[16] = self.next_payload;
        out[17] = self.version;
        out[18] = self.exchange;
        out[19] = self.flags;
        out[20..24].copy_from_slice(&self.message_id.to_be_bytes());
        out[24..28].copy_from_slice(&self.length.to_be_bytes());
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::RESPONSE != 0
    }

    /// Whether the message comes from the original initiator of the IKE SA.
    pub fn from_initiator(&self) -> bool {
        self.flags & flags::INITIATOR != 0
    }
}

/// One payload of the chain: its type, its body without the generic header,
/// and the generic header's "next payload" (which, for SK and SKF, names the
/// first payload inside the encrypted data, §3.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    pub kind: u8,
    pub next: u8,
    pub critical: bool,
    pub body: &'a [u8],
}

/// Splits a payload chain that starts with type `first` (§3.2).
///
/// Unknown payloads without the critical bit are skipped as §2.5 requires;
/// with it, the message is refused. Nothing may follow SK or SKF (§3.14,
/// RFC 7383 §2.5): their "next payload" is the inner chain's first type.
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
        let critical = bytes[1] & 0x80 != 0;
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if len < GENERIC_HEADER_LEN {
            return Err(WireError::PayloadShort(kind));
        }
        if len > bytes.len() {
            return Err(WireError::PayloadOverrun(kind));
        }
        let body = &bytes[GENERIC_HEADER_LEN..len];
        bytes = &bytes[len..];
        if payload::is_known(kind) {
            out.push(RawPayload {
                kind,
                next,
                critical,
                body,
            });
        } else if critical {
            return Err(WireError::UnsupportedCritical(kind));
        }
        if kind == payload::SK || kind == payload::SKF {
            if !bytes.is_empty() {
                return Err(WireError::AfterEncrypted);
            }
            break;
        }
        kind = next;
    }
    Ok(out)
}

/// The payload chain builder is IKEv1's: the generic payload header is the
/// same in both versions (RFC 2408 §3.2, RFC 7296 §3.2), and we set no
/// critical bit (§2.5: every payload we send is one the peer must know).
pub use crate::ikev1::wire::PayloadChain;

/// The body of the first payload of `kind` in a parsed chain.
pub fn find<'a>(chain: &[RawPayload<'a>], kind: u8) -> Option<&'a [u8]> {
    chain.iter().find(|p| p.kind == kind).map(|p| p.body)
}

/// Every well-formed Notify payload of a parsed chain.
pub fn notifies<'c, 'a: 'c>(
    chain: &'c [RawPayload<'a>],
) -> impl Iterator<Item = super::payloads::Notify<'a>> + 'c {
    chain
        .iter()
        .filter(|p| p.kind == payload::NOTIFY)
        .filter_map(|p| super::payloads::Notify::parse(p.body).ok())
}

/// Builds a whole unencrypted message (IKE_SA_INIT) from a header template
/// and a chain; the header's Next Payload and Length are filled in.
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
#[path = "wire_tests.rs"]
mod tests;
