//! Tests of the ESP core: published vectors, round trips, anti-replay,
//! tampering, sequence exhaustion, lifetimes and the inbound SA set.

mod hmac_vectors;
mod inbound;
mod replay;
mod roundtrip;
mod vectors;

use std::time::Instant;

use zeroize::Zeroizing;

use super::{CipherSuite, EspSa, EspSaConfig, Integrity, LifetimeLimits};

pub(super) const ALL_SUITES: [CipherSuite; 8] = [
    CipherSuite::Aes128Gcm16,
    CipherSuite::Aes256Gcm16,
    CipherSuite::ChaCha20Poly1305,
    CipherSuite::TripleDesCbc(Integrity::HmacSha1_96),
    CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
    CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
];

/// Decodes hex written the way the RFCs print it (with spaces).
pub(super) fn hx(text: &str) -> Vec<u8> {
    let compact: String = text.split_whitespace().collect();
    hex::decode(compact).expect("test vector hex")
}

pub(super) fn config(
    spi: u32,
    suite: CipherSuite,
    cipher_key: &[u8],
    integrity_key: &[u8],
) -> EspSaConfig {
    EspSaConfig {
        spi,
        suite,
        cipher_key: Zeroizing::new(cipher_key.to_vec()),
        integrity_key: Zeroizing::new(integrity_key.to_vec()),
        lifetime: LifetimeLimits::default(),
        replay_window: 64,
    }
}

/// An SA with fixed keys derived from the suite's sizes.
pub(super) fn sa(spi: u32, suite: CipherSuite, now: Instant) -> EspSa {
    let cipher_key: Vec<u8> = (0..suite.cipher_key_len() + suite.salt_len())
        .map(|i| i as u8 ^ 0x5A)
        .collect();
    let integrity_key: Vec<u8> = (0..suite.integrity_key_len())
        .map(|i| i as u8 ^ 0xC3)
        .collect();
    EspSa::new(&config(spi, suite, &cipher_key, &integrity_key), now).expect("valid keys")
}
