//! Batched datagram I/O for the raw and UDP sockets of the data paths
//! (PPTP's GRE, L2TP/IPsec's ESP and NAT-T): one `recvmmsg(2)` reads up to
//! [`BATCH`] datagrams into one buffer allocated once per socket, and one
//! `sendmmsg(2)` writes up to [`BATCH`] — a system call per batch, not per
//! packet, and no allocation per packet either way.
//!
//! The sockets are tokio's (readiness from the reactor, `try_io` around
//! each call); this file only makes the calls.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use socket2::SockAddr;

/// Datagrams taken from or written to a socket per system call.
pub(crate) const BATCH: usize = 32;
/// Room for one received datagram: an IPv4 header (60 at most), the
/// tunnel's headers (GRE 16; ESP, UDP and L2TP about 70) and a PPP frame
/// of the MRUs peers use (1500 and a little), with ample margin. A longer
/// datagram arrives cut short (MSG_TRUNC) and is dropped as malformed.
pub(crate) const SLOT: usize = 4096;

/// Receive batches (`recvmmsg`) per socket per wake-up in
/// [`read_batches`], before a driver looks at its other work (sending,
/// timers).
pub(crate) const READS_PER_WAKE: usize = 8;

/// Up to [`READS_PER_WAKE`] `recvmmsg` batches from a readable tokio
/// `socket`, each datagram (sender, bytes) to `each`; a datagram cut short
/// costs only itself. Stops early when the socket has nothing more (tokio
/// then waits for the next readiness event).
pub(crate) fn read_batches(
    socket: &tokio::net::UdpSocket,
    batch: &mut RecvBatch,
    mut each: impl FnMut(SocketAddr, &mut [u8]),
) {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    for _ in 0..READS_PER_WAKE {
        match socket.try_io(tokio::io::Interest::READABLE, || batch.recv(fd)) {
            Ok(n) => {
                for i in 0..n {
                    if let Some((from, datagram)) = batch.get_mut(i) {
                        each(from, datagram);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // WouldBlock (tokio cleared the readiness), or an error an
            // earlier send left on the socket (ICMP): wait for the next.
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!("receive: {e}");
                }
                return;
            }
        }
    }
}

/// A batch of received datagrams and their senders: one `recvmmsg(2)`
/// fills up to [`BATCH`] slots of one buffer allocated once per socket.
pub(crate) struct RecvBatch {
    buf: Box<[u8]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    from: [Option<SocketAddr>; BATCH],
    filled: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        RecvBatch {
            buf: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            from: [None; BATCH],
            filled: 0,
        }
    }

    /// One non-blocking `recvmmsg(2)` on `fd`: how many datagrams arrived
    /// (`WouldBlock` when none).
    pub(crate) fn recv(&mut self, fd: RawFd) -> std::io::Result<usize> {
        self.filled = 0;
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: sockaddr_storage and mmsghdr are plain C structs for
        // which all-zero bytes are a valid value (null pointers, zero
        // lengths, flags and family).
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (((v, chunk), h), name) in iov
            .iter_mut()
            .zip(self.buf.chunks_mut(SLOT))
            .zip(hdrs.iter_mut())
            .zip(names.iter_mut())
        {
            v.iov_base = chunk.as_mut_ptr().cast();
            v.iov_len = chunk.len();
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = std::ptr::addr_of_mut!(*name).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        }
        // SAFETY: the OS interface for batched reads. Every header points
        // at one iovec and one address buffer on this stack frame, the
        // iovec at its own SLOT of `self.buf`; all stay alive and
        // exclusively borrowed for the call, and the kernel writes at most
        // `iov_len` bytes into each slot and `msg_namelen` into each name.
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
            self.from[i] = socket_addr(&names[i], h.msg_hdr.msg_namelen);
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

    /// Datagram `i` of the last `recv` and its sender, writable (ESP is
    /// decrypted in place); `None` if it was cut short or the sender is
    /// not an IP address.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        if i >= self.filled || self.truncated[i] {
            return None;
        }
        let from = self.from[i]?;
        Some((from, &mut self.buf[i * SLOT..i * SLOT + self.lens[i]]))
    }
}

/// The sender's address the kernel wrote (IPv4 or IPv6; a raw socket's
/// port is 0).
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(name.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET,
            // length checked); sockaddr_storage is larger and aligned for
            // every socket address type.
            let a: &libc::sockaddr_in = unsafe { &*std::ptr::from_ref(name).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*std::ptr::from_ref(name).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Write `datagrams` with as few `sendmmsg(2)` calls as the kernel allows:
/// to `to` on an unconnected socket, or to the connected peer when `None`.
/// Returns (datagrams sent, octets sent); what a full socket buffer refuses
/// is dropped, as a router would (PPP and TCP above cope).
pub(crate) fn send_batch(fd: RawFd, datagrams: &[Vec<u8>], to: Option<Ipv4Addr>) -> (usize, u64) {
    let to = to.map(|ip| SockAddr::from(SocketAddrV4::new(ip, 0)));
    let mut sent = 0usize;
    let mut octets = 0u64;
    for chunk in datagrams.chunks(BATCH) {
        let (s, o) = sendmmsg(fd, chunk, |_| to.as_ref());
        sent += s;
        octets += o;
    }
    (sent, octets)
}

/// Datagrams waiting to be written with one `sendmmsg(2)`, each to its
/// own address (the IPsec front end writes to many clients at once). The
/// slots are allocated once and keep their capacity: filling one is a
/// copy or an encryption into it, not an allocation.
pub(crate) struct SendBatch {
    slots: Vec<Vec<u8>>,
    to: Vec<SockAddr>,
    len: usize,
}

impl SendBatch {
    pub(crate) fn new() -> Self {
        let unspecified = SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        SendBatch {
            slots: (0..BATCH).map(|_| Vec::with_capacity(SLOT)).collect(),
            to: vec![unspecified; BATCH],
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BATCH
    }

    /// Fills the next slot with `fill` (given the cleared buffer) and
    /// queues it for `to` if `fill` returns true. Returns false, queueing
    /// nothing, when the batch is full (flush it first) or `fill` declined.
    pub(crate) fn push_with(
        &mut self,
        to: SocketAddr,
        fill: impl FnOnce(&mut Vec<u8>) -> bool,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(self.len) else {
            return false;
        };
        slot.clear();
        if !fill(slot) {
            return false;
        }
        self.to[self.len] = SockAddr::from(to);
        self.len += 1;
        true
    }

    /// Writes the queued datagrams on `fd` and empties the batch: (sent,
    /// octets). What the socket refuses is dropped.
    pub(crate) fn flush(&mut self, fd: RawFd) -> (usize, u64) {
        let n = self.len;
        self.len = 0;
        if n == 0 {
            return (0, 0);
        }
        let to = &self.to;
        sendmmsg(fd, &self.slots[..n], |i| to.get(i))
    }
}

/// One chunk of at most [`BATCH`] datagrams through `sendmmsg(2)`,
/// datagram `i` to `to(i)` (the connected peer when `None`).
fn sendmmsg<'a>(
    fd: RawFd,
    chunk: &[Vec<u8>],
    to: impl Fn(usize) -> Option<&'a SockAddr>,
) -> (usize, u64) {
    let chunk = &chunk[..chunk.len().min(BATCH)];
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    // SAFETY: mmsghdr is a plain C struct; all-zero bytes are a valid value.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (i, ((v, d), h)) in iov.iter_mut().zip(chunk).zip(hdrs.iter_mut()).enumerate() {
        // The kernel only reads through these pointers (sendmmsg).
        v.iov_base = d.as_ptr() as *mut libc::c_void;
        v.iov_len = d.len();
        h.msg_hdr.msg_iov = v;
        h.msg_hdr.msg_iovlen = 1;
        if let Some(addr) = to(i) {
            h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = addr.len();
        }
    }
    let mut sent = 0usize;
    let mut octets = 0u64;
    let mut done = 0usize;
    while done < chunk.len() {
        // SAFETY: the OS interface for batched writes. The headers and
        // iovecs live on this stack frame, the iovecs point into `chunk`
        // and the names into addresses borrowed for the call; the kernel
        // only reads them and writes each header's `msg_len`.
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
                // socket, an unreachable address) costs the datagram at
                // the head only.
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
    (sent, octets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn recv_all(socket: &std::net::UdpSocket, batch: &mut RecvBatch) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match batch.recv(socket.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        let (from, d) = batch.get_mut(i).unwrap();
                        got.push((from, d.to_vec()));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !got.is_empty() || std::time::Instant::now() > deadline {
                        return got;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("recvmmsg: {e}"),
            }
        }
    }

    #[test]
    fn a_send_batch_arrives_whole_with_its_sender() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut out = SendBatch::new();
        for i in 0..5u8 {
            assert!(out.push_with(to, |buf| {
                buf.extend_from_slice(&[i; 3]);
                buf.push(i);
                true
            }));
        }
        // A declined fill queues nothing.
        assert!(!out.push_with(to, |_| false));
        assert_eq!(out.len(), 5);
        assert_eq!(out.flush(a.as_raw_fd()), (5, 20));
        assert!(out.is_empty());
        let mut batch = RecvBatch::new();
        let mut got = recv_all(&b, &mut batch);
        while got.len() < 5 {
            got.extend(recv_all(&b, &mut batch));
        }
        let from = a.local_addr().unwrap();
        let expected: Vec<(SocketAddr, Vec<u8>)> = (0..5u8).map(|i| (from, vec![i; 4])).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_full_batch_takes_no_more_until_flushed() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut out = SendBatch::new();
        for _ in 0..BATCH {
            assert!(out.push_with(to, |buf| {
                buf.push(1);
                true
            }));
        }
        assert!(out.is_full());
        assert!(!out.push_with(to, |_| true));
        assert_eq!(out.flush(a.as_raw_fd()).0, BATCH);
        assert!(out.push_with(to, |buf| {
            buf.push(2);
            true
        }));
    }

    #[test]
    fn one_batch_goes_to_several_addresses() {
        let (a, b) = pair();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_nonblocking(true).unwrap();
        let mut out = SendBatch::new();
        for (to, byte) in [(&b, 1u8), (&c, 2), (&b, 3)] {
            out.push_with(to.local_addr().unwrap(), |buf| {
                buf.push(byte);
                true
            });
        }
        assert_eq!(out.flush(a.as_raw_fd()).0, 3);
        let mut batch = RecvBatch::new();
        let mut at_b = recv_all(&b, &mut batch);
        if at_b.len() < 2 {
            at_b.extend(recv_all(&b, &mut batch));
        }
        let at_c = recv_all(&c, &mut batch);
        let bytes = |v: &[(SocketAddr, Vec<u8>)]| v.iter().map(|(_, d)| d[0]).collect::<Vec<_>>();
        assert_eq!(bytes(&at_b), vec![1, 3]);
        assert_eq!(bytes(&at_c), vec![2]);
    }

    #[test]
    fn a_datagram_longer_than_a_slot_is_dropped_not_cut() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        a.send_to(&vec![7u8; SLOT + 10], to).unwrap();
        a.send_to(b"ok", to).unwrap();
        let mut batch = RecvBatch::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seen = Vec::new();
        while seen.len() < 2 && std::time::Instant::now() < deadline {
            match batch.recv(b.as_raw_fd()) {
                Ok(n) => (0..n).for_each(|i| seen.push(batch.get(i).map(<[u8]>::to_vec))),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(seen, vec![None, Some(b"ok".to_vec())]);
    }
}
