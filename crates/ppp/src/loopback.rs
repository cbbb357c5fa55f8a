//! Two links joined back to back in memory: a server and a client that
//! negotiate with each other with no transport at all. Used by `ras
//! ppp-selftest`, the negotiation benchmark, and anyone who wants to see a
//! whole PPP negotiation without a network.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::auth::Secret;
use crate::link::{DownReason, Link, LinkConfig, LinkEvent, LinkUp, NetworkSettings};

/// The outcome of [`negotiate`].
#[derive(Debug)]
pub struct Negotiated {
    pub server: LinkUp,
    pub client: LinkUp,
    /// Control frames exchanged (both directions).
    pub frames: usize,
    /// Every control frame in order: (sent by the client, frame).
    pub trace: Vec<(bool, Vec<u8>)>,
}

/// Why [`negotiate`] did not bring both links up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopbackError {
    #[error("server link went down: {0}")]
    ServerDown(DownReason),
    #[error("client link went down: {0}")]
    ClientDown(DownReason),
    #[error("negotiation did not finish")]
    Stalled,
}

/// Run a server and a client link against each other until both are up.
/// `password_of` answers the server's credential checks (the local user
/// store); `network` is what the server assigns once a user is
/// authenticated. With `keep_trace` every control frame is recorded.
pub fn negotiate(
    server: LinkConfig,
    client: LinkConfig,
    password_of: impl Fn(&str) -> Option<String>,
    network: NetworkSettings,
    keep_trace: bool,
) -> Result<Negotiated, LoopbackError> {
    let mut now = Instant::now();
    let mut server = Link::new(server);
    let mut client = Link::new(client);
    server.lower_up(now);
    client.lower_up(now);
    let mut frames = 0;
    let mut trace = Vec::new();
    let (mut server_up, mut client_up) = (None, None);
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(mut frame) = client.poll_transmit() {
            moved = true;
            frames += 1;
            if keep_trace {
                trace.push((true, frame.clone()));
            }
            let _ = server.handle_frame(now, &mut frame);
        }
        while let Some(mut frame) = server.poll_transmit() {
            moved = true;
            frames += 1;
            if keep_trace {
                trace.push((false, frame.clone()));
            }
            let _ = client.handle_frame(now, &mut frame);
        }
        while let Some(ev) = server.poll_event() {
            moved = true;
            match ev {
                LinkEvent::AuthRequest(request) => match password_of(&request.username) {
                    Some(pw) => server.provide_secret(now, Secret::Password(Zeroizing::new(pw))),
                    None => server.reject_auth(
                        now,
                        crate::auth::Rejection::AuthenticationFailure,
                        "unknown user",
                    ),
                },
                LinkEvent::Authenticated { .. } => server.start_network(now, network.clone()),
                LinkEvent::Up(up) => server_up = Some(up),
                LinkEvent::Down(why) => return Err(LoopbackError::ServerDown(why)),
                _ => {}
            }
        }
        while let Some(ev) = client.poll_event() {
            moved = true;
            match ev {
                LinkEvent::Up(up) => client_up = Some(up),
                LinkEvent::Down(why) => return Err(LoopbackError::ClientDown(why)),
                _ => {}
            }
        }
        if server_up.is_some() && client_up.is_some() {
            break;
        }
        if !moved {
            // Nothing in flight: let the earliest timer fire.
            let next = [server.poll_timeout(), client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => {
                    now = now.max(t);
                    server.handle_timeout(now);
                    client.handle_timeout(now);
                }
                None => now += Duration::from_millis(1),
            }
        }
    }
    match (server_up, client_up) {
        (Some(server), Some(client)) => Ok(Negotiated {
            server,
            client,
            frames,
            trace,
        }),
        _ => Err(LoopbackError::Stalled),
    }
}
