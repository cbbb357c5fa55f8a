//! One L2TP tunnel (control connection, RFC 2661 §5) as a task: it drives
//! the sans-IO [`l2tp::Tunnel`], answers its control messages through the
//! peer's reply sink, hands data messages to the sessions it started, and
//! ends them with the reason the tunnel saw (a StopCCN, a CDN, the peer
//! no longer acknowledging HELLO or retransmissions, the transport gone).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use l2tp::header::{decode, Packet};
use l2tp::{Event, SessionCloseReason, Tunnel};
use ppp::link::Link;
use rand::RngCore;
use session::{EndReason, LostCarrier};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::end_reasons;
use crate::hooked::Hooked;
use crate::hooks::{Owner, PacketSink, ServerHooks, SessionInfo};
use crate::l2tp_counters::{Dropped, L2tpCounters};
use crate::l2tp_data_routes::{DataRoutes, RouteGuard, RouteKey};
use crate::l2tp_front::FrontCommand;
use crate::l2tp_peer::{L2tpPeer, L2tpReply};
use crate::l2tp_server::{L2tpServerConfig, SessionIds};
use crate::l2tp_session::{DataIds, L2tpSession};

/// Data datagrams waiting for one session; more are dropped (counted).
const SESSION_QUEUE: usize = 512;

/// What every tunnel and session of the LNS shares.
pub(crate) struct Shared {
    pub config: L2tpServerConfig,
    /// Asked by the sessions of tunnels inside IPsec.
    pub hooks: Arc<dyn ServerHooks>,
    /// Asked by the sessions of plain L2TP tunnels (no IPsec around
    /// them), so that the server can tell the two apart.
    pub plain_hooks: Arc<dyn ServerHooks>,
    pub sink: Arc<dyn PacketSink>,
    /// One permit per logical port (one per established call).
    pub ports: Arc<Semaphore>,
    pub counters: Arc<L2tpCounters>,
    pub session_ids: SessionIds,
    pub front: mpsc::UnboundedSender<FrontCommand>,
    /// The front's shortcut for data messages of established calls.
    pub routes: Arc<DataRoutes>,
}

/// What the dispatcher and the tunnel's sessions tell a tunnel.
pub(crate) enum TunnelCommand {
    /// The session's PPP link is down: disconnect the call (CDN, §5.6).
    SessionDown(u16),
    /// The transport lost the peer: end every session with this reason,
    /// and the tunnel without a StopCCN.
    PeerGone(EndReason),
}

struct SessionHandle {
    data: mpsc::Sender<Vec<u8>>,
    close: oneshot::Sender<EndReason>,
    /// The front queues this call's data messages on `data` directly
    /// until the tunnel drops the handle.
    _route: RouteGuard,
}

pub(crate) struct TunnelTask {
    shared: Arc<Shared>,
    tunnel: Tunnel,
    serial: u64,
    peer: L2tpPeer,
    reply: L2tpReply,
    input: mpsc::Receiver<Vec<u8>>,
    commands_tx: mpsc::UnboundedSender<TunnelCommand>,
    commands: mpsc::UnboundedReceiver<TunnelCommand>,
    sessions: HashMap<u16, SessionHandle>,
    established: Arc<AtomicBool>,
    /// Why the tunnel closed, once it did: its sessions end with it.
    closed: Option<EndReason>,
    stopping: bool,
}

impl TunnelTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        local_tunnel_id: u16,
        serial: u64,
        peer: L2tpPeer,
        reply: L2tpReply,
        input: mpsc::Receiver<Vec<u8>>,
        commands_tx: mpsc::UnboundedSender<TunnelCommand>,
        commands: mpsc::UnboundedReceiver<TunnelCommand>,
        established: Arc<AtomicBool>,
    ) -> TunnelTask {
        // §5.1.1: the challenge must be unpredictable.
        let mut challenge = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut challenge);
        let tunnel = Tunnel::new_lns(
            shared.config.tunnel.clone(),
            local_tunnel_id,
            challenge,
            Instant::now(),
        );
        TunnelTask {
            shared,
            tunnel,
            serial,
            peer,
            reply,
            input,
            commands_tx,
            commands,
            sessions: HashMap::new(),
            established,
            closed: None,
            stopping: false,
        }
    }

    fn id(&self) -> u16 {
        self.tunnel.local_tunnel_id()
    }

    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.stopping = *shutdown.borrow();
        loop {
            self.process(&shutdown);
            if self.tunnel.is_closed() {
                break;
            }
            let deadline = self.tunnel.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                d = self.input.recv() => match d {
                    Some(d) => self.on_datagram(d),
                    // The dispatcher forgot this tunnel (a PeerGone
                    // command is on its way, or already here).
                    None => {
                        if let Ok(TunnelCommand::PeerGone(reason)) = self.commands.try_recv() {
                            self.closed.get_or_insert(reason);
                        }
                        break;
                    }
                },
                Some(command) = self.commands.recv() => match command {
                    TunnelCommand::SessionDown(id) => {
                        self.sessions.remove(&id);
                        // Already gone when the tunnel closed it first.
                        let _ = self.tunnel.close_session(Instant::now(), id);
                        self.close_if_stopping();
                    }
                    TunnelCommand::PeerGone(reason) => {
                        self.closed.get_or_insert(reason);
                        break;
                    }
                },
                _ = sleep => self.tunnel.handle_timeout(Instant::now()),
                _ = shutdown.changed(), if !self.stopping => {
                    self.stopping = true;
                    // Sessions close their PPP links themselves; the
                    // tunnel follows the last one.
                    self.close_if_stopping();
                }
            }
        }
        let reason = self
            .closed
            .clone()
            .unwrap_or(EndReason::LostCarrier(LostCarrier::TransportClosed));
        for (_, session) in self.sessions.drain() {
            let _ = session.close.send(reason.clone());
        }
        let _ = self.shared.front.send(FrontCommand::TunnelEnded {
            local_tunnel_id: self.id(),
            serial: self.serial,
        });
    }

    fn close_if_stopping(&mut self) {
        if self.stopping && self.sessions.is_empty() {
            self.tunnel.close(Instant::now());
        }
    }

    fn on_datagram(&mut self, datagram: Vec<u8>) {
        let session_id = match decode(&datagram) {
            Ok(Packet::Data(m)) => m.session_id,
            _ => {
                // The ports are shared by every tunnel: the core refuses
                // an ICRQ over what is free now with CDN 2/4, before the
                // call is connected (a call that still finds no port once
                // established is cut in `start_session`).
                let free = self.shared.ports.available_permits();
                self.tunnel
                    .set_session_limit(self.sessions.len().saturating_add(free));
                return self.tunnel.handle_input(Instant::now(), &datagram);
            }
        };
        match self.sessions.get(&session_id) {
            Some(s) => {
                if s.data.try_send(datagram).is_err() {
                    self.shared.counters.dropped(
                        Dropped::UnknownSession,
                        &format_args!(
                            "session {session_id} of tunnel {} is not keeping up",
                            self.id()
                        ),
                    );
                }
            }
            None => self.shared.counters.dropped(
                Dropped::UnknownSession,
                &format_args!(
                    "from {}: no session {session_id} in tunnel {}",
                    self.peer,
                    self.id()
                ),
            ),
        }
    }

    /// The tunnel's events, then its datagrams out.
    fn process(&mut self, shutdown: &watch::Receiver<bool>) {
        let mut ended: Vec<(SessionHandle, SessionCloseReason)> = Vec::new();
        while let Some(event) = self.tunnel.poll_event() {
            match event {
                Event::TunnelEstablished {
                    peer_tunnel_id,
                    peer_host_name,
                } => {
                    self.established.store(true, Ordering::Release);
                    tracing::info!(
                        "L2TP tunnel {} up with {} (host {}, its tunnel ID {peer_tunnel_id})",
                        self.id(),
                        self.peer,
                        String::from_utf8_lossy(&peer_host_name).escape_debug()
                    );
                }
                Event::SessionEstablished {
                    local_session_id,
                    peer_session_id,
                    sequencing_required,
                } => self.start_session(
                    local_session_id,
                    peer_session_id,
                    sequencing_required,
                    shutdown,
                ),
                Event::SessionClosed {
                    local_session_id,
                    reason,
                } => {
                    if let Some(s) = self.sessions.remove(&local_session_id) {
                        ended.push((s, reason));
                    }
                }
                Event::CallRefused {
                    peer_session_id,
                    result,
                } if result.error == Some(l2tp::reason::error_code::RESOURCES)
                    && self.tunnel.session_count() < self.shared.config.tunnel.max_sessions =>
                {
                    tracing::warn!(
                        "refused an L2TP call from {} (tunnel {}, its session {peer_session_id}): all {} L2TP ports are in use; sent CDN result 2, error 4",
                        self.peer,
                        self.id(),
                        self.shared.config.ports
                    )
                }
                Event::CallRefused {
                    peer_session_id,
                    result,
                } => tracing::info!(
                    "L2TP tunnel {} refused call {peer_session_id} of {}: result {}",
                    self.id(),
                    self.peer,
                    result.result
                ),
                Event::LinkInfo { .. } => {}
                Event::TunnelClosed { reason } => {
                    tracing::info!(
                        "L2TP tunnel {} with {} closed: {reason}",
                        self.id(),
                        self.peer
                    );
                    self.closed
                        .get_or_insert(end_reasons::from_l2tp_tunnel(&reason));
                }
            }
        }
        // The session events of a closing tunnel come before its
        // TunnelClosed: they end with the tunnel's reason.
        for (session, reason) in ended {
            let why = match (&reason, &self.closed) {
                (SessionCloseReason::TunnelClosed, Some(tunnel)) => tunnel.clone(),
                _ => end_reasons::from_l2tp_session(&reason),
            };
            let _ = session.close.send(why);
        }
        let now = Instant::now();
        while let Some(datagram) = self.tunnel.poll_transmit(now) {
            (self.reply)(datagram);
        }
    }

    fn start_session(
        &mut self,
        local_session_id: u16,
        peer_session_id: u16,
        sequencing: bool,
        shutdown: &watch::Receiver<bool>,
    ) {
        let Ok(permit) = self.shared.ports.clone().try_acquire_owned() else {
            tracing::warn!(
                "refused an L2TP call from {}: all {} L2TP ports are in use",
                self.peer,
                self.shared.config.ports
            );
            let _ = self.tunnel.close_session(Instant::now(), local_session_id);
            return;
        };
        let info = SessionInfo {
            id: (self.shared.session_ids)(),
            peer: self.peer.addr().to_string(),
            user: None,
        };
        let id = info.id;
        tracing::info!(
            session = id,
            "L2TP call from {}: tunnel {}, session {local_session_id}",
            self.peer,
            self.id()
        );
        let (data, data_rx) = mpsc::channel(SESSION_QUEUE);
        let (close, close_rx) = oneshot::channel();
        let route = self.shared.routes.add(
            RouteKey {
                peer: self.peer,
                tunnel_id: self.id(),
                session_id: local_session_id,
            },
            data.clone(),
        );
        self.sessions.insert(
            local_session_id,
            SessionHandle {
                data,
                close,
                _route: route,
            },
        );
        let hooks = match self.peer {
            L2tpPeer::Plain(_) => self.shared.plain_hooks.clone(),
            L2tpPeer::Ipsec { .. } => self.shared.hooks.clone(),
        };
        let hooked = Hooked::new(
            Owner::Server(hooks),
            Link::new(self.shared.config.link.clone()),
            info,
        )
        .with_carrier_name(" over L2TP");
        let session = L2tpSession {
            hooked,
            ids: DataIds {
                peer_tunnel_id: self.tunnel.peer_tunnel_id(),
                peer_session_id,
                local_session_id,
            },
            sequence: sequencing.then(Default::default),
            data: data_rx,
            close: close_rx,
            reply: self.reply.clone(),
            tunnel: self.commands_tx.clone(),
            sink: self.shared.sink.clone(),
            counters: self.shared.counters.clone(),
        };
        let peer = self.peer;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let outcome = session.run(stop).await;
            tracing::info!(
                session = id,
                bytes_in = outcome.stats.bytes_in,
                bytes_out = outcome.stats.bytes_out,
                "L2TP session of {peer} ended: {}",
                outcome.reason
            );
            drop(permit);
        });
    }
}
