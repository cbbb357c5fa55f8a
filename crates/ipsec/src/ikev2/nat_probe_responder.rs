//! The server's half of the NAT-timeout probe extension (see
//! `nat_probe`): a DELAYED_PROBE_REQUEST is answered at once by the
//! INFORMATIONAL exchange it came in, and `delay` later (clamped to 1 s ...
//! 600 s) an INFORMATIONAL request of ours carries DELAYED_PROBE. It goes
//! through the same path as our liveness checks: retransmitted every 5 s
//! and the SA given up only after `liveness_timeout` without an answer,
//! so a probe never kills a healthy SA sooner than a liveness check would.

use std::time::Instant;

use super::nat_probe::{self, ProbeRequest};
use super::payloads::Notify;
use super::responder::Ikev2Responder;
use super::wire::{exchange, payload, PayloadChain};

impl Ikev2Responder {
    /// A DELAYED_PROBE_REQUEST arrived on `spi_r`'s SA: schedules the probe
    /// (replacing any pending one). Refused (logged) when the extension was
    /// not agreed or the data is malformed; the INFORMATIONAL is answered
    /// as usual either way.
    pub(crate) fn schedule_probe(&mut self, now: Instant, spi_r: [u8; 8], data: &[u8]) {
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        if !sa.nat_probe {
            self.refuse(
                peer,
                "DELAYED_PROBE_REQUEST ignored: the NAT probe extension was not agreed".into(),
            );
            return;
        }
        match ProbeRequest::parse(data) {
            Ok(request) => {
                sa.pending_probe = Some((now + request.clamped_delay(), request.cookie));
            }
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(peer, format!("DELAYED_PROBE_REQUEST ignored: {e}"));
            }
        }
    }

    /// Sends the SA's pending probe (the caller checked it is due and no
    /// request of ours is in flight).
    pub(crate) fn send_probe(&mut self, now: Instant, spi_r: [u8; 8]) {
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let Some((_, cookie)) = sa.pending_probe.take() else {
            return;
        };
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode(nat_probe::DELAYED_PROBE, &nat_probe::encode_probe(cookie)),
        );
        self.request(now, spi_r, exchange::INFORMATIONAL, &chain);
    }
}
