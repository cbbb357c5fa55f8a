//! Automatic Private IP Addressing: what RRAS hands out when no DHCP
//! server answers (tcpip-fundamentals ch. 14: "the service returns
//! addresses from the APIPA range of 169.254.0.0/16").
//!
//! RFC 3927 §2.1 picks addresses pseudo-randomly in 169.254.1.0 –
//! 169.254.254.255 (the first and last /24 are reserved) and probes them
//! with ARP. These addresses go to PPP clients behind the server, not onto
//! a shared link, so there is nothing to probe: uniqueness within this
//! server is enough, and a random starting point keeps two servers from
//! starting at the same address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// RFC 3927 §2.1: 169.254.1.0 ...
const FIRST: u32 = u32::from_be_bytes([169, 254, 1, 0]);
/// ... to 169.254.254.255.
const LAST: u32 = u32::from_be_bytes([169, 254, 254, 255]);
/// How many addresses the range holds.
pub const CAPACITY: u32 = LAST - FIRST + 1;

/// Whether `addr` is a link-local (APIPA) address.
pub fn is_apipa(addr: Ipv4Addr) -> bool {
    addr.is_link_local()
}

/// Link-local addresses in use, handed out from a pseudo-random start.
#[derive(Debug, Clone)]
pub struct Apipa {
    next: u32,
    used: HashSet<u32>,
}

impl Apipa {
    /// `seed` chooses the starting point.
    pub fn new(seed: u64) -> Apipa {
        Apipa {
            next: (seed % u64::from(CAPACITY)) as u32,
            used: HashSet::new(),
        }
    }

    /// A free address, or `None` when all 65,024 are in use.
    pub fn take(&mut self) -> Option<Ipv4Addr> {
        if self.used.len() as u32 >= CAPACITY {
            return None;
        }
        loop {
            let offset = self.next;
            self.next = (self.next + 1) % CAPACITY;
            if self.used.insert(offset) {
                return Some(Ipv4Addr::from(FIRST + offset));
            }
        }
    }

    /// Gives an address back.
    pub fn put(&mut self, addr: Ipv4Addr) {
        let n = u32::from(addr);
        if (FIRST..=LAST).contains(&n) {
            self.used.remove(&(n - FIRST));
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_rfc_3927_and_distinct() {
        let mut a = Apipa::new(u64::from(CAPACITY) - 2);
        let got: Vec<_> = (0..4).map(|_| a.take().unwrap()).collect();
        // Wraps from the top of the range to the bottom.
        assert_eq!(
            got,
            [
                Ipv4Addr::new(169, 254, 254, 254),
                Ipv4Addr::new(169, 254, 254, 255),
                Ipv4Addr::new(169, 254, 1, 0),
                Ipv4Addr::new(169, 254, 1, 1),
            ]
        );
        assert!(got.iter().all(|a| is_apipa(*a)));
        a.put(got[1]);
        assert_eq!(a.in_use(), 3);
    }

    #[test]
    fn exhaustion_is_reported() {
        let mut a = Apipa::new(7);
        for _ in 0..CAPACITY {
            assert!(a.take().is_some());
        }
        assert_eq!(a.take(), None);
        a.put(Ipv4Addr::new(169, 254, 100, 100));
        assert_eq!(a.take(), Some(Ipv4Addr::new(169, 254, 100, 100)));
    }
}
