//! IKE_SA_INIT on the responder side (RFC 7296 §1.2): proposals, the
//! Diffie-Hellman exchange and nonces, NAT detection (§2.23), cookies under
//! load (§2.6) and the fragmentation announcement (RFC 7383 §2.3).

use std::net::SocketAddr;
use std::time::Instant;

use crate::ike_crypto::ikev2_keys::{ike_sa_keys, skeyseed};
use crate::ike_crypto::{DhStock, HashAlg};
use crate::ikev1::nat_detection::{nat_d, NatState};

use super::ike_sa::{IkeSa, Stage};
use super::notify;
use super::payloads::{parse_nonce, KeyExchange, Notify};
use super::proposal::{choose_ike, describe_offer, IkeRefusal};
use super::responder::Ikev2Responder;
use super::sa_payload;
use super::wire::{self, flags, payload, Header, PayloadChain, HEADER_LEN};

/// Our nonce length: §2.10 asks for at least half the PRF's key size and
/// at least 128 bits; 32 bytes covers SHA-512's 256-bit strength.
const NONCE_LEN: usize = 32;

/// What an IKE_SA_INIT request carries that we use.
struct InitRequest<'a> {
    proposals: Vec<sa_payload::Proposal>,
    ke: KeyExchange<'a>,
    nonce: &'a [u8],
    cookie: Option<&'a [u8]>,
    nat_source: Vec<&'a [u8]>,
    nat_destination: Option<&'a [u8]>,
    fragmentation: bool,
    hashes: Vec<u16>,
}

fn parse_request<'a>(message: &'a [u8], header: &Header) -> Result<InitRequest<'a>, String> {
    let chain =
        wire::payloads(header.next_payload, &message[HEADER_LEN..]).map_err(|e| e.to_string())?;
    let mut proposals = None;
    let mut ke = None;
    let mut nonce = None;
    let mut request = InitRequest {
        proposals: Vec::new(),
        ke: KeyExchange {
            group: 0,
            data: &[],
        },
        nonce: &[],
        cookie: None,
        nat_source: Vec::new(),
        nat_destination: None,
        fragmentation: false,
        hashes: Vec::new(),
    };
    for p in &chain {
        match p.kind {
            payload::SA => proposals = Some(sa_payload::parse(p.body).map_err(|e| e.to_string())?),
            payload::KE => ke = Some(KeyExchange::parse(p.body).map_err(|e| e.to_string())?),
            payload::NONCE => nonce = Some(parse_nonce(p.body).map_err(|e| e.to_string())?),
            payload::NOTIFY => {
                let n = Notify::parse(p.body).map_err(|e| e.to_string())?;
                match n.kind {
                    notify::COOKIE => request.cookie = Some(n.data),
                    notify::NAT_DETECTION_SOURCE_IP => request.nat_source.push(n.data),
                    notify::NAT_DETECTION_DESTINATION_IP => request.nat_destination = Some(n.data),
                    notify::IKEV2_FRAGMENTATION_SUPPORTED => request.fragmentation = true,
                    notify::SIGNATURE_HASH_ALGORITHMS => {
                        request.hashes = super::signature_auth::parse_hash_algorithms(n.data)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    request.proposals = proposals.ok_or("no SA payload")?;
    request.ke = ke.ok_or("no KE payload")?;
    request.nonce = nonce.ok_or("no nonce")?;
    Ok(request)
}

impl Ikev2Responder {
    pub(crate) fn ike_sa_init(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        on_nat_t_port: bool,
        header: &Header,
        message: &[u8],
    ) {
        // §2.1: a retransmitted request gets the very same answer.
        if let Some(spi_r) = self.by_initiator.get(&(remote, header.spi_i)) {
            if let Some(sa) = self.sas.get(spi_r) {
                if sa.init_request == message {
                    self.stats.retransmits_answered += 1;
                    let bytes = sa.init_response.clone();
                    self.push_transmit(remote, on_nat_t_port, bytes);
                }
                return;
            }
        }
        let request = match parse_request(message, header) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("malformed IKE_SA_INIT: {e}"));
                return;
            }
        };
        if self.half_open >= self.config.max_half_open {
            // Past the hard limit nobody is answered: established tunnels
            // keep their CPU. Counted, not logged per packet.
            self.stats.half_open_refused += 1;
            return;
        }
        if self.half_open >= self.config.cookie_threshold {
            let valid = request.cookie.is_some_and(|c| {
                self.cookies
                    .check(c, request.nonce, remote.ip(), &header.spi_i)
            });
            if !valid {
                // §2.6: answer statelessly with a cookie; only an initiator
                // that receives at its address can come back with it.
                self.stats.cookies_sent += 1;
                let cookie = self.cookies.make(request.nonce, remote.ip(), &header.spi_i);
                self.send_unprotected_notify(
                    remote,
                    on_nat_t_port,
                    header,
                    notify::COOKIE,
                    &cookie,
                );
                return;
            }
        }
        let choice = match choose_ike(&request.proposals, &self.config.policy, request.ke.group) {
            Ok(c) => c,
            Err(IkeRefusal::InvalidKe(group)) => {
                // §1.2: tell the initiator which group to use; it retries.
                let data = group.id().to_be_bytes();
                self.send_unprotected_notify(
                    remote,
                    on_nat_t_port,
                    header,
                    notify::INVALID_KE_PAYLOAD,
                    &data,
                );
                return;
            }
            Err(IkeRefusal::NoProposalChosen) => {
                self.stats.refused += 1;
                let offer = describe_offer(&request.proposals);
                self.send_unprotected_notify(
                    remote,
                    on_nat_t_port,
                    header,
                    notify::NO_PROPOSAL_CHOSEN,
                    &[],
                );
                self.refuse(
                    remote,
                    format!("no acceptable IKEv2 proposal (NO_PROPOSAL_CHOSEN); offered: {offer}"),
                );
                return;
            }
        };
        let dh = match DhStock::take_from(self.config.dh_stock.as_deref(), choice.group) {
            Ok(dh) => dh,
            Err(e) => {
                self.refuse(remote, format!("could not make a key exchange value: {e}"));
                return;
            }
        };
        let shared = match dh.agree(request.ke.data) {
            Ok(s) => s,
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("IKE_SA_INIT refused: {e}"));
                return;
            }
        };
        let mut nr = vec![0u8; NONCE_LEN];
        let mut spi_r = [0u8; 8];
        loop {
            if aws_lc_rs::rand::fill(&mut nr).is_err() || aws_lc_rs::rand::fill(&mut spi_r).is_err()
            {
                self.refuse(remote, "no randomness for a nonce".into());
                return;
            }
            if spi_r != [0; 8] && !self.sas.contains_key(&spi_r) {
                break;
            }
        }
        let seed = skeyseed(choice.prf, request.nonce, &nr, &shared);
        let keys = ike_sa_keys(
            choice.prf,
            &seed,
            request.nonce,
            &nr,
            &header.spi_i,
            &spi_r,
            choice.protection.key_lengths(),
        );
        // §2.23: SHA-1 over the SPIs of the message's header, the address
        // and the port; the request's responder SPI is zero.
        let zero = [0u8; 8];
        let expected_destination = nat_d(HashAlg::Sha1, &header.spi_i, &zero, local);
        let expected_source = nat_d(HashAlg::Sha1, &header.spi_i, &zero, remote);
        let nat = NatState {
            local_behind_nat: request
                .nat_destination
                .is_some_and(|d| d != expected_destination.as_slice()),
            peer_behind_nat: !request.nat_source.is_empty()
                && !request.nat_source.contains(&expected_source.as_slice()),
        };

        let mut chain = PayloadChain::new();
        chain.push(
            payload::SA,
            &sa_payload::encode(std::slice::from_ref(&choice.reply)),
        );
        chain.push(
            payload::KE,
            &KeyExchange::encode(choice.group.id(), dh.public_value()),
        );
        chain.push(payload::NONCE, &nr);
        if let Some(trust) = &self.config.client_trust {
            // §3.7, §1.2: CERTREQ names the CAs client certificates must
            // chain to (strongSwan sends its certificate only when asked).
            chain.push(payload::CERTREQ, &trust.cert_request());
        }
        if !request.nat_source.is_empty() {
            let source = nat_d(HashAlg::Sha1, &header.spi_i, &spi_r, local);
            let destination = nat_d(HashAlg::Sha1, &header.spi_i, &spi_r, remote);
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::NAT_DETECTION_SOURCE_IP, &source),
            );
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::NAT_DETECTION_DESTINATION_IP, &destination),
            );
        }
        if request.fragmentation {
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::IKEV2_FRAGMENTATION_SUPPORTED, &[]),
            );
        }
        if self.config.certificate.is_some() {
            // RFC 7427 §4: we verify and make RFC 7427 signatures.
            chain.push(
                payload::NOTIFY,
                &Notify::encode(
                    notify::SIGNATURE_HASH_ALGORITHMS,
                    &super::signature_auth::ServerCredential::announced_hashes(),
                ),
            );
        }
        let response_header = Header::new(header.spi_i, spi_r, header.exchange, flags::RESPONSE, 0);
        let response = wire::message(&response_header, &chain);
        let suite = format!(
            "{}/{}/{}",
            sa_payload::transform_name(&choice.reply.transforms[0]),
            choice
                .reply
                .transforms
                .iter()
                .filter(|t| t.kind == sa_payload::transform_type::PRF)
                .map(sa_payload::transform_name)
                .collect::<String>(),
            choice.group.name()
        );
        let id = self.next_id;
        self.next_id += 1;
        let sa = IkeSa {
            id,
            spi_i: header.spi_i,
            spi_r,
            peer: remote,
            local,
            on_nat_t: on_nat_t_port,
            nat,
            prf: choice.prf,
            protection: choice.protection,
            keys,
            ni: request.nonce.to_vec(),
            nr,
            init_request: message.to_vec(),
            init_response: response.clone(),
            peer_fragments: request.fragmentation,
            peer_hashes: request.hashes.clone(),
            stage: Stage::HalfOpen,
            expected_request: 1,
            last_response: None,
            identity: String::new(),
            auth_key: None,
            eap: false,
            by_certificate: false,
            mobike: false,
            nat_probe: false,
            pending_probe: None,
            children: Vec::new(),
            tunnel_selectors: None,
            created: now,
            last_heard: now,
            reassembly: None,
            our_next_request: 0,
            our_request: None,
            suite,
            rekeyed_away: false,
            our_signature: super::signature_job::OurAuth::Inline,
            held_decision: None,
        };
        self.sas.insert(spi_r, sa);
        self.by_initiator.insert((remote, header.spi_i), spi_r);
        self.ids.insert(id, spi_r);
        self.half_open += 1;
        self.push_transmit(remote, on_nat_t_port, response);
    }

    /// An unprotected IKE_SA_INIT answer holding one notify (COOKIE,
    /// INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN): no state is kept (§2.6).
    fn send_unprotected_notify(
        &mut self,
        remote: SocketAddr,
        on_nat_t_port: bool,
        request: &Header,
        kind: u16,
        data: &[u8],
    ) {
        let mut chain = PayloadChain::new();
        chain.push(payload::NOTIFY, &Notify::encode(kind, data));
        let header = Header::new(request.spi_i, [0; 8], request.exchange, flags::RESPONSE, 0);
        self.push_transmit(remote, on_nat_t_port, wire::message(&header, &chain));
    }
}
