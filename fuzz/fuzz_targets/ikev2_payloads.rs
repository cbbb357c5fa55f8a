//! Fuzz every IKEv2 payload parser and the fragment reassembly directly:
//! header and chain, SA proposals, traffic selectors, configuration
//! payload, KE/Nonce/ID/AUTH/CERT/Notify/Delete, the NAT-probe notify data
//! (round trip), SK location, and a
//! reassembly fed fuzzed fragment numbers. Nothing may panic, and the
//! reassembly holds no more than its byte bound.
#![no_main]

use ipsec::ikev2::config_payload::ConfigPayload;
use ipsec::ikev2::fragments::{Reassembly, MAX_REASSEMBLED};
use ipsec::ikev2::payloads::{parse_nonce, Authentication, Certificate, Delete, Identification, KeyExchange, Notify};
use ipsec::ikev2::{encrypted, nat_probe, sa_payload, traffic_selectors, wire};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = wire::Header::parse(data) {
        let _ = wire::payloads(h.next_payload, &data[wire::HEADER_LEN..]);
    }
    let _ = encrypted::locate(data);
    if let Some((&first, rest)) = data.split_first() {
        let _ = wire::payloads(first, rest);
    }
    if let Ok(p) = sa_payload::parse(data) {
        let again = sa_payload::parse(&sa_payload::encode(&p)).expect("our encoding parses");
        assert_eq!(again.len(), p.len());
        for proposal in &p {
            for t in &proposal.transforms {
                let _ = sa_payload::transform_name(t);
            }
        }
    }
    if let Ok(ts) = traffic_selectors::parse(data) {
        assert_eq!(traffic_selectors::parse(&traffic_selectors::encode(&ts)).expect("round trip"), ts);
        for a in &ts {
            for b in &ts {
                let _ = a.intersect(b);
            }
        }
    }
    let _ = ConfigPayload::parse(data);
    let _ = KeyExchange::parse(data);
    let _ = parse_nonce(data);
    if let Ok(id) = Identification::parse(data) {
        let _ = id.describe();
    }
    let _ = Authentication::parse(data);
    if let Ok(c) = Certificate::parse(data) {
        let _ = c.ca_hashes().count();
    }
    let _ = Notify::parse(data);
    if let Ok(r) = nat_probe::ProbeRequest::parse(data) {
        assert_eq!(nat_probe::ProbeRequest::parse(&r.encode()), Ok(r));
        let d = r.clamped_delay();
        assert!(d >= nat_probe::MIN_DELAY && d <= nat_probe::MAX_DELAY);
    }
    if let Ok(cookie) = nat_probe::parse_probe(data) {
        assert_eq!(nat_probe::encode_probe(cookie), data);
    }
    let _ = Delete::parse(data);
    let mut reassembly = Reassembly::new();
    for chunk in data.chunks(6) {
        if chunk.len() < 5 {
            break;
        }
        let number = u16::from_be_bytes([chunk[0], chunk[1]]);
        let total = u16::from_be_bytes([chunk[2], chunk[3]]);
        let content = Zeroizing::new(vec![chunk[4]; chunk[4] as usize * 64]);
        let _ = reassembly.add(number, total, chunk[4], content);
        assert!(reassembly.held_bytes() <= MAX_REASSEMBLED);
    }
});
