//! PAP, RFC 1334 §2.
//!
//! The peer sends Authenticate-Request (Peer-ID, Password) and repeats it
//! until it gets Authenticate-Ack or -Nak (RFC 1334 §2.2.1). The
//! authenticator answers every Request, including repeats after its
//! decision, with the same decision (RFC 1334 §2.2.2) and the Request's
//! Identifier.

use std::fmt;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::packet::{build, clamp, parse_header, ParseError};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthRequest, AuthSuccess, AuthenticatorConfig, Credentials,
    ExternalAccept, Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine, Tick, Verdict,
};
use crate::crypto::mschap::nt_password_hash;

/// RFC 1334 §2.2: codes.
pub const AUTHENTICATE_REQUEST: u8 = 1;
pub const AUTHENTICATE_ACK: u8 = 2;
pub const AUTHENTICATE_NAK: u8 = 3;

/// A PAP packet (RFC 1334 §2.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PapPacket<'a> {
    /// RFC 1334 §2.2.1.
    Request {
        id: u8,
        peer_id: &'a [u8],
        password: &'a [u8],
    },
    /// RFC 1334 §2.2.2.
    Ack { id: u8, message: &'a [u8] },
    /// RFC 1334 §2.2.2.
    Nak { id: u8, message: &'a [u8] },
}

impl fmt::Debug for PapPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PapPacket::Request { id, peer_id, .. } => write!(
                f,
                "Request {{ id: {id}, peer_id: {:?}, password: .. }}",
                String::from_utf8_lossy(peer_id)
            ),
            PapPacket::Ack { id, message } => write!(
                f,
                "Ack {{ id: {id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
            PapPacket::Nak { id, message } => write!(
                f,
                "Nak {{ id: {id}, message: {:?} }}",
                String::from_utf8_lossy(message)
            ),
        }
    }
}

/// Split a one-octet-length-prefixed field off `data`.
fn field<'a>(data: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8]), ParseError> {
    let (&len, rest) = data.split_first().ok_or(ParseError::Malformed(what))?;
    let len = usize::from(len);
    if len > rest.len() {
        return Err(ParseError::Malformed(what));
    }
    Ok(rest.split_at(len))
}

/// Parse a PAP packet (RFC 1334 §2.2).
pub fn parse_packet(data: &[u8]) -> Result<PapPacket<'_>, ParseError> {
    let h = parse_header(data)?;
    match h.code {
        AUTHENTICATE_REQUEST => {
            let (peer_id, rest) = field(h.body, "PAP Peer-ID")?;
            let (password, _) = field(rest, "PAP Password")?;
            Ok(PapPacket::Request {
                id: h.id,
                peer_id,
                password,
            })
        }
        AUTHENTICATE_ACK | AUTHENTICATE_NAK => {
            // Some implementations send no Msg-Length at all: an empty
            // message.
            let message = if h.body.is_empty() {
                &[][..]
            } else {
                field(h.body, "PAP Message")?.0
            };
            Ok(if h.code == AUTHENTICATE_ACK {
                PapPacket::Ack { id: h.id, message }
            } else {
                PapPacket::Nak { id: h.id, message }
            })
        }
        other => Err(ParseError::UnknownCode(other)),
    }
}

/// Build an Authenticate-Request (RFC 1334 §2.2.1); fields cut to 255.
pub fn build_request(id: u8, peer_id: &[u8], password: &[u8]) -> Vec<u8> {
    let peer_id = clamp(peer_id, 255);
    let password = clamp(password, 255);
    build(
        AUTHENTICATE_REQUEST,
        id,
        &[
            &[peer_id.len() as u8],
            peer_id,
            &[password.len() as u8],
            password,
        ],
    )
}

/// Build an Authenticate-Ack or -Nak (RFC 1334 §2.2.2).
pub fn build_reply(code: u8, id: u8, message: &[u8]) -> Vec<u8> {
    let message = clamp(message, 255);
    build(code, id, &[&[message.len() as u8], message])
}

// ---------------------------------------------------------------------------

enum ServerState {
    /// Waiting for an Authenticate-Request.
    Waiting,
    /// The owner is checking; answer with the latest Identifier.
    Pending {
        id: u8,
        username: String,
        password: Zeroizing<Vec<u8>>,
    },
    /// Decided: repeat this reply (code, message) to any further Request.
    Decided { code: u8, message: Vec<u8> },
}

/// PAP authenticator.
pub(crate) struct Server {
    io: Io,
    state: ServerState,
}

impl Server {
    pub(crate) fn new(config: AuthenticatorConfig, _rng: StdRng) -> Self {
        Server {
            io: Io::new(config.restart, config.max_transmits),
            state: ServerState::Waiting,
        }
    }

    fn decide(&mut self, ack: bool, message: &str) -> Option<String> {
        let ServerState::Pending { id, username, .. } = &self.state else {
            return None;
        };
        let (id, username) = (*id, username.clone());
        let code = if ack {
            AUTHENTICATE_ACK
        } else {
            AUTHENTICATE_NAK
        };
        self.io.send(build_reply(code, id, message.as_bytes()));
        self.state = ServerState::Decided {
            code,
            message: message.as_bytes().to_vec(),
        };
        Some(username)
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
        // RFC 1334 §2.1: the authenticator only waits; give up after the
        // peer's whole retransmission budget.
        if matches!(self.state, ServerState::Waiting) && !self.io.finished() {
            self.io.wait(now);
        }
    }

    fn handle_packet(&mut self, _now: Instant, data: &[u8]) {
        let Ok(PapPacket::Request {
            id,
            peer_id,
            password,
        }) = parse_packet(data)
        else {
            return;
        };
        match &mut self.state {
            ServerState::Waiting => {
                if self.io.finished() {
                    return;
                }
                self.io.stop();
                let username = lossy(peer_id);
                let password = Zeroizing::new(password.to_vec());
                self.state = ServerState::Pending {
                    id,
                    username: username.clone(),
                    password: password.clone(),
                };
                self.io.request(AuthRequest {
                    username,
                    method: AuthMethod::Pap,
                    credentials: Credentials::Pap { password },
                });
            }
            // A repeat while the owner decides: answer it when decided.
            ServerState::Pending { id: pending, .. } => *pending = id,
            // RFC 1334 §2.2.2: repeats get the same answer.
            ServerState::Decided { code, message } => {
                let reply = build_reply(*code, id, message);
                self.io.send(reply);
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.io.fail(
                Rejection::Timeout,
                "no PAP Authenticate-Request from the peer",
            );
        }
    }

    fn check_secret(&self, secret: &Secret) -> Verdict {
        let ServerState::Pending { password, .. } = &self.state else {
            return Verdict::NotPending;
        };
        let ok = match secret {
            Secret::Password(p) => bool::from(p.as_bytes().ct_eq(password)),
            // The NT hash of a cleartext password can be checked too.
            Secret::NtHash(h) => match std::str::from_utf8(password) {
                Ok(p) => bool::from(nt_password_hash(p).ct_eq(&**h)),
                Err(_) => false,
            },
        };
        if ok {
            Verdict::Right(ExternalAccept::default())
        } else {
            Verdict::Wrong("wrong password")
        }
    }

    fn reject(&mut self, _now: Instant, rejection: Rejection, message: &str) {
        // The Nak's text depends on the code alone; `message` (the
        // owner's detail) is only reported locally.
        if self.decide(false, rejection.peer_text()).is_some() {
            self.io.fail(rejection, message);
        }
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        let message = accept.message.clone().unwrap_or_default();
        if let Some(username) = self.decide(true, &message) {
            self.io.succeed(AuthSuccess {
                username,
                protocol: AuthProtocol::Pap,
                keys: accept.keys,
                msk: None,
            });
        }
    }
}

// ---------------------------------------------------------------------------

/// PAP peer.
pub(crate) struct Client {
    io: Io,
    config: PeerConfig,
    rng: StdRng,
    id: Option<u8>,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, rng: StdRng) -> Self {
        Client {
            io: Io::new(config.restart, config.max_transmits),
            config,
            rng,
            id: None,
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
        if self.id.is_some() || self.io.finished() {
            return;
        }
        // The identifier only needs to differ between Requests; the same
        // packet (and Identifier) is retransmitted on timeout.
        let id = self.rng.next_u32() as u8;
        self.id = Some(id);
        let packet = build_request(
            id,
            self.config.username.as_bytes(),
            self.config.password.as_bytes(),
        );
        self.io.send_reliable(now, packet);
    }

    fn handle_packet(&mut self, _now: Instant, data: &[u8]) {
        let Some(expected) = self.id else { return };
        match parse_packet(data) {
            Ok(PapPacket::Ack { id, .. }) if id == expected => {
                self.io.succeed(AuthSuccess {
                    username: self.config.username.clone(),
                    protocol: AuthProtocol::Pap,
                    keys: None,
                    msk: None,
                });
            }
            Ok(PapPacket::Nak { id, message }) if id == expected => {
                self.io
                    .fail(Rejection::AuthenticationFailure, lossy(message));
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.io.fail(
                Rejection::Timeout,
                "no answer to the PAP Authenticate-Request",
            );
        }
    }
}
