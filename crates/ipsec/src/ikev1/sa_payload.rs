//! The Security Association payload with its proposals, transforms and data
//! attributes (RFC 2408 §3.4–3.6, RFC 2407 §4.6.1).

use thiserror::Error;

use super::wire::{payload, GENERIC_HEADER_LEN};

/// RFC 2407 §4.2: the IPsec DOI.
pub const DOI_IPSEC: u32 = 1;
/// RFC 2407 §4.2: SIT_IDENTITY_ONLY.
pub const SIT_IDENTITY_ONLY: u32 = 1;

/// Protocol IDs (RFC 2407 §4.4.1).
pub mod protocol {
    pub const ISAKMP: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// Bounds on what one SA payload may hold, so hostile input stays cheap.
pub const MAX_PROPOSALS: usize = 32;
pub const MAX_TRANSFORMS: usize = 64;
pub const MAX_ATTRIBUTES: usize = 32;

/// Why an SA payload could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SaError {
    #[error("SA payload shorter than DOI and situation")]
    Short,
    #[error("DOI {0} is not IPsec")]
    Doi(u32),
    #[error("malformed proposal")]
    Proposal,
    #[error("malformed transform")]
    Transform,
    #[error("malformed data attribute")]
    Attribute,
    #[error("too many proposals, transforms or attributes")]
    TooMany,
}

/// One data attribute (RFC 2408 §3.3): basic (AF=1, 2-byte value) or
/// variable length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u16,
    pub value: Vec<u8>,
}

impl Attribute {
    /// The value as an unsigned number, if it fits in 8 bytes.
    pub fn number(&self) -> Option<u64> {
        (self.value.len() <= 8).then(|| {
            self.value
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | b as u64)
        })
    }
}

/// One transform: its ID and attributes, and the attribute bytes as
/// received, so a chosen transform can be echoed exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    pub number: u8,
    pub id: u8,
    pub attributes: Vec<Attribute>,
    pub raw_attributes: Vec<u8>,
}

impl Transform {
    /// The first attribute of `kind`, as a number.
    pub fn attribute(&self, kind: u16) -> Option<u64> {
        self.attributes
            .iter()
            .find(|a| a.kind == kind)
            .and_then(Attribute::number)
    }

    /// Every (life type, life duration) pair, in order (RFC 2407 §4.5: a
    /// duration follows its type).
    pub fn lifetimes(&self, type_kind: u16, duration_kind: u16) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut current = None;
        for a in &self.attributes {
            if a.kind == type_kind {
                current = a.number();
            } else if a.kind == duration_kind {
                if let (Some(t), Some(d)) = (current, a.number()) {
                    out.push((t, d));
                }
            }
        }
        out
    }
}

/// One proposal (RFC 2408 §3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// A parsed SA payload body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaPayload {
    pub doi: u32,
    pub situation: u32,
    pub proposals: Vec<Proposal>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads data attributes (RFC 2408 §3.3).
pub fn parse_attributes(mut bytes: &[u8]) -> Result<Vec<Attribute>, SaError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() == MAX_ATTRIBUTES {
            return Err(SaError::TooMany);
        }
        if bytes.len() < 4 {
            return Err(SaError::Attribute);
        }
        let word = be16(bytes);
        let kind = word & 0x7fff;
        if word & 0x8000 != 0 {
            out.push(Attribute {
                kind,
                value: bytes[2..4].to_vec(),
            });
            bytes = &bytes[4..];
        } else {
            let len = be16(&bytes[2..]) as usize;
            if bytes.len() < 4 + len {
                return Err(SaError::Attribute);
            }
            out.push(Attribute {
                kind,
                value: bytes[4..4 + len].to_vec(),
            });
            bytes = &bytes[4 + len..];
        }
    }
    Ok(out)
}

/// Appends a basic (2-byte) attribute.
pub fn push_basic(out: &mut Vec<u8>, kind: u16, value: u16) {
    out.extend_from_slice(&(0x8000 | kind).to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a variable-length attribute.
pub fn push_variable(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&(kind & 0x7fff).to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Appends a number as the shortest fitting attribute (basic if ≤ 0xffff).
pub fn push_number(out: &mut Vec<u8>, kind: u16, value: u64) {
    if value <= 0xffff {
        push_basic(out, kind, value as u16);
    } else if value <= u32::MAX as u64 {
        push_variable(out, kind, &(value as u32).to_be_bytes());
    } else {
        push_variable(out, kind, &value.to_be_bytes());
    }
}

/// Splits a run of sub-payloads whose generic headers use `expected` as the
/// "more follow" marker (2 for proposals, 3 for transforms) and 0 for the
/// last one (RFC 2408 §3.5, §3.6).
fn sub_payloads(mut bytes: &[u8], expected: u8, limit: usize) -> Result<Vec<&[u8]>, SaError> {
    let mut out = Vec::new();
    loop {
        if out.len() == limit {
            return Err(SaError::TooMany);
        }
        if bytes.len() < GENERIC_HEADER_LEN {
            return Err(if expected == payload::PROPOSAL {
                SaError::Proposal
            } else {
                SaError::Transform
            });
        }
        let next = bytes[0];
        let len = be16(&bytes[2..]) as usize;
        if len < GENERIC_HEADER_LEN || len > bytes.len() || (next != 0 && next != expected) {
            return Err(if expected == payload::PROPOSAL {
                SaError::Proposal
            } else {
                SaError::Transform
            });
        }
        out.push(&bytes[GENERIC_HEADER_LEN..len]);
        bytes = &bytes[len..];
        if next == 0 {
            return Ok(out);
        }
    }
}

impl SaPayload {
    /// Parses an SA payload body (after its generic header).
    pub fn parse(body: &[u8]) -> Result<SaPayload, SaError> {
        if body.len() < 8 {
            return Err(SaError::Short);
        }
        let doi = u32::from_be_bytes(body[0..4].try_into().expect("4 bytes"));
        if doi != DOI_IPSEC {
            return Err(SaError::Doi(doi));
        }
        let situation = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes"));
        // RFC 2407 §4.6.1: SIT_IDENTITY_ONLY has no labelled domain data;
        // the other situations are not supported, and their trailing fields
        // would be read as proposals and fail cleanly.
        let mut proposals = Vec::new();
        for p in sub_payloads(&body[8..], payload::PROPOSAL, MAX_PROPOSALS)? {
            if p.len() < 4 {
                return Err(SaError::Proposal);
            }
            let (number, protocol, spi_len, count) = (p[0], p[1], p[2] as usize, p[3]);
            if p.len() < 4 + spi_len {
                return Err(SaError::Proposal);
            }
            let spi = p[4..4 + spi_len].to_vec();
            let mut transforms = Vec::new();
            if count > 0 {
                for t in sub_payloads(&p[4 + spi_len..], payload::TRANSFORM, MAX_TRANSFORMS)? {
                    if t.len() < 4 {
                        return Err(SaError::Transform);
                    }
                    transforms.push(Transform {
                        number: t[0],
                        id: t[1],
                        attributes: parse_attributes(&t[4..])?,
                        raw_attributes: t[4..].to_vec(),
                    });
                }
            }
            if transforms.len() != count as usize {
                return Err(SaError::Transform);
            }
            proposals.push(Proposal {
                number,
                protocol,
                spi,
                transforms,
            });
        }
        Ok(SaPayload {
            doi,
            situation,
            proposals,
        })
    }

    /// Encodes an SA payload body holding proposals, each with its
    /// transforms (attributes as raw bytes).
    pub fn encode(situation: u32, proposals: &[Proposal]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&DOI_IPSEC.to_be_bytes());
        out.extend_from_slice(&situation.to_be_bytes());
        for (pi, p) in proposals.iter().enumerate() {
            let mut body = vec![
                p.number,
                p.protocol,
                p.spi.len() as u8,
                p.transforms.len() as u8,
            ];
            body.extend_from_slice(&p.spi);
            for (ti, t) in p.transforms.iter().enumerate() {
                let next = if ti + 1 < p.transforms.len() {
                    payload::TRANSFORM
                } else {
                    0
                };
                let len = (GENERIC_HEADER_LEN + 4 + t.raw_attributes.len()) as u16;
                body.extend_from_slice(&[next, 0]);
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(&[t.number, t.id, 0, 0]);
                body.extend_from_slice(&t.raw_attributes);
            }
            let next = if pi + 1 < proposals.len() {
                payload::PROPOSAL
            } else {
                0
            };
            out.extend_from_slice(&[next, 0]);
            out.extend_from_slice(&((GENERIC_HEADER_LEN + body.len()) as u16).to_be_bytes());
            out.extend_from_slice(&body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(number: u8, id: u8, attrs: &[(u16, u64)]) -> Transform {
        let mut raw = Vec::new();
        for &(k, v) in attrs {
            push_number(&mut raw, k, v);
        }
        Transform {
            number,
            id,
            attributes: parse_attributes(&raw).unwrap(),
            raw_attributes: raw,
        }
    }

    #[test]
    fn proposals_round_trip() {
        let proposals = vec![
            Proposal {
                number: 1,
                protocol: protocol::ISAKMP,
                spi: vec![],
                transforms: vec![
                    transform(
                        1,
                        1,
                        &[
                            (1, 7),
                            (14, 256),
                            (2, 2),
                            (3, 1),
                            (4, 14),
                            (11, 1),
                            (12, 28800),
                        ],
                    ),
                    transform(
                        2,
                        1,
                        &[(1, 5), (2, 2), (3, 1), (4, 2), (11, 1), (12, 86_400 * 10)],
                    ),
                ],
            },
            Proposal {
                number: 2,
                protocol: protocol::ESP,
                spi: vec![1, 2, 3, 4],
                transforms: vec![transform(1, 12, &[(6, 128)])],
            },
        ];
        let body = SaPayload::encode(SIT_IDENTITY_ONLY, &proposals);
        let sa = SaPayload::parse(&body).unwrap();
        assert_eq!(sa.proposals, proposals);
        assert_eq!(sa.proposals[0].transforms[1].attribute(12), Some(864_000));
        assert_eq!(
            sa.proposals[0].transforms[0].lifetimes(11, 12),
            vec![(1, 28800)]
        );
    }

    #[test]
    fn hostile_sa_payloads_are_errors() {
        assert_eq!(SaPayload::parse(&[0; 4]), Err(SaError::Short));
        assert_eq!(
            SaPayload::parse(&[0, 0, 0, 2, 0, 0, 0, 1]),
            Err(SaError::Doi(2))
        );
        // A proposal that claims one transform and has none.
        let mut body = SaPayload::encode(
            SIT_IDENTITY_ONLY,
            &[Proposal {
                number: 1,
                protocol: 1,
                spi: vec![],
                transforms: vec![],
            }],
        );
        body[8 + 4 + 3] = 1;
        assert!(SaPayload::parse(&body).is_err());
        // An attribute running past its transform.
        assert_eq!(parse_attributes(&[0, 12, 0, 9, 1]), Err(SaError::Attribute));
    }
}
