//! One session's answers for the server's end of its link (see the crate
//! documentation): a sans-IO core fed every IPv6 packet the peer sends.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::router_advert::{self, RouterAdvert};
use crate::{checksum, ipv6_packet, link_local, ALL_NODES, NEXT_HEADER_ICMPV6};

/// RFC 4861 §10 MIN_DELAY_BETWEEN_RAS: solicited advertisements are at
/// least this far apart (a peer sending solicitations in a loop gets one
/// answer per interval).
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// Hop limit of echo replies (the Linux default, as pppd's kernel sends).
const ECHO_HOP_LIMIT: u8 = 64;

const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const ROUTER_SOLICITATION: u8 = 133;
const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Source Link-Layer Address option (RFC 4861 §4.6.1).
const OPTION_SOURCE_LL: u8 = 1;
/// ff02::2, all routers (RFC 4291 §2.7.1).
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// What to do with a packet from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for the server's end of the link: route it as usual.
    Pass,
    /// Answered: send the reply (written to the caller's buffer) back to
    /// the peer; the packet goes no further.
    Reply,
    /// For this link only and not answered (malformed, not ours, or not a
    /// question we answer): the packet goes no further.
    Drop,
}

/// Counters of one responder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub echo_replies: u64,
    pub router_advertisements: u64,
    pub neighbor_advertisements: u64,
    /// Link-scope packets dropped, malformed ones included.
    pub dropped: u64,
    /// Of those, packets that failed a validity check.
    pub malformed: u64,
}

/// The server's end of one PPP link, in IPv6.
#[derive(Debug, Clone)]
pub struct Responder {
    link_local: Ipv6Addr,
    /// The server's global address on the link, if it has one (answered
    /// in Neighbor Solicitations; everything else to it is routed).
    global: Option<Ipv6Addr>,
    ra: Option<RouterAdvert>,
    last_ra: Option<Instant>,
    stats: Stats,
}

/// The fields of a packet that matter here, once its lengths are checked.
struct Icmp<'a> {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    /// The ICMPv6 message (the IPv6 payload, its declared length).
    msg: &'a [u8],
}

impl Responder {
    /// The server's end with interface identifier `server_interface_id`
    /// (what IPv6CP negotiated for our side), its global address on the
    /// link if any, and what solicited advertisements say (`None`: no
    /// advertisements; solicitations are dropped).
    pub fn new(
        server_interface_id: [u8; 8],
        global: Option<Ipv6Addr>,
        ra: Option<RouterAdvert>,
    ) -> Responder {
        Responder {
            link_local: link_local(server_interface_id),
            global,
            ra,
            last_ra: None,
            stats: Stats::default(),
        }
    }

    /// The server's link-local address on this link.
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Looks at one IP packet from the peer. On [`Verdict::Reply`] the
    /// answer (a whole IPv6 packet) is in `reply`. Cheap for what is not
    /// for us: the version and the destination's first octets decide.
    pub fn handle(&mut self, now: Instant, packet: &[u8], reply: &mut Vec<u8>) -> Verdict {
        if packet.len() < 40 || packet[0] >> 4 != 6 {
            return Verdict::Pass;
        }
        let dst = addr(&packet[24..40]);
        let link_scope = is_link_scope(&dst);
        if !link_scope && Some(dst) != self.global {
            return Verdict::Pass;
        }
        let verdict = match parse(packet) {
            Some(icmp) => self.answer(now, &icmp, reply),
            None => {
                if link_scope {
                    self.stats.malformed += 1;
                }
                Verdict::Drop
            }
        };
        match verdict {
            // To our global address and not a solicitation we answer: the
            // host's stack (through the TUN) has that address.
            Verdict::Drop if !link_scope => Verdict::Pass,
            Verdict::Drop => {
                self.stats.dropped += 1;
                Verdict::Drop
            }
            v => v,
        }
    }

    fn answer(&mut self, now: Instant, p: &Icmp<'_>, reply: &mut Vec<u8>) -> Verdict {
        let (kind, code) = (p.msg[0], p.msg[1]);
        // RFC 4443 §2.4 / RFC 4861 §6.1, §7.1: a wrong checksum is dropped.
        let valid = code == 0 && checksum(&p.src, &p.dst, p.msg) == 0;
        match kind {
            ECHO_REQUEST if p.dst == self.link_local => {
                if !valid || !is_unicast_source(&p.src) {
                    self.stats.malformed += 1;
                    return Verdict::Drop;
                }
                // RFC 4443 §4.2: identifier, sequence number and data of
                // the request, from the address it was sent to.
                let mut msg = p.msg.to_vec();
                msg[0] = ECHO_REPLY;
                ipv6_packet(&self.link_local, &p.src, ECHO_HOP_LIMIT, msg, reply);
                self.stats.echo_replies += 1;
                Verdict::Reply
            }
            ROUTER_SOLICITATION if p.dst == ALL_ROUTERS || p.dst == self.link_local => {
                self.router_solicitation(now, p, valid, reply)
            }
            NEIGHBOR_SOLICITATION => self.neighbor_solicitation(p, valid, reply),
            _ => Verdict::Drop,
        }
    }

    /// RFC 4861 §6.1.1 checks, §6.2.6 answer.
    fn router_solicitation(
        &mut self,
        now: Instant,
        p: &Icmp<'_>,
        valid: bool,
        reply: &mut Vec<u8>,
    ) -> Verdict {
        let options = p.msg.get(8..);
        let ok = valid
            && p.hop_limit == 255
            && options.is_some_and(|o| options_valid(o, !p.src.is_unspecified()));
        if !ok {
            self.stats.malformed += 1;
            return Verdict::Drop;
        }
        let Some(ra) = self.ra else {
            return Verdict::Drop;
        };
        if self
            .last_ra
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_DELAY_BETWEEN_RAS)
        {
            return Verdict::Drop;
        }
        self.last_ra = Some(now);
        // Unicast to the soliciting host when it has an address (§6.2.6).
        let to = if p.src.is_unspecified() {
            ALL_NODES
        } else {
            p.src
        };
        router_advert::build(&self.link_local, &to, &ra, reply);
        self.stats.router_advertisements += 1;
        Verdict::Reply
    }

    /// RFC 4861 §7.1.1 checks, §7.2.4 answer.
    fn neighbor_solicitation(&mut self, p: &Icmp<'_>, valid: bool, reply: &mut Vec<u8>) -> Verdict {
        let dad = p.src.is_unspecified();
        let (Some(target), Some(options)) = (p.msg.get(8..24), p.msg.get(24..)) else {
            self.stats.malformed += 1;
            return Verdict::Drop;
        };
        let target = addr(target);
        let ok = valid
            && p.hop_limit == 255
            && !target.is_multicast()
            && options_valid(options, !dad)
            && (!dad || p.dst == solicited_node(&target))
            && !p.src.is_multicast();
        if !ok {
            self.stats.malformed += 1;
            return Verdict::Drop;
        }
        let ours = target == self.link_local || Some(target) == self.global;
        // Sent to the target itself or to its solicited-node group.
        if !ours || (p.dst != target && p.dst != solicited_node(&target)) {
            return Verdict::Drop;
        }
        // Router, Solicited (not for a duplicate address check, which is
        // answered to all nodes), no Override: a PPP link has no link-layer
        // addresses, so no Target Link-Layer Address option (§7.2.4).
        let flags = 0x80 | if dad { 0 } else { 0x40 };
        let mut msg = vec![NEIGHBOR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0];
        msg.extend_from_slice(&target.octets());
        let to = if dad { ALL_NODES } else { p.src };
        ipv6_packet(&target, &to, 255, msg, reply);
        self.stats.neighbor_advertisements += 1;
        Verdict::Reply
    }
}

/// The ICMPv6 message of `packet` if its header and lengths are sound and
/// the next header is ICMPv6 (a packet with extension headers is not a
/// question we answer).
fn parse(packet: &[u8]) -> Option<Icmp<'_>> {
    let len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    if packet[6] != NEXT_HEADER_ICMPV6 || len < 4 {
        return None;
    }
    // Trailing bytes beyond the declared length are ignored (RFC 8200 §3:
    // the payload length is what counts); fewer is a truncated packet.
    let msg = packet.get(40..40 + len)?;
    Some(Icmp {
        src: addr(&packet[8..24]),
        dst: addr(&packet[24..40]),
        hop_limit: packet[7],
        msg,
    })
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

/// fe80::/10, or multicast of interface- or link-local scope (RFC 4291
/// §2.5.6, §2.7).
fn is_link_scope(a: &Ipv6Addr) -> bool {
    let o = a.octets();
    (o[0] == 0xfe && o[1] & 0xc0 == 0x80) || (o[0] == 0xff && o[1] & 0x0f <= 2)
}

fn is_unicast_source(a: &Ipv6Addr) -> bool {
    !a.is_unspecified() && !a.is_multicast()
}

/// ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    let mut o = [0u8; 16];
    o[0] = 0xff;
    o[1] = 0x02;
    o[11] = 0x01;
    o[12] = 0xff;
    o[13..].copy_from_slice(&t[13..]);
    Ipv6Addr::from(o)
}

/// RFC 4861 §6.1.1 / §7.1.1: every option has a length above zero and
/// fits; without a source address there is no Source Link-Layer Address.
fn options_valid(mut options: &[u8], source_ll_allowed: bool) -> bool {
    while !options.is_empty() {
        if options.len() < 2 {
            return false;
        }
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return false;
        }
        if options[0] == OPTION_SOURCE_LL && !source_ll_allowed {
            return false;
        }
        options = &options[len..];
    }
    true
}

#[cfg(test)]
mod tests;
