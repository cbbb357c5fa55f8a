//! The server side of one SSTP connection, after TLS is established.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp::link::{Link, LinkConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::hooked::Hooked;
use crate::hooks::{Owner, PacketSink, ServerHooks, SessionInfo};
use crate::http_io;
use crate::outcome::Outcome;
use crate::sstp_session::Session;

/// What every server session shares.
#[derive(Clone)]
pub struct ServerSessionConfig {
    /// The DER of the certificate TLS presents (MS-SSTP crypto binding).
    pub certificate_der: Arc<Vec<u8>>,
    /// SSTP Hash Protocol Bitmask offered (SHA-256, optionally SHA-1).
    pub hash_protocols: u8,
    /// The PPP link settings (server role), shared by every session's
    /// link.
    pub link: Arc<LinkConfig>,
    /// The client must send a complete HTTP request within this time
    /// (slowloris protection).
    pub request_timeout: Duration,
    /// The `Server:` header of the HTTP answer.
    pub server_name: String,
    /// SSTP timers (MS-SSTP §3.1.2 defaults).
    pub timers: sstp::Timers,
}

/// Serve one client: HTTP request, SSTP, PPP, until the session ends.
pub async fn serve<S>(
    mut stream: S,
    config: &ServerSessionConfig,
    hooks: Arc<dyn ServerHooks>,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    shutdown: watch::Receiver<bool>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // The HTTP exchange's future (1.4 KiB, with its read chunk) and the
    // session's (1 KiB) are boxed apart: inline, this future kept a place
    // for both for the session's whole life (2,272 bytes; 264 now, issue 18).
    let request = Box::pin(http_io::accept_request(
        &mut stream,
        config.request_timeout,
        &config.server_name,
    ));
    let initial = match request.await {
        Ok(rest) => rest,
        Err(e) => {
            // The listener logs it (at a bounded rate: garbage requests
            // come in floods).
            return Outcome {
                reason: session::EndReason::ProtocolError(format!("SSTP request refused: {e}")),
                stats: Default::default(),
                was_up: false,
            };
        }
    };
    let mut sstp_config = sstp::ServerConfig::new(&config.certificate_der);
    sstp_config.hash_protocols = config.hash_protocols;
    sstp_config.timers = config.timers;
    // On the heap: a session is about 5 KiB, and a value moved into an
    // awaited future can keep its place in the caller's future too, so
    // inline it would count twice per connection (heaptrack, issue 18).
    let session = Box::new(Session {
        sstp: sstp::ServerConnection::new(sstp_config, Instant::now()).into(),
        hooked: Hooked::new(Owner::Server(hooks), Link::new(config.link.clone()), info),
        sink,
    });
    Box::pin(session.run(stream, initial, shutdown)).await
}
