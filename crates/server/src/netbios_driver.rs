//! The tokio driver of the NetBIOS datagram gateway (`[netbios]`,
//! docs/NETBIOS.md): it owns the LAN sockets, the timers of LAN name
//! registration, and the hand-over to clients' tunnels; every rule is the
//! sans-IO [`netbios::Gateway`]'s.
//!
//! ```text
//! client's session ──NetbiosSink──▶ input queue ─┐
//! LAN UDP 137/138 readers ──────────▶ input queue ┼▶ netbios_task: Gateway ─▶ LAN sockets
//! pipeline: session up/down ────────▶ input queue ┘                  └─────▶ session queues
//! ```
//!
//! This module is the handle the rest of the server holds; the task is
//! [`crate::netbios_task`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use netbios::{ClientId, Counters, DATAGRAM_SERVICE_PORT, NAME_SERVICE_PORT};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tunnel::LiveSession;

use crate::lan_interface::{lan_interface, LanInterfaceError};
use crate::netbios_config::NetbiosConfig;
use crate::netbios_ip::{parse_udp4, udp4_destination_port};
use crate::netbios_lan::LanPort;
use crate::netbios_task::GatewayTask;
use crate::SessionId;

/// Packets queued towards the gateway task before the sink drops.
const INPUT_QUEUE: usize = 1024;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetbiosStartError {
    #[error("[netbios] lan_interfaces: {0}")]
    Interface(#[from] LanInterfaceError),
    #[error("[netbios]: binding UDP 137/138 on {interface}: {source}")]
    Bind {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("[netbios]: {0}")]
    Config(String),
}

/// What the driver counts beyond the core's [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct DriverCounters {
    /// Clients' packets dropped because the gateway task lagged.
    pub(crate) client_packets_dropped_queue_full: AtomicU64,
    /// Packets for a client dropped because its tunnel queue was full or gone.
    pub(crate) to_client_dropped_tunnel_full: AtomicU64,
    /// Name registrations broadcast on the LAN (each try counts).
    pub(crate) lan_registrations_sent: AtomicU64,
    /// Sends on a LAN socket that failed.
    pub(crate) lan_send_errors: AtomicU64,
}

impl DriverCounters {
    fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            (
                "client_packets_dropped_queue_full",
                &self.client_packets_dropped_queue_full,
            ),
            (
                "to_client_dropped_tunnel_full",
                &self.to_client_dropped_tunnel_full,
            ),
            ("lan_registrations_sent", &self.lan_registrations_sent),
            ("lan_send_errors", &self.lan_send_errors),
        ]
        .into_iter()
        .map(|(n, c)| (n, c.load(Ordering::Relaxed)))
    }
}

/// A client as the sink sees it: its id and the server's end of its link.
#[derive(Debug, Clone, Copy)]
struct TunnelClient {
    id: ClientId,
    server_end: Ipv4Addr,
}

/// What the gateway task is told.
pub(crate) enum Input {
    /// A UDP 137/138 packet from a client's tunnel.
    Client {
        client: ClientId,
        from: SocketAddrV4,
        port: u16,
        payload: Vec<u8>,
    },
    /// A UDP 137/138 packet from the LAN.
    Lan {
        port: u16,
        from: SocketAddrV4,
        payload: Vec<u8>,
    },
    Up {
        client: ClientId,
        address: Ipv4Addr,
        server_end: Ipv4Addr,
        tunnel: tunnel::PacketSender,
        live: Option<Arc<LiveSession>>,
    },
    Down {
        client: ClientId,
    },
}

/// The running gateway, shared by the sink, the pipeline and the server.
pub struct NetbiosGateway {
    clients: RwLock<HashMap<Ipv4Addr, TunnelClient>>,
    /// The LAN interfaces' broadcast addresses: a client's packet to one
    /// of them is the gateway's.
    lan_broadcasts: Vec<Ipv4Addr>,
    input: mpsc::Sender<Input>,
    pub(crate) core_counters: Mutex<Counters>,
    pub(crate) counters: DriverCounters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl NetbiosGateway {
    /// Looks the LAN interfaces up, binds their sockets and starts the
    /// gateway. Must run inside a tokio runtime.
    pub fn start(config: &NetbiosConfig) -> Result<Arc<NetbiosGateway>, NetbiosStartError> {
        let core_config = config
            .validate()
            .map_err(|e| NetbiosStartError::Config(format!("{}: {}", e.key, e.message)))?;
        let mut ports = Vec::new();
        for name in &config.lan_interfaces {
            let interface = lan_interface(name)?;
            let port = LanPort::bind(interface).map_err(|source| NetbiosStartError::Bind {
                interface: name.clone(),
                source,
            })?;
            ports.push(port);
        }
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let gateway = Arc::new(NetbiosGateway {
            clients: RwLock::new(HashMap::new()),
            lan_broadcasts: ports.iter().map(|p| p.interface.broadcast).collect(),
            input: tx.clone(),
            core_counters: Mutex::new(Counters::default()),
            counters: DriverCounters::default(),
            tasks: Mutex::new(Vec::new()),
        });
        let own: Vec<Ipv4Addr> = ports.iter().map(|p| p.interface.address).collect();
        let mut tasks = Vec::new();
        for p in &ports {
            for socket in [p.name_service.clone(), p.datagram_service.clone()] {
                tasks.push(tokio::spawn(read_lan(socket, own.clone(), tx.clone())));
            }
        }
        for p in &ports {
            tracing::info!(
                "netbios: gateway on {} ({}, broadcast {})",
                p.interface.name,
                p.interface.address,
                p.interface.broadcast
            );
        }
        let driver = GatewayTask::new(core_config, ports, gateway.clone());
        tasks.push(tokio::spawn(driver.run(rx)));
        *lock(&gateway.tasks) = tasks;
        Ok(gateway)
    }

    /// A session's link is up with IPv4 `address` (the server's end is
    /// `server_end`); `tunnel` is its queue towards the client.
    pub fn client_up(
        &self,
        session: SessionId,
        address: Ipv4Addr,
        server_end: Ipv4Addr,
        tunnel: tunnel::PacketSender,
        live: Option<Arc<LiveSession>>,
    ) {
        let id = ClientId(session.raw());
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(address, TunnelClient { id, server_end });
        // Queued before any packet of the session can be (the sink finds
        // the client only now), so the task meets Up first.
        self.send_input(Input::Up {
            client: id,
            address,
            server_end,
            tunnel,
            live,
        });
    }

    /// A session ended: its names are released.
    pub fn client_down(&self, session: SessionId) {
        let id = ClientId(session.raw());
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| c.id != id);
        self.send_input(Input::Down { client: id });
    }

    /// Whether `packet` (from a client's session) is the gateway's: UDP
    /// 137/138 from a client's own address, broadcast or to the server's
    /// end of its link. Those are taken (queued for the gateway task, or
    /// dropped and counted when it lags); everything else, unicast to a
    /// LAN host's NetBIOS ports included, is routed as usual.
    pub fn take_from_client(&self, packet: &[u8]) -> bool {
        let port = match udp4_destination_port(packet) {
            Some(p @ (NAME_SERVICE_PORT | DATAGRAM_SERVICE_PORT)) => p,
            _ => return false,
        };
        let Some(udp) = parse_udp4(packet) else {
            return false;
        };
        let client = {
            let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
            match clients.get(udp.from.ip()) {
                Some(c) => *c,
                None => return false,
            }
        };
        if !self.is_for_gateway(*udp.to.ip(), client.server_end) {
            return false;
        }
        let input = Input::Client {
            client: client.id,
            from: udp.from,
            port,
            payload: udp.payload.to_vec(),
        };
        if self.input.try_send(input).is_err() {
            self.counters
                .client_packets_dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// A client on a point-to-point link broadcasts to the limited
    /// broadcast address or to a subnet's (which one depends on its
    /// stack: the LAN's, or the classful one of its own address, both end
    /// in .255 for the usual /24 and /8), or talks to the server as its
    /// name server (RFC 1002 §5.1.2, a P-node).
    fn is_for_gateway(&self, to: Ipv4Addr, server_end: Ipv4Addr) -> bool {
        to == Ipv4Addr::BROADCAST
            || to == server_end
            || self.lan_broadcasts.contains(&to)
            || to.octets()[3] == 255
    }

    /// Every counter by its stable metric name: the core's, then the
    /// driver's.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let core = lock(&self.core_counters).clone();
        core.iter().chain(self.counters.iter()).collect()
    }

    /// One line of the counters that are not zero, for the log.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .counters()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if parts.is_empty() {
            "netbios: nothing forwarded or dropped".into()
        } else {
            format!("netbios: {}", parts.join(" "))
        }
    }

    /// Stops the gateway's tasks.
    pub fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// A gateway with no LAN sockets and no task: the tests drive the
    /// task's parts themselves and read what the sink queued.
    #[cfg(test)]
    pub(crate) fn for_tests(lan_broadcasts: Vec<Ipv4Addr>) -> (Arc<Self>, mpsc::Receiver<Input>) {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let gateway = Arc::new(NetbiosGateway {
            clients: RwLock::new(HashMap::new()),
            lan_broadcasts,
            input: tx,
            core_counters: Mutex::new(Counters::default()),
            counters: DriverCounters::default(),
            tasks: Mutex::new(Vec::new()),
        });
        (gateway, rx)
    }

    fn send_input(&self, input: Input) {
        // Up and Down must not be lost: they wait for room off the
        // session's path (the pipeline calls from its own tasks).
        if let Err(mpsc::error::TrySendError::Full(input)) = self.input.try_send(input) {
            let tx = self.input.clone();
            tokio::spawn(async move {
                let _ = tx.send(input).await;
            });
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads one LAN socket forever; our own broadcasts, which the kernel
/// loops back, are not fed to the gateway (its contract).
async fn read_lan(socket: Arc<tokio::net::UdpSocket>, own: Vec<Ipv4Addr>, tx: mpsc::Sender<Input>) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("netbios: reading UDP {port} on the LAN: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let std::net::SocketAddr::V4(from) = from else {
            continue;
        };
        if own.contains(from.ip()) {
            continue;
        }
        let input = Input::Lan {
            port,
            from,
            payload: buf[..n].to_vec(),
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netbios_ip::build_udp4;
    use crate::netbios_sink::NetbiosSink;
    use tunnel::PacketSink;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
    const SERVER_END: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
    const LAN_BCAST: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 127);

    fn packet(from: Ipv4Addr, to: Ipv4Addr, port: u16) -> Vec<u8> {
        build_udp4(
            SocketAddrV4::new(from, port),
            SocketAddrV4::new(to, port),
            1,
            b"payload",
        )
        .unwrap()
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<Vec<u8>>>);
    impl PacketSink for Collect {
        fn send(&self, packet: &[u8]) {
            lock(&self.0).push(packet.to_vec());
        }
    }

    #[tokio::test]
    async fn the_sink_takes_a_clients_broadcasts_and_they_are_not_activity() {
        let (gateway, mut rx) = NetbiosGateway::for_tests(vec![LAN_BCAST]);
        let (tunnel, _tunnel_rx) = tunnel::packet_queue(8);
        gateway.client_up(SessionId::from_raw(7), CLIENT, SERVER_END, tunnel, None);
        assert!(matches!(
            rx.try_recv(),
            Ok(Input::Up {
                client: ClientId(7),
                ..
            })
        ));
        let inner = Arc::new(Collect::default());
        let sink = NetbiosSink {
            inner: inner.clone(),
            gateway: gateway.clone(),
        };
        // Taken: broadcasts (limited, the LAN's, a .255) and packets to
        // the server's end of the link, on 137 and 138.
        for (to, port) in [
            (Ipv4Addr::BROADCAST, 137),
            (LAN_BCAST, 138),
            (Ipv4Addr::new(10, 255, 255, 255), 138),
            (SERVER_END, 137),
        ] {
            assert!(
                !sink.send_from_peer(&packet(CLIENT, to, port)),
                "{to}:{port}"
            );
            match rx.try_recv() {
                Ok(Input::Client {
                    client,
                    from,
                    port: p,
                    payload,
                }) => {
                    assert_eq!(client, ClientId(7));
                    assert_eq!(from, SocketAddrV4::new(CLIENT, port));
                    assert_eq!(p, port);
                    assert_eq!(payload, b"payload");
                }
                _ => panic!("{to}:{port} was not queued for the gateway"),
            }
        }
        // Not taken, and activity: unicast to a LAN host's NetBIOS ports,
        // other ports, an address that is no client's, TCP.
        let lan_host = Ipv4Addr::new(172, 31, 0, 2);
        let mut tcp = packet(CLIENT, Ipv4Addr::BROADCAST, 137);
        tcp[9] = 6;
        let others = [
            packet(CLIENT, lan_host, 137),
            packet(CLIENT, Ipv4Addr::BROADCAST, 139),
            packet(Ipv4Addr::new(10, 0, 10, 99), Ipv4Addr::BROADCAST, 138),
            tcp,
        ];
        for p in &others {
            assert!(sink.send_from_peer(p));
        }
        assert_eq!(*lock(&inner.0), others.to_vec());
        assert!(rx.try_recv().is_err());
        // After the session ends its packets are routed as anyone's.
        gateway.client_down(SessionId::from_raw(7));
        assert!(matches!(
            rx.try_recv(),
            Ok(Input::Down {
                client: ClientId(7)
            })
        ));
        assert!(sink.send_from_peer(&packet(CLIENT, Ipv4Addr::BROADCAST, 137)));
    }

    #[tokio::test]
    async fn a_lagging_task_costs_the_packet_and_a_counter() {
        let (gateway, _rx) = NetbiosGateway::for_tests(vec![]);
        let (tunnel, _tunnel_rx) = tunnel::packet_queue(8);
        gateway.client_up(SessionId::from_raw(1), CLIENT, SERVER_END, tunnel, None);
        for _ in 0..INPUT_QUEUE + 5 {
            assert!(gateway.take_from_client(&packet(CLIENT, Ipv4Addr::BROADCAST, 138)));
        }
        // One slot went to Up.
        let dropped = gateway
            .counters()
            .into_iter()
            .find(|(n, _)| *n == "client_packets_dropped_queue_full")
            .unwrap()
            .1;
        assert_eq!(dropped, 6);
        assert!(gateway
            .summary()
            .contains("client_packets_dropped_queue_full=6"));
    }
}
