//! What the L2TP front end counts: datagrams handed in, and each reason
//! one was dropped. A dropped datagram costs only itself; the counts are
//! logged in one summary line at most every [`DROP_LOG_INTERVAL`], so a
//! flood of garbage costs a line, not a line per datagram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A summary of dropped datagrams is logged at most this often.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The LNS's input queue was full (a slow LNS never blocks the
    /// transport's reader).
    QueueFull,
    /// Not an L2TP version 2 datagram, or its header is broken.
    Malformed,
    /// For a tunnel we do not have (or, with Tunnel ID 0, not a SCCRQ).
    UnknownTunnel,
    /// For a session the tunnel does not have, or the session's queue
    /// was full.
    UnknownSession,
    /// A data message out of sequence (RFC 2661 §5.4: late or duplicated).
    OutOfSequence,
}

/// The counters, shared by the front end, tunnels and sessions.
#[derive(Debug, Default)]
pub struct L2tpCounters {
    received: AtomicU64,
    queue_full: AtomicU64,
    malformed: AtomicU64,
    unknown_tunnel: AtomicU64,
    unknown_session: AtomicU64,
    out_of_sequence: AtomicU64,
    /// Drops not yet logged, and when the last summary was.
    log: Mutex<(u64, Option<Instant>)>,
}

/// A snapshot of [`L2tpCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L2tpCounts {
    /// Datagrams handed to the front end.
    pub received: u64,
    /// Dropped: the input queue was full.
    pub queue_full: u64,
    /// Dropped: not L2TP, or a broken header.
    pub malformed: u64,
    /// Dropped: no such tunnel.
    pub unknown_tunnel: u64,
    /// Dropped: no such session (or its queue was full).
    pub unknown_session: u64,
    /// Dropped: data out of sequence.
    pub out_of_sequence: u64,
}

impl L2tpCounters {
    /// One datagram handed in.
    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// One datagram dropped for `why`; logs a summary when one is due.
    pub(crate) fn dropped(&self, why: Dropped, detail: &dyn std::fmt::Display) {
        let counter = match why {
            Dropped::QueueFull => &self.queue_full,
            Dropped::Malformed => &self.malformed,
            Dropped::UnknownTunnel => &self.unknown_tunnel,
            Dropped::UnknownSession => &self.unknown_session,
            Dropped::OutOfSequence => &self.out_of_sequence,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.0 += 1;
        if log
            .1
            .is_none_or(|t| now.duration_since(t) >= DROP_LOG_INTERVAL)
        {
            tracing::info!("L2TP datagrams dropped: {} (last: {detail})", log.0);
            *log = (0, Some(now));
        }
    }

    /// The counts now.
    pub fn counts(&self) -> L2tpCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        L2tpCounts {
            received: get(&self.received),
            queue_full: get(&self.queue_full),
            malformed: get(&self.malformed),
            unknown_tunnel: get(&self.unknown_tunnel),
            unknown_session: get(&self.unknown_session),
            out_of_sequence: get(&self.out_of_sequence),
        }
    }
}
