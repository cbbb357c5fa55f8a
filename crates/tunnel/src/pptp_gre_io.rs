//! The server's raw GRE socket (IP protocol 47), shared by every PPTP
//! call: one reader task hands each datagram to its call's session, and
//! sessions write through the same socket.
//!
//! Which call a datagram belongs to is decided by the sans-IO
//! [`pptp::demux::CallTable`] (Call ID and client address); this file only
//! reads in batches (`recvmmsg`), queues each datagram on its call's
//! bounded channel (dropped when the queue is full), and writes the
//! [`DropLog`]'s summary line at most every `DROP_LOG_INTERVAL` (a flood
//! costs a line, not a line per datagram).
//!
//! The raw socket needs root (CAP_NET_RAW).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pptp::demux::{CallTable, DropLog, Malformed, Misroute};
use tokio::net::UdpSocket;

use crate::ppp_over_gre;
use crate::pptp_server::{BATCH, DROP_LOG_INTERVAL};

/// The shared raw GRE socket and the table of calls.
pub struct GreDemux {
    socket: UdpSocket,
    /// Each call's client address and queue, by our Call ID.
    table: Mutex<CallTable<crate::PacketSender>>,
    /// Datagrams dropped: not GRE, truncated, unknown call, wrong source,
    /// queue full.
    dropped: AtomicU64,
}

impl GreDemux {
    /// Opens the raw GRE socket (needs root or CAP_NET_RAW).
    pub fn open() -> io::Result<Arc<GreDemux>> {
        let socket = ppp_over_gre::open_raw_socket(4 << 20, None)?;
        Ok(Arc::new(GreDemux {
            socket,
            table: Mutex::new(CallTable::new()),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Calls registered right now.
    pub fn calls(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallTable<crate::PacketSender>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads GRE datagrams forever and hands each to its call; drops are
    /// counted and summarised in the log at most every
    /// `DROP_LOG_INTERVAL`.
    pub async fn run(self: Arc<Self>) {
        let mut batch = ppp_over_gre::RecvBatch::new();
        let mut drops = DropLog::new(DROP_LOG_INTERVAL);
        let fd = self.socket.as_raw_fd();
        loop {
            let readable = self.socket.readable();
            let ready = match drops.due() {
                Some(t) => tokio::time::timeout_at(tokio::time::Instant::from_std(t), readable)
                    .await
                    .ok(),
                None => Some(readable.await),
            };
            if let Some(Err(e)) = ready {
                tracing::error!("GRE socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if ready.is_some() {
                // Up to BATCH system calls of up to ppp_over_gre::BATCH
                // datagrams each, then a look at other work.
                for _ in 0..BATCH {
                    match self
                        .socket
                        .try_io(tokio::io::Interest::READABLE, || batch.recv(fd))
                    {
                        Ok(n) => self.deliver_batch(&batch, n, &mut drops),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::debug!("GRE socket: {e}");
                            break;
                        }
                    }
                }
            }
            if let Some(summary) = drops.poll_summary(Instant::now()) {
                tracing::warn!("{summary}");
            }
        }
    }

    /// Route the datagrams of one `recvmmsg`, taking the table lock once.
    fn deliver_batch(&self, batch: &ppp_over_gre::RecvBatch, n: usize, drops: &mut DropLog) {
        let table = self.lock();
        for i in 0..n {
            match batch.get(i) {
                Some(datagram) => self.deliver_locked(&table, datagram, drops),
                None => self.drop_misrouted(Misroute::Malformed(Malformed::Unreadable), drops),
            }
        }
    }

    fn deliver_locked(
        &self,
        table: &CallTable<crate::PacketSender>,
        datagram: &[u8],
        drops: &mut DropLog,
    ) {
        match table.route(datagram) {
            Ok(routed) => {
                let gre = Bytes::copy_from_slice(&datagram[routed.gre]);
                if routed.target.try_send(gre).is_err() {
                    drops.count_queue_full();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(why) => self.drop_misrouted(why, drops),
        }
    }

    fn drop_misrouted(&self, why: Misroute, drops: &mut DropLog) {
        tracing::trace!("GRE dropped: {why}");
        drops.count(&why);
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A demultiplexer over a UDP socket on loopback, for tests that only
    /// need one to exist (no raw socket, so no root).
    #[cfg(test)]
    pub(crate) async fn for_tests() -> Arc<GreDemux> {
        Arc::new(GreDemux {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            table: Mutex::new(CallTable::new()),
            dropped: AtomicU64::new(0),
        })
    }

    #[cfg(test)]
    fn deliver(&self, datagram: &[u8]) {
        let table = self.lock();
        self.deliver_locked(&table, datagram, &mut DropLog::new(DROP_LOG_INTERVAL));
    }

    /// A Call ID no other call uses, routed to `peer` through `tx`; `None`
    /// if all are taken.
    pub(crate) fn register(&self, peer: Ipv4Addr, tx: crate::PacketSender) -> Option<u16> {
        self.lock().register(peer, tx)
    }

    pub(crate) fn release(&self, id: u16) {
        self.lock().release(id);
    }

    /// Write datagrams to `peer` in batches: (sent, octets).
    pub(crate) fn send_to(&self, datagrams: &[Vec<u8>], peer: Ipv4Addr) -> (usize, u64) {
        ppp_over_gre::send_batch(self.socket.as_raw_fd(), datagrams, Some(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        d[0] = 0x45;
        let total = (20 + payload.len()) as u16;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d[9] = proto;
        d[12..16].copy_from_slice(&src);
        d.extend_from_slice(payload);
        d
    }

    /// Enhanced GRE (version 1, PPP) with a sequence number.
    fn gre(call_id: u16) -> Vec<u8> {
        let mut g = vec![0x30, 0x01, 0x88, 0x0b, 0x00, 0x04];
        g.extend_from_slice(&call_id.to_be_bytes());
        g.extend_from_slice(&1u32.to_be_bytes());
        g.extend_from_slice(b"ppp!");
        g
    }

    #[tokio::test]
    async fn call_ids_are_unique_and_released() {
        let Ok(demux) = GreDemux::open() else {
            eprintln!("SKIPPED: no raw socket (needs root)");
            return;
        };
        let (tx, mut rx) = crate::packet_queue(1);
        let peer = Ipv4Addr::new(192, 0, 2, 1);
        let a = demux.register(peer, tx.clone()).unwrap();
        let b = demux.register(peer, tx.clone()).unwrap();
        assert_ne!(a, b);
        assert_eq!(demux.calls(), 2);
        // Delivered to its queue; a full queue drops.
        demux.deliver(&ipv4(peer.octets(), 47, &gre(a)));
        demux.deliver(&ipv4(peer.octets(), 47, &gre(a)));
        assert_eq!(demux.dropped(), 1);
        assert_eq!(rx.recv().await.unwrap(), Bytes::from(gre(a)));
        // Foreign datagrams cost only themselves.
        demux.deliver(&ipv4([192, 0, 2, 9], 47, &gre(a)));
        demux.deliver(&ipv4(peer.octets(), 47, &gre(999)));
        demux.deliver(&[0x45, 0]);
        assert_eq!(demux.dropped(), 4);
        demux.release(a);
        demux.release(b);
        assert_eq!(demux.calls(), 0);
    }
}
