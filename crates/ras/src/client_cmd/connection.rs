//! One provisioned connection: its task and state machine.
//!
//! ```text
//!  down ──connect──▶ connecting ──link up──▶ connected
//!   ▲                  │  ▲ (next protocol         │
//!   │                  │  │  or server: fallback)  │ link lost
//!   │                  ▼  │                        ▼
//!   └──disconnect── reconnecting ◀─────────────────┘  (always_on: back-off
//!                                                      1 s doubling to 60 s)
//! ```
//!
//! The task waits while the connection is not wanted; `connect` (or
//! `always_on` at daemon start) makes it wanted, `disconnect` unwanted.
//! Each attempt tries the protocols in order, the one that last worked
//! first (remembered in the state file), and says in the events why each
//! one failed. A connection that is not always-on goes down after a failed
//! round or a lost link; an always-on one tries again until told to stop.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::sstp::{SessionEnd, UpStatus};
use client::target::{Protocol, Target};
use client::vpn_policy::ConnectionPolicy;
use tokio::sync::{broadcast, watch};
use zeroize::Zeroizing;

use super::lockdown::Lockdown;
use super::netwatch::NetworkChange;
use super::protocol::{ConnectionStatus, Event};
use super::store::{ConnectionState, Store};
use crate::connect_cmd::{self, ConnectArgs};

/// Back-off of always-on reconnects: from this …
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// … doubling up to this.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// After `disconnect`, how long the server gets to acknowledge it.
const GRACE: Duration = Duration::from_secs(5);
/// After a network change the old path may be gone: the goodbye gets
/// less time, as the new attempt waits for it.
const NETWORK_GRACE: Duration = Duration::from_millis(500);

/// What the control socket and the task share about one connection.
pub struct Connection {
    pub policy: ConnectionPolicy,
    /// True while the connection is wanted (connect / always_on).
    pub wanted: watch::Sender<bool>,
    /// Trusted networks: what holds it down even when wanted.
    pub trust: super::trusted::Gate,
    status: Mutex<Live>,
}

/// The state as it changes; [`Connection::status`] turns it into the
/// reply's form.
#[derive(Default)]
struct Live {
    state: &'static str,
    server: Option<String>,
    protocol: Option<Protocol>,
    address: Option<String>,
    up_since: Option<Instant>,
    /// From the start of the attempt to the link up (while connected).
    handshake_ms: Option<u64>,
    reconnects: u64,
    /// Reconnects since the daemon started, by cause class (metrics.rs).
    reconnect_causes: std::collections::BTreeMap<&'static str, u64>,
    last_error: Option<String>,
    /// The last round-trip time to the server (rtt.rs), while connected.
    rtt_ms: Option<f64>,
    /// The NAT-timeout measurement (nat_probe.rs), while connected.
    nat: super::nat_probe::NatView,
}

impl Connection {
    pub fn new(policy: ConnectionPolicy) -> Arc<Connection> {
        Arc::new(Connection {
            trust: super::trusted::Gate::new(&policy.trusted_networks),
            policy,
            wanted: watch::Sender::new(false),
            status: Mutex::new(Live {
                state: "down",
                ..Live::default()
            }),
        })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_connected(&self) -> bool {
        self.live().state == "connected"
    }

    pub(super) fn set_rtt(&self, rtt_ms: Option<f64>) {
        self.live().rtt_ms = rtt_ms;
    }

    pub(super) fn set_nat(&self, nat: super::nat_probe::NatView) {
        self.live().nat = nat;
    }

    /// Whether `server` is (or may be) this connection's server: by address
    /// when the policy names one, a host name taken to match.
    pub(super) fn serves(&self, server: IpAddr) -> bool {
        self.policy.servers.iter().any(|s| {
            let host = s.rsplit_once(':').map_or(s.as_str(), |(h, _)| h);
            host.trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .map_or(true, |ip| ip == server)
        })
    }

    /// The status now, with the tunnel device's counters.
    pub fn status(&self, store: &Store) -> ConnectionStatus {
        let live = self.live();
        let interface = self.policy.interface_name();
        let counters = if live.state == "connected" {
            TunCounters::read(&interface)
        } else {
            TunCounters::default()
        };
        // Wanted, but held down by a trusted network.
        let held = self
            .trust
            .holding()
            .filter(|_| *self.wanted.borrow() && matches!(live.state, "down" | "disconnected"));
        ConnectionStatus {
            name: self.policy.name.clone(),
            state: if held.is_some() {
                "trusted"
            } else {
                live.state
            }
            .to_owned(),
            trusted_network: self.trust.on(),
            always_on: self.policy.always_on,
            protocols: order(&self.policy, store)
                .iter()
                .map(|p| p.scheme().to_owned())
                .collect(),
            server: live.server.clone(),
            protocol: live.protocol.map(|p| p.scheme().to_owned()),
            interface,
            address: live.address.clone(),
            uptime_s: live.up_since.map(|t| t.elapsed().as_secs()),
            bytes_in: counters.rx_bytes,
            bytes_out: counters.tx_bytes,
            packets_in: counters.rx_packets,
            packets_out: counters.tx_packets,
            rtt_ms: live.rtt_ms.filter(|_| live.state == "connected"),
            handshake_ms: live.handshake_ms.filter(|_| live.state == "connected"),
            nat_timeout_s: live.nat.nat_timeout_s.filter(|_| live.state == "connected"),
            keepalive_s: live.nat.keepalive_s.filter(|_| live.state == "connected"),
            nat_probe: live
                .nat
                .nat_probe
                .clone()
                .filter(|_| live.state == "connected"),
            reconnects: live.reconnects,
            reconnect_causes: live
                .reconnect_causes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            last_error: live.last_error.clone(),
        }
    }
}

/// The kernel's counters of a TUN device. What the kernel receives from
/// the device came out of the tunnel (in); what it transmits to the
/// device goes into the tunnel (out).
#[derive(Default)]
struct TunCounters {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
}

impl TunCounters {
    fn read(interface: &str) -> TunCounters {
        let read = |name: &str| {
            std::fs::read_to_string(format!("/sys/class/net/{interface}/statistics/{name}"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0)
        };
        TunCounters {
            rx_bytes: read("rx_bytes"),
            tx_bytes: read("tx_bytes"),
            rx_packets: read("rx_packets"),
            tx_packets: read("tx_packets"),
        }
    }
}

/// The protocols in the order the next attempt tries them: the configured
/// order, with the one that last worked moved to the front.
pub fn order(policy: &ConnectionPolicy, store: &Store) -> Vec<Protocol> {
    let mut order = policy.protocol_order();
    let last = store.read_state(&policy.name).last_protocol;
    if let Some(i) = order
        .iter()
        .position(|p| Some(p.scheme()) == last.as_deref())
    {
        let p = order.remove(i);
        order.insert(0, p);
    }
    order
}

/// Recent events a new subscriber gets first.
const HISTORY: usize = 64;

/// The events bus: every subscriber of the `events` stream, and the last
/// [`HISTORY`] events, so that a subscriber started just after the daemon
/// (or after a reconnect it wants to explain) misses nothing.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Arc<Mutex<std::collections::VecDeque<Event>>>,
}

impl Events {
    pub fn new(backlog: usize) -> Events {
        Events {
            tx: broadcast::Sender::new(backlog),
            history: Arc::default(),
        }
    }

    pub(super) fn emit(&self, event: Event) {
        tracing::info!("{}", event.describe());
        // Under the lock: a subscriber sees each event once, either in the
        // history or from the channel.
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        let _ = self.tx.send(event);
    }

    /// The recent events, and a receiver for every later one.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        (history.iter().cloned().collect(), self.tx.subscribe())
    }
}

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn event(conn: &Connection, kind: &str) -> Event {
    Event {
        time: now(),
        connection: conn.policy.name.clone(),
        event: kind.to_owned(),
        ..Event::default()
    }
}

/// How one round of attempts ended.
enum Round {
    /// `disconnect` while connecting or connected.
    Stopped,
    /// A link came up and later ended.
    Ended(String),
    /// No protocol and server worked; the last cause.
    Failed(String),
    /// The network changed under a session that cannot follow it: the
    /// next attempt starts at once (docs/MOBILE-CLIENT.md).
    NetworkChanged(String),
}

/// The connection's task: runs for the daemon's lifetime.
pub async fn run(
    conn: Arc<Connection>,
    store: Store,
    events: Events,
    network: broadcast::Sender<NetworkChange>,
    lockdown: Arc<Lockdown>,
    // `wanted` as gated by trusted networks (trusted.rs); closed when the
    // connection is unprovisioned.
    mut wanted: watch::Receiver<bool>,
) {
    loop {
        if wanted.wait_for(|w| *w).await.is_err() {
            return;
        }
        super::lockdown::engage(&conn, &lockdown, &events).await;
        let mut delay = FIRST_DELAY;
        conn.live().reconnects = 0;
        loop {
            let mut at_once = false;
            let cause = match round(&conn, &store, &events, wanted.clone(), &network).await {
                Round::Stopped => None,
                Round::NetworkChanged(cause) => {
                    delay = FIRST_DELAY;
                    at_once = true;
                    Some(cause)
                }
                Round::Ended(cause) => {
                    // The link was up: the next wait starts short again.
                    delay = FIRST_DELAY;
                    Some(cause)
                }
                Round::Failed(cause) => Some(cause),
            };
            {
                let mut live = conn.live();
                live.up_since = None;
                live.handshake_ms = None;
                live.address = None;
                if let Some(c) = &cause {
                    live.last_error = Some(c.clone());
                }
            }
            let Some(cause) = cause.filter(|_| *wanted.borrow()) else {
                went_down(&conn, &events, "user request");
                break;
            };
            if !conn.policy.always_on && !at_once {
                conn.wanted.send_replace(false);
                went_down(&conn, &events, &cause);
                break;
            }
            let class = super::metrics::cause_class(&cause);
            {
                let mut live = conn.live();
                live.state = "reconnecting";
                live.reconnects += 1;
                *live.reconnect_causes.entry(class).or_default() += 1;
            }
            events.emit(Event {
                cause: Some(cause),
                cause_class: Some(class.to_owned()),
                retry_in_s: Some(if at_once { 0 } else { delay.as_secs() }),
                ..event(&conn, "reconnecting")
            });
            if at_once {
                continue;
            }
            let mut stop = wanted.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = async { let _ = stop.wait_for(|w| !*w).await; } => {
                    went_down(&conn, &events, "user request");
                    break;
                }
            }
            delay = (delay * 2).min(MAX_DELAY);
        }
        super::lockdown::release(&conn, &lockdown, &events).await;
    }
}

/// Set when the daemon stops (SIGTERM): connections then go down for that
/// reason, not at a user's request.
pub static DAEMON_STOPPING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn went_down(conn: &Connection, events: &Events, cause: &str) {
    let gated = conn.trust.why_down(*conn.wanted.borrow());
    let cause =
        if cause == "user request" && DAEMON_STOPPING.load(std::sync::atomic::Ordering::Relaxed) {
            "the daemon is stopping"
        } else if let (Some(why), "user request") = (&gated, cause) {
            why
        } else {
            cause
        };
    {
        let mut live = conn.live();
        live.state = "disconnected";
        live.up_since = None;
        live.handshake_ms = None;
        live.address = None;
        live.nat = Default::default();
    }
    events.emit(Event {
        cause: Some(cause.to_owned()),
        ..event(conn, "disconnected")
    });
}

/// One round: every protocol (in order) on every server until a link comes
/// up, or the connection is no longer wanted.
async fn round(
    conn: &Arc<Connection>,
    store: &Store,
    events: &Events,
    wanted: watch::Receiver<bool>,
    network: &broadcast::Sender<NetworkChange>,
) -> Round {
    let protocols = order(&conn.policy, store);
    let candidates: Vec<(Protocol, Target)> = protocols
        .iter()
        .flat_map(|p| conn.policy.targets(*p).into_iter().map(move |t| (*p, t)))
        .collect();
    let mut last_cause = String::from("no server to try");
    for (i, (protocol, target)) in candidates.iter().enumerate() {
        if !*wanted.borrow() {
            return Round::Stopped;
        }
        let server = format!("{}:{}", target.host, target.port);
        {
            let mut live = conn.live();
            live.state = "connecting";
            live.protocol = Some(*protocol);
            live.server = Some(server.clone());
        }
        events.emit(Event {
            protocol: Some(protocol.scheme().to_owned()),
            server: Some(server.clone()),
            ..event(conn, "connecting")
        });
        let result = attempt(
            conn,
            store,
            events,
            *protocol,
            target,
            wanted.clone(),
            network.subscribe(),
        )
        .await;
        match result {
            Ok(Ended::Network(_)) | Err(_) if !*wanted.borrow() => return Round::Stopped,
            Ok(Ended::Network(cause)) => return Round::NetworkChanged(cause),
            Ok(Ended::Session(end)) if end.stopped || !*wanted.borrow() => return Round::Stopped,
            Ok(Ended::Session(end)) => {
                return Round::Ended(format!("connection lost: {}", end.reason))
            }
            Err(cause) => {
                conn.live().last_error = Some(cause.clone());
                if let Some((next, next_target)) = candidates.get(i + 1) {
                    events.emit(Event {
                        protocol: Some(protocol.scheme().to_owned()),
                        server: Some(server),
                        cause: Some(cause.clone()),
                        next: Some(format!(
                            "{} to {}:{}",
                            next.scheme(),
                            next_target.host,
                            next_target.port
                        )),
                        ..event(conn, "fallback")
                    });
                }
                last_cause = format!("{}: {cause}", protocol.scheme());
            }
        }
    }
    Round::Failed(last_cause)
}

/// How an attempt that did not fail ended.
enum Ended {
    /// The session ended (or was stopped).
    Session(SessionEnd),
    /// Stopped because the network changed under it: the cause.
    Network(String),
}

/// One protocol on one server: `Ok` once a link came up (or was stopped,
/// or the network changed under it), `Err` with the cause when it failed
/// before.
async fn attempt(
    conn: &Arc<Connection>,
    store: &Store,
    events: &Events,
    protocol: Protocol,
    target: &Target,
    mut wanted: watch::Receiver<bool>,
    changes: broadcast::Receiver<NetworkChange>,
) -> Result<Ended, String> {
    // The handshake is timed from here: preparing (files, the TUN) is
    // part of what the user waits for.
    let started = Instant::now();
    let (args, password) = connect_args(&conn.policy, protocol, target)?;
    let on_up = {
        let conn = conn.clone();
        let events = events.clone();
        let store = store.clone();
        let routes = conn.policy.routes.clone();
        Arc::new(move |up: &UpStatus| {
            link_up(&conn, &store, &events, protocol, up, &routes, started)
        })
    };
    // `prepare` may read files and run `ip`: off the runtime's threads.
    let (dial, network) =
        tokio::task::spawn_blocking(move || connect_cmd::prepare(&args, password, on_up))
            .await
            .map_err(|e| format!("preparing: {e}"))?
            .map_err(|e| format!("{e:#}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let session = dial.connect(network, stop_rx);
    tokio::pin!(session);
    let result = tokio::select! {
        r = &mut session => r,
        cause = super::roaming::follow(conn, events, protocol, target, changes) => {
            // The old session says goodbye where it still can; its
            // routes and device go with it before the next attempt.
            let _ = stop_tx.send(true);
            let _ = tokio::time::timeout(NETWORK_GRACE, &mut session).await;
            return Ok(Ended::Network(cause));
        }
        _ = super::rtt::follow(conn, &target.host, target.port) => unreachable!("follows until dropped"),
        _ = async { let _ = wanted.wait_for(|w| !*w).await; } => {
            // PPP Terminate-Request, SSTP Call Disconnect, IKE Delete.
            let _ = stop_tx.send(true);
            match tokio::time::timeout(GRACE, &mut session).await {
                Ok(r) => r,
                Err(_) => return Ok(Ended::Session(SessionEnd {
                    reason: "the server did not acknowledge the disconnect".into(),
                    stats: Default::default(),
                    was_up: true,
                    stopped: true,
                })),
            }
        }
    };
    result
        .map(Ended::Session)
        .map_err(|e| connect_cmd::explain(e).to_string())
}

/// The link is up: status, the event, and the protocol remembered.
fn link_up(
    conn: &Connection,
    store: &Store,
    events: &Events,
    protocol: Protocol,
    up: &UpStatus,
    policy_routes: &[String],
    started: Instant,
) {
    let address = up.link.ipv4.map(|(local, _)| local.to_string());
    // At least 1: a link that came up took some time, and 0 reads as
    // "not measured" to people.
    let handshake_ms = (started.elapsed().as_millis() as u64).max(1);
    {
        let mut live = conn.live();
        live.state = "connected";
        live.handshake_ms = Some(handshake_ms);
        live.address = address.clone();
        live.up_since = Some(Instant::now());
        live.last_error = None;
    }
    let mut routes: Vec<String> = policy_routes.to_vec();
    routes.extend(
        up.link
            .server_routes
            .iter()
            .map(|(a, p): &(IpAddr, u8)| format!("{a}/{p}")),
    );
    if conn.policy.default_route {
        routes.push("0.0.0.0/0".into());
    }
    let state = ConnectionState {
        last_protocol: Some(protocol.scheme().to_owned()),
    };
    if let Err(e) = store.write_state(&conn.policy.name, &state) {
        tracing::warn!("{}: {e:#}", conn.policy.name);
    }
    events.emit(Event {
        protocol: Some(protocol.scheme().to_owned()),
        server: Some(format!("{}:{}", up.target.host, up.target.port)),
        address,
        dns: up.link.dns.iter().map(|d| d.to_string()).collect(),
        routes,
        handshake_ms: Some(handshake_ms),
        ..event(conn, "connected")
    });
}

/// The options `ras connect` would get for this connection over
/// `protocol` to `target`: each protocol gets only the options that apply
/// to it (PPTP has no certificate, SSTP no IPsec key, …).
fn connect_args(
    policy: &ConnectionPolicy,
    protocol: Protocol,
    target: &Target,
) -> Result<(ConnectArgs, Option<Zeroizing<String>>), String> {
    let auth = &policy.auth;
    let ipsec = matches!(protocol, Protocol::L2tp | Protocol::Ikev2);
    let ca = match protocol {
        Protocol::Sstp | Protocol::Ikev2 => policy.trust.ca.clone(),
        Protocol::L2tp if auth.certificate.is_some() => policy.trust.ca.clone(),
        _ => None,
    };
    let args = ConnectArgs {
        target: target.to_string(),
        user: auth.user.clone().unwrap_or_default(),
        password_file: auth.password_file.clone(),
        ca: ca.clone(),
        // CRLs check IKE certificates against the CA (validated at
        // provisioning: they come with `ca` and an IKE protocol).
        crls: if ca.is_some() && ipsec {
            policy.trust.crl_files.clone()
        } else {
            Vec::new()
        },
        crl_strict: ca.is_some()
            && ipsec
            && !policy.trust.crl_files.is_empty()
            && policy.trust.crl_policy == client::vpn_policy::CrlPolicyName::Strict,
        fingerprint: (protocol == Protocol::Sstp)
            .then(|| policy.trust.fingerprint.clone())
            .flatten(),
        routes: policy.routes.clone(),
        default_route: policy.default_route,
        no_dns: !policy.dns,
        // Only with `dns` (the policy's suffixes need the DNS set up).
        dns_suffixes: if policy.dns {
            policy.dns_suffixes.clone()
        } else {
            Vec::new()
        },
        no_ipv6: false,
        tun_name: policy.interface_name(),
        reconnect: false,
        allow_weak_auth: false,
        mppe_stateful: false,
        psk_file: ipsec.then(|| auth.psk_file.clone()).flatten(),
        cert: ipsec.then(|| auth.certificate.clone()).flatten(),
        key: ipsec.then(|| auth.key.clone()).flatten(),
        no_ipsec: false,
        esp: Vec::new(),
        udp_encap: false,
        ike_id: (protocol == Protocol::Ikev2)
            .then(|| auth.identity.clone())
            .flatten(),
    };
    let password = auth.password.as_ref().map(|p| Zeroizing::new(p.clone()));
    if password.is_none() && args.password_file.is_none() {
        // Never fall back to RAS_PASSWORD or a prompt inside the daemon:
        // IKEv2 with a key or a certificate needs no password, and the
        // others were refused at provisioning without one.
        return Ok((args, Some(Zeroizing::new(String::new()))));
    }
    Ok((args, password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(extra_auth: &str, protocols: &str) -> ConnectionPolicy {
        let text = format!(
            "[[connection]]\nname = \"c\"\nservers = [\"h\"]\nprotocols = {protocols}\n[connection.auth]\nuser = \"u\"\npassword = \"pw\"\n{extra_auth}\n[connection.trust]\nca = \"/ca.pem\"\n"
        );
        client::vpn_policy::parse(&text, Path::new("p.toml"))
            .unwrap()
            .connections
            .remove(0)
    }

    #[test]
    fn each_protocol_gets_only_its_options() {
        let p = policy(
            "psk_file = \"/psk\"",
            "[\"ikev2\", \"sstp\", \"l2tp\", \"pptp\"]",
        );
        let args = |protocol| {
            let target = p.targets(protocol).remove(0);
            connect_args(&p, protocol, &target).unwrap()
        };
        let (ikev2, pw) = args(Protocol::Ikev2);
        assert_eq!(ikev2.target, "ikev2://h:500");
        assert!(ikev2.psk_file.is_some() && ikev2.ca.is_some());
        assert_eq!(pw.as_deref().map(String::as_str), Some("pw"));
        let (sstp, _) = args(Protocol::Sstp);
        assert!(sstp.ca.is_some() && sstp.psk_file.is_none());
        // L2TP with a key: the CA is for IKE certificates only.
        let (l2tp, _) = args(Protocol::L2tp);
        assert!(l2tp.psk_file.is_some() && l2tp.ca.is_none());
        let (pptp, _) = args(Protocol::Pptp);
        assert!(pptp.ca.is_none() && pptp.fingerprint.is_none() && pptp.psk_file.is_none());
        assert_eq!(pptp.tun_name, "ras-c");
    }

    #[test]
    fn crls_go_with_the_ca_to_ike_only() {
        let p = policy("psk_file = \"/psk\"", "[\"ikev2\", \"sstp\", \"l2tp\"]");
        let mut p = p;
        p.trust.crl_files = vec!["/ca.crl".into()];
        p.trust.crl_policy = client::vpn_policy::CrlPolicyName::Strict;
        let args = |p: &ConnectionPolicy, protocol| {
            let target = p.targets(protocol).remove(0);
            connect_args(p, protocol, &target).unwrap().0
        };
        let ikev2 = args(&p, Protocol::Ikev2);
        assert_eq!(ikev2.crls, vec![std::path::PathBuf::from("/ca.crl")]);
        assert!(ikev2.crl_strict);
        // SSTP checks its TLS certificate without them; L2TP with a key
        // has no server certificate (and gets no CA).
        let sstp = args(&p, Protocol::Sstp);
        assert!(sstp.crls.is_empty() && !sstp.crl_strict);
        let l2tp = args(&p, Protocol::L2tp);
        assert!(l2tp.crls.is_empty() && !l2tp.crl_strict);
        p.trust.crl_policy = client::vpn_policy::CrlPolicyName::IfAvailable;
        let ikev2 = args(&p, Protocol::Ikev2);
        assert!(!ikev2.crl_strict && ikev2.crls.len() == 1);
    }

    #[test]
    fn the_protocol_that_worked_goes_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_owned());
        let p = policy("psk_file = \"/psk\"", "[\"ikev2\", \"sstp\", \"l2tp\"]");
        assert_eq!(
            order(&p, &store),
            vec![Protocol::Ikev2, Protocol::Sstp, Protocol::L2tp]
        );
        let state = |p: &str| ConnectionState {
            last_protocol: Some(p.into()),
        };
        store.write_state("c", &state("l2tp")).unwrap();
        assert_eq!(
            order(&p, &store),
            vec![Protocol::L2tp, Protocol::Ikev2, Protocol::Sstp]
        );
        // A remembered protocol no longer in the policy is ignored.
        store.write_state("c", &state("pptp")).unwrap();
        assert_eq!(order(&p, &store)[0], Protocol::Ikev2);
    }
}
