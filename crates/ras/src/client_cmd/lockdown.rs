//! Lockdown: while a connection with `lockdown = true` is wanted, nothing
//! leaves the machine outside its tunnel except to its VPN servers,
//! over loopback, DHCP on the uplink and IPv6 neighbour discovery.
//!
//! One nftables table, `inet ras_lockdown`, holds the rules of every
//! wanted lockdown connection together: two tables each with a dropping
//! base chain would each drop the other's server (a packet must pass every
//! base chain on the hook). The table is replaced as a whole, in one `nft`
//! transaction, whenever the set of wanted lockdown connections changes,
//! and deleted when the last one is no longer wanted. The daemon touches
//! no other table.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::process::{Command, Stdio};

use tokio::sync::Mutex;

use super::connection::{event, Connection, Events};
use super::protocol::Event;

/// The table's family and name (`nft list table inet ras_lockdown`).
pub const TABLE: &str = "inet ras_lockdown";

/// What one wanted lockdown connection lets out.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Its TUN device: everything through it is allowed.
    interface: String,
    /// Its servers' addresses, resolved when it became wanted.
    servers: Vec<IpAddr>,
}

/// Every wanted lockdown connection, and whether the table is in place.
#[derive(Default)]
pub struct Lockdown {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    /// True once this daemon created the table: it removes only that.
    installed: bool,
}

impl Lockdown {
    /// `name` is wanted: its servers (`HOST`, `HOST:PORT`, `[V6]:PORT`)
    /// are resolved now, while DNS is still reachable, and the table is
    /// rebuilt. A server that does not resolve is left out: lockdown fails
    /// closed. Returns the servers that could not be resolved.
    pub async fn enable(
        &self,
        name: &str,
        interface: &str,
        servers: &[String],
    ) -> Result<Vec<String>, String> {
        let hosts = servers.to_vec();
        let (addresses, unresolved) = tokio::task::spawn_blocking(move || resolve(&hosts))
            .await
            .map_err(|e| format!("resolving the servers: {e}"))?;
        let mut state = self.state.lock().await;
        state.entries.insert(
            name.to_owned(),
            Entry {
                interface: interface.to_owned(),
                servers: addresses,
            },
        );
        let text = ruleset(&state.entries);
        // Marked before applying: a table half-made by a failed run is ours
        // to remove.
        state.installed = true;
        apply(text).await?;
        Ok(unresolved)
    }

    /// `name` is no longer wanted: the table without it, or no table.
    pub async fn disable(&self, name: &str) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state.entries.remove(name).is_none() {
            return Ok(());
        }
        if state.entries.is_empty() {
            return remove(&mut state).await;
        }
        apply(ruleset(&state.entries)).await
    }

    /// The daemon stops: the table goes, whatever is still in it.
    pub async fn clear(&self) -> Result<(), String> {
        let mut state = self.state.lock().await;
        state.entries.clear();
        remove(&mut state).await
    }
}

async fn remove(state: &mut State) -> Result<(), String> {
    if !state.installed {
        return Ok(());
    }
    state.installed = false;
    // Created first so that the delete never fails on a missing table.
    apply(format!("table {TABLE}\ndelete table {TABLE}\n")).await
}

/// The connection became wanted: lockdown on, if its policy says so,
/// before its first packet, and said in the events.
pub async fn engage(conn: &Connection, lockdown: &Lockdown, events: &Events) {
    if !conn.policy.lockdown {
        return;
    }
    let name = &conn.policy.name;
    let cause = match lockdown
        .enable(name, &conn.policy.interface_name(), &conn.policy.servers)
        .await
    {
        Ok(unresolved) if unresolved.is_empty() => format!(
            "on: outside the tunnel only to {}",
            conn.policy.servers.join(", ")
        ),
        Ok(unresolved) => format!(
            "on: {} did not resolve and stays blocked",
            unresolved.join(", ")
        ),
        Err(e) => {
            tracing::warn!("{name}: lockdown: {e}");
            format!("failed: {e}")
        }
    };
    events.emit(Event {
        cause: Some(cause),
        ..event(conn, "lockdown")
    });
}

/// The connection is no longer wanted: its rules go (the table with the
/// last of them).
pub async fn release(conn: &Connection, lockdown: &Lockdown, events: &Events) {
    if !conn.policy.lockdown {
        return;
    }
    let cause = match lockdown.disable(&conn.policy.name).await {
        Ok(()) => "off".to_owned(),
        Err(e) => {
            tracing::warn!("{}: lockdown: {e}", conn.policy.name);
            format!("not removed: {e}")
        }
    };
    events.emit(Event {
        cause: Some(cause),
        ..event(conn, "lockdown")
    });
}

/// Each server's addresses; the ones that did not resolve.
fn resolve(servers: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut addresses = Vec::new();
    let mut unresolved = Vec::new();
    for server in servers {
        let host = host_of(server);
        if let Ok(ip) = host.parse::<IpAddr>() {
            addresses.push(ip);
            continue;
        }
        match (host, 0u16).to_socket_addrs() {
            Ok(found) => addresses.extend(found.map(|a| a.ip())),
            Err(_) => unresolved.push(server.clone()),
        }
    }
    addresses.sort();
    addresses.dedup();
    (addresses, unresolved)
}

/// The host of `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn host_of(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => server,
    }
}

/// The whole table, replacing any earlier one in the same transaction
/// (`table` first so that `delete` finds one to delete).
fn ruleset(entries: &BTreeMap<String, Entry>) -> String {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut interfaces = Vec::new();
    for entry in entries.values() {
        interfaces.push(format!("\"{}\"", entry.interface));
        for ip in &entry.servers {
            match ip {
                IpAddr::V4(a) => v4.push(a.to_string()),
                IpAddr::V6(a) => v6.push(a.to_string()),
            }
        }
    }
    interfaces.sort();
    interfaces.dedup();
    let mut rules = vec![
        "oif \"lo\" accept".to_owned(),
        // DHCP on the uplink, so that the machine keeps its address
        // (RFC 2131 section 4.1: client port 68 to server port 67).
        "udp sport 68 udp dport 67 accept".to_owned(),
        // DHCPv6 (RFC 8415 section 7.2) and neighbour discovery, without
        // which no IPv6 packet reaches even the server (RFC 4861).
        "udp sport 546 udp dport 547 accept".to_owned(),
        "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept"
            .to_owned(),
    ];
    if !interfaces.is_empty() {
        rules.push(format!("oifname {{ {} }} accept", interfaces.join(", ")));
    }
    if !v4.is_empty() {
        rules.push(format!("ip daddr {{ {} }} accept", v4.join(", ")));
    }
    if !v6.is_empty() {
        rules.push(format!("ip6 daddr {{ {} }} accept", v6.join(", ")));
    }
    let mut text = format!(
        "table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n\tchain output {{\n\t\ttype filter hook output priority 0; policy drop;\n"
    );
    for rule in rules {
        text.push_str("\t\t");
        text.push_str(&rule);
        text.push('\n');
    }
    text.push_str("\t}\n}\n");
    text
}

/// `nft -f -` with `text`, off the runtime's threads.
async fn apply(text: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running nft: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| format!("writing to nft: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("running nft: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft refused the lockdown table: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
    .await
    .map_err(|e| format!("running nft: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_every_server_form() {
        assert_eq!(host_of("vpn.example.com"), "vpn.example.com");
        assert_eq!(host_of("vpn.example.com:8443"), "vpn.example.com");
        assert_eq!(host_of("10.0.0.1:443"), "10.0.0.1");
        assert_eq!(host_of("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_of("[2001:db8::1]"), "2001:db8::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn literal_addresses_resolve_without_dns() {
        let (a, bad) = resolve(&["10.0.0.1:443".into(), "[2001:db8::1]".into()]);
        assert_eq!(
            a,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(bad.is_empty());
        let (a, bad) = resolve(&["no-such-host.invalid".into()]);
        assert!(a.is_empty());
        assert_eq!(bad, vec!["no-such-host.invalid".to_owned()]);
    }

    #[test]
    fn one_table_allows_every_wanted_connection() {
        let mut entries = BTreeMap::new();
        entries.insert(
            "a".to_owned(),
            Entry {
                interface: "ras-a".into(),
                servers: vec!["10.0.0.1".parse().unwrap()],
            },
        );
        entries.insert(
            "b".to_owned(),
            Entry {
                interface: "ras-b".into(),
                servers: vec!["10.0.0.2".parse().unwrap(), "2001:db8::2".parse().unwrap()],
            },
        );
        let text = ruleset(&entries);
        assert!(text.starts_with("table inet ras_lockdown\ndelete table inet ras_lockdown\n"));
        assert!(text.contains("policy drop;"));
        assert!(text.contains("oifname { \"ras-a\", \"ras-b\" } accept"));
        assert!(text.contains("ip daddr { 10.0.0.1, 10.0.0.2 } accept"));
        assert!(text.contains("ip6 daddr { 2001:db8::2 } accept"));
        // No server resolved: no empty set (nft refuses one); fails closed.
        entries.clear();
        entries.insert(
            "c".to_owned(),
            Entry {
                interface: "ras-c".into(),
                servers: Vec::new(),
            },
        );
        let text = ruleset(&entries);
        assert!(!text.contains("daddr"), "{text}");
    }
}
