//! The keyed cryptographic transform of one SA (aws-lc-rs underneath).
//!
//! Raw key bytes are copied into aws-lc-rs key objects and never kept here;
//! the caller's copy lives in a `Zeroizing` buffer inside [`super::EspSaConfig`].
//! aws-lc-rs zeroizes its AES key schedules on drop and aws-lc cleanses the
//! AEAD and HMAC contexts it frees; the AEAD salt we hold is zeroized below.
//! 3DES (RFC 2451) comes from RustCrypto `des`, built with `zeroize`, so its
//! key schedule is wiped on drop.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use cbc::cipher::generic_array::GenericArray;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use zeroize::Zeroize;

use super::error::EspError;
use super::suite::{CipherSuite, Integrity};

/// The HMAC behind an integrity algorithm (RFC 2404, RFC 4868).
pub(crate) fn hmac_algorithm(integrity: Integrity) -> hmac::Algorithm {
    match integrity {
        Integrity::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Integrity::HmacSha256_128 => hmac::HMAC_SHA256,
    }
}

/// The ICV: the HMAC truncated to its leftmost bytes (RFC 2404 §2, RFC 4868 §2.3).
#[cfg(test)]
pub(crate) fn truncated_hmac(integrity: Integrity, key: &hmac::Key, data: &[u8]) -> Vec<u8> {
    hmac::sign(key, data).as_ref()[..integrity.icv_len()].to_vec()
}

/// A keyed transform: AEAD, or CBC encryption plus a truncated HMAC.
pub(crate) enum Transform {
    /// AES-GCM (RFC 4106) or ChaCha20-Poly1305 (RFC 7634): both build the
    /// nonce as salt || IV and authenticate SPI and sequence number.
    Aead { key: LessSafeKey, salt: [u8; 4] },
    /// Boxed: the two AES key schedules and the HMAC state are ~2 KiB,
    /// allocated once per SA.
    Cbc(Box<CbcTransform>),
    /// 3DES-CBC (RFC 2451) and its HMAC, boxed for the same reason.
    TripleDes(Box<TripleDesTransform>),
}

pub(crate) struct TripleDesTransform {
    cipher: des::TdesEde3,
    mac: hmac::Key,
    icv_len: usize,
}

pub(crate) struct CbcTransform {
    encrypt: EncryptingKey,
    decrypt: DecryptingKey,
    mac: hmac::Key,
    icv_len: usize,
}

impl Drop for Transform {
    fn drop(&mut self) {
        if let Transform::Aead { salt, .. } = self {
            salt.zeroize();
        }
    }
}

impl Transform {
    /// Keys a transform. `cipher_key` includes the 4-byte salt for GCM
    /// (RFC 4106 §8.1: "the last four octets of the keying material").
    pub(crate) fn new(
        suite: CipherSuite,
        cipher_key: &[u8],
        integrity_key: &[u8],
    ) -> Result<Self, EspError> {
        let expected = suite.cipher_key_len() + suite.salt_len();
        if cipher_key.len() != expected {
            return Err(EspError::KeyLength {
                expected,
                got: cipher_key.len(),
            });
        }
        if integrity_key.len() != suite.integrity_key_len() {
            return Err(EspError::KeyLength {
                expected: suite.integrity_key_len(),
                got: integrity_key.len(),
            });
        }
        match suite {
            CipherSuite::Aes128Gcm16 | CipherSuite::Aes256Gcm16 | CipherSuite::ChaCha20Poly1305 => {
                let algorithm = match suite {
                    CipherSuite::Aes128Gcm16 => &aead::AES_128_GCM,
                    CipherSuite::Aes256Gcm16 => &aead::AES_256_GCM,
                    _ => &aead::CHACHA20_POLY1305,
                };
                // RFC 4106 §8.1 and RFC 7634 §2: the salt is the last four
                // octets of the keying material.
                let (key_bytes, salt_bytes) = cipher_key.split_at(suite.cipher_key_len());
                let key = UnboundKey::new(algorithm, key_bytes)
                    .map_err(|_| EspError::Crypto("AEAD key rejected"))?;
                let mut salt = [0u8; 4];
                salt.copy_from_slice(salt_bytes);
                Ok(Transform::Aead {
                    key: LessSafeKey::new(key),
                    salt,
                })
            }
            CipherSuite::Aes128Cbc(integrity) | CipherSuite::Aes256Cbc(integrity) => {
                let algorithm = if matches!(suite, CipherSuite::Aes128Cbc(_)) {
                    &aws_lc_rs::cipher::AES_128
                } else {
                    &aws_lc_rs::cipher::AES_256
                };
                let unbound = || {
                    UnboundCipherKey::new(algorithm, cipher_key)
                        .map_err(|_| EspError::Crypto("AES-CBC key rejected"))
                };
                let encrypt = EncryptingKey::cbc(unbound()?)
                    .map_err(|_| EspError::Crypto("AES-CBC key rejected"))?;
                let decrypt = DecryptingKey::cbc(unbound()?)
                    .map_err(|_| EspError::Crypto("AES-CBC key rejected"))?;
                Ok(Transform::Cbc(Box::new(CbcTransform {
                    encrypt,
                    decrypt,
                    mac: hmac::Key::new(hmac_algorithm(integrity), integrity_key),
                    icv_len: integrity.icv_len(),
                })))
            }
            CipherSuite::TripleDesCbc(integrity) => {
                let cipher = des::TdesEde3::new_from_slice(cipher_key)
                    .map_err(|_| EspError::Crypto("3DES key rejected"))?;
                Ok(Transform::TripleDes(Box::new(TripleDesTransform {
                    cipher,
                    mac: hmac::Key::new(hmac_algorithm(integrity), integrity_key),
                    icv_len: integrity.icv_len(),
                })))
            }
        }
    }

    /// AEAD nonce: RFC 4106 §4 and RFC 7634 §2, salt (4) followed by the
    /// explicit IV (8).
    fn aead_nonce(salt: &[u8; 4], iv: &[u8]) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(salt);
        nonce[4..].copy_from_slice(iv);
        Nonce::assume_unique_for_key(nonce)
    }

    /// Encrypts `packet[body_start..]` in place and writes the ICV into
    /// `icv`. `packet[..8]` is SPI and sequence number; `packet[8..body_start]`
    /// is the IV, already filled in.
    pub(crate) fn seal(
        &self,
        packet: &mut [u8],
        body_start: usize,
        icv: &mut [u8],
    ) -> Result<(), EspError> {
        match self {
            Transform::Aead { key, salt } => {
                let (head, body) = packet.split_at_mut(body_start);
                let nonce = Self::aead_nonce(salt, &head[8..]);
                // RFC 4106 §5, RFC 7634 §2.1: AAD is SPI and 32-bit
                // sequence number.
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::from(&head[..8]), body)
                    .map_err(|_| EspError::Crypto("AEAD seal failed"))?;
                icv.copy_from_slice(tag.as_ref());
                Ok(())
            }
            Transform::Cbc(cbc) => {
                let CbcTransform {
                    encrypt,
                    mac,
                    icv_len,
                    ..
                } = &**cbc;
                let (head, body) = packet.split_at_mut(body_start);
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&head[8..]);
                encrypt
                    .less_safe_encrypt(body, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| EspError::Crypto("AES-CBC encrypt failed"))?;
                // RFC 4303 §3.3.4: the ICV covers SPI, sequence number, IV and ciphertext.
                icv.copy_from_slice(&hmac::sign(mac, packet).as_ref()[..*icv_len]);
                Ok(())
            }
            Transform::TripleDes(tdes) => {
                let (head, body) = packet.split_at_mut(body_start);
                let mut encryptor = cbc::Encryptor::<des::TdesEde3>::inner_iv_slice_init(
                    tdes.cipher.clone(),
                    &head[8..],
                )
                .map_err(|_| EspError::Crypto("3DES IV rejected"))?;
                if !body.len().is_multiple_of(8) {
                    return Err(EspError::Misaligned(body.len()));
                }
                for block in body.chunks_exact_mut(8) {
                    encryptor.encrypt_block_mut(GenericArray::from_mut_slice(block));
                }
                // RFC 4303 §3.3.4: the ICV covers SPI, sequence number, IV and ciphertext.
                icv.copy_from_slice(&hmac::sign(&tdes.mac, packet).as_ref()[..tdes.icv_len]);
                Ok(())
            }
        }
    }

    /// Verifies the ICV over `packet[..icv_start]` against `packet[icv_start..]`
    /// and decrypts `packet[body_start..icv_start]` in place.
    pub(crate) fn open(
        &self,
        packet: &mut [u8],
        body_start: usize,
        icv_start: usize,
    ) -> Result<(), EspError> {
        match self {
            Transform::Aead { key, salt } => {
                let (head, rest) = packet.split_at_mut(body_start);
                let nonce = Self::aead_nonce(salt, &head[8..]);
                // aws-lc-rs compares the tag in constant time.
                key.open_in_place(nonce, Aad::from(&head[..8]), rest)
                    .map_err(|_| EspError::AuthenticationFailed)?;
                Ok(())
            }
            Transform::Cbc(cbc) => {
                let CbcTransform {
                    decrypt,
                    mac,
                    icv_len,
                    ..
                } = &**cbc;
                let (covered, icv) = packet.split_at_mut(icv_start);
                let tag = hmac::sign(mac, covered);
                // RFC 4303 §3.4.4.1: verify before decrypting, in constant time.
                verify_slices_are_equal(&tag.as_ref()[..*icv_len], icv)
                    .map_err(|_| EspError::AuthenticationFailed)?;
                let (head, body) = covered.split_at_mut(body_start);
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&head[8..]);
                let body_len = body.len();
                decrypt
                    .decrypt(body, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| EspError::Misaligned(body_len))?;
                Ok(())
            }
            Transform::TripleDes(tdes) => {
                let (covered, icv) = packet.split_at_mut(icv_start);
                let tag = hmac::sign(&tdes.mac, covered);
                // RFC 4303 §3.4.4.1: verify before decrypting, in constant time.
                verify_slices_are_equal(&tag.as_ref()[..tdes.icv_len], icv)
                    .map_err(|_| EspError::AuthenticationFailed)?;
                let (head, body) = covered.split_at_mut(body_start);
                if !body.len().is_multiple_of(8) {
                    return Err(EspError::Misaligned(body.len()));
                }
                let mut decryptor = cbc::Decryptor::<des::TdesEde3>::inner_iv_slice_init(
                    tdes.cipher.clone(),
                    &head[8..],
                )
                .map_err(|_| EspError::Crypto("3DES IV rejected"))?;
                for block in body.chunks_exact_mut(8) {
                    decryptor.decrypt_block_mut(GenericArray::from_mut_slice(block));
                }
                Ok(())
            }
        }
    }
}
