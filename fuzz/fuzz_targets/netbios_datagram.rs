//! Fuzz the NetBIOS datagram service (RFC 1002 §4.4): the packet decoder,
//! an encode/decode round trip of whatever decodes, and a gateway whose
//! clients hold a group and a unique name fed the input as bursts of LAN
//! datagrams and clients' datagrams, drained by the clients in between.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use netbios::name_service::{NbEntry, NodeType};
use netbios::{ClientId, Datagram, Gateway, Knobs, LanVerdict, NamePacket, NetbiosName};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Datagram::decode(data) {
        assert_eq!(Datagram::decode(&d.encode()), Ok(d));
    }

    let t0 = Instant::now();
    let knobs = Knobs {
        enable_broadcast: 1,
        multicast_forward_rate: 1,
        max_dg_buffered_per_group_name: 4,
        ..Knobs::default()
    };
    let mut gw = Gateway::new(knobs.validate().expect("valid knobs"), t0);
    let client = ClientId(1);
    let ip = Ipv4Addr::new(10, 0, 10, 20);
    gw.add_client(client, ip);
    for (name, group) in [("WORKGROUP", true), ("PC", false)] {
        let name = NetbiosName::new(name, 0).expect("valid name");
        let entry = NbEntry {
            group,
            node_type: NodeType::B,
            address: ip,
        };
        let req = NamePacket::registration_request(1, name.clone(), 300, entry, true);
        gw.handle_client_name_packet(t0, client, SocketAddrV4::new(ip, 137), &req.encode());
        gw.handle_lan_verdict(t0, &name, LanVerdict::Accepted);
    }
    let mut now = t0;
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head >> 1).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        if head & 1 == 0 {
            gw.handle_lan_datagrams(now, &[packet, packet]);
        } else {
            gw.handle_client_datagram(now, client, packet);
        }
        if head & 0x80 != 0 {
            while gw.poll_client_datagram(client).is_some() {}
        }
        while gw.poll_transmit().is_some() {}
        while gw.poll_event().is_some() {}
        assert!(gw.buffered_for_group(&NetbiosName::new("WORKGROUP", 0).expect("valid name")) <= 4);
        now += Duration::from_millis(u64::from(head) * 20);
    }
});
