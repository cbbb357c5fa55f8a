//! Data-path throughput of one SSTP session pair in memory (no TLS, no
//! TUN): IP packets pushed into the client's queue come out of the
//! server's sink. Measures the PPP + SSTP framing and the session loops.
//!
//!     cargo bench -p tunnel --bench session_throughput

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ppp::auth::{AuthProtocol, AuthRequest, Secret};
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkConfig, LinkUp, NetworkSettings};
use tokio::sync::watch;
use tunnel::hooks_support::BoxFuture;
use tunnel::sstp_client::{self, ClientSessionConfig};
use tunnel::sstp_server::{self, ServerSessionConfig};
use tunnel::{AuthAnswer, ClientHooks, PacketSink, ServerHooks, SessionInfo};

struct Count(AtomicU64, AtomicU64);
impl PacketSink for Count {
    fn send(&self, p: &[u8]) {
        self.0.fetch_add(1, Ordering::Relaxed);
        self.1.fetch_add(p.len() as u64, Ordering::Relaxed);
    }
}

struct Hooks {
    queue: Mutex<Option<tunnel::PacketReceiver>>,
    up: Mutex<bool>,
}
impl ServerHooks for Hooks {
    fn authenticate(&self, _: &SessionInfo, _: AuthRequest) -> BoxFuture<AuthAnswer> {
        Box::pin(async {
            AuthAnswer::Secret(Secret::Password(zeroize::Zeroizing::new("pw".into())))
        })
    }
    fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        Box::pin(async {
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    Ipv4Addr::new(10, 0, 0, 1),
                    Ipv4Addr::new(10, 0, 0, 2),
                    [None, None],
                    [None, None],
                )),
                ipv6cp: None,
                ccp: None,
            })
        })
    }
    fn up(&self, _: &SessionInfo, _: &LinkUp) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        *self.up.lock().unwrap() = true;
        let rx = self.queue.lock().unwrap().take();
        Box::pin(async move { rx.ok_or_else(|| "twice".to_string()) })
    }
    fn down(&self, _: &SessionInfo, _: &tunnel::EndReason) {}
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for size in [1400usize, 512] {
            let (a, b) = tokio::io::duplex(256 * 1024);
            let (to_server, rx) = tunnel::packet_queue(1024);
            let client_hooks = Arc::new(Hooks { queue: Mutex::new(Some(rx)), up: Mutex::new(false) });
            let server_hooks = Arc::new(Hooks { queue: Mutex::new(Some(tunnel::packet_queue(1).1)), up: Mutex::new(false) });
            let sink = Arc::new(Count(AtomicU64::new(0), AtomicU64::new(0)));
            let (_stop, stop_rx) = watch::channel(false);
            let mut link = LinkConfig::server("bench");
            link.lcp.require_auth = vec![AuthProtocol::MsChapV2];
            link.ipv6cp = None;
            link.ccp = None;
            let sc = ServerSessionConfig {
                certificate_der: Arc::new(b"cert".to_vec()),
                hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
                link: link.into(),
                request_timeout: Duration::from_secs(5),
                server_name: "bench".into(),
                timers: sstp::Timers::default(),
            };
            let info = SessionInfo { id: 1, peer: "mem".into(), user: None };
            let (h, s2, st) = (server_hooks.clone(), sink.clone(), stop_rx.clone());
            tokio::spawn(async move { sstp_server::serve(a, &sc, h, s2, info, st).await });
            let mut clink = LinkConfig::client("u", "pw");
            clink.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
            clink.ipv6cp = None;
            clink.ccp = None;
            let cc = ClientSessionConfig {
                host: "bench".into(),
                server_certificate_der: b"cert".to_vec(),
                link: clink,
                response_timeout: Duration::from_secs(5),
            };
            let info = SessionInfo { id: 2, peer: "mem".into(), user: None };
            let ch = client_hooks.clone();
            tokio::spawn(async move {
                sstp_client::connect(b, cc, ch, Arc::new(Count(AtomicU64::new(0), AtomicU64::new(0))), info, stop_rx).await
            });
            while !*client_hooks.up.lock().unwrap() || !*server_hooks.up.lock().unwrap() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut packet = vec![0u8; size];
            packet[0] = 0x45;
            let packet = Bytes::from(packet);
            let total: u64 = 200_000;
            let started = Instant::now();
            for _ in 0..total {
                to_server.send(packet.clone()).await.unwrap();
            }
            while sink.0.load(Ordering::Relaxed) < total * 99 / 100 && started.elapsed() < Duration::from_secs(60) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let secs = started.elapsed().as_secs_f64();
            let got = sink.0.load(Ordering::Relaxed);
            let bytes = sink.1.load(Ordering::Relaxed);
            println!(
                "sstp session, {size}-byte packets: {got}/{total} delivered in {secs:.2} s = {:.0} kpps, {:.0} Mbit/s",
                got as f64 / secs / 1000.0,
                bytes as f64 * 8.0 / secs / 1e6
            );
        }
    });
}

/// The same test owner as a client's (only `up` is asked of it).
impl ClientHooks for Hooks {
    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        <Self as ServerHooks>::up(self, info, up)
    }
}
