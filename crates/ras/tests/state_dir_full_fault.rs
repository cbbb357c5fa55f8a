//! Issue 18, fault: the disk of the state directory fills up while
//! sessions log in and out with RADIUS accounting. The state directory is
//! a 512 KiB tmpfs mounted in a mount namespace of this test's own
//! (interop::mountns: the host never sees it), and FreeRADIUS's accounting
//! port is blocked for a while (nft in the server's namespace) so that
//! records wait in the spool when the disk fills.
//!
//! What must hold: the server keeps serving (logins go on), the failed
//! spool write is one clear log line naming the file and "No space left on
//! device" (not one per record), the records spooled before are intact,
//! and once space is freed and FreeRADIUS reachable every session's Start
//! and Stop reaches it (those written before the disk filled from the
//! spool, the later ones from memory); the spool opens cleanly afterwards.
//!
//! Needs root and FreeRADIUS; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use interop::freeradius::{self, detail_records, FreeRadius};
use interop::netns::{Topology, SERVER_FOR_CLI1};

mod support;
use support::*;

const TMPFS_BYTES: u64 = 512 * 1024;

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

/// Acct-Session-Id → (Starts, Stops) in a detail file.
fn starts_and_stops(detail: &str) -> BTreeMap<String, (usize, usize)> {
    let mut by_session: BTreeMap<String, (usize, usize)> = BTreeMap::new();
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
    by_session.retain(|_, (starts, stops)| *starts + *stops > 0);
    by_session
}

fn complete(detail: &str) -> usize {
    starts_and_stops(detail)
        .values()
        .filter(|(a, b)| *a >= 1 && *b >= 1)
        .count()
}

fn wait_complete(fr: &FreeRadius, n: usize, within: Duration) -> BTreeMap<String, (usize, usize)> {
    let deadline = Instant::now() + within;
    while complete(&fr.detail()) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    starts_and_stops(&fr.detail())
}

fn nft(topo: &Topology, script: &str) {
    let out = topo
        .command("srv", "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .expect("nft");
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One login and logout; whether the login succeeded.
fn session(topo: &Topology, pw: &Path, fp: &str) -> bool {
    let mut c = connect_to(
        topo,
        "cli1",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        "test",
        pw,
        &["--fingerprint", fp, "--no-dns", "--no-ipv6"],
        "ras-ful1",
    );
    let up = wait_address(topo, &mut c, Duration::from_secs(30)).is_some();
    interrupt(&c);
    let ended = finish(c, Duration::from_secs(15)).0;
    up && ended
}

#[test]
fn a_full_state_directory_loses_no_accounting_and_stops_no_login() {
    if !can_run_radius() {
        return;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("SKIPPED: nft is not installed");
        return;
    }
    let topo = Topology::create("rasful").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // This thread (and what it starts) sees the tmpfs; nothing else does.
    interop::mountns::private_tmpfs(&state, TMPFS_BYTES).expect("a private tmpfs");
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )
    .unwrap();
    let cfg = dir.path().join("ras.toml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-full\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n\
             [auth]\nmethods = [\"mschapv2\"]\n\n[ipsec]\nenabled = false\n\n\
             [tun]\nname = \"ras-ful0\"\n\n\
             [radius]\ntimeout_secs = 1\ntries = 2\n\n\
             [[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n"
        ),
    )
    .unwrap();
    let srv = topo.ns("srv");
    let fr = FreeRadius::start(
        &dir.path().join("fr"),
        Some(&srv),
        Ipv4Addr::new(127, 0, 0, 1),
    )
    .expect("FreeRADIUS");
    let pw = password_file(dir.path(), "test", "test123");
    let server = Server::start(&topo, &cfg);

    // 1. All well: a session's Start and Stop arrive.
    assert!(session(&topo, &pw, &server.fingerprint), "session 1");
    let s = wait_complete(&fr, 1, Duration::from_secs(15));
    assert_eq!(complete(&fr.detail()), 1, "{s:?}");

    // 2. Accounting unreachable (authentication still works): the next
    // session's records wait in the spool.
    nft(
        &topo,
        "table inet rasful {\n chain out {\n  type filter hook output priority 0;\n  udp dport 1813 drop\n }\n}\n",
    );
    assert!(session(&topo, &pw, &server.fingerprint), "session 2");

    // 3. The disk fills up. Logins go on; the spool cannot be written.
    let filler = state.join("filler");
    let took = interop::mountns::fill(&filler).expect("fill the tmpfs");
    eprintln!("filled the state directory with {took} bytes");
    let _ = server.drain(Duration::from_millis(300));
    for n in 3..=4 {
        assert!(
            session(&topo, &pw, &server.fingerprint),
            "session {n} with a full disk"
        );
    }
    let lines = server.lines_for(Duration::from_secs(2));
    let spool = state.join("accounting.db");
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("cannot write the accounting spool"))
        .collect();
    eprintln!("spool errors: {errors:#?}");
    assert_eq!(errors.len(), 1, "one line, not one per record: {lines:#?}");
    assert!(
        errors[0].contains(&spool.display().to_string())
            && errors[0].contains("No space left on device"),
        "{}",
        errors[0]
    );
    assert!(!lines.iter().any(|l| l.contains("panicked")), "{lines:#?}");
    // Session 2's records are still in the spool, intact.
    {
        let sp = server::accounting::Spool::open(&spool).expect("the spool opens");
        assert_eq!(sp.integrity().unwrap(), "ok");
        assert!(sp.len().unwrap() >= 2, "session 2's Start and Stop spooled");
    }

    // 4. Space freed, RADIUS reachable: everything arrives.
    std::fs::remove_file(&filler).unwrap();
    nft(&topo, "delete table inet rasful\n");
    let freed = Instant::now();
    let s = wait_complete(&fr, 4, Duration::from_secs(90));
    eprintln!(
        "after the space was freed: {} of 4 sessions complete at FreeRADIUS in {:.1} s: {s:?}",
        complete(&fr.detail()),
        freed.elapsed().as_secs_f64()
    );
    assert_eq!(s.len(), 4, "{s:?}");
    for (id, (starts, stops)) in &s {
        assert!(
            *starts >= 1 && *stops >= 1,
            "{id}: {starts} Start, {stops} Stop"
        );
    }
    let moved = server.expect("can be written again", Duration::from_secs(5));
    assert!(
        moved.contains("record(s) moved into it from memory"),
        "{moved}"
    );

    // 5. Stopped and started again: the spool opens cleanly, empty.
    let mut server = server;
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let _ = server.child.wait();
    {
        let sp = server::accounting::Spool::open(&spool).expect("the spool opens");
        assert_eq!(sp.integrity().unwrap(), "ok");
        assert_eq!(sp.len().unwrap(), 0, "nothing left to send");
    }
    let server = Server::start(&topo, &cfg);
    assert!(
        session(&topo, &pw, &server.fingerprint),
        "after the restart"
    );
    let s = wait_complete(&fr, 5, Duration::from_secs(15));
    assert_eq!(complete(&fr.detail()), 5, "{s:?}");
    drop(server);
}
