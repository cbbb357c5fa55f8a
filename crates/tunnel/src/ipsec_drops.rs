//! What the IPsec front end (L2TP/IPsec and IKEv2) drops, by protocol and
//! reason, for `ras_ipsec_dropped_total`. A scanner spraying garbage at
//! UDP 500/4500 and protocol 50 must be visible to the operator without
//! costing a log line per datagram: each drop is a relaxed atomic add, and
//! ESP drops are told in one summary line at most every
//! [`DROP_LOG_INTERVAL`], naming the last reason and peer. IKE refusals
//! already have their own rate-limited lines (`RefusalLog`); the IKE
//! counters here mirror the sans-IO responders' statistics, which count
//! the drops they make silently too (unknown SPI, RFC 7296 §2.3 window).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A summary of dropped ESP packets is logged at most this often.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Why an ESP packet (raw protocol 50 or in UDP 4500) was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspDrop {
    /// Too short for an ESP header, or a UDP 4500 datagram that is
    /// neither IKE, ESP nor a keepalive (RFC 3948 §2).
    Malformed,
    /// No inbound SA has this SPI (RFC 4303 §3.4.2), or a packet kept for
    /// an SA still being negotiated grew too old.
    UnknownSpi,
    /// RFC 4303 §3.4.3: a duplicate or older than the window.
    Replay,
    /// RFC 4303 §3.4.4: the ICV did not verify.
    BadIcv,
    /// RFC 4303 §2.4: padding wrong after decryption, or the ciphertext
    /// not block aligned.
    BadPadding,
    /// The SA is past its hard lifetime.
    Expired,
    /// Decrypted, but not what the SA carries: not UDP to the L2TP port
    /// (L2TP/IPsec), or not from the client's own address (IKEv2 tunnel
    /// mode, RFC 4301 §5.2).
    Selector,
}

impl EspDrop {
    const ALL: [EspDrop; 7] = [
        EspDrop::Malformed,
        EspDrop::UnknownSpi,
        EspDrop::Replay,
        EspDrop::BadIcv,
        EspDrop::BadPadding,
        EspDrop::Expired,
        EspDrop::Selector,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            EspDrop::Malformed => "malformed",
            EspDrop::UnknownSpi => "unknown_spi",
            EspDrop::Replay => "replay",
            EspDrop::BadIcv => "bad_icv",
            EspDrop::BadPadding => "bad_padding",
            EspDrop::Expired => "expired",
            EspDrop::Selector => "selector",
        }
    }

    /// The reason of a decapsulation error.
    pub fn of(error: &ipsec::esp::EspError) -> EspDrop {
        use ipsec::esp::EspError as E;
        match error {
            E::UnknownSpi(_) => EspDrop::UnknownSpi,
            E::Replayed(_) => EspDrop::Replay,
            E::AuthenticationFailed => EspDrop::BadIcv,
            E::BadPadding | E::Misaligned(_) => EspDrop::BadPadding,
            E::Expired | E::SequenceExhausted => EspDrop::Expired,
            _ => EspDrop::Malformed,
        }
    }
}

/// IKE drops of one version, mirrored from its responder's statistics.
#[derive(Debug, Default)]
struct IkeDrops {
    /// Not an IKE message, or out of the exchange's window.
    malformed: AtomicU64,
    /// For an IKE SA we do not have.
    unknown_sa: AtomicU64,
    /// Refused by policy (IKEv1 Aggressive Mode, IKEv1 when it is off).
    refused: AtomicU64,
    /// New negotiations refused: too many half-open at once (the rate
    /// limit).
    rate_limited: AtomicU64,
    /// Encrypted messages whose integrity check failed.
    integrity_failed: AtomicU64,
}

impl IkeDrops {
    fn counts(&self, protocol: &'static str, out: &mut Vec<(&'static str, &'static str, u64)>) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push((protocol, "malformed", get(&self.malformed)));
        out.push((protocol, "unknown_sa", get(&self.unknown_sa)));
        out.push((protocol, "refused", get(&self.refused)));
        out.push((protocol, "rate_limited", get(&self.rate_limited)));
        out.push((protocol, "integrity_failed", get(&self.integrity_failed)));
    }
}

/// The counters, shared by the front end's task (which counts) and the
/// admin API (which reads).
#[derive(Debug, Default)]
pub struct IpsecCounters {
    esp: [AtomicU64; EspDrop::ALL.len()],
    ikev1: IkeDrops,
    ikev2: IkeDrops,
    /// IKEv1 messages dropped because `[ipsec] ikev1 = false`: counted
    /// here, not by the responder, which never sees them.
    ikev1_off: AtomicU64,
    /// ESP drops not yet logged, and when the last summary was.
    log: Mutex<(u64, Option<Instant>)>,
}

impl IpsecCounters {
    /// One ESP packet from `peer` (unknown for raw ESP read in batches)
    /// dropped for `why`; logs a summary when one is due.
    pub(crate) fn esp_dropped(
        &self,
        why: EspDrop,
        peer: Option<SocketAddr>,
        detail: &dyn std::fmt::Display,
    ) {
        self.esp[why as usize].fetch_add(1, Ordering::Relaxed);
        self.esp_drops_logged(1, why, peer, detail);
    }

    /// `n` more drops of `why` for the summary line.
    fn esp_drops_logged(
        &self,
        n: u64,
        why: EspDrop,
        peer: Option<SocketAddr>,
        detail: &dyn std::fmt::Display,
    ) {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.0 += n;
        if log
            .1
            .is_none_or(|t| now.duration_since(t) >= DROP_LOG_INTERVAL)
        {
            let from = match peer {
                Some(p) => format!(" from {p}"),
                None => String::new(),
            };
            tracing::info!(
                "IPsec: ESP packets dropped: {} (last: {}{from}: {detail})",
                log.0,
                why.name()
            );
            *log = (0, Some(now));
        }
    }

    /// The IKEv2 part counts its selector drops itself, as a plain number
    /// in its task: `from_ikev2` is that number now, `last_seen` what was
    /// added from it before.
    pub(crate) fn add_ikev2_selector_drops(&self, from_ikev2: u64, last_seen: &mut u64) {
        if from_ikev2 > *last_seen {
            let n = from_ikev2 - *last_seen;
            self.esp[EspDrop::Selector as usize].fetch_add(n, Ordering::Relaxed);
            self.esp_drops_logged(
                n,
                EspDrop::Selector,
                None,
                &"an IKEv2 tunnel packet not from the client's address",
            );
            *last_seen = from_ikev2;
        }
    }

    /// An IKEv1 message dropped because IKEv1 is off.
    pub(crate) fn ikev1_off(&self) {
        self.ikev1_off.fetch_add(1, Ordering::Relaxed);
    }

    /// The IKEv1 responder's statistics now.
    pub(crate) fn set_ikev1(&self, s: ipsec::ikev1::ResponderStats) {
        let d = &self.ikev1;
        d.malformed.store(s.malformed, Ordering::Relaxed);
        d.unknown_sa.store(s.unknown_sa, Ordering::Relaxed);
        d.refused.store(s.refused, Ordering::Relaxed);
        d.rate_limited.store(s.half_open_refused, Ordering::Relaxed);
    }

    /// The IKEv2 responder's statistics now.
    pub(crate) fn set_ikev2(&self, s: ipsec::ikev2::Ikev2Stats) {
        let d = &self.ikev2;
        d.malformed.store(s.malformed, Ordering::Relaxed);
        d.unknown_sa.store(s.unknown_sa, Ordering::Relaxed);
        d.refused.store(s.refused, Ordering::Relaxed);
        d.rate_limited.store(s.half_open_refused, Ordering::Relaxed);
        d.integrity_failed
            .store(s.integrity_failed, Ordering::Relaxed);
    }

    /// Every counter as `(protocol, reason, count)`: protocol "esp",
    /// "ikev1" or "ikev2"; zeros included, so rates work from the start.
    pub fn counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for why in EspDrop::ALL {
            out.push((
                "esp",
                why.name(),
                self.esp[why as usize].load(Ordering::Relaxed),
            ));
        }
        self.ikev1.counts("ikev1", &mut out);
        // One reason for both: IKEv1 refused by configuration.
        if let Some(refused) = out
            .iter_mut()
            .find(|(p, r, _)| *p == "ikev1" && *r == "refused")
        {
            refused.2 += self.ikev1_off.load(Ordering::Relaxed);
        }
        self.ikev2.counts("ikev2", &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &IpsecCounters, protocol: &str, reason: &str) -> u64 {
        c.counts()
            .into_iter()
            .find(|(p, r, _)| *p == protocol && *r == reason)
            .map(|(_, _, n)| n)
            .unwrap()
    }

    #[test]
    fn esp_errors_count_under_their_reason() {
        use ipsec::esp::EspError as E;
        let c = IpsecCounters::default();
        for e in [
            E::UnknownSpi(7),
            E::Replayed(1),
            E::Replayed(2),
            E::AuthenticationFailed,
            E::Truncated(3),
        ] {
            c.esp_dropped(EspDrop::of(&e), None, &e);
        }
        assert_eq!(count(&c, "esp", "unknown_spi"), 1);
        assert_eq!(count(&c, "esp", "replay"), 2);
        assert_eq!(count(&c, "esp", "bad_icv"), 1);
        assert_eq!(count(&c, "esp", "malformed"), 1);
        assert_eq!(count(&c, "esp", "selector"), 0);
        let mut seen = 0;
        c.add_ikev2_selector_drops(3, &mut seen);
        c.add_ikev2_selector_drops(3, &mut seen);
        c.add_ikev2_selector_drops(5, &mut seen);
        assert_eq!(count(&c, "esp", "selector"), 5);
    }

    #[test]
    fn ike_statistics_are_mirrored_and_ikev1_off_is_a_refusal() {
        let c = IpsecCounters::default();
        c.set_ikev2(ipsec::ikev2::Ikev2Stats {
            malformed: 4,
            unknown_sa: 2,
            integrity_failed: 1,
            half_open_refused: 9,
            ..Default::default()
        });
        c.set_ikev1(ipsec::ikev1::ResponderStats {
            refused: 1,
            ..Default::default()
        });
        c.ikev1_off();
        assert_eq!(count(&c, "ikev2", "malformed"), 4);
        assert_eq!(count(&c, "ikev2", "unknown_sa"), 2);
        assert_eq!(count(&c, "ikev2", "integrity_failed"), 1);
        assert_eq!(count(&c, "ikev2", "rate_limited"), 9);
        assert_eq!(count(&c, "ikev1", "refused"), 2);
    }
}
