//! The option-negotiation automaton of RFC 1661 §4, shared by LCP and every
//! NCP. The protocol-specific part (which options, how to judge the peer's)
//! is a [`Negotiator`]; this file is only the state table, the restart
//! timer and the counters.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::{code, parse_options, write_packet, ConfigOption, ControlPacket};

/// RFC 1661 §4.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Initial,
    Starting,
    Closed,
    Stopped,
    Closing,
    Stopping,
    ReqSent,
    AckRcvd,
    AckSent,
    Opened,
}

/// The layer actions of RFC 1661 §4.4 that the layer above must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsmEvent {
    /// This-Layer-Up: the automaton reached Opened.
    Up,
    /// This-Layer-Down: the automaton left Opened.
    Down,
    /// This-Layer-Started: the lower layer is needed.
    Started,
    /// This-Layer-Finished: the lower layer is no longer needed. Carries
    /// why, when the automaton knows (Terminate-Request received, timeout).
    Finished(FinishReason),
}

/// Why the automaton finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// We closed it (administrative close, or negotiation finished normally).
    Closed,
    /// The peer sent Terminate-Request, with its text if any.
    PeerTerminated(String),
    /// Max-Configure requests went unanswered.
    NoResponse,
    /// The peer rejected a code we cannot do without (RXJ-).
    CodeRejected,
    /// The peer's and our options never converged.
    NotConverging,
    /// The lower layer went away.
    LowerDown,
}

/// The judgement of a peer's Configure-Request (RFC 1661 §5.1–5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every option is recognized and acceptable.
    Ack,
    /// Some options are acceptable only with other values: these are the
    /// Nak'd options with the values we want.
    Nak(Vec<u8>),
    /// Some options are not recognized or not acceptable at all: these are
    /// the rejected options, copied unchanged from the request.
    Reject(Vec<u8>),
}

/// What a negotiator did with a code outside 1..=7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraCode {
    /// Not a code of this protocol: the automaton sends Code-Reject (RUC).
    Unknown,
    /// Handled (RXR or a protocol-specific code).
    Handled,
}

/// The protocol-specific half of a control protocol.
pub trait Negotiator {
    /// Forget everything negotiated and go back to our preferences; called
    /// when a new negotiation starts.
    fn reset(&mut self);
    /// Append the options of our next Configure-Request.
    fn build_request(&mut self, out: &mut Vec<u8>);
    /// Judge the peer's Configure-Request, remembering what the peer asked
    /// for if the verdict is Ack.
    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict;
    /// Our last Configure-Request was acknowledged.
    fn on_ack(&mut self);
    /// The peer Nak'd some of our options (RFC 1661 §5.3).
    fn on_nak(&mut self, options: &[ConfigOption<'_>]);
    /// The peer rejected some of our options (RFC 1661 §5.4).
    fn on_reject(&mut self, options: &[ConfigOption<'_>]);
    /// A code outside 1..=7. Replies go into `out` as complete control
    /// packets. Default: not known.
    fn handle_extra(
        &mut self,
        _now: Instant,
        _state: State,
        _packet: &ControlPacket<'_>,
        _out: &mut VecDeque<Vec<u8>>,
    ) -> ExtraCode {
        ExtraCode::Unknown
    }
    /// RFC 1661 §5.6: whether the peer rejecting `code` makes the protocol
    /// unusable (RXJ-) rather than merely losing a feature (RXJ+).
    fn code_reject_is_fatal(&self, code: u8) -> bool {
        code <= code::CODE_REJECT
    }
}

/// The counters and timer of RFC 1661 §4.6.
#[derive(Debug, Clone, Copy)]
pub struct FsmConfig {
    /// Restart timer, 3 s by default.
    pub restart: Duration,
    /// Configure-Requests sent before giving up, 10 by default.
    pub max_configure: u32,
    /// Terminate-Requests sent before giving up, 2 by default.
    pub max_terminate: u32,
    /// Configure-Naks sent (without an Ack) before Nak'd options are
    /// rejected instead, 5 by default.
    pub max_failure: u32,
    /// Passive option (RFC 1661 §4.2 "p"): after Max-Configure timeouts,
    /// stay Stopped and wait for the peer instead of finishing. Used by
    /// servers waiting for a slow client. Off by default.
    pub passive: bool,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
            passive: false,
        }
    }
}

/// Nak/Reject rounds we accept from a peer in one negotiation before
/// deciding it will never converge. RFC 1661 resets the restart counter on
/// every Nak, so without this a peer could keep us negotiating forever.
const MAX_NAK_ROUNDS: u32 = 64;

/// Upper bound of the rejected packet echoed in a Code-Reject (RFC 1661
/// §5.6: truncated to fit the peer's MRU; 1500 is the default MRU).
const MAX_CODE_REJECT_DATA: usize = 1496 - 4;

/// The RFC 1661 automaton around a [`Negotiator`].
#[derive(Debug)]
pub struct Fsm<N> {
    negotiator: N,
    config: FsmConfig,
    state: State,
    restart_count: u32,
    failures: u32,
    nak_rounds: u32,
    next_id: u8,
    /// Identifier and options of our outstanding Configure-Request.
    request_id: u8,
    request: Vec<u8>,
    terminate_id: u8,
    terminate_reason: String,
    /// The peer's last acknowledged Configure-Request (id, options).
    acked_peer_request: Option<(u8, Vec<u8>)>,
    deadline: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<FsmEvent>,
    pending_finish: Option<FinishReason>,
}

#[derive(Clone, Copy)]
enum Restart {
    Configure,
    Terminate,
}

impl<N: Negotiator> Fsm<N> {
    pub fn new(negotiator: N, config: FsmConfig) -> Self {
        Fsm {
            negotiator,
            config,
            state: State::Initial,
            restart_count: 0,
            failures: 0,
            nak_rounds: 0,
            next_id: 0,
            request_id: 0,
            request: Vec::new(),
            terminate_id: 0,
            terminate_reason: String::new(),
            acked_peer_request: None,
            deadline: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            pending_finish: None,
        }
    }

    // ---- getters ----

    /// The peer's Terminate-Request text, while the automaton waits out
    /// its restart period in Stopping before This-Layer-Finished (RFC
    /// 1661 §4.4 zrc): a transport that closes meanwhile ends a link the
    /// peer had already terminated.
    pub fn peer_terminating(&self) -> Option<&str> {
        match (&self.state, &self.pending_finish) {
            (State::Stopping, Some(FinishReason::PeerTerminated(text))) => Some(text),
            _ => None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiator(&self) -> &N {
        &self.negotiator
    }

    pub fn negotiator_mut(&mut self) -> &mut N {
        &mut self.negotiator
    }

    pub fn is_opened(&self) -> bool {
        self.state == State::Opened
    }

    // ---- administrative and lower-layer events (RFC 1661 §4.3) ----

    /// The lower layer is ready (Up event).
    pub fn lower_up(&mut self, now: Instant) {
        match self.state {
            State::Initial => self.state = State::Closed,
            State::Starting => {
                self.begin_negotiation();
                self.irc(Restart::Configure);
                self.scr(now);
                self.state = State::ReqSent;
            }
            _ => {}
        }
    }

    /// The lower layer went away (Down event).
    pub fn lower_down(&mut self) {
        match self.state {
            State::Closed | State::Closing => self.state = State::Initial,
            State::Stopped => {
                self.events.push_back(FsmEvent::Started);
                self.state = State::Starting;
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.state = State::Starting
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.state = State::Starting;
            }
            State::Initial | State::Starting => {}
        }
        self.update_timer_for_state();
    }

    /// The administrator wants the link (Open event).
    pub fn open(&mut self, now: Instant) {
        match self.state {
            State::Initial => {
                self.events.push_back(FsmEvent::Started);
                self.state = State::Starting;
            }
            State::Closed => {
                self.begin_negotiation();
                self.irc(Restart::Configure);
                self.scr(now);
                self.state = State::ReqSent;
            }
            State::Closing => self.state = State::Stopping,
            _ => {}
        }
    }

    /// The administrator wants the link closed (Close event); `reason` goes
    /// into the Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.terminate_reason = reason.chars().take(200).collect();
        match self.state {
            State::Starting => {
                self.finish(FinishReason::Closed);
                self.state = State::Initial;
            }
            State::Stopped => self.state = State::Closed,
            State::Stopping => self.state = State::Closing,
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.irc(Restart::Terminate);
                self.str(now);
                self.state = State::Closing;
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.irc(Restart::Terminate);
                self.str(now);
                self.state = State::Closing;
            }
            State::Initial | State::Closed | State::Closing => {}
        }
        self.update_timer_for_state();
    }

    /// Send a packet of a code outside 1..=7 (Echo, Identification,
    /// Protocol-Reject, Reset-Request …) with a fresh identifier; returns
    /// the identifier used.
    pub fn send_extra(&mut self, code: u8, data: &[u8]) -> u8 {
        let id = self.take_id();
        let mut packet = Vec::with_capacity(4 + data.len());
        write_packet(&mut packet, code, id, data);
        self.transmit.push_back(packet);
        id
    }

    // ---- input ----

    /// A control packet of this protocol arrived (the PPP payload, without
    /// the protocol field). Malformed packets are dropped and reported.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<(), crate::packet::PacketError> {
        let packet = ControlPacket::parse(bytes)?;
        match packet.code {
            code::CONFIGURE_REQUEST => self.rcr(now, &packet)?,
            code::CONFIGURE_ACK => self.rca(now, &packet),
            code::CONFIGURE_NAK | code::CONFIGURE_REJECT => self.rcn(now, &packet)?,
            code::TERMINATE_REQUEST => self.rtr(now, &packet),
            code::TERMINATE_ACK => self.rta(now),
            code::CODE_REJECT => self.rxj(now, &packet),
            _ => {
                if matches!(self.state, State::Initial | State::Starting) {
                    return Ok(());
                }
                let known =
                    self.negotiator
                        .handle_extra(now, self.state, &packet, &mut self.transmit);
                if known == ExtraCode::Unknown {
                    // RUC: scj, state unchanged (RFC 1661 §4.3).
                    let len = bytes.len().min(MAX_CODE_REJECT_DATA);
                    self.send_extra(code::CODE_REJECT, &bytes[..len]);
                }
            }
        }
        self.update_timer_for_state();
        Ok(())
    }

    /// The peer sent Protocol-Reject for this protocol, or the link layer
    /// otherwise learned it cannot run: RXJ- (RFC 1661 §5.7).
    pub fn protocol_rejected(&mut self, now: Instant) {
        self.rxj_minus(now);
        self.update_timer_for_state();
    }

    /// The restart timer may have expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.deadline = None;
        if self.restart_count > 0 {
            // TO+
            match self.state {
                State::Closing | State::Stopping => self.str(now),
                State::ReqSent | State::AckRcvd => {
                    self.retransmit_request(now);
                    self.state = State::ReqSent;
                }
                State::AckSent => self.retransmit_request(now),
                _ => {}
            }
        } else {
            // TO-
            match self.state {
                State::Closing => {
                    self.finish(FinishReason::Closed);
                    self.state = State::Closed;
                }
                State::Stopping => {
                    let reason = self.pending_finish.take().unwrap_or(FinishReason::Closed);
                    self.finish(reason);
                    self.state = State::Stopped;
                }
                State::ReqSent | State::AckRcvd | State::AckSent => {
                    self.state = State::Stopped;
                    if !self.config.passive {
                        self.finish(FinishReason::NoResponse);
                    }
                }
                _ => {}
            }
        }
        self.update_timer_for_state();
    }

    // ---- output ----

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<FsmEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    // ---- receive events ----

    fn rcr(
        &mut self,
        now: Instant,
        packet: &ControlPacket<'_>,
    ) -> Result<(), crate::packet::PacketError> {
        match self.state {
            State::Closed => {
                self.sta(packet.id);
                return Ok(());
            }
            State::Closing | State::Stopping | State::Initial | State::Starting => return Ok(()),
            State::Opened
                if self
                    .acked_peer_request
                    .as_ref()
                    .is_some_and(|(id, data)| *id == packet.id && data == packet.data) =>
            {
                // RFC 1661 §5.1 lets a peer retransmit a request unchanged
                // with the same Identifier: that means our Configure-Ack
                // was lost (or the packet was duplicated in transit). Ack
                // again instead of tearing down an open layer.
                self.send_verdict(packet, Verdict::Ack);
                return Ok(());
            }
            _ => {}
        }
        let options = parse_options(packet.data)?;
        let mut verdict = self.negotiator.check_request(&options);
        if let Verdict::Nak(nak) = &verdict {
            if self.failures >= self.config.max_failure {
                // RFC 1661 §4.6 Max-Failure: stop Nak'ing, reject those
                // options instead (with the values the peer sent, §5.4).
                let nak_kinds: Vec<u8> = crate::packet::options(nak)
                    .filter_map(Result::ok)
                    .map(|o| o.kind)
                    .collect();
                let mut reject = Vec::new();
                for option in options.iter().filter(|o| nak_kinds.contains(&o.kind)) {
                    option.write(&mut reject);
                }
                verdict = Verdict::Reject(reject);
            } else {
                self.failures += 1;
            }
        }
        let good = verdict == Verdict::Ack;
        if self.state == State::Stopped {
            self.begin_negotiation();
            self.irc(Restart::Configure);
            self.scr(now);
        } else if self.state == State::Opened {
            self.events.push_back(FsmEvent::Down);
            self.scr(now);
        }
        self.send_verdict(packet, verdict);
        self.state = match (self.state, good) {
            (State::AckRcvd, true) => {
                self.events.push_back(FsmEvent::Up);
                State::Opened
            }
            (State::AckRcvd, false) => State::AckRcvd,
            (_, true) => State::AckSent,
            (_, false) => State::ReqSent,
        };
        Ok(())
    }

    fn send_verdict(&mut self, packet: &ControlPacket<'_>, verdict: Verdict) {
        let mut out = Vec::with_capacity(4 + packet.data.len());
        match verdict {
            Verdict::Ack => {
                self.failures = 0;
                self.acked_peer_request = Some((packet.id, packet.data.to_vec()));
                write_packet(&mut out, code::CONFIGURE_ACK, packet.id, packet.data);
            }
            Verdict::Nak(options) => {
                write_packet(&mut out, code::CONFIGURE_NAK, packet.id, &options)
            }
            Verdict::Reject(options) => {
                write_packet(&mut out, code::CONFIGURE_REJECT, packet.id, &options)
            }
        }
        self.transmit.push_back(out);
    }

    fn rca(&mut self, now: Instant, packet: &ControlPacket<'_>) {
        // RFC 1661 §5.2: the Identifier must match our last request and the
        // options must be exactly those sent; otherwise discard silently.
        let matches = packet.id == self.request_id && packet.data == self.request.as_slice();
        match self.state {
            State::Closed | State::Stopped => {
                self.sta(packet.id);
                return;
            }
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened if !matches => return,
            _ => {}
        }
        match self.state {
            State::ReqSent => {
                self.negotiator.on_ack();
                self.irc(Restart::Configure);
                self.state = State::AckRcvd;
            }
            State::AckRcvd => {
                // Crossed connection ('x'): renegotiate.
                self.scr(now);
                self.state = State::ReqSent;
            }
            State::AckSent => {
                self.negotiator.on_ack();
                self.irc(Restart::Configure);
                self.events.push_back(FsmEvent::Up);
                self.state = State::Opened;
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.scr(now);
                self.state = State::ReqSent;
            }
            _ => {}
        }
    }

    fn rcn(
        &mut self,
        now: Instant,
        packet: &ControlPacket<'_>,
    ) -> Result<(), crate::packet::PacketError> {
        match self.state {
            State::Closed | State::Stopped => {
                self.sta(packet.id);
                return Ok(());
            }
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {}
            _ => return Ok(()),
        }
        if packet.id != self.request_id {
            return Ok(());
        }
        let options = parse_options(packet.data)?;
        self.nak_rounds += 1;
        if self.nak_rounds > MAX_NAK_ROUNDS {
            self.terminate_reason = "configuration does not converge".into();
            self.pending_finish = Some(FinishReason::NotConverging);
            if self.state == State::Opened {
                self.events.push_back(FsmEvent::Down);
            }
            self.irc(Restart::Terminate);
            self.str(now);
            self.state = State::Stopping;
            return Ok(());
        }
        if packet.code == code::CONFIGURE_NAK {
            self.negotiator.on_nak(&options);
        } else {
            self.negotiator.on_reject(&options);
        }
        match self.state {
            State::ReqSent => {
                self.irc(Restart::Configure);
                self.scr(now);
            }
            State::AckRcvd => {
                self.scr(now);
                self.state = State::ReqSent;
            }
            State::AckSent => {
                self.irc(Restart::Configure);
                self.scr(now);
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.scr(now);
                self.state = State::ReqSent;
            }
            _ => {}
        }
        Ok(())
    }

    fn rtr(&mut self, now: Instant, packet: &ControlPacket<'_>) {
        match self.state {
            State::Initial | State::Starting => {}
            State::Closed | State::Stopped | State::Closing | State::Stopping => {
                self.sta(packet.id)
            }
            State::ReqSent | State::AckRcvd | State::AckSent => {
                self.sta(packet.id);
                self.state = State::ReqSent;
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                // zrc: wait one restart period before This-Layer-Finished,
                // so our Terminate-Ack has a chance to arrive (§4.4).
                self.restart_count = 0;
                self.deadline = Some(now + self.config.restart);
                self.sta(packet.id);
                let text = String::from_utf8_lossy(&packet.data[..packet.data.len().min(200)]);
                self.pending_finish = Some(FinishReason::PeerTerminated(text.into_owned()));
                self.state = State::Stopping;
            }
        }
    }

    fn rta(&mut self, now: Instant) {
        match self.state {
            State::Closing => {
                self.finish(FinishReason::Closed);
                self.state = State::Closed;
            }
            State::Stopping => {
                let reason = self.pending_finish.take().unwrap_or(FinishReason::Closed);
                self.finish(reason);
                self.state = State::Stopped;
            }
            State::AckRcvd => self.state = State::ReqSent,
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.scr(now);
                self.state = State::ReqSent;
            }
            _ => {}
        }
    }

    fn rxj(&mut self, now: Instant, packet: &ControlPacket<'_>) {
        let Some(&rejected) = packet.data.first() else {
            return;
        };
        if self.negotiator.code_reject_is_fatal(rejected) {
            self.rxj_minus(now);
        } else if self.state == State::AckRcvd {
            // RXJ+ in Ack-Rcvd goes back to Req-Sent.
            self.state = State::ReqSent;
        }
    }

    fn rxj_minus(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Stopped => self.finish(FinishReason::CodeRejected),
            State::Closing => {
                self.finish(FinishReason::CodeRejected);
                self.state = State::Closed;
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.finish(FinishReason::CodeRejected);
                self.state = State::Stopped;
            }
            State::Opened => {
                self.events.push_back(FsmEvent::Down);
                self.pending_finish = Some(FinishReason::CodeRejected);
                self.irc(Restart::Terminate);
                self.str(now);
                self.state = State::Stopping;
            }
            State::Initial | State::Starting => {}
        }
    }

    // ---- actions (RFC 1661 §4.4) ----

    fn begin_negotiation(&mut self) {
        self.negotiator.reset();
        self.acked_peer_request = None;
        self.failures = 0;
        self.nak_rounds = 0;
        self.pending_finish = None;
    }

    fn irc(&mut self, kind: Restart) {
        self.restart_count = match kind {
            Restart::Configure => self.config.max_configure,
            Restart::Terminate => self.config.max_terminate,
        };
    }

    fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn scr(&mut self, now: Instant) {
        self.request.clear();
        self.negotiator.build_request(&mut self.request);
        self.request_id = self.take_id();
        let mut packet = Vec::with_capacity(4 + self.request.len());
        write_packet(
            &mut packet,
            code::CONFIGURE_REQUEST,
            self.request_id,
            &self.request,
        );
        self.transmit.push_back(packet);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.config.restart);
    }

    /// TO+: send the outstanding request again, unchanged and with the
    /// same Identifier (RFC 1661 §5.1 allows it), so a peer that already
    /// acknowledged it (its Ack was lost) can recognise the duplicate.
    fn retransmit_request(&mut self, now: Instant) {
        let mut packet = Vec::with_capacity(4 + self.request.len());
        write_packet(
            &mut packet,
            code::CONFIGURE_REQUEST,
            self.request_id,
            &self.request,
        );
        self.transmit.push_back(packet);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.config.restart);
    }

    fn str(&mut self, now: Instant) {
        self.terminate_id = self.take_id();
        let mut packet = Vec::new();
        write_packet(
            &mut packet,
            code::TERMINATE_REQUEST,
            self.terminate_id,
            self.terminate_reason.as_bytes(),
        );
        self.transmit.push_back(packet);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.deadline = Some(now + self.config.restart);
    }

    fn sta(&mut self, id: u8) {
        let mut packet = Vec::with_capacity(4);
        write_packet(&mut packet, code::TERMINATE_ACK, id, &[]);
        self.transmit.push_back(packet);
    }

    fn finish(&mut self, reason: FinishReason) {
        self.events.push_back(FsmEvent::Finished(reason));
    }

    /// RFC 1661 §4.6: the restart timer runs only in the states that wait
    /// for an answer.
    fn update_timer_for_state(&mut self) {
        if !matches!(
            self.state,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            self.deadline = None;
        }
    }
}

#[cfg(test)]
mod tests;
