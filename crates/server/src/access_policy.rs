//! What the server knows of a session, in the policy crate's terms: its
//! tunnel, the method of an authentication request, the encryption of its
//! link, the request the policies evaluate. The stages that ask the
//! policies are in `policy_stages.rs`.

use std::net::IpAddr;
use std::time::SystemTime;

use policy::{AuthMethod, EncryptionUsed, NasPortType, TunnelType};
use ppp::auth::{AuthRequest, Credentials};
use ppp::mppe::MppeStrength;

use crate::radius_auth::{calling_station, TunnelKind};

/// The policy crate's tunnel type.
pub fn tunnel_type(kind: TunnelKind) -> TunnelType {
    match kind {
        TunnelKind::Sstp => TunnelType::Sstp,
        TunnelKind::Pptp => TunnelType::Pptp,
        TunnelKind::L2tp => TunnelType::L2tp,
        TunnelKind::Ikev2 => TunnelType::Ikev2,
        TunnelKind::Dialup => TunnelType::Dialup,
    }
}

/// RRAS reports every tunnel as a Virtual port and a serial line as Async
/// (RFC 2865 §5.41).
pub fn nas_port_type(kind: TunnelKind) -> NasPortType {
    match kind {
        TunnelKind::Dialup => NasPortType::Async,
        _ => NasPortType::Virtual,
    }
}

/// EAP method types (RFC 3748 §5; PEAP 25 and EAP-MSCHAPv2 26 are IANA
/// assignments).
const EAP_TYPE_TLS: u8 = 13;
const EAP_TYPE_PEAP: u8 = 25;
const EAP_TYPE_MSCHAPV2: u8 = 26;

/// The method of an authentication request. For EAP passed through to
/// RADIUS, the method type of the peer's EAP Response (byte 4, RFC 3748
/// §4.1), when it is not an Identity or a Nak.
pub fn auth_method(request: &AuthRequest) -> Option<AuthMethod> {
    use ppp::auth::AuthMethod as M;
    Some(match request.method {
        M::Pap => AuthMethod::Pap,
        M::ChapMd5 => AuthMethod::Chap,
        M::MsChapV1 => AuthMethod::MsChap,
        M::MsChapV2 => AuthMethod::MsChapV2,
        M::EapMsChapV2 => AuthMethod::EapMsChapV2,
        M::EapPassThrough => match &request.credentials {
            Credentials::EapPassThrough { message } => match message.get(4) {
                Some(&EAP_TYPE_PEAP) => AuthMethod::Peap,
                Some(&EAP_TYPE_TLS) => AuthMethod::Certificate,
                Some(&EAP_TYPE_MSCHAPV2) => AuthMethod::EapMsChapV2,
                _ => return None,
            },
            _ => return None,
        },
    })
}

/// What protects a link: TLS for SSTP, ESP for L2TP and IKEv2, else the
/// MPPE negotiated (`None` when CCP agreed on nothing).
pub fn encryption(kind: TunnelKind, mppe: Option<MppeStrength>) -> EncryptionUsed {
    match kind {
        TunnelKind::Sstp => EncryptionUsed::Tls,
        TunnelKind::L2tp | TunnelKind::Ikev2 => EncryptionUsed::Ipsec(policy::IpsecCipher::Aes),
        TunnelKind::Pptp | TunnelKind::Dialup => unprotected_tunnel_encryption(mppe),
    }
}

/// What protects a link whose tunnel encrypts nothing (PPTP, a serial
/// line, plain L2TP without IPsec, RFC 2661 §9.2): the MPPE CCP agreed on
/// (RFC 3078), else nothing.
pub fn unprotected_tunnel_encryption(mppe: Option<MppeStrength>) -> EncryptionUsed {
    match mppe {
        Some(MppeStrength::Bits40) => EncryptionUsed::Mppe { bits: 40 },
        Some(MppeStrength::Bits56) => EncryptionUsed::Mppe { bits: 56 },
        Some(MppeStrength::Bits128) => EncryptionUsed::Mppe { bits: 128 },
        None => EncryptionUsed::None,
    }
}

/// A policy's authentication method in words, for log lines.
pub fn method_words(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Pap => "PAP",
        AuthMethod::Chap => "CHAP-MD5",
        AuthMethod::MsChap => "MS-CHAP",
        AuthMethod::MsChapV2 => "MS-CHAPv2",
        AuthMethod::EapMsChapV2 => "EAP-MSCHAPv2",
        AuthMethod::Peap => "PEAP",
        AuthMethod::Certificate => "certificate",
    }
}

/// The request as the policy crate sees it.
pub fn request<'a>(
    user: &'a str,
    groups: &'a [String],
    radius_class: Option<&'a [Vec<u8>]>,
    kind: TunnelKind,
    peer: &'a str,
    station: &'a str,
    now: SystemTime,
) -> policy::Request<'a> {
    let mut r = policy::Request::new(user, tunnel_type(kind), nas_port_type(kind), now);
    r.groups = groups;
    r.radius_class = radius_class;
    r.calling_station_id = Some(station);
    r.client_address = peer
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .ok()
        .or_else(|| calling_station(peer).parse::<IpAddr>().ok());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn eap(message: Vec<u8>) -> AuthRequest {
        AuthRequest {
            username: "u".into(),
            method: ppp::auth::AuthMethod::EapPassThrough,
            credentials: Credentials::EapPassThrough { message },
        }
    }

    #[test]
    fn methods_of_requests() {
        assert_eq!(
            auth_method(&eap(vec![2, 1, 0, 9, 1, b'u'])),
            None,
            "Identity"
        );
        assert_eq!(
            auth_method(&eap(vec![2, 2, 0, 6, 25, 0])),
            Some(AuthMethod::Peap)
        );
        assert_eq!(
            auth_method(&eap(vec![2, 3, 0, 6, 26, 2])),
            Some(AuthMethod::EapMsChapV2)
        );
        let pap = AuthRequest {
            username: "u".into(),
            method: ppp::auth::AuthMethod::Pap,
            credentials: Credentials::Pap {
                password: Zeroizing::new(b"x".to_vec()),
            },
        };
        assert_eq!(auth_method(&pap), Some(AuthMethod::Pap));
    }

    #[test]
    fn encryption_by_tunnel() {
        assert_eq!(encryption(TunnelKind::Sstp, None), EncryptionUsed::Tls);
        assert_eq!(
            encryption(TunnelKind::Pptp, Some(MppeStrength::Bits128)),
            EncryptionUsed::Mppe { bits: 128 }
        );
        assert_eq!(encryption(TunnelKind::Dialup, None), EncryptionUsed::None);
    }
}
