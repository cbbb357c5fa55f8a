//! `ras dial PROFILE`: the Connection Manager runtime. Logon values come
//! from the profile's `.cmp` (pre-filled by the administrator for the first
//! run, saved by us after a successful connection), then from flags, the
//! environment and prompts. The work is the `dialer` crate's.

use std::io::{BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use client::routes;
use client::verify::Trust;
use dialer::status::{process_alive, StateFile};
use dialer::{Dialer, Ending, HostOptions, Logon, Progress};
use profile::model::{ConnectionKind, ServiceProfile};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::quiet_output::{say, say_err};

#[derive(clap::Args, Debug)]
pub struct DialArgs {
    /// The profile: an installed profile's short or service name, or a
    /// path to its directory, `.cms` or `.cmp`.
    pub profile: String,
    /// Show the state of this profile's connection and exit.
    #[arg(long, conflicts_with = "disconnect")]
    pub status: bool,
    /// Disconnect this profile's running connection and exit.
    #[arg(long)]
    pub disconnect: bool,
    /// Connection type: direct, dial-up or double-dial (default: the
    /// user's last choice, else the profile's default).
    #[arg(long = "type", value_name = "KIND")]
    pub kind: Option<String>,
    /// User name (without realm); default: the `.cmp` UserName, else asked.
    #[arg(long, short)]
    pub user: Option<String>,
    /// Domain; default: the `.cmp` Domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Read the password from the first line of this file (else
    /// RAS_PASSWORD, else the `.cmp` when remembered, else asked).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The ISP user name of a double-dial connection (default: the `.cmp`
    /// InternetUserName, else the user name).
    #[arg(long)]
    pub inet_user: Option<String>,
    /// The ISP password of a double-dial connection (first line).
    #[arg(long, value_name = "FILE")]
    pub inet_password_file: Option<PathBuf>,
    /// Serial device for dial-up (default: the `.cmp` Device).
    #[arg(long, value_name = "PATH")]
    pub device: Option<String>,
    /// Access number (default: the `.cmp` PhoneNumber0, else the phone book).
    #[arg(long)]
    pub number: Option<String>,
    /// Trust VPN server certificates signed by a CA in this PEM file.
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// Trust exactly the VPN server certificate with this SHA-256.
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// Route this network through the connection (repeatable).
    #[arg(long = "route", value_name = "CIDR")]
    pub routes: Vec<String>,
    /// Double-dial: also route this network through the dial-up link.
    #[arg(long = "dial-route", value_name = "CIDR")]
    pub dial_routes: Vec<String>,
    /// Route all IPv4 traffic through the connection.
    #[arg(long)]
    pub default_route: bool,
    /// Do not configure the DNS servers the server gives.
    #[arg(long)]
    pub no_dns: bool,
    /// Do not negotiate IPv6.
    #[arg(long)]
    pub no_ipv6: bool,
    /// TUN device of the dial-up link.
    #[arg(long, default_value = "ras-dial0")]
    pub dial_tun: String,
    /// TUN device of the VPN tunnel.
    #[arg(long, default_value = "ras-vpn0")]
    pub vpn_tun: String,
    /// Also allow CHAP-MD5 and PAP.
    #[arg(long)]
    pub allow_weak_auth: bool,
    /// Run without a user: no prompts, interactive custom actions are
    /// skipped and %Interactive% is 0 (also when stdin is not a terminal).
    #[arg(long)]
    pub unattended: bool,
    /// Seconds one connection attempt may take to come up.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Trust an https phone-book service's certificate with this SHA-256.
    #[arg(long, value_name = "SHA256")]
    pub pbs_fingerprint: Option<String>,
}

pub fn run(args: DialArgs) -> anyhow::Result<()> {
    let profile = open_profile(&args.profile)?;
    let state_file = StateFile::new(&profile.files.dir, &profile.short_name);
    if args.status {
        return show_status(&profile, &state_file);
    }
    if args.disconnect {
        return disconnect(&profile, &state_file);
    }
    if let Some(st) = state_file.read() {
        if matches!(st.state.as_str(), "connecting" | "connected")
            && process_alive(st.pid)
            && st.pid != std::process::id()
        {
            bail!(
                "{} is already {} (process {}); `ras dial --disconnect {}` first",
                profile.connection_manager.service_name,
                st.state,
                st.pid,
                args.profile
            );
        }
    }
    let kind = choose_kind(&profile, args.kind.as_deref())?;
    let host = host_options(&args)?;
    let interactive = !args.unattended && std::io::stdin().is_terminal();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(dial(args, profile, kind, host, interactive))
}

/// The same lookup as `ras profile check`: a path, else an installed profile's name.
fn open_profile(name: &str) -> anyhow::Result<ServiceProfile> {
    Ok(profile::load(&profile::store::locate(name)?)?)
}

fn choose_kind(profile: &ServiceProfile, asked: Option<&str>) -> anyhow::Result<ConnectionKind> {
    let offered = profile.connection_kinds();
    let kind = match asked {
        Some(name) => ConnectionKind::from_name(name).with_context(|| {
            format!("unknown connection type {name:?} (direct, dial-up, double-dial)")
        })?,
        None => match profile.user.connection_kind {
            Some(k) if offered.contains(&k) => k,
            _ => *offered
                .first()
                .context("the profile offers no connection type")?,
        },
    };
    if !offered.contains(&kind) {
        let names: Vec<&str> = offered.iter().map(|k| k.name()).collect();
        bail!(
            "{} does not offer a {} connection (it offers: {})",
            profile.connection_manager.service_name,
            kind.name(),
            names.join(", ")
        );
    }
    Ok(kind)
}

fn host_options(args: &DialArgs) -> anyhow::Result<HostOptions> {
    let cidrs = |list: &[String]| -> anyhow::Result<Vec<(IpAddr, u8)>> {
        Ok(list
            .iter()
            .map(|r| routes::parse_cidr(r))
            .collect::<Result<Vec<_>, _>>()?)
    };
    let trust = match (&args.ca, &args.fingerprint) {
        (None, None) => None,
        (ca, fp) => Some(Trust::from_options(ca.as_deref(), fp.as_deref())?),
    };
    let phonebook_trust = match &args.pbs_fingerprint {
        Some(fp) => Some(phonebook::Trust::fingerprint(fp)?),
        None => None,
    };
    Ok(HostOptions {
        trust,
        routes: cidrs(&args.routes)?,
        dial_routes: cidrs(&args.dial_routes)?,
        default_route: args.default_route,
        dns: !args.no_dns,
        ipv6: !args.no_ipv6,
        dial_tun: args.dial_tun.clone(),
        vpn_tun: args.vpn_tun.clone(),
        device: args.device.clone(),
        number: args.number.clone(),
        allow_weak_auth: args.allow_weak_auth,
        attempt_timeout: Duration::from_secs(args.timeout.max(1)),
        phonebook_trust,
    })
}

fn show_status(profile: &ServiceProfile, state_file: &StateFile) -> anyhow::Result<()> {
    let name = &profile.connection_manager.service_name;
    let Some(st) = state_file.read() else {
        say!("{name}: never connected");
        return Ok(());
    };
    let running = process_alive(st.pid);
    let state = if running
        || !matches!(
            st.state.as_str(),
            "connecting" | "connected" | "disconnecting"
        ) {
        st.state.clone()
    } else {
        "disconnected (the dialer is gone)".to_string()
    };
    say!("{name}: {state} since {}", st.since);
    say!("  type: {}", st.kind);
    if !st.user.is_empty() {
        say!("  user: {}", st.user);
    }
    if running && st.state == "connected" {
        if !st.client_ip.is_empty() {
            say!("  address: {} (server {})", st.client_ip, st.server_ip);
        }
        if !st.tunnel_server.is_empty() {
            say!("  tunnel: {}", st.tunnel_server);
        }
        say!("  process: {}", st.pid);
    }
    if !st.reason.is_empty() {
        say!("  last: {}", st.reason);
    }
    Ok(())
}

fn disconnect(profile: &ServiceProfile, state_file: &StateFile) -> anyhow::Result<()> {
    let st = state_file.read().unwrap_or_default();
    if !process_alive(st.pid) || !matches!(st.state.as_str(), "connecting" | "connected") {
        bail!(
            "{} is not connected",
            profile.connection_manager.service_name
        );
    }
    // The dialer treats SIGINT as the user's Disconnect (or Cancel).
    let status = std::process::Command::new("kill")
        .args(["-INT", &st.pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("could not signal process {}", st.pid);
    }
    say!(
        "disconnecting {} (process {})",
        profile.connection_manager.service_name,
        st.pid
    );
    Ok(())
}

fn first_line(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_owned()))
}

fn prompt(question: &str) -> anyhow::Result<String> {
    eprint!("{question}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// The logon values: flags, then the `.cmp`, then the environment, then
/// prompts (only when interactive).
fn logon(args: &DialArgs, profile: &ServiceProfile, interactive: bool) -> anyhow::Result<Logon> {
    let saved = &profile.user;
    let user_name = match args.user.clone().or_else(|| saved.user_name.clone()) {
        Some(u) if !u.is_empty() => u,
        _ if interactive => prompt("User name")?,
        _ => bail!("no user name: give --user or UserName= in the .cmp"),
    };
    let password = if let Some(path) = &args.password_file {
        first_line(path)?
    } else if let Ok(pw) = std::env::var("RAS_PASSWORD") {
        Zeroizing::new(pw)
    } else if let Some(pw) = saved.password.as_ref().filter(|_| saved.remember_password) {
        Zeroizing::new(pw.0.clone())
    } else if interactive {
        Zeroizing::new(rpassword::prompt_password(format!(
            "Password for {user_name}: "
        ))?)
    } else {
        bail!("no password: give --password-file or RAS_PASSWORD (not interactive)");
    };
    let inet_password = match &args.inet_password_file {
        Some(path) => Some(first_line(path)?),
        None => None,
    };
    Ok(Logon {
        user_name,
        domain: args.domain.clone().or_else(|| saved.domain.clone()),
        password,
        inet_user_name: args
            .inet_user
            .clone()
            .or_else(|| saved.internet_user_name.clone()),
        inet_password,
    })
}

async fn dial(
    args: DialArgs,
    profile: ServiceProfile,
    kind: ConnectionKind,
    host: HostOptions,
    interactive: bool,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(watch_signals(stop_tx));
    let progress: Progress = Arc::new(|text: &str| say!("{text}"));
    let mut dialer = Dialer::new(profile.clone(), kind, interactive, progress, stop_rx);
    say!(
        "{} ({} connection); log: {}",
        profile.connection_manager.service_name,
        kind.name(),
        dialer.log.path().display()
    );
    dialer.pre_init().await?;
    let logon = logon(&args, &profile, interactive)?;
    let result = dialer.connect(&logon, &host).await;
    match result {
        Ok(Ending::Disconnected { reason }) => {
            // The logon values the user connected with are kept for the
            // next run (the .cmp is theirs after the first run).
            let mut user = profile.user.clone();
            user.user_name = Some(logon.user_name.clone());
            user.domain = logon.domain.clone();
            user.connection_kind = Some(kind);
            if let Some(d) = &host.device {
                user.device = Some(d.clone());
            }
            if let Some(n) = &host.number {
                user.phone_number = Some(n.clone());
            }
            if user != profile.user {
                if let Err(e) = profile::save_user_settings(&profile, &user) {
                    say_err!("warning: the logon values were not saved: {e}");
                }
            }
            // The dialer already said "Disconnected (<reason>)".
            let _ = reason;
            Ok(())
        }
        Ok(Ending::Cancelled) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// SIGINT or SIGTERM: the user's Cancel (while connecting) or Disconnect.
async fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say_err!("warning: cannot watch SIGINT/SIGTERM");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = stop.send(true);
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        say_err!("still disconnecting…");
    }
}
