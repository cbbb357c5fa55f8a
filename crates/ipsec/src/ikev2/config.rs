//! What an IKEv2 responder is configured with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

use super::payloads::id_type;
use super::proposal::Ikev2Policy;

/// Pre-shared keys. Unlike IKEv1 Main Mode, IKEv2 learns the initiator's
/// identity (IDi, inside the encrypted IKE_AUTH) before it checks AUTH, so
/// keys are found by identity (RFC 7296 §2.15), else the one wildcard key.
#[derive(Clone, Default)]
pub struct Ikev2PskTable {
    by_identity: HashMap<Vec<u8>, Zeroizing<Vec<u8>>>,
    wildcard: Option<Zeroizing<Vec<u8>>>,
}

impl Ikev2PskTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for every identity without a key of its own.
    pub fn with_wildcard(mut self, key: &[u8]) -> Self {
        self.wildcard = Some(Zeroizing::new(key.to_vec()));
        self
    }

    /// A key for one identity, given as the ID payload's data (an FQDN's
    /// or user FQDN's text, an address's bytes).
    pub fn insert(&mut self, identity: &[u8], key: &[u8]) {
        self.by_identity
            .insert(identity.to_vec(), Zeroizing::new(key.to_vec()));
    }

    pub fn lookup(&self, identity: &[u8]) -> Option<&[u8]> {
        self.by_identity
            .get(identity)
            .or(self.wildcard.as_ref())
            .map(|k| k.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.by_identity.is_empty() && self.wildcard.is_none()
    }
}

/// How the server names itself in IDr (§3.5). Windows checks it against
/// the certificate; with PSK any form works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalIdentity {
    Fqdn(String),
    Address(IpAddr),
}

impl LocalIdentity {
    /// The IDr payload body.
    pub fn id_body(&self) -> Vec<u8> {
        match self {
            LocalIdentity::Fqdn(name) => {
                super::payloads::Identification::encode(id_type::FQDN, name.as_bytes())
            }
            LocalIdentity::Address(IpAddr::V4(a)) => {
                super::payloads::Identification::encode(id_type::IPV4_ADDR, &a.octets())
            }
            LocalIdentity::Address(IpAddr::V6(a)) => {
                super::payloads::Identification::encode(id_type::IPV6_ADDR, &a.octets())
            }
        }
    }
}

/// Responder settings.
#[derive(Clone)]
pub struct Ikev2Config {
    pub policy: Ikev2Policy,
    pub psks: Ikev2PskTable,
    pub local_identity: LocalIdentity,
    /// The UDP port NAT-T floats to (RFC 7296 §2.23: 4500).
    pub nat_t_port: u16,
    /// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet done)
    /// above which new initiators must return a cookie (§2.6).
    pub cookie_threshold: usize,
    /// Half-open IKE SAs above which new initiators are not answered at
    /// all, even with a valid cookie.
    pub max_half_open: usize,
    /// How long a half-open IKE SA may wait for its IKE_AUTH.
    pub half_open_timeout: Duration,
    /// The largest IKE message we send unfragmented to a peer that
    /// announced RFC 7383 support, and the size of each fragment.
    pub fragment_size: usize,
    /// Idle time after which we check that the peer is alive (§2.4).
    pub liveness_interval: Duration,
    /// How long a liveness check may go unanswered before the IKE SA and
    /// its children are deleted.
    pub liveness_timeout: Duration,
    /// Hard lifetime of child SAs (the client rekeys before it; Windows
    /// at 1 h, strongSwan at about 1 h).
    pub child_hard_lifetime: Duration,
    /// ESP anti-replay window in packets.
    pub replay_window: u32,
    /// Offer MOBIKE (RFC 4555): clients that change networks (Wi-Fi to
    /// mobile) keep their tunnel.
    pub mobike: bool,
    /// Take part in our NAT-timeout probe extension (`nat_probe`): echo
    /// NAT_PROBE_SUPPORTED and honour DELAYED_PROBE_REQUEST.
    pub nat_probe: bool,
    /// Our certificate and key: with one, the server proves itself to EAP
    /// clients by signature (what Windows, Apple and Android require);
    /// without one, by the pre-shared key.
    pub certificate: Option<std::sync::Arc<super::signature_auth::ServerCredential>>,
    /// Clients may authenticate with a certificate from these CAs (AUTH
    /// methods 1, 9, 10, 14; RFC 7296 §2.15); `None`: signatures from
    /// clients are refused. We answer with our own signature, so this
    /// needs `certificate`.
    pub client_trust: Option<std::sync::Arc<super::client_certificate::ClientTrust>>,
    /// Clients may authenticate with EAP (§2.16).
    pub eap: bool,
    /// Leave our signature (for EAP clients and for clients that signed)
    /// to the driver (`Ikev2Event::SignatureNeeded`), which can make it on
    /// another thread; otherwise the responder signs inline.
    pub offload_signatures: bool,
    /// Our key pairs for IKE_SA_INIT and rekeys, made ahead by the driver
    /// (`DhStock`); `None`: each is made when the request comes.
    pub dh_stock: Option<std::sync::Arc<crate::ike_crypto::DhStock>>,
}

impl Default for Ikev2Config {
    fn default() -> Self {
        Ikev2Config {
            policy: Ikev2Policy::default(),
            psks: Ikev2PskTable::new(),
            local_identity: LocalIdentity::Fqdn("ras".to_string()),
            nat_t_port: 4500,
            cookie_threshold: 64,
            max_half_open: 10_000,
            half_open_timeout: Duration::from_secs(30),
            fragment_size: 1280,
            liveness_interval: Duration::from_secs(30),
            liveness_timeout: Duration::from_secs(60),
            child_hard_lifetime: Duration::from_secs(3 * 3600),
            replay_window: 1024,
            mobike: true,
            nat_probe: true,
            certificate: None,
            client_trust: None,
            eap: true,
            offload_signatures: false,
            dh_stock: None,
        }
    }
}
