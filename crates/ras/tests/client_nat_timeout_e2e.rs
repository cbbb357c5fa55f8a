//! NAT-timeout detection of the `ras client` daemon (docs/MOBILE-CLIENT.md,
//! "NAT-timeout detection") against `ras server`, through a real NAT:
//!
//! ```text
//!  <p>-nc 192.168.77.2 ── 192.168.77.1 <p>-cli2 (masquerade, UDP
//!    (ras client run)          conntrack timeouts 20 s) 10.201.2.2 ── 10.201.2.1 <p>-srv
//! ```
//!
//! - With `[ikev2] nat_probe = true` the daemon measures the NAT's UDP
//!   timeout (expected 18 s: the mapping dies at 20 s, the probe schedule
//!   is 10, 20, 15, 17.5, 18.75 s), sets the keepalive below it, and after
//!   two idle minutes the tunnel still carries a ping with no reconnect.
//!   A second connection on the same network takes the remembered value.
//! - With `nat_probe = false` the status says it was not measured.
//!
//! Needs root; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use serde_json::Value;

mod support;
use support::client_daemon::*;
use support::*;

const NAT_SUBNET: &str = "192.168.77";

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client namespace behind a masquerading NAT (the topology's `cli2`
/// namespace) whose UDP mappings expire after 20 s idle. The sysctls are
/// per network namespace (checked on 6.x kernels): the host's stay as
/// they were. Dropped, the client namespace goes (and its veth with it).
struct NatClient {
    ns: String,
    nat: String,
    /// The NAT's interface towards the client (the client's gateway).
    outer: String,
}

impl NatClient {
    fn create(topo: &Topology) -> NatClient {
        let nat = topo.ns("cli2");
        let ns = format!("{}-nc", topo.prefix);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        sh(&["ip", "netns", "add", &ns]);
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let (inner, outer) = (format!("{}nci", topo.prefix), format!("{}nco", topo.prefix));
        sh(&[
            "ip", "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            "netns", &nat,
        ]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{NAT_SUBNET}.2/24"),
            "dev",
            &inner,
        ]);
        sh(&["ip", "-n", &ns, "link", "set", &inner, "up"]);
        sh(&[
            "ip",
            "-n",
            &nat,
            "addr",
            "add",
            &format!("{NAT_SUBNET}.1/24"),
            "dev",
            &outer,
        ]);
        sh(&["ip", "-n", &nat, "link", "set", &outer, "up"]);
        sh(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &format!("{NAT_SUBNET}.1"),
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &nat,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        let rules = format!(
            "table ip ras_nat_timeout {{\n counter keepalives {{ }}\n counter ike_esp {{ }}\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  ip saddr {NAT_SUBNET}.0/24 masquerade\n }}\n chain count {{\n  type filter hook forward priority filter; policy accept;\n  ip saddr {NAT_SUBNET}.0/24 udp dport 4500 udp length 9 counter name keepalives\n  ip saddr {NAT_SUBNET}.0/24 udp dport 4500 udp length != 9 counter name ike_esp\n }}\n}}\n"
        );
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &nat, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        nft.stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft");
        // After the masquerade loaded conntrack into this namespace.
        sh(&[
            "ip",
            "netns",
            "exec",
            &nat,
            "sysctl",
            "-qw",
            "net.netfilter.nf_conntrack_udp_timeout=20",
            "net.netfilter.nf_conntrack_udp_timeout_stream=20",
        ]);
        NatClient { ns, nat, outer }
    }

    /// The network key the daemon should use for the client's network
    /// (docs/MOBILE-CLIENT.md): its prefix, its gateway and the gateway's
    /// MAC address.
    fn network_key(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.nat, "-json", "link", "show", &self.outer])
            .output()
            .unwrap();
        let links: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mac = links[0]["address"].as_str().expect("the router's MAC");
        format!("{NAT_SUBNET}.0/24 via {NAT_SUBNET}.1 at {mac}")
    }

    /// (packets, bytes) a named counter of the NAT saw since the last
    /// reset, and resets it.
    fn counter(&self, name: &str) -> (u64, u64) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.nat,
                "nft",
                "reset",
                "counter",
                "ip",
                "ras_nat_timeout",
                name,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let number = |key: &str| {
            text.split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {text}"))
        };
        (number("packets"), number("bytes"))
    }
}

impl Drop for NatClient {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn status(state: &Path, socket: &Path) -> Value {
    let out = ras_client(state, socket, &["status", "--json"]);
    assert!(out.status.success());
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all[0].clone()
}

fn ping(ns: &str, target: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "2", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The lab: topology, NAT, `ras server` with IKEv2 (PSK) on the NAT's
/// side, the daemon behind the NAT with one always-on connection.
struct Lab {
    _events_dir: tempfile::TempDir,
    state: std::path::PathBuf,
    socket: std::path::PathBuf,
    client_ns: String,
    // Dropped in this order: the daemon first, then the server, the NAT
    // client namespace and the topology.
    daemon: Option<Daemon>,
    server: Option<Server>,
    nat: NatClient,
    _topo: Topology,
}

impl Lab {
    fn start(prefix: &str, nat_probe: bool) -> Lab {
        let topo = Topology::create(prefix).expect("namespaces");
        let nat = NatClient::create(&topo);
        let dir = tempfile::tempdir().unwrap();
        let psk = dir.path().join("psk");
        std::fs::write(&psk, "a pre-shared key for the NAT lab\n").unwrap();
        let config = dir.path().join("ras.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\nserver_name = \"ras-nt\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n\
                 [ipsec]\nlisten = \"{SERVER_FOR_CLI2}\"\npsk_file = {psk:?}\n\n\
                 [ikev2]\nauth = [\"psk\"]\nnat_probe = {nat_probe}\n\n[tun]\nname = \"{prefix}s0\"\n",
                dir.path().join("state")
            ),
        )
        .unwrap();
        let pw = password_file(dir.path(), "alice", "correct horse battery");
        add_user(&config, "alice", &pw, &[]);
        let server = Server::start(&topo, &config);
        let state = dir.path().join("client");
        let socket = dir.path().join("client.sock");
        let doc = dir.path().join("policy.toml");
        std::fs::write(
            &doc,
            format!(
                "[[connection]]\nname = \"natted\"\nservers = [\"{SERVER_FOR_CLI2}\"]\nprotocols = [\"ikev2\"]\nalways_on = true\ndns = false\nroutes = [\"172.31.0.0/24\"]\ninterface = \"{prefix}c0\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\nidentity = \"alice\"\npsk_file = {psk:?}\n"
            ),
        )
        .unwrap();
        let out = ras_client(
            &state,
            &socket,
            &[
                "provision",
                doc.to_str().unwrap(),
                "--unit-dir",
                dir.path().join("units").to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let daemon = Daemon::start(&nat.ns, &state, &socket);
        Lab {
            state,
            socket,
            client_ns: nat.ns.clone(),
            daemon: Some(daemon),
            server: Some(server),
            nat,
            _topo: topo,
            _events_dir: dir,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.daemon.take();
        self.server.take();
    }
}

#[test]
fn the_daemon_measures_a_20_s_nat_and_the_idle_tunnel_survives() {
    if !can_run() {
        return;
    }
    let lab = Lab::start("rasnt", true);
    let mut events = EventStream::open(&lab.state, &lab.socket);
    events.expect("connected", &["reconnecting"], Duration::from_secs(30));
    // The tunnel's report reaches the daemon's status on its own task:
    // give it a moment on a busy machine.
    let shown = Instant::now() + Duration::from_secs(3);
    let mut up = status(&lab.state, &lab.socket);
    while up["nat_probe"].is_null() && Instant::now() < shown {
        std::thread::sleep(Duration::from_millis(50));
        up = status(&lab.state, &lab.socket);
    }
    assert_eq!(up["nat_probe"], "measuring", "{up}");
    assert_eq!(up["keepalive_s"], 20, "the default until measured: {up}");
    let started = Instant::now();
    let measured = events
        .expect(
            "nat timeout measured",
            &["reconnecting", "disconnected"],
            Duration::from_secs(180),
        )
        .1;
    let took = started.elapsed();
    let seconds = measured["nat_timeout_s"].as_u64().expect("seconds");
    let keepalive = measured["keepalive_s"].as_u64().expect("keepalive");
    eprintln!(
        "NAT timeout measured: {seconds} s in {} s, keepalive {keepalive} s",
        took.as_secs()
    );
    assert!((14..=22).contains(&seconds), "{measured}");
    assert!(keepalive < seconds && keepalive >= 5, "{measured}");
    // Known by its prefix, gateway and the gateway's MAC, not our address.
    let network = lab.nat.network_key();
    assert_eq!(measured["network"], network.as_str(), "{measured}");
    let now = status(&lab.state, &lab.socket);
    assert_eq!(now["nat_timeout_s"].as_u64(), Some(seconds), "{now}");
    assert_eq!(now["keepalive_s"].as_u64(), Some(keepalive), "{now}");
    // Remembered for the network, root only.
    let file = lab.state.join("network/nat-timeouts.json");
    let remembered: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(remembered[&network].as_u64(), Some(seconds), "{remembered}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Two idle minutes: nothing but keepalives (and the IKE the server
    // may send); the tunnel stays and carries a ping afterwards.
    lab.nat.counter("keepalives");
    lab.nat.counter("ike_esp");
    let idle = events.during(Duration::from_secs(125));
    let (keepalives, keepalive_bytes) = lab.nat.counter("keepalives");
    let (other, other_bytes) = lab.nat.counter("ike_esp");
    eprintln!(
        "idle 125 s through the NAT: {keepalives} NAT keepalives ({keepalive_bytes} bytes of IP), {other} other IKE/ESP packets ({other_bytes} bytes) from the client; keepalive interval {keepalive} s"
    );
    // Keepalives at the measured interval (not the 20 s default).
    let expected = 125 / keepalive;
    assert!(
        keepalives >= expected.saturating_sub(1) && keepalives <= expected + 1,
        "{keepalives} keepalives in 125 s at {keepalive} s"
    );
    assert!(
        !idle
            .iter()
            .any(|e| e == "reconnecting" || e == "disconnected" || e == "connected"),
        "the tunnel reconnected while idle: {idle:?}"
    );
    assert!(
        ping(&lab.client_ns, LAN_HOST),
        "no echo through the tunnel after 2 idle minutes"
    );
    let after = status(&lab.state, &lab.socket);
    assert_eq!(after["state"], "connected", "{after}");
    assert_eq!(after["reconnects"], 0, "{after}");

    // Again on the same network: the remembered value, no measurement.
    // A key of an older version (our bare address) next to it is loaded
    // with the file and not taken for this network.
    let mut with_old = remembered.clone();
    with_old[format!("{NAT_SUBNET}.2")] = Value::from(99u64);
    std::fs::write(&file, serde_json::to_vec(&with_old).unwrap()).unwrap();
    let out = ras_client(&lab.state, &lab.socket, &["disconnect", "natted"]);
    assert!(out.status.success());
    events.expect("disconnected", &[], Duration::from_secs(15));
    let out = ras_client(&lab.state, &lab.socket, &["connect", "natted"]);
    assert!(out.status.success());
    // Said as soon as the IKE SA is up, before the link's `connected`.
    let again = events
        .expect(
            "nat timeout measured",
            &["disconnected"],
            Duration::from_secs(30),
        )
        .1;
    assert_eq!(again["nat_timeout_s"].as_u64(), Some(seconds), "{again}");
    assert_eq!(again["keepalive_s"].as_u64(), Some(keepalive), "{again}");
    assert_eq!(again["cause"], "remembered for this network", "{again}");
    assert_eq!(again["network"], network.as_str(), "{again}");
    events.expect("connected", &["disconnected"], Duration::from_secs(30));
    let s = status(&lab.state, &lab.socket);
    assert_eq!(s["nat_timeout_s"].as_u64(), Some(seconds), "{s}");
    assert_eq!(s["keepalive_s"].as_u64(), Some(keepalive), "{s}");
}

#[test]
fn without_nat_probe_on_the_server_the_client_says_not_measured() {
    if !can_run() {
        return;
    }
    let lab = Lab::start("rasnf", false);
    let mut events = EventStream::open(&lab.state, &lab.socket);
    events.expect("connected", &["reconnecting"], Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        let s = status(&lab.state, &lab.socket);
        if s["nat_probe"].is_string() || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        s["nat_probe"], "not measured: server does not offer it",
        "{s}"
    );
    assert_eq!(s["keepalive_s"], 20, "{s}");
    assert!(s["nat_timeout_s"].is_null(), "{s}");
    assert!(
        ping(&lab.client_ns, LAN_HOST),
        "the tunnel works all the same"
    );
}
