//! The accounting records of one session (RFC 2866 §4.1, §5; RFC 2869
//! §5.1–5.3 for Gigawords and Event-Timestamp).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use radius::dict::{
    attr, AcctAuthentic, AcctStatusType, AcctTerminateCause, FramedProtocol, ServiceType,
};
use radius::request::Counters;
use radius::{Attribute, Request};

use crate::accounting::Accounting;
use crate::radius_auth::{calling_station, NasIdentity};
use crate::session_record::SessionRecord;
use crate::sessions::Sessions;
use crate::SessionId;

fn unix(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// Attributes every record of the session carries.
fn common(h: &SessionRecord, nas: Option<&NasIdentity>, status: AcctStatusType) -> Request {
    let mut r = Request::accounting(status, h.acct_session_id.as_bytes())
        .with_service_type(ServiceType::Framed)
        .with_framed_protocol(FramedProtocol::Ppp)
        .with_nas_port(crate::radius_auth::nas_port(h.id))
        .with_nas_port_type(h.tunnel.nas_port_type())
        .with_calling_station_id(calling_station(&h.peer).as_bytes())
        .with_event_timestamp(unix(SystemTime::now()));
    if let Some(user) = &h.user {
        r = r.with(Attribute::new(attr::USER_NAME, user.as_bytes().to_vec()));
    }
    if let Some(nas) = nas {
        r = r.with_nas_identifier(nas.identifier.as_bytes());
        match nas.address {
            Some(IpAddr::V4(a)) => r = r.with_nas_ip_address(a),
            Some(IpAddr::V6(a)) => r = r.with_nas_ipv6_address(a),
            None => {}
        }
    }
    if let Some(t) = h.tunnel.radius() {
        r = r.with_tunnel_type(0, t);
    }
    if let Some(a) = h.address {
        r = r.with_framed_ip_address(a);
    }
    // RFC 2866 §5.13: Framed-Route may be in accounting; the networks
    // the session routes (not those another session kept).
    for f in &h.framed_routes {
        let (typ, any) = match f.prefix {
            IpAddr::V4(_) => (attr::FRAMED_ROUTE, "0.0.0.0"),
            IpAddr::V6(_) => (attr::FRAMED_IPV6_ROUTE, "::"),
        };
        let gateway = f.gateway.map_or_else(|| any.to_owned(), |g| g.to_string());
        let text = format!("{f} {gateway} {}", f.metric.unwrap_or(1));
        r = r.with(Attribute::new(typ, text.into_bytes()));
    }
    // RFC 2865 §5.25: Class is echoed unchanged in accounting.
    for c in &h.granted.class {
        r = r.with_class(c);
    }
    r.with_acct_authentic(AcctAuthentic::Radius)
}

fn counters(h: &SessionRecord) -> Counters {
    let t = h.live.traffic();
    Counters {
        input_octets: t.octets_in,
        output_octets: t.octets_out,
        input_packets: t.packets_in.min(u64::from(u32::MAX)) as u32,
        output_packets: t.packets_out.min(u64::from(u32::MAX)) as u32,
    }
}

fn spool(acct: &Accounting, status: AcctStatusType, h: &SessionRecord, request: Request) {
    // Acct-Status-Type and Acct-Session-Id are stored separately.
    let attrs: Vec<Attribute> = request
        .attributes()
        .iter()
        .filter(|a| a.typ != attr::ACCT_STATUS_TYPE && a.typ != attr::ACCT_SESSION_ID)
        .cloned()
        .collect();
    acct.record(status, &h.acct_session_id, &attrs);
}

/// Accounting-On (RFC 2866 §5.1, Acct-Status-Type 7) when the server
/// starts, or Accounting-Off (8) when it stops after ending every session:
/// the RADIUS server closes whatever sessions it still holds open for this
/// NAS (after a crash or `kill -9` there were no Stops for them; FreeRADIUS
/// does this for radutmp and SQL). `acct_session_id` names this start of
/// the server (RFC 2866 §5.5 asks for one in every request). Sent outside
/// the spool (see [`Accounting::announce`]); the outcome is logged.
pub async fn nas_event(acct: &Accounting, nas: &NasIdentity, acct_session_id: &str, on: bool) {
    let status = if on {
        AcctStatusType::AccountingOn
    } else {
        AcctStatusType::AccountingOff
    };
    let mut attrs = vec![
        Attribute::new(attr::NAS_IDENTIFIER, nas.identifier.as_bytes().to_vec()),
        Attribute::new(
            attr::EVENT_TIMESTAMP,
            unix(SystemTime::now()).to_be_bytes().to_vec(),
        ),
    ];
    match nas.address {
        Some(IpAddr::V4(a)) => {
            attrs.push(Attribute::new(attr::NAS_IP_ADDRESS, a.octets().to_vec()))
        }
        Some(IpAddr::V6(a)) => {
            attrs.push(Attribute::new(attr::NAS_IPV6_ADDRESS, a.octets().to_vec()))
        }
        None => {}
    }
    let name = if on {
        "Accounting-On"
    } else {
        "Accounting-Off"
    };
    match acct.announce(status, acct_session_id, &attrs).await {
        Ok(()) => tracing::info!(acct_session_id, "accounting {name} acknowledged"),
        Err(e) => tracing::warn!(acct_session_id, "accounting {name} not acknowledged: {e}"),
    }
}

/// Accounting Start, when the link is up.
pub fn start(acct: &Accounting, sessions: &Sessions, nas: Option<&NasIdentity>, id: SessionId) {
    sessions.with(id, |h| {
        let r = common(h, nas, AcctStatusType::Start);
        spool(acct, AcctStatusType::Start, h, r);
        h.accounting_started = true;
        tracing::debug!(session_id = id.raw(), acct_session_id = %h.acct_session_id, "accounting Start");
    });
}

/// An Interim-Update with the counters so far.
pub fn interim(acct: &Accounting, sessions: &Sessions, nas: Option<&NasIdentity>, id: SessionId) {
    sessions.with(id, |h| {
        let r = common(h, nas, AcctStatusType::InterimUpdate)
            .with_counters(counters(h))
            .with_session_time(h.started.elapsed().as_secs().min(u64::from(u32::MAX)) as u32);
        spool(acct, AcctStatusType::InterimUpdate, h, r);
    });
}

/// Accounting Stop, with the final counters and why the session ended.
pub fn stop(acct: &Accounting, nas: Option<&NasIdentity>, h: &SessionRecord) {
    if !h.accounting_started {
        return;
    }
    // The server's own reason (timeouts, Disconnect-Request, its stop)
    // came first; otherwise the session's end reason (`down`) set it.
    let cause = h.cause.unwrap_or(tunnel::TerminateCause::UserRequest);
    let r = common(h, nas, AcctStatusType::Stop)
        .with_counters(counters(h))
        .with_session_time(h.started.elapsed().as_secs().min(u64::from(u32::MAX)) as u32)
        .with_terminate_cause(AcctTerminateCause::from_u32(cause.value()));
    spool(acct, AcctStatusType::Stop, h, r);
    let t = h.live.traffic();
    tracing::info!(acct_session_id = %h.acct_session_id, octets_in = t.octets_in, octets_out = t.octets_out, cause = %cause, "accounting Stop");
}
