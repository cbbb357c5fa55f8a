//! Full in-memory negotiations per second: LCP + MS-CHAPv2 + IPCP + CCP
//! (MPPE-128 stateless), server Link against client Link, no transport.
//! Each iteration creates both links, negotiates, and derives MPPE keys.

use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::link::{LinkConfig, NetworkSettings};

fn configs(seed: u64) -> (LinkConfig, LinkConfig) {
    let mut server = LinkConfig::server("bench");
    server.lcp.require_auth = vec![AuthProtocol::MsChapV2];
    server.ipv6cp = None;
    server.ccp = Some(CcpConfig::require_128_stateless());
    server.rng_seed = Some(seed);
    let mut client = LinkConfig::client("alice", "correct horse");
    client.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
    client.ipv6cp = None;
    client.ccp = Some(CcpConfig::require_128_stateless());
    client.rng_seed = Some(seed ^ 0x5555);
    (server, client)
}

fn network() -> NetworkSettings {
    NetworkSettings {
        ipcp: Some(IpcpConfig::server(
            Ipv4Addr::new(10, 0, 10, 20),
            Ipv4Addr::new(10, 0, 10, 21),
            [Some(Ipv4Addr::new(10, 0, 10, 1)), None],
            [None, None],
        )),
        ipv6cp: None,
        ccp: Some(CcpConfig::require_128_stateless()),
    }
}

fn negotiations(c: &mut Criterion) {
    let mut group = c.benchmark_group("negotiation");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut seed = 0u64;
    group.bench_function("lcp+mschapv2+ipcp+ccp", |b| {
        b.iter(|| {
            seed += 1;
            let (server, client) = configs(seed);
            let done = ppp::loopback::negotiate(
                server,
                client,
                |_| Some("correct horse".to_owned()),
                network(),
                false,
            )
            .expect("negotiation");
            assert!(done.server.mppe.is_some());
            done
        })
    });
    group.finish();
}

criterion_group!(benches, negotiations);
criterion_main!(benches);
