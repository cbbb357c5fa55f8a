//! A dial-in server session and a dialer session over an in-memory byte
//! stream and over a real pty pair: modem exchange, LCP/auth/IPCP with
//! HDLC-like framing, IP packets both ways, and hang-up.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ppp::auth::{AuthProtocol, AuthRequest, Rejection, Secret};
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkConfig, LinkUp, NetworkSettings};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tunnel::hooks_support::*;
use tunnel::modem::ModemAnswer;
use tunnel::ppp_over_serial::{self, DialError, SerialSessionConfig};
use tunnel::{AuthAnswer, ClientHooks, Owner, PacketSink, ServerHooks, SessionInfo};

#[derive(Default)]
struct Collect(Mutex<Vec<Vec<u8>>>);
impl PacketSink for Collect {
    fn send(&self, packet: &[u8]) {
        self.0.lock().unwrap().push(packet.to_vec());
    }
}

struct TestHooks {
    inject: Mutex<Option<tunnel::PacketReceiver>>,
    up: Mutex<Option<LinkUp>>,
    downs: Mutex<u32>,
}

impl TestHooks {
    fn new() -> (Arc<Self>, tunnel::PacketSender) {
        let (tx, rx) = tunnel::packet_queue(128);
        let hooks = Arc::new(TestHooks {
            inject: Mutex::new(Some(rx)),
            up: Mutex::new(None),
            downs: Mutex::new(0),
        });
        (hooks, tx)
    }
}

impl ServerHooks for TestHooks {
    fn authenticate(&self, _: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        Box::pin(async move {
            if request.username == "alice" {
                AuthAnswer::Secret(Secret::Password(zeroize::Zeroizing::new("secret".into())))
            } else {
                AuthAnswer::Reject(Rejection::AuthenticationFailure, "unknown user".into())
            }
        })
    }
    fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        Box::pin(async {
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    Ipv4Addr::new(10, 0, 10, 20),
                    Ipv4Addr::new(10, 0, 10, 21),
                    [None, None],
                    [None, None],
                )),
                ipv6cp: None,
                ccp: Some(CcpConfig::optional()),
            })
        })
    }
    fn up(
        &self,
        _: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        *self.up.lock().unwrap() = Some(up.clone());
        let rx = self.inject.lock().unwrap().take();
        Box::pin(async move { rx.ok_or_else(|| "up twice".to_string()) })
    }
    fn down(&self, _: &SessionInfo, _: &tunnel::EndReason) {
        *self.downs.lock().unwrap() += 1;
    }
}

fn info(id: u64) -> SessionInfo {
    SessionInfo {
        id,
        peer: "line".into(),
        user: None,
    }
}

/// Every octet value, so that flags, escapes and control characters all
/// cross the line.
fn ipv4_packet(i: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28];
    p.extend((0..=255u8).map(|b| b ^ i));
    p
}

async fn wait_up(h: &TestHooks) -> LinkUp {
    for _ in 0..500 {
        if let Some(up) = h.up.lock().unwrap().clone() {
            return up;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("link did not come up");
}

/// Answer on `server_line`, dial `number` on `client_line`, bring PPP up,
/// send 20 packets each way, hang up from the client.
async fn call<A, B>(
    server_line: A,
    mut client_line: B,
    number: &str,
    password: &str,
) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (server_hooks, to_client) = TestHooks::new();
    let (client_hooks, to_server) = TestHooks::new();
    let server_sink = Arc::new(Collect::default());
    let client_sink = Arc::new(Collect::default());
    let (server_stop_tx, server_stop) = watch::channel(false);
    let (client_stop_tx, mut client_stop) = watch::channel(false);
    let server = tokio::spawn({
        let (hooks, sink) = (server_hooks.clone(), server_sink.clone());
        async move {
            let mut line = server_line;
            let mut stop = server_stop.clone();
            let mut modem = ModemAnswer::new(&["555-1234".to_string()], 115_200);
            let (number, initial) =
                ppp_over_serial::answer(&mut line, &mut modem, &mut stop).await?;
            let mut link = LinkConfig::server("ras-test");
            link.lcp.require_auth = vec![AuthProtocol::MsChapV2];
            link.ipv6cp = None;
            let config = SerialSessionConfig { link };
            let outcome = ppp_over_serial::run(
                line,
                &initial,
                config,
                Owner::Server(hooks),
                sink,
                info(1),
                server_stop,
            )
            .await;
            Ok::<_, DialError>((number, outcome))
        }
    });
    let initial = ppp_over_serial::dial(
        &mut client_line,
        number,
        Duration::from_secs(5),
        &mut client_stop,
    )
    .await
    .map_err(|e| e.to_string())?;
    let client = tokio::spawn({
        let (hooks, sink) = (client_hooks.clone(), client_sink.clone());
        let mut link = LinkConfig::client("alice", password);
        link.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
        link.ipv6cp = None;
        let config = SerialSessionConfig { link };
        async move {
            ppp_over_serial::run(
                client_line,
                &initial,
                config,
                Owner::Client(hooks),
                sink,
                info(2),
                client_stop,
            )
            .await
        }
    });
    let up = tokio::select! {
        up = wait_up(&server_hooks) => up,
        _ = tokio::time::sleep(Duration::from_secs(6)) => return Err("link not up within 6 s".into()),
    };
    assert_eq!(up.username.as_deref(), Some("alice"));
    assert!(up.mppe.is_some(), "MS-CHAPv2 gives MPPE keys");
    let client_up = wait_up(&client_hooks).await;
    assert_eq!(client_up.ipv4.unwrap().local, Ipv4Addr::new(10, 0, 10, 21));
    for i in 0..20u8 {
        to_server.send(Bytes::from(ipv4_packet(i))).await.unwrap();
        to_client
            .send(Bytes::from(ipv4_packet(i ^ 0x7e)))
            .await
            .unwrap();
    }
    for _ in 0..500 {
        if server_sink.0.lock().unwrap().len() == 20 && client_sink.0.lock().unwrap().len() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server_sink.0.lock().unwrap().clone(),
        (0..20).map(ipv4_packet).collect::<Vec<_>>()
    );
    assert_eq!(
        client_sink.0.lock().unwrap().clone(),
        (0..20u8).map(|i| ipv4_packet(i ^ 0x7e)).collect::<Vec<_>>()
    );
    // The user hangs up: Terminate-Request, and both sides end.
    client_stop_tx.send(true).unwrap();
    let c = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap()
        .unwrap();
    assert!(c.was_up);
    assert_eq!(c.reason, tunnel::EndReason::LocalRequest);
    let (number, s) = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(number, "5551234");
    assert!(s.was_up && s.stats.packets_in == 20, "{s:?}");
    // The server saw the user's Terminate-Request: accounted as User-Request.
    assert!(
        matches!(s.reason, tunnel::EndReason::PeerRequest(_)),
        "{}",
        s.reason
    );
    assert_eq!(
        *server_hooks.downs.lock().unwrap(),
        1,
        "server down hook once"
    );
    drop(server_stop_tx);
    Ok(())
}

#[tokio::test]
async fn dial_up_over_memory_carries_every_octet_value() {
    let (a, b) = tokio::io::duplex(4096);
    call(a, b, "555 1234", "secret").await.unwrap();
}

#[tokio::test]
async fn a_wrong_number_gets_no_carrier() {
    let (a, b) = tokio::io::duplex(4096);
    let e = call(a, b, "5550000", "secret").await.unwrap_err();
    assert!(e.contains("NO CARRIER"), "{e}");
}

#[tokio::test]
async fn dial_up_over_a_pty_pair() {
    // Two pty pairs joined by a relay: the server's line and the client's
    // line are both real ttys in raw mode, as with socat or a null modem.
    use nix::pty::openpty;
    let server_pair = openpty(None, None).unwrap();
    let client_pair = openpty(None, None).unwrap();
    let server_line = tunnel::serial::SerialPort::from_fd(server_pair.slave).unwrap();
    let client_line = tunnel::serial::SerialPort::from_fd(client_pair.slave).unwrap();
    let relay_a = tunnel::serial::SerialPort::from_fd(server_pair.master).unwrap();
    let relay_b = tunnel::serial::SerialPort::from_fd(client_pair.master).unwrap();
    let relay = tokio::spawn(async move {
        let (mut a, mut b) = (relay_a, relay_b);
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    call(server_line, client_line, "5551234", "secret")
        .await
        .unwrap();
    relay.abort();
}

/// The same test owner as a client's (only `up` is asked of it).
impl ClientHooks for TestHooks {
    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        <Self as ServerHooks>::up(self, info, up)
    }
}
