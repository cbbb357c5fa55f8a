//! The RFC 5176 Dynamic Authorization Server: Disconnect-Request ends the
//! sessions it names; CoA-Request changes their Session-Timeout or
//! Idle-Timeout.
//!
//! Only configured clients are heard, each with its own secret; a request
//! whose Request Authenticator (RFC 5176 §2.3, computed like an
//! Accounting-Request's) or Message-Authenticator does not verify is
//! dropped without an answer (RFC 5176 §3.1). Answers to recent requests are
//! kept so that a retransmission gets the same answer without acting twice
//! (RFC 5176 §2.3, duplicate detection).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use radius::dict::{attr, ErrorCause};
use radius::packet::AUTHENTICATOR_LEN;
use radius::security::{sign_response, verify_accounting_request};
use radius::{Attribute, Code, Packet, Secret};
use tokio::net::UdpSocket;

use crate::sessions::{Selector, Sessions};

/// How long answers are remembered for duplicate detection.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);
/// At most this many remembered answers (bounded memory under a flood).
const DUPLICATE_CAPACITY: usize = 1024;

/// Why a request was not acted on, as an Error-Cause (RFC 5176 §3.5).
fn nak(code: Code, request: &Packet, cause: ErrorCause) -> Packet {
    let mut p = Packet::new(code, request.identifier, request.authenticator);
    p.attributes
        .push(Attribute::u32(attr::ERROR_CAUSE, cause.to_u32()));
    p
}

/// The decision for one authentic request (pure: no IO).
pub fn handle_request(request: &Packet, sessions: &Arc<Sessions>, nas_identifier: &str) -> Packet {
    let (ack, nak_code) = match request.code {
        Code::DisconnectRequest => (Code::DisconnectAck, Code::DisconnectNak),
        Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
        _ => unreachable!("filtered by the caller"),
    };
    // RFC 5176 §3: a NAS-Identifier that is not ours means the request was
    // meant for another NAS.
    if let Some(a) = request.attr(attr::NAS_IDENTIFIER) {
        if a.value != nas_identifier.as_bytes() {
            return nak(nak_code, request, ErrorCause::NasIdentificationMismatch);
        }
    }
    let text = |typ| {
        request
            .attr(typ)
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
    };
    let framed_ip = match request.attr(attr::FRAMED_IP_ADDRESS) {
        Some(a) => match <[u8; 4]>::try_from(a.value.as_slice()) {
            Ok(b) => Some(Ipv4Addr::from(b)),
            Err(_) => return nak(nak_code, request, ErrorCause::InvalidAttributeValue),
        },
        None => None,
    };
    let selector = Selector {
        acct_session_id: text(attr::ACCT_SESSION_ID),
        user_name: text(attr::USER_NAME),
        framed_ip,
        calling_station: text(attr::CALLING_STATION_ID),
    };
    if selector.is_empty() {
        return nak(nak_code, request, ErrorCause::MissingAttribute);
    }
    let ids = sessions.select(&selector);
    if ids.is_empty() {
        return nak(nak_code, request, ErrorCause::SessionContextNotFound);
    }
    match request.code {
        Code::DisconnectRequest => {
            for id in &ids {
                tracing::info!(
                    session_id = id.raw(),
                    "Disconnect-Request: ending the session"
                );
                sessions.stop(
                    *id,
                    tunnel::EndReason::AdminReset("a RADIUS Disconnect-Request".into()),
                );
            }
        }
        _ => {
            let mut changed = false;
            let session_timeout = request.attr(attr::SESSION_TIMEOUT).and_then(|a| a.as_u32());
            let idle_timeout = request.attr(attr::IDLE_TIMEOUT).and_then(|a| a.as_u32());
            for typ in request.attributes.iter().map(|a| a.typ) {
                let known = matches!(
                    typ,
                    attr::SESSION_TIMEOUT
                        | attr::IDLE_TIMEOUT
                        | attr::ACCT_SESSION_ID
                        | attr::USER_NAME
                        | attr::FRAMED_IP_ADDRESS
                        | attr::CALLING_STATION_ID
                        | attr::NAS_IDENTIFIER
                        | attr::NAS_IP_ADDRESS
                        | attr::EVENT_TIMESTAMP
                        | attr::MESSAGE_AUTHENTICATOR
                        | attr::STATE
                );
                if !known {
                    return nak(nak_code, request, ErrorCause::UnsupportedAttribute);
                }
            }
            for id in &ids {
                sessions.with(*id, |h| {
                    if let Some(s) = session_timeout {
                        h.granted.session_timeout = (s > 0).then_some(s);
                        changed = true;
                    }
                    if let Some(s) = idle_timeout {
                        h.granted.idle_timeout = (s > 0).then_some(s);
                        changed = true;
                    }
                });
                tracing::info!(
                    session_id = id.raw(),
                    ?session_timeout,
                    ?idle_timeout,
                    "CoA-Request applied"
                );
            }
            if changed {
                // The session timers read their limits when started: the
                // new ones take effect through a restarted watcher.
                for id in &ids {
                    sessions.rewatch(*id);
                }
            }
        }
    }
    Packet::new(ack, request.identifier, request.authenticator)
}

/// An answer sent recently: when, to whom, for which request, what.
struct Answered {
    at: Instant,
    from: SocketAddr,
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    answer: Vec<u8>,
}

/// The listener.
pub struct DynAuthServer {
    pub socket: UdpSocket,
    pub clients: HashMap<IpAddr, Secret>,
    pub sessions: Arc<Sessions>,
    pub nas_identifier: String,
}

impl DynAuthServer {
    pub async fn run(self) {
        let mut buf = vec![0u8; 4096];
        let mut recent: VecDeque<Answered> = VecDeque::new();
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("dynamic authorization socket: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let data = &buf[..n];
            let Some(secret) = self.clients.get(&from.ip()) else {
                tracing::warn!(%from, "dropped a dynamic authorization request from an unknown client");
                continue;
            };
            let request = match Packet::decode(data) {
                Ok(p) if matches!(p.code, Code::DisconnectRequest | Code::CoaRequest) => p,
                Ok(p) => {
                    tracing::warn!(%from, code = p.code.to_u8(), "dropped a dynamic authorization packet of the wrong kind");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%from, "dropped a malformed dynamic authorization packet: {e}");
                    continue;
                }
            };
            if let Err(e) = verify_accounting_request(data, secret) {
                tracing::warn!(%from, "dropped a dynamic authorization request that does not verify: {e}");
                continue;
            }
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|r| now.duration_since(r.at) > DUPLICATE_WINDOW)
                || recent.len() > DUPLICATE_CAPACITY
            {
                recent.pop_front();
            }
            let dup = recent
                .iter()
                .find(|r| {
                    r.from == from
                        && r.identifier == request.identifier
                        && r.authenticator == request.authenticator
                })
                .map(|r| r.answer.clone());
            let answer = match dup {
                Some(a) => a,
                None => {
                    let reply = handle_request(&request, &self.sessions, &self.nas_identifier);
                    let mut bytes = match reply.to_bytes() {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!("dynamic authorization answer: {e}");
                            continue;
                        }
                    };
                    if sign_response(&mut bytes, &request.authenticator, secret).is_err() {
                        continue;
                    }
                    recent.push_back(Answered {
                        at: now,
                        from,
                        identifier: request.identifier,
                        authenticator: request.authenticator,
                        answer: bytes.clone(),
                    });
                    bytes
                }
            };
            let _ = self.socket.send_to(&answer, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_stages::Admitted;
    use crate::radius_auth::TunnelKind;
    use crate::session_record::SessionRecord;
    use crate::SessionId;

    const ONE: SessionId = SessionId::from_raw(1);

    fn table() -> Arc<Sessions> {
        let s = Arc::new(Sessions::new());
        let mut h = SessionRecord::new(
            ONE,
            "192.0.2.1:1000".into(),
            TunnelKind::Sstp,
            s.acct_session_id(ONE),
        );
        h.addressed(
            Some("alice".into()),
            Admitted {
                grant: policy::Grant::default(),
                method: policy::AuthMethod::MsChapV2,
            },
            Ipv4Addr::new(10, 0, 0, 2),
        );
        s.insert(h);
        s
    }

    fn request(code: Code, attrs: Vec<Attribute>) -> Packet {
        let mut p = Packet::new(code, 9, [0; 16]);
        p.attributes = attrs;
        p
    }

    #[test]
    fn disconnect_by_user_name_stops_the_session() {
        let s = table();
        let live = s.with(ONE, |h| h.live.clone()).unwrap();
        let r = request(
            Code::DisconnectRequest,
            vec![Attribute::new(attr::USER_NAME, b"alice".to_vec())],
        );
        let answer = handle_request(&r, &s, "ras");
        assert_eq!(answer.code, Code::DisconnectAck);
        assert!(live.stop_requested());
        assert_eq!(
            s.with(ONE, |h| h.cause),
            Some(Some(tunnel::TerminateCause::AdminReset))
        );
    }

    #[test]
    fn unknown_session_missing_id_and_wrong_nas_are_naked_with_their_cause() {
        let s = table();
        let cause = |p: &Packet| p.attr(attr::ERROR_CAUSE).and_then(|a| a.as_u32());
        let unknown = handle_request(
            &request(
                Code::DisconnectRequest,
                vec![Attribute::new(attr::USER_NAME, b"bob".to_vec())],
            ),
            &s,
            "ras",
        );
        assert_eq!(unknown.code, Code::DisconnectNak);
        assert_eq!(cause(&unknown), Some(503));
        let empty = handle_request(&request(Code::CoaRequest, vec![]), &s, "ras");
        assert_eq!(empty.code, Code::CoaNak);
        assert_eq!(cause(&empty), Some(402));
        let other_nas = handle_request(
            &request(
                Code::DisconnectRequest,
                vec![
                    Attribute::new(attr::NAS_IDENTIFIER, b"other".to_vec()),
                    Attribute::new(attr::USER_NAME, b"alice".to_vec()),
                ],
            ),
            &s,
            "ras",
        );
        assert_eq!(cause(&other_nas), Some(403));
        assert!(!s.with(ONE, |h| h.live.stop_requested()).unwrap());
    }

    #[test]
    fn coa_changes_the_session_timeout() {
        let s = table();
        let r = request(
            Code::CoaRequest,
            vec![
                Attribute::new(attr::ACCT_SESSION_ID, s.acct_session_id(ONE).into_bytes()),
                Attribute::u32(attr::SESSION_TIMEOUT, 600),
            ],
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = rt.block_on(async { handle_request(&r, &s, "ras") });
        assert_eq!(answer.code, Code::CoaAck);
        assert_eq!(s.with(ONE, |h| h.granted.session_timeout), Some(Some(600)));
        let unsupported = request(
            Code::CoaRequest,
            vec![
                Attribute::new(attr::USER_NAME, b"alice".to_vec()),
                Attribute::new(attr::FILTER_ID, b"x".to_vec()),
            ],
        );
        let answer = rt.block_on(async { handle_request(&unsupported, &s, "ras") });
        assert_eq!(answer.code, Code::CoaNak);
    }
}
