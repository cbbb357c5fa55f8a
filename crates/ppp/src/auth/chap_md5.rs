//! CHAP with MD5, RFC 1994.
//!
//! The authenticator sends a Challenge (16 random octets and its Name) and
//! retransmits it until a Response with the same Identifier arrives
//! (RFC 1994 §4.1); the Response Value is MD5(Identifier | secret |
//! Challenge) (RFC 1994 §4.1, RFC 1321). A repeated Response with the
//! Identifier of an answered one gets the same Success/Failure again
//! (RFC 1994 §4.2).

use std::time::Instant;

use md5::{Digest, Md5};
use rand::rngs::StdRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::packet::{
    build_chap_message, build_chap_value, chap_code, parse_chap_packet, ChapPacket,
};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthRequest, AuthSuccess, AuthenticatorConfig, Credentials,
    ExternalAccept, Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine, Tick,
};

pub use super::packet::parse_chap_packet as parse_packet;

/// RFC 1994 §3: algorithm 5, MD5.
pub const ALGORITHM: u8 = 5;

/// RFC 1994 §4.1: the Response Value, MD5(Identifier | secret | Challenge).
pub fn response_value(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([id]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

enum ServerState {
    Idle,
    /// Challenge outstanding (retransmitted by the timer).
    Challenged {
        id: u8,
        challenge: [u8; 16],
    },
    /// Response received; the owner is checking.
    Pending {
        id: u8,
        challenge: [u8; 16],
        username: String,
        response: [u8; 16],
    },
    Finished,
}

/// CHAP-MD5 authenticator.
pub(crate) struct Server {
    io: Io,
    rng: StdRng,
    name: String,
    state: ServerState,
    /// The last Success/Failure and the Identifier it answered.
    answered: Option<(u8, Vec<u8>)>,
}

impl Server {
    pub(crate) fn new(config: AuthenticatorConfig, rng: StdRng) -> Self {
        Server {
            io: Io::new(config.restart, config.max_transmits),
            rng,
            name: config.name,
            state: ServerState::Idle,
            answered: None,
        }
    }

    fn answer(&mut self, code: u8, message: &str) -> Option<String> {
        let ServerState::Pending { id, username, .. } = &self.state else {
            return None;
        };
        let (id, username) = (*id, username.clone());
        let packet = build_chap_message(code, id, message.as_bytes());
        self.io.send(packet.clone());
        self.answered = Some((id, packet));
        self.state = ServerState::Finished;
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
        if !matches!(self.state, ServerState::Idle) || self.io.finished() {
            return;
        }
        let id = self.rng.next_u32() as u8;
        let mut challenge = [0u8; 16];
        self.rng.fill_bytes(&mut challenge);
        let packet = build_chap_value(chap_code::CHALLENGE, id, &challenge, self.name.as_bytes());
        self.io.send_reliable(now, packet);
        self.state = ServerState::Challenged { id, challenge };
    }

    fn handle_packet(&mut self, _now: Instant, data: &[u8]) {
        let Ok(ChapPacket::Response { id, value, name }) = parse_chap_packet(data) else {
            return;
        };
        // RFC 1994 §4.2: a retransmitted Response gets the same answer.
        if let Some((answered, packet)) = &self.answered {
            if *answered == id {
                let packet = packet.clone();
                self.io.send(packet);
                return;
            }
        }
        let ServerState::Challenged {
            id: expected,
            challenge,
        } = self.state
        else {
            return;
        };
        let Ok(response) = <[u8; 16]>::try_from(value) else {
            return;
        };
        if id != expected {
            return;
        }
        self.io.stop();
        let username = lossy(name);
        self.state = ServerState::Pending {
            id,
            challenge,
            username: username.clone(),
            response,
        };
        self.io.request(AuthRequest {
            username,
            method: AuthMethod::ChapMd5,
            credentials: Credentials::ChapMd5 {
                id,
                challenge: challenge.to_vec(),
                response,
            },
        });
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.state = ServerState::Finished;
            self.io
                .fail(Rejection::Timeout, "no CHAP Response from the peer");
        }
    }

    fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: Secret,
        refusal: Option<Rejection>,
        message: &str,
    ) {
        let ServerState::Pending {
            id,
            challenge,
            response,
            ..
        } = &self.state
        else {
            return;
        };
        match &secret {
            Secret::Password(p) => {
                let expected = response_value(*id, p.as_bytes(), challenge);
                match (bool::from(expected.ct_eq(response)), refusal) {
                    (true, None) => self.accept_external(now, ExternalAccept::default()),
                    (true, Some(rejection)) => self.reject(now, rejection, message),
                    (false, _) => {
                        self.reject(now, Rejection::AuthenticationFailure, "wrong password")
                    }
                }
            }
            // Nothing to check against: to the peer this is a wrong
            // password like any other (the text below is for the log).
            Secret::NtHash(_) => self.reject(
                now,
                Rejection::AuthenticationFailure,
                "CHAP-MD5 needs the cleartext password, the user store only has an NT hash",
            ),
        }
    }

    fn reject(&mut self, _now: Instant, rejection: Rejection, message: &str) {
        // The Failure's text depends on the code alone; `message` (the
        // owner's detail) is only reported locally.
        if self
            .answer(chap_code::FAILURE, rejection.peer_text())
            .is_some()
        {
            self.io.fail(rejection, message);
        }
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        let message = accept.message.clone().unwrap_or_default();
        if let Some(username) = self.answer(chap_code::SUCCESS, &message) {
            self.io.succeed(AuthSuccess {
                username,
                protocol: AuthProtocol::ChapMd5,
                keys: accept.keys,
            });
        }
    }
}

// ---------------------------------------------------------------------------

/// CHAP-MD5 peer.
pub(crate) struct Client {
    io: Io,
    config: PeerConfig,
    /// Identifier and Challenge value answered last, and our Response.
    last: Option<(u8, Vec<u8>, Vec<u8>)>,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, _rng: StdRng) -> Self {
        Client {
            io: Io::new(config.restart, config.max_transmits),
            config,
            last: None,
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

    fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        if self.io.finished() {
            return;
        }
        match parse_chap_packet(data) {
            Ok(ChapPacket::Challenge { id, value, .. }) => {
                if let Some((last_id, last_value, packet)) = &self.last {
                    if *last_id == id && last_value == value {
                        // A retransmitted Challenge: the same Response.
                        let packet = packet.clone();
                        self.io.send(packet);
                        return;
                    }
                }
                let response = response_value(id, self.config.password.as_bytes(), value);
                let packet = build_chap_value(
                    chap_code::RESPONSE,
                    id,
                    &response,
                    self.config.username.as_bytes(),
                );
                // Retransmitted on timeout in case the Success/Failure is
                // lost; the authenticator repeats it (RFC 1994 §4.2).
                self.io.send_reliable(now, packet.clone());
                self.last = Some((id, value.to_vec(), packet));
            }
            Ok(ChapPacket::Success { id, .. }) if self.last.as_ref().map(|l| l.0) == Some(id) => {
                self.io.succeed(AuthSuccess {
                    username: self.config.username.clone(),
                    protocol: AuthProtocol::ChapMd5,
                    keys: None,
                });
            }
            Ok(ChapPacket::Failure { id, message })
                if self.last.as_ref().map(|l| l.0) == Some(id) =>
            {
                self.io
                    .fail(Rejection::AuthenticationFailure, lossy(message));
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.io
                .fail(Rejection::Timeout, "no CHAP answer from the authenticator");
        }
    }
}
