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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use serde_json::Value;

mod support;
use support::client_daemon::*;
use support::*;

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
