//! The Configuration payload (RFC 7296 §3.15): a client's CFG_REQUEST for
//! an internal address, DNS and the like, and the server's CFG_REPLY.

use thiserror::Error;

/// CFG types (§3.15).
pub mod cfg_type {
    pub const REQUEST: u8 = 1;
    pub const REPLY: u8 = 2;
    pub const SET: u8 = 3;
    pub const ACK: u8 = 4;
}

/// Attribute types (§3.15.1; RFC 8598 §4 for INTERNAL_DNS_DOMAIN).
pub mod attribute {
    pub const INTERNAL_IP4_ADDRESS: u16 = 1;
    pub const INTERNAL_IP4_NETMASK: u16 = 2;
    pub const INTERNAL_IP4_DNS: u16 = 3;
    pub const INTERNAL_IP4_NBNS: u16 = 4;
    pub const INTERNAL_IP4_DHCP: u16 = 6;
    pub const APPLICATION_VERSION: u16 = 7;
    pub const INTERNAL_IP6_ADDRESS: u16 = 8;
    pub const INTERNAL_IP6_DNS: u16 = 10;
    pub const INTERNAL_IP6_DHCP: u16 = 12;
    pub const INTERNAL_IP4_SUBNET: u16 = 13;
    pub const SUPPORTED_ATTRIBUTES: u16 = 14;
    pub const INTERNAL_IP6_SUBNET: u16 = 15;
    pub const INTERNAL_DNS_DOMAIN: u16 = 25;
}

/// At most this many attributes are read from one payload.
pub const MAX_ATTRIBUTES: usize = 64;

/// One attribute: its type (the reserved top bit cleared) and value. In a
/// request the value is usually empty ("give me one").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub kind: u16,
    pub value: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPayload<'a> {
    pub cfg_type: u8,
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CpError {
    #[error("configuration payload truncated")]
    Truncated,
    #[error("configuration attribute {0} runs past the payload")]
    Overrun(u16),
    #[error("more than {MAX_ATTRIBUTES} configuration attributes")]
    TooMany,
}

impl<'a> ConfigPayload<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, CpError> {
        if body.len() < 4 {
            return Err(CpError::Truncated);
        }
        let cfg_type = body[0];
        let mut rest = &body[4..];
        let mut attributes = Vec::new();
        while !rest.is_empty() {
            if attributes.len() == MAX_ATTRIBUTES {
                return Err(CpError::TooMany);
            }
            if rest.len() < 4 {
                return Err(CpError::Truncated);
            }
            // §3.15.1: the top bit is reserved and ignored on receipt.
            let kind = u16::from_be_bytes([rest[0], rest[1]]) & 0x7fff;
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            if 4 + len > rest.len() {
                return Err(CpError::Overrun(kind));
            }
            attributes.push(Attribute {
                kind,
                value: &rest[4..4 + len],
            });
            rest = &rest[4 + len..];
        }
        Ok(ConfigPayload {
            cfg_type,
            attributes,
        })
    }

    /// Whether the peer asked for (or sent) an attribute of this type.
    pub fn has(&self, kind: u16) -> bool {
        self.attributes.iter().any(|a| a.kind == kind)
    }
}

/// Builds a CP body attribute by attribute.
pub struct ConfigBuilder {
    bytes: Vec<u8>,
}

impl ConfigBuilder {
    pub fn new(cfg_type: u8) -> Self {
        ConfigBuilder {
            bytes: vec![cfg_type, 0, 0, 0],
        }
    }

    pub fn attribute(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(&(kind & 0x7fff).to_be_bytes());
        self.bytes
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(value);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_round_trips() {
        let body = ConfigBuilder::new(cfg_type::REPLY)
            .attribute(attribute::INTERNAL_IP4_ADDRESS, &[10, 0, 10, 21])
            .attribute(attribute::INTERNAL_IP4_DNS, &[10, 0, 10, 1])
            .attribute(attribute::INTERNAL_DNS_DOMAIN, b"corp.example")
            .build();
        let cp = ConfigPayload::parse(&body).expect("CP");
        assert_eq!(cp.cfg_type, cfg_type::REPLY);
        assert_eq!(cp.attributes.len(), 3);
        assert_eq!(cp.attributes[0].value, &[10, 0, 10, 21]);
        assert!(cp.has(attribute::INTERNAL_DNS_DOMAIN));
        assert!(!cp.has(attribute::INTERNAL_IP6_ADDRESS));
    }

    #[test]
    fn a_windows_like_request_with_empty_values_and_the_reserved_bit() {
        // CFG_REQUEST for an address, DNS, NBNS and a private-use attribute
        // with the reserved bit set (ignored on receipt).
        let body = [
            1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0xdb, 0xa0, 0, 0,
        ];
        let cp = ConfigPayload::parse(&body).expect("CP");
        let kinds: Vec<u16> = cp.attributes.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [1, 3, 4, 0x5ba0]);
        assert!(cp.attributes.iter().all(|a| a.value.is_empty()));
    }

    #[test]
    fn malformed_attributes_are_errors() {
        assert_eq!(ConfigPayload::parse(&[1, 0, 0]), Err(CpError::Truncated));
        assert_eq!(
            ConfigPayload::parse(&[1, 0, 0, 0, 0, 1, 0, 4, 10]),
            Err(CpError::Overrun(1))
        );
        assert_eq!(
            ConfigPayload::parse(&[1, 0, 0, 0, 0, 1]),
            Err(CpError::Truncated)
        );
    }
}
