//! The IKEv2 Security Association payload (RFC 7296 §3.3): proposals, each
//! a protocol with an SPI and a list of transforms, each transform a type,
//! an ID and (for variable-length ciphers) a Key Length attribute.

use thiserror::Error;

/// Protocol IDs (§3.3.1).
pub mod protocol {
    pub const IKE: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// Transform types (§3.3.2).
pub mod transform_type {
    /// Encryption algorithm (ENCR).
    pub const ENCR: u8 = 1;
    /// Pseudorandom function (PRF), IKE only.
    pub const PRF: u8 = 2;
    /// Integrity algorithm (INTEG).
    pub const INTEG: u8 = 3;
    /// Diffie-Hellman group (D-H), called Key Exchange Method by RFC 9370.
    pub const DH: u8 = 4;
    /// Extended Sequence Numbers (ESN), child SAs only.
    pub const ESN: u8 = 5;
}

/// Transform IDs we know by name (IANA "IKEv2 Transform Type" registries).
pub mod ids {
    pub const ENCR_3DES: u16 = 3;
    pub const ENCR_AES_CBC: u16 = 12;
    /// RFC 5282 / RFC 4106: AES-GCM with a 16-byte ICV.
    pub const ENCR_AES_GCM_16: u16 = 20;
    /// RFC 7634.
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;
    pub const PRF_HMAC_SHA1: u16 = 2;
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    pub const PRF_HMAC_SHA2_512: u16 = 7;
    pub const INTEG_NONE: u16 = 0;
    pub const AUTH_HMAC_SHA1_96: u16 = 2;
    pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
    pub const AUTH_HMAC_SHA2_384_192: u16 = 13;
    pub const AUTH_HMAC_SHA2_512_256: u16 = 14;
    pub const ESN_NO: u16 = 0;
    pub const ESN_YES: u16 = 1;
}

/// §3.3.5: the only attribute defined for IKEv2 transforms, Key Length in
/// bits, always in TV form (AF bit set).
pub const ATTRIBUTE_KEY_LENGTH: u16 = 14;
const ATTRIBUTE_FORMAT_TV: u16 = 0x8000;

/// Limits that keep a hostile SA payload's cost bounded.
pub const MAX_PROPOSALS: usize = 64;
pub const MAX_TRANSFORMS: usize = 64;

/// One transform (§3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transform {
    pub kind: u8,
    pub id: u16,
    /// The Key Length attribute in bits, if present.
    pub key_bits: Option<u16>,
    /// §3.3.6: a transform with an attribute we do not understand must not
    /// be chosen; it is kept (to log what was offered) but marked.
    pub unknown_attribute: bool,
}

impl Transform {
    pub fn new(kind: u8, id: u16) -> Self {
        Transform {
            kind,
            id,
            key_bits: None,
            unknown_attribute: false,
        }
    }

    pub fn with_key_bits(kind: u8, id: u16, bits: u16) -> Self {
        Transform {
            key_bits: Some(bits),
            ..Transform::new(kind, id)
        }
    }
}

/// One proposal (§3.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num: the responder echoes the number of the one it chose.
    pub number: u8,
    pub protocol: u8,
    /// Empty in the initial IKE_SA_INIT; 8 bytes when rekeying an IKE SA;
    /// 4 bytes for ESP/AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// The transforms of one type, in the order offered.
    pub fn of_type(&self, kind: u8) -> impl Iterator<Item = &Transform> {
        self.transforms.iter().filter(move |t| t.kind == kind)
    }
}

/// Why an SA payload could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SaError {
    #[error("SA payload truncated")]
    Truncated,
    #[error("proposal {0} has a bad length")]
    ProposalLength(u8),
    #[error("proposal {number} is numbered out of order (after {previous})")]
    Numbering { number: u8, previous: u8 },
    #[error("proposal {0} declares a different number of transforms than it holds")]
    TransformCount(u8),
    #[error("a transform of proposal {0} has a bad length")]
    TransformLength(u8),
    #[error("more than {MAX_PROPOSALS} proposals")]
    TooManyProposals,
    #[error("more than {MAX_TRANSFORMS} transforms in a proposal")]
    TooManyTransforms,
    #[error("SA payload has no proposal")]
    Empty,
}

/// Parses an SA payload body into its proposals (§3.3.1: "last" is 0 for
/// the last proposal, 2 otherwise; numbers increase by one, or repeat for
/// an AND of protocols, which IKEv2 no longer uses).
pub fn parse(mut body: &[u8]) -> Result<Vec<Proposal>, SaError> {
    let mut proposals = Vec::new();
    let mut previous = 0u8;
    loop {
        if proposals.len() == MAX_PROPOSALS {
            return Err(SaError::TooManyProposals);
        }
        if body.len() < 8 {
            return Err(SaError::Truncated);
        }
        let last = body[0] == 0;
        let len = u16::from_be_bytes([body[2], body[3]]) as usize;
        let number = body[4];
        let protocol = body[5];
        let spi_len = body[6] as usize;
        let declared_transforms = body[7] as usize;
        if len < 8 + spi_len || len > body.len() {
            return Err(SaError::ProposalLength(number));
        }
        // §3.3.1: an answer echoes the number of the accepted proposal,
        // so only the order after the first is checked.
        if !proposals.is_empty() && number != previous.wrapping_add(1) && number != previous {
            return Err(SaError::Numbering { number, previous });
        }
        previous = number;
        let spi = body[8..8 + spi_len].to_vec();
        let transforms = parse_transforms(number, &body[8 + spi_len..len])?;
        if transforms.len() != declared_transforms {
            return Err(SaError::TransformCount(number));
        }
        proposals.push(Proposal {
            number,
            protocol,
            spi,
            transforms,
        });
        body = &body[len..];
        if last {
            break;
        }
    }
    if proposals.is_empty() {
        return Err(SaError::Empty);
    }
    Ok(proposals)
}

fn parse_transforms(number: u8, mut bytes: &[u8]) -> Result<Vec<Transform>, SaError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() == MAX_TRANSFORMS {
            return Err(SaError::TooManyTransforms);
        }
        if bytes.len() < 8 {
            return Err(SaError::TransformLength(number));
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if len < 8 || len > bytes.len() {
            return Err(SaError::TransformLength(number));
        }
        let mut transform = Transform::new(bytes[4], u16::from_be_bytes([bytes[6], bytes[7]]));
        let mut attributes = &bytes[8..len];
        while !attributes.is_empty() {
            if attributes.len() < 4 {
                return Err(SaError::TransformLength(number));
            }
            let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
            let value = u16::from_be_bytes([attributes[2], attributes[3]]);
            if kind & ATTRIBUTE_FORMAT_TV != 0 {
                if kind & !ATTRIBUTE_FORMAT_TV == ATTRIBUTE_KEY_LENGTH {
                    transform.key_bits = Some(value);
                } else {
                    transform.unknown_attribute = true;
                }
                attributes = &attributes[4..];
            } else {
                // TLV: `value` is the length of what follows.
                let end = 4 + value as usize;
                if end > attributes.len() {
                    return Err(SaError::TransformLength(number));
                }
                transform.unknown_attribute = true;
                attributes = &attributes[end..];
            }
        }
        out.push(transform);
        let last = bytes[0] == 0;
        bytes = &bytes[len..];
        if last {
            break;
        }
    }
    if !bytes.is_empty() {
        return Err(SaError::TransformLength(number));
    }
    Ok(out)
}

/// Encodes an SA payload body with these proposals, numbered as given.
pub fn encode(proposals: &[Proposal]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, proposal) in proposals.iter().enumerate() {
        let start = out.len();
        let more = if index + 1 < proposals.len() { 2 } else { 0 };
        out.extend_from_slice(&[more, 0, 0, 0]);
        out.extend_from_slice(&[
            proposal.number,
            proposal.protocol,
            proposal.spi.len() as u8,
            proposal.transforms.len() as u8,
        ]);
        out.extend_from_slice(&proposal.spi);
        for (t_index, transform) in proposal.transforms.iter().enumerate() {
            let more = if t_index + 1 < proposal.transforms.len() {
                3
            } else {
                0
            };
            let len: u16 = if transform.key_bits.is_some() { 12 } else { 8 };
            out.extend_from_slice(&[more, 0]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&[transform.kind, 0]);
            out.extend_from_slice(&transform.id.to_be_bytes());
            if let Some(bits) = transform.key_bits {
                out.extend_from_slice(&(ATTRIBUTE_FORMAT_TV | ATTRIBUTE_KEY_LENGTH).to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
        }
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    out
}

/// A short human-readable name of a transform, for the log line that says
/// what a refused client offered (e.g. `AES-CBC-256`, `PRF-HMAC-SHA2-256`).
pub fn transform_name(t: &Transform) -> String {
    use ids::*;
    use transform_type::*;
    let bits = t.key_bits.map(|b| format!("-{b}")).unwrap_or_default();
    match (t.kind, t.id) {
        (ENCR, ENCR_3DES) => "3DES".to_string(),
        (ENCR, ENCR_AES_CBC) => format!("AES-CBC{bits}"),
        (ENCR, ENCR_AES_GCM_16) => format!("AES-GCM-16{bits}"),
        (ENCR, ENCR_CHACHA20_POLY1305) => "ChaCha20-Poly1305".to_string(),
        (PRF, PRF_HMAC_SHA1) => "PRF-HMAC-SHA1".to_string(),
        (PRF, PRF_HMAC_SHA2_256) => "PRF-HMAC-SHA2-256".to_string(),
        (PRF, PRF_HMAC_SHA2_384) => "PRF-HMAC-SHA2-384".to_string(),
        (PRF, PRF_HMAC_SHA2_512) => "PRF-HMAC-SHA2-512".to_string(),
        (INTEG, INTEG_NONE) => "no integrity".to_string(),
        (INTEG, AUTH_HMAC_SHA1_96) => "HMAC-SHA1-96".to_string(),
        (INTEG, AUTH_HMAC_SHA2_256_128) => "HMAC-SHA2-256-128".to_string(),
        (INTEG, AUTH_HMAC_SHA2_384_192) => "HMAC-SHA2-384-192".to_string(),
        (INTEG, AUTH_HMAC_SHA2_512_256) => "HMAC-SHA2-512-256".to_string(),
        (DH, 2) => "MODP-1024".to_string(),
        (DH, 5) => "MODP-1536".to_string(),
        (DH, 14) => "MODP-2048".to_string(),
        (DH, 19) => "ECP-256".to_string(),
        (DH, 20) => "ECP-384".to_string(),
        (DH, 21) => "ECP-521".to_string(),
        (DH, 31) => "Curve25519".to_string(),
        (ESN, ESN_NO) => "no ESN".to_string(),
        (ESN, ESN_YES) => "ESN".to_string(),
        (kind, id) => format!("transform {kind}/{id}{bits}"),
    }
}

#[cfg(test)]
#[path = "sa_payload_tests.rs"]
mod tests;
