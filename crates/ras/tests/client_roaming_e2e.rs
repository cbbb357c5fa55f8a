//! `ras client` following the network (docs/MOBILE-CLIENT.md, "Network
//! changes"): the client namespace gets a second uplink, and during a
//! running checked transfer through the tunnel (TCP, SHA-256 at both ends)
//! the default route moves from uplink A to uplink B and A goes down.
//!
//! - IKEv2 against strongSwan (a real MOBIKE responder, started by
//!   `interop/strongswan.sh`): the daemon's netlink watcher sees the move
//!   (`network changed`), the tunnel announces the new address with
//!   UPDATE_SA_ADDRESSES (RFC 4555 §3.5; `sa moved`), keeps its virtual
//!   address, no reconnect happens, and the transfer completes intact.
//! - SSTP against `ras server`: the TCP connection cannot follow, so the
//!   daemon reconnects at once (`reconnecting` with the cause "network
//!   changed: default route moved from …", retry in 0 s), then `connected`.
//!
//! Each prints the time from the move to the first echo through the
//! tunnel (pings every 50 ms): the figure docs/BENCHMARKS.md records.
//! Needs root; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use interop::netns::{in_named_ns, Topology, LAN_HOST, SERVER_FOR_CLI1};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod support;
use support::client_daemon::*;
use support::*;

/// A TCP transfer from namespace `from` to `to_addr:port` (listening in
/// namespace `to`), paced so that it runs for a few seconds: both ends
/// hash what they saw. Joins to (sent digest, received digest).
fn paced_transfer(
    from: &str,
    to: &str,
    to_addr: &str,
    port: u16,
    size: usize,
) -> std::thread::JoinHandle<([u8; 32], [u8; 32])> {
    let addr = format!("{to_addr}:{port}");
    let listener = in_named_ns(to, || TcpListener::bind(&addr).unwrap()).unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        <[u8; 32]>::from(hash.finalize())
    });
    let addr = format!("{to_addr}:{port}");
    let mut stream = in_named_ns(from, || TcpStream::connect(&addr).unwrap()).unwrap();
    std::thread::spawn(move || {
        let mut hash = Sha256::new();
        let mut block = vec![0u8; 32 * 1024];
        let mut sent = 0usize;
        let mut x: u32 = 0x1234_5678;
        while sent < size {
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let n = block.len().min(size - sent);
            stream.write_all(&block[..n]).unwrap();
            hash.update(&block[..n]);
            sent += n;
            std::thread::sleep(Duration::from_millis(25));
        }
        drop(stream);
        (hash.finalize().into(), receiver.join().unwrap())
    })
}

#[test]
fn an_ikev2_tunnel_moves_its_sa_to_the_new_uplink_with_mobike() {
    let Some(sw) = interop::strongswan::start_or_skip() else {
        return;
    };
    let server_ns = "ras-sw";
    let client_ns = sw.client_ns.clone();
    let server_ip = sw.server_ip.to_string();
    let uplinks = Uplinks::create(
        &client_ns,
        server_ns,
        &sw.client_link,
        &server_ip,
        "rasswu2a",
        "rasswu2b",
        "10.74.9",
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    provision(
        &state,
        &socket,
        dir.path(),
        &format!(
            "[[connection]]\nname = \"roam\"\nservers = [\"{server_ip}\"]\nprotocols = [\"ikev2\"]\nalways_on = true\ndns = false\ninterface = \"ras-rm0\"\n[connection.auth]\nuser = \"{}\"\npassword = \"{}\"\n[connection.trust]\nca = {:?}\n",
            sw.user, sw.password, sw.ca
        ),
    );
    let _daemon = Daemon::start(&client_ns, &state, &socket);
    let mut events = EventStream::open(&state, &socket);
    let (_, connected) = events.expect("connected", &["reconnecting"], Duration::from_secs(30));
    let address = connected["address"]
        .as_str()
        .expect("an address")
        .to_owned();
    let target = sw.target.to_string();
    first_echo(&client_ns, &target, Instant::now(), Duration::from_secs(10));

    let transfer = paced_transfer(&client_ns, server_ns, &target, 9301, 4 * 1024 * 1024);
    std::thread::sleep(Duration::from_secs(1));
    let moved_at = Instant::now();
    uplinks.move_to_b();
    let (_, changed) = events.expect(
        "network changed",
        &["reconnecting"],
        Duration::from_secs(10),
    );
    assert_eq!(
        changed["from"].as_str(),
        Some(format!("{} ({})", sw.client_link, sw.client_ip).as_str()),
        "{changed}"
    );
    assert_eq!(changed["to"], "rasswu2a (10.74.9.2)", "{changed}");
    let (moved_event_at, moved) = events.expect(
        "sa moved",
        &["reconnecting", "disconnected"],
        Duration::from_secs(10),
    );
    assert_eq!(
        moved["from"].as_str(),
        Some(sw.client_ip.to_string().as_str())
    );
    assert_eq!(moved["to"], "10.74.9.2", "{moved}");
    let echo = first_echo(&client_ns, &target, moved_at, Duration::from_secs(15));
    eprintln!(
        "MOBIKE: sa moved event {} ms after the move (the exchange took {} ms); first echo through the tunnel after {} ms",
        moved_event_at.duration_since(moved_at).as_millis(),
        moved["took_ms"],
        echo.as_millis()
    );
    let (sent, received) = transfer.join().unwrap();
    assert_eq!(sent, received, "4 MB arrived intact across the move");
    // Same tunnel: same address on the TUN, no reconnect in between.
    let status = ras_client(&state, &socket, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["state"], "connected", "{status}");
    assert_eq!(status[0]["address"], address.as_str(), "{status}");
    assert_eq!(status[0]["reconnects"], 0, "{status}");
    assert!(!events.seen.iter().any(|e| e == "reconnecting"));
    // strongSwan's view: the IKE SA is with our new address.
    let sas = sw.list_sas();
    assert!(sas.contains("10.74.9.2[4500]"), "{sas}");
}

#[test]
fn an_sstp_connection_reconnects_at_once_and_says_the_network_changed() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rasrm").expect("namespaces");
    let cli = topo.ns("cli1");
    let srv = topo.ns("srv");
    let uplinks = Uplinks::create(
        &cli,
        &srv,
        "rasrmc1a",
        SERVER_FOR_CLI1,
        "rasrmu2a",
        "rasrmu2b",
        "10.202.1",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nserver_name = \"ras-rm\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-rms0\"\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    provision(
        &state,
        &socket,
        dir.path(),
        &format!(
            "[[connection]]\nname = \"roam\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"sstp\"]\nalways_on = true\ndns = false\nroutes = [\"172.31.0.0/24\"]\ninterface = \"ras-rm1\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\n[connection.trust]\nfingerprint = \"{}\"\n",
            server.fingerprint
        ),
    );
    let _daemon = Daemon::start(&cli, &state, &socket);
    let mut events = EventStream::open(&state, &socket);
    events.expect("connected", &["reconnecting"], Duration::from_secs(30));
    first_echo(&cli, LAN_HOST, Instant::now(), Duration::from_secs(10));

    let moved_at = Instant::now();
    uplinks.move_to_b();
    let (_, changed) = events.expect("network changed", &["connected"], Duration::from_secs(10));
    assert_eq!(changed["from"], "rasrmc1a (10.201.1.2)", "{changed}");
    assert_eq!(changed["to"], "rasrmu2a (10.202.1.2)", "{changed}");
    let (_, reconnecting) = events.expect("reconnecting", &["connected"], Duration::from_secs(10));
    assert_eq!(
        reconnecting["cause"],
        "network changed: default route moved from rasrmc1a (10.201.1.2) to rasrmu2a (10.202.1.2)",
        "{reconnecting}"
    );
    assert_eq!(reconnecting["retry_in_s"], 0, "at once: {reconnecting}");
    let (connected_at, _) = events.expect("connected", &["disconnected"], Duration::from_secs(30));
    let echo = first_echo(&cli, LAN_HOST, moved_at, Duration::from_secs(15));
    eprintln!(
        "SSTP: connected again {} ms after the move; first echo through the tunnel after {} ms",
        connected_at.duration_since(moved_at).as_millis(),
        echo.as_millis()
    );
    let (sent, received, _) = transfer(&topo, "cli1", 1024 * 1024);
    assert_eq!(sent, received, "1 MB intact over the new uplink");
    drop(events);
    drop(_daemon);
    drop(server);
}
