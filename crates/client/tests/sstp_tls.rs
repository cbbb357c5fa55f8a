//! `client::sstp::connect` against a real SSTP server session
//! (`tunnel::sstp_server::serve`) on 127.0.0.1, through real TLS with an
//! rcgen certificate. The host side is a channel pair instead of a TUN, so
//! this runs without root; the last test (root only) uses a real TUN,
//! routes and DNS inside a fresh network namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use client::network::{Attachment, Connected, Network, NetworkError};
use client::sstp::{self as vpn, ConnectError, SstpOptions};
use client::target::Target;
use client::verify::{Fingerprint, Trust};
use ppp::auth::{AuthRequest, Rejection, Secret};
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkConfig, LinkUp, NetworkSettings};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::watch;
use tunnel::hooks_support::BoxFuture;
use tunnel::sstp_server::{self, ServerSessionConfig};
use tunnel::{AuthAnswer, Outcome, PacketSink, ServerHooks, SessionInfo};
use zeroize::Zeroizing;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);

#[derive(Default)]
struct Collect(Mutex<Vec<Vec<u8>>>);
impl PacketSink for Collect {
    fn send(&self, packet: &[u8]) {
        self.0.lock().unwrap().push(packet.to_vec());
    }
}

/// The server's hooks: user alice, one address, packets injected by the
/// test once the link is up.
struct TestServer {
    password: &'static str,
    inject: Mutex<Option<tunnel::PacketReceiver>>,
    up: Mutex<Option<LinkUp>>,
    auth_requests: AtomicU32,
}

impl ServerHooks for TestServer {
    fn authenticate(&self, _: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        self.auth_requests.fetch_add(1, Ordering::SeqCst);
        let pw = self.password.to_owned();
        Box::pin(async move {
            if request.username == "alice" {
                AuthAnswer::Secret(Secret::Password(Zeroizing::new(pw)))
            } else {
                AuthAnswer::Reject(Rejection::AuthenticationFailure, "unknown user".into())
            }
        })
    }
    fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        Box::pin(async {
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    SERVER_IP,
                    CLIENT_IP,
                    [Some(DNS), None],
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
    fn down(&self, _: &SessionInfo, _: &tunnel::EndReason) {}
}

struct Cert {
    der: CertificateDer<'static>,
    pem: String,
    key: PrivateKeyDer<'static>,
}

/// A self-signed server certificate for 127.0.0.1 and `localhost`, usable
/// both as a pin and as its own CA file.
fn certificate() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

struct Server {
    addr: SocketAddr,
    hooks: Arc<TestServer>,
    to_client: tunnel::PacketSender,
    sink: Arc<Collect>,
    /// None: the TLS handshake failed (nothing of SSTP or PPP ran).
    done: tokio::task::JoinHandle<Option<Outcome>>,
    _stop: watch::Sender<bool>,
}

async fn start_server(cert: &Cert, password: &'static str, retries: u8) -> Server {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], cert.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tunnel::packet_queue(128);
    let hooks = Arc::new(TestServer {
        password,
        inject: Mutex::new(Some(rx)),
        up: Mutex::new(None),
        auth_requests: AtomicU32::new(0),
    });
    let mut link = LinkConfig::server("ras-test");
    link.authenticator.max_retries = retries;
    let config = ServerSessionConfig {
        certificate_der: Arc::new(cert.der.to_vec()),
        hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
        link: link.into(),
        request_timeout: Duration::from_secs(5),
        server_name: "ras-test".into(),
        timers: sstp::Timers::default(),
    };
    let sink = Arc::new(Collect::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let done = tokio::spawn({
        let (hooks, sink) = (hooks.clone(), sink.clone());
        async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.ok()?;
            let info = SessionInfo {
                id: 1,
                peer: peer.to_string(),
                user: None,
            };
            Some(sstp_server::serve(tls, &config, hooks, sink, info, stop_rx).await)
        }
    });
    Server {
        addr,
        hooks,
        to_client: tx,
        sink,
        done,
        _stop: stop_tx,
    }
}

/// The client's host side in a test: channels instead of a TUN.
struct ChannelNetwork {
    outbound: Mutex<Option<tunnel::PacketReceiver>>,
    inbound: Arc<Collect>,
    attached: Mutex<Option<Connected>>,
    released: Arc<AtomicBool>,
}

struct Release(Arc<AtomicBool>);
impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl ChannelNetwork {
    fn new() -> (Arc<Self>, tunnel::PacketSender) {
        let (tx, rx) = tunnel::packet_queue(128);
        (
            Arc::new(ChannelNetwork {
                outbound: Mutex::new(Some(rx)),
                inbound: Arc::new(Collect::default()),
                attached: Mutex::new(None),
                released: Arc::new(AtomicBool::new(false)),
            }),
            tx,
        )
    }
}

impl Network for ChannelNetwork {
    fn attach(&self, link: &Connected) -> Result<Attachment, NetworkError> {
        *self.attached.lock().unwrap() = Some(link.clone());
        let outbound = self
            .outbound
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| NetworkError::Other("attached twice".into()))?;
        Ok(Attachment {
            outbound,
            inbound: self.inbound.clone(),
            description: "test channels".into(),
            guard: Box::new(Release(self.released.clone())),
        })
    }
}

fn options(addr: SocketAddr, password: &str, trust: Trust) -> SstpOptions {
    let target = Target::parse(&format!("sstp://127.0.0.1:{}", addr.port())).unwrap();
    let mut o = SstpOptions::new(target, "alice", Zeroizing::new(password.into()), trust);
    o.connect_timeout = Duration::from_secs(5);
    o.response_timeout = Duration::from_secs(5);
    o
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, i: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend((0..28).map(|b| (b as u8) ^ i));
    p
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn up_carry_and_disconnect(trust_of: impl Fn(&Cert) -> Trust) {
    let cert = certificate();
    let server = start_server(&cert, "secret", 0).await;
    let (network, to_server) = ChannelNetwork::new();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let mut opts = options(server.addr, "secret", trust_of(&cert));
    opts.on_up = Some({
        let statuses = statuses.clone();
        Arc::new(move |s: &vpn::UpStatus| statuses.lock().unwrap().push(s.to_string()))
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn({
        let network = network.clone();
        async move { vpn::connect(&opts, network, stop_rx).await }
    });

    // The status is reported after the host side is attached.
    eventually("the status line", || !statuses.lock().unwrap().is_empty()).await;
    let link = network.attached.lock().unwrap().clone().unwrap();
    assert_eq!(link.ipv4, Some((CLIENT_IP, SERVER_IP)));
    assert_eq!(link.dns, vec![DNS]);
    assert!(link.mppe.is_some(), "MS-CHAPv2 keys give MPPE");
    assert!(link.ipv6.is_some(), "IPv6CP is on by default");
    assert_eq!(link.server, server.addr);
    let status = statuses.lock().unwrap().clone();
    assert_eq!(status.len(), 1);
    assert!(
        status[0].contains("10.0.10.21")
            && status[0].contains("DNS 10.0.0.53")
            && status[0].contains("MPPE 128-bit"),
        "{status:?}"
    );

    for i in 0..20u8 {
        to_server
            .send(Bytes::from(ipv4_packet(CLIENT_IP, SERVER_IP, i)))
            .await
            .unwrap();
        server
            .to_client
            .send(Bytes::from(ipv4_packet(SERVER_IP, CLIENT_IP, i)))
            .await
            .unwrap();
    }
    eventually("20 packets each way", || {
        server.sink.0.lock().unwrap().len() == 20 && network.inbound.0.lock().unwrap().len() == 20
    })
    .await;
    assert_eq!(
        *server.sink.0.lock().unwrap(),
        (0..20)
            .map(|i| ipv4_packet(CLIENT_IP, SERVER_IP, i))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        *network.inbound.0.lock().unwrap(),
        (0..20)
            .map(|i| ipv4_packet(SERVER_IP, CLIENT_IP, i))
            .collect::<Vec<_>>()
    );
    assert!(!network.released.load(Ordering::SeqCst));

    // What SIGINT does in `ras connect`.
    stop_tx.send(true).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .expect("the client ends promptly")
        .unwrap()
        .unwrap();
    assert!(end.stopped && end.was_up, "{end:?}");
    assert!(
        end.stats.packets_out >= 20 && end.stats.packets_in >= 20,
        "{:?}",
        end.stats
    );
    assert!(network.released.load(Ordering::SeqCst), "host side undone");
    let s = tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .expect("the server session ends too")
        .unwrap()
        .unwrap();
    assert!(s.was_up);
    // The server learned of it from the client (PPP Terminate-Request /
    // SSTP Call Disconnect), not from a dropped connection.
    assert!(
        matches!(s.reason, tunnel::EndReason::PeerRequest(_)),
        "{}",
        s.reason
    );
}

#[tokio::test]
async fn pinned_fingerprint_link_up_packets_and_graceful_disconnect() {
    up_carry_and_disconnect(|c| Trust::Pin(Fingerprint::of(&c.der))).await;
}

#[tokio::test]
async fn ca_file_link_up_packets_and_graceful_disconnect() {
    up_carry_and_disconnect(|c| {
        let path = std::env::temp_dir().join(format!(
            "ras-client-test-ca-{}-{:?}.pem",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, &c.pem).unwrap();
        let trust = Trust::ca_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        trust
    })
    .await;
}

#[tokio::test]
async fn wrong_fingerprint_is_refused_before_any_ppp() {
    let cert = certificate();
    let other = certificate();
    let server = start_server(&cert, "secret", 0).await;
    let (network, _tx) = ChannelNetwork::new();
    let opts = options(
        server.addr,
        "secret",
        Trust::Pin(Fingerprint::of(&other.der)),
    );
    let (_stop, stop_rx) = watch::channel(false);
    let err = vpn::connect(&opts, network.clone(), stop_rx)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Certificate(_)), "{err:?}");
    assert!(err.is_permanent());
    let msg = err.to_string();
    assert!(
        msg.contains("fingerprint mismatch")
            && msg.contains(&Fingerprint::of(&cert.der).to_string()),
        "{msg}"
    );
    let s = tokio::time::timeout(Duration::from_secs(5), server.done)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.is_none(),
        "the server's TLS handshake failed: no SSTP ran"
    );
    assert_eq!(server.hooks.auth_requests.load(Ordering::SeqCst), 0);
    assert!(network.attached.lock().unwrap().is_none());
}

#[tokio::test]
async fn wrong_password_is_error_691() {
    let cert = certificate();
    let server = start_server(&cert, "secret", 0).await;
    let (network, _tx) = ChannelNetwork::new();
    let opts = options(server.addr, "wrong", Trust::Pin(Fingerprint::of(&cert.der)));
    let (_stop, stop_rx) = watch::channel(false);
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        vpn::connect(&opts, network.clone(), stop_rx),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Auth {
                code: Some(691),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(
        err.to_string()
            .contains("authentication failed (error 691)"),
        "{err}"
    );
    assert!(network.attached.lock().unwrap().is_none());
    assert!(server.hooks.up.lock().unwrap().is_none());
}

struct NoPermission;
impl Network for NoPermission {
    fn attach(&self, _: &Connected) -> Result<Attachment, NetworkError> {
        Err(NetworkError::Other(
            "TUN device ras-sstp0: Operation not permitted".into(),
        ))
    }
}

#[tokio::test]
async fn a_host_side_failure_ends_the_session_with_a_permanent_error() {
    let cert = certificate();
    let server = start_server(&cert, "secret", 0).await;
    let opts = options(
        server.addr,
        "secret",
        Trust::Pin(Fingerprint::of(&cert.der)),
    );
    let (_stop, stop_rx) = watch::channel(false);
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        vpn::connect(&opts, Arc::new(NoPermission), stop_rx),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, ConnectError::Network(_)), "{err:?}");
    assert!(
        err.is_permanent() && err.to_string().contains("not permitted"),
        "{err}"
    );
    // The server's session ends as well (its reason is not checked: see
    // the report about a second LinkEvent::Up after a peer's
    // Terminate-Request).
    let s = tokio::time::timeout(Duration::from_secs(10), server.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(s.was_up);
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (network, _tx) = ChannelNetwork::new();
    let opts = options(addr, "x", Trust::Pin(Fingerprint([0; 32])));
    let (_stop, stop_rx) = watch::channel(false);
    let err = vpn::connect(&opts, network, stop_rx).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tcp { .. }), "{err:?}");
    assert!(!err.is_permanent());
}

// ---- root only: a real TUN, routes and DNS in a network namespace ----

const CHILD_ENV: &str = "RAS_CLIENT_TEST_IN_NETNS";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Re-runs `in_namespace` in a child process inside a fresh network
/// namespace (`unshare --net`) so nothing of the host is touched. Skipped,
/// with a message, without root, `/dev/net/tun` or `unshare`.
#[test]
fn tun_routes_and_dns_in_a_network_namespace() {
    if !is_root() || !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("skipped: needs root and /dev/net/tun");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = match std::process::Command::new("unshare")
        .args(["--net", "--"])
        .arg(&exe)
        .args(["--exact", "in_namespace", "--ignored", "--nocapture"])
        .env(CHILD_ENV, "1")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && text.contains("unshare failed") {
        eprintln!("skipped: {text}");
        return;
    }
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran no test:\n{text}");
}

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The body of the namespace test: only meaningful inside the child.
#[tokio::test]
#[ignore = "run by tun_routes_and_dns_in_a_network_namespace inside a fresh network namespace"]
async fn in_namespace() {
    use client::dns::DnsBackend;
    use client::network::{DnsMode, SystemNetwork};

    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run only in the namespace"
    );
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());

    let dir = std::env::temp_dir().join(format!("ras-client-netns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.168.1.1\n").unwrap();

    let cert = certificate();
    let server = start_server(&cert, "secret", 0).await;
    let network = Arc::new(SystemNetwork {
        tun_name: "rascli0".into(),
        routes: vec![("10.77.0.0".parse::<IpAddr>().unwrap(), 16)],
        default_route: true,
        dns: DnsMode::Apply(DnsBackend::ResolvConf {
            path: resolv.clone(),
            backup_dir: dir.join("run"),
        }),
        dns_suffixes: Vec::new(),
    });
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let mut opts = options(
        server.addr,
        "secret",
        Trust::Pin(Fingerprint::of(&cert.der)),
    );
    opts.on_up = Some({
        let statuses = statuses.clone();
        Arc::new(move |s: &vpn::UpStatus| statuses.lock().unwrap().push(s.to_string()))
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let client = tokio::spawn(async move { vpn::connect(&opts, network, stop_rx).await });
    eventually("the status line", || !statuses.lock().unwrap().is_empty()).await;
    let status = statuses.lock().unwrap()[0].clone();
    assert!(
        status.contains("rascli0") && status.contains("DNS via resolv.conf"),
        "{status}"
    );

    let addr = ip(&["-o", "addr", "show", "dev", "rascli0"]);
    assert!(addr.contains("10.0.10.21/32"), "{addr}");
    assert!(addr.contains("fe80::"), "{addr}");
    let routes = ip(&["route", "show", "dev", "rascli0"]);
    for r in ["0.0.0.0/1", "128.0.0.0/1", "10.77.0.0/16", "10.0.10.20"] {
        assert!(routes.contains(r), "{r} missing:\n{routes}");
    }
    let conf = std::fs::read_to_string(&resolv).unwrap();
    assert!(
        conf.contains("nameserver 10.0.0.53") && !conf.contains("192.168.1.1"),
        "{conf}"
    );

    // Kernel → TUN → tunnel: a datagram to a routed address reaches the
    // server.
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.send_to(b"through the tunnel", "10.77.0.5:9999")
        .unwrap();
    eventually("the datagram at the server", || {
        server.sink.0.lock().unwrap().iter().any(|p| {
            p.len() > 20
                && p[0] >> 4 == 4
                && p[9] == 17
                && p[16..20] == [10, 77, 0, 5]
                && p.ends_with(b"through the tunnel")
        })
    })
    .await;
    // Tunnel → TUN → kernel: an echo request from the server's address is
    // answered back through the tunnel.
    server
        .to_client
        .send(Bytes::from(icmp_echo(
            SERVER_IP, CLIENT_IP, 0x4242, b"ping!",
        )))
        .await
        .unwrap();
    eventually("the echo reply at the server", || {
        server.sink.0.lock().unwrap().iter().any(|p| {
            p.len() > 28
                && p[0] >> 4 == 4
                && p[9] == 1
                && p[20] == 0
                && p[16..20] == SERVER_IP.octets()
                && p.ends_with(b"ping!")
        })
    })
    .await;

    stop_tx.send(true).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(end.stopped && end.was_up);
    // Give the runtime a moment to drop the aborted reader (it holds the
    // device).
    eventually("the TUN to go away", || {
        ip(&["-o", "link", "show", "dev", "rascli0"]).is_empty()
    })
    .await;
    let routes = ip(&["route", "show"]);
    assert!(
        !routes.contains("0.0.0.0/1") && !routes.contains("10.77.0.0"),
        "{routes}"
    );
    assert_eq!(
        std::fs::read_to_string(&resolv).unwrap(),
        "nameserver 192.168.1.1\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let s = server.done.await.unwrap().unwrap();
    assert!(s.was_up, "{}", s.reason);
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&1u16.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ip
}
