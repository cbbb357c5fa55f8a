//! The MulticastForwardRate gate (ras-datagram-processing-q97559, "LAN
//! System Sends a Burst of Multicast Datagrams", step 2): after every
//! period of N seconds the gate opens and the datagrams that arrive are
//! forwarded; while it is closed they are dropped.

use std::time::{Duration, Instant};

use crate::config::MulticastForwardRate;

/// The gate, anchored at the instant the gateway started.
#[derive(Debug, Clone)]
pub struct Gate {
    rate: MulticastForwardRate,
    start: Instant,
    open_for: Duration,
}

/// What the gate says about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    /// Forward it.
    Open,
    /// MulticastForwardRate -1: never forward.
    Never,
    /// The gate is closed now.
    Closed,
}

impl Gate {
    /// A gate for `rate`, started at `start`, open for `open_for` after each
    /// opening (clamped to the period).
    pub fn new(rate: MulticastForwardRate, start: Instant, open_for: Duration) -> Self {
        Self {
            rate,
            start,
            open_for,
        }
    }

    /// Whether a broadcast or group datagram arriving at `now` passes. The
    /// gate first opens one period after the start ("after the designated
    /// number of seconds, the gate opens"), then at every multiple of it.
    pub fn check(&self, now: Instant) -> GateVerdict {
        let secs = match self.rate {
            MulticastForwardRate::Never => return GateVerdict::Never,
            MulticastForwardRate::Always => return GateVerdict::Open,
            MulticastForwardRate::Gate(secs) => secs,
        };
        let period = Duration::from_secs(u64::from(secs));
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < period {
            return GateVerdict::Closed;
        }
        let into = Duration::from_nanos((elapsed.as_nanos() % period.as_nanos()) as u64);
        if into < self.open_for.min(period) {
            GateVerdict::Open
        } else {
            GateVerdict::Closed
        }
    }

    /// When the gate next opens after `now`, if it ever does (for drivers
    /// that want to log or to hold a timer; the gateway needs none).
    pub fn next_opening(&self, now: Instant) -> Option<Instant> {
        let MulticastForwardRate::Gate(secs) = self.rate else {
            return None;
        };
        let period = u128::from(secs) * 1_000_000_000;
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let k = elapsed / period + 1;
        let at = k.saturating_mul(period).min(u128::from(u64::MAX));
        Some(self.start + Duration::from_nanos(at as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_opens_every_period_for_the_window() {
        let t0 = Instant::now();
        let g = Gate::new(MulticastForwardRate::Gate(5), t0, Duration::from_secs(1));
        let at = |ms: u64| g.check(t0 + Duration::from_millis(ms));
        assert_eq!(at(0), GateVerdict::Closed);
        assert_eq!(at(4_999), GateVerdict::Closed);
        assert_eq!(at(5_000), GateVerdict::Open);
        assert_eq!(at(5_999), GateVerdict::Open);
        assert_eq!(at(6_000), GateVerdict::Closed);
        assert_eq!(at(9_999), GateVerdict::Closed);
        assert_eq!(at(10_500), GateVerdict::Open);
        assert_eq!(
            g.next_opening(t0 + Duration::from_millis(5_500)),
            Some(t0 + Duration::from_secs(10))
        );
    }

    #[test]
    fn one_second_gate_is_open_after_the_first_second() {
        let t0 = Instant::now();
        let g = Gate::new(MulticastForwardRate::Gate(1), t0, Duration::from_secs(1));
        assert_eq!(
            g.check(t0 + Duration::from_millis(500)),
            GateVerdict::Closed
        );
        for ms in [1_000, 1_500, 2_999, 7_123] {
            assert_eq!(g.check(t0 + Duration::from_millis(ms)), GateVerdict::Open);
        }
    }

    #[test]
    fn never_and_always() {
        let t0 = Instant::now();
        let d = Duration::from_secs(1);
        assert_eq!(
            Gate::new(MulticastForwardRate::Never, t0, d).check(t0),
            GateVerdict::Never
        );
        assert_eq!(
            Gate::new(MulticastForwardRate::Always, t0, d).check(t0),
            GateVerdict::Open
        );
        assert_eq!(
            Gate::new(MulticastForwardRate::Always, t0, d).next_opening(t0),
            None
        );
    }
}
