//! `ras server` as a process: what a second server that cannot start
//! leaves behind (nothing), a server whose standard output and error went
//! away (it keeps serving), and the log line of a refused login. In
//! network namespaces with real TUN devices; needs root, skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

fn write_config(path: &Path, state: &Path, listen: &str, tun: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-proc\"\n\n[sstp]\nlisten = [\"{listen}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"{tun}\"\n{extra}"
        ),
    )
    .unwrap();
}

/// Runs a second `ras server` to its end; returns (success, output).
fn run_to_end(topo: &Topology, config: &Path) -> (bool, String) {
    let out = topo
        .command("srv", RAS)
        .args(["server", "--config"])
        .arg(config)
        .env("RAS_ADMIN_SOCKET", admin_socket_for(config))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("[second server] {text}");
    (out.status.success(), text)
}

/// Server A runs; server B, same pool, fails to start (its listen address
/// is A's, or its routes are A's). A's routes, addresses and devices are
/// as they were, and A's client still passes traffic.
#[test]
fn a_second_server_that_cannot_start_leaves_the_first_alone() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspx1").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config_a = dir.path().join("a.toml");
    write_config(
        &config_a,
        &dir.path().join("a"),
        SERVER_FOR_CLI1,
        "rasxa0",
        "",
    );
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config_a, "alice", &pw, &[]);
    let server = Server::start(&topo, &config_a);
    let routes_before = ip_in(&topo, "srv", &["route", "show"]);
    let routes6_before = ip_in(&topo, "srv", &["-6", "route", "show"]);
    let addrs_before = ip_in(&topo, "srv", &["-o", "addr", "show", "dev", "rasxa0"]);
    assert!(routes_before.contains("dev rasxa0"), "{routes_before}");

    // Same listen address: refused at bind, before any route is touched.
    let config_b = dir.path().join("b.toml");
    write_config(
        &config_b,
        &dir.path().join("b"),
        SERVER_FOR_CLI1,
        "rasxb0",
        "",
    );
    let (ok, text) = run_to_end(&topo, &config_b);
    assert!(!ok, "the second server must fail: {text}");
    assert!(
        text.contains(&format!("cannot listen on {SERVER_FOR_CLI1}:443"))
            && text.contains("Address already in use"),
        "{text}"
    );
    // Another listen address, same pool: refused when it finds A's routes
    // (never takes them over).
    let config_c = dir.path().join("c.toml");
    write_config(
        &config_c,
        &dir.path().join("c"),
        SERVER_FOR_CLI2,
        "rasxc0",
        "",
    );
    let (ok, text) = run_to_end(&topo, &config_c);
    assert!(!ok, "the third server must fail: {text}");
    assert!(text.contains("already exists"), "{text}");
    // Another listen address, A's admin socket (docs/ADMIN.md): refused
    // before any route or device is touched, and A's socket stays.
    let out = topo
        .command("srv", RAS)
        .args(["server", "--config"])
        .arg(&config_c)
        .env("RAS_ADMIN_SOCKET", admin_socket_for(&config_a))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the fourth server must fail: {text}");
    assert!(
        text.contains("another ras server answers on the admin socket"),
        "{text}"
    );
    assert!(admin_socket_for(&config_a).exists());

    assert_eq!(ip_in(&topo, "srv", &["route", "show"]), routes_before);
    assert_eq!(
        ip_in(&topo, "srv", &["-6", "route", "show"]),
        routes6_before
    );
    assert_eq!(
        ip_in(&topo, "srv", &["-o", "addr", "show", "dev", "rasxa0"]),
        addrs_before
    );
    let links = ip_in(&topo, "srv", &["-o", "link", "show"]);
    assert!(
        !links.contains("rasxb0") && !links.contains("rasxc0"),
        "{links}"
    );

    // A still serves: its client gets an address and reaches the LAN.
    let mut c = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "rasx-c1",
    );
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert!(ping(&topo, "cli1", LAN_HOST), "A's client passes traffic");
}

/// Standard output and error are a pipe nobody reads any more: the
/// server's banner and log lines fail with EPIPE, and it keeps serving.
#[test]
fn a_server_whose_output_went_away_keeps_serving() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspx2").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ras.toml");
    write_config(
        &config,
        &dir.path().join("state"),
        SERVER_FOR_CLI1,
        "rasxo0",
        "",
    );
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    // A first run creates the certificate and tells its fingerprint.
    let fp = {
        let first = Server::start(&topo, &config);
        first.fingerprint.clone()
    };

    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = topo
        .command("srv", RAS)
        .args(["server", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .env("RAS_ADMIN_SOCKET", admin_socket_for(&config))
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(&mut child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the server exited ({status}) when its output went away");
        }
        let listening = topo
            .in_ns("cli1", || {
                TcpStream::connect((SERVER_FOR_CLI1, 443)).is_ok()
            })
            .unwrap();
        if listening {
            break;
        }
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A whole session of log lines, every one of them lost.
    let mut c = connect_sstp(&topo, "cli1", SERVER_FOR_CLI1, "alice", &pw, &fp, "rasx-o1");
    assert_eq!(
        wait_address(&topo, &mut c, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert!(ping(&topo, "cli1", LAN_HOST));
    interrupt(&c);
    let _ = finish(c, Duration::from_secs(15));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    // And serves the next client.
    let mut c = connect_sstp(&topo, "cli1", SERVER_FOR_CLI1, "alice", &pw, &fp, "rasx-o2");
    assert!(wait_address(&topo, &mut c, Duration::from_secs(20)).is_some());
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
}

/// A refused login is one log line naming the user (quoted: a name with a
/// newline stays on one line), the method in words and the reason; the
/// client hears the same for an unknown user as for a wrong password.
#[test]
fn a_refused_login_is_logged_with_user_method_and_reason() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspx3").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    let wrong = password_file(dir.path(), "wrong", "not the password");
    // MS-CHAPv2 alone (its refusal allows a retry and ends no exchange),
    // then the default, EAP-MSCHAPv2 first.
    for (round, (methods, words)) in [
        ("[auth]\nmethods = [\"mschapv2\"]\n", "MS-CHAPv2"),
        ("", "EAP-MSCHAPv2"),
    ]
    .into_iter()
    .enumerate()
    {
        let state = dir.path().join(format!("state{round}"));
        let config = dir.path().join("ras.toml");
        write_config(&config, &state, SERVER_FOR_CLI1, "rasxr0", methods);
        add_user(&config, "alice", &pw, &[]);
        let server = Server::start(&topo, &config);
        let fp = server.fingerprint.clone();

        let c = connect_sstp(
            &topo,
            "cli1",
            SERVER_FOR_CLI1,
            "alice",
            &wrong,
            &fp,
            "rasx-r1",
        );
        let (ok, wrong_text) = finish(c, Duration::from_secs(40));
        assert!(!ok);
        let line = server.expect("login refused", Duration::from_secs(10));
        assert!(
            line.contains(&format!(
                "login refused: user \"alice\", {words}: wrong password"
            )),
            "{line}"
        );

        let c = connect_sstp(
            &topo,
            "cli1",
            SERVER_FOR_CLI1,
            "mallory\nINFO forged: login accepted",
            &wrong,
            &fp,
            "rasx-r2",
        );
        let (ok, unknown_text) = finish(c, Duration::from_secs(40));
        assert!(!ok);
        let line = server.expect("login refused", Duration::from_secs(10));
        assert!(
            line.contains(&format!(
                "login refused: user \"mallory\\nINFO forged: login accepted\", {words}: unknown user"
            )),
            "{line}"
        );
        // The wire says the same for both: error 691.
        assert!(wrong_text.contains("691") && unknown_text.contains("691"));
        drop(server);
        std::fs::remove_file(&config).unwrap();
    }
}
