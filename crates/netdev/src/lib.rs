//! TUN devices: where tunnel packets leave for the host's network stack
//! and where packets for the tunnel come back (server and client alike).
//!
//! Built on `tun-rs` without its `address-management` feature (which pulls a
//! second netlink stack, DEPENDENCIES.md): the device, its MTU, its IPv4
//! address (ioctl) and its IPv6 address (ioctl) are set by `tun-rs`; routes
//! are added by running `ip route add` (iproute2), which needs no further
//! dependency. Moving to `rtnetlink` later changes only
//! [`TunDevice::add_route`] and [`TunDevice::del_route`].
//!
//! A process removes only what it created. A route that already exists
//! through another device belongs to someone else (another server with
//! the same pool): adding it is an error, never a takeover (`ip route
//! replace` would move it to this device, and it would vanish with this
//! device). A route that already exists through this device is used but
//! not removed later. A device this process created goes away with it
//! (and the kernel takes its routes and addresses along); a device that
//! existed before (a persistent TUN made by the administrator) stays, and
//! only the routes and addresses this process added are taken off it when
//! the [`TunDevice`] is dropped. (Limits outside this code: configuring a
//! preexisting TUN replaces its IPv4 address (the `tun-rs` ioctl) and takes
//! the routes made through it before; the kernel drops every route through
//! a persistent TUN when its last user closes it. Give `ras` a device of
//! its own.)
//!
//! Layout: the server's pool address (first address of the first range) is
//! put on the device as a /32, and each client range gets routes (as CIDR
//! blocks) through the device. This is the off-subnet case; for a pool on
//! the LAN's own subnet the operator also needs proxy ARP on the LAN
//! interface (not done here).
//!
//! Packets are read into and written from caller-provided buffers: no
//! allocation per packet. Raw IP packets, no packet-information header.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

/// Why the TUN device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    /// Creating or configuring the device (no `/dev/net/tun`, no
    /// CAP_NET_ADMIN, a name in use by another kind of interface…).
    #[error("TUN device {name}: {source}")]
    Device {
        name: String,
        #[source]
        source: io::Error,
    },
    /// `ip route` could not be run or refused.
    #[error("adding route {route} via {name}: {message}")]
    Route {
        name: String,
        route: String,
        message: String,
    },
    /// The route exists through another device: it is someone else's.
    #[error("route {route} already exists ({existing}); is another server using these addresses?")]
    RouteTaken { route: String, existing: String },
}

/// What [`TunDevice::add_route`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAdded {
    /// The route is new: this process owns it (and removes it).
    Added,
    /// It was already there through this device: used, never removed.
    AlreadyThere,
}

/// What the device is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunSettings {
    /// Interface name.
    pub name: String,
    /// MTU.
    pub mtu: u16,
    /// IPv4 address and prefix length of the device (the server's pool
    /// address as a /32 in the server).
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and prefix length (the server's address in the client
    /// /64: `prefix::1/64`).
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// Routes through the device, as (network, prefix length).
    pub routes: Vec<(IpAddr, u8)>,
    /// Kernel segmentation and receive offloads (virtio-net header):
    /// reads return up to 64 KiB TCP segments that are split here into
    /// MTU-sized packets, and batched writes are coalesced (GRO), so the
    /// kernel handles far fewer, larger packets.
    pub offload: bool,
}

/// Reusable buffers for [`TunDevice::recv_batch`].
pub struct RecvBatch {
    original: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    count: usize,
}

impl RecvBatch {
    /// Buffers for packets of up to `mtu` bytes.
    pub fn new(mtu: u16) -> RecvBatch {
        let per = usize::from(mtu).max(1280) + 64;
        RecvBatch {
            original: vec![0; tun_rs::VIRTIO_NET_HDR_LEN + 65535],
            bufs: vec![vec![0; per]; tun_rs::IDEAL_BATCH_SIZE],
            sizes: vec![0; tun_rs::IDEAL_BATCH_SIZE],
            count: 0,
        }
    }

    /// The packets of the last read.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[..self.count]
            .iter()
            .zip(&self.sizes[..self.count])
            .map(|(b, &n)| &b[..n.min(b.len())])
    }
}

/// Room before each packet for the virtio-net header of a batched write.
const WRITE_HEADROOM: usize = 16;
/// Capacity of each queued packet's buffer. GRO appends the following
/// segments of a TCP flow to the first one's buffer, and `tun-rs` only
/// coalesces into a buffer that has room (it never reallocates): with
/// room for just one packet nothing was ever coalesced, and the kernel
/// routed every 1,400-byte packet on its own. Room for a 64 KiB segment
/// lets one write carry a whole burst. Untouched capacity costs address
/// space, not memory.
const WRITE_BUFFER: usize = 2 * WRITE_HEADROOM + 65535;
/// Packets waiting for the writer before new ones are dropped.
const WRITE_QUEUE_LIMIT: usize = 4 * tun_rs::IDEAL_BATCH_SIZE;

#[derive(Default)]
struct Pending {
    bufs: Vec<Vec<u8>>,
    len: usize,
}

/// Batched writes into a TUN device from any number of sessions: `send`
/// copies the packet into a reused buffer (no allocation once warm), and
/// `flush` writes the whole batch from the caller's own task, coalescing
/// TCP segments when the device has offload (GRO). Writing inline rather
/// than waking a writer task saves a task hand-off (a wake-up and a
/// context switch on a busy machine) per batch: a TUN write does not
/// block (the kernel takes the packet into its stack at once). A full
/// queue drops the packet, as a router would: one burst never stalls the
/// senders.
pub struct TunWriter {
    shared: std::sync::Arc<WriterShared>,
}

struct WriterShared {
    dev: std::sync::Arc<TunDevice>,
    pending: std::sync::Mutex<Pending>,
    /// The batch being written and the GRO state; held while writing, so
    /// that batches from several sessions go out one after the other.
    io: std::sync::Mutex<WriteIo>,
    dropped: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct WriteIo {
    batch: Vec<Vec<u8>>,
    gro: tun_rs::GROTable,
}

impl TunWriter {
    /// A writer for `dev`. (The name is kept from when a writer task was
    /// started; writes now happen in the caller's task.)
    pub fn spawn(dev: std::sync::Arc<TunDevice>) -> std::sync::Arc<TunWriter> {
        let shared = std::sync::Arc::new(WriterShared {
            dev,
            pending: std::sync::Mutex::new(Pending::default()),
            io: std::sync::Mutex::new(WriteIo::default()),
            dropped: std::sync::atomic::AtomicU64::new(0),
        });
        std::sync::Arc::new(TunWriter { shared })
    }

    /// Queue one IP packet for the device.
    pub fn send(&self, packet: &[u8]) {
        let s = &self.shared;
        let mut p = s.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len >= WRITE_QUEUE_LIMIT {
            s.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let idx = p.len;
        if idx == p.bufs.len() {
            p.bufs.push(Vec::with_capacity(WRITE_BUFFER));
        }
        let buf = &mut p.bufs[idx];
        buf.clear();
        buf.resize(WRITE_HEADROOM, 0);
        buf.extend_from_slice(packet);
        p.len += 1;
        let full = p.len >= tun_rs::IDEAL_BATCH_SIZE;
        drop(p);
        if full {
            self.flush();
        }
    }

    /// Write what is queued now (call after a burst of `send`s): one
    /// coalesced write per burst.
    pub fn flush(&self) {
        let s = &self.shared;
        // Whoever holds `io` writes everything queued until the queue is
        // empty, including packets queued by others meanwhile; waiting for
        // it here keeps the order of each session's packets.
        let mut io = s.io.lock().unwrap_or_else(|e| e.into_inner());
        let WriteIo { batch, gro } = &mut *io;
        loop {
            let n = {
                let mut p = s.pending.lock().unwrap_or_else(|e| e.into_inner());
                let n = p.len;
                p.len = 0;
                // Swap the filled buffers out and leave ours (reused) in.
                std::mem::swap(&mut p.bufs, batch);
                n
            };
            if n == 0 {
                return;
            }
            for chunk in batch[..n].chunks_mut(tun_rs::IDEAL_BATCH_SIZE) {
                // The synchronous write of the non-blocking descriptor, not
                // the async one: it does not wait for the runtime to have
                // seen the device writable (a fresh device is not, until
                // the reactor's next turn). A TUN never reports full (its
                // socket buffer is unlimited); if one did, the error would
                // drop the batch rather than stall the session, as a
                // router would.
                if let Err(e) =
                    tun_rs::DeviceImpl::send_multiple(&s.dev.dev, gro, chunk, WRITE_HEADROOM)
                {
                    tracing::debug!("writing to {}: {e}", s.dev.name);
                }
            }
        }
    }

    /// Packets dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The smallest list of CIDR blocks that covers `start..=end` exactly.
pub fn range_to_cidrs(start: Ipv4Addr, end: Ipv4Addr) -> Vec<(Ipv4Addr, u8)> {
    let (mut lo, hi) = (u64::from(u32::from(start)), u64::from(u32::from(end)));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest block aligned at `lo` that does not pass `hi`.
        let mut size = if lo == 0 {
            1u64 << 32
        } else {
            1u64 << lo.trailing_zeros().min(32)
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((Ipv4Addr::from(lo as u32), 32 - size.trailing_zeros() as u8));
        lo += size;
    }
    out
}

/// An open, configured TUN device. Share it between tasks with `Arc`:
/// reading and writing take `&self`.
pub struct TunDevice {
    dev: tun_rs::AsyncDevice,
    offload: bool,
    name: String,
    mtu: u16,
    /// What this process put on a device it did not create, to be taken
    /// off again on drop (see the module documentation).
    cleanup: std::sync::Mutex<Cleanup>,
}

#[derive(Default)]
struct Cleanup {
    /// The device existed before: it outlives us, so our routes and
    /// addresses must be removed from it explicitly.
    preexisting: bool,
    /// Routes added by [`TunDevice::add_route`] and not deleted since.
    routes: Vec<(IpAddr, u8)>,
    /// Addresses this process put on a preexisting device.
    addresses: Vec<(IpAddr, u8)>,
}

impl std::fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .finish()
    }
}

impl TunDevice {
    /// Creates the device (or opens an existing TUN of that name), sets
    /// MTU and addresses, brings it up and adds the routes. Needs
    /// CAP_NET_ADMIN and a Tokio runtime.
    pub fn create(settings: &TunSettings) -> Result<TunDevice, TunError> {
        let device_err = |source| TunError::Device {
            name: settings.name.clone(),
            source,
        };
        // A device in use by another process cannot be opened (no
        // multi-queue: TUNSETIFF fails with EBUSY), so a device found here
        // is a persistent one nobody holds.
        let before = existing_addresses(&settings.name);
        let mut builder = tun_rs::DeviceBuilder::new()
            .name(settings.name.clone())
            .mtu(settings.mtu)
            .offload(settings.offload)
            .enable(true);
        if let Some((addr, prefix)) = settings.ipv4 {
            builder = builder.ipv4(addr, prefix, None);
        }
        if let Some((addr, prefix)) = settings.ipv6 {
            builder = builder.ipv6(addr, prefix);
        }
        let dev = builder.build_async().map_err(device_err)?;
        let name = dev.name().map_err(device_err)?;
        let mut cleanup = Cleanup::default();
        if let Some(before) = before {
            cleanup.preexisting = true;
            let ours = settings
                .ipv4
                .map(|(a, l)| (IpAddr::V4(a), l))
                .into_iter()
                .chain(settings.ipv6.map(|(a, l)| (IpAddr::V6(a), l)));
            cleanup.addresses = ours.filter(|a| !before.contains(a)).collect();
        }
        let tun = TunDevice {
            dev,
            offload: settings.offload,
            name,
            mtu: settings.mtu,
            cleanup: std::sync::Mutex::new(cleanup),
        };
        // On an error `tun` is dropped, which removes the routes added so
        // far (and the device, if we created it): nothing of ours is left.
        for &(net, prefix) in &settings.routes {
            tun.add_route(net, prefix)?;
        }
        Ok(tun)
    }

    /// The interface name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MTU it was created with.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Reads one IP packet into `buf` (give it at least MTU bytes);
    /// returns its length. Only for devices without offload; use
    /// [`TunDevice::recv_batch`] otherwise.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf).await
    }

    /// Whether the device was created with offloads.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Reads what the kernel has: one packet, or (with offload) one large
    /// segment split into MTU-sized packets. Returns how many packets are
    /// in `batch` (see [`RecvBatch::packets`]).
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let n = self
            .dev
            .recv_multiple(&mut batch.original, &mut batch.bufs, &mut batch.sizes, 0)
            .await?;
        batch.count = n;
        Ok(n)
    }

    /// Ready when the device may have packets to read (for
    /// [`TunDevice::try_recv_batch`]); registers the task's waker
    /// otherwise.
    pub fn poll_readable(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.dev.poll_readable(cx)
    }

    /// [`TunDevice::recv_batch`] without waiting: `WouldBlock` when the
    /// kernel has nothing (and the next [`TunDevice::poll_readable`]
    /// waits for more).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let n = self.dev.try_recv_multiple(
            &mut batch.original,
            &mut batch.bufs,
            &mut batch.sizes,
            0,
        )?;
        batch.count = n;
        Ok(n)
    }

    /// Writes one IP packet, waiting if the device queue is full.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.dev.send(packet).await
    }

    /// Writes one IP packet without waiting: `WouldBlock` when the device
    /// is full (the data path drops and counts rather than stalls).
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        self.dev.try_send(packet)
    }

    /// Adds a route to `net/prefix` through this device (`ip route add`).
    /// A route that is already there through this device is left as it
    /// is (and not removed later: it is not ours); one through another
    /// device is an error ([`TunError::RouteTaken`]), never taken over.
    pub fn add_route(&self, net: IpAddr, prefix: u8) -> Result<RouteAdded, TunError> {
        let route = format!("{net}/{prefix}");
        let family = if net.is_ipv4() { "-4" } else { "-6" };
        let err = |message: String| TunError::Route {
            name: self.name.clone(),
            route: route.clone(),
            message,
        };
        let out = Command::new("ip")
            .args([family, "route", "add", &route, "dev", &self.name])
            .output()
            .map_err(|e| err(format!("cannot run `ip`: {e}")))?;
        if out.status.success() {
            self.lock_cleanup().routes.push((net, prefix));
            return Ok(RouteAdded::Added);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if !stderr.contains("File exists") {
            return Err(err(stderr));
        }
        // EEXIST: whose is it?
        let show = Command::new("ip")
            .args([family, "route", "show", "exact", &route])
            .output()
            .map_err(|e| err(format!("cannot run `ip`: {e}")))?;
        let existing = String::from_utf8_lossy(&show.stdout);
        let existing = existing.lines().next().unwrap_or("").trim().to_owned();
        let through_us = existing
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            == Some(self.name.as_str());
        if through_us {
            Ok(RouteAdded::AlreadyThere)
        } else {
            Err(TunError::RouteTaken {
                route,
                existing: if existing.is_empty() {
                    "through another device or table".into()
                } else {
                    existing
                },
            })
        }
    }

    /// Removes the route to `net/prefix` through this device (`ip route
    /// del`); a route that is already gone is not an error. Only for
    /// routes [`TunDevice::add_route`] answered [`RouteAdded::Added`] for.
    pub fn del_route(&self, net: IpAddr, prefix: u8) -> Result<(), TunError> {
        self.lock_cleanup().routes.retain(|r| *r != (net, prefix));
        self.run_del_route(net, prefix)
    }

    fn run_del_route(&self, net: IpAddr, prefix: u8) -> Result<(), TunError> {
        let route = format!("{net}/{prefix}");
        let family = if net.is_ipv4() { "-4" } else { "-6" };
        let out = Command::new("ip")
            .args([family, "route", "del", &route, "dev", &self.name])
            .output()
            .map_err(|e| TunError::Route {
                name: self.name.clone(),
                route: route.clone(),
                message: format!("cannot run `ip`: {e}"),
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("No such process") {
            return Err(TunError::Route {
                name: self.name.clone(),
                route,
                message: stderr.trim().to_owned(),
            });
        }
        Ok(())
    }

    fn lock_cleanup(&self) -> std::sync::MutexGuard<'_, Cleanup> {
        self.cleanup.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The underlying `tun-rs` device (for batching, offloads, more
    /// queues).
    pub fn inner(&self) -> &tun_rs::AsyncDevice {
        &self.dev
    }
}

impl Drop for TunDevice {
    /// A device we created goes away when its descriptor closes, with its
    /// routes and addresses. A preexisting one stays: take off what we put
    /// on it, and nothing else.
    fn drop(&mut self) {
        let cleanup = std::mem::take(&mut *self.lock_cleanup());
        if !cleanup.preexisting {
            return;
        }
        for (net, prefix) in cleanup.routes {
            if let Err(e) = self.run_del_route(net, prefix) {
                tracing::warn!("{e}");
            }
        }
        for (addr, prefix) in cleanup.addresses {
            let family = if addr.is_ipv4() { "-4" } else { "-6" };
            let _ = Command::new("ip")
                .args([
                    family,
                    "addr",
                    "del",
                    &format!("{addr}/{prefix}"),
                    "dev",
                    &self.name,
                ])
                .output();
        }
    }
}

/// The addresses on interface `name` if it exists (`ip -o addr show`),
/// `None` if there is no such interface.
fn existing_addresses(name: &str) -> Option<Vec<(IpAddr, u8)>> {
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "dev", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                let (addr, len) = words.next()?.split_once('/')?;
                Some((addr.parse().ok()?, len.parse().ok()?))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_cover_ranges_exactly() {
        assert_eq!(
            range_to_cidrs(ip("10.0.10.21"), ip("10.0.10.29")),
            vec![
                (ip("10.0.10.21"), 32),
                (ip("10.0.10.22"), 31),
                (ip("10.0.10.24"), 30),
                (ip("10.0.10.28"), 31),
            ]
        );
        assert_eq!(
            range_to_cidrs(ip("10.0.0.0"), ip("10.0.0.255")),
            vec![(ip("10.0.0.0"), 24)]
        );
        assert_eq!(
            range_to_cidrs(ip("0.0.0.0"), ip("255.255.255.255")),
            vec![(ip("0.0.0.0"), 0)]
        );
        assert_eq!(
            range_to_cidrs(ip("255.255.255.255"), ip("255.255.255.255")),
            vec![(ip("255.255.255.255"), 32)]
        );
        // Exhaustive check on a small window: every address covered once.
        for (a, b) in [(3u32, 200u32), (1, 1), (0, 7), (17, 18)] {
            let cidrs = range_to_cidrs(Ipv4Addr::from(a), Ipv4Addr::from(b));
            let mut covered = Vec::new();
            for (net, len) in cidrs {
                let n = u32::from(net);
                let size = 1u64 << (32 - len);
                assert_eq!(u64::from(n) % size, 0, "aligned");
                covered.extend((0..size).map(|i| n + i as u32));
            }
            assert_eq!(covered, (a..=b).collect::<Vec<_>>());
        }
    }

    const CHILD_ENV: &str = "RAS_TUN_TEST_IN_NETNS";

    /// Runs `in_namespace` in a child process inside a fresh network
    /// namespace (`unshare --net`), so the test touches nothing of the
    /// host. Skipped, with a message, when not root or without `unshare`.
    #[test]
    fn tun_device_in_a_network_namespace() {
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        if !root || !std::path::Path::new("/dev/net/tun").exists() {
            eprintln!("skipped tun_device_in_a_network_namespace: needs root and /dev/net/tun");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = match Command::new("unshare")
            .args(["--net", "--"])
            .arg(&exe)
            .args(["--exact", "tests::in_namespace", "--ignored", "--nocapture"])
            .env(CHILD_ENV, "1")
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("skipped tun_device_in_a_network_namespace: cannot run unshare: {e}");
                return;
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() && text.contains("unshare failed") {
            eprintln!("skipped tun_device_in_a_network_namespace: {text}");
            return;
        }
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(text.contains("1 passed"), "child ran no test:\n{text}");
    }

    /// The body of the namespace test: only meaningful inside the child.
    #[test]
    #[ignore = "run by tun_device_in_a_network_namespace inside a fresh network namespace"]
    fn in_namespace() {
        assert_eq!(
            std::env::var(CHILD_ENV).as_deref(),
            Ok("1"),
            "run only in the namespace"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let settings = TunSettings {
                offload: false,
                name: "rastest0".into(),
                mtu: 1400,
                ipv4: Some((ip("10.99.0.1"), 24)),
                ipv6: None,
                routes: vec![(IpAddr::V4(ip("10.98.0.0")), 24)],
            };
            let tun = TunDevice::create(&settings).unwrap();
            assert_eq!(tun.name(), "rastest0");

            let show = Command::new("ip")
                .args(["-o", "addr", "show", "dev", "rastest0"])
                .output()
                .unwrap();
            let show = String::from_utf8_lossy(&show.stdout);
            assert!(show.contains("10.99.0.1/24"), "{show}");
            let routes = Command::new("ip")
                .args(["route", "show", "dev", "rastest0"])
                .output()
                .unwrap();
            let routes = String::from_utf8_lossy(&routes.stdout);
            assert!(routes.contains("10.98.0.0/24"), "{routes}");
            // (Not /sys/class/net: sysfs still shows the parent namespace.)
            let link = Command::new("ip")
                .args(["-o", "link", "show", "dev", "rastest0"])
                .output()
                .unwrap();
            let link = String::from_utf8_lossy(&link.stdout);
            assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");

            // Kernel → TUN: a UDP datagram to a routed client address comes
            // out of the device as an IPv4 packet.
            let sock = std::net::UdpSocket::bind("10.99.0.1:0").unwrap();
            sock.send_to(b"to the client", "10.98.0.7:9999").unwrap();
            let mut buf = [0u8; 2048];
            let pkt = loop {
                let n = tokio::time::timeout(std::time::Duration::from_secs(5), tun.recv(&mut buf))
                    .await
                    .expect("a packet from the kernel")
                    .unwrap();
                // Skip anything else the kernel sends (IPv6 router
                // solicitations and the like).
                if buf[0] >> 4 == 4 && buf[9] == 17 {
                    break &buf[..n];
                }
            };
            assert_eq!(&pkt[16..20], &[10, 98, 0, 7]);
            assert!(pkt.ends_with(b"to the client"));

            // TUN → kernel → TUN: an ICMP Echo Request from a client to
            // the server's address is answered through the device.
            let request = icmp_echo(ip("10.99.0.2"), ip("10.99.0.1"), 0x4242, b"ping!");
            tun.send(&request).await.unwrap();
            let reply = loop {
                let n = tokio::time::timeout(std::time::Duration::from_secs(5), tun.recv(&mut buf))
                    .await
                    .expect("an echo reply")
                    .unwrap();
                if buf[0] >> 4 == 4 && buf[9] == 1 {
                    break &buf[..n];
                }
            };
            let ihl = usize::from(reply[0] & 0x0f) * 4;
            assert_eq!(&reply[12..16], &[10, 99, 0, 1]);
            assert_eq!(&reply[16..20], &[10, 99, 0, 2]);
            assert_eq!(reply[ihl], 0, "ICMP Echo Reply");
            assert_eq!(&reply[ihl + 4..ihl + 6], &[0x42, 0x42]);
            assert!(reply.ends_with(b"ping!"));

            // Batched writes with offload: consecutive TCP segments of one
            // flow reach the kernel as one coalesced (GSO) packet. The
            // device counts one received packet per write.
            let offload = TunDevice::create(&TunSettings {
                offload: true,
                name: "rastest1".into(),
                mtu: 1400,
                ipv4: Some((ip("10.97.0.1"), 24)),
                ipv6: None,
                routes: Vec::new(),
            })
            .unwrap();
            assert!(offload.offload());
            let writer = TunWriter::spawn(std::sync::Arc::new(offload));
            const SEGMENTS: u32 = 8;
            let mut sent_bytes = 0;
            for i in 0..SEGMENTS {
                let segment = tcp_segment(
                    ip("10.97.0.2"),
                    ip("10.97.0.1"),
                    1000 + i * 1000,
                    &[i as u8; 1000],
                );
                sent_bytes += segment.len();
                writer.send(&segment);
            }
            writer.flush();
            let (packets, bytes) = rx_counters("rastest1");
            assert!(
                (1..SEGMENTS as u64).contains(&packets),
                "{packets} packets for {SEGMENTS} segments: not coalesced"
            );
            // One IP and TCP header for the whole burst instead of one each.
            assert_eq!(bytes, (sent_bytes - (SEGMENTS as usize - 1) * 40) as u64);
            assert_eq!(writer.dropped(), 0);

            routes_and_devices_are_only_removed_by_their_owner();
        });
    }

    fn lock_routes(tun: &TunDevice) -> Vec<(IpAddr, u8)> {
        tun.lock_cleanup().routes.clone()
    }

    fn sh(args: &[&str]) -> String {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A route through another device is never taken over; a route that
    /// was there before is left there; a preexisting (persistent) device
    /// keeps its own routes and addresses and loses only ours.
    fn routes_and_devices_are_only_removed_by_their_owner() {
        // Someone else's route, through another (persistent) TUN.
        sh(&["ip", "tuntap", "add", "mode", "tun", "name", "rasother"]);
        sh(&["ip", "link", "set", "rasother", "up"]);
        sh(&["ip", "route", "add", "10.94.0.0/24", "dev", "rasother"]);
        let taken = TunDevice::create(&TunSettings {
            offload: false,
            name: "rastest3".into(),
            mtu: 1400,
            ipv4: Some((ip("10.93.0.1"), 32)),
            ipv6: None,
            routes: vec![
                (IpAddr::V4(ip("10.95.0.0")), 24),
                (IpAddr::V4(ip("10.94.0.0")), 24),
            ],
        });
        match taken {
            Err(TunError::RouteTaken { route, existing }) => {
                assert_eq!(route, "10.94.0.0/24");
                assert!(existing.contains("rasother"), "{existing}");
            }
            other => panic!("expected RouteTaken, got {other:?}"),
        }
        let routes = sh(&["ip", "route", "show"]);
        assert!(routes.contains("10.94.0.0/24 dev rasother"), "{routes}");
        assert!(
            !routes.contains("10.95.0.0"),
            "the failed start left a route: {routes}"
        );
        assert!(!sh(&["ip", "-o", "link", "show"]).contains("rastest3"));

        // A persistent TUN made beforehand.
        sh(&["ip", "tuntap", "add", "mode", "tun", "name", "rastest2"]);
        sh(&["ip", "link", "set", "rastest2", "up"]);
        let tun = TunDevice::create(&TunSettings {
            offload: false,
            name: "rastest2".into(),
            mtu: 1400,
            ipv4: Some((ip("10.93.0.1"), 32)),
            ipv6: None,
            routes: vec![(IpAddr::V4(ip("10.95.0.0")), 24)],
        })
        .unwrap();
        // Someone else's route through our device (configuring the device
        // takes routes made before it away, so it is made now).
        sh(&["ip", "route", "add", "10.96.0.0/24", "dev", "rastest2"]);
        let routes = sh(&["ip", "route", "show", "dev", "rastest2"]);
        assert!(
            routes.contains("10.95.0.0/24") && routes.contains("10.96.0.0/24"),
            "{routes}"
        );
        // The earlier route is used but not ours; a new one is.
        assert_eq!(
            tun.add_route(IpAddr::V4(ip("10.96.0.0")), 24).unwrap(),
            RouteAdded::AlreadyThere
        );
        assert_eq!(
            tun.add_route(IpAddr::V4(ip("10.91.0.0")), 24).unwrap(),
            RouteAdded::Added
        );
        assert_eq!(
            lock_routes(&tun),
            vec![
                (IpAddr::V4(ip("10.95.0.0")), 24),
                (IpAddr::V4(ip("10.91.0.0")), 24)
            ]
        );
        drop(tun);
        // (The kernel itself drops every route through a persistent TUN
        // when its last user closes it.)
        let routes = sh(&["ip", "route", "show", "dev", "rastest2"]);
        assert!(!routes.contains("10.95.0.0"), "ours is gone: {routes}");
        let addrs = sh(&["ip", "-o", "addr", "show", "dev", "rastest2"]);
        assert!(!addrs.contains("10.93.0.1"), "ours is gone: {addrs}");
        // The device itself stays: it was not ours.
        assert!(sh(&["ip", "-o", "link", "show"]).contains("rastest2"));
    }

    /// RX packets and bytes of `dev` as the kernel counts them.
    fn rx_counters(dev: &str) -> (u64, u64) {
        let out = Command::new("ip")
            .args(["-s", "-j", "link", "show", "dev", dev])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let rx = &text[text.find("\"rx\":").expect("rx stats")..];
        let field = |name: &str| -> u64 {
            let at = rx.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
            rx[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (field("packets"), field("bytes"))
    }

    /// An IPv4 TCP segment (ACK, valid checksums) from port 40000 to 5001.
    fn tcp_segment(src: Ipv4Addr, dst: Ipv4Addr, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5001u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x10; // ACK
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(payload);
        // RFC 793 §3.1: the checksum covers a pseudo-header too.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let c = checksum(&pseudo);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let total = (20 + tcp.len()) as u16;
        let mut ip = vec![0x45u8, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&tcp);
        ip
    }

    fn checksum(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for c in data.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, payload: &[u8]) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0];
        icmp.extend_from_slice(&id.to_be_bytes());
        icmp.extend_from_slice(&1u16.to_be_bytes());
        icmp.extend_from_slice(payload);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = (20 + icmp.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&icmp);
        ip
    }
}
