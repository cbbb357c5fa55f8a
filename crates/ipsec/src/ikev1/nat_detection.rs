//! NAT detection (RFC 3947 §3.2): each side hashes the addresses and ports
//! it sees, and a mismatch means a NAT rewrote them on the way.

use std::net::{IpAddr, SocketAddr};

use crate::ike_crypto::HashAlg;

/// HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash.
pub fn nat_d(hash: HashAlg, cky_i: &[u8; 8], cky_r: &[u8; 8], addr: SocketAddr) -> Vec<u8> {
    let ip: Vec<u8> = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    hash.digest(&[cky_i, cky_r, &ip, &addr.port().to_be_bytes()])
}

/// What the peer's NAT-D payloads tell us. Both ends keep one: on the
/// responder (server) the peer is the client, on the initiator (client)
/// the peer is the server, so the words differ by side ([`Self::describe`],
/// [`Self::describe_as_initiator`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatState {
    /// The peer's address was rewritten: it is behind a NAT.
    pub peer_behind_nat: bool,
    /// Our address was rewritten: we are behind a NAT.
    pub local_behind_nat: bool,
}

impl NatState {
    pub fn any(self) -> bool {
        self.peer_behind_nat || self.local_behind_nat
    }

    /// In the server's (responder's) words: the peer is the client.
    pub fn describe(self) -> &'static str {
        match (self.peer_behind_nat, self.local_behind_nat) {
            (false, false) => "no NAT",
            (true, false) => "client behind NAT",
            (false, true) => "server behind NAT",
            (true, true) => "both behind NAT",
        }
    }

    /// In the client's (initiator's) words: we are the client, the peer
    /// is the server.
    pub fn describe_as_initiator(self) -> &'static str {
        match (self.local_behind_nat, self.peer_behind_nat) {
            (false, false) => "no NAT",
            (true, false) => "we are behind NAT",
            (false, true) => "server behind NAT",
            (true, true) => "both behind NAT",
        }
    }
}

/// RFC 3947 §3.2: the first NAT-D payload is the receiver's (our) address
/// as the sender saw it, the others the sender's own addresses.
pub fn detect(
    hash: HashAlg,
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
    received: &[&[u8]],
    local: SocketAddr,
    remote: SocketAddr,
) -> NatState {
    let ours = nat_d(hash, cky_i, cky_r, local);
    let theirs = nat_d(hash, cky_i, cky_r, remote);
    NatState {
        local_behind_nat: received.first().is_none_or(|h| *h != ours.as_slice()),
        peer_behind_nat: !received.iter().skip(1).any(|h| *h == theirs.as_slice()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_addresses_are_detected() {
        let (ci, cr) = ([1u8; 8], [2u8; 8]);
        let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
        let client_private: SocketAddr = "192.168.1.5:500".parse().unwrap();
        let client_public: SocketAddr = "203.0.113.9:40001".parse().unwrap();
        let h = HashAlg::Sha1;
        let to_server = nat_d(h, &ci, &cr, server);
        let client_says = nat_d(h, &ci, &cr, client_private);
        let state = detect(
            h,
            &ci,
            &cr,
            &[&to_server, &client_says],
            server,
            client_public,
        );
        assert_eq!(
            state,
            NatState {
                peer_behind_nat: true,
                local_behind_nat: false
            }
        );
        assert_eq!(state.describe(), "client behind NAT");
        let direct = nat_d(h, &ci, &cr, client_public);
        let state = detect(h, &ci, &cr, &[&to_server, &direct], server, client_public);
        assert!(!state.any());
    }

    /// The same state worded by each side: the server says the client is
    /// behind a NAT, the client says it is.
    #[test]
    fn each_side_words_the_nat_from_where_it_stands() {
        let client_behind = NatState {
            peer_behind_nat: false,
            local_behind_nat: true,
        };
        assert_eq!(client_behind.describe_as_initiator(), "we are behind NAT");
        let server_behind = NatState {
            peer_behind_nat: true,
            local_behind_nat: false,
        };
        assert_eq!(server_behind.describe_as_initiator(), "server behind NAT");
        assert_eq!(server_behind.describe(), "client behind NAT");
        assert_eq!(NatState::default().describe_as_initiator(), "no NAT");
    }
}
