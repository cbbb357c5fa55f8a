//! EAP-MSCHAPv2 inside IKEv2, in memory: our IKEv2 initiator and responder
//! with the PPP crate's EAP peer and authenticator on either end. The MSK
//! is derived on each side from its own view of the MS-CHAPv2 exchange, so
//! an established IKE SA proves the two derivations agree.

use std::net::SocketAddr;
use std::time::Instant;

use ipsec::ikev2::{
    Authorization, ClientAuth, Ikev2ClientEvent, Ikev2Config, Ikev2Event, Ikev2Initiator,
    Ikev2InitiatorConfig, Ikev2PskTable, Ikev2Responder,
};
use ppp::auth::{AuthMethod, Secret};
use zeroize::Zeroizing;

use super::*;

const SERVER_KEY: &[u8] = b"server key until certificates";

/// Runs one connection; `password` is what the client types, the store
/// knows "alice" with "correct horse".
fn connect(password: &str) -> (Ikev2Initiator, Vec<Ikev2ClientEvent>, Vec<String>) {
    let now = Instant::now();
    let mut rng = rand::thread_rng();
    let client_config = Ikev2InitiatorConfig::new(
        ClientAuth::Eap {
            server_key: Zeroizing::new(SERVER_KEY.to_vec()),
        },
        "192.168.1.20",
    );
    let local: SocketAddr = "192.168.1.20:500".parse().expect("addr");
    let server_addr: SocketAddr = "198.51.100.1:500".parse().expect("addr");
    let mut client = Ikev2Initiator::new(client_config, local, server_addr, now);
    let mut server = Ikev2Responder::new(
        Ikev2Config {
            psks: Ikev2PskTable::new().with_wildcard(SERVER_KEY),
            ..Ikev2Config::default()
        },
        now,
    );
    let mut eap_server: Option<IkeEapServer> = None;
    let mut eap_peer = IkeEapPeer::new("alice", password, &mut rng);
    let mut client_events = Vec::new();
    let mut refusals = Vec::new();
    for _ in 0..40 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit() {
            moved = true;
            server.handle_datagram(now, server_addr, local, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = server.poll_transmit() {
            moved = true;
            client.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
        while let Some(event) = server.poll_event() {
            moved = true;
            let (ike_sa, step) = match event {
                Ikev2Event::EapStart { ike_sa, .. } => {
                    let eap = eap_server.insert(IkeEapServer::new("ras", false, &mut rng));
                    (ike_sa, eap.start(now))
                }
                Ikev2Event::EapResponse { ike_sa, packet } => {
                    let eap = eap_server.as_mut().expect("started");
                    (ike_sa, eap.response(now, &packet))
                }
                Ikev2Event::AuthorizationNeeded(req) => {
                    assert_eq!(req.identity, "alice");
                    let decision = Authorization {
                        ipv4: Some("10.0.10.30".parse().expect("ip")),
                        ..Authorization::default()
                    };
                    server.authorize(now, req.ike_sa, Ok(decision));
                    continue;
                }
                Ikev2Event::Refused { reason, .. } => {
                    refusals.push(reason);
                    continue;
                }
                _ => continue,
            };
            let step = match step {
                ServerStep::Check(request) => {
                    assert_eq!(request.username, "alice");
                    assert_eq!(request.method, AuthMethod::EapMsChapV2);
                    let eap = eap_server.as_mut().expect("started");
                    eap.provide_secret(
                        now,
                        Secret::Password(Zeroizing::new("correct horse".into())),
                    )
                }
                other => other,
            };
            if let ServerStep::Reply(reply) = step {
                server.eap_reply(now, ike_sa, reply);
            }
        }
        while let Some(event) = client.poll_event() {
            moved = true;
            match event {
                Ikev2ClientEvent::EapRequest { packet } => match eap_peer.handle(now, &packet) {
                    PeerStep::Respond(response) => client.eap_response(now, &response),
                    PeerStep::Finished(msk) => client.eap_finished(now, msk),
                    PeerStep::Failed(reason) => {
                        client_events.push(Ikev2ClientEvent::Down { reason })
                    }
                    PeerStep::Nothing => {}
                },
                other => client_events.push(other),
            }
        }
        if !moved {
            break;
        }
    }
    (client, client_events, refusals)
}

#[test]
fn eap_mschapv2_inside_ikev2_binds_both_auths_to_the_msk() {
    let (client, events, refusals) = connect("correct horse");
    assert!(client.is_established(), "refusals: {refusals:?}");
    assert_eq!(
        client.virtual_ipv4(),
        Some("10.0.10.30".parse().expect("ip"))
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Ikev2ClientEvent::ChildSaUp(_))));
}

#[test]
fn a_wrong_password_ends_in_eap_failure() {
    let (client, events, refusals) = connect("battery staple");
    assert!(!client.is_established());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ikev2ClientEvent::Down { .. })),
        "the client learns of the failure"
    );
    assert!(!refusals.is_empty(), "the server logs it");
}
