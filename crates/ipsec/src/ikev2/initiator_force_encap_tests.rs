//! RFC 7296 §2.23: an initiator that fakes its NAT_DETECTION_SOURCE_IP
//! makes our responder see a NAT, and both ends then use UDP
//! encapsulation on port 4500 although no address was rewritten.

use std::net::SocketAddr;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::ikev2::events::Ikev2Event;
use crate::ikev2::initiator::Ikev2ClientEvent;
use crate::ikev2::{
    Authorization, ClientAuth, Ikev2Config, Ikev2Initiator, Ikev2InitiatorConfig, Ikev2PskTable,
    Ikev2Responder, LocalIdentity,
};

const PSK: &[u8] = b"force encapsulation test key";

/// Connects an initiator (PSK, `force` as given) to our responder with no
/// NAT between them; returns (client's child in UDP, server's child in
/// UDP, the port the client's last message went to, the client's NAT
/// wording).
fn connect(force: bool) -> (bool, bool, u16, String) {
    let now = Instant::now();
    let server_addr: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let local: SocketAddr = "192.0.2.20:500".parse().unwrap();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "c.example",
    );
    config.force_udp_encapsulation = force;
    let mut client = Ikev2Initiator::new(config, local, server_addr, now);
    let mut server = Ikev2Responder::new(
        Ikev2Config {
            psks: Ikev2PskTable::new().with_wildcard(PSK),
            local_identity: LocalIdentity::Fqdn("vpn.example".into()),
            ..Ikev2Config::default()
        },
        now,
    );
    let (mut client_udp, mut server_udp, mut last_port) = (None, None, 0);
    let mut nat_text = String::new();
    for _ in 0..20 {
        while let Some(t) = client.poll_transmit() {
            // The source the server sees is the client's real address and
            // port: nothing rewrites it.
            let from = SocketAddr::new(local.ip(), if t.from_nat_t_port { 4500 } else { 500 });
            let to = SocketAddr::new(server_addr.ip(), t.remote.port());
            last_port = t.remote.port();
            server.handle_datagram(now, to, from, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = server.poll_transmit() {
            client.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
        while let Some(e) = server.poll_event() {
            match e {
                Ikev2Event::AuthorizationNeeded(req) => server.authorize(
                    now,
                    req.ike_sa,
                    Ok(Authorization {
                        ipv4: Some("10.0.10.21".parse().unwrap()),
                        ..Authorization::default()
                    }),
                ),
                Ikev2Event::ChildSaUp(child) => server_udp = Some(child.udp_encapsulated),
                _ => {}
            }
        }
        while let Some(e) = client.poll_event() {
            match e {
                Ikev2ClientEvent::ChildSaUp(child) => client_udp = Some(child.udp_encapsulated),
                Ikev2ClientEvent::Connected { nat, .. } => nat_text = nat,
                _ => {}
            }
        }
    }
    assert!(client.is_established());
    (
        client_udp.expect("client child SA"),
        server_udp.expect("server child SA"),
        last_port,
        nat_text,
    )
}

#[test]
fn without_a_nat_esp_is_not_encapsulated() {
    assert_eq!(connect(false), (false, false, 500, "no NAT".to_string()));
}

#[test]
fn a_faked_source_hash_makes_both_ends_encapsulate() {
    // Nothing was rewritten: the client's line says why it encapsulates
    // rather than claiming a NAT (as IKEv1's initiator words it).
    assert_eq!(
        connect(true),
        (true, true, 4500, "UDP encapsulation forced".to_string())
    );
}
