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

/// How many IKE SA Deletes charon has received so far (its log).
fn deletes_received(vm: &interop::Vm, job: &str) -> usize {
    let (rc, out) = vm
        .guest_job(
            job,
            "grep -c 'received DELETE for IKE_SA l2tp-psk' /tmp/charon.log || true",
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

fn connect_to_xl2tpd(ipsec: bool) {
    if !interop::require_root_or_skip() {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let vm = interop::Vm::shared().expect("interop VM");
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
        Some(deletes_received(vm, "l2tp-client-deletes-before"))
    } else {
        None
    };
    let target = format!("l2tp://{}", vm.guest_ip);
    let started = Instant::now();
    let mut command = vm.command_in_ns(RAS);
    command
        .args(["connect", &target, "--user", &user.name, "--password-file"])
        .arg(&pw);
    if ipsec {
        command.arg("--psk-file").arg(&psk);
    } else {
        command.arg("--no-ipsec");
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
        .run_in_ns(&[
            "ping",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "3",
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
        let after = deletes_received(vm, "l2tp-client-deletes-after");
        assert!(
            after > before,
            "charon logged no IKE SA Delete from us ({before} before, {after} after)"
        );
    }
}

#[test]
fn ras_connect_l2tp_ipsec_against_xl2tpd_and_strongswan() {
    connect_to_xl2tpd(true);
}

#[test]
fn ras_connect_plain_l2tp_against_xl2tpd() {
    connect_to_xl2tpd(false);
}
