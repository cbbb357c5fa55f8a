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
use server::radius_auth::TunnelKind;
use server::radius_setup::RadiusStack;
use server::router::Router;
use server::sstp_service::SstpService;
use server::state::StateDir;
use server::users::UserStore;
use tokio::sync::{watch, Semaphore};
use tunnel::pptp_server::{GreDemux, PptpServerConfig};
use tunnel::sstp_server::ServerSessionConfig;
use tunnel::PacketSink;

use crate::quiet_output::say;

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
        say!("created the demo user: name \"demo\", password \"{}\" (shown once; change it with `ras user passwd demo`)", password.as_str());
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
    say!(
        "certificate: {}SHA-256 fingerprint {}",
        if cert.is_self_signed() {
            "self-signed, "
        } else {
            ""
        },
        cert.fingerprint_sha256()
    );
    let ipv6_prefix: Option<Ipv6Addr> = state.client_ipv6_prefix(config.addresses.ipv6_prefix)?;

    // Every listener is bound before any route or device is touched: a
    // second server with the same addresses fails here having changed
    // nothing, instead of taking the first one's routes down with it.
    let mut sstp_listeners = Vec::new();
    for addr in &config.sstp.listen {
        match server::listen::bind_tcp(*addr) {
            Ok(listener) => sstp_listeners.push((*addr, listener)),
            // An IPv6 wildcard on a host without IPv6 is not fatal.
            Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => tracing::warn!("{e}"),
            Err(e) => return Err(e.into()),
        }
    }
    if sstp_listeners.is_empty() && !config.sstp.listen.is_empty() {
        bail!("no SSTP listener could be opened");
    }
    let mut pptp_listeners = Vec::new();
    let mut gre = None;
    if !config.pptp.listen.is_empty() {
        for addr in &config.pptp.listen {
            pptp_listeners.push((*addr, server::listen::bind_tcp(*addr)?));
        }
        gre = Some(GreDemux::open().context(
            "opening the raw GRE socket for PPTP (needs root or CAP_NET_RAW; set [pptp] listen = [] to disable PPTP)",
        )?);
    }

    let mut settings = server::tun::server_settings(
        &config.tun,
        pool.server(),
        pool.client_ranges(),
        ipv6_prefix,
    );
    let dhcp_mode = config.addresses.source == server::config::AddressSourceKind::Dhcp;
    if dhcp_mode {
        // The server's address and the clients' routes come with the DHCP
        // leases (see server::dhcp_source), not from the static pool.
        settings.ipv4 = None;
        settings.routes.retain(|(net, _)| net.is_ipv6());
    }
    let router = Router::new();
    let mut base_hooks = LocalHooks::new(
        users.clone(),
        pool.clone(),
        router.clone(),
        &config.addresses.dns,
        &config.addresses.wins,
        ipv6_prefix,
        u32::from(config.tun.mtu),
    );
    if !config.dhcp_relay.servers.is_empty() {
        let relay = server::dhcp_relay::DhcpRelay::open(
            config.dhcp_relay.servers.clone(),
            config.dhcp_relay.giaddr,
        )?;
        let servers: Vec<String> = config
            .dhcp_relay
            .servers
            .iter()
            .map(|s| s.to_string())
            .collect();
        say!(
            "DHCP relay: clients' DHCPINFORM to {} (giaddr {})",
            servers.join(", "),
            relay.giaddr()
        );
        tokio::spawn(relay.run());
    }
    let radius = RadiusStack::start(
        &config.radius,
        &state,
        &config.server_name(),
        listen_ips.first().copied(),
        base_hooks.sessions.clone(),
    )
    .await?;
    if let Some(r) = &radius {
        base_hooks.radius = Some(r.auth.clone());
        base_hooks.accounting = r.accounting.clone();
        base_hooks.nas = Some(r.nas.clone());
        base_hooks.interim_interval = r.interim_interval;
        let servers: Vec<String> = config
            .radius
            .servers
            .iter()
            .map(|s| s.auth_addr().to_string())
            .collect();
        say!(
            "RADIUS authentication via {}{}",
            servers.join(" then "),
            match &r.spool_path {
                Some(p) => format!("; accounting spooled in {}", p.display()),
                None => String::new(),
            }
        );
    }
    // Sockets first (above), then the device and its routes.
    let tun =
        match netdev::TunDevice::create(&settings) {
            Ok(tun) => Arc::new(tun),
            Err(e @ netdev::TunError::Device { .. }) => return Err(anyhow::Error::new(e).context(
                "creating the TUN device (ras server needs root or CAP_NET_ADMIN and /dev/net/tun)",
            )),
            Err(e) => return Err(e.into()),
        };
    tokio::spawn(router.clone().run_tun_reader(tun.clone()));
    base_hooks.tun = Some(tun.clone());
    let dhcp_source =
        match server::dhcp_source::DhcpSettings::from_config(&config.addresses, Some(tun.name())) {
            Some(s) => Some(server::dhcp_source::DhcpSource::start(s)?),
            None => None,
        };
    if let Some(d) = &dhcp_source {
        let source: Arc<dyn server::pool::AddressSource> = d.clone();
        base_hooks.address_source = Some(source);
    }
    base_hooks.policies = Arc::new(config.policy_set().map_err(anyhow::Error::msg)?);
    if !config.policy.is_empty() {
        let names: Vec<&str> = base_hooks.policies.names().collect();
        say!("remote access policies, in order: {}", names.join(", "));
    }
    let sessions = base_hooks.sessions.clone();
    let accounting = base_hooks.accounting.clone();
    let hooks = Arc::new(base_hooks.for_tunnel(TunnelKind::Sstp));
    let pptp_hooks = Arc::new(base_hooks.for_tunnel(TunnelKind::Pptp));
    if let Some(dynauth) = radius.and_then(|r| r.dynauth) {
        if let Ok(addr) = dynauth.socket.local_addr() {
            say!("RADIUS dynamic authorization (Disconnect/CoA) on {addr}");
        }
        tokio::spawn(dynauth.run());
    }

    let mut link = LinkConfig::server(&config.server_name());
    link.lcp.require_auth = config.auth.methods.lcp_protocols();
    link.lcp.mru = config.ppp.mru;
    link.echo = config.ppp.echo();
    // RRAS with RADIUS relays EAP to the RADIUS server (RFC 3579) instead
    // of running EAP-MSCHAPv2 itself: the server holds the passwords.
    link.authenticator.eap_pass_through = config.radius.enabled();
    // PPTP's GRE is not encrypted: MPPE as configured (required by default).
    let link_for_dialin = link.clone();
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
    for (addr, listener) in sstp_listeners {
        listening.push(addr.to_string());
        tokio::spawn(service.clone().run(listener, stop_rx.clone()));
    }

    let pptp_ports = config.pptp.ports.get();
    let mut pptp = None;
    let mut pptp_listening = Vec::new();
    if let Some(demux) = gre {
        tokio::spawn(demux.clone().run());
        let service = PptpService {
            session: Arc::new(PptpServerConfig::new(pptp_link)),
            demux,
            hooks: pptp_hooks.clone(),
            sink: sink.clone(),
            ports: Arc::new(Semaphore::new(pptp_ports as usize)),
            port_limit: pptp_ports,
            refusals: Arc::new(Semaphore::new(server::pptp_service::REFUSALS)),
        };
        for (addr, listener) in pptp_listeners {
            pptp_listening.push(addr.to_string());
            tokio::spawn(service.clone().run(listener, stop_rx.clone()));
        }
        pptp = Some(service);
    }
    // Dial-in lines: the same hooks and TUN; MPPE as for PPTP (the line
    // is not encrypted).
    let mut dialin_lines = Vec::new();
    if !config.dialin.devices.is_empty() {
        let mut dialin_link = link_for_dialin.clone();
        dialin_link.ccp = Some(config.encryption.ccp_config());
        let service = server::dialin_service::DialinService {
            link: dialin_link,
            modem: config.dialin.modem,
            numbers: config.dialin.numbers.clone(),
            hooks: Arc::new(base_hooks.for_tunnel(TunnelKind::Dialup)),
            sink: sink.clone(),
        };
        for device in &config.dialin.devices {
            dialin_lines.push(device.display().to_string());
            tokio::spawn(service.clone().run(device.clone(), stop_rx.clone()));
        }
        say!("dial-in PPP on {}", dialin_lines.join(", "));
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
    say!(
        "ras server: {sstp_text}; {pptp_text}; {}; TUN {}",
        match &config.addresses.dhcp_interface {
            Some(iface) if dhcp_mode => format!(
                "addresses from DHCP on {iface}, {} at a time, leased when the first client connects",
                config.addresses.dhcp_block
            ),
            _ => format!("server address {}, clients {}", pool.server(), ranges.join(", ")),
        },
        tun.name()
    );
    if let Some(p) = ipv6_prefix {
        say!("IPv6: clients in {p}/64");
    }

    wait_for_signal().await;
    say!("stopping: disconnecting {} session(s)", hooks.active());
    // RFC 2866 §5.10: sessions ended by the server going down.
    sessions.mark_all(tunnel::TerminateCause::AdminReboot);
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
    if let Some(d) = &dhcp_source {
        // RRAS sends DHCPRELEASE for every leased address when it stops.
        say!("released {} DHCP lease(s)", d.stop().await);
    }
    if let Some(acct) = &accounting {
        // Give the Stop records a moment to reach the server; whatever is
        // left stays in the spool for the next start.
        if !acct.flush(Duration::from_secs(3)).await {
            say!(
                "{} accounting record(s) kept in the spool for the next start",
                acct.pending()
            );
        }
    }
    let counts = pool.counts();
    say!("stopped; {} address(es) still in use", counts.in_use);
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
