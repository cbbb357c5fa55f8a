//! Main Mode with a pre-shared key or a certificate, initiator side
//! (RFC 2409 §5, §5.1, §5.4; RFC 4754),
//! with NAT-T negotiation and floating to port 4500 (RFC 3947 §3, §4).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::ike_crypto::{ikev1_keys, DhPrivate};

use super::crypt::{self, MessageKeys};
use super::events::{DownReason, IkeEvent};
use super::initiator::{Failure, Handled, IkeState, Initiator, Stage};
use super::nat_detection::{self, nat_d};
use super::offer::{accept_main_mode, main_mode_offer};
use super::payloads::{notify, Identification, Notification};
use super::proposal::hash_name;
use super::sa_payload::{protocol, SaPayload};
use super::signature_auth::{self, SignedIdentity};
use super::vendor_ids::{self, PeerExtensions};
use super::wire::{self, exchange, payload, Header, PayloadChain, HEADER_LEN, VERSION_1_0};

/// Our nonce length (RFC 2409 §5: 8–256 bytes).
const NONCE_LEN: usize = 32;
/// RFC 2407 §4.6.2: ID protocol and port of Main Mode (Windows: UDP/500).
const UDP: u8 = 17;
const IKE_PORT: u16 = 500;

impl Initiator {
    pub(crate) fn header(&self, exchange: u8, message_id: u32) -> Header {
        let ike = self.ike.as_ref().expect("only called with an IKE SA");
        Header {
            initiator_cookie: ike.cookie_i,
            responder_cookie: ike.cookie_r,
            next_payload: 0,
            version: VERSION_1_0,
            exchange,
            flags: 0,
            message_id,
            length: 0,
        }
    }

    /// Message 1: our SA offer and vendor IDs. Main Mode always starts on
    /// port 500 (RFC 3947 §4).
    pub(crate) fn start_main_mode(&mut self, now: Instant) {
        let cookie_i = loop {
            let c = self.random_bytes::<8>();
            if c != [0; 8] {
                break c;
            }
        };
        self.peer = self.server;
        self.on_nat_t = false;
        self.keepalive_at = None;
        let sa_i_b = main_mode_offer(
            &self.config.ike_offers,
            self.config.ike_lifetime,
            self.config.auth_method(),
        );
        let id = self.next_ike_id;
        self.next_ike_id += 1;
        self.ike = Some(IkeState {
            id,
            cookie_i,
            cookie_r: [0; 8],
            stage: Stage::SentSa,
            sa_i_b,
            choice: None,
            nat_t: None,
            dpd: false,
            dh: None,
            g_xi: Vec::new(),
            g_xr: Vec::new(),
            ni: Vec::new(),
            skeyid: None,
            keys: None,
            iv: Vec::new(),
            nat: Default::default(),
            peer_identity: String::new(),
            renew_at: None,
            fragmentation: false,
            next_fragment_id: 1,
            fragments: Default::default(),
        });
        let ike = self.ike.as_ref().expect("just set");
        let mut chain = PayloadChain::new();
        chain.push(payload::SA, &ike.sa_i_b);
        // RFC 3947 §3.1 and the draft Windows and SoftEther still answer
        // with; RFC 3706 §5.1.
        chain.push(payload::VENDOR_ID, &vendor_ids::NAT_T_RFC3947);
        chain.push(payload::VENDOR_ID, &vendor_ids::NAT_T_DRAFT_02_N);
        chain.push(payload::VENDOR_ID, &vendor_ids::DPD);
        if self.config.fragmentation {
            chain.push(payload::VENDOR_ID, &vendor_ids::FRAGMENTATION_CAPABLE);
        }
        let message = wire::message(&self.header(exchange::MAIN_MODE, 0), &chain);
        self.send_request(now, message, "Main Mode message 1");
    }

    /// Message 2: the chosen transform and the server's vendor IDs. Answer
    /// with message 3: KE, Ni and NAT-D.
    pub(crate) fn main_mode_2(&mut self, now: Instant, header: &Header, message: &[u8]) -> Handled {
        if header.responder_cookie == [0; 8] {
            return Err("Main Mode message 2 without a responder cookie".into());
        }
        let payloads = wire::payloads(header.next_payload, &message[HEADER_LEN..])
            .map_err(|e| format!("malformed Main Mode message 2: {e}"))?;
        let mut extensions = PeerExtensions::default();
        let mut sa_body = None;
        for p in &payloads {
            match p.kind {
                payload::SA if sa_body.is_none() => sa_body = Some(p.body),
                payload::VENDOR_ID => extensions.note(p.body),
                _ => {}
            }
        }
        let sa_body = sa_body.ok_or("Main Mode message 2 without an SA payload")?;
        let answer = SaPayload::parse(sa_body)
            .map_err(|e| format!("malformed SA payload in Main Mode message 2: {e}"))?;
        let choice = accept_main_mode(&answer, &self.config.ike_offers, self.config.auth_method())
            .map_err(|reason| Failure::Fatal(reason, DownReason::Closed))?;
        let dh = DhPrivate::generate(choice.group).map_err(|e| format!("key exchange: {e}"))?;
        let ni = self.random_bytes::<NONCE_LEN>().to_vec();
        let force = self.config.force_udp_encapsulation;
        let junk = self.random_bytes::<32>();
        let (local, server) = (self.local, self.server);
        let ike = self.ike.as_mut().expect("dispatched with an IKE SA");
        ike.cookie_r = header.responder_cookie;
        ike.nat_t = extensions.nat_t;
        ike.dpd = extensions.dpd;
        ike.fragmentation = extensions.fragmentation && self.config.fragmentation;
        ike.g_xi = dh.public_value().to_vec();
        ike.ni = ni.clone();
        let mut chain = PayloadChain::new();
        chain.push(payload::KEY_EXCHANGE, dh.public_value());
        chain.push(payload::NONCE, &ni);
        if let Some(auth) = &self.config.certificates {
            // RFC 2408 §3.10: the CAs whose certificates we can verify.
            signature_auth::push_cert_requests(&mut chain, auth);
        }
        if let Some(version) = ike.nat_t {
            let hash = choice.hash;
            // RFC 3947 §3.2: first the server's address as we see it, then ours.
            chain.push(
                version.nat_d_payload(),
                &nat_d(hash, &ike.cookie_i, &ike.cookie_r, server),
            );
            let ours = if force {
                // A hash that matches nothing: the server sees a NAT and
                // both sides use UDP encapsulation.
                junk[..hash.output_len().min(32)].to_vec()
            } else {
                nat_d(hash, &ike.cookie_i, &ike.cookie_r, local)
            };
            chain.push(version.nat_d_payload(), &ours);
        }
        ike.choice = Some(choice);
        ike.dh = Some(dh);
        ike.stage = Stage::SentKe;
        let message = wire::message(&self.header(exchange::MAIN_MODE, 0), &chain);
        self.send_request(now, message, "Main Mode message 3");
        Ok(())
    }

    /// Message 4: the server's KE, Nr and NAT-D. Derive the keys, detect
    /// NATs, float to the NAT-T port if needed, send message 5 (encrypted):
    /// IDii, HASH_I and INITIAL-CONTACT.
    pub(crate) fn main_mode_4(&mut self, now: Instant, header: &Header, message: &[u8]) -> Handled {
        if header.is_encrypted() {
            return Err("Main Mode message 4 is encrypted".into());
        }
        let payloads = wire::payloads(header.next_payload, &message[HEADER_LEN..])
            .map_err(|e| format!("malformed Main Mode message 4: {e}"))?;
        let (local, server) = (self.local, self.server);
        let force = self.config.force_udp_encapsulation;
        let psk = self.config.psk.clone();
        let certificates = self.config.certificates.clone();
        let ike = self.ike.as_mut().expect("dispatched with an IKE SA");
        let choice = ike.choice.clone().ok_or("no choice")?;
        let nat_d_kind = ike.nat_t.map(|v| v.nat_d_payload());
        let (mut ke, mut nonce, mut nat_ds) = (None, None, Vec::new());
        for p in &payloads {
            match p.kind {
                payload::KEY_EXCHANGE => ke = Some(p.body),
                payload::NONCE => nonce = Some(p.body),
                k if Some(k) == nat_d_kind => nat_ds.push(p.body),
                _ => {}
            }
        }
        let ke = ke.ok_or("Main Mode message 4 without a key exchange")?;
        if ke.len() != choice.group.public_len() {
            return Err(format!("the server's key exchange has {} bytes", ke.len()).into());
        }
        let nr = nonce.ok_or("Main Mode message 4 without a nonce")?;
        if !(8..=256).contains(&nr.len()) {
            return Err(format!("the server's nonce has {} bytes", nr.len()).into());
        }
        let dh = ike.dh.as_ref().ok_or("no key exchange")?;
        let g_xy = dh
            .agree(ke)
            .map_err(|e| format!("the server's key exchange value is invalid: {e}"))?;
        let hash = choice.hash;
        // RFC 2409 §5: SKEYID depends on the authentication method.
        let skeyid = if choice.auth.is_signature() {
            ikev1_keys::skeyid_signature(hash, &ike.ni, nr, &g_xy)
        } else {
            ikev1_keys::skeyid_psk(hash, &psk, &ike.ni, nr)
        };
        let keys =
            ikev1_keys::phase1_keys(hash, skeyid.clone(), &g_xy, &ike.cookie_i, &ike.cookie_r);
        let enc_key = ikev1_keys::encryption_key(hash, &keys.skeyid_e, choice.cipher.key_len());
        ike.g_xr = ke.to_vec();
        ike.iv = ikev1_keys::phase1_iv(hash, &ike.g_xi, &ike.g_xr, choice.cipher.block_len());
        ike.skeyid = Some(skeyid);
        ike.keys = Some(MessageKeys {
            cipher: choice.cipher,
            hash,
            enc_key,
            skeyid_a: keys.skeyid_a,
            skeyid_d: keys.skeyid_d,
            phase1_last_block: Vec::new(),
        });
        if ike.nat_t.is_some() {
            ike.nat =
                nat_detection::detect(hash, &ike.cookie_i, &ike.cookie_r, &nat_ds, local, server);
        }
        // RFC 3947 §4: with a NAT on either side, message 5 and everything
        // after go to the NAT-T port, behind the non-ESP marker.
        let float = ike.nat_t.is_some() && (ike.nat.any() || force);
        // Our identity: with a certificate its subject DN (RFC 4945
        // §3.1.5, what Windows sends), else our address.
        let id = match &certificates {
            Some(auth) => auth.local.identification(UDP, IKE_PORT).encode(),
            None => Identification::address(local.ip(), UDP, IKE_PORT).encode(),
        };
        // HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
        let skeyid = ike.skeyid.as_ref().expect("just set");
        let hash_i = signature_auth::hash_i_prf(choice.auth, hash).hmac(
            skeyid,
            &[
                &ike.g_xi,
                &ike.g_xr,
                &ike.cookie_i,
                &ike.cookie_r,
                &ike.sa_i_b,
                &id,
            ],
        );
        let mut chain = PayloadChain::new();
        match &certificates {
            Some(auth) => signature_auth::push_signed_identity(&mut chain, auth, &id, &hash_i)?,
            None => {
                chain.push(payload::IDENTIFICATION, &id);
                chain.push(payload::HASH, &hash_i);
            }
        }
        // RFC 2407 §4.6.3.3: we hold no other state with this server.
        chain.push(
            payload::NOTIFICATION,
            &Notification {
                protocol: protocol::ISAKMP,
                spi: [ike.cookie_i, ike.cookie_r].concat(),
                kind: notify::INITIAL_CONTACT,
                data: Vec::new(),
            }
            .encode(),
        );
        ike.stage = Stage::SentId;
        let h = self.header(exchange::MAIN_MODE, 0);
        let ike = self.ike.as_mut().expect("dispatched with an IKE SA");
        let keys = ike.keys.as_ref().expect("just set");
        let (message, next_iv) = crypt::encrypt(keys.cipher, &keys.enc_key, &ike.iv, &h, &chain);
        ike.iv = next_iv;
        if float {
            self.peer = SocketAddr::new(self.server.ip(), self.config.nat_t_port);
            self.on_nat_t = true;
        }
        self.send_request(now, message, "Main Mode message 5");
        Ok(())
    }

    /// Message 6: IDir and HASH_R. Verifies the server knows the key; any
    /// identity is accepted (SoftEther sends 0.0.0.0).
    pub(crate) fn main_mode_6(&mut self, now: Instant, header: &Header, message: &[u8]) -> Handled {
        if !header.is_encrypted() {
            return Err("Main Mode message 6 is not encrypted".into());
        }
        let server = self.server.ip();
        let wrong_key = || {
            Failure::Fatal(
                format!("authentication with {server} failed: the pre-shared keys differ"),
                DownReason::Closed,
            )
        };
        let ike = self.ike.as_mut().expect("dispatched with an IKE SA");
        let keys = ike.keys.as_ref().ok_or("no keys")?;
        let (plain, last_block) = crypt::decrypt(keys.cipher, &keys.enc_key, &ike.iv, message)
            .ok_or("Main Mode message 6 is not a whole number of cipher blocks")?;
        let payloads = wire::payloads(header.next_payload, &plain).map_err(|_| wrong_key())?;
        let mut signed = SignedIdentity::default();
        for p in &payloads {
            signed.note(p);
        }
        let choice = ike.choice.as_ref().ok_or("no choice")?;
        let proof = if choice.auth.is_signature() {
            signed.signature
        } else {
            payloads
                .iter()
                .find(|p| p.kind == payload::HASH)
                .map(|p| p.body)
        };
        let (Some(id), Some(proof)) = (signed.id, proof) else {
            return Err(wrong_key());
        };
        let skeyid = ike.skeyid.as_ref().ok_or("no SKEYID")?;
        // HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
        let expected = signature_auth::hash_i_prf(choice.auth, choice.hash).hmac(
            skeyid,
            &[
                &ike.g_xr,
                &ike.g_xi,
                &ike.cookie_r,
                &ike.cookie_i,
                &ike.sa_i_b,
                id,
            ],
        );
        match &self.config.certificates {
            Some(auth) if choice.auth.is_signature() => {
                let peer_id = Identification::parse(id).ok_or_else(|| {
                    Failure::Fatal(
                        format!("{server} sent a malformed identity"),
                        DownReason::Closed,
                    )
                })?;
                let subject = signature_auth::verify_peer(
                    auth,
                    choice.auth,
                    &peer_id,
                    &signed.certs,
                    proof,
                    &expected,
                )
                .map_err(|e| {
                    Failure::Fatal(
                        format!(
                            "certificate authentication of {server} ({}) failed: {e}",
                            peer_id.display_long()
                        ),
                        DownReason::Closed,
                    )
                })?;
                ike.peer_identity = subject;
            }
            _ => {
                if verify_slices_are_equal(&expected, proof).is_err() {
                    return Err(wrong_key());
                }
                ike.peer_identity = Identification::parse(id)
                    .map_or_else(|| "an empty identity".to_string(), |i| i.display());
            }
        }
        let keys = ike.keys.as_mut().expect("checked above");
        keys.phase1_last_block = last_block;
        ike.stage = Stage::Established;
        ike.dh = None;
        // Our lifetime, shortened if the server answered with a shorter one;
        // renewed before the end so no exchange meets an expired SA.
        let life = choice.life_seconds.map_or(self.config.ike_lifetime, |s| {
            Duration::from_secs(s).min(self.config.ike_lifetime)
        });
        ike.renew_at = Some(now + life * self.config.rekey_percent.min(100) / 100);
        let suite = format!(
            "{}/{}/{}/{}",
            choice.cipher.name(),
            hash_name(choice.hash),
            choice.group.name(),
            choice.auth.name()
        );
        let nat = match ike.nat_t {
            None => "no NAT-T".to_string(),
            Some(v) => {
                let state = if !ike.nat.any() && self.on_nat_t {
                    "UDP encapsulation forced"
                } else {
                    ike.nat.describe_as_initiator()
                };
                format!("{state}, {}", v.name())
            }
        };
        let event = IkeEvent::IkeSaUp {
            ike_sa: ike.id,
            peer: self.peer,
            identity: ike.peer_identity.clone(),
            suite,
            nat,
        };
        self.events.push_back(event);
        self.request = None;
        self.last_heard = now;
        self.dpd.pending = None;
        if self.on_nat_t && !self.config.keepalive_interval.is_zero() {
            self.keepalive_at = Some(now + self.config.keepalive_interval);
        }
        if let Some(replaces) = self.want_child.take() {
            self.start_quick_mode(now, replaces);
        }
        Ok(())
    }

    /// An unencrypted notification during Main Mode (RFC 2408 §5): the
    /// server refused us, typically NO-PROPOSAL-CHOSEN.
    pub(crate) fn plain_notification(&mut self, header: &Header, message: &[u8]) -> Handled {
        let payloads = wire::payloads(header.next_payload, &message[HEADER_LEN..])
            .map_err(|e| format!("malformed notification: {e}"))?;
        let Some(n) = payloads
            .iter()
            .filter(|p| p.kind == payload::NOTIFICATION)
            .find_map(|p| Notification::parse(p.body))
        else {
            return Ok(());
        };
        if self.is_established() || n.kind >= 16384 {
            // Unauthenticated status after Main Mode: only worth a line.
            return Err(Failure::Drop(format!(
                "unauthenticated notification {} from {}",
                super::informational::notify_name(n.kind),
                self.server.ip()
            )));
        }
        let hint = match n.kind {
            notify::NO_PROPOSAL_CHOSEN => ": it accepts none of our Main Mode proposals",
            notify::AUTHENTICATION_FAILED | notify::INVALID_HASH_INFORMATION => {
                ": the pre-shared keys differ"
            }
            notify::INVALID_ID_INFORMATION => ": it does not accept our identity",
            _ => "",
        };
        Err(Failure::Fatal(
            format!(
                "{} refused Main Mode with {}{hint}",
                self.server.ip(),
                super::informational::notify_name(n.kind)
            ),
            DownReason::Closed,
        ))
    }
}
