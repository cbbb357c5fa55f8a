//! The answers of a session's hooks, applied to its PPP link: one place for
//! what the SSTP, PPTP and serial server drivers all do with them.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ppp::link::{Link, NetworkSettings};
use tokio::sync::mpsc;

use crate::hooks::{AuthAnswer, SessionHooks, SessionInfo};
use crate::live::LiveSession;

/// Results of hooks that ran in their own tasks.
pub(crate) enum HookResult {
    Auth(AuthAnswer),
    Network(Result<NetworkSettings, String>),
    Up(Result<mpsc::Receiver<Bytes>, String>),
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
    reason: &mut Option<String>,
    result: HookResult,
) -> Applied {
    let now = Instant::now();
    match result {
        HookResult::Auth(answer) => {
            match answer {
                AuthAnswer::Secret(secret) => link.provide_secret(now, secret),
                AuthAnswer::SecretThenReject(secret, rejection, message) => {
                    link.provide_secret_then_reject(now, secret, rejection, &message)
                }
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
            tracing::info!(session = info.id, "refused: {why}");
            reason.get_or_insert_with(|| why.clone());
            link.close(now, &why);
            Applied::Nothing
        }
        HookResult::Up(Ok(rx)) => Applied::Outbound(rx),
        HookResult::Up(Err(why)) => {
            reason.get_or_insert_with(|| why.clone());
            link.close(now, &why);
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
    // Debug formatting: the name is the peer's, and must not forge lines.
    tracing::debug!(session = info.id, user = ?request.username, method = ?request.method, "checking credentials");
    let fut = hooks.authenticate(info, request);
    spawn(tx, async move { HookResult::Auth(fut.await) });
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
