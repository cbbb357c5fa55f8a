//! The client side of one PPTP call (RFC 2637): a TCP control connection
//! (port 1723) driven by [`pptp::Pns`], and the call's GRE data channel
//! ([`pptp::GreSession`], IP protocol 47 over a raw socket) carrying a PPP
//! [`Link`].
//!
//! ```text
//! TCP connect → SCCRQ/SCCRP → OCRQ/OCRP → GRE: LCP, auth, CCP (MPPE), IPCP → up
//! shutdown: LCP Terminate → Call-Clear-Request → Stop-Control-Connection
//! ```
//!
//! The raw GRE socket needs root (CAP_NET_RAW). It receives every GRE
//! datagram of the host: it is connected to the server (the kernel then
//! passes only the server's), and each datagram is checked again for the
//! source address and for our Call ID in the key field. A bad datagram
//! costs that datagram. Datagrams are read and written in batches
//! (`recvmmsg`/`sendmmsg`, see `ppp_over_gre`).
//!
//! Through NAT: GRE has no ports, so a masquerading router can only map
//! the server's GRE back to us if it follows the Call IDs in the control
//! connection (Linux: the `pptp` conntrack helper, nf_conntrack_pptp and
//! nf_nat_pptp, enabled per connection with an nft `ct helper`; it also
//! rewrites our Call ID so that several clients can share one address).
//! Without it the call is set up, our GRE reaches the server, and the
//! server's never comes back: the session ends after `GRE_SILENCE_LIMIT` (15 s)
//! with that diagnosis instead of a bare LCP time-out. SSTP (TCP 443) is
//! the answer for NATs without PPTP pass-through, as with RRAS.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp::link::{Link, LinkConfig};
use pptp::control::StopReason;
use pptp::{Event, GreConfig, GreSession, Pns, PnsConfig};
use session::{EndReason, LostCarrier, SessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::end_reasons;
use crate::hooked::{self, Hooked};
use crate::hooks::{ClientHooks, Owner, PacketSink, SessionInfo};
use crate::packet_source::{read_source, take_batches};
use crate::ppp_over_gre::{self, CallIds};
use crate::{Outcome, SessionStats};

/// Batches (`recvmmsg`) read per wake-up before the loop looks at other
/// work.
const BATCH: usize = 8;
/// Outbound IP packets taken per wake-up.
const OUTBOUND_BATCH: usize = 64;
/// If not one GRE datagram of our call came from the server this long
/// after the call was set up, GRE does not reach us: give up with that
/// diagnosis rather than "LCP timed out".
const GRE_SILENCE_LIMIT: Duration = Duration::from_secs(15);
/// The diagnosis: a NAT without PPTP pass-through (or a firewall) on the
/// way drops GRE; RFC 2637 GRE has no ports for a plain NAT to map.
const GRE_SILENCE: &str = "no GRE (IP protocol 47) from the server since the call was set up: a NAT or firewall on the way drops it; PPTP through a NAT needs the router's PPTP pass-through (Linux: the nf_conntrack_pptp/nf_nat_pptp helper); SSTP works through any NAT";
/// Control messages are small; a peer that does not take them within this
/// long is gone.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client needs to know.
#[derive(Debug, Clone)]
pub struct PptpClientConfig {
    /// The PPP link settings (client role, with credentials).
    pub link: LinkConfig,
    /// The control connection settings.
    pub pns: PnsConfig,
    /// The GRE data channel settings.
    pub gre: GreConfig,
    /// Limit for the TCP connect, and for the control connection and the
    /// outgoing call to be established.
    pub setup_timeout: Duration,
}

impl PptpClientConfig {
    /// Defaults for `link`: the peer's GRE window is not enforced (as
    /// Windows does, MS-PTPT), and our advertised window matches the
    /// GRE receive window.
    ///
    /// The first Call ID is random: every client on this host sees every
    /// GRE datagram from the server, and tells its own by the Call ID.
    pub fn new(link: LinkConfig) -> Self {
        let pns = PnsConfig {
            first_call_id: random_call_id(),
            ..PnsConfig::default()
        };
        let gre = GreConfig {
            recv_window: pns.recv_window,
            enforce_peer_window: false,
            ..GreConfig::default()
        };
        PptpClientConfig {
            link,
            pns,
            gre,
            setup_timeout: Duration::from_secs(15),
        }
    }
}

/// A nonzero Call ID from the standard library's random hash keys.
fn random_call_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() as u16).max(1)
}

/// Why a PPTP call could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PptpError {
    /// PPTP over IPv6 is not defined (GRE here is IPv4 only).
    #[error("PPTP needs an IPv4 server address, got {0}")]
    NotIpv4(IpAddr),
    #[error("cannot connect to {server}: {message}")]
    Tcp { server: SocketAddr, message: String },
    /// Opening the GRE socket failed (it needs root or CAP_NET_RAW).
    #[error("cannot open the GRE socket (needs root or CAP_NET_RAW): {0}")]
    RawSocket(io::Error),
    /// The control connection or the call was refused or timed out.
    #[error("PPTP: {0}")]
    Control(String),
    #[error("PPTP setup took longer than {0:?}")]
    Timeout(Duration),
    /// `shutdown` was signalled before the call was up.
    #[error("stopped")]
    Stopped,
}

/// Run one client call until it ends.
///
/// Errors are failures before the call was established; afterwards the
/// [`Outcome`] tells how the session ended.
pub async fn connect(
    server: SocketAddr,
    config: PptpClientConfig,
    hooks: Arc<dyn ClientHooks>,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Outcome, PptpError> {
    let server_ip = match server.ip() {
        IpAddr::V4(ip) => ip,
        other => return Err(PptpError::NotIpv4(other)),
    };
    // The raw socket first: without the privilege there is no point in
    // bothering the server.
    let gre_socket = open_gre_socket(server_ip).map_err(PptpError::RawSocket)?;
    let limit = config.setup_timeout;
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(server)).await {
        Err(_) => {
            return Err(PptpError::Tcp {
                server,
                message: format!("no answer within {limit:?}"),
            })
        }
        Ok(Err(e)) => {
            return Err(PptpError::Tcp {
                server,
                message: e.to_string(),
            })
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    tracing::debug!(session = info.id, "PPTP control connection to {server}");

    let mut setup = Setup {
        tcp,
        pns: Pns::new(config.pns.clone(), Instant::now()),
        rbuf: vec![0u8; 4096],
    };
    let call = setup.establish(limit, &mut shutdown).await?;
    tracing::info!(
        session = info.id,
        local_call_id = call.local,
        peer_call_id = call.peer,
        peer_window = call.window,
        "PPTP call established"
    );
    hooks.transport_up(&info);
    let gre = GreSession::new(config.gre, call.local, call.peer, call.window);
    let mut hooked = Hooked::new(Owner::Client(hooks), Link::new(config.link), info);
    hooked.core.lower_up(Instant::now());
    let session = Session {
        tcp: setup.tcp,
        pns: setup.pns,
        rbuf: setup.rbuf,
        gre,
        gre_socket,
        server_ip,
        call_id: call.local,
        hooked,
        sink,
    };
    Ok(session.run(shutdown).await)
}

/// Opens the raw GRE socket, connected to the server so that the kernel
/// hands us only its datagrams.
fn open_gre_socket(server: Ipv4Addr) -> io::Result<UdpSocket> {
    ppp_over_gre::open_raw_socket(1 << 20, Some(server))
}

/// The control connection before the call is up.
struct Setup {
    tcp: TcpStream,
    pns: Pns,
    rbuf: Vec<u8>,
}

impl Setup {
    async fn establish(
        &mut self,
        limit: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<CallIds, PptpError> {
        let deadline = tokio::time::Instant::now() + limit;
        let call = self
            .pns
            .place_call(Instant::now())
            .map_err(|e| PptpError::Control(e.to_string()))?;
        loop {
            while let Some(msg) = self.pns.poll_transmit() {
                write_control(&mut self.tcp, &msg).await?;
            }
            while let Some(event) = self.pns.poll_event() {
                match event {
                    Event::ControlConnected {
                        peer_host_name,
                        peer_vendor,
                        ..
                    } => ppp_over_gre::log_control_connected(&peer_host_name, &peer_vendor),
                    Event::CallEstablished {
                        local_call_id,
                        peer_call_id,
                        peer_window,
                        ..
                    } if local_call_id == call => {
                        return Ok(CallIds {
                            local: local_call_id,
                            peer: peer_call_id,
                            window: peer_window,
                        })
                    }
                    Event::CallFailed {
                        result,
                        error,
                        cause_code,
                        ..
                    } => {
                        return Err(PptpError::Control(format!(
                            "the server refused the call: {result}, {error}, cause {cause_code}"
                        )))
                    }
                    Event::CallCleared { reason, .. } => {
                        return Err(PptpError::Control(format!("call cleared: {reason}")))
                    }
                    Event::Closed { reason } => {
                        return Err(PptpError::Control(format!(
                            "control connection closed: {reason}"
                        )))
                    }
                    other => tracing::debug!("PPTP event during setup: {other:?}"),
                }
            }
            let timer = self.pns.poll_timeout();
            let sleep = async {
                match timer {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.tcp.read(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => {
                        return Err(PptpError::Control("the server closed the control connection".into()))
                    }
                    Ok(n) => self.pns.handle_input(Instant::now(), &self.rbuf[..n]),
                },
                _ = sleep => self.pns.handle_timeout(Instant::now()),
                _ = tokio::time::sleep_until(deadline) => return Err(PptpError::Timeout(limit)),
                _ = shutdown.changed() => {
                    self.pns.close(Instant::now(), StopReason::None);
                    while let Some(msg) = self.pns.poll_transmit() {
                        let _ = write_control(&mut self.tcp, &msg).await;
                    }
                    return Err(PptpError::Stopped);
                }
            }
        }
    }
}

async fn write_control(tcp: &mut TcpStream, msg: &[u8]) -> Result<(), PptpError> {
    match tokio::time::timeout(CONTROL_WRITE_TIMEOUT, tcp.write_all(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PptpError::Control(format!("control connection: {e}"))),
        Err(_) => Err(PptpError::Control(
            "the server does not read the control connection".into(),
        )),
    }
}

/// An established call.
struct Session {
    tcp: TcpStream,
    pns: Pns,
    rbuf: Vec<u8>,
    gre: GreSession,
    gre_socket: UdpSocket,
    server_ip: Ipv4Addr,
    call_id: u16,
    /// The PPP link and the owner's hooks.
    hooked: Hooked,
    sink: Arc<dyn PacketSink>,
}

struct State {
    frame: Vec<u8>,
    /// The link is down: clear the call and close the control connection.
    link_down: bool,
    call_cleared: bool,
    stats: SessionStats,
    /// GRE datagrams dropped (malformed, foreign, send failures).
    gre_dropped: u64,
    /// GRE datagrams of our call accepted from the server.
    gre_accepted: u64,
    /// Datagrams written by the next `flush_gre`, reused.
    out: Vec<Vec<u8>>,
}

impl Session {
    fn id(&self) -> u64 {
        self.hooked.core.info().id
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Outcome {
        let mut st = State {
            frame: Vec::new(),
            link_down: false,
            call_cleared: false,
            stats: SessionStats::default(),
            gre_dropped: 0,
            gre_accepted: 0,
            out: Vec::with_capacity(ppp_over_gre::BATCH),
        };
        let mut batch = ppp_over_gre::RecvBatch::new();
        let fd = self.gre_socket.as_raw_fd();
        let silence_deadline = Instant::now() + GRE_SILENCE_LIMIT;
        let mut stopping = false;
        loop {
            self.process(&mut st);
            if let Err(e) = self.flush_control().await {
                self.hooked.core.record_reason(EndReason::LostCarrier(
                    LostCarrier::TransportFailed(e.to_string()),
                ));
                self.hooked.core.lower_down(Instant::now(), None);
                break;
            }
            if self.pns.is_closed() {
                break;
            }
            let watch_silence = st.gre_accepted == 0 && !st.link_down;
            let deadline = [
                self.hooked.core.poll_timeout(),
                self.pns.poll_timeout(),
                self.gre.poll_timeout(),
                watch_silence.then_some(silence_deadline),
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
            tokio::select! {
                r = self.tcp.read(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => {
                        self.hooked.core.lower_down(Instant::now(), None);
                        self.pns.handle_transport_closed();
                        self.drain_pns(&mut st);
                        break;
                    }
                    Ok(n) => {
                        st.stats.bytes_in += n as u64;
                        self.pns.handle_input(Instant::now(), &self.rbuf[..n]);
                    }
                },
                r = self.gre_socket.readable() => match r {
                    Ok(()) => {
                        for _ in 0..BATCH {
                            match self.gre_socket.try_io(tokio::io::Interest::READABLE, || batch.recv(fd)) {
                                Ok(n) => {
                                    for i in 0..n {
                                        match batch.get(i) {
                                            Some(d) => self.on_datagram(&mut st, d),
                                            None => st.gre_dropped += 1,
                                        }
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(e) => {
                                    // ICMP errors surface here on a
                                    // connected raw socket: not fatal.
                                    tracing::debug!(session = self.id(), "GRE socket: {e}");
                                    break;
                                }
                            }
                        }
                        self.sink.flush();
                    }
                    Err(e) => {
                        self.hooked.core.record_reason(EndReason::Internal(format!("GRE socket: {e}")));
                        break;
                    }
                },
                p = hooked::recv(&mut self.hooked.outbound), if can_take => match p {
                    Some(first) => {
                        let batch = self.hooked.take_outbound(first, OUTBOUND_BATCH);
                        for packet in &batch {
                            self.send_ip(&mut st, packet);
                        }
                        self.hooked.recycle_batch(batch);
                    }
                    None => self.hooked.outbound = None,
                },
                r = read_source(self.hooked.source.as_deref_mut()), if self.hooked.source.is_some() => match r {
                    Ok(()) => self.take_from_source(&mut st),
                    Err(e) => self.hooked.source_failed(e),
                },
                answered = self.hooked.answers.next() => self.hooked.apply(answered),
                _ = sleep => {
                    let now = Instant::now();
                    if watch_silence && now >= silence_deadline {
                        tracing::info!(session = self.id(), "{GRE_SILENCE}");
                        self.hooked.core.record_reason(EndReason::LostCarrier(LostCarrier::TransportFailed(GRE_SILENCE.into())));
                        self.hooked.core.lower_down(now, None);
                    }
                    self.hooked.core.handle_timeout(now);
                    self.pns.handle_timeout(now);
                    self.gre.handle_timeout(now);
                }
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    self.hooked.core.close(Instant::now(), EndReason::LocalRequest);
                }
            }
        }
        let _ = self.tcp.shutdown().await;
        tracing::debug!(
            session = self.id(),
            gre_dropped = st.gre_dropped,
            gre = ?self.gre.stats(),
            "PPTP session ended"
        );
        let reason = self.hooked.finish(&st.stats);
        Outcome {
            reason,
            stats: st.stats,
            was_up: self.hooked.core.was_up(),
        }
    }

    /// One datagram from the raw socket: an IPv4 header, then GRE.
    fn on_datagram(&mut self, st: &mut State, datagram: &[u8]) {
        let Some(gre) = gre_payload(datagram, self.server_ip) else {
            st.gre_dropped += 1;
            return;
        };
        st.stats.bytes_in += gre.len() as u64;
        let now = Instant::now();
        if let Err(e) = self.gre.handle_datagram(now, gre) {
            // Another call's (or another client's) GRE, or garbage.
            tracing::trace!(session = self.id(), call = self.call_id, "GRE dropped: {e}");
            st.gre_dropped += 1;
            return;
        }
        st.gre_accepted += 1;
        ppp_over_gre::deliver(
            &mut self.gre,
            &mut self.hooked.core,
            &*self.sink,
            &mut st.stats,
            now,
        );
    }

    /// The batch the client's device just gave (read by this task rather
    /// than a reader task: one hand-off and one copy fewer per packet),
    /// and the batches it has ready now, up to [`OUTBOUND_BATCH`] packets
    /// per wake-up; their GRE datagrams go out in one `sendmmsg` when the
    /// loop comes round.
    fn take_from_source(&mut self, st: &mut State) {
        let Some(mut source) = self.hooked.source.take() else {
            return;
        };
        let read = take_batches(&mut *source, OUTBOUND_BATCH, &mut |packet| {
            self.send_ip(st, packet)
        });
        self.hooked.return_source(source, read);
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

    /// Move link output into GRE, react to session and control events,
    /// write GRE datagrams.
    fn process(&mut self, st: &mut State) {
        for _ in 0..16 {
            let mut busy = false;
            let now = Instant::now();
            busy |= ppp_over_gre::send_control(&mut self.hooked.core, &mut self.gre, now);
            while let Some(event) = self.hooked.poll_event() {
                busy = true;
                if matches!(event, SessionEvent::Down) && !st.link_down {
                    st.link_down = true;
                    if st.call_cleared || self.pns.clear_call(now, self.call_id).is_err() {
                        self.pns.close(now, StopReason::None);
                    }
                }
            }
            busy |= self.drain_pns(st);
            if !busy {
                break;
            }
        }
        self.flush_gre(st);
    }

    /// Control-connection events; true if there were any.
    fn drain_pns(&mut self, st: &mut State) -> bool {
        let mut any = false;
        while let Some(event) = self.pns.poll_event() {
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
                    st.call_cleared = true;
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(now, None);
                    self.pns.close(now, StopReason::None);
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
                Event::WanError { errors, .. } => {
                    tracing::debug!(session = self.id(), "PPTP WAN-Error-Notify: {errors:?}")
                }
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
        // Datagrams: a full socket buffer drops them, as a router would;
        // PPP and TCP above cope.
        let (sent, octets) = ppp_over_gre::send_batch(self.gre_socket.as_raw_fd(), &st.out, None);
        st.stats.bytes_out += octets;
        st.gre_dropped += (st.out.len() - sent) as u64;
        for datagram in st.out.drain(..) {
            self.gre.recycle(datagram);
        }
    }

    async fn flush_control(&mut self) -> Result<(), PptpError> {
        while let Some(msg) = self.pns.poll_transmit() {
            write_control(&mut self.tcp, &msg).await?;
        }
        Ok(())
    }
}

/// The GRE bytes of an IPv4 datagram from `server`, or `None`.
fn gre_payload(datagram: &[u8], server: Ipv4Addr) -> Option<&[u8]> {
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
    if src != server {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = if total >= ihl && total <= datagram.len() {
        total
    } else {
        datagram.len()
    };
    Some(&datagram[ihl..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], proto: u8, payload: &[u8], ihl_words: u8) -> Vec<u8> {
        let ihl = usize::from(ihl_words) * 4;
        let mut d = vec![0u8; ihl];
        d[0] = 0x40 | ihl_words;
        let total = (ihl + payload.len()) as u16;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d[9] = proto;
        d[12..16].copy_from_slice(&src);
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn gre_payload_checks_the_ip_header() {
        let server = Ipv4Addr::new(10, 0, 0, 2);
        let d = ipv4([10, 0, 0, 2], 47, b"gre!", 5);
        assert_eq!(gre_payload(&d, server), Some(&b"gre!"[..]));
        // IP options are skipped.
        let d = ipv4([10, 0, 0, 2], 47, b"gre!", 6);
        assert_eq!(gre_payload(&d, server), Some(&b"gre!"[..]));
        // Another source, another protocol, truncated, not IPv4.
        assert_eq!(gre_payload(&ipv4([10, 0, 0, 3], 47, b"x", 5), server), None);
        assert_eq!(gre_payload(&ipv4([10, 0, 0, 2], 17, b"x", 5), server), None);
        assert_eq!(gre_payload(&d[..10], server), None);
        assert_eq!(gre_payload(&[], server), None);
        let mut v6 = d.clone();
        v6[0] = 0x65;
        assert_eq!(gre_payload(&v6, server), None);
        let mut short = d.clone();
        short[0] = 0x44;
        assert_eq!(gre_payload(&short, server), None);
    }
}
