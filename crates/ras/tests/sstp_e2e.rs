//! `ras server` and `ras connect` end to end, in network namespaces with
//! real TUN devices: client ns ⇄ server ns ⇄ an "intranet" ns with a host.
//! Needs root; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1, SERVER_FOR_CLI2};

mod support;
use support::*;

/// A TLS connection from the first client namespace that sends `data`
/// and returns what came back (openssl s_client; the server certificate
/// is not checked: this is an attacker, not a client).
fn tls_exchange(topo: &Topology, data: &[u8]) -> String {
    let mut child = topo
        .command("cli1", "openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{SERVER_FOR_CLI1}:443"),
            "-quiet",
            "-ign_eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    out
}

#[test]
fn sstp_server_and_client_end_to_end() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rase2e").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-e2e\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\", \"{SERVER_FOR_CLI2}:443\"]\nports = 2\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-e2e0\"\n"
        ),
    )
    .unwrap();
    // A user of our own, added before the server starts.
    let alice_pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &alice_pw, &[]);
    let server = Server::start(&topo, &config);
    let fp = server.fingerprint.clone();

    // First client: the first client address, traffic to the intranet.
    let mut c1 = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        &fp,
        "ras-c1",
    );
    assert_eq!(
        wait_address(&topo, &mut c1, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    let (sent, received, secs) = transfer(&topo, "cli1", 100 * 1024 * 1024);
    assert_eq!(sent, received, "100 MB arrived intact");
    eprintln!(
        "100 MB through SSTP in {secs:.1} s ({:.0} Mbit/s)",
        800.0 / secs
    );

    // IPv6 at once: the router advertisement gave the client an address in
    // the server's /64, and the server's end answers through the tunnel.
    let line = server.expect("IPv6: clients in", Duration::from_secs(5));
    let prefix = line
        .split("clients in ")
        .nth(1)
        .unwrap()
        .trim_end_matches("/64")
        .trim()
        .to_owned();
    let server_v6 = format!("{prefix}1");
    let mut global = false;
    for _ in 0..100 {
        let out = topo
            .command("cli1", "ip")
            .args([
                "-6", "-o", "addr", "show", "dev", "ras-c1", "scope", "global",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(prefix.trim_end_matches(':')) {
            global = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !global {
        for args in [
            &["-6", "addr", "show", "dev", "ras-c1"][..],
            &["token", "list"][..],
            &["-6", "route"][..],
        ] {
            let out = topo.command("cli1", "ip").args(args).output().unwrap();
            eprintln!("ip {args:?}:\n{}", String::from_utf8_lossy(&out.stdout));
        }
        let out = topo
            .command("cli1", "sysctl")
            .args([
                "net.ipv6.conf.ras-c1.accept_ra",
                "net.ipv6.conf.ras-c1.autoconf",
                "net.ipv6.conf.ras-c1.addr_gen_mode",
                "net.ipv6.conf.ras-c1.disable_ipv6",
            ])
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(
        global,
        "no global IPv6 address from the router advertisement"
    );
    assert!(
        topo.command("cli1", "ping")
            .args(["-6", "-c", "2", "-W", "2", &server_v6])
            .status()
            .unwrap()
            .success(),
        "ping6 {server_v6} through the tunnel"
    );
    // The server's link-local address (what IPv6CP negotiated for its
    // side) answers too, as pppd's and RRAS's do.
    let up = server.expect("PPP link up", Duration::from_secs(5));
    let server_ll = server_link_local(&up);
    assert!(
        ping_link_local(&topo, "cli1", &server_ll, "ras-c1"),
        "ping6 {server_ll}%ras-c1"
    );

    // Second client: the next address.
    let mut c2 = connect_sstp(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        &fp,
        "ras-c2",
    );
    assert_eq!(
        wait_address(&topo, &mut c2, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 22))
    );
    assert!(ping(&topo, "cli2", LAN_HOST));

    // Over the port limit (2): refused with a clear message.
    let c3 = connect_sstp(
        &topo,
        "cli2",
        SERVER_FOR_CLI2,
        "alice",
        &alice_pw,
        &fp,
        "ras-c3",
    );
    let (ok, text) = finish(c3, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.contains("503") || text.contains("ports"), "{text}");
    server.expect("SSTP ports are in use", Duration::from_secs(5));

    // The first client disconnects cleanly; its address is freed and reused.
    interrupt(&c1);
    let (ok, _) = finish(c1, Duration::from_secs(15));
    assert!(ok, "clean disconnect exits 0");
    server.expect("address freed", Duration::from_secs(10));

    // Hostile connections cost only themselves, with a log line each,
    // while the second client keeps working.
    let garbage = topo.in_ns("cli1", || {
        let mut s = TcpStream::connect((SERVER_FOR_CLI1, 443)).unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
            .unwrap();
        s.write_all(&[0xaa; 4096]).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    garbage.unwrap();
    server.expect("TLS handshake failed", Duration::from_secs(10));
    let answer = tls_exchange(&topo, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.contains("HTTP/1.1 405"), "{answer}");
    server.expect("SSTP request refused", Duration::from_secs(10));
    let mut bad_length = b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\nSSTPCORRELATIONID: {1}\r\n\r\n".to_vec();
    bad_length.extend_from_slice(&[0x10, 0x01, 0x00, 0x02, 0, 0, 0, 0]);
    let answer = tls_exchange(&topo, &bad_length);
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
    server.expect("the byte stream is not SSTP", Duration::from_secs(10));
    // Slowloris: connect and say nothing; the server gives up on its own.
    let slow = topo
        .in_ns("cli1", || {
            TcpStream::connect((SERVER_FOR_CLI1, 443)).unwrap()
        })
        .unwrap();
    assert!(ping(&topo, "cli2", LAN_HOST), "other clients keep working");
    server.expect("TLS handshake timed out", Duration::from_secs(20));
    drop(slow);

    // Wrong password: MS-CHAPv2 error, no address consumed.
    let wrong = password_file(dir.path(), "wrong", "not the password");
    let bad = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &wrong,
        &fp,
        "ras-c4",
    );
    let (ok, text) = finish(bad, Duration::from_secs(30));
    assert!(!ok);
    assert!(text.contains("691"), "{text}");

    // A certificate that does not match the pinned fingerprint is refused.
    let other_fp = "00".repeat(32);
    let mitm = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        &other_fp,
        "ras-c5",
    );
    let (ok, text) = finish(mitm, Duration::from_secs(20));
    assert!(!ok);
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // The freed address goes to the next client.
    let mut c6 = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &alice_pw,
        &fp,
        "ras-c6",
    );
    assert_eq!(
        wait_address(&topo, &mut c6, Duration::from_secs(20)),
        Some(Ipv4Addr::new(10, 0, 10, 21))
    );

    // Graceful stop: both clients are disconnected, every address freed.
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    server.expect(
        "stopped; 0 address(es) still in use",
        Duration::from_secs(20),
    );
    let (_, text) = finish(c6, Duration::from_secs(20));
    assert!(
        text.to_lowercase().contains("disconnect") || text.contains("terminated"),
        "{text}"
    );
    let _ = finish(c2, Duration::from_secs(20));
}
