//! CBCP, the Microsoft Callback Control Protocol (PPP protocol 0xC029,
//! draft-ietf-pppext-callback-cp-02, specified as MS-CBCP). It runs
//! after authentication when LCP negotiated the Callback option with
//! operation 6. Not an RFC 1661 automaton: the answerer (server,
//! [`CbcpServer`]) offers callback types in a Callback-Request, the caller
//! (client, [`CbcpClient`]) picks one in a Callback-Response, and the
//! answerer confirms it with a Callback-Ack.
//!
//! Packet format (MS-CBCP §2.2.4): Code, Identifier, Length (2 octets,
//! whole packet), then callback configuration options (MS-CBCP §2.2.3):
//! Type, Length (whole option), Callback Delay (seconds, absent for
//! No-Callback), Callback Address (types 2 and 4: Address Type 1 = PSTN or
//! ISDN, then a NUL-terminated ASCII number).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::packet::{write_packet, ControlPacket};

/// PPP protocol number of CBCP.
pub const PROTOCOL: u16 = 0xC029;

/// MS-CBCP §2.2.4 message codes.
pub mod code {
    pub const CALLBACK_REQUEST: u8 = 1;
    pub const CALLBACK_RESPONSE: u8 = 2;
    pub const CALLBACK_ACK: u8 = 3;
}

/// MS-CBCP §2.2.3 callback types.
pub mod callback_type {
    pub const NO_CALLBACK: u8 = 1;
    pub const USER_NUMBER: u8 = 2;
    pub const ADMIN_NUMBER: u8 = 3;
    pub const LIST_OF_NUMBERS: u8 = 4;
}

/// MS-CBCP §2.2.2 Address Type: PSTN/ISDN.
pub const ADDRESS_TYPE_PSTN: u8 = 1;

/// Longest callback number accepted or sent.
pub const MAX_NUMBER_LEN: usize = 64;

/// What the two sides settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackDecision {
    /// No callback: the link proceeds to the network phase.
    None,
    /// Call back the number the user gave, after `delay` seconds.
    UserNumber { number: String, delay: u8 },
    /// Call back the number configured by the administrator.
    AdminNumber { delay: u8 },
}

/// In words for log lines and end reasons (never a Debug dump). The
/// number comes from the peer: its control characters are escaped so it
/// cannot break a log line.
impl std::fmt::Display for CallbackDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackDecision::None => f.write_str("no callback"),
            CallbackDecision::UserNumber { number, delay } => write!(
                f,
                "call back the user's number {} after {delay} s",
                number.escape_debug()
            ),
            CallbackDecision::AdminNumber { delay } => {
                write!(f, "call back the configured number after {delay} s")
            }
        }
    }
}

/// Why CBCP ended without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CbcpFailure {
    /// The peer never answered (Max retransmissions).
    NoResponse,
    /// The server offered nothing this client may choose (e.g. only a
    /// user-specified number, and we have none).
    NoAcceptableOption,
}

impl std::fmt::Display for CbcpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CbcpFailure::NoResponse => "the peer never answered",
            CbcpFailure::NoAcceptableOption => "no callback option this side may choose",
        })
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CbcpEvent {
    Done(CallbackDecision),
    Failed(CbcpFailure),
}

/// Why a received packet was dropped (MS-CBCP: silently, state unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CbcpError {
    #[error("malformed CBCP packet: {0}")]
    Packet(#[from] crate::packet::PacketError),
    #[error("unexpected CBCP code {0} in this role or state")]
    UnexpectedCode(u8),
    #[error("CBCP identifier {got} does not match the expected {expected}")]
    WrongIdentifier { got: u8, expected: u8 },
    #[error("malformed callback option")]
    BadOption,
    #[error("callback option not acceptable")]
    NotAcceptable,
    #[error("callback number longer than {MAX_NUMBER_LEN} characters or not printable ASCII")]
    BadNumber,
}

/// One parsed callback configuration option (MS-CBCP §2.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOption {
    NoCallback,
    UserNumber {
        delay: u8,
        number: String,
    },
    AdminNumber {
        delay: u8,
    },
    /// Type 4, carried only to be recognized; never offered or chosen.
    ListOfNumbers {
        delay: u8,
    },
}

impl CallbackOption {
    pub fn kind(&self) -> u8 {
        match self {
            CallbackOption::NoCallback => callback_type::NO_CALLBACK,
            CallbackOption::UserNumber { .. } => callback_type::USER_NUMBER,
            CallbackOption::AdminNumber { .. } => callback_type::ADMIN_NUMBER,
            CallbackOption::ListOfNumbers { .. } => callback_type::LIST_OF_NUMBERS,
        }
    }

    /// Append the option. Numbers are validated on construction paths;
    /// an over-long one is truncated here rather than producing a bad
    /// Length.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            // MS-CBCP §2.2.4.1/2: no delay, no address.
            CallbackOption::NoCallback => out.extend_from_slice(&[callback_type::NO_CALLBACK, 2]),
            CallbackOption::UserNumber { delay, number } => {
                let n = &number.as_bytes()[..number.len().min(MAX_NUMBER_LEN)];
                out.push(callback_type::USER_NUMBER);
                out.push((n.len() + 5) as u8);
                out.push(*delay);
                out.push(ADDRESS_TYPE_PSTN);
                out.extend_from_slice(n);
                out.push(0);
            }
            CallbackOption::AdminNumber { delay } => {
                out.extend_from_slice(&[callback_type::ADMIN_NUMBER, 3, *delay])
            }
            CallbackOption::ListOfNumbers { delay } => {
                out.extend_from_slice(&[callback_type::LIST_OF_NUMBERS, 3, *delay])
            }
        }
    }

    fn to_decision(&self) -> Option<CallbackDecision> {
        match self {
            CallbackOption::NoCallback => Some(CallbackDecision::None),
            CallbackOption::UserNumber { delay, number } => Some(CallbackDecision::UserNumber {
                number: number.clone(),
                delay: *delay,
            }),
            CallbackOption::AdminNumber { delay } => {
                Some(CallbackDecision::AdminNumber { delay: *delay })
            }
            CallbackOption::ListOfNumbers { .. } => None,
        }
    }
}

fn valid_number(number: &[u8]) -> bool {
    number.len() <= MAX_NUMBER_LEN && number.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
}

/// Parse the callback options of a CBCP message. The address of types 2
/// and 4 may be absent or empty (the answerer's offer); when present it
/// must be Address Type 1 and a NUL-terminated printable number.
pub fn parse_callback_options(mut data: &[u8]) -> Result<Vec<CallbackOption>, CbcpError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return Err(CbcpError::BadOption);
        }
        let len = data[1] as usize;
        if len < 2 || len > data.len() {
            return Err(CbcpError::BadOption);
        }
        let (kind, body) = (data[0], &data[2..len]);
        data = &data[len..];
        let option = match kind {
            // Microsoft sends length 2; tolerate a delay octet.
            callback_type::NO_CALLBACK if body.len() <= 1 => CallbackOption::NoCallback,
            callback_type::USER_NUMBER | callback_type::LIST_OF_NUMBERS => {
                let Some((&delay, address)) = body.split_first() else {
                    return Err(CbcpError::BadOption);
                };
                let number = match address {
                    [] => String::new(),
                    [ADDRESS_TYPE_PSTN, rest @ ..] => {
                        let Some((&0, digits)) = rest.split_last() else {
                            return Err(CbcpError::BadOption);
                        };
                        if !valid_number(digits) {
                            return Err(CbcpError::BadNumber);
                        }
                        // valid_number checked ASCII: lossless.
                        String::from_utf8_lossy(digits).into_owned()
                    }
                    _ => return Err(CbcpError::BadOption),
                };
                if kind == callback_type::USER_NUMBER {
                    CallbackOption::UserNumber { delay, number }
                } else {
                    CallbackOption::ListOfNumbers { delay }
                }
            }
            callback_type::ADMIN_NUMBER if body.len() <= 1 => CallbackOption::AdminNumber {
                delay: body.first().copied().unwrap_or(0),
            },
            _ => return Err(CbcpError::BadOption),
        };
        out.push(option);
    }
    Ok(out)
}

/// Retransmission settings shared by both roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbcpTiming {
    /// Retransmission interval (3 s; MS-CBCP §3.2.2 suggests 2 s and
    /// adapting to the link speed).
    pub restart: Duration,
    /// Transmissions before giving up (10, as Windows: MS-CBCP <3>).
    pub max_transmissions: u32,
}

impl Default for CbcpTiming {
    fn default() -> Self {
        CbcpTiming {
            restart: Duration::from_secs(3),
            max_transmissions: 10,
        }
    }
}

/// What the answerer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbcpServerConfig {
    /// Offer No-Callback (type 1).
    pub allow_no_callback: bool,
    /// Offer callback to a number the user gives (type 2).
    pub allow_user_number: bool,
    /// Offer (impose) callback to the administrator's number (type 3).
    pub allow_admin_number: bool,
    pub timing: CbcpTiming,
}

impl CbcpServerConfig {
    /// Only No-Callback.
    pub fn no_callback() -> Self {
        CbcpServerConfig {
            allow_no_callback: true,
            allow_user_number: false,
            allow_admin_number: false,
            timing: CbcpTiming::default(),
        }
    }

    /// No-Callback, or callback to a number of the user's choice.
    pub fn user_number_allowed() -> Self {
        CbcpServerConfig {
            allow_user_number: true,
            ..CbcpServerConfig::no_callback()
        }
    }

    fn offer(&self) -> Vec<CallbackOption> {
        let mut offer = Vec::new();
        if self.allow_no_callback {
            offer.push(CallbackOption::NoCallback);
        }
        if self.allow_user_number {
            // MS-CBCP §2.2.4.1: delay 0, address type 1, empty number.
            offer.push(CallbackOption::UserNumber {
                delay: 0,
                number: String::new(),
            });
        }
        if self.allow_admin_number {
            offer.push(CallbackOption::AdminNumber { delay: 0 });
        }
        if offer.is_empty() {
            // There must be at least one option (MS-CBCP §2.2.4.1).
            offer.push(CallbackOption::NoCallback);
        }
        offer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Waiting,
    Done,
    Failed,
}

/// The answerer side of CBCP (MS-CBCP §3.2).
#[derive(Debug)]
pub struct CbcpServer {
    config: CbcpServerConfig,
    phase: Phase,
    id: u8,
    offer: Vec<u8>,
    sent: u32,
    deadline: Option<Instant>,
    /// The acknowledged Callback-Ack, re-sent for a repeated Response.
    ack: Option<(u8, Vec<u8>)>,
    decision: Option<CallbackDecision>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<CbcpEvent>,
}

impl CbcpServer {
    pub fn new(config: CbcpServerConfig) -> Self {
        let mut offer = Vec::new();
        for o in config.offer() {
            o.write(&mut offer);
        }
        CbcpServer {
            config,
            phase: Phase::Idle,
            id: 0,
            offer,
            sent: 0,
            deadline: None,
            ack: None,
            decision: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Enter the callback phase: send the first Callback-Request
    /// (identifier 1, MS-CBCP §2.2.4.1).
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        self.phase = Phase::Waiting;
        self.id = 1;
        self.sent = 0;
        self.send_request(now);
    }

    fn send_request(&mut self, now: Instant) {
        let mut p = Vec::with_capacity(4 + self.offer.len());
        write_packet(&mut p, code::CALLBACK_REQUEST, self.id, &self.offer);
        self.transmit.push_back(p);
        self.sent += 1;
        self.deadline = Some(now + self.config.timing.restart);
    }

    /// Send a new Request with the next identifier (MS-CBCP §3.2.6), or
    /// give up after the configured number of transmissions.
    fn retransmit(&mut self, now: Instant) {
        if self.sent >= self.config.timing.max_transmissions {
            self.phase = Phase::Failed;
            self.deadline = None;
            self.events
                .push_back(CbcpEvent::Failed(CbcpFailure::NoResponse));
            return;
        }
        self.id = self.id.wrapping_add(1);
        self.send_request(now);
    }

    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), CbcpError> {
        let packet = ControlPacket::parse(bytes)?;
        // MS-CBCP §3.2.5.1: the answerer only processes Responses.
        if packet.code != code::CALLBACK_RESPONSE {
            return Err(CbcpError::UnexpectedCode(packet.code));
        }
        match self.phase {
            Phase::Waiting => {
                if packet.id != self.id {
                    return Err(CbcpError::WrongIdentifier {
                        got: packet.id,
                        expected: self.id,
                    });
                }
                let chosen = match self.judge(packet.data) {
                    Ok(c) => c,
                    Err(e) => {
                        // MS-CBCP §3.2.5.3: a malformed or unacceptable
                        // Response makes the answerer retransmit its Request.
                        self.retransmit(now);
                        return Err(e);
                    }
                };
                let decision = chosen.to_decision().ok_or(CbcpError::NotAcceptable)?;
                let mut data = Vec::new();
                chosen.write(&mut data);
                let mut p = Vec::new();
                write_packet(&mut p, code::CALLBACK_ACK, packet.id, &data);
                self.transmit.push_back(p);
                self.ack = Some((packet.id, data));
                self.phase = Phase::Done;
                self.deadline = None;
                self.decision = Some(decision.clone());
                self.events.push_back(CbcpEvent::Done(decision));
                Ok(())
            }
            Phase::Done => {
                // MS-CBCP §3.2.1.1: keep answering Responses so the Ack gets
                // through; only the one we acknowledged.
                let Some((id, data)) = &self.ack else {
                    return Ok(());
                };
                if packet.id != *id {
                    return Err(CbcpError::WrongIdentifier {
                        got: packet.id,
                        expected: *id,
                    });
                }
                let same = self.judge(packet.data).map(|c| {
                    let mut d = Vec::new();
                    c.write(&mut d);
                    d == *data
                });
                if same != Ok(true) {
                    return Err(CbcpError::NotAcceptable);
                }
                let mut p = Vec::new();
                write_packet(&mut p, code::CALLBACK_ACK, *id, data);
                self.transmit.push_back(p);
                Ok(())
            }
            Phase::Idle | Phase::Failed => Err(CbcpError::UnexpectedCode(packet.code)),
        }
    }

    /// One option, of an offered type, well formed.
    fn judge(&self, data: &[u8]) -> Result<CallbackOption, CbcpError> {
        let mut options = parse_callback_options(data)?;
        if options.len() != 1 {
            return Err(CbcpError::BadOption);
        }
        let chosen = options.pop().ok_or(CbcpError::BadOption)?;
        let c = &self.config;
        let offered = match &chosen {
            CallbackOption::NoCallback => {
                c.allow_no_callback || self.offer.first() == Some(&callback_type::NO_CALLBACK)
            }
            CallbackOption::UserNumber { number, .. } => c.allow_user_number && !number.is_empty(),
            CallbackOption::AdminNumber { .. } => c.allow_admin_number,
            CallbackOption::ListOfNumbers { .. } => false,
        };
        if offered {
            Ok(chosen)
        } else {
            Err(CbcpError::NotAcceptable)
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d && self.phase == Phase::Waiting => {
                self.deadline = None;
                self.retransmit(now);
            }
            _ => {}
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CbcpEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The decision, once the Callback-Ack was sent.
    pub fn decision(&self) -> Option<&CallbackDecision> {
        self.decision.as_ref()
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// What the caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackPreference {
    /// No callback; if the server imposes its administrator's number, take
    /// that.
    NoCallback,
    /// Callback to this number if the server allows it, else no callback.
    UserNumber { number: String, delay: u8 },
}

/// The caller side configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbcpClientConfig {
    pub preference: CallbackPreference,
    pub timing: CbcpTiming,
}

impl CbcpClientConfig {
    pub fn no_callback() -> Self {
        CbcpClientConfig {
            preference: CallbackPreference::NoCallback,
            timing: CbcpTiming::default(),
        }
    }

    /// Callback to `number` (at most [`MAX_NUMBER_LEN`] printable ASCII
    /// characters) after `delay` seconds.
    pub fn user_number(number: &str, delay: u8) -> Result<Self, CbcpError> {
        if number.is_empty() || !valid_number(number.as_bytes()) {
            return Err(CbcpError::BadNumber);
        }
        Ok(CbcpClientConfig {
            preference: CallbackPreference::UserNumber {
                number: number.to_owned(),
                delay,
            },
            timing: CbcpTiming::default(),
        })
    }
}

/// The caller side of CBCP (MS-CBCP §3.1).
#[derive(Debug)]
pub struct CbcpClient {
    config: CbcpClientConfig,
    phase: Phase,
    /// Identifier and data of our last Response.
    response: Option<(u8, Vec<u8>)>,
    chosen: Option<CallbackDecision>,
    sent: u32,
    deadline: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<CbcpEvent>,
}

impl CbcpClient {
    /// A caller waiting for the server's Request. A user number that is not
    /// valid (see [`CbcpClientConfig::user_number`]) is treated as no
    /// number.
    pub fn new(config: CbcpClientConfig) -> Self {
        CbcpClient {
            config,
            phase: Phase::Waiting,
            response: None,
            chosen: None,
            sent: 0,
            deadline: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our choice among the offered options (MS-CBCP §3.1.5.3).
    fn choose(&self, offered: &[CallbackOption]) -> Option<CallbackOption> {
        let has = |k: u8| offered.iter().any(|o| o.kind() == k);
        if let CallbackPreference::UserNumber { number, delay } = &self.config.preference {
            if has(callback_type::USER_NUMBER)
                && !number.is_empty()
                && valid_number(number.as_bytes())
            {
                return Some(CallbackOption::UserNumber {
                    delay: *delay,
                    number: number.clone(),
                });
            }
        }
        if has(callback_type::NO_CALLBACK) {
            return Some(CallbackOption::NoCallback);
        }
        let delay = match &self.config.preference {
            CallbackPreference::UserNumber { delay, .. } => *delay,
            CallbackPreference::NoCallback => 0,
        };
        if has(callback_type::ADMIN_NUMBER) {
            return Some(CallbackOption::AdminNumber { delay });
        }
        None
    }

    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) -> Result<(), CbcpError> {
        let packet = ControlPacket::parse(bytes)?;
        match (packet.code, self.phase) {
            (code::CALLBACK_REQUEST, Phase::Waiting) => {
                let offered = parse_callback_options(packet.data)?;
                if offered.is_empty() {
                    return Err(CbcpError::BadOption);
                }
                // A repeated Request (same identifier) or a new one (the
                // server retransmits with a new identifier): answer it.
                if let Some((id, data)) = &self.response {
                    if *id == packet.id {
                        let mut p = Vec::new();
                        write_packet(&mut p, code::CALLBACK_RESPONSE, *id, data);
                        self.transmit.push_back(p);
                        return Ok(());
                    }
                }
                let Some(chosen) = self.choose(&offered) else {
                    self.phase = Phase::Failed;
                    self.deadline = None;
                    self.events
                        .push_back(CbcpEvent::Failed(CbcpFailure::NoAcceptableOption));
                    return Err(CbcpError::NotAcceptable);
                };
                let mut data = Vec::new();
                chosen.write(&mut data);
                self.chosen = chosen.to_decision();
                self.response = Some((packet.id, data));
                self.sent = 0;
                self.send_response(now);
                Ok(())
            }
            (code::CALLBACK_ACK, Phase::Waiting) => {
                let Some((id, data)) = &self.response else {
                    return Err(CbcpError::UnexpectedCode(packet.code));
                };
                if packet.id != *id {
                    return Err(CbcpError::WrongIdentifier {
                        got: packet.id,
                        expected: *id,
                    });
                }
                // MS-CBCP §2.2.4.3: the Ack echoes our option.
                if packet.data != data.as_slice() {
                    return Err(CbcpError::NotAcceptable);
                }
                let decision = self.chosen.clone().unwrap_or(CallbackDecision::None);
                self.phase = Phase::Done;
                self.deadline = None;
                self.events.push_back(CbcpEvent::Done(decision));
                Ok(())
            }
            (c, _) => Err(CbcpError::UnexpectedCode(c)),
        }
    }

    fn send_response(&mut self, now: Instant) {
        let Some((id, data)) = &self.response else {
            return;
        };
        let mut p = Vec::new();
        write_packet(&mut p, code::CALLBACK_RESPONSE, *id, data);
        self.transmit.push_back(p);
        self.sent += 1;
        self.deadline = Some(now + self.config.timing.restart);
    }

    /// MS-CBCP §3.1.6: the caller retransmits its Response until the Ack
    /// arrives, then gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d && self.phase == Phase::Waiting => {
                self.deadline = None;
                if self.sent >= self.config.timing.max_transmissions {
                    self.phase = Phase::Failed;
                    self.events
                        .push_back(CbcpEvent::Failed(CbcpFailure::NoResponse));
                } else {
                    self.send_response(now);
                }
            }
            _ => {}
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CbcpEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The decision, once the Callback-Ack arrived.
    pub fn decision(&self) -> Option<&CallbackDecision> {
        if self.phase == Phase::Done {
            self.chosen.as_ref()
        } else {
            None
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions and failures read as words in end reasons and logs, and a
    /// peer's number cannot start a new log line.
    #[test]
    fn decisions_and_failures_read_as_words() {
        let user = CallbackDecision::UserNumber {
            number: "555\nINFO x".into(),
            delay: 5,
        };
        let reason = crate::link::DownReason::CallbackRequested(user).to_string();
        assert_eq!(
            reason,
            "callback requested: call back the user's number 555\\nINFO x after 5 s"
        );
        assert!(!reason.contains('\n') && !reason.contains('{'), "{reason}");
        assert_eq!(
            CallbackDecision::AdminNumber { delay: 0 }.to_string(),
            "call back the configured number after 0 s"
        );
        assert_eq!(
            CbcpFailure::NoAcceptableOption.to_string(),
            "no callback option this side may choose"
        );
    }

    fn events_s(s: &mut CbcpServer) -> Vec<CbcpEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn events_c(c: &mut CbcpClient) -> Vec<CbcpEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    /// Exchange packets until quiet; `drop` decides (by packet count) which
    /// packets are lost.
    fn pump(
        now: Instant,
        s: &mut CbcpServer,
        c: &mut CbcpClient,
        drop: &mut dyn FnMut(usize) -> bool,
    ) {
        let mut n = 0;
        for _ in 0..50 {
            let mut any = false;
            while let Some(p) = s.poll_transmit() {
                n += 1;
                any = true;
                if !drop(n) {
                    let _ = c.handle_packet(now, &p);
                }
            }
            while let Some(p) = c.poll_transmit() {
                n += 1;
                any = true;
                if !drop(n) {
                    let _ = s.handle_packet(now, &p);
                }
            }
            if !any {
                return;
            }
        }
        panic!("did not settle");
    }

    #[test]
    fn no_callback_exchange_matches_the_documented_trace() {
        let now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(now);
        let req = s.poll_transmit().unwrap();
        assert_eq!(req, vec![1, 1, 0, 6, 1, 2]);
        c.handle_packet(now, &req).unwrap();
        let resp = c.poll_transmit().unwrap();
        assert_eq!(resp, vec![2, 1, 0, 6, 1, 2]);
        s.handle_packet(now, &resp).unwrap();
        let ack = s.poll_transmit().unwrap();
        assert_eq!(ack, vec![3, 1, 0, 6, 1, 2]);
        c.handle_packet(now, &ack).unwrap();
        assert_eq!(
            events_s(&mut s),
            vec![CbcpEvent::Done(CallbackDecision::None)]
        );
        assert_eq!(
            events_c(&mut c),
            vec![CbcpEvent::Done(CallbackDecision::None)]
        );
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn user_number_callback() {
        let now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::user_number_allowed());
        let mut c =
            CbcpClient::new(CbcpClientConfig::user_number("+33 1 23 45 67 89", 12).unwrap());
        s.start(now);
        let req = s.poll_transmit().unwrap();
        // No-Callback, then user number with delay 0 and an empty number.
        assert_eq!(&req[4..], &[1, 2, 2, 5, 0, 1, 0]);
        c.handle_packet(now, &req).unwrap();
        pump(now, &mut s, &mut c, &mut |_| false);
        let want = CallbackDecision::UserNumber {
            number: "+33 1 23 45 67 89".into(),
            delay: 12,
        };
        assert_eq!(s.decision(), Some(&want));
        assert_eq!(c.decision(), Some(&want));
        assert_eq!(events_s(&mut s), vec![CbcpEvent::Done(want.clone())]);
        assert_eq!(events_c(&mut c), vec![CbcpEvent::Done(want)]);
    }

    #[test]
    fn client_wanting_callback_falls_back_when_not_offered() {
        let now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        let mut c = CbcpClient::new(CbcpClientConfig::user_number("555", 0).unwrap());
        s.start(now);
        pump(now, &mut s, &mut c, &mut |_| false);
        assert_eq!(s.decision(), Some(&CallbackDecision::None));
        assert_eq!(c.decision(), Some(&CallbackDecision::None));
    }

    #[test]
    fn client_without_number_fails_when_callback_is_mandatory() {
        let now = Instant::now();
        let config = CbcpServerConfig {
            allow_no_callback: false,
            ..CbcpServerConfig::user_number_allowed()
        };
        let mut s = CbcpServer::new(config);
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(now);
        pump(now, &mut s, &mut c, &mut |_| false);
        assert_eq!(
            events_c(&mut c),
            vec![CbcpEvent::Failed(CbcpFailure::NoAcceptableOption)]
        );
        assert!(!s.is_done());
    }

    #[test]
    fn admin_number_is_taken_when_imposed() {
        let now = Instant::now();
        let config = CbcpServerConfig {
            allow_no_callback: false,
            allow_admin_number: true,
            ..CbcpServerConfig::no_callback()
        };
        let mut s = CbcpServer::new(config);
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(now);
        pump(now, &mut s, &mut c, &mut |_| false);
        assert_eq!(
            s.decision(),
            Some(&CallbackDecision::AdminNumber { delay: 0 })
        );
        assert!(c.is_done());
    }

    #[test]
    fn lost_request_is_retransmitted_with_a_new_identifier() {
        let start = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(start);
        let lost = s.poll_transmit().unwrap();
        assert_eq!(lost[1], 1);
        let t = s.poll_timeout().unwrap();
        assert_eq!(t, start + Duration::from_secs(3));
        s.handle_timeout(t);
        let again = s.poll_transmit().unwrap();
        assert_eq!(again[1], 2);
        c.handle_packet(t, &again).unwrap();
        pump(t, &mut s, &mut c, &mut |_| false);
        assert!(s.is_done() && c.is_done());
    }

    #[test]
    fn lost_response_and_lost_ack_are_recovered() {
        let now = Instant::now();
        // Lose the Response.
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(now);
        pump(now, &mut s, &mut c, &mut |n| n == 2);
        assert!(!s.is_done() && !c.is_done());
        // The server's timer fires first: new Request id 2, answered.
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        pump(t, &mut s, &mut c, &mut |_| false);
        assert!(s.is_done() && c.is_done());

        // Lose the Ack: the client retransmits its Response, the server
        // (Done) repeats the Ack.
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        let mut c = CbcpClient::new(CbcpClientConfig::no_callback());
        s.start(now);
        pump(now, &mut s, &mut c, &mut |n| n == 3);
        assert!(s.is_done() && !c.is_done());
        let t = c.poll_timeout().unwrap();
        c.handle_timeout(t);
        pump(t, &mut s, &mut c, &mut |_| false);
        assert!(c.is_done());
        assert_eq!(events_s(&mut s).len(), 1, "one Done only");
        assert_eq!(
            events_c(&mut c),
            vec![CbcpEvent::Done(CallbackDecision::None)]
        );
    }

    #[test]
    fn duplicate_request_gets_the_same_response() {
        let now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::user_number_allowed());
        let mut c = CbcpClient::new(CbcpClientConfig::user_number("123", 5).unwrap());
        s.start(now);
        let req = s.poll_transmit().unwrap();
        c.handle_packet(now, &req).unwrap();
        let r1 = c.poll_transmit().unwrap();
        c.handle_packet(now, &req).unwrap();
        let r2 = c.poll_transmit().unwrap();
        assert_eq!(r1, r2);
        s.handle_packet(now, &r1).unwrap();
        let ack = s.poll_transmit().unwrap();
        // A duplicate Response after the Ack: the Ack is repeated.
        s.handle_packet(now, &r2).unwrap();
        assert_eq!(s.poll_transmit().unwrap(), ack);
        c.handle_packet(now, &ack).unwrap();
        c.handle_packet(now, &ack).unwrap_err();
        assert_eq!(events_c(&mut c).len(), 1);
        assert_eq!(events_s(&mut s).len(), 1);
    }

    #[test]
    fn unoffered_or_bad_response_triggers_a_new_request() {
        let now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        s.start(now);
        let _ = s.poll_transmit();
        // User number not offered.
        let mut data = Vec::new();
        CallbackOption::UserNumber {
            delay: 0,
            number: "1".into(),
        }
        .write(&mut data);
        let mut p = Vec::new();
        write_packet(&mut p, code::CALLBACK_RESPONSE, 1, &data);
        assert_eq!(s.handle_packet(now, &p), Err(CbcpError::NotAcceptable));
        let req = s.poll_transmit().unwrap();
        assert_eq!((req[0], req[1]), (code::CALLBACK_REQUEST, 2));
        // Wrong identifier: dropped silently.
        let mut p = Vec::new();
        write_packet(&mut p, code::CALLBACK_RESPONSE, 9, &[1, 2]);
        assert!(s.handle_packet(now, &p).is_err());
        assert!(s.poll_transmit().is_none());
        // Over-long number.
        let mut opt = vec![2, 0, 0, 1];
        opt.extend(std::iter::repeat_n(b'1', MAX_NUMBER_LEN + 1));
        opt.push(0);
        opt[1] = opt.len() as u8;
        assert_eq!(parse_callback_options(&opt), Err(CbcpError::BadNumber));
    }

    #[test]
    fn gives_up_after_max_transmissions() {
        let mut now = Instant::now();
        let mut s = CbcpServer::new(CbcpServerConfig::no_callback());
        s.start(now);
        let mut sent = 0;
        while s.poll_transmit().is_some() {
            sent += 1;
            let Some(t) = s.poll_timeout() else { break };
            now = t;
            s.handle_timeout(now);
        }
        assert_eq!(sent, 10);
        assert_eq!(
            events_s(&mut s),
            vec![CbcpEvent::Failed(CbcpFailure::NoResponse)]
        );
    }

    #[test]
    fn bad_client_numbers_are_refused() {
        assert!(CbcpClientConfig::user_number("", 0).is_err());
        assert!(CbcpClientConfig::user_number("12\u{0}3", 0).is_err());
        assert!(CbcpClientConfig::user_number(&"9".repeat(65), 0).is_err());
        assert!(CbcpClientConfig::user_number(&"9".repeat(64), 0).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn random_packets_never_panic(packets in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..20), small in proptest::bool::ANY) {
            let mut now = Instant::now();
            let mut s = CbcpServer::new(CbcpServerConfig::user_number_allowed());
            let mut c = CbcpClient::new(CbcpClientConfig::user_number("42", 1).unwrap());
            s.start(now);
            for mut p in packets {
                if small && p.len() >= 4 {
                    // Make the length field right more often.
                    let len = p.len() as u16;
                    p[2..4].copy_from_slice(&len.to_be_bytes());
                    p[0] = (p[0] % 4).max(1);
                }
                let _ = s.handle_packet(now, &p);
                let _ = c.handle_packet(now, &p);
                now += Duration::from_secs(1);
                s.handle_timeout(now);
                c.handle_timeout(now);
                while let Some(out) = s.poll_transmit() {
                    proptest::prop_assert!(ControlPacket::parse(&out).is_ok());
                }
                while let Some(out) = c.poll_transmit() {
                    proptest::prop_assert!(ControlPacket::parse(&out).is_ok());
                }
            }
        }
    }
}
