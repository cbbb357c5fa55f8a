//! The L2TP/IPsec client transport over real UDP sockets on loopback,
//! against our own IKEv1 responder driven by a small server in this file
//! (no root needed): ESP is UDP-encapsulated (forced), the server echoes
//! the L2TP datagrams it decapsulates. Covers connect, the datagram pipe
//! both ways, close (Deletes reach the server), the server deleting the
//! SA (the client ends with a reason), a wrong PSK and a silent server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::esp::{EspSa, InboundSas};
use ipsec::ikev1::{DownReason, IkeEvent, InitiatorConfig, PskTable, Responder, ResponderConfig};
use ipsec::udp_encap::{classify, Port4500, NON_ESP_MARKER};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tunnel::l2tp_ipsec_client::{IpsecClientError, IpsecClientOptions, IpsecL2tpClient};

const PSK: &[u8] = b"loopback-psk";
/// An L2TP datagram ending with this makes the test server answer with
/// a burst of `BURST_LEN` ESP packets, the one at `BURST_FORGED` forged.
const BURST: &[u8] = b"burst!";
const BURST_LEN: u8 = 12;
const BURST_FORGED: u8 = 5;

/// The UDP datagram (1701 → 1701) of the burst's `i`th L2TP datagram.
fn burst_datagram(i: u8) -> Vec<u8> {
    let l2tp = [0xc8, 0x02, 0, 12, 0, i, 0, i, i, i, i, i];
    let mut udp = vec![0x06, 0xa5, 0x06, 0xa5, 0, 8 + l2tp.len() as u8, 0, 0];
    udp.extend_from_slice(&l2tp);
    udp
}

/// What the test server saw.
#[derive(Debug, PartialEq)]
enum Seen {
    ChildDown(DownReason),
    IkeDown(DownReason),
}

struct TestServer {
    ike: SocketAddr,
    nat_t: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    delete_all: mpsc::UnboundedSender<()>,
}

/// Our responder on two loopback UDP sockets; echoes L2TP through ESP.
async fn test_server() -> TestServer {
    let ike = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let nat_t = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (ike_addr, nat_t_addr) = (ike.local_addr().unwrap(), nat_t.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (delete_all, mut delete_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut r = Responder::new(ResponderConfig {
            psks: PskTable::new().with_wildcard(PSK),
            ..Default::default()
        });
        let mut inbound = InboundSas::new();
        let mut outbound: HashMap<u32, EspSa> = HashMap::new();
        let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
        loop {
            while let Some(t) = r.poll_transmit() {
                if t.from_nat_t_port {
                    let bytes = [&NON_ESP_MARKER[..], &t.bytes].concat();
                    nat_t.send_to(&bytes, t.remote).await.unwrap();
                } else {
                    ike.send_to(&t.bytes, t.remote).await.unwrap();
                }
            }
            while let Some(e) = r.poll_event() {
                match e {
                    IkeEvent::ChildSaUp(c) => {
                        inbound.insert(EspSa::new(&c.inbound, Instant::now()).unwrap());
                        outbound.insert(
                            c.inbound.spi,
                            EspSa::new(&c.outbound, Instant::now()).unwrap(),
                        );
                    }
                    IkeEvent::ChildSaDown { reason, .. } => {
                        let _ = seen_tx.send(Seen::ChildDown(reason));
                    }
                    IkeEvent::IkeSaDown { reason, .. } => {
                        let _ = seen_tx.send(Seen::IkeDown(reason));
                    }
                    _ => {}
                }
            }
            tokio::select! {
                Ok((n, from)) = ike.recv_from(&mut a) => {
                    r.handle_datagram(Instant::now(), ike_addr, from, false, &a[..n]);
                }
                Ok((n, from)) = nat_t.recv_from(&mut b) => {
                    let now = Instant::now();
                    match classify(&b[..n]) {
                        Port4500::Ike(m) => {
                            let m = m.to_vec();
                            r.handle_datagram(now, nat_t_addr, from, true, &m);
                        }
                        Port4500::Esp(_) => {
                            let mut packet = b[..n].to_vec();
                            let Ok(d) = inbound.decapsulate(now, &mut packet) else { continue };
                            let udp = &packet[d.payload];
                            assert_eq!(d.next_header, 17);
                            assert_eq!(&udp[..4], &[0x06, 0xa5, 0x06, 0xa5], "UDP 1701 -> 1701");
                            assert_eq!(&udp[6..8], &[0, 0], "RFC 3948 §3.1.1: zero checksum");
                            let echo = udp.to_vec();
                            let sa = outbound.get_mut(&d.spi).unwrap();
                            if echo[8..].ends_with(BURST) {
                                // Back to back, so that the client reads
                                // them in one batch: the forged one (a
                                // flipped ICV bit) must cost only itself.
                                for i in 0..BURST_LEN {
                                    let mut out = Vec::new();
                                    sa.encapsulate(now, 17, &burst_datagram(i), &mut out).unwrap();
                                    if i == BURST_FORGED {
                                        *out.last_mut().unwrap() ^= 1;
                                    }
                                    nat_t.send_to(&out, from).await.unwrap();
                                }
                                continue;
                            }
                            let mut out = Vec::new();
                            sa.encapsulate(now, 17, &echo, &mut out).unwrap();
                            nat_t.send_to(&out, from).await.unwrap();
                        }
                        _ => {}
                    }
                }
                Some(()) = delete_rx.recv() => r.close_all(Instant::now()),
            }
        }
    });
    TestServer {
        ike: ike_addr,
        nat_t: nat_t_addr,
        seen,
        delete_all,
    }
}

fn options(server: &TestServer) -> IpsecClientOptions {
    IpsecClientOptions {
        force_udp_encapsulation: true,
        nat_t_port: Some(server.nat_t.port()),
        ephemeral_ports: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn l2tp_datagrams_travel_through_esp_and_close_deletes() {
    let mut server = test_server().await;
    let mut client = IpsecL2tpClient::connect(server.ike, PSK, options(&server))
        .await
        .unwrap();
    let c = client.connected().clone();
    assert!(c.udp_encapsulated);
    assert_eq!(c.nat, "UDP encapsulation forced, NAT-T RFC 3947");
    assert_eq!(c.esp_suite, "aes128-cbc/hmac-sha1-96");
    for i in 0..5u8 {
        let datagram = vec![0xc8, 0x02, 0, 12, i, i, i, i];
        assert!(client.send(datagram.clone()));
        let back = tokio::time::timeout(Duration::from_secs(5), client.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, datagram);
    }
    client.close().await;
    let first = tokio::time::timeout(Duration::from_secs(5), server.seen.recv())
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), server.seen.recv())
        .await
        .unwrap();
    assert_eq!(first, Some(Seen::ChildDown(DownReason::DeletedByPeer)));
    assert_eq!(second, Some(Seen::IkeDown(DownReason::DeletedByPeer)));
}

#[tokio::test]
async fn bursts_pass_through_the_batched_path_and_a_forged_packet_costs_only_itself() {
    let server = test_server().await;
    let mut client = IpsecL2tpClient::connect(server.ike, PSK, options(&server))
        .await
        .unwrap();
    // Outbound: queued at once, so the task encrypts and writes them as
    // one batch; each comes back, in order.
    let sent: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![0xc8, 0x02, 0, 12, 0, 1, 0, 2, i, i, i, i])
        .collect();
    for d in &sent {
        assert!(client.send(d.clone()));
    }
    for d in &sent {
        let back = tokio::time::timeout(Duration::from_secs(5), client.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, d);
    }
    // Inbound: a burst read in batches, one forged packet in the middle.
    let mut trigger = vec![0xc8, 0x02, 0, 12];
    trigger.extend_from_slice(BURST);
    assert!(client.send(trigger));
    let mut got = Vec::new();
    for _ in 0..BURST_LEN - 1 {
        let d = tokio::time::timeout(Duration::from_secs(5), client.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(d);
    }
    let expected: Vec<Vec<u8>> = (0..BURST_LEN)
        .filter(|&i| i != BURST_FORGED)
        .map(|i| burst_datagram(i)[8..].to_vec())
        .collect();
    assert_eq!(got, expected);
    // Nothing else: the forged packet was dropped, not delivered late.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), client.recv())
            .await
            .is_err()
    );
    client.close().await;
}

#[tokio::test]
async fn a_server_delete_ends_the_transport_with_a_reason() {
    let server = test_server().await;
    let mut client = IpsecL2tpClient::connect(server.ike, PSK, options(&server))
        .await
        .unwrap();
    server.delete_all.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), client.recv())
        .await
        .unwrap();
    assert_eq!(end, None);
    assert_eq!(
        client.end_reason().as_deref(),
        Some("the server deleted the IPsec SA")
    );
}

fn quick_give_up(psk: &[u8], nat_t_port: u16) -> InitiatorConfig {
    let mut config = InitiatorConfig::new(psk);
    config.force_udp_encapsulation = true;
    config.nat_t_port = nat_t_port;
    config.retransmit_at = vec![Duration::from_millis(300)];
    config.give_up_after = Duration::from_secs(1);
    config
}

#[tokio::test]
async fn a_wrong_psk_is_refused_with_the_reason() {
    let server = test_server().await;
    let config = quick_give_up(b"not the key", server.nat_t.port());
    let err = IpsecL2tpClient::connect_with(server.ike, config, true)
        .await
        .err()
        .expect("refused");
    let IpsecClientError::Refused(reason) = err else {
        panic!("not a refusal: {err}");
    };
    assert!(
        reason.contains("pre-shared key is probably wrong"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_silent_server_names_udp_500() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = quick_give_up(PSK, 4500);
    let err = IpsecL2tpClient::connect_with(silent.local_addr().unwrap(), config, true)
        .await
        .err()
        .expect("no answer");
    assert_eq!(
        err.to_string(),
        "no answer from 127.0.0.1: UDP 500 blocked?"
    );
}
