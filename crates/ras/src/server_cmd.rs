//! `ras server`: the remote access server. With no configuration file it
//! runs on embedded defaults: a self-signed certificate, a local user store
//! with a demo user, the static pool 10.0.10.20–10.0.10.29, SSTP on 443,
//! PPTP on 1723 and L2TP/IPsec on UDP 500/4500. Everything is built by [`server::server::Server`];
//! this command loads the configuration, prints what the server says,
//! reloads it on SIGHUP (`ras server reload` asks over the admin socket)
//! and stops it on SIGINT or SIGTERM.

use std::path::PathBuf;

use server::config::Config;
use server::notice::Notice;
use server::privilege::Outcome;
use server::server::Server;

use crate::quiet_output::say;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file; every setting has an embedded default.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Check the configuration (and the files it names) as the server
    /// would before starting, print "configuration OK" or the error with
    /// its file, line and key, and exit; binds and changes nothing.
    #[arg(long)]
    pub check: bool,
    /// How to log: plain lines on standard error, one JSON object per
    /// line, or the systemd journal with SESSION_ID, USER and PROTOCOL
    /// fields.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::log_format::LogFormat,
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
}

#[derive(clap::Subcommand)]
pub enum ServerCommand {
    /// Ask the running server to read its configuration file again (as
    /// SIGHUP does): prints what changed, or why the new configuration
    /// was refused (exit status 1; the server keeps the previous one).
    Reload {
        /// The admin socket (default: the configuration's `[admin] socket`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    if let Some(ServerCommand::Reload { socket }) = args.command {
        return crate::admin_cmd::reload(args.config, socket);
    }
    if args.check {
        server::config_check::check(args.config.as_deref())?;
        say!("configuration OK");
        return Ok(());
    }
    let config = Config::load(args.config.as_deref())?;
    let runtime = crate::server_runtime::build()?;
    runtime.block_on(serve(args.config, config))
}

/// One line on standard output per notice.
fn print(notice: Notice) {
    say!("{notice}");
}

async fn serve(file: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    // The handlers first: a SIGTERM that arrives right after the ready
    // line (systemd, a test) must stop the server cleanly, not kill it by
    // the default action before the handlers exist.
    let signals = Signals::install()?;
    let server = Server::start_from(file.as_deref(), &config, &mut print).await?;
    // Everything privileged is open now: become `user` (privilege.rs).
    match server::privilege::drop_privileges(&config.user, &config.state_dir) {
        Ok(outcome @ Outcome::NoSuchUser { .. }) => tracing::warn!("{outcome}"),
        Ok(outcome) => tracing::info!("{outcome}"),
        Err(e) => {
            server.shutdown(&mut print).await;
            return Err(e.into());
        }
    }
    // The ACME task writes to the state directory: as `user`, not root.
    server.start_acme();
    let heartbeat = crate::systemd_notify::ready(&server);
    crate::systemd_notify::observe_reloads(&server);
    serve_until_stopped(&server, signals).await;
    crate::systemd_notify::stopping();
    drop(heartbeat);
    server.shutdown(&mut print).await;
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP, caught from the moment this exists.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Reloads on SIGHUP (the reload logs its own line) until SIGINT or
/// SIGTERM.
async fn serve_until_stopped(server: &Server, mut signals: Signals) {
    loop {
        tokio::select! {
            _ = signals.int.recv() => return,
            _ = signals.term.recv() => return,
            _ = signals.hup.recv() => {
                server.reload().await;
            }
        }
    }
}
