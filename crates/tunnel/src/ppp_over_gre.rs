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
                stats.packets_in += 1;
                stats.ip_bytes_in += p.len() as u64;
                sink.send(p);
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

/// Datagrams taken from or written to the raw GRE socket per system call.
pub(crate) const BATCH: usize = 32;
/// Room for one received datagram: the IPv4 header (60 at most), enhanced
/// GRE (16) and a PPP frame of the MRUs peers use (1500 and a little for
/// MPPE and PPP headers), with ample margin. A longer datagram arrives cut
/// short (MSG_TRUNC) and is dropped as malformed.
pub(crate) const SLOT: usize = 4096;

/// A batch of received datagrams: one `recvmmsg(2)` fills up to [`BATCH`]
/// slots of one buffer allocated once per socket, not per packet.
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    filled: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        RecvBatch {
            buf: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            filled: 0,
        }
    }

    /// One non-blocking `recvmmsg(2)` on `fd`: how many datagrams arrived
    /// (`WouldBlock` when none).
    pub(crate) fn recv(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        self.filled = 0;
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are
        // a valid value (null pointers, zero lengths and flags).
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((v, chunk), h) in iov
            .iter_mut()
            .zip(self.buf.chunks_mut(SLOT))
            .zip(hdrs.iter_mut())
        {
            v.iov_base = chunk.as_mut_ptr().cast();
            v.iov_len = chunk.len();
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the OS interface for batched reads. Every header points
        // at one iovec on this stack frame, which points at its own SLOT of
        // `self.buf`; all stay alive and exclusively borrowed for the call,
        // and the kernel writes at most `iov_len` bytes into each.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for (i, h) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = (h.msg_len as usize).min(SLOT);
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        self.filled = n;
        Ok(n)
    }

    /// Datagram `i` of the last `recv`; `None` if it was cut short.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.filled || self.truncated[i] {
            return None;
        }
        Some(&self.buf[i * SLOT..i * SLOT + self.lens[i]])
    }
}

/// Write `datagrams` with as few `sendmmsg(2)` calls as the kernel allows:
/// to `to` on an unconnected socket, or to the connected peer when `None`.
/// Returns (datagrams sent, octets sent); what a full socket buffer refuses
/// is dropped, as a router would (PPP and TCP above cope).
pub(crate) fn send_batch(
    fd: std::os::fd::RawFd,
    datagrams: &[Vec<u8>],
    to: Option<std::net::Ipv4Addr>,
) -> (usize, u64) {
    // SAFETY: sockaddr_in is a plain C struct; all-zero bytes are valid.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    if let Some(ip) = to {
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr = libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        };
    }
    let mut sent = 0usize;
    let mut octets = 0u64;
    for chunk in datagrams.chunks(BATCH) {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: as above, all-zero mmsghdr is valid.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((v, d), h) in iov.iter_mut().zip(chunk).zip(hdrs.iter_mut()) {
            // The kernel only reads through this pointer (sendmmsg).
            v.iov_base = d.as_ptr() as *mut libc::c_void;
            v.iov_len = d.len();
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            if to.is_some() {
                h.msg_hdr.msg_name = std::ptr::addr_of_mut!(addr).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as _;
            }
        }
        let mut done = 0usize;
        while done < chunk.len() {
            // SAFETY: the OS interface for batched writes. The headers,
            // iovecs and address live on this stack frame, the iovecs point
            // into `datagrams` (borrowed for the call), and the kernel only
            // reads them and writes each header's `msg_len`.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[done..].as_mut_ptr(),
                    (chunk.len() - done) as _,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if n <= 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted if n < 0 => continue,
                    // The socket buffer is full: the rest of this chunk is
                    // dropped.
                    std::io::ErrorKind::WouldBlock => break,
                    // Anything else (an ICMP error reported on a connected
                    // socket) costs the datagram at the head only.
                    _ => done += 1,
                }
                continue;
            }
            for h in &hdrs[done..done + n as usize] {
                octets += u64::from(h.msg_len);
            }
            sent += n as usize;
            done += n as usize;
        }
    }
    (sent, octets)
}
