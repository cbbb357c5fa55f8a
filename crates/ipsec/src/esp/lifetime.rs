//! SA lifetimes by time and by bytes, soft and hard (RFC 4301 §4.4.2.1:
//! a soft limit starts a rekey, a hard limit ends the SA).

use std::time::{Duration, Instant};

/// Limits for one SA; `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifetimeLimits {
    pub soft_time: Option<Duration>,
    pub hard_time: Option<Duration>,
    pub soft_bytes: Option<u64>,
    pub hard_bytes: Option<u64>,
}

/// Where an SA is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifetimeStatus {
    /// Usable, no rekey needed yet.
    Fresh,
    /// A soft limit passed (or the sequence space is nearly used): rekey now.
    RekeyDue,
    /// A hard limit passed: the SA must not be used any more.
    Expired,
}

impl LifetimeLimits {
    /// The status after `age` and `bytes` of traffic.
    pub fn status(&self, age: Duration, bytes: u64) -> LifetimeStatus {
        let over = |limit: Option<Duration>, bytes_limit: Option<u64>| {
            limit.is_some_and(|l| age >= l) || bytes_limit.is_some_and(|l| bytes >= l)
        };
        if over(self.hard_time, self.hard_bytes) {
            LifetimeStatus::Expired
        } else if over(self.soft_time, self.soft_bytes) {
            LifetimeStatus::RekeyDue
        } else {
            LifetimeStatus::Fresh
        }
    }

    /// `status` for an SA created at `created`, at `now`.
    pub fn status_at(&self, created: Instant, now: Instant, bytes: u64) -> LifetimeStatus {
        self.status(now.saturating_duration_since(created), bytes)
    }
}
