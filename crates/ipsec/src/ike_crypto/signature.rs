//! The signatures of IKEv1 Main Mode with certificates: RSA (RFC 2409
//! §5.1) and ECDSA (RFC 4754 §7), over HASH_I / HASH_R.
//!
//! - RSA: RFC 2409 §5.1 signs the prf output with PKCS#1 v1.5 padding but
//!   *without* a DigestInfo (the "hash" is a prf value, not a digest of a
//!   named algorithm). aws-lc-rs cannot make that format, so the `rsa` crate
//!   does (with blinding: `sign_with_rng`).
//! - ECDSA: RFC 4754 §7: the SIG payload carries r || s, each as long as the
//!   curve's order. The value signed is HASH_I/HASH_R itself used as the
//!   message digest (as strongSwan's "ECDSA with NULL" does): no second hash;
//!   RFC 4754 §7 makes HASH_I itself a SHA-256/384/512 HMAC of the curve's
//!   size. ECDSA uses the leftmost bits of a digest as long as the order
//!   (FIPS 186-4 §6.4), so a shorter prf output is left-padded with zeros
//!   (the same integer) and a longer one truncated, giving aws-lc-rs a digest
//!   of the curve's own hash length (64 octets for P-521, whose 521-bit order
//!   is longer than any digest: the whole SHA-512 value is used).

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use thiserror::Error;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What kind of key signs: it decides the Main Mode authentication method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::EcdsaP256 => "ECDSA P-256",
            KeyKind::EcdsaP384 => "ECDSA P-384",
            KeyKind::EcdsaP521 => "ECDSA P-521",
        }
    }

    /// Bytes of r and of s (RFC 4754 §7).
    fn ecdsa_len(self) -> usize {
        match self {
            KeyKind::EcdsaP384 => 48,
            KeyKind::EcdsaP521 => 66,
            _ => 32,
        }
    }

    /// The length of the digest we hand over: the curve's hash.
    fn digest_len(self) -> usize {
        match self {
            KeyKind::EcdsaP384 => 48,
            KeyKind::EcdsaP521 => 64,
            _ => 32,
        }
    }
}

/// Why a key could not be read or a signature made or checked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    #[error("not an RSA or ECDSA P-256, P-384 or P-521 private key (PKCS#8, PKCS#1 or SEC1)")]
    UnreadableKey,
    #[error("no private key in the PEM text")]
    NoPemKey,
    #[error("the public key is not RSA or ECDSA P-256, P-384 or P-521")]
    UnsupportedPublicKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("signing failed")]
    SigningFailed,
}

enum Signer {
    Rsa(Box<RsaPrivateKey>),
    Ecdsa(EcdsaKeyPair),
}

/// Our private key.
pub struct PrivateKey {
    signer: Signer,
    kind: KeyKind,
}

impl PrivateKey {
    /// A DER private key: PKCS#8 (RSA or EC), PKCS#1 RSA, or SEC1 EC.
    pub fn from_der(der: &[u8]) -> Result<PrivateKey, SignatureError> {
        if let Ok(k) =
            RsaPrivateKey::from_pkcs8_der(der).or_else(|_| RsaPrivateKey::from_pkcs1_der(der))
        {
            return Ok(PrivateKey {
                signer: Signer::Rsa(Box::new(k)),
                kind: KeyKind::Rsa,
            });
        }
        for (alg, kind) in [
            (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, KeyKind::EcdsaP256),
            (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, KeyKind::EcdsaP384),
            (&sig::ECDSA_P521_SHA512_FIXED_SIGNING, KeyKind::EcdsaP521),
        ] {
            let pair = EcdsaKeyPair::from_pkcs8(alg, der)
                .or_else(|_| EcdsaKeyPair::from_private_key_der(alg, der));
            if let Ok(pair) = pair {
                return Ok(PrivateKey {
                    signer: Signer::Ecdsa(pair),
                    kind,
                });
            }
        }
        Err(SignatureError::UnreadableKey)
    }

    /// The first private key of a PEM text ("PRIVATE KEY", "RSA PRIVATE
    /// KEY" or "EC PRIVATE KEY").
    pub fn from_pem(pem: &[u8]) -> Result<PrivateKey, SignatureError> {
        for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let Ok(block) = block else { break };
            if block.label.ends_with("PRIVATE KEY") {
                return PrivateKey::from_der(&block.contents);
            }
        }
        Err(SignatureError::NoPemKey)
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The signature of HASH_I or HASH_R (see the module text).
    pub fn sign_hash(&self, hash: &[u8]) -> Result<Vec<u8>, SignatureError> {
        match &self.signer {
            Signer::Rsa(key) => {
                let mut rng = rsa::rand_core::OsRng;
                key.sign_with_rng(&mut rng, Pkcs1v15Sign::new_unprefixed(), hash)
                    .map_err(|_| SignatureError::SigningFailed)
            }
            Signer::Ecdsa(pair) => {
                let digest = ecdsa_digest(self.kind, hash)?;
                pair.sign_digest(&digest)
                    .map(|s| s.as_ref().to_vec())
                    .map_err(|_| SignatureError::SigningFailed)
            }
        }
    }

    /// The public half, as the bytes a certificate's key is compared with:
    /// the PKCS#1 modulus for RSA, the uncompressed point for ECDSA.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(key) => key.to_public_key().n().to_bytes_be(),
            Signer::Ecdsa(pair) => pair.public_key().as_ref().to_vec(),
        }
    }
}

/// A public key taken from a certificate's SubjectPublicKeyInfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    /// RSA: the PKCS#1 RSAPublicKey DER; ECDSA: the uncompressed point.
    bytes: Vec<u8>,
}

impl PublicKey {
    /// From the DER of a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn from_spki_der(spki: &[u8]) -> Result<PublicKey, SignatureError> {
        let (_, info) = SubjectPublicKeyInfo::from_der(spki)
            .map_err(|_| SignatureError::UnsupportedPublicKey)?;
        Self::from_spki(&info)
    }

    pub fn from_spki(info: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, SignatureError> {
        let bits = info.subject_public_key.data.to_vec();
        let alg = &info.algorithm.algorithm;
        if *alg == OID_PKCS1_RSAENCRYPTION {
            RsaPublicKey::from_pkcs1_der(&bits)
                .map_err(|_| SignatureError::UnsupportedPublicKey)?;
            return Ok(PublicKey {
                kind: KeyKind::Rsa,
                bytes: bits,
            });
        }
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            let kind = match curve {
                Some(c) if c == OID_EC_P256 => KeyKind::EcdsaP256,
                Some(c) if c == OID_NIST_EC_P384 => KeyKind::EcdsaP384,
                Some(c) if c == OID_NIST_EC_P521 => KeyKind::EcdsaP521,
                _ => return Err(SignatureError::UnsupportedPublicKey),
            };
            return Ok(PublicKey { kind, bytes: bits });
        }
        Err(SignatureError::UnsupportedPublicKey)
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// RSA: the PKCS#1 RSAPublicKey DER; ECDSA: the uncompressed point (the
    /// forms aws-lc-rs verifies with).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks a SIG payload over HASH_I / HASH_R (see the module text).
    pub fn verify_hash(&self, hash: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self.kind {
            KeyKind::Rsa => {
                let key = RsaPublicKey::from_pkcs1_der(&self.bytes)
                    .map_err(|_| SignatureError::UnsupportedPublicKey)?;
                key.verify(Pkcs1v15Sign::new_unprefixed(), hash, signature)
                    .map_err(|_| SignatureError::BadSignature)
            }
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
                let alg: &'static dyn sig::VerificationAlgorithm = match self.kind {
                    KeyKind::EcdsaP256 => &sig::ECDSA_P256_SHA256_FIXED,
                    KeyKind::EcdsaP384 => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => &sig::ECDSA_P521_SHA512_FIXED,
                };
                if signature.len() != 2 * self.kind.ecdsa_len() {
                    return Err(SignatureError::BadSignature);
                }
                let digest = ecdsa_digest(self.kind, hash)?;
                UnparsedPublicKey::new(alg, &self.bytes)
                    .verify_digest(&digest, signature)
                    .map_err(|_| SignatureError::BadSignature)
            }
        }
    }
}

/// HASH_I/HASH_R as a digest of the curve's length (module text: FIPS 186-4
/// §6.4 uses the leftmost bits; left zero padding keeps the integer).
fn ecdsa_digest(kind: KeyKind, hash: &[u8]) -> Result<Digest, SignatureError> {
    let n = kind.digest_len();
    let mut value = vec![0u8; n];
    if hash.len() >= n {
        value.copy_from_slice(&hash[..n]);
    } else {
        value[n - hash.len()..].copy_from_slice(hash);
    }
    let alg = match kind {
        KeyKind::EcdsaP384 => &digest::SHA384,
        KeyKind::EcdsaP521 => &digest::SHA512,
        _ => &digest::SHA256,
    };
    Digest::import_less_safe(&value, alg).map_err(|_| SignatureError::SigningFailed)
}
