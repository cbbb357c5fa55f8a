//! The client side of L2TP (RFC 2661), the LAC: it opens a tunnel to the
//! server's LNS, places one incoming call and carries a PPP [`Link`]
//! through the session core ([`Hooked`]) in data messages, as the PPTP
//! and SSTP clients do.
//!
//! ```text
//! SCCRQ/SCCRP/SCCCN → ICRQ/ICRP/ICCN → data: LCP, auth, IPCP → up
//! shutdown: LCP Terminate → CDN (§5.6) → StopCCN (§5.7) → transport closed
//! ```
//!
//! The datagrams travel over an [`L2tpTransport`]: plain UDP, or inside
//! IPsec (L2TP/IPsec, RFC 3193). One task owns the sans-IO
//! [`l2tp::Tunnel`], the call and the link.

use std::sync::Arc;
use std::time::{Duration, Instant};

use l2tp::data::{decode_data, encode_data, DataSequence};
use l2tp::header::{decode, Packet};
use l2tp::{Event, Tunnel, TunnelCloseReason, TunnelConfig};
use ppp::link::{Inbound, Link, LinkConfig};
use rand::RngCore;
use session::{EndReason, LostCarrier, SessionEvent};
use tokio::sync::watch;

use crate::end_reasons;
use crate::hooked::{self, Hooked};
use crate::hooks::{ClientHooks, Owner, PacketSink, SessionInfo};
use crate::l2tp_client_transport::L2tpTransport;
use crate::packet_source::{read_source, take_batches};
use crate::{Outcome, SessionStats};

/// Outbound IP packets taken per wake-up.
const OUTBOUND_BATCH: usize = 64;
/// Datagrams from the server taken per wake-up before the TUN writes are
/// flushed.
const INBOUND_BATCH: usize = 64;
/// After the link is down, how long the server gets to acknowledge our
/// CDN and StopCCN before we stop waiting (§5.7 would linger a full
/// retransmission cycle; a client that is going away need not).
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the LAC needs to know.
#[derive(Debug, Clone)]
pub struct L2tpClientConfig {
    /// The PPP link settings (client role, with credentials).
    pub link: LinkConfig,
    /// The control connection settings (host name, HELLO interval,
    /// retransmission).
    pub tunnel: TunnelConfig,
    /// Limit for the tunnel and the call to be established.
    pub setup_timeout: Duration,
}

impl L2tpClientConfig {
    /// Defaults: our host name in SCCRQ, no tunnel secret (L2TP/IPsec
    /// servers authenticate the machine in IKE, RFC 3193 §5), 15 s setup.
    pub fn new(link: LinkConfig) -> Self {
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ras".to_string());
        L2tpClientConfig {
            link,
            tunnel: TunnelConfig {
                host_name: host_name.into_bytes(),
                ..TunnelConfig::default()
            },
            setup_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the tunnel or the call could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum L2tpClientError {
    /// The server closed or never answered the control connection.
    #[error("L2TP tunnel not established: {0}")]
    TunnelRefused(String),
    /// The tunnel is up but the server disconnected the call (CDN).
    #[error("the server refused the L2TP call: {0}")]
    CallRefused(String),
    /// The transport ended during setup (IPsec deleted, socket error).
    #[error("{0}")]
    Transport(String),
    #[error("L2TP setup took longer than {0:?}")]
    Timeout(Duration),
    /// `shutdown` was signalled before the call was up.
    #[error("stopped")]
    Stopped,
}

/// Words for a tunnel that closed during setup: the common case of no
/// answer at all gets a diagnosis.
fn tunnel_refusal(reason: &TunnelCloseReason) -> String {
    match reason {
        TunnelCloseReason::PeerUnreachable => {
            "the server does not answer L2TP (UDP port 1701): no L2TP server there, or a firewall drops it".to_string()
        }
        other => other.to_string(),
    }
}

/// Run one call over `transport` until it ends; the transport is closed
/// on the way out (IPsec: Deletes sent).
///
/// Errors are failures before the call was established; afterwards the
/// [`Outcome`] tells how the session ended.
pub async fn connect(
    mut transport: L2tpTransport,
    config: L2tpClientConfig,
    hooks: Arc<dyn ClientHooks>,
    sink: Arc<dyn PacketSink>,
    info: SessionInfo,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Outcome, L2tpClientError> {
    // §5.1.1: the challenge must be unpredictable; the tunnel ID only
    // needs to be ours.
    let mut random = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut random);
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(&random[..16]);
    let tunnel_id = u16::from_be_bytes([random[16], random[17]]).max(1);
    let mut tunnel = Tunnel::new_lac(config.tunnel, tunnel_id, challenge, Instant::now());
    let established = establish(
        &mut tunnel,
        &mut transport,
        config.setup_timeout,
        &mut shutdown,
    )
    .await;
    let call = match established {
        Ok(call) => call,
        Err(e) => {
            // Say goodbye on the way out (StopCCN, best effort).
            tunnel.close(Instant::now());
            flush(&mut tunnel, &transport, &mut SessionStats::default());
            transport.close().await;
            return Err(e);
        }
    };
    tracing::info!(
        session = info.id,
        tunnel = tunnel.local_tunnel_id(),
        peer_tunnel = tunnel.peer_tunnel_id(),
        call = call.local,
        peer_call = call.peer,
        sequencing = call.sequencing,
        "L2TP call established ({})",
        transport.describe()
    );
    hooks.transport_up(&info);
    let mut hooked = Hooked::new(Owner::Client(hooks), Link::new(config.link), info)
        .with_carrier_name(" over L2TP");
    // The call is up: PPP starts (RFC 1661 §4.1 Up event).
    hooked.core.lower_up(Instant::now());
    let session = Session {
        tunnel,
        call,
        hooked,
        sink,
        stats: SessionStats::default(),
        frame: Vec::new(),
        link_down: false,
    };
    Ok(session.run(transport, shutdown).await)
}

/// The established call's IDs.
struct Call {
    local: u16,
    peer: u16,
    peer_tunnel: u16,
    sequencing: bool,
}

/// SCCRQ … SCCCN, then ICRQ … ICCN.
async fn establish(
    tunnel: &mut Tunnel,
    transport: &mut L2tpTransport,
    limit: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Call, L2tpClientError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut stats = SessionStats::default();
    let mut call = None;
    tunnel.open_tunnel(Instant::now());
    loop {
        while let Some(event) = tunnel.poll_event() {
            match event {
                Event::TunnelEstablished {
                    peer_tunnel_id,
                    peer_host_name,
                } => {
                    tracing::info!(
                        "L2TP tunnel {} up (server host {}, its tunnel ID {peer_tunnel_id})",
                        tunnel.local_tunnel_id(),
                        String::from_utf8_lossy(&peer_host_name).escape_debug()
                    );
                    call = Some(
                        tunnel
                            .place_call(Instant::now())
                            .map_err(|e| L2tpClientError::CallRefused(e.to_string()))?,
                    );
                }
                Event::SessionEstablished {
                    local_session_id,
                    peer_session_id,
                    sequencing_required,
                } if Some(local_session_id) == call => {
                    flush(tunnel, transport, &mut stats);
                    return Ok(Call {
                        local: local_session_id,
                        peer: peer_session_id,
                        peer_tunnel: tunnel.peer_tunnel_id(),
                        sequencing: sequencing_required,
                    });
                }
                Event::SessionClosed { reason, .. } => {
                    return Err(L2tpClientError::CallRefused(reason.to_string()))
                }
                Event::CallRefused { result, .. } => {
                    return Err(L2tpClientError::CallRefused(format!(
                        "result code {}",
                        result.result
                    )))
                }
                Event::TunnelClosed { reason } => {
                    return Err(L2tpClientError::TunnelRefused(tunnel_refusal(&reason)))
                }
                Event::LinkInfo { .. } => {}
                Event::SessionEstablished { .. } => {}
            }
        }
        flush(tunnel, transport, &mut stats);
        let timer = tunnel.poll_timeout();
        let sleep = async {
            match timer {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = transport.recv() => match r {
                Ok(d) => {
                    // Data before the call is up is not for us yet.
                    if matches!(decode(&d), Ok(Packet::Control { .. })) {
                        tunnel.handle_input(Instant::now(), &d);
                    }
                }
                Err(e) => return Err(L2tpClientError::Transport(e)),
            },
            _ = sleep => tunnel.handle_timeout(Instant::now()),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(if tunnel.peer_tunnel_id() == 0 {
                    L2tpClientError::TunnelRefused(tunnel_refusal(&TunnelCloseReason::PeerUnreachable))
                } else {
                    L2tpClientError::Timeout(limit)
                })
            }
            _ = shutdown.changed() => return Err(L2tpClientError::Stopped),
        }
    }
}

/// The tunnel's datagrams out.
fn flush(tunnel: &mut Tunnel, transport: &L2tpTransport, stats: &mut SessionStats) {
    let now = Instant::now();
    while let Some(datagram) = tunnel.poll_transmit(now) {
        stats.bytes_out += datagram.len() as u64;
        let _ = transport.send(datagram);
    }
}

/// An established call.
struct Session {
    tunnel: Tunnel,
    call: Call,
    /// The PPP link and the owner's hooks.
    hooked: Hooked,
    sink: Arc<dyn PacketSink>,
    stats: SessionStats,
    /// Frame buffer, reused.
    frame: Vec<u8>,
    /// The link is down: CDN and StopCCN sent, waiting for the ack.
    link_down: bool,
}

impl Session {
    fn id(&self) -> u64 {
        self.hooked.core.info().id
    }

    async fn run(
        mut self,
        mut transport: L2tpTransport,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome {
        let mut sequence = self.call.sequencing.then(DataSequence::default);
        let mut stopping = false;
        let mut stop_deadline = None;
        loop {
            self.process(&transport, &mut sequence);
            if self.link_down && stop_deadline.is_none() {
                stop_deadline = Some(tokio::time::Instant::now() + STOP_WAIT);
            }
            if self.tunnel.is_closed() {
                break;
            }
            let deadline = [self.hooked.core.poll_timeout(), self.tunnel.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            let give_up = async {
                match stop_deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let can_take = self.hooked.outbound.is_some();
            tokio::select! {
                r = transport.recv() => match r {
                    Ok(d) => {
                        self.on_datagram(&mut sequence, d);
                        // A burst, then one flush: the TUN writer
                        // coalesces what it was given (GRO).
                        for _ in 1..INBOUND_BATCH {
                            match transport.try_recv() {
                                Some(d) => self.on_datagram(&mut sequence, d),
                                None => break,
                            }
                        }
                        self.sink.flush();
                    }
                    Err(e) => {
                        tracing::info!(session = self.id(), "L2TP transport ended: {e}");
                        self.hooked.core.record_reason(EndReason::LostCarrier(
                            LostCarrier::TransportFailed(e),
                        ));
                        self.hooked.outbound = None;
                        self.hooked.core.lower_down(Instant::now(), None);
                        self.process(&transport, &mut sequence);
                        break;
                    }
                },
                p = hooked::recv(&mut self.hooked.outbound), if can_take => match p {
                    Some(first) => {
                        let batch = self.hooked.take_outbound(first, OUTBOUND_BATCH);
                        for packet in &batch {
                            self.send_ip(&transport, &mut sequence, packet);
                        }
                        self.hooked.recycle_batch(batch);
                    }
                    None => self.hooked.outbound = None,
                },
                r = read_source(self.hooked.source.as_deref_mut()), if self.hooked.source.is_some() => match r {
                    Ok(()) => self.take_from_source(&transport, &mut sequence),
                    Err(e) => self.hooked.source_failed(e),
                },
                answered = self.hooked.answers.next() => self.hooked.apply(answered),
                _ = sleep => {
                    let now = Instant::now();
                    self.hooked.core.handle_timeout(now);
                    self.tunnel.handle_timeout(now);
                }
                _ = give_up => {
                    tracing::debug!(session = self.id(), "the server did not acknowledge StopCCN");
                    break;
                }
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    self.hooked.core.close(Instant::now(), EndReason::LocalRequest);
                }
            }
        }
        transport.close().await;
        tracing::debug!(session = self.id(), "L2TP session ended");
        let reason = self.hooked.finish(&self.stats);
        Outcome {
            reason,
            stats: self.stats,
            was_up: self.hooked.core.was_up(),
        }
    }

    /// Link output into data messages, session and tunnel events, the
    /// tunnel's control messages out.
    fn process(&mut self, transport: &L2tpTransport, sequence: &mut Option<DataSequence>) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(frame) = self.hooked.core.poll_transmit() {
                busy = true;
                self.send_frame(transport, sequence, &frame);
            }
            while let Some(event) = self.hooked.poll_event() {
                busy = true;
                if matches!(event, SessionEvent::Down) && !self.link_down {
                    self.link_down = true;
                    let now = Instant::now();
                    // §5.6 CDN for the call (already gone if the server
                    // ended it), then §5.7 StopCCN: one call per tunnel.
                    let _ = self.tunnel.close_session(now, self.call.local);
                    self.tunnel.close(now);
                }
            }
            while let Some(event) = self.tunnel.poll_event() {
                busy = true;
                self.on_tunnel_event(event);
            }
            if !busy {
                break;
            }
        }
        flush(&mut self.tunnel, transport, &mut self.stats);
    }

    fn on_tunnel_event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::SessionClosed {
                local_session_id,
                reason,
            } if local_session_id == self.call.local => {
                if !self.link_down {
                    tracing::info!(session = self.id(), "L2TP call ended: {reason}");
                    self.hooked
                        .core
                        .record_reason(end_reasons::from_l2tp_session(&reason));
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(now, None);
                }
            }
            Event::TunnelClosed { reason } => {
                if !self.link_down {
                    tracing::info!(session = self.id(), "L2TP tunnel closed: {reason}");
                    self.hooked
                        .core
                        .record_reason(end_reasons::from_l2tp_tunnel(&reason));
                    self.hooked.outbound = None;
                    self.hooked.core.lower_down(now, None);
                }
            }
            Event::LinkInfo { .. } => {}
            other => tracing::debug!(session = self.id(), "L2TP event: {other:?}"),
        }
    }

    fn on_datagram(&mut self, sequence: &mut Option<DataSequence>, mut datagram: Vec<u8>) {
        self.stats.bytes_in += datagram.len() as u64;
        let (start, len, ns) = match decode(&datagram) {
            Ok(Packet::Control { .. }) => {
                return self.tunnel.handle_input(Instant::now(), &datagram);
            }
            Ok(Packet::Data(_)) => match decode_data(&datagram) {
                Ok(m) if m.session_id == self.call.local => (
                    m.payload.as_ptr() as usize - datagram.as_ptr() as usize,
                    m.payload.len(),
                    m.sequence.map(|(ns, _)| ns),
                ),
                Ok(m) => {
                    tracing::debug!(
                        session = self.id(),
                        "L2TP: dropped data for session {}, not ours",
                        m.session_id
                    );
                    return;
                }
                Err(e) => {
                    tracing::debug!(session = self.id(), "L2TP: a bad data message: {e}");
                    return;
                }
            },
            Err(e) => {
                tracing::debug!(session = self.id(), "L2TP: a bad datagram: {e}");
                return;
            }
        };
        if let (Some(seq), Some(ns)) = (sequence.as_mut(), ns) {
            // §5.4: late data messages are dropped.
            if !seq.accept(ns) {
                tracing::trace!(session = self.id(), "L2TP: data message {ns} came late");
                return;
            }
        }
        match self
            .hooked
            .core
            .handle_frame(Instant::now(), &mut datagram[start..start + len])
        {
            Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                crate::inbound::deliver(&*self.sink, &mut self.stats, p);
            }
            Inbound::Nothing => {}
        }
    }

    /// The batch the client's device just gave (read by this task rather
    /// than a reader task: one hand-off and one copy fewer per packet),
    /// and the batches it has ready now, up to [`OUTBOUND_BATCH`] packets
    /// per wake-up.
    fn take_from_source(&mut self, transport: &L2tpTransport, sequence: &mut Option<DataSequence>) {
        let Some(mut source) = self.hooked.source.take() else {
            return;
        };
        let read = take_batches(&mut *source, OUTBOUND_BATCH, &mut |packet| {
            self.send_ip(transport, sequence, packet)
        });
        self.hooked.return_source(source, read);
    }

    /// One IP packet from the TUN device into a data message.
    fn send_ip(
        &mut self,
        transport: &L2tpTransport,
        sequence: &mut Option<DataSequence>,
        packet: &[u8],
    ) {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        match self.hooked.core.send_ip(packet, &mut frame) {
            Ok(()) => {
                self.stats.packets_out += 1;
                self.stats.ip_bytes_out += packet.len() as u64;
                self.send_frame(transport, sequence, &frame);
            }
            Err(_) => self.stats.dropped_out += 1,
        }
        self.frame = frame;
    }

    fn send_frame(
        &mut self,
        transport: &L2tpTransport,
        sequence: &mut Option<DataSequence>,
        frame: &[u8],
    ) {
        // §3.1: the data header is 6 octets, 10 with Ns/Nr.
        let mut out = Vec::with_capacity(frame.len() + 10);
        let ns_nr = sequence.as_mut().map(DataSequence::next_send);
        encode_data(
            self.call.peer_tunnel,
            self.call.peer,
            ns_nr,
            frame,
            &mut out,
        );
        self.stats.bytes_out += out.len() as u64;
        if !transport.send(out) {
            self.stats.dropped_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answer_reads_as_a_diagnosis() {
        let text = tunnel_refusal(&TunnelCloseReason::PeerUnreachable);
        assert!(text.contains("UDP port 1701"), "{text}");
        let text = tunnel_refusal(&TunnelCloseReason::AuthenticationFailed);
        assert!(text.contains("secret"), "{text}");
    }
}
