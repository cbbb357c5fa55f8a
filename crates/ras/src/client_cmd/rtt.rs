//! Round-trip time of a connection: an ICMP echo to its VPN server every
//! [`INTERVAL`] while the link is up, outside the tunnel (the path the
//! tunnel's own packets take, which lockdown lets through). A server that
//! does not answer echoes leaves the RTT unknown (`-`, `rtt_ms` null).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use client::echo_probe::{echo_request, is_echo_reply};
use socket2::{Domain, Protocol, Socket, Type};

use super::connection::Connection;

/// How often the RTT is measured.
pub const INTERVAL: Duration = Duration::from_secs(15);
/// How long a reply may take before the probe counts as lost.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Measures while the link is up; never returns (the caller drops it
/// when the attempt ends).
pub async fn follow(conn: &Connection, host: &str, port: u16) {
    let mut seq: u16 = 0;
    loop {
        if conn.is_connected() {
            let server = tokio::net::lookup_host((host, port))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip());
            if let Some(server) = server {
                seq = seq.wrapping_add(1);
                let measured = tokio::task::spawn_blocking(move || probe(server, seq))
                    .await
                    .ok()
                    .and_then(|r| r.ok());
                // Milliseconds to two places: a LAN answers in a tenth of one.
                conn.set_rtt(measured.map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0));
            }
            tokio::time::sleep(INTERVAL).await;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One echo: the time to its reply.
fn probe(server: IpAddr, seq: u16) -> std::io::Result<Duration> {
    let v6 = server.is_ipv6();
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    // A raw socket: the daemon runs as root; it sees every ICMP packet the
    // host receives and keeps only the reply with our id and sequence.
    let socket = Socket::new(domain, Type::RAW, Some(protocol))?;
    // Connected: the kernel hands this socket only packets from the server.
    socket.connect(&SocketAddr::new(server, 0).into())?;
    let id = (std::process::id() & 0xffff) as u16;
    let request = echo_request(v6, id, seq);
    let started = Instant::now();
    socket.send(&request)?;
    let mut buf = [0u8; 1500];
    loop {
        let left = TIMEOUT.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        socket.set_read_timeout(Some(left))?;
        let n = (&socket).read(&mut buf)?;
        if is_echo_reply(v6, &buf[..n], id, seq) {
            return Ok(started.elapsed());
        }
    }
}
