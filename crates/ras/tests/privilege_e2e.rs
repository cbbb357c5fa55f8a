//! Least privilege end to end: `ras server` started as root with
//! `user = "nobody"` drops to nobody with only CAP_NET_ADMIN and
//! CAP_NET_RAW on every thread, gives it the state directory, and still
//! serves an SSTP client (policy, address, the data path through the TUN
//! device). Needs root; skips otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use server::proc_status::{all_threads, CAP_NET_ADMIN, CAP_NET_RAW};

mod support;
use support::*;

const NOBODY: u32 = 65534;
const NET: u64 = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);
/// The policy's address for alice (not the pool's first free one).
const STATIC: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 25);

/// Every thread of `pid` runs as nobody with exactly the two capabilities.
fn assert_dropped(pid: u32) {
    let threads = all_threads(pid).unwrap();
    assert!(threads.len() > 1, "a multi-thread server: {threads:?}");
    for (tid, c) in &threads {
        assert_eq!(c.uid, [NOBODY; 4], "thread {tid} uid");
        assert_eq!(c.gid, [NOBODY; 4], "thread {tid} gid");
        assert!(!c.groups.contains(&0), "thread {tid} keeps group root");
        assert_eq!(c.cap_effective, NET, "thread {tid} CapEff");
        assert_eq!(c.cap_permitted, NET, "thread {tid} CapPrm");
        assert_eq!(c.cap_bounding, NET, "thread {tid} CapBnd");
        // Inheritable and ambient carry the two into `ip route` only.
        assert_eq!(c.cap_inheritable, NET, "thread {tid} CapInh");
        assert_eq!(c.cap_ambient, NET, "thread {tid} CapAmb");
        assert!(c.no_new_privs, "thread {tid} NoNewPrivs");
    }
}

fn assert_owned_by_nobody(path: &Path) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert_eq!(meta.uid(), NOBODY, "{} owner", path.display());
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            assert_owned_by_nobody(&entry.unwrap().path());
        }
    }
}

#[test]
fn server_drops_to_nobody_and_still_serves_sstp() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspriv").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    // nobody must reach its state directory through the test's directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-priv\"\nuser = \"nobody\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-priv0\"\n\n[[policy]]\nname = \"Fixed address\"\naccess = \"grant\"\n[policy.conditions]\nusers = [\"alice\"]\n[policy.constraints]\nstatic_address = \"{STATIC}\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &["staff"]);
    let server = Server::start(&topo, &config);
    server.expect_from_start(
        "running as user nobody (uid 65534) with CAP_NET_ADMIN, CAP_NET_RAW",
        Duration::from_secs(10),
    );
    let pid = server.child.id();
    assert_dropped(pid);
    assert_owned_by_nobody(&state);

    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "ras-pc1",
    );
    assert_eq!(
        wait_address(&topo, &mut client, Duration::from_secs(20)),
        Some(STATIC)
    );
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    // Threads started since (blocking pool) inherited the same.
    assert_dropped(pid);
    interrupt(&client);
    let (ended, output) = finish(client, Duration::from_secs(10));
    assert!(ended, "client output: {output}");
    let lines = server.lines_for(Duration::from_secs(2));
    assert!(
        !lines.iter().any(|l| l.contains("route:")),
        "route errors after the drop: {lines:?}"
    );
    // The user store and accounting still write: ras.db is nobody's.
    assert_owned_by_nobody(&state);
}

/// As systemd starts it (dist/ras.service: `User=` with
/// `AmbientCapabilities=`): already the user, the server only lets go of
/// CAP_NET_BIND_SERVICE once its listeners are bound, on every thread.
#[test]
fn server_started_as_the_user_keeps_only_the_two_capabilities() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspru").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    // The admin socket goes next to the configuration (support), in what
    // systemd's RuntimeDirectory= would be: a directory of the user's.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let config = run.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-priv\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-pru0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    // What systemd's StateDirectory= and RuntimeDirectory= provide.
    for d in [&state, &run] {
        server::privilege::give_tree(d, NOBODY, NOBODY).unwrap();
    }
    let mut command = topo.command("srv", "setpriv");
    let caps = "+net_admin,+net_raw,+net_bind_service";
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .args(["--", RAS]);
    let mut server = Server::start_with(command, &config, "info");
    server.expect_from_start(
        "running as user nobody (uid 65534) with CAP_NET_ADMIN, CAP_NET_RAW",
        Duration::from_secs(10),
    );
    let pid = server.child.id();
    for (tid, c) in all_threads(pid).unwrap() {
        assert_eq!(c.uid, [NOBODY; 4], "thread {tid} uid");
        for (set, value) in [
            ("CapEff", c.cap_effective),
            ("CapPrm", c.cap_permitted),
            ("CapInh", c.cap_inheritable),
            ("CapAmb", c.cap_ambient),
        ] {
            assert_eq!(value, NET, "thread {tid} {set}");
        }
        assert!(c.no_new_privs, "thread {tid} NoNewPrivs");
    }
    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "ras-pu1",
    );
    assert!(wait_address(&topo, &mut client, Duration::from_secs(20)).is_some());
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    interrupt(&client);
    let (ended, output) = finish(client, Duration::from_secs(10));
    assert!(ended, "client output: {output}");
    let _ = server.child.kill();
}
