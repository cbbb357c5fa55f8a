//! Connections that never log in cannot keep real clients out (issue 18,
//! handshake flood from many addresses): a logical port is only lent to a
//! connection until its user is authenticated; when every port is taken
//! the one that has waited longest without logging in gives its port to a
//! new connection and is closed (logical_ports.rs). Logged-in sessions are
//! never evicted: with every port theirs, a newcomer is refused as before.
//! SSTP (connections that finish TLS and the SSTP request, then sit
//! there) and PPTP (control connections that send nothing). Needs root;
//! skips with a message otherwise (fails under RAS_INTEROP_REQUIRED=1).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

/// `ras_sstp_connections_refused_total` for `reason`.
fn refused(socket: &Path, reason: &str) -> f64 {
    counter(
        socket,
        "ras_sstp_connections_refused_total",
        &[("reason", reason)],
    )
}

/// A TLS connection from cli2 that sends the SSTP request and then sits
/// there (openssl s_client: the server certificate is not checked, this is
/// not a client). Returns it once the server has answered, with the
/// answer's status line.
struct Idler {
    child: Child,
    answer: std::sync::mpsc::Receiver<String>,
}

impl Idler {
    fn start(topo: &Topology) -> Idler {
        let mut child = topo
            .command("cli2", "openssl")
            .args([
                "s_client",
                "-connect",
                &format!("{SERVER_FOR_CLI2}:443"),
                "-quiet",
                "-ign_eof",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(
                b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n\
                  Host: ras\r\nContent-Length: 18446744073709551615\r\n\
                  SSTPCORRELATIONID: {11111111-2222-3333-4444-555555555555}\r\n\r\n",
            )
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n") && head.len() < 200 {
                match out.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).trim().to_owned());
            // Keep reading so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        Idler { child, answer }
    }

    fn status_line(&self) -> String {
        self.answer
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_default()
    }

    /// Whether the server closed the connection (s_client exits then)
    /// within `limit`.
    fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Idler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sstp_connections_that_do_not_log_in_give_their_ports_to_real_clients() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("pevs").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-pevs\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\", \"{SERVER_FOR_CLI2}:443\"]\nports = 2\n\n\
             [pptp]\nlisten = []\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"raspe0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start_with(topo.command("srv", RAS), &config, "info");
    let admin = admin_socket_for(&config);

    // Two connections take both ports and never log in.
    let mut older = Idler::start(&topo);
    assert!(older.status_line().starts_with("HTTP/1.1 200"));
    let mut younger = Idler::start(&topo);
    assert!(younger.status_line().starts_with("HTTP/1.1 200"));

    // A real client still gets in: the older one gives its port up.
    let mut first = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "raspe1",
    );
    assert!(
        wait_address(&topo, &mut first, Duration::from_secs(15)).is_some(),
        "a real client was kept out by connections that never logged in"
    );
    assert!(
        older.closed_within(Duration::from_secs(3)),
        "the older idle connection was not closed"
    );
    assert!(
        !younger.closed_within(Duration::from_millis(300)),
        "the younger idle connection was closed first"
    );

    // And a second one: the younger gives its port up too.
    let mut second = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        "raspe2",
    );
    assert!(wait_address(&topo, &mut second, Duration::from_secs(15)).is_some());
    assert!(younger.closed_within(Duration::from_secs(3)));
    assert_eq!(refused(&admin, "evicted_unauthenticated"), 2.0);

    // Both ports now belong to logged-in sessions: a newcomer is refused
    // (HTTP 503), and neither session is touched.
    let late = Idler::start(&topo);
    let status = late.status_line();
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert_eq!(refused(&admin, "ports_busy"), 1.0);
    assert_eq!(refused(&admin, "evicted_unauthenticated"), 2.0);
    assert!(ping(&topo, "cli1", interop::netns::LAN_HOST));
    server.expect(
        "its port went to a newer connection",
        Duration::from_secs(2),
    );
    drop(first);
    drop(second);
}

#[test]
fn pptp_control_connections_that_do_not_log_in_give_their_ports_to_real_clients() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("pevp").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-pevp\"\n\n[sstp]\nlisten = []\n\n\
             [pptp]\nlisten = [\"{SERVER_FOR_CLI1}:1723\", \"{SERVER_FOR_CLI2}:1723\"]\nports = 1\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"raspp0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start_with(topo.command("srv", RAS), &config, "info");

    // A control connection that sends nothing holds the only port.
    let mut idle = topo
        .in_ns("cli2", || {
            TcpStream::connect((SERVER_FOR_CLI2, 1723)).expect("TCP connect")
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let url = format!("pptp://{SERVER_FOR_CLI1}");
    let mut client = connect_to(&topo, "cli1", &url, "alice", &pw, &["--no-dns"], "raspp1");
    assert!(
        wait_address(&topo, &mut client, Duration::from_secs(15)).is_some(),
        "a real client was kept out by a control connection that never logged in"
    );
    // The idle connection was closed (EOF or reset).
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    let closed = match idle.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "the idle control connection was not closed");
    server.expect(
        "its port went to a newer connection",
        Duration::from_secs(2),
    );

    // With the port the session's, a second client is refused.
    let url2 = format!("pptp://{SERVER_FOR_CLI2}");
    let other = connect_to(&topo, "cli2", &url2, "alice", &pw, &["--no-dns"], "raspp2");
    let (ok, text) = finish(other, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.contains("insufficient resources"), "{text}");
    assert!(ping(&topo, "cli1", interop::netns::LAN_HOST));
    drop(client);
}
