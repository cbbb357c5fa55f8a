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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interop::netns::{in_named_ns, Topology, LAN_HOST, SERVER_FOR_CLI1};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod support;
use support::*;

fn ras_client(state: &Path, socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(RAS)
        .arg("client")
        .arg("--state")
        .arg(state)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run ras client")
}

fn provision(state: &Path, socket: &Path, dir: &Path, text: &str) {
    let doc = dir.join("policy.toml");
    std::fs::write(&doc, text).unwrap();
    let units = dir.join("units");
    let out = ras_client(
        state,
        socket,
        &[
            "provision",
            doc.to_str().unwrap(),
            "--unit-dir",
            units.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip netns exec NS COMMAND…`, which must succeed.
fn ip_ns(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip -n {ns} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The daemon in namespace `ns`, its output echoed.
struct Daemon(Child);

impl Daemon {
    fn start(ns: &str, state: &Path, socket: &Path) -> Daemon {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, RAS, "client", "--state"])
            .arg(state)
            .arg("--socket")
            .arg(socket)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras client run");
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[daemon] {line}");
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "no control socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: the connection says goodbye and removes its TUN.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ras client events --json`, with each event's arrival instant.
struct EventStream {
    child: Child,
    events: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<String>,
}

impl EventStream {
    fn open(state: &Path, socket: &Path) -> EventStream {
        let mut child = Command::new(RAS)
            .arg("client")
            .arg("--state")
            .arg(state)
            .arg("--socket")
            .arg(socket)
            .args(["events", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ras client events");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[events] {line}");
                let value: Value = serde_json::from_str(&line).expect("an event is JSON");
                if tx.send((Instant::now(), value)).is_err() {
                    return;
                }
            }
        });
        EventStream {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event of kind `kind`, failing on any `unexpected` kind
    /// before it; every kind passed is remembered in `seen`.
    fn expect(&mut self, kind: &str, unexpected: &[&str], within: Duration) -> (Instant, Value) {
        let deadline = Instant::now() + within;
        loop {
            let (at, event) = self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no {kind} event within {within:?}"));
            let got = event["event"].as_str().unwrap_or_default().to_owned();
            self.seen.push(got.clone());
            if got == kind {
                return (at, event);
            }
            assert!(
                !unexpected.contains(&got.as_str()),
                "{got} before {kind}: {event}"
            );
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Pings `target` from namespace `ns` every 50 ms until one is answered:
/// the time from `since`.
fn first_echo(ns: &str, target: &str, since: Instant, within: Duration) -> Duration {
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "0.05", target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if ok {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < within,
            "no echo from {target} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Uplink A (the existing link, default route through it) and uplink B (a
/// new veth into the server's namespace; the client has an address on
/// another subnet there). The server's end of B is unnumbered (a host
/// route to the client's B address with the server's address as source,
/// and the client reaches that address on-link through B): a new server
/// address would make
/// strongSwan announce it with MOBIKE and probe paths from it, which is
/// not what this test is about. Dropped, it puts A back and removes B.
struct Uplinks {
    client_ns: String,
    server_ns: String,
    a_dev: String,
    a_gateway: String,
    b_dev: String,
}

impl Uplinks {
    #[allow(clippy::too_many_arguments)]
    fn create(
        client_ns: &str,
        server_ns: &str,
        a_dev: &str,
        a_gateway: &str,
        b_dev: &str,
        b_peer: &str,
        b_subnet: &str,
    ) -> Uplinks {
        let _ = Command::new("ip")
            .args(["-n", client_ns, "link", "del", b_dev])
            .output();
        ip_ns(
            client_ns,
            &[
                "link", "add", b_dev, "type", "veth", "peer", "name", b_peer, "netns", server_ns,
            ],
        );
        ip_ns(
            client_ns,
            &["addr", "add", &format!("{b_subnet}.2/24"), "dev", b_dev],
        );
        ip_ns(client_ns, &["link", "set", b_dev, "up"]);
        ip_ns(server_ns, &["link", "set", b_peer, "up"]);
        ip_ns(
            server_ns,
            &[
                "route",
                "add",
                &format!("{b_subnet}.2/32"),
                "dev",
                b_peer,
                "src",
                a_gateway,
            ],
        );
        ip_ns(
            client_ns,
            &[
                "route", "replace", "default", "via", a_gateway, "dev", a_dev,
            ],
        );
        Uplinks {
            client_ns: client_ns.into(),
            server_ns: server_ns.into(),
            a_dev: a_dev.into(),
            a_gateway: a_gateway.into(),
            b_dev: b_dev.into(),
        }
    }

    /// The default route through B, and A down.
    fn move_to_b(&self) {
        ip_ns(
            &self.client_ns,
            &[
                "route",
                "replace",
                "default",
                "via",
                &self.a_gateway,
                "dev",
                &self.b_dev,
                "onlink",
            ],
        );
        ip_ns(&self.client_ns, &["link", "set", &self.a_dev, "down"]);
    }
}

impl Drop for Uplinks {
    fn drop(&mut self) {
        let _ = self.server_ns.len();
        let ns = self.client_ns.as_str();
        let _ = Command::new("ip")
            .args(["-n", ns, "link", "del", &self.b_dev])
            .output();
        let _ = Command::new("ip")
            .args(["-n", ns, "link", "set", &self.a_dev, "up"])
            .output();
        let _ = Command::new("ip")
            .args(["-n", ns, "route", "del", "default", "via", &self.a_gateway])
            .output();
    }
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
