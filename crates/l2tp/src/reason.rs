//! Result and error codes of StopCCN and CDN (RFC 2661 §4.4.2), and why
//! tunnels and sessions close, with the texts a user reads.

use std::fmt;

use crate::avp::ResultCode;

/// StopCCN result codes (§4.4.2).
pub mod stop_result {
    /// General request to clear control connection.
    pub const CLEAR: u16 = 1;
    /// General error, Error Code says which.
    pub const GENERAL_ERROR: u16 = 2;
    /// Requester is not authorized to establish a control channel.
    pub const NOT_AUTHORIZED: u16 = 4;
    /// The protocol version of the requester is not supported.
    pub const VERSION: u16 = 5;
    /// Requester is being shut down.
    pub const SHUTDOWN: u16 = 6;
    /// Finite State Machine error.
    pub const FSM_ERROR: u16 = 7;
}

/// CDN result codes (§4.4.2).
pub mod cdn_result {
    /// Call disconnected due to loss of carrier.
    pub const LOST_CARRIER: u16 = 1;
    /// General error, Error Code says which.
    pub const GENERAL_ERROR: u16 = 2;
    /// Disconnected for administrative reasons.
    pub const ADMIN: u16 = 3;
    /// Temporary lack of facilities.
    pub const TEMPORARY_LACK: u16 = 4;
    /// Permanent lack of facilities.
    pub const PERMANENT_LACK: u16 = 5;
}

/// General error codes (§4.4.2).
pub mod error_code {
    /// No general error.
    pub const NONE: u16 = 0;
    /// No control connection exists yet for this LAC-LNS pair.
    pub const NO_CONTROL: u16 = 1;
    /// Length is wrong.
    pub const LENGTH: u16 = 2;
    /// A field value is out of range or a reserved field is non-zero.
    pub const RANGE: u16 = 3;
    /// Insufficient resources to handle this operation now.
    pub const RESOURCES: u16 = 4;
    /// The Session ID is invalid in this context.
    pub const INVALID_SESSION: u16 = 5;
    /// Unknown mandatory AVP received.
    pub const UNKNOWN_MANDATORY: u16 = 8;
}

fn result_text(code: &ResultCode, stop: bool) -> String {
    let what = match (stop, code.result) {
        (true, 1) => "request to clear the control connection",
        (true, 2) => "general error",
        (true, 3) => "control channel already exists",
        (true, 4) => "requester is not authorized",
        (true, 5) => "protocol version not supported",
        (true, 6) => "requester is being shut down",
        (true, 7) => "state machine error",
        (false, 1) => "lost carrier",
        (false, 2) => "general error",
        (false, 3) => "administrative disconnect",
        (false, 4) => "temporary lack of facilities",
        (false, 5) => "permanent lack of facilities",
        (false, 6) => "invalid destination",
        (false, 7) => "no carrier",
        (false, 8) => "busy",
        (false, 9) => "no dial tone",
        (false, 10) => "not established in time",
        (false, 11) => "no appropriate framing",
        _ => "",
    };
    let mut s = if what.is_empty() {
        format!("result code {}", code.result)
    } else {
        what.to_string()
    };
    if let Some(e) = code.error.filter(|e| *e != 0) {
        let error = match e {
            1 => "no control connection yet",
            2 => "length is wrong",
            3 => "field value out of range",
            4 => "insufficient resources",
            5 => "invalid session ID",
            6 => "vendor-specific error",
            7 => "try another LNS",
            8 => "unknown mandatory AVP",
            _ => "",
        };
        if error.is_empty() {
            s.push_str(&format!(", error code {e}"));
        } else {
            s.push_str(", ");
            s.push_str(error);
        }
    }
    if !code.message.is_empty() {
        s.push_str(": ");
        s.push_str(&String::from_utf8_lossy(&code.message));
    }
    s
}

/// Why a tunnel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelCloseReason {
    /// We closed it (StopCCN sent by [`Tunnel::close`]).
    LocalClose,
    /// The peer sent StopCCN.
    PeerStop(ResultCode),
    /// The peer did not acknowledge a control message (§5.8).
    PeerUnreachable,
    /// Tunnel authentication failed: wrong or missing Challenge Response
    /// (§5.1.1), or the peer challenged us and we have no secret.
    AuthenticationFailed,
    /// The peer speaks another protocol version (§4.4.3).
    UnsupportedVersion(u8, u8),
    /// A control message could not be read or made no sense; we sent
    /// StopCCN with a general error.
    ProtocolError(String),
}

impl fmt::Display for TunnelCloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelCloseReason::LocalClose => f.write_str("we closed the tunnel"),
            TunnelCloseReason::PeerStop(code) => {
                write!(
                    f,
                    "the peer closed the tunnel ({})",
                    result_text(code, true)
                )
            }
            TunnelCloseReason::PeerUnreachable => {
                f.write_str("the peer stopped acknowledging control messages")
            }
            TunnelCloseReason::AuthenticationFailed => f.write_str(
                "tunnel authentication failed (is the L2TP secret the same on both ends?)",
            ),
            TunnelCloseReason::UnsupportedVersion(v, r) => {
                write!(f, "the peer speaks L2TP protocol version {v}.{r}")
            }
            TunnelCloseReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// Why a session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCloseReason {
    /// We closed it (CDN sent by [`Tunnel::close_session`]).
    LocalClose,
    /// The peer sent CDN.
    PeerDisconnect(ResultCode),
    /// The tunnel closed, taking every session with it.
    TunnelClosed,
    /// A session message could not be read (unknown mandatory AVP, §4.2);
    /// we sent CDN.
    ProtocolError(String),
}

impl fmt::Display for SessionCloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionCloseReason::LocalClose => f.write_str("we disconnected the call"),
            SessionCloseReason::PeerDisconnect(code) => {
                write!(
                    f,
                    "the peer disconnected the call ({})",
                    result_text(code, false)
                )
            }
            SessionCloseReason::TunnelClosed => f.write_str("the tunnel closed"),
            SessionCloseReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: u16, error: Option<u16>, message: &[u8]) -> ResultCode {
        ResultCode {
            result,
            error,
            message: message.to_vec(),
        }
    }

    #[test]
    fn reasons_read_as_one_line_of_text() {
        assert_eq!(
            TunnelCloseReason::PeerStop(code(2, Some(8), b"AVP 99")).to_string(),
            "the peer closed the tunnel (general error, unknown mandatory AVP: AVP 99)"
        );
        assert_eq!(
            SessionCloseReason::PeerDisconnect(code(2, Some(4), b"")).to_string(),
            "the peer disconnected the call (general error, insufficient resources)"
        );
        // Unknown codes are numbers, never a struct dump.
        assert_eq!(
            SessionCloseReason::PeerDisconnect(code(77, Some(99), b"")).to_string(),
            "the peer disconnected the call (result code 77, error code 99)"
        );
        assert_eq!(
            TunnelCloseReason::PeerUnreachable.to_string(),
            "the peer stopped acknowledging control messages"
        );
    }
}
