//! PPTP end to end: `ras server` (TCP 1723 + one raw GRE socket) and
//! `ras connect pptp://`, in network namespaces with real TUN devices:
//! client ns ⇄ server ns ⇄ an "intranet" ns with a host. Needs root; skips
//! with a message otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};
use sha2::{Digest, Sha256};

const RAS: &str = env!("CARGO_BIN_EXE_ras");

fn can_run() -> bool {
    if interop::netns::is_root() {
        return true;
    }
    if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("RAS_INTEROP_REQUIRED=1 but not root: cannot create network namespaces");
    }
    eprintln!("SKIPPED (e2e): needs root for network namespaces and TUN devices");
    false
}

struct Server {
    child: Child,
    output: mpsc::Receiver<String>,
}

impl Server {
    /// Start `ras server` in the server namespace; wait until it listens.
    fn start(topo: &Topology, config: &Path) -> Server {
        let mut child = topo
            .command("srv", RAS)
            .args(["server", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
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
        let server = Server { child, output };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = server
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("ras server did not start");
            if line.starts_with("ras server:") {
                break;
            }
        }
        server
    }

    /// Wait for a line of output containing `text`.
    fn expect(&self, text: &str, within: Duration) -> String {
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

struct Client {
    child: Child,
    tun: String,
    role: &'static str,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(format!("{name}.pw"));
    std::fs::write(&path, format!("{password}\n")).unwrap();
    path
}

fn connect(
    topo: &Topology,
    role: &'static str,
    server: &str,
    user: &str,
    pw: &Path,
    tun: &str,
) -> Client {
    let child = topo
        .command(role, RAS)
        .args([
            "connect",
            &format!("pptp://{server}"),
            "--user",
            user,
            "--password-file",
        ])
        .arg(pw)
        .args(["--no-dns", "--tun-name", tun, "--route", "172.31.0.0/24"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ras connect");
    Client {
        child,
        tun: tun.to_owned(),
        role,
    }
}

/// The IPv4 address on the client's TUN once the link is up.
fn wait_address(topo: &Topology, client: &mut Client, within: Duration) -> Option<Ipv4Addr> {
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
            return addr.split('/').next().and_then(|a| a.parse().ok());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Wait for the client process to exit; returns (success, all output).
fn finish(mut client: Client, within: Duration) -> (bool, String) {
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

fn interrupt(client: &Client) {
    let _ = Command::new("kill")
        .args(["-INT", &client.child.id().to_string()])
        .status();
}

fn ping(topo: &Topology, role: &str, target: &str) -> bool {
    topo.command(role, "ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", target])
        .status()
        .unwrap()
        .success()
}

/// Send `size` bytes from `role` to the LAN host over TCP; both ends hash
/// what they saw. Returns (sent digest, received digest, seconds).
fn transfer(topo: &Topology, role: &str, size: usize) -> ([u8; 32], [u8; 32], f64) {
    let listener = topo
        .in_ns("lan", || TcpListener::bind((LAN_HOST, 9100)).unwrap())
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
    let stream = topo
        .in_ns(role, || TcpStream::connect((LAN_HOST, 9100)).unwrap())
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

fn write_config(path: &Path, state: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-pptp-e2e\"\n\n[sstp]\nlisten = []\n\n[pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\", \"{SERVER_FOR_CLI2}:1723\"]\nports = 1\n\n[tun]\nname = \"rasp2e0\"\n{extra}"
        ),
    )
    .unwrap();
}

#[test]
fn pptp_server_and_client_end_to_end() {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    let topo = Topology::create("rasp2e").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    write_config(&config, &state, "");
    let alice_pw = password_file(dir.path(), "alice", "correct horse battery");
    let status = Command::new(RAS)
        .args(["user", "--config"])
        .arg(&config)
        .args(["add", "alice", "--password-file"])
        .arg(&alice_pw)
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start(&topo, &config);

    // First client: the first client address, traffic to the intranet
    // through GRE with MPPE-128.
    let mut c1 = connect(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        "rasp-c1",
    );
    assert_eq!(
        wait_address(&topo, &mut c1, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    server.expect("PPP link up", Duration::from_secs(5));
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let (sent, received, secs) = transfer(&topo, "cli1", 10 * 1024 * 1024);
    assert_eq!(sent, received, "10 MB arrived intact");
    eprintln!(
        "10 MB through PPTP in {secs:.2} s ({:.0} Mbit/s)",
        80.0 / secs
    );

    // Over the port limit (1), from the other side: refused with a reason.
    let c2 = connect(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        "rasp-c2",
    );
    let (ok, text) = finish(c2, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.contains("NoResource"), "{text}");
    server.expect("PPTP ports are in use", Duration::from_secs(5));
    assert!(
        ping(&topo, "cli1", LAN_HOST),
        "the first client keeps working"
    );

    // The first client disconnects cleanly; its address is freed.
    interrupt(&c1);
    let (ok, _) = finish(c1, Duration::from_secs(15));
    assert!(ok, "clean disconnect exits 0");
    server.expect("address freed", Duration::from_secs(10));

    // Wrong password: MS-CHAPv2 error 691.
    let wrong = password_file(dir.path(), "wrong", "not the password");
    let bad = connect(&topo, "cli2", SERVER_FOR_CLI2, "alice", &wrong, "rasp-c3");
    // The server allows a retry (R=1, as RRAS does); our client does not
    // retry and gives up when its authentication timer runs out.
    let (ok, text) = finish(bad, Duration::from_secs(60));
    assert!(!ok);
    assert!(text.contains("691"), "{text}");

    // The port and the address are free again: the next client gets both.
    let mut c4 = connect(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        "rasp-c4",
    );
    assert_eq!(
        wait_address(&topo, &mut c4, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert!(ping(&topo, "cli2", LAN_HOST));

    // Graceful stop: the client is disconnected, every address freed.
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    server.expect(
        "stopped; 0 address(es) still in use",
        Duration::from_secs(20),
    );
    let _ = finish(c4, Duration::from_secs(20));
    drop(server);

    // A server without MPPE: our client requires it and refuses the link.
    let plain = dir.path().join("plain.toml");
    write_config(&plain, &state, "\n[encryption]\nmppe = \"none\"\n");
    let server = Server::start(&topo, &plain);
    let c5 = connect(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        "rasp-c5",
    );
    let (ok, text) = finish(c5, Duration::from_secs(30));
    assert!(!ok);
    assert!(text.to_lowercase().contains("encryption"), "{text}");
    drop(server);
    eprintln!(
        "PPTP end to end in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
