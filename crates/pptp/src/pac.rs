//! The PAC (PPTP Access Concentrator): the server side of a control
//! connection (RFC 2637 §3.1.2 receiver) and of outgoing calls (§3.2.4.1).
//!
//! A VPN client is a PNS that "dials out" through us: it sends
//! Start-Control-Connection-Request, then Outgoing-Call-Request for each
//! tunnel. We answer, allocate our Call ID and report
//! [`Event::CallEstablished`]; the driver then starts a
//! [`crate::GreSession`]. Incoming calls (§3.2.3) do not happen on a VPN
//! server: an Incoming-Call-Reply is ignored.

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
    /// The first Call ID the built-in allocator hands out.
    pub first_call_id: u16,
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
            first_call_id: 1,
            timers: Timers::default(),
        }
    }
}

/// A Call ID allocator shared with the driver: returns `None` when no ID
/// (no port) is free. GRE packets to the server are demultiplexed by the
/// PAC's Call ID alone, so a server with several control connections
/// allocates IDs across all of them, and frees one on
/// [`Event::CallCleared`].
pub type CallIdAllocator = Box<dyn FnMut() -> Option<u16> + Send>;

/// The PAC side of one control connection.
pub struct Pac {
    config: PacConfig,
    ctl: Control,
    /// Calls by our Call ID.
    calls: BTreeMap<u16, Call>,
    next_call_id: u16,
    allocator: Option<CallIdAllocator>,
    ignored: u64,
}

impl fmt::Debug for Pac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pac")
            .field("state", &self.ctl.state)
            .field("calls", &self.calls)
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

impl Pac {
    /// A PAC for a freshly accepted TCP connection.
    pub fn new(config: PacConfig, now: Instant) -> Self {
        let ctl = Control::new(config.timers, now);
        let next_call_id = config.first_call_id;
        Self {
            config,
            ctl,
            calls: BTreeMap::new(),
            next_call_id,
            allocator: None,
            ignored: 0,
        }
    }

    /// Uses `allocator` for Call IDs instead of the built-in counter.
    pub fn with_call_id_allocator(mut self, allocator: CallIdAllocator) -> Self {
        self.allocator = Some(allocator);
        self
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

    // ---- input ----

    /// Takes bytes read from the TCP connection.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        while !self.ctl.is_closed() {
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

    /// The driver saw the TCP connection close.
    pub fn handle_transport_closed(&mut self) {
        clear_all(&mut self.calls, &mut self.ctl.events);
        self.ctl.finish(CloseReason::TransportClosed);
    }

    /// Runs the timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(reason) = self.ctl.handle_timeout(now) {
            clear_all(&mut self.calls, &mut self.ctl.events);
            self.ctl.finish(reason);
        }
    }

    // ---- commands ----

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

    fn abort(&mut self, now: Instant, reason: CloseReason, send_stop: bool) {
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

    fn allocate_call_id(&mut self) -> Option<u16> {
        if let Some(alloc) = self.allocator.as_mut() {
            return alloc().filter(|id| !self.calls.contains_key(id));
        }
        // Built-in: the next free non-zero ID after the last one handed out.
        for _ in 0..=u16::MAX {
            let id = self.next_call_id;
            self.next_call_id = self.next_call_id.wrapping_add(1);
            if id != 0 && !self.calls.contains_key(&id) {
                return Some(id);
            }
        }
        None
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
        let Some(local_call_id) = self.allocate_call_id() else {
            self.refuse(
                req.call_id,
                OutgoingCallResult::GeneralError,
                ErrorCode::NoResource,
            );
            return;
        };
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
