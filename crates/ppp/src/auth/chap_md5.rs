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
use subtle::ConstantTimeEq;

use super::chap::{ChapPeer, ChapServer};
use super::packet::{build_chap_value, chap_code, ChapPacket};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthSuccess, AuthenticatorConfig, Credentials, ExternalAccept,
    Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine, Verdict,
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

/// CHAP-MD5 authenticator: a 16-octet Challenge, the 16-octet MD5 as the
/// Response Value.
pub(crate) struct Server {
    chap: ChapServer<16, [u8; 16]>,
}

impl Server {
    pub(crate) fn new(config: AuthenticatorConfig, rng: StdRng) -> Self {
        Server {
            chap: ChapServer::new(&config, rng),
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
            |value| <[u8; 16]>::try_from(value).ok(),
            AuthMethod::ChapMd5,
            |r| Credentials::ChapMd5 {
                id: r.id,
                challenge: r.challenge.to_vec(),
                response: r.value,
            },
        );
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.chap
            .handle_timeout(now, "no CHAP Response from the peer");
    }

    fn check_secret(&self, secret: &Secret) -> Verdict {
        let Some(r) = self.chap.pending() else {
            return Verdict::NotPending;
        };
        match secret {
            Secret::Password(p) => {
                let expected = response_value(r.id, p.as_bytes(), &r.challenge);
                if bool::from(expected.ct_eq(&r.value)) {
                    Verdict::Right(ExternalAccept::default())
                } else {
                    Verdict::Wrong("wrong password")
                }
            }
            // Nothing to check against: to the peer this is a wrong
            // password like any other (the text below is for the log).
            Secret::NtHash(_) => Verdict::Wrong(
                "CHAP-MD5 needs the cleartext password, the user store only has an NT hash",
            ),
        }
    }

    fn reject(&mut self, _now: Instant, rejection: Rejection, message: &str) {
        // The Failure's text depends on the code alone; `message` (the
        // owner's detail) is only reported locally.
        self.chap
            .fail(rejection.peer_text().as_bytes(), rejection, message);
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        let message = accept.message.clone().unwrap_or_default();
        self.chap
            .succeed(message.as_bytes(), AuthProtocol::ChapMd5, accept.keys);
    }
}

// ---------------------------------------------------------------------------

/// CHAP-MD5 peer.
pub(crate) struct Client {
    chap: ChapPeer,
    config: PeerConfig,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, _rng: StdRng) -> Self {
        Client {
            chap: ChapPeer::new(&config),
            config,
        }
    }
}

impl PeerMachine for Client {
    fn io(&mut self) -> &mut Io {
        &mut self.chap.io
    }
    fn io_ref(&self) -> &Io {
        &self.chap.io
    }

    fn start(&mut self, now: Instant) {
        self.chap.start(now);
    }

    fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        let (username, password) = (&self.config.username, &self.config.password);
        let packet = self.chap.handle_packet(now, data, |id, challenge| {
            let response = response_value(id, password.as_bytes(), challenge);
            Some(build_chap_value(
                chap_code::RESPONSE,
                id,
                &response,
                username.as_bytes(),
            ))
        });
        match packet {
            Some(ChapPacket::Success { id, .. }) if self.chap.answered(id).is_some() => {
                self.chap.io.succeed(AuthSuccess {
                    username: self.config.username.clone(),
                    protocol: AuthProtocol::ChapMd5,
                    keys: None,
                    msk: None,
                });
            }
            Some(ChapPacket::Failure { id, message }) if self.chap.answered(id).is_some() => {
                self.chap
                    .io
                    .fail(Rejection::AuthenticationFailure, lossy(message));
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.chap
            .handle_timeout(now, "no CHAP answer from the authenticator");
    }
}
