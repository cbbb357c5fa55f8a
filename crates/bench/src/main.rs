//! `ras-bench sstp`: measures `ras server` end to end in network
//! namespaces, in one run on this machine:
//!
//! * TCP throughput (iperf3) from a client namespace to an "intranet"
//!   host, first over the bare veth path through the server namespace,
//!   then through an SSTP tunnel (`ras connect`), as a ratio;
//! * full connects per second (TLS + SSTP + PPP with EAP-MSCHAPv2 + IPCP,
//!   then a clean disconnect) from many parallel clients;
//! * throughput through L2TP/IPsec and IKEv2 ESP, raw and in UDP
//!   (`ipsec_throughput.rs`);
//! * the same for L2TP/IPsec (IKEv1 Main Mode + Quick Mode, the L2TP
//!   tunnel and call, PPP with MS-CHAPv2 + IPCP, then the disconnect:
//!   PPP Terminate, CDN, StopCCN and the IPsec Deletes);
//! * for scale, the throughput of wireguard-go on the same path;
//! * the server's memory per idle session with many sessions open, and the
//!   connect rate again while they are.
//!
//! `ras-bench soak` holds thousands of SSTP and PPTP sessions for minutes
//! with random drops and reconnects against FreeRADIUS accounting, and
//! checks that no accounting record and no address is lost (`soak.rs`).
//!
//! Needs root, iperf3, and release builds of `ras` (found next to this
//! binary, or `--ras PATH`):
//!
//!     cargo build --release -p ras -p bench && target/release/ras-bench sstp

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

mod admin_metrics;
mod handshake_flood;
mod ike_burst;
mod interrupt;
mod ipsec_throughput;
mod load;
mod radius_bench;
mod server_under_test;
mod soak;
mod strongswan_esp;
mod torture;
mod torture_items;
mod wireguard;

#[derive(Parser)]
#[command(name = "ras-bench", about = "End-to-end benchmarks of ras server")]
enum Cli {
    /// SSTP, PPTP and L2TP/IPsec: throughput vs bare veth; SSTP and L2TP/IPsec
    /// connects/s; memory per idle SSTP session.
    Sstp(SstpArgs),
    /// RADIUS authentications per second against FreeRADIUS.
    Radius(radius_bench::RadiusArgs),
    /// Thousands of SSTP and PPTP sessions with drops and reconnects for
    /// minutes, accounting to FreeRADIUS: no record lost, no address leaked,
    /// memory flat.
    Soak(soak::SoakArgs),
    /// A million malformed items at every listener while sessions carry
    /// traffic: panics, memory, throughput, drops, log lines and the
    /// server's CPU per bad item (issue 18).
    Torture(torture::TortureArgs),
    /// Issue 18: a connect flood, slow and half-open clients against SSTP
    /// while established sessions carry iperf3; admission of new clients.
    HandshakeFlood(handshake_flood::HandshakeFloodArgs),
    /// Issue 14: a burst of IKEv2 handshakes (PSK, or certificate +
    /// EAP-MSCHAPv2) from one light generator against any responder, for
    /// scripts/ikev2-bench (`GENERATOR=ras`).
    IkeBurst(ike_burst::IkeBurstArgs),
}

#[derive(clap::Args, Clone)]
pub struct SstpArgs {
    /// The `ras` binary (default: next to this one).
    #[arg(long)]
    ras: Option<PathBuf>,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Connects in the connect-rate test.
    #[arg(long, default_value_t = 2000)]
    connects: usize,
    /// Parallel clients in the connect-rate test.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Idle sessions held open for the memory test.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Skip the throughput part (no iperf3).
    #[arg(long)]
    no_throughput: bool,
    /// Parallel TCP streams in each iperf3 run.
    #[arg(long, default_value_t = 1)]
    streams: u32,
    /// Skip the PPTP throughput run.
    #[arg(long)]
    no_pptp: bool,
    /// Skip the L2TP/IPsec throughput runs.
    #[arg(long)]
    no_l2tp: bool,
    /// Skip the IKEv2 (tunnel-mode ESP) throughput runs.
    #[arg(long)]
    no_ikev2: bool,
    /// Skip the comparison with strongSwan's ESP (`ras connect ikev2://`
    /// against charon with kernel-libipsec, interop/strongswan.sh), which
    /// otherwise follows the IKEv2 legs.
    #[arg(long)]
    no_strongswan: bool,
    /// Skip the wireguard-go throughput run (for scale; needs wireguard-go
    /// and wg installed, else it is skipped anyway).
    #[arg(long)]
    no_wireguard: bool,
    /// Connects in the L2TP/IPsec connect-rate test (0: skip it).
    #[arg(long, default_value_t = 500)]
    l2tp_connects: usize,
    /// Parallel clients in the L2TP/IPsec connect-rate test. The IKE
    /// responder admits 16 half-open Main Modes per source address (its
    /// flood guard) and every client here has the same address: more
    /// would measure refusals and retransmissions.
    #[arg(long, default_value_t = 16)]
    l2tp_parallel: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    match Cli::parse() {
        Cli::Sstp(args) => sstp(args),
        Cli::Radius(args) => radius_bench::run(args),
        Cli::Soak(args) => soak::run(args),
        Cli::Torture(args) => torture::run(args),
        Cli::HandshakeFlood(args) => handshake_flood::run(args),
        Cli::IkeBurst(args) => ike_burst::run(args),
    }
}

fn tracing_subscriber_init() {}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) fingerprint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn ras_binary(ras: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match ras {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?.with_file_name("ras"),
    };
    if !path.is_file() {
        bail!(
            "no ras binary at {} (build it: cargo build --release -p ras)",
            path.display()
        );
    }
    Ok(path)
}

fn start_server(topo: &Topology, ras: &Path, dir: &Path, ports: usize) -> anyhow::Result<Server> {
    let config = dir.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nserver_name = \"ras-bench\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\nports = {ports}\n\n[pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\"]\n\n[addresses]\nipv4_pool = [\"10.0.10.20-10.0.10.250\", \"10.100.0.1-10.100.255.250\"]\nipv6_prefix = \"off\"\n\n[ppp]\necho_interval_secs = 0\n\n[tun]\nname = \"ras-bench0\"\n\n[ikev2]\nauth = [\"eap\", \"psk\"]\n",
            dir.join("state")
        ),
    )?;
    let pw = dir.join("bench.pw");
    std::fs::write(&pw, "bench-password\n")?;
    let status = Command::new(ras)
        .args(["user", "--config"])
        .arg(&config)
        .args(["add", "bench", "--password-file"])
        .arg(&pw)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("ras user add failed");
    }
    spawn_server(topo, ras, &config)
}

/// Starts `ras server --config CONFIG` in the server namespace and waits
/// for its ready line.
pub(crate) fn spawn_server(topo: &Topology, ras: &Path, config: &Path) -> anyhow::Result<Server> {
    let mut child = topo
        .command("srv", ras.to_str().unwrap())
        .args(["server", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    let mut fingerprint = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(fp) = line.split("fingerprint ").nth(1) {
            fingerprint = fp.trim().to_owned();
        }
        if line.starts_with("ras server:") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    if fingerprint.is_empty() {
        bail!("ras server did not start");
    }
    Ok(Server { child, fingerprint })
}

/// iperf3 from cli1 to the LAN host; returns received bits per second.
pub(crate) fn iperf(topo: &Topology, seconds: u32, streams: u32) -> anyhow::Result<f64> {
    iperf_between(
        &topo.ns("lan"),
        &topo.ns("cli1"),
        LAN_HOST,
        seconds,
        streams,
    )
}

/// iperf3 from namespace `client_ns` to `server`, whose iperf3 listens in
/// namespace `server_ns`; returns received bits per second.
pub(crate) fn iperf_between(
    server_ns: &str,
    client_ns: &str,
    server: &str,
    seconds: u32,
    streams: u32,
) -> anyhow::Result<f64> {
    let mut listener = in_namespace(server_ns, "iperf3")
        .args(["-s", "-1", "-B", server])
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let out = in_namespace(client_ns, "iperf3")
        .args([
            "-c",
            server,
            "-t",
            &seconds.to_string(),
            "-P",
            &streams.to_string(),
            "-J",
        ])
        .output()
        .context("running iperf3 (apt-get install iperf3)")?;
    let _ = listener.wait();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("iperf3 -J output")?;
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("iperf3: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `ip netns exec NS PROGRAM`.
pub(crate) fn in_namespace(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// CPU time and context switches of a process (all its threads) so far.
#[derive(Clone, Copy)]
pub(crate) struct ProcessCost {
    pub(crate) cpu_ms: f64,
    pub(crate) switches: u64,
}

impl ProcessCost {
    pub(crate) fn of(pid: u32) -> Option<ProcessCost> {
        // /proc/PID/stat fields 14 and 15 (utime, stime) in clock ticks,
        // after the parenthesised command name.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ, the unit of /proc times: 100 on every Linux port
        // (sysconf(_SC_CLK_TCK)).
        let hz = 100;
        let mut switches = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let Ok(task) = task else { continue };
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                if line.starts_with("voluntary_ctxt_switches:")
                    || line.starts_with("nonvoluntary_ctxt_switches:")
                {
                    switches += line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        Some(ProcessCost {
            cpu_ms: ticks as f64 * 1000.0 / hz as f64,
            switches,
        })
    }
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")
}

fn sstp(args: SstpArgs) -> anyhow::Result<()> {
    if !interop::netns::is_root() {
        bail!("ras-bench needs root (network namespaces, TUN)");
    }
    raise_fd_limit();
    let ras = ras_binary(args.ras.as_deref())?;
    let dir = std::env::temp_dir().join(format!("ras-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    interrupt::clean_up_on_signal("rasbench", &dir);
    let topo = Topology::create("rasbench").map_err(anyhow::Error::msg)?;
    // Thousands of held sessions take as many local ports in cli1, all
    // to one server address and port: with the default range (28,232
    // ports) each new connect's port search in the kernel
    // (`__inet_hash_connect`) grew until the load generator, not the
    // server, set the connect rate (half its CPU at 15,000 sessions).
    many_client_ports(&topo, "cli1");
    let ports = args.sessions + args.parallel + 16;
    let server = start_server(&topo, &ras, &dir, ports)?;
    println!(
        "machine: {} CPUs; ras server in a namespace, clients in another",
        num_cpus()
    );

    let mut bare = f64::NAN;
    if !args.no_throughput {
        // Bare path: client → server namespace (forwarding) → LAN host.
        let run = |ns: &str, a: &[&str]| -> anyhow::Result<()> {
            let out = topo.command(ns, "ip").args(a).output()?;
            if !out.status.success() {
                bail!("ip {a:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        run(
            "cli1",
            &["route", "add", "172.31.0.0/24", "via", SERVER_FOR_CLI1],
        )?;
        run(
            "lan",
            &["route", "add", "10.201.0.0/16", "via", "172.31.0.1"],
        )?;
        bare = iperf(&topo, args.seconds, args.streams)?;
        println!("throughput, bare veth path:  {:8.0} Mbit/s", bare / 1e6);
        if !args.no_wireguard && wireguard::available() {
            // For scale only: a failure here costs this line, not the run.
            match wireguard::through_wireguard(&topo, &dir, || {
                iperf(&topo, args.seconds, args.streams)
            }) {
                Ok(wg) => println!(
                    "throughput, through wireguard-go: {:8.0} Mbit/s = {:.1}% of bare veth",
                    wg / 1e6,
                    wg / bare * 100.0
                ),
                Err(e) => println!("throughput, through wireguard-go: failed: {e:#}"),
            }
        } else if !args.no_wireguard {
            println!(
                "throughput, through wireguard-go: skipped (wireguard-go and wg not installed)"
            );
        }
        // Through the tunnel: a /32 for the LAN host beats the /24.
        let mut client = sstp_tunnel(
            &topo,
            &ras,
            &dir.join("bench.pw"),
            &server.fingerprint,
            "ras-bc0",
        )?;
        let (server_before, client_before) = (
            ProcessCost::of(server.child.id()),
            ProcessCost::of(client.id()),
        );
        let tunnel = iperf(&topo, args.seconds, args.streams)?;
        println!(
            "throughput, through SSTP:    {:8.0} Mbit/s = {:.0}% of bare veth",
            tunnel / 1e6,
            tunnel / bare * 100.0
        );
        print_costs(
            [
                ("server", server.child.id(), server_before),
                ("client", client.id(), client_before),
            ],
            tunnel * f64::from(args.seconds),
        );
        let _ = Command::new("kill")
            .args(["-INT", &client.id().to_string()])
            .status();
        let _ = client.wait();
    }

    if !args.no_throughput && !args.no_pptp {
        let pw = dir.join("bench.pw");
        // The same through PPTP (GRE + MPPE-128 stateless).
        let mut client = topo
            .command("cli1", ras.to_str().unwrap())
            .args([
                "connect",
                &format!("pptp://{SERVER_FOR_CLI1}"),
                "--user",
                "bench",
                "--password-file",
            ])
            .arg(&pw)
            .args(["--no-dns", "--no-ipv6", "--tun-name", "ras-bp0"])
            .args(["--route", &format!("{LAN_HOST}/32")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        wait_for_tun(&topo, "ras-bp0")?;
        let (server_before, client_before) = (
            ProcessCost::of(server.child.id()),
            ProcessCost::of(client.id()),
        );
        let pptp = iperf(&topo, args.seconds, args.streams)?;
        println!(
            "throughput, through PPTP (MPPE-128): {:8.0} Mbit/s = {:.0}% of bare veth",
            pptp / 1e6,
            pptp / bare * 100.0
        );
        print_costs(
            [
                ("server", server.child.id(), server_before),
                ("client", client.id(), client_before),
            ],
            pptp * f64::from(args.seconds),
        );
        let _ = Command::new("kill")
            .args(["-INT", &client.id().to_string()])
            .status();
        let _ = client.wait();
    }

    if !args.no_throughput && (!args.no_l2tp || !args.no_ikev2) {
        ipsec_throughput::run(&ipsec_throughput::Bench {
            topo: &topo,
            ras: &ras,
            dir: &dir,
            server_pid: server.child.id(),
            seconds: args.seconds,
            streams: args.streams,
            bare,
            l2tp: !args.no_l2tp,
            ikev2: !args.no_ikev2,
        });
    }
    if !args.no_throughput && !args.no_ikev2 && !args.no_strongswan {
        strongswan_esp::run(&strongswan_esp::Leg {
            ras: &ras,
            dir: &dir,
            seconds: args.seconds,
            streams: args.streams,
        });
    }

    if args.l2tp_connects > 0 {
        let psk = std::fs::read_to_string(dir.join("state").join("ipsec-psk"))
            .context("the server's IPsec pre-shared key")?;
        let load = Arc::new(load::Load {
            target: format!("l2tp://{SERVER_FOR_CLI1}"),
            trust: load::ServerTrust::Psk(psk.lines().next().unwrap_or("").as_bytes().to_vec()),
            user: "bench".into(),
            password: "bench-password".into(),
        });
        connect_rate(
            &topo,
            &load,
            (args.l2tp_connects, args.l2tp_parallel),
            "full L2TP/IPsec connects (IKEv1 Main Mode + Quick Mode + L2TP tunnel and call + MS-CHAPv2 + IPCP + disconnect):",
        )?;
    }

    let target = format!("sstp://{SERVER_FOR_CLI1}");
    let fp = server.fingerprint.clone();
    let load = load::Load {
        target,
        trust: load::ServerTrust::Fingerprint(fp),
        user: "bench".into(),
        password: "bench-password".into(),
    };
    let load = Arc::new(load);
    if args.connects == 0 && args.sessions == 0 {
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    // Connect rate.
    connect_rate(
        &topo,
        &load,
        (args.connects, args.parallel),
        "full connects (TLS + SSTP + EAP-MSCHAPv2 + IPCP + disconnect):",
    )?;

    // Memory per idle session.
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(server.child.id())?;
    let started = Instant::now();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let load = load.clone();
        let ns = topo.ns("cli1");
        let n = args.sessions;
        std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || load.hold_sessions(n, held_tx))
                .map_err(anyhow::Error::msg)
        })
    };
    let held = held_rx
        .recv_timeout(Duration::from_secs(600))
        .context("sessions did not come up")?;
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(server.child.id())?;
    let up = held.up;
    println!(
        "memory: {up} idle sessions up in {:.1} s; server RSS {before} KiB → {after} KiB = {:.1} KiB per session",
        started.elapsed().as_secs_f64(),
        (after.saturating_sub(before)) as f64 / up.max(1) as f64
    );
    if held.refused > 0 {
        println!(
            "  {} of {} sessions did not come up: {}",
            held.refused, args.sessions, held.causes
        );
    }
    // The connect rate again with those sessions open: what a login costs
    // that grows with the sessions already there (a reconnect storm after
    // an outage meets a full table).
    if args.connects > 0 && up > 0 {
        let what = format!("connects with {up} idle sessions open:");
        connect_rate(&topo, &load, (args.connects, args.parallel), &what)?;
    }
    drop(server);
    let _ = holder.join();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `count` full connects of `load` from cli1, `parallel` at a time,
/// printed as one line that starts with `what`.
fn connect_rate(
    topo: &Topology,
    load: &Arc<load::Load>,
    (count, parallel): (usize, usize),
    what: &str,
) -> anyhow::Result<()> {
    let (done, secs, failures) = topo
        .in_ns("cli1", {
            let load = load.clone();
            move || load.connect_rate(count, parallel)
        })
        .map_err(anyhow::Error::msg)??;
    println!(
        "{what} {done} with {parallel} parallel in {secs:.2} s = {:.0}/s; {failures} failed",
        done as f64 / secs
    );
    Ok(())
}

/// `ras connect sstp://` from cli1 as user `bench` (password in `pw`),
/// with a /32 route to the LAN host through TUN `tun`, once it is up.
pub(crate) fn sstp_tunnel(
    topo: &Topology,
    ras: &Path,
    pw: &Path,
    fingerprint: &str,
    tun: &str,
) -> anyhow::Result<Child> {
    let client = topo
        .command("cli1", ras.to_str().unwrap_or("ras"))
        .args([
            "connect",
            &format!("sstp://{SERVER_FOR_CLI1}"),
            "--user",
            "bench",
            "--password-file",
        ])
        .arg(pw)
        .args([
            "--fingerprint",
            fingerprint,
            "--no-dns",
            "--no-ipv6",
            "--tun-name",
            tun,
        ])
        .args(["--route", &format!("{LAN_HOST}/32")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    wait_for_tun(topo, tun)?;
    Ok(client)
}

pub(crate) fn wait_for_tun(topo: &Topology, tun: &str) -> anyhow::Result<()> {
    wait_for_tun_in(&topo.ns("cli1"), tun)
}

/// Waits (up to 20 s) until `tun` in namespace `ns` has an IPv4 address.
pub(crate) fn wait_for_tun_in(ns: &str, tun: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let out = in_namespace(ns, "ip")
            .args(["-4", "-o", "addr", "show", "dev", tun])
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains("inet ") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the benchmark client did not come up")
}

/// CPU time and context switches per gigabit each process spent since
/// its `before` snapshot, `bits` having moved: less noisy than the
/// throughput on a shared machine.
fn print_costs<const N: usize>(processes: [(&str, u32, Option<ProcessCost>); N], bits: f64) {
    let gbits = bits / 1e9;
    for (name, pid, before) in processes {
        if let (Some(b), Some(a)) = (before, ProcessCost::of(pid)) {
            println!(
                "  ras {name}: {:.0} ms CPU and {:.0} context switches per Gbit",
                (a.cpu_ms - b.cpu_ms) / gbits,
                (a.switches - b.switches) as f64 / gbits
            );
        }
    }
}

pub(crate) fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Lets namespace `ns` open connections to one server address and port
/// by the tens of thousands: every local port (not the default 28,232),
/// and a port in TIME_WAIT reused for a new connect (RFC 7323
/// timestamps keep the two apart). A connection we end with FIN after
/// the server's own FIN sits in TIME_WAIT for 60 s however its linger
/// is set, so without this a flood at 1,500 connections per second ran
/// out of ports after 18 s and its later phases failed with
/// EADDRNOTAVAIL. The namespace is the bench's own and goes with it.
pub(crate) fn many_client_ports(topo: &Topology, ns: &str) {
    for setting in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        let _ = topo.command(ns, "sysctl").args(["-qw", setting]).status();
    }
}

/// Many sessions need many descriptors: as root, raise both limits to a
/// million (the kernel's default fs.nr_open; the server and FreeRADIUS
/// inherit it); otherwise the soft limit to the hard one.
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const MANY: u64 = 1 << 20;
    if setrlimit(Resource::RLIMIT_NOFILE, MANY, MANY).is_ok() {
        return;
    }
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
