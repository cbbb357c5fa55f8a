//! One IP packet from the peer, counted and handed to the sink: the same
//! three steps in every tunnel's receive path.

use crate::hooks::PacketSink;
use crate::SessionStats;

/// Counts `packet` as received and hands it to `sink`; a packet the sink
/// says is not activity (a NetBIOS datagram the server's gateway took) is
/// counted as such, so it does not move the idle timer (RFC 2865 §5.28).
pub(crate) fn deliver(sink: &dyn PacketSink, stats: &mut SessionStats, packet: &[u8]) {
    stats.packets_in += 1;
    stats.ip_bytes_in += packet.len() as u64;
    if !sink.send_from_peer(packet) {
        stats.packets_in_not_activity += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes packets to UDP port 138 (as the server's NetBIOS sink does)
    /// and passes the rest.
    struct TakesDatagrams(std::sync::Mutex<usize>);
    impl PacketSink for TakesDatagrams {
        fn send(&self, _: &[u8]) {
            *self.0.lock().unwrap() += 1;
        }
        fn send_from_peer(&self, packet: &[u8]) -> bool {
            if packet.get(22..24) == Some(&[0, 138]) {
                return false;
            }
            self.send(packet);
            true
        }
    }

    #[test]
    fn packets_the_sink_takes_are_counted_but_not_as_activity() {
        let sink = TakesDatagrams(std::sync::Mutex::new(0));
        let mut stats = SessionStats::default();
        let mut datagram = vec![0x45u8; 28];
        datagram[22..24].copy_from_slice(&[0, 138]);
        deliver(&sink, &mut stats, &datagram);
        deliver(&sink, &mut stats, &[0x45; 40]);
        assert_eq!(stats.packets_in, 2);
        assert_eq!(stats.ip_bytes_in, 68);
        assert_eq!(stats.packets_in_not_activity, 1);
        assert_eq!(*sink.0.lock().unwrap(), 1);
    }
}
