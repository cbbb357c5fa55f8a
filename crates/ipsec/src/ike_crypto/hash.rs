//! Hash algorithms negotiated by IKE and their HMAC, which RFC 2409 §4 uses
//! as the PRF when no PRF is negotiated.
//!
//! SHA-1 and SHA-2 come from aws-lc-rs; MD5 (still offered by Windows and
//! older peers for IKEv1) from RustCrypto, since aws-lc-rs has no MD5.

use aws_lc_rs::{digest, hmac as lc_hmac};
use hmac::Mac;
use md5::Digest;
use zeroize::Zeroizing;

/// A hash algorithm (IKEv1 "Hash Algorithm" attribute, RFC 2409 App. A;
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
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The plain hash of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        let algorithm = match self {
            HashAlg::Md5 => {
                let mut md5 = md5::Md5::new();
                for part in parts {
                    md5.update(part);
                }
                return md5.finalize().to_vec();
            }
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        };
        let mut context = digest::Context::new(algorithm);
        for part in parts {
            context.update(part);
        }
        context.finish().as_ref().to_vec()
    }

    /// HMAC (RFC 2104) keyed with `key` over the concatenation of `parts`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        let algorithm = match self {
            HashAlg::Md5 => {
                // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
                let mut mac = <hmac::Hmac<md5::Md5> as Mac>::new_from_slice(key)
                    .expect("HMAC takes keys of any length");
                for part in parts {
                    mac.update(part);
                }
                return Zeroizing::new(mac.finalize().into_bytes().to_vec());
            }
            HashAlg::Sha1 => lc_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => lc_hmac::HMAC_SHA256,
            HashAlg::Sha384 => lc_hmac::HMAC_SHA384,
            HashAlg::Sha512 => lc_hmac::HMAC_SHA512,
        };
        let key = lc_hmac::Key::new(algorithm, key);
        let mut context = lc_hmac::Context::with_key(&key);
        for part in parts {
            context.update(part);
        }
        Zeroizing::new(context.sign().as_ref().to_vec())
    }
}

#[cfg(test)]
#[path = "hash_tests.rs"]
mod tests;
