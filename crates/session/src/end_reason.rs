//! Why a session ended, as a type: one value per cause a driver, the PPP
//! link or the server can see, each mapped to an RFC 2866 §5.10
//! Acct-Terminate-Cause so that accounting reports what really happened
//! (a lost TCP connection is Lost-Carrier, not User-Request).

use std::fmt;

use ppp::link::DownReason;

/// RFC 2866 §5.10 Acct-Terminate-Cause values that sessions end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminateCause {
    /// 1: the user asked (LCP Terminate-Request, SSTP Call Disconnect,
    /// PPTP Call-Clear-Request).
    UserRequest,
    /// 2: the carrier went away (transport closed, no echo or hello answer).
    LostCarrier,
    /// 4: no traffic for the idle timeout.
    IdleTimeout,
    /// 5: the session timeout ran out.
    SessionTimeout,
    /// 6: an administrator (or an RFC 5176 Disconnect-Request) ended it.
    AdminReset,
    /// 7: the server is stopping.
    AdminReboot,
    /// 8: the port (the tunnel) failed: the peer broke its protocol.
    PortError,
    /// 9: the server failed.
    NasError,
    /// 13: another session took the port.
    PortPreempted,
    /// 15: the service the session needs is not available (no address,
    /// refused by the server's network set-up).
    ServiceUnavailable,
    /// 17: the user's input ended it (failed authentication, no common
    /// protocol or encryption).
    UserError,
}

impl TerminateCause {
    /// The RFC 2866 §5.10 value.
    pub fn value(self) -> u32 {
        match self {
            TerminateCause::UserRequest => 1,
            TerminateCause::LostCarrier => 2,
            TerminateCause::IdleTimeout => 4,
            TerminateCause::SessionTimeout => 5,
            TerminateCause::AdminReset => 6,
            TerminateCause::AdminReboot => 7,
            TerminateCause::PortError => 8,
            TerminateCause::NasError => 9,
            TerminateCause::PortPreempted => 13,
            TerminateCause::ServiceUnavailable => 15,
            TerminateCause::UserError => 17,
        }
    }

    /// The RFC's name (as FreeRADIUS's dictionary spells it).
    pub fn name(self) -> &'static str {
        match self {
            TerminateCause::UserRequest => "User-Request",
            TerminateCause::LostCarrier => "Lost-Carrier",
            TerminateCause::IdleTimeout => "Idle-Timeout",
            TerminateCause::SessionTimeout => "Session-Timeout",
            TerminateCause::AdminReset => "Admin-Reset",
            TerminateCause::AdminReboot => "Admin-Reboot",
            TerminateCause::PortError => "Port-Error",
            TerminateCause::NasError => "NAS-Error",
            TerminateCause::PortPreempted => "Port-Preempted",
            TerminateCause::ServiceUnavailable => "Service-Unavailable",
            TerminateCause::UserError => "User-Error",
        }
    }
}

impl fmt::Display for TerminateCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the carrier (the transport under PPP) was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostCarrier {
    /// The peer's TCP connection (or serial line) closed without a goodbye.
    TransportClosed,
    /// Reading from or writing to the transport failed.
    TransportFailed(String),
    /// The peer stopped answering LCP Echo-Requests.
    EchoTimeout,
    /// SSTP: no packet within two Hello intervals; PPTP: no Echo-Reply.
    KeepaliveTimeout,
    /// The peer stopped reading what we send.
    PeerNotReading,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The peer ended it: LCP Terminate-Request, SSTP Call Disconnect,
    /// PPTP Call-Clear-Request or Stop-Control-Connection (its words, if any).
    PeerRequest(String),
    /// Our side's user ended it (client role: interrupted, `--disconnect`).
    LocalRequest,
    /// The carrier went away.
    LostCarrier(LostCarrier),
    /// No traffic for the idle timeout (RFC 2865 §5.28).
    IdleTimeout,
    /// The session timeout ran out (RFC 2865 §5.27).
    SessionTimeout,
    /// An administrator or an RFC 5176 Disconnect-Request ended it (who).
    AdminReset(String),
    /// The server is stopping.
    ServerStopping,
    /// The peer broke the tunnel's or PPP's protocol (what it did).
    ProtocolError(String),
    /// Our side failed (what failed).
    Internal(String),
    /// The session could not be given what it needs (an address, a route,
    /// the network settings the server's hooks refused): why.
    ServiceUnavailable(String),
    /// Another session took this session's place.
    Preempted(String),
    /// Authentication failed or was refused, in words ("authentication
    /// failed (error 691): …"; never the peer's credentials).
    AuthFailed(String),
    /// PPP could not agree with the peer (authentication protocol,
    /// encryption, network protocols), in words.
    NegotiationFailed(String),
}

impl EndReason {
    /// The Acct-Terminate-Cause reported for this end (RFC 2866 §5.10).
    pub fn terminate_cause(&self) -> TerminateCause {
        match self {
            EndReason::PeerRequest(_) | EndReason::LocalRequest => TerminateCause::UserRequest,
            EndReason::LostCarrier(_) => TerminateCause::LostCarrier,
            EndReason::IdleTimeout => TerminateCause::IdleTimeout,
            EndReason::SessionTimeout => TerminateCause::SessionTimeout,
            EndReason::AdminReset(_) => TerminateCause::AdminReset,
            EndReason::ServerStopping => TerminateCause::AdminReboot,
            EndReason::ProtocolError(_) => TerminateCause::PortError,
            EndReason::Internal(_) => TerminateCause::NasError,
            EndReason::ServiceUnavailable(_) => TerminateCause::ServiceUnavailable,
            EndReason::Preempted(_) => TerminateCause::PortPreempted,
            EndReason::AuthFailed(_) | EndReason::NegotiationFailed(_) => TerminateCause::UserError,
        }
    }

    /// The end a PPP link reports when it goes down, for a link whose
    /// transport is still there. `None` for a local close: the session
    /// already knows why it closed the link.
    pub fn from_link_down(down: &DownReason) -> Option<EndReason> {
        // The link's own words (they carry the MS-CHAP error code of an
        // authentication failure, which clients read).
        let words = down.to_string();
        Some(match down {
            DownReason::Closed(_) => return None,
            DownReason::PeerTerminated(text) => EndReason::PeerRequest(text.clone()),
            DownReason::AuthFailed(_) | DownReason::AuthTimeout => EndReason::AuthFailed(words),
            DownReason::NoResponse
            | DownReason::NegotiationFailed(_)
            | DownReason::AuthRefused
            | DownReason::EncryptionRequired
            | DownReason::NoNetworkProtocol => EndReason::NegotiationFailed(words),
            DownReason::PeerDead => EndReason::LostCarrier(LostCarrier::EchoTimeout),
            DownReason::LoopedBack => EndReason::ProtocolError(words),
            DownReason::LowerLayerDown => EndReason::LostCarrier(LostCarrier::TransportClosed),
            DownReason::CallbackRequested(_) => EndReason::PeerRequest("callback requested".into()),
        })
    }
}

impl fmt::Display for LostCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostCarrier::TransportClosed => f.write_str("the connection closed"),
            LostCarrier::TransportFailed(e) => write!(f, "the connection failed: {e}"),
            LostCarrier::EchoTimeout => f.write_str("the peer stopped answering LCP echoes"),
            LostCarrier::KeepaliveTimeout => f.write_str("the peer stopped answering keepalives"),
            LostCarrier::PeerNotReading => f.write_str("the peer stopped reading"),
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::PeerRequest(text) if text.is_empty() => f.write_str("the peer hung up"),
            EndReason::PeerRequest(text) => write!(f, "the peer hung up ({})", text.escape_debug()),
            EndReason::LocalRequest => f.write_str("disconnected by the user"),
            EndReason::LostCarrier(how) => write!(f, "lost the peer: {how}"),
            EndReason::IdleTimeout => f.write_str("idle timeout"),
            EndReason::SessionTimeout => f.write_str("session timeout"),
            EndReason::AdminReset(who) => write!(f, "ended by {who}"),
            EndReason::ServerStopping => f.write_str("the server is stopping"),
            EndReason::ProtocolError(what) => write!(f, "protocol error: {what}"),
            EndReason::Internal(what) => write!(f, "server error: {what}"),
            EndReason::ServiceUnavailable(why) => write!(f, "refused: {why}"),
            EndReason::Preempted(why) => write!(f, "preempted: {why}"),
            // Already in words ("authentication failed (error 691): …").
            EndReason::AuthFailed(words) | EndReason::NegotiationFailed(words) => {
                f.write_str(words)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2866 §5.10's table, for every cause a session can end with.
    #[test]
    fn causes_have_the_rfc_values() {
        let table = [
            (EndReason::PeerRequest(String::new()), 1, "User-Request"),
            (EndReason::LocalRequest, 1, "User-Request"),
            (
                EndReason::LostCarrier(LostCarrier::TransportClosed),
                2,
                "Lost-Carrier",
            ),
            (
                EndReason::LostCarrier(LostCarrier::EchoTimeout),
                2,
                "Lost-Carrier",
            ),
            (EndReason::IdleTimeout, 4, "Idle-Timeout"),
            (EndReason::SessionTimeout, 5, "Session-Timeout"),
            (
                EndReason::AdminReset("RADIUS Disconnect-Request".into()),
                6,
                "Admin-Reset",
            ),
            (EndReason::ServerStopping, 7, "Admin-Reboot"),
            (EndReason::ProtocolError("x".into()), 8, "Port-Error"),
            (EndReason::Internal("x".into()), 9, "NAS-Error"),
            (EndReason::Preempted("x".into()), 13, "Port-Preempted"),
            (
                EndReason::ServiceUnavailable("x".into()),
                15,
                "Service-Unavailable",
            ),
            (EndReason::AuthFailed("x".into()), 17, "User-Error"),
        ];
        for (reason, value, name) in table {
            assert_eq!(reason.terminate_cause().value(), value, "{reason}");
            assert_eq!(reason.terminate_cause().to_string(), name, "{reason}");
        }
    }

    #[test]
    fn link_downs_map_to_the_cause_that_happened() {
        let peer_dead = EndReason::from_link_down(&DownReason::PeerDead).unwrap();
        assert_eq!(peer_dead.terminate_cause(), TerminateCause::LostCarrier);
        let lower = EndReason::from_link_down(&DownReason::LowerLayerDown).unwrap();
        assert_eq!(lower.terminate_cause(), TerminateCause::LostCarrier);
        let bye = EndReason::from_link_down(&DownReason::PeerTerminated("bye".into())).unwrap();
        assert_eq!(bye.terminate_cause(), TerminateCause::UserRequest);
        assert_eq!(
            EndReason::from_link_down(&DownReason::Closed("x".into())),
            None
        );
        let refused = EndReason::from_link_down(&DownReason::AuthRefused).unwrap();
        assert_eq!(refused.terminate_cause(), TerminateCause::UserError);
    }

    /// One line per event: a peer's terminate text cannot break the line.
    #[test]
    fn peer_text_stays_on_one_line() {
        let r = EndReason::PeerRequest("bye\nforged line".into());
        assert!(!r.to_string().contains('\n'), "{r}");
    }
}
