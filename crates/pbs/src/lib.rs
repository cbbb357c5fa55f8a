//! The Phone Book Service (`ras pbs`): answers Connection Manager's update
//! queries with no update, a delta or the full phone book, serves the
//! cabinets, and installs versions that administrators post. See
//! [`service`] for the routes and docs/PHONEBOOK.md for the formats.

pub mod catalog;
pub mod decision;
pub mod metrics;
pub mod query;
pub mod service;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use service::AppState;

/// How to run the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where posted versions live (`DATA/NAME/VERSION/…`).
    pub data: PathBuf,
    /// Plain HTTP listener (queries and downloads only).
    pub http: Option<SocketAddr>,
    /// HTTPS listener (queries, downloads and posts).
    pub https: Option<SocketAddr>,
    /// PEM certificate chain and key; None: self-signed in `data`.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// The name in the self-signed certificate.
    pub server_name: String,
    /// The posting credential (a file holding one token line).
    pub post_token_file: Option<PathBuf>,
    /// Reload versions other instances installed, this often.
    pub rescan: Option<Duration>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum PbsError {
    #[error(transparent)]
    Catalog(#[from] catalog::InstallError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("no listener: give --http and/or --https")]
    NoListener,
}

/// A started service.
pub struct Running {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// SHA-256 fingerprint of the HTTPS certificate.
    pub fingerprint: Option<String>,
    pub state: Arc<AppState>,
    pub tasks: tokio::task::JoinSet<std::io::Result<()>>,
}

/// Loads the catalog, binds the listeners and starts serving.
pub async fn start(config: Config) -> Result<Running, PbsError> {
    if config.http.is_none() && config.https.is_none() {
        return Err(PbsError::NoListener);
    }
    let catalog = catalog::load_catalog(&config.data)?;
    tracing::info!(phonebooks = catalog.len(), data = %config.data.display(), "catalog loaded");
    let token = match &config.post_token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| PbsError::Io(p.display().to_string(), e))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let state = Arc::new(AppState::new(
        config.data.clone(),
        catalog,
        token.as_deref(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    let mut running = Running {
        http: None,
        https: None,
        fingerprint: None,
        state: state.clone(),
        tasks: Default::default(),
    };
    if let Some(addr) = config.http {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| PbsError::Io(addr.to_string(), e))?;
        running.http = Some(
            l.local_addr()
                .map_err(|e| PbsError::Io(addr.to_string(), e))?,
        );
        let app = service::router(state.clone(), false);
        let l = l.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tasks.spawn(async move { axum::serve(l, app).await });
    }
    if let Some(addr) = config.https {
        let cert = match &config.cert {
            Some((c, k)) => tls::Certificate::load(c, k)?,
            None => tls::Certificate::self_signed(&config.data, &config.server_name)?,
        };
        running.fingerprint = Some(cert.fingerprint());
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| PbsError::Io(addr.to_string(), e))?;
        let l = tls::TlsListener::new(l, cert.server_config()?)
            .map_err(|e| PbsError::Io(addr.to_string(), e))?;
        running.https = Some(
            axum::serve::Listener::local_addr(&l).map_err(|e| PbsError::Io(addr.to_string(), e))?,
        );
        let app = service::router(state.clone(), true);
        tasks.spawn(async move { axum::serve(l, app).await });
    }
    if let Some(every) = config.rescan {
        let state = state.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || s.rescan()).await;
            }
        });
    }
    running.tasks = tasks;
    Ok(running)
}
