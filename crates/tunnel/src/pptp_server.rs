//! The server side of PPTP (RFC 2637): one TCP control connection per
//! client driven by [`pptp::Pac`], and one raw GRE socket (IP protocol 47)
//! shared by every call.
//!
//! ```text
//! accept → SCCRQ/SCCRP → OCRQ/OCRP → GRE: LCP, auth, CCP (MPPE), IPCP → up
//! ```
//!
//! GRE is demultiplexed by the server's Call ID alone, so Call IDs are
//! unique across all control connections: the [`GreDemux`] hands them out
//! and remembers, for each, the client's address and the call's bounded
//! queue. Its reader task takes every GRE datagram of the host, checks the
//! source address against the call's client, and queues it for the call's
//! session (dropped when the queue is full). A datagram that is not GRE,
//! truncated, for an unknown call, or from the wrong address costs only
//! itself: it is counted by reason, and the counts are logged in one line
//! at most every `DROP_LOG_INTERVAL` (5 s; a flood costs a line, not a line
//! per datagram). Sessions send through the same (unconnected) socket to
//! the client's address. Both directions are batched (`recvmmsg` /
//! `sendmmsg`, see `ppp_over_gre`).
//!
//! Clients behind a NAT all share its address; the server tells their
//! calls apart by its own Call ID alone, so that works whenever the NAT
//! passes PPTP at all (see `pptp_client` on NAT pass-through).
//!
//! The raw socket needs root (CAP_NET_RAW).

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ppp::link::{Link, LinkConfig};
use pptp::control::{DisconnectResult, StopReason};
use pptp::{Event, GreConfig, GreSession, Pac, PacConfig};
use session::{EndReason, LostCarrier, SessionEvent};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::end_reasons;
use crate::hooked::{self, Hooked};
use crate::hooks::{Owner, PacketSink, ServerHooks, SessionInfo};
use crate::ppp_over_gre;
use crate::{Outcome, SessionStats};

/// Datagrams handled per wake-up before the loop looks at other work.
const BATCH: usize = 64;
/// A summary of dropped GRE datagrams is logged at most this often: a
/// flood costs one log line per interval, not one per datagram.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// GRE datagrams queued for one call; more are dropped.
const CALL_QUEUE: usize = 512;

/// How long a new call waits for the client's first GRE datagram before
/// starting LCP anyway (see `Session::lower_up_at`).
const FIRST_GRE_GRACE: Duration = Duration::from_secs(1);
/// Control messages are small; a peer that does not take them within this
/// long is gone.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every server session shares.
#[derive(Debug, Clone)]
pub struct PptpServerConfig {
    /// The PPP link settings (server role, CCP/MPPE as configured).
    pub link: LinkConfig,
    /// The control connection settings (one call per connection).
    pub pac: PacConfig,
    /// The GRE data channel settings.
    pub gre: GreConfig,
    /// A client must have its call established within this time.
    pub setup_timeout: Duration,
}

impl PptpServerConfig {
    /// Defaults: one call per control connection (as Windows and pppd
    /// clients place), the peer's GRE window not enforced (MS-PTPT), our
    /// advertised window matching the GRE receive window.
    pub fn new(link: LinkConfig) -> Self {
        let pac = PacConfig {
            max_calls: 1,
            ..PacConfig::default()
        };
        let gre = GreConfig {
            recv_window: pac.recv_window,
            enforce_peer_window: false,
            ..GreConfig::default()
        };
        PptpServerConfig {
            link,
            pac,
            gre,
            setup_timeout: Duration::from_secs(30),
        }
    }
}

/// Where the reader delivers one call's datagrams.
struct Route {
    peer: Ipv4Addr,
    tx: mpsc::Sender<Bytes>,
}

struct CallTable {
    next: u16,
    calls: HashMap<u16, Route>,
}

/// The shared raw GRE socket and the table of calls.
pub struct GreDemux {
    socket: UdpSocket,
    table: Mutex<CallTable>,
    /// Datagrams dropped: not GRE, truncated, unknown call, wrong source,
    /// queue full.
    dropped: AtomicU64,
}

/// Why the reader dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misroute {
    /// Not an IPv4 GRE datagram, or truncated.
    Malformed,
    /// No call with this ID (the ID, the source).
    UnknownCall(u16, Ipv4Addr),
    /// The call belongs to another client.
    WrongSource(u16, Ipv4Addr),
}

/// Datagrams the reader dropped since its last log line, by reason.
#[derive(Debug, Default)]
struct DropLog {
    malformed: u64,
    unknown_call: u64,
    wrong_source: u64,
    queue_full: u64,
    /// The latest unknown call, and the latest misdirected one: enough to
    /// tell a stale client from a spoofer.
    last_unknown: Option<(u16, Ipv4Addr)>,
    last_wrong_source: Option<(u16, Ipv4Addr)>,
    logged_at: Option<Instant>,
}

impl DropLog {
    fn count(&mut self, why: Misroute) {
        match why {
            Misroute::Malformed => self.malformed += 1,
            Misroute::UnknownCall(id, src) => {
                self.unknown_call += 1;
                self.last_unknown = Some((id, src));
            }
            Misroute::WrongSource(id, src) => {
                self.wrong_source += 1;
                self.last_wrong_source = Some((id, src));
            }
        }
    }

    fn pending(&self) -> bool {
        self.malformed + self.unknown_call + self.wrong_source + self.queue_full > 0
    }

    /// When the next summary is due, if there is anything to say and the
    /// last summary was recent (else `maybe_log` writes it at once).
    fn due(&self) -> Option<Instant> {
        if !self.pending() {
            return None;
        }
        self.logged_at.map(|t| t + DROP_LOG_INTERVAL)
    }

    /// Log the counts if the interval has passed, and start over.
    fn maybe_log(&mut self, now: Instant) {
        if !self.pending() || self.logged_at.is_some_and(|t| now < t + DROP_LOG_INTERVAL) {
            return;
        }
        let show = |last: Option<(u16, Ipv4Addr)>| {
            last.map(|(id, src)| format!(" (last: call {id} from {src})"))
                .unwrap_or_default()
        };
        tracing::warn!(
            "GRE datagrams dropped{}: {} for unknown calls{}, {} from the wrong address{}, {} malformed or truncated, {} over a call's full queue",
            self.logged_at
                .map(|t| format!(" in the last {:.0} s", now.duration_since(t).as_secs_f64()))
                .unwrap_or_default(),
            self.unknown_call,
            show(self.last_unknown),
            self.wrong_source,
            show(self.last_wrong_source),
            self.malformed,
            self.queue_full,
        );
        *self = DropLog {
            logged_at: Some(now),
            ..DropLog::default()
        };
    }
}

impl GreDemux {
    /// Opens the raw GRE socket (needs root or CAP_NET_RAW).
    pub fn open() -> io::Result<Arc<GreDemux>> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(pptp::IP_PROTOCOL_GRE))),
        )?;
        socket.set_nonblocking(true)?;
        let _ = socket.set_recv_buffer_size(4 << 20);
        let _ = socket.set_send_buffer_size(4 << 20);
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
        Ok(Arc::new(GreDemux {
            socket,
            table: Mutex::new(CallTable {
                next: 1,
                calls: HashMap::new(),
            }),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Calls registered right now.
    pub fn calls(&self) -> usize {
        self.lock().calls.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads GRE datagrams forever and hands each to its call; drops are
    /// counted and summarised in the log at most every
    /// `DROP_LOG_INTERVAL`.
    pub async fn run(self: Arc<Self>) {
        let mut batch = ppp_over_gre::RecvBatch::new();
        let mut drops = DropLog::default();
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
            drops.maybe_log(Instant::now());
        }
    }

    /// Route the datagrams of one `recvmmsg`, taking the table lock once.
    fn deliver_batch(&self, batch: &ppp_over_gre::RecvBatch, n: usize, drops: &mut DropLog) {
        let table = self.lock();
        for i in 0..n {
            match batch.get(i) {
                Some(datagram) => self.deliver_locked(&table, datagram, drops),
                None => {
                    drops.count(Misroute::Malformed);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn deliver_locked(&self, table: &CallTable, datagram: &[u8], drops: &mut DropLog) {
        match route(datagram, |id| table.calls.get(&id).map(|r| r.peer)) {
            Ok((id, gre)) => {
                let queued = table
                    .calls
                    .get(&id)
                    .is_some_and(|r| r.tx.try_send(Bytes::copy_from_slice(gre)).is_ok());
                if !queued {
                    drops.queue_full += 1;
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(why) => {
                tracing::trace!("GRE dropped: {why:?}");
                drops.count(why);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[cfg(test)]
    fn deliver(&self, datagram: &[u8]) {
        let table = self.lock();
        self.deliver_locked(&table, datagram, &mut DropLog::default());
    }

    /// A Call ID no other call uses, routed to `peer` through `tx`; `None`
    /// if all are taken.
    fn register(&self, peer: Ipv4Addr, tx: mpsc::Sender<Bytes>) -> Option<u16> {
        let mut table = self.lock();
        for _ in 0..=u16::MAX {
            let id = table.next;
            table.next = table.next.wrapping_add(1);
            if id != 0 && !table.calls.contains_key(&id) {
                table.calls.insert(id, Route { peer, tx });
                return Some(id);
            }
        }
        None
    }

    fn release(&self, id: u16) {
        self.lock().calls.remove(&id);
    }

    /// Write datagrams to `peer` in batches: (sent, octets).
    fn send_to(&self, datagrams: &[Vec<u8>], peer: Ipv4Addr) -> (usize, u64) {
        ppp_over_gre::send_batch(self.socket.as_raw_fd(), datagrams, Some(peer))
    }
}

/// The call a datagram belongs to and its GRE bytes, if it comes from
/// that call's client.
fn route(
    datagram: &[u8],
    peer_of: impl FnOnce(u16) -> Option<Ipv4Addr>,
) -> Result<(u16, &[u8]), Misroute> {
    let (src, gre) = ipv4_gre(datagram).ok_or(Misroute::Malformed)?;
    let id = pptp::gre::peek_call_id(gre).ok_or(Misroute::Malformed)?;
    match peer_of(id) {
        None => Err(Misroute::UnknownCall(id, src)),
        Some(peer) if peer != src => Err(Misroute::WrongSource(id, src)),
        Some(_) => Ok((id, gre)),
    }
}

/// The source and the GRE bytes of an IPv4 datagram.
fn ipv4_gre(datagram: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    let first = *datagram.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || datagram.len() < ihl {
        return None;
    }
    if datagram[9] != pptp::IP_PROTOCOL_GRE {
        return None;
    }
    let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = if total >= ihl && total <= datagram.len() {
        total
    } else {
        datagram.len()
    };
    Some((src, &datagram[ihl..end]))
}

/// Over the port limit: answer the control connection, refuse the call
/// with General Error / No-Resource (RFC 2637 §2.8), and close.
pub async fn refuse(mut tcp: TcpStream, config: &PptpServerConfig) {
    let pac_config = PacConfig {
        max_calls: 0,
        ..config.pac.clone()
    };
    let mut pac = Pac::new(pac_config, Instant::now());
    let mut rbuf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(msg) = pac.poll_transmit() {
            if write_control(&mut tcp, &msg).await.is_err() {
                return;
            }
        }
        let mut refused = false;
        while let Some(event) = pac.poll_event() {
            if matches!(event, Event::CallRefused { .. }) {
                refused = true;
            }
        }
        if refused || pac.is_closed() {
            break;
        }
        tokio::select! {
            r = tcp.read(&mut rbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => pac.handle_input(Instant::now(), &rbuf[..n]),
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // Give the client a moment to read the reply and hang up itself.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = tcp.read(&mut rbuf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let _ = tcp.shutdown().await;
}

/// Serve one control connection until it ends.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    tcp: TcpStream,
    peer: Ipv4Addr,
    config: &PptpServerConfig,
    demux: Arc<GreDemux>,
    hooks: Arc<dyn ServerHooks>,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    mut shutdown: watch::Receiver<bool>,
) -> Outcome {
    let (gre_tx, gre_rx) = mpsc::channel(CALL_QUEUE);
    // The allocator registers the call in the demultiplexer; the session
    // releases it when it ends.
    let allocated = Arc::new(Mutex::new(Vec::<u16>::new()));
    let pac = {
        let demux = demux.clone();
        let allocated = allocated.clone();
        Pac::new(config.pac.clone(), Instant::now()).with_call_id_allocator(Box::new(move || {
            let id = demux.register(peer, gre_tx.clone())?;
            allocated.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            Some(id)
        }))
    };
    let mut setup = Setup {
        tcp,
        pac,
        rbuf: vec![0u8; 4096],
    };
    let established = setup.establish(config.setup_timeout, &mut shutdown).await;
    let outcome = match established {
        Err(reason) => Outcome {
            reason,
            stats: SessionStats::default(),
            was_up: false,
        },
        Ok(call) => {
            tracing::info!(
                session = info.id,
                local_call_id = call.local,
                peer_call_id = call.peer,
                peer_window = call.window,
                "PPTP call established"
            );
            let gre = GreSession::new(config.gre.clone(), call.local, call.peer, call.window);
            // The link's lower layer comes up with the client's first GRE
            // datagram, or after FIRST_GRE_GRACE (see `lower_up_at`).
            let session = Session {
                tcp: setup.tcp,
                pac: setup.pac,
                rbuf: setup.rbuf,
                gre,
                gre_rx,
                demux: demux.clone(),
                peer,
                call_id: call.local,
                hooked: Hooked::new(Owner::Server(hooks), Link::new(config.link.clone()), info),
                lower_up_at: Some(Instant::now() + FIRST_GRE_GRACE),
                sink,
            };
            session.run(shutdown).await
        }
    };
    for id in allocated
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        demux.release(id);
    }
    outcome
}

struct CallIds {
    local: u16,
    peer: u16,
    window: u16,
}

/// The control connection before the call is up.
struct Setup {
    tcp: TcpStream,
    pac: Pac,
    rbuf: Vec<u8>,
}

impl Setup {
    async fn establish(
        &mut self,
        limit: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<CallIds, EndReason> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(msg) = self.pac.poll_transmit() {
                write_control(&mut self.tcp, &msg).await?;
            }
            while let Some(event) = self.pac.poll_event() {
                match event {
                    Event::ControlConnected {
                        peer_host_name,
                        peer_vendor,
                        ..
                    } => tracing::debug!(
                        "PPTP control connection up: host {}, vendor {}",
                        String::from_utf8_lossy(&peer_host_name).escape_debug(),
                        String::from_utf8_lossy(&peer_vendor).escape_debug()
                    ),
                    Event::CallEstablished {
                        local_call_id,
                        peer_call_id,
                        peer_window,
                        ..
                    } => {
                        return Ok(CallIds {
                            local: local_call_id,
                            peer: peer_call_id,
                            window: peer_window,
                        })
                    }
                    Event::CallRefused { result, error, .. } => {
                        tracing::info!("PPTP call refused: {result}, {error}")
                    }
                    Event::Closed { reason } => {
                        return Err(end_reasons::from_pptp_control(&reason))
                    }
                    other => tracing::debug!("PPTP event during setup: {other:?}"),
                }
            }
            if self.pac.is_closed() {
                return Err(EndReason::LostCarrier(LostCarrier::TransportClosed));
            }
            let timer = self.pac.poll_timeout();
            let sleep = async {
                match timer {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.tcp.read(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => return Err(EndReason::LostCarrier(LostCarrier::TransportClosed)),
                    Ok(n) => self.pac.handle_input(Instant::now(), &self.rbuf[..n]),
                },
                _ = sleep => self.pac.handle_timeout(Instant::now()),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(EndReason::ProtocolError(format!("no call established within {} s", limit.as_secs())))
                }
                _ = shutdown.changed() => {
                    self.pac.close(Instant::now(), StopReason::None);
                    while let Some(msg) = self.pac.poll_transmit() {
                        let _ = write_control(&mut self.tcp, &msg).await;
                    }
                    return Err(EndReason::ServerStopping);
                }
            }
        }
    }
}

async fn write_control(tcp: &mut TcpStream, msg: &[u8]) -> Result<(), EndReason> {
    match tokio::time::timeout(CONTROL_WRITE_TIMEOUT, tcp.write_all(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(EndReason::LostCarrier(LostCarrier::TransportFailed(
            format!("control connection: {e}"),
        ))),
        Err(_) => Err(EndReason::LostCarrier(LostCarrier::PeerNotReading)),
    }
}

/// An established call.
struct Session {
    tcp: TcpStream,
    pac: Pac,
    rbuf: Vec<u8>,
    gre: GreSession,
    gre_rx: mpsc::Receiver<Bytes>,
    demux: Arc<GreDemux>,
    peer: Ipv4Addr,
    call_id: u16,
    /// The PPP link and the owner's hooks.
    hooked: Hooked,
    /// Until the PPP link's lower layer is up: when it comes up at the
    /// latest. We do not send LCP until the client's first GRE arrives.
    /// Our Outgoing-Call-Reply (TCP) and our first GRE datagram leave
    /// back to back; a router doing PPTP pass-through (Linux
    /// nf_conntrack_pptp) learns the Call IDs from the reply, and a GRE
    /// datagram that overtakes it (another CPU's queue, another path)
    /// creates a conntrack entry of its own that swallows every GRE
    /// datagram of the call from then on. The client's first GRE proves
    /// the reply has passed; clients that wait for us get LCP after the
    /// grace period.
    lower_up_at: Option<Instant>,
    sink: Arc<dyn PacketSink>,
}

struct State {
    frame: Vec<u8>,
    /// The link is down: the call is cleared and the control connection
    /// closing.
    link_down: bool,
    stats: SessionStats,
    gre_dropped: u64,
    /// Datagrams written by the next `flush_gre`, reused.
    out: Vec<Vec<u8>>,
    /// Drops not yet logged, and when the last summary was.
    drops_unlogged: u64,
    drops_logged_at: Option<Instant>,
}

impl Session {
    fn id(&self) -> u64 {
        self.hooked.core.info().id
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Outcome {
        let mut st = State {
            frame: Vec::new(),
            link_down: false,
            stats: SessionStats::default(),
            gre_dropped: 0,
            out: Vec::with_capacity(ppp_over_gre::BATCH),
            drops_unlogged: 0,
            drops_logged_at: None,
        };
        let mut stopping = false;
        loop {
            self.process(&mut st);
            self.hooked.report(&st.stats);
            if let Err(e) = self.flush_control().await {
                self.hooked.core.record_reason(e);
                self.hooked.core.lower_down(Instant::now(), None);
                break;
            }
            if self.pac.is_closed() {
                break;
            }
            let deadline = [
                self.hooked.core.poll_timeout(),
                self.pac.poll_timeout(),
                self.gre.poll_timeout(),
                self.lower_up_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let can_take = self.hooked.outbound.is_some();
            let stop_requested = hooked::stop_requested(self.hooked.live.clone());
            tokio::select! {
                r = self.tcp.read(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => {
                        self.hooked.core.lower_down(Instant::now(), None);
                        self.pac.handle_transport_closed();
                        self.drain_pac();
                        break;
                    }
                    Ok(n) => {
                        st.stats.bytes_in += n as u64;
                        self.pac.handle_input(Instant::now(), &self.rbuf[..n]);
                    }
                },
                Some(datagram) = self.gre_rx.recv() => {
                    self.on_datagram(&mut st, &datagram);
                    for _ in 1..BATCH {
                        match self.gre_rx.try_recv() {
                            Ok(d) => self.on_datagram(&mut st, &d),
                            Err(_) => break,
                        }
                    }
                    self.sink.flush();
                },
                p = hooked::recv(&mut self.hooked.outbound), if can_take => match p {
                    Some(packet) => {
                        self.send_ip(&mut st, &packet);
                        for _ in 1..BATCH {
                            let Some(rx) = self.hooked.outbound.as_mut() else { break };
                            match rx.try_recv() {
                                Ok(packet) => self.send_ip(&mut st, &packet),
                                Err(_) => break,
                            }
                        }
                    }
                    None => self.hooked.outbound = None,
                },
                answered = self.hooked.answers.next() => self.hooked.apply(answered),
                _ = sleep => {
                    let now = Instant::now();
                    if self.lower_up_at.is_some_and(|t| t <= now) {
                        self.lower_up(now);
                    }
                    self.hooked.core.handle_timeout(now);
                    self.pac.handle_timeout(now);
                    self.gre.handle_timeout(now);
                }
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    self.lower_up(Instant::now());
                    self.hooked.core.close(Instant::now(), EndReason::ServerStopping);
                }
                _ = stop_requested, if !stopping => {
                    stopping = true;
                    let why = self.hooked.stop_reason();
                    tracing::info!(session = self.id(), "ending the session: {why}");
                    self.lower_up(Instant::now());
                    self.hooked.core.close(Instant::now(), why);
                }
            }
        }
        let _ = self.tcp.shutdown().await;
        let reason = self.hooked.finish(&st.stats);
        let gre = self.gre.stats();
        if !self.hooked.core.was_up() {
            // What a NAT without PPTP pass-through looks like from here:
            // the client's GRE arrives, ours never reaches it, and the
            // client gives up on LCP.
            tracing::info!(
                session = self.id(),
                "the PPP link never came up: {} GRE datagrams accepted from {}, {} sent to it",
                gre.receive.accepted,
                self.peer,
                gre.send.sent + gre.ack_only_sent,
            );
        }
        tracing::debug!(
            session = self.id(),
            gre_dropped = st.gre_dropped,
            gre = ?gre,
            "PPTP session ended"
        );
        Outcome {
            reason,
            stats: st.stats,
            was_up: self.hooked.core.was_up(),
        }
    }

    fn on_datagram(&mut self, st: &mut State, gre: &[u8]) {
        st.stats.bytes_in += gre.len() as u64;
        let now = Instant::now();
        if let Err(e) = self.gre.handle_datagram(now, gre) {
            // From the client's address with our Call ID, yet not valid:
            // counted, and summarised at most every DROP_LOG_INTERVAL.
            st.gre_dropped += 1;
            st.drops_unlogged += 1;
            if st
                .drops_logged_at
                .is_none_or(|t| now.duration_since(t) >= DROP_LOG_INTERVAL)
            {
                tracing::info!(
                    session = self.id(),
                    "GRE datagrams of this call dropped: {} (last: {e})",
                    st.drops_unlogged
                );
                st.drops_unlogged = 0;
                st.drops_logged_at = Some(now);
            }
            return;
        }
        self.lower_up(now);
        ppp_over_gre::deliver(
            &mut self.gre,
            &mut self.hooked.core,
            &*self.sink,
            &mut st.stats,
            now,
        );
        ppp_over_gre::send_local_replies(
            &mut self.hooked.core,
            &mut self.gre,
            &mut st.frame,
            &mut st.stats,
        );
    }

    /// Bring the PPP link's lower layer up, once (RFC 1661 §4.1 Up event).
    fn lower_up(&mut self, now: Instant) {
        if self.lower_up_at.take().is_some() {
            self.hooked.core.lower_up(now);
        }
    }

    /// One IP packet into GRE; the datagrams go out in one batch when the
    /// loop comes round (`process`).
    fn send_ip(&mut self, st: &mut State, packet: &[u8]) {
        ppp_over_gre::send_ip(
            &mut self.hooked.core,
            &mut self.gre,
            &mut st.frame,
            &mut st.stats,
            packet,
        );
    }

    fn process(&mut self, st: &mut State) {
        for _ in 0..16 {
            let mut busy = false;
            let now = Instant::now();
            busy |= ppp_over_gre::send_control(&mut self.hooked.core, &mut self.gre, now);
            while let Some(event) = self.hooked.poll_event() {
                busy = true;
                if matches!(event, SessionEvent::Down) && !st.link_down {
                    st.link_down = true;
                    self.pac
                        .disconnect_call(self.call_id, DisconnectResult::AdminShutdown);
                    self.pac.close(now, StopReason::None);
                }
            }
            busy |= self.drain_pac();
            if !busy {
                break;
            }
        }
        self.flush_gre(st);
    }

    fn drain_pac(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.pac.poll_event() {
            any = true;
            let now = Instant::now();
            match event {
                Event::CallCleared {
                    local_call_id,
                    reason,
                    ..
                } if local_call_id == self.call_id => {
                    tracing::info!(session = self.id(), "PPTP call cleared: {reason}");
                    self.hooked
                        .core
                        .record_reason(end_reasons::from_pptp_call(&reason));
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(now, None);
                }
                Event::Closed { reason } => {
                    tracing::debug!(
                        session = self.id(),
                        "PPTP control connection closed: {reason}"
                    );
                    self.hooked
                        .core
                        .record_reason(end_reasons::from_pptp_control(&reason));
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(now, None);
                }
                Event::CallRefused { result, error, .. } => tracing::info!(
                    session = self.id(),
                    "PPTP: another call refused: {result}, {error}"
                ),
                other => tracing::debug!(session = self.id(), "PPTP event: {other:?}"),
            }
        }
        any
    }

    fn flush_gre(&mut self, st: &mut State) {
        while let Some(datagram) = self.gre.poll_transmit() {
            st.out.push(datagram);
        }
        if st.out.is_empty() {
            return;
        }
        // A full socket buffer drops datagrams, as a router would.
        let (sent, octets) = self.demux.send_to(&st.out, self.peer);
        st.stats.bytes_out += octets;
        st.gre_dropped += (st.out.len() - sent) as u64;
        for datagram in st.out.drain(..) {
            self.gre.recycle(datagram);
        }
    }

    async fn flush_control(&mut self) -> Result<(), EndReason> {
        while let Some(msg) = self.pac.poll_transmit() {
            write_control(&mut self.tcp, &msg).await?;
        }
        Ok(())
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

    #[test]
    fn route_takes_only_the_calls_own_datagrams() {
        let client = Ipv4Addr::new(10, 201, 1, 2);
        let peer_of = |id: u16| (id == 7).then_some(client);
        let good = ipv4([10, 201, 1, 2], 47, &gre(7));
        let (id, payload) = route(&good, peer_of).unwrap();
        assert_eq!(id, 7);
        assert_eq!(payload, &gre(7)[..]);
        // Unknown call.
        let unknown = ipv4([10, 201, 1, 2], 47, &gre(8));
        assert_eq!(
            route(&unknown, peer_of),
            Err(Misroute::UnknownCall(8, client))
        );
        // The right call from another address.
        let spoofed = ipv4([10, 201, 2, 2], 47, &gre(7));
        assert_eq!(
            route(&spoofed, peer_of),
            Err(Misroute::WrongSource(7, Ipv4Addr::new(10, 201, 2, 2)))
        );
        // Truncated: in the IP header, and in the GRE header.
        assert_eq!(route(&good[..12], peer_of), Err(Misroute::Malformed));
        assert_eq!(route(&good[..24], peer_of), Err(Misroute::Malformed));
        assert_eq!(route(&[], peer_of), Err(Misroute::Malformed));
        // Not GRE, not enhanced GRE, not IPv4.
        assert_eq!(
            route(&ipv4([10, 201, 1, 2], 17, &gre(7)), peer_of),
            Err(Misroute::Malformed)
        );
        let mut plain = gre(7);
        plain[1] = 0x00;
        assert_eq!(
            route(&ipv4([10, 201, 1, 2], 47, &plain), peer_of),
            Err(Misroute::Malformed)
        );
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(route(&v6, peer_of), Err(Misroute::Malformed));
    }

    #[test]
    fn drop_summaries_are_rate_limited() {
        let src = Ipv4Addr::new(192, 0, 2, 7);
        let t0 = Instant::now();
        let mut log = DropLog::default();
        assert_eq!(log.due(), None, "nothing to say");
        // The first drop after a quiet spell is logged at once.
        log.count(Misroute::UnknownCall(9, src));
        log.maybe_log(t0);
        assert!(!log.pending());
        // A flood right after waits for the interval, counted.
        for _ in 0..100_000 {
            log.count(Misroute::UnknownCall(9, src));
        }
        log.count(Misroute::WrongSource(1, src));
        log.count(Misroute::Malformed);
        log.maybe_log(t0 + Duration::from_secs(1));
        assert!(log.pending());
        assert_eq!(log.unknown_call, 100_000);
        assert_eq!(log.last_wrong_source, Some((1, src)));
        assert_eq!(log.due(), Some(t0 + DROP_LOG_INTERVAL));
        log.maybe_log(t0 + DROP_LOG_INTERVAL);
        assert!(!log.pending());
        assert_eq!(log.due(), None);
    }

    #[tokio::test]
    async fn call_ids_are_unique_and_released() {
        let Ok(demux) = GreDemux::open() else {
            eprintln!("SKIPPED: no raw socket (needs root)");
            return;
        };
        let (tx, mut rx) = mpsc::channel(1);
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
