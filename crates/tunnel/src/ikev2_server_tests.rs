//! The IKEv2 part of the front end, in memory: our sans-IO initiator talks
//! to it directly (no sockets), the server's hooks are a scripted owner,
//! and ESP is carried by hand, so every step of the bridge is checked:
//! the address from `network`, packets both ways, the anti-spoofing check,
//! the port limit, and a stop request from the owner.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use ipsec::esp::{EspSa, InboundSas};
use ipsec::ike_crypto::DhStock;
use ipsec::ikev2::{
    ClientAuth, Ikev2ClientEvent, Ikev2Config, Ikev2Initiator, Ikev2InitiatorConfig, Ikev2PskTable,
};
use ppp::auth::AuthRequest;
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkUp, NetworkSettings};
use session::EndReason;
use zeroize::Zeroizing;

use super::*;
use crate::hooks::BoxFuture;

const PSK: &[u8] = b"the key both sides know";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);

fn server_addr() -> SocketAddr {
    "198.51.100.1:500".parse().unwrap()
}

/// The server's owner: addresses .21, .22, … in order; remembers every
/// `down`; hands the test the sender of each session's packet queue.
#[derive(Default)]
struct Owner {
    next: Mutex<u8>,
    downs: Mutex<Vec<(Option<String>, EndReason)>>,
    queues: Mutex<Vec<crate::PacketSender>>,
    live: Mutex<Vec<Arc<LiveSession>>>,
    /// What `authenticated_by_tunnel` was told.
    tunnel_auth: Mutex<Vec<(Option<String>, TunnelAuthMethod)>>,
}

impl ServerHooks for Owner {
    fn authenticate(&self, _: &SessionInfo, _: AuthRequest) -> BoxFuture<AuthAnswer> {
        unreachable!("pre-shared key clients are not asked about")
    }

    fn authenticated_by_tunnel(&self, info: &SessionInfo, method: TunnelAuthMethod) {
        self.tunnel_auth
            .lock()
            .unwrap()
            .push((info.user.clone(), method));
    }

    fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let client = Ipv4Addr::new(10, 0, 10, 20 + *next);
        Box::pin(async move {
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    SERVER,
                    client,
                    [Some(Ipv4Addr::new(10, 0, 10, 1)), None],
                    [None, None],
                )),
                ipv6cp: None,
                ccp: None,
            })
        })
    }

    fn up(&self, _: &SessionInfo, up: &LinkUp) -> BoxFuture<Result<crate::PacketReceiver, String>> {
        assert!(up.ipv4.is_some(), "the address reaches `up`");
        let (tx, rx) = crate::packet_queue(16);
        self.queues.lock().unwrap().push(tx);
        Box::pin(async move { Ok(rx) })
    }

    fn down(&self, info: &SessionInfo, reason: &EndReason) {
        self.downs
            .lock()
            .unwrap()
            .push((info.user.clone(), reason.clone()));
    }

    fn live(&self, _: &SessionInfo) -> Option<Arc<LiveSession>> {
        let live = Arc::new(LiveSession::new());
        self.live.lock().unwrap().push(live.clone());
        Some(live)
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<Vec<u8>>>);

impl PacketSink for Sink {
    fn send(&self, packet: &[u8]) {
        self.0.lock().unwrap().push(packet.to_vec());
    }
}

struct Lab {
    part: Ikev2Part,
    inputs: Ikev2Inputs,
    inbound: InboundSas,
    refusals: RefusalLog,
    owner: Arc<Owner>,
    sink: Arc<Sink>,
}

/// One client: its initiator and what it heard.
struct Client {
    ike: Ikev2Initiator,
    addr: SocketAddr,
    events: Vec<Ikev2ClientEvent>,
}

impl Client {
    fn new(port: u16, id: &str) -> Client {
        let config =
            Ikev2InitiatorConfig::new(ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())), id);
        Client::with_config(port, config)
    }

    fn with_config(port: u16, config: Ikev2InitiatorConfig) -> Client {
        let addr: SocketAddr = format!("192.0.2.7:{port}").parse().unwrap();
        Client {
            ike: Ikev2Initiator::new(config, addr, server_addr(), Instant::now()),
            addr,
            events: Vec::new(),
        }
    }

    fn child(&self) -> Option<&ipsec::ikev2::ChildSa> {
        self.events.iter().rev().find_map(|e| match e {
            Ikev2ClientEvent::ChildSaUp(c) => Some(&**c),
            _ => None,
        })
    }

    fn down(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            Ikev2ClientEvent::Down { reason } => Some(reason.as_str()),
            _ => None,
        })
    }
}

impl Lab {
    fn new(ports: usize) -> Lab {
        Lab::with_config(
            ports,
            Ikev2Config {
                psks: Ikev2PskTable::new().with_wildcard(PSK),
                ..Ikev2Config::default()
            },
        )
    }

    fn with_config(ports: usize, config: Ikev2Config) -> Lab {
        Lab::build(ports, config, None)
    }

    fn build(ports: usize, config: Ikev2Config, stock: Option<Arc<DhStock>>) -> Lab {
        let owner = Arc::new(Owner::default());
        let sink = Arc::new(Sink::default());
        let service = Ikev2Service {
            config,
            hooks: owner.clone(),
            sink: sink.clone(),
            eap_name: "ras".into(),
            eap_pass_through: false,
            session_ids: Arc::new({
                let next = std::sync::atomic::AtomicU64::new(1);
                move || next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            }),
            routes: Vec::new(),
            ports,
        };
        let (part, inputs) = Ikev2Part::new(service, stock, Instant::now());
        Lab {
            part,
            inputs,
            inbound: InboundSas::new(),
            refusals: RefusalLog::new(),
            owner,
            sink,
        }
    }

    /// Carries messages both ways and lets the hook tasks answer, until
    /// everything is quiet.
    async fn run(&mut self, client: &mut Client) {
        for _ in 0..200 {
            let now = Instant::now();
            let mut moved = false;
            while let Some(t) = client.ike.poll_transmit() {
                moved = true;
                if t.is_nat_keepalive() {
                    continue;
                }
                let local = SocketAddr::new(server_addr().ip(), t.remote.port());
                let from = SocketAddr::new(
                    client.addr.ip(),
                    client.addr.port() + u16::from(t.from_nat_t_port),
                );
                self.part
                    .responder
                    .handle_datagram(now, local, from, t.from_nat_t_port, &t.bytes);
            }
            self.part
                .apply_events(now, &mut self.inbound, &mut self.refusals);
            while let Some(t) = self.part.responder.poll_transmit() {
                moved = true;
                client.ike.handle_datagram(now, t.from_nat_t_port, &t.bytes);
            }
            while let Some(e) = client.ike.poll_event() {
                moved = true;
                client.events.push(e);
            }
            tokio::task::yield_now().await;
            while let Ok(answer) = self.inputs.answers.try_recv() {
                moved = true;
                self.part.answer(Instant::now(), answer);
            }
            if !moved {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                if self.inputs.answers.is_empty() {
                    return;
                }
            }
        }
    }
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    let total = (20 + payload.len()) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A reload's settings replace the operator's, not what the driver set:
/// signatures stay on the signer pool, and the key stock stays.
#[tokio::test]
async fn a_reload_keeps_the_signer_offload_and_the_key_stock() {
    let mut lab = Lab::build(1, Ikev2Config::default(), Some(Arc::new(DhStock::new(4))));
    let reloaded = Ikev2Config {
        psks: Ikev2PskTable::new().with_wildcard(b"new secret"),
        ..Ikev2Config::default()
    };
    assert!(!reloaded.offload_signatures && reloaded.dh_stock.is_none());
    lab.part.set_config(reloaded);
    let config = lab.part.responder.config();
    assert!(config.offload_signatures);
    assert!(config.dh_stock.is_some());
}

#[tokio::test]
async fn a_client_gets_its_address_packets_flow_and_the_port_limit_holds() {
    let mut lab = Lab::new(1);
    let mut alice = Client::new(500, "alice@example");
    lab.run(&mut alice).await;
    let address = alice
        .events
        .iter()
        .find_map(|e| match e {
            Ikev2ClientEvent::Connected { virtual_ipv4, .. } => *virtual_ipv4,
            _ => None,
        })
        .expect("connected with an address");
    assert_eq!(address, Ipv4Addr::new(10, 0, 10, 21), "the owner's address");
    let child = alice.child().expect("a child SA");
    let now = Instant::now();
    let mut to_server = EspSa::new(&child.outbound, now).unwrap();
    let mut from_server = EspSa::new(&child.inbound, now).unwrap();

    // Client → server: a packet from its own address reaches the sink; one
    // from another address is dropped and counted.
    for (src, body) in [
        (address, &b"mine"[..]),
        (Ipv4Addr::new(10, 9, 9, 9), b"spoofed"),
    ] {
        let mut esp = Vec::new();
        to_server
            .encapsulate(now, IPV4_IN_ESP, &ipv4_packet(src, SERVER, body), &mut esp)
            .unwrap();
        let d = lab.inbound.decapsulate(now, &mut esp).expect("our SA");
        let payload = esp[d.payload.clone()].to_vec();
        lab.part.deliver(now, d.spi, None, d.next_header, &payload);
    }
    let delivered = lab.sink.0.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].ends_with(b"mine"));
    assert_eq!(lab.part.dropped, 1, "the spoofed packet");
    let spoofed: Vec<u64> = lab.part.tunnels.values().map(|t| t.spoofed).collect();
    assert_eq!(spoofed, [1], "counted for the session, for its end line");
    let peer: SocketAddr = "192.0.2.7:4500".parse().unwrap();
    assert_eq!(
        super::ended_line(peer, &"the client deleted its SA", 1),
        "IKEv2: 192.0.2.7:4500: IKE SA ended: the client deleted its SA; 1 packet(s) dropped by the source check"
    );
    assert_eq!(
        super::ended_line(peer, &"the client deleted its SA", 0),
        "IKEv2: 192.0.2.7:4500: IKE SA ended: the client deleted its SA"
    );

    // Server → client: what the router queues for the session comes out
    // as ESP the client decrypts.
    let queue = lab.owner.queues.lock().unwrap()[0].clone();
    let packet = ipv4_packet(SERVER, address, b"reply");
    queue.try_send(Bytes::from(packet.clone())).unwrap();
    let (ike_sa, got) =
        tokio::time::timeout(std::time::Duration::from_secs(5), lab.inputs.packets.recv())
            .await
            .expect("forwarded")
            .expect("a packet");
    let out = lab
        .part
        .outbound(ike_sa, got.len())
        .expect("an outbound SA");
    let mut esp = Vec::new();
    out.sa
        .encapsulate(now, IPV4_IN_ESP, &got, &mut esp)
        .unwrap();
    let d = from_server
        .decapsulate(now, &mut esp)
        .expect("the client's SA");
    assert_eq!(&esp[d.payload.clone()], &packet[..]);

    // One port: a second client is refused, and nobody is asked about it.
    let mut bob = Client::new(501, "bob@example");
    lab.run(&mut bob).await;
    assert!(bob.child().is_none());
    assert!(bob.down().is_some(), "bob is told");
    assert_eq!(lab.owner.downs.lock().unwrap().len(), 0);

    // The owner stops alice's session (a Session-Timeout): her IKE SA is
    // deleted, she is told, and `down` is asked once with that reason.
    lab.owner.live.lock().unwrap()[0].request_stop(EndReason::SessionTimeout);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    lab.run(&mut alice).await;
    let downs = lab.owner.downs.lock().unwrap().clone();
    assert_eq!(
        downs,
        vec![(Some("alice@example".into()), EndReason::SessionTimeout)]
    );
    assert!(alice.down().is_some(), "alice heard the Delete");
    assert!(lab.inbound.is_empty(), "her ESP SAs are gone");
}

/// A certificate (from `issuer`, or self-signed) for `name` as a DNS or
/// e-mail subjectAltName, and its signing credential.
fn certificate(
    name: &str,
    issuer: Option<&rcgen::Issuer<'static, rcgen::KeyPair>>,
) -> (
    Vec<u8>,
    ipsec::ikev2::signature_auth::ServerCredential,
    rcgen::CertificateParams,
    rcgen::KeyPair,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.subject_alt_names = vec![if name.contains('@') {
        rcgen::SanType::Rfc822Name(name.try_into().unwrap())
    } else {
        rcgen::SanType::DnsName(name.try_into().unwrap())
    }];
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        None => {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.self_signed(&key).unwrap()
        }
    };
    let der = cert.der().to_vec();
    let credential = ipsec::ikev2::signature_auth::ServerCredential::from_pkcs8(
        vec![der.clone()],
        &key.serialize_der(),
    )
    .unwrap();
    (der, credential, params, key)
}

/// A certificate client: the responder checks it, the driver names the
/// session after its IDi and tells the owner how it authenticated before
/// `network`, then the tunnel comes up as for any client.
#[tokio::test]
async fn a_certificate_client_is_named_by_its_identity_and_its_method_told() {
    let (ca_der, server_credential, ca_params, ca_key) = certificate("vpn.example", None);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let (_, client_credential, _, _) = certificate("alice@example.com", Some(&issuer));
    let anchors = || ipsec::ikev1::certificates::TrustAnchors::new(vec![ca_der.clone()]).unwrap();
    let mut lab = Lab::with_config(
        4,
        Ikev2Config {
            local_identity: ipsec::ikev2::LocalIdentity::Fqdn("vpn.example".into()),
            certificate: Some(Arc::new(server_credential)),
            client_trust: Some(Arc::new(ipsec::ikev2::ClientTrust::new(anchors()))),
            ..Ikev2Config::default()
        },
    );
    let mut config = Ikev2InitiatorConfig::new(
        ClientAuth::Certificate(Arc::new(client_credential)),
        "alice@example.com",
    );
    config.identity_type = ipsec::ikev2::payloads::id_type::RFC822_ADDR;
    config.server_trust = Some(ipsec::ikev2::ServerTrust::new(
        anchors(),
        Some("vpn.example".into()),
    ));
    let mut alice = Client::with_config(500, config);
    lab.run(&mut alice).await;
    assert!(alice.child().is_some(), "{:?}", alice.down());
    assert_eq!(
        *lab.owner.tunnel_auth.lock().unwrap(),
        vec![(
            Some("alice@example.com".to_string()),
            TunnelAuthMethod::Certificate
        )]
    );
    assert_eq!(lab.owner.queues.lock().unwrap().len(), 1, "`up` was asked");
}
