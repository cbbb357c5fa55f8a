//! `ras connect` against a real SSTP server we did not write: sstpd
//! (pppd-based, verifying the SSTP crypto binding) in the interop VM, with
//! MS-CHAPv2. The link comes up, ping and a 10 MB echo transfer pass, and
//! the client disconnects cleanly.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TUN: &str = "ras-i-sstp";

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
fn ras_connect_against_sstpd() {
    if !interop::require_root_or_skip() {
        return;
    }
    let vm = interop::Vm::shared().expect("interop VM");
    assert!(vm.has_server("sstp"), "the VM runs no sstpd");
    let user = vm.user().clone();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", user.password)).unwrap();
    let local: Ipv4Addr = vm
        .get("SSTP_LOCAL")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Ipv4Addr::new(192, 168, 20, 1));
    let target = format!("sstp://{}:{}", vm.guest_ip, vm.sstp_port);
    let started = Instant::now();
    let mut client = Killed(
        vm.command_in_ns(RAS)
            .args(["connect", &target, "--user", &user.name, "--password-file"])
            .arg(&pw)
            .arg("--ca")
            .arg(&vm.ca_pem)
            .args([
                "--no-dns",
                "--tun-name",
                TUN,
                "--route",
                &format!("{local}/32"),
            ])
            .env("RUST_LOG", "info")
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
    let address = address.expect("the SSTP link to sstpd did not come up");
    eprintln!(
        "up with {address} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(address, local);

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
    eprintln!("10 MB echoed through sstpd in {secs:.1} s");

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
    assert!(status.success(), "exit after SIGINT: {status}\n{text}");
    assert!(tun_address(vm).is_none(), "TUN removed");
}
