//! The answers of a session's hooks, applied to its PPP link: one place for
//! what the SSTP, PPTP and serial server drivers all do with them.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ppp::auth::{AuthMethod, Rejection};
use ppp::link::{DownReason, Link, LinkEvent, NetworkSettings, Phase};
use session::EndReason;
use tokio::sync::mpsc;

use crate::hooks::{AuthAnswer, SessionHooks, SessionInfo};
use crate::live::LiveSession;
use crate::login_log;

/// Results of hooks that ran in their own tasks.
pub(crate) enum HookResult {
    Auth(AuthAnswer, Attempt),
    Network(Result<NetworkSettings, String>),
    Up(Result<mpsc::Receiver<Bytes>, String>),
}

/// Who asked to log in, and how: for the log line if the password turns
/// out wrong (the PPP authenticator checks it, after the hook answered).
pub(crate) struct Attempt {
    user: String,
    method: AuthMethod,
}

/// Watches a credential check the PPP authenticator finishes itself (the
/// hook gave the stored secret), to log a wrong password with the user's
/// name and the method: the link reports no event for a refusal that
/// allows a retry (MS-CHAPv2 R=1, RFC 2759 §6).
#[derive(Default)]
pub(crate) struct AuthWatch {
    /// An EAP-MSCHAPv2 check whose outcome comes with a later round trip.
    pending: Option<Attempt>,
}

impl AuthWatch {
    /// The secret was just handed to `link`. PAP, CHAP-MD5 and MS-CHAPv2
    /// decide at once: a link still (or no longer) authenticating has
    /// refused the password. EAP-MSCHAPv2 answers either way with one more
    /// request (RFC 2759 via RFC 3748: Success- or Failure-Request).
    fn secret_given(&mut self, info: &SessionInfo, link: &Link, attempt: Attempt) {
        if attempt.method == AuthMethod::EapMsChapV2 {
            self.pending = Some(attempt);
            return;
        }
        if matches!(
            link.phase(),
            Phase::Authenticate | Phase::Terminate | Phase::Dead
        ) {
            wrong_password(info, &attempt);
        }
    }

    /// Every link event goes through here (drivers call it first).
    pub(crate) fn link_event(&mut self, info: &SessionInfo, event: &LinkEvent) {
        match event {
            LinkEvent::Authenticated { .. } => self.pending = None,
            // A new attempt after an EAP check: the last one failed.
            LinkEvent::AuthRequest(_) => {
                if let Some(a) = self.pending.take() {
                    wrong_password(info, &a);
                }
            }
            LinkEvent::Down(reason) => {
                if let Some(a) = self.pending.take() {
                    if matches!(reason, DownReason::AuthFailed(f) if f.rejection == Rejection::AuthenticationFailure)
                    {
                        wrong_password(info, &a);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The "PPP link up" log line's details, in words: the client's IPv4
/// address, both link-local IPv6 addresses (RFC 5072 §5), MPPE. `server`:
/// this side is the server (its peer the client), else the other way.
pub(crate) fn link_up_text(up: &ppp::link::LinkUp, server: bool) -> String {
    let mut parts = Vec::new();
    let pair = |local: String, peer: String| {
        if server {
            format!("client {peer} (server {local})")
        } else {
            format!("{local} (server {peer})")
        }
    };
    if let Some(v4) = &up.ipv4 {
        parts.push(pair(v4.local.to_string(), v4.peer.to_string()));
    }
    if let Some(v6) = &up.ipv6 {
        let ll = |iid: [u8; 8]| {
            let mut o = [0u8; 16];
            o[0] = 0xfe;
            o[1] = 0x80;
            o[8..].copy_from_slice(&iid);
            std::net::Ipv6Addr::from(o)
        };
        parts.push(pair(
            ll(v6.local_interface_id).to_string(),
            ll(v6.peer_interface_id).to_string(),
        ));
    }
    parts.push(match up.mppe {
        Some(m) => {
            let bits = match m.strength {
                ppp::mppe::MppeStrength::Bits40 => 40,
                ppp::mppe::MppeStrength::Bits56 => 56,
                ppp::mppe::MppeStrength::Bits128 => 128,
            };
            let mode = if m.stateless { "stateless" } else { "stateful" };
            format!("MPPE {bits}-bit {mode}")
        }
        None => "no MPPE".into(),
    });
    parts.join(", ")
}

fn wrong_password(info: &SessionInfo, a: &Attempt) {
    login_log::refused(
        info.id,
        &a.user,
        login_log::method_name(a.method),
        &"wrong password",
    );
}

/// What the driver keeps from a hook result.
pub(crate) enum Applied {
    Nothing,
    /// The network phase started: the owner's live view, if it keeps one.
    Live(Option<Arc<LiveSession>>),
    /// The link is up: the queue of IP packets to send to the peer.
    Outbound(mpsc::Receiver<Bytes>),
}

/// Feeds `result` to `link`. A refusal closes the link and is recorded as
/// the session's end reason unless one is already set.
pub(crate) fn apply(
    link: &mut Link,
    hooks: &dyn SessionHooks,
    info: &SessionInfo,
    reason: &mut Option<EndReason>,
    watch: &mut AuthWatch,
    result: HookResult,
) -> Applied {
    let now = Instant::now();
    match result {
        HookResult::Auth(answer, attempt) => {
            match answer {
                AuthAnswer::Secret(secret) => {
                    link.provide_secret(now, secret);
                    watch.secret_given(info, link, attempt);
                }
                // The hook logged why (account disabled, policy, unknown
                // user); the link checks the password first, so the peer
                // learns the refusal only if it knew the password.
                AuthAnswer::SecretThenReject(secret, rejection, message) => {
                    link.provide_secret_then_reject(now, secret, rejection, &message)
                }
                // The hook logged why (unknown user, policy, RADIUS…).
                AuthAnswer::Reject(rejection, message) => {
                    link.reject_auth(now, rejection, &message)
                }
                AuthAnswer::Accept(accept) => link.accept_external(now, accept),
                AuthAnswer::EapChallenge(message) => link.eap_challenge(now, message),
            }
            Applied::Nothing
        }
        HookResult::Network(Ok(settings)) => {
            let live = hooks.live(info);
            link.start_network(now, settings);
            Applied::Live(live)
        }
        HookResult::Network(Err(why)) => {
            // The hook logged the refusal with the user and the reason.
            tracing::debug!(session = info.id, "network refused: {why}");
            link.close(now, &why);
            reason.get_or_insert(EndReason::ServiceUnavailable(why));
            Applied::Nothing
        }
        HookResult::Up(Ok(rx)) => Applied::Outbound(rx),
        HookResult::Up(Err(why)) => {
            link.close(now, &why);
            reason.get_or_insert(EndReason::ServiceUnavailable(why));
            Applied::Nothing
        }
    }
}

/// Runs a hook in its own task and hands its result back through `tx`,
/// so the session loop never waits on a credential check or an address.
pub(crate) fn spawn<F>(tx: &mpsc::UnboundedSender<HookResult>, hook: F)
where
    F: std::future::Future<Output = HookResult> + Send + 'static,
{
    let tx = tx.clone();
    tokio::spawn(async move {
        let _ = tx.send(hook.await);
    });
}

/// `hooks.authenticate` for a link's credential check, spawned.
pub(crate) fn spawn_auth(
    tx: &mpsc::UnboundedSender<HookResult>,
    hooks: &dyn SessionHooks,
    info: &SessionInfo,
    request: ppp::auth::AuthRequest,
) {
    // Quoted: the name is the peer's, and must not forge lines.
    tracing::debug!(
        session = info.id,
        "checking credentials: user {}, {}",
        login_log::Quoted(&request.username),
        login_log::method_name(request.method)
    );
    let attempt = Attempt {
        user: request.username.clone(),
        method: request.method,
    };
    let fut = hooks.authenticate(info, request);
    spawn(tx, async move { HookResult::Auth(fut.await, attempt) });
}

/// `hooks.network` once the peer is authenticated, spawned.
pub(crate) fn spawn_network(
    tx: &mpsc::UnboundedSender<HookResult>,
    hooks: &dyn SessionHooks,
    info: &SessionInfo,
) {
    let fut = hooks.network(info);
    spawn(tx, async move { HookResult::Network(fut.await) });
}

/// `hooks.up` once the link is up, spawned.
pub(crate) fn spawn_up(
    tx: &mpsc::UnboundedSender<HookResult>,
    hooks: &dyn SessionHooks,
    info: &SessionInfo,
    up: &ppp::link::LinkUp,
) {
    let fut = hooks.up(info, up);
    spawn(tx, async move { HookResult::Up(fut.await) });
}
