//! Fuzz the NetBIOS name service (RFC 1002 §4.2): the packet decoder, an
//! encode/decode round trip of whatever decodes, and a gateway fed the
//! input as name service packets from the LAN and from a client, with the
//! LAN accepting or refusing each name it is asked to register.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use netbios::{ClientId, Event, Gateway, Knobs, LanVerdict, NamePacket, Rcode};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = NamePacket::decode(data) {
        assert_eq!(NamePacket::decode(&p.encode()), Ok(p));
    }

    let now = Instant::now();
    let knobs = Knobs {
        max_names_per_client: 4,
        max_names: 6,
        ..Knobs::default()
    };
    let mut gw = Gateway::new(knobs.validate().expect("valid knobs"), now);
    let client = ClientId(1);
    let ip = Ipv4Addr::new(10, 0, 10, 20);
    gw.add_client(client, ip);
    let lan = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 5), 137);
    // The input split into packets, each prefixed by a length octet whose
    // low bit says which side it comes from.
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head >> 1).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        if head & 1 == 0 {
            gw.handle_client_name_packet(now, client, SocketAddrV4::new(ip, 137), packet);
        } else {
            gw.handle_lan_name_packet(now, lan, packet);
        }
        while let Some(ev) = gw.poll_event() {
            if let Event::RegisterOnLan { name, .. } = ev {
                let verdict = if head & 2 == 0 {
                    LanVerdict::Accepted
                } else {
                    LanVerdict::Refused(Rcode::Active)
                };
                gw.handle_lan_verdict(now, &name, verdict);
            }
        }
        while let Some(t) = gw.poll_transmit() {
            assert!(NamePacket::decode(&t.payload).is_ok());
        }
        assert!(gw.client_names(client).len() <= 4);
    }
});
