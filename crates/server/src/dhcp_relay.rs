//! The DHCP relay agent's driver (`[dhcp_relay] servers = [...]`): one UDP
//! socket on port 67 around the sans-IO [`dhcp::Relay`].
//!
//! A client's DHCPINFORM comes out of the TUN device (to 255.255.255.255
//! or to the server's tunnel address) and is delivered to this socket by
//! the host's stack; the relayed request leaves from port 67 (RFC 1542
//! §4.1.1: relays use the server port) to each configured server, whose
//! answer comes back to giaddr port 67, and goes to the client's port 68
//! through the route into the TUN device.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use dhcp::Relay;
use tokio::net::UdpSocket;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayStartError {
    #[error("DHCP relay: cannot open UDP port 67: {0}")]
    Socket(#[source] io::Error),
    #[error("DHCP relay: no local address reaches DHCP server {server}: {source}; set [dhcp_relay] giaddr")]
    NoGiaddr {
        server: Ipv4Addr,
        #[source]
        source: io::Error,
    },
}

/// The relay, ready to run.
pub struct DhcpRelay {
    socket: UdpSocket,
    relay: Relay,
}

impl DhcpRelay {
    /// Opens port 67. `giaddr` defaults to this host's address towards the
    /// first server (where the servers will answer).
    pub fn open(
        servers: Vec<Ipv4Addr>,
        giaddr: Option<Ipv4Addr>,
    ) -> Result<DhcpRelay, RelayStartError> {
        let giaddr = match (giaddr, servers.first()) {
            (Some(g), _) => g,
            (None, Some(first)) => {
                local_address_towards(*first).map_err(|source| RelayStartError::NoGiaddr {
                    server: *first,
                    source,
                })?
            }
            (None, None) => Ipv4Addr::UNSPECIFIED,
        };
        let socket = server_socket().map_err(RelayStartError::Socket)?;
        Ok(DhcpRelay {
            socket,
            relay: Relay::new(servers, giaddr),
        })
    }

    /// The relay's own address (giaddr).
    pub fn giaddr(&self) -> Ipv4Addr {
        self.relay.giaddr()
    }

    /// Relays until the task is dropped.
    pub async fn run(mut self) {
        let mut buf = vec![0u8; dhcp::message::MAX_MESSAGE + 1];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("DHCP relay receive: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let SocketAddr::V4(from) = from else { continue };
            let now = Instant::now();
            let source = *from.ip();
            // Answers come from the configured servers; everything else is
            // a client's request.
            let result =
                if from.port() == dhcp::message::SERVER_PORT && self.relay.is_server(source) {
                    self.relay.handle_server(now, source, &buf[..n])
                } else {
                    self.relay.handle_client(now, source, &buf[..n])
                };
            match result {
                Ok(out) => {
                    for (ip, port) in out.to {
                        if let Err(e) = self
                            .socket
                            .send_to(&out.bytes, SocketAddrV4::new(ip, port))
                            .await
                        {
                            tracing::warn!("DHCP relay send to {ip}:{port}: {e}");
                        }
                    }
                    tracing::debug!(%source, "DHCP message relayed");
                }
                Err(e) => tracing::debug!(%source, "DHCP message not relayed: {e}"),
            }
        }
    }
}

fn server_socket() -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    // Client INFORMs are often sent to 255.255.255.255.
    s.set_broadcast(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dhcp::message::SERVER_PORT).into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// The source address the host would use towards `server` (a connected
/// UDP socket sends nothing; it only asks the routing table).
fn local_address_towards(server: Ipv4Addr) -> io::Result<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.connect((server, dhcp::message::SERVER_PORT))?;
    match s.local_addr()?.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => Ok(a),
        other => Err(io::Error::other(format!("local address {other}"))),
    }
}
