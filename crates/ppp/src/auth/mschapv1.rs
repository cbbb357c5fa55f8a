//! MS-CHAP version 1 over PPP CHAP, RFC 2433.
//!
//! * LCP: CHAP with algorithm 0x80 (RFC 2433 §2).
//! * Challenge (RFC 2433 §3): Value-Size 8, 8 random octets, Name.
//! * Response (RFC 2433 §4): Value-Size 49: LM-Response (24),
//!   NT-Response (24), use-NT flag (1); Name = the user name. This module
//!   sends a zeroed LM-Response with the flag set to 1, as Windows does,
//!   and as authenticator refuses responses without the flag (verifying
//!   them would need the LAN Manager hash, which an NT-hash store lacks).
//! * Success (RFC 2433 §5): a plain CHAP Success; the peer learns nothing
//!   about the authenticator (MS-CHAPv1 has no mutual authentication).
//! * Failure (RFC 2433 §6): "E=eeeeeeeeee R=r V=vvvvvvvvvv". Retries
//!   ("R=1") are never offered, and the Change-Password packets (RFC 2433
//!   §7, CHAP codes 5 and 6) are not implemented: a received one is
//!   dropped, so a 648 (password expired) is final.
//!
//! MPPE keys: RFC 3079 §2 ([`MasterKeys::from_mschapv1`]).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::mschapv2::parse_failure_message;
use super::packet::{
    build_chap_message, build_chap_value, chap_code, parse_chap_packet, ChapPacket, ParseError,
};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthRequest, AuthSuccess, AuthenticatorConfig, Credentials,
    ExternalAccept, Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine, Tick,
};
use crate::crypto::mppe_keys::MasterKeys;
use crate::crypto::mschap::nt_password_hash;
use crate::crypto::mschapv1::{nt_challenge_response, verify_nt_challenge_response};

pub use super::packet::parse_chap_packet as parse_packet;

/// RFC 2433 §2: CHAP algorithm 0x80.
pub const ALGORITHM: u8 = 0x80;
/// RFC 2433 §3: the Challenge Value is 8 octets.
pub const CHALLENGE_LEN: usize = 8;
/// RFC 2433 §4: the Response Value is 49 octets.
pub const RESPONSE_VALUE_LEN: usize = 49;
/// RFC 2433 §6: "V=" of our Failure packets. The version only selects the
/// Change-Password packet a peer would use; RFC 2433 says it SHOULD be 2
/// or more.
pub const VERSION: u32 = 2;

/// The Value of an MS-CHAPv1 Response (RFC 2433 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseValue {
    pub lm_response: [u8; 24],
    pub nt_response: [u8; 24],
    /// 1: use the NT-Response; 0: use the LM-Response.
    pub use_nt: u8,
}

impl ResponseValue {
    /// Parse the 49-octet Value.
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        if value.len() != RESPONSE_VALUE_LEN {
            return Err(ParseError::Malformed("MS-CHAPv1 Response Value"));
        }
        let mut lm_response = [0u8; 24];
        lm_response.copy_from_slice(&value[..24]);
        let mut nt_response = [0u8; 24];
        nt_response.copy_from_slice(&value[24..48]);
        Ok(ResponseValue {
            lm_response,
            nt_response,
            use_nt: value[48],
        })
    }

    pub fn to_bytes(&self) -> [u8; RESPONSE_VALUE_LEN] {
        let mut out = [0u8; RESPONSE_VALUE_LEN];
        out[..24].copy_from_slice(&self.lm_response);
        out[24..48].copy_from_slice(&self.nt_response);
        out[48] = self.use_nt;
        out
    }

    /// The peer's Response: the NT-Response, a zeroed LM-Response and the
    /// use-NT flag (RFC 2433 §4).
    pub fn compute(challenge: &[u8; 8], password_hash: &[u8; 16]) -> Self {
        ResponseValue {
            lm_response: [0; 24],
            nt_response: nt_challenge_response(challenge, password_hash),
            use_nt: 1,
        }
    }
}

/// Format a Failure message (RFC 2433 §6): "E=<code> R=0 V=2".
pub fn failure_message(error: u32) -> Vec<u8> {
    format!("E={error} R=0 V={VERSION}").into_bytes()
}

/// Verify a Response against a secret (constant time); if right, the
/// authenticator's keys.
pub(crate) fn verify(
    secret: &Secret,
    challenge: &[u8; 8],
    value: &ResponseValue,
) -> Option<MasterKeys> {
    let hash = secret.nt_hash();
    // Computed whatever the flag says, so that a refusal takes as long as
    // a check.
    let ok = verify_nt_challenge_response(challenge, &hash, &value.nt_response);
    (ok && value.use_nt == 1).then(|| MasterKeys::from_mschapv1(&hash, challenge))
}

// ---------------------------------------------------------------------------

enum ServerState {
    Idle,
    Challenged {
        id: u8,
        challenge: [u8; 8],
    },
    Pending {
        id: u8,
        challenge: [u8; 8],
        name: Vec<u8>,
        value: ResponseValue,
    },
    Finished,
}

/// MS-CHAPv1 authenticator.
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

    /// Send the final Success/Failure; the user name of the pending
    /// Response, if there was one.
    fn answer(&mut self, code: u8, message: &[u8]) -> Option<String> {
        let ServerState::Pending { id, name, .. } = &self.state else {
            return None;
        };
        let (id, username) = (*id, lossy(name));
        let packet = build_chap_message(code, id, message);
        self.io.send(packet.clone());
        self.answered = Some((id, packet));
        self.state = ServerState::Finished;
        Some(username)
    }

    fn succeed(&mut self, message: &str, keys: Option<MasterKeys>) {
        if let Some(username) = self.answer(chap_code::SUCCESS, message.as_bytes()) {
            self.io.succeed(AuthSuccess {
                username,
                protocol: AuthProtocol::MsChapV1,
                keys,
            });
        }
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
        let mut challenge = [0u8; CHALLENGE_LEN];
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
        let Ok(value) = ResponseValue::parse(value) else {
            return;
        };
        if id != expected {
            return;
        }
        self.io.stop();
        self.state = ServerState::Pending {
            id,
            challenge,
            name: name.to_vec(),
            value,
        };
        self.io.request(AuthRequest {
            username: lossy(name),
            method: AuthMethod::MsChapV1,
            credentials: Credentials::MsChapV1 {
                id,
                challenge,
                lm_response: value.lm_response,
                nt_response: value.nt_response,
                use_nt: value.use_nt,
            },
        });
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.state = ServerState::Finished;
            self.io
                .fail(Rejection::Timeout, "no MS-CHAP Response from the peer");
        }
    }

    fn provide_secret(&mut self, now: Instant, secret: Secret) {
        self.provide_secret_then_reject(now, secret, None, "");
    }

    fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: Secret,
        refusal: Option<Rejection>,
        message: &str,
    ) {
        let ServerState::Pending {
            challenge, value, ..
        } = &self.state
        else {
            return;
        };
        match (verify(&secret, challenge, value), refusal) {
            (Some(keys), None) => self.succeed("", Some(keys)),
            (Some(_), Some(rejection)) => self.reject(now, rejection, message),
            (None, _) => {
                let why = if value.use_nt == 1 {
                    "wrong password"
                } else {
                    "LM-only MS-CHAP Response (use-NT flag 0) not supported"
                };
                self.reject(now, Rejection::AuthenticationFailure, why)
            }
        }
    }

    fn reject(&mut self, _now: Instant, rejection: Rejection, message: &str) {
        // The text on the wire depends on the code alone (no detail that
        // would tell an unknown user from a wrong password).
        if self
            .answer(chap_code::FAILURE, &failure_message(rejection.code()))
            .is_some()
        {
            self.io.fail(rejection, message);
        }
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        let message = accept.message.clone().unwrap_or_default();
        self.succeed(&message, accept.keys);
    }
}

// ---------------------------------------------------------------------------

/// MS-CHAPv1 peer.
pub(crate) struct Client {
    io: Io,
    username: String,
    password_hash: Zeroizing<[u8; 16]>,
    /// The Challenge answered last (Identifier, value) and our Response.
    last: Option<(u8, [u8; 8], Vec<u8>)>,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, _rng: StdRng) -> Self {
        Client {
            io: Io::new(config.restart, config.max_transmits),
            password_hash: Zeroizing::new(nt_password_hash(&config.password)),
            username: config.username,
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
                let Ok(challenge) = <[u8; 8]>::try_from(value) else {
                    return;
                };
                if let Some((last_id, last_challenge, packet)) = &self.last {
                    if *last_id == id && *last_challenge == challenge {
                        // A retransmitted Challenge: the same Response.
                        let packet = packet.clone();
                        self.io.send(packet);
                        return;
                    }
                }
                let value = ResponseValue::compute(&challenge, &self.password_hash);
                let packet = build_chap_value(
                    chap_code::RESPONSE,
                    id,
                    &value.to_bytes(),
                    self.username.as_bytes(),
                );
                // Retransmitted on timeout in case the answer is lost; the
                // authenticator repeats it (RFC 1994 §4.2).
                self.io.send_reliable(now, packet.clone());
                self.last = Some((id, challenge, packet));
            }
            Ok(ChapPacket::Success { id, .. }) => {
                let Some((last_id, challenge, _)) = &self.last else {
                    return;
                };
                if *last_id != id {
                    return;
                }
                let keys = MasterKeys::from_mschapv1(&self.password_hash, challenge);
                self.io.succeed(AuthSuccess {
                    username: self.username.clone(),
                    protocol: AuthProtocol::MsChapV1,
                    keys: Some(keys),
                });
            }
            Ok(ChapPacket::Failure { id, message })
                if self.last.as_ref().map(|l| l.0) == Some(id) =>
            {
                // RFC 2433 §6: "E=" carries the code; anything else in the
                // message (R=, C=, V=, or pppd's " M=") is informative.
                match parse_failure_message(message) {
                    Ok(f) => {
                        let text = if f.message.is_empty() {
                            format!("MS-CHAP error {}", f.error)
                        } else {
                            f.message
                        };
                        self.io.fail(Rejection::from_code(f.error), text)
                    }
                    Err(_) => self
                        .io
                        .fail(Rejection::AuthenticationFailure, lossy(message)),
                }
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            self.io.fail(
                Rejection::Timeout,
                "no MS-CHAP answer from the authenticator",
            );
        }
    }
}
