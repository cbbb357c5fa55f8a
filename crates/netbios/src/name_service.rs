//! Name service packets (RFC 1002 §4.2): header, questions and resource
//! records, parsed and built. Parsing is bounded by the packet and by
//! [`MAX_RECORDS`]; every error is typed.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::name::{NameError, NetbiosName};

/// At most this many entries per section: a UDP name service packet is
/// small (RFC 1002 §4.2.1 keeps it within 576 octets), so more is garbage.
pub const MAX_RECORDS: usize = 32;

/// RFC 1002 §4.2.1.2: QUESTION_TYPE / RR_TYPE NB, general name service resource record.
pub const TYPE_NB: u16 = 0x0020;
/// RFC 1002 §4.2.1.2: NBSTAT, node status.
pub const TYPE_NBSTAT: u16 = 0x0021;
/// RFC 1002 §4.2.1.3: RR_TYPE NULL (used by WACK and redirects' absent data).
pub const TYPE_NULL: u16 = 0x000a;
/// RFC 1002 §4.2.1.2: QUESTION_CLASS / RR_CLASS IN.
pub const CLASS_IN: u16 = 0x0001;

/// Why a name service packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameServiceError {
    /// Fewer than the 12 octets of the header.
    #[error("name service packet of {0} octets is shorter than its 12-octet header")]
    ShortHeader(usize),
    /// The packet ended inside a question or record.
    #[error("the name service packet ends inside a question or record")]
    Truncated,
    /// A section count above [`MAX_RECORDS`].
    #[error("a name service packet announces {0} entries in one section, more than 32")]
    TooManyRecords(u16),
    /// A name could not be decoded.
    #[error("bad name in a name service packet: {0}")]
    Name(#[from] NameError),
    /// NB RDATA whose length is not a multiple of 6 (RFC 1002 §4.2.2).
    #[error("NB resource data of {0} octets is not a list of 6-octet entries")]
    BadNbData(usize),
    /// The packet lacks what its opcode requires (a question, an NB record).
    #[error("the name service packet lacks its {0}")]
    Missing(&'static str),
}

/// RFC 1002 §4.2.1.1: OPCODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// 0: name query.
    Query,
    /// 5: name registration (and overwrite).
    Registration,
    /// 6: name release.
    Release,
    /// 7: WACK, wait for acknowledgement (§4.2.16).
    Wack,
    /// 8: name refresh; 9 is the alternate code that deployed stacks send
    /// (RFC 1002 errata), read as the same.
    Refresh,
    /// 15: multi-homed name registration (MS-NBTE), read but not handled here.
    MultiHomedRegistration,
    /// Anything else.
    Other(u8),
}

impl Opcode {
    fn from_bits(v: u8) -> Self {
        match v {
            0 => Self::Query,
            5 => Self::Registration,
            6 => Self::Release,
            7 => Self::Wack,
            8 | 9 => Self::Refresh,
            15 => Self::MultiHomedRegistration,
            other => Self::Other(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::Query => 0,
            Self::Registration => 5,
            Self::Release => 6,
            Self::Wack => 7,
            Self::Refresh => 8,
            Self::MultiHomedRegistration => 15,
            Self::Other(v) => v & 0x0f,
        }
    }
}

/// RFC 1002 §4.2.1.1: RCODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// 0: no error.
    Ok,
    /// 1 FMT_ERR: the request was invalidly formatted.
    FormatError,
    /// 2 SRV_ERR: the server could not process the request.
    ServerFailure,
    /// 3 NAM_ERR: the name does not exist.
    NameError,
    /// 4 IMP_ERR: unsupported request.
    NotImplemented,
    /// 5 RFS_ERR: refused for policy reasons.
    Refused,
    /// 6 ACT_ERR: the name is owned by another node.
    Active,
    /// 7 CFT_ERR: the name is in conflict.
    Conflict,
    /// Anything else.
    Other(u8),
}

impl Rcode {
    fn from_bits(v: u8) -> Self {
        match v {
            0 => Self::Ok,
            1 => Self::FormatError,
            2 => Self::ServerFailure,
            3 => Self::NameError,
            4 => Self::NotImplemented,
            5 => Self::Refused,
            6 => Self::Active,
            7 => Self::Conflict,
            other => Self::Other(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::FormatError => 1,
            Self::ServerFailure => 2,
            Self::NameError => 3,
            Self::NotImplemented => 4,
            Self::Refused => 5,
            Self::Active => 6,
            Self::Conflict => 7,
            Self::Other(v) => v & 0x0f,
        }
    }

    /// The RFC's mnemonic, for log lines.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::FormatError => "FMT_ERR",
            Self::ServerFailure => "SRV_ERR",
            Self::NameError => "NAM_ERR",
            Self::NotImplemented => "IMP_ERR",
            Self::Refused => "RFS_ERR",
            Self::Active => "ACT_ERR",
            Self::Conflict => "CFT_ERR",
            Self::Other(_) => "unknown RCODE",
        }
    }
}

/// RFC 1002 §4.2.1.1 NM_FLAGS bits (7 bits: AA TC RD RA 0 0 B).
pub mod flags {
    /// Authoritative answer.
    pub const AA: u8 = 0x40;
    /// Truncation.
    pub const TC: u8 = 0x20;
    /// Recursion desired (sent to a name server, not broadcast).
    pub const RD: u8 = 0x10;
    /// Recursion available.
    pub const RA: u8 = 0x08;
    /// Broadcast.
    pub const B: u8 = 0x01;
}

/// RFC 1002 §4.2.1.1: the 12-octet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// NAME_TRN_ID.
    pub trn_id: u16,
    /// R: a response.
    pub response: bool,
    /// OPCODE.
    pub opcode: Opcode,
    /// NM_FLAGS (see [`flags`]).
    pub nm_flags: u8,
    /// RCODE.
    pub rcode: Rcode,
}

impl Header {
    /// The 16 bits after NAME_TRN_ID, as a WACK echoes them (§4.2.16).
    pub fn flags_word(&self) -> u16 {
        (u16::from(self.response) << 15)
            | (u16::from(self.opcode.bits()) << 11)
            | (u16::from(self.nm_flags & 0x7f) << 4)
            | u16::from(self.rcode.bits())
    }

    fn from_word(trn_id: u16, w: u16) -> Self {
        Self {
            trn_id,
            response: w & 0x8000 != 0,
            opcode: Opcode::from_bits(((w >> 11) & 0x0f) as u8),
            nm_flags: ((w >> 4) & 0x7f) as u8,
            rcode: Rcode::from_bits((w & 0x0f) as u8),
        }
    }

    /// Whether the B flag is set.
    pub fn is_broadcast(&self) -> bool {
        self.nm_flags & flags::B != 0
    }
}

/// RFC 1002 §4.2.1.2: a question entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// QUESTION_NAME.
    pub name: NetbiosName,
    /// QUESTION_TYPE (NB or NBSTAT).
    pub qtype: u16,
    /// QUESTION_CLASS (IN).
    pub qclass: u16,
}

/// RFC 1002 §4.2.1.3: a resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// RR_NAME.
    pub name: NetbiosName,
    /// RR_TYPE.
    pub rtype: u16,
    /// RR_CLASS.
    pub rclass: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA, uninterpreted.
    pub rdata: Vec<u8>,
}

/// RFC 1002 §4.2.2: ONT, the owner node type in NB_FLAGS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// B node (broadcast).
    B,
    /// P node (point to point, to a name server).
    P,
    /// M node (mixed).
    M,
    /// The reserved value 3 (H node in later practice).
    H,
}

/// One NB_FLAGS + NB_ADDRESS entry of NB RDATA (RFC 1002 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbEntry {
    /// G: a group name.
    pub group: bool,
    /// ONT.
    pub node_type: NodeType,
    /// NB_ADDRESS.
    pub address: Ipv4Addr,
}

impl NbEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        let ont: u16 = match self.node_type {
            NodeType::B => 0,
            NodeType::P => 1,
            NodeType::M => 2,
            NodeType::H => 3,
        };
        let flags = (u16::from(self.group) << 15) | (ont << 13);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&self.address.octets());
    }
}

impl ResourceRecord {
    /// An NB record with the given entries.
    pub fn nb(name: NetbiosName, ttl: u32, entries: &[NbEntry]) -> Self {
        let mut rdata = Vec::with_capacity(6 * entries.len());
        for e in entries {
            e.encode(&mut rdata);
        }
        Self {
            name,
            rtype: TYPE_NB,
            rclass: CLASS_IN,
            ttl,
            rdata,
        }
    }

    /// The NB entries of this record's RDATA (RFC 1002 §4.2.2, §4.2.13).
    pub fn nb_entries(&self) -> Result<Vec<NbEntry>, NameServiceError> {
        if !self.rdata.len().is_multiple_of(6) {
            return Err(NameServiceError::BadNbData(self.rdata.len()));
        }
        Ok(self
            .rdata
            .chunks_exact(6)
            .map(|c| {
                let flags = u16::from_be_bytes([c[0], c[1]]);
                NbEntry {
                    group: flags & 0x8000 != 0,
                    node_type: match (flags >> 13) & 3 {
                        0 => NodeType::B,
                        1 => NodeType::P,
                        2 => NodeType::M,
                        _ => NodeType::H,
                    },
                    address: Ipv4Addr::new(c[2], c[3], c[4], c[5]),
                }
            })
            .collect())
    }
}

/// A name service packet (RFC 1002 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePacket {
    /// The header.
    pub header: Header,
    /// The question section.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<ResourceRecord>,
    /// The authority section.
    pub authority: Vec<ResourceRecord>,
    /// The additional section.
    pub additional: Vec<ResourceRecord>,
}

struct Reader<'a> {
    packet: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u16(&mut self) -> Result<u16, NameServiceError> {
        let b = self
            .packet
            .get(self.pos..self.pos + 2)
            .ok_or(NameServiceError::Truncated)?;
        self.pos += 2;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, NameServiceError> {
        let hi = self.u16()?;
        let lo = self.u16()?;
        Ok((u32::from(hi) << 16) | u32::from(lo))
    }

    fn name(&mut self) -> Result<NetbiosName, NameServiceError> {
        let (name, end) = NetbiosName::decode(self.packet, self.pos, true)?;
        self.pos = end;
        Ok(name)
    }

    fn record(&mut self) -> Result<ResourceRecord, NameServiceError> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let rclass = self.u16()?;
        let ttl = self.u32()?;
        let len = usize::from(self.u16()?);
        let rdata = self
            .packet
            .get(self.pos..self.pos + len)
            .ok_or(NameServiceError::Truncated)?
            .to_vec();
        self.pos += len;
        Ok(ResourceRecord {
            name,
            rtype,
            rclass,
            ttl,
            rdata,
        })
    }
}

fn checked_count(n: u16) -> Result<usize, NameServiceError> {
    if usize::from(n) > MAX_RECORDS {
        Err(NameServiceError::TooManyRecords(n))
    } else {
        Ok(usize::from(n))
    }
}

impl NamePacket {
    /// Parses a UDP payload from port 137. Trailing octets after the last
    /// record are ignored, as DNS resolvers do.
    pub fn decode(packet: &[u8]) -> Result<Self, NameServiceError> {
        if packet.len() < 12 {
            return Err(NameServiceError::ShortHeader(packet.len()));
        }
        let word = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
        let header = Header::from_word(word(0), word(2));
        let qd = checked_count(word(4))?;
        let an = checked_count(word(6))?;
        let ns = checked_count(word(8))?;
        let ar = checked_count(word(10))?;
        let mut r = Reader { packet, pos: 12 };
        let mut questions = Vec::with_capacity(qd);
        for _ in 0..qd {
            let name = r.name()?;
            let qtype = r.u16()?;
            let qclass = r.u16()?;
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        let mut section = |n: usize| -> Result<Vec<ResourceRecord>, NameServiceError> {
            (0..n).map(|_| r.record()).collect()
        };
        let answers = section(an)?;
        let authority = section(ns)?;
        let additional = section(ar)?;
        Ok(Self {
            header,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// Builds the packet. An additional record whose name is that of the
    /// first question is written as a label string pointer to offset 12,
    /// as RFC 1002 §4.2.2 shows for registration requests.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.header.trn_id.to_be_bytes());
        out.extend_from_slice(&self.header.flags_word().to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authority.len(),
            self.additional.len(),
        ] {
            out.extend_from_slice(&(n.min(usize::from(u16::MAX)) as u16).to_be_bytes());
        }
        for q in &self.questions {
            q.name.encode(&mut out);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let first_question = self.questions.first().map(|q| &q.name);
        for (i, rr) in self
            .answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
            .enumerate()
        {
            let in_additional = i >= self.answers.len() + self.authority.len();
            if in_additional && first_question == Some(&rr.name) {
                out.extend_from_slice(&[0xc0, 0x0c]);
            } else {
                rr.name.encode(&mut out);
            }
            out.extend_from_slice(&rr.rtype.to_be_bytes());
            out.extend_from_slice(&rr.rclass.to_be_bytes());
            out.extend_from_slice(&rr.ttl.to_be_bytes());
            let len = rr.rdata.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&rr.rdata[..len]);
        }
        out
    }

    /// The name the packet is about: the first question's, else the first
    /// record's (responses carry it in the answer section).
    pub fn subject(&self) -> Option<&NetbiosName> {
        self.questions
            .first()
            .map(|q| &q.name)
            .or_else(|| self.answers.first().map(|r| &r.name))
            .or_else(|| self.additional.first().map(|r| &r.name))
    }

    /// The first NB entry of the first NB record (additional section for
    /// requests, answer section for responses).
    pub fn first_nb_entry(&self) -> Result<NbEntry, NameServiceError> {
        let rr = self
            .additional
            .iter()
            .chain(&self.answers)
            .find(|r| r.rtype == TYPE_NB)
            .ok_or(NameServiceError::Missing("NB resource record"))?;
        rr.nb_entries()?
            .first()
            .copied()
            .ok_or(NameServiceError::Missing("NB entry"))
    }

    /// The TTL of the first NB record (requests carry it in the additional
    /// section), 0 if none.
    pub fn nb_ttl(&self) -> u32 {
        self.additional
            .iter()
            .chain(&self.answers)
            .find(|r| r.rtype == TYPE_NB)
            .map_or(0, |r| r.ttl)
    }

    fn request(
        trn_id: u16,
        opcode: Opcode,
        nm_flags: u8,
        name: NetbiosName,
        record: Option<ResourceRecord>,
    ) -> Self {
        Self {
            header: Header {
                trn_id,
                response: false,
                opcode,
                nm_flags,
                rcode: Rcode::Ok,
            },
            questions: vec![Question {
                name,
                qtype: TYPE_NB,
                qclass: CLASS_IN,
            }],
            answers: Vec::new(),
            authority: Vec::new(),
            additional: record.into_iter().collect(),
        }
    }

    fn response(
        trn_id: u16,
        opcode: Opcode,
        nm_flags: u8,
        rcode: Rcode,
        answer: ResourceRecord,
    ) -> Self {
        Self {
            header: Header {
                trn_id,
                response: true,
                opcode,
                nm_flags,
                rcode,
            },
            questions: Vec::new(),
            answers: vec![answer],
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }

    /// RFC 1002 §4.2.2 NAME REGISTRATION REQUEST: RD set; B set when
    /// broadcast on the LAN.
    pub fn registration_request(
        trn_id: u16,
        name: NetbiosName,
        ttl: u32,
        entry: NbEntry,
        broadcast: bool,
    ) -> Self {
        let rr = ResourceRecord::nb(name.clone(), ttl, &[entry]);
        let f = flags::RD | if broadcast { flags::B } else { 0 };
        Self::request(trn_id, Opcode::Registration, f, name, Some(rr))
    }

    /// RFC 1002 §4.2.4 NAME REFRESH REQUEST.
    pub fn refresh_request(trn_id: u16, name: NetbiosName, ttl: u32, entry: NbEntry) -> Self {
        let rr = ResourceRecord::nb(name.clone(), ttl, &[entry]);
        Self::request(trn_id, Opcode::Refresh, 0, name, Some(rr))
    }

    /// RFC 1002 §4.2.9 NAME RELEASE REQUEST (B set when broadcast).
    pub fn release_request(
        trn_id: u16,
        name: NetbiosName,
        entry: NbEntry,
        broadcast: bool,
    ) -> Self {
        let rr = ResourceRecord::nb(name.clone(), 0, &[entry]);
        let f = if broadcast { flags::B } else { 0 };
        Self::request(trn_id, Opcode::Release, f, name, Some(rr))
    }

    /// RFC 1002 §4.2.12 NAME QUERY REQUEST (B set when broadcast, RD always).
    pub fn query_request(trn_id: u16, name: NetbiosName, broadcast: bool) -> Self {
        let f = flags::RD | if broadcast { flags::B } else { 0 };
        Self::request(trn_id, Opcode::Query, f, name, None)
    }

    /// RFC 1002 §4.2.5 POSITIVE (rcode Ok) or §4.2.6 NEGATIVE NAME
    /// REGISTRATION RESPONSE: AA, RD and RA set, the NB record echoed.
    pub fn registration_response(
        trn_id: u16,
        name: NetbiosName,
        rcode: Rcode,
        ttl: u32,
        entry: NbEntry,
    ) -> Self {
        let rr = ResourceRecord::nb(name, ttl, &[entry]);
        let f = flags::AA | flags::RD | flags::RA;
        Self::response(trn_id, Opcode::Registration, f, rcode, rr)
    }

    /// RFC 1002 §4.2.10 POSITIVE (rcode Ok) or §4.2.11 NEGATIVE NAME
    /// RELEASE RESPONSE: AA set, TTL 0.
    pub fn release_response(trn_id: u16, name: NetbiosName, rcode: Rcode, entry: NbEntry) -> Self {
        let rr = ResourceRecord::nb(name, 0, &[entry]);
        Self::response(trn_id, Opcode::Release, flags::AA, rcode, rr)
    }

    /// RFC 1002 §4.2.13 POSITIVE NAME QUERY RESPONSE: AA and RD set, the
    /// owners' entries.
    pub fn positive_query_response(
        trn_id: u16,
        name: NetbiosName,
        ttl: u32,
        entries: &[NbEntry],
    ) -> Self {
        let rr = ResourceRecord::nb(name, ttl, entries);
        Self::response(trn_id, Opcode::Query, flags::AA | flags::RD, Rcode::Ok, rr)
    }

    /// RFC 1002 §4.2.14 NEGATIVE NAME QUERY RESPONSE: a NULL record.
    pub fn negative_query_response(trn_id: u16, name: NetbiosName, rcode: Rcode) -> Self {
        let rr = ResourceRecord {
            name,
            rtype: TYPE_NULL,
            rclass: CLASS_IN,
            ttl: 0,
            rdata: Vec::new(),
        };
        Self::response(trn_id, Opcode::Query, flags::AA | flags::RD, rcode, rr)
    }

    /// RFC 1002 §4.2.16 WAIT FOR ACKNOWLEDGEMENT (WACK) RESPONSE: a NULL
    /// record whose TTL is how long the requester should wait, and whose
    /// RDATA echoes the request's opcode and flags word.
    pub fn wack(request: &Header, name: NetbiosName, ttl: u32) -> Self {
        let rr = ResourceRecord {
            name,
            rtype: TYPE_NULL,
            rclass: CLASS_IN,
            ttl,
            rdata: request.flags_word().to_be_bytes().to_vec(),
        };
        Self::response(request.trn_id, Opcode::Wack, flags::AA, Rcode::Ok, rr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(group: bool) -> NbEntry {
        NbEntry {
            group,
            node_type: NodeType::B,
            address: Ipv4Addr::new(10, 0, 10, 20),
        }
    }

    /// RFC 1002 §4.2.2's layout for a broadcast registration of FRED<00>:
    /// header, question, and an additional record whose name is the
    /// pointer 0xC00C.
    #[test]
    fn registration_request_layout() {
        let name = NetbiosName::new("FRED", 0).unwrap();
        let p = NamePacket::registration_request(0x1234, name.clone(), 300_000, entry(false), true);
        let wire = p.encode();
        assert_eq!(&wire[..2], &[0x12, 0x34]);
        // R=0, OPCODE=5, NM_FLAGS = RD|B (0x11), RCODE=0: 0 0101 0010001 0000.
        assert_eq!(&wire[2..4], &[0x29, 0x10]);
        assert_eq!(&wire[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(wire[12], 0x20);
        assert_eq!(
            &wire[13..45],
            b"EGFCEFEECACACACACACACACACACACAAA".as_slice()
        );
        assert_eq!(&wire[46..50], &[0x00, 0x20, 0x00, 0x01]);
        assert_eq!(&wire[50..52], &[0xc0, 0x0c]);
        // NB, IN, TTL 300000, RDLENGTH 6, NB_FLAGS 0 (unique, B), address.
        assert_eq!(
            &wire[52..],
            &[0, 0x20, 0, 1, 0x00, 0x04, 0x93, 0xe0, 0, 6, 0, 0, 10, 0, 10, 20]
        );
        let back = NamePacket::decode(&wire).unwrap();
        assert_eq!(back, p);
        assert!(back.header.is_broadcast());
        assert_eq!(back.header.opcode, Opcode::Registration);
        assert_eq!(back.first_nb_entry().unwrap(), entry(false));
        assert_eq!(back.nb_ttl(), 300_000);
    }

    #[test]
    fn responses_round_trip_with_rcodes() {
        let name = NetbiosName::new("WORKGROUP", 0x1e).unwrap();
        for rcode in [
            Rcode::Ok,
            Rcode::FormatError,
            Rcode::ServerFailure,
            Rcode::NameError,
            Rcode::NotImplemented,
            Rcode::Refused,
            Rcode::Active,
            Rcode::Conflict,
        ] {
            let p = NamePacket::registration_response(7, name.clone(), rcode, 60, entry(true));
            let back = NamePacket::decode(&p.encode()).unwrap();
            assert_eq!(back.header.rcode, rcode);
            assert!(back.header.response);
            assert!(back.first_nb_entry().unwrap().group);
            assert_eq!(back, p);
        }
        let q =
            NamePacket::positive_query_response(9, name.clone(), 0, &[entry(false), entry(true)]);
        let back = NamePacket::decode(&q.encode()).unwrap();
        assert_eq!(back.answers[0].nb_entries().unwrap().len(), 2);
        let n = NamePacket::negative_query_response(9, name.clone(), Rcode::NameError);
        assert_eq!(NamePacket::decode(&n.encode()).unwrap(), n);
        let req = NamePacket::registration_request(3, name.clone(), 0, entry(false), false);
        let w = NamePacket::wack(&req.header, name.clone(), 2);
        let back = NamePacket::decode(&w.encode()).unwrap();
        assert_eq!(back.header.opcode, Opcode::Wack);
        assert_eq!(back.answers[0].rdata, req.header.flags_word().to_be_bytes());
        let rel = NamePacket::release_request(4, name.clone(), entry(false), true);
        assert_eq!(NamePacket::decode(&rel.encode()).unwrap(), rel);
        let rr = NamePacket::release_response(4, name.clone(), Rcode::Ok, entry(false));
        assert_eq!(NamePacket::decode(&rr.encode()).unwrap(), rr);
        let rf = NamePacket::refresh_request(5, name.clone(), 10, entry(false));
        assert_eq!(NamePacket::decode(&rf.encode()).unwrap(), rf);
        let qr = NamePacket::query_request(6, name, true);
        assert_eq!(NamePacket::decode(&qr.encode()).unwrap(), qr);
    }

    #[test]
    fn refresh_alternate_opcode_nine() {
        let name = NetbiosName::new("PC", 0).unwrap();
        let mut wire = NamePacket::refresh_request(1, name, 10, entry(false)).encode();
        // Opcode 9 (0x48 in the high octet) instead of 8 (0x40).
        wire[2] = (wire[2] & 0x87) | (9 << 3);
        assert_eq!(
            NamePacket::decode(&wire).unwrap().header.opcode,
            Opcode::Refresh
        );
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        assert_eq!(
            NamePacket::decode(&[0; 5]),
            Err(NameServiceError::ShortHeader(5))
        );
        let mut many = vec![0u8; 12];
        many[4] = 0xff;
        assert_eq!(
            NamePacket::decode(&many),
            Err(NameServiceError::TooManyRecords(0xff00))
        );
        let name = NetbiosName::new("PC", 0).unwrap();
        let wire = NamePacket::registration_request(1, name, 10, entry(false), true).encode();
        assert_eq!(
            NamePacket::decode(&wire[..wire.len() - 3]),
            Err(NameServiceError::Truncated)
        );
        let mut odd = NamePacket::decode(&wire).unwrap();
        odd.additional[0].rdata.push(0);
        assert_eq!(odd.first_nb_entry(), Err(NameServiceError::BadNbData(7)));
    }
}
