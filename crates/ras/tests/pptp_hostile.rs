//! Hostile GRE against a live PPTP session: while a client is up and a
//! checked transfer runs through it, a test program sends raw GRE
//! (IP protocol 47) datagrams for an unknown Call ID, for the session's Call
//! ID from the wrong address, truncated headers, and a flood of 100,000.
//! They cost only themselves: the transfer arrives intact, ping passes, a
//! new client still gets in, the server's memory stays bounded, and the
//! server says what it dropped in a few rate-limited log lines. Needs root;
//! skips with a message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use socket2::{Domain, Protocol, Socket, Type};

mod support;
use support::*;

const FLOOD: usize = 100_000;

fn connect(topo: &Topology, role: &'static str, server: &str, pw: &Path, tun: &str) -> Client {
    let url = format!("pptp://{server}");
    connect_to(topo, role, &url, "alice", pw, &["--no-dns"], tun)
}

/// Enhanced GRE (RFC 2637 §4.1): key present, version 1, PPP, with a
/// sequence number and `payload`.
fn gre(call_id: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut g = vec![0x30, 0x01, 0x88, 0x0b];
    g.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    g.extend_from_slice(&call_id.to_be_bytes());
    g.extend_from_slice(&seq.to_be_bytes());
    g.extend_from_slice(payload);
    g
}

/// Truncated or inconsistent headers.
fn truncated(call_id: u16) -> Vec<Vec<u8>> {
    let full = gre(call_id, 7, b"\xff\x03\xc0\x21");
    vec![
        full[..3].to_vec(),  // not even the base header
        full[..7].to_vec(),  // half a key
        full[..10].to_vec(), // S set, sequence number cut
        {
            // Payload Length says 1000, 4 present.
            let mut g = full.clone();
            g[4..6].copy_from_slice(&1000u16.to_be_bytes());
            g
        },
        {
            // Version 0 (RFC 2784 GRE), not PPTP's.
            let mut g = full.clone();
            g[1] = 0;
            g
        },
    ]
}

/// Send `datagrams` round-robin, `count` in all, from a raw GRE socket in
/// namespace `role` to `to`. Returns how many the kernel took.
fn send_gre(topo: &Topology, role: &str, to: &str, datagrams: &[Vec<u8>], count: usize) -> usize {
    let to: Ipv4Addr = to.parse().unwrap();
    topo.in_ns(role, || {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(47))).unwrap();
        let _ = socket.set_send_buffer_size(4 << 20);
        let addr = SocketAddr::V4(SocketAddrV4::new(to, 0)).into();
        let mut sent = 0;
        for i in 0..count {
            // A full send buffer is not the test's concern: retry once.
            let d = &datagrams[i % datagrams.len()];
            if socket.send_to(d, &addr).is_ok() || socket.send_to(d, &addr).is_ok() {
                sent += 1;
            }
        }
        sent
    })
    .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The number before `what` in a drop summary line.
fn count_before(line: &str, what: &str) -> u64 {
    line.split(what)
        .next()
        .and_then(|head| head.rsplit([' ', ',', ':']).find(|w| !w.is_empty()))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn pptp_hostile_gre_costs_only_itself() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("pptphost").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-pptp-hostile\"\n\n[sstp]\nlisten = []\n\n[pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\", \"{SERVER_FOR_CLI2}:1723\"]\nports = 4\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"rasph0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);

    let mut c1 = connect(&topo, "cli1", SERVER_FOR_CLI1, &pw, "pptp-h1");
    wait_address(&topo, &mut c1, Duration::from_secs(20)).expect("client up");
    let line = server.expect("PPTP call established", Duration::from_secs(5));
    let call_id: u16 = line
        .split("local_call_id=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the server's Call ID in its log");
    assert!(ping(&topo, "cli1", LAN_HOST));
    let unknown_call = call_id.wrapping_add(0x4000);
    let rss_before = rss_kib(server.child.id());

    let (checked, sent, lines) = std::thread::scope(|s| {
        // Real traffic through the session while the junk arrives.
        let running = s.spawn(|| transfer(&topo, "cli1", 24 * 1024 * 1024));
        std::thread::sleep(Duration::from_millis(300));
        let mut sent = [0usize; 6];
        // An unknown Call ID, from the second client network.
        sent[0] = send_gre(
            &topo,
            "cli2",
            SERVER_FOR_CLI2,
            &[gre(unknown_call, 1, b"\xff\x03\xc0\x21junk")],
            1000,
        );
        // The session's own Call ID from the wrong address, with sequence
        // numbers that would wreck the session's window if taken.
        let wrong: Vec<Vec<u8>> = (0..64u32)
            .map(|i| gre(call_id, 0x8000_0000 + i * 1000, b"\xff\x03\x00\x21spoofed"))
            .collect();
        sent[1] = send_gre(&topo, "cli2", SERVER_FOR_CLI2, &wrong, 1000);
        // Truncated headers from the wrong address, and from the client's
        // own address with its Call ID (they reach the session's GRE
        // decoder and stop there).
        sent[2] = send_gre(&topo, "cli2", SERVER_FOR_CLI2, &truncated(call_id), 1000);
        sent[3] = send_gre(&topo, "cli1", SERVER_FOR_CLI1, &truncated(call_id), 1000);
        // To the client, from the server's address: another call's GRE.
        sent[4] = send_gre(
            &topo,
            "srv",
            "10.201.1.2",
            &[gre(0x7777, 1, b"\xff\x03\xc0\x21junk")],
            1000,
        );
        // The flood: 100,000 datagrams for unknown calls, as fast as the
        // kernel takes them.
        let flood: Vec<Vec<u8>> = (0..256u16)
            .map(|i| gre(unknown_call.wrapping_add(i), u32::from(i), &[0u8; 64]))
            .collect();
        let started = Instant::now();
        sent[5] = send_gre(&topo, "cli2", SERVER_FOR_CLI2, &flood, FLOOD);
        eprintln!(
            "flood: {} datagrams sent in {:.2} s",
            sent[5],
            started.elapsed().as_secs_f64()
        );
        // The server stays responsive while the flood is handled: ping
        // through the session.
        assert!(ping(&topo, "cli1", LAN_HOST), "ping during the flood");
        let checked = running.join().unwrap();
        // Rate-limited summaries come at most every 5 s: collect 7 s.
        let lines = server.lines_for(Duration::from_secs(7));
        (checked, sent, lines)
    });
    let (digest_sent, digest_received, secs) = checked;
    assert_eq!(digest_sent, digest_received, "the transfer arrived intact");
    eprintln!("24 MB transfer during the junk took {secs:.2} s; sent {sent:?}");
    assert!(sent.iter().all(|&n| n > 0), "{sent:?}");

    // Memory: the junk is dropped, not queued.
    let rss_after = rss_kib(server.child.id());
    eprintln!("server RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "server memory grew from {rss_before} to {rss_after} KiB"
    );

    // The log says what was dropped, in a few lines, not one per datagram.
    let summaries: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("GRE datagrams dropped"))
        .collect();
    for l in &summaries {
        eprintln!("summary: {l}");
    }
    assert!(!summaries.is_empty(), "no drop summary in the log");
    assert!(summaries.len() <= 4, "{} summary lines", summaries.len());
    let unknown: u64 = summaries
        .iter()
        .map(|l| count_before(l, " for unknown calls"))
        .sum();
    let wrong: u64 = summaries
        .iter()
        .map(|l| count_before(l, " from the wrong address"))
        .sum();
    let malformed: u64 = summaries
        .iter()
        .map(|l| count_before(l, " malformed or truncated"))
        .sum();
    eprintln!("dropped by the server: {unknown} unknown call, {wrong} wrong address, {malformed} malformed");
    // The kernel may drop part of a flood before the server reads it, but
    // most arrives; what arrives is counted.
    assert!(unknown >= 1000, "{unknown}");
    assert!(wrong >= 1000, "{wrong}");
    assert!(malformed >= 1000, "{malformed}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GRE datagrams of this call dropped")),
        "the session reports the truncated datagrams it refused"
    );

    // Still working: ping, a transfer, and a new client gets in.
    assert!(ping(&topo, "cli1", LAN_HOST), "ping after the flood");
    let (a, b, _) = transfer(&topo, "cli1", 2 * 1024 * 1024);
    assert_eq!(a, b);
    let mut c2 = connect(&topo, "cli2", SERVER_FOR_CLI2, &pw, "pptp-h2");
    assert!(
        wait_address(&topo, &mut c2, Duration::from_secs(20)).is_some(),
        "a new client gets in after the flood"
    );
    assert!(ping(&topo, "cli2", LAN_HOST));
    assert!(
        c1.child.try_wait().unwrap().is_none(),
        "first client still up"
    );
    interrupt(&c1);
    interrupt(&c2);
    assert!(finish(c1, Duration::from_secs(15)).0);
    assert!(finish(c2, Duration::from_secs(15)).0);
}
