//! Small typed payload bodies: Identification (RFC 2407 §4.6.2),
//! Notification (RFC 2408 §3.14), Delete (§3.15) and NAT-OA (RFC 3947 §5.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sa_payload::DOI_IPSEC;

/// RFC 2407 §4.6.2.1 identification types.
pub mod id_type {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const USER_FQDN: u8 = 3;
    pub const IPV4_ADDR_SUBNET: u8 = 4;
    pub const IPV6_ADDR: u8 = 5;
    pub const DER_ASN1_DN: u8 = 9;
    pub const KEY_ID: u8 = 11;
}

/// Notify message types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5).
pub mod notify {
    pub const INVALID_PAYLOAD_TYPE: u16 = 1;
    pub const PAYLOAD_MALFORMED: u16 = 16;
    pub const INVALID_EXCHANGE_TYPE: u16 = 7;
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    pub const INVALID_ID_INFORMATION: u16 = 18;
    pub const INVALID_HASH_INFORMATION: u16 = 23;
    pub const AUTHENTICATION_FAILED: u16 = 24;
    pub const INVALID_KEY_INFORMATION: u16 = 17;
    pub const INVALID_CERT_ENCODING: u16 = 19;
    pub const INVALID_CERTIFICATE: u16 = 20;
    pub const INVALID_CERT_AUTHORITY: u16 = 22;
    pub const INVALID_SIGNATURE: u16 = 25;
    pub const RESPONDER_LIFETIME: u16 = 24576;
    pub const INITIAL_CONTACT: u16 = 24578;
    pub const R_U_THERE: u16 = 36136;
    pub const R_U_THERE_ACK: u16 = 36137;
}

/// An Identification payload body. In Quick Mode the protocol and port
/// select traffic (L2TP: UDP 1701).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identification {
    pub id_type: u8,
    pub protocol: u8,
    pub port: u16,
    pub data: Vec<u8>,
}

impl Identification {
    pub fn parse(body: &[u8]) -> Option<Identification> {
        (body.len() >= 4).then(|| Identification {
            id_type: body[0],
            protocol: body[1],
            port: u16::from_be_bytes([body[2], body[3]]),
            data: body[4..].to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.id_type, self.protocol];
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// An address identity (ID_IPV4_ADDR / ID_IPV6_ADDR).
    pub fn address(addr: IpAddr, protocol: u8, port: u16) -> Identification {
        let (id_type, data) = match addr {
            IpAddr::V4(a) => (id_type::IPV4_ADDR, a.octets().to_vec()),
            IpAddr::V6(a) => (id_type::IPV6_ADDR, a.octets().to_vec()),
        };
        Identification {
            id_type,
            protocol,
            port,
            data,
        }
    }

    /// The address of an address identity.
    pub fn as_address(&self) -> Option<IpAddr> {
        match (self.id_type, self.data.len()) {
            (id_type::IPV4_ADDR, 4) => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(&self.data[..]).ok()?,
            ))),
            (id_type::IPV6_ADDR, 16) => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&self.data[..]).ok()?,
            ))),
            _ => None,
        }
    }

    /// The identity for a log line, with its kind when it is not obvious.
    pub fn display_long(&self) -> String {
        match self.id_type {
            id_type::FQDN => format!("FQDN {}", self.display()),
            id_type::USER_FQDN => format!("e-mail {}", self.display()),
            id_type::DER_ASN1_DN => format!("DN \"{}\"", self.display()),
            _ => self.display(),
        }
    }

    /// The identity for a log line: an address, a name, or its type.
    pub fn display(&self) -> String {
        if let Some(a) = self.as_address() {
            return a.to_string();
        }
        match self.id_type {
            id_type::FQDN | id_type::USER_FQDN | id_type::KEY_ID => {
                String::from_utf8_lossy(&self.data)
                    .chars()
                    .take(128)
                    .collect()
            }
            id_type::DER_ASN1_DN => {
                use x509_parser::prelude::{FromDer, X509Name};
                match X509Name::from_der(&self.data) {
                    Ok((_, name)) => name.to_string().chars().take(256).collect(),
                    Err(_) => "a malformed distinguished name".to_string(),
                }
            }
            t => format!("identity of type {t}"),
        }
    }
}

/// A Notification payload body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub kind: u16,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn parse(body: &[u8]) -> Option<Notification> {
        if body.len() < 8 {
            return None;
        }
        let spi_len = body[5] as usize;
        let kind = u16::from_be_bytes([body[6], body[7]]);
        (body.len() >= 8 + spi_len).then(|| Notification {
            protocol: body[4],
            spi: body[8..8 + spi_len].to_vec(),
            kind,
            data: body[8 + spi_len..].to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = DOI_IPSEC.to_be_bytes().to_vec();
        out.push(self.protocol);
        out.push(self.spi.len() as u8);
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        out
    }
}

/// A Delete payload body: the SPIs of one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub protocol: u8,
    pub spi_len: u8,
    pub spis: Vec<Vec<u8>>,
}

/// A Delete names at most this many SPIs; more is hostile.
const MAX_DELETE_SPIS: usize = 64;

impl Delete {
    pub fn parse(body: &[u8]) -> Option<Delete> {
        if body.len() < 8 {
            return None;
        }
        let spi_len = body[5];
        let count = u16::from_be_bytes([body[6], body[7]]) as usize;
        if spi_len == 0 || count > MAX_DELETE_SPIS || body.len() < 8 + count * spi_len as usize {
            return None;
        }
        let spis = body[8..8 + count * spi_len as usize]
            .chunks(spi_len as usize)
            .map(<[u8]>::to_vec)
            .collect();
        Some(Delete {
            protocol: body[4],
            spi_len,
            spis,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = DOI_IPSEC.to_be_bytes().to_vec();
        out.push(self.protocol);
        out.push(self.spi_len);
        out.extend_from_slice(&(self.spis.len() as u16).to_be_bytes());
        for s in &self.spis {
            out.extend_from_slice(s);
        }
        out
    }
}

/// RFC 3947 §5.2: NAT-OA carries an address as an ID type, 3 reserved
/// bytes and the address.
pub fn parse_nat_oa(body: &[u8]) -> Option<IpAddr> {
    match (body.first()?, body.len()) {
        (&id_type::IPV4_ADDR, 8) => Some(IpAddr::V4(Ipv4Addr::new(
            body[4], body[5], body[6], body[7],
        ))),
        (&id_type::IPV6_ADDR, 20) => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&body[4..20]).ok()?,
        ))),
        _ => None,
    }
}

pub fn encode_nat_oa(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => {
            let mut out = vec![id_type::IPV4_ADDR, 0, 0, 0];
            out.extend_from_slice(&a.octets());
            out
        }
        IpAddr::V6(a) => {
            let mut out = vec![id_type::IPV6_ADDR, 0, 0, 0];
            out.extend_from_slice(&a.octets());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bodies_round_trip() {
        let id = Identification::address("192.168.1.7".parse().unwrap(), 17, 1701);
        assert_eq!(Identification::parse(&id.encode()), Some(id.clone()));
        assert_eq!(id.display(), "192.168.1.7");
        let n = Notification {
            protocol: 1,
            spi: vec![7; 16],
            kind: notify::R_U_THERE,
            data: 5u32.to_be_bytes().to_vec(),
        };
        assert_eq!(Notification::parse(&n.encode()), Some(n));
        let d = Delete {
            protocol: 3,
            spi_len: 4,
            spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
        };
        assert_eq!(Delete::parse(&d.encode()), Some(d));
        let a: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(parse_nat_oa(&encode_nat_oa(a)), Some(a));
    }

    #[test]
    fn short_or_overlong_bodies_are_refused() {
        assert_eq!(Identification::parse(&[1, 2]), None);
        assert_eq!(Notification::parse(&[0, 0, 0, 1, 1, 16, 0, 1, 0]), None);
        // A Delete claiming 1000 SPIs.
        assert_eq!(Delete::parse(&[0, 0, 0, 1, 3, 4, 0x03, 0xe8]), None);
        assert_eq!(parse_nat_oa(&[1, 0, 0]), None);
    }
}
