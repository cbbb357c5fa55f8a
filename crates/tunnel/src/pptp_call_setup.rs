//! PPTP call setup on the server: the control connection from accept to
//! an established call (RFC 2637 §3.1.2, §3.2.4), and the Call IDs it
//! takes from the shared GRE demultiplexer.
//!
//! The PAC asks for a Call ID ([`Event::CallIdNeeded`]) for each
//! Outgoing-Call-Request within its port limit; [`CallIdLease`] registers
//! one in the [`GreDemux`] (unique across every control connection, since
//! GRE to the server names the call by that ID alone) routed to this
//! connection's client address and queue, and frees them all when the
//! connection ends.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pptp::control::StopReason;
use pptp::{Event, Pac};
use session::{EndReason, LostCarrier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::end_reasons;
use crate::pptp_gre_io::GreDemux;

/// Control messages are small; a peer that does not take them within this
/// long is gone.
const CONTROL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The Call IDs one control connection holds in the demultiplexer, all
/// routed to its client's address and its call's queue; released when
/// the lease is dropped (the connection ended, however it ended).
pub(crate) struct CallIdLease {
    demux: Arc<GreDemux>,
    peer: Ipv4Addr,
    queue: crate::PacketSender,
    ids: Vec<u16>,
}

impl CallIdLease {
    pub(crate) fn new(demux: Arc<GreDemux>, peer: Ipv4Addr, queue: crate::PacketSender) -> Self {
        CallIdLease {
            demux,
            peer,
            queue,
            ids: Vec::new(),
        }
    }

    /// Answers the PAC's [`Event::CallIdNeeded`]: a free Call ID, or none
    /// when all are taken (the PAC then refuses the call with General
    /// Error / No-Resource, RFC 2637 §2.8).
    pub(crate) fn answer(&mut self, pac: &mut Pac, now: Instant) {
        let Some(id) = self.demux.register(self.peer, self.queue.clone()) else {
            tracing::warn!("PPTP call refused: every Call ID is in use");
            let _ = pac.assign_call_id(now, None);
            return;
        };
        match pac.assign_call_id(now, Some(id)) {
            Ok(()) => self.ids.push(id),
            Err(e) => {
                // The table hands out IDs unique across the server, so
                // the PAC has no call with it; refuse rather than leave
                // the request waiting.
                tracing::warn!("PPTP Call ID {id} not taken: {e}");
                self.demux.release(id);
                let _ = pac.assign_call_id(now, None);
            }
        }
    }
}

impl Drop for CallIdLease {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            self.demux.release(id);
        }
    }
}

use crate::ppp_over_gre;
/// The Call IDs and window of an established call.
pub(crate) use crate::ppp_over_gre::CallIds;

/// The control connection before the call is up.
pub(crate) struct Setup {
    pub(crate) tcp: TcpStream,
    pub(crate) pac: Pac,
    pub(crate) rbuf: Vec<u8>,
    /// The Call IDs this connection holds in the demultiplexer.
    pub(crate) lease: CallIdLease,
}

impl Setup {
    pub(crate) async fn establish(
        &mut self,
        limit: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<CallIds, EndReason> {
        let deadline = tokio::time::Instant::now() + limit;
        'io: loop {
            while let Some(msg) = self.pac.poll_transmit() {
                write_control(&mut self.tcp, &msg).await?;
            }
            while let Some(event) = self.pac.poll_event() {
                match event {
                    Event::CallIdNeeded { .. } => {
                        self.lease.answer(&mut self.pac, Instant::now());
                        // The Outgoing-Call-Reply is written before the
                        // call is reported established (see `Session`'s
                        // `lower_up_at` on why it must lead our GRE).
                        continue 'io;
                    }
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

pub(crate) async fn write_control(tcp: &mut TcpStream, msg: &[u8]) -> Result<(), EndReason> {
    match tokio::time::timeout(CONTROL_WRITE_TIMEOUT, tcp.write_all(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(EndReason::LostCarrier(LostCarrier::TransportFailed(
            format!("control connection: {e}"),
        ))),
        Err(_) => Err(EndReason::LostCarrier(LostCarrier::PeerNotReading)),
    }
}
