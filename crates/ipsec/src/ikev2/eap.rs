//! EAP inside IKE_AUTH on the responder side (RFC 7296 §2.16): we
//! authenticate first (IDr and AUTH with our key), then carry EAP messages
//! between the client and the driver's EAP server, and finally check the
//! client's AUTH keyed with the method's MSK.

use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

use super::auth::{shared_key_auth, signed_octets};
use super::events::{AuthorizationRequest, ClientAuthMethod, EapReply, IkeSaId, Ikev2Event};
use super::ike_sa::{EapStage, PendingChild, Stage};
use super::notify;
use super::payloads::{auth_method, Authentication};
use super::responder::Ikev2Responder;
use super::signature_job::{OurAuth, SignatureJob};
use super::wire::{exchange, payload, Header, PayloadChain};

impl Ikev2Responder {
    /// The first IKE_AUTH came without AUTH: the client wants EAP.
    pub(super) fn start_eap(
        &mut self,
        now: Instant,
        header: &Header,
        request: super::ike_auth::FirstAuth,
        identity: String,
    ) {
        let spi_r = header.spi_r;
        // The server proves itself with its certificate, or without one
        // with the pre-shared key (strongSwan's `auth = psk` with a client's
        // `auth = eap-mschapv2`).
        let key = match self.config.certificate {
            Some(_) => Some(Vec::new()),
            None => self
                .config
                .psks
                .lookup(&request.idi_data)
                .map(|k| k.to_vec()),
        };
        let Some(key) = key else {
            self.fail_auth(
                spi_r,
                header.message_id,
                notify::AUTHENTICATION_FAILED,
                format!("IKEv2 client {identity} wants EAP, but this server has neither a certificate nor a pre-shared key to prove itself with"),
            );
            return;
        };
        let idr_body = self.config.local_identity.id_body();
        let offload = self
            .config
            .certificate
            .clone()
            .filter(|_| self.config.offload_signatures);
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        sa.identity = identity.clone();
        sa.auth_key = Some(Zeroizing::new(key));
        sa.eap = true;
        // §2.15: what we sign is fixed since IKE_SA_INIT, so the signature
        // can be made while the EAP server prepares its first request.
        let job = offload.map(|credential| SignatureJob::for_sa(sa, credential, &idr_body));
        sa.stage = Stage::Eap(Box::new(EapStage {
            pending: PendingChild {
                message_id: header.message_id,
                proposals: request.proposals,
                tsi: request.tsi,
                tsr: request.tsr,
                cp_requested: request.cp_requested,
                wants_ipv4: request.wants_ipv4,
                wants_ipv6: request.wants_ipv6,
                requested_since: now,
            },
            idi_body: request.idi_body,
            owe_answer: true,
            sent_auth: false,
            held_reply: None,
            msk: None,
            eap_identity: None,
            since: now,
        }));
        let (ike_sa, peer) = (sa.id, sa.peer);
        self.push_event(Ikev2Event::EapStart {
            ike_sa,
            peer,
            ike_identity: identity,
        });
        if let Some(job) = job {
            self.push_event(Ikev2Event::SignatureNeeded(Box::new(job)));
        }
    }

    /// A later IKE_AUTH of the EAP conversation.
    pub(super) fn eap_round(&mut self, now: Instant, header: &Header, first: u8, inner: &[u8]) {
        let spi_r = header.spi_r;
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let Stage::Eap(stage) = &mut sa.stage else {
            return;
        };
        if stage.owe_answer && stage.pending.message_id == header.message_id {
            return; // retransmitted while the EAP server works
        }
        let round = match super::ike_auth::parse_eap_round(first, inner) {
            Ok(r) => r,
            Err(e) => {
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::INVALID_SYNTAX,
                    format!("malformed IKE_AUTH: {e}"),
                );
                return;
            }
        };
        let (ike_sa, peer) = (sa.id, sa.peer);
        if let Some(msk) = stage.msk.clone() {
            // §2.16: after EAP Success the client's AUTH is keyed with the MSK.
            let Some(auth) = round
                .auth
                .filter(|a| a.method == auth_method::SHARED_KEY_MIC)
            else {
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::AUTHENTICATION_FAILED,
                    "IKEv2 client sent no AUTH after EAP".into(),
                );
                return;
            };
            let signed = signed_octets(
                sa.prf,
                &sa.init_request,
                &sa.nr,
                &sa.keys.sk_pi,
                &stage.idi_body,
            );
            let expected = shared_key_auth(sa.prf, &msk, &signed);
            if verify_slices_are_equal(&expected, auth.data).is_err() {
                let who = stage.eap_identity.clone().unwrap_or_default();
                self.fail_auth(
                    spi_r,
                    header.message_id,
                    notify::AUTHENTICATION_FAILED,
                    format!("IKEv2 AUTH after EAP did not verify for {who}"),
                );
                return;
            }
            let identity = stage.eap_identity.clone().unwrap_or_default();
            let mut pending = PendingChild {
                message_id: header.message_id,
                proposals: std::mem::take(&mut stage.pending.proposals),
                tsi: std::mem::take(&mut stage.pending.tsi),
                tsr: std::mem::take(&mut stage.pending.tsr),
                cp_requested: stage.pending.cp_requested,
                wants_ipv4: stage.pending.wants_ipv4,
                wants_ipv6: stage.pending.wants_ipv6,
                requested_since: now,
            };
            pending.requested_since = now;
            let (wants_ipv4, wants_ipv6) = (pending.wants_ipv4, pending.wants_ipv6);
            sa.auth_key = Some(msk);
            sa.identity = identity.clone();
            sa.stage = Stage::Authorizing(Box::new(pending));
            self.half_open = self.half_open.saturating_sub(1);
            self.push_event(Ikev2Event::AuthorizationNeeded(Box::new(
                AuthorizationRequest {
                    ike_sa,
                    peer,
                    identity,
                    method: ClientAuthMethod::Eap,
                    certificate_subject: None,
                    certificate: None,
                    wants_ipv4,
                    wants_ipv6,
                },
            )));
            return;
        }
        let Some(packet) = round.eap else {
            self.fail_auth(
                spi_r,
                header.message_id,
                notify::AUTHENTICATION_FAILED,
                "IKEv2 client sent neither EAP nor AUTH".into(),
            );
            return;
        };
        stage.pending.message_id = header.message_id;
        stage.owe_answer = true;
        stage.since = now;
        let packet = packet.to_vec();
        self.push_event(Ikev2Event::EapResponse { ike_sa, packet });
    }

    /// The driver's EAP server answers the client's last EAP message (or
    /// starts the conversation).
    pub fn eap_reply(&mut self, now: Instant, ike_sa: IkeSaId, reply: EapReply) {
        let Some(&spi_r) = self.ids.get(&ike_sa) else {
            return;
        };
        let idr_body = self.config.local_identity.id_body();
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        let Stage::Eap(stage) = &mut sa.stage else {
            return;
        };
        if !stage.owe_answer {
            return;
        }
        if !stage.sent_auth && matches!(sa.our_signature, OurAuth::Pending) {
            // Our AUTH is still being signed: this answer follows it
            // (`signature_ready`); a retransmitted request meanwhile is
            // ignored as while the EAP server works.
            stage.held_reply = Some(reply);
            return;
        }
        stage.owe_answer = false;
        stage.since = now;
        let message_id = stage.pending.message_id;
        let mut chain = PayloadChain::new();
        if !stage.sent_auth {
            // §2.16: the responder authenticates itself in its first answer.
            stage.sent_auth = true;
            let signed =
                || signed_octets(sa.prf, &sa.init_response, &sa.ni, &sa.keys.sk_pr, &idr_body);
            chain.push(payload::IDR, &idr_body);
            let signature = sa.our_signature.take_done();
            match &self.config.certificate {
                Some(credential) => {
                    let signed = credential.push_done_or_sign(
                        &mut chain,
                        signature,
                        signed,
                        &sa.peer_hashes,
                    );
                    if let Err(e) = signed {
                        let reason = format!(
                            "cannot authenticate this server to IKEv2 client {}: {e}",
                            sa.identity
                        );
                        self.fail_auth(spi_r, message_id, notify::AUTHENTICATION_FAILED, reason);
                        return;
                    }
                }
                None => {
                    let key = sa.auth_key.clone().unwrap_or_default();
                    chain.push(
                        payload::AUTH,
                        &Authentication::encode(
                            auth_method::SHARED_KEY_MIC,
                            &shared_key_auth(sa.prf, &key, &signed()),
                        ),
                    );
                }
            }
        }
        let peer = sa.peer;
        match reply {
            EapReply::Continue(packet) => {
                chain.push(payload::EAP, &packet);
                self.respond(spi_r, exchange::IKE_AUTH, message_id, &chain);
            }
            EapReply::Success {
                packet,
                msk,
                identity,
            } => {
                stage.msk = Some(msk);
                stage.eap_identity = Some(identity);
                chain.push(payload::EAP, &packet);
                self.respond(spi_r, exchange::IKE_AUTH, message_id, &chain);
            }
            EapReply::Failure { packet, reason } => {
                chain.push(payload::EAP, &packet);
                self.stats.refused += 1;
                self.respond(spi_r, exchange::IKE_AUTH, message_id, &chain);
                self.refuse(peer, reason);
                self.remove_sa(spi_r, super::events::DownReason::Closed);
            }
        }
    }
}
