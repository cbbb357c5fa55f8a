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
    text: String,
    fingerprint: String,
}

/// Reloads the configuration file into the running server.
pub struct Reloader {
    file: Option<PathBuf>,
    /// Held through a whole reload: two at once would both compare with
    /// the same old configuration.
    running: Mutex<Running>,
    targets: ReloadTargets,
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
                config: config.clone(),
                text,
                fingerprint,
            }),
            targets,
        }
    }

    /// Reads the file again and swaps in what changed, or nothing; logs
    /// one line either way. Blocking (files, `ip route`): call it from a
    /// blocking task.
    pub fn reload(&self) -> ReloadOutcome {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
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
        outcome
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
        let cert = ServerCertificate::from_config(
            config.certificate.chain.as_deref(),
            config.certificate.key.as_deref(),
            &self.targets.state,
            &config.server_name(),
            &listen_ips,
        )
        .map_err(|e| at("certificate.chain", e.to_string()))?;
        let certificate = if cert.fingerprint_sha256() != running.fingerprint {
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
            Some(NewCertificate { cert, sstp, ike })
        } else {
            None
        };

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
        })
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
        if let Some(NewCertificate { cert, sstp, ike }) = certificate {
            let fingerprint = cert.fingerprint_sha256();
            self.targets.sstp.store(Arc::new(sstp));
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
                    || (config.ikev2.enabled
                        && (config.ikev2.eap() || config.ikev2.certificate())));
            let ike = match (ike_signs, ike_sent) {
                (true, true) => " and IKE negotiations",
                (true, false) => "; IKE keeps the previous certificate until a restart",
                (false, _) => "",
            };
            changed.push(format!(
                "certificate changed (sha256 {fingerprint}) for new SSTP connections{ike}"
            ));
            running.fingerprint = fingerprint;
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
mod tests {
    use super::*;
    use tunnel::sstp_server::ServerSessionConfig;

    /// A certificate and key pair in `dir`, as PEM files.
    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["vpn.example.com".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    /// The configuration the tests edit: `cert`, `pool`, `dns` and
    /// `policy` (TOML) in the file.
    fn text(dir: &Path, cert: &(PathBuf, PathBuf), pool: &str, dns: &str, policy: &str) -> String {
        format!(
            "state_dir = {:?}\nserver_name = \"vpn.example.com\"\n\n[sstp]\nlisten = [\"127.0.0.1:443\"]\n\n[ipsec]\nenabled = false\n\n[certificate]\nchain = {:?}\nkey = {:?}\n\n[addresses]\nipv4_pool = [{pool}]\ndns = [{dns}]\n\n[admin]\nsocket = {:?}\n{policy}",
            dir.join("state"),
            cert.0,
            cert.1,
            dir.join("admin.sock"),
        )
    }

    struct Rig {
        reloader: Reloader,
        sstp: Arc<ArcSwap<SstpCertified>>,
        settings: SharedSessionSettings,
        pool: Arc<StaticPool>,
        view: Arc<ArcSwapOption<CertificateView>>,
    }

    fn start(file: &Path) -> (Rig, ServerCertificate) {
        start_with(file, None)
    }

    fn start_with(file: &Path, radius: Option<RadiusTargets>) -> (Rig, ServerCertificate) {
        start_full(file, radius, None)
    }

    fn start_full(
        file: &Path,
        radius: Option<RadiusTargets>,
        ike: Option<IkeTargets>,
    ) -> (Rig, ServerCertificate) {
        let config = Config::load(Some(file)).unwrap();
        let state = StateDir::open(&config.state_dir).unwrap();
        let cert = ServerCertificate::load(
            config.certificate.chain.as_deref().unwrap(),
            config.certificate.key.as_deref().unwrap(),
        )
        .unwrap();
        let sstp = Arc::new(ArcSwap::from_pointee(SstpCertified {
            tls: tokio_rustls::TlsAcceptor::from(cert.rustls_config().unwrap()),
            session: Arc::new(ServerSessionConfig {
                certificate_der: Arc::new(cert.leaf_der().to_vec()),
                hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
                link: ppp::link::LinkConfig::server("vpn.example.com"),
                request_timeout: std::time::Duration::from_secs(10),
                server_name: "ras".into(),
                timers: sstp::Timers::default(),
            }),
        }));
        let settings = SessionSettings {
            policies: Arc::new(config.policy_set().unwrap()),
            dns: [config.addresses.dns.first().copied(), None],
            wins: [None, None],
        }
        .shared();
        let pool = Arc::new(StaticPool::new(&config.addresses.ipv4_pool));
        let view = Arc::new(ArcSwapOption::empty());
        let reloader = Reloader::new(
            Some(file),
            &config,
            cert.fingerprint_sha256(),
            ReloadTargets {
                sstp: sstp.clone(),
                settings: settings.clone(),
                pool: pool.clone(),
                tun: None,
                certificate_view: view.clone(),
                state,
                radius,
                ike,
            },
        );
        let rig = Rig {
            reloader,
            sstp,
            settings,
            pool,
            view,
        };
        (rig, cert)
    }

    fn ranges(pool: &StaticPool) -> Vec<String> {
        pool.client_ranges()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_edit_is_swapped_in_and_a_bad_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (pair(dir.path(), "one"), pair(dir.path(), "two"));
        let file = dir.path().join("ras.toml");
        let pool = "\"10.0.10.20-10.0.10.29\"";
        std::fs::write(&file, text(dir.path(), &one, pool, "\"10.0.0.53\"", "")).unwrap();
        let (rig, first) = start(&file);
        // A connection accepted before the reload holds this pair.
        let in_progress = rig.sstp.load_full();

        let outcome = rig.reloader.reload();
        assert_eq!(
            outcome,
            ReloadOutcome {
                ok: true,
                changed: vec![],
                error: None
            }
        );
        assert_eq!(outcome.log_line(), "reload: nothing changed");

        let policy = "\n[[policy]]\nname = \"Staff only\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"staff\"]\n";
        let wider = "\"10.0.10.20-10.0.10.29\", \"10.0.20.1-10.0.20.50\"";
        std::fs::write(
            &file,
            text(
                dir.path(),
                &two,
                wider,
                "\"10.0.0.54\", \"10.0.0.55\"",
                policy,
            ),
        )
        .unwrap();
        let second = ServerCertificate::load(&two.0, &two.1).unwrap();
        let outcome = rig.reloader.reload();
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(
            outcome.changed,
            vec![
                format!(
                    "certificate changed (sha256 {}) for new SSTP connections",
                    second.fingerprint_sha256()
                ),
                "policies: 1 (Staff only)".to_owned(),
                "pool +10.0.20.1-10.0.20.50".to_owned(),
                "DNS 10.0.0.54, 10.0.0.55".to_owned(),
            ]
        );
        assert_eq!(
            *rig.sstp.load().session.certificate_der,
            second.leaf_der().to_vec()
        );
        assert_eq!(
            *in_progress.session.certificate_der,
            first.leaf_der().to_vec(),
            "a connection keeps the certificate it was served"
        );
        assert_eq!(
            rig.view.load().as_ref().unwrap().sha256_fingerprint,
            second.fingerprint_sha256()
        );
        assert_eq!(
            ranges(&rig.pool),
            vec!["10.0.10.21-10.0.10.29", "10.0.20.1-10.0.20.50"]
        );
        let settings = rig.settings.load();
        assert_eq!(
            settings.dns,
            [
                Some("10.0.0.54".parse().unwrap()),
                Some("10.0.0.55".parse().unwrap())
            ]
        );
        assert_eq!(
            settings.policies.names().collect::<Vec<_>>(),
            vec!["Staff only"]
        );

        // A bad value: refused with file, line and key; nothing swapped.
        let good = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{good}\n[tun]\nmtu = 100\n")).unwrap();
        let outcome = rig.reloader.reload();
        assert!(!outcome.ok);
        let line = good.lines().count() + 3;
        assert_eq!(
            outcome.error.as_deref(),
            Some(
                format!(
                    "{}:{line}: tun.mtu: MTU 100 is below the IPv4 minimum of 576",
                    file.display()
                )
                .as_str()
            )
        );
        assert!(outcome
            .log_line()
            .ends_with("; still running the previous configuration"));

        // A key that needs a restart, next to reloadable edits: refused
        // whole.
        std::fs::write(
            &file,
            text(dir.path(), &one, wider, "\"10.0.0.99\"", "")
                .replace("127.0.0.1:443", "127.0.0.1:8443"),
        )
        .unwrap();
        let outcome = rig.reloader.reload();
        let error = outcome.error.unwrap();
        assert!(
            error.ends_with(": sstp.listen: sstp.listen changed: needs a restart"),
            "{error}"
        );
        assert_eq!(
            *rig.sstp.load().session.certificate_der,
            second.leaf_der().to_vec()
        );
        assert_eq!(
            rig.settings.load().dns[0],
            Some("10.0.0.54".parse().unwrap())
        );
        assert_eq!(ranges(&rig.pool).len(), 2);

        // Back to the last good file: nothing to do.
        std::fs::write(&file, good).unwrap();
        assert_eq!(rig.reloader.reload().changed, Vec::<String>::new());
    }

    #[test]
    fn the_socket_is_found_in_a_file_that_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ras.toml");
        std::fs::write(
            &file,
            "[admin]\nsocket = \"/tmp/x.sock\"\n[tun]\nmtu = 100\n",
        )
        .unwrap();
        if std::env::var_os(crate::config::ADMIN_SOCKET_ENV).is_none() {
            assert_eq!(
                admin_socket_of(Some(&file)).unwrap(),
                PathBuf::from("/tmp/x.sock")
            );
        }
        std::fs::write(&file, "[admin\n").unwrap();
        if std::env::var_os(crate::config::ADMIN_SOCKET_ENV).is_none() {
            assert!(admin_socket_of(Some(&file)).is_err());
        }
    }

    /// RADIUS servers swapped: the admin API shows the new ones, and
    /// turning RADIUS off is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_radius_servers_are_swapped_in() {
        let dir = tempfile::tempdir().unwrap();
        let one = pair(dir.path(), "one");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("r.secret"), "s3cret\n").unwrap();
        let file = dir.path().join("ras.toml");
        let radius = |address: &str| {
            format!("\n[radius]\naccounting = false\n\n[[radius.servers]]\naddress = \"{address}\"\nsecret_file = \"r.secret\"\n")
        };
        let pool = "\"10.0.10.20-10.0.10.29\"";
        let dns = "\"10.0.0.53\"";
        std::fs::write(
            &file,
            text(dir.path(), &one, pool, dns, &radius("127.0.0.1")),
        )
        .unwrap();
        let handle = RadiusHandle::start(
            vec!["127.0.0.1:1812".parse().unwrap()],
            crate::radius_setup::client_config(
                &Config::load(Some(&file)).unwrap().radius,
                vec![radius::Secret::new(b"s3cret".to_vec())],
            ),
        )
        .await
        .unwrap();
        let view = Arc::new(ArcSwap::from_pointee(vec![(
            "authentication",
            handle.clone(),
        )]));
        let targets = RadiusTargets {
            auth: Arc::new(crate::radius_auth::RadiusAuth::new(
                handle,
                crate::radius_auth::NasIdentity {
                    identifier: "ras".into(),
                    address: None,
                },
            )),
            accounting: None,
            view: view.clone(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        };
        let (rig, _) = start_with(&file, Some(targets));
        let rig = Arc::new(rig);

        std::fs::write(
            &file,
            text(dir.path(), &one, pool, dns, &radius("127.0.0.2")),
        )
        .unwrap();
        let r = rig.clone();
        let outcome = tokio::task::spawn_blocking(move || r.reloader.reload())
            .await
            .unwrap();
        assert_eq!(outcome.changed, vec!["RADIUS servers 127.0.0.2:1812"]);
        let shown: Vec<SocketAddr> = view
            .load()
            .iter()
            .flat_map(|(_, h)| h.server_states())
            .map(|(a, _)| a)
            .collect();
        assert_eq!(shown, vec!["127.0.0.2:1812".parse::<SocketAddr>().unwrap()]);

        std::fs::write(&file, text(dir.path(), &one, pool, dns, "")).unwrap();
        let r = rig.clone();
        let outcome = tokio::task::spawn_blocking(move || r.reloader.reload())
            .await
            .unwrap();
        let error = outcome.error.unwrap();
        assert!(
            error.ends_with(": radius.servers: radius.servers changed: needs a restart"),
            "{error}"
        );
    }

    /// With IKE on, the IKE front end is handed responder settings with
    /// the new certificate (IKEv2 EAP signs with it).
    #[test]
    fn a_new_certificate_reaches_the_ike_responders() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (pair(dir.path(), "one"), pair(dir.path(), "two"));
        let file = dir.path().join("ras.toml");
        let pool = "\"10.0.10.20-10.0.10.29\"";
        let with_ike = |cert| {
            text(dir.path(), cert, pool, "\"10.0.0.53\"", "")
                .replace("[ipsec]\nenabled = false\n", "[ipsec]\nenabled = true\n")
        };
        std::fs::write(&file, with_ike(&one)).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ike = IkeTargets {
            psk: zeroize::Zeroizing::new(b"a pre-shared key".to_vec()),
            reconfigure: tx,
        };
        let (rig, _) = start_full(&file, None, Some(ike));
        std::fs::write(&file, with_ike(&two)).unwrap();
        let outcome = rig.reloader.reload();
        let second = ServerCertificate::load(&two.0, &two.1).unwrap();
        assert_eq!(
            outcome.changed,
            vec![format!(
                "certificate changed (sha256 {}) for new SSTP connections and IKE negotiations",
                second.fingerprint_sha256()
            )]
        );
        let configs = rx.try_recv().expect("new IKE settings");
        let ikev2 = configs.ikev2.expect("IKEv2 is on by default");
        assert_eq!(
            ikev2.certificate.expect("EAP: the server signs").chain()[0],
            second.leaf_der().to_vec()
        );
        assert!(rx.try_recv().is_err(), "one hand-off per reload");
    }

    /// `POST /v1/reload` answers the outcome, refused or not, as JSON.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_admin_route_answers_the_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let one = pair(dir.path(), "one");
        let file = dir.path().join("ras.toml");
        let pool = "\"10.0.10.20-10.0.10.29\"";
        std::fs::write(&file, text(dir.path(), &one, pool, "\"10.0.0.53\"", "")).unwrap();
        let (rig, _) = start(&file);
        let mut view = crate::admin_view::AdminView::new(
            "s",
            Arc::new(crate::sessions::Sessions::new()),
            rig.pool.clone(),
        );
        let socket = dir.path().join("api.sock");
        let bare = dir.path().join("bare.sock");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(crate::admin_api::serve(
            tokio::net::UnixListener::bind(&bare).unwrap(),
            Arc::new(crate::admin_view::AdminView::new(
                "s",
                Arc::new(crate::sessions::Sessions::new()),
                rig.pool.clone(),
            )),
            stop_rx.clone(),
        ));
        view.reloader = Some(Arc::new(rig.reloader));
        tokio::spawn(crate::admin_api::serve(
            tokio::net::UnixListener::bind(&socket).unwrap(),
            Arc::new(view),
            stop_rx,
        ));
        let edited = text(dir.path(), &one, pool, "\"10.0.0.54\"", "");
        let (f, s, b) = (file.clone(), socket.clone(), bare.clone());
        tokio::task::spawn_blocking(move || {
            let post = |socket: &Path| crate::admin_client::request(socket, "POST", "/v1/reload");
            match post(&b) {
                Err(crate::admin_client::AdminClientError::Status { status, message }) => {
                    assert_eq!(
                        (status, message.as_str()),
                        (404, "this server cannot reload")
                    )
                }
                other => panic!("{other:?}"),
            }
            std::fs::write(&f, edited).unwrap();
            let outcome: ReloadOutcome = serde_json::from_slice(&post(&s).unwrap().body).unwrap();
            assert_eq!(outcome.changed, vec!["DNS 10.0.0.54"]);
            std::fs::write(&f, "[tun]\nmtu = 100\n").unwrap();
            let outcome: ReloadOutcome = serde_json::from_slice(&post(&s).unwrap().body).unwrap();
            assert!(!outcome.ok);
            assert_eq!(
                outcome.error,
                Some(format!(
                    "{}:2: tun.mtu: MTU 100 is below the IPv4 minimum of 576",
                    f.display()
                ))
            );
        })
        .await
        .unwrap();
        stop.send(true).unwrap();
    }
}
