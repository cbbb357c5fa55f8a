//! `ras-bench torture` (issue 18): a million malformed or truncated items
//! at every listener of `ras server` while established sessions carry
//! traffic, and what they cost the server.
//!
//! The server runs in the server namespace with SSTP, PPTP, L2TP/IPsec
//! (IKE on UDP 500 and 4500, ESP) and IKEv2. From client namespace 1:
//! a few in-process SSTP sessions held throughout, and one real
//! `ras connect sstp://` tunnel through which iperf3 measures the
//! throughput before the flood (the baseline) and during it. From client
//! namespace 2, one listener after the other (`torture_items.rs`): TLS
//! garbage on 443, bad SSTP HTTP requests and bad SSTP framing inside real
//! TLS sessions, PPTP control garbage on 1723, GRE for unknown calls, IKE
//! on 500 and 4500, ESP with unknown SPIs (raw and in UDP 4500).
//!
//! Per listener it prints the items sent, the server's CPU time per
//! 1,000 items (/proc/PID/stat utime+stime around the phase: the
//! per-bad-item cost), the log lines the server wrote, and the kernel's
//! drops before the server saw them (UDP and raw socket buffers full).
//! Over the run: the server alive and no "panicked" in its log, its RSS
//! before and after, the held sessions still up, the tunnel's throughput
//! during the flood as % of the baseline, and the server's drop counters
//! (`ras_dropped_packets_total` per reason, failed session attempts).
//!
//! Exits non-zero on a panic, a dead server or a lost session.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use interop::netns::SERVER_FOR_CLI2;
use rand::SeedableRng;

use crate::admin_metrics::fetch as metrics;
use crate::server_under_test::{cpu_ms, server_alive, sessions_up, Log, StressRun};
use crate::torture_items::Listener;

#[derive(clap::Args, Clone)]
pub struct TortureArgs {
    /// The `ras` binary (default: next to this one).
    #[arg(long)]
    ras: Option<PathBuf>,
    /// Bad items in all, shared among the listeners by weight.
    #[arg(long, default_value_t = 1_000_000)]
    items: u64,
    /// The most seconds one listener's phase may take (it stops then,
    /// short of its share).
    #[arg(long, default_value_t = 60)]
    phase_secs: u64,
    /// Datagrams per second at most in the datagram phases (0: as fast as
    /// the flooder can).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Parallel connections in the TCP and TLS phases.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// In-process SSTP sessions held through the run.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Seconds per iperf3 run (baseline, and repeatedly during the flood).
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Flood only these listeners (repeat the option; default: all). The
    /// items are shared among the chosen ones by weight.
    #[arg(long, value_enum)]
    only: Vec<Listener>,
}

impl TortureArgs {
    /// The listeners this run floods, in the order of `Listener::ALL`.
    fn listeners(&self) -> Vec<Listener> {
        Listener::ALL
            .into_iter()
            .filter(|l| self.only.is_empty() || self.only.contains(l))
            .collect()
    }
}

/// One listener's phase.
struct Phase {
    listener: Listener,
    sent: u64,
    secs: f64,
    cpu_ms: f64,
    log_lines: u64,
    /// Connections the server did not close within 2 s of our FIN.
    lingering: u64,
    /// Items that could not be sent (see [`Outcome::failed`]).
    failed: u64,
    /// Why the first item that could not be sent failed.
    first_failure: Option<String>,
    kernel_drops: u64,
    /// The first log line of the phase.
    example: Option<String>,
}

pub fn run(args: TortureArgs) -> anyhow::Result<()> {
    let StressRun {
        ras,
        dir,
        topo,
        log,
        server,
        pid,
        admin,
    } = StressRun::start("torture", "rastort", args.ras.as_deref())?;
    println!(
        "torture: {} bad items over {} listeners, ≤ {} s each, datagrams ≤ {}/s; ras server in a namespace (SSTP, PPTP, L2TP/IPsec, IKEv2), flood from another; machine: {} CPUs",
        args.items,
        args.listeners().len(),
        args.phase_secs,
        args.rate,
        crate::num_cpus()
    );

    // Sessions held through the run (no traffic: they must just survive).
    let (_load, held) =
        crate::server_under_test::hold_sessions(&topo, &server.fingerprint, args.sessions)?;
    println!(
        "held sessions: {} of {} up (in-process SSTP clients){}",
        held.up,
        args.sessions,
        if held.causes.is_empty() {
            String::new()
        } else {
            format!("; {}", held.causes)
        }
    );

    // The tunnel iperf3 runs through.
    let tunnel = crate::sstp_tunnel(
        &topo,
        &ras,
        &dir.join("bench.pw"),
        &server.fingerprint,
        "ras-tt0",
    )?;
    let baseline = crate::iperf(&topo, args.seconds, 1)?;
    println!(
        "throughput through SSTP before the flood: {:.0} Mbit/s",
        baseline / 1e6
    );

    let before_metrics = metrics(&admin).unwrap_or_default();
    let rss_before = crate::rss_kib(pid)?;
    let cpu_before = cpu_ms(pid).unwrap_or(0.0);
    let lines_before = log.lines.load(Ordering::Relaxed);
    let attempts_before = sessions_up(&before_metrics);
    log.sampling.store(true, Ordering::Relaxed);

    // The flood, from client namespace 2; iperf3 runs through the tunnel
    // meanwhile, again and again until the flood is over.
    let fingerprint = server.fingerprint.clone();
    let flood = {
        let (ns, args, log) = (topo.ns("cli2"), args.clone(), log.clone());
        let srv_ns = topo.ns("srv");
        std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || flood(&args, pid, &fingerprint, &log, &srv_ns))
                .map_err(anyhow::Error::msg)
                .and_then(|r| r)
        })
    };
    let (during, rss_peak) =
        crate::server_under_test::iperf_during(&topo, args.seconds, pid, rss_before, &flood);
    let phases = match flood.join() {
        Ok(r) => r?,
        Err(p) => std::panic::resume_unwind(p),
    };
    log.sampling.store(false, Ordering::Relaxed);
    // Let the server finish what is queued, and a summary window pass
    // (failure_log.rs summarises every 10 s).
    std::thread::sleep(Duration::from_secs(11));
    let alive = server_alive(pid);
    let after_metrics = metrics(&admin).unwrap_or_default();
    let rss_after = crate::rss_kib(pid).unwrap_or(0);
    let cpu_after = cpu_ms(pid).unwrap_or(0.0);
    let lines_during = log.lines.load(Ordering::Relaxed) - lines_before;
    let after_tunnel = crate::iperf(&topo, args.seconds, 1).unwrap_or(0.0);

    // The report.
    println!();
    println!(
        "{:<22} {:>9} {:>7} {:>9} {:>12} {:>12} {:>9} {:>13} {:>9}",
        "listener",
        "items",
        "secs",
        "items/s",
        "CPU ms/1000",
        "/1000 read",
        "log",
        "kernel-drops",
        "lingered"
    );
    let mut total = 0;
    for p in &phases {
        total += p.sent;
        println!(
            "{:<22} {:>9} {:>7.1} {:>9.0} {:>12} {:>12} {:>9} {:>13} {:>9}{}",
            p.listener.name(),
            p.sent,
            p.secs,
            p.sent as f64 / p.secs.max(1e-9),
            per_thousand(p.cpu_ms, p.sent),
            // Per item the server read (the kernel dropped the rest).
            per_thousand(p.cpu_ms, p.sent.saturating_sub(p.kernel_drops)),
            p.log_lines,
            p.kernel_drops,
            p.lingering,
            if p.failed > 0 {
                format!(
                    "  ({} not sent; the first: {})",
                    p.failed,
                    p.first_failure.as_deref().unwrap_or("no reason kept")
                )
            } else {
                String::new()
            }
        );
    }
    for p in &phases {
        if let Some(line) = &p.example {
            println!("  first log line, {}: {line}", p.listener.name());
        }
    }
    println!(
        "total: {total} bad items; server CPU {:.1} s over the flood and settling; {lines_during} log lines",
        (cpu_after - cpu_before) / 1000.0
    );
    let samples = log.samples.lock().unwrap_or_else(|e| e.into_inner());
    for s in samples.iter().take(6) {
        println!("  log: {s}");
    }
    drop(samples);
    let panics = log.panics.load(Ordering::Relaxed);
    println!(
        "server: {}; {panics} panics in its log",
        if alive { "alive" } else { "DEAD" }
    );
    println!(
        "server RSS: {rss_before} KiB before, {rss_peak} KiB at the highest sample, {rss_after} KiB after ({:+} KiB)",
        rss_after as i64 - rss_before as i64
    );
    let up_after = sessions_up(&after_metrics);
    println!(
        "sessions up: {attempts_before:.0} before the flood, {up_after:.0} after (the {} held and the tunnel)",
        held.up
    );
    if !during.is_empty() {
        let mean = during.iter().sum::<f64>() / during.len() as f64;
        let min = during.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "throughput through SSTP during the flood: {:.0} Mbit/s mean of {} runs (lowest {:.0}) = {:.0}% of the {:.0} Mbit/s baseline; after it: {:.0} Mbit/s",
            mean / 1e6,
            during.len(),
            min / 1e6,
            mean / baseline * 100.0,
            baseline / 1e6,
            after_tunnel / 1e6
        );
    } else {
        println!("throughput during the flood: no iperf3 run finished within it (flood too short)");
    }
    println!("server's drop counters (change over the run):");
    for (series, delta) in deltas(&before_metrics, &after_metrics) {
        println!("  {series} +{delta:.0}");
    }

    crate::server_under_test::finish(
        "torture",
        tunnel,
        server,
        topo,
        &dir,
        alive,
        panics,
        up_after < attempts_before,
    )
}

/// Every listener's phase in turn, from this (client) namespace.
fn flood(
    args: &TortureArgs,
    pid: u32,
    fingerprint: &str,
    log: &Log,
    srv_ns: &str,
) -> anyhow::Result<Vec<Phase>> {
    let listeners = args.listeners();
    let weights: u32 = listeners.iter().map(|l| l.weight()).sum();
    let tls = client::verify::Trust::Pin(client::verify::Fingerprint::parse(fingerprint)?)
        .client_config()?;
    let mut phases = Vec::new();
    for listener in listeners {
        if crate::interrupt::requested() {
            break;
        }
        let quota = args.items * u64::from(listener.weight()) / u64::from(weights);
        let deadline = Instant::now() + Duration::from_secs(args.phase_secs);
        let drops_before = kernel_drops(srv_ns);
        let (cpu0, lines0, started) = (
            cpu_ms(pid).unwrap_or(0.0),
            log.lines.load(Ordering::Relaxed),
            Instant::now(),
        );
        *log.example.lock().unwrap_or_else(|e| e.into_inner()) = None;
        log.want_example.store(true, Ordering::Relaxed);
        let Outcome {
            sent,
            failed,
            first_failure,
            lingering,
        } = if listener.is_connection() {
            connections(listener, quota, deadline, args.parallel, &tls)
        } else {
            Outcome {
                sent: datagrams(listener, quota, deadline, args.rate)?,
                ..Outcome::default()
            }
        };
        // The server works off what the kernel queued for it.
        std::thread::sleep(Duration::from_millis(500));
        phases.push(Phase {
            listener,
            sent,
            secs: started.elapsed().as_secs_f64(),
            cpu_ms: cpu_ms(pid).unwrap_or(0.0) - cpu0,
            log_lines: log.lines.load(Ordering::Relaxed) - lines0,
            lingering,
            failed,
            first_failure,
            kernel_drops: kernel_drops(srv_ns).saturating_sub(drops_before),
            example: log.example.lock().unwrap_or_else(|e| e.into_inner()).take(),
        });
    }
    Ok(phases)
}

/// CPU milliseconds per 1,000 items, or "-" when there were none (a
/// phase whose every item failed has no cost per item).
fn per_thousand(cpu_ms: f64, items: u64) -> String {
    if items == 0 {
        return "-".to_owned();
    }
    format!("{:.2}", cpu_ms / (items as f64 / 1000.0))
}

fn target(listener: Listener) -> SocketAddr {
    let port = match listener {
        Listener::Tls | Listener::SstpHttp | Listener::SstpFraming => 443,
        Listener::PptpControl => 1723,
        Listener::Ike500 => 500,
        Listener::Ike4500 | Listener::EspUdp => 4500,
        Listener::Gre | Listener::EspRaw => 0,
    };
    SocketAddr::new(SERVER_FOR_CLI2.parse().expect("a literal address"), port)
}

/// Sends one datagram on the phase's socket.
type SendFn = dyn Fn(&[u8]) -> std::io::Result<usize>;

/// Datagrams as fast as `rate` allows until `quota` or `deadline`.
fn datagrams(listener: Listener, quota: u64, deadline: Instant, rate: u64) -> anyhow::Result<u64> {
    use socket2::{Domain, Protocol, Socket, Type};
    let to = target(listener);
    let send: Box<SendFn> = match listener {
        Listener::Gre | Listener::EspRaw => {
            let proto = if listener == Listener::Gre { 47 } else { 50 };
            let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(proto)))
                .context("raw socket")?;
            let to = socket2::SockAddr::from(to);
            Box::new(move |b| s.send_to(b, &to))
        }
        _ => {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(to)?;
            Box::new(move |b| s.send(b))
        }
    };
    let mut rng = rand::rngs::StdRng::from_entropy();
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < quota {
        if sent.is_multiple_of(1000) {
            if Instant::now() >= deadline || crate::interrupt::requested() {
                break;
            }
            // Pace: stay at or under `rate` per second.
            if rate > 0 {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let item = listener.item(&mut rng);
        // A full send buffer (ENOBUFS) is the flooder's limit, not an
        // item: try the next one.
        if send(&item).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}

/// What one phase's connections came to.
#[derive(Default)]
struct Outcome {
    sent: u64,
    /// Items that could not be sent (connect refused or timed out, or the
    /// TLS handshake failed before the item).
    failed: u64,
    first_failure: Option<String>,
    /// Connections the server did not close within 2 s of our FIN.
    lingering: u64,
}

/// One connection per item, `parallel` at a time.
fn connections(
    listener: Listener,
    quota: u64,
    deadline: Instant,
    parallel: usize,
    tls: &Arc<rustls::ClientConfig>,
) -> Outcome {
    let next = AtomicU64::new(0);
    let (sent, failed, lingering) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let first_failure = std::sync::Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            let (next, sent, failed, lingering, first_failure) =
                (&next, &sent, &failed, &lingering, &first_failure);
            scope.spawn(move || {
                let mut rng = rand::rngs::StdRng::from_entropy();
                while next.fetch_add(1, Ordering::Relaxed) < quota
                    && Instant::now() < deadline
                    && !crate::interrupt::requested()
                {
                    match one_connection(listener, &mut rng, tls) {
                        Ok(true) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                            lingering.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_failure
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            });
        }
    });
    Outcome {
        sent: sent.into_inner(),
        failed: failed.into_inner(),
        first_failure: first_failure
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        lingering: lingering.into_inner(),
    }
}

/// Sends one bad item on a new connection, then our FIN, and waits up to
/// 2 s for the server to close: Ok(true) when it did, Ok(false) when it
/// still held the connection.
fn one_connection(
    listener: Listener,
    rng: &mut rand::rngs::StdRng,
    tls: &Arc<rustls::ClientConfig>,
) -> std::io::Result<bool> {
    let tcp = TcpStream::connect_timeout(&target(listener), Duration::from_secs(2))?;
    // RST on close: no TIME_WAIT on the flooder's side, or a million
    // connections would run out of source ports.
    socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO))?;
    // The item and our close_notify are two small writes: with Nagle's
    // algorithm the second waited for the server's delayed ACK (40 ms),
    // which set the pace of the SSTP framing phase, not the server.
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(2)))?;
    let item = listener.item(rng);
    if !matches!(listener, Listener::SstpHttp | Listener::SstpFraming) {
        // A write the server refused mid-way (it closed on the first
        // bad bytes) still delivered the item.
        let _ = (&tcp).write_all(&item);
        let _ = tcp.shutdown(Shutdown::Write);
        return Ok(closed_within_timeout(&mut &tcp));
    }
    let name =
        rustls::pki_types::ServerName::try_from("ras-bench").map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    if listener == Listener::SstpFraming {
        // A valid upgrade first; the bad framing after the response.
        stream.write_all(crate::torture_items::sstp_request().as_bytes())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
            if stream.read(&mut byte)? == 0 {
                return Ok(true);
            }
            head.push(byte[0]);
        }
    }
    let _ = stream.write_all(&item);
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let _ = stream.sock.shutdown(Shutdown::Write);
    Ok(closed_within_timeout(&mut stream.sock))
}

/// Reads until the server closes (true) or 2 s pass (false).
fn closed_within_timeout(stream: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

/// Datagrams the server namespace's kernel dropped before the server read
/// them: UDP receive-buffer errors (/proc/net/snmp) and raw sockets' drops
/// (/proc/net/raw's last column).
fn kernel_drops(srv_ns: &str) -> u64 {
    let read = |file: &str| {
        std::process::Command::new("ip")
            .args(["netns", "exec", srv_ns, "cat", file])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    udp_rcvbuf_errors(&read("/proc/net/snmp")) + raw_drops(&read("/proc/net/raw"))
}

/// `Udp: … RcvbufErrors …` in /proc/net/snmp (a header line, then values).
fn udp_rcvbuf_errors(snmp: &str) -> u64 {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn raw_drops(raw: &str) -> u64 {
    raw.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// The drop counters and failed session attempts that grew.
fn deltas(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|(k, _)| {
            k.starts_with("ras_dropped_packets_total")
                || k.starts_with("ras_ipsec_dropped_total")
                || k.starts_with("ras_tls_handshake_failures_total")
                || (k.starts_with("ras_session_attempts_total") && !k.contains("success"))
        })
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d > 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drop_counters_are_read_from_proc_text() {
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 0 7 5 7 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(udp_rcvbuf_errors(snmp), 7);
        let raw = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n   47: 00000000:002F 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000 12\n   50: 00000000:0032 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000 3\n";
        assert_eq!(raw_drops(raw), 15);
    }

    #[test]
    fn cost_per_item_is_a_dash_for_a_phase_with_no_item() {
        assert_eq!(per_thousand(9_400.0, 1_000_000), "9.40");
        assert_eq!(per_thousand(15.5, 0), "-");
    }

    #[test]
    fn deltas_keep_drops_and_failed_attempts_that_grew() {
        let before: BTreeMap<String, f64> = [
            ("ras_dropped_packets_total{reason=\"gre\"}".to_owned(), 5.0),
            (
                "ras_dropped_packets_total{reason=\"no_route\"}".to_owned(),
                1.0,
            ),
        ]
        .into();
        let after: BTreeMap<String, f64> = [
            (
                "ras_dropped_packets_total{reason=\"gre\"}".to_owned(),
                905.0,
            ),
            (
                "ras_dropped_packets_total{reason=\"no_route\"}".to_owned(),
                1.0,
            ),
            (
                "ras_session_attempts_total{protocol=\"sstp\",result=\"success\"}".to_owned(),
                9.0,
            ),
            (
                "ras_session_attempts_total{protocol=\"sstp\",result=\"protocol_error\"}"
                    .to_owned(),
                2.0,
            ),
        ]
        .into();
        let d = deltas(&before, &after);
        assert_eq!(
            d,
            vec![
                (
                    "ras_dropped_packets_total{reason=\"gre\"}".to_owned(),
                    900.0
                ),
                (
                    "ras_session_attempts_total{protocol=\"sstp\",result=\"protocol_error\"}"
                        .to_owned(),
                    2.0
                ),
            ]
        );
    }
}
