//! `ras client`: provisioning a VPN policy document, the daemon with an
//! always-on SSTP connection (events, status counters, reconnect after the
//! server dies, disconnect on request), and the Automatic protocol order
//! falling back from IKEv2 to SSTP and remembering it. `ras server` runs
//! in the server namespace, the daemon in the client namespace; the
//! control socket is a path, reachable from the test outside them.
//! Needs root for the daemon tests; skips with a message otherwise (fails
//! under RAS_INTEROP_REQUIRED=1, as in CI).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use serde_json::Value;

mod support;
use support::client_daemon::{provision, ras_client};
use support::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const GOOD: &str = r#"
[[connection]]
name = "office"
servers = ["vpn.example.com"]
protocols = ["sstp", "pptp"]
always_on = true
routes = ["10.0.0.0/8"]
dns_suffixes = ["corp.example.com"]
lockdown = true
trusted_networks = ["192.168.50.0/24"]

[connection.auth]
user = "alice"
password = "correct horse battery"

[connection.trust]
fingerprint = "abababababababababababababababababababababababababababababababab"
"#;

#[test]
fn provisioning_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("client");
    let units = dir.path().join("units");
    let socket = dir.path().join("client.sock");
    std::fs::create_dir_all(&units).unwrap();
    // Someone else's unit beside ours: never touched.
    std::fs::write(units.join("other.service"), "[Unit]\n").unwrap();
    let doc = dir.path().join("policy.toml");
    std::fs::write(&doc, GOOD).unwrap();

    let out = ras_client(
        &state,
        &socket,
        &[
            "provision",
            doc.to_str().unwrap(),
            "--unit-dir",
            units.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "provision: {stdout}{stderr}");
    assert!(
        stdout.contains("provisioned office (sstp, pptp; always on, lockdown)"),
        "{stdout}"
    );
    assert!(stdout.contains("not enabled"), "{stdout}");
    // The password is never printed.
    assert!(!stdout.contains("horse") && !stderr.contains("horse"));
    let stored = state.join("connections/office.toml");
    assert_eq!(mode(&stored), 0o600, "root only");
    assert_eq!(mode(&state), 0o700);
    let stored_text = std::fs::read_to_string(&stored).unwrap();
    for field in [
        "lockdown = true",
        "192.168.50.0/24",
        "corp.example.com",
        "always_on = true",
    ] {
        assert!(stored_text.contains(field), "{field} stored: {stored_text}");
    }
    let unit = std::fs::read_to_string(units.join("ras-client.service")).unwrap();
    let exec = format!(
        "ExecStart={RAS} client --state {} --socket {} run",
        state.display(),
        socket.display()
    );
    assert!(unit.contains(&exec), "{unit}");
    assert!(unit.contains("WantedBy=multi-user.target"));

    // A bad document: refused, naming the file, line and field; nothing
    // stored changes, not even its good first connection.
    let bad = GOOD.replace("name = \"office\"", "name = \"home\"")
        + "\n[[connection]]\nname = \"lab\"\nservers = [\"lab.example.com\"]\nprotocols = [\"ikev2\", \"sstq\"]\n";
    std::fs::write(&doc, &bad).unwrap();
    let out = ras_client(
        &state,
        &socket,
        &[
            "provision",
            doc.to_str().unwrap(),
            "--unit-dir",
            units.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("policy.toml:22:") && stderr.contains("field `connection[1].protocols[1]`"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), stored_text);
    assert!(!state.join("connections/home.toml").exists());
    let names: Vec<_> = std::fs::read_dir(state.join("connections"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("office.toml")],
        "no temporary files left"
    );

    // A CRL file that is not a CRL: refused at provisioning, naming the
    // connection, the field and the file; nothing stored changes.
    let crl = dir.path().join("office.crl");
    std::fs::write(&crl, "not a CRL\n").unwrap();
    let with_crl = format!(
        "[[connection]]\nname = \"lab\"\nservers = [\"lab.example.com\"]\nprotocols = [\"ikev2\"]\n[connection.auth]\nuser = \"alice\"\npassword = \"pw\"\n[connection.trust]\nca = \"/etc/ras/client/ca.pem\"\ncrl_files = [{crl:?}]\ncrl_policy = \"strict\"\n"
    );
    std::fs::write(&doc, &with_crl).unwrap();
    let provision_doc = || {
        ras_client(
            &state,
            &socket,
            &[
                "provision",
                doc.to_str().unwrap(),
                "--unit-dir",
                units.to_str().unwrap(),
            ],
        )
    };
    let out = provision_doc();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("connection lab: trust.crl_files") && stderr.contains("office.crl"),
        "{stderr}"
    );
    assert!(!state.join("connections/lab.toml").exists());
    // A missing one too.
    std::fs::remove_file(&crl).unwrap();
    let out = provision_doc();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("reading the CRL file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), stored_text);

    // Unprovisioning removes all of it and nothing else.
    let out = ras_client(
        &state,
        &socket,
        &[
            "unprovision",
            "--all",
            "--unit-dir",
            units.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.exists(), "the store is gone");
    assert!(!units.join("ras-client.service").exists());
    assert!(units.join("other.service").exists());
    // And a name that is not provisioned is an error.
    let out = ras_client(&state, &socket, &["unprovision", "office"]);
    assert!(!out.status.success());
}

/// The daemon in `role`'s namespace, its output echoed.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(topo: &Topology, state: &Path, socket: &Path) -> Daemon {
        Daemon::start_with(topo, state, socket, &[])
    }

    /// With more options of `ras client run`.
    fn start_with(topo: &Topology, state: &Path, socket: &Path, run: &[&str]) -> Daemon {
        let mut child = topo
            .command("cli1", RAS)
            .arg("client")
            .arg("--state")
            .arg(state)
            .arg("--socket")
            .arg(socket)
            .arg("run")
            .args(run)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras client run");
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
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
            assert!(
                Instant::now() < deadline,
                "the control socket never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(mode(socket), 0o660, "root and the ras group only");
        Daemon { child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ras client events --json`, each event parsed.
struct EventStream {
    child: Child,
    events: mpsc::Receiver<Value>,
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
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        EventStream { child, events }
    }

    /// The next event of kind `kind`, failing on any `unexpected` kind
    /// before it.
    fn expect(&self, kind: &str, unexpected: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let event = self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no {kind} event within {within:?}"));
            let got = event["event"].as_str().unwrap_or_default();
            if got == kind {
                return event;
            }
            assert!(!unexpected.contains(&got), "{got} before {kind}: {event}");
        }
    }

    /// Every event for `duration`.
    fn during(&self, duration: Duration) -> Vec<Value> {
        let deadline = Instant::now() + duration;
        let mut out = Vec::new();
        while let Ok(e) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(e);
        }
        out
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of connection `name` (`ras client status --json`).
fn status_of(state: &Path, socket: &Path, name: &str) -> Value {
    let out = ras_client(state, socket, &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not in {all}"))
}

/// `ras client metrics`: the Prometheus text.
fn metrics(state: &Path, socket: &Path) -> String {
    let out = ras_client(state, socket, &["metrics"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the sample `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

fn server_config(dir: &Path, ikev2_section: bool) -> PathBuf {
    let state = dir.join("state");
    let config = dir.join("ras.toml");
    let ikev2 = if ikev2_section {
        "\n[ikev2]\nenabled = false\n"
    } else {
        ""
    };
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-cd\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n{ikev2}\n[tun]\nname = \"ras-cds0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir, "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    config
}

#[test]
fn always_on_sstp_connection_reconnects_and_stops_on_request() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rascd").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path(), false);
    let server = Server::start(&topo, &config);
    let fp = server.fingerprint.clone();
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    provision(
        &state,
        &socket,
        dir.path(),
        &format!(
            "[[connection]]\nname = \"office\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"sstp\"]\nalways_on = true\ndns = false\nroutes = [\"172.31.0.0/24\"]\ninterface = \"ras-cd0\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\n[connection.trust]\nfingerprint = \"{fp}\"\n"
        ),
    );
    let mut daemon = Daemon::start_with(
        &topo,
        &state,
        &socket,
        &["--metrics-listen", "127.0.0.1:19559"],
    );
    let events = EventStream::open(&state, &socket);
    let connecting = events.expect("connecting", &["connected"], Duration::from_secs(20));
    assert_eq!(connecting["protocol"], "sstp");
    assert_eq!(connecting["server"], format!("{SERVER_FOR_CLI1}:443"));
    let connected = events.expect("connected", &["reconnecting"], Duration::from_secs(30));
    let address = connected["address"]
        .as_str()
        .expect("an address")
        .to_owned();
    assert!(address.starts_with("10.0.10."), "{connected}");
    let handshake_ms = connected["handshake_ms"]
        .as_u64()
        .expect("a handshake time");
    assert!(handshake_ms > 0 && handshake_ms < 30_000, "{connected}");
    assert!(connected["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "172.31.0.0/24"));
    // The address is on the TUN the policy named.
    let on_tun = ip_in(
        &topo,
        "cli1",
        &["-4", "-o", "addr", "show", "dev", "ras-cd0"],
    );
    assert!(on_tun.contains(&format!("inet {address}/")), "{on_tun}");

    std::thread::sleep(Duration::from_millis(300));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let first = status_of(&state, &socket, "office");
    assert_eq!(first["state"], "connected", "{first}");
    assert_eq!(first["protocol"], "sstp");
    assert_eq!(first["address"], address.as_str());
    let (sent, received, _) = transfer(&topo, "cli1", 2 * 1024 * 1024);
    assert_eq!(sent, received, "2 MB arrived intact");
    let second = status_of(&state, &socket, "office");
    let grew =
        |key: &str, by: u64| second[key].as_u64().unwrap() >= first[key].as_u64().unwrap() + by;
    assert!(grew("bytes_out", 2 * 1024 * 1024), "{first} then {second}");
    assert!(grew("bytes_in", 1), "{first} then {second}");
    assert_eq!(second["handshake_ms"].as_u64(), Some(handshake_ms));
    // The same counters as Prometheus text.
    let text = metrics(&state, &socket);
    let bytes_out = sample(
        &text,
        r#"ras_client_bytes_total{connection="office",direction="out"}"#,
    );
    assert!(bytes_out >= 2.0 * 1024.0 * 1024.0, "{text}");
    assert!(
        sample(
            &text,
            r#"ras_client_bytes_total{connection="office",direction="in"}"#
        ) > 0.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"ras_client_packets_total{connection="office",direction="out"}"#
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ras_client_connection_up{connection="office",protocol="sstp"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ras_client_handshake_seconds{connection="office"}"#
        ),
        handshake_ms as f64 / 1000.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ras_client_reconnects_total{connection="office",cause="connection_lost"}"#
        ),
        0.0,
        "{text}"
    );
    // The same over HTTP (--metrics-listen), as a scraper reads it.
    let scraped = topo
        .command("cli1", "curl")
        .args(["-sSf", "-D", "-", "http://127.0.0.1:19559/metrics"])
        .output()
        .expect("curl");
    let scraped = String::from_utf8_lossy(&scraped.stdout).into_owned();
    assert!(
        scraped
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{scraped}"
    );
    assert!(
        sample(
            &scraped,
            r#"ras_client_bytes_total{connection="office",direction="out"}"#
        ) >= bytes_out,
        "{scraped}"
    );
    // The table for people names the connection and its state.
    let table = ras_client(&state, &socket, &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.starts_with("NAME") && table.contains("office  connected"),
        "{table}"
    );

    // The server dies: the daemon says why it reconnects, and keeps trying.
    drop(server);
    let reconnecting = events.expect("reconnecting", &[], Duration::from_secs(30));
    let cause = reconnecting["cause"].as_str().unwrap_or_default();
    assert!(cause.starts_with("connection lost"), "{reconnecting}");
    let lost_class = reconnecting["cause_class"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        lost_class == "connection_lost" || lost_class == "dead_peer",
        "{reconnecting}"
    );
    let retry = events.expect("reconnecting", &["connected"], Duration::from_secs(30));
    assert!(
        retry["cause"].as_str().unwrap_or_default().contains("sstp"),
        "{retry}"
    );
    // Nothing listens on the server's port now.
    assert_eq!(retry["cause_class"], "server_unreachable", "{retry}");
    assert_ne!(status_of(&state, &socket, "office")["state"], "connected");

    // Back again: connected with the same pinned certificate.
    let server = Server::start(&topo, &config);
    assert_eq!(server.fingerprint, fp, "the server kept its certificate");
    let again = events.expect("connected", &[], Duration::from_secs(90));
    assert_eq!(again["protocol"], "sstp");
    std::thread::sleep(Duration::from_millis(300));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping after the reconnect");
    let after = status_of(&state, &socket, "office");
    let reconnects = after["reconnects"].as_u64().unwrap();
    assert!(reconnects >= 2, "{after}");
    // The counters by cause add up to the reconnects (wanted once so far).
    let text = metrics(&state, &socket);
    let by_cause = |class: &str| {
        sample(
            &text,
            &format!(r#"ras_client_reconnects_total{{connection="office",cause="{class}"}}"#),
        )
    };
    assert!(by_cause(&lost_class) >= 1.0, "{text}");
    assert!(by_cause("server_unreachable") >= 1.0, "{text}");
    let total: f64 = [
        "network_changed",
        "dead_peer",
        "auth_failed",
        "certificate",
        "server_unreachable",
        "connection_lost",
        "other",
    ]
    .iter()
    .map(|c| by_cause(c))
    .sum();
    assert_eq!(total, reconnects as f64, "{after}\n{text}");

    // Disconnect on request: down, with the cause, and it stays down.
    let out = ras_client(&state, &socket, &["disconnect", "office"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let down = events.expect("disconnected", &["reconnecting"], Duration::from_secs(15));
    assert_eq!(down["cause"], "user request");
    let later = events.during(Duration::from_secs(5));
    assert!(later.is_empty(), "nothing after a disconnect: {later:?}");
    assert_eq!(
        status_of(&state, &socket, "office")["state"],
        "disconnected"
    );
    let links = ip_in(&topo, "cli1", &["-o", "link", "show"]);
    assert!(!links.contains("ras-cd0"), "the TUN is gone: {links}");

    // Wanted again, then the daemon is stopped (SIGTERM, as systemd does):
    // the connection says goodbye, and the socket and the TUN are gone.
    assert!(ras_client(&state, &socket, &["connect", "office"])
        .status
        .success());
    events.expect("connected", &[], Duration::from_secs(30));
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status();
    let stopped = events.expect("disconnected", &[], Duration::from_secs(15));
    assert_eq!(stopped["cause"], "the daemon is stopping");
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert!(!socket.exists(), "the control socket is removed");
    let links = ip_in(&topo, "cli1", &["-o", "link", "show"]);
    assert!(!links.contains("ras-cd0"), "the TUN is gone: {links}");
    drop(server);
}

#[test]
fn automatic_order_falls_back_to_sstp_and_remembers_it() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rasca").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path(), true);
    let server = Server::start(&topo, &config);
    let fp = server.fingerprint.clone();
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    let psk = dir.path().join("psk");
    std::fs::write(&psk, "not used: the server has no IKEv2\n").unwrap();
    provision(
        &state,
        &socket,
        dir.path(),
        &format!(
            "[[connection]]\nname = \"auto\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"ikev2\", \"sstp\"]\ndns = false\nroutes = [\"172.31.0.0/24\"]\ninterface = \"ras-ca0\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\npsk_file = {psk:?}\n[connection.trust]\nfingerprint = \"{fp}\"\n"
        ),
    );
    let _daemon = Daemon::start(&topo, &state, &socket);
    let events = EventStream::open(&state, &socket);
    // Not always-on: nothing happens until asked.
    assert!(events.during(Duration::from_secs(1)).is_empty());
    assert_eq!(status_of(&state, &socket, "auto")["state"], "down");
    assert_eq!(
        status_of(&state, &socket, "auto")["protocols"],
        serde_json::json!(["ikev2", "sstp"])
    );
    let out = ras_client(&state, &socket, &["connect", "auto"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let first = events.expect("connecting", &["connected"], Duration::from_secs(10));
    assert_eq!(first["protocol"], "ikev2", "IKEv2 first: {first}");
    let fallback = events.expect("fallback", &["connected"], Duration::from_secs(60));
    assert_eq!(fallback["protocol"], "ikev2");
    assert!(
        fallback["next"].as_str().unwrap().starts_with("sstp"),
        "{fallback}"
    );
    assert!(!fallback["cause"].as_str().unwrap_or_default().is_empty());
    let second = events.expect("connecting", &["connected"], Duration::from_secs(5));
    assert_eq!(second["protocol"], "sstp");
    let connected = events.expect("connected", &["disconnected"], Duration::from_secs(30));
    assert_eq!(connected["protocol"], "sstp");
    let status = status_of(&state, &socket, "auto");
    assert_eq!(status["state"], "connected");
    assert_eq!(status["protocol"], "sstp");
    // Remembered: SSTP goes first from now on, in the state file too.
    assert_eq!(status["protocols"], serde_json::json!(["sstp", "ikev2"]));
    let remembered = std::fs::read_to_string(state.join("state/auto.json")).unwrap();
    assert!(
        remembered.contains("\"last_protocol\":\"sstp\""),
        "{remembered}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");

    // Down and up again: SSTP is tried first, without IKEv2's delay.
    assert!(ras_client(&state, &socket, &["disconnect", "auto"])
        .status
        .success());
    let down = events.expect("disconnected", &[], Duration::from_secs(15));
    assert_eq!(down["cause"], "user request");
    let started = Instant::now();
    assert!(ras_client(&state, &socket, &["connect", "auto"])
        .status
        .success());
    let next = events.expect("connecting", &[], Duration::from_secs(10));
    assert_eq!(
        next["protocol"], "sstp",
        "the protocol that worked first: {next}"
    );
    let connected = events.expect("connected", &["fallback"], Duration::from_secs(30));
    assert_eq!(connected["protocol"], "sstp");
    eprintln!(
        "second connect took {:.1} s with SSTP first",
        started.elapsed().as_secs_f64()
    );
    assert!(ras_client(&state, &socket, &["disconnect", "auto"])
        .status
        .success());
    events.expect("disconnected", &[], Duration::from_secs(15));

    // `ras connect auto://` does the same once, without the daemon: each
    // protocol takes the options that apply to it (the key for IKEv2, the
    // fingerprint for SSTP).
    let pw = dir.path().join("alice.pw");
    let mut once = connect_to(
        &topo,
        "cli1",
        &format!("auto://{SERVER_FOR_CLI1}"),
        "alice",
        &pw,
        &[
            "--fingerprint",
            &fp,
            "--psk-file",
            psk.to_str().unwrap(),
            "--no-dns",
        ],
        "ras-ca1",
    );
    assert!(
        wait_address(&topo, &mut once, Duration::from_secs(45)).is_some(),
        "auto:// connected"
    );
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "ping through the auto:// tunnel"
    );
    interrupt(&once);
    let (ok, text) = finish(once, Duration::from_secs(15));
    assert!(ok, "{text}");
    for line in [
        "automatic: trying ikev2",
        "automatic: ikev2 failed",
        "automatic: trying sstp",
        "connected to sstp://",
    ] {
        assert!(text.contains(line), "{line:?} missing: {text}");
    }
    drop(server);
}

/// `nft ARGS…` in `role`'s namespace: success and output.
fn nft_in(topo: &Topology, role: &str, args: &[&str]) -> (bool, String) {
    let out = topo.command(role, "nft").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Lockdown (nftables): while the always-on connection is wanted and its
/// tunnel is down, only the VPN server is reachable from the client; with
/// the tunnel up, traffic flows through it; after `disconnect` the table
/// is gone and another table of the machine was never touched.
#[test]
fn lockdown_lets_only_the_server_out_until_disconnect() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rascl").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config = server_config(dir.path(), false);
    let server = Server::start(&topo, &config);
    let fp = server.fingerprint.clone();
    // Another address outside the tunnel: the server namespace's side
    // towards the second client, reached through the server's uplink.
    let other = SERVER_FOR_CLI2;
    let route = topo
        .command("cli1", "ip")
        .args(["route", "add", "10.201.2.0/24", "via", SERVER_FOR_CLI1])
        .status()
        .unwrap();
    assert!(route.success());
    assert!(ping(&topo, "cli1", other), "reachable before lockdown");
    // Someone else's table, which the daemon must leave alone.
    let (ok, _) = nft_in(&topo, "cli1", &["add", "table", "inet", "someone_else"]);
    assert!(ok);
    drop(server);

    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    provision(
        &state,
        &socket,
        dir.path(),
        &format!(
            "[[connection]]\nname = \"locked\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"sstp\"]\nalways_on = true\nlockdown = true\ndns = false\nroutes = [\"172.31.0.0/24\"]\ninterface = \"ras-cl0\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\n[connection.trust]\nfingerprint = \"{fp}\"\n"
        ),
    );
    let _daemon = Daemon::start(&topo, &state, &socket);
    let events = EventStream::open(&state, &socket);
    let on = events.expect("lockdown", &["connected"], Duration::from_secs(10));
    assert!(
        on["cause"].as_str().unwrap_or_default().starts_with("on:"),
        "{on}"
    );
    // The server is down: the connection keeps trying, under lockdown.
    events.expect("reconnecting", &["connected"], Duration::from_secs(30));
    let (ok, table) = nft_in(&topo, "cli1", &["list", "table", "inet", "ras_lockdown"]);
    assert!(ok && table.contains("policy drop"), "{table}");
    assert!(table.contains(SERVER_FOR_CLI1), "{table}");
    assert!(!ping(&topo, "cli1", other), "blocked under lockdown");
    assert!(
        ping(&topo, "cli1", SERVER_FOR_CLI1),
        "the VPN server stays reachable"
    );

    // The server is back: the tunnel comes up through the lockdown and
    // carries traffic; outside it, still nothing.
    let server = Server::start(&topo, &config);
    events.expect("connected", &["disconnected"], Duration::from_secs(90));
    std::thread::sleep(Duration::from_millis(300));
    let before = status_of(&state, &socket, "locked");
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let after = status_of(&state, &socket, "locked");
    assert!(
        after["packets_out"].as_u64().unwrap() > before["packets_out"].as_u64().unwrap(),
        "the pings went into the tunnel: {before} then {after}"
    );
    assert!(!ping(&topo, "cli1", other), "still blocked outside it");

    // RTT: an ICMP echo to the server from link up, every 15 s (this
    // machine has no netem to add a known delay: the value is only bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let rtt = loop {
        let r = status_of(&state, &socket, "locked")["rtt_ms"].as_f64();
        if let Some(r) = r {
            break r;
        }
        assert!(Instant::now() < deadline, "no rtt_ms");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(rtt > 0.0 && rtt < 1000.0, "{rtt}");
    let table = ras_client(&state, &socket, &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains(" ms"), "{table}");
    eprintln!("rtt to the server: {rtt} ms");

    // Not wanted any more: the table goes, and only it.
    assert!(ras_client(&state, &socket, &["disconnect", "locked"])
        .status
        .success());
    events.expect("disconnected", &[], Duration::from_secs(15));
    let off = events.expect("lockdown", &[], Duration::from_secs(10));
    assert_eq!(off["cause"], "off", "{off}");
    let (_, tables) = nft_in(&topo, "cli1", &["list", "tables"]);
    assert!(!tables.contains("ras_lockdown"), "{tables}");
    assert!(tables.contains("someone_else"), "{tables}");
    assert!(ping(&topo, "cli1", other), "reachable again");
    drop(server);
}
