//! Errors of the IKE cryptographic building blocks.

/// Why an IKE cryptographic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The Diffie-Hellman group number is not one we implement.
    #[error("Diffie-Hellman group {0} is not supported")]
    UnsupportedGroup(u16),
    /// The peer's Diffie-Hellman public value is malformed or out of range.
    #[error("the peer's Diffie-Hellman public value is invalid")]
    InvalidPublicValue,
    /// A key has the wrong length for the algorithm.
    #[error("the key has the wrong length for the cipher")]
    KeyLength,
    /// The data (or IV) is not a whole number of cipher blocks.
    #[error("the data is not a whole number of cipher blocks")]
    NotBlockAligned,
    /// The underlying cryptographic library refused the operation.
    #[error("cryptographic operation failed: {0}")]
    Failed(&'static str),
}
