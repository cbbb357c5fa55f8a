//! Client addresses from the intranet's DHCP server, as RRAS gets them
//! (`[addresses] source = "dhcp"`): the [`AddressSource`] over the sans-IO
//! [`dhcp::Engine`], and the tokio driver that owns its socket and timer.
//!
//! The socket is UDP port 68 bound to the configured interface
//! (SO_BINDTODEVICE: RRAS's "Adapter" setting), with SO_BROADCAST. The
//! engine sets the broadcast bit in its requests (RFC 2131 §4.1), so the
//! server's answers are broadcast and reach this socket even though the
//! leased addresses are not configured on the interface.
//!
//! Addresses the engine acquires are routed into the TUN device (a /32
//! each), and the server's own one (the first lease) is put on the TUN
//! device; proxy ARP on the interface makes the clients reachable from the
//! intranet subnet, as RRAS does for on-subnet addresses.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhcp::{Allocation, Destination, Engine, EngineConfig, Event};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, Notify};

use crate::dhcp_leftovers;
use crate::pool::{AddressError, AddressSource, BoxFuture, StaticPlacement};
use crate::state::StateDir;
use crate::SessionId;

/// How the DHCP source is set up.
#[derive(Debug, Clone)]
pub struct DhcpSettings {
    /// The intranet interface to lease through.
    pub interface: String,
    /// Addresses leased at a time.
    pub block: usize,
    /// How long a client waits for DHCP before getting APIPA.
    pub answer_timeout: Duration,
    /// After a fall-back to APIPA, DHCP is tried again after this.
    pub retry_after: Duration,
    /// The TUN device client addresses are routed to (`None`: no routes,
    /// for tests and benchmarks without a TUN device).
    pub tun: Option<String>,
    /// The name this server is known by (its NAS-Identifier): octets 1–2
    /// of every hardware address it leases with come from it, so that
    /// servers sharing one DHCP server use distinct identities.
    pub instance: String,
    /// Where the leases held are recorded (dhcp_leftovers.rs), so that the
    /// next process releases them if this one is killed (`None`: not
    /// recorded, for tests and benchmarks).
    pub state: Option<StateDir>,
}

/// Why the DHCP source could not start.
#[derive(Debug, thiserror::Error)]
#[error("DHCP on interface {interface}: {source}")]
pub struct DhcpSourceError {
    pub interface: String,
    #[source]
    pub source: io::Error,
}

type Waiter = oneshot::Sender<Result<Ipv4Addr, AddressError>>;

struct Shared {
    engine: Mutex<Engine>,
    waiters: Mutex<HashMap<u64, Waiter>>,
    /// Wakes the driver: the engine has something to send or a new timer.
    wake: Notify,
    socket: UdpSocket,
    settings: DhcpSettings,
    /// Set once `stop` ran: the driver has nothing more to do.
    stopped: std::sync::atomic::AtomicBool,
    /// Routes and addresses this process put on the TUN: only these are
    /// removed again (one already there is someone else's).
    added: Mutex<Added>,
    /// The interface's proxy_arp setting before we switched it on, to put
    /// back when the server stops.
    proxy_arp_before: Option<String>,
    /// The engine's lease generation last recorded in the state directory.
    recorded: Mutex<Recorded>,
}

/// What [`record_leases`] last did.
struct Recorded {
    generation: u64,
    /// When a failed write was last logged (one line a minute at most).
    warned: Option<Instant>,
}

#[derive(Default)]
struct Added {
    routes: std::collections::HashSet<Ipv4Addr>,
    addresses: std::collections::HashSet<Ipv4Addr>,
}

/// The DHCP address source. Cheap to share (`Arc`).
pub struct DhcpSource {
    shared: Arc<Shared>,
    driver: tokio::task::JoinHandle<()>,
}

impl DhcpSource {
    /// Opens the socket and starts the driver. Nothing is leased until
    /// the first client asks (RRAS: "when the first remote access client
    /// connects, rather than when the service starts").
    pub fn start(settings: DhcpSettings) -> Result<Arc<DhcpSource>, DhcpSourceError> {
        let err = |source| DhcpSourceError {
            interface: settings.interface.clone(),
            source,
        };
        let socket = client_socket(&settings.interface).map_err(err)?;
        if let Some(state) = &settings.state {
            release_leftovers(&socket, state, &settings.interface);
        }
        socket.set_nonblocking(true).map_err(err)?;
        let socket = UdpSocket::from_std(socket.into()).map_err(err)?;
        let proxy_arp_before = match settings.tun {
            Some(_) => enable_proxy_arp(&settings.interface),
            None => None,
        };
        let cfg = EngineConfig {
            block: settings.block,
            answer_timeout: settings.answer_timeout,
            retry_after: settings.retry_after,
            seed: identity_seed(&settings.instance, rand::random()),
            ..EngineConfig::default()
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(Engine::new(cfg)),
            waiters: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            socket,
            settings,
            stopped: std::sync::atomic::AtomicBool::new(false),
            added: Mutex::new(Added::default()),
            proxy_arp_before,
            // The engine starts at generation 0 with no lease, and the
            // file was cleared above (or is not kept).
            recorded: Mutex::new(Recorded {
                generation: 0,
                warned: None,
            }),
        });
        let driver = tokio::spawn(drive(shared.clone()));
        Ok(Arc::new(DhcpSource { shared, driver }))
    }

    /// The server stops: DHCPRELEASE every lease (RRAS: "When the Routing
    /// and Remote Access service is stopped, it sends DHCPRelease messages
    /// to release all of the IPv4 addresses obtained through DHCP").
    /// Returns how many addresses were released.
    pub async fn stop(&self) -> usize {
        let released = {
            let mut engine = lock(&self.shared.engine);
            let n = engine.leased_addresses().len();
            engine.stop();
            n
        };
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.driver.abort();
        // Send the releases and apply the events here, in order.
        flush(&self.shared).await;
        if let Some(before) = &self.shared.proxy_arp_before {
            let path = proxy_arp_path(&self.shared.settings.interface);
            if let Err(e) = std::fs::write(&path, before) {
                tracing::warn!("cannot restore proxy ARP ({path}): {e}");
            }
        }
        if released > 0 {
            tracing::info!(
                interface = %self.shared.settings.interface,
                "released {released} DHCP lease(s)"
            );
        }
        released
    }

    /// Leases bound now (the server's first).
    pub fn leased(&self) -> Vec<Ipv4Addr> {
        lock(&self.shared.engine).leased_addresses()
    }

    /// The engine's counts.
    pub fn counts(&self) -> dhcp::engine::Counts {
        lock(&self.shared.engine).counts()
    }
}

impl Drop for DhcpSource {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AddressSource for DhcpSource {
    fn server_address(&self) -> Option<Ipv4Addr> {
        lock(&self.shared.engine).server_address()
    }

    fn allocate(&self, session: SessionId) -> BoxFuture<'_, Result<Ipv4Addr, AddressError>> {
        let key = session.raw();
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let answer = {
            let mut engine = lock(&self.shared.engine);
            let a = engine.allocate(now, key);
            if a == Allocation::Pending {
                // Registered under the engine lock: the driver cannot
                // deliver the event before the waiter exists.
                lock(&self.shared.waiters).insert(key, tx);
            }
            a
        };
        self.shared.wake.notify_one();
        // The engine answers within its answer timeout (then APIPA); the
        // extra margin only guards against a driver that died.
        let limit = self.shared.settings.answer_timeout + Duration::from_secs(5);
        Box::pin(async move {
            match answer {
                Allocation::Ready(addr) => Ok(addr),
                Allocation::Refused => Err(AddressError::Unavailable(
                    "the DHCP address source is stopped or exhausted".into(),
                )),
                Allocation::Pending => match tokio::time::timeout(limit, rx).await {
                    Ok(Ok(result)) => result,
                    _ => {
                        lock(&self.shared.engine).release(key);
                        lock(&self.shared.waiters).remove(&key);
                        Err(AddressError::Unavailable("no answer from DHCP".into()))
                    }
                },
            }
        })
    }

    /// RFC 2865 §5.8: a static address is the administrator's, outside
    /// the DHCP scope: not leased, routed to the TUN for the session, so
    /// proxy ARP answers for it on the intranet interface like for the
    /// leased ones. (The session table keeps two sessions from holding it.)
    fn allocate_static(
        &self,
        _session: SessionId,
        _addr: Ipv4Addr,
    ) -> Result<StaticPlacement, AddressError> {
        Ok(StaticPlacement::HostRoute)
    }

    fn release(&self, session: SessionId) {
        lock(&self.shared.engine).release(session.raw());
        lock(&self.shared.waiters).remove(&session.raw());
        self.shared.wake.notify_one();
    }
}

/// The engine's seed: its low 16 bits (octets 1–2 of every chaddr the
/// engine makes, see `dhcp::engine`) from a hash of `instance`, the rest
/// (where the identity counter starts, transaction ids) from `random`.
///
/// Several servers leasing from one DHCP server (docs/ADMIN.md, "Scaling
/// out") must never present the same chaddr/client identifier, or the DHCP
/// server hands both the same address (RFC 2131 §4.2: the client
/// identifier is the key of a lease). With distinct NAS-Identifiers their
/// identities differ in those octets (unless the 16-bit hashes collide,
/// and then still by the random counter start); a DHCP operator can also
/// tell from a lease's MAC address which server holds it. Two servers
/// sharing a name differ by the random counter start alone.
pub fn identity_seed(instance: &str, random: u64) -> u64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(instance.as_bytes());
    (random & !0xffff) | u64::from(u16::from_be_bytes([h[0], h[1]]))
}

/// The two hardware-address octets `instance` leases with (lower case hex,
/// as in `02:xx:yy:..`), for logs and tests.
pub fn instance_octets(instance: &str) -> String {
    let s = identity_seed(instance, 0);
    format!("{:02x}:{:02x}", (s >> 8) as u8, s as u8)
}

/// UDP port 68 on `interface`, still blocking (the leftover releases are
/// sent on it before it goes to tokio).
fn client_socket(interface: &str) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Another DHCP client on the host may hold port 68 on another
    // interface; with the device binding each sees its own traffic.
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(interface.as_bytes()))?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dhcp::message::CLIENT_PORT).into())?;
    Ok(s)
}

/// RFC 2131 §4.4.6 for the leases a previous process recorded and did not
/// release (killed, crashed): a DHCPRELEASE for each, then the record is
/// cleared. A record that cannot be read is reported and ignored (those
/// leases expire on their own); nothing here stops the server.
fn release_leftovers(socket: &socket2::Socket, state: &StateDir, interface: &str) {
    let leases = match dhcp_leftovers::read(state.path()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                interface,
                "ignoring the DHCP lease record {e}; leases it named expire on their own"
            );
            Vec::new()
        }
    };
    let mut released = 0;
    for l in &leases {
        let id = dhcp::message::Identity { chaddr: l.chaddr };
        let bytes = dhcp::message::release(&id, rand::random(), l.addr, l.server);
        let unicast = SocketAddrV4::new(l.server, dhcp::message::SERVER_PORT);
        let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, dhcp::message::SERVER_PORT);
        // As `send`: without a route to the server, the broadcast still
        // reaches it on this link.
        let sent = socket
            .send_to(&bytes, &unicast.into())
            .or_else(|_| socket.send_to(&bytes, &broadcast.into()));
        match sent {
            Ok(_) => released += 1,
            Err(e) => tracing::warn!(interface, "DHCPRELEASE of {} to {}: {e}", l.addr, l.server),
        }
    }
    if !leases.is_empty() {
        tracing::info!(
            interface,
            "released {released} DHCP lease(s) left by the previous run"
        );
    }
    // Cleared also after a failed release or a foreign file: the addresses
    // are not this process's, and a stale record would be released again.
    let path = state.file(dhcp_leftovers::FILE);
    if path.exists() {
        if let Err(e) = dhcp_leftovers::write(state, &[]) {
            tracing::warn!(interface, "cannot clear the DHCP lease record {e}");
        }
    }
}

/// Records the leases held in the state directory when they changed
/// (dhcp_leftovers.rs). A failed write (disk full) is logged at most once a
/// minute and tried again at the next change or driver wake-up; it only
/// means a `kill -9` would leave those leases to expire.
fn record_leases(shared: &Shared) {
    let Some(state) = &shared.settings.state else {
        return;
    };
    let (generation, leases) = {
        let engine = lock(&shared.engine);
        (engine.lease_generation(), engine.held_leases())
    };
    let mut recorded = lock(&shared.recorded);
    if recorded.generation == generation {
        return;
    }
    // A few hundred bytes with an fsync, only when a lease is bound, lost
    // or released: rare enough to do on the driver's task.
    match dhcp_leftovers::write(state, &leases) {
        Ok(()) => {
            recorded.generation = generation;
            recorded.warned = None;
        }
        Err(e) => {
            let now = Instant::now();
            if recorded
                .warned
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
            {
                recorded.warned = Some(now);
                tracing::warn!(
                    interface = %shared.settings.interface,
                    "cannot record the DHCP leases held: {e}; if the server is killed they stay leased until they expire"
                );
            }
        }
    }
}

fn proxy_arp_path(interface: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{interface}/proxy_arp")
}

/// Proxy ARP on the intranet interface: the intranet reaches on-subnet
/// client addresses through this server (the routes point into the TUN).
/// Returns the previous setting if this changed it (to restore on stop).
fn enable_proxy_arp(interface: &str) -> Option<String> {
    let path = proxy_arp_path(interface);
    let before = std::fs::read_to_string(&path).ok()?.trim().to_owned();
    if before != "0" {
        return None;
    }
    match std::fs::write(&path, "1") {
        Ok(()) => Some(before),
        Err(e) => {
            tracing::warn!(
                "cannot enable proxy ARP ({path}): {e}; intranet hosts may not reach clients"
            );
            None
        }
    }
}

/// The driver: send what the engine wants sent, apply its events, feed it
/// received packets and its timer.
async fn drive(shared: Arc<Shared>) {
    let mut buf = vec![0u8; dhcp::message::MAX_MESSAGE + 1];
    loop {
        flush(&shared).await;
        let deadline = lock(&shared.engine).poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = shared.socket.recv_from(&mut buf) => match received {
                // Larger than MAX_MESSAGE (the buffer holds one byte more):
                // the engine refuses it.
                Ok((n, _from)) => lock(&shared.engine).handle_input(Instant::now(), &buf[..n]),
                Err(e) => {
                    tracing::warn!(interface = %shared.settings.interface, "DHCP receive: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = sleep => lock(&shared.engine).handle_timeout(Instant::now()),
            _ = shared.wake.notified() => {}
        }
    }
}

/// Sends every pending transmit and applies every pending event.
async fn flush(shared: &Shared) {
    loop {
        let (transmits, events) = {
            let mut engine = lock(&shared.engine);
            let t: Vec<_> = std::iter::from_fn(|| engine.poll_transmit()).collect();
            let e: Vec<_> = std::iter::from_fn(|| engine.poll_event()).collect();
            (t, e)
        };
        if transmits.is_empty() && events.is_empty() {
            record_leases(shared);
            return;
        }
        for t in transmits {
            send(shared, t).await;
        }
        for e in events {
            apply(shared, e).await;
        }
    }
}

async fn send(shared: &Shared, t: dhcp::Transmit) {
    let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, dhcp::message::SERVER_PORT);
    let to = match t.to {
        Destination::Broadcast => broadcast,
        Destination::Server(ip) => SocketAddrV4::new(ip, dhcp::message::SERVER_PORT),
    };
    if let Err(e) = shared.socket.send_to(&t.bytes, to).await {
        // An interface without an address has no route to the server:
        // the broadcast still reaches it (the server matches the request
        // by client identifier, not by source address).
        if to != broadcast {
            tracing::debug!("DHCP unicast to {to}: {e}; broadcasting instead");
            if let Err(e) = shared.socket.send_to(&t.bytes, broadcast).await {
                tracing::warn!(interface = %shared.settings.interface, "DHCP send: {e}");
            }
        } else {
            tracing::warn!(interface = %shared.settings.interface, "DHCP send: {e}");
        }
    }
}

async fn apply(shared: &Shared, event: Event) {
    let iface = &shared.settings.interface;
    match event {
        Event::Assigned { session, addr } => {
            // Not inside the `if let`: the waiters lock must be dropped
            // before the engine lock is taken (allocate takes them in the
            // other order).
            let waiter = lock(&shared.waiters).remove(&session);
            if let Some(w) = waiter {
                if w.send(Ok(addr)).is_err() {
                    // The session gave up meanwhile: the address is free.
                    lock(&shared.engine).release(session);
                }
            }
        }
        Event::Refused { session, reason } => {
            let waiter = lock(&shared.waiters).remove(&session);
            if let Some(w) = waiter {
                let _ = w.send(Err(AddressError::Unavailable(reason)));
            }
        }
        Event::ServerAddress(addr) => {
            tracing::info!(interface = %iface, "server address (IPCP local address) is now {addr}");
            if let Some(tun) = &shared.settings.tun {
                if ip(&["-4", "addr", "add", &format!("{addr}/32"), "dev", tun]).await {
                    lock(&shared.added).addresses.insert(addr);
                }
            }
        }
        Event::Acquired(addr) => {
            tracing::info!(interface = %iface, "address {addr} acquired");
            if let Some(tun) = &shared.settings.tun {
                // `add`, not `replace`: a route through another device is
                // someone else's and stays theirs.
                if ip(&["-4", "route", "add", &format!("{addr}/32"), "dev", tun]).await {
                    lock(&shared.added).routes.insert(addr);
                }
            }
        }
        Event::Relinquished(addr) => {
            tracing::info!(interface = %iface, "address {addr} given back");
            if let Some(tun) = &shared.settings.tun {
                let (route, address) = {
                    let mut added = lock(&shared.added);
                    (added.routes.remove(&addr), added.addresses.remove(&addr))
                };
                if route {
                    ip(&["-4", "route", "del", &format!("{addr}/32"), "dev", tun]).await;
                }
                if address {
                    ip(&["-4", "addr", "del", &format!("{addr}/32"), "dev", tun]).await;
                }
            }
        }
        Event::FellBackToApipa { waiting } => {
            tracing::warn!(
                interface = %iface,
                "no DHCP server answered on {iface}: using APIPA addresses (169.254.0.0/16) for {waiting} waiting client(s) and new ones for {} s; they cannot reach beyond this server",
                shared.settings.retry_after.as_secs()
            );
        }
        Event::DhcpRestored => {
            tracing::info!(interface = %iface, "a DHCP server answers again on {iface}: new clients get leased addresses");
        }
        Event::LeaseLost { addr, session } => {
            // An Option field is recorded only when set (never "Some(..)").
            tracing::warn!(interface = %iface, session, "the DHCP server took back {addr} (NAK or expiry)");
        }
    }
}

/// Runs `ip ARGS`; failures are logged (a missing route is not fatal).
/// Whether it succeeded.
async fn ip(args: &[&str]) -> bool {
    match tokio::process::Command::new("ip").args(args).output().await {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            tracing::debug!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            tracing::warn!("cannot run ip: {e}");
            false
        }
    }
}

impl DhcpSettings {
    /// The settings `[addresses]` asks for, or `None` with the static pool.
    pub fn from_config(
        addresses: &crate::config::AddressConfig,
        tun: Option<&str>,
        instance: &str,
    ) -> Option<DhcpSettings> {
        if addresses.source != crate::config::AddressSourceKind::Dhcp {
            return None;
        }
        Some(DhcpSettings {
            interface: addresses.dhcp_interface.clone()?,
            block: usize::from(addresses.dhcp_block),
            answer_timeout: Duration::from_secs(u64::from(addresses.dhcp_timeout_secs)),
            retry_after: Duration::from_secs(u64::from(addresses.dhcp_retry_secs)),
            tun: tun.map(str::to_owned),
            instance: instance.to_owned(),
            state: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_octets_come_from_the_instance_and_the_rest_is_random() {
        let a = identity_seed("vpn-a", 0x1234_5678_9abc_def0);
        let a2 = identity_seed("vpn-a", 0x0fed_cba9_8765_4321);
        let b = identity_seed("vpn-b", 0x1234_5678_9abc_def0);
        assert_eq!(a & 0xffff, a2 & 0xffff, "stable per instance");
        assert_ne!(a & 0xffff, b & 0xffff, "distinct per instance");
        assert_eq!(a & !0xffff, 0x1234_5678_9abc_0000, "random above");
        assert_eq!(
            instance_octets("vpn-a"),
            format!("{:02x}:{:02x}", (a >> 8) as u8, a as u8)
        );
    }
}
