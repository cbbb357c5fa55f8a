//! INFORMATIONAL requests (RFC 7296 §1.4, §2.4): liveness checks, Deletes
//! of child SAs and of the IKE SA itself; and CREATE_CHILD_SA (§1.3):
//! rekeying a child SA with or without a new key exchange, and rekeying
//! the IKE SA (§2.18).

use std::time::Instant;

use crate::ike_crypto::ikev2_keys::{ike_sa_keys, rekey_skeyseed};
use crate::ike_crypto::{DhStock, HashAlg};
use crate::ikev1::nat_detection::{nat_d, NatState};

use super::events::{ChildSa, DownReason, Ikev2Event};
use super::ike_auth::child_keys;
use super::ike_sa::{ChildRecord, IkeSa, Stage};
use super::notify;
use super::payloads::{parse_nonce, Delete, KeyExchange, Notify};
use super::proposal::{choose_child, choose_ike, describe_offer, IkeRefusal};
use super::responder::Ikev2Responder;
use super::sa_payload::{self, protocol};
use super::traffic_selectors;
use super::wire::{self, exchange, payload, Header, PayloadChain};

impl Ikev2Responder {
    pub(crate) fn informational(&mut self, now: Instant, header: &Header, first: u8, inner: &[u8]) {
        let spi_r = header.spi_r;
        let Ok(chain) = wire::payloads(first, inner) else {
            self.stats.malformed += 1;
            return;
        };
        let mut delete_ike = false;
        let mut deleted_children: Vec<[u8; 4]> = Vec::new();
        let mut update_addresses = false;
        let mut cookie2 = None;
        let mut nat_source = Vec::new();
        let mut nat_destination = None;
        let mut probe_request = None;
        for p in &chain {
            match p.kind {
                payload::DELETE => match Delete::parse(p.body) {
                    Ok(d) if d.protocol == protocol::IKE => delete_ike = true,
                    Ok(d) if d.protocol == protocol::ESP => deleted_children.extend(d.spis),
                    _ => {}
                },
                payload::NOTIFY => match Notify::parse(p.body) {
                    Ok(n) if n.kind == notify::UPDATE_SA_ADDRESSES => update_addresses = true,
                    Ok(n) if n.kind == notify::COOKIE2 => cookie2 = Some(n.data.to_vec()),
                    Ok(n) if n.kind == super::nat_probe::DELAYED_PROBE_REQUEST => {
                        probe_request = Some(n.data.to_vec())
                    }
                    Ok(n) if n.kind == notify::NAT_DETECTION_SOURCE_IP => {
                        nat_source.push(n.data.to_vec())
                    }
                    Ok(n) if n.kind == notify::NAT_DETECTION_DESTINATION_IP => {
                        nat_destination = Some(n.data.to_vec())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let mut reply = PayloadChain::new();
        if let Some(cookie) = &cookie2 {
            // RFC 4555 §3.8: the return routability check echoes COOKIE2.
            reply.push(payload::NOTIFY, &Notify::encode(notify::COOKIE2, cookie));
        }
        if let Some(data) = &probe_request {
            self.schedule_probe(now, spi_r, data);
        }
        if update_addresses {
            self.update_addresses(spi_r, &nat_source, nat_destination.as_deref(), &mut reply);
        }
        if delete_ike {
            // §1.4.1: the answer to an IKE SA Delete is empty; then the SA
            // and all its children are gone.
            self.respond(spi_r, exchange::INFORMATIONAL, header.message_id, &reply);
            self.remove_sa(spi_r, DownReason::DeletedByPeer);
            return;
        }
        if !deleted_children.is_empty() {
            // The SPIs name the peer's inbound SAs, i.e. our outbound ones;
            // §1.4.1: we answer with the SPIs of our inbound halves.
            let mut ours = Vec::new();
            let mut downs = Vec::new();
            if let Some(sa) = self.sas.get_mut(&spi_r) {
                let id = sa.id;
                sa.children.retain(|c| {
                    if deleted_children.contains(&c.outbound_spi.to_be_bytes()) {
                        ours.push(c.inbound_spi.to_be_bytes());
                        downs.push((c.inbound_spi, c.outbound_spi));
                        false
                    } else {
                        true
                    }
                });
                for (inbound_spi, outbound_spi) in downs {
                    self.inbound_spis.remove(&inbound_spi);
                    self.push_event(Ikev2Event::ChildSaDown {
                        ike_sa: id,
                        inbound_spi,
                        outbound_spi,
                        reason: DownReason::DeletedByPeer,
                    });
                }
            }
            if !ours.is_empty() {
                let delete = Delete {
                    protocol: protocol::ESP,
                    spis: ours,
                };
                reply.push(payload::DELETE, &delete.encode());
            }
        }
        // An empty request is a liveness check (§2.4): the empty answer
        // is the proof of life.
        self.respond(spi_r, exchange::INFORMATIONAL, header.message_id, &reply);
    }

    /// RFC 4555 §3.5: the client moved; the request came from its new
    /// address (already recorded), and its NAT-D notifies say whether a NAT
    /// is now on the path. We answer with ours.
    fn update_addresses(
        &mut self,
        spi_r: [u8; 8],
        nat_source: &[Vec<u8>],
        nat_destination: Option<&[u8]>,
        reply: &mut PayloadChain,
    ) {
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        if !sa.mobike {
            let peer = sa.peer;
            self.refuse(peer, "UPDATE_SA_ADDRESSES without MOBIKE ignored".into());
            return;
        }
        if !nat_source.is_empty() {
            let (spi_i, local, peer) = (sa.spi_i, sa.local, sa.peer);
            let source = nat_d(HashAlg::Sha1, &spi_i, &spi_r, peer);
            let destination = nat_d(HashAlg::Sha1, &spi_i, &spi_r, local);
            sa.nat = NatState {
                local_behind_nat: nat_destination.is_some_and(|d| d != destination.as_slice()),
                peer_behind_nat: !nat_source.contains(&source),
            };
            reply.push(
                payload::NOTIFY,
                &Notify::encode(
                    notify::NAT_DETECTION_SOURCE_IP,
                    &nat_d(HashAlg::Sha1, &spi_i, &spi_r, local),
                ),
            );
            reply.push(
                payload::NOTIFY,
                &Notify::encode(
                    notify::NAT_DETECTION_DESTINATION_IP,
                    &nat_d(HashAlg::Sha1, &spi_i, &spi_r, peer),
                ),
            );
        }
        let (ike_sa, peer, udp_encapsulated) = (sa.id, sa.peer, sa.nat.any());
        // The child SAs follow the IKE SA to the new address (§3.5).
        self.push_event(Ikev2Event::PeerMoved {
            ike_sa,
            peer,
            udp_encapsulated,
        });
    }

    pub(crate) fn create_child_sa(
        &mut self,
        now: Instant,
        header: &Header,
        first: u8,
        inner: &[u8],
    ) {
        let spi_r = header.spi_r;
        let Some(sa) = self.sas.get(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        if !matches!(sa.stage, Stage::Established) {
            self.stats.malformed += 1;
            return;
        }
        let parsed = parse_create_child(first, inner);
        let request = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                self.answer_notify(spi_r, header.message_id, notify::INVALID_SYNTAX);
                self.refuse(peer, format!("malformed CREATE_CHILD_SA: {e}"));
                return;
            }
        };
        if request
            .proposals
            .iter()
            .any(|p| p.protocol == protocol::IKE)
        {
            self.rekey_ike_sa(now, header, request);
        } else if request.rekey_spi.is_some() || sa.children.is_empty() {
            // A rekey, or the client recreating its tunnel after its child
            // expired or was deleted (strongSwan does after a hard expiry).
            self.rekey_child_sa(header, request);
        } else {
            // A second child SA of one IKE SA is not offered: one tunnel per
            // client, as for the PPP tunnels.
            self.answer_notify(spi_r, header.message_id, notify::NO_ADDITIONAL_SAS);
            self.refuse(
                peer,
                "refused an additional child SA (one tunnel per IKE SA)".into(),
            );
        }
    }

    fn answer_notify(&mut self, spi_r: [u8; 8], message_id: u32, kind: u16) {
        let mut chain = PayloadChain::new();
        chain.push(payload::NOTIFY, &Notify::encode(kind, &[]));
        self.respond(spi_r, exchange::CREATE_CHILD_SA, message_id, &chain);
    }

    /// The chosen proposal of a CREATE_CHILD_SA, or the refusal answered
    /// (§1.2 INVALID_KE_PAYLOAD with our group, or NO_PROPOSAL_CHOSEN and a
    /// log line naming what was offered).
    fn accept_or_answer<T>(
        &mut self,
        choice: Result<T, IkeRefusal>,
        spi_r: [u8; 8],
        message_id: u32,
        request: &CreateChild,
        what: &str,
    ) -> Option<T> {
        match choice {
            Ok(c) => Some(c),
            Err(IkeRefusal::InvalidKe(g)) => {
                self.answer_invalid_ke(spi_r, message_id, g.id());
                None
            }
            Err(IkeRefusal::NoProposalChosen) => {
                self.answer_notify(spi_r, message_id, notify::NO_PROPOSAL_CHOSEN);
                if let Some(peer) = self.sas.get(&spi_r).map(|sa| sa.peer) {
                    let offer = describe_offer(&request.proposals);
                    self.refuse(
                        peer,
                        format!("no acceptable proposal in {what}; offered: {offer}"),
                    );
                }
                None
            }
        }
    }

    fn answer_invalid_ke(&mut self, spi_r: [u8; 8], message_id: u32, group: u16) {
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode(notify::INVALID_KE_PAYLOAD, &group.to_be_bytes()),
        );
        self.respond(spi_r, exchange::CREATE_CHILD_SA, message_id, &chain);
    }

    /// §1.3.3: a new child SA replaces the one REKEY_SA names; with a KE
    /// payload its keys come from a new D-H exchange (PFS), without one
    /// from SK_d alone (Windows' default). The initiator deletes the old
    /// one afterwards.
    fn rekey_child_sa(&mut self, header: &Header, request: CreateChild) {
        let spi_r = header.spi_r;
        let Some(sa) = self.sas.get(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        // The notify names the SA by the SPI its sender receives on (our
        // outbound); some initiators name our inbound one. Without one, the
        // client recreates its tunnel (it has no child left): it gets the
        // selectors it was narrowed to at IKE_AUTH.
        let old = match request.rekey_spi {
            Some(rekey_spi) => sa
                .children
                .iter()
                .find(|c| c.outbound_spi == rekey_spi || c.inbound_spi == rekey_spi)
                .cloned()
                .ok_or_else(|| format!("rekey of unknown child SA {rekey_spi:08x}")),
            None => sa
                .tunnel_selectors
                .clone()
                .map(|(client_selectors, server_selectors)| ChildRecord {
                    inbound_spi: 0,
                    outbound_spi: 0,
                    suite: crate::esp::CipherSuite::Aes128Gcm16,
                    client_selectors,
                    server_selectors,
                })
                .ok_or_else(|| "a child SA before the tunnel was set up".to_string()),
        };
        let old = match old {
            Ok(old) => old,
            Err(why) => {
                self.answer_notify(spi_r, header.message_id, notify::CHILD_SA_NOT_FOUND);
                self.refuse(peer, why);
                return;
            }
        };
        let replaces = request.rekey_spi.map(|_| old.inbound_spi);
        let choice = choose_child(
            &request.proposals,
            &self.config.policy,
            request.ke.as_ref().map(|k| k.0),
        );
        let Some(choice) = self.accept_or_answer(
            choice,
            spi_r,
            header.message_id,
            &request,
            "a child SA rekey",
        ) else {
            return;
        };
        let mut nr = vec![0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut nr);
        let (dh_public, shared) = match (&request.ke, choice.group) {
            (Some((_, data)), Some(group)) => {
                let Ok(dh) = DhStock::take_from(self.config.dh_stock.as_deref(), group) else {
                    return;
                };
                let Ok(shared) = dh.agree(data) else {
                    self.answer_notify(spi_r, header.message_id, notify::INVALID_SYNTAX);
                    self.refuse(
                        peer,
                        "invalid key exchange value in a child SA rekey".into(),
                    );
                    return;
                };
                (Some((group.id(), dh.public_value().to_vec())), Some(shared))
            }
            _ => (None, None),
        };
        let inbound_spi = self.new_inbound_spi();
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let Some((inbound, outbound)) = child_keys(
            sa.prf,
            &sa.keys.sk_d,
            shared.as_deref().map(|s| s.as_slice()),
            &request.nonce,
            &nr,
            choice.suite,
            inbound_spi,
            choice.peer_spi,
            &self.config,
        ) else {
            return;
        };
        let mut reply = choice.reply.clone();
        reply.spi = inbound_spi.to_be_bytes().to_vec();
        let mut chain = PayloadChain::new();
        chain.push(
            payload::SA,
            &sa_payload::encode(std::slice::from_ref(&reply)),
        );
        chain.push(payload::NONCE, &nr);
        if let Some((group, public)) = &dh_public {
            chain.push(payload::KE, &KeyExchange::encode(*group, public));
        }
        chain.push(
            payload::TSI,
            &traffic_selectors::encode(&old.client_selectors),
        );
        chain.push(
            payload::TSR,
            &traffic_selectors::encode(&old.server_selectors),
        );
        sa.children.push(ChildRecord {
            inbound_spi,
            outbound_spi: choice.peer_spi,
            suite: choice.suite,
            client_selectors: old.client_selectors.clone(),
            server_selectors: old.server_selectors.clone(),
        });
        let child = ChildSa {
            ike_sa: sa.id,
            peer: sa.peer,
            udp_encapsulated: sa.nat.any(),
            inbound,
            outbound,
            client_selectors: old.client_selectors,
            server_selectors: old.server_selectors,
            virtual_ipv4: None,
            identity: sa.identity.clone(),
            suite: choice.suite.to_string(),
            replaces_inbound_spi: replaces,
        };
        let id = sa.id;
        self.inbound_spis.insert(inbound_spi, id);
        self.respond(spi_r, exchange::CREATE_CHILD_SA, header.message_id, &chain);
        self.push_event(Ikev2Event::ChildSaUp(Box::new(child)));
    }

    /// §1.3.2, §2.18: a new IKE SA with fresh SPIs and keys from the old
    /// SK_d and a new D-H exchange; the children move to it, and the
    /// initiator deletes the old one.
    fn rekey_ike_sa(&mut self, now: Instant, header: &Header, request: CreateChild) {
        let spi_r = header.spi_r;
        let Some(sa) = self.sas.get(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        let Some((ke_group, ke_data)) = request.ke.clone() else {
            self.answer_notify(spi_r, header.message_id, notify::INVALID_SYNTAX);
            self.refuse(peer, "IKE SA rekey without a key exchange".into());
            return;
        };
        let choice = choose_ike(&request.proposals, &self.config.policy, ke_group);
        let Some(choice) = self.accept_or_answer(
            choice,
            spi_r,
            header.message_id,
            &request,
            "an IKE SA rekey",
        ) else {
            return;
        };
        let Some(new_spi_i) = request
            .proposals
            .iter()
            .find(|p| p.number == choice.reply.number && p.protocol == protocol::IKE)
            .and_then(|p| <[u8; 8]>::try_from(p.spi.as_slice()).ok())
        else {
            self.answer_notify(spi_r, header.message_id, notify::INVALID_SYNTAX);
            return;
        };
        let Ok(dh) = DhStock::take_from(self.config.dh_stock.as_deref(), choice.group) else {
            return;
        };
        let Ok(shared) = dh.agree(&ke_data) else {
            self.answer_notify(spi_r, header.message_id, notify::INVALID_SYNTAX);
            self.refuse(peer, "invalid key exchange value in an IKE SA rekey".into());
            return;
        };
        let mut nr = vec![0u8; 32];
        let mut new_spi_r = [0u8; 8];
        loop {
            let _ = aws_lc_rs::rand::fill(&mut nr);
            let _ = aws_lc_rs::rand::fill(&mut new_spi_r);
            if new_spi_r != [0; 8] && !self.sas.contains_key(&new_spi_r) {
                break;
            }
        }
        let Some(old) = self.sas.get(&spi_r) else {
            return;
        };
        // §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the
        // old SA's PRF; the new keys use the new PRF.
        let seed = rekey_skeyseed(old.prf, &old.keys.sk_d, &shared, &request.nonce, &nr);
        let keys = ike_sa_keys(
            choice.prf,
            &seed,
            &request.nonce,
            &nr,
            &new_spi_i,
            &new_spi_r,
            choice.protection.key_lengths(),
        );
        let mut reply = choice.reply.clone();
        reply.spi = new_spi_r.to_vec();
        let mut chain = PayloadChain::new();
        chain.push(
            payload::SA,
            &sa_payload::encode(std::slice::from_ref(&reply)),
        );
        chain.push(payload::NONCE, &nr);
        chain.push(
            payload::KE,
            &KeyExchange::encode(choice.group.id(), dh.public_value()),
        );
        // Answer on the old SA first; then move everything to the new one.
        self.respond(spi_r, exchange::CREATE_CHILD_SA, header.message_id, &chain);
        let Some(old) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let children = std::mem::take(&mut old.children);
        let tunnel_selectors = old.tunnel_selectors.clone();
        old.rekeyed_away = true;
        let new_sa = IkeSa {
            id: old.id,
            spi_i: new_spi_i,
            spi_r: new_spi_r,
            peer: old.peer,
            local: old.local,
            on_nat_t: old.on_nat_t,
            nat: old.nat,
            prf: choice.prf,
            protection: choice.protection,
            keys,
            ni: request.nonce.clone(),
            nr,
            init_request: Vec::new(),
            init_response: Vec::new(),
            peer_fragments: old.peer_fragments,
            peer_hashes: old.peer_hashes.clone(),
            stage: Stage::Established,
            // §2.18: the new IKE SA starts its Message IDs at zero.
            expected_request: 0,
            last_response: None,
            identity: old.identity.clone(),
            auth_key: old.auth_key.clone(),
            eap: old.eap,
            by_certificate: old.by_certificate,
            mobike: old.mobike,
            nat_probe: old.nat_probe,
            pending_probe: old.pending_probe,
            children,
            tunnel_selectors,
            created: now,
            last_heard: now,
            reassembly: None,
            our_next_request: 0,
            our_request: None,
            suite: old.suite.clone(),
            rekeyed_away: false,
            our_signature: super::signature_job::OurAuth::Inline,
            held_decision: None,
        };
        let id = new_sa.id;
        self.sas.insert(new_spi_r, new_sa);
        self.ids.insert(id, new_spi_r);
    }
}

/// The parts of a CREATE_CHILD_SA request we use.
struct CreateChild {
    proposals: Vec<sa_payload::Proposal>,
    nonce: Vec<u8>,
    ke: Option<(u16, Vec<u8>)>,
    rekey_spi: Option<u32>,
}

fn parse_create_child(first: u8, inner: &[u8]) -> Result<CreateChild, String> {
    let chain = wire::payloads(first, inner).map_err(|e| e.to_string())?;
    let mut proposals = None;
    let mut nonce = None;
    let mut ke = None;
    let mut rekey_spi = None;
    for p in &chain {
        match p.kind {
            payload::SA => proposals = Some(sa_payload::parse(p.body).map_err(|e| e.to_string())?),
            payload::NONCE => {
                nonce = Some(parse_nonce(p.body).map_err(|e| e.to_string())?.to_vec())
            }
            payload::KE => {
                let k = KeyExchange::parse(p.body).map_err(|e| e.to_string())?;
                ke = Some((k.group, k.data.to_vec()));
            }
            payload::NOTIFY => {
                let n = Notify::parse(p.body).map_err(|e| e.to_string())?;
                if n.kind == notify::REKEY_SA {
                    let spi =
                        <[u8; 4]>::try_from(n.spi).map_err(|_| "REKEY_SA without a 4-byte SPI")?;
                    rekey_spi = Some(u32::from_be_bytes(spi));
                }
            }
            _ => {}
        }
    }
    Ok(CreateChild {
        proposals: proposals.ok_or("no SA payload")?,
        nonce: nonce.ok_or("no nonce")?,
        ke,
        rekey_spi,
    })
}
