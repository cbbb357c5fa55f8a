//! `ras connect l2tp://` against a second L2TP server we did not write:
//! stock SoftEther VPN Server 5.01 (Debian 12 package), started by
//! `interop/softether.sh` in its own namespace, userspace L2TP/IPsec with
//! a pre-shared key (or plain L2TP with `--no-ipsec`). SoftEther offers
//! EAP, MS-CHAPv2 and PAP; its hub's SecureNAT hands out the address by
//! DHCP (192.168.30.10–200) and its virtual host 192.168.30.1 answers
//! ping. The test checks the address, pings SecureNAT with patterned
//! 1200-byte payloads (ping compares every echoed byte), and that SIGINT
//! disconnects cleanly (SoftEther's own log says so: the L2TP call ended
//! from our side and, with IPsec, the IKE SA was deleted).
//!
//! SoftEther's quirks the initiator copes with: it ignores Main Mode
//! without NAT-T vendor IDs, names itself ID_IPV4_ADDR 0.0.0.0, and hashes
//! 0.0.0.0 into its NAT-D payloads, so both ends look as if behind a NAT and
//! ESP goes UDP-encapsulated on port 4500.
//!
//! Skips (or fails with `RAS_INTEROP_REQUIRED=1`) when SoftEther cannot be
//! installed or started.

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop::softether::{self, SoftEther};

const RAS: &str = env!("CARGO_BIN_EXE_ras");
const TUN: &str = "ras-se-l2tp";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tun_address(se: &SoftEther) -> Option<Ipv4Addr> {
    let out = se
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

/// Whether the route to `to` through the TUN is there: the client adds it
/// just after giving the TUN its address, so the address alone is too early
/// to ping.
fn routed(se: &SoftEther, to: Ipv4Addr) -> bool {
    se.command_in_client_ns("ip")
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

/// One SoftEther per machine, and one call at a time in this process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn connect_to_softether(ipsec: bool) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(se) = softether::start_or_skip() else {
        return;
    };
    eprintln!("SoftEther {} at {}", se.version, se.server_ip);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{}\n", se.password)).unwrap();
    let psk = dir.path().join("psk");
    std::fs::write(&psk, format!("{}\n", se.psk)).unwrap();
    let snat = se.securenat_ip;
    let log_mark = se.server_log().len();

    let started = Instant::now();
    let mut command = se.command_in_client_ns(RAS);
    command
        .args([
            "connect",
            &format!("l2tp://{}", se.server_ip),
            "--user",
            &se.user,
            "--password-file",
        ])
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
                &format!("{snat}/32"),
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
        address = tun_address(&se);
        if address.is_some() && routed(&se, snat) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let Some(address) = address else {
        let _ = client.0.kill();
        let mut text = String::new();
        let _ = client.0.stderr.take().unwrap().read_to_string(&mut text);
        panic!("the L2TP link to SoftEther did not come up within 60 s:\n{text}");
    };
    eprintln!(
        "up with {address} after {:.1} s (IPsec: {ipsec})",
        started.elapsed().as_secs_f64()
    );
    // From SecureNAT's DHCP pool, not the virtual host's own address.
    assert_eq!(address.octets()[..3], se.pool_prefix, "{address}");
    assert_ne!(address, snat);
    assert!(address.octets()[3] >= 10 && address.octets()[3] <= 200);
    let stdout = client.0.stdout.take().unwrap();

    // Patterned payloads: ping checks every byte of each echo reply and
    // reports "wrong data byte" on a mismatch.
    let ping = se
        .command_in_client_ns("ping")
        .args([
            "-c",
            "5",
            "-i",
            "0.3",
            "-W",
            "3",
            "-s",
            "1200",
            "-p",
            "a55a0ff0c33c",
            &snat.to_string(),
        ])
        .output()
        .unwrap();
    let ping_text = String::from_utf8_lossy(&ping.stdout).into_owned();
    assert!(ping.status.success(), "ping {snat}: {ping_text}");
    assert!(!ping_text.contains("wrong data"), "{ping_text}");
    assert!(ping_text.contains(" 0% packet loss"), "{ping_text}");

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
    if ipsec {
        assert!(!text.contains("warning: plain L2TP"), "{text}");
    } else {
        assert!(text.contains("warning: plain L2TP"), "{text}");
    }
    assert!(tun_address(&se).is_none(), "TUN removed");

    // SoftEther saw the call end from our side (CDN/StopCCN), and with
    // IPsec our Delete of the IKE SA. It writes its log a moment later.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = |log: &str| {
        log.contains("The PPP session is disconnected because the upper-layer protocol \"L2TP\" has been disconnected")
            && (!ipsec || log.contains("This IKE SA is deleted"))
    };
    while Instant::now() < deadline {
        seen = se.server_log().get(log_mark..).unwrap_or("").to_owned();
        if ended(&seen) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ended(&seen), "SoftEther's log after the call:\n{seen}");
}

#[test]
fn ras_connect_l2tp_ipsec_against_softether() {
    connect_to_softether(true);
}

#[test]
fn ras_connect_plain_l2tp_against_softether() {
    connect_to_softether(false);
}
