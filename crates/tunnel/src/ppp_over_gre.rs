//! The data path shared by the PPTP client and server sessions: PPP frames
//! carried in an enhanced-GRE call (RFC 2637 §4), in both directions.

use std::time::Instant;

use ppp::link::Inbound;
use pptp::GreSession;
use session::SessionCore;

use crate::hooks::PacketSink;
use crate::SessionStats;

/// Hand every in-order GRE payload to the session (whose link decrypts it
/// in place); IP packets it yields go to `sink` (packets for the server's
/// end of the link are answered by the core: see [`send_local_replies`]).
/// Each payload's buffer goes back to `gre` for the next datagram it
/// sends.
pub(crate) fn deliver(
    gre: &mut GreSession,
    core: &mut SessionCore,
    sink: &dyn PacketSink,
    stats: &mut SessionStats,
    now: Instant,
) {
    while let Some(mut frame) = gre.poll_received() {
        match core.handle_frame(now, &mut frame) {
            Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                crate::inbound::deliver(sink, stats, p);
            }
            Inbound::Nothing => {}
        }
        gre.recycle(frame);
    }
}

/// The replies of the server's own end of the link, into GRE.
pub(crate) fn send_local_replies(
    core: &mut SessionCore,
    gre: &mut GreSession,
    frame: &mut Vec<u8>,
    stats: &mut SessionStats,
) {
    while let Some(reply) = core.poll_local_reply() {
        send_ip(core, gre, frame, stats, &reply);
    }
}

/// One IP packet from the network: PPP (with MPPE when negotiated) into
/// GRE. `frame` is a reused buffer.
pub(crate) fn send_ip(
    core: &mut SessionCore,
    gre: &mut GreSession,
    frame: &mut Vec<u8>,
    stats: &mut SessionStats,
    packet: &[u8],
) {
    frame.clear();
    match core.send_ip(packet, frame) {
        Ok(()) => match gre.send(Instant::now(), frame) {
            Ok(()) => {
                stats.packets_out += 1;
                stats.ip_bytes_out += packet.len() as u64;
            }
            Err(_) => stats.dropped_out += 1,
        },
        Err(_) => stats.dropped_out += 1,
    }
}

/// The link's control frames (LCP, auth, NCPs) into GRE, ahead of queued
/// data; true if any.
pub(crate) fn send_control(core: &mut SessionCore, gre: &mut GreSession, now: Instant) -> bool {
    let mut any = false;
    while let Some(frame) = core.poll_transmit() {
        any = true;
        if let Err(e) = gre.send_control(now, &frame) {
            tracing::debug!(session = core.info().id, "PPP control frame not sent: {e}");
        }
    }
    any
}

/// Opens a raw GRE socket (IP protocol 47; needs root or CAP_NET_RAW),
/// non-blocking, with `buffer` octets of kernel buffer each way (room for
/// bursts of full-size datagrams), connected to `peer` when given (the
/// kernel then hands over only its datagrams).
///
/// It is handed to tokio as a `UdpSocket`: its `send`/`try_recv` are plain
/// `send(2)`/`recv(2)`, which is what a raw socket takes; received
/// datagrams start with the IPv4 header.
pub(crate) fn open_raw_socket(
    buffer: usize,
    peer: Option<std::net::Ipv4Addr>,
) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(pptp::IP_PROTOCOL_GRE))),
    )?;
    socket.set_nonblocking(true)?;
    if let Some(peer) = peer {
        socket.connect(&SockAddr::from(std::net::SocketAddrV4::new(peer, 0)))?;
    }
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// The Call IDs and window of an established call (either role).
pub(crate) struct CallIds {
    /// Ours (the peer puts it in GRE to us).
    pub local: u16,
    /// The peer's (we put it in GRE to it).
    pub peer: u16,
    /// The peer's receive window.
    pub window: u16,
}

/// The debug line of a control connection that came up (the peer's names
/// escaped: they are the peer's bytes).
pub(crate) fn log_control_connected(host: &[u8], vendor: &[u8]) {
    tracing::debug!(
        "PPTP control connection up: host {}, vendor {}",
        String::from_utf8_lossy(host).escape_debug(),
        String::from_utf8_lossy(vendor).escape_debug()
    );
}

// Batched reads and writes of the raw GRE socket: the shared code, by
// the names the PPTP drivers use.
pub(crate) use crate::datagram_batch::{send_batch, RecvBatch, BATCH};
