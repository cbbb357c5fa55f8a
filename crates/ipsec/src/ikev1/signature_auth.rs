//! Main Mode messages 5 and 6 with signatures (RFC 2409 §5.1), for both
//! roles: what the peer's ID, CERT and SIG payloads must prove, and the ID,
//! CERT chain and SIG we send. HASH_I and HASH_R are computed as with
//! pre-shared keys (only SKEYID differs, RFC 2409 §5); they are signed
//! instead of sent.

use crate::ike_crypto::signature::KeyKind;
use crate::ike_crypto::HashAlg;

use super::certificates::{
    self, cert_payload, CertificateAuth, PeerCertificate, PeerCertificateError,
    MAX_PEER_CERTIFICATES,
};
use super::payloads::Identification;
use super::proposal::AuthMethod;
use super::wire::{payload, PayloadChain, RawPayload};

/// The authentication method our key makes (RFC 2409 Appendix A: 3 = RSA
/// signatures; RFC 4754 §3: 9 = ECDSA with SHA-256 on P-256, 10 = ECDSA
/// with SHA-384 on P-384, 11 = ECDSA with SHA-512 on P-521).
pub fn method_for_key(kind: KeyKind) -> AuthMethod {
    match kind {
        KeyKind::Rsa => AuthMethod::RsaSignature,
        KeyKind::EcdsaP256 => AuthMethod::EcdsaSha256,
        KeyKind::EcdsaP384 => AuthMethod::EcdsaSha384,
        KeyKind::EcdsaP521 => AuthMethod::EcdsaSha512,
    }
}

/// The prf of HASH_I and HASH_R. RFC 4754 §7: with ECDSA methods they are
/// computed with the method's hash (HMAC-SHA-256 for ECDSA-256, HMAC-SHA-384
/// for ECDSA-384, HMAC-SHA-512 for ECDSA-521, keyed with SKEYID) whatever
/// hash Main Mode negotiated, so
/// the value signed is a digest of the curve's size (strongSwan does the
/// same); otherwise with the negotiated one (RFC 2409 §5).
pub fn hash_i_prf(method: AuthMethod, negotiated: HashAlg) -> HashAlg {
    match method {
        AuthMethod::EcdsaSha256 => HashAlg::Sha256,
        AuthMethod::EcdsaSha384 => HashAlg::Sha384,
        AuthMethod::EcdsaSha512 => HashAlg::Sha512,
        _ => negotiated,
    }
}

/// The signature-related payloads of message 5 or 6.
#[derive(Default)]
pub struct SignedIdentity<'a> {
    pub id: Option<&'a [u8]>,
    pub certs: Vec<&'a [u8]>,
    pub signature: Option<&'a [u8]>,
}

impl<'a> SignedIdentity<'a> {
    /// Notes one payload; others are left to the caller.
    pub fn note(&mut self, p: &RawPayload<'a>) {
        match p.kind {
            payload::IDENTIFICATION if self.id.is_none() => self.id = Some(p.body),
            payload::CERTIFICATE if self.certs.len() < MAX_PEER_CERTIFICATES => {
                if let Some(der) = certificates::x509_from_cert_payload(p.body) {
                    self.certs.push(der);
                }
            }
            payload::SIGNATURE if self.signature.is_none() => self.signature = Some(p.body),
            _ => {}
        }
    }
}

/// Checks the peer: its chain, dates and ID against our CAs, its key type
/// against the method chosen, and its SIG over `expected_hash` (HASH_I when
/// we are the responder, HASH_R when we are the initiator). Returns the
/// certificate subject for the log.
pub fn verify_peer(
    auth: &CertificateAuth,
    method: AuthMethod,
    id: &Identification,
    certs: &[&[u8]],
    signature: &[u8],
    expected_hash: &[u8],
) -> Result<String, PeerCertificateError> {
    verify(auth, method, id, certs, signature, expected_hash, false).map(|(subject, _)| subject)
}

/// [`verify_peer`] for the responder, whose driver asks about the end
/// entity online (OCSP, CRL distribution points) when that is configured:
/// an end entity no current CRL file covers is left to that step, and
/// the certificate to ask about comes back with the subject (none when
/// the online checks are off, or the end entity is itself a trusted CA).
pub fn verify_peer_deferring(
    auth: &CertificateAuth,
    method: AuthMethod,
    id: &Identification,
    certs: &[&[u8]],
    signature: &[u8],
    expected_hash: &[u8],
) -> Result<(String, Option<PeerCertificate>), PeerCertificateError> {
    verify(auth, method, id, certs, signature, expected_hash, true)
}

fn verify(
    auth: &CertificateAuth,
    method: AuthMethod,
    id: &Identification,
    certs: &[&[u8]],
    signature: &[u8],
    expected_hash: &[u8],
    defer: bool,
) -> Result<(String, Option<PeerCertificate>), PeerCertificateError> {
    let now = (auth.unix_time)();
    let (peer, online) = if defer {
        auth.trust.verify_peer_online(certs, id, now)?
    } else {
        (auth.trust.verify_peer(certs, id, now)?, false)
    };
    let theirs = method_for_key(peer.key.kind());
    if theirs != method {
        return Err(PeerCertificateError::WrongKeyType {
            theirs: peer.key.kind().name(),
            method: method.name(),
        });
    }
    peer.key
        .verify_hash(expected_hash, signature)
        .map_err(|_| PeerCertificateError::BadSignature(peer.subject.clone()))?;
    Ok((peer.subject, peer.certificate.filter(|_| online)))
}

/// Our ID (already encoded as `our_id`), our chain as CERT payloads, and the
/// signature of `hash` (RFC 2409 §5.1: HDR*, IDx, [CERT,] SIG).
pub fn push_signed_identity(
    chain: &mut PayloadChain,
    auth: &CertificateAuth,
    our_id: &[u8],
    hash: &[u8],
) -> Result<(), String> {
    let signature = auth
        .local
        .key()
        .sign_hash(hash)
        .map_err(|e| format!("our signature: {e}"))?;
    chain.push(payload::IDENTIFICATION, our_id);
    for der in auth.local.chain() {
        chain.push(payload::CERTIFICATE, &cert_payload(der));
    }
    chain.push(payload::SIGNATURE, &signature);
    Ok(())
}

/// CR payloads naming each CA we trust (RFC 2408 §3.10), so a peer with
/// several certificates picks one we can verify.
pub fn push_cert_requests(chain: &mut PayloadChain, auth: &CertificateAuth) {
    for subject in auth.trust.subjects() {
        chain.push(
            payload::CERTIFICATE_REQUEST,
            &certificates::cert_request_payload(&subject),
        );
    }
}
