//! What an IKEv2 initiator (`ras connect ikev2://`) is configured with.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::esp::{CipherSuite, Integrity};
use crate::ike_crypto::{DhGroup, HashAlg, IkeCipher};

use super::encrypted::{SkCipher, SkInteg};
use super::payloads::id_type;
use super::server_signature::ServerTrust;

/// How the client authenticates (RFC 7296 §2.15, §2.16).
#[derive(Clone)]
pub enum ClientAuth {
    /// AUTH with a pre-shared key, which also checks the server's AUTH.
    SharedKey(Zeroizing<Vec<u8>>),
    /// EAP, run by the caller (the EAP method's messages come as events).
    /// The server's first AUTH is checked with its certificate when
    /// `Ikev2InitiatorConfig::server_trust` is set (what servers do,
    /// RFC 7296 §2.16), else with `server_key`.
    Eap { server_key: Zeroizing<Vec<u8>> },
    /// AUTH signed with our certificate's key, the chain in CERT payloads
    /// (§2.15, §3.6); the server must sign too (`server_trust` is
    /// required).
    Certificate(std::sync::Arc<super::signature_auth::ServerCredential>),
}

/// One IKE proposal we offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ikev2Offer {
    pub cipher: SkCipher,
    pub prf: HashAlg,
    /// `None` for AEAD ciphers.
    pub integ: Option<SkInteg>,
    pub group: DhGroup,
}

/// Initiator settings.
#[derive(Clone)]
pub struct Ikev2InitiatorConfig {
    pub auth: ClientAuth,
    /// The server must authenticate with a certificate from these CAs
    /// (its AUTH a signature); `None`: a shared key (the PSK, or EAP's
    /// `server_key`).
    pub server_trust: Option<ServerTrust>,
    /// IDi: type and data (§3.5).
    pub identity_type: u8,
    pub identity: Vec<u8>,
    /// IKE proposals, most preferred first; the first one's group is the
    /// KE we guess (§1.2: the server may ask for another).
    pub ike_offers: Vec<Ikev2Offer>,
    /// ESP suites, most preferred first.
    pub esp_suites: Vec<CipherSuite>,
    /// Ask for a virtual address and DNS servers (CFG_REQUEST, §3.15).
    pub request_address: bool,
    /// The server's NAT-T port (§2.23: 4500).
    pub nat_t_port: u16,
    /// Use UDP encapsulation (port 4500) even without a NAT: §2.23 lets
    /// the initiator send a NAT_DETECTION_SOURCE_IP that cannot match,
    /// so the server sees a NAT and both ends encapsulate (and UDP
    /// segmentation offload applies to ESP).
    pub force_udp_encapsulation: bool,
    /// Announce RFC 7383 fragmentation and MOBIKE.
    pub fragmentation: bool,
    pub fragment_size: usize,
    pub mobike: bool,
    /// §2.1 leaves retransmission to implementations: resend at these
    /// times after the first send, then give up.
    pub retransmit_at: Vec<Duration>,
    pub give_up_after: Duration,
    /// Check an idle server this often (§2.4).
    pub liveness_interval: Duration,
    /// RFC 3948 §2.3 NAT-keepalives while behind a NAT.
    pub keepalive_interval: Duration,
    /// Measure the NAT's UDP timeout with our server's probe extension
    /// (nat_probe.rs); `None`: not offered.
    pub nat_probe: Option<super::nat_probe::NatProbeSettings>,
    /// A timeout measured before on this network: its keepalive is used
    /// at once and nothing is measured.
    pub known_nat_timeout: Option<Duration>,
    /// Child SA lifetime; rekey (CREATE_CHILD_SA, §1.3.3) at this share
    /// (per cent) of it.
    pub child_lifetime: Duration,
    pub rekey_percent: u32,
    /// IKE SA lifetime; rekeyed (§2.18) at `rekey_percent` of it. Below
    /// strongSwan's default of 4 h, so the client rekeys first.
    pub ike_lifetime: Duration,
    pub replay_window: u32,
}

impl Ikev2InitiatorConfig {
    pub fn new(auth: ClientAuth, identity: &str) -> Self {
        Ikev2InitiatorConfig {
            auth,
            server_trust: None,
            identity_type: id_type::FQDN,
            identity: identity.as_bytes().to_vec(),
            ike_offers: default_ike_offers(),
            esp_suites: vec![
                CipherSuite::Aes256Gcm16,
                CipherSuite::Aes128Gcm16,
                CipherSuite::ChaCha20Poly1305,
                CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
                CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
            ],
            request_address: true,
            nat_t_port: 4500,
            force_udp_encapsulation: false,
            fragmentation: true,
            fragment_size: 1280,
            mobike: true,
            retransmit_at: vec![
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8),
                Duration::from_secs(16),
            ],
            give_up_after: Duration::from_secs(30),
            liveness_interval: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(20),
            nat_probe: None,
            known_nat_timeout: None,
            child_lifetime: Duration::from_secs(3600),
            rekey_percent: 85,
            ike_lifetime: Duration::from_secs(3 * 3600),
            replay_window: 1024,
        }
    }
}

/// Strong suites first (what strongSwan and Apple send), then Windows'
/// (AES-CBC with SHA-2, MODP-2048).
pub fn default_ike_offers() -> Vec<Ikev2Offer> {
    vec![
        Ikev2Offer {
            cipher: SkCipher::AesGcm16 { key_len: 32 },
            prf: HashAlg::Sha256,
            integ: None,
            group: DhGroup::Curve25519,
        },
        Ikev2Offer {
            cipher: SkCipher::AesGcm16 { key_len: 16 },
            prf: HashAlg::Sha256,
            integ: None,
            group: DhGroup::Ecp256,
        },
        Ikev2Offer {
            cipher: SkCipher::Cbc(IkeCipher::Aes256Cbc),
            prf: HashAlg::Sha256,
            integ: Some(SkInteg::HmacSha256_128),
            group: DhGroup::Modp2048,
        },
    ]
}
