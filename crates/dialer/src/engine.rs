//! One run of the dialer: the custom-action points in the seed's order
//! around the connection of the chosen kind.
//!
//! ```text
//! pre-init → (logon values) → pre-connect → attempt…  → post-connect → monitored
//!   attempt: [dial-up, double-dial] pre-dial → dial the access number → PPP up
//!            [direct with a tunnel, double-dial] pre-tunnel → VPN up
//!   redial:  RedialCount more attempts, RedialDelay apart
//! connected until: the user disconnects (Ctrl-C), the last monitored program
//!   exits, or the link drops → disconnect actions → close
//! failure → on-error; Ctrl-C while connecting → on-cancel
//! ```
//!
//! Seed: a failing pre-init, pre-connect, pre-dial, pre-tunnel or
//! post-connect action ends the attempt ("<Description> failed <code>");
//! failures of the others are logged. Disconnect actions run before the
//! connection is closed, and after an unexpected drop too.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use client::network::{Attachment, Connected, DnsMode, Network, NetworkError, SystemNetwork};
use client::sstp::{ConnectError, SessionEnd, UpCallback, UpStatus};
use client::target::{Protocol, Target};
use client::verify::Trust;
use profile::endpoint::ServerAddress;
use profile::model::{ActionPoint, ConnectionKind, ServiceProfile};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::action::{self, ActionError};
use crate::macros::MacroValues;
use crate::status::{utc_now, Log, State, StateFile};

/// RAS error codes used for `%ErrorCode%` (the public RAS error list).
pub mod error_codes {
    /// ERROR_USER_DISCONNECTION: the user cancelled.
    pub const USER_CANCELLED: i64 = 631;
    /// ERROR_REMOTE_DISCONNECTION / link dropped.
    pub const LINK_DROPPED: i64 = 619;
    /// ERROR_NO_ANSWER: the remote computer did not respond.
    pub const NO_ANSWER: i64 = 678;
    /// ERROR_AUTHENTICATION_FAILURE.
    pub const AUTH_FAILED: i64 = 691;
    /// ERROR_VPN_TIMEOUT / could not establish the VPN connection.
    pub const VPN_FAILED: i64 = 800;
    /// ERROR_CANNOT_FIND_PHONEBOOK_ENTRY: nothing to dial.
    pub const NOTHING_TO_DIAL: i64 = 623;
}

/// Where progress goes (the three phases of the issue, and action notes).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// What the user logs on with (after the `.cmp` values and prompts).
#[derive(Clone)]
pub struct Logon {
    /// Without realm prefix or suffix.
    pub user_name: String,
    pub domain: Option<String>,
    pub password: Zeroizing<String>,
    /// The ISP logon of a double-dial connection (else the same as above).
    pub inet_user_name: Option<String>,
    pub inet_password: Option<Zeroizing<String>>,
}

/// How links are set up on this host.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// How the VPN server's certificate is checked (SSTP).
    pub trust: Option<Trust>,
    /// Networks routed through the final link (the tunnel, or the dial-up
    /// link of a dial-up connection).
    pub routes: Vec<(IpAddr, u8)>,
    /// Extra networks routed through the dial-up link of a double-dial
    /// connection (the VPN servers given as addresses always are).
    pub dial_routes: Vec<(IpAddr, u8)>,
    /// Route everything through the final link.
    pub default_route: bool,
    pub dns: bool,
    pub ipv6: bool,
    /// TUN device names.
    pub dial_tun: String,
    pub vpn_tun: String,
    /// The serial device (overrides the `.cmp` `Device`).
    pub device: Option<String>,
    /// The number to dial (overrides the `.cmp` and the phone book).
    pub number: Option<String>,
    /// Allow CHAP-MD5 and PAP.
    pub allow_weak_auth: bool,
    /// Time limit for one connection attempt to come up.
    pub attempt_timeout: Duration,
    /// Trust for an `https` phone-book service.
    pub phonebook_trust: Option<phonebook::Trust>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Connected, then disconnected for `reason`.
    Disconnected { reason: String },
    /// The user cancelled while connecting.
    Cancelled,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("{message}")]
    Connect {
        code: i64,
        origin: String,
        message: String,
    },
}

impl DialError {
    fn code(&self) -> i64 {
        match self {
            DialError::Action(e) => e.code(),
            DialError::Connect { code, .. } => *code,
        }
    }

    fn source_name(&self) -> String {
        match self {
            DialError::Action(e) => match e {
                ActionError::Start { description, .. }
                | ActionError::Failed { description, .. } => {
                    format!("custom action {description}")
                }
            },
            DialError::Connect { origin, .. } => origin.clone(),
        }
    }
}

/// An established link: its session task and its stop switch.
struct Link {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<SessionEnd, ConnectError>>,
    up: UpStatus,
}

/// The dialer for one profile.
pub struct Dialer {
    pub profile: ServiceProfile,
    pub kind: ConnectionKind,
    pub macros: MacroValues,
    pub interactive: bool,
    pub log: Log,
    pub state_file: StateFile,
    state: State,
    progress: Progress,
    stop: watch::Receiver<bool>,
    /// Each link's session task sends its end reason here.
    ends_tx: tokio::sync::mpsc::UnboundedSender<String>,
    ends_rx: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Dialer {
    /// `stop` turns true on Ctrl-C (cancel while connecting, disconnect
    /// when connected).
    pub fn new(
        profile: ServiceProfile,
        kind: ConnectionKind,
        interactive: bool,
        progress: Progress,
        stop: watch::Receiver<bool>,
    ) -> Dialer {
        let dir = profile.files.dir.clone();
        let log = Log::new(&dir, &profile.short_name);
        let state_file = StateFile::new(&dir, &profile.short_name);
        let mut macros = MacroValues::default();
        let cm = &profile.connection_manager;
        macros.set("ServiceName", cm.service_name.clone());
        macros.set("ServiceDir", dir.display().to_string());
        let cmp = profile
            .files
            .cmp
            .clone()
            .unwrap_or_else(|| dir.join(format!("{}.cmp", profile.short_name)));
        macros.set("Profile", cmp.display().to_string());
        macros.set("UserPrefix", cm.realm.prefix.clone());
        macros.set("UserSuffix", cm.realm.suffix.clone());
        macros.set("ConnectionType", kind.macro_value().to_string());
        macros.set(
            "DialRasEntry",
            cm.dun.clone().unwrap_or_else(|| cm.service_name.clone()),
        );
        macros.set(
            "TunnelRasEntry",
            cm.tunnel_dun
                .clone()
                .unwrap_or_else(|| format!("{} Tunnel", cm.service_name)),
        );
        if let Some(pb) = profile.isp.phone_books.first() {
            macros.set("DialRasPhoneBook", dir.join(&pb.pbk).display().to_string());
        }
        if let Some(t) = &profile.files.tunnel_file {
            macros.set("TunnelRasPhoneBook", t.display().to_string());
        }
        macros.set("AutoRedial", "0");
        macros.set("Interactive", if interactive { "1" } else { "0" });
        let state = State {
            state: "starting".into(),
            pid: std::process::id(),
            kind: kind.name().into(),
            since: utc_now(),
            ..State::default()
        };
        let (ends_tx, ends_rx) = tokio::sync::mpsc::unbounded_channel();
        Dialer {
            profile,
            kind,
            macros,
            interactive,
            log,
            state_file,
            state,
            progress,
            stop,
            ends_tx,
            ends_rx,
        }
    }

    fn dir(&self) -> PathBuf {
        self.profile.files.dir.clone()
    }

    fn set_state(&mut self, state: &str) {
        self.state.state = state.into();
        self.state.since = utc_now();
        self.state_file.write(&self.state);
    }

    /// One event the user sees: one line on the terminal (the progress
    /// callback) and the same line in the log file, never twice on screen.
    fn say(&self, text: &str) {
        (self.progress)(text);
        self.log.line(text);
    }

    /// Run the actions of `point` for this connection kind, in order.
    /// With `fatal`, the first failure stops and is returned; otherwise
    /// failures are logged and the rest still run.
    pub async fn run_point(&mut self, point: ActionPoint, fatal: bool) -> Result<(), ActionError> {
        let actions: Vec<_> = self
            .profile
            .actions_for(point, self.kind)
            .cloned()
            .collect();
        let dir = self.dir();
        for a in actions {
            let description = action::description(&a);
            if a.interactive && !self.interactive {
                self.log.line(&format!(
                    "{point}: skipped {description} (it interacts with the user; this run is not interactive)"
                ));
                continue;
            }
            self.say(&format!("Running custom action {description}"));
            if point == ActionPoint::Monitored {
                unreachable!("monitored programs are started by start_monitored");
            }
            match action::run(&a, &self.macros, &dir).await {
                Ok(()) => {}
                Err(e) if fatal => {
                    // The caller shows this error once; the log keeps it.
                    self.log.line(&e.to_string());
                    return Err(e);
                }
                Err(e) => self.say(&e.to_string()),
            }
        }
        Ok(())
    }

    /// Pre-init: when the dialer starts, before the logon values.
    pub async fn pre_init(&mut self) -> Result<(), DialError> {
        self.set_state("starting");
        self.log.line(&format!(
            "starting {} ({}) as a {} connection",
            self.profile.connection_manager.service_name,
            self.profile.short_name,
            self.kind.name()
        ));
        if let Err(e) = self.run_point(ActionPoint::PreInit, true).await {
            let e = DialError::Action(e);
            self.fail(&e).await;
            return Err(e);
        }
        Ok(())
    }

    /// Everything after the logon: connect (with redials), post-connect,
    /// monitored programs, wait, disconnect.
    pub async fn connect(
        &mut self,
        logon: &Logon,
        host: &HostOptions,
    ) -> Result<Ending, DialError> {
        self.macros.set("UserName", logon.user_name.clone());
        match &logon.domain {
            Some(d) => self.macros.set("Domain", d.clone()),
            None => self.macros.clear("Domain"),
        }
        let inet = logon
            .inet_user_name
            .clone()
            .unwrap_or_else(|| logon.user_name.clone());
        self.macros.set("InetUserName", inet);
        self.state.user = logon.user_name.clone();
        self.set_state("connecting");
        if let Err(e) = self.run_point(ActionPoint::PreConnect, true).await {
            let e = DialError::Action(e);
            self.fail(&e).await;
            return Err(e);
        }
        let attempts = 1 + self.profile.connection_manager.redial_count;
        let delay = Duration::from_secs(self.profile.connection_manager.redial_delay_secs.into());
        let mut links = Vec::new();
        for attempt in 0..attempts {
            self.macros
                .set("AutoRedial", if attempt > 0 { "1" } else { "0" });
            if attempt > 0 {
                self.log
                    .line(&format!("redial {attempt} of {}", attempts - 1));
            }
            match self.attempt(logon, host, &mut links).await {
                Ok(()) => break,
                Err(AttemptError::Cancelled) => {
                    close_all(&mut links).await;
                    return self.cancelled().await;
                }
                Err(AttemptError::Failed(e, retry)) => {
                    close_all(&mut links).await;
                    if !retry || attempt + 1 == attempts {
                        // The caller shows this error once; the log keeps it.
                        self.log.line(&e.to_string());
                        self.fail(&e).await;
                        return Err(e);
                    }
                    self.say(&format!("{e}; redialing in {} seconds", delay.as_secs()));
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|v| *v) => return self.cancelled().await,
                    }
                }
            }
        }

        // Connected.
        let last = links.last().map(|l| l.up.clone());
        if let Some(up) = &last {
            if let Some((local, peer)) = up.link.ipv4 {
                self.macros.set("ClientIPAddress", local.to_string());
                self.macros.set("ServerIPAddress", peer.to_string());
                self.state.client_ip = local.to_string();
                self.state.server_ip = peer.to_string();
            }
        }
        self.set_state("connected");
        self.say("Connected");
        self.update_phonebook(host).await;
        if let Err(e) = self.run_point(ActionPoint::PostConnect, true).await {
            let e = DialError::Action(e);
            close_all(&mut links).await;
            self.fail(&e).await;
            return Err(e);
        }
        let monitored = self.start_monitored();
        let had_monitored = !monitored.is_empty();
        let all_exited = async move {
            if !had_monitored {
                return std::future::pending().await;
            }
            for mut child in monitored {
                let _ = child.wait().await;
            }
        };
        // Ends of links that failed while connecting are not drops.
        while self.ends_rx.try_recv().is_ok() {}
        let ends_rx = &mut self.ends_rx;
        let dropped = async move {
            match ends_rx.recv().await {
                Some(why) => why,
                None => std::future::pending().await,
            }
        };
        let mut stop = self.stop.clone();
        // The profile's IdleTimeout watches the outermost interface the
        // user's traffic crosses: the VPN's, or the dial-up line's.
        let idle_minutes = self.profile.connection_manager.idle_timeout_minutes;
        let idle_tun = match self.kind {
            ConnectionKind::DialUp => host.dial_tun.clone(),
            _ => host.vpn_tun.clone(),
        };
        let idle = idle_watch(idle_tun, Duration::from_secs(u64::from(idle_minutes) * 60));
        let reason = tokio::select! {
            _ = stop.wait_for(|v| *v) => Reason::User,
            _ = all_exited => Reason::Monitored,
            why = dropped => Reason::Dropped(why),
            _ = idle, if idle_minutes > 0 => Reason::Idle(idle_minutes),
        };
        let text = match &reason {
            Reason::User => "disconnected by the user".to_string(),
            Reason::Idle(m) => format!("idle for {m} minute(s) (IdleTimeout)"),
            Reason::Monitored => "the last monitored program exited".to_string(),
            Reason::Dropped(why) => format!("the connection dropped: {why}"),
        };
        self.log.line(&text);
        self.set_state("disconnecting");
        if let Reason::Dropped(_) = reason {
            // Seed: disconnect actions run even if Connection Manager did
            // not initiate the disconnection, after the fact.
            close_all(&mut links).await;
            self.macros
                .set("ErrorCode", error_codes::LINK_DROPPED.to_string());
            self.macros.set("LastErrorSource", "connection");
            let _ = self.run_point(ActionPoint::Disconnect, false).await;
        } else {
            let _ = self.run_point(ActionPoint::Disconnect, false).await;
            close_all(&mut links).await;
        }
        self.state.reason = text.clone();
        self.set_state("disconnected");
        self.say(&format!("Disconnected ({text})"));
        Ok(Ending::Disconnected { reason: text })
    }

    async fn cancelled(&mut self) -> Result<Ending, DialError> {
        self.macros
            .set("ErrorCode", error_codes::USER_CANCELLED.to_string());
        self.macros.set("LastErrorSource", "user");
        self.log.line("cancelled by the user while connecting");
        let _ = self.run_point(ActionPoint::OnCancel, false).await;
        self.state.reason = "cancelled".into();
        self.set_state("disconnected");
        self.say("Cancelled");
        Ok(Ending::Cancelled)
    }

    /// On-error actions with `%ErrorCode%` and `%LastErrorSource%` set.
    async fn fail(&mut self, e: &DialError) {
        self.macros.set("ErrorCode", e.code().to_string());
        self.macros.set("LastErrorSource", e.source_name());
        let _ = self.run_point(ActionPoint::OnError, false).await;
        self.state.reason = e.to_string();
        self.set_state("failed");
    }

    fn start_monitored(&mut self) -> Vec<tokio::process::Child> {
        let actions: Vec<_> = self
            .profile
            .actions_for(ActionPoint::Monitored, self.kind)
            .cloned()
            .collect();
        let dir = self.dir();
        let mut children = Vec::new();
        for a in actions {
            let description = action::description(&a);
            if a.interactive && !self.interactive {
                self.log
                    .line(&format!("monitored: skipped {description} (interactive)"));
                continue;
            }
            match action::start_monitored(&a, &self.macros, &dir) {
                Ok(child) => {
                    self.say(&format!("Running custom action {description}"));
                    children.push(child);
                }
                Err(e) => self.say(&e.to_string()),
            }
        }
        children
    }

    /// The built-in "Automatically download phone-book updates" action:
    /// the first post-connect action when the profile names a service
    /// (seed step 7.6). A failure is logged; the connection stays.
    async fn update_phonebook(&mut self, host: &HostOptions) {
        let Some(pb) = self.profile.isp.phone_books.first().cloned() else {
            return;
        };
        let Some(url) = pb.url.clone().filter(|u| !u.trim().is_empty()) else {
            return;
        };
        // The PBURL is given as written: CMAK's form names the service DLL
        // (`http://server/pbserver/pbserver.dll`) and the update accepts it
        // as well as a base URL (`phonebook::http::ServiceUrl::parse_service`).
        let name = Path::new(&pb.pbk)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.dir();
        let version = phonebook::update::local_version(&dir, &name)
            .max(self.profile.connection_manager.phonebook_version);
        let trust = host
            .phonebook_trust
            .clone()
            .unwrap_or(phonebook::Trust::Roots(Vec::new()));
        self.say("Running custom action Automatically download phone-book updates");
        match phonebook::update_profile_phonebook(&url, &name, &dir, version, &trust).await {
            Ok(outcome) => self.log.line(&format!("phone book {name}: {outcome}")),
            Err(e) => self.say(&format!("phone-book update failed: {e}")),
        }
    }

    /// One attempt: the links of this connection kind, in order.
    async fn attempt(
        &mut self,
        logon: &Logon,
        host: &HostOptions,
        links: &mut Vec<Link>,
    ) -> Result<(), AttemptError> {
        let dial = matches!(
            self.kind,
            ConnectionKind::DialUp | ConnectionKind::DoubleDial
        );
        let tunnel = match self.kind {
            ConnectionKind::DialUp => false,
            ConnectionKind::DoubleDial => true,
            ConnectionKind::Direct => self.profile.connection_manager.tunnel,
        };
        if !dial && !tunnel {
            // A direct connection is a tunnel over the network already there:
            // without one there is nothing to connect, and saying "Connected"
            // would report a connection that does not exist.
            return Err(AttemptError::Failed(
                DialError::Connect {
                    code: error_codes::NOTHING_TO_DIAL,
                    origin: "connection".into(),
                    message: format!(
                        "{} has no VPN server (Tunnel=0): a direct connection has nothing to connect to",
                        self.profile.connection_manager.service_name
                    ),
                },
                false,
            ));
        }
        self.say("Connecting");
        if dial {
            // The POP is chosen before pre-dial, so %PopName% is known there.
            let number = self.access_number(host);
            self.run_point(ActionPoint::PreDial, true)
                .await
                .map_err(|e| AttemptError::Failed(e.into(), false))?;
            let link = self.dial_up(logon, host, number, tunnel).await?;
            links.push(link);
        }
        if tunnel {
            // The server about to be tried is known to pre-tunnel actions.
            if let Some(first) = self.profile.vpn.servers.first() {
                let host = host_part(&first.address);
                self.macros.set("TunnelServerAddress", host);
            }
            self.run_point(ActionPoint::PreTunnel, true)
                .await
                .map_err(|e| AttemptError::Failed(e.into(), false))?;
            let link = self.tunnel(logon, host).await?;
            links.push(link);
        }
        Ok(())
    }

    /// The access number: given, from the `.cmp`, or the first POP of the
    /// profile's phone book that passes its first service-type filter.
    fn access_number(&mut self, host: &HostOptions) -> Option<String> {
        if let Some(n) = host
            .number
            .clone()
            .or_else(|| self.profile.user.phone_number.clone())
        {
            return Some(n);
        }
        let pb = self.profile.isp.phone_books.first()?;
        let text = std::fs::read(self.profile.files.dir.join(&pb.pbk)).ok()?;
        let pops = phonebook::pbk::read_pbk(&String::from_utf8_lossy(&text)).pops;
        let filter = self
            .profile
            .service_types
            .first()
            .and_then(|t| self.profile.isp.filters.iter().find(|f| f.name == t.filter));
        let pop = pops
            .iter()
            .find(|p| filter.is_none_or(|f| f.matches(p.flags.0)))?;
        self.macros.set("PopName", pop.name.clone());
        Some(if pop.area_code.is_empty() {
            pop.access_number.clone()
        } else {
            format!("{} {}", pop.area_code, pop.access_number)
        })
    }

    async fn dial_up(
        &mut self,
        logon: &Logon,
        host: &HostOptions,
        number: Option<String>,
        tunnel_follows: bool,
    ) -> Result<Link, AttemptError> {
        let nothing = |m: String| {
            AttemptError::Failed(
                DialError::Connect {
                    code: error_codes::NOTHING_TO_DIAL,
                    origin: "dial-up".into(),
                    message: m,
                },
                false,
            )
        };
        let device = host
            .device
            .clone()
            .or_else(|| self.profile.user.device.clone())
            .ok_or_else(|| {
                nothing(
                    "no serial device for dial-up (give --device or Device= in the .cmp)".into(),
                )
            })?;
        let mut text = format!("serial://{device}");
        if let Some(n) = &number {
            let clean: String = n
                .chars()
                .filter(|c| c.is_ascii_digit() || " -()*#+,TtPpWw".contains(*c))
                .collect();
            text.push_str(&format!("?number={clean}"));
        }
        let target = Target::parse(&text).map_err(|e| nothing(e.to_string()))?;
        self.log.line(&format!(
            "dialing {} on {device}",
            number.as_deref().unwrap_or("(no number: null-modem line)")
        ));
        let (user, password) = if tunnel_follows {
            // The ISP logon of a double-dial connection.
            let user = if self.profile.connection_manager.use_same_user_name {
                self.full_user_name(logon)
            } else {
                logon
                    .inet_user_name
                    .clone()
                    .unwrap_or_else(|| self.full_user_name(logon))
            };
            let pw = logon
                .inet_password
                .clone()
                .unwrap_or_else(|| logon.password.clone());
            (user, pw)
        } else {
            (self.full_user_name(logon), logon.password.clone())
        };
        let mut options = client::serial::SerialOptions::new(target, &user, password);
        options.allow_weak_auth = host.allow_weak_auth;
        options.ipv6 = host.ipv6;
        let mut routes = host.dial_routes.clone();
        let mut default_route = false;
        if tunnel_follows {
            // The VPN servers are reached through the dial-up link.
            for server in &self.profile.vpn.servers {
                match host_part(&server.address).parse::<IpAddr>() {
                    Ok(ip) => routes.push((ip, if ip.is_ipv4() { 32 } else { 128 })),
                    Err(_) => default_route = true,
                }
            }
        } else {
            routes.extend(host.routes.iter().copied());
            default_route = host.default_route;
        }
        let network = self.network(
            &host.dial_tun,
            routes,
            default_route,
            host.dns && !tunnel_follows,
        );
        let progress = self.progress.clone();
        let log = self.log.clone();
        let (link, up) = self
            .start_link(
                "dial-up",
                error_codes::NO_ANSWER,
                host.attempt_timeout,
                move |on_up, stop| {
                    options.on_up = Some(on_up);
                    options.on_connected = Some(verifying(progress, log));
                    async move { client::serial::connect(&options, network, stop).await }
                },
            )
            .await?;
        self.log.line(&format!("dial-up link up: {}", up.link));
        Ok(link)
    }

    async fn tunnel(&mut self, logon: &Logon, host: &HostOptions) -> Result<Link, AttemptError> {
        let servers = self.profile.vpn.servers.clone();
        let protocols = self.profile.vpn.protocols.clone();
        // Several protocols: the one that last worked first (remembered.rs).
        let memory = crate::remembered::ProtocolMemory::new(&self.dir(), &self.profile.short_name);
        let ordered = crate::remembered::order(&protocols, memory.read());
        if protocols.len() > 1 && ordered != protocols {
            self.log.line(&format!(
                "trying {} first: it worked last time",
                crate::remembered::scheme(ordered[0])
            ));
        }
        let user = self.full_user_name(logon);
        // The first real cause of failure is what the user is told; later
        // tries (another protocol, another server) rarely explain more.
        let mut first: Option<String> = None;
        let mut tries = 0usize;
        for server in &servers {
            let address = match ServerAddress::parse(&server.address) {
                Ok(a) => a,
                Err(e) => {
                    let why = format!("VPN server {}: {e}", server.name);
                    self.log.line(&why);
                    first.get_or_insert(why);
                    continue;
                }
            };
            for protocol in &ordered {
                let scheme = crate::remembered::scheme(*protocol);
                // Each protocol on its own port (profile::endpoint): a port
                // written for SSTP is never tried with PPTP.
                let Some((host_name, port)) = address.endpoint(*protocol, &protocols) else {
                    continue;
                };
                let host_text = if host_name.contains(':') {
                    format!("[{host_name}]")
                } else {
                    host_name
                };
                tries += 1;
                let target = match Target::parse(&format!("{scheme}://{host_text}:{port}")) {
                    Ok(t) => t,
                    Err(e) => {
                        let why = format!("{scheme}://{host_text}:{port}: {e}");
                        self.log.line(&why);
                        first.get_or_insert(why);
                        continue;
                    }
                };
                self.macros.set("TunnelServerAddress", target.host.clone());
                self.state.tunnel_server = target.to_string();
                self.log.line(&format!("tunnel to {target}"));
                let network = self.network(
                    &host.vpn_tun,
                    host.routes.clone(),
                    host.default_route,
                    host.dns,
                );
                let progress = self.progress.clone();
                let log = self.log.clone();
                let result = match target.protocol {
                    Protocol::Sstp => {
                        let Some(trust) = host.trust.clone() else {
                            let why = format!("{target}: no way to check the server certificate (give --ca or --fingerprint)");
                            self.log.line(&why);
                            first.get_or_insert(why);
                            continue;
                        };
                        let mut options = client::sstp::SstpOptions::new(
                            target.clone(),
                            &user,
                            logon.password.clone(),
                            trust,
                        );
                        options.allow_weak_auth = host.allow_weak_auth;
                        options.ipv6 = host.ipv6;
                        self.start_link(
                            "tunnel",
                            error_codes::VPN_FAILED,
                            host.attempt_timeout,
                            move |on_up, stop| {
                                options.on_up = Some(on_up);
                                options.on_connected = Some(verifying(progress, log));
                                async move { client::sstp::connect(&options, network, stop).await }
                            },
                        )
                        .await
                    }
                    Protocol::Ikev2 => {
                        // As Windows' IKEv2 VPN type: the server's certificate
                        // (RFC 7296 §2.15, checked against --ca and the name
                        // dialled), then EAP-MSCHAPv2 (§2.16) with the logon.
                        let trust = match &host.trust {
                            Some(Trust::Ca(cas)) => {
                                let ders = cas.iter().map(|c| c.as_ref().to_vec()).collect();
                                match ipsec::ikev1::certificates::TrustAnchors::new(ders) {
                                    Ok(anchors) => ipsec::ikev2::ServerTrust::new(
                                        anchors,
                                        Some(target.host.clone()),
                                    ),
                                    Err(e) => {
                                        let why = format!("{target}: the CA certificates: {e}");
                                        self.log.line(&why);
                                        first.get_or_insert(why);
                                        continue;
                                    }
                                }
                            }
                            _ => {
                                let why = format!("{target}: IKEv2 checks the server certificate against a CA (give --ca; a --fingerprint pin is for SSTP)");
                                self.log.line(&why);
                                first.get_or_insert(why);
                                continue;
                            }
                        };
                        let options = client::ikev2::Ikev2Options {
                            target: target.clone(),
                            login: tunnel::ikev2_client::Ikev2Login::EapMsChapV2 {
                                user: user.clone(),
                                password: logon.password.clone(),
                            },
                            identity: user.clone(),
                            trust: Some(trust),
                            esp_suites: Vec::new(),
                            force_udp_encapsulation: false,
                            connect_timeout: host.attempt_timeout,
                            on_up: None,
                        };
                        self.start_link(
                            "tunnel",
                            error_codes::VPN_FAILED,
                            host.attempt_timeout,
                            move |on_up, stop| {
                                let mut options = options;
                                options.on_up = Some(on_up);
                                async move { client::ikev2::connect(&options, network, stop).await }
                            },
                        )
                        .await
                    }
                    Protocol::L2tp => {
                        // L2TP/IPsec with the profile's pre-shared key (ours:
                        // `PresharedKey`); never plain L2TP from a profile.
                        let Some(key) = &self.profile.vpn.preshared_key else {
                            let why = format!("{target}: the profile has no pre-shared key for L2TP/IPsec (PresharedKey)");
                            self.log.line(&why);
                            first.get_or_insert(why);
                            continue;
                        };
                        let psk = Zeroizing::new(key.0.as_bytes().to_vec());
                        let mut options = client::l2tp::L2tpOptions::new(
                            target.clone(),
                            &user,
                            logon.password.clone(),
                            Some(psk),
                        );
                        options.allow_weak_auth = host.allow_weak_auth;
                        options.ipv6 = host.ipv6;
                        self.start_link(
                            "tunnel",
                            error_codes::VPN_FAILED,
                            host.attempt_timeout,
                            move |on_up, stop| {
                                options.on_up = Some(on_up);
                                options.on_connected = Some(verifying(progress, log));
                                async move { client::l2tp::connect(&options, network, stop).await }
                            },
                        )
                        .await
                    }
                    _ => {
                        let mut options = client::pptp::PptpOptions::new(
                            target.clone(),
                            &user,
                            logon.password.clone(),
                        );
                        options.ipv6 = host.ipv6;
                        self.start_link(
                            "tunnel",
                            error_codes::VPN_FAILED,
                            host.attempt_timeout,
                            move |on_up, stop| {
                                options.on_up = Some(on_up);
                                options.on_connected = Some(verifying(progress, log));
                                async move { client::pptp::connect(&options, network, stop).await }
                            },
                        )
                        .await
                    }
                };
                match result {
                    Ok((link, up)) => {
                        self.log.line(&format!("tunnel up: {}", up.link));
                        if protocols.len() > 1 {
                            if let Err(e) = memory.write(*protocol) {
                                self.say(&format!(
                                    "warning: cannot remember {scheme} for the next connection in {}: {e}",
                                    memory.path().display()
                                ));
                            }
                        }
                        return Ok(link);
                    }
                    Err(AttemptError::Failed(e, retry)) => {
                        let why = format!("{target}: {e}");
                        self.log.line(&why);
                        if !retry {
                            // Wrong password: the next server will not take it either.
                            return Err(AttemptError::Failed(e, false));
                        }
                        first.get_or_insert(why);
                    }
                    Err(AttemptError::Cancelled) => return Err(AttemptError::Cancelled),
                }
            }
        }
        Err(AttemptError::Failed(
            DialError::Connect {
                code: error_codes::VPN_FAILED,
                origin: "tunnel".into(),
                message: match (first, tries) {
                    (Some(why), 0 | 1) => format!("no VPN server could be reached: {why}"),
                    (Some(why), n) => {
                        format!(
                            "no VPN server could be reached ({n} tries; the first failed): {why}"
                        )
                    }
                    (None, _) => {
                        "no VPN server to try: the profile's servers and protocols do not match"
                            .into()
                    }
                },
            },
            true,
        ))
    }

    fn full_user_name(&self, logon: &Logon) -> String {
        let name = match &logon.domain {
            Some(d) if !d.is_empty() => format!("{d}\\{}", logon.user_name),
            _ => logon.user_name.clone(),
        };
        self.profile.full_user_name(&name)
    }

    fn network(
        &self,
        tun: &str,
        routes: Vec<(IpAddr, u8)>,
        default_route: bool,
        dns: bool,
    ) -> Arc<dyn Network> {
        let dns = if dns {
            DnsMode::Apply(client::dns::DnsBackend::detect())
        } else {
            DnsMode::Off
        };
        Arc::new(Registering {
            inner: SystemNetwork {
                tun_name: tun.to_owned(),
                routes,
                default_route,
                dns,
                dns_suffixes: Vec::new(),
            },
            progress: self.progress.clone(),
            log: self.log.clone(),
        })
    }

    /// Start one link's session task and wait until it is up, failed, or
    /// the user cancels.
    async fn start_link<F, Fut>(
        &mut self,
        source: &str,
        code: i64,
        limit: Duration,
        start: F,
    ) -> Result<(Link, UpStatus), AttemptError>
    where
        F: FnOnce(UpCallback, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = Result<SessionEnd, ConnectError>> + Send + 'static,
    {
        let (up_tx, mut up_rx) = watch::channel::<Option<UpStatus>>(None);
        let on_up: UpCallback = Arc::new(move |s: &UpStatus| {
            let _ = up_tx.send(Some(s.clone()));
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let fut = start(on_up, stop_rx);
        let ends = self.ends_tx.clone();
        let mut task = tokio::spawn(async move {
            let result = fut.await;
            let why = match &result {
                Ok(end) => end.reason.clone(),
                Err(e) => e.to_string(),
            };
            let _ = ends.send(why);
            result
        });
        let mut user_stop = self.stop.clone();
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        let failed = |message: String, retry: bool, code: i64| {
            AttemptError::Failed(
                DialError::Connect {
                    code,
                    origin: source.to_owned(),
                    message,
                },
                retry,
            )
        };
        loop {
            tokio::select! {
                changed = up_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let up = up_rx.borrow().clone();
                    if let Some(up) = up {
                        return Ok((Link { stop: stop_tx, task, up: up.clone() }, up));
                    }
                }
                result = &mut task => {
                    return Err(match result {
                        Ok(Err(e)) => {
                            let code = match &e {
                                ConnectError::Auth { code: Some(c), .. } => i64::from(*c),
                                ConnectError::Auth { .. } => error_codes::AUTH_FAILED,
                                _ => code,
                            };
                            failed(format!("{source}: {e}"), !e.is_permanent(), code)
                        }
                        Ok(Ok(end)) => failed(format!("{source}: ended before it was up: {}", end.reason), true, code),
                        Err(e) => failed(format!("{source}: {e}"), false, code),
                    });
                }
                _ = &mut deadline => {
                    let _ = stop_tx.send(true);
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut task).await;
                    task.abort();
                    return Err(failed(format!("{source}: not up within {} seconds", limit.as_secs()), true, code));
                }
                _ = user_stop.wait_for(|v| *v) => {
                    let _ = stop_tx.send(true);
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut task).await;
                    task.abort();
                    return Err(AttemptError::Cancelled);
                }
            }
        }
    }
}

enum AttemptError {
    /// The error, and whether a redial may help.
    Failed(DialError, bool),
    Cancelled,
}

enum Reason {
    User,
    /// No traffic for the profile's IdleTimeout (minutes).
    Idle(u32),
    Monitored,
    Dropped(String),
}

/// The interface's octet counters (rx + tx) from sysfs; `None` when it is
/// gone.
fn interface_octets(tun: &str) -> Option<u64> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/class/net/{tun}/statistics/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(read("rx_bytes")? + read("tx_bytes")?)
}

/// Resolves once `tun` has carried no traffic for `limit`.
async fn idle_watch(tun: String, limit: Duration) {
    let step = (limit / 4).clamp(Duration::from_millis(200), Duration::from_secs(15));
    let mut last = interface_octets(&tun);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(step).await;
        let now = interface_octets(&tun);
        if now != last {
            last = now;
            quiet_since = tokio::time::Instant::now();
        } else if quiet_since.elapsed() >= limit {
            return;
        }
    }
}

/// Stop every link, the last (inner) first, and wait for each to say
/// goodbye (bounded).
async fn close_all(links: &mut Vec<Link>) {
    while let Some(mut link) = links.pop() {
        let _ = link.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(8), &mut link.task)
            .await
            .is_err()
        {
            link.task.abort();
        }
    }
}

/// A server address's host ("sstp://host:port", "host:port", "[v6]:port"
/// → "host", IPv6 bare).
fn host_part(address: &str) -> String {
    ServerAddress::parse(address).map_or_else(|_| address.to_owned(), |a| a.host)
}

/// The host side, announcing the third phase when it starts.
/// The second of the three phases, shown when the server is reached and
/// PPP starts (before that it is still "Connecting").
fn verifying(progress: Progress, log: Log) -> client::sstp::ConnectedCallback {
    Arc::new(move || {
        progress("Verifying user name and password");
        log.line("Verifying user name and password");
    })
}

struct Registering {
    inner: SystemNetwork,
    progress: Progress,
    log: Log,
}

impl Network for Registering {
    fn attach(&self, link: &Connected) -> Result<Attachment, NetworkError> {
        (self.progress)("Registering your computer on the network");
        self.log.line("Registering your computer on the network");
        self.inner.attach(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_strips_ports() {
        assert_eq!(host_part("10.0.0.1:443"), "10.0.0.1");
        assert_eq!(host_part("vpn.example.com"), "vpn.example.com");
        assert_eq!(host_part("[fd00::1]:443"), "fd00::1");
        assert_eq!(host_part("fd00::1"), "fd00::1");
        assert_eq!(host_part("pptp://vpn.example:1724"), "vpn.example");
    }
}

#[cfg(test)]
mod idle_tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_interface_is_idle_after_the_limit_and_not_before() {
        // An interface that does not exist never changes: silent.
        let limit = Duration::from_millis(800);
        let started = tokio::time::Instant::now();
        idle_watch("ras-no-such0".into(), limit).await;
        let took = started.elapsed();
        assert!(took >= limit, "idle after {took:?}, before the limit");
        assert!(took < limit * 3, "idle only after {took:?}");
        assert_eq!(interface_octets("ras-no-such0"), None);
        assert!(interface_octets("lo").is_some(), "lo has counters");
    }
}
