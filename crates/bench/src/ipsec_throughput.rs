//! The ESP legs of `ras-bench sstp`: iperf3 through `ras connect l2tp://`
//! (IKEv1, transport-mode ESP carrying L2TP and PPP) and `ras connect
//! ikev2://` (tunnel-mode ESP) to `ras server`, each as a share of the
//! bare veth path, with the CPU time of both ends per gigabit moved.
//!
//! ESP goes raw (IP protocol 50) when there is no NAT, which is the case
//! between the bench namespaces; the `udp` legs pass `--udp-encap` so ESP
//! travels in UDP 4500 as behind a NAT, the path UDP segmentation offload
//! (GSO on send, GRO on receive) applies to.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

use crate::{iperf, wait_for_tun, ProcessCost};

/// One ESP leg: the protocol, the ESP suite and whether ESP goes in UDP.
struct Leg {
    scheme: &'static str,
    esp: &'static str,
    udp: bool,
}

const LEGS: [Leg; 5] = [
    Leg {
        scheme: "l2tp",
        esp: "aes128gcm16",
        udp: false,
    },
    Leg {
        scheme: "l2tp",
        esp: "aes128gcm16",
        udp: true,
    },
    Leg {
        scheme: "l2tp",
        esp: "aes128-sha1",
        udp: false,
    },
    Leg {
        scheme: "ikev2",
        esp: "aes128gcm16",
        udp: true,
    },
    Leg {
        scheme: "ikev2",
        esp: "aes128gcm16",
        udp: false,
    },
];

/// What the legs need from the run around them.
pub(crate) struct Bench<'a> {
    pub topo: &'a Topology,
    pub ras: &'a Path,
    pub dir: &'a Path,
    pub server_pid: u32,
    pub seconds: u32,
    pub streams: u32,
    /// Bits per second of the bare veth path, measured before.
    pub bare: f64,
    pub l2tp: bool,
    pub ikev2: bool,
}

/// Runs the L2TP/IPsec and IKEv2 legs asked for, one after the other; a
/// leg that fails costs its line only.
pub(crate) fn run(b: &Bench<'_>) {
    for leg in LEGS.iter() {
        let wanted = match leg.scheme {
            "l2tp" => b.l2tp,
            _ => b.ikev2,
        };
        if !wanted {
            continue;
        }
        let name = format!(
            "{} ({}{})",
            if leg.scheme == "l2tp" {
                "L2TP/IPsec"
            } else {
                "IKEv2"
            },
            leg.esp,
            if leg.udp { ", ESP in UDP" } else { "" }
        );
        if let Err(e) = one_leg(b, leg, &name) {
            println!("throughput, through {name}: failed: {e:#}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn one_leg(b: &Bench<'_>, leg: &Leg, name: &str) -> anyhow::Result<()> {
    let pw = b.dir.join("bench.pw");
    let psk = b.dir.join("state").join("ipsec-psk");
    let tun = "ras-bl0";
    let mut command = b.topo.command("cli1", b.ras.to_str().unwrap_or("ras"));
    command
        .args([
            "connect",
            &format!("{}://{SERVER_FOR_CLI1}", leg.scheme),
            "--user",
            "bench",
        ])
        .arg("--psk-file")
        .arg(&psk)
        .args(["--esp", leg.esp])
        .args(["--no-dns", "--no-ipv6", "--tun-name", tun])
        .args(["--route", &format!("{LAN_HOST}/32")]);
    if leg.scheme == "l2tp" {
        // PPP inside L2TP authenticates the user; IKEv2 with a PSK does not.
        command.arg("--password-file").arg(&pw);
    }
    if leg.udp {
        command.arg("--udp-encap");
    }
    let mut client = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let result = measure(b, client.id(), name, tun);
    let _ = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status();
    let _ = client.wait();
    result
}

fn measure(b: &Bench<'_>, client_pid: u32, name: &str, tun: &str) -> anyhow::Result<()> {
    wait_for_tun(b.topo, tun)?;
    let before = (
        ProcessCost::of(b.server_pid),
        ProcessCost::of(client_pid),
        load_average(),
    );
    let bits = iperf(b.topo, b.seconds, b.streams)?;
    println!(
        "throughput, through {name}: {:8.0} Mbit/s = {:.1}% of bare veth (load {} → {})",
        bits / 1e6,
        bits / b.bare * 100.0,
        before.2,
        load_average()
    );
    let gbits = bits * f64::from(b.seconds) / 1e9;
    for (end, pid, was) in [
        ("server", b.server_pid, before.0),
        ("client", client_pid, before.1),
    ] {
        if let (Some(was), Some(now)) = (was, ProcessCost::of(pid)) {
            println!(
                "  ras {end}: {:.0} ms CPU per Gbit",
                (now.cpu_ms - was.cpu_ms) / gbits
            );
        }
    }
    Ok(())
}

/// The one-minute load average, for the reader of a noisy figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
