//! The PPTP listener: TCP control connections, the one raw GRE socket
//! they share, the logical port limit, one task per session, and a
//! graceful stop.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tunnel::pptp_server::{self, GreDemux, PptpServerConfig};
use tunnel::{PacketSink, ServerHooks, SessionInfo};

use crate::failure_log::ListenerFailures;
use crate::logical_ports::LogicalPorts;
use crate::port_hooks::PortHooks;
use crate::SessionId;

/// Everything the PPTP service shares between sessions.
#[derive(Clone)]
pub struct PptpService {
    pub session: Arc<PptpServerConfig>,
    /// The raw GRE socket and the call table (its reader task must run).
    pub demux: Arc<GreDemux>,
    pub hooks: Arc<dyn ServerHooks>,
    pub sink: Arc<dyn PacketSink>,
    /// The logical ports (one call per control connection): lent at the
    /// accept, the session's once its user is authenticated
    /// (logical_ports.rs), so idle control connections from many hosts
    /// cannot keep real clients out.
    pub ports: Arc<LogicalPorts>,
    /// Connections over the port limit being answered at once; beyond
    /// [`REFUSALS`] they are closed without an answer.
    pub refusals: Arc<Semaphore>,
    /// Connections that failed before a login, logged at a bounded rate.
    pub failures: ListenerFailures,
}

/// Over-limit connections answered at once (each for a few seconds at
/// most): a flood of them costs bounded memory.
pub const REFUSALS: usize = 64;

impl PptpService {
    /// Accept connections until `shutdown` turns true.
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut summaries = tokio::time::interval(crate::sstp_service::SUMMARY_EVERY);
        loop {
            tokio::select! {
                _ = summaries.tick() => self.failures.summarise(),
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        let service = self.clone();
                        let stop = shutdown.clone();
                        tokio::spawn(async move { service.handle(tcp, peer, stop).await });
                    }
                    Err(e) => {
                        tracing::warn!("PPTP accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn handle(
        &self,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let peer_ip = match peer.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(ip) => ip,
                None => {
                    self.failures
                        .report("PPTP over IPv6", peer, &"PPTP over IPv6 refused");
                    return;
                }
            },
        };
        let Ok(port) = self.ports.take() else {
            self.failures.report(
                "refused: all PPTP ports in use",
                peer,
                &format_args!(
                    "refused: all {} PPTP ports are in use by logged-in sessions",
                    self.ports.limit()
                ),
            );
            if let Ok(_answering) = self.refusals.clone().try_acquire_owned() {
                Box::pin(pptp_server::refuse(tcp, &self.session)).await;
            }
            return;
        };
        let port = Arc::new(port);
        let info = SessionInfo {
            id: SessionId::next().raw(),
            peer: peer.to_string(),
            user: None,
        };
        let id = info.id;
        // Debug level: see the SSTP listener.
        tracing::debug!(session_id = id, %peer, "PPTP connection");
        // Boxed, as the SSTP listener's: inline, the session's future
        // would take two places in this task's (issue 18).
        let served = Box::pin(pptp_server::serve(
            tcp,
            peer_ip,
            &self.session,
            self.demux.clone(),
            Arc::new(PortHooks::new(self.hooks.clone(), port.clone())),
            self.sink.clone(),
            info,
            shutdown,
        ));
        crate::port_hooks::serve_on_lent_port(served, port, &self.failures, "PPTP", id, peer).await;
    }

    /// Wait until every session has ended (all ports free), at most `limit`.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.ports.drain(limit).await
    }
}
