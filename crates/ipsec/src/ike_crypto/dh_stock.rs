//! A stock of fresh Diffie-Hellman key pairs, made ahead of need.
//!
//! A responder's own key pair is the one part of an IKE_SA_INIT answer
//! (RFC 7296 §1.2, RFC 2409 §5 for IKEv1's Main Mode) that does not depend
//! on the request, so it can be made before the request comes: a driver
//! fills the stock from a thread of its own while the server is idle (and
//! on another core while it is busy), and the task that answers IKE
//! datagrams only takes a key off the shelf. After an outage, when every
//! client reconnects at once, that is one elliptic-curve scalar
//! multiplication (≈ 30 µs for X25519, far more for MODP) per client less
//! on the one task that answers them all.
//!
//! Every key is still used for exactly one exchange and then dropped, as
//! one made on demand would be: a stocked key is taken out of the stock,
//! never copied, and its secret is wiped when it is freed (`DhPrivate`).
//! The stock only changes when the key is made. (RFC 7296 §2.12 goes
//! further and lets an endpoint reuse an exponential across exchanges, at
//! a cost in forward secrecy; we never reuse one.) Until it is used, a
//! stocked secret lives in the server's memory like the keys of the SAs
//! it already holds.
//!
//! No thread and no clock here (this crate is sans-IO): the driver calls
//! [`DhStock::refill_one`] until it returns `false`, and learns through the
//! waker it registered when to start again.

use std::sync::{Mutex, OnceLock};

use super::dh::{DhGroup, DhPrivate};
use super::error::CryptoError;

/// Keys made ahead of need, per group, shared by the tasks that take them
/// and the thread that makes them.
pub struct DhStock {
    shelves: Mutex<Vec<Shelf>>,
    per_group: usize,
    /// Called (outside the lock) when a shelf falls to half its size.
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// The keys of one group. A shelf exists for every group asked for, and
/// is kept at twice the keys taken so far, up to the stock's size: demand
/// decides what is made ahead, so a server whose clients all use X25519
/// makes no MODP key (milliseconds each), and one that saw a few Windows
/// clients makes a few.
struct Shelf {
    group: DhGroup,
    keys: Vec<DhPrivate>,
    target: usize,
}

impl std::fmt::Debug for DhStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhStock")
            .field("per_group", &self.per_group)
            .finish_non_exhaustive()
    }
}

impl DhStock {
    /// An empty stock that keeps up to `per_group` keys of each group its
    /// takers ask for.
    pub fn new(per_group: usize) -> DhStock {
        DhStock {
            shelves: Mutex::new(Vec::new()),
            per_group,
            waker: OnceLock::new(),
        }
    }

    /// Registers what wakes the driver's filling thread; the first
    /// registration counts.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        let _ = self.waker.set(Box::new(waker));
    }

    /// A fresh key pair of `group`: from the stock if it has one, else
    /// made now. Either way it is this caller's alone.
    pub fn take(&self, group: DhGroup) -> Result<DhPrivate, CryptoError> {
        let (stocked, low) = {
            let mut shelves = self.lock();
            let index = match shelves.iter().position(|s| s.group == group) {
                Some(index) => index,
                None => {
                    shelves.push(Shelf {
                        group,
                        keys: Vec::new(),
                        target: 0,
                    });
                    shelves.len() - 1
                }
            };
            let shelf = &mut shelves[index];
            shelf.target = (shelf.target + 2).min(self.per_group);
            let key = shelf.keys.pop();
            (key, shelf.keys.len() <= shelf.target / 2)
        };
        if low {
            if let Some(wake) = self.waker.get() {
                wake();
            }
        }
        match stocked {
            Some(key) => Ok(key),
            None => DhPrivate::generate(group),
        }
    }

    /// A fresh key pair of `group` for one exchange: from `stock` if the
    /// driver keeps one, else made now.
    pub fn take_from(stock: Option<&DhStock>, group: DhGroup) -> Result<DhPrivate, CryptoError> {
        match stock {
            Some(stock) => stock.take(group),
            None => DhPrivate::generate(group),
        }
    }

    /// Makes one key for the emptiest shelf below its target; `false` when
    /// every shelf is full (or a key could not be made: the filler stops
    /// until woken again, and `take` makes its keys itself).
    pub fn refill_one(&self) -> bool {
        let group = {
            let shelves = self.lock();
            match shelves
                .iter()
                .filter(|s| s.keys.len() < s.target)
                .min_by_key(|s| s.keys.len())
            {
                Some(shelf) => shelf.group,
                None => return false,
            }
        };
        // Made outside the lock: takers never wait for a key being made.
        let Ok(key) = DhPrivate::generate(group) else {
            return false;
        };
        let mut shelves = self.lock();
        if let Some(shelf) = shelves.iter_mut().find(|s| s.group == group) {
            if shelf.keys.len() < shelf.target {
                shelf.keys.push(key);
            }
        }
        true
    }

    /// Keys in stock for `group`.
    pub fn stocked(&self, group: DhGroup) -> usize {
        self.lock()
            .iter()
            .find(|s| s.group == group)
            .map_or(0, |s| s.keys.len())
    }

    /// The shelves hold plain data that a panic cannot leave half-changed,
    /// so a poisoned lock is taken over.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Shelf>> {
        self.shelves
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Wakes the filler one last time, so that it sees the stock is gone and
/// ends.
impl Drop for DhStock {
    fn drop(&mut self) {
        if let Some(wake) = self.waker.get() {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn fill(stock: &DhStock) -> usize {
        let mut made = 0;
        while stock.refill_one() {
            made += 1;
        }
        made
    }

    #[test]
    fn a_stocked_key_is_handed_out_once_and_works() {
        let stock = DhStock::new(4);
        assert_eq!(fill(&stock), 0, "nothing asked for yet");
        let mut publics = HashSet::new();
        let first = stock.take(DhGroup::Curve25519).unwrap();
        publics.insert(first.public_value().to_vec());
        stock.take(DhGroup::Curve25519).unwrap();
        assert_eq!(fill(&stock), 4);
        assert_eq!(stock.stocked(DhGroup::Curve25519), 4);
        for left in (0..4).rev() {
            let ours = stock.take(DhGroup::Curve25519).unwrap();
            assert_eq!(stock.stocked(DhGroup::Curve25519), left);
            assert!(
                publics.insert(ours.public_value().to_vec()),
                "a key handed out twice"
            );
            // The key agrees with a peer's as one made on demand would.
            let peer = DhPrivate::generate(DhGroup::Curve25519).unwrap();
            assert_eq!(
                *ours.agree(peer.public_value()).unwrap(),
                *peer.agree(ours.public_value()).unwrap()
            );
        }
        // An empty shelf still gives a fresh key, made on the spot.
        let made_now = stock.take(DhGroup::Curve25519).unwrap();
        assert!(publics.insert(made_now.public_value().to_vec()));
    }

    #[test]
    fn a_group_asked_for_is_kept_at_twice_its_takes() {
        let stock = DhStock::new(5);
        let key = stock.take(DhGroup::Ecp256).unwrap();
        assert_eq!(key.group(), DhGroup::Ecp256);
        assert_eq!(fill(&stock), 2);
        assert_eq!(stock.stocked(DhGroup::Ecp256), 2);
        stock.take(DhGroup::Ecp256).unwrap();
        assert_eq!(fill(&stock), 3, "two taken: four kept");
        stock.take(DhGroup::Ecp256).unwrap();
        assert_eq!(fill(&stock), 2, "never more than the stock's size");
        assert_eq!(stock.stocked(DhGroup::Ecp256), 5);
        assert_eq!(
            stock.stocked(DhGroup::Curve25519),
            0,
            "a group never asked for"
        );
    }

    #[test]
    fn the_filler_is_woken_when_a_shelf_is_half_empty() {
        let stock = DhStock::new(4);
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        stock.set_waker(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let wakes = || wakes.load(Ordering::SeqCst);
        stock.take(DhGroup::Curve25519).unwrap(); // target 2, none kept
        assert_eq!(wakes(), 1);
        fill(&stock);
        stock.take(DhGroup::Curve25519).unwrap(); // target 4, 1 left
        assert_eq!(wakes(), 2);
        fill(&stock);
        stock.take(DhGroup::Curve25519).unwrap(); // 3 of 4 left
        assert_eq!(wakes(), 2);
        stock.take(DhGroup::Curve25519).unwrap(); // 2 left: half
        assert_eq!(wakes(), 3);
    }
}
