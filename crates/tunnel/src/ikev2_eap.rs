//! EAP inside IKEv2 (RFC 7296 §2.16) with the PPP crate's EAP state
//! machines: the server side runs `ppp::auth::Authenticator` (EAP-Identity,
//! then EAP-MSCHAPv2 against the owner's user store, or pass-through to
//! RADIUS, RFC 3579) and the client side `ppp::auth::Peer`. IKE carries
//! each EAP message in an IKE_AUTH exchange, which is reliable, so the
//! machines' own retransmission timers are never run here.
//!
//! The MSK that keys both final AUTH payloads: for EAP-MSCHAPv2 it is the
//! authenticator's MasterReceiveKey followed by its MasterSendKey (RFC
//! 3079 §3.4 GetAsymmetricStartKey, 16 octets each; draft-kamath-pppext-
//! eap-mschapv2 pads them with 32 zero octets to 64). HMAC pads short keys
//! with zeros to its block size (RFC 2104 §2), so both lengths give the
//! same AUTH.

use std::time::Instant;

use ipsec::ikev2::EapReply;
use ppp::auth::{
    AuthEvent, AuthProtocol, AuthRequest, Authenticator, AuthenticatorConfig, Peer, PeerConfig,
};
use ppp::crypto::mppe_keys::MasterKeys;
use zeroize::Zeroizing;

/// The MSK of EAP-MSCHAPv2 from the authenticator's master keys.
fn msk_from_authenticator(keys: &MasterKeys) -> Zeroizing<Vec<u8>> {
    let mut msk = Zeroizing::new(Vec::with_capacity(64));
    msk.extend_from_slice(&keys.recv);
    msk.extend_from_slice(&keys.send);
    msk.resize(64, 0);
    msk
}

/// The same MSK from the peer's keys: the authenticator's receive key is
/// the peer's send key.
fn msk_from_peer(keys: &MasterKeys) -> Zeroizing<Vec<u8>> {
    let mut msk = Zeroizing::new(Vec::with_capacity(64));
    msk.extend_from_slice(&keys.send);
    msk.extend_from_slice(&keys.recv);
    msk.resize(64, 0);
    msk
}

/// What the server side asks of its owner next.
pub enum ServerStep {
    /// Give this to `Ikev2Responder::eap_reply`.
    Reply(EapReply),
    /// Check these credentials, then call `provide_secret`, `reject` or
    /// `accept_external` on the [`IkeEapServer`].
    Check(AuthRequest),
    /// Nothing to send (a malformed or unexpected EAP message was dropped).
    Nothing,
}

/// The EAP server of one IKE SA.
pub struct IkeEapServer {
    auth: Authenticator,
}

impl IkeEapServer {
    /// `name` is the MS-CHAPv2 authenticator name; `pass_through` hands
    /// every EAP Response to RADIUS instead of running EAP-MSCHAPv2 here.
    pub fn new(name: &str, pass_through: bool, rng: &mut impl rand::RngCore) -> Self {
        let mut config = AuthenticatorConfig::new(name);
        config.eap_pass_through = pass_through;
        // One try: a wrong password ends the IKE SA (Windows then asks the
        // user again with a new connection).
        config.max_retries = 0;
        IkeEapServer {
            auth: Authenticator::new(AuthProtocol::Eap, config, rng),
        }
    }

    /// The first Request (EAP-Identity, RFC 3748 §5.1).
    pub fn start(&mut self, now: Instant) -> ServerStep {
        self.auth.start(now);
        self.step()
    }

    /// The client's EAP Response.
    pub fn response(&mut self, now: Instant, packet: &[u8]) -> ServerStep {
        self.auth.handle_packet(now, packet);
        self.step()
    }

    /// The owner's user store answered a [`ServerStep::Check`].
    pub fn provide_secret(&mut self, now: Instant, secret: ppp::auth::Secret) -> ServerStep {
        self.auth.provide_secret(now, secret);
        self.step()
    }

    /// The owner refuses (unknown user checked against a stand-in secret is
    /// better: see `Authenticator::provide_secret_then_reject`).
    pub fn reject(
        &mut self,
        now: Instant,
        rejection: ppp::auth::Rejection,
        message: &str,
    ) -> ServerStep {
        self.auth.reject(now, rejection, message);
        self.step()
    }

    /// Like `provide_secret`, but refuses even a right password with
    /// `rejection` (disabled account, unknown user with a stand-in).
    pub fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: ppp::auth::Secret,
        rejection: ppp::auth::Rejection,
        message: &str,
    ) -> ServerStep {
        self.auth
            .provide_secret_then_reject(now, secret, rejection, message);
        self.step()
    }

    /// RADIUS accepted (pass-through or MS-CHAPv2 attributes).
    pub fn accept_external(
        &mut self,
        now: Instant,
        accept: ppp::auth::ExternalAccept,
    ) -> ServerStep {
        self.auth.accept_external(now, accept);
        self.step()
    }

    /// RADIUS sent an Access-Challenge carrying the next EAP Request.
    pub fn eap_challenge(&mut self, now: Instant, message: Vec<u8>) -> ServerStep {
        self.auth.eap_challenge(now, message);
        self.step()
    }

    fn step(&mut self) -> ServerStep {
        let mut last = None;
        while let Some(packet) = self.auth.poll_transmit() {
            last = Some(packet);
        }
        let mut check = None;
        let mut done = None;
        while let Some(event) = self.auth.poll_event() {
            match event {
                AuthEvent::Request(request) => check = Some(request),
                AuthEvent::Success(success) => done = Some(Ok(success)),
                AuthEvent::Failure(failure) => done = Some(Err(failure)),
                AuthEvent::RetryAllowed(_) => {}
            }
        }
        match (done, last, check) {
            (Some(Ok(success)), packet, _) => {
                // Every EAP method we run makes keys; without them the
                // AUTH would be keyed with SK_pi/SK_pr (§2.16), which
                // Windows refuses, so a keyless success is a failure.
                // An MSK RADIUS gave whole (EAP-TLS, PEAP) is used as it
                // is; MS-CHAPv2's is built from its 16-octet keys.
                let msk = match (success.msk, success.keys.as_ref()) {
                    (Some(msk), _) => Some(msk.0),
                    (None, Some(keys)) => Some(msk_from_authenticator(keys)),
                    (None, None) => None,
                };
                match msk {
                    Some(msk) => ServerStep::Reply(EapReply::Success {
                        packet: packet.unwrap_or_else(|| ppp::auth::eap::build_success(0)),
                        msk,
                        identity: success.username,
                    }),
                    None => ServerStep::Reply(EapReply::Failure {
                        packet: ppp::auth::eap::build_failure(0),
                        reason: format!(
                            "EAP for {} succeeded without keys to bind IKE to",
                            success.username
                        ),
                    }),
                }
            }
            (Some(Err(failure)), packet, _) => ServerStep::Reply(EapReply::Failure {
                packet: packet.unwrap_or_else(|| ppp::auth::eap::build_failure(0)),
                reason: failure.message,
            }),
            (None, _, Some(request)) => ServerStep::Check(request),
            (None, Some(packet), None) => ServerStep::Reply(EapReply::Continue(packet)),
            (None, None, None) => ServerStep::Nothing,
        }
    }
}

/// What the client side does with a server's EAP message.
pub enum PeerStep {
    /// Send this EAP Response (`Ikev2Initiator::eap_response`).
    Respond(Vec<u8>),
    /// EAP succeeded: `Ikev2Initiator::eap_finished` with this MSK.
    Finished(Zeroizing<Vec<u8>>),
    /// Authentication failed; the reason is for the user.
    Failed(String),
    Nothing,
}

/// The EAP peer of one IKE SA (`ras connect ikev2://` with a user name and
/// password).
pub struct IkeEapPeer {
    peer: Peer,
}

impl IkeEapPeer {
    pub fn new(user: &str, password: &str, rng: &mut impl rand::RngCore) -> Self {
        let mut peer = Peer::new(AuthProtocol::Eap, PeerConfig::new(user, password), rng);
        peer.start(Instant::now());
        IkeEapPeer { peer }
    }

    /// An EAP Request, Success or Failure from the server.
    pub fn handle(&mut self, now: Instant, packet: &[u8]) -> PeerStep {
        self.peer.handle_packet(now, packet);
        let mut last = None;
        while let Some(p) = self.peer.poll_transmit() {
            last = Some(p);
        }
        while let Some(event) = self.peer.poll_event() {
            match event {
                AuthEvent::Success(success) => {
                    return match success.keys.as_ref() {
                        Some(keys) => PeerStep::Finished(msk_from_peer(keys)),
                        None => PeerStep::Failed("EAP succeeded without keys".into()),
                    };
                }
                AuthEvent::Failure(failure) | AuthEvent::RetryAllowed(failure) => {
                    return PeerStep::Failed(format!(
                        "the server refused the login: {} (error {})",
                        failure.message,
                        failure.rejection.code()
                    ));
                }
                AuthEvent::Request(_) => {}
            }
        }
        match last {
            Some(p) => PeerStep::Respond(p),
            None => PeerStep::Nothing,
        }
    }
}

#[cfg(test)]
#[path = "ikev2_eap_tests.rs"]
mod tests;
