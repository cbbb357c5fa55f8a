//! Round trips for every suite, tampering, sequence exhaustion, lifetimes.

use std::time::{Duration, Instant};

use super::super::{
    EspError, EspSa, LifetimeLimits, LifetimeStatus, ESP_HEADER_LEN, NEXT_HEADER_IPV6,
};
use super::{config, sa, ALL_SUITES};

const SPI: u32 = 0xC0FF_EE01;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn every_suite_round_trips_every_length() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let mut out = sa(SPI, suite, now);
        let mut inb = sa(SPI, suite, now);
        let mut buf = Vec::new();
        for len in [0, 1, 2, 13, 14, 15, 16, 17, 100, 1400, 1500] {
            let data = payload(len);
            out.encapsulate(now, 17, &data, &mut buf).unwrap();
            assert_eq!(buf.len() % 4, 0, "{suite}: RFC 4303 §2.4 alignment");
            assert!(buf.len() <= len + out.max_overhead(), "{suite}");
            if len >= 8 {
                let body = ESP_HEADER_LEN + suite.iv_len();
                assert_ne!(&buf[body..body + 8], &data[..8], "{suite}: encrypted");
            }
            let got = inb.decapsulate(now, &mut buf).unwrap();
            assert_eq!(got.next_header, 17, "{suite}");
            assert_eq!(&buf[got.payload], &data[..], "{suite} len {len}");
        }
        assert_eq!(out.counters().packets, 11);
        assert_eq!(inb.counters().packets, 11);
        assert_eq!(inb.counters().bytes, out.counters().bytes);
    }
}

#[test]
fn sequence_numbers_start_at_one_and_increase() {
    let now = Instant::now();
    let mut out = sa(SPI, ALL_SUITES[0], now);
    let mut buf = Vec::new();
    for expected in 1..=3u32 {
        out.encapsulate(now, 17, b"x", &mut buf).unwrap();
        assert_eq!(&buf[..4], &SPI.to_be_bytes());
        assert_eq!(&buf[4..8], &expected.to_be_bytes());
    }
}

#[test]
fn gcm_ivs_never_repeat_and_cbc_ivs_are_random() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let mut out = sa(SPI, suite, now);
        let mut buf = Vec::new();
        let mut ivs = std::collections::HashSet::new();
        for _ in 0..100 {
            out.encapsulate(now, 17, b"same payload", &mut buf).unwrap();
            assert!(ivs.insert(buf[8..8 + suite.iv_len()].to_vec()), "{suite}");
        }
    }
}

#[test]
fn tunnel_mode_carries_the_inner_packet_and_its_next_header() {
    let now = Instant::now();
    let mut out = sa(SPI, ALL_SUITES[2], now);
    let mut inb = sa(SPI, ALL_SUITES[2], now);
    let inner = payload(60);
    let mut buf = Vec::new();
    out.encapsulate(now, NEXT_HEADER_IPV6, &inner, &mut buf)
        .unwrap();
    let got = inb.decapsulate(now, &mut buf).unwrap();
    assert_eq!(got.next_header, NEXT_HEADER_IPV6);
    assert_eq!(&buf[got.payload], &inner[..]);
}

/// Flipping any single bit of the packet (header, IV, ciphertext, trailer or
/// ICV) must be refused, and must not move the replay window.
#[test]
fn any_flipped_bit_is_rejected() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let mut out = sa(SPI, suite, now);
        let mut inb = sa(SPI, suite, now);
        let mut clean = Vec::new();
        out.encapsulate(now, 17, &payload(37), &mut clean).unwrap();
        for byte in 0..clean.len() {
            let mut forged = clean.clone();
            forged[byte] ^= 1 << (byte % 8);
            let err = inb.decapsulate(now, &mut forged).unwrap_err();
            if byte < 4 {
                assert!(
                    matches!(err, EspError::UnknownSpi(_)),
                    "{suite} byte {byte}"
                );
            } else if (4..8).contains(&byte) {
                // A changed sequence number is still fresh: the ICV catches it.
                assert_eq!(err, EspError::AuthenticationFailed, "{suite} byte {byte}");
            } else {
                assert_eq!(err, EspError::AuthenticationFailed, "{suite} byte {byte}");
            }
        }
        assert_eq!(inb.replay_window().highest(), 0, "{suite}");
        assert_eq!(inb.counters().packets, 0);
        assert_eq!(inb.counters().auth_failed, clean.len() as u64 - 4);
        // The genuine packet still gets through afterwards.
        let mut genuine = clean.clone();
        inb.decapsulate(now, &mut genuine).unwrap();
    }
}

#[test]
fn bad_padding_under_a_valid_icv_is_rejected() {
    // A sender with the right keys but wrong padding bytes: the ICV verifies,
    // the §2.4 padding check refuses it.
    let now = Instant::now();
    for suite in ALL_SUITES {
        let out = sa(SPI, suite, now);
        let mut inb = sa(SPI, suite, now);
        let iv = vec![7u8; suite.iv_len()];
        // 13 bytes + 2 trailer: one pad byte for both CBC (16) and GCM (4).
        let data = payload(13);
        let mut buf = Vec::new();
        out.encapsulate_with(1, &iv, 17, &data, &mut buf).unwrap();
        let ok = inb.decapsulate(now, &mut buf.clone()).unwrap();
        assert_eq!(ok.payload.len(), 13);

        // The same 13 bytes followed by one pad byte of 9 instead of 1
        // (RFC 4303 §2.4), sealed with the right keys.
        let mut tricky = data.clone();
        tricky.push(9);
        let mut forged = Vec::new();
        seal_raw(&out, 2, &iv, &tricky, 1, 17, &mut forged);
        let err = inb.decapsulate(now, &mut forged).unwrap_err();
        assert_eq!(err, EspError::BadPadding, "{suite}");

        // A pad length pointing before the payload start.
        let mut forged = Vec::new();
        seal_raw(&out, 3, &iv, &tricky, 200, 17, &mut forged);
        assert_eq!(
            inb.decapsulate(now, &mut forged).unwrap_err(),
            EspError::BadPadding
        );
        assert_eq!(inb.counters().malformed, 2);
    }
}

/// Builds a packet whose encrypted body is `body`, `pad_len`, `next_header`
/// with no padding of our own: the body must already be aligned to
/// `alignment() - 2`.
fn seal_raw(
    sa: &EspSa,
    seq: u32,
    iv: &[u8],
    body: &[u8],
    pad_len: u8,
    next_header: u8,
    out: &mut Vec<u8>,
) {
    let icv_len = sa.suite().icv_len();
    out.clear();
    out.extend_from_slice(&sa.spi().to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(iv);
    out.extend_from_slice(body);
    out.push(pad_len);
    out.push(next_header);
    assert_eq!((out.len() - 8 - iv.len()) % sa.suite().alignment(), 0);
    let icv_start = out.len();
    out.resize(icv_start + icv_len, 0);
    let (packet, icv) = out.split_at_mut(icv_start);
    sa.transform_for_tests()
        .seal(packet, 8 + iv.len(), icv)
        .unwrap();
}

#[test]
fn truncated_and_misaligned_packets_are_malformed() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let mut out = sa(SPI, suite, now);
        let mut inb = sa(SPI, suite, now);
        let mut buf = Vec::new();
        out.encapsulate(now, 17, &payload(40), &mut buf).unwrap();
        for len in 0..ESP_HEADER_LEN + suite.iv_len() + 2 + suite.icv_len() {
            let mut short = buf[..len].to_vec();
            assert!(
                matches!(
                    inb.decapsulate(now, &mut short),
                    Err(EspError::Truncated(_))
                ),
                "{suite} len {len}"
            );
        }
        if !suite.is_aead() {
            let mut odd = buf.clone();
            odd.insert(30, 0);
            assert!(matches!(
                inb.decapsulate(now, &mut odd),
                Err(EspError::Misaligned(_))
            ));
        }
    }
}

#[test]
fn sequence_number_exhaustion_is_refused() {
    let now = Instant::now();
    let mut out = sa(SPI, ALL_SUITES[0], now);
    out.set_last_seq(u32::MAX - 1);
    assert_eq!(out.lifetime_status(now), LifetimeStatus::RekeyDue);
    let mut buf = Vec::new();
    out.encapsulate(now, 17, b"last", &mut buf).unwrap();
    assert_eq!(&buf[4..8], &u32::MAX.to_be_bytes());
    assert_eq!(out.lifetime_status(now), LifetimeStatus::Expired);
    assert_eq!(
        out.encapsulate(now, 17, b"one too many", &mut buf),
        Err(EspError::SequenceExhausted)
    );
    assert_eq!(out.last_seq(), u32::MAX);
}

#[test]
fn lifetimes_by_time_and_bytes() {
    let now = Instant::now();
    let suite = ALL_SUITES[0];
    let mut cfg = config(SPI, suite, &[1; 20], &[]);
    cfg.lifetime = LifetimeLimits {
        soft_time: Some(Duration::from_secs(100)),
        hard_time: Some(Duration::from_secs(120)),
        soft_bytes: Some(1000),
        hard_bytes: Some(2000),
    };
    let mut out = EspSa::new(&cfg, now).unwrap();
    let mut buf = Vec::new();
    assert_eq!(out.lifetime_status(now), LifetimeStatus::Fresh);
    assert_eq!(
        out.lifetime_status(now + Duration::from_secs(100)),
        LifetimeStatus::RekeyDue
    );
    assert_eq!(
        out.lifetime_status(now + Duration::from_secs(120)),
        LifetimeStatus::Expired
    );
    assert_eq!(
        out.encapsulate(now + Duration::from_secs(121), 17, b"x", &mut buf),
        Err(EspError::Expired)
    );
    out.encapsulate(now, 17, &[0; 1000], &mut buf).unwrap();
    assert_eq!(out.lifetime_status(now), LifetimeStatus::RekeyDue);
    out.encapsulate(now, 17, &[0; 1000], &mut buf).unwrap();
    assert_eq!(out.lifetime_status(now), LifetimeStatus::Expired);
    assert_eq!(
        out.encapsulate(now, 17, b"x", &mut buf),
        Err(EspError::Expired)
    );
}

#[test]
fn wrong_key_lengths_are_refused() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let right = suite.cipher_key_len() + suite.salt_len();
        let cfg = config(
            SPI,
            suite,
            &vec![0; right - 1],
            &vec![0; suite.integrity_key_len()],
        );
        assert!(matches!(
            EspSa::new(&cfg, now),
            Err(EspError::KeyLength { .. })
        ));
        let cfg = config(
            SPI,
            suite,
            &vec![0; right],
            &vec![0; suite.integrity_key_len() + 1],
        );
        assert!(matches!(
            EspSa::new(&cfg, now),
            Err(EspError::KeyLength { .. })
        ));
    }
}
