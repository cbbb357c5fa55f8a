//! A source of IP packets the session reads itself (the client's TUN
//! device), instead of having a reader task hand them over through a
//! queue: one task hand-off fewer per batch on the data path.

use std::io;
use std::task::{Context, Poll};

/// IP packets from the host, read in batches by the session task.
pub trait PacketSource: Send {
    /// Waits until the host has packets and reads one batch of them
    /// (see [`PacketSource::for_each`]). Cancel-safe: `Pending` consumes
    /// nothing. An error means the source is gone for good.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads one more batch if the host has one now, without waiting:
    /// `Ok(false)` when there is none.
    fn try_read(&mut self) -> io::Result<bool> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_read(&mut cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }

    /// Hands each packet of the last batch to `f`.
    fn for_each(&self, f: &mut dyn FnMut(&[u8]));
}

/// Waits until an optional source has a batch (never, without one).
/// Cancel-safe, as [`PacketSource::poll_read`] is.
pub(crate) async fn read_source(source: Option<&mut (dyn PacketSource + '_)>) -> io::Result<()> {
    match source {
        Some(s) => std::future::poll_fn(|cx| s.poll_read(cx)).await,
        None => std::future::pending().await,
    }
}

/// Hands `f` each packet of the batch just read and of the batches the
/// source has ready now, until `max` packets were given (one wake-up's
/// worth). An error of a later read is returned: the source is gone.
pub(crate) fn take_batches(
    source: &mut dyn PacketSource,
    max: usize,
    f: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let mut taken = 0;
    loop {
        source.for_each(&mut |packet| {
            if !packet.is_empty() {
                f(packet);
                taken += 1;
            }
        });
        if taken >= max || !source.try_read()? {
            return Ok(());
        }
    }
}
