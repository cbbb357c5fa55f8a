//! The NetBIOS datagram gateway between the LAN and remote clients, as
//! ras-datagram-processing-q97559 describes the RAS one, for NetBIOS over
//! TCP/IP (RFC 1001/1002).
//!
//! Inputs come from the driver: name service packets (UDP 137) and
//! datagrams (UDP 138) from the LAN and from each client's tunnel, the
//! LAN's verdict on each name the gateway asked to register, and whether a
//! client is busy with session traffic. Outputs are [`Transmit`]s (name
//! service answers, clients' datagrams for the LAN), [`Event`]s (names to
//! register or release on the LAN, one-line log events) and, per client,
//! the datagrams buffered for it, pulled with
//! [`Gateway::poll_client_datagram`] when its tunnel has room.
//!
//! Registering a name on the LAN (RFC 1002 §5.1.1.1, broadcast NAME
//! REGISTRATION REQUESTs and listening for a NEGATIVE response, or asking
//! a WINS server) is the driver's: it knows the LAN's node type. The
//! driver must not feed the gateway its own LAN packets back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use crate::config::{GatewayConfig, SessionTrafficRule};
use crate::counters::Counters;
use crate::datagram::{Datagram, DatagramType};
use crate::delivery::Delivery;
use crate::gate::{Gate, GateVerdict};
use crate::name::NetbiosName;
use crate::name_service::{Header, NamePacket, NbEntry, NodeType, Opcode, Rcode};
pub use crate::name_table::ClientId;
use crate::name_table::{Added, NameKind, NameState, NameTable, Refusal};
use crate::{DATAGRAM_SERVICE_PORT, NAME_SERVICE_PORT};

/// The most NB entries in one answer for a group name: 80 entries of 6
/// octets keep the response under the 576-octet datagram every IPv4 host
/// must accept (RFC 791, "Total Length"); a bigger group is answered for
/// its first members, enough for a querier to reach the group.
const MAX_ANSWER_ENTRIES: usize = 80;

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Into a client's tunnel, to this address (the client's own).
    Client(ClientId, SocketAddrV4),
    /// To one LAN host.
    LanUnicast(SocketAddrV4),
    /// Broadcast on every LAN interface of `[netbios]`.
    LanBroadcast,
    /// To the server's own NetBIOS datagram service.
    Server,
}

/// A UDP payload the gateway wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: Destination,
    /// 137 (name service) or 138 (datagram service).
    pub port: u16,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The LAN's answer to a registration the gateway asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanVerdict {
    /// Nobody objected (or the name server said yes).
    Accepted,
    /// A NEGATIVE NAME REGISTRATION RESPONSE came back with this RCODE
    /// (ACT_ERR: another host owns the name).
    Refused(Rcode),
}

/// Why a client's name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBecause {
    /// A LAN host owns it.
    Lan(Rcode),
    /// Another client holds it.
    InUse,
    /// The per-client MaxNames.
    ClientLimit(usize),
    /// The total MaxNames.
    TotalLimit(usize),
}

/// Something for the driver to do or to log; each displays as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Register `name` on the LAN for a client whose address is `address`,
    /// then call [`Gateway::handle_lan_verdict`].
    RegisterOnLan {
        /// The name.
        name: NetbiosName,
        /// A group name.
        group: bool,
        /// The NB_ADDRESS to register.
        address: Ipv4Addr,
    },
    /// Release `name` on the LAN (RFC 1002 §5.1.1.4): no client holds it any more.
    ReleaseOnLan {
        /// The name.
        name: NetbiosName,
        /// A group name.
        group: bool,
    },
    /// A client now holds a name.
    NameRegistered {
        /// The client.
        client: ClientId,
        /// The name.
        name: NetbiosName,
        /// Unique or group.
        kind: NameKind,
    },
    /// A client's name was refused.
    NameRefused {
        /// The client.
        client: ClientId,
        /// The name.
        name: NetbiosName,
        /// Why.
        because: RefusedBecause,
    },
    /// A client released a name, or its session ended.
    NameReleased {
        /// The client.
        client: ClientId,
        /// The name.
        name: NetbiosName,
    },
    /// A LAN host tried to register a client's name and was told ACT_ERR.
    NameDefended {
        /// The holder (the first, for a group).
        client: ClientId,
        /// The name.
        name: NetbiosName,
        /// Who tried.
        from: SocketAddrV4,
    },
    /// A packet did not parse; it alone was dropped.
    Malformed {
        /// Where it came from.
        from: Source,
        /// 137 or 138.
        port: u16,
        /// The parser's reason.
        reason: String,
    },
}

/// Which side a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The LAN.
    Lan,
    /// A client's tunnel.
    Client(ClientId),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lan => f.write_str("the LAN"),
            Self::Client(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RegisterOnLan {
                name,
                group,
                address,
            } => {
                let kind = if *group { "group" } else { "unique" };
                write!(
                    f,
                    "netbios: registering {kind} name {name} on the LAN for {address}"
                )
            }
            Self::ReleaseOnLan { name, .. } => {
                write!(
                    f,
                    "netbios: releasing {name} on the LAN, no client holds it"
                )
            }
            Self::NameRegistered { client, name, kind } => {
                write!(f, "netbios: {client} holds {kind} name {name}")
            }
            Self::NameRefused {
                client,
                name,
                because,
            } => {
                write!(f, "netbios: {client} refused {name}: ")?;
                match because {
                    RefusedBecause::Lan(rcode) => {
                        write!(f, "a LAN host owns it ({})", rcode.mnemonic())
                    }
                    RefusedBecause::InUse => f.write_str("another client holds it"),
                    RefusedBecause::ClientLimit(n) => {
                        write!(
                            f,
                            "the client holds {n} names already (MaxNames per client)"
                        )
                    }
                    RefusedBecause::TotalLimit(n) => {
                        write!(
                            f,
                            "the server holds {n} names for clients already (MaxNames)"
                        )
                    }
                }
            }
            Self::NameReleased { client, name } => {
                write!(f, "netbios: {client} released {name}")
            }
            Self::NameDefended { client, name, from } => {
                write!(
                    f,
                    "netbios: {from} tried to register {name} of {client}, answered ACT_ERR"
                )
            }
            Self::Malformed { from, port, reason } => {
                let what = if *port == NAME_SERVICE_PORT {
                    "name service packet"
                } else {
                    "datagram"
                };
                write!(
                    f,
                    "netbios: dropped a malformed {what} from {from}: {reason}"
                )
            }
        }
    }
}

/// A registration request waiting for the LAN's verdict.
#[derive(Debug, Clone)]
struct Waiter {
    client: ClientId,
    reply_to: SocketAddrV4,
    request: Header,
    entry: NbEntry,
    ttl: u32,
}

#[derive(Debug, Clone)]
struct ClientInfo {
    address: Ipv4Addr,
    busy: bool,
}

/// The gateway.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    gate: Gate,
    names: NameTable,
    delivery: Delivery,
    clients: BTreeMap<ClientId, ClientInfo>,
    waiters: BTreeMap<NetbiosName, Vec<Waiter>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl Gateway {
    /// A gateway started at `now` (the MulticastForwardRate gate counts
    /// from here).
    pub fn new(config: GatewayConfig, now: Instant) -> Self {
        let gate = Gate::new(config.multicast_forward_rate, now, config.gate_open_for);
        let names = NameTable::new(config.max_names_per_client, config.max_names);
        Self {
            config,
            gate,
            names,
            delivery: Delivery::default(),
            clients: BTreeMap::new(),
            waiters: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The names `client` holds, with kind and state.
    pub fn client_names(&self, client: ClientId) -> Vec<(NetbiosName, NameKind, NameState)> {
        self.names
            .names_of(client)
            .filter_map(|n| self.names.get(n).map(|e| (n.clone(), e.kind, e.state)))
            .collect()
    }

    /// How many datagrams wait for `client`.
    pub fn pending_datagrams(&self, client: ClientId) -> usize {
        self.delivery.pending(client)
    }

    /// How many datagrams the buffer of group name `name` holds.
    pub fn buffered_for_group(&self, name: &NetbiosName) -> usize {
        self.delivery.buffered(name)
    }

    // ---- commands ----

    /// A client's session is up; `address` is the one LAN queries for its
    /// unique names are answered with (reachable through the server).
    pub fn add_client(&mut self, client: ClientId, address: Ipv4Addr) {
        self.clients.insert(
            client,
            ClientInfo {
                address,
                busy: false,
            },
        );
    }

    /// A client's session ended: its names are released, what waits for
    /// it is dropped.
    pub fn remove_client(&mut self, _now: Instant, client: ClientId) {
        for (name, kind, last) in self.names.remove_client(client) {
            self.released(client, name, kind, last);
        }
        for list in self.waiters.values_mut() {
            list.retain(|w| w.client != client);
        }
        self.waiters.retain(|_, l| !l.is_empty());
        self.delivery.remove_client(client);
        self.clients.remove(&client);
    }

    /// Whether `client` is busy with session traffic now (for
    /// DisableMcastFwdWhenSessionTraffic); the driver decides, e.g. from
    /// its tunnel's send queue.
    pub fn set_session_traffic(&mut self, client: ClientId, busy: bool) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.busy = busy;
        }
    }

    // ---- inputs ----

    /// The LAN's verdict on a name the gateway asked to register
    /// ([`Event::RegisterOnLan`]).
    pub fn handle_lan_verdict(&mut self, _now: Instant, name: &NetbiosName, verdict: LanVerdict) {
        let waiters = self.waiters.remove(name).unwrap_or_default();
        match verdict {
            LanVerdict::Accepted => {
                let Some(entry) = self.names.accept(name) else {
                    return;
                };
                let kind = entry.kind;
                self.counters.names_registered += 1;
                for c in entry.holders.clone() {
                    self.events.push_back(Event::NameRegistered {
                        client: c,
                        name: name.clone(),
                        kind,
                    });
                }
                for w in waiters {
                    self.answer_registration(&w, name, Rcode::Ok);
                }
            }
            LanVerdict::Refused(rcode) => {
                let Some(entry) = self.names.refuse(name) else {
                    return;
                };
                for c in entry.holders {
                    self.counters.names_refused_by_lan += 1;
                    self.events.push_back(Event::NameRefused {
                        client: c,
                        name: name.clone(),
                        because: RefusedBecause::Lan(rcode),
                    });
                }
                // RFC 1002 §4.2.6: the negative response carries the
                // LAN's reason (ACT_ERR), broadcast requesters included,
                // since §5.1.1.1 has them listen for exactly this.
                let rcode = if rcode == Rcode::Ok {
                    Rcode::Active
                } else {
                    rcode
                };
                for w in waiters {
                    self.answer_registration(&w, name, rcode);
                }
            }
        }
    }

    /// A name service packet from `client`'s tunnel, sent from `from`.
    pub fn handle_client_name_packet(
        &mut self,
        _now: Instant,
        client: ClientId,
        from: SocketAddrV4,
        packet: &[u8],
    ) {
        if !self.clients.contains_key(&client) {
            return;
        }
        let p = match NamePacket::decode(packet) {
            Ok(p) => p,
            Err(e) => {
                return self.malformed(Source::Client(client), NAME_SERVICE_PORT, e.to_string())
            }
        };
        if p.header.response {
            return;
        }
        match p.header.opcode {
            Opcode::Registration | Opcode::Refresh => self.client_registration(client, from, &p),
            Opcode::Release => self.client_release(client, from, &p),
            // Queries from clients, WACKs and the rest are not the
            // gateway's: names on the LAN are resolved by the LAN.
            _ => {}
        }
    }

    /// A datagram (UDP 138) from `client`'s tunnel.
    pub fn handle_client_datagram(&mut self, _now: Instant, client: ClientId, packet: &[u8]) {
        if !self.clients.contains_key(&client) {
            return;
        }
        let d = match Datagram::decode(packet) {
            Ok(d) => d,
            Err(e) => {
                return self.malformed(Source::Client(client), DATAGRAM_SERVICE_PORT, e.to_string())
            }
        };
        // Seed, "RAS Client Sends a Datagram": NetbiosGatewayEnabled 1
        // forwards every datagram onto all networks; 0 lets only the
        // server receive, for the names it holds.
        if self.config.netbios_gateway_enabled {
            self.counters.client_to_lan += 1;
            self.transmits.push_back(Transmit {
                to: Destination::LanBroadcast,
                port: DATAGRAM_SERVICE_PORT,
                payload: packet.to_vec(),
            });
        } else if d
            .destination()
            .is_some_and(|n| self.config.server_names.contains(n))
        {
            self.counters.client_to_server += 1;
            self.transmits.push_back(Transmit {
                to: Destination::Server,
                port: DATAGRAM_SERVICE_PORT,
                payload: packet.to_vec(),
            });
        } else {
            self.counters.dropped_gateway_disabled += 1;
        }
    }

    /// A name service packet from the LAN, sent from `from`.
    pub fn handle_lan_name_packet(&mut self, _now: Instant, from: SocketAddrV4, packet: &[u8]) {
        let p = match NamePacket::decode(packet) {
            Ok(p) => p,
            Err(e) => return self.malformed(Source::Lan, NAME_SERVICE_PORT, e.to_string()),
        };
        if p.header.response {
            return;
        }
        let Some(name) = p.questions.first().map(|q| q.name.clone()) else {
            return;
        };
        let Some(entry) = self.names.get(&name) else {
            return;
        };
        if entry.state != NameState::Registered {
            return;
        }
        let Some(&holder) = entry.holders.iter().next() else {
            return;
        };
        let kind = entry.kind;
        match p.header.opcode {
            // RFC 1002 §5.1.1.5 (B-node incoming packet processing): a
            // query for a name in the local table is answered with a
            // POSITIVE NAME QUERY RESPONSE (§4.2.13). For a unique name
            // that is its holder's address; for a group name every member
            // answers in B mode (RFC 1001 §15.1.3), so the gateway answers
            // once for all its clients in the group, one NB entry each
            // with the G flag (§4.2.13's RDATA is a list of entries).
            Opcode::Query => {
                let holders: Vec<ClientId> = if kind == NameKind::Unique {
                    vec![holder]
                } else {
                    entry.holders.iter().copied().collect()
                };
                let entries: Vec<NbEntry> = holders
                    .iter()
                    .filter_map(|h| self.clients.get(h))
                    .take(MAX_ANSWER_ENTRIES)
                    .map(|info| NbEntry {
                        group: kind == NameKind::Group,
                        node_type: NodeType::B,
                        address: info.address,
                    })
                    .collect();
                if entries.is_empty() {
                    return;
                }
                let answer = NamePacket::positive_query_response(
                    p.header.trn_id,
                    name,
                    self.config.answer_ttl,
                    &entries,
                );
                self.counters.queries_answered += 1;
                self.transmits.push_back(Transmit {
                    to: Destination::LanUnicast(from),
                    port: NAME_SERVICE_PORT,
                    payload: answer.encode(),
                });
            }
            // RFC 1002 §5.1.1.5: a registration of a name held here as
            // unique, or of a unique name held here as group, gets a
            // NEGATIVE NAME REGISTRATION RESPONSE with ACT_ERR; MS-NBTE
            // §3.1.5.1: never for a name starting with '*'.
            Opcode::Registration => {
                let Ok(their) = p.first_nb_entry() else {
                    return;
                };
                if name.is_wildcard() || (kind == NameKind::Group && their.group) {
                    return;
                }
                let answer = NamePacket::registration_response(
                    p.header.trn_id,
                    name.clone(),
                    Rcode::Active,
                    0,
                    their,
                );
                self.counters.names_defended += 1;
                self.events.push_back(Event::NameDefended {
                    client: holder,
                    name,
                    from,
                });
                self.transmits.push_back(Transmit {
                    to: Destination::LanUnicast(from),
                    port: NAME_SERVICE_PORT,
                    payload: answer.encode(),
                });
            }
            _ => {}
        }
    }

    /// One datagram (UDP 138) from the LAN: a batch of one.
    pub fn handle_lan_datagram(&mut self, now: Instant, packet: &[u8]) {
        self.handle_lan_datagrams(now, &[packet]);
    }

    /// Datagrams from the LAN received together (one read of the socket).
    /// RcvDgSubmittedperGroupName is how many of them each group name
    /// receives at once; the rest of that name's are dropped.
    pub fn handle_lan_datagrams(&mut self, now: Instant, batch: &[&[u8]]) {
        let mut received: BTreeMap<NetbiosName, usize> = BTreeMap::new();
        for packet in batch {
            self.lan_datagram(now, packet, &mut received);
        }
    }

    // ---- outputs ----

    /// The next UDP payload to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next datagram for `client` (to its UDP 138), to be called when
    /// its tunnel can take one: datagrams to its unique names first, then
    /// group and broadcast datagrams in arrival order.
    pub fn poll_client_datagram(&mut self, client: ClientId) -> Option<Vec<u8>> {
        self.delivery.pop(client)
    }

    // ---- internals ----

    fn malformed(&mut self, from: Source, port: u16, reason: String) {
        self.counters.malformed += 1;
        self.events
            .push_back(Event::Malformed { from, port, reason });
    }

    fn released(&mut self, client: ClientId, name: NetbiosName, kind: NameKind, last: bool) {
        self.counters.names_released += 1;
        self.events.push_back(Event::NameReleased {
            client,
            name: name.clone(),
        });
        if last {
            self.waiters.remove(&name);
            self.events.push_back(Event::ReleaseOnLan {
                name,
                group: kind == NameKind::Group,
            });
        }
    }

    fn send_to_client(&mut self, client: ClientId, to: SocketAddrV4, packet: NamePacket) {
        self.transmits.push_back(Transmit {
            to: Destination::Client(client, to),
            port: NAME_SERVICE_PORT,
            payload: packet.encode(),
        });
    }

    /// RFC 1002 §5.1.1.1: a broadcast registration is answered only when
    /// refused; a unicast one (to us as its name server) always (§4.2.5,
    /// §4.2.6).
    fn answer_registration(&mut self, w: &Waiter, name: &NetbiosName, rcode: Rcode) {
        if rcode == Rcode::Ok && w.request.is_broadcast() {
            return;
        }
        let answer = NamePacket::registration_response(
            w.request.trn_id,
            name.clone(),
            rcode,
            w.ttl,
            w.entry,
        );
        self.send_to_client(w.client, w.reply_to, answer);
    }

    fn client_registration(&mut self, client: ClientId, from: SocketAddrV4, p: &NamePacket) {
        let Some(name) = p.questions.first().map(|q| q.name.clone()) else {
            return self.malformed(
                Source::Client(client),
                NAME_SERVICE_PORT,
                "a registration without a question".into(),
            );
        };
        let entry = match p.first_nb_entry() {
            Ok(e) => e,
            Err(e) => {
                return self.malformed(Source::Client(client), NAME_SERVICE_PORT, e.to_string())
            }
        };
        let kind = if entry.group {
            NameKind::Group
        } else {
            NameKind::Unique
        };
        let waiter = Waiter {
            client,
            reply_to: from,
            request: p.header,
            entry,
            ttl: p.nb_ttl(),
        };
        let refused = |because| Event::NameRefused {
            client,
            name: name.clone(),
            because,
        };
        match self.names.add(client, &name, kind) {
            Ok(Added::AlreadyHeld(NameState::Registered)) => {
                self.answer_registration(&waiter, &name, Rcode::Ok);
            }
            Ok(Added::Joined(NameState::Registered)) => {
                self.events.push_back(Event::NameRegistered {
                    client,
                    name: name.clone(),
                    kind,
                });
                self.answer_registration(&waiter, &name, Rcode::Ok);
            }
            Ok(added) => {
                if added == Added::New {
                    let address = self
                        .clients
                        .get(&client)
                        .map_or(entry.address, |c| c.address);
                    self.events.push_back(Event::RegisterOnLan {
                        name: name.clone(),
                        group: kind == NameKind::Group,
                        address,
                    });
                }
                // RFC 1002 §4.2.16: a unicast requester is told to wait
                // while the LAN is asked; a broadcast one waits anyway.
                if !p.header.is_broadcast() {
                    let wack = NamePacket::wack(&p.header, name.clone(), self.config.wack_ttl);
                    self.send_to_client(client, from, wack);
                }
                let list = self.waiters.entry(name.clone()).or_default();
                list.retain(|w| w.client != client);
                list.push(waiter);
            }
            Err(refusal) => {
                // RFC 1002 §4.2.6: ACT_ERR when the name is someone
                // else's, RFS_ERR when policy (here MaxNames) refuses it.
                let (rcode, because) = match refusal {
                    Refusal::InUse => {
                        self.counters.names_refused_in_use += 1;
                        (Rcode::Active, RefusedBecause::InUse)
                    }
                    Refusal::ClientLimit(n) => {
                        self.counters.names_refused_client_limit += 1;
                        (Rcode::Refused, RefusedBecause::ClientLimit(n))
                    }
                    Refusal::TotalLimit(n) => {
                        self.counters.names_refused_total_limit += 1;
                        (Rcode::Refused, RefusedBecause::TotalLimit(n))
                    }
                };
                self.events.push_back(refused(because));
                self.answer_registration(&waiter, &name, rcode);
            }
        }
    }

    fn client_release(&mut self, client: ClientId, from: SocketAddrV4, p: &NamePacket) {
        let Some(name) = p.questions.first().map(|q| q.name.clone()) else {
            return;
        };
        let entry = p.first_nb_entry().unwrap_or(NbEntry {
            group: false,
            node_type: NodeType::B,
            address: *from.ip(),
        });
        let rcode = match self.names.remove(client, &name) {
            Some((kind, last)) => {
                if let Some(list) = self.waiters.get_mut(&name) {
                    list.retain(|w| w.client != client);
                }
                self.released(client, name.clone(), kind, last);
                Rcode::Ok
            }
            // RFC 1002 §4.2.11: NAM_ERR, no such name held by the requester.
            None => Rcode::NameError,
        };
        // RFC 1002 §5.1.1.4: a broadcast release gets no answer.
        if !p.header.is_broadcast() {
            let answer = NamePacket::release_response(p.header.trn_id, name, rcode, entry);
            self.send_to_client(client, from, answer);
        }
    }

    fn lan_datagram(
        &mut self,
        now: Instant,
        packet: &[u8],
        received: &mut BTreeMap<NetbiosName, usize>,
    ) {
        let d = match Datagram::decode(packet) {
            Ok(d) => d,
            Err(e) => return self.malformed(Source::Lan, DATAGRAM_SERVICE_PORT, e.to_string()),
        };
        let broadcast = match d.header.msg_type {
            DatagramType::Broadcast => true,
            DatagramType::DirectUnique | DatagramType::DirectGroup => false,
            _ => {
                self.counters.dropped_not_forwarded_type += 1;
                return;
            }
        };
        let Some(dest) = d.destination().cloned() else {
            return;
        };
        if !broadcast {
            // The name's kind decides, not the datagram's type: browser
            // announcements go as DIRECT_GROUP to <1D>, a unique name.
            let Some(entry) = self
                .names
                .get(&dest)
                .filter(|e| e.state == NameState::Registered)
            else {
                self.counters.dropped_no_recipient += 1;
                return;
            };
            if entry.kind == NameKind::Unique {
                // Seed, "LAN System Sends a Datagram to a Unique RAS
                // Client Name": always buffered, no knob applies.
                let Some(&client) = entry.holders.iter().next() else {
                    return;
                };
                if self.delivery.push_unique(
                    client,
                    packet.to_vec(),
                    self.config.max_unique_buffered_per_client,
                ) {
                    self.counters.unique_forwarded += 1;
                } else {
                    self.counters.unique_dropped_buffer_full += 1;
                }
                return;
            }
            // RcvDgSubmittedperGroupName receives per group name.
            let n = received.entry(dest.clone()).or_default();
            if *n >= self.config.rcv_dg_submitted_per_group_name {
                self.counters.dropped_receives_exhausted += 1;
                return;
            }
            *n += 1;
        }
        // Seed step 1: EnableBroadcast.
        if broadcast && !self.config.enable_broadcast {
            self.counters.dropped_enable_broadcast += 1;
            return;
        }
        // Seed step 2: MulticastForwardRate.
        match self.gate.check(now) {
            GateVerdict::Open => {}
            GateVerdict::Never => {
                self.counters.dropped_forward_rate_never += 1;
                return;
            }
            GateVerdict::Closed => {
                self.counters.dropped_gate_closed += 1;
                return;
            }
        }
        // Seed step 3: DisableMcastFwdWhenSessionTraffic, per recipient.
        let candidates: Vec<ClientId> = if broadcast {
            self.clients.keys().copied().collect()
        } else {
            self.names
                .get(&dest)
                .map(|e| e.holders.iter().copied().collect())
                .unwrap_or_default()
        };
        let drops_busy = match self.config.session_traffic {
            SessionTrafficRule::AlwaysForward => false,
            SessionTrafficRule::DropGroup => !broadcast,
            SessionTrafficRule::DropGroupAndBroadcast => true,
        };
        if candidates.is_empty() {
            self.counters.dropped_no_recipient += 1;
            return;
        }
        let mut recipients = BTreeSet::new();
        for c in candidates {
            let busy = self.clients.get(&c).is_some_and(|i| i.busy);
            if busy && drops_busy {
                self.counters.dropped_session_traffic += 1;
            } else {
                recipients.insert(c);
            }
        }
        if recipients.is_empty() {
            // Every recipient was busy: counted per client above.
            return;
        }
        // Then MaxDgBufferedPerGroupName: with 10, the 11th is dropped.
        if self.delivery.buffered(&dest) >= self.config.max_dg_buffered_per_group_name {
            self.counters.dropped_buffer_full += 1;
            return;
        }
        let n = recipients.len() as u64;
        if broadcast {
            self.counters.broadcast_forwarded += n;
        } else {
            self.counters.group_forwarded += n;
        }
        self.delivery.push_group(&dest, packet.to_vec(), recipients);
    }
}
