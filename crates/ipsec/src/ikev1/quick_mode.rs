//! Quick Mode, responder side (RFC 2409 §5.5): transport-mode ESP for the
//! L2TP flow (RFC 3193 §4), with NAT-T encapsulation modes and NAT-OA
//! (RFC 3947 §5), optional PFS.

use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::esp::{EspSaConfig, LifetimeLimits};
use crate::ike_crypto::{ikev1_keys, DhStock};

use super::crypt;
use super::events::{ChildSa, IkeEvent};
use super::ike_sa::PendingQuickMode;
use super::main_mode::{Answer, LIFETIME_SLACK};
use super::payloads::{encode_nat_oa, notify, parse_nat_oa, Identification, Notification};
use super::proposal::{choose_phase2, describe_offer, p2, LIFE_SECONDS};
use super::responder::{ChildRecord, Responder};
use super::sa_payload::{protocol, push_number, Proposal, SaPayload, SIT_IDENTITY_ONLY};
use super::vendor_ids::NatTVersion;
use super::wire::{self, payload, Header, PayloadChain};

/// RFC 3193 §4: L2TP's UDP port.
const L2TP_PORT: u16 = 1701;
/// IP protocol number of UDP.
const UDP: u8 = 17;
/// Quick Modes in progress per IKE SA: more is a peer misbehaving.
const MAX_PENDING: usize = 8;

impl Responder {
    pub(crate) fn quick_mode(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        if !header.is_encrypted() || header.message_id == 0 {
            return Err("Quick Mode message is not encrypted or has message ID 0".into());
        }
        if self.sas[&cookie]
            .quick_modes
            .contains_key(&header.message_id)
        {
            return self.quick_mode_3(now, cookie, header, message);
        }
        self.quick_mode_1(now, cookie, header, message)
    }

    /// Message 1: HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OA].
    fn quick_mode_1(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        let inbound_spi = self.new_spi();
        let nr: [u8; 32] = self.random_bytes();
        let hide_nat_l2tp_only = self.config.l2tp_only;
        let policy = self.config.proposals.clone();
        let sa = self.sas.get_mut(&cookie).expect("looked up by the caller");
        if sa.quick_modes.len() >= MAX_PENDING {
            return Err("too many Quick Modes in progress".into());
        }
        let keys = sa.keys.as_ref().ok_or("no keys")?;
        let iv = keys.exchange_iv(header.message_id);
        let (plain, next_iv) = crypt::decrypt(keys.cipher, &keys.enc_key, &iv, message)
            .ok_or("Quick Mode message is not a whole number of cipher blocks")?;
        let payloads = wire::payloads(header.next_payload, &plain)
            .map_err(|e| format!("malformed Quick Mode message 1: {e}"))?;
        let first = payloads.first().ok_or("empty Quick Mode message")?;
        if first.kind != payload::HASH {
            return Err("Quick Mode message 1 does not start with HASH".into());
        }
        // HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
        let mid = header.message_id.to_be_bytes();
        let expected = keys.hash_a(&[&mid, &crypt::after_first_payload(&payloads)]);
        if verify_slices_are_equal(&expected, first.body).is_err() {
            return Err("Quick Mode HASH(1) does not verify".into());
        }
        let nat_oa_kind = sa.extensions.nat_t.map(|v| v.nat_oa_payload());
        let (mut sa_body, mut ni, mut ke, mut ids, mut nat_oas) =
            (None, None, None, Vec::new(), Vec::new());
        for p in &payloads[1..] {
            match p.kind {
                payload::SA => sa_body = Some(p.body),
                payload::NONCE => ni = Some(p.body),
                payload::KEY_EXCHANGE => ke = Some(p.body),
                payload::IDENTIFICATION => ids.push(p.body),
                k if Some(k) == nat_oa_kind => nat_oas.push(p.body),
                _ => {}
            }
        }
        let offer = SaPayload::parse(sa_body.ok_or("Quick Mode without SA")?)
            .map_err(|e| format!("malformed Quick Mode SA: {e}"))?;
        let ni = ni.ok_or("Quick Mode without a nonce")?;
        if !(8..=256).contains(&ni.len()) {
            return Err(format!("Quick Mode nonce of {} bytes", ni.len()));
        }
        let Some(choice) = choose_phase2(&offer, &policy) else {
            let reason = format!(
                "no acceptable Quick Mode proposal from {}; offered: {}",
                sa.peer_identity,
                describe_offer(&offer)
            );
            self.send_notify(now, cookie, notify::NO_PROPOSAL_CHOSEN);
            return Err(reason);
        };
        // Traffic selectors: for L2TP, UDP to our port 1701 (RFC 3193 §4).
        let (id_ci, id_cr) = match ids.as_slice() {
            [] => (None, None),
            [ci, cr] => (
                Some(Identification::parse(ci).ok_or("malformed IDci")?),
                Some(Identification::parse(cr).ok_or("malformed IDcr")?),
            ),
            _ => return Err("Quick Mode with one identification or more than two".into()),
        };
        if hide_nat_l2tp_only {
            if let Some(cr) = &id_cr {
                if !(cr.protocol == 0 || cr.protocol == UDP)
                    || !(cr.port == 0 || cr.port == L2TP_PORT)
                {
                    let reason = format!(
                        "Quick Mode from {} asks for protocol {} port {}, not L2TP (UDP 1701)",
                        sa.peer_identity, cr.protocol, cr.port
                    );
                    self.send_notify(now, cookie, notify::INVALID_ID_INFORMATION);
                    return Err(reason);
                }
            }
        }
        let peer_port = id_ci.as_ref().map_or(0, |ci| ci.port);
        // RFC 3947 §5.2: the initiator's NAT-OA comes first; draft-02 sends
        // only that one.
        let peer_original_address = nat_oas.first().and_then(|b| parse_nat_oa(b));
        let (pfs_secret, our_ke) = match choice.pfs_group {
            Some(group) => {
                let ke = ke.ok_or("Quick Mode asks for PFS without a key exchange")?;
                if ke.len() != group.public_len() {
                    return Err("Quick Mode key exchange of the wrong size".into());
                }
                let dh = DhStock::take_from(self.config.dh_stock.as_deref(), group)
                    .map_err(|e| e.to_string())?;
                let secret = dh
                    .agree(ke)
                    .map_err(|e| format!("invalid PFS key exchange: {e}"))?;
                (Some(secret), Some(dh.public_value().to_vec()))
            }
            None => (None, None),
        };
        // Message 2: HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, NAT-OAi, NAT-OAr].
        let hash_len = keys.hash.output_len();
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        let chosen = Proposal {
            number: choice.proposal_number,
            protocol: protocol::ESP,
            spi: inbound_spi.to_be_bytes().to_vec(),
            transforms: vec![choice.transform.clone()],
        };
        chain.push(
            payload::SA,
            &SaPayload::encode(SIT_IDENTITY_ONLY, &[chosen]),
        );
        chain.push(payload::NONCE, &nr);
        if let Some(k) = &our_ke {
            chain.push(payload::KEY_EXCHANGE, k);
        }
        if let (Some(ci), Some(cr)) = (&id_ci, &id_cr) {
            chain.push(payload::IDENTIFICATION, &ci.encode());
            chain.push(payload::IDENTIFICATION, &cr.encode());
        }
        // RFC 2407 §4.6.3.1: a lifetime longer than we allow (or none, which
        // means 8 hours, §4.5) is shortened, and the initiator is told with
        // RESPONDER-LIFETIME so that it rekeys in time instead of losing
        // the SA to our expiry.
        let proposed = choice.life_seconds.unwrap_or(28_800);
        let allowed = self.config.max_esp_lifetime.as_secs().max(1);
        if proposed > allowed {
            let mut attributes = Vec::new();
            push_number(&mut attributes, p2::LIFE_TYPE, LIFE_SECONDS);
            push_number(&mut attributes, p2::LIFE_DURATION, allowed);
            let lifetime = Notification {
                protocol: protocol::ESP,
                spi: inbound_spi.to_be_bytes().to_vec(),
                kind: notify::RESPONDER_LIFETIME,
                data: attributes,
            };
            chain.push(payload::NOTIFICATION, &lifetime.encode());
        }
        if let (Some(version), true) = (sa.extensions.nat_t, choice.mode.is_udp()) {
            // RFC 3947 §5.2: the responder sends NAT-OAi (the initiator's
            // address as we see it) and NAT-OAr (ours); the drafts send none.
            if version == NatTVersion::Rfc3947 {
                chain.push(version.nat_oa_payload(), &encode_nat_oa(sa.peer.ip()));
                chain.push(version.nat_oa_payload(), &encode_nat_oa(sa.local.ip()));
            }
        }
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        // HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
        let hash2 = keys.hash_a(&[&mid, ni, &covered]);
        chain.patch(4, &hash2);
        let reply = Header {
            flags: 0,
            ..*header
        };
        let (answer, iv3) = crypt::encrypt(keys.cipher, &keys.enc_key, &next_iv, &reply, &chain);
        sa.quick_modes.insert(
            header.message_id,
            PendingQuickMode {
                ni: ni.to_vec(),
                nr: nr.to_vec(),
                choice,
                inbound_spi,
                pfs_secret,
                iv: iv3,
                peer_port,
                peer_original_address,
                started: now,
            },
        );
        // Reserve the SPI now so a parallel Quick Mode cannot take it.
        let (ike_sa, peer) = (sa.id, sa.peer);
        self.children.insert(
            inbound_spi,
            ChildRecord {
                ike_sa,
                peer,
                outbound_spi: 0,
                expires: now + Duration::from_secs(60),
            },
        );
        Ok(Some(answer))
    }

    /// Message 3: HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b). Then the
    /// SAs are keyed (RFC 2409 §5.5) and handed to the driver.
    fn quick_mode_3(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        let max_life = self.config.max_esp_lifetime;
        let replay_window = self.config.replay_window;
        let sa = self.sas.get_mut(&cookie).expect("looked up by the caller");
        let keys = sa.keys.as_ref().ok_or("no keys")?;
        let qm = sa
            .quick_modes
            .get(&header.message_id)
            .ok_or("no Quick Mode with this message ID")?;
        let (plain, _) = crypt::decrypt(keys.cipher, &keys.enc_key, &qm.iv, message)
            .ok_or("Quick Mode message 3 is not a whole number of cipher blocks")?;
        let payloads = wire::payloads(header.next_payload, &plain)
            .map_err(|e| format!("malformed Quick Mode message 3: {e}"))?;
        let hash3 = payloads
            .first()
            .filter(|p| p.kind == payload::HASH)
            .ok_or("Quick Mode message 3 without HASH")?;
        let mid = header.message_id.to_be_bytes();
        let expected = keys.hash_a(&[&[0u8], &mid, &qm.ni, &qm.nr]);
        if verify_slices_are_equal(&expected, hash3.body).is_err() {
            return Err("Quick Mode HASH(3) does not verify".into());
        }
        let qm = sa
            .quick_modes
            .remove(&header.message_id)
            .expect("looked up above");
        let keys = sa.keys.as_ref().expect("checked above");
        let suite = qm.choice.suite;
        let len = suite.cipher_key_len() + suite.salt_len() + suite.integrity_key_len();
        let keymat = |spi: u32| {
            ikev1_keys::quick_mode_keymat(
                keys.hash,
                &keys.skeyid_d,
                qm.pfs_secret.as_deref().map(|s| s.as_slice()),
                protocol::ESP,
                spi,
                &qm.ni,
                &qm.nr,
                len,
            )
        };
        let life = Duration::from_secs(qm.choice.life_seconds.unwrap_or(28_800)).min(max_life);
        let limits = LifetimeLimits {
            soft_time: None,
            hard_time: Some(life + LIFETIME_SLACK),
            soft_bytes: None,
            hard_bytes: qm.choice.life_kilobytes.map(|kb| {
                kb.saturating_mul(1024)
                    .saturating_add(kb.saturating_mul(128))
            }),
        };
        let config = |spi: u32, window: u32| {
            let material = keymat(spi);
            let cipher_len = suite.cipher_key_len() + suite.salt_len();
            EspSaConfig {
                spi,
                suite,
                cipher_key: zeroize::Zeroizing::new(material[..cipher_len].to_vec()),
                integrity_key: zeroize::Zeroizing::new(material[cipher_len..].to_vec()),
                lifetime: limits,
                replay_window: window,
            }
        };
        // RFC 2409 §5.5: each direction's KEYMAT uses the SPI its receiver
        // chose: ours for inbound, the initiator's for outbound.
        let inbound = config(qm.inbound_spi, replay_window);
        let outbound = config(qm.choice.initiator_spi, 0);
        let child = ChildSa {
            ike_sa: sa.id,
            peer: sa.peer,
            udp_encapsulated: qm.choice.mode.is_udp() || sa.on_nat_t_port,
            inbound,
            outbound,
            peer_original_address: qm.peer_original_address,
            peer_port: qm.peer_port,
            peer_identity: sa.peer_identity.clone(),
            suite: suite.to_string(),
        };
        let (ike_sa, peer) = (sa.id, sa.peer);
        self.children.insert(
            qm.inbound_spi,
            ChildRecord {
                ike_sa,
                peer,
                outbound_spi: qm.choice.initiator_spi,
                expires: now + life + LIFETIME_SLACK,
            },
        );
        self.events.push_back(IkeEvent::ChildSaUp(Box::new(child)));
        Ok(None)
    }

    /// Drops Quick Modes that never saw message 3, and their reserved SPIs.
    pub(crate) fn expire_quick_modes(&mut self, now: Instant) {
        let mut released = Vec::new();
        for sa in self.sas.values_mut() {
            sa.quick_modes.retain(|_, qm| {
                let keep = now < qm.started + Duration::from_secs(60);
                if !keep {
                    released.push(qm.inbound_spi);
                }
                keep
            });
        }
        for spi in released {
            self.children.remove(&spi);
        }
    }
}
