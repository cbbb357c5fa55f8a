//! ESP throughput per cipher suite: encapsulation and decapsulation of
//! 1400-byte payloads, one SA pair, buffers reused (no per-packet allocation).
//!
//! Run with `cargo bench -p ipsec --bench esp`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ipsec::esp::{CipherSuite, EspSa, EspSaConfig, Integrity, LifetimeLimits};
use zeroize::Zeroizing;

/// Payload bytes per packet (an L2TP/UDP datagram carrying a 1400-byte frame).
const PACKET: usize = 1400;

const SUITES: [CipherSuite; 8] = [
    CipherSuite::Aes128Gcm16,
    CipherSuite::Aes256Gcm16,
    CipherSuite::ChaCha20Poly1305,
    CipherSuite::TripleDesCbc(Integrity::HmacSha1_96),
    CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
    CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
    CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
];

fn sa(suite: CipherSuite, now: Instant) -> EspSa {
    let config = EspSaConfig {
        spi: 0x1000_0001,
        suite,
        cipher_key: Zeroizing::new(vec![0x42; suite.cipher_key_len() + suite.salt_len()]),
        integrity_key: Zeroizing::new(vec![0x24; suite.integrity_key_len()]),
        lifetime: LifetimeLimits::default(),
        replay_window: 1024,
    };
    EspSa::new(&config, now).expect("valid keys")
}

fn esp(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp_1400B");
    group.throughput(Throughput::Bytes(PACKET as u64));
    let payload = vec![0xA5u8; PACKET];
    let now = Instant::now();
    for suite in SUITES {
        let name = suite.to_string();
        group.bench_function(BenchmarkId::new("encap", &name), |b| {
            let mut out = sa(suite, now);
            let mut buf = Vec::with_capacity(PACKET + 64);
            b.iter(|| {
                out.encapsulate(now, 17, black_box(&payload), &mut buf)
                    .expect("sequence space");
                black_box(&buf);
            });
        });
        group.bench_function(BenchmarkId::new("decap", &name), |b| {
            // Packets come from a matching outbound SA, in order, outside
            // the timed section.
            let mut out = sa(suite, now);
            let mut inbound = sa(suite, now);
            b.iter_batched_ref(
                || {
                    let mut buf = Vec::with_capacity(PACKET + 64);
                    out.encapsulate(now, 17, &payload, &mut buf)
                        .expect("sequence space");
                    buf
                },
                |packet| {
                    let got = inbound.decapsulate(now, packet).expect("authentic packet");
                    black_box(got);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = esp
}
criterion_main!(benches);
