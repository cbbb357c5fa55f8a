//! The control connection and its sessions (RFC 2661 §5, §6, §7) for both
//! roles.
//!
//! A LAC (client) opens the tunnel (SCCRQ, §5.1) and places incoming
//! calls (ICRQ/ICRP/ICCN, §5.2.1) — the way Windows and xl2tpd clients
//! connect; an LNS (server) answers. Tunnel authentication (§5.1.1) uses
//! the Challenge and Challenge Response AVPs when a secret is configured.
//! Outgoing calls (OCRQ, §5.2.2) are refused with a CDN. Every datagram in
//! and out is a whole L2TP control message; data messages are handled by
//! [`crate::data`] in the driver.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::avp::{challenge_response, Avp, AvpValue, ResultCode};
use crate::header::{decode, Packet};
use crate::message::{ControlMessage, MessageError, MessageType};
pub use crate::reason::{
    cdn_result, error_code, stop_result, SessionCloseReason, TunnelCloseReason,
};
use crate::reliable::{Reliable, ReliableConfig};

/// Which end of the tunnel we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// L2TP Access Concentrator: opens the tunnel and places calls.
    Lac,
    /// L2TP Network Server: answers.
    Lns,
}

/// What a tunnel reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// SCCRQ/SCCRP/SCCCN completed.
    TunnelEstablished {
        /// The peer's tunnel ID (put in every message to it).
        peer_tunnel_id: u16,
        /// The peer's Host Name.
        peer_host_name: Vec<u8>,
    },
    /// A call is up: carry PPP in data messages with these IDs.
    SessionEstablished {
        /// Our session ID (the peer addresses data to it).
        local_session_id: u16,
        /// The peer's session ID (we address data to it).
        peer_session_id: u16,
        /// Data messages of this call carry Ns/Nr (§5.4): the LAC sent
        /// Sequencing Required, or our configuration asks for it.
        sequencing_required: bool,
    },
    /// A call ended.
    SessionClosed {
        /// Our session ID.
        local_session_id: u16,
        /// Why.
        reason: SessionCloseReason,
    },
    /// The peer refused a call we asked for, or a session limit refused one.
    CallRefused {
        /// The peer's session ID, when we refused its call.
        peer_session_id: u16,
        /// Result sent.
        result: ResultCode,
    },
    /// Set-Link-Info (§6.14): the PPP ACCMs the LNS negotiated. L2TP
    /// carries PPP without HDLC framing, so there is nothing to apply.
    LinkInfo {
        /// Our session ID.
        local_session_id: u16,
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        receive_accm: u32,
    },
    /// The tunnel closed: every session is gone.
    TunnelClosed {
        /// Why.
        reason: TunnelCloseReason,
    },
}

/// Configuration of a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Our Host Name (§4.4.3, mandatory in SCCRQ/SCCRP).
    pub host_name: Vec<u8>,
    /// Our Vendor Name.
    pub vendor_name: Vec<u8>,
    /// Firmware Revision.
    pub firmware_revision: u16,
    /// The tunnel secret for Challenge/Challenge Response (§5.1.1) and
    /// hidden AVPs (§4.3). `None`: no tunnel authentication.
    pub secret: Option<Vec<u8>>,
    /// Reliable delivery timers and our receive window.
    pub reliable: ReliableConfig,
    /// Send HELLO after this long without a control message from the
    /// peer (§6.5 keepalive; 60 s is the common choice).
    pub hello_interval: Duration,
    /// Most sessions at once; more calls are refused with CDN 2/4.
    pub max_sessions: usize,
    /// After a StopCCN from the peer, keep acknowledging its
    /// retransmissions this long (§5.7: a full retransmission cycle).
    pub linger: Duration,
    /// LNS: number data messages of every session (§5.4 lets either end
    /// start; the LAC asks with Sequencing Required in ICCN, which is
    /// honoured too). Reported in [`Event::SessionEstablished`].
    pub request_sequencing: bool,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            host_name: b"ras".to_vec(),
            vendor_name: b"ras".to_vec(),
            firmware_revision: 0x0100,
            secret: None,
            reliable: ReliableConfig::default(),
            hello_interval: Duration::from_secs(60),
            max_sessions: 256,
            linger: Duration::from_secs(31),
            request_sequencing: false,
        }
    }
}

/// Tunnel states (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelState {
    /// LAC before [`Tunnel::open_tunnel`]; LNS before SCCRQ.
    Idle,
    /// LAC: SCCRQ sent (wait-ctl-reply).
    WaitCtlReply,
    /// LNS: SCCRP sent (wait-ctl-conn).
    WaitCtlConn,
    /// Established.
    Established,
    /// We sent StopCCN and wait for its acknowledgement.
    Stopping,
    /// The peer sent StopCCN: we only acknowledge until the linger ends.
    Lingering,
    /// Gone: drop the tunnel.
    Closed,
}

impl fmt::Display for TunnelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelState::Idle => "idle",
            TunnelState::WaitCtlReply => "waiting for SCCRP",
            TunnelState::WaitCtlConn => "waiting for SCCCN",
            TunnelState::Established => "established",
            TunnelState::Stopping => "stopping",
            TunnelState::Lingering => "closing",
            TunnelState::Closed => "closed",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    /// LAC: ICRQ sent.
    WaitReply,
    /// LNS: ICRP sent.
    WaitConnect,
    Established,
}

#[derive(Debug)]
struct Session {
    peer_session_id: u16,
    state: SessionState,
}

/// `place_call` and `close_session` failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The tunnel is not established.
    #[error("the tunnel is not established")]
    NotEstablished,
    /// Every session ID is in use or the session limit is reached.
    #[error("no session ID available")]
    NoSessionId,
    /// No such session.
    #[error("no session {0}")]
    NoSuchSession(u16),
    /// The control transmit queue is full.
    #[error("control transmit queue full")]
    QueueFull,
}

/// One L2TP tunnel (control connection) and its sessions.
#[derive(Debug)]
pub struct Tunnel {
    role: Role,
    config: TunnelConfig,
    state: TunnelState,
    local_tunnel_id: u16,
    peer_tunnel_id: u16,
    /// The challenge we send (§5.1.1), fresh random octets from the driver.
    challenge: [u8; 16],
    reliable: Reliable,
    sessions: BTreeMap<u16, Session>,
    next_session_id: u16,
    call_serial: u32,
    events: VecDeque<Event>,
    last_heard: Instant,
    hello_sent: bool,
    linger_until: Option<Instant>,
    /// LNS: the peer's Host Name from SCCRQ, reported on SCCCN.
    peer_host: Vec<u8>,
    /// Most sessions at once right now: `config.max_sessions`, or less
    /// when the driver says so ([`Tunnel::set_session_limit`]).
    session_limit: usize,
}

impl Tunnel {
    /// A LAC tunnel: call [`Tunnel::open_tunnel`] to send SCCRQ.
    /// `challenge` must be fresh random octets.
    pub fn new_lac(
        config: TunnelConfig,
        local_tunnel_id: u16,
        challenge: [u8; 16],
        now: Instant,
    ) -> Self {
        Self::new(Role::Lac, config, local_tunnel_id, challenge, now)
    }

    /// An LNS tunnel for a peer whose SCCRQ is then fed to
    /// [`Tunnel::handle_input`]. `challenge` must be fresh random octets.
    pub fn new_lns(
        config: TunnelConfig,
        local_tunnel_id: u16,
        challenge: [u8; 16],
        now: Instant,
    ) -> Self {
        Self::new(Role::Lns, config, local_tunnel_id, challenge, now)
    }

    fn new(
        role: Role,
        config: TunnelConfig,
        local_tunnel_id: u16,
        challenge: [u8; 16],
        now: Instant,
    ) -> Self {
        Tunnel {
            role,
            reliable: Reliable::new(config.reliable),
            state: TunnelState::Idle,
            local_tunnel_id: local_tunnel_id.max(1),
            peer_tunnel_id: 0,
            challenge,
            sessions: BTreeMap::new(),
            next_session_id: 1,
            call_serial: 0,
            events: VecDeque::new(),
            last_heard: now,
            hello_sent: false,
            linger_until: None,
            peer_host: Vec::new(),
            session_limit: config.max_sessions,
            config,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The state.
    pub fn state(&self) -> TunnelState {
        self.state
    }

    /// Our tunnel ID.
    pub fn local_tunnel_id(&self) -> u16 {
        self.local_tunnel_id
    }

    /// The peer's tunnel ID (0 until known).
    pub fn peer_tunnel_id(&self) -> u16 {
        self.peer_tunnel_id
    }

    /// The peer's session ID for one of ours, once the call is up.
    pub fn peer_session_id(&self, local_session_id: u16) -> Option<u16> {
        self.sessions
            .get(&local_session_id)
            .filter(|s| s.state == SessionState::Established)
            .map(|s| s.peer_session_id)
    }

    /// Sessions present (in any state).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Limits the sessions from now on to `limit` (never above the
    /// configured `max_sessions`). An LNS whose ports are shared by all
    /// its tunnels sets it to what is free before each control message,
    /// so that a call over the limit is refused at its ICRQ with CDN
    /// result 2, error 4 (RFC 2661 §4.4.2: general error, insufficient
    /// resources) instead of being connected and then cut. Sessions
    /// already present are kept.
    pub fn set_session_limit(&mut self, limit: usize) {
        self.session_limit = limit.min(self.config.max_sessions);
    }

    /// Whether the tunnel is gone and can be dropped.
    pub fn is_closed(&self) -> bool {
        self.state == TunnelState::Closed
    }

    fn base_avps(&self) -> Vec<Avp> {
        let mut avps = vec![
            Avp::mandatory(AvpValue::ProtocolVersion(1, 0)),
            Avp::mandatory(AvpValue::HostName(self.config.host_name.clone())),
            // §4.4.3: async and sync framing.
            Avp::mandatory(AvpValue::FramingCapabilities(3)),
            Avp::mandatory(AvpValue::AssignedTunnelId(self.local_tunnel_id)),
            Avp::mandatory(AvpValue::ReceiveWindowSize(
                self.config.reliable.recv_window,
            )),
            Avp::optional(AvpValue::FirmwareRevision(self.config.firmware_revision)),
            Avp::optional(AvpValue::VendorName(self.config.vendor_name.clone())),
        ];
        if self.config.secret.is_some() {
            avps.push(Avp::mandatory(AvpValue::Challenge(self.challenge.to_vec())));
        }
        avps
    }

    fn send(&mut self, session_id: u16, message_type: MessageType, avps: Vec<Avp>) {
        let message = ControlMessage::new(message_type, avps);
        let mut body = Vec::new();
        // Our own AVPs are within the length limits and not hidden.
        if message.encode(None, &mut body).is_err() || self.reliable.send(session_id, body).is_err()
        {
            self.fail(
                TunnelCloseReason::ProtocolError("control transmit queue full".into()),
                false,
            );
        }
    }

    /// LAC: sends SCCRQ (§5.1).
    pub fn open_tunnel(&mut self, now: Instant) {
        if self.role != Role::Lac || self.state != TunnelState::Idle {
            return;
        }
        self.last_heard = now;
        let avps = self.base_avps();
        self.send(0, MessageType::Sccrq, avps);
        self.state = TunnelState::WaitCtlReply;
    }

    fn allocate_session_id(&mut self) -> Option<u16> {
        if self.sessions.len() >= self.session_limit {
            return None;
        }
        for _ in 0..u16::MAX {
            let id = self.next_session_id;
            self.next_session_id = self.next_session_id.wrapping_add(1).max(1);
            if !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Places an incoming call (ICRQ, §5.2.1) and returns our session ID;
    /// [`Event::SessionEstablished`] follows when the LNS answers.
    pub fn place_call(&mut self, _now: Instant) -> Result<u16, CallError> {
        if self.state != TunnelState::Established {
            return Err(CallError::NotEstablished);
        }
        let id = self.allocate_session_id().ok_or(CallError::NoSessionId)?;
        self.call_serial = self.call_serial.wrapping_add(1);
        self.sessions.insert(
            id,
            Session {
                peer_session_id: 0,
                state: SessionState::WaitReply,
            },
        );
        self.send(
            0,
            MessageType::Icrq,
            vec![
                Avp::mandatory(AvpValue::AssignedSessionId(id)),
                Avp::mandatory(AvpValue::CallSerialNumber(self.call_serial)),
                // §4.4.5: a digital (virtual) call.
                Avp::mandatory(AvpValue::BearerType(1)),
            ],
        );
        Ok(id)
    }

    /// Disconnects a call (CDN, §5.6): result 3, administrative.
    pub fn close_session(&mut self, _now: Instant, local_session_id: u16) -> Result<(), CallError> {
        let session = self
            .sessions
            .remove(&local_session_id)
            .ok_or(CallError::NoSuchSession(local_session_id))?;
        self.send_cdn(
            session.peer_session_id,
            local_session_id,
            ResultCode {
                result: cdn_result::ADMIN,
                error: None,
                message: Vec::new(),
            },
        );
        self.events.push_back(Event::SessionClosed {
            local_session_id,
            reason: SessionCloseReason::LocalClose,
        });
        Ok(())
    }

    fn send_cdn(&mut self, peer_session_id: u16, local_session_id: u16, result: ResultCode) {
        self.send(
            peer_session_id,
            MessageType::Cdn,
            vec![
                Avp::mandatory(AvpValue::ResultCode(result)),
                Avp::mandatory(AvpValue::AssignedSessionId(local_session_id)),
            ],
        );
    }

    /// Closes the tunnel (StopCCN, §5.7, result 1) and every session.
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            TunnelState::Stopping | TunnelState::Lingering | TunnelState::Closed => {}
            TunnelState::Idle => self.state = TunnelState::Closed,
            _ => self.stop(
                ResultCode {
                    result: stop_result::CLEAR,
                    error: None,
                    message: Vec::new(),
                },
                TunnelCloseReason::LocalClose,
            ),
        }
    }

    fn close_sessions(&mut self) {
        for (local_session_id, _) in std::mem::take(&mut self.sessions) {
            self.events.push_back(Event::SessionClosed {
                local_session_id,
                reason: SessionCloseReason::TunnelClosed,
            });
        }
    }

    /// Sends StopCCN and reports the tunnel closed.
    fn stop(&mut self, result: ResultCode, reason: TunnelCloseReason) {
        self.close_sessions();
        self.send(
            0,
            MessageType::StopCcn,
            vec![
                Avp::mandatory(AvpValue::AssignedTunnelId(self.local_tunnel_id)),
                Avp::mandatory(AvpValue::ResultCode(result)),
            ],
        );
        self.state = TunnelState::Stopping;
        self.events.push_back(Event::TunnelClosed { reason });
    }

    fn stop_error(&mut self, result: u16, error: u16, reason: TunnelCloseReason) {
        self.stop(
            ResultCode {
                result,
                error: Some(error),
                message: Vec::new(),
            },
            reason,
        );
    }

    /// Closes without StopCCN (the peer is gone).
    fn fail(&mut self, reason: TunnelCloseReason, report: bool) {
        self.close_sessions();
        if report && !matches!(self.state, TunnelState::Stopping | TunnelState::Lingering) {
            self.events.push_back(Event::TunnelClosed { reason });
        }
        self.state = TunnelState::Closed;
    }

    /// Feeds one received UDP datagram (a control message for this
    /// tunnel). Data messages and garbage are ignored here.
    pub fn handle_input(&mut self, now: Instant, datagram: &[u8]) {
        if self.state == TunnelState::Closed {
            return;
        }
        let Ok(Packet::Control { header, body }) = decode(datagram) else {
            return;
        };
        // §3.1: the Tunnel ID is ours, or 0 in a SCCRQ (and its
        // retransmissions) sent before the peer learnt ours.
        let awaiting_our_id = matches!(self.state, TunnelState::Idle | TunnelState::WaitCtlConn);
        if header.tunnel_id != self.local_tunnel_id && !(header.tunnel_id == 0 && awaiting_our_id) {
            return;
        }
        self.last_heard = now;
        self.hello_sent = false;
        self.reliable
            .handle_received(now, header.ns, header.nr, header.session_id, body);
        while let Some(d) = self.reliable.poll_delivered() {
            if matches!(self.state, TunnelState::Lingering | TunnelState::Closed) {
                continue;
            }
            self.handle_message(now, d.session_id, &d.body);
        }
        if self.state == TunnelState::Stopping && self.reliable.is_idle() {
            // Our StopCCN was acknowledged.
            self.state = TunnelState::Closed;
        }
    }

    fn handle_message(&mut self, now: Instant, session_id: u16, body: &[u8]) {
        let message = match ControlMessage::decode(body, self.config.secret.as_deref()) {
            Ok(m) => m,
            Err(e) => return self.bad_message(session_id, e),
        };
        use MessageType::*;
        if self.state == TunnelState::Stopping && message.message_type != StopCcn {
            // §5.7: after our StopCCN only the peer's StopCCN matters.
            return;
        }
        match (message.message_type, self.state) {
            (StopCcn, _) => self.on_stop(now, &message),
            (Hello, _) => {}
            (Sccrq, TunnelState::Idle) if self.role == Role::Lns => self.on_sccrq(&message),
            (Sccrp, TunnelState::WaitCtlReply) => self.on_sccrp(&message),
            (Scccn, TunnelState::WaitCtlConn) => self.on_scccn(&message),
            (Icrq, TunnelState::Established) => self.on_icrq(&message),
            (Icrp, TunnelState::Established) => self.on_icrp(session_id, &message),
            (Iccn, TunnelState::Established) => self.on_iccn(session_id, &message),
            (Cdn, TunnelState::Established) => self.on_cdn(session_id, &message),
            (Ocrq, TunnelState::Established) => {
                // We place no outgoing calls (§5.2.2): refuse politely.
                let peer = message.assigned_session_id().unwrap_or(0);
                let result = ResultCode {
                    result: cdn_result::PERMANENT_LACK,
                    error: None,
                    message: b"outgoing calls are not supported".to_vec(),
                };
                self.send_cdn(peer, 0, result.clone());
                self.events.push_back(Event::CallRefused {
                    peer_session_id: peer,
                    result,
                });
            }
            (Ocrp | Occn | Wen, TunnelState::Established) => {}
            (Sli, TunnelState::Established) => {
                let accm = message.find(|v| match v {
                    AvpValue::Accm { send, receive } => Some((*send, *receive)),
                    _ => None,
                });
                if let Some((send_accm, receive_accm)) = accm {
                    if self.sessions.contains_key(&session_id) {
                        self.events.push_back(Event::LinkInfo {
                            local_session_id: session_id,
                            send_accm,
                            receive_accm,
                        });
                    }
                }
            }
            // §4.4.1: an unknown type without the M bit is ignored.
            (Unknown(_), _) if !message.mandatory_type => {}
            (t, _) => self.stop_error(
                stop_result::FSM_ERROR,
                error_code::NONE,
                TunnelCloseReason::ProtocolError(format!("unexpected {t} while {}", self.state)),
            ),
        }
    }

    fn bad_message(&mut self, session_id: u16, e: MessageError) {
        // §4.2: an unknown mandatory AVP in a session's message costs the
        // session; in a tunnel message, the tunnel.
        if let MessageError::Avp(crate::avp::AvpError::UnknownMandatory { .. }) = e {
            if let Some(session) = self.sessions.remove(&session_id) {
                self.send_cdn(
                    session.peer_session_id,
                    session_id,
                    ResultCode {
                        result: cdn_result::GENERAL_ERROR,
                        error: Some(error_code::UNKNOWN_MANDATORY),
                        message: Vec::new(),
                    },
                );
                self.events.push_back(Event::SessionClosed {
                    local_session_id: session_id,
                    reason: SessionCloseReason::ProtocolError(e.to_string()),
                });
                return;
            }
            return self.stop_error(
                stop_result::GENERAL_ERROR,
                error_code::UNKNOWN_MANDATORY,
                TunnelCloseReason::ProtocolError(e.to_string()),
            );
        }
        self.stop_error(
            stop_result::GENERAL_ERROR,
            error_code::LENGTH,
            TunnelCloseReason::ProtocolError(e.to_string()),
        );
    }

    /// Whether the peer's Challenge Response matches ours (§5.1.1).
    fn response_ok(&self, message: &ControlMessage, id: MessageType) -> bool {
        match &self.config.secret {
            None => true,
            Some(secret) => message.challenge_response().is_some_and(|r| {
                r == challenge_response(id.value() as u8, secret, &self.challenge)
            }),
        }
    }

    /// Our Challenge Response AVP to the peer's challenge, if it sent one;
    /// `Err` when it challenged us and we have no secret.
    fn respond(&self, message: &ControlMessage, id: MessageType) -> Result<Option<Avp>, ()> {
        match (message.challenge(), &self.config.secret) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(()),
            (Some(c), Some(secret)) => Ok(Some(Avp::mandatory(AvpValue::ChallengeResponse(
                challenge_response(id.value() as u8, secret, &c),
            )))),
        }
    }

    /// Common checks of SCCRQ/SCCRP: version and Assigned Tunnel ID.
    fn accept_peer(&mut self, message: &ControlMessage) -> bool {
        let version = message.protocol_version().unwrap_or((0, 0));
        if version != (1, 0) {
            self.stop_error(
                stop_result::VERSION,
                error_code::NONE,
                TunnelCloseReason::UnsupportedVersion(version.0, version.1),
            );
            return false;
        }
        match message.assigned_tunnel_id().filter(|id| *id != 0) {
            Some(id) => self.peer_tunnel_id = id,
            None => {
                self.stop_error(
                    stop_result::GENERAL_ERROR,
                    error_code::RANGE,
                    TunnelCloseReason::ProtocolError("no Assigned Tunnel ID".into()),
                );
                return false;
            }
        }
        // §4.4.3: without a Receive Window Size the peer's window is 4.
        self.reliable
            .set_peer_window(message.receive_window_size().unwrap_or(4));
        true
    }

    fn not_authorized(&mut self) {
        self.stop_error(
            stop_result::NOT_AUTHORIZED,
            error_code::NONE,
            TunnelCloseReason::AuthenticationFailed,
        );
    }

    fn on_sccrq(&mut self, message: &ControlMessage) {
        if !self.accept_peer(message) {
            return;
        }
        let Ok(response) = self.respond(message, MessageType::Sccrp) else {
            return self.not_authorized();
        };
        let mut avps = self.base_avps();
        avps.extend(response);
        self.peer_host = message.host_name().unwrap_or_default();
        self.send(0, MessageType::Sccrp, avps);
        self.state = TunnelState::WaitCtlConn;
    }

    fn on_sccrp(&mut self, message: &ControlMessage) {
        if !self.accept_peer(message) {
            return;
        }
        if !self.response_ok(message, MessageType::Sccrp) {
            return self.not_authorized();
        }
        let Ok(response) = self.respond(message, MessageType::Scccn) else {
            return self.not_authorized();
        };
        self.send(0, MessageType::Scccn, response.into_iter().collect());
        self.established(message.host_name().unwrap_or_default());
    }

    fn on_scccn(&mut self, message: &ControlMessage) {
        if !self.response_ok(message, MessageType::Scccn) {
            return self.not_authorized();
        }
        let host = std::mem::take(&mut self.peer_host);
        self.established(host);
    }

    fn established(&mut self, peer_host_name: Vec<u8>) {
        self.state = TunnelState::Established;
        self.events.push_back(Event::TunnelEstablished {
            peer_tunnel_id: self.peer_tunnel_id,
            peer_host_name,
        });
    }

    fn on_stop(&mut self, now: Instant, message: &ControlMessage) {
        let result = message.result_code().unwrap_or(ResultCode {
            result: 0,
            error: None,
            message: Vec::new(),
        });
        self.close_sessions();
        if self.state != TunnelState::Stopping {
            self.events.push_back(Event::TunnelClosed {
                reason: TunnelCloseReason::PeerStop(result),
            });
        }
        // §5.7: acknowledge now and keep acknowledging retransmissions.
        self.state = TunnelState::Lingering;
        self.linger_until = Some(now + self.config.linger);
        self.reliable.ack_now(now);
    }

    fn on_icrq(&mut self, message: &ControlMessage) {
        let Some(peer) = message.assigned_session_id().filter(|id| *id != 0) else {
            return self.stop_error(
                stop_result::GENERAL_ERROR,
                error_code::RANGE,
                TunnelCloseReason::ProtocolError("ICRQ without Assigned Session ID".into()),
            );
        };
        let Some(id) = self.allocate_session_id() else {
            // The session limit: CDN general error, insufficient resources.
            let result = ResultCode {
                result: cdn_result::GENERAL_ERROR,
                error: Some(error_code::RESOURCES),
                message: b"session limit reached".to_vec(),
            };
            self.send_cdn(peer, 0, result.clone());
            self.events.push_back(Event::CallRefused {
                peer_session_id: peer,
                result,
            });
            return;
        };
        self.sessions.insert(
            id,
            Session {
                peer_session_id: peer,
                state: SessionState::WaitConnect,
            },
        );
        self.send(
            peer,
            MessageType::Icrp,
            vec![Avp::mandatory(AvpValue::AssignedSessionId(id))],
        );
    }

    fn on_icrp(&mut self, session_id: u16, message: &ControlMessage) {
        let Some(peer) = message.assigned_session_id().filter(|id| *id != 0) else {
            return;
        };
        let Some(session) = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.state == SessionState::WaitReply)
        else {
            return;
        };
        session.peer_session_id = peer;
        session.state = SessionState::Established;
        self.send(
            peer,
            MessageType::Iccn,
            vec![
                // §6.8: Tx Connect Speed and Framing Type are mandatory.
                Avp::mandatory(AvpValue::TxConnectSpeed(100_000_000)),
                Avp::mandatory(AvpValue::FramingType(1)),
            ],
        );
        self.events.push_back(Event::SessionEstablished {
            local_session_id: session_id,
            peer_session_id: peer,
            sequencing_required: false,
        });
    }

    fn on_iccn(&mut self, session_id: u16, message: &ControlMessage) {
        let Some(session) = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.state == SessionState::WaitConnect)
        else {
            return;
        };
        session.state = SessionState::Established;
        let peer_session_id = session.peer_session_id;
        self.events.push_back(Event::SessionEstablished {
            local_session_id: session_id,
            peer_session_id,
            sequencing_required: message.sequencing_required() || self.config.request_sequencing,
        });
    }

    fn on_cdn(&mut self, session_id: u16, message: &ControlMessage) {
        let result = message.result_code().unwrap_or(ResultCode {
            result: 0,
            error: None,
            message: Vec::new(),
        });
        // The header names our session; a CDN before the peer learnt our
        // ID names 0, and its Assigned Session ID is the peer's.
        let local = if self.sessions.contains_key(&session_id) {
            Some(session_id)
        } else {
            let peer = message.assigned_session_id();
            self.sessions
                .iter()
                .find(|(_, s)| Some(s.peer_session_id) == peer && s.peer_session_id != 0)
                .map(|(id, _)| *id)
        };
        if let Some(local_session_id) = local {
            self.sessions.remove(&local_session_id);
            self.events.push_back(Event::SessionClosed {
                local_session_id,
                reason: SessionCloseReason::PeerDisconnect(result),
            });
        }
    }

    /// Runs timers: retransmissions, HELLO, the linger after StopCCN.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == TunnelState::Closed {
            return;
        }
        if self.linger_until.is_some_and(|t| t <= now) {
            self.state = TunnelState::Closed;
            return;
        }
        if self.reliable.handle_timeout(now).is_err() {
            return self.fail(TunnelCloseReason::PeerUnreachable, true);
        }
        if self.state == TunnelState::Established
            && !self.hello_sent
            && now >= self.last_heard + self.config.hello_interval
        {
            // §6.5: HELLO keeps the tunnel alive; reliable delivery tears
            // it down if the peer does not acknowledge.
            self.hello_sent = true;
            self.send(0, MessageType::Hello, Vec::new());
        }
    }

    /// The next datagram to send to the peer.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.state == TunnelState::Closed {
            return None;
        }
        self.reliable.poll_transmit(now, self.peer_tunnel_id)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Tunnel::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == TunnelState::Closed {
            return None;
        }
        let mut next = self.reliable.poll_timeout();
        let mut take = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.linger_until {
            take(t);
        }
        if self.state == TunnelState::Established && !self.hello_sent {
            take(self.last_heard + self.config.hello_interval);
        }
        next
    }
}
