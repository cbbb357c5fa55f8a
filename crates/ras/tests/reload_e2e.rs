//! Reload without drops (issue 17, docs/ADMIN.md "Reload"), end to end:
//! `ras server` with an SSTP client pinging the LAN host continuously;
//! the configuration edited (a pool range added, DNS changed, a policy
//! added, the certificate swapped) and SIGHUP sent: the running session's
//! pings go on (at most one lost) under the same session id, and a new
//! client meets the new certificate, DNS, policy and pool. Then a broken
//! file: `ras server reload` exits non-zero naming file, line and key,
//! the server logs the refusal and keeps the previous configuration. Needs
//! root; skips otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use server::admin_snapshot::{SessionView, Snapshot};
use sha2::{Digest, Sha256};

mod support;
use support::*;

/// A self-signed certificate and key written to `dir` as
/// `<name>.crt`/`<name>.key`; (chain, key, SHA-256 fingerprint as the
/// server prints it).
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ras-reload".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let fp = Sha256::digest(cert.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    (c, k, fp)
}

/// The configuration: SSTP towards both client networks, one client
/// address in the first pool range, `extra` appended.
fn config_text(
    dir: &Path,
    cert: &(PathBuf, PathBuf, String),
    pool: &str,
    dns: &str,
    extra: &str,
) -> String {
    let path = dir.join("ras.toml");
    format!(
        "state_dir = {:?}\nserver_name = \"ras-reload\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\", \"{SERVER_FOR_CLI2}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-rld0\"\n\n[admin]\nsocket = {:?}\n\n[certificate]\nchain = {:?}\nkey = {:?}\n\n[addresses]\nipv4_pool = [{pool}]\ndns = [\"{dns}\"]\n{extra}",
        dir.join("state"),
        admin_socket_for(&path),
        cert.0,
        cert.1,
    )
}

fn sessions(socket: &Path) -> Vec<SessionView> {
    let answer = server::admin_client::request(socket, "GET", "/v1/sessions").unwrap();
    serde_json::from_slice(&answer.body).unwrap()
}

/// `ras server reload --config FILE`, as an operator runs it (the
/// socket found through the file); (success, stdout, stderr).
fn reload_command(config: &Path) -> (bool, String, String) {
    let out = Command::new(RAS)
        .args(["server", "reload", "--config"])
        .arg(config)
        .env_remove("RAS_ADMIN_SOCKET")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ping -c COUNT -i 0.05` from `role` to the LAN host, started now in
/// a thread; joins to (sent, received).
fn ping_in_background(
    topo: &Topology,
    role: &str,
    count: u32,
) -> std::thread::JoinHandle<(u32, u32)> {
    let mut cmd = topo.command(role, "ping");
    cmd.args(["-c", &count.to_string(), "-i", "0.05", "-W", "1", LAN_HOST]);
    std::thread::spawn(move || {
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary: {text}"));
        let numbers: Vec<u32> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    })
}

fn sstp_client(
    topo: &Topology,
    role: &'static str,
    user: &str,
    pw: &Path,
    fp: &str,
    tun: &str,
) -> Client {
    let server = if role == "cli1" {
        SERVER_FOR_CLI1
    } else {
        SERVER_FOR_CLI2
    };
    connect_to(
        topo,
        role,
        &format!("sstp://{server}"),
        user,
        pw,
        &["--fingerprint", fp, "--no-dns", "--no-ipv6"],
        tun,
    )
}

#[test]
fn a_reload_under_a_running_session_drops_nothing_and_a_bad_one_changes_nothing() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rasrld").expect("namespaces");
    // The intranet routes the range the reload adds back through the
    // server, as it does the first (the server's own route to it through
    // the TUN is what the reload adds).
    assert!(topo
        .command("lan", "ip")
        .args(["route", "add", "10.0.20.0/24", "via", "172.31.0.1"])
        .status()
        .unwrap()
        .success());
    let dir = tempfile::tempdir().unwrap();
    let one = certificate(dir.path(), "one");
    let two = certificate(dir.path(), "two");
    let path = dir.path().join("ras.toml");
    let socket = admin_socket_for(&path);
    // One client address (10.0.10.21): a second client needs the reload's
    // range.
    let first_pool = "\"10.0.10.20-10.0.10.21\"";
    std::fs::write(
        &path,
        config_text(dir.path(), &one, first_pool, "10.0.0.53", ""),
    )
    .unwrap();
    let bob_pw = password_file(dir.path(), "bob", "bob-password");
    let alice_pw = password_file(dir.path(), "alice", "alice-password");
    add_user(&path, "bob", &bob_pw, &[]);
    add_user(&path, "alice", &alice_pw, &["staff"]);

    let server = Server::start(&topo, &path);
    assert_eq!(server.fingerprint, one.2);
    let mut bob = sstp_client(&topo, "cli1", "bob", &bob_pw, &one.2, "ras-rld1");
    assert_eq!(
        wait_address(&topo, &mut bob, Duration::from_secs(30)),
        Some("10.0.10.21".parse().unwrap())
    );
    assert!(ping(&topo, "cli1", LAN_HOST));
    let before = sessions(&socket);
    assert_eq!(before.len(), 1);
    let bob_id = before[0].id;

    // (1) A good edit under a running ping: a range, DNS, a policy that
    // admits only staff (bob is not), the other certificate.
    let pinger = ping_in_background(&topo, "cli1", 160);
    std::thread::sleep(Duration::from_secs(2));
    let staff_only = "\n[[policy]]\nname = \"Staff only\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"staff\"]\n";
    let wider = "\"10.0.10.20-10.0.10.21\", \"10.0.20.1-10.0.20.9\"";
    let good = config_text(dir.path(), &two, wider, "10.0.0.54", staff_only);
    std::fs::write(&path, &good).unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let line = server.expect("reload: ", Duration::from_secs(10));
    for change in [
        format!("certificate changed (sha256 {})", two.2),
        "policies: 1 (Staff only)".to_owned(),
        "pool +10.0.20.1-10.0.20.9".to_owned(),
        "DNS 10.0.0.54".to_owned(),
    ] {
        assert!(line.contains(&change), "{change:?} not in {line:?}");
    }
    let (sent, received) = pinger.join().unwrap();
    assert!(
        sent >= 150 && sent - received <= 1,
        "the running session's pings: {received} of {sent} answered across the reload"
    );
    let after = sessions(&socket);
    assert_eq!(
        after.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![bob_id],
        "the same session, not a new one"
    );
    assert!(ping(&topo, "cli1", LAN_HOST));

    // A new client: the old certificate is no longer served…
    let (ok, text) = finish(
        sstp_client(&topo, "cli2", "alice", &alice_pw, &one.2, "ras-rld2"),
        Duration::from_secs(40),
    );
    assert!(
        !ok,
        "the old certificate's fingerprint no longer matches: {text}"
    );
    // …the new one is; alice (staff) is admitted by the new policy, gets
    // an address from the added range (routed: she reaches the LAN) and
    // the new DNS server.
    let mut alice = sstp_client(&topo, "cli2", "alice", &alice_pw, &two.2, "ras-rld2");
    assert_eq!(
        wait_address(&topo, &mut alice, Duration::from_secs(30)),
        Some("10.0.20.1".parse().unwrap())
    );
    assert!(ping(&topo, "cli2", LAN_HOST), "the added range is routed");
    interrupt(&alice);
    let (_, text) = finish(alice, Duration::from_secs(15));
    assert!(text.contains("DNS 10.0.0.54"), "{text}");
    // A new session of bob's meets the new policy; his running one stays.
    let (ok, text) = finish(
        sstp_client(&topo, "cli2", "bob", &bob_pw, &two.2, "ras-rld3"),
        Duration::from_secs(40),
    );
    assert!(!ok, "bob is not staff: {text}");
    server.expect("no policy matched", Duration::from_secs(5));
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "bob's first session still up"
    );

    // Users need no reload: the store is read at every login.
    let carol_pw = password_file(dir.path(), "carol", "carol-password");
    add_user(&path, "carol", &carol_pw, &["staff"]);
    let mut carol = sstp_client(&topo, "cli2", "carol", &carol_pw, &two.2, "ras-rld4");
    assert!(
        wait_address(&topo, &mut carol, Duration::from_secs(30)).is_some(),
        "a user added while the server runs logs in"
    );
    interrupt(&carol);
    assert!(finish(carol, Duration::from_secs(15)).0);

    // The same file again: nothing to do, exit status 0.
    let (ok, out, err) = reload_command(&path);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "reload: nothing changed");

    // (2) A broken file (a key that does not exist, line 5), with an
    // edit that would otherwise be taken: refused whole.
    let broken = good
        .replace("dns = [\"10.0.0.54\"]", "dns = [\"10.0.0.99\"]")
        .replace("[sstp]\n", "[sstp]\nlisten_all = true\n");
    assert_eq!(broken.lines().nth(4), Some("listen_all = true"));
    std::fs::write(&path, &broken).unwrap();
    let (ok, _, err) = reload_command(&path);
    assert!(!ok, "a refused reload fails");
    let shown = format!("{}:5:", path.display());
    assert!(err.contains(&shown) && err.contains("listen_all"), "{err}");
    assert!(
        err.contains("still running the previous configuration"),
        "{err}"
    );
    let line = server.expect("reload refused", Duration::from_secs(5));
    assert!(
        line.contains(&shown) && line.contains("listen_all"),
        "{line}"
    );
    // The old configuration runs on: bob's session, and a new client under
    // the previous (good) file's certificate and DNS.
    assert!(ping(&topo, "cli1", LAN_HOST));
    let mut alice = sstp_client(&topo, "cli2", "alice", &alice_pw, &two.2, "ras-rld2");
    assert_eq!(
        wait_address(&topo, &mut alice, Duration::from_secs(30)),
        Some("10.0.20.1".parse().unwrap())
    );
    interrupt(&alice);
    let (_, text) = finish(alice, Duration::from_secs(15));
    assert!(text.contains("DNS 10.0.0.54"), "{text}");
    assert_eq!(
        sessions(&socket).iter().filter(|s| s.id == bob_id).count(),
        1
    );
    // Both outcomes are counted for Prometheus.
    let metrics = server::admin_client::request(&socket, "GET", "/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    let count = |result: &str| -> f64 {
        let series = format!("ras_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("applied") >= 1.0, "{metrics}");
    assert!(count("refused") >= 1.0, "{metrics}");
    interrupt(&bob);
    assert!(finish(bob, Duration::from_secs(15)).0);
}

/// RADIUS servers are taken by a reload: a server pointed at an address
/// where nothing answers refuses logins; reloaded with FreeRADIUS's
/// address, the next login is accepted and the admin API shows the new
/// servers. Needs FreeRADIUS too (skips without it, fails under
/// RAS_INTEROP_REQUIRED=1).
#[test]
fn a_reload_points_authentication_at_new_radius_servers() {
    if !can_run() {
        return;
    }
    if !interop::freeradius::available() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!(
                "RAS_INTEROP_REQUIRED=1 but FreeRADIUS is not installed (apt package freeradius)"
            );
        }
        eprintln!("SKIPPED: FreeRADIUS is not installed");
        return;
    }
    let topo = Topology::create("rasrlr").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let srv = topo.ns("srv");
    let _fr = interop::freeradius::FreeRadius::start(
        &dir.path().join("fr"),
        Some(&srv),
        std::net::Ipv4Addr::new(127, 0, 0, 1),
    )
    .expect("FreeRADIUS");
    let one = certificate(dir.path(), "one");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/radius.secret"),
        format!("{}\n", interop::freeradius::SECRET),
    )
    .unwrap();
    let path = dir.path().join("ras.toml");
    let socket = admin_socket_for(&path);
    let radius = |address: &str| {
        format!("\n[radius]\ntimeout_secs = 1\ntries = 1\n\n[[radius.servers]]\naddress = \"{address}\"\nsecret_file = \"radius.secret\"\n")
    };
    let pool = "\"10.0.10.20-10.0.10.29\"";
    // Nothing listens on 127.0.0.9's RADIUS port.
    std::fs::write(
        &path,
        config_text(dir.path(), &one, pool, "10.0.0.53", &radius("127.0.0.9")),
    )
    .unwrap();
    let test_pw = password_file(dir.path(), "test", "test123");

    let server = Server::start(&topo, &path);
    let (ok, text) = finish(
        sstp_client(&topo, "cli1", "test", &test_pw, &one.2, "ras-rlr1"),
        Duration::from_secs(40),
    );
    assert!(!ok, "no RADIUS server answers: {text}");

    std::fs::write(
        &path,
        config_text(dir.path(), &one, pool, "10.0.0.53", &radius("127.0.0.1")),
    )
    .unwrap();
    let (ok, out, err) = reload_command(&path);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "reload: RADIUS servers 127.0.0.1:1812");
    let mut c = sstp_client(&topo, "cli1", "test", &test_pw, &one.2, "ras-rlr1");
    assert!(
        wait_address(&topo, &mut c, Duration::from_secs(30)).is_some(),
        "FreeRADIUS accepts the login after the reload"
    );
    server.expect("RADIUS Access-Accept", Duration::from_secs(5));
    let status: Snapshot = serde_json::from_slice(
        &server::admin_client::request(&socket, "GET", "/v1/status")
            .unwrap()
            .body,
    )
    .unwrap();
    let shown: Vec<String> = status
        .radius_servers
        .iter()
        .map(|s| format!("{} {}", s.role, s.address))
        .collect();
    assert_eq!(
        shown,
        vec!["authentication 127.0.0.1:1812", "accounting 127.0.0.1:1813"]
    );
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
}
