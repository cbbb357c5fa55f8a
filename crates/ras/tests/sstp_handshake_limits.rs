//! Half-open connections cannot starve real SSTP clients (issue 18,
//! handshake flood): one host opens more connections that send nothing
//! than the server has ports (4) and than one address may have in the
//! TLS handshake stage (16, handshake_gate.rs). The ones over the
//! per-source cap are closed at once, the others when the TLS deadline
//! (10 s) passes; none of them holds a logical port, so a client from
//! another host connects (TLS, SSTP, PPP up) meanwhile. Every refusal is
//! counted in `ras_sstp_connections_refused_total{reason}` and told in a
//! summary line, not a line each. Needs root; skips with a message
//! otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use interop::netns::{SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

const HALF_OPEN: usize = 40;
const PER_SOURCE: usize = server::handshake_gate::PER_SOURCE_LIMIT as usize;

/// `ras_sstp_connections_refused_total` for `reason`.
fn refused(socket: &Path, reason: &str) -> f64 {
    counter(
        socket,
        "ras_sstp_connections_refused_total",
        &[("reason", reason)],
    )
}

/// Reads until the server closes (EOF or reset) or `limit` passes: when
/// it closed, after how long from `since`.
fn closed_within(c: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut sink = [0u8; 512];
    loop {
        let left = limit.checked_sub(since.elapsed())?;
        c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match c.read(&mut sink) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if since.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(since.elapsed()),
        }
    }
}

#[test]
fn half_open_connections_are_capped_and_closed_and_a_client_still_connects() {
    if !can_run() {
        return;
    }
    let topo = interop::netns::Topology::create("hslim").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-hslim\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\", \"{SERVER_FOR_CLI2}:443\"]\nports = 4\n\n\
             [pptp]\nlisten = []\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"rashs0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start_with(topo.command("srv", RAS), &config, "info");
    let admin = admin_socket_for(&config);

    // The half-open connections, from cli2: opened, then nothing sent.
    let opened = Instant::now();
    let half_open: Vec<TcpStream> = topo
        .in_ns("cli2", || {
            (0..HALF_OPEN)
                .map(|_| TcpStream::connect((SERVER_FOR_CLI2, 443)).expect("TCP connect"))
                .collect()
        })
        .unwrap();
    // Each watched by a thread of its own, so each close is timed when it
    // happens.
    let watchers: Vec<_> = half_open
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || closed_within(&mut c, opened, Duration::from_secs(14)))
        })
        .collect();

    // A real client from cli1 meanwhile: four ports, forty connections
    // waiting on them, and it still gets one.
    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "rashs1",
    );
    let address = wait_address(&topo, &mut client, Duration::from_secs(9));
    assert!(
        address.is_some(),
        "the client did not connect while half-open connections were held"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(10),
        "the client came up only after the TLS deadline freed the server"
    );

    // The ones over the cap were closed at once, the rest by the deadline
    // (10 s, and a little for the timer and the scheduler).
    let mut lifetimes: Vec<Duration> = watchers
        .into_iter()
        .map(|w| w.join().unwrap().expect("closed in time"))
        .collect();
    lifetimes.sort();
    eprintln!("half-open lifetimes: {lifetimes:?}");
    let quick = lifetimes
        .iter()
        .filter(|d| **d < Duration::from_secs(3))
        .count();
    assert_eq!(quick, HALF_OPEN - PER_SOURCE, "{lifetimes:?}");
    assert!(
        lifetimes[HALF_OPEN - 1] >= Duration::from_secs(9),
        "{lifetimes:?}"
    );
    assert_eq!(
        refused(&admin, "per_source"),
        (HALF_OPEN - PER_SOURCE) as f64
    );
    assert_eq!(refused(&admin, "ports_busy"), 0.0);

    // One summary line for the refusals, not a line each.
    let lines = server.lines_for(Duration::from_secs(3));
    let per_connection = lines
        .iter()
        .filter(|l| l.contains("10.201.2.2") && l.contains("SSTP"))
        .count();
    let summaries: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("closed before the TLS handshake"))
        .collect();
    // Usually one; two when the burst straddled a summary tick.
    assert!((1..=2).contains(&summaries.len()), "{lines:#?}");
    let summed: usize = summaries
        .iter()
        .filter_map(|l| {
            let head = &l[..l.find(&format!(" over {PER_SOURCE} per source"))?];
            head.rsplit(' ').next()?.parse::<usize>().ok()
        })
        .sum();
    assert_eq!(summed, HALF_OPEN - PER_SOURCE, "{summaries:?}");
    // The timed-out ones: a few lines of their own, then failure_log.rs's
    // summary.
    assert!(per_connection <= 6, "{lines:#?}");
    drop(client);
}
