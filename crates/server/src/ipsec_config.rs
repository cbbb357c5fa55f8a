//! `[ipsec]`: the IKEv1 responder that carries L2TP/IPsec (RFC 3193).
//!
//! The proposal lists name what the server accepts; the defaults are what
//! Windows 10/11, macOS/iOS, Android and NetworkManager-l2tp send. Removing
//! a name (`ike_groups = ["modp2048", "ecp256", "ecp384"]`) refuses clients
//! that offer nothing else, and the refusal's log line lists what they
//! offered.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipsec::esp::{CipherSuite, Integrity};
use ipsec::ike_crypto::{DhGroup, HashAlg, IkeCipher};
use ipsec::ikev1::ProposalPolicy;
use serde::Deserialize;

/// `[ipsec]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpsecConfig {
    /// Serve L2TP/IPsec. Default true.
    pub enabled: bool,
    /// Answer IKEv1, the key exchange of L2TP/IPsec. false: the `[ipsec]`
    /// sockets serve IKEv2 only, and an IKEv1 message is dropped with a
    /// (rate-limited) log line. Default true.
    pub ikev1: bool,
    /// The address UDP 500, UDP 4500 and ESP (IP protocol 50) are bound
    /// to. Default `0.0.0.0`.
    pub listen: IpAddr,
    /// IKE's port (RFC 2408 §2.5.1). Default 500.
    pub ike_port: u16,
    /// NAT traversal's port (RFC 3947 §4). Default 4500.
    pub nat_t_port: u16,
    /// The pre-shared key every client uses (a file holding it, one line).
    /// Absent: `state_dir/ipsec-psk`, created with a random key on first
    /// start and printed once.
    pub psk_file: Option<PathBuf>,
    /// Keys for particular client addresses, chosen by source address
    /// before the wildcard key (Main Mode must pick the key before it
    /// learns the client's identity, RFC 2409 §5.4).
    pub peers: Vec<IpsecPeer>,
    /// Let clients believe the server is not behind NAT, so Windows needs
    /// no AssumeUDPEncapsulationContextOnSendRule registry change when the
    /// server sits behind a port-forwarding NAT. Default false.
    pub hide_server_nat: bool,
    /// Dead peer detection (RFC 3706): probe a silent client after this
    /// many seconds, give up after `dpd_timeout_secs` more. Defaults 30, 120.
    pub dpd_delay_secs: u32,
    pub dpd_timeout_secs: u32,
    /// Accepted Main Mode ciphers: aes256, aes192, aes128, 3des.
    pub ike_ciphers: Vec<IkeCipherName>,
    /// Accepted Main Mode hashes: sha1, sha256, sha384, sha512.
    pub ike_hashes: Vec<IkeHashName>,
    /// Accepted Diffie-Hellman groups (Main Mode and Quick Mode PFS):
    /// modp1024, modp1536, modp2048, ecp256, ecp384, ecp521.
    pub ike_groups: Vec<DhGroupName>,
    /// Accepted ESP suites: aes256gcm16, aes128gcm16, aes256-sha1,
    /// aes128-sha1, aes256-sha256, aes128-sha256.
    pub esp: Vec<EspName>,
    /// How clients authenticate in Main Mode: "psk" (pre-shared key) and
    /// "certificate" (RSA or ECDSA signatures, RFC 2409 §5.1, RFC 4754).
    /// Absent: "psk", and "certificate" too when `ca_file` is set.
    pub auth: Option<Vec<IpsecAuthName>>,
    /// PEM file of the CA certificate(s) client certificates must chain
    /// to. The server signs with the `[certificate]` chain and key (RSA or
    /// ECDSA; the method a client proposes must match the server key's).
    pub ca_file: Option<PathBuf>,
    /// IKEv1 fragmentation (the "FRAGMENTATION" vendor ID) for clients that
    /// announce it: certificates make Main Mode messages larger than paths
    /// that drop IP fragments carry. Default true.
    pub fragmentation: bool,
    /// Our fragments' size in bytes (ISAKMP message). Default 1248 (1280
    /// bytes of IPv4 packet, strongSwan's default).
    pub fragment_size: u16,
}

/// `[ipsec] auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpsecAuthName {
    Psk,
    Certificate,
}

/// `[[ipsec.peers]]`: a key for one client address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecPeer {
    pub address: IpAddr,
    pub psk_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IkeCipherName {
    #[serde(rename = "aes256")]
    Aes256,
    #[serde(rename = "aes192")]
    Aes192,
    #[serde(rename = "aes128")]
    Aes128,
    #[serde(rename = "3des")]
    TripleDes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IkeHashName {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DhGroupName {
    Modp1024,
    Modp1536,
    Modp2048,
    Ecp256,
    Ecp384,
    Ecp521,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum EspName {
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "aes256-sha1")]
    Aes256Sha1,
    #[serde(rename = "aes128-sha1")]
    Aes128Sha1,
    #[serde(rename = "aes256-sha256")]
    Aes256Sha256,
    #[serde(rename = "aes128-sha256")]
    Aes128Sha256,
    /// 3DES-CBC with HMAC-SHA1-96 (RFC 2451): only for old clients, not
    /// accepted unless listed.
    #[serde(rename = "3des-sha1")]
    TripleDesSha1,
}

impl Default for IpsecConfig {
    fn default() -> Self {
        use DhGroupName::*;
        use EspName::*;
        use IkeCipherName::*;
        use IkeHashName::*;
        IpsecConfig {
            enabled: true,
            ikev1: true,
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ike_port: 500,
            nat_t_port: 4500,
            psk_file: None,
            peers: Vec::new(),
            hide_server_nat: false,
            dpd_delay_secs: 30,
            dpd_timeout_secs: 120,
            ike_ciphers: vec![Aes256, Aes192, Aes128, TripleDes],
            ike_hashes: vec![Sha1, Sha256, Sha384, Sha512],
            ike_groups: vec![Modp1024, Modp1536, Modp2048, Ecp256, Ecp384, Ecp521],
            esp: vec![
                Aes256Gcm16,
                Aes128Gcm16,
                Aes256Sha1,
                Aes128Sha1,
                Aes256Sha256,
                Aes128Sha256,
            ],
            auth: None,
            ca_file: None,
            fragmentation: true,
            fragment_size: 1248,
        }
    }
}

impl IpsecConfig {
    /// The proposal policy these lists describe.
    pub fn proposal_policy(&self) -> ProposalPolicy {
        ProposalPolicy {
            ike_ciphers: self
                .ike_ciphers
                .iter()
                .map(|c| match c {
                    IkeCipherName::Aes256 => IkeCipher::Aes256Cbc,
                    IkeCipherName::Aes192 => IkeCipher::Aes192Cbc,
                    IkeCipherName::Aes128 => IkeCipher::Aes128Cbc,
                    IkeCipherName::TripleDes => IkeCipher::TripleDesCbc,
                })
                .collect(),
            ike_hashes: self
                .ike_hashes
                .iter()
                .map(|h| match h {
                    IkeHashName::Sha1 => HashAlg::Sha1,
                    IkeHashName::Sha256 => HashAlg::Sha256,
                    IkeHashName::Sha384 => HashAlg::Sha384,
                    IkeHashName::Sha512 => HashAlg::Sha512,
                })
                .collect(),
            ike_groups: self
                .ike_groups
                .iter()
                .map(|g| match g {
                    DhGroupName::Modp1024 => DhGroup::Modp1024,
                    DhGroupName::Modp1536 => DhGroup::Modp1536,
                    DhGroupName::Modp2048 => DhGroup::Modp2048,
                    DhGroupName::Ecp256 => DhGroup::Ecp256,
                    DhGroupName::Ecp384 => DhGroup::Ecp384,
                    DhGroupName::Ecp521 => DhGroup::Ecp521,
                })
                .collect(),
            esp_suites: self
                .esp
                .iter()
                .map(|e| match e {
                    EspName::Aes256Gcm16 => CipherSuite::Aes256Gcm16,
                    EspName::Aes128Gcm16 => CipherSuite::Aes128Gcm16,
                    EspName::Aes256Sha1 => CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
                    EspName::Aes128Sha1 => CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
                    EspName::Aes256Sha256 => CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
                    EspName::Aes128Sha256 => CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
                    EspName::TripleDesSha1 => CipherSuite::TripleDesCbc(Integrity::HmacSha1_96),
                })
                .collect(),
        }
    }

    pub fn dpd_delay(&self) -> Duration {
        Duration::from_secs(self.dpd_delay_secs.max(1).into())
    }

    /// Pre-shared keys are accepted.
    pub fn psk_auth(&self) -> bool {
        match &self.auth {
            Some(list) => list.contains(&IpsecAuthName::Psk),
            None => true,
        }
    }

    /// Certificates are accepted.
    pub fn certificate_auth(&self) -> bool {
        match &self.auth {
            Some(list) => list.contains(&IpsecAuthName::Certificate),
            None => self.ca_file.is_some(),
        }
    }

    pub fn dpd_timeout(&self) -> Duration {
        Duration::from_secs(self.dpd_timeout_secs.max(1).into())
    }
}
