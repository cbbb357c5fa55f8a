//! The client side of one SSTP connection, after TLS is established.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp::link::{Link, LinkConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::hooked::Hooked;
use crate::hooks::{ClientHooks, Owner, PacketSink, SessionInfo};
use crate::http_io::{self, HttpError};
use crate::outcome::Outcome;
use crate::sstp_session::Session;

/// What the client needs to know.
pub struct ClientSessionConfig {
    /// The `Host:` of the HTTP request.
    pub host: String,
    /// The DER of the server certificate TLS received (crypto binding).
    pub server_certificate_der: Vec<u8>,
    /// The PPP link settings (client role, with credentials).
    pub link: LinkConfig,
    /// How long the server may take to answer the HTTP request.
    pub response_timeout: Duration,
}

/// Run one client session until it ends.
pub async fn connect<S>(
    mut stream: S,
    config: ClientSessionConfig,
    hooks: Arc<dyn ClientHooks>,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    shutdown: watch::Receiver<bool>,
) -> Result<Outcome, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let initial = http_io::send_request(&mut stream, &config.host, config.response_timeout).await?;
    let now = Instant::now();
    // On the heap: a session is about 5 KiB, and a value moved into an
    // awaited future can keep its place in the caller's future too, so
    // inline it would count twice per connection (heaptrack, issue 18).
    let session = Box::new(Session {
        sstp: sstp::ClientConnection::new(
            sstp::ClientConfig::new(&config.server_certificate_der),
            now,
        )
        .into(),
        hooked: Hooked::new(Owner::Client(hooks), Link::new(config.link), info),
        sink,
    });
    Ok(session.run(stream, initial, shutdown).await)
}
