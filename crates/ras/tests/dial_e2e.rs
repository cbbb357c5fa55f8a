//! Dial-up end to end: `ras server` answering a `[dialin]` serial line
//! (one end of a socat pty pair, with modem emulation) and
//! `ras connect serial://…?number=…` on the other end, in different
//! network namespaces so the PPP line is the only path between them.
//! Then `ras dial PROFILE`: custom actions at every point with macros
//! expanded, failure paths, monitored programs, Ctrl-C while connecting
//! (these need neither root nor a server), and dial-up and double-dial
//! profiles against our own dial-in server (root and socat; skipped with
//! a message otherwise, failing under RAS_INTEROP_REQUIRED=1).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

mod support;
use support::*;
#[path = "support/dialup.rs"]
mod dialup;
use dialup::*;
#[path = "support/dial_profiles.rs"]
mod dial_profiles;
use dial_profiles::*;

const NUMBER: &str = "5551234";

fn connect_serial(topo: &Topology, line: &Path, number: &str, pw: &Path, tun: &str) -> Client {
    connect_to(
        topo,
        "cli1",
        &format!("serial://{}?number={number}", line.display()),
        "alice",
        pw,
        &["--no-dns", "--no-ipv6"],
        tun,
    )
}

#[test]
fn dial_up_over_a_pty_pair_to_our_dial_in_server() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(line) = PtyPair::start(dir.path()) else {
        return;
    };
    let topo = Topology::create("dialu").expect("namespaces");
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    write_dialin_config(&config, &state, "dialu0", &[], &line.server_end, NUMBER);
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);

    // A wrong access number: the emulated modem answers NO CARRIER.
    let wrong = connect_serial(&topo, &line.client_end, "5550000", &pw, "dialu-c0");
    let (ok, text) = finish(wrong, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.contains("NO CARRIER"), "{text}");

    let mut c = connect_serial(&topo, &line.client_end, "555-1234", &pw, "dialu-c1");
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    server.expect("dial-in call", Duration::from_secs(5));
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "ping through the dial-up line"
    );
    let (sent, received, secs) = transfer(&topo, "cli1", 2 * 1024 * 1024);
    assert_eq!(sent, received, "2 MB arrived intact over the line");
    eprintln!(
        "2 MB over the pty PPP line in {secs:.2} s ({:.1} Mbit/s)",
        16.0 / secs
    );
    interrupt(&c);
    let (ok, _) = finish(c, Duration::from_secs(15));
    assert!(ok, "clean hang-up exits 0");
    server.expect("dial-in session ended", Duration::from_secs(10));
    drop(server);
}

// ---- ras dial ----

fn dial(profile: &Path, extra: &[&str], env: &[(&str, &str)]) -> Child {
    dial_with(Command::new(RAS), profile, extra, env)
}

/// `ras dial` started by `cmd` (the binary, maybe in a namespace).
fn dial_with(mut cmd: Command, profile: &Path, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let pw = profile.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    cmd.arg("dial")
        .arg(profile)
        .arg("--password-file")
        .arg(&pw)
        .args(["--unattended", "--no-dns", "--no-ipv6"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start ras dial")
}

/// Wait for exit; (success, stdout + stderr).
fn wait_dial(mut child: Child, within: Duration) -> (bool, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut text = String::new();
            let _ = child.stdout.take().unwrap().read_to_string(&mut text);
            let _ = child.stderr.take().unwrap().read_to_string(&mut text);
            panic!("ras dial did not exit:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut text);
    let _ = child.stderr.take().unwrap().read_to_string(&mut text);
    eprintln!("[ras dial] {text}");
    (status.success(), text)
}

const DIRECT: &str = "Dialup=0\nDirect=1\nConnectionType=1\nTunnel=0\nUserNamePrefix=CORP\\\nUserNameSuffix=@corp.example\n";

/// A direct connection that exists: SSTP to our server in the server namespace, the
/// dialer in the client namespace (root). The profile's `[Connection Manager]` is
/// `cm` plus `Tunnel=1` and `TunnelAddress`; the user alice's password is "secret"
/// (what [`dial`] writes).
struct DirectServer {
    topo: Topology,
    server: Server,
    _dir: tempfile::TempDir,
}

impl DirectServer {
    /// None (after saying why) when the test cannot run here.
    fn start(prefix: &str) -> Option<DirectServer> {
        if !can_run() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let topo = Topology::create(prefix).expect("namespaces");
        let config = dir.path().join("ras.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\nserver_name = \"ras-dial-e2e\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"{prefix}0\"\n",
                dir.path().join("state")
            ),
        )
        .unwrap();
        let pw = password_file(dir.path(), "alice", "secret");
        // The realm of DIRECT: CORP\alice@corp.example, and the Domain some tests set.
        // (Whichever form the server looks up: with or without the realm and domain.)
        for name in [
            "CORP\\alice@corp.example",
            "CORP\\CORPDOM\\alice@corp.example",
            "CORPDOM\\alice@corp.example",
            "alice@corp.example",
            "alice",
        ] {
            add_user(&config, name, &pw, &[]);
        }
        let server = Server::start(&topo, &config);
        Some(DirectServer {
            topo,
            server,
            _dir: dir,
        })
    }

    /// DIRECT with a tunnel to this server.
    fn cm(&self) -> String {
        format!("{DIRECT}Tunnel=1\nTunnelAddress={SERVER_FOR_CLI1}\nRedialCount=0\n")
            .replace("Tunnel=0\n", "")
    }

    /// `ras dial` in the client namespace, trusting this server.
    fn dial(&self, profile: &Path, env: &[(&str, &str)]) -> Child {
        let fp = self.server.fingerprint.clone();
        let tun = format!("{}v", short_tun(&self.topo));
        dial_with(
            self.topo.command("cli1", RAS),
            profile,
            &["--fingerprint", &fp, "--vpn-tun", &tun],
            env,
        )
    }
}

fn short_tun(topo: &Topology) -> String {
    topo.ns("cli1")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect()
}

/// Every point a direct connection meets, in order, with the seed's
/// macros expanded; a shared-library action; the monitored program's exit
/// ends the connection; then the disconnect actions.
#[test]
fn direct_connection_runs_its_action_points_in_order_with_macros() {
    let Some(srv) = DirectServer::start("dialx") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = write_profile(
        root.path(),
        &srv.cm(),
        "[Pre-Init Actions]\n0=rec.sh pre-init %ServiceName% \"%ServiceDir%\" %Profile% %Interactive%\n0&Description=Pre-init recorder\n\
[Pre-Connect Actions]\n0=rec.sh pre-connect %UserName% %UserPrefix% %UserSuffix% %Domain% %InetUserName% %ConnectionType%\n1=rec.sh pre-connect-2 %DialRasEntry% %TunnelRasEntry% %AutoRedial% %ErrorCode% %CurrentFavorite% %NotAMacro%\n\
[Pre-Dial Actions]\n0=rec.sh pre-dial\n\
[Pre-Tunnel Actions]\n0=rec.sh pre-tunnel\n\
[Connect Actions]\n0=rec.sh post-connect %ConnectionType%\n1=cmaction.so Record %ServiceName% %UserName%\n1&Description=Library recorder\n2=rec.sh dial-up-only\n2&Flags=0x0001\n3=rec.sh interactive-only\n3&Flags=0x0100\n\
[Auto Applications]\n0=rec.sh monitored %ServiceName%\n0&Description=Monitor\n\
[Disconnect Actions]\n0=rec.sh disconnect %ErrorCode%\n\
[On-Cancel Actions]\n0=rec.sh on-cancel\n\
[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
        "Domain=CORPDOM\n",
    );
    if build_action_library(&dir).is_none() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("gcc is needed to build the test's action library");
        }
        eprintln!("SKIPPED: gcc not available for the shared-library action");
        return;
    }
    let child = srv.dial(&dir, &[]);
    let (ok, text) = wait_dial(child, Duration::from_secs(60));
    assert!(ok, "{text}");
    let service_dir = dir.display().to_string();
    let cmp = dir.join("dialtest.cmp").display().to_string();
    assert_eq!(
        record(&dir),
        vec![
            format!("pre-init|Dial Test|{service_dir}|{cmp}|0|"),
            "pre-connect|alice|CORP\\|@corp.example|CORPDOM|alice|1|".to_string(),
            "pre-connect-2|Dial Test|Dial Test Tunnel|0|NULL|NULL|%NotAMacro%|".to_string(),
            "pre-tunnel|".to_string(),
            "post-connect|1|".to_string(),
            "dll|Dial Test alice|hwnd=NULL|hinst=set|reserved=0|".to_string(),
            "monitored|Dial Test|".to_string(),
            "disconnect|NULL|".to_string(),
        ]
    );
    assert!(
        text.contains("Running custom action Library recorder"),
        "{text}"
    );
    assert!(text.contains("the last monitored program exited"), "{text}");
    // One line per event: each progress line once, in words.
    for line in [
        "Connecting",
        "Connected",
        "Running custom action Library recorder",
    ] {
        let n = text.lines().filter(|l| l.trim() == line).count();
        assert_eq!(n, 1, "{line:?} {n} times: {text}");
    }
    for debug in ["Some(", "None", "{ ", "Full {", "MppeSettings"] {
        assert!(
            !text
                .lines()
                .any(|l| !l.contains(" INFO ") && l.contains(debug)),
            "{debug}: {text}"
        );
    }
    let log = std::fs::read_to_string(dir.join("dialtest.log")).unwrap();
    assert!(
        log.contains("Running custom action Pre-init recorder"),
        "{log}"
    );
    assert!(!log.contains("secret"), "no password in the log");
    let status = Command::new(RAS)
        .args(["dial", "--status"])
        .arg(&dir)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("disconnected"), "{status}");
    assert!(
        status.contains("the last monitored program exited"),
        "{status}"
    );
}

/// A profile listing two protocols (VpnStrategy=2: PPTP first, then
/// SSTP) against a server without PPTP: the first dial falls back to SSTP
/// and remembers it (`<ShortName>.protocol`, 0600); the next dial tries
/// SSTP first and never PPTP (issue 15, "Connection Manager profiles use
/// it").
#[test]
fn a_two_protocol_profile_tries_the_one_that_worked_first() {
    let Some(srv) = DirectServer::start("dialp") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = write_profile(
        root.path(),
        &format!("{}TunnelDUN=T\n", srv.cm()),
        "[Auto Applications]\n0=rec.sh monitored\n[Networking&T]\nVpnStrategy=2\n",
        "",
    );
    let log_path = dir.join("dialtest.log");
    let memory = dir.join("dialtest.protocol");
    let (ok, text) = wait_dial(srv.dial(&dir, &[]), Duration::from_secs(60));
    assert!(ok, "{text}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let pptp = log.find("tunnel to pptp://").expect("PPTP tried first");
    let sstp = log.find("tunnel to sstp://").expect("then SSTP");
    assert!(pptp < sstp, "{log}");
    assert!(!log.contains("worked last time"), "{log}");
    assert_eq!(std::fs::read_to_string(&memory).unwrap(), "sstp\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&memory).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let (ok, text) = wait_dial(srv.dial(&dir, &[]), Duration::from_secs(60));
    assert!(ok, "{text}");
    let again = std::fs::read_to_string(&log_path).unwrap()[log.len()..].to_owned();
    assert!(
        again.contains("trying sstp first: it worked last time"),
        "{again}"
    );
    assert!(again.contains("tunnel to sstp://"), "{again}");
    assert!(!again.contains("tunnel to pptp://"), "{again}");
}

/// A failing pre-connect action ends the attempt with the seed's message;
/// on-error runs with %ErrorCode%; nothing after it runs.
#[test]
fn a_failing_pre_connect_action_ends_the_attempt_and_runs_on_error() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_profile(
        root.path(),
        DIRECT,
        "[Pre-Init Actions]\n0=rec.sh pre-init\n[Pre-Connect Actions]\n0=rec.sh pre-connect\n0&Description=Check the VPN client\n\
[Connect Actions]\n0=rec.sh post-connect\n[Disconnect Actions]\n0=rec.sh disconnect\n\
[On-Error Actions]\n0=rec.sh on-error %ErrorCode% \"%LastErrorSource%\"\n",
        "",
    );
    let (ok, text) = wait_dial(
        dial(&dir, &[], &[("RC_pre_connect", "3")]),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(text.contains("Check the VPN client failed 3"), "{text}");
    assert_eq!(
        record(&dir),
        vec![
            "pre-init|",
            "pre-connect|",
            "on-error|3|custom action Check the VPN client|"
        ]
    );
}

/// Failing pre-init and post-connect actions, and a library returning a
/// negative HRESULT, end the attempt too.
#[test]
fn pre_init_post_connect_and_library_failures_end_the_attempt() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_profile(
        root.path(),
        DIRECT,
        "[Pre-Init Actions]\n0=rec.sh pre-init\n[Pre-Connect Actions]\n0=rec.sh pre-connect\n\
[Connect Actions]\n0=rec.sh post-connect\n0&Description=Register\n\
[Disconnect Actions]\n0=rec.sh disconnect\n[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
        "",
    );
    let (ok, text) = wait_dial(
        dial(&dir, &[], &[("RC_pre_init", "9")]),
        Duration::from_secs(30),
    );
    assert!(!ok && text.contains("failed 9"), "{text}");
    assert_eq!(points(&dir), vec!["pre-init", "on-error"]);

    // A direct profile without a tunnel has nothing to connect: it fails
    // before any link, and never says "Connected".
    std::fs::remove_file(dir.join("record.txt")).unwrap();
    let (ok, text) = wait_dial(dial(&dir, &[], &[]), Duration::from_secs(30));
    assert!(!ok, "{text}");
    assert!(text.contains("has no VPN server"), "{text}");
    assert!(!text.contains("Connected"), "{text}");
    assert_eq!(
        record(&dir),
        vec!["pre-init|", "pre-connect|", "on-error|623|"]
    );

    // Post-connect needs a connection that exists: SSTP to our server.
    if let Some(srv) = DirectServer::start("dialr") {
        let root = tempfile::tempdir().unwrap();
        let dir = write_profile(
            root.path(),
            &srv.cm(),
            "[Pre-Init Actions]\n0=rec.sh pre-init\n[Pre-Connect Actions]\n0=rec.sh pre-connect\n\
[Connect Actions]\n0=rec.sh post-connect\n0&Description=Register\n\
[Disconnect Actions]\n0=rec.sh disconnect\n[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
            "",
        );
        let (ok, text) = wait_dial(
            srv.dial(&dir, &[("RC_post_connect", "5")]),
            Duration::from_secs(60),
        );
        assert!(!ok && text.contains("Register failed 5"), "{text}");
        assert_eq!(
            record(&dir),
            vec!["pre-init|", "pre-connect|", "post-connect|", "on-error|5|"]
        );
        // Said once: the failure is the command's error, not also a progress line.
        assert_eq!(text.matches("Register failed 5").count(), 1, "{text}");
    }

    if build_action_library(&dir).is_none() {
        eprintln!("SKIPPED (library part): gcc not available");
        return;
    }
    let root2 = tempfile::tempdir().unwrap();
    let dir2 = write_profile(
        root2.path(),
        DIRECT,
        "[Pre-Connect Actions]\n0=cmaction.so Fail x\n0&Description=Library check\n\
[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
        "",
    );
    std::fs::copy(dir.join("cmaction.so"), dir2.join("cmaction.so")).unwrap();
    let (ok, text) = wait_dial(dial(&dir2, &[], &[]), Duration::from_secs(30));
    assert!(!ok);
    // E_FAIL, 0x80004005, as a signed HRESULT.
    assert!(text.contains("Library check failed -2147467259"), "{text}");
    assert_eq!(record(&dir2), vec!["on-error|-2147467259|"]);
}

/// A VPN server that refuses: pre-tunnel runs once per attempt with
/// %AutoRedial% 0 then 1 (RedialCount=1), then on-error with 800.
#[test]
fn redial_then_on_error_when_the_vpn_server_refuses() {
    let root = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = write_profile(
        root.path(),
        &format!("Dialup=0\nDirect=1\nConnectionType=1\nTunnel=1\nTunnelAddress=127.0.0.1:{port}\nTunnelDUN=T\nRedialCount=1\nRedialDelay=0\n[Networking&T]\nVpnStrategy=5\n"),
        "[Pre-Tunnel Actions]\n0=rec.sh pre-tunnel %TunnelServerAddress% %AutoRedial%\n\
[Connect Actions]\n0=rec.sh post-connect\n[On-Cancel Actions]\n0=rec.sh on-cancel\n\
[On-Error Actions]\n0=rec.sh on-error %ErrorCode% %LastErrorSource%\n",
        "",
    );
    let fp = "00".repeat(32);
    let (ok, text) = wait_dial(
        dial(&dir, &["--fingerprint", &fp], &[]),
        Duration::from_secs(60),
    );
    assert!(!ok);
    assert!(text.contains("Connecting"), "{text}");
    // The server was never reached: nothing was verified.
    assert!(!text.contains("Verifying"), "{text}");
    assert_eq!(
        record(&dir),
        vec![
            "pre-tunnel|127.0.0.1|0|".to_string(),
            "pre-tunnel|127.0.0.1|1|".to_string(),
            "on-error|800|tunnel|".to_string(),
        ]
    );
}

/// Ctrl-C while the tunnel is being set up (a server that accepts TCP and
/// never answers TLS): on-cancel runs, not on-error or disconnect.
#[test]
fn ctrl_c_while_connecting_runs_on_cancel() {
    let root = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = write_profile(
        root.path(),
        &format!("Dialup=0\nDirect=1\nConnectionType=1\nTunnel=1\nTunnelAddress=127.0.0.1:{port}\nTunnelDUN=T\nRedialCount=0\n[Networking&T]\nVpnStrategy=5\n"),
        "[Pre-Tunnel Actions]\n0=rec.sh pre-tunnel\n[Connect Actions]\n0=rec.sh post-connect\n\
[Disconnect Actions]\n0=rec.sh disconnect\n[On-Cancel Actions]\n0=rec.sh on-cancel %ErrorCode%\n\
[On-Error Actions]\n0=rec.sh on-error\n",
        "",
    );
    let fp = "00".repeat(32);
    let child = dial(&dir, &["--fingerprint", &fp], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !points(&dir).contains(&"pre-tunnel".to_string()) {
        assert!(Instant::now() < deadline, "pre-tunnel never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new(RAS)
        .args(["dial", "--status"])
        .arg(&dir)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("connecting"), "{status}");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let (ok, text) = wait_dial(child, Duration::from_secs(20));
    assert!(ok, "a cancel is not an error: {text}");
    assert!(text.contains("Cancelled"), "{text}");
    // TLS never came up: still "Connecting", not "Verifying".
    assert!(!text.contains("Verifying"), "{text}");
    assert_eq!(record(&dir), vec!["pre-tunnel|", "on-cancel|631|"]);
    drop(silent);
}

/// `ras dial` in the client namespace, for the root tests.
fn dial_in_ns(topo: &Topology, profile: &Path, extra: &[&str], tun: &str) -> Client {
    let pw = profile.join("pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    let mut cmd = topo.command("cli1", RAS);
    cmd.arg("dial")
        .arg(profile)
        .arg("--password-file")
        .arg(&pw)
        .args(["--unattended", "--no-dns", "--no-ipv6"])
        .args(extra)
        .stdin(Stdio::null());
    spawn_client(cmd, "cli1", tun)
}

fn dial_status(profile: &Path) -> String {
    let out = Command::new(RAS)
        .args(["dial", "--status"])
        .arg(profile)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A dial-up profile: the access number comes from its phone book, the
/// device from the .cmp; pre-dial sees %PopName%; ping through the line;
/// `ras dial --status` and `--disconnect`; disconnect actions run.
#[test]
fn ras_dial_dial_up_profile_over_a_pty_to_our_server() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(line) = PtyPair::start(dir.path()) else {
        return;
    };
    let topo = Topology::create("dialp").expect("namespaces");
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    write_dialin_config(&config, &state, "dialp0", &[], &line.server_end, NUMBER);
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);

    let profile = write_profile(
        dir.path(),
        "Dialup=1\nDirect=0\nConnectionType=0\nTunnel=0\nDUN=Dial Test ISP\n\n[ISP]\nPBFile=dialtest.pbk\n",
        "[Pre-Dial Actions]\n0=rec.sh pre-dial \"%PopName%\" \"%DialRasEntry%\" %ConnectionType% %AutoRedial%\n\
[Pre-Tunnel Actions]\n0=rec.sh pre-tunnel\n\
[Connect Actions]\n0=rec.sh post-connect %ClientIPAddress% %ServerIPAddress%\n\
[Disconnect Actions]\n0=rec.sh disconnect %ErrorCode%\n[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
        &format!("Device={}\n", line.client_end.display()),
    );
    // MS-CPSP §2.1: index, country, region, name, area code, access number,
    // min and max speed, reserved, flags, DUN name.
    std::fs::write(
        profile.join("dialtest.pbk"),
        "1,1,0,Redmond Test,,555-1234,9600,56000,0,0,\n",
    )
    .unwrap();
    let mut c = dial_in_ns(
        &topo,
        &profile,
        &["--route", "172.31.0.0/24", "--dial-tun", "dialp-c1"],
        "dialp-c1",
    );
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(30)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    server.expect("dial-in call", Duration::from_secs(5));
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "ping through the dial-up line"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !points(&profile).contains(&"post-connect".to_string()) {
        assert!(Instant::now() < deadline, "post-connect never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = dial_status(&profile);
    assert!(status.contains("connected since"), "{status}");
    assert!(
        status.contains("10.0.10.21 (server 10.0.10.20)"),
        "{status}"
    );
    let out = Command::new(RAS)
        .args(["dial", "--disconnect"])
        .arg(&profile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = finish(c, Duration::from_secs(20));
    assert!(ok, "{text}");
    // The three phases, then the end, in this order.
    let mut at = 0;
    for phase in [
        "Connecting",
        "Verifying user name and password",
        "Registering your computer on the network",
        "Connected",
        "Disconnected",
    ] {
        let found = text[at..].find(phase);
        assert!(found.is_some(), "{phase} missing or out of order: {text}");
        at += found.unwrap_or(0) + phase.len();
    }
    assert_eq!(
        record(&profile),
        vec![
            "pre-dial|Redmond Test|Dial Test ISP|0|0|",
            "post-connect|10.0.10.21|10.0.10.20|",
            "disconnect|NULL|",
        ]
    );
    server.expect("dial-in session ended", Duration::from_secs(10));
    // The logon values are kept in the .cmp for the next run.
    let cmp = std::fs::read_to_string(profile.join("dialtest.cmp")).unwrap();
    assert!(
        cmp.contains("UserName=alice") && cmp.contains("ConnectionType=0"),
        "{cmp}"
    );
    drop(server);
}

/// Double-dial: the dial-up line first, then SSTP to the server through
/// it, pre-tunnel with %TunnelServerAddress%; ping through the tunnel;
/// the server hanging up the line drops the connection and the
/// disconnect actions still run.
#[test]
fn ras_dial_double_dial_then_sstp_through_the_line() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(line) = PtyPair::start(dir.path()) else {
        return;
    };
    let topo = Topology::create("diald").expect("namespaces");
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    // SSTP only on the server's address towards the intranet: reachable
    // from the client through the dial-up link, nowhere else.
    write_dialin_config(
        &config,
        &state,
        "diald0",
        &["172.31.0.1:443"],
        &line.server_end,
        NUMBER,
    );
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let mut server = Server::start(&topo, &config);
    let fingerprint = server.fingerprint.clone();

    let profile = write_profile(
        dir.path(),
        "Dialup=1\nDirect=0\nConnectionType=2\nTunnel=1\nTunnelAddress=172.31.0.1\nTunnelDUN=T\nRedialCount=0\n\n[Networking&T]\nVpnStrategy=5\n",
        "[Pre-Dial Actions]\n0=rec.sh pre-dial %ConnectionType%\n\
[Pre-Tunnel Actions]\n0=rec.sh pre-tunnel %TunnelServerAddress%\n\
[Connect Actions]\n0=rec.sh post-connect %ClientIPAddress% %ServerIPAddress%\n\
[Disconnect Actions]\n0=rec.sh disconnect %ErrorCode%\n[On-Error Actions]\n0=rec.sh on-error %ErrorCode%\n",
        &format!("Device={}\nPhoneNumber0={NUMBER}\n", line.client_end.display()),
    );
    let mut c = dial_in_ns(
        &topo,
        &profile,
        &[
            "--fingerprint",
            &fingerprint,
            "--route",
            "172.31.0.2/32",
            "--dial-tun",
            "diald-d",
            "--vpn-tun",
            "diald-v",
        ],
        "diald-v",
    );
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(40)),
        Some(Ipv4Addr::new(10, 0, 10, 22)),
        "the tunnel's address (the line has .21)"
    );
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "ping through SSTP through the line"
    );
    let (sent, received, secs) = transfer(&topo, "cli1", 1024 * 1024);
    assert_eq!(sent, received);
    eprintln!(
        "1 MB through SSTP over the pty line in {secs:.2} s ({:.1} Mbit/s)",
        8.0 / secs
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !points(&profile).contains(&"post-connect".to_string()) {
        assert!(Instant::now() < deadline, "post-connect never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server goes away: the line and the tunnel drop.
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let _ = server.child.wait();
    let (ok, text) = finish(c, Duration::from_secs(60));
    assert!(ok, "{text}");
    assert!(text.contains("the connection dropped"), "{text}");
    assert_eq!(
        record(&profile),
        vec![
            "pre-dial|2|",
            "pre-tunnel|172.31.0.1|",
            "post-connect|10.0.10.22|10.0.10.20|",
            "disconnect|619|",
        ]
    );
    drop(server);
}

/// The built-in phone-book update runs first after connecting: it asks
/// the profile's PBURL for the profile's phone book and version (the
/// seed's query); a service that fails does not end the connection.
#[test]
fn the_phone_book_update_asks_the_service_first_after_connecting() {
    use std::io::Write;
    let Some(srv) = DirectServer::start("dialb") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // The service answers in the server namespace, reachable from the client's.
    let service = srv
        .topo
        .in_ns("srv", || std::net::TcpListener::bind((SERVER_FOR_CLI1, 0)))
        .unwrap()
        .unwrap();
    let port = service.local_addr().unwrap().port();
    let dir = write_profile(
        root.path(),
        &format!(
            "{}Version=7\n\n[ISP]\nPBFile=dialtest.pbk\nPBURL=http://{SERVER_FOR_CLI1}:{port}/pbserver/pbserver.dll\n",
            srv.cm()
        ),
        "[Connect Actions]\n0=rec.sh post-connect\n[Auto Applications]\n0=rec.sh monitored\n\
[Disconnect Actions]\n0=rec.sh disconnect\n",
        "",
    );
    std::fs::write(
        dir.join("dialtest.pbk"),
        "1,1,0,Test,,5551234,9600,56000,0,0,\n",
    )
    .unwrap();
    let answer = std::thread::spawn(move || {
        let (mut s, _) = service.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        String::from_utf8_lossy(&got).into_owned()
    });
    let (ok, text) = wait_dial(srv.dial(&dir, &[]), Duration::from_secs(60));
    assert!(ok, "{text}");
    let request = answer.join().unwrap();
    let first = request.lines().next().unwrap_or("");
    assert!(
        first.starts_with("GET /pbserver/pbserver.dll?") && first.contains("&pbver=7&pb=dialtest"),
        "{request}"
    );
    assert!(text.contains("phone-book update failed"), "{text}");
    assert_eq!(
        points(&dir),
        vec!["post-connect", "monitored", "disconnect"]
    );
}

/// A Connection Manager profile with an L2TP entry dials it: `ras profile
/// build --protocol l2tp --psk-file` writes VpnStrategy=3 and the key, and
/// `ras dial` brings up L2TP/IPsec to `ras server` (its `[ipsec]` has the
/// same key) in network namespaces; the intranet host answers ping through
/// the tunnel and SIGINT disconnects cleanly.
#[test]
fn ras_dial_l2tp_ipsec_profile_built_by_ras_profile_build() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topo = Topology::create("diall2").expect("namespaces");
    let psk = dir.path().join("ipsec-psk");
    std::fs::write(&psk, "cm-l2tp-e2e-key\n").unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nserver_name = \"ras-dial-l2tp\"\n\n[sstp]\nlisten = []\n\n[pptp]\nlisten = []\n\n[ipsec]\nlisten = \"{SERVER_FOR_CLI1}\"\npsk_file = {psk:?}\n\n[tun]\nname = \"diall20\"\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);

    let answers = dir.path().join("answers.toml");
    std::fs::write(&answers, "[user]\nuser_name = \"alice\"\n").unwrap();
    let out = dir.path().join("out");
    let built = Command::new(RAS)
        .args(["profile", "build", "--unsigned", "--answers"])
        .arg(&answers)
        .arg("--out")
        .arg(&out)
        .args([
            "--service-name",
            "L2TP Test",
            "--short-name",
            "l2tptest",
            "--vpn-server",
            SERVER_FOR_CLI1,
            "--protocol",
            "l2tp",
            "--psk-file",
        ])
        .arg(&psk)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "ras profile build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let profile = out.join("l2tptest");
    let cms = std::fs::read_to_string(profile.join("l2tptest.cms")).unwrap();
    assert!(cms.contains("VpnStrategy=3"), "{cms}");
    assert!(cms.contains("PresharedKey=cm-l2tp-e2e-key"), "{cms}");

    let mut c = dial_in_ns(
        &topo,
        &profile,
        &[
            "--route",
            &format!("{LAN_HOST}/32"),
            "--vpn-tun",
            "diall2-v",
        ],
        "diall2-v",
    );
    let address = wait_address(&topo, &mut c, Duration::from_secs(40));
    assert!(address.is_some(), "the L2TP/IPsec link came up");
    server.expect("PPP link up", Duration::from_secs(5));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through L2TP/IPsec");
    interrupt(&c);
    let (ok, text) = finish(c, Duration::from_secs(20));
    assert!(ok, "clean disconnect exits 0: {text}");
    assert!(text.contains("L2TP call established (IPsec ESP"), "{text}");
    assert!(text.contains("Connected"), "{text}");
    server.expect("L2TP session of", Duration::from_secs(10));
}
