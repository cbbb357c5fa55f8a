//! The PNS (PPTP Network Server): the client side of a control connection
//! (RFC 2637 §3.1.1 originator) and of outgoing calls (§3.2.4.2).
//!
//! A VPN client is a PNS: it opens the control connection with
//! Start-Control-Connection-Request, places an outgoing call with
//! Outgoing-Call-Request, tells the PAC the ACCMs PPP negotiated with
//! Set-Link-Info, and ends with Call-Clear-Request and
//! Stop-Control-Connection-Request. Incoming-Call-Requests are refused.

use std::collections::BTreeMap;
use std::time::Instant;

use thiserror::Error;

use crate::conn::{
    clear_all, next_input, Call, CallClearReason, CallState, CloseReason, Common, Control,
    ControlState, Event, Timers,
};
use crate::control::{
    ErrorCode, IncomingCallReply, IncomingCallResult, Message, OutgoingCallRequest,
    OutgoingCallResult, SetLinkInfo, StartControlConnectionRequest, StartResult, StopReason,
    BEARER_ANALOG, BEARER_DIGITAL, FRAMING_ASYNC, FRAMING_SYNC, PROTOCOL_VERSION,
};

/// Configuration of a PNS control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnsConfig {
    /// Host Name sent in Start-Control-Connection-Request.
    pub host_name: Vec<u8>,
    /// Vendor String.
    pub vendor_string: Vec<u8>,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// Framing Capabilities.
    pub framing_capabilities: u32,
    /// Bearer Capabilities.
    pub bearer_capabilities: u32,
    /// Our Packet Recv. Window Size, sent in Outgoing-Call-Request.
    pub recv_window: u16,
    /// Our Packet Processing Delay (1/10 s).
    pub processing_delay: u16,
    /// Minimum BPS asked for.
    pub minimum_bps: u32,
    /// Maximum BPS asked for.
    pub maximum_bps: u32,
    /// Bearer Type asked for (3: either).
    pub bearer_type: u32,
    /// Framing Type asked for (3: either).
    pub framing_type: u32,
    /// Phone Number (empty for a VPN).
    pub phone_number: Vec<u8>,
    /// The first Call ID used.
    pub first_call_id: u16,
    /// Most calls at once.
    pub max_calls: usize,
    /// Timers.
    pub timers: Timers,
}

impl Default for PnsConfig {
    fn default() -> Self {
        Self {
            host_name: b"ras".to_vec(),
            vendor_string: b"ras".to_vec(),
            firmware_revision: 1,
            framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
            bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
            recv_window: 64,
            processing_delay: 0,
            minimum_bps: 300,
            maximum_bps: 100_000_000,
            bearer_type: 3,
            framing_type: 3,
            phone_number: Vec::new(),
            first_call_id: 1,
            max_calls: 16,
            timers: Timers::default(),
        }
    }
}

/// Why a PNS command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PnsError {
    /// The control connection is stopping or closed.
    #[error("control connection not open")]
    NotConnected,
    /// No such call, or not in a state for this command.
    #[error("unknown call or wrong call state")]
    BadCall,
    /// Too many calls.
    #[error("call limit reached")]
    TooManyCalls,
}

/// The PNS side of one control connection.
#[derive(Debug)]
pub struct Pns {
    config: PnsConfig,
    ctl: Control,
    /// Calls by our Call ID.
    calls: BTreeMap<u16, Call>,
    next_call_id: u16,
    next_serial: u16,
    ignored: u64,
}

impl Pns {
    /// A PNS on a freshly connected TCP connection; the
    /// Start-Control-Connection-Request is queued at once.
    pub fn new(config: PnsConfig, now: Instant) -> Self {
        let mut ctl = Control::new(config.timers, now);
        ctl.send(&Message::StartControlConnectionRequest(
            StartControlConnectionRequest {
                protocol_version: PROTOCOL_VERSION,
                framing_capabilities: config.framing_capabilities,
                bearer_capabilities: config.bearer_capabilities,
                maximum_channels: 0,
                firmware_revision: config.firmware_revision,
                host_name: config.host_name.clone(),
                vendor_string: config.vendor_string.clone(),
            },
        ));
        let next_call_id = config.first_call_id;
        Self {
            config,
            ctl,
            calls: BTreeMap::new(),
            next_call_id,
            next_serial: 1,
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

    /// Calls established, as (our Call ID, the peer's Call ID).
    pub fn calls(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.calls.values().filter_map(|c| match c.state {
            CallState::Established => Some((c.local_call_id, c.peer_call_id.unwrap_or(0))),
            _ => None,
        })
    }

    /// Messages ignored because they make no sense for a PNS here.
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
                    clear_all(&mut self.calls, &mut self.ctl.events);
                    if self.ctl.state == ControlState::Established {
                        self.ctl.send(&Message::StopControlConnectionRequest {
                            reason: StopReason::None,
                        });
                    }
                    self.ctl.finish(CloseReason::ProtocolError(e));
                }
            }
        }
    }

    /// The driver saw the TCP connection close.
    pub fn handle_transport_closed(&mut self) {
        clear_all(&mut self.calls, &mut self.ctl.events);
        self.ctl.finish(CloseReason::TransportClosed);
    }

    /// Runs the timers: the control timers and each call's reply timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(reason) = self.ctl.handle_timeout(now) {
            clear_all(&mut self.calls, &mut self.ctl.events);
            self.ctl.finish(reason);
            return;
        }
        let expired: Vec<u16> = self
            .calls
            .values()
            .filter(|c| matches!(c.deadline, Some(t) if t <= now))
            .map(|c| c.local_call_id)
            .collect();
        for id in expired {
            let Some(call) = self.calls.remove(&id) else {
                continue;
            };
            match call.state {
                CallState::WaitReply | CallState::Pending => {
                    // No Outgoing-Call-Reply: give up and tell the PAC.
                    if call.state == CallState::WaitReply {
                        self.ctl.send(&Message::CallClearRequest { call_id: id });
                    }
                    self.ctl.events.push_back(Event::CallFailed {
                        local_call_id: id,
                        result: OutgoingCallResult::TimeOut,
                        error: ErrorCode::None,
                        cause_code: 0,
                    });
                }
                CallState::WaitDisconnect | CallState::Established => {
                    self.ctl.events.push_back(Event::CallCleared {
                        local_call_id: id,
                        peer_call_id: call.peer_call_id,
                        reason: CallClearReason::LocalRequest,
                    });
                }
            }
        }
    }

    // ---- commands ----

    /// Places an outgoing call (§2.7). Before the control connection is
    /// established the request waits for it. Returns our Call ID.
    pub fn place_call(&mut self, now: Instant) -> Result<u16, PnsError> {
        if !matches!(
            self.ctl.state,
            ControlState::WaitStart | ControlState::Established
        ) {
            return Err(PnsError::NotConnected);
        }
        if self.calls.len() >= self.config.max_calls {
            return Err(PnsError::TooManyCalls);
        }
        let mut id = self.next_call_id;
        while id == 0 || self.calls.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_call_id = id.wrapping_add(1);
        let state = if self.ctl.state == ControlState::Established {
            CallState::WaitReply
        } else {
            CallState::Pending
        };
        self.calls.insert(
            id,
            Call {
                local_call_id: id,
                peer_call_id: None,
                state,
                deadline: Some(now + self.ctl.timers.call_timeout),
            },
        );
        if state == CallState::WaitReply {
            self.send_outgoing_call_request(id);
        }
        Ok(id)
    }

    /// Sends Set-Link-Info (§2.15) for an established call, after PPP's
    /// LCP negotiated the ACCMs.
    pub fn set_link_info(
        &mut self,
        local_call_id: u16,
        send_accm: u32,
        receive_accm: u32,
    ) -> Result<(), PnsError> {
        if self.ctl.state != ControlState::Established {
            return Err(PnsError::NotConnected);
        }
        let call = self.calls.get(&local_call_id).ok_or(PnsError::BadCall)?;
        let (CallState::Established, Some(peer)) = (call.state, call.peer_call_id) else {
            return Err(PnsError::BadCall);
        };
        self.ctl.send(&Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: peer,
            send_accm,
            receive_accm,
        }));
        Ok(())
    }

    /// Clears a call (§2.12): Call-Clear-Request, then wait for the PAC's
    /// Call-Disconnect-Notify (or the call timer).
    pub fn clear_call(&mut self, now: Instant, local_call_id: u16) -> Result<(), PnsError> {
        if self.ctl.state != ControlState::Established {
            return Err(PnsError::NotConnected);
        }
        let call = self
            .calls
            .get_mut(&local_call_id)
            .ok_or(PnsError::BadCall)?;
        match call.state {
            CallState::Established | CallState::WaitReply => {
                call.state = CallState::WaitDisconnect;
                call.deadline = Some(now + self.ctl.timers.call_timeout);
                self.ctl.send(&Message::CallClearRequest {
                    call_id: local_call_id,
                });
                Ok(())
            }
            CallState::Pending => {
                self.calls.remove(&local_call_id);
                Ok(())
            }
            CallState::WaitDisconnect => Ok(()),
        }
    }

    /// Closes the control connection (§2.3), implicitly clearing every call.
    pub fn close(&mut self, now: Instant, reason: StopReason) {
        match self.ctl.state {
            ControlState::Established => {
                clear_all(&mut self.calls, &mut self.ctl.events);
                self.ctl.start_stop(now, reason);
            }
            ControlState::WaitStart => {
                self.calls.clear();
                self.ctl.finish(CloseReason::LocalStop(reason));
            }
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
        let calls = self.calls.values().filter_map(|c| c.deadline).min();
        [self.ctl.poll_timeout(), calls].into_iter().flatten().min()
    }

    // ---- internals ----

    fn send_outgoing_call_request(&mut self, call_id: u16) {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.ctl
            .send(&Message::OutgoingCallRequest(OutgoingCallRequest {
                call_id,
                call_serial_number: serial,
                minimum_bps: self.config.minimum_bps,
                maximum_bps: self.config.maximum_bps,
                bearer_type: self.config.bearer_type,
                framing_type: self.config.framing_type,
                recv_window_size: self.config.recv_window,
                processing_delay: self.config.processing_delay,
                phone_number: self.config.phone_number.clone(),
                subaddress: Vec::new(),
            }));
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
                Message::StartControlConnectionReply(rep) => {
                    if rep.result != StartResult::Success {
                        self.calls.clear();
                        self.ctl.finish(CloseReason::Refused {
                            result: rep.result,
                            error: rep.error,
                        });
                    } else if rep.protocol_version != PROTOCOL_VERSION {
                        self.calls.clear();
                        self.ctl
                            .finish(CloseReason::UnsupportedVersion(rep.protocol_version));
                    } else {
                        self.ctl.established(now);
                        self.ctl.events.push_back(Event::ControlConnected {
                            peer_host_name: rep.host_name,
                            peer_vendor: rep.vendor_string,
                            peer_firmware_revision: rep.firmware_revision,
                        });
                        let pending: Vec<u16> = self
                            .calls
                            .values()
                            .filter(|c| c.state == CallState::Pending)
                            .map(|c| c.local_call_id)
                            .collect();
                        for id in pending {
                            if let Some(c) = self.calls.get_mut(&id) {
                                c.state = CallState::WaitReply;
                                c.deadline = Some(now + self.ctl.timers.call_timeout);
                            }
                            self.send_outgoing_call_request(id);
                        }
                    }
                }
                other => {
                    self.calls.clear();
                    self.ctl
                        .finish(CloseReason::Unexpected(other.message_type()));
                }
            },
            ControlState::Established => self.handle_established(msg),
            ControlState::Stopping | ControlState::Closed => self.ignored += 1,
        }
    }

    fn handle_established(&mut self, msg: Message) {
        match msg {
            Message::OutgoingCallReply(rep) => {
                // §2.8: Peer's Call ID is ours.
                let Some(call) = self.calls.get_mut(&rep.peer_call_id) else {
                    self.ignored += 1;
                    return;
                };
                if call.state != CallState::WaitReply {
                    self.ignored += 1;
                    return;
                }
                if rep.result == OutgoingCallResult::Connected {
                    call.state = CallState::Established;
                    call.peer_call_id = Some(rep.call_id);
                    call.deadline = None;
                    self.ctl.events.push_back(Event::CallEstablished {
                        local_call_id: rep.peer_call_id,
                        peer_call_id: rep.call_id,
                        peer_window: rep.recv_window_size,
                        peer_processing_delay: rep.processing_delay,
                        connect_speed: rep.connect_speed,
                    });
                } else {
                    self.calls.remove(&rep.peer_call_id);
                    self.ctl.events.push_back(Event::CallFailed {
                        local_call_id: rep.peer_call_id,
                        result: rep.result,
                        error: rep.error,
                        cause_code: rep.cause_code,
                    });
                }
            }
            Message::CallDisconnectNotify(cdn) => {
                // §2.13: the Call ID is the PAC's.
                let Some(id) = self
                    .calls
                    .values()
                    .find(|c| c.peer_call_id == Some(cdn.call_id))
                    .map(|c| c.local_call_id)
                else {
                    self.ignored += 1;
                    return;
                };
                let Some(call) = self.calls.remove(&id) else {
                    return;
                };
                let reason = if call.state == CallState::WaitDisconnect {
                    CallClearReason::LocalRequest
                } else {
                    CallClearReason::PeerDisconnect {
                        result: cdn.result,
                        error: cdn.error,
                        cause_code: cdn.cause_code,
                    }
                };
                self.ctl.events.push_back(Event::CallCleared {
                    local_call_id: id,
                    peer_call_id: call.peer_call_id,
                    reason,
                });
            }
            Message::WanErrorNotify(wen) => {
                if self.calls.contains_key(&wen.peer_call_id) {
                    self.ctl.events.push_back(Event::WanError {
                        local_call_id: wen.peer_call_id,
                        errors: wen,
                    });
                } else {
                    self.ignored += 1;
                }
            }
            Message::IncomingCallRequest(icrq) => {
                // A VPN client takes no incoming calls (§2.10 Do Not Accept).
                self.ctl
                    .send(&Message::IncomingCallReply(IncomingCallReply {
                        call_id: 0,
                        peer_call_id: icrq.call_id,
                        result: IncomingCallResult::DoNotAccept,
                        error: ErrorCode::None,
                        recv_window_size: 0,
                        transmit_delay: 0,
                    }));
            }
            _ => self.ignored += 1,
        }
    }
}
