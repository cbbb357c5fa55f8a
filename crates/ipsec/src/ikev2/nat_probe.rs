//! NAT-timeout probing: a small private extension of ours (both ends are
//! `ras`). RFC 7296 §3.10.1 reserves Notify status types 40960–65535 for
//! private use and says a peer MUST ignore a status notify it does not
//! recognize, so other peers (strongSwan, Windows) are unaffected.
//!
//! Why a server-side part: a client cannot see a UDP mapping expire by
//! itself. A reply to its own probe refreshes (or re-creates) the mapping,
//! and Linux masquerade gives a re-created mapping the same port. Only a
//! packet from the server, sent after a known idle time with nothing from
//! the client first, tells whether the mapping survived that time.
//!
//! - `NAT_PROBE_SUPPORTED` (no data): the client offers it in its IKE_AUTH
//!   request; the server echoes it in the answer when it takes part.
//! - `DELAYED_PROBE_REQUEST` (u32 delay in ms, u32 cookie, network order):
//!   in an INFORMATIONAL request from the client. The server answers at
//!   once and, `delay` later, sends an INFORMATIONAL request of its own
//!   carrying `DELAYED_PROBE`.
//! - `DELAYED_PROBE` (u32 cookie): the delayed request; the client answers
//!   it like any INFORMATIONAL request.
//!
//! The client's measurement (growing the delay, then bisecting) is in
//! [`NatTimeoutMeter`], a pure state machine driven by the caller's clock.

use std::time::{Duration, Instant};

use thiserror::Error;

/// Private-use status notify (RFC 7296 §3.10.1): the extension is offered
/// (client) or agreed (server).
pub const NAT_PROBE_SUPPORTED: u16 = 40960;
/// Private-use status notify: "send me a probe after this delay".
pub const DELAYED_PROBE_REQUEST: u16 = 40961;
/// Private-use status notify: the delayed probe itself.
pub const DELAYED_PROBE: u16 = 40962;

/// The server honours delays within these bounds (a longer one is clamped
/// down, a shorter one up): one pending probe per IKE SA, never sooner
/// than 1 s, never later than 10 minutes.
pub const MIN_DELAY: Duration = Duration::from_secs(1);
pub const MAX_DELAY: Duration = Duration::from_secs(600);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProbeDataError {
    #[error("DELAYED_PROBE_REQUEST data is {0} octets, not 8")]
    RequestLength(usize),
    #[error("DELAYED_PROBE data is {0} octets, not 4")]
    ProbeLength(usize),
}

/// The data of a DELAYED_PROBE_REQUEST notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    pub delay: Duration,
    pub cookie: u32,
}

impl ProbeRequest {
    pub fn encode(&self) -> [u8; 8] {
        let ms = u32::try_from(self.delay.as_millis()).unwrap_or(u32::MAX);
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&ms.to_be_bytes());
        out[4..].copy_from_slice(&self.cookie.to_be_bytes());
        out
    }

    pub fn parse(data: &[u8]) -> Result<Self, ProbeDataError> {
        let bytes: [u8; 8] = data
            .try_into()
            .map_err(|_| ProbeDataError::RequestLength(data.len()))?;
        let ms = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let cookie = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Ok(ProbeRequest {
            delay: Duration::from_millis(u64::from(ms)),
            cookie,
        })
    }

    /// The delay the server will honour.
    pub fn clamped_delay(&self) -> Duration {
        self.delay.clamp(MIN_DELAY, MAX_DELAY)
    }
}

pub fn encode_probe(cookie: u32) -> [u8; 4] {
    cookie.to_be_bytes()
}

pub fn parse_probe(data: &[u8]) -> Result<u32, ProbeDataError> {
    let bytes: [u8; 4] = data
        .try_into()
        .map_err(|_| ProbeDataError::ProbeLength(data.len()))?;
    Ok(u32::from_be_bytes(bytes))
}

/// The client's measurement schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatProbeSettings {
    /// The first delay tried; each success doubles it.
    pub first_delay: Duration,
    /// No delay above this is tried: a mapping that survives it is "at
    /// least this long".
    pub max_delay: Duration,
    /// Bisecting stops when success and failure are this close.
    pub resolution: Duration,
    /// How late the probe may be before it counts as lost (network delay,
    /// the server's timer).
    pub grace: Duration,
    /// How long to wait before the first probe after the tunnel came up,
    /// and between probes.
    pub pause: Duration,
    /// After an inconclusive probe (traffic in between), try again this
    /// much later.
    pub retry_after: Duration,
    /// After a lost probe, wait this long before the next: the server
    /// retransmits the lost one every 5 s (as any request of its own) and
    /// that retransmission must not fall into the next measurement.
    pub after_loss: Duration,
    /// The keepalive is this percentage of the measured timeout...
    pub keepalive_percent: u32,
    /// ...but never below this.
    pub min_keepalive: Duration,
}

impl Default for NatProbeSettings {
    fn default() -> Self {
        NatProbeSettings {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(300),
            resolution: Duration::from_secs(2),
            grace: Duration::from_secs(2),
            pause: Duration::from_secs(2),
            retry_after: Duration::from_secs(10),
            after_loss: Duration::from_secs(8),
            keepalive_percent: 85,
            min_keepalive: Duration::from_secs(5),
        }
    }
}

impl NatProbeSettings {
    /// The keepalive interval for a measured timeout: a margin below it,
    /// never below the floor.
    pub fn keepalive_for(&self, timeout: Duration) -> Duration {
        (timeout * self.keepalive_percent.min(100) / 100).max(self.min_keepalive)
    }
}

/// Where the measurement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MeterState {
    /// The next probe may be asked for at this time.
    Idle {
        next_at: Instant,
    },
    /// DELAYED_PROBE_REQUEST sent, its answer not yet in.
    Asking {
        delay: Duration,
        cookie: u32,
    },
    /// The server answered at `since`; the probe is due by `deadline`.
    /// `tainted`: something passed the mapping since (inconclusive).
    Waiting {
        delay: Duration,
        cookie: u32,
        deadline: Instant,
        tainted: bool,
    },
    Done,
}

/// What one probe came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The probe arrived: the mapping survived `delay`.
    Survived(Duration),
    /// It did not arrive in time: the mapping expired within `delay`. The
    /// caller re-creates it at once (keepalive and an authenticated
    /// request, RFC 7296 §2.23).
    Expired(Duration),
    /// Traffic passed meanwhile; tried again later.
    Inconclusive,
    /// The measurement is over: the mapping lasts at least `timeout`.
    Measured {
        timeout: Duration,
        keepalive: Duration,
    },
}

/// The client's NAT-timeout measurement: grows the delay (doubling from
/// `first_delay` up to `max_delay`) until a probe is lost, then bisects
/// between the last success and the first loss to `resolution`. The
/// result is the longest delay that survived.
#[derive(Clone, Debug)]
pub struct NatTimeoutMeter {
    settings: NatProbeSettings,
    state: MeterState,
    survived: Option<Duration>,
    expired: Option<Duration>,
    next_cookie: u32,
    result: Option<Duration>,
}

impl NatTimeoutMeter {
    pub fn new(settings: NatProbeSettings, now: Instant, cookie_seed: u32) -> Self {
        NatTimeoutMeter {
            settings,
            state: MeterState::Idle {
                next_at: now + settings.pause,
            },
            survived: None,
            expired: None,
            next_cookie: cookie_seed,
            result: None,
        }
    }

    pub fn settings(&self) -> &NatProbeSettings {
        &self.settings
    }

    /// The measured timeout, once done.
    pub fn result(&self) -> Option<Duration> {
        self.result
    }

    pub fn is_done(&self) -> bool {
        self.state == MeterState::Done
    }

    /// While a probe is awaited nothing may refresh the mapping: no NAT
    /// keepalives, no liveness checks.
    pub fn quiet(&self) -> bool {
        matches!(
            self.state,
            MeterState::Asking { .. } | MeterState::Waiting { .. }
        )
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            MeterState::Idle { next_at } => Some(next_at),
            MeterState::Waiting { deadline, .. } => Some(deadline),
            MeterState::Asking { .. } | MeterState::Done => None,
        }
    }

    /// The delay to try next, per the schedule.
    fn next_delay(&self) -> Duration {
        match (self.survived, self.expired) {
            (None, None) => self.settings.first_delay,
            (Some(ok), None) => (ok * 2).min(self.settings.max_delay),
            (ok, Some(lost)) => {
                let ok = ok.unwrap_or(Duration::ZERO);
                ok + (lost.saturating_sub(ok)) / 2
            }
        }
    }

    /// A probe request to send now, if one is due (the caller sends it
    /// and calls [`Self::answered`] when the server answers).
    pub fn request_due(&mut self, now: Instant) -> Option<ProbeRequest> {
        let MeterState::Idle { next_at } = self.state else {
            return None;
        };
        if now < next_at {
            return None;
        }
        let delay = self.next_delay();
        let cookie = self.next_cookie;
        self.next_cookie = self.next_cookie.wrapping_add(1);
        self.state = MeterState::Asking { delay, cookie };
        Some(ProbeRequest { delay, cookie })
    }

    /// The server answered the request: the wait starts now (its answer was
    /// the last packet through the mapping).
    pub fn answered(&mut self, now: Instant) {
        if let MeterState::Asking { delay, cookie } = self.state {
            self.state = MeterState::Waiting {
                delay,
                cookie,
                deadline: now + delay + self.settings.grace,
                tainted: false,
            };
        }
    }

    /// The request went unanswered or the SA changed: try later.
    pub fn abandoned(&mut self, now: Instant) {
        if matches!(
            self.state,
            MeterState::Asking { .. } | MeterState::Waiting { .. }
        ) {
            self.state = MeterState::Idle {
                next_at: now + self.settings.retry_after,
            };
        }
    }

    /// Something went through the mapping (ESP or IKE, either way) while
    /// the probe was awaited: the result would say nothing.
    pub fn taint(&mut self) {
        if let MeterState::Waiting { tainted, .. } = &mut self.state {
            *tainted = true;
        }
    }

    /// A DELAYED_PROBE with `cookie` arrived. Another cookie (a
    /// retransmission of an earlier probe) passed the mapping too: it
    /// taints the one awaited.
    pub fn probe_arrived(&mut self, now: Instant, cookie: u32) -> Option<ProbeOutcome> {
        let MeterState::Waiting {
            delay,
            cookie: expected,
            deadline,
            tainted,
        } = self.state
        else {
            return None;
        };
        if cookie != expected || now > deadline {
            self.taint();
            return None;
        }
        if tainted {
            self.state = MeterState::Idle {
                next_at: now + self.settings.retry_after,
            };
            return Some(ProbeOutcome::Inconclusive);
        }
        self.survived = Some(self.survived.map_or(delay, |s| s.max(delay)));
        Some(self.after_result(now, ProbeOutcome::Survived(delay)))
    }

    /// Checks the deadline: a probe not in by then was lost (or the result
    /// is inconclusive when traffic passed meanwhile).
    pub fn poll(&mut self, now: Instant) -> Option<ProbeOutcome> {
        let MeterState::Waiting {
            delay,
            deadline,
            tainted,
            ..
        } = self.state
        else {
            return None;
        };
        if now < deadline {
            return None;
        }
        if tainted {
            self.state = MeterState::Idle {
                next_at: now + self.settings.retry_after,
            };
            return Some(ProbeOutcome::Inconclusive);
        }
        self.expired = Some(self.expired.map_or(delay, |e| e.min(delay)));
        Some(self.after_result(now, ProbeOutcome::Expired(delay)))
    }

    /// Decides whether the measurement is over; otherwise schedules the
    /// next probe.
    fn after_result(&mut self, now: Instant, outcome: ProbeOutcome) -> ProbeOutcome {
        let s = self.settings;
        let done = match (self.survived, self.expired) {
            (Some(ok), None) => ok >= s.max_delay,
            (ok, Some(lost)) => {
                lost.saturating_sub(ok.unwrap_or(Duration::ZERO)) <= s.resolution
                    || ok.is_none() && lost <= s.resolution
            }
            (None, None) => false,
        };
        if done {
            let timeout = self.survived.unwrap_or(Duration::ZERO);
            self.result = Some(timeout);
            self.state = MeterState::Done;
            // The caller reports Survived/Expired and then Measured: one
            // event per probe would be noise, so the final one wins.
            return ProbeOutcome::Measured {
                timeout,
                keepalive: s.keepalive_for(timeout),
            };
        }
        let wait = match outcome {
            ProbeOutcome::Expired(_) => s.after_loss,
            _ => s.pause,
        };
        self.state = MeterState::Idle {
            next_at: now + wait,
        };
        outcome
    }
}

#[cfg(test)]
#[path = "nat_probe_tests.rs"]
mod tests;

/// Where a connection's NAT-timeout measurement is, for status output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NatTimeoutStatus {
    /// Not asked for, or no NAT on the path.
    #[default]
    Off,
    /// The server did not echo NAT_PROBE_SUPPORTED (not ours, or
    /// `nat_probe = false`): the keepalive stays at its default.
    Unsupported,
    Measuring,
    Measured {
        timeout: Duration,
        keepalive: Duration,
        /// Taken from an earlier measurement on the same network.
        remembered: bool,
    },
}

impl std::fmt::Display for NatTimeoutStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatTimeoutStatus::Off => f.write_str("not measured: no NAT on the path"),
            NatTimeoutStatus::Unsupported => f.write_str("not measured: server does not offer it"),
            NatTimeoutStatus::Measuring => f.write_str("measuring"),
            NatTimeoutStatus::Measured {
                timeout,
                keepalive,
                remembered,
            } => write!(
                f,
                "{} s{}, keepalive every {} s",
                timeout.as_secs(),
                if *remembered { " (remembered)" } else { "" },
                keepalive.as_secs()
            ),
        }
    }
}
