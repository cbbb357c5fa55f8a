//! Main Mode with pre-shared keys or signatures, responder side (RFC 2409
//! §5, §5.1, §5.4; RFC 4754),
//! with NAT-T negotiation (RFC 3947 §3, §4).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

use crate::ike_crypto::{ikev1_keys, DhStock};

use super::crypt::{self, MessageKeys};
use super::events::IkeEvent;
use super::ike_sa::{Dpd, IkeSa, Phase};
use super::nat_detection::{self, nat_d};
use super::payloads::{notify, Identification, Notification};
use super::proposal::{choose_phase1, describe_offer, hash_name, AuthMethod};
use super::responder::Responder;
use super::sa_payload::{protocol, Proposal, SaPayload, SIT_IDENTITY_ONLY};
use super::signature_auth::{self, SignedIdentity};
use super::vendor_ids::{self, PeerExtensions};
use super::wire::{self, exchange, payload, Header, PayloadChain, HEADER_LEN, VERSION_1_0};

/// RFC 2409 §5: nonces are 8 to 256 bytes.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=256;
/// The nonce we send.
const OUR_NONCE_LEN: usize = 32;

pub(crate) type Answer = Result<Option<Vec<u8>>, String>;

impl Responder {
    /// Message 1: the initiator's proposals and vendor IDs.
    pub(crate) fn main_mode_1(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        on_nat_t_port: bool,
        header: &Header,
        message: &[u8],
    ) {
        // The same message 1 again: answer with the same SA's message 2.
        if let Some(cookie) = self.by_initiator.get(&(remote, header.initiator_cookie)) {
            if let Some(answer) = self.sas.get(cookie).and_then(|sa| sa.answers.back()) {
                let answer = answer.1.clone();
                self.stats.retransmits_answered += 1;
                self.send(remote, on_nat_t_port, answer);
            }
            return;
        }
        let (total, from_source) = self.half_open(remote.ip());
        if total >= self.config.half_open_total || from_source >= self.config.half_open_per_source {
            self.stats.half_open_refused += 1;
            self.refuse(
                remote,
                format!(
                    "Main Mode refused: {} half-open from this address, {} in all (limits {} and {})",
                    from_source, total, self.config.half_open_per_source, self.config.half_open_total
                ),
            );
            return;
        }
        if self.sas.len() >= self.config.max_ike_sas {
            self.stats.refused += 1;
            self.refuse(
                remote,
                "Main Mode refused: the IKE SA limit is reached".into(),
            );
            return;
        }
        let payloads = match wire::payloads(header.next_payload, &message[HEADER_LEN..]) {
            Ok(p) => p,
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("malformed Main Mode message 1: {e}"));
                return;
            }
        };
        let mut extensions = PeerExtensions::default();
        let mut sa_body = None;
        for p in &payloads {
            match p.kind {
                payload::SA if sa_body.is_none() => sa_body = Some(p.body),
                payload::VENDOR_ID => extensions.note(p.body),
                _ => {}
            }
        }
        let Some(sa_body) = sa_body else {
            self.stats.malformed += 1;
            self.refuse(remote, "Main Mode message 1 without an SA payload".into());
            return;
        };
        let offer = match SaPayload::parse(sa_body) {
            Ok(sa) => sa,
            Err(e) => {
                self.stats.malformed += 1;
                self.refuse(remote, format!("malformed SA payload in Main Mode: {e}"));
                return;
            }
        };
        let has_psk = self.config.psks.lookup(remote.ip()).is_some();
        // Signatures only with our own certificate and CAs to check the
        // client's, and only the method our key makes (RFC 2409 §5.1: one
        // method for both sides).
        let signature_method = self
            .config
            .certificates
            .as_ref()
            .map(|c| signature_auth::method_for_key(c.local.kind()));
        let auth_allowed = |a: AuthMethod| {
            (a == AuthMethod::PreSharedKey && has_psk) || Some(a) == signature_method
        };
        let Some(choice) = choose_phase1(&offer, &self.config.proposals, &auth_allowed) else {
            self.stats.refused += 1;
            let reason = if has_psk || signature_method.is_some() {
                format!(
                    "no acceptable Main Mode proposal; offered: {}",
                    describe_offer(&offer)
                )
            } else {
                format!(
                    "no pre-shared key for {}; offered: {}",
                    remote.ip(),
                    describe_offer(&offer)
                )
            };
            self.refuse(remote, reason);
            self.notify_plain(remote, on_nat_t_port, header, notify::NO_PROPOSAL_CHOSEN);
            return;
        };
        let cookie_r = loop {
            let c = self.random_bytes::<8>();
            if c != [0; 8] && !self.sas.contains_key(&c) {
                break c;
            }
        };
        // Message 2: the chosen transform, echoed, and our vendor IDs.
        let chosen = Proposal {
            number: choice.proposal_number,
            protocol: protocol::ISAKMP,
            spi: Vec::new(),
            transforms: vec![choice.transform.clone()],
        };
        let mut chain = PayloadChain::new();
        chain.push(
            payload::SA,
            &SaPayload::encode(SIT_IDENTITY_ONLY, &[chosen]),
        );
        if let Some(v) = extensions.nat_t {
            chain.push(payload::VENDOR_ID, v.vendor_id());
        }
        if extensions.dpd {
            chain.push(payload::VENDOR_ID, &vendor_ids::DPD);
        }
        if extensions.fragmentation && self.config.fragmentation {
            chain.push(payload::VENDOR_ID, &vendor_ids::FRAGMENTATION_CAPABLE);
        }
        let reply_header = Header {
            responder_cookie: cookie_r,
            flags: 0,
            ..*header
        };
        let answer = wire::message(&reply_header, &chain);
        let id = self.next_id;
        self.next_id += 1;
        let mut sa = IkeSa {
            id,
            cookie_i: header.initiator_cookie,
            cookie_r,
            peer: remote,
            local,
            on_nat_t_port,
            phase: Phase::SentSa,
            created: now,
            last_heard: now,
            expires: None,
            choice,
            sa_i_b: sa_body.to_vec(),
            extensions,
            dh: None,
            g_xi: Vec::new(),
            g_xr: Vec::new(),
            ni: Vec::new(),
            nr: Vec::new(),
            skeyid: None,
            keys: None,
            iv: Vec::new(),
            nat: Default::default(),
            peer_identity: String::new(),
            answers: VecDeque::new(),
            quick_modes: HashMap::new(),
            dpd: Dpd::default(),
            fragments: Default::default(),
            next_fragment_id: 1,
            status_pending: None,
        };
        sa.remember(IkeSa::fingerprint(message), answer.clone());
        self.by_initiator
            .insert((remote, header.initiator_cookie), cookie_r);
        self.ids.insert(id, cookie_r);
        self.sas.insert(cookie_r, sa);
        self.send(remote, on_nat_t_port, answer);
    }

    /// Message 3: KE, Ni and NAT-D. Answer with KE, Nr and our NAT-D, and
    /// derive the keys (RFC 2409 §5, §5.4).
    pub(crate) fn main_mode_3(
        &mut self,
        _now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        let payloads = wire::payloads(header.next_payload, &message[HEADER_LEN..])
            .map_err(|e| format!("malformed Main Mode message 3: {e}"))?;
        let psk = {
            let sa = &self.sas[&cookie];
            if sa.choice.auth.is_signature() {
                None
            } else {
                Some(Zeroizing::new(
                    self.config
                        .psks
                        .lookup(sa.peer.ip())
                        .ok_or_else(|| format!("no pre-shared key for {}", sa.peer.ip()))?
                        .to_vec(),
                ))
            }
        };
        let certificates = self.config.certificates.clone();
        let sa = self.sas.get_mut(&cookie).expect("looked up by the caller");
        let nat_d_kind = sa.extensions.nat_t.map(|v| v.nat_d_payload());
        let (mut ke, mut nonce, mut nat_ds) = (None, None, Vec::new());
        for p in &payloads {
            match p.kind {
                payload::KEY_EXCHANGE => ke = Some(p.body),
                payload::NONCE => nonce = Some(p.body),
                k if Some(k) == nat_d_kind => nat_ds.push(p.body),
                payload::VENDOR_ID => sa.extensions.note(p.body),
                _ => {}
            }
        }
        let group = sa.choice.group;
        let ke = ke.ok_or("Main Mode message 3 without a key exchange")?;
        if ke.len() != group.public_len() {
            return Err(format!(
                "key exchange of {} bytes for {} (needs {})",
                ke.len(),
                group.name(),
                group.public_len()
            ));
        }
        let ni = nonce.ok_or("Main Mode message 3 without a nonce")?;
        if !NONCE_LEN.contains(&ni.len()) {
            return Err(format!("nonce of {} bytes", ni.len()));
        }
        let dh = DhStock::take_from(self.config.dh_stock.as_deref(), group)
            .map_err(|e| format!("key exchange: {e}"))?;
        let g_xy = dh
            .agree(ke)
            .map_err(|e| format!("the initiator's key exchange value is invalid: {e}"))?;
        let mut nr = vec![0u8; OUR_NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nr).map_err(|_| "no randomness")?;
        let hash = sa.choice.hash;
        // RFC 2409 §5: SKEYID depends on the authentication method.
        let skeyid = match &psk {
            Some(psk) => ikev1_keys::skeyid_psk(hash, psk, ni, &nr),
            None => ikev1_keys::skeyid_signature(hash, ni, &nr, &g_xy),
        };
        let keys = ikev1_keys::phase1_keys(hash, skeyid.clone(), &g_xy, &sa.cookie_i, &sa.cookie_r);
        let enc_key = ikev1_keys::encryption_key(hash, &keys.skeyid_e, sa.choice.cipher.key_len());
        sa.g_xi = ke.to_vec();
        sa.g_xr = dh.public_value().to_vec();
        sa.iv = ikev1_keys::phase1_iv(hash, &sa.g_xi, &sa.g_xr, sa.choice.cipher.block_len());
        sa.ni = ni.to_vec();
        sa.nr = nr.clone();
        sa.skeyid = Some(skeyid);
        sa.keys = Some(MessageKeys {
            cipher: sa.choice.cipher,
            hash,
            enc_key,
            skeyid_a: keys.skeyid_a,
            skeyid_d: keys.skeyid_d,
            phase1_last_block: Vec::new(),
        });
        let mut chain = PayloadChain::new();
        chain.push(payload::KEY_EXCHANGE, dh.public_value());
        chain.push(payload::NONCE, &nr);
        if let (true, Some(c)) = (sa.choice.auth.is_signature(), &certificates) {
            signature_auth::push_cert_requests(&mut chain, c);
        }
        if let Some(kind) = nat_d_kind {
            sa.nat =
                nat_detection::detect(hash, &sa.cookie_i, &sa.cookie_r, &nat_ds, sa.local, sa.peer);
            // RFC 3947 §3.2: first the peer's address as we see it, then ours.
            chain.push(kind, &nat_d(hash, &sa.cookie_i, &sa.cookie_r, sa.peer));
            let ours = match (self.config.hide_server_nat, nat_ds.first()) {
                // What the client computed for us: it will see no NAT here.
                (true, Some(theirs)) => theirs.to_vec(),
                _ => nat_d(hash, &sa.cookie_i, &sa.cookie_r, sa.local),
            };
            chain.push(kind, &ours);
        }
        sa.dh = Some(dh);
        sa.phase = Phase::SentKe;
        let reply = Header {
            flags: 0,
            ..*header
        };
        Ok(Some(wire::message(&reply, &chain)))
    }

    /// Message 5 (encrypted): IDii and HASH_I. Verify, answer with IDir and
    /// HASH_R (RFC 2409 §5).
    pub(crate) fn main_mode_5(
        &mut self,
        now: Instant,
        cookie: [u8; 8],
        header: &Header,
        message: &[u8],
    ) -> Answer {
        if !header.is_encrypted() {
            return Err("Main Mode message 5 is not encrypted".into());
        }
        let sa = self.sas.get_mut(&cookie).expect("looked up by the caller");
        let keys = sa.keys.as_ref().ok_or("no keys")?;
        let (plain, next_iv) = crypt::decrypt(keys.cipher, &keys.enc_key, &sa.iv, message)
            .ok_or("Main Mode message 5 is not a whole number of cipher blocks")?;
        let signature_auth = sa.choice.auth.is_signature();
        let wrong_key = if signature_auth {
            "the keys differ"
        } else {
            "the pre-shared keys differ"
        };
        let payloads = wire::payloads(header.next_payload, &plain)
            .map_err(|_| format!("Main Mode message 5 did not decrypt: {wrong_key}"))?;
        let (mut hash_i, mut initial_contact) = (None, false);
        let mut signed = SignedIdentity::default();
        for p in &payloads {
            signed.note(p);
            match p.kind {
                payload::HASH => hash_i = Some(p.body),
                payload::NOTIFICATION => {
                    initial_contact |= Notification::parse(p.body)
                        .is_some_and(|n| n.kind == notify::INITIAL_CONTACT);
                }
                payload::VENDOR_ID => sa.extensions.note(p.body),
                _ => {}
            }
        }
        let proof = if signature_auth {
            signed.signature
        } else {
            hash_i
        };
        let (Some(id_body), Some(proof)) = (signed.id, proof) else {
            let what = if signature_auth { "SIG" } else { "HASH" };
            return Err(format!(
                "Main Mode message 5 did not decrypt or lacks ID and {what}: {wrong_key}"
            ));
        };
        let skeyid = sa.skeyid.as_ref().ok_or("no SKEYID")?;
        let prf = signature_auth::hash_i_prf(sa.choice.auth, sa.choice.hash);
        // HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
        let expected = prf.hmac(
            skeyid,
            &[
                &sa.g_xi,
                &sa.g_xr,
                &sa.cookie_i,
                &sa.cookie_r,
                &sa.sa_i_b,
                id_body,
            ],
        );
        let peer_id = Identification::parse(id_body).ok_or("malformed identification")?;
        // The end entity to ask about online once Main Mode is done.
        let mut ask_status = None;
        let certificates = if signature_auth {
            let auth = self
                .config
                .certificates
                .clone()
                .ok_or("signature authentication without certificates")?;
            let verified = signature_auth::verify_peer_deferring(
                &auth,
                sa.choice.auth,
                &peer_id,
                &signed.certs,
                proof,
                &expected,
            );
            match verified {
                Ok((subject, certificate)) => {
                    sa.peer_identity = subject;
                    ask_status = certificate;
                }
                Err(e) => {
                    let reason = format!(
                        "certificate authentication of {} ({}) failed: {e}",
                        sa.peer,
                        peer_id.display_long()
                    );
                    let (peer, nat_t) = (sa.peer, sa.on_nat_t_port);
                    // RFC 2408 §3.14.1: tell the peer why.
                    self.notify_plain(peer, nat_t, header, e.notify_type());
                    return Err(reason);
                }
            }
            Some(auth)
        } else {
            if verify_slices_are_equal(&expected, proof).is_err() {
                return Err(format!(
                    "authentication failed for {}: the pre-shared keys differ",
                    sa.peer
                ));
            }
            sa.peer_identity = peer_id.display();
            None
        };
        let sa = self.sas.get_mut(&cookie).expect("looked up by the caller");
        let skeyid = sa.skeyid.as_ref().ok_or("no SKEYID")?;
        // Our identity: with certificates our subject DN (RFC 4945 §3.1.5),
        // else our address; with the protocol and port the peer used for
        // its own (RFC 2407 §4.6.2: 0/0 or UDP/500).
        let our_id = match &certificates {
            Some(auth) => auth
                .local
                .identification(peer_id.protocol, peer_id.port)
                .encode(),
            None => Identification::address(sa.local.ip(), peer_id.protocol, peer_id.port).encode(),
        };
        // HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
        let hash_r = prf.hmac(
            skeyid,
            &[
                &sa.g_xr,
                &sa.g_xi,
                &sa.cookie_r,
                &sa.cookie_i,
                &sa.sa_i_b,
                &our_id,
            ],
        );
        let mut chain = PayloadChain::new();
        match &certificates {
            Some(auth) => signature_auth::push_signed_identity(&mut chain, auth, &our_id, &hash_r)?,
            None => {
                chain.push(payload::IDENTIFICATION, &our_id);
                chain.push(payload::HASH, &hash_r);
            }
        }
        let keys = sa.keys.as_mut().expect("checked above");
        let reply = Header {
            flags: 0,
            ..*header
        };
        let (answer, last_block) =
            crypt::encrypt(keys.cipher, &keys.enc_key, &next_iv, &reply, &chain);
        keys.phase1_last_block = last_block.clone();
        sa.iv = last_block;
        sa.phase = Phase::Established;
        sa.last_heard = now;
        // Our lifetime: what the peer proposed plus slack so it rekeys first;
        // RFC 2407 §4.5's 28800 s when it proposed none; never over our cap.
        let proposed = Duration::from_secs(sa.choice.life_seconds.unwrap_or(28_800));
        sa.expires = Some(now + proposed.min(self.config.max_ike_lifetime) + LIFETIME_SLACK);
        sa.dh = None;
        let (id, peer) = (sa.id, sa.peer);
        let suite = format!(
            "{}/{}/{}/{}",
            sa.choice.cipher.name(),
            hash_name(sa.choice.hash),
            sa.choice.group.name(),
            sa.choice.auth.name()
        );
        let nat = match sa.extensions.nat_t {
            Some(v) if sa.nat.any() => format!("{}, {}", sa.nat.describe(), v.name()),
            _ => sa.nat.describe().to_string(),
        };
        let identity = sa.peer_identity.clone();
        // Message 6 goes out now (nobody waits on a fetch inside the
        // core); Quick Mode waits for the driver's answer.
        if ask_status.is_some() {
            sa.status_pending = Some(now + self.config.certificate_status_timeout);
        }
        self.by_initiator.retain(|_, c| *c != cookie);
        self.events.push_back(IkeEvent::IkeSaUp {
            ike_sa: id,
            peer,
            identity: identity.clone(),
            suite,
            nat,
        });
        if let Some(certificate) = ask_status {
            self.events.push_back(IkeEvent::CertificateStatusNeeded {
                ike_sa: id,
                peer,
                identity,
                certificate: Box::new(certificate),
            });
        }
        if initial_contact {
            // RFC 2407 §4.6.3.3: the peer kept no state; what we hold for
            // this address and port belongs to its previous life.
            self.drop_peer(now, peer, Some(cookie), super::events::DownReason::Replaced);
        }
        Ok(Some(answer))
    }

    /// An unencrypted notification (before keys exist): RFC 2408 §5.
    pub(crate) fn notify_plain(
        &mut self,
        remote: SocketAddr,
        on_nat_t_port: bool,
        header: &Header,
        kind: u16,
    ) {
        let mut chain = PayloadChain::new();
        let n = Notification {
            protocol: protocol::ISAKMP,
            spi: [header.initiator_cookie, header.responder_cookie].concat(),
            kind,
            data: Vec::new(),
        };
        chain.push(payload::NOTIFICATION, &n.encode());
        let h = Header {
            initiator_cookie: header.initiator_cookie,
            responder_cookie: header.responder_cookie,
            next_payload: 0,
            version: VERSION_1_0,
            exchange: exchange::INFORMATIONAL,
            flags: 0,
            message_id: 0,
            length: 0,
        };
        self.send(remote, on_nat_t_port, wire::message(&h, &chain));
    }
}

/// Lifetimes we enforce run this much past the proposed ones, so the
/// initiator's rekey, not our expiry, replaces an SA.
pub(crate) const LIFETIME_SLACK: Duration = Duration::from_secs(120);
