//! The server's data path from the host to the clients: packets read from
//! the TUN device are sent to the session that owns their destination
//! address. Lookups take a read lock that is never held across I/O; a full
//! session queue drops the packet and counts it, so one slow client never
//! stalls the others.
//!
//! Next to the per-address map, networks behind clients (RADIUS
//! Framed-Route, RFC 2865 §5.22; Framed-IPv6-Route, RFC 3162 §2.5) are
//! found by longest-prefix match: one hash lookup per prefix length in
//! use, and only when the address map misses and some session has a
//! route at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};

use netdev::TunDevice;

/// Packets queued per session before the router drops.
pub const SESSION_QUEUE: usize = 512;

/// Counters of the router.
#[derive(Debug, Default)]
pub struct RouterStats {
    pub routed: AtomicU64,
    /// No session owns the destination.
    pub no_route: AtomicU64,
    /// The session's queue was full.
    pub queue_full: AtomicU64,
    /// Not an IPv4/IPv6 packet.
    pub malformed: AtomicU64,
}

/// Destination address → the queue of the session that owns it.
#[derive(Default)]
pub struct Router {
    routes: RwLock<Table>,
    pub stats: RouterStats,
}

/// The router's table: addresses first, then networks.
#[derive(Default)]
struct Table {
    hosts: HashMap<IpAddr, tunnel::PacketSender>,
    /// Networks grouped by (family, prefix length), longest first; empty
    /// while no session has a framed route.
    nets: Vec<Nets>,
}

/// The networks of one family and prefix length, by masked address.
struct Nets {
    v6: bool,
    len: u8,
    by_prefix: HashMap<IpAddr, tunnel::PacketSender>,
}

impl Table {
    fn lookup(&self, dst: IpAddr) -> Option<&tunnel::PacketSender> {
        if let Some(tx) = self.hosts.get(&dst) {
            return Some(tx);
        }
        self.nets
            .iter()
            .filter(|n| n.v6 == dst.is_ipv6())
            .find_map(|n| n.by_prefix.get(&mask(dst, n.len)))
    }
}

/// `addr` with the bits past `len` cleared.
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Another session routes this network already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another session routes this network")]
pub struct PrefixTaken;

impl Router {
    pub fn new() -> Arc<Router> {
        Arc::new(Router::default())
    }

    /// Route `addrs` to a new queue; returns both ends (the sender lets
    /// the server itself talk to the session, e.g. router advertisements).
    pub fn register(&self, addrs: &[IpAddr]) -> (tunnel::PacketSender, tunnel::PacketReceiver) {
        let (tx, rx) = tunnel::packet_queue(SESSION_QUEUE);
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for addr in addrs {
            routes.hosts.insert(*addr, tx.clone());
        }
        (tx, rx)
    }

    /// Forget `addrs`.
    pub fn unregister(&self, addrs: &[IpAddr]) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        for addr in addrs {
            routes.hosts.remove(addr);
        }
    }

    /// Route the network `prefix`/`len` (host bits zero) to `tx`, unless
    /// another session routes exactly that network already: the first
    /// session keeps it.
    pub fn claim_prefix(
        &self,
        prefix: IpAddr,
        len: u8,
        tx: &tunnel::PacketSender,
    ) -> Result<(), PrefixTaken> {
        let prefix = mask(prefix, len);
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let v6 = prefix.is_ipv6();
        let at = match routes.nets.iter().position(|n| n.v6 == v6 && n.len == len) {
            Some(at) => at,
            None => {
                // Longest first, so that the first hit is the longest match.
                let at = routes
                    .nets
                    .iter()
                    .position(|n| n.len < len)
                    .unwrap_or(routes.nets.len());
                routes.nets.insert(
                    at,
                    Nets {
                        v6,
                        len,
                        by_prefix: HashMap::new(),
                    },
                );
                at
            }
        };
        let nets = &mut routes.nets[at].by_prefix;
        if nets.contains_key(&prefix) {
            return Err(PrefixTaken);
        }
        nets.insert(prefix, tx.clone());
        Ok(())
    }

    /// Forget a network claimed with [`Router::claim_prefix`] (only its
    /// claimant calls this).
    pub fn release_prefix(&self, prefix: IpAddr, len: u8) {
        let prefix = mask(prefix, len);
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let v6 = prefix.is_ipv6();
        if let Some(at) = routes.nets.iter().position(|n| n.v6 == v6 && n.len == len) {
            routes.nets[at].by_prefix.remove(&prefix);
            if routes.nets[at].by_prefix.is_empty() {
                routes.nets.remove(at);
            }
        }
    }

    /// Addresses and networks routed.
    pub fn len(&self) -> usize {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.hosts.len() + routes.nets.iter().map(|n| n.by_prefix.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hand one packet to its session.
    pub fn route(&self, packet: Bytes) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        self.route_locked(&routes, packet);
    }

    /// Hand a batch of packets to their sessions, taking the lock once.
    pub fn route_batch(&self, packets: &mut Vec<Bytes>) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        for packet in packets.drain(..) {
            self.route_locked(&routes, packet);
        }
    }

    fn route_locked(&self, routes: &Table, packet: Bytes) {
        let Some(dst) = destination(&packet) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match routes.lookup(dst) {
            Some(tx) => match tx.try_send(packet) {
                Ok(()) => {
                    self.stats.routed.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => {
                self.stats.no_route.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Read the TUN device forever, routing every packet. Packets are
    /// copied into one large buffer that is split per packet, so the
    /// allocator is visited once per ~180 packets, not once per packet.
    /// After each wake-up the reader also takes what the kernel already
    /// has (up to [`READS_PER_WAKE`] reads) and routes it all at once:
    /// a session then wakes once for several packets (small packets such
    /// as TCP ACKs come one per read) instead of once per packet.
    pub async fn run_tun_reader(self: Arc<Self>, tun: Arc<TunDevice>) {
        let chunk = 256 * 1024;
        let mut batch = netdev::RecvBatch::new(tun.mtu());
        let mut buf = BytesMut::with_capacity(chunk);
        let mut out: Vec<Bytes> = Vec::new();
        loop {
            match tun.recv_batch(&mut batch).await {
                Ok(_) => {
                    let mut reads = 1;
                    loop {
                        for packet in batch.packets() {
                            if packet.is_empty() {
                                continue;
                            }
                            if buf.capacity() < packet.len() {
                                buf = BytesMut::with_capacity(chunk);
                            }
                            buf.extend_from_slice(packet);
                            // `split` hands out the packet and keeps the rest
                            // of the allocation for the next ones.
                            out.push(buf.split().freeze());
                        }
                        if reads == READS_PER_WAKE {
                            break;
                        }
                        reads += 1;
                        match tun.try_recv_batch(&mut batch) {
                            Ok(_) => {}
                            // WouldBlock: nothing more now. Another error is
                            // met again (and reported) by the next read.
                            Err(_) => break,
                        }
                    }
                    self.route_batch(&mut out);
                }
                Err(e) => {
                    tracing::warn!("reading TUN {}: {e}", tun.name());
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// TUN reads per wake-up of the router (see [`Router::run_tun_reader`]).
const READS_PER_WAKE: usize = 16;

/// The destination address of an IPv4 or IPv6 packet.
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let b: [u8; 4] = packet[16..20].try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 if packet.len() >= 40 => {
            let b: [u8; 16] = packet[24..40].try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(dst: [u8; 4]) -> Bytes {
        let mut p = vec![0x45u8; 1];
        p.extend_from_slice(&[0; 15]);
        p.extend_from_slice(&dst);
        Bytes::from(p)
    }

    #[test]
    fn routes_by_destination_and_drops_when_full() {
        let router = Router::default();
        let (_tx, mut rx) = router.register(&["10.0.10.21".parse().unwrap()]);
        router.route(v4([10, 0, 10, 21]));
        router.route(v4([10, 0, 10, 22]));
        router.route(Bytes::from_static(&[0x12, 0x34]));
        assert_eq!(rx.try_recv().unwrap(), v4([10, 0, 10, 21]));
        assert_eq!(router.stats.no_route.load(Ordering::Relaxed), 1);
        assert_eq!(router.stats.malformed.load(Ordering::Relaxed), 1);
        for _ in 0..SESSION_QUEUE + 10 {
            router.route(v4([10, 0, 10, 21]));
        }
        assert_eq!(router.stats.queue_full.load(Ordering::Relaxed), 10);
        router.unregister(&["10.0.10.21".parse().unwrap()]);
        assert!(router.is_empty());
    }

    #[test]
    fn a_batch_is_routed_in_order_and_drained() {
        let router = Router::default();
        let (_tx, mut rx) = router.register(&["10.0.10.21".parse().unwrap()]);
        let mut first = v4([10, 0, 10, 21]).to_vec();
        first.push(1);
        let mut batch = vec![
            Bytes::from(first.clone()),
            v4([10, 0, 10, 99]),
            Bytes::from_static(&[0x45]),
            v4([10, 0, 10, 21]),
        ];
        router.route_batch(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(rx.try_recv().unwrap(), Bytes::from(first));
        assert_eq!(rx.try_recv().unwrap(), v4([10, 0, 10, 21]));
        assert!(rx.try_recv().is_err());
        assert_eq!(router.stats.routed.load(Ordering::Relaxed), 2);
        assert_eq!(router.stats.no_route.load(Ordering::Relaxed), 1);
        assert_eq!(router.stats.malformed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn networks_by_longest_prefix_after_addresses() {
        let router = Router::default();
        let (wide_tx, mut wide) = router.register(&["10.0.10.21".parse().unwrap()]);
        let (narrow_tx, mut narrow) = router.register(&["10.0.10.22".parse().unwrap()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        router.claim_prefix(ip("10.77.0.0"), 16, &wide_tx).unwrap();
        router
            .claim_prefix(ip("10.77.5.0"), 24, &narrow_tx)
            .unwrap();
        assert_eq!(
            router.claim_prefix(ip("10.77.5.0"), 24, &wide_tx),
            Err(PrefixTaken),
            "the first session keeps a network"
        );
        router.route(v4([10, 77, 5, 9]));
        router.route(v4([10, 77, 6, 9]));
        router.route(v4([10, 0, 10, 22]));
        router.route(v4([10, 78, 0, 1]));
        assert_eq!(narrow.try_recv().unwrap(), v4([10, 77, 5, 9]));
        assert_eq!(narrow.try_recv().unwrap(), v4([10, 0, 10, 22]));
        assert_eq!(wide.try_recv().unwrap(), v4([10, 77, 6, 9]));
        assert!(wide.try_recv().is_err() && narrow.try_recv().is_err());
        assert_eq!(router.stats.no_route.load(Ordering::Relaxed), 1);
        assert_eq!(router.len(), 4);
        router.release_prefix(ip("10.77.5.0"), 24);
        router.route(v4([10, 77, 5, 9]));
        assert_eq!(wide.try_recv().unwrap(), v4([10, 77, 5, 9]));
        router.release_prefix(ip("10.77.0.0"), 16);
        router.route(v4([10, 77, 5, 9]));
        assert_eq!(router.stats.no_route.load(Ordering::Relaxed), 2);
        assert_eq!(router.len(), 2);
    }

    #[test]
    fn ipv6_destination() {
        let mut p = vec![0x60u8; 1];
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(destination(&p), Some("fd00::7".parse().unwrap()));
        assert_eq!(destination(&p[..30]), None);
    }
}
