//! The server's answers to a session's questions: credentials from the
//! local user store, an address from the pool, a route in the router.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ppp::auth::{AuthRequest, Rejection};
use ppp::ipcp::IpcpConfig;
use ppp::ipv6cp::Ipv6cpConfig;
use ppp::link::{LinkUp, NetworkSettings};
use tokio::sync::mpsc;
use tunnel::hooks_support::BoxFuture;
use tunnel::{AuthAnswer, PacketSink, SessionHooks, SessionInfo};

use crate::pool::StaticPool;
use crate::router::Router;
use crate::users::UserStore;
use crate::SessionId;

/// What one session holds, freed when it ends.
#[derive(Debug, Default)]
struct Held {
    routes: Vec<IpAddr>,
}

/// The local-store, static-pool implementation of [`SessionHooks`].
pub struct LocalHooks {
    pub users: Arc<UserStore>,
    pub pool: Arc<StaticPool>,
    pub router: Arc<Router>,
    pub dns: [Option<Ipv4Addr>; 2],
    pub wins: [Option<Ipv4Addr>; 2],
    /// The /64 for IPv6CP clients, if IPv6 is on.
    pub ipv6_prefix: Option<Ipv6Addr>,
    /// The link MTU announced in router advertisements.
    pub mtu: u32,
    held: Mutex<HashMap<u64, Held>>,
}

impl LocalHooks {
    pub fn new(
        users: Arc<UserStore>,
        pool: Arc<StaticPool>,
        router: Arc<Router>,
        dns: &[Ipv4Addr],
        wins: &[Ipv4Addr],
        ipv6_prefix: Option<Ipv6Addr>,
        mtu: u32,
    ) -> LocalHooks {
        LocalHooks {
            users,
            pool,
            router,
            dns: [dns.first().copied(), dns.get(1).copied()],
            wins: [wins.first().copied(), wins.get(1).copied()],
            ipv6_prefix,
            mtu,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Sessions holding resources right now.
    pub fn active(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The client's global address: the server's /64 and the interface
/// identifier IPv6CP negotiated (RFC 5072 §5).
pub fn client_ipv6(prefix: Ipv6Addr, interface_id: [u8; 8]) -> Ipv6Addr {
    let mut octets = prefix.octets();
    octets[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(octets)
}

impl SessionHooks for LocalHooks {
    fn authenticate(&self, info: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        let users = self.users.clone();
        let id = info.id;
        Box::pin(async move {
            let name = request.username.clone();
            let looked_up = tokio::task::spawn_blocking(move || users.lookup(&name)).await;
            match looked_up {
                Ok(Ok(Some(record))) if record.info.enabled => AuthAnswer::Secret(record.secret),
                Ok(Ok(Some(_))) => {
                    tracing::info!(session = id, user = %request.username, "refused: account disabled");
                    AuthAnswer::Reject(Rejection::AccountDisabled, "account disabled".into())
                }
                Ok(Ok(None)) => {
                    tracing::info!(session = id, user = %request.username, "refused: no such user");
                    // Same answer as a wrong password: no user enumeration.
                    AuthAnswer::Reject(
                        Rejection::AuthenticationFailure,
                        "authentication failed".into(),
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(session = id, "user store: {e}");
                    AuthAnswer::Reject(
                        Rejection::AuthenticationFailure,
                        "authentication failed".into(),
                    )
                }
                Err(e) => {
                    tracing::error!(session = id, "user store task: {e}");
                    AuthAnswer::Reject(
                        Rejection::AuthenticationFailure,
                        "authentication failed".into(),
                    )
                }
            }
        })
    }

    fn network(&self, info: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        let session = SessionId::from_raw(info.id);
        let result = self
            .pool
            .allocate_now(session)
            .map_err(|e| format!("no address for the client: {e}"));
        let settings = result.map(|client| {
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(info.id, Held::default());
            NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    self.pool.server(),
                    client,
                    self.dns,
                    self.wins,
                )),
                ipv6cp: self.ipv6_prefix.map(|_| Ipv6cpConfig::default()),
                ccp: None,
            }
        });
        if let Ok(s) = &settings {
            let addr = s.ipcp.as_ref().and_then(|c| c.peer_address);
            tracing::info!(session = info.id, user = ?info.user, address = ?addr, "address assigned");
        }
        Box::pin(async move { settings })
    }

    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<mpsc::Receiver<Bytes>, String>> {
        let mut routes = Vec::new();
        if let Some(v4) = &up.ipv4 {
            routes.push(IpAddr::V4(v4.peer));
        }
        if let (Some(v6), Some(prefix)) = (&up.ipv6, self.ipv6_prefix) {
            routes.push(IpAddr::V6(client_ipv6(prefix, v6.peer_interface_id)));
        }
        let (tx, rx) = self.router.register(&routes);
        if let Some(h) = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&info.id)
        {
            h.routes = routes;
        }
        if let (Some(v6), Some(prefix)) = (&up.ipv6, self.ipv6_prefix) {
            // RFC 4861 §6.2.4: a few initial unsolicited advertisements, so
            // the client learns the prefix even if it missed the first.
            let ra = Bytes::from(crate::ra::router_advertisement(
                v6.local_interface_id,
                prefix,
                self.mtu,
            ));
            tokio::spawn(async move {
                for delay in [0u64, 2, 6] {
                    tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
                    if tx.send(ra.clone()).await.is_err() {
                        break;
                    }
                }
            });
        }
        Box::pin(async move { Ok(rx) })
    }

    fn down(&self, info: &SessionInfo) {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&info.id);
        if let Some(h) = held {
            self.router.unregister(&h.routes);
        }
        let freed = self.pool.release_now(SessionId::from_raw(info.id));
        tracing::info!(session = info.id, user = ?info.user, address = ?freed, "session ended, address freed");
    }
}

/// Received client packets go to the TUN device through the batching
/// writer; a full queue drops.
pub struct TunSink(pub Arc<netdev::TunWriter>);

impl PacketSink for TunSink {
    fn send(&self, packet: &[u8]) {
        self.0.send(packet);
    }
    fn flush(&self) {
        self.0.flush();
    }
}

/// A sink that drops everything (no TUN: tests and benchmarks).
pub struct NullSink;

impl PacketSink for NullSink {
    fn send(&self, _: &[u8]) {}
}
