//! What the PAC and PNS control connections share (RFC 2637 §3.1): the
//! control-connection states, the keep-alive and start timers (§3.1.3 of the
//! published text, "Keep Alives and Timers"), the Echo and Stop exchanges,
//! the transmit and event queues, and the events they report.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::control::{
    DecodeError, Deframer, DisconnectResult, EchoResult, ErrorCode, Message, MessageType,
    StartResult, StopReason, StopResult, WanErrorNotify,
};

/// Control connection states (RFC 2637 §3.1.1, §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    /// Waiting for Start-Control-Connection-Request (PAC) or -Reply (PNS).
    WaitStart,
    /// Start-Control-Connection exchanged: calls may be placed.
    Established,
    /// We sent Stop-Control-Connection-Request and wait for the reply.
    Stopping,
    /// Done: flush `poll_transmit`, then close the TCP connection.
    Closed,
}

/// Why a call went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClearReason {
    /// The PNS sent Call-Clear-Request (seen by the PAC).
    PeerRequest,
    /// We cleared it (PAC: sent Call-Disconnect-Notify; PNS: the PAC
    /// confirmed our Call-Clear-Request, or did not in time).
    LocalRequest,
    /// The PAC sent Call-Disconnect-Notify on its own (seen by the PNS).
    PeerDisconnect {
        /// Result Code.
        result: DisconnectResult,
        /// Error Code.
        error: ErrorCode,
        /// Cause Code.
        cause_code: u16,
    },
    /// The control connection went away, clearing every call (§2.3).
    ControlClosed,
}

/// Why the control connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We asked (Stop-Control-Connection-Request) and the peer replied, or
    /// did not in time.
    LocalStop(StopReason),
    /// The peer sent Stop-Control-Connection-Request.
    PeerStop(StopReason),
    /// The control connection did not reach the established state in time
    /// (§3.1.3, item 1).
    StartTimeout,
    /// No Echo-Reply in time (§3.1.3, item 2).
    EchoTimeout,
    /// The byte stream could not be decoded.
    ProtocolError(DecodeError),
    /// A message that makes no sense before the connection is established.
    Unexpected(MessageType),
    /// The peer refused the control connection (PNS).
    Refused {
        /// Result Code of the Start-Control-Connection-Reply.
        result: StartResult,
        /// Error Code.
        error: ErrorCode,
    },
    /// The peer speaks another protocol version.
    UnsupportedVersion(u16),
    /// The peer does not read what we send: the transmit queue overflowed.
    TransmitOverflow,
    /// The driver reported that the TCP connection went away.
    TransportClosed,
    /// PAC: the peer sent more than [`crate::pac::MAX_HELD_INPUT`] octets
    /// while its call waited for a Call ID from the driver.
    InputOverflow,
}

impl std::fmt::Display for CallClearReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallClearReason::PeerRequest => f.write_str("the client cleared the call"),
            CallClearReason::LocalRequest => f.write_str("we cleared the call"),
            CallClearReason::PeerDisconnect {
                result,
                error,
                cause_code,
            } => {
                write!(f, "the server disconnected the call: {result}")?;
                if *error != ErrorCode::None {
                    write!(f, ", {error}")?;
                }
                if *cause_code != 0 {
                    write!(f, ", cause {cause_code}")?;
                }
                Ok(())
            }
            CallClearReason::ControlClosed => f.write_str("the control connection closed"),
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::LocalStop(reason) => write!(f, "we stopped it: {reason}"),
            CloseReason::PeerStop(reason) => write!(f, "the peer stopped it: {reason}"),
            CloseReason::StartTimeout => {
                f.write_str("no Start-Control-Connection exchange in time")
            }
            CloseReason::EchoTimeout => f.write_str("no Echo-Reply in time"),
            CloseReason::ProtocolError(e) => write!(
                f,
                "the peer does not speak PPTP ({e}; is this port another protocol's?)"
            ),
            CloseReason::Unexpected(t) => write!(f, "unexpected {t} before the connection was up"),
            CloseReason::Refused { result, error } => {
                write!(f, "the server refused the control connection: {result}")?;
                if *error != ErrorCode::None {
                    write!(f, ", {error}")?;
                }
                Ok(())
            }
            CloseReason::UnsupportedVersion(v) => {
                write!(f, "the peer speaks PPTP version {}.{}", v >> 8, v & 0xff)
            }
            CloseReason::TransmitOverflow => f.write_str("the peer stopped reading"),
            CloseReason::TransportClosed => f.write_str("the TCP connection closed"),
            CloseReason::InputOverflow => {
                f.write_str("the peer sent too much while its call waited for a Call ID")
            }
        }
    }
}

/// What a PAC or PNS reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The Start-Control-Connection exchange completed.
    ControlConnected {
        /// The peer's Host Name.
        peer_host_name: Vec<u8>,
        /// The peer's Vendor String.
        peer_vendor: Vec<u8>,
        /// The peer's Firmware Revision.
        peer_firmware_revision: u16,
    },
    /// PAC: an Outgoing-Call-Request within the port limit waits for our
    /// Call ID: answer with [`crate::Pac::assign_call_id`] (an ID, or
    /// `None` to refuse it for want of one). No further input is read
    /// until then.
    CallIdNeeded {
        /// The PNS's Call ID from the request.
        peer_call_id: u16,
    },
    /// A call is up: start a GRE session with these parameters.
    CallEstablished {
        /// Our Call ID (the peer puts it in GRE packets to us).
        local_call_id: u16,
        /// The peer's Call ID (we put it in GRE packets to the peer).
        peer_call_id: u16,
        /// The peer's Packet Recv. Window Size (§4.2.1).
        peer_window: u16,
        /// The peer's Packet Processing Delay, 1/10 s.
        peer_processing_delay: u16,
        /// Connect Speed (bits/s) reported by the PAC, or asked by the PNS.
        connect_speed: u32,
    },
    /// PAC: an Outgoing-Call-Request was refused (port limit, bad Call ID).
    CallRefused {
        /// The PNS's Call ID.
        peer_call_id: u16,
        /// The Result Code sent.
        result: crate::control::OutgoingCallResult,
        /// The Error Code sent.
        error: ErrorCode,
    },
    /// PNS: the PAC refused our Outgoing-Call-Request, or did not answer.
    CallFailed {
        /// Our Call ID.
        local_call_id: u16,
        /// The Result Code received (`TimeOut` when none came).
        result: crate::control::OutgoingCallResult,
        /// The Error Code received.
        error: ErrorCode,
        /// The Cause Code received.
        cause_code: u16,
    },
    /// PAC: Set-Link-Info for a call (the PNS's PPP negotiated ACCMs).
    LinkInfo {
        /// Our Call ID.
        local_call_id: u16,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        receive_accm: u32,
    },
    /// PNS: WAN-Error-Notify for a call.
    WanError {
        /// Our Call ID.
        local_call_id: u16,
        /// The counters.
        errors: WanErrorNotify,
    },
    /// A call is gone: stop its GRE session.
    CallCleared {
        /// Our Call ID.
        local_call_id: u16,
        /// The peer's Call ID, if it was known.
        peer_call_id: Option<u16>,
        /// Why.
        reason: CallClearReason,
    },
    /// The control connection is closed; every call was cleared before this
    /// event. Flush `poll_transmit`, then close TCP.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Timer settings of a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Time to reach the established state (§3.1.3: 60 s; MS-PTPT uses 30 s
    /// on the PAC).
    pub start_timeout: Duration,
    /// Idle time before an Echo-Request (§3.1.3: 60 s).
    pub echo_interval: Duration,
    /// Time to wait for the Echo-Reply (§3.1.3: 60 s).
    pub echo_timeout: Duration,
    /// Time to wait for Stop-Control-Connection-Reply.
    pub stop_timeout: Duration,
    /// PNS: time to wait for Outgoing-Call-Reply or Call-Disconnect-Notify.
    pub call_timeout: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(60),
            echo_interval: Duration::from_secs(60),
            echo_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// Most messages waiting in the transmit queue before the connection is
/// given up (a peer that sends but never reads).
pub(crate) const MAX_TRANSMIT_QUEUE: usize = 256;

/// A call on a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    pub local_call_id: u16,
    pub peer_call_id: Option<u16>,
    pub state: CallState,
    /// PNS: when the pending reply is given up.
    pub deadline: Option<Instant>,
}

/// Outgoing call states (RFC 2637 §3.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// PNS: Outgoing-Call-Request not sent yet (control connection not up).
    Pending,
    /// PNS: waiting for Outgoing-Call-Reply.
    WaitReply,
    /// Both: the call is up.
    Established,
    /// PNS: sent Call-Clear-Request, waiting for Call-Disconnect-Notify.
    WaitDisconnect,
}

/// The machinery shared by the PAC and the PNS.
#[derive(Debug)]
pub(crate) struct Control {
    pub state: ControlState,
    pub deframer: Deframer,
    pub transmit: VecDeque<Vec<u8>>,
    pub events: VecDeque<Event>,
    pub timers: Timers,
    start_deadline: Option<Instant>,
    last_rx: Instant,
    echo_outstanding: Option<(u32, Instant)>,
    next_echo_id: u32,
    stop: Option<(StopReason, Instant)>,
}

impl Control {
    pub fn new(timers: Timers, now: Instant) -> Self {
        Self {
            state: ControlState::WaitStart,
            deframer: Deframer::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            timers,
            start_deadline: Some(now + timers.start_timeout),
            last_rx: now,
            echo_outstanding: None,
            next_echo_id: 1,
            stop: None,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state == ControlState::Closed
    }

    /// Queues a message; gives up on a peer that never reads.
    pub fn send(&mut self, msg: &Message) {
        if self.is_closed() {
            return;
        }
        if self.transmit.len() >= MAX_TRANSMIT_QUEUE {
            self.transmit.clear();
            self.finish(CloseReason::TransmitOverflow);
            return;
        }
        self.transmit.push_back(msg.to_vec());
    }

    pub fn established(&mut self, now: Instant) {
        self.state = ControlState::Established;
        self.start_deadline = None;
        self.last_rx = now;
    }

    /// Marks the connection closed and reports it. Callers clear calls first.
    pub fn finish(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = ControlState::Closed;
        self.start_deadline = None;
        self.echo_outstanding = None;
        self.stop = None;
        self.events.push_back(Event::Closed { reason });
    }

    /// Sends Stop-Control-Connection-Request and waits for the reply.
    pub fn start_stop(&mut self, now: Instant, reason: StopReason) {
        self.send(&Message::StopControlConnectionRequest { reason });
        if !self.is_closed() {
            self.state = ControlState::Stopping;
            self.start_deadline = None;
            self.echo_outstanding = None;
            self.stop = Some((reason, now + self.timers.stop_timeout));
        }
    }

    /// The messages every state handles the same way: Echo-Request,
    /// Echo-Reply and Stop-Control-Connection-Request/-Reply (RFC 2637
    /// §2.3–§2.6). Returns `None` when it handled the message; a stop
    /// outcome tells the caller to clear its calls and finish.
    pub fn handle_common(&mut self, now: Instant, msg: Message) -> Common {
        self.last_rx = now;
        match msg {
            Message::EchoRequest { identifier } => {
                self.send(&Message::EchoReply {
                    identifier,
                    result: EchoResult::Ok,
                    error: ErrorCode::None,
                });
                Common::Handled
            }
            Message::EchoReply { identifier, .. } => {
                if matches!(self.echo_outstanding, Some((id, _)) if id == identifier) {
                    self.echo_outstanding = None;
                }
                Common::Handled
            }
            Message::StopControlConnectionRequest { reason } => {
                // §2.3: the request implicitly clears every call; §2.4: reply.
                self.send(&Message::StopControlConnectionReply {
                    result: StopResult::Ok,
                    error: ErrorCode::None,
                });
                Common::Close(CloseReason::PeerStop(reason))
            }
            Message::StopControlConnectionReply { .. } => match self.stop {
                Some((reason, _)) => Common::Close(CloseReason::LocalStop(reason)),
                None => Common::Handled, // unsolicited: ignored
            },
            other => Common::Other(other),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ControlState::WaitStart => self.start_deadline,
            ControlState::Established => Some(match self.echo_outstanding {
                Some((_, sent)) => sent + self.timers.echo_timeout,
                None => self.last_rx + self.timers.echo_interval,
            }),
            ControlState::Stopping => self.stop.map(|(_, t)| t),
            ControlState::Closed => None,
        }
    }

    /// Runs the control timers; returns a reason when the connection must
    /// close (the caller clears calls and finishes).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<CloseReason> {
        match self.state {
            ControlState::WaitStart => match self.start_deadline {
                Some(t) if t <= now => Some(CloseReason::StartTimeout),
                _ => None,
            },
            ControlState::Established => match self.echo_outstanding {
                Some((_, sent)) if sent + self.timers.echo_timeout <= now => {
                    Some(CloseReason::EchoTimeout)
                }
                Some(_) => None,
                None if self.last_rx + self.timers.echo_interval <= now => {
                    let identifier = self.next_echo_id;
                    self.next_echo_id = self.next_echo_id.wrapping_add(1);
                    self.send(&Message::EchoRequest { identifier });
                    self.echo_outstanding = Some((identifier, now));
                    None
                }
                None => None,
            },
            ControlState::Stopping => match self.stop {
                Some((reason, t)) if t <= now => Some(CloseReason::LocalStop(reason)),
                _ => None,
            },
            ControlState::Closed => None,
        }
    }
}

/// Outcome of [`Control::handle_common`].
pub(crate) enum Common {
    Handled,
    Close(CloseReason),
    Other(Message),
}

/// Emits `CallCleared { ControlClosed }` for every call and forgets them.
pub(crate) fn clear_all(
    calls: &mut std::collections::BTreeMap<u16, Call>,
    events: &mut VecDeque<Event>,
) {
    for (_, call) in std::mem::take(calls) {
        if call.state == CallState::Pending || call.state == CallState::WaitReply {
            continue; // never established: nothing to tear down
        }
        events.push_back(Event::CallCleared {
            local_call_id: call.local_call_id,
            peer_call_id: call.peer_call_id,
            reason: CallClearReason::ControlClosed,
        });
    }
}

/// The next whole message from the deframer, pushing octets from `data`
/// into it as needed; `Ok(None)` when `data` is used up.
pub(crate) fn next_input(
    ctl: &mut Control,
    data: &mut &[u8],
) -> Result<Option<Message>, DecodeError> {
    loop {
        if let Some(m) = ctl.deframer.next_message()? {
            return Ok(Some(m));
        }
        if data.is_empty() {
            return Ok(None);
        }
        let n = ctl.deframer.push(data);
        *data = &data[n..];
        if n == 0 {
            return Ok(None);
        }
    }
}
