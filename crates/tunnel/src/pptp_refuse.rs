//! Over the port limit: a PPTP control connection gets an answer, not
//! silence, so the client reports "no free port" instead of a timeout.

use std::time::{Duration, Instant};

use pptp::{Event, Pac, PacConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pptp_call_setup::write_control;
use crate::pptp_server::PptpServerConfig;

/// Over the port limit: answer the control connection, refuse the call
/// with General Error / No-Resource (RFC 2637 §2.8), and close.
pub async fn refuse(mut tcp: TcpStream, config: &PptpServerConfig) {
    let pac_config = PacConfig {
        max_calls: 0,
        ..config.pac.clone()
    };
    let mut pac = Pac::new(pac_config, Instant::now());
    let mut rbuf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(msg) = pac.poll_transmit() {
            if write_control(&mut tcp, &msg).await.is_err() {
                return;
            }
        }
        let mut refused = false;
        while let Some(event) = pac.poll_event() {
            if matches!(event, Event::CallRefused { .. }) {
                refused = true;
            }
        }
        if refused || pac.is_closed() {
            break;
        }
        tokio::select! {
            r = tcp.read(&mut rbuf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => pac.handle_input(Instant::now(), &rbuf[..n]),
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // Give the client a moment to read the reply and hang up itself.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = tcp.read(&mut rbuf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let _ = tcp.shutdown().await;
}
