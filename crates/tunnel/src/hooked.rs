//! A [`SessionCore`] joined to its [`Owner`]'s hooks: the one piece
//! of tokio glue every driver shares. Each question the core asks runs in
//! a task of its own (a credential check or an address must never stall
//! the session loop); its answer comes back through a channel the loop
//! selects on, and goes to the core, which applies it at most once. What
//! an answer hands the driver (the queue of IP packets to send, the
//! client's packet source, the owner's live view) is kept here.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ppp::link::{Link, NetworkSettings};
use session::{
    AuthAnswer, EndReason, HookAnswer, HookRequest, Role, SessionCore, SessionEvent, SessionInfo,
    SessionStats,
};

use crate::hooks::Owner;
use crate::live::LiveSession;
use crate::packet_source::PacketSource;

/// An answer from a hook task, on its way to the core.
pub(crate) enum Answered {
    Auth(AuthAnswer),
    Network(Result<NetworkSettings, String>),
    Up(Result<crate::PacketReceiver, String>),
}

pub(crate) struct Hooked {
    pub core: SessionCore,
    owner: Owner,
    /// A few answers per session: a tokio channel's first block of 32
    /// slots, allocated at once, cost every idle session about 5 KiB with
    /// the answers inline and 0.8 KiB boxed (heaptrack, 1,000 idle SSTP
    /// sessions); this queue allocates only while answers wait, and they
    /// stay boxed (an `Answered` is large: network settings).
    tx: crate::QueueSender<Box<Answered>>,
    /// Answers of the hook tasks: the loop selects on
    /// `hooked.answers.next()` (a field of its own, so that the loop can
    /// wait on it and on `outbound` at once) and gives each to
    /// [`Hooked::apply`].
    pub answers: Answers,
    /// IP packets to send to the peer, once the owner registered the link.
    pub outbound: Option<crate::PacketReceiver>,
    /// Read by the session itself (the client's TUN device).
    pub source: Option<Box<dyn PacketSource>>,
    /// The owner's live view, once the network phase started.
    pub live: Option<Arc<LiveSession>>,
    /// What `live` has been told so far.
    reported: SessionStats,
    /// The batch `take_outbound` fills, kept for the next one.
    batch: Vec<Bytes>,
    /// What the link brought up, for the source filter asked again once
    /// `up` succeeded.
    link_up: Option<ppp::link::LinkUp>,
}

impl Hooked {
    /// A session of `owner`'s role around `link`.
    pub fn new(owner: Owner, link: Link, info: SessionInfo) -> Hooked {
        let core = SessionCore::new(link, info, owner.role(), Instant::now());
        let (tx, rx) = crate::queue(usize::MAX);
        Hooked {
            core,
            owner,
            tx,
            answers: Answers(rx),
            outbound: None,
            source: None,
            live: None,
            reported: SessionStats::default(),
            batch: Vec::new(),
            link_up: None,
        }
    }

    /// Names the carrier in the "PPP link up" line (" on the serial line").
    pub fn with_carrier_name(mut self, words: &'static str) -> Hooked {
        self.core = self.core.with_carrier_name(words);
        self
    }

    /// The next event of the core, after asking the owner whatever the
    /// core asks and doing what every driver does with an event (the
    /// owner's live view when the network starts, the server's own
    /// link-local answers at link-up, no more traffic once down).
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.ask_owner();
        let event = self.core.poll_event()?;
        match (&event, &self.owner) {
            (SessionEvent::NetworkStarted, Owner::Server(h)) => {
                self.live = h.live(self.core.info())
            }
            (SessionEvent::Up(up), Owner::Server(h)) => {
                let responder = h.link_responder(self.core.info(), up);
                self.core.set_link_responder(responder);
                // The peer's own addresses at once; the networks routed to
                // it once `up` has claimed them (`apply`).
                let filter = h.source_filter(self.core.info(), up);
                self.core.set_source_filter(filter);
                self.link_up = Some(up.clone());
            }
            (SessionEvent::Down, _) => {
                self.outbound = None;
                self.source = None;
            }
            _ => {}
        }
        self.ask_owner();
        Some(event)
    }

    /// Starts a task for each question of the core; `Down` is told at once.
    fn ask_owner(&mut self) {
        while let Some(request) = self.core.poll_hook_request() {
            let info = self.core.info().clone();
            match (request, &self.owner) {
                (HookRequest::Authenticate(request), Owner::Server(h)) => {
                    let fut = h.authenticate(&info, request);
                    self.spawn(async move { Answered::Auth(fut.await) });
                }
                (HookRequest::Network, Owner::Server(h)) => {
                    let fut = h.network(&info);
                    self.spawn(async move { Answered::Network(fut.await) });
                }
                (HookRequest::Up(up), Owner::Server(h)) => {
                    let fut = h.up(&info, &up);
                    self.spawn(async move { Answered::Up(fut.await) });
                }
                (HookRequest::Up(up), Owner::Client(h)) => {
                    let fut = h.up(&info, &up);
                    self.spawn(async move { Answered::Up(fut.await) });
                }
                (HookRequest::Down(reason), Owner::Server(h)) => h.down(&info, &reason),
                // The core asks a client's owner only Up (Role::Client).
                (_, Owner::Client(_)) => {
                    tracing::debug!(
                        session = info.id,
                        "a client session asked a server question"
                    )
                }
            }
        }
    }

    fn spawn<F>(&self, answer: F)
    where
        F: std::future::Future<Output = Answered> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.try_send(Box::new(answer.await));
        });
    }

    /// Gives an answer to the core; keeps the queue an accepted link-up
    /// answer carries.
    pub fn apply(&mut self, answered: Answered) {
        let now = Instant::now();
        let id = self.core.info().id;
        let outcome = match answered {
            Answered::Auth(a) => self.core.handle_hook_answer(now, HookAnswer::Auth(a)),
            Answered::Network(n) => self.core.handle_hook_answer(now, HookAnswer::Network(n)),
            Answered::Up(Ok(rx)) => {
                let r = self.core.handle_hook_answer(now, HookAnswer::Up(Ok(())));
                if r.is_ok() {
                    self.outbound = Some(rx);
                    match &self.owner {
                        Owner::Client(h) => self.source = h.packet_source(self.core.info()),
                        Owner::Server(h) => {
                            if let Some(up) = &self.link_up {
                                let filter = h.source_filter(self.core.info(), up);
                                self.core.set_source_filter(filter);
                            }
                        }
                    }
                }
                r
            }
            Answered::Up(Err(why)) => self.core.handle_hook_answer(now, HookAnswer::Up(Err(why))),
        };
        if let Err(e) = outcome {
            tracing::debug!(session = id, "hook answer dropped: {e}");
        }
    }

    /// `first` (just received from `outbound`) and what else the queue
    /// holds now, up to `max` packets in all: one wake-up sends a batch.
    /// Hand the batch back with [`Hooked::recycle_batch`] so the next one
    /// reuses its memory.
    pub fn take_outbound(&mut self, first: Bytes, max: usize) -> Vec<Bytes> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.push(first);
        if let Some(rx) = self.outbound.as_mut() {
            // One lock for the whole batch.
            rx.take_waiting(&mut batch, max.saturating_sub(1));
        }
        batch
    }

    /// After a quiet spell: the outbound batch and the queue give their
    /// memory back (an idle session holds neither, issue 18).
    pub fn release_idle(&mut self) {
        self.batch = Vec::new();
        if let Some(rx) = self.outbound.as_mut() {
            rx.release_idle();
        }
        self.answers.0.release_idle();
    }

    /// Gives back a batch from [`Hooked::take_outbound`].
    pub fn recycle_batch(&mut self, mut batch: Vec<Bytes>) {
        batch.clear();
        self.batch = batch;
    }

    /// Puts back the source a session took out to read (so that its
    /// closure could borrow the session), unless the read failed (the
    /// device is gone: said once) or the link went down meanwhile (it
    /// dropped the source).
    pub fn return_source(&mut self, source: Box<dyn PacketSource>, read: std::io::Result<()>) {
        match read {
            Err(e) => self.source_failed(e),
            Ok(()) if !self.core.is_down() => self.source = Some(source),
            Ok(()) => {}
        }
    }

    /// The source failed to read: the session stops reading it.
    pub fn source_failed(&mut self, e: std::io::Error) {
        tracing::warn!(
            session = self.core.info().id,
            "reading packets to send: {e}"
        );
        self.source = None;
    }

    /// Tells the owner's live view what `stats` added since the last time.
    pub fn report(&mut self, stats: &SessionStats) {
        if let Some(live) = &self.live {
            live.add(&mut self.reported, stats);
        }
    }

    /// Why the session ends when its driver is told to shut down: the
    /// server stopping, or the dialer's user hanging up.
    pub fn shutdown_reason(&self) -> EndReason {
        match self.core.role() {
            Role::Server => EndReason::ServerStopping,
            Role::Client => EndReason::LocalRequest,
        }
    }

    /// The reason the owner gave with its stop request.
    pub fn stop_reason(&self) -> EndReason {
        self.live
            .as_ref()
            .and_then(|l| l.stop_reason())
            .unwrap_or(EndReason::LocalRequest)
    }

    /// The session is over: the reason, with `Down` told to the owner
    /// (once, if it was owed).
    pub fn finish(&mut self, stats: &SessionStats) -> EndReason {
        self.report(stats);
        let reason = self.core.finish();
        self.ask_owner();
        reason
    }
}

/// The receiving end of the hook tasks' answers.
pub(crate) struct Answers(crate::QueueReceiver<Box<Answered>>);

impl Answers {
    /// The next answer of a hook task.
    pub async fn next(&mut self) -> Answered {
        // The sender lives in the same `Hooked`: the channel never closes
        // while anyone waits here.
        match self.0.recv().await {
            Some(a) => *a,
            None => std::future::pending().await,
        }
    }
}

/// Resolves when the owner asks `live` to stop (never without a view).
pub(crate) async fn stop_requested(live: Option<Arc<LiveSession>>) {
    match live {
        Some(l) => l.stopped().await,
        None => std::future::pending().await,
    }
}

/// The next packet of an optional queue (never, without one).
pub(crate) async fn recv(rx: &mut Option<crate::PacketReceiver>) -> Option<Bytes> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
