//! What carries the LAC's L2TP datagrams to the server: a plain UDP
//! socket (RFC 2661 §8.1, port 1701, PPP in the clear) or the L2TP/IPsec
//! pipe of [`IpsecL2tpClient`] (RFC 3193, ESP transport mode). The LAC
//! driver does not care which.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use crate::l2tp_ipsec_client::IpsecL2tpClient;

/// Room for one datagram: a full-size PPP frame, the L2TP header and
/// margin; a longer one arrives cut short and fails to decode.
const DATAGRAM: usize = 4096;

/// The datagram pipe to the server's L2TP.
pub enum L2tpTransport {
    /// Plain UDP. Not connected: §8.1 lets the LNS answer from another
    /// port than 1701, and we then send to that port.
    Udp {
        socket: UdpSocket,
        server: SocketAddr,
        buf: Vec<u8>,
    },
    /// Inside IPsec.
    Ipsec(IpsecL2tpClient),
}

impl L2tpTransport {
    /// A UDP socket on an ephemeral port for `server` (its port 1701).
    pub async fn udp(server: SocketAddr) -> io::Result<L2tpTransport> {
        let any: IpAddr = if server.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
        Ok(L2tpTransport::Udp {
            socket,
            server,
            buf: vec![0u8; DATAGRAM],
        })
    }

    /// Words for the log: what protects the tunnel.
    pub fn describe(&self) -> String {
        match self {
            L2tpTransport::Udp { .. } => "plain UDP, not encrypted".to_string(),
            L2tpTransport::Ipsec(c) => {
                let c = c.connected();
                format!("IPsec ESP {}, {}", c.esp_suite, c.nat)
            }
        }
    }

    /// Sends one datagram; false when it was dropped (a full socket
    /// buffer or queue, as a router would drop it; L2TP retransmits its
    /// control messages and PPP copes with lost frames).
    pub fn send(&self, datagram: Vec<u8>) -> bool {
        match self {
            L2tpTransport::Udp { socket, server, .. } => {
                socket.try_send_to(&datagram, *server).is_ok()
            }
            L2tpTransport::Ipsec(c) => c.send(datagram),
        }
    }

    /// The next datagram from the server; `Err` with the reason once the
    /// transport has ended. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Vec<u8>, String> {
        match self {
            L2tpTransport::Udp {
                socket,
                server,
                buf,
            } => loop {
                match socket.recv_from(buf).await {
                    Ok((n, from)) => {
                        if from.ip() != server.ip() {
                            tracing::debug!("L2TP: dropped a datagram from {from}, not the server");
                            continue;
                        }
                        if from.port() != server.port() {
                            // §8.1: the LNS may answer from a port of its
                            // choosing; the rest of the tunnel uses it.
                            tracing::debug!("L2TP: the server answers from port {}", from.port());
                            server.set_port(from.port());
                        }
                        return Ok(buf[..n].to_vec());
                    }
                    // ICMP errors of earlier sends surface here; the
                    // control channel's retransmission decides.
                    Err(e) => {
                        tracing::debug!("L2TP UDP receive: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            },
            L2tpTransport::Ipsec(c) => match c.recv().await {
                Some(d) => Ok(d),
                None => Err(format!(
                    "IPsec ended: {}",
                    c.end_reason()
                        .unwrap_or_else(|| "no reason given".to_string())
                )),
            },
        }
    }

    /// The next datagram from the server if one is waiting now (the
    /// session takes a burst before flushing the TUN writes): `None` when
    /// none is, or the transport has ended (`recv` then says why).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        match self {
            // One datagram per wake-up over plain UDP (no IPsec, no
            // throughput goal).
            L2tpTransport::Udp { .. } => None,
            L2tpTransport::Ipsec(c) => c.try_recv(),
        }
    }

    /// Ends the transport (IPsec: the Deletes go to the server).
    pub async fn close(self) {
        if let L2tpTransport::Ipsec(c) = self {
            c.close().await;
        }
    }
}
