//! The server's TOML configuration (`ras server --config FILE`).
//!
//! Every key is optional and has an embedded default, so `ras server` runs
//! with no file at all (ARCHITECTURE.md, "Configuration and state"). The
//! defaults are written out, key by key, in `crates/server/ras.example.toml`;
//! a test checks that the example parses to exactly [`Config::default`].
//!
//! Parsing is strict: an unknown key is an error rather than silently
//! ignored, because a misspelt key (`port = 64` for `ports`) would otherwise
//! leave a default in force that the operator believes changed. Every error
//! names the file, the line and column, and the dotted key
//! (``ras.toml:12:9: key `addresses.ipv4_pool[1]`: …``), using the byte span
//! that `toml` attaches to its errors.
//!
//! Checks that concern one value (an address that does not parse, a port
//! limit of 0, overlapping pool ranges) run while deserializing, inside the
//! value's own `Deserialize` impl, so that the span, and hence the line and
//! key, point at the offending value.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// The environment variable that overrides `state_dir` (file or default).
pub const STATE_DIR_ENV: &str = "RAS_STATE_DIR";

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ras";

/// The environment variable that overrides `[admin] socket` (file or
/// default), like `RAS_STATE_DIR`: lets several servers run side by side
/// (tests) without a file each.
pub const ADMIN_SOCKET_ENV: &str = "RAS_ADMIN_SOCKET";

/// The account the server drops to after binding (`user`).
pub const DEFAULT_USER: &str = "ras";

/// The default admin socket (docs/ADMIN.md).
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/ras/admin.sock";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value is wrong. `line` and `column`
    /// are 1-based; `key` is the dotted path of the offending key when it can
    /// be found (it cannot for pure syntax errors).
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
}

/// Deserializes a string through `FromStr`, raising the error inside the
/// deserializer's own call so that `toml` attaches the value's span (an
/// error made after `String::deserialize` returned would carry none, and
/// would be reported at the enclosing array or table).
pub(crate) fn via_str<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr<Err = String>> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, std::marker::PhantomData))
}

/// Deserializes an integer through `check`, inside the deserializer's call
/// (see [`via_str`]).
fn via_int<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(i64) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(i64) -> Result<T, String>);
    impl<T> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.1)(i64::try_from(v).unwrap_or(i64::MAX)).map_err(E::custom)
        }
    }
    d.deserialize_i64(V(expecting, check))
}

/// The whole configuration. Every section and key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where durable state lives: the user store (`ras.db`), the
    /// self-signed certificate, the key for reversible passwords, the stored
    /// ULA prefix. Default `/var/lib/ras`; the environment variable
    /// `RAS_STATE_DIR` overrides both the default and the file.
    pub state_dir: PathBuf,
    /// The name clients use to reach this server: the certificate's Subject
    /// CN and first SAN, and the NAS-Identifier later. Default: the host
    /// name (see [`Config::server_name`]).
    pub server_name: Option<String>,
    /// The issue's "[server] user" (the server's keys are top-level): the
    /// account the server runs as once its sockets are bound and its TUN
    /// device is open (see [`crate::privilege`]). Default `ras`; `""` or
    /// `"root"` keeps root.
    pub user: String,
    /// SSTP listener.
    pub sstp: SstpConfig,
    /// PPTP listener.
    pub pptp: PptpConfig,
    /// L2TP (inside IPsec; plain on UDP only when allowed).
    pub l2tp: L2tpConfig,
    /// The IKEv1 responder in front of L2TP (L2TP/IPsec, RFC 3193).
    pub ipsec: crate::ipsec_config::IpsecConfig,
    /// IKEv2 remote access on the `[ipsec]` sockets.
    pub ikev2: crate::ikev2_config::Ikev2ServerConfig,
    /// The TLS/IKE server certificate.
    pub certificate: CertificateConfig,
    /// Addresses handed to clients.
    pub addresses: AddressConfig,
    /// Authentication methods.
    pub auth: AuthConfig,
    /// MPPE policy for links whose tunnel does not encrypt.
    pub encryption: EncryptionConfig,
    /// PPP link parameters.
    pub ppp: PppConfig,
    /// The TUN device that carries client traffic to and from the host.
    pub tun: TunConfig,
    /// RADIUS authentication, accounting and dynamic authorization.
    pub radius: crate::radius_config::RadiusConfig,
    /// `[policies]`: settings of the remote access policies.
    pub policies: policy::PoliciesSettings,
    /// `[[policy]]`: remote access policies, first match wins
    /// (docs/POLICIES.md).
    pub policy: Vec<policy::PolicyConfig>,
    /// Dial-in PPP on serial lines (off unless devices are listed).
    pub dialin: DialinConfig,
    /// DHCP relay for clients' DHCPINFORM.
    pub dhcp_relay: DhcpRelayConfig,
    /// The NetBIOS datagram gateway between clients and the LAN.
    pub netbios: crate::netbios_config::NetbiosConfig,
    /// The admin API's Unix socket (docs/ADMIN.md).
    pub admin: AdminConfig,
}

/// `[admin]`: the admin API (sessions, pools, RADIUS, metrics) on a Unix
/// socket that only root and the `ras` group can reach.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The socket's path. Default `/run/ras/admin.sock`; the environment
    /// variable `RAS_ADMIN_SOCKET` overrides both the default and the file.
    pub socket: PathBuf,
    /// The same API, `/metrics` and the web status page over HTTPS on
    /// this address (`admin_https.rs`); absent: off.
    pub listen: Option<SocketAddr>,
    /// The bearer token of `listen`: this file's first line (relative to
    /// the state directory). Required with `listen`.
    pub token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: PathBuf::from(DEFAULT_ADMIN_SOCKET),
            listen: None,
            token_file: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            server_name: None,
            user: DEFAULT_USER.to_owned(),
            sstp: SstpConfig::default(),
            pptp: PptpConfig::default(),
            l2tp: L2tpConfig::default(),
            ipsec: crate::ipsec_config::IpsecConfig::default(),
            ikev2: crate::ikev2_config::Ikev2ServerConfig::default(),
            certificate: CertificateConfig::default(),
            addresses: AddressConfig::default(),
            auth: AuthConfig::default(),
            encryption: EncryptionConfig::default(),
            ppp: PppConfig::default(),
            tun: TunConfig::default(),
            radius: crate::radius_config::RadiusConfig::default(),
            policies: policy::PoliciesSettings::default(),
            policy: Vec::new(),
            dialin: DialinConfig::default(),
            dhcp_relay: DhcpRelayConfig::default(),
            admin: AdminConfig::default(),
            netbios: crate::netbios_config::NetbiosConfig::default(),
        }
    }
}

/// `[dialin]`: PPP over serial lines (ttys, or ptys in tests), the
/// dial-up side of RRAS. Sessions take the same authentication, pool and
/// TUN path as SSTP; MPPE follows `[encryption]` (the line is clear).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialinConfig {
    /// Serial devices to answer on, e.g. `["/dev/ttyS0"]`. Default none.
    pub devices: Vec<PathBuf>,
    /// Emulate a modem: answer `AT…` with `OK` and `ATD<number>` with
    /// `CONNECT` before PPP starts. Default true.
    pub modem: bool,
    /// With `modem`: the access numbers answered (digits compared); a
    /// call to another number gets `NO CARRIER`. Default: any number.
    pub numbers: Vec<String>,
}

impl Default for DialinConfig {
    fn default() -> Self {
        DialinConfig {
            devices: Vec::new(),
            modem: true,
            numbers: Vec::new(),
        }
    }
}

/// `[sstp]`: the MS-SSTP listener (HTTPS).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SstpConfig {
    /// Addresses to listen on. Default `["0.0.0.0:443", "[::]:443"]`. An
    /// IPv6 wildcard is bound IPv6-only (see [`crate::listen`]) so that it
    /// can coexist with the IPv4 wildcard. An empty list disables SSTP.
    pub listen: Vec<SocketAddr>,
    /// Logical ports: the most SSTP sessions at once; one more is refused
    /// with a clear reason. Default 128.
    pub ports: PortLimit,
    /// MS-SSTP §3.1.2.1 Hello timer: with no traffic for this long, send an
    /// SSTP Echo Request; the connection is dropped when the next period
    /// passes without an answer. Default 60 seconds.
    pub hello_interval_secs: u32,
}

impl Default for SstpConfig {
    fn default() -> Self {
        SstpConfig {
            listen: vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 443)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 443)),
            ],
            ports: PortLimit::DEFAULT,
            hello_interval_secs: 60,
        }
    }
}

impl SstpConfig {
    /// The Hello interval as a duration.
    pub fn hello_interval(&self) -> Duration {
        Duration::from_secs(self.hello_interval_secs.into())
    }
}

/// `[pptp]`: the PPTP listener (TCP control connections; GRE on a raw
/// socket).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PptpConfig {
    /// Addresses to listen on for control connections (IPv4 only: PPTP's
    /// GRE is IPv4 here). Default `["0.0.0.0:1723"]`. An empty list
    /// disables PPTP.
    pub listen: Vec<SocketAddr>,
    /// Logical ports: the most PPTP calls at once; one more is refused
    /// (Outgoing-Call-Reply General Error / No-Resource). Default 128, as
    /// RRAS creates.
    pub ports: PortLimit,
}

impl Default for PptpConfig {
    fn default() -> Self {
        PptpConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1723))],
            ports: PortLimit::DEFAULT,
        }
    }
}

/// `[l2tp]`: the L2TP network server (RFC 2661). L2TP is meant to run
/// inside IPsec (L2TP/IPsec, RFC 3193), which encrypts it; plain L2TP on
/// UDP carries PPP in the clear, so it is off unless `allow_plain`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L2tpConfig {
    /// UDP addresses for plain L2TP, used only with `allow_plain`. Default
    /// `["0.0.0.0:1701"]`.
    pub listen: Vec<SocketAddr>,
    /// Logical ports: the most L2TP calls at once; one more is refused
    /// (CDN). Default 128, as RRAS creates.
    pub ports: PortLimit,
    /// Serve plain L2TP (without IPsec) on `listen`. Default false: UDP
    /// 1701 is not bound at all, and L2TP is accepted only from the IPsec
    /// service.
    pub allow_plain: bool,
    /// RFC 2661 §6.5: send HELLO after this long without a control
    /// message from the peer; a peer that does not acknowledge it (§5.8
    /// retransmissions) is gone and its sessions end. Default 60 seconds.
    pub hello_interval_secs: u32,
}

impl Default for L2tpConfig {
    fn default() -> Self {
        L2tpConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1701))],
            ports: PortLimit::DEFAULT,
            allow_plain: false,
            hello_interval_secs: 60,
        }
    }
}

impl L2tpConfig {
    /// The HELLO interval as a duration.
    pub fn hello_interval(&self) -> Duration {
        Duration::from_secs(self.hello_interval_secs.into())
    }
}

/// A number of logical ports: at least 1 (0 would be a listener that
/// refuses everyone; disable the protocol instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortLimit(u32);

impl PortLimit {
    /// 128, RRAS's default for PPTP and L2TP.
    pub const DEFAULT: PortLimit = PortLimit(128);
    /// An upper bound that keeps a typo (`1280000`) from reserving memory
    /// for absurd numbers of sessions.
    pub const MAX: u32 = 1_000_000;

    /// A limit, if `n` is in `1..=MAX`.
    pub fn new(n: u32) -> Option<PortLimit> {
        (1..=Self::MAX).contains(&n).then_some(PortLimit(n))
    }

    /// The number of ports.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for PortLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_int(d, "a number of ports", |n| {
            u32::try_from(n)
                .ok()
                .and_then(PortLimit::new)
                .ok_or_else(|| {
                    format!(
                        "port limit must be between 1 and {}, not {n}",
                        PortLimit::MAX
                    )
                })
        })
    }
}

/// `[certificate]`: the server certificate. Both keys absent: a self-signed
/// certificate is created in the state directory on first start and reused
/// afterwards (see [`crate::cert`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateConfig {
    /// PEM file with the certificate chain, leaf first.
    pub chain: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// `[certificate.acme]`: obtain and renew the certificate from an ACME
    /// CA (RFC 8555) with TLS-ALPN-01 (RFC 8737) on the SSTP port; see
    /// [`crate::acme`]. Excludes `chain` and `key`.
    pub acme: Option<AcmeConfig>,
    /// CRL files (PEM or DER) for the client certificates checked against
    /// `ipsec.ca_file` and `ikev2.client_ca` (see [`crate::crl`]).
    pub crl_files: Vec<PathBuf>,
    /// What a client certificate whose issuer has no current CRL gets.
    pub crl_policy: crate::crl::CrlPolicyConfig,
    /// Ask the certificate's OCSP responder (RFC 6960) when no CRL file
    /// covers its issuer (see [`crate::online_status`]).
    pub ocsp: crate::crl::OcspConfig,
    /// An http:// OCSP responder asked instead of the certificate's own.
    pub ocsp_responder: Option<String>,
    /// Fetch the CRL of the certificate's http:// distribution points when
    /// no CRL file covers its issuer.
    pub fetch_crls: bool,
}

/// `[certificate.acme]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL (`https://…/directory`).
    pub directory: String,
    /// The names the certificate is for (default: `server_name`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// An e-mail address the CA may write to about the account.
    #[serde(default)]
    pub contact: Option<String>,
    /// PEM file with the roots that the directory's HTTPS certificate
    /// chains to (default: the Mozilla roots built in).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Renew when fewer days than this remain (default 30).
    #[serde(default = "default_renew_before_days")]
    pub renew_before_days: u32,
}

fn default_renew_before_days() -> u32 {
    30
}

impl AcmeConfig {
    /// The names to order: `domains`, or else the server name.
    pub fn names(&self, server_name: &str) -> Vec<String> {
        if self.domains.is_empty() {
            vec![server_name.to_owned()]
        } else {
            self.domains.clone()
        }
    }
}

/// `[addresses]`: what clients get.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddressConfig {
    /// The static IPv4 pool: one or more ranges `"FIRST-LAST"` (or a single
    /// address). The server itself takes the first address of the first
    /// range; clients get the following ones, lowest free first. Default
    /// `["10.0.10.20-10.0.10.29"]`, the seed's RRAS example.
    pub ipv4_pool: Ipv4Pool,
    /// The IPv6 /64 prefix advertised to IPv6CP clients: `"auto"` (default)
    /// is a ULA prefix (RFC 4193) made from a random Global ID stored in the
    /// state directory, so it is stable across restarts and unique per
    /// server; `"off"` disables IPv6; or an explicit `"2001:db8:1:2::/64"`.
    pub ipv6_prefix: Ipv6PrefixSetting,
    /// DNS servers handed out in IPCP (RFC 1877): at most two, primary
    /// first. Default none.
    pub dns: Vec<Ipv4Addr>,
    /// WINS (NBNS) servers handed out in IPCP (RFC 1877): at most two.
    /// Default none.
    pub wins: Vec<Ipv4Addr>,
    /// Where client addresses come from: `"static"` (default, `ipv4_pool`)
    /// or `"dhcp"` (leased from the intranet's DHCP server through
    /// `dhcp_interface`, `dhcp_block` at a time, as RRAS does).
    pub source: AddressSourceKind,
    /// With `source = "dhcp"`: the intranet interface to lease through
    /// (RRAS's "Adapter"). Required then.
    pub dhcp_interface: Option<String>,
    /// With `source = "dhcp"`: addresses leased at a time (1–256).
    /// Default 10, as RRAS.
    pub dhcp_block: u16,
    /// With `source = "dhcp"`: seconds a client waits for the DHCP server
    /// before it gets an APIPA address (169.254.0.0/16) (1–120). Default 8.
    pub dhcp_timeout_secs: u16,
    /// With `source = "dhcp"`: after a fall-back to APIPA, seconds before
    /// DHCP is tried again. Default 300.
    pub dhcp_retry_secs: u32,
}

/// `addresses.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AddressSourceKind {
    #[default]
    Static,
    Dhcp,
}

/// `[dhcp_relay]`: relay remote access clients' DHCPINFORM to intranet
/// DHCP servers (RRAS's DHCP Relay Agent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpRelayConfig {
    /// The DHCP servers' addresses. Default none (relay off).
    pub servers: Vec<Ipv4Addr>,
    /// The relay's own address put in giaddr, where servers answer.
    /// Default: this host's address towards the first server.
    pub giaddr: Option<Ipv4Addr>,
}

impl Default for AddressConfig {
    fn default() -> Self {
        AddressConfig {
            ipv4_pool: Ipv4Pool::default(),
            ipv6_prefix: Ipv6PrefixSetting::Auto,
            dns: Vec::new(),
            wins: Vec::new(),
            source: AddressSourceKind::Static,
            dhcp_interface: None,
            dhcp_block: 10,
            dhcp_timeout_secs: 8,
            dhcp_retry_secs: 300,
        }
    }
}

/// An inclusive range of IPv4 addresses, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Range {
    start: Ipv4Addr,
    end: Ipv4Addr,
}

impl Ipv4Range {
    /// A range, if `start <= end`.
    pub fn new(start: Ipv4Addr, end: Ipv4Addr) -> Option<Ipv4Range> {
        (start <= end).then_some(Ipv4Range { start, end })
    }

    /// The first address.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }

    /// The last address (inclusive).
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }

    /// How many addresses the range holds (up to 2^32, hence u64).
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }

    /// Always false: a range holds at least one address. (Here for clippy's
    /// `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `addr` is in the range.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&addr)
    }

    fn overlaps(&self, other: &Ipv4Range) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for Ipv4Range {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        };
        let parse = |t: &str| {
            t.parse::<Ipv4Addr>()
                .map_err(|_| format!("`{t}` is not an IPv4 address (expected \"FIRST-LAST\")"))
        };
        let (start, end) = (parse(a)?, parse(b)?);
        Ipv4Range::new(start, end)
            .ok_or_else(|| format!("range `{s}` is empty: {start} comes after {end}"))
    }
}

impl<'de> Deserialize<'de> for Ipv4Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "an IPv4 range \"FIRST-LAST\"")
    }
}

/// The static IPv4 pool: one or more ranges that do not overlap, holding
/// at least two addresses (one for the server, one for a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Pool(Vec<Ipv4Range>);

impl Ipv4Pool {
    /// A pool from ranges, checked as when read from the file.
    pub fn new(ranges: Vec<Ipv4Range>) -> Result<Ipv4Pool, String> {
        if ranges.is_empty() {
            return Err("the pool needs at least one range".into());
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[..i] {
                if a.overlaps(b) {
                    return Err(format!("range {a} overlaps range {b}"));
                }
            }
        }
        let total: u64 = ranges.iter().map(Ipv4Range::len).sum();
        if total < 2 {
            return Err(
                "the pool needs at least two addresses: the server takes the first one".into(),
            );
        }
        Ok(Ipv4Pool(ranges))
    }

    /// The ranges, in configured order.
    pub fn ranges(&self) -> &[Ipv4Range] {
        &self.0
    }
}

impl Default for Ipv4Pool {
    fn default() -> Self {
        Ipv4Pool(vec![Ipv4Range {
            start: Ipv4Addr::new(10, 0, 10, 20),
            end: Ipv4Addr::new(10, 0, 10, 29),
        }])
    }
}

impl<'de> Deserialize<'de> for Ipv4Pool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ranges = Vec::<Ipv4Range>::deserialize(d)?;
        Ipv4Pool::new(ranges).map_err(de::Error::custom)
    }
}

/// `addresses.ipv6_prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6PrefixSetting {
    /// A ULA /64 from a random Global ID kept in the state directory.
    Auto,
    /// No IPv6 for clients.
    Off,
    /// This /64 prefix (host bits are zero).
    Prefix(Ipv6Addr),
}

impl FromStr for Ipv6PrefixSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => return Ok(Ipv6PrefixSetting::Auto),
            "off" => return Ok(Ipv6PrefixSetting::Off),
            _ => {}
        }
        let bad =
            || format!("`{s}` is not \"auto\", \"off\" or an IPv6 prefix like \"fd00:1:2:3::/64\"");
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if len != 64 {
            return Err(format!(
                "the client prefix must be a /64 (SLAAC needs 64-bit interface identifiers), not /{len}"
            ));
        }
        if u128::from(addr) & u128::from(u64::MAX) != 0 {
            return Err(format!("`{s}` has host bits set; write the /64 network"));
        }
        Ok(Ipv6PrefixSetting::Prefix(addr))
    }
}

impl<'de> Deserialize<'de> for Ipv6PrefixSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "\"auto\", \"off\" or an IPv6 /64 prefix")
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allowed methods, most preferred first. Names: `"eap-mschapv2"`,
    /// `"mschapv2"`, `"mschap"` (MS-CHAP version 1, RFC 2433),
    /// `"chap-md5"`, `"pap"`. Default `["eap-mschapv2", "mschapv2",
    /// "mschap"]`: what the RRAS setup wizard enables (MS-CHAP, MS-CHAP v2
    /// and EAP, tcpip-fundamentals ch. 14), MS-CHAPv1 last so that only
    /// peers that refuse the others get it. PAP sends the
    /// password in clear and CHAP-MD5 needs reversibly stored passwords, so
    /// both are off unless listed.
    pub methods: AuthMethods,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            methods: AuthMethods(vec![
                AuthMethodName::EapMsChapV2,
                AuthMethodName::MsChapV2,
                AuthMethodName::MsChap,
            ]),
        }
    }
}

/// One configurable authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum AuthMethodName {
    /// EAP with EAP-MSCHAPv2 (EAP type 26).
    #[serde(rename = "eap-mschapv2")]
    EapMsChapV2,
    /// MS-CHAPv2 over PPP CHAP (RFC 2759).
    #[serde(rename = "mschapv2")]
    MsChapV2,
    /// MS-CHAP version 1 over PPP CHAP (RFC 2433): no mutual
    /// authentication; MPPE keys from RFC 3079 §2.
    #[serde(rename = "mschap")]
    MsChap,
    /// CHAP with MD5 (RFC 1994); needs users added with `--reversible`.
    #[serde(rename = "chap-md5")]
    ChapMd5,
    /// PAP (RFC 1334): cleartext password.
    #[serde(rename = "pap")]
    Pap,
}

impl AuthMethodName {
    /// The LCP Authentication-Protocol this method is negotiated with.
    pub fn lcp_protocol(self) -> ppp::auth::AuthProtocol {
        use ppp::auth::AuthProtocol;
        match self {
            AuthMethodName::EapMsChapV2 => AuthProtocol::Eap,
            AuthMethodName::MsChapV2 => AuthProtocol::MsChapV2,
            AuthMethodName::MsChap => AuthProtocol::MsChapV1,
            AuthMethodName::ChapMd5 => AuthProtocol::ChapMd5,
            AuthMethodName::Pap => AuthProtocol::Pap,
        }
    }
}

/// A non-empty list of distinct methods, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethods(Vec<AuthMethodName>);

impl AuthMethods {
    /// The methods, most preferred first.
    pub fn as_slice(&self) -> &[AuthMethodName] {
        &self.0
    }

    /// Whether `m` is allowed.
    pub fn allows(&self, m: AuthMethodName) -> bool {
        self.0.contains(&m)
    }

    /// The LCP protocols to require from the peer, best first (for
    /// `ppp::lcp::LcpConfig::require_auth`).
    pub fn lcp_protocols(&self) -> Vec<ppp::auth::AuthProtocol> {
        let mut out = Vec::new();
        for p in self.0.iter().map(|m| m.lcp_protocol()) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

impl<'de> Deserialize<'de> for AuthMethods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<AuthMethodName>::deserialize(d)?;
        if v.is_empty() {
            return Err(de::Error::custom(
                "at least one authentication method is needed",
            ));
        }
        let mut seen = HashSet::new();
        for m in &v {
            if !seen.insert(*m) {
                return Err(de::Error::custom(format!("method {m:?} is listed twice")));
            }
        }
        Ok(AuthMethods(v))
    }
}

/// `[encryption]`: MPPE (RFC 3078) for PPTP. SSTP (TLS) and L2TP/IPsec
/// (ESP) are encrypted by their tunnel and do not negotiate MPPE.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionConfig {
    /// `"require"` (default: a client that declines MPPE is disconnected,
    /// as with the Windows client's own default), `"optional"`, or `"none"`
    /// (never negotiate MPPE).
    pub mppe: MppePolicy,
    /// Allowed key lengths in bits, any of 40, 56, 128. Default `[128]`:
    /// 40 and 56 bits are kept only for old clients.
    pub mppe_bits: Vec<MppeBits>,
    /// Ask clients for stateful MPPE (a key change per 256 packets instead
    /// of per packet). Default false: stateless mode survives packet loss
    /// without a CCP Reset-Request round trip, and Windows clients ask for
    /// it anyway. When true, a client that insists on stateless still gets
    /// it, but pppd without `mppe-stateful` hangs up (it refuses to be
    /// asked for stateful mode): turn this on only for clients configured
    /// for stateful mode.
    pub mppe_stateful: bool,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            mppe: MppePolicy::Require,
            mppe_bits: vec![MppeBits(128)],
            mppe_stateful: false,
        }
    }
}

impl EncryptionConfig {
    /// The CCP configuration this policy means.
    pub fn ccp_config(&self) -> ppp::ccp::CcpConfig {
        use ppp::ccp::{CcpConfig, Strengths};
        if self.mppe == MppePolicy::None {
            return CcpConfig::disabled();
        }
        let mut allowed = Strengths::NONE;
        for b in &self.mppe_bits {
            match b.0 {
                40 => allowed.bits40 = true,
                56 => allowed.bits56 = true,
                _ => allowed.bits128 = true,
            }
        }
        CcpConfig {
            allowed,
            allow_stateful: self.mppe_stateful,
            // RFC 3078 §2: stateful mode must be asked for (no H bit) to be
            // had from pppd, which always requests stateless first.
            prefer_stateless: !self.mppe_stateful,
            required: self.mppe == MppePolicy::Require,
        }
    }
}

/// `encryption.mppe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MppePolicy {
    /// MPPE must be negotiated.
    Require,
    /// MPPE if the client agrees.
    Optional,
    /// No MPPE.
    None,
}

/// An MPPE key length: 40, 56 or 128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MppeBits(u16);

impl MppeBits {
    /// The key length in bits.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for MppeBits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_int(d, "40, 56 or 128", |n| match n {
            40 => Ok(MppeBits(40)),
            56 => Ok(MppeBits(56)),
            128 => Ok(MppeBits(128)),
            _ => Err(format!("MPPE key length must be 40, 56 or 128, not {n}")),
        })
    }
}

/// `[ppp]`: link parameters common to all tunnel types.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PppConfig {
    /// The MRU we announce in LCP. Default 1400, leaving room for the
    /// tunnel's own headers inside a 1500-byte path.
    pub mru: u16,
    /// Send an LCP Echo-Request after this many idle seconds; 0 disables
    /// LCP echo. Default 30.
    pub echo_interval_secs: u32,
    /// Unanswered Echo-Requests before the link is declared dead. Default 4.
    pub echo_failures: u32,
}

impl Default for PppConfig {
    fn default() -> Self {
        PppConfig {
            mru: 1400,
            echo_interval_secs: 30,
            echo_failures: 4,
        }
    }
}

impl PppConfig {
    /// The LCP echo settings (`None` when disabled).
    pub fn echo(&self) -> Option<ppp::link::EchoConfig> {
        (self.echo_interval_secs > 0 && self.echo_failures > 0).then(|| ppp::link::EchoConfig {
            interval: Duration::from_secs(self.echo_interval_secs.into()),
            max_failures: self.echo_failures,
        })
    }
}

/// `[tun]`: the server's TUN device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunConfig {
    /// Interface name, at most 15 bytes. Default `ras0`.
    pub name: TunName,
    /// Interface MTU. Default 1400, as `ppp.mru`.
    pub mtu: u16,
}

impl Default for TunConfig {
    fn default() -> Self {
        TunConfig {
            name: TunName("ras0".into()),
            mtu: 1400,
        }
    }
}

/// A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no `/`, no
/// whitespace, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunName(String);

impl TunName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TunName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "an interface name")
    }
}

impl FromStr for TunName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 15
            && s != "."
            && s != ".."
            && !s
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
        if ok {
            Ok(TunName(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)"
            ))
        }
    }
}

impl Config {
    /// Loads `path`, or the embedded defaults when `path` is `None`, then
    /// applies the environment (`RAS_STATE_DIR`).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml(&text, path)?
            }
            None => Config::default(),
        };
        Ok(config.with_env(|k| std::env::var_os(k)))
    }

    /// Parses TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| invalid(text, path, &e))?;
        config.validate(text, path)?;
        Ok(config)
    }

    /// Applies environment overrides, read through `var` (a parameter so
    /// tests need not touch the process environment).
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Config {
        if let Some(dir) = var(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
            self.state_dir = PathBuf::from(dir);
        }
        if let Some(socket) = var(ADMIN_SOCKET_ENV).filter(|s| !s.is_empty()) {
            self.admin.socket = PathBuf::from(socket);
        }
        self
    }

    /// The server name: the configured one, else the host name, else `ras`.
    pub fn server_name(&self) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "ras".to_owned())
    }

    /// The compiled remote access policies (checked when the file was
    /// loaded, so this only fails for a configuration built in code).
    pub fn policy_set(&self) -> Result<policy::PolicySet, String> {
        policy::PolicySet::new(&self.policies, &self.policy).map_err(|e| e.to_string())
    }

    /// What is wrong with `[certificate.acme]`, as (key, why).
    fn acme_problem(&self, acme: &AcmeConfig) -> Option<(&'static str, String)> {
        if self.certificate.chain.is_some() || self.certificate.key.is_some() {
            return Some((
                "certificate.acme",
                "[certificate.acme] and certificate.chain/key exclude each other: the ACME certificate is kept in the state directory".into(),
            ));
        }
        if !acme.directory.starts_with("https://") || acme.directory.len() <= "https://".len() {
            return Some((
                "certificate.acme.directory",
                format!(
                    "{:?} is not an https:// URL (RFC 8555 §6.1 requires HTTPS)",
                    acme.directory
                ),
            ));
        }
        if self.sstp.listen.is_empty() {
            return Some((
                "certificate.acme",
                "TLS-ALPN-01 is answered on the SSTP listener, and sstp.listen is empty".into(),
            ));
        }
        for name in acme.names(&self.server_name()) {
            if let Err(why) = crate::acme::check_domain(&name) {
                let key = if acme.domains.is_empty() {
                    "server_name"
                } else {
                    "certificate.acme.domains"
                };
                return Some((key, format!("{name:?}: {why}")));
            }
        }
        if acme.domains.len() > crate::acme::MAX_DOMAINS {
            return Some((
                "certificate.acme.domains",
                format!(
                    "{} names: at most {}",
                    acme.domains.len(),
                    crate::acme::MAX_DOMAINS
                ),
            ));
        }
        if let Some(contact) = &acme.contact {
            let address = contact.strip_prefix("mailto:").unwrap_or(contact);
            if !address.contains('@') || address.contains(char::is_whitespace) {
                return Some((
                    "certificate.acme.contact",
                    format!("{contact:?} is not an e-mail address"),
                ));
            }
        }
        if !(1..=365).contains(&acme.renew_before_days) {
            return Some((
                "certificate.acme.renew_before_days",
                format!("{} days: use 1 to 365", acme.renew_before_days),
            ));
        }
        None
    }

    /// Checks that span more than one value: reported at the key of the
    /// second value.
    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        if let Err(e) = policy::validate(&self.policies, &self.policy, text) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: e.line.unwrap_or(1),
                column: e.column.unwrap_or(1),
                key: Some(e.key.clone()),
                message: e.message_naming_policy(),
            });
        }
        let at_key = |key: &str, message: String| -> ConfigError {
            let span = find_key_span(text, key).unwrap_or(0..0);
            let (line, column) = line_col(text, span.start);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                key: Some(key.to_owned()),
                message,
            }
        };
        if let Some(acme) = &self.certificate.acme {
            if let Some((key, message)) = self.acme_problem(acme) {
                return Err(at_key(key, message));
            }
        }
        if let Some(url) = &self.certificate.ocsp_responder {
            if !crate::http_fetch::is_http_url(url) {
                return Err(at_key(
                    "certificate.ocsp_responder",
                    format!(
                        "{url:?} is not an http:// URL (RFC 6960 Appendix A.1: OCSP over HTTP)"
                    ),
                ));
            }
        }
        if self.addresses.dns.len() > 2 {
            return Err(at_key(
                "addresses.dns",
                "IPCP carries at most two DNS servers (primary and secondary)".into(),
            ));
        }
        if self.addresses.wins.len() > 2 {
            return Err(at_key(
                "addresses.wins",
                "IPCP carries at most two WINS servers (primary and secondary)".into(),
            ));
        }
        if self.addresses.source == AddressSourceKind::Dhcp
            && self
                .addresses
                .dhcp_interface
                .as_deref()
                .is_none_or(str::is_empty)
        {
            return Err(at_key(
                "addresses.source",
                "source = \"dhcp\" needs dhcp_interface, the intranet interface to lease through"
                    .into(),
            ));
        }
        if !(1..=256).contains(&self.addresses.dhcp_block) {
            return Err(at_key(
                "addresses.dhcp_block",
                format!(
                    "{} addresses at a time: use 1 to 256",
                    self.addresses.dhcp_block
                ),
            ));
        }
        if !(1..=120).contains(&self.addresses.dhcp_timeout_secs) {
            return Err(at_key(
                "addresses.dhcp_timeout_secs",
                format!("{} s: use 1 to 120", self.addresses.dhcp_timeout_secs),
            ));
        }
        if let Some(addr) = self.pptp.listen.iter().find(|a| a.is_ipv6()) {
            return Err(at_key(
                "pptp.listen",
                format!("PPTP listens on IPv4 only (its GRE is IPv4 here), not {addr}"),
            ));
        }
        if !(1..=3600).contains(&self.l2tp.hello_interval_secs) {
            return Err(at_key(
                "l2tp.hello_interval_secs",
                format!("{} s: use 1 to 3600", self.l2tp.hello_interval_secs),
            ));
        }
        if self.encryption.mppe != MppePolicy::None && self.encryption.mppe_bits.is_empty() {
            return Err(at_key(
                "encryption.mppe_bits",
                "no MPPE key length allowed; set mppe = \"none\" to disable MPPE".into(),
            ));
        }
        if let Some(name) = &self.server_name {
            if name.is_empty() || name.len() > 253 || name.chars().any(|c| c.is_whitespace()) {
                return Err(at_key(
                    "server_name",
                    format!("`{name}` is not a host name"),
                ));
            }
        }
        if self.ipsec.enabled && !self.ipsec.ikev1 && !self.ikev2.enabled {
            return Err(at_key(
                "ipsec.ikev1",
                "with IKEv1 off and [ikev2] enabled = false nothing would answer on the [ipsec] sockets; set [ipsec] enabled = false instead".into(),
            ));
        }
        if let Some(key) = self.ikev2.proposals().empty_list() {
            return Err(at_key(
                key,
                "the list is empty, so no client could connect; list at least one name".into(),
            ));
        }
        if self.ikev2.certificate() && self.ikev2.client_ca.is_none() {
            return Err(at_key(
                "ikev2.auth",
                "\"certificate\" needs ikev2.client_ca, the CA file client certificates must chain to".into(),
            ));
        }
        if self.tun.mtu < 576 {
            return Err(at_key(
                "tun.mtu",
                format!("MTU {} is below the IPv4 minimum of 576", self.tun.mtu),
            ));
        }
        if self.admin.socket.as_os_str().is_empty() {
            return Err(at_key(
                "admin.socket",
                "the admin socket needs a path".into(),
            ));
        }
        if self.admin.listen.is_some() && self.admin.token_file.is_none() {
            // Never an HTTPS listener without a token: the Unix socket is
            // guarded by file permissions, the network only by the token.
            return Err(at_key(
                "admin.listen",
                "an HTTPS listener needs admin.token_file, the file holding its bearer token"
                    .into(),
            ));
        }
        if self.ppp.mru < 576 {
            return Err(at_key(
                "ppp.mru",
                format!("MRU {} is below 576", self.ppp.mru),
            ));
        }
        if let Err(e) = self.netbios.validate() {
            return Err(at_key(&e.key, e.message));
        }
        Ok(())
    }
}

/// An error about dotted key `key` of the file `path` whose text is
/// `text`, at the key's line (line 1 if the file does not set it: the
/// default is in force). For checks made after loading
/// (`config_check.rs`).
pub fn error_at_key(text: &str, path: &Path, key: &str, message: String) -> ConfigError {
    let span = find_key_span(text, key).unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key: Some(key.to_owned()),
        message,
    }
}

/// Turns a `toml` error into one that names file, line, column and key.
fn invalid(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = line_col(text, span.start);
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key: key_at(text, &span),
        message: e.message().trim().to_owned(),
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted path of the innermost key whose name or value contains the
/// start of `span`, found by re-parsing the document with spans.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<Vec<String>> = None;
    let mut path = Vec::new();
    walk_table(doc.get_ref(), span.start, &mut path, &mut best);
    best.map(|p| join_path(&p))
}

fn join_path(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        if !p.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

fn consider(path: &[String], best: &mut Option<Vec<String>>) {
    if best.as_ref().is_none_or(|b| path.len() > b.len()) {
        *best = Some(path.to_vec());
    }
}

fn walk_table(
    table: &toml::de::DeTable<'_>,
    pos: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    for (k, v) in table.iter() {
        path.push(k.get_ref().to_string());
        if k.span().contains(&pos) || v.span().contains(&pos) {
            consider(path, best);
        }
        walk_value(v.get_ref(), pos, path, best);
        path.pop();
    }
}

fn walk_value(
    value: &toml::de::DeValue<'_>,
    pos: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    match value {
        toml::de::DeValue::Table(t) => walk_table(t, pos, path, best),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                if item.span().contains(&pos) {
                    consider(path, best);
                }
                walk_value(item.get_ref(), pos, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The span of the value of dotted key `key` (for errors found after
/// deserializing).
fn find_key_span(text: &str, key: &str) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (_, v) = table.iter().find(|(k, _)| k.get_ref() == part)?;
        if parts.peek().is_none() {
            return Some(v.span());
        }
        table = v.get_ref().as_table()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    /// Parses, expects an error, and returns (line, column, key, message).
    fn err(text: &str) -> (usize, usize, Option<String>, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                path,
                line,
                column,
                key,
                message,
            }) => {
                assert_eq!(path, Path::new("test.toml"));
                (line, column, key, message)
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn example_file_is_the_defaults() {
        let text = include_str!("../ras.example.toml");
        assert_eq!(parse(text).unwrap(), Config::default());
    }

    #[test]
    fn example_file_names_every_key() {
        // Every key the example shows, commented out or not, must parse:
        // uncomment everything and parse again.
        let text = include_str!("../ras.example.toml");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        // [certificate] shows two alternatives, chain and key or acme,
        // which exclude each other: each parses without the other.
        let without = |prefixes: &[&str]| -> String {
            uncommented
                .lines()
                .filter(|l| !prefixes.iter().any(|p| l.starts_with(p)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let c = parse(&without(&["acme = "])).unwrap();
        assert!(c.server_name.is_some());
        assert!(c.certificate.chain.is_some() && c.certificate.key.is_some());
        let c = parse(&without(&["chain = ", "key = "])).unwrap();
        let acme = c.certificate.acme.expect("[certificate] acme");
        assert_eq!(acme.domains, vec!["vpn.example.com"]);
        assert_eq!(acme.renew_before_days, 30);
        assert!(acme.ca_file.is_some() && acme.contact.is_some());
        let (_, _, key, _) = err(&uncommented);
        assert_eq!(key.as_deref(), Some("certificate.acme"));
    }

    #[test]
    fn online_revocation_settings_parse_and_a_bad_responder_is_named() {
        let c = parse("[certificate]\nocsp = \"if-present\"\nfetch_crls = true\nocsp_responder = \"http://ocsp.test:8080/x\"\n").unwrap();
        assert_eq!(c.certificate.ocsp, crate::crl::OcspConfig::IfPresent);
        assert!(c.certificate.fetch_crls);
        assert_eq!(
            Config::default().certificate.ocsp,
            crate::crl::OcspConfig::Off
        );
        assert!(!Config::default().certificate.fetch_crls);
        let (line, _, key, message) =
            err("[certificate]\nocsp = \"if-present\"\nocsp_responder = \"https://ocsp.test/\"\n");
        assert_eq!(
            (line, key.as_deref()),
            (3, Some("certificate.ocsp_responder")),
            "{message}"
        );
        assert!(message.contains("not an http:// URL"), "{message}");
        let (line, _, key, _) = err("[certificate]\nocsp = \"always\"\n");
        assert_eq!((line, key.as_deref()), (2, Some("certificate.ocsp")));
    }

    #[test]
    fn acme_settings_are_checked_with_file_line_and_key() {
        let base = "[sstp]\nlisten = [\"0.0.0.0:443\"]\n[certificate.acme]\ndirectory = \"https://ca.test/dir\"\n";
        let c = parse(base).unwrap();
        let acme = c.certificate.acme.unwrap();
        assert_eq!(acme.renew_before_days, 30, "the default");
        assert_eq!(acme.names("vpn.test"), vec!["vpn.test"], "server_name");
        for (extra, line, key) in [
            (
                "renew_before_days = 0\n",
                5,
                "certificate.acme.renew_before_days",
            ),
            (
                "domains = [\"*.example.com\"]\n",
                5,
                "certificate.acme.domains",
            ),
            ("domains = [\"192.0.2.1\"]\n", 5, "certificate.acme.domains"),
            ("contact = \"nobody\"\n", 5, "certificate.acme.contact"),
            ("colour = \"blue\"\n", 5, "certificate.acme.colour"),
        ] {
            let (l, _, k, message) = err(&format!("{base}{extra}"));
            assert_eq!((l, k.as_deref()), (line, Some(key)), "{extra}: {message}");
        }
        let (l, _, k, m) = err(&base.replace("https://ca.test/dir", "http://ca.test/dir"));
        assert_eq!(
            (l, k.as_deref()),
            (4, Some("certificate.acme.directory")),
            "{m}"
        );
        let (_, _, k, m) = err(&format!(
            "[certificate]\nchain = \"c.pem\"\nkey = \"k.pem\"\n{base}"
        ));
        assert_eq!(k.as_deref(), Some("certificate.acme"), "{m}");
        let (_, _, k, m) = err(&base.replace("0.0.0.0:443\"", "\"").replace("[\"\"]", "[]"));
        assert_eq!(k.as_deref(), Some("certificate.acme"), "{m}");
        assert!(m.contains("sstp.listen"), "{m}");
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = Config::default();
        assert_eq!(c.state_dir, Path::new("/var/lib/ras"));
        assert_eq!(c.sstp.listen.len(), 2);
        assert_eq!(c.sstp.ports.get(), 128);
        assert_eq!(c.pptp.ports.get(), 128);
        assert_eq!(c.pptp.listen, vec!["0.0.0.0:1723".parse().unwrap()]);
        assert_eq!(c.l2tp.ports.get(), 128);
        assert!(!c.l2tp.allow_plain);
        assert_eq!(c.l2tp.listen, vec!["0.0.0.0:1701".parse().unwrap()]);
        assert_eq!(c.l2tp.hello_interval_secs, 60);
        let r = c.addresses.ipv4_pool.ranges();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].to_string(), "10.0.10.20-10.0.10.29");
        assert_eq!(r[0].len(), 10);
        assert_eq!(
            c.auth.methods.lcp_protocols(),
            vec![
                ppp::auth::AuthProtocol::Eap,
                ppp::auth::AuthProtocol::MsChapV2,
                ppp::auth::AuthProtocol::MsChapV1,
            ]
        );
        assert!(c.auth.methods.allows(AuthMethodName::MsChap));
        let c = parse("[auth]\nmethods = [\"mschap\"]\n").unwrap();
        assert_eq!(
            c.auth.methods.lcp_protocols(),
            vec![ppp::auth::AuthProtocol::MsChapV1]
        );
        assert!(!c.auth.methods.allows(AuthMethodName::Pap));
        assert!(!c.auth.methods.allows(AuthMethodName::ChapMd5));
        let ccp = c.encryption.ccp_config();
        assert!(ccp.required && ccp.allowed.bits128 && !ccp.allowed.bits40 && !ccp.allow_stateful);
        assert!(!ccp.stateful());
        assert_eq!(c.ppp.echo().unwrap().interval, Duration::from_secs(30));
        assert_eq!(c.tun.name.as_str(), "ras0");
    }

    /// Issue 11: `mppe_stateful = true` must ask for stateful mode, or pppd
    /// (which always requests stateless first) never ends up stateful.
    #[test]
    fn mppe_stateful_asks_for_stateful_mode() {
        let c = parse("[encryption]\nmppe_stateful = true\n").unwrap();
        assert_eq!(
            c.encryption.ccp_config(),
            ppp::ccp::CcpConfig::require_128_stateful()
        );
        let c = parse("[encryption]\nmppe_stateful = false\n").unwrap();
        assert_eq!(
            c.encryption.ccp_config(),
            ppp::ccp::CcpConfig::require_128_stateless()
        );
    }

    #[test]
    fn l2tp_section() {
        let c = parse("[l2tp]\nallow_plain = true\nlisten = [\"192.0.2.1:1701\"]\nports = 3\nhello_interval_secs = 20\n").unwrap();
        assert!(c.l2tp.allow_plain);
        assert_eq!(c.l2tp.listen, vec!["192.0.2.1:1701".parse().unwrap()]);
        assert_eq!(c.l2tp.ports.get(), 3);
        assert_eq!(c.l2tp.hello_interval(), Duration::from_secs(20));
        let (_, _, key, _) = err("[l2tp]\nhello_interval_secs = 0\n");
        assert_eq!(key.as_deref(), Some("l2tp.hello_interval_secs"));
        let (_, _, _, msg) = err("[l2tp]\nallow_plane = true\n");
        assert!(msg.contains("allow_plane"), "{msg}");
    }

    #[test]
    fn pptp_listen() {
        let c = parse("[pptp]\nlisten = []\nports = 1\n").unwrap();
        assert!(c.pptp.listen.is_empty());
        assert_eq!(c.pptp.ports.get(), 1);
        let c = parse("[pptp]\nlisten = [\"192.0.2.1:1723\", \"192.0.2.2:1724\"]\n").unwrap();
        assert_eq!(c.pptp.listen.len(), 2);
        let (_, _, key, msg) = err("[pptp]\nlisten = [\"[::]:1723\"]\n");
        assert_eq!(key.as_deref(), Some("pptp.listen"));
        assert!(msg.contains("IPv4"), "{msg}");
        let (_, _, key, _) = err("[pptp]\nlisten = [\"0.0.0.0\"]\n");
        assert_eq!(key.as_deref(), Some("pptp.listen[0]"));
        let (_, _, key, _) = err("[pptp]\nlisten_on = []\n");
        assert!(key.is_some());
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
state_dir = "/tmp/ras"
server_name = "vpn.example.com"
[sstp]
listen = ["192.0.2.1:8443"]
ports = 5
[addresses]
ipv4_pool = ["192.168.5.10-192.168.5.19", "192.168.6.1"]
ipv6_prefix = "2001:db8:1:2::/64"
dns = ["192.0.2.53", "192.0.2.54"]
[auth]
methods = ["mschapv2", "chap-md5", "pap"]
[encryption]
mppe = "optional"
mppe_bits = [40, 128]
[ppp]
echo_interval_secs = 0
"#,
        )
        .unwrap();
        assert_eq!(c.sstp.ports.get(), 5);
        assert_eq!(c.addresses.ipv4_pool.ranges().len(), 2);
        assert_eq!(c.addresses.ipv4_pool.ranges()[1].len(), 1);
        assert_eq!(
            c.addresses.ipv6_prefix,
            Ipv6PrefixSetting::Prefix("2001:db8:1:2::".parse().unwrap())
        );
        assert!(c.ppp.echo().is_none());
        let ccp = c.encryption.ccp_config();
        assert!(!ccp.required && ccp.allowed.bits40 && !ccp.allowed.bits56);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let (line, col, key, msg) = err("[sstp]\nports = 4\nport = 64\n");
        assert_eq!((line, col), (3, 1));
        assert_eq!(key.as_deref(), Some("sstp.port"));
        assert!(msg.contains("unknown field"), "{msg}");
        let (line, _, key, _) = err("colour = \"blue\"\n");
        assert_eq!(line, 1);
        assert_eq!(key.as_deref(), Some("colour"));
        let (line, _, key, _) = err("\n\n[nonsense]\n");
        assert_eq!(line, 3);
        assert_eq!(key.as_deref(), Some("nonsense"));
    }

    #[test]
    fn dhcp_address_source() {
        let c = parse("[addresses]\nsource = \"dhcp\"\ndhcp_interface = \"eth1\"\n\n[dhcp_relay]\nservers = [\"10.1.0.5\"]\n").unwrap();
        assert_eq!(c.addresses.source, AddressSourceKind::Dhcp);
        assert_eq!(c.addresses.dhcp_interface.as_deref(), Some("eth1"));
        assert_eq!(c.addresses.dhcp_block, 10);
        assert_eq!(c.dhcp_relay.servers, [Ipv4Addr::new(10, 1, 0, 5)]);
        let (line, _, key, message) = err("[addresses]\ndns = []\nsource = \"dhcp\"\n");
        assert_eq!((line, key.as_deref()), (3, Some("addresses.source")));
        assert!(message.contains("dhcp_interface"), "{message}");
        let (line, _, key, _) =
            err("[addresses]\nsource = \"dhcp\"\ndhcp_interface = \"eth1\"\ndhcp_block = 0\n");
        assert_eq!((line, key.as_deref()), (4, Some("addresses.dhcp_block")));
        let (_, _, key, _) = err("[addresses]\nsource = \"dhcpv6\"\n");
        assert_eq!(key.as_deref(), Some("addresses.source"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let (line, col, key, msg) = err("[tun]\nname = \"ras1\"\nmtu = \"big\"\n");
        assert_eq!((line, col), (3, 7));
        assert_eq!(key.as_deref(), Some("tun.mtu"));
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn bad_address_names_the_element() {
        let (line, _, key, _) = err("[sstp]\nlisten = [\"0.0.0.0:443\", \"nowhere:443\"]\n");
        assert_eq!(line, 2);
        assert_eq!(key.as_deref(), Some("sstp.listen[1]"));
        let (line, _, key, msg) =
            err("[addresses]\n\nipv4_pool = [\"10.0.0.1-10.0.0.9\", \"10.0.0.300-10.0.1.1\"]\n");
        assert_eq!(line, 3);
        assert_eq!(key.as_deref(), Some("addresses.ipv4_pool[1]"));
        assert!(msg.contains("10.0.0.300"), "{msg}");
        let (_, _, key, _) = err("[addresses]\ndns = [\"8.8.8\"]\n");
        assert_eq!(key.as_deref(), Some("addresses.dns[0]"));
        let (_, _, key, _) = err("[addresses]\nipv6_prefix = \"fd00::/48\"\n");
        assert_eq!(key.as_deref(), Some("addresses.ipv6_prefix"));
    }

    #[test]
    fn overlapping_and_empty_ranges_are_refused() {
        let (line, _, key, msg) =
            err("[addresses]\nipv4_pool = [\"10.0.0.1-10.0.0.9\", \"10.0.0.9-10.0.0.20\"]\n");
        assert_eq!(line, 2);
        assert_eq!(key.as_deref(), Some("addresses.ipv4_pool"));
        assert!(msg.contains("overlaps"), "{msg}");
        let (_, _, key, msg) = err("[addresses]\nipv4_pool = [\"10.0.0.9-10.0.0.1\"]\n");
        assert_eq!(key.as_deref(), Some("addresses.ipv4_pool[0]"));
        assert!(msg.contains("empty"), "{msg}");
        let (_, _, key, msg) = err("[addresses]\nipv4_pool = []\n");
        assert_eq!(key.as_deref(), Some("addresses.ipv4_pool"));
        assert!(msg.contains("at least one range"), "{msg}");
        let (_, _, _, msg) = err("[addresses]\nipv4_pool = [\"10.0.0.1\"]\n");
        assert!(msg.contains("two addresses"), "{msg}");
    }

    #[test]
    fn zero_port_limit_is_refused() {
        let (line, col, key, msg) = err("[pptp]\nports = 0\n");
        assert_eq!((line, col), (2, 9));
        assert_eq!(key.as_deref(), Some("pptp.ports"));
        assert!(msg.contains("between 1 and"), "{msg}");
        let (_, _, key, _) = err("[l2tp]\nports = -3\n");
        assert_eq!(key.as_deref(), Some("l2tp.ports"));
    }

    #[test]
    fn cross_value_checks_name_the_key() {
        let (line, _, key, _) = err("[addresses]\ndns = [\"1.1.1.1\", \"1.0.0.1\", \"9.9.9.9\"]\n");
        assert_eq!(line, 2);
        assert_eq!(key.as_deref(), Some("addresses.dns"));
        let (_, _, key, _) = err("[encryption]\nmppe_bits = []\n");
        assert_eq!(key.as_deref(), Some("encryption.mppe_bits"));
        let (_, _, key, _) = err("[auth]\nmethods = [\"pap\", \"pap\"]\n");
        assert_eq!(key.as_deref(), Some("auth.methods"));
        let (_, _, key, _) = err("[auth]\nmethods = [\"kerberos\"]\n");
        assert_eq!(key.as_deref(), Some("auth.methods[0]"));
        let (_, _, key, _) = err("[tun]\nname = \"a-name-that-is-too-long\"\n");
        assert_eq!(key.as_deref(), Some("tun.name"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let (line, _, _, _) = err("[sstp]\nports = \n");
        assert_eq!(line, 2);
    }

    #[test]
    fn error_display_names_file_line_and_key() {
        let e = parse("[sstp]\nport = 64\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("test.toml:2:1: key `sstp.port`: unknown field"),
            "{s}"
        );
    }

    #[test]
    fn environment_overrides_state_dir() {
        let c = parse("state_dir = \"/srv/ras\"\n").unwrap();
        let env = |k: &str| (k == STATE_DIR_ENV).then(|| "/tmp/elsewhere".into());
        assert_eq!(
            c.clone().with_env(env).state_dir,
            Path::new("/tmp/elsewhere")
        );
        assert_eq!(c.with_env(|_| None).state_dir, Path::new("/srv/ras"));
    }

    #[test]
    fn admin_socket_from_file_default_and_environment() {
        assert_eq!(
            Config::default().admin.socket,
            Path::new("/run/ras/admin.sock")
        );
        let c = parse("[admin]\nsocket = \"/tmp/a.sock\"\n").unwrap();
        assert_eq!(c.admin.socket, Path::new("/tmp/a.sock"));
        let env = |k: &str| (k == ADMIN_SOCKET_ENV).then(|| "/tmp/b.sock".into());
        assert_eq!(
            c.clone().with_env(env).admin.socket,
            Path::new("/tmp/b.sock")
        );
        let (line, _, key, _) = err("\n[admin]\nsocket = \"\"\n");
        assert_eq!((line, key.as_deref()), (3, Some("admin.socket")));
    }

    #[test]
    fn the_admin_https_listener_is_off_by_default_and_needs_a_token_file() {
        assert_eq!(Config::default().admin.listen, None);
        let c =
            parse("[admin]\nlisten = \"127.0.0.1:8443\"\ntoken_file = \"/etc/ras/admin-token\"\n")
                .unwrap();
        assert_eq!(c.admin.listen, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(
            c.admin.token_file.as_deref(),
            Some(Path::new("/etc/ras/admin-token"))
        );
        let (line, _, key, message) = err("\n[admin]\nlisten = \"127.0.0.1:8443\"\n");
        assert_eq!((line, key.as_deref()), (3, Some("admin.listen")));
        assert!(message.contains("admin.token_file"), "{message}");
        let (_, _, key, _) = err("[admin]\nlisten = \"localhost\"\n");
        assert_eq!(key.as_deref(), Some("admin.listen"));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let e = Config::load(Some(Path::new("/nonexistent/ras.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(e.to_string().starts_with("/nonexistent/ras.toml:"));
    }
}
