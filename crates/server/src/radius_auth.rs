//! Authentication through RADIUS: a PPP [`AuthRequest`] becomes an
//! Access-Request (RFC 2865 §5.2 PAP, §5.3 CHAP, RFC 2548 §2.3 MS-CHAPv2,
//! RFC 3579 EAP), and the reply becomes the session's [`AuthAnswer`].
//!
//! What an Access-Accept grants beyond the login (Framed-IP-Address,
//! Session-Timeout, Idle-Timeout, Class, Acct-Interim-Interval) and the
//! State of an Access-Challenge go back to the caller with the answer
//! ([`Verdict`]): the session's record keeps them, not this module.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ppp::auth::{AuthRequest, Credentials, ExternalAccept, Rejection};
use ppp::crypto::mppe_keys::MasterKeys;
use radius::dict::{FramedProtocol, NasPortType, ServiceType, TunnelMediumType, TunnelType};
use radius::microsoft::{MsChap2Response, MsChapResponse};
use radius::{AccessOutcome, Outcome, Request};
use tunnel::AuthAnswer;

use crate::authenticator::{Attempt, Authenticator, Claim, KnownUser, Verdict};
use crate::pool::BoxFuture;
use crate::radius_io::{RadiusError, RadiusHandle};
use crate::SessionId;

/// Which tunnel a session came through (Tunnel-Type, RFC 2868 §3.1, and
/// NAS-Port-Type in requests; the policy condition of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Sstp,
    Pptp,
    L2tp,
    Ikev2,
    /// PPP over a serial line (dial-in).
    Dialup,
}

impl TunnelKind {
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Sstp => "sstp",
            TunnelKind::Pptp => "pptp",
            TunnelKind::L2tp => "l2tp",
            TunnelKind::Ikev2 => "ikev2",
            TunnelKind::Dialup => "dialup",
        }
    }

    /// Tunnel-Type (RFC 2868 §3.1), none for a serial line.
    pub fn radius(self) -> Option<TunnelType> {
        match self {
            TunnelKind::Sstp => Some(TunnelType::Sstp),
            TunnelKind::Pptp => Some(TunnelType::Pptp),
            TunnelKind::L2tp => Some(TunnelType::L2tp),
            TunnelKind::Ikev2 => Some(TunnelType::Esp),
            TunnelKind::Dialup => None,
        }
    }

    /// NAS-Port-Type (RFC 2865 §5.41): Virtual for tunnels, Async for a
    /// serial line.
    pub fn nas_port_type(self) -> NasPortType {
        match self {
            TunnelKind::Dialup => NasPortType::Async,
            _ => NasPortType::Virtual,
        }
    }
}

/// What an Access-Accept granted, for the rest of the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Granted {
    /// Framed-IP-Address (RFC 2865 §5.8), when a real address (not the
    /// 255.255.255.254 "NAS chooses" / 255.255.255.255 "user chooses").
    pub framed_ip: Option<Ipv4Addr>,
    /// Session-Timeout in seconds (RFC 2865 §5.27).
    pub session_timeout: Option<u32>,
    /// Idle-Timeout in seconds (RFC 2865 §5.28).
    pub idle_timeout: Option<u32>,
    /// Class values to echo in accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// Acct-Interim-Interval in seconds (RFC 2869 §5.16).
    pub interim_interval: Option<u32>,
    /// Framed-IPv6-Prefix (RFC 3162 §2.3), when given.
    pub framed_ipv6_prefix: Option<(Ipv6Addr, u8)>,
    /// Framed-Route and Framed-IPv6-Route (RFC 2865 §5.22, RFC 3162
    /// §2.5): networks behind the client (framed_routes.rs).
    pub framed_routes: Vec<radius::FramedRoute>,
}

/// Identifies the NAS in every request (RFC 2865 §5.4, §5.32).
#[derive(Debug, Clone)]
pub struct NasIdentity {
    pub identifier: String,
    pub address: Option<IpAddr>,
}

/// The RADIUS authenticator shared by all sessions.
pub struct RadiusAuth {
    /// Swapped by a reload (new servers); a request already sent finishes
    /// on the handle it was sent through.
    handle: arc_swap::ArcSwap<RadiusHandle>,
    nas: NasIdentity,
}

impl RadiusAuth {
    pub fn new(handle: RadiusHandle, nas: NasIdentity) -> RadiusAuth {
        RadiusAuth {
            handle: arc_swap::ArcSwap::from_pointee(handle),
            nas,
        }
    }

    /// New requests go to `handle`'s servers (reload.rs).
    pub fn use_servers(&self, handle: RadiusHandle) {
        self.handle.store(std::sync::Arc::new(handle));
    }

    /// Checks `request` of session `session` (from `peer`, "ip:port") with
    /// the RADIUS servers; `eap_state` is the State of the previous EAP
    /// round's Access-Challenge.
    pub async fn authenticate(
        &self,
        session: SessionId,
        peer: &str,
        tunnel: TunnelKind,
        request: AuthRequest,
        eap_state: Option<Vec<u8>>,
    ) -> Verdict {
        let id = session.raw();
        let user = request.username.as_bytes().to_vec();
        let (access, is_mschapv2) = match &request.credentials {
            Credentials::Pap { password } => (Request::pap(&user, password), false),
            Credentials::ChapMd5 {
                id: ident,
                challenge,
                response,
            } => (Request::chap(&user, *ident, response, challenge), false),
            Credentials::MsChapV1 {
                id: ident,
                challenge,
                lm_response,
                nt_response,
                use_nt,
            } => (
                Request::mschapv1(
                    &user,
                    challenge,
                    &MsChapResponse {
                        ident: *ident,
                        flags: *use_nt,
                        lm_response: *lm_response,
                        nt_response: *nt_response,
                    },
                ),
                false,
            ),
            Credentials::MsChapV2 {
                id: ident,
                authenticator_challenge,
                peer_challenge,
                nt_response,
                flags,
            } => (
                Request::mschapv2(
                    &user,
                    authenticator_challenge,
                    &MsChap2Response {
                        ident: *ident,
                        flags: *flags,
                        peer_challenge: *peer_challenge,
                        response: *nt_response,
                    },
                ),
                true,
            ),
            Credentials::EapPassThrough { message } => {
                (Request::eap(&user, message, eap_state.as_deref()), false)
            }
        };
        let access = self.decorate(access, session, peer, tunnel);
        let handle = self.handle.load_full();
        match handle.request(access).await {
            Ok(answer) => match answer.outcome {
                Outcome::Access(AccessOutcome::Accept(accept)) => {
                    tracing::info!(
                        session_id = id,
                        server = %answer.server,
                        "RADIUS Access-Accept: user {}",
                        tunnel::login_log::Quoted(&request.username)
                    );
                    let granted = Granted {
                        framed_ip: accept.framed_ip.filter(|a| {
                            !a.is_broadcast() && *a != Ipv4Addr::new(255, 255, 255, 254)
                        }),
                        session_timeout: accept.session_timeout.filter(|s| *s > 0),
                        idle_timeout: accept.idle_timeout.filter(|s| *s > 0),
                        class: accept.class.clone(),
                        interim_interval: accept.acct_interim_interval.filter(|s| *s > 0),
                        framed_ipv6_prefix: ipv6_prefix(&accept.attributes),
                        framed_routes: crate::framed_routes::from_attributes(
                            &accept.attributes,
                            id,
                        ),
                    };
                    // EAP methods other than MS-CHAPv2 (EAP-TLS, PEAP) send
                    // 32-octet keys: together they are the MSK that IKEv2
                    // needs whole (RFC 5216 §2.3, RFC 7296 §2.16). MS-CHAPv2's
                    // 16-octet keys stay MPPE's.
                    let msk = accept
                        .mppe_keys
                        .as_ref()
                        .filter(|k| k.recv.len() > 16 || k.send.len() > 16)
                        .map(|k| {
                            let mut msk = zeroize::Zeroizing::new(Vec::with_capacity(64));
                            msk.extend_from_slice(&k.recv);
                            msk.extend_from_slice(&k.send);
                            ppp::auth::Msk(msk)
                        });
                    let keys = accept.mppe_keys.as_ref().and_then(|k| {
                        // RFC 2548 §2.4.2/§2.4.3: the keys as the NAS uses
                        // them; MPPE's master keys are their first 16
                        // octets (EAP methods send 32).
                        let send: [u8; 16] = k.send.get(..16)?.try_into().ok()?;
                        let recv: [u8; 16] = k.recv.get(..16)?.try_into().ok()?;
                        Some(MasterKeys { send, recv })
                    });
                    // MS-CHAPv1: MS-CHAP-MPPE-Keys carries NtPasswordHashHash
                    // (RFC 2548 §2.4.1); the start key needs the challenge
                    // too (RFC 3079 §2.4), the same for both directions.
                    let keys =
                        keys.or_else(|| match (&request.credentials, &accept.mschap_mppe_keys) {
                            (Credentials::MsChapV1 { challenge, .. }, Some(k)) => {
                                let key = ppp::crypto::mschapv1::get_start_key_from_hash_hash(
                                    challenge, &k.nt_key,
                                );
                                Some(MasterKeys {
                                    send: key,
                                    recv: key,
                                })
                            }
                            _ => None,
                        });
                    let mschapv2_success = accept
                        .mschap2_success
                        .as_ref()
                        .map(|s| s.authenticator_response);
                    if is_mschapv2 && mschapv2_success.is_none() {
                        tracing::warn!(session_id = id, "RADIUS accepted MS-CHAPv2 without MS-CHAP2-Success: the client will refuse the server");
                    }
                    Verdict {
                        answer: AuthAnswer::Accept(ExternalAccept {
                            mschapv2_success,
                            keys,
                            eap_message: accept.eap_message.clone(),
                            msk,
                            message: accept
                                .reply_message
                                .as_ref()
                                .map(|m| String::from_utf8_lossy(m).into_owned()),
                        }),
                        granted: Some(granted),
                        eap_state: None,
                    }
                }
                Outcome::Access(AccessOutcome::Reject(reject)) => {
                    let code = reject.ms_chap_error.as_ref().and_then(|e| e.error_code());
                    let rejection = match code {
                        Some(646) => Rejection::RestrictedLogonHours,
                        Some(647) => Rejection::AccountDisabled,
                        Some(648) => Rejection::PasswordExpired,
                        Some(649) => Rejection::NoDialinPermission,
                        _ => Rejection::AuthenticationFailure,
                    };
                    // The Reply-Message is logged, never relayed: the peer
                    // sees the text of the code alone (a RADIUS server's
                    // "unknown user" must not reach it, issue 11).
                    let text = reject
                        .reply_message
                        .as_ref()
                        .map(|m| String::from_utf8_lossy(m).into_owned())
                        .unwrap_or_else(|| "authentication failed".into());
                    tunnel::login_log::refused(
                        id,
                        &request.username,
                        tunnel::login_log::method_name(request.method),
                        &format!(
                            "RADIUS Access-Reject from {}: {}",
                            answer.server,
                            tunnel::login_log::Quoted(&text)
                        ),
                    );
                    Verdict::answer(AuthAnswer::Reject(rejection, text))
                }
                Outcome::Access(AccessOutcome::Challenge(challenge)) => {
                    match (challenge.eap_message, &request.credentials) {
                        (Some(message), Credentials::EapPassThrough { .. }) => Verdict {
                            answer: AuthAnswer::EapChallenge(message),
                            granted: None,
                            eap_state: challenge.state,
                        },
                        _ => {
                            // RFC 2865 §4.4: a challenge we cannot relay
                            // is a reject.
                            tracing::warn!(
                                session_id = id,
                                "login refused: user {}, {}: RADIUS Access-Challenge from {} without EAP cannot be relayed",
                                tunnel::login_log::Quoted(&request.username),
                                tunnel::login_log::method_name(request.method),
                                answer.server
                            );
                            Verdict::answer(AuthAnswer::Reject(
                                Rejection::AuthenticationFailure,
                                "authentication failed".into(),
                            ))
                        }
                    }
                }
                Outcome::AccountingAck => Verdict::answer(AuthAnswer::Reject(
                    Rejection::AuthenticationFailure,
                    "authentication failed".into(),
                )),
            },
            Err(e) => {
                // Every refusal names the user and the method (issue 11);
                // a RADIUS fault other than silence is the operator's
                // problem, so its line is an error, still one line.
                let user = tunnel::login_log::Quoted(&request.username);
                let method = tunnel::login_log::method_name(request.method);
                match &e {
                    RadiusError::Timeout => {
                        tunnel::login_log::refused(id, &request.username, method, &e)
                    }
                    other => tracing::error!(
                        session_id = id,
                        "login refused: user {user}, {method}: RADIUS: {other}"
                    ),
                }
                Verdict::answer(AuthAnswer::Reject(
                    Rejection::AuthenticationFailure,
                    e.to_string(),
                ))
            }
        }
    }

    /// The attributes every Access-Request carries: who the NAS is, what
    /// is asked for and where the user comes from.
    fn decorate(
        &self,
        mut r: Request,
        session: SessionId,
        peer: &str,
        tunnel: TunnelKind,
    ) -> Request {
        r = r
            .with_nas_identifier(self.nas.identifier.as_bytes())
            .with_nas_port(nas_port(session))
            .with_service_type(ServiceType::Framed)
            .with_framed_protocol(FramedProtocol::Ppp)
            .with_nas_port_type(tunnel.nas_port_type());
        match self.nas.address {
            Some(IpAddr::V4(a)) => r = r.with_nas_ip_address(a),
            Some(IpAddr::V6(a)) => r = r.with_nas_ipv6_address(a),
            None => {}
        }
        if let Some(t) = tunnel.radius() {
            r = r
                .with_tunnel_type(0, t)
                .with_tunnel_medium_type(0, TunnelMediumType::Ipv4);
        }
        // RRAS puts the client's outer address in Calling-Station-Id.
        r.with_calling_station_id(calling_station(peer).as_bytes())
    }
}

/// RADIUS knows nothing of a user before the Access-Request: groups do
/// not exist there, and the Class comes with the Access-Accept.
impl Authenticator for RadiusAuth {
    fn look_up<'a>(
        &'a self,
        _attempt: &'a Attempt,
        _request: &'a AuthRequest,
    ) -> BoxFuture<'a, Claim> {
        Box::pin(std::future::ready(Claim::Opaque))
    }

    fn check<'a>(
        &'a self,
        attempt: &'a Attempt,
        request: AuthRequest,
        _known: Option<KnownUser>,
        eap_state: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(self.authenticate(
            attempt.session,
            &attempt.peer,
            attempt.tunnel,
            request,
            eap_state,
        ))
    }
}

/// NAS-Port (RFC 2865 §5.5) of a session: its number in this process.
/// A VPN server has no physical ports; the session number is never reused
/// while the process runs, so (NAS-IP-Address or NAS-Identifier, NAS-Port)
/// names one session, which is what session databases such as FreeRADIUS's
/// radutmp (Simultaneous-Use) key their entries by: without it they ignore
/// the accounting records.
pub fn nas_port(session: SessionId) -> u32 {
    // Wraps after 2^32 sessions of one process: RADIUS has 32 bits here.
    session.raw() as u32
}

/// The address part of "ip:port" ("[v6]:port" too).
pub fn calling_station(peer: &str) -> String {
    match peer.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => peer.to_string(),
    }
}

/// Framed-IPv6-Prefix (RFC 3162 §2.3): reserved, length, prefix.
fn ipv6_prefix(attrs: &[radius::Attribute]) -> Option<(Ipv6Addr, u8)> {
    let a = attrs
        .iter()
        .find(|a| a.typ == radius::dict::attr::FRAMED_IPV6_PREFIX)?;
    let len = *a.value.get(1)?;
    if len > 128 {
        return None;
    }
    let mut octets = [0u8; 16];
    let given = a.value.get(2..)?;
    let n = given.len().min(16);
    octets[..n].copy_from_slice(&given[..n]);
    Some((Ipv6Addr::from(octets), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log lines of a refusal whose RADIUS request failed name the
    /// user (quoted) and the method, whatever the failure.
    #[test]
    fn refusals_on_radius_faults_name_user_and_method() {
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
            .with_writer(move || sink.clone())
            .finish();
        let auth = RadiusAuth::new(
            crate::radius_io::RadiusHandle::stopped(),
            NasIdentity {
                identifier: "ras".into(),
                address: None,
            },
        );
        let request = AuthRequest {
            username: "bob\nforged".into(),
            method: ppp::auth::AuthMethod::Pap,
            credentials: Credentials::Pap {
                password: zeroize::Zeroizing::new(b"pw".to_vec()),
            },
        };
        let verdict = tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(auth.authenticate(
                    SessionId::from_raw(7),
                    "10.1.2.3:4000",
                    TunnelKind::Sstp,
                    request,
                    None,
                ))
        });
        assert!(matches!(
            verdict.answer,
            AuthAnswer::Reject(Rejection::AuthenticationFailure, _)
        ));
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(
                "login refused: user \"bob\\nforged\", PAP: RADIUS: the RADIUS client has stopped"
            ),
            "{text}"
        );
    }

    #[test]
    fn calling_station_is_the_address() {
        assert_eq!(calling_station("10.1.2.3:4000"), "10.1.2.3");
        assert_eq!(calling_station("[fd00::1]:443"), "fd00::1");
        assert_eq!(calling_station("odd"), "odd");
    }

    #[test]
    fn ipv6_prefix_attribute() {
        let a = radius::Attribute::new(
            radius::dict::attr::FRAMED_IPV6_PREFIX,
            vec![0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2],
        );
        assert_eq!(
            ipv6_prefix(&[a]),
            Some(("2001:db8:1:2::".parse().unwrap(), 64))
        );
        let bad = radius::Attribute::new(radius::dict::attr::FRAMED_IPV6_PREFIX, vec![0, 200]);
        assert_eq!(ipv6_prefix(&[bad]), None);
    }
}
