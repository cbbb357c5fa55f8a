//! Plain L2TP over UDP (RFC 2661 §8.1): one socket's datagrams into an
//! [`L2tpFront`], replies sent back with a non-blocking `send_to`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::l2tp_front::L2tpFront;
use crate::l2tp_peer::{L2tpPeer, L2tpReply};

/// Room for one datagram: a full-size PPP frame, the L2TP header and
/// margin; a longer one arrives cut short and fails to decode.
const DATAGRAM: usize = 4096;

/// Reads `socket` into `front` until `shutdown` turns true.
pub async fn serve_udp(
    socket: Arc<UdpSocket>,
    front: L2tpFront,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let reply = reply_to(socket.clone(), from);
                    front.try_deliver(L2tpPeer::Plain(from), buf[..n].to_vec(), reply);
                }
                Err(e) => {
                    // An ICMP error from an earlier send (Linux reports it
                    // on the next call) is not fatal.
                    tracing::debug!("L2TP UDP receive: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

fn reply_to(socket: Arc<UdpSocket>, to: SocketAddr) -> L2tpReply {
    Arc::new(move |datagram: Vec<u8>| {
        // A full socket buffer drops the datagram, as a router would.
        let _ = socket.try_send_to(&datagram, to);
    })
}
