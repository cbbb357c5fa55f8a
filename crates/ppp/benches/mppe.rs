//! MPPE data-engine throughput: 1400-byte packets, 128-bit keys, stateless
//! (key change per packet) and stateful (key change per 256 packets).
//!
//! Run with `cargo bench -p ppp --bench mppe`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ppp::mppe::{MppeDecryptor, MppeEncryptor, MppeSettings, MppeStrength, MPPE_HEADROOM};

/// Payload bytes per packet (a typical tunnelled IP packet).
const PACKET: usize = 1400;
const KEY: [u8; 16] = [
    0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56, 0xDC, 0xCB,
];

fn mppe_128(c: &mut Criterion) {
    let mut group = c.benchmark_group("mppe_128bit_1400B");
    group.throughput(Throughput::Bytes(PACKET as u64));
    let payload = vec![0xA5u8; PACKET];
    for (mode, stateless) in [("stateless", true), ("stateful", false)] {
        let settings = MppeSettings {
            strength: MppeStrength::Bits128,
            stateless,
        };

        group.bench_function(BenchmarkId::new("encrypt", mode), |b| {
            let mut enc = MppeEncryptor::new(&KEY, settings);
            let mut out = Vec::with_capacity(PACKET + MPPE_HEADROOM);
            b.iter(|| {
                out.clear();
                enc.encrypt(0x0021, black_box(&payload), &mut out);
                black_box(&out);
            });
        });

        group.bench_function(BenchmarkId::new("encrypt_in_place", mode), |b| {
            let mut enc = MppeEncryptor::new(&KEY, settings);
            let mut buf = vec![0u8; PACKET + MPPE_HEADROOM];
            b.iter(|| {
                enc.encrypt_in_place(0x0021, black_box(&mut buf)).unwrap();
            });
        });

        group.bench_function(BenchmarkId::new("decrypt", mode), |b| {
            // Packets come from a matching encryptor, in order, outside the
            // timed section.
            let mut enc = MppeEncryptor::new(&KEY, settings);
            let mut dec = MppeDecryptor::new(&KEY, settings);
            b.iter_batched_ref(
                || {
                    let mut packet = Vec::with_capacity(PACKET + MPPE_HEADROOM);
                    enc.encrypt(0x0021, &payload, &mut packet);
                    packet
                },
                |packet| {
                    let got = dec.decrypt(packet).expect("in-order packet");
                    black_box(got);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = mppe_128
}
criterion_main!(benches);
