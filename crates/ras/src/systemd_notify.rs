//! systemd's notify protocol (sd_notify(3)) for `ras server` under
//! `Type=notify` (dist/ras.service): READY=1 once [`Server::start`] has
//! bound every listener and opened the database, STATUS= with the session
//! counts every few seconds, WATCHDOG=1 every half `WatchdogSec` but only
//! after a round trip through the session table has succeeded, and
//! STOPPING=1 when it shuts down; RELOADING=1 (with MONOTONIC_USEC, as
//! `Type=notify-reload` requires) when a reload starts, from SIGHUP or the
//! admin API, and READY=1 when it has ended, taken or refused
//! (sd_notify(3)). Without `$NOTIFY_SOCKET` (not started by systemd)
//! nothing is sent and no task runs.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use server::radius_auth::TunnelKind;
use server::server::Server;
use server::sessions::Sessions;

/// How often STATUS= is refreshed when there is no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Whether systemd asked for notifications.
fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("systemd notification failed: {e}");
    }
}

/// READY=1 with the first STATUS=, and the task that keeps STATUS= and
/// the watchdog going (ended when the returned handle is dropped).
pub fn ready(server: &Server) -> Option<Heartbeat> {
    if !enabled() {
        return None;
    }
    let sessions = server.sessions().clone();
    let status = status_line(&sessions.map_all(|r| r.tunnel));
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    let watchdog = sd_notify::watchdog_enabled();
    // sd_watchdog_enabled(3): send WATCHDOG=1 at half the interval.
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    Some(Heartbeat(tokio::spawn(beat(
        sessions,
        every,
        watchdog.is_some(),
    ))))
}

/// RELOADING=1 … READY=1 around every reload of `server`.
pub fn observe_reloads(server: &Server) {
    if !enabled() {
        return;
    }
    let Some(reloader) = server.admin().reloader.clone() else {
        return;
    };
    reloader.observe(Box::new(|event| match event {
        server::reload::ReloadEvent::Started => match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        },
        server::reload::ReloadEvent::Finished(outcome) => {
            let status = if outcome.ok {
                "reloaded"
            } else {
                "reload refused; previous configuration running"
            };
            send(&[NotifyState::Ready, NotifyState::Status(status)]);
        }
    }));
}

/// STOPPING=1, before the sessions are ended.
pub fn stopping() {
    if enabled() {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

/// The STATUS= and watchdog task; aborted when dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn beat(sessions: Arc<Sessions>, every: Duration, watchdog: bool) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        // The round trip: a blocking-pool thread takes the session
        // table's lock and counts. A wedged lock or a starved runtime
        // misses the deadline, so systemd's watchdog restarts the server.
        let table = sessions.clone();
        let counted = tokio::time::timeout(
            every,
            tokio::task::spawn_blocking(move || table.map_all(|r| r.tunnel)),
        )
        .await;
        match counted {
            Ok(Ok(kinds)) => {
                let status = status_line(&kinds);
                if watchdog {
                    send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
                } else {
                    send(&[NotifyState::Status(&status)]);
                }
            }
            Ok(Err(e)) => tracing::warn!("watchdog: counting the sessions failed: {e}"),
            Err(_) => tracing::warn!(
                "watchdog: the session table did not answer within {} ms",
                every.as_millis()
            ),
        }
    }
}

/// "3 sessions (sstp 2, pptp 1)", in a fixed protocol order.
pub fn status_line(kinds: &[TunnelKind]) -> String {
    const ORDER: [TunnelKind; 5] = [
        TunnelKind::Sstp,
        TunnelKind::Pptp,
        TunnelKind::L2tp,
        TunnelKind::Ikev2,
        TunnelKind::Dialup,
    ];
    let parts: Vec<String> = ORDER
        .iter()
        .filter_map(|k| {
            let n = kinds.iter().filter(|t| *t == k).count();
            (n > 0).then(|| format!("{} {n}", k.name()))
        })
        .collect();
    match kinds.len() {
        0 => "no sessions".to_owned(),
        1 => format!("1 session ({})", parts.join(", ")),
        n => format!("{n} sessions ({})", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_counts_sessions_by_protocol() {
        assert_eq!(status_line(&[]), "no sessions");
        assert_eq!(status_line(&[TunnelKind::Pptp]), "1 session (pptp 1)");
        assert_eq!(
            status_line(&[
                TunnelKind::Pptp,
                TunnelKind::Sstp,
                TunnelKind::Sstp,
                TunnelKind::Ikev2
            ]),
            "4 sessions (sstp 2, pptp 1, ikev2 1)"
        );
    }
}
