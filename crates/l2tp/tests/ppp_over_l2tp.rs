//! PPP over L2TP, core against core: a LAC and an LNS tunnel bring up a
//! tunnel (with tunnel authentication) and an incoming call; two PPP
//! `Link`s (client at the LAC, server at the LNS) exchange their frames
//! in L2TP data messages (RFC 2661 §3.1, addressed by the peer's tunnel
//! and session IDs) and negotiate LCP, MS-CHAPv2 and IPCP; then IPv4
//! packets flow both ways.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use l2tp::data::{decode_data, encode_data};
use l2tp::header::{decode, Packet};
use l2tp::{Event, Tunnel, TunnelConfig};
use ppp::auth::{AuthProtocol, Secret};
use ppp::ipcp::IpcpConfig;
use ppp::link::{Inbound, Link, LinkConfig, LinkEvent, LinkUp, NetworkSettings, Role};

const PASSWORD: &str = "secret";
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 20, 1);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 20, 2);

struct End {
    tunnel: Tunnel,
    link: Link,
    /// (local session ID, peer session ID) once the call is up.
    session: Option<(u16, u16)>,
    up: Option<LinkUp>,
    received_ip: Vec<Vec<u8>>,
}

impl End {
    /// Everything this end sends now: control messages and PPP frames in
    /// data messages.
    fn transmit(&mut self, now: Instant, wire: &mut Vec<Vec<u8>>) {
        while let Some(d) = self.tunnel.poll_transmit(now) {
            wire.push(d);
        }
        while let Some(frame) = self.link.poll_transmit() {
            let (_, peer) = self.session.expect("PPP speaks only once the call is up");
            let mut out = Vec::new();
            encode_data(self.tunnel.peer_tunnel_id(), peer, None, &frame, &mut out);
            wire.push(out);
        }
    }

    fn receive(&mut self, now: Instant, datagram: &[u8]) {
        match decode(datagram).expect("valid L2TP") {
            Packet::Control { .. } => {
                self.tunnel.handle_input(now, datagram);
                // A driver learns of the session before reading on: the
                // peer's PPP may follow its ICCN in the same burst.
                self.events(now);
            }
            Packet::Data(_) => {
                let m = decode_data(datagram).unwrap();
                assert_eq!(m.tunnel_id, self.tunnel.local_tunnel_id());
                assert_eq!(Some(m.session_id), self.session.map(|s| s.0));
                let mut frame = m.payload.to_vec();
                if let Inbound::Ipv4(p) = self.link.handle_frame(now, &mut frame) {
                    self.received_ip.push(p.to_vec());
                }
            }
        }
    }

    fn events(&mut self, now: Instant) {
        while let Some(e) = self.tunnel.poll_event() {
            match e {
                Event::SessionEstablished {
                    local_session_id,
                    peer_session_id,
                    ..
                } => {
                    self.session = Some((local_session_id, peer_session_id));
                    // RFC 2661 §5.2: the call is up, PPP starts over it.
                    self.link.lower_up(now);
                }
                Event::TunnelEstablished { .. } => {}
                other => panic!("unexpected L2TP event {other:?}"),
            }
        }
        while let Some(event) = self.link.poll_event() {
            let server = self.link.role() == Role::Server;
            match event {
                LinkEvent::AuthRequest(request) if server => {
                    assert_eq!(request.username, "alice");
                    self.link.provide_secret(
                        now,
                        Secret::Password(zeroize::Zeroizing::new(PASSWORD.into())),
                    );
                }
                LinkEvent::Authenticated { .. } if server => self.link.start_network(
                    now,
                    NetworkSettings {
                        ipcp: Some(IpcpConfig::server(
                            SERVER_ADDR,
                            CLIENT_ADDR,
                            [None, None],
                            [None, None],
                        )),
                        ipv6cp: None,
                        ccp: None,
                    },
                ),
                LinkEvent::Up(up) => self.up = Some(up),
                LinkEvent::Down(reason) => panic!("PPP link down: {reason}"),
                _ => {}
            }
        }
    }
}

fn ip_packet(from: u8, n: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&[10, 0, 20, from, 10, 0, 20, 99]);
    p.extend_from_slice(&[n; 8]);
    p
}

#[test]
fn ppp_negotiates_to_ipcp_over_l2tp_and_carries_ip() {
    let mut now = Instant::now();
    let tunnel_config = |host: &[u8]| TunnelConfig {
        host_name: host.to_vec(),
        secret: Some(b"tunnel".to_vec()),
        ..TunnelConfig::default()
    };
    let mut server_link = LinkConfig::server("ras-test");
    server_link.lcp.require_auth = vec![AuthProtocol::MsChapV2];
    server_link.ipv6cp = None;
    server_link.ccp = None;
    server_link.rng_seed = Some(1);
    let mut client_link = LinkConfig::client("alice", PASSWORD);
    client_link.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
    client_link.ipv6cp = None;
    client_link.ccp = None;
    client_link.rng_seed = Some(2);
    let mut lac = End {
        tunnel: Tunnel::new_lac(tunnel_config(b"lac"), 100, [1; 16], now),
        link: Link::new(client_link),
        session: None,
        up: None,
        received_ip: Vec::new(),
    };
    let mut lns = End {
        tunnel: Tunnel::new_lns(tunnel_config(b"lns"), 200, [2; 16], now),
        link: Link::new(server_link),
        session: None,
        up: None,
        received_ip: Vec::new(),
    };
    lac.tunnel.open_tunnel(now);
    let mut call_placed = false;
    for _ in 0..2000 {
        if lac.up.is_some() && lns.up.is_some() {
            break;
        }
        let mut to_lns = Vec::new();
        let mut to_lac = Vec::new();
        lac.transmit(now, &mut to_lns);
        lns.transmit(now, &mut to_lac);
        for d in to_lns {
            lns.receive(now, &d);
        }
        for d in to_lac {
            lac.receive(now, &d);
        }
        lac.events(now);
        lns.events(now);
        if !call_placed && lac.tunnel.state() == l2tp::tunnel::TunnelState::Established {
            lac.tunnel.place_call(now).unwrap();
            call_placed = true;
        }
        now += Duration::from_millis(50);
        for end in [&mut lac, &mut lns] {
            end.tunnel.handle_timeout(now);
            end.link.handle_timeout(now);
        }
    }
    let client_up = lac.up.as_ref().expect("the client link came up");
    assert!(lns.up.is_some(), "the server link came up");
    assert_eq!(client_up.ipv4.as_ref().map(|i| i.local), Some(CLIENT_ADDR));

    // IPv4 both ways in data messages.
    let mut to_lns = Vec::new();
    let mut to_lac = Vec::new();
    for n in 0..3u8 {
        for (end, wire, from) in [(&mut lac, &mut to_lns, 2u8), (&mut lns, &mut to_lac, 1u8)] {
            let mut frame = Vec::new();
            end.link.send_ip(&ip_packet(from, n), &mut frame).unwrap();
            let (_, peer) = end.session.unwrap();
            let mut out = Vec::new();
            encode_data(end.tunnel.peer_tunnel_id(), peer, None, &frame, &mut out);
            wire.push(out);
        }
    }
    for d in to_lns {
        lns.receive(now, &d);
    }
    for d in to_lac {
        lac.receive(now, &d);
    }
    assert_eq!(
        lns.received_ip,
        (0..3).map(|n| ip_packet(2, n)).collect::<Vec<_>>()
    );
    assert_eq!(
        lac.received_ip,
        (0..3).map(|n| ip_packet(1, n)).collect::<Vec<_>>()
    );
}
