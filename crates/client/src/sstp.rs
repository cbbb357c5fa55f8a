//! One SSTP connection: resolve, TCP, TLS (checked per [`Trust`]), then the
//! SSTP/PPP session of `tunnel::sstp_client`, with the host side (TUN,
//! routes, DNS) attached through a [`Network`] when the link comes up and
//! detached when it ends.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::link::{LinkConfig, LinkUp};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tunnel::hooks_support::BoxFuture;
use tunnel::http_io::HttpError;
use tunnel::sstp_client::{self, ClientSessionConfig};
use tunnel::{PacketSink, PacketSource, SessionInfo, SessionStats};
use zeroize::Zeroizing;

use crate::network::{Connected, Network};
use crate::target::Target;
use crate::verify::{self, Trust, VerifyError};

/// Everything one connection needs.
#[derive(Clone)]
pub struct SstpOptions {
    pub target: Target,
    pub username: String,
    pub password: Zeroizing<String>,
    pub trust: Trust,
    /// Also offer CHAP-MD5 and PAP (no MPPE keys, and PAP sends the
    /// password in the clear inside TLS): only when the server needs it.
    pub allow_weak_auth: bool,
    /// Negotiate IPv6CP (a link-local address on the TUN).
    pub ipv6: bool,
    /// Limit for name resolution, TCP connect and TLS handshake each.
    pub connect_timeout: Duration,
    /// How long the server may take to answer the SSTP HTTP request.
    pub response_timeout: Duration,
    /// Told once the link is up and the host side attached.
    pub on_up: Option<UpCallback>,
    /// Told once the server is reached (TLS up) and PPP starts, before
    /// the user name and password are checked.
    pub on_connected: Option<ConnectedCallback>,
}

impl fmt::Debug for SstpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("SstpOptions")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("trust", &self.trust)
            .field("allow_weak_auth", &self.allow_weak_auth)
            .field("ipv6", &self.ipv6)
            .finish_non_exhaustive()
    }
}

impl SstpOptions {
    /// Defaults: strong authentication only, IPv6CP on, 15 s to connect,
    /// 15 s for the HTTP answer.
    pub fn new(target: Target, username: &str, password: Zeroizing<String>, trust: Trust) -> Self {
        SstpOptions {
            target,
            username: username.to_owned(),
            password,
            trust,
            allow_weak_auth: false,
            ipv6: true,
            connect_timeout: Duration::from_secs(15),
            response_timeout: Duration::from_secs(15),
            on_up: None,
            on_connected: None,
        }
    }

    /// The PPP link settings of the client.
    pub fn link_config(&self) -> LinkConfig {
        let mut link = LinkConfig::client(&self.username, &self.password);
        link.lcp.accept_auth = if self.allow_weak_auth {
            vec![
                AuthProtocol::Eap,
                AuthProtocol::MsChapV2,
                AuthProtocol::MsChapV1,
                AuthProtocol::ChapMd5,
                AuthProtocol::Pap,
            ]
        } else {
            vec![AuthProtocol::Eap, AuthProtocol::MsChapV2]
        };
        // MPPE as the server wants it: inside TLS it adds no protection
        // that matters, so it is accepted but not demanded.
        link.ccp = Some(CcpConfig::optional());
        if !self.ipv6 {
            link.ipv6cp = None;
        }
        link
    }
}

/// Called when the link is up.
pub type UpCallback = Arc<dyn Fn(&UpStatus) + Send + Sync>;

/// Called when the transport to the server is up and PPP (with the
/// authentication) starts.
pub type ConnectedCallback = Arc<dyn Fn() + Send + Sync>;

/// The link is up: what was negotiated and what was set up.
#[derive(Debug, Clone)]
pub struct UpStatus {
    pub target: Target,
    pub link: Connected,
    /// The host side ("ras-sstp0, routes: default, DNS via resolv.conf").
    pub network: String,
}

impl fmt::Display for UpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connected to {}: {}; {}",
            self.target, self.link, self.network
        )
    }
}

/// Why a connection failed before its link came up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Trust(#[from] VerifyError),
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("cannot connect to {target}: {message}")]
    Tcp { target: String, message: String },
    /// The server certificate was refused (permanent).
    #[error("{0}")]
    Certificate(String),
    #[error("TLS handshake with {target} failed: {message}")]
    Tls { target: String, message: String },
    #[error("SSTP: {0}")]
    Http(#[from] HttpError),
    /// The server refused the credentials (permanent). `code` is the
    /// MS-CHAP error code (691: wrong user name or password).
    #[error("{reason}")]
    Auth { code: Option<u32>, reason: String },
    /// The link came up but the host side (TUN, routes, DNS) could not be
    /// set up (permanent: no CAP_NET_ADMIN, a name in use, no `ip`).
    #[error("setting up the network: {0}")]
    Network(String),
    #[error("connection ended before the link came up: {0}")]
    Failed(String),
}

impl ConnectError {
    /// A failure retrying cannot fix (the user must change something):
    /// `--reconnect` gives up on these.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ConnectError::Trust(_)
                | ConnectError::Certificate(_)
                | ConnectError::Auth { .. }
                | ConnectError::Network(_)
        )
    }
}

/// How a session that came up (or was stopped) ended.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    pub reason: String,
    pub stats: SessionStats,
    /// The link came up at some point.
    pub was_up: bool,
    /// It ended because `shutdown` was signalled.
    pub stopped: bool,
}

/// Connects, runs the session until it ends or `shutdown` turns true
/// (then PPP Terminate-Request and SSTP Call Disconnect are sent), and
/// detaches the host side. Errors are failures before the link came up.
pub async fn connect(
    options: &SstpOptions,
    network: Arc<dyn Network>,
    shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, ConnectError> {
    let tls_config = options.trust.client_config()?;
    let name = verify::server_name(&options.target.host)?;
    let (tcp, server) = tcp_connect(&options.target, options.connect_timeout).await?;
    let target = options.target.to_string();
    tracing::debug!("TCP connected to {server}");
    let connector = tokio_rustls::TlsConnector::from(tls_config);
    let tls =
        match tokio::time::timeout(options.connect_timeout, connector.connect(name, tcp)).await {
            Err(_) => {
                return Err(ConnectError::Tls {
                    target,
                    message: format!("no answer within {:?}", options.connect_timeout),
                })
            }
            Ok(Err(e)) => {
                return Err(match verify::certificate_refusal(&e) {
                    Some(why) => ConnectError::Certificate(why),
                    None => ConnectError::Tls {
                        target,
                        message: e.to_string(),
                    },
                })
            }
            Ok(Ok(tls)) => tls,
        };
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or_else(|| ConnectError::Certificate("the server sent no certificate".into()))?;
    tracing::debug!(
        "TLS up with {server}, certificate {}",
        verify::Fingerprint::of(&leaf)
    );
    if let Some(cb) = &options.on_connected {
        cb();
    }

    let config = ClientSessionConfig {
        host: options.target.host.clone(),
        server_certificate_der: leaf,
        link: options.link_config(),
        response_timeout: options.response_timeout,
    };
    // The SSTP session reads the TUN itself.
    let (hooks, sink) = DialerHooks::new(
        network,
        server,
        options.target.clone(),
        options.on_up.clone(),
        None,
        true,
    );
    static SESSION_IDS: AtomicU64 = AtomicU64::new(1);
    let info = SessionInfo {
        id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
        peer: server.to_string(),
        user: Some(options.username.clone()),
    };
    // The session runs as a task of its own, on a worker thread next to
    // the I/O driver that wakes it: awaited here, it would run on the
    // thread that called `block_on`, and every wake-up would cross threads
    // (a futex wake and a context switch per batch).
    let mut session = AbortOnDrop(tokio::spawn(sstp_client::connect(
        tls,
        config,
        hooks.clone(),
        sink,
        info,
        shutdown.clone(),
    )));
    let outcome = match (&mut session.0).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => {
            hooks.detach();
            return Err(ConnectError::Failed(format!("session task: {e}")));
        }
    };
    // The client role gets no `down` call from the session: detach here.
    let attach_error = hooks.detach();
    let outcome = outcome?;
    if let Some(e) = attach_error {
        return Err(ConnectError::Network(e));
    }
    let stopped = *shutdown.borrow();
    if outcome.was_up || stopped {
        Ok(SessionEnd {
            reason: if stopped {
                "disconnected".into()
            } else {
                outcome.reason.to_string()
            },
            stats: outcome.stats,
            was_up: outcome.was_up,
            stopped,
        })
    } else {
        Err(classify(outcome.reason.to_string()))
    }
}

/// Ends the task when the handle is dropped (the caller gave up on the
/// connection), as dropping the session's future would.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sorts a session's end reason (the text of `ppp::link::DownReason` or
/// of the SSTP close, as `tunnel::Outcome` carries it).
pub(crate) fn classify(reason: String) -> ConnectError {
    const AUTH: &str = "authentication failed (error ";
    if let Some(at) = reason.find(AUTH) {
        let digits: String = reason[at + AUTH.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return ConnectError::Auth {
            code: digits.parse().ok(),
            reason: reason[at..].to_owned(),
        };
    }
    if reason.contains("no authentication protocol in common") {
        return ConnectError::Auth {
            code: None,
            reason: format!(
                "{reason} (the server may want CHAP or PAP: --allow-weak-auth allows them)"
            ),
        };
    }
    ConnectError::Failed(reason)
}

async fn tcp_connect(
    target: &Target,
    limit: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let host = target.host.as_str();
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(limit, tokio::net::lookup_host((host, target.port))).await {
            Err(_) => {
                return Err(ConnectError::Resolve {
                    host: host.into(),
                    message: format!("no answer within {limit:?}"),
                })
            }
            Ok(Err(e)) => {
                return Err(ConnectError::Resolve {
                    host: host.into(),
                    message: e.to_string(),
                })
            }
            Ok(Ok(addrs)) => addrs.collect(),
        };
    let mut last = format!("{host} has no address");
    for addr in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                // SSTP carries interactive traffic: do not delay small
                // TLS records.
                let _ = tcp.set_nodelay(true);
                return Ok((tcp, addr));
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer within {limit:?}"),
        }
    }
    Err(ConnectError::Tcp {
        target: target.to_string(),
        message: last,
    })
}

/// The session's packet sink: empty until the link is up, then the
/// attachment's. Set once, read without a lock on the data path.
#[derive(Default)]
pub(crate) struct SinkSlot(OnceLock<Arc<dyn PacketSink>>);

impl PacketSink for SinkSlot {
    fn send(&self, packet: &[u8]) {
        if let Some(sink) = self.0.get() {
            sink.send(packet);
        }
    }

    fn flush(&self) {
        if let Some(sink) = self.0.get() {
            sink.flush();
        }
    }
}

#[derive(Default)]
struct HookState {
    /// Undoes the host side when dropped.
    guard: Option<Box<dyn Send>>,
    /// The session ended: an attachment finishing late is undone at once.
    closed: bool,
    attached: bool,
    /// Why the host side could not be attached.
    attach_error: Option<String>,
    /// The device, for the session to read (`direct` hooks).
    source: Option<Box<dyn PacketSource>>,
}

/// The client's side of the session hooks (shared with the PPTP client).
pub(crate) struct DialerHooks {
    network: Arc<dyn Network>,
    server: SocketAddr,
    target: Target,
    on_up: Option<UpCallback>,
    /// Told by the PPTP driver when the call is established.
    on_connected: Option<ConnectedCallback>,
    /// Attach with [`Network::attach_direct`] and hand the source to the
    /// session (whose driver reads it: SSTP, L2TP, PPTP).
    direct: bool,
    sink: Arc<SinkSlot>,
    state: Arc<Mutex<HookState>>,
}

impl DialerHooks {
    /// `direct`: the driver reads the device itself
    /// ([`Network::attach_direct`]: SSTP, L2TP, PPTP).
    pub(crate) fn new(
        network: Arc<dyn Network>,
        server: SocketAddr,
        target: Target,
        on_up: Option<UpCallback>,
        on_connected: Option<ConnectedCallback>,
        direct: bool,
    ) -> (Arc<DialerHooks>, Arc<SinkSlot>) {
        let sink = Arc::new(SinkSlot::default());
        let hooks = Arc::new(DialerHooks {
            network,
            server,
            target,
            on_up,
            on_connected,
            direct,
            sink: sink.clone(),
            state: Arc::new(Mutex::new(HookState::default())),
        });
        (hooks, sink)
    }

    /// Undoes the host side; returns why attaching failed, if it did.
    pub(crate) fn detach(&self) -> Option<String> {
        let (guard, error) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.closed = true;
            st.source = None;
            (st.guard.take(), st.attach_error.take())
        };
        // Dropped outside the lock: it runs commands.
        drop(guard);
        error
    }
}

impl tunnel::ClientHooks for DialerHooks {
    fn transport_up(&self, _: &SessionInfo) {
        if let Some(cb) = &self.on_connected {
            cb();
        }
    }

    fn up(
        &self,
        _: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        let link = Connected::from_link(self.server, up);
        let network = self.network.clone();
        let state = self.state.clone();
        let sink = self.sink.clone();
        let on_up = self.on_up.clone();
        let target = self.target.clone();
        let direct = self.direct;
        Box::pin(async move {
            {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if st.attached {
                    // The sink cannot be swapped on the data path; a link
                    // that renegotiates ends, and --reconnect starts over.
                    return Err("link renegotiated; reconnect".to_string());
                }
                st.attached = true;
            }
            // TUN creation and `ip` commands block: not on a worker thread.
            let attach_link = link.clone();
            let attached = match tokio::task::spawn_blocking(move || {
                if direct {
                    network.attach_direct(&attach_link)
                } else {
                    network.attach(&attach_link).map(|a| (a, None))
                }
            })
            .await
            {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let (attachment, source) = match attached {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("setting up the network failed: {e}");
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    st.attach_error = Some(e.clone());
                    return Err(format!("setting up the network: {e}"));
                }
            };
            let _ = sink.0.set(attachment.inbound);
            {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if st.closed {
                    let guard = attachment.guard;
                    drop(st);
                    drop(guard);
                    return Err("session ended".to_string());
                }
                st.guard = Some(attachment.guard);
                st.source = source;
            }
            let status = UpStatus {
                target,
                link,
                network: attachment.description,
            };
            // Debug only: presenting it is the caller's business (`on_up`).
            tracing::debug!("{status}");
            if let Some(cb) = on_up {
                cb(&status);
            }
            Ok(attachment.outbound)
        })
    }

    fn packet_source(&self, _: &SessionInfo) -> Option<Box<dyn PacketSource>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.source.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_are_classified() {
        let e = classify("authentication failed (error 691): E=691 R=0".into());
        assert!(
            matches!(
                e,
                ConnectError::Auth {
                    code: Some(691),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_permanent());
        assert!(e
            .to_string()
            .starts_with("authentication failed (error 691)"));
        let e = classify("authentication failed (error 649): no dial-in".into());
        assert!(matches!(
            e,
            ConnectError::Auth {
                code: Some(649),
                ..
            }
        ));
        let e = classify("no authentication protocol in common".into());
        assert!(e.is_permanent() && e.to_string().contains("--allow-weak-auth"));
        let e = classify("SSTP hello timeout".into());
        assert!(matches!(e, ConnectError::Failed(_)) && !e.is_permanent());
    }

    #[test]
    fn weak_methods_only_on_request() {
        let target = Target::parse("sstp://vpn.example.com").unwrap();
        let trust = Trust::Pin(verify::Fingerprint([0; 32]));
        let mut o = SstpOptions::new(target, "alice", Zeroizing::new("pw".into()), trust);
        assert_eq!(
            o.link_config().lcp.accept_auth,
            vec![AuthProtocol::Eap, AuthProtocol::MsChapV2]
        );
        assert!(o.link_config().ipv6cp.is_some());
        o.allow_weak_auth = true;
        o.ipv6 = false;
        let link = o.link_config();
        assert!(link.lcp.accept_auth.contains(&AuthProtocol::Pap));
        assert!(link.lcp.accept_auth.contains(&AuthProtocol::MsChapV1));
        assert!(link.ipv6cp.is_none());
        assert!(!format!("{o:?}").contains("pw\""), "no password in Debug");
    }
}
