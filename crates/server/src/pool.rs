//! Client IPv4 addresses: the [`AddressSource`] trait, and the static pool
//! that implements it.
//!
//! RRAS hands out addresses either from static ranges or from DHCP leases
//! taken in blocks (SYSTEM.md §1). Sessions ask for an address through one
//! trait so that the DHCP source can replace the static pool without the
//! session code changing.
//!
//! The static pool follows RRAS: the server itself takes the first address
//! of the first range (it is the PPP peer address clients see), clients get
//! the following ones in configured order, lowest free first, and a freed
//! address is the first to be handed out again.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Mutex;

use crate::config::{Ipv4Pool, Ipv4Range};
use crate::session_id::SessionId;

/// Why no address could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Every client address is in use.
    #[error("the address pool is exhausted: all {capacity} client addresses are in use")]
    Exhausted { capacity: u64 },
    /// A specific address was asked for that the pool does not hold (or
    /// that is the server's own).
    #[error("{0} is not a client address of the pool")]
    NotInPool(Ipv4Addr),
    /// A specific address was asked for that another session holds.
    #[error("{0} is already in use")]
    InUse(Ipv4Addr),
    /// The source cannot give addresses now (a DHCP server that does not
    /// answer, say).
    #[error("no address source available: {0}")]
    Unavailable(String),
}

/// A boxed future, so that [`AddressSource`] stays usable as a trait object
/// (`Arc<dyn AddressSource>`: the source is chosen by configuration at run
/// time). One allocation per session setup costs nothing that matters.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a static address (a policy's, or RADIUS Framed-IP-Address) lives
/// for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticPlacement {
    /// One of the source's own addresses, now held by the session and
    /// routed with the rest.
    InSource,
    /// Outside what the source hands out (not leased): the session routes
    /// it to the TUN as a /32 itself.
    HostRoute,
}

/// Where session addresses come from: the static pool, or DHCP.
///
/// Allocation is asynchronous because a DHCP source may have to lease a
/// new block first; the static pool answers at once. A static address and
/// a release need no round trip with anyone, so they are synchronous.
pub trait AddressSource: Send + Sync {
    /// The server's own address on the client side (the IPCP local
    /// address), if known yet. A DHCP source learns it from its first lease.
    fn server_address(&self) -> Option<Ipv4Addr>;

    /// An address for `session`. Asking again for the same session returns
    /// the address it already holds.
    fn allocate(&self, session: SessionId) -> BoxFuture<'_, Result<Ipv4Addr, AddressError>>;

    /// Takes the static address `addr` for `session`, or says where it
    /// lives if the source does not own it.
    fn allocate_static(
        &self,
        session: SessionId,
        addr: Ipv4Addr,
    ) -> Result<StaticPlacement, AddressError>;

    /// Gives back the address `session` holds, if any (releasing twice is
    /// harmless).
    fn release(&self, session: SessionId);
}

/// Counts for status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// Client addresses in the pool (the server's own excluded).
    pub capacity: u64,
    /// Addresses held by sessions.
    pub in_use: u64,
}

impl PoolCounts {
    /// Client addresses still free.
    pub fn available(&self) -> u64 {
        self.capacity - self.in_use
    }
}

/// The static IPv4 pool over one or more ranges. Thread-safe; the lock is
/// never held across an await (there are none inside).
#[derive(Debug)]
pub struct StaticPool {
    server: Ipv4Addr,
    state: Mutex<State>,
}

/// Addresses are numbered by their position in hand-out order ("index").
/// Every index below `next_fresh` has been handed out at least once; those
/// free again are in `freed`. The lowest free address is therefore
/// `min(freed)`, or `next_fresh` when nothing was freed: O(log n) without
/// scanning.
#[derive(Debug, Default)]
struct State {
    /// The client addresses, in hand-out order: the configured ranges with
    /// the server's address removed from the front of the first. A reload
    /// only appends (see [`StaticPool::add_ranges`]), so an index never
    /// changes its address.
    ranges: Vec<Ipv4Range>,
    capacity: u64,
    next_fresh: u64,
    freed: BTreeSet<u64>,
    by_session: HashMap<SessionId, u64>,
    by_index: HashMap<u64, SessionId>,
}

impl StaticPool {
    /// A pool over the configured ranges (which the configuration has
    /// checked: non-empty, no overlap, at least two addresses).
    pub fn new(pool: &Ipv4Pool) -> StaticPool {
        let mut ranges = pool.ranges().to_vec();
        let server = ranges[0].start();
        if ranges[0].len() == 1 {
            ranges.remove(0);
        } else {
            let next = Ipv4Addr::from(u32::from(server) + 1);
            ranges[0] = Ipv4Range::new(next, ranges[0].end()).expect("range holds two or more");
        }
        let capacity = ranges.iter().map(Ipv4Range::len).sum();
        StaticPool {
            server,
            state: Mutex::new(State {
                ranges,
                capacity,
                ..State::default()
            }),
        }
    }

    /// Appends `extra` to the client ranges (a reload's pool additions):
    /// new sessions may get their addresses, held ones keep theirs. The
    /// caller has checked that they overlap nothing (the configuration's
    /// own check).
    pub fn add_ranges(&self, extra: &[Ipv4Range]) {
        let mut st = self.lock();
        for r in extra {
            st.ranges.push(*r);
            st.capacity += r.len();
        }
    }

    /// The server's own address: the first of the first range.
    pub fn server(&self) -> Ipv4Addr {
        self.server
    }

    /// The client address ranges, in hand-out order.
    pub fn client_ranges(&self) -> Vec<Ipv4Range> {
        self.lock().ranges.clone()
    }

    /// The lowest free client address, now held by `session`. If `session`
    /// already holds one, that one.
    pub fn allocate_now(&self, session: SessionId) -> Result<Ipv4Addr, AddressError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(&i) = st.by_session.get(&session) {
            return Ok(st.addr_of(i));
        }
        let index = if let Some(i) = st.freed.pop_first() {
            i
        } else if st.next_fresh < st.capacity {
            st.next_fresh += 1;
            st.next_fresh - 1
        } else {
            return Err(AddressError::Exhausted {
                capacity: st.capacity,
            });
        };
        st.by_session.insert(session, index);
        st.by_index.insert(index, session);
        Ok(st.addr_of(index))
    }

    /// A specific address for `session` (a static address from a remote
    /// access policy or from RADIUS Framed-IP-Address). A session that held
    /// another address gives it up.
    pub fn allocate_specific(
        &self,
        session: SessionId,
        addr: Ipv4Addr,
    ) -> Result<Ipv4Addr, AddressError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let index = st.index_of(addr).ok_or(AddressError::NotInPool(addr))?;
        match st.by_index.get(&index) {
            Some(&holder) if holder == session => return Ok(addr),
            Some(_) => return Err(AddressError::InUse(addr)),
            None => {}
        }
        if let Some(old) = st.by_session.remove(&session) {
            st.by_index.remove(&old);
            st.freed.insert(old);
        }
        if index < st.next_fresh {
            st.freed.remove(&index);
        } else {
            // Skip over the fresh addresses below it: they become freed ones.
            for i in st.next_fresh..index {
                st.freed.insert(i);
            }
            st.next_fresh = index + 1;
        }
        st.by_session.insert(session, index);
        st.by_index.insert(index, session);
        Ok(addr)
    }

    /// Frees the address `session` holds; returns it, or `None` if it held
    /// none (releasing twice is harmless).
    pub fn release_now(&self, session: SessionId) -> Option<Ipv4Addr> {
        let mut st = self.lock();
        let index = st.by_session.remove(&session)?;
        st.by_index.remove(&index);
        st.freed.insert(index);
        // Keep `freed` small: trailing freed indices become fresh again.
        let st = &mut *st;
        while st.next_fresh > 0 && st.freed.remove(&(st.next_fresh - 1)) {
            st.next_fresh -= 1;
        }
        Some(st.addr_of(index))
    }

    /// The address `session` holds.
    pub fn address_of(&self, session: SessionId) -> Option<Ipv4Addr> {
        let st = self.lock();
        st.by_session.get(&session).map(|&i| st.addr_of(i))
    }

    /// The session holding `addr` (the data path's reverse lookup is the
    /// router's job; this is for status and tests).
    pub fn holder_of(&self, addr: Ipv4Addr) -> Option<SessionId> {
        let st = self.lock();
        let index = st.index_of(addr)?;
        st.by_index.get(&index).copied()
    }

    /// Capacity and use.
    pub fn counts(&self) -> PoolCounts {
        let st = self.lock();
        PoolCounts {
            capacity: st.capacity,
            in_use: st.by_session.len() as u64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated in
        // a way that matters more than losing the pool: keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn addr_of(&self, mut index: u64) -> Ipv4Addr {
        for r in &self.ranges {
            if index < r.len() {
                return Ipv4Addr::from(u32::from(r.start()) + index as u32);
            }
            index -= r.len();
        }
        unreachable!("index below capacity")
    }

    fn index_of(&self, addr: Ipv4Addr) -> Option<u64> {
        let mut base = 0;
        for r in &self.ranges {
            if r.contains(addr) {
                return Some(base + u64::from(u32::from(addr) - u32::from(r.start())));
            }
            base += r.len();
        }
        None
    }
}

impl AddressSource for StaticPool {
    fn server_address(&self) -> Option<Ipv4Addr> {
        Some(self.server)
    }

    fn allocate(&self, session: SessionId) -> BoxFuture<'_, Result<Ipv4Addr, AddressError>> {
        let r = self.allocate_now(session);
        Box::pin(std::future::ready(r))
    }

    /// RFC 2865 §5.8: the address must be one the server routes, so a
    /// static address must be one of the pool's (and is then held like a
    /// pooled one, never handed to another session).
    fn allocate_static(
        &self,
        session: SessionId,
        addr: Ipv4Addr,
    ) -> Result<StaticPlacement, AddressError> {
        self.allocate_specific(session, addr)
            .map(|_| StaticPlacement::InSource)
    }

    fn release(&self, session: SessionId) {
        self.release_now(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(ranges: &[&str]) -> StaticPool {
        let ranges = ranges.iter().map(|r| r.parse().unwrap()).collect();
        StaticPool::new(&Ipv4Pool::new(ranges).unwrap())
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn sid(n: u64) -> SessionId {
        SessionId::from_raw(n)
    }

    #[test]
    fn added_ranges_serve_new_sessions_and_held_addresses_stay() {
        let p = pool(&["10.0.10.20-10.0.10.22"]);
        assert_eq!(p.allocate_now(sid(1)).unwrap(), ip("10.0.10.21"));
        assert_eq!(p.allocate_now(sid(2)).unwrap(), ip("10.0.10.22"));
        assert!(matches!(
            p.allocate_now(sid(3)),
            Err(AddressError::Exhausted { capacity: 2 })
        ));
        p.add_ranges(&["10.0.20.1-10.0.20.2".parse().unwrap()]);
        assert_eq!(p.counts().capacity, 4);
        assert_eq!(p.allocate_now(sid(3)).unwrap(), ip("10.0.20.1"));
        assert_eq!(p.address_of(sid(1)), Some(ip("10.0.10.21")));
        assert_eq!(p.holder_of(ip("10.0.20.1")), Some(sid(3)));
        assert_eq!(p.release_now(sid(2)), Some(ip("10.0.10.22")));
        assert_eq!(p.allocate_now(sid(4)).unwrap(), ip("10.0.10.22"));
    }

    #[test]
    fn default_pool_is_the_seed_layout() {
        let p = StaticPool::new(&Ipv4Pool::default());
        assert_eq!(p.server(), ip("10.0.10.20"));
        assert_eq!(p.counts().capacity, 9);
        assert_eq!(p.allocate_now(sid(1)).unwrap(), ip("10.0.10.21"));
        assert_eq!(p.allocate_now(sid(2)).unwrap(), ip("10.0.10.22"));
    }

    #[test]
    fn exhaustion_and_reuse_of_the_lowest_freed() {
        let p = pool(&["10.0.0.1-10.0.0.4"]);
        let a: Vec<_> = (1..=3).map(|n| p.allocate_now(sid(n)).unwrap()).collect();
        assert_eq!(a, [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")]);
        assert_eq!(
            p.allocate_now(sid(4)),
            Err(AddressError::Exhausted { capacity: 3 })
        );
        assert_eq!(p.counts().available(), 0);
        // Free the last, then the first: the first comes back first.
        assert_eq!(p.release_now(sid(3)), Some(ip("10.0.0.4")));
        assert_eq!(p.release_now(sid(1)), Some(ip("10.0.0.2")));
        assert_eq!(p.release_now(sid(1)), None);
        assert_eq!(p.counts().in_use, 1);
        assert_eq!(p.allocate_now(sid(5)).unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate_now(sid(6)).unwrap(), ip("10.0.0.4"));
        assert!(p.allocate_now(sid(7)).is_err());
    }

    #[test]
    fn several_ranges_in_configured_order() {
        let p = pool(&[
            "192.168.1.10-192.168.1.11",
            "10.0.0.5",
            "172.16.0.1-172.16.0.2",
        ]);
        assert_eq!(p.server(), ip("192.168.1.10"));
        assert_eq!(p.counts().capacity, 4);
        let got: Vec<_> = (1..=4).map(|n| p.allocate_now(sid(n)).unwrap()).collect();
        assert_eq!(
            got,
            [
                ip("192.168.1.11"),
                ip("10.0.0.5"),
                ip("172.16.0.1"),
                ip("172.16.0.2")
            ]
        );
        assert_eq!(p.holder_of(ip("10.0.0.5")), Some(sid(2)));
        p.release_now(sid(2));
        assert_eq!(p.allocate_now(sid(9)).unwrap(), ip("10.0.0.5"));
    }

    #[test]
    fn single_address_first_range_is_only_the_server() {
        let p = pool(&["10.1.1.1", "10.2.2.2-10.2.2.3"]);
        assert_eq!(p.server(), ip("10.1.1.1"));
        assert_eq!(p.counts().capacity, 2);
        assert_eq!(p.allocate_now(sid(1)).unwrap(), ip("10.2.2.2"));
    }

    #[test]
    fn same_session_gets_the_same_address() {
        let p = pool(&["10.0.0.1-10.0.0.9"]);
        let a = p.allocate_now(sid(1)).unwrap();
        assert_eq!(p.allocate_now(sid(1)).unwrap(), a);
        assert_eq!(p.counts().in_use, 1);
        assert_eq!(p.address_of(sid(1)), Some(a));
    }

    #[test]
    fn specific_addresses() {
        let p = pool(&["10.0.0.1-10.0.0.9"]);
        assert_eq!(
            p.allocate_specific(sid(1), ip("10.0.0.5")).unwrap(),
            ip("10.0.0.5")
        );
        assert_eq!(
            p.allocate_specific(sid(2), ip("10.0.0.5")),
            Err(AddressError::InUse(ip("10.0.0.5")))
        );
        assert_eq!(
            p.allocate_specific(sid(2), ip("10.0.0.1")),
            Err(AddressError::NotInPool(ip("10.0.0.1")))
        );
        assert_eq!(
            p.allocate_specific(sid(2), ip("10.0.1.1")),
            Err(AddressError::NotInPool(ip("10.0.1.1")))
        );
        // The skipped-over addresses are still handed out, lowest first.
        let got: Vec<_> = (10..14).map(|n| p.allocate_now(sid(n)).unwrap()).collect();
        assert_eq!(
            got,
            [
                ip("10.0.0.2"),
                ip("10.0.0.3"),
                ip("10.0.0.4"),
                ip("10.0.0.6")
            ]
        );
        // Moving a session to another address frees its old one.
        assert_eq!(
            p.allocate_specific(sid(10), ip("10.0.0.9")).unwrap(),
            ip("10.0.0.9")
        );
        assert_eq!(p.allocate_now(sid(20)).unwrap(), ip("10.0.0.2"));
        assert_eq!(p.counts().in_use, 6);
    }

    #[test]
    fn large_pool_is_cheap() {
        let p = pool(&["10.0.0.0-10.255.255.255"]);
        assert_eq!(p.counts().capacity, (1 << 24) - 1);
        for n in 0..1000 {
            p.allocate_now(sid(n)).unwrap();
        }
        p.release_now(sid(500));
        assert_eq!(p.allocate_now(sid(5000)).unwrap(), ip("10.0.1.245"));
    }

    #[test]
    fn through_the_trait_object() {
        let p: std::sync::Arc<dyn AddressSource> =
            std::sync::Arc::new(pool(&["10.0.0.1-10.0.0.2"]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(p.server_address(), Some(ip("10.0.0.1")));
            assert_eq!(p.allocate(sid(1)).await.unwrap(), ip("10.0.0.2"));
            assert!(p.allocate(sid(2)).await.is_err());
            p.release(sid(1));
            assert_eq!(p.allocate(sid(2)).await.unwrap(), ip("10.0.0.2"));
        });
    }

    #[test]
    fn concurrent_allocations_are_distinct() {
        let p = std::sync::Arc::new(pool(&["10.0.0.1-10.0.3.255"]));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|n| p.allocate_now(sid(t * 1000 + n)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 800);
    }
}
