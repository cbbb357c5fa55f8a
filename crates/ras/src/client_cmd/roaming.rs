//! What one connection does when the network changes (docs/MOBILE-CLIENT.md,
//! "Network changes"). An IKEv2 tunnel that agreed MOBIKE moves its SA to
//! the new address (RFC 4555 §3.5) and keeps its virtual address: the
//! tunnel task is nudged to look at once, and its answer becomes an
//! `sa moved` event. Anything else (SSTP, L2TP, PPTP, IKEv2 without
//! MOBIKE, or a change while still connecting) is restarted at once, with
//! the change as the cause.

use std::net::IpAddr;

use client::target::{Protocol, Target};
use tokio::sync::broadcast;
use tunnel::ikev2_client_moves::{self, AddressMove};

use super::connection::{event, Connection, Events};
use super::netwatch::NetworkChange;

/// How long a move is held for the network change that explains it (the
/// watcher's debounce and a look at the routing table).
const HOLD: std::time::Duration = std::time::Duration::from_millis(1500);

/// Resolves with the cause when the session must start again; runs until
/// then (or until dropped with the session).
pub async fn follow(
    conn: &Connection,
    events: &Events,
    protocol: Protocol,
    target: &Target,
    mut changes: broadcast::Receiver<NetworkChange>,
) -> String {
    // Subscribed before any nudge, so no answer is missed.
    let mut moves = ikev2_client_moves::subscribe();
    let mut pending: Option<NetworkChange> = None;
    // A move the tunnel's own periodic check made before the watcher's
    // debounced change arrived: said after the change, or on its own
    // once [`HOLD`] passed.
    let mut held: Option<(super::protocol::Event, tokio::time::Instant)> = None;
    loop {
        let hold_until = held.as_ref().map(|(_, t)| *t);
        tokio::select! {
            _ = async {
                match hold_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((e, _)) = held.take() {
                    events.emit(e);
                }
            }
            change = changes.recv() => {
                let change = match change {
                    Ok(c) => c,
                    // Fell behind: something changed all the same.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        return std::future::pending::<String>().await;
                    }
                };
                if let Some((e, _)) = held.take() {
                    events.emit(e);
                    continue;
                }
                if protocol != Protocol::Ikev2 || !conn.is_connected() {
                    return change.cause();
                }
                // The tunnel task answers with Moved or CannotMove, or
                // not at all when its address towards the server did
                // not change (another interface came and went).
                pending = Some(change);
                ikev2_client_moves::check_addresses_now();
            }
            m = moves.recv() => {
                let Ok(m) = m else { continue };
                match m {
                    AddressMove::Moved { server, old, new, took } if ours(target, server.ip()) => {
                        let moved = super::protocol::Event {
                            protocol: Some(protocol.scheme().to_owned()),
                            from: Some(old.to_string()),
                            to: Some(new.to_string()),
                            took_ms: Some(took.as_millis() as u64),
                            ..event(conn, "sa moved")
                        };
                        if pending.take().is_some() {
                            events.emit(moved);
                        } else {
                            held = Some((moved, tokio::time::Instant::now() + HOLD));
                        }
                    }
                    AddressMove::CannotMove { server, old, new } if ours(target, server.ip()) => {
                        return match pending.take() {
                            Some(c) => format!("{} (the server did not agree to MOBIKE)", c.cause()),
                            None => format!(
                                "network changed: local address moved from {old} to {new} (the server did not agree to MOBIKE)"
                            ),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Whether a move report is about this connection's server: by address
/// when the policy names one; a host name is taken to match (one IKEv2
/// connection per server is the usual case).
fn ours(target: &Target, server: IpAddr) -> bool {
    match target.host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => ip == server,
        Err(_) => true,
    }
}
