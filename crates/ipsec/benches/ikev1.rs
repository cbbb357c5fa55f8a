//! IKEv1 connects: Main Mode (PSK) + Quick Mode between our initiator and
//! our responder in memory, both sides' work per iteration, for the
//! Diffie-Hellman groups clients use. The responder's share is what limits
//! a server's connects per second; the L2TP and PPP steps that follow are
//! measured elsewhere (`cargo bench -p ppp --bench negotiation`).
//!
//!     cargo bench -p ipsec --bench ikev1

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use ipsec::ike_crypto::{DhGroup, HashAlg, IkeCipher};
use ipsec::ikev1::initiator::Initiator;
use ipsec::ikev1::initiator_config::{IkeOffer, InitiatorConfig};
use ipsec::ikev1::{IkeEvent, PskTable, Responder, ResponderConfig};

const PSK: &[u8] = b"bench-psk";

/// Runs one Main Mode + Quick Mode to both sides' ChildSaUp.
fn connect(responder: &mut Responder, group: DhGroup, port: u16) {
    let now = Instant::now();
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let client = SocketAddr::new("192.0.2.10".parse().unwrap(), port);
    let mut config = InitiatorConfig::new(PSK);
    config.ike_offers = vec![IkeOffer::new(IkeCipher::Aes256Cbc, HashAlg::Sha256, group)];
    let mut initiator = Initiator::new(config, client, server, now);
    let (mut client_up, mut server_up) = (false, false);
    for _ in 0..16 {
        while let Some(t) = initiator.poll_transmit() {
            responder.handle_datagram(now, server, client, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = responder.poll_transmit() {
            initiator.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
        while let Some(e) = responder.poll_event() {
            server_up |= matches!(e, IkeEvent::ChildSaUp(_));
        }
        while let Some(e) = initiator.poll_event() {
            client_up |= matches!(e, IkeEvent::ChildSaUp(_));
        }
        if client_up && server_up {
            return;
        }
    }
    panic!("no connect with {}", group.name());
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ikev1_connect");
    group.sample_size(20);
    for dh in [
        DhGroup::Modp1024,
        DhGroup::Modp2048,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Ecp521,
    ] {
        let mut responder = Responder::new(ResponderConfig {
            psks: PskTable::new().with_wildcard(PSK),
            max_ike_sas: usize::MAX,
            half_open_total: usize::MAX,
            half_open_per_source: usize::MAX,
            ..Default::default()
        });
        let mut port = 1024u16;
        group.bench_function(dh.name(), |b| {
            b.iter(|| {
                port = port.wrapping_add(1).max(1024);
                connect(&mut responder, dh, port);
            })
        });
        // Keep the responder's tables from growing across samples.
        responder.close_all(Instant::now());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
