//! The NetBIOS gateway's task: it owns the sans-IO [`netbios::Gateway`],
//! feeds it what the LAN readers, the clients' sessions and the pipeline
//! queue, registers names on the LAN by broadcast (RFC 1002 §5.1.1.1),
//! sends what the core wants sent, and hands clients their datagrams as
//! their tunnels take them. The handle is [`crate::netbios_driver`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use netbios::name_service::{flags, NbEntry, NodeType};
use netbios::{
    ClientId, Counters, Datagram, Destination, Event, Gateway, GatewayConfig, LanVerdict,
    NamePacket, NetbiosName, Opcode, Rcode, Transmit, DATAGRAM_SERVICE_PORT, NAME_SERVICE_PORT,
};
use tokio::sync::mpsc;
use tunnel::LiveSession;

use crate::netbios_driver::{lock, Input, NetbiosGateway};
use crate::netbios_ip::build_udp4;
use crate::netbios_lan::LanPort;

/// RFC 1002 §6: BCAST_REQ_RETRY_TIMEOUT and BCAST_REQ_RETRY_COUNT, the
/// B-node's pace when it registers a name by broadcast (§5.1.1.1).
const BCAST_REQ_RETRY_TIMEOUT: Duration = Duration::from_millis(250);
const BCAST_REQ_RETRY_COUNT: u8 = 3;
/// TTL of the registrations we broadcast (Samba's and Windows' 3 days;
/// B-nodes do not time names out, a NBNS would).
const REGISTRATION_TTL: u32 = 300_000;
/// A client that sent other IP traffic this recently, or whose queue
/// towards its tunnel is this full, is busy with session traffic
/// (DisableMcastFwdWhenSessionTraffic).
const BUSY_WINDOW: Duration = Duration::from_secs(1);
const BUSY_QUEUE_FRACTION: usize = 4;
/// How often the session-traffic signal is refreshed and queued
/// datagrams retried, and how often a changed counter summary is logged.
const TICK: Duration = Duration::from_millis(200);
const SUMMARY_EVERY: Duration = Duration::from_secs(300);

/// A client as the task knows it.
struct ClientTunnel {
    address: Ipv4Addr,
    server_end: Ipv4Addr,
    tunnel: tunnel::PacketSender,
    live: Option<Arc<LiveSession>>,
}

/// A name being registered on the LAN by broadcast (RFC 1002 §5.1.1.1).
struct Registration {
    trn_id: u16,
    group: bool,
    address: Ipv4Addr,
    sent: u8,
    next: Instant,
}

/// The gateway task's state.
pub(crate) struct GatewayTask {
    gateway: Gateway,
    ports: Vec<LanPort>,
    shared: Arc<NetbiosGateway>,
    clients: HashMap<ClientId, ClientTunnel>,
    registering: HashMap<NetbiosName, Registration>,
    /// Names registered on the LAN, with what to release them with.
    on_lan: HashMap<NetbiosName, NbEntry>,
    next_trn_id: u16,
    next_ip_id: u16,
    last_summary: Instant,
    summary_counters: Counters,
    /// The socket datagrams for the host's own NetBIOS service leave from
    /// (bound on first use); see `Destination::Server`.
    to_host: Option<tokio::net::UdpSocket>,
}

impl GatewayTask {
    pub(crate) fn new(
        config: GatewayConfig,
        ports: Vec<LanPort>,
        shared: Arc<NetbiosGateway>,
    ) -> GatewayTask {
        let now = Instant::now();
        GatewayTask {
            gateway: Gateway::new(config, now),
            ports,
            shared,
            clients: HashMap::new(),
            registering: HashMap::new(),
            on_lan: HashMap::new(),
            next_trn_id: rand::random(),
            next_ip_id: rand::random(),
            last_summary: now,
            summary_counters: Counters::default(),
            to_host: None,
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .registering
                .values()
                .map(|r| r.next)
                .min()
                .map(tokio::time::Instant::from_std);
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = rx.recv() => {
                    let Some(input) = input else { return };
                    let mut batch = vec![input];
                    // What else is there now goes in one go: LAN datagrams
                    // read together are one batch for
                    // RcvDgSubmittedperGroupName.
                    while batch.len() < 64 {
                        match rx.try_recv() {
                            Ok(i) => batch.push(i),
                            Err(_) => break,
                        }
                    }
                    self.handle_batch(batch).await;
                }
                _ = timer => {}
                _ = tick.tick() => self.refresh_session_traffic(),
            }
            self.registrations(Instant::now()).await;
            self.drain().await;
            self.deliver();
            *lock(&self.shared.core_counters) = self.gateway.counters().clone();
            self.maybe_log_summary();
        }
    }

    async fn handle_batch(&mut self, batch: Vec<Input>) {
        let now = Instant::now();
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        for input in batch {
            if !matches!(
                input,
                Input::Lan {
                    port: DATAGRAM_SERVICE_PORT,
                    ..
                }
            ) {
                self.lan_datagrams(now, &mut datagrams);
            }
            match input {
                Input::Lan {
                    port: DATAGRAM_SERVICE_PORT,
                    payload,
                    ..
                } => datagrams.push(payload),
                Input::Lan { from, payload, .. } => self.lan_name_packet(now, from, &payload),
                Input::Client {
                    client,
                    from,
                    port,
                    payload,
                } => {
                    if port == NAME_SERVICE_PORT {
                        self.gateway
                            .handle_client_name_packet(now, client, from, &payload);
                    } else {
                        self.gateway.handle_client_datagram(now, client, &payload);
                    }
                }
                Input::Up {
                    client,
                    address,
                    server_end,
                    tunnel,
                    live,
                } => {
                    self.gateway.add_client(client, address);
                    self.clients.insert(
                        client,
                        ClientTunnel {
                            address,
                            server_end,
                            tunnel,
                            live,
                        },
                    );
                }
                Input::Down { client } => {
                    self.gateway.remove_client(now, client);
                    self.clients.remove(&client);
                }
            }
        }
        self.lan_datagrams(now, &mut datagrams);
    }

    fn lan_datagrams(&mut self, now: Instant, datagrams: &mut Vec<Vec<u8>>) {
        if datagrams.is_empty() {
            return;
        }
        let batch: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        self.gateway.handle_lan_datagrams(now, &batch);
        datagrams.clear();
    }

    /// A name service packet from the LAN: an answer to one of our
    /// registrations, or for the gateway.
    fn lan_name_packet(&mut self, now: Instant, from: SocketAddrV4, payload: &[u8]) {
        if let Ok(p) = NamePacket::decode(payload) {
            if p.header.response && p.header.opcode == Opcode::Registration {
                let name = p.answers.first().map(|a| a.name.clone());
                if let Some(name) = name {
                    if self
                        .registering
                        .get(&name)
                        .is_some_and(|r| r.trn_id == p.header.trn_id)
                    {
                        // RFC 1002 §5.1.1.1: a NEGATIVE NAME REGISTRATION
                        // RESPONSE ends the registration, refused; a
                        // positive one (a name server's) accepts it.
                        let r = self.registering.remove(&name);
                        let verdict = if p.header.rcode == Rcode::Ok {
                            if let Some(r) = r {
                                self.on_lan.insert(name.clone(), entry(r.group, r.address));
                            }
                            LanVerdict::Accepted
                        } else {
                            tracing::info!(
                                "netbios: {from} refused the registration of {name} ({})",
                                p.header.rcode.mnemonic()
                            );
                            LanVerdict::Refused(p.header.rcode)
                        };
                        self.gateway.handle_lan_verdict(now, &name, verdict);
                        return;
                    }
                }
            }
        }
        self.gateway.handle_lan_name_packet(now, from, payload);
    }

    /// Registrations whose time came: the next broadcast, or, after
    /// BCAST_REQ_RETRY_COUNT of them without objection, the name is ours
    /// (RFC 1002 §5.1.1.1: then a NAME OVERWRITE DEMAND, §4.2.3).
    async fn registrations(&mut self, now: Instant) {
        let due: Vec<NetbiosName> = self
            .registering
            .iter()
            .filter(|(_, r)| r.next <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(r) = self.registering.get_mut(&name) else {
                continue;
            };
            let e = entry(r.group, r.address);
            let trn_id = r.trn_id;
            if r.sent < BCAST_REQ_RETRY_COUNT {
                r.sent += 1;
                r.next = now + BCAST_REQ_RETRY_TIMEOUT;
                let p = NamePacket::registration_request(
                    trn_id,
                    name.clone(),
                    REGISTRATION_TTL,
                    e,
                    true,
                );
                self.shared
                    .counters
                    .lan_registrations_sent
                    .fetch_add(1, Ordering::Relaxed);
                self.broadcast(NAME_SERVICE_PORT, &p.encode()).await;
            } else {
                self.registering.remove(&name);
                let mut demand = NamePacket::registration_request(
                    trn_id,
                    name.clone(),
                    REGISTRATION_TTL,
                    e,
                    true,
                );
                // §4.2.3: the overwrite demand is a registration with RD clear.
                demand.header.nm_flags = flags::B;
                self.broadcast(NAME_SERVICE_PORT, &demand.encode()).await;
                self.on_lan.insert(name.clone(), e);
                self.gateway
                    .handle_lan_verdict(now, &name, LanVerdict::Accepted);
            }
        }
    }

    /// Sends what the core wants sent and acts on its events.
    async fn drain(&mut self) {
        loop {
            let mut did = false;
            while let Some(t) = self.gateway.poll_transmit() {
                did = true;
                self.transmit(t).await;
            }
            while let Some(ev) = self.gateway.poll_event() {
                did = true;
                self.event(ev).await;
            }
            if !did {
                return;
            }
            // A verdict given while handling an event may queue more.
            self.registrations(Instant::now()).await;
        }
    }

    async fn event(&mut self, ev: Event) {
        match &ev {
            Event::RegisterOnLan {
                name,
                group,
                address,
            } => {
                tracing::debug!("{ev}");
                let trn_id = self.trn_id();
                self.registering.insert(
                    name.clone(),
                    Registration {
                        trn_id,
                        group: *group,
                        address: *address,
                        sent: 0,
                        next: Instant::now(),
                    },
                );
            }
            Event::ReleaseOnLan { name, .. } => {
                tracing::debug!("{ev}");
                self.registering.remove(name);
                if let Some(e) = self.on_lan.remove(name) {
                    // RFC 1002 §5.1.1.4: a B-node broadcasts a NAME
                    // RELEASE REQUEST for a name it gives up.
                    let trn_id = self.trn_id();
                    let p = NamePacket::release_request(trn_id, name.clone(), e, true);
                    self.broadcast(NAME_SERVICE_PORT, &p.encode()).await;
                }
            }
            Event::NameRegistered { .. } | Event::NameReleased { .. } => {
                tracing::info!("{ev}")
            }
            Event::NameRefused { .. } | Event::NameDefended { .. } | Event::Malformed { .. } => {
                tracing::info!("{ev}")
            }
        }
    }

    async fn transmit(&mut self, t: Transmit) {
        match t.to {
            Destination::Client(client, to) => {
                let Some(c) = self.clients.get(&client) else {
                    return;
                };
                let from = SocketAddrV4::new(c.server_end, t.port);
                let id = self.ip_id();
                let Some(c) = self.clients.get(&client) else {
                    return;
                };
                queue_udp4(&c.tunnel, &self.shared.counters, from, to, id, &t.payload);
            }
            Destination::LanUnicast(to) => {
                let port = self
                    .ports
                    .iter()
                    .find(|p| p.interface.on_subnet(*to.ip()))
                    .or(self.ports.first());
                if let Some(p) = port {
                    if let Err(e) = p.socket(t.port).send_to(&t.payload, to).await {
                        self.send_failed(&p.interface.name, e);
                    }
                }
            }
            Destination::LanBroadcast => self.broadcast(t.port, &t.payload).await,
            // `[netbios] server_names`: the host's own NetBIOS service
            // holds them and listens on the first LAN interface's address
            // (the seed's NCB_Receive_Datagram posted on the server). The
            // datagram leaves from a socket that is not bound to the LAN
            // device: sent from our device-bound port 138, Linux could
            // hand it back to that same socket (both match the local
            // delivery equally well); from this one only sockets on the
            // host's address or wildcard receive it. The RFC 1002 §4.4
            // header carries the client's address and port, so the UDP
            // source port does not matter.
            Destination::Server => {
                let Some(p) = self.ports.first() else {
                    return;
                };
                let to = SocketAddrV4::new(p.interface.address, t.port);
                if self.to_host.is_none() {
                    match tokio::net::UdpSocket::bind((p.interface.address, 0)).await {
                        Ok(socket) => self.to_host = Some(socket),
                        Err(e) => return self.send_failed(&p.interface.name, e),
                    }
                }
                if let Some(socket) = &self.to_host {
                    if let Err(e) = socket.send_to(&t.payload, to).await {
                        self.send_failed(&p.interface.name, e);
                    }
                }
            }
        }
    }

    /// Sends `payload` to the subnet broadcast address of every LAN
    /// interface, from its `port` socket.
    async fn broadcast(&self, port: u16, payload: &[u8]) {
        for p in &self.ports {
            let to = SocketAddrV4::new(p.interface.broadcast, port);
            if let Err(e) = p.socket(port).send_to(payload, to).await {
                self.send_failed(&p.interface.name, e);
            }
        }
    }

    fn send_failed(&self, interface: &str, e: std::io::Error) {
        let n = self
            .shared
            .counters
            .lan_send_errors
            .fetch_add(1, Ordering::Relaxed);
        // One line for the first failure and then every 100th.
        if n.is_multiple_of(100) {
            tracing::warn!("netbios: sending on {interface}: {e}");
        }
    }

    /// Hands each client what the core buffered for it while its tunnel
    /// queue has room; the rest waits for the next round (the core's
    /// buffers, not the tunnel's, absorb a burst, and bound it).
    fn deliver(&mut self) {
        let ids: Vec<ClientId> = self.clients.keys().copied().collect();
        for client in ids {
            while self.gateway.pending_datagrams(client) > 0 {
                let id = self.ip_id();
                let Some(c) = self.clients.get(&client) else {
                    break;
                };
                if !c.tunnel.has_room() {
                    break;
                }
                let Some(payload) = self.gateway.poll_client_datagram(client) else {
                    break;
                };
                // The datagram keeps its LAN sender as IP source
                // (RFC 1002 §4.4.1 SOURCE_IP/SOURCE_PORT), so the client's
                // answer goes straight to that host.
                let from = Datagram::decode(&payload)
                    .map(|d| SocketAddrV4::new(d.header.source_ip, d.header.source_port))
                    .unwrap_or(SocketAddrV4::new(c.server_end, DATAGRAM_SERVICE_PORT));
                let to = SocketAddrV4::new(c.address, DATAGRAM_SERVICE_PORT);
                // The router may have filled the queue since `has_room`:
                // then it is dropped and counted as one that found it full.
                queue_udp4(&c.tunnel, &self.shared.counters, from, to, id, &payload);
            }
        }
    }

    /// DisableMcastFwdWhenSessionTraffic needs to know which clients are
    /// busy: those that sent other traffic within [`BUSY_WINDOW`] (the
    /// idle timer's clock, which NetBIOS packets do not move) or whose
    /// tunnel queue is a quarter full.
    fn refresh_session_traffic(&mut self) {
        for (id, c) in &self.clients {
            let recent = c
                .live
                .as_ref()
                .and_then(|l| l.last_activity())
                .is_some_and(|t| t.elapsed() < BUSY_WINDOW);
            let queued = c.tunnel.len();
            let busy = recent || queued * BUSY_QUEUE_FRACTION >= c.tunnel.max_capacity();
            self.gateway.set_session_traffic(*id, busy);
        }
    }

    fn maybe_log_summary(&mut self) {
        if self.last_summary.elapsed() < SUMMARY_EVERY {
            return;
        }
        self.last_summary = Instant::now();
        if *self.gateway.counters() != self.summary_counters {
            self.summary_counters = self.gateway.counters().clone();
            tracing::info!("{}", self.shared.summary());
        }
    }

    fn trn_id(&mut self) -> u16 {
        self.next_trn_id = self.next_trn_id.wrapping_add(1);
        self.next_trn_id
    }

    fn ip_id(&mut self) -> u16 {
        self.next_ip_id = self.next_ip_id.wrapping_add(1);
        self.next_ip_id
    }
}

/// The NB entry of a name we register for a client: a B-node's
/// (RFC 1002 §4.2.1.3 ONT), with the client's address.
fn entry(group: bool, address: Ipv4Addr) -> NbEntry {
    NbEntry {
        group,
        node_type: NodeType::B,
        address,
    }
}

/// Queue `payload` in UDP from `from` to `to` for a client's tunnel; one
/// that does not fit an IPv4 packet or finds the queue full is counted
/// as dropped.
fn queue_udp4(
    tunnel: &tunnel::PacketSender,
    counters: &crate::netbios_driver::DriverCounters,
    from: SocketAddrV4,
    to: SocketAddrV4,
    id: u16,
    payload: &[u8],
) {
    let queued =
        build_udp4(from, to, id, payload).is_some_and(|p| tunnel.try_send(Bytes::from(p)).is_ok());
    if !queued {
        counters
            .to_client_dropped_tunnel_full
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netbios_ip::parse_udp4;
    use netbios::DatagramType;

    const A: ClientId = ClientId(1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
    const SERVER_END: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
    const LAN_HOST: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);

    fn pca() -> NetbiosName {
        NetbiosName::new("PCA", 0x00).unwrap()
    }

    /// A task with no LAN sockets and client A up; its tunnel queue.
    async fn rig() -> (GatewayTask, tunnel::PacketReceiver) {
        let (shared, _rx) = NetbiosGateway::for_tests(vec![]);
        let mut task = GatewayTask::new(GatewayConfig::default(), Vec::new(), shared);
        let (tunnel, tunnel_rx) = tunnel::packet_queue(8);
        task.handle_batch(vec![Input::Up {
            client: A,
            address: CLIENT,
            server_end: SERVER_END,
            tunnel,
            live: None,
        }])
        .await;
        (task, tunnel_rx)
    }

    fn from_client(packet: &NamePacket) -> Input {
        Input::Client {
            client: A,
            from: SocketAddrV4::new(CLIENT, NAME_SERVICE_PORT),
            port: NAME_SERVICE_PORT,
            payload: packet.encode(),
        }
    }

    /// The name service packet in an IP packet for the client, checked to
    /// come from the server's end of the link.
    fn name_packet_to_client(ip: &[u8]) -> NamePacket {
        let udp = parse_udp4(ip).expect("an IPv4/UDP packet");
        assert_eq!(udp.from, SocketAddrV4::new(SERVER_END, NAME_SERVICE_PORT));
        assert_eq!(udp.to, SocketAddrV4::new(CLIENT, NAME_SERVICE_PORT));
        NamePacket::decode(udp.payload).unwrap()
    }

    fn sent_registrations(task: &GatewayTask) -> u64 {
        task.shared
            .counters
            .lan_registrations_sent
            .load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_unicast_registration_waits_for_three_silent_broadcasts() {
        let (mut task, mut tunnel) = rig().await;
        let request =
            NamePacket::registration_request(0x42, pca(), 300, entry(false, CLIENT), false);
        task.handle_batch(vec![from_client(&request)]).await;
        task.drain().await;
        // RFC 1002 §4.2.16: the client is told to wait; the first
        // broadcast went out.
        let wack = name_packet_to_client(&tunnel.try_recv().unwrap());
        assert_eq!(wack.header.opcode, Opcode::Wack);
        assert_eq!(wack.header.trn_id, 0x42);
        assert_eq!(sent_registrations(&task), 1);
        let t0 = Instant::now();
        task.registrations(t0 + Duration::from_millis(260)).await;
        task.registrations(t0 + Duration::from_millis(520)).await;
        assert_eq!(sent_registrations(&task), 3);
        task.drain().await;
        assert!(
            tunnel.try_recv().is_err(),
            "no verdict before the last wait"
        );
        task.registrations(t0 + Duration::from_millis(780)).await;
        task.drain().await;
        let answer = name_packet_to_client(&tunnel.try_recv().unwrap());
        assert_eq!(
            (answer.header.opcode, answer.header.rcode),
            (Opcode::Registration, Rcode::Ok)
        );
        assert_eq!(sent_registrations(&task), 3);
        assert!(task.on_lan.contains_key(&pca()));
        assert_eq!(task.gateway.client_names(A).len(), 1);
        // The session ends: the name is released on the LAN.
        task.handle_batch(vec![Input::Down { client: A }]).await;
        task.drain().await;
        assert!(task.on_lan.is_empty());
        assert!(task.gateway.client_names(A).is_empty());
    }

    #[tokio::test]
    async fn a_lan_refusal_reaches_a_broadcasting_client() {
        let (mut task, mut tunnel) = rig().await;
        let request =
            NamePacket::registration_request(0x43, pca(), 300, entry(false, CLIENT), true);
        task.handle_batch(vec![from_client(&request)]).await;
        task.drain().await;
        // A broadcast requester gets no WACK.
        assert!(tunnel.try_recv().is_err());
        let trn_id = task.registering[&pca()].trn_id;
        // A response to another transaction is not ours.
        let other = NamePacket::registration_response(
            trn_id.wrapping_add(1),
            pca(),
            Rcode::Active,
            0,
            entry(false, LAN_HOST),
        );
        let nmbd = SocketAddrV4::new(LAN_HOST, NAME_SERVICE_PORT);
        task.lan_name_packet(Instant::now(), nmbd, &other.encode());
        assert!(task.registering.contains_key(&pca()));
        let refusal = NamePacket::registration_response(
            trn_id,
            pca(),
            Rcode::Active,
            0,
            entry(false, LAN_HOST),
        );
        task.lan_name_packet(Instant::now(), nmbd, &refusal.encode());
        task.drain().await;
        let answer = name_packet_to_client(&tunnel.try_recv().unwrap());
        assert_eq!(answer.header.trn_id, 0x43);
        assert_eq!(answer.header.rcode, Rcode::Active);
        assert!(task.registering.is_empty());
        assert!(task.on_lan.is_empty());
        assert!(task.gateway.client_names(A).is_empty());
        assert_eq!(task.gateway.counters().names_refused_by_lan, 1);
    }

    #[tokio::test]
    async fn a_lan_datagram_for_a_clients_name_is_delivered_as_ip() {
        let (mut task, mut tunnel) = rig().await;
        let request = NamePacket::registration_request(1, pca(), 300, entry(false, CLIENT), true);
        task.handle_batch(vec![from_client(&request)]).await;
        task.drain().await;
        task.registrations(Instant::now() + Duration::from_secs(2))
            .await;
        task.registrations(Instant::now() + Duration::from_secs(4))
            .await;
        task.registrations(Instant::now() + Duration::from_secs(6))
            .await;
        task.drain().await;
        assert!(task.on_lan.contains_key(&pca()));
        let datagram = Datagram::data(
            DatagramType::DirectUnique,
            9,
            LAN_HOST,
            NetbiosName::new("LANHOST", 0).unwrap(),
            pca(),
            b"hello".to_vec(),
        )
        .encode();
        task.handle_batch(vec![Input::Lan {
            port: DATAGRAM_SERVICE_PORT,
            from: SocketAddrV4::new(LAN_HOST, DATAGRAM_SERVICE_PORT),
            payload: datagram.clone(),
        }])
        .await;
        task.deliver();
        let ip = tunnel.try_recv().unwrap();
        let udp = parse_udp4(&ip).unwrap();
        // RFC 1002 §4.4.1: from the datagram's SOURCE_IP and SOURCE_PORT.
        assert_eq!(udp.from, SocketAddrV4::new(LAN_HOST, DATAGRAM_SERVICE_PORT));
        assert_eq!(udp.to, SocketAddrV4::new(CLIENT, DATAGRAM_SERVICE_PORT));
        assert_eq!(udp.payload, datagram);
        assert_eq!(task.gateway.counters().unique_forwarded, 1);
    }

    #[tokio::test]
    async fn a_full_tunnel_keeps_datagrams_in_the_gateway() {
        let (shared, _rx) = NetbiosGateway::for_tests(vec![]);
        let mut task = GatewayTask::new(GatewayConfig::default(), Vec::new(), shared);
        let (tunnel, mut tunnel_rx) = tunnel::packet_queue(1);
        tunnel
            .try_send(Bytes::from_static(b"session traffic"))
            .unwrap();
        task.handle_batch(vec![Input::Up {
            client: A,
            address: CLIENT,
            server_end: SERVER_END,
            tunnel,
            live: None,
        }])
        .await;
        let request = NamePacket::registration_request(1, pca(), 300, entry(false, CLIENT), true);
        task.handle_batch(vec![from_client(&request)]).await;
        task.drain().await;
        for s in [2, 4, 6] {
            task.registrations(Instant::now() + Duration::from_secs(s))
                .await;
        }
        task.drain().await;
        let datagram = Datagram::data(
            DatagramType::DirectUnique,
            9,
            LAN_HOST,
            NetbiosName::new("LANHOST", 0).unwrap(),
            pca(),
            b"hello".to_vec(),
        )
        .encode();
        task.handle_batch(vec![Input::Lan {
            port: DATAGRAM_SERVICE_PORT,
            from: SocketAddrV4::new(LAN_HOST, DATAGRAM_SERVICE_PORT),
            payload: datagram,
        }])
        .await;
        task.deliver();
        assert_eq!(task.gateway.pending_datagrams(A), 1, "waits for room");
        assert_eq!(
            tunnel_rx.try_recv().unwrap(),
            Bytes::from_static(b"session traffic")
        );
        task.deliver();
        assert_eq!(task.gateway.pending_datagrams(A), 0);
        assert!(parse_udp4(&tunnel_rx.try_recv().unwrap()).is_some());
    }

    /// DisableMcastFwdWhenSessionTraffic 1 (the default): group datagrams
    /// skip a client whose tunnel queue is a quarter full or that sent
    /// other traffic within the last second.
    #[tokio::test]
    async fn busy_clients_skip_group_datagrams() {
        let (shared, _rx) = NetbiosGateway::for_tests(vec![]);
        let config = netbios::Knobs {
            multicast_forward_rate: 0,
            ..netbios::Knobs::default()
        }
        .validate()
        .unwrap();
        let mut task = GatewayTask::new(config, Vec::new(), shared);
        let (tunnel, mut tunnel_rx) = tunnel::packet_queue(4);
        let live = Arc::new(LiveSession::new());
        task.handle_batch(vec![Input::Up {
            client: A,
            address: CLIENT,
            server_end: SERVER_END,
            tunnel: tunnel.clone(),
            live: Some(live.clone()),
        }])
        .await;
        let group = NetbiosName::new("WORKGROUP", 0x1e).unwrap();
        let request =
            NamePacket::registration_request(1, group.clone(), 300, entry(true, CLIENT), true);
        task.handle_batch(vec![from_client(&request)]).await;
        task.drain().await;
        for s in [2, 4, 6] {
            task.registrations(Instant::now() + Duration::from_secs(s))
                .await;
        }
        task.drain().await;
        let announcement = Datagram::data(
            DatagramType::DirectGroup,
            9,
            LAN_HOST,
            NetbiosName::new("LANHOST", 0).unwrap(),
            group,
            b"announcement".to_vec(),
        )
        .encode();
        async fn send(task: &mut GatewayTask, payload: &[u8]) {
            let input = Input::Lan {
                port: DATAGRAM_SERVICE_PORT,
                from: SocketAddrV4::new(LAN_HOST, DATAGRAM_SERVICE_PORT),
                payload: payload.to_vec(),
            };
            task.handle_batch(vec![input]).await;
            task.deliver();
        }
        // A new session that sent nothing yet is not busy.
        task.refresh_session_traffic();
        send(&mut task, &announcement).await;
        assert!(tunnel_rx.try_recv().is_ok());
        assert_eq!(task.gateway.counters().group_forwarded, 1);
        // Its queue a quarter full: busy.
        tunnel.try_send(Bytes::from_static(b"x")).unwrap();
        task.refresh_session_traffic();
        send(&mut task, &announcement).await;
        assert_eq!(task.gateway.counters().dropped_session_traffic, 1);
        tunnel_rx.try_recv().unwrap();
        // Other traffic just now: busy.
        let mut reported = tunnel::SessionStats::default();
        let stats = tunnel::SessionStats {
            packets_in: 1,
            ip_bytes_in: 40,
            ..Default::default()
        };
        live.add(&mut reported, &stats);
        task.refresh_session_traffic();
        send(&mut task, &announcement).await;
        assert_eq!(task.gateway.counters().dropped_session_traffic, 2);
        assert!(tunnel_rx.try_recv().is_err());
    }
}
