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

use crate::udp_offload::{self, CmsgBuf, Gso};

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
            Ok(n) => batch.each_datagram(n, &mut each),
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
    /// Room per datagram: [`SLOT`], or [`udp_offload::GRO_SLOT`] where
    /// the kernel coalesces.
    slot: usize,
    /// Read the `UDP_GRO` control message (the socket has GRO on).
    gro: bool,
    /// The segment size of each coalesced datagram (0: not coalesced).
    segment: [usize; BATCH],
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    from: [Option<SocketAddr>; BATCH],
    filled: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self::with_slot(SLOT, false)
    }

    /// A batch for UDP socket `fd` with the kernel's receive coalescing
    /// (`UDP_GRO`) turned on, if it can be: bigger slots, and each slot's
    /// segment size read. Other sockets may be read with it too.
    pub(crate) fn with_gro(fd: RawFd) -> Self {
        if udp_offload::enable_gro(fd) {
            Self::with_slot(udp_offload::GRO_SLOT, true)
        } else {
            Self::new()
        }
    }

    fn with_slot(slot: usize, gro: bool) -> Self {
        RecvBatch {
            buf: vec![0u8; BATCH * slot].into_boxed_slice(),
            slot,
            gro,
            segment: [0; BATCH],
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
        let mut control: [CmsgBuf; BATCH] = [[0; 4]; BATCH];
        for ((((v, chunk), h), name), c) in iov
            .iter_mut()
            .zip(self.buf.chunks_mut(self.slot))
            .zip(hdrs.iter_mut())
            .zip(names.iter_mut())
            .zip(control.iter_mut())
        {
            if self.gro {
                h.msg_hdr.msg_control = c.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
            }
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
        // `iov_len` bytes into each slot, `msg_namelen` into each name and
        // `msg_controllen` into each control buffer.
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
            self.lens[i] = (h.msg_len as usize).min(self.slot);
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.segment[i] = if self.gro {
                // SAFETY: the kernel filled this header in the call above;
                // its control buffer is `control[i]`, alive on this frame.
                unsafe { udp_offload::gro_segment(&h.msg_hdr) }
            } else {
                0
            };
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
        Some(&self.buf[i * self.slot..i * self.slot + self.lens[i]])
    }

    /// Each datagram of the first `n` buffers of the last `recv`, with its
    /// sender: a coalesced (GRO) buffer is the datagrams it stands for,
    /// each on its own (udp_offload.rs), so the caller classifies every
    /// one (IKE with its non-ESP marker, keepalive, ESP) by itself.
    pub(crate) fn each_datagram(&mut self, n: usize, each: &mut impl FnMut(SocketAddr, &mut [u8])) {
        for i in 0..n.min(self.filled) {
            let segment = self.segment(i);
            if let Some((from, buffer)) = self.get_mut(i) {
                let len = buffer.len();
                for piece in udp_offload::segments(len, segment) {
                    each(from, &mut buffer[piece]);
                }
            }
        }
    }

    /// The segment size of buffer `i` of the last `recv` if the kernel
    /// coalesced several datagrams into it (GRO), else 0.
    pub(crate) fn segment(&self, i: usize) -> usize {
        if i < self.filled {
            self.segment[i]
        } else {
            0
        }
    }

    /// Datagram `i` of the last `recv` and its sender, writable (ESP is
    /// decrypted in place); `None` if it was cut short or the sender is
    /// not an IP address.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        if i >= self.filled || self.truncated[i] {
            return None;
        }
        let from = self.from[i]?;
        let start = i * self.slot;
        Some((from, &mut self.buf[start..start + self.lens[i]]))
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
    /// UDP GSO on the socket this batch is flushed to with `flush_udp`.
    gso: Gso,
}

impl SendBatch {
    pub(crate) fn new() -> Self {
        let unspecified = SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        SendBatch {
            slots: (0..BATCH).map(|_| Vec::with_capacity(SLOT)).collect(),
            to: vec![unspecified; BATCH],
            len: 0,
            gso: Gso::Off,
        }
    }

    /// A batch for one UDP socket: runs of equal-sized datagrams to one
    /// peer go as one GSO super-datagram (`flush_udp`).
    pub(crate) fn new_udp() -> Self {
        SendBatch {
            gso: Gso::for_udp(),
            ..Self::new()
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

    /// As [`SendBatch::flush`] on the UDP socket `fd`, with UDP GSO where
    /// the batch was made by `new_udp` and the kernel has not refused it:
    /// each run of equal-sized datagrams to one peer is one message with a
    /// `UDP_SEGMENT` size. Sent and octets count the datagrams as they
    /// leave (a run of k counts k).
    pub(crate) fn flush_udp(&mut self, fd: RawFd) -> (usize, u64) {
        if !self.gso.on() {
            return self.flush(fd);
        }
        let n = self.len;
        self.len = 0;
        if n == 0 {
            return (0, 0);
        }
        sendmmsg_gso(fd, &self.slots[..n], &self.to[..n], &mut self.gso)
    }
}

/// Up to [`BATCH`] datagrams as GSO runs through one `sendmmsg(2)`: one
/// message per run, its iovecs the run's slots and, for a run of more than
/// one, a `UDP_SEGMENT` control message with the run's datagram size. When
/// the kernel refuses GSO, `gso` remembers it and the rest goes as plain
/// datagrams.
fn sendmmsg_gso(fd: RawFd, slots: &[Vec<u8>], to: &[SockAddr], gso: &mut Gso) -> (usize, u64) {
    let n = slots.len().min(to.len()).min(BATCH);
    let mut lens = [0usize; BATCH];
    for (l, s) in lens.iter_mut().zip(&slots[..n]) {
        *l = s.len();
    }
    let mut runs: [std::ops::Range<usize>; BATCH] = std::array::from_fn(|_| 0..0);
    let count = udp_offload::gso_runs(&lens[..n], &to[..n], &mut runs);
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    for (v, s) in iov.iter_mut().zip(&slots[..n]) {
        // The kernel only reads through these pointers (sendmmsg).
        v.iov_base = s.as_ptr() as *mut libc::c_void;
        v.iov_len = s.len();
    }
    let mut control: [CmsgBuf; BATCH] = [[0; 4]; BATCH];
    // SAFETY: mmsghdr is a plain C struct; all-zero bytes are a valid value.
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for ((h, run), c) in hdrs.iter_mut().zip(&runs[..count]).zip(control.iter_mut()) {
        h.msg_hdr.msg_iov = std::ptr::addr_of_mut!(iov[run.start]);
        h.msg_hdr.msg_iovlen = run.len() as _;
        let addr = &to[run.start];
        h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
        h.msg_hdr.msg_namelen = addr.len();
        if run.len() > 1 {
            let size = u16::try_from(lens[run.start]).unwrap_or(u16::MAX);
            let len = udp_offload::write_cmsg(c, libc::UDP_SEGMENT, size);
            h.msg_hdr.msg_control = c.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = len as _;
        }
    }
    let mut sent = 0usize;
    let mut octets = 0u64;
    let mut done = 0usize;
    while done < count {
        // SAFETY: the OS interface for batched writes. The headers, iovecs
        // and control buffers live on this stack frame, the iovecs point
        // into `slots` and the names into `to`, all borrowed for the call;
        // the kernel only reads them and writes each header's `msg_len`.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                hdrs[done..].as_mut_ptr(),
                (count - done) as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        if r <= 0 {
            let e = std::io::Error::last_os_error();
            if r < 0 && runs[done].len() > 1 && udp_offload::refused(&e) {
                // No GSO here: the rest as plain datagrams, and from now on.
                gso.refuse(&e);
                let from = runs[done].start;
                let (s, o) = sendmmsg(fd, &slots[from..n], |i| to.get(from + i));
                return (sent + s, octets + o);
            }
            match e.kind() {
                std::io::ErrorKind::Interrupted if r < 0 => continue,
                std::io::ErrorKind::WouldBlock => break,
                _ => done += 1,
            }
            continue;
        }
        for (h, run) in hdrs[done..done + r as usize]
            .iter()
            .zip(&runs[done..done + r as usize])
        {
            octets += u64::from(h.msg_len);
            sent += run.len();
        }
        done += r as usize;
    }
    (sent, octets)
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

    /// Every datagram `batch` hands out from `socket` (through
    /// `each_datagram`, as `read_batches` does) until `want` arrived or 5 s
    /// passed, and whether any came out of a coalesced (GRO) buffer.
    fn datagrams(
        socket: &std::net::UdpSocket,
        batch: &mut RecvBatch,
        want: usize,
    ) -> (Vec<Vec<u8>>, bool) {
        let mut got = Vec::new();
        let mut coalesced = false;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < want && std::time::Instant::now() < deadline {
            match batch.recv(socket.as_raw_fd()) {
                Ok(n) => {
                    coalesced |= (0..n).any(|i| batch.segment(i) > 0);
                    batch.each_datagram(n, &mut |_, d: &mut [u8]| got.push(d.to_vec()));
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        (got, coalesced)
    }

    /// Equal-sized datagrams and a shorter last one, numbered in their
    /// first byte.
    fn run_of(to: SocketAddr, out: &mut SendBatch, sizes: &[usize]) {
        for (i, &size) in sizes.iter().enumerate() {
            assert!(out.push_with(to, |buf| {
                buf.resize(size, 0xaa);
                buf[0] = i as u8;
                true
            }));
        }
    }

    #[test]
    fn a_gso_run_arrives_as_its_datagrams_through_gro() {
        let (a, b) = pair();
        if !udp_offload::allowed() {
            eprintln!("skipped: RAS_UDP_OFFLOAD=off");
            return;
        }
        let mut batch = RecvBatch::with_gro(b.as_raw_fd());
        assert!(batch.gro, "UDP_GRO refused by this kernel");
        let mut out = SendBatch::new_udp();
        let sizes = [1400, 1400, 1400, 1400, 300];
        run_of(b.local_addr().unwrap(), &mut out, &sizes);
        assert_eq!(out.flush_udp(a.as_raw_fd()), (5, 5900));
        assert_eq!(out.gso, Gso::On);
        let (got, coalesced) = datagrams(&b, &mut batch, 5);
        let lens: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(lens, sizes);
        let firsts: Vec<u8> = got.iter().map(|d| d[0]).collect();
        assert_eq!(firsts, vec![0, 1, 2, 3, 4]);
        // Loopback hands the super-datagram to a GRO socket whole: it
        // was cut here, not by the kernel.
        assert!(coalesced, "not coalesced: {lens:?}");
    }

    #[test]
    fn a_gso_run_reaches_a_socket_without_gro_as_datagrams() {
        let (a, b) = pair();
        let mut batch = RecvBatch::new();
        let mut out = SendBatch::new_udp();
        let to = b.local_addr().unwrap();
        // Two peers' worth in one batch: runs by address and size.
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_nonblocking(true).unwrap();
        run_of(to, &mut out, &[200, 200, 200]);
        run_of(c.local_addr().unwrap(), &mut out, &[100, 100]);
        run_of(to, &mut out, &[200, 50]);
        assert_eq!(out.flush_udp(a.as_raw_fd()), (7, 1050));
        let at_b: Vec<usize> = datagrams(&b, &mut batch, 5)
            .0
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(at_b, vec![200, 200, 200, 200, 50]);
        let at_c: Vec<usize> = datagrams(&c, &mut batch, 2)
            .0
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(at_c, vec![100, 100]);
    }

    #[test]
    fn a_refused_gso_falls_back_to_plain_datagrams_and_is_remembered() {
        let (a, b) = pair();
        if !udp_offload::allowed() {
            eprintln!("skipped: RAS_UDP_OFFLOAD=off");
            return;
        }
        // SO_NO_CHECK (no UDP checksum on send) makes the kernel refuse
        // UDP_SEGMENT with EINVAL (udp_send_skb), as a device without
        // checksum offload does with EIO.
        let on: libc::c_int = 1;
        // SAFETY: setsockopt(2) reads one c_int from a live local.
        let r = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let mut out = SendBatch::new_udp();
        let to = b.local_addr().unwrap();
        run_of(to, &mut out, &[500, 500, 500]);
        assert_eq!(out.flush_udp(a.as_raw_fd()), (3, 1500));
        assert_eq!(out.gso, Gso::Refused);
        // And from now on plain datagrams from the start.
        run_of(to, &mut out, &[500, 500]);
        assert_eq!(out.flush_udp(a.as_raw_fd()), (2, 1000));
        let mut batch = RecvBatch::new();
        let got: Vec<u8> = datagrams(&b, &mut batch, 5)
            .0
            .iter()
            .map(|d| d[0])
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1]);
    }
}
