//! Choosing from the initiator's IKEv2 proposals (RFC 7296 §2.7, §3.3.6)
//! within the operator's [`Ikev2Policy`], and naming what was offered for
//! the refusal log line.
//!
//! §3.3.6: the responder picks one proposal, and within it exactly one
//! transform of each type; transforms with attributes it does not know are
//! not chosen. The initiator's order states its preference, so the first
//! acceptable proposal wins — except that one whose D-H group matches the
//! KE payload already sent is preferred, which saves the INVALID_KE_PAYLOAD
//! round trip (§1.2).

use crate::esp::{CipherSuite, Integrity};
use crate::ike_crypto::{DhGroup, HashAlg, IkeCipher};

use super::encrypted::{SkCipher, SkInteg, SkTransform};
use super::sa_payload::{ids, protocol, transform_name, transform_type, Proposal, Transform};

/// What the operator accepts for IKE SAs and child SAs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ikev2Policy {
    pub ike_ciphers: Vec<SkCipher>,
    pub ike_prfs: Vec<HashAlg>,
    pub ike_integrity: Vec<SkInteg>,
    pub groups: Vec<DhGroup>,
    pub esp_suites: Vec<CipherSuite>,
}

impl Default for Ikev2Policy {
    /// What the built-in clients send on their defaults (issue 14): Windows
    /// (3DES/AES-CBC × SHA-1/SHA2-256/384 × MODP-1024, MODP-2048, AES-GCM
    /// on Windows 11, ECP-256/384), strongSwan and Apple (AES-GCM,
    /// Curve25519/ECP, ChaCha20-Poly1305).
    fn default() -> Self {
        Ikev2Policy {
            ike_ciphers: vec![
                SkCipher::AesGcm16 { key_len: 32 },
                SkCipher::AesGcm16 { key_len: 16 },
                SkCipher::ChaCha20Poly1305,
                SkCipher::Cbc(IkeCipher::Aes256Cbc),
                SkCipher::Cbc(IkeCipher::Aes192Cbc),
                SkCipher::Cbc(IkeCipher::Aes128Cbc),
                SkCipher::Cbc(IkeCipher::TripleDesCbc),
            ],
            ike_prfs: vec![
                HashAlg::Sha256,
                HashAlg::Sha384,
                HashAlg::Sha512,
                HashAlg::Sha1,
            ],
            ike_integrity: vec![
                SkInteg::HmacSha256_128,
                SkInteg::HmacSha384_192,
                SkInteg::HmacSha512_256,
                SkInteg::HmacSha1_96,
            ],
            groups: vec![
                DhGroup::Curve25519,
                DhGroup::Ecp256,
                DhGroup::Ecp384,
                DhGroup::Ecp521,
                DhGroup::Modp2048,
                DhGroup::Modp1536,
                DhGroup::Modp1024,
            ],
            esp_suites: vec![
                CipherSuite::Aes256Gcm16,
                CipherSuite::Aes128Gcm16,
                CipherSuite::ChaCha20Poly1305,
                CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
                CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
                CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
                CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
            ],
        }
    }
}

/// The IKE SA transforms chosen, and the proposal to echo in the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeChoice {
    pub reply: Proposal,
    pub protection: SkTransform,
    pub prf: HashAlg,
    pub group: DhGroup,
}

/// Why no IKE proposal was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IkeRefusal {
    /// §3.10.1 NO_PROPOSAL_CHOSEN.
    NoProposalChosen,
    /// §1.2, §3.10.1 INVALID_KE_PAYLOAD: acceptable, but with this group
    /// instead of the one in the KE payload.
    InvalidKe(DhGroup),
}

fn prf_of(id: u16) -> Option<HashAlg> {
    match id {
        ids::PRF_HMAC_SHA1 => Some(HashAlg::Sha1),
        ids::PRF_HMAC_SHA2_256 => Some(HashAlg::Sha256),
        ids::PRF_HMAC_SHA2_384 => Some(HashAlg::Sha384),
        ids::PRF_HMAC_SHA2_512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The first transform of `kind` (in the initiator's order) that `accept`
/// maps to something allowed.
fn first_of<T>(
    proposal: &Proposal,
    kind: u8,
    mut accept: impl FnMut(&Transform) -> Option<T>,
) -> Option<(Transform, T)> {
    proposal
        .of_type(kind)
        .filter(|t| !t.unknown_attribute)
        .find_map(|t| accept(t).map(|v| (*t, v)))
}

/// Chooses the IKE SA proposal of an IKE_SA_INIT (or an IKE SA rekey,
/// whose SPI the caller fills in). `ke_group` is the KE payload's group.
pub fn choose_ike(
    offered: &[Proposal],
    policy: &Ikev2Policy,
    ke_group: u16,
) -> Result<IkeChoice, IkeRefusal> {
    let mut other_group = None;
    for proposal in offered.iter().filter(|p| p.protocol == protocol::IKE) {
        let Some((encr_t, cipher)) = first_of(proposal, transform_type::ENCR, |t| {
            SkCipher::from_transform(t.id, t.key_bits).filter(|c| policy.ike_ciphers.contains(c))
        }) else {
            continue;
        };
        let Some((prf_t, prf)) = first_of(proposal, transform_type::PRF, |t| {
            prf_of(t.id).filter(|p| policy.ike_prfs.contains(p))
        }) else {
            continue;
        };
        // §3.3.3: an AEAD proposal has no integrity transform, or only NONE.
        let integ = if cipher.is_aead() {
            if proposal
                .of_type(transform_type::INTEG)
                .any(|t| t.id != ids::INTEG_NONE)
            {
                continue;
            }
            None
        } else {
            match first_of(proposal, transform_type::INTEG, |t| {
                SkInteg::from_transform(t.id).filter(|i| policy.ike_integrity.contains(i))
            }) {
                Some(found) => Some(found),
                None => continue,
            }
        };
        let groups: Vec<(Transform, DhGroup)> = proposal
            .of_type(transform_type::DH)
            .filter(|t| !t.unknown_attribute)
            .filter_map(|t| {
                DhGroup::from_id(t.id)
                    .filter(|g| policy.groups.contains(g))
                    .map(|g| (*t, g))
            })
            .collect();
        let Some(&(dh_t, group)) = groups.iter().find(|(_, g)| g.id() == ke_group) else {
            if let Some(&(_, g)) = groups.first() {
                other_group.get_or_insert(g);
            }
            continue;
        };
        let mut transforms = vec![encr_t, prf_t];
        if let Some((t, _)) = integ {
            transforms.push(t);
        }
        transforms.push(dh_t);
        return Ok(IkeChoice {
            reply: Proposal {
                number: proposal.number,
                protocol: protocol::IKE,
                spi: Vec::new(),
                transforms,
            },
            protection: SkTransform {
                cipher,
                integ: integ.map(|(_, i)| i),
            },
            prf,
            group,
        });
    }
    Err(other_group.map_or(IkeRefusal::NoProposalChosen, IkeRefusal::InvalidKe))
}

/// The child SA (ESP) transforms chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildChoice {
    /// Echoed in the reply; the caller puts its own SPI in.
    pub reply: Proposal,
    pub suite: CipherSuite,
    /// The initiator's SPI: where we send.
    pub peer_spi: u32,
    /// The D-H group for PFS (CREATE_CHILD_SA with KE only).
    pub group: Option<DhGroup>,
}

fn esp_suite(encr: &Transform, integ: Option<u16>) -> Option<CipherSuite> {
    let integrity = match integ {
        None | Some(ids::INTEG_NONE) => None,
        Some(ids::AUTH_HMAC_SHA1_96) => Some(Integrity::HmacSha1_96),
        Some(ids::AUTH_HMAC_SHA2_256_128) => Some(Integrity::HmacSha256_128),
        Some(_) => return None,
    };
    match (encr.id, encr.key_bits, integrity) {
        (ids::ENCR_AES_GCM_16, Some(128), None) => Some(CipherSuite::Aes128Gcm16),
        (ids::ENCR_AES_GCM_16, Some(256), None) => Some(CipherSuite::Aes256Gcm16),
        (ids::ENCR_AES_CBC, Some(128), Some(i)) => Some(CipherSuite::Aes128Cbc(i)),
        (ids::ENCR_AES_CBC, Some(256), Some(i)) => Some(CipherSuite::Aes256Cbc(i)),
        // RFC 7634 §4: no Key Length attribute, no integrity transform.
        (ids::ENCR_CHACHA20_POLY1305, None, None) => Some(CipherSuite::ChaCha20Poly1305),
        // RFC 2451 §2.2: 3DES has a fixed key size.
        (ids::ENCR_3DES, None, Some(i)) => Some(CipherSuite::TripleDesCbc(i)),
        _ => None,
    }
}

/// Chooses the ESP proposal of IKE_AUTH or CREATE_CHILD_SA.
///
/// `pfs_group`: the KE payload's group in a CREATE_CHILD_SA that carries
/// one; `None` in IKE_AUTH, where §1.2 says D-H transforms in the child
/// proposals are ignored (no KE is exchanged there), and in a rekey
/// without PFS (Windows' default). We offer no extended sequence numbers,
/// so a proposal must allow ESN "no" (§3.3.2).
pub fn choose_child(
    offered: &[Proposal],
    policy: &Ikev2Policy,
    pfs_group: Option<u16>,
) -> Result<ChildChoice, IkeRefusal> {
    let mut other_group = None;
    for proposal in offered.iter().filter(|p| p.protocol == protocol::ESP) {
        let Ok(spi) = <[u8; 4]>::try_from(proposal.spi.as_slice()) else {
            continue;
        };
        let integ_ids: Vec<Option<u16>> = {
            let ids: Vec<Option<u16>> = proposal
                .of_type(transform_type::INTEG)
                .filter(|t| !t.unknown_attribute)
                .map(|t| Some(t.id))
                .collect();
            if ids.is_empty() {
                vec![None]
            } else {
                ids
            }
        };
        let mut chosen = None;
        'encr: for encr in proposal
            .of_type(transform_type::ENCR)
            .filter(|t| !t.unknown_attribute)
        {
            for integ in &integ_ids {
                if let Some(suite) =
                    esp_suite(encr, *integ).filter(|s| policy.esp_suites.contains(s))
                {
                    chosen = Some((*encr, *integ, suite));
                    break 'encr;
                }
            }
        }
        let Some((encr_t, integ_id, suite)) = chosen else {
            continue;
        };
        let esn_ok = proposal.of_type(transform_type::ESN).count() == 0
            || proposal
                .of_type(transform_type::ESN)
                .any(|t| t.id == ids::ESN_NO);
        if !esn_ok {
            continue;
        }
        let group = match pfs_group {
            None => None,
            Some(ke) => {
                let groups: Vec<DhGroup> = proposal
                    .of_type(transform_type::DH)
                    .filter_map(|t| DhGroup::from_id(t.id))
                    .filter(|g| policy.groups.contains(g))
                    .collect();
                match groups.iter().find(|g| g.id() == ke) {
                    Some(&g) => Some(g),
                    None => {
                        if let Some(&g) = groups.first() {
                            other_group.get_or_insert(g);
                        }
                        continue;
                    }
                }
            }
        };
        let mut transforms = vec![encr_t];
        if let Some(id) = integ_id {
            transforms.push(Transform::new(transform_type::INTEG, id));
        }
        if let Some(g) = group {
            transforms.push(Transform::new(transform_type::DH, g.id()));
        }
        transforms.push(Transform::new(transform_type::ESN, ids::ESN_NO));
        return Ok(ChildChoice {
            reply: Proposal {
                number: proposal.number,
                protocol: protocol::ESP,
                spi: Vec::new(),
                transforms,
            },
            suite,
            peer_spi: u32::from_be_bytes(spi),
            group,
        });
    }
    Err(other_group.map_or(IkeRefusal::NoProposalChosen, IkeRefusal::InvalidKe))
}

/// One line naming every offered proposal, e.g.
/// `IKE #1 AES-CBC-256/PRF-HMAC-SHA1/HMAC-SHA1-96/MODP-1024, IKE #2 …`.
pub fn describe_offer(offered: &[Proposal]) -> String {
    offered
        .iter()
        .take(16)
        .map(|p| {
            let proto = match p.protocol {
                protocol::IKE => "IKE",
                protocol::ESP => "ESP",
                protocol::AH => "AH",
                _ => "protocol ?",
            };
            let transforms: Vec<String> = p.transforms.iter().map(transform_name).collect();
            format!("{proto} #{} {}", p.number, transforms.join("/"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "proposal_tests.rs"]
mod tests;
