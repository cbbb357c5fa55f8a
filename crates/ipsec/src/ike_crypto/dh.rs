//! Diffie-Hellman groups of IKE. The group numbers are the IANA "Transform
//! Type 4" numbers, which are also the IKEv1 group descriptions (RFC 2409
//! App. A, RFC 3526, RFC 5903, RFC 8031).

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::error::CryptoError;
use super::modp::{ModpPrime, EXPONENT_LEN};

/// A Diffie-Hellman group we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 2, 1024-bit MODP (RFC 2409 §6.2).
    Modp1024,
    /// Group 5, 1536-bit MODP (RFC 3526 §2).
    Modp1536,
    /// Group 14, 2048-bit MODP (RFC 3526 §3).
    Modp2048,
    /// Group 19, NIST P-256 (RFC 5903).
    Ecp256,
    /// Group 20, NIST P-384 (RFC 5903).
    Ecp384,
    /// Group 21, NIST P-521 (RFC 5903).
    Ecp521,
    /// Group 31, Curve25519 (RFC 8031).
    Curve25519,
}

impl DhGroup {
    /// The group for an IANA group number, or `None` if we do not implement it.
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            2 => DhGroup::Modp1024,
            5 => DhGroup::Modp1536,
            14 => DhGroup::Modp2048,
            19 => DhGroup::Ecp256,
            20 => DhGroup::Ecp384,
            21 => DhGroup::Ecp521,
            31 => DhGroup::Curve25519,
            _ => return None,
        })
    }

    /// The IANA group number.
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Ecp521 => 21,
            DhGroup::Curve25519 => 31,
        }
    }

    /// Length in bytes of a public value on the wire (the KE payload data).
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
            // RFC 5903 §7: x || y, each the field size.
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            // RFC 5903 §7: 521 bits round up to 66 bytes per coordinate.
            DhGroup::Ecp521 => 132,
            // RFC 8031 §3.1: the 32-byte u-coordinate.
            DhGroup::Curve25519 => 32,
        }
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self {
            DhGroup::Modp1024 => "MODP-1024",
            DhGroup::Modp1536 => "MODP-1536",
            DhGroup::Modp2048 => "MODP-2048",
            DhGroup::Ecp256 => "ECP-256",
            DhGroup::Ecp384 => "ECP-384",
            DhGroup::Ecp521 => "ECP-521",
            DhGroup::Curve25519 => "Curve25519",
        }
    }

    fn modp(self) -> Option<ModpPrime> {
        match self {
            DhGroup::Modp1024 => Some(ModpPrime::Bits1024),
            DhGroup::Modp1536 => Some(ModpPrime::Bits1536),
            DhGroup::Modp2048 => Some(ModpPrime::Bits2048),
            _ => None,
        }
    }

    fn agreement_algorithm(self) -> Option<&'static agreement::Algorithm> {
        match self {
            DhGroup::Ecp256 => Some(&agreement::ECDH_P256),
            DhGroup::Ecp384 => Some(&agreement::ECDH_P384),
            DhGroup::Ecp521 => Some(&agreement::ECDH_P521),
            DhGroup::Curve25519 => Some(&agreement::X25519),
            _ => None,
        }
    }
}

/// The secret half of a key pair.
enum Secret {
    /// MODP private exponent, big-endian; wiped on drop.
    Modp(Zeroizing<[u8; EXPONENT_LEN]>),
    /// ECP or Curve25519 key held by aws-lc, which cleanses it when freed.
    /// `agreement::PrivateKey` (not the ephemeral type) so that `agree` can
    /// take `&self`; it is still generated fresh for each exchange.
    Curve(PrivateKey),
}

/// Our Diffie-Hellman private key and its public value, for one exchange.
pub struct DhPrivate {
    group: DhGroup,
    public: Vec<u8>,
    secret: Secret,
}

/// Shows the group only: the private value never reaches a log.
impl std::fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group.name())
            .finish_non_exhaustive()
    }
}

impl DhPrivate {
    /// Generates a fresh key pair in `group` from the system random source.
    pub fn generate(group: DhGroup) -> Result<Self, CryptoError> {
        match group.agreement_algorithm() {
            Some(algorithm) => {
                let key = PrivateKey::generate(algorithm)
                    .map_err(|_| CryptoError::Failed("key pair generation failed"))?;
                Self::from_curve_key(group, key)
            }
            None => {
                let rng = SystemRandom::new();
                let mut exponent = Zeroizing::new([0u8; EXPONENT_LEN]);
                // An all-zero exponent (probability 2^-512) would make g^x = 1.
                while exponent.iter().all(|&b| b == 0) {
                    rng.fill(&mut exponent[..])
                        .map_err(|_| CryptoError::Failed("random source failed"))?;
                }
                Self::from_modp_exponent(group, exponent)
            }
        }
    }

    fn from_modp_exponent(
        group: DhGroup,
        exponent: Zeroizing<[u8; EXPONENT_LEN]>,
    ) -> Result<Self, CryptoError> {
        let prime = group
            .modp()
            .ok_or(CryptoError::UnsupportedGroup(group.id()))?;
        let public = prime.public_value(&exponent)?.to_vec();
        Ok(DhPrivate {
            group,
            public,
            secret: Secret::Modp(exponent),
        })
    }

    fn from_curve_key(group: DhGroup, key: PrivateKey) -> Result<Self, CryptoError> {
        let public = key
            .compute_public_key()
            .map_err(|_| CryptoError::Failed("public key computation failed"))?;
        let encoded = public.as_ref();
        let public = match group {
            // RFC 5903 §7: the KE payload carries x || y, without the 0x04
            // uncompressed-point prefix of SEC 1.
            DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 => match encoded.split_first() {
                Some((0x04, xy)) if xy.len() == group.public_len() => xy.to_vec(),
                _ => return Err(CryptoError::Failed("unexpected public key encoding")),
            },
            _ => encoded.to_vec(),
        };
        Ok(DhPrivate {
            group,
            public,
            secret: Secret::Curve(key),
        })
    }

    /// A key pair from a fixed private value, for known-answer tests: a MODP
    /// exponent (at most 64 bytes, big-endian), or an ECP / X25519 private
    /// key in aws-lc-rs's raw encoding.
    #[cfg(test)]
    pub(crate) fn from_private_bytes(group: DhGroup, private: &[u8]) -> Result<Self, CryptoError> {
        match group.agreement_algorithm() {
            Some(algorithm) => {
                let key = PrivateKey::from_private_key(algorithm, private)
                    .map_err(|_| CryptoError::KeyLength)?;
                Self::from_curve_key(group, key)
            }
            None => {
                if private.len() > EXPONENT_LEN {
                    return Err(CryptoError::KeyLength);
                }
                let mut exponent = Zeroizing::new([0u8; EXPONENT_LEN]);
                exponent[EXPONENT_LEN - private.len()..].copy_from_slice(private);
                Self::from_modp_exponent(group, exponent)
            }
        }
    }

    /// The group of this key.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value in IKE wire form, exactly `group().public_len()` bytes.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^xy with the peer's public value in wire form.
    ///
    /// MODP: big-endian, left-padded to the modulus length (RFC 2409 §5,
    /// RFC 7296 §3.4). ECP: the x coordinate only (RFC 5903 §7). Curve25519:
    /// the 32-byte X25519 output (RFC 8031 §3.1). A malformed or invalid
    /// peer value (wrong length, out of range, not on the curve, low order)
    /// is `InvalidPublicValue`.
    pub fn agree(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer_public.len() != self.group.public_len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        match &self.secret {
            Secret::Modp(exponent) => {
                let prime = self
                    .group
                    .modp()
                    .ok_or(CryptoError::UnsupportedGroup(self.group.id()))?;
                prime.shared_secret(peer_public, exponent)
            }
            Secret::Curve(key) => {
                let algorithm = key.algorithm();
                let sec1;
                let encoded: &[u8] = match self.group {
                    DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 => {
                        sec1 = [&[0x04][..], peer_public].concat();
                        &sec1
                    }
                    _ => peer_public,
                };
                // aws-lc checks the point is on the curve (and for X25519
                // rejects the all-zero result of a low-order point).
                agreement::agree(
                    key,
                    UnparsedPublicKey::new(algorithm, encoded),
                    CryptoError::InvalidPublicValue,
                    |secret| Ok(Zeroizing::new(secret.to_vec())),
                )
            }
        }
    }
}

#[cfg(test)]
#[path = "dh_tests.rs"]
mod tests;
