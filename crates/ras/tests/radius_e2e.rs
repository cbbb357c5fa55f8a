//! `ras server` authenticating and accounting through a real FreeRADIUS
//! (Debian's package, started privately by `interop::freeradius`) in the
//! server's network namespace, with our SSTP client in another namespace.
//! Needs root and the freeradius package; skips otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use interop::freeradius::{self, detail_records, FreeRadius};
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

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

fn config(dir: &Path, methods: &str, alternate: bool) -> std::path::PathBuf {
    config_with(dir, methods, alternate, "listen = []")
}

fn config_with(dir: &Path, methods: &str, alternate: bool, pptp: &str) -> std::path::PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )
    .unwrap();
    let mut servers = String::from(
        "[[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n",
    );
    if alternate {
        servers.push_str(
            "\n[[radius.servers]]\naddress = \"127.0.0.2\"\nsecret_file = \"radius.secret\"\n",
        );
    }
    let path = dir.join(format!("ras-{}.toml", methods.replace(['"', ',', ' '], "")));
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-radius\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\n{pptp}\n\n[auth]\nmethods = [{methods}]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-rad0\"\n\n[radius]\ntimeout_secs = 1\ntries = 2\ndead_time_secs = 30\n\n[radius.dynamic_authorization]\nlisten = \"127.0.0.1:3799\"\nclients = [{{ address = \"127.0.0.1\", secret_file = \"radius.secret\" }}]\n\n{servers}"
        ),
    )
    .unwrap();
    path
}

fn connect(topo: &Topology, user: &str, pw: &Path, fp: &str, weak: bool) -> Client {
    let mut args = vec!["--fingerprint", fp, "--no-dns", "--no-ipv6"];
    if weak {
        args.push("--allow-weak-auth");
    }
    connect_to(
        topo,
        "cli1",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        user,
        pw,
        &args,
        "ras-rc1",
    )
}

/// The FreeRADIUS of a test: on 127.0.0.1 in the server's namespace,
/// its files under `dir`/fr.
fn freeradius(topo: &Topology, dir: &Path) -> FreeRadius {
    let srv = topo.ns("srv");
    FreeRadius::start(&dir.join("fr"), Some(&srv), Ipv4Addr::new(127, 0, 0, 1)).expect("FreeRADIUS")
}

/// Waits until the detail file holds a record matching `pred`.
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

fn radclient(topo: &Topology, attrs: &str, kind: &str) -> String {
    use std::io::Write;
    let mut child = topo
        .command("srv", "radclient")
        .args([
            "-x",
            "-r",
            "2",
            "-t",
            "3",
            "127.0.0.1:3799",
            kind,
            freeradius::SECRET,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attrs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn logins_accounting_failover_and_disconnect_through_freeradius() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrd1").expect("namespaces");
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
    let good = password_file(dir.path(), "test", "test123");
    let bad = password_file(dir.path(), "bad", "wrong-password");

    // PAP, MS-CHAPv2 and EAP-MSCHAPv2 (passed through to FreeRADIUS), one
    // server run each; the wrong password is refused with each.
    for (methods, weak) in [
        ("\"pap\"", true),
        ("\"mschapv2\"", false),
        ("\"eap-mschapv2\"", false),
    ] {
        let server = Server::start(&topo, &config(dir.path(), methods, true));
        let mut c = connect(&topo, "test", &good, &server.fingerprint, weak);
        let got = wait_address(&topo, &mut c, Duration::from_secs(30));
        if got.is_none() {
            let log = primary.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "FreeRADIUS log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        assert_eq!(
            got,
            Some(Ipv4Addr::new(10, 0, 10, 21)),
            "{methods}: login through RADIUS"
        );
        assert!(ping(&topo, "cli1", LAN_HOST), "{methods}: traffic");
        interrupt(&c);
        let (ok, _) = finish(c, Duration::from_secs(15));
        assert!(ok, "{methods}: clean disconnect");
        let refused = connect(&topo, "test", &bad, &server.fingerprint, weak);
        let (ok, text) = finish(refused, Duration::from_secs(40));
        assert!(!ok, "{methods}: a wrong password must be refused: {text}");
        server.expect("Access-Reject", Duration::from_secs(5));
    }
    let log = primary.log();
    assert!(
        log.contains("MS-CHAP2-Response"),
        "FreeRADIUS saw MS-CHAPv2"
    );
    assert!(log.contains("EAP-Message"), "FreeRADIUS saw EAP");

    // Accounting: Start and Stop with the bytes that went through.
    let server = Server::start(&topo, &config(dir.path(), "\"mschapv2\"", true));
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let size = 2 * 1024 * 1024;
    let (sent, received, _) = transfer(&topo, "cli1", size);
    assert_eq!(sent, received);
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    let stop = wait_record(&primary, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop")
            && get(r, "Acct-Input-Octets")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n >= size as u64)
    })
    .expect("a Stop record with the transferred octets");
    let id = get(&stop, "Acct-Session-Id").unwrap().to_owned();
    let input: u64 = get(&stop, "Acct-Input-Octets").unwrap().parse().unwrap();
    // TCP headers and the handshake add a little; nothing else goes up.
    assert!(
        input < size as u64 + size as u64 / 10,
        "input octets {input}"
    );
    assert_eq!(get(&stop, "User-Name"), Some("test"));
    assert_eq!(get(&stop, "Acct-Terminate-Cause"), Some("User-Request"));
    assert_eq!(get(&stop, "Framed-IP-Address"), Some("10.0.10.21"));
    assert!(
        wait_record(&primary, Duration::from_secs(1), |r| {
            get(r, "Acct-Status-Type") == Some("Start") && get(r, "Acct-Session-Id") == Some(&id)
        })
        .is_some(),
        "a Start record for {id}"
    );

    // Disconnect-Request (RFC 5176) from radclient ends the session.
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let nak = radclient(&topo, "User-Name = \"nobody\"\n", "disconnect");
    assert!(nak.contains("Disconnect-NAK"), "unknown user: {nak}");
    let ack = radclient(&topo, "User-Name = \"test\"\n", "disconnect");
    assert!(ack.contains("Disconnect-ACK"), "{ack}");
    let (_, text) = finish(c, Duration::from_secs(20));
    assert!(!text.is_empty());
    assert!(
        wait_record(&primary, Duration::from_secs(10), |r| {
            get(r, "Acct-Status-Type") == Some("Stop")
                && get(r, "Acct-Terminate-Cause") == Some("Admin-Reset")
        })
        .is_some(),
        "Stop with Admin-Reset after the Disconnect-Request"
    );

    // CoA-Request (RFC 5176) shortens the session: Session-Timeout 2 s.
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let bad = radclient(&topo, "User-Name = \"test\"\nFilter-Id = \"x\"\n", "coa");
    assert!(bad.contains("CoA-NAK"), "unsupported attribute: {bad}");
    let ack = radclient(&topo, "User-Name = \"test\"\nSession-Timeout = 2\n", "coa");
    assert!(ack.contains("CoA-ACK"), "{ack}");
    let _ = finish(c, Duration::from_secs(20));
    assert!(
        wait_record(&primary, Duration::from_secs(10), |r| {
            get(r, "Acct-Status-Type") == Some("Stop")
                && get(r, "User-Name") == Some("test")
                && get(r, "Acct-Terminate-Cause") == Some("Session-Timeout")
        })
        .is_some(),
        "Stop with Session-Timeout after the CoA"
    );

    // What the Access-Accept grants: Framed-IP-Address and Class (echoed in
    // accounting), Session-Timeout (the session ends, cause Session-Timeout).
    let static_pw = password_file(dir.path(), "static", "static123");
    let mut c = connect(&topo, "static", &static_pw, &server.fingerprint, false);
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 25)),
        "Framed-IP-Address from RADIUS"
    );
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    let stop = wait_record(&primary, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop") && get(r, "User-Name") == Some("static")
    })
    .expect("Stop for the static user");
    assert_eq!(
        get(&stop, "Class"),
        Some("0x7261732d7374617469632d636c617373"),
        "Class echoed: {stop:?}"
    );
    let short_pw = password_file(dir.path(), "short", "short123");
    let mut c = connect(&topo, "short", &short_pw, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let up = Instant::now();
    let _ = finish(c, Duration::from_secs(30));
    let lasted = up.elapsed();
    assert!(
        lasted < Duration::from_secs(20),
        "Session-Timeout 4 s: lasted {lasted:?}"
    );
    assert!(
        wait_record(&primary, Duration::from_secs(10), |r| {
            get(r, "User-Name") == Some("short")
                && get(r, "Acct-Terminate-Cause") == Some("Session-Timeout")
        })
        .is_some(),
        "Stop with Session-Timeout"
    );

    // Failover: the primary stops answering; logins go on through the
    // alternate.
    primary.stop();
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(
        wait_address(&topo, &mut c, Duration::from_secs(40)).is_some(),
        "login through the alternate"
    );
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    assert!(alternate.log().contains("MS-CHAP2-Response"));
    drop(server);
}

/// Issue 12: each way a session ends reaches FreeRADIUS as its own RFC 2866
/// §5.10 Acct-Terminate-Cause: a killed client (its TCP connection closes
/// without a PPP goodbye) and a frozen one (no SSTP Hello or LCP echo
/// answer) are Lost-Carrier, not User-Request; a silent one is
/// Idle-Timeout (from a remote access policy); the client hanging up is
/// User-Request. (Disconnect-Request, Session-Timeout and the server's
/// stop are checked in the other tests of this file.)
#[test]
fn each_end_of_a_session_reaches_freeradius_as_what_happened() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrd5").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let fr = freeradius(&topo, dir.path());
    let good = password_file(dir.path(), "test", "test123");
    let static_pw = password_file(dir.path(), "static", "static123");
    let cfg = config(dir.path(), "\"mschapv2\"", false);
    // Short keepalives, so that a frozen client is noticed in seconds; an
    // idle timeout for the user `static` only.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[sstp]\n", "[sstp]\nhello_interval_secs = 2\n");
    let text = format!(
        "{text}\n[ppp]\necho_interval_secs = 1\necho_failures = 3\n\n\
         [[policy]]\nname = \"idle static\"\naccess = \"grant\"\n\
         [policy.conditions]\nusers = [\"static\"]\n\
         [policy.constraints]\nidle_timeout_secs = 3\n\n\
         [[policy]]\nname = \"everyone else\"\naccess = \"grant\"\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let server = Server::start(&topo, &cfg);
    let stops = |cause: &str| {
        detail_records(&fr.detail())
            .iter()
            .filter(|r| {
                get(r, "Acct-Status-Type") == Some("Stop")
                    && get(r, "Acct-Terminate-Cause") == Some(cause)
            })
            .count()
    };

    // Killed: the kernel closes its TCP connection, no Terminate-Request.
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &c.child.id().to_string()])
        .status();
    let _ = c.child.wait();
    drop(c);
    assert!(
        wait_record(&fr, Duration::from_secs(15), |r| {
            get(r, "Acct-Status-Type") == Some("Stop")
                && get(r, "Acct-Terminate-Cause") == Some("Lost-Carrier")
        })
        .is_some(),
        "a killed client's Stop says Lost-Carrier"
    );
    server.expect(
        "lost the peer: the connection closed",
        Duration::from_secs(5),
    );

    // Frozen: the connection stays open but nothing answers.
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &c.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stops("Lost-Carrier") < 2 {
        assert!(
            Instant::now() < deadline,
            "a frozen client's Stop says Lost-Carrier"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &c.child.id().to_string()])
        .status();
    drop(c);

    // Silent for the policy's idle timeout.
    let mut c = connect(&topo, "static", &static_pw, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let (ended, _) = finish(c, Duration::from_secs(30));
    assert!(!ended || stops("Idle-Timeout") == 1, "idle client ended");
    assert!(
        wait_record(&fr, Duration::from_secs(10), |r| {
            get(r, "Acct-Status-Type") == Some("Stop")
                && get(r, "User-Name") == Some("static")
                && get(r, "Acct-Terminate-Cause") == Some("Idle-Timeout")
        })
        .is_some(),
        "an idle client's Stop says Idle-Timeout"
    );

    // Hanging up: Terminate-Request first, User-Request.
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stops("User-Request") < 1 {
        assert!(
            Instant::now() < deadline,
            "a hang-up's Stop says User-Request"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(stops("Lost-Carrier"), 2, "no other Lost-Carrier");
    drop(server);
}

#[test]
fn accounting_survives_a_radius_outage_and_a_server_restart() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrd2").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let mut fr = freeradius(&topo, dir.path());
    let good = password_file(dir.path(), "test", "test123");
    let cfg = config(dir.path(), "\"mschapv2\"", false);
    let mut server = Server::start(&topo, &cfg);
    let mut c = connect(&topo, "test", &good, &server.fingerprint, false);
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    let (sent, received, _) = transfer(&topo, "cli1", 512 * 1024);
    assert_eq!(sent, received);
    // The Start has reached FreeRADIUS; now it goes away.
    assert!(
        wait_record(&fr, Duration::from_secs(10), |r| get(r, "Acct-Status-Type")
            == Some("Start"))
        .is_some()
    );
    fr.stop();
    // The server stops (the session's Stop cannot be sent) and starts again.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(c);
    drop(server);
    server = Server::start(&topo, &cfg);
    fr.restart().expect("FreeRADIUS again");
    let stop = wait_record(&fr, Duration::from_secs(40), |r| {
        get(r, "Acct-Status-Type") == Some("Stop")
    })
    .expect("the spooled Stop arrives after the outage");
    let input: u64 = get(&stop, "Acct-Input-Octets").unwrap().parse().unwrap();
    assert!(input >= 512 * 1024, "input octets {input}");
    assert_eq!(get(&stop, "Acct-Terminate-Cause"), Some("Admin-Reboot"));
    let delay: u64 = get(&stop, "Acct-Delay-Time")
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert!(delay >= 1, "the delay is reported: {delay}");
    // RFC 2866 §5.1: each start of the server says Accounting-On (sent
    // outside the spool, retransmitted until FreeRADIUS is back); the
    // first stop's Accounting-Off found FreeRADIUS gone and is not kept.
    let deadline = Instant::now() + Duration::from_secs(20);
    let kinds = loop {
        let kinds: Vec<(String, String)> = detail_records(&fr.detail())
            .iter()
            .filter_map(|r| {
                Some((
                    get(r, "Acct-Status-Type")?.to_owned(),
                    get(r, "Acct-Session-Id")?.to_owned(),
                ))
            })
            .collect();
        let ons = kinds.iter().filter(|(k, _)| k == "Accounting-On").count();
        if ons >= 2 || Instant::now() > deadline {
            break kinds;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let order: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(order[..2], ["Accounting-On", "Start"], "{kinds:?}");
    let mut rest = order[2..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, ["Accounting-On", "Stop"], "{kinds:?}");
    let ons: Vec<&String> = kinds
        .iter()
        .filter(|(k, _)| k == "Accounting-On")
        .map(|(_, id)| id)
        .collect();
    assert_ne!(ons[0], ons[1], "each start has its own id");
    let on = detail_records(&fr.detail())
        .into_iter()
        .find(|r| get(r, "Acct-Status-Type") == Some("Accounting-On"))
        .unwrap();
    assert!(get(&on, "NAS-Identifier").is_some(), "{on:?}");
    drop(server);
}

#[test]
fn pptp_encrypts_with_the_mppe_keys_from_radius() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrd3").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let fr = freeradius(&topo, dir.path());
    let good = password_file(dir.path(), "test", "test123");
    let cfg = config_with(
        dir.path(),
        "\"mschapv2\"",
        false,
        &format!("listen = [\"{SERVER_FOR_CLI1}:1723\"]"),
    );
    let _server = Server::start(&topo, &cfg);
    let mut c = connect_to(
        &topo,
        "cli1",
        &format!("pptp://{SERVER_FOR_CLI1}"),
        "test",
        &good,
        &["--no-dns", "--no-ipv6"],
        "ras-rp1",
    );
    // MPPE-128 is required by default: the link comes up only if both ends
    // hold the same keys, the client's from MS-CHAPv2, the server's from
    // FreeRADIUS's MS-MPPE-Send-Key/Recv-Key.
    assert!(
        wait_address(&topo, &mut c, Duration::from_secs(30)).is_some(),
        "PPTP through RADIUS"
    );
    let (sent, received, _) = transfer(&topo, "cli1", 1024 * 1024);
    assert_eq!(sent, received, "1 MB through MPPE with RADIUS keys");
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    assert!(
        fr.log().contains("MS-MPPE-Recv-Key"),
        "FreeRADIUS sent MPPE keys"
    );
    let stop = wait_record(&fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop")
    })
    .expect("a Stop record for the PPTP session");
    let input: u64 = get(&stop, "Acct-Input-Octets").unwrap().parse().unwrap();
    assert!(input >= 1024 * 1024, "PPTP input octets {input}");
    assert_eq!(
        get(&stop, "Tunnel-Type:0").or(get(&stop, "Tunnel-Type")),
        Some("PPTP"),
        "{stop:?}"
    );
    assert_eq!(get(&stop, "NAS-Port-Type"), Some("Virtual"));
}

#[test]
fn framed_ipv6_prefix_from_radius_is_the_clients_prefix() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasrd4").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let _fr = freeradius(&topo, dir.path());
    let pw = password_file(dir.path(), "v6", "v6pass123");
    let server = Server::start(&topo, &config(dir.path(), "\"mschapv2\"", false));
    let server_prefix = clients_ipv6_prefix(&server);
    let child = topo
        .command("cli1", RAS)
        .args([
            "connect",
            &format!("sstp://{SERVER_FOR_CLI1}"),
            "--user",
            "v6",
            "--password-file",
        ])
        .arg(&pw)
        .args([
            "--fingerprint",
            &server.fingerprint,
            "--no-dns",
            "--tun-name",
            "ras-rv1",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ras connect");
    let mut c = Client {
        child,
        tun: "ras-rv1".into(),
        role: "cli1",
    };
    assert!(wait_address(&topo, &mut c, Duration::from_secs(30)).is_some());
    // The router advertisement carries the user's prefix, not the server's.
    let global = global_ipv6(&topo, "cli1", "ras-rv1", "fd99:1:2:3:");
    assert!(global.contains("fd99:1:2:3:"), "client IPv6: {global}");
    assert!(
        !global.contains(server_prefix.trim_end_matches(':')),
        "{global}"
    );
    // Traffic comes back to it through the route the server added: the
    // server's own address is in its prefix, reached through the tunnel.
    let target = format!("{server_prefix}1");
    assert!(topo
        .command("cli1", "ip")
        .args([
            "-6",
            "route",
            "add",
            &format!("{target}/128"),
            "dev",
            "ras-rv1"
        ])
        .status()
        .unwrap()
        .success());
    assert!(
        topo.command("cli1", "ping")
            .args(["-6", "-c", "2", "-W", "2", &target])
            .status()
            .unwrap()
            .success(),
        "ping6 {target} from the RADIUS prefix"
    );
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = topo
            .command("srv", "ip")
            .args(["-6", "route", "show", "fd99:1:2:3::/64"])
            .output()
            .unwrap();
        if out.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the prefix route outlived the session"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The start of the server's IPv6 client prefix ("fd..::") from its
/// "IPv6: clients in PREFIX/64" line.
fn clients_ipv6_prefix(server: &Server) -> String {
    let line = server.expect("IPv6: clients in", Duration::from_secs(5));
    line.split("clients in ")
        .nth(1)
        .unwrap()
        .trim_end_matches("/64")
        .trim()
        .to_owned()
}

/// `ip -6 -o addr` of `dev`'s global addresses in `role`, once one starts
/// with `prefix` (SLAAC from the server's router advertisement), or what
/// there is after 10 s.
fn global_ipv6(topo: &Topology, role: &str, dev: &str, prefix: &str) -> String {
    let mut global = String::new();
    for _ in 0..100 {
        global = ip_in(
            topo,
            role,
            &["-6", "-o", "addr", "show", "dev", dev, "scope", "global"],
        );
        if global.contains(prefix) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    global
}

/// `ip route` in `role`'s namespace has a route for `net` (IPv4 or IPv6)
/// through `dev`.
fn has_route(topo: &Topology, role: &str, net: &str, dev: &str) -> bool {
    ip_in(topo, role, &[family(net), "route", "show", net])
        .lines()
        .any(|l| l.starts_with(net) && l.contains(&format!("dev {dev}")))
}

fn family(address: &str) -> &'static str {
    if address.contains(':') {
        "-6"
    } else {
        "-4"
    }
}

/// Waits up to 5 s for `has_route` to turn false.
fn route_gone(topo: &Topology, role: &str, net: &str, dev: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while has_route(topo, role, net, dev) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    !has_route(topo, role, net, dev)
}

/// Each (namespace, source address, text) sends `text` three times over
/// UDP from `source` to `to` port 9999 in the intranet namespace; returns
/// which texts arrived, with the source they came from.
fn sent_to_intranet(
    topo: &Topology,
    to: &str,
    sends: &[(&str, &str, &'static str)],
) -> std::collections::BTreeMap<String, std::net::IpAddr> {
    let target: std::net::SocketAddr = if to.contains(':') {
        format!("[{to}]:9999")
    } else {
        format!("{to}:9999")
    }
    .parse()
    .unwrap();
    let listener = topo
        .in_ns("lan", || {
            let s = std::net::UdpSocket::bind(target).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s
        })
        .unwrap();
    for (role, source, text) in sends {
        let source: std::net::IpAddr = source.parse().unwrap();
        topo.in_ns(role, move || {
            let s = std::net::UdpSocket::bind((source, 0)).unwrap();
            for _ in 0..3 {
                s.send_to(text.as_bytes(), target).unwrap();
            }
        })
        .unwrap();
    }
    let mut got = std::collections::BTreeMap::new();
    let mut buf = [0u8; 64];
    while let Ok((n, from)) = listener.recv_from(&mut buf) {
        got.insert(String::from_utf8_lossy(&buf[..n]).into_owned(), from.ip());
    }
    got
}

/// Issue 14: a branch router dials in and RADIUS gives it a network with
/// Framed-Route (RFC 2865 §5.22). The intranet reaches the network
/// through the session, the kernel route exists only while the session
/// is up, a bad Framed-Route is one warning, and another user's session
/// cannot send from the network.
#[test]
fn framed_route_from_freeradius_routes_a_network_behind_the_client() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasfr1").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let fr = freeradius(&topo, dir.path());
    let config = config_with(
        dir.path(),
        "\"mschapv2\"",
        false,
        &format!("listen = [\"{SERVER_FOR_CLI1}:1723\"]"),
    );
    let server = Server::start(&topo, &config);
    // The network behind the branch: 10.77.0.1 on the client's loopback.
    ip_in(&topo, "cli1", &["addr", "add", "10.77.0.1/32", "dev", "lo"]);
    // The intranet sends the network to the server, as for the pool.
    ip_in(
        &topo,
        "lan",
        &["route", "add", "10.77.0.0/24", "via", "172.31.0.1"],
    );
    assert!(
        !has_route(&topo, "srv", "10.77.0.0/24", "ras-rad0"),
        "no route before the session"
    );

    let branch_pw = password_file(dir.path(), "branch", "branch123");
    let mut branch = connect(&topo, "branch", &branch_pw, &server.fingerprint, false);
    assert_eq!(
        wait_address(&topo, &mut branch, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    // The bad Framed-Route is one warning (logged first), the good one
    // is routed.
    let bad = server.expect(
        "RADIUS Framed-Route \"10.79.0.5/24 0.0.0.0 1\" ignored",
        Duration::from_secs(5),
    );
    assert!(bad.contains("beyond its prefix length"), "{bad}");
    server.expect(
        "framed routes through the session: 10.77.0.0/24",
        Duration::from_secs(5),
    );
    assert!(
        has_route(&topo, "srv", "10.77.0.0/24", "ras-rad0"),
        "the kernel route to the TUN while the session is up:\n{}",
        ip_in(&topo, "srv", &["-4", "route"])
    );
    // The intranet reaches the network behind the client, and the replies
    // (from 10.77.0.1, not the client's address) come back.
    assert!(
        ping(&topo, "lan", "10.77.0.1"),
        "ping from the intranet to 10.77.0.1 through the tunnel"
    );

    // `ras session list --json` lists the network.
    let out = std::process::Command::new(RAS)
        .args(["session", "list", "--json", "--config"])
        .arg(&config)
        .env("RAS_ADMIN_SOCKET", admin_socket_for(&config))
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        listed[0]["framed_routes"],
        serde_json::json!(["10.77.0.0/24"]),
        "{listed}"
    );

    // Another user's session may send from its own address, not from the
    // branch's network.
    ip_in(&topo, "cli2", &["addr", "add", "10.77.0.5/32", "dev", "lo"]);
    // SSTP listens on the server's address towards cli1 only.
    ip_in(
        &topo,
        "cli2",
        &["route", "add", "10.201.1.0/24", "via", "10.201.2.1"],
    );
    let good = password_file(dir.path(), "test", "test123");
    let mut other = connect_to(
        &topo,
        "cli2",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        "test",
        &good,
        &[
            "--fingerprint",
            &server.fingerprint,
            "--no-dns",
            "--no-ipv6",
        ],
        "ras-rc2",
    );
    let other_addr =
        wait_address(&topo, &mut other, Duration::from_secs(30)).expect("second login");
    let other_source = other_addr.to_string();
    let got = sent_to_intranet(
        &topo,
        LAN_HOST,
        &[
            ("cli2", "10.77.0.5", "spoofed"),
            ("cli2", &other_source, "other"),
            ("cli1", "10.77.0.1", "branch"),
        ],
    );
    assert_eq!(
        got.get("other"),
        Some(&std::net::IpAddr::V4(other_addr)),
        "{got:?}"
    );
    assert_eq!(
        got.get("branch"),
        Some(&"10.77.0.1".parse().unwrap()),
        "{got:?}"
    );
    assert!(
        !got.contains_key("spoofed"),
        "a packet from the branch's network through another session: {got:?}"
    );
    server.expect("dropped a packet from 10.77.0.5", Duration::from_secs(5));

    // The route ends with the session; accounting recorded it.
    interrupt(&branch);
    assert!(finish(branch, Duration::from_secs(15)).0);
    assert!(
        route_gone(&topo, "srv", "10.77.0.0/24", "ras-rad0"),
        "the route is removed when the session ends:\n{}",
        ip_in(&topo, "srv", &["-4", "route"])
    );
    assert!(!ping(&topo, "lan", "10.77.0.1"), "no way in after the end");
    let stop = wait_record(&fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop") && get(r, "User-Name") == Some("branch")
    })
    .expect("the branch's Stop record");
    assert_eq!(
        get(&stop, "Framed-Route").map(|v| v.trim_matches('"')),
        Some("10.77.0.0/24 0.0.0.0 1"),
        "{stop:?}"
    );
    interrupt(&other);
    let _ = finish(other, Duration::from_secs(15));

    // The same through PPTP (GRE, MPPE-128 keyed by FreeRADIUS).
    let mut pptp = connect_to(
        &topo,
        "cli1",
        &format!("pptp://{SERVER_FOR_CLI1}"),
        "branch",
        &branch_pw,
        &["--no-dns", "--no-ipv6"],
        "ras-rp1",
    );
    assert!(
        wait_address(&topo, &mut pptp, Duration::from_secs(30)).is_some(),
        "PPTP login"
    );
    server.expect(
        "framed routes through the session: 10.77.0.0/24",
        Duration::from_secs(5),
    );
    assert!(has_route(&topo, "srv", "10.77.0.0/24", "ras-rad0"));
    assert!(
        ping(&topo, "lan", "10.77.0.1"),
        "ping from the intranet to 10.77.0.1 through the PPTP session"
    );
    interrupt(&pptp);
    assert!(finish(pptp, Duration::from_secs(15)).0);
    assert!(
        route_gone(&topo, "srv", "10.77.0.0/24", "ras-rad0"),
        "the route is removed when the PPTP session ends"
    );
}

/// The intranet over IPv6: fd31::2/64 in the LAN namespace, the server
/// fd31::1 on its side of the link and the LAN's default route.
const LAN_HOST_V6: &str = "fd31::2";

fn intranet_ipv6(topo: &Topology) {
    // The link's two veth ends: the only one in the LAN namespace, and the
    // one in the server's whose name ends like it ("…lnb" for "…lna").
    let veth = |role: &str| -> Vec<String> {
        ip_in(topo, role, &["-o", "link", "show", "type", "veth"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .collect()
    };
    let lan = veth("lan").pop().expect("the LAN's veth");
    let srv = format!("{}b", lan.trim_end_matches('a'));
    assert!(
        veth("srv").contains(&srv),
        "{srv} in the server's namespace"
    );
    for (role, dev, address) in [("lan", &lan, "fd31::2/64"), ("srv", &srv, "fd31::1/64")] {
        assert!(topo
            .command(role, "ip")
            .args(["-6", "addr", "add", address, "dev", dev, "nodad"])
            .status()
            .unwrap()
            .success());
    }
    assert!(topo
        .command("lan", "ip")
        .args(["-6", "route", "add", "default", "via", "fd31::1"])
        .status()
        .unwrap()
        .success());
}

/// Issue 14 for IPv6: RADIUS gives the branch a network with
/// Framed-IPv6-Route (RFC 3162 §2.5) over SSTP with IPv6CP. The intranet
/// reaches 2001:db8:77::1 behind the client through the session, the
/// kernel route exists only while it is up, and another session cannot
/// send from the network.
#[test]
fn framed_ipv6_route_from_freeradius_routes_a_network_behind_the_client() {
    if !can_run_radius() {
        return;
    }
    let topo = Topology::create("rasfr6").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let fr = freeradius(&topo, dir.path());
    let server = Server::start(&topo, &config(dir.path(), "\"mschapv2\"", false));
    let server_prefix = clients_ipv6_prefix(&server);
    intranet_ipv6(&topo);
    let net = "2001:db8:77::/64";
    // The network behind the branch: 2001:db8:77::1 on the client's
    // loopback (this host's kernel has no dummy interfaces).
    assert!(topo
        .command("cli1", "ip")
        .args(["-6", "addr", "add", "2001:db8:77::1/128", "dev", "lo"])
        .status()
        .unwrap()
        .success());
    assert!(
        !has_route(&topo, "srv", net, "ras-rad0"),
        "no route before the session"
    );
    // IPv6CP on (no --no-ipv6), and the intranet's IPv6 network through
    // the tunnel besides connect_to's IPv4 one.
    let v6_args = [
        "--fingerprint",
        server.fingerprint.as_str(),
        "--no-dns",
        "--route",
        "fd31::/64",
    ];

    let branch_pw = password_file(dir.path(), "branch6", "branch6pw");
    let branch = sstp_logged_in(&topo, "cli1", "branch6", &branch_pw, &v6_args, "ras-rb6");
    server.expect(
        "framed routes through the session: 2001:db8:77::/64",
        Duration::from_secs(5),
    );
    assert!(
        has_route(&topo, "srv", net, "ras-rad0"),
        "the kernel route to the TUN while the session is up:\n{}",
        ip_in(&topo, "srv", &["-6", "route"])
    );
    // The intranet reaches the network behind the client, and the replies
    // (from 2001:db8:77::1) come back through the session.
    assert!(
        topo.command("lan", "ping")
            .args(["-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:77::1"])
            .status()
            .unwrap()
            .success(),
        "ping6 from the intranet to 2001:db8:77::1 through the tunnel"
    );

    // Another user's session may send from its own address, not from the
    // branch's network.
    ip_in(
        &topo,
        "cli2",
        &["-6", "addr", "add", "2001:db8:77::5/128", "dev", "lo"],
    );
    ip_in(
        &topo,
        "cli2",
        &["route", "add", "10.201.1.0/24", "via", "10.201.2.1"],
    );
    let good = password_file(dir.path(), "test", "test123");
    let other = sstp_logged_in(&topo, "cli2", "test", &good, &v6_args, "ras-rc2");
    let global = global_ipv6(&topo, "cli2", "ras-rc2", &server_prefix);
    let other_source = global
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("the other session's IPv6 address: {global}"))
        .to_owned();
    let got = sent_to_intranet(
        &topo,
        LAN_HOST_V6,
        &[
            ("cli2", "2001:db8:77::5", "spoofed"),
            ("cli2", &other_source, "other"),
            ("cli1", "2001:db8:77::1", "branch"),
        ],
    );
    assert_eq!(
        got.get("other").map(|a| a.to_string()),
        Some(other_source.clone()),
        "{got:?}"
    );
    assert_eq!(
        got.get("branch"),
        Some(&"2001:db8:77::1".parse().unwrap()),
        "{got:?}"
    );
    assert!(
        !got.contains_key("spoofed"),
        "a packet from the branch's network through another session: {got:?}"
    );
    server.expect(
        "dropped a packet from 2001:db8:77::5",
        Duration::from_secs(5),
    );

    // The route ends with the session; accounting recorded it.
    interrupt(&branch);
    assert!(finish(branch, Duration::from_secs(15)).0);
    assert!(
        route_gone(&topo, "srv", net, "ras-rad0"),
        "the route is removed when the session ends:\n{}",
        ip_in(&topo, "srv", &["-6", "route"])
    );
    assert!(
        !topo
            .command("lan", "ping")
            .args(["-6", "-c", "1", "-W", "1", "2001:db8:77::1"])
            .status()
            .unwrap()
            .success(),
        "no way in after the end"
    );
    let stop = wait_record(&fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop") && get(r, "User-Name") == Some("branch6")
    })
    .expect("the branch's Stop record");
    assert_eq!(
        get(&stop, "Framed-IPv6-Route").map(|v| v.trim_matches('"')),
        Some("2001:db8:77::/64 :: 1"),
        "{stop:?}"
    );
    interrupt(&other);
    let _ = finish(other, Duration::from_secs(15));
}

/// `ras connect sstp://` from namespace `role` as `user`, once it has its
/// address (the test fails if it does not get one within 30 s).
fn sstp_logged_in(
    topo: &Topology,
    role: &'static str,
    user: &str,
    pw: &Path,
    args: &[&str],
    tun: &str,
) -> Client {
    let mut client = connect_to(
        topo,
        role,
        &format!("sstp://{SERVER_FOR_CLI1}"),
        user,
        pw,
        args,
        tun,
    );
    assert!(
        wait_address(topo, &mut client, Duration::from_secs(30)).is_some(),
        "{user}'s login from {role}"
    );
    client
}
