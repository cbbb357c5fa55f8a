//! What the server knows about one session, from its first question to its
//! end: one [`SessionRecord`] per session, kept in the session table
//! ([`crate::sessions::Sessions`]) under its [`SessionId`].
//!
//! Each step of the control pipeline (`pipeline.rs`) writes what it
//! learnt here, and the later steps read it back:
//!
//! | stage | written by | what |
//! |---|---|---|
//! | [`Stage::Authenticating`] | `authenticate` | the claimed user, groups and method ([`Claimed`]), the RADIUS EAP State, what an Access-Accept granted |
//! | [`Stage::Addressed`] | `network` | the policy's grant, the address (and a host route of its own), Acct-Session-Id, start time |
//! | [`Stage::Up`] | `up` | the routes in the router, an IPv6 prefix route of its own, framed routes (claimed, kernel routes of its own), accounting started, the timers |
//! | — | anyone | why the server ended it ([`SessionRecord::cause`]) |
//!
//! The record is removed once, by `down`. The record itself owns no task
//! and reads no clock except when a stage begins (`started`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tunnel::{LiveSession, TerminateCause};

use crate::policy_stages::Admitted;
use crate::radius_auth::{Granted, TunnelKind};
use crate::SessionId;

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The peer has named itself (or not yet): credentials are being
    /// checked. Holds nothing but facts.
    Authenticating,
    /// Authenticated, admitted by the policies, holding an address.
    Addressed,
    /// The link is up: routed, counted, accounted.
    Up,
}

/// What the peer said before it was authenticated, for the policy's
/// after-auth stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The name it gave.
    pub user: String,
    /// Its groups, when the user store knows them (RADIUS: none).
    pub groups: Vec<String>,
    /// The method it used; for EAP passed through, the last round that
    /// named one.
    pub method: Option<policy::AuthMethod>,
}

/// One session. The fields are the facts; the methods are the stage
/// transitions, each called by one step of the pipeline.
pub struct SessionRecord {
    pub id: SessionId,
    pub peer: String,
    pub tunnel: TunnelKind,
    pub stage: Stage,
    /// The authenticated user (from `Addressed` on).
    pub user: Option<String>,
    /// Before authentication: what the peer claimed.
    pub claimed: Claimed,
    /// The State of the last RADIUS Access-Challenge (RFC 2865 §5.24),
    /// for the next EAP round.
    pub eap_state: Option<Vec<u8>>,
    /// What the RADIUS Access-Accept granted (empty with the local
    /// store), then narrowed by the policy's limits.
    pub granted: Granted,
    /// The remote access policy that admitted the session, checked again
    /// when the link is up.
    pub admitted: Option<Admitted>,
    /// The client's IPv4 address.
    pub address: Option<Ipv4Addr>,
    /// A static address outside the address source (DHCP mode), routed to
    /// the TUN as a /32 for this session alone.
    pub own_ipv4_route: Option<Ipv4Addr>,
    /// A Framed-IPv6-Prefix routed to the TUN for this session alone.
    pub own_ipv6_prefix: Option<Ipv6Addr>,
    /// The addresses registered in the router.
    pub routes: Vec<IpAddr>,
    /// The framed routes (RADIUS Framed-Route, Framed-IPv6-Route) this
    /// session claimed in the router: it is their only way in and out.
    pub framed_routes: Vec<radius::FramedRoute>,
    /// Those of them whose kernel route to the TUN this session added
    /// (and so removes at its end).
    pub own_framed_routes: Vec<radius::FramedRoute>,
    /// Acct-Session-Id (RFC 2866 §5.5).
    pub acct_session_id: String,
    /// When the session was admitted (Acct-Session-Time, Session-Timeout).
    pub started: Instant,
    pub started_at: SystemTime,
    /// Accounting Start was recorded (so Stop must be).
    pub accounting_started: bool,
    /// Why the server ended it, when it did (RFC 2866 §5.10).
    pub cause: Option<TerminateCause>,
    /// What protects the traffic once the link is up (`TLS`, `IPsec ESP`,
    /// `MPPE 128-bit stateless`, `none`), for the admin API.
    pub encryption: Option<String>,
    /// When the session asked its first question (the handshake metric).
    pub opened: Instant,
    /// Counters and stop requests, shared with the tunnel's task.
    pub live: Arc<LiveSession>,
    pub(crate) watcher: Option<tokio::task::AbortHandle>,
    pub(crate) interim_every: Option<Duration>,
    pub(crate) interim: Option<Arc<dyn Fn(SessionId) + Send + Sync>>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("stage", &self.stage)
            .field("user", &self.user)
            .field("peer", &self.peer)
            .field("acct_session_id", &self.acct_session_id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// A session that has just asked its first question.
    pub fn new(
        id: SessionId,
        peer: String,
        tunnel: TunnelKind,
        acct_session_id: String,
    ) -> SessionRecord {
        let now = Instant::now();
        SessionRecord {
            id,
            peer,
            tunnel,
            stage: Stage::Authenticating,
            user: None,
            claimed: Claimed::default(),
            eap_state: None,
            granted: Granted::default(),
            admitted: None,
            address: None,
            own_ipv4_route: None,
            own_ipv6_prefix: None,
            routes: Vec::new(),
            framed_routes: Vec::new(),
            own_framed_routes: Vec::new(),
            acct_session_id,
            started: now,
            started_at: SystemTime::now(),
            accounting_started: false,
            cause: None,
            encryption: None,
            opened: now,
            live: Arc::new(LiveSession::new()),
            watcher: None,
            interim_every: None,
            interim: None,
        }
    }

    /// Authentication: the peer named itself. `groups` only when the user
    /// store knows them; `method` only when the request shows it (EAP's
    /// Identity round does not: the last round that did is kept).
    pub fn claim(
        &mut self,
        user: &str,
        groups: Option<Vec<String>>,
        method: Option<policy::AuthMethod>,
    ) {
        self.claimed.user = user.to_owned();
        if let Some(g) = groups {
            self.claimed.groups = g;
        }
        if method.is_some() {
            self.claimed.method = method;
        }
    }

    /// Network phase: the user is admitted and holds `address`. The
    /// session's time counts from here.
    pub fn addressed(&mut self, user: Option<String>, admitted: Admitted, address: Ipv4Addr) {
        let now = Instant::now();
        self.stage = Stage::Addressed;
        self.user = user;
        self.admitted = Some(admitted);
        self.address = Some(address);
        self.started = now;
        self.started_at = SystemTime::now();
    }

    /// Whether the record counts as one of `user`'s sessions at `stage`
    /// or later.
    pub fn of_user_at(&self, user: &str, stage: Stage) -> bool {
        self.stage >= stage && self.user.as_deref() == Some(user)
    }

    /// The /64 the client takes its IPv6 address from: the RADIUS
    /// Framed-IPv6-Prefix (RFC 3162 §2.3) when it is a /64, else the
    /// server's.
    pub fn ipv6_prefix(&self, server_prefix: Option<Ipv6Addr>) -> Option<Ipv6Addr> {
        self.granted
            .framed_ipv6_prefix
            .filter(|(_, len)| *len == 64)
            .map(|(p, _)| p)
            .or(server_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SessionRecord {
        SessionRecord::new(
            SessionId::from_raw(4),
            "192.0.2.1:5000".into(),
            TunnelKind::Sstp,
            "X-4".into(),
        )
    }

    #[test]
    fn claims_keep_known_groups_and_the_last_named_method() {
        let mut r = record();
        r.claim(
            "alice",
            Some(vec!["staff".into()]),
            Some(policy::AuthMethod::EapMsChapV2),
        );
        // A later EAP round: no groups (RADIUS), no method (Identity).
        r.claim("alice", None, None);
        assert_eq!(
            r.claimed,
            Claimed {
                user: "alice".into(),
                groups: vec!["staff".into()],
                method: Some(policy::AuthMethod::EapMsChapV2),
            }
        );
        assert_eq!(r.stage, Stage::Authenticating);
    }

    #[test]
    fn a_session_counts_for_its_user_once_addressed() {
        let mut r = record();
        r.claim("alice", None, None);
        assert!(!r.of_user_at("alice", Stage::Addressed), "only claimed");
        r.addressed(
            Some("alice".into()),
            Admitted {
                grant: policy::Grant::default(),
                method: policy::AuthMethod::MsChapV2,
            },
            Ipv4Addr::new(10, 0, 0, 2),
        );
        assert!(r.of_user_at("alice", Stage::Addressed));
        assert!(!r.of_user_at("alice", Stage::Up));
        assert!(!r.of_user_at("bob", Stage::Addressed));
        r.stage = Stage::Up;
        assert!(r.of_user_at("alice", Stage::Up));
    }

    #[test]
    fn only_a_radius_slash_64_replaces_the_server_prefix() {
        let server: Ipv6Addr = "fd00:1::".parse().unwrap();
        let mut r = record();
        assert_eq!(r.ipv6_prefix(Some(server)), Some(server));
        assert_eq!(r.ipv6_prefix(None), None);
        r.granted.framed_ipv6_prefix = Some(("2001:db8:1::".parse().unwrap(), 48));
        assert_eq!(r.ipv6_prefix(Some(server)), Some(server));
        r.granted.framed_ipv6_prefix = Some(("2001:db8:1:2::".parse().unwrap(), 64));
        assert_eq!(
            r.ipv6_prefix(Some(server)),
            Some("2001:db8:1:2::".parse().unwrap())
        );
    }
}
