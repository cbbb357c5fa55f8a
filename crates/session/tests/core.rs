//! The session core without tokio: a server core against a client core
//! in memory, phase by phase, with the owner's answers given by the test —
//! on time, late, twice, and after the link went down.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp::auth::{AuthMethod, Rejection, Secret};
use ppp::ipcp::IpcpConfig;
use ppp::link::{Inbound, Link, LinkConfig, NetworkSettings};
use session::{
    AuthAnswer, EndReason, HookAnswer, HookRequest, IgnoredAnswer, LostCarrier, Role, SessionCore,
    SessionEvent, SessionInfo, TerminateCause,
};
use zeroize::Zeroizing;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);

/// The tests of this file one at a time: `info_lines` captures log lines
/// with a thread-scoped subscriber, and tracing's per-callsite interest
/// cache is global, so a test logging on another thread without a
/// subscriber at the same moment can make it miss lines.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn info(id: u64) -> SessionInfo {
    SessionInfo {
        id,
        peer: "192.0.2.7:40000".into(),
        user: None,
    }
}

/// A server core and a client core ("alice" / `password`), seeded.
fn pair(password: &str, now: Instant) -> (SessionCore, SessionCore) {
    let mut server = LinkConfig::server("ras");
    server.rng_seed = Some(1);
    let mut client = LinkConfig::client("alice", password);
    client.rng_seed = Some(2);
    (
        SessionCore::new(Link::new(server), info(1), Role::Server, now),
        SessionCore::new(Link::new(client), info(2), Role::Client, now),
    )
}

fn settings() -> NetworkSettings {
    NetworkSettings {
        ipcp: Some(IpcpConfig::server(
            SERVER_IP,
            CLIENT_IP,
            [None, None],
            [None, None],
        )),
        ipv6cp: None,
        ccp: None,
    }
}

fn alice_secret() -> AuthAnswer {
    AuthAnswer::Secret(Secret::Password(Zeroizing::new("secret".into())))
}

/// What each side asked and saw, in order.
#[derive(Default)]
struct Seen {
    requests: Vec<HookRequest>,
    events: Vec<SessionEvent>,
}

/// Moves control frames both ways until nothing moves; collects what the
/// cores ask and report. The test answers.
fn settle(now: Instant, s: &mut SessionCore, c: &mut SessionCore, ss: &mut Seen, cs: &mut Seen) {
    for _ in 0..200 {
        let mut moved = false;
        while let Some(mut f) = s.poll_transmit() {
            moved = true;
            c.handle_frame(now, &mut f);
        }
        while let Some(mut f) = c.poll_transmit() {
            moved = true;
            s.handle_frame(now, &mut f);
        }
        while let Some(r) = s.poll_hook_request() {
            moved = true;
            ss.requests.push(r);
        }
        while let Some(r) = c.poll_hook_request() {
            moved = true;
            cs.requests.push(r);
        }
        while let Some(e) = s.poll_event() {
            moved = true;
            ss.events.push(e);
        }
        while let Some(e) = c.poll_event() {
            moved = true;
            cs.events.push(e);
        }
        if !moved {
            return;
        }
    }
    panic!("the cores did not settle");
}

/// Lets the link timers run out (RFC 1661 §4.1: after a Terminate-Ack
/// the layer finishes when the restart timer expires).
fn run_timers(
    now: Instant,
    s: &mut SessionCore,
    c: &mut SessionCore,
    ss: &mut Seen,
    cs: &mut Seen,
) {
    for step in 1..=10 {
        let t = now + Duration::from_secs(step);
        s.handle_timeout(t);
        c.handle_timeout(t);
        settle(t, s, c, ss, cs);
    }
}

fn take_auth(seen: &mut Seen) -> (String, AuthMethod) {
    let i = seen
        .requests
        .iter()
        .position(|r| matches!(r, HookRequest::Authenticate(_)))
        .expect("an Authenticate request");
    match seen.requests.remove(i) {
        HookRequest::Authenticate(a) => (a.username, a.method),
        _ => unreachable!(),
    }
}

fn asked(seen: &Seen, what: fn(&HookRequest) -> bool) -> usize {
    seen.requests.iter().filter(|r| what(r)).count()
}

/// Started and past LCP: the server's owner was asked to check alice's
/// credentials and answered `answer`.
fn answered_auth(
    password: &str,
    answer: AuthAnswer,
    now: Instant,
) -> (SessionCore, SessionCore, Seen, Seen) {
    let (mut s, mut c) = pair(password, now);
    let (mut ss, mut cs) = (Seen::default(), Seen::default());
    s.lower_up(now);
    c.lower_up(now);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    take_auth(&mut ss);
    s.handle_hook_answer(now, HookAnswer::Auth(answer)).unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    (s, c, ss, cs)
}

/// Both sides up, the owner answering everything at once.
fn up_pair(now: Instant) -> (SessionCore, SessionCore, Seen, Seen) {
    let (mut s, mut c) = pair("secret", now);
    let (mut ss, mut cs) = (Seen::default(), Seen::default());
    s.lower_up(now);
    c.lower_up(now);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    let (user, method) = take_auth(&mut ss);
    // The server's default first offer is EAP (MS-CHAPv2 inside, as RRAS).
    assert_eq!((user.as_str(), method), ("alice", AuthMethod::EapMsChapV2));
    s.handle_hook_answer(now, HookAnswer::Auth(alice_secret()))
        .unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    assert_eq!(asked(&ss, |r| matches!(r, HookRequest::Network)), 1);
    assert_eq!(s.info().user.as_deref(), Some("alice"));
    assert!(s.master_keys().is_some(), "MS-CHAPv2 keys for SSTP binding");
    s.handle_hook_answer(now, HookAnswer::Network(Ok(settings())))
        .unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    assert_eq!(asked(&ss, |r| matches!(r, HookRequest::Up(_))), 1);
    assert_eq!(asked(&cs, |r| matches!(r, HookRequest::Up(_))), 1);
    s.handle_hook_answer(now, HookAnswer::Up(Ok(()))).unwrap();
    c.handle_hook_answer(now, HookAnswer::Up(Ok(()))).unwrap();
    (s, c, ss, cs)
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

#[test]
fn a_server_session_asks_in_order_and_carries_ip() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, mut c, ss, cs) = up_pair(now);
    // Server: Authenticated, NetworkStarted, Up, in that order; the
    // client: Authenticated, Up. No Down yet.
    let kinds = |seen: &Seen| -> Vec<&'static str> {
        seen.events
            .iter()
            .map(|e| match e {
                SessionEvent::Authenticated => "auth",
                SessionEvent::NetworkStarted => "network",
                SessionEvent::Up(_) => "up",
                SessionEvent::Down => "down",
            })
            .collect()
    };
    assert_eq!(kinds(&ss), ["auth", "network", "up"]);
    assert_eq!(kinds(&cs), ["auth", "up"]);
    // A client asks no Network and no Authenticate of its owner.
    assert_eq!(asked(&cs, |r| matches!(r, HookRequest::Network)), 0);
    assert_eq!(asked(&cs, |r| matches!(r, HookRequest::Authenticate(_))), 0);
    assert!(s.was_up() && c.was_up());

    // IP both ways through the links.
    let up = ss
        .events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Up(up) => Some(up.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(up.ipv4.unwrap().peer, CLIENT_IP);
    let packet = ipv4_packet(CLIENT_IP, SERVER_IP, b"hello");
    let mut frame = Vec::new();
    c.send_ip(&packet, &mut frame).unwrap();
    match s.handle_frame(now, &mut frame) {
        Inbound::Ipv4(p) => assert_eq!(p, &packet[..]),
        _ => panic!("the server got no IPv4 packet"),
    }
    let back = ipv4_packet(SERVER_IP, CLIENT_IP, b"world");
    let mut frame = Vec::new();
    s.send_ip(&back, &mut frame).unwrap();
    match c.handle_frame(now, &mut frame) {
        Inbound::Ipv4(p) => assert_eq!(p, &back[..]),
        _ => panic!("the client got no IPv4 packet"),
    }
}

/// The peer hangs up with LCP Terminate-Request: User-Request, and the
/// owner hears Down exactly once, however often the driver finishes.
#[test]
fn a_hang_up_is_a_user_request_and_down_is_asked_once() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, mut c, mut ss, mut cs) = up_pair(now);
    ss.requests.clear();
    c.close(now, EndReason::LocalRequest);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    run_timers(now, &mut s, &mut c, &mut ss, &mut cs);
    assert!(s.is_down());
    assert!(matches!(ss.events.last(), Some(SessionEvent::Down)));
    let reason = s.finish();
    assert_eq!(reason.terminate_cause(), TerminateCause::UserRequest);
    assert_eq!(s.finish(), reason, "finishing twice changes nothing");
    let mut downs = Vec::new();
    while let Some(r) = s.poll_hook_request() {
        downs.push(r);
    }
    assert!(matches!(&downs[..], [HookRequest::Down(r)] if *r == reason));
    // The client, which asked no network, asks no Down.
    c.finish();
    assert!(c.poll_hook_request().is_none());
}

/// Answers that come late, twice, unasked or after the link went down
/// are refused and change nothing.
#[test]
fn late_repeated_and_unasked_answers_are_not_applied() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, mut c) = pair("secret", now);
    let (mut ss, mut cs) = (Seen::default(), Seen::default());
    // Nothing asked yet.
    assert_eq!(
        s.handle_hook_answer(now, HookAnswer::Network(Ok(settings()))),
        Err(IgnoredAnswer::NotAsked("network"))
    );
    assert_eq!(
        s.handle_hook_answer(now, HookAnswer::Up(Ok(()))),
        Err(IgnoredAnswer::NotAsked("link-up"))
    );
    s.lower_up(now);
    c.lower_up(now);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    take_auth(&mut ss);
    // The owner is slow: the client sends its response again meanwhile
    // (nothing new is asked), then two answers come for one question.
    let later = now + Duration::from_secs(3);
    s.handle_timeout(later);
    c.handle_timeout(later);
    settle(later, &mut s, &mut c, &mut ss, &mut cs);
    assert_eq!(
        asked(&ss, |r| matches!(r, HookRequest::Authenticate(_))),
        0,
        "a retransmitted response is no new question"
    );
    s.handle_hook_answer(later, HookAnswer::Auth(alice_secret()))
        .unwrap();
    assert_eq!(
        s.handle_hook_answer(later, HookAnswer::Auth(alice_secret()))
            .unwrap_err(),
        IgnoredAnswer::NotAsked("authentication")
    );
    settle(later, &mut s, &mut c, &mut ss, &mut cs);
    assert_eq!(asked(&ss, |r| matches!(r, HookRequest::Network)), 1);
    // The transport goes away while the owner decides the network.
    s.lower_down(later, None);
    assert_eq!(
        s.handle_hook_answer(later, HookAnswer::Network(Ok(settings()))),
        Err(IgnoredAnswer::SessionEnded("network"))
    );
    assert!(s.is_down());
    let reason = s.finish();
    assert_eq!(reason, EndReason::LostCarrier(LostCarrier::TransportClosed));
    // Network was asked, so Down is owed even though it never started.
    let mut downs = 0;
    while let Some(r) = s.poll_hook_request() {
        assert!(matches!(r, HookRequest::Down(_)), "{r:?}");
        downs += 1;
    }
    assert_eq!(downs, 1);
}

/// An Up answer after the link went down is refused (its queue would
/// carry nothing); an Up refusal on time ends the session as
/// Service-Unavailable on the server.
#[test]
fn up_answers_after_the_end_and_up_refusals() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, mut c, mut ss, mut cs) = up_pair(now);
    // A second Up answer for the one question.
    assert_eq!(
        s.handle_hook_answer(now, HookAnswer::Up(Ok(()))),
        Err(IgnoredAnswer::NotAsked("link-up"))
    );
    c.close(now, EndReason::LocalRequest);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    run_timers(now, &mut s, &mut c, &mut ss, &mut cs);
    assert!(s.is_down());
    assert_eq!(
        s.handle_hook_answer(now, HookAnswer::Up(Ok(()))),
        Err(IgnoredAnswer::NotAsked("link-up"))
    );

    // Refusing the link at Up.
    let (mut s, mut c, mut ss, mut cs) = answered_auth("secret", alice_secret(), now);
    s.handle_hook_answer(now, HookAnswer::Network(Ok(settings())))
        .unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    s.handle_hook_answer(now, HookAnswer::Up(Err("no route".into())))
        .unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    run_timers(now, &mut s, &mut c, &mut ss, &mut cs);
    assert!(s.is_down() && c.is_down());
    assert_eq!(
        s.finish().terminate_cause(),
        TerminateCause::ServiceUnavailable
    );
}

/// A refused network (no address, a policy) closes the link with
/// Service-Unavailable; a refused login never asks Network, but its owner
/// still hears Down.
#[test]
fn refusals_end_the_session_with_their_cause() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, mut c, mut ss, mut cs) = answered_auth("secret", alice_secret(), now);
    s.handle_hook_answer(now, HookAnswer::Network(Err("pool exhausted".into())))
        .unwrap();
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    run_timers(now, &mut s, &mut c, &mut ss, &mut cs);
    assert!(s.is_down());
    assert_eq!(
        s.finish(),
        EndReason::ServiceUnavailable("pool exhausted".into())
    );

    // Wrong password: the server's authenticator refuses (691); the
    // client reports the server's code; nobody owes a Down.
    let (mut s, mut c, _, _) = answered_auth("wrong", alice_secret(), now);
    let client_reason = c.finish();
    assert_eq!(client_reason.terminate_cause(), TerminateCause::UserError);
    assert!(client_reason.to_string().contains("691"), "{client_reason}");
    s.finish();
    // The owner was asked to check the credentials (and may keep a record
    // of the attempt): it hears the end too, once.
    assert!(matches!(s.poll_hook_request(), Some(HookRequest::Down(_))));
    assert!(s.poll_hook_request().is_none());

    // Refused by the owner outright (no dial-in permission, 649).
    let refusal = AuthAnswer::Reject(Rejection::NoDialinPermission, "policy".into());
    let (_s, mut c, _, _) = answered_auth("secret", refusal, now);
    assert!(c.finish().to_string().contains("649"));
}

/// How the transport ended decides the cause: a connection that just went
/// away is Lost-Carrier; after the peer's Terminate-Request it is
/// User-Request whatever the tunnel says; a tunnel's own reason is kept.
#[test]
fn transport_ends_map_to_causes() {
    let _serial = serial();
    let now = Instant::now();
    let (mut s, _c, _, _) = up_pair(now);
    s.lower_down(now, None);
    assert_eq!(s.finish().terminate_cause(), TerminateCause::LostCarrier);

    let (mut s, _c, _, _) = up_pair(now);
    s.lower_down(now, Some(EndReason::LostCarrier(LostCarrier::EchoTimeout)));
    assert_eq!(s.finish(), EndReason::LostCarrier(LostCarrier::EchoTimeout));

    // The client's LCP Terminate-Request reaches the server, then the
    // connection drops before the Terminate-Ack exchange finishes.
    let (mut s, mut c, _, _) = up_pair(now);
    c.close(now, EndReason::LocalRequest);
    while let Some(mut f) = c.poll_transmit() {
        s.handle_frame(now, &mut f);
    }
    s.lower_down(
        now,
        Some(EndReason::LostCarrier(LostCarrier::TransportClosed)),
    );
    assert_eq!(s.finish().terminate_cause(), TerminateCause::UserRequest);

    // The server stops: Admin-Reboot, with a Terminate-Request first.
    let (mut s, mut c, mut ss, mut cs) = up_pair(now);
    s.close(now, EndReason::ServerStopping);
    settle(now, &mut s, &mut c, &mut ss, &mut cs);
    run_timers(now, &mut s, &mut c, &mut ss, &mut cs);
    assert!(c.is_down());
    assert_eq!(s.finish().terminate_cause(), TerminateCause::AdminReboot);
    assert_eq!(c.finish().terminate_cause(), TerminateCause::UserRequest);
}

/// Log lines at INFO and above written while `f` runs.
fn info_lines(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // Tests on other threads without a subscriber may have cached
        // "never" for these callsites.
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text
}

#[test]
fn a_server_link_that_never_came_up_writes_no_down_line() {
    let _serial = serial();
    // A flood of garbage SSTP connections made one "PPP link down" line
    // each (issue 18): the listener's bounded failure log reports them.
    let now = Instant::now();
    let text = info_lines(|| {
        let (mut s, _c) = pair("secret", now);
        s.lower_down(
            now,
            Some(EndReason::LostCarrier(LostCarrier::TransportClosed)),
        );
        let _ = s.finish();
    });
    assert!(!text.contains("PPP link down"), "{text}");

    // A link that was up still says so when it goes down.
    let text = info_lines(|| {
        let (mut s, _c, _, _) = up_pair(now);
        s.lower_down(
            now,
            Some(EndReason::LostCarrier(LostCarrier::TransportClosed)),
        );
        let _ = s.finish();
    });
    assert_eq!(text.matches("PPP link down").count(), 1, "{text}");
}
