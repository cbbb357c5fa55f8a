//! IPCP, the IPv4 network control protocol (RFC 1332), with the Microsoft
//! DNS and NBNS address options (RFC 1877), as a [`Negotiator`] for the
//! RFC 1661 automaton in [`crate::fsm`].
//!
//! One type serves both roles; the role follows from the configuration:
//! a configuration with a `peer_address` assigns that address to the peer
//! (server), one without accepts whatever address the peer announces and
//! asks for its own (client).

use std::net::Ipv4Addr;

use crate::fsm::{Negotiator, Verdict};
use crate::packet::{write_option, ConfigOption};

/// PPP protocol number of IPCP (RFC 1332 §2).
pub const PROTOCOL: u16 = 0x8021;

/// IPCP option types.
pub mod option {
    /// RFC 1332 §3.1 (deprecated): IP-Addresses, both addresses at once.
    pub const IP_ADDRESSES: u8 = 1;
    /// RFC 1332 §3.2: IP-Compression-Protocol (Van Jacobson).
    pub const IP_COMPRESSION_PROTOCOL: u8 = 2;
    /// RFC 1332 §3.3: IP-Address.
    pub const IP_ADDRESS: u8 = 3;
    /// RFC 1877 §1.1: Primary-DNS-Server-Address.
    pub const PRIMARY_DNS: u8 = 129;
    /// RFC 1877 §1.2: Primary-NBNS-Server-Address.
    pub const PRIMARY_NBNS: u8 = 130;
    /// RFC 1877 §1.3: Secondary-DNS-Server-Address.
    pub const SECONDARY_DNS: u8 = 131;
    /// RFC 1877 §1.4: Secondary-NBNS-Server-Address.
    pub const SECONDARY_NBNS: u8 = 132;
}

/// Rounds in which a server hints the peer's address in a Nak when the
/// peer's request carries no IP-Address option (RFC 1332 §3.3), before
/// giving up and acknowledging the request as it is.
const ADDRESS_HINTS: u8 = 2;

/// What IPCP negotiates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcpConfig {
    /// Our address: a server's own address; for a client the address it
    /// wants (None: ask the server for one with 0.0.0.0).
    pub local_address: Option<Ipv4Addr>,
    /// The address assigned to the peer (server role). None: accept the
    /// address the peer announces (client role).
    pub peer_address: Option<Ipv4Addr>,
    /// Primary and secondary DNS servers: given to a peer that asks for
    /// them; for a client, the initial values of its own request.
    pub dns: [Option<Ipv4Addr>; 2],
    /// Primary and secondary NBNS (WINS) servers, like `dns`.
    pub nbns: [Option<Ipv4Addr>; 2],
    /// Ask the peer for DNS server addresses (options 129 and 131).
    pub request_dns: bool,
    /// Ask the peer for NBNS server addresses (options 130 and 132).
    pub request_nbns: bool,
}

impl IpcpConfig {
    /// A server: its own address, the address it assigns to the client and
    /// the name servers it gives to clients that ask.
    pub fn server(
        local: Ipv4Addr,
        peer: Ipv4Addr,
        dns: [Option<Ipv4Addr>; 2],
        nbns: [Option<Ipv4Addr>; 2],
    ) -> Self {
        IpcpConfig {
            local_address: Some(local),
            peer_address: Some(peer),
            dns,
            nbns,
            request_dns: false,
            request_nbns: false,
        }
    }

    /// A client that asks for an address and for DNS servers. Set
    /// `request_nbns` too to send the same 34-byte Configure-Request as
    /// Windows clients.
    pub fn client() -> Self {
        IpcpConfig {
            local_address: None,
            peer_address: None,
            dns: [None, None],
            nbns: [None, None],
            request_dns: true,
            request_nbns: false,
        }
    }

    /// Whether this configuration assigns the peer's address.
    pub fn is_server(&self) -> bool {
        self.peer_address.is_some()
    }
}

/// One of our requested address options: its current value and whether
/// we still send it (a Configure-Reject removes it, RFC 1661 §5.4).
#[derive(Debug, Clone, Copy)]
struct Wanted {
    send: bool,
    value: Ipv4Addr,
}

/// The name-server options in the order Windows sends them, with the
/// index into [`Ipcp::wanted`] (0 = IP-Address).
const NAME_OPTIONS: [u8; 4] = [
    option::PRIMARY_DNS,
    option::PRIMARY_NBNS,
    option::SECONDARY_DNS,
    option::SECONDARY_NBNS,
];

/// The IPCP negotiator.
#[derive(Debug, Clone)]
pub struct Ipcp {
    config: IpcpConfig,
    /// Our request: [IP-Address, 129, 130, 131, 132].
    wanted: [Wanted; 5],
    acked: bool,
    /// The peer's address as acknowledged in its request.
    peer: Option<Ipv4Addr>,
    hints_left: u8,
}

fn addr(data: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(data[0], data[1], data[2], data[3])
}

fn non_zero(a: Ipv4Addr) -> Option<Ipv4Addr> {
    (!a.is_unspecified()).then_some(a)
}

impl Ipcp {
    pub fn new(config: IpcpConfig) -> Self {
        let mut ipcp = Ipcp {
            wanted: [Wanted {
                send: false,
                value: Ipv4Addr::UNSPECIFIED,
            }; 5],
            config,
            acked: false,
            peer: None,
            hints_left: ADDRESS_HINTS,
        };
        ipcp.reset();
        ipcp
    }

    pub fn config(&self) -> &IpcpConfig {
        &self.config
    }

    /// Our address once our request was acknowledged (the assigned one for
    /// a client).
    pub fn local_address(&self) -> Option<Ipv4Addr> {
        let w = self.wanted[0];
        if self.acked && w.send {
            non_zero(w.value)
        } else if self.acked {
            // The peer rejected address negotiation: keep what we were
            // configured with, if anything.
            self.config.local_address
        } else {
            None
        }
    }

    /// The peer's address: the one it announced and we acknowledged, or, for
    /// a server whose peer never named one, the address it was assigned.
    pub fn peer_address(&self) -> Option<Ipv4Addr> {
        self.peer.or(self.config.peer_address)
    }

    /// DNS servers: the ones the peer gave us if we asked, else the
    /// configured ones.
    pub fn dns(&self) -> [Option<Ipv4Addr>; 2] {
        [
            self.name_server(1, 0, self.config.request_dns),
            self.name_server(3, 1, self.config.request_dns),
        ]
    }

    /// NBNS servers, like [`Ipcp::dns`].
    pub fn nbns(&self) -> [Option<Ipv4Addr>; 2] {
        [
            self.name_server(2, 0, self.config.request_nbns),
            self.name_server(4, 1, self.config.request_nbns),
        ]
    }

    fn name_server(&self, slot: usize, index: usize, requested: bool) -> Option<Ipv4Addr> {
        let configured = if slot % 2 == 1 {
            self.config.dns[index]
        } else {
            self.config.nbns[index]
        };
        if !requested {
            return configured;
        }
        let w = self.wanted[slot];
        if self.acked && w.send {
            non_zero(w.value)
        } else {
            None
        }
    }

    /// The value we give a peer asking for name-server option `kind`.
    fn served(&self, kind: u8) -> Option<Ipv4Addr> {
        match kind {
            option::PRIMARY_DNS => self.config.dns[0],
            option::SECONDARY_DNS => self.config.dns[1],
            option::PRIMARY_NBNS => self.config.nbns[0],
            option::SECONDARY_NBNS => self.config.nbns[1],
            _ => None,
        }
        .and_then(non_zero)
    }

    fn slot(kind: u8) -> Option<usize> {
        match kind {
            option::IP_ADDRESS => Some(0),
            _ => NAME_OPTIONS.iter().position(|&k| k == kind).map(|i| i + 1),
        }
    }
}

impl Negotiator for Ipcp {
    fn reset(&mut self) {
        let c = &self.config;
        let zero = Ipv4Addr::UNSPECIFIED;
        self.wanted[0] = Wanted {
            // RFC 1332 §3.3: a client without an address asks for one with
            // 0.0.0.0; a server announces its own.
            send: true,
            value: c.local_address.unwrap_or(zero),
        };
        // RFC 1877 §1: the requester sends 0.0.0.0 (or a previous value)
        // and the peer Naks with the address to use.
        self.wanted[1] = Wanted {
            send: c.request_dns,
            value: c.dns[0].unwrap_or(zero),
        };
        self.wanted[2] = Wanted {
            send: c.request_nbns,
            value: c.nbns[0].unwrap_or(zero),
        };
        self.wanted[3] = Wanted {
            send: c.request_dns,
            value: c.dns[1].unwrap_or(zero),
        };
        self.wanted[4] = Wanted {
            send: c.request_nbns,
            value: c.nbns[1].unwrap_or(zero),
        };
        self.acked = false;
        self.peer = None;
        self.hints_left = ADDRESS_HINTS;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        // Option order as sent by Windows: 3, 129, 130, 131, 132.
        let kinds = [
            option::IP_ADDRESS,
            NAME_OPTIONS[0],
            NAME_OPTIONS[1],
            NAME_OPTIONS[2],
            NAME_OPTIONS[3],
        ];
        for (kind, w) in kinds.iter().zip(self.wanted.iter()) {
            if w.send {
                write_option(out, *kind, &w.value.octets());
            }
        }
    }

    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
        let mut reject = Vec::new();
        let mut nak = Vec::new();
        let mut peer = None;
        let mut saw_address = false;
        for o in options {
            match o.kind {
                option::IP_ADDRESS if o.data.len() == 4 && !saw_address => {
                    saw_address = true;
                    let asked = addr(o.data);
                    match self.config.peer_address {
                        // RFC 1332 §3.3: the server Naks an unacceptable
                        // (or unspecified) address with the one to use.
                        Some(assigned) if asked == assigned => peer = Some(asked),
                        Some(assigned) => {
                            write_option(&mut nak, option::IP_ADDRESS, &assigned.octets())
                        }
                        // A client has no address to give: a peer asking
                        // us for one cannot be helped.
                        None if asked.is_unspecified() => o.write(&mut reject),
                        None => peer = Some(asked),
                    }
                }
                option::PRIMARY_DNS
                | option::PRIMARY_NBNS
                | option::SECONDARY_DNS
                | option::SECONDARY_NBNS
                    if o.data.len() == 4 =>
                {
                    // RFC 1877 §1.1–1.4: Nak with the address to use,
                    // Reject when we have none to give.
                    match self.served(o.kind) {
                        Some(ours) if addr(o.data) == ours => {}
                        Some(ours) => write_option(&mut nak, o.kind, &ours.octets()),
                        None => o.write(&mut reject),
                    }
                }
                // RFC 1332 §3.1 IP-Addresses is deprecated, §3.2 VJ
                // compression is not implemented; unknown options, bad
                // lengths and repeated IP-Address: reject (RFC 1661 §5.4).
                _ => o.write(&mut reject),
            }
        }
        if !reject.is_empty() {
            return Verdict::Reject(reject);
        }
        if !saw_address {
            if let Some(assigned) = self.config.peer_address {
                // RFC 1332 §3.3: "If negotiation about the remote
                // IP-address is required, and the peer did not provide the
                // option in its Configure-Request, the option SHOULD be
                // appended to a Configure-Nak." A few hints, then accept.
                if self.hints_left > 0 {
                    self.hints_left -= 1;
                    write_option(&mut nak, option::IP_ADDRESS, &assigned.octets());
                }
            }
        }
        if !nak.is_empty() {
            return Verdict::Nak(nak);
        }
        self.peer = peer;
        Verdict::Ack
    }

    fn on_ack(&mut self) {
        self.acked = true;
    }

    fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
        for o in options {
            let Some(slot) = Self::slot(o.kind) else {
                continue;
            };
            if o.data.len() != 4 {
                continue;
            }
            let value = addr(o.data);
            if slot == 0 {
                // A server keeps its configured address; a client takes
                // the one assigned (RFC 1332 §3.3).
                if !self.config.is_server() && !value.is_unspecified() {
                    self.wanted[0] = Wanted { send: true, value };
                }
                continue;
            }
            // RFC 1877: take the Nak'd server address, but only for options
            // we are configured to ask for (a Nak may carry unrequested
            // options as hints, RFC 1661 §5.3).
            let requested = if slot % 2 == 1 {
                self.config.request_dns
            } else {
                self.config.request_nbns
            };
            if requested && self.wanted[slot].send {
                self.wanted[slot].value = value;
            }
        }
    }

    fn on_reject(&mut self, options: &[ConfigOption<'_>]) {
        for o in options {
            if let Some(slot) = Self::slot(o.kind) {
                self.wanted[slot].send = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::{Fsm, FsmConfig, FsmEvent, State};
    use crate::packet::{code, parse_options, write_packet};
    use std::time::Instant;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DNS1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
    const DNS2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 54);
    const WINS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 137);

    fn pump(now: Instant, a: &mut Fsm<Ipcp>, b: &mut Fsm<Ipcp>) {
        for _ in 0..100 {
            let mut any = false;
            while let Some(p) = a.poll_transmit() {
                b.handle_packet(now, &p).unwrap();
                any = true;
            }
            while let Some(p) = b.poll_transmit() {
                a.handle_packet(now, &p).unwrap();
                any = true;
            }
            if !any {
                return;
            }
        }
        panic!("negotiation did not settle");
    }

    fn started(config: IpcpConfig, now: Instant) -> Fsm<Ipcp> {
        let mut f = Fsm::new(Ipcp::new(config), FsmConfig::default());
        f.open(now);
        f.lower_up(now);
        f
    }

    fn windows_client() -> IpcpConfig {
        IpcpConfig {
            request_nbns: true,
            ..IpcpConfig::client()
        }
    }

    fn server(dns: [Option<Ipv4Addr>; 2], nbns: [Option<Ipv4Addr>; 2]) -> IpcpConfig {
        IpcpConfig::server(SERVER, CLIENT, dns, nbns)
    }

    fn request(id: u8, options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        for (k, d) in options {
            write_option(&mut data, *k, d);
        }
        let mut p = Vec::new();
        write_packet(&mut p, code::CONFIGURE_REQUEST, id, &data);
        p
    }

    #[test]
    fn windows_like_client_request_is_34_bytes() {
        let now = Instant::now();
        let mut c = started(windows_client(), now);
        let req = c.poll_transmit().unwrap();
        assert_eq!(req.len(), 34);
        assert_eq!(
            hex::encode(&req[4..]),
            "030600000000810600000000820600000000830600000000840600000000"
        );
    }

    #[test]
    fn server_and_windows_client_open_with_addresses_and_name_servers() {
        let now = Instant::now();
        let mut s = started(server([Some(DNS1), Some(DNS2)], [Some(WINS), None]), now);
        let mut c = started(windows_client(), now);
        pump(now, &mut s, &mut c);
        assert!(s.is_opened() && c.is_opened());
        let (s, c) = (s.negotiator(), c.negotiator());
        assert_eq!(s.local_address(), Some(SERVER));
        assert_eq!(s.peer_address(), Some(CLIENT));
        assert_eq!(c.local_address(), Some(CLIENT));
        assert_eq!(c.peer_address(), Some(SERVER));
        assert_eq!(c.dns(), [Some(DNS1), Some(DNS2)]);
        // The secondary NBNS was rejected by the server.
        assert_eq!(c.nbns(), [Some(WINS), None]);
        assert_eq!(s.dns(), [Some(DNS1), Some(DNS2)]);
    }

    #[test]
    fn server_without_name_servers_rejects_the_options() {
        let now = Instant::now();
        let mut s = started(server([None, None], [None, None]), now);
        let mut c = started(windows_client(), now);
        let _ = s.poll_transmit();
        let req = c.poll_transmit().unwrap();
        s.handle_packet(now, &req).unwrap();
        let rej = s.poll_transmit().unwrap();
        assert_eq!(rej[0], code::CONFIGURE_REJECT, "Reject before Nak");
        let kinds: Vec<u8> = parse_options(&rej[4..])
            .unwrap()
            .iter()
            .map(|o| o.kind)
            .collect();
        assert_eq!(kinds, vec![129, 130, 131, 132]);
        // The rest of the exchange converges.
        let mut s2 = started(server([None, None], [None, None]), now);
        let mut c2 = started(windows_client(), now);
        pump(now, &mut s2, &mut c2);
        assert!(s2.is_opened() && c2.is_opened());
        assert_eq!(c2.negotiator().dns(), [None, None]);
        assert_eq!(c2.negotiator().local_address(), Some(CLIENT));
    }

    #[test]
    fn client_asking_another_address_gets_the_assigned_one() {
        let now = Instant::now();
        let mut s = started(server([Some(DNS1), None], [None, None]), now);
        let want = Ipv4Addr::new(10, 9, 9, 9);
        let mut c = started(
            IpcpConfig {
                local_address: Some(want),
                ..IpcpConfig::client()
            },
            now,
        );
        pump(now, &mut s, &mut c);
        assert!(s.is_opened() && c.is_opened());
        assert_eq!(c.negotiator().local_address(), Some(CLIENT));
        assert_eq!(c.negotiator().dns(), [Some(DNS1), None]);
        assert_eq!(s.negotiator().peer_address(), Some(CLIENT));
    }

    #[test]
    fn vj_compression_and_ip_addresses_are_rejected() {
        let mut s = Ipcp::new(server([Some(DNS1), None], [None, None]));
        let vj: &[u8] = &[0x00, 0x2d, 0x0f, 0x01];
        let opts = [
            ConfigOption {
                kind: option::IP_ADDRESS,
                data: &[0, 0, 0, 0],
            },
            ConfigOption {
                kind: option::IP_COMPRESSION_PROTOCOL,
                data: vj,
            },
            ConfigOption {
                kind: option::IP_ADDRESSES,
                data: &[1, 2, 3, 4, 5, 6, 7, 8],
            },
        ];
        let mut expect = Vec::new();
        opts[1].write(&mut expect);
        opts[2].write(&mut expect);
        assert_eq!(s.check_request(&opts), Verdict::Reject(expect));
    }

    #[test]
    fn bad_lengths_and_unknown_options_are_rejected_unchanged() {
        let mut s = Ipcp::new(server([Some(DNS1), None], [None, None]));
        let opts = [
            ConfigOption {
                kind: option::IP_ADDRESS,
                data: &[10, 0, 0],
            },
            ConfigOption {
                kind: 77,
                data: &[1],
            },
            ConfigOption {
                kind: option::PRIMARY_DNS,
                data: &[0, 0, 0, 0, 0],
            },
        ];
        let mut expect = Vec::new();
        for o in &opts {
            o.write(&mut expect);
        }
        assert_eq!(s.check_request(&opts), Verdict::Reject(expect));
    }

    #[test]
    fn nak_carries_assigned_values() {
        let mut s = Ipcp::new(server([Some(DNS1), Some(DNS2)], [None, None]));
        let opts = [
            ConfigOption {
                kind: option::IP_ADDRESS,
                data: &[0, 0, 0, 0],
            },
            ConfigOption {
                kind: option::PRIMARY_DNS,
                data: &[0, 0, 0, 0],
            },
        ];
        let mut expect = Vec::new();
        write_option(&mut expect, option::IP_ADDRESS, &CLIENT.octets());
        write_option(&mut expect, option::PRIMARY_DNS, &DNS1.octets());
        assert_eq!(s.check_request(&opts), Verdict::Nak(expect));
        let good = [
            ConfigOption {
                kind: option::IP_ADDRESS,
                data: &CLIENT.octets(),
            },
            ConfigOption {
                kind: option::PRIMARY_DNS,
                data: &DNS1.octets(),
            },
        ];
        assert_eq!(s.check_request(&good), Verdict::Ack);
    }

    #[test]
    fn server_hints_a_missing_address_then_accepts() {
        let mut s = Ipcp::new(server([None, None], [None, None]));
        let mut hint = Vec::new();
        write_option(&mut hint, option::IP_ADDRESS, &CLIENT.octets());
        assert_eq!(s.check_request(&[]), Verdict::Nak(hint.clone()));
        assert_eq!(s.check_request(&[]), Verdict::Nak(hint));
        assert_eq!(s.check_request(&[]), Verdict::Ack);
        assert_eq!(s.peer_address(), Some(CLIENT));
    }

    #[test]
    fn client_rejects_a_peer_asking_it_for_an_address() {
        let mut c = Ipcp::new(IpcpConfig::client());
        let opts = [ConfigOption {
            kind: option::IP_ADDRESS,
            data: &[0, 0, 0, 0],
        }];
        assert_eq!(
            c.check_request(&opts),
            Verdict::Reject(vec![3, 6, 0, 0, 0, 0])
        );
    }

    #[test]
    fn raw_exchange_with_a_windows_request() {
        let now = Instant::now();
        let mut s = started(server([Some(DNS1), None], [None, None]), now);
        let ours = s.poll_transmit().unwrap();
        assert_eq!(ours, vec![1, 0, 0, 10, 3, 6, 10, 0, 0, 1]);
        let z: &[u8] = &[0, 0, 0, 0];
        s.handle_packet(
            now,
            &request(1, &[(3, z), (129, z), (130, z), (131, z), (132, z)]),
        )
        .unwrap();
        let rej = s.poll_transmit().unwrap();
        assert_eq!(rej[0], code::CONFIGURE_REJECT);
        assert_eq!(
            &rej[4..],
            &[130, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0, 132, 6, 0, 0, 0, 0]
        );
        s.handle_packet(now, &request(2, &[(3, z), (129, z)]))
            .unwrap();
        let nak = s.poll_transmit().unwrap();
        assert_eq!(nak[0], code::CONFIGURE_NAK);
        assert_eq!(&nak[4..], &[3, 6, 10, 0, 0, 2, 129, 6, 192, 0, 2, 53]);
        s.handle_packet(
            now,
            &request(3, &[(3, &CLIENT.octets()), (129, &DNS1.octets())]),
        )
        .unwrap();
        assert_eq!(s.poll_transmit().unwrap()[0], code::CONFIGURE_ACK);
        let mut ack = ours.clone();
        ack[0] = code::CONFIGURE_ACK;
        s.handle_packet(now, &ack).unwrap();
        assert_eq!(s.state(), State::Opened);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events, vec![FsmEvent::Started, FsmEvent::Up]);
    }

    proptest::proptest! {
        #[test]
        fn check_request_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            if let Ok(opts) = parse_options(&bytes) {
                for config in [server([Some(DNS1), None], [None, Some(WINS)]), windows_client()] {
                    let mut n = Ipcp::new(config);
                    match n.check_request(&opts) {
                        Verdict::Reject(r) => {
                            // Rejected options are copied unchanged.
                            for o in parse_options(&r).unwrap() {
                                proptest::prop_assert!(opts.contains(&o));
                            }
                        }
                        Verdict::Nak(k) => { parse_options(&k).unwrap(); }
                        Verdict::Ack => {}
                    }
                    n.on_nak(&opts);
                    n.on_reject(&opts);
                    let mut out = Vec::new();
                    n.build_request(&mut out);
                    parse_options(&out).unwrap();
                }
            }
        }
    }
}
