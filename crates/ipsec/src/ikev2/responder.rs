//! The IKEv2 responder endpoint: every IKE SA of one server keyed by our
//! SPI (so several clients behind one NAT never meet), the half-open
//! limits and cookies, Message ID windows and retransmitted answers
//! (RFC 7296 §2.1, §2.2), timers, and the queues of what to send and what
//! happened. The exchanges are in `sa_init`, `ike_auth` and
//! `informational`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::config::Ikev2Config;
use super::cookie::CookieJar;
use super::encrypted::{self, SkError};
use super::events::{DownReason, IkeSaId, Ikev2Event, Transmit};
use super::fragments::{fragment_message, Reassembly};
use super::ike_sa::{IkeSa, Stage};
use super::wire::{self, exchange, flags, Header, PayloadChain};

/// Counters for the operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ikev2Stats {
    pub malformed: u64,
    pub unknown_sa: u64,
    pub refused: u64,
    pub cookies_sent: u64,
    pub half_open_refused: u64,
    pub retransmits_answered: u64,
    /// Encrypted messages whose integrity check failed (forged or broken).
    pub integrity_failed: u64,
}

/// Queues are bounded: a peer that makes us talk more than this before
/// the driver drains is cut off at the queue, not in memory.
const MAX_QUEUED: usize = 4096;
/// How long the driver may take to authorize a client, and an EAP
/// round may take.
const AUTHORIZATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an incomplete fragmented message is kept (RFC 7383 §2.6.1).
const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Retransmission of our own requests (§2.1): every this long.
const RETRANSMIT_INTERVAL: Duration = Duration::from_secs(5);

/// A decrypted request: its first inner payload type and the chain.
type InnerChain = (u8, Zeroizing<Vec<u8>>);

/// The IKEv2 responder.
pub struct Ikev2Responder {
    pub(crate) config: Ikev2Config,
    pub(crate) sas: HashMap<[u8; 8], IkeSa>,
    /// (peer, initiator SPI) → our SPI: a repeated IKE_SA_INIT gets the
    /// same answer (§2.1).
    pub(crate) by_initiator: HashMap<(SocketAddr, [u8; 8]), [u8; 8]>,
    /// IKE SA id → our SPI, so driver calls stay O(1).
    pub(crate) ids: HashMap<IkeSaId, [u8; 8]>,
    /// Inbound ESP SPIs in use, so a new one never collides.
    pub(crate) inbound_spis: HashMap<u32, IkeSaId>,
    pub(crate) cookies: CookieJar,
    pub(crate) half_open: usize,
    pub(crate) next_id: IkeSaId,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Ikev2Event>,
    pub(crate) stats: Ikev2Stats,
}

impl Ikev2Responder {
    pub fn new(config: Ikev2Config, now: Instant) -> Self {
        Ikev2Responder {
            config,
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            ids: HashMap::new(),
            inbound_spis: HashMap::new(),
            cookies: CookieJar::new(now),
            half_open: 0,
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Ikev2Stats::default(),
        }
    }

    pub fn config(&self) -> &Ikev2Config {
        &self.config
    }

    /// Replaces the settings (a server reload: a new certificate). SAs
    /// negotiated from now on use them; an established SA keeps its keys,
    /// and an IKE_AUTH answered later signs and sends the new certificate
    /// together, so each AUTH stays consistent (RFC 7296 §2.15).
    pub fn set_config(&mut self, config: Ikev2Config) {
        self.config = config;
    }

    pub fn stats(&self) -> Ikev2Stats {
        self.stats
    }

    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    pub fn half_open_count(&self) -> usize {
        self.half_open
    }

    pub fn child_sa_count(&self) -> usize {
        self.inbound_spis.len()
    }

    /// An IKEv2 message arrived from `remote` to our `local` address (the
    /// non-ESP marker already removed when it came to the NAT-T port).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        on_nat_t_port: bool,
        message: &[u8],
    ) {
        let header = match Header::parse(message) {
            Ok(h) => h,
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("malformed IKEv2 message: {e}"));
                return;
            }
        };
        if header.is_response() {
            self.handle_response(now, remote, &header, message);
            return;
        }
        if header.exchange == exchange::IKE_SA_INIT {
            if header.spi_r == [0; 8] && header.message_id == 0 {
                self.ike_sa_init(now, local, remote, on_nat_t_port, &header, message);
            } else {
                self.stats.malformed += 1;
            }
            return;
        }
        let Some(sa) = self.sas.get_mut(&header.spi_r) else {
            self.stats.unknown_sa += 1;
            // §2.21.4: INVALID_IKE_SPI may be sent unprotected; a flood of
            // such answers would only help an attacker, so we stay silent.
            return;
        };
        if sa.spi_i != header.spi_i || !header.from_initiator() {
            self.stats.unknown_sa += 1;
            return;
        }
        // §2.2: a retransmitted request gets the same answer again.
        if let Some((id, datagrams)) = &sa.last_response {
            if *id == header.message_id {
                self.stats.retransmits_answered += 1;
                let (peer, nat_t) = (sa.peer, sa.on_nat_t);
                let datagrams = datagrams.clone();
                for bytes in datagrams {
                    self.push_transmit(peer, nat_t, bytes);
                }
                return;
            }
        }
        if header.message_id != sa.expected_request {
            // Old or from the future: §2.3 window of one, silently dropped.
            self.stats.malformed += 1;
            return;
        }
        // RFC 7383 §2.6 and §3.14: verify and decrypt (and reassemble).
        let inner = match self.open_request(now, &header, message) {
            Ok(Some(inner)) => inner,
            Ok(None) => return,
            Err(e) => {
                self.stats.integrity_failed += 1;
                self.refuse(remote, format!("dropped an IKEv2 request: {e}"));
                return;
            }
        };
        if let Some(sa) = self.sas.get_mut(&header.spi_r) {
            sa.last_heard = now;
            // §2.23: behind a NAT the peer's address or port may change; the
            // authenticated request says where it is now.
            let moved = sa.peer != remote;
            sa.peer = remote;
            sa.on_nat_t = on_nat_t_port;
            // A MOBIKE peer announces moves with UPDATE_SA_ADDRESSES (RFC
            // 4555 §3.5), reported from there with the NAT state it brings.
            if moved && !sa.mobike && matches!(sa.stage, Stage::Established) {
                let ike_sa = sa.id;
                let udp_encapsulated = sa.nat.any();
                self.push_event(Ikev2Event::PeerMoved {
                    ike_sa,
                    peer: remote,
                    udp_encapsulated,
                });
            }
        }
        let (first, bytes) = inner;
        match header.exchange {
            exchange::IKE_AUTH => self.ike_auth(now, &header, first, &bytes),
            exchange::INFORMATIONAL => self.informational(now, &header, first, &bytes),
            exchange::CREATE_CHILD_SA => self.create_child_sa(now, &header, first, &bytes),
            other => {
                self.stats.malformed += 1;
                self.refuse(
                    remote,
                    format!("IKEv2 exchange type {other} is not one we know"),
                );
            }
        }
    }

    /// Verifies and decrypts a request's SK payload, or collects its SKF
    /// fragments until the message is whole (`Ok(None)` meanwhile).
    fn open_request(
        &mut self,
        now: Instant,
        header: &Header,
        message: &[u8],
    ) -> Result<Option<InnerChain>, String> {
        let sa = self
            .sas
            .get_mut(&header.spi_r)
            .ok_or_else(|| "unknown IKE SA".to_string())?;
        let located = encrypted::locate(message).map_err(|e| e.to_string())?;
        let content = encrypted::open(&sa.protection, sa.initiator_keys(), message, &located)
            .map_err(|e| match e {
                SkError::Integrity => "integrity check failed (forged, or keys differ)".to_string(),
                other => other.to_string(),
            })?;
        let Some((number, total)) = located.fragment else {
            return Ok(Some((located.next, content)));
        };
        // RFC 7383 §2.6: fragments are reassembled per Message ID; a new
        // Message ID discards what an older one left.
        let fresh = !matches!(&sa.reassembly, Some((id, _, _)) if *id == header.message_id);
        if fresh {
            sa.reassembly = Some((header.message_id, Reassembly::new(), now));
        }
        let Some((_, reassembly, _)) = sa.reassembly.as_mut() else {
            return Ok(None);
        };
        match reassembly.add(number, total, located.next, content) {
            Ok(Some(done)) => {
                sa.reassembly = None;
                Ok(Some((done.first_payload, done.inner)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                sa.reassembly = None;
                Err(format!("bad fragment: {e}"))
            }
        }
    }

    /// Sends a protected answer to request `message_id` of `spi_r`'s SA,
    /// fragmented when the peer supports it and the message is large, and
    /// keeps it for retransmitted requests.
    pub(crate) fn respond(
        &mut self,
        spi_r: [u8; 8],
        exchange_type: u8,
        message_id: u32,
        chain: &PayloadChain,
    ) {
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let header = Header::new(
            sa.spi_i,
            sa.spi_r,
            exchange_type,
            flags::RESPONSE,
            message_id,
        );
        let datagrams = match seal_message(sa, &header, chain, self.config.fragment_size) {
            Ok(d) => d,
            Err(e) => {
                let peer = sa.peer;
                self.refuse(peer, format!("could not protect our answer: {e}"));
                return;
            }
        };
        sa.last_response = Some((message_id, datagrams.clone()));
        sa.expected_request = message_id.wrapping_add(1);
        let (peer, nat_t) = (sa.peer, sa.on_nat_t);
        for bytes in datagrams {
            self.push_transmit(peer, nat_t, bytes);
        }
    }

    /// Sends a request of ours (liveness check, delete) on `spi_r`'s SA.
    pub(crate) fn request(
        &mut self,
        now: Instant,
        spi_r: [u8; 8],
        exchange_type: u8,
        chain: &PayloadChain,
    ) {
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let message_id = sa.our_next_request;
        let header = Header::new(sa.spi_i, sa.spi_r, exchange_type, 0, message_id);
        let Ok(datagrams) = seal_message(sa, &header, chain, self.config.fragment_size) else {
            return;
        };
        sa.our_next_request = message_id.wrapping_add(1);
        sa.our_request = Some(super::ike_sa::OurRequest {
            message_id,
            datagrams: datagrams.clone(),
            first_sent: now,
            last_sent: now,
            attempts: 1,
        });
        let (peer, nat_t) = (sa.peer, sa.on_nat_t);
        for bytes in datagrams {
            self.push_transmit(peer, nat_t, bytes);
        }
    }

    fn handle_response(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        header: &Header,
        message: &[u8],
    ) {
        let Some(sa) = self.sas.get_mut(&header.spi_r) else {
            self.stats.unknown_sa += 1;
            return;
        };
        let matches = sa.spi_i == header.spi_i
            && sa
                .our_request
                .as_ref()
                .is_some_and(|r| r.message_id == header.message_id);
        if !matches {
            self.stats.malformed += 1;
            return;
        }
        let ok = encrypted::locate(message)
            .and_then(|l| encrypted::open(&sa.protection, sa.initiator_keys(), message, &l))
            .is_ok();
        if !ok {
            self.stats.integrity_failed += 1;
            self.refuse(
                remote,
                "dropped an IKEv2 answer that failed its integrity check".into(),
            );
            return;
        }
        // The only requests we make are liveness checks, NAT probes and
        // deletes: any
        // protected answer proves the peer alive.
        sa.our_request = None;
        sa.last_heard = now;
    }

    pub(crate) fn push_transmit(
        &mut self,
        remote: SocketAddr,
        from_nat_t_port: bool,
        bytes: Vec<u8>,
    ) {
        if self.transmits.len() < MAX_QUEUED {
            self.transmits.push_back(Transmit {
                remote,
                from_nat_t_port,
                bytes,
            });
        }
    }

    pub(crate) fn push_event(&mut self, event: Ikev2Event) {
        if self.events.len() < MAX_QUEUED {
            self.events.push_back(event);
        }
    }

    pub(crate) fn refuse(&mut self, peer: SocketAddr, reason: String) {
        self.push_event(Ikev2Event::Refused { peer, reason });
    }

    /// ESP arrived on an SA of this IKE SA: the peer is alive, no liveness
    /// check needed (§2.4 suggests checking only when nothing is heard).
    pub fn note_traffic(&mut self, ike_sa: IkeSaId, now: Instant) {
        if let Some(spi) = self.ids.get(&ike_sa) {
            if let Some(sa) = self.sas.get_mut(spi) {
                sa.last_heard = now;
            }
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        };
        for sa in self.sas.values() {
            match &sa.stage {
                Stage::HalfOpen => consider(sa.created + self.config.half_open_timeout),
                Stage::Authorizing(p) => consider(p.requested_since + AUTHORIZATION_TIMEOUT),
                Stage::Eap(e) => consider(e.since + AUTHORIZATION_TIMEOUT),
                Stage::Established => match (&sa.our_request, sa.pending_probe) {
                    (Some(r), _) => consider(r.last_sent + RETRANSMIT_INTERVAL),
                    // The client asked for quiet until the probe: the
                    // probe is the next liveness check (nat_probe.rs).
                    (None, Some((at, _))) => consider(at),
                    (None, None) => consider(sa.last_heard + self.config.liveness_interval),
                },
            }
            if let Some((_, _, started)) = &sa.reassembly {
                consider(*started + REASSEMBLY_TIMEOUT);
            }
        }
        earliest
    }

    /// Expires half-open SAs, abandoned authorizations and fragments;
    /// checks liveness and retransmits our requests; gives up on peers
    /// that stopped answering.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cookies.rotate_if_due(now);
        let mut expired = Vec::new();
        let mut dead = Vec::new();
        let mut check = Vec::new();
        let mut resend = Vec::new();
        let mut probes = Vec::new();
        for (spi, sa) in self.sas.iter_mut() {
            if let Some((_, _, started)) = &sa.reassembly {
                if now >= *started + REASSEMBLY_TIMEOUT {
                    sa.reassembly = None;
                }
            }
            match &sa.stage {
                Stage::HalfOpen => {
                    if now >= sa.created + self.config.half_open_timeout {
                        expired.push(*spi);
                    }
                }
                Stage::Authorizing(p) => {
                    if now >= p.requested_since + AUTHORIZATION_TIMEOUT {
                        expired.push(*spi);
                    }
                }
                Stage::Eap(e) => {
                    if now >= e.since + AUTHORIZATION_TIMEOUT {
                        expired.push(*spi);
                    }
                }
                Stage::Established => match &mut sa.our_request {
                    Some(r) => {
                        if now >= r.first_sent + self.config.liveness_timeout {
                            dead.push(*spi);
                        } else if now >= r.last_sent + RETRANSMIT_INTERVAL {
                            r.last_sent = now;
                            r.attempts += 1;
                            resend.push((sa.peer, sa.on_nat_t, r.datagrams.clone()));
                        }
                    }
                    None => match sa.pending_probe {
                        Some((at, _)) if now >= at => probes.push(*spi),
                        Some(_) => {}
                        None if now >= sa.last_heard + self.config.liveness_interval => {
                            check.push(*spi)
                        }
                        None => {}
                    },
                },
            }
        }
        for spi in expired {
            self.remove_sa(spi, DownReason::Expired);
        }
        for spi in dead {
            self.remove_sa(spi, DownReason::DeadPeer);
        }
        for (peer, nat_t, datagrams) in resend {
            for bytes in datagrams {
                self.push_transmit(peer, nat_t, bytes);
            }
        }
        for spi in probes {
            self.send_probe(now, spi);
        }
        for spi in check {
            // §2.4: an empty INFORMATIONAL request is the liveness check.
            self.request(now, spi, exchange::INFORMATIONAL, &PayloadChain::new());
        }
    }

    /// Forgets an IKE SA; established ones report their children and
    /// themselves down.
    pub(crate) fn remove_sa(&mut self, spi_r: [u8; 8], reason: DownReason) {
        let Some(sa) = self.sas.remove(&spi_r) else {
            return;
        };
        self.ids.remove(&sa.id);
        self.by_initiator.remove(&(sa.peer, sa.spi_i));
        // The peer may have moved since IKE_SA_INIT; drop any stale index.
        self.by_initiator.retain(|_, v| *v != spi_r);
        if sa.is_half_open() {
            self.half_open = self.half_open.saturating_sub(1);
        }
        for child in &sa.children {
            self.inbound_spis.remove(&child.inbound_spi);
            self.push_event(Ikev2Event::ChildSaDown {
                ike_sa: sa.id,
                inbound_spi: child.inbound_spi,
                outbound_spi: child.outbound_spi,
                reason: reason.clone(),
            });
        }
        // Only an SA reported up is reported down; a rekeyed-away SA has
        // handed its children to its successor and reports nothing.
        match sa.stage {
            Stage::Established if !sa.rekeyed_away => self.push_event(Ikev2Event::IkeSaDown {
                ike_sa: sa.id,
                peer: sa.peer,
                reason,
            }),
            Stage::Eap(_) | Stage::Authorizing(_) => self.push_event(Ikev2Event::Abandoned {
                ike_sa: sa.id,
                peer: sa.peer,
            }),
            _ => {}
        }
    }

    /// Ends one IKE SA and its children (an administrator, a session
    /// timeout, a RADIUS Disconnect-Request): the peer is told with a
    /// Delete (RFC 7296 §1.4.1), which is sent once and not waited for.
    pub fn close(&mut self, now: Instant, ike_sa: IkeSaId) {
        let Some(&spi) = self.ids.get(&ike_sa) else {
            return;
        };
        self.delete_and_remove(now, spi);
    }

    fn delete_and_remove(&mut self, now: Instant, spi: [u8; 8]) {
        if self.sas.get(&spi).is_some_and(|sa| !sa.is_half_open()) {
            let delete = super::payloads::Delete {
                protocol: super::sa_payload::protocol::IKE,
                spis: Vec::new(),
            };
            let mut chain = PayloadChain::new();
            chain.push(wire::payload::DELETE, &delete.encode());
            self.request(now, spi, exchange::INFORMATIONAL, &chain);
        }
        self.remove_sa(spi, DownReason::Closed);
    }

    /// Ends every IKE SA (shutdown): each peer is told with a Delete.
    pub fn close_all(&mut self, now: Instant) {
        let spis: Vec<[u8; 8]> = self.sas.keys().copied().collect();
        for spi in spis {
            self.delete_and_remove(now, spi);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Ikev2Event> {
        self.events.pop_front()
    }
}

/// Seals `chain` under the SA's responder keys: one message, or RFC 7383
/// fragments when the peer announced support and it is too large.
fn seal_message(
    sa: &IkeSa,
    header: &Header,
    chain: &PayloadChain,
    fragment_size: usize,
) -> Result<Vec<Vec<u8>>, SkError> {
    let whole = encrypted::seal(
        &sa.protection,
        sa.responder_keys(),
        header,
        chain.first(),
        chain.bytes(),
    )?;
    if whole.len() <= fragment_size || !sa.peer_fragments {
        return Ok(vec![whole]);
    }
    fragment_message(
        &sa.protection,
        sa.responder_keys(),
        header,
        chain.first(),
        chain.bytes(),
        fragment_size,
    )
}
