//! The inbound SA set across a rekey.

use std::time::{Duration, Instant};

use super::super::{EspError, EspSa, InboundSas, LifetimeLimits};
use super::{config, sa, ALL_SUITES};

#[test]
fn old_and_new_sa_overlap_during_a_rekey() {
    let now = Instant::now();
    let suite = ALL_SUITES[0];
    let (old_spi, new_spi) = (0x1111_1111, 0x2222_2222);
    let mut old_out = sa(old_spi, suite, now);
    let mut new_out = sa(new_spi, suite, now);
    let mut set = InboundSas::new();
    set.insert(sa(old_spi, suite, now));

    let mut in_flight_on_old = Vec::new();
    old_out
        .encapsulate(now, 17, b"before", &mut in_flight_on_old)
        .unwrap();

    // Rekey: the new inbound SA is installed, the peer switches, but a
    // packet sent on the old SA is still in flight.
    set.insert(sa(new_spi, suite, now));
    let mut on_new = Vec::new();
    new_out.encapsulate(now, 17, b"after", &mut on_new).unwrap();
    let got = set.decapsulate(now, &mut on_new).unwrap();
    assert_eq!((got.spi, &on_new[got.payload]), (new_spi, &b"after"[..]));
    let got = set.decapsulate(now, &mut in_flight_on_old).unwrap();
    assert_eq!(
        (got.spi, &in_flight_on_old[got.payload]),
        (old_spi, &b"before"[..])
    );

    // Delete of the old SA: its SPI is no longer accepted.
    assert!(set.remove(old_spi).is_some());
    let mut late = Vec::new();
    old_out.encapsulate(now, 17, b"late", &mut late).unwrap();
    assert_eq!(
        set.decapsulate(now, &mut late),
        Err(EspError::UnknownSpi(old_spi))
    );
    assert_eq!(set.unknown_spi_drops(), 1);
    assert_eq!(
        set.decapsulate(now, &mut [1, 2]),
        Err(EspError::Truncated(2))
    );
    assert_eq!(set.runt_drops(), 1);
}

#[test]
fn hard_expired_sas_are_swept_and_soft_ones_reported() {
    let now = Instant::now();
    let suite = ALL_SUITES[1];
    let key = vec![3u8; suite.cipher_key_len() + suite.salt_len()];
    let mut short = config(7, suite, &key, &[]);
    short.lifetime = LifetimeLimits {
        soft_time: Some(Duration::from_secs(5)),
        hard_time: Some(Duration::from_secs(10)),
        ..LifetimeLimits::default()
    };
    let mut set = InboundSas::new();
    set.insert(EspSa::new(&short, now).unwrap());
    set.insert(sa(8, suite, now));
    assert!(set.rekey_due(now).is_empty());
    assert_eq!(set.rekey_due(now + Duration::from_secs(5)), vec![7]);
    assert!(set.remove_expired(now + Duration::from_secs(9)).is_empty());
    let gone = set.remove_expired(now + Duration::from_secs(10));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].spi(), 7);
    assert_eq!(set.len(), 1);
    assert!(set.get(8).is_some());
}
