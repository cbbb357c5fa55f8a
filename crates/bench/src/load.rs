//! The load generator: many SSTP clients in one process, without TUN
//! devices (IP packets go nowhere), using the real client library.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client::network::{Attachment, Connected, Network, NetworkError};
use client::sstp::SstpOptions;
use client::target::Target;
use client::verify::{Fingerprint, Trust};
use tokio::sync::{mpsc, watch, Notify};
use tunnel::PacketSink;

pub struct Load {
    pub target: String,
    pub fingerprint: String,
    pub user: String,
    pub password: String,
}

struct Drop0;
impl PacketSink for Drop0 {
    fn send(&self, _: &[u8]) {}
}

/// Attaches nothing; tells the waiter the link is up.
struct NoNetwork(Arc<Notify>);
impl Network for NoNetwork {
    fn attach(&self, _: &Connected) -> Result<Attachment, NetworkError> {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        self.0.notify_one();
        Ok(Attachment {
            outbound: rx,
            inbound: Arc::new(Drop0),
            description: String::new(),
            guard: Box::new(tx),
        })
    }
}

impl Load {
    fn options(&self) -> anyhow::Result<SstpOptions> {
        let target = Target::parse(&self.target)?;
        let trust = Trust::Pin(Fingerprint::parse(&self.fingerprint)?);
        let mut o = SstpOptions::new(
            target,
            &self.user,
            zeroize::Zeroizing::new(self.password.clone()),
            trust,
        );
        o.ipv6 = false;
        Ok(o)
    }

    /// One client: connect, wait until up, disconnect cleanly.
    async fn one(&self, options: &SstpOptions) -> bool {
        let notify = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let network: Arc<dyn Network> = Arc::new(NoNetwork(notify.clone()));
        let session = client::sstp::connect(options, network, stop_rx);
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
            let started = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..parallel {
                let (me, options, next, failures) = (
                    self.clone(),
                    options.clone(),
                    next.clone(),
                    failures.clone(),
                );
                workers.push(tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        if !me.one(&options).await {
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

    /// Open `n` sessions and keep them idle; report how many came up, then
    /// hold them until the server goes away.
    pub fn hold_sessions(
        self: Arc<Self>,
        n: usize,
        report: std::sync::mpsc::Sender<usize>,
    ) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let options = Arc::new(self.options()?);
        rt.block_on(async move {
            let up = Arc::new(AtomicUsize::new(0));
            let mut sessions = Vec::new();
            let (_stop_tx, stop_rx) = watch::channel(false);
            for chunk in 0..n.div_ceil(50) {
                for _ in 0..50.min(n - chunk * 50) {
                    let notify = Arc::new(Notify::new());
                    let network: Arc<dyn Network> = Arc::new(NoNetwork(notify.clone()));
                    let (options, stop) = (options.clone(), stop_rx.clone());
                    sessions.push(tokio::spawn(async move {
                        let _ = client::sstp::connect(&options, network, stop).await;
                    }));
                    let up = up.clone();
                    tokio::spawn(async move {
                        notify.notified().await;
                        up.fetch_add(1, Ordering::Relaxed);
                    });
                }
                // Let this batch come up before opening the next.
                let deadline = Instant::now() + Duration::from_secs(30);
                while up.load(Ordering::Relaxed) < (chunk + 1) * 50
                    && up.load(Ordering::Relaxed) < n
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let _ = report.send(up.load(Ordering::Relaxed));
            for s in sessions {
                let _ = s.await;
            }
            Ok(())
        })
    }
}
