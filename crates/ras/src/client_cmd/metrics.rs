//! The daemon's measurements as Prometheus text (`ras client metrics`,
//! the control socket's `metrics` request): the text exposition format
//! 0.0.4 — `# HELP` and `# TYPE` lines, then one sample per line with
//! label values escaped (backslash, double quote, line feed).
//!
//! Reconnect causes are free text (a server's error message may be in
//! them); the counters are kept by a small fixed set of classes so that
//! the number of series stays bounded whatever a server says.

use std::fmt::Write;

use super::protocol::ConnectionStatus;

/// The classes of reconnect causes, in the order they are listed.
pub const CAUSES: [&str; 7] = [
    "network_changed",
    "dead_peer",
    "auth_failed",
    "certificate",
    "server_unreachable",
    "connection_lost",
    "other",
];

/// The class of a reconnect cause, from the words the daemon and the
/// protocol clients put in it (connection.rs `Round`, netwatch.rs
/// `NetworkChange::cause`, client::sstp::ConnectError, the IKEv2
/// initiator's end reasons). The first match wins: a lost link whose
/// reason says the server stopped answering is a dead peer.
pub fn cause_class(cause: &str) -> &'static str {
    let c = cause.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| c.contains(w));
    if c.starts_with("network changed") {
        "network_changed"
    } else if any(&[
        "stopped answering",
        "dead peer",
        "did not answer a request",
        "echo requests",
    ]) {
        // PPP LCP Echo (RFC 1661 §5.8), IKEv1 DPD (RFC 3706), IKEv2
        // liveness (RFC 7296 §2.4) gave up on the server.
        "dead_peer"
    } else if any(&[
        "authentication failed",
        "authentication_failed",
        "no authentication protocol in common",
        "refused the credentials",
    ]) {
        "auth_failed"
    } else if any(&["certificate", "fingerprint", "trust anchor", "revoked"]) {
        "certificate"
    } else if any(&[
        "cannot connect to",
        "cannot resolve",
        "no answer within",
        "did not answer ike_sa_init",
        "connection refused",
        "unreachable",
        "no route to host",
        "timed out",
    ]) {
        "server_unreachable"
    } else if c.starts_with("connection lost") {
        "connection_lost"
    } else {
        "other"
    }
}

/// A label value in the exposition format: `\` as `\\`, `"` as `\"`, a
/// line feed as `\n` (the format's only escapes); other control
/// characters become spaces so that one sample stays one line.
pub fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One metric family: its HELP and TYPE lines and its samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, String)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: impl ToString) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
            .collect::<Vec<_>>()
            .join(",");
        self.samples.push((labels, value.to_string()));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", self.name);
        }
    }
}

/// Seconds from milliseconds, as the format wants base units.
fn seconds(ms: f64) -> String {
    format!("{}", ms / 1000.0)
}

/// The exposition text for every connection.
pub fn render(connections: &[ConnectionStatus]) -> String {
    let mut up = Family::new(
        "ras_client_connection_up",
        "gauge",
        "1 while the connection's link is up, else 0.",
    );
    let mut bytes = Family::new(
        "ras_client_bytes_total",
        "counter",
        "Bytes through the tunnel device since the link came up (in: from the server).",
    );
    let mut packets = Family::new(
        "ras_client_packets_total",
        "counter",
        "Packets through the tunnel device since the link came up (in: from the server).",
    );
    let mut handshake = Family::new(
        "ras_client_handshake_seconds",
        "gauge",
        "Time from starting the attempt to the link being up, for the link up now.",
    );
    let mut rtt = Family::new(
        "ras_client_rtt_seconds",
        "gauge",
        "The last round-trip time to the server.",
    );
    let mut uptime = Family::new(
        "ras_client_uptime_seconds",
        "gauge",
        "Time since the link came up.",
    );
    let mut reconnects = Family::new(
        "ras_client_reconnects_total",
        "counter",
        "Reconnects since the daemon started, by the class of their cause.",
    );
    let mut nat = Family::new(
        "ras_client_nat_timeout_seconds",
        "gauge",
        "How long the NAT in front of the client keeps its UDP mapping, as measured.",
    );
    let mut keepalive = Family::new(
        "ras_client_keepalive_seconds",
        "gauge",
        "The NAT keepalive interval in use.",
    );
    for c in connections {
        let name = c.name.as_str();
        let connected = c.state == "connected";
        let protocol = c.protocol.as_deref().unwrap_or_default();
        up.add(
            &[("connection", name), ("protocol", protocol)],
            u8::from(connected),
        );
        for (direction, b, p) in [
            ("in", c.bytes_in, c.packets_in),
            ("out", c.bytes_out, c.packets_out),
        ] {
            bytes.add(&[("connection", name), ("direction", direction)], b);
            packets.add(&[("connection", name), ("direction", direction)], p);
        }
        if let Some(ms) = c.handshake_ms {
            handshake.add(&[("connection", name)], seconds(ms as f64));
        }
        if let Some(ms) = c.rtt_ms {
            rtt.add(&[("connection", name)], seconds(ms));
        }
        if let Some(s) = c.uptime_s {
            uptime.add(&[("connection", name)], s);
        }
        for cause in CAUSES {
            let n = c.reconnect_causes.get(cause).copied().unwrap_or(0);
            reconnects.add(&[("connection", name), ("cause", cause)], n);
        }
        if let Some(s) = c.nat_timeout_s {
            nat.add(&[("connection", name)], s);
        }
        if let Some(s) = c.keepalive_s {
            keepalive.add(&[("connection", name)], s);
        }
    }
    let mut out = String::new();
    for family in [
        up, bytes, packets, handshake, rtt, uptime, reconnects, nat, keepalive,
    ] {
        family.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_fall_into_a_few_classes() {
        let cases = [
            (
                "network changed: default route moved from up-a (10.1.0.2) to up-b (10.2.0.2)",
                "network_changed",
            ),
            (
                "network changed: resumed after 600 s asleep",
                "network_changed",
            ),
            (
                "connection lost: peer stopped answering echo requests",
                "dead_peer",
            ),
            (
                "connection lost: the server did not answer a request within 30 s",
                "dead_peer",
            ),
            (
                "l2tp: the peer stopped answering dead peer detection",
                "dead_peer",
            ),
            (
                "sstp: authentication failed (error 691): E=691 R=0",
                "auth_failed",
            ),
            (
                "ikev2: the server refused IKE_AUTH: AUTHENTICATION_FAILED",
                "auth_failed",
            ),
            (
                "sstp: the server certificate's fingerprint is not the pinned one",
                "certificate",
            ),
            (
                "sstp: cannot connect to 10.0.1.1:443: Connection refused (os error 111)",
                "server_unreachable",
            ),
            (
                "ikev2: the server did not answer IKE_SA_INIT within 30 s",
                "server_unreachable",
            ),
            (
                "pptp: cannot resolve vpn.example: no such host",
                "server_unreachable",
            ),
            (
                "connection lost: the server closed the connection",
                "connection_lost",
            ),
            ("sstp: SSTP: unexpected HTTP status 500", "other"),
            ("", "other"),
        ];
        for (cause, class) in cases {
            assert_eq!(cause_class(cause), class, "{cause}");
            assert!(CAUSES.contains(&class));
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("plain"), "plain");
        assert_eq!(label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(label_value("one\ntwo\rthree"), "one\\ntwo three");
    }

    fn sample_value(text: &str, prefix: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    }

    #[test]
    fn the_text_has_help_type_and_one_sample_per_line() {
        let hostile = "evil\"} 1\nras_client_connection_up{connection=\"x\\";
        let mut causes = std::collections::BTreeMap::new();
        causes.insert("dead_peer".to_owned(), 3);
        let connections = [
            ConnectionStatus {
                name: "office".into(),
                state: "connected".into(),
                protocol: Some("ikev2".into()),
                bytes_in: 1500,
                bytes_out: 700,
                packets_in: 3,
                packets_out: 2,
                handshake_ms: Some(84),
                rtt_ms: Some(1.5),
                uptime_s: Some(60),
                nat_timeout_s: Some(20),
                keepalive_s: Some(15),
                reconnect_causes: causes,
                ..ConnectionStatus::default()
            },
            ConnectionStatus {
                name: hostile.into(),
                state: "down".into(),
                ..ConnectionStatus::default()
            },
        ];
        let text = render(&connections);
        let get = |p: &str| sample_value(&text, p);
        assert_eq!(
            get(r#"ras_client_connection_up{connection="office",protocol="ikev2"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            get(r#"ras_client_bytes_total{connection="office",direction="in"}"#).as_deref(),
            Some("1500")
        );
        assert_eq!(
            get(r#"ras_client_packets_total{connection="office",direction="out"}"#).as_deref(),
            Some("2")
        );
        assert_eq!(
            get(r#"ras_client_handshake_seconds{connection="office"}"#).as_deref(),
            Some("0.084")
        );
        assert_eq!(
            get(r#"ras_client_rtt_seconds{connection="office"}"#).as_deref(),
            Some("0.0015")
        );
        assert_eq!(
            get(r#"ras_client_reconnects_total{connection="office",cause="dead_peer"}"#).as_deref(),
            Some("3")
        );
        assert_eq!(
            get(r#"ras_client_reconnects_total{connection="office",cause="other"}"#).as_deref(),
            Some("0")
        );
        assert_eq!(
            get(r#"ras_client_nat_timeout_seconds{connection="office"}"#).as_deref(),
            Some("20")
        );
        assert_eq!(
            get(r#"ras_client_keepalive_seconds{connection="office"}"#).as_deref(),
            Some("15")
        );
        // The hostile name is one escaped label value, not a sample of its own.
        let escaped = r#"evil\"} 1\nras_client_connection_up{connection=\"x\\"#;
        assert_eq!(
            get(&format!(
                r#"ras_client_connection_up{{connection="{escaped}",protocol=""}}"#
            ))
            .as_deref(),
            Some("0")
        );
        // Down: no handshake or RTT sample for it.
        assert!(!text.contains(&format!(
            r#"ras_client_rtt_seconds{{connection="{escaped}""#
        )));
        // Every line is a comment or `name{labels} value` with a number.
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                assert!(
                    rest.starts_with("HELP ras_client_") || rest.starts_with("TYPE ras_client_")
                );
                continue;
            }
            let (_, value) = line.rsplit_once(' ').expect(line);
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(line.starts_with("ras_client_"), "{line}");
        }
        // Each family's TYPE comes once, before its samples.
        assert_eq!(
            text.matches("# TYPE ras_client_connection_up gauge")
                .count(),
            1
        );
        assert_eq!(
            text.matches("# TYPE ras_client_reconnects_total counter")
                .count(),
            1
        );
    }
}
