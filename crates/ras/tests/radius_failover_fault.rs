//! Issue 18, fault: the primary RADIUS server is killed (SIGKILL) while a
//! session is up. Logins go on through the alternate (failover after
//! `tries` × `timeout_secs`), none is refused, and no accounting is lost:
//! the Stop of the session that started on the primary, and the Start and
//! Stop of the sessions after the kill, reach the alternate from the spool.
//! Counted in the two FreeRADIUS detail files: every session has a Start
//! and a Stop in one of them. Needs root and FreeRADIUS; skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use interop::freeradius::{self, detail_records, FreeRadius};
use interop::netns::{Topology, SERVER_FOR_CLI1};

mod support;
use support::*;

/// Sessions started after the primary died.
const AFTER_KILL: usize = 3;

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

fn config(dir: &Path) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )
    .unwrap();
    let path = dir.join("ras.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-failover\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n\
             [auth]\nmethods = [\"mschapv2\"]\n\n[ipsec]\nenabled = false\n\n\
             [tun]\nname = \"ras-rfo0\"\n\n\
             [radius]\ntimeout_secs = 1\ntries = 2\ndead_time_secs = 60\n\n\
             [[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n\n\
             [[radius.servers]]\naddress = \"127.0.0.2\"\nsecret_file = \"radius.secret\"\n"
        ),
    )
    .unwrap();
    path
}

fn connect(topo: &Topology, pw: &Path, fp: &str, tun: &str) -> Client {
    connect_to(
        topo,
        "cli1",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        "test",
        pw,
        &["--fingerprint", fp, "--no-dns", "--no-ipv6"],
        tun,
    )
}

/// Acct-Session-Id → (Starts, Stops) over the detail files.
fn starts_and_stops(details: &[String]) -> BTreeMap<String, (usize, usize)> {
    let mut by_session: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for detail in details {
        for r in detail_records(detail) {
            let get = |k: &str| r.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(status), Some(id)) = (get("Acct-Status-Type"), get("Acct-Session-Id")) else {
                continue;
            };
            let e = by_session.entry(id.to_owned()).or_default();
            match status {
                "Start" => e.0 += 1,
                "Stop" => e.1 += 1,
                _ => {}
            }
        }
    }
    by_session.retain(|_, (starts, stops)| *starts + *stops > 0);
    by_session
}

#[test]
fn killing_the_primary_radius_loses_no_login_and_no_accounting() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrfo").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let srv = topo.ns("srv");
    let mut primary = FreeRadius::start(
        &dir.path().join("fr1"),
        Some(&srv),
        Ipv4Addr::new(127, 0, 0, 1),
    )
    .expect("primary FreeRADIUS");
    let alternate = FreeRadius::start(
        &dir.path().join("fr2"),
        Some(&srv),
        Ipv4Addr::new(127, 0, 0, 2),
    )
    .expect("alternate FreeRADIUS");
    let pw = password_file(dir.path(), "test", "test123");
    let server = Server::start(&topo, &config(dir.path()));

    // A session up on the primary.
    let mut first = connect(&topo, &pw, &server.fingerprint, "ras-rfo1");
    assert!(
        wait_address(&topo, &mut first, Duration::from_secs(30)).is_some(),
        "login through the primary"
    );

    // The primary dies (SIGKILL) with that session up.
    primary.stop();
    let killed = Instant::now();

    // Logins go on; none is refused.
    let mut refused = 0;
    let mut login_times = Vec::new();
    for i in 0..AFTER_KILL {
        let started = Instant::now();
        let mut c = connect(&topo, &pw, &server.fingerprint, "ras-rfo2");
        if wait_address(&topo, &mut c, Duration::from_secs(40)).is_some() {
            login_times.push(started.elapsed());
            interrupt(&c);
            assert!(finish(c, Duration::from_secs(15)).0, "session {i} ends");
        } else {
            refused += 1;
            let _ = finish(c, Duration::from_secs(5));
        }
    }
    interrupt(&first);
    assert!(finish(first, Duration::from_secs(15)).0);
    eprintln!(
        "after the kill: {} logins, {refused} refused, login times {login_times:?} ({:?} after the kill)",
        login_times.len(),
        killed.elapsed()
    );
    assert_eq!(refused, 0, "no login refused after the primary died");
    // The first login after the kill waits for the primary's timeouts
    // (tries 2 × 1 s plus back-off); later ones skip the dead primary.
    assert!(login_times
        .iter()
        .skip(1)
        .all(|t| *t < Duration::from_secs(10)));

    // Every session has its Start and its Stop in one of the two files.
    let deadline = Instant::now() + Duration::from_secs(30);
    let sessions = loop {
        let s = starts_and_stops(&[primary.detail(), alternate.detail()]);
        let complete = s.len() == AFTER_KILL + 1 && s.values().all(|(a, b)| *a >= 1 && *b >= 1);
        if complete || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("Starts and Stops by Acct-Session-Id: {sessions:?}");
    assert_eq!(sessions.len(), AFTER_KILL + 1, "{sessions:?}");
    for (id, (starts, stops)) in &sessions {
        assert!(
            *starts >= 1 && *stops >= 1,
            "{id}: {starts} Start, {stops} Stop"
        );
    }
    // The first session started on the primary and stopped on the
    // alternate: its Stop came through the failover.
    let on_primary = starts_and_stops(&[primary.detail()]);
    let on_alternate = starts_and_stops(&[alternate.detail()]);
    eprintln!("primary: {on_primary:?}\nalternate: {on_alternate:?}");
    assert!(on_primary.values().any(|(a, _)| *a >= 1));
    assert_eq!(
        on_alternate.values().map(|(_, b)| b).sum::<usize>(),
        AFTER_KILL + 1,
        "every Stop after the kill reached the alternate"
    );
    drop(server);
}

/// `ras_pool_addresses{pool="static",state}` from the admin socket.
fn pool(socket: &Path, state: &str) -> f64 {
    metric(socket, "ras_pool_addresses", &[("state", state)])
}

/// Issue 18, fault: `ras server` SIGKILLed with sessions up, and started
/// again. What it does today: the static pool lives in memory, so the new
/// process starts with every address free (the sessions' addresses are
/// handed out again, lowest first); no Stop is ever sent for the sessions
/// that died with the process (their records were in its memory), and
/// the Accounting-On (RFC 2866 §5.1) of the new start is how the RADIUS
/// server learns to close them. The spool (SQLite, WAL) is opened again
/// intact (radius_e2e's `accounting_survives_a_radius_outage_and_a_server_restart`
/// checks that records queued in it are delivered after a restart).
#[test]
fn a_killed_server_restarts_with_its_addresses_free_and_tells_radius() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("raskil").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let srv = topo.ns("srv");
    let fr = FreeRadius::start(
        &dir.path().join("fr1"),
        Some(&srv),
        Ipv4Addr::new(127, 0, 0, 1),
    )
    .expect("FreeRADIUS");
    let pw = password_file(dir.path(), "test", "test123");
    let cfg = config(dir.path());
    let admin = admin_socket_for(&cfg);
    let server = Server::start(&topo, &cfg);
    let mut a = connect(&topo, &pw, &server.fingerprint, "ras-rfo1");
    let first = wait_address(&topo, &mut a, Duration::from_secs(30)).expect("session 1");
    let mut b = connect(&topo, &pw, &server.fingerprint, "ras-rfo2");
    let second = wait_address(&topo, &mut b, Duration::from_secs(30)).expect("session 2");
    assert_eq!(pool(&admin, "in_use"), 2.0, "two sessions");
    let free_before = pool(&admin, "free");
    // Both Starts are at FreeRADIUS before the kill.
    let deadline = Instant::now() + Duration::from_secs(10);
    while starts_and_stops(&[fr.detail()]).len() < 2 {
        assert!(Instant::now() < deadline, "Starts not delivered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let ons_before = fr.detail().matches("Accounting-On").count();

    // SIGKILL (Server's drop), then the same configuration again.
    drop(server);
    let _ = finish(a, Duration::from_secs(10));
    let _ = finish(b, Duration::from_secs(10));
    let server = Server::start(&topo, &cfg);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ons_after = ons_before;
    while ons_after == ons_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        ons_after = fr.detail().matches("Accounting-On").count();
    }
    eprintln!("Accounting-On records: {ons_before} before the kill, {ons_after} after the restart");
    assert_eq!(ons_after, ons_before + 1);

    // Every address is free again: the same two are handed out.
    assert_eq!(pool(&admin, "in_use"), 0.0, "no session");
    assert_eq!(pool(&admin, "free"), free_before + 2.0);
    let mut c = connect(&topo, &pw, &server.fingerprint, "ras-rfo1");
    let again = wait_address(&topo, &mut c, Duration::from_secs(30)).expect("after restart");
    eprintln!("addresses: {first} and {second} before the kill, {again} after");
    assert_eq!(again, first.min(second));
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);

    // The sessions that died with the process have a Start and no Stop:
    // the Accounting-On above is what closes them at the RADIUS server.
    let s = starts_and_stops(&[fr.detail()]);
    eprintln!("Starts and Stops by Acct-Session-Id: {s:?}");
    assert_eq!(s.values().filter(|(a, b)| *a == 1 && *b == 0).count(), 2);
    drop(server);
}
