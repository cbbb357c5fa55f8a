//! The gateway's sockets on one LAN interface: UDP 137 (name service) and
//! 138 (datagram service), bound to the device so that they hear the
//! subnet's broadcasts and send theirs out of that interface only.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use tokio::net::UdpSocket;

use crate::lan_interface::LanInterface;

/// One LAN interface with its two sockets.
pub struct LanPort {
    pub interface: LanInterface,
    pub name_service: Arc<UdpSocket>,
    pub datagram_service: Arc<UdpSocket>,
}

impl LanPort {
    /// Binds UDP 137 and 138 on `interface`.
    pub fn bind(interface: LanInterface) -> io::Result<LanPort> {
        Ok(LanPort {
            name_service: Arc::new(bind(&interface.name, netbios::NAME_SERVICE_PORT)?),
            datagram_service: Arc::new(bind(&interface.name, netbios::DATAGRAM_SERVICE_PORT)?),
            interface,
        })
    }

    /// The socket for `port` (137 or 138).
    pub fn socket(&self, port: u16) -> &UdpSocket {
        if port == netbios::NAME_SERVICE_PORT {
            &self.name_service
        } else {
            &self.datagram_service
        }
    }
}

/// UDP `port` on the wildcard address, bound to `device`: a socket bound
/// to the interface's own address would not receive the subnet's
/// broadcasts; one bound to the wildcard without the device would take
/// them from every interface (and from the TUN). SO_REUSEADDR lets a
/// Samba on the same host keep its own sockets on these ports; broadcasts
/// then reach both.
fn bind(device: &str, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(device.as_bytes()))?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}
