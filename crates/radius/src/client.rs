//! The sans-IO RADIUS client: transactions, Identifiers, retransmission and
//! failover.
//!
//! * Each server has its own 256 Identifiers (RFC 2865 §3: the Identifier
//!   matches a reply to a request from the same source to the same server),
//!   so at most 256 requests are outstanding per server.
//! * A retransmission repeats the same octets: same Identifier, same
//!   Request Authenticator (RFC 5080 §2.2.1, RFC 2865 §3).
//! * Retransmission times follow RFC 5080 §2.2.1 (the RFC 3315 algorithm):
//!   `RT = IRT + RAND·IRT` first, then `RT = 2·RTprev + RAND·RTprev`,
//!   capped to `MRT + RAND·MRT`, with RAND uniform in ±0.1, and the whole
//!   exchange bounded by MRD.
//! * After `tries_per_server` unanswered transmissions (1 + MRC per server)
//!   the server is marked down for `dead_time` and the request is re-encoded
//!   for the next server (new Identifier, new Request Authenticator, its own
//!   secret). New requests avoid a down server until its hold-down expires;
//!   the next request then probes it, and an authentic reply marks it up.
//! * Replies that fail verification are dropped and the request stays
//!   pending, so a forged datagram cannot end a transaction. Replies for an
//!   Identifier with nothing outstanding (duplicates, late replies) are
//!   ignored.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use thiserror::Error;

use crate::packet::{Code, DecodeError, AUTHENTICATOR_LEN, HEADER_LEN};
use crate::request::{Request, RequestError};
use crate::response::{verify_and_parse, Outcome, ResponseError};
use crate::security::Secret;

/// A server: 0 is the primary, 1 the alternate. The driver maps it to a
/// socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub usize);

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("the primary server"),
            1 => f.write_str("the alternate server"),
            n => write!(f, "server {n}"),
        }
    }
}

impl ServerId {
    /// The primary server.
    pub const PRIMARY: ServerId = ServerId(0);
    /// The alternate server.
    pub const ALTERNATE: ServerId = ServerId(1);
}

/// A transaction: one request and its retransmissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// One server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The shared secret.
    pub secret: Secret,
}

/// Retransmission parameters (RFC 5080 §2.2.1).
#[derive(Clone, Debug)]
pub struct RetransmitConfig {
    /// Initial retransmission time (IRT), 2 s.
    pub irt: Duration,
    /// Maximum retransmission time (MRT), 16 s.
    pub mrt: Duration,
    /// Maximum retransmission duration (MRD) of a whole exchange, 30 s.
    pub mrd: Duration,
    /// Transmissions to one server before it is declared unresponsive and
    /// the request fails over: 1 + MRC per server. Default 3.
    pub tries_per_server: u32,
    /// Apply the ±10 % RAND factor (RFC 5080 requires it; tests turn it
    /// off for exact timelines).
    pub jitter: bool,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            irt: Duration::from_secs(2),
            mrt: Duration::from_secs(16),
            mrd: Duration::from_secs(30),
            tries_per_server: 3,
            jitter: true,
        }
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The primary server.
    pub primary: ServerConfig,
    /// The alternate server, if any.
    pub alternate: Option<ServerConfig>,
    /// Retransmission parameters.
    pub retransmit: RetransmitConfig,
    /// How long a server that stopped answering is avoided before new
    /// requests probe it again.
    pub dead_time: Duration,
}

impl ClientConfig {
    /// Settings with defaults: RFC 5080 timers and a 60 s hold-down.
    pub fn new(primary: Secret, alternate: Option<Secret>) -> ClientConfig {
        ClientConfig {
            primary: ServerConfig { secret: primary },
            alternate: alternate.map(|secret| ServerConfig { secret }),
            retransmit: RetransmitConfig::default(),
            dead_time: Duration::from_secs(60),
        }
    }
}

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An authentic reply.
    Response {
        /// The transaction.
        tx: TxId,
        /// The server that answered.
        server: ServerId,
        /// The reply, read.
        outcome: Outcome,
    },
    /// An authentic reply that cannot be read (e.g. an MPPE key that does
    /// not decrypt). The transaction is over.
    Malformed {
        /// The transaction.
        tx: TxId,
        /// The server that answered.
        server: ServerId,
        /// What is wrong.
        error: ResponseError,
    },
    /// No server answered in time. The transaction is over.
    Timeout {
        /// The transaction.
        tx: TxId,
    },
    /// A server stopped answering and is avoided for the hold-down time.
    ServerDown {
        /// The server.
        server: ServerId,
    },
    /// A server that was down answered again.
    ServerUp {
        /// The server.
        server: ServerId,
    },
}

/// Why a request could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// 256 requests are already outstanding to the chosen server.
    #[error("all 256 identifiers of {0} are in use")]
    NoFreeIdentifier(ServerId),
    /// The request cannot be encoded.
    #[error(transparent)]
    Encode(#[from] RequestError),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// No such server.
    #[error("unknown {0}")]
    UnknownServer(ServerId),
    /// Not a RADIUS packet.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The reply does not verify (forged, wrong secret, wrong code); the
    /// request stays pending.
    #[error(transparent)]
    Response(#[from] ResponseError),
}

struct Server {
    secret: Secret,
    outstanding: Vec<Option<TxId>>,
    next_id: u8,
    down: bool,
    dead_until: Option<Instant>,
}

impl Server {
    fn usable(&self, now: Instant) -> bool {
        !self.down || self.dead_until.is_none_or(|t| now >= t)
    }

    fn allocate(&mut self, tx: TxId) -> Option<u8> {
        for k in 0..=255u8 {
            let id = self.next_id.wrapping_add(k);
            let slot = &mut self.outstanding[usize::from(id)];
            if slot.is_none() {
                *slot = Some(tx);
                self.next_id = id.wrapping_add(1);
                return Some(id);
            }
        }
        None
    }
}

struct Tx {
    request: Request,
    server: usize,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    bytes: Vec<u8>,
    tries: u32,
    tried: Vec<bool>,
    start: Instant,
    rt: Duration,
    deadline: Instant,
}

/// The RADIUS client state machine. See the module documentation.
pub struct RadiusClient {
    servers: Vec<Server>,
    retransmit: RetransmitConfig,
    dead_time: Duration,
    txs: BTreeMap<TxId, Tx>,
    next_tx: u64,
    transmits: VecDeque<(ServerId, Vec<u8>)>,
    events: VecDeque<Event>,
    rng: StdRng,
}

impl RadiusClient {
    /// A client whose Request Authenticators and jitter come from the
    /// operating system's CSPRNG (seeded once).
    pub fn new(config: ClientConfig) -> RadiusClient {
        Self::with_rng(config, StdRng::from_entropy())
    }

    /// A client with a given random generator (deterministic tests).
    pub fn with_rng(config: ClientConfig, rng: StdRng) -> RadiusClient {
        let mut servers = vec![config.primary];
        servers.extend(config.alternate);
        RadiusClient {
            servers: servers
                .into_iter()
                .map(|s| Server {
                    secret: s.secret,
                    outstanding: vec![None; 256],
                    next_id: 0,
                    down: false,
                    dead_until: None,
                })
                .collect(),
            retransmit: config.retransmit,
            dead_time: config.dead_time,
            txs: BTreeMap::new(),
            next_tx: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rng,
        }
    }

    // ---- getters -------------------------------------------------------

    /// Whether a server is marked down.
    pub fn is_down(&self, server: ServerId) -> bool {
        self.servers.get(server.0).is_some_and(|s| s.down)
    }

    /// Requests awaiting a reply.
    pub fn pending(&self) -> usize {
        self.txs.len()
    }

    /// Whether [`Self::send`] would find a free Identifier now: the driver
    /// holds new requests back while it would not (RFC 2865 §3 gives each
    /// server 256), instead of failing them.
    pub fn can_send(&self, now: Instant) -> bool {
        let tried = vec![false; self.servers.len()];
        let server = self.pick_server(&tried, now).unwrap_or(0);
        self.servers[server].outstanding.iter().any(Option::is_none)
    }

    /// The server a transaction is currently sent to.
    pub fn server_of(&self, tx: TxId) -> Option<ServerId> {
        self.txs.get(&tx).map(|t| ServerId(t.server))
    }

    // ---- commands ------------------------------------------------------

    /// Sends a request to the first usable server (the primary unless it is
    /// in hold-down). The datagram is queued for [`Self::poll_transmit`].
    pub fn send(&mut self, request: Request, now: Instant) -> Result<TxId, SendError> {
        let tried = vec![false; self.servers.len()];
        let server = self.pick_server(&tried, now).unwrap_or(0);
        let tx = TxId(self.next_tx);
        let (identifier, authenticator, bytes) = self.encode_for(server, tx, &request)?;
        self.next_tx += 1;
        let mut tried = tried;
        tried[server] = true;
        let rt = self.initial_rt();
        let mut t = Tx {
            request,
            server,
            identifier,
            authenticator,
            bytes,
            tries: 1,
            tried,
            start: now,
            rt,
            deadline: now,
        };
        t.deadline = self.deadline(&t, now);
        self.transmits
            .push_back((ServerId(server), t.bytes.clone()));
        self.txs.insert(tx, t);
        Ok(tx)
    }

    /// Abandons a transaction (no event is reported for it).
    pub fn cancel(&mut self, tx: TxId) {
        if let Some(t) = self.txs.remove(&tx) {
            self.servers[t.server].outstanding[usize::from(t.identifier)] = None;
        }
    }

    // ---- inputs --------------------------------------------------------

    /// A datagram from `server`. `Ok(Some(tx))` when it answered `tx`,
    /// `Ok(None)` when nothing was outstanding for its Identifier (a
    /// duplicate or late reply, ignored), `Err` when it was dropped.
    pub fn handle_datagram(
        &mut self,
        server: ServerId,
        datagram: &[u8],
        _now: Instant,
    ) -> Result<Option<TxId>, DatagramError> {
        let Some(srv) = self.servers.get(server.0) else {
            return Err(DatagramError::UnknownServer(server));
        };
        if datagram.len() < HEADER_LEN {
            return Err(DecodeError::Short(datagram.len()).into());
        }
        let id = datagram[1];
        let Some(txid) = srv.outstanding[usize::from(id)] else {
            return Ok(None);
        };
        let Some(t) = self.txs.get(&txid) else {
            return Ok(None);
        };
        let result = verify_and_parse(
            datagram,
            t.request.code(),
            t.identifier,
            &t.authenticator,
            &srv.secret,
        );
        let event = match result {
            Ok(outcome) => Event::Response {
                tx: txid,
                server,
                outcome,
            },
            Err(e) if authentic(&e) => Event::Malformed {
                tx: txid,
                server,
                error: e,
            },
            Err(e) => return Err(e.into()),
        };
        self.cancel(txid);
        let srv = &mut self.servers[server.0];
        srv.dead_until = None;
        if srv.down {
            srv.down = false;
            self.events.push_back(Event::ServerUp { server });
        }
        self.events.push_back(event);
        Ok(Some(txid))
    }

    /// Runs the timers due at `now`: retransmissions, failovers, timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for txid in due {
            self.expire(txid, now);
        }
    }

    // ---- outputs -------------------------------------------------------

    /// The next datagram to write, and to which server.
    pub fn poll_transmit(&mut self) -> Option<(ServerId, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.txs.values().map(|t| t.deadline).min()
    }

    // ---- internals -----------------------------------------------------

    fn pick_server(&self, tried: &[bool], now: Instant) -> Option<usize> {
        let untried = || (0..self.servers.len()).filter(|&i| !tried[i]);
        untried()
            .find(|&i| self.servers[i].usable(now))
            .or_else(|| untried().next())
    }

    fn encode_for(
        &mut self,
        server: usize,
        tx: TxId,
        request: &Request,
    ) -> Result<(u8, [u8; AUTHENTICATOR_LEN], Vec<u8>), SendError> {
        let mut authenticator = [0u8; AUTHENTICATOR_LEN];
        self.rng.fill_bytes(&mut authenticator);
        let srv = &mut self.servers[server];
        let identifier = srv
            .allocate(tx)
            .ok_or(SendError::NoFreeIdentifier(ServerId(server)))?;
        match request.encode(identifier, &authenticator, &srv.secret) {
            Ok(bytes) => {
                // An Accounting-Request's authenticator is computed.
                if request.code() != Code::AccessRequest {
                    authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
                }
                Ok((identifier, authenticator, bytes))
            }
            Err(e) => {
                srv.outstanding[usize::from(identifier)] = None;
                Err(e.into())
            }
        }
    }

    fn rand_factor(&mut self) -> f64 {
        if self.retransmit.jitter {
            self.rng.gen_range(-0.1..=0.1)
        } else {
            0.0
        }
    }

    fn initial_rt(&mut self) -> Duration {
        let irt = self.retransmit.irt;
        let r = self.rand_factor();
        irt.mul_f64(1.0 + r)
    }

    fn next_rt(&mut self, prev: Duration) -> Duration {
        let r = self.rand_factor();
        let rt = prev.mul_f64(2.0 + r);
        if rt > self.retransmit.mrt {
            let r = self.rand_factor();
            self.retransmit.mrt.mul_f64(1.0 + r)
        } else {
            rt
        }
    }

    fn deadline(&self, t: &Tx, now: Instant) -> Instant {
        (now + t.rt).min(t.start + self.retransmit.mrd)
    }

    fn expire(&mut self, txid: TxId, now: Instant) {
        let Some(t) = self.txs.get(&txid) else { return };
        if now >= t.start + self.retransmit.mrd {
            self.cancel(txid);
            self.events.push_back(Event::Timeout { tx: txid });
            return;
        }
        if t.tries < self.retransmit.tries_per_server {
            // Retransmit the same octets (same Identifier and Authenticator).
            let prev = t.rt;
            let rt = self.next_rt(prev);
            let mrd = self.retransmit.mrd;
            let Some(t) = self.txs.get_mut(&txid) else {
                return;
            };
            t.tries += 1;
            t.rt = rt;
            t.deadline = (now + rt).min(t.start + mrd);
            self.transmits
                .push_back((ServerId(t.server), t.bytes.clone()));
            return;
        }
        // This server did not answer: mark it down and fail over.
        let (old, old_id) = (t.server, t.identifier);
        let srv = &mut self.servers[old];
        srv.outstanding[usize::from(old_id)] = None;
        srv.dead_until = Some(now + self.dead_time);
        if !srv.down {
            srv.down = true;
            self.events.push_back(Event::ServerDown {
                server: ServerId(old),
            });
        }
        let Some(mut t) = self.txs.remove(&txid) else {
            return;
        };
        let Some(next) = self.pick_server(&t.tried, now) else {
            self.events.push_back(Event::Timeout { tx: txid });
            return;
        };
        match self.encode_for(next, txid, &t.request) {
            Ok((identifier, authenticator, bytes)) => {
                t.server = next;
                t.tried[next] = true;
                t.identifier = identifier;
                t.authenticator = authenticator;
                t.bytes = bytes;
                t.tries = 1;
                t.rt = self.initial_rt();
                t.deadline = self.deadline(&t, now);
                self.transmits.push_back((ServerId(next), t.bytes.clone()));
                self.txs.insert(txid, t);
            }
            Err(_) => self.events.push_back(Event::Timeout { tx: txid }),
        }
    }
}

/// Whether a reply error comes from an authentic reply (it verified but
/// cannot be read), as opposed to a forged or foreign datagram.
fn authentic(e: &ResponseError) -> bool {
    matches!(
        e,
        ResponseError::Attribute { .. }
            | ResponseError::Microsoft(_)
            | ResponseError::IncompleteMppeKeys
    )
}
