//! Cryptographic building blocks of IKE (IKEv1, RFC 2409; IKEv2, RFC 7296):
//! hashes and HMAC-based PRFs, Diffie-Hellman groups, the unpadded CBC
//! ciphers that protect IKE messages, and the RFC 2409 key derivation.
//!
//! Pure functions and keyed objects only: no I/O, no clock.

pub mod cbc;
pub mod dh;
pub mod dh_stock;
pub mod error;
pub mod hash;
pub mod ikev1_keys;
pub mod ikev2_keys;
mod modp;
pub mod signature;
pub mod thread_seed;
pub mod x509_signature;

pub use cbc::IkeCipher;
pub use dh::{DhGroup, DhPrivate};
pub use dh_stock::DhStock;
pub use error::CryptoError;
pub use hash::HashAlg;
