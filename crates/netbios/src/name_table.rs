//! The names remote clients hold, with the MaxNames limits
//! (ras-datagram-processing-q97559, "Remote RAS Workstation Posts
//! NCB_Add_Name / NCB_Add_Group_Name").
//!
//! One entry per name the server holds on the LAN for its clients: a
//! unique name has one holder, a group name any number ("the RAS server
//! checks to see if the group name registered locally already … flags the
//! name as registered"). An entry waits in [`NameState::Registering`]
//! until the LAN has accepted it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::name::NetbiosName;

/// A remote client, numbered by the driver (one per session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

/// Unique or group (RFC 1001 §5.2: a unique name has one owner on the
/// network, a group name any number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A unique name.
    Unique,
    /// A group name.
    Group,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unique => "unique",
            Self::Group => "group",
        })
    }
}

/// Where a name stands on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// Asked of the LAN, no answer yet.
    Registering,
    /// Accepted by the LAN: queries are answered, datagrams delivered.
    Registered,
}

/// One name and its holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// Unique or group.
    pub kind: NameKind,
    /// Registering or registered.
    pub state: NameState,
    /// The clients that hold it (exactly one for a unique name).
    pub holders: BTreeSet<ClientId>,
}

/// What adding a name did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The client held it already (a refresh or a repeated request).
    AlreadyHeld(NameState),
    /// The client joined a group name other clients hold.
    Joined(NameState),
    /// A new name: it must be registered on the LAN.
    New,
}

/// Why adding a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another client holds it, as a unique name or with the other kind.
    InUse,
    /// The client holds the per-client maximum already.
    ClientLimit(usize),
    /// The server holds the total maximum already.
    TotalLimit(usize),
}

/// The table.
#[derive(Debug, Clone)]
pub struct NameTable {
    entries: BTreeMap<NetbiosName, NameEntry>,
    per_client: BTreeMap<ClientId, BTreeSet<NetbiosName>>,
    max_per_client: usize,
    max_total: usize,
}

impl NameTable {
    /// An empty table with the two MaxNames limits.
    pub fn new(max_per_client: usize, max_total: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            per_client: BTreeMap::new(),
            max_per_client,
            max_total,
        }
    }

    /// The entry of a name.
    pub fn get(&self, name: &NetbiosName) -> Option<&NameEntry> {
        self.entries.get(name)
    }

    /// How many distinct names the server holds for clients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no client holds a name.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names a client holds.
    pub fn names_of(&self, client: ClientId) -> impl Iterator<Item = &NetbiosName> {
        self.per_client.get(&client).into_iter().flatten()
    }

    fn count_of(&self, client: ClientId) -> usize {
        self.per_client.get(&client).map_or(0, BTreeSet::len)
    }

    /// Adds `name` of `kind` for `client`, within the limits.
    pub fn add(
        &mut self,
        client: ClientId,
        name: &NetbiosName,
        kind: NameKind,
    ) -> Result<Added, Refusal> {
        if let Some(entry) = self.entries.get(name) {
            if entry.holders.contains(&client) && entry.kind == kind {
                return Ok(Added::AlreadyHeld(entry.state));
            }
            // Seed: a group add fails where another system has the name
            // as unique; a unique name has one owner (RFC 1001 §5.2).
            if entry.kind == NameKind::Unique || kind == NameKind::Unique {
                return Err(Refusal::InUse);
            }
            if self.count_of(client) >= self.max_per_client {
                return Err(Refusal::ClientLimit(self.max_per_client));
            }
            let state = entry.state;
            if let Some(e) = self.entries.get_mut(name) {
                e.holders.insert(client);
            }
            self.per_client
                .entry(client)
                .or_default()
                .insert(name.clone());
            return Ok(Added::Joined(state));
        }
        if self.count_of(client) >= self.max_per_client {
            return Err(Refusal::ClientLimit(self.max_per_client));
        }
        if self.entries.len() >= self.max_total {
            return Err(Refusal::TotalLimit(self.max_total));
        }
        self.entries.insert(
            name.clone(),
            NameEntry {
                kind,
                state: NameState::Registering,
                holders: BTreeSet::from([client]),
            },
        );
        self.per_client
            .entry(client)
            .or_default()
            .insert(name.clone());
        Ok(Added::New)
    }

    /// Removes `client` from `name`. `None` if it did not hold it; else
    /// whether it was the last holder (the name leaves the LAN) and the kind.
    pub fn remove(&mut self, client: ClientId, name: &NetbiosName) -> Option<(NameKind, bool)> {
        let entry = self.entries.get_mut(name)?;
        if !entry.holders.remove(&client) {
            return None;
        }
        let kind = entry.kind;
        let last = entry.holders.is_empty();
        if last {
            self.entries.remove(name);
        }
        if let Some(set) = self.per_client.get_mut(&client) {
            set.remove(name);
            if set.is_empty() {
                self.per_client.remove(&client);
            }
        }
        Some((kind, last))
    }

    /// Removes every name of `client`; returns each with its kind and
    /// whether it was the last holder.
    pub fn remove_client(&mut self, client: ClientId) -> Vec<(NetbiosName, NameKind, bool)> {
        let names: Vec<NetbiosName> = self.names_of(client).cloned().collect();
        names
            .into_iter()
            .filter_map(|n| self.remove(client, &n).map(|(k, last)| (n, k, last)))
            .collect()
    }

    /// The LAN accepted the name.
    pub fn accept(&mut self, name: &NetbiosName) -> Option<&NameEntry> {
        let entry = self.entries.get_mut(name)?;
        entry.state = NameState::Registered;
        Some(entry)
    }

    /// The LAN refused the name: it goes, from every holder ("the group is
    /// not added on the server or the client workstation").
    pub fn refuse(&mut self, name: &NetbiosName) -> Option<NameEntry> {
        let entry = self.entries.remove(name)?;
        for c in &entry.holders {
            if let Some(set) = self.per_client.get_mut(c) {
                set.remove(name);
                if set.is_empty() {
                    self.per_client.remove(c);
                }
            }
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NetbiosName {
        NetbiosName::new(s, 0).unwrap()
    }

    #[test]
    fn unique_group_and_limits() {
        let (a, b) = (ClientId(1), ClientId(2));
        let mut t = NameTable::new(2, 3);
        assert_eq!(t.add(a, &n("PC1"), NameKind::Unique), Ok(Added::New));
        assert_eq!(
            t.add(a, &n("PC1"), NameKind::Unique),
            Ok(Added::AlreadyHeld(NameState::Registering))
        );
        assert_eq!(t.add(b, &n("PC1"), NameKind::Unique), Err(Refusal::InUse));
        assert_eq!(t.add(b, &n("PC1"), NameKind::Group), Err(Refusal::InUse));
        assert_eq!(t.add(a, &n("WG"), NameKind::Group), Ok(Added::New));
        t.accept(&n("WG"));
        assert_eq!(
            t.add(b, &n("WG"), NameKind::Group),
            Ok(Added::Joined(NameState::Registered))
        );
        assert_eq!(t.add(b, &n("WG"), NameKind::Unique), Err(Refusal::InUse));
        assert_eq!(
            t.add(a, &n("X"), NameKind::Unique),
            Err(Refusal::ClientLimit(2))
        );
        assert_eq!(t.add(b, &n("PC2"), NameKind::Unique), Ok(Added::New));
        assert_eq!(
            t.add(b, &n("PC3"), NameKind::Unique),
            Err(Refusal::ClientLimit(2))
        );
        assert_eq!(t.len(), 3);
        let c = ClientId(3);
        assert_eq!(
            t.add(c, &n("PC4"), NameKind::Unique),
            Err(Refusal::TotalLimit(3))
        );
        // Group membership counts against the per-client limit only.
        assert_eq!(
            t.add(c, &n("WG"), NameKind::Group),
            Ok(Added::Joined(NameState::Registered))
        );
        assert_eq!(t.remove(a, &n("WG")), Some((NameKind::Group, false)));
        assert_eq!(t.remove(a, &n("WG")), None);
        let mut gone = t.remove_client(b);
        gone.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            gone,
            vec![
                (n("PC2"), NameKind::Unique, true),
                (n("WG"), NameKind::Group, false)
            ]
        );
        assert_eq!(t.remove(c, &n("WG")), Some((NameKind::Group, true)));
        let refused = t.refuse(&n("PC1")).unwrap();
        assert_eq!(refused.holders, BTreeSet::from([a]));
        assert!(t.is_empty());
        assert_eq!(t.names_of(a).count(), 0);
    }
}
