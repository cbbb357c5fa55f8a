//! What waits to be sent to each client: datagrams to its unique names in
//! their own queue, ahead of the group and broadcast datagrams, which sit
//! in one bounded buffer per group name and are multiplexed to every
//! recipient (ras-datagram-processing-q97559: MaxDgBufferedPerGroupName;
//! "unique name datagrams take priority over group name datagrams").
//!
//! The driver pulls a client's next datagram when that client's tunnel can
//! take one, so the buffers fill at the speed of the slow link, as they
//! did on the asynchronous lines the seed describes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::name::NetbiosName;
use crate::name_table::ClientId;

#[derive(Debug, Clone)]
struct Buffered {
    seq: u64,
    payload: Vec<u8>,
    pending: BTreeSet<ClientId>,
}

#[derive(Debug, Clone, Default)]
struct ClientQueue {
    unique: VecDeque<Vec<u8>>,
    group: VecDeque<(NetbiosName, u64)>,
}

/// The buffers.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    groups: BTreeMap<NetbiosName, VecDeque<Buffered>>,
    clients: BTreeMap<ClientId, ClientQueue>,
    next_seq: u64,
}

impl Delivery {
    /// How many datagrams the buffer of `name` holds (each still pending
    /// for at least one client).
    pub fn buffered(&self, name: &NetbiosName) -> usize {
        self.groups.get(name).map_or(0, VecDeque::len)
    }

    /// Buffers a group or broadcast datagram for `recipients` under `name`.
    pub fn push_group(
        &mut self,
        name: &NetbiosName,
        payload: Vec<u8>,
        recipients: BTreeSet<ClientId>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        for c in &recipients {
            self.clients
                .entry(*c)
                .or_default()
                .group
                .push_back((name.clone(), seq));
        }
        self.groups
            .entry(name.clone())
            .or_default()
            .push_back(Buffered {
                seq,
                payload,
                pending: recipients,
            });
    }

    /// Buffers a datagram to `client`'s unique name unless `limit` are
    /// waiting already; returns whether it was buffered.
    pub fn push_unique(&mut self, client: ClientId, payload: Vec<u8>, limit: usize) -> bool {
        let q = self.clients.entry(client).or_default();
        if q.unique.len() >= limit {
            return false;
        }
        q.unique.push_back(payload);
        true
    }

    /// How many datagrams wait for `client`.
    pub fn pending(&self, client: ClientId) -> usize {
        self.clients
            .get(&client)
            .map_or(0, |q| q.unique.len() + q.group.len())
    }

    /// The next datagram for `client`: unique ones first, then group and
    /// broadcast ones in arrival order.
    pub fn pop(&mut self, client: ClientId) -> Option<Vec<u8>> {
        let q = self.clients.get_mut(&client)?;
        if let Some(p) = q.unique.pop_front() {
            return Some(p);
        }
        while let Some((name, seq)) = q.group.pop_front() {
            if let Some(p) = take(&mut self.groups, &name, seq, client) {
                return Some(p);
            }
        }
        None
    }

    /// Forgets `client`: its queue, and its place in every group buffer.
    pub fn remove_client(&mut self, client: ClientId) {
        if let Some(q) = self.clients.remove(&client) {
            for (name, seq) in q.group {
                take(&mut self.groups, &name, seq, client);
            }
        }
    }
}

/// Takes `client`'s copy of datagram `seq` from the buffer of `name`; the
/// datagram leaves the buffer when no client waits for it any more.
fn take(
    groups: &mut BTreeMap<NetbiosName, VecDeque<Buffered>>,
    name: &NetbiosName,
    seq: u64,
    client: ClientId,
) -> Option<Vec<u8>> {
    let buf = groups.get_mut(name)?;
    let i = buf.iter().position(|b| b.seq == seq)?;
    if !buf[i].pending.remove(&client) {
        return None;
    }
    let payload = if buf[i].pending.is_empty() {
        buf.remove(i).map(|b| b.payload)
    } else {
        Some(buf[i].payload.clone())
    };
    if buf.is_empty() {
        groups.remove(name);
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_before_group_and_shared_buffers() {
        let (a, b) = (ClientId(1), ClientId(2));
        let wg = NetbiosName::new("WG", 0x1e).unwrap();
        let mut d = Delivery::default();
        d.push_group(&wg, vec![1], BTreeSet::from([a, b]));
        d.push_group(&wg, vec![2], BTreeSet::from([a]));
        assert!(d.push_unique(a, vec![9], 1));
        assert!(!d.push_unique(a, vec![10], 1));
        assert_eq!(d.buffered(&wg), 2);
        assert_eq!(d.pending(a), 3);
        assert_eq!(d.pop(a), Some(vec![9]));
        assert_eq!(d.pop(a), Some(vec![1]));
        // Still pending for b.
        assert_eq!(d.buffered(&wg), 2);
        assert_eq!(d.pop(a), Some(vec![2]));
        assert_eq!(d.buffered(&wg), 1);
        assert_eq!(d.pop(a), None);
        d.remove_client(b);
        assert_eq!(d.buffered(&wg), 0);
        assert_eq!(d.pop(b), None);
    }
}
