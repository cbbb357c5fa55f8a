//! The control path end to end, without a network: the pipeline answers a
//! session's questions in the order a tunnel asks them, with a stand-in
//! authenticator and the static pool.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ppp::auth::{AuthRequest, Credentials, ExternalAccept, Rejection, Secret};
use ppp::link::{Ipv4Info, LinkUp};
use ppp::mppe::{MppeSettings, MppeStrength};
use tunnel::{AuthAnswer, EndReason, ServerHooks, SessionInfo};
use zeroize::Zeroizing;

use super::*;
use crate::authenticator::{KnownUser, Verdict};
use crate::config::Ipv4Pool;
use crate::pool::{BoxFuture as PoolFuture, StaticPool};
use crate::radius_auth::Granted;

/// The local store's way (groups known, the link checks a secret) or
/// RADIUS's (nothing known, an Access-Accept with grants).
enum Backend {
    Local {
        groups: Vec<String>,
    },
    Radius {
        granted: Granted,
    },
    /// The store holds the user, disabled.
    Disabled,
}

struct StandIn(Backend);

impl Authenticator for StandIn {
    fn look_up<'a>(&'a self, _: &'a Attempt, _: &'a AuthRequest) -> PoolFuture<'a, Claim> {
        let claim = match &self.0 {
            Backend::Local { groups } => Claim::Known(KnownUser {
                groups: groups.clone(),
                secret: Secret::Password(Zeroizing::new("pw".into())),
            }),
            Backend::Radius { .. } | Backend::Disabled => Claim::Opaque,
        };
        Box::pin(std::future::ready(claim))
    }

    fn account<'a>(&'a self, _: &'a str) -> PoolFuture<'a, StoreAccount> {
        let account = match &self.0 {
            Backend::Local { groups } => StoreAccount::Enabled {
                groups: groups.clone(),
            },
            Backend::Radius { .. } => StoreAccount::Unknown,
            Backend::Disabled => StoreAccount::Disabled,
        };
        Box::pin(std::future::ready(account))
    }

    fn check<'a>(
        &'a self,
        _: &'a Attempt,
        _: AuthRequest,
        known: Option<KnownUser>,
        _: Option<Vec<u8>>,
    ) -> PoolFuture<'a, Verdict> {
        let verdict = match (&self.0, known) {
            (Backend::Local { .. }, Some(k)) => Verdict::answer(AuthAnswer::Secret(k.secret)),
            (Backend::Radius { granted }, _) => Verdict {
                answer: AuthAnswer::Accept(ExternalAccept::default()),
                granted: Some(granted.clone()),
                eap_state: None,
            },
            (Backend::Local { .. }, None) | (Backend::Disabled, _) => {
                unreachable!("look_up knows every user; a disabled one logs on by certificate only")
            }
        };
        Box::pin(std::future::ready(verdict))
    }
}

struct Rig {
    pipeline: ControlPipeline,
    pool: Arc<StaticPool>,
    metrics: Arc<crate::metrics::Metrics>,
}

fn rig(backend: Backend, policies: &str, tunnel: TunnelKind) -> Rig {
    let pool = Arc::new(StaticPool::new(&Ipv4Pool::default()));
    let policies = if policies.is_empty() {
        policy::PolicySet::new(&Default::default(), &[]).unwrap()
    } else {
        policy::parse_document(policies).unwrap()
    };
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let pipeline = ControlPipeline::new(
        PipelineParts {
            authenticator: Arc::new(StandIn(backend)),
            settings: crate::session_settings::SessionSettings {
                policies: Arc::new(policies),
                dns: [Some(Ipv4Addr::new(10, 0, 0, 53)), None],
                wins: [None, None],
            }
            .shared(),
            addresses: pool.clone(),
            fallback_server_address: pool.server(),
            sessions: Arc::new(Sessions::new()),
            router: Router::new(),
            tun: None,
            ipv6_prefix: None,
            mtu: 1400,
            accounting: None,
            metrics: metrics.clone(),
            netbios: None,
        },
        tunnel,
    );
    Rig {
        pipeline,
        pool,
        metrics,
    }
}

fn info(id: u64, user: Option<&str>) -> SessionInfo {
    SessionInfo {
        id,
        peer: format!("192.0.2.{id}:40000"),
        user: user.map(str::to_owned),
    }
}

fn pap(user: &str) -> AuthRequest {
    AuthRequest {
        username: user.into(),
        method: ppp::auth::AuthMethod::Pap,
        credentials: Credentials::Pap {
            password: Zeroizing::new(b"pw".to_vec()),
        },
    }
}

fn link_up(peer: Ipv4Addr, mppe: Option<MppeStrength>) -> LinkUp {
    LinkUp {
        username: None,
        auth_protocol: None,
        master_keys: None,
        ipv4: Some(Ipv4Info {
            local: Ipv4Addr::new(10, 0, 10, 20),
            peer,
            dns: [None, None],
            nbns: [None, None],
        }),
        ipv6: None,
        mppe: mppe.map(|strength| MppeSettings {
            strength,
            stateless: true,
        }),
        peer_mru: 1400,
    }
}

/// authenticate → network → up, as a tunnel asks; the client's address.
async fn connect(p: &ControlPipeline, id: u64, user: &str) -> Result<Ipv4Addr, String> {
    let answer = ServerHooks::authenticate(p, &info(id, None), pap(user)).await;
    assert!(
        matches!(answer, AuthAnswer::Secret(_) | AuthAnswer::Accept(_)),
        "{answer:?}"
    );
    let authed = info(id, Some(user));
    let settings = ServerHooks::network(p, &authed).await?;
    let ipcp = settings.ipcp.expect("IPCP settings");
    let client = ipcp.peer_address.expect("an address");
    assert_eq!(ipcp.local_address, Some(Ipv4Addr::new(10, 0, 10, 20)));
    ServerHooks::up(p, &authed, &link_up(client, Some(MppeStrength::Bits128))).await?;
    Ok(client)
}

fn bye() -> EndReason {
    EndReason::PeerRequest("bye".into())
}

fn stage(p: &ControlPipeline, id: u64) -> Option<Stage> {
    p.sessions().with(SessionId::from_raw(id), |r| r.stage)
}

#[tokio::test]
async fn a_session_goes_through_every_stage_and_its_record_ends_with_it() {
    let r = rig(Backend::Local { groups: vec![] }, "", TunnelKind::Sstp);
    let p = &r.pipeline;
    assert_eq!(
        connect(p, 1, "alice").await,
        Ok(Ipv4Addr::new(10, 0, 10, 21))
    );
    assert_eq!(stage(p, 1), Some(Stage::Up));
    assert!(ServerHooks::live(p, &info(1, Some("alice"))).is_some());
    assert_eq!(p.active(), 1);
    assert_eq!(r.pool.counts().in_use, 1);
    ServerHooks::down(p, &info(1, Some("alice")), &bye());
    assert_eq!(stage(p, 1), None, "removed at down");
    assert_eq!(r.pool.counts().in_use, 0, "the address went back");
    assert!(p.sessions().is_empty());
}

/// A login that never succeeds (the link refuses the password after the
/// pipeline handed it the secret) leaves no record once the session
/// ends: the core asks `down` of every session that asked anything.
#[tokio::test]
async fn a_refused_login_leaves_no_record_behind() {
    let r = rig(Backend::Local { groups: vec![] }, "", TunnelKind::Pptp);
    let p = &r.pipeline;
    for id in 1..=50 {
        let _ = ServerHooks::authenticate(p, &info(id, None), pap("mallory")).await;
        assert_eq!(stage(p, id), Some(Stage::Authenticating));
        ServerHooks::down(p, &info(id, None), &EndReason::AuthFailed("691".into()));
        assert_eq!(stage(p, id), None);
    }
    assert!(p.sessions().is_empty());
    assert_eq!(r.pool.counts().in_use, 0);
}

/// The pipeline counts what only it sees: attempts and their results,
/// authentications by method, handshakes; an ended session's traffic
/// stays in its protocol's counters; encryption is recorded at link-up.
#[tokio::test]
async fn attempts_authentications_and_ended_traffic_are_counted() {
    let r = rig(Backend::Local { groups: vec![] }, "", TunnelKind::Pptp);
    let p = &r.pipeline;
    connect(p, 1, "alice").await.unwrap();
    assert_eq!(
        p.sessions()
            .with(SessionId::from_raw(1), |r| r.encryption.clone()),
        Some(Some("MPPE 128-bit stateless".into()))
    );
    let live = ServerHooks::live(p, &info(1, Some("alice"))).unwrap();
    let stats = tunnel::SessionStats {
        ip_bytes_in: 4000,
        packets_in: 4,
        ..Default::default()
    };
    live.add(&mut tunnel::SessionStats::default(), &stats);
    ServerHooks::down(p, &info(1, Some("alice")), &bye());
    let _ = ServerHooks::authenticate(p, &info(2, None), pap("mallory")).await;
    ServerHooks::down(p, &info(2, None), &EndReason::AuthFailed("691".into()));

    let snapshot =
        crate::admin_view::AdminView::new("s", p.sessions().clone(), r.pool.clone()).snapshot();
    let text = crate::metrics_render::render(&r.metrics, &snapshot, &[], &[], &[]);
    for line in [
        "ras_session_attempts_total{protocol=\"pptp\",result=\"success\"} 1",
        "ras_session_attempts_total{protocol=\"pptp\",result=\"auth_failed\"} 1",
        "ras_authentications_total{method=\"PAP\",result=\"accept\"} 1",
        "ras_authentications_total{method=\"PAP\",result=\"reject\"} 1",
        "ras_handshake_duration_seconds_count{protocol=\"pptp\"} 1",
        "ras_traffic_bytes_total{protocol=\"pptp\",direction=\"in\"} 4000",
        "ras_traffic_packets_total{protocol=\"pptp\",direction=\"in\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

#[tokio::test]
async fn radius_grants_reach_the_record_and_its_address_the_client() {
    let granted = Granted {
        framed_ip: Some(Ipv4Addr::new(10, 0, 10, 25)),
        class: vec![b"gold".to_vec()],
        ..Granted::default()
    };
    let r = rig(Backend::Radius { granted }, "", TunnelKind::Sstp);
    let p = &r.pipeline;
    assert_eq!(
        connect(p, 2, "static").await,
        Ok(Ipv4Addr::new(10, 0, 10, 25))
    );
    let class = p
        .sessions()
        .with(SessionId::from_raw(2), |r| r.granted.class.clone());
    assert_eq!(
        class,
        Some(vec![b"gold".to_vec()]),
        "Class kept for accounting"
    );
    // A second session granted the same address is refused.
    let again = connect(p, 3, "static").await;
    assert!(again.unwrap_err().contains("10.0.10.25 is already in use"));
    ServerHooks::down(p, &info(3, Some("static")), &bye());
    assert_eq!(
        r.pool.holder_of(Ipv4Addr::new(10, 0, 10, 25)),
        Some(SessionId::from_raw(2))
    );
}

#[tokio::test]
async fn policies_refuse_at_each_stage() {
    let policies = r#"
[[policy]]
name = "Fixed"
access = "grant"
[policy.conditions]
users = ["carol"]
[policy.constraints]
static_address = "10.0.10.27"

[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
groups = ["staff"]
[policy.constraints]
max_sessions_per_user = 1
min_encryption = "strongest"
"#;
    let r = rig(
        Backend::Local {
            groups: vec!["staff".into()],
        },
        policies,
        TunnelKind::Pptp,
    );
    let p = &r.pipeline;
    // The policy's static address, through the same path as RADIUS's.
    assert_eq!(
        connect(p, 10, "carol").await,
        Ok(Ipv4Addr::new(10, 0, 10, 27))
    );
    // After authentication: one session of alice at a time.
    assert_eq!(
        connect(p, 11, "alice").await,
        Ok(Ipv4Addr::new(10, 0, 10, 21))
    );
    let second = connect(p, 12, "alice").await.unwrap_err();
    assert!(second.contains("max_sessions_per_user"), "{second}");
    ServerHooks::down(p, &info(12, Some("alice")), &bye());
    // At link-up: 40-bit MPPE is below "strongest".
    ServerHooks::down(p, &info(11, Some("alice")), &bye());
    let authed = info(13, Some("alice"));
    let _ = ServerHooks::authenticate(p, &info(13, None), pap("alice")).await;
    let client = ServerHooks::network(p, &authed)
        .await
        .unwrap()
        .ipcp
        .unwrap()
        .peer_address
        .unwrap();
    let weak = ServerHooks::up(p, &authed, &link_up(client, Some(MppeStrength::Bits40))).await;
    assert!(weak.unwrap_err().contains("min_encryption"));
    assert_eq!(stage(p, 13), Some(Stage::Addressed), "never up");
    ServerHooks::down(p, &authed, &bye());
    assert_eq!(r.pool.counts().in_use, 1, "carol's only");
}

#[tokio::test]
async fn a_refusal_before_authentication_still_checks_the_password_first() {
    let policies = r#"
[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
groups = ["staff"]
"#;
    let r = rig(
        Backend::Local { groups: vec![] },
        policies,
        TunnelKind::Sstp,
    );
    let p = &r.pipeline;
    let answer = ServerHooks::authenticate(p, &info(20, None), pap("bob")).await;
    match answer {
        AuthAnswer::SecretThenReject(_, rejection, _) => {
            assert_eq!(rejection, Rejection::NoDialinPermission)
        }
        other => panic!("{other:?}"),
    }
    // Refused at authentication: no down will come; the record holds
    // nothing and counts for nobody.
    assert_eq!(stage(p, 20), Some(Stage::Authenticating));
    assert_eq!(p.active(), 0);
}

/// Plain L2TP (`[l2tp] allow_plain`) has no IPsec around it: a policy that
/// requires encryption refuses it, where the same call inside IPsec passes.
#[tokio::test]
async fn plain_l2tp_counts_as_unencrypted_for_the_policies() {
    let policies = r#"
[[policy]]
name = "Encrypted only"
access = "grant"
[policy.conditions]
groups = ["staff"]
[policy.constraints]
min_encryption = "basic"
"#;
    let r = rig(
        Backend::Local {
            groups: vec!["staff".into()],
        },
        policies,
        TunnelKind::L2tp,
    );
    // Inside IPsec: ESP meets the constraint.
    assert_eq!(
        connect(&r.pipeline, 1, "alice").await,
        Ok(Ipv4Addr::new(10, 0, 10, 21))
    );
    // Plain: nothing encrypts the link, refused once authenticated.
    let plain = r.pipeline.for_plain_l2tp();
    let answer = ServerHooks::authenticate(&plain, &info(2, None), pap("bob")).await;
    assert!(matches!(answer, AuthAnswer::Secret(_)), "{answer:?}");
    let refused = ServerHooks::network(&plain, &info(2, Some("bob")))
        .await
        .unwrap_err();
    assert!(refused.contains("encryption"), "{refused}");
    assert_eq!(
        stage(&plain, 2),
        Some(Stage::Authenticating),
        "never addressed"
    );
    ServerHooks::down(&plain, &info(2, Some("bob")), &bye());
    assert_eq!(r.pool.counts().in_use, 1, "alice's only");
}

/// An IKEv2 client certificate: no `authenticate`, the tunnel says how the
/// client proved itself, and a policy's authentication-method constraint
/// sees "certificate".
#[tokio::test]
async fn a_certificate_client_is_seen_by_the_policies_as_certificate() {
    let policies = r#"
[[policy]]
name = "Certificates only"
access = "grant"
[policy.conditions]
tunnel_types = ["ikev2"]
[policy.constraints]
auth_methods = ["certificate"]
"#;
    let r = rig(
        Backend::Local { groups: vec![] },
        policies,
        TunnelKind::Ikev2,
    );
    let p = &r.pipeline;
    let alice = info(1, Some("alice@example.com"));
    ServerHooks::authenticated_by_tunnel(p, &alice, tunnel::TunnelAuthMethod::Certificate);
    let settings = ServerHooks::network(p, &alice).await.expect("granted");
    let client = settings.ipcp.and_then(|c| c.peer_address);
    assert_eq!(client, Some(Ipv4Addr::new(10, 0, 10, 21)));
    // The same user without a certificate (a pre-shared key says nothing
    // of its method) does not meet the constraint.
    let bob = info(2, Some("bob"));
    let refused = ServerHooks::network(p, &bob).await.unwrap_err();
    assert!(refused.contains("constraint auth_methods"), "{refused}");
    ServerHooks::down(p, &alice, &bye());
    ServerHooks::down(p, &bob, &bye());
}

/// A certificate user takes its groups from the user store for the
/// policies (a certificate proves who, not which groups), and a disabled
/// store account is refused even with a good certificate.
#[tokio::test]
async fn a_certificate_user_gets_the_stores_groups_and_a_disabled_one_is_refused() {
    let policies = r#"
[[policy]]
name = "Certificate staff"
access = "grant"
[policy.conditions]
tunnel_types = ["ikev2"]
groups = ["vpn-certs"]
"#;
    let cases = [
        (
            Backend::Local {
                groups: vec!["vpn-certs".into()],
            },
            None,
        ),
        (Backend::Local { groups: vec![] }, Some("policy")),
        (Backend::Disabled, Some("account disabled")),
    ];
    for (backend, refused) in cases {
        let r = rig(backend, policies, TunnelKind::Ikev2);
        let p = &r.pipeline;
        let alice = info(1, Some("alice@example.com"));
        ServerHooks::authenticated_by_tunnel(p, &alice, tunnel::TunnelAuthMethod::Certificate);
        let result = ServerHooks::network(p, &alice).await;
        match refused {
            None => {
                let settings = result.expect("granted by the store's group");
                assert!(settings.ipcp.and_then(|c| c.peer_address).is_some());
            }
            Some(why) => {
                let e = result.expect_err("refused");
                assert!(e.contains(why), "{e}");
            }
        }
        ServerHooks::down(p, &alice, &bye());
    }
}

/// A packet from `src` (an IPv4 header and nothing else).
fn from_source(src: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45u8];
    p.extend_from_slice(&[0; 11]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&[172, 31, 0, 2]);
    p
}

#[tokio::test]
async fn framed_routes_go_to_their_session_first_come_and_end_with_it() {
    let routes = crate::framed_routes::from_attributes(
        &[radius::Attribute::new(
            radius::dict::attr::FRAMED_ROUTE,
            b"10.77.0.0/24 0.0.0.0 1".to_vec(),
        )],
        1,
    );
    let granted = Granted {
        framed_routes: routes,
        ..Granted::default()
    };
    let r = rig(Backend::Radius { granted }, "", TunnelKind::Sstp);
    let p = &r.pipeline;
    let first = connect(p, 1, "branch").await.unwrap();
    let second = connect(p, 2, "branch").await.unwrap();
    let framed = |id| {
        p.sessions()
            .with(SessionId::from_raw(id), |r| {
                crate::framed_routes::listed(&r.framed_routes)
            })
            .unwrap()
    };
    assert_eq!(framed(1), "10.77.0.0/24");
    assert_eq!(framed(2), "", "the second claim of a network is refused");
    // Two addresses and one network in the router.
    assert_eq!(r.pipeline.parts.router.len(), 3);

    // The source filter: the session's own address and its network.
    let filter = |id, client| {
        ServerHooks::source_filter(p, &info(id, Some("branch")), &link_up(client, None)).unwrap()
    };
    let one = filter(1, first);
    assert!(one.allows(&from_source(first)));
    assert!(one.allows(&from_source(Ipv4Addr::new(10, 77, 0, 1))));
    assert!(!one.allows(&from_source(second)));
    let two = filter(2, second);
    assert!(two.allows(&from_source(second)));
    assert!(!two.allows(&from_source(Ipv4Addr::new(10, 77, 0, 1))));

    // The network is released with its session, and free for another.
    ServerHooks::down(p, &info(1, Some("branch")), &bye());
    assert_eq!(r.pipeline.parts.router.len(), 1);
    let third = connect(p, 3, "branch").await.unwrap();
    assert_eq!(framed(3), "10.77.0.0/24");
    assert!(filter(3, third).allows(&from_source(Ipv4Addr::new(10, 77, 0, 200))));
}
