//! Attribute types and typed values a remote access server uses.
//!
//! Numbers come from RFC 2865 §5, RFC 2866 §5, RFC 2868 §3, RFC 2869 §5,
//! RFC 3162 §2, RFC 3579 §3 and RFC 5176 §3.5/§3.6; the Microsoft vendor
//! attributes are in [`crate::microsoft`].

/// Attribute type numbers.
pub mod attr {
    /// User-Name (RFC 2865 §5.1).
    pub const USER_NAME: u8 = 1;
    /// User-Password (RFC 2865 §5.2).
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password (RFC 2865 §5.3).
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address (RFC 2865 §5.4).
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// NAS-Port (RFC 2865 §5.5).
    pub const NAS_PORT: u8 = 5;
    /// Service-Type (RFC 2865 §5.6).
    pub const SERVICE_TYPE: u8 = 6;
    /// Framed-Protocol (RFC 2865 §5.7).
    pub const FRAMED_PROTOCOL: u8 = 7;
    /// Framed-IP-Address (RFC 2865 §5.8).
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    /// Framed-IP-Netmask (RFC 2865 §5.9).
    pub const FRAMED_IP_NETMASK: u8 = 9;
    /// Filter-Id (RFC 2865 §5.11).
    pub const FILTER_ID: u8 = 11;
    /// Framed-MTU (RFC 2865 §5.12).
    pub const FRAMED_MTU: u8 = 12;
    /// Login-IP-Host (RFC 2865 §5.14).
    pub const LOGIN_IP_HOST: u8 = 14;
    /// Login-Service (RFC 2865 §5.15).
    pub const LOGIN_SERVICE: u8 = 15;
    /// Reply-Message (RFC 2865 §5.18).
    pub const REPLY_MESSAGE: u8 = 18;
    /// Framed-Route (RFC 2865 §5.22).
    pub const FRAMED_ROUTE: u8 = 22;
    /// State (RFC 2865 §5.24).
    pub const STATE: u8 = 24;
    /// Class (RFC 2865 §5.25).
    pub const CLASS: u8 = 25;
    /// Vendor-Specific (RFC 2865 §5.26).
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout (RFC 2865 §5.27).
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Idle-Timeout (RFC 2865 §5.28).
    pub const IDLE_TIMEOUT: u8 = 28;
    /// Termination-Action (RFC 2865 §5.29).
    pub const TERMINATION_ACTION: u8 = 29;
    /// Called-Station-Id (RFC 2865 §5.30).
    pub const CALLED_STATION_ID: u8 = 30;
    /// Calling-Station-Id (RFC 2865 §5.31).
    pub const CALLING_STATION_ID: u8 = 31;
    /// NAS-Identifier (RFC 2865 §5.32).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Proxy-State (RFC 2865 §5.33).
    pub const PROXY_STATE: u8 = 33;
    /// Acct-Status-Type (RFC 2866 §5.1).
    pub const ACCT_STATUS_TYPE: u8 = 40;
    /// Acct-Delay-Time (RFC 2866 §5.2).
    pub const ACCT_DELAY_TIME: u8 = 41;
    /// Acct-Input-Octets (RFC 2866 §5.3).
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    /// Acct-Output-Octets (RFC 2866 §5.4).
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    /// Acct-Session-Id (RFC 2866 §5.5).
    pub const ACCT_SESSION_ID: u8 = 44;
    /// Acct-Authentic (RFC 2866 §5.6).
    pub const ACCT_AUTHENTIC: u8 = 45;
    /// Acct-Session-Time (RFC 2866 §5.7).
    pub const ACCT_SESSION_TIME: u8 = 46;
    /// Acct-Input-Packets (RFC 2866 §5.8).
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    /// Acct-Output-Packets (RFC 2866 §5.9).
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    /// Acct-Terminate-Cause (RFC 2866 §5.10).
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    /// Acct-Multi-Session-Id (RFC 2866 §5.11).
    pub const ACCT_MULTI_SESSION_ID: u8 = 50;
    /// Acct-Link-Count (RFC 2866 §5.12).
    pub const ACCT_LINK_COUNT: u8 = 51;
    /// Acct-Input-Gigawords (RFC 2869 §5.1).
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    /// Acct-Output-Gigawords (RFC 2869 §5.2).
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    /// Event-Timestamp (RFC 2869 §5.3).
    pub const EVENT_TIMESTAMP: u8 = 55;
    /// CHAP-Challenge (RFC 2865 §5.40).
    pub const CHAP_CHALLENGE: u8 = 60;
    /// NAS-Port-Type (RFC 2865 §5.41).
    pub const NAS_PORT_TYPE: u8 = 61;
    /// Tunnel-Type (RFC 2868 §3.1).
    pub const TUNNEL_TYPE: u8 = 64;
    /// Tunnel-Medium-Type (RFC 2868 §3.2).
    pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
    /// Tunnel-Client-Endpoint (RFC 2868 §3.3).
    pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
    /// Tunnel-Server-Endpoint (RFC 2868 §3.4).
    pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
    /// EAP-Message (RFC 3579 §3.1).
    pub const EAP_MESSAGE: u8 = 79;
    /// Message-Authenticator (RFC 3579 §3.2, RFC 2869 §5.14).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    /// Acct-Interim-Interval (RFC 2869 §5.16).
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    /// NAS-Port-Id (RFC 2869 §5.17).
    pub const NAS_PORT_ID: u8 = 87;
    /// Framed-Pool (RFC 2869 §5.18).
    pub const FRAMED_POOL: u8 = 88;
    /// NAS-IPv6-Address (RFC 3162 §2.1).
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    /// Framed-Interface-Id (RFC 3162 §2.2).
    pub const FRAMED_INTERFACE_ID: u8 = 96;
    /// Framed-IPv6-Prefix (RFC 3162 §2.3).
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    /// Framed-IPv6-Route (RFC 3162 §2.5).
    pub const FRAMED_IPV6_ROUTE: u8 = 99;
    /// Framed-IPv6-Pool (RFC 3162 §2.6).
    pub const FRAMED_IPV6_POOL: u8 = 100;
    /// Error-Cause (RFC 5176 §3.5).
    pub const ERROR_CAUSE: u8 = 101;
}

macro_rules! u32_values {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $var:ident = $val:expr, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A value this dictionary does not name.
            Other(u32),
        }

        impl $name {
            /// The wire value.
            pub fn to_u32(self) -> u32 {
                match self {
                    $( $name::$var => $val, )*
                    $name::Other(v) => v,
                }
            }

            /// The typed value (known numbers never come back as `Other`).
            pub fn from_u32(v: u32) -> $name {
                match v {
                    $( $val => $name::$var, )*
                    v => $name::Other(v),
                }
            }
        }
    };
}

u32_values! {
    /// Service-Type values (RFC 2865 §5.6).
    ServiceType {
        /// 1
        Login = 1,
        /// 2: the user gets a framed protocol such as PPP.
        Framed = 2,
        /// 3
        CallbackLogin = 3,
        /// 4
        CallbackFramed = 4,
        /// 5
        Outbound = 5,
        /// 6
        Administrative = 6,
        /// 7
        NasPrompt = 7,
        /// 8
        AuthenticateOnly = 8,
        /// 9
        CallbackNasPrompt = 9,
        /// 10
        CallCheck = 10,
        /// 11
        CallbackAdministrative = 11,
    }
}

u32_values! {
    /// Framed-Protocol values (RFC 2865 §5.7).
    FramedProtocol {
        /// 1
        Ppp = 1,
        /// 2
        Slip = 2,
        /// 3
        Arap = 3,
        /// 4
        Gandalf = 4,
        /// 5
        Xylogics = 5,
        /// 6
        X75 = 6,
    }
}

u32_values! {
    /// NAS-Port-Type values (RFC 2865 §5.41).
    NasPortType {
        /// 0
        Async = 0,
        /// 1
        Sync = 1,
        /// 2
        IsdnSync = 2,
        /// 3
        IsdnAsyncV120 = 3,
        /// 4
        IsdnAsyncV110 = 4,
        /// 5: a VPN tunnel.
        Virtual = 5,
        /// 15
        Ethernet = 15,
    }
}

u32_values! {
    /// Termination-Action values (RFC 2865 §5.29).
    TerminationAction {
        /// 0
        Default = 0,
        /// 1: re-authenticate with an Access-Request on termination.
        RadiusRequest = 1,
    }
}

u32_values! {
    /// Acct-Status-Type values (RFC 2866 §5.1).
    AcctStatusType {
        /// 1
        Start = 1,
        /// 2
        Stop = 2,
        /// 3 (Interim-Update, RFC 2869 §2.1)
        InterimUpdate = 3,
        /// 7
        AccountingOn = 7,
        /// 8
        AccountingOff = 8,
    }
}

u32_values! {
    /// Acct-Authentic values (RFC 2866 §5.6).
    AcctAuthentic {
        /// 1
        Radius = 1,
        /// 2
        Local = 2,
        /// 3
        Remote = 3,
    }
}

u32_values! {
    /// Acct-Terminate-Cause values (RFC 2866 §5.10).
    AcctTerminateCause {
        /// 1
        UserRequest = 1,
        /// 2
        LostCarrier = 2,
        /// 3
        LostService = 3,
        /// 4
        IdleTimeout = 4,
        /// 5
        SessionTimeout = 5,
        /// 6
        AdminReset = 6,
        /// 7
        AdminReboot = 7,
        /// 8
        PortError = 8,
        /// 9
        NasError = 9,
        /// 10
        NasRequest = 10,
        /// 11
        NasReboot = 11,
        /// 12
        PortUnneeded = 12,
        /// 13
        PortPreempted = 13,
        /// 14
        PortSuspended = 14,
        /// 15
        ServiceUnavailable = 15,
        /// 16
        Callback = 16,
        /// 17
        UserError = 17,
        /// 18
        HostRequest = 18,
    }
}

u32_values! {
    /// Tunnel-Type values (RFC 2868 §3.1, carried in 24 bits after a tag).
    TunnelType {
        /// 1
        Pptp = 1,
        /// 2
        L2f = 2,
        /// 3
        L2tp = 3,
        /// 4
        Atmp = 4,
        /// 5
        Vtp = 5,
        /// 6
        Ah = 6,
        /// 7
        IpIp = 7,
        /// 8
        MinIpIp = 8,
        /// 9
        Esp = 9,
        /// 10
        Gre = 10,
        /// 11
        Dvs = 11,
        /// 12
        IpInIp = 12,
        /// 13 (RFC 3580 §3.31)
        Vlan = 13,
        /// SSTP: the vendor-specific value 0x013701 (Microsoft enterprise
        /// 311 = 0x0137, then 0x01) built with the RFC 2882 technique, as
        /// published in \[MS-RNAP\] §2.2.2.1.
        Sstp = 0x0001_3701,
    }
}

u32_values! {
    /// Tunnel-Medium-Type values (RFC 2868 §3.2, address family numbers).
    TunnelMediumType {
        /// 1
        Ipv4 = 1,
        /// 2
        Ipv6 = 2,
    }
}

u32_values! {
    /// Error-Cause values (RFC 5176 §3.6).
    ErrorCause {
        /// 201
        ResidualSessionContextRemoved = 201,
        /// 202
        InvalidEapPacket = 202,
        /// 401
        UnsupportedAttribute = 401,
        /// 402
        MissingAttribute = 402,
        /// 403
        NasIdentificationMismatch = 403,
        /// 404
        InvalidRequest = 404,
        /// 405
        UnsupportedService = 405,
        /// 406
        UnsupportedExtension = 406,
        /// 407
        InvalidAttributeValue = 407,
        /// 501
        AdministrativelyProhibited = 501,
        /// 502
        RequestNotRoutable = 502,
        /// 503
        SessionContextNotFound = 503,
        /// 504
        SessionContextNotRemovable = 504,
        /// 505
        OtherProxyProcessingError = 505,
        /// 506
        ResourcesUnavailable = 506,
        /// 507
        RequestInitiated = 507,
        /// 508
        MultipleSessionSelectionUnsupported = 508,
    }
}

/// Encodes a tagged integer attribute value (RFC 2868 §3.1): one Tag octet
/// (0x01..=0x1F, or 0 for none) then the value in 24 bits.
pub fn tagged_u32(tag: u8, value: u32) -> [u8; 4] {
    let v = value.to_be_bytes();
    [tag, v[1], v[2], v[3]]
}

/// Reads a tagged integer value (RFC 2868 §3.1): (tag, 24-bit value).
pub fn read_tagged_u32(value: &[u8]) -> Option<(u8, u32)> {
    let b: [u8; 4] = value.try_into().ok()?;
    Some((b[0], u32::from_be_bytes([0, b[1], b[2], b[3]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in 0..600u32 {
            assert_eq!(ServiceType::from_u32(v).to_u32(), v);
            assert_eq!(AcctTerminateCause::from_u32(v).to_u32(), v);
            assert_eq!(ErrorCause::from_u32(v).to_u32(), v);
            assert_eq!(TunnelType::from_u32(v).to_u32(), v);
        }
        assert_eq!(NasPortType::Virtual.to_u32(), 5);
        assert_eq!(ServiceType::from_u32(2), ServiceType::Framed);
        assert_eq!(FramedProtocol::Ppp.to_u32(), 1);
        assert_eq!(TunnelType::from_u32(0x013701), TunnelType::Sstp);
    }

    #[test]
    fn tagged() {
        // SSTP with tag 0 is 0x00013701 on the wire ([MS-RNAP] §2.2.2.1).
        assert_eq!(tagged_u32(0, TunnelType::Sstp.to_u32()), [0, 1, 0x37, 1]);
        assert_eq!(tagged_u32(1, TunnelType::L2tp.to_u32()), [1, 0, 0, 3]);
        assert_eq!(read_tagged_u32(&[1, 0, 0, 3]), Some((1, 3)));
        assert_eq!(read_tagged_u32(&[1, 0, 3]), None);
    }
}
