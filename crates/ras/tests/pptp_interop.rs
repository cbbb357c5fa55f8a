//! `ras connect pptp://` against a real PPTP server we did not write:
//! pptpd + pppd in the interop VM, requiring MS-CHAPv2 and MPPE-128
//! (stateless, Linux's ppp_mppe). The link comes up, ping and a 10 MB echo
//! transfer pass (MPPE both ways, compared byte for byte), and the client
//! disconnects cleanly on SIGINT (LCP Terminate, Call-Clear-Request,
//! Stop-Control-Connection).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TUN: &str = "ras-i-pptp";

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

#[test]
fn ras_connect_against_pptpd() {
    if !interop::require_root_or_skip() {
        return;
    }
    let vm = interop::Vm::shared().expect("interop VM");
    assert!(vm.has_server("pptp"), "the VM runs no pptpd");
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", user.password)).unwrap();
    let local: Ipv4Addr = vm
        .get("PPTP_LOCAL")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Ipv4Addr::new(192, 168, 50, 1));
    let target = format!("pptp://{}:{}", vm.guest_ip, vm.pptp_port);
    let started = Instant::now();
    let mut client = Killed(
        vm.command_in_ns(RAS)
            .args(["connect", &target, "--user", &user.name, "--password-file"])
            .arg(&pw)
            .args([
                "--no-dns",
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

    // The link comes up with an address from sstpd's pool.
    let mut address = None;
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = client.0.try_wait().unwrap() {
            let mut text = String::new();
            let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
            panic!("ras connect exited ({status}) before the link came up:\n{text}");
        }
        address = tun_address(vm);
        if address.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let address = address.expect("the PPTP link to pptpd did not come up");
    eprintln!(
        "up with {address} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(address, local);
    let stdout = client.0.stdout.take().unwrap();

    // Ping the PPP server end through the tunnel.
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

    // 10 MB through the guest's echo service, read back and compared.
    let echo_port = vm.echo_port;
    let (sent, back, secs) = vm
        .in_ns(move || {
            let stream =
                TcpStream::connect((local, echo_port)).expect("connect to the echo service");
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut reader = stream.try_clone().unwrap();
            let size = 10 * 1024 * 1024;
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
    eprintln!("10 MB echoed through pptpd (MPPE-128) in {secs:.1} s");

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
    assert!(out.contains("connected to pptp://"), "status line: {out:?}");
    assert!(tun_address(vm).is_none(), "TUN removed");
}

#[test]
fn wrong_password_is_reported_as_691() {
    if !interop::require_root_or_skip() {
        return;
    }
    let vm = interop::Vm::shared().expect("interop VM");
    assert!(vm.has_server("pptp"), "the VM runs no pptpd");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let target = format!("pptp://{}:{}", vm.guest_ip, vm.pptp_port);
    let mut client = Killed(
        vm.command_in_ns(RAS)
            .args([
                "connect",
                &target,
                "--user",
                &vm.user().name,
                "--password-file",
            ])
            .arg(&pw)
            .args(["--no-dns", "--tun-name", "ras-i-pptp-pw", "--reconnect"])
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras connect"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = client.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ras connect kept going with a wrong password"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
    // Permanent: --reconnect gives up at once.
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("authentication failed (error 691)"),
        "stderr: {text}"
    );
}
