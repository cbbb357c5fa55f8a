//! Listening sockets.
//!
//! The default SSTP listeners are `0.0.0.0:443` and `[::]:443`. On Linux an
//! IPv6 wildcard socket also accepts IPv4 (as mapped addresses) unless
//! `IPV6_V6ONLY` is set, and then binding the IPv4 wildcard on the same
//! port fails with "address in use". So every IPv6 listener here is
//! IPv6-only, which also keeps peer addresses in their plain form (no
//! `::ffff:a.b.c.d`) for logs and RADIUS Calling-Station-Id.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ListenError {
    /// The address.
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// A TCP listener on `addr`: `SO_REUSEADDR` (restart without waiting for
/// TIME_WAIT), `IPV6_V6ONLY` for IPv6, non-blocking, backlog 1024. Needs a
/// Tokio runtime.
pub fn bind_tcp(addr: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    let at = |source| ListenError { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(at)?;
    socket.set_reuse_address(true).map_err(at)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(at)?;
    }
    socket.set_nonblocking(true).map_err(at)?;
    socket.bind(&addr.into()).map_err(at)?;
    socket.listen(1024).map_err(at)?;
    tokio::net::TcpListener::from_std(socket.into()).map_err(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_ipv6_wildcards_share_a_port() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let v4 = bind_tcp("0.0.0.0:0".parse().unwrap()).unwrap();
            let port = v4.local_addr().unwrap().port();
            match bind_tcp(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port))) {
                Ok(v6) => assert_eq!(v6.local_addr().unwrap().port(), port),
                Err(e)
                    if e.source.kind() == io::ErrorKind::AddrNotAvailable
                        || e.source.raw_os_error() == Some(97) =>
                {
                    eprintln!("no IPv6 here, half skipped: {e}");
                }
                Err(e) => panic!("{e}"),
            }
            // And the IPv4 listener accepts.
            let c = tokio::net::TcpStream::connect(("127.0.0.1", port));
            let (a, c) = tokio::join!(v4.accept(), c);
            a.unwrap();
            c.unwrap();
            // A second bind of the same address fails with a clear error.
            let e = bind_tcp(SocketAddr::from(([0, 0, 0, 0], port))).unwrap_err();
            assert!(e.to_string().contains(&port.to_string()));
        });
    }
}
