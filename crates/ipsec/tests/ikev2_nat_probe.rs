//! The NAT-timeout probe extension (ikev2::nat_probe) end to end in
//! memory: our initiator and responder through a simulated NAT whose UDP
//! mappings expire after a set idle time, on a fake clock. An expired
//! mapping drops what the server sends, and the client's next packet gets
//! a new public port (as Linux masquerade does when the old tuple is
//! still held by the dropped inbound packet's conntrack entry).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ikev2::nat_probe::{NatProbeSettings, NatTimeoutStatus};
use ipsec::ikev2::{
    Authorization, ClientAuth, Ikev2ClientEvent, Ikev2Config, Ikev2Event, Ikev2Initiator,
    Ikev2InitiatorConfig, Ikev2PskTable, Ikev2Responder, LocalIdentity,
};
use zeroize::Zeroizing;

const PSK: &[u8] = b"shared between client and server";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn server_addr() -> SocketAddr {
    "198.51.100.1:500".parse().expect("addr")
}

/// One UDP mapping of the NAT.
struct Mapping {
    public_port: u16,
    last_used: Instant,
}

struct Nat {
    timeout: Duration,
    /// Client port (500 or 4500) → its mapping.
    mappings: Vec<(u16, Mapping)>,
    next_port: u16,
    /// Mappings created again after they expired.
    recreated: u32,
    /// Server packets dropped for want of a mapping.
    dropped: u32,
    /// Server packets sent to the client (through or not).
    to_client: u32,
}

impl Nat {
    fn alive(&self, m: &Mapping, now: Instant) -> bool {
        now < m.last_used + self.timeout
    }

    /// The public port the client's packet from `port` leaves with.
    fn outbound(&mut self, now: Instant, port: u16) -> u16 {
        let timeout = self.timeout;
        if let Some((_, m)) = self.mappings.iter_mut().find(|(p, _)| *p == port) {
            if now < m.last_used + timeout {
                m.last_used = now;
                return m.public_port;
            }
            self.recreated += 1;
            m.public_port = self.next_port;
            m.last_used = now;
            self.next_port += 1;
            return m.public_port;
        }
        let public_port = self.next_port;
        self.next_port += 1;
        self.mappings.push((
            port,
            Mapping {
                public_port,
                last_used: now,
            },
        ));
        public_port
    }

    /// Whether a packet to `public_port` reaches the client.
    fn inbound(&mut self, now: Instant, public_port: u16) -> bool {
        self.to_client += 1;
        let live = self
            .mappings
            .iter()
            .position(|(_, m)| m.public_port == public_port && self.alive(m, now));
        match live {
            Some(i) => {
                self.mappings[i].1.last_used = now;
                true
            }
            None => {
                self.dropped += 1;
                false
            }
        }
    }
}

struct Lab {
    now: Instant,
    client: Ikev2Initiator,
    server: Ikev2Responder,
    nat: Nat,
    client_events: Vec<Ikev2ClientEvent>,
    server_events: Vec<Ikev2Event>,
    /// Drop everything the server sends (a server that cannot reach us).
    blackhole: bool,
    start: Instant,
}

impl Lab {
    fn new(settings: Option<NatProbeSettings>, nat_timeout: Duration, server_probe: bool) -> Lab {
        let now = Instant::now();
        let mut config = Ikev2InitiatorConfig::new(
            ClientAuth::SharedKey(Zeroizing::new(PSK.to_vec())),
            "client.example",
        );
        config.nat_probe = settings;
        let server = Ikev2Config {
            psks: Ikev2PskTable::new().with_wildcard(PSK),
            local_identity: LocalIdentity::Fqdn("vpn.example".into()),
            nat_probe: server_probe,
            ..Ikev2Config::default()
        };
        let local: SocketAddr = "192.168.1.20:500".parse().expect("addr");
        let mut lab = Lab {
            now,
            client: Ikev2Initiator::new(config, local, server_addr(), now),
            server: Ikev2Responder::new(server, now),
            nat: Nat {
                timeout: nat_timeout,
                mappings: Vec::new(),
                next_port: 61000,
                recreated: 0,
                dropped: 0,
                to_client: 0,
            },
            client_events: Vec::new(),
            server_events: Vec::new(),
            blackhole: false,
            start: now,
        };
        lab.carry();
        assert!(lab.client.is_established(), "no tunnel");
        lab
    }

    fn carry(&mut self) {
        let now = self.now;
        for _ in 0..50 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                let port = if t.from_nat_t_port { 4500 } else { 500 };
                let public = self.nat.outbound(now, port);
                if std::env::var_os("TRACE").is_some() {
                    eprintln!(
                        "{:?} c->s {} bytes port {public} recreated {}",
                        now - self.start,
                        t.bytes.len(),
                        self.nat.recreated
                    );
                }
                if t.is_nat_keepalive() {
                    continue;
                }
                let local = SocketAddr::new(server_addr().ip(), t.remote.port());
                let from = SocketAddr::new("203.0.113.9".parse().expect("ip"), public);
                self.server
                    .handle_datagram(now, local, from, t.from_nat_t_port, &t.bytes);
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                let through = self.nat.inbound(now, t.remote.port());
                if std::env::var_os("TRACE").is_some() {
                    eprintln!(
                        "{:?} s->c {} bytes to {} through {through}",
                        now - self.start,
                        t.bytes.len(),
                        t.remote
                    );
                }
                if through && !self.blackhole {
                    self.client
                        .handle_datagram(now, t.from_nat_t_port, &t.bytes);
                }
            }
            while let Some(e) = self.server.poll_event() {
                moved = true;
                match e {
                    Ikev2Event::AuthorizationNeeded(req) => self.server.authorize(
                        now,
                        req.ike_sa,
                        Ok(Authorization {
                            ipv4: Some("10.0.10.21".parse().expect("ip")),
                            ..Authorization::default()
                        }),
                    ),
                    other => self.server_events.push(other),
                }
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                self.client_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange did not settle");
    }

    /// Runs both sides' timers until `until`.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..100_000 {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until)
                .max(self.now)
                .min(until);
            self.now = next;
            self.client.handle_timeout(next);
            self.server.handle_timeout(next);
            self.carry();
            if next >= until {
                return;
            }
        }
        panic!("the timers did not settle");
    }

    fn measured(&self) -> Option<(Duration, Duration)> {
        self.client_events.iter().find_map(|e| match e {
            Ikev2ClientEvent::NatTimeoutMeasured { timeout, keepalive } => {
                Some((*timeout, *keepalive))
            }
            _ => None,
        })
    }

    fn went_down(&self) -> bool {
        self.client_events
            .iter()
            .any(|e| matches!(e, Ikev2ClientEvent::Down { .. }))
            || self
                .server_events
                .iter()
                .any(|e| matches!(e, Ikev2Event::IkeSaDown { .. }))
    }
}

#[test]
fn measures_a_20_s_nat_and_then_keeps_the_mapping() {
    let settings = NatProbeSettings::default();
    let mut lab = Lab::new(Some(settings), secs(20), true);
    assert_eq!(lab.client.nat_timeout(), NatTimeoutStatus::Measuring);
    let start = lab.now;
    lab.run_until(start + secs(600));
    let (timeout, keepalive) = lab.measured().unwrap_or_else(|| {
        panic!(
            "not measured within 10 minutes: {}, NAT re-created {} dropped {}, down {}",
            lab.client.nat_timeout(),
            lab.nat.recreated,
            lab.nat.dropped,
            lab.went_down()
        )
    });
    assert!(
        timeout >= secs(18) && timeout < secs(20),
        "measured {timeout:?}"
    );
    assert_eq!(keepalive, timeout * 85 / 100);
    assert_eq!(lab.client.keepalive_interval(), keepalive);
    assert!(matches!(
        lab.client.nat_timeout(),
        NatTimeoutStatus::Measured {
            remembered: false,
            ..
        }
    ));
    assert!(!lab.went_down(), "the SA went down during the measurement");
    // Losses re-created the mapping: the measurement saw them.
    assert!(lab.nat.recreated >= 1, "no probe was ever lost");
    // From now on the keepalive holds the mapping: 30 idle minutes and it
    // never expires again, and the SA stays.
    let recreated = lab.nat.recreated;
    let dropped = lab.nat.dropped;
    let t = lab.now;
    lab.run_until(t + secs(1800));
    assert_eq!(lab.nat.recreated, recreated, "the mapping expired again");
    assert_eq!(lab.nat.dropped, dropped, "server packets were dropped");
    assert!(!lab.went_down());
    assert_eq!(lab.server.ike_sa_count(), 1);
}

#[test]
fn a_long_lived_mapping_gives_a_long_keepalive() {
    let mut lab = Lab::new(Some(NatProbeSettings::default()), secs(3600), true);
    let t = lab.now;
    lab.run_until(t + secs(1200));
    assert_eq!(lab.measured(), Some((secs(300), secs(255))));
    assert!(!lab.went_down());
}

#[test]
fn a_server_without_the_extension_leaves_the_default() {
    let mut lab = Lab::new(Some(NatProbeSettings::default()), secs(20), false);
    assert_eq!(lab.client.nat_timeout(), NatTimeoutStatus::Unsupported);
    assert_eq!(
        lab.client.nat_timeout().to_string(),
        "not measured: server does not offer it"
    );
    let t = lab.now;
    lab.run_until(t + secs(300));
    assert_eq!(lab.measured(), None);
    assert_eq!(lab.client.keepalive_interval(), secs(20));
    // Nothing was asked of the server, so nothing was refused.
    assert!(!lab
        .server_events
        .iter()
        .any(|e| matches!(e, Ikev2Event::Refused { .. })));
    assert!(!lab.went_down());
}

#[test]
fn not_offered_means_not_measured() {
    let mut lab = Lab::new(None, secs(20), true);
    assert_eq!(lab.client.nat_timeout(), NatTimeoutStatus::Off);
    let t = lab.now;
    lab.run_until(t + secs(120));
    assert_eq!(lab.measured(), None);
}

/// The time of the server's first transmit after `from`, with the
/// client deaf (so nothing but the server's own timers make it send).
fn first_server_send_after(lab: &mut Lab, limit: Duration) -> Option<Duration> {
    lab.blackhole = true;
    let start = lab.now;
    let sent_before = lab.nat.to_client;
    let mut t = start;
    while t < start + limit {
        t += Duration::from_millis(250);
        lab.run_until(t);
        if lab.nat.to_client > sent_before {
            return Some(t - start);
        }
    }
    None
}

#[test]
fn the_server_clamps_the_delay() {
    // A client asking for 300 ms gets its probe after 1 s.
    let settings = NatProbeSettings {
        first_delay: Duration::from_millis(300),
        pause: Duration::ZERO,
        ..NatProbeSettings::default()
    };
    let mut lab = Lab::new(Some(settings), secs(3600), true);
    // The request goes out at once (pause 0) and is answered.
    lab.run_until(lab.now + Duration::from_millis(1));
    let at = first_server_send_after(&mut lab, secs(5)).expect("a probe");
    assert!(at >= secs(1) && at <= Duration::from_millis(1250), "{at:?}");

    // One asking for 900 s gets it after 600 s, and the server sends no
    // liveness check meanwhile (its interval is 30 s).
    let settings = NatProbeSettings {
        first_delay: secs(900),
        max_delay: secs(900),
        pause: Duration::ZERO,
        ..NatProbeSettings::default()
    };
    let mut lab = Lab::new(Some(settings), secs(3600), true);
    lab.run_until(lab.now + Duration::from_millis(1));
    let at = first_server_send_after(&mut lab, secs(700)).expect("a probe");
    assert!(
        at >= secs(600) && at <= Duration::from_millis(600_250),
        "{at:?}"
    );
}

#[test]
fn an_unanswered_probe_kills_the_sa_no_sooner_than_a_liveness_check() {
    let settings = NatProbeSettings {
        first_delay: secs(10),
        pause: Duration::ZERO,
        ..NatProbeSettings::default()
    };
    let mut lab = Lab::new(Some(settings), secs(3600), true);
    lab.run_until(lab.now + Duration::from_millis(1));
    // The server's probe goes out 10 s later; the client never answers.
    lab.blackhole = true;
    let start = lab.now;
    lab.run_until(start + secs(69));
    assert_eq!(lab.server.ike_sa_count(), 1, "given up before 10 s + 60 s");
    lab.run_until(start + secs(71));
    assert_eq!(lab.server.ike_sa_count(), 0, "never given up");
}

#[test]
fn traffic_during_the_wait_is_inconclusive() {
    let settings = NatProbeSettings {
        first_delay: secs(10),
        // One surviving 10 s probe ends the measurement.
        max_delay: secs(10),
        pause: Duration::ZERO,
        retry_after: secs(10),
        ..NatProbeSettings::default()
    };
    let mut lab = Lab::new(Some(settings), secs(3600), true);
    lab.run_until(lab.now + Duration::from_millis(1));
    let t = lab.now;
    // ESP goes out 3 s into the wait.
    lab.run_until(t + secs(3));
    lab.client.note_sent(lab.now);
    lab.run_until(t + secs(20));
    // The probe arrived at 10 s but counted for nothing: no measurement.
    assert_eq!(lab.measured(), None);
    assert_eq!(lab.client.nat_timeout(), NatTimeoutStatus::Measuring);
    // The retry (10 s later, again for 10 s) is left alone and counts.
    lab.run_until(t + secs(29));
    assert_eq!(lab.measured(), None);
    lab.run_until(t + secs(32));
    assert_eq!(
        lab.measured(),
        Some((secs(10), Duration::from_millis(8500)))
    );
    assert!(!lab.went_down());
}
