//! The session core: one PPP [`Link`] and the questions it asks its owner,
//! without I/O. Every tunnel driver (SSTP, PPTP, a serial line; either
//! role) feeds it frames, timer ticks and hook answers and carries out
//! what it asks, as quinn's driver does with quinn-proto's `Connection`:
//!
//! ```text
//! transport ─frames─▶ handle_frame ──▶ IP packets for the network
//! network  ─packets─▶ send_ip ───────▶ frames for the transport
//!                     poll_transmit ─▶ control frames for the transport
//!                     poll_hook_request ─▶ authenticate / network / up / down
//! owner ─────────────▶ handle_hook_answer
//!                     poll_event ────▶ Authenticated, NetworkStarted, Up, Down
//! ```
//!
//! The order of a server session is fixed here, once for every tunnel:
//! the peer's credentials go to the owner (`Authenticate`), an
//! authenticated peer gets its network settings from the owner
//! (`Network`), a link that came up is registered (`Up`), and a session
//! that got as far as `Network` is always reported ended (`Down`, once,
//! with a typed [`EndReason`]). Answers arrive from other tasks, so they
//! may come late, twice, or after the link went down: each is applied at
//! most once, and only while it still means something.

use std::collections::VecDeque;
use std::time::Instant;

use ppp::crypto::mppe_keys::MasterKeys;
use ppp::link::{Inbound, Link, LinkEvent, LinkUp, SendError};

use crate::auth_watch::{Attempt, AuthWatch};
use crate::local_answer::LocalAnswer;
use crate::questions::{AuthAnswer, HookAnswer, HookRequest, IgnoredAnswer, SessionInfo};
use crate::source_filter::SourceFilter;
use crate::{login_log, EndReason, LostCarrier};

/// Which end of the link this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The server: authenticates the peer and assigns its network.
    Server,
    /// The client (a dialer): is authenticated, takes what it is given.
    Client,
}

/// What happened that the driver acts on itself.
#[derive(Debug)]
pub enum SessionEvent {
    /// Authentication is complete (either role): a tunnel that binds its
    /// own crypto to PPP's keys (MS-SSTP §3.2.5.2) takes
    /// [`SessionCore::master_keys`] now.
    Authenticated,
    /// Server role: the owner accepted the network settings and the
    /// network phase started (the owner may now watch the session).
    NetworkStarted,
    /// The link is up (the owner is asked [`HookRequest::Up`] as well):
    /// the server's own end of the link may now answer for itself (see
    /// [`SessionCore::set_link_responder`]).
    Up(LinkUp),
    /// The link is down: the tunnel closes, and nothing more is sent.
    Down,
}

/// Where an asked question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    No,
    Waiting,
    Answered,
}

/// One session's PPP link and hook protocol. See the module documentation.
pub struct SessionCore {
    link: Link,
    role: Role,
    info: SessionInfo,
    /// Words after "PPP link up" naming the carrier (" on the serial line").
    carrier: &'static str,
    /// The latest time any input carried: what the core's own reactions
    /// (closing the link, declining a retry) are stamped with.
    now: Instant,
    reason: Option<EndReason>,
    /// Client role: the server refused our password. The reason to
    /// report if the link never came up, whatever the hang-up looked like.
    auth_failure: Option<EndReason>,
    watch: AuthWatch,
    auth: Option<Attempt>,
    /// Server role: the owner was asked something, so it may hold
    /// something for the session (a record, an address) and is owed
    /// [`HookRequest::Down`].
    owes_down: bool,
    network: Asked,
    up: Asked,
    was_up: bool,
    down: bool,
    down_asked: bool,
    finished: bool,
    requests: VecDeque<HookRequest>,
    events: VecDeque<SessionEvent>,
    local: Option<LocalAnswer>,
    /// Server role: the sources the peer may send from (None: no check,
    /// the client role and owners that set none).
    source: Option<SourceFilter>,
    /// Packets dropped by `source`.
    spoofed: u64,
}

impl SessionCore {
    /// A session around `link` (not started: the driver calls
    /// [`lower_up`](Self::lower_up) when its transport is ready).
    pub fn new(link: Link, info: SessionInfo, role: Role, now: Instant) -> SessionCore {
        SessionCore {
            link,
            role,
            info,
            carrier: "",
            now,
            reason: None,
            auth_failure: None,
            watch: AuthWatch::default(),
            auth: None,
            owes_down: false,
            network: Asked::No,
            up: Asked::No,
            was_up: false,
            down: false,
            down_asked: false,
            finished: false,
            requests: VecDeque::new(),
            events: VecDeque::new(),
            local: None,
            source: None,
            spoofed: 0,
        }
    }

    /// Names the carrier in the "PPP link up" line (" on the serial line").
    pub fn with_carrier_name(mut self, words: &'static str) -> SessionCore {
        self.carrier = words;
        self
    }

    // ----- getters -----

    /// Facts for logs and hooks (the user once authenticated).
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The PPP link, to read its state.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The keys MS-CHAP derived, once authenticated (for SSTP's crypto
    /// binding and MPPE).
    pub fn master_keys(&self) -> Option<&MasterKeys> {
        self.link.master_keys()
    }

    /// The link came up at some point.
    pub fn was_up(&self) -> bool {
        self.was_up
    }

    /// The link went down: nothing more will be carried.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Why the session is ending, once known.
    pub fn end_reason(&self) -> Option<&EndReason> {
        self.reason.as_ref()
    }

    /// The earliest deadline of the link's timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }

    // ----- input -----

    /// The transport is ready to carry PPP (RFC 1661 §4.1 Up event).
    pub fn lower_up(&mut self, now: Instant) {
        self.now = now;
        self.link.lower_up(now);
    }

    /// The transport is gone (RFC 1661 §4.1 Down event). `cause` is what
    /// the tunnel saw (`None`: the connection just closed). A peer that
    /// sent an LCP Terminate-Request first hung up on purpose, whatever
    /// the transport did next (RFC 2866 §5.10 User-Request).
    pub fn lower_down(&mut self, now: Instant, cause: Option<EndReason>) {
        self.now = now;
        let why = match (self.link.peer_terminating(), cause) {
            (Some(text), _) => EndReason::PeerRequest(text.to_owned()),
            (None, Some(cause)) => cause,
            (None, None) => EndReason::LostCarrier(LostCarrier::TransportClosed),
        };
        self.reason.get_or_insert(why);
        self.link.lower_down(now);
    }

    /// The tunnel ended the session for `cause` before PPP noticed
    /// anything (an SSTP Call Abort, a cleared PPTP call): the first
    /// reason recorded is the one reported.
    pub fn record_reason(&mut self, cause: EndReason) {
        self.reason.get_or_insert(cause);
    }

    /// One PPP frame from the transport, decrypted in place. IP packets
    /// for the server's own link-local address are answered here (see
    /// [`set_link_responder`](Self::set_link_responder)), not returned.
    pub fn handle_frame<'a>(&mut self, now: Instant, frame: &'a mut [u8]) -> Inbound<'a> {
        self.now = now;
        match self.link.handle_frame(now, frame) {
            Inbound::Ipv4(p) if self.answered_locally(now, p) => Inbound::Nothing,
            Inbound::Ipv6(p) if self.answered_locally(now, p) => Inbound::Nothing,
            Inbound::Ipv4(p) | Inbound::Ipv6(p) if !self.source_allowed(p) => Inbound::Nothing,
            other => other,
        }
    }

    /// The source check (source_filter.rs); the first refusal of a
    /// session is logged, the rest only counted.
    fn source_allowed(&mut self, packet: &[u8]) -> bool {
        let Some(filter) = &self.source else {
            return true;
        };
        if filter.allows(packet) {
            return true;
        }
        self.spoofed += 1;
        if self.spoofed == 1 {
            let source = crate::source_filter::describe_source(packet);
            tracing::warn!(
                session_id = self.info.id,
                "dropped a packet from {source}: neither the client's address nor a network routed to it (further ones are only counted, the total at the end)"
            );
        }
        false
    }

    /// Packets from the peer dropped because of their source.
    pub fn spoofed(&self) -> u64 {
        self.spoofed
    }

    fn answered_locally(&mut self, now: Instant, packet: &[u8]) -> bool {
        self.local
            .as_mut()
            .is_some_and(|l| l.intercept(now, packet))
    }

    /// The link's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
    }

    /// The owner's answer to a question from
    /// [`poll_hook_request`](Self::poll_hook_request). An answer nobody
    /// waits for (late, repeated, after the end) is not applied.
    pub fn handle_hook_answer(
        &mut self,
        now: Instant,
        answer: HookAnswer,
    ) -> Result<(), IgnoredAnswer> {
        self.now = now;
        // A link that went down since the last look takes no answers.
        self.pump();
        match answer {
            HookAnswer::Auth(answer) => {
                let Some(attempt) = self.auth.take() else {
                    return Err(IgnoredAnswer::NotAsked("authentication"));
                };
                if self.down {
                    return Err(IgnoredAnswer::SessionEnded("authentication"));
                }
                self.apply_auth(now, answer, attempt);
            }
            HookAnswer::Network(settings) => {
                if self.network != Asked::Waiting {
                    return Err(IgnoredAnswer::NotAsked("network"));
                }
                self.network = Asked::Answered;
                if self.down {
                    return Err(IgnoredAnswer::SessionEnded("network"));
                }
                match settings {
                    Ok(settings) => {
                        self.events.push_back(SessionEvent::NetworkStarted);
                        self.link.start_network(now, settings);
                    }
                    Err(why) => {
                        // The owner logged the refusal with the user and why.
                        tracing::debug!(session = self.info.id, "network refused: {why}");
                        self.link.close(now, &why);
                        self.reason
                            .get_or_insert(EndReason::ServiceUnavailable(why));
                    }
                }
            }
            HookAnswer::Up(result) => {
                if self.up != Asked::Waiting {
                    return Err(IgnoredAnswer::NotAsked("link-up"));
                }
                self.up = Asked::Answered;
                if self.down {
                    return Err(IgnoredAnswer::SessionEnded("link-up"));
                }
                if let Err(why) = result {
                    self.link.close(now, &why);
                    self.reason.get_or_insert(match self.role {
                        Role::Server => EndReason::ServiceUnavailable(why),
                        Role::Client => EndReason::Internal(why),
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_auth(&mut self, now: Instant, answer: AuthAnswer, attempt: Attempt) {
        match answer {
            AuthAnswer::Secret(secret) => {
                self.link.provide_secret(now, secret);
                self.watch.secret_given(self.info.id, &self.link, attempt);
            }
            // The owner logged why (account disabled, policy, unknown
            // user); the link checks the password first, so the peer
            // learns the refusal only if it knew the password.
            AuthAnswer::SecretThenReject(secret, rejection, message) => self
                .link
                .provide_secret_then_reject(now, secret, rejection, &message),
            // The owner logged why (unknown user, policy, RADIUS…).
            AuthAnswer::Reject(rejection, message) => {
                self.link.reject_auth(now, rejection, &message)
            }
            AuthAnswer::Accept(accept) => self.link.accept_external(now, accept),
            AuthAnswer::EapChallenge(message) => self.link.eap_challenge(now, message),
        }
    }

    /// The server's own end of the link answers for itself from now on
    /// (ICMPv6 echo and Neighbor Discovery on its link-local address, see
    /// the `icmpv6` crate). `None`: every packet goes to the network.
    pub fn set_link_responder(&mut self, responder: Option<icmpv6::Responder>) {
        self.local = responder.map(LocalAnswer::new);
    }

    /// Server role: from now on, IP packets from the peer whose source
    /// `filter` does not allow are dropped (anti-spoofing, RFC 2827).
    pub fn set_source_filter(&mut self, filter: Option<SourceFilter>) {
        self.source = filter;
    }

    // ----- commands -----

    /// Frames one IP packet for the peer into `out` (appended; encrypted
    /// when MPPE is on).
    pub fn send_ip(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SendError> {
        self.link.send_ip(packet, out)
    }

    /// Ends the session for `why` (an administrator, a policy timeout,
    /// the server stopping): the link says goodbye with LCP
    /// Terminate-Request (RFC 1661 §3.7) and `why` is the reason reported.
    pub fn close(&mut self, now: Instant, why: EndReason) {
        self.now = now;
        self.link.close(now, &why.to_string());
        self.reason.get_or_insert(why);
    }

    /// The driver is done with the session: the reason it ended (a
    /// connection that just went away if nothing better is known). Queues
    /// the one [`HookRequest::Down`] of a server session that asked its
    /// owner anything. Calling it again changes nothing.
    pub fn finish(&mut self) -> EndReason {
        self.pump();
        if !self.finished {
            self.finished = true;
            let reason = match self.auth_failure.take() {
                Some(auth) if !self.was_up => auth,
                _ => self
                    .reason
                    .take()
                    .unwrap_or(EndReason::LostCarrier(LostCarrier::TransportClosed)),
            };
            self.reason = Some(reason);
            self.down = true;
            if self.owes_down && !self.down_asked {
                self.down_asked = true;
                self.requests
                    .push_back(HookRequest::Down(self.reason.clone().expect("set above")));
            }
        }
        self.reason.clone().expect("set when finished")
    }

    // ----- output -----

    /// The next PPP control frame (LCP, authentication, NCPs) for the
    /// transport.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }

    /// The next reply of the server's own end of the link, to send to
    /// the peer with [`send_ip`](Self::send_ip).
    pub fn poll_local_reply(&mut self) -> Option<Vec<u8>> {
        self.local.as_mut()?.pop_reply()
    }

    /// The next question for the owner.
    pub fn poll_hook_request(&mut self) -> Option<HookRequest> {
        self.pump();
        self.requests.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.pump();
        self.events.pop_front()
    }

    /// Turns the link's events into questions and events, in order.
    fn pump(&mut self) {
        while let Some(event) = self.link.poll_event() {
            self.on_link_event(event);
        }
    }

    fn on_link_event(&mut self, event: LinkEvent) {
        let id = self.info.id;
        let now = self.now;
        self.watch.link_event(id, &event);
        match event {
            LinkEvent::AuthRequest(request) => match self.role {
                Role::Server => {
                    // Quoted: the name is the peer's, and must not forge lines.
                    tracing::debug!(
                        session = id,
                        "checking credentials: user {}, {}",
                        login_log::Quoted(&request.username),
                        login_log::method_name(request.method)
                    );
                    self.auth = Some(Attempt {
                        user: request.username.clone(),
                        method: request.method,
                    });
                    self.owes_down = true;
                    self.requests.push_back(HookRequest::Authenticate(request));
                }
                // A dialer never asks the server to authenticate itself.
                Role::Client => self.link.close(now, "unexpected authentication request"),
            },
            LinkEvent::Authenticated { username, protocol } => {
                tracing::info!(
                    session = id,
                    "authenticated: user {}, {}",
                    login_log::Quoted(&username),
                    login_log::protocol_name(protocol)
                );
                self.info.user = Some(username);
                self.events.push_back(SessionEvent::Authenticated);
                if self.role == Role::Server && self.network == Asked::No {
                    self.network = Asked::Waiting;
                    self.owes_down = true;
                    self.requests.push_back(HookRequest::Network);
                }
            }
            LinkEvent::Up(up) => {
                self.was_up = true;
                tracing::info!(
                    session = id,
                    "PPP link up{}: {}",
                    self.carrier,
                    crate::link_up_text(&up, self.role == Role::Server)
                );
                self.up = Asked::Waiting;
                self.events.push_back(SessionEvent::Up(up.clone()));
                self.requests.push_back(HookRequest::Up(up));
            }
            LinkEvent::Down(reason) => {
                if self.was_up || self.role == Role::Client {
                    if self.spoofed > 0 {
                        // Only the first was logged (source_allowed): the
                        // total is told once, here.
                        tracing::info!(
                            session = id,
                            "PPP link down: {reason}; {} packet(s) dropped by the source check",
                            self.spoofed
                        );
                    } else {
                        tracing::info!(session = id, "PPP link down: {reason}");
                    }
                } else {
                    // A server link that never came up is a failed
                    // connection: the listener's failure log reports it
                    // at a bounded rate (server/src/failure_log.rs). A
                    // line here too would be one per item of a flood of
                    // garbage connections (issue 18's torture run).
                    tracing::debug!(session = id, "PPP link down: {reason}");
                }
                self.reason.get_or_insert_with(|| {
                    EndReason::from_link_down(&reason)
                        .unwrap_or_else(|| EndReason::Internal(reason.to_string()))
                });
                self.down = true;
                self.local = None;
                self.events.push_back(SessionEvent::Down);
            }
            LinkEvent::AuthRetryAllowed(f) => match self.role {
                Role::Server => tracing::info!(
                    session = id,
                    "client refused the password ({}), retry allowed",
                    f.rejection.code()
                ),
                Role::Client => {
                    tracing::info!(
                        session = id,
                        "server refused the password ({}), retry allowed",
                        f.rejection.code()
                    );
                    self.auth_failure = Some(EndReason::AuthFailed(format!(
                        "authentication failed (error {}): {}",
                        f.rejection.code(),
                        f.message
                    )));
                    // A tunnel client has no one to ask for another
                    // password: fail now with the server's code.
                    self.link.decline_auth_retry(now);
                }
            },
            LinkEvent::PeerIdentification(text) => {
                tracing::debug!(
                    session = id,
                    "peer identifies as {}",
                    login_log::Quoted(&text)
                )
            }
            LinkEvent::TimeRemaining(s) => tracing::info!(session = id, "session ends in {s} s"),
        }
    }
}
