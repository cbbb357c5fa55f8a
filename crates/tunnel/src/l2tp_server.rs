//! The L2TP network server (LNS, RFC 2661) on the session core.
//!
//! ```text
//! UDP 1701 or IPsec ─(peer, datagram, reply)─▶ L2tpFront ─▶ dispatcher
//!   (data messages of established calls: straight to their call's task)
//!   ─▶ one task per tunnel (l2tp::Tunnel: SCCRQ/SCCRP/SCCCN, ICRQ/ICRP/ICCN,
//!      HELLO, CDN, StopCCN)
//!   ─▶ one task per call (PPP through SessionCore: auth, policy, address,
//!      IPCP, accounting, TUN routing, Down once)
//! ```
//!
//! The LNS owns no socket: the transport hands datagrams to an
//! [`L2tpFront`] with the peer's name ([`L2tpPeer`]) and a reply sink
//! ([`L2tpReply`], a non-blocking function that sends one datagram back:
//! `send_to` for plain UDP, ESP encapsulation for IPsec). Tunnels are
//! told apart by (peer, tunnel ID) so clients behind one NAT that all use
//! tunnel ID 1 (Windows does) never collide; see `l2tp_front`.
//!
//! The parts, one concern a file:
//!
//! * `l2tp_peer`: [`L2tpPeer`] and [`L2tpReply`].
//! * `l2tp_front`: [`L2tpFront`] and the dispatcher that routes datagrams.
//! * `l2tp_data_routes`: the shortcut for data messages of established
//!   calls, from the transport straight to the session.
//! * `l2tp_tunnel`: a tunnel's task and its sessions' lifecycle.
//! * `l2tp_session`: an established call: PPP in data messages.
//! * `l2tp_counters`: drop counters and their rate-limited log line.
//! * `l2tp_udp`: the plain-UDP transport ([`serve_udp`]).
//! * this file: the configuration and [`L2tpServer::start`].
//!
//! A killed client is noticed by the tunnel: HELLO (§6.5) after
//! `hello_interval` of silence, and the reliable delivery's retransmissions
//! (§5.8) giving up, close the tunnel, and its sessions end as a lost
//! carrier. Over the port limit a call is refused at its ICRQ (CDN result
//! 2, error 4), with one log line.

use std::sync::Arc;
use std::time::Duration;

use l2tp::TunnelConfig;
use ppp::link::LinkConfig;
use tokio::sync::{watch, Semaphore};

use crate::hooks::{PacketSink, ServerHooks};
use crate::l2tp_counters::L2tpCounters;
use crate::l2tp_front::{self, Dispatcher};
use crate::l2tp_tunnel::Shared;

pub use crate::l2tp_counters::L2tpCounts;
pub use crate::l2tp_front::L2tpFront;
pub use crate::l2tp_peer::{L2tpPeer, L2tpReply};
pub use crate::l2tp_udp::serve_udp;

/// Gives each new session its id (the server's session numbering).
pub type SessionIds = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What every tunnel and session of the LNS shares.
#[derive(Debug, Clone)]
pub struct L2tpServerConfig {
    /// The PPP link settings (server role). L2TP/IPsec is encrypted by
    /// ESP: no MPPE inside it, as RRAS does. Shared by every call's link.
    pub link: Arc<LinkConfig>,
    /// The tunnel settings (host name, HELLO interval, timers).
    pub tunnel: TunnelConfig,
    /// Logical ports: the most established calls at once.
    pub ports: u32,
}

impl L2tpServerConfig {
    /// `link` for every call, HELLO after `hello_interval` of silence,
    /// at most `ports` calls; the tunnel's host name is `host_name`.
    pub fn new(link: LinkConfig, host_name: &str, hello_interval: Duration, ports: u32) -> Self {
        L2tpServerConfig {
            link: Arc::new(link),
            tunnel: TunnelConfig {
                host_name: host_name.as_bytes().to_vec(),
                hello_interval,
                ..TunnelConfig::default()
            },
            ports,
        }
    }
}

/// A running LNS.
pub struct L2tpServer {
    front: L2tpFront,
    ports: Arc<Semaphore>,
    port_limit: u32,
}

impl L2tpServer {
    /// Starts the dispatcher. Sessions ask `hooks`, write received IP
    /// packets to `sink`, take their ids from `session_ids`, and end when
    /// `shutdown` turns true. Must run inside the tokio runtime.
    pub fn start(
        config: L2tpServerConfig,
        hooks: Arc<dyn ServerHooks>,
        sink: Arc<dyn PacketSink>,
        session_ids: SessionIds,
        shutdown: watch::Receiver<bool>,
    ) -> L2tpServer {
        Self::start_by_transport(config, hooks.clone(), hooks, sink, session_ids, shutdown)
    }

    /// As [`L2tpServer::start`], but the sessions of plain L2TP tunnels
    /// ask `plain_hooks` and those inside IPsec `ipsec_hooks`: plain L2TP
    /// carries PPP in the clear, which the server's policies must see.
    pub fn start_by_transport(
        config: L2tpServerConfig,
        ipsec_hooks: Arc<dyn ServerHooks>,
        plain_hooks: Arc<dyn ServerHooks>,
        sink: Arc<dyn PacketSink>,
        session_ids: SessionIds,
        shutdown: watch::Receiver<bool>,
    ) -> L2tpServer {
        let port_limit = config.ports;
        let ports = Arc::new(Semaphore::new(port_limit as usize));
        let counters = Arc::new(L2tpCounters::default());
        let (front, rx) =
            l2tp_front::channels(counters.clone(), ipsec_hooks.clone(), session_ids.clone());
        let shared = Arc::new(Shared {
            config,
            hooks: ipsec_hooks,
            plain_hooks,
            sink,
            ports: ports.clone(),
            counters,
            session_ids,
            front: front.command_sender(),
            routes: front.data_routes(),
        });
        let dispatcher = Dispatcher::new(shared, port_limit as usize);
        tokio::spawn(dispatcher.run(rx, shutdown));
        L2tpServer {
            front,
            ports,
            port_limit,
        }
    }

    /// The handle transports deliver datagrams to.
    pub fn front(&self) -> L2tpFront {
        self.front.clone()
    }

    /// Calls established right now (ports in use).
    pub fn active_calls(&self) -> usize {
        self.port_limit as usize - self.ports.available_permits()
    }

    /// Wait until every call has ended (all ports free), at most `limit`.
    pub async fn drain(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.ports.acquire_many(self.port_limit))
            .await
            .is_ok()
    }
}
