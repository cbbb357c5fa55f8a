//! Client certificate status over the network (issues 13 and 14), against
//! a responder we did not write: OpenSSL's `openssl ocsp` serving its CA
//! index on the server namespace's loopback, and a CRL served by
//! `python3 -m http.server`. `ras connect ikev2://` logs in with a client
//! certificate (the in-repo IKEv2 client: no certificate-auth client
//! exists outside the interop VM) against `ras server` in namespaces:
//!
//! - OCSP, `crl_policy = "strict"`: a good certificate connects; one the
//!   index revokes is refused, the log naming OCSP, the serial and reason;
//! - a responder that accepts and never answers holds only the login
//!   that asks it: another client connects meanwhile, and the waiting one
//!   is refused after the 5 s deadline (strict);
//! - the responder down: strict refuses, if-available connects with a
//!   warning;
//! - no OCSP, `fetch_crls`: the CRL of the certificate's distribution point
//!   refuses the revoked one and lets the good one in.
//!
//! The same for L2TP/IPsec (IKEv1 Main Mode with certificates): `ras
//! connect l2tp://` with a client certificate (and PPP credentials inside)
//! reaches the LAN when OCSP says good; OCSP's revoked certificate and
//! the distribution point's CRL end the IKE SA after Main Mode with one
//! line naming the serial, the source and the reason, before any ESP SA.
//!
//! The PKI is made by `openssl` here (its `ca` keeps the index the
//! responder answers from). Needs root and openssl, python3; skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, SERVER_FOR_CLI1};

mod support;
use support::*;

const OCSP_PORT: u16 = 8880;
const CRL_PORT: u16 = 8881;

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CA, the server's certificate, clients "good" (serial 1000),
/// "revoked" (1001, keyCompromise) and "late" (1004) naming the responder
/// and the CRL, the responder's certificate (id-kp-OCSPSigning) and the
/// CA's CRL.
fn make_pki(dir: &Path) {
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "[req]\ndistinguished_name=dn\n[dn]\n\
             [ca_ext]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n\
             [client_ext]\nbasicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n\
             authorityInfoAccess=OCSP;URI:http://127.0.0.1:{OCSP_PORT}/\n\
             crlDistributionPoints=URI:http://127.0.0.1:{CRL_PORT}/ca.crl\n\
             [server_ext]\nbasicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:{SERVER_FOR_CLI1}\n\
             [resp_ext]\nbasicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=OCSPSigning\n\
             [ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\n\
             default_md=sha256\npolicy=p\nunique_subject=no\ndefault_crl_days=30\n\
             [p]\ncommonName=supplied\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=ras OCSP test CA",
        "-days",
        "30",
        "-config",
        "ext.cnf",
        "-extensions",
        "ca_ext",
    ]);
    openssl(dir, &args);
    for (name, ext) in [
        ("good", "client_ext"),
        ("revoked", "client_ext"),
        ("server", "server_ext"),
        ("resp", "resp_ext"),
        ("late", "client_ext"),
    ] {
        let mut args = vec!["req"];
        args.extend(ec);
        let (key, csr, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "ca",
                "-batch",
                "-config",
                "ext.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                &csr,
                "-out",
                &pem,
                "-days",
                "30",
                "-extensions",
                ext,
                "-notext",
            ],
        );
    }
    openssl(
        dir,
        &[
            "ca",
            "-config",
            "ext.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-revoke",
            "revoked.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    std::fs::create_dir_all(dir.join("www")).unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-config",
            "ext.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-gencrl",
            "-out",
            "www/ca.crl",
        ],
    );
}

/// A process in the server's namespace, killed when dropped.
struct Helper(std::process::Child);
impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args` in the server namespace and waits until it
/// listens on 127.0.0.1:`port` there.
fn helper(topo: &Topology, dir: &Path, program: &str, args: &[&str], port: u16) -> Helper {
    let child = topo
        .command("srv", program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let helper = Helper(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = topo
            .in_ns("srv", || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            })
            .unwrap();
        if up {
            return helper;
        }
        assert!(
            Instant::now() < deadline,
            "{program} does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `openssl ocsp` as a responder; ready when it says so. (A connection
/// probe would hang it: its one-at-a-time server waits forever on a
/// connection that closes without a request.)
/// python3's http.server on CRL_PORT serving `dir`/www, where the
/// certificates' CRL distribution point points.
fn crl_distribution_point(topo: &Topology, dir: &Path) -> Helper {
    let port = CRL_PORT.to_string();
    helper(
        topo,
        &dir.join("www"),
        "python3",
        &["-m", "http.server", &port, "--bind", "127.0.0.1"],
        CRL_PORT,
    )
}

fn ocsp_responder(topo: &Topology, dir: &Path) -> Helper {
    use std::io::BufRead;
    // OpenSSL 3.0 takes a port number only (all addresses of the
    // namespace, which has no route out).
    let port = OCSP_PORT.to_string();
    let mut child = topo
        .command("srv", "openssl")
        .args([
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            "ca.pem",
            "-rsigner",
            "resp.pem",
            "-rkey",
            "resp.key",
            "-port",
            &port,
            "-ndays",
            "1",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let helper = Helper(child);
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        if line
            .unwrap()
            .contains("waiting for OCSP client connections")
        {
            // Keep reading: its later lines must not meet a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return helper;
        }
    }
    panic!("openssl ocsp ended before it listened");
}

/// `ras server` with `certificate` lines added to `[certificate]`.
fn server(topo: &Topology, dir: &Path, name: &str, certificate: &str) -> Server {
    server_with(topo, dir, name, certificate, "")
}

/// The same with `ipsec` lines added to `[ipsec]`, and a user for PPP.
fn server_with(topo: &Topology, dir: &Path, name: &str, certificate: &str, ipsec: &str) -> Server {
    let state = dir.join(format!("state-{name}"));
    let config = dir.join(format!("{name}.toml"));
    let (chain, key, ca) = (
        dir.join("server.pem"),
        dir.join("server.key"),
        dir.join("ca.pem"),
    );
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-ocsp\"\n\n\
             [sstp]\nlisten = []\n\n[pptp]\nlisten = []\n\n\
             [certificate]\nchain = {chain:?}\nkey = {key:?}\n{certificate}\n\n\
             [ipsec]\nlisten = \"{SERVER_FOR_CLI1}\"\n{ipsec}\n\n\
             [ikev2]\nauth = [\"certificate\"]\nclient_ca = {ca:?}\nlocal_id = \"{SERVER_FOR_CLI1}\"\n\n\
             [tun]\nname = \"rasoc{name}\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir, "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    Server::start(topo, &config)
}

/// `ras connect ikev2://` from cli1 with the client certificate `name`.
fn login(topo: &Topology, dir: &Path, name: &str) -> Client {
    login_from(topo, dir, name, "cli1", "rasocc0")
}

/// The same from `role`, on TUN `tun`.
fn login_from(topo: &Topology, dir: &Path, name: &str, role: &'static str, tun: &str) -> Client {
    let mut cmd = topo.command(role, RAS);
    cmd.args([
        "connect",
        &format!("ikev2://{SERVER_FOR_CLI1}"),
        "--user",
        "unused",
    ])
    .arg("--cert")
    .arg(dir.join(format!("{name}.pem")))
    .arg("--key")
    .arg(dir.join(format!("{name}.key")))
    .arg("--ca")
    .arg(dir.join("ca.pem"))
    .args(["--no-dns", "--tun-name", tun]);
    spawn_client(cmd, role, tun)
}

fn connects(topo: &Topology, dir: &Path, name: &str) {
    let mut client = login(topo, dir, name);
    let addr = wait_address(topo, &mut client, Duration::from_secs(20));
    if addr.is_none() {
        let (_, text) = finish(client, Duration::from_secs(5));
        panic!("{name} did not connect: {text}");
    }
    interrupt(&client);
    let _ = finish(client, Duration::from_secs(10));
}

fn refused(topo: &Topology, dir: &Path, name: &str) {
    let client = login(topo, dir, name);
    let (ok, text) = finish(client, Duration::from_secs(30));
    assert!(!ok, "{name} was let in: {text}");
}

/// Root and namespaces, `openssl ocsp` (the responder) and python3's
/// http.server (the CRL distribution point); else the test is skipped, or
/// fails under RAS_INTEROP_REQUIRED=1.
fn can_run_with_openssl_and_python() -> bool {
    if !can_run() {
        return false;
    }
    if !have("openssl", "version") || !have("python3", "--version") {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but openssl or python3 is missing");
        }
        eprintln!("SKIPPED (e2e): needs openssl and python3");
        return false;
    }
    true
}

#[test]
fn client_certificates_are_checked_by_ocsp_and_by_the_crl_distribution_point() {
    if !can_run_with_openssl_and_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_pki(dir);
    let topo = Topology::create("rasocsp").expect("namespaces");
    let responder = ocsp_responder(&topo, dir);

    // (a), (b): OCSP with strict.
    let srv = server(
        &topo,
        dir,
        "a",
        "ocsp = \"if-present\"\ncrl_policy = \"strict\"",
    );
    connects(&topo, dir, "good");
    srv.expect(
        &format!("certificate serial 10:00: good, by OCSP at http://127.0.0.1:{OCSP_PORT}/"),
        Duration::from_secs(5),
    );
    refused(&topo, dir, "revoked");
    let line = srv.expect(
        "certificate serial 10:01 revoked on",
        Duration::from_secs(5),
    );
    eprintln!("refusal: {line}");
    assert!(
        line.contains("(keyCompromise)")
            && line.contains(&format!("by OCSP at http://127.0.0.1:{OCSP_PORT}/")),
        "{line}"
    );

    // A responder that never answers holds only the login that asks it:
    // "good" (answered already, cached until nextUpdate) connects from
    // cli2 while "late" (serial 1004, never asked about) waits on it from
    // cli1, and is refused when the 5 s deadline passes.
    drop(responder);
    let script = format!(
        "import socket, time\ns = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {OCSP_PORT}))\ns.listen(16)\ntime.sleep(600)\n"
    );
    let silent = helper(&topo, dir, "python3", &["-c", &script], OCSP_PORT);
    let out = topo
        .command("cli2", "ip")
        .args(["route", "add", "10.201.1.0/24", "via", "10.201.2.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let waiting = login(&topo, dir, "late");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let mut other = login_from(&topo, dir, "good", "cli2", "rasocc1");
    let addr = wait_address(&topo, &mut other, Duration::from_secs(4));
    let connected_after = started.elapsed();
    assert!(
        addr.is_some() && connected_after < Duration::from_millis(4_500),
        "a second client waited on the first one's responder ({connected_after:?})"
    );
    eprintln!("the other client was up after {connected_after:?}, the first still waiting");
    srv.expect(
        &format!("certificate serial 10:00: good, by OCSP at http://127.0.0.1:{OCSP_PORT}/ (cached answer)"),
        Duration::from_secs(1),
    );
    let (ok, text) = finish(waiting, Duration::from_secs(30));
    let refused_after = started.elapsed();
    assert!(!ok, "{text}");
    assert!(refused_after >= Duration::from_secs(5), "{refused_after:?}");
    eprintln!("the first client was refused after {refused_after:?}");
    let line = srv.expect(
        "certificate serial 10:04: revocation status unknown",
        Duration::from_secs(5),
    );
    assert!(
        line.contains(&format!(
            "OCSP at http://127.0.0.1:{OCSP_PORT}/: no answer within 5 s"
        )) && line.contains("refused (crl_policy \"strict\")"),
        "{line}"
    );
    interrupt(&other);
    let _ = finish(other, Duration::from_secs(10));
    drop(silent);
    drop(srv);

    // (c): the responder down.
    let srv = server(
        &topo,
        dir,
        "c",
        "ocsp = \"if-present\"\ncrl_policy = \"strict\"",
    );
    refused(&topo, dir, "good");
    let line = srv.expect(
        "certificate serial 10:00: revocation status unknown",
        Duration::from_secs(5),
    );
    assert!(
        line.contains(&format!(
            "OCSP at http://127.0.0.1:{OCSP_PORT}/: cannot connect"
        )) && line.contains("refused (crl_policy \"strict\")"),
        "{line}"
    );
    drop(srv);
    let srv = server(
        &topo,
        dir,
        "d",
        "ocsp = \"if-present\"\ncrl_policy = \"if-available\"",
    );
    connects(&topo, dir, "good");
    let line = srv.expect("revocation status unknown", Duration::from_secs(5));
    assert!(
        line.contains("accepted (crl_policy \"if-available\")"),
        "{line}"
    );
    drop(srv);

    // CRL distribution point, no crl_files, no OCSP.
    let _www = crl_distribution_point(&topo, dir);
    let srv = server(
        &topo,
        dir,
        "e",
        "fetch_crls = true\ncrl_policy = \"strict\"",
    );
    refused(&topo, dir, "revoked");
    let line = srv.expect(
        "certificate serial 10:01 revoked on",
        Duration::from_secs(5),
    );
    assert!(
        line.contains(&format!(
            "by the CRL from http://127.0.0.1:{CRL_PORT}/ca.crl"
        )) && line.contains("(keyCompromise)"),
        "{line}"
    );
    connects(&topo, dir, "good");
    srv.expect(
        &format!("certificate serial 10:00: not revoked, by the CRL from http://127.0.0.1:{CRL_PORT}/ca.crl"),
        Duration::from_secs(5),
    );
}

/// `ras connect l2tp://` from cli1 with the client certificate `name` for
/// IKE and alice's password for PPP.
fn l2tp_login(topo: &Topology, dir: &Path, name: &str) -> Client {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let ca = dir.join("ca.pem");
    let (cert, key, ca) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    connect_to(
        topo,
        "cli1",
        &format!("l2tp://{SERVER_FOR_CLI1}"),
        "alice",
        &dir.join("alice.pw"),
        &["--cert", cert, "--key", key, "--ca", ca, "--no-dns"],
        "rasov1c0",
    )
}

/// An L2TP/IPsec login with `name`'s certificate reaches the LAN.
fn l2tp_connects(topo: &Topology, dir: &Path, name: &str) {
    let mut client = l2tp_login(topo, dir, name);
    let addr = wait_address(topo, &mut client, Duration::from_secs(30));
    if addr.is_none() {
        let (_, text) = finish(client, Duration::from_secs(5));
        panic!("{name} did not connect over L2TP/IPsec: {text}");
    }
    assert!(
        ping(topo, "cli1", interop::netns::LAN_HOST),
        "ping through the L2TP/IPsec tunnel"
    );
    interrupt(&client);
    let _ = finish(client, Duration::from_secs(10));
}

/// An L2TP/IPsec login with `name`'s certificate is refused after Main
/// Mode: the server's line for it (checked to come before any ESP SA of
/// that client), the client ends without a link.
fn l2tp_refused(srv: &Server, topo: &Topology, dir: &Path, name: &str, wanted: &str) -> String {
    let started = Instant::now();
    let client = l2tp_login(topo, dir, name);
    srv.expect_without(
        &format!("authenticated as CN={name}: Main Mode"),
        &format!("(CN={name}): ESP"),
        Duration::from_secs(20),
    );
    let line = srv.expect_without(
        wanted,
        &format!("(CN={name}): ESP"),
        Duration::from_secs(20),
    );
    let (ok, text) = finish(client, Duration::from_secs(40));
    assert!(!ok, "{name} was let in: {text}");
    // The Delete reached the client: it ends at once, not when its Quick
    // Mode retransmissions give up.
    assert!(
        text.contains("deleted the IKE SA before any ESP SA")
            && started.elapsed() < Duration::from_secs(10),
        "{text}"
    );
    eprintln!(
        "{name} refused, the client ended after {:?}",
        started.elapsed()
    );
    line
}

#[test]
fn l2tp_ipsec_client_certificates_are_checked_by_ocsp_and_by_the_crl_distribution_point() {
    if !can_run_with_openssl_and_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_pki(dir);
    let topo = Topology::create("rasocv1").expect("namespaces");
    let ca = dir.join("ca.pem");
    let ipsec = format!("ca_file = {ca:?}");

    // OCSP with strict: good connects, revoked is refused.
    let responder = ocsp_responder(&topo, dir);
    let srv = server_with(
        &topo,
        dir,
        "v1a",
        "ocsp = \"if-present\"\ncrl_policy = \"strict\"",
        &ipsec,
    );
    l2tp_connects(&topo, dir, "good");
    srv.expect(
        &format!("certificate serial 10:00: good, by OCSP at http://127.0.0.1:{OCSP_PORT}/"),
        Duration::from_secs(5),
    );
    let line = l2tp_refused(
        &srv,
        &topo,
        dir,
        "revoked",
        "IKE SA ended: certificate refused: certificate serial 10:01 revoked on",
    );
    eprintln!("refusal: {line}");
    assert!(
        line.contains("(keyCompromise)")
            && line.contains(&format!("by OCSP at http://127.0.0.1:{OCSP_PORT}/")),
        "{line}"
    );
    drop(srv);
    drop(responder);

    // The CRL distribution point, no OCSP, no crl_files.
    let _www = crl_distribution_point(&topo, dir);
    let srv = server_with(
        &topo,
        dir,
        "v1b",
        "fetch_crls = true\ncrl_policy = \"strict\"",
        &ipsec,
    );
    let line = l2tp_refused(
        &srv,
        &topo,
        dir,
        "revoked",
        "IKE SA ended: certificate refused: certificate serial 10:01 revoked on",
    );
    assert!(
        line.contains(&format!(
            "by the CRL from http://127.0.0.1:{CRL_PORT}/ca.crl"
        )) && line.contains("(keyCompromise)"),
        "{line}"
    );
    l2tp_connects(&topo, dir, "good");
    srv.expect(
        &format!("certificate serial 10:00: not revoked, by the CRL from http://127.0.0.1:{CRL_PORT}/ca.crl"),
        Duration::from_secs(5),
    );
}
