//! What an IKEv1 initiator (the L2TP/IPsec client side) is configured with.

use std::time::Duration;

use zeroize::Zeroizing;

use super::certificates::CertificateAuth;
use super::fragment::DEFAULT_FRAGMENT_SIZE;
use super::proposal::AuthMethod;
use super::signature_auth::method_for_key;

use crate::esp::{CipherSuite, Integrity};
use crate::ike_crypto::{DhGroup, HashAlg, IkeCipher};

/// One Main Mode transform we offer: cipher, hash (also the PRF, RFC 2409
/// §5) and Diffie-Hellman group. Authentication is the configuration's
/// (a pre-shared key or our certificate's signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeOffer {
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub group: DhGroup,
}

impl IkeOffer {
    pub const fn new(cipher: IkeCipher, hash: HashAlg, group: DhGroup) -> Self {
        IkeOffer {
            cipher,
            hash,
            group,
        }
    }
}

/// Initiator settings.
#[derive(Clone)]
pub struct InitiatorConfig {
    pub psk: Zeroizing<Vec<u8>>,
    /// Signature authentication (RFC 2409 §5.1, RFC 4754) instead of the
    /// pre-shared key: our chain and key, the CAs the server's certificate
    /// must chain to.
    pub certificates: Option<CertificateAuth>,
    /// IKEv1 fragmentation (the "FRAGMENTATION" vendor ID): announce it,
    /// reassemble, and cut our messages over `fragment_size` bytes when the
    /// server announced it too.
    pub fragmentation: bool,
    pub fragment_size: usize,
    /// Main Mode transforms, most preferred first (RFC 2408 §4.2: the
    /// responder picks one of them).
    pub ike_offers: Vec<IkeOffer>,
    /// Quick Mode ESP suites, most preferred first.
    pub esp_suites: Vec<CipherSuite>,
    /// Perfect forward secrecy for Quick Mode (RFC 2409 §5.5): a group, or
    /// none (the default, like Windows).
    pub pfs_group: Option<DhGroup>,
    /// Lifetimes we propose (RFC 2407 §4.5; Windows: 8 h and 1 h).
    pub ike_lifetime: Duration,
    pub esp_lifetime: Duration,
    /// Rekey a child when this share (per cent) of its lifetime has passed.
    pub rekey_percent: u32,
    /// After a rekey the old child lives this much longer before its
    /// Delete: packets in flight, and a server that installs its new
    /// inbound SA only after Quick Mode message 3 (the race RFC 2409 §5.5's
    /// commit bit addresses), lose nothing.
    pub rekey_overlap: Duration,
    /// The UDP ports of the protected flow: ours and the server's (RFC 3193
    /// §4: L2TP, 1701 on both sides).
    pub local_port: u16,
    pub remote_port: u16,
    /// The server's NAT-T port (RFC 3947 §4: 4500).
    pub nat_t_port: u16,
    /// Use UDP encapsulation even without a NAT: our NAT-D for ourselves is
    /// made not to match, so the server detects a NAT and floats too (what
    /// strongSwan's forceencaps does).
    pub force_udp_encapsulation: bool,
    /// RFC 2408 §5 leaves retransmission to implementations: resend the
    /// last message this long after the first send, then give up.
    pub retransmit_at: Vec<Duration>,
    pub give_up_after: Duration,
    /// RFC 3706: probe an idle server after `dpd_delay`, give up after
    /// `dpd_timeout` more without an answer.
    pub dpd_delay: Duration,
    pub dpd_timeout: Duration,
    /// RFC 3948 §2.3 NAT-keepalives while behind a NAT (0: none).
    pub keepalive_interval: Duration,
}

impl InitiatorConfig {
    pub fn new(psk: &[u8]) -> Self {
        InitiatorConfig {
            psk: Zeroizing::new(psk.to_vec()),
            certificates: None,
            fragmentation: true,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            ike_offers: default_ike_offers(),
            esp_suites: default_esp_suites(),
            pfs_group: None,
            ike_lifetime: Duration::from_secs(28_800),
            esp_lifetime: Duration::from_secs(3_600),
            rekey_percent: 85,
            rekey_overlap: Duration::from_secs(2),
            local_port: 1701,
            remote_port: 1701,
            nat_t_port: 4500,
            force_udp_encapsulation: false,
            retransmit_at: [2, 4, 8, 16].map(Duration::from_secs).to_vec(),
            give_up_after: Duration::from_secs(30),
            dpd_delay: Duration::from_secs(30),
            dpd_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(20),
        }
    }
}

impl InitiatorConfig {
    /// Certificate authentication: no pre-shared key.
    pub fn with_certificates(certificates: CertificateAuth) -> Self {
        InitiatorConfig {
            certificates: Some(certificates),
            ..InitiatorConfig::new(&[])
        }
    }

    /// The Main Mode authentication method we offer.
    pub fn auth_method(&self) -> AuthMethod {
        match &self.certificates {
            Some(c) => method_for_key(c.local.kind()),
            None => AuthMethod::PreSharedKey,
        }
    }
}

/// Strong first, then what older servers (Windows Server, SoftEther,
/// old strongSwan/Libreswan defaults) accept.
pub fn default_ike_offers() -> Vec<IkeOffer> {
    use DhGroup::*;
    use HashAlg::*;
    use IkeCipher::*;
    vec![
        IkeOffer::new(Aes256Cbc, Sha256, Modp2048),
        IkeOffer::new(Aes256Cbc, Sha1, Modp2048),
        IkeOffer::new(Aes128Cbc, Sha1, Modp2048),
        IkeOffer::new(Aes256Cbc, Sha1, Modp1024),
        IkeOffer::new(Aes128Cbc, Sha1, Modp1024),
        IkeOffer::new(TripleDesCbc, Sha1, Modp1024),
    ]
}

pub fn default_esp_suites() -> Vec<CipherSuite> {
    vec![
        CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
        CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
        CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
        CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
        CipherSuite::Aes256Gcm16,
        CipherSuite::Aes128Gcm16,
    ]
}
