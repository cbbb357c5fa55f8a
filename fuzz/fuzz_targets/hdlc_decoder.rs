//! Fuzz `ppp::hdlc::HdlcDecoder`.
//!
//! The first four octets choose the settings and the chunk size. Then:
//! * raw mode: the rest is line noise fed to the decoder in chunks;
//! * encoded mode (`ctl & 0x80`): the rest is cut into frames, framed by
//!   `HdlcEncoder`, one octet of the stream optionally flipped, and fed to
//!   the decoder in chunks. Without corruption every frame must come back.
//!
//! In both modes the frames that come out are checked against the limits,
//! passed to `frame::decode`, and must survive an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp::frame;
use ppp::hdlc::{FcsKind, HdlcDecoder, HdlcDecoderConfig, HdlcEncoder, MIN_FRAME_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&[ctl, accm0, accm1, max], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let fcs = if ctl & 1 == 0 {
        FcsKind::Fcs16
    } else {
        FcsKind::Fcs32
    };
    // Mostly the defaults, sometimes a small limit or a sparse ACCM.
    let accm = if ctl & 2 == 0 {
        0xFFFF_FFFF
    } else {
        u32::from(accm0) << 24 | u32::from(accm1) << 8 | u32::from(accm0 ^ accm1)
    };
    let max_frame_len = if ctl & 4 == 0 { 1600 } else { usize::from(max) };
    let cfg = HdlcDecoderConfig {
        fcs,
        rx_accm: accm,
        max_frame_len,
    };
    let chunk = usize::from((ctl >> 3) & 0x0F) + 1;
    let use_push = max & 1 == 1;
    let encoded_mode = ctl & 0x80 != 0;

    let mut enc = HdlcEncoder::new();
    enc.set_fcs(fcs);
    enc.set_accm(accm);

    // The stream to decode, and the frames expected from it (if known).
    let mut expected: Option<Vec<&[u8]>> = None;
    let mut encoded = Vec::new();
    let input: &[u8] = if encoded_mode {
        let frame_len = usize::from(accm1 % 64) + MIN_FRAME_LEN;
        let sent: Vec<&[u8]> = rest.chunks(frame_len).collect();
        for f in &sent {
            enc.encode_frame(f, &mut encoded);
        }
        let corrupt = usize::from(accm0);
        if max & 2 == 2 && !encoded.is_empty() {
            let i = corrupt % encoded.len();
            encoded[i] ^= max | 1;
        } else {
            expected = Some(
                sent.into_iter()
                    .filter(|f| f.len() >= MIN_FRAME_LEN && f.len() <= max_frame_len)
                    .collect(),
            );
        }
        &encoded
    } else {
        rest
    };

    let mut dec = HdlcDecoder::with_config(cfg);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for c in input.chunks(chunk) {
        if use_push {
            dec.push(c);
            while let Some(f) = dec.next_frame() {
                frames.push(f.to_vec());
            }
        } else {
            dec.decode(c, |f| frames.push(f.to_vec()));
        }
    }
    assert_eq!(dec.stats().frames, frames.len() as u64);
    if let Some(want) = expected {
        assert_eq!(frames, want);
    }

    // Whatever came out must survive re-encoding. (With FCS-32 an LCP
    // frame may have been accepted with FCS-16, hence the + 2.)
    let mut wire = Vec::new();
    for f in &frames {
        assert!(f.len() >= MIN_FRAME_LEN && f.len() <= max_frame_len + 2);
        let _ = frame::decode(f);
        enc.encode_frame(f, &mut wire);
    }
    let mut again = HdlcDecoder::with_config(HdlcDecoderConfig {
        max_frame_len: max_frame_len + 2,
        ..cfg
    });
    let mut n = 0;
    again.decode(&wire, |f| {
        assert_eq!(f, &frames[n][..]);
        n += 1;
    });
    assert_eq!(n, frames.len());
});
