//! `ras server`: the remote access server. With no configuration file it
//! runs on embedded defaults: a self-signed certificate, a local user store
//! with a demo user, the static pool 10.0.10.20–10.0.10.29, SSTP on 443
//! and PPTP on 1723.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ppp::link::LinkConfig;
use server::cert::ServerCertificate;
use server::config::Config;
use server::hooks::{LocalHooks, TunSink};
use server::pool::StaticPool;
use server::pptp_service::PptpService;
use server::router::Router;
use server::sstp_service::SstpService;
use server::state::StateDir;
use server::users::UserStore;
use tokio::sync::{watch, Semaphore};
use tunnel::pptp_server::{GreDemux, PptpServerConfig};
use tunnel::sstp_server::ServerSessionConfig;
use tunnel::PacketSink;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file; every setting has an embedded default.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// How long a graceful stop waits for sessions to say goodbye.
const DRAIN: Duration = Duration::from_secs(10);

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let state = StateDir::open(&config.state_dir)?;
    let users = Arc::new(UserStore::open(&state)?);
    if let Some(password) = users.ensure_demo_user()? {
        println!("created the demo user: name \"demo\", password \"{}\" (shown once; change it with `ras user passwd demo`)", password.as_str());
    }
    let pool = Arc::new(StaticPool::new(&config.addresses.ipv4_pool));
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
        &state,
        &config.server_name(),
        &listen_ips,
    )?;
    println!(
        "certificate: {}SHA-256 fingerprint {}",
        if cert.is_self_signed() {
            "self-signed, "
        } else {
            ""
        },
        cert.fingerprint_sha256()
    );
    let ipv6_prefix: Option<Ipv6Addr> = state.client_ipv6_prefix(config.addresses.ipv6_prefix)?;
    let settings = server::tun::server_settings(
        &config.tun,
        pool.server(),
        pool.client_ranges(),
        ipv6_prefix,
    );
    let tun = Arc::new(netdev::TunDevice::create(&settings).context(
        "creating the TUN device (ras server needs root or CAP_NET_ADMIN and /dev/net/tun)",
    )?);
    let router = Router::new();
    tokio::spawn(router.clone().run_tun_reader(tun.clone()));
    let hooks = Arc::new(LocalHooks::new(
        users.clone(),
        pool.clone(),
        router.clone(),
        &config.addresses.dns,
        &config.addresses.wins,
        ipv6_prefix,
        u32::from(config.tun.mtu),
    ));

    let mut link = LinkConfig::server(&config.server_name());
    link.lcp.require_auth = config.auth.methods.lcp_protocols();
    link.lcp.mru = config.ppp.mru;
    link.echo = config.ppp.echo();
    // PPTP's GRE is not encrypted: MPPE as configured (required by default).
    let mut pptp_link = link.clone();
    pptp_link.ccp = Some(config.encryption.ccp_config());
    // SSTP is encrypted by TLS: no MPPE inside it (RRAS does the same).
    link.ccp = None;
    let timers = sstp::Timers {
        hello: config.sstp.hello_interval(),
        ..Default::default()
    };
    let session = Arc::new(ServerSessionConfig {
        certificate_der: Arc::new(cert.leaf_der().to_vec()),
        hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA1 | sstp::CERT_HASH_PROTOCOL_SHA256,
        link,
        request_timeout: Duration::from_secs(10),
        server_name: "ras".into(),
        timers,
    });
    let sink: Arc<dyn PacketSink> = Arc::new(TunSink(netdev::TunWriter::spawn(tun.clone())));
    let ports = config.sstp.ports.get();
    let service = SstpService {
        tls: tokio_rustls::TlsAcceptor::from(cert.rustls_config()?),
        session,
        hooks: hooks.clone(),
        sink: sink.clone(),
        ports: Arc::new(Semaphore::new(ports as usize)),
        port_limit: ports,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listening = Vec::new();
    for addr in &config.sstp.listen {
        match server::listen::bind_tcp(*addr) {
            Ok(listener) => {
                listening.push(addr.to_string());
                tokio::spawn(service.clone().run(listener, stop_rx.clone()));
            }
            // An IPv6 wildcard on a host without IPv6 is not fatal.
            Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => tracing::warn!("{e}"),
            Err(e) => return Err(e.into()),
        }
    }
    if listening.is_empty() && !config.sstp.listen.is_empty() {
        bail!("no SSTP listener could be opened");
    }

    let pptp_ports = config.pptp.ports.get();
    let mut pptp = None;
    let mut pptp_listening = Vec::new();
    if !config.pptp.listen.is_empty() {
        let demux = GreDemux::open().context(
            "opening the raw GRE socket for PPTP (needs root or CAP_NET_RAW; set [pptp] listen = [] to disable PPTP)",
        )?;
        tokio::spawn(demux.clone().run());
        let service = PptpService {
            session: Arc::new(PptpServerConfig::new(pptp_link)),
            demux,
            hooks: hooks.clone(),
            sink: sink.clone(),
            ports: Arc::new(Semaphore::new(pptp_ports as usize)),
            port_limit: pptp_ports,
            refusals: Arc::new(Semaphore::new(server::pptp_service::REFUSALS)),
        };
        for addr in &config.pptp.listen {
            let listener = server::listen::bind_tcp(*addr)?;
            pptp_listening.push(addr.to_string());
            tokio::spawn(service.clone().run(listener, stop_rx.clone()));
        }
        pptp = Some(service);
    }
    let ranges: Vec<String> = pool
        .client_ranges()
        .iter()
        .map(|r| format!("{}-{}", r.start(), r.end()))
        .collect();
    let sstp_text = if listening.is_empty() {
        "SSTP off".to_owned()
    } else {
        format!("SSTP on {} ({ports} ports)", listening.join(", "))
    };
    let pptp_text = if pptp_listening.is_empty() {
        "PPTP off".to_owned()
    } else {
        format!("PPTP on {} ({pptp_ports} ports)", pptp_listening.join(", "))
    };
    println!(
        "ras server: {sstp_text}; {pptp_text}; server address {}, clients {}; TUN {}",
        pool.server(),
        ranges.join(", "),
        tun.name()
    );
    if let Some(p) = ipv6_prefix {
        println!("IPv6: clients in {p}/64");
    }

    wait_for_signal().await;
    println!("stopping: disconnecting {} session(s)", hooks.active());
    let _ = stop_tx.send(true);
    let pptp_drain = async {
        match &pptp {
            Some(p) => p.drain(DRAIN).await,
            None => true,
        }
    };
    let (sstp_done, pptp_done) = tokio::join!(service.drain(DRAIN), pptp_drain);
    if !(sstp_done && pptp_done) {
        tracing::warn!("some sessions did not end within {DRAIN:?}");
    }
    let counts = pool.counts();
    println!("stopped; {} address(es) still in use", counts.in_use);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
