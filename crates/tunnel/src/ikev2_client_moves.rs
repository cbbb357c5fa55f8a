//! Between a program that follows the network (the `ras client` daemon's
//! netlink watcher) and the IKEv2 client tasks of this process: a nudge to
//! look at the local address now instead of at the next periodic check,
//! and a report of each move (RFC 4555 §3.5 UPDATE_SA_ADDRESSES answered,
//! or not possible because MOBIKE is off).

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

/// One IKEv2 tunnel's reaction to a new local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressMove {
    /// The server answered UPDATE_SA_ADDRESSES: the SA lives on at `new`.
    Moved {
        server: SocketAddr,
        old: IpAddr,
        new: IpAddr,
        /// From noticing the new address to the server's answer.
        took: Duration,
    },
    /// MOBIKE was not agreed: the tunnel cannot follow.
    CannotMove {
        server: SocketAddr,
        old: IpAddr,
        new: IpAddr,
    },
}

fn nudge() -> &'static Notify {
    static NUDGE: OnceLock<Notify> = OnceLock::new();
    NUDGE.get_or_init(Notify::new)
}

fn moves() -> &'static broadcast::Sender<AddressMove> {
    static MOVES: OnceLock<broadcast::Sender<AddressMove>> = OnceLock::new();
    MOVES.get_or_init(|| broadcast::Sender::new(16))
}

/// Every IKEv2 client task of this process looks at its local address now.
pub fn check_addresses_now() {
    nudge().notify_waiters();
}

/// Every later [`AddressMove`] of this process's IKEv2 client tasks.
pub fn subscribe() -> broadcast::Receiver<AddressMove> {
    moves().subscribe()
}

pub(crate) async fn nudged() {
    nudge().notified().await
}

pub(crate) fn report(m: AddressMove) {
    // Nobody listening (`ras connect`) is fine.
    let _ = moves().send(m);
}
