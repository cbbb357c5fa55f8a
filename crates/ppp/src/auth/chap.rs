//! The CHAP exchange shared by CHAP-MD5 (RFC 1994), MS-CHAPv1 (RFC 2433)
//! and MS-CHAPv2 (RFC 2759), so that each method file keeps only its
//! Values, its checks and its Success/Failure texts.
//!
//! * Authenticator ([`ChapServer`]): a Challenge with a random Identifier,
//!   retransmitted until a Response with that Identifier arrives
//!   (RFC 1994 §4.1); the Response goes to the owner; the final
//!   Success/Failure is kept and sent again for a repeated Response
//!   (RFC 1994 §4.2).
//! * Peer ([`ChapPeer`]): a Response to each Challenge, retransmitted until
//!   the Success/Failure arrives; a repeated Challenge gets the same
//!   Response (RFC 1994 §4.2). MS-CHAPv2's peer, whose Response may also
//!   answer a Failure (RFC 2759 §6), keeps its own state.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::RngCore;

use super::packet::{
    build_chap_message, build_chap_value, chap_code, parse_chap_packet, ChapPacket,
};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthRequest, AuthSuccess, AuthenticatorConfig, Credentials,
    Io, PeerConfig, Rejection, Tick,
};

/// A Response the owner is checking: its Identifier, the Challenge it
/// answers, the peer's Name and the method's Value.
pub(crate) struct Response<const N: usize, V> {
    pub(crate) id: u8,
    pub(crate) challenge: [u8; N],
    pub(crate) name: Vec<u8>,
    pub(crate) value: V,
}

enum ServerState<const N: usize, V> {
    Idle,
    /// A Challenge (or an MS-CHAPv2 Failure with R=1) is outstanding,
    /// retransmitted by the timer.
    Challenged {
        id: u8,
        challenge: [u8; N],
    },
    /// The owner is checking this Response.
    Pending(Response<N, V>),
    Finished,
}

/// The authenticator side of the CHAP exchange, with an `N`-octet
/// Challenge and a Response Value of type `V`.
pub(crate) struct ChapServer<const N: usize, V> {
    pub(crate) io: Io,
    rng: StdRng,
    name: String,
    state: ServerState<N, V>,
    /// The last Success/Failure and the Response Identifier it answered.
    answered: Option<(u8, Vec<u8>)>,
}

impl<const N: usize, V> ChapServer<N, V> {
    pub(crate) fn new(config: &AuthenticatorConfig, rng: StdRng) -> Self {
        ChapServer {
            io: Io::new(config.restart, config.max_transmits),
            rng,
            name: config.name.clone(),
            state: ServerState::Idle,
            answered: None,
        }
    }

    /// `N` random octets: a Challenge value.
    pub(crate) fn random_challenge(&mut self) -> [u8; N] {
        let mut challenge = [0u8; N];
        self.rng.fill_bytes(&mut challenge);
        challenge
    }

    /// RFC 1994 §4.1: send the Challenge (our Name in it) and retransmit it
    /// until answered.
    pub(crate) fn start(&mut self, now: Instant) {
        if !matches!(self.state, ServerState::Idle) || self.io.finished() {
            return;
        }
        let id = self.rng.next_u32() as u8;
        let challenge = self.random_challenge();
        let packet = build_chap_value(chap_code::CHALLENGE, id, &challenge, self.name.as_bytes());
        self.io.send_reliable(now, packet);
        self.state = ServerState::Challenged { id, challenge };
    }

    /// A received packet. A repeat of an answered Response gets the same
    /// answer (RFC 1994 §4.2); a Response to the outstanding Challenge
    /// whose Value `parse` accepts becomes pending and goes to the owner
    /// as an [`AuthRequest`] of `method` with the `credentials` built from
    /// it. Anything else is dropped.
    pub(crate) fn handle_packet(
        &mut self,
        data: &[u8],
        parse: impl FnOnce(&[u8]) -> Option<V>,
        method: AuthMethod,
        credentials: impl FnOnce(&Response<N, V>) -> Credentials,
    ) {
        let Ok(ChapPacket::Response { id, value, name }) = parse_chap_packet(data) else {
            return;
        };
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
        let Some(value) = parse(value) else {
            return;
        };
        if id != expected {
            return;
        }
        self.io.stop();
        let response = Response {
            id,
            challenge,
            name: name.to_vec(),
            value,
        };
        let request = AuthRequest {
            username: lossy(name),
            method,
            credentials: credentials(&response),
        };
        self.state = ServerState::Pending(response);
        self.io.request(request);
    }

    /// The Response the owner is checking, if any.
    pub(crate) fn pending(&self) -> Option<&Response<N, V>> {
        match &self.state {
            ServerState::Pending(response) => Some(response),
            _ => None,
        }
    }

    /// The retransmission timer: give up with `what` once it runs out.
    pub(crate) fn handle_timeout(&mut self, now: Instant, what: &str) {
        if self.io.tick(now) == Tick::Expired {
            self.state = ServerState::Finished;
            self.io.fail(Rejection::Timeout, what);
        }
    }

    /// Send the final Success/Failure for the pending Response and keep it
    /// for repeats; the user name, or `None` if nothing is pending.
    fn answer(&mut self, code: u8, message: &[u8]) -> Option<String> {
        let ServerState::Pending(Response { id, name, .. }) = &self.state else {
            return None;
        };
        let (id, username) = (*id, lossy(name));
        let packet = build_chap_message(code, id, message);
        self.io.send(packet.clone());
        self.answered = Some((id, packet));
        self.state = ServerState::Finished;
        Some(username)
    }

    /// Accept the pending Response: a Success with `message`.
    pub(crate) fn succeed(
        &mut self,
        message: &[u8],
        protocol: AuthProtocol,
        keys: Option<crate::crypto::mppe_keys::MasterKeys>,
    ) {
        if let Some(username) = self.answer(chap_code::SUCCESS, message) {
            self.io.succeed(AuthSuccess {
                username,
                protocol,
                keys,
                msk: None,
            });
        }
    }

    /// Refuse the pending Response for good: a Failure with `message` on
    /// the wire, `detail` only in the local report.
    pub(crate) fn fail(&mut self, message: &[u8], rejection: Rejection, detail: &str) {
        if self.answer(chap_code::FAILURE, message).is_some() {
            self.io.fail(rejection, detail);
        }
    }

    /// RFC 2759 §6: refuse the pending Response with a Failure that lets
    /// the peer retry. The Failure acts as the next Challenge (`challenge`
    /// is its C=): it is retransmitted, and answered by a Response whose
    /// Identifier is the Failure's plus one.
    pub(crate) fn fail_with_retry(&mut self, now: Instant, message: &[u8], challenge: [u8; N]) {
        let ServerState::Pending(Response { id, .. }) = self.state else {
            return;
        };
        let packet = build_chap_message(chap_code::FAILURE, id, message);
        self.answered = Some((id, packet.clone()));
        self.state = ServerState::Challenged {
            id: id.wrapping_add(1),
            challenge,
        };
        self.io.send_reliable(now, packet);
    }
}

/// The peer side of the CHAP exchange (CHAP-MD5 and MS-CHAPv1).
pub(crate) struct ChapPeer {
    pub(crate) io: Io,
    /// The Challenge answered last (Identifier, Value) and our Response.
    last: Option<(u8, Vec<u8>, Vec<u8>)>,
}

impl ChapPeer {
    pub(crate) fn new(config: &PeerConfig) -> Self {
        ChapPeer {
            io: Io::new(config.restart, config.max_transmits),
            last: None,
        }
    }

    /// Wait for the Challenge (and give up after the whole retransmission
    /// budget).
    pub(crate) fn start(&mut self, now: Instant) {
        if self.last.is_none() && !self.io.finished() {
            self.io.wait(now);
        }
    }

    /// A received packet, unless the exchange is over. A Challenge is
    /// answered here; Success and Failure go to the caller.
    pub(crate) fn handle_packet<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
        respond: impl FnOnce(u8, &[u8]) -> Option<Vec<u8>>,
    ) -> Option<ChapPacket<'a>> {
        if self.io.finished() {
            return None;
        }
        match parse_chap_packet(data).ok()? {
            ChapPacket::Challenge { id, value, .. } => {
                self.answer_challenge(now, id, value, respond);
                None
            }
            other => Some(other),
        }
    }

    /// A Challenge: a repeat of the one answered last gets the same
    /// Response; a new one the Response `respond` builds (`None`: the
    /// Value is not one this method can answer).
    fn answer_challenge(
        &mut self,
        now: Instant,
        id: u8,
        value: &[u8],
        respond: impl FnOnce(u8, &[u8]) -> Option<Vec<u8>>,
    ) {
        if let Some((last_id, last_value, packet)) = &self.last {
            if *last_id == id && last_value == value {
                let packet = packet.clone();
                self.io.send(packet);
                return;
            }
        }
        let Some(packet) = respond(id, value) else {
            return;
        };
        // Retransmitted on timeout in case the Success/Failure is lost;
        // the authenticator repeats it (RFC 1994 §4.2).
        self.io.send_reliable(now, packet.clone());
        self.last = Some((id, value.to_vec(), packet));
    }

    /// The Challenge Value our last Response answered, if `id` is that
    /// Response's Identifier (a Success/Failure for it).
    pub(crate) fn answered(&self, id: u8) -> Option<&[u8]> {
        match &self.last {
            Some((last_id, value, _)) if *last_id == id => Some(value),
            _ => None,
        }
    }

    /// The timer: give up with `what` once it runs out.
    pub(crate) fn handle_timeout(&mut self, now: Instant, what: &str) {
        if self.io.tick(now) == Tick::Expired {
            self.io.fail(Rejection::Timeout, what);
        }
    }
}
