//! One dial-up connection: open the serial line, dial the access number
//! through the modem (AT, ATDT, CONNECT) when there is one, then PPP with
//! RFC 1662 framing (`tunnel::ppp_over_serial`), with the host side (TUN,
//! routes, DNS) attached through a [`Network`] when the link comes up and
//! detached when it ends.
//!
//! The line itself is not encrypted: MPPE is negotiated when the server
//! offers or requires it.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::link::LinkConfig;
use tokio::sync::watch;
use tunnel::ppp_over_serial::{self, DialError, SerialSessionConfig};
use tunnel::serial::SerialPort;
use tunnel::SessionInfo;
use zeroize::Zeroizing;

use crate::network::Network;
use crate::sstp::{classify, ConnectError, ConnectedCallback, DialerHooks, SessionEnd, UpCallback};
use crate::target::Target;

/// Everything one dial-up connection needs.
#[derive(Clone)]
pub struct SerialOptions {
    /// `serial:///dev/…[?number=…]`.
    pub target: Target,
    pub username: String,
    pub password: Zeroizing<String>,
    /// Also offer CHAP-MD5 and PAP (no MPPE keys; PAP sends the password
    /// in the clear over the line).
    pub allow_weak_auth: bool,
    /// Negotiate IPv6CP.
    pub ipv6: bool,
    /// How long the modem may take to answer CONNECT.
    pub connect_timeout: Duration,
    /// Told once the link is up and the host side attached.
    pub on_up: Option<UpCallback>,
    /// Told once the server is reached and PPP starts, before the user
    /// name and password are checked.
    pub on_connected: Option<ConnectedCallback>,
}

impl fmt::Debug for SerialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("SerialOptions")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("allow_weak_auth", &self.allow_weak_auth)
            .field("ipv6", &self.ipv6)
            .finish_non_exhaustive()
    }
}

impl SerialOptions {
    /// Defaults: MS-CHAPv2/EAP only, IPv6CP on, 60 s to CONNECT (a real
    /// modem needs tens of seconds to train).
    pub fn new(target: Target, username: &str, password: Zeroizing<String>) -> Self {
        SerialOptions {
            target,
            username: username.to_owned(),
            password,
            allow_weak_auth: false,
            ipv6: true,
            connect_timeout: Duration::from_secs(60),
            on_up: None,
            on_connected: None,
        }
    }

    /// The PPP link settings of the dialer.
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
        // The line is clear: MPPE whenever the server agrees to it.
        link.ccp = Some(CcpConfig::optional());
        if !self.ipv6 {
            link.ipv6cp = None;
        }
        link
    }
}

/// Dials, runs the session until it ends or `shutdown` turns true (then
/// LCP Terminate-Request), and detaches the host side. Errors are
/// failures before the link came up.
pub async fn connect(
    options: &SerialOptions,
    network: Arc<dyn Network>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, ConnectError> {
    let device = Path::new(&options.target.host);
    let mut line = SerialPort::open(device).map_err(|e| ConnectError::Tcp {
        target: options.target.to_string(),
        message: e.to_string(),
    })?;
    let initial = match &options.target.number {
        Some(number) => {
            tracing::debug!("dialing {number} on {}", device.display());
            ppp_over_serial::dial(&mut line, number, options.connect_timeout, &mut shutdown)
                .await
                .map_err(|e| dial_error(&options.target, e))?
        }
        None => Vec::new(),
    };
    // No transport address: the unspecified IPv6 one keeps the network
    // side from adding a host route "to the server" for a default route.
    let server = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    let (hooks, sink) = DialerHooks::new(
        network,
        server,
        options.target.clone(),
        options.on_up.clone(),
        None,
        false,
    );
    // The modem answered (or the line is direct): PPP starts.
    if let Some(cb) = &options.on_connected {
        cb();
    }
    static SESSION_IDS: AtomicU64 = AtomicU64::new(1);
    let info = SessionInfo {
        id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
        peer: options.target.to_string(),
        user: Some(options.username.clone()),
    };
    let config = SerialSessionConfig {
        link: options.link_config(),
    };
    let outcome = ppp_over_serial::run(
        line,
        &initial,
        config,
        tunnel::Owner::Client(hooks.clone()),
        sink,
        info,
        shutdown.clone(),
    )
    .await;
    // The client role gets no `down` call from the session: detach here.
    let attach_error = hooks.detach();
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

fn dial_error(target: &Target, e: DialError) -> ConnectError {
    match e {
        DialError::Refused(text) => ConnectError::Failed(format!(
            "dialing {}: the modem answered {text}",
            target.number.as_deref().unwrap_or("")
        )),
        e => ConnectError::Failed(format!("dialing on {}: {e}", target.host)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_methods_only_on_request_and_mppe_optional() {
        let target = Target::parse("serial:///dev/ttyS0?number=1").unwrap();
        let mut o = SerialOptions::new(target, "alice", Zeroizing::new("pw".into()));
        let link = o.link_config();
        assert_eq!(
            link.lcp.accept_auth,
            vec![AuthProtocol::Eap, AuthProtocol::MsChapV2]
        );
        assert_eq!(link.ccp, Some(CcpConfig::optional()));
        o.allow_weak_auth = true;
        o.ipv6 = false;
        let link = o.link_config();
        assert!(link.lcp.accept_auth.contains(&AuthProtocol::Pap));
        assert!(link.ipv6cp.is_none());
        assert!(!format!("{o:?}").contains("pw\""), "no password in Debug");
    }

    #[test]
    fn a_refused_call_names_the_modem_answer() {
        let target = Target::parse("serial:///dev/ttyS0?number=5551234").unwrap();
        let e = dial_error(&target, DialError::Refused("NO CARRIER".into()));
        assert!(e.to_string().contains("5551234") && e.to_string().contains("NO CARRIER"));
        assert!(!e.is_permanent());
    }
}
