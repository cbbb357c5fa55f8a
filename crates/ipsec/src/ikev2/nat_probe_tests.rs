use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn request_data_round_trips_and_bad_lengths_are_refused() {
    let r = ProbeRequest {
        delay: Duration::from_millis(12_345),
        cookie: 0xdead_beef,
    };
    let bytes = r.encode();
    assert_eq!(bytes, [0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(ProbeRequest::parse(&bytes), Ok(r));
    assert_eq!(
        ProbeRequest::parse(&bytes[..7]),
        Err(ProbeDataError::RequestLength(7))
    );
    assert_eq!(
        ProbeRequest::parse(&[0; 9]),
        Err(ProbeDataError::RequestLength(9))
    );
    assert_eq!(
        ProbeRequest::parse(&[]),
        Err(ProbeDataError::RequestLength(0))
    );
    assert_eq!(parse_probe(&encode_probe(7)), Ok(7));
    assert_eq!(parse_probe(&[1, 2, 3]), Err(ProbeDataError::ProbeLength(3)));
    assert_eq!(parse_probe(&[0; 5]), Err(ProbeDataError::ProbeLength(5)));
}

#[test]
fn the_server_clamps_delays() {
    let at = |ms: u32| ProbeRequest {
        delay: Duration::from_millis(u64::from(ms)),
        cookie: 1,
    };
    assert_eq!(at(0).clamped_delay(), MIN_DELAY);
    assert_eq!(at(999).clamped_delay(), MIN_DELAY);
    assert_eq!(at(20_000).clamped_delay(), secs(20));
    assert_eq!(at(u32::MAX).clamped_delay(), MAX_DELAY);
}

/// Runs the meter against a NAT that keeps a mapping `nat` long, with a
/// probe arriving `delay` after the answer when it survived.
fn measure(nat: Duration, settings: NatProbeSettings) -> (Duration, Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut now = start;
    let mut meter = NatTimeoutMeter::new(settings, now, 100);
    let mut tried = Vec::new();
    for _ in 0..100 {
        now = meter.next_deadline().expect("a deadline while not done");
        let request = meter.request_due(now).expect("a request when idle and due");
        tried.push(request.delay);
        // The answer comes 50 ms later.
        now += Duration::from_millis(50);
        meter.answered(now);
        assert!(meter.quiet());
        let outcome = if request.delay < nat {
            now += request.delay + Duration::from_millis(30);
            meter.probe_arrived(now, request.cookie).expect("counted")
        } else {
            now = meter.next_deadline().unwrap();
            meter.poll(now).expect("lost")
        };
        let outcome = match outcome {
            ProbeOutcome::Expired(_) => {
                // Idle until after_loss.
                assert_eq!(meter.next_deadline(), Some(now + settings.after_loss));
                outcome
            }
            other => other,
        };
        if let ProbeOutcome::Measured { timeout, keepalive } = outcome {
            assert!(meter.is_done());
            assert_eq!(meter.result(), Some(timeout));
            return (timeout, tried, keepalive);
        }
    }
    panic!("no result after 100 probes: {tried:?}");
}

#[test]
fn grows_then_bisects_to_the_resolution() {
    let (timeout, tried, keepalive) = measure(secs(20), NatProbeSettings::default());
    // 10 survives, 20 is lost; then 15, 17.5, 18.75 survive (bisect to 2 s).
    assert_eq!(tried[..2], [secs(10), secs(20)]);
    assert!(
        timeout >= secs(18) && timeout < secs(20),
        "{timeout:?} {tried:?}"
    );
    assert_eq!(keepalive, timeout * 85 / 100);
    // Every delay tried at or above the NAT's timeout was lost, every one
    // below survived, and the result is the longest survivor.
    let longest = tried.iter().filter(|d| **d < secs(20)).max().copied();
    assert_eq!(Some(timeout), longest);
}

#[test]
fn a_nat_that_keeps_mappings_long_ends_at_the_cap() {
    let (timeout, tried, keepalive) = measure(secs(3600), NatProbeSettings::default());
    assert_eq!(
        tried,
        vec![secs(10), secs(20), secs(40), secs(80), secs(160), secs(300)]
    );
    assert_eq!(timeout, secs(300));
    assert_eq!(keepalive, secs(255));
}

#[test]
fn a_short_timeout_keeps_the_keepalive_floor() {
    let (timeout, _, keepalive) = measure(secs(4), NatProbeSettings::default());
    assert!(timeout < secs(4), "{timeout:?}");
    assert_eq!(keepalive, secs(5));
    let (timeout, _, _) = measure(secs(65), NatProbeSettings::default());
    assert!(timeout >= secs(63) && timeout < secs(65), "{timeout:?}");
}

#[test]
fn traffic_in_between_makes_a_probe_inconclusive() {
    let settings = NatProbeSettings::default();
    let mut now = Instant::now();
    let mut meter = NatTimeoutMeter::new(settings, now, 5);
    // Nothing before the pause is over.
    assert_eq!(meter.request_due(now), None);
    now += settings.pause;
    let r = meter.request_due(now).unwrap();
    assert_eq!(r.delay, secs(10));
    // A taint before the answer does not count (the answer itself passes).
    meter.taint();
    meter.answered(now);
    meter.taint();
    now += secs(10);
    assert_eq!(
        meter.probe_arrived(now, r.cookie),
        Some(ProbeOutcome::Inconclusive)
    );
    assert!(!meter.quiet());
    // Retried later with the same delay (nothing was learnt).
    assert_eq!(meter.request_due(now + secs(1)), None);
    now += settings.retry_after;
    let again = meter.request_due(now).unwrap();
    assert_eq!(again.delay, secs(10));
    assert_ne!(again.cookie, r.cookie);
    meter.answered(now);
    // A stale cookie counts for nothing but taints; a tainted loss is
    // inconclusive, not lost.
    assert_eq!(meter.probe_arrived(now + secs(10), r.cookie), None);
    assert_eq!(meter.poll(now + secs(11)), None);
    assert_eq!(meter.poll(now + secs(12)), Some(ProbeOutcome::Inconclusive));
}

#[test]
fn a_late_probe_is_a_loss() {
    let settings = NatProbeSettings::default();
    let mut now = Instant::now() + settings.pause;
    let mut meter = NatTimeoutMeter::new(settings, now - settings.pause, 1);
    let r = meter.request_due(now).unwrap();
    meter.answered(now);
    now += r.delay + settings.grace;
    assert_eq!(meter.poll(now), Some(ProbeOutcome::Expired(secs(10))));
    // The server's retransmission arriving afterwards changes nothing.
    assert_eq!(meter.probe_arrived(now + secs(5), r.cookie), None);
    // Next: bisect between nothing and 10 s, after the server's
    // retransmission had time to pass.
    assert_eq!(meter.request_due(now + settings.pause), None);
    now += settings.after_loss;
    assert_eq!(meter.request_due(now).unwrap().delay, secs(5));
}

#[test]
fn an_unanswered_request_is_abandoned_and_retried() {
    let settings = NatProbeSettings::default();
    let now = Instant::now() + settings.pause;
    let mut meter = NatTimeoutMeter::new(settings, now - settings.pause, 1);
    meter.request_due(now).unwrap();
    assert!(meter.quiet());
    meter.abandoned(now);
    assert!(!meter.quiet());
    assert_eq!(meter.next_deadline(), Some(now + settings.retry_after));
}
