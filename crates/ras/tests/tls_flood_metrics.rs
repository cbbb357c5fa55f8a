//! A burst of bad ClientHellos costs a bounded number of log lines and is
//! counted exactly: one host opens connections to the SSTP port that send
//! a well-formed TLS record holding a ServerHelloDone where a ClientHello
//! belongs. rustls refuses each with a WARN line of its own ("Received a
//! ServerHelloDone handshake message while expecting [ClientHello]"); the
//! server filters rustls down to errors unless the operator's RUST_LOG
//! names rustls, rate-limits its own failure lines (failure_log.rs) and
//! counts every failure in `ras_tls_handshake_failures_total{listener,
//! reason}`. The second test asks for rustls' warnings and sees them, so
//! the first one's silence is the filter's doing. Needs root; skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use interop::netns::{Topology, SERVER_FOR_CLI1};

mod support;
use support::*;

const BURST: usize = 400;

/// A TLS record (RFC 8446 §5.1, handshake) with a ServerHelloDone (type
/// 14, RFC 5246 §7.4.5, empty body): it parses, and is out of place.
const SERVER_HELLO_DONE: [u8; 9] = [0x16, 0x03, 0x01, 0x00, 0x04, 0x0e, 0x00, 0x00, 0x00];

/// `count` connections to the SSTP port, 8 at a time, each sending the
/// record and reading until the server closes. Returns how many connected.
fn burst(topo: &Topology, count: usize) -> usize {
    topo.in_ns("cli1", || {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|w| {
                    s.spawn(move || {
                        let mut connected = 0;
                        for _ in (w..count).step_by(8) {
                            let Ok(mut c) = TcpStream::connect((SERVER_FOR_CLI1, 443)) else {
                                continue;
                            };
                            connected += 1;
                            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                            let _ = c.write_all(&SERVER_HELLO_DONE);
                            let mut sink = [0u8; 512];
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

fn start(name: &str, dir: &Path, rust_log: &str) -> (Topology, Server, std::path::PathBuf) {
    let topo = Topology::create(name).expect("namespaces");
    let state = dir.join("state");
    let config = dir.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-tlsflood\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n\
             [pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\"]\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"ras{name}\"\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(topo.command("srv", RAS), &config, rust_log);
    (topo, server, admin_socket_for(&config))
}

/// `ras_tls_handshake_failures_total{listener="sstp"}` by reason.
fn failures(socket: &Path) -> Vec<(String, f64)> {
    use prometheus_parse::Value;
    let answer = server::admin_client::request(socket, "GET", "/metrics").expect("GET /metrics");
    let text = String::from_utf8(answer.body).unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "ras_tls_handshake_failures_total"
                && s.labels.get("listener") == Some("sstp")
        })
        .map(|s| {
            let v = match s.value {
                Value::Counter(v) | Value::Untyped(v) => v,
                ref other => panic!("{other:?}"),
            };
            (s.labels.get("reason").unwrap_or("").to_owned(), v)
        })
        .collect()
}

fn rustls_lines(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(" rustls::") || l.contains("handshake message while expecting"))
        .count()
}

#[test]
fn a_burst_of_bad_client_hellos_is_counted_and_logged_at_a_bounded_rate() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (topo, server, admin) = start("tlsfl0", dir.path(), "info");
    let sent = burst(&topo, BURST);
    eprintln!("{sent} bad ClientHellos sent");
    assert!(sent > BURST / 2);
    let lines = server.lines_for(Duration::from_secs(2));
    let by_reason = failures(&admin);
    eprintln!(
        "{} log lines; ras_tls_handshake_failures_total: {by_reason:?}",
        lines.len()
    );
    let total: f64 = by_reason.iter().map(|(_, v)| v).sum();
    assert_eq!(total, sent as f64, "every failed handshake is counted");
    assert_eq!(
        by_reason
            .iter()
            .find(|(r, _)| r == "unexpected_message")
            .map(|(_, v)| *v),
        Some(sent as f64),
        "{by_reason:?}"
    );
    assert_eq!(rustls_lines(&lines), 0, "{lines:#?}");
    // Our own: 3 lines for the one host per 10 s window (the burst may
    // span two), and a summary.
    assert!(lines.len() <= 10, "{lines:#?}");
}

#[test]
fn rustls_warnings_are_there_when_the_operator_asks_for_them() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (topo, server, _admin) = start("tlsfl1", dir.path(), "info,rustls=warn");
    let sent = burst(&topo, 50);
    let lines = server.lines_for(Duration::from_secs(2));
    eprintln!("{sent} sent, {} rustls lines", rustls_lines(&lines));
    assert!(rustls_lines(&lines) >= sent, "{lines:#?}");
}
