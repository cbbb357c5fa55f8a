//! Between the `ras client` daemon and this process's IKEv2 client tasks:
//! whether to measure the NAT's UDP timeout with our server's probe
//! extension (`ipsec::ikev2::nat_probe`), what was remembered for the
//! network a tunnel starts on, and a report whenever a tunnel's
//! measurement changes state. `ras connect` enables nothing: its tunnels
//! keep the fixed keepalive.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ipsec::ikev2::nat_probe::{NatProbeSettings, NatTimeoutStatus};
use tokio::sync::broadcast;

/// A timeout remembered for the network behind a local address.
pub type Remembered = Arc<dyn Fn(IpAddr) -> Option<Duration> + Send + Sync>;

/// What new tunnels of this process do.
#[derive(Clone)]
pub struct NatProbePlan {
    pub settings: NatProbeSettings,
    pub remembered: Remembered,
}

/// One tunnel's measurement, whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    pub server: SocketAddr,
    /// Our address towards the server (names the network).
    pub local: IpAddr,
    pub status: NatTimeoutStatus,
    /// The NAT keepalive interval in use now.
    pub keepalive: Duration,
}

fn plan_slot() -> &'static Mutex<Option<NatProbePlan>> {
    static PLAN: OnceLock<Mutex<Option<NatProbePlan>>> = OnceLock::new();
    PLAN.get_or_init(|| Mutex::new(None))
}

fn reports() -> &'static broadcast::Sender<NatReport> {
    static REPORTS: OnceLock<broadcast::Sender<NatReport>> = OnceLock::new();
    REPORTS.get_or_init(|| broadcast::Sender::new(16))
}

/// Tunnels started from now on measure (or use what is remembered).
pub fn enable(plan: NatProbePlan) {
    if let Ok(mut slot) = plan_slot().lock() {
        *slot = Some(plan);
    }
}

/// Every later [`NatReport`] of this process's IKEv2 client tasks.
pub fn subscribe() -> broadcast::Receiver<NatReport> {
    reports().subscribe()
}

pub(crate) fn plan() -> Option<NatProbePlan> {
    plan_slot().lock().ok().and_then(|p| p.clone())
}

pub(crate) fn report(r: NatReport) {
    // Nobody listening is fine.
    let _ = reports().send(r);
}
