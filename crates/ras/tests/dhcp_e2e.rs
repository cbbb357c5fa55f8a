//! `ras server` with `[addresses] source = "dhcp"` against a real DHCP
//! server (dnsmasq) in a network namespace, end to end: addresses leased in
//! blocks of 10 only once the first client connects, 10 more when all are
//! in use, all released when the server stops, APIPA when no DHCP server
//! answers, and a client's DHCPINFORM answered through the relay.
//!
//! Many SSTP clients run in-process in the client namespace with the real
//! client library and no TUN devices (as `ras-bench` does); the INFORM is
//! an IP packet sent through one client's tunnel.
//!
//! Needs root and dnsmasq; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI). Also prints the time a client takes
//! to get a DHCP-backed address (the benchmark of docs/BENCHMARKS.md).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::network::{Attachment, Connected, Network, NetworkError};
use client::sstp::SstpOptions;
use client::target::Target;
use client::verify::{Fingerprint, Trust};
use interop::dnsmasq::{DhcpLan, Lease, DHCP_SERVER, DOMAIN};
use interop::netns::{Topology, SERVER_FOR_CLI1};
use tokio::sync::{mpsc, watch};
use tunnel::PacketSink;

mod support;
use support::*;

/// Bob's address from a remote access policy: on the intranet's subnet,
/// outside dnsmasq's range.
const BOB_STATIC: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 50);

/// Packets one client received through its tunnel (bounded).
#[derive(Default)]
struct Capture(Mutex<Vec<Vec<u8>>>);

impl PacketSink for Capture {
    fn send(&self, packet: &[u8]) {
        let mut v = self.0.lock().unwrap();
        if v.len() < 1000 {
            v.push(packet.to_vec());
        }
    }
}

/// What a client's link brought up.
struct Up {
    local: Ipv4Addr,
    server: Ipv4Addr,
    to_tunnel: tunnel::PacketSender,
    received: Arc<Capture>,
}

/// A `Network` that attaches nothing on the host: it reports the link
/// and keeps both ends of the packet path for the test.
struct TestNetwork(std::sync::mpsc::Sender<Up>);

impl Network for TestNetwork {
    fn attach(&self, link: &Connected) -> Result<Attachment, NetworkError> {
        let (tx, rx) = tunnel::packet_queue(16);
        let received = Arc::new(Capture::default());
        let (local, server) = link
            .ipv4
            .unwrap_or((Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED));
        let _ = self.0.send(Up {
            local,
            server,
            to_tunnel: tx.clone(),
            received: received.clone(),
        });
        Ok(Attachment {
            outbound: rx,
            inbound: received,
            description: String::new(),
            guard: Box::new(tx),
        })
    }
}

/// SSTP clients running in one thread inside the client namespace.
struct Clients {
    commands: mpsc::UnboundedSender<std::sync::mpsc::Sender<Option<Up>>>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(ns: String, options: SstpOptions) -> Clients {
        let (commands, mut rx) = mpsc::unbounded_channel::<std::sync::mpsc::Sender<Option<Up>>>();
        let (stop, stop_rx) = watch::channel(false);
        let thread = std::thread::spawn(move || {
            interop::netns::in_named_ns(&ns, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let options = Arc::new(options);
                    let mut sessions = Vec::new();
                    while let Some(reply) = rx.recv().await {
                        let (up_tx, up_rx) = std::sync::mpsc::channel();
                        let network: Arc<dyn Network> = Arc::new(TestNetwork(up_tx));
                        let (options, stop) = (options.clone(), stop_rx.clone());
                        sessions.push(tokio::spawn(async move {
                            let r = client::sstp::connect(&options, network, stop).await;
                            if let Err(e) = &r {
                                eprintln!("[client] {e}");
                            }
                        }));
                        // Wait (without blocking the runtime) for the link.
                        let deadline = Instant::now() + Duration::from_secs(30);
                        let up = loop {
                            match up_rx.try_recv() {
                                Ok(up) => break Some(up),
                                Err(std::sync::mpsc::TryRecvError::Disconnected) => break None,
                                Err(_) if Instant::now() > deadline => break None,
                                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                            }
                        };
                        let _ = reply.send(up);
                    }
                    for s in sessions {
                        let _ = tokio::time::timeout(Duration::from_secs(15), s).await;
                    }
                });
            })
            .unwrap();
        });
        Clients {
            commands,
            stop,
            thread: Some(thread),
        }
    }

    /// Connects one more client; returns its link and the time it took.
    fn connect(&self) -> (Option<Up>, Duration) {
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.send(tx).unwrap();
        let up = rx.recv_timeout(Duration::from_secs(40)).ok().flatten();
        (up, started.elapsed())
    }

    /// Disconnects every client and waits for them.
    fn shutdown(mut self) {
        let _ = self.stop.send(true);
        drop(self.commands);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn options(fingerprint: &str, password: &str) -> SstpOptions {
    let target = Target::parse(&format!("sstp://{SERVER_FOR_CLI1}")).unwrap();
    let trust = Trust::Pin(Fingerprint::parse(fingerprint).unwrap());
    let mut o = SstpOptions::new(
        target,
        "alice",
        zeroize::Zeroizing::new(password.to_owned()),
        trust,
    );
    o.ipv6 = false;
    o
}

/// RFC 2131 §4.4.3: a DHCPINFORM from `client` (ciaddr = its address,
/// broadcast to 255.255.255.255:67), asking for the domain name (15) and
/// DNS servers (6), wrapped in IPv4 and UDP (checksum 0: RFC 768 allows
/// none over IPv4).
fn inform_packet(client: Ipv4Addr, xid: u32) -> Vec<u8> {
    let mut dhcp = vec![0u8; 236];
    dhcp[0] = 1; // BOOTREQUEST
    dhcp[1] = 1; // Ethernet
    dhcp[2] = 6;
    dhcp[4..8].copy_from_slice(&xid.to_be_bytes());
    dhcp[12..16].copy_from_slice(&client.octets()); // ciaddr
    dhcp[28..34].copy_from_slice(&[0x02, 0x15, 0x5d, 0, 0, 1]);
    dhcp.extend_from_slice(&[99, 130, 83, 99]);
    dhcp.extend_from_slice(&[53, 1, 8]); // DHCPINFORM
    dhcp.extend_from_slice(&[61, 7, 1, 0x02, 0x15, 0x5d, 0, 0, 1]);
    dhcp.extend_from_slice(&[55, 2, 15, 6]);
    dhcp.push(255);
    let udp_len = 8 + dhcp.len();
    let total = 20 + udp_len;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&client.octets());
    ip.extend_from_slice(&Ipv4Addr::BROADCAST.octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let check = !(sum as u16);
    ip[10..12].copy_from_slice(&check.to_be_bytes());
    ip.extend_from_slice(&68u16.to_be_bytes());
    ip.extend_from_slice(&67u16.to_be_bytes());
    ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&dhcp);
    ip
}

/// The DHCP payload of a received IPv4/UDP packet to port 68.
fn dhcp_payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let udp = packet.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != 68 {
        return None;
    }
    udp.get(8..)
}

/// Option `code` of a DHCP message.
fn dhcp_option(msg: &[u8], code: u8) -> Option<&[u8]> {
    let mut i = 240;
    while i < msg.len() {
        match msg[i] {
            0 => i += 1,
            255 => return None,
            c => {
                let len = usize::from(*msg.get(i + 1)?);
                let value = msg.get(i + 2..i + 2 + len)?;
                if c == code {
                    return Some(value);
                }
                i += 2 + len;
            }
        }
    }
    None
}

fn stop_server(mut server: Server) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let line = server.expect("DHCP lease(s)", Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    line
}

fn ips(leases: &[Lease]) -> Vec<Ipv4Addr> {
    let mut v: Vec<_> = leases.iter().map(|l| l.ip).collect();
    v.sort();
    v
}

#[test]
fn dhcp_blocks_release_apipa_and_relay() {
    if !can_run() {
        return;
    }
    if !interop::dnsmasq::available() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but dnsmasq is not installed");
        }
        eprintln!("SKIPPED (dhcp e2e): dnsmasq is not installed");
        return;
    }
    let topo = Topology::create("dhcpe2e").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    // The server's intranet interface has an address on the DHCP server's
    // subnet (the relay's giaddr); the engine does not need it.
    let mut lan = DhcpLan::create(
        "dhcpe2e-dns",
        &topo.ns("srv"),
        Some("10.80.0.2/24"),
        &dir.path().join("dns"),
    )
    .expect("DHCP namespace");
    // T1 of 5 s: the leases are renewed (RFC 2131 §4.4.5) during the test.
    lan.start_dnsmasq_with(&["--dhcp-option=option:T1,5"])
        .expect("dnsmasq");

    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-dhcp\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\nports = 64\n\n\
             [pptp]\nlisten = []\n\n\
             [ipsec]\nenabled = false\n\n[tun]\nname = \"dhcpe2e0\"\n\n\
             [addresses]\nipv6_prefix = \"off\"\nsource = \"dhcp\"\ndhcp_interface = \"{}\"\ndhcp_timeout_secs = 8\n\n\
             [dhcp_relay]\nservers = [\"{DHCP_SERVER}\"]\n\n\
             [[policy]]\nname = \"Bob's fixed address\"\naccess = \"grant\"\n\
             conditions = {{ users = [\"bob\"] }}\nconstraints = {{ static_address = \"{BOB_STATIC}\" }}\n\n\
             [[policy]]\nname = \"everyone else\"\naccess = \"grant\"\n",
            lan.client_if
        ),
    )
    .unwrap();
    let password = "correct horse battery";
    let pw = password_file(dir.path(), "alice", password);
    for (user, pw) in [
        ("alice", pw),
        ("bob", password_file(dir.path(), "bob", password)),
    ] {
        add_user(&config, user, &pw, &[]);
    }

    let server = Server::start(&topo, &config);
    // RRAS leases "when the first remote access client connects, rather
    // than when the service starts".
    std::thread::sleep(Duration::from_secs(1));
    assert!(lan.leases().is_empty(), "nothing leased before a client");

    let clients = Clients::start(topo.ns("cli1"), options(&server.fingerprint, password));
    let mut ups = Vec::new();
    let mut times = Vec::new();
    // The server takes the first address of the block; 9 clients use the
    // other 9: all 10 in use.
    for n in 1..=9 {
        let (up, took) = clients.connect();
        let up = up.unwrap_or_else(|| panic!("client {n} did not come up"));
        times.push(took);
        ups.push(up);
    }
    let leases = lan
        .wait_leases(Duration::from_secs(5), |l| l.len() >= 10)
        .unwrap_or_else(|l| panic!("10 leases, not {l:?}; dnsmasq log:\n{}", lan.log()));
    assert_eq!(leases.len(), 10, "one block of 10: {leases:?}");
    let leased = ips(&leases);
    let server_addr = ups[0].server;
    assert!(
        leased.contains(&server_addr),
        "the server's own address is leased"
    );
    let mut client_addrs: Vec<_> = ups.iter().map(|u| u.local).collect();
    client_addrs.sort();
    client_addrs.dedup();
    assert_eq!(client_addrs.len(), 9, "distinct client addresses");
    for a in &client_addrs {
        assert!(leased.contains(a), "{a} is one of the leases");
        assert_ne!(*a, server_addr);
    }
    assert!(ups.iter().all(|u| u.server == server_addr));
    // One identity (MAC and client id) per lease.
    let mut macs: Vec<_> = leases.iter().map(|l| l.mac.clone()).collect();
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), 10);

    // T1 passes: every lease is renewed with the server, which extends it.
    let before = leases.clone();
    let renewed = lan.wait_leases(Duration::from_secs(15), |now| {
        before.iter().all(|b| {
            now.iter()
                .any(|l| l.ip == b.ip && l.mac == b.mac && l.expiry > b.expiry)
        })
    });
    assert!(
        renewed.is_ok(),
        "leases not renewed: {before:?} -> {renewed:?}; dnsmasq log:\n{}",
        lan.log()
    );

    // All 10 in use: the next client makes the server lease 10 more.
    let (up, took) = clients.connect();
    let up = up.expect("client 10");
    let leases = lan
        .wait_leases(Duration::from_secs(5), |l| l.len() >= 20)
        .expect("20 leases");
    assert_eq!(leases.len(), 20);
    assert!(ips(&leases).contains(&up.local));
    let second_block = took;
    ups.push(up);
    let (up, took11) = clients.connect();
    let up = up.expect("client 11");
    assert!(ips(&lan.leases()).contains(&up.local));
    ups.push(up);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lan.leases().len(), 20, "client 11 is served from the block");

    // DHCPINFORM from inside client 1's tunnel, through the relay.
    let xid = 0x5ca1_ab1e;
    let c1 = &ups[0];
    c1.to_tunnel
        .try_send(Bytes::from(inform_packet(c1.local, xid)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ack = loop {
        let found = c1.received.0.lock().unwrap().iter().find_map(|p| {
            let m = dhcp_payload(p)?;
            (m.len() > 240 && m[0] == 2 && m[4..8] == xid.to_be_bytes()).then(|| m.to_vec())
        });
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no DHCPACK through the relay; dnsmasq log:\n{}",
            lan.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(dhcp_option(&ack, 53), Some(&[5][..]), "DHCPACK");
    assert_eq!(dhcp_option(&ack, 15), Some(DOMAIN.as_bytes()));
    assert!(lan.log().contains("DHCPINFORM"), "dnsmasq saw the INFORM");

    // A static address (a policy's, as a RADIUS Framed-IP-Address would
    // be) in DHCP mode: not leased, routed to the TUN for the session, and
    // reachable from the intranet through proxy ARP like the leased ones.
    let mut bob_options = options(&server.fingerprint, password);
    bob_options.username = "bob".into();
    let bob = Clients::start(topo.ns("cli1"), bob_options);
    let (up, _) = bob.connect();
    let up = up.expect("bob's client");
    assert_eq!(up.local, BOB_STATIC, "the static address");
    assert_eq!(up.server, server_addr);
    assert_eq!(lan.leases().len(), 20, "a static address is not leased");
    let srv_routes = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &topo.ns("srv"),
                "ip",
                "-4",
                "route",
                "show",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        srv_routes().contains(&format!("{BOB_STATIC} dev dhcpe2e0")),
        "{}",
        srv_routes()
    );
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &lan.ns, "ping", "-c", "2", "-i", "0.3", "-W", "1",
        ])
        .arg(BOB_STATIC.to_string())
        .output();
    let echoed = up
        .received
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.len() >= 28 && p[9] == 1 && p[16..20] == BOB_STATIC.octets() && p[20] == 8);
    assert!(echoed, "an intranet host's ping reaches the static address");
    bob.shutdown();
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv_routes().contains(&BOB_STATIC.to_string()) {
        assert!(Instant::now() < deadline, "route left: {}", srv_routes());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Stopping the server releases every lease.
    let said = stop_server(server);
    assert!(said.contains("released 20"), "{said}");
    clients.shutdown();
    let left = lan.wait_leases(Duration::from_secs(5), |l| l.is_empty());
    assert!(left.is_ok(), "leases left after the stop: {left:?}");

    // No DHCP server: clients get APIPA addresses, and the log says so.
    lan.stop_dnsmasq();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dhcp_timeout_secs = 8", "dhcp_timeout_secs = 3"),
    )
    .unwrap();
    let server = Server::start(&topo, &config);
    let clients = Clients::start(topo.ns("cli1"), options(&server.fingerprint, password));
    let (up, apipa_time) = clients.connect();
    let up = up.expect("an APIPA client");
    assert!(up.local.is_link_local(), "{}", up.local);
    assert!(up.server.is_link_local() && up.server != up.local);
    server.expect("APIPA", Duration::from_secs(5));
    let (up2, apipa_next) = clients.connect();
    let up2 = up2.expect("a second APIPA client");
    assert!(up2.local.is_link_local() && up2.local != up.local);
    let said = stop_server(server);
    assert!(said.contains("released 0"), "{said}");
    clients.shutdown();

    // dnsmasq's default conflict detection: a 3 s ping before every
    // offer, one DISCOVER at a time. The server leases one address at a
    // time, so the first client is served after two pings and nobody
    // falls back to APIPA although the whole block takes 30 s.
    lan.start_dnsmasq_pinging(&[]).expect("dnsmasq with ping");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dhcp_timeout_secs = 3", "dhcp_timeout_secs = 8"),
    )
    .unwrap();
    let server = Server::start(&topo, &config);
    let clients = Clients::start(topo.ns("cli1"), options(&server.fingerprint, password));
    let (up, pinged_first) = clients.connect();
    let up = up.expect("a client with a pinging DHCP server");
    let (up2, pinged_second) = clients.connect();
    let up2 = up2.expect("a second client with a pinging DHCP server");
    let leased = ips(&lan.leases());
    for (n, u) in [up, up2].iter().enumerate() {
        assert!(
            !u.local.is_link_local() && leased.contains(&u.local),
            "client {n}: {} not leased ({leased:?}); dnsmasq log:\n{}",
            u.local,
            lan.log()
        );
    }
    stop_server(server);
    clients.shutdown();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut from_block: Vec<f64> = times[1..].iter().map(|d| ms(*d)).collect();
    from_block.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!(
        "BENCH dhcp address: first client (leases the block of 10) {:.1} ms; clients 2-9 from the block: median {:.1} ms (min {:.1}, max {:.1}); client 10 (leases 10 more) {:.1} ms; client 11 {:.1} ms; APIPA after a {} s DHCP timeout {:.1} ms, next APIPA client {:.1} ms; with dnsmasq's 3 s ping check: first client {:.1} ms, second {:.1} ms",
        ms(times[0]),
        from_block[from_block.len() / 2],
        from_block[0],
        from_block[from_block.len() - 1],
        ms(second_block),
        ms(took11),
        3,
        ms(apipa_time),
        ms(apipa_next),
        ms(pinged_first),
        ms(pinged_second),
    );
}

/// Issue 14: a DHCPINFORM from inside an IKEv2 tunnel (UDP 68 → 67 to
/// 255.255.255.255, as Windows sends one for its classless static routes
/// after the tunnel is up) is relayed to the intranet's DHCP server
/// (dnsmasq) and the DHCPACK comes back through the tunnel. The client is
/// our IKEv2 client library (pre-shared key) with no TUN device: the
/// INFORM is an IP packet handed to its tunnel.
#[test]
fn dhcpinform_through_an_ikev2_tunnel_is_answered() {
    if !can_run() {
        return;
    }
    if !interop::dnsmasq::available() {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but dnsmasq is not installed");
        }
        eprintln!("SKIPPED (IKEv2 DHCPINFORM): dnsmasq is not installed");
        return;
    }
    let topo = Topology::create("dhcpik2").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let mut lan = DhcpLan::create(
        "dhcpik2-dns",
        &topo.ns("srv"),
        Some("10.80.0.2/24"),
        &dir.path().join("dns"),
    )
    .expect("DHCP namespace");
    lan.start_dnsmasq().expect("dnsmasq");
    let state = dir.path().join("state");
    let psk = dir.path().join("ipsec-psk");
    std::fs::write(&psk, "inform-psk-123\n").unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-ik2\"\n\n\
             [sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n\
             [ipsec]\nlisten = \"{SERVER_FOR_CLI1}\"\npsk_file = {psk:?}\n\n\
             [ikev2]\nauth = [\"psk\"]\n\n\
             [tun]\nname = \"dhcpik20\"\n\n\
             [addresses]\nipv6_prefix = \"off\"\n\n\
             [dhcp_relay]\nservers = [\"{DHCP_SERVER}\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start(&topo, &config);

    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = watch::channel(false);
    let ns = topo.ns("cli1");
    let client = std::thread::spawn(move || {
        interop::netns::in_named_ns(&ns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let options = client::ikev2::Ikev2Options {
                    target: Target::parse(&format!("ikev2://{SERVER_FOR_CLI1}")).unwrap(),
                    login: tunnel::ikev2_client::Ikev2Login::SharedKey(zeroize::Zeroizing::new(
                        b"inform-psk-123".to_vec(),
                    )),
                    identity: "branch@ras".into(),
                    trust: None,
                    esp_suites: Vec::new(),
                    connect_timeout: Duration::from_secs(15),
                    force_udp_encapsulation: false,
                    on_up: None,
                };
                let network: Arc<dyn Network> = Arc::new(TestNetwork(up_tx));
                if let Err(e) = client::ikev2::connect(&options, network, stop_rx).await {
                    eprintln!("[ikev2 client] {e}");
                }
            });
        })
        .unwrap();
    });
    let up = up_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the IKEv2 tunnel came up");
    assert!(
        up.local.octets()[..3] == [10, 0, 10],
        "an address from the pool: {}",
        up.local
    );

    let xid = 0x1cef_2002;
    up.to_tunnel
        .try_send(Bytes::from(inform_packet(up.local, xid)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ack = loop {
        let found = up.received.0.lock().unwrap().iter().find_map(|p| {
            let m = dhcp_payload(p)?;
            (m.len() > 240 && m[0] == 2 && m[4..8] == xid.to_be_bytes()).then(|| m.to_vec())
        });
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no DHCPACK through the IKEv2 tunnel; dnsmasq log:\n{}",
            lan.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(dhcp_option(&ack, 53), Some(&[5][..]), "DHCPACK");
    assert_eq!(dhcp_option(&ack, 15), Some(DOMAIN.as_bytes()));
    assert_eq!(
        ack[16..20],
        [0, 0, 0, 0],
        "an INFORM's answer has no yiaddr"
    );
    assert!(lan.log().contains("DHCPINFORM"), "dnsmasq saw the INFORM");

    let _ = stop.send(true);
    let _ = client.join();
    drop(server);
}
