//! Reload (SIGHUP, `ras server reload`, `POST /v1/reload`): the
//! configuration file read again and checked as `ras server --check`
//! checks it, compared with the running one (reload_plan.rs), every new
//! part built, and only then swapped in. Any error swaps nothing: the
//! server keeps running the previous configuration and the log says why.
//!
//! Running sessions keep what they were given (their address, DNS and
//! WINS, policy decision, and the certificate their TLS connection was
//! served, which their SSTP crypto binding hashes); new sessions get the
//! new configuration.
//!
//! Users need no reload: the local user store is read on every
//! authentication (`LocalAuthenticator`), so `ras user` changes apply to
//! the next login at once.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};

use crate::admin_snapshot::CertificateView;
use crate::cert::ServerCertificate;
use crate::config::{error_at_key, Config, ConfigError};
use crate::pool::StaticPool;
use crate::radius_io::RadiusHandle;
use crate::reload_plan::{self, ReloadPlan};
use crate::session_settings::{SessionSettings, SharedSessionSettings};
use crate::sstp_service::SstpCertified;
use crate::state::StateDir;
use tunnel::l2tp_ipsec::IkeConfigs;

/// What stands for the file when there is none (embedded defaults).
const NO_FILE: &str = "(embedded defaults)";

/// A reload's result, as `POST /v1/reload` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// The new configuration is running.
    pub ok: bool,
    /// What changed, one phrase each (empty: nothing changed, or refused).
    pub changed: Vec<String>,
    /// Why it was refused: `<file>:<line>: <key>: <why>`.
    pub error: Option<String>,
}

impl ReloadOutcome {
    /// The log line.
    pub fn log_line(&self) -> String {
        match (&self.error, self.changed.is_empty()) {
            (Some(e), _) => {
                format!("reload refused: {e}; still running the previous configuration")
            }
            (None, true) => "reload: nothing changed".to_owned(),
            (None, false) => format!("reload: {}", self.changed.join(", ")),
        }
    }
}

/// The parts of the running server a reload swaps.
pub struct ReloadTargets {
    pub sstp: Arc<ArcSwap<SstpCertified>>,
    pub settings: SharedSessionSettings,
    pub pool: Arc<StaticPool>,
    /// Routes for added pool ranges (`None`: tests, or DHCP).
    pub tun: Option<Arc<netdev::TunDevice>>,
    /// What the admin API shows of the certificate.
    pub certificate_view: Arc<ArcSwapOption<CertificateView>>,
    pub state: StateDir,
    /// The RADIUS clients, when RADIUS is on.
    pub radius: Option<RadiusTargets>,
    /// The IKE front end, when `[ipsec]` is on.
    pub ike: Option<IkeTargets>,
    /// The admin HTTPS listener's TLS, when `[admin] listen` is set.
    pub admin_tls: Option<crate::admin_https::SharedTls>,
    /// Told after each reload, when `[certificate.acme]` is on: the ACME
    /// task checks the certificate at once (acme.rs).
    pub acme_check: Option<Arc<tokio::sync::Notify>>,
}

/// What the IKE responders' settings are made from, and where new ones go.
pub struct IkeTargets {
    /// The wildcard pre-shared key (loaded once at start).
    pub psk: zeroize::Zeroizing<Vec<u8>>,
    pub reconfigure: tokio::sync::mpsc::UnboundedSender<IkeConfigs>,
}

/// What uses the RADIUS servers.
pub struct RadiusTargets {
    pub auth: Arc<crate::radius_auth::RadiusAuth>,
    pub accounting: Option<Arc<crate::accounting::Accounting>>,
    /// What the admin API shows of them.
    pub view: Arc<ArcSwap<Vec<(&'static str, RadiusHandle)>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// New RADIUS clients, started before the swap.
struct NewRadius {
    auth: RadiusHandle,
    accounting: Option<RadiusHandle>,
}

/// The running configuration and what it was read from.
struct Running {
    config: Config,
    /// The CRLs in force (what `crl.rs` installed from this config).
    crls: ipsec::ikev1::revocation::CrlSet,
    text: String,
    fingerprint: String,
}

/// What a reload observer is told: a reload starts, or it ended so.
pub enum ReloadEvent<'a> {
    Started,
    Finished(&'a ReloadOutcome),
}

/// Told of every reload, from SIGHUP and the admin API alike (the
/// metrics, systemd's RELOADING=1/READY=1).
pub type ReloadObserver = Box<dyn Fn(ReloadEvent<'_>) + Send + Sync>;

/// Reloads the configuration file into the running server.
pub struct Reloader {
    file: Option<PathBuf>,
    /// Held through a whole reload: two at once would both compare with
    /// the same old configuration.
    running: Mutex<Running>,
    targets: ReloadTargets,
    observers: Mutex<Vec<ReloadObserver>>,
}

/// A new certificate, ready for every service that presents it.
struct NewCertificate {
    cert: ServerCertificate,
    sstp: SstpCertified,
    /// The IKE responders' settings with it (`None`: `[ipsec]` is off).
    ike: Option<IkeConfigs>,
}

/// Everything built before the swap.
struct Prepared {
    config: Config,
    text: String,
    plan: ReloadPlan,
    certificate: Option<NewCertificate>,
    policies: Option<Arc<policy::PolicySet>>,
    radius: Option<NewRadius>,
    /// The CRLs read again (swapped if they differ).
    crls: ipsec::ikev1::revocation::CrlSet,
}

impl Reloader {
    /// A reloader for the server started with `config` from `file`
    /// (`None`: the embedded defaults), whose certificate has
    /// `fingerprint`.
    pub fn new(
        file: Option<&Path>,
        config: &Config,
        fingerprint: String,
        targets: ReloadTargets,
    ) -> Reloader {
        let text = file
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        Reloader {
            file: file.map(Path::to_owned),
            running: Mutex::new(Running {
                // The server installed these at start (a bad file stopped
                // it there).
                crls: crate::crl::load(&config.certificate).unwrap_or_default(),
                config: config.clone(),
                text,
                fingerprint,
            }),
            targets,
            observers: Mutex::new(Vec::new()),
        }
    }

    /// Adds an observer of every later reload.
    pub fn observe(&self, observer: ReloadObserver) {
        self.observers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn tell(&self, event: ReloadEvent<'_>) {
        for observer in self
            .observers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            observer(match &event {
                ReloadEvent::Started => ReloadEvent::Started,
                ReloadEvent::Finished(o) => ReloadEvent::Finished(o),
            });
        }
    }

    /// Reads the file again and swaps in what changed, or nothing; logs
    /// one line either way. Blocking (files, `ip route`): call it from a
    /// blocking task.
    pub fn reload(&self) -> ReloadOutcome {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        self.tell(ReloadEvent::Started);
        let outcome = match self
            .prepare(&running)
            .and_then(|p| self.apply(p, &mut running))
        {
            Ok(changed) => ReloadOutcome {
                ok: true,
                changed,
                error: None,
            },
            Err(e) => ReloadOutcome {
                ok: false,
                changed: Vec::new(),
                error: Some(refusal_words(&e)),
            },
        };
        if outcome.ok {
            tracing::info!("{}", outcome.log_line());
        } else {
            tracing::warn!("{}", outcome.log_line());
        }
        if let Some(check) = &self.targets.acme_check {
            check.notify_one();
        }
        self.tell(ReloadEvent::Finished(&outcome));
        outcome
    }

    /// Swaps in the certificate the running configuration names, if it
    /// is not the one served (the ACME task's renewal, acme.rs): the same
    /// swap as a reload's, without reading the file. Whether it swapped.
    /// Blocking: call it from a blocking task.
    pub fn refresh_certificate(&self) -> Result<bool, ConfigError> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let config = running.config.clone();
        let text = running.text.clone();
        let path = self.shown_path();
        let at = |key: &str, message: String| error_at_key(&text, &path, key, message);
        match self.build_certificate(&config, &running.fingerprint, &at)? {
            Some(new) => {
                self.swap_certificate(new, &config, &mut running);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn shown_path(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| PathBuf::from(NO_FILE))
    }

    /// The new configuration checked, compared and built; nothing
    /// touched.
    fn prepare(&self, running: &Running) -> Result<Prepared, ConfigError> {
        let path = self.shown_path();
        let config = crate::config_check::check(self.file.as_deref())?;
        let text = match &self.file {
            Some(f) => std::fs::read_to_string(f).map_err(|source| ConfigError::Io {
                path: f.clone(),
                source,
            })?,
            None => String::new(),
        };
        let plan = reload_plan::plan(&running.config, &config, &running.text, &text, &path)?;
        let at = |key: &str, message: String| error_at_key(&text, &path, key, message);

        let certificate = self.build_certificate(&config, &running.fingerprint, &at)?;
        // Checked by `check` above; read again here so that the set
        // swapped is the one checked with this configuration.
        let crls = crate::crl::load(&config.certificate)
            .map_err(|e| at("certificate.crl_files", e.to_string()))?;

        let policies = match &plan.policies {
            Some(_) => Some(Arc::new(config.policy_set().map_err(|e| at("policy", e))?)),
            None => None,
        };
        let radius = match (&plan.radius, &self.targets.radius) {
            (Some(_), Some(targets)) => Some(self.start_radius(&config, targets, &at)?),
            _ => None,
        };
        Ok(Prepared {
            config,
            text,
            plan,
            certificate,
            policies,
            radius,
            crls,
        })
    }

    /// The certificate `config` names, ready for every service, if it is
    /// not the one with `running_fingerprint`.
    fn build_certificate(
        &self,
        config: &Config,
        running_fingerprint: &str,
        at: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<Option<NewCertificate>, ConfigError> {
        // The certificate, compared by its fingerprint: the same paths
        // may hold a renewed one. (Server name and listen addresses are
        // unchanged here, so a self-signed one is the state directory's.)
        let listen_ips: Vec<IpAddr> = config
            .sstp
            .listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect();
        let cert = ServerCertificate::for_config(
            &config.certificate,
            &self.targets.state,
            &config.server_name(),
            &listen_ips,
        )
        .map_err(|e| at("certificate.chain", e.to_string()))?;
        if cert.fingerprint_sha256() != running_fingerprint {
            let tls = cert
                .rustls_config()
                .map_err(|e| at("certificate.chain", e.to_string()))?;
            let current = self.targets.sstp.load();
            let mut session = (*current.session).clone();
            session.certificate_der = Arc::new(cert.leaf_der().to_vec());
            let sstp = SstpCertified {
                tls: tokio_rustls::TlsAcceptor::from(tls),
                session: Arc::new(session),
            };
            let ike = match &self.targets.ike {
                Some(ike) => Some(IkeConfigs {
                    ikev1: crate::ipsec_service::responder_config(&config.ipsec, &ike.psk, &cert)
                        .map_err(|e| at("certificate.chain", e.to_string()))?,
                    ikev2: match config.ikev2.enabled {
                        true => Some(
                            crate::ikev2_service::responder_config(
                                &config.ikev2,
                                &config.ipsec,
                                &ike.psk,
                                &cert,
                                &config.server_name(),
                            )
                            .map_err(|e| at("certificate.chain", e.to_string()))?,
                        ),
                        false => None,
                    },
                }),
                None => None,
            };
            Ok(Some(NewCertificate { cert, sstp, ike }))
        } else {
            Ok(None)
        }
    }

    /// RADIUS clients for `config`'s servers (their sockets bound, their
    /// tasks started): dropped unused if the reload fails later.
    fn start_radius(
        &self,
        config: &Config,
        targets: &RadiusTargets,
        at: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<NewRadius, ConfigError> {
        let cfg = &config.radius;
        if cfg.servers.len() > 2 {
            return Err(at(
                "radius.servers",
                crate::radius_setup::RadiusSetupError::TooManyServers(cfg.servers.len())
                    .to_string(),
            ));
        }
        let mut secrets = Vec::new();
        for (i, server) in cfg.servers.iter().enumerate() {
            secrets.push(
                crate::radius_config::read_secret(self.targets.state.path(), &server.secret_file)
                    .map_err(|e| at(&format!("radius.servers[{i}].secret_file"), e.to_string()))?,
            );
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            at(
                "radius.servers",
                format!("no runtime to start RADIUS on: {e}"),
            )
        })?;
        let start = |addrs: Vec<SocketAddr>, role: &'static str| {
            runtime
                .block_on(RadiusHandle::start(
                    addrs,
                    crate::radius_setup::client_config(cfg, secrets.clone()),
                ))
                .map(|h| h.observed(targets.metrics.clone(), role))
                .map_err(|e| at("radius.servers", format!("the RADIUS socket: {e}")))
        };
        let auth = start(cfg.servers.iter().map(|s| s.auth_addr()).collect(), "auth")?;
        let accounting = match &targets.accounting {
            Some(_) => Some(start(
                cfg.servers.iter().map(|s| s.acct_addr()).collect(),
                "acct",
            )?),
            None => None,
        };
        Ok(NewRadius { auth, accounting })
    }

    /// Swaps `prepared` in. Only the routes for added ranges can fail;
    /// they are added first and taken back on failure.
    fn apply(&self, prepared: Prepared, running: &mut Running) -> Result<Vec<String>, ConfigError> {
        let Prepared {
            config,
            text,
            plan,
            certificate,
            policies,
            radius,
            crls,
        } = prepared;
        if let Some(tun) = &self.targets.tun {
            let mut added = Vec::new();
            for range in &plan.pool_added {
                for (net, len) in netdev::range_to_cidrs(range.start(), range.end()) {
                    match tun.add_route(IpAddr::V4(net), len) {
                        Ok(netdev::RouteAdded::Added) => added.push((net, len)),
                        Ok(netdev::RouteAdded::AlreadyThere) => {}
                        Err(e) => {
                            for (net, len) in added {
                                let _ = tun.del_route(IpAddr::V4(net), len);
                            }
                            return Err(error_at_key(
                                &text,
                                &self.shown_path(),
                                "addresses.ipv4_pool",
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
        }
        self.targets.pool.add_ranges(&plan.pool_added);

        let mut changed = Vec::new();
        if crls != running.crls {
            changed.push(crate::crl::describe(&crls));
            crate::crl::shared().replace(crls.clone());
            running.crls = crls;
        }
        if let Some(new) = certificate {
            changed.push(self.swap_certificate(new, &config, running));
        }
        if policies.is_some() || plan.dns.is_some() || plan.wins.is_some() {
            let current = self.targets.settings.load();
            let first_two =
                |list: &[std::net::Ipv4Addr]| [list.first().copied(), list.get(1).copied()];
            self.targets.settings.store(Arc::new(SessionSettings {
                policies: policies.unwrap_or_else(|| current.policies.clone()),
                dns: plan.dns.as_deref().map_or(current.dns, first_two),
                wins: plan.wins.as_deref().map_or(current.wins, first_two),
            }));
        }
        if let (Some(new), Some(targets)) = (radius, &self.targets.radius) {
            let mut view = vec![("authentication", new.auth.clone())];
            targets.auth.use_servers(new.auth);
            if let (Some(handle), Some(accounting)) = (new.accounting, &targets.accounting) {
                view.push(("accounting", handle.clone()));
                accounting.use_servers(handle);
            }
            targets.view.store(Arc::new(view));
        }
        changed.extend(plan.describe());
        running.config = config;
        running.text = text;
        Ok(changed)
    }
    /// Swaps `new` in for new SSTP connections, IKE negotiations and the
    /// admin listener; running sessions keep theirs (the crypto binding
    /// hashes the certificate their connection was served). The phrase
    /// for the log.
    fn swap_certificate(
        &self,
        new: NewCertificate,
        config: &Config,
        running: &mut Running,
    ) -> String {
        let NewCertificate { cert, sstp, ike } = new;
        let fingerprint = cert.fingerprint_sha256();
        self.targets.sstp.store(Arc::new(sstp));
        if let Some(admin_tls) = &self.targets.admin_tls {
            if let Ok(tls) = cert.rustls_config() {
                admin_tls.store(crate::admin_https::tls_config(&tls));
            }
        }
        let ike_sent = match (ike, &self.targets.ike) {
            (Some(configs), Some(targets)) => targets.reconfigure.send(configs).is_ok(),
            _ => false,
        };
        self.targets
            .certificate_view
            .store(cert.subject_and_expiry().map(|(subject, not_after)| {
                Arc::new(CertificateView {
                    subject,
                    not_after,
                    sha256_fingerprint: fingerprint.clone(),
                    self_signed: cert.is_self_signed(),
                })
            }));
        // Said only where IKE signs with it (PSK-only IKE shows no
        // certificate).
        let ike_signs = config.ipsec.enabled
            && (config.ipsec.certificate_auth()
                || (config.ikev2.enabled && (config.ikev2.eap() || config.ikev2.certificate())));
        let ike = match (ike_signs, ike_sent) {
            (true, true) => " and IKE negotiations",
            (true, false) => "; IKE keeps the previous certificate until a restart",
            (false, _) => "",
        };
        running.fingerprint = fingerprint.clone();
        format!("certificate changed (sha256 {fingerprint}) for new SSTP connections{ike}")
    }
}

/// The admin socket of the server running `file`, for `ras server
/// reload`: the file's `[admin] socket` even when the rest of the file is
/// wrong (the server is to say so, and keep running), else the error.
pub fn admin_socket_of(file: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let loaded = Config::load(file);
    let e = match loaded {
        Ok(config) => return Ok(config.admin.socket),
        Err(e) => e,
    };
    if let Some(socket) =
        std::env::var_os(crate::config::ADMIN_SOCKET_ENV).filter(|s| !s.is_empty())
    {
        return Ok(PathBuf::from(socket));
    }
    let from_text = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|text| text.parse::<toml::Table>().ok())
        .map(|table| {
            table
                .get("admin")
                .and_then(|a| a.get("socket"))
                .and_then(toml::Value::as_str)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_ADMIN_SOCKET))
        });
    from_text.ok_or(e)
}

/// `<file>:<line>: <key>: <why>` (or the I/O error whole).
fn refusal_words(e: &ConfigError) -> String {
    match e {
        ConfigError::Invalid {
            path,
            line,
            key,
            message,
            ..
        } => match key {
            Some(key) => format!("{}:{line}: {key}: {message}", path.display()),
            None => format!("{}:{line}: {message}", path.display()),
        },
        ConfigError::Io { .. } => e.to_string(),
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
