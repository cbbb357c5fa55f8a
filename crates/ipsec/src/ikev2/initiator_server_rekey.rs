//! CREATE_CHILD_SA requests from the server (RFC 7296 §1.3.3): a server
//! may rekey a child SA itself — strongSwan does at its own rekey time,
//! and when its ESP cannot follow a MOBIKE address update in place
//! (kernel-libipsec). We answer as the exchange's responder; a new child
//! the server wants besides the tunnel, or PFS (a KE payload), is refused.

use std::time::Instant;

use super::initiator::{child_event, random_spi, ClientChild, Ikev2ClientEvent, Ikev2Initiator};
use super::notify;
use super::payloads::Notify;
use super::proposal::choose_child;
use super::sa_payload::{self, protocol};
use super::wire::{self, payload, PayloadChain};

impl Ikev2Initiator {
    /// The answer to the server's CREATE_CHILD_SA request.
    pub(crate) fn server_create_child(
        &mut self,
        now: Instant,
        first: u8,
        inner: &[u8],
    ) -> PayloadChain {
        let refuse = |kind: u16| {
            let mut chain = PayloadChain::new();
            chain.push(payload::NOTIFY, &Notify::encode(kind, &[]));
            chain
        };
        let Ok(chain) = wire::payloads(first, inner) else {
            return refuse(notify::INVALID_SYNTAX);
        };
        // §2.25: while our IKE SA rekey is in flight, the server's
        // CREATE_CHILD_SA waits ("retry later").
        if self.ike_rekey_in_flight() {
            return refuse(notify::TEMPORARY_FAILURE);
        }
        // A new IKE SA from the server: we make it ourselves instead, at
        // once (initiator_ike_rekey.rs says why).
        if super::initiator_ike_rekey::is_ike_sa_request(&chain) {
            self.server_wants_ike_rekey(now);
            return refuse(notify::TEMPORARY_FAILURE);
        }
        // §3.10.1: REKEY_SA names the SA by the sender's inbound SPI,
        // which is our outbound one.
        let rekeyed = wire::notifies(&chain)
            .find(|n| n.kind == notify::REKEY_SA && n.protocol == protocol::ESP)
            .and_then(|n| <[u8; 4]>::try_from(n.spi).ok())
            .map(u32::from_be_bytes);
        let Some(old_outbound) = rekeyed else {
            // Only the tunnel's child SA is wanted (§1.3.1 lets us refuse).
            return refuse(notify::NO_ADDITIONAL_SAS);
        };
        let Some(old_index) = self
            .children
            .iter()
            .position(|c| c.outbound_spi == old_outbound)
        else {
            return refuse(notify::CHILD_SA_NOT_FOUND);
        };
        let sa = wire::find(&chain, payload::SA).and_then(|b| sa_payload::parse(b).ok());
        let ni = wire::find(&chain, payload::NONCE).map(|b| b.to_vec());
        let tsi = wire::find(&chain, payload::TSI).map(|b| b.to_vec());
        let tsr = wire::find(&chain, payload::TSR).map(|b| b.to_vec());
        let (Some(sa), Some(ni), Some(tsi), Some(tsr)) = (sa, ni, tsi, tsr) else {
            return refuse(notify::INVALID_SYNTAX);
        };
        if wire::find(&chain, payload::KE).is_some() {
            // PFS in a rekey: not offered by us, so not accepted here.
            return refuse(notify::NO_PROPOSAL_CHOSEN);
        }
        let Ok(choice) = choose_child(&sa, &self.our_policy(), None) else {
            return refuse(notify::NO_PROPOSAL_CHOSEN);
        };
        let new_inbound_spi = random_spi();
        let mut nr = vec![0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut nr);
        // §2.17: the keys for the exchange initiator's (the server's)
        // traffic come first, then ours: the reverse of our own rekeys, so
        // the halves are swapped.
        let Some((mut outbound, mut inbound)) = self.client_child_keys(
            None,
            &ni,
            &nr,
            choice.suite,
            choice.peer_spi,
            new_inbound_spi,
        ) else {
            return refuse(notify::NO_PROPOSAL_CHOSEN);
        };
        inbound.replay_window = self.config.replay_window;
        outbound.replay_window = 0;
        let old = &mut self.children[old_index];
        old.rekeying = true;
        let old = old.clone();
        let child = ClientChild {
            inbound_spi: new_inbound_spi,
            outbound_spi: choice.peer_spi,
            suite: choice.suite,
            created: now,
            client_selectors: old.client_selectors.clone(),
            server_selectors: old.server_selectors.clone(),
            rekeying: false,
        };
        let event = child_event(self, inbound, outbound, &child, Some(old.inbound_spi));
        self.children.push(child);
        self.events
            .push_back(Ikev2ClientEvent::ChildSaUp(Box::new(event)));
        // The server deletes the old child when it is done with it.
        let mut reply = choice.reply.clone();
        reply.spi = new_inbound_spi.to_be_bytes().to_vec();
        let mut answer = PayloadChain::new();
        answer.push(payload::SA, &sa_payload::encode(&[reply]));
        answer.push(payload::NONCE, &nr);
        answer.push(payload::TSI, &tsi);
        answer.push(payload::TSR, &tsr);
        answer
    }
}

#[cfg(test)]
#[path = "initiator_server_rekey_tests.rs"]
mod tests;
