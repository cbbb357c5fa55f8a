//! The SSTP listener: TLS, the logical port limit, one task per session,
//! and a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tunnel::sstp_server::{self, ServerSessionConfig};
use tunnel::{PacketSink, ServerHooks, SessionInfo};

use crate::acme_challenge::{Challenges, HelloChoice};
use crate::failure_log::ListenerFailures;
use crate::handshake_gate::{Entry, HandshakeGate, Pass, Refusal};
use crate::logical_ports::LogicalPorts;
use crate::port_hooks::PortHooks;
use crate::sstp_tls::{self, ServerTls};
use crate::SessionId;

/// A TLS handshake must finish within this time.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the summary of failed connections is looked at.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(2);

/// The TLS acceptor and the session settings holding the same
/// certificate: taken together by each connection, so that one accepted
/// with a certificate binds with that certificate (MS-SSTP §3.2.5.2: the
/// crypto binding hashes the certificate the connection was served), even
/// when a reload swaps them meanwhile.
pub struct SstpCertified {
    pub tls: TlsAcceptor,
    pub session: Arc<ServerSessionConfig>,
}

/// Everything the SSTP service shares between sessions.
#[derive(Clone)]
pub struct SstpService {
    /// Swapped whole by a reload (reload.rs).
    pub certified: Arc<arc_swap::ArcSwap<SstpCertified>>,
    pub hooks: Arc<dyn ServerHooks>,
    pub sink: Arc<dyn PacketSink>,
    /// The logical ports: lent at the end of TLS, the session's once its
    /// user is authenticated (logical_ports.rs).
    pub ports: Arc<LogicalPorts>,
    /// Connections that failed before a login, logged at a bounded rate.
    pub failures: ListenerFailures,
    /// TLS-ALPN-01 challenges answered on this listener, when
    /// `[certificate.acme]` is on (acme_challenge.rs).
    pub challenges: Option<Arc<Challenges>>,
    /// `ras_tls_handshake_failures_total{listener="sstp"}`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Bounds the connections in the TLS handshake stage, in all and per
    /// source address (handshake_gate.rs).
    pub gate: Arc<HandshakeGate>,
}

impl SstpService {
    /// Accept connections until `shutdown` turns true.
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut summaries = tokio::time::interval(SUMMARY_EVERY);
        loop {
            tokio::select! {
                _ = summaries.tick() => {
                    self.failures.summarise();
                    if let Some(line) = self.gate.summary() {
                        tracing::warn!("{line}");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // A host over its cap is closed here, before a
                        // task or a socket option is spent on it.
                        let entry = match self.gate.enter(peer.ip()) {
                            Ok(entry) => entry,
                            Err(why) => {
                                self.metrics.sstp_connection_refused(why.name());
                                continue;
                            }
                        };
                        let _ = tcp.set_nodelay(true);
                        let service = self.clone();
                        let stop = shutdown.clone();
                        tokio::spawn(async move { service.handle(tcp, peer, entry, stop).await });
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait, do not spin.
                        tracing::warn!("SSTP accept: {e}");
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
        entry: Entry,
        shutdown: watch::Receiver<bool>,
    ) {
        let certified = self.certified.load_full();
        // The handshake's future (≈ 3 KiB) and the session's are boxed
        // apart: inline, this task's future had a place for each and for
        // the busy answer's buffer, 15 KiB a connection for as long as its
        // session lives (issue 18).
        let accept = Box::pin(self.accept(tcp, peer, entry, &certified));
        let tls = match tokio::time::timeout(TLS_TIMEOUT, accept).await {
            // Kept boxed: the TLS stream is a few KiB, and every async
            // layer it is moved through would otherwise keep a place for
            // it in this connection's task (heaptrack, issue 18).
            Ok(Ok(Accepted::Tls(tls, pass))) => {
                drop(pass);
                tls
            }
            Ok(Ok(Accepted::Done)) => return,
            Ok(Ok(Accepted::Refused(why))) => {
                self.metrics.sstp_connection_refused(why.name());
                return;
            }
            Ok(Err(e)) => {
                self.metrics
                    .tls_handshake_failure("sstp", crate::metrics::tls_failure_reason(&e));
                self.failures.report(
                    "TLS handshake failed",
                    peer,
                    &format_args!("TLS handshake failed: {e}"),
                );
                return;
            }
            Err(_) => {
                self.metrics.tls_handshake_failure("sstp", "timeout");
                self.failures
                    .report("TLS handshake timed out", peer, &"TLS handshake timed out");
                return;
            }
        };
        // The logical port is taken only now: a connection that never
        // finishes its TLS handshake (half-open, slow) holds no port, so a
        // flood of them cannot turn real clients away as "ports in use".
        // Until the user logs in the port is only lent: a newer connection
        // takes it from the one that has waited longest without logging
        // in, so connections that finish TLS and then sit there cannot
        // keep real clients out either.
        let Ok(port) = self.ports.take() else {
            self.metrics.sstp_connection_refused("ports_busy");
            // At a bounded rate: a flood makes this one per connection.
            self.failures.report(
                "refused: all SSTP ports in use",
                peer,
                &format_args!(
                    "refused: all {} SSTP ports are in use by logged-in sessions",
                    self.ports.limit()
                ),
            );
            Box::pin(refuse_busy(tls, self.ports.limit())).await;
            return;
        };
        if port.evicted_another {
            self.metrics
                .sstp_connection_refused("evicted_unauthenticated");
        }
        let port = Arc::new(port);
        let info = SessionInfo {
            id: SessionId::next().raw(),
            peer: peer.to_string(),
            user: None,
        };
        let id = info.id;
        // Said at debug level: a line per connection is what a flood of
        // them would turn into; what becomes of it is logged below.
        tracing::debug!(session_id = id, %peer, "SSTP connection");
        let hooks = Arc::new(PortHooks::new(self.hooks.clone(), port.clone()));
        let served = Box::pin(sstp_server::serve(
            tls,
            &certified.session,
            hooks,
            self.sink.clone(),
            info,
            shutdown,
        ));
        crate::port_hooks::serve_on_lent_port(served, port, &self.failures, "SSTP", id, peer).await;
    }

    /// The TLS handshake with the server certificate, or, for a
    /// TLS-ALPN-01 validation of a pending ACME challenge, with the
    /// challenge certificate and then closed (RFC 8737 §3: no application
    /// data): `Done`. A place of the handshake gate is taken only once
    /// the ClientHello is in: waiting for bytes costs the server little,
    /// the key exchange and the signature after it are what the places
    /// bound, so half-open connections and clients that send their
    /// ClientHello slowly (bounded per address and by the deadline) do not
    /// take places real clients need.
    async fn accept(
        &self,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        entry: Entry,
        certified: &SstpCertified,
    ) -> std::io::Result<Accepted> {
        let mut tcp = tcp;
        let (hello, received) = sstp_tls::read_client_hello(&mut tcp).await?;
        let pass = match self.gate.admit(entry).await {
            Ok(pass) => pass,
            Err(why) => return Ok(Accepted::Refused(why)),
        };
        let config = match self
            .challenges
            .as_ref()
            .map(|c| c.choose(&hello.client_hello()))
        {
            None | Some(HelloChoice::Server) => certified.tls.config().clone(),
            Some(HelloChoice::Challenge(config)) => {
                let mut tls = ServerTls::accept(tcp, config, received).await?;
                tracing::info!(%peer, "ACME: answered a TLS-ALPN-01 validation");
                let _ = tls.shutdown().await;
                return Ok(Accepted::Done);
            }
            Some(HelloChoice::Refuse) => {
                tracing::debug!(%peer, "refused acme-tls/1: no pending challenge for that name");
                return Ok(Accepted::Done);
            }
        };
        Ok(Accepted::Tls(
            Box::new(ServerTls::accept(tcp, config, received).await?),
            pass,
        ))
    }

    /// Wait until every session has ended (all ports free), at most `limit`.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.ports.drain(limit).await
    }
}

/// How a connection's TLS stage ended, short of an error.
enum Accepted {
    /// The handshake is done; the gate's place is still held.
    Tls(Box<ServerTls<tokio::net::TcpStream>>, Pass),
    /// Answered and closed (ACME validation, or refused acme-tls/1).
    Done,
    /// Closed by the handshake gate.
    Refused(Refusal),
}

/// Over the port limit: read the request (briefly) and answer HTTP 503
/// with the reason, so the client can tell the user.
async fn refuse_busy<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut tls: S,
    limit: u32,
) {
    let mut buf = [0u8; 2048];
    let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
    let body = format!("all {limit} SSTP ports are in use\r\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(answer.as_bytes()).await;
    let _ = tls.shutdown().await;
}

#[cfg(test)]
mod tests {

    use ppp::link::LinkUp;

    use tunnel::hooks_support::BoxFuture;
    use tunnel::{AuthAnswer, EndReason, SessionInfo};

    use super::*;

    /// Never asked: the test only builds a connection's future.
    struct Unused;

    impl ServerHooks for Unused {
        fn authenticate(
            &self,
            _: &SessionInfo,
            _: ppp::auth::AuthRequest,
        ) -> BoxFuture<AuthAnswer> {
            unreachable!("not polled")
        }
        fn network(
            &self,
            _: &SessionInfo,
        ) -> BoxFuture<Result<ppp::link::NetworkSettings, String>> {
            unreachable!("not polled")
        }
        fn up(
            &self,
            _: &SessionInfo,
            _: &LinkUp,
        ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
            unreachable!("not polled")
        }
        fn down(&self, _: &SessionInfo, _: &EndReason) {}
    }

    impl PacketSink for Unused {
        fn send(&self, _: &[u8]) {}
    }

    /// A connection's task lives as long as its session, so its future is
    /// per-session memory: the TLS handshake, the session and the busy
    /// answer are boxed apart and it holds only pointers to them. Inline,
    /// it was 15,248 bytes (issue 18).
    #[tokio::test]
    async fn a_connections_task_keeps_no_place_for_its_stages() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::StateDir::open(dir.path()).unwrap();
        let cert = crate::cert::ServerCertificate::load_or_create_self_signed(
            &state,
            "vpn.example.com",
            &[],
        )
        .unwrap();
        let certified = SstpCertified {
            tls: TlsAcceptor::from(cert.rustls_config().unwrap()),
            session: Arc::new(ServerSessionConfig {
                certificate_der: Arc::new(cert.leaf_der().to_vec()),
                hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
                link: Arc::new(ppp::link::LinkConfig::server("vpn.example.com")),
                request_timeout: Duration::from_secs(10),
                server_name: "ras".into(),
                timers: sstp::Timers::default(),
            }),
        };
        let service = SstpService {
            certified: Arc::new(arc_swap::ArcSwap::from_pointee(certified)),
            hooks: Arc::new(Unused),
            sink: Arc::new(Unused),
            ports: LogicalPorts::new(1),
            failures: ListenerFailures::new("SSTP"),
            challenges: None,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            gate: HandshakeGate::new(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let entry = service.gate.enter(peer.ip()).unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let task = service.handle(tcp, peer, entry, stop);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a connection's future is {size} bytes");
    }
}
