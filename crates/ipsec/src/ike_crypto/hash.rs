//! Hash algorithms negotiated by IKE and their HMAC, which RFC 2409 §4 uses
//! as the PRF when no PRF is negotiated.

use zeroize::Zeroizing;

/// A hash algorithm (IKEv1 attribute "Hash Algorithm", RFC 2409 App. A;
/// SHA-2 per RFC 4868).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        todo!()
    }

    /// The plain hash of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        todo!("{}", parts.len())
    }

    /// HMAC (RFC 2104) keyed with `key` over the concatenation of `parts`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        todo!("{} {}", key.len(), parts.len())
    }
}
