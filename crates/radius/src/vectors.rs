//! Published test vectors (RFC 2865 §7) and forged-reply checks.

use std::net::Ipv4Addr;

use crate::dict::{attr, FramedProtocol, ServiceType};
use crate::microsoft::{
    decrypt_mppe_key, encrypt_mppe_key, ms_attribute, MS_CHAP2_SUCCESS, MS_CHAP_ERROR,
    MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
};
use crate::packet::{Attribute, Code, Packet};
use crate::request::Request;
use crate::response::{verify_and_parse, AccessOutcome, Outcome, ResponseError};
use crate::security::{
    find_message_authenticator, hide_user_password, message_authenticator, response_authenticator,
    sign_response, unhide_user_password, verify_access_request, verify_response, Secret,
    VerifyError,
};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn auth(s: &str) -> [u8; 16] {
    h(s).try_into().unwrap()
}

const SECRET: &str = "xyzzy5461";

// RFC 2865 §7.1, "User Telnet to Specified Host".
const R71_REQUEST_AUTH: &str = "0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a";
const R71_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
    93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
    01 10 05 06 00 00 00 03";
const R71_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
    9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
    0e 06 c0 a8 01 03";

// RFC 2865 §7.2, "Framed User Authenticating with CHAP".
const R72_REQUEST_AUTH: &str = "2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2";
const R72_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
    0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
    75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
    06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
    02 07 06 00 00 00 01";
const R72_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
    3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
    08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
    00 01 0c 06 00 00 05 dc";

#[test]
fn rfc2865_7_1_user_password_hiding() {
    let s = Secret::new(SECRET);
    let ra = auth(R71_REQUEST_AUTH);
    let hidden = hide_user_password(b"arctangent", &s, &ra).unwrap();
    assert_eq!(hidden, h("0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee"));
    assert_eq!(
        &unhide_user_password(&hidden, &s, &ra).unwrap()[..],
        b"arctangent"
    );
}

#[test]
fn rfc2865_7_1_access_request_bytes() {
    let s = Secret::new(SECRET);
    let ra = auth(R71_REQUEST_AUTH);
    let req = Request::pap(b"nemo", b"arctangent")
        .with_nas_ip_address(Ipv4Addr::new(192, 168, 1, 16))
        .with_nas_port(3);
    let bytes = req.encode_with(0, &ra, &s, false).unwrap();
    assert_eq!(bytes, h(R71_REQUEST));
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.to_bytes().unwrap(), bytes);
    assert_eq!(p.attr(attr::USER_NAME).unwrap().value, b"nemo");
    assert_eq!(p.attr(attr::NAS_PORT).unwrap().as_u32(), Some(3));
}

#[test]
fn rfc2865_7_1_response_authenticator() {
    let s = Secret::new(SECRET);
    let ra = auth(R71_REQUEST_AUTH);
    let accept = h(R71_ACCEPT);
    assert_eq!(
        response_authenticator(&accept, &ra, &s).unwrap()[..],
        accept[4..20]
    );
    // Valid without the BlastRADIUS requirement; refused with it.
    verify_response(&accept, &ra, &s, false).unwrap();
    assert_eq!(
        verify_response(&accept, &ra, &s, true),
        Err(VerifyError::MissingMessageAuthenticator)
    );
    assert_eq!(
        verify_and_parse(&accept, Code::AccessRequest, 0, &ra, &s),
        Err(ResponseError::Verify(
            VerifyError::MissingMessageAuthenticator
        ))
    );
    // Rebuilding the reply reproduces its octets.
    let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
    p.attributes = vec![
        Attribute::u32(attr::SERVICE_TYPE, ServiceType::Login.to_u32()),
        Attribute::u32(attr::LOGIN_SERVICE, 0),
        Attribute::ipv4(attr::LOGIN_IP_HOST, Ipv4Addr::new(192, 168, 1, 3)),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    assert_eq!(b, accept);
}

#[test]
fn rfc2865_7_2_chap_request_and_accept() {
    let s = Secret::new(SECRET);
    let ra = auth(R72_REQUEST_AUTH);
    // The CHAP challenge is the Request Authenticator here (RFC 2865
    // §5.40), so the request carries no CHAP-Challenge; build it directly.
    let mut p = Packet::new(Code::AccessRequest, 1, ra);
    let chap = h("16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75");
    p.attributes = vec![
        Attribute::new(attr::USER_NAME, b"flopsy".to_vec()),
        Attribute::new(attr::CHAP_PASSWORD, chap),
        Attribute::ipv4(attr::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16)),
        Attribute::u32(attr::NAS_PORT, 20),
        Attribute::u32(attr::SERVICE_TYPE, ServiceType::Framed.to_u32()),
        Attribute::u32(attr::FRAMED_PROTOCOL, FramedProtocol::Ppp.to_u32()),
    ];
    assert_eq!(p.to_bytes().unwrap(), h(R72_REQUEST));
    assert_eq!(Packet::decode(&h(R72_REQUEST)).unwrap(), p);

    let accept = h(R72_ACCEPT);
    assert_eq!(
        response_authenticator(&accept, &ra, &s).unwrap()[..],
        accept[4..20]
    );
    verify_response(&accept, &ra, &s, false).unwrap();
    let a = Packet::decode(&accept).unwrap();
    assert_eq!(a.attr(attr::FRAMED_MTU).unwrap().as_u32(), Some(1500));
    assert_eq!(
        a.attr(attr::FRAMED_IP_ADDRESS).unwrap().value,
        [255, 255, 255, 254]
    );
}

/// The §7.1 and §7.2 replies with a Message-Authenticator added, signed as
/// a server must (RFC 3579 §3.2), verify; any change to them does not.
#[test]
fn message_authenticator_on_rfc_examples() {
    let s = Secret::new(SECRET);
    for (reply, ra, id) in [
        (R71_ACCEPT, R71_REQUEST_AUTH, 0u8),
        (R72_ACCEPT, R72_REQUEST_AUTH, 1),
    ] {
        let ra = auth(ra);
        let mut p = Packet::decode(&h(reply)).unwrap();
        p.attributes
            .insert(0, Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
        let mut b = p.to_bytes().unwrap();
        sign_response(&mut b, &ra, &s).unwrap();
        verify_response(&b, &ra, &s, true).unwrap();
        // The HMAC is over the packet with the Request Authenticator.
        let off = find_message_authenticator(&b).unwrap().unwrap();
        assert_eq!(off, 22);
        let ma = message_authenticator(&b, off, &ra, &s).unwrap();
        assert_eq!(ma[..], b[22..38]);
        let out = verify_and_parse(&b, Code::AccessRequest, id, &ra, &s).unwrap();
        assert!(matches!(out, Outcome::Access(AccessOutcome::Accept(_))));

        // A wrong Message-Authenticator, with a Response Authenticator made
        // to match (as an attacker able to compute MD5 collisions could).
        let mut forged = b.clone();
        forged[22] ^= 0x01;
        let ra2 = response_authenticator(&forged, &ra, &s).unwrap();
        forged[4..20].copy_from_slice(&ra2);
        assert_eq!(
            verify_response(&forged, &ra, &s, true),
            Err(VerifyError::MessageAuthenticator)
        );
        // A wrong Response Authenticator.
        let mut forged = b.clone();
        forged[5] ^= 0x80;
        assert_eq!(
            verify_response(&forged, &ra, &s, true),
            Err(VerifyError::ResponseAuthenticator)
        );
        // A changed attribute breaks both.
        let mut forged = b.clone();
        let n = forged.len();
        forged[n - 1] ^= 1;
        assert!(verify_response(&forged, &ra, &s, true).is_err());
        // The wrong secret.
        assert!(verify_response(&b, &ra, &Secret::new("xyzzy5462"), true).is_err());
        // Two Message-Authenticators.
        let mut p2 = Packet::decode(&b).unwrap();
        p2.attributes
            .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
        let mut b2 = p2.to_bytes().unwrap();
        assert_eq!(
            sign_response(&mut b2, &ra, &s),
            Err(VerifyError::DuplicateMessageAuthenticator)
        );
        // A short one.
        let mut p3 = Packet::decode(&h(reply)).unwrap();
        p3.attributes
            .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 15]));
        assert_eq!(
            verify_response(&p3.to_bytes().unwrap(), &ra, &s, true),
            Err(VerifyError::MessageAuthenticatorLength(15))
        );
    }
}

#[test]
fn message_authenticator_on_rfc_7_1_request() {
    let s = Secret::new(SECRET);
    let ra = auth(R71_REQUEST_AUTH);
    let req = Request::pap(b"nemo", b"arctangent")
        .with_nas_ip_address(Ipv4Addr::new(192, 168, 1, 16))
        .with_nas_port(3);
    let b = req.encode(0, &ra, &s).unwrap();
    // Message-Authenticator first, then the §7.1 attributes unchanged.
    assert_eq!(&b[..2], &[1, 0]);
    assert_eq!(u16::from_be_bytes([b[2], b[3]]), 0x38 + 18);
    assert_eq!(&b[20..22], &[80, 18]);
    assert_eq!(&b[38..], &h(R71_REQUEST)[20..]);
    verify_access_request(&b, &s).unwrap();
    let mut t = b.clone();
    t[41] ^= 1; // a letter of "nemo"
    assert_eq!(
        verify_access_request(&t, &s),
        Err(VerifyError::MessageAuthenticator)
    );
}

#[test]
fn rfc2865_7_3_challenge_decodes() {
    let b = h("0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c
        71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20
        33 32 37 36 39 34 33 30 2e 20 20 45 6e 74 65 72
        20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f
        6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30");
    let p = Packet::decode(&b).unwrap();
    assert_eq!(p.code, Code::AccessChallenge);
    assert_eq!(p.attr(attr::STATE).unwrap().value, b"32769430");
    assert_eq!(p.to_bytes().unwrap(), b);
}

/// RFC 2548 §2.4.2 publishes no vector: round trip with the §7.1 request
/// authenticator and secret, and an Access-Accept carrying the keys, the
/// MS-CHAP2-Success and the usual framed attributes.
#[test]
fn rfc2548_mppe_keys_in_an_accept() {
    let s = Secret::new(SECRET);
    let ra = auth(R71_REQUEST_AUTH);
    let send_key: Vec<u8> = (0..16).collect();
    let recv_key: Vec<u8> = (100..116).collect();
    let send = encrypt_mppe_key(&send_key, &s, &ra, 0x8123).unwrap();
    let recv = encrypt_mppe_key(&recv_key, &s, &ra, 0x8124).unwrap();
    assert_eq!(send.len(), 34);
    assert_eq!(&send[..2], &[0x81, 0x23]);
    assert_eq!(
        &decrypt_mppe_key(&send, &s, &ra).unwrap()[..],
        &send_key[..]
    );
    // Another salt gives another ciphertext for the same key.
    let other = encrypt_mppe_key(&send_key, &s, &ra, 0x8124).unwrap();
    assert_ne!(send[2..], other[2..]);

    let mut success = vec![7u8];
    success.extend_from_slice(b"S=0123456789ABCDEF0123456789ABCDEF01234567");
    let mut p = Packet::new(Code::AccessAccept, 5, [0; 16]);
    p.attributes = vec![
        Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        Attribute::u32(attr::SERVICE_TYPE, 2),
        Attribute::u32(attr::FRAMED_PROTOCOL, 1),
        Attribute::ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 0, 10, 20)),
        Attribute::u32(attr::SESSION_TIMEOUT, 3600),
        Attribute::u32(attr::IDLE_TIMEOUT, 600),
        Attribute::new(attr::CLASS, b"cls".to_vec()),
        ms_attribute(MS_MPPE_SEND_KEY, &send).unwrap(),
        ms_attribute(MS_MPPE_RECV_KEY, &recv).unwrap(),
        ms_attribute(MS_CHAP2_SUCCESS, &success).unwrap(),
        ms_attribute(7, &1u32.to_be_bytes()).unwrap(),
        ms_attribute(8, &6u32.to_be_bytes()).unwrap(),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    let Outcome::Access(AccessOutcome::Accept(a)) =
        verify_and_parse(&b, Code::AccessRequest, 5, &ra, &s).unwrap()
    else {
        panic!("not an accept");
    };
    let keys = a.mppe_keys.unwrap();
    assert_eq!(&keys.send[..], &send_key[..]);
    assert_eq!(&keys.recv[..], &recv_key[..]);
    assert_eq!(a.mschap2_success.unwrap().encode(), success);
    assert_eq!(a.framed_ip, Some(Ipv4Addr::new(10, 0, 10, 20)));
    assert_eq!(a.session_timeout, Some(3600));
    assert_eq!(a.idle_timeout, Some(600));
    assert_eq!(a.class, vec![b"cls".to_vec()]);
    assert_eq!(a.encryption_policy, Some(1));
    assert_eq!(a.encryption_types, Some(6));
    // The wrong Identifier, and a reply to the wrong request.
    assert!(matches!(
        verify_and_parse(&b, Code::AccessRequest, 6, &ra, &s),
        Err(ResponseError::Identifier { .. })
    ));
    assert!(matches!(
        verify_and_parse(&b, Code::AccountingRequest, 5, &ra, &s),
        Err(ResponseError::UnexpectedCode { .. })
    ));
    assert!(verify_and_parse(&b, Code::AccessRequest, 5, &[0; 16], &s).is_err());
}

#[test]
fn reject_and_challenge_outcomes() {
    let s = Secret::new("s");
    let ra = [9u8; 16];
    let mut p = Packet::new(Code::AccessReject, 1, [0; 16]);
    p.attributes = vec![
        Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        Attribute::new(attr::REPLY_MESSAGE, b"no".to_vec()),
        ms_attribute(MS_CHAP_ERROR, b"\x01E=691 R=0 V=3").unwrap(),
        Attribute::new(attr::EAP_MESSAGE, vec![4, 1, 0, 4]),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    let Outcome::Access(AccessOutcome::Reject(r)) =
        verify_and_parse(&b, Code::AccessRequest, 1, &ra, &s).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.reply_message.as_deref(), Some(&b"no"[..]));
    assert_eq!(r.ms_chap_error.unwrap().error_code(), Some(691));
    assert_eq!(r.eap_message, Some(vec![4, 1, 0, 4]));

    // An EAP-Message split over two attributes is reassembled.
    let eap: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let mut p = Packet::new(Code::AccessChallenge, 2, [0; 16]);
    p.attributes = vec![
        Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        Attribute::new(attr::EAP_MESSAGE, eap[..253].to_vec()),
        Attribute::new(attr::EAP_MESSAGE, eap[253..].to_vec()),
        Attribute::new(attr::STATE, b"st8".to_vec()),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    let Outcome::Access(AccessOutcome::Challenge(c)) =
        verify_and_parse(&b, Code::AccessRequest, 2, &ra, &s).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.eap_message.unwrap(), eap);
    assert_eq!(c.state.unwrap(), b"st8");

    // Only one MPPE key, or a malformed Framed-IP-Address: authentic but
    // unreadable.
    let mut p = Packet::new(Code::AccessAccept, 3, [0; 16]);
    p.attributes = vec![
        Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        ms_attribute(
            MS_MPPE_SEND_KEY,
            &encrypt_mppe_key(&[1; 16], &s, &ra, 0x8000).unwrap(),
        )
        .unwrap(),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    assert_eq!(
        verify_and_parse(&b, Code::AccessRequest, 3, &ra, &s),
        Err(ResponseError::IncompleteMppeKeys)
    );
    let mut p = Packet::new(Code::AccessAccept, 3, [0; 16]);
    p.attributes = vec![
        Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]),
        Attribute::new(attr::FRAMED_IP_ADDRESS, vec![1, 2, 3]),
    ];
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    assert_eq!(
        verify_and_parse(&b, Code::AccessRequest, 3, &ra, &s),
        Err(ResponseError::Attribute {
            typ: attr::FRAMED_IP_ADDRESS
        })
    );
}

#[test]
fn accounting_response() {
    let s = Secret::new("s");
    let ra = [3u8; 16];
    // Without a Message-Authenticator: accepted (RFC 2866 §3 only asks for
    // the Response Authenticator).
    let mut b = Packet::new(Code::AccountingResponse, 4, [0; 16])
        .to_bytes()
        .unwrap();
    sign_response(&mut b, &ra, &s).unwrap();
    assert_eq!(
        verify_and_parse(&b, Code::AccountingRequest, 4, &ra, &s),
        Ok(Outcome::AccountingAck)
    );
    b[4] ^= 1;
    assert!(verify_and_parse(&b, Code::AccountingRequest, 4, &ra, &s).is_err());
}
