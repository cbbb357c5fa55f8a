//! MS-CHAPv2 over PPP CHAP, RFC 2759.
//!
//! * Challenge (RFC 2759 §3): Value-Size 16, 16 random octets, Name.
//! * Response (RFC 2759 §4): Value-Size 49: Peer-Challenge (16), Reserved
//!   (8, zero), NT-Response (24), Flags (1, zero); Name = the user name.
//! * Success (RFC 2759 §5): "S=<auth_string> M=<message>"; this module
//!   leaves out " M=" when the message is empty, as Windows does.
//! * Failure (RFC 2759 §6): "E=eeeeeeeeee R=r C=cccc... V=vvvvvvvvvv
//!   M=<msg>"; with R=1 the peer may answer the C= challenge with a new
//!   Response whose Identifier is one greater than the Failure's.
//!
//! Change-Password (RFC 2759 §7, code 7) is not implemented: a 648
//! (password expired) is final.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::chap::ChapServer;
use super::packet::{build_chap_value, chap_code, parse_chap_packet, ChapPacket, ParseError};
use super::{
    lossy, AuthEvent, AuthFailure, AuthMethod, AuthProtocol, AuthSuccess, AuthenticatorConfig,
    Credentials, ExternalAccept, Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine,
    Tick, Verdict,
};
use crate::crypto::mppe_keys::MasterKeys;
use crate::crypto::mschap::{
    authenticator_response_string, check_authenticator_response, generate_authenticator_response,
    generate_nt_response, nt_password_hash, strip_domain, verify_nt_response,
};

pub use super::packet::parse_chap_packet as parse_packet;

/// RFC 2759 §2: CHAP algorithm 0x81.
pub const ALGORITHM: u8 = 0x81;
/// RFC 2759 §4: the Response Value is 49 octets.
pub const RESPONSE_VALUE_LEN: usize = 49;
/// RFC 2759 §6: "V=3" for MS-CHAPv2.
pub const VERSION: u32 = 3;

/// The Value of an MS-CHAPv2 Response (RFC 2759 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseValue {
    pub peer_challenge: [u8; 16],
    pub nt_response: [u8; 24],
    pub flags: u8,
}

impl ResponseValue {
    /// Parse the 49-octet Value. The Reserved octets are not checked.
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        if value.len() != RESPONSE_VALUE_LEN {
            return Err(ParseError::Malformed("MS-CHAPv2 Response Value"));
        }
        let mut peer_challenge = [0u8; 16];
        peer_challenge.copy_from_slice(&value[..16]);
        let mut nt_response = [0u8; 24];
        nt_response.copy_from_slice(&value[24..48]);
        Ok(ResponseValue {
            peer_challenge,
            nt_response,
            flags: value[48],
        })
    }

    pub fn to_bytes(&self) -> [u8; RESPONSE_VALUE_LEN] {
        let mut out = [0u8; RESPONSE_VALUE_LEN];
        out[..16].copy_from_slice(&self.peer_challenge);
        out[24..48].copy_from_slice(&self.nt_response);
        out[48] = self.flags;
        out
    }

    /// The peer's computation (RFC 2759 §8.1, GenerateNTResponse), with the
    /// domain stripped from `user_name` for ChallengeHash (RFC 2759 §4).
    pub fn compute(
        authenticator_challenge: &[u8; 16],
        peer_challenge: &[u8; 16],
        user_name: &[u8],
        password_hash: &[u8; 16],
    ) -> Self {
        ResponseValue {
            peer_challenge: *peer_challenge,
            nt_response: generate_nt_response(
                authenticator_challenge,
                peer_challenge,
                strip_domain(user_name),
                password_hash,
            ),
            flags: 0,
        }
    }
}

/// Build a Challenge packet (RFC 2759 §3).
pub fn build_challenge(id: u8, challenge: &[u8; 16], name: &[u8]) -> Vec<u8> {
    build_chap_value(chap_code::CHALLENGE, id, challenge, name)
}

/// Build a Response packet (RFC 2759 §4).
pub fn build_response(id: u8, value: &ResponseValue, name: &[u8]) -> Vec<u8> {
    build_chap_value(chap_code::RESPONSE, id, &value.to_bytes(), name)
}

/// The message of a Success packet (RFC 2759 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuccessMessage<'a> {
    /// "S=" and 40 hex digits.
    pub authenticator_response: &'a [u8],
    /// The text after " M=", if any.
    pub message: &'a [u8],
}

/// Parse "S=<40 hex> M=<msg>" (RFC 2759 §5); the " M=" part is optional.
pub fn parse_success_message(m: &[u8]) -> Result<SuccessMessage<'_>, ParseError> {
    if m.len() < 42 || !m.starts_with(b"S=") || !m[2..42].iter().all(u8::is_ascii_hexdigit) {
        return Err(ParseError::Malformed("MS-CHAPv2 Success message"));
    }
    let rest = &m[42..];
    let message = rest.strip_prefix(b" M=").unwrap_or(b"");
    Ok(SuccessMessage {
        authenticator_response: &m[..42],
        message,
    })
}

/// Format a Success message: "S=<40 hex>", plus " M=<message>" when the
/// message is not empty.
pub fn success_message(authenticator_response: &[u8; 42], message: &str) -> Vec<u8> {
    let mut out = authenticator_response.to_vec();
    if !message.is_empty() {
        out.extend_from_slice(b" M=");
        out.extend_from_slice(message.as_bytes());
    }
    out
}

/// The fields of a Failure message (RFC 2759 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureMessage {
    /// E=: the error code (691, 646, 647, 648, 649, 709).
    pub error: u32,
    /// R=1: the peer may retry.
    pub retry: bool,
    /// C=: the challenge for the retry.
    pub challenge: Option<[u8; 16]>,
    /// V=: the protocol version (3).
    pub version: Option<u32>,
    /// M=: the text, up to the end of the message.
    pub message: String,
}

fn hex16(text: &[u8]) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn decimal(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Parse a Failure message (RFC 2759 §6). "E=" is required; unknown
/// fields are skipped; "M=" runs to the end.
pub fn parse_failure_message(m: &[u8]) -> Result<FailureMessage, ParseError> {
    let mut error = None;
    let mut retry = false;
    let mut challenge = None;
    let mut version = None;
    let mut message = String::new();
    let mut rest = m;
    loop {
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            break;
        }
        if let Some(text) = rest.strip_prefix(b"M=") {
            message = lossy(text);
            break;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        rest = tail;
        match token {
            [b'E', b'=', v @ ..] => error = decimal(v),
            [b'R', b'=', v @ ..] => retry = v == b"1",
            [b'C', b'=', v @ ..] => challenge = hex16(v),
            [b'V', b'=', v @ ..] => version = decimal(v),
            _ => {}
        }
    }
    let error = error.ok_or(ParseError::Malformed("MS-CHAPv2 Failure message"))?;
    Ok(FailureMessage {
        error,
        retry,
        challenge,
        version,
        message,
    })
}

/// Format a Failure message: "E=<code> R=<0|1> C=<32 hex> V=3 M=<msg>".
pub fn failure_message(error: u32, retry: bool, challenge: &[u8; 16], message: &str) -> Vec<u8> {
    let mut out = format!("E={error} R={} C=", u8::from(retry));
    for b in challenge {
        out.push_str(&format!("{b:02X}"));
    }
    out.push_str(&format!(" V={VERSION} M={message}"));
    out.into_bytes()
}

/// The checks shared by the plain and the EAP authenticator: verify a
/// Response against a secret (RFC 2759 §8.1, constant time) and, if it is
/// right, the success to give, as an outside server would have answered:
/// the authenticator response "S=" (RFC 2759 §8.7) and the server's keys.
pub(crate) fn verify(
    secret: &Secret,
    authenticator_challenge: &[u8; 16],
    name: &[u8],
    value: &ResponseValue,
) -> Option<ExternalAccept> {
    let hash = secret.nt_hash();
    let user = strip_domain(name);
    if !verify_nt_response(
        authenticator_challenge,
        &value.peer_challenge,
        user,
        &hash,
        &value.nt_response,
    ) {
        return None;
    }
    let digest = generate_authenticator_response(
        &hash,
        &value.nt_response,
        &value.peer_challenge,
        authenticator_challenge,
        user,
    );
    Some(ExternalAccept {
        mschapv2_success: Some(authenticator_response_string(&digest)),
        keys: Some(MasterKeys::from_mschapv2(&hash, &value.nt_response, true)),
        ..ExternalAccept::default()
    })
}

/// The Success text for an [`ExternalAccept`]: RADIUS's "S=" plus " M=".
pub(crate) fn external_success_message(accept: &ExternalAccept) -> Vec<u8> {
    let message = accept.message.as_deref().unwrap_or("");
    match &accept.mschapv2_success {
        Some(s) => success_message(s, message),
        // Without the S= the peer cannot authenticate us (RFC 2759 §5);
        // send what we have and let it decide.
        None => message.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------

/// MS-CHAPv2 authenticator.
pub(crate) struct Server {
    chap: ChapServer<16, ResponseValue>,
    retries_left: u8,
}

impl Server {
    pub(crate) fn new(config: AuthenticatorConfig, rng: StdRng) -> Self {
        Server {
            chap: ChapServer::new(&config, rng),
            retries_left: config.max_retries,
        }
    }
}

impl ServerMachine for Server {
    fn io(&mut self) -> &mut Io {
        &mut self.chap.io
    }
    fn io_ref(&self) -> &Io {
        &self.chap.io
    }

    fn start(&mut self, now: Instant) {
        self.chap.start(now);
    }

    fn handle_packet(&mut self, _now: Instant, data: &[u8]) {
        self.chap.handle_packet(
            data,
            |value| ResponseValue::parse(value).ok(),
            AuthMethod::MsChapV2,
            |r| Credentials::MsChapV2 {
                id: r.id,
                authenticator_challenge: r.challenge,
                peer_challenge: r.value.peer_challenge,
                nt_response: r.value.nt_response,
                flags: r.value.flags,
            },
        );
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.chap
            .handle_timeout(now, "no MS-CHAPv2 Response from the peer");
    }

    fn check_secret(&self, secret: &Secret) -> Verdict {
        let Some(r) = self.chap.pending() else {
            return Verdict::NotPending;
        };
        match verify(secret, &r.challenge, &r.name, &r.value) {
            Some(accept) => Verdict::Right(accept),
            None => Verdict::Wrong("wrong password"),
        }
    }

    fn reject(&mut self, now: Instant, rejection: Rejection, message: &str) {
        if self.chap.pending().is_none() {
            return;
        }
        // RFC 2759 §6: R=1 lets the peer retry with the C= challenge.
        let retry = rejection == Rejection::AuthenticationFailure && self.retries_left > 0;
        let challenge = self.chap.random_challenge();
        // "M=" depends on the code alone; `message` (the owner's detail)
        // is only reported locally.
        let text = failure_message(rejection.code(), retry, &challenge, rejection.peer_text());
        if retry {
            self.retries_left -= 1;
            self.chap.fail_with_retry(now, &text, challenge);
        } else {
            self.chap.fail(&text, rejection, message);
        }
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        if self.chap.pending().is_some() {
            let text = external_success_message(&accept);
            self.chap
                .succeed(&text, AuthProtocol::MsChapV2, accept.keys);
        }
    }
}

// ---------------------------------------------------------------------------

enum ClientState {
    Waiting,
    /// Our Response is outstanding. `trigger` is the (code, Identifier) of
    /// the packet it answers, so that a repeat of it gets the same Response.
    Responded {
        trigger: (u8, u8),
        id: u8,
        authenticator_challenge: [u8; 16],
        value: ResponseValue,
        packet: Vec<u8>,
    },
    /// The server sent R=1; waiting for the owner's retry().
    RetryOffered {
        failure_id: u8,
        challenge: [u8; 16],
        failure: AuthFailure,
    },
    Finished,
}

/// MS-CHAPv2 peer.
pub(crate) struct Client {
    io: Io,
    rng: StdRng,
    username: String,
    password_hash: Zeroizing<[u8; 16]>,
    state: ClientState,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, rng: StdRng) -> Self {
        Client {
            io: Io::new(config.restart, config.max_transmits),
            rng,
            password_hash: Zeroizing::new(nt_password_hash(&config.password)),
            username: config.username,
            state: ClientState::Waiting,
        }
    }

    fn respond(&mut self, now: Instant, trigger: (u8, u8), id: u8, challenge: [u8; 16]) {
        let mut peer_challenge = [0u8; 16];
        self.rng.fill_bytes(&mut peer_challenge);
        let value = ResponseValue::compute(
            &challenge,
            &peer_challenge,
            self.username.as_bytes(),
            &self.password_hash,
        );
        let packet = build_response(id, &value, self.username.as_bytes());
        // Retransmitted on timeout in case the answer is lost; the
        // authenticator repeats it (RFC 1994 §4.2).
        self.io.send_reliable(now, packet.clone());
        self.state = ClientState::Responded {
            trigger,
            id,
            authenticator_challenge: challenge,
            value,
            packet,
        };
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
        if matches!(self.state, ClientState::Waiting) && !self.io.finished() {
            self.io.wait(now);
        }
    }

    fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        if self.io.finished() {
            return;
        }
        let Ok(packet) = parse_chap_packet(data) else {
            return;
        };
        let (code, pid) = match packet {
            ChapPacket::Challenge { id, .. } => (chap_code::CHALLENGE, id),
            ChapPacket::Response { .. } => return,
            ChapPacket::Success { id, .. } => (chap_code::SUCCESS, id),
            ChapPacket::Failure { id, .. } => (chap_code::FAILURE, id),
        };
        if let ClientState::Responded {
            trigger, packet, ..
        } = &self.state
        {
            if *trigger == (code, pid) {
                // A repeat of what we answered: the same Response.
                let packet = packet.clone();
                self.io.send(packet);
                return;
            }
        }
        match packet {
            ChapPacket::Challenge { id, value, .. } => {
                let Ok(challenge) = <[u8; 16]>::try_from(value) else {
                    return;
                };
                if matches!(
                    self.state,
                    ClientState::Waiting | ClientState::Responded { .. }
                ) {
                    self.respond(now, (chap_code::CHALLENGE, id), id, challenge);
                }
            }
            ChapPacket::Success { id, message } => {
                let ClientState::Responded {
                    id: expected,
                    authenticator_challenge,
                    value,
                    ..
                } = &self.state
                else {
                    return;
                };
                if id != *expected {
                    return;
                }
                // RFC 2759 §5: the peer checks the authenticator response
                // and MUST end the session if it is wrong.
                let ok = parse_success_message(message).is_ok_and(|s| {
                    check_authenticator_response(
                        &self.password_hash,
                        &value.nt_response,
                        &value.peer_challenge,
                        authenticator_challenge,
                        strip_domain(self.username.as_bytes()),
                        s.authenticator_response,
                    )
                });
                if ok {
                    let keys =
                        MasterKeys::from_mschapv2(&self.password_hash, &value.nt_response, false);
                    self.state = ClientState::Finished;
                    self.io.succeed(AuthSuccess {
                        username: self.username.clone(),
                        protocol: AuthProtocol::MsChapV2,
                        keys: Some(keys),
                        msk: None,
                    });
                } else {
                    self.state = ClientState::Finished;
                    self.io.fail(
                        Rejection::ServerNotAuthenticated,
                        "the authenticator's MS-CHAPv2 Success (S=) is wrong or missing",
                    );
                }
            }
            ChapPacket::Failure { id, message } => {
                let ClientState::Responded { id: expected, .. } = &self.state else {
                    return;
                };
                if id != *expected {
                    return;
                }
                match parse_failure_message(message) {
                    Ok(f) => {
                        let failure = AuthFailure {
                            rejection: Rejection::from_code(f.error),
                            message: f.message,
                        };
                        match f.challenge {
                            Some(challenge) if f.retry => {
                                self.state = ClientState::RetryOffered {
                                    failure_id: id,
                                    challenge,
                                    failure: failure.clone(),
                                };
                                self.io.wait(now);
                                self.io.event(AuthEvent::RetryAllowed(failure));
                            }
                            _ => {
                                self.state = ClientState::Finished;
                                self.io.fail(failure.rejection, failure.message);
                            }
                        }
                    }
                    Err(_) => {
                        self.state = ClientState::Finished;
                        self.io
                            .fail(Rejection::AuthenticationFailure, lossy(message));
                    }
                }
            }
            ChapPacket::Response { .. } => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.io.tick(now) == Tick::Expired {
            let state = std::mem::replace(&mut self.state, ClientState::Finished);
            match state {
                ClientState::RetryOffered { failure, .. } => {
                    self.io.fail(failure.rejection, failure.message)
                }
                _ => self.io.fail(
                    Rejection::Timeout,
                    "no MS-CHAPv2 answer from the authenticator",
                ),
            }
        }
    }

    fn retry(&mut self, now: Instant, password: Zeroizing<String>) {
        let ClientState::RetryOffered {
            failure_id,
            challenge,
            ..
        } = self.state
        else {
            return;
        };
        self.password_hash = Zeroizing::new(nt_password_hash(&password));
        // RFC 2759 §6: answer the C= challenge; the Identifier is the
        // Failure's plus one (as Windows peers do).
        self.respond(
            now,
            (chap_code::FAILURE, failure_id),
            failure_id.wrapping_add(1),
            challenge,
        );
    }

    fn decline_retry(&mut self, _now: Instant) {
        if let ClientState::RetryOffered { failure, .. } = &self.state {
            let failure = failure.clone();
            self.state = ClientState::Finished;
            self.io.fail(failure.rejection, failure.message);
        }
    }
}
