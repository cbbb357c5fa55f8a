//! The L2TP service: the LNS ([`L2tpServer`]) every L2TP session runs in,
//! fed by the IPsec service through [`L2tpFront`] and, only when
//! `[l2tp] allow_plain` is set, by plain UDP sockets (RFC 2661 §8.1).
//! Without IPsec L2TP carries PPP in the clear, so plain L2TP is off by
//! default and UDP 1701 is not even bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ppp::link::LinkConfig;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tunnel::l2tp_server::{self, L2tpFront, L2tpServer, L2tpServerConfig};
use tunnel::{PacketSink, ServerHooks};

use crate::config::L2tpConfig;
use crate::listen::ListenError;
use crate::SessionId;

/// The plain-UDP sockets, bound before anything else is touched (see
/// `Listeners::bind`); none unless `allow_plain`.
pub fn bind_plain(config: &L2tpConfig) -> Result<Vec<(SocketAddr, UdpSocket)>, ListenError> {
    if !config.allow_plain {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    for addr in &config.listen {
        sockets.push((*addr, bind_udp(*addr)?));
    }
    Ok(sockets)
}

/// A non-blocking UDP socket on `addr` (IPv6-only for IPv6, as the TCP
/// listeners are), with room for bursts of full-size datagrams.
fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, ListenError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let at = |source| ListenError { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(at)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(at)?;
    }
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true).map_err(at)?;
    socket.bind(&addr.into()).map_err(at)?;
    UdpSocket::from_std(socket.into()).map_err(at)
}

/// The running L2TP service.
pub struct L2tpService {
    server: L2tpServer,
}

/// Who the LNS's sessions ask: those of tunnels inside IPsec, and those of
/// plain L2TP (which the policies must see as unencrypted).
pub struct L2tpHooks {
    pub ipsec: Arc<dyn ServerHooks>,
    pub plain: Arc<dyn ServerHooks>,
}

impl L2tpService {
    /// Starts the LNS and reads `plain` (empty unless allowed).
    pub fn start(
        config: &L2tpConfig,
        link: LinkConfig,
        host_name: &str,
        hooks: L2tpHooks,
        sink: Arc<dyn PacketSink>,
        plain: Vec<(SocketAddr, UdpSocket)>,
        shutdown: watch::Receiver<bool>,
    ) -> L2tpService {
        // Plain L2TP sessions ask `plain_hooks`: nothing encrypts them
        // (RFC 2661 §9.2), which the policies' encryption checks must see.
        let server = L2tpServer::start_by_transport(
            L2tpServerConfig::new(link, host_name, config.hello_interval(), config.ports.get()),
            hooks.ipsec,
            hooks.plain,
            sink,
            Arc::new(|| SessionId::next().raw()),
            shutdown.clone(),
        );
        // Whether plain L2TP is on is said once, by `Notice::L2tp`.
        for (_, socket) in plain {
            tokio::spawn(l2tp_server::serve_udp(
                Arc::new(socket),
                server.front(),
                shutdown.clone(),
            ));
        }
        L2tpService { server }
    }

    /// The LNS's front door, for the IPsec service.
    pub fn front(&self) -> L2tpFront {
        self.server.front()
    }

    /// Wait until every call has ended, at most `limit`.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.server.drain(limit).await
    }
}
