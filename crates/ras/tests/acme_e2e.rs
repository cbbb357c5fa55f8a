//! ACME certificates (issue 17, docs/ADMIN.md "ACME certificates"), end
//! to end against Debian's `pebble`, the ACME test CA: `ras server` with
//! `[certificate.acme]` orders a certificate for vpn.test, pebble
//! validates it with TLS-ALPN-01 on the SSTP port (443) itself, and the
//! server swaps it in. An SSTP client that trusts only pebble's root
//! connects by name and passes traffic. Then a renewal (pebble issues
//! short-lived certificates, so the default 30-day window is always
//! open; a reload makes the server check at once): a second certificate,
//! with another serial, is served to new clients while the running
//! session's pings go on under the same session id. A restart serves the
//! stored certificate from the first moment and renews with the stored
//! account. With the CA gone, a renewal fails in one log line and the
//! current certificate keeps serving.
//!
//! ```text
//!  cli1 ─ 10.201.1.1:443 ┐                 ┌ 10.201.2.2:14000 pebble (ACME)
//!                        ├ srv: ras server ┤   10.201.2.2:8053 pebble-challtestsrv (DNS:
//!  lan ── 172.31.0.1     ┘  10.201.2.1:443 ┘     every name is 10.201.2.1)   = cli2
//! ```
//! Needs root and pebble; skips otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use server::admin_snapshot::SessionView;

mod support;
use support::*;

const DOMAIN: &str = "vpn.test";
/// Where pebble and its DNS run (the cli2 namespace's address).
const CA_HOST: &str = "10.201.2.2";
/// The certificates pebble issues live this long (seconds): well inside
/// the default 30-day renewal window.
const VALIDITY_SECS: u64 = 10 * 86_400;

fn pebble_available() -> bool {
    let found = ["/usr/bin/pebble", "/usr/bin/pebble-challtestsrv"]
        .iter()
        .all(|p| Path::new(p).exists())
        && Command::new("curl").arg("--version").output().is_ok()
        && Command::new("openssl").arg("version").output().is_ok();
    if !found {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but pebble, curl or openssl is missing (apt packages pebble, curl, openssl)");
        }
        eprintln!("SKIPPED: pebble (apt package pebble), curl or openssl is not installed");
    }
    found
}

/// A child process killed at the end.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/etc/netns/<ns>/hosts` naming vpn.test for `ip netns exec` in those
/// namespaces (iproute2 bind-mounts it over /etc/hosts); removed at the
/// end, with the directories this test made.
struct Hosts {
    made: Vec<PathBuf>,
    /// Whether /etc/netns was made here (and so is removed if empty).
    made_root: bool,
}

impl Hosts {
    fn write(entries: &[(String, &str)]) -> Hosts {
        let made_root = !Path::new("/etc/netns").exists();
        let mut made = Vec::new();
        for (ns, address) in entries {
            let dir = Path::new("/etc/netns").join(ns);
            // A leftover of an earlier run of this test (its namespace
            // names are its own).
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            made.push(dir.clone());
            std::fs::write(
                dir.join("hosts"),
                format!("127.0.0.1 localhost\n{address} {DOMAIN}\n"),
            )
            .unwrap();
        }
        Hosts { made, made_root }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for dir in &self.made {
            let _ = std::fs::remove_dir_all(dir);
        }
        // /etc/netns itself only if this test made it (and it is empty).
        if self.made_root {
            let _ = std::fs::remove_dir(Path::new("/etc/netns"));
        }
    }
}

/// A CA and a certificate for pebble's own HTTPS (Debian ships none):
/// (CA PEM, certificate PEM, key PEM).
fn pebble_https() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "acme_e2e pebble HTTPS CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![CA_HOST.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

/// pebble-challtestsrv as pebble's DNS (every A query answers the
/// server's address) and pebble itself, in cli2.
fn start_ca(topo: &Topology, dir: &Path) -> (Daemon, Daemon, PathBuf) {
    let (ca, cert, key) = pebble_https();
    let ca_file = dir.join("pebble-https-ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), cert).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key).unwrap();
    let dns = Daemon(
        topo.command("cli2", "pebble-challtestsrv")
            .args([
                "-defaultIPv4",
                SERVER_FOR_CLI2,
                "-defaultIPv6",
                "",
                "-dns01",
                &format!("{CA_HOST}:8053"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("{CA_HOST}:8055"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pebble-challtestsrv"),
    );
    // Up when its management interface answers (anything).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answered = topo
            .command("cli2", "curl")
            .args(["-s", "-o", "/dev/null", "--max-time", "2"])
            .arg(format!("http://{CA_HOST}:8055/"))
            .status()
            .is_ok_and(|s| s.success());
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pebble-challtestsrv did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("{CA_HOST}:14000"),
            "managementListenAddress": format!("{CA_HOST}:15000"),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": 5002,
            // TLS-ALPN-01 on the SSTP port.
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": VALIDITY_SECS,
        }
    });
    let config_file = dir.join("pebble.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
    let pebble = Daemon(
        topo.command("cli2", "pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("{CA_HOST}:8053")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Fresh authorizations each time: every order is validated.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pebble"),
    );
    // Up when its directory answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(topo, &ca_file, "14000/dir").is_none() {
        assert!(Instant::now() < deadline, "pebble did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    (dns, pebble, ca_file)
}

/// GET https://CA_HOST:<port_path> from cli2, trusting `ca_file`.
fn curl(topo: &Topology, ca_file: &Path, port_path: &str) -> Option<String> {
    let out = topo
        .command("cli2", "curl")
        .args(["-sf", "--max-time", "5", "--cacert"])
        .arg(ca_file)
        .arg(format!("https://{CA_HOST}:{port_path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `openssl s_client` from `role` to `address`:443 with SNI
/// vpn.test is served, verified against `root`: (serial, issuer, the
/// SAN line), or `None` when verification fails.
fn served(
    topo: &Topology,
    role: &str,
    address: &str,
    root: &Path,
) -> Option<(String, String, String)> {
    let out = topo
        .command(role, "openssl")
        .args(["s_client", "-connect", &format!("{address}:443")])
        .args([
            "-servername",
            DOMAIN,
            "-verify_return_error",
            "-verify_hostname",
            DOMAIN,
        ])
        .arg("-CAfile")
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let pem = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut x509 = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-serial",
            "-issuer",
            "-ext",
            "subjectAltName",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    x509.stdin
        .take()
        .unwrap()
        .write_all(pem.as_bytes())
        .unwrap();
    let text = String::from_utf8_lossy(&x509.wait_with_output().unwrap().stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_default()
    };
    let san = text
        .lines()
        .skip_while(|l| !l.contains("Subject Alternative Name"))
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    Some((field("serial="), field("issuer="), san))
}

fn config_text(dir: &Path, ca_file: &Path) -> String {
    let path = dir.join("ras.toml");
    format!(
        "state_dir = {:?}\nserver_name = \"{DOMAIN}\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\", \"{SERVER_FOR_CLI2}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-acm0\"\n\n[admin]\nsocket = {:?}\n\n[certificate.acme]\ndirectory = \"https://{CA_HOST}:14000/dir\"\ncontact = \"admin@{DOMAIN}\"\nca_file = {:?}\n",
        dir.join("state"),
        admin_socket_for(&path),
        ca_file,
    )
}

fn sessions(socket: &Path) -> Vec<SessionView> {
    let answer = server::admin_client::request(socket, "GET", "/v1/sessions").unwrap();
    serde_json::from_slice(&answer.body).unwrap()
}

/// `ras connect sstp://vpn.test --ca ROOT` from `role`.
fn sstp_client(
    topo: &Topology,
    role: &'static str,
    user: &str,
    pw: &Path,
    root: &Path,
    tun: &str,
) -> Client {
    let root = root.to_string_lossy().into_owned();
    connect_to(
        topo,
        role,
        &format!("sstp://{DOMAIN}"),
        user,
        pw,
        &["--ca", &root, "--no-dns", "--no-ipv6"],
        tun,
    )
}

/// `ping -c COUNT -i 0.05` from `role` to the LAN host in a thread;
/// joins to (sent, received).
fn ping_in_background(
    topo: &Topology,
    role: &str,
    count: u32,
) -> std::thread::JoinHandle<(u32, u32)> {
    let mut cmd = topo.command(role, "ping");
    cmd.args(["-c", &count.to_string(), "-i", "0.05", "-W", "1", LAN_HOST]);
    std::thread::spawn(move || {
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary: {text}"));
        let numbers: Vec<u32> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    })
}

#[test]
fn pebble_issues_and_renews_over_tls_alpn_on_the_sstp_port_without_dropping_a_session() {
    if !can_run() || !pebble_available() {
        return;
    }
    let topo = Topology::create("rasacm").expect("namespaces");
    let _hosts = Hosts::write(&[
        (topo.ns("cli1"), SERVER_FOR_CLI1),
        (topo.ns("cli2"), SERVER_FOR_CLI2),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (_dns, pebble, pebble_https_ca) = start_ca(&topo, dir.path());
    let path = dir.path().join("ras.toml");
    let socket = admin_socket_for(&path);
    std::fs::write(&path, config_text(dir.path(), &pebble_https_ca)).unwrap();
    let bob_pw = password_file(dir.path(), "bob", "bob-password");
    let alice_pw = password_file(dir.path(), "alice", "alice-password");
    add_user(&path, "bob", &bob_pw, &[]);
    add_user(&path, "alice", &alice_pw, &[]);

    // (1) Issuance at start: pebble validated on port 443 itself.
    let server = Server::start(&topo, &path);
    let self_signed = server.fingerprint.clone();
    server.expect(
        "ACME: answered a TLS-ALPN-01 validation",
        Duration::from_secs(60),
    );
    let line = server.expect("ACME: certificate for", Duration::from_secs(60));
    assert!(line.contains(&format!("for {DOMAIN} installed")), "{line}");
    let account_file = dir.path().join("state/acme-account.json");
    let cert_file = dir.path().join("state/acme-certificate.pem");
    for f in [&account_file, &cert_file] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }

    // pebble's roots, from its management API; a client trusting only
    // them accepts the served certificate for vpn.test.
    let root = curl(&topo, &pebble_https_ca, "15000/roots/0").expect("pebble's root");
    let intermediate =
        curl(&topo, &pebble_https_ca, "15000/intermediates/0").expect("pebble's intermediate");
    assert!(root.contains("BEGIN CERTIFICATE") && intermediate.contains("BEGIN CERTIFICATE"));
    let root_file = dir.path().join("pebble-root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let (serial1, issuer1, san1) = served(&topo, "cli1", SERVER_FOR_CLI1, &root_file)
        .expect("the served chain verifies to pebble's root");
    assert!(issuer1.contains("Pebble Intermediate CA"), "{issuer1}");
    assert_eq!(san1, format!("DNS:{DOMAIN}"));
    // A root that is not pebble's does not verify it.
    assert!(served(&topo, "cli1", SERVER_FOR_CLI1, &pebble_https_ca).is_none());
    // pebble's validity period is what was asked for (so renewal is due).
    let stored = std::fs::read_to_string(&cert_file).unwrap();
    assert!(
        stored.contains("PRIVATE KEY"),
        "the chain is stored with its key"
    );

    // An SSTP client by name, trusting pebble's root.
    let mut bob = sstp_client(&topo, "cli1", "bob", &bob_pw, &root_file, "ras-acm1");
    assert!(
        wait_address(&topo, &mut bob, Duration::from_secs(30)).is_some(),
        "bob's SSTP session over the ACME certificate"
    );
    assert!(ping(&topo, "cli1", LAN_HOST));
    let before = sessions(&socket);
    assert_eq!(before.len(), 1);
    let bob_id = before[0].id;

    // (2) Renewal under a running ping: the certificate expires within
    // the default 30 days, and a reload makes the server check now.
    let pinger = ping_in_background(&topo, "cli1", 160);
    std::thread::sleep(Duration::from_secs(1));
    assert!(Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let line = server.expect("ACME: ordering a certificate", Duration::from_secs(20));
    assert!(line.contains("within 30 days"), "{line}");
    let line = server.expect("ACME: certificate for", Duration::from_secs(60));
    assert!(line.contains("installed"), "{line}");
    let (sent, received) = pinger.join().unwrap();
    assert!(
        sent >= 150 && sent - received <= 1,
        "the running session's pings: {received} of {sent} answered across the renewal"
    );
    assert_eq!(
        sessions(&socket).iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![bob_id],
        "the same session, not a new one"
    );
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "bob's session after the swap"
    );

    // The admin API shows the served certificate: pebble's, with the
    // validity asked of pebble.
    let status: server::admin_snapshot::Snapshot = serde_json::from_slice(
        &server::admin_client::request(&socket, "GET", "/v1/status")
            .unwrap()
            .body,
    )
    .unwrap();
    let shown = status.certificate.expect("the certificate view");
    assert!(!shown.self_signed);
    let left = shown.not_after
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!(
        (0..=VALIDITY_SECS as i64).contains(&left),
        "{left} s left of a {VALIDITY_SECS} s certificate"
    );

    // A new client meets the new certificate.
    let (serial2, issuer2, san2) =
        served(&topo, "cli2", SERVER_FOR_CLI2, &root_file).expect("the renewed chain verifies");
    assert_ne!(serial1, serial2, "a new certificate");
    assert!(issuer2.contains("Pebble Intermediate CA"), "{issuer2}");
    assert_eq!(san2, format!("DNS:{DOMAIN}"));
    let mut alice = sstp_client(&topo, "cli2", "alice", &alice_pw, &root_file, "ras-acm2");
    assert!(
        wait_address(&topo, &mut alice, Duration::from_secs(30)).is_some(),
        "alice's SSTP session over the renewed certificate"
    );
    assert!(ping(&topo, "cli2", LAN_HOST));
    interrupt(&alice);
    assert!(finish(alice, Duration::from_secs(15)).0);
    interrupt(&bob);
    assert!(finish(bob, Duration::from_secs(15)).0);

    // (3) A restart serves the stored certificate from the start, with
    // the stored account (no new one).
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert_file)
        .output()
        .unwrap();
    let stored_fp = String::from_utf8_lossy(&out.stdout)
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    drop(server);
    let server = Server::start(&topo, &path);
    assert_ne!(server.fingerprint, self_signed);
    assert_eq!(
        server.fingerprint, stored_fp,
        "the stored certificate at start"
    );
    let (serial3, _, _) =
        served(&topo, "cli1", SERVER_FOR_CLI1, &root_file).expect("the stored chain verifies");
    assert!(!serial3.is_empty());
    // The restart's own check renews (the window is open) with the
    // stored account: none is created.
    let lines = server.lines_for(Duration::from_secs(6));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ACME: certificate for") && l.contains("installed")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("account") && l.contains("created")),
        "{lines:?}"
    );

    // (4) The CA gone: one line saying so and when it retries, and the
    // current certificate keeps serving.
    let (serving, _, _) =
        served(&topo, "cli1", SERVER_FOR_CLI1, &root_file).expect("the current chain");
    drop(pebble);
    assert!(Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let line = server.expect("ACME: no certificate for", Duration::from_secs(40));
    assert!(
        line.contains("retrying in 5 min") && line.contains("keeps serving"),
        "{line}"
    );
    let (still, _, _) = served(&topo, "cli1", SERVER_FOR_CLI1, &root_file).expect("still served");
    assert_eq!(still, serving);
}
