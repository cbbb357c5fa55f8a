//! The strongSwan comparison of the IKEv2 ESP leg (issue 14: tunnel-mode
//! ESP ≥ 5× strongSwan's user-space ESP): the same client, `ras connect
//! ikev2://` with AES-GCM-128 ESP in UDP, against strongSwan's charon with
//! kernel-libipsec (interop/strongswan.sh: namespaces `ras-sw` and
//! `ras-sw-cli`, connection `ikev2-eap`), iperf3 to the address behind its
//! tunnel, and the bare veth of that link in the same run. With one client
//! for both servers, the client's cost is the same on both sides and the
//! servers' CPU per gigabit is compared directly.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::{in_namespace, iperf_between, wait_for_tun_in, ProcessCost};

/// What the strongSwan leg needs from the run around it.
pub(crate) struct Leg<'a> {
    pub ras: &'a Path,
    pub dir: &'a Path,
    pub seconds: u32,
    pub streams: u32,
}

/// Runs the leg, or says in one line why it could not.
pub(crate) fn run(leg: &Leg<'_>) {
    if let Err(e) = measure(leg) {
        println!("throughput, through IKEv2 to strongSwan: not measured: {e:#}");
    }
}

fn measure(leg: &Leg<'_>) -> anyhow::Result<()> {
    let sw = interop::strongswan::StrongSwan::start()
        .map_err(anyhow::Error::msg)
        .context("starting strongSwan (interop/strongswan.sh)")?;
    let server_ns = sw_server_ns(&sw)?;
    let server_ip = sw.server_ip.to_string();
    let target = sw.target.to_string();
    let bare = iperf_between(
        &server_ns,
        &sw.client_ns,
        &server_ip,
        leg.seconds,
        leg.streams,
    )?;
    println!(
        "throughput, strongSwan's bare veth path: {:8.0} Mbit/s",
        bare / 1e6
    );
    let pw = leg.dir.join("strongswan.pw");
    std::fs::write(&pw, format!("{}\n", sw.password))?;
    let tun = "ras-bsw0";
    let mut client = in_namespace(&sw.client_ns, leg.ras.to_str().unwrap_or("ras"))
        .args(["connect", &format!("ikev2://{server_ip}")])
        .args(["--user", &sw.user, "--password-file"])
        .arg(&pw)
        .arg("--ca")
        .arg(&sw.ca)
        .args(["--esp", "aes128gcm16", "--udp-encap"])
        .args(["--no-dns", "--no-ipv6", "--tun-name", tun])
        .args(["--route", &format!("{target}/32")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let result = (|| {
        wait_for_tun_in(&sw.client_ns, tun)?;
        let charon = charon_pid(&sw)?;
        let before = (ProcessCost::of(charon), ProcessCost::of(client.id()));
        let bits = iperf_between(&server_ns, &sw.client_ns, &target, leg.seconds, leg.streams)?;
        println!(
            "throughput, through IKEv2 to strongSwan {} (aes128gcm16, ESP in UDP): {:8.0} Mbit/s = {:.1}% of its bare veth",
            sw.version,
            bits / 1e6,
            bits / bare * 100.0
        );
        let gbits = bits * f64::from(leg.seconds) / 1e9;
        for (end, pid, was) in [
            ("strongSwan charon", charon, before.0),
            ("ras client", client.id(), before.1),
        ] {
            if let (Some(was), Some(now)) = (was, ProcessCost::of(pid)) {
                println!(
                    "  {end}: {:.0} ms CPU per Gbit",
                    (now.cpu_ms - was.cpu_ms) / gbits
                );
            }
        }
        Ok(())
    })();
    let _ = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status();
    let _ = client.wait();
    result
}

/// The namespace charon runs in: the one that holds the server's address.
fn sw_server_ns(sw: &interop::strongswan::StrongSwan) -> anyhow::Result<String> {
    let namespaces = Command::new("ip").args(["netns", "list"]).output()?;
    let server_ip = format!("inet {}/", sw.server_ip);
    for ns in String::from_utf8_lossy(&namespaces.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if ns == sw.client_ns {
            continue;
        }
        let addrs = in_namespace(ns, "ip").args(["-4", "-o", "addr"]).output()?;
        if String::from_utf8_lossy(&addrs.stdout).contains(&server_ip) {
            return Ok(ns.to_owned());
        }
    }
    anyhow::bail!("no namespace holds strongSwan's address {}", sw.server_ip)
}

/// charon's process ID, from the pid file next to its log.
fn charon_pid(sw: &interop::strongswan::StrongSwan) -> anyhow::Result<u32> {
    let file = sw
        .log
        .parent()
        .context("charon's log has no directory")?
        .join("charon.pid");
    std::fs::read_to_string(&file)
        .with_context(|| format!("{}", file.display()))?
        .trim()
        .parse()
        .with_context(|| format!("{}: not a process ID", file.display()))
}
