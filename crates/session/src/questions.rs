//! The questions a session asks its owner and the answers it takes: the
//! hook protocol between the [`SessionCore`](crate::SessionCore) and
//! whoever runs it (the server's control pipeline, or a dialer).

use ppp::auth::{AuthRequest, ExternalAccept, Rejection, Secret};
use ppp::link::{LinkUp, NetworkSettings};

use crate::EndReason;

/// Facts about one session, for logs and hooks.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Unique per process.
    pub id: u64,
    /// The remote transport address ("ip:port").
    pub peer: String,
    /// The authenticated user, once known.
    pub user: Option<String>,
}

/// The answer to a credential check.
#[derive(Debug)]
pub enum AuthAnswer {
    /// The stored secret: the PPP authenticator verifies it itself.
    Secret(Secret),
    /// Verify against the secret, then refuse: 691 if the credentials are
    /// wrong, this code if they are right (a disabled user, no dial-in
    /// permission, or an unknown user with a stand-in secret), so that
    /// only someone who knows the password learns more than "691". The
    /// text is for the log only.
    SecretThenReject(Secret, Rejection, String),
    /// Refused, with the MS-CHAP error code to report (the text is for
    /// the log only: peers see the code's standard text).
    Reject(Rejection, String),
    /// An outside server (RADIUS) accepted.
    Accept(ExternalAccept),
    /// An outside server wants another EAP round trip.
    EapChallenge(Vec<u8>),
}

/// What the session asks of its owner ([`SessionCore::poll_hook_request`](crate::SessionCore::poll_hook_request)).
#[derive(Debug)]
pub enum HookRequest {
    /// Server role: check these credentials; answer with
    /// [`HookAnswer::Auth`].
    Authenticate(AuthRequest),
    /// Server role: the peer is authenticated; decide its network
    /// settings (addresses, policy); answer with [`HookAnswer::Network`].
    Network,
    /// The link is up: register its addresses and get ready to carry IP;
    /// answer with [`HookAnswer::Up`].
    Up(LinkUp),
    /// The session ended, and why. Asked exactly once of every server
    /// session that asked its owner anything (a refused login too: the
    /// owner may hold a record for it), never of one that asked nothing.
    /// No answer.
    Down(EndReason),
}

/// The owner's answer to a [`HookRequest`].
#[derive(Debug)]
pub enum HookAnswer {
    /// To [`HookRequest::Authenticate`].
    Auth(AuthAnswer),
    /// To [`HookRequest::Network`]; an error refuses the user (the text
    /// is for the log).
    Network(Result<NetworkSettings, String>),
    /// To [`HookRequest::Up`]; an error ends the session.
    Up(Result<(), String>),
}

/// Why [`SessionCore::handle_hook_answer`](crate::SessionCore::handle_hook_answer)
/// did not apply an answer. Answers run in their own tasks, so one may
/// arrive after the session moved on; it is dropped, never applied twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IgnoredAnswer {
    /// Nothing of this kind was asked, or it was answered already.
    #[error("no {0} question is waiting for an answer")]
    NotAsked(&'static str),
    /// The session ended before the answer came.
    #[error("the session ended before the {0} answer came")]
    SessionEnded(&'static str),
}
