//! Requests a NAS sends: Access-Request for PAP, CHAP-MD5, MS-CHAPv2 and EAP
//! (RFC 2865 §4.1, RFC 2548, RFC 3579) and Accounting-Request (RFC 2866
//! §4.1).
//!
//! A [`Request`] holds attributes in clear (the User-Password too, zeroed on
//! drop); [`Request::encode`] hides the password, adds a
//! Message-Authenticator as the first attribute and signs, for one server's
//! secret, Identifier and Request Authenticator. The client re-encodes a
//! request when it fails over to a server with another secret.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;
use zeroize::Zeroize;

use crate::dict::{
    attr, tagged_u32, AcctAuthentic, AcctStatusType, AcctTerminateCause, FramedProtocol,
    NasPortType, ServiceType, TunnelMediumType, TunnelType,
};
use crate::microsoft::{
    MsChap2Response, MsChapResponse, MS_CHAP2_RESPONSE, MS_CHAP_CHALLENGE, MS_CHAP_RESPONSE,
    VENDOR_MICROSOFT,
};
use crate::packet::{Attribute, Code, EncodeError, Packet, AUTHENTICATOR_LEN, MAX_ATTR_VALUE_LEN};
use crate::security::{hide_user_password, sign_request, PasswordError, Secret, VerifyError};

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// An attribute or the packet is too long.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The User-Password cannot be hidden (longer than 128 octets).
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Signing failed (an internal inconsistency).
    #[error(transparent)]
    Sign(#[from] VerifyError),
}

/// Octet and packet counters for Interim-Update and Stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Octets received from the user.
    pub input_octets: u64,
    /// Octets sent to the user.
    pub output_octets: u64,
    /// Packets received from the user.
    pub input_packets: u32,
    /// Packets sent to the user.
    pub output_packets: u32,
}

/// A request to send, attributes in clear.
#[derive(Clone, Debug)]
pub struct Request {
    code: Code,
    attributes: Vec<Attribute>,
}

impl Drop for Request {
    fn drop(&mut self) {
        // The User-Password is kept in clear until encoded.
        for a in &mut self.attributes {
            a.value.zeroize();
        }
    }
}

fn ms_vsa(typ: u8, value: &[u8]) -> Attribute {
    // Lengths are checked when the packet is encoded.
    let mut v = Vec::with_capacity(6 + value.len());
    v.extend_from_slice(&VENDOR_MICROSOFT.to_be_bytes());
    v.push(typ);
    v.push(2u8.wrapping_add(value.len() as u8));
    v.extend_from_slice(value);
    Attribute::new(attr::VENDOR_SPECIFIC, v)
}

impl Request {
    /// An Access-Request carrying only User-Name.
    pub fn access(user_name: &[u8]) -> Request {
        Request {
            code: Code::AccessRequest,
            attributes: vec![Attribute::new(attr::USER_NAME, user_name)],
        }
    }

    /// PAP (RFC 2865 §5.2): User-Name and User-Password, hidden at encoding.
    pub fn pap(user_name: &[u8], password: &[u8]) -> Request {
        Request::access(user_name).with(Attribute::new(attr::USER_PASSWORD, password))
    }

    /// CHAP-MD5 (RFC 2865 §5.3, §5.40): CHAP-Password (the CHAP Identifier
    /// and the peer's 16-octet response) and CHAP-Challenge (the challenge
    /// the NAS sent; always carried explicitly since our Request
    /// Authenticator is random).
    pub fn chap(
        user_name: &[u8],
        chap_ident: u8,
        response: &[u8; 16],
        challenge: &[u8],
    ) -> Request {
        let mut pw = Vec::with_capacity(17);
        pw.push(chap_ident);
        pw.extend_from_slice(response);
        Request::access(user_name)
            .with(Attribute::new(attr::CHAP_PASSWORD, pw))
            .with(Attribute::new(attr::CHAP_CHALLENGE, challenge))
    }

    /// MS-CHAPv1 (RFC 2548 §2.1.2, §2.1.3): MS-CHAP-Challenge (the
    /// 8-octet challenge the NAS sent) and MS-CHAP-Response.
    pub fn mschapv1(user_name: &[u8], challenge: &[u8; 8], response: &MsChapResponse) -> Request {
        Request::access(user_name)
            .with(ms_vsa(MS_CHAP_CHALLENGE, challenge))
            .with(ms_vsa(MS_CHAP_RESPONSE, &response.encode()))
    }

    /// MS-CHAPv2 (RFC 2548 §2.1.2, §2.3.2): MS-CHAP-Challenge (the
    /// authenticator challenge the NAS sent) and MS-CHAP2-Response.
    pub fn mschapv2(
        user_name: &[u8],
        authenticator_challenge: &[u8; 16],
        response: &MsChap2Response,
    ) -> Request {
        Request::access(user_name)
            .with(ms_vsa(MS_CHAP_CHALLENGE, authenticator_challenge))
            .with(ms_vsa(MS_CHAP2_RESPONSE, &response.encode()))
    }

    /// EAP pass-through (RFC 3579 §3.1): the EAP packet split across
    /// EAP-Message attributes of at most 253 octets, and the State of the
    /// previous Access-Challenge if any (RFC 2865 §5.24).
    pub fn eap(user_name: &[u8], eap_message: &[u8], state: Option<&[u8]>) -> Request {
        let mut r = Request::access(user_name);
        if eap_message.is_empty() {
            r = r.with(Attribute::new(attr::EAP_MESSAGE, Vec::new()));
        }
        for chunk in eap_message.chunks(MAX_ATTR_VALUE_LEN) {
            r = r.with(Attribute::new(attr::EAP_MESSAGE, chunk));
        }
        if let Some(s) = state {
            r = r.with(Attribute::new(attr::STATE, s));
        }
        r
    }

    /// An Accounting-Request (RFC 2866 §4.1) with Acct-Status-Type and
    /// Acct-Session-Id.
    pub fn accounting(status: AcctStatusType, session_id: &[u8]) -> Request {
        Request {
            code: Code::AccountingRequest,
            attributes: vec![
                Attribute::u32(attr::ACCT_STATUS_TYPE, status.to_u32()),
                Attribute::new(attr::ACCT_SESSION_ID, session_id),
            ],
        }
    }

    /// The Code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The attributes in clear.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// Adds an attribute.
    pub fn with(mut self, a: Attribute) -> Request {
        self.attributes.push(a);
        self
    }

    /// Adds a 32-bit integer attribute.
    pub fn with_u32(self, typ: u8, v: u32) -> Request {
        self.with(Attribute::u32(typ, v))
    }

    /// Adds a Microsoft vendor attribute (RFC 2548).
    pub fn with_ms(self, vendor_type: u8, value: &[u8]) -> Request {
        self.with(ms_vsa(vendor_type, value))
    }

    /// NAS-IP-Address (RFC 2865 §5.4).
    pub fn with_nas_ip_address(self, a: Ipv4Addr) -> Request {
        self.with(Attribute::ipv4(attr::NAS_IP_ADDRESS, a))
    }

    /// NAS-IPv6-Address (RFC 3162 §2.1).
    pub fn with_nas_ipv6_address(self, a: Ipv6Addr) -> Request {
        self.with(Attribute::new(attr::NAS_IPV6_ADDRESS, a.octets().to_vec()))
    }

    /// NAS-Identifier (RFC 2865 §5.32).
    pub fn with_nas_identifier(self, id: &[u8]) -> Request {
        self.with(Attribute::new(attr::NAS_IDENTIFIER, id))
    }

    /// NAS-Port (RFC 2865 §5.5).
    pub fn with_nas_port(self, port: u32) -> Request {
        self.with_u32(attr::NAS_PORT, port)
    }

    /// NAS-Port-Type (RFC 2865 §5.41), `Virtual` for VPN tunnels.
    pub fn with_nas_port_type(self, t: NasPortType) -> Request {
        self.with_u32(attr::NAS_PORT_TYPE, t.to_u32())
    }

    /// Service-Type (RFC 2865 §5.6).
    pub fn with_service_type(self, t: ServiceType) -> Request {
        self.with_u32(attr::SERVICE_TYPE, t.to_u32())
    }

    /// Framed-Protocol (RFC 2865 §5.7).
    pub fn with_framed_protocol(self, p: FramedProtocol) -> Request {
        self.with_u32(attr::FRAMED_PROTOCOL, p.to_u32())
    }

    /// Framed-IP-Address (RFC 2865 §5.8), e.g. in accounting.
    pub fn with_framed_ip_address(self, a: Ipv4Addr) -> Request {
        self.with(Attribute::ipv4(attr::FRAMED_IP_ADDRESS, a))
    }

    /// Called-Station-Id (RFC 2865 §5.30).
    pub fn with_called_station_id(self, id: &[u8]) -> Request {
        self.with(Attribute::new(attr::CALLED_STATION_ID, id))
    }

    /// Calling-Station-Id (RFC 2865 §5.31).
    pub fn with_calling_station_id(self, id: &[u8]) -> Request {
        self.with(Attribute::new(attr::CALLING_STATION_ID, id))
    }

    /// Tunnel-Type with a tag (RFC 2868 §3.1).
    pub fn with_tunnel_type(self, tag: u8, t: TunnelType) -> Request {
        self.with(Attribute::new(
            attr::TUNNEL_TYPE,
            tagged_u32(tag, t.to_u32()).to_vec(),
        ))
    }

    /// Tunnel-Medium-Type with a tag (RFC 2868 §3.2).
    pub fn with_tunnel_medium_type(self, tag: u8, t: TunnelMediumType) -> Request {
        self.with(Attribute::new(
            attr::TUNNEL_MEDIUM_TYPE,
            tagged_u32(tag, t.to_u32()).to_vec(),
        ))
    }

    /// Class, echoed from the Access-Accept into accounting (RFC 2865
    /// §5.25).
    pub fn with_class(self, class: &[u8]) -> Request {
        self.with(Attribute::new(attr::CLASS, class))
    }

    /// Acct-Authentic (RFC 2866 §5.6).
    pub fn with_acct_authentic(self, a: AcctAuthentic) -> Request {
        self.with_u32(attr::ACCT_AUTHENTIC, a.to_u32())
    }

    /// Acct-Delay-Time in seconds (RFC 2866 §5.2).
    pub fn with_delay_time(self, secs: u32) -> Request {
        self.with_u32(attr::ACCT_DELAY_TIME, secs)
    }

    /// Acct-Session-Time in seconds (RFC 2866 §5.7).
    pub fn with_session_time(self, secs: u32) -> Request {
        self.with_u32(attr::ACCT_SESSION_TIME, secs)
    }

    /// Acct-Terminate-Cause (RFC 2866 §5.10), for Stop.
    pub fn with_terminate_cause(self, c: AcctTerminateCause) -> Request {
        self.with_u32(attr::ACCT_TERMINATE_CAUSE, c.to_u32())
    }

    /// Acct-Multi-Session-Id (RFC 2866 §5.11).
    pub fn with_multi_session_id(self, id: &[u8]) -> Request {
        self.with(Attribute::new(attr::ACCT_MULTI_SESSION_ID, id))
    }

    /// Event-Timestamp, seconds since 1970-01-01 UTC (RFC 2869 §5.3).
    pub fn with_event_timestamp(self, unix_secs: u32) -> Request {
        self.with_u32(attr::EVENT_TIMESTAMP, unix_secs)
    }

    /// 64-bit octet counters split into Acct-*-Octets (the low 32 bits,
    /// RFC 2866 §5.3/§5.4) and Acct-*-Gigawords (how many times the 32-bit
    /// counter wrapped, RFC 2869 §5.1/§5.2), plus the packet counters
    /// (RFC 2866 §5.8/§5.9).
    pub fn with_counters(self, c: Counters) -> Request {
        self.with_u32(attr::ACCT_INPUT_OCTETS, c.input_octets as u32)
            .with_u32(attr::ACCT_OUTPUT_OCTETS, c.output_octets as u32)
            .with_u32(attr::ACCT_INPUT_GIGAWORDS, (c.input_octets >> 32) as u32)
            .with_u32(attr::ACCT_OUTPUT_GIGAWORDS, (c.output_octets >> 32) as u32)
            .with_u32(attr::ACCT_INPUT_PACKETS, c.input_packets)
            .with_u32(attr::ACCT_OUTPUT_PACKETS, c.output_packets)
    }

    /// Encodes for one server: Message-Authenticator first (RFC 3579 §3.2;
    /// first so that a forged reply cannot be prefixed to it, the BlastRADIUS
    /// advice), then the attributes with the User-Password hidden (RFC 2865
    /// §5.2).
    ///
    /// `authenticator` is the random Request Authenticator of an
    /// Access-Request (RFC 2865 §3: unpredictable, unique); an
    /// Accounting-Request computes its own (RFC 2866 §3) and ignores it.
    pub fn encode(
        &self,
        identifier: u8,
        authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret,
    ) -> Result<Vec<u8>, RequestError> {
        self.encode_with(identifier, authenticator, secret, true)
    }

    /// [`Request::encode`], optionally without a Message-Authenticator (to
    /// reproduce the RFC 2865 §7 examples).
    pub(crate) fn encode_with(
        &self,
        identifier: u8,
        authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret,
        message_authenticator: bool,
    ) -> Result<Vec<u8>, RequestError> {
        let is_access = self.code == Code::AccessRequest;
        let mut p = Packet::new(
            self.code,
            identifier,
            if is_access { *authenticator } else { [0; 16] },
        );
        if message_authenticator {
            p.attributes
                .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
        }
        for a in &self.attributes {
            if a.typ == attr::MESSAGE_AUTHENTICATOR {
                continue;
            }
            if is_access && a.typ == attr::USER_PASSWORD {
                let hidden = hide_user_password(&a.value, secret, authenticator)?;
                p.attributes
                    .push(Attribute::new(attr::USER_PASSWORD, hidden));
            } else {
                p.attributes.push(a.clone());
            }
        }
        let mut bytes = p.to_bytes()?;
        // The clear password was copied into `p` only in hidden form; the
        // clones of other attributes need no wiping.
        sign_request(&mut bytes, secret)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{unhide_user_password, verify_access_request, verify_accounting_request};

    #[test]
    fn pap_encodes_and_signs() {
        let s = Secret::new("sharedsecret");
        let ra = [3u8; 16];
        let b = Request::pap(b"alice", b"hunter2")
            .with_nas_port_type(NasPortType::Virtual)
            .with_service_type(ServiceType::Framed)
            .encode(9, &ra, &s)
            .unwrap();
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.code, Code::AccessRequest);
        assert_eq!(p.identifier, 9);
        assert_eq!(p.authenticator, ra);
        assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        let pw = p.attr(attr::USER_PASSWORD).unwrap();
        assert_eq!(
            &unhide_user_password(&pw.value, &s, &ra).unwrap()[..],
            b"hunter2"
        );
        verify_access_request(&b, &s).unwrap();
        assert!(verify_access_request(&b, &Secret::new("wrong")).is_err());
        assert!(Request::pap(b"a", &[1; 129]).encode(0, &ra, &s).is_err());
    }

    #[test]
    fn eap_split_and_state() {
        let eap: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let r = Request::eap(b"bob", &eap, Some(b"st"));
        let b = r.encode(1, &[0; 16], &Secret::new("s")).unwrap();
        let p = Packet::decode(&b).unwrap();
        let lens: Vec<usize> = p.attrs(attr::EAP_MESSAGE).map(|a| a.value.len()).collect();
        assert_eq!(lens, vec![253, 253, 94]);
        assert_eq!(p.concat(attr::EAP_MESSAGE).unwrap(), eap);
        assert_eq!(p.attr(attr::STATE).unwrap().value, b"st");
    }

    #[test]
    fn accounting_counters_and_authenticator() {
        let s = Secret::new("acct");
        let r = Request::accounting(AcctStatusType::Stop, b"sess-1")
            .with_counters(Counters {
                input_octets: (5u64 << 32) + 7,
                output_octets: 0xffff_ffff,
                input_packets: 10,
                output_packets: 11,
            })
            .with_terminate_cause(AcctTerminateCause::UserRequest);
        let b = r.encode(4, &[0xee; 16], &s).unwrap();
        verify_accounting_request(&b, &s).unwrap();
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.code, Code::AccountingRequest);
        assert_ne!(p.authenticator, [0xee; 16]);
        let get = |t| p.attr(t).unwrap().as_u32().unwrap();
        assert_eq!(get(attr::ACCT_INPUT_OCTETS), 7);
        assert_eq!(get(attr::ACCT_INPUT_GIGAWORDS), 5);
        assert_eq!(get(attr::ACCT_OUTPUT_OCTETS), 0xffff_ffff);
        assert_eq!(get(attr::ACCT_OUTPUT_GIGAWORDS), 0);
        assert_eq!(get(attr::ACCT_STATUS_TYPE), 2);
        assert_eq!(get(attr::ACCT_TERMINATE_CAUSE), 1);
        // Tampering breaks the Request Authenticator.
        let mut t = b.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(verify_accounting_request(&t, &s).is_err());
    }

    #[test]
    fn mschapv2_and_chap_layout() {
        let resp = MsChap2Response {
            ident: 5,
            flags: 0,
            peer_challenge: [1; 16],
            response: [2; 24],
        };
        let b = Request::mschapv2(b"u", &[9; 16], &resp)
            .encode(0, &[0; 16], &Secret::new("s"))
            .unwrap();
        let p = Packet::decode(&b).unwrap();
        assert_eq!(
            p.vendor_attrs(VENDOR_MICROSOFT, MS_CHAP_CHALLENGE),
            vec![vec![9; 16]]
        );
        let r = p.vendor_attrs(VENDOR_MICROSOFT, MS_CHAP2_RESPONSE);
        assert_eq!(MsChap2Response::decode(&r[0]).unwrap(), resp);

        let b = Request::chap(b"u", 0x16, &[4; 16], &[5; 16])
            .encode(0, &[0; 16], &Secret::new("s"))
            .unwrap();
        let p = Packet::decode(&b).unwrap();
        assert_eq!(p.attr(attr::CHAP_PASSWORD).unwrap().value.len(), 17);
        assert_eq!(p.attr(attr::CHAP_PASSWORD).unwrap().value[0], 0x16);
        assert_eq!(p.attr(attr::CHAP_CHALLENGE).unwrap().value, vec![5; 16]);
    }

    #[test]
    fn oversized_attribute_is_an_error() {
        let r = Request::access(&[b'x'; 254]);
        assert!(matches!(
            r.encode(0, &[0; 16], &Secret::new("s")),
            Err(RequestError::Encode(EncodeError::ValueTooLong { .. }))
        ));
        let r = Request::access(b"x").with_ms(1, &[0; 248]);
        assert!(r.encode(0, &[0; 16], &Secret::new("s")).is_err());
    }
}
