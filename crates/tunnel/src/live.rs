//! What the owner of a session can see and do while it runs: live traffic
//! counters (for RADIUS accounting, RFC 2866 §5.3–5.4, §5.8, §5.10, and
//! for Idle-Timeout, RFC 2865 §5.28) and a stop request (Session-Timeout,
//! Idle-Timeout, an RFC 5176 Disconnect-Request, an administrator).
//!
//! The session loop adds to the counters once per batch, not per packet,
//! with relaxed atomics: readers (an accounting timer every few minutes)
//! need a recent figure, not a synchronised one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use session::EndReason;
use tokio::sync::Notify;

use session::SessionStats;

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// IP octets received from the client (Acct-Input-Octets).
    pub octets_in: u64,
    /// IP octets sent to the client (Acct-Output-Octets).
    pub octets_out: u64,
    /// IP packets received from the client.
    pub packets_in: u64,
    /// IP packets sent to the client.
    pub packets_out: u64,
}

/// Shared between a running session and its owner.
#[derive(Debug)]
pub struct LiveSession {
    octets_in: AtomicU64,
    octets_out: AtomicU64,
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    started: Instant,
    /// Nanoseconds after `started` of the last packet from the client.
    last_input_ns: AtomicU64,
    stop_requested: AtomicBool,
    stop_reason: Mutex<Option<EndReason>>,
    stop: Notify,
}

impl Default for LiveSession {
    fn default() -> Self {
        LiveSession::new()
    }
}

impl LiveSession {
    pub fn new() -> LiveSession {
        LiveSession {
            octets_in: AtomicU64::new(0),
            octets_out: AtomicU64::new(0),
            packets_in: AtomicU64::new(0),
            packets_out: AtomicU64::new(0),
            started: Instant::now(),
            last_input_ns: AtomicU64::new(0),
            stop_requested: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            stop: Notify::new(),
        }
    }

    /// The counters now.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            octets_in: self.octets_in.load(Ordering::Relaxed),
            octets_out: self.octets_out.load(Ordering::Relaxed),
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
        }
    }

    /// When the client last sent a packet that is activity (the session
    /// start if never).
    pub fn last_input(&self) -> Instant {
        self.started + std::time::Duration::from_nanos(self.last_input_ns.load(Ordering::Relaxed))
    }

    /// When the client last sent a packet that is activity; `None` if it
    /// never did.
    pub fn last_activity(&self) -> Option<Instant> {
        match self.last_input_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.started + std::time::Duration::from_nanos(ns)),
        }
    }

    /// Adds what the session counted since its last report: the
    /// difference between `now` and `reported`, which then becomes `now`.
    pub fn add(&self, reported: &mut SessionStats, now: &SessionStats) {
        let d_in = now.ip_bytes_in - reported.ip_bytes_in;
        let d_out = now.ip_bytes_out - reported.ip_bytes_out;
        let p_in = now.packets_in - reported.packets_in;
        let p_out = now.packets_out - reported.packets_out;
        let quiet = now.packets_in_not_activity - reported.packets_in_not_activity;
        if p_in > 0 {
            self.octets_in.fetch_add(d_in, Ordering::Relaxed);
            self.packets_in.fetch_add(p_in, Ordering::Relaxed);
        }
        // Only packets that are activity move the idle timer (NetBIOS
        // datagrams the gateway took are not).
        if p_in > quiet {
            let ns = self.started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.last_input_ns.store(ns, Ordering::Relaxed);
        }
        if p_out > 0 {
            self.octets_out.fetch_add(d_out, Ordering::Relaxed);
            self.packets_out.fetch_add(p_out, Ordering::Relaxed);
        }
        *reported = now.clone();
    }

    /// Asks the session to end, with a reason for its log and outcome. The
    /// first reason given wins.
    pub fn request_stop(&self, reason: EndReason) {
        {
            let mut r = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.stop_requested.store(true, Ordering::Release);
        self.stop.notify_one();
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }

    /// The reason given to [`LiveSession::request_stop`].
    pub fn stop_reason(&self) -> Option<EndReason> {
        self.stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves once a stop is requested (at once if it already was).
    pub async fn stopped(&self) {
        loop {
            let notified = self.stop.notified();
            if self.stop_requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_differences_only() {
        let live = LiveSession::new();
        let mut reported = SessionStats::default();
        let mut now = SessionStats {
            ip_bytes_in: 100,
            packets_in: 2,
            ip_bytes_out: 40,
            packets_out: 1,
            ..SessionStats::default()
        };
        live.add(&mut reported, &now);
        now.ip_bytes_in += 50;
        now.packets_in += 1;
        live.add(&mut reported, &now);
        live.add(&mut reported, &now);
        assert_eq!(
            live.traffic(),
            Traffic {
                octets_in: 150,
                octets_out: 40,
                packets_in: 3,
                packets_out: 1
            }
        );
    }

    #[test]
    fn packets_that_are_not_activity_leave_the_idle_timer_alone() {
        let live = LiveSession::new();
        let mut reported = SessionStats::default();
        let start = live.last_input();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Two NetBIOS datagrams the gateway took: traffic, not activity.
        let mut now = SessionStats {
            ip_bytes_in: 120,
            packets_in: 2,
            packets_in_not_activity: 2,
            ..SessionStats::default()
        };
        live.add(&mut reported, &now);
        assert_eq!(live.last_input(), start, "datagrams are not activity");
        assert_eq!(live.last_activity(), None);
        assert_eq!(live.traffic().packets_in, 2);
        assert_eq!(live.traffic().octets_in, 120);
        // One other packet is.
        now.ip_bytes_in += 60;
        now.packets_in += 1;
        live.add(&mut reported, &now);
        assert!(live.last_input() > start, "other packets are activity");
        assert_eq!(live.last_activity(), Some(live.last_input()));
    }

    #[tokio::test]
    async fn stop_wakes_a_waiter_and_keeps_the_first_reason() {
        let live = std::sync::Arc::new(LiveSession::new());
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.stopped().await })
        };
        tokio::task::yield_now().await;
        live.request_stop(EndReason::SessionTimeout);
        live.request_stop(EndReason::AdminReset("an administrator".into()));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(live.stop_reason(), Some(EndReason::SessionTimeout));
    }
}
