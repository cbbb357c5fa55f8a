//! The IKEv2 initiator endpoint (`ras connect ikev2://`): one IKE SA with
//! its child SAs toward one server. Sans-IO like the responder: datagrams
//! and the clock go in, datagrams and events come out. The exchanges are
//! in `initiator_exchanges`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::esp::CipherSuite;
use crate::ike_crypto::ikev2_keys::IkeSaKeys;
use crate::ike_crypto::{DhPrivate, HashAlg};
use crate::ikev1::nat_detection::NatState;

use super::encrypted::{self, DirectionKeys, SkTransform};
use super::events::{ChildSa, DownReason, Transmit};
use super::fragments::{fragment_message, Reassembly};
use super::initiator_config::Ikev2InitiatorConfig;
use super::payloads::{Delete, Notify};
use super::sa_payload::protocol;
use super::traffic_selectors::TrafficSelector;
use super::wire::{self, exchange, flags, payload, Header, PayloadChain};

/// What the initiator tells its driver.
pub enum Ikev2ClientEvent {
    /// An EAP message from the server (Request, Success or Failure): answer
    /// a Request with `eap_response`; after Success call `eap_finished`
    /// with the method's MSK.
    EapRequest { packet: Vec<u8> },
    /// The tunnel is up: the address and DNS the server gave, and what may
    /// be reached through it.
    Connected {
        virtual_ipv4: Option<Ipv4Addr>,
        dns: Vec<IpAddr>,
        server_selectors: Vec<TrafficSelector>,
        nat: String,
        suite: String,
    },
    /// Install these ESP SAs (tunnel mode).
    ChildSaUp(Box<ChildSa>),
    /// Remove the ESP SAs with these SPIs.
    ChildSaDown { inbound_spi: u32, outbound_spi: u32 },
    /// The IKE SA is gone; the reason is for the user.
    Down { reason: String },
    /// The NAT's UDP timeout was measured (nat_probe.rs); the keepalive
    /// interval is now `keepalive`.
    NatTimeoutMeasured {
        timeout: Duration,
        keepalive: Duration,
    },
    /// The IKE SA was replaced by a new one (initiator_ike_rekey.rs); the
    /// child SAs carry on unchanged.
    IkeSaRekeyed,
    /// An IKE SA rekey failed; it is tried again shortly.
    IkeSaRekeyFailed { reason: String },
}

/// Where the connection is.
pub(crate) enum Phase {
    /// IKE_SA_INIT sent.
    SaInit {
        dh: DhPrivate,
        cookie: Option<Vec<u8>>,
    },
    /// IKE_AUTH sent (the first one, or one of an EAP conversation).
    Auth,
    /// An EAP Request was handed to the driver.
    EapWithCaller,
    /// EAP succeeded; the driver computes the MSK.
    EapDone,
    Established,
    Closed,
}

/// A request of ours awaiting its answer (§2.1: one at a time here).
pub(crate) struct Outstanding {
    pub message_id: u32,
    pub datagrams: Vec<Vec<u8>>,
    pub first_sent: Instant,
    pub next_retransmit: usize,
    pub purpose: Purpose,
}

pub(crate) enum Purpose {
    SaInit,
    Auth,
    Liveness,
    /// RFC 4555 §3.5: UPDATE_SA_ADDRESSES from our new address.
    UpdateAddresses,
    RekeyChild {
        new_inbound_spi: u32,
        nonce: Vec<u8>,
        old_inbound_spi: u32,
    },
    DeleteChild {
        inbound_spi: u32,
        outbound_spi: u32,
    },
    /// DELAYED_PROBE_REQUEST (nat_probe.rs).
    NatProbe(super::nat_probe::ProbeRequest),
    /// A new IKE SA (initiator_ike_rekey.rs).
    RekeyIke(Box<super::initiator_ike_rekey::IkeRekeyRequest>),
}

/// A child SA of ours.
#[derive(Clone, Debug)]
pub(crate) struct ClientChild {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub suite: CipherSuite,
    pub created: Instant,
    pub client_selectors: Vec<TrafficSelector>,
    pub server_selectors: Vec<TrafficSelector>,
    pub rekeying: bool,
}

pub struct Ikev2Initiator {
    pub(crate) config: Ikev2InitiatorConfig,
    pub(crate) local: SocketAddr,
    /// Where IKE goes: the server's port 500, or its NAT-T port after the
    /// float (§2.23).
    pub(crate) remote: SocketAddr,
    pub(crate) on_nat_t: bool,
    pub(crate) phase: Phase,
    pub(crate) spi_i: [u8; 8],
    pub(crate) spi_r: [u8; 8],
    pub(crate) ni: Vec<u8>,
    pub(crate) nr: Vec<u8>,
    pub(crate) init_request: Vec<u8>,
    pub(crate) init_response: Vec<u8>,
    pub(crate) prf: HashAlg,
    pub(crate) protection: Option<SkTransform>,
    pub(crate) keys: Option<IkeSaKeys>,
    /// The IKE proposal the server chose and its group: a rekey offers
    /// them again (initiator_ike_rekey.rs).
    pub(crate) ike_proposal: Option<super::sa_payload::Proposal>,
    pub(crate) ike_group: crate::ike_crypto::DhGroup,
    /// When the IKE SA is rekeyed next (None before it is up).
    pub(crate) ike_rekey_at: Option<Instant>,
    pub(crate) ike_rekeys: u64,
    /// The IKE SA a rekey replaced, until its Delete is answered.
    pub(crate) retiring: Option<super::initiator_ike_rekey::RetiringSa>,
    /// What NAT detection acts on: `nat_seen`, with our side counted as
    /// behind a NAT when encapsulation is forced.
    pub(crate) nat: NatState,
    /// What the NAT_DETECTION payloads showed (§2.23), for the user.
    pub(crate) nat_seen: NatState,
    pub(crate) server_fragments: bool,
    /// The server announced MOBIKE in IKE_AUTH (RFC 4555 §3.2).
    pub(crate) server_mobike: bool,
    /// Our address changed and the server has not been told yet.
    pub(crate) address_update_due: bool,
    /// The server echoed NAT_PROBE_SUPPORTED (nat_probe.rs).
    pub(crate) server_nat_probe: bool,
    pub(crate) nat_meter: Option<super::nat_probe::NatTimeoutMeter>,
    pub(crate) nat_status: super::nat_probe::NatTimeoutStatus,
    /// The NAT keepalive interval in use: the configured one, or one
    /// below the measured NAT timeout.
    pub(crate) keepalive_interval: Duration,
    /// A liveness check is wanted now (a NAT mapping to re-create).
    pub(crate) liveness_due: bool,
    /// We moved: measure the NAT again once the server confirmed.
    pub(crate) nat_remeasure: bool,
    /// UPDATE_SA_ADDRESSES requests the server has answered (§3.5).
    pub(crate) address_updates_answered: u64,
    pub(crate) idi_body: Vec<u8>,
    /// The server's IDr body, which its AUTH signs.
    pub(crate) server_idr: Vec<u8>,
    /// The subject of the server's certificate once it checked out.
    pub(crate) server_subject: String,
    /// RFC 7427 hash algorithms the server announced (empty: none).
    pub(crate) server_hashes: Vec<u16>,
    /// Our SPI of the first child, offered in IKE_AUTH.
    pub(crate) first_inbound_spi: u32,
    pub(crate) msk: Option<Zeroizing<Vec<u8>>>,
    pub(crate) next_message_id: u32,
    pub(crate) outstanding: Option<Outstanding>,
    /// The server's requests (liveness, deletes): the next Message ID it
    /// may use and our last answer.
    pub(crate) server_next_request: u32,
    pub(crate) last_answer: Option<(u32, Vec<Vec<u8>>)>,
    pub(crate) reassembly: Option<(u32, Reassembly)>,
    pub(crate) children: Vec<ClientChild>,
    pub(crate) virtual_ipv4: Option<Ipv4Addr>,
    pub(crate) last_heard: Instant,
    pub(crate) last_keepalive: Instant,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Ikev2ClientEvent>,
}

impl Ikev2Initiator {
    /// Starts a connection from `local` to the server at `remote` (its IKE
    /// port, normally 500): IKE_SA_INIT goes out at once.
    pub fn new(
        config: Ikev2InitiatorConfig,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> Self {
        let mut spi_i = [0u8; 8];
        while spi_i == [0; 8] {
            let _ = aws_lc_rs::rand::fill(&mut spi_i);
        }
        let mut ni = vec![0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut ni);
        let group = config
            .ike_offers
            .first()
            .map(|o| o.group)
            .unwrap_or(crate::ike_crypto::DhGroup::Ecp256);
        let keepalive_interval = config.keepalive_interval;
        let mut me = Ikev2Initiator {
            config,
            local,
            remote,
            on_nat_t: false,
            phase: Phase::Closed,
            spi_i,
            spi_r: [0; 8],
            ni,
            nr: Vec::new(),
            init_request: Vec::new(),
            init_response: Vec::new(),
            prf: HashAlg::Sha256,
            protection: None,
            keys: None,
            ike_proposal: None,
            ike_group: group,
            ike_rekey_at: None,
            ike_rekeys: 0,
            retiring: None,
            nat: NatState::default(),
            nat_seen: NatState::default(),
            server_fragments: false,
            server_mobike: false,
            address_update_due: false,
            server_nat_probe: false,
            nat_meter: None,
            nat_status: super::nat_probe::NatTimeoutStatus::Off,
            keepalive_interval,
            liveness_due: false,
            nat_remeasure: false,
            address_updates_answered: 0,
            idi_body: Vec::new(),
            server_idr: Vec::new(),
            server_subject: String::new(),
            server_hashes: Vec::new(),
            first_inbound_spi: random_spi(),
            msk: None,
            next_message_id: 0,
            outstanding: None,
            server_next_request: 0,
            last_answer: None,
            reassembly: None,
            children: Vec::new(),
            virtual_ipv4: None,
            last_heard: now,
            last_keepalive: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        me.send_sa_init(now, group, None);
        me
    }

    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Where IKE (and UDP-encapsulated ESP) goes now.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn virtual_ipv4(&self) -> Option<Ipv4Addr> {
        self.virtual_ipv4
    }

    /// The subject of the server's certificate, once checked (empty when
    /// the server authenticated with a shared key).
    pub fn server_subject(&self) -> &str {
        &self.server_subject
    }

    pub fn child_count(&self) -> usize {
        self.children.len()
    }

    /// ESP arrived: the server is alive.
    pub fn note_traffic(&mut self, now: Instant) {
        self.last_heard = now;
        self.taint_probe();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Ikev2ClientEvent> {
        self.events.pop_front()
    }

    /// A datagram from the server (non-ESP marker removed on port 4500).
    pub fn handle_datagram(&mut self, now: Instant, on_nat_t_port: bool, message: &[u8]) {
        if self.is_closed() {
            return;
        }
        let Ok(header) = Header::parse(message) else {
            return;
        };
        if self.retiring_answer(&header) {
            return;
        }
        if header.spi_i != self.spi_i || header.from_initiator() {
            return;
        }
        let _ = on_nat_t_port;
        if header.is_response() {
            let expected = self
                .outstanding
                .as_ref()
                .is_some_and(|o| o.message_id == header.message_id);
            if !expected {
                return;
            }
            if header.exchange == exchange::IKE_SA_INIT {
                self.sa_init_response(now, &header, message);
                return;
            }
            let Some((first, inner)) = self.open(&header, message) else {
                return;
            };
            self.last_heard = now;
            let Some(done) = self.outstanding.take() else {
                return;
            };
            match done.purpose {
                Purpose::SaInit => {}
                Purpose::Auth => self.auth_response(now, first, &inner),
                Purpose::Liveness => {}
                Purpose::NatProbe(request) => self.probe_request_answered(now, request),
                Purpose::UpdateAddresses => {
                    // The server now sends to where the request came
                    // from (RFC 4555 §3.5); its NAT-D tells whether a NAT
                    // is in the way now.
                    self.note_update_answer(first, &inner);
                    self.address_updates_answered += 1;
                    if std::mem::take(&mut self.nat_remeasure) {
                        self.restart_nat_measurement(now);
                    }
                }
                Purpose::RekeyChild {
                    new_inbound_spi,
                    nonce,
                    old_inbound_spi,
                } => self.rekey_response(
                    now,
                    first,
                    &inner,
                    new_inbound_spi,
                    &nonce,
                    old_inbound_spi,
                ),
                Purpose::RekeyIke(request) => self.ike_rekey_response(now, first, &inner, *request),
                Purpose::DeleteChild {
                    inbound_spi,
                    outbound_spi,
                } => {
                    self.children.retain(|c| c.inbound_spi != inbound_spi);
                    self.events.push_back(Ikev2ClientEvent::ChildSaDown {
                        inbound_spi,
                        outbound_spi,
                    });
                }
            }
            self.start_due_work(now);
        } else {
            self.server_request(now, &header, message);
        }
    }

    /// Verifies and decrypts a message from the server (fragments are
    /// collected until whole).
    pub(crate) fn open(
        &mut self,
        header: &Header,
        message: &[u8],
    ) -> Option<(u8, Zeroizing<Vec<u8>>)> {
        let protection = self.protection?;
        let keys = self.keys.as_ref()?;
        let located = encrypted::locate(message).ok()?;
        let content = encrypted::open(
            &protection,
            DirectionKeys {
                encr: &keys.sk_er,
                integ: &keys.sk_ar,
            },
            message,
            &located,
        )
        .ok()?;
        let Some((number, total)) = located.fragment else {
            return Some((located.next, content));
        };
        if !matches!(&self.reassembly, Some((id, _)) if *id == header.message_id) {
            self.reassembly = Some((header.message_id, Reassembly::new()));
        }
        let (_, reassembly) = self.reassembly.as_mut()?;
        match reassembly.add(number, total, located.next, content) {
            Ok(Some(done)) => {
                self.reassembly = None;
                Some((done.first_payload, done.inner))
            }
            Ok(None) => None,
            Err(_) => {
                self.reassembly = None;
                None
            }
        }
    }

    /// Seals a chain under our keys (fragmented when the server supports
    /// it and the message is large).
    pub(crate) fn seal(
        &self,
        exchange_type: u8,
        message_id: u32,
        response: bool,
        chain: &PayloadChain,
    ) -> Option<Vec<Vec<u8>>> {
        let protection = self.protection?;
        let keys = self.keys.as_ref()?;
        let header = Header::new(
            self.spi_i,
            self.spi_r,
            exchange_type,
            flags::INITIATOR | if response { flags::RESPONSE } else { 0 },
            message_id,
        );
        let ours = DirectionKeys {
            encr: &keys.sk_ei,
            integ: &keys.sk_ai,
        };
        let whole =
            encrypted::seal(&protection, ours, &header, chain.first(), chain.bytes()).ok()?;
        if whole.len() <= self.config.fragment_size || !self.server_fragments {
            return Some(vec![whole]);
        }
        fragment_message(
            &protection,
            ours,
            &header,
            chain.first(),
            chain.bytes(),
            self.config.fragment_size,
        )
        .ok()
    }

    /// Sends a protected request and waits for its answer.
    pub(crate) fn send_request(
        &mut self,
        now: Instant,
        exchange_type: u8,
        chain: &PayloadChain,
        purpose: Purpose,
    ) {
        let message_id = self.next_message_id;
        let Some(datagrams) = self.seal(exchange_type, message_id, false, chain) else {
            self.fail(now, "could not protect a request".into());
            return;
        };
        self.next_message_id = message_id.wrapping_add(1);
        self.send_tracked(now, message_id, datagrams, purpose);
    }

    pub(crate) fn send_tracked(
        &mut self,
        now: Instant,
        message_id: u32,
        datagrams: Vec<Vec<u8>>,
        purpose: Purpose,
    ) {
        for bytes in &datagrams {
            self.push_transmit(bytes.clone());
        }
        self.outstanding = Some(Outstanding {
            message_id,
            datagrams,
            first_sent: now,
            next_retransmit: 0,
            purpose,
        });
    }

    pub(crate) fn push_transmit(&mut self, bytes: Vec<u8>) {
        // Anything we send refreshes the mapping an awaited probe tests.
        self.taint_probe();
        self.transmits.push_back(Transmit {
            remote: self.remote,
            from_nat_t_port: self.on_nat_t,
            bytes,
        });
    }

    /// A request from the server: liveness checks and deletes (§1.4).
    fn server_request(&mut self, now: Instant, header: &Header, message: &[u8]) {
        if let Some((id, datagrams)) = &self.last_answer {
            if *id == header.message_id {
                for bytes in datagrams.clone() {
                    self.push_transmit(bytes);
                }
                return;
            }
        }
        if header.message_id != self.server_next_request
            || !matches!(
                header.exchange,
                exchange::INFORMATIONAL | exchange::CREATE_CHILD_SA
            )
        {
            return;
        }
        let Some((first, inner)) = self.open(header, message) else {
            return;
        };
        self.last_heard = now;
        if header.exchange == exchange::CREATE_CHILD_SA {
            let answer = self.server_create_child(now, first, &inner);
            if let Some(datagrams) =
                self.seal(exchange::CREATE_CHILD_SA, header.message_id, true, &answer)
            {
                for bytes in &datagrams {
                    self.push_transmit(bytes.clone());
                }
                self.last_answer = Some((header.message_id, datagrams));
            }
            self.server_next_request = header.message_id.wrapping_add(1);
            self.start_due_work(now);
            return;
        }
        self.server_request_seen(now, first, &inner);
        let Ok(chain) = wire::payloads(first, &inner) else {
            return;
        };
        let mut answer = PayloadChain::new();
        let mut ike_deleted = false;
        for p in &chain {
            if p.kind != payload::DELETE {
                continue;
            }
            let Ok(delete) = Delete::parse(p.body) else {
                continue;
            };
            if delete.protocol == protocol::IKE {
                ike_deleted = true;
                continue;
            }
            let mut ours = Vec::new();
            let mut gone = Vec::new();
            self.children.retain(|c| {
                if delete.spis.contains(&c.outbound_spi.to_be_bytes()) {
                    ours.push(c.inbound_spi.to_be_bytes());
                    gone.push((c.inbound_spi, c.outbound_spi));
                    false
                } else {
                    true
                }
            });
            for (inbound_spi, outbound_spi) in gone {
                self.events.push_back(Ikev2ClientEvent::ChildSaDown {
                    inbound_spi,
                    outbound_spi,
                });
            }
            if !ours.is_empty() {
                answer.push(
                    payload::DELETE,
                    &Delete {
                        protocol: protocol::ESP,
                        spis: ours,
                    }
                    .encode(),
                );
            }
        }
        if let Some(datagrams) =
            self.seal(exchange::INFORMATIONAL, header.message_id, true, &answer)
        {
            for bytes in &datagrams {
                self.push_transmit(bytes.clone());
            }
            self.last_answer = Some((header.message_id, datagrams));
        }
        self.server_next_request = header.message_id.wrapping_add(1);
        if ike_deleted {
            self.down(DownReason::DeletedByPeer.to_string());
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut at: Vec<Instant> = Vec::new();
        at.extend(self.retiring_deadline());
        if let Some(o) = &self.outstanding {
            match self.config.retransmit_at.get(o.next_retransmit) {
                Some(d) => at.push(o.first_sent + *d),
                None => at.push(o.first_sent + self.config.give_up_after),
            }
        }
        if self.is_established() {
            let quiet = self.probe_quiet();
            if let Some(t) = self.probe_deadline() {
                at.push(t);
            }
            if self.outstanding.is_none() {
                if !quiet {
                    at.push(self.last_heard + self.config.liveness_interval);
                }
                for c in &self.children {
                    if !c.rekeying {
                        at.push(c.created + self.rekey_after());
                    }
                }
                at.extend(self.ike_rekey_at);
            }
            if self.behind_nat() && !quiet {
                at.push(self.last_keepalive + self.keepalive_interval);
            }
        }
        at.into_iter().min()
    }

    pub(crate) fn rekey_after(&self) -> Duration {
        self.config.child_lifetime * self.config.rekey_percent.min(100) / 100
    }

    /// Retransmits, gives up, checks liveness, rekeys and sends NAT
    /// keepalives as due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.retiring_timeout(now);
        if let Some(o) = &mut self.outstanding {
            if now >= o.first_sent + self.config.give_up_after {
                let what = match o.purpose {
                    Purpose::SaInit => "IKE_SA_INIT",
                    Purpose::Auth => "IKE_AUTH",
                    Purpose::RekeyIke(_) => "an IKE SA rekey",
                    _ => "a request",
                };
                let reason = format!(
                    "the server did not answer {what} within {} s",
                    self.config.give_up_after.as_secs()
                );
                self.down(reason);
                return;
            }
            if let Some(d) = self.config.retransmit_at.get(o.next_retransmit) {
                if now >= o.first_sent + *d {
                    o.next_retransmit += 1;
                    let datagrams = o.datagrams.clone();
                    for bytes in datagrams {
                        self.push_transmit(bytes);
                    }
                }
            }
        }
        if self.is_established() {
            self.poll_probe(now);
            if self.behind_nat()
                && !self.probe_quiet()
                && now >= self.last_keepalive + self.keepalive_interval
            {
                // RFC 3948 §2.3: one 0xFF byte keeps the NAT mapping.
                self.last_keepalive = now;
                self.transmits.push_back(Transmit {
                    remote: self.remote,
                    from_nat_t_port: true,
                    bytes: vec![crate::udp_encap::NAT_KEEPALIVE],
                });
            }
            self.start_due_work(now);
        }
    }

    /// Our address changed (another network, a new DHCP lease): with
    /// MOBIKE on both sides the server is told and the SAs follow (RFC
    /// 4555 §3.5); returns false when the server cannot be told (no MOBIKE),
    /// so the caller knows the tunnel will fail.
    pub fn local_address_changed(&mut self, now: Instant, local: SocketAddr) -> bool {
        if !self.is_established() || !self.config.mobike || !self.server_mobike {
            return false;
        }
        if local == self.local {
            return true;
        }
        self.local = local;
        self.nat_remeasure = true;
        self.address_update_due = true;
        self.start_due_work(now);
        true
    }

    /// How many address updates (RFC 4555 §3.5) the server has answered:
    /// a driver that saw it grow knows the move is done.
    pub fn address_updates_answered(&self) -> u64 {
        self.address_updates_answered
    }

    /// Whether the server announced MOBIKE.
    pub fn server_supports_mobike(&self) -> bool {
        self.server_mobike
    }

    /// Starts an address update, a rekey or a liveness check when one is
    /// due and no request is in flight.
    pub(crate) fn start_due_work(&mut self, now: Instant) {
        if !self.is_established() || self.outstanding.is_some() {
            return;
        }
        if self.address_update_due {
            self.address_update_due = false;
            self.send_address_update(now);
            return;
        }
        if self.ike_rekey_due(now) {
            self.start_ike_rekey(now);
            return;
        }
        let rekey_after = self.rekey_after();
        if let Some(index) = self
            .children
            .iter()
            .position(|c| !c.rekeying && now >= c.created + rekey_after)
        {
            self.start_child_rekey(now, index);
            return;
        }
        if self.start_probe_if_due(now) {
            return;
        }
        // While a probe is awaited the server's probe is the liveness
        // check (its request proves it alive, its loss is noticed).
        let idle = now >= self.last_heard + self.config.liveness_interval && !self.probe_quiet();
        if std::mem::take(&mut self.liveness_due) || idle {
            self.send_request(
                now,
                exchange::INFORMATIONAL,
                &PayloadChain::new(),
                Purpose::Liveness,
            );
        }
    }

    /// Deletes the IKE SA (its children go with it, §1.4.1) and stops.
    pub fn close(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self.keys.is_some() && !matches!(self.phase, Phase::SaInit { .. }) {
            let mut chain = PayloadChain::new();
            chain.push(
                payload::DELETE,
                &Delete {
                    protocol: protocol::IKE,
                    spis: Vec::new(),
                }
                .encode(),
            );
            let message_id = self.next_message_id;
            if let Some(datagrams) = self.seal(exchange::INFORMATIONAL, message_id, false, &chain) {
                for bytes in datagrams {
                    self.push_transmit(bytes);
                }
            }
        }
        let _ = now;
        self.down(DownReason::Closed.to_string());
    }

    pub(crate) fn fail(&mut self, _now: Instant, reason: String) {
        self.down(reason);
    }

    /// Ends everything: children down, then the IKE SA.
    pub(crate) fn down(&mut self, reason: String) {
        for c in std::mem::take(&mut self.children) {
            self.events.push_back(Ikev2ClientEvent::ChildSaDown {
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            });
        }
        self.outstanding = None;
        self.phase = Phase::Closed;
        self.events.push_back(Ikev2ClientEvent::Down { reason });
    }

    /// An error notify in an answer, as text for the user.
    pub(crate) fn error_notify(first: u8, inner: &[u8]) -> Option<String> {
        let chain = wire::payloads(first, inner).ok()?;
        chain
            .iter()
            .filter(|p| p.kind == payload::NOTIFY)
            .filter_map(|p| Notify::parse(p.body).ok())
            .find(|n| n.is_error())
            .map(|n| super::notify::name(n.kind))
    }
}

/// A random SPI outside the reserved 1..=255 (RFC 4303 §2.1).
pub(crate) fn random_spi() -> u32 {
    loop {
        let mut bytes = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let spi = u32::from_be_bytes(bytes);
        if spi > 255 {
            return spi;
        }
    }
}

/// Child SA records and events need both halves' configs.
pub(crate) fn child_event(
    initiator: &Ikev2Initiator,
    inbound: crate::esp::EspSaConfig,
    outbound: crate::esp::EspSaConfig,
    child: &ClientChild,
    replaces: Option<u32>,
) -> ChildSa {
    ChildSa {
        ike_sa: 0,
        peer: initiator.remote,
        udp_encapsulated: initiator.on_nat_t,
        inbound,
        outbound,
        client_selectors: child.client_selectors.clone(),
        server_selectors: child.server_selectors.clone(),
        virtual_ipv4: initiator.virtual_ipv4,
        identity: String::new(),
        suite: child.suite.to_string(),
        replaces_inbound_spi: replaces,
    }
}
