//! The admission gate in front of the SSTP TLS handshake (issue 18,
//! handshake flood).
//!
//! A TLS handshake costs the server a task, a descriptor, buffers and
//! (for the key exchange and the signature) most of a millisecond of CPU.
//! A flood of connects far above what the server can complete, slow
//! clients (a byte per second) and half-open connections (nothing sent)
//! would otherwise each hold those until the handshake deadline, without
//! bound. The gate bounds them two ways:
//!
//! - at most [`GLOBAL_LIMIT`] handshakes in progress at once, counted
//!   from the ClientHello on (waiting for it costs little; the key
//!   exchange and the signature after it are the cost): an excess
//!   connection waits up to [`WAIT`] for a free place, then is closed
//!   (reason `handshakes_busy`);
//! - at most [`PER_SOURCE_LIMIT`] of them (waiting or in progress) from
//!   one source address, refused at once beyond that (reason
//!   `per_source`), so one flooding host cannot take every place and the
//!   clients of other hosts are still admitted.
//!
//! Refusals are counted per reason (`ras_sstp_connections_refused_total`)
//! and told in one summary line per interval, never a line per connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Handshakes in progress at once. On a small machine a few dozen keep
/// every core busy; more only add latency to each, so the rest wait.
pub const GLOBAL_LIMIT: usize = 128;

/// Handshakes waiting or in progress from one source address. A NAT with
/// many real clients reconnecting at once after an outage still passes a
/// few at a time (each takes milliseconds); a flooding host gets no more.
pub const PER_SOURCE_LIMIT: u32 = 16;

/// How long an excess connection may wait for a place.
pub const WAIT: Duration = Duration::from_secs(2);

/// Why a connection was closed before its TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// All [`GLOBAL_LIMIT`] places stayed taken for [`WAIT`].
    HandshakesBusy,
    /// Its source address already had [`PER_SOURCE_LIMIT`] connections in
    /// the handshake stage.
    PerSource,
}

impl Refusal {
    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::HandshakesBusy => "handshakes_busy",
            Refusal::PerSource => "per_source",
        }
    }
}

/// The gate, shared by every SSTP listener.
pub struct HandshakeGate {
    places: Arc<Semaphore>,
    global: usize,
    per_source_limit: u32,
    wait: Duration,
    /// Connections in the handshake stage per source address; an address
    /// leaves the map when its last one does, so the map holds at most
    /// one entry per connection in the stage (bounded by the places and
    /// the waiting ones).
    sources: Mutex<HashMap<IpAddr, u32>>,
    /// Refusals since the last summary: busy, per source.
    unsummarised: [AtomicU64; 2],
}

/// A connection counted against its source address, not yet holding a
/// place; its count is given back when dropped.
pub struct Entry {
    gate: Arc<HandshakeGate>,
    source: IpAddr,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.gate.leave(self.source);
    }
}

/// A place in the handshake stage; given back when dropped.
pub struct Pass {
    _entry: Entry,
    _place: OwnedSemaphorePermit,
}

impl HandshakeGate {
    /// The gate with the defaults above.
    pub fn new() -> Arc<HandshakeGate> {
        HandshakeGate::with_limits(GLOBAL_LIMIT, PER_SOURCE_LIMIT, WAIT)
    }

    /// The gate with other limits (tests).
    pub fn with_limits(global: usize, per_source: u32, wait: Duration) -> Arc<HandshakeGate> {
        Arc::new(HandshakeGate {
            places: Arc::new(Semaphore::new(global.max(1))),
            global: global.max(1),
            per_source_limit: per_source.max(1),
            wait,
            sources: Mutex::new(HashMap::new()),
            unsummarised: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Counts a connection from `source`, or refuses it when that address
    /// is at its cap. Synchronous and cheap, so the accept loop can close
    /// a flooding host's connections before anything else is spent on
    /// them (no task, no socket option).
    pub fn enter(self: &Arc<Self>, source: IpAddr) -> Result<Entry, Refusal> {
        let mut sources = self.lock();
        let count = sources.entry(source).or_insert(0);
        if *count >= self.per_source_limit {
            drop(sources);
            return Err(self.refused(Refusal::PerSource));
        }
        *count += 1;
        Ok(Entry {
            gate: self.clone(),
            source,
        })
    }

    /// A place for a counted connection, waiting up to the wait for one.
    pub async fn admit(self: &Arc<Self>, entry: Entry) -> Result<Pass, Refusal> {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => Some(place),
            Err(_) => tokio::time::timeout(self.wait, self.places.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        match place {
            Some(place) => Ok(Pass {
                _entry: entry,
                _place: place,
            }),
            None => Err(self.refused(Refusal::HandshakesBusy)),
        }
    }

    /// Handshakes in progress now.
    pub fn in_progress(&self) -> usize {
        self.global - self.places.available_permits()
    }

    /// Source addresses with a connection in the handshake stage.
    pub fn sources(&self) -> usize {
        self.lock().len()
    }

    /// The summary line of the refusals since the last one, if any.
    pub fn summary(&self) -> Option<String> {
        let busy = self.unsummarised[0].swap(0, Ordering::Relaxed);
        let per_source = self.unsummarised[1].swap(0, Ordering::Relaxed);
        if busy == 0 && per_source == 0 {
            return None;
        }
        Some(format!(
            "SSTP connections closed before the TLS handshake: {busy} with all handshake places taken for {} s, {per_source} over {} per source address",
            self.wait.as_secs_f32(),
            self.per_source_limit
        ))
    }

    fn refused(&self, why: Refusal) -> Refusal {
        let i = match why {
            Refusal::HandshakesBusy => 0,
            Refusal::PerSource => 1,
        };
        self.unsummarised[i].fetch_add(1, Ordering::Relaxed);
        why
    }

    fn leave(&self, source: IpAddr) {
        let mut sources = self.lock();
        if let Some(count) = sources.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                sources.remove(&source);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    async fn admit(gate: &Arc<HandshakeGate>, source: IpAddr) -> Result<Pass, Refusal> {
        gate.admit(gate.enter(source)?).await
    }

    #[tokio::test(start_paused = true)]
    async fn one_source_is_capped_and_others_still_pass() {
        let gate = HandshakeGate::with_limits(64, 3, Duration::from_secs(2));
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(admit(&gate, ip(1)).await.unwrap());
        }
        assert_eq!(admit(&gate, ip(1)).await.err(), Some(Refusal::PerSource));
        assert_eq!(admit(&gate, ip(1)).await.err(), Some(Refusal::PerSource));
        // Another host is not held back by the first one's flood.
        let other = admit(&gate, ip(2)).await.unwrap();
        assert_eq!(gate.in_progress(), 4);
        // A place given back is a place for the capped source again.
        held.pop();
        held.push(admit(&gate, ip(1)).await.unwrap());
        drop(other);
        drop(held);
        assert_eq!(gate.in_progress(), 0);
        assert_eq!(
            gate.sources(),
            0,
            "addresses leave the map with their last connection"
        );
        let line = gate.summary().unwrap();
        assert!(line.contains("0 with all handshake places taken"), "{line}");
        assert!(line.contains("2 over 3 per source"), "{line}");
        assert_eq!(
            gate.summary(),
            None,
            "a summary covers what came since the last"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn excess_connections_wait_then_are_refused() {
        let gate = HandshakeGate::with_limits(2, 10, Duration::from_secs(2));
        let a = admit(&gate, ip(1)).await.unwrap();
        let _b = admit(&gate, ip(2)).await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            admit(&gate, ip(3)).await.err(),
            Some(Refusal::HandshakesBusy)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // The refused one left no trace in the per-source count.
        assert_eq!(gate.sources(), 2);
        // A waiter gets the place given back within the wait.
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { admit(&gate, ip(3)).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert!(gate
            .summary()
            .unwrap()
            .contains("1 with all handshake places taken"));
    }
}
