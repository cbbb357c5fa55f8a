//! Trusted networks (docs/MOBILE-CLIENT.md, "Trusted networks"): like
//! Windows' trusted network detection, a connection stays down while the
//! way out (the default route's source address, [`super::netwatch`]) lies
//! inside one of its `trusted_networks`, and comes up again (if it is
//! wanted: always-on or connected) once the machine is elsewhere.
//!
//! The connection's task does not see `wanted` itself but a gated copy
//! (`go`), kept by [`run`]: wanted, not retired (unprovisioned), and not on
//! a trusted network, unless the user asked for the connection explicitly
//! on this network (`ras client connect`: Windows connects when asked
//! explicitly too); that permission ends when the network changes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::connection::{event, Connection, Events};
use super::netwatch::Uplink;

/// One trusted network: `(address, prefix)` and its text for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
    pub text: String,
}

/// The networks of a policy's `trusted_networks` (validated when
/// provisioned; one that no longer parses is left out, never trusted).
pub fn networks(list: &[String]) -> Vec<Network> {
    list.iter()
        .filter_map(|t| {
            let (addr, prefix) = client::routes::parse_cidr(t).ok()?;
            Some(Network {
                addr,
                prefix,
                text: format!("{addr}/{prefix}"),
            })
        })
        .collect()
}

/// Whether `addr` lies inside `net`: same family (an IPv4-mapped IPv6
/// address counts as IPv4), and the first `prefix` bits equal.
pub fn contains(net: &Network, addr: IpAddr) -> bool {
    match (net.addr, addr.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            same_prefix(u32::from(n).into(), u32::from(a).into(), 32, net.prefix)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => same_prefix(n.into(), a.into(), 128, net.prefix),
        _ => false,
    }
}

/// The top `prefix` of `bits` bits of `a` and `b` are equal.
fn same_prefix(a: u128, b: u128, bits: u32, prefix: u8) -> bool {
    let prefix = u32::from(prefix).min(bits);
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (b >> shift)
}

/// The first of `nets` the uplink's source address lies in.
pub fn matching(nets: &[Network], uplink: &Uplink) -> Option<String> {
    let source: IpAddr = uplink.source.as_deref()?.parse().ok()?;
    nets.iter()
        .find(|n| contains(n, source))
        .map(|n| n.text.clone())
}

/// What one connection's gate knows; shared with the control socket and
/// the connection's task.
pub struct Gate {
    networks: Mutex<Vec<Network>>,
    /// `trusted_networks` as provisioned (reload.rs compares them).
    listed: Mutex<Vec<String>>,
    /// The trusted network the machine is on now.
    on: Mutex<Option<String>>,
    /// `connect` was asked for on this trusted network.
    explicit: AtomicBool,
    /// Unprovisioned: down for good.
    retired: AtomicBool,
    /// Wakes [`run`] when something above changed.
    kick: watch::Sender<()>,
}

impl Gate {
    pub fn new(trusted_networks: &[String]) -> Gate {
        Gate {
            networks: Mutex::new(networks(trusted_networks)),
            listed: Mutex::new(trusted_networks.to_vec()),
            on: Mutex::new(None),
            explicit: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            kick: watch::Sender::new(()),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The trusted network the machine is on, if any.
    pub fn on(&self) -> Option<String> {
        Self::lock(&self.on).clone()
    }

    /// On a trusted network and not asked for explicitly: held down.
    pub fn holding(&self) -> Option<String> {
        self.on().filter(|_| !self.explicit.load(Ordering::Relaxed))
    }

    /// Why a connection went down, when the gate is the reason: it was
    /// unprovisioned, or it is still `wanted` but held on a trusted network
    /// (not wanted: the user's `disconnect` is the reason).
    pub fn why_down(&self, wanted: bool) -> Option<String> {
        if self.retired.load(Ordering::Relaxed) {
            return Some("unprovisioned".into());
        }
        self.holding()
            .filter(|_| wanted)
            .map(|n| format!("on trusted network {n}"))
    }

    /// `ras client connect`: allowed on this trusted network until the
    /// network changes. Returns the network when it is a trusted one.
    pub fn connect_explicitly(&self) -> Option<String> {
        let on = self.on();
        if on.is_some() {
            self.explicit.store(true, Ordering::Relaxed);
            self.kick.send_replace(());
        }
        on
    }

    /// `ras client disconnect`: the permission ends.
    pub fn disconnect(&self) {
        self.explicit.store(false, Ordering::Relaxed);
    }

    /// A provisioning update changed only the trusted networks.
    pub fn set_networks(&self, trusted_networks: &[String]) {
        *Self::lock(&self.networks) = networks(trusted_networks);
        *Self::lock(&self.listed) = trusted_networks.to_vec();
        self.kick.send_replace(());
    }

    /// The trusted networks in force, as provisioned.
    pub fn listed(&self) -> Vec<String> {
        Self::lock(&self.listed).clone()
    }

    /// Unprovisioned: `go` falls and [`run`] ends.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.kick.send_replace(());
    }
}

/// Keeps `go` (what the connection's task follows) equal to wanted and not
/// held by a trusted network; says when the connection enters or leaves
/// one. Ends, dropping `go` (which ends the task once it is down), when
/// the connection is retired.
pub async fn run(
    conn: Arc<Connection>,
    events: Events,
    mut uplink: watch::Receiver<Uplink>,
    go: watch::Sender<bool>,
) {
    let gate = &conn.trust;
    let mut wanted = conn.wanted.subscribe();
    let mut kick = gate.kick.subscribe();
    let mut last: Option<Uplink> = None;
    loop {
        let now = uplink.borrow_and_update().clone();
        if last.as_ref().is_some_and(|l| *l != now) {
            // A new network: an explicit connect was for the old one.
            gate.explicit.store(false, Ordering::Relaxed);
        }
        let on = matching(&Gate::lock(&gate.networks), &now);
        let before = std::mem::replace(&mut *Gate::lock(&gate.on), on.clone());
        if on.is_none() {
            gate.explicit.store(false, Ordering::Relaxed);
        }
        if before != on {
            match (&before, &on) {
                (_, Some(n)) => events.emit(super::protocol::Event {
                    to: Some(now.describe()),
                    cause: Some(format!("on trusted network {n}")),
                    ..event(&conn, "trusted network")
                }),
                (Some(b), None) => events.emit(super::protocol::Event {
                    to: Some(now.describe()),
                    cause: Some(format!("left trusted network {b}")),
                    ..event(&conn, "untrusted network")
                }),
                (None, None) => {}
            }
        }
        let retired = gate.retired.load(Ordering::Relaxed);
        let open = *wanted.borrow_and_update() && !retired && gate.holding().is_none();
        go.send_if_modified(|g| std::mem::replace(g, open) != open);
        if retired {
            return;
        }
        last = Some(now);
        tokio::select! {
            r = uplink.changed() => if r.is_err() { return },
            r = wanted.changed() => if r.is_err() { return },
            r = kick.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(t: &str) -> Network {
        networks(&[t.to_owned()]).remove(0)
    }

    fn ip(t: &str) -> IpAddr {
        t.parse().unwrap()
    }

    #[test]
    fn ipv4_prefix_edges() {
        let n = net("192.168.50.0/24");
        assert!(contains(&n, ip("192.168.50.0")));
        assert!(contains(&n, ip("192.168.50.255")));
        assert!(!contains(&n, ip("192.168.49.255")));
        assert!(!contains(&n, ip("192.168.51.0")));
        let host = net("10.0.0.7/32");
        assert!(contains(&host, ip("10.0.0.7")));
        assert!(!contains(&host, ip("10.0.0.6")));
        let odd = net("172.16.0.0/12");
        assert!(contains(&odd, ip("172.31.255.255")));
        assert!(!contains(&odd, ip("172.32.0.0")));
        // /0 is every IPv4 address, and no IPv6 one.
        let all = net("0.0.0.0/0");
        assert!(contains(&all, ip("203.0.113.9")));
        assert!(!contains(&all, ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_prefix_edges_and_mapped_addresses() {
        let n = net("2001:db8:50::/48");
        assert!(contains(&n, ip("2001:db8:50::1")));
        assert!(contains(&n, ip("2001:db8:50:ffff:ffff:ffff:ffff:ffff")));
        assert!(!contains(&n, ip("2001:db8:51::")));
        assert!(!contains(&n, ip("192.168.50.1")));
        let host = net("2001:db8::1/128");
        assert!(contains(&host, ip("2001:db8::1")));
        assert!(!contains(&host, ip("2001:db8::2")));
        assert!(contains(&net("::/0"), ip("fe80::1")));
        // An IPv4-mapped source is the IPv4 address.
        assert!(contains(
            &net("192.168.50.0/24"),
            ip("::ffff:192.168.50.20")
        ));
    }

    #[test]
    fn the_uplink_source_decides() {
        let nets = networks(&["192.168.50.0/24".into(), "2001:db8::/32".into()]);
        let up = |s: Option<&str>| Uplink {
            interface: Some("up-a".into()),
            source: s.map(str::to_owned),
        };
        assert_eq!(
            matching(&nets, &up(Some("192.168.50.2"))).as_deref(),
            Some("192.168.50.0/24")
        );
        assert_eq!(
            matching(&nets, &up(Some("2001:db8:1::2"))).as_deref(),
            Some("2001:db8::/32")
        );
        assert_eq!(matching(&nets, &up(Some("192.168.60.2"))), None);
        // No way out, or no address on it: not trusted.
        assert_eq!(matching(&nets, &up(None)), None);
        assert_eq!(matching(&nets, &Uplink::default()), None);
        assert_eq!(matching(&[], &up(Some("192.168.50.2"))), None);
    }

    #[test]
    fn an_explicit_connect_lifts_the_hold_until_disconnect() {
        let gate = Gate::new(&["192.168.50.0/24".into()]);
        assert_eq!(
            gate.connect_explicitly(),
            None,
            "not on it: nothing to lift"
        );
        *Gate::lock(&gate.on) = Some("192.168.50.0/24".into());
        assert_eq!(
            gate.why_down(true).as_deref(),
            Some("on trusted network 192.168.50.0/24")
        );
        assert_eq!(gate.why_down(false), None, "the user's disconnect");
        assert!(gate.connect_explicitly().is_some());
        assert_eq!(gate.holding(), None);
        gate.disconnect();
        assert!(gate.holding().is_some());
        gate.retire();
        assert_eq!(gate.why_down(false).as_deref(), Some("unprovisioned"));
    }
}
