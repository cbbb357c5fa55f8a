//! SSTP server state machine (MS-SSTP §3.3), sans-IO.
//!
//! After the HTTP exchange ([`crate::http`]), create a [`ServerConnection`].
//! It waits for the Call Connect Request, answers with a Call Connect
//! Acknowledge carrying a fresh 32-byte nonce and the hash-protocol bitmask,
//! and emits [`Event::StartPpp`]. PPP control frames then flow; network-layer
//! frames are held back (dropped inbound, refused outbound) until the
//! client's Call Connected message has been verified against the keys given
//! to [`ServerConnection::set_higher_layer_keys`]. A wrong binding aborts the
//! call (MS-SSTP §3.3.5.2.3).

use std::time::Instant;

use rand::RngCore;

use crate::attributes::{
    Attribute, StatusCode, StatusInfo, ATTRIB_CRYPTO_BINDING, ATTRIB_ENCAPSULATED_PROTOCOL_ID,
    ENCAPSULATED_PROTOCOL_PPP, NONCE_LEN,
};
use crate::binding::{
    verify_call_connected, BindingError, CertificateHashes, HashProtocol, HigherLayerKeys, Hlak,
    Role, CERT_HASH_PROTOCOL_SHA256,
};
use crate::codec::{ControlMessage, MessageType, CALL_CONNECTED_LEN};
use crate::conn::{
    status, AbortCause, CloseReason, Core, Event, RoleHandler, SendError, StateError, Timers,
};

/// How many unacceptable Call Connect Requests are answered with a NAK
/// before the server aborts.
pub const MAX_CONNECT_NAKS: u32 = 3;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Hashes of the certificate the TLS layer presents
    /// (MS-SSTP §3.3.1 ServerCertificateHash).
    pub certificate: CertificateHashes,
    /// Hash Protocol Bitmask offered in the Call Connect Ack
    /// (MS-SSTP §3.3.1 ServerHashProtocolSupported). Defaults to SHA-256
    /// only; use `CERT_HASH_PROTOCOL_SHA1 | CERT_HASH_PROTOCOL_SHA256` for old
    /// clients.
    pub hash_protocols: u8,
    /// Timer values.
    pub timers: Timers,
}

impl ServerConfig {
    /// Configuration for the server certificate `cert_der` (DER).
    pub fn new(cert_der: &[u8]) -> ServerConfig {
        ServerConfig {
            certificate: CertificateHashes::new(cert_der),
            hash_protocols: CERT_HASH_PROTOCOL_SHA256,
            timers: Timers::default(),
        }
    }
}

/// Server-side states (MS-SSTP §3.3.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Server_Connect_Request_Pending.
    ConnectRequestPending,
    /// Server_Call_Connected_Pending (PPP negotiating, binding not verified).
    CallConnectedPending,
    /// Server_Call_Connected.
    CallConnected,
    /// Aborting or disconnecting.
    Closing,
    /// Finished.
    Closed,
}

#[derive(Debug)]
struct ServerRole {
    config: ServerConfig,
    state: ServerState,
    nonce: [u8; NONCE_LEN],
    naks: u32,
    hlak: Option<Hlak>,
    pending_call_connected: Option<[u8; CALL_CONNECTED_LEN]>,
    verified: Option<HashProtocol>,
}

impl ServerRole {
    fn try_verify(&mut self, core: &mut Core) {
        let (Some(hlak), Some(raw)) = (&self.hlak, &self.pending_call_connected) else {
            return;
        };
        let res = verify_call_connected(
            raw,
            &self.nonce,
            self.config.hash_protocols,
            &self.config.certificate,
            hlak,
        );
        self.pending_call_connected = None;
        match res {
            Ok(proto) => {
                self.verified = Some(proto);
                self.state = ServerState::CallConnected;
                core.connected();
            }
            Err(e) => self.binding_failed(core, e),
        }
    }

    fn binding_failed(&mut self, core: &mut Core, e: BindingError) {
        core.abort(
            AbortCause::BindingFailed(e),
            Some(status(
                ATTRIB_CRYPTO_BINDING,
                StatusCode::INVALID_FRAME_RECEIVED,
            )),
        );
    }

    /// MS-SSTP §3.3.1.1.1: the request is unacceptable "if
    /// either the Protocol ID field is not SSTP_ENCAPSULATED_PROTOCOL_PPP or
    /// the message contains a Status Info Attribute ... set to a nonzero
    /// value".
    fn check_request(msg: &ControlMessage) -> Result<(), StatusInfo> {
        let mut proto = None;
        for a in &msg.attributes {
            match a {
                Attribute::EncapsulatedProtocolId(p) => {
                    if proto.is_some() {
                        return Err(StatusInfo {
                            attrib_id: ATTRIB_ENCAPSULATED_PROTOCOL_ID,
                            status: StatusCode::DUPLICATE_ATTRIBUTE,
                            value: p.to_be_bytes().to_vec(),
                        });
                    }
                    proto = Some(*p);
                }
                Attribute::StatusInfo(s) if s.status != StatusCode::NO_ERROR => {
                    return Err(StatusInfo {
                        attrib_id: crate::attributes::ATTRIB_STATUS_INFO,
                        status: StatusCode::VALUE_NOT_SUPPORTED,
                        value: Vec::new(),
                    });
                }
                Attribute::StatusInfo(_) => {}
                other => {
                    return Err(StatusInfo {
                        attrib_id: other.id(),
                        status: StatusCode::ATTRIB_NOT_SUPPORTED_IN_MSG,
                        value: Vec::new(),
                    });
                }
            }
        }
        match proto {
            Some(ENCAPSULATED_PROTOCOL_PPP) => Ok(()),
            Some(p) => Err(StatusInfo {
                attrib_id: ATTRIB_ENCAPSULATED_PROTOCOL_ID,
                status: StatusCode::VALUE_NOT_SUPPORTED,
                value: p.to_be_bytes().to_vec(),
            }),
            None => Err(StatusInfo {
                attrib_id: ATTRIB_ENCAPSULATED_PROTOCOL_ID,
                status: StatusCode::REQUIRED_ATTRIBUTE_MISSING,
                value: Vec::new(),
            }),
        }
    }
}

impl RoleHandler for ServerRole {
    fn handle_control(&mut self, core: &mut Core, msg: ControlMessage, raw: &[u8]) {
        match (self.state, msg.msg_type) {
            (ServerState::ConnectRequestPending, MessageType::CallConnectRequest) => {
                match Self::check_request(&msg) {
                    Ok(()) => {
                        // MS-SSTP §2.2.10 / §3.3.1.1.1: Call Connect Ack
                        // with the Crypto Binding Request attribute.
                        let ack = ControlMessage {
                            msg_type: MessageType::CallConnectAck,
                            attributes: vec![Attribute::CryptoBindingReq {
                                hash_bitmask: self.config.hash_protocols,
                                nonce: self.nonce,
                            }],
                        };
                        core.send_control(&ack);
                        self.state = ServerState::CallConnectedPending;
                        core.start_negotiation_timer();
                        core.push_start_ppp();
                    }
                    Err(st) => {
                        self.naks += 1;
                        if self.naks > MAX_CONNECT_NAKS {
                            core.abort(
                                AbortCause::RetryCountExceeded,
                                Some(status(0, StatusCode::RETRY_COUNT_EXCEEDED)),
                            );
                        } else {
                            core.send_control(&ControlMessage::with_status(
                                MessageType::CallConnectNak,
                                Some(st),
                            ));
                        }
                    }
                }
            }
            // MS-SSTP §3.3.5.2.3: Receiving an SSTP_MSG_CALL_CONNECTED.
            (ServerState::CallConnectedPending, MessageType::CallConnected) => {
                if self.pending_call_connected.is_some() {
                    core.abort_unexpected(MessageType::CallConnected);
                    return;
                }
                if raw.len() != CALL_CONNECTED_LEN
                    || !matches!(msg.attributes.as_slice(), [Attribute::CryptoBinding(_)])
                {
                    self.binding_failed(core, BindingError::Malformed);
                    return;
                }
                let mut copy = [0u8; CALL_CONNECTED_LEN];
                copy.copy_from_slice(raw);
                self.pending_call_connected = Some(copy);
                self.try_verify(core);
            }
            (ServerState::CallConnected, MessageType::EchoRequest) => {
                core.send_control(&ControlMessage::new(MessageType::EchoResponse));
            }
            (
                ServerState::CallConnected | ServerState::CallConnectedPending,
                MessageType::EchoResponse,
            ) => {}
            (_, t) => core.abort_unexpected(t),
        }
    }

    fn accepts_data(&self) -> bool {
        matches!(
            self.state,
            ServerState::CallConnectedPending | ServerState::CallConnected
        )
    }
}

/// A server-side SSTP connection.
#[derive(Debug)]
pub struct ServerConnection {
    pub(crate) core: Core,
    role: ServerRole,
}

impl ServerConnection {
    /// A connection whose HTTP exchange just completed; the nonce comes from
    /// the OS RNG. Starts the negotiation timer (waiting for the Call
    /// Connect Request).
    pub fn new(config: ServerConfig, now: Instant) -> ServerConnection {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        ServerConnection::with_nonce(config, now, nonce)
    }

    /// As [`ServerConnection::new`] with a caller-chosen nonce (tests).
    pub fn with_nonce(
        config: ServerConfig,
        now: Instant,
        nonce: [u8; NONCE_LEN],
    ) -> ServerConnection {
        let mut core = Core::new(config.timers, now);
        core.start_negotiation_timer();
        ServerConnection {
            core,
            role: ServerRole {
                config,
                state: ServerState::ConnectRequestPending,
                nonce,
                naks: 0,
                hlak: None,
                pending_call_connected: None,
                verified: None,
            },
        }
    }

    // ---- getters ----

    /// Current state.
    pub fn state(&self) -> ServerState {
        if self.core.is_closed() {
            ServerState::Closed
        } else if self.core.in_teardown() {
            ServerState::Closing
        } else {
            self.role.state
        }
    }

    /// Whether the client's crypto binding has been verified.
    pub fn binding_verified(&self) -> bool {
        self.role.verified.is_some() && !self.core.in_teardown()
    }

    /// Whether network-layer PPP frames may be forwarded (same as
    /// [`ServerConnection::binding_verified`]).
    pub fn network_layer_open(&self) -> bool {
        self.core.network_open
    }

    /// Whether the connection has finished.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The hash protocol the client used, once verified.
    pub fn hash_protocol(&self) -> Option<HashProtocol> {
        self.role.verified
    }

    /// The nonce sent in the Call Connect Ack.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.role.nonce
    }

    /// Data packets dropped (not acceptable in the state, or network-layer
    /// traffic before the binding was verified).
    pub fn dropped_frames(&self) -> u64 {
        self.core.dropped_frames
    }

    /// Bytes waiting in the transmit buffer.
    pub fn pending_transmit(&self) -> usize {
        self.core.pending_transmit()
    }

    /// Release buffer memory not in use; call when the connection is idle.
    pub fn shrink_buffers(&mut self) {
        self.core.shrink();
    }

    /// Why the connection is closing (aborting or disconnecting), while the
    /// teardown is still in progress.
    pub fn closing_reason(&self) -> Option<&CloseReason> {
        self.core.closing_reason()
    }

    // ---- inputs ----

    /// Feed bytes from the TLS stream (after the HTTP request). Returns how
    /// many were accepted; drain [`ServerConnection::poll_event`] and offer
    /// the rest again.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.core.handle_input(now, data)
    }

    /// Drive timers; call at or after [`ServerConnection::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now)
    }

    // ---- commands ----

    /// Queue a PPP frame as a data packet. Before the binding is verified
    /// only PPP control protocols (protocol ≥ 0x8000) are sent (MS-SSTP
    /// §3.3.7, higher-layer events: "If CurrentState is set to
    /// Server_Call_Connected: Generate an SSTP data packet").
    pub fn send_ppp(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.core.send_ppp(frame)
    }

    /// PPP authentication completed (MS-SSTP §3.3.7, Inner Authentication
    /// Completed Event: the server "stores
    /// the higher-layer authentication key (HLAK) passed by the PPP layer
    /// inside the ServerHLAKKey variable"). If the Call Connected message is
    /// already here it is verified now.
    pub fn set_higher_layer_keys(&mut self, keys: &HigherLayerKeys) -> Result<(), StateError> {
        if self.core.in_teardown() {
            return Err(StateError::Closing);
        }
        if self.role.state != ServerState::CallConnectedPending || self.role.hlak.is_some() {
            return Err(StateError::WrongState);
        }
        self.role.hlak = Some(Hlak::new(keys, Role::Server));
        self.role.try_verify(&mut self.core);
        Ok(())
    }

    /// Disconnect gracefully (MS-SSTP §3.1.2.2): sends Call Disconnect.
    pub fn close(&mut self) -> Result<(), StateError> {
        self.core.disconnect()
    }

    // ---- outputs ----

    /// The next event. Incoming packets are processed lazily here, so call
    /// until it returns `None` after every [`ServerConnection::handle_input`].
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.core.poll_event(&mut self.role)
    }

    /// Move all queued outgoing bytes into `out`; returns the byte count.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.core.poll_transmit(out)
    }

    /// The earliest instant at which [`ServerConnection::handle_timeout`]
    /// must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }
}
