//! Choosing from the initiator's proposals: Main Mode (RFC 2409 Appendix A
//! attributes) and Quick Mode ESP (RFC 2407 §4.4.4, §4.5), within the
//! operator's [`ProposalPolicy`], and naming what was offered for the log.

use std::fmt::Write as _;

use crate::esp::{CipherSuite, Integrity};
use crate::ike_crypto::{DhGroup, HashAlg, IkeCipher};

use super::sa_payload::{protocol, Proposal, SaPayload, Transform};

/// RFC 2409 Appendix A: Main Mode attribute classes.
pub mod p1 {
    pub const ENCRYPTION: u16 = 1;
    pub const HASH: u16 = 2;
    pub const AUTH_METHOD: u16 = 3;
    pub const GROUP: u16 = 4;
    pub const LIFE_TYPE: u16 = 11;
    pub const LIFE_DURATION: u16 = 12;
    pub const KEY_LENGTH: u16 = 14;
    /// RFC 2408 §3.6: KEY_IKE, the one ISAKMP transform ID.
    pub const KEY_IKE: u8 = 1;
}

/// RFC 2407 §4.5: Quick Mode (IPsec DOI) attribute classes.
pub mod p2 {
    pub const LIFE_TYPE: u16 = 1;
    pub const LIFE_DURATION: u16 = 2;
    pub const GROUP: u16 = 3;
    pub const ENCAPSULATION: u16 = 4;
    pub const AUTH_ALGORITHM: u16 = 5;
    pub const KEY_LENGTH: u16 = 6;
    /// RFC 2407 §4.4.4 ESP transform IDs; RFC 4106 §4 (GCM, 16-byte ICV).
    pub const ESP_3DES: u8 = 3;
    pub const ESP_AES_CBC: u8 = 12;
    pub const ESP_AES_GCM_16: u8 = 20;
    /// RFC 2407 §4.5 authentication algorithms; RFC 4868 §2.4 for SHA-2.
    pub const AUTH_HMAC_MD5: u64 = 1;
    pub const AUTH_HMAC_SHA1: u64 = 2;
    pub const AUTH_HMAC_SHA2_256: u64 = 5;
}

/// RFC 2407 §4.5 life types (the same numbers in Main Mode, Appendix A).
pub const LIFE_SECONDS: u64 = 1;
pub const LIFE_KILOBYTES: u64 = 2;

/// How the peer authenticates in Main Mode (RFC 2409 Appendix A, RFC 4754 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    PreSharedKey,
    RsaSignature,
    EcdsaSha256,
    EcdsaSha384,
    /// RFC 4754 §3: ECDSA with SHA-512 on the P-521 curve.
    EcdsaSha512,
}

impl AuthMethod {
    fn from_id(id: u64) -> Option<Self> {
        Some(match id {
            1 => AuthMethod::PreSharedKey,
            3 => AuthMethod::RsaSignature,
            9 => AuthMethod::EcdsaSha256,
            10 => AuthMethod::EcdsaSha384,
            11 => AuthMethod::EcdsaSha512,
            _ => return None,
        })
    }

    /// RFC 2409 Appendix A's number.
    pub fn id(self) -> u64 {
        match self {
            AuthMethod::PreSharedKey => 1,
            AuthMethod::RsaSignature => 3,
            AuthMethod::EcdsaSha256 => 9,
            AuthMethod::EcdsaSha384 => 10,
            AuthMethod::EcdsaSha512 => 11,
        }
    }

    /// Authenticated by signatures and certificates (RFC 2409 §5.1).
    pub fn is_signature(self) -> bool {
        self != AuthMethod::PreSharedKey
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::PreSharedKey => "PSK",
            AuthMethod::RsaSignature => "RSA",
            AuthMethod::EcdsaSha256 => "ECDSA-256",
            AuthMethod::EcdsaSha384 => "ECDSA-384",
            AuthMethod::EcdsaSha512 => "ECDSA-521",
        }
    }
}

/// ESP encapsulation modes (RFC 2407 §4.5; RFC 3947 §5.1; the NAT-T
/// drafts' 61443/61444, which older clients still send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapsulationMode {
    Transport,
    UdpTransport,
    UdpTransportDraft,
    Tunnel,
    UdpTunnel,
    UdpTunnelDraft,
}

impl EncapsulationMode {
    pub fn from_id(id: u64) -> Option<Self> {
        Some(match id {
            1 => EncapsulationMode::Tunnel,
            2 => EncapsulationMode::Transport,
            3 => EncapsulationMode::UdpTunnel,
            4 => EncapsulationMode::UdpTransport,
            61443 => EncapsulationMode::UdpTunnelDraft,
            61444 => EncapsulationMode::UdpTransportDraft,
            _ => return None,
        })
    }

    pub fn is_transport(self) -> bool {
        matches!(
            self,
            EncapsulationMode::Transport
                | EncapsulationMode::UdpTransport
                | EncapsulationMode::UdpTransportDraft
        )
    }

    pub fn is_udp(self) -> bool {
        !matches!(
            self,
            EncapsulationMode::Transport | EncapsulationMode::Tunnel
        )
    }
}

/// What the operator accepts. Order does not matter: the initiator's order
/// of preference decides among acceptable proposals (RFC 2408 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalPolicy {
    pub ike_ciphers: Vec<IkeCipher>,
    pub ike_hashes: Vec<HashAlg>,
    pub ike_groups: Vec<DhGroup>,
    pub esp_suites: Vec<CipherSuite>,
}

impl Default for ProposalPolicy {
    /// What Windows 10/11, macOS/iOS, Android and NetworkManager-l2tp send
    /// on their defaults (issue 13): AES-256/128 and 3DES, SHA-1/SHA2-256/384,
    /// MODP-1024/1536/2048 and ECP-256/384; ESP AES-CBC with HMAC-SHA1-96 or
    /// HMAC-SHA2-256-128, or AES-GCM.
    fn default() -> Self {
        ProposalPolicy {
            ike_ciphers: vec![
                IkeCipher::Aes256Cbc,
                IkeCipher::Aes192Cbc,
                IkeCipher::Aes128Cbc,
                IkeCipher::TripleDesCbc,
            ],
            ike_hashes: vec![
                HashAlg::Sha1,
                HashAlg::Sha256,
                HashAlg::Sha384,
                HashAlg::Sha512,
            ],
            ike_groups: vec![
                DhGroup::Modp1024,
                DhGroup::Modp1536,
                DhGroup::Modp2048,
                DhGroup::Ecp256,
                DhGroup::Ecp384,
                DhGroup::Ecp521,
            ],
            esp_suites: vec![
                CipherSuite::Aes256Gcm16,
                CipherSuite::Aes128Gcm16,
                CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
                CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
                CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
                CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
            ],
        }
    }
}

/// The Main Mode transform chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase1Choice {
    pub proposal_number: u8,
    pub transform: Transform,
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub group: DhGroup,
    pub auth: AuthMethod,
    /// Lifetime in seconds the initiator proposed, if any.
    pub life_seconds: Option<u64>,
}

fn ike_cipher(t: &Transform) -> Option<IkeCipher> {
    match (t.attribute(p1::ENCRYPTION)?, t.attribute(p1::KEY_LENGTH)) {
        (5, None) => Some(IkeCipher::TripleDesCbc),
        // RFC 3602 §5.3 and RFC 2409 App. A: AES needs a Key Length; 128
        // is the value of implementations that leave it out.
        (7, None | Some(128)) => Some(IkeCipher::Aes128Cbc),
        (7, Some(192)) => Some(IkeCipher::Aes192Cbc),
        (7, Some(256)) => Some(IkeCipher::Aes256Cbc),
        _ => None,
    }
}

fn ike_hash(id: u64) -> Option<HashAlg> {
    Some(match id {
        1 => HashAlg::Md5,
        2 => HashAlg::Sha1,
        4 => HashAlg::Sha256,
        5 => HashAlg::Sha384,
        6 => HashAlg::Sha512,
        _ => return None,
    })
}

/// Picks the first acceptable Main Mode transform of the first ISAKMP
/// proposal that has one.
pub fn choose_phase1(
    sa: &SaPayload,
    policy: &ProposalPolicy,
    auth_allowed: &dyn Fn(AuthMethod) -> bool,
) -> Option<Phase1Choice> {
    for p in sa
        .proposals
        .iter()
        .filter(|p| p.protocol == protocol::ISAKMP)
    {
        for t in p.transforms.iter().filter(|t| t.id == p1::KEY_IKE) {
            let Some(cipher) = ike_cipher(t).filter(|c| policy.ike_ciphers.contains(c)) else {
                continue;
            };
            let Some(hash) = t
                .attribute(p1::HASH)
                .and_then(ike_hash)
                .filter(|h| policy.ike_hashes.contains(h))
            else {
                continue;
            };
            let Some(group) = t
                .attribute(p1::GROUP)
                .and_then(|g| DhGroup::from_id(g as u16))
                .filter(|g| policy.ike_groups.contains(g))
            else {
                continue;
            };
            let Some(auth) = t
                .attribute(p1::AUTH_METHOD)
                .and_then(AuthMethod::from_id)
                .filter(|a| auth_allowed(*a))
            else {
                continue;
            };
            let life_seconds = t
                .lifetimes(p1::LIFE_TYPE, p1::LIFE_DURATION)
                .into_iter()
                .find(|(kind, _)| *kind == LIFE_SECONDS)
                .map(|(_, d)| d);
            return Some(Phase1Choice {
                proposal_number: p.number,
                transform: t.clone(),
                cipher,
                hash,
                group,
                auth,
                life_seconds,
            });
        }
    }
    None
}

/// The Quick Mode proposal chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase2Choice {
    pub proposal_number: u8,
    pub transform: Transform,
    /// The initiator's SPI: what we put in ESP packets we send.
    pub initiator_spi: u32,
    pub suite: CipherSuite,
    pub mode: EncapsulationMode,
    /// PFS group, when the initiator asked for one.
    pub pfs_group: Option<DhGroup>,
    pub life_seconds: Option<u64>,
    pub life_kilobytes: Option<u64>,
}

fn esp_suite(t: &Transform) -> Option<CipherSuite> {
    let key_len = t.attribute(p2::KEY_LENGTH);
    let integrity = match t.attribute(p2::AUTH_ALGORITHM) {
        Some(p2::AUTH_HMAC_SHA1) => Some(Integrity::HmacSha1_96),
        Some(p2::AUTH_HMAC_SHA2_256) => Some(Integrity::HmacSha256_128),
        None => None,
        Some(_) => return None,
    };
    match (t.id, key_len, integrity) {
        (p2::ESP_AES_CBC, None | Some(128), Some(i)) => Some(CipherSuite::Aes128Cbc(i)),
        (p2::ESP_AES_CBC, Some(256), Some(i)) => Some(CipherSuite::Aes256Cbc(i)),
        // RFC 4106 §8.4 / RFC 4543: GCM carries no separate authentication
        // algorithm in IKEv1.
        (p2::ESP_AES_GCM_16, Some(128), None) => Some(CipherSuite::Aes128Gcm16),
        (p2::ESP_AES_GCM_16, Some(256), None) => Some(CipherSuite::Aes256Gcm16),
        // RFC 2451 §2.2: 3DES has a fixed key size (no Key Length).
        (p2::ESP_3DES, None, Some(i)) => Some(CipherSuite::TripleDesCbc(i)),
        _ => None,
    }
}

/// Picks the first acceptable ESP transform of a proposal that asks for
/// ESP alone (AH+ESP bundles share a proposal number and are skipped), in a
/// transport mode, with the PFS group (if any) within policy.
pub fn choose_phase2(sa: &SaPayload, policy: &ProposalPolicy) -> Option<Phase2Choice> {
    for p in &sa.proposals {
        let bundled = sa.proposals.iter().filter(|q| q.number == p.number).count() > 1;
        if bundled || p.protocol != protocol::ESP || p.spi.len() != 4 {
            continue;
        }
        let initiator_spi = u32::from_be_bytes(p.spi[..4].try_into().expect("4 bytes"));
        for t in &p.transforms {
            let Some(suite) = esp_suite(t).filter(|s| policy.esp_suites.contains(s)) else {
                continue;
            };
            let Some(mode) = t
                .attribute(p2::ENCAPSULATION)
                .and_then(EncapsulationMode::from_id)
                .filter(|m| m.is_transport())
            else {
                continue;
            };
            let pfs_group = match t.attribute(p2::GROUP) {
                None => None,
                Some(g) => {
                    match DhGroup::from_id(g as u16).filter(|g| policy.ike_groups.contains(g)) {
                        Some(g) => Some(g),
                        None => continue,
                    }
                }
            };
            let lifetimes = t.lifetimes(p2::LIFE_TYPE, p2::LIFE_DURATION);
            let life = |kind| lifetimes.iter().find(|(k, _)| *k == kind).map(|(_, d)| *d);
            return Some(Phase2Choice {
                proposal_number: p.number,
                transform: t.clone(),
                initiator_spi,
                suite,
                mode,
                pfs_group,
                life_seconds: life(LIFE_SECONDS),
                life_kilobytes: life(LIFE_KILOBYTES),
            });
        }
    }
    None
}

/// The hash's name as IKE logs usually spell it.
pub fn hash_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Md5 => "MD5",
        HashAlg::Sha1 => "SHA1",
        HashAlg::Sha256 => "SHA2-256",
        HashAlg::Sha384 => "SHA2-384",
        HashAlg::Sha512 => "SHA2-512",
    }
}

fn describe_phase1(t: &Transform) -> String {
    let cipher = match ike_cipher(t) {
        Some(c) => c.name().to_string(),
        None => format!("cipher {}", t.attribute(p1::ENCRYPTION).unwrap_or(0)),
    };
    let hash = match t.attribute(p1::HASH).and_then(ike_hash) {
        Some(h) => hash_name(h).to_string(),
        None => format!("hash {}", t.attribute(p1::HASH).unwrap_or(0)),
    };
    let group = match t
        .attribute(p1::GROUP)
        .and_then(|g| DhGroup::from_id(g as u16))
    {
        Some(g) => g.name().to_string(),
        None => format!("group {}", t.attribute(p1::GROUP).unwrap_or(0)),
    };
    let auth = match t.attribute(p1::AUTH_METHOD) {
        Some(a) => match AuthMethod::from_id(a) {
            Some(m) => m.name().to_string(),
            None if (65001..=65010).contains(&a) => "XAUTH".to_string(),
            None => format!("auth {a}"),
        },
        None => "no auth".to_string(),
    };
    format!("{cipher}/{hash}/{group}/{auth}")
}

fn describe_phase2(p: &Proposal, t: &Transform) -> String {
    if p.protocol != protocol::ESP {
        return format!("protocol {}", p.protocol);
    }
    let suite = match esp_suite(t) {
        Some(s) => s.to_string(),
        None => format!(
            "ESP transform {} key {} auth {}",
            t.id,
            t.attribute(p2::KEY_LENGTH).unwrap_or(0),
            t.attribute(p2::AUTH_ALGORITHM).unwrap_or(0)
        ),
    };
    let mode = match t.attribute(p2::ENCAPSULATION) {
        Some(1) | Some(3) | Some(61443) => " tunnel",
        _ => "",
    };
    let pfs = match t.attribute(p2::GROUP) {
        Some(g) => format!(
            " PFS {}",
            DhGroup::from_id(g as u16).map_or_else(|| g.to_string(), |g| g.name().to_string())
        ),
        None => String::new(),
    };
    format!("{suite}{mode}{pfs}")
}

/// One line naming every proposal offered, for the log line of a refusal.
pub fn describe_offer(sa: &SaPayload) -> String {
    let mut out = String::new();
    for p in &sa.proposals {
        for t in &p.transforms {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = if p.protocol == protocol::ISAKMP {
                write!(out, "{}", describe_phase1(t))
            } else {
                write!(out, "{}", describe_phase2(p, t))
            };
        }
    }
    if out.is_empty() {
        out.push_str("nothing");
    }
    out
}
