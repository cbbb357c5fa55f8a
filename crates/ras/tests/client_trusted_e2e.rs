//! Trusted networks, DNS suffixes and provisioning while the daemon runs
//! (docs/MOBILE-CLIENT.md, "Trusted networks"), against `ras server` over
//! SSTP, in a client namespace with two uplinks: A (10.201.1.2, inside the
//! connection's trusted network 10.201.1.0/24) and B (10.202.1.2, not).
//!
//! - On A the always-on connection stays down: a `trusted network` event
//!   and the state `trusted` in `ras client status --json`.
//! - The default route moves to B: `untrusted network`, then `connected`,
//!   an echo through the tunnel, and the policy's DNS suffix on the
//!   `search` line of the namespace's resolv.conf.
//! - Back on A: `disconnected` with the cause "on trusted network
//!   10.201.1.0/24", the resolv.conf as it was.
//! - `ras client connect` on A connects all the same (asked explicitly).
//! - `ras client provision` of a second document while the daemon runs:
//!   the new connection is in `status` (event `provisioned`); `unprovision`
//!   takes it out (event `unprovisioned`).
//!
//! Needs root; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use serde_json::Value;

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

    /// A up again, and the default route back through it.
    fn move_to_a(&self) {
        ip_ns(&self.client_ns, &["link", "set", &self.a_dev, "up"]);
        ip_ns(
            &self.client_ns,
            &[
                "route",
                "replace",
                "default",
                "via",
                &self.a_gateway,
                "dev",
                &self.a_dev,
            ],
        );
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

/// `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` bind-mounts over
/// /etc/resolv.conf for the daemon; removed at the end, with the
/// directories made here.
struct NsResolvConf {
    dir: PathBuf,
    made_root: bool,
}

impl NsResolvConf {
    fn write(ns: &str, text: &str) -> NsResolvConf {
        let made_root = !Path::new("/etc/netns").exists();
        let dir = Path::new("/etc/netns").join(ns);
        // A leftover of an earlier run (the namespace name is this test's).
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
        NsResolvConf { dir, made_root }
    }

    fn read(&self) -> String {
        std::fs::read_to_string(self.dir.join("resolv.conf")).unwrap()
    }
}

impl Drop for NsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_root {
            let _ = std::fs::remove_dir(Path::new("/etc/netns"));
        }
    }
}

fn status(state: &Path, socket: &Path) -> Value {
    let out = ras_client(state, socket, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn named<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

const ORIGINAL_RESOLV: &str = "nameserver 192.0.2.53\nsearch lan.example\n";

#[test]
fn an_always_on_connection_stays_down_on_a_trusted_network() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rastn").expect("namespaces");
    let cli = topo.ns("cli1");
    let srv = topo.ns("srv");
    let uplinks = Uplinks::create(
        &cli,
        &srv,
        "rastnc1a",
        SERVER_FOR_CLI1,
        "rastnu2a",
        "rastnu2b",
        "10.202.1",
    );
    let resolv = NsResolvConf::write(&cli, ORIGINAL_RESOLV);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nserver_name = \"ras-tn\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-tns0\"\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    let connection = |name: &str, always_on: bool, interface: &str| {
        format!(
            "[[connection]]\nname = \"{name}\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"sstp\"]\nalways_on = {always_on}\nroutes = [\"172.31.0.0/24\"]\ndns_suffixes = [\"corp.example.com\"]\ntrusted_networks = [\"10.201.1.0/24\", \"2001:db8:50::/48\"]\ninterface = \"{interface}\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\n[connection.trust]\nfingerprint = \"{}\"\n",
            server.fingerprint
        )
    };
    provision(
        &state,
        &socket,
        dir.path(),
        &connection("office", true, "ras-tn1"),
    );
    let daemon = Daemon::start(&cli, &state, &socket);
    let mut events = EventStream::open(&state, &socket);

    // On A (trusted): held down, and it says so.
    let (_, trusted) = events.expect("trusted network", &["connecting"], Duration::from_secs(10));
    assert_eq!(trusted["connection"], "office", "{trusted}");
    assert_eq!(
        trusted["cause"], "on trusted network 10.201.1.0/24",
        "{trusted}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&state, &socket);
    let office = named(&s, "office").expect("office in status");
    assert_eq!(office["state"], "trusted", "{s}");
    assert_eq!(office["trusted_network"], "10.201.1.0/24", "{s}");
    let text = ras_client(&state, &socket, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("on trusted network 10.201.1.0/24"), "{text}");
    assert!(
        !events.seen.iter().any(|e| e == "connecting"),
        "{:?}",
        events.seen
    );
    assert_eq!(resolv.read(), ORIGINAL_RESOLV);

    // To B (untrusted): up, through the tunnel, with the DNS suffix.
    uplinks.move_to_b();
    let (_, left) = events.expect(
        "untrusted network",
        &["connecting"],
        Duration::from_secs(10),
    );
    assert_eq!(
        left["cause"], "left trusted network 10.201.1.0/24",
        "{left}"
    );
    events.expect("connected", &["disconnected"], Duration::from_secs(30));
    first_echo(&cli, LAN_HOST, Instant::now(), Duration::from_secs(10));
    let up = resolv.read();
    assert!(
        up.lines()
            .any(|l| l == "search corp.example.com lan.example"),
        "{up}"
    );
    assert_eq!(
        named(&status(&state, &socket), "office").unwrap()["state"],
        "connected"
    );

    // Back to A: down, with the cause; the resolver as it was.
    uplinks.move_to_a();
    events.expect("trusted network", &["connected"], Duration::from_secs(10));
    let (_, down) = events.expect("disconnected", &["connected"], Duration::from_secs(15));
    assert_eq!(down["cause"], "on trusted network 10.201.1.0/24", "{down}");
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<String> = events
        .events
        .try_iter()
        .map(|(_, e)| e["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !after.iter().any(|e| e == "connecting" || e == "connected"),
        "it stays down: {after:?}"
    );
    assert_eq!(
        named(&status(&state, &socket), "office").unwrap()["state"],
        "trusted"
    );
    assert_eq!(
        resolv.read(),
        ORIGINAL_RESOLV,
        "only what was added is gone"
    );

    // Asked for explicitly, it connects on a trusted network too.
    let out = ras_client(&state, &socket, &["connect", "office"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("on trusted network 10.201.1.0/24"), "{said}");
    events.expect("connected", &["disconnected"], Duration::from_secs(30));
    first_echo(&cli, LAN_HOST, Instant::now(), Duration::from_secs(10));
    assert!(ras_client(&state, &socket, &["disconnect", "office"])
        .status
        .success());
    let (_, down) = events.expect("disconnected", &["connected"], Duration::from_secs(15));
    assert_eq!(down["cause"], "user request", "{down}");

    // A second document while the daemon runs: no restart needed.
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    provision(
        &state,
        &socket,
        &extra,
        &connection("lab", false, "ras-tn2"),
    );
    let (_, p) = events.expect("provisioned", &["trusted network"], Duration::from_secs(10));
    assert_eq!(p["connection"], "lab", "{p}");
    let s = status(&state, &socket);
    assert_eq!(
        named(&s, "lab").expect("lab without a restart")["state"],
        "down",
        "{s}"
    );
    assert!(named(&s, "office").is_some(), "{s}");
    let out = ras_client(
        &state,
        &socket,
        &[
            "unprovision",
            "lab",
            "--unit-dir",
            dir.path().join("units").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, u) = events.expect("unprovisioned", &[], Duration::from_secs(15));
    assert_eq!(u["connection"], "lab", "{u}");
    let s = status(&state, &socket);
    assert!(named(&s, "lab").is_none(), "{s}");
    assert!(named(&s, "office").is_some(), "{s}");

    drop(events);
    drop(daemon);
    drop(server);
    drop(uplinks);
}
