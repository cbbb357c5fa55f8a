//! Provisioning while the daemon runs: `ras client provision` and
//! `unprovision` send `reload` over the control socket, and the daemon
//! reads its store again (it trusts only the root-only store, never a
//! document sent over the socket). New connections start (always-on ones
//! connect), removed ones go down and go away, changed ones start again
//! with the new policy, except when only their trusted networks changed,
//! which the running connection takes as they are.

use std::collections::BTreeMap;
use std::time::Duration;

use client::vpn_policy::ConnectionPolicy;

use super::connection::event;
use super::daemon::Daemon;
use super::protocol::{Event, Reply};

/// How long a removed connection gets to go down (its goodbye has 5 s).
const RETIRE_WAIT: Duration = Duration::from_secs(8);

/// What a reload does to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add(ConnectionPolicy),
    Remove(String),
    /// Something that matters changed: down, and up again as it is now.
    Replace(ConnectionPolicy),
    /// Only the trusted networks changed: kept running.
    Trust(ConnectionPolicy),
}

/// The changes from the running connections (`old`) to the stored ones.
pub fn plan(old: &BTreeMap<String, ConnectionPolicy>, new: &[ConnectionPolicy]) -> Vec<Change> {
    let mut changes: Vec<Change> = old
        .keys()
        .filter(|name| !new.iter().any(|p| &p.name == *name))
        .map(|name| Change::Remove(name.clone()))
        .collect();
    for p in new {
        match old.get(&p.name) {
            None => changes.push(Change::Add(p.clone())),
            Some(o) if o == p => {}
            Some(o) => {
                let mut same = o.clone();
                same.trusted_networks = p.trusted_networks.clone();
                changes.push(if same == *p {
                    Change::Trust(p.clone())
                } else {
                    Change::Replace(p.clone())
                });
            }
        }
    }
    changes
}

/// Reads the store again and applies the difference; the reply says what
/// changed.
pub async fn reload(daemon: &Daemon) -> Reply {
    let _one_at_a_time = daemon.reloading.lock().await;
    let store = daemon.store.clone();
    let policies = match tokio::task::spawn_blocking(move || store.load()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return refused(format!("reading the provisioning store: {e:#}")),
        Err(e) => return refused(format!("reading the provisioning store: {e}")),
    };
    let old: BTreeMap<String, ConnectionPolicy> = daemon
        .lock()
        .iter()
        .map(|(n, r)| {
            // Trusted networks changed in place are in the gate.
            let mut policy = r.conn.policy.clone();
            policy.trusted_networks = r.conn.trust.listed();
            (n.clone(), policy)
        })
        .collect();
    let mut said = Vec::new();
    for change in plan(&old, &policies) {
        match change {
            Change::Remove(name) => {
                retire(daemon, &name).await;
                daemon.events.emit(Event {
                    connection: name.clone(),
                    event: "unprovisioned".into(),
                    time: super::connection::now(),
                    ..Event::default()
                });
                said.push(format!("{name} removed"));
            }
            Change::Add(policy) => {
                let name = policy.name.clone();
                start(daemon, policy, None);
                said.push(format!("{name} added"));
            }
            Change::Replace(policy) => {
                let name = policy.name.clone();
                retire(daemon, &name).await;
                start(daemon, policy, Some("changed: started again"));
                said.push(format!("{name} changed (started again)"));
            }
            Change::Trust(policy) => {
                if let Some(conn) = daemon.get(&policy.name) {
                    conn.trust.set_networks(&policy.trusted_networks);
                    daemon.events.emit(Event {
                        cause: Some("trusted networks changed".into()),
                        ..event(&conn, "provisioned")
                    });
                }
                said.push(format!("{} changed (trusted networks)", policy.name));
            }
        }
    }
    Reply {
        ok: true,
        message: Some(if said.is_empty() {
            "the daemon's connections are as provisioned".into()
        } else {
            format!("the daemon took the change: {}", said.join("; "))
        }),
        ..Reply::default()
    }
}

fn refused(error: String) -> Reply {
    Reply {
        error: Some(error),
        ..Reply::default()
    }
}

fn start(daemon: &Daemon, policy: ConnectionPolicy, cause: Option<&str>) {
    // Said before its tasks start, so that it comes before what they say
    // (`trusted network`, `connecting`).
    daemon.events.emit(Event {
        time: super::connection::now(),
        connection: policy.name.clone(),
        event: "provisioned".into(),
        cause: cause.map(str::to_owned),
        ..Event::default()
    });
    let running = daemon.start(policy);
    daemon
        .lock()
        .insert(running.conn.policy.name.clone(), running);
}

/// Takes `name` out of the daemon: it goes down (`disconnected`,
/// cause `unprovisioned`) and its task ends.
async fn retire(daemon: &Daemon, name: &str) {
    let Some(running) = daemon.lock().remove(name) else {
        return;
    };
    running.conn.trust.retire();
    running.conn.wanted.send_replace(false);
    let mut task = running.task;
    if tokio::time::timeout(RETIRE_WAIT, &mut task).await.is_err() {
        tracing::warn!("{name}: did not go down in time; stopped");
        task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn doc(text: &str) -> Vec<ConnectionPolicy> {
        client::vpn_policy::parse(text, Path::new("p.toml"))
            .unwrap()
            .connections
    }

    fn conn(name: &str, server: &str, trusted: &str) -> String {
        format!(
            "[[connection]]\nname = \"{name}\"\nservers = [\"{server}\"]\nprotocols = [\"pptp\"]\ntrusted_networks = [{trusted}]\n[connection.auth]\nuser = \"u\"\npassword = \"pw\"\n"
        )
    }

    #[test]
    fn only_what_changed_is_touched() {
        let before = doc(&format!(
            "{}{}{}",
            conn("a", "h1", ""),
            conn("b", "h2", ""),
            conn("c", "h3", "")
        ));
        let old: BTreeMap<_, _> = before.iter().map(|p| (p.name.clone(), p.clone())).collect();
        assert!(plan(&old, &before).is_empty());
        let after = doc(&format!(
            "{}{}{}",
            conn("a", "h1", "\"10.0.0.0/8\""),
            conn("b", "h9", ""),
            conn("d", "h4", "")
        ));
        let changes = plan(&old, &after);
        assert_eq!(
            changes,
            vec![
                Change::Remove("c".into()),
                Change::Trust(after[0].clone()),
                Change::Replace(after[1].clone()),
                Change::Add(after[2].clone()),
            ]
        );
    }
}
