//! Fuzz the IPCP, IPv6CP and CCP negotiators: random option lists are
//! judged without panicking, and a Reject always quotes valid options.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use ppp::ccp::{Ccp, CcpConfig};
use ppp::fsm::{Negotiator, Verdict};
use ppp::ipcp::{Ipcp, IpcpConfig};
use ppp::ipv6cp::{Ipv6cp, Ipv6cpConfig};
use ppp::packet::parse_options;
use rand::{rngs::StdRng, SeedableRng};

fn judge(n: &mut dyn Negotiator, opts: &[ppp::packet::ConfigOption<'_>]) {
    n.reset();
    match n.check_request(opts) {
        Verdict::Reject(r) | Verdict::Nak(r) => assert!(parse_options(&r).is_ok()),
        Verdict::Ack => {}
    }
    n.on_nak(opts);
    n.on_reject(opts);
    let mut out = Vec::new();
    n.build_request(&mut out);
    assert!(parse_options(&out).is_ok());
}

fuzz_target!(|data: &[u8]| {
    let Ok(opts) = parse_options(data) else {
        return;
    };
    let server = IpcpConfig::server(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        [Some(Ipv4Addr::new(10, 0, 0, 53)), None],
        [None, None],
    );
    judge(&mut Ipcp::new(server), &opts);
    judge(&mut Ipcp::new(IpcpConfig::client()), &opts);
    judge(
        &mut Ipv6cp::new(Ipv6cpConfig::default(), StdRng::seed_from_u64(1)),
        &opts,
    );
    judge(&mut Ccp::new(CcpConfig::optional()), &opts);
    judge(&mut Ccp::new(CcpConfig::require_128_stateless()), &opts);
});
