//! The `ras client` daemon in a namespace, as the client daemon tests
//! drive it: `ras client` commands against a state directory and control
//! socket, the daemon with its output echoed, its JSON event stream, and
//! a client namespace with two uplinks whose default route the tests move.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::RAS;

pub fn ras_client(state: &Path, socket: &Path, args: &[&str]) -> std::process::Output {
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

pub fn provision(state: &Path, socket: &Path, dir: &Path, text: &str) {
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
pub fn ip_ns(ns: &str, args: &[&str]) {
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
pub struct Daemon(pub Child);

impl Daemon {
    pub fn start(ns: &str, state: &Path, socket: &Path) -> Daemon {
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
pub struct EventStream {
    pub child: Child,
    pub events: mpsc::Receiver<(Instant, Value)>,
    pub seen: Vec<String>,
}

impl EventStream {
    pub fn open(state: &Path, socket: &Path) -> EventStream {
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
    pub fn expect(
        &mut self,
        kind: &str,
        unexpected: &[&str],
        within: Duration,
    ) -> (Instant, Value) {
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

    /// Everything that arrives within `d`, remembered in `seen` too.
    pub fn during(&mut self, d: Duration) -> Vec<Value> {
        let deadline = Instant::now() + d;
        let mut got = Vec::new();
        while let Ok((_, e)) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen
                .push(e["event"].as_str().unwrap_or_default().to_owned());
            got.push(e);
        }
        got
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
pub fn first_echo(ns: &str, target: &str, since: Instant, within: Duration) -> Duration {
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
pub struct Uplinks {
    pub client_ns: String,
    pub server_ns: String,
    pub a_dev: String,
    pub a_gateway: String,
    pub b_dev: String,
}

impl Uplinks {
    #[allow(clippy::too_many_arguments)]
    pub fn create(
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
    pub fn move_to_b(&self) {
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
    pub fn move_to_a(&self) {
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
