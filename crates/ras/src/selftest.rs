//! `ras ppp-selftest`: a server and a client PPP link negotiate with each
//! other in memory (LCP, authentication, callback control, IPCP, IPv6CP,
//! CCP/MPPE). It shows what the PPP
//! engine negotiates without any network or privileges.

use std::net::Ipv4Addr;

use anyhow::{bail, Context};
use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::ipv6cp::Ipv6cpConfig;
use ppp::link::{LinkConfig, NetworkSettings};

/// Which authentication the self-check uses.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Method {
    Pap,
    Chap,
    Mschapv2,
    EapMschapv2,
}

impl Method {
    fn protocol(self) -> AuthProtocol {
        match self {
            Method::Pap => AuthProtocol::Pap,
            Method::Chap => AuthProtocol::ChapMd5,
            Method::Mschapv2 => AuthProtocol::MsChapV2,
            Method::EapMschapv2 => AuthProtocol::Eap,
        }
    }
}

pub fn run(method: Method) -> anyhow::Result<()> {
    let auth = method.protocol();
    let keyed = matches!(auth, AuthProtocol::MsChapV2 | AuthProtocol::Eap);
    let ccp = keyed.then(CcpConfig::require_128_stateless);
    let mut server = LinkConfig::server("ras");
    server.lcp.require_auth = vec![auth];
    server.ccp = ccp;
    let mut client = LinkConfig::client("demo", "demo-password");
    client.lcp.accept_auth = vec![auth];
    client.ccp = ccp;
    client.identification = Some("ras ppp-selftest".into());
    let network = NetworkSettings {
        ipcp: Some(IpcpConfig::server(
            Ipv4Addr::new(10, 0, 10, 20),
            Ipv4Addr::new(10, 0, 10, 21),
            [Some(Ipv4Addr::new(10, 0, 10, 1)), None],
            [None, None],
        )),
        ipv6cp: Some(Ipv6cpConfig::default()),
        ccp,
    };
    let started = std::time::Instant::now();
    let done = ppp::loopback::negotiate(
        server,
        client,
        |user| (user == "demo").then(|| "demo-password".to_owned()),
        network,
        false,
    )
    .context("in-memory PPP negotiation")?;
    let elapsed = started.elapsed();
    let (s, c) = (&done.server, &done.client);
    println!("PPP self-check: server and client links negotiated in memory");
    println!(
        "  authentication  {:?} as {:?}",
        s.auth_protocol.unwrap_or(auth),
        s.username.as_deref().unwrap_or("-")
    );
    if let Some(v4) = &c.ipv4 {
        println!(
            "  IPv4            client {} <-> server {}, DNS {:?}",
            v4.local, v4.peer, v4.dns[0]
        );
    }
    if let Some(v6) = &c.ipv6 {
        println!(
            "  IPv6            client fe80::{} <-> server fe80::{}",
            hex_id(&v6.local_interface_id),
            hex_id(&v6.peer_interface_id)
        );
    }
    match &s.mppe {
        Some(m) => println!(
            "  encryption      MPPE {:?}, {}",
            m.strength,
            if m.stateless { "stateless" } else { "stateful" }
        ),
        None => println!("  encryption      none (MPPE needs MS-CHAPv2 or EAP-MSCHAPv2 keys)"),
    }
    if keyed && s.master_keys.is_none() {
        bail!("MS-CHAPv2 produced no key material");
    }
    println!("  control frames  {} in {:.2?}", done.frames, elapsed);
    Ok(())
}

fn hex_id(id: &[u8; 8]) -> String {
    id.chunks(2)
        .map(|p| format!("{:x}", u16::from_be_bytes([p[0], p[1]])))
        .collect::<Vec<_>>()
        .join(":")
}
