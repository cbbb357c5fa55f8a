//! The gateway against bursts of real datagrams (RFC 1002 §4.4 packets
//! built and parsed by this crate), one row per knob value of
//! ras-datagram-processing-q97559: which are delivered to which client,
//! which dropped and by which rule, the MulticastForwardRate gate timing,
//! the 11th datagram of a burst at the default buffer, unique before group,
//! and the names side (registration through the tunnel, the LAN's refusal
//! of a name it owns, LAN queries, MaxNames, release at session end).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netbios::datagram::{Datagram, DatagramType};
use netbios::name_service::{NamePacket, NbEntry, NodeType, Opcode, Rcode};
use netbios::{
    ClientId, Destination, Event, Gateway, Knobs, LanVerdict, NameKind, NameState, NetbiosName,
    Transmit,
};

const A: ClientId = ClientId(1);
const B: ClientId = ClientId(2);
const A_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

fn pca() -> NetbiosName {
    NetbiosName::new("PCA", 0x00).unwrap()
}
fn workgroup() -> NetbiosName {
    NetbiosName::new("WORKGROUP", 0x1e).unwrap()
}
fn nmbd() -> NetbiosName {
    NetbiosName::new("NMBD", 0x00).unwrap()
}

fn entry(group: bool, address: Ipv4Addr) -> NbEntry {
    NbEntry {
        group,
        node_type: NodeType::B,
        address,
    }
}

fn lan_datagram(kind: DatagramType, dest: NetbiosName, id: u16) -> Vec<u8> {
    Datagram::data(
        kind,
        id,
        LAN_HOST,
        nmbd(),
        dest,
        format!("datagram {id}").into_bytes(),
    )
    .encode()
}

fn dgm_id(payload: &[u8]) -> u16 {
    Datagram::decode(payload).unwrap().header.dgm_id
}

fn drain_transmits(gw: &mut Gateway) -> Vec<Transmit> {
    std::iter::from_fn(|| gw.poll_transmit()).collect()
}

fn drain_events(gw: &mut Gateway) -> Vec<Event> {
    std::iter::from_fn(|| gw.poll_event()).collect()
}

fn drain_client(gw: &mut Gateway, c: ClientId) -> Vec<u16> {
    std::iter::from_fn(|| gw.poll_client_datagram(c))
        .map(|p| dgm_id(&p))
        .collect()
}

fn counter(gw: &Gateway, name: &str) -> u64 {
    gw.counters()
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

/// Client `c` registers `name` through its tunnel as a B node would.
fn register(
    gw: &mut Gateway,
    now: Instant,
    c: ClientId,
    ip: Ipv4Addr,
    name: NetbiosName,
    group: bool,
    broadcast: bool,
) {
    let req = NamePacket::registration_request(
        0x100 + c.0 as u16,
        name,
        300,
        entry(group, ip),
        broadcast,
    );
    gw.handle_client_name_packet(now, c, SocketAddrV4::new(ip, 137), &req.encode());
}

/// Two clients: A holds unique PCA<00> and group WORKGROUP<1e>, B holds
/// WORKGROUP<1e>; the LAN accepted both names.
fn setup(knobs: Knobs) -> (Gateway, Instant) {
    let t0 = Instant::now();
    let mut gw = Gateway::new(knobs.validate().unwrap(), t0);
    gw.add_client(A, A_IP);
    gw.add_client(B, B_IP);
    register(&mut gw, t0, A, A_IP, pca(), false, true);
    register(&mut gw, t0, A, A_IP, workgroup(), true, true);
    register(&mut gw, t0, B, B_IP, workgroup(), true, true);
    let asks: Vec<Event> = drain_events(&mut gw);
    // One LAN registration per distinct name: B joined A's group name.
    assert_eq!(
        asks,
        vec![
            Event::RegisterOnLan {
                name: pca(),
                group: false,
                address: A_IP
            },
            Event::RegisterOnLan {
                name: workgroup(),
                group: true,
                address: A_IP
            },
        ]
    );
    gw.handle_lan_verdict(t0, &pca(), LanVerdict::Accepted);
    gw.handle_lan_verdict(t0, &workgroup(), LanVerdict::Accepted);
    // Broadcast registrations are answered only when refused.
    assert!(drain_transmits(&mut gw).is_empty());
    drain_events(&mut gw);
    (gw, t0)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Group,
    Broadcast,
    Unique,
}

struct Row {
    what: &'static str,
    knobs: Knobs,
    a_busy: bool,
    kind: Kind,
    at_ms: u64,
    count: u16,
    want_a: usize,
    want_b: usize,
    counter: (&'static str, u64),
}

fn knobs(f: impl FnOnce(&mut Knobs)) -> Knobs {
    let mut k = Knobs::default();
    f(&mut k);
    k
}

#[test]
fn every_knob_value_against_a_burst() {
    let open = 5_100; // inside the default gate's first opening (5 s, open 1 s)
    let rows = vec![
        Row {
            what: "defaults, group burst, gate open",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("group_forwarded", 6),
        },
        Row {
            what: "defaults, group burst before the gate's first opening",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 1_000,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_gate_closed", 3),
        },
        Row {
            what: "defaults, group burst after the gate closed again",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 6_000,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_gate_closed", 3),
        },
        Row {
            what: "defaults, group burst at the second opening",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 10_400,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("group_forwarded", 6),
        },
        Row {
            what: "EnableBroadcast 0 drops broadcasts",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Broadcast,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_enable_broadcast", 3),
        },
        Row {
            what: "EnableBroadcast 1 forwards broadcasts to every client",
            knobs: knobs(|k| k.enable_broadcast = 1),
            a_busy: false,
            kind: Kind::Broadcast,
            at_ms: open,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("broadcast_forwarded", 6),
        },
        Row {
            what: "MulticastForwardRate -1 drops group datagrams",
            knobs: knobs(|k| k.multicast_forward_rate = -1),
            a_busy: false,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_forward_rate_never", 3),
        },
        Row {
            what: "MulticastForwardRate -1 drops broadcasts even with EnableBroadcast 1",
            knobs: knobs(|k| {
                k.multicast_forward_rate = -1;
                k.enable_broadcast = 1
            }),
            a_busy: false,
            kind: Kind::Broadcast,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_forward_rate_never", 3),
        },
        Row {
            what: "MulticastForwardRate 0 always forwards",
            knobs: knobs(|k| k.multicast_forward_rate = 0),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 0,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("group_forwarded", 6),
        },
        Row {
            what: "MulticastForwardRate 1, first second closed",
            knobs: knobs(|k| k.multicast_forward_rate = 1),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 500,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_gate_closed", 3),
        },
        Row {
            what: "MulticastForwardRate 1, open after it",
            knobs: knobs(|k| k.multicast_forward_rate = 1),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 1_200,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("group_forwarded", 6),
        },
        Row {
            what: "MulticastForwardRate 32767, closed just before",
            knobs: knobs(|k| k.multicast_forward_rate = 32767),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 32_766_000,
            count: 3,
            want_a: 0,
            want_b: 0,
            counter: ("dropped_gate_closed", 3),
        },
        Row {
            what: "MulticastForwardRate 32767, open at 32767 s",
            knobs: knobs(|k| k.multicast_forward_rate = 32767),
            a_busy: false,
            kind: Kind::Group,
            at_ms: 32_767_100,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("group_forwarded", 6),
        },
        Row {
            what: "DisableMcastFwdWhenSessionTraffic 1: busy client misses group datagrams",
            knobs: Knobs::default(),
            a_busy: true,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 3,
            counter: ("dropped_session_traffic", 3),
        },
        Row {
            what: "DisableMcastFwdWhenSessionTraffic 1: busy client still gets broadcasts",
            knobs: knobs(|k| k.enable_broadcast = 1),
            a_busy: true,
            kind: Kind::Broadcast,
            at_ms: open,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("dropped_session_traffic", 0),
        },
        Row {
            what: "DisableMcastFwdWhenSessionTraffic -1: busy client misses broadcasts too",
            knobs: knobs(|k| {
                k.enable_broadcast = 1;
                k.disable_mcast_fwd_when_session_traffic = -1
            }),
            a_busy: true,
            kind: Kind::Broadcast,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 3,
            counter: ("dropped_session_traffic", 3),
        },
        Row {
            what: "DisableMcastFwdWhenSessionTraffic -1: and group datagrams",
            knobs: knobs(|k| k.disable_mcast_fwd_when_session_traffic = -1),
            a_busy: true,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 0,
            want_b: 3,
            counter: ("dropped_session_traffic", 3),
        },
        Row {
            what: "DisableMcastFwdWhenSessionTraffic 0: busy client gets everything",
            knobs: knobs(|k| k.disable_mcast_fwd_when_session_traffic = 0),
            a_busy: true,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 3,
            want_b: 3,
            counter: ("dropped_session_traffic", 0),
        },
        Row {
            what: "MaxDgBufferedPerGroupName 10: the 11th and 12th are dropped",
            knobs: Knobs::default(),
            a_busy: false,
            kind: Kind::Group,
            at_ms: open,
            count: 12,
            want_a: 10,
            want_b: 10,
            counter: ("dropped_buffer_full", 2),
        },
        Row {
            what: "MaxDgBufferedPerGroupName 1",
            knobs: knobs(|k| k.max_dg_buffered_per_group_name = 1),
            a_busy: false,
            kind: Kind::Group,
            at_ms: open,
            count: 3,
            want_a: 1,
            want_b: 1,
            counter: ("dropped_buffer_full", 2),
        },
        Row {
            what: "MaxDgBufferedPerGroupName 255",
            knobs: knobs(|k| k.max_dg_buffered_per_group_name = 255),
            a_busy: false,
            kind: Kind::Group,
            at_ms: open,
            count: 256,
            want_a: 255,
            want_b: 255,
            counter: ("dropped_buffer_full", 1),
        },
        Row {
            what: "datagrams to a unique name pass every knob",
            knobs: knobs(|k| {
                k.multicast_forward_rate = -1;
                k.disable_mcast_fwd_when_session_traffic = -1
            }),
            a_busy: true,
            kind: Kind::Unique,
            at_ms: 0,
            count: 12,
            want_a: 12,
            want_b: 0,
            counter: ("unique_forwarded", 12),
        },
    ];
    for row in rows {
        let (mut gw, t0) = setup(row.knobs);
        gw.set_session_traffic(A, row.a_busy);
        let now = t0 + Duration::from_millis(row.at_ms);
        let (kind, dest) = match row.kind {
            Kind::Group => (DatagramType::DirectGroup, workgroup()),
            Kind::Broadcast => (DatagramType::Broadcast, NetbiosName::new("*", 0).unwrap()),
            Kind::Unique => (DatagramType::DirectUnique, pca()),
        };
        // One datagram per read: the client's link drains nothing meanwhile.
        for id in 1..=row.count {
            gw.handle_lan_datagram(now, &lan_datagram(kind, dest.clone(), id));
        }
        let a = drain_client(&mut gw, A);
        let b = drain_client(&mut gw, B);
        assert_eq!(a.len(), row.want_a, "{}: client A", row.what);
        assert_eq!(b.len(), row.want_b, "{}: client B", row.what);
        // Delivered in arrival order, and the dropped ones are the last.
        assert_eq!(
            a,
            (1..=row.want_a as u16).collect::<Vec<_>>(),
            "{}",
            row.what
        );
        assert_eq!(
            counter(&gw, row.counter.0),
            row.counter.1,
            "{}: {}",
            row.what,
            row.counter.0
        );
        assert_eq!(
            gw.buffered_for_group(&dest),
            0,
            "{}: buffer emptied",
            row.what
        );
    }
}

#[test]
fn buffer_frees_as_the_client_link_drains() {
    let (mut gw, t0) = setup(knobs(|k| k.multicast_forward_rate = 0));
    for id in 1..=10 {
        gw.handle_lan_datagram(
            t0,
            &lan_datagram(DatagramType::DirectGroup, workgroup(), id),
        );
    }
    assert_eq!(gw.buffered_for_group(&workgroup()), 10);
    // A takes one; B has not: the datagram stays buffered for B.
    assert_eq!(gw.poll_client_datagram(A).map(|p| dgm_id(&p)), Some(1));
    gw.handle_lan_datagram(
        t0,
        &lan_datagram(DatagramType::DirectGroup, workgroup(), 11),
    );
    assert_eq!(counter(&gw, "dropped_buffer_full"), 1);
    // B takes one too: room for one more.
    assert_eq!(gw.poll_client_datagram(B).map(|p| dgm_id(&p)), Some(1));
    gw.handle_lan_datagram(
        t0,
        &lan_datagram(DatagramType::DirectGroup, workgroup(), 12),
    );
    assert_eq!(counter(&gw, "dropped_buffer_full"), 1);
    assert_eq!(
        drain_client(&mut gw, A),
        vec![2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    );
}

#[test]
fn unique_datagrams_go_before_pending_group_datagrams() {
    let (mut gw, t0) = setup(knobs(|k| k.multicast_forward_rate = 0));
    for id in 1..=3 {
        gw.handle_lan_datagram(
            t0,
            &lan_datagram(DatagramType::DirectGroup, workgroup(), id),
        );
    }
    // NET LOGON replies are directed datagrams to the unique name.
    gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectUnique, pca(), 100));
    gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectGroup, workgroup(), 4));
    gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectUnique, pca(), 101));
    assert_eq!(gw.pending_datagrams(A), 6);
    assert_eq!(drain_client(&mut gw, A), vec![100, 101, 1, 2, 3, 4]);
    assert_eq!(drain_client(&mut gw, B), vec![1, 2, 3, 4]);
}

#[test]
fn receives_per_group_name_in_one_read() {
    for (receives, want) in [(3, 3), (1, 1), (32, 5)] {
        let (mut gw, t0) = setup(knobs(|k| {
            k.multicast_forward_rate = 0;
            k.rcv_dg_submitted_per_group_name = receives;
        }));
        let burst: Vec<Vec<u8>> = (1..=5)
            .map(|id| lan_datagram(DatagramType::DirectGroup, workgroup(), id))
            .collect();
        let refs: Vec<&[u8]> = burst.iter().map(Vec::as_slice).collect();
        gw.handle_lan_datagrams(t0, &refs);
        assert_eq!(
            drain_client(&mut gw, A).len(),
            want,
            "RcvDgSubmittedperGroupName {receives}"
        );
        assert_eq!(counter(&gw, "dropped_receives_exhausted"), 5 - want as u64);
        // The next read receives again.
        gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectGroup, workgroup(), 9));
        assert_eq!(drain_client(&mut gw, A), vec![9]);
    }
}

#[test]
fn lan_owned_unique_name_is_refused_to_the_client() {
    let (mut gw, t0) = setup(Knobs::default());
    let c = ClientId(3);
    let c_ip = Ipv4Addr::new(10, 0, 10, 22);
    gw.add_client(c, c_ip);
    let owned = NetbiosName::new("FILESERVER", 0x20).unwrap();
    // Unicast, to us as the client's name server: a WACK first.
    register(&mut gw, t0, c, c_ip, owned.clone(), false, false);
    let wack = drain_transmits(&mut gw);
    assert_eq!(wack.len(), 1);
    let p = NamePacket::decode(&wack[0].payload).unwrap();
    assert_eq!(p.header.opcode, Opcode::Wack);
    assert_eq!(
        wack[0].to,
        Destination::Client(c, SocketAddrV4::new(c_ip, 137))
    );
    assert_eq!(
        drain_events(&mut gw),
        vec![Event::RegisterOnLan {
            name: owned.clone(),
            group: false,
            address: c_ip
        }]
    );
    // The LAN host that owns it answered ACT_ERR to the driver's registration.
    gw.handle_lan_verdict(t0, &owned, LanVerdict::Refused(Rcode::Active));
    let answer = drain_transmits(&mut gw);
    assert_eq!(answer.len(), 1);
    let p = NamePacket::decode(&answer[0].payload).unwrap();
    assert!(p.header.response);
    assert_eq!(p.header.opcode, Opcode::Registration);
    assert_eq!(p.header.rcode, Rcode::Active);
    assert_eq!(p.header.trn_id, 0x103);
    let events = drain_events(&mut gw);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].to_string(),
        "netbios: client 3 refused FILESERVER<20>: a LAN host owns it (ACT_ERR)"
    );
    // Neither the server nor the client holds it: no answers, no datagrams.
    assert!(gw.client_names(c).is_empty());
    let q = NamePacket::query_request(7, owned.clone(), true);
    gw.handle_lan_name_packet(t0, SocketAddrV4::new(LAN_HOST, 137), &q.encode());
    assert!(drain_transmits(&mut gw).is_empty());
    gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectUnique, owned, 1));
    assert_eq!(gw.pending_datagrams(c), 0);
    assert_eq!(counter(&gw, "dropped_no_recipient"), 1);
    assert_eq!(counter(&gw, "names_refused_by_lan"), 1);
}

#[test]
fn broadcast_registration_refused_by_the_lan_gets_a_negative_response() {
    let t0 = Instant::now();
    let mut gw = Gateway::new(default_config(), t0);
    gw.add_client(A, A_IP);
    register(&mut gw, t0, A, A_IP, pca(), false, true);
    assert!(drain_transmits(&mut gw).is_empty());
    gw.handle_lan_verdict(t0, &pca(), LanVerdict::Refused(Rcode::Active));
    let t = drain_transmits(&mut gw);
    assert_eq!(t.len(), 1);
    assert_eq!(
        NamePacket::decode(&t[0].payload).unwrap().header.rcode,
        Rcode::Active
    );
}

fn default_config() -> netbios::GatewayConfig {
    Knobs::default().validate().unwrap()
}

#[test]
fn unicast_registration_accepted_gets_a_positive_response() {
    let t0 = Instant::now();
    let mut gw = Gateway::new(default_config(), t0);
    gw.add_client(A, A_IP);
    register(&mut gw, t0, A, A_IP, pca(), false, false);
    drain_transmits(&mut gw); // the WACK
    gw.handle_lan_verdict(t0, &pca(), LanVerdict::Accepted);
    let t = drain_transmits(&mut gw);
    let p = NamePacket::decode(&t[0].payload).unwrap();
    assert_eq!(
        (p.header.opcode, p.header.rcode),
        (Opcode::Registration, Rcode::Ok)
    );
    assert_eq!(
        gw.client_names(A),
        vec![(pca(), NameKind::Unique, NameState::Registered)]
    );
    // A refresh of a held name is answered at once.
    let refresh = NamePacket::refresh_request(9, pca(), 300, entry(false, A_IP));
    gw.handle_client_name_packet(t0, A, SocketAddrV4::new(A_IP, 137), &refresh.encode());
    let t = drain_transmits(&mut gw);
    assert_eq!(
        NamePacket::decode(&t[0].payload).unwrap().header.rcode,
        Rcode::Ok
    );
}

#[test]
fn lan_queries_and_registrations_for_clients_names() {
    let (mut gw, t0) = setup(Knobs::default());
    let asker = SocketAddrV4::new(LAN_HOST, 137);
    let q = NamePacket::query_request(0x77, pca(), true);
    gw.handle_lan_name_packet(t0, asker, &q.encode());
    let t = drain_transmits(&mut gw);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, Destination::LanUnicast(asker));
    let p = NamePacket::decode(&t[0].payload).unwrap();
    assert_eq!(p.header.trn_id, 0x77);
    assert!(p.header.response);
    assert_eq!(p.first_nb_entry().unwrap(), entry(false, A_IP));
    // A group name is answered for every client in it (RFC 1001
    // §15.1.3: each member of a group answers a B-mode query), in one
    // response with an NB entry per member, each with the G flag.
    gw.handle_lan_name_packet(
        t0,
        asker,
        &NamePacket::query_request(1, workgroup(), true).encode(),
    );
    let t = drain_transmits(&mut gw);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, Destination::LanUnicast(asker));
    let p = NamePacket::decode(&t[0].payload).unwrap();
    assert_eq!(p.header.trn_id, 1);
    assert_eq!(
        p.answers[0].nb_entries().unwrap(),
        vec![entry(true, A_IP), entry(true, B_IP)]
    );
    // Unknown names are not answered for.
    gw.handle_lan_name_packet(
        t0,
        asker,
        &NamePacket::query_request(2, nmbd(), true).encode(),
    );
    assert!(drain_transmits(&mut gw).is_empty());
    // A LAN host registering the client's unique name is told ACT_ERR.
    let reg = NamePacket::registration_request(5, pca(), 300, entry(false, LAN_HOST), true);
    gw.handle_lan_name_packet(t0, asker, &reg.encode());
    let t = drain_transmits(&mut gw);
    assert_eq!(
        NamePacket::decode(&t[0].payload).unwrap().header.rcode,
        Rcode::Active
    );
    // Registering the group name as a group is fine; as unique it is not.
    let reg = NamePacket::registration_request(6, workgroup(), 300, entry(true, LAN_HOST), true);
    gw.handle_lan_name_packet(t0, asker, &reg.encode());
    assert!(drain_transmits(&mut gw).is_empty());
    let reg = NamePacket::registration_request(7, workgroup(), 300, entry(false, LAN_HOST), true);
    gw.handle_lan_name_packet(t0, asker, &reg.encode());
    assert_eq!(drain_transmits(&mut gw).len(), 1);
    assert_eq!(counter(&gw, "names_defended"), 2);
    assert_eq!(counter(&gw, "queries_answered"), 2);
}

#[test]
fn max_names_per_client_and_in_all() {
    let t0 = Instant::now();
    let config = knobs(|k| {
        k.max_names_per_client = 2;
        k.max_names = 3;
    })
    .validate()
    .unwrap();
    let mut gw = Gateway::new(config, t0);
    gw.add_client(A, A_IP);
    gw.add_client(B, B_IP);
    for n in ["A1", "A2", "A3"] {
        register(
            &mut gw,
            t0,
            A,
            A_IP,
            NetbiosName::new(n, 0).unwrap(),
            false,
            false,
        );
    }
    let refused: Vec<String> = drain_events(&mut gw)
        .iter()
        .filter(|e| matches!(e, Event::NameRefused { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        refused,
        vec!["netbios: client 1 refused A3<00>: the client holds 2 names already (MaxNames per client)"]
    );
    let t = drain_transmits(&mut gw);
    let last = NamePacket::decode(&t.last().unwrap().payload).unwrap();
    assert_eq!(last.header.rcode, Rcode::Refused);
    register(
        &mut gw,
        t0,
        B,
        B_IP,
        NetbiosName::new("B1", 0).unwrap(),
        false,
        true,
    );
    register(
        &mut gw,
        t0,
        B,
        B_IP,
        NetbiosName::new("B2", 0).unwrap(),
        false,
        true,
    );
    let events = drain_events(&mut gw);
    assert_eq!(
        events.last().unwrap().to_string(),
        "netbios: client 2 refused B2<00>: the server holds 3 names for clients already (MaxNames)"
    );
    // Refused broadcast registrations get a negative response too.
    let t = drain_transmits(&mut gw);
    assert_eq!(
        NamePacket::decode(&t.last().unwrap().payload)
            .unwrap()
            .header
            .rcode,
        Rcode::Refused
    );
    assert_eq!(counter(&gw, "names_refused_client_limit"), 1);
    assert_eq!(counter(&gw, "names_refused_total_limit"), 1);
}

#[test]
fn client_datagrams_and_netbios_gateway_enabled() {
    let server = NetbiosName::new("RASSERVER", 0x00).unwrap();
    let from_a = |dest: NetbiosName| {
        Datagram::data(
            DatagramType::DirectGroup,
            1,
            A_IP,
            pca(),
            dest,
            b"hello".to_vec(),
        )
        .encode()
    };
    // 1: onto the LAN, untouched.
    let (mut gw, t0) = setup(Knobs::default());
    gw.handle_client_datagram(t0, A, &from_a(workgroup()));
    let t = drain_transmits(&mut gw);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].to.clone(), t[0].port),
        (Destination::LanBroadcast, 138)
    );
    assert_eq!(t[0].payload, from_a(workgroup()));
    // 0: only to the server's own names.
    let t0 = Instant::now();
    let mut config = knobs(|k| k.netbios_gateway_enabled = 0).validate().unwrap();
    config.server_names = vec![server.clone()];
    let mut gw = Gateway::new(config, t0);
    gw.add_client(A, A_IP);
    gw.handle_client_datagram(t0, A, &from_a(workgroup()));
    assert!(drain_transmits(&mut gw).is_empty());
    gw.handle_client_datagram(t0, A, &from_a(server.clone()));
    let t = drain_transmits(&mut gw);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, Destination::Server);
    assert_eq!(counter(&gw, "dropped_gateway_disabled"), 1);
    assert_eq!(counter(&gw, "client_to_server"), 1);
}

#[test]
fn names_are_released_when_sessions_end() {
    let (mut gw, t0) = setup(knobs(|k| k.multicast_forward_rate = 0));
    gw.handle_lan_datagram(t0, &lan_datagram(DatagramType::DirectGroup, workgroup(), 1));
    gw.remove_client(t0, A);
    let events = drain_events(&mut gw);
    assert!(events.contains(&Event::ReleaseOnLan {
        name: pca(),
        group: false
    }));
    // B still holds the group name: not released on the LAN.
    assert!(!events.contains(&Event::ReleaseOnLan {
        name: workgroup(),
        group: true
    }));
    assert_eq!(gw.buffered_for_group(&workgroup()), 1);
    // A's unique name no longer answers.
    let q = NamePacket::query_request(1, pca(), true);
    gw.handle_lan_name_packet(t0, SocketAddrV4::new(LAN_HOST, 137), &q.encode());
    assert!(drain_transmits(&mut gw).is_empty());
    gw.remove_client(t0, B);
    assert!(drain_events(&mut gw).contains(&Event::ReleaseOnLan {
        name: workgroup(),
        group: true
    }));
    assert_eq!(gw.buffered_for_group(&workgroup()), 0);
}

#[test]
fn client_release_through_the_tunnel() {
    let (mut gw, t0) = setup(Knobs::default());
    let rel = NamePacket::release_request(3, workgroup(), entry(true, B_IP), false);
    gw.handle_client_name_packet(t0, B, SocketAddrV4::new(B_IP, 137), &rel.encode());
    let t = drain_transmits(&mut gw);
    let p = NamePacket::decode(&t[0].payload).unwrap();
    assert_eq!(
        (p.header.opcode, p.header.rcode),
        (Opcode::Release, Rcode::Ok)
    );
    // Again: B no longer holds it.
    gw.handle_client_name_packet(t0, B, SocketAddrV4::new(B_IP, 137), &rel.encode());
    let t = drain_transmits(&mut gw);
    assert_eq!(
        NamePacket::decode(&t[0].payload).unwrap().header.rcode,
        Rcode::NameError
    );
    let events = drain_events(&mut gw);
    assert_eq!(
        events,
        vec![Event::NameReleased {
            client: B,
            name: workgroup()
        }]
    );
}

#[test]
fn malformed_packets_cost_only_themselves() {
    let (mut gw, t0) = setup(knobs(|k| k.multicast_forward_rate = 0));
    let good = lan_datagram(DatagramType::DirectGroup, workgroup(), 1);
    let mut bad = good.clone();
    bad[11] = 0xff; // DGM_LENGTH past the end
    gw.handle_lan_datagrams(t0, &[&bad, &good, &[0x11]]);
    assert_eq!(drain_client(&mut gw, A), vec![1]);
    assert_eq!(counter(&gw, "malformed"), 2);
    let events = drain_events(&mut gw);
    assert_eq!(
        events[0].to_string(),
        "netbios: dropped a malformed datagram from the LAN: DGM_LENGTH 255 does not fit the 78 octets after the header"
    );
    gw.handle_client_name_packet(t0, A, SocketAddrV4::new(A_IP, 137), &[1, 2, 3]);
    assert_eq!(
        drain_events(&mut gw)[0].to_string(),
        "netbios: dropped a malformed name service packet from client 1: name service packet of 3 octets is shorter than its 12-octet header"
    );
}
