//! `ras-bench soak`: many SSTP and PPTP sessions at once against
//! `ras server` for minutes, with random drops and reconnects, RADIUS
//! authentication and accounting to a real FreeRADIUS, and the three
//! checks an operator cares about after a bad day:
//!
//! * no accounting record lost: FreeRADIUS's `detail` file holds a Start
//!   and a Stop for every session that came up (RFC 2866 §5.1);
//! * no address leaked: when every client is gone the pool is all free;
//! * memory flat after warm-up: the server's RSS sampled throughout.
//!
//! The clients run in this process (the real client library, no TUN
//! devices). SSTP clients come from one client namespace; PPTP clients
//! from the other, and fewer of them: each in-process PPTP client has its
//! own raw GRE socket, which the kernel hands every GRE packet from the
//! server, so the load generator's own cost grows with the square of the
//! PPTP clients (real PPTP clients are separate hosts).
//!
//! With `--kill-primary-radius-at SECS` a second FreeRADIUS (the
//! alternate, 127.0.0.2) is configured after the first, and the primary is
//! killed with SIGKILL SECS seconds into the run: the report adds the
//! logins refused after the kill (goal 0: the alternate takes over) and
//! how long after the kill the first login through the alternate came up,
//! and the Start/Stop check reads both detail files.
//!
//! Exits non-zero when a check fails, so it can gate a release.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use interop::freeradius::{self, FreeRadius};
use interop::netns::{Topology, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::admin_metrics::{fetch as metrics, sum};
use crate::load::{NoNetwork, Options};

#[derive(clap::Args, Clone)]
pub struct SoakArgs {
    /// The `ras` binary (default: next to this one).
    #[arg(long)]
    ras: Option<PathBuf>,
    /// Concurrent SSTP client slots (each connects, holds, drops or
    /// disconnects, and reconnects until the time is up).
    #[arg(long, default_value_t = 2000)]
    sessions: usize,
    /// Concurrent PPTP client slots (see the module comment for why fewer).
    #[arg(long, default_value_t = 100)]
    pptp_sessions: usize,
    /// How long the churn runs, in minutes.
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Mean time a session is held before it ends (exponential), seconds.
    #[arg(long, default_value_t = 60.0)]
    hold_secs: f64,
    /// Share of sessions that end abruptly (the client's sockets closed
    /// without a PPP or SSTP goodbye) instead of disconnecting cleanly.
    #[arg(long, default_value_t = 0.3)]
    drop_share: f64,
    /// New connects per second while the sessions ramp up.
    #[arg(long, default_value_t = 400)]
    ramp_rate: u32,
    /// Configure a second FreeRADIUS (the alternate) and SIGKILL the
    /// primary this many seconds into the run (issue 18's fault).
    #[arg(long, value_name = "SECS")]
    kill_primary_radius_at: Option<f64>,
}

/// What the client slots saw.
#[derive(Default)]
struct Stats {
    attempts: AtomicU64,
    up: AtomicU64,
    current: AtomicU64,
    failed: AtomicU64,
    ended_clean: AtomicU64,
    ended_abrupt: AtomicU64,
    /// Ended by the server while the client still wanted it.
    lost: AtomicU64,
    /// Causes of failures and losses, counted.
    causes: Mutex<HashMap<String, u64>>,
    /// When the primary RADIUS server was killed (with
    /// `--kill-primary-radius-at`).
    killed: OnceLock<Instant>,
    /// Logins that failed after the kill.
    failed_after_kill: AtomicU64,
    /// Logins started after the kill that came up.
    up_after_kill: AtomicU64,
    /// Microseconds from the kill to the first of them.
    first_up_after_kill_us: AtomicU64,
}

impl Stats {
    fn fail(&self, cause: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if self.killed.get().is_some() {
            self.failed_after_kill.fetch_add(1, Ordering::Relaxed);
        }
        self.note(cause);
    }

    /// A login that started at `started` came up now.
    fn came_up(&self, started: Instant) {
        self.up.fetch_add(1, Ordering::Relaxed);
        self.current.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = self.killed.get() {
            if started >= *k {
                self.up_after_kill.fetch_add(1, Ordering::Relaxed);
                let us = k.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                self.first_up_after_kill_us.fetch_min(us, Ordering::Relaxed);
            }
        }
    }

    /// Counts a cause of failure or loss.
    fn note(&self, cause: String) {
        let mut causes = self.causes.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a few distinct causes are expected; the rest are lumped.
        let key = if causes.len() < 20 || causes.contains_key(&cause) {
            cause
        } else {
            "other".to_owned()
        };
        *causes.entry(key).or_default() += 1;
    }
}

pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    if !interop::netns::is_root() {
        bail!("ras-bench soak needs root (network namespaces, TUN, raw GRE)");
    }
    if !freeradius::available() {
        bail!("ras-bench soak needs FreeRADIUS (apt-get install freeradius)");
    }
    crate::raise_fd_limit();
    let ras = crate::ras_binary(args.ras.as_deref())?;
    let prefix = "rassoak";
    let dir = std::env::temp_dir().join(format!("ras-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    crate::interrupt::clean_up_on_signal(prefix, &dir);
    let topo = Topology::create(prefix).map_err(anyhow::Error::msg)?;

    let mut radius = FreeRadius::start(
        &dir.join("freeradius"),
        Some(&topo.ns("srv")),
        Ipv4Addr::LOCALHOST,
    )
    .map_err(anyhow::Error::msg)
    .context("starting FreeRADIUS")?;
    let mut alternate = match args.kill_primary_radius_at {
        Some(_) => Some(
            FreeRadius::start(
                &dir.join("freeradius-alternate"),
                Some(&topo.ns("srv")),
                Ipv4Addr::new(127, 0, 0, 2),
            )
            .map_err(anyhow::Error::msg)
            .context("starting the alternate FreeRADIUS")?,
        ),
        None => None,
    };
    let slots = args.sessions + args.pptp_sessions;
    let server = start_server(&topo, &ras, &dir, slots + 64, alternate.is_some())?;
    let admin = dir.join("admin.sock");
    println!(
        "soak: {} SSTP + {} PPTP client slots for {:.1} min, hold ~{:.0} s, {:.0}% abrupt drops; RADIUS: FreeRADIUS; machine: {} CPUs",
        args.sessions,
        args.pptp_sessions,
        args.minutes,
        args.hold_secs,
        args.drop_share * 100.0,
        crate::num_cpus()
    );

    let stats = Arc::new(Stats::default());
    stats
        .first_up_after_kill_us
        .store(u64::MAX, Ordering::Relaxed);
    if let Some(at) = args.kill_primary_radius_at {
        println!("soak: the primary FreeRADIUS is killed (SIGKILL) at {at:.0} s; the alternate is 127.0.0.2");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let mut drivers = Vec::new();
    for (role, server_addr, scheme, count) in [
        ("cli1", SERVER_FOR_CLI1, "sstp", args.sessions),
        ("cli2", SERVER_FOR_CLI2, "pptp", args.pptp_sessions),
    ] {
        if count == 0 {
            continue;
        }
        let load = crate::load::Load {
            target: format!("{scheme}://{server_addr}"),
            trust: if scheme == "sstp" {
                crate::load::ServerTrust::Fingerprint(server.fingerprint.clone())
            } else {
                crate::load::ServerTrust::None
            },
            user: "test".into(),
            password: "test123".into(),
        };
        let options = Arc::new(load.options()?);
        let (stats, stop, args) = (stats.clone(), stop_rx.clone(), args.clone());
        let ns = topo.ns(role);
        drivers.push(std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || {
                drive(options, count, deadline, stop, stats, &args)
            })
            .map_err(anyhow::Error::msg)
            .and_then(|r| r)
        }));
    }

    // Sample while the churn runs.
    let started = Instant::now();
    let mut rss = Vec::new();
    println!("  time  client-up  server-up  pool-in-use  attempts  failed  lost  RSS-KiB");
    let mut next_sample = started + Duration::from_secs(10);
    while Instant::now() < deadline + Duration::from_secs(5) {
        let mut wake = next_sample.min(deadline + Duration::from_secs(5));
        let kill_at = args
            .kill_primary_radius_at
            .filter(|_| stats.killed.get().is_none())
            .map(|secs| started + Duration::from_secs_f64(secs));
        if let Some(k) = kill_at {
            wake = wake.min(k);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        if crate::interrupt::requested() {
            break;
        }
        if kill_at.is_some_and(|k| Instant::now() >= k) {
            radius.stop();
            let _ = stats.killed.set(Instant::now());
            println!(
                "{:5.0}s  primary FreeRADIUS killed",
                started.elapsed().as_secs_f64()
            );
            continue;
        }
        if Instant::now() < next_sample {
            continue;
        }
        next_sample += Duration::from_secs(10);
        let m = metrics(&admin).unwrap_or_default();
        let kib = crate::rss_kib(server.child.id())?;
        rss.push((started.elapsed().as_secs_f64(), kib));
        println!(
            "{:5.0}s  {:9}  {:9.0}  {:11.0}  {:8}  {:6}  {:4}  {:7}",
            started.elapsed().as_secs_f64(),
            stats.current.load(Ordering::Relaxed),
            sum(&m, "ras_sessions{", "state=\"up\""),
            sum(&m, "ras_pool_addresses{", "state=\"in_use\""),
            stats.attempts.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed),
            stats.lost.load(Ordering::Relaxed),
            kib
        );
    }
    let _ = stop_tx.send(true);
    for d in drivers {
        match d.join() {
            Ok(r) => r?,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    // Every client is gone: the server must hold no session and no address.
    let settle = Instant::now();
    let mut m = metrics(&admin)?;
    while settle.elapsed() < Duration::from_secs(60)
        && (sum(&m, "ras_pool_addresses{", "state=\"in_use\"") > 0.0
            || sum(&m, "ras_sessions{", "") > 0.0)
    {
        std::thread::sleep(Duration::from_millis(500));
        m = metrics(&admin)?;
    }
    let address_settle = settle.elapsed().as_secs_f64();
    let leaked = sum(&m, "ras_pool_addresses{", "state=\"in_use\"");
    let sessions_left = sum(&m, "ras_sessions{", "");

    // Accounting: wait until the spool is empty, then read FreeRADIUS's
    // detail file.
    let up = stats.up.load(Ordering::Relaxed);
    let mut starts = HashSet::new();
    let mut stops = HashSet::new();
    let settle = Instant::now();
    let details = || {
        let mut text = radius.detail();
        if let Some(a) = &alternate {
            text.push_str("\n\n");
            text.push_str(&a.detail());
        }
        text
    };
    while settle.elapsed() < Duration::from_secs(120) {
        (starts, stops) = accounting(&details());
        if starts.len() as u64 >= up && stops.len() >= starts.len() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let stop_missing = starts.difference(&stops).count();
    let start_missing = up.saturating_sub(starts.len() as u64);

    println!();
    println!(
        "sessions: {} attempts, {up} came up, {} failed, {} ended cleanly, {} dropped abruptly, {} ended by the server",
        stats.attempts.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.ended_clean.load(Ordering::Relaxed),
        stats.ended_abrupt.load(Ordering::Relaxed),
        stats.lost.load(Ordering::Relaxed),
    );
    let causes = stats.causes.lock().unwrap_or_else(|e| e.into_inner());
    for (cause, n) in causes.iter() {
        println!("  {n}×: {cause}");
    }
    let files = if alternate.is_some() {
        "the two FreeRADIUS detail files"
    } else {
        "FreeRADIUS's detail file"
    };
    println!(
        "accounting: {} Starts and {} Stops in {files} for {up} sessions up: {start_missing} Starts and {stop_missing} Stops missing",
        starts.len(),
        stops.len()
    );
    let mut refused_after_kill = 0;
    if let Some(k) = stats.killed.get() {
        refused_after_kill = stats.failed_after_kill.load(Ordering::Relaxed);
        let first = stats.first_up_after_kill_us.load(Ordering::Relaxed);
        let first = if first == u64::MAX {
            "none came up".to_owned()
        } else {
            format!("{:.2} s after the kill", first as f64 / 1e6)
        };
        println!(
            "RADIUS failover: primary killed at {:.0} s; after the kill {} logins came up through the alternate (first {first}) and {refused_after_kill} failed (goal 0)",
            k.duration_since(started).as_secs_f64(),
            stats.up_after_kill.load(Ordering::Relaxed),
        );
    }
    println!(
        "addresses: {leaked:.0} still in use and {sessions_left:.0} sessions left {address_settle:.1} s after the last client went"
    );
    report_memory(&rss, args.minutes * 60.0);
    drop(server);
    radius.stop();
    if let Some(a) = alternate.as_mut() {
        a.stop();
    }
    drop(topo);
    let _ = std::fs::remove_dir_all(&dir);
    if start_missing > 0 || stop_missing > 0 || leaked > 0.0 || sessions_left > 0.0 {
        bail!("soak failed: accounting records lost or addresses leaked (above)");
    }
    if refused_after_kill > 0 {
        bail!("soak failed: logins refused after the primary RADIUS server was killed (above)");
    }
    Ok(())
}

/// Runs `count` client slots on this thread's namespace until `deadline`.
fn drive(
    options: Arc<Options>,
    count: usize,
    deadline: Instant,
    stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
    args: &SoakArgs,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (hold, drop_share, ramp) = (args.hold_secs, args.drop_share, args.ramp_rate.max(1));
    rt.block_on(async move {
        let mut slots = Vec::with_capacity(count);
        // This namespace's clients share one address (load.rs, TLS_SLOTS).
        let tls_slots = Arc::new(tokio::sync::Semaphore::new(crate::load::TLS_SLOTS));
        for i in 0..count {
            let (options, stop, stats) = (options.clone(), stop.clone(), stats.clone());
            let tls_slots = tls_slots.clone();
            slots.push(tokio::spawn(async move {
                slot(options, &tls_slots, deadline, stop, stats, hold, drop_share).await
            }));
            // Ramp: `ramp` new slots per second.
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_secs_f64(10.0 / f64::from(ramp))).await;
            }
        }
        for s in slots {
            let _ = s.await;
        }
        Ok(())
    })
}

/// One client slot: connect, hold, end (cleanly or abruptly), reconnect.
async fn slot(
    options: Arc<Options>,
    tls_slots: &Arc<tokio::sync::Semaphore>,
    deadline: Instant,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
    mean_hold: f64,
    drop_share: f64,
) {
    while Instant::now() < deadline && !*stop.borrow() {
        let notify = Arc::new(Notify::new());
        let (end_tx, end_rx) = watch::channel(false);
        let network: Arc<dyn client::network::Network> = Arc::new(NoNetwork(notify.clone()));
        let gated = options.gated(tls_slots).await;
        let started = Instant::now();
        let session = gated.as_ref().unwrap_or(&options).connect(network, end_rx);
        tokio::pin!(session);
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = notify.notified() => {}
            r = &mut session => {
                stats.fail(match r {
                    Ok(_) => "ended before it came up".to_owned(),
                    Err(e) => e.to_string(),
                });
                let pause = Duration::from_millis(rand::thread_rng().gen_range(500..2000));
                tokio::time::sleep(pause).await;
                continue;
            }
            _ = tokio::time::sleep(Duration::from_secs(30)) => {
                stats.fail("no link within 30 s".to_owned());
                continue;
            }
        }
        stats.came_up(started);
        let (hold, abrupt) = {
            let mut rng = rand::thread_rng();
            // Exponential holding time, at least a second.
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            (
                Duration::from_secs_f64((-u.ln() * mean_hold).max(1.0)),
                rng.gen_bool(drop_share.clamp(0.0, 1.0)),
            )
        };
        let until = (Instant::now() + hold).min(deadline);
        let ended = tokio::select! {
            r = &mut session => Some(r),
            _ = tokio::time::sleep_until(until.into()) => None,
            _ = stop.changed() => None,
        };
        stats.current.fetch_sub(1, Ordering::Relaxed);
        if let Some(r) = ended {
            stats.lost.fetch_add(1, Ordering::Relaxed);
            stats.note(format!(
                "ended by the server: {}",
                match r {
                    Ok(end) => end.reason,
                    Err(e) => e.to_string(),
                }
            ));
            continue;
        }
        // Clean at the end of the run, so the last Stops are orderly too.
        if abrupt && Instant::now() < deadline && !*stop.borrow() {
            // Dropping the session closes its sockets with no goodbye.
            stats.ended_abrupt.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let _ = end_tx.send(true);
        if tokio::time::timeout(Duration::from_secs(15), &mut session)
            .await
            .is_ok()
        {
            stats.ended_clean.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.fail("clean disconnect took over 15 s".to_owned());
        }
    }
}

/// The Acct-Session-Ids with a Start and with a Stop record.
fn accounting(detail: &str) -> (HashSet<String>, HashSet<String>) {
    let (mut starts, mut stops) = (HashSet::new(), HashSet::new());
    for record in freeradius::detail_records(detail) {
        let field = |name: &str| {
            record
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (Some(kind), Some(id)) = (field("Acct-Status-Type"), field("Acct-Session-Id")) else {
            continue;
        };
        match kind.as_str() {
            "Start" => {
                starts.insert(id);
            }
            "Stop" => {
                stops.insert(id);
            }
            _ => {}
        }
    }
    (starts, stops)
}

/// RSS after warm-up (the first third of the run): lowest, highest, last.
fn report_memory(samples: &[(f64, u64)], run_secs: f64) {
    let warm: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= run_secs / 3.0)
        .map(|(_, kib)| *kib)
        .collect();
    let (Some(min), Some(max), Some(last)) = (warm.iter().min(), warm.iter().max(), warm.last())
    else {
        println!("memory: too few samples after warm-up");
        return;
    };
    println!(
        "memory after warm-up ({} samples): server RSS {min}–{max} KiB, last {last} KiB ({:+.1}% from the lowest)",
        warm.len(),
        (*last as f64 - *min as f64) / *min as f64 * 100.0
    );
}

fn start_server(
    topo: &Topology,
    ras: &Path,
    dir: &Path,
    ports: usize,
    alternate: bool,
) -> anyhow::Result<crate::Server> {
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", freeradius::SECRET),
    )?;
    let config = dir.join("ras.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = {state:?}
server_name = "ras-soak"
user = ""

[sstp]
listen = ["{SERVER_FOR_CLI1}:443"]
ports = {ports}

[pptp]
listen = ["{SERVER_FOR_CLI2}:1723"]
ports = {ports}

[ipsec]
enabled = false

[addresses]
ipv4_pool = ["10.100.0.1-10.100.255.250"]
ipv6_prefix = "off"

[tun]
name = "ras-soak0"

[radius]
nas_identifier = "ras-soak"

[[radius.servers]]
address = "127.0.0.1"
secret_file = "radius.secret"
{alternate}
[admin]
socket = {admin:?}
"#,
            admin = dir.join("admin.sock"),
            alternate = if alternate {
                "\n[[radius.servers]]\naddress = \"127.0.0.2\"\nsecret_file = \"radius.secret\"\n"
            } else {
                ""
            },
        ),
    )?;
    crate::spawn_server(topo, ras, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_pairs_starts_and_stops_by_session_id() {
        let detail = "Fri Dec  4 10:00:00 2026\n\tAcct-Status-Type = Start\n\tAcct-Session-Id = \"a-1\"\n\nFri Dec  4 10:00:01 2026\n\tAcct-Status-Type = Start\n\tAcct-Session-Id = \"a-2\"\n\nFri Dec  4 10:00:02 2026\n\tAcct-Status-Type = Stop\n\tAcct-Session-Id = \"a-1\"\n\n\tAcct-Status-Type = Interim-Update\n\tAcct-Session-Id = \"a-2\"\n";
        let (starts, stops) = accounting(detail);
        assert_eq!(starts.len(), 2);
        assert!(stops.contains("a-1") && !stops.contains("a-2"));
    }
}
