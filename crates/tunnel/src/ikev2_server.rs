//! IKEv2 remote access in `ras server` (RFC 7296): the sans-IO
//! [`Ikev2Responder`] in the IPsec front end's task (`l2tp_ipsec`), which
//! owns UDP 500/4500 and raw ESP for both IKE versions, and the bridge
//! from its events to the server's [`ServerHooks`]: the same control path
//! as every PPP session (authenticate, network, up, down, live), without
//! PPP.
//!
//! - EAP (§2.16) runs `ppp::auth`'s EAP authenticator ([`IkeEapServer`]):
//!   EAP-MSCHAPv2 against the user store, or relayed to RADIUS.
//! - A pre-shared key client (§2.15) is authenticated by the responder; its
//!   IKE identity is the user the policies see.
//! - The address comes from `network` and goes out in the configuration
//!   payload (§3.15); `up` registers it with the router and hands back the
//!   queue of IP packets for the client, which a small task forwards into
//!   the front end's channel.
//! - ESP is tunnel mode (RFC 4303 §3.1.2): inbound packets carry whole IP
//!   packets (next header 4) and only from the client's own address
//!   (RFC 4301 §5.2: the SA's selectors are checked after decryption).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ipsec::esp::{EspSa, InboundSas};
use ipsec::ike_crypto::DhStock;
use ipsec::ikev1::events::{DownReason, IkeSaId};
use ipsec::ikev2::traffic_selectors::TrafficSelector;
use ipsec::ikev2::{
    Authorization, AuthorizationRequest, ChildSa, ClientAuthMethod, EapReply, Ikev2Config,
    Ikev2Event, Ikev2Responder, SignatureJob, SignedAuth,
};
use ppp::auth::AuthProtocol;
use ppp::link::{Ipv4Info, Ipv6Info, LinkUp, NetworkSettings};
use session::{EndReason, LostCarrier, SessionStats};
use tokio::sync::mpsc;

use crate::hooks::{AuthAnswer, PacketSink, ServerHooks, SessionInfo, TunnelAuthMethod};
use crate::ikev2_eap::{IkeEapServer, ServerStep};
use crate::l2tp_ipsec::RefusalLog;
use crate::live::LiveSession;
use crate::login_log;
use crate::signer_pool::SignerPool;

/// IP protocol number of IPv4 in IPv4 (ESP's next header in tunnel mode).
pub(crate) const IPV4_IN_ESP: u8 = 4;
/// The server's interface identifier on each client's link (the router
/// advertisements the pipeline sends come from fe80:: with it).
const LOCAL_INTERFACE_ID: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
/// IP packets for clients waiting for encryption; more are dropped.
const PACKET_QUEUE: usize = 4096;

/// What `ras server` gives the IKEv2 part.
pub struct Ikev2Service {
    pub config: Ikev2Config,
    /// The server's answers (pipeline), for sessions of tunnel type IKEv2.
    pub hooks: Arc<dyn ServerHooks>,
    /// Where packets from clients go (the TUN).
    pub sink: Arc<dyn PacketSink>,
    /// The name the EAP-MSCHAPv2 authenticator gives (RFC 2759 §4).
    pub eap_name: String,
    /// Relay EAP to RADIUS (RFC 3579) instead of running EAP-MSCHAPv2 here.
    pub eap_pass_through: bool,
    /// A new session number (unique with the server's other sessions).
    pub session_ids: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Split tunnelling: what clients may reach (empty: everything).
    pub routes: Vec<TrafficSelector>,
    /// Logical ports: the most sessions at once.
    pub ports: usize,
}

/// An answer from a hook task, back into the front end's task.
pub(crate) enum HookAnswer {
    Authenticate(IkeSaId, AuthAnswer),
    Authorized(IkeSaId, Result<Granted, String>),
    /// The owner asked the session to stop (a timeout, a Disconnect-Request).
    StopRequested(IkeSaId),
    /// Our signature for an EAP client, made on the signer pool.
    Signed(Box<SignedAuth>),
}

/// What `network` and `up` gave an authorized client.
pub(crate) struct Granted {
    settings: NetworkSettings,
    ipv6: Option<Ipv6Addr>,
    queue: crate::PacketReceiver,
    /// The owner's source filter (its framed routes), when it has one.
    sources: Option<session::SourceFilter>,
    /// Networks routed through the session, for the client's selectors.
    networks: Vec<(std::net::IpAddr, u8)>,
}

/// IP protocol number of IPv6 (ESP's next header for IPv6 in tunnel mode).
pub(crate) const IPV6_IN_ESP: u8 = 41;

/// One client's session.
struct Tunnel {
    info: SessionInfo,
    eap: Option<IkeEapServer>,
    /// A hook was asked, so `down` is owed exactly once.
    owes_down: bool,
    /// Why it ended, when our side knows better than the IKE event.
    end: Option<EndReason>,
    virtual_ipv4: Option<Ipv4Addr>,
    virtual_ipv6: Option<Ipv6Addr>,
    /// Sources allowed besides the virtual addresses: networks routed to
    /// the client (RADIUS Framed-Route), from the owner.
    sources: Option<session::SourceFilter>,
    send_to: SocketAddr,
    udp_encapsulated: bool,
    /// Outbound SAs by their inbound twin's SPI, newest last, and whether
    /// the client is known to have installed the pair (see `child_up`).
    outbound: Vec<(u32, EspSa, bool)>,
    live: Option<Arc<LiveSession>>,
    stats: SessionStats,
    reported: SessionStats,
    /// The tasks that forward its packets and watch for a stop request.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Its packets dropped by the source check (the first is logged, the
    /// total when the IKE SA ends).
    spoofed: u64,
}

impl Tunnel {
    fn new(id: u64, peer: SocketAddr) -> Tunnel {
        Tunnel {
            info: SessionInfo {
                id,
                peer: peer.to_string(),
                user: None,
            },
            eap: None,
            owes_down: false,
            end: None,
            virtual_ipv4: None,
            virtual_ipv6: None,
            sources: None,
            send_to: peer,
            udp_encapsulated: false,
            outbound: Vec::new(),
            live: None,
            stats: SessionStats::default(),
            reported: SessionStats::default(),
            tasks: Vec::new(),
            spoofed: 0,
        }
    }

    fn report_traffic(&mut self) {
        if let Some(live) = &self.live {
            live.add(&mut self.reported, &self.stats);
        }
    }
}

/// An outbound ESP packet to queue: the SA, where, and how.
pub(crate) struct OutboundEsp<'a> {
    pub sa: &'a mut EspSa,
    pub to: SocketAddr,
    pub udp_encapsulated: bool,
}

/// The IKEv2 part of the IPsec front end, owned by its task.
pub(crate) struct Ikev2Part {
    pub(crate) responder: Ikev2Responder,
    service: Ikev2Service,
    tunnels: HashMap<IkeSaId, Tunnel>,
    /// Inbound ESP SPI → its IKE SA.
    spi_owner: HashMap<u32, IkeSaId>,
    answers: mpsc::UnboundedSender<HookAnswer>,
    packets: mpsc::Sender<(IkeSaId, Bytes)>,
    /// Threads for our signatures, one per core (signer_pool.rs).
    signers: SignerPool,
    /// Packets dropped: not IPv4, or not from the client's address.
    pub(crate) dropped: u64,
    delivered: bool,
}

/// The receivers the front end's task selects on.
pub(crate) struct Ikev2Inputs {
    pub answers: mpsc::UnboundedReceiver<HookAnswer>,
    pub packets: mpsc::Receiver<(IkeSaId, Bytes)>,
}

impl Ikev2Part {
    pub(crate) fn new(
        service: Ikev2Service,
        stock: Option<Arc<DhStock>>,
        now: Instant,
    ) -> (Ikev2Part, Ikev2Inputs) {
        // One answer at most is outstanding per session (a session asks
        // its next question only after the answer), so the unbounded
        // channel is bounded by the number of sessions.
        let (answers, answers_rx) = mpsc::unbounded_channel();
        let (packets, packets_rx) = mpsc::channel(PACKET_QUEUE);
        // Our RSA signature costs more than the rest of a handshake: it is
        // made off this task (`SignatureNeeded`), on the signer pool.
        let mut config = service.config.clone();
        config.offload_signatures = true;
        config.dh_stock = stock;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let part = Ikev2Part {
            responder: Ikev2Responder::new(config, now),
            service,
            tunnels: HashMap::new(),
            spi_owner: HashMap::new(),
            answers,
            packets,
            signers: SignerPool::new(cores),
            dropped: 0,
            delivered: false,
        };
        let inputs = Ikev2Inputs {
            answers: answers_rx,
            packets: packets_rx,
        };
        (part, inputs)
    }

    /// New responder settings (a server reload). What the driver sets
    /// itself (signatures on the signer pool, the key stock) stays.
    pub(crate) fn set_config(&mut self, mut config: ipsec::ikev2::Ikev2Config) {
        let current = self.responder.config();
        config.offload_signatures = current.offload_signatures;
        config.dh_stock = current.dh_stock.clone();
        self.responder.set_config(config);
    }

    /// A decrypted tunnel-mode packet on inbound SA `spi`.
    pub(crate) fn deliver(
        &mut self,
        now: Instant,
        spi: u32,
        from: Option<SocketAddr>,
        next_header: u8,
        packet: &[u8],
    ) {
        let Some(&ike_sa) = self.spi_owner.get(&spi) else {
            return;
        };
        let Some(tunnel) = self.tunnels.get_mut(&ike_sa) else {
            return;
        };
        // RFC 3948 §5 / RFC 7296 §2.23: a NAT may move the client's port;
        // authenticated ESP tells us where it is now.
        if let Some(from) = from {
            if tunnel.udp_encapsulated && from != tunnel.send_to {
                tunnel.send_to = from;
            }
        }
        self.responder.note_traffic(ike_sa, now);
        // RFC 4301 §5.2: after decryption the packet must match the SA's
        // selectors: from the client's own addresses (the selectors we
        // narrow the client's side to, §2.9).
        let allowed = match next_header {
            IPV4_IN_ESP if packet.len() >= 20 && packet[0] >> 4 == 4 => {
                let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
                Some(source) == tunnel.virtual_ipv4
            }
            IPV6_IN_ESP if packet.len() >= 40 && packet[0] >> 4 == 6 => {
                let mut source = [0u8; 16];
                source.copy_from_slice(&packet[8..24]);
                Some(Ipv6Addr::from(source)) == tunnel.virtual_ipv6
            }
            _ => false,
        } || tunnel.sources.as_ref().is_some_and(|f| f.allows(packet));
        if !allowed {
            self.dropped += 1;
            tunnel.spoofed += 1;
            if tunnel.spoofed == 1 {
                tracing::warn!(
                    session = tunnel.info.id,
                    "dropped a packet from {}: neither the client's address nor a network routed to it (further ones are only counted, the total at the end)",
                    session::describe_source(packet)
                );
            }
            return;
        }
        // The client sends on a rekeyed pair: it has installed it, so our
        // side may send on it too.
        if let Some(entry) = tunnel.outbound.iter_mut().find(|(s, _, _)| *s == spi) {
            entry.2 = true;
        }
        crate::inbound::deliver(&*self.service.sink, &mut tunnel.stats, packet);
        tunnel.report_traffic();
        self.delivered = true;
    }

    /// The end of a receive batch: the sink writes what it holds.
    pub(crate) fn flush_sink(&mut self) {
        if std::mem::take(&mut self.delivered) {
            self.service.sink.flush();
        }
    }

    /// Where an IP packet for `ike_sa`'s client goes, and with which SA.
    pub(crate) fn outbound(&mut self, ike_sa: IkeSaId, length: usize) -> Option<OutboundEsp<'_>> {
        let tunnel = self.tunnels.get_mut(&ike_sa)?;
        tunnel.stats.packets_out += 1;
        tunnel.stats.ip_bytes_out += length as u64;
        tunnel.report_traffic();
        let to = tunnel.send_to;
        let udp_encapsulated = tunnel.udp_encapsulated;
        // The newest pair the client is known to have installed.
        let (_, sa, _) = tunnel
            .outbound
            .iter_mut()
            .rev()
            .find(|(_, _, ready)| *ready)?;
        Some(OutboundEsp {
            sa,
            to,
            udp_encapsulated,
        })
    }

    /// A hook's answer.
    pub(crate) fn answer(&mut self, now: Instant, answer: HookAnswer) {
        match answer {
            HookAnswer::Authenticate(ike_sa, answer) => {
                let Some(eap) = self.tunnels.get_mut(&ike_sa).and_then(|t| t.eap.as_mut()) else {
                    return;
                };
                let step = match answer {
                    AuthAnswer::Secret(secret) => eap.provide_secret(now, secret),
                    AuthAnswer::SecretThenReject(secret, rejection, why) => {
                        eap.provide_secret_then_reject(now, secret, rejection, &why)
                    }
                    AuthAnswer::Reject(rejection, why) => eap.reject(now, rejection, &why),
                    AuthAnswer::Accept(accept) => eap.accept_external(now, accept),
                    AuthAnswer::EapChallenge(message) => eap.eap_challenge(now, message),
                };
                self.eap_step(now, ike_sa, step);
            }
            HookAnswer::Authorized(ike_sa, result) => self.authorized(now, ike_sa, result),
            HookAnswer::Signed(signed) => self.responder.signature_ready(now, *signed),
            HookAnswer::StopRequested(ike_sa) => {
                let Some(tunnel) = self.tunnels.get_mut(&ike_sa) else {
                    return;
                };
                let reason = tunnel
                    .live
                    .as_ref()
                    .and_then(|l| l.stop_reason())
                    .unwrap_or(EndReason::AdminReset("the server".into()));
                tunnel.end = Some(reason);
                // Its events are applied by the front end's next flush.
                self.responder.close(now, ike_sa);
            }
        }
    }

    /// Applies what the responder reported (call after every input).
    pub(crate) fn apply_events(
        &mut self,
        now: Instant,
        inbound: &mut InboundSas,
        refusals: &mut RefusalLog,
    ) {
        while let Some(event) = self.responder.poll_event() {
            match event {
                Ikev2Event::IkeSaUp {
                    peer,
                    identity,
                    suite,
                    nat,
                    ..
                } => tracing::info!(
                    "IKEv2: {peer} authenticated as {}: {suite}, {nat}",
                    login_log::Quoted(&identity)
                ),
                Ikev2Event::EapStart { ike_sa, peer, .. } => {
                    if self.tunnels.len() >= self.service.ports {
                        let reason = self.ports_full();
                        refusals.log(now, peer, &reason);
                        let failure = EapReply::Failure {
                            packet: ppp::auth::eap::build_failure(0),
                            reason,
                        };
                        self.responder.eap_reply(now, ike_sa, failure);
                        continue;
                    }
                    let mut tunnel = Tunnel::new((self.service.session_ids)(), peer);
                    let mut eap = IkeEapServer::new(
                        &self.service.eap_name,
                        self.service.eap_pass_through,
                        &mut rand::thread_rng(),
                    );
                    let step = eap.start(now);
                    tunnel.eap = Some(eap);
                    self.tunnels.insert(ike_sa, tunnel);
                    self.eap_step(now, ike_sa, step);
                }
                Ikev2Event::SignatureNeeded(job) => self.sign(*job),
                Ikev2Event::EapResponse { ike_sa, packet } => {
                    let Some(eap) = self.tunnels.get_mut(&ike_sa).and_then(|t| t.eap.as_mut())
                    else {
                        continue;
                    };
                    let step = eap.response(now, &packet);
                    self.eap_step(now, ike_sa, step);
                }
                Ikev2Event::AuthorizationNeeded(request) => {
                    // A client without EAP asks its first question here.
                    if !self.tunnels.contains_key(&request.ike_sa)
                        && self.tunnels.len() >= self.service.ports
                    {
                        let reason = self.ports_full();
                        refusals.log(now, request.peer, &reason);
                        self.responder.authorize(now, request.ike_sa, Err(reason));
                        continue;
                    }
                    self.authorize(*request)
                }
                Ikev2Event::ChildSaUp(child) => self.child_up(now, inbound, *child),
                Ikev2Event::ChildSaDown {
                    ike_sa,
                    inbound_spi,
                    ..
                } => {
                    inbound.remove(inbound_spi);
                    self.spi_owner.remove(&inbound_spi);
                    if let Some(t) = self.tunnels.get_mut(&ike_sa) {
                        t.outbound.retain(|(spi, _, _)| *spi != inbound_spi);
                        // With the old pair gone, the newest one is used.
                        if let Some(last) = t.outbound.last_mut() {
                            last.2 = true;
                        }
                    }
                }
                Ikev2Event::IkeSaDown {
                    ike_sa,
                    peer,
                    reason,
                } => {
                    // Our own reason (a timeout, a Disconnect-Request)
                    // says more than the responder's "closed".
                    let tunnel = self.tunnels.get(&ike_sa);
                    let spoofed = tunnel.map_or(0, |t| t.spoofed);
                    match tunnel.and_then(|t| t.end.as_ref()) {
                        Some(end) => tracing::info!("{}", ended_line(peer, end, spoofed)),
                        None => tracing::info!("{}", ended_line(peer, &reason, spoofed)),
                    }
                    self.ended(ike_sa, end_reason(&reason));
                }
                Ikev2Event::Abandoned { ike_sa, .. } => {
                    self.ended(ike_sa, EndReason::LostCarrier(LostCarrier::TransportClosed))
                }
                Ikev2Event::PeerMoved {
                    ike_sa,
                    peer,
                    udp_encapsulated,
                } => {
                    if let Some(t) = self.tunnels.get_mut(&ike_sa) {
                        t.send_to = peer;
                        t.udp_encapsulated = udp_encapsulated;
                    }
                }
                Ikev2Event::Refused { peer, reason } => refusals.log(now, peer, &reason),
            }
        }
    }

    fn ports_full(&self) -> String {
        format!(
            "refused: all {} IKEv2 ports are in use ([ikev2] ports)",
            self.service.ports
        )
    }

    fn eap_step(&mut self, now: Instant, ike_sa: IkeSaId, step: ServerStep) {
        let Some(tunnel) = self.tunnels.get_mut(&ike_sa) else {
            return;
        };
        match step {
            ServerStep::Reply(reply) => {
                match &reply {
                    EapReply::Success { identity, .. } => {
                        tracing::info!(
                            session = tunnel.info.id,
                            "authenticated: user {}, EAP over IKEv2",
                            login_log::Quoted(identity)
                        );
                        tunnel.info.user = Some(identity.clone());
                    }
                    EapReply::Failure { reason, .. } => {
                        tunnel.end = Some(EndReason::AuthFailed(reason.clone()));
                    }
                    EapReply::Continue(_) => {}
                }
                self.responder.eap_reply(now, ike_sa, reply);
            }
            ServerStep::Check(request) => {
                tunnel.owes_down = true;
                let hooks = self.service.hooks.clone();
                let info = tunnel.info.clone();
                let answers = self.answers.clone();
                tokio::spawn(async move {
                    let answer = hooks.authenticate(&info, request).await;
                    let _ = answers.send(HookAnswer::Authenticate(ike_sa, answer));
                });
            }
            ServerStep::Nothing => {}
        }
    }

    /// Makes our signature on the signer pool; the answer comes back as
    /// `HookAnswer::Signed`.
    fn sign(&self, job: SignatureJob) {
        let answers = self.answers.clone();
        self.signers.run(move || {
            let _ = answers.send(HookAnswer::Signed(Box::new(job.run())));
        });
    }

    /// An authenticated client: `network`, then `up`, in a hook task.
    fn authorize(&mut self, request: AuthorizationRequest) {
        let AuthorizationRequest {
            ike_sa,
            peer,
            identity,
            method,
            certificate_subject,
            certificate,
            wants_ipv6,
            ..
        } = request;
        let ids = &self.service.session_ids;
        let tunnel = self
            .tunnels
            .entry(ike_sa)
            .or_insert_with(|| Tunnel::new(ids(), peer));
        match method {
            ClientAuthMethod::SharedKey => {
                tracing::info!(
                    session = tunnel.info.id,
                    "authenticated: user {}, pre-shared key over IKEv2",
                    login_log::Quoted(&identity)
                );
                tunnel.info.user = Some(identity);
            }
            ClientAuthMethod::Certificate => {
                tracing::info!(
                    session = tunnel.info.id,
                    "authenticated: user {}, certificate {} over IKEv2",
                    login_log::Quoted(&identity),
                    login_log::Quoted(certificate_subject.as_deref().unwrap_or(""))
                );
                tunnel.info.user = Some(identity);
                self.service
                    .hooks
                    .authenticated_by_tunnel(&tunnel.info, TunnelAuthMethod::Certificate);
            }
            ClientAuthMethod::Eap => {}
        }
        tunnel.owes_down = true;
        let hooks = self.service.hooks.clone();
        let info = tunnel.info.clone();
        let answers = self.answers.clone();
        let auth_protocol = (method == ClientAuthMethod::Eap).then_some(AuthProtocol::Eap);
        tokio::spawn(async move {
            let result = async {
                // Before any address is taken: a refused certificate
                // leaves nothing to give back.
                if let Some(certificate) = &certificate {
                    hooks.certificate_status(&info, certificate).await?;
                }
                let settings = hooks.network(&info).await?;
                let ipcp = settings
                    .ipcp
                    .as_ref()
                    .ok_or_else(|| "the server gives no IPv4 address".to_string())?;
                let (Some(local), Some(peer)) = (ipcp.local_address, ipcp.peer_address) else {
                    return Err("the server gives no IPv4 address".to_string());
                };
                // IPv6: a whole address in the session's /64, the client's
                // half random (RFC 8981 §3.3.1 style), as IPv6CP's
                // interface identifier would be.
                let ipv6 = match (wants_ipv6 && settings.ipv6cp.is_some())
                    .then(|| hooks.ipv6_prefix(&info))
                    .flatten()
                {
                    Some(prefix) => {
                        let mut id = [0u8; 8];
                        while id == [0; 8] || id == LOCAL_INTERFACE_ID {
                            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
                        }
                        Some((prefix, id))
                    }
                    None => None,
                };
                let up = LinkUp {
                    username: info.user.clone(),
                    auth_protocol,
                    master_keys: None,
                    ipv4: Some(Ipv4Info {
                        local,
                        peer,
                        dns: ipcp.dns,
                        nbns: ipcp.nbns,
                    }),
                    ipv6: ipv6.map(|(_, id)| Ipv6Info {
                        local_interface_id: LOCAL_INTERFACE_ID,
                        peer_interface_id: id,
                    }),
                    mppe: None,
                    peer_mru: 1500,
                };
                let queue = hooks.up(&info, &up).await?;
                let sources = hooks.source_filter(&info, &up);
                let networks = hooks.routed_networks(&info);
                let ipv6 = ipv6.map(|(prefix, id)| {
                    Ipv6Addr::from(u128::from(prefix) | u128::from(u64::from_be_bytes(id)))
                });
                Ok(Granted {
                    settings,
                    ipv6,
                    queue,
                    sources,
                    networks,
                })
            }
            .await;
            let _ = answers.send(HookAnswer::Authorized(ike_sa, result));
        });
    }

    fn authorized(&mut self, now: Instant, ike_sa: IkeSaId, result: Result<Granted, String>) {
        let Some(tunnel) = self.tunnels.get_mut(&ike_sa) else {
            return;
        };
        let Granted {
            settings,
            ipv6,
            mut queue,
            sources,
            networks,
        } = match result {
            Ok(ok) => ok,
            Err(why) => {
                tunnel.end = Some(EndReason::ServiceUnavailable(why.clone()));
                self.responder.authorize(now, ike_sa, Err(why));
                return;
            }
        };
        // `authorize` checked that IPCP settings with an address are there.
        let Some(ipcp) = settings.ipcp else {
            return;
        };
        tunnel.virtual_ipv4 = ipcp.peer_address;
        tunnel.virtual_ipv6 = ipv6;
        tunnel.sources = sources;
        tunnel.live = self.service.hooks.live(&tunnel.info);
        let packets = self.packets.clone();
        tunnel.tasks.push(tokio::spawn(async move {
            while let Some(packet) = queue.recv().await {
                // Never blocks the router: a full queue drops, as a router
                // would.
                if let Err(mpsc::error::TrySendError::Closed(_)) =
                    packets.try_send((ike_sa, packet))
                {
                    break;
                }
            }
        }));
        if let Some(live) = tunnel.live.clone() {
            let answers = self.answers.clone();
            tunnel.tasks.push(tokio::spawn(async move {
                live.stopped().await;
                let _ = answers.send(HookAnswer::StopRequested(ike_sa));
            }));
        }
        let authorization = Authorization {
            ipv4: ipcp.peer_address,
            dns: ipcp.dns.iter().flatten().map(|a| (*a).into()).collect(),
            nbns: ipcp.nbns.iter().flatten().copied().collect(),
            ipv6,
            routes: self.service.routes.clone(),
            client_networks: networks
                .iter()
                .map(|(net, len)| TrafficSelector::prefix(*net, *len))
                .collect(),
            ..Authorization::default()
        };
        self.responder.authorize(now, ike_sa, Ok(authorization));
    }

    fn child_up(&mut self, now: Instant, inbound: &mut InboundSas, child: ChildSa) {
        let (inbound_sa, outbound_sa) = match (
            EspSa::new(&child.inbound, now),
            EspSa::new(&child.outbound, now),
        ) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("IKEv2: {}: cannot key ESP: {e}", child.peer);
                return;
            }
        };
        let Some(tunnel) = self.tunnels.get_mut(&child.ike_sa) else {
            return;
        };
        let spi = inbound_sa.spi();
        // The L2TP/IPsec SAs share the SPI space; a clash (1 in 2^32 per
        // pair) costs this child, never the other.
        if inbound.get(spi).is_some() {
            tracing::warn!(
                "IKEv2: {}: inbound SPI {spi:08x} already in use; child SA not installed",
                child.peer
            );
            return;
        }
        inbound.insert(inbound_sa);
        self.spi_owner.insert(spi, child.ike_sa);
        tunnel.send_to = child.peer;
        tunnel.udp_encapsulated = child.udp_encapsulated;
        // RFC 7296 §2.8: the initiator of a rekey installs the new inbound
        // SA only when it has our response, so ESP on it sent at once could
        // arrive first and be dropped. Until the client sends on the new
        // pair or deletes the old one, the old one carries our packets.
        let ready = child.replaces_inbound_spi.is_none() || tunnel.outbound.is_empty();
        tunnel.outbound.push((spi, outbound_sa, ready));
        tracing::info!(
            session = tunnel.info.id,
            "IKEv2: {} ({}): ESP {} up, SPIs {spi:08x} in, {:08x} out, address {}{}",
            child.peer,
            login_log::Quoted(&child.identity),
            child.suite,
            child.outbound.spi,
            match (tunnel.virtual_ipv4, tunnel.virtual_ipv6) {
                (Some(v4), Some(v6)) => format!("{v4} and {v6}"),
                (Some(v4), None) => v4.to_string(),
                (None, Some(v6)) => v6.to_string(),
                (None, None) => "none".into(),
            },
            if child.udp_encapsulated {
                ", in UDP"
            } else {
                ""
            }
        );
    }

    fn ended(&mut self, ike_sa: IkeSaId, reason: EndReason) {
        let Some(mut tunnel) = self.tunnels.remove(&ike_sa) else {
            return;
        };
        for task in tunnel.tasks.drain(..) {
            task.abort();
        }
        tunnel.report_traffic();
        let reason = tunnel.end.take().unwrap_or(reason);
        if tunnel.owes_down {
            self.service.hooks.down(&tunnel.info, &reason);
        }
    }

    /// Shutdown: every IKE SA is deleted (the peers are told) and every
    /// session ends as the server stopping.
    pub(crate) fn close_all(&mut self, now: Instant) {
        for tunnel in self.tunnels.values_mut() {
            tunnel.end.get_or_insert(EndReason::ServerStopping);
        }
        self.responder.close_all(now);
    }
}

/// The line that ends an IKE SA, with the total the source check dropped
/// (as the PPP tunnels' "PPP link down" line has it).
fn ended_line(peer: SocketAddr, reason: &dyn std::fmt::Display, spoofed: u64) -> String {
    if spoofed > 0 {
        format!("IKEv2: {peer}: IKE SA ended: {reason}; {spoofed} packet(s) dropped by the source check")
    } else {
        format!("IKEv2: {peer}: IKE SA ended: {reason}")
    }
}

/// The session's end for an IKE SA's.
fn end_reason(reason: &DownReason) -> EndReason {
    match reason {
        DownReason::DeletedByPeer => EndReason::PeerRequest("the client deleted its SA".into()),
        DownReason::DeadPeer => EndReason::LostCarrier(LostCarrier::KeepaliveTimeout),
        DownReason::Expired => {
            EndReason::ProtocolError("the IKE SA's lifetime ran out without a rekey".into())
        }
        DownReason::Replaced => EndReason::Preempted("the client started over".into()),
        DownReason::Closed => EndReason::ServerStopping,
        DownReason::CertificateRefused(why) => EndReason::AuthFailed(why.clone()),
    }
}

#[cfg(test)]
#[path = "ikev2_server_tests.rs"]
mod tests;
