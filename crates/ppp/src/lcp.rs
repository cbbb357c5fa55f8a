//! The Link Control Protocol (RFC 1661 §5–6) with the extensions real
//! Windows peers use: Callback (RFC 1570 §2.3 / MS-CBCP), Identification
//! and Time-Remaining (RFC 1570 §2.1–2.2).

use std::collections::VecDeque;
use std::time::Instant;

use rand::RngCore;

use crate::auth::AuthProtocol;
use crate::fsm::{ExtraCode, Negotiator, State, Verdict};
use crate::packet::{code, write_option, write_packet, ConfigOption, ControlPacket};

/// LCP configuration option types (RFC 1661 §6, RFC 1570, RFC 1990).
pub mod option {
    pub const MRU: u8 = 1;
    pub const ACCM: u8 = 2;
    pub const AUTH_PROTOCOL: u8 = 3;
    pub const QUALITY_PROTOCOL: u8 = 4;
    pub const MAGIC_NUMBER: u8 = 5;
    pub const PFC: u8 = 7;
    pub const ACFC: u8 = 8;
    /// RFC 1570 §2.3.
    pub const CALLBACK: u8 = 13;
    /// RFC 1990 §5.1.1 (multilink: not supported, rejected).
    pub const MRRU: u8 = 17;
    /// RFC 1990 §5.1.3.
    pub const ENDPOINT_DISCRIMINATOR: u8 = 19;
    /// RFC 2125 (BACP link discriminator: rejected).
    pub const LINK_DISCRIMINATOR: u8 = 23;
}

/// RFC 1570 §2.3 callback operation 6: "Callback Control Protocol"
/// negotiated after authentication (what Windows clients send).
pub const CALLBACK_OPERATION_CBCP: u8 = 6;

/// RFC 1661 §6.1: the MRU every implementation must accept.
pub const DEFAULT_MRU: u16 = 1500;
/// The smallest MRU we agree to send with (RFC 791's 576 would do for IP,
/// but tunnels only ever need room for a control packet).
const MIN_MRU: u16 = 128;

/// How many Configure-Requests carrying our own magic number we tolerate
/// before declaring the link looped back (RFC 1661 §6.4).
const MAX_LOOPBACK: u32 = 5;

/// What the server does with the peer's Callback option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackPolicy {
    /// Reject the option: the peer goes on without callback.
    Reject,
    /// Accept CBCP (operation 6): the Callback phase follows authentication.
    AcceptCbcp,
}

/// What we want from LCP, in either role.
#[derive(Debug, Clone)]
pub struct LcpConfig {
    /// The MRU we ask the peer to respect (sent only when not 1500).
    pub mru: u16,
    /// The async control character map we ask for (serial links only).
    pub accm: Option<u32>,
    /// Authentication protocols we require from the peer, best first
    /// (authenticator role). Empty: we do not ask the peer to authenticate.
    pub require_auth: Vec<AuthProtocol>,
    /// Authentication protocols we can authenticate ourselves with, best
    /// first (peer role). Empty: we refuse to authenticate.
    pub accept_auth: Vec<AuthProtocol>,
    /// Ask for and accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Ask for and accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Ask the peer for callback with CBCP (what Windows clients do).
    pub request_callback: bool,
    /// What to do when the peer asks for callback.
    pub callback_policy: CallbackPolicy,
    /// Endpoint Discriminator to announce (RFC 1990 §5.1.3: class, address).
    /// It identifies this system without enabling multilink; Windows RRAS
    /// sends one, and peers that do not know it simply reject it.
    pub endpoint_discriminator: Option<(u8, Vec<u8>)>,
}

impl LcpConfig {
    /// A server's defaults: EAP (for EAP-MSCHAPv2, what Windows uses by
    /// default), then MS-CHAPv2; CBCP accepted so Windows clients that send
    /// the Callback option see the behaviour they expect.
    pub fn server() -> Self {
        LcpConfig {
            mru: DEFAULT_MRU,
            accm: None,
            require_auth: vec![AuthProtocol::Eap, AuthProtocol::MsChapV2],
            accept_auth: Vec::new(),
            pfc: true,
            acfc: true,
            request_callback: false,
            callback_policy: CallbackPolicy::AcceptCbcp,
            endpoint_discriminator: None,
        }
    }

    /// A client's defaults: authenticate with anything but PAP unless told.
    pub fn client() -> Self {
        LcpConfig {
            mru: DEFAULT_MRU,
            accm: None,
            require_auth: Vec::new(),
            accept_auth: vec![
                AuthProtocol::Eap,
                AuthProtocol::MsChapV2,
                AuthProtocol::MsChapV1,
                AuthProtocol::ChapMd5,
            ],
            pfc: true,
            acfc: true,
            request_callback: false,
            callback_policy: CallbackPolicy::Reject,
            endpoint_discriminator: None,
        }
    }
}

/// Things LCP learned outside option negotiation, for the Link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LcpEvent {
    /// The peer rejected one of our protocols (RFC 1661 §5.7).
    ProtocolRejected(u16),
    /// An Echo-Reply arrived (keepalive answered).
    EchoReply,
    /// Identification message from the peer (RFC 1570 §2.1).
    Identification(String),
    /// The peer says the link ends in this many seconds (RFC 1570 §2.2).
    TimeRemaining(u32, String),
    /// Our own magic number came back: the link is looped back.
    LoopedBack,
}

/// The result of the last negotiation, valid once LCP is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LcpNegotiated {
    /// The MRU the peer asked us to respect when sending.
    pub peer_mru: u16,
    /// The MRU the peer acknowledged for our receive side.
    pub our_mru: u16,
    /// The control-character map for our transmissions (the peer's ACCM).
    pub tx_accm: u32,
    /// The map the peer honours when sending to us.
    pub rx_accm: u32,
    /// The protocol the peer authenticates with (authenticator role).
    pub auth_required: Option<AuthProtocol>,
    /// The protocol we authenticate with (peer role).
    pub auth_to_peer: Option<AuthProtocol>,
    pub our_magic: u32,
    pub peer_magic: u32,
    /// We may compress the protocol field of what we send.
    pub tx_pfc: bool,
    /// We may omit address and control fields of what we send.
    pub tx_acfc: bool,
    /// The peer asked for CBCP callback and we agreed.
    pub callback: bool,
    /// We asked for CBCP callback and the peer agreed.
    pub callback_requested: bool,
}

/// The LCP negotiator; wrap it in [`crate::fsm::Fsm`].
pub struct Lcp {
    config: LcpConfig,
    rng: Box<dyn RngCore + Send>,
    // what we will request
    req_mru: Option<u16>,
    req_accm: Option<u32>,
    req_auth: Option<usize>,
    auth_refused: bool,
    req_magic: Option<u32>,
    req_pfc: bool,
    req_acfc: bool,
    req_callback: bool,
    req_endpoint: bool,
    loopback_count: u32,
    negotiated: LcpNegotiated,
    events: VecDeque<LcpEvent>,
}

impl std::fmt::Debug for Lcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lcp")
            .field("config", &self.config)
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

impl Lcp {
    pub fn new(config: LcpConfig, rng: Box<dyn RngCore + Send>) -> Self {
        let mut lcp = Lcp {
            config,
            rng,
            req_mru: None,
            req_accm: None,
            req_auth: None,
            auth_refused: false,
            req_magic: None,
            req_pfc: false,
            req_acfc: false,
            req_callback: false,
            req_endpoint: false,
            loopback_count: 0,
            negotiated: LcpNegotiated::default(),
            events: VecDeque::new(),
        };
        lcp.reset();
        lcp
    }

    pub fn config(&self) -> &LcpConfig {
        &self.config
    }

    /// What was negotiated; meaningful once the automaton is Opened.
    pub fn negotiated(&self) -> &LcpNegotiated {
        &self.negotiated
    }

    /// True when the peer refused every authentication protocol we require.
    pub fn auth_refused(&self) -> bool {
        self.auth_refused
    }

    pub fn poll_event(&mut self) -> Option<LcpEvent> {
        self.events.pop_front()
    }

    /// Data of an Echo-Request: our magic number (RFC 1661 §5.8).
    pub fn echo_data(&self) -> [u8; 4] {
        self.negotiated.our_magic.to_be_bytes()
    }

    /// Data of an Identification packet (RFC 1570 §2.1): magic + message.
    pub fn identification_data(&self, message: &str) -> Vec<u8> {
        let mut data = self.negotiated.our_magic.to_be_bytes().to_vec();
        data.extend_from_slice(&message.as_bytes()[..message.len().min(1400)]);
        data
    }

    /// Data of a Time-Remaining packet (RFC 1570 §2.2).
    pub fn time_remaining_data(&self, seconds: u32, message: &str) -> Vec<u8> {
        let mut data = self.negotiated.our_magic.to_be_bytes().to_vec();
        data.extend_from_slice(&seconds.to_be_bytes());
        data.extend_from_slice(&message.as_bytes()[..message.len().min(1400)]);
        data
    }

    fn new_magic(&mut self) -> u32 {
        // RFC 1661 §6.4: zero is not a valid magic number.
        loop {
            let m = self.rng.next_u32();
            if m != 0 {
                return m;
            }
        }
    }

    fn wanted_auth(&self) -> Option<AuthProtocol> {
        self.req_auth
            .and_then(|i| self.config.require_auth.get(i).copied())
    }
}

fn be_u16(data: &[u8]) -> Option<u16> {
    <[u8; 2]>::try_from(data).ok().map(u16::from_be_bytes)
}

fn be_u32(data: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(data).ok().map(u32::from_be_bytes)
}

impl Negotiator for Lcp {
    fn reset(&mut self) {
        self.req_mru = (self.config.mru != DEFAULT_MRU).then_some(self.config.mru);
        self.req_accm = self.config.accm;
        self.req_auth = (!self.config.require_auth.is_empty()).then_some(0);
        self.auth_refused = false;
        self.req_magic = Some(self.new_magic());
        self.req_pfc = self.config.pfc;
        self.req_acfc = self.config.acfc;
        self.req_callback = self.config.request_callback;
        self.req_endpoint = self.config.endpoint_discriminator.is_some();
        self.loopback_count = 0;
        self.negotiated = LcpNegotiated {
            peer_mru: DEFAULT_MRU,
            our_mru: DEFAULT_MRU,
            tx_accm: 0xffff_ffff,
            rx_accm: 0xffff_ffff,
            ..LcpNegotiated::default()
        };
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        // The order Windows uses: MRU, ACCM, Auth, Magic, PFC, ACFC, Callback.
        if let Some(mru) = self.req_mru {
            write_option(out, option::MRU, &mru.to_be_bytes());
        }
        if let Some(accm) = self.req_accm {
            write_option(out, option::ACCM, &accm.to_be_bytes());
        }
        if let Some(auth) = self.wanted_auth() {
            write_option(out, option::AUTH_PROTOCOL, auth.option_data());
        }
        if let Some(magic) = self.req_magic {
            write_option(out, option::MAGIC_NUMBER, &magic.to_be_bytes());
        }
        if self.req_pfc {
            write_option(out, option::PFC, &[]);
        }
        if self.req_acfc {
            write_option(out, option::ACFC, &[]);
        }
        if self.req_callback {
            write_option(out, option::CALLBACK, &[CALLBACK_OPERATION_CBCP]);
        }
        if let (true, Some((class, address))) =
            (self.req_endpoint, &self.config.endpoint_discriminator)
        {
            let mut data = Vec::with_capacity(1 + address.len());
            data.push(*class);
            data.extend_from_slice(&address[..address.len().min(20)]);
            write_option(out, option::ENDPOINT_DISCRIMINATOR, &data);
        }
    }

    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
        let mut nak = Vec::new();
        let mut reject = Vec::new();
        // Values are applied only if the whole request is acknowledged.
        let mut peer_mru = DEFAULT_MRU;
        let mut tx_accm = 0xffff_ffff;
        let mut auth_to_peer = None;
        let mut peer_magic = 0;
        let mut tx_pfc = false;
        let mut tx_acfc = false;
        let mut callback = false;
        for opt in options {
            match opt.kind {
                option::MRU => match be_u16(opt.data) {
                    Some(mru) if mru >= MIN_MRU => peer_mru = mru,
                    Some(_) => write_option(&mut nak, option::MRU, &MIN_MRU.to_be_bytes()),
                    None => opt.write(&mut reject),
                },
                option::ACCM => match be_u32(opt.data) {
                    Some(map) => tx_accm = map,
                    None => opt.write(&mut reject),
                },
                option::AUTH_PROTOCOL => {
                    let offered = AuthProtocol::from_option_data(opt.data);
                    match offered {
                        Some(p) if self.config.accept_auth.contains(&p) => auth_to_peer = Some(p),
                        _ => match self.config.accept_auth.first() {
                            // RFC 1661 §6.2: Nak with the protocol we want.
                            Some(p) => {
                                write_option(&mut nak, option::AUTH_PROTOCOL, p.option_data())
                            }
                            None => opt.write(&mut reject),
                        },
                    }
                }
                option::MAGIC_NUMBER => match be_u32(opt.data) {
                    Some(0) => {
                        let m = self.new_magic();
                        write_option(&mut nak, option::MAGIC_NUMBER, &m.to_be_bytes());
                    }
                    Some(m) if Some(m) == self.req_magic => {
                        // RFC 1661 §6.4: possibly looped back. Nak with a
                        // different number and pick a new one for us too.
                        self.loopback_count += 1;
                        if self.loopback_count >= MAX_LOOPBACK {
                            self.events.push_back(LcpEvent::LoopedBack);
                        }
                        let theirs = self.new_magic();
                        write_option(&mut nak, option::MAGIC_NUMBER, &theirs.to_be_bytes());
                        self.req_magic = Some(self.new_magic());
                    }
                    Some(m) => peer_magic = m,
                    None => opt.write(&mut reject),
                },
                option::PFC if opt.data.is_empty() && self.config.pfc => tx_pfc = true,
                option::ACFC if opt.data.is_empty() && self.config.acfc => tx_acfc = true,
                option::CALLBACK
                    if opt.data.first() == Some(&CALLBACK_OPERATION_CBCP)
                        && self.config.callback_policy == CallbackPolicy::AcceptCbcp =>
                {
                    callback = true
                }
                // Quality protocols, multilink, discriminators, callback
                // operations other than CBCP and anything unknown.
                _ => opt.write(&mut reject),
            }
        }
        if !reject.is_empty() {
            return Verdict::Reject(reject);
        }
        if !nak.is_empty() {
            return Verdict::Nak(nak);
        }
        let n = &mut self.negotiated;
        n.peer_mru = peer_mru;
        n.tx_accm = tx_accm;
        n.auth_to_peer = auth_to_peer;
        n.peer_magic = peer_magic;
        n.tx_pfc = tx_pfc;
        n.tx_acfc = tx_acfc;
        n.callback = callback;
        Verdict::Ack
    }

    fn on_ack(&mut self) {
        let auth = self.wanted_auth();
        let n = &mut self.negotiated;
        n.our_mru = self.req_mru.unwrap_or(DEFAULT_MRU);
        n.rx_accm = self.req_accm.unwrap_or(0xffff_ffff);
        n.auth_required = auth;
        n.our_magic = self.req_magic.unwrap_or(0);
        n.callback_requested = self.req_callback;
    }

    fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
        for opt in options {
            match opt.kind {
                option::MRU => {
                    if let Some(mru) = be_u16(opt.data) {
                        // Accept a smaller MRU; never go below our floor.
                        self.req_mru = Some(mru.clamp(MIN_MRU, DEFAULT_MRU));
                    }
                }
                option::ACCM => {
                    if let Some(map) = be_u32(opt.data) {
                        // RFC 1662 §7.1: the union of both maps is safe.
                        self.req_accm = Some(self.req_accm.unwrap_or(0) | map);
                    }
                }
                option::AUTH_PROTOCOL => {
                    let suggested = AuthProtocol::from_option_data(opt.data);
                    let list = &self.config.require_auth;
                    if let Some(i) = suggested.and_then(|p| list.iter().position(|&q| q == p)) {
                        self.req_auth = Some(i);
                    } else if let Some(cur) = self.req_auth {
                        // Try the next protocol we allow; after the last one
                        // the peer and we have nothing in common.
                        if cur + 1 < list.len() {
                            self.req_auth = Some(cur + 1);
                        } else {
                            self.auth_refused = true;
                        }
                    }
                }
                option::MAGIC_NUMBER => {
                    let m = self.new_magic();
                    self.req_magic = Some(m);
                }
                // RFC 1661 §5.3: a Nak may carry options we did not send,
                // inviting us to ask for them; we ask only for what we want.
                _ => {}
            }
        }
    }

    fn on_reject(&mut self, options: &[ConfigOption<'_>]) {
        for opt in options {
            match opt.kind {
                option::MRU => self.req_mru = None,
                option::ACCM => self.req_accm = None,
                option::AUTH_PROTOCOL => {
                    // The peer will not authenticate: remember, the Link
                    // refuses the link when it requires authentication.
                    if self.req_auth.is_some() {
                        self.auth_refused = true;
                    }
                    self.req_auth = None;
                }
                option::MAGIC_NUMBER => self.req_magic = None,
                option::PFC => self.req_pfc = false,
                option::ACFC => self.req_acfc = false,
                option::CALLBACK => self.req_callback = false,
                option::ENDPOINT_DISCRIMINATOR => self.req_endpoint = false,
                _ => {}
            }
        }
    }

    fn handle_extra(
        &mut self,
        _now: Instant,
        state: State,
        packet: &ControlPacket<'_>,
        out: &mut VecDeque<Vec<u8>>,
    ) -> ExtraCode {
        match packet.code {
            code::PROTOCOL_REJECT => {
                if state == State::Opened {
                    if let Some(protocol) = packet.data.get(..2).and_then(be_u16) {
                        self.events.push_back(LcpEvent::ProtocolRejected(protocol));
                    }
                }
                ExtraCode::Handled
            }
            code::ECHO_REQUEST => {
                // RFC 1661 §5.8: answered only in Opened, with our magic.
                if state == State::Opened {
                    let their_magic = packet.data.get(..4).and_then(be_u32);
                    if their_magic.is_some_and(|m| m != 0 && m == self.negotiated.our_magic) {
                        self.events.push_back(LcpEvent::LoopedBack);
                        return ExtraCode::Handled;
                    }
                    let mut data = self.negotiated.our_magic.to_be_bytes().to_vec();
                    if packet.data.len() > 4 {
                        let rest = &packet.data[4..];
                        data.extend_from_slice(&rest[..rest.len().min(1400)]);
                    }
                    let mut reply = Vec::with_capacity(4 + data.len());
                    write_packet(&mut reply, code::ECHO_REPLY, packet.id, &data);
                    out.push_back(reply);
                }
                ExtraCode::Handled
            }
            code::ECHO_REPLY => {
                if state == State::Opened {
                    let magic = packet.data.get(..4).and_then(be_u32);
                    if magic.is_some_and(|m| m != 0 && m == self.negotiated.our_magic) {
                        self.events.push_back(LcpEvent::LoopedBack);
                    } else {
                        self.events.push_back(LcpEvent::EchoReply);
                    }
                }
                ExtraCode::Handled
            }
            code::DISCARD_REQUEST => ExtraCode::Handled,
            code::IDENTIFICATION => {
                if let Some(message) = packet.data.get(4..) {
                    let message = &message[..message.len().min(256)];
                    self.events.push_back(LcpEvent::Identification(
                        String::from_utf8_lossy(message).into_owned(),
                    ));
                }
                ExtraCode::Handled
            }
            code::TIME_REMAINING => {
                if let Some(seconds) = packet.data.get(4..8).and_then(be_u32) {
                    let message = &packet.data[8..packet.data.len().min(8 + 256)];
                    self.events.push_back(LcpEvent::TimeRemaining(
                        seconds,
                        String::from_utf8_lossy(message).into_owned(),
                    ));
                }
                ExtraCode::Handled
            }
            _ => ExtraCode::Unknown,
        }
    }

    /// RFC 1661 §5.6: a rejected Echo, Discard, Identification or
    /// Time-Remaining only loses that feature.
    fn code_reject_is_fatal(&self, code: u8) -> bool {
        code <= code::PROTOCOL_REJECT
    }
}

#[cfg(test)]
mod tests;
