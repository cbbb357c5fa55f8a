//! IKE SA rekeying from the client (RFC 7296 §1.3.2, §2.18).
//!
//! A client that never rekeys its IKE SA loses the tunnel when the server's
//! IKE SA lifetime ends (strongSwan rekeys after 4 h by default). We rekey
//! ourselves before that: CREATE_CHILD_SA with an IKE proposal (our new
//! SPI), a nonce and a new key exchange in the group of the current SA;
//! the new IKE SA's keys come from the old SK_d (§2.18), its Message IDs
//! start at zero, the child SAs move to it unchanged, and the old IKE SA is
//! deleted with an INFORMATIONAL request on the old SA.
//!
//! A server that starts an IKE SA rekey itself gets TEMPORARY_FAILURE
//! (§2.25: "retry later") and ours starts at once: we stay the original
//! initiator of every IKE SA, which the rest of the initiator assumes (our
//! keys are SK_ei/SK_ai, our requests carry the Initiator flag).

use std::time::{Duration, Instant};

use crate::ike_crypto::ikev2_keys::{ike_sa_keys, rekey_skeyseed};
use crate::ike_crypto::DhPrivate;

use super::initiator::{Ikev2ClientEvent, Ikev2Initiator, Purpose};
use super::payloads::{Delete, KeyExchange};
use super::proposal::choose_ike;
use super::sa_payload::{self, protocol, Proposal};
use super::wire::{self, exchange, flags, payload, Header, PayloadChain};

/// A failed or refused rekey is tried again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The IKE SA being replaced: the Delete on it is retransmitted until the
/// server answers or the usual give-up time passes.
pub(crate) struct RetiringSa {
    pub spi_i: [u8; 8],
    pub datagrams: Vec<Vec<u8>>,
    pub first_sent: Instant,
    pub next_retransmit: usize,
}

/// What our IKE SA rekey request remembers.
pub(crate) struct IkeRekeyRequest {
    pub new_spi_i: [u8; 8],
    pub nonce: Vec<u8>,
    pub dh: DhPrivate,
}

impl Ikev2Initiator {
    /// When the IKE SA is rekeyed: its lifetime times the rekey share.
    pub(crate) fn ike_rekey_after(&self) -> Duration {
        self.config.ike_lifetime * self.config.rekey_percent.min(100) / 100
    }

    /// How many times the IKE SA was rekeyed.
    pub fn ike_rekeys(&self) -> u64 {
        self.ike_rekeys
    }

    /// Whether an IKE SA rekey should start now.
    pub(crate) fn ike_rekey_due(&self, now: Instant) -> bool {
        self.ike_rekey_at.is_some_and(|at| now >= at)
    }

    /// Whether our IKE SA rekey request is in flight.
    pub(crate) fn ike_rekey_in_flight(&self) -> bool {
        self.outstanding
            .as_ref()
            .is_some_and(|o| matches!(o.purpose, Purpose::RekeyIke(_)))
    }

    /// The server asked for an IKE SA rekey of its own: refused, and ours
    /// is due now.
    pub(crate) fn server_wants_ike_rekey(&mut self, now: Instant) {
        if !self.ike_rekey_in_flight() {
            self.ike_rekey_at = Some(now);
        }
    }

    /// §1.3.2: CREATE_CHILD_SA with SA (IKE, our new SPI), Ni, KEi.
    pub(crate) fn start_ike_rekey(&mut self, now: Instant) {
        self.ike_rekey_at = None;
        let Some(chosen) = self.ike_proposal.clone() else {
            return;
        };
        let group = self.ike_group;
        let dh = match DhPrivate::generate(group) {
            Ok(dh) => dh,
            Err(_) => {
                self.ike_rekey_at = Some(now + RETRY_AFTER);
                return;
            }
        };
        let mut new_spi_i = [0u8; 8];
        while new_spi_i == [0; 8] || new_spi_i == self.spi_i {
            let _ = aws_lc_rs::rand::fill(&mut new_spi_i);
        }
        let mut nonce = vec![0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut nonce);
        // The proposal the server chose in IKE_SA_INIT, with our new SPI
        // (§3.3.1: an IKE proposal in CREATE_CHILD_SA carries the SPI).
        let proposal = Proposal {
            number: 1,
            protocol: protocol::IKE,
            spi: new_spi_i.to_vec(),
            transforms: chosen.transforms,
        };
        let mut chain = PayloadChain::new();
        chain.push(payload::SA, &sa_payload::encode(&[proposal]));
        chain.push(payload::NONCE, &nonce);
        chain.push(
            payload::KE,
            &KeyExchange::encode(group.id(), dh.public_value()),
        );
        self.send_request(
            now,
            exchange::CREATE_CHILD_SA,
            &chain,
            Purpose::RekeyIke(Box::new(IkeRekeyRequest {
                new_spi_i,
                nonce,
                dh,
            })),
        );
    }

    /// The answer to our IKE SA rekey.
    pub(crate) fn ike_rekey_response(
        &mut self,
        now: Instant,
        first: u8,
        inner: &[u8],
        request: IkeRekeyRequest,
    ) {
        let Ok(chain) = wire::payloads(first, inner) else {
            self.ike_rekey_failed(now, "a malformed answer".into());
            return;
        };
        if let Some(error) = Self::error_notify(first, inner) {
            self.ike_rekey_failed(now, error);
            return;
        }
        let Some((sa, ke, nr)) = super::initiator_exchanges::sa_ke_nonce(&chain) else {
            self.ike_rekey_failed(now, "an answer without SA, KE or nonce".into());
            return;
        };
        let group = request.dh.group();
        let choice = match choose_ike(&sa, &self.our_policy(), group.id()) {
            Ok(c) if sa.len() == 1 && ke.group == group.id() => c,
            _ => {
                self.ike_rekey_failed(now, "a proposal we did not offer".into());
                return;
            }
        };
        let Some(new_spi_r) = sa
            .first()
            .and_then(|p| <[u8; 8]>::try_from(p.spi.as_slice()).ok())
            .filter(|spi| *spi != [0; 8])
        else {
            self.ike_rekey_failed(now, "an IKE proposal without an SPI".into());
            return;
        };
        let Ok(shared) = request.dh.agree(ke.data) else {
            self.ike_rekey_failed(now, "an invalid key exchange value".into());
            return;
        };
        let Some(old_keys) = self.keys.as_ref() else {
            return;
        };
        // §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the
        // old SA's PRF; the seven keys then use the new SA's PRF and SPIs.
        let seed = rekey_skeyseed(self.prf, &old_keys.sk_d, &shared, &request.nonce, nr);
        let keys = ike_sa_keys(
            choice.prf,
            &seed,
            &request.nonce,
            nr,
            &request.new_spi_i,
            &new_spi_r,
            choice.protection.key_lengths(),
        );
        // §1.4.1, §2.18: the old IKE SA is deleted on itself; its children
        // have moved to the new one, so they stay.
        let mut delete = PayloadChain::new();
        delete.push(
            payload::DELETE,
            &Delete {
                protocol: protocol::IKE,
                spis: Vec::new(),
            }
            .encode(),
        );
        let old_message_id = self.next_message_id;
        let old_delete = self.seal(exchange::INFORMATIONAL, old_message_id, false, &delete);
        let old_spi_i = self.spi_i;
        self.spi_i = request.new_spi_i;
        self.spi_r = new_spi_r;
        self.ni = request.nonce;
        self.nr = nr.to_vec();
        self.prf = choice.prf;
        self.protection = Some(choice.protection);
        self.keys = Some(keys);
        self.ike_proposal = Some(choice.reply);
        self.ike_group = choice.group;
        // §2.18: "The new IKE SA MUST reset its message counters to 0."
        self.next_message_id = 0;
        self.server_next_request = 0;
        self.last_answer = None;
        self.reassembly = None;
        self.ike_rekey_at = Some(now + self.ike_rekey_after());
        self.ike_rekeys += 1;
        if let Some(datagrams) = old_delete {
            for bytes in &datagrams {
                self.push_transmit(bytes.clone());
            }
            self.retiring = Some(RetiringSa {
                spi_i: old_spi_i,
                datagrams,
                first_sent: now,
                next_retransmit: 0,
            });
        }
        self.events.push_back(Ikev2ClientEvent::IkeSaRekeyed);
    }

    fn ike_rekey_failed(&mut self, now: Instant, why: String) {
        self.ike_rekey_at = Some(now + RETRY_AFTER);
        self.events
            .push_back(Ikev2ClientEvent::IkeSaRekeyFailed { reason: why });
    }

    /// A datagram for the IKE SA being retired: the answer to its Delete.
    /// Returns true when it was one (and is consumed).
    pub(crate) fn retiring_answer(&mut self, header: &Header) -> bool {
        let ours = self
            .retiring
            .as_ref()
            .is_some_and(|r| r.spi_i == header.spi_i);
        if ours && header.is_response() && header.flags & flags::INITIATOR == 0 {
            self.retiring = None;
        }
        ours
    }

    /// Retransmits the old SA's Delete; gives up quietly (the server's
    /// own liveness checks remove the old SA then).
    pub(crate) fn retiring_timeout(&mut self, now: Instant) {
        let give_up = self.config.give_up_after;
        let Some(r) = self.retiring.as_mut() else {
            return;
        };
        if now >= r.first_sent + give_up {
            self.retiring = None;
            return;
        }
        let Some(at) = self.config.retransmit_at.get(r.next_retransmit) else {
            return;
        };
        if now >= r.first_sent + *at {
            r.next_retransmit += 1;
            let datagrams = r.datagrams.clone();
            for bytes in datagrams {
                self.push_transmit(bytes);
            }
        }
    }

    /// When the retiring SA's Delete is next retransmitted or given up.
    pub(crate) fn retiring_deadline(&self) -> Option<Instant> {
        let r = self.retiring.as_ref()?;
        Some(match self.config.retransmit_at.get(r.next_retransmit) {
            Some(at) => r.first_sent + *at,
            None => r.first_sent + self.config.give_up_after,
        })
    }
}

/// Whether a CREATE_CHILD_SA request asks for a new IKE SA (§1.3.2: its SA
/// payload holds IKE proposals, and there is no REKEY_SA notify).
pub(crate) fn is_ike_sa_request(chain: &[wire::RawPayload<'_>]) -> bool {
    wire::find(chain, payload::SA)
        .and_then(|b| sa_payload::parse(b).ok())
        .is_some_and(|proposals| proposals.iter().any(|p| p.protocol == protocol::IKE))
}
