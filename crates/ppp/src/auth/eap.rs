//! EAP over PPP, RFC 3748, with EAP-MSCHAPv2 terminated locally or any
//! method passed through to an outside server (RFC 3579).
//!
//! The authenticator drives: it sends Requests and retransmits them until
//! a Response with the same Identifier arrives (RFC 3748 §4.1); the peer
//! never retransmits, it answers a repeated Request (same Identifier) with
//! its last Response again (RFC 3748 §4.1). Success and Failure are not
//! retransmitted (RFC 3748 §4.2).
//!
//! Local mode: Identity (RFC 3748 §5.1), then EAP-MSCHAPv2
//! (draft-kamath-pppext-eap-mschapv2): Challenge → Response →
//! Success-Request ("S=") → Success-Response → EAP-Success, or
//! Failure-Request ("E=") → Failure-Response → EAP-Failure. Retries (R=1)
//! are not offered inside EAP.
//!
//! Pass-through mode: the Identity Request is ours; every Response goes to
//! the owner (for RADIUS EAP-Message), every Request from the owner goes to
//! the peer. PEAP (type 25) and any other method are only ever relayed.

use std::fmt;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::eap_mschapv2::{self as emc, EapMsChapV2Packet};
use super::mschapv2::{
    external_success_message, failure_message, parse_failure_message, parse_success_message,
    verify, ResponseValue,
};
use super::packet::{build, clamp, parse_header, ParseError, MAX_TEXT};
use super::{
    lossy, AuthFailure, AuthMethod, AuthProtocol, AuthRequest, AuthSuccess, AuthenticatorConfig,
    Credentials, ExternalAccept, Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine,
    Tick, Verdict,
};
use crate::crypto::mppe_keys::MasterKeys;
use crate::crypto::mschap::{check_authenticator_response, nt_password_hash, strip_domain};

/// RFC 3748 §4: codes.
pub const REQUEST: u8 = 1;
pub const RESPONSE: u8 = 2;
pub const SUCCESS: u8 = 3;
pub const FAILURE: u8 = 4;

/// RFC 3748 §5 and the IANA registry: method types.
pub const TYPE_IDENTITY: u8 = 1;
pub const TYPE_NOTIFICATION: u8 = 2;
pub const TYPE_NAK: u8 = 3;
pub const TYPE_MD5_CHALLENGE: u8 = 4;
pub const TYPE_TLS: u8 = 13;
pub const TYPE_PEAP: u8 = 25;
pub const TYPE_MSCHAPV2: u8 = 26;
pub const TYPE_EXPANDED: u8 = 254;

/// An EAP packet (RFC 3748 §4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum EapPacket<'a> {
    /// RFC 3748 §4.1: Type and Type-Data.
    Request { id: u8, typ: u8, data: &'a [u8] },
    /// RFC 3748 §4.1: Type and Type-Data.
    Response { id: u8, typ: u8, data: &'a [u8] },
    /// RFC 3748 §4.2.
    Success { id: u8 },
    /// RFC 3748 §4.2.
    Failure { id: u8 },
}

impl fmt::Debug for EapPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EapPacket::Request { id, typ, data } => write!(
                f,
                "Request {{ id: {id}, type: {typ}, {} octets }}",
                data.len()
            ),
            EapPacket::Response { id, typ, data } => write!(
                f,
                "Response {{ id: {id}, type: {typ}, {} octets }}",
                data.len()
            ),
            EapPacket::Success { id } => write!(f, "Success {{ id: {id} }}"),
            EapPacket::Failure { id } => write!(f, "Failure {{ id: {id} }}"),
        }
    }
}

/// Parse an EAP packet (RFC 3748 §4).
pub fn parse_packet(data: &[u8]) -> Result<EapPacket<'_>, ParseError> {
    let h = parse_header(data)?;
    match h.code {
        REQUEST | RESPONSE => {
            let (&typ, data) = h
                .body
                .split_first()
                .ok_or(ParseError::Malformed("EAP Type"))?;
            Ok(if h.code == REQUEST {
                EapPacket::Request {
                    id: h.id,
                    typ,
                    data,
                }
            } else {
                EapPacket::Response {
                    id: h.id,
                    typ,
                    data,
                }
            })
        }
        SUCCESS => Ok(EapPacket::Success { id: h.id }),
        FAILURE => Ok(EapPacket::Failure { id: h.id }),
        other => Err(ParseError::UnknownCode(other)),
    }
}

/// `data` up to its Length field, if it is a well-formed EAP packet.
fn trimmed(data: &[u8]) -> Option<&[u8]> {
    parse_packet(data).ok()?;
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    Some(&data[..len])
}

pub fn build_request(id: u8, typ: u8, data: &[u8]) -> Vec<u8> {
    build(REQUEST, id, &[&[typ], data])
}

pub fn build_response(id: u8, typ: u8, data: &[u8]) -> Vec<u8> {
    build(RESPONSE, id, &[&[typ], data])
}

pub fn build_success(id: u8) -> Vec<u8> {
    build(SUCCESS, id, &[])
}

pub fn build_failure(id: u8) -> Vec<u8> {
    build(FAILURE, id, &[])
}

/// RFC 3748 §5.3.1: legacy Nak proposing EAP-MSCHAPv2.
pub fn build_nak(id: u8) -> Vec<u8> {
    build_response(id, TYPE_NAK, &[TYPE_MSCHAPV2])
}

/// RFC 3748 §5.3.2: Expanded Nak (answer to an Expanded Type request)
/// proposing EAP-MSCHAPv2 as the 8-octet entry Type 254, Vendor-Id 0,
/// Vendor-Type 26.
pub fn build_expanded_nak(id: u8) -> Vec<u8> {
    build_response(
        id,
        TYPE_EXPANDED,
        &[
            0,
            0,
            0,
            0,
            0,
            0,
            3,
            TYPE_EXPANDED,
            0,
            0,
            0,
            0,
            0,
            0,
            TYPE_MSCHAPV2,
        ],
    )
}

// ---------------------------------------------------------------------------

enum ServerState {
    Idle,
    /// Our Identity Request is outstanding (both modes).
    Identity {
        id: u8,
    },
    /// Local: EAP-MSCHAPv2 Challenge outstanding.
    Challenge {
        id: u8,
        challenge: [u8; 16],
    },
    /// Local: Response received, the owner is checking.
    Pending {
        id: u8,
        ms_id: u8,
        challenge: [u8; 16],
        name: Vec<u8>,
        value: ResponseValue,
    },
    /// Local: Success-Request outstanding.
    SuccessSent {
        id: u8,
        username: String,
        keys: Option<MasterKeys>,
    },
    /// Local: Failure-Request outstanding.
    FailureSent {
        id: u8,
        rejection: Rejection,
        message: String,
    },
    /// Pass-through: a Request from the outside server is outstanding.
    PtRequest {
        id: u8,
    },
    /// Pass-through: a Response went to the owner, waiting for its answer.
    PtPending {
        id: u8,
    },
    Finished,
}

/// EAP authenticator.
pub(crate) struct Server {
    io: Io,
    rng: StdRng,
    name: String,
    pass_through: bool,
    /// The identity from the Identity Response.
    identity: Option<String>,
    state: ServerState,
}

impl Server {
    pub(crate) fn new(config: AuthenticatorConfig, rng: StdRng) -> Self {
        Server {
            io: Io::new(config.restart, config.max_transmits),
            rng,
            name: config.name,
            pass_through: config.eap_pass_through,
            identity: None,
            state: ServerState::Idle,
        }
    }

    fn forward(&mut self, id: u8, raw: &[u8]) {
        self.io.stop();
        self.state = ServerState::PtPending { id };
        self.io.request(AuthRequest {
            username: self.identity.clone().unwrap_or_default(),
            method: AuthMethod::EapPassThrough,
            credentials: Credentials::EapPassThrough {
                message: raw.to_vec(),
            },
        });
    }

    /// Send EAP-Failure answering `id` and fail.
    fn fail_with(&mut self, id: u8, rejection: Rejection, message: &str) {
        self.io.send(build_failure(id));
        self.state = ServerState::Finished;
        self.io.fail(rejection, message);
    }

    /// The Identifier the next EAP-Failure/Success would answer.
    fn current_id(&self) -> Option<u8> {
        match &self.state {
            ServerState::Identity { id }
            | ServerState::Challenge { id, .. }
            | ServerState::Pending { id, .. }
            | ServerState::SuccessSent { id, .. }
            | ServerState::FailureSent { id, .. }
            | ServerState::PtRequest { id }
            | ServerState::PtPending { id } => Some(*id),
            ServerState::Idle | ServerState::Finished => None,
        }
    }

    fn send_success_request(
        &mut self,
        now: Instant,
        text: Vec<u8>,
        username: String,
        keys: Option<MasterKeys>,
    ) {
        let ServerState::Pending { id, ms_id, .. } = self.state else {
            return;
        };
        let next = id.wrapping_add(1);
        self.io
            .send_reliable(now, emc::build_success_request(next, ms_id, &text));
        self.state = ServerState::SuccessSent {
            id: next,
            username,
            keys,
        };
    }
}

impl ServerMachine for Server {
    fn io(&mut self) -> &mut Io {
        &mut self.io
    }
    fn io_ref(&self) -> &Io {
        &self.io
    }

    fn start(&mut self, now: Instant) {
        if !matches!(self.state, ServerState::Idle) || self.io.finished() {
            return;
        }
        // RFC 3748 §5.1: begin with an Identity Request.
        let id = self.rng.next_u32() as u8;
        self.io
            .send_reliable(now, build_request(id, TYPE_IDENTITY, &[]));
        self.state = ServerState::Identity { id };
    }

    fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        let Ok(EapPacket::Response { id, typ, data: td }) = parse_packet(data) else {
            return;
        };
        let Some(raw) = trimmed(data) else { return };
        // RFC 3748 §4.1: only a Response to the outstanding Request counts.
        match self.state {
            ServerState::Identity { id: x } if x == id => {
                if typ == TYPE_IDENTITY {
                    self.identity = Some(lossy(clamp(td, MAX_TEXT)));
                }
                if self.pass_through {
                    self.forward(id, raw);
                } else if typ == TYPE_IDENTITY {
                    let next = id.wrapping_add(1);
                    let mut challenge = [0u8; 16];
                    self.rng.fill_bytes(&mut challenge);
                    let packet = emc::build_challenge(next, next, &challenge, self.name.as_bytes());
                    self.io.send_reliable(now, packet);
                    self.state = ServerState::Challenge {
                        id: next,
                        challenge,
                    };
                }
            }
            ServerState::Challenge { id: x, challenge } if x == id => match typ {
                TYPE_MSCHAPV2 => {
                    let Ok(EapMsChapV2Packet::Response { ms_id, value, name }) =
                        emc::parse(td, false)
                    else {
                        return;
                    };
                    let Ok(value) = ResponseValue::parse(value) else {
                        return;
                    };
                    self.io.stop();
                    self.state = ServerState::Pending {
                        id,
                        ms_id,
                        challenge,
                        name: name.to_vec(),
                        value,
                    };
                    self.io.request(AuthRequest {
                        username: lossy(name),
                        method: AuthMethod::EapMsChapV2,
                        credentials: Credentials::MsChapV2 {
                            id: ms_id,
                            authenticator_challenge: challenge,
                            peer_challenge: value.peer_challenge,
                            nt_response: value.nt_response,
                            flags: value.flags,
                        },
                    });
                }
                TYPE_NAK => {
                    // RFC 3748 §5.3.1: the peer wants other methods; we only
                    // terminate EAP-MSCHAPv2 locally.
                    let proposed: Vec<String> = td.iter().take(32).map(|t| t.to_string()).collect();
                    let message = format!(
                        "the peer refused EAP-MSCHAPv2 and proposed EAP types [{}]",
                        proposed.join(", ")
                    );
                    self.fail_with(id, Rejection::NoCommonMethod, &message);
                }
                _ => {}
            },
            ServerState::SuccessSent { id: x, .. } if x == id && typ == TYPE_MSCHAPV2 => {
                match emc::parse(td, false) {
                    Ok(EapMsChapV2Packet::SuccessResponse) => {
                        let ServerState::SuccessSent { username, keys, .. } =
                            std::mem::replace(&mut self.state, ServerState::Finished)
                        else {
                            return;
                        };
                        self.io.send(build_success(id));
                        self.io.succeed(AuthSuccess {
                            username,
                            protocol: AuthProtocol::Eap,
                            keys,
                            msk: None,
                        });
                    }
                    Ok(EapMsChapV2Packet::FailureResponse) => self.fail_with(
                        id,
                        Rejection::AuthenticationFailure,
                        "the peer did not accept the server's authenticator response",
                    ),
                    _ => {}
                }
            }
            ServerState::FailureSent { id: x, .. } if x == id && typ == TYPE_MSCHAPV2 => {
                if let ServerState::FailureSent {
                    rejection, message, ..
                } = std::mem::replace(&mut self.state, ServerState::Finished)
                {
                    self.fail_with(id, rejection, &message);
                }
            }
            ServerState::PtRequest { id: x } if x == id => self.forward(id, raw),
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) != Tick::Expired {
            return;
        }
        let Some(id) = self.current_id() else { return };
        match std::mem::replace(&mut self.state, ServerState::Finished) {
            ServerState::FailureSent {
                rejection, message, ..
            } => self.fail_with(id, rejection, &message),
            _ => self.fail_with(id, Rejection::Timeout, "no EAP Response from the peer"),
        }
    }

    fn check_secret(&self, secret: &Secret) -> Verdict {
        let ServerState::Pending {
            challenge,
            name,
            value,
            ..
        } = &self.state
        else {
            return Verdict::NotPending;
        };
        match verify(secret, challenge, name, value) {
            Some(accept) => Verdict::Right(accept),
            None => Verdict::Wrong("wrong password"),
        }
    }

    fn reject(&mut self, now: Instant, rejection: Rejection, message: &str) {
        match self.state {
            ServerState::Pending { id, ms_id, .. } => {
                let next = id.wrapping_add(1);
                let mut challenge = [0u8; 16];
                self.rng.fill_bytes(&mut challenge);
                // "M=" depends on the code alone; `message` (the owner's
                // detail) is only reported locally.
                let text =
                    failure_message(rejection.code(), false, &challenge, rejection.peer_text());
                self.io
                    .send_reliable(now, emc::build_failure_request(next, ms_id, &text));
                self.state = ServerState::FailureSent {
                    id: next,
                    rejection,
                    message: message.to_owned(),
                };
            }
            ServerState::PtPending { id }
            | ServerState::PtRequest { id }
            | ServerState::Identity { id }
            | ServerState::Challenge { id, .. } => self.fail_with(id, rejection, message),
            _ => {}
        }
    }

    fn accept_external(&mut self, now: Instant, accept: ExternalAccept) {
        match &self.state {
            ServerState::Pending { name, .. } => {
                let username = lossy(name);
                let text = external_success_message(&accept);
                self.send_success_request(now, text, username, accept.keys);
            }
            ServerState::PtPending { id } => {
                let id = *id;
                // RFC 3579 §2.6.3: forward the EAP-Success from the
                // Access-Accept; build one if it is missing or not one.
                let packet = match accept.eap_message.as_deref().and_then(trimmed) {
                    Some(p) if p[0] == SUCCESS => p.to_vec(),
                    _ => build_success(id),
                };
                self.io.send(packet);
                self.state = ServerState::Finished;
                self.io.succeed(AuthSuccess {
                    username: self.identity.clone().unwrap_or_default(),
                    protocol: AuthProtocol::Eap,
                    keys: accept.keys,
                    msk: accept.msk,
                });
            }
            _ => {}
        }
    }

    fn eap_challenge(&mut self, now: Instant, eap_message: Vec<u8>) {
        let ServerState::PtPending { id: pending } = self.state else {
            return;
        };
        match parse_packet(&eap_message) {
            Ok(EapPacket::Request { id, .. }) => {
                let raw = trimmed(&eap_message).unwrap_or(&eap_message).to_vec();
                self.io.send_reliable(now, raw);
                self.state = ServerState::PtRequest { id };
            }
            _ => self.fail_with(
                pending,
                Rejection::AuthenticationFailure,
                "the authentication server sent an invalid EAP Request",
            ),
        }
    }
}

// ---------------------------------------------------------------------------

enum MsState {
    Idle,
    /// Our EAP-MSCHAPv2 Response is out.
    Responded {
        challenge: [u8; 16],
        value: ResponseValue,
    },
    /// The server's "S=" checked out (RFC 2759 §5).
    Verified {
        keys: MasterKeys,
    },
    /// The server sent a Failure-Request.
    Failed {
        failure: AuthFailure,
    },
}

/// EAP peer.
pub(crate) struct Client {
    io: Io,
    rng: StdRng,
    username: String,
    password_hash: Zeroizing<[u8; 16]>,
    /// The last Request answered and our Response.
    last: Option<(Vec<u8>, Vec<u8>)>,
    ms: MsState,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, rng: StdRng) -> Self {
        Client {
            io: Io::new(config.restart, config.max_transmits),
            rng,
            password_hash: Zeroizing::new(nt_password_hash(&config.password)),
            username: config.username,
            last: None,
            ms: MsState::Idle,
        }
    }

    fn respond(&mut self, now: Instant, request: &[u8], packet: Vec<u8>) {
        self.io.send(packet.clone());
        self.last = Some((request.to_vec(), packet));
        // The authenticator drives; give up after a long silence.
        self.io.wait(now);
    }

    fn mschapv2(&mut self, now: Instant, request: &[u8], id: u8, type_data: &[u8]) {
        let Ok(packet) = emc::parse(type_data, true) else {
            return;
        };
        match packet {
            EapMsChapV2Packet::Challenge {
                ms_id, challenge, ..
            } => {
                let mut peer_challenge = [0u8; 16];
                self.rng.fill_bytes(&mut peer_challenge);
                let value = ResponseValue::compute(
                    &challenge,
                    &peer_challenge,
                    self.username.as_bytes(),
                    &self.password_hash,
                );
                let packet =
                    emc::build_response(id, ms_id, &value.to_bytes(), self.username.as_bytes());
                self.ms = MsState::Responded { challenge, value };
                self.respond(now, request, packet);
            }
            EapMsChapV2Packet::SuccessRequest { message, .. } => {
                let MsState::Responded { challenge, value } = &self.ms else {
                    return;
                };
                let ok = parse_success_message(message).is_ok_and(|s| {
                    check_authenticator_response(
                        &self.password_hash,
                        &value.nt_response,
                        &value.peer_challenge,
                        challenge,
                        strip_domain(self.username.as_bytes()),
                        s.authenticator_response,
                    )
                });
                if ok {
                    let keys =
                        MasterKeys::from_mschapv2(&self.password_hash, &value.nt_response, false);
                    self.ms = MsState::Verified { keys };
                    self.respond(now, request, emc::build_success_response(id));
                } else {
                    // RFC 2759 §5: end the session.
                    self.io.fail(
                        Rejection::ServerNotAuthenticated,
                        "the authenticator's EAP-MSCHAPv2 Success (S=) is wrong or missing",
                    );
                }
            }
            EapMsChapV2Packet::FailureRequest { message, .. } => {
                if !matches!(self.ms, MsState::Responded { .. }) {
                    return;
                }
                let failure = match parse_failure_message(message) {
                    Ok(f) => AuthFailure {
                        rejection: Rejection::from_code(f.error),
                        message: f.message,
                    },
                    Err(_) => AuthFailure {
                        rejection: Rejection::AuthenticationFailure,
                        message: lossy(message),
                    },
                };
                // Retries (R=1) are not attempted inside EAP: acknowledge
                // and wait for the EAP-Failure.
                self.ms = MsState::Failed { failure };
                self.respond(now, request, emc::build_failure_response(id));
            }
            _ => {}
        }
    }
}

impl PeerMachine for Client {
    fn io(&mut self) -> &mut Io {
        &mut self.io
    }
    fn io_ref(&self) -> &Io {
        &self.io
    }

    fn start(&mut self, now: Instant) {
        if self.last.is_none() && !self.io.finished() {
            self.io.wait(now);
        }
    }

    fn handle_packet(&mut self, now: Instant, raw: &[u8]) {
        if self.io.finished() {
            return;
        }
        let Ok(packet) = parse_packet(raw) else {
            return;
        };
        match packet {
            EapPacket::Request { id, typ, data } => {
                // RFC 3748 §4.1: a repeated Request (same Identifier; here
                // also the same content) gets the same Response.
                let Some(request) = trimmed(raw) else { return };
                if let Some((last_request, last)) = &self.last {
                    if last_request.as_slice() == request {
                        let last = last.clone();
                        self.io.send(last);
                        return;
                    }
                }
                match typ {
                    TYPE_IDENTITY => {
                        let packet = build_response(
                            id,
                            TYPE_IDENTITY,
                            clamp(self.username.as_bytes(), MAX_TEXT),
                        );
                        self.respond(now, request, packet);
                    }
                    // RFC 3748 §5.2: acknowledge a Notification.
                    TYPE_NOTIFICATION => {
                        self.respond(now, request, build_response(id, TYPE_NOTIFICATION, &[]))
                    }
                    TYPE_MSCHAPV2 => self.mschapv2(now, request, id, data),
                    // RFC 3748 §5.3: Nak is only valid in a Response.
                    TYPE_NAK | 0 => {}
                    TYPE_EXPANDED => self.respond(now, request, build_expanded_nak(id)),
                    // Any other method (PEAP, TLS, MD5...): propose ours.
                    _ => self.respond(now, request, build_nak(id)),
                }
            }
            EapPacket::Success { .. } => match &self.ms {
                MsState::Verified { keys } => {
                    let keys = keys.clone();
                    self.io.succeed(AuthSuccess {
                        username: self.username.clone(),
                        protocol: AuthProtocol::Eap,
                        keys: Some(keys),
                        msk: None,
                    });
                }
                _ => self.io.fail(
                    Rejection::ServerNotAuthenticated,
                    "EAP-Success before the server proved its identity",
                ),
            },
            EapPacket::Failure { .. } => match &self.ms {
                MsState::Failed { failure } => {
                    let failure = failure.clone();
                    self.io.fail(failure.rejection, failure.message);
                }
                _ => self
                    .io
                    .fail(Rejection::AuthenticationFailure, "EAP-Failure"),
            },
            EapPacket::Response { .. } => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.io
                .fail(Rejection::Timeout, "no EAP packet from the authenticator");
        }
    }

    fn lower_layer_success(&mut self, _now: Instant) {
        if let MsState::Verified { keys } = &self.ms {
            let keys = keys.clone();
            self.io.succeed(AuthSuccess {
                username: self.username.clone(),
                protocol: AuthProtocol::Eap,
                keys: Some(keys),
                msk: None,
            });
        }
    }
}
