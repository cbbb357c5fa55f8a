//! DHCPv4 messages as this crate uses them: the requests a lease sends
//! (built with `dhcproto`) and a checked, typed view of the replies it
//! reads.
//!
//! Everything read from the network goes through [`decode`], which bounds
//! the length and refuses what `dhcproto` would accept but later trip over
//! (a hardware address length above 16 makes `Message::chaddr` panic).

use std::net::Ipv4Addr;

use dhcproto::v4::{
    self, Decodable, Decoder, DhcpOption, Encodable, Flags, HType, Message, MessageType, OptionCode,
};

/// The largest DHCP message accepted. RFC 2131 §2 only requires 576-byte
/// messages; anything beyond one Ethernet payload is not a real answer and
/// is refused before it is parsed, so a hostile peer cannot make us
/// allocate more.
pub const MAX_MESSAGE: usize = 1500;

/// The server port (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// The client port (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;

/// Why received bytes are not a usable DHCP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("DHCP message of {0} bytes is longer than {MAX_MESSAGE}")]
    TooLong(usize),
    #[error("malformed DHCP message: {0}")]
    Malformed(String),
    #[error("hardware address length {0} is above 16")]
    HardwareLength(u8),
    #[error("no DHCP message type option (plain BOOTP)")]
    NoMessageType,
    #[error("the magic cookie is not 99.130.83.99 (RFC 2131 §3)")]
    BadMagic,
}

/// Decodes and sanity-checks a DHCP message.
pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(MessageError::TooLong(bytes.len()));
    }
    // RFC 2131 §3: the options field starts with the magic cookie at
    // offset 236; dhcproto does not check it.
    if bytes.get(236..240) != Some(&v4::MAGIC[..]) {
        return Err(MessageError::BadMagic);
    }
    check_option_lengths(&bytes[240..])?;
    let msg = Message::decode(&mut Decoder::new(bytes))
        .map_err(|e| MessageError::Malformed(e.to_string()))?;
    if msg.hlen() > 16 {
        return Err(MessageError::HardwareLength(msg.hlen()));
    }
    Ok(msg)
}

/// Options whose length `dhcproto` only checks with `debug_assert!` (a
/// hostile length panics a debug build and desynchronises a release one),
/// with the length it expects. dhcproto concatenates directly adjacent
/// occurrences of one option (RFC 3396), so a run of them counts as one.
const FIXED_LENGTHS: [(u8, usize); 6] = [
    (80, 0),  // Rapid Commit, RFC 4039 §4
    (94, 3),  // Client Network Interface Identifier, RFC 4578 §2.2
    (152, 4), // RFC 6926 §6.2.3 ...
    (153, 4),
    (154, 4),
    (155, 4), // ... §6.2.6
];
/// Client FQDN (RFC 4702 §2) has three fixed octets before the name.
const CLIENT_FQDN: u8 = 81;

/// One option (after concatenation) as dhcproto will see it.
fn check_option(code: u8, len: usize) -> Result<(), MessageError> {
    let bad = |want: &str| {
        Err(MessageError::Malformed(format!(
            "option {code} is {len} bytes long, {want} expected"
        )))
    };
    if let Some((_, want)) = FIXED_LENGTHS.iter().find(|(c, _)| *c == code) {
        if len != *want {
            return bad(&want.to_string());
        }
    }
    if code == CLIENT_FQDN && len < 3 {
        return bad("at least 3");
    }
    Ok(())
}

/// Walks the options (RFC 2132 §2: pad, end, or code-length-value) the
/// way dhcproto does and refuses the lengths it would trip over (see
/// [`FIXED_LENGTHS`]).
fn check_option_lengths(options: &[u8]) -> Result<(), MessageError> {
    // The run of adjacent occurrences of one option: (code, total length).
    let mut run: Option<(u8, usize)> = None;
    let mut i = 0;
    while i < options.len() {
        let code = options[i];
        if let Some((c, total)) = run {
            if c != code {
                check_option(c, total)?;
                run = None;
            }
        }
        match code {
            0 => i += 1,
            255 => break,
            _ => {
                let len = usize::from(*options.get(i + 1).unwrap_or(&0));
                run = Some(match run {
                    Some((c, total)) => (c, total + len),
                    None => (code, len),
                });
                i += 2 + len;
            }
        }
    }
    match run {
        Some((c, total)) => check_option(c, total),
        None => Ok(()),
    }
}

/// The DHCP message type (option 53) of a message.
pub fn message_type(msg: &Message) -> Option<MessageType> {
    // Not `DhcpOptions::msg_type`: it has an `unreachable!` for an option
    // 53 that is not of the expected variant.
    match msg.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => Some(*t),
        _ => None,
    }
}

/// A server's answer to one of our requests, reduced to what the lease
/// engine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    /// The client hardware address (at most 16 bytes, checked).
    pub chaddr: Vec<u8>,
    /// The address offered or acknowledged.
    pub yiaddr: Ipv4Addr,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 58, seconds.
    pub renewal_time: Option<u32>,
    /// Option 59, seconds.
    pub rebinding_time: Option<u32>,
}

/// Parses bytes received on the client port as a server reply.
pub fn parse_reply(bytes: &[u8]) -> Result<Reply, MessageError> {
    let msg = decode(bytes)?;
    if msg.opcode() != v4::Opcode::BootReply {
        return Err(MessageError::Malformed("not a BOOTREPLY".into()));
    }
    let kind = message_type(&msg).ok_or(MessageError::NoMessageType)?;
    let opts = msg.opts();
    let u32_opt = |code| match opts.get(code) {
        Some(DhcpOption::AddressLeaseTime(v))
        | Some(DhcpOption::Renewal(v))
        | Some(DhcpOption::Rebinding(v)) => Some(*v),
        _ => None,
    };
    Ok(Reply {
        kind,
        xid: msg.xid(),
        chaddr: msg.chaddr().to_vec(),
        yiaddr: msg.yiaddr(),
        server_id: match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
            _ => None,
        },
        lease_time: u32_opt(OptionCode::AddressLeaseTime),
        renewal_time: u32_opt(OptionCode::Renewal),
        rebinding_time: u32_opt(OptionCode::Rebinding),
    })
}

/// Who a lease is to the DHCP server: its own hardware address and client
/// identifier. RRAS leases every address under a distinct identity, so the
/// server sees one client per address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub chaddr: [u8; 6],
}

impl Identity {
    /// RFC 2132 §9.14: type 1 (Ethernet) followed by the hardware address,
    /// as most clients send it.
    pub fn client_id(&self) -> Vec<u8> {
        let mut id = Vec::with_capacity(7);
        id.push(1);
        id.extend_from_slice(&self.chaddr);
        id
    }
}

/// The parameters we ask for (RFC 2132 §9.8): mask, router, DNS, domain,
/// NetBIOS name servers. The engine does not use them yet; asking keeps
/// the exchange like a normal client's.
const PARAMETERS: [OptionCode; 5] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::NetBiosNameServers,
];

fn base(id: &Identity, xid: u32, kind: MessageType) -> Message {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new_with_id(
        xid,
        unspecified,
        unspecified,
        unspecified,
        unspecified,
        &id.chaddr,
    );
    msg.set_htype(HType::Eth);
    // RFC 2131 §4.1: the broadcast bit asks the server to broadcast its
    // answers: the address is not configured on our interface (it is a
    // VPN client's), so a unicast to it would never reach this socket.
    msg.set_flags(Flags::default().set_broadcast());
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(id.client_id()));
    msg
}

fn encode(msg: &Message) -> Vec<u8> {
    // Encoding our own well-formed messages into a Vec cannot fail.
    msg.to_vec().unwrap_or_default()
}

/// DHCPDISCOVER (RFC 2131 §4.4.1).
pub fn discover(id: &Identity, xid: u32) -> Vec<u8> {
    let mut msg = base(id, xid, MessageType::Discover);
    msg.opts_mut()
        .insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
    encode(&msg)
}

/// DHCPREQUEST in SELECTING state (RFC 2131 §4.3.2): ciaddr zero, the
/// offered address and the chosen server in options 50 and 54.
pub fn request_selecting(id: &Identity, xid: u32, offered: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let mut msg = base(id, xid, MessageType::Request);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::RequestedIpAddress(offered));
    opts.insert(DhcpOption::ServerIdentifier(server));
    opts.insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
    encode(&msg)
}

/// DHCPREQUEST that extends a lease we hold (RENEWING or REBINDING, RFC
/// 2131 §4.4.5).
///
/// RFC 2131 §4.3.2 has a renewing client put its address in ciaddr, and
/// §4.1 then has the server unicast the DHCPACK to ciaddr. Here the
/// address belongs to a VPN client behind our tunnel: a reply sent to it
/// would be routed into the tunnel and never reach this socket. So the
/// request names the address in option 50 with ciaddr zero and the
/// broadcast bit set (the INIT-REBOOT form of §4.3.2, which every server
/// must answer for a lease it holds for this client), and the answer is
/// broadcast back to us. The timing stays that of RENEWING/REBINDING.
pub fn request_extend(id: &Identity, xid: u32, addr: Ipv4Addr) -> Vec<u8> {
    let mut msg = base(id, xid, MessageType::Request);
    msg.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    encode(&msg)
}

/// DHCPRELEASE (RFC 2131 §4.4.6): ciaddr is the address, option 54 the
/// server; sent unicast, no answer.
pub fn release(id: &Identity, xid: u32, addr: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let mut msg = base(id, xid, MessageType::Release);
    msg.set_ciaddr(addr);
    // RFC 2131 §4.4.6 has no broadcast answer to ask for.
    msg.set_flags(Flags::default());
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    encode(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            chaddr: [2, 0, 0, 0, 0, 7],
        }
    }

    /// A server reply built independently of our builders.
    fn reply(kind: MessageType, xid: u32, chaddr: &[u8]) -> Message {
        let mut m = Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            chaddr,
        );
        m.set_opcode(v4::Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(3600));
        m
    }

    #[test]
    fn discover_layout_is_rfc_2131() {
        let b = discover(&id(), 0x1234_5678);
        assert_eq!(b[0], 1, "op BOOTREQUEST");
        assert_eq!(b[1], 1, "htype Ethernet");
        assert_eq!(b[2], 6, "hlen");
        assert_eq!(&b[4..8], &[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(&b[10..12], &[0x80, 0], "broadcast flag");
        assert_eq!(&b[28..34], &[2, 0, 0, 0, 0, 7]);
        assert_eq!(&b[236..240], &[99, 130, 83, 99]);
        // Option 53 = 1 (DISCOVER), option 61 = 01 + chaddr.
        let opts = &b[240..];
        assert!(opts.windows(3).any(|w| w == [53, 1, 1]));
        assert!(opts.windows(9).any(|w| w == [61, 7, 1, 2, 0, 0, 0, 0, 7]));
    }

    #[test]
    fn release_carries_address_and_server() {
        let b = release(
            &id(),
            9,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        let m = decode(&b).unwrap();
        assert_eq!(message_type(&m), Some(MessageType::Release));
        assert_eq!(m.ciaddr(), Ipv4Addr::new(10, 0, 0, 5));
        assert!(!m.flags().broadcast());
        assert_eq!(
            m.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)))
        );
    }

    #[test]
    fn extend_uses_option_50_and_zero_ciaddr() {
        let b = request_extend(&id(), 9, Ipv4Addr::new(10, 0, 0, 5));
        let m = decode(&b).unwrap();
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(m.flags().broadcast());
        assert!(m.opts().get(OptionCode::ServerIdentifier).is_none());
        assert_eq!(
            m.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 0, 5)))
        );
    }

    #[test]
    fn parses_a_reply() {
        let b = reply(MessageType::Ack, 77, &[2, 0, 0, 0, 0, 7])
            .to_vec()
            .unwrap();
        let r = parse_reply(&b).unwrap();
        assert_eq!(r.kind, MessageType::Ack);
        assert_eq!(r.xid, 77);
        assert_eq!(r.chaddr, [2, 0, 0, 0, 0, 7]);
        assert_eq!(r.yiaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r.lease_time, Some(3600));
        assert_eq!(r.renewal_time, None);
    }

    #[test]
    fn refuses_bad_input() {
        let good = reply(MessageType::Ack, 1, &[2, 0, 0, 0, 0, 7])
            .to_vec()
            .unwrap();
        // A hardware address length of 200 would panic in dhcproto.
        let mut bad = good.clone();
        bad[2] = 200;
        assert_eq!(parse_reply(&bad), Err(MessageError::HardwareLength(200)));
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(parse_reply(&bad), Err(MessageError::BadMagic));
        assert!(matches!(
            parse_reply(&good[..100]),
            Err(MessageError::BadMagic)
        ));
        assert!(matches!(
            parse_reply(&vec![0u8; MAX_MESSAGE + 1]),
            Err(MessageError::TooLong(_))
        ));
        // Found by the fuzzer: an option whose length dhcproto only
        // debug-asserts (here option 154, a 4-byte time, 8 bytes long) must
        // be refused, not reach dhcproto.
        let end = good.len() - 1;
        assert_eq!(good[end], 255);
        let mut bad = good.clone();
        bad.splice(end..end, [154, 8, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert!(matches!(parse_reply(&bad), Err(MessageError::Malformed(_))));
        let mut bad = good.clone();
        bad.splice(end..end, [81, 2, 0, 0]);
        assert!(matches!(parse_reply(&bad), Err(MessageError::Malformed(_))));
        // Split into two adjacent occurrences (RFC 3396), 2 + 2 bytes is
        // fine; the same two apart are two options of 2 bytes: refused.
        let mut ok = good.clone();
        ok.splice(end..end, [154, 2, 0, 0, 154, 2, 0, 1]);
        assert!(parse_reply(&ok).is_ok());
        let mut bad = good.clone();
        bad.splice(end..end, [154, 2, 0, 0, 0, 154, 2, 0, 1]);
        assert!(matches!(parse_reply(&bad), Err(MessageError::Malformed(_))));
        // Found by the fuzzer too: a valid FQDN, another option, then an
        // empty FQDN.
        let mut bad = good.clone();
        bad.splice(end..end, [81, 3, 0, 0, 0, 12, 1, b'a', 81, 0]);
        assert!(matches!(parse_reply(&bad), Err(MessageError::Malformed(_))));
        // Our own request is not a reply.
        assert!(parse_reply(&discover(&id(), 1)).is_err());
    }
}
