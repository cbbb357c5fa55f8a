//! `ras connect ikev2://` against a server we did not write: strongSwan
//! 5.9.8 (Debian 12) with kernel-libipsec, started by
//! `interop/strongswan.sh` in its own namespace. Two logins:
//!
//! - EAP-MSCHAPv2 after the server's RSA certificate (from the harness's
//!   own CA, `--ca`) and its RFC 7427 signature checked out, as Windows'
//!   "IKEv2 + MSCHAPv2" connects;
//! - a pre-shared key both ways, with the identity strongSwan expects;
//! - a client certificate (`--cert`, `--key`: ECDSA, a SEC1 key as
//!   strongSwan's `pki` writes it), its subject DN as IDi, after the
//!   server's certificate checked out.
//!
//! Each run checks the virtual IP from strongSwan's pool, the route to the
//! narrowed traffic selector, pings with patterned 1200-byte payloads
//! through tunnel-mode ESP (UDP-encapsulated: kernel-libipsec fakes a NAT),
//! strongSwan's view of the SA while up, and that SIGINT deletes the IKE
//! SA (charon logs the Delete and `swanctl --list-sas` is empty after).
//!
//! A third run moves the client to another address mid-tunnel: MOBIKE
//! (RFC 4555) tells strongSwan, whose kernel-libipsec cannot move an ESP
//! SA in place and so rekeys the child itself (a CREATE_CHILD_SA from the
//! server, which the client answers); the pings go on through the new SA.
//!
//! Skips (or fails with `RAS_INTEROP_REQUIRED=1`) when strongSwan cannot
//! be installed or started.

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop::strongswan::{self, StrongSwan};

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TUN: &str = "ras-sw-ike";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tun_address(sw: &StrongSwan) -> Option<Ipv4Addr> {
    let out = sw
        .command_in_client_ns("ip")
        .args(["-4", "-o", "addr", "show", "dev", TUN])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    addr.split('/').next()?.parse().ok()
}

/// Whether the route to `to` through the TUN is there (the client adds it
/// from the narrowed TSr; no --route is given).
fn routed(sw: &StrongSwan, to: Ipv4Addr) -> bool {
    sw.command_in_client_ns("ip")
        .args(["-4", "route", "show", "dev", TUN])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w == to.to_string() || w == format!("{to}/32"))
        })
        .unwrap_or(false)
}

/// Waits up to 30 s from `started` for `child` (`what`) to have its TUN
/// address and the route to strongSwan's target; panics with its output
/// and charon's log since `log_mark` if it exits or does not get there.
fn wait_up(
    sw: &StrongSwan,
    child: &mut Killed,
    what: &str,
    started: Instant,
    log_mark: usize,
) -> Ipv4Addr {
    let stderr = |child: &mut Killed| {
        let mut text = String::new();
        let _ = child.0.stderr.take().unwrap().read_to_string(&mut text);
        text
    };
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before the tunnel came up:\n{}\ncharon:\n{}",
                stderr(child),
                &sw.log()[log_mark..]
            );
        }
        if let Some(address) = tun_address(sw) {
            if routed(sw, sw.target) {
                return address;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.0.kill();
    panic!(
        "{what}: the IKEv2 tunnel did not come up within 30 s:\n{}\ncharon:\n{}",
        stderr(child),
        &sw.log()[log_mark..]
    );
}

/// One strongSwan per machine, and one connection at a time here.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

enum Login {
    Eap,
    Psk,
    Certificate,
    /// A pre-shared key to conn `ikev2-rekey`, whose IKE SA strongSwan
    /// wants to rekey 15 s after it came up.
    PskRekeyed,
}

/// `ip ARGS` in the client namespace; panics on failure.
fn client_ip(sw: &StrongSwan, args: &[&str]) {
    let out = sw.command_in_client_ns("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ping_through(sw: &StrongSwan, target: Ipv4Addr) {
    // Patterned payloads: ping checks every byte of each echo reply.
    let ping = sw
        .command_in_client_ns("ping")
        .args([
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "3",
            "-s",
            "1200",
            "-p",
            "a55a0ff0c33c",
            &target.to_string(),
        ])
        .output()
        .unwrap();
    let ping_text = String::from_utf8_lossy(&ping.stdout).into_owned();
    assert!(ping.status.success(), "ping {target}: {ping_text}");
    assert!(!ping_text.contains("wrong data"), "{ping_text}");
    assert!(ping_text.contains(" 0% packet loss"), "{ping_text}");
}

/// Moves the client namespace from its address to the next one (the old
/// one removed, as when a laptop changes networks) and waits until
/// strongSwan has the IKE SA at the new address.
fn move_client(sw: &StrongSwan) -> Ipv4Addr {
    let o = sw.client_ip.octets();
    let new = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1);
    let link = sw.client_link.as_str();
    let out = sw
        .command_in_client_ns("sysctl")
        .args([
            "-qw",
            &format!("net.ipv4.conf.{link}.promote_secondaries=1"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    client_ip(sw, &["addr", "add", &format!("{new}/24"), "dev", link]);
    client_ip(
        sw,
        &["addr", "del", &format!("{}/24", sw.client_ip), "dev", link],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sas = sw.list_sas();
        if sas.contains(&format!("@ {new}[4500]")) && sas.contains("INSTALLED, TUNNEL") {
            return new;
        }
        assert!(
            Instant::now() < deadline,
            "strongSwan did not follow the client to {new}:\n{sas}\ncharon:\n{}",
            sw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn connect_to_strongswan(login: Login, mobike: bool) {
    connect_to_strongswan_with(login, mobike, &[]);
}

/// [`connect_to_strongswan`] with more `ras connect` options.
fn connect_to_strongswan_with(login: Login, mobike: bool, extra: &[std::ffi::OsString]) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sw) = strongswan::start_or_skip() else {
        return;
    };
    eprintln!("strongSwan {} at {}", sw.version, sw.server_ip);
    let dir = tempfile::tempdir().unwrap();
    let mut command = sw.command_in_client_ns(RAS);
    command.args(["connect", &format!("ikev2://{}", sw.server_ip)]);
    let connection = match login {
        Login::Eap => {
            let pw = dir.path().join("pw");
            std::fs::write(&pw, format!("{}\n", sw.password)).unwrap();
            command
                .args(["--user", &sw.user, "--password-file"])
                .arg(&pw)
                .arg("--ca")
                .arg(&sw.ca);
            "ikev2-eap"
        }
        Login::Psk => {
            let psk = dir.path().join("psk");
            std::fs::write(&psk, format!("{}\n", sw.psk)).unwrap();
            command
                .args(["--user", "unused", "--id", &sw.psk_id, "--psk-file"])
                .arg(&psk);
            "ikev2-psk"
        }
        Login::PskRekeyed => {
            let psk = dir.path().join("psk");
            std::fs::write(&psk, format!("{}\n", sw.psk)).unwrap();
            command
                .args(["--user", "unused", "--id", &sw.rekey_id, "--psk-file"])
                .arg(&psk);
            "ikev2-rekey"
        }
        Login::Certificate => {
            command
                .args(["--user", "unused", "--cert"])
                .arg(&sw.client_cert)
                .arg("--key")
                .arg(&sw.client_key)
                .arg("--ca")
                .arg(&sw.ca);
            "ikev2-cert"
        }
    };
    command.args(extra);
    let log_mark = sw.log().len();
    let started = Instant::now();
    let mut client = Killed(
        command
            .args(["--no-dns", "--tun-name", TUN])
            .env(
                "RUST_LOG",
                std::env::var("RAS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras connect"),
    );
    let target = sw.target;
    let address = wait_up(&sw, &mut client, "ras connect", started, log_mark);
    eprintln!(
        "up with {address} after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(address.octets()[..3], sw.pool_prefix, "{address}");
    if matches!(login, Login::Psk) {
        // interop/strongswan.sh allows only ChaCha20-Poly1305 (RFC 7634)
        // for the PSK connection's ESP.
        assert!(
            sw.log()[log_mark..].contains("selected proposal: ESP:CHACHA20_POLY1305"),
            "ESP ChaCha20-Poly1305:\n{}",
            &sw.log()[log_mark..]
        );
    }
    let stdout = client.0.stdout.take().unwrap();

    // strongSwan's side: the connection, our virtual IP, the child SA.
    let sas = sw.list_sas();
    assert!(sas.contains(&format!("{connection}: #")), "{sas}");
    assert!(sas.contains("ESTABLISHED"), "{sas}");
    assert!(sas.contains(&format!("[{address}]")), "{sas}");
    assert!(sas.contains("INSTALLED, TUNNEL"), "{sas}");

    ping_through(&sw, target);
    if let Login::PskRekeyed = login {
        // RFC 7296 §2.18, §2.25: strongSwan's own IKE SA rekey gets
        // TEMPORARY_FAILURE and ours follows at once; strongSwan answers
        // it, and the old IKE SA is deleted. The child SA is untouched.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let log = sw.log()[log_mark..].to_string();
            if log.contains("received TEMPORARY_FAILURE notify")
                && log.contains("rekeyed between")
                && log.contains("received DELETE for IKE_SA ikev2-rekey")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no IKE SA rekey within 40 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let sas = sw.list_sas();
        assert_eq!(sas.matches("ikev2-rekey: #").count(), 1, "{sas}");
        assert!(sas.contains("ESTABLISHED"), "{sas}");
        assert!(sas.contains("INSTALLED, TUNNEL"), "{sas}");
        ping_through(&sw, target);
    }
    if mobike {
        let moved_at = Instant::now();
        let new = move_client(&sw);
        // The server may rekey the child after the move (kernel-libipsec
        // does): the first echo can be lost while the new SA settles.
        let deadline = Instant::now() + Duration::from_secs(15);
        while !sw
            .command_in_client_ns("ping")
            .args(["-c", "1", "-W", "1", &target.to_string()])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "no echo through the tunnel 15 s after the move:\n{}",
                sw.list_sas()
            );
        }
        eprintln!(
            "moved to {new}; echoes again after {:.2} s",
            moved_at.elapsed().as_secs_f64()
        );
        ping_through(&sw, target);
    }

    // Clean disconnect on SIGINT: the IKE SA is deleted on the server.
    let _ = Command::new("kill")
        .args(["-INT", &client.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = client.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ras connect did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
    eprintln!("ras connect stderr:\n{text}");
    let mut out = String::new();
    let mut stdout = stdout;
    let _ = stdout.read_to_string(&mut out);
    assert!(status.success(), "exit after SIGINT: {status}\n{text}");
    assert!(
        out.contains(&format!(
            "connected to ikev2://{}:500: {address} (server {target}), DNS {target}, ESP ",
            sw.server_ip
        )),
        "status line: {out:?}"
    );
    assert!(out.contains(&format!("routes: {target}/32")), "{out}");
    assert!(text.contains("disconnected"), "{text}");
    if mobike {
        assert!(text.contains("telling the server (MOBIKE)"), "{text}");
        // Put the namespace back for the next test.
        let o = sw.client_ip.octets();
        let moved = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1);
        let link = sw.client_link.as_str();
        client_ip(
            &sw,
            &["addr", "add", &format!("{}/24", sw.client_ip), "dev", link],
        );
        client_ip(&sw, &["addr", "del", &format!("{moved}/24"), "dev", link]);
    }
    if let Login::PskRekeyed = login {
        assert!(text.contains("rekeyed (1 so far)"), "{text}");
    }
    if let Login::Certificate = login {
        assert!(text.contains("as the certificate's subject"), "{text}");
        // strongSwan checked our certificate and signature.
        let log = &sw.log()[log_mark..];
        assert!(
            log.lines().any(|l| l
                .contains(&format!("authentication of '{}' with ", sw.client_cert_id))
                && l.ends_with("successful")),
            "charon:\n{log}"
        );
    }
    if let Login::Eap | Login::Certificate = login {
        assert!(
            text.contains(&format!("(certificate \"CN={}\")", sw.server_ip)),
            "{text}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = sw.log()[log_mark..].to_string();
        let sas = sw.list_sas();
        if log.contains(&format!("received DELETE for IKE_SA {connection}"))
            && !sas.contains(connection)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "strongSwan still has the SA 5 s after the disconnect:\n{sas}\ncharon:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The TUN and its routes are gone with the client.
    assert_eq!(tun_address(&sw), None);
}

#[test]
fn eap_mschapv2_to_strongswan_after_its_certificate() {
    connect_to_strongswan(Login::Eap, false);
}

#[test]
fn a_client_certificate_to_strongswan() {
    connect_to_strongswan(Login::Certificate, false);
}

#[test]
fn pre_shared_key_to_strongswan() {
    connect_to_strongswan(Login::Psk, false);
}

#[test]
fn the_ike_sa_is_rekeyed_when_strongswan_wants_it_and_the_tunnel_carries_on() {
    connect_to_strongswan(Login::PskRekeyed, false);
}

#[test]
fn the_tunnel_follows_a_new_client_address_with_mobike() {
    connect_to_strongswan(Login::Eap, true);
}

/// strongSwan's own `pki --signcrl` over the harness CA (`ca.key` next to
/// `ca.pem`), revoking `revoke` if given: the CRL file (DER) in `dir`.
fn strongswan_crl(
    sw: &StrongSwan,
    dir: &std::path::Path,
    name: &str,
    revoke: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let state = sw.ca.parent().unwrap();
    let mut pki = Command::new("pki");
    pki.arg("--signcrl")
        .arg("--cacert")
        .arg(&sw.ca)
        .arg("--cakey")
        .arg(state.join("ca.key"));
    if let Some(cert) = revoke {
        // pki applies --reason to the --cert that follows it.
        pki.args(["--reason", "key-compromise", "--cert"]).arg(cert);
    }
    let out = pki.args(["--outform", "der"]).output().expect("pki");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "pki --signcrl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Revocation (issues 13 and 14): a CRL that strongSwan's `pki` signed
/// with the harness CA and that lists strongSwan's own server certificate
/// makes `ras connect --crl` refuse the server (before any password is
/// sent), naming the revoked serial; a CRL of the same CA that lists
/// nothing lets the same login through, even under `--crl-strict`.
#[test]
fn a_server_certificate_on_the_cas_crl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clean = {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sw) = strongswan::start_or_skip() else {
            return;
        };
        let server_cert = sw.ca.parent().unwrap().join("swanctl/x509/server.pem");
        let revoked = strongswan_crl(&sw, dir.path(), "revoked.crl", Some(&server_cert));
        let pw = dir.path().join("pw");
        std::fs::write(&pw, format!("{}\n", sw.password)).unwrap();
        let log_mark = sw.log().len();
        let out = sw
            .command_in_client_ns(RAS)
            .args(["connect", &format!("ikev2://{}", sw.server_ip)])
            .args(["--user", &sw.user, "--password-file"])
            .arg(&pw)
            .arg("--ca")
            .arg(&sw.ca)
            .arg("--crl")
            .arg(&revoked)
            .args(["--no-dns", "--tun-name", TUN])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("ras connect with the revoking CRL:\n{err}");
        assert!(!out.status.success(), "{err}");
        let subject = format!("\"CN={}\" is revoked: serial ", sw.server_ip);
        assert!(err.contains(&subject), "{err}");
        assert!(err.contains("(keyCompromise)"), "{err}");
        // The serial openssl shows for the certificate is in the line.
        let serial = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(&server_cert)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if let Some(hex) = serial.strip_prefix("serial=") {
            let colons: Vec<String> = hex
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).to_lowercase())
                .collect();
            assert!(err.contains(&colons.join(":")), "serial {hex}: {err}");
        }
        // No EAP exchange: the password never went to the revoked server.
        assert!(
            !sw.log()[log_mark..].contains("EAP_MSCHAPV2 method succeeded"),
            "{}",
            &sw.log()[log_mark..]
        );
        assert_eq!(tun_address(&sw), None);
        strongswan_crl(&sw, dir.path(), "clean.crl", None)
    };
    connect_to_strongswan_with(
        Login::Eap,
        false,
        &[
            "--crl".into(),
            clean.into_os_string(),
            "--crl-strict".into(),
        ],
    );
}

/// `ras client` with the given state and socket.
fn ras_client(state: &std::path::Path, socket: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(RAS)
        .arg("client")
        .arg("--state")
        .arg(state)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The connection's status once it is in one of `states` (`ras client
/// status --json`), or the last one seen after `within`.
fn client_status_once(
    state: &std::path::Path,
    socket: &std::path::Path,
    states: &[&str],
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, out) = ras_client(state, socket, &["status", "--json"]);
        let now: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or("[]"))
            .unwrap_or(serde_json::Value::Null);
        let conn = now[0].clone();
        if states.iter().any(|s| conn["state"] == *s) || Instant::now() > deadline {
            return conn;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The client daemon's policy document checks the server's certificate
/// against its `trust.crl_files` (issue 15): with a CRL from strongSwan's
/// `pki` that lists strongSwan's server certificate, `ras client connect`
/// ends disconnected with the revocation as the cause and no EAP sent;
/// provisioned again with a CRL that lists nothing and `crl_policy =
/// "strict"`, the same connection comes up.
#[test]
fn the_client_daemon_refuses_a_server_on_its_policys_crl() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sw) = strongswan::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server_cert = sw.ca.parent().unwrap().join("swanctl/x509/server.pem");
    let revoked = strongswan_crl(&sw, dir.path(), "revoked.crl", Some(&server_cert));
    let clean = strongswan_crl(&sw, dir.path(), "clean.crl", None);
    let state = dir.path().join("client");
    let socket = dir.path().join("client.sock");
    let units = dir.path().join("units");
    let doc = dir.path().join("policy.toml");
    let provision = |crl: &std::path::Path, policy: &str| {
        std::fs::write(
            &doc,
            format!(
                "[[connection]]\nname = \"sw\"\nservers = [\"{}\"]\nprotocols = [\"ikev2\"]\ndns = false\ninterface = \"{TUN}\"\n[connection.auth]\nuser = \"{}\"\npassword = \"{}\"\n[connection.trust]\nca = {:?}\ncrl_files = [{crl:?}]\ncrl_policy = \"{policy}\"\n",
                sw.server_ip, sw.user, sw.password, sw.ca
            ),
        )
        .unwrap();
        let (ok, out) = ras_client(
            &state,
            &socket,
            &[
                "provision",
                doc.to_str().unwrap(),
                "--unit-dir",
                units.to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
    };
    provision(&revoked, "if-available");
    let mut daemon = Killed(
        sw.command_in_client_ns(RAS)
            .arg("client")
            .arg("--state")
            .arg(&state)
            .arg("--socket")
            .arg(&socket)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log_mark = sw.log().len();
    let (ok, out) = ras_client(&state, &socket, &["connect", "sw"]);
    assert!(ok, "{out}");
    let down = client_status_once(&state, &socket, &["disconnected"], Duration::from_secs(30));
    eprintln!("the daemon with the revoking CRL: {down}");
    assert_eq!(down["state"], "disconnected", "{down}");
    let subject = format!("\"CN={}\" is revoked: serial ", sw.server_ip);
    assert!(
        down["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains(&subject),
        "{down}"
    );
    assert!(
        !sw.log()[log_mark..].contains("EAP_MSCHAPV2 method succeeded"),
        "{}",
        &sw.log()[log_mark..]
    );
    assert_eq!(tun_address(&sw), None);

    // A CRL that lists nothing, strict: the same server is accepted.
    provision(&clean, "strict");
    let (ok, out) = ras_client(&state, &socket, &["connect", "sw"]);
    assert!(ok, "{out}");
    let up = client_status_once(&state, &socket, &["connected"], Duration::from_secs(30));
    assert_eq!(up["state"], "connected", "{up}");
    assert!(up["handshake_ms"].as_u64().unwrap_or(0) > 0, "{up}");
    let (ok, out) = ras_client(&state, &socket, &["disconnect", "sw"]);
    assert!(ok, "{out}");
    client_status_once(&state, &socket, &["disconnected"], Duration::from_secs(15));
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_wrong_password_is_an_authentication_failure() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sw) = strongswan::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "not the password\n").unwrap();
    let out = sw
        .command_in_client_ns(RAS)
        .args(["connect", &format!("ikev2://{}", sw.server_ip)])
        .args(["--user", &sw.user, "--password-file"])
        .arg(&pw)
        .arg("--ca")
        .arg(&sw.ca)
        .args(["--no-dns", "--tun-name", TUN, "--reconnect"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    // Permanent: --reconnect gives up at once.
    assert!(!out.status.success(), "{err}");
    // strongSwan ends EAP-MSCHAPv2 with an EAP Failure after the
    // MS-CHAPv2 failure (error 691).
    assert!(
        err.contains("IKEv2: EAP authentication failed")
            || err.contains("the server refused the login"),
        "{err}"
    );
    assert!(!err.contains("reconnecting"), "{err}");
    assert_eq!(tun_address(&sw), None);
}

/// A Connection Manager profile with an IKEv2 entry (issue 14): `ras
/// profile build --protocol ikev2` writes VpnStrategy=7, and `ras dial`
/// connects it to strongSwan as Windows' IKEv2 VPN type does: the server's
/// certificate checked against `--ca`, then EAP-MSCHAPv2 with the profile's
/// user name and the password given. The tunnel carries pings, strongSwan
/// holds the SA for its EAP connection, and SIGINT deletes it.
#[test]
fn a_connection_manager_ikev2_profile_dials_strongswan() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sw) = strongswan::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.toml");
    std::fs::write(&answers, format!("[user]\nuser_name = {:?}\n", sw.user)).unwrap();
    let out = dir.path().join("out");
    let built = Command::new(RAS)
        .args(["profile", "build", "--unsigned", "--answers"])
        .arg(&answers)
        .arg("--out")
        .arg(&out)
        .args([
            "--service-name",
            "IKEv2 Test",
            "--short-name",
            "ikev2cm",
            "--vpn-server",
            &sw.server_ip.to_string(),
            "--protocol",
            "ikev2",
        ])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "ras profile build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let profile = out.join("ikev2cm");
    let cms = std::fs::read_to_string(profile.join("ikev2cm.cms")).unwrap();
    assert!(cms.contains("VpnStrategy=7"), "{cms}");

    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", sw.password)).unwrap();
    let log_mark = sw.log().len();
    let mut dial = Killed(
        sw.command_in_client_ns(RAS)
            .arg("dial")
            .arg(&profile)
            .arg("--password-file")
            .arg(&pw)
            .arg("--ca")
            .arg(&sw.ca)
            .args(["--unattended", "--no-dns", "--no-ipv6", "--vpn-tun", TUN])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras dial"),
    );
    let target = sw.target;
    let address = wait_up(&sw, &mut dial, "ras dial", Instant::now(), log_mark);
    assert_eq!(address.octets()[..3], sw.pool_prefix, "{address}");
    let sas = sw.list_sas();
    assert!(sas.contains("ikev2-eap: #"), "{sas}");
    assert!(sas.contains(&format!("[{address}]")), "{sas}");
    // strongSwan ran EAP-MSCHAPv2 for the profile's user.
    let log = sw.log()[log_mark..].to_string();
    assert!(
        log.contains(&format!("received EAP identity '{}'", sw.user))
            && log.contains("EAP method EAP_MSCHAPV2 succeeded"),
        "charon:\n{log}"
    );
    ping_through(&sw, target);

    let _ = Command::new("kill")
        .args(["-INT", &dial.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = dial.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ras dial did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    let _ = dial.0.stderr.take().unwrap().read_to_string(&mut text);
    let mut out_text = String::new();
    let _ = dial.0.stdout.take().unwrap().read_to_string(&mut out_text);
    eprintln!("ras dial:\n{out_text}\n{text}");
    assert!(status.success(), "exit after SIGINT: {status}\n{text}");
    assert!(
        out_text.contains("Connected") || text.contains("Connected"),
        "{out_text}\n{text}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while sw.list_sas().contains("ikev2-eap") {
        assert!(
            Instant::now() < deadline,
            "strongSwan still has the SA 5 s after the disconnect:\n{}",
            sw.list_sas()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(tun_address(&sw), None);
}
