//! The PAC (PPTP Access Concentrator): the server side of a control
//! connection (RFC 2637 §3.1.2 receiver) and of outgoing calls (§3.2.4.1).
//!
//! A VPN client is a PNS that "dials out" through us: it sends
//! Start-Control-Connection-Request, then Outgoing-Call-Request for each
//! tunnel. For each Outgoing-Call-Request within the port limit we report
//! [`Event::CallIdNeeded`] and wait for the driver's
//! [`Pac::assign_call_id`]: GRE to the server is demultiplexed by the PAC's
//! Call ID alone, so the driver picks IDs unique across every control
//! connection (see [`crate::demux::CallTable`]). With the ID we answer and
//! report [`Event::CallEstablished`]; the driver then starts a
//! [`crate::GreSession`]. Incoming calls (§3.2.3) do not happen on a VPN
//! server: an Incoming-Call-Reply is ignored.
//!
//! While a request waits for its Call ID the PAC reads no further
//! message: bytes that arrive meanwhile are held and processed after the
//! answer, so the replies leave in the order the requests came, exactly
//! as if the ID had been at hand.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::conn::{
    clear_all, next_input, Call, CallClearReason, CallState, CloseReason, Common, Control,
    ControlState, Event, Timers,
};
use crate::control::{
    CallDisconnectNotify, DisconnectResult, ErrorCode, Message, OutgoingCallReply,
    OutgoingCallRequest, OutgoingCallResult, StartControlConnectionReply,
    StartControlConnectionRequest, StartResult, StopReason, BEARER_ANALOG, BEARER_DIGITAL,
    FRAMING_ASYNC, FRAMING_SYNC, PROTOCOL_VERSION,
};

/// Configuration of a PAC control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacConfig {
    /// Host Name sent in Start-Control-Connection-Reply.
    pub host_name: Vec<u8>,
    /// Vendor String sent in Start-Control-Connection-Reply.
    pub vendor_string: Vec<u8>,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// Framing Capabilities.
    pub framing_capabilities: u32,
    /// Bearer Capabilities.
    pub bearer_capabilities: u32,
    /// Maximum Channels advertised.
    pub maximum_channels: u16,
    /// Logical port limit: most calls at once on this control connection.
    /// Outgoing-Call-Requests beyond it get General Error / No-Resource.
    pub max_calls: usize,
    /// Our Packet Recv. Window Size, sent in Outgoing-Call-Reply.
    pub recv_window: u16,
    /// Our Packet Processing Delay (1/10 s).
    pub processing_delay: u16,
    /// Connect Speed reported in Outgoing-Call-Reply (bits/s).
    pub connect_speed: u32,
    /// Timers.
    pub timers: Timers,
}

impl Default for PacConfig {
    fn default() -> Self {
        Self {
            host_name: b"ras".to_vec(),
            vendor_string: b"ras".to_vec(),
            firmware_revision: 1,
            framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
            bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
            maximum_channels: 0,
            max_calls: 1,
            recv_window: 64,
            processing_delay: 0,
            connect_speed: 100_000_000,
            timers: Timers::default(),
        }
    }
}

/// Most octets held while a call waits for its Call ID (see the module
/// documentation). A driver answers [`Event::CallIdNeeded`] before it
/// reads again, so this is only reached by a driver that keeps reading
/// without answering while the peer keeps sending.
pub const MAX_HELD_INPUT: usize = 64 * 1024;

/// Why [`Pac::assign_call_id`] did not take the answer. The request stays
/// pending (except for [`AssignCallIdError::NoCallPending`], where there
/// is none): answer again, with another ID or `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssignCallIdError {
    /// No Outgoing-Call-Request waits for a Call ID: none came, it was
    /// answered already, or the control connection closed meanwhile.
    #[error("no Outgoing-Call-Request is waiting for a Call ID")]
    NoCallPending,
    /// Call ID 0 is what a refused Outgoing-Call-Reply carries.
    #[error("Call ID 0 cannot name a call (a refusal carries it)")]
    Zero,
    /// Another call on this control connection has this ID.
    #[error("Call ID {0} is already used by another call")]
    InUse(u16),
}

/// An Outgoing-Call-Request within the port limit, waiting for the
/// driver's Call ID.
#[derive(Debug)]
struct PendingCall {
    request: OutgoingCallRequest,
}

/// The PAC side of one control connection.
pub struct Pac {
    config: PacConfig,
    ctl: Control,
    /// Calls by our Call ID.
    calls: BTreeMap<u16, Call>,
    /// The request waiting for [`Pac::assign_call_id`]; input is held
    /// meanwhile.
    pending: Option<PendingCall>,
    /// Octets read while `pending`, processed after the answer.
    held: Vec<u8>,
    ignored: u64,
}

impl fmt::Debug for Pac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pac")
            .field("state", &self.ctl.state)
            .field("calls", &self.calls)
            .field("pending", &self.pending)
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

impl Pac {
    /// A PAC for a freshly accepted TCP connection.
    pub fn new(config: PacConfig, now: Instant) -> Self {
        let ctl = Control::new(config.timers, now);
        Self {
            config,
            ctl,
            calls: BTreeMap::new(),
            pending: None,
            held: Vec::new(),
            ignored: 0,
        }
    }

    // ---- getters ----

    /// The control connection state.
    pub fn state(&self) -> ControlState {
        self.ctl.state
    }

    /// Is the control connection closed?
    pub fn is_closed(&self) -> bool {
        self.ctl.is_closed()
    }

    /// Calls up, as (our Call ID, the peer's Call ID).
    pub fn calls(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.calls
            .values()
            .map(|c| (c.local_call_id, c.peer_call_id.unwrap_or(0)))
    }

    /// Number of calls up.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Messages ignored because they make no sense for a PAC here.
    pub fn ignored_messages(&self) -> u64 {
        self.ignored
    }

    /// The PNS's Call ID of the Outgoing-Call-Request waiting for
    /// [`Pac::assign_call_id`], if one is.
    pub fn call_id_pending(&self) -> Option<u16> {
        self.pending.as_ref().map(|p| p.request.call_id)
    }

    // ---- input ----

    /// Takes bytes read from the TCP connection.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.pending.is_some() {
            self.hold(now, data);
            return;
        }
        self.consume(now, data);
    }

    /// Decodes and handles messages until `data` is used up, a call waits
    /// for its ID (the rest is held), or the connection closes.
    fn consume(&mut self, now: Instant, mut data: &[u8]) {
        while !self.ctl.is_closed() {
            if self.pending.is_some() {
                self.hold(now, data);
                return;
            }
            match next_input(&mut self.ctl, &mut data) {
                Ok(Some(msg)) => self.handle_message(now, msg),
                Ok(None) => break,
                Err(e) => {
                    // A TCP stream cannot be resynchronised: stop, reporting
                    // the format error (§2.3, §2.16 Bad-Format).
                    self.abort(now, CloseReason::ProtocolError(e), true);
                }
            }
        }
    }

    /// Keeps octets that arrive while a call waits for its ID.
    fn hold(&mut self, now: Instant, data: &[u8]) {
        if self.held.len() + data.len() > MAX_HELD_INPUT {
            self.abort(now, CloseReason::InputOverflow, true);
            return;
        }
        self.held.extend_from_slice(data);
    }

    /// The driver saw the TCP connection close.
    pub fn handle_transport_closed(&mut self) {
        self.forget_pending();
        clear_all(&mut self.calls, &mut self.ctl.events);
        self.ctl.finish(CloseReason::TransportClosed);
    }

    /// Runs the timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(reason) = self.ctl.handle_timeout(now) {
            self.forget_pending();
            clear_all(&mut self.calls, &mut self.ctl.events);
            self.ctl.finish(reason);
        }
    }

    // ---- commands ----

    /// Answers [`Event::CallIdNeeded`]: `Some(id)` establishes the call
    /// with our Call ID `id` (Outgoing-Call-Reply Connected, then
    /// [`Event::CallEstablished`]); `None` means no ID (no port) is free
    /// and refuses it with General Error / No-Resource (RFC 2637 §2.8),
    /// then [`Event::CallRefused`]. Input held meanwhile is processed
    /// next. On an error nothing changed; a driver that reserved `id`
    /// elsewhere releases it.
    pub fn assign_call_id(
        &mut self,
        now: Instant,
        call_id: Option<u16>,
    ) -> Result<(), AssignCallIdError> {
        let Some(pending) = self.pending.take() else {
            return Err(AssignCallIdError::NoCallPending);
        };
        let refusal = match call_id {
            Some(0) => Some(AssignCallIdError::Zero),
            Some(id) if self.calls.contains_key(&id) => Some(AssignCallIdError::InUse(id)),
            _ => None,
        };
        if let Some(e) = refusal {
            self.pending = Some(pending);
            return Err(e);
        }
        let request = pending.request;
        match call_id {
            Some(local_call_id) => self.establish(local_call_id, request),
            None => self.refuse(
                request.call_id,
                OutgoingCallResult::GeneralError,
                ErrorCode::NoResource,
            ),
        }
        let held = std::mem::take(&mut self.held);
        self.consume(now, &held);
        Ok(())
    }

    /// Tears a call down from our side (PPP ended, administrator, idle):
    /// sends Call-Disconnect-Notify (§2.13). Returns false for an unknown call.
    pub fn disconnect_call(&mut self, local_call_id: u16, result: DisconnectResult) -> bool {
        let Some(call) = self.calls.remove(&local_call_id) else {
            return false;
        };
        self.ctl
            .send(&Message::CallDisconnectNotify(CallDisconnectNotify {
                call_id: local_call_id,
                result,
                error: ErrorCode::None,
                cause_code: 0,
                call_statistics: Vec::new(),
            }));
        self.ctl.events.push_back(Event::CallCleared {
            local_call_id,
            peer_call_id: call.peer_call_id,
            reason: CallClearReason::LocalRequest,
        });
        true
    }

    /// Closes the control connection: Stop-Control-Connection-Request,
    /// which implicitly clears every call (§2.3), then wait for the reply.
    pub fn close(&mut self, now: Instant, reason: StopReason) {
        self.forget_pending();
        match self.ctl.state {
            ControlState::Established => {
                clear_all(&mut self.calls, &mut self.ctl.events);
                self.ctl.start_stop(now, reason);
            }
            ControlState::WaitStart => self.ctl.finish(CloseReason::LocalStop(reason)),
            ControlState::Stopping | ControlState::Closed => {}
        }
    }

    // ---- output ----

    /// The next bytes to write to the TCP connection.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.ctl.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.ctl.events.pop_front()
    }

    /// When `handle_timeout` wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ctl.poll_timeout()
    }

    // ---- internals ----

    /// The connection is closing: a call waiting for its ID never
    /// started, and held input is moot.
    fn forget_pending(&mut self) {
        self.pending = None;
        self.held = Vec::new();
    }

    fn abort(&mut self, now: Instant, reason: CloseReason, send_stop: bool) {
        self.forget_pending();
        clear_all(&mut self.calls, &mut self.ctl.events);
        if send_stop && self.ctl.state == ControlState::Established {
            self.ctl.send(&Message::StopControlConnectionRequest {
                reason: StopReason::None,
            });
        }
        let _ = now;
        self.ctl.finish(reason);
    }

    fn handle_message(&mut self, now: Instant, msg: Message) {
        let msg = match self.ctl.handle_common(now, msg) {
            Common::Handled => return,
            Common::Close(reason) => {
                self.forget_pending();
                clear_all(&mut self.calls, &mut self.ctl.events);
                self.ctl.finish(reason);
                return;
            }
            Common::Other(m) => m,
        };
        match self.ctl.state {
            ControlState::WaitStart => match msg {
                Message::StartControlConnectionRequest(req) => self.on_start_request(now, req),
                other => {
                    // §3.1.2: only a Start-Control-Connection-Request is
                    // acceptable before the connection is established.
                    self.abort(now, CloseReason::Unexpected(other.message_type()), false);
                }
            },
            ControlState::Established => match msg {
                Message::OutgoingCallRequest(req) => self.on_outgoing_call_request(req),
                Message::CallClearRequest { call_id } => self.on_call_clear_request(call_id),
                Message::SetLinkInfo(sli) => {
                    if self.calls.contains_key(&sli.peer_call_id) {
                        self.ctl.events.push_back(Event::LinkInfo {
                            local_call_id: sli.peer_call_id,
                            send_accm: sli.send_accm,
                            receive_accm: sli.receive_accm,
                        });
                    } else {
                        self.ignored += 1;
                    }
                }
                // A second Start-Control-Connection-Request, messages only a
                // PAC sends, and replies to incoming calls we never offer.
                _ => self.ignored += 1,
            },
            ControlState::Stopping | ControlState::Closed => self.ignored += 1,
        }
    }

    fn on_start_request(&mut self, now: Instant, req: StartControlConnectionRequest) {
        let supported = req.protocol_version == PROTOCOL_VERSION;
        let result = if supported {
            StartResult::Success
        } else {
            StartResult::UnsupportedVersion
        };
        self.ctl.send(&Message::StartControlConnectionReply(
            StartControlConnectionReply {
                protocol_version: PROTOCOL_VERSION,
                result,
                error: ErrorCode::None,
                framing_capabilities: self.config.framing_capabilities,
                bearer_capabilities: self.config.bearer_capabilities,
                maximum_channels: self.config.maximum_channels,
                firmware_revision: self.config.firmware_revision,
                host_name: self.config.host_name.clone(),
                vendor_string: self.config.vendor_string.clone(),
            },
        ));
        if !supported {
            self.ctl
                .finish(CloseReason::UnsupportedVersion(req.protocol_version));
            return;
        }
        self.ctl.established(now);
        self.ctl.events.push_back(Event::ControlConnected {
            peer_host_name: req.host_name,
            peer_vendor: req.vendor_string,
            peer_firmware_revision: req.firmware_revision,
        });
    }

    fn refuse(&mut self, peer_call_id: u16, result: OutgoingCallResult, error: ErrorCode) {
        self.ctl
            .send(&Message::OutgoingCallReply(OutgoingCallReply {
                call_id: 0,
                peer_call_id,
                result,
                error,
                cause_code: 0,
                connect_speed: 0,
                recv_window_size: 0,
                processing_delay: 0,
                physical_channel_id: 0,
            }));
        self.ctl.events.push_back(Event::CallRefused {
            peer_call_id,
            result,
            error,
        });
    }

    fn on_outgoing_call_request(&mut self, req: OutgoingCallRequest) {
        // One call per PNS Call ID: Call-Clear-Request names calls by it.
        if self
            .calls
            .values()
            .any(|c| c.peer_call_id == Some(req.call_id))
        {
            self.refuse(
                req.call_id,
                OutgoingCallResult::GeneralError,
                ErrorCode::BadCallId,
            );
            return;
        }
        // The logical port limit (§2.8 General Error / No-Resource).
        if self.calls.len() >= self.config.max_calls {
            self.refuse(
                req.call_id,
                OutgoingCallResult::GeneralError,
                ErrorCode::NoResource,
            );
            return;
        }
        // Our Call ID comes from the driver (see the module documentation).
        self.ctl.events.push_back(Event::CallIdNeeded {
            peer_call_id: req.call_id,
        });
        self.pending = Some(PendingCall { request: req });
    }

    fn establish(&mut self, local_call_id: u16, req: OutgoingCallRequest) {
        self.calls.insert(
            local_call_id,
            Call {
                local_call_id,
                peer_call_id: Some(req.call_id),
                state: CallState::Established,
                deadline: None,
            },
        );
        self.ctl
            .send(&Message::OutgoingCallReply(OutgoingCallReply {
                call_id: local_call_id,
                peer_call_id: req.call_id,
                result: OutgoingCallResult::Connected,
                error: ErrorCode::None,
                cause_code: 0,
                connect_speed: self.config.connect_speed,
                recv_window_size: self.config.recv_window,
                processing_delay: self.config.processing_delay,
                physical_channel_id: 0,
            }));
        self.ctl.events.push_back(Event::CallEstablished {
            local_call_id,
            peer_call_id: req.call_id,
            peer_window: req.recv_window_size,
            peer_processing_delay: req.processing_delay,
            connect_speed: self.config.connect_speed,
        });
    }

    fn on_call_clear_request(&mut self, peer_call_id: u16) {
        // §2.12: the Call ID in Call-Clear-Request is the PNS's.
        let Some(local_call_id) = self
            .calls
            .values()
            .find(|c| c.peer_call_id == Some(peer_call_id))
            .map(|c| c.local_call_id)
        else {
            self.ignored += 1;
            return;
        };
        self.calls.remove(&local_call_id);
        // §2.13: Call-Disconnect-Notify, Result Code 4 (Request).
        self.ctl
            .send(&Message::CallDisconnectNotify(CallDisconnectNotify {
                call_id: local_call_id,
                result: DisconnectResult::Request,
                error: ErrorCode::None,
                cause_code: 0,
                call_statistics: Vec::new(),
            }));
        self.ctl.events.push_back(Event::CallCleared {
            local_call_id,
            peer_call_id: Some(peer_call_id),
            reason: CallClearReason::PeerRequest,
        });
    }
}
