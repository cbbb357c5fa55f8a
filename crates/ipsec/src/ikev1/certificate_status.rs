//! The asynchronous certificate-status step of the responder: Main Mode
//! with a certificate finished, the driver asks OCSP (RFC 6960) or the
//! certificate's CRL distribution point (RFC 5280 §4.2.1.13) about it,
//! and only then is Quick Mode answered. A refused certificate (or no
//! answer by the deadline) ends the IKE SA with a Delete (RFC 2408
//! §4.6.3, RFC 2409 §5.5 for the Informational exchange that carries it),
//! before any ESP SA, L2TP tunnel or address exists for it.
//!
//! The core does no I/O: it emits
//! [`IkeEvent::CertificateStatusNeeded`](super::IkeEvent) and takes the
//! answer here.

use std::time::Instant;

use super::events::{DownReason, IkeSaId};
use super::ike_sa::Phase;
use super::responder::Responder;

impl Responder {
    /// The driver's answer for `ike_sa`'s certificate: `Ok` lets Quick
    /// Mode go on (the peer's next retransmission is answered); `Err`
    /// (why, for the log: the serial, the source and the reason) deletes
    /// the IKE SA and tells the peer. An answer for an SA that is gone, or
    /// that is not waiting, changes nothing.
    pub fn certificate_status(
        &mut self,
        now: Instant,
        ike_sa: IkeSaId,
        status: Result<(), String>,
    ) {
        let Some(&cookie) = self.ids.get(&ike_sa) else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&cookie) else {
            return;
        };
        if sa.phase != Phase::Established || sa.status_pending.is_none() {
            return;
        }
        match status {
            Ok(()) => sa.status_pending = None,
            Err(why) => self.delete_ike_sa(now, cookie, DownReason::CertificateRefused(why), true),
        }
    }

    /// Whether `ike_sa` waits for its certificate's status.
    pub fn certificate_status_pending(&self, ike_sa: IkeSaId) -> bool {
        self.ids
            .get(&ike_sa)
            .and_then(|c| self.sas.get(c))
            .is_some_and(|sa| sa.status_pending.is_some())
    }

    /// SAs whose driver did not answer in time are refused: without an
    /// answer nothing says the certificate is good.
    pub(crate) fn expire_status_checks(&mut self, now: Instant) {
        let late: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.phase == Phase::Established)
            .filter(|(_, sa)| sa.status_pending.is_some_and(|d| now >= d))
            .map(|(c, _)| *c)
            .collect();
        let secs = self.config.certificate_status_timeout.as_secs();
        for c in late {
            let why = format!("no certificate status within {secs} s");
            self.delete_ike_sa(now, c, DownReason::CertificateRefused(why), true);
        }
    }
}
