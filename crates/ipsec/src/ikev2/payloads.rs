//! Bodies of the IKEv2 payloads that are not SA, TS or CP: Key Exchange
//! (§3.4), Identification (§3.5), Certificate and Certificate Request
//! (§3.6, §3.7), Authentication (§3.8), Nonce (§3.9), Notify (§3.10),
//! Delete (§3.11). Parsed borrowing from the message, encoded into a Vec.

use thiserror::Error;

/// Why a payload body could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PayloadError {
    #[error("{0} payload truncated")]
    Truncated(&'static str),
    /// §3.9: a nonce is at least 16 and at most 256 bytes.
    #[error("nonce of {0} bytes is outside 16..=256")]
    NonceLength(usize),
    #[error("delete payload declares {declared} SPIs of {size} bytes but holds {actual} bytes")]
    DeleteLength {
        declared: u16,
        size: u8,
        actual: usize,
    },
}

/// Key Exchange (§3.4): the D-H group and the public value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyExchange<'a> {
    pub group: u16,
    pub data: &'a [u8],
}

impl<'a> KeyExchange<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        if body.len() < 4 {
            return Err(PayloadError::Truncated("KE"));
        }
        Ok(KeyExchange {
            group: u16::from_be_bytes([body[0], body[1]]),
            data: &body[4..],
        })
    }

    pub fn encode(group: u16, public: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + public.len());
        out.extend_from_slice(&group.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(public);
        out
    }
}

/// Nonce (§3.9): checked for length, otherwise opaque.
pub fn parse_nonce(body: &[u8]) -> Result<&[u8], PayloadError> {
    if !(16..=256).contains(&body.len()) {
        return Err(PayloadError::NonceLength(body.len()));
    }
    Ok(body)
}

/// Identification types (§3.5).
pub mod id_type {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const RFC822_ADDR: u8 = 3;
    pub const IPV6_ADDR: u8 = 5;
    pub const DER_ASN1_DN: u8 = 9;
    pub const DER_ASN1_GN: u8 = 10;
    pub const KEY_ID: u8 = 11;
}

/// Identification (§3.5). `body` is what the AUTH payload signs: §2.15
/// takes the whole IDi/IDr body (type, reserved bytes and data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identification<'a> {
    pub kind: u8,
    pub data: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Identification<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        if body.len() < 4 {
            return Err(PayloadError::Truncated("ID"));
        }
        Ok(Identification {
            kind: body[0],
            data: &body[4..],
            body,
        })
    }

    pub fn encode(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0, 0, 0];
        out.extend_from_slice(data);
        out
    }

    /// A printable form for log lines: addresses and names as text, other
    /// types as their type and length (a DN is not decoded here).
    pub fn describe(&self) -> String {
        match self.kind {
            id_type::IPV4_ADDR if self.data.len() == 4 => {
                std::net::Ipv4Addr::new(self.data[0], self.data[1], self.data[2], self.data[3])
                    .to_string()
            }
            id_type::IPV6_ADDR if self.data.len() == 16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(self.data);
                std::net::Ipv6Addr::from(octets).to_string()
            }
            id_type::FQDN | id_type::RFC822_ADDR => printable(self.data),
            id_type::KEY_ID => format!("key ID {}", printable(self.data)),
            id_type::DER_ASN1_DN => {
                use x509_parser::prelude::{FromDer, X509Name};
                match X509Name::from_der(self.data) {
                    Ok((_, name)) => printable(name.to_string().as_bytes()),
                    Err(_) => format!("a malformed distinguished name ({} bytes)", self.data.len()),
                }
            }
            kind => format!("identity of type {kind} ({} bytes)", self.data.len()),
        }
    }
}

/// Text for a log line from bytes a peer chose: printable ASCII kept,
/// anything else escaped, at most 128 characters, so that no identity can
/// forge or break a log line.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(128) {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > 128 {
        out.push('…');
    }
    out
}

/// Authentication methods (§3.8; RFC 7427 §3 for 14).
pub mod auth_method {
    pub const RSA_SIGNATURE: u8 = 1;
    pub const SHARED_KEY_MIC: u8 = 2;
    pub const DSS_SIGNATURE: u8 = 3;
    /// RFC 4754 §3.
    pub const ECDSA_SHA256_P256: u8 = 9;
    pub const ECDSA_SHA384_P384: u8 = 10;
    pub const ECDSA_SHA512_P521: u8 = 11;
    /// RFC 7427 §3: the signature carries its own algorithm identifier.
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// Authentication (§3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authentication<'a> {
    pub method: u8,
    pub data: &'a [u8],
}

impl<'a> Authentication<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        if body.len() < 4 {
            return Err(PayloadError::Truncated("AUTH"));
        }
        Ok(Authentication {
            method: body[0],
            data: &body[4..],
        })
    }

    pub fn encode(method: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![method, 0, 0, 0];
        out.extend_from_slice(data);
        out
    }
}

/// Certificate encodings (§3.6).
pub mod cert_encoding {
    pub const X509_SIGNATURE: u8 = 4;
    pub const RAW_RSA_KEY: u8 = 11;
    pub const HASH_AND_URL_X509: u8 = 12;
}

/// Certificate (§3.6) and Certificate Request (§3.7; for X.509 the data is
/// a list of 20-byte SHA-1 hashes of trusted CAs' public keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Certificate<'a> {
    pub encoding: u8,
    pub data: &'a [u8],
}

impl<'a> Certificate<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        let (&encoding, data) = body.split_first().ok_or(PayloadError::Truncated("CERT"))?;
        Ok(Certificate { encoding, data })
    }

    pub fn encode(encoding: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + data.len());
        out.push(encoding);
        out.extend_from_slice(data);
        out
    }

    /// The CA key hashes of an X.509 certificate request (§3.7); a trailing
    /// partial hash is ignored.
    pub fn ca_hashes(&self) -> impl Iterator<Item = &'a [u8]> {
        self.data.chunks_exact(20)
    }
}

/// Notify (§3.10). Types below 16384 are errors, the rest status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify<'a> {
    pub protocol: u8,
    pub spi: &'a [u8],
    pub kind: u16,
    pub data: &'a [u8],
}

impl<'a> Notify<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        if body.len() < 4 {
            return Err(PayloadError::Truncated("Notify"));
        }
        let spi_len = body[1] as usize;
        if body.len() < 4 + spi_len {
            return Err(PayloadError::Truncated("Notify"));
        }
        Ok(Notify {
            protocol: body[0],
            kind: u16::from_be_bytes([body[2], body[3]]),
            spi: &body[4..4 + spi_len],
            data: &body[4 + spi_len..],
        })
    }

    /// A notify about the IKE SA or about nothing: protocol 0, no SPI.
    pub fn encode(kind: u16, data: &[u8]) -> Vec<u8> {
        Self::encode_for(0, &[], kind, data)
    }

    /// A notify about a child SA (protocol ESP, its SPI), e.g. REKEY_SA.
    pub fn encode_for(protocol: u8, spi: &[u8], kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = vec![protocol, spi.len() as u8];
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(spi);
        out.extend_from_slice(data);
        out
    }

    pub fn is_error(&self) -> bool {
        self.kind < 16384
    }
}

/// Delete (§3.11): for IKE no SPI (the header names the SA), for ESP a
/// list of 4-byte SPIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub protocol: u8,
    pub spis: Vec<[u8; 4]>,
}

impl Delete {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        if body.len() < 4 {
            return Err(PayloadError::Truncated("Delete"));
        }
        let protocol = body[0];
        let size = body[1];
        let count = u16::from_be_bytes([body[2], body[3]]);
        let rest = &body[4..];
        if rest.len() != count as usize * size as usize {
            return Err(PayloadError::DeleteLength {
                declared: count,
                size,
                actual: rest.len(),
            });
        }
        // Only 4-byte SPIs name child SAs; an IKE delete has none (§3.11).
        let spis = if size == 4 {
            rest.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        } else {
            Vec::new()
        };
        Ok(Delete { protocol, spis })
    }

    pub fn encode(&self) -> Vec<u8> {
        let size = if self.spis.is_empty() { 0 } else { 4 };
        let mut out = vec![self.protocol, size];
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for spi in &self.spis {
            out.extend_from_slice(spi);
        }
        out
    }
}

#[cfg(test)]
#[path = "payloads_tests.rs"]
mod tests;
