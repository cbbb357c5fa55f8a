//! Machinery shared by the client and server state machines: deframing,
//! transmit buffer, events, the Hello (keep-alive) timer, the negotiation
//! timer, and the abort / disconnect procedures of MS-SSTP §3.1.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::attributes::{Attribute, StatusCode, StatusInfo, ATTRIB_NO_ERROR};
use crate::binding::BindingError;
use crate::codec::{
    decode_packet, encode_data, CodecError, ControlMessage, Deframer, MessageType, Packet,
    HEADER_LEN,
};

/// Protocol timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Negotiation timer, MS-SSTP §3.2.2.1: "SHOULD be set to 60 seconds"
    /// (the server side uses the same value). Runs while waiting for the Call Connect Request/Ack and
    /// while waiting for the Call Connected exchange to finish.
    pub negotiation: Duration,
    /// Hello timer, MS-SSTP §3.1.2.3: "SHOULD be set to 60 seconds".
    pub hello: Duration,
    /// TIMER_VAL_ABORT_STATE_TIMER_1, MS-SSTP §3.1.2.1: 3 seconds.
    pub abort_1: Duration,
    /// TIMER_VAL_ABORT_STATE_TIMER_2, MS-SSTP §3.1.2.1: 1 second.
    pub abort_2: Duration,
    /// TIMER_VAL_DISCONNECT_STATE_TIMER_1, MS-SSTP §3.1.2.2: 5 seconds.
    pub disconnect_1: Duration,
    /// TIMER_VAL_DISCONNECT_STATE_TIMER_2, MS-SSTP §3.1.2.2: 1 second.
    pub disconnect_2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            negotiation: Duration::from_secs(60),
            hello: Duration::from_secs(60),
            abort_1: Duration::from_secs(3),
            abort_2: Duration::from_secs(1),
            disconnect_1: Duration::from_secs(5),
            disconnect_2: Duration::from_secs(1),
        }
    }
}

/// Why we aborted the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortCause {
    /// The negotiation timer expired.
    NegotiationTimeout,
    /// The client's crypto binding did not verify (server side).
    BindingFailed(BindingError),
    /// A control message failed to decode (MS-SSTP §3.1.5.1).
    InvalidMessage(CodecError),
    /// A control message not allowed in the current state.
    UnexpectedMessage(MessageType),
    /// The Call Connect Acknowledge offered no usable hash protocol (client).
    NoCommonHashProtocol(u8),
    /// The server refused the Call Connect Request (client).
    ConnectNak(Vec<StatusInfo>),
    /// Too many unacceptable Call Connect Requests (server).
    RetryCountExceeded,
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We sent Call Disconnect (acknowledged or timed out).
    LocalDisconnect,
    /// The peer sent Call Disconnect.
    PeerDisconnect,
    /// The peer sent Call Abort, with its Status Info if any.
    PeerAbort(Option<StatusInfo>),
    /// We aborted.
    Aborted(AbortCause),
    /// No packet within two Hello intervals: closed without Call Abort
    /// (MS-SSTP §3.1.2.3).
    HelloTimeout,
    /// The byte stream could not be delineated: closed without a message
    /// (MS-SSTP §3.1.5.1).
    Framing(CodecError),
}

impl std::fmt::Display for AbortCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbortCause::NegotiationTimeout => f.write_str("the negotiation timed out"),
            AbortCause::BindingFailed(e) => write!(f, "the crypto binding failed: {e}"),
            AbortCause::InvalidMessage(e) => write!(f, "an invalid control message: {e}"),
            AbortCause::UnexpectedMessage(t) => write!(f, "an unexpected {t}"),
            AbortCause::NoCommonHashProtocol(bits) => {
                write!(
                    f,
                    "no common crypto binding hash (server offers {bits:#04x})"
                )
            }
            AbortCause::ConnectNak(infos) => {
                f.write_str("the server refused the call")?;
                for (i, info) in infos.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { ", " })?;
                    write!(f, "{info}")?;
                }
                Ok(())
            }
            AbortCause::RetryCountExceeded => {
                f.write_str("too many unacceptable Call Connect Requests")
            }
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::LocalDisconnect => f.write_str("we disconnected"),
            CloseReason::PeerDisconnect => f.write_str("the peer disconnected"),
            CloseReason::PeerAbort(None) => f.write_str("the peer aborted the call"),
            CloseReason::PeerAbort(Some(info)) => write!(f, "the peer aborted the call: {info}"),
            CloseReason::Aborted(cause) => write!(f, "call aborted: {cause}"),
            CloseReason::HelloTimeout => {
                f.write_str("no packet from the peer within two Hello intervals")
            }
            CloseReason::Framing(e) => write!(f, "the byte stream is not SSTP: {e}"),
        }
    }
}

/// An event for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The Call Connect Request/Acknowledge exchange completed: start PPP.
    StartPpp,
    /// The crypto binding completed (client: Call Connected sent; server:
    /// Call Connected verified). Network-layer PPP traffic may now flow.
    Connected,
    /// A PPP frame from the peer (borrowed from the receive buffer).
    PppFrame(&'a [u8]),
    /// The connection is finished; flush the transmit buffer and close TLS.
    Closed(CloseReason),
}

/// Errors of [`crate::ClientConnection::send_ppp`] /
/// [`crate::ServerConnection::send_ppp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// PPP has not been started yet (no Call Connect Ack exchanged).
    #[error("SSTP call not established yet")]
    NotReady,
    /// Network-layer frames are held back until the crypto binding is done.
    #[error("network-layer frame before crypto binding")]
    NotBound,
    /// The connection is closing or closed.
    #[error("SSTP connection is closing")]
    Closing,
    /// Frame too large for an SSTP data packet.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A command issued in a state where it makes no sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The call is closing or closed.
    #[error("SSTP connection is closing")]
    Closing,
    /// The command does not apply in the current state.
    #[error("command not valid in the current SSTP state")]
    WrongState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// Normal operation.
    None,
    /// MS-SSTP Call_Abort_Pending: we sent Call Abort, timer 1 runs.
    AbortPending,
    /// MS-SSTP Call_Abort_Timeout_Pending: timer 2 runs.
    AbortTimeoutPending,
    /// MS-SSTP Call_Disconnect_Ack_Pending: we sent Call Disconnect.
    DisconnectAckPending,
    /// MS-SSTP Call_Disconnect_Timeout_Pending: we acknowledged a disconnect.
    DisconnectTimeoutPending,
    /// Finished.
    Closed,
}

#[derive(Debug)]
enum OwnedEvent {
    StartPpp,
    Connected,
    Closed(CloseReason),
}

/// What a role does with the control messages that are not common.
pub(crate) trait RoleHandler {
    /// Handle a control message (never Abort/Disconnect/DisconnectAck, never
    /// during teardown). `raw` is the whole packet.
    fn handle_control(&mut self, core: &mut Core, msg: ControlMessage, raw: &[u8]);
    /// Whether data packets are accepted in the current state.
    fn accepts_data(&self) -> bool;
}

#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) timers: Timers,
    pub(crate) now: Instant,
    deframer: Deframer,
    tx: Vec<u8>,
    scratch: Vec<u8>,
    events: VecDeque<OwnedEvent>,
    pub(crate) teardown: Teardown,
    teardown_deadline: Option<Instant>,
    pending_close: Option<CloseReason>,
    negotiation_deadline: Option<Instant>,
    hello_deadline: Option<Instant>,
    echo_outstanding: bool,
    /// Whether network-layer PPP frames may flow (binding done).
    pub(crate) network_open: bool,
    /// Whether PPP (control) frames may be sent.
    pub(crate) ppp_started: bool,
    pub(crate) dropped_frames: u64,
}

impl Core {
    pub(crate) fn new(timers: Timers, now: Instant) -> Core {
        Core {
            timers,
            now,
            deframer: Deframer::new(),
            tx: Vec::new(),
            scratch: Vec::new(),
            events: VecDeque::new(),
            teardown: Teardown::None,
            teardown_deadline: None,
            pending_close: None,
            negotiation_deadline: None,
            hello_deadline: None,
            echo_outstanding: false,
            network_open: false,
            ppp_started: false,
            dropped_frames: 0,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.teardown == Teardown::Closed
    }

    /// Release buffer memory that is not in use (idle connections).
    pub(crate) fn shrink(&mut self) {
        self.deframer.shrink();
        if self.tx.is_empty() {
            self.tx = Vec::new();
        }
        self.scratch = Vec::new();
    }

    /// Why the connection is being torn down, before it is closed.
    pub(crate) fn closing_reason(&self) -> Option<&CloseReason> {
        self.pending_close.as_ref()
    }

    pub(crate) fn in_teardown(&self) -> bool {
        self.teardown != Teardown::None
    }

    pub(crate) fn send_control(&mut self, msg: &ControlMessage) {
        // Messages built by this crate always fit.
        msg.encode(&mut self.tx)
            .expect("locally built control message fits in a packet");
    }

    pub(crate) fn send_raw(&mut self, packet: &[u8]) {
        self.tx.extend_from_slice(packet);
    }

    pub(crate) fn push_start_ppp(&mut self) {
        self.ppp_started = true;
        self.events.push_back(OwnedEvent::StartPpp);
    }

    /// Negotiation finished: open the network layer, start the Hello timer.
    pub(crate) fn connected(&mut self) {
        self.network_open = true;
        self.negotiation_deadline = None;
        self.hello_deadline = Some(self.now + self.timers.hello);
        self.echo_outstanding = false;
        self.events.push_back(OwnedEvent::Connected);
    }

    pub(crate) fn start_negotiation_timer(&mut self) {
        self.negotiation_deadline = Some(self.now + self.timers.negotiation);
    }

    fn stop_call_timers(&mut self) {
        self.negotiation_deadline = None;
        self.hello_deadline = None;
        self.network_open = false;
    }

    /// MS-SSTP §3.1.5.1 abort procedure: send Call Abort, start
    /// TIMER_VAL_ABORT_STATE_TIMER_1, enter Call_Abort_Pending.
    pub(crate) fn abort(&mut self, cause: AbortCause, status: Option<StatusInfo>) {
        if self.in_teardown() {
            return;
        }
        self.send_control(&ControlMessage::with_status(MessageType::CallAbort, status));
        self.stop_call_timers();
        self.teardown = Teardown::AbortPending;
        self.teardown_deadline = Some(self.now + self.timers.abort_1);
        self.pending_close = Some(CloseReason::Aborted(cause));
    }

    /// MS-SSTP §3.1.2.2: send Call Disconnect, start
    /// TIMER_VAL_DISCONNECT_STATE_TIMER_1.
    pub(crate) fn disconnect(&mut self) -> Result<(), StateError> {
        if self.in_teardown() {
            return Err(StateError::Closing);
        }
        self.send_control(&ControlMessage::new(MessageType::CallDisconnect));
        self.stop_call_timers();
        self.teardown = Teardown::DisconnectAckPending;
        self.teardown_deadline = Some(self.now + self.timers.disconnect_1);
        self.pending_close = Some(CloseReason::LocalDisconnect);
        Ok(())
    }

    /// Finish immediately (no message sent).
    pub(crate) fn close_now(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.stop_call_timers();
        self.teardown = Teardown::Closed;
        self.teardown_deadline = None;
        self.pending_close = None;
        self.events.push_back(OwnedEvent::Closed(reason));
    }

    /// Abort because a message is not valid in the current state.
    pub(crate) fn abort_unexpected(&mut self, t: MessageType) {
        self.abort(
            AbortCause::UnexpectedMessage(t),
            Some(status(
                ATTRIB_NO_ERROR,
                StatusCode::UNACCEPTED_FRAME_RECEIVED,
            )),
        );
    }

    /// Messages handled identically by both roles. Returns `true` if handled.
    fn handle_common(&mut self, msg: &ControlMessage) -> bool {
        match msg.msg_type {
            MessageType::CallAbort => {
                match self.teardown {
                    // MS-SSTP §3.1.2.1: the initiator cancels timer 1 and
                    // starts timer 2 on receiving the peer's Call Abort.
                    Teardown::AbortPending => {
                        self.teardown = Teardown::AbortTimeoutPending;
                        self.teardown_deadline = Some(self.now + self.timers.abort_2);
                    }
                    // The far end answers with a Call Abort and starts timer 2.
                    Teardown::None => {
                        let st = msg.attributes.iter().find_map(|a| match a {
                            Attribute::StatusInfo(s) => Some(s.clone()),
                            _ => None,
                        });
                        self.send_control(&ControlMessage::new(MessageType::CallAbort));
                        self.stop_call_timers();
                        self.teardown = Teardown::AbortTimeoutPending;
                        self.teardown_deadline = Some(self.now + self.timers.abort_2);
                        self.pending_close = Some(CloseReason::PeerAbort(st));
                    }
                    _ => {}
                }
                true
            }
            MessageType::CallDisconnect => {
                match self.teardown {
                    // MS-SSTP §3.1.2.2: answer with Call Disconnect Ack and
                    // start TIMER_VAL_DISCONNECT_STATE_TIMER_2.
                    Teardown::None => {
                        self.send_control(&ControlMessage::new(MessageType::CallDisconnectAck));
                        self.stop_call_timers();
                        self.teardown = Teardown::DisconnectTimeoutPending;
                        self.teardown_deadline = Some(self.now + self.timers.disconnect_2);
                        self.pending_close = Some(CloseReason::PeerDisconnect);
                    }
                    // Disconnect collision: acknowledge theirs, keep waiting
                    // for the acknowledgement of ours.
                    Teardown::DisconnectAckPending => {
                        self.send_control(&ControlMessage::new(MessageType::CallDisconnectAck));
                    }
                    _ => {}
                }
                true
            }
            MessageType::CallDisconnectAck => {
                if self.teardown == Teardown::DisconnectAckPending {
                    self.close_now(CloseReason::LocalDisconnect);
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.now = now;
        if self.is_closed() {
            return data.len();
        }
        self.deframer.push(data)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if let Some(d) = self.teardown_deadline {
            if now >= d {
                let reason = self
                    .pending_close
                    .take()
                    .unwrap_or(CloseReason::LocalDisconnect);
                self.close_now(reason);
                return;
            }
        }
        if let Some(d) = self.negotiation_deadline {
            if now >= d {
                self.abort(
                    AbortCause::NegotiationTimeout,
                    Some(status(ATTRIB_NO_ERROR, StatusCode::NEGOTIATION_TIMEOUT)),
                );
                return;
            }
        }
        if let Some(d) = self.hello_deadline {
            if now >= d {
                if self.echo_outstanding {
                    // MS-SSTP §3.1.2.3: "it MUST abort the connection
                    // without sending a Call Abort packet".
                    self.close_now(CloseReason::HelloTimeout);
                } else {
                    self.send_control(&ControlMessage::new(MessageType::EchoRequest));
                    self.echo_outstanding = true;
                    self.hello_deadline = Some(now + self.timers.hello);
                }
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        [
            self.teardown_deadline,
            self.negotiation_deadline,
            self.hello_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.tx.len();
        if out.is_empty() {
            // Hand over our buffer, keep the caller's allocation.
            std::mem::swap(out, &mut self.tx);
        } else {
            out.extend_from_slice(&self.tx);
            self.tx.clear();
        }
        n
    }

    pub(crate) fn pending_transmit(&self) -> usize {
        self.tx.len()
    }

    pub(crate) fn send_ppp(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if self.in_teardown() {
            return Err(SendError::Closing);
        }
        if !self.ppp_started {
            return Err(SendError::NotReady);
        }
        if !self.network_open && crate::is_network_layer_frame(frame) {
            return Err(SendError::NotBound);
        }
        encode_data(frame, &mut self.tx)?;
        Ok(())
    }

    pub(crate) fn poll_event<'a, R: RoleHandler>(&'a mut self, role: &mut R) -> Option<Event<'a>> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(match ev {
                    OwnedEvent::StartPpp => Event::StartPpp,
                    OwnedEvent::Connected => Event::Connected,
                    OwnedEvent::Closed(r) => Event::Closed(r),
                });
            }
            if self.is_closed() {
                return None;
            }
            let range = match self.deframer.next_range() {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => {
                    self.close_now(CloseReason::Framing(e));
                    continue;
                }
            };
            // MS-SSTP §3.1.2.3: the Hello timer "is restarted after receiving
            // an SSTP packet (both the SSTP control packet and the SSTP data
            // packet)".
            if self.hello_deadline.is_some() {
                self.hello_deadline = Some(self.now + self.timers.hello);
                self.echo_outstanding = false;
            }
            let bytes = self.deframer.slice(range.clone());
            let is_control = bytes[1] & 0x01 != 0;
            if !is_control {
                let frame = &bytes[HEADER_LEN..];
                let allowed = !self.in_teardown()
                    && role.accepts_data()
                    && (self.network_open || !crate::is_network_layer_frame(frame));
                if !allowed {
                    self.dropped_frames += 1;
                    continue;
                }
                return Some(Event::PppFrame(
                    self.deframer.slice(range.start + HEADER_LEN..range.end),
                ));
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(bytes);
            match decode_packet(&scratch) {
                Ok(Packet::Control(msg)) => {
                    if !self.handle_common(&msg) && !self.in_teardown() {
                        role.handle_control(self, msg, &scratch);
                    }
                }
                Ok(Packet::Data(_)) => unreachable!("C bit checked above"),
                Err(e) => {
                    // MS-SSTP §3.1.5.1: an invalid SSTP message aborts the call.
                    self.abort(
                        AbortCause::InvalidMessage(e),
                        Some(status(ATTRIB_NO_ERROR, StatusCode::INVALID_FRAME_RECEIVED)),
                    );
                }
            }
            self.scratch = scratch;
        }
    }
}

pub(crate) fn status(attrib_id: u8, code: StatusCode) -> StatusInfo {
    StatusInfo {
        attrib_id,
        status: code,
        value: Vec::new(),
    }
}
