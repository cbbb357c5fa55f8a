//! The cipher suites an ESP SA can use, and their sizes.

use std::fmt;

/// Integrity algorithm paired with a non-AEAD cipher.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Integrity {
    /// HMAC-SHA1 truncated to 96 bits (RFC 2404 §2), 20-byte key.
    HmacSha1_96,
    /// HMAC-SHA-256 truncated to 128 bits (RFC 4868 §2.1), 32-byte key.
    HmacSha256_128,
}

impl Integrity {
    /// Key length in bytes: RFC 2404 §3 (160 bits), RFC 4868 §2.1.1 (256 bits).
    pub fn key_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha256_128 => 32,
        }
    }

    /// Truncated ICV length in bytes: RFC 2404 §2 (96 bits), RFC 4868 §2.3 (128 bits).
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 12,
            Integrity::HmacSha256_128 => 16,
        }
    }
}

/// An ESP cipher suite.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum CipherSuite {
    /// AES-128-GCM with a 16-byte ICV (RFC 4106).
    Aes128Gcm16,
    /// AES-256-GCM with a 16-byte ICV (RFC 4106).
    Aes256Gcm16,
    /// AES-128-CBC (RFC 3602) with a separate HMAC.
    Aes128Cbc(Integrity),
    /// AES-256-CBC (RFC 3602) with a separate HMAC.
    Aes256Cbc(Integrity),
    /// ChaCha20-Poly1305 with a 16-byte ICV (RFC 7634).
    ChaCha20Poly1305,
    /// 3DES-CBC (RFC 2451) with a separate HMAC: what old clients still
    /// offer first; an operator can remove it.
    TripleDesCbc(Integrity),
}

impl CipherSuite {
    /// Encryption key length in bytes, without the GCM salt.
    pub fn cipher_key_len(self) -> usize {
        match self {
            CipherSuite::Aes128Gcm16 | CipherSuite::Aes128Cbc(_) => 16,
            CipherSuite::Aes256Gcm16 | CipherSuite::Aes256Cbc(_) => 32,
            // RFC 7634 §2: "the first 32 octets are the 256-bit ChaCha20 key".
            CipherSuite::ChaCha20Poly1305 => 32,
            // RFC 2451 §2.2: 3DES takes 192 bits of keying material.
            CipherSuite::TripleDesCbc(_) => 24,
        }
    }

    /// Salt length: RFC 4106 §8.1, the last 4 bytes of GCM keying material;
    /// RFC 7634 §2, the same for ChaCha20-Poly1305.
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            4
        } else {
            0
        }
    }

    /// Integrity key length in bytes (0 for AEAD suites).
    pub fn integrity_key_len(self) -> usize {
        self.integrity().map_or(0, Integrity::key_len)
    }

    /// The separate integrity algorithm, if any.
    pub fn integrity(self) -> Option<Integrity> {
        match self {
            CipherSuite::Aes128Cbc(i)
            | CipherSuite::Aes256Cbc(i)
            | CipherSuite::TripleDesCbc(i) => Some(i),
            CipherSuite::Aes128Gcm16 | CipherSuite::Aes256Gcm16 | CipherSuite::ChaCha20Poly1305 => {
                None
            }
        }
    }

    /// Whether the cipher is an AEAD that carries its own ICV.
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            CipherSuite::Aes128Gcm16 | CipherSuite::Aes256Gcm16 | CipherSuite::ChaCha20Poly1305
        )
    }

    /// Bytes of IV carried in each packet: RFC 4106 §3.1 and RFC 7634 §2
    /// (8), RFC 3602 §3 (16), RFC 2451 §2.3 (one 8-byte 3DES block).
    pub fn iv_len(self) -> usize {
        match self {
            _ if self.is_aead() => 8,
            CipherSuite::TripleDesCbc(_) => 8,
            _ => 16,
        }
    }

    /// ICV length in bytes: RFC 4106 §6 (16 here) or the HMAC's truncation.
    pub fn icv_len(self) -> usize {
        self.integrity().map_or(16, Integrity::icv_len)
    }

    /// What the encrypted part (payload, padding, pad length, next header)
    /// must be a multiple of: the cipher block for CBC (RFC 3602 §2.4), and
    /// for GCM the 4-byte alignment RFC 4303 §2.4 requires of every ESP
    /// packet (RFC 4106 §3.2: GCM itself needs no padding).
    pub fn alignment(self) -> usize {
        match self {
            _ if self.is_aead() => 4,
            // RFC 2451 §2.4: padding to the 64-bit 3DES block.
            CipherSuite::TripleDesCbc(_) => 8,
            _ => 16,
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let integrity = |i: &Integrity| match i {
            Integrity::HmacSha1_96 => "hmac-sha1-96",
            Integrity::HmacSha256_128 => "hmac-sha256-128",
        };
        match self {
            CipherSuite::Aes128Gcm16 => f.write_str("aes128gcm16"),
            CipherSuite::Aes256Gcm16 => f.write_str("aes256gcm16"),
            CipherSuite::Aes128Cbc(i) => write!(f, "aes128-cbc/{}", integrity(i)),
            CipherSuite::Aes256Cbc(i) => write!(f, "aes256-cbc/{}", integrity(i)),
            CipherSuite::ChaCha20Poly1305 => f.write_str("chacha20poly1305"),
            CipherSuite::TripleDesCbc(i) => write!(f, "3des-cbc/{}", integrity(i)),
        }
    }
}
