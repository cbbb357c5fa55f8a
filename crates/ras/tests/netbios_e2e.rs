//! The NetBIOS datagram gateway of `ras server` (`[netbios]`,
//! docs/NETBIOS.md) against Samba's nmbd, in network namespaces:
//!
//! ```text
//!  cli1: ras connect sstp:// ── srv: ras server [netbios] ── lan: nmbd (WORKGROUP,
//!        + a test NetBIOS node        LAN veth rasnblnb            local master, INTRANET)
//!          on the tunnel address                                   + nmblookup, test sockets
//! ```
//!
//! The client's names are registered through the tunnel with RFC 1002
//! packets built by the `netbios` crate (nmblookup only queries), then:
//! (a) its unique name answers `nmblookup` on the LAN and its group name
//! is held; (b) datagrams to its group name reach it: one sent from the
//! LAN, and nmbd's own browser election datagrams to WORKGROUP<1e>;
//! (c) its datagram reaches the LAN; (d) nmbd's own name is refused to it
//! with a negative response. Needs root and nmbd/nmblookup; skips with a
//! message otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use netbios::name_service::{NbEntry, NodeType};
use netbios::{Datagram, DatagramBody, DatagramType, NamePacket, NetbiosName, Opcode, Rcode};

mod support;
use support::*;

const PREFIX: &str = "rasnb";
/// The veth ends of the LAN link (interop::netns names them
/// `<prefix>lna` in the LAN namespace and `<prefix>lnb` in the server's).
const LAN_IF: &str = "rasnblna";
const SERVER_LAN_IF: &str = "rasnblnb";
const LAN_BROADCAST: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 255);
const CLIENT_TUN: &str = "rasnbc1";

fn required() -> bool {
    std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || Path::new("/usr/sbin").join(program).exists()
}

/// nmbd in the LAN namespace, killed on drop.
struct Nmbd(Child);

impl Drop for Nmbd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smb_conf(dir: &Path) -> std::path::PathBuf {
    let run = dir.join("samba");
    for sub in ["lock", "state", "cache", "private", "pid", "ncalrpc", "log"] {
        std::fs::create_dir_all(run.join(sub)).unwrap();
    }
    let conf = dir.join("smb.conf");
    let d = run.display();
    std::fs::write(
        &conf,
        format!(
            "[global]\n\
             workgroup = WORKGROUP\n\
             netbios name = INTRANET\n\
             server role = standalone server\n\
             interfaces = {LAN_IF}\n\
             bind interfaces only = yes\n\
             local master = yes\n\
             preferred master = yes\n\
             os level = 65\n\
             domain master = no\n\
             wins support = no\n\
             dns proxy = no\n\
             disable netbios = no\n\
             lock directory = {d}/lock\n\
             state directory = {d}/state\n\
             cache directory = {d}/cache\n\
             private dir = {d}/private\n\
             pid directory = {d}/pid\n\
             ncalrpc dir = {d}/ncalrpc\n\
             log file = {d}/log/%m.log\n"
        ),
    )
    .unwrap();
    conf
}

/// `nmblookup -B <LAN broadcast> NAME` from the LAN namespace: the
/// addresses that answered.
fn nmblookup(topo: &Topology, conf: &Path, name: &str) -> Vec<Ipv4Addr> {
    let out = topo
        .command("lan", "nmblookup")
        .arg("-s")
        .arg(conf)
        .args(["-B", &LAN_BROADCAST.to_string(), name])
        .output()
        .expect("nmblookup");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("[nmblookup {name}] {}", text.trim());
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn nmblookup_until(topo: &Topology, conf: &Path, name: &str, want: Ipv4Addr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if nmblookup(topo, conf, name).contains(&want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// A UDP socket on `port` of the client's tunnel address, bound to the
/// TUN device so that its broadcasts leave through the tunnel.
fn client_socket(topo: &Topology, tun: &'static str, address: Ipv4Addr, port: u16) -> UdpSocket {
    topo.in_ns("cli1", move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_broadcast(true).unwrap();
        s.bind_device(Some(tun.as_bytes())).unwrap();
        s.bind(&SocketAddrV4::new(address, port).into()).unwrap();
        let s: UdpSocket = s.into();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    })
    .unwrap()
}

/// A socket on UDP 138 of the LAN namespace that hears the subnet's
/// broadcasts next to nmbd's (both with SO_REUSEADDR).
fn lan_listener(topo: &Topology, lan_if: &'static str) -> UdpSocket {
    topo.in_ns("lan", move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_broadcast(true).unwrap();
        s.bind_device(Some(lan_if.as_bytes())).unwrap();
        s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 138).into())
            .unwrap();
        let s: UdpSocket = s.into();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    })
    .unwrap()
}

fn entry(group: bool, address: Ipv4Addr) -> NbEntry {
    NbEntry {
        group,
        node_type: NodeType::B,
        address,
    }
}

/// Broadcasts a registration of `name` through the tunnel, as a B-node
/// does (RFC 1002 §5.1.1.1: up to three times, 250 ms apart, unless a
/// negative response comes); returns that response's RCODE, if any.
fn register(
    ns: &UdpSocket,
    trn_id: u16,
    name: &NetbiosName,
    group: bool,
    address: Ipv4Addr,
) -> Option<Rcode> {
    let request =
        NamePacket::registration_request(trn_id, name.clone(), 300, entry(group, address), true);
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 137);
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        ns.send_to(&request.encode(), to).unwrap();
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            let Ok((n, _)) = ns.recv_from(&mut buf) else {
                continue;
            };
            let Ok(p) = NamePacket::decode(&buf[..n]) else {
                continue;
            };
            if p.header.response
                && p.header.trn_id == trn_id
                && p.header.opcode == Opcode::Registration
            {
                return Some(p.header.rcode);
            }
        }
    }
    None
}

/// The next datagram on `socket` whose destination name is `name` and
/// that came from `from`, within `within`.
fn datagram_for(
    socket: &UdpSocket,
    name: &NetbiosName,
    from: Ipv4Addr,
    within: Duration,
) -> Option<Datagram> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(d) = Datagram::decode(&buf[..n]) else {
            continue;
        };
        if d.destination() == Some(name) && d.header.source_ip == from {
            eprintln!("[datagram] {peer} → {name}: {:?}", d.header.msg_type);
            return Some(d);
        }
    }
    None
}

/// A browser Election Request (MS-BRWS §2.2.19) from a node that loses
/// every election, in a mailslot write to \MAILSLOT\BROWSE (MS-MAIL
/// §2.2.1: an SMB_COM_TRANSACTION, MS-SMB/CIFS §2.2.4.33): nmbd, the
/// local master, answers it by holding an election of its own, whose
/// datagrams go to WORKGROUP<1e>.
fn election_request() -> Vec<u8> {
    // Election Request: opcode 8, version 1, criteria 0, uptime 0,
    // reserved, then the sender's name.
    let mut browse = vec![8u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    browse.extend_from_slice(b"RASCLIENT\0");
    let mailslot = b"\\MAILSLOT\\BROWSE\0";
    // SMB header (32 octets): 0xFF 'SMB', command 0x25 (Transaction).
    let mut smb = vec![0xff, b'S', b'M', b'B', 0x25];
    smb.extend_from_slice(&[0; 27]);
    let words = 17u8;
    let setup_count = 3u16;
    // Offsets are from the start of the SMB header.
    let bytes_start = 32 + 1 + usize::from(words) * 2 + 2;
    let data_offset = (bytes_start + mailslot.len()) as u16;
    let data_len = browse.len() as u16;
    smb.push(words);
    for w in [
        0u16,        // TotalParameterCount
        data_len,    // TotalDataCount
        0,           // MaxParameterCount
        0,           // MaxDataCount
        0,           // MaxSetupCount + Reserved1
        0,           // Flags
        0,           // Timeout (low)
        0,           // Timeout (high)
        0,           // Reserved2
        0,           // ParameterCount
        data_offset, // ParameterOffset
        data_len,    // DataCount
        data_offset, // DataOffset
        setup_count, // SetupCount + Reserved3
        1,           // Setup[0]: mailslot write
        1,           // Setup[1]: priority
        2,           // Setup[2]: class 2 (unreliable)
    ] {
        smb.extend_from_slice(&w.to_le_bytes());
    }
    let byte_count = (mailslot.len() + browse.len()) as u16;
    smb.extend_from_slice(&byte_count.to_le_bytes());
    smb.extend_from_slice(mailslot);
    smb.extend_from_slice(&browse);
    smb
}

#[test]
fn netbios_gateway_against_samba() {
    if !can_run() {
        return;
    }
    if !(have("nmbd") && have("nmblookup")) {
        if required() {
            panic!("RAS_INTEROP_REQUIRED=1 but nmbd/nmblookup are missing (apt-get install samba samba-common-bin)");
        }
        eprintln!("SKIPPED (netbios_e2e): needs Samba's nmbd and nmblookup");
        return;
    }
    let topo = Topology::create(PREFIX).expect("namespaces");
    let dir = tempfile::tempdir().unwrap();

    // The intranet: nmbd for WORKGROUP, local master, named INTRANET.
    let conf = smb_conf(dir.path());
    let nmbd = Nmbd(
        topo.command("lan", "nmbd")
            .args([
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "-d",
                "2",
                "-s",
            ])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nmbd"),
    );
    let lan_host: Ipv4Addr = LAN_HOST.parse().unwrap();
    assert!(
        nmblookup_until(&topo, &conf, "INTRANET#00", lan_host),
        "nmbd never answered for its own name"
    );

    // The server: SSTP, the gateway on its LAN interface, every LAN
    // datagram forwarded at once (the default knobs gate broadcast and
    // group datagrams; the knob table is the core's tests').
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-nb\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"rasnb0\"\n\n[netbios]\nenabled = true\nlan_interfaces = [\"{SERVER_LAN_IF}\"]\nenable_broadcast = 1\nmulticast_forward_rate = 0\ndisable_mcast_fwd_when_session_traffic = 0\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "netbios over the tunnel");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);
    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &server.fingerprint,
        CLIENT_TUN,
    );
    let address = wait_address(&topo, &mut client, Duration::from_secs(20)).expect("client up");
    let ns = client_socket(&topo, CLIENT_TUN, address, 137);
    let dgm = client_socket(&topo, CLIENT_TUN, address, 138);

    // (a) A unique and a group name, registered through the tunnel: no
    // objection from the LAN, so the broadcasting client hears nothing
    // (RFC 1002 §5.1.1.1) and the server holds them for it.
    let unique = NetbiosName::new("RASCLIENT", 0x00).unwrap();
    let group = NetbiosName::new("RASGROUP", 0x00).unwrap();
    let browsers = NetbiosName::new("WORKGROUP", 0x1e).unwrap();
    assert_eq!(register(&ns, 0x101, &unique, false, address), None);
    server.expect("holds unique name RASCLIENT<00>", Duration::from_secs(10));
    assert_eq!(register(&ns, 0x102, &group, true, address), None);
    server.expect("holds group name RASGROUP<00>", Duration::from_secs(10));
    assert_eq!(register(&ns, 0x103, &browsers, true, address), None);
    server.expect("holds group name WORKGROUP<1e>", Duration::from_secs(10));
    assert!(
        nmblookup_until(&topo, &conf, "RASCLIENT#00", address),
        "the client's unique name does not answer on the LAN"
    );
    // Its group name too: every member of a group answers a B-mode query
    // (RFC 1001 §15.1.3), and the server answers for its clients.
    assert!(
        nmblookup_until(&topo, &conf, "RASGROUP#00", address),
        "the client's group name does not answer on the LAN"
    );

    // (b) A datagram from the LAN to the client's group name reaches it,
    // from the LAN host's address.
    let sender = topo
        .in_ns("lan", || UdpSocket::bind((lan_host, 0)).unwrap())
        .unwrap();
    sender.set_broadcast(true).unwrap();
    let hello = Datagram::data(
        DatagramType::DirectGroup,
        0x55,
        lan_host,
        NetbiosName::new("LANSENDER", 0x00).unwrap(),
        group.clone(),
        b"hello, remote client".to_vec(),
    );
    sender
        .send_to(&hello.encode(), SocketAddrV4::new(LAN_BROADCAST, 138))
        .unwrap();
    let got = datagram_for(&dgm, &group, lan_host, Duration::from_secs(5))
        .expect("the LAN's datagram to the group name never reached the client");
    assert_eq!(got, hello);

    // (c) The client's datagram reaches the LAN: an Election Request to
    // WORKGROUP<1e>, which a listener next to nmbd hears unchanged...
    let listener = lan_listener(&topo, LAN_IF);
    let election = Datagram::data(
        DatagramType::DirectGroup,
        0x66,
        address,
        unique.clone(),
        browsers.clone(),
        election_request(),
    );
    dgm.send_to(
        &election.encode(),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 138),
    )
    .unwrap();
    let heard = datagram_for(&listener, &browsers, address, Duration::from_secs(5))
        .expect("the client's datagram never reached the LAN");
    assert_eq!(heard, election);

    // ... and nmbd, which wins any election against it, holds one: its
    // election datagrams to WORKGROUP<1e> reach the client (b, from
    // nmbd itself).
    let from_nmbd = datagram_for(&dgm, &browsers, lan_host, Duration::from_secs(20))
        .expect("no datagram of nmbd's to WORKGROUP<1e> reached the client");
    let DatagramBody::Data { user_data, .. } = &from_nmbd.body else {
        panic!("not a data datagram");
    };
    assert_eq!(&user_data[..4], b"\xffSMB", "a browser mailslot message");

    // (d) nmbd's own unique name is refused: nmbd answers the server's
    // registration with ACT_ERR, which the client gets, and nobody holds
    // the name for it.
    let owned = NetbiosName::new("INTRANET", 0x00).unwrap();
    assert_eq!(
        register(&ns, 0x104, &owned, false, address),
        Some(Rcode::Active),
        "nmbd's own name was not refused to the client"
    );
    server.expect("refused INTRANET<00>", Duration::from_secs(5));
    assert_eq!(nmblookup(&topo, &conf, "INTRANET#00"), vec![lan_host]);

    // The session ends: the client's names are released on the LAN and
    // no longer answer.
    interrupt(&client);
    let (ok, _) = finish(client, Duration::from_secs(15));
    assert!(ok, "the client did not disconnect cleanly");
    server.expect("released RASCLIENT<00>", Duration::from_secs(10));
    assert!(nmblookup(&topo, &conf, "RASCLIENT#00").is_empty());
    drop(nmbd);
}

/// NetbiosGatewayEnabled 0 (seed: "Datagrams can only be received by the
/// RAS server if it has an NCB_Receive_Datagram posted for the given
/// name"): a client's datagram to a name in `server_names` reaches the
/// host's own datagram service (a socket on UDP 138 of the server's LAN
/// address, next to the gateway's, as Samba's nmbd binds it), one to any
/// other name is dropped, and neither goes out on the LAN.
#[test]
fn with_the_gateway_disabled_only_the_servers_own_names_receive() {
    const LAN_IF: &str = "rasnclna";
    const SERVER_LAN_IF: &str = "rasnclnb";
    const CLIENT_TUN: &str = "rasnc1";
    const SERVER_LAN_ADDRESS: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
    if !can_run() {
        return;
    }
    let topo = Topology::create("rasnc").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-nc\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"rasnc0\"\n\n[netbios]\nenabled = true\nlan_interfaces = [\"{SERVER_LAN_IF}\"]\nnetbios_gateway_enabled = 0\nserver_names = [\"RASSRV<20>\", \"WORKGROUP<1c>\"]\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "bob", "only the server listens");
    add_user(&config, "bob", &pw, &[]);
    let server = Server::start(&topo, &config);
    // The host's datagram service, bound after the gateway's socket as a
    // Samba started later would be.
    let host_service = topo
        .in_ns("srv", || {
            use socket2::{Domain, Protocol, Socket, Type};
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_reuse_address(true).unwrap();
            s.bind(&SocketAddrV4::new(SERVER_LAN_ADDRESS, 138).into())
                .unwrap();
            let s: UdpSocket = s.into();
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s
        })
        .unwrap();
    let lan = lan_listener(&topo, LAN_IF);
    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "bob",
        &pw,
        &server.fingerprint,
        CLIENT_TUN,
    );
    let address = wait_address(&topo, &mut client, Duration::from_secs(20)).expect("client up");
    let dgm = client_socket(&topo, CLIENT_TUN, address, 138);
    let sender = NetbiosName::new("RASCLIENT", 0x00).unwrap();
    let to_server = NetbiosName::new("RASSRV", 0x20).unwrap();
    let to_other = NetbiosName::new("LANHOST", 0x20).unwrap();
    let datagram = |id: u16, to: &NetbiosName, text: &[u8]| {
        Datagram::data(
            DatagramType::DirectUnique,
            id,
            address,
            sender.clone(),
            to.clone(),
            text.to_vec(),
        )
    };
    let for_server = datagram(0x71, &to_server, b"for the server's own service");
    let for_other = datagram(0x72, &to_other, b"for a host on the LAN");
    let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 138);
    dgm.send_to(&for_other.encode(), broadcast).unwrap();
    dgm.send_to(&for_server.encode(), broadcast).unwrap();

    // Everything each socket hears from the client in 3 s.
    let heard = |socket: &UdpSocket| -> Vec<Datagram> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 2048];
        let mut all = Vec::new();
        while Instant::now() < deadline {
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                match Datagram::decode(&buf[..n]) {
                    Ok(d) if d.header.source_ip == address => all.push(d),
                    _ => {}
                }
            }
        }
        all
    };
    assert_eq!(
        heard(&host_service),
        vec![for_server],
        "the host's service must get the datagram to its own name, and only that one"
    );
    assert_eq!(
        heard(&lan),
        vec![],
        "with the gateway disabled no client datagram goes out on the LAN"
    );
    interrupt(&client);
    let (ok, _) = finish(client, Duration::from_secs(15));
    assert!(ok, "the client did not disconnect cleanly");
}
