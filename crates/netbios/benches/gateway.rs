//! The NetBIOS datagram gateway's cost per datagram: decoding one
//! (RFC 1002 §4.4), and a LAN group datagram delivered to every client
//! holding the group name (the seed's fan-out), for 1, 10 and 100 clients.
//!
//! Run with `cargo bench -p netbios --bench gateway`.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netbios::name_service::{NbEntry, NodeType};
use netbios::{
    ClientId, Datagram, DatagramType, Gateway, Knobs, LanVerdict, NamePacket, NetbiosName,
};

/// A browser announcement-sized datagram from a LAN host to `group`.
fn lan_datagram(group: &NetbiosName) -> Vec<u8> {
    Datagram::data(
        DatagramType::DirectGroup,
        0x42,
        Ipv4Addr::new(172, 31, 0, 2),
        NetbiosName::new("LANHOST", 0x00).expect("valid name"),
        group.clone(),
        vec![0xa5; 160],
    )
    .encode()
}

/// A gateway whose `clients` all hold `group`, every datagram forwarded.
fn gateway(clients: u32, group: &NetbiosName) -> Gateway {
    let knobs = Knobs {
        enable_broadcast: 1,
        multicast_forward_rate: 0,
        disable_mcast_fwd_when_session_traffic: 0,
        ..Knobs::default()
    };
    let t0 = Instant::now();
    let mut gw = Gateway::new(knobs.validate().expect("valid knobs"), t0);
    for n in 0..clients {
        let id = ClientId(u64::from(n) + 1);
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 10, 20)) + n);
        gw.add_client(id, ip);
        let entry = NbEntry {
            group: true,
            node_type: NodeType::B,
            address: ip,
        };
        let req = NamePacket::registration_request(1, group.clone(), 300, entry, true);
        gw.handle_client_name_packet(t0, id, SocketAddrV4::new(ip, 137), &req.encode());
        gw.handle_lan_verdict(t0, group, LanVerdict::Accepted);
    }
    while gw.poll_transmit().is_some() {}
    while gw.poll_event().is_some() {}
    gw
}

fn bench(c: &mut Criterion) {
    let group = NetbiosName::new("WORKGROUP", 0x1d).expect("valid name");
    let packet = lan_datagram(&group);
    let mut g = c.benchmark_group("netbios");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Datagram::decode(black_box(&packet)).expect("decodes"))
    });
    for clients in [1u32, 10, 100] {
        let mut gw = gateway(clients, &group);
        let now = Instant::now();
        // What is measured is a delivery: every client gets the datagram.
        gw.handle_lan_datagram(now, &packet);
        for id in 1..=u64::from(clients) {
            assert!(
                gw.poll_client_datagram(ClientId(id)).is_some(),
                "client {id}"
            );
        }
        g.bench_with_input(
            BenchmarkId::new("lan_to_group", clients),
            &clients,
            |b, &n| {
                b.iter(|| {
                    gw.handle_lan_datagram(now, black_box(&packet));
                    for id in 1..=u64::from(n) {
                        black_box(gw.poll_client_datagram(ClientId(id)));
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
