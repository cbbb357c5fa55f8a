//! One SSTP session: a TLS byte stream carrying SSTP, carrying PPP. The
//! loop reads, writes, runs timers and answers hooks in one task, with no
//! per-packet allocation on the data path.

use std::sync::Arc;
use std::time::Instant;

use ppp::link::Inbound;
use session::{EndReason, LostCarrier, SessionEvent, SessionStats};
use sstp::{Event, HigherLayerKeys};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::end_reasons;
use crate::hooked::{self, Hooked};
use crate::hooks::PacketSink;
use crate::outcome::Outcome;
use crate::packet_source::{read_source, take_batches};

/// Stop taking IP packets from the network while this much is waiting to
/// be written to the peer: a slow peer costs its own packets, nobody else's.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// A peer that makes us queue this much without reading is dropped.
const WRITE_LIMIT: usize = 2 * 1024 * 1024;
/// IP packets taken from the queue per wake-up, to batch TLS writes.
const BATCH: usize = 64;
/// The TLS read buffer grows up to one maximal TLS record while data
/// flows, and starts (and shrinks back to) this when idle: enough for the
/// echoes and keepalives of an idle session; the TLS layer keeps what a
/// read has no room for, and the buffer doubles as soon as a read fills it.
const READ_BUFFER: usize = 16 * 1024 + 256;
const READ_BUFFER_IDLE: usize = 128;
/// Plaintext taken from the peer per wake-up when more is already
/// waiting: the packets of several TLS records go to the sink as one
/// batch (one coalesced TUN write instead of one per record).
const READ_BURST: usize = 64 * 1024;
/// After this long without traffic, buffers give their memory back, so an
/// idle session costs little (thousands of them may be connected).
const IDLE_SHRINK: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything the loop owns.
pub(crate) struct Session {
    pub sstp: sstp::Connection,
    /// The PPP link and the owner's hooks.
    pub hooked: Hooked,
    pub sink: Arc<dyn PacketSink>,
}

struct State {
    wbuf: Vec<u8>,
    wpos: usize,
    needs_flush: bool,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    keys_given: bool,
    stats: SessionStats,
    /// The byte stream from the peer ended (or failed).
    ended: bool,
}

impl Session {
    /// Run until the session ends. `initial` holds bytes that arrived with
    /// the HTTP exchange.
    pub async fn run<S>(
        mut self: Box<Self>,
        stream: S,
        initial: Vec<u8>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome
    where
        S: AsyncRead + AsyncWrite + Send,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut st = State {
            wbuf: Vec::new(),
            wpos: 0,
            needs_flush: false,
            scratch: Vec::new(),
            frame: Vec::new(),
            keys_given: false,
            stats: SessionStats::default(),
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
            self.hooked.report(&st.stats);
            if st.wbuf.len() - st.wpos > WRITE_LIMIT {
                self.hooked
                    .core
                    .record_reason(EndReason::LostCarrier(LostCarrier::PeerNotReading));
                break;
            }
            if self.sstp.is_closed() && st.wpos >= st.wbuf.len() && !st.needs_flush {
                break;
            }
            let deadline = [self.sstp.poll_timeout(), self.hooked.core.poll_timeout()]
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
            let can_take = self.hooked.outbound.is_some() && room;
            let can_read_source = self.hooked.source.is_some() && room;
            let idle = async {
                match idle_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let stop_requested = hooked::stop_requested(self.hooked.live.clone());
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
                        self.hooked.core.record_reason(EndReason::LostCarrier(LostCarrier::TransportFailed("writing to the peer failed".into())));
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
                r = read_source(self.hooked.source.as_deref_mut()), if can_read_source => match r {
                    Ok(()) => self.take_from_source(&mut st),
                    Err(e) => self.hooked.source_failed(e),
                },
                answered = self.hooked.answers.next() => self.hooked.apply(answered),
                _ = sleep => {
                    let now = Instant::now();
                    self.sstp.handle_timeout(now);
                    self.hooked.core.handle_timeout(now);
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
                    self.hooked.release_idle();
                }
                _ = shutdown.changed() => {
                    let why = self.hooked.shutdown_reason();
                    self.hooked.core.close(Instant::now(), why);
                    let _ = self.sstp.close();
                }
                _ = stop_requested, if !stop_seen => {
                    stop_seen = true;
                    let why = self.hooked.stop_reason();
                    tracing::info!(session = self.hooked.core.info().id, "ending the session: {why}");
                    self.hooked.core.close(Instant::now(), why);
                    let _ = self.sstp.close();
                }
            }
        }
        let _ = wr.shutdown().await;
        let reason = self.hooked.finish(&st.stats);
        Outcome {
            reason,
            stats: st.stats,
            was_up: self.hooked.core.was_up(),
        }
    }

    /// The peer's byte stream ended or failed: nothing more can be
    /// delivered, so writing stops too.
    fn stream_ended(&mut self, st: &mut State) {
        let cause = self.sstp.closing_reason().map(end_reasons::from_sstp);
        self.hooked.core.lower_down(Instant::now(), cause);
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
        let Some(mut source) = self.hooked.source.take() else {
            return;
        };
        let read = take_batches(&mut *source, BATCH, &mut |packet| self.send_ip(st, packet));
        self.hooked.return_source(source, read);
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
                Event::StartPpp => self.hooked.core.lower_up(now),
                Event::Connected => {
                    tracing::debug!(
                        session = self.hooked.core.info().id,
                        "SSTP crypto binding complete"
                    )
                }
                Event::PppFrame(frame) => {
                    st.scratch.clear();
                    st.scratch.extend_from_slice(frame);
                    match self.hooked.core.handle_frame(now, &mut st.scratch) {
                        Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                            crate::inbound::deliver(&*self.sink, &mut st.stats, p);
                        }
                        Inbound::Nothing => {}
                    }
                }
                // The tunnel's own reason wins over what PPP saw.
                Event::Closed(reason) => {
                    self.hooked
                        .core
                        .record_reason(end_reasons::from_sstp(&reason));
                    self.hooked.core.lower_down(now, None);
                }
            }
        }
        while let Some(reply) = self.hooked.core.poll_local_reply() {
            self.send_ip(st, &reply);
        }
    }

    fn send_ip(&mut self, st: &mut State, packet: &[u8]) {
        st.frame.clear();
        match self.hooked.core.send_ip(packet, &mut st.frame) {
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

    /// Move link output into SSTP, react to session events, move SSTP
    /// output into the write buffer.
    fn process(&mut self, st: &mut State) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(frame) = self.hooked.core.poll_transmit() {
                busy = true;
                if let Err(e) = self.sstp.send_ppp(&frame) {
                    tracing::debug!(
                        session = self.hooked.core.info().id,
                        "PPP control frame not sent: {e}"
                    );
                }
            }
            while let Some(event) = self.hooked.poll_event() {
                busy = true;
                match event {
                    SessionEvent::Authenticated => self.give_keys(st),
                    SessionEvent::Down => {
                        let _ = self.sstp.close();
                    }
                    SessionEvent::NetworkStarted | SessionEvent::Up(_) => {}
                }
            }
            self.drain_sstp(st);
            if !busy {
                break;
            }
        }
        self.sstp.poll_transmit(&mut st.wbuf);
    }

    /// MS-SSTP §3.2.5.2 / §3.3.5.2: after PPP authentication the HLAK is
    /// derived from the MS-CHAPv2 keys, or all zeros for PAP/CHAP.
    fn give_keys(&mut self, st: &mut State) {
        if st.keys_given {
            return;
        }
        st.keys_given = true;
        let keys = match self.hooked.core.master_keys() {
            Some(k) => HigherLayerKeys::MsChapV2 {
                master_send: k.send,
                master_recv: k.recv,
            },
            None => HigherLayerKeys::None,
        };
        if let Err(e) = self.sstp.set_higher_layer_keys(&keys) {
            tracing::warn!(
                session = self.hooked.core.info().id,
                "SSTP crypto binding keys not accepted: {e}"
            );
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
