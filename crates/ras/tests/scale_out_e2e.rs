//! Scale-out (issue 17, ../shared/docs/SYSTEM.md §6): two `ras server`
//! instances share one FreeRADIUS and one dnsmasq and serve SSTP clients
//! at the same time.
//!
//! Both servers run in the server namespace of one topology, each on its
//! own address (A on 10.201.1.1 for `cli1`, B on 10.201.2.1 for `cli2`),
//! with their own state directory, admin socket, TUN device and RFC 5176
//! listener, and lease client addresses in blocks from the same dnsmasq
//! through the same intranet interface. FreeRADIUS (Debian's package, its
//! own configuration under the test's directory) authenticates and
//! accounts for both and, with its `radutmp` session database, enforces
//! `Simultaneous-Use` across them.
//!
//! Checked against what the third parties wrote down: FreeRADIUS's detail
//! file and debug log, dnsmasq's lease file, radclient's output.
//!
//! Needs root, FreeRADIUS (with radclient) and dnsmasq; skips with a message
//! otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use interop::dnsmasq::{DhcpLan, Lease};
use interop::freeradius::{self, detail_records, FreeRadius};
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use sha2::{Digest, Sha256};

mod support;
use support::*;

/// RFC 5176 §3.5 Error-Cause values radclient names.
const SESSION_CONTEXT_NOT_FOUND: &str = "Session-Context-Not-Found";
const NAS_IDENTIFICATION_MISMATCH: &str = "NAS-Identification-Mismatch";

fn can_run_here() -> bool {
    if !can_run() {
        return false;
    }
    let missing: Vec<&str> = [
        (
            "FreeRADIUS (apt package freeradius)",
            freeradius::available(),
        ),
        (
            "radclient (apt package freeradius-utils)",
            Path::new("/usr/bin/radclient").exists(),
        ),
        ("dnsmasq", interop::dnsmasq::available()),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(name, _)| *name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("RAS_INTEROP_REQUIRED=1 but missing: {}", missing.join(", "));
    }
    eprintln!("SKIPPED (scale-out e2e): missing {}", missing.join(", "));
    false
}

/// One of the two servers as the test configures it.
struct Instance {
    name: &'static str,
    listen: &'static str,
    tun: &'static str,
    dae_port: u16,
}

const A: Instance = Instance {
    name: "ras-a",
    listen: SERVER_FOR_CLI1,
    tun: "rasso-a0",
    dae_port: 3799,
};
const B: Instance = Instance {
    name: "ras-b",
    listen: SERVER_FOR_CLI2,
    tun: "rasso-b0",
    dae_port: 3800,
};

/// The configuration of `inst`: its own state directory, listener, TUN
/// device and RFC 5176 port; the shared FreeRADIUS (127.0.0.1) and DHCP
/// interface. The NAS-Identifier is left at its default, the server name.
fn config(dir: &Path, inst: &Instance, dhcp_interface: &str) -> PathBuf {
    let base = dir.join(inst.name);
    let state = base.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )
    .unwrap();
    let path = base.join("ras.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"{name}\"\n\n\
             [sstp]\nlisten = [\"{listen}:443\"]\n\n[pptp]\nlisten = []\n\n\
             [auth]\nmethods = [\"mschapv2\"]\n\n[ipsec]\nenabled = false\n\n\
             [tun]\nname = \"{tun}\"\n\n\
             [addresses]\nipv6_prefix = \"off\"\nsource = \"dhcp\"\n\
             dhcp_interface = \"{dhcp_interface}\"\ndhcp_block = 4\ndhcp_timeout_secs = 8\n\n\
             [radius]\ntimeout_secs = 2\ntries = 2\n\n\
             [radius.dynamic_authorization]\nlisten = \"127.0.0.1:{port}\"\n\
             clients = [{{ address = \"127.0.0.1\", secret_file = \"radius.secret\" }}]\n\n\
             [[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n",
            name = inst.name,
            listen = inst.listen,
            tun = inst.tun,
            port = inst.dae_port,
        ),
    )
    .unwrap();
    path
}

/// FreeRADIUS with its radutmp session database in the accounting and
/// session sections, user `dup` limited to one session
/// (`Simultaneous-Use := 1`), and the NAS type `other` for our servers (so
/// that it trusts radutmp instead of asking the NAS with checkrad).
fn enable_simultaneous_use(fr: &mut FreeRadius, dir: &Path) {
    let raddb = dir.join("raddb");
    let edit = |file: &str, f: &dyn Fn(String) -> String| {
        let path = raddb.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let new = f(text.clone());
        assert_ne!(new, text, "{file} unchanged");
        std::fs::write(&path, new).unwrap();
    };
    edit("sites-available/default", &|t| {
        t.replace("#\tradutmp\n#\tsradutmp\n", "\tradutmp\n")
            .replace("session {\n#\tradutmp\n", "session {\n\tradutmp\n")
    });
    // FreeRADIUS 3.2's radutmp returns "fail" from its session check when
    // it asked about the NAS (check_with_nas) and found the user online:
    // the result of checkrad (1, "logged in") is left in its return code,
    // which reads as RLM_MODULE_FAIL, and a failed session check lets the
    // login through. Counting from radutmp alone works: the NAS type
    // `other` would not be asked anyway.
    edit("mods-available/radutmp", &|t| {
        t.replace("check_with_nas = yes", "check_with_nas = no")
    });
    edit("mods-config/files/authorize", &|t| {
        format!("dup\tCleartext-Password := \"dup123\", Simultaneous-Use := 1\n\n{t}")
    });
    // radutmp keys a session by its NAS-IP-Address (here the servers'
    // listening addresses, 10.201.x.1, while the packets come from
    // 127.0.0.1) and looks that NAS up among the clients: an unknown NAS
    // makes the check fail, and FreeRADIUS then lets the login through.
    edit("clients.conf", &|t| {
        format!(
            "{}\nclient ras_servers {{\n\tipaddr = 10.201.0.0/16\n\tsecret = {}\n\tnas_type = other\n}}\n",
            t.replace(
                "client ras_tests {\n",
                "client ras_tests {\n\tnas_type = other\n",
            ),
            freeradius::SECRET
        )
    });
    fr.restart().expect("FreeRADIUS with radutmp");
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn get<'a>(record: &'a [(String, String)], key: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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

/// The Accounting Start of `user` from the server named `nas`.
fn start_of(fr: &FreeRadius, user: &str, nas: &str) -> Vec<(String, String)> {
    wait_record(fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Start")
            && get(r, "User-Name") == Some(user)
            && get(r, "NAS-Identifier") == Some(nas)
    })
    .unwrap_or_else(|| panic!("no Start for {user} from {nas}:\n{}", fr.detail()))
}

/// radclient's output for one RFC 5176 request to `port`.
fn radclient(topo: &Topology, port: u16, kind: &str, attrs: &str) -> String {
    use std::io::Write;
    let mut child = topo
        .command("srv", "radclient")
        .args(["-x", "-r", "2", "-t", "3"])
        .arg(format!("127.0.0.1:{port}"))
        .args([kind, freeradius::SECRET])
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

fn connect(
    topo: &Topology,
    role: &'static str,
    inst: &Instance,
    user: &str,
    pw: &Path,
    fp: &str,
    tun: &str,
) -> Client {
    connect_to(
        topo,
        role,
        &format!("sstp://{}", inst.listen),
        user,
        pw,
        &["--fingerprint", fp, "--no-dns", "--no-ipv6"],
        tun,
    )
}

/// Octets 1–2 of the hardware addresses a server named `name` leases
/// with: the first two bytes of SHA-256 of its NAS-Identifier.
fn identity_octets(name: &str) -> String {
    let h = Sha256::digest(name.as_bytes());
    format!("02:{:02x}:{:02x}:", h[0], h[1])
}

fn leases_of<'a>(leases: &'a [Lease], name: &str) -> Vec<&'a Lease> {
    let prefix = identity_octets(name);
    leases
        .iter()
        .filter(|l| l.mac.to_ascii_lowercase().starts_with(&prefix))
        .collect()
}

fn stop(server: &mut Server, what: &str) -> String {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let line = server.expect(what, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    line
}

#[test]
fn two_servers_share_one_freeradius_and_one_dnsmasq() {
    if !can_run_here() {
        return;
    }
    let topo = Topology::create("rasso").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let srv = topo.ns("srv");

    // One intranet with one DHCP server, reached by both servers through
    // the same interface.
    let mut lan = DhcpLan::create(
        "rasso-dns",
        &srv,
        Some("10.80.0.2/24"),
        &dir.path().join("dns"),
    )
    .expect("DHCP namespace");
    lan.start_dnsmasq().expect("dnsmasq");
    // The intranet host reaches DHCP-addressed clients through the servers'
    // namespace (there, a /32 per client points into its server's TUN).
    assert!(topo
        .command("lan", "ip")
        .args(["route", "add", "10.80.0.0/24", "via", "172.31.0.1"])
        .status()
        .unwrap()
        .success());

    // One FreeRADIUS for both.
    let fr_dir = dir.path().join("fr");
    let mut fr =
        FreeRadius::start(&fr_dir, Some(&srv), Ipv4Addr::new(127, 0, 0, 1)).expect("FreeRADIUS");
    enable_simultaneous_use(&mut fr, &fr_dir);

    let mut a = Server::start(&topo, &config(dir.path(), &A, &lan.client_if));
    let mut b = Server::start(&topo, &config(dir.path(), &B, &lan.client_if));
    let test_pw = password_file(dir.path(), "test", "test123");
    let dup_pw = password_file(dir.path(), "dup", "dup123");

    // --- SSTP clients on both at once, passing traffic.
    let mut ca = connect(
        &topo,
        "cli1",
        &A,
        "test",
        &test_pw,
        &a.fingerprint,
        "rasso-c1",
    );
    let mut cb = connect(
        &topo,
        "cli2",
        &B,
        "test",
        &test_pw,
        &b.fingerprint,
        "rasso-c2",
    );
    let addr_a = wait_address(&topo, &mut ca, Duration::from_secs(40)).expect("client of A");
    let addr_b = wait_address(&topo, &mut cb, Duration::from_secs(40)).expect("client of B");
    assert_ne!(addr_a, addr_b, "the two clients' addresses");
    assert!(ping(&topo, "cli1", LAN_HOST), "traffic through A");
    assert!(ping(&topo, "cli2", LAN_HOST), "traffic through B");
    let size = 1024 * 1024;
    let (t1, t2) = std::thread::scope(|s| {
        let t1 = s.spawn(|| transfer_on_port(&topo, "cli1", 9101, size));
        let t2 = s.spawn(|| transfer_on_port(&topo, "cli2", 9102, size));
        (t1.join().unwrap(), t2.join().unwrap())
    });
    assert_eq!(t1.0, t1.1, "1 MiB through A at the same time as through B");
    assert_eq!(t2.0, t2.1, "1 MiB through B at the same time as through A");

    // --- DHCP: both servers hold a block of leases at once; the DHCP
    // server sees distinct identities (derived from each NAS-Identifier)
    // and so hands out distinct addresses.
    let leases = lan
        .wait_leases(Duration::from_secs(20), |l| l.len() >= 8)
        .unwrap_or_else(|l| panic!("two blocks of 4, not {l:?}:\n{}", lan.log()));
    assert_ne!(identity_octets(A.name), identity_octets(B.name));
    let (of_a, of_b) = (leases_of(&leases, A.name), leases_of(&leases, B.name));
    assert_eq!(of_a.len(), 4, "A's block: {leases:?}");
    assert_eq!(of_b.len(), 4, "B's block: {leases:?}");
    let mut ips: Vec<Ipv4Addr> = leases.iter().map(|l| l.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), leases.len(), "every lease its own address");
    let mut ids: Vec<&str> = leases.iter().map(|l| l.client_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), leases.len(), "every lease its own client id");
    assert!(
        of_a.iter().any(|l| l.ip == addr_a),
        "A's client has A's lease"
    );
    assert!(
        of_b.iter().any(|l| l.ip == addr_b),
        "B's client has B's lease"
    );

    // --- Accounting: the two Starts name their server and have distinct
    // Acct-Session-Ids that carry the NAS-Identifier.
    let start_a = start_of(&fr, "test", A.name);
    let start_b = start_of(&fr, "test", B.name);
    let id_a = get(&start_a, "Acct-Session-Id").unwrap().to_owned();
    let id_b = get(&start_b, "Acct-Session-Id").unwrap().to_owned();
    assert_ne!(id_a, id_b);
    assert!(id_a.starts_with("ras-a-"), "{id_a}");
    assert!(id_b.starts_with("ras-b-"), "{id_b}");
    assert_eq!(get(&start_a, "NAS-IP-Address"), Some(A.listen));
    assert_eq!(get(&start_b, "NAS-IP-Address"), Some(B.listen));
    assert!(get(&start_a, "NAS-Port").is_some(), "{start_a:?}");
    assert_eq!(
        get(&start_a, "Framed-IP-Address"),
        Some(&*addr_a.to_string())
    );
    assert_eq!(
        get(&start_b, "Framed-IP-Address"),
        Some(&*addr_b.to_string())
    );
    // Every Access-Request named its server too (FreeRADIUS's debug log
    // prints each request's attributes).
    let log = fr.log();
    for inst in [&A, &B] {
        let line = format!("NAS-Identifier = \"{}\"", inst.name);
        assert!(log.contains(&line), "FreeRADIUS saw {line}");
    }

    // --- Disconnect-Request routing (RFC 5176): A does not hold B's
    // session. Naming it by Acct-Session-Id gets a NAK with Error-Cause 503
    // (§3.5 Session Context Not Found); naming B as the NAS gets 403 (NAS
    // Identification Mismatch). Nothing ends.
    let by_id = format!("Acct-Session-Id = \"{id_b}\"\n");
    let nak = radclient(&topo, A.dae_port, "disconnect", &by_id);
    assert!(nak.contains("Disconnect-NAK"), "{nak}");
    assert!(nak.contains(SESSION_CONTEXT_NOT_FOUND), "503: {nak}");
    let nak = radclient(
        &topo,
        A.dae_port,
        "disconnect",
        &format!("NAS-Identifier = \"{}\"\nUser-Name = \"test\"\n", B.name),
    );
    assert!(nak.contains("Disconnect-NAK"), "{nak}");
    assert!(nak.contains(NAS_IDENTIFICATION_MISMATCH), "403: {nak}");
    assert!(ca.child.try_wait().unwrap().is_none(), "A's client is up");
    assert!(cb.child.try_wait().unwrap().is_none(), "B's client is up");
    assert!(ping(&topo, "cli1", LAN_HOST) && ping(&topo, "cli2", LAN_HOST));
    // Sent to B, the same request ends B's session: the client sees the
    // end, and the Stop says Admin-Reset.
    let ack = radclient(&topo, B.dae_port, "disconnect", &by_id);
    assert!(ack.contains("Disconnect-ACK"), "{ack}");
    let (_, text) = finish(cb, Duration::from_secs(20));
    assert!(!text.is_empty(), "B's client reports the end");
    let stop_b = wait_record(&fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop") && get(r, "Acct-Session-Id") == Some(&id_b)
    })
    .expect("Stop for B's session");
    assert_eq!(get(&stop_b, "Acct-Terminate-Cause"), Some("Admin-Reset"));
    assert_eq!(get(&stop_b, "NAS-Identifier"), Some(B.name));
    assert!(ping(&topo, "cli1", LAN_HOST), "A's client is undisturbed");
    assert!(
        !detail_records(&fr.detail()).iter().any(|r| {
            get(r, "Acct-Status-Type") == Some("Stop") && get(r, "Acct-Session-Id") == Some(&id_a)
        }),
        "no Stop for A's session"
    );

    // --- Simultaneous-Use := 1 for `dup`, counted by FreeRADIUS across
    // both servers: logged in through A, refused through B.
    let mut dup_a = connect(
        &topo,
        "cli1",
        &A,
        "dup",
        &dup_pw,
        &a.fingerprint,
        "rasso-c3",
    );
    assert!(
        wait_address(&topo, &mut dup_a, Duration::from_secs(40)).is_some(),
        "dup through A"
    );
    let dup_start = start_of(&fr, "dup", A.name);
    // radutmp is written after the detail file: give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let mut refused = connect(
        &topo,
        "cli2",
        &B,
        "dup",
        &dup_pw,
        &b.fingerprint,
        "rasso-c4",
    );
    if wait_address(&topo, &mut refused, Duration::from_secs(30)).is_some() {
        interrupt(&refused);
    }
    let (ok, text) = finish(refused, Duration::from_secs(40));
    assert!(
        !ok,
        "a second session of dup must be refused: {text}\nFreeRADIUS log:\n{}",
        tail(&fr.log(), 200)
    );
    let said = b.expect("RADIUS Access-Reject", Duration::from_secs(5));
    assert!(said.contains("already logged in"), "{said}");
    assert!(
        fr.log().contains("You are already logged in"),
        "FreeRADIUS refused for Simultaneous-Use"
    );
    // Once dup hangs up on A (Stop reaches FreeRADIUS), B lets dup in.
    interrupt(&dup_a);
    assert!(finish(dup_a, Duration::from_secs(15)).0);
    let dup_id = get(&dup_start, "Acct-Session-Id").unwrap().to_owned();
    wait_record(&fr, Duration::from_secs(10), |r| {
        get(r, "Acct-Status-Type") == Some("Stop") && get(r, "Acct-Session-Id") == Some(&dup_id)
    })
    .expect("Stop for dup's session on A");
    std::thread::sleep(Duration::from_millis(500));
    let mut dup_b = connect(
        &topo,
        "cli2",
        &B,
        "dup",
        &dup_pw,
        &b.fingerprint,
        "rasso-c4",
    );
    assert!(
        wait_address(&topo, &mut dup_b, Duration::from_secs(40)).is_some(),
        "dup through B once the session on A ended"
    );
    interrupt(&dup_b);
    assert!(finish(dup_b, Duration::from_secs(15)).0);

    // --- Each server releases its own leases when it stops; the other's
    // stay.
    interrupt(&ca);
    assert!(finish(ca, Duration::from_secs(15)).0);
    let said = stop(&mut a, "DHCP lease(s)");
    assert!(said.contains("released 4"), "{said}");
    let left = lan
        .wait_leases(Duration::from_secs(5), |l| l.len() == 4)
        .unwrap_or_else(|l| panic!("B's 4 leases left, not {l:?}"));
    assert_eq!(leases_of(&left, B.name).len(), 4, "{left:?}");
    let said = stop(&mut b, "DHCP lease(s)");
    assert!(said.contains("released 4"), "{said}");
    assert!(lan
        .wait_leases(Duration::from_secs(5), |l| l.is_empty())
        .is_ok());
}
