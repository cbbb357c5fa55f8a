//! Randomness of one PPP link: LCP magic numbers (RFC 1661 §6.4), CHAP and
//! MS-CHAP challenges (RFC 1994 §2, RFC 2759 §4), IPv6CP interface
//! identifiers (RFC 5072 §4.1).
//!
//! A link draws from the thread's CSPRNG (`rand::thread_rng`: ChaCha12,
//! reseeded from the operating system), so it holds no generator state of
//! its own: a server keeps thousands of idle links, and a ChaCha generator
//! per state machine was 320 bytes three times over. Tests seed a link to
//! make its bytes repeatable; a seeded link keeps its own generators.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Where a link, or one of its state machines, takes random bytes from.
pub enum LinkRng {
    /// `rand::thread_rng()`, looked up per call: the link moves between
    /// threads, and a `ThreadRng` may not.
    Thread,
    /// Repeatable bytes for tests.
    Seeded(Box<StdRng>),
}

impl LinkRng {
    pub fn new(seed: Option<u64>) -> LinkRng {
        match seed {
            Some(seed) => LinkRng::Seeded(Box::new(StdRng::seed_from_u64(seed))),
            None => LinkRng::Thread,
        }
    }

    /// A generator for one state machine of the link. Seeded links give
    /// each its own stream, so the order in which the machines draw does
    /// not change what each of them sees.
    pub fn fork(&mut self) -> LinkRng {
        match self {
            LinkRng::Thread => LinkRng::Thread,
            LinkRng::Seeded(rng) => {
                LinkRng::Seeded(Box::new(StdRng::seed_from_u64(rng.next_u64())))
            }
        }
    }
}

impl RngCore for LinkRng {
    fn next_u32(&mut self) -> u32 {
        match self {
            LinkRng::Thread => rand::thread_rng().next_u32(),
            LinkRng::Seeded(rng) => rng.next_u32(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        match self {
            LinkRng::Thread => rand::thread_rng().next_u64(),
            LinkRng::Seeded(rng) => rng.next_u64(),
        }
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self {
            LinkRng::Thread => rand::thread_rng().fill_bytes(dest),
            LinkRng::Seeded(rng) => rng.fill_bytes(dest),
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        match self {
            LinkRng::Thread => rand::thread_rng().try_fill_bytes(dest),
            LinkRng::Seeded(rng) => rng.try_fill_bytes(dest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_links_repeat_and_forks_are_independent_streams() {
        let mut a = LinkRng::new(Some(7));
        let mut b = LinkRng::new(Some(7));
        let mut fa = a.fork();
        let mut fb = b.fork();
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(fa.next_u64(), fb.next_u64());
        let mut other = LinkRng::new(Some(8));
        assert_ne!(LinkRng::new(Some(7)).next_u64(), other.next_u64());
    }

    #[test]
    fn unseeded_links_hold_no_generator_and_still_differ() {
        assert!(std::mem::size_of::<LinkRng>() <= 16);
        let mut rng = LinkRng::new(None);
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        rng.fill_bytes(&mut x);
        rng.fork().fill_bytes(&mut y);
        assert_ne!(x, y);
        assert_ne!(x, [0u8; 16]);
    }
}
