//! The L2TP/IPsec client transport against a real server we did not write:
//! strongSwan 5.9 (connection `l2tp-psk`: IKEv1, PSK, transport mode) with
//! kernel ESP, and xl2tpd 1.3.18 behind it, in the interop VM. Without a
//! NAT, ESP travels as IP protocol 50 (raw socket); with UDP encapsulation
//! forced, strongSwan sees a NAT and both sides float to port 4500. Either
//! way an L2TP SCCRQ built by our LAC goes through ESP and xl2tpd's SCCRP
//! comes back, decoded by the l2tp crate: Main Mode, Quick Mode and ESP
//! interoperate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2tp::{Event, MessageType, Tunnel, TunnelConfig};
use tunnel::l2tp_ipsec_client::{IpsecClientOptions, IpsecL2tpClient};

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// Connects, sends SCCRQ through ESP, expects SCCRP; returns what was negotiated.
async fn sccrq_through_ipsec(server: SocketAddr, psk: &str, force_udp: bool) -> (bool, String) {
    let started = Instant::now();
    let options = IpsecClientOptions {
        force_udp_encapsulation: force_udp,
        ..Default::default()
    };
    let mut client = tokio::time::timeout(
        Duration::from_secs(40),
        IpsecL2tpClient::connect(server, psk.as_bytes(), options),
    )
    .await
    .expect("IKE finishes in time")
    .unwrap_or_else(|e| panic!("IPsec to strongSwan: {e}"));
    let ike_time = started.elapsed();
    let connected = client.connected().clone();
    eprintln!(
        "[l2tp/ipsec interop] IKE up in {ike_time:?}: {} / ESP {} / {} / {}",
        connected.ike_suite,
        connected.esp_suite,
        connected.nat,
        if connected.udp_encapsulated {
            "UDP-encapsulated"
        } else {
            "raw ESP"
        }
    );
    let now = Instant::now();
    // A fresh tunnel ID each run: xl2tpd ignores a repeated SCCRQ for a
    // tunnel ID it still holds.
    let tunnel_id = rand::random::<u16>().max(1);
    let mut lac = Tunnel::new_lac(TunnelConfig::default(), tunnel_id, rand::random(), now);
    lac.open_tunnel(now);
    let sccrq = lac.poll_transmit(now).expect("SCCRQ");
    let sent_at = Instant::now();
    assert!(client.send(sccrq));
    // The first ESP packet may reach strongSwan before the kernel has the
    // inbound SA keyed (it is installed after Quick Mode message 3): the
    // LAC's own retransmission (RFC 2661 §5.8) covers that, as in real use.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut types = Vec::new();
    let (peer_host, round_trip) = 'answered: loop {
        tokio::select! {
            answer = client.recv() => {
                let answer = answer.unwrap_or_else(|| panic!("IPsec ended: {:?}", client.end_reason()));
                // Decoded by the l2tp crate: control messages (a ZLB
                // acknowledges a retransmitted SCCRQ).
                let l2tp::header::Packet::Control { body, .. } =
                    l2tp::header::decode(&answer).expect("an L2TP header")
                else {
                    panic!("a data message before the tunnel is up");
                };
                if !body.is_empty() {
                    let message = l2tp::ControlMessage::decode(body, None).expect("an L2TP control message");
                    types.push(message.message_type);
                }
                let now = Instant::now();
                lac.handle_input(now, &answer);
                while let Some(event) = lac.poll_event() {
                    if let Event::TunnelEstablished { peer_host_name, .. } = event {
                        break 'answered (peer_host_name, sent_at.elapsed());
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                let now = Instant::now();
                assert!(now < deadline, "no SCCRP from xl2tpd through ESP within 10 s");
                lac.handle_timeout(now);
                while let Some(d) = lac.poll_transmit(now) {
                    eprintln!("[l2tp/ipsec interop] SCCRQ retransmitted");
                    client.send(d);
                }
            }
        }
    };
    assert_eq!(types.first(), Some(&MessageType::Sccrp), "{types:?}");
    assert!(!peer_host.is_empty());
    eprintln!(
        "[l2tp/ipsec interop] xl2tpd ({}) answered SCCRP through ESP",
        String::from_utf8_lossy(&peer_host)
    );
    // SCCCN completes the tunnel on xl2tpd's side; StopCCN ends it, so
    // xl2tpd keeps nothing of ours.
    while let Some(d) = lac.poll_transmit(Instant::now()) {
        client.send(d);
    }
    lac.close(Instant::now());
    while let Some(d) = lac.poll_transmit(Instant::now()) {
        client.send(d);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    eprintln!(
        "[l2tp/ipsec interop] SCCRQ -> SCCRP through ESP in {round_trip:?}; total {:?}",
        started.elapsed()
    );
    let closing = Instant::now();
    client.close().await;
    eprintln!(
        "[l2tp/ipsec interop] closed (Deletes sent) in {:?}",
        closing.elapsed()
    );
    (connected.udp_encapsulated, connected.nat)
}

fn run(force_udp: bool) -> (bool, String) {
    let vm = interop::Vm::shared().expect("interop VM");
    assert!(vm.has_server("l2tp"), "the VM runs strongSwan + xl2tpd");
    let server = SocketAddr::new(vm.guest_ip.into(), vm.ike_port);
    let psk = vm.psk.clone();
    vm.in_ns(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sccrq_through_ipsec(server, &psk, force_udp))
    })
    .expect("the VM's namespace")
}

/// One test, two connections in turn: strongSwan replaces an IKE SA of
/// the same identity on INITIAL-CONTACT, so they must not overlap.
#[test]
fn l2tp_through_ipsec_to_strongswan() {
    if !interop::require_root_or_skip() {
        return;
    }
    logs();
    let (udp, nat) = run(false);
    assert!(!udp, "no NAT: raw ESP");
    assert!(nat.starts_with("no NAT"), "{nat}");
    let (udp, nat) = run(true);
    assert!(udp, "UDP-encapsulated ESP");
    assert!(nat.starts_with("UDP encapsulation forced"), "{nat}");
}
