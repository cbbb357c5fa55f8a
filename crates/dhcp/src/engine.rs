//! The address engine: RRAS's DHCP allocator as a sans-IO state machine.
//!
//! tcpip-fundamentals ch. 14 ("Obtaining IPv4 Addresses via DHCP"):
//! - addresses are leased 10 at a time, the first set only when the first
//!   remote access client connects, not when the service starts;
//! - the server uses the first address itself (its IPCP local address)
//!   and gives the following ones to clients; freed addresses are reused;
//! - when all of them are in use and another client connects, 10 more;
//! - when no DHCP server answers, addresses come from APIPA 169.254.0.0/16;
//! - when the service stops, every address is released (DHCPRELEASE).
//!
//! Every leased address has its own identity (chaddr and client
//! identifier), so the DHCP server sees one client per address. After a
//! fall-back to APIPA the engine tries DHCP again once `retry_after` has
//! passed, at the next client that needs an address.
//!
//! Use (the shape of every core in this project):
//! `allocate` / `release` / `stop` for what the server asks,
//! `handle_input` / `handle_timeout` for the network and the clock,
//! `poll_transmit` / `poll_event` / `poll_timeout` for what it wants done.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::apipa::Apipa;
use crate::lease::{Acquire, Change, Lease, Transmit};
use crate::message::{self, Identity};

/// The session an address is for (the server's session id).
pub type SessionKey = u64;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Addresses leased at a time (RRAS: 10).
    pub block: usize,
    /// How long one lease may take to be acquired before it counts as
    /// unanswered; a client waits at most this long for DHCP.
    pub answer_timeout: Duration,
    /// First retransmission delay while acquiring (RFC 2131 §4.1: about
    /// 4 s, doubled each time).
    pub retransmit: Duration,
    /// Leases of a block acquired at the same time; the others wait
    /// their turn. DHCP servers with conflict detection (dnsmasq by
    /// default, Windows when configured) ping each address before
    /// offering it and take DISCOVERs one at a time: ten at once would
    /// put our first REQUEST behind ten pings (about 30 s), and the
    /// first client would wait for all of them; even two at once let a
    /// retransmitted DISCOVER queue another ping ahead of a REQUEST. One
    /// at a time, each lease costs one ping and the first client has its
    /// address after two (the server's and its own).
    pub in_flight: usize,
    /// After a fall-back to APIPA, DHCP is tried again no sooner than this.
    pub retry_after: Duration,
    /// Leases held at most (bounded memory whatever the clients do).
    pub max_leases: usize,
    /// Seeds transaction ids, the identities and the APIPA start. Its low
    /// 16 bits are octets 1–2 of every chaddr (the server's driver derives
    /// them from its NAS-Identifier, so servers sharing a DHCP server
    /// differ); bits 16–39 are where the lease counter starts.
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            block: 10,
            answer_timeout: Duration::from_secs(8),
            retransmit: Duration::from_secs(4),
            in_flight: 1,
            retry_after: Duration::from_secs(300),
            max_leases: 4096,
            seed: 0x5eed,
        }
    }
}

/// What the engine tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session that waited has its address.
    Assigned { session: SessionKey, addr: Ipv4Addr },
    /// A session that waited gets nothing (APIPA exhausted, or stopping).
    Refused { session: SessionKey, reason: String },
    /// The server's own address is now `addr` (the first leased address,
    /// or an APIPA one when DHCP failed before any lease).
    ServerAddress(Ipv4Addr),
    /// An address now belongs to this server (lease bound or APIPA given):
    /// route it to the clients' side.
    Acquired(Ipv4Addr),
    /// An address no longer belongs to this server.
    Relinquished(Ipv4Addr),
    /// No DHCP server answered: APIPA from now on, until `retry_at`.
    FellBackToApipa { waiting: usize },
    /// DHCP answered again after a fall-back.
    DhcpRestored,
    /// A lease held by a session was taken back (NAK or expiry while
    /// renewing): the client still uses the address.
    LeaseLost {
        addr: Ipv4Addr,
        session: Option<SessionKey>,
    },
}

/// The result of [`Engine::allocate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Here is the address.
    Ready(Ipv4Addr),
    /// Wait for [`Event::Assigned`] or [`Event::Refused`].
    Pending,
    /// Nothing can be given.
    Refused,
}

/// What an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Lease number n.
    Lease(u64),
    /// Not leased: an APIPA address (or, for the server, a lease it lost
    /// and keeps announcing until a new lease binds).
    Apipa(Ipv4Addr),
}

/// Counts for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Leases bound (including the server's).
    pub leased: usize,
    /// Leases still being acquired.
    pub acquiring: usize,
    /// Bound leases not held by anyone.
    pub free: usize,
    /// APIPA addresses in use (including the server's).
    pub apipa: usize,
    /// Sessions waiting for an address.
    pub waiting: usize,
}

/// A lease bound now, as the DHCP server knows it: what a DHCPRELEASE for
/// it needs (RFC 2131 §4.4.6: ciaddr, server identifier, and the client's
/// chaddr and client identifier, which is derived from chaddr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeldLease {
    pub addr: Ipv4Addr,
    pub server: Ipv4Addr,
    pub chaddr: [u8; 6],
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    rng: u64,
    next_identity: u64,
    /// Lease number → lease. Numbers only grow, so a stale xid can never
    /// reach a new lease.
    leases: HashMap<u64, Lease>,
    by_xid: HashMap<u32, u64>,
    /// Bound leases nobody holds, lowest number (oldest) first.
    free: BTreeSet<u64>,
    sessions: HashMap<SessionKey, Held>,
    holder: HashMap<u64, SessionKey>,
    waiting: VecDeque<SessionKey>,
    server: Option<Held>,
    apipa: Apipa,
    /// Set after a block got no answer: APIPA until then.
    dhcp_down_until: Option<Instant>,
    /// The block being acquired: how many of its leases bound so far.
    block_bound: usize,
    /// The block being acquired: leases not started yet (see
    /// `EngineConfig::in_flight`).
    block_pending: usize,
    stopped: bool,
    /// Grows whenever the set of bound leases (or a lease's server)
    /// changes: the owner persists [`Engine::held_leases`] when it moved.
    lease_generation: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        let seed = cfg.seed | 1;
        Engine {
            rng: seed,
            // The identity counter starts at a seeded point so that two
            // servers (or two runs) do not reuse each other's identities.
            next_identity: (seed >> 16) & 0xff_ffff,
            apipa: Apipa::new(seed.rotate_left(17)),
            cfg,
            leases: HashMap::new(),
            by_xid: HashMap::new(),
            free: BTreeSet::new(),
            sessions: HashMap::new(),
            holder: HashMap::new(),
            waiting: VecDeque::new(),
            server: None,
            dhcp_down_until: None,
            block_bound: 0,
            block_pending: 0,
            stopped: false,
            lease_generation: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The server's own address, once known.
    pub fn server_address(&self) -> Option<Ipv4Addr> {
        self.server.and_then(|h| self.addr_of(h))
    }

    /// The address `session` holds.
    pub fn address_of(&self, session: SessionKey) -> Option<Ipv4Addr> {
        self.sessions.get(&session).and_then(|h| self.addr_of(*h))
    }

    pub fn counts(&self) -> Counts {
        Counts {
            leased: self.leases.values().filter(|l| l.is_bound()).count(),
            acquiring: self.leases.values().filter(|l| l.is_acquiring()).count()
                + self.block_pending,
            free: self.free.len(),
            apipa: self.apipa.in_use(),
            waiting: self.waiting.len(),
        }
    }

    /// Every address bound by DHCP now, the server's first.
    pub fn leased_addresses(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<(u64, Ipv4Addr)> = self
            .leases
            .iter()
            .filter_map(|(n, l)| l.binding().filter(|_| l.is_bound()).map(|b| (*n, b.addr)))
            .collect();
        v.sort();
        v.into_iter().map(|(_, a)| a).collect()
    }

    /// Every lease bound now with its server and identity, by address:
    /// what a later process needs to release them if this one dies
    /// without [`Engine::stop`].
    pub fn held_leases(&self) -> Vec<HeldLease> {
        let mut v: Vec<HeldLease> = self
            .leases
            .values()
            .filter(|l| l.is_bound())
            .filter_map(|l| {
                l.binding().map(|b| HeldLease {
                    addr: b.addr,
                    server: b.server,
                    chaddr: l.identity().chaddr,
                })
            })
            .collect();
        v.sort();
        v
    }

    /// Changes whenever [`Engine::held_leases`] may have changed.
    pub fn lease_generation(&self) -> u64 {
        self.lease_generation
    }

    fn addr_of(&self, held: Held) -> Option<Ipv4Addr> {
        match held {
            Held::Lease(n) => self.leases.get(&n)?.binding().map(|b| b.addr),
            Held::Apipa(a) => Some(a),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: transaction ids need to be unpredictable enough to
        // not collide, not secret (RFC 2131 §4.1 asks for random xids).
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fresh_xid(&mut self) -> u32 {
        loop {
            let xid = (self.random() >> 32) as u32;
            if !self.by_xid.contains_key(&xid) {
                return xid;
            }
        }
    }

    /// An address for `session`.
    pub fn allocate(&mut self, now: Instant, session: SessionKey) -> Allocation {
        if self.stopped {
            return Allocation::Refused;
        }
        if let Some(addr) = self.address_of(session) {
            return Allocation::Ready(addr);
        }
        if self.waiting.contains(&session) {
            return Allocation::Pending;
        }
        if let Some(n) = self.free.pop_first() {
            let addr = self.assign_lease(session, n);
            return Allocation::Ready(addr);
        }
        if self.dhcp_is_down(now) {
            return match self.assign_apipa(session) {
                Some(a) => Allocation::Ready(a),
                None => Allocation::Refused,
            };
        }
        self.waiting.push_back(session);
        if !self.acquiring() {
            self.start_block(now);
        }
        Allocation::Pending
    }

    fn dhcp_is_down(&self, now: Instant) -> bool {
        self.dhcp_down_until.is_some_and(|t| now < t)
    }

    /// A block is being acquired (leases in flight or still to start).
    fn acquiring(&self) -> bool {
        self.block_pending > 0 || self.leases.values().any(Lease::is_acquiring)
    }

    /// Starts leasing a block: as many as configured, within `max_leases`.
    /// The server's own address is one of them, as in RRAS.
    fn start_block(&mut self, now: Instant) {
        let room = self.cfg.max_leases.saturating_sub(self.leases.len());
        let n = self.cfg.block.max(1).min(room);
        if n == 0 {
            // At the lease limit: the waiting sessions get APIPA.
            self.fall_back(now, false);
            return;
        }
        tracing::info!(count = n, "leasing a block of addresses from DHCP");
        self.block_bound = 0;
        self.block_pending = n;
        self.start_pending(now);
    }

    /// Starts the block's next leases, up to `in_flight` at a time. Each
    /// has the whole answer timeout from its own start.
    fn start_pending(&mut self, now: Instant) {
        let in_flight = self.leases.values().filter(|l| l.is_acquiring()).count();
        let room = self.cfg.in_flight.max(1).saturating_sub(in_flight);
        let n = self.block_pending.min(room);
        self.block_pending -= n;
        let acquire = Acquire {
            retransmit: self.cfg.retransmit,
            deadline: now + self.cfg.answer_timeout,
        };
        for _ in 0..n {
            let number = self.next_identity;
            self.next_identity += 1;
            let identity = identity_for(self.cfg.seed, number);
            let xid = self.fresh_xid();
            let (lease, t) = Lease::start(identity, xid, now, acquire);
            self.by_xid.insert(xid, number);
            self.leases.insert(number, lease);
            self.transmits.push_back(t);
        }
    }

    fn assign_lease(&mut self, session: SessionKey, n: u64) -> Ipv4Addr {
        self.sessions.insert(session, Held::Lease(n));
        self.holder.insert(n, session);
        self.addr_of(Held::Lease(n))
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn assign_apipa(&mut self, session: SessionKey) -> Option<Ipv4Addr> {
        if self.server.is_none() {
            let own = self.apipa.take()?;
            self.server = Some(Held::Apipa(own));
            self.events.push_back(Event::Acquired(own));
            self.events.push_back(Event::ServerAddress(own));
        }
        let addr = self.apipa.take()?;
        self.sessions.insert(session, Held::Apipa(addr));
        self.events.push_back(Event::Acquired(addr));
        Some(addr)
    }

    /// `session` no longer needs its address: a leased one stays leased
    /// for the next client (RRAS reassigns it), an APIPA one is forgotten.
    /// A session still waiting stops waiting.
    pub fn release(&mut self, session: SessionKey) {
        self.waiting.retain(|s| *s != session);
        match self.sessions.remove(&session) {
            Some(Held::Lease(n)) => {
                self.holder.remove(&n);
                if self.leases.get(&n).is_some_and(Lease::is_bound) {
                    self.free.insert(n);
                }
            }
            Some(Held::Apipa(a)) => {
                self.apipa.put(a);
                self.events.push_back(Event::Relinquished(a));
            }
            None => {}
        }
    }

    /// The server stops: DHCPRELEASE for every leased address, refuse the
    /// waiting sessions, and nothing more afterwards.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.lease_generation += 1;
        let mut numbers: Vec<u64> = self.leases.keys().copied().collect();
        numbers.sort();
        for n in numbers {
            if let Some(lease) = self.leases.get_mut(&n) {
                let addr = lease.binding().filter(|_| lease.is_bound()).map(|b| b.addr);
                if let Some(t) = lease.release() {
                    self.transmits.push_back(t);
                }
                if let Some(a) = addr {
                    self.events.push_back(Event::Relinquished(a));
                }
            }
        }
        self.leases.clear();
        self.block_pending = 0;
        self.by_xid.clear();
        self.free.clear();
        self.holder.clear();
        self.sessions.clear();
        while let Some(s) = self.waiting.pop_front() {
            self.events.push_back(Event::Refused {
                session: s,
                reason: "the server is stopping".into(),
            });
        }
    }

    /// Bytes received on the client port (any source: replies for other
    /// clients on the same link are ignored).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(reply) = message::parse_reply(bytes) else {
            return;
        };
        let Some(&n) = self.by_xid.get(&reply.xid) else {
            return;
        };
        let new_xid = self.fresh_xid();
        let Some(lease) = self.leases.get_mut(&n) else {
            return;
        };
        let old_xid = lease.xid();
        let (change, transmit) = lease.handle_reply(now, &reply, new_xid);
        self.after_step(now, n, old_xid, change, transmit);
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.poll_timeout().is_some_and(|t| t <= now))
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            let new_xid = self.fresh_xid();
            let Some(lease) = self.leases.get_mut(&n) else {
                continue;
            };
            let old_xid = lease.xid();
            let (change, transmit) = lease.handle_timeout(now, new_xid);
            self.after_step(now, n, old_xid, change, transmit);
        }
    }

    fn after_step(
        &mut self,
        now: Instant,
        n: u64,
        old_xid: u32,
        change: Option<Change>,
        transmit: Option<Transmit>,
    ) {
        if let Some(t) = transmit {
            self.transmits.push_back(t);
        }
        if matches!(
            change,
            Some(Change::Bound(_) | Change::Extended(_) | Change::Lost(_))
        ) {
            // An extension may come from another server (REBINDING).
            self.lease_generation += 1;
        }
        if let Some(lease) = self.leases.get(&n) {
            let xid = lease.xid();
            if xid != old_xid {
                self.by_xid.remove(&old_xid);
                self.by_xid.insert(xid, n);
            }
        }
        match change {
            Some(Change::Bound(addr)) => self.on_bound(now, n, addr),
            Some(Change::Extended(addr)) => tracing::debug!(%addr, "lease extended"),
            Some(Change::Lost(addr)) => self.on_lost(n, addr),
            Some(Change::Failed) => self.on_failed(now, n),
            None => {}
        }
    }

    fn on_bound(&mut self, now: Instant, n: u64, addr: Ipv4Addr) {
        self.block_bound += 1;
        self.events.push_back(Event::Acquired(addr));
        if self.dhcp_down_until.take().is_some() {
            self.events.push_back(Event::DhcpRestored);
        }
        // The first leased address is the server's own, also after an
        // APIPA start: the server then moves onto the intranet's subnet.
        let server_is_apipa = matches!(self.server, Some(Held::Apipa(_)));
        if self.server.is_none() || server_is_apipa {
            if let Some(Held::Apipa(old)) = self.server {
                self.apipa.put(old);
                self.events.push_back(Event::Relinquished(old));
            }
            self.server = Some(Held::Lease(n));
            self.events.push_back(Event::ServerAddress(addr));
        } else if let Some(session) = self.waiting.pop_front() {
            self.assign_lease(session, n);
            self.events.push_back(Event::Assigned { session, addr });
        } else {
            self.free.insert(n);
        }
        self.start_pending(now);
        self.block_finished(now);
    }

    /// A lease got no address in time: the rest of the block is not
    /// tried (the server is silent or out of addresses; each would cost
    /// another answer timeout), and the waiting sessions fall back.
    fn on_failed(&mut self, now: Instant, n: u64) {
        if let Some(lease) = self.leases.remove(&n) {
            self.by_xid.remove(&lease.xid());
        }
        self.block_pending = 0;
        self.block_finished(now);
    }

    fn on_lost(&mut self, n: u64, addr: Ipv4Addr) {
        if let Some(lease) = self.leases.remove(&n) {
            self.by_xid.remove(&lease.xid());
        }
        self.free.remove(&n);
        let session = self.holder.remove(&n);
        if let Some(s) = session {
            self.sessions.remove(&s);
        }
        if self.server == Some(Held::Lease(n)) {
            // Keep announcing the address: sessions negotiated it as the
            // peer's address and nothing routes to it on the intranet side.
            self.server = Some(Held::Apipa(addr));
        }
        self.events.push_back(Event::Relinquished(addr));
        self.events.push_back(Event::LeaseLost { addr, session });
    }

    /// When the block has no lease left acquiring: sessions still waiting
    /// get another block if this one was fully answered, APIPA otherwise.
    fn block_finished(&mut self, now: Instant) {
        if self.acquiring() || self.waiting.is_empty() {
            return;
        }
        let complete = self.block_bound >= self.cfg.block.max(1);
        if complete {
            self.start_block(now);
        } else {
            let nothing = self.block_bound == 0;
            self.fall_back(now, nothing);
        }
    }

    /// APIPA for every waiting session; if DHCP did not answer at all,
    /// APIPA for new sessions too until `retry_after`.
    fn fall_back(&mut self, now: Instant, dhcp_silent: bool) {
        if dhcp_silent {
            self.dhcp_down_until = Some(now + self.cfg.retry_after);
        }
        self.events.push_back(Event::FellBackToApipa {
            waiting: self.waiting.len(),
        });
        while let Some(session) = self.waiting.pop_front() {
            match self.assign_apipa(session) {
                Some(addr) => self.events.push_back(Event::Assigned { session, addr }),
                None => self.events.push_back(Event::Refused {
                    session,
                    reason: "no DHCP answer and no APIPA address left".into(),
                }),
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.leases.values().filter_map(Lease::poll_timeout).min()
    }
}

/// The identity of lease `number`: a locally administered unicast MAC
/// (IEEE 802: bit 1 of the first octet set, bit 0 clear) whose middle
/// octets come from the seed and whose last three count leases.
fn identity_for(seed: u64, number: u64) -> Identity {
    let s = seed.to_be_bytes();
    let c = (number & 0xff_ffff).to_be_bytes();
    Identity {
        chaddr: [0x02, s[6], s[7], c[5], c[6], c[7]],
    }
}
