//! The ciphers that protect IKE messages: CBC without padding. IKE pads the
//! payloads itself (RFC 2409 App. B; RFC 7296 §3.14), so here the buffer must
//! already be a whole number of blocks.
//!
//! AES (RFC 3602) comes from aws-lc-rs, which zeroizes its key schedules;
//! 3DES (RFC 2451) from RustCrypto `des` + `cbc`, built with `zeroize` so the
//! key schedule is wiped on drop.

use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use cbc::cipher::generic_array::GenericArray;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use super::error::CryptoError;

/// An IKE encryption algorithm in CBC mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IkeCipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    TripleDesCbc,
}

type TdesCbcEncryptor = cbc::Encryptor<des::TdesEde3>;
type TdesCbcDecryptor = cbc::Decryptor<des::TdesEde3>;

impl IkeCipher {
    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            IkeCipher::TripleDesCbc => 8,
            _ => 16,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            IkeCipher::Aes128Cbc => 16,
            IkeCipher::Aes192Cbc | IkeCipher::TripleDesCbc => 24,
            IkeCipher::Aes256Cbc => 32,
        }
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self {
            IkeCipher::Aes128Cbc => "AES-CBC-128",
            IkeCipher::Aes192Cbc => "AES-CBC-192",
            IkeCipher::Aes256Cbc => "AES-CBC-256",
            IkeCipher::TripleDesCbc => "3DES-CBC",
        }
    }

    fn aes_algorithm(self) -> Option<&'static aws_lc_rs::cipher::Algorithm> {
        match self {
            IkeCipher::Aes128Cbc => Some(&aws_lc_rs::cipher::AES_128),
            IkeCipher::Aes192Cbc => Some(&aws_lc_rs::cipher::AES_192),
            IkeCipher::Aes256Cbc => Some(&aws_lc_rs::cipher::AES_256),
            IkeCipher::TripleDesCbc => None,
        }
    }

    /// Checks the key, IV and buffer lengths shared by both directions.
    fn check(self, key: &[u8], iv: &[u8], buf: &[u8]) -> Result<(), CryptoError> {
        if key.len() != self.key_len() {
            return Err(CryptoError::KeyLength);
        }
        // The IV is one block (RFC 3602 §2.1, RFC 2451 §2.3); a wrong-sized IV
        // is as unusable as a ragged buffer.
        if iv.len() != self.block_len() || !buf.len().is_multiple_of(self.block_len()) {
            return Err(CryptoError::NotBlockAligned);
        }
        Ok(())
    }

    /// Encrypts `buf` in place with `key` and `iv`. `buf` must be a whole
    /// number of blocks; an empty buffer is left as it is.
    pub fn encrypt_in_place(
        self,
        key: &[u8],
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.check(key, iv, buf)?;
        if buf.is_empty() {
            return Ok(());
        }
        match self.aes_algorithm() {
            Some(algorithm) => {
                let unbound = UnboundCipherKey::new(algorithm, key)
                    .map_err(|_| CryptoError::Failed("AES key rejected"))?;
                let key = EncryptingKey::cbc(unbound)
                    .map_err(|_| CryptoError::Failed("AES-CBC key rejected"))?;
                let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError::NotBlockAligned)?;
                key.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| CryptoError::Failed("AES-CBC encryption failed"))?;
            }
            None => {
                let mut encryptor = TdesCbcEncryptor::new_from_slices(key, iv)
                    .map_err(|_| CryptoError::KeyLength)?;
                for block in buf.chunks_exact_mut(8) {
                    encryptor.encrypt_block_mut(GenericArray::from_mut_slice(block));
                }
            }
        }
        Ok(())
    }

    /// Decrypts `buf` in place with `key` and `iv`. `buf` must be a whole
    /// number of blocks; an empty buffer is left as it is.
    pub fn decrypt_in_place(
        self,
        key: &[u8],
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.check(key, iv, buf)?;
        if buf.is_empty() {
            return Ok(());
        }
        match self.aes_algorithm() {
            Some(algorithm) => {
                let unbound = UnboundCipherKey::new(algorithm, key)
                    .map_err(|_| CryptoError::Failed("AES key rejected"))?;
                let key = DecryptingKey::cbc(unbound)
                    .map_err(|_| CryptoError::Failed("AES-CBC key rejected"))?;
                let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError::NotBlockAligned)?;
                key.decrypt(buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map_err(|_| CryptoError::Failed("AES-CBC decryption failed"))?;
            }
            None => {
                let mut decryptor = TdesCbcDecryptor::new_from_slices(key, iv)
                    .map_err(|_| CryptoError::KeyLength)?;
                for block in buf.chunks_exact_mut(8) {
                    decryptor.decrypt_block_mut(GenericArray::from_mut_slice(block));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cbc_tests.rs"]
mod tests;
