//! The DHCP relay agent for remote access clients: a client's DHCPINFORM
//! (Windows sends one after IPCP, for routes and the domain name) goes to
//! the configured intranet DHCP servers, and their DHCPACK back to the
//! client (tcpip-fundamentals ch. 14, "Configure the DHCP Relay Agent").
//!
//! RFC 1542 §4.1.1 / RFC 2131 §4.3.5: the relay puts its own address in
//! giaddr and increments hops; a server answers to giaddr, port 67; the
//! relay sends the answer to the client's ciaddr, port 68.
//!
//! Only DHCPINFORM is relayed: remote access clients get their addresses
//! from IPCP, never by DISCOVER. Messages are forwarded byte for byte
//! except the two fields the relay owns (hops, giaddr), so options the
//! relay does not know pass unchanged. Answers are matched to requests by
//! xid in a bounded table, and only from the configured servers.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{MessageType, Opcode};

use crate::message::{self, MessageError};

/// RFC 1542 §4.1.1: discard requests that went through this many relays.
pub const MAX_HOPS: u8 = 4;
/// Requests waiting for an answer at most.
pub const MAX_PENDING: usize = 256;
/// How long an answer is waited for.
pub const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Offset of the hops field (RFC 2131 §2, figure 1).
const HOPS: usize = 3;
/// Offset of giaddr.
const GIADDR: std::ops::Range<usize> = 24..28;

/// Why a message is not relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("not a DHCPINFORM request (only INFORM is relayed for remote access clients)")]
    NotInform,
    #[error("ciaddr {ciaddr} is not the sender's address {sender}")]
    Spoofed { ciaddr: Ipv4Addr, sender: Ipv4Addr },
    #[error("giaddr is already set: a client does not relay")]
    AlreadyRelayed,
    #[error("too many hops ({0})")]
    Hops(u8),
    #[error("{0} requests already wait for an answer")]
    Busy(usize),
    #[error("answer from {0}, which is not a configured DHCP server")]
    UnknownServer(Ipv4Addr),
    #[error("no request waits for this answer (xid {0:#010x})")]
    Unexpected(u32),
    #[error("not a DHCPACK answer")]
    NotAck,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub bytes: Vec<u8>,
    /// Port 67 of each server, or the client's port 68.
    pub to: Vec<(Ipv4Addr, u16)>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    client: Ipv4Addr,
    until: Instant,
}

/// The relay's state.
#[derive(Debug)]
pub struct Relay {
    servers: Vec<Ipv4Addr>,
    giaddr: Ipv4Addr,
    pending: HashMap<u32, Pending>,
}

impl Relay {
    /// A relay to `servers` whose own address (giaddr, where the servers
    /// answer) is `giaddr`.
    pub fn new(servers: Vec<Ipv4Addr>, giaddr: Ipv4Addr) -> Relay {
        Relay {
            servers,
            giaddr,
            pending: HashMap::new(),
        }
    }

    pub fn giaddr(&self) -> Ipv4Addr {
        self.giaddr
    }

    /// Whether `ip` is one of the configured servers.
    pub fn is_server(&self, ip: Ipv4Addr) -> bool {
        self.servers.contains(&ip)
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A request from a remote access client whose packet came from
    /// `source`.
    pub fn handle_client(
        &mut self,
        now: Instant,
        source: Ipv4Addr,
        bytes: &[u8],
    ) -> Result<Relayed, RelayError> {
        let msg = message::decode(bytes)?;
        if msg.opcode() != Opcode::BootRequest
            || message::message_type(&msg) != Some(MessageType::Inform)
        {
            return Err(RelayError::NotInform);
        }
        // RFC 2131 §4.4.3: an INFORM carries the client's address in
        // ciaddr, and the answer goes there: it must be the sender's own,
        // or a client could aim answers at another.
        if msg.ciaddr() != source || source.is_unspecified() {
            return Err(RelayError::Spoofed {
                ciaddr: msg.ciaddr(),
                sender: source,
            });
        }
        if !msg.giaddr().is_unspecified() {
            return Err(RelayError::AlreadyRelayed);
        }
        if msg.hops() >= MAX_HOPS {
            return Err(RelayError::Hops(msg.hops()));
        }
        self.expire(now);
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&msg.xid()) {
            return Err(RelayError::Busy(self.pending.len()));
        }
        self.pending.insert(
            msg.xid(),
            Pending {
                client: source,
                until: now + ANSWER_WAIT,
            },
        );
        let mut out = bytes.to_vec();
        out[HOPS] = msg.hops() + 1;
        out[GIADDR].copy_from_slice(&self.giaddr.octets());
        Ok(Relayed {
            bytes: out,
            to: self
                .servers
                .iter()
                .map(|s| (*s, message::SERVER_PORT))
                .collect(),
        })
    }

    /// An answer that arrived on port 67 from `source`.
    pub fn handle_server(
        &mut self,
        now: Instant,
        source: Ipv4Addr,
        bytes: &[u8],
    ) -> Result<Relayed, RelayError> {
        if !self.servers.contains(&source) {
            return Err(RelayError::UnknownServer(source));
        }
        let msg = message::decode(bytes)?;
        if msg.opcode() != Opcode::BootReply
            || message::message_type(&msg) != Some(MessageType::Ack)
        {
            return Err(RelayError::NotAck);
        }
        self.expire(now);
        // The first answer wins; the others (several servers) find
        // nothing waiting.
        let pending = self
            .pending
            .remove(&msg.xid())
            .ok_or(RelayError::Unexpected(msg.xid()))?;
        Ok(Relayed {
            bytes: bytes.to_vec(),
            to: vec![(pending.client, message::CLIENT_PORT)],
        })
    }

    fn expire(&mut self, now: Instant) {
        self.pending.retain(|_, p| p.until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{DhcpOption, Encodable, Message};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 101);
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);
    const GIADDR: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 2);

    fn inform(xid: u32, ciaddr: Ipv4Addr) -> Vec<u8> {
        let mut m = Message::new_with_id(
            xid,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[0, 0x15, 0x5d, 1, 2, 3],
        );
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Inform));
        m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
            dhcproto::v4::OptionCode::DomainName,
        ]));
        m.to_vec().unwrap()
    }

    fn ack(xid: u32) -> Vec<u8> {
        let mut m = Message::new_with_id(
            xid,
            CLIENT,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            GIADDR,
            &[0, 0x15, 0x5d, 1, 2, 3],
        );
        m.set_opcode(Opcode::BootReply);
        m.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Ack));
        m.opts_mut()
            .insert(DhcpOption::DomainName("corp.example".into()));
        m.to_vec().unwrap()
    }

    #[test]
    fn inform_goes_to_every_server_and_the_ack_back_to_the_client() {
        let other = Ipv4Addr::new(10, 80, 0, 3);
        let mut r = Relay::new(vec![SERVER, other], GIADDR);
        let now = Instant::now();
        let req = inform(0xabcd, CLIENT);
        let out = r.handle_client(now, CLIENT, &req).unwrap();
        assert_eq!(out.to, [(SERVER, 67), (other, 67)]);
        // Only hops and giaddr changed (RFC 1542 §4.1.1).
        assert_eq!(out.bytes[3], 1);
        assert_eq!(&out.bytes[24..28], &[10, 80, 0, 2]);
        let mut same = out.bytes.clone();
        same[3] = req[3];
        same[24..28].copy_from_slice(&req[24..28]);
        assert_eq!(same, req);

        let back = r.handle_server(now, SERVER, &ack(0xabcd)).unwrap();
        assert_eq!(back.to, [(CLIENT, 68)]);
        assert_eq!(back.bytes, ack(0xabcd));
        // The second server's answer finds nothing waiting.
        assert_eq!(
            r.handle_server(now, other, &ack(0xabcd)),
            Err(RelayError::Unexpected(0xabcd))
        );
    }

    #[test]
    fn refuses_what_it_must_not_relay() {
        let mut r = Relay::new(vec![SERVER], GIADDR);
        let now = Instant::now();
        assert!(matches!(
            r.handle_client(now, Ipv4Addr::new(10, 80, 0, 102), &inform(1, CLIENT)),
            Err(RelayError::Spoofed { .. })
        ));
        let mut relayed = inform(1, CLIENT);
        relayed[24] = 1;
        assert_eq!(
            r.handle_client(now, CLIENT, &relayed),
            Err(RelayError::AlreadyRelayed)
        );
        let mut hops = inform(1, CLIENT);
        hops[3] = MAX_HOPS;
        assert_eq!(
            r.handle_client(now, CLIENT, &hops),
            Err(RelayError::Hops(MAX_HOPS))
        );
        // A DISCOVER is not relayed.
        let discover = crate::message::discover(&crate::message::Identity { chaddr: [2; 6] }, 5);
        assert_eq!(
            r.handle_client(now, CLIENT, &discover),
            Err(RelayError::NotInform)
        );
        // Answers from elsewhere, or unasked for, are dropped.
        r.handle_client(now, CLIENT, &inform(9, CLIENT)).unwrap();
        assert_eq!(
            r.handle_server(now, Ipv4Addr::new(10, 9, 9, 9), &ack(9)),
            Err(RelayError::UnknownServer(Ipv4Addr::new(10, 9, 9, 9)))
        );
        assert_eq!(
            r.handle_server(now, SERVER, &ack(8)),
            Err(RelayError::Unexpected(8))
        );
        // After the wait, the request is forgotten.
        let later = now + ANSWER_WAIT + Duration::from_secs(1);
        assert_eq!(
            r.handle_server(later, SERVER, &ack(9)),
            Err(RelayError::Unexpected(9))
        );
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn pending_table_is_bounded() {
        let mut r = Relay::new(vec![SERVER], GIADDR);
        let now = Instant::now();
        for xid in 0..MAX_PENDING as u32 {
            r.handle_client(now, CLIENT, &inform(xid, CLIENT)).unwrap();
        }
        assert_eq!(
            r.handle_client(now, CLIENT, &inform(99_999, CLIENT)),
            Err(RelayError::Busy(MAX_PENDING))
        );
        // Once they expire there is room again.
        let later = now + ANSWER_WAIT + Duration::from_secs(1);
        r.handle_client(later, CLIENT, &inform(99_999, CLIENT))
            .unwrap();
        assert_eq!(r.pending(), 1);
    }
}
