//! Arbitrary bytes into the name service and datagram parsers: each either
//! refuses them with a typed error or parses something that encodes and
//! parses back to itself. And arbitrary traffic into the gateway keeps its
//! bounds (buffers, names).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netbios::datagram::{Datagram, DatagramType};
use netbios::name_service::{NamePacket, NbEntry, NodeType};
use netbios::{ClientId, Gateway, Knobs, NetbiosName};
use proptest::prelude::*;

fn name_strategy() -> impl Strategy<Value = NetbiosName> {
    (
        proptest::array::uniform16(any::<u8>()),
        proptest::collection::vec("[a-z0-9]{1,12}", 0..4),
    )
        .prop_map(|(octets, labels)| NetbiosName::from_octets(octets, &labels.join(".")).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn name_service_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = NamePacket::decode(&bytes) {
            prop_assert_eq!(NamePacket::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn datagram_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(d) = Datagram::decode(&bytes) {
            prop_assert_eq!(Datagram::decode(&d.encode()), Ok(d));
        }
    }

    /// Valid packets with a few octets changed: still refused or round-tripped.
    #[test]
    fn mutated_registration(name in name_strategy(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let entry = NbEntry { group: false, node_type: NodeType::B, address: Ipv4Addr::new(10, 0, 0, 1) };
        let mut wire = NamePacket::registration_request(1, name, 300, entry, true).encode();
        for (i, b) in flips {
            let i = i % wire.len();
            wire[i] = b;
        }
        if let Ok(p) = NamePacket::decode(&wire) {
            prop_assert_eq!(NamePacket::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn names_round_trip(name in name_strategy()) {
        let mut wire = Vec::new();
        name.encode(&mut wire);
        prop_assert_eq!(wire.len(), name.encoded_len());
        prop_assert_eq!(NetbiosName::decode(&wire, 0, false), Ok((name, wire.len())));
    }

    /// Whatever arrives, no group buffer exceeds MaxDgBufferedPerGroupName
    /// and no client exceeds MaxNames.
    #[test]
    fn gateway_bounds(ops in proptest::collection::vec((0u8..6, 0u8..4, 0u8..3, any::<u16>()), 1..200)) {
        let t0 = Instant::now();
        let config = Knobs { max_dg_buffered_per_group_name: 4, max_names_per_client: 2, max_names: 3, multicast_forward_rate: 0, enable_broadcast: 1, ..Knobs::default() }.validate().unwrap();
        let mut gw = Gateway::new(config, t0);
        let names: Vec<NetbiosName> = ["G0", "G1", "U2", "U3"].iter().map(|n| NetbiosName::new(n, 0).unwrap()).collect();
        for c in 0..3u64 { gw.add_client(ClientId(c), Ipv4Addr::new(10, 0, 10, 20 + c as u8)); }
        for (i, (op, n, c, id)) in ops.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 10);
            let client = ClientId(u64::from(c));
            let ip = Ipv4Addr::new(10, 0, 10, 20 + c);
            let name = names[usize::from(n)].clone();
            let group = n < 2;
            match op {
                0 => {
                    let e = NbEntry { group, node_type: NodeType::B, address: ip };
                    let p = NamePacket::registration_request(id, name.clone(), 300, e, id % 2 == 0);
                    gw.handle_client_name_packet(now, client, SocketAddrV4::new(ip, 137), &p.encode());
                    while let Some(ev) = gw.poll_event() {
                        if let netbios::Event::RegisterOnLan { name, .. } = ev {
                            let v = if id % 5 == 0 { netbios::LanVerdict::Refused(netbios::Rcode::Active) } else { netbios::LanVerdict::Accepted };
                            gw.handle_lan_verdict(now, &name, v);
                        }
                    }
                }
                1 | 2 => {
                    let t = if op == 1 { DatagramType::DirectGroup } else { DatagramType::Broadcast };
                    let d = Datagram::data(t, id, Ipv4Addr::new(192, 168, 1, 2), names[0].clone(), name.clone(), vec![0; 8]);
                    gw.handle_lan_datagram(now, &d.encode());
                }
                3 => { gw.poll_client_datagram(client); }
                4 => gw.set_session_traffic(client, id % 2 == 0),
                _ => {
                    gw.remove_client(now, client);
                    gw.add_client(client, ip);
                }
            }
            while gw.poll_transmit().is_some() {}
            while gw.poll_event().is_some() {}
            for n in &names {
                prop_assert!(gw.buffered_for_group(n) <= 4);
            }
            let mut total = std::collections::BTreeSet::new();
            for c in 0..3u64 {
                let held = gw.client_names(ClientId(c));
                prop_assert!(held.len() <= 2);
                total.extend(held.into_iter().map(|(n, _, _)| n));
            }
            prop_assert!(total.len() <= 3);
        }
    }
}
