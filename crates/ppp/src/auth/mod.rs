//! PPP authentication protocols as sans-IO state machines, in both roles.
//!
//! * [`Authenticator`]: the side that demands authentication (the server).
//!   It never decides alone whether a user may log in: every set of
//!   credentials comes out as [`AuthEvent::Request`], and the owner answers
//!   with [`Authenticator::provide_secret`] (a local user store: the state
//!   machine then verifies in constant time), [`Authenticator::reject`],
//!   [`Authenticator::accept_external`] (RADIUS said yes) or
//!   [`Authenticator::eap_challenge`] (RADIUS Access-Challenge in EAP
//!   pass-through, RFC 3579).
//! * [`Peer`]: the side that proves its identity (the client).
//!
//! Protocols: PAP (RFC 1334 §2), CHAP with MD5 (RFC 1994), MS-CHAPv1
//! (RFC 2433), MS-CHAPv2 (RFC 2759) and EAP (RFC 3748) with EAP-MSCHAPv2
//! (draft-kamath-pppext-eap-mschapv2) terminated locally, or any EAP method
//! passed through to an outside server.
//!
//! Both machines follow the crate's sans-IO convention: `handle_*` feeds
//! input, `poll_transmit` yields the payloads of PPP protocol
//! [`AuthProtocol::ppp_protocol`] to send (without the PPP header),
//! `poll_event` what happened, `poll_timeout` when to call
//! `handle_timeout`. Time only comes in as `now`.

mod chap;
pub mod chap_md5;
pub mod eap;
pub mod eap_mschapv2;
pub mod mschapv1;
pub mod mschapv2;
pub mod packet;
pub mod pap;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use crate::crypto::mppe_keys::MasterKeys;
use crate::crypto::mschap::nt_password_hash;

pub use packet::ParseError;

/// PPP protocol number of PAP (RFC 1334 §2).
pub const PPP_PAP: u16 = 0xC023;
/// PPP protocol number of CHAP (RFC 1994 §2), also used by MS-CHAPv1/v2.
pub const PPP_CHAP: u16 = 0xC223;
/// PPP protocol number of EAP (RFC 3748 §4).
pub const PPP_EAP: u16 = 0xC227;

/// An authentication protocol as negotiated by the LCP
/// Authentication-Protocol option (RFC 1661 §6.2, RFC 1994 §3,
/// RFC 2759 §2, RFC 3748 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// PAP, RFC 1334 §2.
    Pap,
    /// CHAP with MD5 (algorithm 5), RFC 1994.
    ChapMd5,
    /// CHAP with Microsoft algorithm 0x80 (MS-CHAP version 1), RFC 2433.
    MsChapV1,
    /// CHAP with Microsoft algorithm 0x81, RFC 2759.
    MsChapV2,
    /// EAP, RFC 3748.
    Eap,
}

impl AuthProtocol {
    /// The data of the LCP Authentication-Protocol option (RFC 1661 §6.2):
    /// the protocol number, and for CHAP the algorithm octet (RFC 1994 §3:
    /// 5 = MD5; RFC 2433 §2: 0x80 = MS-CHAPv1; RFC 2759 §2: 0x81 =
    /// MS-CHAPv2).
    pub fn option_data(self) -> &'static [u8] {
        match self {
            AuthProtocol::Pap => &[0xC0, 0x23],
            AuthProtocol::ChapMd5 => &[0xC2, 0x23, chap_md5::ALGORITHM],
            AuthProtocol::MsChapV1 => &[0xC2, 0x23, mschapv1::ALGORITHM],
            AuthProtocol::MsChapV2 => &[0xC2, 0x23, mschapv2::ALGORITHM],
            AuthProtocol::Eap => &[0xC2, 0x27],
        }
    }

    /// Parse the data of an Authentication-Protocol option; `None` for
    /// anything this module does not implement (e.g. CHAP with SHA-1).
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        match data {
            [0xC0, 0x23] => Some(AuthProtocol::Pap),
            [0xC2, 0x23, chap_md5::ALGORITHM] => Some(AuthProtocol::ChapMd5),
            [0xC2, 0x23, mschapv1::ALGORITHM] => Some(AuthProtocol::MsChapV1),
            [0xC2, 0x23, mschapv2::ALGORITHM] => Some(AuthProtocol::MsChapV2),
            [0xC2, 0x27] => Some(AuthProtocol::Eap),
            _ => None,
        }
    }

    /// The PPP protocol number of this protocol's packets.
    pub fn ppp_protocol(self) -> u16 {
        match self {
            AuthProtocol::Pap => PPP_PAP,
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2 => PPP_CHAP,
            AuthProtocol::Eap => PPP_EAP,
        }
    }
}

/// Which exchange produced an [`AuthRequest`]: tells the owner how to check
/// the credentials (and which RADIUS attributes to build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// PAP: cleartext password.
    Pap,
    /// CHAP-MD5: needs the cleartext password on the checking side.
    ChapMd5,
    /// MS-CHAPv1 over PPP CHAP (RFC 2433).
    MsChapV1,
    /// MS-CHAPv2 over PPP CHAP.
    MsChapV2,
    /// MS-CHAPv2 inside EAP (EAP type 26), terminated locally.
    EapMsChapV2,
    /// An EAP Response to hand to an outside EAP server (RFC 3579).
    EapPassThrough,
}

/// What the owner's user store knows about a user.
pub enum Secret {
    /// The cleartext password: works with every protocol.
    Password(Zeroizing<String>),
    /// The NT hash (MD4 of the UTF-16LE password, RFC 2759 §8.3): enough
    /// for MS-CHAPv2 (plain and EAP) and PAP, not for CHAP-MD5.
    NtHash(Zeroizing<[u8; 16]>),
}

impl Secret {
    /// The NT password hash of this secret (RFC 2759 §8.3).
    pub fn nt_hash(&self) -> Zeroizing<[u8; 16]> {
        match self {
            Secret::Password(p) => Zeroizing::new(nt_password_hash(p)),
            Secret::NtHash(h) => Zeroizing::new(**h),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Secret::Password(..)"),
            Secret::NtHash(_) => f.write_str("Secret::NtHash(..)"),
        }
    }
}

/// Credentials received from the peer, to be checked by the owner.
pub enum Credentials {
    /// RFC 1334 §2.2.1: the cleartext password of an Authenticate-Request.
    Pap { password: Zeroizing<Vec<u8>> },
    /// RFC 1994 §4.1: the response is MD5(id | secret | challenge).
    ChapMd5 {
        id: u8,
        challenge: Vec<u8>,
        response: [u8; 16],
    },
    /// RFC 2433 §4: the fields of an MS-CHAPv1 Response and the 8-octet
    /// Challenge it answers (RADIUS: MS-CHAP-Challenge and
    /// MS-CHAP-Response, RFC 2548 §2.1.3, §2.1.1).
    MsChapV1 {
        id: u8,
        challenge: [u8; 8],
        lm_response: [u8; 24],
        nt_response: [u8; 24],
        /// 1: the NT-Response is to be used.
        use_nt: u8,
    },
    /// RFC 2759 §4: the fields of a Response. `id` is the CHAP Identifier
    /// (for EAP: the MS-CHAPv2-ID), which RADIUS carries as the Ident of
    /// MS-CHAP2-Response (RFC 2548 §2.3.2).
    MsChapV2 {
        id: u8,
        authenticator_challenge: [u8; 16],
        peer_challenge: [u8; 16],
        nt_response: [u8; 24],
        flags: u8,
    },
    /// RFC 3579 §3.1: a whole EAP Response packet, for an EAP-Message
    /// attribute.
    EapPassThrough { message: Vec<u8> },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Pap { .. } => f.write_str("Pap { password: .. }"),
            Credentials::ChapMd5 { id, .. } => write!(f, "ChapMd5 {{ id: {id}, .. }}"),
            Credentials::MsChapV1 { id, use_nt, .. } => {
                write!(f, "MsChapV1 {{ id: {id}, use_nt: {use_nt}, .. }}")
            }
            Credentials::MsChapV2 { id, flags, .. } => {
                write!(f, "MsChapV2 {{ id: {id}, flags: {flags}, .. }}")
            }
            Credentials::EapPassThrough { message } => {
                write!(f, "EapPassThrough {{ message: {} bytes }}", message.len())
            }
        }
    }
}

/// Credentials to check, from [`AuthEvent::Request`].
#[derive(Debug)]
pub struct AuthRequest {
    /// The name the peer gave (PAP Peer-ID, CHAP Name, EAP identity or
    /// the EAP-MSCHAPv2 Name), lossily decoded as UTF-8. For MS-CHAPv2 the
    /// state machine itself uses the exact bytes (domain stripped) in the
    /// ChallengeHash (RFC 2759 §4).
    pub username: String,
    pub method: AuthMethod,
    pub credentials: Credentials,
}

/// Why an authentication failed. The first variants are the MS-CHAP error
/// codes of RFC 2759 §6 / RFC 2433 §5; the others are local reasons, given
/// the Windows RAS error code closest to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// 691 ERROR_AUTHENTICATION_FAILURE.
    AuthenticationFailure,
    /// 646 ERROR_RESTRICTED_LOGON_HOURS.
    RestrictedLogonHours,
    /// 647 ERROR_ACCT_DISABLED.
    AccountDisabled,
    /// 648 ERROR_PASSWD_EXPIRED.
    PasswordExpired,
    /// 649 ERROR_NO_DIALIN_PERMISSION.
    NoDialinPermission,
    /// 709 ERROR_CHANGING_PASSWORD.
    ChangingPassword,
    /// 718 ERROR_PPP_TIMEOUT: the other side stopped answering.
    Timeout,
    /// 778 ERROR_UNABLE_TO_AUTHENTICATE_SERVER: the authenticator could
    /// not prove it knows the password (MS-CHAPv2 "S=" wrong or missing,
    /// RFC 2759 §5).
    ServerNotAuthenticated,
    /// 917 ERROR_AUTH_PROTOCOL_REJECTED: no EAP method in common.
    NoCommonMethod,
    /// Any other code (e.g. from an "E=" the peer received).
    Other(u32),
}

impl Rejection {
    /// The numeric code: sent as "E=" in MS-CHAPv2 Failure packets.
    pub fn code(&self) -> u32 {
        match self {
            Rejection::AuthenticationFailure => 691,
            Rejection::RestrictedLogonHours => 646,
            Rejection::AccountDisabled => 647,
            Rejection::PasswordExpired => 648,
            Rejection::NoDialinPermission => 649,
            Rejection::ChangingPassword => 709,
            Rejection::Timeout => 718,
            Rejection::ServerNotAuthenticated => 778,
            Rejection::NoCommonMethod => 917,
            Rejection::Other(code) => *code,
        }
    }

    /// The text a peer is shown for this refusal (PAP Nak, CHAP Failure,
    /// MS-CHAPv2 "M="). It depends on the code alone, never on why the
    /// owner refused: an unknown user, a wrong password and a user whose
    /// store cannot check this method must all look the same on the wire
    /// (the detail goes to the server's log through [`AuthFailure`]).
    pub fn peer_text(&self) -> &'static str {
        match self {
            Rejection::RestrictedLogonHours => "Restricted logon hours",
            Rejection::AccountDisabled => "Account disabled",
            Rejection::PasswordExpired => "Password expired",
            Rejection::NoDialinPermission => "No dial-in permission",
            Rejection::ChangingPassword => "Error changing password",
            _ => "Authentication failed",
        }
    }

    /// The inverse of [`Rejection::code`].
    pub fn from_code(code: u32) -> Self {
        match code {
            691 => Rejection::AuthenticationFailure,
            646 => Rejection::RestrictedLogonHours,
            647 => Rejection::AccountDisabled,
            648 => Rejection::PasswordExpired,
            649 => Rejection::NoDialinPermission,
            709 => Rejection::ChangingPassword,
            718 => Rejection::Timeout,
            778 => Rejection::ServerNotAuthenticated,
            917 => Rejection::NoCommonMethod,
            other => Rejection::Other(other),
        }
    }
}

/// The Master Session Key of an EAP method that an outside server ran
/// (RFC 3748 §7.10): for EAP-TLS and PEAP, RADIUS carries its first 32
/// octets as MS-MPPE-Recv-Key and the next 32 as MS-MPPE-Send-Key (RFC
/// 2548 §2.4.2/§2.4.3, RFC 5216 §2.3). IKEv2 keys its AUTH with it (RFC
/// 7296 §2.16). Never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Msk(pub Zeroizing<Vec<u8>>);

impl fmt::Debug for Msk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msk({} octets)", self.0.len())
    }
}

/// A positive answer from an outside server (RADIUS Access-Accept).
#[derive(Clone, Debug, Default)]
pub struct ExternalAccept {
    /// The "S=<40 hex>" of RADIUS MS-CHAP2-Success (RFC 2548 §2.3.3),
    /// without its leading Ident octet. Needed for MS-CHAPv2: without it
    /// the peer cannot authenticate the server and will fail.
    pub mschapv2_success: Option<[u8; 42]>,
    /// MPPE master keys from MS-MPPE-Send-Key/Recv-Key (RFC 2548 §2.4),
    /// in the authenticator's view (send = what the server sends).
    pub keys: Option<MasterKeys>,
    /// The EAP-Success from the EAP-Message attribute (pass-through). If
    /// absent (or not an EAP-Success) one is built locally.
    pub eap_message: Option<Vec<u8>>,
    /// A text for the peer (Reply-Message): PAP Ack / CHAP Success message,
    /// MS-CHAPv2 "M=".
    pub message: Option<String>,
    /// The whole MSK when the keys are longer than MPPE's 16 octets (EAP
    /// methods other than MS-CHAPv2 passed through).
    pub msk: Option<Msk>,
}

/// A completed authentication.
#[derive(Clone, Debug)]
pub struct AuthSuccess {
    /// The authenticated name (for the peer: its own configured name).
    pub username: String,
    pub protocol: AuthProtocol,
    /// MPPE master keys in this side's view: MS-CHAPv2 plain or in EAP
    /// (RFC 3079 §3.4), MS-CHAPv1 (RFC 3079 §2.4, the same key both
    /// ways), or what [`ExternalAccept::keys`] carried.
    pub keys: Option<MasterKeys>,
    /// The whole MSK of an EAP method passed through ([`ExternalAccept::msk`]).
    pub msk: Option<Msk>,
}

/// A failed authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    pub rejection: Rejection,
    /// Human-readable detail (for the peer: the server's message).
    pub message: String,
}

/// What a state machine reports.
#[derive(Debug)]
pub enum AuthEvent {
    /// Authenticator only: check these credentials and answer.
    Request(AuthRequest),
    /// Final: authenticated.
    Success(AuthSuccess),
    /// Final: not authenticated.
    Failure(AuthFailure),
    /// Peer only, MS-CHAPv2: the server refused the password but allows a
    /// retry (RFC 2759 §6, "R=1"). Not final: call [`Peer::retry`] with a
    /// new password, or [`Peer::decline_retry`] (which makes it final).
    RetryAllowed(AuthFailure),
}

/// Configuration of an [`Authenticator`].
#[derive(Clone, Debug)]
pub struct AuthenticatorConfig {
    /// Our CHAP Name (RFC 1994 §4.1), e.g. the host name.
    pub name: String,
    /// MS-CHAPv2: how many retries (RFC 2759 §6, "R=1") after a 691.
    pub max_retries: u8,
    /// EAP: pass every Response through (RFC 3579) instead of running
    /// EAP-MSCHAPv2 locally.
    pub eap_pass_through: bool,
    /// Retransmission timer (RFC 1661 §4.6 Restart timer).
    pub restart: Duration,
    /// Transmissions of a packet before giving up (RFC 1661 §4.6
    /// Max-Configure analogue).
    pub max_transmits: u32,
}

impl AuthenticatorConfig {
    /// Defaults with the given CHAP name.
    pub fn new(name: impl Into<String>) -> Self {
        AuthenticatorConfig {
            name: name.into(),
            max_retries: 2,
            eap_pass_through: false,
            restart: Duration::from_secs(3),
            max_transmits: 10,
        }
    }
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        AuthenticatorConfig::new("ras")
    }
}

/// Configuration of a [`Peer`].
#[derive(Clone)]
pub struct PeerConfig {
    pub username: String,
    pub password: Zeroizing<String>,
    pub restart: Duration,
    pub max_transmits: u32,
}

impl PeerConfig {
    /// Defaults (3 s restart timer, 10 transmissions).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        PeerConfig {
            username: username.into(),
            password: Zeroizing::new(password.into()),
            restart: Duration::from_secs(3),
            max_transmits: 10,
        }
    }
}

impl fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerConfig")
            .field("username", &self.username)
            .field("password", &"..")
            .field("restart", &self.restart)
            .field("max_transmits", &self.max_transmits)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Shared machinery: output queues and the retransmission timer.

/// What [`Io::tick`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Not yet time (or no timer).
    NotDue,
    /// The outstanding packet was sent again.
    Retransmitted,
    /// The timer ran out for good: the caller decides what that means.
    Expired,
}

/// Queues and timer shared by all the protocol machines.
pub(crate) struct Io {
    out: VecDeque<Vec<u8>>,
    events: VecDeque<AuthEvent>,
    /// Packet to send again when the timer fires.
    retx: Option<Vec<u8>>,
    deadline: Option<Instant>,
    transmits: u32,
    restart: Duration,
    max_transmits: u32,
    finished: bool,
}

impl Io {
    pub(crate) fn new(restart: Duration, max_transmits: u32) -> Self {
        Io {
            out: VecDeque::new(),
            events: VecDeque::new(),
            retx: None,
            deadline: None,
            transmits: 0,
            restart,
            max_transmits: max_transmits.max(1),
            finished: false,
        }
    }

    /// Send once, without retransmission.
    pub(crate) fn send(&mut self, packet: Vec<u8>) {
        self.out.push_back(packet);
    }

    /// Send and retransmit every `restart` until `max_transmits`.
    pub(crate) fn send_reliable(&mut self, now: Instant, packet: Vec<u8>) {
        self.out.push_back(packet.clone());
        self.retx = Some(packet);
        self.transmits = 1;
        self.deadline = now.checked_add(self.restart);
    }

    /// No packet outstanding; expire after the whole retransmission budget
    /// (`restart * max_transmits`) unless something happens.
    pub(crate) fn wait(&mut self, now: Instant) {
        self.retx = None;
        self.deadline = self
            .restart
            .checked_mul(self.max_transmits)
            .and_then(|d| now.checked_add(d));
    }

    /// No timer.
    pub(crate) fn stop(&mut self) {
        self.retx = None;
        self.deadline = None;
    }

    pub(crate) fn tick(&mut self, now: Instant) -> Tick {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return Tick::NotDue,
        }
        if let Some(p) = &self.retx {
            if self.transmits < self.max_transmits {
                self.out.push_back(p.clone());
                self.transmits += 1;
                self.deadline = now.checked_add(self.restart);
                return Tick::Retransmitted;
            }
        }
        self.stop();
        Tick::Expired
    }

    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn request(&mut self, request: AuthRequest) {
        if !self.finished {
            self.events.push_back(AuthEvent::Request(request));
        }
    }

    pub(crate) fn event(&mut self, event: AuthEvent) {
        if !self.finished {
            self.events.push_back(event);
        }
    }

    pub(crate) fn succeed(&mut self, success: AuthSuccess) {
        if !self.finished {
            self.finished = true;
            self.stop();
            self.events.push_back(AuthEvent::Success(success));
        }
    }

    pub(crate) fn fail(&mut self, rejection: Rejection, message: impl Into<String>) {
        if !self.finished {
            self.finished = true;
            self.stop();
            self.events.push_back(AuthEvent::Failure(AuthFailure {
                rejection,
                message: message.into(),
            }));
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<AuthEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Lossy UTF-8 decoding of a name or message received from the wire.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An owned RNG seeded from the caller's.
fn seeded(rng: &mut (impl RngCore + ?Sized)) -> StdRng {
    let mut seed = <StdRng as SeedableRng>::Seed::default();
    rng.fill_bytes(&mut seed);
    StdRng::from_seed(seed)
}

/// What [`ServerMachine::check_secret`] found.
pub(crate) enum Verdict {
    /// No credentials are pending: nothing to do.
    NotPending,
    /// Right: succeed as if an outside server had accepted with this.
    Right(ExternalAccept),
    /// Wrong: a 691 for the peer, this detail for the local report.
    Wrong(&'static str),
}

/// The authenticator side of one protocol.
pub(crate) trait ServerMachine: Send {
    fn io(&mut self) -> &mut Io;
    fn io_ref(&self) -> &Io;
    fn start(&mut self, now: Instant);
    fn handle_packet(&mut self, now: Instant, data: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    /// Check the pending credentials against `secret` (constant time).
    fn check_secret(&self, secret: &Secret) -> Verdict;
    fn provide_secret(&mut self, now: Instant, secret: Secret) {
        self.provide_secret_then_reject(now, secret, None, "");
    }
    /// Verify against `secret`; wrong credentials fail with 691 as
    /// always, right ones succeed, or with `refusal` fail with that code.
    /// The check runs whatever the refusal, so that every refusal costs
    /// the same work and the peer learns about the account only by
    /// proving it knows the password.
    fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: Secret,
        refusal: Option<Rejection>,
        message: &str,
    ) {
        match (self.check_secret(&secret), refusal) {
            (Verdict::NotPending, _) => {}
            (Verdict::Right(accept), None) => self.accept_external(now, accept),
            (Verdict::Right(_), Some(rejection)) => self.reject(now, rejection, message),
            (Verdict::Wrong(why), _) => self.reject(now, Rejection::AuthenticationFailure, why),
        }
    }
    fn reject(&mut self, now: Instant, rejection: Rejection, message: &str);
    fn accept_external(&mut self, now: Instant, accept: ExternalAccept);
    fn eap_challenge(&mut self, _now: Instant, _eap_message: Vec<u8>) {}
}

/// The peer side of one protocol.
pub(crate) trait PeerMachine: Send {
    fn io(&mut self) -> &mut Io;
    fn io_ref(&self) -> &Io;
    fn start(&mut self, now: Instant);
    fn handle_packet(&mut self, now: Instant, data: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    fn retry(&mut self, _now: Instant, _password: Zeroizing<String>) {}
    fn decline_retry(&mut self, _now: Instant) {}
    fn lower_layer_success(&mut self, _now: Instant) {}
}

// ---------------------------------------------------------------------------
// Authenticator

/// The authenticating side (server). See the module documentation.
pub struct Authenticator {
    protocol: AuthProtocol,
    machine: Box<dyn ServerMachine>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("protocol", &self.protocol)
            .field("finished", &self.machine.io_ref().finished())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// A new authenticator for `protocol`; `rng` seeds its own generator
    /// (challenges and identifiers).
    pub fn new(
        protocol: AuthProtocol,
        config: AuthenticatorConfig,
        rng: &mut impl RngCore,
    ) -> Self {
        let rng = seeded(rng);
        let machine: Box<dyn ServerMachine> = match protocol {
            AuthProtocol::Pap => Box::new(pap::Server::new(config, rng)),
            AuthProtocol::ChapMd5 => Box::new(chap_md5::Server::new(config, rng)),
            AuthProtocol::MsChapV1 => Box::new(mschapv1::Server::new(config, rng)),
            AuthProtocol::MsChapV2 => Box::new(mschapv2::Server::new(config, rng)),
            AuthProtocol::Eap => Box::new(eap::Server::new(config, rng)),
        };
        Authenticator { protocol, machine }
    }

    pub fn protocol(&self) -> AuthProtocol {
        self.protocol
    }

    /// Begin: CHAP/MS-CHAPv2 send a Challenge (RFC 1994 §4.1), EAP an
    /// Identity Request (RFC 3748 §5.1), PAP waits for the peer
    /// (RFC 1334 §2.1).
    pub fn start(&mut self, now: Instant) {
        self.machine.start(now);
    }

    /// A packet of protocol [`AuthProtocol::ppp_protocol`] (no PPP header).
    /// Malformed or unexpected packets are dropped silently.
    pub fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        self.machine.handle_packet(now, data);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.machine.io_ref().poll_timeout()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.machine.io().poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.machine.io().poll_event()
    }

    /// True once a Success or Failure event has been produced.
    pub fn is_finished(&self) -> bool {
        self.machine.io_ref().finished()
    }

    /// Answer to [`AuthEvent::Request`] from a local user store: verify the
    /// credentials against `secret` (constant time) and succeed, or fail
    /// with 691. Ignored when no request is pending.
    pub fn provide_secret(&mut self, now: Instant, secret: Secret) {
        self.machine.provide_secret(now, secret);
    }

    /// Answer to [`AuthEvent::Request`] from a local user store for a user
    /// who may not log in whatever the password (disabled account, no
    /// dial-in permission), or who does not exist (with a stand-in
    /// secret): verify the credentials against `secret` exactly as
    /// [`provide_secret`](Self::provide_secret) does, then fail with 691
    /// if they are wrong and with `rejection` if they are right. So the
    /// peer learns about the account only by proving it knows the
    /// password, and every refusal costs the same work. `message` is the
    /// local detail (never sent).
    pub fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: Secret,
        rejection: Rejection,
        message: &str,
    ) {
        self.machine
            .provide_secret_then_reject(now, secret, Some(rejection), message);
    }

    /// Answer to [`AuthEvent::Request`]: refuse. For MS-CHAPv2 a 691 still
    /// allows a retry while `max_retries` lasts (RFC 2759 §6).
    pub fn reject(&mut self, now: Instant, rejection: Rejection, message: &str) {
        self.machine.reject(now, rejection, message);
    }

    /// Answer to [`AuthEvent::Request`]: an outside server accepted.
    pub fn accept_external(&mut self, now: Instant, accept: ExternalAccept) {
        self.machine.accept_external(now, accept);
    }

    /// EAP pass-through: send this EAP Request (from a RADIUS
    /// Access-Challenge, RFC 3579 §2.6.2) to the peer; it is retransmitted
    /// until the peer answers. Anything but a well-formed EAP Request fails
    /// the authentication.
    pub fn eap_challenge(&mut self, now: Instant, eap_message: Vec<u8>) {
        self.machine.eap_challenge(now, eap_message);
    }
}

// ---------------------------------------------------------------------------
// Peer

/// The authenticated side (client). See the module documentation.
pub struct Peer {
    protocol: AuthProtocol,
    machine: Box<dyn PeerMachine>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("protocol", &self.protocol)
            .field("finished", &self.machine.io_ref().finished())
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub fn new(
        protocol: AuthProtocol,
        config: PeerConfig,
        rng: &mut (impl RngCore + ?Sized),
    ) -> Self {
        let rng = seeded(rng);
        let machine: Box<dyn PeerMachine> = match protocol {
            AuthProtocol::Pap => Box::new(pap::Client::new(config, rng)),
            AuthProtocol::ChapMd5 => Box::new(chap_md5::Client::new(config, rng)),
            AuthProtocol::MsChapV1 => Box::new(mschapv1::Client::new(config, rng)),
            AuthProtocol::MsChapV2 => Box::new(mschapv2::Client::new(config, rng)),
            AuthProtocol::Eap => Box::new(eap::Client::new(config, rng)),
        };
        Peer { protocol, machine }
    }

    pub fn protocol(&self) -> AuthProtocol {
        self.protocol
    }

    /// Begin: PAP sends its Authenticate-Request (RFC 1334 §2.1); the
    /// others wait for the authenticator (and give up after
    /// `restart * max_transmits` of silence).
    pub fn start(&mut self, now: Instant) {
        self.machine.start(now);
    }

    pub fn handle_packet(&mut self, now: Instant, data: &[u8]) {
        self.machine.handle_packet(now, data);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.machine.io_ref().poll_timeout()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.machine.io().poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.machine.io().poll_event()
    }

    /// True once a Success or Failure event has been produced.
    pub fn is_finished(&self) -> bool {
        self.machine.io_ref().finished()
    }

    /// After [`AuthEvent::RetryAllowed`] (MS-CHAPv2 "R=1"): answer the
    /// Failure's "C=" challenge with a new password (RFC 2759 §6), in a
    /// Response whose Identifier is the Failure's plus one. Ignored in any
    /// other state.
    pub fn retry(&mut self, now: Instant, password: Zeroizing<String>) {
        self.machine.retry(now, password);
    }

    /// After [`AuthEvent::RetryAllowed`]: give up (a final Failure event).
    pub fn decline_retry(&mut self, now: Instant) {
        self.machine.decline_retry(now);
    }

    /// EAP only, RFC 3748 §4.2: the lower layer indicates success (e.g. an
    /// NCP packet arrived although the EAP-Success was lost). Succeeds only
    /// if the EAP-MSCHAPv2 exchange has already authenticated the server.
    pub fn lower_layer_success(&mut self, now: Instant) {
        self.machine.lower_layer_success(now);
    }
}
