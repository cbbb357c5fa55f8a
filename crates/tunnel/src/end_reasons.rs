//! The tunnel protocols' own close reasons as session end reasons
//! ([`EndReason`], mapped to RFC 2866 Acct-Terminate-Cause by the server).

use session::{EndReason, LostCarrier};

/// Why an SSTP connection closed, as a session end.
pub(crate) fn from_sstp(reason: &sstp::CloseReason) -> EndReason {
    use sstp::{AbortCause, CloseReason};
    match reason {
        // We only disconnect for a reason the session recorded first.
        CloseReason::LocalDisconnect => EndReason::LocalRequest,
        CloseReason::PeerDisconnect => EndReason::PeerRequest("SSTP Call Disconnect".into()),
        CloseReason::HelloTimeout => EndReason::LostCarrier(LostCarrier::KeepaliveTimeout),
        CloseReason::Aborted(AbortCause::BindingFailed(_)) => {
            EndReason::AuthFailed(format!("SSTP: {reason}"))
        }
        CloseReason::Aborted(AbortCause::ConnectNak(_)) => {
            EndReason::ServiceUnavailable(format!("SSTP: {reason}"))
        }
        CloseReason::PeerAbort(_) | CloseReason::Aborted(_) | CloseReason::Framing(_) => {
            EndReason::ProtocolError(format!("SSTP: {reason}"))
        }
    }
}

/// Why a PPTP control connection closed, as a session end.
pub(crate) fn from_pptp_control(reason: &pptp::CloseReason) -> EndReason {
    use pptp::CloseReason;
    match reason {
        CloseReason::LocalStop(_) => EndReason::LocalRequest,
        CloseReason::PeerStop(_) => {
            EndReason::PeerRequest(format!("PPTP control connection: {reason}"))
        }
        CloseReason::StartTimeout | CloseReason::EchoTimeout => {
            EndReason::LostCarrier(LostCarrier::KeepaliveTimeout)
        }
        CloseReason::TransmitOverflow => EndReason::LostCarrier(LostCarrier::PeerNotReading),
        CloseReason::TransportClosed => EndReason::LostCarrier(LostCarrier::TransportClosed),
        CloseReason::Refused { .. } => {
            EndReason::ServiceUnavailable(format!("PPTP control connection: {reason}"))
        }
        CloseReason::ProtocolError(_)
        | CloseReason::Unexpected(_)
        | CloseReason::UnsupportedVersion(_)
        | CloseReason::InputOverflow => {
            EndReason::ProtocolError(format!("PPTP control connection: {reason}"))
        }
    }
}

/// Why a PPTP call was cleared, as a session end.
pub(crate) fn from_pptp_call(reason: &pptp::CallClearReason) -> EndReason {
    use pptp::CallClearReason;
    match reason {
        CallClearReason::PeerRequest | CallClearReason::PeerDisconnect { .. } => {
            EndReason::PeerRequest(format!("PPTP: {reason}"))
        }
        CallClearReason::LocalRequest => EndReason::LocalRequest,
        CallClearReason::ControlClosed => EndReason::LostCarrier(LostCarrier::TransportClosed),
    }
}

/// Why an L2TP tunnel closed, as the end of its sessions.
pub(crate) fn from_l2tp_tunnel(reason: &l2tp::TunnelCloseReason) -> EndReason {
    use l2tp::TunnelCloseReason;
    match reason {
        TunnelCloseReason::LocalClose => EndReason::LocalRequest,
        TunnelCloseReason::PeerStop(_) => EndReason::PeerRequest(format!("L2TP: {reason}")),
        // RFC 2661 §5.8: a HELLO or other control message went
        // unacknowledged through every retransmission: the peer is gone
        // (a killed client, a lost network).
        TunnelCloseReason::PeerUnreachable => EndReason::LostCarrier(LostCarrier::KeepaliveTimeout),
        TunnelCloseReason::AuthenticationFailed
        | TunnelCloseReason::UnsupportedVersion(..)
        | TunnelCloseReason::ProtocolError(_) => {
            EndReason::ProtocolError(format!("L2TP: {reason}"))
        }
    }
}

/// Why an L2TP call ended, as a session end.
pub(crate) fn from_l2tp_session(reason: &l2tp::SessionCloseReason) -> EndReason {
    use l2tp::SessionCloseReason;
    match reason {
        SessionCloseReason::LocalClose => EndReason::LocalRequest,
        SessionCloseReason::PeerDisconnect(_) => EndReason::PeerRequest(format!("L2TP: {reason}")),
        SessionCloseReason::TunnelClosed => EndReason::LostCarrier(LostCarrier::TransportClosed),
        SessionCloseReason::ProtocolError(_) => EndReason::ProtocolError(format!("L2TP: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session::TerminateCause;

    /// Each way a tunnel can end is accounted as what it is (RFC 2866
    /// §5.10): a lost connection or keepalive is Lost-Carrier, not
    /// User-Request.
    #[test]
    fn tunnel_ends_map_to_their_terminate_causes() {
        let table = [
            (
                from_sstp(&sstp::CloseReason::PeerDisconnect),
                TerminateCause::UserRequest,
            ),
            (
                from_sstp(&sstp::CloseReason::HelloTimeout),
                TerminateCause::LostCarrier,
            ),
            (
                from_pptp_control(&pptp::CloseReason::EchoTimeout),
                TerminateCause::LostCarrier,
            ),
            (
                from_pptp_control(&pptp::CloseReason::TransportClosed),
                TerminateCause::LostCarrier,
            ),
            (
                from_pptp_call(&pptp::CallClearReason::PeerRequest),
                TerminateCause::UserRequest,
            ),
            (
                from_l2tp_tunnel(&l2tp::TunnelCloseReason::PeerUnreachable),
                TerminateCause::LostCarrier,
            ),
            (
                from_l2tp_session(&l2tp::SessionCloseReason::PeerDisconnect(
                    l2tp::avp::ResultCode {
                        result: 3,
                        error: None,
                        message: Vec::new(),
                    },
                )),
                TerminateCause::UserRequest,
            ),
        ];
        for (reason, cause) in table {
            assert_eq!(reason.terminate_cause(), cause, "{reason}");
        }
    }
}
