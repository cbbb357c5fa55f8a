//! Fuzz ESP decapsulation: any bytes on port 4500 are classified, and any
//! ESP packet is decapsulated or dropped with a typed error, for every
//! suite we negotiate, without panicking; payload ranges stay in bounds.
//! The same bytes as a payload must survive an encapsulate/decapsulate
//! round trip.
#![no_main]

use std::time::Instant;

use ipsec::esp::{CipherSuite, EspSa, EspSaConfig, InboundSas, Integrity, LifetimeLimits};
use ipsec::udp_encap::{classify, Port4500};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

/// Every suite the server can negotiate: ChaCha20-Poly1305 (RFC 7634,
/// Apple and strongSwan clients) and 3DES (old Windows defaults) have
/// decryption paths of their own.
const SUITES: [CipherSuite; 9] = [
    CipherSuite::Aes128Gcm16,
    CipherSuite::Aes256Gcm16,
    CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
    CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
    CipherSuite::ChaCha20Poly1305,
    CipherSuite::TripleDesCbc(Integrity::HmacSha1_96),
    CipherSuite::TripleDesCbc(Integrity::HmacSha256_128),
];

fn sa(spi: u32, suite: CipherSuite, now: Instant) -> EspSa {
    let config = EspSaConfig {
        spi,
        suite,
        cipher_key: Zeroizing::new(vec![0x42; suite.cipher_key_len() + suite.salt_len()]),
        integrity_key: Zeroizing::new(vec![0x24; suite.integrity_key_len()]),
        lifetime: LifetimeLimits::default(),
        replay_window: 128,
    };
    EspSa::new(&config, now).expect("fixed keys have the right length")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let suite = SUITES[usize::from(selector) % SUITES.len()];
    let now = Instant::now();
    // SPI 0x00000001 is what most packets starting with zeros hit.
    let mut set = InboundSas::new();
    set.insert(sa(1, suite, now));
    set.insert(sa(u32::from_be_bytes([rest.first().copied().unwrap_or(0), 0, 0, 1]), suite, now));

    for chunk in rest.split(|&b| b == 0xa5) {
        let mut packet = chunk.to_vec();
        match classify(&packet) {
            Port4500::Esp(_) => {
                if let Ok(d) = set.decapsulate(now, &mut packet) {
                    assert!(d.payload.start <= d.payload.end && d.payload.end <= packet.len());
                }
            }
            Port4500::Ike(ike) => assert_eq!(ike.len() + 4, chunk.len()),
            Port4500::Keepalive | Port4500::Malformed => {}
        }
    }

    if rest.len() > 65535 {
        return; // larger than any IP payload: refused by design
    }
    let mut out = sa(7, suite, now);
    let mut inb = sa(7, suite, now);
    let mut buf = Vec::new();
    out.encapsulate(now, selector, rest, &mut buf)
        .expect("fresh SA, payload under 64 KiB");
    let d = inb.decapsulate(now, &mut buf).expect("own packet verifies");
    assert_eq!(d.next_header, selector);
    assert_eq!(&buf[d.payload], rest);
});
