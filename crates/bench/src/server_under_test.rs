//! The `ras server` a stress benchmark runs against (torture, handshake
//! flood): started in the server namespace of a `Topology` with every
//! listener, its log read and counted (lines, panics), its liveness and
//! CPU time read from /proc, its sessions up from /metrics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use interop::netns::Topology;

/// What the server wrote: lines counted, panics seen, a few examples.
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) lines: AtomicU64,
    pub(crate) panics: AtomicU64,
    /// Lines written while `sampling` is set: up to 12 examples.
    pub(crate) sampling: AtomicBool,
    pub(crate) samples: Mutex<Vec<String>>,
    /// The first line after `phase_started`, for that phase's row.
    pub(crate) want_example: AtomicBool,
    pub(crate) example: Mutex<Option<String>>,
}

impl Log {
    pub(crate) fn take(self: &Arc<Self>, stream: impl Read + Send + 'static) {
        self.take_lines(BufReader::new(stream).lines());
    }

    pub(crate) fn take_lines(
        self: &Arc<Self>,
        lines: impl Iterator<Item = std::io::Result<String>> + Send + 'static,
    ) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                log.lines.fetch_add(1, Ordering::Relaxed);
                if line.contains("panicked") {
                    log.panics.fetch_add(1, Ordering::Relaxed);
                    eprintln!("server: {line}");
                }
                if log.want_example.swap(false, Ordering::Relaxed) {
                    *log.example.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.clone());
                }
                if log.sampling.load(Ordering::Relaxed) {
                    let mut s = log.samples.lock().unwrap_or_else(|e| e.into_inner());
                    if s.len() < 12 {
                        s.push(line);
                    }
                }
            }
        });
    }
}

pub(crate) fn start_server(
    topo: &Topology,
    ras: &Path,
    dir: &Path,
    log: &Arc<Log>,
) -> anyhow::Result<crate::Server> {
    let config = dir.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = {state:?}
server_name = "ras-bench"
user = ""

[sstp]
listen = ["0.0.0.0:443"]
ports = 64

[pptp]
listen = ["0.0.0.0:1723"]
ports = 64

[ipsec]
enabled = true
listen = "0.0.0.0"

[ikev2]
enabled = true

[addresses]
ipv4_pool = ["10.0.10.20-10.0.10.250"]
ipv6_prefix = "off"

[ppp]
echo_interval_secs = 0

[tun]
name = "ras-tort0"

[admin]
socket = {admin:?}
"#,
            state = dir.join("state"),
            admin = dir.join("admin.sock"),
        ),
    )?;
    let pw = dir.join("bench.pw");
    std::fs::write(&pw, "bench-password\n")?;
    let status = std::process::Command::new(ras)
        .args(["user", "--config"])
        .arg(&config)
        .args(["add", "bench", "--password-file"])
        .arg(&pw)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("ras user add failed");
    }
    // As crate::spawn_server, but the log is counted, not inherited.
    let mut child = topo
        .command("srv", ras.to_str().unwrap_or("ras"))
        .args(["server", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(stderr) = child.stderr.take() {
        log.take(stderr);
    }
    let stdout = child.stdout.take().context("server stdout")?;
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
    log.take_lines(lines);
    if fingerprint.is_empty() {
        bail!("ras server did not start");
    }
    Ok(crate::Server { child, fingerprint })
}

pub(crate) fn cpu_ms(pid: u32) -> Option<f64> {
    crate::ProcessCost::of(pid).map(|c| c.cpu_ms)
}

pub(crate) fn server_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

pub(crate) fn sessions_up(m: &BTreeMap<String, f64>) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with("ras_sessions{") && k.contains("state=\"up\""))
        .map(|(_, v)| v)
        .sum()
}

/// `n` in-process SSTP sessions from client namespace 1, held until the
/// process ends (no traffic: they must just survive what the bench does);
/// the load that made them, for more connects of the same kind.
pub(crate) fn hold_sessions(
    topo: &Topology,
    fingerprint: &str,
    n: usize,
) -> anyhow::Result<(Arc<crate::load::Load>, crate::load::Held)> {
    let load = Arc::new(crate::load::Load {
        target: format!("sstp://{}", crate::SERVER_FOR_CLI1),
        trust: crate::load::ServerTrust::Fingerprint(fingerprint.to_string()),
        user: "bench".into(),
        password: "bench-password".into(),
    });
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    {
        let (load, ns) = (load.clone(), topo.ns("cli1"));
        std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || load.hold_sessions(n, held_tx))
        });
    }
    let held = held_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .context("the held sessions did not come up")?;
    Ok((load, held))
}

/// iperf3 through the tunnel again and again until `flood` is over (or
/// Ctrl-C): the runs that ended before it, in bit/s, and the server's
/// peak RSS meanwhile (at least `rss_before`).
pub(crate) fn iperf_during<T>(
    topo: &Topology,
    seconds: u32,
    pid: u32,
    rss_before: u64,
    flood: &std::thread::JoinHandle<T>,
) -> (Vec<f64>, u64) {
    let mut during = Vec::new();
    let mut rss_peak = rss_before;
    while !flood.is_finished() && !crate::interrupt::requested() {
        match crate::iperf(topo, seconds, 1) {
            Ok(bps) if !flood.is_finished() => during.push(bps),
            Ok(_) => {}
            Err(e) => println!("  iperf3 during the flood failed: {e:#}"),
        }
        rss_peak = rss_peak.max(crate::rss_kib(pid).unwrap_or(0));
    }
    (during, rss_peak)
}

/// Ends a stress run: the tunnel client stopped, the server and the
/// namespaces gone, the temporary directory removed; then the verdict
/// (an error when the server died or panicked, or sessions were lost).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish<S>(
    bench: &str,
    mut tunnel: std::process::Child,
    server: S,
    topo: Topology,
    dir: &Path,
    alive: bool,
    panics: u64,
    sessions_lost: bool,
) -> anyhow::Result<()> {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &tunnel.id().to_string()])
        .status();
    let _ = tunnel.wait();
    drop(server);
    drop(topo);
    let _ = std::fs::remove_dir_all(dir);
    if !alive || panics > 0 {
        bail!("{bench} failed: the server died or panicked");
    }
    if sessions_lost {
        bail!("{bench} failed: established sessions were lost during the flood");
    }
    Ok(())
}

/// The start of a stress run: root checked, the file limit raised, a
/// temporary directory and a topology named `prefix` (both removed on
/// Ctrl-C), and the server started in it with its log counted.
pub(crate) struct StressRun {
    pub(crate) ras: std::path::PathBuf,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) topo: Topology,
    pub(crate) log: Arc<Log>,
    pub(crate) server: crate::Server,
    pub(crate) pid: u32,
    pub(crate) admin: std::path::PathBuf,
}

impl StressRun {
    pub(crate) fn start(
        bench: &str,
        prefix: &str,
        ras: Option<&Path>,
    ) -> anyhow::Result<StressRun> {
        if !interop::netns::is_root() {
            bail!("ras-bench {bench} needs root (network namespaces, TUN, raw sockets)");
        }
        crate::raise_fd_limit();
        let ras = crate::ras_binary(ras)?;
        let dir = std::env::temp_dir().join(format!("ras-{bench}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        crate::interrupt::clean_up_on_signal(prefix, &dir);
        let topo = Topology::create(prefix).map_err(anyhow::Error::msg)?;
        // The flood comes from cli2, a connection per item.
        crate::many_client_ports(&topo, "cli2");
        let log = Arc::new(Log::default());
        let server = start_server(&topo, &ras, &dir, &log)?;
        let pid = server.child.id();
        let admin = dir.join("admin.sock");
        Ok(StressRun {
            ras,
            dir,
            topo,
            log,
            server,
            pid,
            admin,
        })
    }
}
