//! Authentication with a certificate (RFC 7296 §2.15, §3.6), for either
//! role (the server to EAP clients, a client with `--cert`): the CERT
//! payloads of our chain and an AUTH payload signed with our key.
//!
//! With a peer that announced RFC 7427 (SIGNATURE_HASH_ALGORITHMS), AUTH
//! method 14 carries its own AlgorithmIdentifier (RFC 7427 §3; Android's
//! built-in client requires this): sha256WithRSAEncryption, or
//! ecdsa-with-SHA256/384/512 with a DER signature. Without it, an ECDSA key
//! signs with RFC 4754 methods 9/10/11 (r || s over SHA-256/384/512 on
//! P-256/384/521), and an RSA
//! key with method 1 (§3.8: PKCS#1 v1.5 with SHA-1, what peers without
//! RFC 7427 verify).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use thiserror::Error;

use crate::ike_crypto::signature::PrivateKey;

use super::payloads::auth_method;

/// RFC 7427 §4 hash algorithm identifiers (IANA "IKEv2 Hash Algorithms").
pub mod hash_id {
    pub const SHA1: u16 = 1;
    pub const SHA2_256: u16 = 2;
    pub const SHA2_384: u16 = 3;
    pub const SHA2_512: u16 = 4;
}

/// RFC 8017 §9.2 note 1: the DER DigestInfo of a SHA-1 hash, up to the
/// hash itself.
const SHA1_DIGEST_INFO: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// RFC 7427 Appendix A: DER AlgorithmIdentifiers.
const SHA256_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const ECDSA_WITH_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_WITH_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ECDSA_WITH_SHA512: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
];

#[derive(Debug, Error)]
pub enum SignatureAuthError {
    #[error(
        "the private key is not an RSA or ECDSA P-256, P-384 or P-521 key (PKCS#8, PKCS#1 or SEC1)"
    )]
    Key,
    #[error("the certificate chain is empty")]
    NoCertificate,
    #[error("{0}")]
    Pem(String),
    #[error("the peer supports no signature hash we use (RFC 7427)")]
    NoCommonAlgorithm,
    #[error("signing failed")]
    Sign,
}

enum ServerKey {
    /// aws-lc-rs signs PKCS#1 v1.5 with SHA-2 only; method 1's SHA-1 goes
    /// through the IKEv1 signer (DigestInfo prefixed here).
    Rsa(RsaKeyPair, Box<PrivateKey>),
    Ecdsa {
        der: EcdsaKeyPair,
        fixed: EcdsaKeyPair,
        curve: Curve,
    },
}

/// The curve of an ECDSA key: it names the hash, the RFC 4754 method and
/// the RFC 7427 AlgorithmIdentifier.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn hash_id(self) -> u16 {
        match self {
            Curve::P256 => hash_id::SHA2_256,
            Curve::P384 => hash_id::SHA2_384,
            Curve::P521 => hash_id::SHA2_512,
        }
    }

    fn rfc4754_method(self) -> u8 {
        match self {
            Curve::P256 => auth_method::ECDSA_SHA256_P256,
            Curve::P384 => auth_method::ECDSA_SHA384_P384,
            Curve::P521 => auth_method::ECDSA_SHA512_P521,
        }
    }

    fn rfc7427_algorithm(self) -> &'static [u8] {
        match self {
            Curve::P256 => ECDSA_WITH_SHA256,
            Curve::P384 => ECDSA_WITH_SHA384,
            Curve::P521 => ECDSA_WITH_SHA512,
        }
    }
}

/// Our certificate chain (leaf first, DER) and its private key. The name
/// is the role it was first written for; a client signs with it too.
pub struct ServerCredential {
    chain: Vec<Vec<u8>>,
    key: ServerKey,
}

impl ServerCredential {
    /// From DER certificates (leaf first) and the leaf's key in DER:
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub fn from_pkcs8(chain: Vec<Vec<u8>>, pkcs8: &[u8]) -> Result<Self, SignatureAuthError> {
        if chain.is_empty() {
            return Err(SignatureAuthError::NoCertificate);
        }
        // PKCS#8, or what `openssl genrsa`/strongSwan's `pki --gen` write:
        // PKCS#1 RSA and SEC1 EC keys.
        let ec = |alg| {
            EcdsaKeyPair::from_pkcs8(alg, pkcs8)
                .or_else(|_| EcdsaKeyPair::from_private_key_der(alg, pkcs8))
        };
        let key = if let Ok(rsa) =
            RsaKeyPair::from_pkcs8(pkcs8).or_else(|_| RsaKeyPair::from_der(pkcs8))
        {
            let legacy = PrivateKey::from_der(pkcs8).map_err(|_| SignatureAuthError::Key)?;
            ServerKey::Rsa(rsa, Box::new(legacy))
        } else if let Some(key) = [
            (
                &ECDSA_P256_SHA256_ASN1_SIGNING,
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                Curve::P256,
            ),
            (
                &ECDSA_P384_SHA384_ASN1_SIGNING,
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                Curve::P384,
            ),
            (
                &ECDSA_P521_SHA512_ASN1_SIGNING,
                &ECDSA_P521_SHA512_FIXED_SIGNING,
                Curve::P521,
            ),
        ]
        .into_iter()
        .find_map(|(der, fixed, curve)| match (ec(der), ec(fixed)) {
            (Ok(der), Ok(fixed)) => Some(ServerKey::Ecdsa { der, fixed, curve }),
            _ => None,
        }) {
            key
        } else {
            return Err(SignatureAuthError::Key);
        };
        Ok(ServerCredential { chain, key })
    }

    /// From PEM texts: every certificate of `chain` (leaf first) and the
    /// first private key of `key`, which must be the leaf's.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, SignatureAuthError> {
        use crate::ikev1::certificates::LocalCertificate;
        // Checks the certificates and that the key is the leaf's.
        let local = LocalCertificate::from_pem(chain, key)
            .map_err(|e| SignatureAuthError::Pem(e.to_string()))?;
        let der = x509_parser::pem::Pem::iter_from_buffer(key)
            .filter_map(Result::ok)
            .find(|block| block.label.ends_with("PRIVATE KEY"))
            .map(|block| zeroize::Zeroizing::new(block.contents))
            .ok_or(SignatureAuthError::Key)?;
        ServerCredential::from_pkcs8(local.chain().to_vec(), &der)
    }

    /// The leaf's subject DN (DER), our IDi when no other is given.
    pub fn subject_dn(&self) -> Option<Vec<u8>> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, leaf) = X509Certificate::from_der(self.chain.first()?).ok()?;
        Some(leaf.subject().as_raw().to_vec())
    }

    /// The certificates to send, leaf first (§3.6, one CERT payload each).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The hash algorithms we announce (RFC 7427 §4).
    pub fn announced_hashes() -> Vec<u8> {
        [hash_id::SHA2_256, hash_id::SHA2_384, hash_id::SHA2_512]
            .iter()
            .flat_map(|h| h.to_be_bytes())
            .collect()
    }

    /// The AUTH payload's method and data over `signed` octets (§2.15).
    /// `peer_hashes` are the hash IDs of the peer's
    /// SIGNATURE_HASH_ALGORITHMS, empty when it sent none.
    pub fn sign(
        &self,
        signed: &[u8],
        peer_hashes: &[u16],
    ) -> Result<(u8, Vec<u8>), SignatureAuthError> {
        let rng = SystemRandom::new();
        let rfc7427 = !peer_hashes.is_empty();
        match &self.key {
            ServerKey::Rsa(_, legacy) if !rfc7427 => {
                // §3.8 method 1: RSASSA-PKCS1-v1_5 with SHA-1, the hash in
                // its DigestInfo (RFC 8017 §9.2).
                let hash =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, signed);
                let mut info = SHA1_DIGEST_INFO.to_vec();
                info.extend_from_slice(hash.as_ref());
                let signature = legacy
                    .sign_hash(&info)
                    .map_err(|_| SignatureAuthError::Sign)?;
                Ok((auth_method::RSA_SIGNATURE, signature))
            }
            ServerKey::Rsa(key, _) => {
                if !peer_hashes.contains(&hash_id::SHA2_256) {
                    return Err(SignatureAuthError::NoCommonAlgorithm);
                }
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, signed, &mut signature)
                    .map_err(|_| SignatureAuthError::Sign)?;
                Ok((
                    auth_method::DIGITAL_SIGNATURE,
                    with_algorithm(SHA256_WITH_RSA, &signature),
                ))
            }
            ServerKey::Ecdsa { der, fixed, curve } => {
                if rfc7427 && peer_hashes.contains(&curve.hash_id()) {
                    let signature = der
                        .sign(&rng, signed)
                        .map_err(|_| SignatureAuthError::Sign)?;
                    Ok((
                        auth_method::DIGITAL_SIGNATURE,
                        with_algorithm(curve.rfc7427_algorithm(), signature.as_ref()),
                    ))
                } else {
                    // RFC 4754 §3: methods 9/10/11, r || s, the curve's own
                    // hash.
                    let signature = fixed
                        .sign(&rng, signed)
                        .map_err(|_| SignatureAuthError::Sign)?;
                    Ok((curve.rfc4754_method(), signature.as_ref().to_vec()))
                }
            }
        }
    }

    /// Our CERT payloads (leaf first) and the AUTH payload over `signed`
    /// (§2.15, §3.6), appended to `chain`.
    pub fn push_auth(
        &self,
        chain: &mut super::wire::PayloadChain,
        signed: &[u8],
        peer_hashes: &[u16],
    ) -> Result<(), SignatureAuthError> {
        let (method, data) = self.sign(signed, peer_hashes)?;
        self.push_signed(chain, method, &data);
        Ok(())
    }

    /// Our CERT and AUTH payloads with the signature the driver made
    /// (`done`, from an offloaded [`super::signature_job::SignatureJob`]),
    /// or, without one, signed here over `signed()` — computed only then.
    pub(crate) fn push_done_or_sign(
        &self,
        chain: &mut super::wire::PayloadChain,
        done: Option<Result<(u8, Vec<u8>), SignatureAuthError>>,
        signed: impl FnOnce() -> Vec<u8>,
        peer_hashes: &[u16],
    ) -> Result<(), SignatureAuthError> {
        match done {
            Some(result) => result.map(|(method, data)| self.push_signed(chain, method, &data)),
            None => self.push_auth(chain, &signed(), peer_hashes),
        }
    }

    /// Our CERT payloads (leaf first) and an AUTH payload signed earlier
    /// (by [`Self::sign`], perhaps on another thread).
    pub fn push_signed(&self, chain: &mut super::wire::PayloadChain, method: u8, data: &[u8]) {
        use super::payloads::{cert_encoding, Authentication, Certificate};
        use super::wire::payload;
        for der in self.chain() {
            chain.push(
                payload::CERT,
                &Certificate::encode(cert_encoding::X509_SIGNATURE, der),
            );
        }
        chain.push(payload::AUTH, &Authentication::encode(method, data));
    }

    /// The public key (for tests and logs): an RSAPublicKey DER or an
    /// uncompressed EC point.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            ServerKey::Rsa(k, _) => k.public_key().as_ref().to_vec(),
            ServerKey::Ecdsa { der, .. } => der.public_key().as_ref().to_vec(),
        }
    }
}

/// RFC 7427 §3: the AUTH data of method 14 is the AlgorithmIdentifier's
/// length (one octet), the AlgorithmIdentifier, then the signature.
fn with_algorithm(algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + algorithm.len() + signature.len());
    out.push(algorithm.len() as u8);
    out.extend_from_slice(algorithm);
    out.extend_from_slice(signature);
    out
}

/// Parses a SIGNATURE_HASH_ALGORITHMS notify's data (RFC 7427 §4).
pub fn parse_hash_algorithms(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};

    fn rsa_credential() -> ServerCredential {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = key.as_der().unwrap().as_ref().to_vec();
        ServerCredential::from_pkcs8(vec![vec![0x30]], &pkcs8).unwrap()
    }

    /// RFC 4754 §3 method 11 (r || s, 66 octets each) without RFC 7427;
    /// with it, method 14 with ecdsa-with-SHA512 and a DER signature.
    #[test]
    fn p521_signs_method_11_or_rfc7427_with_sha512() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, &rng).unwrap();
        let credential = ServerCredential::from_pkcs8(vec![vec![0x30]], pkcs8.as_ref()).unwrap();
        let public = credential.public_key();
        let (method, signature) = credential.sign(b"signed octets", &[]).unwrap();
        assert_eq!(method, auth_method::ECDSA_SHA512_P521);
        assert_eq!(signature.len(), 132);
        UnparsedPublicKey::new(&sig::ECDSA_P521_SHA512_FIXED, &public)
            .verify(b"signed octets", &signature)
            .expect("verifies");
        assert!(
            UnparsedPublicKey::new(&sig::ECDSA_P521_SHA512_FIXED, &public)
                .verify(b"other octets", &signature)
                .is_err()
        );
        let (method, data) = credential
            .sign(b"signed octets", &[hash_id::SHA2_256, hash_id::SHA2_512])
            .unwrap();
        assert_eq!(method, auth_method::DIGITAL_SIGNATURE);
        let algorithm = &data[1..1 + ECDSA_WITH_SHA512.len()];
        assert_eq!(algorithm, ECDSA_WITH_SHA512);
        UnparsedPublicKey::new(&sig::ECDSA_P521_SHA512_ASN1, &public)
            .verify(b"signed octets", &data[1 + ECDSA_WITH_SHA512.len()..])
            .expect("verifies");
    }

    #[test]
    fn rsa_without_rfc7427_signs_method_1_with_sha1() {
        let credential = rsa_credential();
        let (method, signature) = credential.sign(b"signed octets", &[]).unwrap();
        assert_eq!(method, auth_method::RSA_SIGNATURE);
        // aws-lc-rs checks PKCS#1 v1.5 with SHA-1 on its own.
        let public = credential.public_key();
        UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, &public)
            .verify(b"signed octets", &signature)
            .expect("verifies");
        assert!(UnparsedPublicKey::new(
            &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &public
        )
        .verify(b"other octets", &signature)
        .is_err());
        // With RFC 7427 and SHA-256 announced: method 14.
        let (method, data) = credential
            .sign(b"signed octets", &[hash_id::SHA2_256])
            .unwrap();
        assert_eq!(method, auth_method::DIGITAL_SIGNATURE);
        assert_eq!(&data[1..1 + SHA256_WITH_RSA.len()], SHA256_WITH_RSA);
        // RFC 7427 without a hash we make: refused, not SHA-1.
        assert!(matches!(
            credential.sign(b"x", &[hash_id::SHA2_512]),
            Err(SignatureAuthError::NoCommonAlgorithm)
        ));
    }
}
