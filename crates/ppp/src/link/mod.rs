//! One PPP link: the phases of RFC 1661 §3 driving LCP, authentication,
//! callback control, the network control protocols and MPPE.
//!
//! The Link is sans-IO like everything in this crate. A transport (SSTP,
//! PPTP/GRE, L2TP, a serial line) hands it every received PPP frame with
//! [`Link::handle_frame`], sends what [`Link::poll_transmit`] gives, arms
//! one timer from [`Link::poll_timeout`], and reacts to [`Link::poll_event`].
//! IP packets go out through [`Link::send_ip`], which encrypts them when
//! MPPE is on.

mod data;
mod types;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::auth::{
    AuthEvent, AuthProtocol, Authenticator, ExternalAccept, Peer, Rejection, Secret,
};
use crate::cbcp::{CallbackDecision, CbcpClient, CbcpEvent, CbcpServer};
use crate::ccp::{Ccp, CcpConfig};
use crate::crypto::mppe_keys::MasterKeys;
use crate::frame::{protocol, FrameOptions};
use crate::fsm::{FinishReason, Fsm, FsmEvent};
use crate::ipcp::{Ipcp, IpcpConfig};
use crate::ipv6cp::{Ipv6cp, Ipv6cpConfig};
use crate::lcp::{Lcp, LcpEvent};
use crate::link_rng::LinkRng;
use crate::mppe::{MppeDecryptor, MppeEncryptor};
use crate::packet::code;

pub use data::{Inbound, SendError};
pub use types::*;

/// Most NCP packets we hold while the server decides the session's
/// addresses (one per protocol, the latest wins).
const MAX_HELD_NCP: usize = 3;

/// Traffic and drop counters of one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Frames that could not be decoded.
    pub malformed: u64,
    /// Data frames that arrived before the link was up, unencrypted while
    /// MPPE was on, or for a protocol not negotiated.
    pub dropped: u64,
    /// MPPE packets that failed to decrypt (lost coherency, replays).
    pub decrypt_errors: u64,
}

/// A PPP link in one role.
pub struct Link {
    /// Shared: a server's sessions all start from the same settings, and
    /// a copy each would be 480 bytes per session (issue 18).
    config: Arc<LinkConfig>,
    rng: LinkRng,
    phase: Phase,
    lcp: Fsm<Lcp>,
    authenticator: Option<Authenticator>,
    auth_peer: Option<Peer>,
    auth_deadline: Option<Instant>,
    authenticated_as: Option<String>,
    auth_protocol: Option<AuthProtocol>,
    master_keys: Option<MasterKeys>,
    // What few links use lives on the heap only while used: an idle
    // SSTP session has no callback, no MPPE and often no IPv6CP.
    cbcp_server: Option<Box<CbcpServer>>,
    cbcp_client: Option<Box<CbcpClient>>,
    callback_done: bool,
    /// Server: `start_network` was called (client: implicit).
    network_allowed: bool,
    network_started: bool,
    network_override: NetworkSettings,
    held_ncp: Vec<(u16, Vec<u8>)>,
    ipcp: Option<Fsm<Ipcp>>,
    ipv6cp: Option<Box<Fsm<Ipv6cp<LinkRng>>>>,
    ccp: Option<Box<Fsm<Ccp>>>,
    ccp_required: bool,
    encryptor: Option<Box<MppeEncryptor>>,
    decryptor: Option<Box<MppeDecryptor>>,
    last_reset_request: Option<Instant>,
    echo_deadline: Option<Instant>,
    echo_outstanding: u32,
    up: bool,
    down: bool,
    closing_reason: Option<DownReason>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("role", &self.config.role)
            .field("phase", &self.phase)
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub fn new(config: impl Into<Arc<LinkConfig>>) -> Self {
        let config = config.into();
        let mut rng = LinkRng::new(config.rng_seed);
        let lcp_rng = Box::new(rng.fork());
        let lcp = Fsm::new(Lcp::new(config.lcp.clone(), lcp_rng), config.fsm);
        Link {
            rng,
            phase: Phase::Dead,
            lcp,
            authenticator: None,
            auth_peer: None,
            auth_deadline: None,
            authenticated_as: None,
            auth_protocol: None,
            master_keys: None,
            cbcp_server: None,
            cbcp_client: None,
            callback_done: false,
            network_allowed: config.role == Role::Client,
            network_started: false,
            network_override: NetworkSettings::default(),
            held_ncp: Vec::new(),
            ipcp: None,
            ipv6cp: None,
            ccp: None,
            ccp_required: false,
            encryptor: None,
            decryptor: None,
            last_reset_request: None,
            echo_deadline: None,
            echo_outstanding: 0,
            up: false,
            down: false,
            closing_reason: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
            config,
        }
    }

    // ---- getters ----

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn role(&self) -> Role {
        self.config.role
    }

    /// True between [`LinkEvent::Up`] and [`LinkEvent::Down`].
    pub fn is_up(&self) -> bool {
        self.up && !self.down
    }

    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The MS-CHAPv2 master keys of a completed authentication, in this
    /// side's view (what SSTP crypto binding needs, MS-SSTP §3.2.5.2).
    pub fn master_keys(&self) -> Option<&MasterKeys> {
        self.master_keys.as_ref()
    }

    /// The authenticated identity, once authentication succeeded.
    pub fn authenticated_user(&self) -> Option<&str> {
        self.authenticated_as.as_deref()
    }

    /// LCP's negotiated values (MRU, ACCM, magic numbers …).
    pub fn lcp(&self) -> &crate::lcp::LcpNegotiated {
        self.lcp.negotiator().negotiated()
    }

    /// The header layout our frames use (ACFC/PFC as the peer allowed).
    pub fn frame_options(&self) -> FrameOptions {
        let n = self.lcp.negotiator().negotiated();
        if self.lcp.is_opened() {
            FrameOptions {
                address_control: !n.tx_acfc,
                compress_protocol: n.tx_pfc,
            }
        } else {
            FrameOptions::FULL
        }
    }

    // ---- commands ----

    /// The transport is connected: start LCP (RFC 1661 §3.2 Up + Open).
    pub fn lower_up(&mut self, now: Instant) {
        if self.down {
            return;
        }
        self.phase = Phase::Establish;
        self.lcp.open(now);
        self.lcp.lower_up(now);
        self.drive(now);
    }

    /// The transport is gone: the link is down at once.
    pub fn lower_down(&mut self, now: Instant) {
        // A peer that sent Terminate-Request and then hung up ended the
        // link itself (User-Request in accounting, not Lost-Carrier).
        let why = match self.lcp.peer_terminating() {
            Some(text) => DownReason::PeerTerminated(text.to_owned()),
            None => DownReason::LowerLayerDown,
        };
        self.lcp.lower_down();
        self.go_down(why);
        self.drive(now);
    }

    /// The peer's Terminate-Request text, if the peer is ending the link
    /// (LCP waits out its restart period before the link goes down).
    pub fn peer_terminating(&self) -> Option<&str> {
        self.lcp.peer_terminating()
    }

    /// Close the link gracefully (LCP Terminate-Request with `reason`).
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.begin_close(now, DownReason::Closed(reason.to_owned()), reason);
        self.drive(now);
    }

    /// Server: the answer to an [`LinkEvent::AuthRequest`] from the local
    /// user store: the authenticator verifies the credentials itself.
    pub fn provide_secret(&mut self, now: Instant, secret: Secret) {
        if let Some(a) = &mut self.authenticator {
            a.provide_secret(now, secret);
        }
        self.drive(now);
    }

    /// Server: the answer for a user the local store refuses whatever the
    /// password (disabled, no dial-in permission) or does not know (with
    /// a stand-in secret): verify first, then fail with 691 if the
    /// credentials are wrong and with `rejection` if they are right (see
    /// [`crate::auth::Authenticator::provide_secret_then_reject`]).
    pub fn provide_secret_then_reject(
        &mut self,
        now: Instant,
        secret: Secret,
        rejection: Rejection,
        message: &str,
    ) {
        if let Some(a) = &mut self.authenticator {
            a.provide_secret_then_reject(now, secret, rejection, message);
        }
        self.drive(now);
    }

    /// Server: refuse the credentials (MS-CHAP error code in `rejection`).
    pub fn reject_auth(&mut self, now: Instant, rejection: Rejection, message: &str) {
        if let Some(a) = &mut self.authenticator {
            a.reject(now, rejection, message);
        }
        self.drive(now);
    }

    /// Server: an outside server (RADIUS) accepted the credentials.
    pub fn accept_external(&mut self, now: Instant, accept: ExternalAccept) {
        if let Some(a) = &mut self.authenticator {
            a.accept_external(now, accept);
        }
        self.drive(now);
    }

    /// Server, EAP pass-through: send this EAP Request (from a RADIUS
    /// Access-Challenge) to the peer.
    pub fn eap_challenge(&mut self, now: Instant, eap_message: Vec<u8>) {
        if let Some(a) = &mut self.authenticator {
            a.eap_challenge(now, eap_message);
        }
        self.drive(now);
    }

    /// Client: try again with another password after
    /// [`LinkEvent::AuthRetryAllowed`].
    pub fn retry_auth(&mut self, now: Instant, password: &str) {
        if let Some(p) = &mut self.auth_peer {
            p.retry(now, Zeroizing::new(password.to_owned()));
        }
        self.drive(now);
    }

    /// Client: do not retry after [`LinkEvent::AuthRetryAllowed`]; the
    /// authentication fails now (with the server's error code) instead of
    /// when the server's retry timer runs out.
    pub fn decline_auth_retry(&mut self, now: Instant) {
        if let Some(p) = &mut self.auth_peer {
            p.decline_retry(now);
        }
        self.drive(now);
    }

    /// Server: the session's addresses and policy are decided; run the
    /// network control protocols. Settings given here replace the
    /// configured ones.
    pub fn start_network(&mut self, now: Instant, settings: NetworkSettings) {
        self.network_override = settings;
        self.network_allowed = true;
        self.maybe_start_network(now);
        self.drive(now);
    }

    /// Send an LCP Time-Remaining packet (RFC 1570 §2.2).
    pub fn send_time_remaining(&mut self, now: Instant, seconds: u32, message: &str) {
        if self.lcp.is_opened() {
            let data = self.lcp.negotiator().time_remaining_data(seconds, message);
            self.lcp.send_extra(code::TIME_REMAINING, &data);
            self.drive(now);
        }
    }

    // ---- input ----

    /// A timer may have expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.lcp.handle_timeout(now);
        if let Some(a) = &mut self.authenticator {
            a.handle_timeout(now);
        }
        if let Some(p) = &mut self.auth_peer {
            p.handle_timeout(now);
        }
        if let Some(c) = &mut self.cbcp_server {
            c.handle_timeout(now);
        }
        if let Some(c) = &mut self.cbcp_client {
            c.handle_timeout(now);
        }
        if let Some(f) = &mut self.ipcp {
            f.handle_timeout(now);
        }
        if let Some(f) = &mut self.ipv6cp {
            f.handle_timeout(now);
        }
        if let Some(f) = &mut self.ccp {
            f.handle_timeout(now);
        }
        if self.auth_deadline.is_some_and(|d| now >= d) {
            self.auth_deadline = None;
            self.begin_close(now, DownReason::AuthTimeout, "authentication timed out");
        }
        if self.echo_deadline.is_some_and(|d| now >= d) {
            self.on_echo_timer(now);
        }
        self.drive(now);
    }

    // ---- output ----

    /// The next control frame to send (a complete PPP frame).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.transmit.pop_front()?;
        self.stats.frames_out += 1;
        self.stats.bytes_out += frame.len() as u64;
        Some(frame)
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// The earliest time [`Link::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.poll_timeout(),
            self.authenticator.as_ref().and_then(|a| a.poll_timeout()),
            self.auth_peer.as_ref().and_then(|p| p.poll_timeout()),
            self.cbcp_server.as_ref().and_then(|c| c.poll_timeout()),
            self.cbcp_client.as_ref().and_then(|c| c.poll_timeout()),
            self.ipcp.as_ref().and_then(|f| f.poll_timeout()),
            self.ipv6cp.as_ref().and_then(|f| f.poll_timeout()),
            self.ccp.as_ref().and_then(|f| f.poll_timeout()),
            self.auth_deadline,
            self.echo_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals: control packets ----

    fn queue_control(&mut self, proto: u16, packet: &[u8]) {
        let mut frame = Vec::with_capacity(crate::frame::MAX_HEADER_LEN + packet.len());
        crate::frame::encode(proto, packet, self.frame_options(), &mut frame);
        self.transmit.push_back(frame);
    }

    /// Dispatch a control packet by protocol. Returns false when the
    /// protocol is not one we run (the caller Protocol-Rejects it).
    fn handle_control(&mut self, now: Instant, proto: u16, payload: &[u8]) -> bool {
        match proto {
            protocol::LCP => {
                if let Err(e) = self.lcp.handle_packet(now, payload) {
                    tracing::debug!("dropped malformed LCP packet: {e}");
                    self.stats.malformed += 1;
                }
            }
            protocol::PAP | protocol::CHAP | protocol::EAP => {
                // RFC 1661 §3.5: authentication packets only after LCP.
                if !self.lcp.is_opened() {
                    return true;
                }
                let mut used = false;
                if let Some(a) = &mut self.authenticator {
                    if a.protocol().ppp_protocol() == proto {
                        a.handle_packet(now, payload);
                        used = true;
                    }
                }
                if let Some(p) = &mut self.auth_peer {
                    if p.protocol().ppp_protocol() == proto {
                        p.handle_packet(now, payload);
                        used = true;
                    }
                }
                if !used {
                    tracing::debug!(
                        "dropped {proto:#06x} packet for an authentication protocol not negotiated"
                    );
                }
            }
            protocol::CBCP => {
                let result = if let Some(c) = &mut self.cbcp_server {
                    c.handle_packet(now, payload)
                } else if let Some(c) = &mut self.cbcp_client {
                    c.handle_packet(now, payload)
                } else {
                    Ok(())
                };
                if let Err(e) = result {
                    tracing::debug!("dropped CBCP packet: {e}");
                    self.stats.malformed += 1;
                }
            }
            protocol::IPCP | protocol::IPV6CP | protocol::CCP => {
                let wanted = match proto {
                    protocol::IPCP => {
                        self.config.ipcp.is_some() || self.network_override.ipcp.is_some()
                    }
                    protocol::IPV6CP => {
                        self.config.ipv6cp.is_some() || self.network_override.ipv6cp.is_some()
                    }
                    _ => self.config.ccp.is_some() || self.network_override.ccp.is_some(),
                };
                if !wanted {
                    return false;
                }
                // RFC 3748 §4.2: an NCP packet from the authenticator is an
                // implicit EAP-Success (the real one may have been lost).
                if let Some(p) = &mut self.auth_peer {
                    if !p.is_finished() && p.protocol() == AuthProtocol::Eap {
                        p.lower_layer_success(now);
                    }
                }
                if !self.network_started {
                    // RFC 1661 §3.6: NCP packets before the network phase
                    // are discarded; we keep the latest of each so the peer
                    // need not wait a restart period for the server to
                    // finish choosing addresses.
                    if self.phase == Phase::Authenticate
                        || self.phase == Phase::Callback
                        || self.phase == Phase::Network
                    {
                        self.held_ncp.retain(|(p, _)| *p != proto);
                        if self.held_ncp.len() < MAX_HELD_NCP {
                            self.held_ncp.push((proto, payload.to_vec()));
                        }
                    }
                    return true;
                }
                let result = match proto {
                    protocol::IPCP => self.ipcp.as_mut().map(|f| f.handle_packet(now, payload)),
                    protocol::IPV6CP => self.ipv6cp.as_mut().map(|f| f.handle_packet(now, payload)),
                    _ => self.ccp.as_mut().map(|f| f.handle_packet(now, payload)),
                };
                match result {
                    Some(Err(e)) => {
                        tracing::debug!("dropped malformed {proto:#06x} packet: {e}");
                        self.stats.malformed += 1;
                    }
                    Some(Ok(())) => {}
                    None => return false,
                }
            }
            _ => return false,
        }
        true
    }

    /// RFC 1661 §5.7: tell the peer we do not speak `proto`.
    fn protocol_reject(&mut self, proto: u16, payload: &[u8]) {
        if !self.lcp.is_opened() {
            return;
        }
        let mut data = Vec::with_capacity(2 + payload.len().min(1400));
        data.extend_from_slice(&proto.to_be_bytes());
        data.extend_from_slice(&payload[..payload.len().min(1400)]);
        self.lcp.send_extra(code::PROTOCOL_REJECT, &data);
    }

    // ---- internals: the phase machine ----

    /// Move everything the sub-machines produced into our queues and react
    /// to their events until nothing changes. Bounded: each round consumes
    /// queued items, and the sub-machines produce only in response.
    fn drive(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut busy = false;
            while let Some(p) = self.lcp.poll_transmit() {
                self.queue_control(protocol::LCP, &p);
                busy = true;
            }
            while let Some(ev) = self.lcp.poll_event() {
                self.on_lcp_event(now, ev);
                busy = true;
            }
            while let Some(ev) = self.lcp.negotiator_mut().poll_event() {
                self.on_lcp_extra(now, ev);
                busy = true;
            }
            busy |= self.drive_auth(now);
            busy |= self.drive_cbcp(now);
            busy |= self.drive_ncps(now);
            if !busy {
                return;
            }
        }
        tracing::warn!("PPP link did not settle in 64 rounds");
    }

    fn on_lcp_event(&mut self, now: Instant, ev: FsmEvent) {
        match ev {
            FsmEvent::Up => self.on_lcp_up(now),
            FsmEvent::Down => {
                // Data stops at once, whatever comes next.
                self.up = false;
                self.encryptor = None;
                self.decryptor = None;
                let renegotiating = matches!(
                    self.lcp.state(),
                    crate::fsm::State::ReqSent
                        | crate::fsm::State::AckRcvd
                        | crate::fsm::State::AckSent
                );
                // LCP renegotiation would restart authentication and every
                // NCP; no real peer does it mid-session, so end the link.
                // (A Terminate-Request leads to Finished, handled below.)
                if renegotiating && !self.down && self.closing_reason.is_none() {
                    self.begin_close(
                        now,
                        DownReason::NegotiationFailed("LCP renegotiated".into()),
                        "LCP renegotiation not supported",
                    );
                }
            }
            FsmEvent::Started => {}
            FsmEvent::Finished(reason) => {
                let why = self.closing_reason.take().unwrap_or(match reason {
                    FinishReason::Closed => DownReason::Closed(String::new()),
                    FinishReason::PeerTerminated(text) => DownReason::PeerTerminated(text),
                    FinishReason::NoResponse => DownReason::NoResponse,
                    FinishReason::CodeRejected => {
                        DownReason::NegotiationFailed("peer rejected an essential LCP code".into())
                    }
                    FinishReason::NotConverging => {
                        DownReason::NegotiationFailed("LCP options did not converge".into())
                    }
                    FinishReason::LowerDown => DownReason::LowerLayerDown,
                });
                self.go_down(why);
            }
        }
    }

    fn on_lcp_up(&mut self, now: Instant) {
        let negotiated = self.lcp.negotiator().negotiated().clone();
        if let Some(message) = self.config.identification.clone() {
            let data = self.lcp.negotiator().identification_data(&message);
            self.lcp.send_extra(code::IDENTIFICATION, &data);
        }
        if let Some(echo) = self.config.echo {
            self.echo_deadline = Some(now + echo.interval);
        }
        if !self.config.lcp.require_auth.is_empty() && negotiated.auth_required.is_none() {
            self.begin_close(now, DownReason::AuthRefused, "authentication required");
            return;
        }
        self.phase = Phase::Authenticate;
        self.auth_deadline = Some(now + self.config.auth_timeout);
        if let Some(protocol) = negotiated.auth_required {
            let mut a =
                Authenticator::new(protocol, self.config.authenticator.clone(), &mut self.rng);
            a.start(now);
            self.authenticator = Some(a);
        }
        if let Some(protocol) = negotiated.auth_to_peer {
            let Some(credentials) = self.config.credentials.clone() else {
                self.begin_close(
                    now,
                    DownReason::AuthRefused,
                    "no credentials to authenticate with",
                );
                return;
            };
            let mut p = Peer::new(protocol, credentials, &mut self.rng);
            p.start(now);
            self.auth_peer = Some(p);
        }
        self.check_auth_complete(now);
    }

    fn on_lcp_extra(&mut self, now: Instant, ev: LcpEvent) {
        match ev {
            LcpEvent::ProtocolRejected(proto) => {
                tracing::debug!("peer rejected protocol {proto:#06x}");
                match proto {
                    protocol::IPCP => {
                        if let Some(f) = &mut self.ipcp {
                            f.protocol_rejected(now);
                        }
                    }
                    protocol::IPV6CP => {
                        if let Some(f) = &mut self.ipv6cp {
                            f.protocol_rejected(now);
                        }
                    }
                    protocol::CCP => {
                        if let Some(f) = &mut self.ccp {
                            f.protocol_rejected(now);
                        }
                    }
                    protocol::CBCP => {
                        // A peer without CBCP gets no callback.
                        self.cbcp_server = None;
                        self.cbcp_client = None;
                        self.finish_callback(now, CallbackDecision::None);
                    }
                    _ => {}
                }
            }
            LcpEvent::EchoReply => self.echo_outstanding = 0,
            LcpEvent::Identification(text) => {
                self.events.push_back(LinkEvent::PeerIdentification(text))
            }
            LcpEvent::TimeRemaining(seconds, _) => {
                self.events.push_back(LinkEvent::TimeRemaining(seconds))
            }
            LcpEvent::LoopedBack => {
                self.begin_close(now, DownReason::LoopedBack, "looped back");
            }
        }
    }

    fn on_echo_timer(&mut self, now: Instant) {
        let Some(echo) = self.config.echo else { return };
        if !self.lcp.is_opened() {
            self.echo_deadline = None;
            return;
        }
        if self.echo_outstanding >= echo.max_failures {
            self.echo_deadline = None;
            self.begin_close(now, DownReason::PeerDead, "peer not responding");
            return;
        }
        let data = self.lcp.negotiator().echo_data();
        self.lcp.send_extra(code::ECHO_REQUEST, &data);
        self.echo_outstanding += 1;
        self.echo_deadline = Some(now + echo.interval);
    }

    fn drive_auth(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut packets = Vec::new();
        let mut events = Vec::new();
        if let Some(a) = &mut self.authenticator {
            let proto = a.protocol().ppp_protocol();
            while let Some(p) = a.poll_transmit() {
                packets.push((proto, p));
            }
            while let Some(ev) = a.poll_event() {
                events.push((true, ev));
            }
        }
        if let Some(p) = &mut self.auth_peer {
            let proto = p.protocol().ppp_protocol();
            while let Some(pkt) = p.poll_transmit() {
                packets.push((proto, pkt));
            }
            while let Some(ev) = p.poll_event() {
                events.push((false, ev));
            }
        }
        for (proto, p) in packets {
            self.queue_control(proto, &p);
            busy = true;
        }
        for (as_authenticator, ev) in events {
            busy = true;
            match ev {
                AuthEvent::Request(request) => {
                    self.events.push_back(LinkEvent::AuthRequest(request))
                }
                AuthEvent::Success(success) => {
                    if as_authenticator || self.authenticated_as.is_none() {
                        self.authenticated_as = Some(success.username.clone());
                        self.auth_protocol = Some(success.protocol);
                    }
                    if success.keys.is_some() && (as_authenticator || self.master_keys.is_none()) {
                        self.master_keys = success.keys.clone();
                    }
                    self.check_auth_complete(now);
                }
                AuthEvent::Failure(failure) => {
                    let text = format!("authentication failed: {}", failure.message);
                    self.begin_close(now, DownReason::AuthFailed(failure), &text);
                }
                AuthEvent::RetryAllowed(failure) => {
                    self.events.push_back(LinkEvent::AuthRetryAllowed(failure))
                }
            }
        }
        busy
    }

    /// The authenticate phase ends when every negotiated direction has
    /// succeeded (RFC 1661 §3.5).
    fn check_auth_complete(&mut self, now: Instant) {
        if self.phase != Phase::Authenticate {
            return;
        }
        let server_done = self.authenticator.as_ref().is_none_or(|a| a.is_finished());
        let client_done = self.auth_peer.as_ref().is_none_or(|p| p.is_finished());
        if !(server_done && client_done) {
            return;
        }
        self.auth_deadline = None;
        let negotiated = self.lcp.negotiator().negotiated().clone();
        if negotiated.callback {
            // We agreed to the peer's Callback option: CBCP follows
            // authentication (the §15.4 trace: Request, Response, Ack).
            self.phase = Phase::Callback;
            let mut server = CbcpServer::new(self.config.cbcp_server);
            server.start(now);
            self.cbcp_server = Some(Box::new(server));
        } else if negotiated.callback_requested {
            self.phase = Phase::Callback;
            self.cbcp_client = Some(Box::new(CbcpClient::new(self.config.cbcp_client.clone())));
        } else {
            self.finish_callback(now, CallbackDecision::None);
        }
    }

    fn drive_cbcp(&mut self, now: Instant) -> bool {
        let mut packets = Vec::new();
        let mut decisions = Vec::new();
        if let Some(c) = &mut self.cbcp_server {
            while let Some(p) = c.poll_transmit() {
                packets.push(p);
            }
            while let Some(ev) = c.poll_event() {
                decisions.push(ev);
            }
        }
        if let Some(c) = &mut self.cbcp_client {
            while let Some(p) = c.poll_transmit() {
                packets.push(p);
            }
            while let Some(ev) = c.poll_event() {
                decisions.push(ev);
            }
        }
        let busy = !packets.is_empty() || !decisions.is_empty();
        for p in packets {
            self.queue_control(protocol::CBCP, &p);
        }
        for ev in decisions {
            match ev {
                CbcpEvent::Done(d) => self.finish_callback(now, d),
                CbcpEvent::Failed(why) => {
                    let reason = DownReason::NegotiationFailed(format!("callback control: {why}"));
                    self.begin_close(now, reason, "callback control failed");
                }
            }
        }
        busy
    }

    fn finish_callback(&mut self, now: Instant, decision: CallbackDecision) {
        if self.callback_done {
            return;
        }
        self.callback_done = true;
        if decision != CallbackDecision::None {
            // The link ends; the dial-in side calls the number back.
            let reason = DownReason::CallbackRequested(decision);
            self.begin_close(now, reason, "callback");
            return;
        }
        self.phase = Phase::Network;
        self.events.push_back(LinkEvent::Authenticated {
            username: self.authenticated_as.clone().unwrap_or_default(),
            protocol: self.auth_protocol,
        });
        self.maybe_start_network(now);
    }

    fn maybe_start_network(&mut self, now: Instant) {
        if self.network_started
            || !self.network_allowed
            || self.phase != Phase::Network
            || self.down
        {
            return;
        }
        self.network_started = true;
        let settings = std::mem::take(&mut self.network_override);
        let fsm = self.config.fsm;
        let ipcp_config: Option<IpcpConfig> = settings.ipcp.or_else(|| self.config.ipcp.clone());
        let ipv6_config: Option<Ipv6cpConfig> = settings.ipv6cp.or(self.config.ipv6cp);
        let ccp_config: Option<CcpConfig> = settings.ccp.or(self.config.ccp);
        // Keep what we run visible to handle_control.
        self.network_override.ipcp = ipcp_config.clone();
        self.network_override.ipv6cp = ipv6_config;
        self.network_override.ccp = ccp_config;
        if let Some(c) = ipcp_config {
            let mut f = Fsm::new(Ipcp::new(c), fsm);
            f.open(now);
            f.lower_up(now);
            self.ipcp = Some(f);
        }
        if let Some(c) = ipv6_config {
            let mut f = Fsm::new(Ipv6cp::new(c, self.rng.fork()), fsm);
            f.open(now);
            f.lower_up(now);
            self.ipv6cp = Some(Box::new(f));
        }
        if let Some(c) = ccp_config {
            self.ccp_required = c.required;
            if self.master_keys.is_some() {
                let mut f = Fsm::new(Ccp::new(c), fsm);
                f.open(now);
                f.lower_up(now);
                self.ccp = Some(Box::new(f));
            } else if self.ccp_required {
                // RFC 3079 §3: MPPE keys come from MS-CHAP; without them
                // there is nothing to encrypt with.
                self.begin_close(now, DownReason::EncryptionRequired, "encryption required");
                return;
            }
        }
        for (proto, packet) in std::mem::take(&mut self.held_ncp) {
            self.handle_control(now, proto, &packet);
        }
    }

    fn drive_ncps(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut out = Vec::new();
        let mut ev_list = Vec::new();
        if let Some(f) = &mut self.ipcp {
            while let Some(p) = f.poll_transmit() {
                out.push((protocol::IPCP, p));
            }
            while let Some(e) = f.poll_event() {
                ev_list.push((protocol::IPCP, e));
            }
        }
        if let Some(f) = &mut self.ipv6cp {
            while let Some(p) = f.poll_transmit() {
                out.push((protocol::IPV6CP, p));
            }
            while let Some(e) = f.poll_event() {
                ev_list.push((protocol::IPV6CP, e));
            }
        }
        let mut reset_requested = false;
        if let Some(f) = &mut self.ccp {
            while let Some(p) = f.poll_transmit() {
                out.push((protocol::CCP, p));
            }
            while let Some(e) = f.poll_event() {
                ev_list.push((protocol::CCP, e));
            }
            reset_requested = f.negotiator_mut().take_reset_requested();
        }
        if reset_requested {
            if let Some(e) = &mut self.encryptor {
                e.reset_requested();
            }
        }
        for (proto, p) in out {
            self.queue_control(proto, &p);
            busy = true;
        }
        for (proto, ev) in ev_list {
            busy = true;
            match (proto, ev) {
                (protocol::CCP, FsmEvent::Up) => self.on_ccp_up(now),
                (protocol::CCP, FsmEvent::Down) => {
                    self.encryptor = None;
                    self.decryptor = None;
                    if self.ccp_required && self.up {
                        self.begin_close(
                            now,
                            DownReason::EncryptionRequired,
                            "encryption renegotiated",
                        );
                    }
                }
                (protocol::CCP, FsmEvent::Finished(_)) if self.ccp_required && !self.mppe_on() => {
                    self.begin_close(now, DownReason::EncryptionRequired, "encryption required");
                }
                _ => {}
            }
        }
        if self
            .ccp
            .as_ref()
            .is_some_and(|f| f.negotiator().negotiation_failed())
            && self.ccp_required
        {
            self.begin_close(now, DownReason::EncryptionRequired, "encryption required");
        }
        self.check_network_up(now);
        busy
    }

    fn mppe_on(&self) -> bool {
        self.encryptor.is_some()
    }

    fn on_ccp_up(&mut self, now: Instant) {
        let negotiated = self
            .ccp
            .as_ref()
            .and_then(|f| f.negotiator().negotiated())
            .map(|n| n.settings());
        match (negotiated, &self.master_keys) {
            (Some(settings), Some(keys)) => {
                self.encryptor = Some(Box::new(MppeEncryptor::new(&keys.send, settings)));
                self.decryptor = Some(Box::new(MppeDecryptor::new(&keys.recv, settings)));
            }
            _ if self.ccp_required => {
                self.begin_close(now, DownReason::EncryptionRequired, "encryption required");
            }
            _ => {}
        }
    }

    /// Settled: opened, or given up on (finished, or never started).
    fn settled<N: crate::fsm::Negotiator>(f: Option<&Fsm<N>>) -> bool {
        use crate::fsm::State;
        f.is_none_or(|f| {
            matches!(
                f.state(),
                State::Opened | State::Stopped | State::Closed | State::Initial
            )
        })
    }

    fn check_network_up(&mut self, now: Instant) {
        if self.up
            || self.down
            || !self.network_started
            || self.closing_reason.is_some()
            || !self.lcp.is_opened()
        {
            return;
        }
        if !(Self::settled(self.ipcp.as_ref())
            && Self::settled(self.ipv6cp.as_deref())
            && Self::settled(self.ccp.as_deref()))
        {
            return;
        }
        if self.ccp_required && !self.mppe_on() {
            self.begin_close(now, DownReason::EncryptionRequired, "encryption required");
            return;
        }
        let ipv4 = self.ipcp.as_ref().filter(|f| f.is_opened()).and_then(|f| {
            let n = f.negotiator();
            Some(Ipv4Info {
                local: n.local_address()?,
                peer: n.peer_address()?,
                dns: n.dns(),
                nbns: n.nbns(),
            })
        });
        let ipv6 = self
            .ipv6cp
            .as_ref()
            .filter(|f| f.is_opened())
            .and_then(|f| {
                let n = f.negotiator();
                Some(Ipv6Info {
                    local_interface_id: n.local_interface_id()?,
                    peer_interface_id: n.peer_interface_id()?,
                })
            });
        if ipv4.is_none() && ipv6.is_none() {
            self.begin_close(now, DownReason::NoNetworkProtocol, "no network protocols");
            return;
        }
        self.up = true;
        let mppe = self
            .ccp
            .as_ref()
            .filter(|_| self.mppe_on())
            .and_then(|f| f.negotiator().negotiated())
            .map(|n| n.settings());
        self.events.push_back(LinkEvent::Up(LinkUp {
            username: self.authenticated_as.clone(),
            auth_protocol: self.auth_protocol,
            master_keys: self.master_keys.clone(),
            ipv4,
            ipv6,
            mppe,
            peer_mru: self.lcp.negotiator().negotiated().peer_mru,
        }));
    }

    /// Start a graceful close for `why`; the Down event follows when LCP
    /// has finished (Terminate-Ack or timeout).
    fn begin_close(&mut self, now: Instant, why: DownReason, text: &str) {
        if self.down || self.closing_reason.is_some() {
            return;
        }
        tracing::debug!("closing PPP link: {why}");
        self.closing_reason = Some(why);
        self.phase = Phase::Terminate;
        self.echo_deadline = None;
        self.auth_deadline = None;
        self.up = false;
        self.encryptor = None;
        self.decryptor = None;
        self.lcp.close(now, text);
        if !matches!(
            self.lcp.state(),
            crate::fsm::State::Closing | crate::fsm::State::Stopping
        ) {
            // Nothing to terminate (LCP was not negotiating): down now.
            let why = self
                .closing_reason
                .take()
                .unwrap_or(DownReason::Closed(String::new()));
            self.go_down(why);
        }
    }

    fn go_down(&mut self, why: DownReason) {
        if self.down {
            return;
        }
        self.down = true;
        self.up = false;
        self.phase = Phase::Dead;
        self.echo_deadline = None;
        self.auth_deadline = None;
        self.encryptor = None;
        self.decryptor = None;
        self.authenticator = None;
        self.auth_peer = None;
        self.cbcp_server = None;
        self.cbcp_client = None;
        self.ipcp = None;
        self.ipv6cp = None;
        self.ccp = None;
        self.events.push_back(LinkEvent::Down(why));
    }
}

#[cfg(test)]
mod tests;
