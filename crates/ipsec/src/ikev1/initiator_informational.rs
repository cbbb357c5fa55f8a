//! Informational exchanges of the initiator (RFC 2408 §4.8, RFC 2409
//! §5.7): Deletes both ways, error notifications, and Dead Peer Detection
//! (RFC 3706) both ways.

use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;

use super::crypt;
use super::events::DownReason;
use super::informational::notify_name;
use super::initiator::{Failure, Handled, Initiator, Stage, DPD_RETRY};
use super::payloads::{notify, Delete, Notification};
use super::sa_payload::protocol;
use super::wire::{self, exchange, payload, Header, PayloadChain};

impl Initiator {
    /// An encrypted Informational from the established IKE SA.
    pub(crate) fn informational(
        &mut self,
        now: Instant,
        header: &Header,
        message: &[u8],
    ) -> Handled {
        let ike = self.ike.as_ref().ok_or("no IKE SA")?;
        let keys = ike.keys.as_ref().ok_or("no keys")?;
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
        let (cookie_i, cookie_r) = (ike.cookie_i, ike.cookie_r);
        self.last_heard = now;
        let mut acks = Vec::new();
        let mut ike_deleted = false;
        let mut children_deleted = Vec::new();
        let mut quick_refused = None;
        for p in &payloads[1..] {
            match p.kind {
                payload::DELETE => {
                    let Some(d) = Delete::parse(p.body) else {
                        continue;
                    };
                    match d.protocol {
                        protocol::ISAKMP => {
                            ike_deleted |= d
                                .spis
                                .iter()
                                .any(|s| s.len() == 16 && s[..8] == cookie_i && s[8..] == cookie_r);
                        }
                        protocol::ESP => {
                            for s in d.spis.iter().filter(|s| s.len() == 4) {
                                let spi = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
                                // The server names its inbound SPI (our
                                // outbound); accept ours too.
                                children_deleted.extend(
                                    self.children
                                        .iter()
                                        .filter(|c| c.outbound_spi == spi || c.inbound_spi == spi)
                                        .map(|c| c.inbound_spi),
                                );
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
                            let seq =
                                u32::from_be_bytes([n.data[0], n.data[1], n.data[2], n.data[3]]);
                            if self.dpd.pending.is_some_and(|(s, _, _)| s == seq) {
                                self.dpd.pending = None;
                            }
                        }
                        kind if kind < 16384 => {
                            if self.quick.is_some() {
                                quick_refused = Some(kind);
                            } else {
                                self.refuse(format!(
                                    "{} reported error {}",
                                    self.server.ip(),
                                    notify_name(kind)
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        for seq in acks {
            // RFC 3706 §5.3: answer with the same sequence number.
            let body = Notification {
                protocol: protocol::ISAKMP,
                spi: [cookie_i, cookie_r].concat(),
                kind: notify::R_U_THERE_ACK,
                data: seq,
            }
            .encode();
            self.send_informational(payload::NOTIFICATION, &body);
        }
        for spi in children_deleted {
            self.remove_child(now, spi, DownReason::DeletedByPeer, false);
        }
        if let Some(kind) = quick_refused {
            let hint = match kind {
                notify::NO_PROPOSAL_CHOSEN => ": it accepts none of our ESP proposals",
                notify::INVALID_ID_INFORMATION => {
                    ": it does not accept L2TP traffic selectors (UDP 1701)"
                }
                _ => "",
            };
            return Err(Failure::Fatal(
                format!(
                    "{} refused Quick Mode with {}{hint}",
                    self.server.ip(),
                    notify_name(kind)
                ),
                DownReason::Closed,
            ));
        }
        if ike_deleted && self.children.is_empty() {
            // Before any ESP SA: the server refused us after Main Mode (a
            // certificate its OCSP or CRL check refused); waiting for the
            // Quick Mode answer would only time out.
            return Err(Failure::Fatal(
                format!(
                    "{} deleted the IKE SA before any ESP SA: it refused the connection after Main Mode (its log says why)",
                    self.server.ip()
                ),
                DownReason::DeletedByPeer,
            ));
        }
        if ike_deleted {
            // IKEv1: the ESP SAs outlive it (RFC 2409 §5.5); a rekey will
            // run a fresh Main Mode.
            self.end_ike(DownReason::DeletedByPeer);
        }
        Ok(())
    }

    /// Sends one encrypted Informational with a fresh message ID.
    pub(crate) fn send_informational(&mut self, kind: u8, body: &[u8]) {
        let mid = self.new_message_id();
        let Some(ike) = self.ike.as_ref().filter(|i| i.stage == Stage::Established) else {
            return;
        };
        let Some(keys) = &ike.keys else {
            return;
        };
        let hash_len = keys.hash.output_len();
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        chain.push(kind, body);
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        let hash = keys.hash_a(&[&mid.to_be_bytes(), &covered]);
        chain.patch(4, &hash);
        let header = self.header(exchange::INFORMATIONAL, mid);
        let iv = keys.exchange_iv(mid);
        let (bytes, _) = crypt::encrypt(keys.cipher, &keys.enc_key, &iv, &header, &chain);
        self.send(bytes);
    }

    pub(crate) fn send_delete_ike(&mut self, _now: Instant) {
        let Some(ike) = &self.ike else {
            return;
        };
        let d = Delete {
            protocol: protocol::ISAKMP,
            spi_len: 16,
            spis: vec![[ike.cookie_i, ike.cookie_r].concat()],
        };
        self.send_informational(payload::DELETE, &d.encode());
    }

    /// RFC 2408 §3.15: a Delete for an ESP SA names the SPI we receive on.
    pub(crate) fn send_delete_esp(&mut self, _now: Instant, inbound_spi: u32) {
        let d = Delete {
            protocol: protocol::ESP,
            spi_len: 4,
            spis: vec![inbound_spi.to_be_bytes().to_vec()],
        };
        self.send_informational(payload::DELETE, &d.encode());
    }

    /// RFC 3706 §5: probe an idle server that announced DPD; give up on
    /// one that stays silent.
    pub(crate) fn run_dpd(&mut self, now: Instant) {
        let Some(ike) = self
            .ike
            .as_ref()
            .filter(|i| i.stage == Stage::Established && i.dpd)
        else {
            return;
        };
        let (cookie_i, cookie_r) = (ike.cookie_i, ike.cookie_r);
        let seq = match self.dpd.pending {
            Some((_, first, _)) if now >= first + self.config.dpd_timeout => {
                let reason = format!("{} stopped answering dead peer detection", self.server.ip());
                self.fail(now, reason, DownReason::DeadPeer);
                return;
            }
            Some((seq, first, last)) if now >= last + DPD_RETRY => {
                self.dpd.pending = Some((seq, first, now));
                seq
            }
            None if now >= self.last_heard + self.config.dpd_delay => {
                self.dpd.sequence = self.dpd.sequence.wrapping_add(1).max(1);
                self.dpd.pending = Some((self.dpd.sequence, now, now));
                self.dpd.sequence
            }
            _ => return,
        };
        let n = Notification {
            protocol: protocol::ISAKMP,
            spi: [cookie_i, cookie_r].concat(),
            kind: notify::R_U_THERE,
            data: seq.to_be_bytes().to_vec(),
        };
        self.send_informational(payload::NOTIFICATION, &n.encode());
    }
}
