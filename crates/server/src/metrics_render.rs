//! `GET /metrics`: the Prometheus text exposition of the event metrics
//! (`metrics.rs`) and of what the snapshot already knows (sessions by
//! protocol and state, their bytes and packets, pool addresses, dropped
//! packets, the certificate's expiry, the build). The snapshot's values
//! are put in a registry made for this one scrape, so nothing is counted
//! twice. Names follow Prometheus' conventions (docs/ADMIN.md lists them):
//! `ras_` prefix, base units, `_total` on counters.

use std::collections::BTreeMap;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::admin_snapshot::Snapshot;
use crate::metrics::{Labels, Metrics};

/// The protocols every per-protocol series is shown for (zero when idle,
/// so that rates work from the first session on).
const PROTOCOLS: [&str; 5] = ["sstp", "pptp", "l2tp", "ikev2", "dialup"];
const STATES: [&str; 3] = ["authenticating", "addressed", "up"];

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The whole exposition (OpenMetrics text, which Prometheus reads).
pub fn render(
    metrics: &Metrics,
    snapshot: &Snapshot,
    dropped: &[(&str, u64)],
    ipsec_dropped: &[(&str, &str, u64)],
    netbios: &[(&str, u64)],
) -> String {
    let mut scrape = Registry::with_prefix("ras");

    let sessions = Family::<Labels, Gauge>::default();
    for p in PROTOCOLS {
        for st in STATES {
            let n = snapshot
                .sessions
                .iter()
                .filter(|s| s.protocol == p && s.state == st)
                .count();
            sessions
                .get_or_create(&labels(&[("protocol", p), ("state", st)]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    scrape.register(
        "sessions",
        "Sessions the server holds now, by protocol and state",
        sessions,
    );

    // Live sessions' counters plus those of sessions that ended.
    let mut traffic: BTreeMap<&str, [u64; 4]> = PROTOCOLS.iter().map(|p| (*p, [0; 4])).collect();
    for s in &snapshot.sessions {
        if let Some(t) = traffic.get_mut(s.protocol.as_str()) {
            t[0] += s.bytes_in;
            t[1] += s.bytes_out;
            t[2] += s.packets_in;
            t[3] += s.packets_out;
        }
    }
    for (p, ended) in metrics.ended_traffic() {
        if let Some(t) = traffic.get_mut(p) {
            t[0] += ended.octets_in;
            t[1] += ended.octets_out;
            t[2] += ended.packets_in;
            t[3] += ended.packets_out;
        }
    }
    let bytes = Family::<Labels, Counter>::default();
    let packets = Family::<Labels, Counter>::default();
    for (p, t) in &traffic {
        for (direction, b, n) in [("in", t[0], t[2]), ("out", t[1], t[3])] {
            let l = labels(&[("protocol", p), ("direction", direction)]);
            bytes.get_or_create(&l).inc_by(b);
            packets.get_or_create(&l).inc_by(n);
        }
    }
    scrape.register(
        "traffic_bytes",
        "IP bytes carried, from clients (in) and to them (out), by protocol",
        bytes,
    );
    scrape.register(
        "traffic_packets",
        "IP packets carried, from clients (in) and to them (out), by protocol",
        packets,
    );

    let pool = Family::<Labels, Gauge>::default();
    for p in &snapshot.pools {
        for (state, n) in [("in_use", p.in_use), ("free", p.free)] {
            pool.get_or_create(&labels(&[("pool", &p.name), ("state", state)]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    scrape.register(
        "pool_addresses",
        "Client addresses of each address source, by state",
        pool,
    );

    let drops = Family::<Labels, Counter>::default();
    for (reason, n) in dropped {
        drops
            .get_or_create(&labels(&[("reason", reason)]))
            .inc_by(*n);
    }
    scrape.register(
        "dropped_packets",
        "Packets the data path dropped, by reason",
        drops,
    );

    if !ipsec_dropped.is_empty() {
        // Per protocol (esp, ikev1, ikev2) and reason (tunnel::ipsec_drops
        // names each); shown only while IPsec is on.
        let ipsec = Family::<Labels, Counter>::default();
        for (protocol, reason, n) in ipsec_dropped {
            ipsec
                .get_or_create(&labels(&[("protocol", protocol), ("reason", reason)]))
                .inc_by(*n);
        }
        scrape.register(
            "ipsec_dropped",
            "IKE and ESP datagrams the IPsec front end dropped, by protocol and reason",
            ipsec,
        );
    }

    if !netbios.is_empty() {
        // The gateway's counters per rule of ras-datagram-processing-q97559
        // (docs/NETBIOS.md names each).
        let datagrams = Family::<Labels, Counter>::default();
        for (counter, n) in netbios {
            datagrams
                .get_or_create(&labels(&[("counter", counter)]))
                .inc_by(*n);
        }
        scrape.register(
            "netbios_gateway",
            "NetBIOS gateway events: datagrams forwarded, dropped by which rule, names",
            datagrams,
        );
    }

    let radius_up = Family::<Labels, Gauge>::default();
    for r in &snapshot.radius_servers {
        radius_up
            .get_or_create(&labels(&[
                ("role", &r.role),
                ("server", &r.address.to_string()),
            ]))
            .set(i64::from(r.state == "up"));
    }
    scrape.register(
        "radius_server_up",
        "1 while a RADIUS server answers, 0 after it stopped (failover)",
        radius_up,
    );

    if let Some(c) = &snapshot.certificate {
        let expiry = Gauge::<i64>::default();
        expiry.set(c.not_after);
        scrape.register(
            "certificate_expiry_timestamp_seconds",
            "When the server certificate expires (notAfter), Unix seconds",
            expiry,
        );
    }
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&labels(&[("version", &snapshot.version)]))
        .set(1);
    scrape.register("build_info", "The running version, as a label", build);

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode_registry(&mut out, metrics.registry());
    let _ = encode_registry(&mut out, &scrape);
    let _ = encode_eof(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_snapshot::{PoolView, SessionView};
    use crate::metrics::AttemptResult;
    use crate::radius_auth::TunnelKind;
    use std::time::Duration;

    fn session(protocol: &str, state: &str, bytes_in: u64) -> SessionView {
        SessionView {
            id: 1,
            acct_session_id: String::new(),
            user: Some("alice".into()),
            protocol: protocol.into(),
            state: state.into(),
            client_address: None,
            client_port: None,
            peer: String::new(),
            tunnel_ipv4: None,
            tunnel_ipv6: None,
            auth_method: None,
            encryption: None,
            nas_port_type: "Virtual".into(),
            started_at: 0,
            bytes_in,
            bytes_out: 7,
            packets_in: 2,
            packets_out: 1,
            last_activity: None,
            radius_class: vec![],
            framed_routes: Vec::new(),
        }
    }

    /// The value of the sample whose line starts with `series` (name and
    /// labels as rendered).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn snapshot_and_events_render_under_prometheus_names_without_users() {
        let m = Metrics::new();
        m.session_attempt(TunnelKind::Sstp, AttemptResult::Success);
        m.session_attempt(TunnelKind::Sstp, AttemptResult::Success);
        m.session_attempt(TunnelKind::Pptp, AttemptResult::AuthFailed);
        m.authentication("MS-CHAPv2", true);
        m.radius_request(
            "auth",
            Some("127.0.0.1:1812"),
            "accept",
            Duration::from_millis(3),
        );
        m.handshake(TunnelKind::Sstp, Duration::from_millis(250));
        m.session_ended(
            TunnelKind::Sstp,
            tunnel::Traffic {
                octets_in: 1000,
                octets_out: 0,
                packets_in: 10,
                packets_out: 0,
            },
        );
        let snap = Snapshot {
            version: "9.9.9".into(),
            server_name: "s".into(),
            started_at: 0,
            now: 0,
            sessions: vec![
                session("sstp", "up", 500),
                session("pptp", "authenticating", 0),
            ],
            pools: vec![PoolView {
                name: "static".into(),
                ranges: vec![],
                capacity: 9,
                in_use: 1,
                free: 8,
            }],
            radius_servers: vec![],
            accounting_pending: None,
            certificate: None,
        };
        let text = render(
            &m,
            &snap,
            &[("no_route", 4)],
            &[("esp", "replay", 3), ("ikev2", "unknown_sa", 0)],
            &[("group_forwarded", 7), ("dropped_gate_closed", 2)],
        );
        let v = |s: &str| value(&text, s).unwrap_or_else(|| panic!("no {s} in\n{text}"));
        assert_eq!(v("ras_sessions{protocol=\"sstp\",state=\"up\"}"), 1.0);
        assert_eq!(
            v("ras_sessions{protocol=\"pptp\",state=\"authenticating\"}"),
            1.0
        );
        assert_eq!(v("ras_sessions{protocol=\"l2tp\",state=\"up\"}"), 0.0);
        assert_eq!(
            v("ras_ipsec_dropped_total{protocol=\"esp\",reason=\"replay\"}"),
            3.0
        );
        assert_eq!(
            v("ras_ipsec_dropped_total{protocol=\"ikev2\",reason=\"unknown_sa\"}"),
            0.0
        );
        assert_eq!(
            v("ras_netbios_gateway_total{counter=\"group_forwarded\"}"),
            7.0
        );
        assert_eq!(
            v("ras_netbios_gateway_total{counter=\"dropped_gate_closed\"}"),
            2.0
        );
        assert_eq!(
            v("ras_traffic_bytes_total{protocol=\"sstp\",direction=\"in\"}"),
            1500.0,
            "live plus ended"
        );
        assert_eq!(
            v("ras_traffic_packets_total{protocol=\"sstp\",direction=\"in\"}"),
            12.0
        );
        assert_eq!(
            v("ras_session_attempts_total{protocol=\"sstp\",result=\"success\"}"),
            2.0
        );
        assert_eq!(
            v("ras_session_attempts_total{protocol=\"pptp\",result=\"auth_failed\"}"),
            1.0
        );
        assert_eq!(
            v("ras_authentications_total{method=\"MS-CHAPv2\",result=\"accept\"}"),
            1.0
        );
        assert_eq!(
            v("ras_radius_requests_total{role=\"auth\",server=\"127.0.0.1:1812\",result=\"accept\"}"),
            1.0
        );
        assert_eq!(
            v("ras_radius_request_duration_seconds_count{role=\"auth\"}"),
            1.0
        );
        assert_eq!(
            v("ras_handshake_duration_seconds_count{protocol=\"sstp\"}"),
            1.0
        );
        assert_eq!(v("ras_pool_addresses{pool=\"static\",state=\"free\"}"), 8.0);
        assert_eq!(v("ras_dropped_packets_total{reason=\"no_route\"}"), 4.0);
        assert_eq!(v("ras_build_info{version=\"9.9.9\"}"), 1.0);
        assert!(!text.contains("alice"), "no user names in metrics");
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
