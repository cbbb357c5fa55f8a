//! RFC 5176 Disconnect-Request and CoA-Request handling: whatever an
//! (authenticated) Dynamic Authorization Client sends, the server answers
//! with an ACK or a NAK and never panics; and once the session ends (its
//! record removed, as the server does when any session goes down), nothing
//! the request started outlives it: a CoA that sets Session-Timeout or
//! Idle-Timeout restarts the session's timer task, which holds the session
//! table, so a task left behind would keep the table (and every record in
//! it) alive until its limit ran out (a Session-Timeout may be years).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use radius::{Code, Packet};
use server::dynauth::handle_request;
use server::policy_stages::Admitted;
use server::radius_auth::TunnelKind;
use server::sessions::{SessionRecord, Sessions};
use server::SessionId;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::decode(data) else { return };
    if !matches!(p.code, Code::DisconnectRequest | Code::CoaRequest) {
        return;
    }
    let sessions = Arc::new(Sessions::new());
    let id = SessionId::from_raw(1);
    let mut record = SessionRecord::new(
        id,
        "192.0.2.1:1000".into(),
        TunnelKind::Sstp,
        sessions.acct_session_id(id),
    );
    record.addressed(
        Some("test".into()),
        Admitted {
            grant: policy::Grant::default(),
            method: policy::AuthMethod::MsChapV2,
        },
        std::net::Ipv4Addr::new(10, 0, 0, 2),
    );
    sessions.insert(record);
    let answer = runtime().block_on(async { handle_request(&p, &sessions, "ras") });
    let ok = match p.code {
        Code::DisconnectRequest => matches!(answer.code, Code::DisconnectAck | Code::DisconnectNak),
        _ => matches!(answer.code, Code::CoaAck | Code::CoaNak),
    };
    assert!(ok, "answered {:?} to {:?}", answer.code, p.code);
    assert_eq!(answer.identifier, p.identifier);

    sessions.remove(id);
    // An aborted task is dropped when its runtime next runs it.
    for _ in 0..4 {
        if Arc::strong_count(&sessions) == 1 {
            break;
        }
        runtime().block_on(tokio::task::yield_now());
    }
    assert_eq!(
        Arc::strong_count(&sessions),
        1,
        "a task still holds the session table after the session ended"
    );
});
