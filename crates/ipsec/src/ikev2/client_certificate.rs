//! The responder's check of a client that authenticates with a
//! certificate (RFC 7296 §2.15, §3.6): its chain must end at a CA of
//! `[ikev2] client_ca` and be within its dates (the IKEv1 code's checks,
//! `ikev1::certificates`), the end entity must name the client's IDi
//! (RFC 4945 §3.1: the subject DN or a subjectAltName), its key usage must
//! allow signatures, its extended key usage (if any) must allow client
//! authentication (below), and its key must have signed the AUTH octets.
//!
//! The user the server's policies, accounting and RADIUS see is the IDi:
//! an e-mail address or DNS name as sent, or for a distinguished name the
//! certificate's common name.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::UnparsedPublicKey;
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ikev1::certificates::{x509_from_cert_payload, PeerCertificateError, TrustAnchors};
use crate::ikev1::payloads::Identification as V1Identification;

use super::payloads::{cert_encoding, id_type, Certificate, Identification};
use super::server_signature::{signature_algorithm, ServerSignatureError};

/// The CAs client certificates must chain to.
#[derive(Clone)]
pub struct ClientTrust {
    pub anchors: Arc<TrustAnchors>,
    /// The wall clock for certificate dates (the core owns no clock).
    pub unix_time: fn() -> i64,
}

impl ClientTrust {
    pub fn new(anchors: TrustAnchors) -> Self {
        ClientTrust {
            anchors: Arc::new(anchors),
            unix_time: crate::ikev1::certificates::system_unix_time,
        }
    }

    /// The CERTREQ body naming our client CAs (§3.7: SHA-1 of each CA's
    /// SubjectPublicKeyInfo). strongSwan sends its certificate only when
    /// asked (`send_cert = ifasked`, its default).
    pub fn cert_request(&self) -> Vec<u8> {
        let hashes: Vec<u8> = self
            .anchors
            .public_key_infos()
            .iter()
            .flat_map(|spki| {
                digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, spki)
                    .as_ref()
                    .to_vec()
            })
            .collect();
        Certificate::encode(cert_encoding::X509_SIGNATURE, &hashes)
    }
}

/// Why a client's certificate authentication was refused (for the log;
/// the client sees AUTHENTICATION_FAILED).
#[derive(Debug, Error)]
pub enum ClientCertificateError {
    #[error("its certificate was refused: {0}")]
    Certificate(#[from] PeerCertificateError),
    #[error("its certificate \"{0}\" is not for client authentication (its extended key usage names neither clientAuth nor IKE)")]
    NotForClients(String),
    #[error("it authenticated with AUTH method {0}, not a signature we check")]
    Method(u8),
    #[error("it signs with an algorithm we do not check (RFC 7427)")]
    Algorithm,
    #[error("its AUTH signature does not verify with the key of \"{0}\"")]
    BadSignature(String),
}

/// A client whose certificate and signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClient {
    /// The end entity's subject DN, for the log.
    pub subject: String,
    /// The user name policies, accounting and RADIUS see.
    pub user: String,
    /// The certificate and its issuer (for the driver's online status
    /// check).
    pub certificate: Option<crate::ikev1::certificates::PeerCertificate>,
}

/// Checks a client: `cert_bodies` are its CERT payloads (end entity
/// first), `idi` its IDi, `method`/`data` its AUTH, `signed` the octets it
/// must have signed (§2.15: its IKE_SA_INIT request, our nonce,
/// prf(SK_pi, IDi)).
pub fn verify_client(
    trust: &ClientTrust,
    cert_bodies: &[&[u8]],
    idi: &Identification<'_>,
    method: u8,
    data: &[u8],
    signed: &[u8],
) -> Result<VerifiedClient, ClientCertificateError> {
    let certs: Vec<&[u8]> = cert_bodies
        .iter()
        .filter_map(|b| x509_from_cert_payload(b))
        .collect();
    // The IKEv2 ID body is the IKEv1 one with the protocol and port octets
    // reserved (§3.5).
    let id = V1Identification::parse(idi.body).ok_or(PeerCertificateError::Malformed)?;
    let peer = trust
        .anchors
        .verify_peer_deferring(&certs, &id, (trust.unix_time)())?;
    // `verify_peer` parsed the leaf already; it is there and well formed.
    let leaf = certs
        .first()
        .and_then(|der| X509Certificate::from_der(der).ok())
        .map(|(_, c)| c)
        .ok_or(PeerCertificateError::Malformed)?;
    if !allows_client_authentication(&leaf) {
        return Err(ClientCertificateError::NotForClients(peer.subject));
    }
    let (algorithm, signature) =
        signature_algorithm(peer.key.kind(), method, data).map_err(|e| match e {
            ServerSignatureError::Method(m) => ClientCertificateError::Method(m),
            _ => ClientCertificateError::Algorithm,
        })?;
    UnparsedPublicKey::new(algorithm, peer.key.bytes())
        .verify(signed, signature)
        .map_err(|_| ClientCertificateError::BadSignature(peer.subject.clone()))?;
    let user = user_name(idi, &leaf);
    Ok(VerifiedClient {
        subject: peer.subject,
        user,
        certificate: peer.certificate,
    })
}

/// RFC 4945 §5.1.3.12 leaves the extended key usage of IKE certificates to
/// policy. As Windows' IKEv2 certificate authentication does, a client's
/// certificate without the extension is accepted, and one with it must
/// name client authentication (1.3.6.1.5.5.7.3.2), IKE (id-kp-ipsecIKE,
/// 1.3.6.1.5.5.7.3.17), Microsoft's IP security IKE intermediate
/// (1.3.6.1.5.5.8.2.2) or any purpose: a server-only certificate is not a
/// client's.
fn allows_client_authentication(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let e = &eku.value;
            e.any
                || e.client_auth
                || e.other.iter().any(|oid| {
                    let text = oid.to_id_string();
                    text == "1.3.6.1.5.5.7.3.17" || text == "1.3.6.1.5.5.8.2.2"
                })
        }
        Ok(None) => true,
        Err(_) => false,
    }
}

/// The IDi as a user name: an e-mail address, DNS name or address as
/// sent; for a distinguished name (what Windows sends) the certificate's
/// common name, else the DN as text.
fn user_name(idi: &Identification<'_>, leaf: &X509Certificate<'_>) -> String {
    if idi.kind == id_type::DER_ASN1_DN {
        let cn = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(|s| super::payloads::printable(s.as_bytes()));
        return cn.unwrap_or_else(|| leaf.subject().to_string());
    }
    idi.describe()
}
