//! Fuzz the authentication parsers and state machines: PAP, CHAP,
//! MS-CHAPv1 Responses, MS-CHAPv2 messages, EAP and EAP-MSCHAPv2, in both
//! roles.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use ppp::auth::{self, AuthProtocol, Authenticator, AuthenticatorConfig, Peer, PeerConfig};
use rand::{rngs::StdRng, SeedableRng};

fuzz_target!(|data: &[u8]| {
    let _ = auth::pap::parse_packet(data);
    let _ = auth::packet::parse_chap_packet(data);
    let _ = auth::mschapv1::ResponseValue::parse(data);
    let _ = auth::mschapv2::parse_success_message(data);
    let _ = auth::mschapv2::parse_failure_message(data);
    let _ = auth::eap::parse_packet(data);
    let _ = auth::eap_mschapv2::parse(data, true);
    let _ = auth::eap_mschapv2::parse(data, false);
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let protocol = [
        AuthProtocol::Pap,
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV1,
        AuthProtocol::MsChapV2,
        AuthProtocol::Eap,
    ][selector as usize % 5];
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let mut config = AuthenticatorConfig::new("fuzz");
    config.eap_pass_through = selector & 0x10 != 0;
    let mut server = Authenticator::new(protocol, config, &mut rng);
    let mut client = Peer::new(protocol, PeerConfig::new("user", "pass"), &mut rng);
    server.start(now);
    client.start(now);
    for chunk in rest.split(|&b| b == 0xa5) {
        server.handle_packet(now, chunk);
        client.handle_packet(now, chunk);
        while server.poll_transmit().is_some() {}
        while client.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
        while client.poll_event().is_some() {}
    }
});
