//! The IKEv2 initiator against the IKEv2 responder, in memory: datagrams
//! are carried between the two sans-IO endpoints, through a simulated NAT
//! where asked. Each side derives its keys on its own, so matching child
//! SA keys (inbound of one = outbound of the other) prove both agree.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ike_crypto::DhGroup;
use ipsec::ikev2::{
    Authorization, ClientAuth, EapReply, Ikev2ClientEvent, Ikev2Config, Ikev2Event, Ikev2Initiator,
    Ikev2InitiatorConfig, Ikev2PskTable, Ikev2Responder, LocalIdentity,
};
use zeroize::Zeroizing;

const PSK: &[u8] = b"shared between client and server";

fn server_addr() -> SocketAddr {
    "198.51.100.1:500".parse().expect("addr")
}

struct Link {
    client: Ikev2Initiator,
    server: Ikev2Responder,
    client_events: Vec<Ikev2ClientEvent>,
    server_events: Vec<Ikev2Event>,
    /// The client's address as the server sees it (a NAT rewrites it).
    client_seen_as: SocketAddr,
    /// The user the scripted EAP peer names; the scripted EAP server
    /// knows only "alice".
    eap_user: &'static str,
    /// EAP Requests handed to the client's EAP method.
    eap_requests: usize,
    /// The server's signatures asked of the driver (`offload_signatures`),
    /// made only once nothing else moves, as a slow signer would.
    signatures: Vec<ipsec::ikev2::SignatureJob>,
    signatures_made: usize,
    /// Datagrams the server sent while a signature was outstanding: the
    /// answer carrying our AUTH must wait for it.
    sent_while_signing: usize,
}

impl Link {
    fn new(
        now: Instant,
        config: Ikev2InitiatorConfig,
        server: Ikev2Config,
        behind_nat: bool,
    ) -> Link {
        let local: SocketAddr = "192.168.1.20:500".parse().expect("addr");
        let client_seen_as = if behind_nat {
            "203.0.113.9:61000".parse().expect("addr")
        } else {
            local
        };
        Link {
            client: Ikev2Initiator::new(config, local, server_addr(), now),
            server: Ikev2Responder::new(server, now),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_seen_as,
            eap_user: "alice",
            eap_requests: 0,
            signatures: Vec::new(),
            signatures_made: 0,
            sent_while_signing: 0,
        }
    }

    /// Carries datagrams both ways until both sides are quiet.
    fn run(&mut self, now: Instant) {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                if t.is_nat_keepalive() {
                    continue;
                }
                let local = std::net::SocketAddr::new(server_addr().ip(), t.remote.port());
                let from = if t.from_nat_t_port {
                    SocketAddr::new(self.client_seen_as.ip(), self.client_seen_as.port() + 1)
                } else {
                    self.client_seen_as
                };
                self.server
                    .handle_datagram(now, local, from, t.from_nat_t_port, &t.bytes);
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                if !self.signatures.is_empty() {
                    self.sent_while_signing += 1;
                }
                self.client
                    .handle_datagram(now, t.from_nat_t_port, &t.bytes);
            }
            while let Some(e) = self.server.poll_event() {
                moved = true;
                match e {
                    Ikev2Event::AuthorizationNeeded(req) => self.server.authorize(
                        now,
                        req.ike_sa,
                        Ok(Authorization {
                            ipv4: Some("10.0.10.21".parse().expect("ip")),
                            dns: vec!["10.0.10.1".parse().expect("ip")],
                            ..Authorization::default()
                        }),
                    ),
                    Ikev2Event::EapStart { ike_sa, .. } => {
                        self.server
                            .eap_reply(now, ike_sa, EapReply::Continue(vec![1, 1, 0, 5, 1]))
                    }
                    Ikev2Event::SignatureNeeded(job) => self.signatures.push(*job),
                    Ikev2Event::EapResponse { ike_sa, packet } => {
                        let reply = if packet.ends_with(b"alice") {
                            EapReply::Success {
                                packet: vec![3, 1, 0, 4],
                                msk: Zeroizing::new(vec![0x42; 64]),
                                identity: "alice".into(),
                            }
                        } else {
                            EapReply::Failure {
                                packet: vec![4, 1, 0, 4],
                                reason: "unknown user".into(),
                            }
                        };
                        self.server.eap_reply(now, ike_sa, reply);
                    }
                    other => self.server_events.push(other),
                }
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                match e {
                    Ikev2ClientEvent::EapRequest { packet } if packet[0] == 1 => {
                        self.eap_requests += 1;
                        let user = self.eap_user;
                        let mut response = vec![2, packet[1], 0, 0, 1];
                        response.extend_from_slice(user.as_bytes());
                        let len = response.len() as u16;
                        response[2..4].copy_from_slice(&len.to_be_bytes());
                        self.client.eap_response(now, &response);
                    }
                    Ikev2ClientEvent::EapRequest { packet } if packet[0] == 3 => {
                        self.client
                            .eap_finished(now, Zeroizing::new(vec![0x42; 64]));
                    }
                    other => self.client_events.push(other),
                }
            }
            if !moved {
                let Some(job) = self.signatures.pop() else {
                    return;
                };
                self.signatures_made += 1;
                self.server.signature_ready(now, job.run());
            }
        }
        panic!("the exchange did not settle");
    }

    /// At `t`, with traffic just seen (so no liveness check is due): the
    /// client's timers run and the exchanges they start complete.
    fn tick(&mut self, t: Instant) {
        self.client.note_traffic(t);
        self.client.handle_timeout(t);
        self.run(t);
    }

    fn client_children(&self) -> Vec<&ipsec::ikev2::ChildSa> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                Ikev2ClientEvent::ChildSaUp(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }

    fn server_children(&self) -> Vec<&ipsec::ikev2::ChildSa> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                Ikev2Event::ChildSaUp(c) => Some(&**c),
                _ => None,
            })
            .collect()
    }
}

fn server_config() -> Ikev2Config {
    Ikev2Config {
        psks: Ikev2PskTable::new().with_wildcard(PSK),
        local_identity: LocalIdentity::Fqdn("vpn.example".into()),
        ..Ikev2Config::default()
    }
}

fn assert_keys_pair(client: &ipsec::ikev2::ChildSa, server: &ipsec::ikev2::ChildSa) {
    assert_eq!(client.outbound.spi, server.inbound.spi);
    assert_eq!(client.inbound.spi, server.outbound.spi);
    assert_eq!(
        &client.outbound.cipher_key[..],
        &server.inbound.cipher_key[..]
    );
    assert_eq!(
        &client.inbound.cipher_key[..],
        &server.outbound.cipher_key[..]
    );
    assert_eq!(
        &client.outbound.integrity_key[..],
        &server.inbound.integrity_key[..]
    );
}

#[test]
fn psk_connect_gets_the_address_and_matching_keys() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    let mut link = Link::new(now, config, server_config(), false);
    link.run(now);
    assert!(link.client.is_established());
    let connected = link.client_events.iter().find_map(|e| match e {
        Ikev2ClientEvent::Connected {
            virtual_ipv4, dns, ..
        } => Some((*virtual_ipv4, dns.clone())),
        _ => None,
    });
    assert_eq!(
        connected,
        Some((
            Some("10.0.10.21".parse().expect("ip")),
            vec!["10.0.10.1".parse().expect("ip")]
        ))
    );
    assert_keys_pair(link.client_children()[0], link.server_children()[0]);
    assert!(!link.client_children()[0].udp_encapsulated);
}

#[test]
fn a_wrong_key_fails_on_both_sides() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(b"not it".to_vec())),
        "client.example",
    );
    let mut link = Link::new(now, config, server_config(), false);
    link.run(now);
    assert!(link.client.is_closed());
    let reason = link.client_events.iter().find_map(|e| match e {
        Ikev2ClientEvent::Down { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("the server refused IKE_AUTH: AUTHENTICATION_FAILED")
    );
    assert_eq!(link.server.ike_sa_count(), 0);
}

#[test]
fn eap_connect_behind_a_nat_floats_to_4500() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::Eap {
            server_key: Zeroizing::new(PSK.to_vec()),
        },
        "192.168.1.20",
    );
    let mut link = Link::new(now, config, server_config(), true);
    link.run(now);
    assert!(
        link.client.is_established(),
        "{:?}",
        link.client_events.iter().find_map(|e| match e {
            Ikev2ClientEvent::Down { reason } => Some(reason.clone()),
            _ => None,
        })
    );
    assert_eq!(
        link.client.remote().port(),
        4500,
        "IKE moved to the NAT-T port"
    );
    let child = link.client_children()[0];
    assert!(child.udp_encapsulated);
    assert_keys_pair(child, link.server_children()[0]);
    assert!(link.server_children()[0].udp_encapsulated);
}

/// Each end words the same NAT from where it stands (RFC 7296 §2.23):
/// with the client behind a NAT, the client's connect line says it is
/// behind one, and the server's says the client is; without one, both
/// say so.
#[test]
fn each_side_says_who_is_behind_the_nat() {
    for (behind_nat, client_says, server_says) in [
        (true, "we are behind NAT", "client behind NAT"),
        (false, "no NAT", "no NAT"),
    ] {
        let now = Instant::now();
        let config = Ikev2InitiatorConfig::new(
            ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
            "client.example",
        );
        let mut link = Link::new(now, config, server_config(), behind_nat);
        link.run(now);
        assert!(link.client.is_established());
        let client_nat = link.client_events.iter().find_map(|e| match e {
            Ikev2ClientEvent::Connected { nat, .. } => Some(nat.as_str()),
            _ => None,
        });
        assert_eq!(client_nat, Some(client_says), "behind a NAT: {behind_nat}");
        let server_nat = link.server_events.iter().find_map(|e| match e {
            Ikev2Event::IkeSaUp { nat, .. } => Some(nat.as_str()),
            _ => None,
        });
        assert_eq!(server_nat, Some(server_says), "behind a NAT: {behind_nat}");
    }
}

#[test]
fn an_eap_failure_ends_the_connection() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::Eap {
            server_key: Zeroizing::new(PSK.to_vec()),
        },
        "192.168.1.20",
    );
    let mut link = Link::new(now, config, server_config(), true);
    link.eap_user = "mallory";
    link.run(now);
    assert!(link.client.is_closed());
    assert!(link.client_events.iter().any(
        |e| matches!(e, Ikev2ClientEvent::Down { reason } if reason == "EAP authentication failed")
    ));
}

#[test]
fn the_server_asks_for_another_group_and_then_a_cookie() {
    let now = Instant::now();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    // first offer Curve25519 (guessed in KE), the server only takes ECP-256
    config.ike_offers[1].group = DhGroup::Ecp256;
    let mut server = server_config();
    server.policy.groups = vec![DhGroup::Ecp256];
    server.cookie_threshold = 0;
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    let down = link.client_events.iter().find_map(|e| match e {
        Ikev2ClientEvent::Down { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(link.client.is_established(), "{down:?}");
    assert!(link.server.stats().cookies_sent >= 1);
}

#[test]
fn the_client_rekeys_its_child_and_deletes_the_old_one() {
    let start = Instant::now();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    config.child_lifetime = Duration::from_secs(100);
    let mut link = Link::new(start, config, server_config(), false);
    link.run(start);
    let first = link.client_children()[0].inbound.spi;
    // keep the liveness check quiet, and reach 85% of the lifetime
    let t = start + Duration::from_secs(86);
    link.tick(t);
    let clients = link.client_children();
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[1].replaces_inbound_spi, Some(first));
    assert_keys_pair(clients[1], link.server_children()[1]);
    assert!(link.client_events.iter().any(
        |e| matches!(e, Ikev2ClientEvent::ChildSaDown { inbound_spi, .. } if *inbound_spi == first)
    ));
    assert!(link.server_events.iter().any(
        |e| matches!(e, Ikev2Event::ChildSaDown { outbound_spi, .. } if *outbound_spi == first)
    ));
    assert_eq!(link.client.child_count(), 1);
    assert_eq!(link.server.child_sa_count(), 1);
}

/// RFC 7296 §2.18: the client replaces its IKE SA before the lifetime
/// ends; the child SA stays, the server holds one IKE SA (the old one is
/// deleted), and the new SA's keys work on both sides: a child rekey under
/// it (KEYMAT from the new SK_d) pairs, and a Delete under it is heard.
#[test]
fn the_client_rekeys_its_ike_sa_and_the_tunnel_carries_on() {
    let start = Instant::now();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    config.ike_lifetime = Duration::from_secs(100);
    config.child_lifetime = Duration::from_secs(150);
    let mut link = Link::new(start, config, server_config(), false);
    link.run(start);
    let first = link.client_children()[0].inbound.spi;
    assert_eq!(
        link.client.poll_timeout(),
        Some(start + Duration::from_secs(30))
    );

    // 85 % of the IKE lifetime: the IKE SA is rekeyed, nothing else.
    let t = start + Duration::from_secs(86);
    link.tick(t);
    assert_eq!(link.client.ike_rekeys(), 1);
    assert!(link
        .client_events
        .iter()
        .any(|e| matches!(e, Ikev2ClientEvent::IkeSaRekeyed)));
    assert_eq!(link.server.ike_sa_count(), 1, "the old IKE SA is deleted");
    assert_eq!(link.client.child_count(), 1);
    assert_eq!(link.server.child_sa_count(), 1);
    assert!(link.client.is_established());
    assert!(!link.server_events.iter().any(|e| matches!(
        e,
        Ikev2Event::ChildSaDown { .. } | Ikev2Event::IkeSaDown { .. }
    )));

    // The child's rekey under the new IKE SA: both derive the same KEYMAT.
    let t = start + Duration::from_secs(128);
    link.tick(t);
    let clients = link.client_children();
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[1].replaces_inbound_spi, Some(first));
    assert_keys_pair(clients[1], link.server_children()[1]);

    // The next IKE rekey is due one rekey time after the first.
    let t2 = start + Duration::from_secs(86 + 85);
    link.tick(t2);
    assert_eq!(link.client.ike_rekeys(), 2);
    assert_eq!(link.server.ike_sa_count(), 1);

    // A Delete on the newest IKE SA reaches the server.
    link.client.close(t2);
    link.run(t2);
    assert_eq!(link.server.ike_sa_count(), 0);
}

/// A server that refuses the IKE SA rekey: the client says so, keeps the
/// old SA and tries again 30 s later.
#[test]
fn a_refused_ike_rekey_keeps_the_tunnel_and_is_retried() {
    let start = Instant::now();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    config.ike_lifetime = Duration::from_secs(100);
    let mut link = Link::new(start, config, server_config(), false);
    link.run(start);
    // The server takes only ChaCha20 from now on: the rekey's single
    // proposal (the suite chosen at the start) is refused.
    let mut strict = server_config();
    strict.policy.ike_ciphers = vec![ipsec::ikev2::encrypted::SkCipher::ChaCha20Poly1305];
    link.server.set_config(strict);
    let t = start + Duration::from_secs(86);
    link.tick(t);
    assert_eq!(link.client.ike_rekeys(), 0);
    assert!(link.client.is_established());
    assert!(link.client_events.iter().any(|e| matches!(
        e,
        Ikev2ClientEvent::IkeSaRekeyFailed { reason } if reason.contains("NO_PROPOSAL_CHOSEN")
    )));
    assert_eq!(
        link.client.poll_timeout(),
        Some(t + Duration::from_secs(30))
    );
}

#[test]
fn closing_deletes_the_ike_sa_on_the_server() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    let mut link = Link::new(now, config, server_config(), false);
    link.run(now);
    link.client.close(now);
    link.run(now);
    assert!(link.client.is_closed());
    assert_eq!(link.server.ike_sa_count(), 0);
    assert!(link
        .server_events
        .iter()
        .any(|e| matches!(e, Ikev2Event::IkeSaDown { .. })));
}

#[test]
fn an_unanswered_client_gives_up_with_a_clear_reason() {
    let start = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    let mut client = Ikev2Initiator::new(
        config,
        "192.168.1.20:500".parse().expect("addr"),
        server_addr(),
        start,
    );
    let mut sent = 0;
    for s in [2u64, 4, 8, 16, 31] {
        client.handle_timeout(start + Duration::from_secs(s));
        while client.poll_transmit().is_some() {
            sent += 1;
        }
    }
    assert_eq!(sent, 5, "the first send plus four retransmissions");
    let mut reason = None;
    while let Some(e) = client.poll_event() {
        if let Ikev2ClientEvent::Down { reason: r } = e {
            reason = Some(r);
        }
    }
    assert_eq!(
        reason.as_deref(),
        Some("the server did not answer IKE_SA_INIT within 30 s")
    );
}

/// A self-signed server certificate for `vpn.example` (RSA or ECDSA P-256)
/// and the credential our responder signs with.
fn server_certificate(rsa: bool) -> (Vec<u8>, ipsec::ikev2::signature_auth::ServerCredential) {
    let (key, pkcs8) = if rsa {
        use aws_lc_rs::encoding::AsDer;
        let k = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        let pkcs8 = k.as_der().expect("der").as_ref().to_vec();
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.clone().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("rsa key");
        (key, pkcs8)
    } else {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let pkcs8 = key.serialize_der();
        (key, pkcs8)
    };
    let cert = rcgen::CertificateParams::new(vec!["vpn.example".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let der = cert.der().to_vec();
    let credential =
        ipsec::ikev2::signature_auth::ServerCredential::from_pkcs8(vec![der.clone()], &pkcs8)
            .expect("credential");
    (der, credential)
}

/// EAP against a server that signs with `credential`, trusting `ca` and
/// expecting the server to be `name`.
fn eap_with_certificate(
    credential: ipsec::ikev2::signature_auth::ServerCredential,
    ca: Vec<u8>,
    name: &str,
) -> Link {
    eap_with_certificate_signed_by_driver(credential, ca, name, false)
}

/// The same, the server's signature made by the driver when `offload`.
fn eap_with_certificate_signed_by_driver(
    credential: ipsec::ikev2::signature_auth::ServerCredential,
    ca: Vec<u8>,
    name: &str,
    offload: bool,
) -> Link {
    let now = Instant::now();
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::Eap {
            // Not the server's key: only the certificate can vouch for it.
            server_key: Zeroizing::new(b"unused".to_vec()),
        },
        "192.168.1.20",
    );
    config.server_trust = Some(ipsec::ikev2::ServerTrust::new(
        ipsec::ikev1::certificates::TrustAnchors::new(vec![ca]).expect("ca"),
        Some(name.to_string()),
    ));
    let mut server = server_config();
    server.local_identity = LocalIdentity::Fqdn("vpn.example".into());
    server.certificate = Some(std::sync::Arc::new(credential));
    server.offload_signatures = offload;
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    link
}

fn down_reason(link: &Link) -> Option<String> {
    link.client_events.iter().find_map(|e| match e {
        Ikev2ClientEvent::Down { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// Also with the server's signature made by the driver, after the rest of
/// the exchange has stalled on it (`offload_signatures`).
#[test]
fn eap_after_the_servers_certificate_signature_checks_out() {
    for (rsa, offload) in [(false, false), (true, false), (false, true), (true, true)] {
        let (der, credential) = server_certificate(rsa);
        let link = eap_with_certificate_signed_by_driver(credential, der, "vpn.example", offload);
        assert!(
            link.client.is_established(),
            "rsa {rsa}, offload {offload}: {:?}",
            down_reason(&link)
        );
        assert_eq!(link.signatures_made, usize::from(offload));
        assert_eq!(link.sent_while_signing, 0, "the first EAP answer waited");
        assert_eq!(link.eap_requests, 1);
        assert_eq!(link.client.server_subject(), "CN=rcgen self signed cert");
        assert_keys_pair(link.client_children()[0], link.server_children()[0]);
    }
}

#[test]
fn no_eap_for_a_server_whose_certificate_we_do_not_trust() {
    let (_, credential) = server_certificate(false);
    let (other_ca, _) = server_certificate(false);
    let link = eap_with_certificate(credential, other_ca, "vpn.example");
    assert!(link.client.is_closed());
    assert_eq!(link.eap_requests, 0, "no EAP message may reach the method");
    let reason = down_reason(&link).expect("a reason");
    assert!(reason.contains("no trusted CA issued"), "{reason}");
}

#[test]
fn no_eap_for_a_trusted_certificate_of_another_server() {
    let (der, credential) = server_certificate(false);
    let link = eap_with_certificate(credential, der, "other.example");
    assert!(link.client.is_closed());
    assert_eq!(link.eap_requests, 0);
    assert_eq!(
        down_reason(&link).as_deref(),
        Some("the server's certificate does not name other.example")
    );
}

#[test]
fn a_new_local_address_is_announced_with_mobike() {
    for behind_nat in [false, true] {
        let now = Instant::now();
        let config = Ikev2InitiatorConfig::new(
            ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
            "client.example",
        );
        let mut server = server_config();
        server.mobike = true;
        let mut link = Link::new(now, config, server, behind_nat);
        link.run(now);
        assert!(link.client.is_established(), "{:?}", down_reason(&link));
        assert!(link.client.server_supports_mobike());
        link.server_events.clear();
        // Another network: the client's own address, and what the server
        // sees, change.
        let new_local: SocketAddr = "192.168.2.30:500".parse().expect("addr");
        link.client_seen_as = if behind_nat {
            "203.0.113.77:62000".parse().expect("addr")
        } else {
            new_local
        };
        assert!(link.client.local_address_changed(now, new_local));
        link.run(now);
        let moved = link.server_events.iter().find_map(|e| match e {
            Ikev2Event::PeerMoved { peer, .. } => Some(*peer),
            _ => None,
        });
        assert_eq!(
            moved.map(|p| p.ip()),
            Some(link.client_seen_as.ip()),
            "behind a NAT: {behind_nat}"
        );
        assert!(link.client.is_established());
    }
}

#[test]
fn without_mobike_on_the_server_an_address_change_cannot_be_announced() {
    let now = Instant::now();
    let config = Ikev2InitiatorConfig::new(
        ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
        "client.example",
    );
    let mut server = server_config();
    server.mobike = false;
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    assert!(link.client.is_established());
    assert!(!link.client.server_supports_mobike());
    assert!(!link
        .client
        .local_address_changed(now, "192.168.2.30:500".parse().expect("addr")));
    assert!(link.client.poll_transmit().is_none(), "nothing is sent");
}

/// A CA of its own for client-certificate tests.
struct TestCa {
    der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The key algorithm of the CA and of the server certificate
    /// `certificate_link` issues from it.
    alg: &'static rcgen::SignatureAlgorithm,
}

fn test_ca(name: &str) -> TestCa {
    test_ca_with(name, &rcgen::PKCS_ECDSA_P256_SHA256)
}

fn test_ca_with(name: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let key = KeyPair::generate_for(alg).expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = params.self_signed(&key).expect("ca").der().to_vec();
    TestCa {
        der,
        issuer: Issuer::new(params, key),
        alg,
    }
}

/// A certificate from `ca` for common name `cn` with `sans` (DNS names,
/// or e-mail addresses when they hold an @) and `eku`, and its credential.
fn issue(
    ca: &TestCa,
    cn: &str,
    sans: &[&str],
    eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    rsa: bool,
) -> (Vec<u8>, ipsec::ikev2::signature_auth::ServerCredential) {
    let alg = if rsa {
        &rcgen::PKCS_RSA_SHA256
    } else {
        &rcgen::PKCS_ECDSA_P256_SHA256
    };
    issue_with(ca, cn, sans, eku, alg)
}

/// [`issue`] with a key of `alg`.
fn issue_with(
    ca: &TestCa,
    cn: &str,
    sans: &[&str],
    eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    alg: &'static rcgen::SignatureAlgorithm,
) -> (Vec<u8>, ipsec::ikev2::signature_auth::ServerCredential) {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    let key = if alg == &rcgen::PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).expect("rsa")
    } else {
        KeyPair::generate_for(alg).expect("key")
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans
        .iter()
        .map(|s| {
            if s.contains('@') {
                SanType::Rfc822Name((*s).try_into().expect("email"))
            } else {
                SanType::DnsName((*s).try_into().expect("dns"))
            }
        })
        .collect();
    params.extended_key_usages = eku;
    let der = params
        .signed_by(&key, &ca.issuer)
        .expect("cert")
        .der()
        .to_vec();
    let credential = ipsec::ikev2::signature_auth::ServerCredential::from_pkcs8(
        vec![der.clone()],
        &key.serialize_der(),
    )
    .expect("credential");
    (der, credential)
}

/// A client with `client` (IDi `identity` of `id_type`) against a server
/// with a certificate from `ca` that trusts `client_ca` for clients.
/// The server's signature is made by the driver when `offload`.
fn certificate_link(
    ca: &TestCa,
    client: ipsec::ikev2::signature_auth::ServerCredential,
    id_type: u8,
    identity: &[u8],
    client_ca: &TestCa,
    server_eap: bool,
    offload: bool,
) -> Link {
    use ipsec::ikev2::{ClientTrust, ServerTrust};
    let now = Instant::now();
    let (_, server_credential) = issue_with(ca, "vpn", &["vpn.example"], vec![], ca.alg);
    let mut config =
        Ikev2InitiatorConfig::new(ClientAuth::Certificate(std::sync::Arc::new(client)), "x");
    config.identity_type = id_type;
    config.identity = identity.to_vec();
    config.server_trust = Some(ServerTrust::new(
        ipsec::ikev1::certificates::TrustAnchors::new(vec![ca.der.clone()]).expect("ca"),
        Some("vpn.example".into()),
    ));
    let mut server = Ikev2Config {
        local_identity: LocalIdentity::Fqdn("vpn.example".into()),
        certificate: Some(std::sync::Arc::new(server_credential)),
        client_trust: Some(std::sync::Arc::new(ClientTrust::new(
            ipsec::ikev1::certificates::TrustAnchors::new(vec![client_ca.der.clone()])
                .expect("client ca"),
        ))),
        ..Ikev2Config::default()
    };
    server.eap = server_eap;
    server.offload_signatures = offload;
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    link
}

fn server_refusals(link: &Link) -> Vec<String> {
    link.server_events
        .iter()
        .filter_map(|e| match e {
            Ikev2Event::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// ECDSA on P-521 (RFC 4754, RFC 5480): a P-521 CA signs with
/// ecdsa-with-SHA512, and the server and the client sign their AUTH with
/// P-521 keys; both chains check out and both signatures verify.
#[test]
fn p521_certificates_authenticate_both_ways() {
    use ipsec::ikev2::payloads::id_type;
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    let ca = test_ca_with("P-521 CA", &rcgen::PKCS_ECDSA_P521_SHA512);
    let (_, client) = issue_with(
        &ca,
        "carol",
        &["carol@example.com"],
        vec![Eku::ClientAuth],
        &rcgen::PKCS_ECDSA_P521_SHA512,
    );
    let link = certificate_link(
        &ca,
        client,
        id_type::RFC822_ADDR,
        b"carol@example.com",
        &ca,
        false,
        false,
    );
    assert!(
        link.client.is_established(),
        "{:?} / {:?}",
        down_reason(&link),
        server_refusals(&link)
    );
    assert_eq!(link.client.server_subject(), "CN=vpn");
    assert_eq!(link.server_children()[0].identity, "carol@example.com");
    assert_keys_pair(link.client_children()[0], link.server_children()[0]);
}

/// Also with the server's signature made by the driver
/// (`offload_signatures`): the driver authorizes first and the IKE_AUTH
/// answer waits for the signature.
#[test]
fn client_certificates_authenticate_both_ways_with_rsa_and_ecdsa() {
    use ipsec::ikev2::payloads::id_type;
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    let ca = test_ca("test CA");
    for (rsa, offload) in [(false, false), (true, false), (false, true), (true, true)] {
        // An e-mail IDi named by the certificate's subjectAltName is the
        // user; a DN IDi (what Windows sends) is the certificate's CN.
        let (_, client) = issue(
            &ca,
            "alice",
            &["alice@example.com"],
            vec![Eku::ClientAuth],
            rsa,
        );
        let link = certificate_link(
            &ca,
            client,
            id_type::RFC822_ADDR,
            b"alice@example.com",
            &ca,
            true,
            offload,
        );
        assert!(
            link.client.is_established(),
            "rsa {rsa}, offload {offload}: {:?} / {:?}",
            down_reason(&link),
            server_refusals(&link)
        );
        assert_eq!(link.eap_requests, 0, "no EAP with a certificate");
        assert_eq!(link.signatures_made, usize::from(offload));
        assert_eq!(link.sent_while_signing, 0, "the IKE_AUTH answer waited");
        assert_eq!(link.client.server_subject(), "CN=vpn");
        assert_keys_pair(link.client_children()[0], link.server_children()[0]);
        assert_eq!(link.server_children()[0].identity, "alice@example.com");

        let (der, client) = issue(&ca, "bob", &["bob.example"], vec![], rsa);
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let dn = leaf.subject().as_raw().to_vec();
        let link = certificate_link(&ca, client, id_type::DER_ASN1_DN, &dn, &ca, false, false);
        assert!(
            link.client.is_established(),
            "rsa {rsa}: {:?} / {:?}",
            down_reason(&link),
            server_refusals(&link)
        );
        assert_eq!(link.server_children()[0].identity, "bob");

        // strongSwan's `id = "CN=bob"` encodes the CN as a PrintableString
        // where rcgen wrote a UTF8String: the same name (RFC 5280 §7.1).
        let printable_dn = [
            0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x03, b'b',
            b'o', b'b',
        ];
        assert_ne!(printable_dn.to_vec(), dn, "another encoding");
        let (_, client) = issue(&ca, "bob", &["bob.example"], vec![], rsa);
        let link = certificate_link(
            &ca,
            client,
            id_type::DER_ASN1_DN,
            &printable_dn,
            &ca,
            true,
            false,
        );
        assert!(link.client.is_established(), "{:?}", server_refusals(&link));
        // Another name is not.
        let mut other_dn = printable_dn;
        other_dn[15] = b'x';
        let (_, client) = issue(&ca, "bob", &["bob.example"], vec![], rsa);
        let link = certificate_link(
            &ca,
            client,
            id_type::DER_ASN1_DN,
            &other_dn,
            &ca,
            true,
            false,
        );
        assert!(link.client.is_closed());
        assert_eq!(
            server_refusals(&link),
            vec!["IKEv2 client CN=box refused: its certificate was refused: its identity DN \"CN=box\" is not named by its certificate \"CN=bob\"".to_string()]
        );
    }
}

/// With the server's signature made by the driver (`offload_signatures`)
/// too: a refused client costs no signature.
#[test]
fn client_certificates_the_server_must_refuse() {
    use ipsec::ikev2::payloads::id_type;
    use rcgen::ExtendedKeyUsagePurpose as Eku;
    let ca = test_ca("test CA");
    let other = test_ca("another CA");
    // (what, issuing CA, EKU, IDi, why in the server's log line)
    type Case<'a> = (&'a str, &'a TestCa, Vec<Eku>, &'a [u8], &'a str);
    let cases: [Case<'_>; 3] = [
        (
            "another CA",
            &other,
            vec![],
            b"alice@example.com",
            "no trusted CA issued \"CN=alice\"",
        ),
        (
            "server-only EKU",
            &ca,
            vec![Eku::ServerAuth],
            b"alice@example.com",
            "its certificate \"CN=alice\" is not for client authentication",
        ),
        (
            "an IDi the certificate does not name",
            &ca,
            vec![],
            b"mallory@example.com",
            "is not named by its certificate",
        ),
    ];
    for (what, issuer, eku, idi, why) in cases {
        let (_, client) = issue(issuer, "alice", &["alice@example.com"], eku, false);
        let offload = what == "another CA";
        let link = certificate_link(&ca, client, id_type::RFC822_ADDR, idi, &ca, true, offload);
        assert!(link.client.is_closed(), "{what}");
        assert_eq!(link.signatures_made, 0, "no signature for a refused client");
        assert_eq!(
            down_reason(&link).as_deref(),
            Some("the server refused IKE_AUTH: AUTHENTICATION_FAILED"),
            "{what}"
        );
        let refusals = server_refusals(&link);
        let who = String::from_utf8_lossy(idi);
        assert!(
            refusals
                .iter()
                .any(|r| r.starts_with(&format!("IKEv2 client {who} refused: ")) && r.contains(why)),
            "{what}: {refusals:?}"
        );
        assert_eq!(link.server.ike_sa_count(), 0, "{what}");
    }
}

#[test]
fn a_server_that_does_not_accept_certificates_says_so() {
    use ipsec::ikev2::payloads::id_type;
    let ca = test_ca("test CA");
    let (_, client) = issue(&ca, "alice", &["alice@example.com"], vec![], false);
    let (_, server_credential) = issue(&ca, "vpn", &["vpn.example"], vec![], false);
    let now = Instant::now();
    let mut config =
        Ikev2InitiatorConfig::new(ClientAuth::Certificate(std::sync::Arc::new(client)), "x");
    config.identity_type = id_type::RFC822_ADDR;
    config.identity = b"alice@example.com".to_vec();
    config.server_trust = Some(ipsec::ikev2::ServerTrust::new(
        ipsec::ikev1::certificates::TrustAnchors::new(vec![ca.der.clone()]).expect("ca"),
        None,
    ));
    let server = Ikev2Config {
        local_identity: LocalIdentity::Fqdn("vpn.example".into()),
        certificate: Some(std::sync::Arc::new(server_credential)),
        ..Ikev2Config::default()
    };
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    assert!(link.client.is_closed());
    assert_eq!(
        server_refusals(&link),
        vec!["IKEv2 client alice@example.com authenticates with a certificate (AUTH method 14), which this server does not accept ([ikev2] auth has no \"certificate\")".to_string()]
    );
}

#[test]
fn a_certificate_only_server_refuses_eap() {
    use ipsec::ikev2::payloads::id_type;
    let ca = test_ca("test CA");
    let (_, client) = issue(&ca, "alice", &["alice@example.com"], vec![], false);
    // A certificate client works with eap = false ...
    let link = certificate_link(
        &ca,
        client,
        id_type::RFC822_ADDR,
        b"alice@example.com",
        &ca,
        false,
        false,
    );
    assert!(link.client.is_established());
    // ... and an EAP client is refused before any EAP message.
    let (_, server_credential) = issue(&ca, "vpn", &["vpn.example"], vec![], false);
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::Eap {
            server_key: Zeroizing::new(b"unused".to_vec()),
        },
        "alice@example.com",
    );
    config.server_trust = Some(ipsec::ikev2::ServerTrust::new(
        ipsec::ikev1::certificates::TrustAnchors::new(vec![ca.der.clone()]).expect("ca"),
        None,
    ));
    let server = Ikev2Config {
        local_identity: LocalIdentity::Fqdn("vpn.example".into()),
        certificate: Some(std::sync::Arc::new(server_credential)),
        eap: false,
        ..Ikev2Config::default()
    };
    let now = Instant::now();
    let mut link = Link::new(now, config, server, false);
    link.run(now);
    assert!(link.client.is_closed());
    assert_eq!(link.eap_requests, 0);
    assert_eq!(
        server_refusals(&link),
        vec!["IKEv2 client alice@example.com wants EAP, which this server does not accept ([ikev2] auth)".to_string()]
    );
}

/// Revocation (issue 14): a client certificate its CA's CRL lists gets
/// AUTHENTICATION_FAILED like any refused certificate, and the server's
/// log line names the revoked serial; the same CA's other client passes.
#[test]
fn a_revoked_client_certificate_gets_authentication_failed() {
    use ipsec::ikev1::revocation::{CrlPolicy, CrlSet, Revocation};
    use ipsec::ikev2::payloads::id_type;
    use ipsec::ikev2::{ClientTrust, ServerTrust};
    let ca = test_ca("test CA");
    let (lost_der, lost) = issue(&ca, "lost", &["lost@example.com"], vec![], false);
    let (_, kept) = issue(&ca, "kept", &["kept@example.com"], vec![], false);
    let (_, leaf) = x509_parser::parse_x509_certificate(&lost_der).expect("x509");
    let serial = leaf.raw_serial_as_string();
    // rcgen adds the sign byte back.
    let raw: Vec<u8> = leaf
        .raw_serial()
        .iter()
        .copied()
        .skip_while(|&b| b == 0)
        .collect();
    let crl = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(raw),
            revocation_time: rcgen::date_time_ymd(2024, 3, 1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .expect("crl");
    let mut set = CrlSet::new(CrlPolicy::IfAvailable);
    set.add(crl.der()).expect("the CRL");
    let revocation = Revocation::new(set);

    let run = |client: ipsec::ikev2::signature_auth::ServerCredential, mail: &str| {
        let now = Instant::now();
        let (_, server_credential) = issue(&ca, "vpn", &["vpn.example"], vec![], false);
        let mut config =
            Ikev2InitiatorConfig::new(ClientAuth::Certificate(std::sync::Arc::new(client)), "x");
        config.identity_type = id_type::RFC822_ADDR;
        config.identity = mail.as_bytes().to_vec();
        config.server_trust = Some(ServerTrust::new(
            ipsec::ikev1::certificates::TrustAnchors::new(vec![ca.der.clone()]).expect("ca"),
            Some("vpn.example".into()),
        ));
        let server = Ikev2Config {
            local_identity: LocalIdentity::Fqdn("vpn.example".into()),
            certificate: Some(std::sync::Arc::new(server_credential)),
            client_trust: Some(std::sync::Arc::new(ClientTrust::new(
                ipsec::ikev1::certificates::TrustAnchors::new(vec![ca.der.clone()])
                    .expect("client ca")
                    .with_revocation(revocation.clone()),
            ))),
            ..Ikev2Config::default()
        };
        let mut link = Link::new(now, config, server, false);
        link.run(now);
        link
    };
    let link = run(lost, "lost@example.com");
    assert!(link.client.is_closed());
    assert_eq!(
        down_reason(&link).as_deref(),
        Some("the server refused IKE_AUTH: AUTHENTICATION_FAILED")
    );
    assert_eq!(
        server_refusals(&link),
        vec![format!(
            "IKEv2 client lost@example.com refused: its certificate was refused: its certificate \"CN=lost\" is revoked: serial {serial} revoked on Fri, 01 Mar 2024 00:00:00 +0000 (keyCompromise)"
        )]
    );
    assert_eq!(link.server.ike_sa_count(), 0);
    let link = run(kept, "kept@example.com");
    assert!(link.client.is_established(), "{:?}", server_refusals(&link));
}
