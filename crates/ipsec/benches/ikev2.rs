//! IKEv2 connects: IKE_SA_INIT + IKE_AUTH (pre-shared key) with the first
//! child SA, between our initiator and our responder in memory, both
//! sides' work per iteration, for the key exchange groups clients use.
//! The responder's share (about half: one key generation, one agreement,
//! the key derivation and two MACs) is what bounds a server's handshakes
//! per second. Each group again with the responder's key pair made ahead
//! ("stocked"): the responder's saving per handshake.
//!
//!     cargo bench -p ipsec --bench ikev2

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ipsec::ike_crypto::{DhGroup, DhStock, HashAlg, IkeCipher};
use ipsec::ikev2::encrypted::{SkCipher, SkInteg};
use ipsec::ikev2::{
    Authorization, ClientAuth, Ikev2ClientEvent, Ikev2Config, Ikev2Event, Ikev2Initiator,
    Ikev2InitiatorConfig, Ikev2Offer, Ikev2PskTable, Ikev2Responder,
};
use zeroize::Zeroizing;

const PSK: &[u8] = b"bench-psk";

fn connect(responder: &mut Responder2, offer: Ikev2Offer, port: u16) {
    let now = Instant::now();
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let client = SocketAddr::new("192.0.2.10".parse().unwrap(), port);
    let mut config =
        Ikev2InitiatorConfig::new(ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())), "bench");
    config.ike_offers = vec![offer];
    let mut initiator = Ikev2Initiator::new(config, client, server, now);
    let r = &mut responder.0;
    let (mut client_up, mut server_up) = (false, false);
    for _ in 0..16 {
        while let Some(t) = initiator.poll_transmit() {
            r.handle_datagram(now, server, client, t.from_nat_t_port, &t.bytes);
        }
        while let Some(e) = r.poll_event() {
            match e {
                Ikev2Event::AuthorizationNeeded(req) => r.authorize(
                    now,
                    req.ike_sa,
                    Ok(Authorization {
                        ipv4: Some("10.0.0.2".parse().unwrap()),
                        ..Authorization::default()
                    }),
                ),
                Ikev2Event::ChildSaUp(_) => server_up = true,
                _ => {}
            }
        }
        while let Some(t) = r.poll_transmit() {
            initiator.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
        while let Some(e) = initiator.poll_event() {
            client_up |= matches!(e, Ikev2ClientEvent::ChildSaUp(_));
        }
        if client_up && server_up {
            return;
        }
    }
    panic!("no connect with {}", offer.group.name());
}

struct Responder2(Ikev2Responder);

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ikev2_connect");
    group.sample_size(20);
    let offers = [
        (
            "aes128gcm/x25519",
            SkCipher::AesGcm16 { key_len: 16 },
            None,
            DhGroup::Curve25519,
        ),
        (
            "aes128gcm/ecp256",
            SkCipher::AesGcm16 { key_len: 16 },
            None,
            DhGroup::Ecp256,
        ),
        (
            "aes256cbc-sha256/modp2048",
            SkCipher::Cbc(IkeCipher::Aes256Cbc),
            Some(SkInteg::HmacSha256_128),
            DhGroup::Modp2048,
        ),
        (
            "aes256cbc-sha1/modp1024",
            SkCipher::Cbc(IkeCipher::Aes256Cbc),
            Some(SkInteg::HmacSha1_96),
            DhGroup::Modp1024,
        ),
    ];
    for (name, cipher, integ, dh) in offers {
        let prf = if integ == Some(SkInteg::HmacSha1_96) {
            HashAlg::Sha1
        } else {
            HashAlg::Sha256
        };
        let offer = Ikev2Offer {
            cipher,
            prf,
            integ,
            group: dh,
        };
        let mut responder = Responder2(Ikev2Responder::new(
            Ikev2Config {
                psks: Ikev2PskTable::new().with_wildcard(PSK),
                cookie_threshold: usize::MAX,
                max_half_open: usize::MAX,
                ..Ikev2Config::default()
            },
            Instant::now(),
        ));
        let mut port = 1024u16;
        group.bench_function(name, |b| {
            b.iter(|| {
                port = port.checked_add(1).unwrap_or(1024);
                connect(&mut responder, offer, port);
            })
        });
        // The same with the responder's key pair made ahead (`DhStock`,
        // filled outside the timed part as the server's idle thread does).
        let stock = Arc::new(DhStock::new(1));
        stock.take(dh).expect("a key"); // asks for the group
        let mut config = responder.0.config().clone();
        config.dh_stock = Some(stock.clone());
        responder.0.set_config(config);
        group.bench_function(format!("{name} stocked"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    while stock.refill_one() {}
                    port = port.checked_add(1).unwrap_or(1024);
                    let start = Instant::now();
                    connect(&mut responder, offer, port);
                    timed += start.elapsed();
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
