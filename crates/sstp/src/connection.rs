//! Either role's connection behind one type, as rustls' `enum Connection`
//! does: a driver that serves both roles (the tunnel's session loop) holds
//! a [`Connection`] and needs no trait or macro of its own. Both roles
//! share the connection core; only the events and the crypto binding
//! differ, so only those dispatch on the role.

use std::time::Instant;

use crate::binding::HigherLayerKeys;
use crate::client::ClientConnection;
use crate::conn::{CloseReason, Core, Event, SendError, StateError};
use crate::server::ServerConnection;

/// An SSTP connection of either role.
#[derive(Debug)]
pub enum Connection {
    /// The server's side (after the HTTP request was accepted).
    Server(ServerConnection),
    /// The client's side (after the HTTP response arrived).
    Client(ClientConnection),
}

impl From<ServerConnection> for Connection {
    fn from(c: ServerConnection) -> Connection {
        Connection::Server(c)
    }
}

impl From<ClientConnection> for Connection {
    fn from(c: ClientConnection) -> Connection {
        Connection::Client(c)
    }
}

impl Connection {
    fn core(&self) -> &Core {
        match self {
            Connection::Server(c) => &c.core,
            Connection::Client(c) => &c.core,
        }
    }

    fn core_mut(&mut self) -> &mut Core {
        match self {
            Connection::Server(c) => &mut c.core,
            Connection::Client(c) => &mut c.core,
        }
    }

    // ---- getters ----

    /// Whether the connection has finished.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Why the connection is closing, while the teardown is in progress.
    pub fn closing_reason(&self) -> Option<&CloseReason> {
        self.core().closing_reason()
    }

    /// Whether network-layer PPP frames may flow.
    pub fn network_layer_open(&self) -> bool {
        self.core().network_open
    }

    /// Bytes waiting in the transmit buffer.
    pub fn pending_transmit(&self) -> usize {
        self.core().pending_transmit()
    }

    /// The earliest instant at which [`Connection::handle_timeout`] must
    /// be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core().poll_timeout()
    }

    // ---- inputs ----

    /// Feed bytes from the TLS stream; returns how many were accepted
    /// (drain [`Connection::poll_event`] and offer the rest again).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.core_mut().handle_input(now, data)
    }

    /// Drive timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core_mut().handle_timeout(now)
    }

    // ---- commands ----

    /// Queue a PPP frame as a data packet (network-layer frames only once
    /// the binding allows them: MS-SSTP §3.2.7, §3.3.7).
    pub fn send_ppp(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.core_mut().send_ppp(frame)
    }

    /// PPP authentication completed: the crypto binding's keys (MS-SSTP
    /// §3.2.7.1 for the client, §3.3.7 for the server).
    pub fn set_higher_layer_keys(&mut self, keys: &HigherLayerKeys) -> Result<(), StateError> {
        match self {
            Connection::Server(c) => c.set_higher_layer_keys(keys),
            Connection::Client(c) => c.set_higher_layer_keys(keys),
        }
    }

    /// Disconnect gracefully (MS-SSTP §3.1.2.2): sends Call Disconnect.
    pub fn close(&mut self) -> Result<(), StateError> {
        self.core_mut().disconnect()
    }

    /// Release buffer memory not in use; call when the connection is idle.
    pub fn shrink_buffers(&mut self) {
        self.core_mut().shrink()
    }

    // ---- outputs ----

    /// The next event; call until `None` after every input.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        match self {
            Connection::Server(c) => c.poll_event(),
            Connection::Client(c) => c.poll_event(),
        }
    }

    /// Move all queued outgoing bytes into `out`; returns the byte count.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        self.core_mut().poll_transmit(out)
    }
}
