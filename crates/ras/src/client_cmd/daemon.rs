//! `ras client run`: the daemon holding the provisioned connections. One
//! task per connection ([`super::connection`]), an events bus every
//! `events` subscriber reads, and the control socket (JSON lines,
//! [`super::protocol`]) bound like the server's admin socket: mode 0660,
//! root and the `ras` group only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use server::admin_socket::{AdminSocket, AdminSocketError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::broadcast;

use super::connection::{self, Connection, Events};
use super::lockdown::Lockdown;
use super::netwatch::{self, NetworkChange};
use super::protocol::{Reply, Request, MAX_REQUEST};
use super::store::Store;
use crate::quiet_output::say_err;

/// Events a slow subscriber may fall behind by before it misses some.
const EVENT_BACKLOG: usize = 256;
/// At most this many control clients at once (each is a task and a file
/// descriptor; a local user of the `ras` group must not exhaust them).
const MAX_CLIENTS: usize = 64;

pub(super) struct Daemon {
    pub(super) store: Store,
    /// Changed by `reload` (provisioning while the daemon runs).
    pub(super) connections: std::sync::Mutex<BTreeMap<String, Running>>,
    pub(super) events: Events,
    /// What a connection's tasks need besides itself.
    pub(super) network: broadcast::Sender<NetworkChange>,
    pub(super) uplink: tokio::sync::watch::Receiver<netwatch::Uplink>,
    pub(super) ignore: netwatch::Ignore,
    pub(super) lockdown: Arc<Lockdown>,
    /// One `reload` at a time.
    pub(super) reloading: tokio::sync::Mutex<()>,
}

/// A connection and its task.
pub(super) struct Running {
    pub(super) conn: Arc<Connection>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Every connection now (the lock is not held across an await).
    pub(super) fn all(&self) -> Vec<Arc<Connection>> {
        self.lock().values().map(|r| r.conn.clone()).collect()
    }

    pub(super) fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.lock().get(name).map(|r| r.conn.clone())
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `policy`'s connection: its gate (trusted.rs) and its task;
    /// always-on ones are wanted at once.
    pub(super) fn start(&self, policy: client::vpn_policy::ConnectionPolicy) -> Running {
        let conn = Connection::new(policy);
        {
            let mut ignore = self.ignore.lock().unwrap_or_else(|e| e.into_inner());
            let name = conn.policy.interface_name();
            if !ignore.contains(&name) {
                ignore.push(name);
            }
        }
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(super::trusted::run(
            conn.clone(),
            self.events.clone(),
            self.uplink.clone(),
            go_tx,
        ));
        let task = tokio::spawn(connection::run(
            conn.clone(),
            self.store.clone(),
            self.events.clone(),
            self.network.clone(),
            self.lockdown.clone(),
            go_rx,
        ));
        if conn.policy.always_on {
            conn.wanted.send_replace(true);
        }
        Running { conn, task }
    }
}

pub fn run(
    store: Store,
    socket: PathBuf,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let policies = store.load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(store, socket, policies, metrics_listen))
}

async fn serve(
    store: Store,
    socket: PathBuf,
    policies: Vec<client::vpn_policy::ConnectionPolicy>,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    // Bound first: a port in use is said before any connection starts.
    let metrics_listener = match metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics-listen {addr}"))?,
        ),
        None => None,
    };
    let mut bound = AdminSocket::bind(&socket).map_err(|e| match e {
        AdminSocketError::InUse { path } => anyhow::anyhow!(
            "another ras client daemon answers on {} (stop it first)",
            path.display()
        ),
        AdminSocketError::NotASocket { path } => anyhow::anyhow!(
            "{} exists and is not a socket: not replacing it",
            path.display()
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    let listener = bound.take_listener().context("the control socket")?;
    listener
        .set_nonblocking(true)
        .context("the control socket")?;
    let listener = tokio::net::UnixListener::from_std(listener).context("the control socket")?;

    let events = Events::new(EVENT_BACKLOG);
    // Our own tunnels are no way out.
    let ignore: netwatch::Ignore = Arc::new(std::sync::Mutex::new(
        policies.iter().map(|p| p.interface_name()).collect(),
    ));
    let (network, uplink) = netwatch::start(ignore.clone(), announce_changes(events.clone())).await;
    let daemon = Arc::new(Daemon {
        store: store.clone(),
        connections: Default::default(),
        events: events.clone(),
        network,
        uplink,
        ignore,
        lockdown: Arc::new(Lockdown::default()),
        reloading: Default::default(),
    });
    // NAT-timeout measuring is enabled, and its reports followed, before
    // any connection starts: a tunnel reads the plan as it starts, and a
    // report sent before anyone listens is lost.
    {
        let daemon = daemon.clone();
        super::nat_probe::start(&store, move || daemon.all(), events.clone());
    }
    for policy in policies {
        let running = daemon.start(policy);
        daemon
            .lock()
            .insert(running.conn.policy.name.clone(), running);
    }
    if let Some(listener) = metrics_listener {
        let addr = listener.local_addr().context("--metrics-listen")?;
        say_err!("ras client: metrics on http://{addr}/metrics");
        tokio::spawn(serve_metrics(listener, daemon.clone()));
    }
    let lockdown = daemon.lockdown.clone();
    say_err!(
        "ras client: {} connection(s) from {}, control socket {}",
        daemon.all().len(),
        store.dir.display(),
        socket.display()
    );
    super::unit::notify_ready();

    let clients = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = clients.clone().try_acquire_owned() else {
                    // Too many at once: closed at once.
                    continue;
                };
                let daemon = daemon.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = handle(daemon, stream).await {
                        tracing::debug!("control client: {e}");
                    }
                });
            }
        }
    }
    say_err!("ras client: stopping; disconnecting every connection");
    connection::DAEMON_STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
    for conn in daemon.all() {
        conn.wanted.send_replace(false);
    }
    // Each task sends its goodbye and undoes routes and DNS; wait for the
    // connections to be down (bounded by their grace time).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(7);
    while tokio::time::Instant::now() < deadline
        && daemon.all().iter().any(|c| {
            let s = c.status(&daemon.store).state;
            s == "connecting" || s == "connected" || s == "reconnecting"
        })
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Whatever a task did not get to remove in its grace time.
    if let Err(e) = lockdown.clear().await {
        tracing::warn!("lockdown: {e}");
    }
    bound.remove();
    Ok(())
}

/// GET /metrics: what `ras client metrics` prints (metrics.rs), with the
/// exposition format's content type.
async fn serve_metrics(listener: tokio::net::TcpListener, daemon: Arc<Daemon>) {
    use axum::http::header::CONTENT_TYPE;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let daemon = daemon.clone();
            async move {
                let statuses: Vec<_> = daemon
                    .all()
                    .iter()
                    .map(|c| c.status(&daemon.store))
                    .collect();
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    super::metrics::render(&statuses),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, router).await {
        tracing::warn!("metrics listener: {e}");
    }
}

/// One `network changed` event per change, before the connections react.
fn announce_changes(events: Events) -> netwatch::Announce {
    Box::new(move |change: &NetworkChange| {
        events.emit(super::protocol::Event {
            time: connection::now(),
            event: "network changed".into(),
            from: Some(change.old.describe()),
            to: Some(change.new.describe()),
            cause: change
                .slept_s
                .map(|s| format!("resumed after {s} s asleep")),
            ..super::protocol::Event::default()
        })
    })
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// One control client: one request line, then the reply (or the stream).
async fn handle(daemon: Arc<Daemon>, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    let mut line = String::new();
    // A client that connects and says nothing is dropped after a while.
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_line(&mut line),
    )
    .await
    {
        Ok(Ok(_)) => {}
        _ => return Ok(()),
    }
    let request: Request = match serde_json::from_str(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            let reply = Reply {
                error: Some(format!("bad request: {e}")),
                ..Reply::default()
            };
            return send(&mut write, &reply).await;
        }
    };
    let reply = match request {
        Request::Status => Reply {
            ok: true,
            connections: daemon
                .all()
                .iter()
                .map(|c| c.status(&daemon.store))
                .collect(),
            ..Reply::default()
        },
        Request::Connect { name } => match daemon.get(&name) {
            Some(conn) => {
                // Asked for explicitly: it connects on a trusted network
                // too, as Windows does (docs/MOBILE-CLIENT.md).
                let trusted = conn.trust.connect_explicitly();
                let was = conn.wanted.send_replace(true);
                let on = trusted
                    .map(|n| format!(" (on trusted network {n}: connecting as asked)"))
                    .unwrap_or_default();
                Reply {
                    ok: true,
                    message: Some(if was && on.is_empty() {
                        format!("{name} is already wanted")
                    } else {
                        format!("connecting {name}{on}")
                    }),
                    ..Reply::default()
                }
            }
            None => unknown(&name),
        },
        Request::Reload => super::reload::reload(&daemon).await,
        Request::Metrics => {
            let statuses: Vec<_> = daemon
                .all()
                .iter()
                .map(|c| c.status(&daemon.store))
                .collect();
            Reply {
                ok: true,
                metrics: Some(super::metrics::render(&statuses)),
                ..Reply::default()
            }
        }
        Request::Disconnect { name } => match daemon.get(&name) {
            Some(conn) => {
                conn.trust.disconnect();
                let was = conn.wanted.send_replace(false);
                Reply {
                    ok: true,
                    message: Some(if was {
                        format!("disconnecting {name}")
                    } else {
                        format!("{name} is not connected")
                    }),
                    ..Reply::default()
                }
            }
            None => unknown(&name),
        },
        Request::Events => return stream_events(&daemon, write).await,
    };
    send(&mut write, &reply).await
}

fn unknown(name: &str) -> Reply {
    Reply {
        error: Some(format!("no connection named {name:?} is provisioned")),
        ..Reply::default()
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await
}

/// Every event from now on, one JSON line each, until the client goes.
async fn stream_events(
    daemon: &Daemon,
    mut write: tokio::net::unix::OwnedWriteHalf,
) -> std::io::Result<()> {
    let (recent, mut events) = daemon.events.subscribe();
    // A first line says the stream is open; the recent events follow.
    send(
        &mut write,
        &Reply {
            ok: true,
            message: Some("events follow".into()),
            ..Reply::default()
        },
    )
    .await?;
    for event in recent {
        send(&mut write, &event).await?;
    }
    loop {
        match events.recv().await {
            Ok(event) => send(&mut write, &event).await?,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("an events subscriber fell {n} events behind");
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}
