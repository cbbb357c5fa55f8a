//! The sink in front of the TUN device when `[netbios]` is on: a client's
//! NetBIOS name service and datagram packets for the gateway (UDP 137/138
//! broadcast, or to the server's end of the link) go to the gateway
//! instead of the host, and are not activity for the idle timeout.

use std::sync::Arc;

use tunnel::PacketSink;

use crate::netbios_driver::NetbiosGateway;

/// [`PacketSink`] that hands the gateway its packets and the rest on.
pub struct NetbiosSink {
    pub inner: Arc<dyn PacketSink>,
    pub gateway: Arc<NetbiosGateway>,
}

impl PacketSink for NetbiosSink {
    fn send(&self, packet: &[u8]) {
        if !self.gateway.take_from_client(packet) {
            self.inner.send(packet);
        }
    }

    fn send_from_peer(&self, packet: &[u8]) -> bool {
        // Seed: datagram traffic does not count as activity.
        if self.gateway.take_from_client(packet) {
            return false;
        }
        self.inner.send(packet);
        true
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
