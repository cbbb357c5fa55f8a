//! The server's table of running sessions: what each holds, its live
//! counters, and the ways to end it from outside (Session-Timeout and
//! Idle-Timeout, RFC 2865 §5.27/§5.28; a Disconnect-Request, RFC 5176).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use tunnel::{EndReason, LiveSession, TerminateCause};

use crate::radius_auth::{Granted, TunnelKind};

/// One running session.
pub struct Held {
    pub routes: Vec<IpAddr>,
    pub user: Option<String>,
    pub peer: String,
    pub tunnel: TunnelKind,
    pub live: Arc<LiveSession>,
    /// Acct-Session-Id (RFC 2866 §5.5).
    pub acct_session_id: String,
    pub address: Option<Ipv4Addr>,
    pub granted: Granted,
    pub started: Instant,
    pub started_at: SystemTime,
    /// Accounting Start was recorded (so Stop must be).
    pub accounting_started: bool,
    /// Why the server ended it, when it did (RFC 2866 §5.10).
    pub cause: Option<TerminateCause>,
    /// The remote access policy's grant and the method used, checked
    /// again when the link is up.
    pub policy: Option<(policy::Grant, policy::AuthMethod)>,
    /// A Framed-IPv6-Prefix routed to the TUN for this session alone.
    pub own_ipv6_prefix: Option<std::net::Ipv6Addr>,
    /// A Framed-IP-Address outside the address source (DHCP mode), routed
    /// to the TUN as a /32 for this session alone.
    pub own_ipv4_route: Option<Ipv4Addr>,
    watcher: Option<tokio::task::AbortHandle>,
    interim_every: Option<Duration>,
    interim: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("user", &self.user)
            .field("peer", &self.peer)
            .field("acct_session_id", &self.acct_session_id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Held {
    pub fn new(
        user: Option<String>,
        peer: String,
        tunnel: TunnelKind,
        acct_session_id: String,
        granted: Granted,
    ) -> Held {
        Held {
            routes: Vec::new(),
            user,
            peer,
            tunnel,
            live: Arc::new(LiveSession::new()),
            acct_session_id,
            address: None,
            granted,
            started: Instant::now(),
            started_at: SystemTime::now(),
            accounting_started: false,
            cause: None,
            policy: None,
            own_ipv6_prefix: None,
            own_ipv4_route: None,
            watcher: None,
            interim_every: None,
            interim: None,
        }
    }
}

/// Which sessions a Disconnect-Request or CoA-Request names (RFC 5176
/// §3: any of the identification attributes given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub acct_session_id: Option<String>,
    pub user_name: Option<String>,
    pub framed_ip: Option<Ipv4Addr>,
    pub calling_station: Option<String>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.acct_session_id.is_none()
            && self.user_name.is_none()
            && self.framed_ip.is_none()
            && self.calling_station.is_none()
    }

    fn matches(&self, h: &Held) -> bool {
        if self.is_empty() {
            return false;
        }
        self.acct_session_id
            .as_ref()
            .is_none_or(|s| *s == h.acct_session_id)
            && self
                .user_name
                .as_ref()
                .is_none_or(|u| h.user.as_ref() == Some(u))
            && self.framed_ip.is_none_or(|a| h.address == Some(a))
            && self
                .calling_station
                .as_ref()
                .is_none_or(|c| *c == crate::radius_auth::calling_station(&h.peer))
    }
}

/// The table, shared by every service.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<u64, Held>>,
    /// A prefix that makes Acct-Session-Ids unique across restarts.
    boot: String,
}

impl Sessions {
    pub fn new() -> Sessions {
        let boot = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Sessions {
            map: Mutex::new(HashMap::new()),
            boot: format!("{boot:08X}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Acct-Session-Id of session `id`.
    pub fn acct_session_id(&self, id: u64) -> String {
        format!("{}-{id:08X}", self.boot)
    }

    pub fn insert(&self, id: u64, held: Held) {
        self.lock().insert(id, held);
    }

    /// Inserts `held` unless another session already holds its address;
    /// checked and inserted under one lock, so two sessions granted the
    /// same static address cannot both get it. False: not inserted.
    pub fn insert_exclusive(&self, id: u64, held: Held) -> bool {
        let mut map = self.lock();
        let taken = held.address.is_some_and(|a| {
            map.iter()
                .any(|(other, h)| *other != id && h.address == Some(a))
        });
        if !taken {
            map.insert(id, held);
        }
        !taken
    }

    pub fn remove(&self, id: u64) -> Option<Held> {
        let held = self.lock().remove(&id);
        if let Some(w) = held.as_ref().and_then(|h| h.watcher.as_ref()) {
            w.abort();
        }
        held
    }

    /// Runs `f` on session `id`'s entry.
    pub fn with<R>(&self, id: u64, f: impl FnOnce(&mut Held) -> R) -> Option<R> {
        self.lock().get_mut(&id).map(f)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions of `user` now.
    pub fn count_user(&self, user: &str) -> usize {
        self.lock()
            .values()
            .filter(|h| h.user.as_deref() == Some(user))
            .count()
    }

    /// Ends session `id` with `cause`; false if it does not exist.
    pub fn stop(&self, id: u64, reason: EndReason) -> bool {
        let live = self.with(id, |h| {
            h.cause.get_or_insert(reason.terminate_cause());
            h.live.clone()
        });
        match live {
            Some(live) => {
                live.request_stop(reason);
                true
            }
            None => false,
        }
    }

    /// The sessions `selector` names.
    pub fn select(&self, selector: &Selector) -> Vec<u64> {
        self.lock()
            .iter()
            .filter(|(_, h)| selector.matches(h))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Marks every session as ended by the server's own shutdown.
    pub fn mark_all(&self, cause: TerminateCause) {
        for h in self.lock().values_mut() {
            h.cause.get_or_insert(cause);
        }
    }

    /// Restarts session `id`'s timers after its limits changed (CoA),
    /// keeping its interim interval.
    pub fn rewatch(self: &Arc<Self>, id: u64) {
        let Some((interim_every, interim)) = self.with(id, |h| {
            if let Some(w) = h.watcher.take() {
                w.abort();
            }
            (h.interim_every, h.interim.clone())
        }) else {
            return;
        };
        match interim {
            Some(f) => self.watch(id, interim_every, move |i| f(i)),
            None => self.watch(id, interim_every, |_| {}),
        }
    }

    /// Starts the timer task of session `id`: Session-Timeout,
    /// Idle-Timeout and Interim-Updates (`interim` is called with the
    /// session id at each interval).
    pub fn watch(
        self: &Arc<Self>,
        id: u64,
        interim_every: Option<Duration>,
        interim: impl Fn(u64) + Send + Sync + 'static,
    ) {
        let interim: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(interim);
        let kept = interim.clone();
        let Some((live, started, session_timeout, idle_timeout)) = self.with(id, |h| {
            h.interim_every = interim_every;
            h.interim = Some(kept);
            (
                h.live.clone(),
                h.started,
                h.granted
                    .session_timeout
                    .map(|s| Duration::from_secs(s.into())),
                h.granted
                    .idle_timeout
                    .map(|s| Duration::from_secs(s.into())),
            )
        }) else {
            return;
        };
        if session_timeout.is_none() && idle_timeout.is_none() && interim_every.is_none() {
            return;
        }
        let sessions = self.clone();
        let task = tokio::spawn(async move {
            let mut next_interim = interim_every.map(|d| Instant::now() + d);
            loop {
                let now = Instant::now();
                let mut wake = now + Duration::from_secs(3600);
                if let Some(t) = session_timeout {
                    if now >= started + t {
                        sessions.stop(id, EndReason::SessionTimeout);
                        return;
                    }
                    wake = wake.min(started + t);
                }
                if let Some(t) = idle_timeout {
                    // The counters keep std time; the timers tokio's.
                    let idle_for = live.last_input().elapsed();
                    if idle_for >= t {
                        sessions.stop(id, EndReason::IdleTimeout);
                        return;
                    }
                    wake = wake.min(now + (t - idle_for));
                }
                if let (Some(at), Some(every)) = (next_interim, interim_every) {
                    if now >= at {
                        interim(id);
                        next_interim = Some(now + every);
                    }
                    wake = wake.min(next_interim.unwrap_or(wake));
                }
                tokio::time::sleep_until(wake).await;
            }
        });
        let handle = task.abort_handle();
        if self
            .with(id, |h| h.watcher = Some(handle.clone()))
            .is_none()
        {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(user: &str, addr: [u8; 4], peer: &str) -> Held {
        let mut h = Held::new(
            Some(user.into()),
            peer.into(),
            TunnelKind::Sstp,
            String::new(),
            Granted::default(),
        );
        h.address = Some(Ipv4Addr::from(addr));
        h
    }

    #[test]
    fn an_address_held_by_another_session_is_refused() {
        let s = Sessions::new();
        let bob = |peer: &str| held("bob", [10, 80, 0, 50], peer);
        assert!(s.insert_exclusive(1, bob("a")));
        assert!(!s.insert_exclusive(2, bob("b")));
        assert_eq!(s.len(), 1);
        // The same session may replace its own entry; another address is free.
        assert!(s.insert_exclusive(1, bob("a")));
        assert!(s.insert_exclusive(3, held("carol", [10, 80, 0, 51], "c")));
        s.remove(1);
        assert!(s.insert_exclusive(2, bob("b")));
    }

    #[test]
    fn selectors_need_every_given_attribute_to_match() {
        let s = Sessions::new();
        let mut a = held("alice", [10, 0, 0, 2], "192.0.2.1:5000");
        a.acct_session_id = s.acct_session_id(1);
        s.insert(1, a);
        let mut b = held("bob", [10, 0, 0, 3], "192.0.2.2:5000");
        b.acct_session_id = s.acct_session_id(2);
        s.insert(2, b);
        let by_user = Selector {
            user_name: Some("alice".into()),
            ..Selector::default()
        };
        assert_eq!(s.select(&by_user), vec![1]);
        let by_id = Selector {
            acct_session_id: Some(s.acct_session_id(2)),
            ..Selector::default()
        };
        assert_eq!(s.select(&by_id), vec![2]);
        let mismatch = Selector {
            user_name: Some("alice".into()),
            framed_ip: Some(Ipv4Addr::new(10, 0, 0, 3)),
            ..Selector::default()
        };
        assert!(s.select(&mismatch).is_empty());
        let by_station = Selector {
            calling_station: Some("192.0.2.2".into()),
            ..Selector::default()
        };
        assert_eq!(s.select(&by_station), vec![2]);
        assert!(s.select(&Selector::default()).is_empty());
        assert_eq!(s.count_user("alice"), 1);
    }

    #[tokio::test]
    async fn idle_timeout_counts_from_the_last_packet_in() {
        let s = Arc::new(Sessions::new());
        let mut h = held("alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.idle_timeout = Some(1);
        let live = h.live.clone();
        s.insert(8, h);
        s.watch(8, None, |_| {});
        // Traffic from the client every 300 ms keeps it alive ...
        let mut reported = tunnel::SessionStats::default();
        let mut stats = tunnel::SessionStats::default();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stats.packets_in += 1;
            stats.ip_bytes_in += 100;
            live.add(&mut reported, &stats);
            assert!(!live.stop_requested());
        }
        // ... silence ends it about a second later.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(live.stop_requested());
        assert_eq!(
            s.with(8, |h| h.cause),
            Some(Some(TerminateCause::IdleTimeout))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn session_timeout_stops_the_session_with_its_cause() {
        let s = Arc::new(Sessions::new());
        let mut h = held("alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.session_timeout = Some(30);
        let live = h.live.clone();
        s.insert(7, h);
        s.watch(7, None, |_| {});
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!live.stop_requested());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(live.stop_requested());
        assert_eq!(
            s.with(7, |h| h.cause),
            Some(Some(TerminateCause::SessionTimeout))
        );
    }
}
