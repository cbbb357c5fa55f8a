//! Watches credential checks the PPP authenticator finishes itself, to
//! log a wrong password with the user's name and the method.

use ppp::auth::{AuthMethod, Rejection};
use ppp::link::{DownReason, Link, LinkEvent, Phase};

use crate::login_log;

/// Who asked to log in, and how: for the log line if the password turns
/// out wrong (the PPP authenticator checks it, after the hook answered).
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) user: String,
    pub(crate) method: AuthMethod,
}

/// The link reports no event for a refusal that allows a retry
/// (MS-CHAPv2 R=1, RFC 2759 §6), so the watch infers it.
#[derive(Debug, Default)]
pub(crate) struct AuthWatch {
    /// An EAP-MSCHAPv2 check whose outcome comes with a later round trip.
    pending: Option<Attempt>,
}

impl AuthWatch {
    /// The secret was just handed to `link`. PAP, CHAP-MD5 and MS-CHAPv2
    /// decide at once: a link still (or no longer) authenticating has
    /// refused the password. EAP-MSCHAPv2 answers either way with one more
    /// request (RFC 2759 via RFC 3748: Success- or Failure-Request).
    pub(crate) fn secret_given(&mut self, session: u64, link: &Link, attempt: Attempt) {
        if attempt.method == AuthMethod::EapMsChapV2 {
            self.pending = Some(attempt);
            return;
        }
        if matches!(
            link.phase(),
            Phase::Authenticate | Phase::Terminate | Phase::Dead
        ) {
            wrong_password(session, &attempt);
        }
    }

    /// Every link event goes through here first.
    pub(crate) fn link_event(&mut self, session: u64, event: &LinkEvent) {
        match event {
            LinkEvent::Authenticated { .. } => self.pending = None,
            // A new attempt after an EAP check: the last one failed.
            LinkEvent::AuthRequest(_) => {
                if let Some(a) = self.pending.take() {
                    wrong_password(session, &a);
                }
            }
            LinkEvent::Down(reason) => {
                if let Some(a) = self.pending.take() {
                    if matches!(reason, DownReason::AuthFailed(f) if f.rejection == Rejection::AuthenticationFailure)
                    {
                        wrong_password(session, &a);
                    }
                }
            }
            _ => {}
        }
    }
}

fn wrong_password(session: u64, a: &Attempt) {
    login_log::refused(
        session,
        &a.user,
        login_log::method_name(a.method),
        &"wrong password",
    );
}
