//! The local user store's lookup, which every login of every tunnel makes
//! (MS-CHAPv2 and EAP-MSCHAPv2 against local accounts): one user in two
//! groups, one in none, and an unknown name, in a store of 1,000 users.
//!
//! Run with `cargo bench -p server --bench user_lookup`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use server::state::StateDir;
use server::users::{NewUser, UserStore};

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = StateDir::open(dir.path()).expect("the state directory");
    let store = UserStore::open(&state).expect("the user store");
    for n in 0..1000 {
        store
            .add(&format!("user{n}"), "a password", &NewUser::default())
            .expect("adding a user");
    }
    let member = NewUser {
        groups: vec!["vpn".into(), "admins".into()],
        ..NewUser::default()
    };
    store
        .add("alice", "a password", &member)
        .expect("adding alice");

    let mut group = c.benchmark_group("user_lookup");
    group.bench_function("in_two_groups", |b| {
        b.iter(|| black_box(store.lookup(black_box("Alice")).expect("lookup")))
    });
    group.bench_function("in_no_group", |b| {
        b.iter(|| black_box(store.lookup(black_box("user500")).expect("lookup")))
    });
    group.bench_function("unknown", |b| {
        b.iter(|| black_box(store.lookup(black_box("nobody")).expect("lookup")))
    });
    // Logins alternate between users: a new value bound each time.
    let names = ["alice", "user1", "user999", "nobody"];
    let mut next = 0;
    group.bench_function("alternating_users", |b| {
        b.iter(|| {
            next = (next + 1) % names.len();
            black_box(store.lookup(black_box(names[next])).expect("lookup"))
        })
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
