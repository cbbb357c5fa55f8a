//! The server's CREATE_CHILD_SA as the server would build it (sealed with
//! its keys), against an initiator connected to our responder: the answer
//! and the new child's keys must be what the server derives (§2.17, the
//! server's traffic first).

use std::net::SocketAddr;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::ike_crypto::ikev2_keys::child_sa_keymat;
use crate::ikev2::encrypted::{self, DirectionKeys};
use crate::ikev2::events::Ikev2Event;
use crate::ikev2::initiator::Ikev2ClientEvent;
use crate::ikev2::payloads::Notify;
use crate::ikev2::sa_payload::{self, protocol};
use crate::ikev2::traffic_selectors::{self, TrafficSelector};
use crate::ikev2::wire::{self, exchange, flags, payload, Header, PayloadChain};
use crate::ikev2::{
    notify, Authorization, ClientAuth, Ikev2Config, Ikev2Initiator, Ikev2InitiatorConfig,
    Ikev2PskTable, Ikev2Responder, LocalIdentity,
};

const PSK: &[u8] = b"server rekey test key";

/// An established initiator (PSK) and its events so far.
fn connected(now: Instant) -> (Ikev2Initiator, Vec<Ikev2ClientEvent>) {
    let server_addr: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let local: SocketAddr = "192.168.1.20:500".parse().unwrap();
    let mut client = Ikev2Initiator::new(
        Ikev2InitiatorConfig::new(
            ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
            "c.example",
        ),
        local,
        server_addr,
        now,
    );
    let mut server = Ikev2Responder::new(
        Ikev2Config {
            psks: Ikev2PskTable::new().with_wildcard(PSK),
            local_identity: LocalIdentity::Fqdn("vpn.example".into()),
            ..Ikev2Config::default()
        },
        now,
    );
    let mut events = Vec::new();
    for _ in 0..20 {
        while let Some(t) = client.poll_transmit() {
            let to = SocketAddr::new(server_addr.ip(), t.remote.port());
            server.handle_datagram(now, to, local, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = server.poll_transmit() {
            client.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
        while let Some(e) = server.poll_event() {
            if let Ikev2Event::AuthorizationNeeded(req) = e {
                server.authorize(
                    now,
                    req.ike_sa,
                    Ok(Authorization {
                        ipv4: Some("10.0.10.21".parse().unwrap()),
                        ..Authorization::default()
                    }),
                );
            }
        }
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
    }
    assert!(client.is_established());
    (client, events)
}

/// A request from the server, sealed with the server's keys.
fn server_request(client: &Ikev2Initiator, chain: &PayloadChain, message_id: u32) -> Vec<u8> {
    let keys = client.keys.as_ref().unwrap();
    let header = Header::new(
        client.spi_i,
        client.spi_r,
        exchange::CREATE_CHILD_SA,
        0,
        message_id,
    );
    encrypted::seal(
        client.protection.as_ref().unwrap(),
        DirectionKeys {
            encr: &keys.sk_er,
            integ: &keys.sk_ar,
        },
        &header,
        chain.first(),
        chain.bytes(),
    )
    .unwrap()
}

/// Our answer, opened with our keys: its payload chain's bytes.
fn open_answer(client: &mut Ikev2Initiator) -> (u8, Zeroizing<Vec<u8>>) {
    let t = client.poll_transmit().expect("an answer");
    let header = Header::parse(&t.bytes).unwrap();
    assert!(header.is_response());
    assert_eq!(header.flags & flags::INITIATOR, flags::INITIATOR);
    let keys = client.keys.as_ref().unwrap();
    let located = encrypted::locate(&t.bytes).unwrap();
    let inner = encrypted::open(
        client.protection.as_ref().unwrap(),
        DirectionKeys {
            encr: &keys.sk_ei,
            integ: &keys.sk_ai,
        },
        &t.bytes,
        &located,
    )
    .unwrap();
    (located.next, inner)
}

#[test]
fn a_server_rekey_gets_keys_in_the_servers_order() {
    let now = Instant::now();
    let (mut client, events) = connected(now);
    let first = events
        .iter()
        .find_map(|e| match e {
            Ikev2ClientEvent::ChildSaUp(c) => Some(&**c),
            _ => None,
        })
        .expect("first child");
    let server_spi: u32 = 0x5e5e_0001;
    let proposals = client.esp_proposals(server_spi);
    let ni = vec![0x11u8; 32];
    let ts = traffic_selectors::encode(&[TrafficSelector::any_ipv4()]);
    let mut chain = PayloadChain::new();
    chain.push(
        payload::NOTIFY,
        &Notify::encode_for(
            protocol::ESP,
            &first.outbound.spi.to_be_bytes(),
            notify::REKEY_SA,
            &[],
        ),
    );
    chain.push(payload::SA, &sa_payload::encode(&proposals[..1]));
    chain.push(payload::NONCE, &ni);
    chain.push(payload::TSI, &ts);
    chain.push(payload::TSR, &ts);
    let request = server_request(&client, &chain, client.server_next_request);
    client.handle_datagram(now, false, &request);
    let (first_payload, inner) = open_answer(&mut client);
    let answer = wire::payloads(first_payload, &inner).unwrap();
    let sa = sa_payload::parse(wire::find(&answer, payload::SA).unwrap()).unwrap();
    let our_spi = u32::from_be_bytes(sa[0].spi.as_slice().try_into().unwrap());
    let nr = wire::find(&answer, payload::NONCE).unwrap().to_vec();
    let up = std::iter::from_fn(|| client.poll_event())
        .find_map(|e| match e {
            Ikev2ClientEvent::ChildSaUp(c) => Some(c),
            _ => None,
        })
        .expect("the new child");
    assert_eq!(up.inbound.spi, our_spi);
    assert_eq!(up.outbound.spi, server_spi);
    assert_eq!(up.replaces_inbound_spi, Some(first.inbound.spi));
    // What the server derives: its own (outbound) keys first.
    let suite = up.inbound.suite;
    let encr = suite.cipher_key_len() + suite.salt_len();
    let integ = suite.integrity_key_len();
    let keys = client.keys.as_ref().unwrap();
    let keymat =
        child_sa_keymat(client.prf, &keys.sk_d, None, &ni, &nr, 2 * (encr + integ)).unwrap();
    assert_eq!(&up.inbound.cipher_key[..], &keymat[..encr]);
    assert_eq!(
        &up.outbound.cipher_key[..],
        &keymat[encr + integ..2 * encr + integ]
    );
    assert!(up.inbound.replay_window > 0);
    // A retransmitted request gets the same answer, not a second child.
    client.handle_datagram(now, false, &request);
    assert!(client.poll_transmit().is_some());
    assert_eq!(client.child_count(), 2);
}

#[test]
fn additional_children_and_unknown_spis_are_refused() {
    let now = Instant::now();
    let (mut client, _) = connected(now);
    let proposals = client.esp_proposals(0x5e5e_0002);
    let ts = traffic_selectors::encode(&[TrafficSelector::any_ipv4()]);
    for (rekey_spi, expected) in [
        (None, notify::NO_ADDITIONAL_SAS),
        (Some(0x0bad_0bad_u32), notify::CHILD_SA_NOT_FOUND),
    ] {
        let mut chain = PayloadChain::new();
        if let Some(spi) = rekey_spi {
            chain.push(
                payload::NOTIFY,
                &Notify::encode_for(protocol::ESP, &spi.to_be_bytes(), notify::REKEY_SA, &[]),
            );
        }
        chain.push(payload::SA, &sa_payload::encode(&proposals[..1]));
        chain.push(payload::NONCE, &[0x22; 32]);
        chain.push(payload::TSI, &ts);
        chain.push(payload::TSR, &ts);
        let request = server_request(&client, &chain, client.server_next_request);
        client.handle_datagram(now, false, &request);
        let (first_payload, inner) = open_answer(&mut client);
        let answer = wire::payloads(first_payload, &inner).unwrap();
        let kinds: Vec<u16> = wire::notifies(&answer).map(|n| n.kind).collect();
        assert_eq!(kinds, vec![expected]);
        assert_eq!(client.child_count(), 1);
    }
}

/// §2.25: the server's own IKE SA rekey is refused with TEMPORARY_FAILURE
/// and the client's rekey (a CREATE_CHILD_SA request of ours) goes out at
/// once (initiator_ike_rekey.rs says why).
#[test]
fn a_server_ike_sa_rekey_is_answered_by_our_own() {
    let now = Instant::now();
    let (mut client, _) = connected(now);
    let mut proposal = client.ike_proposal.clone().expect("chosen proposal");
    proposal.spi = vec![0x5e; 8];
    let dh = crate::ike_crypto::DhPrivate::generate(client.ike_group).unwrap();
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &sa_payload::encode(&[proposal]));
    chain.push(payload::NONCE, &[0x33; 32]);
    chain.push(
        payload::KE,
        &crate::ikev2::payloads::KeyExchange::encode(client.ike_group.id(), dh.public_value()),
    );
    let request = server_request(&client, &chain, client.server_next_request);
    client.handle_datagram(now, false, &request);
    let (first_payload, inner) = open_answer(&mut client);
    let answer = wire::payloads(first_payload, &inner).unwrap();
    let kinds: Vec<u16> = wire::notifies(&answer).map(|n| n.kind).collect();
    assert_eq!(kinds, vec![notify::TEMPORARY_FAILURE]);
    let ours = client.poll_transmit().expect("our own IKE SA rekey");
    let header = Header::parse(&ours.bytes).unwrap();
    assert!(!header.is_response());
    assert_eq!(header.exchange, exchange::CREATE_CHILD_SA);
    assert!(client.ike_rekey_in_flight());
    assert_eq!(client.ike_rekeys(), 0);
    assert_eq!(client.child_count(), 1);
}
