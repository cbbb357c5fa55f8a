//! Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): Delete,
//! notifications, and Dead Peer Detection (RFC 3706).

use std::net::SocketAddr;
use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;

use super::crypt;
use super::events::DownReason;
use super::ike_sa::Phase;
use super::main_mode::Answer;
use super::payloads::{notify, Delete, Notification};
use super::responder::{Responder, DPD_RETRY};
use super::sa_payload::protocol;
use super::wire::{self, exchange, payload, Header, PayloadChain, VERSION_1_0};

impl Responder {
    /// An encrypted Informational from an established SA.
    pub(crate) fn informational(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        if !header.is_encrypted() {
            return Err("an unencrypted notification after Main Mode".into());
        }
        let sa = &self.sas[&cookie];
        let keys = sa.keys().ok_or("no keys")?;
        let iv = keys.exchange_iv(header.message_id);
        let (plain, _) = crypt::decrypt(keys.cipher, &keys.enc_key, &iv, message)
            .ok_or("Informational is not a whole number of cipher blocks")?;
        let payloads = wire::payloads(header.next_payload, &plain)
            .map_err(|e| format!("malformed Informational: {e}"))?;
        let first = payloads
            .first()
            .filter(|p| p.kind == payload::HASH)
            .ok_or("Informational without HASH")?;
        // RFC 2409 §5.7: HASH(1) = prf(SKEYID_a, M-ID | N/D)
        let mid = header.message_id.to_be_bytes();
        let expected = keys.hash_a(&[&mid, &crypt::after_first_payload(&payloads)]);
        if verify_slices_are_equal(&expected, first.body).is_err() {
            return Err("Informational HASH does not verify".into());
        }
        let (peer, cookie_i) = (sa.peer, sa.cookie_i);
        let mut acks = Vec::new();
        for p in &payloads[1..] {
            match p.kind {
                payload::DELETE => {
                    let Some(d) = Delete::parse(p.body) else {
                        continue;
                    };
                    match d.protocol {
                        protocol::ISAKMP
                            if d.spis.iter().any(|s| {
                                s.len() == 16 && s[..8] == cookie_i && s[8..] == cookie
                            }) =>
                        {
                            // IKEv1: the Quick Mode SAs live on without it.
                            self.delete_ike_sa(now, cookie, DownReason::DeletedByPeer, false);
                            return Ok(None);
                        }
                        protocol::ESP => {
                            for s in d.spis.iter().filter(|s| s.len() == 4) {
                                let spi = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                                // The peer names its inbound SPI (our outbound);
                                // accept ours too.
                                let found: Vec<u32> = self
                                    .children
                                    .iter()
                                    .filter(|(inb, c)| {
                                        c.peer == peer && (c.outbound_spi == spi || **inb == spi)
                                    })
                                    .map(|(inb, _)| *inb)
                                    .collect();
                                for inbound in found {
                                    self.delete_child(
                                        now,
                                        inbound,
                                        DownReason::DeletedByPeer,
                                        false,
                                    );
                                }
                            }
                        }
                        _ => {}
                    }
                }
                payload::NOTIFICATION => {
                    let Some(n) = Notification::parse(p.body) else {
                        continue;
                    };
                    match n.kind {
                        notify::R_U_THERE if n.data.len() == 4 => acks.push(n.data.clone()),
                        notify::R_U_THERE_ACK if n.data.len() == 4 => {
                            let seq = u32::from_be_bytes(n.data[..4].try_into().expect("4 bytes"));
                            if let Some(sa) = self.sas.get_mut(&cookie) {
                                if sa.dpd.pending.is_some_and(|(s, _, _)| s == seq) {
                                    sa.dpd.pending = None;
                                }
                            }
                        }
                        notify::INITIAL_CONTACT => {
                            self.drop_peer(now, peer, Some(cookie), DownReason::Replaced);
                        }
                        kind if kind < 16384 => {
                            self.refuse(
                                peer,
                                format!("the peer reported error {}", notify_name(kind)),
                            );
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        for seq in acks {
            // RFC 3706 §5.3: answer with the same sequence number.
            self.send_informational(
                now,
                cookie,
                payload::NOTIFICATION,
                &Notification {
                    protocol: protocol::ISAKMP,
                    spi: [cookie_i, cookie].concat(),
                    kind: notify::R_U_THERE_ACK,
                    data: seq,
                }
                .encode(),
            );
        }
        Ok(None)
    }

    /// Sends one encrypted Informational with a fresh message ID.
    pub(crate) fn send_informational(
        &mut self,
        _now: Instant,
        cookie: [u8; 8],
        kind: u8,
        body: &[u8],
    ) {
        let mid = loop {
            let m = u32::from_be_bytes(self.random_bytes::<4>());
            if m != 0 {
                break m;
            }
        };
        let Some(sa) = self.sas.get(&cookie) else {
            return;
        };
        let Some(keys) = sa.keys() else {
            return;
        };
        let hash_len = keys.hash.output_len();
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        chain.push(kind, body);
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        let hash = keys.hash_a(&[&mid.to_be_bytes(), &covered]);
        chain.patch(4, &hash);
        let header = Header {
            initiator_cookie: sa.cookie_i,
            responder_cookie: sa.cookie_r,
            next_payload: 0,
            version: VERSION_1_0,
            exchange: exchange::INFORMATIONAL,
            flags: 0,
            message_id: mid,
            length: 0,
        };
        let iv = keys.exchange_iv(mid);
        let (bytes, _) = crypt::encrypt(keys.cipher, &keys.enc_key, &iv, &header, &chain);
        let (peer, nat) = (sa.peer, sa.on_nat_t_port);
        self.send(peer, nat, bytes);
    }

    pub(crate) fn send_notify(&mut self, now: Instant, cookie: [u8; 8], kind: u16) {
        let Some(sa) = self.sas.get(&cookie) else {
            return;
        };
        let n = Notification {
            protocol: protocol::ISAKMP,
            spi: [sa.cookie_i, sa.cookie_r].concat(),
            kind,
            data: Vec::new(),
        };
        self.send_informational(now, cookie, payload::NOTIFICATION, &n.encode());
    }

    pub(crate) fn send_delete_ike(&mut self, now: Instant, cookie: [u8; 8]) {
        let Some(sa) = self.sas.get(&cookie) else {
            return;
        };
        let d = Delete {
            protocol: protocol::ISAKMP,
            spi_len: 16,
            spis: vec![[sa.cookie_i, sa.cookie_r].concat()],
        };
        self.send_informational(now, cookie, payload::DELETE, &d.encode());
    }

    /// RFC 2408 §3.15: a Delete for an ESP SA names the SPI we receive on,
    /// sent through any established IKE SA with that peer.
    pub(crate) fn send_delete_esp(&mut self, now: Instant, peer: SocketAddr, inbound_spi: u32) {
        let Some(cookie) = self
            .sas
            .iter()
            .find(|(_, sa)| sa.peer == peer && sa.phase == Phase::Established)
            .map(|(c, _)| *c)
        else {
            return;
        };
        let d = Delete {
            protocol: protocol::ESP,
            spi_len: 4,
            spis: vec![inbound_spi.to_be_bytes().to_vec()],
        };
        self.send_informational(now, cookie, payload::DELETE, &d.encode());
    }

    /// RFC 3706 §5: probe an idle peer that announced DPD; give up on one
    /// that stays silent, with everything it holds.
    pub(crate) fn run_dpd(&mut self, now: Instant) {
        let (delay, timeout) = (self.config.dpd_delay, self.config.dpd_timeout);
        let mut probes = Vec::new();
        let mut dead = Vec::new();
        for (cookie, sa) in self.sas.iter_mut() {
            if sa.phase != Phase::Established || !sa.extensions.dpd {
                continue;
            }
            match sa.dpd.pending {
                Some((_, first, _)) if now >= first + timeout => dead.push(sa.peer),
                Some((seq, first, last)) if now >= last + DPD_RETRY => {
                    sa.dpd.pending = Some((seq, first, now));
                    probes.push((*cookie, seq));
                }
                None if now >= sa.last_heard + delay => {
                    sa.dpd.sequence = sa.dpd.sequence.wrapping_add(1).max(1);
                    sa.dpd.pending = Some((sa.dpd.sequence, now, now));
                    probes.push((*cookie, sa.dpd.sequence));
                }
                _ => {}
            }
        }
        for (cookie, seq) in probes {
            let Some(sa) = self.sas.get(&cookie) else {
                continue;
            };
            let n = Notification {
                protocol: protocol::ISAKMP,
                spi: [sa.cookie_i, sa.cookie_r].concat(),
                kind: notify::R_U_THERE,
                data: seq.to_be_bytes().to_vec(),
            };
            self.send_informational(now, cookie, payload::NOTIFICATION, &n.encode());
        }
        for peer in dead {
            self.drop_peer(now, peer, None, DownReason::DeadPeer);
        }
    }
}

/// RFC 2408 §3.14.1 error names for the log.
pub(crate) fn notify_name(kind: u16) -> String {
    match kind {
        notify::INVALID_PAYLOAD_TYPE => "INVALID-PAYLOAD-TYPE".into(),
        notify::INVALID_EXCHANGE_TYPE => "INVALID-EXCHANGE-TYPE".into(),
        notify::NO_PROPOSAL_CHOSEN => "NO-PROPOSAL-CHOSEN".into(),
        notify::PAYLOAD_MALFORMED => "PAYLOAD-MALFORMED".into(),
        notify::INVALID_ID_INFORMATION => "INVALID-ID-INFORMATION".into(),
        notify::INVALID_HASH_INFORMATION => "INVALID-HASH-INFORMATION".into(),
        notify::AUTHENTICATION_FAILED => "AUTHENTICATION-FAILED".into(),
        notify::INVALID_KEY_INFORMATION => "INVALID-KEY-INFORMATION".into(),
        notify::INVALID_CERT_ENCODING => "INVALID-CERT-ENCODING".into(),
        notify::INVALID_CERTIFICATE => "INVALID-CERTIFICATE".into(),
        notify::INVALID_CERT_AUTHORITY => "INVALID-CERT-AUTHORITY".into(),
        notify::INVALID_SIGNATURE => "INVALID-SIGNATURE".into(),
        k => format!("notification {k}"),
    }
}
