//! `ras client`: the always-running VPN client (docs/MOBILE-CLIENT.md).
//! `provision` and `unprovision` manage the stored VPN policy and the
//! autostart unit; `run` is the daemon; `status`, `connect`, `disconnect`
//! and `events` talk to it over its control socket.

mod cli;
mod connection;
mod daemon;
mod lockdown;
mod metrics;
mod nat_probe;
mod netwatch;
mod network_id;
mod protocol;
mod reload;
mod roaming;
mod rtt;
mod store;
mod trusted;
mod unit;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::quiet_output::say;
use protocol::Request;
use store::Store;

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Where provisioned connections and their state are kept (root only;
    /// default RAS_CLIENT_STATE, else /etc/ras/client).
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The daemon's control socket (default RAS_CLIENT_SOCKET, else
    /// /run/ras/client.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: ClientCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Check a VPN policy document and store its connections (replacing
    /// ones of the same name); install and enable ras-client.service.
    Provision {
        /// The policy document (TOML, docs/MOBILE-CLIENT.md).
        file: PathBuf,
        /// Where the systemd unit goes (enabled only in the default).
        #[arg(long, value_name = "DIR", default_value = unit::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
    },
    /// Remove a provisioned connection (the unit too when none is left),
    /// or everything provisioning created with --all.
    Unprovision {
        /// The connection to remove.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every connection, their state and the unit.
        #[arg(long)]
        all: bool,
        /// Where provisioning put the systemd unit.
        #[arg(long, value_name = "DIR", default_value = unit::DEFAULT_UNIT_DIR)]
        unit_dir: PathBuf,
    },
    /// Run the daemon (what ras-client.service starts).
    Run {
        /// Also serve `ras client metrics` over HTTP, GET /metrics, on this
        /// address (e.g. 127.0.0.1:9559) for a Prometheus scraper; anyone
        /// who can reach it reads connection names and traffic.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// The connections: state, server, protocol, address, uptime, traffic.
    Status {
        /// One JSON array per line.
        #[arg(long)]
        json: bool,
        /// Again every 2 seconds.
        #[arg(long)]
        watch: bool,
    },
    /// Bring a connection up (and keep it up, if always-on).
    Connect {
        /// The provisioned connection.
        name: String,
    },
    /// Take a connection down; it stays down until `connect`.
    Disconnect {
        /// The provisioned connection.
        name: String,
    },
    /// The measurements of every connection as Prometheus text
    /// (exposition format 0.0.4): traffic, handshake time, round-trip
    /// time, reconnects by cause, NAT timeout and keepalive.
    Metrics,
    /// Follow the daemon's events, one line each.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

impl ClientArgs {
    /// `ras client run` logs its events at info.
    pub fn is_daemon(&self) -> bool {
        matches!(self.cmd, ClientCommand::Run { .. })
    }
}

/// The flag, else the environment variable, else the default.
fn resolve(flag: Option<PathBuf>, var: &str, default: &str) -> PathBuf {
    flag.or_else(|| std::env::var_os(var).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

pub fn run(args: ClientArgs) -> anyhow::Result<()> {
    let state = resolve(args.state, "RAS_CLIENT_STATE", store::DEFAULT_DIR);
    let socket = resolve(args.socket, "RAS_CLIENT_SOCKET", protocol::DEFAULT_SOCKET);
    let store = Store::new(state);
    match args.cmd {
        ClientCommand::Provision { file, unit_dir } => provision(&store, &file, &unit_dir, &socket),
        ClientCommand::Unprovision {
            name,
            all,
            unit_dir,
        } => unprovision(&store, name.as_deref(), all, &unit_dir, &socket),
        ClientCommand::Run { metrics_listen } => daemon::run(store, socket, metrics_listen),
        ClientCommand::Status { json, watch } => cli::status(&socket, json, watch),
        ClientCommand::Connect { name } => cli::command(&socket, Request::Connect { name }),
        ClientCommand::Disconnect { name } => cli::command(&socket, Request::Disconnect { name }),
        ClientCommand::Events { json } => cli::events(&socket, json),
        ClientCommand::Metrics => cli::metrics(&socket),
    }
}

fn provision(store: &Store, file: &Path, unit_dir: &Path, socket: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the policy document {}", file.display()))?;
    let doc = client::vpn_policy::parse(&text, file)?;
    // CRL files are read now, so that a bad one is refused before anything
    // is stored (the daemon reads them again at each attempt).
    for c in &doc.connections {
        let strict = c.trust.crl_policy == client::vpn_policy::CrlPolicyName::Strict;
        crate::connect_cmd::load_crls(&c.trust.crl_files, strict, "").with_context(|| {
            format!("{}: connection {}: trust.crl_files", file.display(), c.name)
        })?;
    }
    let stored = store.store(&doc)?;
    for (c, path) in doc.connections.iter().zip(&stored) {
        let order: Vec<&str> = c.protocol_order().iter().map(|p| p.scheme()).collect();
        say!(
            "provisioned {} ({}; {}{}) in {}",
            c.name,
            order.join(", "),
            if c.always_on {
                "always on"
            } else {
                "on demand"
            },
            if c.lockdown { ", lockdown" } else { "" },
            path.display()
        );
    }
    let ras = std::env::current_exe().context("finding the ras binary")?;
    let default_socket = socket == Path::new(protocol::DEFAULT_SOCKET);
    let text = unit::unit_text(&ras, &store.dir, (!default_socket).then_some(socket));
    match unit::install(unit_dir, &text)? {
        unit::Installed::Enabled(path) => {
            say!("{} installed and enabled", path.display())
        }
        unit::Installed::Written(path, why) => say!("{} written; {why}", path.display()),
    }
    tell_daemon(socket);
    Ok(())
}

/// A running daemon reads the store again (reload.rs); without one there
/// is nobody to tell: the daemon reads the store when it starts. What is
/// stored stands either way, so a failure here is only said.
fn tell_daemon(socket: &Path) {
    if !socket.exists() {
        say!(
            "no ras client daemon runs on {}; it reads the change when it starts",
            socket.display()
        );
        return;
    }
    match cli::ask(socket, &Request::Reload) {
        Ok(reply) => {
            if let Some(m) = reply.message {
                say!("{m}");
            }
        }
        Err(e) => crate::quiet_output::say_err!(
            "warning: the ras client daemon on {} did not take the change ({e:#}); restart it to apply it",
            socket.display()
        ),
    }
}

fn unprovision(
    store: &Store,
    name: Option<&str>,
    all: bool,
    unit_dir: &Path,
    socket: &Path,
) -> anyhow::Result<()> {
    let names = if all {
        store.names()?
    } else {
        let name = name.unwrap_or_default();
        if !store.names()?.iter().any(|n| n == name) {
            bail!("no connection named {name:?} is provisioned");
        }
        vec![name.to_owned()]
    };
    for name in &names {
        if store.remove(name)? {
            say!("removed {name}");
        }
    }
    if store.names()?.is_empty() {
        if let Some(removed) = unit::remove(unit_dir)? {
            say!("removed {}", removed.path.display());
            if removed.stopped {
                // systemd stopped the daemon with the unit: nobody to tell.
                say!("stopped {}", unit::UNIT_NAME);
                store.remove_empty_dirs();
                return Ok(());
            }
        }
        store.remove_empty_dirs();
    }
    tell_daemon(socket);
    Ok(())
}
