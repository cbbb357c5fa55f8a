//! SSTP client state machine (MS-SSTP §3.2), sans-IO.
//!
//! Lifecycle: after the HTTP exchange ([`crate::http`]), create a
//! [`ClientConnection`]; it queues the Call Connect Request. Feed received
//! bytes with [`ClientConnection::handle_input`], drain
//! [`ClientConnection::poll_event`] until `None`, write out
//! [`ClientConnection::poll_transmit`], and drive timers with
//! [`ClientConnection::poll_timeout`] / [`ClientConnection::handle_timeout`].
//! On [`Event::StartPpp`] start PPP; when PPP authentication completes, call
//! [`ClientConnection::set_higher_layer_keys`], which sends the Call
//! Connected message with the crypto binding.

use std::time::Instant;

use crate::attributes::{Attribute, StatusInfo, NONCE_LEN};
use crate::binding::{
    build_call_connected, CertificateHashes, HashProtocol, HigherLayerKeys, Hlak, Role,
    CERT_HASH_PROTOCOL_SHA1, CERT_HASH_PROTOCOL_SHA256,
};
use crate::codec::{ControlMessage, MessageType};
use crate::conn::{
    AbortCause, CloseReason, Core, Event, RoleHandler, SendError, StateError, Timers,
};

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Hashes of the server certificate the TLS layer received
    /// (MS-SSTP §3.2.5.2: the Cert Hash is over the server certificate).
    pub server_certificate: CertificateHashes,
    /// Hash protocols we accept (bitmask of `CERT_HASH_PROTOCOL_*`);
    /// defaults to SHA-1 | SHA-256. The strongest one the server offers is
    /// used.
    pub hash_protocols: u8,
    /// Timer values.
    pub timers: Timers,
}

impl ClientConfig {
    /// Configuration for the server certificate `server_cert_der` (DER).
    pub fn new(server_cert_der: &[u8]) -> ClientConfig {
        ClientConfig {
            server_certificate: CertificateHashes::new(server_cert_der),
            hash_protocols: CERT_HASH_PROTOCOL_SHA1 | CERT_HASH_PROTOCOL_SHA256,
            timers: Timers::default(),
        }
    }
}

/// Client-side states (MS-SSTP §3.2.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Client_Connect_Request_Sent.
    ConnectRequestSent,
    /// Client_Connect_Ack_Received (PPP negotiating).
    ConnectAckReceived,
    /// Client_Call_Connected.
    CallConnected,
    /// Aborting or disconnecting.
    Closing,
    /// Finished.
    Closed,
}

#[derive(Debug)]
struct ClientRole {
    config: ClientConfig,
    state: ClientState,
    chosen: Option<HashProtocol>,
    nonce: [u8; NONCE_LEN],
    early_hlak: Option<Hlak>,
}

impl ClientRole {
    fn send_call_connected(&mut self, core: &mut Core, hlak: &Hlak) {
        let proto = self
            .chosen
            .expect("hash protocol chosen on Call Connect Ack");
        // MS-SSTP §3.2.5.2: Call Connected with the crypto binding.
        let msg = build_call_connected(proto, &self.nonce, &self.config.server_certificate, hlak);
        core.send_raw(&msg);
        self.state = ClientState::CallConnected;
        core.connected();
    }
}

impl RoleHandler for ClientRole {
    fn handle_control(&mut self, core: &mut Core, msg: ControlMessage, _raw: &[u8]) {
        match (self.state, msg.msg_type) {
            // MS-SSTP §3.2.5.3.2: Receiving an SSTP_MSG_CALL_CONNECT_ACK.
            (ClientState::ConnectRequestSent, MessageType::CallConnectAck) => {
                let req = msg.attributes.iter().find_map(|a| match a {
                    Attribute::CryptoBindingReq {
                        hash_bitmask,
                        nonce,
                    } => Some((*hash_bitmask, *nonce)),
                    _ => None,
                });
                let Some((bitmask, nonce)) = req else {
                    core.abort_unexpected(MessageType::CallConnectAck);
                    return;
                };
                let Some(proto) = HashProtocol::strongest_in(bitmask & self.config.hash_protocols)
                else {
                    core.abort(AbortCause::NoCommonHashProtocol(bitmask), None);
                    return;
                };
                self.chosen = Some(proto);
                self.nonce = nonce;
                self.state = ClientState::ConnectAckReceived;
                core.start_negotiation_timer();
                core.push_start_ppp();
                if let Some(h) = self.early_hlak.take() {
                    self.send_call_connected(core, &h);
                }
            }
            // MS-SSTP §3.2.5.3: the server refused our request; we do not retry.
            (ClientState::ConnectRequestSent, MessageType::CallConnectNak) => {
                let st: Vec<StatusInfo> = msg
                    .attributes
                    .into_iter()
                    .filter_map(|a| match a {
                        Attribute::StatusInfo(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                core.abort(AbortCause::ConnectNak(st), None);
            }
            // MS-SSTP §3.2.5.3.7: Echo Request only in Client_Call_Connected.
            (ClientState::CallConnected, MessageType::EchoRequest) => {
                core.send_control(&ControlMessage::new(MessageType::EchoResponse));
            }
            // Echo Response: the Hello timer was already restarted.
            (
                ClientState::CallConnected | ClientState::ConnectAckReceived,
                MessageType::EchoResponse,
            ) => {}
            (_, t) => core.abort_unexpected(t),
        }
    }

    fn accepts_data(&self) -> bool {
        matches!(
            self.state,
            ClientState::ConnectAckReceived | ClientState::CallConnected
        )
    }
}

/// A client-side SSTP connection.
#[derive(Debug)]
pub struct ClientConnection {
    pub(crate) core: Core,
    role: ClientRole,
}

impl ClientConnection {
    /// Start the call: queues the Call Connect Request (MS-SSTP §3.2.1.1.1:
    /// "the client sends the SSTP_MSG_CALL_CONNECT_REQUEST message") and
    /// starts the negotiation timer (§3.2.2.1).
    pub fn new(config: ClientConfig, now: Instant) -> ClientConnection {
        let mut core = Core::new(config.timers, now);
        core.send_control(&ControlMessage::call_connect_request());
        core.start_negotiation_timer();
        ClientConnection {
            core,
            role: ClientRole {
                config,
                state: ClientState::ConnectRequestSent,
                chosen: None,
                nonce: [0; NONCE_LEN],
                early_hlak: None,
            },
        }
    }

    // ---- getters ----

    /// Current state.
    pub fn state(&self) -> ClientState {
        if self.core.is_closed() {
            ClientState::Closed
        } else if self.core.in_teardown() {
            ClientState::Closing
        } else {
            self.role.state
        }
    }

    /// Whether the call is established (Call Connected sent).
    pub fn is_connected(&self) -> bool {
        self.state() == ClientState::CallConnected
    }

    /// Whether the connection has finished.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Whether network-layer PPP frames may flow.
    pub fn network_layer_open(&self) -> bool {
        self.core.network_open
    }

    /// The hash protocol chosen from the server's offer.
    pub fn hash_protocol(&self) -> Option<HashProtocol> {
        self.role.chosen
    }

    /// Data packets dropped because they were not acceptable in the state.
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

    /// Feed bytes from the TLS stream (after the HTTP response). Returns how
    /// many were accepted; drain [`ClientConnection::poll_event`] and offer
    /// the rest again.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.core.handle_input(now, data)
    }

    /// Drive timers; call at or after [`ClientConnection::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now)
    }

    // ---- commands ----

    /// Queue a PPP frame (without HDLC framing) as a data packet.
    /// Network-layer frames are refused until the Call Connected message
    /// has been sent (MS-SSTP §3.2.7, higher-layer events: PPP data frames
    /// flow only in Client_Call_Connected).
    pub fn send_ppp(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.core.send_ppp(frame)
    }

    /// PPP authentication completed (MS-SSTP §3.2.7.1, Inner Authentication
    /// Completed Event): compute the crypto binding and send Call Connected.
    /// May be called before the Call Connect Ack arrives; the message is
    /// then sent when it does.
    pub fn set_higher_layer_keys(&mut self, keys: &HigherLayerKeys) -> Result<(), StateError> {
        if self.core.in_teardown() {
            return Err(StateError::Closing);
        }
        let hlak = Hlak::new(keys, Role::Client);
        match self.role.state {
            ClientState::ConnectRequestSent => {
                self.role.early_hlak = Some(hlak);
                Ok(())
            }
            ClientState::ConnectAckReceived => {
                self.role.send_call_connected(&mut self.core, &hlak);
                Ok(())
            }
            _ => Err(StateError::WrongState),
        }
    }

    /// Disconnect gracefully (MS-SSTP §3.1.2.2): sends Call Disconnect.
    pub fn close(&mut self) -> Result<(), StateError> {
        self.core.disconnect()
    }

    // ---- outputs ----

    /// The next event. Incoming packets are processed lazily here, so call
    /// until it returns `None` after every [`ClientConnection::handle_input`].
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.core.poll_event(&mut self.role)
    }

    /// Move all queued outgoing bytes (SSTP packets back to back) into
    /// `out`; returns the number of bytes. When `out` is empty the buffers
    /// are swapped instead of copied.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.core.poll_transmit(out)
    }

    /// The earliest instant at which [`ClientConnection::handle_timeout`]
    /// must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }
}
