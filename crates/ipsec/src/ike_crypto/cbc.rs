//! The ciphers that protect IKE messages: CBC without padding (IKE pads the
//! payloads itself, RFC 2409 App. B, RFC 7296 §3.14).

use super::error::CryptoError;

/// An IKE encryption algorithm in CBC mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IkeCipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    TripleDesCbc,
}

impl IkeCipher {
    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        todo!()
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        todo!()
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        todo!()
    }

    /// Encrypts `buf` in place.
    pub fn encrypt_in_place(
        self,
        key: &[u8],
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), CryptoError> {
        todo!("{} {} {}", key.len(), iv.len(), buf.len())
    }

    /// Decrypts `buf` in place.
    pub fn decrypt_in_place(
        self,
        key: &[u8],
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), CryptoError> {
        todo!("{} {} {}", key.len(), iv.len(), buf.len())
    }
}
