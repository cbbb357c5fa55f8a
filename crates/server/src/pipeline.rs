//! The server's control path, in the order a session meets it. Start
//! here; docs/CONTROL-PATH.md draws the whole picture.
//!
//! ```text
//! listener (sstp_service / pptp_service / dialin_service)
//!   → tunnel handshake and PPP Link (crates/tunnel, crates/ppp)
//!   → ServerHooks, answered here, one step after the other:
//!      authenticate  1. Authenticator::look_up       authenticator.rs, radius_auth.rs
//!                    2. policy, before auth          policy_stages.rs
//!                    3. Authenticator::check
//!      network       4. policy, after auth           policy_stages.rs
//!                    5. address (one path)           address.rs → pool.rs / dhcp_source.rs
//!      up            6. policy, at link-up           policy_stages.rs
//!                    7. routes                       router.rs, ipv6_link.rs
//!                    8. accounting Start, timers     session_accounting.rs, sessions.rs
//!      down          9. accounting Stop, release     (the record is removed here, once)
//! ```
//!
//! Everything a session learns on the way is kept in its one
//! [`SessionRecord`](crate::session_record::SessionRecord), in the session
//! table under its [`SessionId`]. [`crate::server::Server::start`] builds
//! the pipeline from the configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ppp::auth::AuthRequest;
use ppp::ipcp::IpcpConfig;
use ppp::ipv6cp::Ipv6cpConfig;
use ppp::link::{LinkUp, NetworkSettings};
use tunnel::hooks_support::BoxFuture;
use tunnel::login_log;
use tunnel::{AuthAnswer, ServerHooks, SessionInfo};

use crate::access_policy::{self, method_words};
use crate::accounting::Accounting;
use crate::address::{self, Assigned};
use crate::authenticator::{Attempt, Authenticator, Claim, StoreAccount};
use crate::policy_stages::{self, Asking};
use crate::pool::AddressSource;
use crate::radius_auth::{NasIdentity, TunnelKind};
use crate::router::Router;
use crate::session_accounting;
use crate::sessions::{AddressClash, Sessions, Stage};
use crate::{ipv6_link, SessionId};

/// What the pipeline is built from (see [`crate::server::Server::start`]).
pub struct PipelineParts {
    /// The local user store or RADIUS.
    pub authenticator: Arc<dyn Authenticator>,
    /// The policies, DNS and WINS for new sessions (swapped by a reload).
    pub settings: crate::session_settings::SharedSessionSettings,
    /// The static pool or DHCP.
    pub addresses: Arc<dyn AddressSource>,
    /// The server's IPCP address while the source knows none (DHCP before
    /// its first lease): the static pool's.
    pub fallback_server_address: Ipv4Addr,
    /// The session table, shared with dynamic authorization.
    pub sessions: Arc<Sessions>,
    pub router: Arc<Router>,
    /// The TUN device, for routes a session owns (`None`: tests).
    pub tun: Option<Arc<netdev::TunDevice>>,
    /// The server's /64 for IPv6CP clients, if IPv6 is on.
    pub ipv6_prefix: Option<Ipv6Addr>,
    /// The link MTU announced in router advertisements.
    pub mtu: u32,
    /// RADIUS accounting, when configured.
    pub accounting: Option<AccountingParts>,
    /// Where attempts, authentication results and handshake times are
    /// counted (`ras_*` metrics).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The NetBIOS datagram gateway, when `[netbios]` is enabled: told
    /// when a client's link is up and when its session ends.
    pub netbios: Option<Arc<crate::netbios_driver::NetbiosGateway>>,
}

/// RADIUS accounting's part of the pipeline.
pub struct AccountingParts {
    pub accounting: Arc<Accounting>,
    /// NAS-Identifier and address for the records.
    pub nas: Option<NasIdentity>,
    /// Interim-Update interval when RADIUS does not give one.
    pub interim_interval: Option<Duration>,
}

/// The server's answers to a session's questions ([`ServerHooks`]), for
/// sessions of one tunnel type; [`ControlPipeline::for_tunnel`] gives the
/// same pipeline for another.
#[derive(Clone)]
pub struct ControlPipeline {
    parts: Arc<PipelineParts>,
    tunnel: TunnelKind,
    /// Plain L2TP: no IPsec around the tunnel.
    plain_l2tp: bool,
}

impl ControlPipeline {
    pub fn new(parts: PipelineParts, tunnel: TunnelKind) -> ControlPipeline {
        ControlPipeline {
            parts: Arc::new(parts),
            tunnel,
            plain_l2tp: false,
        }
    }

    /// The same pipeline for sessions of another tunnel type.
    pub fn for_tunnel(&self, tunnel: TunnelKind) -> ControlPipeline {
        ControlPipeline {
            parts: self.parts.clone(),
            tunnel,
            plain_l2tp: false,
        }
    }

    /// The same pipeline for sessions of plain L2TP (`[l2tp] allow_plain`):
    /// nothing but MPPE could encrypt them, which the policies' encryption
    /// checks see.
    pub fn for_plain_l2tp(&self) -> ControlPipeline {
        ControlPipeline {
            parts: self.parts.clone(),
            tunnel: TunnelKind::L2tp,
            plain_l2tp: true,
        }
    }

    /// The session table.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.parts.sessions
    }

    /// Sessions holding resources right now.
    pub fn active(&self) -> usize {
        self.parts.sessions.active()
    }

    fn asking<'a>(&self, session: SessionId, peer: &'a str) -> Asking<'a> {
        Asking {
            session,
            peer,
            tunnel: self.tunnel,
            plain_l2tp: self.plain_l2tp,
            now: SystemTime::now(),
        }
    }

    /// The /64 session `id`'s client takes its IPv6 address from.
    fn ipv6_prefix(&self, id: SessionId) -> Option<Ipv6Addr> {
        let server = self.parts.ipv6_prefix;
        self.parts
            .sessions
            .with(id, |r| r.ipv6_prefix(server))
            .unwrap_or(server)
    }

    /// PPP's authentication phase: steps 1 to 3.
    async fn authentication_phase(&self, info: &SessionInfo, request: AuthRequest) -> AuthAnswer {
        let p = &*self.parts;
        let id = SessionId::from_raw(info.id);
        p.sessions.open(id, &info.peer, self.tunnel);
        let attempt = Attempt {
            session: id,
            peer: info.peer.clone(),
            tunnel: self.tunnel,
        };

        // 1. What the authenticator knows of the claimed user.
        let known = match p.authenticator.look_up(&attempt, &request).await {
            Claim::Refused(answer) => return answer,
            Claim::Known(user) => Some(user),
            Claim::Opaque => None,
        };
        let method = access_policy::auth_method(&request);
        let groups = known.as_ref().map(|k| k.groups.clone());
        p.sessions
            .with(id, |r| r.claim(&request.username, groups, method));

        // 2. Policy, before authentication: the store's groups and no
        // RADIUS Class; from RADIUS neither is known yet (policies that
        // need the Class decide after authentication).
        let (groups, class): (&[String], Option<&[Vec<u8>]>) = match &known {
            Some(k) => (&k.groups, Some(&[])),
            None => (&[], None),
        };
        let asked = policy_stages::before_auth(
            &p.settings.load().policies,
            self.asking(id, &info.peer),
            &request.username,
            request.method,
            groups,
            class,
        );
        if let Err(refusal) = asked {
            return match known {
                // Issue 11: the password is checked first, so that only
                // someone who knows it learns of the refusal.
                Some(k) => AuthAnswer::SecretThenReject(k.secret, refusal.rejection, refusal.why),
                None => AuthAnswer::Reject(refusal.rejection, refusal.why),
            };
        }

        // 3. The credentials.
        let eap_state = p.sessions.with(id, |r| r.eap_state.take()).flatten();
        let verdict = p
            .authenticator
            .check(&attempt, request, known, eap_state)
            .await;
        p.sessions.with(id, |r| {
            r.eap_state = verdict.eap_state;
            if let Some(granted) = verdict.granted {
                r.granted = granted;
            }
        });
        verdict.answer
    }

    /// PPP's network phase, once the peer is authenticated: steps 4 and 5.
    async fn network_phase(&self, info: &SessionInfo) -> Result<NetworkSettings, String> {
        let p = &*self.parts;
        let id = SessionId::from_raw(info.id);
        // A link that skipped authentication asks its first question here.
        p.sessions.open(id, &info.peer, self.tunnel);
        let (claimed, mut granted) = p
            .sessions
            .with(id, |r| (r.claimed.clone(), r.granted.clone()))
            .unwrap_or_default();
        let user = info.user.clone().unwrap_or_else(|| claimed.user.clone());
        // A client certificate proved who the user is, not its groups: a
        // user of that name in the store lends them to the policies, and a
        // disabled account stays disabled (as NPS maps a certificate to
        // its account).
        let mut claimed = claimed;
        if claimed.method == Some(policy::AuthMethod::Certificate) {
            match p.authenticator.account(&user).await {
                StoreAccount::Enabled { groups } => {
                    p.sessions
                        .with(id, |r| r.claim(&user, Some(groups.clone()), None));
                    claimed.groups = groups;
                }
                StoreAccount::Disabled => {
                    let why = "account disabled".to_string();
                    login_log::refused(
                        id.raw(),
                        &user,
                        method_words(policy::AuthMethod::Certificate),
                        &why,
                    );
                    return Err(why);
                }
                StoreAccount::Unknown => {}
            }
        }
        // Asked only once the peer is authenticated (or needs none).
        p.metrics
            .authentication(claimed.method.map_or("none", method_words), true);

        // 4. Policy, after authentication, with the user's other sessions.
        // Counting them walks every session under the table's lock, so
        // only where a policy limits them (a login in a table of 20,000
        // would otherwise pay for all 20,000).
        let admitted = {
            // The settings' guard ends with this block, before the
            // address stage's awaits.
            let settings = p.settings.load();
            let others = if settings.policies.limits_sessions_per_user() {
                p.sessions.count_user(&user, Stage::Addressed, id)
            } else {
                0
            };
            policy_stages::after_auth(
                &settings.policies,
                self.asking(id, &info.peer),
                &user,
                &claimed,
                &mut granted,
                u32::try_from(others).unwrap_or(u32::MAX),
            )?
        };

        // 5. The address: a static one decided once, then the source.
        let shown_user = info.user.as_deref().unwrap_or("");
        let refuse = |why: String| {
            login_log::refused(id.raw(), shown_user, method_words(admitted.method), &why);
            why
        };
        let request = address::address_request(granted.framed_ip, admitted.grant.static_address);
        let assigned = address::assign(&*p.addresses, id, request)
            .await
            .map_err(|e| refuse(format!("no address for the client: {e}")))?;
        let client = assigned.addr;
        let method = admitted.method;
        let recorded = p.sessions.admit_address(id, client, |r| {
            r.granted = granted;
            r.addressed(info.user.clone(), admitted, client);
        });
        if let Err(clash) = recorded {
            p.addresses.release(id);
            return Err(match clash {
                AddressClash::Taken => {
                    let why = in_use(&assigned);
                    login_log::refused(id.raw(), shown_user, method_words(method), &why);
                    why
                }
                AddressClash::Ended => "the session ended before its address was recorded".into(),
            });
        }
        if assigned.host_route {
            self.route_host(id, client);
        }
        // SESSION_ID, USER and PROTOCOL in the journal (log_format.rs).
        tracing::info!(
            session_id = id.raw(),
            user = shown_user,
            protocol = self.tunnel.name(),
            "user {}: address {client} assigned{}",
            login_log::Quoted(shown_user),
            assigned.origin_note()
        );
        let server = p
            .addresses
            .server_address()
            .filter(|s| *s != client)
            .unwrap_or(p.fallback_server_address);
        Ok(NetworkSettings {
            ipcp: Some({
                let settings = p.settings.load();
                IpcpConfig::server(server, client, settings.dns, settings.wins)
            }),
            ipv6cp: self.ipv6_prefix(id).map(|_| Ipv6cpConfig::default()),
            ccp: None,
        })
    }

    /// A static address outside the source: the kernel must send its
    /// traffic to the TUN. Only a route this session added is removed at
    /// its end.
    fn route_host(&self, id: SessionId, client: Ipv4Addr) {
        let Some(tun) = &self.parts.tun else {
            return;
        };
        match tun.add_route(IpAddr::V4(client), 32) {
            Ok(netdev::RouteAdded::Added) => {
                let owned = self
                    .parts
                    .sessions
                    .with(id, |r| r.own_ipv4_route = Some(client));
                if owned.is_none() {
                    // The session ended meanwhile: nobody else will.
                    let _ = tun.del_route(IpAddr::V4(client), 32);
                }
            }
            Ok(netdev::RouteAdded::AlreadyThere) => {}
            Err(e) => tracing::warn!(session_id = id.raw(), "Framed-IP-Address route: {e}"),
        }
    }

    /// The link is up (after CCP and the NCPs): steps 6 to 8.
    fn link_up(&self, info: &SessionInfo, up: &LinkUp) -> Result<tunnel::PacketReceiver, String> {
        let p = &*self.parts;
        let id = SessionId::from_raw(info.id);

        // 6. Policy at link-up: the encryption CCP negotiated, and the
        // user's other sessions that are up now.
        let asking = self.asking(id, &info.peer);
        let user = info.user.as_deref().unwrap_or("");
        let mppe = up.mppe.map(|m| m.strength);
        let admitted = p.sessions.admit_up(id, |r, others_up| match &r.admitted {
            Some(a) => policy_stages::at_link_up(a, asking, user, mppe, others_up),
            None => Ok(()),
        })?;
        if !admitted {
            return Err("the session ended before its link came up".into());
        }

        // 7. Routes: the router sends the client's addresses to this
        // session; a RADIUS Framed-IPv6-Prefix gets a route to the TUN.
        let mut routes = Vec::new();
        if let Some(v4) = &up.ipv4 {
            routes.push(IpAddr::V4(v4.peer));
        }
        let ipv6_prefix = self.ipv6_prefix(id);
        if let (Some(v6), Some(prefix)) = (&up.ipv6, ipv6_prefix) {
            routes.push(IpAddr::V6(ipv6_link::client_ipv6(
                prefix,
                v6.peer_interface_id,
            )));
        }
        if let (Some(prefix), Some(tun)) = (ipv6_prefix, &p.tun) {
            if Some(prefix) != p.ipv6_prefix && up.ipv6.is_some() {
                // The kernel must send the prefix's traffic to the TUN.
                // Only a route this session added is removed at its end.
                match tun.add_route(IpAddr::V6(prefix), 64) {
                    Ok(netdev::RouteAdded::Added) => {
                        p.sessions.with(id, |r| r.own_ipv6_prefix = Some(prefix));
                    }
                    Ok(netdev::RouteAdded::AlreadyThere) => {}
                    Err(e) => tracing::warn!(session_id = id.raw(), "Framed-IPv6-Prefix: {e}"),
                }
            }
        }
        let (tx, rx) = p.router.register(&routes);
        self.route_framed(id, up, &tx);
        let encryption = self.encryption(up);
        let (radius_interim, opened) = p
            .sessions
            .with(id, |r| {
                r.routes = routes;
                r.encryption = Some(encryption);
                (r.granted.interim_interval, Some(r.opened))
            })
            .unwrap_or((None, None));
        p.metrics
            .session_attempt(self.tunnel, crate::metrics::AttemptResult::Success);
        if let Some(opened) = opened {
            p.metrics.handshake(self.tunnel, opened.elapsed());
        }

        // 8. Accounting Start, and the timers (Session-Timeout,
        // Idle-Timeout, Interim-Update).
        match &p.accounting {
            Some(acct) => {
                // RFC 2869 §5.16: at least 60 seconds.
                let interim = radius_interim
                    .map(|s| Duration::from_secs(u64::from(s).max(60)))
                    .or(acct.interim_interval);
                session_accounting::start(&acct.accounting, &p.sessions, acct.nas.as_ref(), id);
                let (records, sessions, nas) = (
                    acct.accounting.clone(),
                    p.sessions.clone(),
                    acct.nas.clone(),
                );
                p.sessions.watch(id, interim, move |id| {
                    session_accounting::interim(&records, &sessions, nas.as_ref(), id)
                });
            }
            None => p.sessions.watch(id, None, |_| {}),
        }
        if let (Some(netbios), Some(v4)) = (&p.netbios, &up.ipv4) {
            let live = p.sessions.with(id, |r| r.live.clone());
            netbios.client_up(id, v4.peer, v4.local, tx.clone(), live);
        }
        if let (Some(v6), Some(prefix)) = (&up.ipv6, ipv6_prefix) {
            ipv6_link::announce(tx, v6.local_interface_id, prefix, p.mtu);
        }
        Ok(rx)
    }

    /// RADIUS Framed-Route / Framed-IPv6-Route (framed_routes.rs): each
    /// network of the family the link carries goes to this session in the
    /// router, unless another session has it (refused with a warning), and
    /// to the TUN in the kernel. Only a kernel route this session added is
    /// removed at its end.
    fn route_framed(&self, id: SessionId, up: &LinkUp, tx: &tunnel::PacketSender) {
        let p = &*self.parts;
        let wanted = p
            .sessions
            .with(id, |r| r.granted.framed_routes.clone())
            .unwrap_or_default();
        if wanted.is_empty() {
            return;
        }
        let mut claimed = Vec::new();
        let mut own = Vec::new();
        for route in wanted {
            let carried = match route.prefix {
                IpAddr::V4(_) => up.ipv4.is_some(),
                IpAddr::V6(_) => up.ipv6.is_some(),
            };
            if !carried {
                tracing::warn!(
                    session_id = id.raw(),
                    "framed route {route} not used: the link carries no {}",
                    if route.prefix.is_ipv4() {
                        "IPv4"
                    } else {
                        "IPv6"
                    }
                );
                continue;
            }
            if let Err(e) = p.router.claim_prefix(route.prefix, route.len, tx) {
                tracing::warn!(session_id = id.raw(), "framed route {route} refused: {e}");
                continue;
            }
            claimed.push(route);
            if let Some(tun) = &p.tun {
                match tun.add_route(route.prefix, route.len) {
                    Ok(netdev::RouteAdded::Added) => own.push(route),
                    Ok(netdev::RouteAdded::AlreadyThere) => {}
                    Err(e) => {
                        tracing::warn!(session_id = id.raw(), "framed route {route}: {e}")
                    }
                }
            }
        }
        if !claimed.is_empty() {
            tracing::info!(
                session_id = id.raw(),
                "framed routes through the session: {}",
                crate::framed_routes::listed(&claimed)
            );
        }
        let kept = p.sessions.with(id, |r| {
            r.framed_routes = claimed.clone();
            r.own_framed_routes = own.clone();
        });
        if kept.is_none() {
            // The session ended meanwhile: nobody else will undo these.
            Self::unroute_framed(p, id, &claimed, &own);
        }
    }

    /// Undoes [`Self::route_framed`]: the router's claims and the kernel
    /// routes this session added.
    fn unroute_framed(
        p: &PipelineParts,
        id: SessionId,
        claimed: &[radius::FramedRoute],
        own: &[radius::FramedRoute],
    ) {
        for route in claimed {
            p.router.release_prefix(route.prefix, route.len);
        }
        if let Some(tun) = &p.tun {
            for route in own {
                if let Err(e) = tun.del_route(route.prefix, route.len) {
                    tracing::warn!(session_id = id.raw(), "framed route {route}: {e}");
                }
            }
        }
    }

    /// What protects a session's traffic, in words for the admin API.
    fn encryption(&self, up: &LinkUp) -> String {
        match (up.mppe, self.tunnel) {
            (Some(mppe), _) => mppe.to_string(),
            (None, TunnelKind::Sstp) => "TLS".into(),
            (None, TunnelKind::Ikev2) => "IPsec ESP".into(),
            (None, TunnelKind::L2tp) if !self.plain_l2tp => "IPsec ESP".into(),
            (None, _) => "none".into(),
        }
    }

    /// The session ended: step 9. Its record is removed here, once.
    fn session_ended(&self, info: &SessionInfo, reason: &tunnel::EndReason) {
        let p = &*self.parts;
        let id = SessionId::from_raw(info.id);
        let record = p.sessions.remove(id);
        if let Some(netbios) = &p.netbios {
            netbios.client_down(id);
        }
        let mut freed = None;
        if let Some(mut r) = record {
            // A cause the server set itself (a timeout, a Disconnect-Request,
            // its own stop) wins over what the session saw at its end.
            r.cause.get_or_insert(reason.terminate_cause());
            p.router.unregister(&r.routes);
            Self::unroute_framed(p, id, &r.framed_routes, &r.own_framed_routes);
            if let (Some(addr), Some(tun)) = (r.own_ipv4_route, &p.tun) {
                if let Err(e) = tun.del_route(IpAddr::V4(addr), 32) {
                    tracing::warn!(session_id = id.raw(), "Framed-IP-Address route: {e}");
                }
            }
            if let (Some(prefix), Some(tun)) = (r.own_ipv6_prefix, &p.tun) {
                if let Err(e) = tun.del_route(IpAddr::V6(prefix), 64) {
                    tracing::warn!(session_id = id.raw(), "Framed-IPv6-Prefix route: {e}");
                }
            }
            if let Some(acct) = &p.accounting {
                session_accounting::stop(&acct.accounting, acct.nas.as_ref(), &r);
            }
            if r.stage < Stage::Up {
                let result = crate::metrics::AttemptResult::of_early_end(reason);
                p.metrics.session_attempt(r.tunnel, result);
                if result == crate::metrics::AttemptResult::AuthFailed {
                    p.metrics
                        .authentication(r.claimed.method.map_or("none", method_words), false);
                }
            }
            p.metrics.session_ended(r.tunnel, r.live.traffic());
            freed = r.address;
        }
        // The address goes back to its source (even one handed out after
        // the record was gone: releasing is harmless).
        p.addresses.release(id);
        // A login that never succeeded was logged as refused already.
        let Some(user) = info.user.as_deref() else {
            tracing::debug!(
                session_id = id.raw(),
                "session ended before its login succeeded"
            );
            return;
        };
        let name = user;
        let user = login_log::Quoted(user);
        let protocol = self.tunnel.name();
        match freed {
            Some(addr) => tracing::info!(
                session_id = id.raw(),
                user = name,
                protocol,
                "user {user}: session ended, address freed ({addr})"
            ),
            None => tracing::info!(
                session_id = id.raw(),
                user = name,
                protocol,
                "user {user}: session ended"
            ),
        }
    }
}

/// Why an address another session holds was refused.
fn in_use(assigned: &Assigned) -> String {
    match assigned.origin {
        Some(origin) => format!(
            "no address for the client: the {origin} {} is in use by another session",
            assigned.addr
        ),
        None => format!(
            "no address for the client: {} is in use by another session",
            assigned.addr
        ),
    }
}

impl ServerHooks for ControlPipeline {
    fn authenticate(&self, info: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        let this = self.clone();
        let info = info.clone();
        Box::pin(async move { this.authentication_phase(&info, request).await })
    }

    fn authenticated_by_tunnel(&self, info: &SessionInfo, method: tunnel::TunnelAuthMethod) {
        let id = SessionId::from_raw(info.id);
        let method = match method {
            tunnel::TunnelAuthMethod::Certificate => policy::AuthMethod::Certificate,
        };
        let user = info.user.clone().unwrap_or_default();
        self.parts.sessions.open(id, &info.peer, self.tunnel);
        self.parts
            .sessions
            .with(id, |r| r.claim(&user, None, Some(method)));
    }

    fn certificate_status(
        &self,
        _info: &SessionInfo,
        certificate: &ipsec::ikev1::certificates::PeerCertificate,
    ) -> BoxFuture<Result<(), String>> {
        let certificate = certificate.clone();
        Box::pin(async move { crate::online_status::check(&certificate).await })
    }

    fn network(&self, info: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        let this = self.clone();
        let info = info.clone();
        Box::pin(async move { this.network_phase(&info).await })
    }

    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        let result = self.link_up(info, up);
        Box::pin(async move { result })
    }

    fn down(&self, info: &SessionInfo, reason: &tunnel::EndReason) {
        self.session_ended(info, reason)
    }

    fn link_responder(&self, info: &SessionInfo, up: &LinkUp) -> Option<icmpv6::Responder> {
        let prefix = self.ipv6_prefix(SessionId::from_raw(info.id));
        ipv6_link::responder(up, prefix, self.parts.ipv6_prefix, self.parts.mtu)
    }

    fn ipv6_prefix(&self, info: &SessionInfo) -> Option<Ipv6Addr> {
        self.ipv6_prefix(SessionId::from_raw(info.id))
    }

    /// The client's own addresses and the framed routes it holds: IPv4
    /// its one address; IPv6 a PPP client's whole /64 (it picks its
    /// addresses there, RFC 8981) and link-local, an IKEv2 client's one
    /// address (RFC 7296 §2.9, narrowed selectors).
    fn source_filter(&self, info: &SessionInfo, up: &LinkUp) -> Option<tunnel::SourceFilter> {
        let id = SessionId::from_raw(info.id);
        let mut filter = tunnel::SourceFilter::new();
        if let Some(v4) = &up.ipv4 {
            filter.allow(IpAddr::V4(v4.peer), 32);
        }
        if let (Some(v6), Some(prefix)) = (&up.ipv6, self.ipv6_prefix(id)) {
            if self.tunnel == TunnelKind::Ikev2 {
                let own = ipv6_link::client_ipv6(prefix, v6.peer_interface_id);
                filter.allow(IpAddr::V6(own), 128);
            } else {
                filter.allow(IpAddr::V6(prefix), 64);
                filter.allow_link_local();
            }
        }
        let framed = self
            .parts
            .sessions
            .with(id, |r| r.framed_routes.clone())
            .unwrap_or_default();
        for route in framed {
            filter.allow(route.prefix, route.len);
        }
        Some(filter)
    }

    fn routed_networks(&self, info: &SessionInfo) -> Vec<(IpAddr, u8)> {
        self.parts
            .sessions
            .with(SessionId::from_raw(info.id), |r| {
                r.framed_routes.iter().map(|f| (f.prefix, f.len)).collect()
            })
            .unwrap_or_default()
    }

    fn live(&self, info: &SessionInfo) -> Option<Arc<tunnel::LiveSession>> {
        self.parts
            .sessions
            .with(SessionId::from_raw(info.id), |r| r.live.clone())
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
