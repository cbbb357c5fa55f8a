//! The IKEv1 initiator endpoint (the client of L2TP/IPsec, RFC 3193): one
//! IKE SA with one server, Main Mode with a pre-shared key (RFC 2409 §5,
//! §5.4), Quick Mode for transport-mode ESP protecting the L2TP flow, NAT
//! traversal (RFC 3947), retransmission, child rekeying, Deletes and Dead
//! Peer Detection (RFC 3706). Sans-IO: the driver feeds datagrams and the
//! clock, and drains [`Transmit`]s and [`IkeEvent`]s.
//!
//! The exchanges live in sibling files: `initiator_main_mode.rs`,
//! `initiator_quick_mode.rs`, `initiator_informational.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::ike_crypto::{DhPrivate, HashAlg};

use super::crypt::MessageKeys;
use super::events::{DownReason, IkeEvent, IkeSaId, Transmit};
use super::fragment::{self, Reassembled, Reassembly};
use super::initiator_config::InitiatorConfig;
use super::nat_detection::NatState;
use super::proposal::Phase1Choice;
use super::vendor_ids::NatTVersion;
use super::wire::{self, exchange, payload, Header, HEADER_LEN};

/// Where Main Mode stands (RFC 2409 §5, initiator side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Sent message 1 (SA), waiting for message 2.
    SentSa,
    /// Sent message 3 (KE, Ni, NAT-D), waiting for message 4.
    SentKe,
    /// Sent message 5 (IDii, HASH_I), waiting for message 6.
    SentId,
    Established,
}

/// One Main Mode / IKE SA with the server.
pub(crate) struct IkeState {
    pub id: IkeSaId,
    pub cookie_i: [u8; 8],
    pub cookie_r: [u8; 8],
    pub stage: Stage,
    /// The body of our SA payload (RFC 2409 §5: SAi_b).
    pub sa_i_b: Vec<u8>,
    pub choice: Option<Phase1Choice>,
    /// The NAT-T dialect the server answered with (RFC 3947 §3.1).
    pub nat_t: Option<NatTVersion>,
    /// The server announced DPD (RFC 3706 §5.1).
    pub dpd: bool,
    pub dh: Option<DhPrivate>,
    pub g_xi: Vec<u8>,
    pub g_xr: Vec<u8>,
    pub ni: Vec<u8>,
    pub skeyid: Option<Zeroizing<Vec<u8>>>,
    pub keys: Option<MessageKeys>,
    /// Main Mode's CBC chain.
    pub iv: Vec<u8>,
    pub nat: NatState,
    pub peer_identity: String,
    /// When to run a fresh Main Mode in its place.
    pub renew_at: Option<Instant>,
    /// Both sides announced IKEv1 fragmentation.
    pub fragmentation: bool,
    /// The Fragment ID of our next fragmented message.
    pub next_fragment_id: u16,
    /// The server's fragmented message being put together.
    pub fragments: Reassembly,
}

/// A Quick Mode between our message 1 and the server's message 2.
pub(crate) struct PendingQuick {
    pub message_id: u32,
    pub ni: Vec<u8>,
    pub inbound_spi: u32,
    pub dh: Option<DhPrivate>,
    /// The IV for message 2: the last block of our message 1.
    pub iv: Vec<u8>,
    pub udp_encapsulated: bool,
    /// The child this Quick Mode replaces (a rekey), by inbound SPI.
    pub replaces: Option<u32>,
}

/// An ESP SA pair we installed.
pub(crate) struct Child {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub rekey_at: Instant,
    pub expires: Instant,
    /// A replacement is being negotiated.
    pub rekeying: bool,
    /// Replaced: deleted at this instant.
    pub retire_at: Option<Instant>,
}

/// The last request, resent until answered (RFC 2408 §5 leaves the timing
/// to implementations).
pub(crate) struct Outstanding {
    pub bytes: Vec<u8>,
    pub first_sent: Instant,
    pub resent: usize,
    /// What it was, for the give-up message.
    pub what: &'static str,
}

/// Dead peer detection (RFC 3706).
#[derive(Default)]
pub(crate) struct Dpd {
    pub sequence: u32,
    /// The R-U-THERE waiting for its ACK: sequence, first sent, last sent.
    pub pending: Option<(u32, Instant, Instant)>,
}

/// What went wrong with one incoming message.
pub(crate) enum Failure {
    /// Drop the message, log the line, carry on (it may be forged).
    Drop(String),
    /// The connection cannot go on.
    Fatal(String, DownReason),
}

pub(crate) type Handled = Result<(), Failure>;

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Drop(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure::Drop(s.to_string())
    }
}

/// RFC 3706 §5.5: R-U-THERE is repeated until the peer is declared dead.
pub(crate) const DPD_RETRY: Duration = Duration::from_secs(10);
/// Bound on queued output, as on the responder.
const MAX_QUEUED: usize = 1024;

/// The IKEv1 initiator.
pub struct Initiator {
    pub(crate) config: InitiatorConfig,
    pub(crate) rng: SystemRandom,
    pub(crate) local: SocketAddr,
    /// The server's IKE address (port 500).
    pub(crate) server: SocketAddr,
    /// Where we send now: port 500, or the NAT-T port after floating.
    pub(crate) peer: SocketAddr,
    pub(crate) on_nat_t: bool,
    pub(crate) ike: Option<IkeState>,
    pub(crate) next_ike_id: IkeSaId,
    pub(crate) children: Vec<Child>,
    pub(crate) quick: Option<PendingQuick>,
    /// A Quick Mode to run once Main Mode is up: the child it replaces.
    pub(crate) want_child: Option<Option<u32>>,
    /// Fingerprint of the last Quick Mode message 2 and our message 3, to
    /// answer a retransmitted message 2 again.
    pub(crate) last_quick_answer: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) request: Option<Outstanding>,
    pub(crate) keepalive_at: Option<Instant>,
    pub(crate) last_heard: Instant,
    pub(crate) dpd: Dpd,
    pub(crate) closed: bool,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<IkeEvent>,
}

impl Initiator {
    /// Starts Main Mode from `local` (the address we send from, as we know
    /// it) to the server at `remote` (its port 500): message 1 is queued.
    pub fn new(
        config: InitiatorConfig,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> Self {
        let mut initiator = Initiator {
            config,
            rng: SystemRandom::new(),
            local,
            server: remote,
            peer: remote,
            on_nat_t: false,
            ike: None,
            next_ike_id: 1,
            children: Vec::new(),
            quick: None,
            want_child: Some(None),
            last_quick_answer: None,
            request: None,
            keepalive_at: None,
            last_heard: now,
            dpd: Dpd::default(),
            closed: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        initiator.start_main_mode(now);
        initiator
    }

    /// The server's address we send to now (its NAT-T port after floating).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Main Mode is done and the IKE SA usable.
    pub fn is_established(&self) -> bool {
        self.ike
            .as_ref()
            .is_some_and(|i| i.stage == Stage::Established)
    }

    /// ESP SA pairs installed.
    pub fn child_count(&self) -> usize {
        self.children.len()
    }

    /// The connection ended (failure, close): nothing more will happen.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// An ISAKMP message arrived from the server (the non-ESP marker
    /// already removed when it came to the NAT-T port).
    pub fn handle_datagram(&mut self, now: Instant, on_nat_t_port: bool, message: &[u8]) {
        if self.closed {
            return;
        }
        let _ = on_nat_t_port;
        let header = match Header::parse(message) {
            Ok(h) => h,
            Err(e) => {
                self.refuse(format!(
                    "malformed ISAKMP message from {}: {e}",
                    self.server.ip()
                ));
                return;
            }
        };
        let Some(ike) = &self.ike else {
            return;
        };
        if header.initiator_cookie != ike.cookie_i
            || (ike.stage != Stage::SentSa && header.responder_cookie != ike.cookie_r)
        {
            // Another (older) IKE SA's message: nothing to do with us.
            return;
        }
        if header.next_payload == payload::FRAGMENT {
            self.fragment_arrived(now, on_nat_t_port, &header, message);
            return;
        }
        let stage = ike.stage;
        let result = match (header.exchange, stage) {
            (exchange::INFORMATIONAL, Stage::Established) if header.is_encrypted() => {
                self.informational(now, &header, message)
            }
            (exchange::INFORMATIONAL, _) if !header.is_encrypted() => {
                self.plain_notification(&header, message)
            }
            (exchange::MAIN_MODE, Stage::SentSa) => self.main_mode_2(now, &header, message),
            (exchange::MAIN_MODE, Stage::SentKe) => self.main_mode_4(now, &header, message),
            (exchange::MAIN_MODE, Stage::SentId) => self.main_mode_6(now, &header, message),
            // A repeated message 6: our message 5 crossed it; nothing to do.
            (exchange::MAIN_MODE, Stage::Established) => Ok(()),
            (exchange::QUICK_MODE, Stage::Established) => self.quick_mode(now, &header, message),
            (x, _) => Err(Failure::Drop(format!(
                "exchange type {x} from {} out of place",
                self.server.ip()
            ))),
        };
        match result {
            Ok(()) => {}
            Err(Failure::Drop(reason)) => self.refuse(reason),
            Err(Failure::Fatal(reason, down)) => self.fail(now, reason, down),
        }
    }

    /// ESP traffic came from the server: it is alive (RFC 3706 §5.4: no
    /// need to probe a peer we hear from).
    pub fn note_traffic(&mut self, now: Instant) {
        self.last_heard = now;
        if self.dpd.pending.is_some_and(|(_, first, _)| first <= now) {
            self.dpd.pending = None;
        }
    }

    /// The earliest instant at which `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        if let Some(r) = &self.request {
            consider(r.first_sent + self.config.give_up_after);
            if let Some(at) = self.config.retransmit_at.get(r.resent) {
                consider(r.first_sent + *at);
            }
        }
        if let Some(k) = self.keepalive_at {
            consider(k);
        }
        if let Some(ike) = &self.ike {
            if ike.stage == Stage::Established {
                if let Some(r) = ike.renew_at {
                    consider(r);
                }
                if ike.dpd {
                    match self.dpd.pending {
                        Some((_, first, last)) => {
                            consider(first + self.config.dpd_timeout);
                            consider(last + DPD_RETRY);
                        }
                        None => consider(self.last_heard + self.config.dpd_delay),
                    }
                }
            }
        }
        for c in &self.children {
            if !c.rekeying {
                consider(c.rekey_at);
            }
            if let Some(r) = c.retire_at {
                consider(r);
            }
            consider(c.expires);
        }
        earliest
    }

    /// Runs timers: retransmission, NAT-keepalives, DPD, rekeys, expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.run_retransmission(now);
        if self.closed {
            return;
        }
        if self.keepalive_at.is_some_and(|k| now >= k) {
            // RFC 3948 §2.3: keeps the NAT mapping for port 4500 open.
            self.send(vec![crate::udp_encap::NAT_KEEPALIVE]);
            self.keepalive_at = Some(now + self.config.keepalive_interval);
        }
        self.run_dpd(now);
        if self.closed {
            return;
        }
        self.run_lifetimes(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.events.pop_front()
    }

    /// Ends the connection: Deletes for every child and the IKE SA go out
    /// (RFC 2408 §4.8), then the events follow.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let spis: Vec<u32> = self.children.iter().map(|c| c.inbound_spi).collect();
        for spi in spis {
            self.remove_child(now, spi, DownReason::Closed, true);
        }
        if self.is_established() {
            self.send_delete_ike(now);
        }
        self.end_ike(DownReason::Closed);
        self.closed = true;
    }

    fn run_retransmission(&mut self, now: Instant) {
        let Some(r) = &mut self.request else {
            return;
        };
        if now >= r.first_sent + self.config.give_up_after {
            let what = r.what;
            let reason = if what == "Main Mode message 1" {
                format!("no answer from {}: UDP 500 blocked?", self.server.ip())
            } else if what == "Main Mode message 5" {
                format!(
                    "no answer from {} to Main Mode message 5 (our identity): the pre-shared key is probably wrong{}",
                    self.server.ip(),
                    if self.on_nat_t { ", or UDP 4500 is blocked" } else { "" }
                )
            } else {
                format!("no answer from {} to {what}", self.server.ip())
            };
            self.fail(now, reason, DownReason::DeadPeer);
            return;
        }
        if let Some(at) = self.config.retransmit_at.get(r.resent) {
            if now >= r.first_sent + *at {
                r.resent += 1;
                let bytes = r.bytes.clone();
                self.send_maybe_fragmented(bytes);
            }
        }
    }

    fn run_lifetimes(&mut self, now: Instant) {
        let expired: Vec<u32> = self
            .children
            .iter()
            .filter(|c| now >= c.expires)
            .map(|c| c.inbound_spi)
            .collect();
        for spi in expired {
            self.remove_child(now, spi, DownReason::Expired, true);
        }
        let retired: Vec<u32> = self
            .children
            .iter()
            .filter(|c| c.retire_at.is_some_and(|r| now >= r))
            .map(|c| c.inbound_spi)
            .collect();
        for spi in retired {
            // The new pair has been up for the overlap: now the old one
            // goes (RFC 2408 §4.8).
            self.remove_child(now, spi, DownReason::Replaced, true);
        }
        if let Some(ike) = &self.ike {
            if ike.stage == Stage::Established
                && ike.renew_at.is_some_and(|r| now >= r)
                && self.quick.is_none()
            {
                // No IKEv1 rekey exists for phase 1: a fresh Main Mode
                // replaces it; the children live on (RFC 2409 §5.5).
                self.end_ike(DownReason::Expired);
                self.want_child = None;
                self.start_main_mode(now);
                return;
            }
        }
        if self.quick.is_some() || self.want_child.is_some() {
            return;
        }
        let due = self
            .children
            .iter()
            .find(|c| !c.rekeying && now >= c.rekey_at)
            .map(|c| c.inbound_spi);
        if let Some(spi) = due {
            if let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == spi) {
                c.rekeying = true;
            }
            if self.is_established() {
                self.start_quick_mode(now, Some(spi));
            } else {
                self.want_child = Some(Some(spi));
                if self.ike.is_none() {
                    self.start_main_mode(now);
                }
            }
        }
    }

    /// Ends everything with a reason the user reads.
    pub(crate) fn fail(&mut self, now: Instant, reason: String, down: DownReason) {
        self.refuse(reason);
        let spis: Vec<u32> = self.children.iter().map(|c| c.inbound_spi).collect();
        for spi in spis {
            self.remove_child(now, spi, down.clone(), false);
        }
        self.end_ike(down);
        self.closed = true;
        self.request = None;
        self.quick = None;
    }

    /// Forgets the IKE SA, telling the driver.
    pub(crate) fn end_ike(&mut self, reason: DownReason) {
        if let Some(ike) = self.ike.take() {
            self.events.push_back(IkeEvent::IkeSaDown {
                ike_sa: ike.id,
                peer: self.peer,
                reason,
            });
        }
        self.request = None;
        self.quick = None;
        self.dpd.pending = None;
    }

    pub(crate) fn remove_child(
        &mut self,
        now: Instant,
        inbound_spi: u32,
        reason: DownReason,
        notify: bool,
    ) {
        let Some(at) = self
            .children
            .iter()
            .position(|c| c.inbound_spi == inbound_spi)
        else {
            return;
        };
        let child = self.children.remove(at);
        if notify && self.is_established() {
            self.send_delete_esp(now, inbound_spi);
        }
        let ike_sa = self.ike.as_ref().map_or(0, |i| i.id);
        self.events.push_back(IkeEvent::ChildSaDown {
            ike_sa,
            inbound_spi,
            outbound_spi: child.outbound_spi,
            reason,
        });
    }

    /// Sends a request and keeps it for retransmission.
    pub(crate) fn send_request(&mut self, now: Instant, bytes: Vec<u8>, what: &'static str) {
        self.request = Some(Outstanding {
            bytes: bytes.clone(),
            first_sent: now,
            resent: 0,
            what,
        });
        self.send_maybe_fragmented(bytes);
    }

    /// Sends a message, in fragments when both sides announced IKEv1
    /// fragmentation and it is over the fragment size.
    pub(crate) fn send_maybe_fragmented(&mut self, bytes: Vec<u8>) {
        let size = self.config.fragment_size;
        if let Some(ike) = self.ike.as_mut() {
            if ike.fragmentation && bytes.len() > size {
                if let Ok(h) = Header::parse(&bytes) {
                    let id = ike.next_fragment_id;
                    ike.next_fragment_id = ike.next_fragment_id.wrapping_add(1).max(1);
                    for piece in fragment::fragment(&bytes, &h, id, size) {
                        self.send(piece);
                    }
                    return;
                }
            }
        }
        self.send(bytes);
    }

    /// A FRAGMENT message of our IKE SA: once complete, the whole message
    /// is handled like any other (one level: a fragment of fragments is
    /// refused).
    fn fragment_arrived(
        &mut self,
        now: Instant,
        on_nat_t_port: bool,
        header: &Header,
        message: &[u8],
    ) {
        let server = self.server.ip();
        let Some(ike) = self.ike.as_mut() else {
            return;
        };
        if !ike.fragmentation {
            self.refuse(format!(
                "a fragment from {server}, which did not announce fragmentation"
            ));
            return;
        }
        let body = match wire::payloads(header.next_payload, &message[HEADER_LEN..]) {
            Ok(p) if !p.is_empty() => p[0].body,
            _ => {
                self.refuse(format!("a malformed fragment message from {server}"));
                return;
            }
        };
        match ike.fragments.add(now, body) {
            Reassembled::Incomplete => {}
            Reassembled::Refused(why) => {
                self.refuse(format!("fragment from {server} dropped: {why}"))
            }
            Reassembled::Complete(whole) => match Header::parse(&whole) {
                Ok(h)
                    if h.next_payload != payload::FRAGMENT
                        && h.initiator_cookie == header.initiator_cookie
                        && h.responder_cookie == header.responder_cookie =>
                {
                    self.handle_datagram(now, on_nat_t_port, &whole)
                }
                _ => self.refuse(format!(
                    "reassembled fragments from {server} are not a message of our IKE SA"
                )),
            },
        }
    }

    pub(crate) fn send(&mut self, bytes: Vec<u8>) {
        if self.transmits.len() < MAX_QUEUED {
            self.transmits.push_back(Transmit {
                remote: self.peer,
                from_nat_t_port: self.on_nat_t,
                bytes,
            });
        }
    }

    pub(crate) fn refuse(&mut self, reason: String) {
        if self.events.len() < MAX_QUEUED {
            self.events.push_back(IkeEvent::Refused {
                peer: self.server,
                reason,
            });
        }
    }

    pub(crate) fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng
            .fill(&mut out)
            .expect("the system random source does not fail");
        out
    }

    /// A fresh non-zero message ID (RFC 2408 §3.1: random for phase 2).
    pub(crate) fn new_message_id(&self) -> u32 {
        loop {
            let m = u32::from_be_bytes(self.random_bytes::<4>());
            if m != 0 {
                return m;
            }
        }
    }

    /// A fresh inbound SPI: RFC 4303 §2.1 reserves 1–255.
    pub(crate) fn new_spi(&self) -> u32 {
        loop {
            let spi = u32::from_be_bytes(self.random_bytes::<4>());
            if spi > 255 && !self.children.iter().any(|c| c.inbound_spi == spi) {
                return spi;
            }
        }
    }

    /// The digest that recognises a retransmitted message.
    pub(crate) fn fingerprint(message: &[u8]) -> Vec<u8> {
        HashAlg::Sha256.digest(&[message])
    }
}
