//! How `ras status` and `ras session` print what the admin API answers:
//! tables with aligned columns, byte counts and durations a person reads
//! at a glance, dates in UTC. Pure functions of the answers (and of
//! `now`), so they are tested without a server.

use std::time::Duration;

use server::admin_snapshot::{SessionView, Snapshot};

/// `1536` → `1.5 KiB`; below 1 KiB the exact count (`512 B`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `3725 s` → `1h 02m`; `75 s` → `1m 15s`; `3 d` → `3d 00h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Rows under a header, each column as wide as its widest cell, two
/// spaces apart; columns in `right` are right-aligned (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The client's public address, `ip:port` (IPv6 bracketed), or the peer.
fn client(s: &SessionView) -> String {
    match (s.client_address, s.client_port) {
        (Some(std::net::IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        _ => s.peer.clone(),
    }
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `ras session list`.
pub fn sessions_table(sessions: &[SessionView], now: u64) -> String {
    if sessions.is_empty() {
        return "no sessions\n".into();
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                or_dash(s.user.as_deref()),
                s.protocol.clone(),
                client(s),
                or_dash(s.tunnel_ipv4),
                s.state.clone(),
                human_duration(s.duration(now)),
                human_bytes(s.bytes_in),
                human_bytes(s.bytes_out),
            ]
        })
        .collect();
    table(
        &[
            "ID", "USER", "PROTOCOL", "CLIENT", "ADDRESS", "STATE", "TIME", "IN", "OUT",
        ],
        &rows,
        &[0, 6, 7, 8],
    )
}

/// `ras session show ID`: one fact a line.
pub fn session_detail(s: &SessionView, now: u64) -> String {
    let idle = s.last_activity.map(|t| {
        format!(
            "{} ({} ago)",
            utc(t as i64),
            human_duration(Duration::from_secs(now.saturating_sub(t)))
        )
    });
    let class = (!s.radius_class.is_empty()).then(|| {
        s.radius_class
            .iter()
            .map(|h| class_words(h))
            .collect::<Vec<_>>()
            .join(", ")
    });
    let rows: Vec<Vec<String>> = [
        ("session", s.id.to_string()),
        ("Acct-Session-Id", s.acct_session_id.clone()),
        ("user", or_dash(s.user.as_deref())),
        ("protocol", s.protocol.clone()),
        ("state", s.state.clone()),
        ("client", client(s)),
        ("IPv4 in the tunnel", or_dash(s.tunnel_ipv4)),
        ("IPv6 in the tunnel", or_dash(s.tunnel_ipv6)),
        (
            "routed networks",
            if s.framed_routes.is_empty() {
                "-".to_owned()
            } else {
                s.framed_routes.join(", ")
            },
        ),
        ("authentication", or_dash(s.auth_method.as_deref())),
        ("encryption", or_dash(s.encryption.as_deref())),
        ("NAS-Port-Type", s.nas_port_type.clone()),
        (
            "started",
            format!(
                "{} ({} ago)",
                utc(s.started_at as i64),
                human_duration(s.duration(now))
            ),
        ),
        (
            "from the client",
            format!("{} in {} packets", human_bytes(s.bytes_in), s.packets_in),
        ),
        (
            "to the client",
            format!("{} in {} packets", human_bytes(s.bytes_out), s.packets_out),
        ),
        ("last packet in", idle.unwrap_or_else(|| "none yet".into())),
        ("RADIUS Class", or_dash(class)),
    ]
    .into_iter()
    .map(|(k, v)| vec![format!("{k}:"), v])
    .collect();
    // No header line: drop the table's first (empty) one.
    let text = table(&["", ""], &rows, &[]);
    text.split_once('\n')
        .map_or(text.clone(), |(_, rest)| rest.to_owned())
}

/// A Class value: its text when it is printable ASCII, else `0x` and hex.
fn class_words(hex_value: &str) -> String {
    match hex::decode(hex_value) {
        Ok(bytes)
            if !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') =>
        {
            format!("\"{}\"", String::from_utf8_lossy(&bytes))
        }
        _ => format!("0x{hex_value}"),
    }
}

/// `ras status`.
pub fn status_summary(s: &Snapshot) -> String {
    let mut out = String::new();
    let up = human_duration(Duration::from_secs(s.now.saturating_sub(s.started_at)));
    out.push_str(&format!(
        "ras {} on {}, up {up} (since {})\n",
        s.version,
        s.server_name,
        utc(s.started_at as i64)
    ));
    let active = s.sessions.iter().filter(|x| x.state != "authenticating");
    let mut by_protocol: Vec<(String, usize)> = Vec::new();
    for x in active.clone() {
        match by_protocol.iter_mut().find(|(p, _)| *p == x.protocol) {
            Some((_, n)) => *n += 1,
            None => by_protocol.push((x.protocol.clone(), 1)),
        }
    }
    let count = active.count();
    let words: Vec<String> = by_protocol
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let authenticating = s.sessions.len() - count;
    out.push_str(&format!(
        "sessions: {count}{}, {authenticating} authenticating\n",
        if words.is_empty() {
            String::new()
        } else {
            format!(" ({})", words.join(", "))
        }
    ));
    let (bytes_in, bytes_out) = s
        .sessions
        .iter()
        .fold((0, 0), |(i, o), x| (i + x.bytes_in, o + x.bytes_out));
    out.push_str(&format!(
        "traffic of these sessions: {} from clients, {} to them\n",
        human_bytes(bytes_in),
        human_bytes(bytes_out)
    ));
    for p in &s.pools {
        out.push_str(&format!(
            "pool {} ({}): {} in use, {} free of {}\n",
            p.name,
            p.ranges.join(", "),
            p.in_use,
            p.free,
            p.capacity
        ));
    }
    if s.radius_servers.is_empty() {
        out.push_str("RADIUS: not used (local user store)\n");
    }
    for r in &s.radius_servers {
        out.push_str(&format!("RADIUS {} {}: {}\n", r.role, r.address, r.state));
    }
    if let Some(n) = s.accounting_pending {
        out.push_str(&format!("accounting records waiting to be sent: {n}\n"));
    }
    if let Some(c) = &s.certificate {
        let left = c.not_after - s.now as i64;
        let when = if left >= 0 {
            format!("in {} days", left / 86_400)
        } else {
            "EXPIRED".to_owned()
        };
        out.push_str(&format!(
            "certificate {}{}: expires {} ({when})\n",
            c.subject,
            if c.self_signed { ", self-signed" } else { "" },
            utc(c.not_after)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use server::admin_snapshot::{CertificateView, PoolView, RadiusServerView};

    pub(crate) fn session(id: u64, user: &str, protocol: &str, bytes_in: u64) -> SessionView {
        SessionView {
            id,
            acct_session_id: format!("5F-{id}"),
            user: Some(user.into()),
            protocol: protocol.into(),
            state: "up".into(),
            client_address: Some("198.51.100.7".parse().unwrap()),
            client_port: Some(50123),
            peer: "198.51.100.7:50123".into(),
            tunnel_ipv4: Some("10.0.10.21".parse().unwrap()),
            tunnel_ipv6: None,
            auth_method: Some("MS-CHAPv2".into()),
            encryption: Some("TLS".into()),
            nas_port_type: "Virtual".into(),
            started_at: 1_000_000,
            bytes_in,
            bytes_out: 2048,
            packets_in: 10,
            packets_out: 12,
            last_activity: Some(1_003_600),
            radius_class: vec!["676f6c64".into()],
            framed_routes: Vec::new(),
        }
    }

    #[test]
    fn bytes_and_durations_read_at_a_glance() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 + 1), "3.0 GiB");
        assert_eq!(human_duration(Duration::from_secs(7)), "7s");
        assert_eq!(human_duration(Duration::from_secs(75)), "1m 15s");
        assert_eq!(human_duration(Duration::from_secs(3725)), "1h 02m");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 86_400 + 5)),
            "3d 00h"
        );
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_945_602), "2025-12-05 14:40:02 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn the_session_table_aligns_its_columns() {
        let text = sessions_table(
            &[
                session(7, "alice", "sstp", 512),
                session(12, "bob-the-builder", "pptp", 5 * 1024 * 1024),
            ],
            1_003_725,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("ID  USER             PROTOCOL"),
            "{text}"
        );
        // Every column starts at the same place on every line.
        let at = |line: &str, word: &str| line.find(word).unwrap();
        assert_eq!(at(lines[0], "PROTOCOL"), at(lines[1], "sstp"));
        assert_eq!(at(lines[0], "PROTOCOL"), at(lines[2], "pptp"));
        assert_eq!(at(lines[0], "CLIENT"), at(lines[1], "198.51.100.7:50123"));
        // Numbers are right-aligned: the two ids end in the same column.
        assert_eq!(at(lines[1], "7 ") + 1, at(lines[2], "12 ") + 2);
        assert!(lines[1].contains("1h 02m"), "{text}");
        assert!(
            lines[1].contains("512 B") && lines[2].contains("5.0 MiB"),
            "{text}"
        );
        assert_eq!(sessions_table(&[], 0), "no sessions\n");
    }

    #[test]
    fn one_session_shows_every_fact_and_the_class_as_text() {
        let text = session_detail(&session(7, "alice", "sstp", 1536), 1_003_725);
        for want in [
            "session:",
            "5F-7",
            "alice",
            "198.51.100.7:50123",
            "10.0.10.21",
            "MS-CHAPv2",
            "TLS",
            "1.5 KiB in 10 packets",
            "2.0 KiB in 12 packets",
            "1970-01-12 13:46:40 UTC (1h 02m ago)",
            "(2m 05s ago)",
            "\"gold\"",
        ] {
            assert!(text.contains(want), "no {want:?} in\n{text}");
        }
        assert!(!text.contains("Some("), "no Debug formatting");
        assert_eq!(class_words("00ff"), "0x00ff");
    }

    #[test]
    fn the_status_summary_counts_sessions_pools_radius_and_the_certificate() {
        let mut authenticating = session(9, "carol", "sstp", 0);
        authenticating.state = "authenticating".into();
        let s = Snapshot {
            version: "1.2.3".into(),
            server_name: "vpn.example.com".into(),
            started_at: 1_000_000,
            now: 1_003_725,
            sessions: vec![
                session(7, "alice", "sstp", 1024),
                session(8, "bob", "pptp", 1024),
                authenticating,
            ],
            pools: vec![PoolView {
                name: "static".into(),
                ranges: vec!["10.0.10.21-10.0.10.29".into()],
                capacity: 9,
                in_use: 2,
                free: 7,
            }],
            radius_servers: vec![RadiusServerView {
                role: "authentication".into(),
                address: "127.0.0.1:1812".parse().unwrap(),
                state: "down".into(),
            }],
            accounting_pending: Some(3),
            certificate: Some(CertificateView {
                subject: "CN=vpn.example.com".into(),
                not_after: 1_003_725 + 30 * 86_400,
                sha256_fingerprint: "ab".into(),
                self_signed: true,
            }),
        };
        let text = status_summary(&s);
        for want in [
            "ras 1.2.3 on vpn.example.com, up 1h 02m",
            "sessions: 2 (sstp 1, pptp 1), 1 authenticating",
            "pool static (10.0.10.21-10.0.10.29): 2 in use, 7 free of 9",
            "RADIUS authentication 127.0.0.1:1812: down",
            "accounting records waiting to be sent: 3",
            "certificate CN=vpn.example.com, self-signed: expires",
            "(in 30 days)",
        ] {
            assert!(text.contains(want), "no {want:?} in\n{text}");
        }
    }
}
