//! Publishing a 65,000-POP phone book: the time of one Full and of one
//! Delta publish (each after a one-POP edit; the edit is not timed).
//!
//!     cargo bench -p phonebook --bench publish

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use phonebook::limits::{MAX_CHANGES_PER_POST, MAX_FIRST_IMPORT, MAX_POPS};
use phonebook::pop::{Pop, PopFlags};
use phonebook::publish::{publish, Kind};
use phonebook::store::{Store, StoreChange};

fn pop(index: u32, salt: u32) -> Pop {
    Pop {
        index,
        country: 1 + index % 200,
        region: 0,
        name: format!("POP {index}"),
        area_code: format!("{}", 200 + index % 700),
        access_number: format!("555-{:04}", (index * 7919 + salt) % 10_000),
        min_speed: 9600,
        max_speed: 56_000,
        reserved: 0,
        flags: PopFlags(0x20),
        dun_name: format!("Dial{}", index % 97),
    }
}

/// A store with 65,000 POPs, reached within the import limits.
fn full_store(dir: &std::path::Path) -> Store {
    let mut s = Store::create(dir, "Bench").unwrap();
    let first: Vec<_> = (1..=MAX_FIRST_IMPORT as u32)
        .map(|i| StoreChange::Upsert(pop(i, 0)))
        .collect();
    s.apply(&first, true).unwrap();
    publish(&mut s, &mut |_, _, _| {}).unwrap();
    let mut next = MAX_FIRST_IMPORT as u32 + 1;
    while next as usize <= MAX_POPS {
        let end = (next + MAX_CHANGES_PER_POST as u32 - 1).min(MAX_POPS as u32);
        s.apply(
            &(next..=end)
                .map(|i| StoreChange::Upsert(pop(i, 0)))
                .collect::<Vec<_>>(),
            true,
        )
        .unwrap();
        publish(&mut s, &mut |_, _, _| {}).unwrap();
        next = end + 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = full_store(tmp.path());
    let mut salt = 1;
    let mut group = c.benchmark_group("publish_65000_pops");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for wanted in [Kind::Full, Kind::Delta] {
        group.bench_function(wanted.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    salt += 1;
                    let p = pop(1 + salt % MAX_POPS as u32, salt);
                    store
                        .apply(
                            &[StoreChange::Edit {
                                pop: p,
                                in_service: None,
                            }],
                            false,
                        )
                        .unwrap();
                    let t = Instant::now();
                    let out = publish(&mut store, &mut |_, _, _| {}).unwrap();
                    let spent = t.elapsed();
                    // Keep the disk from filling: only the last versions matter.
                    let old = out
                        .dir
                        .with_file_name((out.version.saturating_sub(6)).to_string());
                    let _ = std::fs::remove_dir_all(old);
                    if out.kind == wanted {
                        timed += spent;
                        done += 1;
                    }
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
