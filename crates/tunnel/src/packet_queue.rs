//! The queue of IP packets for one session: the router (and the server's
//! own senders: router advertisements, the NetBIOS gateway) on one side,
//! the session's task on the other.
//!
//! A tokio `mpsc` channel allocates its first block of 32 slots and its
//! cache-padded control block when it is made, about 1.7 KiB whether a
//! packet ever passes or not: with thousands of idle sessions that is a
//! tenth of their memory (issue 18). This queue is a `VecDeque` behind a
//! mutex: nothing allocated until packets wait, and given back by
//! [`QueueReceiver::release_idle`] once the session has been quiet.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// A queue holding at most `capacity` packets.
pub fn packet_queue(capacity: usize) -> (PacketSender, PacketReceiver) {
    queue(capacity)
}

/// The sending side of a session's packet queue.
pub type PacketSender = QueueSender<Bytes>;
/// The receiving side of a session's packet queue.
pub type PacketReceiver = QueueReceiver<Bytes>;

/// A queue of at most `capacity` items of any kind (the session's hook
/// answers use one too: a tokio channel's first block would be most of
/// their memory).
pub fn queue<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            waiting_senders: Vec::new(),
            senders: 1,
            receiver_alive: true,
        }),
        capacity,
    });
    (QueueSender(shared.clone()), QueueReceiver(shared))
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver's task, waiting for a packet.
    waker: Option<Waker>,
    /// Senders waiting for room (`PacketSender::send`; never the router).
    waiting_senders: Vec<Waker>,
    senders: usize,
    receiver_alive: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing here can panic while holding the lock; a poisoned lock
        // still holds a consistent queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a packet was not queued; the packet comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T = Bytes> {
    /// The queue holds `capacity` packets: the session is not keeping up.
    Full(T),
    /// The session has ended.
    Closed(T),
}

/// Why no packet was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// Every sender is gone and the queue is empty.
    Disconnected,
}

/// The sending side; clones share the queue.
pub struct QueueSender<T>(Arc<Shared<T>>);

impl<T> QueueSender<T> {
    /// Queue `packet` unless the queue is full or the session has ended:
    /// never waits (a router drops rather than blocks).
    pub fn try_send(&self, packet: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut state = self.0.lock();
            if !state.receiver_alive {
                return Err(TrySendError::Closed(packet));
            }
            if state.queue.len() >= self.0.capacity {
                return Err(TrySendError::Full(packet));
            }
            state.queue.push_back(packet);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queue `packet`, waiting for room while the queue is full; `Err`
    /// with the packet once the session has ended. For senders that may
    /// wait (router advertisements, tests); the router uses `try_send`.
    pub async fn send(&self, packet: T) -> Result<(), T> {
        let mut packet = Some(packet);
        poll_fn(|cx| {
            let p = packet.take().expect("polled after completion");
            match self.try_send(p) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(TrySendError::Closed(p)) => Poll::Ready(Err(p)),
                Err(TrySendError::Full(p)) => {
                    let mut state = self.0.lock();
                    // Room may have been made since `try_send` looked.
                    if state.queue.len() < self.0.capacity || !state.receiver_alive {
                        drop(state);
                        cx.waker().wake_by_ref();
                    } else if !state
                        .waiting_senders
                        .iter()
                        .any(|w| w.will_wake(cx.waker()))
                    {
                        state.waiting_senders.push(cx.waker().clone());
                    }
                    packet = Some(p);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Whether a packet would be queued now.
    pub fn has_room(&self) -> bool {
        let state = self.0.lock();
        state.receiver_alive && state.queue.len() < self.0.capacity
    }

    /// Packets waiting now.
    pub fn len(&self) -> usize {
        self.0.lock().queue.len()
    }

    /// Whether no packet waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most packets the queue holds.
    pub fn max_capacity(&self) -> usize {
        self.0.capacity
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        !self.0.lock().receiver_alive
    }

    /// Whether both are senders of the same queue.
    pub fn same_queue(&self, other: &QueueSender<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        QueueSender(self.0.clone())
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            state.waker.take()
        };
        // The last sender: a waiting receiver learns the queue has ended.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> std::fmt::Debug for QueueSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketSender")
    }
}

/// The receiving side: the session's task.
pub struct QueueReceiver<T>(Arc<Shared<T>>);

impl<T> QueueReceiver<T> {
    /// The next packet, or `None` once every sender is gone and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`QueueReceiver::recv`] as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.0.lock();
        if let Some(packet) = state.queue.pop_front() {
            let waiting = take_waiting_senders(&mut state);
            drop(state);
            waiting.into_iter().for_each(Waker::wake);
            return Poll::Ready(Some(packet));
        }
        if state.senders == 0 {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// A packet if one waits.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.0.lock();
        match state.queue.pop_front() {
            Some(packet) => {
                let waiting = take_waiting_senders(&mut state);
                drop(state);
                waiting.into_iter().for_each(Waker::wake);
                Ok(packet)
            }
            None if state.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Move up to `max` waiting packets to `into` under one lock; returns
    /// how many.
    pub fn take_waiting(&mut self, into: &mut Vec<T>, max: usize) -> usize {
        let mut state = self.0.lock();
        let n = state.queue.len().min(max);
        into.extend(state.queue.drain(..n));
        let waiting = take_waiting_senders(&mut state);
        drop(state);
        waiting.into_iter().for_each(Waker::wake);
        n
    }

    /// Give back the queue's memory if nothing waits (the session calls
    /// it when it has been idle for a while; during traffic the queue
    /// keeps the room it grew to).
    pub fn release_idle(&mut self) {
        let mut state = self.0.lock();
        if state.queue.is_empty() {
            state.queue = VecDeque::new();
        }
    }

    /// The slots the queue has allocated now (tests and figures).
    pub fn allocated_slots(&self) -> usize {
        self.0.lock().queue.capacity()
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_alive = false;
        // The packets go now, not when the last sender does.
        state.queue = VecDeque::new();
        state.waker = None;
        let waiting = std::mem::take(&mut state.waiting_senders);
        drop(state);
        waiting.into_iter().for_each(Waker::wake);
    }
}

/// Senders waiting for room, woken once the lock is let go (rarely any:
/// the router never waits).
fn take_waiting_senders<T>(state: &mut State<T>) -> Vec<Waker> {
    if state.waiting_senders.is_empty() {
        Vec::new()
    } else {
        std::mem::take(&mut state.waiting_senders)
    }
}

impl<T> std::fmt::Debug for QueueReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketReceiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packets_arrive_in_order_up_to_the_capacity() {
        let (tx, mut rx) = packet_queue(3);
        for p in [b"a", b"b", b"c"] {
            tx.try_send(Bytes::from_static(p)).unwrap();
        }
        assert_eq!(
            tx.try_send(Bytes::from_static(b"d")),
            Err(TrySendError::Full(Bytes::from_static(b"d")))
        );
        assert!(!tx.has_room());
        assert_eq!(tx.len(), 3);
        assert_eq!(rx.recv().await.unwrap(), &b"a"[..]);
        let mut batch = Vec::new();
        assert_eq!(rx.take_waiting(&mut batch, 8), 2);
        assert_eq!(
            batch,
            vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")]
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    /// A waiting receiver wakes for a packet, and ends when the last of
    /// the cloned senders goes.
    #[tokio::test]
    async fn the_receiver_wakes_for_a_packet_and_for_the_end() {
        let (tx, mut rx) = packet_queue(8);
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        tx2.try_send(Bytes::from_static(b"x")).unwrap();
        drop(tx2);
        tokio::task::yield_now().await;
        drop(tx);
        let (first, end) = waiter.await.unwrap();
        assert_eq!(first.unwrap(), &b"x"[..]);
        assert_eq!(end, None);
    }

    #[test]
    fn a_gone_receiver_closes_the_queue_and_frees_its_packets() {
        let (tx, rx) = packet_queue(8);
        let packet = Bytes::from(vec![0u8; 100]);
        tx.try_send(packet.clone()).unwrap();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(
            tx.try_send(Bytes::new()),
            Err(TrySendError::Closed(Bytes::new()))
        );
        // Only the test's own handle is left of the queued packet.
        assert!(packet.is_unique());
    }

    /// A sender that may wait does, until the receiver makes room.
    #[tokio::test]
    async fn send_waits_for_room() {
        let (tx, mut rx) = packet_queue(1);
        tx.try_send(Bytes::from_static(b"1")).unwrap();
        let tx2 = tx.clone();
        let sender = tokio::spawn(async move { tx2.send(Bytes::from_static(b"2")).await });
        tokio::task::yield_now().await;
        assert!(!sender.is_finished());
        assert_eq!(rx.recv().await.unwrap(), &b"1"[..]);
        sender.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap(), &b"2"[..]);
        drop(rx);
        assert!(tx.send(Bytes::from_static(b"3")).await.is_err());
    }

    /// Nothing allocated for an idle session; room given back after a
    /// burst once the session asks.
    #[test]
    fn an_idle_queue_holds_no_slots() {
        let (tx, mut rx) = packet_queue(512);
        assert_eq!(rx.allocated_slots(), 0);
        for _ in 0..100 {
            tx.try_send(Bytes::from_static(b"p")).unwrap();
        }
        let mut batch = Vec::new();
        rx.take_waiting(&mut batch, 512);
        assert!(rx.allocated_slots() >= 100);
        rx.release_idle();
        assert_eq!(rx.allocated_slots(), 0);
    }
}
