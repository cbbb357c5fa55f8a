//! Session identifiers: the key under which a session's resources (its
//! address, its logical port) are held, so they can all be freed when it
//! ends.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one session within this server process. Unique for the life
/// of the process (never reused), so a late release from an ended session
/// cannot free what a newer session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u64);

impl SessionId {
    /// A fresh identifier, never handed out before in this process.
    pub fn next() -> SessionId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SessionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// An identifier with a given value (tests, and restoring state).
    pub const fn from_raw(raw: u64) -> SessionId {
        SessionId(raw)
    }

    /// The number behind the identifier.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_unique() {
        let a = SessionId::next();
        let b = SessionId::next();
        assert_ne!(a, b);
        assert_eq!(SessionId::from_raw(a.raw()), a);
    }
}
