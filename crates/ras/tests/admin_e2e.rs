//! The admin API end to end (docs/ADMIN.md): `ras server` with RADIUS
//! (a private FreeRADIUS, for accounting records to check) and live SSTP
//! and PPTP sessions from `ras connect` in network namespaces;
//! `ras session list|show|disconnect` and `ras status` against it, and
//! `/metrics` read by a Prometheus text parser. Needs root and the
//! freeradius package; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use interop::freeradius::{self, detail_records, FreeRadius};
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use server::admin_snapshot::{SessionView, Snapshot};

mod support;
use support::*;

fn can_run_radius() -> bool {
    if !can_run() {
        return false;
    }
    if freeradius::available() {
        return true;
    }
    if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("RAS_INTEROP_REQUIRED=1 but FreeRADIUS is not installed (apt package freeradius)");
    }
    eprintln!("SKIPPED: FreeRADIUS is not installed");
    false
}

/// SSTP on the first client network, PPTP on the second, RADIUS
/// authentication and accounting, the admin socket named in the file.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )
    .unwrap();
    let path = dir.join("ras.toml");
    // The same path the test harness gives the server (admin_socket_for),
    // so that `ras session --config` finds it through the file.
    let socket = admin_socket_for(&path);
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-admin\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = [\"{SERVER_FOR_CLI2}:1723\"]\n\n[auth]\nmethods = [\"mschapv2\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-adm0\"\n\n[admin]\nsocket = {socket:?}\n\n[radius]\ntimeout_secs = 1\ntries = 2\n\n[[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n"
        ),
    )
    .unwrap();
    path
}

/// `ras ARGS --config CONFIG` (the socket found through the file, not the
/// environment); (success, stdout, stderr).
fn ras(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(RAS)
        .args(args)
        .arg("--config")
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

fn list(config: &Path, filter: &[&str]) -> Vec<SessionView> {
    let mut args = vec!["session", "list", "--json"];
    args.extend_from_slice(filter);
    let (ok, out, err) = ras(config, &args);
    assert!(ok, "ras session list: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn show(config: &Path, id: u64) -> SessionView {
    let (ok, out, err) = ras(config, &["session", "show", &id.to_string(), "--json"]);
    assert!(ok, "ras session show: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Waits until `pred` holds for the sessions (the server learns of an
/// end a moment after the client).
fn wait_sessions(config: &Path, within: Duration, pred: impl Fn(&[SessionView]) -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if pred(&list(config, &[])) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn wait_record(
    fr: &FreeRadius,
    within: Duration,
    pred: impl Fn(&[(String, String)]) -> bool,
) -> Option<Vec<(String, String)>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(r) = detail_records(&fr.detail()).into_iter().find(|r| pred(r)) {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn get<'a>(record: &'a [(String, String)], key: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether FreeRADIUS has a Stop for `user` with Acct-Terminate-Cause
/// Admin-Reset (RFC 2866 §5.10, value 6).
fn admin_reset_stop(fr: &FreeRadius, user: &str) -> bool {
    wait_record(fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop")
            && get(r, "User-Name") == Some(user)
            && get(r, "Acct-Terminate-Cause") == Some("Admin-Reset")
    })
    .is_some()
}

/// The value of the sample `name` with `labels`, which must be there.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    support::sample(scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

fn sstp(topo: &Topology, fp: &str, user: &str, pw: &Path, tun: &str) -> Client {
    connect_to(
        topo,
        "cli1",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        user,
        pw,
        &["--fingerprint", fp, "--no-dns"],
        tun,
    )
}

fn pptp(topo: &Topology, user: &str, pw: &Path, tun: &str) -> Client {
    connect_to(
        topo,
        "cli2",
        &format!("pptp://{SERVER_FOR_CLI2}"),
        user,
        pw,
        &["--no-dns", "--no-ipv6"],
        tun,
    )
}

#[test]
fn sessions_are_listed_counted_and_disconnected_through_the_admin_api() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasadm").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let srv = topo.ns("srv");
    let fr = FreeRadius::start(
        &dir.path().join("fr"),
        Some(&srv),
        Ipv4Addr::new(127, 0, 0, 1),
    )
    .expect("FreeRADIUS");
    let config = write_config(dir.path());
    let socket = admin_socket_for(&config);
    let server = Server::start(&topo, &config);
    let test_pw = password_file(dir.path(), "test", "test123");
    let static_pw = password_file(dir.path(), "static", "static123");

    // Nothing yet.
    assert!(list(&config, &[]).is_empty());
    let (ok, out, _) = ras(&config, &["session", "list"]);
    assert!(ok);
    assert_eq!(out, "no sessions\n");

    // An SSTP session (user "test") and a PPTP one (user "static", whose
    // Access-Accept carries Framed-IP-Address 10.0.10.25 and a Class).
    let mut c1 = sstp(&topo, &server.fingerprint, "test", &test_pw, "ras-ad1");
    assert_eq!(
        wait_address(&topo, &mut c1, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    let mut c2 = pptp(&topo, "static", &static_pw, "ras-ad2");
    assert_eq!(
        wait_address(&topo, &mut c2, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 25))
    );
    assert!(wait_sessions(&config, Duration::from_secs(10), |s| {
        s.len() == 2 && s.iter().all(|s| s.state == "up")
    }));
    let sessions = list(&config, &[]);
    let a = sessions
        .iter()
        .find(|s| s.protocol == "sstp")
        .expect("the SSTP session");
    let b = sessions
        .iter()
        .find(|s| s.protocol == "pptp")
        .expect("the PPTP session");
    assert_eq!(a.user.as_deref(), Some("test"));
    assert_eq!(a.tunnel_ipv4, Some(Ipv4Addr::new(10, 0, 10, 21)));
    assert!(a.tunnel_ipv6.is_some(), "IPv6CP negotiated: {a:?}");
    assert_eq!(a.encryption.as_deref(), Some("TLS"));
    assert_eq!(a.auth_method.as_deref(), Some("MS-CHAPv2"));
    let client = a
        .client_address
        .expect("the client's public address")
        .to_string();
    assert!(client.starts_with("10.201.1."), "{client}");
    assert!(a.client_port.is_some_and(|p| p > 0));
    assert_eq!(b.user.as_deref(), Some("static"));
    assert_eq!(b.tunnel_ipv4, Some(Ipv4Addr::new(10, 0, 10, 25)));
    assert!(
        b.encryption
            .as_deref()
            .is_some_and(|e| e.starts_with("MPPE 128-bit")),
        "{b:?}"
    );
    assert_eq!(b.radius_class, vec![hex::encode("ras-static-class")]);
    assert!(b
        .client_address
        .unwrap()
        .to_string()
        .starts_with("10.201.2."));
    // Filters.
    let only_pptp = list(&config, &["--protocol", "pptp"]);
    assert_eq!(
        only_pptp.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![b.id]
    );
    let only_test = list(&config, &["--user", "test"]);
    assert_eq!(
        only_test.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.id]
    );

    // The tables a person reads, and the summary.
    let (ok, table, _) = ras(&config, &["session", "list"]);
    assert!(ok);
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains("10.0.10.25") && table.contains("sstp"),
        "{table}"
    );
    let (ok, status, err) = ras(&config, &["status"]);
    assert!(ok, "{err}");
    assert!(status.contains("sessions: 2 ("), "{status}");
    assert!(
        status.contains("sstp 1") && status.contains("pptp 1"),
        "{status}"
    );
    assert!(
        status.contains("RADIUS authentication 127.0.0.1:1812: up"),
        "{status}"
    );
    let (ok, detail, _) = ras(&config, &["session", "show", &b.id.to_string()]);
    assert!(ok);
    assert!(detail.contains("\"ras-static-class\""), "{detail}");
    let snapshot: Snapshot = serde_json::from_str(&ras(&config, &["status", "--json"]).1).unwrap();
    assert_eq!(snapshot.pools[0].in_use, 2);
    assert!(snapshot.certificate.is_some_and(|c| c.self_signed));

    // Counters move with traffic: a burst of pings through the SSTP tunnel.
    let before = show(&config, a.id);
    let burst = topo
        .command("cli1", "ping")
        .args(["-c", "20", "-i", "0.05", "-s", "500", "-W", "2", LAN_HOST])
        .status()
        .unwrap();
    assert!(burst.success(), "ping burst");
    let after = show(&config, a.id);
    assert!(
        after.bytes_in >= before.bytes_in + 20 * 528,
        "bytes in {} -> {}",
        before.bytes_in,
        after.bytes_in
    );
    assert!(after.bytes_out >= before.bytes_out + 20 * 528);
    assert!(after.packets_in >= before.packets_in + 20);
    assert!(after.last_activity.is_some());

    // /metrics, as Prometheus reads it.
    let m = scrape(&socket);
    let up = |p: &str| sample(&m, "ras_sessions", &[("protocol", p), ("state", "up")]);
    assert_eq!((up("sstp"), up("pptp"), up("l2tp")), (1.0, 1.0, 0.0));
    let sstp_in = sample(
        &m,
        "ras_traffic_bytes_total",
        &[("protocol", "sstp"), ("direction", "in")],
    );
    assert!(
        sstp_in >= after.bytes_in as f64,
        "{sstp_in} < {}",
        after.bytes_in
    );
    assert!(
        sample(
            &m,
            "ras_session_attempts_total",
            &[("protocol", "pptp"), ("result", "success")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "ras_radius_requests_total",
            &[("role", "auth"), ("result", "accept")]
        ) >= 2.0
    );
    assert_eq!(
        sample(
            &m,
            "ras_pool_addresses",
            &[("pool", "static"), ("state", "in_use")]
        ),
        2.0
    );
    assert!(sample(&m, "ras_certificate_expiry_timestamp_seconds", &[]) > 1.7e9);
    let text = String::from_utf8(
        server::admin_client::request(&socket, "GET", "/metrics")
            .unwrap()
            .body,
    )
    .unwrap();
    // No per-user labels ("static" is also the pool's name: not checked).
    assert!(
        !text.contains("user=") && !text.contains("\"test\""),
        "{text}"
    );

    // Disconnect one by id: the client goes down, accounting says
    // Admin-Reset, the other session stays.
    let (ok, out, err) = ras(&config, &["session", "disconnect", &a.id.to_string()]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("disconnecting session {}\n", a.id));
    let _ = finish(c1, Duration::from_secs(20));
    assert!(
        admin_reset_stop(&fr, "test"),
        "Stop with Admin-Reset for test"
    );
    assert!(wait_sessions(&config, Duration::from_secs(10), |s| {
        s.iter().map(|s| s.id).collect::<Vec<_>>() == vec![b.id]
    }));
    assert!(
        ping(&topo, "cli2", LAN_HOST),
        "the PPTP session still works"
    );
    // An unknown id is an error that says so.
    let (ok, _, err) = ras(&config, &["session", "disconnect", "999999"]);
    assert!(!ok);
    assert!(err.contains("no session 999999"), "{err}");

    // Disconnect by user.
    let (ok, out, _) = ras(&config, &["session", "disconnect", "--user", "static"]);
    assert!(ok);
    assert_eq!(out, format!("disconnecting session {}\n", b.id));
    let _ = finish(c2, Duration::from_secs(20));
    assert!(
        admin_reset_stop(&fr, "static"),
        "Stop with Admin-Reset for static"
    );
    assert!(wait_sessions(&config, Duration::from_secs(10), |s| s.is_empty()));

    // Disconnect all: two new sessions, both end.
    let mut c3 = sstp(&topo, &server.fingerprint, "test", &test_pw, "ras-ad3");
    assert!(wait_address(&topo, &mut c3, Duration::from_secs(30)).is_some());
    let mut c4 = pptp(&topo, "test", &test_pw, "ras-ad4");
    assert!(wait_address(&topo, &mut c4, Duration::from_secs(30)).is_some());
    assert!(wait_sessions(&config, Duration::from_secs(10), |s| s.len() == 2));
    let (ok, out, _) = ras(&config, &["session", "disconnect", "--all"]);
    assert!(ok);
    assert!(out.starts_with("disconnecting 2 sessions: "), "{out}");
    let _ = finish(c3, Duration::from_secs(20));
    let _ = finish(c4, Duration::from_secs(20));
    assert!(wait_sessions(&config, Duration::from_secs(10), |s| s.is_empty()));
    let stops = detail_records(&fr.detail())
        .into_iter()
        .filter(|r| {
            get(r, "Acct-Status-Type") == Some("Stop")
                && get(r, "Acct-Terminate-Cause") == Some("Admin-Reset")
        })
        .count();
    assert!(stops >= 4, "{stops} Admin-Reset Stops");
    // The ended sessions' bytes stay in the protocol counters.
    let m = scrape(&socket);
    assert!(
        sample(
            &m,
            "ras_traffic_bytes_total",
            &[("protocol", "sstp"), ("direction", "in")]
        ) >= sstp_in
    );
    assert_eq!(
        sample(&m, "ras_sessions", &[("protocol", "sstp"), ("state", "up")]),
        0.0
    );

    // The server removes its socket when it stops.
    assert!(socket.exists());
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    server.expect("stopped;", Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(5);
    while socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!socket.exists(), "the admin socket is removed at the stop");
    let (ok, _, err) = ras(&config, &["status"]);
    assert!(!ok);
    assert!(
        err.contains("cannot reach the server's admin socket"),
        "{err}"
    );
}
