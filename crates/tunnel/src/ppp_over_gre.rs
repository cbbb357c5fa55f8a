//! The data path shared by the PPTP client and server sessions: PPP frames
//! carried in an enhanced-GRE call (RFC 2637 §4), in both directions.

use std::time::Instant;

use ppp::link::{Inbound, Link};
use pptp::GreSession;

use crate::hooks::PacketSink;
use crate::session::SessionStats;

/// Hand every in-order GRE payload to the PPP link; IP packets it yields
/// go to `sink`. `scratch` is reused so nothing is allocated per packet.
pub(crate) fn deliver(
    gre: &mut GreSession,
    link: &mut Link,
    sink: &dyn PacketSink,
    scratch: &mut Vec<u8>,
    stats: &mut SessionStats,
    now: Instant,
) {
    while let Some(frame) = gre.poll_received() {
        scratch.clear();
        scratch.extend_from_slice(&frame);
        match link.handle_frame(now, scratch) {
            Inbound::Ipv4(p) | Inbound::Ipv6(p) => {
                stats.packets_in += 1;
                sink.send(p);
            }
            Inbound::Nothing => {}
        }
    }
}

/// One IP packet from the network: PPP (with MPPE when negotiated) into
/// GRE. `frame` is a reused buffer.
pub(crate) fn send_ip(
    link: &mut Link,
    gre: &mut GreSession,
    frame: &mut Vec<u8>,
    stats: &mut SessionStats,
    packet: &[u8],
) {
    frame.clear();
    match link.send_ip(packet, frame) {
        Ok(()) => match gre.send(Instant::now(), frame) {
            Ok(()) => stats.packets_out += 1,
            Err(_) => stats.dropped_out += 1,
        },
        Err(_) => stats.dropped_out += 1,
    }
}

/// The link's control frames (LCP, auth, NCPs) into GRE; true if any.
pub(crate) fn send_control(
    link: &mut Link,
    gre: &mut GreSession,
    session: u64,
    now: Instant,
) -> bool {
    let mut any = false;
    while let Some(frame) = link.poll_transmit() {
        any = true;
        if let Err(e) = gre.send(now, &frame) {
            tracing::debug!(session, "PPP control frame not sent: {e}");
        }
    }
    any
}
