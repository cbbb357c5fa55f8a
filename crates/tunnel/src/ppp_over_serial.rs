//! One PPP session over an asynchronous serial byte stream (a tty, a pty,
//! a modem after CONNECT): RFC 1662 HDLC-like framing of
//! [`ppp::hdlc`] around a [`ppp::link::Link`], in either role.
//!
//! The loop reads octets, cuts them into frames, hands frames to the link
//! and IP packets to the sink; link output and IP packets from the hooks'
//! queue are framed and written. The transmit ACCM follows what LCP
//! negotiated (RFC 1662 §7.1); LCP itself always goes out with the default
//! map (RFC 1661 §5, done by the encoder).

use std::sync::Arc;
use std::time::Instant;

use ppp::hdlc::{HdlcDecoder, HdlcEncoder, DEFAULT_ACCM};
use ppp::link::{Inbound, Link, LinkConfig, Phase};
use session::{EndReason, LostCarrier};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::hooked::{self, Hooked};
use crate::hooks::{Owner, PacketSink, SessionInfo};
use crate::{Outcome, SessionStats};

/// Stop taking IP packets while this much waits to be written: a serial
/// line is slow, and a full buffer only adds latency.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// A peer (or line) that makes us queue this much is gone.
const WRITE_LIMIT: usize = 1024 * 1024;
const READ_BUFFER: usize = 4096;
/// After the link is down, how long the last frames (Terminate-Ack) may
/// take to be written before the line is dropped.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// The line's PPP settings.
#[derive(Debug, Clone)]
pub struct SerialSessionConfig {
    /// The PPP settings (server role with an authenticator, or client
    /// role with credentials; the owner decides the session's role).
    pub link: LinkConfig,
}

struct Driver {
    hooked: Hooked,
    encoder: HdlcEncoder,
    decoder: HdlcDecoder,
    sink: Arc<dyn PacketSink>,
    wbuf: Vec<u8>,
    frame: Vec<u8>,
    scratch: Vec<u8>,
    stats: SessionStats,
}

/// Run one PPP session over `stream` until the link goes down, the stream
/// ends, or `shutdown` turns true (then LCP Terminate-Request is sent).
/// The line is assumed connected (carrier up) when this is called;
/// `initial` holds octets that already arrived (after a modem's CONNECT).
pub async fn run<S>(
    stream: S,
    initial: &[u8],
    config: SerialSessionConfig,
    owner: Owner,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    mut shutdown: watch::Receiver<bool>,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut d = Driver {
        hooked: Hooked::new(owner, Link::new(config.link), info)
            .with_carrier_name(" on the serial line"),
        encoder: HdlcEncoder::new(),
        decoder: HdlcDecoder::new(),
        sink,
        wbuf: Vec::new(),
        frame: Vec::new(),
        scratch: Vec::new(),
        stats: SessionStats::default(),
    };
    let mut rbuf = vec![0u8; READ_BUFFER];
    let mut stop_seen = false;
    let mut linger_until: Option<tokio::time::Instant> = None;
    d.hooked.core.lower_up(Instant::now());
    d.receive(initial);
    loop {
        d.process();
        d.sink.flush();
        d.hooked.report(&d.stats);
        if d.wbuf.len() > WRITE_LIMIT {
            d.hooked
                .core
                .record_reason(EndReason::LostCarrier(LostCarrier::PeerNotReading));
            break;
        }
        let down = d.hooked.core.is_down();
        if down {
            if d.wbuf.is_empty() {
                break;
            }
            let until = *linger_until.get_or_insert_with(|| tokio::time::Instant::now() + LINGER);
            if tokio::time::Instant::now() >= until {
                break;
            }
        }
        let deadline = d.hooked.core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let linger = async {
            match linger_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let can_take = d.hooked.outbound.is_some() && d.wbuf.len() < WRITE_HIGH_WATER;
        let stop_requested = hooked::stop_requested(d.hooked.live.clone());
        tokio::select! {
            r = rd.read(&mut rbuf), if !down => match r {
                Ok(0) | Err(_) => {
                    d.hooked.core.lower_down(Instant::now(), None);
                    d.wbuf.clear();
                    d.process();
                    break;
                }
                Ok(n) => {
                    d.stats.bytes_in += n as u64;
                    d.receive(&rbuf[..n]);
                }
            },
            w = wr.write(&d.wbuf), if !d.wbuf.is_empty() => match w {
                Ok(0) | Err(_) => {
                    let why = EndReason::LostCarrier(LostCarrier::TransportFailed("writing to the line failed".into()));
                    d.hooked.core.lower_down(Instant::now(), Some(why));
                    d.wbuf.clear();
                    d.process();
                    break;
                }
                Ok(n) => {
                    d.stats.bytes_out += n as u64;
                    d.wbuf.drain(..n);
                }
            },
            p = hooked::recv(&mut d.hooked.outbound), if can_take => match p {
                Some(first) => {
                    let batch = d.hooked.take_outbound(first, 64);
                    for packet in &batch {
                        d.send_ip(packet);
                    }
                    d.hooked.recycle_batch(batch);
                }
                None => d.hooked.outbound = None,
            },
            answered = d.hooked.answers.next() => d.hooked.apply(answered),
            _ = sleep => d.hooked.core.handle_timeout(Instant::now()),
            _ = linger => break,
            _ = shutdown.changed() => {
                let why = d.hooked.shutdown_reason();
                d.hooked.core.close(Instant::now(), why);
            }
            _ = stop_requested, if !stop_seen => {
                stop_seen = true;
                let why = d.hooked.stop_reason();
                tracing::info!(session = d.hooked.core.info().id, "ending the session: {why}");
                d.hooked.core.close(Instant::now(), why);
            }
        }
    }
    let _ = wr.flush().await;
    let reason = d.hooked.finish(&d.stats);
    Outcome {
        reason,
        was_up: d.hooked.core.was_up(),
        stats: d.stats,
    }
}

impl Driver {
    /// Octets from the line: frames one by one, so that a receive ACCM
    /// change made by one frame (LCP opening) applies to the next.
    fn receive(&mut self, data: &[u8]) {
        self.decoder.push(data);
        while let Some(frame) = self.decoder.next_frame() {
            self.scratch.clear();
            self.scratch.extend_from_slice(frame);
            match self
                .hooked
                .core
                .handle_frame(Instant::now(), &mut self.scratch)
            {
                Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                    crate::inbound::deliver(&*self.sink, &mut self.stats, p);
                }
                Inbound::Nothing => {}
            }
            self.follow_lcp();
        }
        while let Some(reply) = self.hooked.core.poll_local_reply() {
            self.send_ip(&reply);
        }
    }

    /// RFC 1662 §7.1: once LCP is open, the maps it negotiated apply to
    /// everything but LCP; before, and after the link is down, the default.
    fn follow_lcp(&mut self) {
        let link = self.hooked.core.link();
        let opened = matches!(
            link.phase(),
            Phase::Authenticate | Phase::Callback | Phase::Network
        );
        let (tx, rx) = if opened {
            let n = link.lcp();
            (n.tx_accm, n.rx_accm)
        } else {
            (DEFAULT_ACCM, DEFAULT_ACCM)
        };
        if self.encoder.accm() != tx {
            self.encoder.set_accm(tx);
        }
        if self.decoder.config().rx_accm != rx {
            self.decoder.set_rx_accm(rx);
        }
    }

    fn send_ip(&mut self, packet: &[u8]) {
        self.frame.clear();
        match self.hooked.core.send_ip(packet, &mut self.frame) {
            Ok(()) => {
                self.encoder.encode_frame(&self.frame, &mut self.wbuf);
                self.stats.packets_out += 1;
                self.stats.ip_bytes_out += packet.len() as u64;
            }
            Err(_) => self.stats.dropped_out += 1,
        }
    }

    /// Link output into the write buffer; session events (none needs
    /// more than the shared glue does: the loop sees `is_down`).
    fn process(&mut self) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(frame) = self.hooked.core.poll_transmit() {
                busy = true;
                self.encoder.encode_frame(&frame, &mut self.wbuf);
            }
            // The shared glue does all a serial line needs with the
            // events; the loop itself watches `is_down`.
            while self.hooked.poll_event().is_some() {
                busy = true;
            }
            self.follow_lcp();
            if !busy {
                break;
            }
        }
    }
}

/// Why a modem exchange did not reach CONNECT.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("the modem answered {0}")]
    Refused(String),
    #[error("no CONNECT within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the line closed before CONNECT")]
    Closed,
    #[error("serial line: {0}")]
    Io(#[from] std::io::Error),
    #[error("stopped")]
    Stopped,
}

/// Dialer side: `AT`, `ATDT<number>`, wait for CONNECT. Returns the octets
/// that followed CONNECT (the start of PPP).
pub async fn dial<S>(
    stream: &mut S,
    number: &str,
    limit: std::time::Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Vec<u8>, DialError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use crate::modem::{DialState, ModemDialer};
    let mut dialer = ModemDialer::new(number);
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 512];
    loop {
        if let Some(out) = dialer.poll_transmit() {
            stream.write_all(&out).await?;
        }
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Err(DialError::Closed);
                }
                let used = dialer.handle_input(&buf[..n]);
                match dialer.state() {
                    DialState::Connected(speed) => {
                        tracing::info!("modem: CONNECT {speed}");
                        return Ok(buf[used..n].to_vec());
                    }
                    DialState::Failed(text) => return Err(DialError::Refused(text.clone())),
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Err(DialError::Timeout(limit)),
            _ = shutdown.changed() => return Err(DialError::Stopped),
        }
    }
}

/// Answering side: reply to AT commands until a dial command we answer.
/// Returns the dialed number and the octets after its command line.
/// Waits as long as it takes (a line may stay idle until someone calls),
/// until `shutdown`.
pub async fn answer<S>(
    stream: &mut S,
    modem: &mut crate::modem::ModemAnswer,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(String, Vec<u8>), DialError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use crate::modem::AnswerEvent;
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Err(DialError::Closed);
                }
                let used = modem.handle_input(&buf[..n]);
                if let Some(out) = modem.poll_transmit() {
                    stream.write_all(&out).await?;
                }
                while let Some(event) = modem.poll_event() {
                    match event {
                        AnswerEvent::Connected { number } => {
                            return Ok((number, buf[used..n].to_vec()))
                        }
                        AnswerEvent::Refused { number } => {
                            tracing::info!("modem: refused a call to {number:?}")
                        }
                    }
                }
            }
            _ = shutdown.changed() => return Err(DialError::Stopped),
        }
    }
}
