//! Fuzz the VPN server address parser (`host`, `host:port`, `[v6]:port`,
//! `sstp://…`, `pptp://…`) and the per-protocol endpoint choice: a profile's server
//! file comes from elsewhere.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profile::endpoint::ServerAddress;
use profile::model::VpnProtocol;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(address) = ServerAddress::parse(text) else {
        return;
    };
    assert!(!address.host.is_empty());
    for order in [
        &[VpnProtocol::Sstp, VpnProtocol::Pptp][..],
        &[VpnProtocol::Pptp][..],
        &[VpnProtocol::Pptp, VpnProtocol::Sstp][..],
    ] {
        for protocol in order {
            if let Some((host, port)) = address.endpoint(*protocol, order) {
                assert_eq!(host, address.host);
                assert!(port > 0);
            }
        }
        // A written port is never the port of both protocols.
        let sstp = address.endpoint(VpnProtocol::Sstp, order).map(|e| e.1);
        let pptp = address.endpoint(VpnProtocol::Pptp, order).map(|e| e.1);
        if let (Some(s), Some(p)) = (sstp, pptp) {
            assert!(s != p || s == 443 || p == 1723);
        }
    }
});
