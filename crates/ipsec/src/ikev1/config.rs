//! What an IKEv1 responder is configured with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

use super::certificates::CertificateAuth;
use super::fragment::DEFAULT_FRAGMENT_SIZE;
use super::proposal::ProposalPolicy;

/// Pre-shared keys. RFC 2409 §5.4: in Main Mode the key must be chosen
/// before the peer's identity is known (it is encrypted under a key derived
/// from the PSK), so keys are found by the peer's source address, else the
/// one wildcard key. The identity is never required to equal the source
/// address: Windows behind NAT sends its private address as ID_IPV4_ADDR.
#[derive(Clone, Default)]
pub struct PskTable {
    by_address: HashMap<IpAddr, Zeroizing<Vec<u8>>>,
    wildcard: Option<Zeroizing<Vec<u8>>>,
}

impl PskTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for every peer without a key of its own.
    pub fn with_wildcard(mut self, key: &[u8]) -> Self {
        self.wildcard = Some(Zeroizing::new(key.to_vec()));
        self
    }

    pub fn insert(&mut self, peer: IpAddr, key: &[u8]) {
        self.by_address.insert(peer, Zeroizing::new(key.to_vec()));
    }

    pub fn lookup(&self, peer: IpAddr) -> Option<&[u8]> {
        self.by_address
            .get(&peer)
            .or(self.wildcard.as_ref())
            .map(|k| k.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty() && self.wildcard.is_none()
    }
}

/// Responder settings.
#[derive(Clone)]
pub struct ResponderConfig {
    pub psks: PskTable,
    /// Signature authentication (RFC 2409 §5.1, RFC 4754): our chain and
    /// key, and the CAs client certificates must chain to. Without it only
    /// pre-shared keys are accepted.
    pub certificates: Option<CertificateAuth>,
    /// IKEv1 fragmentation (the "FRAGMENTATION" vendor ID): answer the
    /// announcement, reassemble, and cut our messages over
    /// `fragment_size` bytes for peers that announced it.
    pub fragmentation: bool,
    pub fragment_size: usize,
    pub proposals: ProposalPolicy,
    /// The UDP port NAT-T floats to (RFC 3947 §4: 4500).
    pub nat_t_port: u16,
    /// Make a client believe the server is not behind NAT (our NAT-D says
    /// what the client computed for us), so Windows needs no
    /// AssumeUDPEncapsulationContextOnSendRule registry change when only
    /// the server is behind NAT. The client's own NAT is still detected.
    pub hide_server_nat: bool,
    /// Quick Mode selectors are limited to UDP port 1701 (L2TP).
    pub l2tp_only: bool,
    /// RFC 3706: send R-U-THERE after this long without hearing from a peer
    /// that announced DPD, and give up on it after `dpd_timeout` more.
    pub dpd_delay: Duration,
    pub dpd_timeout: Duration,
    /// A Main Mode not finished in this time is forgotten.
    pub half_open_timeout: Duration,
    /// Half-open Main Modes allowed per source address and in all: a flood
    /// of them costs the flooder, not the established tunnels.
    pub half_open_per_source: usize,
    pub half_open_total: usize,
    /// IKE SAs allowed in all.
    pub max_ike_sas: usize,
    /// Upper bounds on the lifetimes a peer may propose; without a proposal,
    /// RFC 2407 §4.5's default of 28800 s applies.
    pub max_ike_lifetime: Duration,
    pub max_esp_lifetime: Duration,
    pub replay_window: u32,
    /// How long the driver may take to answer
    /// [`IkeEvent::CertificateStatusNeeded`](super::IkeEvent): past it the
    /// IKE SA is deleted as if the certificate were refused. Longer than
    /// the driver's own fetch deadlines, so its answer (with the CRL
    /// policy applied) normally comes first; this only bounds a driver
    /// that never answers.
    pub certificate_status_timeout: Duration,
    /// Our key pairs for Main Mode and PFS, made ahead by the driver
    /// (`DhStock`); `None`: each is made when the request comes.
    pub dh_stock: Option<std::sync::Arc<crate::ike_crypto::DhStock>>,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            psks: PskTable::new(),
            certificates: None,
            fragmentation: true,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            proposals: ProposalPolicy::default(),
            nat_t_port: 4500,
            hide_server_nat: false,
            l2tp_only: true,
            dpd_delay: Duration::from_secs(30),
            dpd_timeout: Duration::from_secs(120),
            half_open_timeout: Duration::from_secs(30),
            half_open_per_source: 16,
            half_open_total: 1024,
            max_ike_sas: 4096,
            max_ike_lifetime: Duration::from_secs(24 * 3600),
            max_esp_lifetime: Duration::from_secs(8 * 3600),
            replay_window: 128,
            certificate_status_timeout: Duration::from_secs(30),
            dh_stock: None,
        }
    }
}
