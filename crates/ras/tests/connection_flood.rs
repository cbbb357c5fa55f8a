//! A flood of garbage connections costs log lines at a bounded rate: one
//! host opens 1,500 connections to the SSTP port that fail the TLS
//! handshake and 1,500 to the PPTP port that send junk instead of a
//! Start-Control-Connection-Request. The server logs the first few of each
//! one by one, counts the rest into one summary line per window, and still
//! logs the failure of a second host that fails at the same time (the
//! line that matters must not drown). Needs root; skips with a message
//! otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use interop::netns::{Topology, SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

const PER_PORT: usize = 1_500;

/// `count` connections to `port` from namespace `role`, each sending
/// `junk` and reading until the server closes; 8 at a time. Returns how
/// many connected.
fn flood(topo: &Topology, role: &str, server: &str, port: u16, junk: &[u8], count: usize) -> usize {
    topo.in_ns(role, || {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|w| {
                    s.spawn(move || {
                        let mut connected = 0;
                        for _ in (w..count).step_by(8) {
                            let Ok(mut c) = TcpStream::connect((server, port)) else {
                                continue;
                            };
                            connected += 1;
                            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                            let _ = c.write_all(junk);
                            let mut sink = [0u8; 4096];
                            while matches!(c.read(&mut sink), Ok(n) if n > 0) {}
                        }
                        connected
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        })
    })
    .unwrap()
}

/// The number in "PROTO: N more failed connections" summary lines.
fn summarised(lines: &[String], protocol: &str) -> usize {
    let prefix = format!("{protocol}: ");
    lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            let (n, tail) = rest.split_once(' ')?;
            tail.starts_with("more failed connections")
                .then(|| n.parse::<usize>().ok())
                .flatten()
        })
        .sum()
}

#[test]
fn a_connection_flood_is_logged_at_a_bounded_rate() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("connflood").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-flood\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n\
             [pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\", \"{SERVER_FOR_CLI2}:1723\"]\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"rasfl0\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(&topo, &config);

    // Not TLS at all; and 0xaa bytes where a PPTP control message's length
    // and magic cookie belong.
    let tls_junk = [&[0x16u8, 0x03, 0x01, 0xff, 0xff][..], &[0xaa; 512]].concat();
    let pptp_junk = [0xaau8; 512];
    let (sstp_sent, pptp_sent) = std::thread::scope(|s| {
        let sstp = s.spawn(|| flood(&topo, "cli1", SERVER_FOR_CLI1, 443, &tls_junk, PER_PORT));
        let pptp = s.spawn(|| flood(&topo, "cli1", SERVER_FOR_CLI1, 1723, &pptp_junk, PER_PORT));
        // Meanwhile another host fails once: its line must be there.
        std::thread::sleep(Duration::from_millis(500));
        flood(&topo, "cli2", SERVER_FOR_CLI2, 1723, &pptp_junk, 1);
        (sstp.join().unwrap(), pptp.join().unwrap())
    });
    eprintln!("connections: {sstp_sent} to SSTP, {pptp_sent} to PPTP");
    assert!(sstp_sent > PER_PORT / 2 && pptp_sent > PER_PORT / 2);

    // Summaries come once a 10 s window has passed, looked at every 2 s.
    let lines = server.lines_for(Duration::from_secs(13));
    let one_by_one = |proto: &str, from: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!("{proto} from {from}:")))
            .count()
    };
    let sstp_lines = one_by_one("SSTP", "10.201.1.2");
    let pptp_lines = one_by_one("PPTP", "10.201.1.2");
    eprintln!(
        "{} lines in all; one by one: SSTP {sstp_lines}, PPTP {pptp_lines}",
        lines.len()
    );
    // A few lines per window (3 per host; the flood may span 3 windows).
    assert!((1..=9).contains(&sstp_lines), "{lines:#?}");
    assert!((1..=9).contains(&pptp_lines), "{lines:#?}");
    assert!(
        lines.len() < 100,
        "{} lines for {} failed connections",
        lines.len(),
        sstp_sent + pptp_sent
    );
    // Every failure is either a line or counted in a summary.
    let sstp_summed = summarised(&lines, "SSTP");
    let pptp_summed = summarised(&lines, "PPTP");
    assert_eq!(sstp_lines + sstp_summed, sstp_sent, "{lines:#?}");
    assert_eq!(
        pptp_lines + pptp_summed + one_by_one("PPTP", "10.201.2.2"),
        pptp_sent + 1,
        "{lines:#?}"
    );
    // The other host's failure has its own line.
    assert_eq!(one_by_one("PPTP", "10.201.2.2"), 1, "{lines:#?}");
}
