//! IPv6CP, the IPv6 network control protocol (RFC 5072), as a
//! [`Negotiator`] for the RFC 1661 automaton in [`crate::fsm`]. Only the
//! Interface-Identifier option is negotiated; IPv6 header compression is
//! rejected.

use rand::RngCore;

use crate::fsm::{Negotiator, Verdict};
use crate::packet::{write_option, ConfigOption};

/// PPP protocol number of IPv6CP (RFC 5072 §3).
pub const PROTOCOL: u16 = 0x8057;

/// IPv6CP option types.
pub mod option {
    /// RFC 5072 §4.1: Interface-Identifier (8 octets).
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    /// RFC 5072 §4.2: IPv6-Compression-Protocol.
    pub const IPV6_COMPRESSION_PROTOCOL: u8 = 2;
}

/// An interface identifier (the low 64 bits of the link-local address).
pub type InterfaceId = [u8; 8];

const ZERO: InterfaceId = [0; 8];

/// What IPv6CP negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv6cpConfig {
    /// Our identifier; None: a random one.
    pub local_interface_id: Option<InterfaceId>,
    /// The identifier suggested to a peer that asks for zero or for ours;
    /// None: a random one.
    pub peer_interface_id: Option<InterfaceId>,
}

/// The IPv6CP negotiator; `R` provides the random identifiers (RFC 5072
/// §4.1 asks for them to be unique, a random 64-bit value is).
#[derive(Debug)]
pub struct Ipv6cp<R> {
    config: Ipv6cpConfig,
    rng: R,
    /// Our tentative identifier.
    local: InterfaceId,
    /// Whether we still send the option (a Reject removes it).
    send: bool,
    acked: bool,
    /// The peer's identifier from its acknowledged request.
    peer: Option<InterfaceId>,
    /// The identifier we last suggested to the peer in a Nak.
    suggested: Option<InterfaceId>,
}

impl<R: RngCore> Ipv6cp<R> {
    pub fn new(config: Ipv6cpConfig, rng: R) -> Self {
        let mut n = Ipv6cp {
            config,
            rng,
            local: ZERO,
            send: true,
            acked: false,
            peer: None,
            suggested: None,
        };
        n.reset();
        n
    }

    pub fn config(&self) -> &Ipv6cpConfig {
        &self.config
    }

    /// Our identifier once our request was acknowledged (or rejected: the
    /// peer then does not care which one we use).
    pub fn local_interface_id(&self) -> Option<InterfaceId> {
        self.acked.then_some(self.local)
    }

    /// The peer's identifier from its acknowledged request.
    pub fn peer_interface_id(&self) -> Option<InterfaceId> {
        self.peer
    }

    /// A random non-zero identifier different from all of `avoid`.
    fn fresh(&mut self, avoid: &[InterfaceId]) -> InterfaceId {
        for _ in 0..16 {
            let mut id = ZERO;
            self.rng.fill_bytes(&mut id);
            if id != ZERO && !avoid.contains(&id) {
                return id;
            }
        }
        // A degenerate generator: count up from 1 instead.
        let mut n: u64 = 1;
        loop {
            let id = n.to_be_bytes();
            if !avoid.contains(&id) {
                return id;
            }
            n += 1;
        }
    }

    /// The identifier we suggest to a peer asking for zero or for ours.
    fn suggestion(&mut self) -> InterfaceId {
        if let Some(id) = self.config.peer_interface_id {
            if id != ZERO && id != self.local {
                return id;
            }
        }
        if let Some(id) = self.suggested {
            if id != self.local {
                return id;
            }
        }
        let id = self.fresh(&[self.local]);
        self.suggested = Some(id);
        id
    }
}

impl<R: RngCore> Negotiator for Ipv6cp<R> {
    fn reset(&mut self) {
        self.local = match self.config.local_interface_id {
            Some(id) if id != ZERO => id,
            _ => self.fresh(&[]),
        };
        self.send = true;
        self.acked = false;
        self.peer = None;
        self.suggested = None;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.send {
            write_option(out, option::INTERFACE_IDENTIFIER, &self.local);
        }
    }

    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
        let mut reject = Vec::new();
        let mut nak = Vec::new();
        let mut peer = None;
        let mut seen = false;
        for o in options {
            match o.kind {
                option::INTERFACE_IDENTIFIER if o.data.len() == 8 && !seen => {
                    seen = true;
                    let mut id = ZERO;
                    id.copy_from_slice(o.data);
                    // RFC 5072 §4.1: a zero identifier, or one equal to
                    // ours, is Nak'd with a suggested non-zero identifier
                    // different from ours; any other is acceptable.
                    if id == ZERO || id == self.local {
                        let suggestion = self.suggestion();
                        write_option(&mut nak, option::INTERFACE_IDENTIFIER, &suggestion);
                    } else {
                        peer = Some(id);
                    }
                }
                // RFC 5072 §4.2 compression is not implemented; unknown
                // options, bad lengths and repeats: reject.
                _ => o.write(&mut reject),
            }
        }
        if !reject.is_empty() {
            Verdict::Reject(reject)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            self.peer = peer;
            Verdict::Ack
        }
    }

    fn on_ack(&mut self) {
        self.acked = true;
    }

    fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
        for o in options {
            if o.kind != option::INTERFACE_IDENTIFIER || o.data.len() != 8 {
                continue;
            }
            let mut id = ZERO;
            id.copy_from_slice(o.data);
            let taken: Vec<InterfaceId> = self.peer.into_iter().collect();
            // RFC 5072 §4.1: use the suggested identifier if it is
            // acceptable (non-zero, not the peer's); otherwise pick a new
            // random one.
            self.local = if id != ZERO && !taken.contains(&id) {
                id
            } else {
                let mut avoid = taken;
                avoid.push(self.local);
                self.fresh(&avoid)
            };
            self.send = true;
        }
    }

    fn on_reject(&mut self, options: &[ConfigOption<'_>]) {
        if options
            .iter()
            .any(|o| o.kind == option::INTERFACE_IDENTIFIER)
        {
            self.send = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::{Fsm, FsmConfig};
    use crate::packet::parse_options;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::Instant;

    type V6 = Fsm<Ipv6cp<StdRng>>;

    fn pump(now: Instant, a: &mut V6, b: &mut V6) {
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

    fn started(config: Ipv6cpConfig, seed: u64, now: Instant) -> V6 {
        let mut f = Fsm::new(
            Ipv6cp::new(config, StdRng::seed_from_u64(seed)),
            FsmConfig::default(),
        );
        f.open(now);
        f.lower_up(now);
        f
    }

    /// Always produces the same bytes: exercises the collision paths.
    struct Stuck([u8; 8]);
    impl RngCore for Stuck {
        fn next_u32(&mut self) -> u32 {
            u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
        }
        fn next_u64(&mut self) -> u64 {
            u64::from_be_bytes(self.0)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
                *d = *s;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn request_is_14_bytes() {
        let now = Instant::now();
        let mut c = started(Ipv6cpConfig::default(), 1, now);
        let req = c.poll_transmit().unwrap();
        assert_eq!(req.len(), 14);
        assert_eq!(&req[4..6], &[1, 10]);
        assert_ne!(&req[6..], &[0; 8]);
    }

    #[test]
    fn random_identifiers_open_and_differ() {
        let now = Instant::now();
        let mut s = started(Ipv6cpConfig::default(), 1, now);
        let mut c = started(Ipv6cpConfig::default(), 2, now);
        pump(now, &mut s, &mut c);
        assert!(s.is_opened() && c.is_opened());
        let (s, c) = (s.negotiator(), c.negotiator());
        let sl = s.local_interface_id().unwrap();
        let cl = c.local_interface_id().unwrap();
        assert_ne!(sl, cl);
        assert_eq!(s.peer_interface_id(), Some(cl));
        assert_eq!(c.peer_interface_id(), Some(sl));
    }

    #[test]
    fn zero_or_our_identifier_is_nakd_with_the_configured_suggestion() {
        let ours = [0, 0, 0, 0, 0, 0, 0, 1];
        let given = [0x02, 0, 0, 0, 0, 0, 0, 0x42];
        let config = Ipv6cpConfig {
            local_interface_id: Some(ours),
            peer_interface_id: Some(given),
        };
        let mut s = Ipv6cp::new(config, StdRng::seed_from_u64(1));
        let mut nak = Vec::new();
        write_option(&mut nak, option::INTERFACE_IDENTIFIER, &given);
        let zero = [ConfigOption {
            kind: 1,
            data: &[0; 8],
        }];
        assert_eq!(s.check_request(&zero), Verdict::Nak(nak.clone()));
        let same = [ConfigOption {
            kind: 1,
            data: &ours,
        }];
        assert_eq!(s.check_request(&same), Verdict::Nak(nak.clone()));
        // The client takes the suggestion.
        let mut c = Ipv6cp::new(Ipv6cpConfig::default(), StdRng::seed_from_u64(2));
        c.on_nak(&parse_options(&nak).unwrap());
        let mut out = Vec::new();
        c.build_request(&mut out);
        assert_eq!(&out[2..], &given);
    }

    #[test]
    fn colliding_client_takes_the_servers_suggestion() {
        let now = Instant::now();
        let ours = [0, 0, 0, 0, 0, 0, 0, 1];
        let given = [0x02, 0, 0, 0, 0, 0, 0, 0x42];
        let mut s = Fsm::new(
            Ipv6cp::new(
                Ipv6cpConfig {
                    local_interface_id: Some(ours),
                    peer_interface_id: Some(given),
                },
                Stuck([9; 8]),
            ),
            FsmConfig::default(),
        );
        // The client's generator only ever produces the server's identifier.
        let mut c = Fsm::new(
            Ipv6cp::new(Ipv6cpConfig::default(), Stuck(ours)),
            FsmConfig::default(),
        );
        s.open(now);
        s.lower_up(now);
        c.open(now);
        c.lower_up(now);
        for _ in 0..100 {
            let mut any = false;
            while let Some(p) = s.poll_transmit() {
                c.handle_packet(now, &p).unwrap();
                any = true;
            }
            while let Some(p) = c.poll_transmit() {
                s.handle_packet(now, &p).unwrap();
                any = true;
            }
            if !any {
                break;
            }
        }
        assert!(s.is_opened() && c.is_opened());
        assert_eq!(c.negotiator().local_interface_id(), Some(given));
        assert_eq!(s.negotiator().peer_interface_id(), Some(given));
        let sl = s.negotiator().local_interface_id().unwrap();
        assert_ne!(sl, given);
        assert_ne!(sl, ZERO);
        assert_eq!(c.negotiator().peer_interface_id(), Some(sl));
    }

    #[test]
    fn same_identifier_on_both_sides_is_resolved() {
        let now = Instant::now();
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let config = Ipv6cpConfig {
            local_interface_id: Some(id),
            peer_interface_id: None,
        };
        // Same configured identifier, different generators.
        let mut s = Fsm::new(Ipv6cp::new(config, Stuck([9; 8])), FsmConfig::default());
        let mut c = Fsm::new(Ipv6cp::new(config, Stuck([7; 8])), FsmConfig::default());
        for f in [&mut s, &mut c] {
            f.open(now);
            f.lower_up(now);
        }
        let mut s6 = s;
        let mut c6 = c;
        for _ in 0..100 {
            let mut any = false;
            while let Some(p) = s6.poll_transmit() {
                c6.handle_packet(now, &p).unwrap();
                any = true;
            }
            while let Some(p) = c6.poll_transmit() {
                s6.handle_packet(now, &p).unwrap();
                any = true;
            }
            if !any {
                break;
            }
        }
        assert!(s6.is_opened() && c6.is_opened());
        let sl = s6.negotiator().local_interface_id().unwrap();
        let cl = c6.negotiator().local_interface_id().unwrap();
        assert_ne!(sl, cl);
        assert_ne!(sl, ZERO);
        assert_ne!(cl, ZERO);
        assert_eq!(s6.negotiator().peer_interface_id(), Some(cl));
        assert_eq!(c6.negotiator().peer_interface_id(), Some(sl));
    }

    #[test]
    fn compression_and_bad_lengths_are_rejected() {
        let mut n = Ipv6cp::new(Ipv6cpConfig::default(), StdRng::seed_from_u64(9));
        let opts = [
            ConfigOption {
                kind: option::INTERFACE_IDENTIFIER,
                data: &[1, 2, 3, 4, 5, 6, 7, 8],
            },
            ConfigOption {
                kind: option::IPV6_COMPRESSION_PROTOCOL,
                data: &[0x00, 0x61],
            },
            ConfigOption {
                kind: option::INTERFACE_IDENTIFIER,
                data: &[1, 2, 3],
            },
        ];
        let mut expect = Vec::new();
        opts[1].write(&mut expect);
        opts[2].write(&mut expect);
        assert_eq!(n.check_request(&opts), Verdict::Reject(expect));
        assert_eq!(n.check_request(&opts[..1]), Verdict::Ack);
        assert_eq!(n.peer_interface_id(), Some([1, 2, 3, 4, 5, 6, 7, 8]));
    }

    #[test]
    fn rejected_option_is_dropped_from_the_request() {
        let mut n = Ipv6cp::new(Ipv6cpConfig::default(), StdRng::seed_from_u64(9));
        n.on_reject(&[ConfigOption {
            kind: 1,
            data: &[0; 8],
        }]);
        let mut out = Vec::new();
        n.build_request(&mut out);
        assert!(out.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn check_request_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..60), seed: u64) {
            if let Ok(opts) = parse_options(&bytes) {
                let mut n = Ipv6cp::new(Ipv6cpConfig::default(), StdRng::seed_from_u64(seed));
                match n.check_request(&opts) {
                    Verdict::Reject(r) => {
                        for o in parse_options(&r).unwrap() {
                            proptest::prop_assert!(opts.contains(&o));
                        }
                    }
                    Verdict::Nak(k) => {
                        for o in parse_options(&k).unwrap() {
                            proptest::prop_assert!(o.data != [0u8; 8]);
                        }
                    }
                    Verdict::Ack => {}
                }
                n.on_nak(&opts);
                n.on_reject(&opts);
                let mut out = Vec::new();
                n.build_request(&mut out);
                if !out.is_empty() {
                    proptest::prop_assert!(out[2..] != [0u8; 8]);
                }
            }
        }
    }
}
