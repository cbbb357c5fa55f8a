//! The IKEv1 responder endpoint: every IKE SA of one server, keyed by
//! cookies (so several clients behind one NAT, each with its own port and
//! cookies, never meet), the half-open limits, timers, and the queues of
//! what to send and what happened.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::config::ResponderConfig;
use super::events::{DownReason, IkeEvent, IkeSaId, Transmit};
use super::fragment::{self, Reassembled};
use super::ike_sa::{IkeSa, Phase};
use super::wire::{self, exchange, payload, Header, HEADER_LEN};

/// An ESP SA pair Quick Mode installed, tracked so Deletes, DPD and
/// lifetimes can remove it even after its IKE SA is gone (IKEv1 phase 2
/// SAs outlive the phase 1 SA that made them, RFC 2409 §5.5).
pub(crate) struct ChildRecord {
    pub ike_sa: IkeSaId,
    pub peer: SocketAddr,
    pub outbound_spi: u32,
    pub expires: Instant,
}

/// Counters for the operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponderStats {
    pub malformed: u64,
    pub unknown_sa: u64,
    pub refused: u64,
    pub half_open_refused: u64,
    pub retransmits_answered: u64,
    /// Quick Mode messages not answered while the IKE SA's certificate
    /// status was being asked.
    pub held_for_status: u64,
}

/// The IKEv1 responder.
pub struct Responder {
    pub(crate) config: ResponderConfig,
    pub(crate) rng: SystemRandom,
    pub(crate) sas: HashMap<[u8; 8], IkeSa>,
    /// (peer, initiator cookie) → responder cookie, to answer a repeated
    /// message 1 with the same SA.
    pub(crate) by_initiator: HashMap<(SocketAddr, [u8; 8]), [u8; 8]>,
    pub(crate) children: HashMap<u32, ChildRecord>,
    /// IKE SA id → responder cookie, so per-packet calls stay O(1).
    pub(crate) ids: HashMap<IkeSaId, [u8; 8]>,
    pub(crate) next_id: IkeSaId,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<IkeEvent>,
    pub(crate) stats: ResponderStats,
}

/// Outgoing queues are bounded: a peer that makes us talk more than this
/// before the driver drains is cut off at the queue, not in memory.
const MAX_QUEUED: usize = 4096;

impl Responder {
    pub fn new(config: ResponderConfig) -> Self {
        Responder {
            config,
            rng: SystemRandom::new(),
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            children: HashMap::new(),
            ids: HashMap::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ResponderStats::default(),
        }
    }

    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// Replaces the settings (a server reload: a new certificate). Main
    /// Modes answered from now on use them; message 6 carries the
    /// certificate and the signature made with its key together (RFC 2409
    /// §5.1), so a negotiation under way stays consistent.
    pub fn set_config(&mut self, config: ResponderConfig) {
        self.config = config;
    }

    pub fn stats(&self) -> ResponderStats {
        self.stats
    }

    /// IKE SAs, established or not (not those the peer deleted).
    pub fn ike_sa_count(&self) -> usize {
        self.sas
            .values()
            .filter(|sa| !matches!(sa.phase, Phase::Deleted(_)))
            .count()
    }

    pub fn child_sa_count(&self) -> usize {
        self.children.len()
    }

    /// An ISAKMP message arrived from `remote` to our `local` address (the
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
                self.refuse(remote, format!("malformed ISAKMP message: {e}"));
                return;
            }
        };
        if header.responder_cookie == [0; 8] {
            if header.exchange == exchange::MAIN_MODE && header.message_id == 0 {
                self.main_mode_1(now, local, remote, on_nat_t_port, &header, message);
            } else if header.exchange == exchange::AGGRESSIVE {
                self.stats.refused += 1;
                self.refuse(
                    remote,
                    "Aggressive Mode refused: it exposes a hash of the pre-shared key".into(),
                );
            } else {
                self.stats.malformed += 1;
            }
            return;
        }
        let Some(sa) = self.sas.get_mut(&header.responder_cookie) else {
            self.stats.unknown_sa += 1;
            return;
        };
        if sa.cookie_i != header.initiator_cookie {
            self.stats.unknown_sa += 1;
            return;
        }
        if header.next_payload == payload::FRAGMENT {
            self.fragment_arrived(now, local, remote, on_nat_t_port, &header, message);
            return;
        }
        // Retransmitted request: the same answer again.
        let fingerprint = IkeSa::fingerprint(message);
        if let Some(answer) = sa.answer_to(&fingerprint) {
            let answer = answer.to_vec();
            let cookie = header.responder_cookie;
            self.stats.retransmits_answered += 1;
            self.send_answer(cookie, answer);
            return;
        }
        // RFC 3947 §4: the initiator floats to the NAT-T port from message 5
        // on, and a NAT may give that flow a new source port.
        if sa.peer != remote || sa.on_nat_t_port != on_nat_t_port {
            let moved = sa.phase == Phase::Established;
            sa.peer = remote;
            sa.on_nat_t_port = on_nat_t_port;
            if moved {
                let id = sa.id;
                self.events.push_back(IkeEvent::PeerMoved {
                    ike_sa: id,
                    peer: remote,
                });
            }
        }
        let cookie = header.responder_cookie;
        let result = match (header.exchange, self.sas[&cookie].phase) {
            (exchange::MAIN_MODE, Phase::SentSa) => self.main_mode_3(now, cookie, &header, message),
            (exchange::MAIN_MODE, Phase::SentKe) => self.main_mode_5(now, cookie, &header, message),
            // RFC 2408 §5: the peer retransmits an unanswered Quick Mode,
            // and is answered once its certificate's status is known.
            (exchange::QUICK_MODE, Phase::Established)
                if self.sas[&cookie].status_pending.is_some() =>
            {
                self.stats.held_for_status += 1;
                Ok(None)
            }
            (exchange::QUICK_MODE, Phase::Established) => {
                self.quick_mode(now, cookie, &header, message)
            }
            (exchange::INFORMATIONAL, Phase::Established | Phase::Deleted(_)) => {
                self.informational(now, cookie, &header, message)
            }
            (exchange::INFORMATIONAL, _) => Err("an unauthenticated notification".to_string()),
            (x, _) => Err(format!("exchange type {x} out of place")),
        };
        match result {
            Ok(Some(answer)) => {
                if let Some(sa) = self.sas.get_mut(&cookie) {
                    sa.last_heard = now;
                    sa.remember(fingerprint, answer.clone());
                    self.send_answer(cookie, answer);
                }
            }
            Ok(None) => {
                if let Some(sa) = self.sas.get_mut(&cookie) {
                    sa.last_heard = now;
                }
            }
            Err(reason) => {
                self.stats.refused += 1;
                self.refuse(remote, reason);
                // A Main Mode that failed is forgotten; an established SA
                // survives a bad message (it may be forged).
                if self
                    .sas
                    .get(&cookie)
                    .is_some_and(|sa| sa.phase != Phase::Established)
                {
                    self.forget(cookie);
                }
            }
        }
    }

    /// Traffic was received from this IKE SA's peer (ESP): it is alive.
    pub fn note_traffic(&mut self, ike_sa: IkeSaId, now: Instant) {
        if let Some(sa) = self
            .ids
            .get(&ike_sa)
            .and_then(|cookie| self.sas.get_mut(cookie))
        {
            sa.last_heard = now;
        }
    }

    /// The earliest instant at which `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        };
        for sa in self.sas.values() {
            match sa.phase {
                Phase::Established => {
                    if let Some(e) = sa.expires {
                        consider(e);
                    }
                    if let Some(d) = sa.status_pending {
                        consider(d);
                    }
                    if sa.extensions.dpd {
                        match sa.dpd.pending {
                            Some((_, first, last)) => {
                                consider(first + self.config.dpd_timeout);
                                consider(last + DPD_RETRY);
                            }
                            None => consider(sa.last_heard + self.config.dpd_delay),
                        }
                    }
                }
                Phase::Deleted(until) => consider(until),
                Phase::SentSa | Phase::SentKe => {
                    consider(sa.created + self.config.half_open_timeout)
                }
            }
            if let Some(d) = sa.fragments.deadline() {
                consider(d);
            }
        }
        for c in self.children.values() {
            consider(c.expires);
        }
        earliest
    }

    /// Runs timers: half-open expiry, IKE SA and child lifetimes, DPD.
    pub fn handle_timeout(&mut self, now: Instant) {
        let stale: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| {
                sa.phase.is_half_open() && now >= sa.created + self.config.half_open_timeout
            })
            .map(|(c, _)| *c)
            .collect();
        for c in stale {
            if let Some(sa) = self.sas.get(&c) {
                let peer = sa.peer;
                self.refuse(peer, "Main Mode did not finish in time".into());
            }
            self.forget(c);
        }
        let gone: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| matches!(sa.phase, Phase::Deleted(until) if now >= until))
            .map(|(c, _)| *c)
            .collect();
        for c in gone {
            self.forget(c);
        }
        let expired: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.phase == Phase::Established)
            .filter(|(_, sa)| sa.expires.is_some_and(|e| now >= e))
            .map(|(c, _)| *c)
            .collect();
        for c in expired {
            self.delete_ike_sa(now, c, DownReason::Expired, true);
        }
        self.expire_status_checks(now);
        for sa in self.sas.values_mut() {
            sa.fragments.expire(now);
        }
        self.expire_quick_modes(now);
        let children: Vec<u32> = self
            .children
            .iter()
            .filter(|(_, c)| now >= c.expires)
            .map(|(spi, _)| *spi)
            .collect();
        for spi in children {
            self.delete_child(now, spi, DownReason::Expired, true);
        }
        self.run_dpd(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    /// Ends every SA (server shutdown): Deletes go out, events follow.
    pub fn close_all(&mut self, now: Instant) {
        let spis: Vec<u32> = self.children.keys().copied().collect();
        for spi in spis {
            self.delete_child(now, spi, DownReason::Closed, true);
        }
        let cookies: Vec<[u8; 8]> = self.sas.keys().copied().collect();
        for c in cookies {
            self.delete_ike_sa(now, c, DownReason::Closed, true);
        }
    }

    /// A FRAGMENT message for an SA: the whole message, once every piece is
    /// here, goes through `handle_datagram` like any other.
    fn fragment_arrived(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        on_nat_t_port: bool,
        header: &Header,
        message: &[u8],
    ) {
        let cookie = header.responder_cookie;
        let Some(sa) = self.sas.get_mut(&cookie) else {
            return;
        };
        if !(self.config.fragmentation && sa.extensions.fragmentation) {
            self.stats.malformed += 1;
            self.refuse(
                remote,
                "a fragment from a peer that did not announce fragmentation".into(),
            );
            return;
        }
        let body = match wire::payloads(header.next_payload, &message[HEADER_LEN..]) {
            Ok(p) if !p.is_empty() => p[0].body,
            _ => {
                self.stats.malformed += 1;
                self.refuse(remote, "a malformed fragment message".into());
                return;
            }
        };
        match sa.fragments.add(now, body) {
            Reassembled::Incomplete => {}
            Reassembled::Refused(why) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("fragment dropped: {why}"));
            }
            Reassembled::Complete(whole) => match Header::parse(&whole) {
                // The pieces must make one message of this SA, not another
                // fragment (no nesting) nor a message of another SA.
                Ok(h)
                    if h.next_payload != payload::FRAGMENT
                        && h.initiator_cookie == header.initiator_cookie
                        && h.responder_cookie == cookie =>
                {
                    self.handle_datagram(now, local, remote, on_nat_t_port, &whole)
                }
                _ => {
                    self.stats.malformed += 1;
                    self.refuse(
                        remote,
                        "reassembled fragments are not a message of this SA".into(),
                    );
                }
            },
        }
    }

    /// Sends an answer of an SA, in fragments when it is over the fragment
    /// size and the peer announced fragmentation.
    pub(crate) fn send_answer(&mut self, cookie: [u8; 8], answer: Vec<u8>) {
        let Some(sa) = self.sas.get_mut(&cookie) else {
            return;
        };
        let (peer, nat) = (sa.peer, sa.on_nat_t_port);
        let fragment_size = self.config.fragment_size;
        if self.config.fragmentation && sa.extensions.fragmentation && answer.len() > fragment_size
        {
            if let Ok(h) = Header::parse(&answer) {
                let id = sa.next_fragment_id;
                sa.next_fragment_id = sa.next_fragment_id.wrapping_add(1).max(1);
                for piece in fragment::fragment(&answer, &h, id, fragment_size) {
                    self.send(peer, nat, piece);
                }
                return;
            }
        }
        self.send(peer, nat, answer);
    }

    pub(crate) fn send(&mut self, remote: SocketAddr, from_nat_t_port: bool, bytes: Vec<u8>) {
        if self.transmits.len() < MAX_QUEUED {
            self.transmits.push_back(Transmit {
                remote,
                from_nat_t_port,
                bytes,
            });
        }
    }

    pub(crate) fn refuse(&mut self, peer: SocketAddr, reason: String) {
        if self.events.len() < MAX_QUEUED {
            self.events.push_back(IkeEvent::Refused { peer, reason });
        }
    }

    pub(crate) fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng
            .fill(&mut out)
            .expect("the system random source does not fail");
        out
    }

    /// A fresh inbound SPI: RFC 4303 §2.1 reserves 1–255; unique among ours.
    pub(crate) fn new_spi(&self) -> u32 {
        loop {
            let spi = u32::from_be_bytes(self.random_bytes::<4>());
            if spi > 255 && !self.children.contains_key(&spi) {
                return spi;
            }
        }
    }

    /// Drops an SA's state without telling anyone (half-open).
    pub(crate) fn forget(&mut self, cookie: [u8; 8]) {
        if let Some(sa) = self.sas.remove(&cookie) {
            self.ids.remove(&sa.id);
            self.by_initiator.remove(&(sa.peer, sa.cookie_i));
            self.by_initiator.retain(|_, c| *c != cookie);
        }
    }

    /// Half-open SAs (Main Mode not finished), in all and from one address.
    /// An SA the peer deleted, kept a little to read its other Deletes, is
    /// not one: counting it refused every client's next Main Mode for the
    /// grace period once 16 had hung up from one address (one NAT).
    pub(crate) fn half_open(&self, from: IpAddr) -> (usize, usize) {
        let mut total = 0;
        let mut source = 0;
        for sa in self.sas.values().filter(|sa| sa.phase.is_half_open()) {
            total += 1;
            if sa.peer.ip() == from {
                source += 1;
            }
        }
        (total, source)
    }

    /// Removes an IKE SA, telling the peer (if `notify`) and the driver.
    pub(crate) fn delete_ike_sa(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        reason: DownReason,
        notify: bool,
    ) {
        let Some(sa) = self.sas.get(&cookie) else {
            return;
        };
        let (id, peer, phase) = (sa.id, sa.peer, sa.phase);
        if let Phase::Deleted(_) = phase {
            // Already reported when the peer deleted it.
            self.forget(cookie);
            return;
        }
        if notify && phase == Phase::Established {
            self.send_delete_ike(now, cookie);
        }
        if reason == DownReason::DeletedByPeer && phase == Phase::Established {
            if let Some(sa) = self.sas.get_mut(&cookie) {
                sa.phase = Phase::Deleted(now + DELETED_GRACE);
            }
            self.by_initiator.retain(|_, c| *c != cookie);
        } else {
            self.forget(cookie);
        }
        self.events.push_back(IkeEvent::IkeSaDown {
            ike_sa: id,
            peer,
            reason,
        });
    }

    /// Removes a child SA, telling the peer through any live IKE SA with it.
    pub(crate) fn delete_child(
        &mut self,
        now: Instant,
        inbound_spi: u32,
        reason: DownReason,
        notify: bool,
    ) {
        let Some(child) = self.children.remove(&inbound_spi) else {
            return;
        };
        if child.outbound_spi == 0 {
            // Reserved for a Quick Mode that never finished: never installed.
            return;
        }
        if notify {
            self.send_delete_esp(now, child.peer, inbound_spi);
        }
        self.events.push_back(IkeEvent::ChildSaDown {
            ike_sa: child.ike_sa,
            inbound_spi,
            outbound_spi: child.outbound_spi,
            reason,
        });
    }

    /// Everything of one peer address goes (DPD gave up, INITIAL-CONTACT).
    pub(crate) fn drop_peer(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        keep: Option<[u8; 8]>,
        reason: DownReason,
    ) {
        let spis: Vec<u32> = self
            .children
            .iter()
            .filter(|(_, c)| c.peer == peer)
            .filter(|(_, c)| {
                keep.is_none_or(|k| self.sas.get(&k).is_none_or(|sa| sa.id != c.ike_sa))
            })
            .map(|(s, _)| *s)
            .collect();
        for spi in spis {
            self.delete_child(now, spi, reason.clone(), false);
        }
        let cookies: Vec<[u8; 8]> = self
            .sas
            .iter()
            .filter(|(c, sa)| sa.peer == peer && Some(**c) != keep)
            .map(|(c, _)| *c)
            .collect();
        for c in cookies {
            self.delete_ike_sa(now, c, reason.clone(), false);
        }
    }
}

/// How long an IKE SA the peer deleted still reads its Informationals.
pub(crate) const DELETED_GRACE: Duration = Duration::from_secs(10);

/// RFC 3706 §5.5: R-U-THERE is retransmitted until the peer is declared
/// dead; we repeat it at this interval.
pub(crate) const DPD_RETRY: Duration = Duration::from_secs(10);
