//! LCP negotiation tests: two automatons in memory.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::fsm::{Fsm, FsmConfig};
use crate::packet::{options, ControlPacket};

fn lcp(config: LcpConfig, seed: u64) -> Fsm<Lcp> {
    let mut f = Fsm::new(
        Lcp::new(config, Box::new(StdRng::seed_from_u64(seed))),
        FsmConfig::default(),
    );
    let now = Instant::now();
    f.open(now);
    f.lower_up(now);
    f
}

/// Shuttle packets until quiet; returns every packet in order with its
/// direction (true: a → b).
fn pump(now: Instant, a: &mut Fsm<Lcp>, b: &mut Fsm<Lcp>) -> Vec<(bool, Vec<u8>)> {
    let mut log = Vec::new();
    for _ in 0..50 {
        let mut any = false;
        while let Some(p) = a.poll_transmit() {
            b.handle_packet(now, &p).unwrap();
            log.push((true, p));
            any = true;
        }
        while let Some(p) = b.poll_transmit() {
            a.handle_packet(now, &p).unwrap();
            log.push((false, p));
            any = true;
        }
        if !any {
            return log;
        }
    }
    panic!("LCP did not settle");
}

/// A client configured like a Windows VPN client: MRU 1400, magic, PFC,
/// ACFC and the Callback option asking for CBCP.
fn windows_client() -> LcpConfig {
    LcpConfig {
        mru: 1400,
        request_callback: true,
        accept_auth: vec![AuthProtocol::MsChapV2],
        ..LcpConfig::client()
    }
}

#[test]
fn windows_client_request_is_21_bytes() {
    let mut client = lcp(windows_client(), 1);
    let req = client.poll_transmit().unwrap();
    assert_eq!(req.len(), 21, "the length in the MS trace");
    let packet = ControlPacket::parse(&req).unwrap();
    let kinds: Vec<u8> = options(packet.data).map(|o| o.unwrap().kind).collect();
    assert_eq!(
        kinds,
        vec![
            option::MRU,
            option::MAGIC_NUMBER,
            option::PFC,
            option::ACFC,
            option::CALLBACK
        ]
    );
}

#[test]
fn server_and_windows_client_agree() {
    let now = Instant::now();
    let mut server = lcp(LcpConfig::server(), 2);
    let mut client = lcp(windows_client(), 3);
    let log = pump(now, &mut server, &mut client);
    assert!(server.is_opened() && client.is_opened());
    let s = server.negotiator().negotiated();
    let c = client.negotiator().negotiated();
    // The client Nak'd EAP with MS-CHAPv2 (a 9-byte Configure-Nak).
    assert!(log
        .iter()
        .any(|(dir, p)| !dir && p[0] == code::CONFIGURE_NAK && p.len() == 9));
    assert_eq!(s.auth_required, Some(AuthProtocol::MsChapV2));
    assert_eq!(c.auth_to_peer, Some(AuthProtocol::MsChapV2));
    assert_eq!(s.peer_mru, 1400);
    assert!(s.callback, "server accepted CBCP callback");
    assert!(c.callback_requested);
    assert!(s.tx_pfc && s.tx_acfc && c.tx_pfc && c.tx_acfc);
    assert_eq!(s.peer_magic, c.our_magic);
    assert_eq!(c.peer_magic, s.our_magic);
    assert_ne!(s.our_magic, c.our_magic);
}

#[test]
fn callback_rejected_when_policy_says_so() {
    let now = Instant::now();
    let server_cfg = LcpConfig {
        callback_policy: CallbackPolicy::Reject,
        ..LcpConfig::server()
    };
    let mut server = lcp(server_cfg, 2);
    let mut client = lcp(windows_client(), 3);
    let log = pump(now, &mut server, &mut client);
    assert!(server.is_opened() && client.is_opened());
    assert!(log
        .iter()
        .any(|(dir, p)| *dir && p[0] == code::CONFIGURE_REJECT));
    assert!(!server.negotiator().negotiated().callback);
    assert!(!client.negotiator().negotiated().callback_requested);
}

#[test]
fn client_refusing_all_auth_is_detected() {
    let now = Instant::now();
    let mut server = lcp(LcpConfig::server(), 2);
    let client_cfg = LcpConfig {
        accept_auth: vec![],
        ..LcpConfig::client()
    };
    let mut client = lcp(client_cfg, 3);
    pump(now, &mut server, &mut client);
    assert!(server.negotiator().auth_refused());
    assert_eq!(server.negotiator().negotiated().auth_required, None);
}

#[test]
fn no_common_auth_protocol_is_detected() {
    let now = Instant::now();
    let server_cfg = LcpConfig {
        require_auth: vec![AuthProtocol::MsChapV2],
        ..LcpConfig::server()
    };
    let mut server = lcp(server_cfg, 2);
    let client_cfg = LcpConfig {
        accept_auth: vec![AuthProtocol::Pap],
        ..LcpConfig::client()
    };
    let mut client = lcp(client_cfg, 3);
    pump(now, &mut server, &mut client);
    assert!(server.negotiator().auth_refused());
}

#[test]
fn endpoint_discriminator_is_rejected_by_peers_without_multilink() {
    let now = Instant::now();
    let server_cfg = LcpConfig {
        endpoint_discriminator: Some((1, b"ras-server".to_vec())),
        ..LcpConfig::server()
    };
    let mut server = lcp(server_cfg, 2);
    let mut client = lcp(windows_client(), 3);
    let log = pump(now, &mut server, &mut client);
    assert!(server.is_opened() && client.is_opened());
    let rejects: Vec<_> = log
        .iter()
        .filter(|(dir, p)| !dir && p[0] == code::CONFIGURE_REJECT)
        .collect();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].1[4], option::ENDPOINT_DISCRIMINATOR);
}

#[test]
fn looped_back_link_is_detected() {
    let now = Instant::now();
    let mut a = lcp(LcpConfig::client(), 9);
    // Feed a's own requests back to it (a looped-back serial line).
    let mut looped = false;
    for _ in 0..40 {
        let Some(p) = a.poll_transmit() else { break };
        a.handle_packet(now, &p).unwrap();
        while let Some(ev) = a.negotiator_mut().poll_event() {
            looped |= ev == LcpEvent::LoopedBack;
        }
    }
    assert!(looped);
}

#[test]
fn echo_request_is_answered_with_our_magic() {
    let now = Instant::now();
    let mut a = lcp(LcpConfig::client(), 4);
    let mut b = lcp(LcpConfig::client(), 5);
    pump(now, &mut a, &mut b);
    let data = b.negotiator().echo_data();
    let id = b.send_extra(code::ECHO_REQUEST, &data);
    let req = b.poll_transmit().unwrap();
    a.handle_packet(now, &req).unwrap();
    let reply = a.poll_transmit().unwrap();
    assert_eq!(reply[0], code::ECHO_REPLY);
    assert_eq!(reply[1], id);
    assert_eq!(
        &reply[4..8],
        &a.negotiator().negotiated().our_magic.to_be_bytes()
    );
    b.handle_packet(now, &reply).unwrap();
    assert_eq!(b.negotiator_mut().poll_event(), Some(LcpEvent::EchoReply));
}

#[test]
fn identification_and_protocol_reject_reach_the_link() {
    let now = Instant::now();
    let mut a = lcp(LcpConfig::client(), 4);
    let mut b = lcp(LcpConfig::client(), 5);
    pump(now, &mut a, &mut b);
    let ident = b.negotiator().identification_data("MSRASV5.20");
    b.send_extra(code::IDENTIFICATION, &ident);
    let p = b.poll_transmit().unwrap();
    assert_eq!(p.len(), 18, "the Identification length in the MS trace");
    a.handle_packet(now, &p).unwrap();
    assert_eq!(
        a.negotiator_mut().poll_event(),
        Some(LcpEvent::Identification("MSRASV5.20".into()))
    );
    b.send_extra(code::PROTOCOL_REJECT, &[0x80, 0x57, 1, 2, 3]);
    let p = b.poll_transmit().unwrap();
    a.handle_packet(now, &p).unwrap();
    assert_eq!(
        a.negotiator_mut().poll_event(),
        Some(LcpEvent::ProtocolRejected(0x8057))
    );
    assert!(
        a.poll_transmit().is_none(),
        "nothing is answered to a Protocol-Reject"
    );
}

#[test]
fn small_mru_is_naked_and_unknown_options_rejected() {
    let mut lcp = Lcp::new(LcpConfig::server(), Box::new(StdRng::seed_from_u64(1)));
    lcp.reset();
    let tiny = [ConfigOption {
        kind: option::MRU,
        data: &[0, 10],
    }];
    assert!(matches!(lcp.check_request(&tiny), Verdict::Nak(_)));
    let quality = [ConfigOption {
        kind: option::QUALITY_PROTOCOL,
        data: &[0xc0, 0x25, 0, 0, 0, 10],
    }];
    assert_eq!(
        lcp.check_request(&quality),
        Verdict::Reject(vec![4, 8, 0xc0, 0x25, 0, 0, 0, 10])
    );
    let short_magic = [ConfigOption {
        kind: option::MAGIC_NUMBER,
        data: &[1, 2],
    }];
    assert!(matches!(
        lcp.check_request(&short_magic),
        Verdict::Reject(_)
    ));
}

proptest::proptest! {
    #[test]
    fn random_requests_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
        let mut lcp = Lcp::new(LcpConfig::server(), Box::new(StdRng::seed_from_u64(1)));
        lcp.reset();
        if let Ok(opts) = crate::packet::parse_options(&bytes) {
            let verdict = lcp.check_request(&opts);
            if let Verdict::Reject(r) | Verdict::Nak(r) = verdict {
                proptest::prop_assert!(crate::packet::parse_options(&r).is_ok());
            }
        }
    }
}
