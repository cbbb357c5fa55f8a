//! CCP, the Compression Control Protocol (RFC 1962), used only to negotiate
//! MPPE encryption (RFC 3078 option 18, 56-bit keys from RFC 3079), as a
//! [`Negotiator`] for the RFC 1661 automaton in [`crate::fsm`].
//!
//! # MPPE negotiation (RFC 3078 §2)
//!
//! The option carries 4 octets of Supported Bits ([`bits`]): the session
//! key strengths L (40-bit), M (56-bit) and S (128-bit), H (stateless
//! mode), C (MPPC compression, which we never do) and D (obsolete).
//!
//! * Our Configure-Request offers every strength we allow, plus H when we
//!   want stateless mode (RFC 3078 §2: the initial request lists the
//!   initial capabilities).
//! * A peer's request with several strengths, with a strength we do not
//!   allow, with C or D or unknown bits, or in a mode we do not accept is
//!   Nak'd with one single strength bit (the strongest both allow) and the
//!   mode we want; a request with exactly that is Acked.
//! * A Nak of our request is answered with the single strength it names (the
//!   strongest of those we allow, if several) and its mode, except that a
//!   side wanting stateless keeps asking for H; a Nak naming no strength we
//!   allow, or a Reject, means MPPE cannot be negotiated.
//! * Stateless mode is used when either side wants it: a side that wants
//!   stateless always accepts H, and Naks a request without H.
//! * A side that wants stateful mode ([`CcpConfig::stateful`]) requests it
//!   (no H) and Naks a peer's first request with H once, asking for
//!   stateful; if the peer asks for H again (or Naks ours with H), it
//!   accepts stateless. This is the only way to reach stateful mode with
//!   pppd, which always requests H and turns to stateful only when Nak'd
//!   (pppd's ccp.c, with `mppe-stateful`).
//!
//! Stateful mode is an explicit opt-in, never a fallback: pppd without
//! `mppe-stateful` answers any request or Nak without H by closing the
//! link ("Refusing MPPE stateful mode offered by peer", then "MPPE
//! required but peer negotiation failed"), so a side that merely *allowed*
//! stateful and asked for it would lose every such client.
//!
//! Both sides apply the same rules, so both directions end with the same
//! strength (the strongest common one) and the same mode; [`Ccp::negotiated`]
//! only reports a result when they do.
//!
//! # Resets
//!
//! In stateful mode the decryptor asks for a key resynchronization with a
//! CCP Reset-Request: the Link calls [`request_reset`] (i.e.
//! `fsm.send_extra(code::RESET_REQUEST, &[])`). A Reset-Request from the
//! peer is answered at once with a Reset-Ack of the same Identifier
//! (RFC 1962 §2.2) and sets [`Ccp::take_reset_requested`]; the encryptor
//! then flushes (sets the A bit on its next packet, RFC 3078 §3). The
//! flushed bit alone resynchronises MPPE, but Linux needs the Reset-Ack
//! too: after a decryption error ppp_generic passes every received MPPE
//! frame to pppd undecrypted until a Reset-Ack arrives (its SC_DC_ERROR
//! state), so without one its receive direction stays dead for good. The
//! Reset-Ack goes out before the flushed packet, so Linux decrypts again
//! in time to see it. A Reset-Ack received is accepted silently.

use std::collections::VecDeque;
use std::time::Instant;

use crate::fsm::{ExtraCode, Fsm, Negotiator, State, Verdict};
use crate::packet::{code, write_option, ConfigOption, ControlPacket};

pub use crate::mppe::MppeStrength;

/// PPP protocol number of CCP (RFC 1962 §2).
pub const PROTOCOL: u16 = 0x80FD;

/// CCP option types (RFC 1962 §4 and the PPP number registry). All but
/// [`option::MPPE`] are rejected.
pub mod option {
    pub const OUI: u8 = 0;
    pub const PREDICTOR_1: u8 = 1;
    pub const PREDICTOR_2: u8 = 2;
    pub const PUDDLE_JUMPER: u8 = 3;
    pub const HP_PPC: u8 = 16;
    pub const STAC_LZS: u8 = 17;
    /// RFC 3078 §2 (and RFC 2118 §2 for MPPC): MPPE/MPPC Supported Bits.
    pub const MPPE: u8 = 18;
    pub const GANDALF_FZA: u8 = 19;
    pub const V42BIS: u8 = 20;
    /// RFC 1977.
    pub const BSD_COMPRESS: u8 = 21;
    pub const LZS_DCP: u8 = 23;
    /// RFC 1979.
    pub const DEFLATE: u8 = 26;
}

/// RFC 3078 §2 Supported Bits (the 4 octets read most significant first);
/// M is defined by RFC 3079 / RFC 3078 §2 for 56-bit keys.
pub mod bits {
    /// MPPC compression (RFC 2118): never done here.
    pub const C: u32 = 0x0000_0001;
    /// Obsolete; must be clear.
    pub const D: u32 = 0x0000_0010;
    /// 40-bit session keys.
    pub const L: u32 = 0x0000_0020;
    /// 128-bit session keys.
    pub const S: u32 = 0x0000_0040;
    /// 56-bit session keys.
    pub const M: u32 = 0x0000_0080;
    /// Stateless ("history-less") mode: new key for every packet.
    pub const H: u32 = 0x0100_0000;
    /// The strength bits.
    pub const STRENGTHS: u32 = L | M | S;
}

/// The Supported-Bits bit of a strength.
pub fn strength_bit(strength: MppeStrength) -> u32 {
    match strength {
        MppeStrength::Bits40 => bits::L,
        MppeStrength::Bits56 => bits::M,
        MppeStrength::Bits128 => bits::S,
    }
}

/// A set of MPPE strengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Strengths {
    pub bits40: bool,
    pub bits56: bool,
    pub bits128: bool,
}

impl Strengths {
    pub const NONE: Strengths = Strengths {
        bits40: false,
        bits56: false,
        bits128: false,
    };
    pub const ALL: Strengths = Strengths {
        bits40: true,
        bits56: true,
        bits128: true,
    };
    pub const ONLY_128: Strengths = Strengths {
        bits40: false,
        bits56: false,
        bits128: true,
    };

    pub fn of(strengths: &[MppeStrength]) -> Self {
        let mut set = Strengths::NONE;
        for s in strengths {
            match s {
                MppeStrength::Bits40 => set.bits40 = true,
                MppeStrength::Bits56 => set.bits56 = true,
                MppeStrength::Bits128 => set.bits128 = true,
            }
        }
        set
    }

    pub fn contains(&self, strength: MppeStrength) -> bool {
        match strength {
            MppeStrength::Bits40 => self.bits40,
            MppeStrength::Bits56 => self.bits56,
            MppeStrength::Bits128 => self.bits128,
        }
    }

    pub fn is_empty(&self) -> bool {
        !(self.bits40 || self.bits56 || self.bits128)
    }

    /// The strength bits of the set.
    pub fn mask(&self) -> u32 {
        let mut m = 0;
        if self.bits40 {
            m |= bits::L;
        }
        if self.bits56 {
            m |= bits::M;
        }
        if self.bits128 {
            m |= bits::S;
        }
        m
    }
}

/// The strongest strength among the strength bits of `mask`.
fn strongest(mask: u32) -> Option<MppeStrength> {
    if mask & bits::S != 0 {
        Some(MppeStrength::Bits128)
    } else if mask & bits::M != 0 {
        Some(MppeStrength::Bits56)
    } else if mask & bits::L != 0 {
        Some(MppeStrength::Bits40)
    } else {
        None
    }
}

/// The single strength of `mask`, if it names exactly one.
fn single(mask: u32) -> Option<MppeStrength> {
    let s = mask & bits::STRENGTHS;
    if s.count_ones() == 1 {
        strongest(s)
    } else {
        None
    }
}

/// What CCP negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcpConfig {
    /// MPPE strengths we accept. Empty: no MPPE (CCP then negotiates
    /// nothing and rejects everything).
    pub allowed: Strengths,
    /// Whether stateful mode is acceptable; if not, only stateless.
    pub allow_stateful: bool,
    /// Ask for stateless mode (when stateful is allowed too).
    pub prefer_stateless: bool,
    /// MPPE must be negotiated: see [`Ccp::negotiation_failed`].
    pub required: bool,
}

impl CcpConfig {
    /// No MPPE at all.
    pub fn disabled() -> Self {
        CcpConfig {
            allowed: Strengths::NONE,
            allow_stateful: true,
            prefer_stateless: false,
            required: false,
        }
    }

    /// MPPE with every strength and mode, stateless preferred, optional.
    pub fn optional() -> Self {
        CcpConfig {
            allowed: Strengths::ALL,
            allow_stateful: true,
            prefer_stateless: true,
            required: false,
        }
    }

    /// MPPE required, 128-bit stateless only.
    pub fn require_128_stateless() -> Self {
        CcpConfig {
            allowed: Strengths::ONLY_128,
            allow_stateful: false,
            prefer_stateless: true,
            required: true,
        }
    }

    /// MPPE required, 128-bit, stateful mode asked for (stateless still
    /// accepted from a peer that insists on it). See the module
    /// documentation: an explicit opt-in, pppd hangs up on it unless it
    /// runs with `mppe-stateful`.
    pub fn require_128_stateful() -> Self {
        CcpConfig {
            allowed: Strengths::ONLY_128,
            allow_stateful: true,
            prefer_stateless: false,
            required: true,
        }
    }

    /// Whether this configuration asks for stateful mode.
    pub fn stateful(&self) -> bool {
        !self.wants_stateless()
    }

    fn wants_stateless(&self) -> bool {
        self.prefer_stateless || !self.allow_stateful
    }
}

impl Default for CcpConfig {
    fn default() -> Self {
        CcpConfig::optional()
    }
}

/// The MPPE settings both directions agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MppeNegotiated {
    pub strength: MppeStrength,
    pub stateless: bool,
}

impl MppeNegotiated {
    /// The option value (Supported Bits) of these settings.
    pub fn bits(&self) -> u32 {
        strength_bit(self.strength) | if self.stateless { bits::H } else { 0 }
    }

    fn from_bits(value: u32) -> Option<Self> {
        Some(MppeNegotiated {
            strength: single(value)?,
            stateless: value & bits::H != 0,
        })
    }

    /// The same settings in the data engine's type.
    pub fn settings(&self) -> crate::mppe::MppeSettings {
        crate::mppe::MppeSettings {
            strength: self.strength,
            stateless: self.stateless,
        }
    }
}

/// The CCP negotiator.
#[derive(Debug, Clone)]
pub struct Ccp {
    config: CcpConfig,
    /// Our current MPPE option value, when we still send it.
    offer: Option<u32>,
    /// The MPPE option value of our last Configure-Request as sent: what a
    /// Configure-Ack acknowledges (the offer may have moved on since).
    sent: Option<u32>,
    want_stateless: bool,
    /// We wanted stateful mode and Nak'd a peer's request for stateless
    /// once; a second request with H is accepted.
    asked_stateful: bool,
    /// The peer rejected MPPE, or Nak'd it with nothing we can do.
    gave_up: bool,
    /// Our request was acknowledged; what it settled for our direction.
    acked: bool,
    ours: Option<MppeNegotiated>,
    /// We acknowledged a request of the peer; what it settled.
    peer_acked: bool,
    theirs: Option<MppeNegotiated>,
    reset_requested: bool,
}

impl Ccp {
    pub fn new(config: CcpConfig) -> Self {
        let mut ccp = Ccp {
            config,
            offer: None,
            sent: None,
            want_stateless: false,
            asked_stateful: false,
            gave_up: false,
            acked: false,
            ours: None,
            peer_acked: false,
            theirs: None,
            reset_requested: false,
        };
        ccp.reset();
        ccp
    }

    pub fn config(&self) -> &CcpConfig {
        &self.config
    }

    /// The MPPE settings, once both directions agreed on the same ones.
    pub fn negotiated(&self) -> Option<MppeNegotiated> {
        if !(self.acked && self.peer_acked) {
            return None;
        }
        match (self.ours, self.theirs) {
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        }
    }

    /// MPPE is required but cannot be had: the peer rejected it, asked for
    /// something we do not allow, or both sides finished without agreeing.
    /// The Link closes the link ("encryption required") when this is true
    /// (check it when the automaton reports Up, and after every packet).
    pub fn negotiation_failed(&self) -> bool {
        self.config.required
            && (self.config.allowed.is_empty()
                || self.gave_up
                || (self.acked && self.peer_acked && self.negotiated().is_none()))
    }

    /// Whether the peer sent a Reset-Request since the last call: the MPPE
    /// encryptor must flush (RFC 3078 §3, A bit on the next packet).
    pub fn take_reset_requested(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// The strength we settle on among `mask` (strength bits both sides
    /// allow): the one already agreed in the other direction if possible,
    /// else the strongest.
    fn pick(&self, mask: u32, other: Option<MppeNegotiated>) -> Option<MppeStrength> {
        if let Some(o) = other {
            if mask & strength_bit(o.strength) != 0 {
                return Some(o.strength);
            }
        }
        strongest(mask)
    }

    fn judge_mppe(&mut self, value: u32) -> Result<Option<MppeNegotiated>, u32> {
        let allowed = self.config.allowed.mask();
        let common = value & allowed;
        // RFC 3078 §2: H is acceptable whenever offered, except that a side
        // wanting stateful mode asks for it once (a Nak without H) before
        // it gives in; without H, only if we accept stateful mode and do
        // not want stateless.
        let mut stateless = value & bits::H != 0 || self.want_stateless;
        if stateless && !self.want_stateless && !self.asked_stateful {
            self.asked_stateful = true;
            stateless = false;
        }
        let mode = if stateless { bits::H } else { 0 };
        let other = self
            .ours
            .or_else(|| self.offer.and_then(MppeNegotiated::from_bits));
        let Some(strength) = self.pick(common, other) else {
            // Nothing in common: tell the peer everything we could do.
            return Err(allowed | mode);
        };
        let desired = strength_bit(strength) | mode;
        if value == desired {
            Ok(Some(MppeNegotiated {
                strength,
                stateless,
            }))
        } else {
            // Several strengths, C/D/unknown bits, or the wrong mode: Nak
            // with one strength bit and our mode (RFC 3078 §2).
            Err(desired)
        }
    }
}

impl Negotiator for Ccp {
    fn reset(&mut self) {
        self.want_stateless = self.config.wants_stateless();
        self.offer = if self.config.allowed.is_empty() {
            None
        } else {
            Some(self.config.allowed.mask() | if self.want_stateless { bits::H } else { 0 })
        };
        self.sent = None;
        self.asked_stateful = false;
        self.gave_up = false;
        self.acked = false;
        self.ours = None;
        self.peer_acked = false;
        self.theirs = None;
        self.reset_requested = false;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        self.sent = self.offer;
        if let Some(value) = self.offer {
            write_option(out, option::MPPE, &value.to_be_bytes());
        }
    }

    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
        let mut reject = Vec::new();
        let mut nak = Vec::new();
        let mut theirs = None;
        let mut seen = false;
        for o in options {
            if o.kind == option::MPPE
                && o.data.len() == 4
                && !seen
                && !self.config.allowed.is_empty()
            {
                seen = true;
                let value = u32::from_be_bytes([o.data[0], o.data[1], o.data[2], o.data[3]]);
                match self.judge_mppe(value) {
                    Ok(settings) => theirs = settings,
                    Err(want) => write_option(&mut nak, option::MPPE, &want.to_be_bytes()),
                }
            } else {
                // RFC 1962 §4: every other algorithm (Deflate, BSD-Compress,
                // Predictor, Stac, MPPC without MPPE …) is rejected, as are
                // bad lengths and repeats; the peer falls back to MPPE or
                // to no compression.
                o.write(&mut reject);
            }
        }
        if !reject.is_empty() {
            Verdict::Reject(reject)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            if let Some(t) = theirs {
                // Follow the peer's mode in our own request (a Nak of it
                // would ask the same).
                self.want_stateless = t.stateless;
                if let Some(v) = self.offer {
                    self.offer = Some((v & !bits::H) | if t.stateless { bits::H } else { 0 });
                }
            }
            self.peer_acked = true;
            self.theirs = theirs;
            Verdict::Ack
        }
    }

    fn on_ack(&mut self) {
        self.acked = true;
        // A multi-strength request should never be acknowledged (RFC 3078
        // §2: the peer Naks with one bit); if it is, the strength is
        // ambiguous and counts as no agreement. The Ack is of the request
        // as sent (RFC 1661 §5.2), not of an offer changed since.
        self.ours = self.sent.and_then(MppeNegotiated::from_bits);
    }

    fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
        for o in options {
            if o.kind != option::MPPE || o.data.len() != 4 || self.offer.is_none() {
                continue;
            }
            let value = u32::from_be_bytes([o.data[0], o.data[1], o.data[2], o.data[3]]);
            let common = value & self.config.allowed.mask();
            let stateless = value & bits::H != 0;
            let Some(strength) = self.pick(common, self.theirs) else {
                // The peer wants only strengths we do not allow.
                self.offer = None;
                self.gave_up = true;
                continue;
            };
            // A Nak is a suggestion (RFC 1661 §5.3): a side that wants
            // stateless mode keeps asking for it with the Nak'd strength; the
            // peer either gives in or rejects the option.
            let stateless = stateless || self.config.wants_stateless();
            self.want_stateless = stateless;
            self.offer = Some(strength_bit(strength) | if stateless { bits::H } else { 0 });
        }
    }

    fn on_reject(&mut self, options: &[ConfigOption<'_>]) {
        if options.iter().any(|o| o.kind == option::MPPE) && self.offer.is_some() {
            self.offer = None;
            self.gave_up = true;
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
            code::RESET_REQUEST => {
                // RFC 1962 §2.2: meaningful only in Opened; answered with a
                // Reset-Ack of the same Identifier. RFC 3078 §3: the
                // encryptor flushes (A bit on its next packet). Linux
                // decrypts nothing more until this Reset-Ack arrives (see
                // the module documentation).
                if state == State::Opened {
                    self.reset_requested = true;
                    let mut ack = Vec::with_capacity(4);
                    crate::packet::write_packet(&mut ack, code::RESET_ACK, packet.id, &[]);
                    out.push_back(ack);
                }
                ExtraCode::Handled
            }
            // Our resets do not wait for an Ack (the A bit resynchronises):
            // accept silently.
            code::RESET_ACK => ExtraCode::Handled,
            _ => ExtraCode::Unknown,
        }
    }
}

/// Ask the peer's MPPE encryptor to flush (stateful mode, the decryptor
/// lost coherency; RFC 3078 §3): sends a CCP Reset-Request with no data.
/// Returns the identifier used.
pub fn request_reset(fsm: &mut Fsm<Ccp>) -> u8 {
    fsm.send_extra(code::RESET_REQUEST, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::{FsmConfig, FsmEvent};
    use crate::packet::{parse_options, write_packet};

    fn pump(now: Instant, a: &mut Fsm<Ccp>, b: &mut Fsm<Ccp>) {
        for _ in 0..200 {
            let mut any = false;
            while let Some(p) = a.poll_transmit() {
                b.handle_packet(now, &p).unwrap();
                any = true;
            }
            while let Some(p) = b.poll_transmit() {
                a.handle_packet(now, &p).unwrap();
                any = true;
            }
            if !any {
                return;
            }
        }
        panic!("negotiation did not settle");
    }

    fn started(config: CcpConfig, now: Instant) -> Fsm<Ccp> {
        let mut f = Fsm::new(Ccp::new(config), FsmConfig::default());
        f.open(now);
        f.lower_up(now);
        f
    }

    fn config(allowed: &[MppeStrength], mode: u8, required: bool) -> CcpConfig {
        // mode 0: stateful preferred; 1: stateless preferred; 2: stateless only.
        CcpConfig {
            allowed: Strengths::of(allowed),
            allow_stateful: mode != 2,
            prefer_stateless: mode == 1,
            required,
        }
    }

    fn mppe(value: u32) -> Vec<u8> {
        let mut v = Vec::new();
        write_option(&mut v, option::MPPE, &value.to_be_bytes());
        v
    }

    fn request(id: u8, data: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        write_packet(&mut p, code::CONFIGURE_REQUEST, id, data);
        p
    }

    use MppeStrength::*;

    #[test]
    fn bit_values() {
        assert_eq!(bits::H, 0x0100_0000);
        assert_eq!(bits::S, 0x40);
        assert_eq!(bits::L, 0x20);
        assert_eq!(bits::M, 0x80);
        assert_eq!(bits::C, 0x01);
        assert_eq!(bits::D, 0x10);
    }

    #[test]
    fn windows_like_request_is_10_bytes() {
        let now = Instant::now();
        let mut c = started(CcpConfig::require_128_stateless(), now);
        let req = c.poll_transmit().unwrap();
        assert_eq!(req.len(), 10);
        assert_eq!(hex::encode(&req[4..]), "120601000040");
        let mut all = started(CcpConfig::optional(), now);
        assert_eq!(
            hex::encode(&all.poll_transmit().unwrap()[4..]),
            "1206010000e0"
        );
    }

    #[test]
    fn every_combination_ends_matching_or_fails_cleanly() {
        let now = Instant::now();
        let sets: Vec<Vec<MppeStrength>> = vec![
            vec![Bits40],
            vec![Bits56],
            vec![Bits128],
            vec![Bits40, Bits56],
            vec![Bits40, Bits128],
            vec![Bits56, Bits128],
            vec![Bits40, Bits56, Bits128],
        ];
        for a_set in &sets {
            for b_set in &sets {
                for a_mode in 0..3u8 {
                    for b_mode in 0..3u8 {
                        let ac = config(a_set, a_mode, true);
                        let bc = config(b_set, b_mode, true);
                        let mut a = started(ac, now);
                        let mut b = started(bc, now);
                        pump(now, &mut a, &mut b);
                        let ctx = format!("{a_set:?}/{a_mode} vs {b_set:?}/{b_mode}");
                        assert!(a.is_opened() && b.is_opened(), "{ctx}");
                        let common = ac.allowed.mask() & bc.allowed.mask();
                        let (na, nb) = (a.negotiator().negotiated(), b.negotiator().negotiated());
                        if common == 0 {
                            assert_eq!((na, nb), (None, None), "{ctx}");
                            assert!(a.negotiator().negotiation_failed(), "{ctx}");
                            assert!(b.negotiator().negotiation_failed(), "{ctx}");
                        } else {
                            let expect = MppeNegotiated {
                                strength: strongest(common).unwrap(),
                                stateless: a_mode != 0 || b_mode != 0,
                            };
                            assert_eq!(na, Some(expect), "{ctx}");
                            assert_eq!(nb, Some(expect), "{ctx}");
                            assert!(!a.negotiator().negotiation_failed(), "{ctx}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn server_128_only_vs_client_40_only_fails_cleanly() {
        let now = Instant::now();
        let mut s = started(config(&[Bits128], 2, true), now);
        let mut c = started(config(&[Bits40], 0, true), now);
        pump(now, &mut s, &mut c);
        assert!(s.is_opened() && c.is_opened());
        assert_eq!(s.negotiator().negotiated(), None);
        assert!(s.negotiator().negotiation_failed());
        assert!(c.negotiator().negotiation_failed());
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events, vec![FsmEvent::Started, FsmEvent::Up]);
    }

    #[test]
    fn optional_mppe_rejected_is_not_a_failure() {
        let now = Instant::now();
        let mut s = started(CcpConfig::optional(), now);
        let mut c = started(CcpConfig::disabled(), now);
        pump(now, &mut s, &mut c);
        assert!(s.is_opened() && c.is_opened());
        assert_eq!(s.negotiator().negotiated(), None);
        assert!(!s.negotiator().negotiation_failed());
        let mut r = started(CcpConfig::require_128_stateless(), now);
        let mut c = started(CcpConfig::disabled(), now);
        pump(now, &mut r, &mut c);
        assert!(r.negotiator().negotiation_failed());
    }

    #[test]
    fn multi_bit_request_gets_a_single_bit_nak() {
        let mut s = Ccp::new(config(&[Bits40, Bits128], 1, true));
        let opts = mppe(bits::L | bits::M | bits::S);
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Nak(mppe(bits::S | bits::H))
        );
        // MPPC compression requested along: cleared in the Nak.
        let opts = mppe(bits::S | bits::H | bits::C);
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Nak(mppe(bits::S | bits::H))
        );
        let opts = mppe(bits::S | bits::H);
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Ack
        );
    }

    #[test]
    fn stateful_request_is_nakd_by_a_stateless_side_and_adopted() {
        let mut s = Ccp::new(config(&[Bits128], 1, true));
        let opts = mppe(bits::S);
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Nak(mppe(bits::S | bits::H))
        );
        // A stateful-preferring side asks for stateful once, then accepts
        // H and follows it.
        let mut c = Ccp::new(config(&[Bits128], 0, true));
        let opts = mppe(bits::S | bits::H);
        assert_eq!(
            c.check_request(&parse_options(&opts).unwrap()),
            Verdict::Nak(mppe(bits::S))
        );
        assert_eq!(
            c.check_request(&parse_options(&opts).unwrap()),
            Verdict::Ack
        );
        let mut out = Vec::new();
        c.build_request(&mut out);
        assert_eq!(out, mppe(bits::S | bits::H));
    }

    #[test]
    fn other_compression_options_are_rejected_unchanged() {
        let mut s = Ccp::new(CcpConfig::optional());
        let mut data = Vec::new();
        write_option(&mut data, option::DEFLATE, &[0x78, 0x00]);
        write_option(&mut data, option::BSD_COMPRESS, &[0x2f]);
        write_option(&mut data, option::PREDICTOR_1, &[]);
        write_option(&mut data, option::STAC_LZS, &[0, 1, 3]);
        let rejected = data.clone();
        data.extend_from_slice(&mppe(bits::S | bits::H));
        write_option(&mut data, option::MPPE, &[0, 0, 0]); // bad length
        let mut expect = rejected;
        write_option(&mut expect, option::MPPE, &[0, 0, 0]);
        assert_eq!(
            s.check_request(&parse_options(&data).unwrap()),
            Verdict::Reject(expect)
        );
    }

    #[test]
    fn deflate_peer_falls_back_to_mppe() {
        let now = Instant::now();
        let mut s = started(CcpConfig::require_128_stateless(), now);
        let _ = s.poll_transmit();
        let mut data = Vec::new();
        write_option(&mut data, option::DEFLATE, &[0x78, 0x00]);
        data.extend_from_slice(&mppe(bits::S | bits::H));
        s.handle_packet(now, &request(1, &data)).unwrap();
        let rej = s.poll_transmit().unwrap();
        assert_eq!(rej[0], code::CONFIGURE_REJECT);
        assert_eq!(&rej[4..], &[26, 4, 0x78, 0x00]);
        s.handle_packet(now, &request(2, &mppe(bits::S | bits::H)))
            .unwrap();
        assert_eq!(s.poll_transmit().unwrap()[0], code::CONFIGURE_ACK);
    }

    /// RFC 1962 §2.2, and what Linux needs to decrypt again after a loss
    /// (ppp_generic's SC_DC_ERROR is cleared only by a received Reset-Ack):
    /// a Reset-Request is answered with a Reset-Ack of the same Identifier.
    #[test]
    fn reset_request_is_answered_with_reset_ack() {
        let now = Instant::now();
        let mut a = started(CcpConfig::optional(), now);
        let mut b = started(CcpConfig::optional(), now);
        pump(now, &mut a, &mut b);
        assert!(a.is_opened());
        assert!(!a.negotiator_mut().take_reset_requested());
        let id = request_reset(&mut b);
        let p = b.poll_transmit().unwrap();
        assert_eq!(p, vec![code::RESET_REQUEST, id, 0, 4]);
        a.handle_packet(now, &p).unwrap();
        assert_eq!(a.poll_transmit(), Some(vec![code::RESET_ACK, id, 0, 4]));
        assert!(a.poll_transmit().is_none(), "one Reset-Ack, no Code-Reject");
        assert!(a.negotiator_mut().take_reset_requested());
        assert!(!a.negotiator_mut().take_reset_requested());
        a.handle_packet(now, &[code::RESET_ACK, 7, 0, 4]).unwrap();
        assert!(a.poll_transmit().is_none());
        assert!(a.is_opened());
        // Outside Opened a Reset-Request means nothing (RFC 1962 §2.2).
        let mut c = started(CcpConfig::optional(), now);
        let _ = c.poll_transmit();
        c.handle_packet(now, &[code::RESET_REQUEST, 9, 0, 4])
            .unwrap();
        assert!(c.poll_transmit().is_none());
        assert!(!c.negotiator_mut().take_reset_requested());
    }

    /// pppd 2.4.9's CCP for MPPE with `require-mppe-128`, with or without
    /// `mppe-stateful`, modelled from its ccp.c (read for behaviour only):
    /// it always requests stateless (H); a Nak without H makes it request
    /// stateful if `mppe-stateful` is on and hang up otherwise; a request
    /// without H is Acked with `mppe-stateful` and Rejected (then the link
    /// closed) without it; several strengths are Nak'd down to 128 bits.
    struct Pppd {
        refuse_stateful: bool,
        stateful: bool,
        /// What it acknowledged of our requests (the mode we send in).
        his: Option<u32>,
        /// Why it closed the link.
        hung_up: Option<&'static str>,
    }

    impl Pppd {
        fn new(mppe_stateful: bool) -> Self {
            Pppd {
                refuse_stateful: !mppe_stateful,
                stateful: false,
                his: None,
                hung_up: None,
            }
        }

        /// What pppd logs once CCP is up: its own (receive) direction.
        fn log(&self) -> &'static str {
            if self.stateful {
                "MPPE 128-bit stateful compression enabled"
            } else {
                "MPPE 128-bit stateless compression enabled"
            }
        }
    }

    impl Negotiator for Pppd {
        fn reset(&mut self) {
            self.stateful = false;
            self.his = None;
        }

        fn build_request(&mut self, out: &mut Vec<u8>) {
            let h = if self.stateful { 0 } else { bits::H };
            write_option(out, option::MPPE, &(bits::S | h).to_be_bytes());
        }

        fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
            let mut reject = Vec::new();
            for o in options {
                if o.kind != option::MPPE || o.data.len() != 4 {
                    o.write(&mut reject);
                    continue;
                }
                let v = u32::from_be_bytes([o.data[0], o.data[1], o.data[2], o.data[3]]);
                if v & bits::H == 0 && self.refuse_stateful {
                    self.hung_up = Some("Refusing MPPE stateful mode offered by peer");
                    o.write(&mut reject);
                    continue;
                }
                if v & bits::S == 0 {
                    self.hung_up = Some("MPPE required but peer negotiation failed");
                    o.write(&mut reject);
                    continue;
                }
                let wanted = bits::S | (v & bits::H);
                if v != wanted {
                    return Verdict::Nak(mppe(wanted));
                }
                self.his = Some(v);
            }
            if reject.is_empty() {
                Verdict::Ack
            } else {
                Verdict::Reject(reject)
            }
        }

        fn on_ack(&mut self) {}

        fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
            for o in options.iter().filter(|o| o.kind == option::MPPE) {
                let v = u32::from_be_bytes([o.data[0], o.data[1], o.data[2], o.data[3]]);
                if v & bits::H == 0 && self.refuse_stateful {
                    self.hung_up = Some("Refusing MPPE stateful mode offered by peer");
                } else if v & bits::STRENGTHS & !bits::S != 0 {
                    self.hung_up = Some("MPPE required but peer negotiation failed");
                } else {
                    self.stateful = v & bits::H == 0;
                }
            }
        }

        fn on_reject(&mut self, _options: &[ConfigOption<'_>]) {
            self.hung_up = Some("MPPE required but peer refused");
        }
    }

    /// Negotiate our CCP against the pppd model; `None` when pppd hung up.
    fn against_pppd(
        ours: CcpConfig,
        mppe_stateful: bool,
    ) -> Result<(Option<MppeNegotiated>, &'static str, Option<u32>), &'static str> {
        let now = Instant::now();
        let mut us = started(ours, now);
        let mut pppd = Fsm::new(Pppd::new(mppe_stateful), FsmConfig::default());
        pppd.open(now);
        pppd.lower_up(now);
        for _ in 0..200 {
            if let Some(why) = pppd.negotiator().hung_up {
                return Err(why);
            }
            let mut any = false;
            while let Some(p) = us.poll_transmit() {
                pppd.handle_packet(now, &p).unwrap();
                any = true;
            }
            while let Some(p) = pppd.poll_transmit() {
                us.handle_packet(now, &p).unwrap();
                any = true;
            }
            if !any {
                break;
            }
        }
        if let Some(why) = pppd.negotiator().hung_up {
            return Err(why);
        }
        assert!(us.is_opened() && pppd.is_opened());
        let p = pppd.negotiator();
        Ok((us.negotiator().negotiated(), p.log(), p.his))
    }

    /// Issue 11: stateful MPPE with pppd `mppe-stateful` needs our side to
    /// ask for it; the default stays stateless with either pppd.
    #[test]
    fn stateful_with_pppd_mppe_stateful() {
        let stateful = MppeNegotiated {
            strength: Bits128,
            stateless: false,
        };
        let stateless = MppeNegotiated {
            strength: Bits128,
            stateless: true,
        };
        // Ours asks for stateful, pppd allows it: stateful both ways.
        assert_eq!(
            against_pppd(CcpConfig::require_128_stateful(), true),
            Ok((
                Some(stateful),
                "MPPE 128-bit stateful compression enabled",
                Some(bits::S)
            ))
        );
        // The default, against either pppd: stateless as before.
        for mppe_stateful in [false, true] {
            assert_eq!(
                against_pppd(CcpConfig::require_128_stateless(), mppe_stateful),
                Ok((
                    Some(stateless),
                    "MPPE 128-bit stateless compression enabled",
                    Some(bits::S | bits::H)
                ))
            );
        }
        // Allowing stateful without asking for it never gets it from pppd
        // (which requests H and Acks ours): stateless.
        let mut allow = CcpConfig::require_128_stateless();
        allow.allow_stateful = true;
        assert_eq!(against_pppd(allow, true).unwrap().0, Some(stateless));
    }

    /// Why stateful mode is an explicit opt-in: pppd without
    /// `mppe-stateful` closes the link when asked for it, whatever we do
    /// afterwards; there is no fallback to negotiate.
    #[test]
    fn asking_pppd_without_mppe_stateful_for_stateful_hangs_it_up() {
        assert_eq!(
            against_pppd(CcpConfig::require_128_stateful(), false),
            Err("Refusing MPPE stateful mode offered by peer")
        );
    }

    /// A stateful-wanting side asks once, then gives in to a peer that
    /// insists on stateless (a request with H again, or a Nak with H).
    #[test]
    fn stateful_side_asks_once_then_accepts_stateless() {
        let mut s = Ccp::new(CcpConfig::require_128_stateful());
        let mut out = Vec::new();
        s.build_request(&mut out);
        assert_eq!(out, mppe(bits::S), "stateful requested: no H");
        let opts = mppe(bits::S | bits::H);
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Nak(mppe(bits::S))
        );
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Ack
        );
        let mut out = Vec::new();
        s.build_request(&mut out);
        assert_eq!(out, mppe(bits::S | bits::H), "follows the peer's mode");
    }

    /// A Configure-Ack acknowledges the request as sent: when our offer
    /// changed after it was sent, the Ack settles the sent one.
    #[test]
    fn ack_settles_the_request_as_sent() {
        let mut s = Ccp::new(CcpConfig::require_128_stateful());
        let mut out = Vec::new();
        s.build_request(&mut out);
        let opts = mppe(bits::S | bits::H);
        let _ = s.check_request(&parse_options(&opts).unwrap());
        assert_eq!(
            s.check_request(&parse_options(&opts).unwrap()),
            Verdict::Ack
        );
        s.on_ack();
        assert_eq!(
            s.ours,
            Some(MppeNegotiated {
                strength: Bits128,
                stateless: false
            })
        );
        assert_eq!(s.negotiated(), None, "the directions differ");
    }

    proptest::proptest! {
        #[test]
        fn check_request_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..60), mode in 0u8..3) {
            if let Ok(opts) = parse_options(&bytes) {
                let mut n = Ccp::new(config(&[Bits40, Bits128], mode, true));
                match n.check_request(&opts) {
                    Verdict::Reject(r) => {
                        for o in parse_options(&r).unwrap() {
                            proptest::prop_assert!(opts.contains(&o));
                        }
                    }
                    Verdict::Nak(k) => {
                        for o in parse_options(&k).unwrap() {
                            proptest::prop_assert_eq!(o.kind, option::MPPE);
                            proptest::prop_assert_eq!(o.data.len(), 4);
                        }
                    }
                    Verdict::Ack => {}
                }
                n.on_nak(&opts);
                n.on_reject(&opts);
                n.on_ack();
                let _ = n.negotiated();
                let mut out = Vec::new();
                n.build_request(&mut out);
                parse_options(&out).unwrap();
            }
        }
    }
}
