//! One SSTP session: a TLS byte stream carrying SSTP, carrying PPP. The
//! loop reads, writes, runs timers and answers hooks in one task, with no
//! per-packet allocation on the data path.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ppp::link::{Inbound, Link, LinkEvent};
use session::{EndReason, LostCarrier};
use sstp::{CloseReason, Event, HigherLayerKeys};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::end_reasons;
use crate::hook_result::{self, Applied, HookResult};
use crate::hooks::{PacketSink, SessionHooks, SessionInfo};
use crate::live::LiveSession;
use crate::local_answer::{self, LocalAnswer};
use crate::packet_source::PacketSource;

/// Stop taking IP packets from the network while this much is waiting to
/// be written to the peer: a slow peer costs its own packets, nobody else's.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// A peer that makes us queue this much without reading is dropped.
const WRITE_LIMIT: usize = 2 * 1024 * 1024;
/// IP packets taken from the queue per wake-up, to batch TLS writes.
const BATCH: usize = 64;
/// The TLS read buffer grows up to one maximal TLS record while data
/// flows, and starts (and shrinks back to) this when idle.
const READ_BUFFER: usize = 16 * 1024 + 256;
const READ_BUFFER_IDLE: usize = 2048;
/// Plaintext taken from the peer per wake-up when more is already
/// waiting: the packets of several TLS records go to the sink as one
/// batch (one coalesced TUN write instead of one per record).
const READ_BURST: usize = 64 * 1024;
/// After this long without traffic, buffers give their memory back, so an
/// idle session costs little (thousands of them may be connected).
const IDLE_SHRINK: std::time::Duration = std::time::Duration::from_secs(1);

/// Counters of one session.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// IP octets received from the peer (what RADIUS accounting reports).
    pub ip_bytes_in: u64,
    /// IP octets sent to the peer.
    pub ip_bytes_out: u64,
    /// IP packets from the network dropped (not up yet, queue full).
    pub dropped_out: u64,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub reason: EndReason,
    pub stats: SessionStats,
    /// The link came up at some point.
    pub was_up: bool,
}

/// The SSTP state machine of either role, as the loop uses it.
pub(crate) trait SstpCore: Send {
    fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize;
    fn handle_timeout(&mut self, now: Instant);
    fn send_ppp(&mut self, frame: &[u8]) -> Result<(), sstp::SendError>;
    fn set_keys(&mut self, keys: &HigherLayerKeys) -> Result<(), sstp::StateError>;
    fn close(&mut self) -> Result<(), sstp::StateError>;
    fn poll_event(&mut self) -> Option<Event<'_>>;
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
    fn closing_reason(&self) -> Option<&CloseReason>;
    fn shrink_buffers(&mut self);
}

macro_rules! sstp_core {
    ($t:ty) => {
        impl SstpCore for $t {
            fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
                <$t>::handle_input(self, now, data)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn send_ppp(&mut self, frame: &[u8]) -> Result<(), sstp::SendError> {
                <$t>::send_ppp(self, frame)
            }
            fn set_keys(&mut self, keys: &HigherLayerKeys) -> Result<(), sstp::StateError> {
                <$t>::set_higher_layer_keys(self, keys)
            }
            fn close(&mut self) -> Result<(), sstp::StateError> {
                <$t>::close(self)
            }
            fn poll_event(&mut self) -> Option<Event<'_>> {
                <$t>::poll_event(self)
            }
            fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
                <$t>::poll_transmit(self, out)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn is_closed(&self) -> bool {
                <$t>::is_closed(self)
            }
            fn closing_reason(&self) -> Option<&CloseReason> {
                <$t>::closing_reason(self)
            }
            fn shrink_buffers(&mut self) {
                <$t>::shrink_buffers(self)
            }
        }
    };
}
sstp_core!(sstp::ServerConnection);
sstp_core!(sstp::ClientConnection);

/// Everything the loop owns.
pub(crate) struct Session<C> {
    pub sstp: C,
    pub link: Link,
    pub hooks: Arc<dyn SessionHooks>,
    pub sink: Arc<dyn PacketSink>,
    pub info: SessionInfo,
    /// Server role: ask `hooks.network` after authentication.
    pub assigns_network: bool,
}

struct State {
    wbuf: Vec<u8>,
    wpos: usize,
    needs_flush: bool,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    outbound: Option<mpsc::Receiver<Bytes>>,
    /// Read by the session itself (the client's TUN device).
    source: Option<Box<dyn PacketSource>>,
    hook_tx: mpsc::UnboundedSender<HookResult>,
    /// Logs a password the PPP authenticator refused.
    auth_watch: hook_result::AuthWatch,
    /// Answers for the server's end of the link (server role, link up).
    local: Option<LocalAnswer>,
    network_hooked: bool,
    keys_given: bool,
    was_up: bool,
    reason: Option<EndReason>,
    stats: SessionStats,
    /// The owner's live view, once the network phase started.
    live: Option<Arc<LiveSession>>,
    /// What `live` has been told so far.
    reported: SessionStats,
    /// The byte stream from the peer ended (or failed).
    ended: bool,
}

impl<C: SstpCore> Session<C> {
    /// Run until the session ends. `initial` holds bytes that arrived with
    /// the HTTP exchange.
    pub async fn run<S>(
        mut self,
        stream: S,
        initial: Vec<u8>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome
    where
        S: AsyncRead + AsyncWrite + Send,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (hook_tx, mut hook_rx) = mpsc::unbounded_channel();
        let mut st = State {
            wbuf: Vec::new(),
            wpos: 0,
            needs_flush: false,
            scratch: Vec::new(),
            frame: Vec::new(),
            outbound: None,
            source: None,
            hook_tx,
            auth_watch: Default::default(),
            local: None,
            network_hooked: false,
            keys_given: false,
            was_up: false,
            reason: None,
            stats: SessionStats::default(),
            live: None,
            reported: SessionStats::default(),
            ended: false,
        };
        let mut rbuf = vec![0u8; READ_BUFFER_IDLE];
        let mut idle_at: Option<tokio::time::Instant> = None;
        let mut stop_seen = false;
        self.feed(&mut st, &initial);
        loop {
            self.process(&mut st);
            // Whatever reached the sink in this round goes out now.
            self.sink.flush();
            if let Some(live) = &st.live {
                live.add(&mut st.reported, &st.stats);
            }
            if st.wbuf.len() - st.wpos > WRITE_LIMIT {
                st.reason
                    .get_or_insert(EndReason::LostCarrier(LostCarrier::PeerNotReading));
                break;
            }
            if self.sstp.is_closed() && st.wpos >= st.wbuf.len() && !st.needs_flush {
                break;
            }
            let deadline = [self.sstp.poll_timeout(), self.link.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let room = st.wbuf.len() < WRITE_HIGH_WATER;
            let can_take = st.outbound.is_some() && room;
            let can_read_source = st.source.is_some() && room;
            let idle = async {
                match idle_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let live = st.live.clone();
            let stop_requested = async {
                match &live {
                    Some(l) => l.stopped().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rd.read(&mut rbuf) => {
                    let mut r = r;
                    let mut burst = 0;
                    loop {
                        match r {
                            Ok(n) if n > 0 => {
                                st.stats.bytes_in += n as u64;
                                self.feed(&mut st, &rbuf[..n]);
                                burst += n;
                                if n == rbuf.len() && rbuf.len() < READ_BUFFER {
                                    // Data is flowing: read whole TLS records.
                                    rbuf.resize((rbuf.len() * 2).min(READ_BUFFER), 0);
                                }
                            }
                            _ => {
                                self.stream_ended(&mut st);
                                break;
                            }
                        }
                        if burst >= READ_BURST {
                            break;
                        }
                        // Whatever is already waiting is taken now, so its
                        // packets join this batch.
                        match poll_once(rd.read(&mut rbuf)) {
                            Some(next) => r = next,
                            None => break,
                        }
                    }
                    // What arrived before an end is still delivered.
                    self.sink.flush();
                    if st.ended {
                        break;
                    }
                    idle_at = Some(tokio::time::Instant::now() + IDLE_SHRINK);
                }
                w = write_some(&mut wr, &st.wbuf[st.wpos..]), if st.wpos < st.wbuf.len() || st.needs_flush => match w {
                    Err(_) | Ok(Written::Bytes(0)) => {
                        st.reason.get_or_insert(EndReason::LostCarrier(LostCarrier::TransportFailed("writing to the peer failed".into())));
                        break;
                    }
                    Ok(Written::Bytes(n)) => {
                        st.stats.bytes_out += n as u64;
                        st.wpos += n;
                        if st.wpos == st.wbuf.len() {
                            st.wbuf.clear();
                            st.wpos = 0;
                            st.needs_flush = true;
                        }
                    }
                    Ok(Written::Flushed) => st.needs_flush = false,
                },
                p = recv(&mut st.outbound), if can_take => match p {
                    Some(packet) => {
                        self.send_ip(&mut st, &packet);
                        for _ in 1..BATCH {
                            let Some(rx) = st.outbound.as_mut() else { break };
                            match rx.try_recv() {
                                Ok(packet) => self.send_ip(&mut st, &packet),
                                Err(_) => break,
                            }
                        }
                    }
                    None => st.outbound = None,
                },
                r = read_source(&mut st.source), if can_read_source => match r {
                    Ok(()) => self.take_from_source(&mut st),
                    Err(e) => {
                        tracing::warn!(session = self.info.id, "reading packets to send: {e}");
                        st.source = None;
                    }
                },
                Some(h) = hook_rx.recv() => self.apply_hook(&mut st, h),
                _ = sleep => {
                    let now = Instant::now();
                    self.sstp.handle_timeout(now);
                    self.link.handle_timeout(now);
                }
                _ = idle => {
                    idle_at = None;
                    if st.wpos >= st.wbuf.len() {
                        st.wbuf = Vec::new();
                        st.wpos = 0;
                    }
                    st.scratch = Vec::new();
                    st.frame = Vec::new();
                    if rbuf.len() > READ_BUFFER_IDLE {
                        rbuf = vec![0u8; READ_BUFFER_IDLE];
                    }
                    self.sstp.shrink_buffers();
                }
                _ = shutdown.changed() => {
                    let why = if self.assigns_network { EndReason::ServerStopping } else { EndReason::LocalRequest };
                    self.link.close(Instant::now(), &why.to_string());
                    st.reason.get_or_insert(why);
                    let _ = self.sstp.close();
                }
                _ = stop_requested, if !stop_seen => {
                    stop_seen = true;
                    let why = live.as_ref().and_then(|l| l.stop_reason()).unwrap_or(EndReason::LocalRequest);
                    tracing::info!(session = self.info.id, "ending the session: {why}");
                    self.link.close(Instant::now(), &why.to_string());
                    st.reason.get_or_insert(why);
                    let _ = self.sstp.close();
                }
            }
        }
        if let Some(live) = &st.live {
            live.add(&mut st.reported, &st.stats);
        }
        let _ = wr.shutdown().await;
        let reason = st
            .reason
            .unwrap_or(EndReason::LostCarrier(LostCarrier::TransportClosed));
        if st.network_hooked {
            self.hooks.down(&self.info, &reason);
        }
        Outcome {
            reason,
            stats: st.stats,
            was_up: st.was_up,
        }
    }

    /// The peer's byte stream ended or failed: nothing more can be
    /// delivered, so writing stops too.
    fn stream_ended(&mut self, st: &mut State) {
        let why = match (self.link.peer_terminating(), self.sstp.closing_reason()) {
            (Some(_), _) | (None, None) => end_reasons::transport_closed(&self.link),
            (None, Some(reason)) => end_reasons::from_sstp(reason),
        };
        st.reason.get_or_insert(why);
        self.link.lower_down(Instant::now());
        if !self.sstp.is_closed() {
            let _ = self.sstp.close();
        }
        st.wbuf.clear();
        st.wpos = 0;
        st.needs_flush = false;
        st.ended = true;
    }

    /// Sends the batch the source just read, and the batches it has ready
    /// now, up to [`BATCH`] packets per wake-up.
    fn take_from_source(&mut self, st: &mut State) {
        let Some(mut source) = st.source.take() else {
            return;
        };
        let mut taken = 0;
        loop {
            source.for_each(&mut |packet| {
                if !packet.is_empty() {
                    self.send_ip(st, packet);
                    taken += 1;
                }
            });
            if taken >= BATCH {
                break;
            }
            match source.try_read() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(session = self.info.id, "reading packets to send: {e}");
                    return;
                }
            }
        }
        st.source = Some(source);
    }

    fn feed(&mut self, st: &mut State, mut data: &[u8]) {
        let now = Instant::now();
        while !data.is_empty() {
            let taken = self.sstp.handle_input(now, data);
            data = &data[taken..];
            self.drain_sstp(st);
            if taken == 0 {
                break;
            }
        }
    }

    fn drain_sstp(&mut self, st: &mut State) {
        // One clock read per drain, not per frame: it showed in profiles,
        // and the frames of one drain arrived together anyway.
        let now = Instant::now();
        while let Some(event) = self.sstp.poll_event() {
            match event {
                Event::StartPpp => self.link.lower_up(now),
                Event::Connected => {
                    tracing::debug!(session = self.info.id, "SSTP crypto binding complete")
                }
                Event::PppFrame(frame) => {
                    st.scratch.clear();
                    st.scratch.extend_from_slice(frame);
                    match self.link.handle_frame(now, &mut st.scratch) {
                        Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                            st.stats.packets_in += 1;
                            st.stats.ip_bytes_in += p.len() as u64;
                            if !st.local.as_mut().is_some_and(|l| l.intercept(now, p)) {
                                self.sink.send(p);
                            }
                        }
                        Inbound::Nothing => {}
                    }
                }
                Event::Closed(reason) => {
                    st.reason.get_or_insert(end_reasons::from_sstp(&reason));
                    self.link.lower_down(now);
                }
            }
        }
        for reply in local_answer::replies(&mut st.local) {
            self.send_ip(st, &reply);
        }
    }

    fn send_ip(&mut self, st: &mut State, packet: &[u8]) {
        st.frame.clear();
        match self.link.send_ip(packet, &mut st.frame) {
            Ok(()) => {
                if self.sstp.send_ppp(&st.frame).is_ok() {
                    st.stats.packets_out += 1;
                    st.stats.ip_bytes_out += packet.len() as u64;
                } else {
                    st.stats.dropped_out += 1;
                }
            }
            Err(_) => st.stats.dropped_out += 1,
        }
    }

    /// Move link output into SSTP, react to link events, move SSTP output
    /// into the write buffer.
    fn process(&mut self, st: &mut State) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(frame) = self.link.poll_transmit() {
                busy = true;
                if let Err(e) = self.sstp.send_ppp(&frame) {
                    tracing::debug!(session = self.info.id, "PPP control frame not sent: {e}");
                }
            }
            while let Some(event) = self.link.poll_event() {
                busy = true;
                self.on_link_event(st, event);
            }
            self.drain_sstp(st);
            if !busy {
                break;
            }
        }
        self.sstp.poll_transmit(&mut st.wbuf);
    }

    fn on_link_event(&mut self, st: &mut State, event: LinkEvent) {
        let id = self.info.id;
        st.auth_watch.link_event(&self.info, &event);
        match event {
            LinkEvent::AuthRequest(request) => {
                hook_result::spawn_auth(&st.hook_tx, &*self.hooks, &self.info, request);
            }
            LinkEvent::Authenticated { username, protocol } => {
                tracing::info!(
                    session = id,
                    "authenticated: user {}, {}",
                    crate::login_log::Quoted(&username),
                    crate::login_log::protocol_name(protocol)
                );
                self.info.user = Some(username);
                self.give_keys(st);
                if self.assigns_network {
                    st.network_hooked = true;
                    hook_result::spawn_network(&st.hook_tx, &*self.hooks, &self.info);
                }
            }
            LinkEvent::Up(up) => {
                st.was_up = true;
                tracing::info!(
                    session = id,
                    "PPP link up: {}",
                    hook_result::link_up_text(&up, self.assigns_network)
                );
                st.local = self
                    .hooks
                    .link_responder(&self.info, &up)
                    .map(LocalAnswer::new);
                hook_result::spawn_up(&st.hook_tx, &*self.hooks, &self.info, &up);
            }
            LinkEvent::Down(reason) => {
                tracing::info!(session = id, "PPP link down: {reason}");
                st.reason
                    .get_or_insert_with(|| end_reasons::from_link(&reason));
                st.outbound = None;
                st.source = None;
                let _ = self.sstp.close();
            }
            LinkEvent::AuthRetryAllowed(f) => {
                tracing::info!(
                    session = id,
                    "server refused the password ({}), retry allowed",
                    f.rejection.code()
                );
                // A tunnel client has no one to ask for another password:
                // fail now with the server's code.
                self.link.decline_auth_retry(Instant::now());
            }
            LinkEvent::PeerIdentification(text) => {
                tracing::debug!(session = id, "peer identifies as {text:?}")
            }
            LinkEvent::TimeRemaining(s) => tracing::info!(session = id, "session ends in {s} s"),
        }
    }

    /// MS-SSTP §3.2.5.2 / §3.3.5.2: after PPP authentication the HLAK is
    /// derived from the MS-CHAPv2 keys, or all zeros for PAP/CHAP.
    fn give_keys(&mut self, st: &mut State) {
        if st.keys_given {
            return;
        }
        st.keys_given = true;
        let keys = match self.link.master_keys() {
            Some(k) => HigherLayerKeys::MsChapV2 {
                master_send: k.send,
                master_recv: k.recv,
            },
            None => HigherLayerKeys::None,
        };
        if let Err(e) = self.sstp.set_keys(&keys) {
            tracing::warn!(
                session = self.info.id,
                "SSTP crypto binding keys not accepted: {e}"
            );
        }
    }

    fn apply_hook(&mut self, st: &mut State, result: HookResult) {
        match hook_result::apply(
            &mut self.link,
            &*self.hooks,
            &self.info,
            &mut st.reason,
            &mut st.auth_watch,
            result,
        ) {
            Applied::Live(live) => st.live = live,
            Applied::Outbound(rx) => {
                st.outbound = Some(rx);
                st.source = self.hooks.packet_source(&self.info);
            }
            Applied::Nothing => {}
        }
    }
}

enum Written {
    Bytes(usize),
    Flushed,
}

/// Write what is pending, or flush once everything was written (TLS keeps
/// records buffered until flushed).
async fn write_some<W: AsyncWrite + Unpin>(w: &mut W, pending: &[u8]) -> std::io::Result<Written> {
    if pending.is_empty() {
        w.flush().await.map(|_| Written::Flushed)
    } else {
        w.write(pending).await.map(Written::Bytes)
    }
}

async fn read_source(source: &mut Option<Box<dyn PacketSource>>) -> std::io::Result<()> {
    match source {
        Some(s) => std::future::poll_fn(|cx| s.poll_read(cx)).await,
        None => std::future::pending().await,
    }
}

/// Polls `fut` once, without waiting: `None` if it is not ready. (The
/// next `select!` polls the operation again with the task's waker.)
fn poll_once<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
