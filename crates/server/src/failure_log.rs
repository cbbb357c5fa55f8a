//! Log lines for connections that fail before anyone logged in, at a
//! bounded rate. A flood of garbage connections (a scanner, a broken
//! client in a loop) must neither fill the disk with one line per
//! connection nor hide the one failure that matters, a real user's:
//!
//! - within each [`WINDOW`], each peer address gets its own first
//!   [`LINES_PER_PEER`] failure lines, for at most [`PEERS_PER_WINDOW`]
//!   addresses (so a user failing next to a flooding host is still seen);
//! - everything beyond that is counted per reason and told in one summary
//!   line per window, with the last peer and detail of what was held back.
//!
//! Sans-IO: the caller passes `now` and logs what it is given.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one budget of lines lasts.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Failure lines one peer address gets per window.
pub const LINES_PER_PEER: u32 = 3;
/// Peer addresses that get lines of their own per window.
pub const PEERS_PER_WINDOW: usize = 50;

/// What became of one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Log this line.
    Line(String),
    /// Counted for the next summary.
    Held,
}

/// Failures of one listener (SSTP, PPTP) and their budget.
#[derive(Debug)]
pub struct FailureLog {
    protocol: &'static str,
    window_start: Option<Instant>,
    lines_per_peer: HashMap<IpAddr, u32>,
    held: BTreeMap<&'static str, u64>,
    last_held: Option<String>,
}

impl FailureLog {
    /// A log for `protocol`'s listener ("SSTP", "PPTP").
    pub fn new(protocol: &'static str) -> FailureLog {
        FailureLog {
            protocol,
            window_start: None,
            lines_per_peer: HashMap::new(),
            held: BTreeMap::new(),
            last_held: None,
        }
    }

    /// One connection from `peer` failed: `reason` is the fixed phrase it
    /// is counted under ("TLS handshake failed"), `what` the words of this
    /// failure. Returns the line to log, or `Held` when the budget is
    /// spent; a summary that is due comes from [`FailureLog::summary`].
    pub fn failed(
        &mut self,
        now: Instant,
        reason: &'static str,
        peer: std::net::SocketAddr,
        what: &dyn std::fmt::Display,
    ) -> Verdict {
        if self.window_start.is_none() {
            self.window_start = Some(now);
        }
        let known = self.lines_per_peer.len();
        let line = match self.lines_per_peer.get_mut(&peer.ip()) {
            Some(n) if *n < LINES_PER_PEER => {
                *n += 1;
                true
            }
            Some(_) => false,
            None if known < PEERS_PER_WINDOW => {
                self.lines_per_peer.insert(peer.ip(), 1);
                true
            }
            None => false,
        };
        if line {
            Verdict::Line(format!("{} from {peer}: {what}", self.protocol))
        } else {
            *self.held.entry(reason).or_insert(0) += 1;
            self.last_held = Some(format!("{peer}: {what}"));
            Verdict::Held
        }
    }

    /// The summary of what was held back, once the window it was held in
    /// has passed; the next window starts with a fresh budget. Call it
    /// now and then (every few seconds) so that the summary of a flood
    /// that stopped is not left unsaid.
    pub fn summary(&mut self, now: Instant) -> Option<String> {
        let start = self.window_start?;
        if now.duration_since(start) < WINDOW {
            return None;
        }
        self.window_start = None;
        self.lines_per_peer.clear();
        let last = self.last_held.take();
        if self.held.is_empty() {
            return None;
        }
        let total: u64 = self.held.values().sum();
        let mut line = format!(
            "{}: {total} more failed connections in {} s not logged one by one:",
            self.protocol,
            now.duration_since(start).as_secs()
        );
        for (i, (reason, n)) in std::mem::take(&mut self.held).into_iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(line, "{sep}{reason} {n}");
        }
        if let Some(last) = last {
            let _ = write!(line, " (last: {last})");
        }
        Some(line)
    }
}

/// A listener's [`FailureLog`], shared by its connection tasks, which
/// log through it.
#[derive(Clone)]
pub struct ListenerFailures(Arc<Mutex<FailureLog>>);

impl ListenerFailures {
    /// For `protocol`'s listener ("SSTP", "PPTP").
    pub fn new(protocol: &'static str) -> ListenerFailures {
        ListenerFailures(Arc::new(Mutex::new(FailureLog::new(protocol))))
    }

    /// A connection from `peer` failed (see [`FailureLog::failed`]).
    pub fn report(
        &self,
        reason: &'static str,
        peer: std::net::SocketAddr,
        what: &dyn std::fmt::Display,
    ) {
        let verdict = self.lock().failed(Instant::now(), reason, peer, what);
        if let Verdict::Line(line) = verdict {
            tracing::info!("{line}");
        }
    }

    /// A session of this listener ended: one line when its link had come
    /// up, else a failure, at the bounded rate.
    pub fn session_ended(&self, id: u64, peer: std::net::SocketAddr, outcome: &tunnel::Outcome) {
        if outcome.was_up {
            tracing::info!(
                session_id = id,
                %peer,
                bytes_in = outcome.stats.bytes_in,
                bytes_out = outcome.stats.bytes_out,
                "{} session ended: {}",
                self.lock().protocol,
                outcome.reason
            );
        } else {
            self.ended_before_login(peer, &outcome.reason);
        }
    }

    /// A session that ended before its link came up, counted under a
    /// phrase for how it ended.
    pub fn ended_before_login(&self, peer: std::net::SocketAddr, reason: &tunnel::EndReason) {
        use tunnel::EndReason as R;
        let key = match reason {
            R::ProtocolError(_) => "protocol error",
            R::AuthFailed(_) => "login refused",
            R::NegotiationFailed(_) => "PPP negotiation failed",
            R::PeerRequest(_) | R::LostCarrier(_) => "the client went away",
            R::ServerStopping => "server stopping",
            _ => "ended before the link came up",
        };
        self.report(
            key,
            peer,
            &format_args!("ended before the link came up: {reason}"),
        );
    }

    /// Logs the summary of what was held back, when one is due. Call it
    /// every few seconds.
    pub fn summarise(&self) {
        if let Some(line) = self.lock().summary(Instant::now()) {
            tracing::warn!("{line}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FailureLog> {
        // A panic elsewhere while holding it leaves counts, not broken state.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn peer(host: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, host], port))
    }

    #[test]
    fn a_flood_from_one_host_costs_a_few_lines_and_one_summary() {
        let t0 = Instant::now();
        let mut log = FailureLog::new("SSTP");
        let mut lines = Vec::new();
        for i in 0..10_000u32 {
            let reason = if i % 2 == 0 {
                "TLS handshake failed"
            } else {
                "SSTP request refused"
            };
            let now = t0 + Duration::from_micros(u64::from(i) * 100);
            let what = format!("{reason}: garbage");
            if let Verdict::Line(l) = log.failed(now, reason, peer(7, i as u16), &what) {
                lines.push(l);
            }
            lines.extend(log.summary(now));
        }
        assert_eq!(lines.len(), LINES_PER_PEER as usize, "{lines:?}");
        assert_eq!(
            lines[0],
            "SSTP from 192.0.2.7:0: TLS handshake failed: garbage"
        );
        // The window has not passed: nothing summarised yet.
        assert_eq!(log.summary(t0 + Duration::from_secs(9)), None);
        let summary = log.summary(t0 + WINDOW).expect("summary");
        assert_eq!(
            summary,
            "SSTP: 9997 more failed connections in 10 s not logged one by one: \
             SSTP request refused 4999, TLS handshake failed 4998 \
             (last: 192.0.2.7:9999: SSTP request refused: garbage)"
        );
        // Said once; the next window has a fresh budget.
        assert_eq!(log.summary(t0 + WINDOW * 2), None);
        let after = t0 + WINDOW * 3;
        assert!(matches!(
            log.failed(after, "TLS handshake failed", peer(7, 1), &"again"),
            Verdict::Line(_)
        ));
    }

    #[test]
    fn another_host_failing_during_a_flood_is_still_logged() {
        let t0 = Instant::now();
        let mut log = FailureLog::new("PPTP");
        for i in 0..1_000u16 {
            log.failed(t0, "protocol error", peer(7, i), &"junk");
        }
        let user = log.failed(
            t0,
            "protocol error",
            peer(99, 50000),
            &"control connection failed: Start-Control-Connection-Request timed out",
        );
        assert_eq!(
            user,
            Verdict::Line(
                "PPTP from 192.0.2.99:50000: control connection failed: \
                 Start-Control-Connection-Request timed out"
                    .into()
            )
        );
    }

    #[test]
    fn the_number_of_hosts_with_lines_of_their_own_is_bounded() {
        let t0 = Instant::now();
        let mut log = FailureLog::new("SSTP");
        let logged = (0..=255u8)
            .flat_map(|h| (0..4u16).map(move |p| (h, p)))
            .filter(|&(h, p)| {
                matches!(
                    log.failed(t0, "TLS handshake failed", peer(h, p), &"x"),
                    Verdict::Line(_)
                )
            })
            .count();
        assert_eq!(logged, PEERS_PER_WINDOW * LINES_PER_PEER as usize);
        let summary = log.summary(t0 + WINDOW).expect("summary");
        assert!(
            summary.starts_with(&format!(
                "SSTP: {} more failed connections",
                256 * 4 - logged
            )),
            "{summary}"
        );
    }
}
