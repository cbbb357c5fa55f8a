//! Fuzz the remote access policy document parser and evaluation: the bytes
//! before the first NUL are a policy document (`[policies]`, `[[policy]]`);
//! the bytes after it make up a request (user name, Calling-Station-Id,
//! RADIUS Class, time, tunnel type) as a peer could shape them. Nothing may
//! panic, and no decision's log line may contain a line break, whatever the
//! peer sent (log lines must not be forgeable).
#![no_main]

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use policy::{
    parse_document, AuthMethod, Authenticated, EncryptionUsed, NasPortType, PreAuth, Request,
    TunnelType,
};

fuzz_target!(|data: &[u8]| {
    let (doc, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(doc) else {
        return;
    };
    let Ok(set) = parse_document(text) else {
        return;
    };

    let mut fields = rest.split(|b| *b == 0xff);
    let mut next = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let user = next();
    let calling = next();
    let class = next().into_bytes();
    let control = rest.get(..10).unwrap_or(&[0; 10]);
    let secs = u64::from_le_bytes(control[..8].try_into().unwrap());
    let tunnel = [
        TunnelType::Sstp,
        TunnelType::Pptp,
        TunnelType::L2tp,
        TunnelType::Ikev2,
        TunnelType::Dialup,
    ][usize::from(control[8]) % 5];
    let port = NasPortType::ALL[usize::from(control[9]) % NasPortType::ALL.len()];
    let groups = vec![calling.clone()];
    let classes = vec![class];
    let request = Request {
        groups: &groups,
        radius_class: (control[8] & 0x80 != 0).then_some(&classes[..]),
        calling_station_id: Some(&calling),
        client_address: Some(IpAddr::V6(Ipv6Addr::from(u128::from(secs)))),
        ..Request::new(
            &user,
            tunnel,
            port,
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )
    };
    let before = set.evaluate_before_auth(&request);
    if let PreAuth::Refuse(d) | PreAuth::Proceed(d) = &before {
        assert!(!d.to_string().contains('\n'));
    }
    let auth = Authenticated {
        method: AuthMethod::MsChapV2,
        encryption: EncryptionUsed::Mppe {
            bits: u16::from(control[9]),
        },
        sessions_of_user: u32::from(control[0]),
    };
    let after = set.evaluate_after_auth(&request, &auth);
    assert!(!after.to_string().contains('\n'));
});
