//! The client daemon's control socket (docs/MOBILE-CLIENT.md): JSON lines
//! over a Unix stream socket. The client writes one request line; the
//! daemon answers with one reply line, except for `events`, which it
//! answers with one line per event until the client goes away.

use serde::{Deserialize, Serialize};

/// The default socket (`--socket` or RAS_CLIENT_SOCKET override it).
pub const DEFAULT_SOCKET: &str = "/run/ras/client.sock";
/// The longest request line read (a request is a few dozen bytes).
pub const MAX_REQUEST: usize = 4096;

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    Connect {
        name: String,
    },
    Disconnect {
        name: String,
    },
    Events,
    /// Read the provisioning store again (`ras client provision` and
    /// `unprovision` send it to a running daemon).
    Reload,
    /// The measurements as Prometheus text (metrics.rs).
    Metrics,
}

/// The answer to `status`, `connect` and `disconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done (`connect`, `disconnect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionStatus>,
    /// `metrics`: the Prometheus text exposition (format 0.0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// One connection in `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub name: String,
    /// `down`, `connecting`, `connected`, `reconnecting`, `disconnected`,
    /// or `trusted` (wanted, but held down on a trusted network).
    pub state: String,
    /// The trusted network the machine is on, if any (docs/MOBILE-CLIENT.md).
    #[serde(default)]
    pub trusted_network: Option<String>,
    pub always_on: bool,
    /// The protocols in the order the next attempt tries them.
    pub protocols: Vec<String>,
    pub server: Option<String>,
    pub protocol: Option<String>,
    pub interface: String,
    pub address: Option<String>,
    /// Seconds since the link came up.
    pub uptime_s: Option<u64>,
    /// The tunnel device's counters (bytes and packets from and to it).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Round-trip time, when the protocol measured one.
    pub rtt_ms: Option<f64>,
    /// While connected: milliseconds from the start of the attempt that
    /// brought the link up to the link (PPP and IPCP, or the IKE and child
    /// SAs) being up.
    #[serde(default)]
    pub handshake_ms: Option<u64>,
    /// IKEv2 behind a NAT: how long the NAT keeps our UDP mapping, as
    /// measured (nat_probe.rs), the NAT keepalive interval in use, and the
    /// measurement in words.
    #[serde(default)]
    pub nat_timeout_s: Option<u64>,
    #[serde(default)]
    pub keepalive_s: Option<u64>,
    #[serde(default)]
    pub nat_probe: Option<String>,
    /// Attempts after the first since the connection was wanted.
    pub reconnects: u64,
    /// Reconnects since the daemon started, by cause class
    /// (metrics.rs `CAUSES`); never reset, as Prometheus counters.
    #[serde(default)]
    pub reconnect_causes: std::collections::BTreeMap<String, u64>,
    pub last_error: Option<String>,
}

/// One line of the `events` stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time, seconds.
    pub time: u64,
    pub connection: String,
    /// `connecting`, `connected`, `fallback` (a protocol failed, the next
    /// one is tried), `reconnecting` or `disconnected`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// `reconnecting`: the cause's class (metrics.rs `CAUSES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_class: Option<String>,
    /// `connected`: milliseconds from the start of the attempt to the
    /// link being up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<u64>,
    /// `fallback`: the protocol tried next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// `reconnecting`: seconds until the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<u64>,
    /// `network changed`: the way out before (interface and source
    /// address); `sa moved`: the local address before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// … and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `sa moved`: milliseconds from noticing the new address to the
    /// server's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// `nat timeout measured`: the network (our address towards the
    /// server), the NAT's UDP timeout and the keepalive interval now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_s: Option<u64>,
}

impl Event {
    /// One line for people (`ras client events` without --json).
    pub fn human(&self) -> String {
        format!(
            "{} {}",
            crate::admin_report::utc(self.time as i64),
            self.describe()
        )
    }

    /// [`Event::human`] without the time (for the log, which has its own).
    pub fn describe(&self) -> String {
        // Daemon-wide events (`network changed`) name no connection.
        let mut line = if self.connection.is_empty() {
            self.event.clone()
        } else {
            format!("{} {}", self.connection, self.event)
        };
        if let Some(p) = &self.protocol {
            line.push_str(&format!(" {p}"));
        }
        if let Some(s) = &self.server {
            line.push_str(&format!(" to {s}"));
        }
        if let (Some(f), Some(t)) = (&self.from, &self.to) {
            line.push_str(&format!(" from {} to {}", one_line(f), one_line(t)));
        }
        if let Some(ms) = self.took_ms {
            line.push_str(&format!(" in {ms} ms"));
        }
        if let Some(ms) = self.handshake_ms {
            line.push_str(&format!(" in {ms} ms"));
        }
        if let Some(a) = &self.address {
            line.push_str(&format!(", address {a}"));
        }
        if !self.dns.is_empty() {
            line.push_str(&format!(", DNS {}", self.dns.join(" ")));
        }
        if !self.routes.is_empty() {
            line.push_str(&format!(", routes {}", self.routes.join(" ")));
        }
        if let Some(n) = &self.network {
            line.push_str(&format!(" on network {}", one_line(n)));
        }
        if let Some(s) = self.nat_timeout_s {
            line.push_str(&format!(": {s} s"));
        }
        if let Some(k) = self.keepalive_s {
            line.push_str(&format!(", keepalive every {k} s"));
        }
        if let Some(c) = &self.cause {
            line.push_str(&format!(": {}", one_line(c)));
        }
        if let Some(n) = &self.next {
            line.push_str(&format!("; trying {n}"));
        }
        if let Some(s) = self.retry_in_s {
            line.push_str(&format!("; next attempt in {s} s"));
        }
        line
    }
}

/// Control characters out: one event is one line, whatever a server put
/// into an error message.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json_lines() {
        let r: Request = serde_json::from_str(r#"{"command":"connect","name":"office"}"#).unwrap();
        assert_eq!(
            r,
            Request::Connect {
                name: "office".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"command":"status"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"reboot"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"metrics"}"#).unwrap(),
            Request::Metrics
        );
    }

    #[test]
    fn an_event_is_one_line_for_people() {
        let e = Event {
            time: 0,
            connection: "office".into(),
            event: "reconnecting".into(),
            cause: Some("server\nclosed".into()),
            retry_in_s: Some(2),
            ..Event::default()
        };
        assert_eq!(
            e.human(),
            "1970-01-01 00:00:00 UTC office reconnecting: server closed; next attempt in 2 s"
        );
        let moved = Event {
            connection: "office".into(),
            event: "sa moved".into(),
            from: Some("10.1.0.2".into()),
            to: Some("10.2.0.2".into()),
            took_ms: Some(12),
            ..Event::default()
        };
        assert_eq!(
            moved.describe(),
            "office sa moved from 10.1.0.2 to 10.2.0.2 in 12 ms"
        );
        let measured = Event {
            connection: "office".into(),
            event: "nat timeout measured".into(),
            protocol: Some("ikev2".into()),
            network: Some("10.1.0.2".into()),
            nat_timeout_s: Some(18),
            keepalive_s: Some(15),
            ..Event::default()
        };
        assert_eq!(
            measured.describe(),
            "office nat timeout measured ikev2 on network 10.1.0.2: 18 s, keepalive every 15 s"
        );
        let up = Event {
            connection: "office".into(),
            event: "connected".into(),
            protocol: Some("ikev2".into()),
            server: Some("vpn:500".into()),
            handshake_ms: Some(84),
            address: Some("10.0.10.2".into()),
            ..Event::default()
        };
        assert_eq!(
            up.describe(),
            "office connected ikev2 to vpn:500 in 84 ms, address 10.0.10.2"
        );
        let changed = Event {
            event: "network changed".into(),
            from: Some("up-a (10.1.0.2)".into()),
            to: Some("up-b (10.2.0.2)".into()),
            ..Event::default()
        };
        assert_eq!(
            changed.describe(),
            "network changed from up-a (10.1.0.2) to up-b (10.2.0.2)"
        );
    }
}
