//! A server session and a client session over an in-memory byte stream
//! (no TLS): HTTP, SSTP with crypto binding, PPP, and IP packets both ways.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ppp::auth::{AuthProtocol, AuthRequest, Rejection, Secret};
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkConfig, LinkUp, NetworkSettings};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tunnel::hooks_support::*;
use tunnel::sstp_client::{self, ClientSessionConfig};
use tunnel::sstp_server::{self, ServerSessionConfig};
use tunnel::{AuthAnswer, ClientHooks, PacketSink, ServerHooks, SessionInfo};

const CERT: &[u8] = b"not really a certificate, but both sides hash the same bytes";

#[derive(Default)]
struct Collect(Mutex<Vec<Vec<u8>>>);
impl PacketSink for Collect {
    fn send(&self, packet: &[u8]) {
        self.0.lock().unwrap().push(packet.to_vec());
    }
}

/// Hooks of a test: one user, one address, and a channel the test uses to
/// inject IP packets once the link is up.
struct TestHooks {
    password: &'static str,
    inject: Mutex<Option<tunnel::PacketReceiver>>,
    up: Mutex<Option<LinkUp>>,
    downs: Mutex<u32>,
}

impl TestHooks {
    fn new(password: &'static str) -> (Arc<Self>, tunnel::PacketSender) {
        let (tx, rx) = tunnel::packet_queue(128);
        (
            Arc::new(TestHooks {
                password,
                inject: Mutex::new(Some(rx)),
                up: Mutex::new(None),
                downs: Mutex::new(0),
            }),
            tx,
        )
    }
}

impl ServerHooks for TestHooks {
    fn authenticate(&self, _: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        let pw = self.password.to_owned();
        Box::pin(async move {
            if request.username == "alice" {
                AuthAnswer::Secret(Secret::Password(zeroize::Zeroizing::new(pw)))
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

fn server_config(auth: AuthProtocol) -> ServerSessionConfig {
    let mut link = LinkConfig::server("ras-test");
    link.lcp.require_auth = vec![auth];
    link.ipv6cp = None;
    ServerSessionConfig {
        certificate_der: Arc::new(CERT.to_vec()),
        hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
        link: link.into(),
        request_timeout: Duration::from_secs(2),
        server_name: "ras-test".into(),
        timers: sstp::Timers::default(),
    }
}

fn client_config(auth: AuthProtocol, password: &str, cert: &[u8]) -> ClientSessionConfig {
    let mut link = LinkConfig::client("alice", password);
    link.lcp.accept_auth = vec![auth];
    link.ipv6cp = None;
    ClientSessionConfig {
        host: "ras.test".into(),
        server_certificate_der: cert.to_vec(),
        link,
        response_timeout: Duration::from_secs(2),
    }
}

fn ipv4_packet(i: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28];
    p.extend((0..200).map(|b| (b as u8) ^ i));
    p
}

fn info(id: u64) -> SessionInfo {
    SessionInfo {
        id,
        peer: "memory".into(),
        user: None,
    }
}

async fn wait_up(h: &TestHooks) -> LinkUp {
    for _ in 0..200 {
        if let Some(up) = h.up.lock().unwrap().clone() {
            return up;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("link did not come up");
}

#[tokio::test]
async fn every_auth_method_carries_ip_both_ways() {
    for auth in [
        AuthProtocol::Eap,
        AuthProtocol::MsChapV2,
        AuthProtocol::ChapMd5,
        AuthProtocol::Pap,
    ] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (server_hooks, to_client) = TestHooks::new("secret");
        let (client_hooks, to_server) = TestHooks::new("unused");
        let server_sink = Arc::new(Collect::default());
        let client_sink = Arc::new(Collect::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let sc = server_config(auth);
        let server = tokio::spawn({
            let (hooks, sink, stop) = (server_hooks.clone(), server_sink.clone(), stop_rx.clone());
            async move { sstp_server::serve(a, &sc, hooks, sink, info(1), stop).await }
        });
        let client = tokio::spawn({
            let (hooks, sink) = (client_hooks.clone(), client_sink.clone());
            let cc = client_config(auth, "secret", CERT);
            async move { sstp_client::connect(b, cc, hooks, sink, info(2), stop_rx).await }
        });
        let up = wait_up(&server_hooks).await;
        let client_up = wait_up(&client_hooks).await;
        assert_eq!(up.username.as_deref(), Some("alice"), "{auth:?}");
        assert_eq!(client_up.ipv4.unwrap().local, Ipv4Addr::new(10, 0, 10, 21));
        let keyed = matches!(auth, AuthProtocol::Eap | AuthProtocol::MsChapV2);
        assert_eq!(up.mppe.is_some(), keyed, "{auth:?}");
        for i in 0..50u8 {
            to_server.send(Bytes::from(ipv4_packet(i))).await.unwrap();
            to_client
                .send(Bytes::from(ipv4_packet(i.wrapping_add(100))))
                .await
                .unwrap();
        }
        for _ in 0..200 {
            if server_sink.0.lock().unwrap().len() == 50
                && client_sink.0.lock().unwrap().len() == 50
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got: Vec<Vec<u8>> = server_sink.0.lock().unwrap().clone();
        assert_eq!(
            got,
            (0..50).map(ipv4_packet).collect::<Vec<_>>(),
            "{auth:?}"
        );
        assert_eq!(client_sink.0.lock().unwrap().len(), 50);
        // Graceful stop: the server disconnects, both sessions end.
        stop_tx.send(true).unwrap();
        let s = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        let c = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(s.was_up && c.was_up);
        assert_eq!(*server_hooks.downs.lock().unwrap(), 1);
    }
}

#[tokio::test]
async fn wrong_password_ends_both_sessions_with_691() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (server_hooks, _tx) = TestHooks::new("secret");
    let (client_hooks, _tx2) = TestHooks::new("unused");
    let (_stop, stop_rx) = watch::channel(false);
    let mut sc = server_config(AuthProtocol::MsChapV2);
    Arc::make_mut(&mut sc.link).authenticator.max_retries = 0;
    let server = tokio::spawn({
        let hooks = server_hooks.clone();
        let stop = stop_rx.clone();
        async move {
            sstp_server::serve(a, &sc, hooks, Arc::new(Collect::default()), info(1), stop).await
        }
    });
    let cc = client_config(AuthProtocol::MsChapV2, "wrong", CERT);
    let c = sstp_client::connect(
        b,
        cc,
        client_hooks,
        Arc::new(Collect::default()),
        info(2),
        stop_rx,
    )
    .await
    .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(!s.was_up && !c.was_up);
    assert!(c.reason.to_string().contains("691"), "{}", c.reason);
    assert!(s.reason.to_string().contains("691"), "{}", s.reason);
    // Accounted as the user's error (RFC 2866 §5.10 User-Error), on both ends.
    assert_eq!(
        s.reason.terminate_cause(),
        tunnel::TerminateCause::UserError
    );
    assert_eq!(
        c.reason.terminate_cause(),
        tunnel::TerminateCause::UserError
    );
}

#[tokio::test]
async fn wrong_certificate_hash_fails_the_crypto_binding() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (server_hooks, _tx) = TestHooks::new("secret");
    let (client_hooks, _tx2) = TestHooks::new("unused");
    let (_stop, stop_rx) = watch::channel(false);
    let sc = server_config(AuthProtocol::MsChapV2);
    let server = tokio::spawn({
        let hooks = server_hooks.clone();
        let stop = stop_rx.clone();
        async move {
            sstp_server::serve(a, &sc, hooks, Arc::new(Collect::default()), info(1), stop).await
        }
    });
    // A man in the middle with another certificate: the client binds to it.
    let cc = client_config(AuthProtocol::MsChapV2, "secret", b"another certificate");
    let c = sstp_client::connect(
        b,
        cc,
        client_hooks,
        Arc::new(Collect::default()),
        info(2),
        stop_rx,
    )
    .await
    .unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.reason.to_string().contains("aborted") && s.reason.to_string().contains("crypto binding"),
        "{}",
        s.reason
    );
    assert!(
        c.reason.to_string().contains("the peer aborted"),
        "{}",
        c.reason
    );
    assert!(
        server_hooks.up.lock().unwrap().is_none(),
        "no traffic route for an unbound session"
    );
}

#[tokio::test]
async fn slowloris_and_garbage_are_refused() {
    // Never sends a complete request.
    let (a, mut b) = tokio::io::duplex(4096);
    let (hooks, _tx) = TestHooks::new("secret");
    let (_stop, stop_rx) = watch::channel(false);
    let mut sc = server_config(AuthProtocol::MsChapV2);
    sc.request_timeout = Duration::from_millis(300);
    b.write_all(b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n")
        .await
        .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        sstp_server::serve(
            a,
            &sc,
            hooks.clone(),
            Arc::new(Collect::default()),
            info(1),
            stop_rx.clone(),
        ),
    )
    .await
    .expect("slowloris must not hang the session");
    assert!(
        out.reason.to_string().contains("no complete HTTP request"),
        "{}",
        out.reason
    );

    // Garbage instead of HTTP gets an HTTP error.
    let (a, mut b) = tokio::io::duplex(4096);
    b.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let out = sstp_server::serve(
        a,
        &sc,
        hooks.clone(),
        Arc::new(Collect::default()),
        info(2),
        stop_rx.clone(),
    )
    .await;
    assert!(out.reason.to_string().contains("405"), "{}", out.reason);
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut b, &mut answer)
        .await
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 405"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // A valid request followed by an impossible SSTP length (below the
    // header size) is a framing error: the session closes at once.
    let (a, mut b) = tokio::io::duplex(4096);
    let mut req = Vec::new();
    sstp::http::encode_request("x", &sstp::http::Guid::random(), &mut req);
    req.extend_from_slice(&[0x10, 0x01, 0x00, 0x02, 1, 2, 3]);
    b.write_all(&req).await.unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        sstp_server::serve(
            a,
            &sc,
            hooks.clone(),
            Arc::new(Collect::default()),
            info(3),
            stop_rx.clone(),
        ),
    )
    .await
    .expect("bad length must not hang the session");
    assert!(
        out.reason.to_string().contains("not SSTP"),
        "{}",
        out.reason
    );

    // The largest length (4095) and then silence: the negotiation timer
    // (shortened here) ends the session instead of waiting forever.
    let (a, mut b) = tokio::io::duplex(4096);
    let mut req = Vec::new();
    sstp::http::encode_request("x", &sstp::http::Guid::random(), &mut req);
    req.extend_from_slice(&[0x10, 0x01, 0x0f, 0xff, 1, 2, 3]);
    b.write_all(&req).await.unwrap();
    sc.timers.negotiation = Duration::from_millis(300);
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        sstp_server::serve(
            a,
            &sc,
            hooks,
            Arc::new(Collect::default()),
            info(4),
            stop_rx,
        ),
    )
    .await
    .expect("an unfinished packet must not hang the session");
    assert!(!out.was_up, "{}", out.reason);
    drop(b);
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

/// A session's future lives as long as the session: the HTTP exchange
/// (with its 1 KiB read chunk) and the session's own loop are boxed apart,
/// so it keeps no place for either (2,272 bytes in a release build with
/// both inline, 264 now; issue 18).
#[tokio::test]
async fn a_sessions_future_keeps_no_place_for_its_stages() {
    let (a, _b) = tokio::io::duplex(1024);
    let (hooks, _) = TestHooks::new("secret");
    let (_stop_tx, stop) = watch::channel(false);
    let sc = server_config(AuthProtocol::MsChapV2);
    let served = sstp_server::serve(a, &sc, hooks, Arc::new(Collect::default()), info(1), stop);
    let size = std::mem::size_of_val(&served);
    assert!(size <= 640, "a session's future is {size} bytes");
}
