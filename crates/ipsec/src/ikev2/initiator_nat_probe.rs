//! The client's half of the NAT-timeout probe extension (`nat_probe`):
//! offered in IKE_AUTH; when the server agreed and a NAT is on the path,
//! a [`NatTimeoutMeter`] asks for delayed probes while keepalives and
//! liveness checks are held back, and the keepalive interval follows the
//! result.

use std::time::{Duration, Instant};

use super::events::Transmit;
use super::initiator::{Ikev2ClientEvent, Ikev2Initiator, Purpose};
use super::nat_probe::{self, NatTimeoutMeter, NatTimeoutStatus, ProbeOutcome, ProbeRequest};
use super::payloads::Notify;
use super::wire::{self, exchange, payload, PayloadChain};

impl Ikev2Initiator {
    pub(crate) fn behind_nat(&self) -> bool {
        self.nat.peer_behind_nat || self.nat.local_behind_nat
    }

    /// The tunnel is up (`agreed`: the server echoed NAT_PROBE_SUPPORTED):
    /// use a remembered timeout, or start measuring.
    pub(crate) fn nat_probe_established(&mut self, now: Instant, agreed: bool) {
        self.server_nat_probe = agreed;
        self.nat_meter = None;
        let Some(settings) = self.config.nat_probe else {
            return;
        };
        if !self.behind_nat() {
            return;
        }
        if let Some(known) = self.config.known_nat_timeout {
            let keepalive = settings.keepalive_for(known);
            self.keepalive_interval = keepalive;
            self.nat_status = NatTimeoutStatus::Measured {
                timeout: known,
                keepalive,
                remembered: true,
            };
            return;
        }
        if !agreed {
            self.nat_status = NatTimeoutStatus::Unsupported;
            return;
        }
        self.nat_status = NatTimeoutStatus::Measuring;
        let mut seed = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        self.nat_meter = Some(NatTimeoutMeter::new(
            settings,
            now,
            u32::from_be_bytes(seed),
        ));
    }

    /// What the NAT-timeout measurement came to so far.
    pub fn nat_timeout(&self) -> NatTimeoutStatus {
        self.nat_status
    }

    /// The NAT keepalive interval in use (RFC 3948 §2.3).
    pub fn keepalive_interval(&self) -> Duration {
        self.keepalive_interval
    }

    /// ESP went out: a probe awaited now says nothing about the mapping.
    pub fn note_sent(&mut self, _now: Instant) {
        self.taint_probe();
    }

    pub(crate) fn taint_probe(&mut self) {
        if let Some(meter) = &mut self.nat_meter {
            meter.taint();
        }
    }

    /// While a probe is awaited, keepalives and liveness checks wait.
    pub(crate) fn probe_quiet(&self) -> bool {
        self.nat_meter.as_ref().is_some_and(|m| m.quiet())
    }

    pub(crate) fn probe_deadline(&self) -> Option<Instant> {
        if !self.behind_nat() {
            return None;
        }
        let meter = self.nat_meter.as_ref()?;
        // A request is only started with nothing in flight; until then
        // the answer to what is in flight wakes us.
        if !meter.quiet() && self.outstanding.is_some() {
            return None;
        }
        meter.next_deadline()
    }

    /// Sends a probe request when one is due (called with nothing in
    /// flight); true when it did.
    pub(crate) fn start_probe_if_due(&mut self, now: Instant) -> bool {
        if !self.behind_nat() {
            return false;
        }
        let Some(request) = self.nat_meter.as_mut().and_then(|m| m.request_due(now)) else {
            return false;
        };
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode(nat_probe::DELAYED_PROBE_REQUEST, &request.encode()),
        );
        self.send_request(
            now,
            exchange::INFORMATIONAL,
            &chain,
            Purpose::NatProbe(request),
        );
        true
    }

    /// The server answered our DELAYED_PROBE_REQUEST.
    pub(crate) fn probe_request_answered(&mut self, now: Instant, _request: ProbeRequest) {
        if let Some(meter) = &mut self.nat_meter {
            meter.answered(now);
        }
    }

    /// A request from the server: a DELAYED_PROBE counts for the meter,
    /// anything else taints an awaited probe.
    pub(crate) fn server_request_seen(&mut self, now: Instant, first: u8, inner: &[u8]) {
        let cookie = wire::payloads(first, inner).ok().and_then(|chain| {
            wire::notifies(&chain)
                .find(|n| n.kind == nat_probe::DELAYED_PROBE)
                .and_then(|n| nat_probe::parse_probe(n.data).ok())
        });
        let Some(meter) = &mut self.nat_meter else {
            return;
        };
        match cookie {
            Some(cookie) => {
                if let Some(outcome) = meter.probe_arrived(now, cookie) {
                    self.probe_outcome(now, outcome, false);
                }
            }
            None => meter.taint(),
        }
    }

    /// Checks the meter's deadline.
    pub(crate) fn poll_probe(&mut self, now: Instant) {
        let Some(outcome) = self.nat_meter.as_mut().and_then(|m| m.poll(now)) else {
            return;
        };
        // From the deadline: the probe was lost (or the wait tainted).
        self.probe_outcome(now, outcome, true);
    }

    fn probe_outcome(&mut self, now: Instant, outcome: ProbeOutcome, at_deadline: bool) {
        match outcome {
            ProbeOutcome::Survived(_) | ProbeOutcome::Inconclusive => {}
            ProbeOutcome::Expired(_) => self.recreate_mapping(now),
            ProbeOutcome::Measured { timeout, keepalive } => {
                self.keepalive_interval = keepalive;
                self.nat_status = NatTimeoutStatus::Measured {
                    timeout,
                    keepalive,
                    remembered: false,
                };
                self.events
                    .push_back(Ikev2ClientEvent::NatTimeoutMeasured { timeout, keepalive });
                if at_deadline {
                    // The last probe was lost.
                    self.recreate_mapping(now);
                }
            }
        }
    }

    /// The mapping expired (or may have): a keepalive re-creates it at
    /// once, and an authenticated request tells the server where we are now
    /// (RFC 7296 §2.23; with MOBIKE an UPDATE_SA_ADDRESSES, RFC 4555 §3.5,
    /// so the server's ESP follows a new port too). The server's
    /// retransmitted probe then finds us.
    fn recreate_mapping(&mut self, now: Instant) {
        self.last_keepalive = now;
        self.transmits.push_back(Transmit {
            remote: self.remote,
            from_nat_t_port: true,
            bytes: vec![crate::udp_encap::NAT_KEEPALIVE],
        });
        if self.server_mobike && self.config.mobike {
            self.address_update_due = true;
        } else {
            // Due at once: start_due_work sends the liveness check.
            self.liveness_due = true;
        }
        self.start_due_work(now);
    }

    /// The SA moved to another network: what was measured (or
    /// remembered) no longer holds; measure again.
    pub(crate) fn restart_nat_measurement(&mut self, now: Instant) {
        self.keepalive_interval = self.config.keepalive_interval;
        self.config.known_nat_timeout = None;
        self.nat_status = NatTimeoutStatus::Off;
        let agreed = self.server_nat_probe;
        self.nat_probe_established(now, agreed);
    }
}
