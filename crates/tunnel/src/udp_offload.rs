//! UDP segmentation offload for ESP in UDP (RFC 3948, NAT-T port 4500):
//! GSO on send (`UDP_SEGMENT`, Linux 4.18) writes a run of equal-sized
//! datagrams to one peer as one super-datagram that the stack carries as
//! one packet until the device (or the receiver) cuts it; GRO on receive
//! (`UDP_GRO`, Linux 5.0) hands over a burst of one flow's datagrams as
//! one buffer and the segment size, which is cut here again. Every
//! segment is still a datagram of its own to the caller: the non-ESP
//! marker, keepalives and ESP are told apart per segment.
//!
//! This file holds the decisions (which datagrams form a run, where a
//! coalesced buffer is cut) and the socket options; `datagram_batch.rs`
//! makes the system calls. Raw ESP (IP protocol 50) has no such offload.

use std::ops::Range;
use std::os::fd::RawFd;
use std::sync::OnceLock;

use socket2::SockAddr;

/// The most segments one `UDP_SEGMENT` send may carry (the kernel's
/// UDP_MAX_SEGMENTS: 64 before Linux 6.9, 128 after; the lower is used).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// The most payload one UDP datagram (and so one GSO super-datagram) can
/// carry over IPv4: 65535 less the IPv4 (20) and UDP (8) headers.
pub(crate) const MAX_PAYLOAD: usize = 65_507;
/// Room for one coalesced receive (a GRO buffer is at most one IP
/// packet's worth).
pub(crate) const GRO_SLOT: usize = 65_536;

/// Whether UDP offload may be used at all: `RAS_UDP_OFFLOAD=off` turns it
/// off for a process (to compare with and without on one binary, or to
/// rule it out when a path misbehaves).
pub(crate) fn allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        let off = std::env::var("RAS_UDP_OFFLOAD").is_ok_and(|v| v == "off" || v == "0");
        if off {
            tracing::info!("UDP offload (GSO/GRO) off: RAS_UDP_OFFLOAD={}", "off");
        }
        !off
    })
}

/// Asks the kernel to coalesce received datagrams on UDP socket `fd`
/// (`UDP_GRO`); false when it refuses (an old kernel) or offload is off.
pub(crate) fn enable_gro(fd: RawFd) -> bool {
    if !allowed() {
        return false;
    }
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from a live
    // local; `fd` is the caller's open socket.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_GRO,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::debug!("UDP GRO not available: {}", std::io::Error::last_os_error());
    }
    r == 0
}

/// Where a received buffer is cut into the datagrams it stands for:
/// pieces of `segment` octets, the last one shorter if the sender's last
/// was (GRO coalesces equal sizes and ends a run with a shorter one). A
/// `segment` of 0 (no coalescing reported) or one not smaller than `len`
/// is the buffer whole; an empty datagram is one empty piece (the caller
/// counts it as malformed, as before GRO).
pub(crate) fn segments(len: usize, segment: usize) -> impl Iterator<Item = Range<usize>> {
    let step = if segment == 0 || segment >= len {
        len.max(1)
    } else {
        segment
    };
    (0..len.max(1))
        .step_by(step)
        .map(move |start| start..(start + step).min(len))
}

/// The runs of a send batch that can each go as one GSO super-datagram:
/// consecutive datagrams to the same address, all of the first one's
/// size except that the last may be shorter (the kernel cuts at
/// `gso_size`, so a shorter one can only end a run), at most
/// [`MAX_SEGMENTS`] and [`MAX_PAYLOAD`] octets together. Written into
/// `runs`; returns how many. A run of one is an ordinary datagram.
pub(crate) fn gso_runs(lens: &[usize], to: &[SockAddr], runs: &mut [Range<usize>]) -> usize {
    let n = lens.len().min(to.len());
    let mut count = 0;
    let mut start = 0;
    while start < n && count < runs.len() {
        let size = lens[start];
        let mut end = start + 1;
        let mut total = size;
        while end < n
            && end - start < MAX_SEGMENTS
            && to[end] == to[start]
            && lens[end] <= size
            && lens[end] > 0
            && total + lens[end] <= MAX_PAYLOAD
            // A shorter datagram ends the run: after it the kernel would
            // not know where the next one starts.
            && lens[end - 1] == size
        {
            total += lens[end];
            end += 1;
        }
        runs[count] = start..end;
        count += 1;
        start = end;
    }
    count
}

/// Whether a send error means the kernel (or the device) does not do UDP
/// GSO on this socket, so plain datagrams should be sent instead: EIO
/// (no checksum offload on the way out, or IPsec policy on the route),
/// EINVAL (no UDP checksum on the socket, too many segments), EMSGSIZE (a
/// segment longer than the path MTU: GSO never fragments, a plain
/// datagram may be), ENOPROTOOPT and EOPNOTSUPP (an old kernel).
pub(crate) fn refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO)
            | Some(libc::EINVAL)
            | Some(libc::EMSGSIZE)
            | Some(libc::ENOPROTOOPT)
            | Some(libc::EOPNOTSUPP)
    )
}

/// The state of GSO on one socket: tried until the kernel refuses once,
/// then plain datagrams (logged once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gso {
    /// Not a UDP socket, or offload off.
    Off,
    On,
    Refused,
}

impl Gso {
    pub(crate) fn for_udp() -> Gso {
        if allowed() {
            Gso::On
        } else {
            Gso::Off
        }
    }

    pub(crate) fn on(self) -> bool {
        self == Gso::On
    }

    /// Remembers a refusal; one log line per socket.
    pub(crate) fn refuse(&mut self, e: &std::io::Error) {
        if *self == Gso::On {
            tracing::info!("UDP GSO refused by the kernel ({e}): ESP in UDP goes one datagram per packet on this socket");
            *self = Gso::Refused;
        }
    }
}

/// Space for one control message carrying one `c_int` (`UDP_SEGMENT` on
/// send, `UDP_GRO` on receive): CMSG_SPACE(4) is 24 on 64-bit Linux and
/// 16 on 32-bit; u64 words keep the header aligned.
pub(crate) type CmsgBuf = [u64; 4];

/// Fills `buf` with one control message (`SOL_UDP`, `kind`, `value`) and
/// returns its length for `msg_controllen`.
pub(crate) fn write_cmsg(buf: &mut CmsgBuf, kind: libc::c_int, value: u16) -> usize {
    *buf = [0; 4];
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic on a constant.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize,
            libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize,
        )
    };
    debug_assert!(space <= std::mem::size_of::<CmsgBuf>());
    let hdr = buf.as_mut_ptr().cast::<libc::cmsghdr>();
    // SAFETY: `buf` is 32 bytes, 8-aligned, larger than CMSG_SPACE(2); the
    // header and its data are written inside it. UDP_SEGMENT takes a u16
    // (udp_send_skb reads `*(__u16 *)CMSG_DATA`).
    unsafe {
        (*hdr).cmsg_level = libc::SOL_UDP;
        (*hdr).cmsg_type = kind;
        (*hdr).cmsg_len = len as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<u16>(), value);
    }
    space
}

/// The segment size a `UDP_GRO` control message in `msghdr` reports; 0
/// when there is none (the datagram was not coalesced).
///
/// # Safety
/// `msg` must be a header the kernel filled by `recvmsg`/`recvmmsg`, its
/// `msg_control` pointing at a live buffer of `msg_controllen` bytes.
pub(crate) unsafe fn gro_segment(msg: &libc::msghdr) -> usize {
    if msg.msg_control.is_null() || msg.msg_controllen == 0 {
        return 0;
    }
    // SAFETY: per the contract, the control buffer is the kernel's
    // well-formed list of messages within msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: `c` points at a header inside the buffer (CMSG_*
        // checks the bounds); UDP_GRO's data is one int.
        unsafe {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(size).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn addr(port: u16) -> SockAddr {
        SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), port))
    }

    fn runs_of(lens: &[usize], to: &[SockAddr]) -> Vec<Range<usize>> {
        let mut runs = vec![0..0; lens.len()];
        let n = gso_runs(lens, to, &mut runs);
        runs.truncate(n);
        runs
    }

    #[test]
    fn a_gro_buffer_is_cut_at_the_segment_size_with_a_short_last() {
        let cut: Vec<_> = segments(1400 * 3 + 100, 1400).collect();
        assert_eq!(cut, vec![0..1400, 1400..2800, 2800..4200, 4200..4300]);
        let even: Vec<_> = segments(2800, 1400).collect();
        assert_eq!(even, vec![0..1400, 1400..2800]);
    }

    #[test]
    fn a_buffer_without_a_segment_size_is_one_datagram() {
        assert_eq!(segments(1400, 0).collect::<Vec<_>>(), vec![0..1400]);
        assert_eq!(segments(900, 1400).collect::<Vec<_>>(), vec![0..900]);
        assert_eq!(segments(0, 1400).collect::<Vec<_>>(), vec![0..0]);
        assert_eq!(segments(0, 0).collect::<Vec<_>>(), vec![0..0]);
    }

    #[test]
    fn runs_split_by_peer_and_by_size() {
        let (a, b) = (addr(4500), addr(4501));
        let lens = [100, 100, 100, 60, 100, 100, 100, 100];
        let to = [&a, &a, &a, &a, &a, &b, &b, &a].map(Clone::clone);
        // a 100 ×3 then a shorter 60 ends the run; a 100 alone (b follows);
        // b 100 ×2; a 100.
        assert_eq!(runs_of(&lens, &to), vec![0..4, 4..5, 5..7, 7..8]);
    }

    #[test]
    fn a_longer_datagram_starts_a_new_run() {
        let a = addr(4500);
        let lens = [100, 100, 200, 200, 50, 50];
        let to = vec![a; 6];
        assert_eq!(runs_of(&lens, &to), vec![0..2, 2..5, 5..6]);
    }

    #[test]
    fn runs_stop_at_the_segment_and_size_limits() {
        let a = addr(4500);
        let lens = vec![10; MAX_SEGMENTS + 3];
        let to = vec![a.clone(); lens.len()];
        assert_eq!(
            runs_of(&lens, &to),
            vec![0..MAX_SEGMENTS, MAX_SEGMENTS..MAX_SEGMENTS + 3]
        );
        // 4000-octet datagrams: 16 fit in 65,507 octets, the 17th does not.
        let lens = vec![4000; 20];
        let to = vec![a; 20];
        assert_eq!(runs_of(&lens, &to), vec![0..16, 16..20]);
    }

    #[test]
    fn refusals_that_mean_no_gso() {
        for errno in [libc::EIO, libc::EINVAL, libc::EMSGSIZE, libc::ENOPROTOOPT] {
            assert!(refused(&std::io::Error::from_raw_os_error(errno)));
        }
        assert!(!refused(&std::io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(!refused(&std::io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        let mut gso = Gso::On;
        gso.refuse(&std::io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(gso, Gso::Refused);
        assert!(!gso.on());
    }
}
