//! One established L2TP call as a task: PPP through the session core
//! ([`Hooked`]) exactly as PPTP and SSTP carry it, in data messages
//! (RFC 2661 §3.1, §5.4). L2TP carries PPP frames as they are — no HDLC
//! flags, no FCS, no ACCM escaping (§5.4; the ACCMs of Set-Link-Info are
//! for a LAC's async line) — so a frame from the session core is the
//! payload, and a payload is a frame for it. With sequencing (§5.4,
//! Sequencing Required) data messages carry Ns/Nr and late ones are
//! dropped.

use std::sync::Arc;
use std::time::Instant;

use l2tp::data::{decode_data, encode_data, DataSequence};
use ppp::link::Inbound;
use session::{EndReason, LostCarrier, SessionEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::hooked::{self, Hooked};
use crate::hooks::PacketSink;
use crate::l2tp_counters::{Dropped, L2tpCounters};
use crate::l2tp_peer::L2tpReply;
use crate::l2tp_tunnel::TunnelCommand;
use crate::{Outcome, SessionStats};

/// Datagrams handled per wake-up before the loop looks at other work.
const BATCH: usize = 64;

/// The IDs a session's data messages carry.
pub(crate) struct DataIds {
    /// The peer's tunnel ID (in every data message to it).
    pub peer_tunnel_id: u16,
    /// The peer's session ID.
    pub peer_session_id: u16,
    /// Ours (for the tunnel when the link goes down).
    pub local_session_id: u16,
}

pub(crate) struct L2tpSession {
    pub hooked: Hooked,
    pub ids: DataIds,
    /// Ns/Nr, when the call is sequenced.
    pub sequence: Option<DataSequence>,
    /// Data datagrams of this call, from the tunnel.
    pub data: mpsc::Receiver<Vec<u8>>,
    /// The tunnel ended the call (CDN, tunnel closed, peer gone): why.
    pub close: oneshot::Receiver<EndReason>,
    pub reply: L2tpReply,
    pub tunnel: mpsc::UnboundedSender<TunnelCommand>,
    pub sink: Arc<dyn PacketSink>,
    pub counters: Arc<L2tpCounters>,
}

impl L2tpSession {
    fn id(&self) -> u64 {
        self.hooked.core.info().id
    }

    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Outcome {
        let mut stats = SessionStats::default();
        let mut frame = Vec::new();
        let mut stopping = false;
        let mut closed = false;
        // The call is up: PPP starts (RFC 1661 §4.1 Up event).
        self.hooked.core.lower_up(Instant::now());
        loop {
            let down = self.process(&mut stats);
            self.hooked.report(&stats);
            if down {
                break;
            }
            let deadline = self.hooked.core.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let can_take = self.hooked.outbound.is_some();
            let stop_requested = hooked::stop_requested(self.hooked.live.clone());
            tokio::select! {
                Some(datagram) = self.data.recv() => {
                    self.on_datagram(&mut stats, &mut frame, datagram);
                    for _ in 1..BATCH {
                        match self.data.try_recv() {
                            Ok(d) => self.on_datagram(&mut stats, &mut frame, d),
                            Err(_) => break,
                        }
                    }
                    self.sink.flush();
                },
                why = &mut self.close, if !closed => {
                    closed = true;
                    let why = why.unwrap_or(EndReason::LostCarrier(LostCarrier::TransportClosed));
                    tracing::info!(session = self.id(), "L2TP call ended by the tunnel: {why}");
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(Instant::now(), Some(why));
                },
                p = hooked::recv(&mut self.hooked.outbound), if can_take => match p {
                    Some(first) => {
                        let batch = self.hooked.take_outbound(first, BATCH);
                        for packet in &batch {
                            self.send_ip(&mut stats, &mut frame, packet);
                        }
                        self.hooked.recycle_batch(batch);
                    }
                    None => self.hooked.outbound = None,
                },
                answered = self.hooked.answers.next() => self.hooked.apply(answered),
                _ = sleep => self.hooked.core.handle_timeout(Instant::now()),
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    self.hooked.core.close(Instant::now(), EndReason::ServerStopping);
                }
                _ = stop_requested, if !stopping => {
                    stopping = true;
                    let why = self.hooked.stop_reason();
                    tracing::info!(session = self.id(), "ending the session: {why}");
                    self.hooked.core.close(Instant::now(), why);
                }
            }
        }
        // The call is disconnected (CDN) by the tunnel, unless the tunnel
        // ended it first.
        let _ = self
            .tunnel
            .send(TunnelCommand::SessionDown(self.ids.local_session_id));
        let reason = self.hooked.finish(&stats);
        Outcome {
            reason,
            stats,
            was_up: self.hooked.core.was_up(),
        }
    }

    /// The core's control frames out and its events; true once the link
    /// is down.
    fn process(&mut self, stats: &mut SessionStats) -> bool {
        let mut down = false;
        for _ in 0..16 {
            let mut busy = false;
            while let Some(frame) = self.hooked.core.poll_transmit() {
                busy = true;
                self.send_frame(stats, &frame);
            }
            while let Some(event) = self.hooked.poll_event() {
                busy = true;
                if matches!(event, SessionEvent::Down) {
                    down = true;
                }
            }
            if !busy {
                break;
            }
        }
        down
    }

    fn on_datagram(
        &mut self,
        stats: &mut SessionStats,
        frame: &mut Vec<u8>,
        mut datagram: Vec<u8>,
    ) {
        stats.bytes_in += datagram.len() as u64;
        let (start, len, sequence) = match decode_data(&datagram) {
            Ok(m) => (
                m.payload.as_ptr() as usize - datagram.as_ptr() as usize,
                m.payload.len(),
                m.sequence,
            ),
            Err(e) => {
                return self.counters.dropped(
                    Dropped::Malformed,
                    &format_args!("session {}: a data message: {e}", self.id()),
                )
            }
        };
        if let (Some(seq), Some((ns, _))) = (self.sequence.as_mut(), sequence) {
            if !seq.accept(ns) {
                return self.counters.dropped(
                    Dropped::OutOfSequence,
                    &format_args!("session {}: data message {ns} came late", self.id()),
                );
            }
        }
        let now = Instant::now();
        match self
            .hooked
            .core
            .handle_frame(now, &mut datagram[start..start + len])
        {
            Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                crate::inbound::deliver(&*self.sink, stats, p);
            }
            Inbound::Nothing => {}
        }
        // The server's own end of the link answers (IPv6 echo, ND).
        while let Some(reply) = self.hooked.core.poll_local_reply() {
            self.send_ip(stats, frame, &reply);
        }
    }

    /// One IP packet from the network into a data message.
    fn send_ip(&mut self, stats: &mut SessionStats, frame: &mut Vec<u8>, packet: &[u8]) {
        frame.clear();
        match self.hooked.core.send_ip(packet, frame) {
            Ok(()) => {
                stats.packets_out += 1;
                stats.ip_bytes_out += packet.len() as u64;
                self.send_frame(stats, frame);
            }
            Err(_) => stats.dropped_out += 1,
        }
    }

    fn send_frame(&mut self, stats: &mut SessionStats, frame: &[u8]) {
        // §3.1: the data header is 6 octets, 10 with Ns/Nr.
        let mut out = Vec::with_capacity(frame.len() + 10);
        let sequence = self.sequence.as_mut().map(DataSequence::next_send);
        encode_data(
            self.ids.peer_tunnel_id,
            self.ids.peer_session_id,
            sequence,
            frame,
            &mut out,
        );
        stats.bytes_out += out.len() as u64;
        (self.reply)(out);
    }
}
