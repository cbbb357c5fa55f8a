//! Fuzz the RADIUS codec and the client's reply handling: decode random
//! bytes (a decoded packet must re-encode and decode to the same packet),
//! feed them to `RadiusClient::handle_datagram`, and feed them again signed
//! with the right secret so that the attribute readers (MPPE key
//! decryption, MS-CHAP attributes, EAP reassembly) are reached too.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use radius::security::sign_response;
use radius::{ClientConfig, Packet, RadiusClient, Request, Secret, ServerId};
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let bytes = p.to_bytes().expect("a decoded packet re-encodes");
        assert_eq!(Packet::decode(&bytes).expect("and decodes again"), p);
        for a in &p.attributes {
            if let Some(vsa) = a.as_vsa() {
                let _ = vsa.sub_attributes();
            }
        }
    }

    let now = Instant::now();
    let cfg = ClientConfig::new(Secret::new("fuzz"), Some(Secret::new("alternate")));
    let mut client = RadiusClient::with_rng(cfg, rand::rngs::StdRng::seed_from_u64(0));
    let request = if data.first().is_some_and(|b| b & 1 == 1) {
        Request::accounting(radius::dict::AcctStatusType::Start, b"session")
    } else {
        Request::pap(b"user", b"password")
    };
    let tx = client.send(request, now).expect("a small request encodes");
    let (_, sent) = client.poll_transmit().expect("the request is queued");
    let _ = client.handle_datagram(ServerId::PRIMARY, data, now);
    let _ = client.handle_datagram(ServerId::ALTERNATE, data, now);

    if client.server_of(tx).is_some() && data.len() >= 20 {
        let mut signed = data.to_vec();
        signed[1] = sent[1];
        let mut request_auth = [0u8; 16];
        request_auth.copy_from_slice(&sent[4..20]);
        if sign_response(&mut signed, &request_auth, &Secret::new("fuzz")).is_ok() {
            let _ = client.handle_datagram(ServerId::PRIMARY, &signed, now);
        }
    }
    while client.poll_event().is_some() {}
    client.handle_timeout(now + std::time::Duration::from_secs(3600));
    while client.poll_event().is_some() {}
});
