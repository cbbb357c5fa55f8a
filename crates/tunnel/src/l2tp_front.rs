//! The front door of the LNS: whatever owns the transport (a UDP socket
//! for plain L2TP, the IPsec driver for L2TP/IPsec) hands datagrams to an
//! [`L2tpFront`], and one dispatcher task routes them to the tunnel they
//! belong to.
//!
//! Routing (RFC 2661 §3.1): every message names the recipient's Tunnel
//! ID, which is ours once the peer learnt it. Our tunnel IDs are random,
//! unique among the live tunnels and never 0, and a tunnel only takes
//! datagrams from the peer that opened it. Only a SCCRQ carries Tunnel ID
//! 0: it is told apart by the pair (peer, the peer's Assigned Tunnel ID),
//! because every Windows client picks tunnel ID 1 and many of them share
//! one NAT address — the transport's peer (address and port, or the SA)
//! is what differs.
//!
//! Data messages of established calls skip the dispatcher and the tunnel
//! task: they go straight to their session's queue (`l2tp_data_routes`),
//! a route the tunnel set up when the call came up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use l2tp::header::{decode, Packet};
use l2tp::{ControlMessage, MessageType};
use rand::Rng;
use session::{EndReason, LostCarrier};
use tokio::sync::{mpsc, watch};

use crate::hooks::{BoxFuture, ServerHooks};
use crate::l2tp_counters::{Dropped, L2tpCounters, L2tpCounts};
use crate::l2tp_data_routes::{DataRoutes, RouteKey, Shortcut};
use crate::l2tp_peer::{L2tpPeer, L2tpReply};
use crate::l2tp_server::SessionIds;
use crate::l2tp_tunnel::{Shared, TunnelCommand, TunnelTask};

/// Datagrams waiting for the dispatcher; more are dropped (counted).
const FRONT_QUEUE: usize = 4096;
/// Datagrams waiting for one tunnel; more are dropped (counted).
const TUNNEL_QUEUE: usize = 1024;
/// Tunnels beyond the port limit (a tunnel holds no port until a call is
/// up): room for clients between calls without letting a flood of
/// SCCRQs grow without bound.
const SPARE_TUNNELS: usize = 64;

/// A datagram on its way to the dispatcher.
pub(crate) struct Delivery {
    peer: L2tpPeer,
    datagram: Vec<u8>,
    reply: L2tpReply,
}

/// What tunnels and the front tell the dispatcher.
pub(crate) enum FrontCommand {
    /// The transport lost this peer (the IPsec SA was deleted, DPD timed
    /// out): every tunnel of the peer ends.
    PeerGone(L2tpPeer),
    /// A tunnel task ended (`serial` tells it apart from a later tunnel
    /// that reuses its ID).
    TunnelEnded { local_tunnel_id: u16, serial: u64 },
}

/// A cloneable handle on the LNS for the transports. Neither method
/// blocks or waits: the IPsec and UDP readers are never held up by a
/// slow session.
#[derive(Clone)]
pub struct L2tpFront {
    input: mpsc::Sender<Delivery>,
    commands: mpsc::UnboundedSender<FrontCommand>,
    counters: Arc<L2tpCounters>,
    routes: Arc<DataRoutes>,
    /// The owner of the sessions inside IPsec, asked about IKE client
    /// certificates before any session exists (`certificate_status`).
    hooks: Arc<dyn ServerHooks>,
    session_ids: SessionIds,
}

impl L2tpFront {
    /// Hands one received L2TP datagram (the UDP payload) from `peer` to
    /// the LNS; `reply` sends datagrams back to that peer (see
    /// [`L2tpReply`]). Returns false if the datagram was dropped because
    /// a queue is full (counted in [`L2tpFront::counts`]).
    pub fn try_deliver(&self, peer: L2tpPeer, datagram: Vec<u8>, reply: L2tpReply) -> bool {
        self.counters.received();
        if let Some(key) = route_key(peer, &datagram) {
            let mut datagram = Some(datagram);
            if let Some(delivered) = self.shortcut(key, || datagram.take().unwrap_or_default()) {
                return delivered;
            }
            return self.to_dispatcher(peer, datagram.unwrap_or_default(), reply);
        }
        self.to_dispatcher(peer, datagram, reply)
    }

    /// As [`try_deliver`](Self::try_deliver) for a datagram in the
    /// transport's receive buffer (ESP decrypted it in place): it is
    /// copied once, into its session's queue or the dispatcher's.
    pub fn deliver(&self, peer: L2tpPeer, datagram: &[u8], reply: &L2tpReply) -> bool {
        self.counters.received();
        if let Some(key) = route_key(peer, datagram) {
            if let Some(delivered) = self.shortcut(key, || datagram.to_vec()) {
                return delivered;
            }
        }
        self.to_dispatcher(peer, datagram.to_vec(), reply.clone())
    }

    /// A data message of an established call straight to its session:
    /// whether it was queued, or `None` (`take` not called) when no
    /// established call has `key`.
    fn shortcut(&self, key: RouteKey, take: impl FnOnce() -> Vec<u8>) -> Option<bool> {
        let peer = key.peer;
        match self.routes.try_send(&key, take) {
            Shortcut::NoRoute => None,
            Shortcut::Queued => Some(true),
            Shortcut::QueueFull => {
                self.counters.dropped(
                    Dropped::QueueFull,
                    &format_args!(
                        "session {} of tunnel {} of {peer} is not keeping up",
                        key.session_id, key.tunnel_id
                    ),
                );
                Some(false)
            }
            Shortcut::SessionGone => {
                self.counters.dropped(
                    Dropped::UnknownSession,
                    &format_args!(
                        "from {peer}: session {} of tunnel {} has ended",
                        key.session_id, key.tunnel_id
                    ),
                );
                Some(false)
            }
        }
    }

    fn to_dispatcher(&self, peer: L2tpPeer, datagram: Vec<u8>, reply: L2tpReply) -> bool {
        let delivery = Delivery {
            peer,
            datagram,
            reply,
        };
        match self.input.try_send(delivery) {
            Ok(()) => true,
            Err(_) => {
                self.counters
                    .dropped(Dropped::QueueFull, &"the L2TP input queue is full");
                false
            }
        }
    }

    /// The transport lost `peer` (its IPsec SA was deleted, or dead peer
    /// detection gave up): every tunnel of that peer is torn down, without
    /// a StopCCN (nothing can reach the peer any more), and its sessions
    /// end as a lost carrier.
    pub fn peer_gone(&self, peer: L2tpPeer) {
        let _ = self.commands.send(FrontCommand::PeerGone(peer));
    }

    /// What the LNS counted so far.
    pub fn counts(&self) -> L2tpCounts {
        self.counters.counts()
    }
}

/// Who a data message is for; `None` for a control message or garbage
/// (the dispatcher's path decides about those).
fn route_key(peer: L2tpPeer, datagram: &[u8]) -> Option<RouteKey> {
    match decode(datagram) {
        Ok(Packet::Data(m)) => Some(RouteKey {
            peer,
            tunnel_id: m.tunnel_id,
            session_id: m.session_id,
        }),
        _ => None,
    }
}

struct TunnelEntry {
    peer: L2tpPeer,
    peer_tunnel_id: u16,
    serial: u64,
    input: mpsc::Sender<Vec<u8>>,
    commands: mpsc::UnboundedSender<TunnelCommand>,
    /// Set by the tunnel once SCCCN arrived: a SCCRQ for the same
    /// (peer, tunnel ID) after that is a new tunnel of a restarted peer,
    /// not a retransmission.
    established: Arc<AtomicBool>,
}

/// The dispatcher task's state.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    tunnels: HashMap<u16, TunnelEntry>,
    by_peer: HashMap<(L2tpPeer, u16), u16>,
    next_serial: u64,
    max_tunnels: usize,
    stopping: bool,
}

/// The dispatcher's queues.
pub(crate) struct Rx {
    input: mpsc::Receiver<Delivery>,
    commands: mpsc::UnboundedReceiver<FrontCommand>,
}

/// A front handle and the queues its dispatcher reads.
pub(crate) fn channels(
    counters: Arc<L2tpCounters>,
    hooks: Arc<dyn ServerHooks>,
    session_ids: SessionIds,
) -> (L2tpFront, Rx) {
    let (input, input_rx) = mpsc::channel(FRONT_QUEUE);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let front = L2tpFront {
        input,
        commands,
        counters,
        routes: Arc::new(DataRoutes::default()),
        hooks,
        session_ids,
    };
    let rx = Rx {
        input: input_rx,
        commands: commands_rx,
    };
    (front, rx)
}

impl L2tpFront {
    /// The status of an IKEv1 client certificate over the network (OCSP,
    /// a CRL distribution point), asked of the sessions' owner
    /// ([`ServerHooks::certificate_status`]) after Main Mode: `Err`
    /// refuses the client. `peer`: its address, for the owner's view.
    pub fn certificate_status(
        &self,
        peer: std::net::SocketAddr,
        identity: &str,
        certificate: &ipsec::ikev1::certificates::PeerCertificate,
    ) -> BoxFuture<Result<(), String>> {
        let info = session::SessionInfo {
            id: (self.session_ids)(),
            peer: peer.to_string(),
            user: Some(identity.to_string()),
        };
        self.hooks.certificate_status(&info, certificate)
    }

    /// Where tunnel tasks report that they ended.
    pub(crate) fn command_sender(&self) -> mpsc::UnboundedSender<FrontCommand> {
        self.commands.clone()
    }

    /// Where tunnels add the routes of their established calls.
    pub(crate) fn data_routes(&self) -> Arc<DataRoutes> {
        self.routes.clone()
    }
}

impl Dispatcher {
    /// A dispatcher for at most `ports` calls.
    pub(crate) fn new(shared: Arc<Shared>, ports: usize) -> Dispatcher {
        Dispatcher {
            shared,
            tunnels: HashMap::new(),
            by_peer: HashMap::new(),
            next_serial: 0,
            // Tunnel IDs are 16 bits: keep most of them free so that a
            // random pick finds one at once.
            max_tunnels: (ports + SPARE_TUNNELS).min(32768),
            stopping: false,
        }
    }

    /// Routes datagrams until the server stops (then no new tunnel is
    /// opened; the existing ones end on their own).
    pub(crate) async fn run(mut self, mut rx: Rx, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                Some(d) = rx.input.recv() => self.on_datagram(d, &shutdown),
                Some(c) = rx.commands.recv() => self.on_command(c),
                changed = shutdown.changed(), if !self.stopping => {
                    self.stopping = changed.is_err() || *shutdown.borrow();
                }
            }
        }
    }

    fn on_command(&mut self, command: FrontCommand) {
        match command {
            FrontCommand::PeerGone(peer) => {
                let gone: Vec<u16> = self
                    .tunnels
                    .iter()
                    .filter(|(_, t)| t.peer == peer)
                    .map(|(id, _)| *id)
                    .collect();
                if !gone.is_empty() {
                    tracing::info!(
                        "L2TP peer {peer} is gone: closing its {} tunnel(s)",
                        gone.len()
                    );
                }
                for id in gone {
                    self.remove(id, EndReason::LostCarrier(LostCarrier::TransportClosed));
                }
            }
            FrontCommand::TunnelEnded {
                local_tunnel_id,
                serial,
            } => {
                if self
                    .tunnels
                    .get(&local_tunnel_id)
                    .is_some_and(|t| t.serial == serial)
                {
                    self.forget(local_tunnel_id);
                }
            }
        }
    }

    /// Ends a tunnel's task (with `reason` for its sessions) and forgets it.
    fn remove(&mut self, id: u16, reason: EndReason) {
        if let Some(t) = self.tunnels.get(&id) {
            let _ = t.commands.send(TunnelCommand::PeerGone(reason));
        }
        self.forget(id);
    }

    fn forget(&mut self, id: u16) {
        if let Some(t) = self.tunnels.remove(&id) {
            if self.by_peer.get(&(t.peer, t.peer_tunnel_id)) == Some(&id) {
                self.by_peer.remove(&(t.peer, t.peer_tunnel_id));
            }
        }
    }

    fn on_datagram(&mut self, d: Delivery, shutdown: &watch::Receiver<bool>) {
        let counters = &self.shared.counters;
        let tunnel_id = match decode(&d.datagram) {
            Err(e) => {
                return counters.dropped(Dropped::Malformed, &format_args!("from {}: {e}", d.peer))
            }
            Ok(Packet::Data(m)) => m.tunnel_id,
            Ok(Packet::Control { header, body }) if header.tunnel_id == 0 => {
                let peer_tunnel_id = match ControlMessage::decode(body, None) {
                    Ok(m) if m.message_type == MessageType::Sccrq => {
                        m.assigned_tunnel_id().unwrap_or(0)
                    }
                    // §3.1: only a SCCRQ may name Tunnel ID 0.
                    Ok(_) | Err(_) => {
                        return counters.dropped(
                            Dropped::UnknownTunnel,
                            &format_args!(
                                "from {}: a control message for tunnel 0 that is not SCCRQ",
                                d.peer
                            ),
                        )
                    }
                };
                return self.on_sccrq(d, peer_tunnel_id, shutdown);
            }
            Ok(Packet::Control { header, .. }) => header.tunnel_id,
        };
        match self.tunnels.get(&tunnel_id) {
            Some(t) if t.peer == d.peer => {
                if t.input.try_send(d.datagram).is_err() {
                    counters.dropped(
                        Dropped::QueueFull,
                        &format_args!("tunnel {tunnel_id} of {} is not keeping up", d.peer),
                    );
                }
            }
            _ => counters.dropped(
                Dropped::UnknownTunnel,
                &format_args!("from {}: no tunnel {tunnel_id} of this peer", d.peer),
            ),
        }
    }

    fn on_sccrq(&mut self, d: Delivery, peer_tunnel_id: u16, shutdown: &watch::Receiver<bool>) {
        let key = (d.peer, peer_tunnel_id);
        let known = self
            .by_peer
            .get(&key)
            .and_then(|id| Some((*id, self.tunnels.get(id)?)));
        if let Some((id, t)) = known {
            if !t.established.load(Ordering::Acquire) {
                // A retransmission (§5.8): the tunnel answers it again.
                let _ = t.input.try_send(d.datagram);
                return;
            }
            // The peer opened a new tunnel with the ID of a live one: it
            // restarted (a killed client reconnecting from the same
            // address); the old tunnel is dead.
            tracing::info!(
                "L2TP peer {} opened a new tunnel with its tunnel ID {peer_tunnel_id}: closing our tunnel {id}, which it forgot",
                d.peer
            );
            self.remove(id, EndReason::LostCarrier(LostCarrier::TransportClosed));
        }
        if self.stopping {
            return;
        }
        if self.tunnels.len() >= self.max_tunnels {
            return self.shared.counters.dropped(
                Dropped::UnknownTunnel,
                &format_args!(
                    "SCCRQ from {}: {} tunnels open already",
                    d.peer,
                    self.tunnels.len()
                ),
            );
        }
        let id = self.fresh_tunnel_id();
        self.next_serial += 1;
        let serial = self.next_serial;
        let (input, input_rx) = mpsc::channel(TUNNEL_QUEUE);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let established = Arc::new(AtomicBool::new(false));
        let task = TunnelTask::new(
            self.shared.clone(),
            id,
            serial,
            d.peer,
            d.reply,
            input_rx,
            commands.clone(),
            commands_rx,
            established.clone(),
        );
        let _ = input.try_send(d.datagram);
        tokio::spawn(task.run(shutdown.clone()));
        self.tunnels.insert(
            id,
            TunnelEntry {
                peer: d.peer,
                peer_tunnel_id,
                serial,
                input,
                commands,
                established,
            },
        );
        self.by_peer.insert(key, id);
    }

    /// A random Tunnel ID, never 0, not in use (random so that IDs are not
    /// guessable across restarts and reconnections).
    fn fresh_tunnel_id(&self) -> u16 {
        let mut rng = rand::thread_rng();
        loop {
            let id: u16 = rng.gen_range(1..=u16::MAX);
            if !self.tunnels.contains_key(&id) {
                return id;
            }
        }
    }
}
