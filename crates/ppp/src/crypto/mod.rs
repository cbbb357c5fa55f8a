//! Cryptographic building blocks of the PPP authentication and encryption
//! protocols. Only protocol-defined compositions live here; the primitives
//! (MD4, DES, SHA-1, RC4) come from RustCrypto crates.

pub mod mppe_keys;
pub mod mschap;
pub mod mschapv1;
