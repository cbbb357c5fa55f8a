//! The load generator: many SSTP, PPTP or L2TP/IPsec clients in one process,
//! without TUN devices (IP packets go nowhere), using the real client
//! library (`ras connect` minus the host side).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::l2tp::L2tpOptions;
use client::network::{Attachment, Connected, Network, NetworkError};
use client::pptp::PptpOptions;
use client::sstp::{ConnectError, SessionEnd, SstpOptions};
use client::target::Target;
use client::verify::{Fingerprint, Trust};
use tokio::sync::{watch, Notify, Semaphore};
use tunnel::PacketSink;

pub struct Load {
    /// `sstp://…` or `l2tp://…`.
    pub target: String,
    /// How the client trusts the server: the SSTP certificate's
    /// fingerprint, or the IPsec pre-shared key.
    pub trust: ServerTrust,
    pub user: String,
    pub password: String,
}

/// What authenticates the server.
pub enum ServerTrust {
    /// SSTP: the server certificate's SHA-256 fingerprint.
    Fingerprint(String),
    /// L2TP/IPsec: IKEv1 Main Mode with this pre-shared key.
    Psk(Vec<u8>),
    /// PPTP: nothing but MS-CHAPv2's mutual authentication.
    None,
}

/// One protocol's client options.
pub(crate) enum Options {
    Sstp(SstpOptions),
    L2tp(L2tpOptions),
    Pptp(PptpOptions),
}

/// What `hold_sessions` got.
pub struct Held {
    pub up: usize,
    /// Sessions that failed or did not come up in time (and were ended).
    pub refused: usize,
    /// Their causes, counted, for one line.
    pub causes: String,
}

impl Options {
    pub(crate) async fn connect(
        &self,
        network: Arc<dyn Network>,
        stop: watch::Receiver<bool>,
    ) -> Result<SessionEnd, ConnectError> {
        match self {
            Options::Sstp(o) => client::sstp::connect(o, network, stop).await,
            Options::L2tp(o) => client::l2tp::connect(o, network, stop).await,
            Options::Pptp(o) => client::pptp::connect(o, network, stop).await,
        }
    }
}

/// Connections from one address `ras server` lets into its TLS handshake
/// stage at once: 16 (`server::handshake_gate::PER_SOURCE_LIMIT`); more are
/// closed in its accept loop. Every client of the load generator has the
/// same address, so it keeps well below that (the server counts a connection until it has read the client's last handshake message, a little after the client is done).
pub(crate) const TLS_SLOTS: usize = 8;

impl Options {
    /// For SSTP: waits for one of `slots`, and gives back options that
    /// free it once TLS is up (`on_connected`) or when they are dropped.
    /// `None` for the other protocols (no TLS stage to bound).
    pub(crate) async fn gated(&self, slots: &Arc<Semaphore>) -> Option<Options> {
        let Options::Sstp(o) = self else {
            return None;
        };
        let permit = slots.clone().acquire_owned().await.ok()?;
        let held = std::sync::Mutex::new(Some(permit));
        let mut o = o.clone();
        let chained = o.on_connected.take();
        o.on_connected = Some(Arc::new(move || {
            held.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(c) = &chained {
                c();
            }
        }));
        Some(Options::Sstp(o))
    }
}

struct Drop0;
impl PacketSink for Drop0 {
    fn send(&self, _: &[u8]) {}
}

/// Attaches nothing; tells the waiter the link is up.
pub(crate) struct NoNetwork(pub(crate) Arc<Notify>);
impl Network for NoNetwork {
    fn attach(&self, _: &Connected) -> Result<Attachment, NetworkError> {
        let (tx, rx) = tunnel::packet_queue(1);
        self.0.notify_one();
        Ok(Attachment {
            outbound: rx,
            inbound: Arc::new(Drop0),
            description: String::new(),
            guard: Box::new(tx),
        })
    }
}

/// One client, timed: connect until the link is up, then disconnect
/// cleanly; the time to the link, or why it did not come up within
/// `limit`.
pub(crate) async fn connect_timed(options: &Options, limit: Duration) -> Result<Duration, String> {
    let notify = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let network: Arc<dyn Network> = Arc::new(NoNetwork(notify.clone()));
    let started = Instant::now();
    let session = options.connect(network, stop_rx);
    tokio::pin!(session);
    tokio::select! {
        _ = notify.notified() => {}
        r = &mut session => return Err(match r {
            Ok(_) => "ended before it came up".to_owned(),
            Err(e) => e.to_string(),
        }),
        _ = tokio::time::sleep(limit) => return Err(format!("no link within {} s", limit.as_secs())),
    }
    let took = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
    Ok(took)
}

impl Load {
    pub(crate) fn options(&self) -> anyhow::Result<Options> {
        let target = Target::parse(&self.target)?;
        let password = zeroize::Zeroizing::new(self.password.clone());
        Ok(match &self.trust {
            ServerTrust::Fingerprint(fp) => {
                let trust = Trust::Pin(Fingerprint::parse(fp)?);
                let mut o = SstpOptions::new(target, &self.user, password, trust);
                o.ipv6 = false;
                Options::Sstp(o)
            }
            ServerTrust::Psk(psk) => {
                let psk = zeroize::Zeroizing::new(psk.clone());
                let mut o = L2tpOptions::new(target, &self.user, password, Some(psk));
                o.ipv6 = false;
                // Every client of this process would get every raw ESP
                // packet of the host (a raw socket sees all of protocol
                // 50) and try it against its SAs: ESP in UDP (RFC 3948)
                // gives each client only its own, as clients behind a NAT
                // have it.
                o.force_udp_encapsulation = true;
                o.connect_timeout = Duration::from_secs(30);
                Options::L2tp(o)
            }
            ServerTrust::None => {
                let mut o = PptpOptions::new(target, &self.user, password);
                o.ipv6 = false;
                Options::Pptp(o)
            }
        })
    }

    /// One client: connect, wait until up, disconnect cleanly.
    async fn one(&self, options: &Options, slots: &Arc<Semaphore>) -> bool {
        let gated = options.gated(slots).await;
        let options = gated.as_ref().unwrap_or(options);
        let notify = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let network: Arc<dyn Network> = Arc::new(NoNetwork(notify.clone()));
        let session = options.connect(network, stop_rx);
        tokio::pin!(session);
        tokio::select! {
            _ = notify.notified() => {}
            r = &mut session => return r.is_ok_and(|e| e.was_up),
            _ = tokio::time::sleep(Duration::from_secs(30)) => return false,
        }
        let _ = stop_tx.send(true);
        matches!(
            tokio::time::timeout(Duration::from_secs(10), session).await,
            Ok(Ok(_))
        )
    }

    /// `total` connects with `parallel` at a time: (done, seconds, failures).
    pub fn connect_rate(
        self: Arc<Self>,
        total: usize,
        parallel: usize,
    ) -> anyhow::Result<(usize, f64, usize)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let options = Arc::new(self.options()?);
        rt.block_on(async move {
            let next = Arc::new(AtomicUsize::new(0));
            let failures = Arc::new(AtomicUsize::new(0));
            let slots = Arc::new(Semaphore::new(TLS_SLOTS));
            let started = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..parallel {
                let (me, options, next, failures, slots) = (
                    self.clone(),
                    options.clone(),
                    next.clone(),
                    failures.clone(),
                    slots.clone(),
                );
                workers.push(tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        if !me.one(&options, &slots).await {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
            let failed = failures.load(Ordering::Relaxed);
            Ok((total - failed, started.elapsed().as_secs_f64(), failed))
        })
    }

    /// Open `n` sessions and keep them idle; report how many came up and
    /// how many were refused (those end at once), then hold the rest until
    /// the server goes away.
    pub fn hold_sessions(
        self: Arc<Self>,
        n: usize,
        report: std::sync::mpsc::Sender<Held>,
    ) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let options = Arc::new(self.options()?);
        rt.block_on(async move {
            let up = Arc::new(AtomicUsize::new(0));
            let refused = Arc::new(AtomicUsize::new(0));
            let causes = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
                String,
                usize,
            >::new()));
            let mut sessions = Vec::new();
            let slots = Arc::new(Semaphore::new(TLS_SLOTS));
            let (_stop_tx, stop_rx) = watch::channel(false);
            let settled = |up: &AtomicUsize, refused: &AtomicUsize| {
                up.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed)
            };
            for chunk in 0..n.div_ceil(50) {
                for _ in 0..50.min(n - chunk * 50) {
                    let notify = Arc::new(Notify::new());
                    let network: Arc<dyn Network> = Arc::new(NoNetwork(notify.clone()));
                    let (options, stop) = (options.clone(), stop_rx.clone());
                    let (up, refused, causes) = (up.clone(), refused.clone(), causes.clone());
                    let slots = slots.clone();
                    sessions.push(tokio::spawn(async move {
                        let gated = options.gated(&slots).await;
                        let options = gated.as_ref().unwrap_or(&options);
                        let session = options.connect(network, stop);
                        tokio::pin!(session);
                        let cause = tokio::select! {
                            _ = notify.notified() => {
                                up.fetch_add(1, Ordering::Relaxed);
                                let _ = session.await;
                                return;
                            }
                            r = &mut session => match r {
                                Ok(_) => "ended before it came up".to_owned(),
                                Err(e) => e.to_string(),
                            },
                            // Dropping the session ends it.
                            _ = tokio::time::sleep(Duration::from_secs(30)) => "no link within 30 s".to_owned(),
                        };
                        refused.fetch_add(1, Ordering::Relaxed);
                        let mut causes = causes.lock().unwrap_or_else(|e| e.into_inner());
                        if causes.len() < 10 || causes.contains_key(&cause) {
                            *causes.entry(cause).or_default() += 1;
                        }
                    }));
                }
                // Let this batch settle (up or refused) before the next.
                let target = ((chunk + 1) * 50).min(n);
                let deadline = Instant::now() + Duration::from_secs(35);
                while settled(&up, &refused) < target && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let causes = causes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(cause, count)| format!("{count}× {cause}"))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = report.send(Held {
                up: up.load(Ordering::Relaxed),
                refused: refused.load(Ordering::Relaxed),
                causes,
            });
            for s in sessions {
                let _ = s.await;
            }
            Ok(())
        })
    }
}
