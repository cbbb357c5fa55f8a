use std::time::{Duration, Instant};

use sstp::attributes::{Attribute, StatusCode, StatusInfo};
use sstp::client::ClientState;
use sstp::codec::{decode_packet, encode_data, ControlMessage, MessageType, Packet};
use sstp::server::ServerState;
use sstp::*;

const CERT: &[u8] = b"server certificate DER";
const LCP: &[u8] = &[0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4];
const IP: &[u8] = &[0x00, 0x21, 0x45, 0, 0, 20];

fn keys(c2s: u8, s2c: u8) -> (HigherLayerKeys, HigherLayerKeys) {
    (
        HigherLayerKeys::MsChapV2 {
            master_send: [c2s; 16],
            master_recv: [s2c; 16],
        },
        HigherLayerKeys::MsChapV2 {
            master_send: [s2c; 16],
            master_recv: [c2s; 16],
        },
    )
}

#[derive(Debug, Default)]
struct Log {
    start_ppp: bool,
    connected: bool,
    frames: Vec<Vec<u8>>,
    closed: Option<CloseReason>,
}

fn drain_client(c: &mut ClientConnection, log: &mut Log) {
    while let Some(ev) = c.poll_event() {
        record(ev, log);
    }
}
fn drain_server(s: &mut ServerConnection, log: &mut Log) {
    while let Some(ev) = s.poll_event() {
        record(ev, log);
    }
}
fn record(ev: Event<'_>, log: &mut Log) {
    match ev {
        Event::StartPpp => log.start_ppp = true,
        Event::Connected => log.connected = true,
        Event::PppFrame(f) => log.frames.push(f.to_vec()),
        Event::Closed(r) => log.closed = Some(r),
    }
}

struct Pair {
    now: Instant,
    c: ClientConnection,
    s: ServerConnection,
    cl: Log,
    sl: Log,
    buf: Vec<u8>,
}

impl Pair {
    fn new(client_hashes: u8, server_hashes: u8, client_cert: &[u8]) -> Pair {
        let now = Instant::now();
        let mut cc = ClientConfig::new(client_cert);
        cc.hash_protocols = client_hashes;
        let mut sc = ServerConfig::new(CERT);
        sc.hash_protocols = server_hashes;
        Pair {
            now,
            c: ClientConnection::new(cc, now),
            s: ServerConnection::new(sc, now),
            cl: Log::default(),
            sl: Log::default(),
            buf: Vec::new(),
        }
    }

    /// Move bytes both ways until quiet.
    fn pump(&mut self) {
        for _ in 0..10 {
            let mut moved = false;
            self.buf.clear();
            if self.c.poll_transmit(&mut self.buf) > 0 {
                moved = true;
                let mut rest = &self.buf[..];
                while !rest.is_empty() {
                    let n = self.s.handle_input(self.now, rest);
                    rest = &rest[n..];
                    drain_server(&mut self.s, &mut self.sl);
                }
            }
            drain_server(&mut self.s, &mut self.sl);
            self.buf.clear();
            if self.s.poll_transmit(&mut self.buf) > 0 {
                moved = true;
                let mut rest = &self.buf[..];
                while !rest.is_empty() {
                    let n = self.c.handle_input(self.now, rest);
                    rest = &rest[n..];
                    drain_client(&mut self.c, &mut self.cl);
                }
            }
            drain_client(&mut self.c, &mut self.cl);
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.c.handle_timeout(self.now);
        self.s.handle_timeout(self.now);
        drain_client(&mut self.c, &mut self.cl);
        drain_server(&mut self.s, &mut self.sl);
    }

    fn connect(&mut self, ck: &HigherLayerKeys, sk: &HigherLayerKeys) {
        self.pump();
        assert!(self.cl.start_ppp && self.sl.start_ppp);
        assert_eq!(self.s.state(), ServerState::CallConnectedPending);
        // PPP control frames flow before the binding.
        self.c.send_ppp(LCP).unwrap();
        self.s.send_ppp(LCP).unwrap();
        assert_eq!(self.s.send_ppp(IP), Err(SendError::NotBound));
        assert_eq!(self.c.send_ppp(IP), Err(SendError::NotBound));
        self.pump();
        assert_eq!(self.sl.frames, vec![LCP.to_vec()]);
        assert_eq!(self.cl.frames, vec![LCP.to_vec()]);
        self.s.set_higher_layer_keys(sk).unwrap();
        self.c.set_higher_layer_keys(ck).unwrap();
        self.pump();
    }
}

fn connected_pair(client_hashes: u8, server_hashes: u8) -> Pair {
    let (ck, sk) = keys(0x11, 0x22);
    let mut p = Pair::new(client_hashes, server_hashes, CERT);
    p.connect(&ck, &sk);
    assert!(p.cl.connected && p.sl.connected, "{:?} {:?}", p.cl, p.sl);
    p
}

#[test]
fn connect_and_bind_sha256() {
    let mut p = connected_pair(3, CERT_HASH_PROTOCOL_SHA256);
    assert_eq!(p.s.state(), ServerState::CallConnected);
    assert_eq!(p.c.state(), ClientState::CallConnected);
    assert!(p.s.binding_verified());
    assert_eq!(p.s.hash_protocol(), Some(HashProtocol::Sha256));
    assert_eq!(p.c.hash_protocol(), Some(HashProtocol::Sha256));
    p.c.send_ppp(IP).unwrap();
    p.s.send_ppp(IP).unwrap();
    p.pump();
    assert_eq!(p.sl.frames.last().unwrap(), IP);
    assert_eq!(p.cl.frames.last().unwrap(), IP);
}

#[test]
fn connect_and_bind_sha1() {
    let p = connected_pair(CERT_HASH_PROTOCOL_SHA1, 3);
    assert_eq!(p.s.hash_protocol(), Some(HashProtocol::Sha1));
}

#[test]
fn strongest_offered_hash_is_chosen() {
    let p = connected_pair(3, 3);
    assert_eq!(p.c.hash_protocol(), Some(HashProtocol::Sha256));
}

#[test]
fn no_keys_pap_binds_with_zero_hlak() {
    let mut p = Pair::new(3, 2, CERT);
    p.connect(&HigherLayerKeys::None, &HigherLayerKeys::None);
    assert!(p.s.binding_verified());
}

#[test]
fn keys_set_on_server_after_call_connected_arrives() {
    let (ck, sk) = keys(1, 2);
    let mut p = Pair::new(3, 2, CERT);
    p.pump();
    p.c.set_higher_layer_keys(&ck).unwrap();
    p.pump();
    assert!(p.cl.connected);
    assert!(!p.s.binding_verified());
    assert_eq!(p.s.state(), ServerState::CallConnectedPending);
    p.s.set_higher_layer_keys(&sk).unwrap();
    p.pump();
    assert!(p.sl.connected && p.s.binding_verified());
}

fn expect_binding_abort(p: &mut Pair, want: BindingError) {
    assert!(!p.sl.connected);
    assert!(!p.s.binding_verified());
    assert_eq!(p.s.state(), ServerState::Closing);
    // Client answered the Call Abort and waits for timer 2.
    assert_eq!(p.c.state(), ClientState::Closing);
    p.advance(Duration::from_secs(2));
    assert_eq!(
        p.sl.closed,
        Some(CloseReason::Aborted(AbortCause::BindingFailed(want)))
    );
    assert!(matches!(p.cl.closed, Some(CloseReason::PeerAbort(Some(_)))));
    assert!(p.s.is_closed() && p.c.is_closed());
}

#[test]
fn wrong_key_aborts() {
    let (ck, _) = keys(1, 2);
    let (_, sk) = keys(1, 3);
    let mut p = Pair::new(3, 2, CERT);
    p.connect(&ck, &sk);
    expect_binding_abort(&mut p, BindingError::CompoundMacMismatch);
}

#[test]
fn wrong_cert_hash_aborts() {
    let (ck, sk) = keys(1, 2);
    let mut p = Pair::new(3, 2, b"a man in the middle's certificate");
    p.connect(&ck, &sk);
    expect_binding_abort(&mut p, BindingError::CertHashMismatch);
}

#[test]
fn network_traffic_before_binding_is_dropped() {
    let mut p = Pair::new(3, 2, CERT);
    p.pump();
    // A misbehaving client pushing an IP packet before Call Connected.
    let mut raw = Vec::new();
    encode_data(IP, &mut raw).unwrap();
    encode_data(LCP, &mut raw).unwrap();
    p.s.handle_input(p.now, &raw);
    drain_server(&mut p.s, &mut p.sl);
    assert_eq!(p.sl.frames, vec![LCP.to_vec()]);
    assert_eq!(p.s.dropped_frames(), 1);
}

#[test]
fn echo_keepalive() {
    let mut p = connected_pair(3, 2);
    let t = p.c.poll_timeout().unwrap();
    assert_eq!(t - p.now, Duration::from_secs(60));
    p.advance(Duration::from_secs(60));
    let mut out = Vec::new();
    p.c.poll_transmit(&mut out);
    assert_eq!(
        decode_packet(&out).unwrap(),
        Packet::Control(ControlMessage::new(MessageType::EchoRequest))
    );
    // Deliver it; the server answers.
    p.s.handle_input(p.now, &out);
    drain_server(&mut p.s, &mut p.sl);
    out.clear();
    p.s.poll_transmit(&mut out);
    // The server's own Hello timer also fired: Echo Request, then our response.
    let mut d = sstp::codec::Deframer::new();
    d.push(&out);
    let mut types = Vec::new();
    while let Some(pk) = d.next_packet().unwrap() {
        if let Packet::Control(m) = decode_packet(pk).unwrap() {
            types.push(m.msg_type);
        }
    }
    assert_eq!(types, [MessageType::EchoRequest, MessageType::EchoResponse]);
    p.c.handle_input(p.now, &out);
    drain_client(&mut p.c, &mut p.cl);
    p.advance(Duration::from_secs(59));
    assert!(p.cl.closed.is_none());
}

#[test]
fn hello_timeout_closes_without_abort() {
    let mut p = connected_pair(3, 2);
    p.advance(Duration::from_secs(60)); // both send Echo Request
    let mut out = Vec::new();
    p.c.poll_transmit(&mut out); // dropped on the floor
    p.advance(Duration::from_secs(60));
    assert_eq!(p.cl.closed, Some(CloseReason::HelloTimeout));
    out.clear();
    p.c.poll_transmit(&mut out);
    assert!(out.is_empty(), "no Call Abort on hello timeout");
}

#[test]
fn graceful_disconnect() {
    let mut p = connected_pair(3, 2);
    p.c.close().unwrap();
    assert_eq!(p.c.send_ppp(LCP), Err(SendError::Closing));
    p.pump();
    assert_eq!(p.cl.closed, Some(CloseReason::LocalDisconnect));
    assert_eq!(p.s.state(), ServerState::Closing);
    p.advance(Duration::from_secs(1));
    assert_eq!(p.sl.closed, Some(CloseReason::PeerDisconnect));
}

#[test]
fn disconnect_ack_timeout() {
    let mut p = connected_pair(3, 2);
    p.s.close().unwrap();
    let mut out = Vec::new();
    p.s.poll_transmit(&mut out); // lost
    p.advance(Duration::from_secs(4));
    assert!(p.sl.closed.is_none());
    p.advance(Duration::from_secs(1));
    assert_eq!(p.sl.closed, Some(CloseReason::LocalDisconnect));
}

#[test]
fn negotiation_timeout_aborts() {
    let mut p = Pair::new(3, 2, CERT);
    p.pump();
    // PPP never completes.
    p.advance(Duration::from_secs(60));
    assert_eq!(p.s.state(), ServerState::Closing);
    assert_eq!(p.c.state(), ClientState::Closing);
    p.advance(Duration::from_secs(3));
    assert_eq!(
        p.sl.closed,
        Some(CloseReason::Aborted(AbortCause::NegotiationTimeout))
    );
}

#[test]
fn server_waits_for_request_with_timeout() {
    let now = Instant::now();
    let mut s = ServerConnection::new(ServerConfig::new(CERT), now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(60)));
    s.handle_timeout(now + Duration::from_secs(60));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    match decode_packet(&out).unwrap() {
        Packet::Control(m) => {
            assert_eq!(m.msg_type, MessageType::CallAbort);
            assert!(matches!(
                &m.attributes[..],
                [Attribute::StatusInfo(StatusInfo {
                    status: StatusCode::NEGOTIATION_TIMEOUT,
                    ..
                })]
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_ppp_request_is_nakked() {
    let now = Instant::now();
    let mut s = ServerConnection::new(ServerConfig::new(CERT), now);
    let req = ControlMessage {
        msg_type: MessageType::CallConnectRequest,
        attributes: vec![Attribute::EncapsulatedProtocolId(2)],
    };
    let mut raw = Vec::new();
    req.encode(&mut raw).unwrap();
    s.handle_input(now, &raw);
    while s.poll_event().is_some() {}
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    match decode_packet(&out).unwrap() {
        Packet::Control(m) => {
            assert_eq!(m.msg_type, MessageType::CallConnectNak);
            assert_eq!(
                m.attributes,
                vec![Attribute::StatusInfo(StatusInfo {
                    attrib_id: 1,
                    status: StatusCode::VALUE_NOT_SUPPORTED,
                    value: vec![0, 2]
                })]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.state(), ServerState::ConnectRequestPending);
    // After too many attempts the server aborts.
    for _ in 0..3 {
        s.handle_input(now, &raw);
        while s.poll_event().is_some() {}
    }
    assert_eq!(s.state(), ServerState::Closing);
}

#[test]
fn client_aborts_on_nak() {
    let now = Instant::now();
    let mut c = ClientConnection::new(ClientConfig::new(CERT), now);
    let mut raw = Vec::new();
    ControlMessage::with_status(
        MessageType::CallConnectNak,
        Some(StatusInfo {
            attrib_id: 1,
            status: StatusCode::VALUE_NOT_SUPPORTED,
            value: vec![],
        }),
    )
    .encode(&mut raw)
    .unwrap();
    c.handle_input(now, &raw);
    while c.poll_event().is_some() {}
    assert_eq!(c.state(), ClientState::Closing);
    c.handle_timeout(now + Duration::from_secs(3));
    assert!(matches!(
        c.poll_event(),
        Some(Event::Closed(CloseReason::Aborted(AbortCause::ConnectNak(v)))) if v.len() == 1
    ));
}

#[test]
fn client_rejects_ack_without_common_hash() {
    let mut p = Pair::new(CERT_HASH_PROTOCOL_SHA1, CERT_HASH_PROTOCOL_SHA256, CERT);
    p.pump();
    assert_eq!(p.c.state(), ClientState::Closing);
    assert!(!p.cl.start_ppp);
}

#[test]
fn framing_error_closes_immediately() {
    let mut p = connected_pair(3, 2);
    p.s.handle_input(p.now, &[0x20, 0x00, 0x00, 0x04]);
    drain_server(&mut p.s, &mut p.sl);
    assert!(matches!(p.sl.closed, Some(CloseReason::Framing(_))));
    let mut out = Vec::new();
    assert_eq!(p.s.poll_transmit(&mut out), 0);
}

#[test]
fn invalid_control_message_aborts() {
    let mut p = connected_pair(3, 2);
    // Unknown message type 0x0042.
    p.s.handle_input(p.now, &[0x10, 0x01, 0x00, 0x08, 0x00, 0x42, 0x00, 0x00]);
    drain_server(&mut p.s, &mut p.sl);
    assert_eq!(p.s.state(), ServerState::Closing);
    assert!(!p.s.binding_verified());
}

#[test]
fn unexpected_message_aborts() {
    let mut p = connected_pair(3, 2);
    let mut raw = Vec::new();
    ControlMessage::call_connect_request()
        .encode(&mut raw)
        .unwrap();
    p.s.handle_input(p.now, &raw);
    drain_server(&mut p.s, &mut p.sl);
    assert_eq!(p.s.state(), ServerState::Closing);
    p.pump();
    p.advance(Duration::from_secs(2));
    assert_eq!(
        p.sl.closed,
        Some(CloseReason::Aborted(AbortCause::UnexpectedMessage(
            MessageType::CallConnectRequest
        )))
    );
}

#[test]
fn early_keys_on_client_are_applied_at_ack() {
    let (ck, sk) = keys(5, 6);
    let mut p = Pair::new(3, 2, CERT);
    p.c.set_higher_layer_keys(&ck).unwrap();
    p.s.handle_timeout(p.now); // nothing due
    p.pump();
    assert!(p.cl.connected);
    p.s.set_higher_layer_keys(&sk).unwrap();
    p.pump();
    assert!(p.s.binding_verified());
}

#[test]
fn commands_in_wrong_state() {
    let now = Instant::now();
    let mut s = ServerConnection::new(ServerConfig::new(CERT), now);
    assert_eq!(
        s.set_higher_layer_keys(&HigherLayerKeys::None),
        Err(StateError::WrongState)
    );
    assert_eq!(s.send_ppp(LCP), Err(SendError::NotReady));
    let mut c = ClientConnection::new(ClientConfig::new(CERT), now);
    assert_eq!(c.send_ppp(LCP), Err(SendError::NotReady));
    c.close().unwrap();
    assert_eq!(c.close(), Err(StateError::Closing));
}

#[test]
fn large_inputs_are_accepted_in_pieces() {
    let mut p = connected_pair(3, 2);
    let frame = vec![0x00u8; 1500];
    let mut f = frame.clone();
    f[1] = 0x21;
    for _ in 0..20 {
        p.c.send_ppp(&f).unwrap();
    }
    p.pump();
    let ip: Vec<_> = p.sl.frames.iter().filter(|x| x.len() == 1500).collect();
    assert_eq!(ip.len(), 20);
}

/// What a person reads: words, never Rust's Debug form.
#[test]
fn close_reasons_read_as_words() {
    use sstp::attributes::{StatusCode, StatusInfo};
    use sstp::{AbortCause, CloseReason};
    let nak = CloseReason::Aborted(AbortCause::ConnectNak(vec![StatusInfo {
        attrib_id: 1,
        status: StatusCode::VALUE_NOT_SUPPORTED,
        value: vec![],
    }]));
    assert_eq!(
        nak.to_string(),
        "call aborted: the server refused the call: value not supported (attribute 1)"
    );
    assert_eq!(
        CloseReason::PeerAbort(None).to_string(),
        "the peer aborted the call"
    );
    assert!(!CloseReason::HelloTimeout.to_string().contains("Timeout"));
}
