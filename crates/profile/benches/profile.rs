//! Figures for the profile crate: INI parse and write of a realistic .cms, a full
//! profile load, and package create (SHA-256 + ed25519 sign) and open (verify).
//! `cargo bench -p profile --bench profile`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use profile::ini::IniDocument;
use profile::package::{self, TrustPolicy};
use profile::signing::SigningKey;

fn data(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn benches(c: &mut Criterion) {
    let cms = std::fs::read(data("contoso/contoso.cms")).unwrap();
    let utf16 = std::fs::read(data("northwnd/northwnd.cms")).unwrap();
    let mut g = c.benchmark_group("ini");
    g.throughput(Throughput::Bytes(cms.len() as u64));
    g.bench_function("parse contoso.cms (utf-8)", |b| {
        b.iter(|| IniDocument::parse(&cms).unwrap())
    });
    let doc = IniDocument::parse(&cms).unwrap();
    g.bench_function("write contoso.cms", |b| b.iter(|| doc.to_bytes().unwrap()));
    g.throughput(Throughput::Bytes(utf16.len() as u64));
    g.bench_function("parse northwnd.cms (utf-16)", |b| {
        b.iter(|| IniDocument::parse(&utf16).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("profile");
    g.bench_function("load contoso", |b| {
        b.iter(|| profile::load(&data("contoso")).unwrap())
    });
    let key = SigningKey::generate().unwrap().0;
    g.bench_function("package create (signed)", |b| {
        b.iter(|| package::create(&data("contoso"), Some(&key)).unwrap())
    });
    let bytes = package::create(&data("contoso"), Some(&key)).unwrap();
    let trust = TrustPolicy {
        keys: vec![key.public_key()],
        allow_unsigned: false,
    };
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("package open (verify)", |b| {
        b.iter(|| package::open(&bytes, &trust).unwrap())
    });
    g.finish();
}

criterion_group!(profile_benches, benches);
criterion_main!(profile_benches);
