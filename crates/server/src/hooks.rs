//! The server's answers to a session's questions: credentials from the
//! local user store, an address from the pool, a route in the router.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;
use ppp::auth::{AuthRequest, Rejection, Secret};
use ppp::ipcp::IpcpConfig;
use ppp::ipv6cp::Ipv6cpConfig;
use ppp::link::{LinkUp, NetworkSettings};
use tokio::sync::mpsc;
use tunnel::hooks_support::BoxFuture;
use tunnel::login_log::{self, method_name};
use tunnel::{AuthAnswer, PacketSink, ServerHooks, SessionInfo};

use crate::access_policy::{self, PendingFacts};
use crate::accounting::Accounting;
use crate::pool::StaticPool;
use crate::radius_auth::{RadiusAuth, TunnelKind};
use crate::router::Router;
use crate::sessions::{Held, Sessions};
use crate::users::UserStore;
use crate::SessionId;

/// The server's implementation of [`ServerHooks`]: credentials from the
/// local user store or RADIUS, addresses from the pool, routes in the
/// router, accounting. One per tunnel type (see
/// [`LocalHooks::for_tunnel`]), all sharing one session table.
#[derive(Clone)]
pub struct LocalHooks {
    pub users: Arc<UserStore>,
    pub pool: Arc<StaticPool>,
    pub router: Arc<Router>,
    pub dns: [Option<Ipv4Addr>; 2],
    pub wins: [Option<Ipv4Addr>; 2],
    /// The /64 for IPv6CP clients, if IPv6 is on.
    pub ipv6_prefix: Option<Ipv6Addr>,
    /// The link MTU announced in router advertisements.
    pub mtu: u32,
    /// Running sessions (shared by every tunnel type).
    pub sessions: Arc<Sessions>,
    /// RADIUS authentication, when configured (else the local store).
    pub radius: Option<Arc<RadiusAuth>>,
    /// RADIUS accounting, when configured.
    pub accounting: Option<Arc<Accounting>>,
    /// Interim-Update interval when RADIUS does not give one.
    pub interim_interval: Option<std::time::Duration>,
    /// NAS-Identifier and address for accounting records.
    pub nas: Option<crate::radius_auth::NasIdentity>,
    /// The tunnel type of the sessions these hooks serve.
    pub tunnel: TunnelKind,
    /// Addresses from another source than `pool` (DHCP); `None`: the pool.
    pub address_source: Option<Arc<dyn crate::pool::AddressSource>>,
    /// Remote access policies (the built-in grant-all when none are
    /// configured).
    pub policies: Arc<policy::PolicySet>,
    /// What sessions said before authentication, for the policies.
    facts: Arc<PendingFacts>,
    /// The TUN device, to route a RADIUS Framed-IPv6-Prefix to it.
    pub tun: Option<Arc<netdev::TunDevice>>,
}

impl LocalHooks {
    pub fn new(
        users: Arc<UserStore>,
        pool: Arc<StaticPool>,
        router: Arc<Router>,
        dns: &[Ipv4Addr],
        wins: &[Ipv4Addr],
        ipv6_prefix: Option<Ipv6Addr>,
        mtu: u32,
    ) -> LocalHooks {
        LocalHooks {
            users,
            pool,
            router,
            dns: [dns.first().copied(), dns.get(1).copied()],
            wins: [wins.first().copied(), wins.get(1).copied()],
            ipv6_prefix,
            mtu,
            sessions: Arc::new(Sessions::new()),
            radius: None,
            accounting: None,
            interim_interval: None,
            nas: None,
            tunnel: TunnelKind::Sstp,
            address_source: None,
            policies: Arc::new(
                policy::PolicySet::new(&Default::default(), &[])
                    .expect("the built-in policy is valid"),
            ),
            facts: Arc::new(PendingFacts::default()),
            tun: None,
        }
    }

    /// The /64 a session's clients take their IPv6 address from: the
    /// RADIUS Framed-IPv6-Prefix (RFC 3162 §2.3) when it is a /64, else
    /// the server's.
    fn session_ipv6_prefix(&self, id: u64) -> Option<Ipv6Addr> {
        self.sessions
            .with(id, |h| h.granted.framed_ipv6_prefix)
            .flatten()
            .filter(|(_, len)| *len == 64)
            .map(|(p, _)| p)
            .or(self.ipv6_prefix)
    }

    /// Checks the policies' conditions when the peer has named itself:
    /// `Some(answer)` refuses it (MS-CHAP 649, as RRAS does when the
    /// dial-in permission is denied).
    fn policy_before_auth(
        &self,
        info: &SessionInfo,
        user: &str,
        method: ppp::auth::AuthMethod,
        groups: &[String],
        radius_class: Option<&[Vec<u8>]>,
    ) -> Option<AuthAnswer> {
        let station = crate::radius_auth::calling_station(&info.peer);
        let request = access_policy::request(
            user,
            groups,
            radius_class,
            self.tunnel,
            &info.peer,
            &station,
        );
        match self.policies.evaluate_before_auth(&request) {
            policy::PreAuth::Refuse(decision) => {
                login_log::refused(info.id, user, method_name(method), &decision);
                Some(AuthAnswer::Reject(
                    Rejection::NoDialinPermission,
                    "no dial-in permission".into(),
                ))
            }
            _ => None,
        }
    }

    /// Checks the policies once the user is authenticated, and applies
    /// the matched policy's grant to what RADIUS granted.
    fn policy_after_auth(
        &self,
        info: &SessionInfo,
        granted: &mut crate::radius_auth::Granted,
    ) -> Result<Option<(policy::Grant, policy::AuthMethod)>, String> {
        let facts = self.facts.take(info.id);
        let user = info.user.clone().unwrap_or(facts.user);
        let station = crate::radius_auth::calling_station(&info.peer);
        let class = granted.class.clone();
        let request = access_policy::request(
            &user,
            &facts.groups,
            Some(&class),
            self.tunnel,
            &info.peer,
            &station,
        );
        // EAP pass-through whose method was never seen: the common case.
        let method = facts.method.unwrap_or(policy::AuthMethod::EapMsChapV2);
        // The MPPE actually negotiated is checked again when the link is up.
        let assumed =
            access_policy::encryption(self.tunnel, Some(ppp::mppe::MppeStrength::Bits128));
        let auth = policy::Authenticated {
            method,
            encryption: assumed,
            sessions_of_user: self.sessions.count_user(&user) as u32,
        };
        let decision = self.policies.evaluate_after_auth(&request, &auth);
        let Some(grant) = decision.grant().cloned() else {
            login_log::refused(
                info.id,
                &user,
                access_policy::method_words(method),
                &decision,
            );
            return Err(decision.to_string());
        };
        tracing::info!(
            session = info.id,
            "user {}: {decision}",
            login_log::Quoted(&user)
        );
        if let Some(a) = grant.static_address {
            granted.framed_ip = Some(a);
        }
        let shorter = |a: Option<u32>, b: Option<std::time::Duration>| {
            let b = b.map(|d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        granted.session_timeout = shorter(granted.session_timeout, grant.session_timeout);
        granted.idle_timeout = shorter(granted.idle_timeout, grant.idle_timeout);
        Ok(Some((grant, method)))
    }

    /// The same hooks for sessions of another tunnel type.
    pub fn for_tunnel(&self, tunnel: TunnelKind) -> LocalHooks {
        LocalHooks {
            tunnel,
            ..self.clone()
        }
    }

    /// Sessions holding resources right now.
    pub fn active(&self) -> usize {
        self.sessions.len()
    }
}

/// The client's global address: the server's /64 and the interface
/// identifier IPv6CP negotiated (RFC 5072 §5).
pub fn client_ipv6(prefix: Ipv6Addr, interface_id: [u8; 8]) -> Ipv6Addr {
    let mut octets = prefix.octets();
    octets[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(octets)
}

/// The secret an unknown user is checked against (issue 11): a random
/// password, so the check fails like a wrong password does and costs the
/// same (an NT hash cannot be checked by CHAP-MD5, which would answer
/// sooner).
fn stand_in_secret() -> Secret {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::Password(zeroize::Zeroizing::new(hex::encode(bytes)))
}

impl ServerHooks for LocalHooks {
    fn authenticate(&self, info: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        let users = self.users.clone();
        let id = info.id;
        let method = access_policy::auth_method(&request);
        let words = method_name(request.method);
        let ppp_method = request.method;
        if let Some(radius) = self.radius.clone() {
            self.facts.record(id, &request.username, None, method);
            // The RADIUS Class is not known yet: policies that need it
            // decide after authentication.
            if let Some(refusal) =
                self.policy_before_auth(info, &request.username, ppp_method, &[], None)
            {
                return Box::pin(async move { refusal });
            }
            let peer = info.peer.clone();
            let tunnel = self.tunnel;
            return Box::pin(async move { radius.authenticate(id, &peer, tunnel, request).await });
        }
        let hooks = self.clone();
        let info = info.clone();
        Box::pin(async move {
            let name = request.username.clone();
            let looked_up = tokio::task::spawn_blocking(move || users.lookup(&name)).await;
            // Issue 11: every refusal below is checked against a secret
            // first, so that the peer sees 647/649 only if it knows the
            // password, and an unknown user costs the same work and gets
            // the same bytes as a wrong password.
            match looked_up {
                Ok(Ok(Some(record))) if record.info.enabled => {
                    let groups = record.info.groups.clone();
                    hooks
                        .facts
                        .record(id, &request.username, Some(groups.clone()), method);
                    if let Some(AuthAnswer::Reject(rejection, why)) = hooks.policy_before_auth(
                        &info,
                        &request.username,
                        ppp_method,
                        &groups,
                        Some(&[]),
                    ) {
                        return AuthAnswer::SecretThenReject(record.secret, rejection, why);
                    }
                    AuthAnswer::Secret(record.secret)
                }
                Ok(Ok(Some(record))) => {
                    login_log::refused(id, &request.username, words, &"account disabled");
                    AuthAnswer::SecretThenReject(
                        record.secret,
                        Rejection::AccountDisabled,
                        "account disabled".into(),
                    )
                }
                Ok(Ok(None)) => {
                    // The log says why; the peer hears what a wrong
                    // password gets, after the same work.
                    login_log::refused(id, &request.username, words, &"unknown user");
                    AuthAnswer::SecretThenReject(
                        stand_in_secret(),
                        Rejection::AuthenticationFailure,
                        "no such user".into(),
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(session = id, "user store: {e}");
                    login_log::refused(id, &request.username, words, &"user store error");
                    AuthAnswer::Reject(
                        Rejection::AuthenticationFailure,
                        "authentication failed".into(),
                    )
                }
                Err(e) => {
                    tracing::error!(session = id, "user store task: {e}");
                    login_log::refused(id, &request.username, words, &"user store error");
                    AuthAnswer::Reject(
                        Rejection::AuthenticationFailure,
                        "authentication failed".into(),
                    )
                }
            }
        })
    }

    fn network(&self, info: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        let session = SessionId::from_raw(info.id);
        let mut granted = match &self.radius {
            Some(r) => r.take_granted(info.id),
            None => Default::default(),
        };
        let policy = match self.policy_after_auth(info, &mut granted) {
            Ok(p) => p,
            Err(why) => return Box::pin(async move { Err(why) }),
        };
        if let Some(source) = self.address_source.clone() {
            return self.network_from_source(source, info, granted, policy);
        }
        // RFC 2865 §5.8: a Framed-IP-Address from RADIUS is the client's
        // address; it must be one the server can route (in the pool).
        let result = match granted.framed_ip {
            Some(addr) => self.pool.allocate_specific(session, addr),
            None => self.pool.allocate_now(session),
        }
        .map_err(|e| format!("no address for the client: {e}"));
        if let (Err(why), Some((_, method))) = (&result, &policy) {
            login_log::refused(
                info.id,
                info.user.as_deref().unwrap_or(""),
                access_policy::method_words(*method),
                why,
            );
        }
        let settings = result.map(|client| {
            let mut held = Held::new(
                info.user.clone(),
                info.peer.clone(),
                self.tunnel,
                self.sessions.acct_session_id(info.id),
                granted,
            );
            held.address = Some(client);
            held.policy = policy;
            self.sessions.insert(info.id, held);
            NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    self.pool.server(),
                    client,
                    self.dns,
                    self.wins,
                )),
                ipv6cp: self
                    .session_ipv6_prefix(info.id)
                    .map(|_| Ipv6cpConfig::default()),
                ccp: None,
            }
        });
        if let Ok(s) = &settings {
            let addr = s.ipcp.as_ref().and_then(|c| c.peer_address);
            if let Some(addr) = addr {
                tracing::info!(
                    session = info.id,
                    "user {}: address {addr} assigned",
                    login_log::Quoted(info.user.as_deref().unwrap_or(""))
                );
            }
        }
        Box::pin(async move { settings })
    }

    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<mpsc::Receiver<Bytes>, String>> {
        // The policy's minimum encryption against what CCP negotiated
        // (SSTP is TLS and meets every level).
        let policy = self.sessions.with(info.id, |h| h.policy.clone()).flatten();
        if let Some((grant, method)) = policy {
            let auth = policy::Authenticated {
                method,
                encryption: access_policy::encryption(self.tunnel, up.mppe.map(|m| m.strength)),
                sessions_of_user: 0,
            };
            if let Err(failure) = policy::check_constraints(&grant, &auth) {
                let why = format!("refused by the remote access policy: {failure}");
                login_log::refused(
                    info.id,
                    info.user.as_deref().unwrap_or(""),
                    access_policy::method_words(method),
                    &why,
                );
                return Box::pin(async move { Err(why) });
            }
        }
        let mut routes = Vec::new();
        if let Some(v4) = &up.ipv4 {
            routes.push(IpAddr::V4(v4.peer));
        }
        let ipv6_prefix = self.session_ipv6_prefix(info.id);
        if let (Some(v6), Some(prefix)) = (&up.ipv6, ipv6_prefix) {
            routes.push(IpAddr::V6(client_ipv6(prefix, v6.peer_interface_id)));
        }
        if let (Some(prefix), Some(tun)) = (ipv6_prefix, &self.tun) {
            if Some(prefix) != self.ipv6_prefix && up.ipv6.is_some() {
                // The kernel must send the prefix's traffic to the TUN.
                // Only a route this session added is removed at its end.
                match tun.add_route(IpAddr::V6(prefix), 64) {
                    Ok(netdev::RouteAdded::Added) => {
                        self.sessions
                            .with(info.id, |h| h.own_ipv6_prefix = Some(prefix));
                    }
                    Ok(netdev::RouteAdded::AlreadyThere) => {}
                    Err(e) => tracing::warn!(session = info.id, "Framed-IPv6-Prefix: {e}"),
                }
            }
        }
        let (tx, rx) = self.router.register(&routes);
        let interim = self
            .sessions
            .with(info.id, |h| {
                h.routes = routes;
                h.granted
                    .interim_interval
                    .map(|s| std::time::Duration::from_secs(u64::from(s).max(60)))
                    .or(self.interim_interval)
            })
            .flatten();
        if let Some(acct) = &self.accounting {
            crate::session_accounting::start(acct, &self.sessions, self.nas.as_ref(), info.id);
            let acct = acct.clone();
            let sessions = self.sessions.clone();
            let nas = self.nas.clone();
            self.sessions.watch(info.id, interim, move |id| {
                crate::session_accounting::interim(&acct, &sessions, nas.as_ref(), id)
            });
        } else {
            self.sessions.watch(info.id, None, |_| {});
        }
        if let (Some(v6), Some(prefix)) = (&up.ipv6, ipv6_prefix) {
            // RFC 4861 §6.2.4: a few initial unsolicited advertisements, so
            // the client learns the prefix even if it missed the first.
            let ra = Bytes::from(crate::ra::router_advertisement(
                v6.local_interface_id,
                prefix,
                self.mtu,
            ));
            tokio::spawn(async move {
                for delay in [0u64, 2, 6] {
                    tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
                    if tx.send(ra.clone()).await.is_err() {
                        break;
                    }
                }
            });
        }
        Box::pin(async move { Ok(rx) })
    }

    fn down(&self, info: &SessionInfo, reason: &tunnel::EndReason) {
        if let Some(r) = &self.radius {
            r.forget(info.id);
        }
        self.facts.take(info.id);
        let held = self.sessions.remove(info.id);
        if let Some(mut h) = held {
            // A cause the server set itself (a timeout, a Disconnect-Request,
            // its own stop) wins over what the session saw at its end.
            h.cause.get_or_insert(reason.terminate_cause());
            self.router.unregister(&h.routes);
            if let (Some(addr), Some(tun)) = (h.own_ipv4_route, &self.tun) {
                if let Err(e) = tun.del_route(IpAddr::V4(addr), 32) {
                    tracing::warn!(session = info.id, "Framed-IP-Address route: {e}");
                }
            }
            if let (Some(prefix), Some(tun)) = (h.own_ipv6_prefix, &self.tun) {
                if let Err(e) = tun.del_route(IpAddr::V6(prefix), 64) {
                    tracing::warn!(session = info.id, "Framed-IPv6-Prefix route: {e}");
                }
            }
            if let Some(acct) = &self.accounting {
                crate::session_accounting::stop(acct, self.nas.as_ref(), &h);
            }
        }
        if let Some(source) = self.address_source.clone() {
            let session = SessionId::from_raw(info.id);
            tokio::spawn(async move { source.release(session).await });
        }
        let freed = self.pool.release_now(SessionId::from_raw(info.id));
        let user = login_log::Quoted(info.user.as_deref().unwrap_or(""));
        match freed {
            Some(addr) => {
                tracing::info!(
                    session = info.id,
                    "user {user}: session ended, address freed ({addr})"
                )
            }
            None => tracing::info!(session = info.id, "user {user}: session ended"),
        }
    }

    /// The server's end of the link in IPv6: echo and Neighbor Discovery
    /// on the link-local address IPv6CP gave our side, Router
    /// Advertisements with the session's /64 (pppd and RRAS answer there
    /// from the PPP interface; our TUN is shared, see the icmpv6 crate).
    fn link_responder(&self, info: &SessionInfo, up: &LinkUp) -> Option<icmpv6::Responder> {
        let v6 = up.ipv6.as_ref()?;
        let prefix = self.session_ipv6_prefix(info.id);
        // The TUN holds prefix::1 for the server's own /64 only.
        let global = prefix
            .filter(|p| Some(*p) == self.ipv6_prefix)
            .map(|p| Ipv6Addr::from(u128::from(p) | 1));
        let ra = prefix.map(|prefix| icmpv6::RouterAdvert {
            prefix,
            mtu: self.mtu,
        });
        Some(icmpv6::Responder::new(v6.local_interface_id, global, ra))
    }

    fn live(&self, info: &SessionInfo) -> Option<Arc<tunnel::LiveSession>> {
        self.sessions.with(info.id, |h| h.live.clone())
    }
}

impl LocalHooks {
    /// `network` with an asynchronous address source (DHCP): the client
    /// may wait for a block to be leased. A Framed-IP-Address from RADIUS
    /// (RFC 2865 §5.8) bypasses the source: the address is the
    /// administrator's (outside the DHCP scope), routed to the TUN as a
    /// /32 for the session, so proxy ARP answers for it on the intranet
    /// interface like for the leased ones.
    fn network_from_source(
        &self,
        source: Arc<dyn crate::pool::AddressSource>,
        info: &SessionInfo,
        granted: crate::radius_auth::Granted,
        policy: Option<(policy::Grant, policy::AuthMethod)>,
    ) -> BoxFuture<Result<NetworkSettings, String>> {
        let hooks = self.clone();
        let info = info.clone();
        Box::pin(async move {
            let session = SessionId::from_raw(info.id);
            let framed = granted.framed_ip;
            let client = match framed {
                Some(addr) => addr,
                None => source
                    .allocate(session)
                    .await
                    .map_err(|e| format!("no address for the client: {e}"))?,
            };
            let server = source
                .server_address()
                .filter(|s| *s != client)
                .unwrap_or_else(|| hooks.pool.server());
            let mut held = Held::new(
                info.user.clone(),
                info.peer.clone(),
                hooks.tunnel,
                hooks.sessions.acct_session_id(info.id),
                granted,
            );
            held.address = Some(client);
            held.policy = policy;
            if framed.is_some() {
                if !hooks.sessions.insert_exclusive(info.id, held) {
                    return Err(format!(
                        "no address for the client: the RADIUS Framed-IP-Address {client} is in use by another session"
                    ));
                }
                if let Some(tun) = &hooks.tun {
                    // The kernel must send the address's traffic to the TUN.
                    match tun.add_route(IpAddr::V4(client), 32) {
                        Ok(netdev::RouteAdded::Added) => {
                            hooks
                                .sessions
                                .with(info.id, |h| h.own_ipv4_route = Some(client));
                        }
                        Ok(netdev::RouteAdded::AlreadyThere) => {}
                        Err(e) => {
                            tracing::warn!(session = info.id, "Framed-IP-Address route: {e}")
                        }
                    }
                }
            } else {
                hooks.sessions.insert(info.id, held);
            }
            tracing::info!(
                session = info.id,
                "user {}: address {client} assigned{}",
                login_log::Quoted(info.user.as_deref().unwrap_or("")),
                if framed.is_some() {
                    " (RADIUS Framed-IP-Address)"
                } else {
                    ""
                }
            );
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(server, client, hooks.dns, hooks.wins)),
                ipv6cp: hooks
                    .session_ipv6_prefix(info.id)
                    .map(|_| Ipv6cpConfig::default()),
                ccp: None,
            })
        })
    }
}

/// Received client packets go to the TUN device through the batching
/// writer; a full queue drops.
pub struct TunSink(pub Arc<netdev::TunWriter>);

impl PacketSink for TunSink {
    fn send(&self, packet: &[u8]) {
        self.0.send(packet);
    }
    fn flush(&self) {
        self.0.flush();
    }
}

/// A sink that drops everything (no TUN: tests and benchmarks).
pub struct NullSink;

impl PacketSink for NullSink {
    fn send(&self, _: &[u8]) {}
}
