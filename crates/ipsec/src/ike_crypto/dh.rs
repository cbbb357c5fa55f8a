//! Diffie-Hellman groups of IKE. The group numbers are the IANA "Transform
//! Type 4" numbers, which are also the IKEv1 group descriptions.

use zeroize::Zeroizing;

use super::error::CryptoError;

/// A Diffie-Hellman group we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 2, RFC 2409 §6.2.
    Modp1024,
    /// Group 5, RFC 3526 §2.
    Modp1536,
    /// Group 14, RFC 3526 §3.
    Modp2048,
    /// Group 19, RFC 5903.
    Ecp256,
    /// Group 20, RFC 5903.
    Ecp384,
    /// Group 31, RFC 8031.
    Curve25519,
}

impl DhGroup {
    /// The group for an IANA group number.
    pub fn from_id(id: u16) -> Option<Self> {
        todo!("{id}")
    }

    /// The IANA group number.
    pub fn id(self) -> u16 {
        todo!()
    }

    /// Length in bytes of the public value on the wire.
    pub fn public_len(self) -> usize {
        todo!()
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        todo!()
    }
}

/// Our ephemeral Diffie-Hellman private key and its public value.
pub struct DhPrivate {
    group: DhGroup,
    public: Vec<u8>,
}

impl DhPrivate {
    /// Generates a fresh key pair in `group`.
    pub fn generate(group: DhGroup) -> Result<Self, CryptoError> {
        todo!("{group:?}")
    }

    /// The group of this key.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value in IKE wire form, exactly `public_len()` bytes.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^xy with the peer's public value (wire form).
    pub fn agree(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        todo!("{}", peer_public.len())
    }
}
