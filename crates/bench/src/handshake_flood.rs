//! `ras-bench handshake-flood` (issue 18): many times the connect rate the
//! server can complete, slow clients and half-open connections, while
//! established sessions hold and a tunnel carries iperf3; and whether new
//! clients are still admitted meanwhile.
//!
//! `ras server` runs in the server namespace (server_under_test.rs). From
//! client namespace 1: in-process SSTP sessions held throughout, one real
//! `ras connect sstp://` tunnel iperf3 measures through (baseline before
//! the flood, then again and again during it), and a prober: a full
//! connect (TLS, SSTP, PPP up) every 500 ms, timed, before and during the
//! flood. From client namespace 2, at once and each bounded by count and
//! time:
//! - connectors: threads that each connect, finish the TLS handshake and
//!   the SSTP HTTP request, then leave (RST) or, one in `idle_every`, idle
//!   on the upgraded connection for `idle_secs`;
//! - slow clients: half of them send a real ClientHello one byte per
//!   second, the other half finish TLS and send the HTTP request one byte
//!   per second; a client the server closes is replaced;
//! - half-open: TCP connections that send nothing; one the server closes
//!   is replaced.
//!
//! Exits non-zero when an established session was lost or the server died.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use interop::netns::{Topology, SERVER_FOR_CLI2};

use crate::admin_metrics::fetch as metrics;
use crate::server_under_test::{cpu_ms, server_alive, sessions_up, StressRun};

#[derive(clap::Args, Clone)]
pub struct HandshakeFloodArgs {
    /// The `ras` binary (default: next to this one).
    #[arg(long)]
    ras: Option<PathBuf>,
    /// Seconds the flood lasts.
    #[arg(long, default_value_t = 30)]
    flood_secs: u64,
    /// Parallel full TLS+SSTP connectors.
    #[arg(long, default_value_t = 48)]
    connectors: usize,
    /// One connector's connection in this many idles after the SSTP
    /// answer instead of leaving.
    #[arg(long, default_value_t = 8)]
    idle_every: u64,
    /// How long an idling connector holds its connection.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Slow clients (a byte per second) at once.
    #[arg(long, default_value_t = 64)]
    slow: usize,
    /// Half-open connections (nothing sent) at once.
    #[arg(long, default_value_t = 512)]
    half_open: usize,
    /// In-process SSTP sessions held through the run.
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// New flood connections per second at most, all kinds together
    /// (about twice the full connects the server completes on this
    /// machine; 0: as fast as the flooder can, which on a small machine
    /// mostly measures the flooder taking the CPU).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Source addresses the flood comes from (10.201.2.10 and up, added to
    /// client namespace 2): 1 is one flooding host, more a distributed
    /// flood that the per-address cap alone does not stop.
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Seconds the prober runs before the flood (its reference figures).
    #[arg(long, default_value_t = 10)]
    probe_before_secs: u64,
}

/// Spaces new connections `1/rate` apart over all the threads that
/// share it.
struct Pace {
    start: Instant,
    interval_ns: u64,
    next: AtomicU64,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace {
            start: Instant::now(),
            interval_ns: 1_000_000_000u64.checked_div(rate).unwrap_or(0),
            next: AtomicU64::new(0),
        }
    }

    /// Waits for this caller's slot.
    fn wait(&self) {
        if self.interval_ns == 0 {
            return;
        }
        let slot = self.next.fetch_add(self.interval_ns, Ordering::Relaxed);
        let at = self.start + Duration::from_nanos(slot);
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        } else if now - at > Duration::from_millis(100) {
            // Fallen behind (a slow phase): no burst to catch up.
            let late = (now - self.start).as_nanos() as u64;
            self.next.fetch_max(late, Ordering::Relaxed);
        }
    }
}

/// What the flood's connectors saw.
#[derive(Default)]
struct Connects {
    attempts: AtomicU64,
    /// TLS done and the SSTP request answered 200.
    upgraded: AtomicU64,
    /// Answered 503 (ports in use).
    busy: AtomicU64,
    /// Closed or reset by the server before or during TLS.
    closed_in_tls: AtomicU64,
    /// TCP connect failed or timed out (the backlog full).
    no_tcp: AtomicU64,
    other: AtomicU64,
}

/// Connections held open until the server closes them: how long it took.
#[derive(Default)]
struct Held {
    opened: AtomicU64,
    lifetimes_ms: Mutex<Vec<u64>>,
}

impl Held {
    fn closed_after(&self, d: Duration) {
        let mut l = self.lifetimes_ms.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() < 1_000_000 {
            l.push(d.as_millis() as u64);
        }
    }
}

/// The prober's record: connect times of the successes, failures by cause.
#[derive(Default)]
struct Probe {
    times_ms: Vec<f64>,
    failures: BTreeMap<String, u64>,
}

impl Probe {
    fn attempts(&self) -> u64 {
        self.times_ms.len() as u64 + self.failures.values().sum::<u64>()
    }

    fn line(&self) -> String {
        let mut t = self.times_ms.clone();
        t.sort_by(f64::total_cmp);
        let failures = self
            .failures
            .iter()
            .map(|(c, n)| format!("{n}× {c}"))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{} of {} connects up ({:.0}%), p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms{}",
            t.len(),
            self.attempts(),
            t.len() as f64 * 100.0 / self.attempts().max(1) as f64,
            percentile(&t, 50.0),
            percentile(&t, 95.0),
            t.last().copied().unwrap_or(0.0),
            if failures.is_empty() {
                String::new()
            } else {
                format!("; failed: {failures}")
            }
        )
    }
}

/// The `p`th percentile of sorted values (nearest rank), 0 when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(args: HandshakeFloodArgs) -> anyhow::Result<()> {
    let StressRun {
        ras,
        dir,
        topo,
        log,
        server,
        pid,
        admin,
    } = StressRun::start("handshake-flood", "rashf", args.ras.as_deref())?;
    println!(
        "handshake-flood: {} s, ≤ {} new connections/s from {} address(es); {} connectors (1 in {} idles {} s), {} slow clients, {} half-open; ras server in a namespace, flood from another; machine: {} CPUs",
        args.flood_secs,
        args.rate,
        args.sources.max(1),
        args.connectors,
        args.idle_every,
        args.idle_secs,
        args.slow,
        args.half_open,
        crate::num_cpus()
    );

    let (load, held) =
        crate::server_under_test::hold_sessions(&topo, &server.fingerprint, args.sessions)?;
    println!("held sessions: {} of {} up", held.up, args.sessions);
    let tunnel = crate::sstp_tunnel(
        &topo,
        &ras,
        &dir.join("bench.pw"),
        &server.fingerprint,
        "ras-hf0",
    )?;
    // The server's CPU for the tunnel's traffic alone, per bit: taken
    // out of the flood's CPU figure below.
    let cpu0 = cpu_ms(pid).unwrap_or(0.0);
    let baseline = crate::iperf(&topo, args.seconds, 1)?;
    let cpu_ms_per_bit =
        (cpu_ms(pid).unwrap_or(0.0) - cpu0) / (baseline * f64::from(args.seconds)).max(1.0);
    println!(
        "throughput through SSTP before the flood: {:.0} Mbit/s",
        baseline / 1e6
    );

    let probe_before = probe(&topo, &load, Duration::from_secs(args.probe_before_secs))?;
    println!("prober before the flood: {}", probe_before.line());

    let before_metrics = metrics(&admin).unwrap_or_default();
    let up_before = sessions_up(&before_metrics);
    let rss_before = crate::rss_kib(pid)?;
    let cpu_before = cpu_ms(pid).unwrap_or(0.0);
    let lines_before = log.lines.load(Ordering::Relaxed);

    let sources = flood_sources(&topo, args.sources)?;
    let flood_for = Duration::from_secs(args.flood_secs);
    let (connects, slow, half_open) = (
        Arc::new(Connects::default()),
        Arc::new(Held::default()),
        Arc::new(Held::default()),
    );
    let flood = {
        let (ns, args, fp) = (topo.ns("cli2"), args.clone(), server.fingerprint.clone());
        let (c, s, h) = (connects.clone(), slow.clone(), half_open.clone());
        std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || flood(&args, &fp, &sources, &c, &s, &h))
                .map_err(anyhow::Error::msg)
                .and_then(|r| r)
        })
    };
    // The prober runs through the flood (its own thread, from cli1).
    let prober = {
        let (topo_ns, load) = (topo.ns("cli1"), load.clone());
        std::thread::spawn(move || {
            interop::netns::in_named_ns(&topo_ns, move || probe_in_ns(&load, flood_for))
                .map_err(anyhow::Error::msg)
                .and_then(|r| r)
        })
    };
    let started = Instant::now();
    let (during, rss_peak) =
        crate::server_under_test::iperf_during(&topo, args.seconds, pid, rss_before, &flood);
    let flood_secs = started.elapsed().as_secs_f64();
    match flood.join() {
        Ok(r) => r?,
        Err(p) => std::panic::resume_unwind(p),
    }
    let cpu_flood = cpu_ms(pid).unwrap_or(0.0) - cpu_before;
    let probe_during = match prober.join() {
        Ok(r) => r?,
        Err(p) => std::panic::resume_unwind(p),
    };
    // Idle connectors and the server's summaries settle.
    std::thread::sleep(Duration::from_secs(3));
    let alive = server_alive(pid);
    let after_metrics = metrics(&admin).unwrap_or_default();
    let up_after = sessions_up(&after_metrics);
    let rss_after = crate::rss_kib(pid).unwrap_or(0);
    let lines = log.lines.load(Ordering::Relaxed) - lines_before;
    let panics = log.panics.load(Ordering::Relaxed);

    println!();
    let attempts = connects.attempts.load(Ordering::Relaxed);
    let flood_conns =
        attempts + slow.opened.load(Ordering::Relaxed) + half_open.opened.load(Ordering::Relaxed);
    println!(
        "connectors: {attempts} attempts ({:.0}/s): {} upgraded (TLS + SSTP 200), {} answered 503, {} closed by the server in TLS, {} TCP connect failed, {} other",
        attempts as f64 / flood_secs.max(1e-9),
        connects.upgraded.load(Ordering::Relaxed),
        connects.busy.load(Ordering::Relaxed),
        connects.closed_in_tls.load(Ordering::Relaxed),
        connects.no_tcp.load(Ordering::Relaxed),
        connects.other.load(Ordering::Relaxed),
    );
    println!("slow clients: {}", held_line(&slow));
    println!("half-open: {}", held_line(&half_open));
    println!(
        "prober before the flood: {}\nprober during the flood: {}",
        probe_before.line(),
        probe_during.line()
    );
    if !during.is_empty() {
        let mean = during.iter().sum::<f64>() / during.len() as f64;
        let min = during.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "established throughput: {:.0} Mbit/s baseline, {:.0} Mbit/s during (mean of {}, lowest {:.0}) = {:.0}% of baseline",
            baseline / 1e6,
            mean / 1e6,
            during.len(),
            min / 1e6,
            mean / baseline * 100.0
        );
    } else {
        println!("established throughput: no iperf3 run finished within the flood (too short)");
    }
    println!(
        "established sessions: {up_before:.0} up before, {up_after:.0} after (lost {:.0})",
        (up_before - up_after).max(0.0)
    );
    // What the tunnel's traffic during the flood cost at the baseline's
    // CPU per bit; the rest is the flood's (and the prober's).
    let tunnel_ms = cpu_ms_per_bit * during.iter().sum::<f64>() * f64::from(args.seconds);
    let flood_ms = (cpu_flood - tunnel_ms).max(0.0);
    println!(
        "server: {}; {panics} panics; CPU {:.1} s over {:.0} s of flood ({:.0}% of one core), of it {:.1} s for the tunnel's traffic (at the baseline's CPU per bit) and {:.1} s for {flood_conns} flood connections ({:.3} ms each); RSS {rss_before} KiB before, {rss_peak} KiB peak, {rss_after} KiB after; {lines} log lines",
        if alive { "alive" } else { "DEAD" },
        cpu_flood / 1000.0,
        flood_secs,
        cpu_flood / 10.0 / flood_secs.max(1e-9),
        tunnel_ms / 1000.0,
        flood_ms / 1000.0,
        flood_ms / flood_conns.max(1) as f64
    );
    println!("server's counters (change over the run):");
    for (series, delta) in counter_deltas(&before_metrics, &after_metrics) {
        println!("  {series} +{delta:.0}");
    }

    crate::server_under_test::finish(
        "handshake-flood",
        tunnel,
        server,
        topo,
        &dir,
        alive,
        panics,
        up_after < up_before,
    )
}

fn held_line(h: &Held) -> String {
    let mut l = h
        .lifetimes_ms
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    l.sort_unstable();
    let p = |q: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((q * l.len() as f64) as usize).min(l.len() - 1)] as f64 / 1000.0
        }
    };
    format!(
        "{} opened, {} closed by the server (after p50 {:.1} s, max {:.1} s), the rest still open at the end",
        h.opened.load(Ordering::Relaxed),
        l.len(),
        p(0.5),
        p(1.0)
    )
}

/// The drop, refusal and failure counters that grew.
fn counter_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|(k, _)| {
            k.starts_with("ras_sstp_connections_refused_total")
                || k.starts_with("ras_tls_handshake_failures_total")
                || k.starts_with("ras_session_attempts_total")
        })
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d > 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The prober from cli1 for `secs`.
fn probe(topo: &Topology, load: &Arc<crate::load::Load>, secs: Duration) -> anyhow::Result<Probe> {
    let load = load.clone();
    interop::netns::in_named_ns(&topo.ns("cli1"), move || probe_in_ns(&load, secs))
        .map_err(anyhow::Error::msg)?
}

/// A full connect every 500 ms (each in its own task, so a slow one does
/// not delay the next) for `secs`; this thread is in the client namespace.
fn probe_in_ns(load: &crate::load::Load, secs: Duration) -> anyhow::Result<Probe> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let options = Arc::new(load.options()?);
    rt.block_on(async move {
        let mut tasks = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let end = tokio::time::Instant::now() + secs;
        while tokio::time::Instant::now() < end && !crate::interrupt::requested() {
            tick.tick().await;
            let options = options.clone();
            tasks.push(tokio::spawn(async move {
                crate::load::connect_timed(&options, Duration::from_secs(20)).await
            }));
        }
        let mut probe = Probe::default();
        for t in tasks {
            match t.await {
                Ok(Ok(took)) => probe.times_ms.push(took.as_secs_f64() * 1000.0),
                Ok(Err(cause)) => *probe.failures.entry(cause).or_default() += 1,
                Err(_) => *probe.failures.entry("task failed".into()).or_default() += 1,
            }
        }
        Ok(probe)
    })
}

/// The three kinds of flood at once, from this (client 2) namespace.
fn flood(
    args: &HandshakeFloodArgs,
    fingerprint: &str,
    sources: &Sources,
    connects: &Connects,
    slow: &Held,
    half_open: &Held,
) -> anyhow::Result<()> {
    let tls = client::verify::Trust::Pin(client::verify::Fingerprint::parse(fingerprint)?)
        .client_config()?;
    let target = SocketAddr::new(SERVER_FOR_CLI2.parse()?, 443);
    let deadline = Instant::now() + Duration::from_secs(args.flood_secs);
    let pace = &Pace::new(args.rate);
    std::thread::scope(|scope| {
        for i in 0..args.connectors {
            let tls = &tls;
            scope.spawn(move || {
                let mut n = i as u64;
                while Instant::now() < deadline && !crate::interrupt::requested() {
                    n += 1;
                    let idle = args.idle_every > 0 && n.is_multiple_of(args.idle_every);
                    let idle = idle.then(|| Duration::from_secs(args.idle_secs));
                    pace.wait();
                    connect_once(target, sources, tls, idle, deadline, connects);
                }
            });
        }
        for i in 0..args.slow {
            let tls = &tls;
            scope.spawn(move || {
                while Instant::now() < deadline && !crate::interrupt::requested() {
                    pace.wait();
                    if slow_once(target, sources, tls, i % 2 == 0, deadline, slow).is_err() {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            });
        }
        scope.spawn(move || {
            half_open_flood(target, sources, args.half_open, deadline, half_open, pace)
        });
    });
    Ok(())
}

/// The flood's source addresses, taken in turn (none: the namespace's
/// own address).
struct Sources {
    addresses: Vec<std::net::IpAddr>,
    next: AtomicU64,
}

impl Sources {
    fn next(&self) -> Option<std::net::IpAddr> {
        if self.addresses.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        Some(self.addresses[i % self.addresses.len()])
    }
}

/// `n` > 1: that many addresses 10.201.2.10… added to client namespace
/// 2's link (they go with the namespace).
fn flood_sources(topo: &Topology, n: u8) -> anyhow::Result<Sources> {
    let mut addresses = Vec::new();
    if n > 1 {
        let out = topo
            .command("cli2", "ip")
            .args(["-o", "-4", "addr", "show"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let dev = text
            .lines()
            .find(|l| l.contains(" 10.201.2.2/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .context("client namespace 2's link")?
            .to_owned();
        for i in 0..n.min(200) {
            let a = std::net::Ipv4Addr::new(10, 201, 2, 10 + i);
            let status = topo
                .command("cli2", "ip")
                .args(["addr", "add", &format!("{a}/24"), "dev", &dev])
                .status()?;
            if !status.success() {
                bail!("cannot add {a} in client namespace 2");
            }
            addresses.push(a.into());
        }
    }
    Ok(Sources {
        addresses,
        next: AtomicU64::new(0),
    })
}

fn tcp(target: SocketAddr, sources: &Sources) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(source) = sources.next() {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    socket.connect_timeout(&target.into(), Duration::from_secs(2))?;
    let tcp: TcpStream = socket.into();
    // RST on close: no TIME_WAIT on the flooder's side.
    socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO))?;
    Ok(tcp)
}

/// One full connect: TLS, the SSTP request, its answer; then leave or idle.
fn connect_once(
    target: SocketAddr,
    sources: &Sources,
    tls: &Arc<rustls::ClientConfig>,
    idle: Option<Duration>,
    deadline: Instant,
    c: &Connects,
) {
    c.attempts.fetch_add(1, Ordering::Relaxed);
    let Ok(tcp) = tcp(target, sources) else {
        c.no_tcp.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(name) = rustls::pki_types::ServerName::try_from("ras-bench") else {
        return;
    };
    let Ok(conn) = rustls::ClientConnection::new(tls.clone(), name) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // The handshake, driven to its end before anything is written.
    while stream.conn.is_handshaking() {
        if stream.conn.complete_io(&mut stream.sock).is_err() {
            c.closed_in_tls.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    let mut head = Vec::new();
    let answered = stream
        .write_all(crate::torture_items::sstp_request().as_bytes())
        .and_then(|()| {
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
                if stream.read(&mut byte)? == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            Ok(())
        });
    let counter = match (answered, &head) {
        (Ok(()), h) if h.starts_with(b"HTTP/1.1 200") => &c.upgraded,
        (Ok(()), h) if h.starts_with(b"HTTP/1.1 503") => &c.busy,
        _ => &c.other,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Some(idle) = idle {
        let until = (Instant::now() + idle).min(deadline);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
}

/// One slow client: a ClientHello (or, after a normal TLS handshake, the
/// SSTP request) one byte per second until the server closes.
fn slow_once(
    target: SocketAddr,
    sources: &Sources,
    tls: &Arc<rustls::ClientConfig>,
    in_tls: bool,
    deadline: Instant,
    h: &Held,
) -> std::io::Result<()> {
    let name =
        rustls::pki_types::ServerName::try_from("ras-bench").map_err(std::io::Error::other)?;
    let mut conn =
        rustls::ClientConnection::new(tls.clone(), name).map_err(std::io::Error::other)?;
    let mut tcp = tcp(target, sources)?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    h.opened.fetch_add(1, Ordering::Relaxed);
    let opened = Instant::now();
    let bytes = if in_tls {
        let mut hello = Vec::new();
        conn.write_tls(&mut hello)?;
        hello
    } else {
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        // The request's TLS records, made at once, dripped a byte a second.
        conn.writer()
            .write_all(crate::torture_items::sstp_request().as_bytes())?;
        let mut records = Vec::new();
        conn.write_tls(&mut records)?;
        records
    };
    tcp.set_nonblocking(true)?;
    for byte in bytes.iter().cycle() {
        if Instant::now() >= deadline || crate::interrupt::requested() {
            return Ok(());
        }
        if tcp.write(std::slice::from_ref(byte)).is_err() || closed(&mut tcp) {
            h.closed_after(opened.elapsed());
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}

/// Whether the server closed (EOF or reset) a non-blocking socket; what
/// it sent is read and thrown away.
fn closed(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// `n` connections that send nothing; each one the server closes is
/// replaced, until the deadline.
fn half_open_flood(
    target: SocketAddr,
    sources: &Sources,
    n: usize,
    deadline: Instant,
    h: &Held,
    pace: &Pace,
) {
    let mut open: Vec<(TcpStream, Instant)> = Vec::with_capacity(n);
    while Instant::now() < deadline && !crate::interrupt::requested() {
        while open.len() < n && Instant::now() < deadline {
            pace.wait();
            match tcp(target, sources).and_then(|t| t.set_nonblocking(true).map(|()| t)) {
                Ok(t) => {
                    h.opened.fetch_add(1, Ordering::Relaxed);
                    open.push((t, Instant::now()));
                }
                Err(_) => break,
            }
        }
        open.retain_mut(|(t, since)| {
            if closed(t) {
                h.closed_after(since.elapsed());
                false
            } else {
                true
            }
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_spaces_connections_over_threads() {
        let pace = Pace::new(1000);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..25).for_each(|_| pace.wait()));
            }
        });
        // 100 slots 1 ms apart: the last one 99 ms after the start.
        assert!(started.elapsed() >= Duration::from_millis(99));
        assert!(started.elapsed() < Duration::from_millis(400));
        let unpaced = Pace::new(0);
        let started = Instant::now();
        (0..1000).for_each(|_| unpaced.wait());
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_probe_line_counts_failures_in_the_rate() {
        let mut p = Probe {
            times_ms: vec![10.0, 30.0, 20.0],
            ..Probe::default()
        };
        p.failures.insert("refused".into(), 1);
        let line = p.line();
        assert!(line.starts_with("3 of 4 connects up (75%)"), "{line}");
        assert!(line.contains("p50 20 ms"), "{line}");
        assert!(line.contains("1× refused"), "{line}");
    }
}
