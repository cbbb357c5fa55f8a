//! PPTP end to end: `ras server` (TCP 1723 + one raw GRE socket) and
//! `ras connect pptp://`, in network namespaces with real TUN devices:
//! client ns ⇄ server ns ⇄ an "intranet" ns with a host. Needs root; skips
//! with a message otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

fn connect(
    topo: &Topology,
    role: &'static str,
    server: &str,
    user: &str,
    pw: &Path,
    tun: &str,
) -> Client {
    let child = topo
        .command(role, RAS)
        .args([
            "connect",
            &format!("pptp://{server}"),
            "--user",
            user,
            "--password-file",
        ])
        .arg(pw)
        .args(["--no-dns", "--tun-name", tun, "--route", "172.31.0.0/24"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ras connect");
    Client {
        child,
        tun: tun.to_owned(),
        role,
    }
}

fn write_config(path: &Path, state: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-pptp-e2e\"\n\n[sstp]\nlisten = []\n\n[pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\", \"{SERVER_FOR_CLI2}:1723\"]\nports = 1\n\n[tun]\nname = \"rasp2e0\"\n{extra}"
        ),
    )
    .unwrap();
}

#[test]
fn pptp_server_and_client_end_to_end() {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    let topo = Topology::create("rasp2e").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    write_config(&config, &state, "");
    let alice_pw = password_file(dir.path(), "alice", "correct horse battery");
    let status = Command::new(RAS)
        .args(["user", "--config"])
        .arg(&config)
        .args(["add", "alice", "--password-file"])
        .arg(&alice_pw)
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start(&topo, &config);

    // First client: the first client address, traffic to the intranet
    // through GRE with MPPE-128.
    let mut c1 = connect(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        "rasp-c1",
    );
    assert_eq!(
        wait_address(&topo, &mut c1, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    server.expect("PPP link up", Duration::from_secs(5));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let (sent, received, secs) = transfer(&topo, "cli1", 10 * 1024 * 1024);
    assert_eq!(sent, received, "10 MB arrived intact");
    eprintln!(
        "10 MB through PPTP in {secs:.2} s ({:.0} Mbit/s)",
        80.0 / secs
    );

    // Over the port limit (1), from the other side: refused with a reason.
    let c2 = connect(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        "rasp-c2",
    );
    let (ok, text) = finish(c2, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.contains("NoResource"), "{text}");
    server.expect("PPTP ports are in use", Duration::from_secs(5));
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "the first client keeps working"
    );

    // The first client disconnects cleanly; its address is freed.
    interrupt(&c1);
    let (ok, _) = finish(c1, Duration::from_secs(15));
    assert!(ok, "clean disconnect exits 0");
    server.expect("address freed", Duration::from_secs(10));

    // Wrong password: MS-CHAPv2 error 691.
    let wrong = password_file(dir.path(), "wrong", "not the password");
    let bad = connect(&topo, "cli2", SERVER_FOR_CLI2, "alice", &wrong, "rasp-c3");
    // The server allows a retry (R=1, as RRAS does); our client does not
    // retry and gives up when its authentication timer runs out.
    let (ok, text) = finish(bad, Duration::from_secs(60));
    assert!(!ok);
    assert!(text.contains("691"), "{text}");

    // The port and the address are free again: the next client gets both.
    let mut c4 = connect(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        "rasp-c4",
    );
    assert_eq!(
        wait_address(&topo, &mut c4, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert!(ping(&topo, "cli2", LAN_HOST));

    // Graceful stop: the client is disconnected, every address freed.
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    server.expect(
        "stopped; 0 address(es) still in use",
        Duration::from_secs(20),
    );
    let _ = finish(c4, Duration::from_secs(20));
    drop(server);

    // A server without MPPE: our client requires it and refuses the link.
    let plain = dir.path().join("plain.toml");
    write_config(&plain, &state, "\n[encryption]\nmppe = \"none\"\n");
    let server = Server::start(&topo, &plain);
    let c5 = connect(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        "rasp-c5",
    );
    let (ok, text) = finish(c5, Duration::from_secs(30));
    assert!(!ok);
    assert!(text.to_lowercase().contains("encryption"), "{text}");
    drop(server);
    eprintln!(
        "PPTP end to end in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
