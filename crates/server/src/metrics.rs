//! What the server counts for Prometheus that nothing else counts:
//! session attempts, authentication results, RADIUS requests and their
//! latency, handshake durations. One [`Metrics`] is made by
//! [`crate::server::Server::start`] and handed to the services that see
//! these events (the control pipeline, the RADIUS drivers).
//!
//! What the server already counts elsewhere (the sessions' bytes and
//! packets, the pools, dropped packets) is not counted again here: it is
//! read at scrape time from the snapshot (`metrics_render.rs`). The one
//! exception is the traffic of sessions that have ended: their counters
//! go away with their records, so each session's final counters are added
//! here once, at its end, to keep the per-protocol byte counters monotonic
//! (Prometheus counters never go down).
//!
//! Labels never name a user (docs/ADMIN.md): only protocols, methods,
//! results, RADIUS server addresses and drop reasons, all bounded sets.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tunnel::Traffic;

use crate::radius_auth::TunnelKind;

/// A label set: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// RADIUS round trips: 1 ms to about 8 s.
fn radius_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Handshakes (first question to link up): 10 ms to about 80 s.
fn handshake_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// How a session attempt ended, for `ras_session_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The link came up.
    Success,
    /// Authentication failed or was refused.
    AuthFailed,
    /// PPP could not agree with the peer, or the server could not give
    /// the session what it needs (an address, the policy's limits).
    Refused,
    /// The peer went away or broke the protocol before the link was up.
    Abandoned,
}

impl AttemptResult {
    pub fn name(self) -> &'static str {
        match self {
            AttemptResult::Success => "success",
            AttemptResult::AuthFailed => "auth_failed",
            AttemptResult::Refused => "refused",
            AttemptResult::Abandoned => "abandoned",
        }
    }

    /// The result of a session that ended before its link came up.
    pub fn of_early_end(reason: &tunnel::EndReason) -> AttemptResult {
        use tunnel::EndReason as E;
        match reason {
            E::AuthFailed(_) => AttemptResult::AuthFailed,
            E::NegotiationFailed(_) | E::ServiceUnavailable(_) | E::Preempted(_) => {
                AttemptResult::Refused
            }
            _ => AttemptResult::Abandoned,
        }
    }
}

/// The `reason` label of `ras_tls_handshake_failures_total` for a failed
/// handshake: a bounded set, whatever the peer sent.
pub fn tls_failure_reason(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    if let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match tls {
            // Not TLS, or a record or message that does not parse.
            rustls::Error::InvalidMessage(_) => "malformed",
            // A TLS message out of place (not a ClientHello first).
            rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => "unexpected_message",
            // Nothing in common: versions, suites, groups, extensions.
            rustls::Error::PeerIncompatible(_) => "incompatible",
            rustls::Error::AlertReceived(_) => "alert_received",
            _ => "other_tls",
        };
    }
    match error.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => "closed",
        _ => "io",
    }
}

/// The event counters and histograms, and the traffic of ended sessions.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    session_attempts: Family<Labels, Counter>,
    authentications: Family<Labels, Counter>,
    radius_requests: Family<Labels, Counter>,
    radius_duration: Family<Labels, Histogram, fn() -> Histogram>,
    handshake_duration: Family<Labels, Histogram, fn() -> Histogram>,
    reloads: Family<Labels, Counter>,
    tls_handshake_failures: Family<Labels, Counter>,
    sstp_refused: Family<Labels, Counter>,
    ended_traffic: Mutex<HashMap<&'static str, Traffic>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ras");
        let session_attempts = Family::<Labels, Counter>::default();
        let authentications = Family::<Labels, Counter>::default();
        let radius_requests = Family::<Labels, Counter>::default();
        let radius_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(radius_histogram);
        let handshake_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
                handshake_histogram,
            );
        registry.register(
            "session_attempts",
            "Sessions that asked to be authenticated, by protocol and how the attempt ended",
            session_attempts.clone(),
        );
        registry.register(
            "authentications",
            "Credential checks, by authentication method and result",
            authentications.clone(),
        );
        registry.register(
            "radius_requests",
            "RADIUS requests, by server (role and address) and result",
            radius_requests.clone(),
        );
        registry.register(
            "radius_request_duration_seconds",
            "Time from a RADIUS request to its answer or its final timeout, by server role",
            radius_duration.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "reloads",
            "Configuration reloads (SIGHUP, ras server reload), by result: applied or refused",
            reloads.clone(),
        );
        let tls_handshake_failures = Family::<Labels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed before a session began, by listener and reason",
            tls_handshake_failures.clone(),
        );
        let sstp_refused = Family::<Labels, Counter>::default();
        registry.register(
            "sstp_connections_refused",
            "SSTP connections closed by flood protection or the port limit, by reason: handshakes_busy, per_source, ports_busy (a new connection refused: every port belongs to a logged-in session), evicted_unauthenticated (an older connection not logged in yet gave its port to a new one)",
            sstp_refused.clone(),
        );
        registry.register(
            "handshake_duration_seconds",
            "Time from a session's first question (authentication) to its link coming up, by protocol",
            handshake_duration.clone(),
        );
        Metrics {
            registry,
            session_attempts,
            authentications,
            radius_requests,
            radius_duration,
            handshake_duration,
            reloads,
            tls_handshake_failures,
            sstp_refused,
            ended_traffic: Mutex::new(HashMap::new()),
        }
    }

    /// The registry of the event metrics (rendered with the snapshot's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A session of `protocol` ended its attempt with `result` (success
    /// when its link came up, else at its end).
    pub fn session_attempt(&self, protocol: TunnelKind, result: AttemptResult) {
        self.session_attempts
            .get_or_create(&labels(&[
                ("protocol", protocol.name()),
                ("result", result.name()),
            ]))
            .inc();
    }

    /// A credential check with `method` ended: `accepted` or not.
    pub fn authentication(&self, method: &str, accepted: bool) {
        let result = if accepted { "accept" } else { "reject" };
        self.authentications
            .get_or_create(&labels(&[("method", method), ("result", result)]))
            .inc();
    }

    /// A RADIUS request of `role` ("auth" or "acct") to `server` (`None`:
    /// no server answered) ended with `result` after `took`.
    pub fn radius_request(&self, role: &str, server: Option<&str>, result: &str, took: Duration) {
        self.radius_requests
            .get_or_create(&labels(&[
                ("role", role),
                ("server", server.unwrap_or("none")),
                ("result", result),
            ]))
            .inc();
        self.radius_duration
            .get_or_create(&labels(&[("role", role)]))
            .observe(took.as_secs_f64());
    }

    /// A TLS handshake on `listener` ("sstp") failed for `reason` (one of
    /// the bounded names of [`tls_failure_reason`]).
    pub fn tls_handshake_failure(&self, listener: &str, reason: &str) {
        self.tls_handshake_failures
            .get_or_create(&labels(&[("listener", listener), ("reason", reason)]))
            .inc();
    }

    /// An SSTP connection was closed for `reason` before its session
    /// began (handshake_gate.rs reasons, or "ports_busy").
    pub fn sstp_connection_refused(&self, reason: &str) {
        self.sstp_refused
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// A reload ended: applied (`true`) or refused.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads
            .get_or_create(&labels(&[("result", result)]))
            .inc();
    }

    /// A session of `protocol` came up `took` after its first question.
    pub fn handshake(&self, protocol: TunnelKind, took: Duration) {
        self.handshake_duration
            .get_or_create(&labels(&[("protocol", protocol.name())]))
            .observe(took.as_secs_f64());
    }

    /// A session of `protocol` ended with `traffic` on its counters.
    pub fn session_ended(&self, protocol: TunnelKind, traffic: Traffic) {
        let mut ended = self.ended_traffic.lock().unwrap_or_else(|e| e.into_inner());
        let t = ended.entry(protocol.name()).or_default();
        t.octets_in += traffic.octets_in;
        t.octets_out += traffic.octets_out;
        t.packets_in += traffic.packets_in;
        t.packets_out += traffic.packets_out;
    }

    /// The traffic of ended sessions, by protocol name.
    pub fn ended_traffic(&self) -> HashMap<&'static str, Traffic> {
        self.ended_traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::tls_failure_reason;
    use std::io::{Error, ErrorKind};

    #[test]
    fn tls_failures_fall_into_bounded_reasons() {
        let tls = |e: rustls::Error| Error::new(ErrorKind::InvalidData, e);
        assert_eq!(
            tls_failure_reason(&tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            ))),
            "malformed"
        );
        assert_eq!(
            tls_failure_reason(&tls(rustls::Error::InappropriateHandshakeMessage {
                expect_types: vec![],
                got_type: rustls::HandshakeType::ServerHelloDone,
            })),
            "unexpected_message"
        );
        assert_eq!(
            tls_failure_reason(&tls(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoCipherSuitesInCommon
            ))),
            "incompatible"
        );
        assert_eq!(
            tls_failure_reason(&Error::from(ErrorKind::UnexpectedEof)),
            "closed"
        );
        assert_eq!(
            tls_failure_reason(&Error::from(ErrorKind::OutOfMemory)),
            "io"
        );
    }
}
