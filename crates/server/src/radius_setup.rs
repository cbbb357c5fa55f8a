//! Builds the RADIUS pieces from `[radius]`: the authenticator, the
//! accounting spool and sender, and the dynamic authorization listener.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use radius::{ClientConfig, RetransmitConfig};

use crate::accounting::{Accounting, Spool, SpoolError};
use crate::dynauth::DynAuthServer;
use crate::radius_auth::{NasIdentity, RadiusAuth};
use crate::radius_config::{read_secret, RadiusConfig, SecretFileError};
use crate::radius_io::RadiusHandle;
use crate::sessions::Sessions;
use crate::state::StateDir;

/// Why the RADIUS pieces could not start.
#[derive(Debug, thiserror::Error)]
pub enum RadiusSetupError {
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("[radius] lists {0} servers; at most two (a primary and an alternate) are used")]
    TooManyServers(usize),
    #[error("cannot open a UDP socket for RADIUS: {0}")]
    Socket(std::io::Error),
    #[error("cannot listen for dynamic authorization on {addr}: {source}")]
    DynAuthBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What `ras server` runs when RADIUS is configured.
pub struct RadiusStack {
    pub auth: Arc<RadiusAuth>,
    pub accounting: Option<Arc<Accounting>>,
    pub nas: NasIdentity,
    pub interim_interval: Option<Duration>,
    pub dynauth: Option<DynAuthServer>,
    /// The spool file, for the start-up message.
    pub spool_path: Option<PathBuf>,
    /// The RADIUS clients' drivers (authentication, then accounting),
    /// for the admin API's server states.
    pub handles: Vec<(&'static str, RadiusHandle)>,
}

pub(crate) fn client_config(cfg: &RadiusConfig, secrets: Vec<radius::Secret>) -> ClientConfig {
    let mut secrets = secrets.into_iter();
    let primary = secrets.next().expect("at least one server");
    let mut c = ClientConfig::new(primary, secrets.next());
    c.retransmit = RetransmitConfig {
        irt: Duration::from_secs(cfg.timeout_secs.max(1).into()),
        tries_per_server: cfg.tries.max(1),
        ..RetransmitConfig::default()
    };
    c.dead_time = Duration::from_secs(cfg.dead_time_secs.into());
    c
}

impl RadiusStack {
    /// `None` when no RADIUS server is configured. Must run inside the
    /// tokio runtime (it starts tasks).
    pub async fn start(
        cfg: &RadiusConfig,
        state: &StateDir,
        server_name: &str,
        nas_address: Option<IpAddr>,
        sessions: Arc<Sessions>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Option<RadiusStack>, RadiusSetupError> {
        if !cfg.enabled() {
            return Ok(None);
        }
        if cfg.servers.len() > 2 {
            return Err(RadiusSetupError::TooManyServers(cfg.servers.len()));
        }
        let secrets = cfg
            .servers
            .iter()
            .map(|s| read_secret(state.path(), &s.secret_file))
            .collect::<Result<Vec<_>, _>>()?;
        let nas = NasIdentity {
            identifier: cfg
                .nas_identifier
                .clone()
                .unwrap_or_else(|| server_name.to_owned()),
            address: nas_address,
        };
        let auth_handle = RadiusHandle::start(
            cfg.servers.iter().map(|s| s.auth_addr()).collect(),
            client_config(cfg, secrets.clone()),
        )
        .await
        .map_err(RadiusSetupError::Socket)?
        .observed(metrics.clone(), "auth");
        let mut handles = vec![("authentication", auth_handle.clone())];
        let auth = Arc::new(RadiusAuth::new(auth_handle, nas.clone()));
        let (accounting, spool_path) = if cfg.accounting {
            let path = state.file("accounting.db");
            let spool = Spool::open(&path)?;
            let handle = RadiusHandle::start(
                cfg.servers.iter().map(|s| s.acct_addr()).collect(),
                client_config(cfg, secrets),
            )
            .await
            .map_err(RadiusSetupError::Socket)?
            .observed(metrics, "acct");
            handles.push(("accounting", handle.clone()));
            (Some(Accounting::start(spool, handle)), Some(path))
        } else {
            (None, None)
        };
        let dynauth = match &cfg.dynamic_authorization {
            None => None,
            Some(d) => {
                let socket = tokio::net::UdpSocket::bind(d.listen)
                    .await
                    .map_err(|source| RadiusSetupError::DynAuthBind {
                        addr: d.listen,
                        source,
                    })?;
                let mut clients = std::collections::HashMap::new();
                for c in &d.clients {
                    clients.insert(c.address, read_secret(state.path(), &c.secret_file)?);
                }
                Some(DynAuthServer {
                    socket,
                    clients,
                    sessions,
                    nas_identifier: nas.identifier.clone(),
                })
            }
        };
        Ok(Some(RadiusStack {
            auth,
            accounting,
            nas,
            interim_interval: (cfg.interim_interval_secs > 0)
                .then(|| Duration::from_secs(cfg.interim_interval_secs.into())),
            dynauth,
            spool_path,
            handles,
        }))
    }
}
