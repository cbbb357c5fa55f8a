//! Datagram service packets (RFC 1002 §4.4): DIRECT_UNIQUE, DIRECT_GROUP
//! and BROADCAST datagrams, DATAGRAM ERROR and the datagram query packets,
//! parsed and built. Names here are never compressed (§4.4.1).

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::name::{NameError, NetbiosName};

/// The 10 octets every datagram service packet starts with (§4.4.1).
const HEADER_LEN: usize = 10;

/// Why a datagram service packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// Fewer octets than the header of its type.
    #[error("datagram service packet of {0} octets is shorter than its header")]
    Short(usize),
    /// MSG_TYPE outside 0x10..=0x16.
    #[error("datagram service MSG_TYPE 0x{0:02x} is not one of RFC 1002 §4.4.1")]
    UnknownType(u8),
    /// DGM_LENGTH reaches past the end of the packet or not past the names.
    #[error("DGM_LENGTH {dgm_length} does not fit the {available} octets after the header")]
    BadLength {
        /// The announced length.
        dgm_length: u16,
        /// What the packet holds after PACKET_OFFSET.
        available: usize,
    },
    /// A source or destination name could not be decoded.
    #[error("bad name in a datagram: {0}")]
    Name(#[from] NameError),
}

/// RFC 1002 §4.4.1 MSG_TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramType {
    /// 0x10 DIRECT_UNIQUE DATAGRAM.
    DirectUnique,
    /// 0x11 DIRECT_GROUP DATAGRAM.
    DirectGroup,
    /// 0x12 BROADCAST DATAGRAM.
    Broadcast,
    /// 0x13 DATAGRAM ERROR.
    Error,
    /// 0x14 DATAGRAM QUERY REQUEST.
    QueryRequest,
    /// 0x15 DATAGRAM POSITIVE QUERY RESPONSE.
    PositiveQueryResponse,
    /// 0x16 DATAGRAM NEGATIVE QUERY RESPONSE.
    NegativeQueryResponse,
}

impl DatagramType {
    fn from_octet(v: u8) -> Result<Self, DatagramError> {
        Ok(match v {
            0x10 => Self::DirectUnique,
            0x11 => Self::DirectGroup,
            0x12 => Self::Broadcast,
            0x13 => Self::Error,
            0x14 => Self::QueryRequest,
            0x15 => Self::PositiveQueryResponse,
            0x16 => Self::NegativeQueryResponse,
            other => return Err(DatagramError::UnknownType(other)),
        })
    }

    /// The MSG_TYPE octet.
    pub fn octet(self) -> u8 {
        match self {
            Self::DirectUnique => 0x10,
            Self::DirectGroup => 0x11,
            Self::Broadcast => 0x12,
            Self::Error => 0x13,
            Self::QueryRequest => 0x14,
            Self::PositiveQueryResponse => 0x15,
            Self::NegativeQueryResponse => 0x16,
        }
    }
}

/// RFC 1002 §4.4.1: the header common to all datagram service packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader {
    /// MSG_TYPE.
    pub msg_type: DatagramType,
    /// FLAGS: SNT (0x0c, source end-node type), F (0x02, first fragment),
    /// M (0x01, more fragments); the top four bits are reserved.
    pub flags: u8,
    /// DGM_ID.
    pub dgm_id: u16,
    /// SOURCE_IP.
    pub source_ip: Ipv4Addr,
    /// SOURCE_PORT.
    pub source_port: u16,
}

/// What follows the header, by MSG_TYPE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramBody {
    /// §4.4.2: DIRECT_UNIQUE, DIRECT_GROUP and BROADCAST datagrams.
    Data {
        /// PACKET_OFFSET of this fragment in the whole user data.
        packet_offset: u16,
        /// SOURCE_NAME.
        source: NetbiosName,
        /// DESTINATION_NAME.
        destination: NetbiosName,
        /// USER_DATA.
        user_data: Vec<u8>,
    },
    /// §4.4.3: DATAGRAM ERROR with its ERROR_CODE (0x82 destination name
    /// not present, 0x83 invalid source name format, 0x84 invalid
    /// destination name format).
    Error {
        /// ERROR_CODE.
        code: u8,
    },
    /// §4.4.4: DATAGRAM QUERY REQUEST and its positive/negative responses.
    Query {
        /// DESTINATION_NAME.
        destination: NetbiosName,
    },
}

/// A datagram service packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The header.
    pub header: DatagramHeader,
    /// The type-dependent rest.
    pub body: DatagramBody,
}

impl Datagram {
    /// Parses a UDP payload from port 138. Octets past DGM_LENGTH are
    /// ignored; a DGM_LENGTH past the end of the packet is an error.
    pub fn decode(packet: &[u8]) -> Result<Self, DatagramError> {
        if packet.len() < HEADER_LEN {
            return Err(DatagramError::Short(packet.len()));
        }
        let msg_type = DatagramType::from_octet(packet[0])?;
        let header = DatagramHeader {
            msg_type,
            flags: packet[1],
            dgm_id: u16::from_be_bytes([packet[2], packet[3]]),
            source_ip: Ipv4Addr::new(packet[4], packet[5], packet[6], packet[7]),
            source_port: u16::from_be_bytes([packet[8], packet[9]]),
        };
        let body = match msg_type {
            DatagramType::DirectUnique | DatagramType::DirectGroup | DatagramType::Broadcast => {
                if packet.len() < HEADER_LEN + 4 {
                    return Err(DatagramError::Short(packet.len()));
                }
                let dgm_length = u16::from_be_bytes([packet[10], packet[11]]);
                let packet_offset = u16::from_be_bytes([packet[12], packet[13]]);
                // §4.4.2: DGM_LENGTH counts the octets after PACKET_OFFSET,
                // the two names and the user data.
                let start = HEADER_LEN + 4;
                let available = packet.len() - start;
                let end = start + usize::from(dgm_length);
                let bad = DatagramError::BadLength {
                    dgm_length,
                    available,
                };
                if end > packet.len() {
                    return Err(bad);
                }
                let within = &packet[..end];
                let (source, at) = NetbiosName::decode(within, start, false)?;
                let (destination, at) = NetbiosName::decode(within, at, false)?;
                DatagramBody::Data {
                    packet_offset,
                    source,
                    destination,
                    user_data: within[at..].to_vec(),
                }
            }
            DatagramType::Error => {
                let code = *packet
                    .get(HEADER_LEN)
                    .ok_or(DatagramError::Short(packet.len()))?;
                DatagramBody::Error { code }
            }
            DatagramType::QueryRequest
            | DatagramType::PositiveQueryResponse
            | DatagramType::NegativeQueryResponse => {
                let (destination, _) = NetbiosName::decode(packet, HEADER_LEN, false)?;
                DatagramBody::Query { destination }
            }
        };
        Ok(Self { header, body })
    }

    /// Builds the packet, DGM_LENGTH computed.
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(128);
        out.push(h.msg_type.octet());
        out.push(h.flags);
        out.extend_from_slice(&h.dgm_id.to_be_bytes());
        out.extend_from_slice(&h.source_ip.octets());
        out.extend_from_slice(&h.source_port.to_be_bytes());
        match &self.body {
            DatagramBody::Data {
                packet_offset,
                source,
                destination,
                user_data,
            } => {
                let len = source.encoded_len() + destination.encoded_len() + user_data.len();
                out.extend_from_slice(&(len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
                out.extend_from_slice(&packet_offset.to_be_bytes());
                source.encode(&mut out);
                destination.encode(&mut out);
                out.extend_from_slice(user_data);
            }
            DatagramBody::Error { code } => out.push(*code),
            DatagramBody::Query { destination } => destination.encode(&mut out),
        }
        out
    }

    /// A whole (unfragmented: F set, M clear) datagram of the given type
    /// from a B node.
    pub fn data(
        msg_type: DatagramType,
        dgm_id: u16,
        source_ip: Ipv4Addr,
        source: NetbiosName,
        destination: NetbiosName,
        user_data: Vec<u8>,
    ) -> Self {
        Self {
            header: DatagramHeader {
                msg_type,
                flags: FLAG_FIRST,
                dgm_id,
                source_ip,
                source_port: crate::DATAGRAM_SERVICE_PORT,
            },
            body: DatagramBody::Data {
                packet_offset: 0,
                source,
                destination,
                user_data,
            },
        }
    }

    /// The destination name, for the types that carry one.
    pub fn destination(&self) -> Option<&NetbiosName> {
        match &self.body {
            DatagramBody::Data { destination, .. } | DatagramBody::Query { destination } => {
                Some(destination)
            }
            DatagramBody::Error { .. } => None,
        }
    }
}

/// FLAGS F: this is the first fragment.
pub const FLAG_FIRST: u8 = 0x02;
/// FLAGS M: more fragments follow.
pub const FLAG_MORE: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    fn browse_announcement() -> Datagram {
        Datagram::data(
            DatagramType::DirectGroup,
            0x4242,
            Ipv4Addr::new(192, 168, 1, 10),
            NetbiosName::new("NMBD", 0x00).unwrap(),
            NetbiosName::new("WORKGROUP", 0x1d).unwrap(),
            b"\xff\x53\x4d\x42 announcement".to_vec(),
        )
    }

    #[test]
    fn direct_group_layout_and_round_trip() {
        let d = browse_announcement();
        let wire = d.encode();
        assert_eq!(wire[0], 0x11);
        assert_eq!(wire[1], FLAG_FIRST);
        assert_eq!(&wire[2..4], &[0x42, 0x42]);
        assert_eq!(&wire[4..8], &[192, 168, 1, 10]);
        assert_eq!(&wire[8..10], &[0, 138]);
        // DGM_LENGTH: two 34-octet names and 17 octets of user data.
        assert_eq!(u16::from_be_bytes([wire[10], wire[11]]), 34 + 34 + 17);
        assert_eq!(wire.len(), 14 + 34 + 34 + 17);
        assert_eq!(Datagram::decode(&wire).unwrap(), d);
        assert_eq!(d.destination().unwrap().to_string(), "WORKGROUP<1d>");
    }

    #[test]
    fn error_and_query_round_trip() {
        let header = DatagramHeader {
            msg_type: DatagramType::Error,
            flags: 0,
            dgm_id: 1,
            source_ip: Ipv4Addr::new(10, 0, 0, 1),
            source_port: 138,
        };
        let e = Datagram {
            header,
            body: DatagramBody::Error { code: 0x82 },
        };
        assert_eq!(e.encode().len(), 11);
        assert_eq!(Datagram::decode(&e.encode()).unwrap(), e);
        let q = Datagram {
            header: DatagramHeader {
                msg_type: DatagramType::QueryRequest,
                ..header
            },
            body: DatagramBody::Query {
                destination: NetbiosName::new("PC", 0).unwrap(),
            },
        };
        assert_eq!(Datagram::decode(&q.encode()).unwrap(), q);
    }

    #[test]
    fn malformed_datagrams_are_typed_errors() {
        let wire = browse_announcement().encode();
        assert_eq!(Datagram::decode(&wire[..9]), Err(DatagramError::Short(9)));
        let mut t = wire.clone();
        t[0] = 0x20;
        assert_eq!(Datagram::decode(&t), Err(DatagramError::UnknownType(0x20)));
        assert_eq!(
            Datagram::decode(&wire[..wire.len() - 1]),
            Err(DatagramError::BadLength {
                dgm_length: 85,
                available: 84
            })
        );
        let mut short = wire.clone();
        short[10] = 0;
        short[11] = 20;
        assert!(matches!(
            Datagram::decode(&short),
            Err(DatagramError::Name(_))
        ));
    }
}
