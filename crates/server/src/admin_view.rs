//! The admin API's window on a running server: the shared tables it reads
//! ([`AdminView::snapshot`], [`AdminView::dropped`]) and the one thing it
//! changes, ending sessions ([`AdminView::disconnect`]). Read-only except
//! for that; the HTTP handlers (`admin_api.rs`) are thin over it.

use std::sync::Arc;
use std::time::SystemTime;

use tunnel::pptp_server::GreDemux;
use tunnel::EndReason;

use crate::accounting::Accounting;
use crate::admin_snapshot::{
    session_view, unix_secs, CertificateView, Disconnected, PoolView, RadiusServerView,
    SessionFilter, SessionView, Snapshot,
};
use crate::dhcp_source::DhcpSource;
use crate::metrics::Metrics;
use crate::pool::StaticPool;
use crate::radius_io::RadiusHandle;
use crate::router::Router;
use crate::sessions::{Sessions, Stage};
use crate::SessionId;

/// Which sessions an administrator ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectTarget {
    /// One session, by id (at any stage).
    Session(SessionId),
    /// Every session of this authenticated user.
    User(String),
    /// Every session.
    All,
}

/// The counters of dropped packets the data path keeps.
#[derive(Clone, Default)]
pub struct DropSources {
    pub router: Option<Arc<Router>>,
    pub gre: Option<Arc<GreDemux>>,
    pub l2tp: Option<tunnel::l2tp_server::L2tpFront>,
    pub tun: Option<Arc<netdev::TunWriter>>,
    /// The IKE and ESP front end's drops, when `[ipsec]` is on.
    pub ipsec: Option<Arc<tunnel::ipsec_drops::IpsecCounters>>,
}

/// What the admin API reads.
pub struct AdminView {
    pub server_name: String,
    pub started_at: SystemTime,
    pub sessions: Arc<Sessions>,
    pub pool: Arc<StaticPool>,
    pub dhcp: Option<(String, Arc<DhcpSource>)>,
    /// The RADIUS clients (swapped by a reload).
    pub radius: Arc<arc_swap::ArcSwap<Vec<(&'static str, RadiusHandle)>>>,
    pub accounting: Option<Arc<Accounting>>,
    /// Swapped by a reload.
    pub certificate: Arc<arc_swap::ArcSwapOption<CertificateView>>,
    /// Reads the configuration file again (`POST /v1/reload`; `None`:
    /// tests).
    pub reloader: Option<Arc<crate::reload::Reloader>>,
    pub drops: DropSources,
    pub metrics: Arc<Metrics>,
    /// The NetBIOS datagram gateway, when `[netbios]` is enabled.
    pub netbios: Option<Arc<crate::netbios_driver::NetbiosGateway>>,
}

impl AdminView {
    /// A view of `sessions` and `pool` alone (tests; the server fills in
    /// the rest).
    pub fn new(server_name: &str, sessions: Arc<Sessions>, pool: Arc<StaticPool>) -> AdminView {
        AdminView {
            server_name: server_name.to_owned(),
            started_at: SystemTime::now(),
            sessions,
            pool,
            dhcp: None,
            radius: Default::default(),
            accounting: None,
            certificate: Default::default(),
            reloader: None,
            drops: DropSources::default(),
            metrics: Arc::new(Metrics::new()),
            netbios: None,
        }
    }

    /// The NetBIOS gateway's counters (forwarded, dropped by which rule),
    /// empty when it is off.
    pub fn netbios_counts(&self) -> Vec<(&'static str, u64)> {
        self.netbios
            .as_ref()
            .map(|n| n.counters())
            .unwrap_or_default()
    }

    /// The sessions `filter` lets through, by id.
    pub fn sessions(&self, filter: &SessionFilter) -> Vec<SessionView> {
        let (now, now_instant) = (SystemTime::now(), std::time::Instant::now());
        let mut all = self.sessions.map_all(|r| session_view(r, now, now_instant));
        all.retain(|s| filter.matches(s));
        all
    }

    /// Session `id`, if there is one.
    pub fn session(&self, id: SessionId) -> Option<SessionView> {
        let (now, now_instant) = (SystemTime::now(), std::time::Instant::now());
        self.sessions
            .with(id, |r| session_view(r, now, now_instant))
    }

    /// Everything the API shows, taken now.
    pub fn snapshot(&self) -> Snapshot {
        let now = SystemTime::now();
        let sessions = self.sessions(&SessionFilter::default());
        let counts = self.pool.counts();
        let mut pools = vec![PoolView {
            name: "static".into(),
            ranges: self
                .pool
                .client_ranges()
                .iter()
                .map(ToString::to_string)
                .collect(),
            capacity: counts.capacity,
            in_use: counts.in_use,
            free: counts.available(),
        }];
        if let Some((interface, dhcp)) = &self.dhcp {
            let c = dhcp.counts();
            let free = c.free as u64;
            let leased = c.leased as u64;
            pools.push(PoolView {
                name: "dhcp".into(),
                ranges: vec![interface.clone()],
                capacity: leased,
                in_use: leased.saturating_sub(free),
                free,
            });
        }
        let radius = self.radius.load();
        let radius_servers = radius
            .iter()
            .flat_map(|(role, handle)| {
                handle
                    .server_states()
                    .into_iter()
                    .map(move |(address, up)| RadiusServerView {
                        role: (*role).to_owned(),
                        address,
                        state: if up { "up" } else { "down" }.to_owned(),
                    })
            })
            .collect();
        Snapshot {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            server_name: self.server_name.clone(),
            started_at: unix_secs(self.started_at),
            now: unix_secs(now),
            sessions,
            pools,
            radius_servers,
            accounting_pending: self.accounting.as_ref().map(|a| a.pending()),
            certificate: self.certificate.load_full().map(|c| (*c).clone()),
        }
    }

    /// Ends the sessions `target` names, each as RFC 2866 §5.10
    /// Admin-Reset (so accounting Stop says so), the way an RFC 5176
    /// Disconnect-Request does. Returns the ids asked to end (none: no
    /// such session).
    pub fn disconnect(&self, target: &DisconnectTarget) -> Disconnected {
        let ids = match target {
            DisconnectTarget::Session(id) => self.sessions.ids_where(|r| r.id == *id),
            DisconnectTarget::User(user) => self
                .sessions
                .ids_where(|r| r.of_user_at(user, Stage::Addressed)),
            DisconnectTarget::All => self.sessions.ids_where(|_| true),
        };
        let mut ended = Vec::new();
        for id in ids {
            tracing::info!(
                session_id = id.raw(),
                "admin API: ending the session (Admin-Reset)"
            );
            if self.sessions.stop(
                id,
                EndReason::AdminReset("the administrator (ras session disconnect)".into()),
            ) {
                ended.push(id.raw());
            }
        }
        Disconnected { sessions: ended }
    }

    /// IKE and ESP datagrams the IPsec front end dropped, as
    /// `(protocol, reason, count)` (`ras_ipsec_dropped_total`); empty when
    /// IPsec is off.
    pub fn ipsec_dropped(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.drops
            .ipsec
            .as_ref()
            .map(|c| c.counts())
            .unwrap_or_default()
    }

    /// Packets the data path dropped so far, by reason (the names are the
    /// `reason` label of `ras_dropped_packets_total`).
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = Vec::new();
        if let Some(r) = &self.drops.router {
            out.push(("no_route", r.stats.no_route.load(Relaxed)));
            out.push(("session_queue_full", r.stats.queue_full.load(Relaxed)));
            out.push(("malformed_from_tun", r.stats.malformed.load(Relaxed)));
        }
        if let Some(t) = &self.drops.tun {
            out.push(("tun_queue_full", t.dropped()));
        }
        if let Some(g) = &self.drops.gre {
            out.push(("gre", g.dropped()));
        }
        if let Some(l) = &self.drops.l2tp {
            let c = l.counts();
            out.push(("l2tp_queue_full", c.queue_full));
            out.push(("l2tp_malformed", c.malformed));
            out.push(("l2tp_unknown_tunnel", c.unknown_tunnel));
            out.push(("l2tp_unknown_session", c.unknown_session));
            out.push(("l2tp_out_of_sequence", c.out_of_sequence));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ipv4Pool;
    use crate::policy_stages::Admitted;
    use crate::radius_auth::TunnelKind;
    use crate::session_record::SessionRecord;
    use std::net::Ipv4Addr;

    fn up(id: u64, user: &str, tunnel: TunnelKind, addr: u8) -> SessionRecord {
        let mut r = SessionRecord::new(
            SessionId::from_raw(id),
            format!("192.0.2.{id}:5000"),
            tunnel,
            format!("X-{id}"),
        );
        r.addressed(
            Some(user.into()),
            Admitted {
                grant: policy::Grant::default(),
                method: policy::AuthMethod::MsChapV2,
            },
            Ipv4Addr::new(10, 0, 10, addr),
        );
        r.stage = Stage::Up;
        r
    }

    fn view() -> AdminView {
        let sessions = Arc::new(Sessions::new());
        sessions.insert(up(1, "alice", TunnelKind::Sstp, 21));
        sessions.insert(up(2, "bob", TunnelKind::Pptp, 22));
        sessions.insert(up(3, "alice", TunnelKind::Pptp, 23));
        sessions.open(SessionId::from_raw(4), "192.0.2.4:5000", TunnelKind::Sstp);
        let pool = Arc::new(StaticPool::new(&Ipv4Pool::default()));
        for id in 1..=3 {
            pool.allocate_now(SessionId::from_raw(id)).unwrap();
        }
        AdminView::new("vpn.example.com", sessions, pool)
    }

    #[test]
    fn the_snapshot_lists_sessions_in_order_and_the_pool_in_use() {
        let v = view();
        let s = v.snapshot();
        assert_eq!(s.server_name, "vpn.example.com");
        assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
        let ids: Vec<u64> = s.sessions.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(s.sessions[1].user.as_deref(), Some("bob"));
        assert_eq!(s.sessions[1].protocol, "pptp");
        assert_eq!(s.sessions[3].state, "authenticating");
        assert_eq!(s.pools.len(), 1);
        let p = &s.pools[0];
        assert_eq!(
            (p.name.as_str(), p.in_use, p.capacity, p.free),
            ("static", 3, 9, 6)
        );
        assert_eq!(p.ranges, vec!["10.0.10.21-10.0.10.29".to_owned()]);
        assert!(s.radius_servers.is_empty());
        assert_eq!(s.accounting_pending, None);
    }

    #[test]
    fn disconnect_ends_one_a_users_or_all_with_admin_reset() {
        let v = view();
        let live: Vec<_> = (1..=4)
            .map(|i| {
                v.sessions
                    .with(SessionId::from_raw(i), |r| r.live.clone())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            v.disconnect(&DisconnectTarget::Session(SessionId::from_raw(9))),
            Disconnected { sessions: vec![] }
        );
        assert_eq!(
            v.disconnect(&DisconnectTarget::Session(SessionId::from_raw(2))),
            Disconnected { sessions: vec![2] }
        );
        assert!(live[1].stop_requested());
        assert!(!live[0].stop_requested());
        assert_eq!(
            v.sessions.with(SessionId::from_raw(2), |r| r.cause),
            Some(Some(tunnel::TerminateCause::AdminReset))
        );
        assert_eq!(
            v.disconnect(&DisconnectTarget::User("alice".into())),
            Disconnected {
                sessions: vec![1, 3]
            }
        );
        assert!(live[0].stop_requested() && live[2].stop_requested());
        assert!(
            !live[3].stop_requested(),
            "still authenticating, not alice's yet"
        );
        let all = v.disconnect(&DisconnectTarget::All);
        assert_eq!(all.sessions, vec![1, 2, 3, 4]);
        assert!(live[3].stop_requested());
    }
}
