//! The LNS's shortcut for data messages: (peer, our Tunnel ID, our
//! Session ID) → the established session's queue, so that a data message
//! goes from the transport straight to its session instead of through the
//! dispatcher task and the tunnel task (two task hops per packet).
//!
//! The tunnel task decides what may take the shortcut: it adds a route
//! when a call is established and its [`RouteGuard`] removes it when the
//! tunnel lets go of the session, so the shortcut delivers exactly what
//! the tunnel would have (RFC 2661 §3.1: the Tunnel and Session IDs are
//! ours; a tunnel only takes datagrams from the peer that opened it).
//! Anything else — control messages, data for a session that is not
//! established — takes the dispatcher's path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::l2tp_peer::L2tpPeer;

/// Whose data messages a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    pub peer: L2tpPeer,
    pub tunnel_id: u16,
    pub session_id: u16,
}

/// What [`DataRoutes::try_send`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortcut {
    /// Queued for its session.
    Queued,
    /// Its session's queue is full: dropped.
    QueueFull,
    /// No established session of that peer has these IDs (the datagram
    /// was not built).
    NoRoute,
    /// The session has ended (its tunnel has not dropped the route yet):
    /// dropped, as the tunnel would have.
    SessionGone,
}

/// The routes, shared by the front (readers) and the tunnels (writers).
#[derive(Default)]
pub(crate) struct DataRoutes {
    routes: Mutex<HashMap<RouteKey, mpsc::Sender<Vec<u8>>>>,
}

impl DataRoutes {
    fn lock(&self) -> MutexGuard<'_, HashMap<RouteKey, mpsc::Sender<Vec<u8>>>> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes `key`'s data messages to `queue` until the guard is dropped.
    pub(crate) fn add(self: &Arc<Self>, key: RouteKey, queue: mpsc::Sender<Vec<u8>>) -> RouteGuard {
        self.lock().insert(key, queue);
        RouteGuard {
            routes: self.clone(),
            key,
        }
    }

    /// Queues the datagram `make` builds (only called when there is a
    /// route, so a datagram for the slow path is not copied twice).
    pub(crate) fn try_send(&self, key: &RouteKey, make: impl FnOnce() -> Vec<u8>) -> Shortcut {
        let routes = self.lock();
        let Some(queue) = routes.get(key) else {
            return Shortcut::NoRoute;
        };
        match queue.try_send(make()) {
            Ok(()) => Shortcut::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Shortcut::QueueFull,
            Err(mpsc::error::TrySendError::Closed(_)) => Shortcut::SessionGone,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Removes its route when dropped (the tunnel dropped the session).
pub(crate) struct RouteGuard {
    routes: Arc<DataRoutes>,
    key: RouteKey,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, tunnel_id: u16, session_id: u16) -> RouteKey {
        RouteKey {
            peer: L2tpPeer::Plain(([192, 0, 2, 1], port).into()),
            tunnel_id,
            session_id,
        }
    }

    #[tokio::test]
    async fn only_the_exact_peer_and_ids_take_the_shortcut() {
        let routes = Arc::new(DataRoutes::default());
        let (tx, mut rx) = mpsc::channel(1);
        let guard = routes.add(key(1701, 7, 9), tx);
        assert_eq!(
            routes.try_send(&key(1701, 7, 9), || b"a".to_vec()),
            Shortcut::Queued
        );
        assert_eq!(rx.recv().await.unwrap(), b"a".to_vec());
        // Another peer (port), tunnel or session: not this route, and
        // nothing is built for it.
        for other in [key(1702, 7, 9), key(1701, 8, 9), key(1701, 7, 10)] {
            assert_eq!(
                routes.try_send(&other, || unreachable!("built for no route")),
                Shortcut::NoRoute
            );
        }
        // A full queue drops.
        assert_eq!(
            routes.try_send(&key(1701, 7, 9), Vec::new),
            Shortcut::Queued
        );
        assert_eq!(
            routes.try_send(&key(1701, 7, 9), Vec::new),
            Shortcut::QueueFull
        );
        // The tunnel let go of the session: the route is gone.
        drop(guard);
        assert_eq!(routes.len(), 0);
        assert_eq!(
            routes.try_send(&key(1701, 7, 9), Vec::new),
            Shortcut::NoRoute
        );
    }

    #[tokio::test]
    async fn a_closed_session_queue_drops() {
        let routes = Arc::new(DataRoutes::default());
        let (tx, rx) = mpsc::channel(1);
        let _guard = routes.add(key(1701, 1, 1), tx);
        drop(rx);
        assert_eq!(
            routes.try_send(&key(1701, 1, 1), Vec::new),
            Shortcut::SessionGone
        );
    }
}
