//! The closed vocabularies a policy speaks: tunnel types, NAS port types,
//! authentication methods and encryption strengths, each with the name the
//! configuration file uses.

use std::fmt;

use serde::Deserialize;

/// How the client reached the server (the NPS "Tunnel-Type" condition;
/// `dialup` is a modem or ISDN call with no tunnel at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// MS-SSTP (PPP over HTTPS).
    Sstp,
    /// PPTP (PPP over enhanced GRE).
    Pptp,
    /// L2TP over IPsec.
    L2tp,
    /// IKEv2 (IPsec tunnel mode, no PPP).
    Ikev2,
    /// A dial-up call: PPP straight on a serial or ISDN line.
    Dialup,
}

impl TunnelType {
    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            TunnelType::Sstp => "sstp",
            TunnelType::Pptp => "pptp",
            TunnelType::L2tp => "l2tp",
            TunnelType::Ikev2 => "ikev2",
            TunnelType::Dialup => "dialup",
        }
    }
}

impl fmt::Display for TunnelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 2865 §5.41 NAS-Port-Type: the kind of port the call came in on.
/// RRAS reports `virtual` for every VPN tunnel and `async`/`sync`/`isdn-*`
/// for dial-up lines; the other values exist so that a policy written for
/// a RADIUS-fed NAS means the same thing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NasPortType {
    /// 0: asynchronous (modem).
    Async,
    /// 1: synchronous.
    Sync,
    /// 2: ISDN synchronous.
    IsdnSync,
    /// 3: ISDN asynchronous V.120.
    #[serde(rename = "isdn-async-v120")]
    IsdnAsyncV120,
    /// 4: ISDN asynchronous V.110.
    #[serde(rename = "isdn-async-v110")]
    IsdnAsyncV110,
    /// 5: virtual (a VPN tunnel).
    Virtual,
    /// 6: PIAFS.
    Piafs,
    /// 7: HDLC clear channel.
    HdlcClearChannel,
    /// 8: X.25.
    #[serde(rename = "x25")]
    X25,
    /// 9: X.75.
    #[serde(rename = "x75")]
    X75,
    /// 10: G.3 fax.
    #[serde(rename = "g3-fax")]
    G3Fax,
    /// 11: symmetric DSL.
    Sdsl,
    /// 12: ADSL, carrierless amplitude phase modulation.
    AdslCap,
    /// 13: ADSL, discrete multi-tone.
    AdslDmt,
    /// 14: ISDN digital subscriber line.
    Idsl,
    /// 15: Ethernet.
    Ethernet,
    /// 16: DSL of unknown type.
    Xdsl,
    /// 17: cable.
    Cable,
    /// 18: wireless, other.
    WirelessOther,
    /// 19: wireless IEEE 802.11.
    #[serde(rename = "wireless-802.11")]
    Wireless80211,
}

impl NasPortType {
    /// Every value, in RFC order.
    pub const ALL: [NasPortType; 20] = [
        NasPortType::Async,
        NasPortType::Sync,
        NasPortType::IsdnSync,
        NasPortType::IsdnAsyncV120,
        NasPortType::IsdnAsyncV110,
        NasPortType::Virtual,
        NasPortType::Piafs,
        NasPortType::HdlcClearChannel,
        NasPortType::X25,
        NasPortType::X75,
        NasPortType::G3Fax,
        NasPortType::Sdsl,
        NasPortType::AdslCap,
        NasPortType::AdslDmt,
        NasPortType::Idsl,
        NasPortType::Ethernet,
        NasPortType::Xdsl,
        NasPortType::Cable,
        NasPortType::WirelessOther,
        NasPortType::Wireless80211,
    ];

    /// The RFC 2865 §5.41 attribute value (for RADIUS Access-Requests).
    pub fn radius_value(self) -> u32 {
        // The declaration order is the RFC's numbering, 0 to 19.
        self as u32
    }

    /// The type with RADIUS value `v`, if it is one of the RFC 2865 ones.
    pub fn from_radius_value(v: u32) -> Option<NasPortType> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            NasPortType::Async => "async",
            NasPortType::Sync => "sync",
            NasPortType::IsdnSync => "isdn-sync",
            NasPortType::IsdnAsyncV120 => "isdn-async-v120",
            NasPortType::IsdnAsyncV110 => "isdn-async-v110",
            NasPortType::Virtual => "virtual",
            NasPortType::Piafs => "piafs",
            NasPortType::HdlcClearChannel => "hdlc-clear-channel",
            NasPortType::X25 => "x25",
            NasPortType::X75 => "x75",
            NasPortType::G3Fax => "g3-fax",
            NasPortType::Sdsl => "sdsl",
            NasPortType::AdslCap => "adsl-cap",
            NasPortType::AdslDmt => "adsl-dmt",
            NasPortType::Idsl => "idsl",
            NasPortType::Ethernet => "ethernet",
            NasPortType::Xdsl => "xdsl",
            NasPortType::Cable => "cable",
            NasPortType::WirelessOther => "wireless-other",
            NasPortType::Wireless80211 => "wireless-802.11",
        }
    }
}

impl fmt::Display for NasPortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An authentication method, as the NPS "Authentication Methods"
/// constraint lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum AuthMethod {
    /// PAP (RFC 1334): cleartext password.
    #[serde(rename = "pap")]
    Pap,
    /// CHAP with MD5 (RFC 1994). `chap-md5` is the name `[auth] methods`
    /// uses for it, accepted here too.
    #[serde(rename = "chap", alias = "chap-md5")]
    Chap,
    /// MS-CHAP version 1 over PPP CHAP (RFC 2433).
    #[serde(rename = "mschap")]
    MsChap,
    /// MS-CHAPv2 over PPP CHAP (RFC 2759).
    #[serde(rename = "mschapv2")]
    MsChapV2,
    /// EAP-MSCHAPv2 (EAP type 26) directly in PPP EAP.
    #[serde(rename = "eap-mschapv2")]
    EapMsChapV2,
    /// PEAP (EAP type 25), whatever its inner method.
    #[serde(rename = "peap")]
    Peap,
    /// A client certificate: IKEv2 certificate authentication (RFC 7296
    /// §2.15) or EAP-TLS (EAP type 13, RFC 5216), NPS's "Smart card or
    /// other certificate".
    #[serde(rename = "certificate", alias = "eap-tls")]
    Certificate,
}

impl AuthMethod {
    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Pap => "pap",
            AuthMethod::Chap => "chap",
            AuthMethod::MsChap => "mschap",
            AuthMethod::MsChapV2 => "mschapv2",
            AuthMethod::EapMsChapV2 => "eap-mschapv2",
            AuthMethod::Peap => "peap",
            AuthMethod::Certificate => "certificate",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The NPS encryption levels, weakest first (so `Ord` compares strength).
///
/// NPS names them after MPPE key lengths (RFC 3078, RFC 3079): Basic is
/// 40-bit, Strong 56-bit, Strongest 128-bit. For L2TP/IPsec RRAS maps
/// Basic and Strong to DES and Strongest to 3DES (AES counts as Strongest
/// too). SSTP never negotiates MPPE: RRAS treats the link as protected by
/// TLS and no encryption setting refuses it, so TLS counts as Strongest;
/// IKEv2's ESP with AES or 3DES likewise. See [`EncryptionUsed::level`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionLevel {
    /// No encryption (as a minimum: anything is accepted).
    #[default]
    None,
    /// MPPE 40-bit; IPsec DES.
    Basic,
    /// MPPE 56-bit; IPsec DES.
    Strong,
    /// MPPE 128-bit; IPsec 3DES or AES; TLS (SSTP).
    Strongest,
}

impl EncryptionLevel {
    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            EncryptionLevel::None => "none",
            EncryptionLevel::Basic => "basic",
            EncryptionLevel::Strong => "strong",
            EncryptionLevel::Strongest => "strongest",
        }
    }

    /// The MPPE key lengths (bits) that meet this level as a minimum: what
    /// a server should allow in CCP for a PPTP or dial-up link so that the
    /// constraint cannot fail after CCP. Empty for `None`: any outcome,
    /// including no MPPE, meets it.
    pub fn mppe_bits_meeting(self) -> &'static [u16] {
        match self {
            EncryptionLevel::None => &[],
            EncryptionLevel::Basic => &[40, 56, 128],
            EncryptionLevel::Strong => &[56, 128],
            EncryptionLevel::Strongest => &[128],
        }
    }
}

impl fmt::Display for EncryptionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The IPsec ESP cipher protecting an L2TP or IKEv2 link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpsecCipher {
    /// DES (56-bit key).
    Des,
    /// Triple DES.
    TripleDes,
    /// AES (any key length, any mode).
    Aes,
}

/// What actually protects a link once it is up: the fact the
/// minimum-encryption constraint is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionUsed {
    /// Nothing: PPTP or dial-up without MPPE.
    None,
    /// MPPE (RFC 3078) with this key length in bits: 40, 56 or 128.
    Mppe {
        /// Key length in bits.
        bits: u16,
    },
    /// The TLS connection of SSTP.
    Tls,
    /// IPsec ESP (L2TP/IPsec, IKEv2).
    Ipsec(IpsecCipher),
}

impl EncryptionUsed {
    /// The NPS level this encryption reaches (see [`EncryptionLevel`]).
    pub fn level(self) -> EncryptionLevel {
        match self {
            EncryptionUsed::None => EncryptionLevel::None,
            // RFC 3078 §2 / RFC 3079: 40, 56 or 128-bit session keys. A
            // length below 40 is not MPPE at all; above 128 does not exist.
            EncryptionUsed::Mppe { bits } if bits >= 128 => EncryptionLevel::Strongest,
            EncryptionUsed::Mppe { bits } if bits >= 56 => EncryptionLevel::Strong,
            EncryptionUsed::Mppe { bits } if bits >= 40 => EncryptionLevel::Basic,
            EncryptionUsed::Mppe { .. } => EncryptionLevel::None,
            EncryptionUsed::Tls => EncryptionLevel::Strongest,
            EncryptionUsed::Ipsec(IpsecCipher::Des) => EncryptionLevel::Strong,
            EncryptionUsed::Ipsec(IpsecCipher::TripleDes | IpsecCipher::Aes) => {
                EncryptionLevel::Strongest
            }
        }
    }
}

impl fmt::Display for EncryptionUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncryptionUsed::None => f.write_str("no encryption"),
            EncryptionUsed::Mppe { bits } => write!(f, "MPPE {bits}-bit"),
            EncryptionUsed::Tls => f.write_str("TLS"),
            EncryptionUsed::Ipsec(IpsecCipher::Des) => f.write_str("IPsec DES"),
            EncryptionUsed::Ipsec(IpsecCipher::TripleDes) => f.write_str("IPsec 3DES"),
            EncryptionUsed::Ipsec(IpsecCipher::Aes) => f.write_str("IPsec AES"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nas_port_type_values_follow_rfc_2865() {
        // RFC 2865 §5.41 lists Async 0, Virtual 5, Ethernet 15,
        // Wireless - IEEE 802.11 19.
        assert_eq!(NasPortType::Async.radius_value(), 0);
        assert_eq!(NasPortType::Virtual.radius_value(), 5);
        assert_eq!(NasPortType::Ethernet.radius_value(), 15);
        assert_eq!(NasPortType::Wireless80211.radius_value(), 19);
        for (i, t) in NasPortType::ALL.iter().enumerate() {
            assert_eq!(t.radius_value() as usize, i);
            assert_eq!(NasPortType::from_radius_value(i as u32), Some(*t));
        }
        assert_eq!(NasPortType::from_radius_value(20), None);
    }

    #[test]
    fn config_names_round_trip() {
        #[derive(Deserialize)]
        struct T {
            p: NasPortType,
            t: TunnelType,
            a: AuthMethod,
            e: EncryptionLevel,
        }
        for p in NasPortType::ALL {
            let text = format!(
                "p = \"{}\"\nt = \"ikev2\"\na = \"chap-md5\"\ne = \"strong\"\n",
                p.name()
            );
            let t: T = toml::from_str(&text).unwrap();
            assert_eq!(t.p, p);
            assert_eq!(t.t, TunnelType::Ikev2);
            assert_eq!(t.a, AuthMethod::Chap);
            assert_eq!(t.e, EncryptionLevel::Strong);
        }
    }

    #[test]
    fn encryption_levels_map_as_rras_does() {
        use EncryptionLevel::*;
        assert_eq!(EncryptionUsed::None.level(), None);
        assert_eq!(EncryptionUsed::Mppe { bits: 40 }.level(), Basic);
        assert_eq!(EncryptionUsed::Mppe { bits: 56 }.level(), Strong);
        assert_eq!(EncryptionUsed::Mppe { bits: 128 }.level(), Strongest);
        assert_eq!(EncryptionUsed::Mppe { bits: 8 }.level(), None);
        assert_eq!(EncryptionUsed::Tls.level(), Strongest);
        assert_eq!(EncryptionUsed::Ipsec(IpsecCipher::Des).level(), Strong);
        assert_eq!(
            EncryptionUsed::Ipsec(IpsecCipher::TripleDes).level(),
            Strongest
        );
        assert!(None < Basic && Basic < Strong && Strong < Strongest);
        // Every MPPE length listed as meeting a level really does.
        for level in [None, Basic, Strong, Strongest] {
            for &bits in level.mppe_bits_meeting() {
                assert!(EncryptionUsed::Mppe { bits }.level() >= level);
            }
        }
        assert_eq!(Strong.mppe_bits_meeting(), &[56, 128]);
    }
}
