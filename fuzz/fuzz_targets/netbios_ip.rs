//! Fuzz the IPv4/UDP unwrapping of clients' NetBIOS packets
//! (server::netbios_ip, RFC 791 / RFC 768): every packet a client sends
//! passes `udp4_destination_port`, and the gateway's ports through
//! `parse_udp4`. Whatever parses must rebuild into a packet that parses to
//! the same addresses and payload, and both must agree on the port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::netbios_ip::{build_udp4, parse_udp4, udp4_destination_port};

fuzz_target!(|data: &[u8]| {
    let port = udp4_destination_port(data);
    if let Some(udp) = parse_udp4(data) {
        assert_eq!(port, Some(udp.to.port()));
        let rebuilt = build_udp4(udp.from, udp.to, 7, udp.payload).expect("fits");
        assert_eq!(parse_udp4(&rebuilt), Some(udp));
    }
});
