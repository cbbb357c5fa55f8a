//! Fuzz the PPTP server's GRE demultiplexer: raw IPv4 datagrams as a raw
//! socket returns them, routed through a call table with a few calls
//! (some from the datagram's own source address).
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use pptp::demux::{gre_call_id, parse_ipv4_gre, CallTable, DropLog, Misroute};

fuzz_target!(|data: &[u8]| {
    // Calls 1..=4: odd ones for the address in the datagram (when it has
    // one), even ones for another, so every outcome is reachable.
    let source = data
        .get(12..16)
        .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    // The other address must differ from the datagram's own, which the
    // bytes choose (a datagram from 203.0.113.9 once made the "other"
    // calls its own, and the harness, not the demultiplexer, was wrong).
    let other = if source == Ipv4Addr::new(203, 0, 113, 9) {
        Ipv4Addr::new(203, 0, 113, 10)
    } else {
        Ipv4Addr::new(203, 0, 113, 9)
    };
    let mut table = CallTable::new();
    for n in 1..=4u16 {
        let peer = if n % 2 == 1 { source } else { other };
        assert_eq!(table.register(peer, n), Some(n));
    }
    // The bytes as a whole datagram, and as the GRE packet behind a valid
    // IPv4 header from the same source (so the GRE checks are reached).
    let mut drops = DropLog::new(std::time::Duration::from_secs(5));
    let mut datagrams = vec![data.to_vec()];
    let mut wrapped = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0];
    wrapped.extend_from_slice(&source.octets());
    wrapped.extend_from_slice(&[192, 0, 2, 1]);
    wrapped.extend_from_slice(data);
    let total = u16::try_from(wrapped.len()).unwrap_or(u16::MAX);
    wrapped[2..4].copy_from_slice(&total.to_be_bytes());
    datagrams.push(wrapped);
    for d in &datagrams {
        match table.route(d) {
            Ok(routed) => {
                assert!(routed.gre.start >= 20 && routed.gre.end <= d.len());
                assert!(routed.gre.start <= routed.gre.end);
                assert_eq!(*routed.target, routed.call_id);
                assert_eq!(routed.call_id % 2, 1, "even calls are another address's");
                let gre = &d[routed.gre];
                assert_eq!(pptp::gre::peek_call_id(gre), Some(routed.call_id));
            }
            Err(why) => {
                if let Misroute::UnknownCall { call_id, .. } = why {
                    assert!(!(1..=4).contains(&call_id));
                }
                if let Ok(ip) = parse_ipv4_gre(d) {
                    let gre = &d[ip.gre];
                    assert_eq!(gre_call_id(gre).ok(), pptp::gre::peek_call_id(gre));
                }
                let _ = why.to_string();
                drops.count(&why);
            }
        }
    }
    assert!(drops.counts().total() <= 2);
});
