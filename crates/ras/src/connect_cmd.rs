//! `ras connect sstp://HOST[:PORT]`, `pptp://HOST[:PORT]`,
//! `l2tp://HOST[:PORT]` or `ikev2://HOST[:PORT]`: the VPN client.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use client::dns::{self, DnsBackend};
use client::ikev2::Ikev2Options;
use client::l2tp::L2tpOptions;
use client::network::{DnsMode, Network, SystemNetwork, DEFAULT_TUN_NAME};
use client::pptp::PptpOptions;
use client::routes;
use client::serial::SerialOptions;
use client::sstp::{self as vpn, ConnectError, SessionEnd, SstpOptions};
use client::target::{Protocol, Target};
use client::verify::Trust;
use ipsec::ikev2::signature_auth::ServerCredential;
use ipsec::ikev2::ServerTrust;
use tokio::sync::watch;
use tunnel::ikev2_client::Ikev2Login;
use zeroize::Zeroizing;

use crate::quiet_output::{say, say_err};

/// After SIGINT/SIGTERM, how long the server gets to acknowledge the
/// disconnect (PPP Terminate-Ack, SSTP Call Disconnect Ack).
const GRACE: Duration = Duration::from_secs(5);
/// Reconnect back-off: from this …
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// … doubling up to this.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The server: auto://HOST (IKEv2, SSTP, L2TP, PPTP in that order, the
    /// first that connects kept; each gets the options that apply to it, and
    /// is skipped if they do not suffice), sstp://HOST[:PORT] (port 443 by default) or
    /// pptp://HOST[:PORT] (port 1723; needs root for GRE; MPPE-128 and
    /// MS-CHAPv2 required; no certificate, so no --ca/--fingerprint),
    /// l2tp://HOST[:PORT] (L2TP/IPsec with --psk-file or --cert/--key/--ca,
    /// or plain L2TP with --no-ipsec; UDP 1701; IKE on UDP 500/4500),
    /// ikev2://HOST[:PORT] (IKEv2 with EAP-MSCHAPv2 and --ca, or
    /// --psk-file; port 500, then 4500 behind a NAT), or
    /// serial:///dev/ttyX[?number=ACCESS_NUMBER] (dial-up PPP on a serial
    /// line; with a number, dialed through the modem first).
    pub target: String,
    /// User name (DOMAIN\user for a Windows server in a domain). For
    /// ikev2:// also the IKE identity unless --id is given.
    #[arg(long, short)]
    pub user: String,
    /// Read the password from the first line of this file. Without it,
    /// the environment variable RAS_PASSWORD is used, or it is asked for
    /// (without echo).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Trust server certificates signed by a CA in this PEM file (SSTP:
    /// the TLS certificate, checked against the host name or IP address of
    /// the target; l2tp:// with --cert: the server's IKE certificate;
    /// ikev2://: the server's IKE certificate, which must also name the
    /// target's host; required for EAP, and with --psk-file it makes the
    /// server prove itself with its certificate instead of the key).
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    pub ca: Option<PathBuf>,
    /// With --ca, for IKE certificates (ikev2://, l2tp:// with --cert):
    /// a certificate revocation list (PEM or DER) the server's chain is
    /// checked against (repeatable). A certificate it lists is refused.
    #[arg(long = "crl", value_name = "FILE", requires = "ca")]
    pub crls: Vec<PathBuf>,
    /// With --crl: refuse a server certificate whose issuer has no current
    /// CRL (default: such a certificate is accepted).
    #[arg(long, requires = "crls")]
    pub crl_strict: bool,
    /// Trust exactly the server certificate with this SHA-256 fingerprint
    /// (hex, colons optional), as `ras server` prints it.
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// Route this network through the tunnel (repeatable): split tunnelling.
    #[arg(long = "route", value_name = "CIDR")]
    pub routes: Vec<String>,
    /// Route all IPv4 traffic through the tunnel (0.0.0.0/1 and
    /// 128.0.0.0/1; the existing default route is left untouched, and the
    /// server stays reachable through the current gateway).
    #[arg(long)]
    pub default_route: bool,
    /// Do not configure the DNS servers the server gives; only show them.
    #[arg(long)]
    pub no_dns: bool,
    /// A DNS suffix (search domain) while the tunnel is up (repeatable;
    /// not with --no-dns).
    #[arg(long = "dns-suffix", value_name = "DOMAIN", conflicts_with = "no_dns")]
    pub dns_suffixes: Vec<String>,
    /// Do not negotiate IPv6 (IPv6CP).
    #[arg(long)]
    pub no_ipv6: bool,
    /// Name of the TUN device.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TUN_NAME)]
    pub tun_name: String,
    /// Reconnect when the connection fails or drops (back-off 1 s to 30 s),
    /// except after an authentication failure or a refused certificate.
    #[arg(long)]
    pub reconnect: bool,
    /// Also allow MS-CHAP version 1 (no server authentication), CHAP-MD5
    /// and PAP (no MPPE keys), for servers that offer nothing else. For
    /// PPTP only MS-CHAP version 1 is added (MPPE needs its keys).
    #[arg(long)]
    pub allow_weak_auth: bool,
    /// PPTP: ask for stateful MPPE (a key change per 256 packets) instead
    /// of stateless. Only for servers set up for it (pppd's
    /// `mppe-stateful`); others hang up.
    #[arg(long)]
    pub mppe_stateful: bool,
    /// L2TP/IPsec and IKEv2: read the IPsec pre-shared key from the first
    /// line of this file (l2tp:// needs it or --cert, unless --no-ipsec;
    /// ikev2:// uses it instead of EAP, and no password is asked for).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["no_ipsec", "cert"])]
    pub psk_file: Option<PathBuf>,
    /// L2TP/IPsec: authenticate IKE with this certificate (PEM, ours
    /// first, then intermediates) instead of a pre-shared key; needs --key
    /// and --ca (the CA of the server's certificate).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "no_ipsec",
        requires = "key"
    )]
    pub cert: Option<PathBuf>,
    /// L2TP/IPsec: the private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1;
    /// RSA, ECDSA P-256 or P-384).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// L2TP without IPsec: nothing is encrypted (PPP in the clear; PAP is
    /// never used). Only for servers that offer plain L2TP.
    #[arg(long)]
    pub no_ipsec: bool,
    /// L2TP/IPsec and IKEv2: offer only these ESP suites, in order (repeatable):
    /// aes128gcm16, aes256gcm16, aes128-sha1, aes256-sha1, aes128-sha256,
    /// aes256-sha256. Default: all of them, AES-GCM first.
    #[arg(long, value_name = "SUITE", conflicts_with = "no_ipsec")]
    pub esp: Vec<String>,
    /// L2TP/IPsec and IKEv2: carry ESP in UDP port 4500 even when no NAT
    /// is between us and the server (RFC 3948; RFC 7296 §2.23), e.g. where
    /// a firewall passes UDP but not IP protocol 50.
    #[arg(long, conflicts_with = "no_ipsec")]
    pub udp_encap: bool,
    /// IKEv2: our IKE identity (IDi): an IPv4 address, user@domain or a
    /// host name. Default: the --user name.
    #[arg(long = "id", value_name = "IDENTITY")]
    pub ike_id: Option<String>,
}

pub fn run(args: ConnectArgs) -> anyhow::Result<()> {
    if let Some(host) = auto_host(&args.target) {
        return run_auto(args, host);
    }
    let on_up: vpn::UpCallback = Arc::new(|status: &vpn::UpStatus| say!("{status}"));
    let (options, network) = prepare(&args, None, on_up)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(watch_signals(stop_tx));
        run_loop(options, network, args.reconnect, stop_rx).await
    })
}

/// `auto://HOST[:PORT]`: the host part, for the Automatic protocol order.
fn auto_host(target: &str) -> Option<String> {
    let (scheme, rest) = target.split_once("://")?;
    scheme
        .eq_ignore_ascii_case("auto")
        .then(|| rest.trim_end_matches('/').to_owned())
}

/// `ras connect auto://HOST`: Windows' "Automatic" type once: IKEv2, SSTP,
/// L2TP, PPTP in that order, each with the options that apply to it, and
/// skipped when they do not suffice (no --ca or --psk-file for IKEv2, no
/// --psk-file for L2TP, …), the first one
/// whose link comes up kept (and, with --reconnect, reconnected with).
fn run_auto(args: ConnectArgs, host: String) -> anyhow::Result<()> {
    let password = Arc::new(std::sync::Mutex::new(None::<Zeroizing<String>>));
    let mut candidates = Vec::new();
    for protocol in client::vpn_policy::AUTOMATIC_ORDER {
        let args_for = args_for_protocol(&args, protocol, &host);
        let on_up: vpn::UpCallback = Arc::new(|status: &vpn::UpStatus| say!("{status}"));
        // One password prompt for all protocols.
        let known = password.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match prepare_quiet(&args_for, known, on_up) {
            Ok((dial, network, used)) => {
                if let Some(pw) = used {
                    *password.lock().unwrap_or_else(|e| e.into_inner()) = Some(pw);
                }
                candidates.push((protocol, dial, network));
            }
            Err(e) => say_err!("automatic: not trying {}: {e:#}", protocol.scheme()),
        }
    }
    if candidates.is_empty() {
        bail!("automatic: no protocol can be tried with these options");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(watch_signals(stop_tx));
        let count = candidates.len();
        for (i, (protocol, dial, network)) in candidates.into_iter().enumerate() {
            say_err!(
                "automatic: trying {} ({} as {})",
                protocol.scheme(),
                dial.target(),
                dial.username()
            );
            match dial.connect(network.clone(), stop_rx.clone()).await {
                Err(e) if !*stop_rx.borrow() && i + 1 < count => {
                    say_err!("automatic: {} failed: {e}", protocol.scheme());
                }
                Err(e) => return Err(explain(e).into()),
                Ok(end) if end.stopped || *stop_rx.borrow() => {
                    say_err!("disconnected");
                    return Ok(());
                }
                Ok(end) => {
                    say_err!(
                        "connection ended: {} ({} bytes in, {} out)",
                        end.reason,
                        end.stats.bytes_in,
                        end.stats.bytes_out
                    );
                    if !args.reconnect {
                        bail!("connection ended: {}", end.reason);
                    }
                    say_err!(
                        "automatic: {} worked; reconnecting with it",
                        protocol.scheme()
                    );
                    return run_loop(dial, network, true, stop_rx).await;
                }
            }
        }
        bail!("automatic: no protocol connected")
    })
}

/// The options of `ras connect auto://` that apply to `protocol`: the
/// others are dropped rather than refused (a --fingerprint is for SSTP,
/// a --psk-file for IKEv2 and L2TP, …), so one command line can serve
/// every protocol of the order.
fn args_for_protocol(args: &ConnectArgs, protocol: Protocol, host: &str) -> ConnectArgs {
    let mut a = args.clone();
    a.target = format!("{}://{host}", protocol.scheme());
    let ipsec = matches!(protocol, Protocol::L2tp | Protocol::Ikev2);
    if protocol != Protocol::Sstp {
        a.fingerprint = None;
    }
    if protocol == Protocol::Pptp || (protocol == Protocol::L2tp && a.cert.is_none()) {
        a.ca = None;
    }
    if !ipsec {
        a.crls.clear();
        a.crl_strict = false;
        a.psk_file = None;
        a.cert = None;
        a.key = None;
        a.esp.clear();
        a.udp_encap = false;
    }
    if protocol != Protocol::L2tp {
        a.no_ipsec = false;
    }
    if protocol != Protocol::Pptp {
        a.mppe_stateful = false;
    }
    if protocol != Protocol::Ikev2 {
        a.ike_id = None;
    }
    a
}

/// [`prepare`] that reports the password it read, so that the next
/// protocol does not ask again.
fn prepare_quiet(
    args: &ConnectArgs,
    password: Option<Zeroizing<String>>,
    on_up: vpn::UpCallback,
) -> anyhow::Result<(Dial, Arc<SystemNetwork>, Option<Zeroizing<String>>)> {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (dial, network) = prepare_with(args, password, on_up, Some(seen.clone()))?;
    let used = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok((dial, network, used))
}

/// Checks the options of `ras connect` (or of a provisioned connection) and
/// builds the connection and its host side. `password`, when given, is used
/// instead of --password-file, RAS_PASSWORD or a prompt.
pub(crate) fn prepare(
    args: &ConnectArgs,
    password: Option<Zeroizing<String>>,
    on_up: vpn::UpCallback,
) -> anyhow::Result<(Dial, Arc<SystemNetwork>)> {
    prepare_with(args, password, on_up, None)
}

type PasswordSlot = Arc<std::sync::Mutex<Option<Zeroizing<String>>>>;

fn prepare_with(
    args: &ConnectArgs,
    password_given: Option<Zeroizing<String>>,
    on_up: vpn::UpCallback,
    password_seen: Option<PasswordSlot>,
) -> anyhow::Result<(Dial, Arc<SystemNetwork>)> {
    let target = Target::parse(&args.target)?;
    // Trust first: refusing to run without a way to check the server
    // should not cost the user a password prompt.
    if !args.crls.is_empty() && !matches!(target.protocol, Protocol::Ikev2 | Protocol::L2tp) {
        bail!("--crl applies to IKE certificates (ikev2://, l2tp:// with --cert) only");
    }
    let trust = match target.protocol {
        Protocol::Sstp => Some(Trust::from_options(
            args.ca.as_deref(),
            args.fingerprint.as_deref(),
        )?),
        Protocol::Pptp => {
            if args.ca.is_some() || args.fingerprint.is_some() {
                bail!("PPTP has no server certificate: --ca and --fingerprint do not apply");
            }
            None
        }
        Protocol::L2tp => {
            if args.fingerprint.is_some() {
                bail!("L2TP/IPsec checks the server's IKE certificate against --ca: --fingerprint does not apply");
            }
            if args.ca.is_some() && args.cert.is_none() {
                bail!("--ca applies to l2tp:// with --cert (IKE certificates) only");
            }
            None
        }
        Protocol::Ikev2 => {
            if args.fingerprint.is_some() {
                bail!("IKEv2 checks the server's IKE certificate against --ca: --fingerprint does not apply");
            }
            if args.no_ipsec {
                bail!("ikev2:// is always IPsec (EAP-MSCHAPv2 with --ca, a client certificate with --cert, --key and --ca, or --psk-file): options like --no-ipsec do not apply");
            }
            if args.cert.is_some() && args.ca.is_none() {
                bail!("ikev2:// with --cert needs --ca FILE (the CA of the server's certificate): the server must prove itself with its certificate too");
            }
            if args.psk_file.is_none() && args.ca.is_none() {
                bail!("ikev2:// with EAP needs --ca FILE (the CA of the server's certificate): the password must not go to a server that was not authenticated; or give --psk-file");
            }
            None
        }
        Protocol::Serial => {
            if args.ca.is_some() || args.fingerprint.is_some() {
                bail!(
                    "a serial line has no server certificate: --ca and --fingerprint do not apply"
                );
            }
            None
        }
    };
    let routes = args
        .routes
        .iter()
        .map(|r| routes::parse_cidr(r))
        .collect::<Result<Vec<(IpAddr, u8)>, _>>()?;
    for d in &args.dns_suffixes {
        client::vpn_policy::check_domain(d).map_err(|e| anyhow::anyhow!("--dns-suffix: {e}"))?;
    }
    if args.mppe_stateful && target.protocol != Protocol::Pptp {
        // SSTP is encrypted by TLS; a serial line's MPPE stays stateless.
        bail!("--mppe-stateful applies to PPTP only");
    }
    if args.no_ipsec && target.protocol != Protocol::L2tp {
        bail!("--no-ipsec applies to l2tp:// only");
    }
    if args.cert.is_some() && !matches!(target.protocol, Protocol::L2tp | Protocol::Ikev2) {
        bail!("--cert and --key apply to l2tp:// and ikev2:// only");
    }
    if args.psk_file.is_some() && !matches!(target.protocol, Protocol::L2tp | Protocol::Ikev2) {
        bail!("--psk-file applies to l2tp:// and ikev2:// only");
    }
    if !args.esp.is_empty() && !matches!(target.protocol, Protocol::L2tp | Protocol::Ikev2) {
        bail!("--esp applies to l2tp:// and ikev2:// only");
    }
    if args.udp_encap && !matches!(target.protocol, Protocol::L2tp | Protocol::Ikev2) {
        bail!("--udp-encap applies to l2tp:// and ikev2:// only");
    }
    if args.ike_id.is_some() && target.protocol != Protocol::Ikev2 {
        bail!("--id applies to ikev2:// only");
    }
    let ipsec_certificates = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) if target.protocol == Protocol::L2tp => {
            Some(read_ike_certificates(cert, key, args.ca.as_deref(), args)?)
        }
        _ => None,
    };
    let ikev2_certificate = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) if target.protocol == Protocol::Ikev2 => {
            Some(read_ikev2_certificate(cert, key)?)
        }
        _ => None,
    };
    let psk = match (target.protocol, &args.psk_file) {
        (Protocol::L2tp | Protocol::Ikev2, Some(path)) => Some(read_psk(path)?),
        (Protocol::L2tp, None) if !args.no_ipsec && ipsec_certificates.is_none() => bail!(
            "l2tp:// needs the IPsec pre-shared key (--psk-file FILE) or a certificate (--cert FILE --key FILE --ca FILE), or --no-ipsec for plain L2TP, unencrypted"
        ),
        _ => None,
    };
    if target.protocol == Protocol::L2tp && args.no_ipsec {
        say_err!(
            "warning: plain L2TP without IPsec: nothing is encrypted; the password is not sent (MS-CHAPv2), but all traffic is readable on the way"
        );
    }
    if args.tun_name.is_empty()
        || args.tun_name.len() > IFNAME_MAX
        || args.tun_name.contains(['/', ' ', '\t', '\n', ':'])
    {
        bail!(
            "bad --tun-name {:?}: 1 to {IFNAME_MAX} characters, no '/', ':' or spaces",
            args.tun_name
        );
    }
    // IKEv2 with a pre-shared key or a certificate has no user password.
    let password =
        if target.protocol == Protocol::Ikev2 && (psk.is_some() || ikev2_certificate.is_some()) {
            Zeroizing::new(String::new())
        } else {
            let pw = match password_given {
                Some(pw) => pw,
                None => read_password(args)?,
            };
            if let Some(slot) = &password_seen {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(pw.clone());
            }
            pw
        };

    let dns_mode = if args.no_dns {
        DnsMode::Off
    } else {
        let backend = DnsBackend::detect();
        // A run that died without restoring resolv.conf left a backup:
        // put it back before anything else.
        match dns::restore_leftovers(&backend) {
            Ok(restored) => {
                for ifname in restored {
                    say_err!(
                        "restored the DNS configuration left over from an earlier run on {ifname}"
                    );
                }
            }
            Err(e) => say_err!("warning: could not restore an earlier DNS backup: {e}"),
        }
        DnsMode::Apply(backend)
    };
    let network = Arc::new(SystemNetwork {
        tun_name: args.tun_name.clone(),
        routes,
        default_route: args.default_route,
        dns: dns_mode,
        dns_suffixes: args.dns_suffixes.clone(),
    });
    let options = match trust {
        Some(trust) => {
            let mut options = SstpOptions::new(target, &args.user, password, trust);
            options.allow_weak_auth = args.allow_weak_auth;
            options.ipv6 = !args.no_ipv6;
            options.on_up = Some(on_up);
            Dial::Sstp(options)
        }
        None if target.protocol == Protocol::Serial => {
            let mut options = SerialOptions::new(target, &args.user, password);
            options.allow_weak_auth = args.allow_weak_auth;
            options.ipv6 = !args.no_ipv6;
            options.on_up = Some(on_up);
            Dial::Serial(options)
        }
        None if target.protocol == Protocol::Ikev2 => Dial::Ikev2(ikev2_options(
            args,
            target,
            password,
            psk,
            ikev2_certificate,
            on_up,
        )?),
        None if target.protocol == Protocol::L2tp => {
            let mut options = L2tpOptions::new(target, &args.user, password, psk);
            options.ipsec_certificates = ipsec_certificates;
            options.esp_suites = args
                .esp
                .iter()
                .map(|name| client::l2tp::esp_suite(name))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("--esp: {e}"))?;
            options.allow_weak_auth = args.allow_weak_auth;
            options.force_udp_encapsulation = args.udp_encap;
            options.ipv6 = !args.no_ipv6;
            options.on_up = Some(on_up);
            Dial::L2tp(options)
        }
        None => {
            let mut options = PptpOptions::new(target, &args.user, password);
            options.allow_mschapv1 = args.allow_weak_auth;
            options.mppe_stateful = args.mppe_stateful;
            options.ipv6 = !args.no_ipv6;
            options.on_up = Some(on_up);
            Dial::Pptp(options)
        }
    };
    Ok((options, network))
}

/// `ras connect ikev2://`: the login (the key, or EAP with the user and
/// password), the identity and the server's CAs.
fn ikev2_options(
    args: &ConnectArgs,
    target: Target,
    password: Zeroizing<String>,
    psk: Option<Zeroizing<Vec<u8>>>,
    certificate: Option<ServerCredential>,
    on_up: vpn::UpCallback,
) -> anyhow::Result<Ikev2Options> {
    let trust = match &args.ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?;
            let anchors = ipsec::ikev1::certificates::TrustAnchors::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?
                .with_revocation(read_crls(args)?);
            Some(ServerTrust::new(anchors, Some(target.host.clone())))
        }
        None => None,
    };
    // With a certificate and no --id, the IDi is its subject DN.
    let (login, default_identity) = match (psk, certificate) {
        (Some(key), _) => (Ikev2Login::SharedKey(key), args.user.clone()),
        (None, Some(credential)) => (
            Ikev2Login::Certificate(std::sync::Arc::new(credential)),
            String::new(),
        ),
        (None, None) => (
            Ikev2Login::EapMsChapV2 {
                user: args.user.clone(),
                password,
            },
            args.user.clone(),
        ),
    };
    Ok(Ikev2Options {
        target,
        login,
        identity: args.ike_id.clone().unwrap_or(default_identity),
        trust,
        esp_suites: args
            .esp
            .iter()
            .map(|name| client::l2tp::esp_suite(name))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--esp: {e}"))?,
        force_udp_encapsulation: args.udp_encap,
        connect_timeout: Duration::from_secs(15),
        on_up: Some(on_up),
    })
}

/// Our IKE certificate chain and key, and the CAs of the server's
/// certificate; each failure names the file.
fn read_ike_certificates(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: Option<&std::path::Path>,
    args: &ConnectArgs,
) -> anyhow::Result<ipsec::ikev1::certificates::CertificateAuth> {
    use ipsec::ikev1::certificates::{CertificateAuth, LocalCertificate, TrustAnchors};
    let Some(ca) = ca else {
        bail!("--cert needs --ca FILE: the CA that issued the server's IKE certificate");
    };
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
    };
    let chain = read(cert, "the certificate file")?;
    let key_pem = Zeroizing::new(read(key, "the key file")?);
    let cas = read(ca, "the CA file")?;
    let local = LocalCertificate::from_pem(&chain, &key_pem)
        .map_err(|e| anyhow::anyhow!("--cert {} / --key {}: {e}", cert.display(), key.display()))?;
    let trust = TrustAnchors::from_pem(&cas)
        .map_err(|e| anyhow::anyhow!("--ca {}: {e}", ca.display()))?
        .with_revocation(read_crls(args)?);
    Ok(CertificateAuth::new(local, trust))
}

/// The CRLs of `--crl` (RFC 5280 §5), under `--crl-strict` or not; each
/// failure names the file. An expired CRL is warned about on stderr.
fn read_crls(args: &ConnectArgs) -> anyhow::Result<ipsec::ikev1::revocation::Revocation> {
    use ipsec::ikev1::revocation::Revocation;
    let set = load_crls(&args.crls, args.crl_strict, "--crl ")?;
    let revocation = Revocation::new(set);
    revocation.set_warning_sink(|line| eprintln!("warning: {line}"));
    Ok(revocation)
}

/// Reads and parses CRL files (also what `ras client provision` checks a
/// policy's `trust.crl_files` with); each failure names the file after
/// `what` (the option or field).
pub(crate) fn load_crls(
    paths: &[std::path::PathBuf],
    strict: bool,
    what: &str,
) -> anyhow::Result<ipsec::ikev1::revocation::CrlSet> {
    use ipsec::ikev1::revocation::{CrlPolicy, CrlSet};
    let policy = match strict {
        true => CrlPolicy::Strict,
        false => CrlPolicy::IfAvailable,
    };
    let mut set = CrlSet::new(policy);
    for path in paths {
        let contents = std::fs::read(path)
            .with_context(|| format!("reading the CRL file {}", path.display()))?;
        set.add(&contents)
            .map_err(|e| anyhow::anyhow!("{what}{}: {e}", path.display()))?;
    }
    Ok(set)
}

/// `ras connect ikev2:// --cert --key`: our chain (leaf first) and the
/// leaf's key, which must belong to it; each failure names the file.
fn read_ikev2_certificate(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<ServerCredential> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
    };
    let chain_pem = read(cert, "the certificate file")?;
    let key_pem = Zeroizing::new(read(key, "the key file")?);
    ServerCredential::from_pem(&chain_pem, &key_pem)
        .map_err(|e| anyhow::anyhow!("--cert {} / --key {}: {e}", cert.display(), key.display()))
}

/// The first line of the key file, without its line end.
fn read_psk(path: &std::path::Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the pre-shared key file {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("the pre-shared key file {} is empty", path.display());
    }
    Ok(Zeroizing::new(line.as_bytes().to_vec()))
}

fn read_password(args: &ConnectArgs) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &args.password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the password file {}", path.display()))?,
        );
        let line = text.lines().next().unwrap_or("");
        return Ok(Zeroizing::new(line.to_owned()));
    }
    if let Ok(pw) = std::env::var("RAS_PASSWORD") {
        return Ok(Zeroizing::new(pw));
    }
    let pw = rpassword::prompt_password(format!("Password for {}: ", args.user)).context(
        "reading the password (give --password-file or RAS_PASSWORD when there is no terminal)",
    )?;
    Ok(Zeroizing::new(pw))
}

/// One connection attempt, by protocol.
pub(crate) enum Dial {
    Sstp(SstpOptions),
    Pptp(PptpOptions),
    L2tp(L2tpOptions),
    Ikev2(Ikev2Options),
    Serial(SerialOptions),
}

impl Dial {
    pub(crate) fn target(&self) -> &Target {
        match self {
            Dial::Sstp(o) => &o.target,
            Dial::Pptp(o) => &o.target,
            Dial::L2tp(o) => &o.target,
            Dial::Ikev2(o) => &o.target,
            Dial::Serial(o) => &o.target,
        }
    }

    pub(crate) fn username(&self) -> &str {
        match self {
            Dial::Sstp(o) => &o.username,
            Dial::Pptp(o) => &o.username,
            Dial::L2tp(o) => &o.username,
            // A certificate's subject DN when no --id was given.
            Dial::Ikev2(o) if o.identity.is_empty() => "the certificate's subject",
            Dial::Ikev2(o) => &o.identity,
            Dial::Serial(o) => &o.username,
        }
    }

    pub(crate) async fn connect(
        &self,
        network: Arc<dyn Network>,
        stop: watch::Receiver<bool>,
    ) -> Result<SessionEnd, ConnectError> {
        match self {
            Dial::Sstp(o) => vpn::connect(o, network, stop).await,
            Dial::Pptp(o) => client::pptp::connect(o, network, stop).await,
            Dial::L2tp(o) => client::l2tp::connect(o, network, stop).await,
            Dial::Ikev2(o) => client::ikev2::connect(o, network, stop).await,
            Dial::Serial(o) => client::serial::connect(o, network, stop).await,
        }
    }
}

/// Connects (again and again with `--reconnect`) until stopped by a
/// signal or a permanent failure.
async fn run_loop(
    options: Dial,
    network: Arc<SystemNetwork>,
    reconnect: bool,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut delay = FIRST_DELAY;
    loop {
        say_err!(
            "connecting to {} as {}",
            options.target(),
            options.username()
        );
        let attempt = options.connect(network.clone(), stop_rx.clone());
        tokio::pin!(attempt);
        let result = tokio::select! {
            r = &mut attempt => r,
            _ = stopped(stop_rx.clone()) => {
                // The session saw the signal too and is saying goodbye;
                // give it a few seconds.
                match tokio::time::timeout(GRACE, &mut attempt).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Dropping the attempt undoes routes and DNS.
                        say_err!("the server did not acknowledge the disconnect; closed");
                        return Ok(());
                    }
                }
            }
        };
        let stopping = *stop_rx.borrow();
        match result {
            Ok(end) if end.stopped || stopping => {
                say_err!("disconnected");
                return Ok(());
            }
            Ok(end) => {
                say_err!(
                    "connection ended: {} ({} bytes in, {} out)",
                    end.reason,
                    end.stats.bytes_in,
                    end.stats.bytes_out
                );
                if !reconnect {
                    bail!("connection ended: {}", end.reason);
                }
                if end.was_up {
                    delay = FIRST_DELAY;
                }
            }
            Err(e) if stopping => {
                say_err!("stopped ({e})");
                return Ok(());
            }
            Err(e) => {
                let e = explain(e);
                if !reconnect || e.is_permanent() {
                    return Err(e.into());
                }
                say_err!("{e}");
            }
        }
        say_err!("reconnecting in {} s", delay.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(stop_rx.clone()) => return Ok(()),
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Adds what the user can do about an error where it is not obvious.
pub(crate) fn explain(e: ConnectError) -> ConnectError {
    match e {
        ConnectError::Network(m) if m.contains("not permitted") || m.contains("denied") => {
            ConnectError::Network(format!(
                "{m} (creating a TUN device and routes needs root or CAP_NET_ADMIN)"
            ))
        }
        other => other,
    }
}

/// Resolves once `stop` is true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// SIGINT or SIGTERM: a clean disconnect, bounded by [`GRACE`]. Later
/// signals are only acknowledged: exiting at once would skip restoring
/// routes and DNS, and the wait is short anyway.
async fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say_err!("warning: cannot watch SIGINT/SIGTERM");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    say_err!("disconnecting…");
    let _ = stop.send(true);
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        say_err!("still disconnecting (at most {} s)…", GRACE.as_secs());
    }
}
