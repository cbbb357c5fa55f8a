//! HDLC-like framing for asynchronous serial links (RFC 1662 §3, §4).
//!
//! On the wire a frame is `0x7E | escaped(frame | FCS) | 0x7E`, where
//! `frame` is a raw PPP frame as built by [`crate::frame::encode`] and
//! the FCS is FCS-16 (the default) or FCS-32 (RFC 1570 FCS-Alternatives,
//! negotiated elsewhere). Octet stuffing (RFC 1662 §4.2) replaces the flag
//! 0x7E, the control escape 0x7D and every octet flagged in the transmit
//! Async-Control-Character-Map (ACCM) by `0x7D, octet ^ 0x20`.
//!
//! * [`HdlcEncoder`] appends one framed packet to a caller-reused buffer.
//!   LCP packets are always escaped with the default ACCM 0xFFFFFFFF, as
//!   they must be sent as if no option had been negotiated (RFC 1661 §5).
//! * [`HdlcDecoder`] is a streaming receiver fed arbitrary chunks. It
//!   hunts for the first flag, drops control characters flagged in the
//!   receive ACCM (RFC 1662 §4.2), unescapes, honours the abort sequence
//!   `0x7D 0x7E`, ignores empty frames (time fill), discards runts, frames
//!   with a bad FCS and frames longer than its limit, and counts each kind
//!   in [`HdlcStats`]. Its memory is bounded by the configured maximum
//!   frame length, whatever the input.

use crate::fcs;
use crate::frame::{self, protocol, FrameOptions};

/// Flag Sequence.
pub const FLAG: u8 = 0x7E;
/// Control Escape octet.
pub const ESCAPE: u8 = 0x7D;
/// What an escaped octet is exclusive-or'd with.
pub const ESCAPE_XOR: u8 = 0x20;
/// The default Async-Control-Character-Map: every control character
/// 0x00–0x1F escaped.
pub const DEFAULT_ACCM: u32 = 0xFFFF_FFFF;
/// Default receive limit for a frame's length without its FCS: an MRU of
/// 1500 plus a 4-octet header and headroom for padding and MPPE overhead.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1600;
/// The shortest frame (without FCS) accepted: RFC 1662 §4.3 discards
/// frames of fewer than 4 octets with a 16-bit FCS.
pub const MIN_FRAME_LEN: usize = 2;

/// Which Frame Check Sequence the link uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FcsKind {
    /// 16-bit FCS (RFC 1662 C.2), the default.
    #[default]
    Fcs16,
    /// 32-bit FCS (RFC 1662 C.3).
    Fcs32,
}

impl FcsKind {
    /// Number of FCS octets on the wire (before escaping).
    #[inline]
    pub const fn octets(self) -> usize {
        match self {
            FcsKind::Fcs16 => 2,
            FcsKind::Fcs32 => 4,
        }
    }

    /// Whether `frame` (data followed by its FCS) has a good FCS.
    #[inline]
    pub fn check(self, frame: &[u8]) -> bool {
        match self {
            FcsKind::Fcs16 => fcs::fcs16_is_good(frame),
            FcsKind::Fcs32 => fcs::fcs32_is_good(frame),
        }
    }
}

/// A 256-bit map of the octets to escape on transmit. Word 0 is the ACCM
/// (bit `n` set: escape octet `n`); word `k` covers octets `32k..32k+31`.
type TxMap = [u32; 8];

#[inline]
fn map_has(map: &TxMap, b: u8) -> bool {
    (map[usize::from(b >> 5)] >> (b & 31)) & 1 == 1
}

#[inline]
fn map_set(map: &mut TxMap, b: u8) {
    map[usize::from(b >> 5)] |= 1 << (b & 31);
}

#[inline]
fn map_clear(map: &mut TxMap, b: u8) {
    map[usize::from(b >> 5)] &= !(1 << (b & 31));
}

/// Make an extended map safe: octets 0x20–0x3F would be sent as control
/// characters (which a receiver drops if its ACCM flags them), and 0x5D /
/// 0x5E as a raw escape or flag, so those are never escaped; the flag and
/// the escape always are.
fn sanitize(map: &mut TxMap) {
    map[1] = 0;
    map_clear(map, FLAG ^ ESCAPE_XOR);
    map_clear(map, ESCAPE ^ ESCAPE_XOR);
    map_set(map, FLAG);
    map_set(map, ESCAPE);
}

/// Append `data` octet-stuffed according to `map` (which must flag
/// [`FLAG`] and [`ESCAPE`]).
fn escape_into(map: &TxMap, data: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if map_has(map, b) {
            out.extend_from_slice(&data[start..i]);
            out.push(ESCAPE);
            out.push(b ^ ESCAPE_XOR);
            start = i + 1;
        }
    }
    out.extend_from_slice(&data[start..]);
}

/// Transmit side of RFC 1662 asynchronous HDLC-like framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdlcEncoder {
    map: TxMap,
    fcs: FcsKind,
}

impl Default for HdlcEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HdlcEncoder {
    /// An encoder with the default ACCM and FCS-16.
    pub fn new() -> Self {
        let mut map = [0; 8];
        map[0] = DEFAULT_ACCM;
        map_set(&mut map, FLAG);
        map_set(&mut map, ESCAPE);
        Self {
            map,
            fcs: FcsKind::Fcs16,
        }
    }

    /// Set the transmit ACCM (the value the peer asked for in its
    /// Async-Control-Character-Map option). Not applied to LCP packets.
    pub fn set_accm(&mut self, accm: u32) {
        self.map[0] = accm;
    }

    /// The transmit ACCM.
    pub fn accm(&self) -> u32 {
        self.map[0]
    }

    /// Set the whole 256-bit transmit map (an "extended ACCM": word 0 is
    /// the ACCM, word `k` flags octets `32k..32k+31`). The flag and the
    /// control escape are always escaped whatever the map says; octets
    /// 0x20–0x3F, 0x5D and 0x5E are never escaped (their escaped forms
    /// would be control characters, the escape or the flag).
    pub fn set_extended_map(&mut self, map: [u32; 8]) {
        self.map = map;
        sanitize(&mut self.map);
    }

    /// Also escape `octet` from now on (e.g. 0xFF, or 0x80–0x9F for
    /// links that interpret those). Ignored for 0x20–0x3F, 0x5D and 0x5E,
    /// as in [`set_extended_map`](Self::set_extended_map).
    pub fn escape_octet(&mut self, octet: u8) {
        map_set(&mut self.map, octet);
        sanitize(&mut self.map);
    }

    /// The 256-bit transmit map.
    pub fn extended_map(&self) -> [u32; 8] {
        self.map
    }

    /// Use `fcs` for the following frames.
    pub fn set_fcs(&mut self, fcs: FcsKind) {
        self.fcs = fcs;
    }

    /// The FCS in use.
    pub fn fcs(&self) -> FcsKind {
        self.fcs
    }

    /// Worst-case encoded size of a `frame_len`-octet frame: two flags and
    /// every octet of frame and FCS escaped.
    pub const fn max_encoded_len(frame_len: usize, fcs: FcsKind) -> usize {
        2 + 2 * (frame_len + fcs.octets())
    }

    fn map_for(&self, protocol: Option<u16>) -> TxMap {
        let mut map = self.map;
        if protocol == Some(protocol::LCP) {
            // RFC 1661 §5: LCP goes out as if no option (so no ACCM) was
            // negotiated, i.e. with the default map.
            map[0] |= DEFAULT_ACCM;
        }
        map
    }

    fn finish(&self, map: &TxMap, fcs16: u16, fcs32: u32, out: &mut Vec<u8>) {
        match self.fcs {
            FcsKind::Fcs16 => escape_into(map, &(!fcs16).to_le_bytes(), out),
            FcsKind::Fcs32 => escape_into(map, &(!fcs32).to_le_bytes(), out),
        }
        out.push(FLAG);
    }

    /// Append `frame` (a raw PPP frame: optional 0xFF 0x03, protocol,
    /// information, e.g. from [`frame::encode`]) framed for the wire:
    /// opening flag, escaped frame and FCS, closing flag.
    ///
    /// If the frame decodes as LCP it is escaped with the default ACCM.
    pub fn encode_frame(&self, frame: &[u8], out: &mut Vec<u8>) {
        let proto = frame::decode(frame).ok().map(|f| f.protocol);
        let map = self.map_for(proto);
        out.reserve(Self::max_encoded_len(frame.len(), self.fcs));
        out.push(FLAG);
        escape_into(&map, frame, out);
        let (f16, f32) = match self.fcs {
            FcsKind::Fcs16 => (fcs::fcs16(fcs::FCS16_INIT, frame), 0),
            FcsKind::Fcs32 => (0, fcs::fcs32(fcs::FCS32_INIT, frame)),
        };
        self.finish(&map, f16, f32, out);
    }

    /// Append a packet of `protocol` carrying `payload`, with the header
    /// chosen by `opts` (see [`frame::FrameOptions::effective`]: LCP is
    /// always sent uncompressed), framed for the wire. No intermediate
    /// buffer is used.
    pub fn encode(&self, protocol: u16, payload: &[u8], opts: FrameOptions, out: &mut Vec<u8>) {
        let (hdr, n) = frame::header(protocol, opts);
        let hdr = &hdr[..n];
        let map = self.map_for(Some(protocol));
        out.reserve(Self::max_encoded_len(n + payload.len(), self.fcs));
        out.push(FLAG);
        escape_into(&map, hdr, out);
        escape_into(&map, payload, out);
        let (f16, f32) = match self.fcs {
            FcsKind::Fcs16 => (fcs::fcs16(fcs::fcs16(fcs::FCS16_INIT, hdr), payload), 0),
            FcsKind::Fcs32 => (0, fcs::fcs32(fcs::fcs32(fcs::FCS32_INIT, hdr), payload)),
        };
        self.finish(&map, f16, f32, out);
    }
}

/// Receive-side settings of an [`HdlcDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HdlcDecoderConfig {
    /// The FCS the peer sends. With [`FcsKind::Fcs32`], LCP frames with a
    /// good FCS-16 are accepted too: LCP Configure/Terminate/Code-Reject
    /// packets are sent as if no option (so no FCS-Alternatives) had been
    /// negotiated (RFC 1661 §5).
    pub fcs: FcsKind,
    /// Receive ACCM: control characters flagged here are dropped when
    /// received unescaped (RFC 1662 §4.2). Default [`DEFAULT_ACCM`]; set it
    /// to the map we asked the peer to use once LCP is open.
    pub rx_accm: u32,
    /// Longest frame accepted, without its FCS (default
    /// [`DEFAULT_MAX_FRAME_LEN`]). Longer frames are discarded up to the
    /// next flag. This bounds the decoder's memory.
    pub max_frame_len: usize,
}

impl Default for HdlcDecoderConfig {
    fn default() -> Self {
        Self {
            fcs: FcsKind::Fcs16,
            rx_accm: DEFAULT_ACCM,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// Counters kept by an [`HdlcDecoder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HdlcStats {
    /// Frames delivered (good FCS).
    pub frames: u64,
    /// Frames dropped for a bad FCS.
    pub fcs_errors: u64,
    /// Frames dropped for exceeding `max_frame_len`.
    pub oversize: u64,
    /// Frames ended by the abort sequence 0x7D 0x7E.
    pub aborts: u64,
    /// Non-empty frames dropped for being shorter than
    /// [`MIN_FRAME_LEN`] plus the FCS (RFC 1662 §4.3).
    pub runts: u64,
    /// Unescaped control characters dropped because the receive ACCM
    /// flags them.
    pub accm_dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RxState {
    /// Before the first flag: everything is discarded.
    Hunt,
    /// Collecting a frame.
    Data,
    /// The frame overflowed; discarding up to the next flag.
    Discard,
}

/// The byte-level receive machine, separate from the pending input so
/// both can be borrowed at once.
#[derive(Clone, Debug)]
struct Rx {
    cfg: HdlcDecoderConfig,
    /// Unescaped octets of the frame being received, FCS included.
    buf: Vec<u8>,
    state: RxState,
    escaped: bool,
    /// `Some(n)`: `buf[..n]` is a delivered frame not yet released.
    ready: Option<usize>,
    stats: HdlcStats,
}

impl Rx {
    fn new(cfg: HdlcDecoderConfig) -> Self {
        Self {
            buf: Vec::with_capacity(Self::limit_for(&cfg)),
            cfg,
            state: RxState::Hunt,
            escaped: false,
            ready: None,
            stats: HdlcStats::default(),
        }
    }

    fn limit_for(cfg: &HdlcDecoderConfig) -> usize {
        cfg.max_frame_len.saturating_add(cfg.fcs.octets())
    }

    fn release(&mut self) {
        if self.ready.take().is_some() {
            self.buf.clear();
        }
    }

    fn frame(&self) -> Option<&[u8]> {
        self.ready.map(|n| &self.buf[..n])
    }

    /// Consume `input` until a good frame completes. Returns the number of
    /// octets consumed and whether a frame is now ready in `buf`.
    fn step(&mut self, input: &[u8]) -> (usize, bool) {
        self.release();
        let limit = Self::limit_for(&self.cfg);
        for (i, &b) in input.iter().enumerate() {
            if b == FLAG {
                if self.end_frame() {
                    return (i + 1, true);
                }
                continue;
            }
            if self.state == RxState::Hunt {
                continue;
            }
            if b < 0x20 && (self.cfg.rx_accm >> b) & 1 == 1 {
                self.stats.accm_dropped += 1;
                continue;
            }
            let b = if self.escaped {
                self.escaped = false;
                b ^ ESCAPE_XOR
            } else if b == ESCAPE {
                self.escaped = true;
                continue;
            } else {
                b
            };
            if self.state == RxState::Discard {
                continue;
            }
            if self.buf.len() >= limit {
                self.state = RxState::Discard;
                self.stats.oversize += 1;
                self.buf.clear();
                continue;
            }
            self.buf.push(b);
        }
        (input.len(), false)
    }

    /// A flag arrived: close the current frame. True if it is good.
    fn end_frame(&mut self) -> bool {
        let state = std::mem::replace(&mut self.state, RxState::Data);
        let escaped = std::mem::take(&mut self.escaped);
        match state {
            RxState::Hunt => return false,
            RxState::Discard => {
                self.buf.clear();
                return false;
            }
            RxState::Data => {}
        }
        if escaped {
            self.stats.aborts += 1;
            self.buf.clear();
            return false;
        }
        if self.buf.is_empty() {
            return false;
        }
        let fcs_len = self.cfg.fcs.octets();
        if self.buf.len() < MIN_FRAME_LEN + fcs_len {
            self.stats.runts += 1;
            self.buf.clear();
            return false;
        }
        let len = if self.cfg.fcs.check(&self.buf) {
            Some(self.buf.len() - fcs_len)
        } else if self.cfg.fcs == FcsKind::Fcs32 && fcs::fcs16_is_good(&self.buf) {
            let n = self.buf.len() - 2;
            frame::decode(&self.buf[..n])
                .ok()
                .filter(|f| f.protocol == protocol::LCP)
                .map(|_| n)
        } else {
            None
        };
        match len {
            Some(n) => {
                self.stats.frames += 1;
                self.ready = Some(n);
                true
            }
            None => {
                self.stats.fcs_errors += 1;
                self.buf.clear();
                false
            }
        }
    }
}

/// Streaming receiver for RFC 1662 asynchronous HDLC-like framing.
///
/// Either hand it chunks with [`decode`](Self::decode) and a callback, or
/// [`push`](Self::push) chunks and drain them with
/// [`next_frame`](Self::next_frame). Frames come out unescaped, without
/// flags or FCS, ready for [`frame::decode`].
#[derive(Clone, Debug)]
pub struct HdlcDecoder {
    rx: Rx,
    pending: Vec<u8>,
    pending_pos: usize,
}

impl Default for HdlcDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HdlcDecoder {
    /// A decoder with [`HdlcDecoderConfig::default`].
    pub fn new() -> Self {
        Self::with_config(HdlcDecoderConfig::default())
    }

    /// A decoder with the given settings.
    pub fn with_config(cfg: HdlcDecoderConfig) -> Self {
        Self {
            rx: Rx::new(cfg),
            pending: Vec::new(),
            pending_pos: 0,
        }
    }

    /// The current settings.
    pub fn config(&self) -> &HdlcDecoderConfig {
        &self.rx.cfg
    }

    /// Check frames with `fcs` from the next closing flag on.
    pub fn set_fcs(&mut self, fcs: FcsKind) {
        self.rx.cfg.fcs = fcs;
    }

    /// Set the receive ACCM (the map we asked the peer to use).
    pub fn set_rx_accm(&mut self, accm: u32) {
        self.rx.cfg.rx_accm = accm;
    }

    /// Set the longest frame accepted (without FCS).
    pub fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.rx.cfg.max_frame_len = max_frame_len;
    }

    /// The counters so far.
    pub fn stats(&self) -> HdlcStats {
        self.rx.stats
    }

    /// Drop any partial frame and pending input and hunt for a flag
    /// again. Settings and counters are kept.
    pub fn reset(&mut self) {
        self.rx.buf.clear();
        self.rx.ready = None;
        self.rx.escaped = false;
        self.rx.state = RxState::Hunt;
        self.pending.clear();
        self.pending_pos = 0;
    }

    /// Process all of `input` (after anything still [`push`](Self::push)ed
    /// and not drained), calling `on_frame` for each good frame.
    pub fn decode(&mut self, input: &[u8], mut on_frame: impl FnMut(&[u8])) {
        while let Some(f) = self.next_frame() {
            on_frame(f);
        }
        let mut off = 0;
        while off < input.len() {
            let (n, done) = self.rx.step(&input[off..]);
            off += n;
            if let (true, Some(f)) = (done, self.rx.frame()) {
                on_frame(f);
            }
        }
        self.rx.release();
    }

    /// Queue `input` for [`next_frame`](Self::next_frame). The queued
    /// input is copied; memory held is what was pushed and not yet
    /// drained, plus at most one frame.
    pub fn push(&mut self, input: &[u8]) {
        if self.pending_pos == self.pending.len() {
            self.pending.clear();
            self.pending_pos = 0;
        } else if self.pending_pos > 0 {
            self.pending.drain(..self.pending_pos);
            self.pending_pos = 0;
        }
        self.pending.extend_from_slice(input);
    }

    /// Octets pushed and not yet processed.
    pub fn pending_len(&self) -> usize {
        self.pending.len() - self.pending_pos
    }

    /// The next good frame from pushed input, or `None` once all of it is
    /// processed. The slice is valid until the decoder is used again.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        self.rx.release();
        while self.pending_pos < self.pending.len() {
            let (n, done) = self.rx.step(&self.pending[self.pending_pos..]);
            self.pending_pos += n;
            if done {
                return self.rx.frame();
            }
        }
        self.pending.clear();
        self.pending_pos = 0;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1662 FCS-16 computed one bit at a time, independent of the
    /// table code in `fcs`.
    fn reference_fcs16(data: &[u8]) -> u16 {
        let mut fcs: u16 = 0xFFFF;
        for &b in data {
            for i in 0..8 {
                let mix = (fcs ^ u16::from(b >> i)) & 1;
                fcs >>= 1;
                if mix != 0 {
                    fcs ^= 0x8408;
                }
            }
        }
        !fcs
    }

    /// LCP Configure-Request, id 1: MRU 1500, ACCM 0, Magic 0x7E7D115A.
    const LCP_CONFREQ: [u8; 24] = [
        0xFF, 0x03, 0xC0, 0x21, // address, control, LCP
        0x01, 0x01, 0x00, 0x14, // Configure-Request, id 1, length 20
        0x01, 0x04, 0x05, 0xDC, // MRU 1500
        0x02, 0x06, 0x00, 0x00, 0x00, 0x00, // ACCM 0
        0x05, 0x06, 0x7E, 0x7D, 0x11, 0x5A, // Magic-Number
    ];

    /// LCP_CONFREQ on the wire with FCS-16, escaped by hand.
    const LCP_CONFREQ_WIRE16: [u8; 47] = [
        0x7E, // flag
        0xFF, 0x7D, 0x23, 0xC0, 0x21, // FF 03 C0 21
        0x7D, 0x21, 0x7D, 0x21, 0x7D, 0x20, 0x7D, 0x34, // 01 01 00 14
        0x7D, 0x21, 0x7D, 0x24, 0x7D, 0x25, 0xDC, // 01 04 05 DC
        0x7D, 0x22, 0x7D, 0x26, 0x7D, 0x20, 0x7D, 0x20, 0x7D, 0x20, 0x7D, 0x20, // 02 06 00*4
        0x7D, 0x25, 0x7D, 0x26, 0x7D, 0x5E, 0x7D, 0x5D, 0x7D, 0x31, 0x5A, // 05 06 7E 7D 11 5A
        0xFC, 0x47, // FCS-16 0x47FC, LSB first
        0x7E, // flag
    ];

    /// LCP_CONFREQ on the wire with FCS-32 (0xC0C40135, whose 0x01 octet
    /// gets escaped).
    const LCP_CONFREQ_FCS32_TRAILER: [u8; 6] = [0x35, 0x7D, 0x21, 0xC4, 0xC0, 0x7E];

    #[test]
    fn known_answer_lcp_configure_request() {
        assert_eq!(reference_fcs16(&LCP_CONFREQ), 0x47FC);
        // Whatever the negotiated ACCM, LCP uses the default one.
        let mut enc = HdlcEncoder::new();
        enc.set_accm(0);
        let mut out = Vec::new();
        enc.encode_frame(&LCP_CONFREQ, &mut out);
        assert_eq!(out, LCP_CONFREQ_WIRE16);
        out.clear();
        let f = frame::decode(&LCP_CONFREQ).unwrap();
        enc.encode(
            f.protocol,
            f.payload,
            FrameOptions {
                address_control: false,
                compress_protocol: true,
            },
            &mut out,
        );
        assert_eq!(out, LCP_CONFREQ_WIRE16);

        enc.set_fcs(FcsKind::Fcs32);
        out.clear();
        enc.encode_frame(&LCP_CONFREQ, &mut out);
        let body = &LCP_CONFREQ_WIRE16[..LCP_CONFREQ_WIRE16.len() - 3];
        assert_eq!(&out[..body.len()], body);
        assert_eq!(&out[body.len()..], &LCP_CONFREQ_FCS32_TRAILER);

        let mut dec = HdlcDecoder::new();
        let mut got = Vec::new();
        dec.decode(&LCP_CONFREQ_WIRE16, |f| got.push(f.to_vec()));
        assert_eq!(got, vec![LCP_CONFREQ.to_vec()]);
    }

    #[test]
    fn escapes_flag_escape_and_mapped_controls() {
        let mut enc = HdlcEncoder::new();
        enc.set_accm(1 << 0x11 | 1 << 0x13); // XON/XOFF only
        let mut out = Vec::new();
        enc.encode_frame(
            &[0x21, 0x7E, 0x7D, 0x11, 0x13, 0x00, 0x1F, 0x20, 0x5E],
            &mut out,
        );
        let trailer = fcs::fcs16_trailer(&[0x21, 0x7E, 0x7D, 0x11, 0x13, 0x00, 0x1F, 0x20, 0x5E]);
        let mut want = vec![
            0x7E, 0x21, 0x7D, 0x5E, 0x7D, 0x5D, 0x7D, 0x31, 0x7D, 0x33, 0x00, 0x1F, 0x20, 0x5E,
        ];
        for b in trailer {
            if matches!(b, 0x11 | 0x13 | 0x7D | 0x7E) {
                want.extend_from_slice(&[0x7D, b ^ 0x20]);
            } else {
                want.push(b);
            }
        }
        want.push(0x7E);
        assert_eq!(out, want);
    }

    #[test]
    fn extended_map_and_accm_zero() {
        let mut enc = HdlcEncoder::new();
        enc.set_extended_map([0; 8]);
        assert_eq!(enc.accm(), 0);
        enc.escape_octet(0xFF);
        let mut out = Vec::new();
        enc.encode_frame(&[0x21, 0xFF, 0x01], &mut out);
        assert_eq!(&out[..5], &[0x7E, 0x21, 0x7D, 0xDF, 0x01]);
        let mut dec = HdlcDecoder::new();
        dec.set_rx_accm(0);
        let mut got = Vec::new();
        dec.decode(&out, |f| got.push(f.to_vec()));
        assert_eq!(got, vec![vec![0x21, 0xFF, 0x01]]);
    }

    #[test]
    fn extended_map_is_sanitized() {
        let mut enc = HdlcEncoder::new();
        enc.set_extended_map([u32::MAX; 8]);
        let m = enc.extended_map();
        assert_eq!(m[0], u32::MAX);
        assert_eq!(m[1], 0);
        assert!(!map_has(&m, 0x5D) && !map_has(&m, 0x5E));
        assert!(map_has(&m, FLAG) && map_has(&m, ESCAPE) && map_has(&m, 0xFF));
        enc.set_extended_map([0; 8]);
        enc.escape_octet(0x5E);
        enc.escape_octet(0x31);
        let mut out = Vec::new();
        enc.encode_frame(&[0x21, 0x5E, 0x31], &mut out);
        assert_eq!(&out[..4], &[FLAG, 0x21, 0x5E, 0x31]);
    }

    #[test]
    fn time_fill_and_back_to_back() {
        let enc = HdlcEncoder::new();
        let mut wire = vec![FLAG, FLAG, FLAG];
        enc.encode(protocol::IPV4, &[1, 2, 3], FrameOptions::FULL, &mut wire);
        // Share the closing flag with the next frame's opening one.
        wire.pop();
        enc.encode(protocol::IPV6, &[4], FrameOptions::FULL, &mut wire);
        wire.extend_from_slice(&[FLAG, FLAG]);
        let mut dec = HdlcDecoder::new();
        let mut got = Vec::new();
        dec.decode(&wire, |f| got.push(f.to_vec()));
        assert_eq!(
            got,
            vec![
                vec![0xFF, 0x03, 0x00, 0x21, 1, 2, 3],
                vec![0xFF, 0x03, 0x00, 0x57, 4]
            ]
        );
        let s = dec.stats();
        assert_eq!(s.frames, 2);
        assert_eq!(s.fcs_errors + s.runts + s.aborts + s.oversize, 0);
    }

    #[test]
    fn hunts_for_first_flag() {
        let enc = HdlcEncoder::new();
        let mut wire = b"CONNECT 115200\r\n".to_vec();
        enc.encode(protocol::IPV4, &[9], FrameOptions::FULL, &mut wire);
        let mut dec = HdlcDecoder::new();
        let mut n = 0;
        dec.decode(&wire, |_| n += 1);
        assert_eq!(n, 1);
        assert_eq!(dec.stats().fcs_errors, 0);
    }

    #[test]
    fn bad_fcs_dropped_and_counted() {
        let mut wire = LCP_CONFREQ_WIRE16.to_vec();
        wire[3] ^= 0x01; // C0 -> C1
        let mut dec = HdlcDecoder::new();
        let mut n = 0;
        dec.decode(&wire, |_| n += 1);
        dec.decode(&LCP_CONFREQ_WIRE16, |_| n += 1);
        assert_eq!(n, 1);
        let s = dec.stats();
        assert_eq!((s.frames, s.fcs_errors), (1, 1));
    }

    #[test]
    fn abort_sequence() {
        let mut wire = vec![FLAG, 0xFF, 0x7D, 0x23, 0xC0, 0x21, ESCAPE, FLAG];
        wire.extend_from_slice(&LCP_CONFREQ_WIRE16[1..]);
        let mut dec = HdlcDecoder::new();
        let mut got = Vec::new();
        dec.decode(&wire, |f| got.push(f.to_vec()));
        assert_eq!(got, vec![LCP_CONFREQ.to_vec()]);
        let s = dec.stats();
        assert_eq!((s.aborts, s.fcs_errors, s.frames), (1, 0, 1));
    }

    #[test]
    fn runts_dropped() {
        let mut dec = HdlcDecoder::new();
        let mut n = 0;
        // 3 octets (< 4 with FCS-16).
        dec.decode(&[FLAG, 0x21, 0x41, 0x42, FLAG, 0x21, FLAG], |_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(dec.stats().runts, 2);
        assert_eq!(dec.stats().fcs_errors, 0);
    }

    #[test]
    fn rx_accm_characters_removed() {
        let mut enc = HdlcEncoder::new();
        enc.set_accm(0);
        let mut wire = Vec::new();
        enc.encode(
            protocol::IPV4,
            &[0x41, 0x01, 0x42],
            FrameOptions::FULL,
            &mut wire,
        );
        // DCE-inserted XON/XOFF in the middle.
        let mut noisy = wire[..3].to_vec();
        noisy.extend_from_slice(&[0x11, 0x13]);
        noisy.extend_from_slice(&wire[3..]);
        // rx ACCM flags 0x11 and 0x13 but not 0x01: the noise goes, the
        // unescaped 0x01 data octet stays.
        let mut dec = HdlcDecoder::with_config(HdlcDecoderConfig {
            rx_accm: 1 << 0x11 | 1 << 0x13,
            ..Default::default()
        });
        let mut got = Vec::new();
        dec.decode(&noisy, |f| got.push(f.to_vec()));
        assert_eq!(got, vec![vec![0xFF, 0x03, 0x00, 0x21, 0x41, 0x01, 0x42]]);
        assert_eq!(dec.stats().accm_dropped, 2);
        // Even between an escape and its octet.
        let mut enc = HdlcEncoder::new();
        enc.set_accm(DEFAULT_ACCM);
        let mut wire = Vec::new();
        enc.encode(protocol::IPV4, &[0x01], FrameOptions::FULL, &mut wire);
        let pos = wire.iter().rposition(|&b| b == ESCAPE).unwrap();
        wire.insert(pos + 1, 0x13);
        got.clear();
        dec.decode(&wire, |f| got.push(f.to_vec()));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn oversize_bounded() {
        let cfg = HdlcDecoderConfig {
            max_frame_len: 64,
            ..Default::default()
        };
        let mut dec = HdlcDecoder::with_config(cfg);
        let enc = HdlcEncoder::new();
        let mut wire = Vec::new();
        enc.encode(protocol::IPV4, &[0x55; 100], FrameOptions::FULL, &mut wire);
        enc.encode(protocol::IPV4, &[0x55; 60], FrameOptions::FULL, &mut wire);
        // A huge flagless run.
        wire.push(FLAG);
        wire.extend(std::iter::repeat_n(0x42, 1 << 20));
        let mut lens = Vec::new();
        dec.decode(&wire, |f| lens.push(f.len()));
        assert_eq!(lens, vec![64]);
        assert_eq!(dec.stats().oversize, 2);
        assert!(dec.rx.buf.capacity() <= 64 + 4);
        // Exactly at the limit passes.
        let mut wire = Vec::new();
        enc.encode(protocol::IPV4, &[0x55; 60], FrameOptions::FULL, &mut wire);
        dec.decode(&wire, |f| lens.push(f.len()));
        assert_eq!(lens, vec![64, 64]);
    }

    #[test]
    fn fcs32_link_accepts_fcs16_lcp_only() {
        let mut dec = HdlcDecoder::with_config(HdlcDecoderConfig {
            fcs: FcsKind::Fcs32,
            ..Default::default()
        });
        let enc16 = HdlcEncoder::new();
        let mut wire = Vec::new();
        enc16.encode(protocol::IPV4, &[1, 2, 3, 4], FrameOptions::FULL, &mut wire);
        enc16.encode(protocol::LCP, &[9, 1, 0, 4], FrameOptions::FULL, &mut wire);
        let mut got = Vec::new();
        dec.decode(&wire, |f| got.push(f.to_vec()));
        assert_eq!(got, vec![vec![0xFF, 0x03, 0xC0, 0x21, 9, 1, 0, 4]]);
        assert_eq!(dec.stats().fcs_errors, 1);
    }

    #[test]
    fn push_next_frame_api() {
        let enc = HdlcEncoder::new();
        let mut wire = Vec::new();
        for i in 0..3u8 {
            enc.encode(protocol::IPV4, &[i; 5], FrameOptions::FULL, &mut wire);
        }
        let mut dec = HdlcDecoder::new();
        let (a, b) = wire.split_at(10);
        dec.push(a);
        assert!(dec.next_frame().is_none());
        dec.push(b);
        let mut got = Vec::new();
        while let Some(f) = dec.next_frame() {
            got.push(f.to_vec());
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], [0xFF, 0x03, 0x00, 0x21, 2, 2, 2, 2, 2]);
        assert_eq!(dec.pending_len(), 0);
        dec.push(&wire);
        dec.reset();
        assert!(dec.next_frame().is_none());
    }

    fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut pts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        pts.push(0);
        pts.push(data.len());
        pts.sort_unstable();
        pts.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
    }

    fn fcs_kind() -> impl Strategy<Value = FcsKind> {
        prop_oneof![Just(FcsKind::Fcs16), Just(FcsKind::Fcs32)]
    }

    proptest! {
        #[test]
        fn round_trip(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 2..200), 1..8),
            accm in any::<u32>(),
            extra in any::<[u32; 8]>(),
            use_extra in any::<bool>(),
            fcs in fcs_kind(),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            use_push in any::<bool>(),
        ) {
            let mut enc = HdlcEncoder::new();
            if use_extra {
                enc.set_extended_map(extra);
            }
            enc.set_accm(accm);
            enc.set_fcs(fcs);
            let mut wire = Vec::new();
            for f in &frames {
                enc.encode_frame(f, &mut wire);
            }
            // Nothing but the flags appear unescaped, and mapped
            // controls never appear raw.
            let inner = &wire[1..wire.len() - 1];
            for (i, &b) in inner.iter().enumerate() {
                if b == FLAG {
                    prop_assert!(inner[i + 1] == FLAG || inner[i - 1] == FLAG);
                }
                if b < 0x20 && (accm >> b) & 1 == 1 {
                    prop_assert_eq!(inner[i - 1], ESCAPE);
                }
            }
            let mut dec = HdlcDecoder::with_config(HdlcDecoderConfig {
                fcs,
                rx_accm: accm,
                max_frame_len: 200,
            });
            let mut got = Vec::new();
            for c in chunked(&wire, &cuts) {
                if use_push {
                    dec.push(&c);
                    while let Some(f) = dec.next_frame() {
                        got.push(f.to_vec());
                    }
                } else {
                    dec.decode(&c, |f| got.push(f.to_vec()));
                }
            }
            prop_assert_eq!(&got, &frames);
            prop_assert_eq!(dec.stats().frames, frames.len() as u64);
        }

        #[test]
        fn round_trip_packets(
            proto in any::<u16>().prop_map(|p| (p | 1) & !0x0100),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
            ac in any::<bool>(),
            pc in any::<bool>(),
            fcs in fcs_kind(),
            accm in any::<u32>(),
        ) {
            let opts = FrameOptions { address_control: ac, compress_protocol: pc };
            let mut enc = HdlcEncoder::new();
            enc.set_fcs(fcs);
            enc.set_accm(accm);
            let mut a = Vec::new();
            enc.encode(proto, &payload, opts, &mut a);
            let mut raw = Vec::new();
            frame::encode(proto, &payload, opts, &mut raw);
            let mut b = Vec::new();
            enc.encode_frame(&raw, &mut b);
            prop_assert_eq!(&a, &b);
            prop_assert!(a.len() <= HdlcEncoder::max_encoded_len(raw.len(), fcs));
            let mut dec = HdlcDecoder::with_config(HdlcDecoderConfig { fcs, rx_accm: accm, ..Default::default() });
            let mut got = Vec::new();
            dec.decode(&a, |f| got.push(f.to_vec()));
            if raw.len() >= MIN_FRAME_LEN {
                prop_assert_eq!(got.len(), 1);
                let f = frame::decode(&got[0]).unwrap();
                prop_assert_eq!(f.protocol, proto);
                prop_assert_eq!(f.payload, &payload[..]);
            }
        }

        #[test]
        fn random_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
            fcs in fcs_kind(),
            accm in any::<u32>(),
            max in 0usize..300,
        ) {
            let mut dec = HdlcDecoder::with_config(HdlcDecoderConfig { fcs, rx_accm: accm, max_frame_len: max });
            for c in chunked(&data, &cuts) {
                dec.decode(&c, |f| {
                    assert!(f.len() <= max && f.len() >= MIN_FRAME_LEN);
                    let _ = frame::decode(f);
                });
                prop_assert!(dec.rx.buf.len() <= max + fcs.octets());
            }
        }

        #[test]
        fn random_escape_heavy_never_panic(
            data in proptest::collection::vec(prop_oneof![Just(FLAG), Just(ESCAPE), Just(0x5Eu8), Just(0x00u8), any::<u8>()], 0..500),
        ) {
            let mut dec = HdlcDecoder::new();
            dec.push(&data);
            while let Some(f) = dec.next_frame() {
                prop_assert!(f.len() >= MIN_FRAME_LEN);
            }
        }
    }
}
