//! What a [`super::Link`] is configured with and what it reports.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::auth::{AuthFailure, AuthProtocol, AuthRequest, AuthenticatorConfig, PeerConfig};
use crate::cbcp::{CallbackDecision, CbcpClientConfig, CbcpServerConfig};
use crate::ccp::CcpConfig;
use crate::crypto::mppe_keys::MasterKeys;
use crate::fsm::FsmConfig;
use crate::ipcp::IpcpConfig;
use crate::ipv6cp::Ipv6cpConfig;
use crate::lcp::LcpConfig;
use crate::mppe::MppeSettings;

/// Which end of the link we are. The server authenticates the client and
/// assigns its addresses; the client authenticates itself and accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// LCP Echo keepalive (RFC 1661 §5.8).
#[derive(Debug, Clone, Copy)]
pub struct EchoConfig {
    /// Send an Echo-Request after this long.
    pub interval: Duration,
    /// Unanswered Echo-Requests before the peer is declared dead.
    pub max_failures: u32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            interval: Duration::from_secs(30),
            max_failures: 4,
        }
    }
}

/// Everything a [`super::Link`] needs to know up front.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub role: Role,
    pub lcp: LcpConfig,
    /// Timer and counters for LCP and every NCP (RFC 1661 §4.6).
    pub fsm: FsmConfig,
    /// Authenticator settings (used when LCP negotiated that we check the
    /// peer: normally the server).
    pub authenticator: AuthenticatorConfig,
    /// Our credentials (used when LCP negotiated that we authenticate
    /// ourselves: normally the client).
    pub credentials: Option<PeerConfig>,
    /// Callback control (CBCP) as the server offers it.
    pub cbcp_server: CbcpServerConfig,
    /// Callback control (CBCP) as the client answers it.
    pub cbcp_client: CbcpClientConfig,
    /// IPCP; `None` rejects IPv4 (Protocol-Reject of IPCP).
    pub ipcp: Option<IpcpConfig>,
    /// IPv6CP; `None` rejects IPv6.
    pub ipv6cp: Option<Ipv6cpConfig>,
    /// CCP/MPPE; `None` rejects CCP.
    pub ccp: Option<CcpConfig>,
    /// LCP Echo keepalive; `None` disables it.
    pub echo: Option<EchoConfig>,
    /// Message sent in an LCP Identification packet once LCP is open
    /// (RFC 1570 §2.1); Windows sends its RAS version this way.
    pub identification: Option<String>,
    /// The whole authentication phase (including waiting for a RADIUS
    /// answer) must finish within this time.
    pub auth_timeout: Duration,
    /// Seed for challenges, magic numbers and interface identifiers.
    /// `None` seeds from the operating system (always, outside tests).
    pub rng_seed: Option<u64>,
}

impl LinkConfig {
    /// A server link with the defaults a Windows client expects.
    pub fn server(name: &str) -> Self {
        LinkConfig {
            role: Role::Server,
            lcp: LcpConfig::server(),
            fsm: FsmConfig::default(),
            authenticator: AuthenticatorConfig::new(name),
            credentials: None,
            cbcp_server: CbcpServerConfig::no_callback(),
            cbcp_client: CbcpClientConfig::no_callback(),
            ipcp: Some(IpcpConfig::client()),
            ipv6cp: Some(Ipv6cpConfig::default()),
            ccp: Some(CcpConfig::default()),
            echo: Some(EchoConfig::default()),
            identification: None,
            auth_timeout: Duration::from_secs(60),
            rng_seed: None,
        }
    }

    /// A client link authenticating as `username`.
    pub fn client(username: &str, password: &str) -> Self {
        LinkConfig {
            role: Role::Client,
            lcp: LcpConfig::client(),
            fsm: FsmConfig::default(),
            authenticator: AuthenticatorConfig::default(),
            credentials: Some(PeerConfig::new(username, password)),
            cbcp_server: CbcpServerConfig::no_callback(),
            cbcp_client: CbcpClientConfig::no_callback(),
            ipcp: Some(IpcpConfig::client()),
            ipv6cp: Some(Ipv6cpConfig::default()),
            ccp: Some(CcpConfig::default()),
            echo: Some(EchoConfig::default()),
            identification: None,
            auth_timeout: Duration::from_secs(60),
            rng_seed: None,
        }
    }
}

/// What the server decided for one session's network phase: given to
/// [`super::Link::start_network`] after authentication (addresses come from
/// a pool or DHCP, which may take time).
#[derive(Debug, Clone, Default)]
pub struct NetworkSettings {
    /// Replaces the configured IPCP settings (addresses, DNS, NBNS).
    pub ipcp: Option<IpcpConfig>,
    /// Replaces the configured IPv6CP settings.
    pub ipv6cp: Option<Ipv6cpConfig>,
    /// Replaces the configured CCP settings (policy may demand stronger).
    pub ccp: Option<CcpConfig>,
}

/// The PPP phases of RFC 1661 §3.2, plus Callback (MS-CBCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Dead,
    Establish,
    Authenticate,
    Callback,
    Network,
    Terminate,
}

/// Negotiated IPv4 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Info {
    pub local: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub dns: [Option<Ipv4Addr>; 2],
    pub nbns: [Option<Ipv4Addr>; 2],
}

/// Negotiated IPv6 interface identifiers (RFC 5072 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Info {
    pub local_interface_id: [u8; 8],
    pub peer_interface_id: [u8; 8],
}

/// Everything negotiated, reported once the network phase is complete.
#[derive(Debug, Clone)]
pub struct LinkUp {
    /// The authenticated identity (server: the peer's name; client: ours).
    pub username: Option<String>,
    pub auth_protocol: Option<AuthProtocol>,
    /// MS-CHAPv2 (plain or in EAP) master keys in this side's view: what
    /// MPPE and the SSTP crypto binding (MS-SSTP §3.2.5.2) are built on.
    pub master_keys: Option<MasterKeys>,
    pub ipv4: Option<Ipv4Info>,
    pub ipv6: Option<Ipv6Info>,
    pub mppe: Option<MppeSettings>,
    /// The MRU the peer asked us to respect.
    pub peer_mru: u16,
}

/// Why the link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We closed it, with this reason.
    Closed(String),
    /// The peer sent Terminate-Request (its text).
    PeerTerminated(String),
    /// LCP got no answer.
    NoResponse,
    /// LCP options never converged, or the peer rejected an essential code.
    NegotiationFailed(String),
    /// The peer would not authenticate with any protocol we allow.
    AuthRefused,
    /// Authentication failed.
    AuthFailed(AuthFailure),
    /// The authentication phase took too long.
    AuthTimeout,
    /// Encryption was required but could not be negotiated.
    EncryptionRequired,
    /// No network protocol (IPCP, IPv6CP) could be opened.
    NoNetworkProtocol,
    /// The peer stopped answering LCP Echo-Requests.
    PeerDead,
    /// Our own magic number came back.
    LoopedBack,
    /// The transport went away.
    LowerLayerDown,
    /// The link ends so that the server can call back (MS-CBCP).
    CallbackRequested(CallbackDecision),
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::Closed(r) => write!(f, "closed locally: {r}"),
            DownReason::PeerTerminated(r) => write!(f, "peer terminated: {r}"),
            DownReason::NoResponse => f.write_str("peer does not answer LCP"),
            DownReason::NegotiationFailed(r) => write!(f, "negotiation failed: {r}"),
            DownReason::AuthRefused => f.write_str("no authentication protocol in common"),
            DownReason::AuthFailed(fail) => {
                write!(
                    f,
                    "authentication failed (error {}): {}",
                    fail.rejection.code(),
                    fail.message
                )
            }
            DownReason::AuthTimeout => f.write_str("authentication timed out"),
            DownReason::EncryptionRequired => f.write_str("required encryption not negotiated"),
            DownReason::NoNetworkProtocol => f.write_str("no network protocol negotiated"),
            DownReason::PeerDead => f.write_str("peer stopped answering echo requests"),
            DownReason::LoopedBack => f.write_str("link is looped back"),
            DownReason::LowerLayerDown => f.write_str("transport closed"),
            DownReason::CallbackRequested(d) => write!(f, "callback requested: {d}"),
        }
    }
}

/// What a [`super::Link`] reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// Server: check these credentials and answer with
    /// `provide_secret`, `reject_auth`, `accept_external` or `eap_challenge`.
    AuthRequest(AuthRequest),
    /// Authentication (and callback control) succeeded; a server now
    /// decides the session's addresses and calls `start_network`.
    Authenticated {
        username: String,
        protocol: Option<AuthProtocol>,
    },
    /// Client: the server refused the password but allows a retry
    /// (MS-CHAPv2 R=1); call `retry_auth` or let it fail.
    AuthRetryAllowed(AuthFailure),
    /// The peer identified itself (RFC 1570 §2.1).
    PeerIdentification(String),
    /// The peer says the session ends in this many seconds (RFC 1570 §2.2).
    TimeRemaining(u32),
    /// The network phase is complete: data may flow.
    Up(LinkUp),
    /// The link is down; nothing more will happen.
    Down(DownReason),
}
