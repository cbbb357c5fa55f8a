//! Why an ESP operation failed. Each inbound variant also bumps a counter.

use thiserror::Error;

/// An ESP encapsulation or decapsulation failure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EspError {
    /// Keying material of the wrong length for the suite.
    #[error("ESP key material is {got} bytes, the suite needs {expected}")]
    KeyLength { expected: usize, got: usize },
    /// The crypto library refused a key or failed internally.
    #[error("ESP crypto failure: {0}")]
    Crypto(&'static str),
    /// The packet is shorter than header + IV + trailer + ICV.
    #[error("ESP packet of {0} bytes is too short")]
    Truncated(usize),
    /// The ciphertext is not a whole number of cipher blocks.
    #[error("ESP ciphertext of {0} bytes is not block aligned")]
    Misaligned(usize),
    /// The SPI does not belong to this SA (or to any SA in the set).
    #[error("no ESP SA for SPI 0x{0:08x}")]
    UnknownSpi(u32),
    /// RFC 4303 §3.4.3: a duplicate, or older than the replay window.
    #[error("ESP sequence number {0} replayed or outside the window")]
    Replayed(u32),
    /// RFC 4303 §3.4.4: the ICV did not verify.
    #[error("ESP integrity check failed")]
    AuthenticationFailed,
    /// RFC 4303 §2.4: the pad length or pad bytes are wrong after decryption.
    #[error("ESP padding is malformed")]
    BadPadding,
    /// RFC 4303 §3.3.3: the sequence counter would wrap; the SA must be rekeyed.
    #[error("ESP sequence numbers exhausted, the SA must be rekeyed")]
    SequenceExhausted,
    /// The SA passed its hard lifetime (time or bytes).
    #[error("ESP SA expired")]
    Expired,
    /// The payload does not fit an IP packet.
    #[error("ESP payload of {0} bytes is too large")]
    PayloadTooLarge(usize),
}
