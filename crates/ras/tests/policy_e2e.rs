//! Remote access policies end to end: `ras server` with `[[policy]]`
//! entries refuses or admits our SSTP client by day and time, in network
//! namespaces. Needs root; skips otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

mod support;
use support::*;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Today and tomorrow (UTC), and the five other days.
fn days_now() -> (String, String) {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday (index 3, Monday first).
    let today = ((days + 3) % 7) as usize;
    let near = [today, (today + 1) % 7];
    let others: Vec<&str> = (0..7)
        .filter(|d| !near.contains(d))
        .map(|d| DAYS[d])
        .collect();
    (
        format!("{},{}", DAYS[near[0]], DAYS[near[1]]),
        others.join(","),
    )
}

fn config(dir: &Path, name: &str, deny_days: &str) -> std::path::PathBuf {
    let state = dir.join("state");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-policy\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-pol0\"\n\n[policies]\ntime_zone = \"UTC\"\n\n[[policy]]\nname = \"Closed days\"\naccess = \"deny\"\n[policy.conditions]\nday_and_time = [\"{deny_days}\"]\n\n[[policy]]\nname = \"Staff\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"staff\"]\n[policy.constraints]\nauth_methods = [\"eap-mschapv2\", \"mschapv2\"]\nsession_timeout_secs = 3600\n"
        ),
    )
    .unwrap();
    path
}

fn connect(topo: &Topology, user: &str, pw: &Path, fp: &str) -> Client {
    connect_to(
        topo,
        "cli1",
        &format!("sstp://{SERVER_FOR_CLI1}"),
        user,
        pw,
        &["--fingerprint", fp, "--no-dns", "--no-ipv6"],
        "ras-pc1",
    )
}

#[test]
fn policies_refuse_by_day_and_time_and_by_group() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("raspol").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let (near, others) = days_now();
    let closed = config(dir.path(), "closed", &near);
    let open = config(dir.path(), "open", &others);
    let alice_pw = password_file(dir.path(), "alice", "alice-password");
    let bob_pw = password_file(dir.path(), "bob", "bob-password");
    add_user(&closed, "alice", &alice_pw, &["staff"]);
    add_user(&closed, "bob", &bob_pw, &[]);

    // Today is a closed day: the deny policy refuses with error 649 and
    // the server's log names the policy and the window.
    let server = Server::start(&topo, &closed);
    let c = connect(&topo, "alice", &alice_pw, &server.fingerprint);
    let (ok, text) = finish(c, Duration::from_secs(40));
    assert!(!ok, "refused on a closed day: {text}");
    assert!(text.contains("649"), "the client is told 649: {text}");
    let line = server.expect("refused", Duration::from_secs(5));
    assert!(line.contains("Closed days"), "{line}");
    drop(server);

    // Not a closed day: alice (staff) gets in; bob (no group) matches no
    // policy and is refused.
    let server = Server::start(&topo, &open);
    let mut c = connect(&topo, "alice", &alice_pw, &server.fingerprint);
    assert!(
        wait_address(&topo, &mut c, Duration::from_secs(30)).is_some(),
        "alice is admitted by \"Staff\""
    );
    assert!(ping(&topo, "cli1", LAN_HOST));
    server.expect("\"Staff\"", Duration::from_secs(5));
    interrupt(&c);
    assert!(finish(c, Duration::from_secs(15)).0);
    let c = connect(&topo, "bob", &bob_pw, &server.fingerprint);
    let (ok, text) = finish(c, Duration::from_secs(40));
    assert!(!ok, "bob matches no policy: {text}");
    let line = server.expect("no policy matched", Duration::from_secs(5));
    assert!(line.contains("bob") || line.contains("refused"), "{line}");
}
