//! The server's table of sessions: one [`SessionRecord`] per session,
//! keyed by its [`SessionId`], from the first question the session asks to
//! its end; its timers; and the ways to end a session from outside
//! (Session-Timeout and Idle-Timeout, RFC 2865 §5.27/§5.28; a
//! Disconnect-Request, RFC 5176).
//!
//! A record is opened by the first step of the pipeline that needs one and
//! removed once, by `down`: the session core asks `down` of every server
//! session that asked anything of its owner (see `session::HookRequest`),
//! refused logins and peers that went away mid-login included.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use tunnel::{EndReason, TerminateCause};

use crate::radius_auth::TunnelKind;
pub use crate::session_record::{Claimed, SessionRecord, Stage};
use crate::SessionId;

/// Why [`Sessions::admit_address`] did not record an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClash {
    /// Another session holds it.
    Taken,
    /// The session has ended meanwhile (its record is gone).
    Ended,
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

    fn matches(&self, h: &SessionRecord) -> bool {
        // Only sessions that hold something are named from outside.
        if self.is_empty() || h.stage < Stage::Addressed {
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
    map: Mutex<HashMap<SessionId, SessionRecord>>,
    /// Which session holds each IPv4 address: a login checks its address
    /// here instead of walking every record (at 10,000 sessions that walk
    /// halved the connect rate). Locked only while `map` is held, after
    /// it; a record's `address` is written only through
    /// [`Sessions::admit_address`] and [`Sessions::insert`], which keep
    /// this in step, and an entry is believed only if its record agrees.
    by_address: Mutex<HashMap<Ipv4Addr, SessionId>>,
    /// A prefix that makes Acct-Session-Ids unique across restarts and
    /// across servers (see [`crate::acct_session_id`]).
    boot: String,
}

impl Sessions {
    /// A table for a server known to RADIUS as "ras" (tests).
    pub fn new() -> Sessions {
        Sessions::for_nas("ras")
    }

    /// A table whose Acct-Session-Ids name `nas_identifier` (the
    /// NAS-Identifier this server sends), its start time and a random
    /// part.
    pub fn for_nas(nas_identifier: &str) -> Sessions {
        let boot = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Sessions {
            map: Mutex::new(HashMap::new()),
            by_address: Mutex::new(HashMap::new()),
            boot: crate::acct_session_id::prefix(nas_identifier, boot, rand::random()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionRecord>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address index; take it only while holding [`Self::lock`].
    fn lock_addresses(&self) -> std::sync::MutexGuard<'_, HashMap<Ipv4Addr, SessionId>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Acct-Session-Id of this start of the server itself (its
    /// Accounting-On and Accounting-Off): session number 0, which no
    /// session has.
    pub fn server_acct_session_id(&self) -> String {
        format!("{}-{:08X}", self.boot, 0)
    }

    /// The Acct-Session-Id of session `id`.
    pub fn acct_session_id(&self, id: SessionId) -> String {
        format!("{}-{:08X}", self.boot, id.raw())
    }

    /// Makes sure session `id` has a record (a new one, authenticating, if
    /// it had none).
    pub fn open(&self, id: SessionId, peer: &str, tunnel: TunnelKind) {
        let acct_session_id = self.acct_session_id(id);
        self.lock()
            .entry(id)
            .or_insert_with(|| SessionRecord::new(id, peer.to_owned(), tunnel, acct_session_id));
    }

    /// Puts `record` in the table (replacing one with its id).
    pub fn insert(&self, record: SessionRecord) {
        let mut map = self.lock();
        if let Some(addr) = record.address {
            self.lock_addresses().insert(addr, record.id);
        }
        map.insert(record.id, record);
    }

    /// Records that session `id` holds `addr`, with `apply` (the rest of
    /// the network stage's facts), unless another session holds `addr`:
    /// checked and written under one lock, so two sessions granted the
    /// same static address cannot both get it.
    pub fn admit_address(
        &self,
        id: SessionId,
        addr: Ipv4Addr,
        apply: impl FnOnce(&mut SessionRecord),
    ) -> Result<(), AddressClash> {
        let mut map = self.lock();
        let mut by_address = self.lock_addresses();
        let taken = by_address.get(&addr).is_some_and(|other| {
            *other != id && map.get(other).is_some_and(|r| r.address == Some(addr))
        });
        if taken {
            return Err(AddressClash::Taken);
        }
        let record = map.get_mut(&id).ok_or(AddressClash::Ended)?;
        let before = record.address;
        apply(record);
        if record.address != before {
            if let Some(old) = before {
                if by_address.get(&old) == Some(&id) {
                    by_address.remove(&old);
                }
            }
        }
        if let Some(now) = record.address {
            by_address.insert(now, id);
        }
        Ok(())
    }

    /// Brings session `id` up if `check` (the policy's link-up stage)
    /// allows it; `check` may ask how many other sessions of its user are
    /// up now (the count walks the table, so it is made only if asked):
    /// counted and marked under one lock, so two sessions of one user that
    /// come up together are counted against each other. `Ok(false)`: the
    /// session has no record (it ended meanwhile).
    pub fn admit_up<E>(
        &self,
        id: SessionId,
        check: impl FnOnce(&SessionRecord, &dyn Fn() -> u32) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut map = self.lock();
        let Some(record) = map.get(&id) else {
            return Ok(false);
        };
        let others_up = || match &record.user {
            Some(u) => {
                let n = map
                    .iter()
                    .filter(|(other, r)| **other != id && r.of_user_at(u, Stage::Up))
                    .count();
                u32::try_from(n).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        check(record, &others_up)?;
        if let Some(record) = map.get_mut(&id) {
            record.stage = Stage::Up;
        }
        Ok(true)
    }

    /// Removes session `id`'s record and stops its timers.
    pub fn remove(&self, id: SessionId) -> Option<SessionRecord> {
        let mut map = self.lock();
        let record = map.remove(&id);
        if let Some(addr) = record.as_ref().and_then(|r| r.address) {
            let mut by_address = self.lock_addresses();
            if by_address.get(&addr) == Some(&id) {
                by_address.remove(&addr);
            }
        }
        drop(map);
        if let Some(w) = record.as_ref().and_then(|r| r.watcher.as_ref()) {
            w.abort();
        }
        record
    }

    /// Runs `f` on session `id`'s record.
    pub fn with<R>(&self, id: SessionId, f: impl FnOnce(&mut SessionRecord) -> R) -> Option<R> {
        self.lock().get_mut(&id).map(f)
    }

    /// Records in the table, at any stage.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions holding resources (an address) now.
    pub fn active(&self) -> usize {
        self.lock()
            .values()
            .filter(|r| r.stage >= Stage::Addressed)
            .count()
    }

    /// `user`'s sessions at `stage` or later, `except` not counted.
    pub fn count_user(&self, user: &str, stage: Stage, except: SessionId) -> usize {
        self.lock()
            .iter()
            .filter(|(id, r)| **id != except && r.of_user_at(user, stage))
            .count()
    }

    /// Ends session `id` with `cause`; false if it does not exist.
    pub fn stop(&self, id: SessionId, reason: EndReason) -> bool {
        let live = self.with(id, |r| {
            r.cause.get_or_insert(reason.terminate_cause());
            r.live.clone()
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
    pub fn select(&self, selector: &Selector) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self
            .lock()
            .iter()
            .filter(|(_, r)| selector.matches(r))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// `f` of every record, in session id order (the admin snapshot).
    pub fn map_all<R>(&self, mut f: impl FnMut(&SessionRecord) -> R) -> Vec<R> {
        let map = self.lock();
        let mut records: Vec<&SessionRecord> = map.values().collect();
        records.sort_by_key(|r| r.id);
        records.into_iter().map(&mut f).collect()
    }

    /// The sessions whose record satisfies `pred`, in id order.
    pub fn ids_where(&self, pred: impl Fn(&SessionRecord) -> bool) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self
            .lock()
            .values()
            .filter(|r| pred(r))
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    /// Marks every session as ended by the server's own shutdown.
    pub fn mark_all(&self, cause: TerminateCause) {
        for r in self.lock().values_mut() {
            r.cause.get_or_insert(cause);
        }
    }

    /// Restarts session `id`'s timers after its limits changed (CoA),
    /// keeping its interim interval.
    pub fn rewatch(self: &Arc<Self>, id: SessionId) {
        let Some((interim_every, interim)) = self.with(id, |r| {
            if let Some(w) = r.watcher.take() {
                w.abort();
            }
            (r.interim_every, r.interim.clone())
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
        id: SessionId,
        interim_every: Option<Duration>,
        interim: impl Fn(SessionId) + Send + Sync + 'static,
    ) {
        let interim: Arc<dyn Fn(SessionId) + Send + Sync> = Arc::new(interim);
        let kept = interim.clone();
        let Some((live, started, session_timeout, idle_timeout)) = self.with(id, |r| {
            r.interim_every = interim_every;
            r.interim = Some(kept);
            (
                r.live.clone(),
                r.started,
                r.granted
                    .session_timeout
                    .map(|s| Duration::from_secs(s.into())),
                r.granted
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
            .with(id, |r| r.watcher = Some(handle.clone()))
            .is_none()
        {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_stages::Admitted;

    fn sid(n: u64) -> SessionId {
        SessionId::from_raw(n)
    }

    /// A session of `user` at `peer` holding `addr`.
    fn held(id: u64, user: &str, addr: [u8; 4], peer: &str) -> SessionRecord {
        let mut r = SessionRecord::new(sid(id), peer.into(), TunnelKind::Sstp, String::new());
        r.addressed(
            Some(user.into()),
            Admitted {
                grant: policy::Grant::default(),
                method: policy::AuthMethod::MsChapV2,
            },
            Ipv4Addr::from(addr),
        );
        r
    }

    #[test]
    fn an_address_held_by_another_session_is_refused() {
        let s = Sessions::new();
        let bob = Ipv4Addr::new(10, 80, 0, 50);
        for (id, peer) in [(1, "a"), (2, "b"), (3, "c")] {
            s.open(sid(id), peer, TunnelKind::Sstp);
        }
        let hold = |addr: Ipv4Addr| move |r: &mut SessionRecord| r.address = Some(addr);
        assert_eq!(s.admit_address(sid(1), bob, hold(bob)), Ok(()));
        assert_eq!(
            s.admit_address(sid(2), bob, hold(bob)),
            Err(AddressClash::Taken)
        );
        assert_eq!(s.with(sid(2), |r| r.address), Some(None));
        // The same session may hold its own again; another address is free.
        assert_eq!(s.admit_address(sid(1), bob, hold(bob)), Ok(()));
        let carol = Ipv4Addr::new(10, 80, 0, 51);
        assert_eq!(s.admit_address(sid(3), carol, hold(carol)), Ok(()));
        s.remove(sid(1));
        assert_eq!(s.admit_address(sid(2), bob, hold(bob)), Ok(()));
        // A session that ended meanwhile gets nothing.
        assert_eq!(
            s.admit_address(sid(9), carol, hold(carol)),
            Err(AddressClash::Taken)
        );
        let other = Ipv4Addr::new(10, 80, 0, 52);
        assert_eq!(
            s.admit_address(sid(9), other, hold(other)),
            Err(AddressClash::Ended)
        );
    }

    /// The address index follows records put in whole, addresses given
    /// up for another, and records removed.
    #[test]
    fn the_address_index_follows_inserts_moves_and_removals() {
        let s = Sessions::new();
        let hold = |addr: Ipv4Addr| move |r: &mut SessionRecord| r.address = Some(addr);
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
        s.insert(held(1, "alice", a.octets(), "x"));
        s.open(sid(2), "y", TunnelKind::Sstp);
        assert_eq!(
            s.admit_address(sid(2), a, hold(a)),
            Err(AddressClash::Taken)
        );
        // Session 1 moves to b: a is free, b is not.
        assert_eq!(s.admit_address(sid(1), b, hold(b)), Ok(()));
        assert_eq!(
            s.admit_address(sid(2), b, hold(b)),
            Err(AddressClash::Taken)
        );
        assert_eq!(s.admit_address(sid(2), a, hold(a)), Ok(()));
        s.remove(sid(1));
        s.open(sid(3), "z", TunnelKind::Sstp);
        assert_eq!(s.admit_address(sid(3), b, hold(b)), Ok(()));
        assert_eq!(
            s.admit_address(sid(3), a, hold(a)),
            Err(AddressClash::Taken)
        );
        assert_eq!(s.lock_addresses().len(), 2, "one entry per address held");
    }

    #[test]
    fn selectors_need_every_given_attribute_to_match() {
        let s = Sessions::new();
        let mut a = held(1, "alice", [10, 0, 0, 2], "192.0.2.1:5000");
        a.acct_session_id = s.acct_session_id(sid(1));
        s.insert(a);
        let mut b = held(2, "bob", [10, 0, 0, 3], "192.0.2.2:5000");
        b.acct_session_id = s.acct_session_id(sid(2));
        s.insert(b);
        // Still authenticating: never named from outside.
        s.open(sid(3), "192.0.2.3:5000", TunnelKind::Sstp);
        s.with(sid(3), |r| r.claim("alice", None, None));
        let by_user = Selector {
            user_name: Some("alice".into()),
            ..Selector::default()
        };
        assert_eq!(s.select(&by_user), vec![sid(1)]);
        let by_id = Selector {
            acct_session_id: Some(s.acct_session_id(sid(2))),
            ..Selector::default()
        };
        assert_eq!(s.select(&by_id), vec![sid(2)]);
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
        assert_eq!(s.select(&by_station), vec![sid(2)]);
        assert!(s.select(&Selector::default()).is_empty());
        assert_eq!(s.count_user("alice", Stage::Addressed, sid(99)), 1);
        assert_eq!(s.count_user("alice", Stage::Addressed, sid(1)), 0);
        assert_eq!(s.active(), 2);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn two_sessions_of_one_user_coming_up_are_counted_against_each_other() {
        let s = Sessions::new();
        s.insert(held(1, "alice", [10, 0, 0, 2], "a"));
        s.insert(held(2, "alice", [10, 0, 0, 3], "b"));
        s.insert(held(3, "bob", [10, 0, 0, 4], "c"));
        let at_most_one = |_: &SessionRecord, others: &dyn Fn() -> u32| {
            let others = others();
            if others >= 1 {
                Err(others)
            } else {
                Ok(())
            }
        };
        assert_eq!(s.admit_up(sid(1), at_most_one), Ok(true));
        assert_eq!(s.admit_up(sid(2), at_most_one), Err(1));
        assert_eq!(s.with(sid(2), |r| r.stage), Some(Stage::Addressed));
        assert_eq!(s.admit_up(sid(3), at_most_one), Ok(true));
        assert_eq!(s.admit_up(sid(7), at_most_one), Ok(false), "no record");
        s.remove(sid(1));
        assert_eq!(s.admit_up(sid(2), at_most_one), Ok(true));
    }

    #[tokio::test]
    async fn idle_timeout_counts_from_the_last_packet_in() {
        let s = Arc::new(Sessions::new());
        let mut h = held(8, "alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.idle_timeout = Some(1);
        let live = h.live.clone();
        s.insert(h);
        s.watch(sid(8), None, |_| {});
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
            s.with(sid(8), |h| h.cause),
            Some(Some(TerminateCause::IdleTimeout))
        );
    }

    /// NetBIOS datagrams the gateway takes are not activity (seed: datagram
    /// traffic does not keep a session up): a client that sends only those
    /// is idle.
    #[tokio::test]
    async fn netbios_datagrams_do_not_keep_a_session_alive() {
        let s = Arc::new(Sessions::new());
        let mut h = held(9, "alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.idle_timeout = Some(1);
        let live = h.live.clone();
        s.insert(h);
        s.watch(sid(9), None, |_| {});
        let mut reported = tunnel::SessionStats::default();
        let mut stats = tunnel::SessionStats::default();
        let started = std::time::Instant::now();
        while !live.stop_requested() && started.elapsed() < Duration::from_secs(4) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stats.packets_in += 1;
            stats.ip_bytes_in += 100;
            stats.packets_in_not_activity += 1;
            live.add(&mut reported, &stats);
        }
        assert!(live.stop_requested(), "datagrams kept the session up");
        let idle_for = started.elapsed();
        assert!(idle_for < Duration::from_millis(2500), "{idle_for:?}");
        assert_eq!(
            s.with(sid(9), |h| h.cause),
            Some(Some(TerminateCause::IdleTimeout))
        );
        assert!(live.traffic().packets_in > 0, "still counted as traffic");
    }

    #[tokio::test(start_paused = true)]
    async fn session_timeout_stops_the_session_with_its_cause() {
        let s = Arc::new(Sessions::new());
        let mut h = held(7, "alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.session_timeout = Some(30);
        let live = h.live.clone();
        s.insert(h);
        s.watch(sid(7), None, |_| {});
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!live.stop_requested());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(live.stop_requested());
        assert_eq!(
            s.with(sid(7), |h| h.cause),
            Some(Some(TerminateCause::SessionTimeout))
        );
    }

    /// A session's timer task holds the table; ending the session (its
    /// record removed, as `down` does for every session) must end the task,
    /// and a CoA's restart must not leave the old one behind, or each
    /// would keep the table and its records alive until its limits ran
    /// out (the `radius_dynauth` fuzz target ran out of memory on such
    /// tasks, left behind by its harness).
    #[tokio::test(start_paused = true)]
    async fn an_ended_session_leaves_no_timer_task_behind() {
        let s = Arc::new(Sessions::new());
        let mut h = held(5, "alice", [10, 0, 0, 2], "192.0.2.1:5000");
        h.granted.session_timeout = Some(3600);
        s.insert(h);
        s.watch(sid(5), Some(Duration::from_secs(600)), |_| {});
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&s), 2, "the timer task holds the table");
        s.rewatch(sid(5));
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&s), 2, "one task after a restart");
        s.remove(sid(5));
        tokio::task::yield_now().await;
        assert_eq!(Arc::strong_count(&s), 1, "no task after the session ended");
    }
}
