//! `ras connect l2tp:// --no-ipsec` against our own `ras server`
//! (`[l2tp] allow_plain = true`) in network namespaces: the link comes up,
//! the intranet host answers ping through the tunnel, 1 MB arrives
//! intact, SIGINT disconnects cleanly and the server logs the end of the
//! session. A weaker proof than the xl2tpd interop test, but it catches
//! regressions on either side.

use std::time::Duration;

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

mod support;
use support::*;

#[test]
fn plain_l2tp_client_against_ras_server() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rasl2c").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-l2tp-e2e\"\n\n[sstp]\nlisten = []\n\n[pptp]\nlisten = []\n\n[l2tp]\nallow_plain = true\nlisten = [\"{SERVER_FOR_CLI1}:1701\"]\n\n[tun]\nname = \"rasl2c0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);

    let mut client = connect_to(
        &topo,
        "cli1",
        &format!("l2tp://{SERVER_FOR_CLI1}"),
        "alice",
        &pw,
        &["--no-ipsec", "--no-dns"],
        "rasl2-c1",
    );
    let address = wait_address(&topo, &mut client, Duration::from_secs(30));
    assert!(address.is_some(), "the L2TP link came up");
    server.expect("PPP link up", Duration::from_secs(5));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let (sent, received, secs) = transfer(&topo, "cli1", 1024 * 1024);
    assert_eq!(sent, received, "1 MB arrived intact");
    eprintln!("1 MB through plain L2TP in {secs:.2} s");

    interrupt(&client);
    let (ok, text) = finish(client, Duration::from_secs(15));
    assert!(ok, "clean disconnect exits 0: {text}");
    assert!(text.contains("warning: plain L2TP"), "{text}");
    server.expect("L2TP session of", Duration::from_secs(10));
}
