//! The server's tokio runtime. Its worker threads seed aws-lc's random
//! generator as they start (`ipsec::ike_crypto::thread_seed`): left to the
//! first handshake on each thread, the seeding (jitter entropy, 10–30 ms
//! of CPU per thread) fell inside the first burst of clients after every
//! start, where a `perf` profile of 250 IKEv2 handshakes found it.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Runtime};

/// A multi-threaded runtime with one worker per CPU, each seeded.
pub(crate) fn build() -> std::io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    build_with(workers, ipsec::ike_crypto::thread_seed::seed_this_thread)
}

/// `workers` worker threads, each running `seed` when it starts; the
/// blocking pool's threads do not (most never make a key).
fn build_with(workers: usize, seed: impl Fn() + Send + Sync + 'static) -> std::io::Result<Runtime> {
    let started = AtomicUsize::new(0);
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .on_thread_start(move || {
            // tokio starts its workers while the runtime is being built,
            // before anything can ask for a blocking thread: the first
            // `workers` threads are the workers (checked by the test).
            if started.fetch_add(1, Ordering::Relaxed) < workers {
                seed();
            }
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    #[test]
    fn the_workers_are_seeded_and_the_blocking_threads_are_not() {
        let seeded: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
        let record = seeded.clone();
        let runtime = build_with(2, move || {
            record.lock().unwrap().insert(std::thread::current().id());
        })
        .unwrap();
        let (ran_on, blocking) = runtime.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..64 {
                tasks.push(tokio::spawn(async {
                    tokio::task::yield_now().await;
                    std::thread::current().id()
                }));
            }
            let mut ran_on = HashSet::new();
            for task in tasks {
                ran_on.insert(task.await.unwrap());
            }
            let blocking = tokio::task::spawn_blocking(|| std::thread::current().id())
                .await
                .unwrap();
            (ran_on, blocking)
        });
        let seeded = seeded.lock().unwrap().clone();
        assert_eq!(seeded.len(), 2, "one seeding per worker");
        assert!(
            ran_on.is_subset(&seeded),
            "a task ran on a thread that was not seeded"
        );
        assert!(!seeded.contains(&blocking), "a blocking thread was seeded");
    }
}
