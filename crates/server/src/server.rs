//! The composition root: [`Server::start`] builds everything `ras server`
//! runs from its configuration (state directory, users, certificate,
//! listeners, TUN device, router, address source, RADIUS, accounting,
//! dynamic authorization, policies, the control pipeline and the
//! services), and [`Server::shutdown`] ends it all. The binary only loads
//! the configuration, prints the [`Notice`]s and waits for a signal.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};

use ppp::link::LinkConfig;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tunnel::pptp_server::{GreDemux, PptpServerConfig};
use tunnel::sstp_server::ServerSessionConfig;
use tunnel::PacketSink;

use crate::accounting::Accounting;
use crate::admin_snapshot::{CertificateView, Snapshot};
use crate::admin_socket::AdminSocket;
use crate::admin_view::{AdminView, DropSources};
use crate::authenticator::{Authenticator, LocalAuthenticator};
use crate::cert::{CertError, ServerCertificate};
use crate::config::{AddressSourceKind, Config};
use crate::dhcp_relay::{DhcpRelay, RelayStartError};
use crate::dhcp_source::{DhcpSettings, DhcpSource, DhcpSourceError};
use crate::dialin_service::DialinService;
use crate::l2tp_service::{self, L2tpService};
use crate::listen::{bind_tcp, ListenError};
use crate::metrics::Metrics;
use crate::netbios_driver::NetbiosGateway;
use crate::netbios_sink::NetbiosSink;
use crate::notice::{AddressesNote, Listening, Notice};
use crate::pipeline::{AccountingParts, ControlPipeline, PipelineParts};
use crate::pool::{AddressSource, StaticPool};
use crate::pptp_service::{PptpService, REFUSALS};
use crate::radius_auth::TunnelKind;
use crate::radius_setup::{RadiusSetupError, RadiusStack};
use crate::reload::{ReloadOutcome, ReloadTargets, Reloader};
use crate::router::Router;
use crate::session_settings::SessionSettings;
use crate::sessions::Sessions;
use crate::sstp_service::{SstpCertified, SstpService};
use crate::state::{StateDir, StateError};
use crate::tun::TunSink;
use crate::users::{UserStore, UserStoreError};

/// How long a graceful stop waits for sessions to say goodbye.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Users(#[from] UserStoreError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("no SSTP listener could be opened")]
    NoSstpListener,
    #[error("opening the raw GRE socket for PPTP (needs root or CAP_NET_RAW; set [pptp] listen = [] to disable PPTP)")]
    Gre(#[source] std::io::Error),
    #[error(transparent)]
    DhcpRelay(#[from] RelayStartError),
    #[error(transparent)]
    Radius(#[from] RadiusSetupError),
    #[error(transparent)]
    Ipsec(#[from] crate::ipsec_service::IpsecError),
    #[error(transparent)]
    Ikev2(#[from] crate::ikev2_service::Ikev2SetupError),
    #[error("certificate.crl_files {0}")]
    Crl(#[from] crate::crl::CrlFileError),
    #[error(transparent)]
    Admin(#[from] crate::admin_socket::AdminSocketError),
    #[error(transparent)]
    AdminHttps(#[from] crate::admin_https::AdminHttpsError),
    #[error("creating the TUN device (ras server needs root or CAP_NET_ADMIN and /dev/net/tun)")]
    TunDevice(#[source] netdev::TunError),
    #[error(transparent)]
    Tun(netdev::TunError),
    #[error(transparent)]
    Dhcp(#[from] DhcpSourceError),
    #[error(transparent)]
    Netbios(#[from] crate::netbios_driver::NetbiosStartError),
    /// The policies (checked when the file was loaded: only a
    /// configuration built in code gets here).
    #[error("{0}")]
    Policies(String),
}

/// A running server.
pub struct Server {
    pipeline: ControlPipeline,
    stop: watch::Sender<bool>,
    sstp: SstpService,
    pptp: Option<PptpService>,
    l2tp: L2tpService,
    dhcp: Option<Arc<DhcpSource>>,
    accounting: Option<Arc<Accounting>>,
    /// Who the server is to RADIUS, for its Accounting-Off.
    nas: Option<crate::radius_auth::NasIdentity>,
    pool: Arc<StaticPool>,
    /// What the admin API reads; its socket, removed when the server stops.
    admin: Arc<AdminView>,
    admin_socket: AdminSocket,
    /// The NetBIOS datagram gateway, when `[netbios]` is enabled.
    netbios: Option<Arc<NetbiosGateway>>,
    /// Reads the configuration file again (SIGHUP, `POST /v1/reload`).
    reloader: Arc<Reloader>,
    /// The ACME task, until [`Server::start_acme`] starts it.
    acme: Mutex<Option<crate::acme::AcmeManager>>,
    /// Owned here so that its routes and addresses last as long as the
    /// server (the services hold it too).
    _tun: Arc<netdev::TunDevice>,
}

/// The listening sockets, all bound before anything else is touched.
struct Listeners {
    sstp: Vec<(SocketAddr, TcpListener)>,
    pptp: Vec<(SocketAddr, TcpListener)>,
    gre: Option<Arc<GreDemux>>,
    /// Plain L2TP's UDP sockets (none unless `[l2tp] allow_plain`).
    l2tp: Vec<(SocketAddr, tokio::net::UdpSocket)>,
    /// IKE, NAT-T and raw ESP for L2TP/IPsec (none when `[ipsec]` is off).
    ipsec: Option<crate::ipsec_service::BoundIpsec>,
}

impl Listeners {
    /// Every listener is bound before any route or device is touched: a
    /// second server with the same addresses fails here having changed
    /// nothing, instead of taking the first one's routes down with it.
    fn bind(config: &Config) -> Result<Listeners, StartError> {
        let mut sstp = Vec::new();
        for addr in &config.sstp.listen {
            match bind_tcp(*addr) {
                Ok(listener) => sstp.push((*addr, listener)),
                // An IPv6 wildcard on a host without IPv6 is not fatal.
                Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => tracing::warn!("{e}"),
                Err(e) => return Err(e.into()),
            }
        }
        if sstp.is_empty() && !config.sstp.listen.is_empty() {
            return Err(StartError::NoSstpListener);
        }
        let mut pptp = Vec::new();
        let mut gre = None;
        if !config.pptp.listen.is_empty() {
            for addr in &config.pptp.listen {
                pptp.push((*addr, bind_tcp(*addr)?));
            }
            gre = Some(GreDemux::open().map_err(StartError::Gre)?);
        }
        let l2tp = l2tp_service::bind_plain(&config.l2tp)?;
        let ipsec = if config.ipsec.enabled {
            Some(crate::ipsec_service::bind(&config.ipsec)?)
        } else {
            None
        };
        Ok(Listeners {
            sstp,
            pptp,
            gre,
            l2tp,
            ipsec,
        })
    }
}

/// The PPP settings of each tunnel type.
struct Links {
    sstp: LinkConfig,
    pptp: LinkConfig,
    l2tp: LinkConfig,
    dialin: LinkConfig,
}

impl Links {
    fn from_config(config: &Config) -> Links {
        let mut link = LinkConfig::server(&config.server_name());
        link.lcp.require_auth = config.auth.methods.lcp_protocols();
        link.lcp.mru = config.ppp.mru;
        link.echo = config.ppp.echo();
        // RRAS with RADIUS relays EAP to the RADIUS server (RFC 3579)
        // instead of running EAP-MSCHAPv2 itself: the server holds the
        // passwords.
        link.authenticator.eap_pass_through = config.radius.enabled();
        // PPTP's GRE and a serial line are not encrypted: MPPE as
        // configured (required by default).
        let mut pptp = link.clone();
        pptp.ccp = Some(config.encryption.ccp_config());
        let dialin = pptp.clone();
        // SSTP is encrypted by TLS and L2TP by IPsec: no MPPE inside them
        // (RRAS does the same).
        link.ccp = None;
        Links {
            l2tp: link.clone(),
            sstp: link,
            pptp,
            dialin,
        }
    }
}

impl Server {
    /// Builds and starts everything `config` asks for, telling `notices`
    /// what the operator should know as it goes (a demo user's password
    /// is shown even if a later step fails). Must run inside the tokio
    /// runtime.
    pub async fn start(
        config: &Config,
        notices: &mut dyn FnMut(Notice),
    ) -> Result<Server, StartError> {
        Server::start_from(None, config, notices).await
    }

    /// [`Server::start`] for `config` loaded from `file`, which a reload
    /// (reload.rs) reads again (`None`: the embedded defaults).
    pub async fn start_from(
        file: Option<&std::path::Path>,
        config: &Config,
        notices: &mut dyn FnMut(Notice),
    ) -> Result<Server, StartError> {
        let state = StateDir::open(&config.state_dir)?;
        let users = Arc::new(UserStore::open(&state)?);
        if let Some(password) = users.ensure_demo_user()? {
            notices(Notice::DemoUser { password });
        }
        let pool = Arc::new(StaticPool::new(&config.addresses.ipv4_pool));
        let listen_ips: Vec<IpAddr> = config
            .sstp
            .listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect();
        let cert = ServerCertificate::for_config(
            &config.certificate,
            &state,
            &config.server_name(),
            &listen_ips,
        )?;
        notices(Notice::Certificate {
            self_signed: cert.is_self_signed(),
            fingerprint_sha256: cert.fingerprint_sha256(),
        });
        let ipv6_prefix = state.client_ipv6_prefix(config.addresses.ipv6_prefix)?;
        let listeners = Listeners::bind(config)?;
        // With the listeners: a second server fails here, before any
        // route or device is touched.
        let mut admin_socket = AdminSocket::bind(&config.admin.socket)?;
        let admin_https = crate::admin_https::bind(&config.admin, state.path()).await?;
        let metrics = Arc::new(Metrics::new());
        let started_at = std::time::SystemTime::now();

        let dhcp_mode = config.addresses.source == AddressSourceKind::Dhcp;
        let mut tun_settings = crate::tun::server_settings(
            &config.tun,
            pool.server(),
            &pool.client_ranges(),
            ipv6_prefix,
        );
        if dhcp_mode {
            // The server's address and the clients' routes come with the
            // DHCP leases (see dhcp_source), not from the static pool.
            tun_settings.ipv4 = None;
            tun_settings.routes.retain(|(net, _)| net.is_ipv6());
        }
        if !config.dhcp_relay.servers.is_empty() {
            let relay =
                DhcpRelay::open(config.dhcp_relay.servers.clone(), config.dhcp_relay.giaddr)?;
            notices(Notice::DhcpRelay {
                servers: config.dhcp_relay.servers.clone(),
                giaddr: relay.giaddr(),
            });
            tokio::spawn(relay.run());
        }
        // The Acct-Session-Ids carry the NAS-Identifier RADIUS sees
        // (unique across servers that share one RADIUS server).
        let nas_identifier = config
            .radius
            .nas_identifier
            .clone()
            .unwrap_or_else(|| config.server_name());
        let sessions = Arc::new(Sessions::for_nas(&nas_identifier));
        let radius = RadiusStack::start(
            &config.radius,
            &state,
            &config.server_name(),
            listen_ips.first().copied(),
            sessions.clone(),
            metrics.clone(),
        )
        .await?;
        if let Some(r) = &radius {
            notices(Notice::Radius {
                servers: config
                    .radius
                    .servers
                    .iter()
                    .map(|s| s.auth_addr())
                    .collect(),
                spool: r.spool_path.clone(),
            });
        }

        // Sockets first (above), then the device and its routes.
        let tun = match netdev::TunDevice::create(&tun_settings) {
            Ok(tun) => Arc::new(tun),
            Err(e @ netdev::TunError::Device { .. }) => return Err(StartError::TunDevice(e)),
            Err(e) => return Err(StartError::Tun(e)),
        };
        let router = Router::new();
        let router_for_admin = router.clone();
        tokio::spawn(router.clone().run_tun_reader(tun.clone()));
        let dhcp =
            match DhcpSettings::from_config(&config.addresses, Some(tun.name()), &nas_identifier) {
                // The leases held are recorded in the state directory: the
                // next start releases what a killed process left leased.
                Some(s) => Some(DhcpSource::start(DhcpSettings {
                    state: Some(state.clone()),
                    ..s
                })?),
                None => None,
            };
        // docs/NETBIOS.md: the gateway's LAN sockets, before any session.
        let netbios = if config.netbios.enabled {
            Some(NetbiosGateway::start(&config.netbios)?)
        } else {
            None
        };
        let policies = config.policy_set().map_err(StartError::Policies)?;
        if !config.policy.is_empty() {
            notices(Notice::Policies {
                names: policies.names().map(str::to_owned).collect(),
            });
        }

        // The control pipeline (pipeline.rs), for every tunnel type.
        let addresses: Arc<dyn AddressSource> = match &dhcp {
            Some(d) => d.clone(),
            None => pool.clone(),
        };
        let authenticator: Arc<dyn Authenticator> = match &radius {
            Some(r) => r.auth.clone(),
            None => Arc::new(LocalAuthenticator::new(users.clone())),
        };
        let accounting = radius.as_ref().and_then(|r| {
            Some(AccountingParts {
                accounting: r.accounting.clone()?,
                nas: Some(r.nas.clone()),
                interim_interval: r.interim_interval,
            })
        });
        let accounting_handle = accounting.as_ref().map(|a| a.accounting.clone());
        let nas = radius.as_ref().map(|r| r.nas.clone());
        if let (Some(acct), Some(nas)) = (accounting_handle.clone(), nas.clone()) {
            let id = sessions.server_acct_session_id();
            tokio::spawn(async move {
                crate::session_accounting::nas_event(&acct, &nas, &id, true).await;
            });
        }
        let settings = SessionSettings {
            policies: Arc::new(policies),
            dns: first_two(&config.addresses.dns),
            wins: first_two(&config.addresses.wins),
        }
        .shared();
        let pipeline = ControlPipeline::new(
            PipelineParts {
                authenticator,
                settings: settings.clone(),
                addresses,
                fallback_server_address: pool.server(),
                sessions,
                router,
                tun: Some(tun.clone()),
                ipv6_prefix,
                mtu: u32::from(config.tun.mtu),
                accounting,
                metrics: metrics.clone(),
                netbios: netbios.clone(),
            },
            TunnelKind::Sstp,
        );

        let radius_handles = Arc::new(ArcSwap::from_pointee(
            radius
                .as_ref()
                .map(|r| r.handles.clone())
                .unwrap_or_default(),
        ));
        let radius_targets = radius.as_ref().map(|r| crate::reload::RadiusTargets {
            auth: r.auth.clone(),
            accounting: r.accounting.clone(),
            view: radius_handles.clone(),
            metrics: metrics.clone(),
        });
        if let Some(dynauth) = radius.and_then(|r| r.dynauth) {
            if let Ok(listen) = dynauth.socket.local_addr() {
                notices(Notice::DynamicAuthorization { listen });
            }
            tokio::spawn(dynauth.run());
        }

        // The services: listeners → tunnel → PPP → the pipeline.
        let links = Links::from_config(config);
        let tun_writer = netdev::TunWriter::spawn(tun.clone());
        let sink: Arc<dyn PacketSink> = Arc::new(TunSink(tun_writer.clone()));
        // Clients' NetBIOS broadcasts go to the gateway, not the host.
        let sink: Arc<dyn PacketSink> = match &netbios {
            Some(gateway) => Arc::new(NetbiosSink {
                inner: sink,
                gateway: gateway.clone(),
            }),
            None => sink,
        };
        let (stop, stop_rx) = watch::channel(false);
        let sstp_ports = config.sstp.ports.get();
        // ACME (acme.rs): challenges answered on the SSTP listener, and a
        // check at each reload.
        let acme_challenges = config
            .certificate
            .acme
            .as_ref()
            .map(|_| Arc::new(crate::acme_challenge::Challenges::default()));
        let acme_check = acme_challenges
            .as_ref()
            .map(|_| Arc::new(tokio::sync::Notify::new()));
        let certified = Arc::new(ArcSwap::from_pointee(SstpCertified {
            tls: tokio_rustls::TlsAcceptor::from(cert.rustls_config()?),
            session: Arc::new(ServerSessionConfig {
                certificate_der: Arc::new(cert.leaf_der().to_vec()),
                hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA1 | sstp::CERT_HASH_PROTOCOL_SHA256,
                link: Arc::new(links.sstp),
                request_timeout: Duration::from_secs(10),
                server_name: "ras".into(),
                timers: sstp::Timers {
                    hello: config.sstp.hello_interval(),
                    ..Default::default()
                },
            }),
        }));
        let sstp = SstpService {
            certified: certified.clone(),
            hooks: Arc::new(pipeline.clone()),
            sink: sink.clone(),
            ports: crate::logical_ports::LogicalPorts::new(sstp_ports),
            failures: crate::failure_log::ListenerFailures::new("SSTP"),
            challenges: acme_challenges.clone(),
            metrics: metrics.clone(),
            gate: crate::handshake_gate::HandshakeGate::new(),
        };
        let mut sstp_listening = Vec::new();
        for (addr, listener) in listeners.sstp {
            sstp_listening.push(addr);
            tokio::spawn(sstp.clone().run(listener, stop_rx.clone()));
        }

        let pptp_ports = config.pptp.ports.get();
        let mut pptp = None;
        let mut pptp_listening = Vec::new();
        let gre = listeners.gre.clone();
        if let Some(demux) = listeners.gre {
            tokio::spawn(demux.clone().run());
            let service = PptpService {
                session: Arc::new(PptpServerConfig::new(links.pptp)),
                demux,
                hooks: Arc::new(pipeline.for_tunnel(TunnelKind::Pptp)),
                sink: sink.clone(),
                ports: crate::logical_ports::LogicalPorts::new(pptp_ports),
                refusals: Arc::new(Semaphore::new(REFUSALS)),
                failures: crate::failure_log::ListenerFailures::new("PPTP"),
            };
            for (addr, listener) in listeners.pptp {
                pptp_listening.push(addr);
                tokio::spawn(service.clone().run(listener, stop_rx.clone()));
            }
            pptp = Some(service);
        }

        // L2TP: the LNS, fed by the IPsec service through its front (and by
        // plain UDP only when allowed).
        notices(Notice::L2tp {
            plain: listeners.l2tp.iter().map(|(a, _)| *a).collect(),
            ports: config.l2tp.ports.get(),
        });
        let l2tp = L2tpService::start(
            &config.l2tp,
            links.l2tp,
            &config.server_name(),
            crate::l2tp_service::L2tpHooks {
                ipsec: Arc::new(pipeline.for_tunnel(TunnelKind::L2tp)),
                plain: Arc::new(pipeline.for_plain_l2tp()),
            },
            sink.clone(),
            listeners.l2tp,
            stop_rx.clone(),
        );
        // Reload (reload.rs) hands the IKE front end a new certificate.
        let mut ike_targets = None;
        let mut ipsec_counters = None;
        // The CRLs the IKE trust anchors consult (crl.rs), before any
        // responder can verify a client.
        crate::crl::install(crate::crl::load(&config.certificate)?);
        match listeners.ipsec {
            Some(bound) => {
                ipsec_counters = Some(bound.counters());
                let (psk, created) =
                    crate::ipsec_service::load_or_create_psk(&config.ipsec, &config.state_dir)?;
                if let Some(psk) = created {
                    notices(Notice::IpsecPsk {
                        psk,
                        file: config
                            .state_dir
                            .join(crate::ipsec_service::GENERATED_PSK_FILE),
                    });
                }
                let responder = crate::ipsec_service::responder_config(&config.ipsec, &psk, &cert)?;
                let ikev2 = if config.ikev2.enabled {
                    let responder = crate::ikev2_service::responder_config(
                        &config.ikev2,
                        &config.ipsec,
                        &psk,
                        &cert,
                        &config.server_name(),
                    )?;
                    Some(tunnel::ikev2_server::Ikev2Service {
                        config: responder,
                        hooks: Arc::new(pipeline.for_tunnel(TunnelKind::Ikev2)),
                        sink: sink.clone(),
                        eap_name: config.server_name(),
                        eap_pass_through: config.radius.enabled(),
                        session_ids: Arc::new(|| crate::SessionId::next().raw()),
                        routes: config
                            .ikev2
                            .routes
                            .iter()
                            .map(|r| {
                                ipsec::ikev2::traffic_selectors::TrafficSelector::ipv4_prefix(
                                    r.network, r.length,
                                )
                            })
                            .collect(),
                        ports: config.ikev2.ports.get() as usize,
                    })
                } else {
                    None
                };
                notices(Notice::Ipsec {
                    ikev1: config.ipsec.ikev1,
                    ike: bound.ike_addr(),
                    nat_t: bound.nat_t_addr(),
                    raw_esp_error: bound.raw_esp_error.clone(),
                    ikev2: ikev2
                        .as_ref()
                        .map(|s| ikev2_words(&config.ikev2, &s.config)),
                });
                let (reconfigure, reconfigured) = tokio::sync::mpsc::unbounded_channel();
                ike_targets = Some(crate::reload::IkeTargets {
                    psk: psk.clone(),
                    reconfigure,
                });
                crate::ipsec_service::spawn(
                    bound,
                    responder,
                    l2tp.front(),
                    ikev2,
                    config.ipsec.ikev1,
                    reconfigured,
                    stop_rx.clone(),
                );
            }
            None => notices(Notice::IpsecOff),
        }

        // Dial-in lines: the same pipeline and TUN.
        if !config.dialin.devices.is_empty() {
            let service = DialinService {
                link: links.dialin,
                modem: config.dialin.modem,
                numbers: config.dialin.numbers.clone(),
                hooks: Arc::new(pipeline.for_tunnel(TunnelKind::Dialup)),
                sink: sink.clone(),
            };
            let mut devices = Vec::new();
            for device in &config.dialin.devices {
                devices.push(device.display().to_string());
                tokio::spawn(service.clone().run(device.clone(), stop_rx.clone()));
            }
            notices(Notice::Dialin { devices });
        }

        // The admin API (docs/ADMIN.md).
        let certificate = Arc::new(ArcSwapOption::from(cert.subject_and_expiry().map(
            |(subject, not_after)| {
                Arc::new(CertificateView {
                    subject,
                    not_after,
                    sha256_fingerprint: cert.fingerprint_sha256(),
                    self_signed: cert.is_self_signed(),
                })
            },
        )));
        let admin_tls: Option<crate::admin_https::SharedTls> = match &admin_https {
            Some(_) => Some(Arc::new(arc_swap::ArcSwap::new(
                crate::admin_https::tls_config(&cert.rustls_config()?),
            ))),
            None => None,
        };
        // Reload (reload.rs): what it swaps.
        let reloader = Arc::new(Reloader::new(
            file,
            config,
            cert.fingerprint_sha256(),
            ReloadTargets {
                sstp: certified,
                settings,
                pool: pool.clone(),
                tun: (!dhcp_mode).then(|| tun.clone()),
                certificate_view: certificate.clone(),
                state: state.clone(),
                radius: radius_targets,
                ike: ike_targets,
                admin_tls: admin_tls.clone(),
                acme_check: acme_check.clone(),
            },
        ));
        reloader.observe(Box::new({
            let metrics = metrics.clone();
            move |event| {
                if let crate::reload::ReloadEvent::Finished(outcome) = event {
                    metrics.reload(outcome.ok);
                }
            }
        }));
        let acme = match (&config.certificate.acme, acme_challenges, acme_check) {
            (Some(acme), Some(challenges), Some(check)) => Some(crate::acme::AcmeManager::new(
                acme.clone(),
                &config.server_name(),
                state.clone(),
                challenges,
                reloader.clone(),
                check,
            )),
            _ => None,
        };
        let admin = Arc::new(AdminView {
            server_name: config.server_name(),
            started_at,
            sessions: pipeline.sessions().clone(),
            pool: pool.clone(),
            dhcp: dhcp.as_ref().map(|d| {
                let interface = config.addresses.dhcp_interface.clone().unwrap_or_default();
                (interface, d.clone())
            }),
            radius: radius_handles,
            accounting: accounting_handle.clone(),
            certificate,
            reloader: Some(reloader.clone()),
            drops: DropSources {
                router: Some(router_for_admin),
                gre,
                l2tp: Some(l2tp.front()),
                tun: Some(tun_writer),
                ipsec: ipsec_counters,
            },
            metrics,
            netbios: netbios.clone(),
        });
        if let Some(listener) = admin_socket.take_listener() {
            let listener = listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(listener))
                .map_err(|source| crate::admin_socket::AdminSocketError::Io {
                    path: admin_socket.path().to_owned(),
                    source,
                })?;
            tokio::spawn(crate::admin_api::serve(
                listener,
                admin.clone(),
                stop_rx.clone(),
            ));
        }
        notices(Notice::Admin {
            socket: admin_socket.path().to_owned(),
        });
        if let (Some((tcp, token)), Some(tls)) = (admin_https, admin_tls) {
            let listen =
                tcp.local_addr()
                    .map_err(|source| crate::admin_https::AdminHttpsError::Bind {
                        addr: config
                            .admin
                            .listen
                            .unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
                        source,
                    })?;
            tokio::spawn(crate::admin_https::serve(
                tcp,
                tls,
                admin.clone(),
                token,
                stop_rx.clone(),
            ));
            notices(Notice::AdminHttps { listen });
        }

        let addresses = match &config.addresses.dhcp_interface {
            Some(interface) if dhcp_mode => AddressesNote::Dhcp {
                interface: interface.clone(),
                block: config.addresses.dhcp_block,
            },
            _ => AddressesNote::Pool {
                server: pool.server(),
                ranges: pool
                    .client_ranges()
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect(),
            },
        };
        notices(Notice::Listening(Listening {
            sstp: sstp_listening,
            sstp_ports,
            pptp: pptp_listening,
            pptp_ports,
            addresses,
            tun: tun.name().to_owned(),
        }));
        if let Some(prefix) = ipv6_prefix {
            notices(Notice::Ipv6 { prefix });
        }

        Ok(Server {
            pipeline,
            stop,
            sstp,
            pptp,
            l2tp,
            dhcp,
            accounting: accounting_handle,
            nas,
            pool,
            admin,
            admin_socket,
            netbios,
            reloader,
            acme: Mutex::new(acme),
            _tun: tun,
        })
    }

    /// Starts obtaining and renewing the ACME certificate, when
    /// `[certificate.acme]` is on (acme.rs). Called once the server runs
    /// as its own user, so that what it writes in the state directory
    /// belongs to that user.
    pub fn start_acme(&self) {
        let manager = self.acme.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(manager) = manager {
            tokio::spawn(manager.run(self.stop.subscribe()));
        }
    }

    /// Sessions holding resources right now.
    pub fn active_sessions(&self) -> usize {
        self.pipeline.active()
    }

    /// The L2TP server's front door: the IPsec service hands it the L2TP
    /// datagrams it decrypted (and tells it when an SA is gone).
    pub fn l2tp_front(&self) -> tunnel::l2tp_server::L2tpFront {
        self.l2tp.front()
    }

    /// The session table (status, tests).
    pub fn sessions(&self) -> &Arc<Sessions> {
        self.pipeline.sessions()
    }

    /// What the admin API shows now (docs/ADMIN.md).
    pub fn snapshot(&self) -> Snapshot {
        self.admin.snapshot()
    }

    /// Reads the configuration file again and swaps in what changed, or
    /// nothing if anything is wrong (reload.rs); logs one line.
    pub async fn reload(&self) -> ReloadOutcome {
        let reloader = self.reloader.clone();
        tokio::task::spawn_blocking(move || reloader.reload())
            .await
            .unwrap_or_else(|e| ReloadOutcome {
                ok: false,
                changed: Vec::new(),
                error: Some(format!("the reload task failed: {e}")),
            })
    }

    /// The admin API's view (its disconnects, the metrics).
    pub fn admin(&self) -> &Arc<AdminView> {
        &self.admin
    }

    /// Stops accepting, ends every session (RFC 2866 §5.10: cause
    /// Admin-Reboot, the server going down) and waits up to [`DRAIN`] for
    /// them, gives back the DHCP leases and lets accounting catch up.
    pub async fn shutdown(self, notices: &mut dyn FnMut(Notice)) {
        notices(Notice::Stopping {
            sessions: self.active_sessions(),
        });
        self.sessions()
            .mark_all(tunnel::TerminateCause::AdminReboot);
        let _ = self.stop.send(true);
        let pptp_drain = async {
            match &self.pptp {
                Some(p) => p.drain(DRAIN).await,
                None => true,
            }
        };
        let (sstp_done, pptp_done, l2tp_done) =
            tokio::join!(self.sstp.drain(DRAIN), pptp_drain, self.l2tp.drain(DRAIN));
        if !(sstp_done && pptp_done && l2tp_done) {
            tracing::warn!("some sessions did not end within {} s", DRAIN.as_secs());
        }
        if let Some(d) = &self.dhcp {
            // RRAS sends DHCPRELEASE for every leased address when it stops.
            notices(Notice::DhcpReleased {
                leases: d.stop().await,
            });
        }
        if let (Some(acct), Some(nas)) = (&self.accounting, &self.nas) {
            // Every session's Stop is spooled: the NAS goes off.
            let id = self.sessions().server_acct_session_id();
            let off = crate::session_accounting::nas_event(acct, nas, &id, false);
            let _ = tokio::time::timeout(Duration::from_secs(3), off).await;
        }
        if let Some(acct) = &self.accounting {
            // Give the Stop records a moment to reach the server; whatever
            // is left stays in the spool for the next start.
            if !acct.flush(Duration::from_secs(3)).await {
                notices(Notice::SpoolKept {
                    records: acct.pending(),
                });
            }
        }
        self.admin_socket.remove();
        if let Some(n) = &self.netbios {
            tracing::info!("{}", n.summary());
            n.stop();
        }
        notices(Notice::Stopped {
            addresses_in_use: self.pool.counts().in_use,
        });
    }

    /// The NetBIOS gateway (its counters for the log and metrics), when
    /// `[netbios]` is enabled.
    pub fn netbios(&self) -> Option<&Arc<NetbiosGateway>> {
        self.netbios.as_ref()
    }
}

/// The first two servers of a list (IPCP has a primary and a secondary,
/// RFC 1877 §1.1–1.4).
fn first_two(list: &[std::net::Ipv4Addr]) -> [Option<std::net::Ipv4Addr>; 2] {
    [list.first().copied(), list.get(1).copied()]
}

/// How IKEv2 clients authenticate, for the start-up line.
fn ikev2_words(
    config: &crate::ikev2_config::Ikev2ServerConfig,
    responder: &ipsec::ikev2::Ikev2Config,
) -> String {
    let identity = match &responder.local_identity {
        ipsec::ikev2::LocalIdentity::Fqdn(name) => name.clone(),
        ipsec::ikev2::LocalIdentity::Address(a) => a.to_string(),
    };
    let mut methods = Vec::new();
    if config.eap() {
        methods.push("EAP");
    }
    if config.certificate() {
        methods.push("a client certificate");
    }
    if config.psk() {
        methods.push("the pre-shared key");
    }
    let methods = match methods.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".to_string(),
    };
    format!("{methods}, as {identity}")
}
