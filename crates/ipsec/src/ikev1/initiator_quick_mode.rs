//! Quick Mode, initiator side (RFC 2409 §5.5): transport-mode ESP for the
//! L2TP flow (RFC 3193 §4: UDP 1701 both ways), UDP-encapsulated with
//! NAT-OA behind a NAT (RFC 3947 §5), optional PFS, and rekeys that bring
//! the new SA up before the old one is deleted.

use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::esp::{EspSaConfig, LifetimeLimits};
use crate::ike_crypto::{ikev1_keys, DhPrivate};

use super::crypt;
use super::events::{ChildSa, DownReason, IkeEvent};
use super::initiator::{Child, Failure, Handled, Initiator, PendingQuick};
use super::offer::{accept_quick_mode, quick_mode_offer, responder_lifetime_seconds};
use super::payloads::{encode_nat_oa, notify, parse_nat_oa, Identification, Notification};
use super::proposal::{p2, EncapsulationMode};
use super::sa_payload::{protocol, SaPayload};
use super::vendor_ids::NatTVersion;
use super::wire::{self, exchange, payload, Header, PayloadChain};

/// IP protocol number of UDP.
const UDP: u8 = 17;
const NONCE_LEN: usize = 32;

impl Initiator {
    /// Message 1: HASH(1), SA, Ni [, KE], IDci, IDcr [, NAT-OAi, NAT-OAr].
    pub(crate) fn start_quick_mode(&mut self, now: Instant, replaces: Option<u32>) {
        let message_id = self.new_message_id();
        let inbound_spi = self.new_spi();
        let ni = self.random_bytes::<NONCE_LEN>().to_vec();
        let pfs = self.config.pfs_group;
        let dh = match pfs.map(DhPrivate::generate) {
            Some(Ok(dh)) => Some(dh),
            Some(Err(e)) => {
                self.fail(
                    now,
                    format!("key exchange for PFS: {e}"),
                    DownReason::Closed,
                );
                return;
            }
            None => None,
        };
        let Some(ike) = &self.ike else {
            return;
        };
        let Some(keys) = &ike.keys else {
            return;
        };
        let udp = self.on_nat_t;
        // RFC 3947 §5.1, or the draft's number when the server spoke a draft.
        let mode = match (udp, ike.nat_t) {
            (false, _) => EncapsulationMode::Transport,
            (true, Some(NatTVersion::Rfc3947)) => EncapsulationMode::UdpTransport,
            (true, _) => EncapsulationMode::UdpTransportDraft,
        };
        let sa = quick_mode_offer(
            &self.config.esp_suites,
            inbound_spi,
            mode,
            pfs,
            self.config.esp_lifetime,
        );
        let hash_len = keys.hash.output_len();
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        chain.push(payload::SA, &sa);
        chain.push(payload::NONCE, &ni);
        if let Some(dh) = &dh {
            chain.push(payload::KEY_EXCHANGE, dh.public_value());
        }
        let id_ci = Identification::address(self.local.ip(), UDP, self.config.local_port);
        let id_cr = Identification::address(self.server.ip(), UDP, self.config.remote_port);
        chain.push(payload::IDENTIFICATION, &id_ci.encode());
        chain.push(payload::IDENTIFICATION, &id_cr.encode());
        if let (true, Some(version)) = (udp, ike.nat_t) {
            // RFC 3947 §5.2: NAT-OAi (our own address) and NAT-OAr (the
            // server's as we know it); the drafts send only the first.
            chain.push(version.nat_oa_payload(), &encode_nat_oa(self.local.ip()));
            if version == NatTVersion::Rfc3947 {
                chain.push(version.nat_oa_payload(), &encode_nat_oa(self.server.ip()));
            }
        }
        // HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        let hash1 = keys.hash_a(&[&message_id.to_be_bytes(), &covered]);
        chain.patch(4, &hash1);
        let iv = keys.exchange_iv(message_id);
        let header = self.header(exchange::QUICK_MODE, message_id);
        let (message, next_iv) = crypt::encrypt(keys.cipher, &keys.enc_key, &iv, &header, &chain);
        self.quick = Some(PendingQuick {
            message_id,
            ni,
            inbound_spi,
            dh,
            iv: next_iv,
            udp_encapsulated: udp,
            replaces,
        });
        self.send_request(
            now,
            message,
            if replaces.is_some() {
                "a Quick Mode rekey"
            } else {
                "Quick Mode"
            },
        );
    }

    pub(crate) fn quick_mode(&mut self, now: Instant, header: &Header, message: &[u8]) -> Handled {
        if !header.is_encrypted() {
            return Err("unencrypted Quick Mode message".into());
        }
        if self
            .quick
            .as_ref()
            .is_some_and(|q| q.message_id == header.message_id)
        {
            return self.quick_mode_2(now, header, message);
        }
        let fingerprint = Self::fingerprint(message);
        if let Some((f, answer)) = &self.last_quick_answer {
            if *f == fingerprint {
                // Our message 3 was lost: the server repeats message 2.
                let answer = answer.clone();
                self.send(answer);
                return Ok(());
            }
        }
        Err(format!(
            "{} started a Quick Mode; a client does not accept one",
            self.server.ip()
        )
        .into())
    }

    /// Message 2: HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, NAT-OA]. Answer
    /// with HASH(3) and key both directions (RFC 2409 §5.5).
    fn quick_mode_2(&mut self, now: Instant, header: &Header, message: &[u8]) -> Handled {
        let ike = self.ike.as_ref().ok_or("no IKE SA")?;
        let keys = ike.keys.as_ref().ok_or("no keys")?;
        let qm = self.quick.as_ref().expect("checked by the caller");
        let (plain, iv3) = crypt::decrypt(keys.cipher, &keys.enc_key, &qm.iv, message)
            .ok_or("Quick Mode message 2 is not a whole number of cipher blocks")?;
        let payloads = wire::payloads(header.next_payload, &plain)
            .map_err(|e| format!("malformed Quick Mode message 2: {e}"))?;
        let first = payloads
            .first()
            .filter(|p| p.kind == payload::HASH)
            .ok_or("Quick Mode message 2 does not start with HASH")?;
        let mid = header.message_id.to_be_bytes();
        // HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
        let expected = keys.hash_a(&[&mid, &qm.ni, &crypt::after_first_payload(&payloads)]);
        if verify_slices_are_equal(&expected, first.body).is_err() {
            return Err("Quick Mode HASH(2) does not verify".into());
        }
        let nat_oa_kind = ike.nat_t.map(|v| v.nat_oa_payload());
        let (mut sa_body, mut nr, mut ke, mut nat_oas, mut life_notified) =
            (None, None, None, Vec::new(), None);
        for p in &payloads[1..] {
            match p.kind {
                payload::SA => sa_body = Some(p.body),
                payload::NONCE => nr = Some(p.body),
                payload::KEY_EXCHANGE => ke = Some(p.body),
                k if Some(k) == nat_oa_kind => nat_oas.push(p.body),
                payload::NOTIFICATION => {
                    // RFC 2407 §4.6.3.1: the server keeps the SA for less.
                    if let Some(n) =
                        Notification::parse(p.body).filter(|n| n.kind == notify::RESPONDER_LIFETIME)
                    {
                        life_notified =
                            responder_lifetime_seconds(&n.data, p2::LIFE_TYPE, p2::LIFE_DURATION);
                    }
                }
                _ => {}
            }
        }
        let answer = SaPayload::parse(sa_body.ok_or("Quick Mode message 2 without SA")?)
            .map_err(|e| format!("malformed Quick Mode SA: {e}"))?;
        let mode = if qm.udp_encapsulated {
            match ike.nat_t {
                Some(NatTVersion::Rfc3947) => EncapsulationMode::UdpTransport,
                _ => EncapsulationMode::UdpTransportDraft,
            }
        } else {
            EncapsulationMode::Transport
        };
        let choice = accept_quick_mode(
            &answer,
            &self.config.esp_suites,
            mode,
            self.config.pfs_group,
        )
        .map_err(|reason| Failure::Fatal(reason, DownReason::Closed))?;
        let nr = nr.ok_or("Quick Mode message 2 without a nonce")?;
        if !(8..=256).contains(&nr.len()) {
            return Err(format!("Quick Mode nonce of {} bytes", nr.len()).into());
        }
        let pfs_secret = match (&qm.dh, ke) {
            (Some(dh), Some(ke)) => Some(
                dh.agree(ke)
                    .map_err(|e| format!("the server's PFS key exchange is invalid: {e}"))?,
            ),
            (Some(_), None) => return Err("PFS asked for and no key exchange answered".into()),
            (None, _) => None,
        };
        // HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
        let hash3 = keys.hash_a(&[&[0u8], &mid, &qm.ni, nr]);
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &hash3);
        let (message3, _) = crypt::encrypt(keys.cipher, &keys.enc_key, &iv3, header, &chain);
        // Lifetime: ours, or less if the server said so.
        let mut seconds = self.config.esp_lifetime.as_secs();
        for s in [choice.life_seconds, life_notified].into_iter().flatten() {
            seconds = seconds.min(s.max(1));
        }
        let life = Duration::from_secs(seconds);
        let suite = choice.suite;
        let len = suite.cipher_key_len() + suite.salt_len() + suite.integrity_key_len();
        let outbound_spi = choice.initiator_spi;
        let config = |spi: u32, window: u32| {
            // RFC 2409 §5.5: each direction's KEYMAT uses the SPI its
            // receiver chose.
            let material = ikev1_keys::quick_mode_keymat(
                keys.hash,
                &keys.skeyid_d,
                pfs_secret.as_deref().map(|s| s.as_slice()),
                protocol::ESP,
                spi,
                &qm.ni,
                nr,
                len,
            );
            let cipher_len = suite.cipher_key_len() + suite.salt_len();
            EspSaConfig {
                spi,
                suite,
                cipher_key: zeroize::Zeroizing::new(material[..cipher_len].to_vec()),
                integrity_key: zeroize::Zeroizing::new(material[cipher_len..].to_vec()),
                lifetime: LifetimeLimits {
                    hard_time: Some(life),
                    ..Default::default()
                },
                replay_window: window,
            }
        };
        let child = ChildSa {
            ike_sa: ike.id,
            peer: self.peer,
            udp_encapsulated: qm.udp_encapsulated,
            inbound: config(qm.inbound_spi, 128),
            outbound: config(outbound_spi, 0),
            // RFC 3947 §5.2: the second NAT-OA is the server's own address.
            peer_original_address: nat_oas.get(1).and_then(|b| parse_nat_oa(b)),
            peer_port: self.config.remote_port,
            peer_identity: ike.peer_identity.clone(),
            suite: suite.to_string(),
        };
        let inbound_spi = qm.inbound_spi;
        let replaces = qm.replaces;
        self.quick = None;
        self.request = None;
        self.last_heard = now;
        self.last_quick_answer = Some((Self::fingerprint(message), message3.clone()));
        self.send(message3);
        let rekey_after = life * self.config.rekey_percent.min(100) / 100;
        self.children.push(Child {
            inbound_spi,
            outbound_spi,
            rekey_at: now + rekey_after,
            expires: now + life,
            rekeying: false,
            retire_at: None,
        });
        self.events.push_back(IkeEvent::ChildSaUp(child));
        if let Some(old) = replaces {
            let overlap = self.config.rekey_overlap;
            if let Some(c) = self.children.iter_mut().find(|c| c.inbound_spi == old) {
                c.retire_at = Some(now + overlap);
            }
        }
        Ok(())
    }
}
