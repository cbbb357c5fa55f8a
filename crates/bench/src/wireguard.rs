//! wireguard-go on the same path as the other tunnels (client namespace →
//! server namespace → LAN host), for scale: a user-space tunnel that is
//! not ours, measured in the same run. Needs `wireguard-go` and `wg`
//! (wireguard-tools); skipped with a note when they are missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

/// The devices in the client and the server namespace: not one name, as
/// wireguard-go's control socket (/var/run/wireguard/NAME.sock) is shared
/// by the namespaces.
const CLIENT_DEV: &str = "rbwg0";
const SERVER_DEV: &str = "rbwg1";
const PORT: &str = "51820";
const CLIENT_ADDR: &str = "10.201.250.2";
const SERVER_ADDR: &str = "10.201.250.1";

/// The wireguard-go processes; killed and their devices gone on drop.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether wireguard-go and wg are installed.
pub fn available() -> bool {
    ["wireguard-go", "wg"].iter().all(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

fn keypair(dir: &Path, name: &str) -> anyhow::Result<(std::path::PathBuf, String)> {
    let private = Command::new("wg").arg("genkey").output()?.stdout;
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, &private)?;
    let mut pubkey = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    use std::io::Write;
    pubkey
        .stdin
        .take()
        .context("wg pubkey stdin")?
        .write_all(&private)?;
    let out = pubkey.wait_with_output()?;
    Ok((path, String::from_utf8(out.stdout)?.trim().to_owned()))
}

fn run(topo: &Topology, ns: &str, program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = topo.command(ns, program).args(args).output()?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Brings up wireguard-go between the client and the server namespace
/// (the LAN host routed through it) and returns what `measure` returns.
pub fn through_wireguard<T>(
    topo: &Topology,
    dir: &Path,
    measure: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (client_key, client_pub) = keypair(dir, "wg-client")?;
    let (server_key, server_pub) = keypair(dir, "wg-server")?;
    let mut running = Running(Vec::new());
    for (ns, dev) in [("cli1", CLIENT_DEV), ("srv", SERVER_DEV)] {
        running.0.push(
            topo.command(ns, "wireguard-go")
                .args(["-f", dev])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting wireguard-go")?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (ns, dev) in [("cli1", CLIENT_DEV), ("srv", SERVER_DEV)] {
        while run(topo, ns, "ip", &["link", "show", dev]).is_err() {
            if Instant::now() > deadline {
                bail!("wireguard-go did not create {dev} in {ns}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let endpoint = format!("{SERVER_FOR_CLI1}:{PORT}");
    let (client_key, server_key) = (
        client_key.to_string_lossy().into_owned(),
        server_key.to_string_lossy().into_owned(),
    );
    run(
        topo,
        "srv",
        "wg",
        &[
            "set",
            SERVER_DEV,
            "private-key",
            &server_key,
            "listen-port",
            PORT,
            "peer",
            &client_pub,
            "allowed-ips",
            &format!("{CLIENT_ADDR}/32"),
        ],
    )?;
    run(
        topo,
        "cli1",
        "wg",
        &[
            "set",
            CLIENT_DEV,
            "private-key",
            &client_key,
            "peer",
            &server_pub,
            "allowed-ips",
            "0.0.0.0/0",
            "endpoint",
            &endpoint,
        ],
    )?;
    for (ns, dev, addr) in [
        ("cli1", CLIENT_DEV, CLIENT_ADDR),
        ("srv", SERVER_DEV, SERVER_ADDR),
    ] {
        run(
            topo,
            ns,
            "ip",
            &["addr", "add", &format!("{addr}/24"), "dev", dev],
        )?;
        // wireguard-go's default; the same 1420 as the lab's run.
        run(topo, ns, "ip", &["link", "set", dev, "mtu", "1420", "up"])?;
    }
    run(
        topo,
        "cli1",
        "ip",
        &[
            "route",
            "replace",
            &format!("{LAN_HOST}/32"),
            "dev",
            CLIENT_DEV,
        ],
    )?;
    let result = measure();
    let _ = run(
        topo,
        "cli1",
        "ip",
        &["route", "del", &format!("{LAN_HOST}/32"), "dev", CLIENT_DEV],
    );
    drop(running);
    result
}
