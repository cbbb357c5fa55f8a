//! IKE_AUTH on the responder side (RFC 7296 §1.2, §2.15): the client's
//! identity and AUTH, the driver's decision (policy and address), then our
//! AUTH, the configuration reply (§3.15) and the first child SA with its
//! narrowed traffic selectors (§2.9).
//!
//! The client authenticates with a shared-key MAC (§2.15), with a
//! certificate's signature (§2.15, `client_certificate`; we answer with
//! our own), or with EAP (§2.16, signalled by an IKE_AUTH without AUTH),
//! whose messages the driver's EAP server answers; the MSK keys both final
//! AUTH payloads.

use std::net::IpAddr;
use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::esp::{EspSaConfig, LifetimeLimits};
use crate::ike_crypto::ikev2_keys::child_sa_keymat;

use crate::ikev1::certificates::MAX_PEER_CERTIFICATES;

use super::auth::{shared_key_auth, signed_octets};
use super::client_certificate::verify_client;
use super::config_payload::{attribute, cfg_type, ConfigBuilder, ConfigPayload};
use super::events::{
    Authorization, AuthorizationRequest, ChildSa, ClientAuthMethod, DownReason, IkeSaId, Ikev2Event,
};
use super::ike_sa::{ChildRecord, PendingChild, Stage};
use super::notify;
use super::payloads::{auth_method, Authentication, Identification, Notify};
use super::proposal::{choose_child, describe_offer};
use super::responder::Ikev2Responder;
use super::sa_payload::{self, Proposal};
use super::signature_job::{OurAuth, SignatureJob};
use super::traffic_selectors::{self, TrafficSelector};
use super::wire::{self, exchange, payload, Header, PayloadChain};
use crate::ikev1::certificates::PeerCertificate;

/// The parts of an IKE_AUTH request we use.
struct AuthRequest<'a> {
    idi: Identification<'a>,
    auth: Option<Authentication<'a>>,
    /// CERT payload bodies, the end entity first (§3.6).
    certs: Vec<&'a [u8]>,
    proposals: Vec<Proposal>,
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    cp: Option<ConfigPayload<'a>>,
    initial_contact: bool,
    mobike: bool,
    nat_probe: bool,
}

/// A later IKE_AUTH of an EAP conversation: an EAP message, or the final
/// AUTH.
pub(super) struct EapRound<'a> {
    pub eap: Option<&'a [u8]>,
    pub auth: Option<Authentication<'a>>,
}

pub(super) fn parse_eap_round(first: u8, inner: &[u8]) -> Result<EapRound<'_>, String> {
    let chain = wire::payloads(first, inner).map_err(|e| e.to_string())?;
    let mut round = EapRound {
        eap: None,
        auth: None,
    };
    for p in &chain {
        match p.kind {
            payload::EAP => round.eap = Some(p.body),
            payload::AUTH => {
                round.auth = Some(Authentication::parse(p.body).map_err(|e| e.to_string())?)
            }
            _ => {}
        }
    }
    Ok(round)
}

fn parse_auth_request(first: u8, inner: &[u8]) -> Result<AuthRequest<'_>, String> {
    let chain = wire::payloads(first, inner).map_err(|e| e.to_string())?;
    let mut idi = None;
    let mut request = AuthRequest {
        idi: Identification {
            kind: 0,
            data: &[],
            body: &[],
        },
        auth: None,
        certs: Vec::new(),
        proposals: Vec::new(),
        tsi: Vec::new(),
        tsr: Vec::new(),
        cp: None,
        initial_contact: false,
        mobike: false,
        nat_probe: false,
    };
    for p in &chain {
        match p.kind {
            payload::IDI => idi = Some(Identification::parse(p.body).map_err(|e| e.to_string())?),
            payload::AUTH => {
                request.auth = Some(Authentication::parse(p.body).map_err(|e| e.to_string())?)
            }
            payload::CERT if request.certs.len() < MAX_PEER_CERTIFICATES => {
                request.certs.push(p.body)
            }
            payload::SA => {
                request.proposals = sa_payload::parse(p.body).map_err(|e| e.to_string())?
            }
            payload::TSI => {
                request.tsi = traffic_selectors::parse(p.body).map_err(|e| e.to_string())?
            }
            payload::TSR => {
                request.tsr = traffic_selectors::parse(p.body).map_err(|e| e.to_string())?
            }
            payload::CP => {
                request.cp = Some(ConfigPayload::parse(p.body).map_err(|e| e.to_string())?)
            }
            payload::NOTIFY => {
                let n = Notify::parse(p.body).map_err(|e| e.to_string())?;
                match n.kind {
                    notify::INITIAL_CONTACT => request.initial_contact = true,
                    notify::MOBIKE_SUPPORTED => request.mobike = true,
                    super::nat_probe::NAT_PROBE_SUPPORTED => request.nat_probe = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    request.idi = idi.ok_or("no IDi payload")?;
    Ok(request)
}

/// A client that proved its identity in its first IKE_AUTH.
struct ClientProof {
    /// The user name the driver sees.
    identity: String,
    /// The key of our shared-key AUTH (the PSK); `None`: we sign.
    key: Option<Vec<u8>>,
    method: ClientAuthMethod,
    subject: Option<String>,
    /// The certificate and its issuer, for the driver's OCSP or CRL
    /// distribution point check.
    certificate: Option<PeerCertificate>,
}

/// What `start_eap` keeps of the first IKE_AUTH.
pub(super) struct FirstAuth {
    pub idi_data: Vec<u8>,
    pub idi_body: Vec<u8>,
    pub proposals: Vec<Proposal>,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub cp_requested: bool,
    pub wants_ipv4: bool,
    pub wants_ipv6: bool,
}

impl Ikev2Responder {
    pub(crate) fn ike_auth(&mut self, now: Instant, header: &Header, first: u8, inner: &[u8]) {
        let spi_r = header.spi_r;
        let Some(sa) = self.sas.get(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        match &sa.stage {
            Stage::HalfOpen => {}
            // A retransmission while the driver decides: the answer follows.
            Stage::Authorizing(p) if p.message_id == header.message_id => return,
            Stage::Eap(_) => {
                self.eap_round(now, header, first, inner);
                return;
            }
            _ => {
                self.stats.malformed += 1;
                self.refuse(
                    peer,
                    "IKE_AUTH on an IKE SA that is already authenticated".into(),
                );
                return;
            }
        }
        let request = match parse_auth_request(first, inner) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::INVALID_SYNTAX,
                    format!("malformed IKE_AUTH: {e}"),
                );
                return;
            }
        };
        let identity = request.idi.describe();
        let mobike = request.mobike && self.config.mobike;
        let nat_probe = request.nat_probe && self.config.nat_probe;
        if let Some(sa) = self.sas.get_mut(&spi_r) {
            sa.mobike = mobike;
            sa.nat_probe = nat_probe;
        }
        let Some(auth) = request.auth else {
            if !self.config.eap {
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::AUTHENTICATION_FAILED,
                    format!("IKEv2 client {identity} wants EAP, which this server does not accept ([ikev2] auth)"),
                );
                return;
            }
            let cp_requested = request
                .cp
                .as_ref()
                .is_some_and(|cp| cp.cfg_type == cfg_type::REQUEST);
            let wants_ipv4 = cp_requested
                && request
                    .cp
                    .as_ref()
                    .is_some_and(|cp| cp.has(attribute::INTERNAL_IP4_ADDRESS));
            let wants_ipv6 = cp_requested
                && request
                    .cp
                    .as_ref()
                    .is_some_and(|cp| cp.has(attribute::INTERNAL_IP6_ADDRESS));
            let first = FirstAuth {
                idi_data: request.idi.data.to_vec(),
                idi_body: request.idi.body.to_vec(),
                proposals: request.proposals,
                tsi: request.tsi,
                tsr: request.tsr,
                cp_requested,
                wants_ipv4,
                wants_ipv6,
            };
            self.start_eap(now, header, first, identity);
            return;
        };
        let verified = if auth.method == auth_method::SHARED_KEY_MIC {
            self.verify_shared_key(spi_r, &request.idi, auth.data)
                .map(|key| ClientProof {
                    identity: identity.clone(),
                    key: Some(key),
                    method: ClientAuthMethod::SharedKey,
                    subject: None,
                    certificate: None,
                })
                .ok_or_else(|| {
                    format!("IKEv2 authentication failed for {identity} (pre-shared key)")
                })
        } else {
            self.verify_certificate(spi_r, &request, &auth, &identity)
        };
        let proof = match verified {
            Ok(p) => p,
            Err(reason) => {
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::AUTHENTICATION_FAILED,
                    reason,
                );
                return;
            }
        };
        let ClientProof {
            identity,
            key,
            method,
            subject,
            certificate,
        } = proof;
        if request.initial_contact {
            // §2.4: INITIAL_CONTACT says the client has no other SAs with
            // us; old ones of the same identity are stale.
            let stale: Vec<[u8; 8]> = self
                .sas
                .iter()
                .filter(|(spi, other)| {
                    **spi != spi_r
                        && other.identity == identity
                        && matches!(other.stage, Stage::Established)
                })
                .map(|(spi, _)| *spi)
                .collect();
            for spi in stale {
                self.remove_sa(spi, DownReason::Replaced);
            }
        }
        let wants_ipv4 = request.cp.as_ref().is_some_and(|cp| {
            cp.cfg_type == cfg_type::REQUEST && cp.has(attribute::INTERNAL_IP4_ADDRESS)
        });
        let wants_ipv6 = request.cp.as_ref().is_some_and(|cp| {
            cp.cfg_type == cfg_type::REQUEST && cp.has(attribute::INTERNAL_IP6_ADDRESS)
        });
        let cp_requested = request
            .cp
            .as_ref()
            .is_some_and(|cp| cp.cfg_type == cfg_type::REQUEST);
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        sa.identity = identity.clone();
        sa.auth_key = key.map(zeroize::Zeroizing::new);
        sa.by_certificate = method == ClientAuthMethod::Certificate;
        // A client that signed gets our signature (see `authorize`): made
        // by the driver while it authorizes, when it offers to.
        let job = match &self.config.certificate {
            Some(credential) if sa.by_certificate && self.config.offload_signatures => {
                let idr_body = self.config.local_identity.id_body();
                Some(SignatureJob::for_sa(sa, credential.clone(), &idr_body))
            }
            _ => None,
        };
        sa.stage = Stage::Authorizing(Box::new(PendingChild {
            message_id: header.message_id,
            proposals: request.proposals,
            tsi: request.tsi,
            tsr: request.tsr,
            cp_requested,
            wants_ipv4,
            wants_ipv6,
            requested_since: now,
        }));
        let ike_sa = sa.id;
        self.half_open = self.half_open.saturating_sub(1);
        self.push_event(Ikev2Event::AuthorizationNeeded(Box::new(
            AuthorizationRequest {
                ike_sa,
                peer,
                identity,
                method,
                certificate_subject: subject,
                certificate,
                wants_ipv4,
                wants_ipv6,
            },
        )));
        if let Some(job) = job {
            self.push_event(Ikev2Event::SignatureNeeded(Box::new(job)));
        }
    }

    /// §2.15: a shared-key AUTH covers the initiator's IKE_SA_INIT
    /// request, our nonce and prf(SK_pi, IDi). An unknown identity and a
    /// wrong key get the same answer on the wire. The key, if it verified.
    fn verify_shared_key(
        &self,
        spi_r: [u8; 8],
        idi: &Identification<'_>,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        let sa = self.sas.get(&spi_r)?;
        let key = self.config.psks.lookup(idi.data)?.to_vec();
        let signed = signed_octets(sa.prf, &sa.init_request, &sa.nr, &sa.keys.sk_pi, idi.body);
        let expected = shared_key_auth(sa.prf, &key, &signed);
        verify_slices_are_equal(&expected, data).ok()?;
        Some(key)
    }

    /// §2.15 with a signature: the client's certificate (`client_trust`)
    /// and its AUTH over the same octets as a shared-key AUTH.
    fn verify_certificate(
        &self,
        spi_r: [u8; 8],
        request: &AuthRequest<'_>,
        auth: &Authentication<'_>,
        identity: &str,
    ) -> Result<ClientProof, String> {
        let Some(trust) = &self.config.client_trust else {
            return Err(format!(
                "IKEv2 client {identity} authenticates with a certificate (AUTH method {}), which this server does not accept ([ikev2] auth has no \"certificate\")",
                auth.method
            ));
        };
        if self.config.certificate.is_none() {
            return Err(format!(
                "IKEv2 client {identity} authenticates with a certificate, but this server has none to answer with"
            ));
        }
        let sa = self
            .sas
            .get(&spi_r)
            .ok_or_else(|| "the IKE SA is gone".to_string())?;
        let signed = signed_octets(
            sa.prf,
            &sa.init_request,
            &sa.nr,
            &sa.keys.sk_pi,
            request.idi.body,
        );
        let client = verify_client(
            trust,
            &request.certs,
            &request.idi,
            auth.method,
            auth.data,
            &signed,
        )
        .map_err(|e| format!("IKEv2 client {identity} refused: {e}"))?;
        Ok(ClientProof {
            identity: client.user,
            key: None,
            method: ClientAuthMethod::Certificate,
            subject: Some(client.subject),
            certificate: client.certificate,
        })
    }

    /// Answers an IKE_AUTH with an error notify and forgets the SA.
    pub(super) fn fail_auth(&mut self, spi_r: [u8; 8], message_id: u32, kind: u16, reason: String) {
        self.stats.refused += 1;
        let Some(sa) = self.sas.get(&spi_r) else {
            return;
        };
        let peer = sa.peer;
        let mut chain = PayloadChain::new();
        chain.push(payload::NOTIFY, &Notify::encode(kind, &[]));
        self.respond(spi_r, exchange::IKE_AUTH, message_id, &chain);
        self.refuse(peer, reason);
        self.remove_sa(spi_r, DownReason::Closed);
    }

    /// The driver's decision on an [`AuthorizationRequest`]: `Ok` with the
    /// client's address and network settings, or `Err` with the reason for
    /// the log (the client sees AUTHENTICATION_FAILED, as for a wrong key).
    pub fn authorize(
        &mut self,
        now: Instant,
        ike_sa: IkeSaId,
        decision: Result<Authorization, String>,
    ) {
        let Some(&spi_r) = self.ids.get(&ike_sa) else {
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        if decision.is_ok()
            && matches!(sa.our_signature, OurAuth::Pending)
            && matches!(sa.stage, Stage::Authorizing(_))
        {
            // Our signature is still being made: the answer follows it
            // (`signature_ready`). A refusal needs none and goes at once.
            sa.held_decision = Some(decision);
            return;
        }
        let Stage::Authorizing(pending) = std::mem::replace(&mut sa.stage, Stage::Established)
        else {
            return;
        };
        let message_id = pending.message_id;
        let decision = match decision {
            Ok(d) => d,
            Err(reason) => {
                // Still not up: its removal reports nothing.
                sa.stage = Stage::Authorizing(pending);
                self.fail_auth(spi_r, message_id, notify::AUTHENTICATION_FAILED, reason);
                return;
            }
        };
        let peer = sa.peer;
        // §2.15: our AUTH covers our IKE_SA_INIT response, the initiator's
        // nonce and prf(SK_pr, IDr).
        // With EAP the MSK is the key (§2.16) and IDr went out earlier.
        let idr_body = self.config.local_identity.id_body();
        let signed = || signed_octets(sa.prf, &sa.init_response, &sa.ni, &sa.keys.sk_pr, &idr_body);
        let mut chain = PayloadChain::new();
        if !sa.eap {
            chain.push(payload::IDR, &idr_body);
        }
        match (&self.config.certificate, sa.by_certificate) {
            // §2.15: a client that signed gets our signature (strongSwan's
            // `remote.auth = pubkey`, Windows' machine certificates).
            (Some(credential), true) => {
                let done = sa.our_signature.take_done();
                let signed =
                    credential.push_done_or_sign(&mut chain, done, signed, &sa.peer_hashes);
                if let Err(e) = signed {
                    let reason = format!(
                        "cannot authenticate this server to IKEv2 client {}: {e}",
                        sa.identity
                    );
                    sa.stage = Stage::Authorizing(pending);
                    self.fail_auth(spi_r, message_id, notify::AUTHENTICATION_FAILED, reason);
                    return;
                }
            }
            _ => {
                let key = sa.auth_key.clone().unwrap_or_default();
                let our_auth = shared_key_auth(sa.prf, &key, &signed());
                chain.push(
                    payload::AUTH,
                    &Authentication::encode(auth_method::SHARED_KEY_MIC, &our_auth),
                );
            }
        }
        if sa.mobike {
            // RFC 4555 §3.4: announced in the IKE_AUTH answer.
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::MOBIKE_SUPPORTED, &[]),
            );
        }
        if sa.nat_probe {
            // Our private-use extension (nat_probe.rs): agreed.
            chain.push(
                payload::NOTIFY,
                &Notify::encode(super::nat_probe::NAT_PROBE_SUPPORTED, &[]),
            );
        }
        let nat = sa.nat.describe().to_string();
        let identity = sa.identity.clone();
        let suite = sa.suite.clone();
        self.push_event(Ikev2Event::IkeSaUp {
            ike_sa,
            peer,
            identity: identity.clone(),
            suite,
            nat,
        });
        match self.first_child(now, spi_r, &pending, &decision) {
            Ok((child_payloads, child)) => {
                for (kind, body) in child_payloads {
                    chain.push(kind, &body);
                }
                self.respond(spi_r, exchange::IKE_AUTH, pending.message_id, &chain);
                self.push_event(Ikev2Event::ChildSaUp(Box::new(child)));
            }
            Err((kind, reason)) => {
                // §1.2: the IKE SA stands even when its first child fails.
                chain.push(payload::NOTIFY, &Notify::encode(kind, &[]));
                self.respond(spi_r, exchange::IKE_AUTH, pending.message_id, &chain);
                self.refuse(peer, reason);
            }
        }
    }

    /// CP reply, SA, TSi and TSr of the first child SA, and the SA pair.
    #[allow(clippy::type_complexity)]
    fn first_child(
        &mut self,
        now: Instant,
        spi_r: [u8; 8],
        pending: &PendingChild,
        decision: &Authorization,
    ) -> Result<(Vec<(u8, Vec<u8>)>, ChildSa), (u16, String)> {
        let _ = now;
        let Some(sa) = self.sas.get(&spi_r) else {
            return Err((notify::TEMPORARY_FAILURE, "the IKE SA is gone".into()));
        };
        let identity = sa.identity.clone();
        if pending.wants_ipv4 && decision.ipv4.is_none() {
            return Err((
                notify::INTERNAL_ADDRESS_FAILURE,
                format!("no address for IKEv2 client {identity}"),
            ));
        }
        let choice = choose_child(&pending.proposals, &self.config.policy, None).map_err(|_| {
            (
                notify::NO_PROPOSAL_CHOSEN,
                format!(
                    "no acceptable ESP proposal from IKEv2 client {identity}; offered: {}",
                    describe_offer(&pending.proposals)
                ),
            )
        })?;
        // An IPv6 address only for a client that asked (§3.15.1).
        let ipv6 = decision.ipv6.filter(|_| pending.wants_ipv6);
        let addresses: Vec<IpAddr> = decision
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(ipv6.map(IpAddr::V6))
            .collect();
        let client_selectors = narrow_client(&pending.tsi, &addresses, &decision.client_networks)
            .ok_or_else(|| {
            (
                notify::TS_UNACCEPTABLE,
                format!("IKEv2 client {identity}: its traffic selectors do not cover its address"),
            )
        })?;
        let server_selectors = narrow_server(&pending.tsr, &decision.routes).ok_or_else(|| {
            (
                notify::TS_UNACCEPTABLE,
                format!("IKEv2 client {identity}: none of the networks it asked for is allowed"),
            )
        })?;
        let inbound_spi = self.new_inbound_spi();
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return Err((notify::TEMPORARY_FAILURE, "the IKE SA is gone".into()));
        };
        let (inbound, outbound) = child_keys(
            sa.prf,
            &sa.keys.sk_d,
            None,
            &sa.ni,
            &sa.nr,
            choice.suite,
            inbound_spi,
            choice.peer_spi,
            &self.config,
        )
        .ok_or((
            notify::TEMPORARY_FAILURE,
            "child SA key derivation failed".to_string(),
        ))?;
        let mut reply = choice.reply.clone();
        reply.spi = inbound_spi.to_be_bytes().to_vec();
        let mut payloads = Vec::new();
        if pending.cp_requested {
            let mut cp = ConfigBuilder::new(cfg_type::REPLY);
            if let Some(address) = decision.ipv4 {
                cp.attribute(attribute::INTERNAL_IP4_ADDRESS, &address.octets());
            }
            if let Some(address) = ipv6 {
                // §3.15.1: the address and a prefix length; the client's
                // own address only, so nothing else looks on-link.
                let mut value = address.octets().to_vec();
                value.push(128);
                cp.attribute(attribute::INTERNAL_IP6_ADDRESS, &value);
            }
            for dns in &decision.dns {
                match dns {
                    IpAddr::V4(a) => cp.attribute(attribute::INTERNAL_IP4_DNS, &a.octets()),
                    IpAddr::V6(a) => cp.attribute(attribute::INTERNAL_IP6_DNS, &a.octets()),
                };
            }
            for nbns in &decision.nbns {
                cp.attribute(attribute::INTERNAL_IP4_NBNS, &nbns.octets());
            }
            if let Some(domain) = &decision.dns_domain {
                cp.attribute(attribute::INTERNAL_DNS_DOMAIN, domain.as_bytes());
            }
            payloads.push((payload::CP, cp.build()));
        }
        payloads.push((
            payload::SA,
            sa_payload::encode(std::slice::from_ref(&reply)),
        ));
        payloads.push((payload::TSI, traffic_selectors::encode(&client_selectors)));
        payloads.push((payload::TSR, traffic_selectors::encode(&server_selectors)));
        sa.children.push(ChildRecord {
            inbound_spi,
            outbound_spi: choice.peer_spi,
            suite: choice.suite,
            client_selectors: client_selectors.clone(),
            server_selectors: server_selectors.clone(),
        });
        sa.tunnel_selectors = Some((client_selectors.clone(), server_selectors.clone()));
        let child = ChildSa {
            ike_sa: sa.id,
            peer: sa.peer,
            // §2.23: ESP goes in UDP only when a NAT was detected. A
            // MOBIKE client moves IKE to port 4500 without one (RFC 4555
            // §3.1) and still sends plain ESP.
            udp_encapsulated: sa.nat.any(),
            inbound,
            outbound,
            client_selectors,
            server_selectors,
            virtual_ipv4: decision.ipv4,
            identity,
            suite: choice.suite.to_string(),
            replaces_inbound_spi: None,
        };
        let id = sa.id;
        self.inbound_spis.insert(inbound_spi, id);
        Ok((payloads, child))
    }

    /// A fresh inbound SPI: random, not reserved (§3.3.1 of RFC 4303:
    /// 1..=255 are IANA-reserved), not in use.
    pub(crate) fn new_inbound_spi(&self) -> u32 {
        loop {
            let mut bytes = [0u8; 4];
            let _ = aws_lc_rs::rand::fill(&mut bytes);
            let spi = u32::from_be_bytes(bytes);
            if spi > 255 && !self.inbound_spis.contains_key(&spi) {
                return spi;
            }
        }
    }
}

/// §2.9: the client's side narrowed to its virtual addresses (IPv4,
/// IPv6), when it has them, and to the networks routed behind it (what
/// of them it proposed); else what it proposed.
pub(crate) fn narrow_client(
    tsi: &[TrafficSelector],
    addresses: &[IpAddr],
    networks: &[TrafficSelector],
) -> Option<Vec<TrafficSelector>> {
    let narrowed: Vec<TrafficSelector> = if addresses.is_empty() {
        tsi.iter().filter(|ts| ts.is_valid()).copied().collect()
    } else {
        let own: Vec<TrafficSelector> = addresses
            .iter()
            .filter_map(|a| {
                let host = TrafficSelector::host(*a);
                tsi.iter().find_map(|ts| ts.intersect(&host))
            })
            .collect();
        if own.is_empty() {
            // Its own address must be covered (the caller refuses).
            return None;
        }
        let behind = networks
            .iter()
            .flat_map(|n| tsi.iter().filter_map(move |ts| ts.intersect(n)));
        // strongSwan with a virtual address proposes `dynamic` as
        // 0.0.0.0/0 next to its networks (`local_ts = dynamic,NET`): the
        // network is then the intersection of both; list it once.
        let mut narrowed: Vec<TrafficSelector> = Vec::new();
        for ts in own.into_iter().chain(behind) {
            if narrowed.len() == traffic_selectors::MAX_SELECTORS {
                break;
            }
            if !narrowed.contains(&ts) {
                narrowed.push(ts);
            }
        }
        narrowed
    };
    (!narrowed.is_empty()).then_some(narrowed)
}

/// §2.9: our side narrowed to the routes the client may reach (all it
/// asked for when no routes are configured).
pub(crate) fn narrow_server(
    tsr: &[TrafficSelector],
    routes: &[TrafficSelector],
) -> Option<Vec<TrafficSelector>> {
    let narrowed: Vec<TrafficSelector> = if routes.is_empty() {
        tsr.iter().filter(|ts| ts.is_valid()).copied().collect()
    } else {
        tsr.iter()
            .flat_map(|ts| routes.iter().filter_map(move |r| ts.intersect(r)))
            .take(traffic_selectors::MAX_SELECTORS)
            .collect()
    };
    (!narrowed.is_empty()).then_some(narrowed)
}

/// The ESP SA pair from KEYMAT (§2.17): initiator-to-responder keys first
/// (our inbound), then responder-to-initiator (our outbound).
#[allow(clippy::too_many_arguments)]
pub(crate) fn child_keys(
    prf: crate::ike_crypto::HashAlg,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    suite: crate::esp::CipherSuite,
    inbound_spi: u32,
    outbound_spi: u32,
    config: &super::config::Ikev2Config,
) -> Option<(EspSaConfig, EspSaConfig)> {
    let encr_len = suite.cipher_key_len() + suite.salt_len();
    let integ_len = suite.integrity_key_len();
    let keymat = child_sa_keymat(prf, sk_d, g_ir_new, ni, nr, 2 * (encr_len + integ_len))?;
    let limits = LifetimeLimits {
        soft_time: None,
        hard_time: Some(config.child_hard_lifetime),
        soft_bytes: None,
        hard_bytes: None,
    };
    let direction = |at: usize, spi: u32, window: u32| EspSaConfig {
        spi,
        suite,
        cipher_key: zeroize::Zeroizing::new(keymat[at..at + encr_len].to_vec()),
        integrity_key: zeroize::Zeroizing::new(
            keymat[at + encr_len..at + encr_len + integ_len].to_vec(),
        ),
        lifetime: limits,
        replay_window: window,
    };
    Some((
        direction(0, inbound_spi, config.replay_window),
        direction(encr_len + integ_len, outbound_spi, 0),
    ))
}

#[cfg(test)]
mod narrow_tests {
    use super::*;

    #[test]
    fn the_client_side_covers_routed_networks_it_proposed() {
        let own = IpAddr::from([10, 0, 10, 21]);
        let branch = TrafficSelector::prefix(IpAddr::from([10, 77, 0, 0]), 24);
        // A client proposing everything gets its address and the network.
        let all = [TrafficSelector::any_ipv4()];
        assert_eq!(
            narrow_client(&all, &[own], std::slice::from_ref(&branch)),
            Some(vec![TrafficSelector::host(own), branch])
        );
        // Proposing part of the network: that part only (never widened).
        let part = TrafficSelector::prefix(IpAddr::from([10, 77, 0, 128]), 25);
        assert_eq!(
            narrow_client(
                &[TrafficSelector::host(own), part],
                &[own],
                std::slice::from_ref(&branch)
            ),
            Some(vec![TrafficSelector::host(own), part])
        );
        // strongSwan's `local_ts = dynamic,10.77.0.0/24,10.78.0.0/24` with
        // a virtual address: everything and two networks; the network
        // RADIUS gave once, the other not at all.
        let other = TrafficSelector::prefix(IpAddr::from([10, 78, 0, 0]), 24);
        assert_eq!(
            narrow_client(
                &[TrafficSelector::any_ipv4(), branch, other],
                &[own],
                std::slice::from_ref(&branch)
            ),
            Some(vec![TrafficSelector::host(own), branch])
        );
        // Proposing only its own address: narrowed to it.
        assert_eq!(
            narrow_client(&[TrafficSelector::host(own)], &[own], &[branch]),
            Some(vec![TrafficSelector::host(own)])
        );
        // The network without the address is refused.
        assert_eq!(narrow_client(&[branch], &[own], &[branch]), None);
        let six = TrafficSelector::prefix("2001:db8:9::".parse().unwrap(), 48);
        assert_eq!(
            six.end,
            "2001:db8:9:ffff:ffff:ffff:ffff:ffff"
                .parse::<IpAddr>()
                .unwrap()
        );
    }
}
