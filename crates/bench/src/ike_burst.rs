//! `ras-bench ike-burst`: a light IKEv2 load generator for measuring
//! responders (issue 14's handshakes per second).
//!
//! strongSwan's load tester spends 0.9–3 ms of CPU per IKE SA it
//! initiates, more than either responder it is measured against, so on
//! this machine's two shared cores it cannot offer the rate the issue asks
//! to measure (docs/BENCHMARKS.md, "Against strongSwan"). This generator
//! drives our sans-IO initiator (`ipsec::ikev2::Ikev2Initiator`, the one
//! `ras connect ikev2://` uses) for every IKE SA of a burst from one
//! thread (UDP 500, and 4500 when asked for NAT-T): IKE_SA_INIT and IKE_AUTH with one CHILD_SA
//! and a virtual address, with a pre-shared key or with EAP-MSCHAPv2
//! after checking the server's certificate (RFC 7296 §2.15, §2.16) — the
//! load tester's two profiles, with the same proposals, so the same run
//! can measure `ras server` and strongSwan's responder with it
//! (scripts/ikev2-bench/bench.sh `GENERATOR=ras`).
//!
//! It prints one line: seconds until the last IKE SA was up, IKE SAs up,
//! failed, retransmissions, errors, and its own CPU seconds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ipsec::esp::CipherSuite;
use ipsec::ike_crypto::{DhGroup, HashAlg};
use ipsec::ikev1::certificates::TrustAnchors;
use ipsec::ikev2::encrypted::SkCipher;
use ipsec::ikev2::payloads::id_type;
use ipsec::ikev2::{
    ClientAuth, Ikev2ClientEvent, Ikev2Initiator, Ikev2InitiatorConfig, Ikev2Offer, ServerTrust,
};
use ipsec::udp_encap::NON_ESP_MARKER;
use tunnel::ikev2_eap::{IkeEapPeer, PeerStep};
use zeroize::Zeroizing;

#[derive(clap::Args, Clone)]
pub struct IkeBurstArgs {
    /// The responder's address (UDP 500).
    #[arg(long)]
    server: IpAddr,
    /// Our address (bound, and the one NAT detection hashes).
    #[arg(long)]
    bind: IpAddr,
    /// Our UDP port.
    #[arg(long, default_value_t = 500)]
    port: u16,
    /// IKE SAs started at once.
    #[arg(long, default_value_t = 250)]
    count: usize,
    /// `psk` or `eap` (EAP-MSCHAPv2 after the server's certificate).
    #[arg(long, default_value = "psk")]
    auth: String,
    /// IDi of the n-th IKE SA: `{}` is replaced by n (1..=count); an ID
    /// with an `@` is sent as RFC822_ADDR, as strongSwan does.
    #[arg(long, default_value = "c{}@psk.lt.ikbench")]
    identity: String,
    /// The pre-shared key (first line of the file).
    #[arg(long)]
    psk_file: Option<PathBuf>,
    /// EAP-MSCHAPv2 password (first line of the file); the user name is
    /// the IDi.
    #[arg(long)]
    eap_password_file: Option<PathBuf>,
    /// PEM CA certificates the server's certificate must chain to (eap).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// IKE key exchange: x25519 (strongSwan's aes128gcm16-prfsha256-x25519),
    /// ecp256 or modp2048; always AES-GCM-128 with PRF-HMAC-SHA2-256.
    #[arg(long, default_value = "x25519")]
    group: String,
    /// Give up on the burst after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// One IKE SA of the burst.
struct Slot {
    initiator: Ikev2Initiator,
    eap: Option<IkeEapPeer>,
    done: bool,
}

struct Tally {
    up: usize,
    failed: usize,
    retransmits: usize,
    errors: usize,
    started: Instant,
    last_up: Option<Instant>,
    cpu: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            up: 0,
            failed: 0,
            retransmits: 0,
            errors: 0,
            started: Instant::now(),
            last_up: None,
            cpu: 0.0,
        }
    }
}

pub fn run(args: IkeBurstArgs) -> anyhow::Result<()> {
    let group = match args.group.as_str() {
        "x25519" => DhGroup::Curve25519,
        "ecp256" => DhGroup::Ecp256,
        "modp2048" => DhGroup::Modp2048,
        other => bail!("--group {other}: one of x25519, ecp256, modp2048"),
    };
    let first_line = |p: &PathBuf| -> anyhow::Result<Zeroizing<String>> {
        let text = Zeroizing::new(
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        );
        Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_string(),
        ))
    };
    let mut base = match args.auth.as_str() {
        "psk" => {
            let file = args
                .psk_file
                .as_ref()
                .context("--auth psk needs --psk-file")?;
            let psk = first_line(file)?;
            Ikev2InitiatorConfig::new(
                ClientAuth::SharedKey(Zeroizing::new(psk.as_bytes().to_vec())),
                "",
            )
        }
        "eap" => {
            let ca = args.ca.as_ref().context("--auth eap needs --ca")?;
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let anchors = TrustAnchors::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
            let mut config = Ikev2InitiatorConfig::new(
                ClientAuth::Eap {
                    server_key: Zeroizing::new(Vec::new()),
                },
                "",
            );
            config.server_trust = Some(ServerTrust::new(anchors, Some(args.server.to_string())));
            config
        }
        other => bail!("--auth {other}: psk or eap"),
    };
    let password = match (&args.auth[..], &args.eap_password_file) {
        ("eap", Some(f)) => Some(first_line(f)?),
        ("eap", None) => bail!("--auth eap needs --eap-password-file"),
        _ => None,
    };
    base.ike_offers = vec![Ikev2Offer {
        cipher: SkCipher::AesGcm16 { key_len: 16 },
        prf: HashAlg::Sha256,
        integ: None,
        group,
    }];
    base.esp_suites = vec![CipherSuite::Aes128Gcm16];
    base.give_up_after = Duration::from_secs(args.timeout);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tally = rt.block_on(burst(&args, base, password))?;
    let cpu = tally.cpu;
    let secs = tally
        .last_up
        .unwrap_or_else(Instant::now)
        .duration_since(tally.started)
        .as_secs_f64();
    let unfinished = args.count - tally.up - tally.failed;
    if unfinished > 0 {
        eprintln!(
            "ike-burst: {unfinished} IKE SAs not up after {} s",
            args.timeout
        );
    }
    println!(
        "{secs:.3} {} {} {} {} {cpu:.2}",
        tally.up,
        tally.failed + unfinished,
        tally.retransmits,
        tally.errors
    );
    Ok(())
}

/// IKE on port 500 and, once a responder asks for it (a NAT, or
/// strongSwan's kernel-libipsec, which fakes one to get ESP in UDP), on
/// 4500 with the non-ESP marker (RFC 3948 §2.2).
struct Sockets {
    ike: tokio::net::UdpSocket,
    nat_t: tokio::net::UdpSocket,
    /// The same sockets for sending from synchronous code: tokio's
    /// `try_send_to` refuses until its reactor has seen the socket
    /// writable, which a burst sent before the first `await` never is.
    ike_send: UdpSocket,
    nat_t_send: UdpSocket,
}

impl Sockets {
    fn bind(address: IpAddr, ike_port: u16) -> anyhow::Result<Sockets> {
        let udp = |port: u16| -> anyhow::Result<(tokio::net::UdpSocket, UdpSocket)> {
            let socket = UdpSocket::bind(SocketAddr::new(address, port))
                .with_context(|| format!("binding UDP {address}:{port}"))?;
            // A burst's answers arrive faster than one thread reads them.
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
            let _ = socket2::SockRef::from(&socket).set_send_buffer_size(4 << 20);
            socket.set_nonblocking(true)?;
            let send = socket.try_clone()?;
            Ok((tokio::net::UdpSocket::from_std(socket)?, send))
        };
        let (ike, ike_send) = udp(ike_port)?;
        let (nat_t, nat_t_send) = udp(4500)?;
        Ok(Sockets {
            ike,
            nat_t,
            ike_send,
            nat_t_send,
        })
    }

    /// Sends at once; a full send buffer (a burst of 1,000 at once) is
    /// waited out briefly, as a blocking socket would.
    fn send(&self, t: &ipsec::ikev1::Transmit) -> std::io::Result<usize> {
        for _ in 0..1000 {
            match self.try_send(t) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_micros(50))
                }
                other => return other,
            }
        }
        self.try_send(t)
    }

    fn try_send(&self, t: &ipsec::ikev1::Transmit) -> std::io::Result<usize> {
        if t.is_nat_keepalive() {
            self.nat_t_send.send_to(&t.bytes, t.remote)
        } else if t.from_nat_t_port {
            let mut bytes = Vec::with_capacity(4 + t.bytes.len());
            bytes.extend_from_slice(&NON_ESP_MARKER);
            bytes.extend_from_slice(&t.bytes);
            self.nat_t_send.send_to(&bytes, t.remote)
        } else {
            self.ike_send.send_to(&t.bytes, t.remote)
        }
    }
}

async fn burst(
    args: &IkeBurstArgs,
    base: Ikev2InitiatorConfig,
    password: Option<Zeroizing<String>>,
) -> anyhow::Result<Tally> {
    let server = SocketAddr::new(args.server, 500);
    // Port 500 as a real client: NAT detection hashes it (RFC 7296 §2.23).
    let sockets = Sockets::bind(args.bind, args.port)?;
    let local = sockets.ike.local_addr()?;
    // Our generator's start-up, not a handshake: before the clock starts.
    ipsec::ike_crypto::thread_seed::seed_this_thread();
    let cpu0 = cpu_seconds();
    let mut tally = Tally {
        started: Instant::now(),
        ..Tally::default()
    };
    let mut slots: Vec<Slot> = Vec::with_capacity(args.count);
    let mut by_spi: HashMap<[u8; 8], usize> = HashMap::with_capacity(args.count);
    for n in 1..=args.count {
        let mut config = base.clone();
        let id = args.identity.replace("{}", &n.to_string());
        config.identity_type = if id.contains('@') {
            id_type::RFC822_ADDR
        } else {
            id_type::FQDN
        };
        config.identity = id.as_bytes().to_vec();
        let eap = password
            .as_ref()
            .map(|pw| IkeEapPeer::new(&id, pw, &mut rand::thread_rng()));
        let initiator = Ikev2Initiator::new(config, local, server, Instant::now());
        slots.push(Slot {
            initiator,
            eap,
            done: false,
        });
        let i = slots.len() - 1;
        flush(&sockets, &mut slots[i], i, &mut by_spi, &mut tally);
    }

    let deadline =
        tokio::time::Instant::from_std(tally.started + Duration::from_secs(args.timeout));
    let (mut buf_ike, mut buf_nat_t) = (vec![0u8; 65536], vec![0u8; 65536]);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while tally.up + tally.failed < args.count {
        let (message, from) = tokio::select! {
            r = sockets.ike.recv_from(&mut buf_ike) => {
                let (len, from) = r.context("receiving on the IKE port")?;
                (&buf_ike[..len], from)
            }
            r = sockets.nat_t.recv_from(&mut buf_nat_t) => {
                let (len, from) = r.context("receiving on the NAT-T port")?;
                // Only IKE (after the non-ESP marker) matters here; ESP
                // and keepalives are not ours to count.
                match buf_nat_t[..len].strip_prefix(&NON_ESP_MARKER) {
                    Some(ike) => (ike, from),
                    None => continue,
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for (i, slot) in slots.iter_mut().enumerate() {
                    if !slot.done && slot.initiator.poll_timeout().is_some_and(|t| t <= now) {
                        slot.initiator.handle_timeout(now);
                        tally.retransmits += flush(&sockets, slot, i, &mut by_spi, &mut tally);
                        step(&sockets, slot, i, &mut by_spi, &mut tally);
                    }
                }
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        };
        if from.ip() != args.server {
            tally.error(format_args!(
                "{} bytes from {from}: not the server",
                message.len()
            ));
            continue;
        }
        // The IKE header starts with the initiator's SPI (RFC 7296 §3.1).
        let Some(i) = message
            .get(..8)
            .and_then(|s| by_spi.get(<&[u8; 8]>::try_from(s).ok()?))
            .copied()
        else {
            tally.error(format_args!(
                "{} bytes from {from}: no IKE SA of ours",
                message.len()
            ));
            continue;
        };
        let on_nat_t = from.port() != 500;
        slots[i]
            .initiator
            .handle_datagram(Instant::now(), on_nat_t, message);
        step(&sockets, &mut slots[i], i, &mut by_spi, &mut tally);
    }
    tally.cpu = cpu_seconds() - cpu0;
    Ok(tally)
}

/// Handles the initiator's events (EAP answered at once) and sends what
/// they produced.
fn step(
    sockets: &Sockets,
    slot: &mut Slot,
    i: usize,
    by_spi: &mut HashMap<[u8; 8], usize>,
    tally: &mut Tally,
) {
    loop {
        flush(sockets, slot, i, by_spi, tally);
        let Some(event) = slot.initiator.poll_event() else {
            break;
        };
        let now = Instant::now();
        match event {
            Ikev2ClientEvent::EapRequest { packet } => match slot.eap.as_mut() {
                Some(eap) => match eap.handle(now, &packet) {
                    PeerStep::Respond(p) => slot.initiator.eap_response(now, &p),
                    PeerStep::Finished(msk) => slot.initiator.eap_finished(now, msk),
                    PeerStep::Failed(reason) => {
                        eprintln!("ike-burst: IKE SA {}: {reason}", i + 1);
                        slot.initiator.close(now);
                    }
                    PeerStep::Nothing => {}
                },
                None => {
                    eprintln!("ike-burst: the server asked for EAP; use --auth eap");
                    slot.initiator.close(now);
                }
            },
            Ikev2ClientEvent::ChildSaUp(_) if !slot.done => {
                slot.done = true;
                tally.up += 1;
                tally.last_up = Some(now);
            }
            Ikev2ClientEvent::Down { reason } if !slot.done => {
                slot.done = true;
                tally.failed += 1;
                eprintln!("ike-burst: IKE SA {}: {reason}", i + 1);
            }
            _ => {}
        }
    }
}

/// Sends what the initiator has queued; returns how many datagrams.
fn flush(
    sockets: &Sockets,
    slot: &mut Slot,
    i: usize,
    by_spi: &mut HashMap<[u8; 8], usize>,
    tally: &mut Tally,
) -> usize {
    let mut sent = 0;
    while let Some(t) = slot.initiator.poll_transmit() {
        if let Some(spi) = t.bytes.get(..8) {
            by_spi
                .entry(<[u8; 8]>::try_from(spi).expect("8 bytes"))
                .or_insert(i);
        }
        if let Err(e) = sockets.send(&t) {
            tally.error(format_args!("sending to {}: {e}", t.remote));
        }
        sent += 1;
    }
    sent
}

impl Tally {
    /// Counts an error; the first few are shown.
    fn error(&mut self, what: std::fmt::Arguments) {
        self.errors += 1;
        if self.errors <= 3 {
            eprintln!("ike-burst: {what}");
        }
    }
}

fn cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}
