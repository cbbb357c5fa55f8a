//! Helpers shared by the end-to-end tests in network namespaces: the
//! server and client processes, waiting for addresses, ping and checked
//! TCP transfers to the "intranet" host.

// Each test crate uses a different subset.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod client_daemon;
pub mod guest_hold;
pub mod nat_lab;
pub mod pki;
pub mod systemd_container;

use interop::netns::{Topology, LAN_HOST};
use sha2::{Digest, Sha256};

pub const RAS: &str = env!("CARGO_BIN_EXE_ras");

pub fn can_run() -> bool {
    if interop::netns::is_root() {
        return true;
    }
    if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("RAS_INTEROP_REQUIRED=1 but not root: cannot create network namespaces");
    }
    eprintln!("SKIPPED (e2e): needs root for network namespaces and TUN devices");
    false
}

pub struct Server {
    pub child: Child,
    /// The certificate's SHA-256 fingerprint as the server printed it.
    pub fingerprint: String,
    output: mpsc::Receiver<String>,
    /// What the server printed before its ready line. Its log (stderr) and
    /// its own lines (stdout) are read by two threads, so a log line
    /// written before the ready line may arrive before it or after it.
    startup: Vec<String>,
}

impl Server {
    /// Start `ras server` in the server namespace; wait until it listens.
    pub fn start(topo: &Topology, config: &Path) -> Server {
        Server::start_with(topo.command("srv", RAS), config, "info")
    }

    /// Start `ras server` with `command` (the `ras` binary, e.g. in some
    /// namespace) and `RUST_LOG=log`; wait until it listens.
    pub fn start_with(mut command: Command, config: &Path, log: &str) -> Server {
        let mut child = command
            .args(["server", "--config"])
            .arg(config)
            .env("RUST_LOG", log)
            .env("RAS_ADMIN_SOCKET", admin_socket_for(config))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ras server");
        let (tx, output) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                    let _ = tx.send(line);
                }
            });
        }
        let mut server = Server {
            child,
            fingerprint: String::new(),
            output,
            startup: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = server
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("ras server did not start");
            if let Some(fp) = line.split("fingerprint ").nth(1) {
                server.fingerprint = fp.trim().to_owned();
            }
            let ready = line.starts_with("ras server:");
            server.startup.push(line);
            if ready {
                break;
            }
        }
        assert!(!server.fingerprint.is_empty());
        server
    }

    /// Every line of output for `duration`.
    pub fn lines_for(&self, duration: Duration) -> Vec<String> {
        let deadline = Instant::now() + duration;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .output
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// Wait for a line of output containing `text`.
    /// Every line the server prints until it has been quiet for `quiet`.
    #[allow(dead_code)]
    pub fn drain(&self, quiet: Duration) -> Vec<String> {
        std::iter::from_fn(|| self.output.recv_timeout(quiet).ok()).collect()
    }

    /// Like [`Server::expect`], for a line the server logs while it
    /// starts: found among the lines read before the ready line too.
    pub fn expect_from_start(&self, text: &str, within: Duration) -> String {
        match self.startup.iter().find(|l| l.contains(text)) {
            Some(line) => line.clone(),
            None => self.expect(text, within),
        }
    }

    /// Like [`Server::expect`], failing if a line before it contains
    /// `forbidden` (something that must not happen on the way).
    #[allow(dead_code)]
    pub fn expect_without(&self, text: &str, forbidden: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            match self
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(forbidden) => {
                    panic!("server said {forbidden:?} before {text:?}: {line}")
                }
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("server never said {text:?}"),
            }
        }
    }

    pub fn expect(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            match self
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("server never said {text:?}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    pub child: Child,
    pub tun: String,
    pub role: &'static str,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin socket of the server of `config`: beside the file, so that
/// the servers of tests running at once never share one (the default,
/// /run/ras/admin.sock, is for one server per host).
pub fn admin_socket_for(config: &Path) -> PathBuf {
    config.with_extension("admin.sock")
}

pub fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("{name}.pw"));
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path
}

/// `ras user add NAME --password-file PW [--group G]...` on `config`'s store.
pub fn add_user(config: &Path, name: &str, pw: &Path, groups: &[&str]) {
    let mut cmd = Command::new(RAS);
    cmd.args(["user", "--config"])
        .arg(config)
        .args(["add", name, "--password-file"])
        .arg(pw);
    for g in groups {
        cmd.args(["--group", g]);
    }
    assert!(cmd.status().unwrap().success(), "ras user add {name}");
}

/// The IPv4 address on the client's TUN once the link is up.
pub fn wait_address(topo: &Topology, client: &mut Client, within: Duration) -> Option<Ipv4Addr> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = client.child.try_wait() {
            return None;
        }
        let out = topo
            .command(client.role, "ip")
            .args(["-4", "-o", "addr", "show", "dev", &client.tun])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(addr) = text.split_whitespace().skip_while(|w| *w != "inet").nth(1) {
            // `ras connect` adds its routes just after the address: wait for
            // them too (up to 3 s, for clients without routes), or a
            // transfer started now finds no route ("Network is unreachable").
            let routed_by = (Instant::now() + Duration::from_secs(3)).min(deadline);
            while Instant::now() < routed_by && !has_routes(topo, client) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return addr.split('/').next().and_then(|a| a.parse().ok());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Whether the client's TUN carries a route it added (any route through
/// the device other than the kernel's own).
fn has_routes(topo: &Topology, client: &Client) -> bool {
    let out = topo
        .command(client.role, "ip")
        .args(["-4", "route", "show", "dev", &client.tun])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| !l.contains("proto kernel"))
}

/// Wait for the client process to exit; returns (success, all output).
pub fn finish(mut client: Client, within: Duration) -> (bool, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = client.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!("client did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    let _ = client
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text);
    let _ = client
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text);
    eprintln!("[client {}] {text}", client.tun);
    (status.success(), text)
}

pub fn interrupt(client: &Client) {
    let _ = Command::new("kill")
        .args(["-INT", &client.child.id().to_string()])
        .status();
}

pub fn ping(topo: &Topology, role: &str, target: &str) -> bool {
    topo.command(role, "ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", target])
        .status()
        .unwrap()
        .success()
}

/// Send `size` bytes from `role` to the LAN host over TCP; both ends hash
/// what they saw. Returns (sent digest, received digest, seconds).
pub fn transfer(topo: &Topology, role: &str, size: usize) -> ([u8; 32], [u8; 32], f64) {
    transfer_on_port(topo, role, 9100, size)
}

/// [`transfer`] to another port of the LAN host, so that several run at once.
pub fn transfer_on_port(
    topo: &Topology,
    role: &str,
    port: u16,
    size: usize,
) -> ([u8; 32], [u8; 32], f64) {
    let listener = topo
        .in_ns("lan", || TcpListener::bind((LAN_HOST, port)).unwrap())
        .unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
        }
        <[u8; 32]>::from(hash.finalize())
    });
    let started = Instant::now();
    // The client's routes can lag its address by a moment: retry a
    // refused or unroutable connect for up to 5 s.
    let stream = topo
        .in_ns(role, || {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match TcpStream::connect((LAN_HOST, port)) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("transfer: connect to {LAN_HOST}:{port}: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => panic!("transfer: connect to {LAN_HOST}:{port}: {e}"),
                }
            }
        })
        .unwrap();
    let mut stream = stream;
    let mut hash = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    let mut x: u32 = 0x1234_5678;
    while sent < size {
        for b in block.iter_mut() {
            // xorshift: incompressible, reproducible data.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let n = block.len().min(size - sent);
        stream.write_all(&block[..n]).unwrap();
        hash.update(&block[..n]);
        sent += n;
    }
    drop(stream);
    let received = receiver.join().unwrap();
    (
        hash.finalize().into(),
        received,
        started.elapsed().as_secs_f64(),
    )
}

/// `ras connect sstp://SERVER` from `role` as `user`, pinning the server
/// certificate's fingerprint `fp`, on TUN `tun`, with a route to the LAN.
pub fn connect_sstp(
    topo: &Topology,
    role: &'static str,
    server: &str,
    user: &str,
    pw: &Path,
    fp: &str,
    tun: &str,
) -> Client {
    connect_to(
        topo,
        role,
        &format!("sstp://{server}"),
        user,
        pw,
        &["--fingerprint", fp, "--no-dns"],
        tun,
    )
}

/// `ras connect URL` from `role` as `user` with the password in `pw`, the
/// other options `args`, on TUN `tun`, with a route to the LAN.
pub fn connect_to(
    topo: &Topology,
    role: &'static str,
    url: &str,
    user: &str,
    pw: &Path,
    args: &[&str],
    tun: &str,
) -> Client {
    let mut cmd = topo.command(role, RAS);
    cmd.args(["connect", url, "--user", user, "--password-file"])
        .arg(pw)
        .args(args)
        .args(["--tun-name", tun, "--route", "172.31.0.0/24"]);
    spawn_client(cmd, role, tun)
}

/// Start a client command (`ras connect`, `ras dial`) in `role`'s
/// namespace, logging at info with its output captured, as the [`Client`]
/// that will own TUN `tun`.
pub fn spawn_client(mut cmd: Command, role: &'static str, tun: &str) -> Client {
    let child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the ras client");
    Client {
        child,
        tun: tun.to_owned(),
        role,
    }
}

/// `ip ARGS` in `role`'s namespace: its standard output.
pub fn ip_in(topo: &Topology, role: &str, args: &[&str]) -> String {
    let out = topo.command(role, "ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server's link-local address from its "PPP link up" log line
/// ("…, client fe80::… (server fe80::…), …").
pub fn server_link_local(line: &str) -> String {
    let at = line
        .find("(server fe80:")
        .unwrap_or_else(|| panic!("no server link-local address in {line:?}"));
    line[at + "(server ".len()..]
        .split(')')
        .next()
        .unwrap()
        .to_owned()
}

/// `ping -6` from `role` to the link-local `addr` through `dev`: true if
/// answered.
pub fn ping_link_local(topo: &Topology, role: &str, addr: &str, dev: &str) -> bool {
    topo.command(role, "ping")
        .args([
            "-6",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "2",
            &format!("{addr}%{dev}"),
        ])
        .status()
        .unwrap()
        .success()
}

/// A TCP echo service in the server's namespace, reachable from clients
/// at the server's address on the TUN; serves one connection.
pub fn echo_service(vm: &interop::Vm) -> u16 {
    let listener = vm
        .in_ns(|| std::net::TcpListener::bind("0.0.0.0:0"))
        .expect("the namespace")
        .expect("an echo port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let mut reader = stream.try_clone().unwrap();
            let mut writer = stream;
            let _ = std::io::copy(&mut reader, &mut writer);
        }
    });
    port
}

/// The interop VM for a test that runs guest jobs, or `None` after saying
/// why the test is skipped (not root, no VM, an image without guest jobs);
/// with `RAS_INTEROP_REQUIRED=1` a missing piece is a failure instead.
/// FreeRADIUS on loopback in the interop VM's namespace, for a test whose
/// users only RADIUS knows: the shared secret is written to
/// `state/radius.secret`, and the `[radius]` section that uses it is
/// returned for the server's configuration. `None` (the test says it is
/// skipped) when FreeRADIUS is not installed.
pub fn freeradius_for_vm(
    vm: &interop::Vm,
    dir: &Path,
    state: &Path,
    what: &str,
) -> Option<(interop::freeradius::FreeRadius, String)> {
    if !interop::freeradius::available() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but FreeRADIUS is not installed");
        }
        eprintln!("SKIPPED ({what}): FreeRADIUS is not installed");
        return None;
    }
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(
        state.join("radius.secret"),
        format!("{}\n", interop::freeradius::SECRET),
    )
    .unwrap();
    let fr =
        interop::freeradius::FreeRadius::start(&dir.join("fr"), Some(&vm.ns), Ipv4Addr::LOCALHOST)
            .expect("FreeRADIUS");
    let section = "[radius]\ntimeout_secs = 2\n\n[[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"radius.secret\"\n\n";
    Some((fr, section.to_string()))
}

pub fn vm_with_guest_jobs(what: &str) -> Option<&'static interop::Vm> {
    if !interop::require_root_or_skip() {
        return None;
    }
    let vm = interop::Vm::shared().expect("interop VM");
    if !vm.has_guest_jobs() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but the interop guest runs no jobs (rebuild the image)");
        }
        eprintln!("SKIPPED ({what}): the interop guest image predates guest jobs");
        return None;
    }
    Some(vm)
}

/// `ras server`'s /metrics over its admin socket, parsed as Prometheus
/// parses it (one scrape: values read from it are of one moment).
pub fn scrape(socket: &Path) -> prometheus_parse::Scrape {
    let answer = server::admin_client::request(socket, "GET", "/metrics").expect("GET /metrics");
    let text = String::from_utf8(answer.body).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

/// The value of the first sample `name` whose labels include every one of
/// `labels` (a counter, a gauge or untyped), if there is one.
pub fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| sample_value(name, &s.value))
}

/// [`sample`] from a fresh scrape, which must have it.
pub fn metric(socket: &Path, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&scrape(socket), name, labels)
        .unwrap_or_else(|| panic!("no {name} with labels {labels:?} in /metrics"))
}

/// The sum of the samples of counter `name` whose labels include every
/// one of `labels`, from a fresh scrape (0 when there is none yet).
pub fn counter(socket: &Path, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape(socket)
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| sample_value(name, &s.value))
        .sum()
}

fn sample_value(name: &str, value: &prometheus_parse::Value) -> f64 {
    use prometheus_parse::Value;
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name}: not a counter or gauge: {other:?}"),
    }
}
