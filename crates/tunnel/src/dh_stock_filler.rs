//! The thread that keeps the IPsec front end's `DhStock` full: key pairs
//! for IKE_SA_INIT (IKEv2) and Main Mode (IKEv1) made with CPU time nothing
//! else wants, so the IKE task that answers every client only agrees.
//! What it saves is a key generation per handshake: nothing measurable
//! for X25519 (a fixed-base multiplication), about half the responder's
//! work for Windows' MODP-1024 and MODP-2048 (`cargo bench -p ipsec
//! --bench ikev2`).
//!
//! It sleeps until the stock falls to half (the stock's waker unparks it)
//! and ends when the stock is dropped (the stock wakes it once more and it
//! finds nothing left to fill): it holds the stock only while filling.

use std::sync::{Arc, Weak};

use ipsec::ike_crypto::DhStock;

/// Keys kept at most per group (twice the keys taken, up to this): the
/// first 256 clients of a reconnect storm find theirs made (a few hundred
/// bytes each).
const KEYS_PER_GROUP: usize = 256;

/// A stock with its filling thread started. With no thread (none could
/// start) the stock stays empty and every key is made on demand.
pub(crate) fn start() -> Arc<DhStock> {
    let stock = Arc::new(DhStock::new(KEYS_PER_GROUP));
    if let Err(e) = spawn_filler(&stock) {
        tracing::warn!("cannot start the key-pair thread, keys are made on demand: {e}");
    }
    stock
}

fn spawn_filler(stock: &Arc<DhStock>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let weak: Weak<DhStock> = Arc::downgrade(stock);
    let handle = std::thread::Builder::new()
        .name("ras-dh-stock".into())
        .spawn(move || {
            ipsec::ike_crypto::thread_seed::seed_this_thread();
            run_only_when_idle();
            loop {
                let Some(stock) = weak.upgrade() else {
                    return;
                };
                while stock.refill_one() {}
                drop(stock);
                // Woken by a half-empty shelf, or by the stock's drop.
                std::thread::park();
            }
        })?;
    let thread = handle.thread().clone();
    stock.set_waker(move || thread.unpark());
    Ok(handle)
}

/// SCHED_IDLE for this thread: keys are made with CPU nothing else wants.
/// Under a burst that fills every core the IKE task makes its own keys
/// and this thread waits, instead of taking CPU from the handshakes under
/// way to make keys for later ones (at normal priority that slowed bursts
/// of MODP-2048 handshakes on two busy cores by a fifth).
fn run_only_when_idle() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` (a valid local) and changes
    // only the calling thread's policy (pid 0); no memory is shared.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        tracing::debug!(
            "the key-pair thread keeps normal priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec::ike_crypto::DhGroup;
    use std::time::{Duration, Instant};

    fn wait_for(what: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// The thread stocks a group from its first client on, and refills
    /// it once half of it is taken.
    #[test]
    fn the_thread_fills_and_refills_the_stock() {
        let stock = Arc::new(DhStock::new(8));
        let _filler = spawn_filler(&stock).unwrap();
        for _ in 0..4 {
            stock.take(DhGroup::Curve25519).unwrap();
        }
        let full = |group| stock.stocked(group) == 8;
        assert!(wait_for(|| full(DhGroup::Curve25519)));
        for _ in 0..3 {
            stock.take(DhGroup::Curve25519).unwrap();
        }
        // Five left: above half, so no refill was asked for.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(stock.stocked(DhGroup::Curve25519), 5);
        stock.take(DhGroup::Curve25519).unwrap();
        assert!(wait_for(|| full(DhGroup::Curve25519)));
        assert_eq!(stock.stocked(DhGroup::Modp1024), 0);
        stock.take(DhGroup::Modp1024).unwrap();
        assert!(wait_for(|| stock.stocked(DhGroup::Modp1024) == 2));
    }

    /// The thread runs under SCHED_IDLE (field 41 of its stat: policy).
    #[test]
    fn the_thread_runs_only_when_a_core_is_idle() {
        let stock = Arc::new(DhStock::new(1));
        let filler = spawn_filler(&stock).unwrap();
        stock.take(DhGroup::Ecp256).unwrap();
        assert!(wait_for(|| stock.stocked(DhGroup::Ecp256) == 1));
        // Every such thread of this process (other tests run theirs too;
        // one that ended meanwhile has no stat left to read).
        let policies: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "ras-dh-stock")
            })
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .map(|stat| {
                // After the command's closing parenthesis, fields start at 3.
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                after.split(' ').nth(41 - 3).unwrap_or_default().to_string()
            })
            .collect();
        assert!(!policies.is_empty(), "the thread is there");
        assert!(
            policies.iter().all(|p| *p == libc::SCHED_IDLE.to_string()),
            "{policies:?}"
        );
        drop(stock);
        assert!(wait_for(|| filler.is_finished()));
    }

    /// Dropping the stock ends its thread.
    #[test]
    fn the_thread_ends_with_its_stock() {
        let stock = Arc::new(DhStock::new(2));
        let filler = spawn_filler(&stock).unwrap();
        stock.take(DhGroup::Ecp256).unwrap();
        assert!(wait_for(|| stock.stocked(DhGroup::Ecp256) == 2));
        assert!(!filler.is_finished());
        drop(stock);
        assert!(wait_for(|| filler.is_finished()));
    }
}
