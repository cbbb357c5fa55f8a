//! Threads that make the IKEv2 server's signatures (`SignatureNeeded`), so
//! a burst of certificate + EAP clients uses every core while the IKE front
//! end keeps answering datagrams.
//!
//! Long-lived threads rather than tokio's blocking pool: a burst there
//! started a new thread for most signatures (a finished one is not idle
//! yet when the next job comes), and each new thread paid for creating
//! itself and for seeding aws-lc's per-thread random generator (jitter
//! entropy): a tenth of the responder's CPU in a profile of 1,000
//! handshakes. Each thread seeds it when it starts, before its first job.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Work = Box<dyn FnOnce() + Send>;

/// A fixed set of threads, started with the pool. Dropping the pool
/// closes its queue: each thread ends once the queue is empty (not
/// joined, so that an async task dropping it never waits).
pub(crate) struct SignerPool {
    queue: mpsc::Sender<Work>,
    threads: usize,
}

impl SignerPool {
    pub(crate) fn new(threads: usize) -> SignerPool {
        let (queue, jobs) = mpsc::channel::<Work>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = (0..threads.max(1))
            .filter_map(|i| {
                let jobs = jobs.clone();
                std::thread::Builder::new()
                    .name(format!("ras-sign-{i}"))
                    .spawn(move || {
                        ipsec::ike_crypto::thread_seed::seed_this_thread();
                        loop {
                            // The lock is held only to take a job; the work
                            // (≈ 0.3 ms for an RSA-2048 signature) runs outside.
                            let work = match jobs.lock() {
                                Ok(jobs) => jobs.recv(),
                                Err(_) => return,
                            };
                            match work {
                                Ok(work) => work(),
                                Err(_) => return, // the pool was dropped
                            }
                        }
                    })
                    .map_err(|e| tracing::warn!("cannot start a signing thread: {e}"))
                    .ok()
            })
            .count();
        SignerPool { queue, threads }
    }

    /// Runs `work` on a pool thread; with no thread (none could start),
    /// here. The work queued is bounded by its callers (the IKEv2
    /// responder asks for one signature per EAP client, within its
    /// half-open limit).
    pub(crate) fn run(&self, work: impl FnOnce() + Send + 'static) {
        let work: Work = Box::new(work);
        if self.threads == 0 {
            return work();
        }
        if let Err(mpsc::SendError(work)) = self.queue.send(work) {
            work();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work runs on the pool's own named threads, and what was queued
    /// before the pool was dropped still runs.
    #[test]
    fn work_runs_on_the_pool_threads() {
        let pool = SignerPool::new(2);
        let (tx, rx) = mpsc::channel();
        for i in 0..6 {
            let tx = tx.clone();
            pool.run(move || {
                let name = std::thread::current().name().map(str::to_string);
                let _ = tx.send((i, name));
            });
        }
        drop(pool);
        drop(tx);
        let mut seen: Vec<(i32, Option<String>)> = rx.iter().collect();
        seen.sort();
        assert_eq!(
            seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert!(
            seen.iter()
                .all(|(_, n)| n.as_deref().is_some_and(|n| n.starts_with("ras-sign-"))),
            "{seen:?}"
        );
    }
}
