//! `ras connect l2tp://` against a real L2TP server we did not write:
//! xl2tpd 1.3.18 + pppd in the interop VM, behind strongSwan's IKEv1 PSK
//! connection `l2tp-psk` (transport-mode ESP) or, with `--no-ipsec`, in
//! plain UDP. pppd authenticates with MS-CHAPv2; the link comes up with an
//! address from the guest's L2TP pool, the PPP server end answers ping,
//! 1 MB goes through the guest's echo service and comes back intact, and
//! SIGINT disconnects cleanly (LCP Terminate, CDN, StopCCN, and with
//! IPsec the Deletes, which charon logs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TUN: &str = "ras-i-l2tp";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tun_address(vm: &interop::Vm) -> Option<Ipv4Addr> {
    let out = vm
        .run_in_ns(&["ip", "-4", "-o", "addr", "show", "dev", TUN])
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    addr.split('/').next()?.parse().ok()
}

/// Whether the route to `to` through the TUN is there: the client adds it
/// just after giving the TUN its address, so the address alone is too early
/// to ping ("Network is unreachable" once in a workspace run).
fn routed(vm: &interop::Vm, to: Ipv4Addr) -> bool {
    vm.run_in_ns(&["ip", "-4", "route", "show", "dev", TUN])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w == to.to_string() || w == format!("{to}/32"))
        })
        .unwrap_or(false)
}

/// How many IKE SA Deletes charon has received so far (its log) for the
/// connection `conn`.
fn deletes_received(vm: &interop::Vm, job: &str, conn: &str) -> usize {
    let (rc, out) = vm
        .guest_job(
            job,
            &format!("grep -c 'received DELETE for IKE_SA {conn}' /tmp/charon.log || true"),
            Duration::from_secs(20),
        )
        .expect("guest job");
    assert_eq!(rc, 0, "{out}");
    out.trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// One at a time: while the IPsec test's SA is up, the guest's policy
/// requires ESP for L2TP from our address, which would drop plain L2TP.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How IKE authenticates: the guest's pre-shared key, a client
/// certificate, or no IPsec at all.
enum Ike {
    Psk,
    Certificate(ClientPki),
    Plain,
}

/// A client certificate of a CA made for the test, which the guest's
/// charon is told to trust for the connection `l2tp-cert`.
struct ClientPki {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    ca_pem: String,
}

impl ClientPki {
    /// RSA, like the guest server's key: IKEv1 has one method for both
    /// sides (RFC 2409 §5.1).
    fn new() -> ClientPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let rsa = || {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap()
        };
        let ca_key = rsa();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "ras client test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = rsa();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "ras connect test client");
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("client.pem");
        let key_path = dir.path().join("client.key");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        ClientPki {
            _dir: dir,
            cert: cert_path,
            key: key_path,
            ca_pem: ca_cert.pem(),
        }
    }
}

/// Adds the connection `l2tp-cert` to the guest's charon: its own server
/// certificate (the one IKEv2 and SSTP use: RSA, CN = its address), our
/// client CA, transport mode for L2TP. `@CA@` is replaced by the CA's PEM.
const CERT_CONN_JOB: &str = r#"
D=/tmp/ras-l2tp-cert
rm -rf "$D"; mkdir -p "$D"
cp /etc/swanctl/swanctl.conf "$D/swanctl.conf.orig"
cp /tmp/server.pem /etc/swanctl/x509/ras-test-server.pem
cp /tmp/server.key /etc/swanctl/private/ras-test-server.key
cat > /etc/swanctl/x509ca/ras-test-client-ca.pem <<'PEM'
@CA@PEM
cat > "$D/conn" <<'CONN'
    l2tp-cert {
        version = 1
        fragmentation = yes
        local {
            auth = pubkey
            certs = ras-test-server.pem
        }
        remote {
            auth = pubkey
            cacerts = ras-test-client-ca.pem
        }
        children {
            l2tp {
                mode = transport
                local_ts = dynamic[udp/1701]
                remote_ts = dynamic[udp]
            }
        }
    }
CONN
sed -i "/^connections {/r $D/conn" /etc/swanctl/swanctl.conf
swanctl --load-all --noprompt > "$D/load.log" 2>&1 || { cat "$D/load.log"; exit 6; }
swanctl --list-conns | grep -A3 l2tp-cert
"#;

/// Puts the guest's charon back as it was, and shows what it logged.
const CERT_CONN_RESTORE: &str = r#"
D=/tmp/ras-l2tp-cert
[ -f "$D/swanctl.conf.orig" ] && cp "$D/swanctl.conf.orig" /etc/swanctl/swanctl.conf
rm -f /etc/swanctl/x509ca/ras-test-* /etc/swanctl/x509/ras-test-* /etc/swanctl/private/ras-test-*
swanctl --load-all --noprompt >/dev/null 2>&1
grep -aE "fragment|authentication of|received end entity|l2tp-cert" /tmp/charon.log | tail -n 16 | sed 's/^/CHARON: /'
"#;

fn connect_to_xl2tpd(ike: Ike) {
    if !interop::require_root_or_skip() {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let vm = interop::Vm::shared().expect("interop VM");
    let ipsec = !matches!(ike, Ike::Plain);
    let conn = match ike {
        Ike::Certificate(_) => "l2tp-cert",
        _ => "l2tp-psk",
    };
    if let Ike::Certificate(pki) = &ike {
        let job = CERT_CONN_JOB.replace("@CA@", &pki.ca_pem);
        let (rc, out) = vm
            .guest_job("l2tp-cert-conn", &job, Duration::from_secs(60))
            .expect("guest job");
        assert_eq!(rc, 0, "the l2tp-cert connection: {out}");
    }
    assert!(vm.has_server("l2tp"), "the VM runs no xl2tpd");
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", user.password)).unwrap();
    let psk = dir.path().join("psk");
    std::fs::write(&psk, format!("{}\n", vm.psk)).unwrap();
    let local: Ipv4Addr = vm
        .get("L2TP_LOCAL")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Ipv4Addr::new(192, 168, 60, 1));
    let deletes_before = if ipsec && vm.has_guest_jobs() {
        Some(deletes_received(vm, "l2tp-client-deletes-before", conn))
    } else {
        None
    };
    let target = format!("l2tp://{}", vm.guest_ip);
    let started = Instant::now();
    let mut command = vm.command_in_ns(RAS);
    command
        .args(["connect", &target, "--user", &user.name, "--password-file"])
        .arg(&pw);
    match &ike {
        Ike::Psk => {
            command.arg("--psk-file").arg(&psk);
        }
        Ike::Certificate(pki) => {
            command
                .arg("--cert")
                .arg(&pki.cert)
                .arg("--key")
                .arg(&pki.key)
                .arg("--ca")
                .arg(&vm.ca_pem);
        }
        Ike::Plain => {
            command.arg("--no-ipsec");
        }
    }
    let mut client = Killed(
        command
            .args([
                "--no-dns",
                "--no-ipv6",
                "--tun-name",
                TUN,
                "--route",
                &format!("{local}/32"),
            ])
            .env(
                "RUST_LOG",
                std::env::var("RAS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras connect"),
    );

    let mut address = None;
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = client.0.try_wait().unwrap() {
            let mut text = String::new();
            let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
            panic!("ras connect exited ({status}) before the link came up:\n{text}");
        }
        address = tun_address(vm);
        if address.is_some() && routed(vm, local) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let address = address.expect("the L2TP link to xl2tpd did not come up");
    eprintln!(
        "up with {address} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The guest's pool is 192.168.60.x.
    assert_eq!(address.octets()[..3], [192, 168, 60], "{address}");
    assert_ne!(address, local);
    let stdout = client.0.stdout.take().unwrap();

    let ping = vm
        // Our side is up when its IPCP opens; the guest's pppd may still be
        // configuring its interface (slowly when the host is busy), so wait
        // up to 15 s for three replies instead of giving three requests 3 s.
        .run_in_ns(&[
            "ping",
            "-c",
            "3",
            "-i",
            "0.3",
            "-w",
            "15",
            &local.to_string(),
        ])
        .unwrap();
    assert!(
        ping.status.success(),
        "ping {local}: {}",
        String::from_utf8_lossy(&ping.stdout)
    );

    // 1 MB through the guest's echo service on the PPP server address,
    // read back and compared.
    let echo_port = vm.echo_port;
    let (sent, back, secs) = vm
        .in_ns(move || {
            let stream =
                TcpStream::connect((local, echo_port)).expect("connect to the echo service");
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut reader = stream.try_clone().unwrap();
            let size = 1024 * 1024;
            let data: Vec<u8> = (0..size)
                .map(|i: usize| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let started = Instant::now();
            let to_send = data.clone();
            let writer = std::thread::spawn(move || {
                let mut w = stream;
                w.write_all(&to_send).unwrap();
                w.shutdown(Shutdown::Write).unwrap();
            });
            let mut back = Vec::with_capacity(size);
            reader.read_to_end(&mut back).unwrap();
            writer.join().unwrap();
            (data, back, started.elapsed().as_secs_f64())
        })
        .unwrap();
    assert_eq!(back.len(), sent.len(), "echoed length");
    assert!(back == sent, "echoed bytes differ");
    eprintln!("1 MB echoed through xl2tpd (IPsec: {ipsec}) in {secs:.1} s");

    // Clean disconnect on SIGINT.
    let _ = Command::new("kill")
        .args(["-INT", &client.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
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
    assert!(out.contains("connected to l2tp://"), "status line: {out:?}");
    assert!(text.contains("L2TP call established"), "{text}");
    assert!(text.contains("disconnected"), "{text}");
    if !ipsec {
        assert!(text.contains("warning: plain L2TP"), "{text}");
    }
    assert!(tun_address(vm).is_none(), "TUN removed");
    if let Some(before) = deletes_before {
        let after = deletes_received(vm, "l2tp-client-deletes-after", conn);
        assert!(
            after > before,
            "charon logged no IKE SA Delete from us ({before} before, {after} after)"
        );
    }
}

#[test]
fn ras_connect_l2tp_ipsec_against_xl2tpd_and_strongswan() {
    connect_to_xl2tpd(Ike::Psk);
}

/// `ras connect l2tp://HOST --cert --key --ca`: Main Mode with RSA
/// signatures against the guest's charon (connection `l2tp-cert`), which
/// checks our certificate against the test CA and shows its own server
/// certificate, which we check against the VM's CA.
#[test]
fn ras_connect_l2tp_with_a_certificate_against_strongswan() {
    if !interop::require_root_or_skip() {
        return;
    }
    let vm = interop::Vm::shared().expect("interop VM");
    if !vm.has_guest_jobs() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but the interop guest runs no jobs");
        }
        eprintln!("SKIPPED: the interop guest runs no jobs");
        return;
    }
    /// The guest's charon is put back even when the test fails.
    struct Restore(&'static interop::Vm);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Ok((_, out)) = self.0.guest_job(
                "l2tp-cert-restore",
                CERT_CONN_RESTORE,
                Duration::from_secs(60),
            ) {
                eprintln!("--- the guest's charon on the certificate run:\n{out}");
            }
        }
    }
    let _restore = Restore(vm);
    connect_to_xl2tpd(Ike::Certificate(ClientPki::new()));
}

#[test]
fn ras_connect_plain_l2tp_against_xl2tpd() {
    connect_to_xl2tpd(Ike::Plain);
}
