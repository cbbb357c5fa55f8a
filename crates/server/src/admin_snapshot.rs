//! What the admin API shows: plain serde structs, read from the server's
//! tables in one pass (`admin_view.rs` takes them), so the API, the CLI
//! and the tests all see the same facts. The JSON field names are part of
//! the API and documented in docs/ADMIN.md: add fields, never rename.
//!
//! Nothing secret is in here: no passwords, RADIUS secrets, pre-shared
//! keys or MPPE keys (the records hold none of them either, except what
//! the tunnel keeps to itself).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::access_policy::method_words;
use crate::session_record::{SessionRecord, Stage};

/// Everything `GET /v1/status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The server's version (the `ras` package version).
    pub version: String,
    /// The configured server name.
    pub server_name: String,
    /// When the server started, Unix seconds.
    pub started_at: u64,
    /// When the snapshot was taken, Unix seconds.
    pub now: u64,
    /// Every session the server holds a record for, by id.
    pub sessions: Vec<SessionView>,
    /// The address sources and how much of them is in use.
    pub pools: Vec<PoolView>,
    /// The RADIUS servers (authentication and accounting) and their state.
    pub radius_servers: Vec<RadiusServerView>,
    /// Accounting records waiting in the spool for a RADIUS server.
    pub accounting_pending: Option<u64>,
    /// The TLS/IKE server certificate.
    pub certificate: Option<CertificateView>,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The server's session id (what `ras session show/disconnect` take).
    pub id: u64,
    /// Acct-Session-Id (RFC 2866 §5.5), as sent to RADIUS.
    pub acct_session_id: String,
    /// The authenticated user, or the name given while authenticating.
    pub user: Option<String>,
    /// `sstp`, `pptp`, `l2tp`, `ikev2` or `dialup`.
    pub protocol: String,
    /// `authenticating`, `addressed` (admitted, holds an address) or `up`.
    pub state: String,
    /// The client's public (outer) address and port, when the peer is a
    /// network address; `peer` always says what the tunnel knows.
    pub client_address: Option<IpAddr>,
    pub client_port: Option<u16>,
    pub peer: String,
    /// The client's addresses inside the tunnel.
    pub tunnel_ipv4: Option<Ipv4Addr>,
    pub tunnel_ipv6: Option<Ipv6Addr>,
    /// `PAP`, `CHAP-MD5`, `MS-CHAP`, `MS-CHAPv2`, `EAP-MSCHAPv2`, `PEAP`.
    pub auth_method: Option<String>,
    /// What protects the traffic: `TLS` (SSTP), `IPsec ESP` (L2TP/IPsec,
    /// IKEv2), `MPPE 128-bit stateless` and the like, or `none`. Known
    /// once the link is up.
    pub encryption: Option<String>,
    /// NAS-Port-Type (RFC 2865 §5.41): `Virtual` for tunnels, `Async`
    /// for a serial line.
    pub nas_port_type: String,
    /// When the session was admitted (or first asked, before), Unix
    /// seconds.
    pub started_at: u64,
    /// IP octets and packets each way, from the client (`in`) and to it
    /// (`out`): the counters accounting reports.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// When the client last sent a packet, Unix seconds (none yet: null).
    pub last_activity: Option<u64>,
    /// RADIUS Class values (RFC 2865 §5.25) of the Access-Accept, hex.
    pub radius_class: Vec<String>,
    /// Networks routed through the session (RADIUS Framed-Route and
    /// Framed-IPv6-Route), `prefix/length`.
    #[serde(default)]
    pub framed_routes: Vec<String>,
}

/// An address source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    /// `static` (the configured ranges) or `dhcp`.
    pub name: String,
    /// The ranges (`FIRST-LAST`), or the DHCP interface.
    pub ranges: Vec<String>,
    /// Client addresses the source can hand out now.
    pub capacity: u64,
    /// Held by sessions.
    pub in_use: u64,
    /// Free to hand out.
    pub free: u64,
}

/// A RADIUS server as one of the server's RADIUS clients sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusServerView {
    /// `authentication` or `accounting`.
    pub role: String,
    pub address: SocketAddr,
    /// `up`, or `down` (it stopped answering; RFC 2865 §2.6's failover
    /// goes to the other one until its dead time is over).
    pub state: String,
}

/// The server certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    pub sha256_fingerprint: String,
    pub self_signed: bool,
}

/// The answer to a disconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnected {
    /// The ids of the sessions asked to end.
    pub sessions: Vec<u64>,
}

/// Unix seconds of `t` (0 before 1970).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The name of a stage in the API.
pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Authenticating => "authenticating",
        Stage::Addressed => "addressed",
        Stage::Up => "up",
    }
}

/// One record as the API shows it. `now` and `now_instant` are the same
/// moment on both clocks (the counters keep monotonic time).
pub fn session_view(
    r: &SessionRecord,
    now: SystemTime,
    now_instant: std::time::Instant,
) -> SessionView {
    let traffic = r.live.traffic();
    let peer: Option<SocketAddr> = r.peer.parse().ok();
    let last_input = r.live.last_input();
    // Never a packet: the counters' last input is their start.
    let last_activity = (traffic.packets_in > 0).then(|| {
        let ago = now_instant.saturating_duration_since(last_input);
        unix_secs(now.checked_sub(ago).unwrap_or(UNIX_EPOCH))
    });
    let user = r
        .user
        .clone()
        .or_else(|| (!r.claimed.user.is_empty()).then(|| r.claimed.user.clone()));
    let method = r
        .admitted
        .as_ref()
        .map(|a| a.method)
        .or(r.claimed.method)
        .map(|m| method_words(m).to_owned());
    let tunnel_ipv6 = r.routes.iter().find_map(|a| match a {
        IpAddr::V6(v6) => Some(*v6),
        IpAddr::V4(_) => None,
    });
    SessionView {
        id: r.id.raw(),
        acct_session_id: r.acct_session_id.clone(),
        user,
        protocol: r.tunnel.name().to_owned(),
        state: stage_name(r.stage).to_owned(),
        client_address: peer.map(|p| p.ip()),
        client_port: peer.map(|p| p.port()),
        peer: r.peer.clone(),
        tunnel_ipv4: r.address,
        tunnel_ipv6,
        auth_method: method,
        encryption: r.encryption.clone(),
        nas_port_type: match r.tunnel.nas_port_type() {
            radius::dict::NasPortType::Async => "Async",
            _ => "Virtual",
        }
        .to_owned(),
        started_at: unix_secs(r.started_at),
        bytes_in: traffic.octets_in,
        bytes_out: traffic.octets_out,
        packets_in: traffic.packets_in,
        packets_out: traffic.packets_out,
        last_activity,
        radius_class: r.granted.class.iter().map(hex::encode).collect(),
        framed_routes: r.framed_routes.iter().map(|f| f.to_string()).collect(),
    }
}

impl SessionView {
    /// How long the session has lasted at `now` (Unix seconds).
    pub fn duration(&self, now: u64) -> Duration {
        Duration::from_secs(now.saturating_sub(self.started_at))
    }
}

/// Which sessions a listing shows (`GET /v1/sessions?user=U&protocol=P`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFilter {
    pub user: Option<String>,
    pub protocol: Option<String>,
}

impl SessionFilter {
    pub fn matches(&self, s: &SessionView) -> bool {
        self.user
            .as_ref()
            .is_none_or(|u| s.user.as_ref() == Some(u))
            && self
                .protocol
                .as_ref()
                .is_none_or(|p| s.protocol.eq_ignore_ascii_case(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_stages::Admitted;
    use crate::radius_auth::TunnelKind;
    use crate::SessionId;

    fn record() -> SessionRecord {
        let mut r = SessionRecord::new(
            SessionId::from_raw(7),
            "198.51.100.9:40123".into(),
            TunnelKind::Pptp,
            "5F000000-00000007".into(),
        );
        r.claim("alice", None, Some(policy::AuthMethod::MsChapV2));
        r.addressed(
            Some("alice".into()),
            Admitted {
                grant: policy::Grant::default(),
                method: policy::AuthMethod::MsChapV2,
            },
            Ipv4Addr::new(10, 0, 10, 21),
        );
        r.stage = Stage::Up;
        r.routes = vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 10, 21)),
            IpAddr::V6("fd00:1::5".parse().unwrap()),
        ];
        r.encryption = Some("MPPE 128-bit stateless".into());
        r.granted.class = vec![b"gold".to_vec()];
        r
    }

    #[test]
    fn a_record_shows_its_facts_and_the_live_counters() {
        let r = record();
        let mut reported = tunnel::SessionStats::default();
        let stats = tunnel::SessionStats {
            ip_bytes_in: 1500,
            ip_bytes_out: 3000,
            packets_in: 3,
            packets_out: 4,
            ..Default::default()
        };
        r.live.add(&mut reported, &stats);
        let now = SystemTime::now();
        let v = session_view(&r, now, std::time::Instant::now());
        assert_eq!(v.id, 7);
        assert_eq!(v.acct_session_id, "5F000000-00000007");
        assert_eq!(v.user.as_deref(), Some("alice"));
        assert_eq!(v.protocol, "pptp");
        assert_eq!(v.state, "up");
        assert_eq!(v.client_address, Some("198.51.100.9".parse().unwrap()));
        assert_eq!(v.client_port, Some(40123));
        assert_eq!(v.tunnel_ipv4, Some(Ipv4Addr::new(10, 0, 10, 21)));
        assert_eq!(v.tunnel_ipv6, Some("fd00:1::5".parse().unwrap()));
        assert_eq!(v.auth_method.as_deref(), Some("MS-CHAPv2"));
        assert_eq!(v.encryption.as_deref(), Some("MPPE 128-bit stateless"));
        assert_eq!(v.nas_port_type, "Virtual");
        assert_eq!((v.bytes_in, v.bytes_out), (1500, 3000));
        assert_eq!((v.packets_in, v.packets_out), (3, 4));
        let last = v.last_activity.expect("a packet came in");
        assert!(last.abs_diff(unix_secs(now)) <= 1, "{last}");
        assert_eq!(v.radius_class, vec!["676f6c64".to_owned()]);
        // The JSON names are the API's.
        let json = serde_json::to_value(&v).unwrap();
        for key in [
            "id",
            "user",
            "protocol",
            "client_address",
            "client_port",
            "tunnel_ipv4",
            "tunnel_ipv6",
            "auth_method",
            "encryption",
            "nas_port_type",
            "started_at",
            "bytes_in",
            "bytes_out",
            "packets_in",
            "packets_out",
            "last_activity",
            "radius_class",
        ] {
            assert!(json.get(key).is_some(), "no {key} in {json}");
        }
        assert_eq!(json["client_address"], "198.51.100.9");
    }

    #[test]
    fn a_session_still_authenticating_shows_the_claimed_name_and_no_activity() {
        let mut r = SessionRecord::new(
            SessionId::from_raw(8),
            "/dev/ttyS0".into(),
            TunnelKind::Dialup,
            String::new(),
        );
        r.claim("bob", None, None);
        let v = session_view(&r, SystemTime::now(), std::time::Instant::now());
        assert_eq!(v.user.as_deref(), Some("bob"));
        assert_eq!(v.state, "authenticating");
        assert_eq!(v.client_address, None);
        assert_eq!(v.peer, "/dev/ttyS0");
        assert_eq!(v.nas_port_type, "Async");
        assert_eq!(v.last_activity, None);
        assert_eq!(v.auth_method, None);
    }

    #[test]
    fn filters_by_user_and_protocol() {
        let v = session_view(&record(), SystemTime::now(), std::time::Instant::now());
        let f = |user: Option<&str>, protocol: Option<&str>| SessionFilter {
            user: user.map(str::to_owned),
            protocol: protocol.map(str::to_owned),
        };
        assert!(f(None, None).matches(&v));
        assert!(f(Some("alice"), Some("PPTP")).matches(&v));
        assert!(!f(Some("bob"), None).matches(&v));
        assert!(!f(None, Some("sstp")).matches(&v));
    }
}
