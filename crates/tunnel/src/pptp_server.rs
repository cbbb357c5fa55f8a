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
//! The parts, one concern a file:
//!
//! * `pptp_gre_io`: the raw socket and its reader task ([`GreDemux`]); the
//!   routing decision itself is the sans-IO [`pptp::demux`].
//! * `pptp_refuse`: the answer over the port limit ([`refuse`]).
//! * `pptp_call_setup`: the control connection up to an established call,
//!   and the Call IDs it leases from the demultiplexer.
//! * this file: the shared configuration, [`serve`], and the session of
//!   an established call (PPP over GRE joined to the hooks).
//!
//! Clients behind a NAT all share its address; the server tells their
//! calls apart by its own Call ID alone, so that works whenever the NAT
//! passes PPTP at all (see `pptp_client` on NAT pass-through).
//!
//! The raw socket needs root (CAP_NET_RAW).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp::link::{Link, LinkConfig};
use pptp::control::{DisconnectResult, StopReason};
use pptp::{Event, GreConfig, GreSession, Pac, PacConfig};
use session::{EndReason, SessionEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::end_reasons;
use crate::hooked::{self, Hooked};
use crate::hooks::{Owner, PacketSink, ServerHooks, SessionInfo};
use crate::ppp_over_gre;
use crate::pptp_call_setup::{write_control, CallIdLease, Setup};
use crate::{Outcome, SessionStats};

pub use crate::pptp_gre_io::GreDemux;
pub use crate::pptp_refuse::refuse;

/// Datagrams handled per wake-up before the loop looks at other work.
pub(crate) const BATCH: usize = 64;
/// A summary of dropped GRE datagrams is logged at most this often: a
/// flood costs one log line per interval, not one per datagram.
pub(crate) const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// GRE datagrams queued for one call; more are dropped.
const CALL_QUEUE: usize = 512;

/// How long a new call waits for the client's first GRE datagram before
/// starting LCP anyway (see `Session::lower_up_at`).
const FIRST_GRE_GRACE: Duration = Duration::from_secs(1);

/// What every server session shares.
#[derive(Debug, Clone)]
pub struct PptpServerConfig {
    /// The PPP link settings (server role, CCP/MPPE as configured),
    /// shared by every call's link.
    pub link: Arc<LinkConfig>,
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
            link: Arc::new(link),
            pac,
            gre,
            setup_timeout: Duration::from_secs(30),
        }
    }
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
    let (gre_tx, gre_rx) = crate::packet_queue(CALL_QUEUE);
    // The lease registers the call in the demultiplexer when the PAC asks
    // for a Call ID, and releases it when the connection has ended.
    let mut setup = Setup {
        tcp,
        pac: Pac::new(config.pac.clone(), Instant::now()),
        rbuf: vec![0u8; 4096],
        lease: CallIdLease::new(demux.clone(), peer, gre_tx),
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
            // On the heap, as the SSTP session: inline, the session and
            // the `run` future it moves into would each keep a place in
            // this future (9 KiB a call; issue 18).
            let session = Box::new(Session {
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
            });
            session.run(shutdown).await
        }
    };
    drop(setup.lease);
    outcome
}
/// An established call.
struct Session {
    tcp: TcpStream,
    pac: Pac,
    rbuf: Vec<u8>,
    gre: GreSession,
    gre_rx: crate::PacketReceiver,
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

    async fn run(mut self: Box<Self>, mut shutdown: watch::Receiver<bool>) -> Outcome {
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
                    Some(first) => {
                        let batch = self.hooked.take_outbound(first, BATCH);
                        for packet in &batch {
                            self.send_ip(&mut st, packet);
                        }
                        self.hooked.recycle_batch(batch);
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
                // One call per control connection: a second one (after the
                // first was cleared, while this session ends) gets no Call
                // ID, so the PAC refuses it (RFC 2637 §2.8 No-Resource).
                Event::CallIdNeeded { .. } => {
                    if let Err(e) = self.pac.assign_call_id(now, None) {
                        tracing::debug!(session = self.id(), "PPTP Call ID answer: {e}");
                    }
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
    use ppp::link::{LinkUp, NetworkSettings};

    use super::*;
    use crate::hooks::BoxFuture;
    use crate::pptp_gre_io::GreDemux;
    use crate::AuthAnswer;

    /// Never asked: the test only builds a call's future.
    struct Unused;

    impl ServerHooks for Unused {
        fn authenticate(
            &self,
            _: &SessionInfo,
            _: ppp::auth::AuthRequest,
        ) -> BoxFuture<AuthAnswer> {
            unreachable!("not polled")
        }
        fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
            unreachable!("not polled")
        }
        fn up(
            &self,
            _: &SessionInfo,
            _: &LinkUp,
        ) -> BoxFuture<Result<crate::PacketReceiver, String>> {
            unreachable!("not polled")
        }
        fn down(&self, _: &SessionInfo, _: &EndReason) {}
    }

    impl PacketSink for Unused {
        fn send(&self, _: &[u8]) {}
    }

    /// A call's future lives as long as its session: the session is boxed
    /// and moved into `run` whole, so the future keeps one place for it,
    /// not one for the session and another for `run` (9,184 bytes in a
    /// release build before; issue 18).
    #[tokio::test]
    async fn a_calls_future_keeps_one_place_for_its_session() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let config = PptpServerConfig::new(LinkConfig::server("vpn.example.com"));
        let (_stop_tx, stop) = watch::channel(false);
        let info = SessionInfo {
            id: 1,
            peer: "127.0.0.1:1".into(),
            user: None,
        };
        let call = serve(
            tcp,
            Ipv4Addr::LOCALHOST,
            &config,
            GreDemux::for_tests().await,
            Arc::new(Unused),
            Arc::new(Unused),
            info,
            stop,
        );
        let size = std::mem::size_of_val(&call);
        assert!(size <= 4096, "a call's future is {size} bytes");
    }
}
