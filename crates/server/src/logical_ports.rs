//! The logical ports of a listener (RRAS's "ports": the most sessions of
//! one tunnel type at once), shared so that clients who have not logged in
//! cannot keep real users out (issue 18, handshake flood).
//!
//! A connection takes a port once its TLS handshake is done and holds it
//! until it ends. Until its user is authenticated the port is only lent:
//! when every port is taken and another connection needs one, the
//! connection that has waited longest without logging in gives its port up
//! and is closed. Connections from many addresses that finish TLS and the
//! SSTP request and then sit there (an MS-SSTP server waits up to 60 s for
//! the Call Connect Request, §3.2.2.1; slow clients drip their HTTP
//! request for the 10 s request deadline) thus cost a real client nothing:
//! a real client logs in within milliseconds and is then no longer
//! evictable. Only when every port belongs to a logged-in session is a new
//! connection refused ("all ports in use").
//!
//! The newest unauthenticated connection is the last to go, so a client is
//! evicted only when more connections than there are ports arrive while it
//! is still logging in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Where a held port stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not logged in yet: the port may be taken away.
    Lent,
    /// The user is authenticated: the port is the session's.
    Owned,
    /// Taken away for a newer connection; the holder must close.
    Evicted,
}

struct Holder {
    stage: Stage,
    evicted: Arc<Notify>,
}

struct Table {
    /// Ports counted as taken (evicted holders no longer count).
    taken: u32,
    next_id: u64,
    /// Every holder not yet dropped, by age (ids only grow).
    holders: BTreeMap<u64, Holder>,
}

/// The ports of one listener.
pub struct LogicalPorts {
    limit: u32,
    table: Mutex<Table>,
    freed: Notify,
}

/// A port could not be had: every one belongs to a logged-in session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllOwned;

/// One held port; given back when dropped.
pub struct Port {
    ports: Arc<LogicalPorts>,
    id: u64,
    evicted: Arc<Notify>,
    /// Whether taking this port closed an older unauthenticated connection.
    pub evicted_another: bool,
}

impl LogicalPorts {
    /// `limit` ports.
    pub fn new(limit: u32) -> Arc<LogicalPorts> {
        Arc::new(LogicalPorts {
            limit,
            table: Mutex::new(Table {
                taken: 0,
                next_id: 0,
                holders: BTreeMap::new(),
            }),
            freed: Notify::new(),
        })
    }

    /// How many ports there are.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Ports taken now (lent and owned).
    pub fn taken(&self) -> u32 {
        self.lock().taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock leaves the table consistent
        // (every change is one statement), so a poisoned lock is usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A port for a new connection: a free one, or the one lent longest
    /// to a connection that has not logged in (which is told to close).
    pub fn take(self: &Arc<Self>) -> Result<Port, AllOwned> {
        let mut table = self.lock();
        let mut evicted_another = false;
        if table.taken >= self.limit {
            let oldest_lent = table
                .holders
                .iter_mut()
                .find(|(_, h)| h.stage == Stage::Lent)
                .ok_or(AllOwned)?
                .1;
            oldest_lent.stage = Stage::Evicted;
            // notify_one keeps a permit if the holder is not waiting yet.
            oldest_lent.evicted.notify_one();
            table.taken -= 1;
            evicted_another = true;
        }
        table.taken += 1;
        let id = table.next_id;
        table.next_id += 1;
        let evicted = Arc::new(Notify::new());
        table.holders.insert(
            id,
            Holder {
                stage: Stage::Lent,
                evicted: evicted.clone(),
            },
        );
        Ok(Port {
            ports: self.clone(),
            id,
            evicted,
            evicted_another,
        })
    }

    /// Wait until every port is free (every session ended), at most
    /// `limit`. Evicted holders still closing do not count.
    pub async fn drain(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            loop {
                let freed = self.freed.notified();
                if self.lock().taken == 0 {
                    return;
                }
                freed.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Port {
    /// The user logged in: the port is the session's from now on. `false`
    /// when it was already taken away (the connection must end).
    pub fn own(&self) -> bool {
        let mut table = self.ports.lock();
        match table.holders.get_mut(&self.id) {
            Some(h) if h.stage == Stage::Lent => {
                h.stage = Stage::Owned;
                true
            }
            Some(h) => h.stage == Stage::Owned,
            None => false,
        }
    }

    /// How many ports its listener has.
    pub fn limit(&self) -> u32 {
        self.ports.limit
    }

    /// Whether the port was taken away.
    pub fn is_evicted(&self) -> bool {
        self.ports
            .lock()
            .holders
            .get(&self.id)
            .is_some_and(|h| h.stage == Stage::Evicted)
    }

    /// Resolves when the port is taken away for a newer connection.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let mut table = self.ports.lock();
        if let Some(h) = table.holders.remove(&self.id) {
            if h.stage != Stage::Evicted {
                table.taken -= 1;
            }
        }
        drop(table);
        self.ports.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_taken_first_and_given_back_on_drop() {
        let ports = LogicalPorts::new(2);
        let a = ports.take().unwrap();
        let b = ports.take().unwrap();
        assert!(!a.evicted_another && !b.evicted_another);
        assert_eq!(ports.taken(), 2);
        drop(a);
        assert_eq!(ports.taken(), 1);
        let c = ports.take().unwrap();
        assert!(!c.evicted_another);
        assert!(!b.is_evicted());
    }

    #[test]
    fn the_oldest_connection_not_logged_in_gives_its_port_up() {
        let ports = LogicalPorts::new(3);
        let owned = ports.take().unwrap();
        assert!(owned.own());
        let old = ports.take().unwrap();
        let young = ports.take().unwrap();
        let newcomer = ports.take().unwrap();
        assert!(newcomer.evicted_another);
        assert!(old.is_evicted(), "the oldest lent port goes");
        assert!(!young.is_evicted() && !owned.is_evicted());
        assert!(!old.own(), "an evicted connection cannot log in after all");
        assert_eq!(ports.taken(), 3);
        // The evicted holder closing does not free a second port.
        drop(old);
        assert_eq!(ports.taken(), 3);
        drop(young);
        assert_eq!(ports.taken(), 2);
    }

    #[test]
    fn logged_in_sessions_are_never_evicted() {
        let ports = LogicalPorts::new(2);
        let a = ports.take().unwrap();
        let b = ports.take().unwrap();
        assert!(a.own() && b.own());
        assert!(matches!(ports.take(), Err(AllOwned)));
        assert!(!a.is_evicted() && !b.is_evicted());
        assert!(a.own(), "owning twice is harmless");
    }

    #[tokio::test]
    async fn an_evicted_holder_is_woken_even_if_it_was_not_waiting_yet() {
        let ports = LogicalPorts::new(1);
        let old = ports.take().unwrap();
        let _new = ports.take().unwrap();
        tokio::time::timeout(Duration::from_secs(1), old.evicted())
            .await
            .expect("woken");
    }

    #[tokio::test]
    async fn drain_waits_for_the_last_port() {
        let ports = LogicalPorts::new(2);
        let a = ports.take().unwrap();
        assert!(!ports.drain(Duration::from_millis(20)).await);
        let waiter = {
            let ports = ports.clone();
            tokio::spawn(async move { ports.drain(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiter.await.unwrap());
    }
}
