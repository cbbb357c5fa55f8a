//! NAT-timeout detection in the daemon (docs/MOBILE-CLIENT.md,
//! "NAT-timeout detection"). The IKEv2 tunnels of this process measure how
//! long the NAT in front of them keeps a UDP mapping, with our server's
//! probe extension (`ipsec::ikev2::nat_probe`), and set their keepalive
//! below it. Here: the result becomes a `nat timeout measured` event and
//! part of `status`, and is remembered per network in
//! `DIR/network/nat-timeouts.json` (0600, root only) so the next tunnel on
//! that network uses it at once instead of measuring again.
//!
//! A network is named by its local prefix, default gateway and the
//! gateway's link-layer address (network_id.rs), so that two networks
//! handing out the same addresses are told apart and a new lease on the
//! same network keeps the value; a wrong value shows as a keepalive too
//! long; a measurement starts again after every MOBIKE move. Keys of
//! older versions (a bare address) stay in the file and are not matched.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipsec::ikev2::nat_probe::{NatProbeSettings, NatTimeoutStatus};
use tokio::sync::broadcast;
use tunnel::ikev2_client_nat::{self, NatProbePlan, NatReport};

use super::connection::{event, Connection, Events};
use super::network_id::network_key;
use super::store::Store;

/// At most this many networks are remembered (the oldest entry goes).
const MAX_NETWORKS: usize = 256;

/// Local address → the network key its tunnel looked up.
type Keys = Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, String>>>;

/// The remembered timeouts: network key → seconds.
#[derive(Clone)]
pub struct NatMemory {
    path: PathBuf,
}

impl NatMemory {
    pub fn new(store: &Store) -> NatMemory {
        NatMemory {
            path: store.dir.join("network").join("nat-timeouts.json"),
        }
    }

    /// What is stored; a missing file is empty, a bad one is ignored with
    /// a log line.
    pub fn read(&self) -> BTreeMap<String, u64> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return BTreeMap::new();
        };
        match serde_json::from_slice::<BTreeMap<String, u64>>(&bytes) {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(
                    "ignoring {}: not a map of networks to seconds ({e})",
                    self.path.display()
                );
                BTreeMap::new()
            }
        }
    }

    pub fn get(&self, network: &str) -> Option<Duration> {
        self.read().get(network).map(|s| Duration::from_secs(*s))
    }

    pub fn remember(&self, network: &str, timeout: Duration) -> anyhow::Result<()> {
        let mut map = self.read();
        map.insert(network.to_owned(), timeout.as_secs());
        while map.len() > MAX_NETWORKS {
            let Some(first) = map.keys().find(|k| *k != network).cloned() else {
                break;
            };
            map.remove(&first);
        }
        let text = serde_json::to_vec(&map)?;
        super::store::write_private(&self.path, &text)
    }
}

/// What status shows for a measurement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NatView {
    pub nat_timeout_s: Option<u64>,
    pub keepalive_s: Option<u64>,
    /// The measurement in words ("measuring", "not measured: server does
    /// not offer it", …).
    pub nat_probe: Option<String>,
}

impl NatView {
    fn of(report: &NatReport) -> NatView {
        let nat_timeout_s = match report.status {
            NatTimeoutStatus::Measured { timeout, .. } => Some(timeout.as_secs()),
            _ => None,
        };
        NatView {
            nat_timeout_s,
            keepalive_s: Some(report.keepalive.as_secs()),
            nat_probe: Some(report.status.to_string()),
        }
    }
}

/// Enables measuring for this process's IKEv2 tunnels and follows their
/// reports for the daemon's lifetime; `connections` says which
/// connections there are at the time of a report.
pub fn start<F>(store: &Store, connections: F, events: Events)
where
    F: Fn() -> Vec<Arc<Connection>> + Send + 'static,
{
    let memory = NatMemory::new(store);
    let lookup = memory.clone();
    // The key each tunnel's lookup used, by local address: its report is
    // then said at once (before the link's `connected`) under the same key.
    let keys: Keys = Arc::default();
    let looked_up = keys.clone();
    ikev2_client_nat::enable(NatProbePlan {
        settings: NatProbeSettings::default(),
        // Called as a tunnel starts: `ip` runs a few milliseconds.
        remembered: Arc::new(move |local| {
            let key = network_key(local);
            let found = lookup.get(&key);
            let mut keys = looked_up.lock().unwrap_or_else(|e| e.into_inner());
            if keys.len() >= MAX_NETWORKS {
                keys.clear();
            }
            keys.insert(local, key);
            found
        }),
    });
    let mut reports = ikev2_client_nat::subscribe();
    tokio::spawn(async move {
        loop {
            let report = match reports.recv().await {
                Ok(r) => r,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // Shown at once: finding the network's key below may run `ip`
            // (milliseconds), and the connection's `connected` must not
            // come before its status says what the NAT probe is doing.
            for conn in connections()
                .iter()
                .filter(|c| c.serves(report.server.ip()))
            {
                conn.set_nat(NatView::of(&report));
            }
            let local = report.local;
            let known = keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&local)
                .cloned();
            // A key without the gateway's MAC (the router was not in the
            // neighbour table yet when the tunnel started) is looked up
            // again: what is stored should tell networks apart.
            let network = match known.filter(|k| k.contains(" at ")) {
                Some(key) => key,
                None => tokio::task::spawn_blocking(move || network_key(local))
                    .await
                    .unwrap_or_else(|_| local.to_string()),
            };
            follow(&memory, &connections(), &events, &report, &network);
        }
    });
}

fn follow(
    memory: &NatMemory,
    connections: &[Arc<Connection>],
    events: &Events,
    r: &NatReport,
    network: &str,
) {
    for conn in connections.iter().filter(|c| c.serves(r.server.ip())) {
        conn.set_nat(NatView::of(r));
        if let NatTimeoutStatus::Measured {
            timeout,
            keepalive,
            remembered,
        } = r.status
        {
            if !remembered {
                if let Err(e) = memory.remember(network, timeout) {
                    tracing::warn!("cannot remember the NAT timeout: {e:#}");
                }
            }
            events.emit(super::protocol::Event {
                protocol: Some("ikev2".into()),
                network: Some(network.to_owned()),
                nat_timeout_s: Some(timeout.as_secs()),
                keepalive_s: Some(keepalive.as_secs()),
                cause: remembered.then(|| "remembered for this network".to_string()),
                ..event(conn, "nat timeout measured")
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn remembers_per_network_privately_and_ignores_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("ras-nat-memory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::new(dir.clone());
        let memory = NatMemory::new(&store);
        assert_eq!(memory.get("10.1.0.2"), None);
        memory
            .remember("10.1.0.2", Duration::from_secs(18))
            .unwrap();
        memory
            .remember("10.2.0.2", Duration::from_secs(115))
            .unwrap();
        assert_eq!(memory.get("10.1.0.2"), Some(Duration::from_secs(18)));
        assert_eq!(memory.get("10.2.0.2"), Some(Duration::from_secs(115)));
        assert_eq!(memory.get("10.3.0.2"), None);
        let path = dir.join("network").join("nat-timeouts.json");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        std::fs::write(&path, b"{\"10.1.0.2\": \"eighteen\"").unwrap();
        assert_eq!(memory.get("10.1.0.2"), None);
        // Writing again replaces the bad file.
        memory
            .remember("10.1.0.2", Duration::from_secs(19))
            .unwrap();
        assert_eq!(memory.get("10.1.0.2"), Some(Duration::from_secs(19)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_view_says_what_happened() {
        let report = |status| NatReport {
            server: "192.0.2.1:500".parse().unwrap(),
            local: "10.1.0.2".parse().unwrap(),
            status,
            keepalive: Duration::from_secs(20),
        };
        let v = NatView::of(&report(NatTimeoutStatus::Unsupported));
        assert_eq!(v.nat_timeout_s, None);
        assert_eq!(v.keepalive_s, Some(20));
        assert_eq!(
            v.nat_probe.as_deref(),
            Some("not measured: server does not offer it")
        );
        let v = NatView::of(&report(NatTimeoutStatus::Measured {
            timeout: Duration::from_secs(18),
            keepalive: Duration::from_secs(15),
            remembered: false,
        }));
        assert_eq!(v.nat_timeout_s, Some(18));
    }
}
