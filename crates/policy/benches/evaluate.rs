//! How long one policy decision takes: the request matches only the last
//! of N policies (every earlier one is checked and skipped), each with a
//! user list, groups, a day-and-time window and a client prefix; the last
//! grants with a session timeout cut to the end of its window, the most
//! expensive path. Run: `cargo bench -p policy --bench evaluate`.

use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use policy::{
    parse_document, AuthMethod, Authenticated, EncryptionUsed, NasPortType, Request, TunnelType,
};

fn document(n: usize) -> String {
    let mut text = String::from("[policies]\ntime_zone = \"Europe/Berlin\"\n");
    for i in 0..n {
        let last = i + 1 == n;
        text.push_str(&format!(
            "[[policy]]\nname = \"p{i}\"\naccess = \"grant\"\n[policy.conditions]\n\
             users = [\"{}\", \"bob\", \"carol\"]\ngroups = [\"staff\", \"g{i}\"]\n\
             day_and_time = [\"Mon-Fri 08:00-18:00\", \"Sat 09:00-12:00\"]\n\
             client_addresses = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n\
             [policy.constraints]\nsession_timeout_secs = 28800\nidle_timeout_secs = 900\n",
            if last { "alice" } else { "mallory" }
        ));
    }
    text
}

fn evaluate(c: &mut Criterion) {
    // Wednesday 2026-11-18 10:00 UTC.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_460_000);
    let groups = vec!["staff".to_owned()];
    let request = Request {
        groups: &groups,
        client_address: Some("192.0.2.7".parse().unwrap()),
        ..Request::new("alice", TunnelType::Sstp, NasPortType::Virtual, now)
    };
    let auth = Authenticated {
        method: AuthMethod::MsChapV2,
        encryption: EncryptionUsed::Tls,
        sessions_of_user: 0,
    };
    let mut group = c.benchmark_group("evaluate_after_auth");
    for n in [1usize, 10, 100] {
        let set = parse_document(&document(n)).unwrap();
        assert!(set.evaluate_after_auth(&request, &auth).is_granted());
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| set.evaluate_after_auth(&request, &auth))
        });
    }
    group.finish();
    let set = parse_document(&document(10)).unwrap();
    c.bench_function("evaluate_before_auth/10", |b| {
        b.iter(|| set.evaluate_before_auth(&request))
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
