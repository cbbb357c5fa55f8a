//! `[ikev2] ike_ciphers / ike_hashes / ike_groups / esp`: what the IKEv2
//! responder accepts (RFC 7296 §3.3 transforms). The defaults are what the
//! built-in clients send on their defaults (issue 14, [`Ikev2Policy`]'s
//! default); an operator removes names to refuse weak proposals, and a
//! refused client is logged with what it offered. IKEv2 has its own lists,
//! not `[ipsec]`'s: its defaults differ (AEAD ciphers, Curve25519,
//! ChaCha20-Poly1305) and so do the clients that use it.

use ipsec::esp::{CipherSuite, Integrity};
use ipsec::ike_crypto::{DhGroup, HashAlg, IkeCipher};
use ipsec::ikev2::encrypted::{SkCipher, SkInteg};
use ipsec::ikev2::proposal::Ikev2Policy;
use serde::Deserialize;

/// `[ikev2] ike_ciphers` names: the IKE SA's encryption (RFC 7296 §3.3.2
/// type 1; AES-GCM RFC 5282, ChaCha20-Poly1305 RFC 7634).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Ikev2CipherName {
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "chacha20poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "aes256")]
    Aes256,
    #[serde(rename = "aes192")]
    Aes192,
    #[serde(rename = "aes128")]
    Aes128,
    #[serde(rename = "3des")]
    TripleDes,
}

/// `[ikev2] ike_hashes` names: each allows both the PRF (type 2) and the
/// integrity algorithm (type 3, for the non-AEAD ciphers) of that hash, as
/// strongSwan's proposal keywords do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ikev2HashName {
    Sha256,
    Sha384,
    Sha512,
    Sha1,
}

/// `[ikev2] ike_groups` names (type 4; RFC 3526, RFC 5903, RFC 8031).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ikev2GroupName {
    Curve25519,
    Ecp256,
    Ecp384,
    Ecp521,
    Modp2048,
    Modp1536,
    Modp1024,
}

/// `[ikev2] esp` names: the child SA's suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Ikev2EspName {
    #[serde(rename = "aes256gcm16")]
    Aes256Gcm16,
    #[serde(rename = "aes128gcm16")]
    Aes128Gcm16,
    #[serde(rename = "chacha20poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "aes256-sha256")]
    Aes256Sha256,
    #[serde(rename = "aes128-sha256")]
    Aes128Sha256,
    #[serde(rename = "aes256-sha1")]
    Aes256Sha1,
    #[serde(rename = "aes128-sha1")]
    Aes128Sha1,
}

/// The four lists, in the responder's order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ikev2Proposals {
    pub ike_ciphers: Vec<Ikev2CipherName>,
    pub ike_hashes: Vec<Ikev2HashName>,
    pub ike_groups: Vec<Ikev2GroupName>,
    pub esp: Vec<Ikev2EspName>,
}

impl Default for Ikev2Proposals {
    /// Every name, in [`Ikev2Policy::default`]'s order (a test keeps the
    /// two equal).
    fn default() -> Self {
        use Ikev2CipherName as C;
        use Ikev2EspName as E;
        use Ikev2GroupName as G;
        use Ikev2HashName as H;
        Ikev2Proposals {
            ike_ciphers: vec![
                C::Aes256Gcm16,
                C::Aes128Gcm16,
                C::ChaCha20Poly1305,
                C::Aes256,
                C::Aes192,
                C::Aes128,
                C::TripleDes,
            ],
            ike_hashes: vec![H::Sha256, H::Sha384, H::Sha512, H::Sha1],
            ike_groups: vec![
                G::Curve25519,
                G::Ecp256,
                G::Ecp384,
                G::Ecp521,
                G::Modp2048,
                G::Modp1536,
                G::Modp1024,
            ],
            esp: vec![
                E::Aes256Gcm16,
                E::Aes128Gcm16,
                E::ChaCha20Poly1305,
                E::Aes256Sha256,
                E::Aes128Sha256,
                E::Aes256Sha1,
                E::Aes128Sha1,
            ],
        }
    }
}

impl Ikev2Proposals {
    /// The first list that is empty (nothing could ever be accepted), as
    /// its `[ikev2]` key.
    pub fn empty_list(&self) -> Option<&'static str> {
        if self.ike_ciphers.is_empty() {
            Some("ikev2.ike_ciphers")
        } else if self.ike_hashes.is_empty() {
            Some("ikev2.ike_hashes")
        } else if self.ike_groups.is_empty() {
            Some("ikev2.ike_groups")
        } else if self.esp.is_empty() {
            Some("ikev2.esp")
        } else {
            None
        }
    }

    /// The responder's policy.
    pub fn policy(&self) -> Ikev2Policy {
        Ikev2Policy {
            ike_ciphers: self.ike_ciphers.iter().map(|c| cipher(*c)).collect(),
            ike_prfs: self.ike_hashes.iter().map(|h| prf(*h)).collect(),
            ike_integrity: self.ike_hashes.iter().map(|h| integrity(*h)).collect(),
            groups: self.ike_groups.iter().map(|g| group(*g)).collect(),
            esp_suites: self.esp.iter().map(|e| esp(*e)).collect(),
        }
    }
}

fn cipher(name: Ikev2CipherName) -> SkCipher {
    match name {
        Ikev2CipherName::Aes256Gcm16 => SkCipher::AesGcm16 { key_len: 32 },
        Ikev2CipherName::Aes128Gcm16 => SkCipher::AesGcm16 { key_len: 16 },
        Ikev2CipherName::ChaCha20Poly1305 => SkCipher::ChaCha20Poly1305,
        Ikev2CipherName::Aes256 => SkCipher::Cbc(IkeCipher::Aes256Cbc),
        Ikev2CipherName::Aes192 => SkCipher::Cbc(IkeCipher::Aes192Cbc),
        Ikev2CipherName::Aes128 => SkCipher::Cbc(IkeCipher::Aes128Cbc),
        Ikev2CipherName::TripleDes => SkCipher::Cbc(IkeCipher::TripleDesCbc),
    }
}

fn prf(name: Ikev2HashName) -> HashAlg {
    match name {
        Ikev2HashName::Sha256 => HashAlg::Sha256,
        Ikev2HashName::Sha384 => HashAlg::Sha384,
        Ikev2HashName::Sha512 => HashAlg::Sha512,
        Ikev2HashName::Sha1 => HashAlg::Sha1,
    }
}

/// RFC 4868 §2.3 (HMAC-SHA2 truncated to half), RFC 2404 (HMAC-SHA1-96).
fn integrity(name: Ikev2HashName) -> SkInteg {
    match name {
        Ikev2HashName::Sha256 => SkInteg::HmacSha256_128,
        Ikev2HashName::Sha384 => SkInteg::HmacSha384_192,
        Ikev2HashName::Sha512 => SkInteg::HmacSha512_256,
        Ikev2HashName::Sha1 => SkInteg::HmacSha1_96,
    }
}

fn group(name: Ikev2GroupName) -> DhGroup {
    match name {
        Ikev2GroupName::Curve25519 => DhGroup::Curve25519,
        Ikev2GroupName::Ecp256 => DhGroup::Ecp256,
        Ikev2GroupName::Ecp384 => DhGroup::Ecp384,
        Ikev2GroupName::Ecp521 => DhGroup::Ecp521,
        Ikev2GroupName::Modp2048 => DhGroup::Modp2048,
        Ikev2GroupName::Modp1536 => DhGroup::Modp1536,
        Ikev2GroupName::Modp1024 => DhGroup::Modp1024,
    }
}

fn esp(name: Ikev2EspName) -> CipherSuite {
    match name {
        Ikev2EspName::Aes256Gcm16 => CipherSuite::Aes256Gcm16,
        Ikev2EspName::Aes128Gcm16 => CipherSuite::Aes128Gcm16,
        Ikev2EspName::ChaCha20Poly1305 => CipherSuite::ChaCha20Poly1305,
        Ikev2EspName::Aes256Sha256 => CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
        Ikev2EspName::Aes128Sha256 => CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
        Ikev2EspName::Aes256Sha1 => CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
        Ikev2EspName::Aes128Sha1 => CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lists_are_the_responders_default_policy() {
        assert_eq!(Ikev2Proposals::default().policy(), Ikev2Policy::default());
        assert_eq!(Ikev2Proposals::default().empty_list(), None);
    }

    #[test]
    fn removing_names_removes_their_transforms() {
        let p = Ikev2Proposals {
            ike_ciphers: vec![Ikev2CipherName::Aes256Gcm16],
            ike_hashes: vec![Ikev2HashName::Sha384],
            ike_groups: vec![Ikev2GroupName::Ecp384],
            esp: vec![Ikev2EspName::Aes256Gcm16],
        };
        let policy = p.policy();
        assert_eq!(policy.ike_ciphers, [SkCipher::AesGcm16 { key_len: 32 }]);
        assert_eq!(policy.ike_prfs, [HashAlg::Sha384]);
        assert_eq!(policy.ike_integrity, [SkInteg::HmacSha384_192]);
        assert_eq!(policy.groups, [DhGroup::Ecp384]);
        assert_eq!(policy.esp_suites, [CipherSuite::Aes256Gcm16]);
        let none = Ikev2Proposals {
            ike_groups: vec![],
            ..Ikev2Proposals::default()
        };
        assert_eq!(none.empty_list(), Some("ikev2.ike_groups"));
    }
}
