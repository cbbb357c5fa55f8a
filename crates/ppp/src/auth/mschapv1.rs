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
use zeroize::Zeroizing;

use super::chap::{ChapPeer, ChapServer};
use super::mschapv2::parse_failure_message;
use super::packet::{build_chap_value, chap_code, ChapPacket, ParseError};
use super::{
    lossy, AuthMethod, AuthProtocol, AuthSuccess, AuthenticatorConfig, Credentials, ExternalAccept,
    Io, PeerConfig, PeerMachine, Rejection, Secret, ServerMachine, Verdict,
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

/// MS-CHAPv1 authenticator.
pub(crate) struct Server {
    chap: ChapServer<CHALLENGE_LEN, ResponseValue>,
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
            |value| ResponseValue::parse(value).ok(),
            AuthMethod::MsChapV1,
            |r| Credentials::MsChapV1 {
                id: r.id,
                challenge: r.challenge,
                lm_response: r.value.lm_response,
                nt_response: r.value.nt_response,
                use_nt: r.value.use_nt,
            },
        );
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.chap
            .handle_timeout(now, "no MS-CHAP Response from the peer");
    }

    fn check_secret(&self, secret: &Secret) -> Verdict {
        let Some(r) = self.chap.pending() else {
            return Verdict::NotPending;
        };
        match verify(secret, &r.challenge, &r.value) {
            Some(keys) => Verdict::Right(ExternalAccept {
                keys: Some(keys),
                ..ExternalAccept::default()
            }),
            None if r.value.use_nt == 1 => Verdict::Wrong("wrong password"),
            None => Verdict::Wrong("LM-only MS-CHAP Response (use-NT flag 0) not supported"),
        }
    }

    fn reject(&mut self, _now: Instant, rejection: Rejection, message: &str) {
        // The text on the wire depends on the code alone (no detail that
        // would tell an unknown user from a wrong password).
        self.chap
            .fail(&failure_message(rejection.code()), rejection, message);
    }

    fn accept_external(&mut self, _now: Instant, accept: ExternalAccept) {
        let message = accept.message.clone().unwrap_or_default();
        self.chap
            .succeed(message.as_bytes(), AuthProtocol::MsChapV1, accept.keys);
    }
}

// ---------------------------------------------------------------------------

/// MS-CHAPv1 peer.
pub(crate) struct Client {
    chap: ChapPeer,
    username: String,
    password_hash: Zeroizing<[u8; 16]>,
}

impl Client {
    pub(crate) fn new(config: PeerConfig, _rng: StdRng) -> Self {
        Client {
            chap: ChapPeer::new(&config),
            password_hash: Zeroizing::new(nt_password_hash(&config.password)),
            username: config.username,
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
        let (username, password_hash) = (&self.username, &self.password_hash);
        let packet = self.chap.handle_packet(now, data, |id, challenge| {
            let challenge = <&[u8; CHALLENGE_LEN]>::try_from(challenge).ok()?;
            let value = ResponseValue::compute(challenge, password_hash);
            Some(build_chap_value(
                chap_code::RESPONSE,
                id,
                &value.to_bytes(),
                username.as_bytes(),
            ))
        });
        match packet {
            Some(ChapPacket::Success { id, .. }) => {
                let Some(challenge) = self
                    .chap
                    .answered(id)
                    .and_then(|c| <&[u8; CHALLENGE_LEN]>::try_from(c).ok())
                else {
                    return;
                };
                let keys = MasterKeys::from_mschapv1(&self.password_hash, challenge);
                self.chap.io.succeed(AuthSuccess {
                    username: self.username.clone(),
                    protocol: AuthProtocol::MsChapV1,
                    keys: Some(keys),
                    msk: None,
                });
            }
            Some(ChapPacket::Failure { id, message }) if self.chap.answered(id).is_some() => {
                // RFC 2433 §6: "E=" carries the code; anything else in the
                // message (R=, C=, V=, or pppd's " M=") is informative.
                match parse_failure_message(message) {
                    Ok(f) => {
                        let text = if f.message.is_empty() {
                            format!("MS-CHAP error {}", f.error)
                        } else {
                            f.message
                        };
                        self.chap.io.fail(Rejection::from_code(f.error), text)
                    }
                    Err(_) => self
                        .chap
                        .io
                        .fail(Rejection::AuthenticationFailure, lossy(message)),
                }
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.chap
            .handle_timeout(now, "no MS-CHAP answer from the authenticator");
    }
}
