//! The initiator's check of a server that authenticates with a certificate
//! (RFC 7296 §2.15, §3.6): its chain must end at a CA we trust, name the
//! identity it sent (IDr) and the host we dialled, and its key must have
//! signed the AUTH octets. Signatures: RFC 7427 method 14 (RSA PKCS#1 v1.5
//! or ECDSA with SHA-2, the AlgorithmIdentifier inside the AUTH data), RFC
//! 4754 methods 9/10 (ECDSA r || s), and method 1 (RSA PKCS#1 v1.5 with
//! SHA-1, §3.8) for servers that were not offered RFC 7427.

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use thiserror::Error;

use crate::ike_crypto::signature::KeyKind;
use crate::ikev1::certificates::{x509_from_cert_payload, PeerCertificateError, TrustAnchors};
use crate::ikev1::payloads::Identification;

use super::payloads::{auth_method, cert_encoding, id_type, Certificate};

/// How the initiator checks a server's certificate.
#[derive(Clone)]
pub struct ServerTrust {
    pub anchors: Arc<TrustAnchors>,
    /// The name or address we dialled: the certificate must name it too
    /// (as Windows checks), so a certificate from the same CA for another
    /// server is refused. `None`: only IDr is checked.
    pub server_name: Option<String>,
    /// The wall clock for certificate dates (the core owns no clock).
    pub unix_time: fn() -> i64,
}

impl ServerTrust {
    pub fn new(anchors: TrustAnchors, server_name: Option<String>) -> Self {
        ServerTrust {
            anchors: Arc::new(anchors),
            server_name,
            unix_time: crate::ikev1::certificates::system_unix_time,
        }
    }

    /// The CERTREQ body naming our CAs (§3.7: SHA-1 of each CA's
    /// SubjectPublicKeyInfo), which asks the server for its certificate.
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

/// Why the server was not believed.
#[derive(Debug, Error)]
pub enum ServerSignatureError {
    #[error("the server's certificate was refused: {0}")]
    Certificate(#[from] PeerCertificateError),
    #[error("the server's certificate does not name {0}")]
    WrongServer(String),
    #[error("the server authenticated with method {0}, not a signature we check")]
    Method(u8),
    #[error("the server signs with an algorithm we do not check (RFC 7427)")]
    Algorithm,
    #[error("the server's AUTH signature does not verify with the key of \"{0}\"")]
    BadSignature(String),
}

/// Checks the server: `cert_bodies` are its CERT payloads (end entity
/// first), `idr` its IDr body, `method`/`data` its AUTH, `signed` the
/// octets it must have signed. Returns the certificate's subject.
pub fn verify_server(
    trust: &ServerTrust,
    cert_bodies: &[&[u8]],
    idr: &[u8],
    method: u8,
    data: &[u8],
    signed: &[u8],
) -> Result<String, ServerSignatureError> {
    let certs: Vec<&[u8]> = cert_bodies
        .iter()
        .filter_map(|b| x509_from_cert_payload(b))
        .collect();
    // The IKEv2 ID body is the IKEv1 one with the protocol and port
    // octets reserved (§3.5).
    let id = Identification::parse(idr).ok_or(PeerCertificateError::Malformed)?;
    let now = (trust.unix_time)();
    let peer = trust.anchors.verify_peer(&certs, &id, now)?;
    if let Some(name) = &trust.server_name {
        let wanted = match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => identification(id_type::IPV4_ADDR, a.octets().to_vec()),
            Ok(IpAddr::V6(a)) => identification(id_type::IPV6_ADDR, a.octets().to_vec()),
            Err(_) => identification(id_type::FQDN, name.as_bytes().to_vec()),
        };
        if trust.anchors.verify_peer(&certs, &wanted, now).is_err() {
            return Err(ServerSignatureError::WrongServer(name.clone()));
        }
    }
    let (alg, signature) = signature_algorithm(peer.key.kind(), method, data)?;
    UnparsedPublicKey::new(alg, peer.key.bytes())
        .verify(signed, signature)
        .map_err(|_| ServerSignatureError::BadSignature(peer.subject.clone()))?;
    Ok(peer.subject)
}

fn identification(id_type: u8, data: Vec<u8>) -> Identification {
    Identification {
        id_type,
        protocol: 0,
        port: 0,
        data,
    }
}

/// RFC 7427 Appendix A: the OIDs inside the AlgorithmIdentifiers.
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];

type Verifier = &'static dyn sig::VerificationAlgorithm;

/// The verification algorithm and the bare signature of an AUTH payload
/// (either role's: the client's check of the server, the server's of a
/// client certificate).
pub(super) fn signature_algorithm(
    key: KeyKind,
    method: u8,
    data: &[u8],
) -> Result<(Verifier, &[u8]), ServerSignatureError> {
    let rsa = key == KeyKind::Rsa;
    match method {
        auth_method::RSA_SIGNATURE if rsa => {
            Ok((&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, data))
        }
        auth_method::ECDSA_SHA256_P256 if key == KeyKind::EcdsaP256 => {
            Ok((&sig::ECDSA_P256_SHA256_FIXED, data))
        }
        auth_method::ECDSA_SHA384_P384 if key == KeyKind::EcdsaP384 => {
            Ok((&sig::ECDSA_P384_SHA384_FIXED, data))
        }
        auth_method::ECDSA_SHA512_P521 if key == KeyKind::EcdsaP521 => {
            Ok((&sig::ECDSA_P521_SHA512_FIXED, data))
        }
        auth_method::DIGITAL_SIGNATURE => {
            // RFC 7427 §3: length octet, AlgorithmIdentifier, signature.
            let (&len, rest) = data.split_first().ok_or(ServerSignatureError::Algorithm)?;
            let len = len as usize;
            if rest.len() <= len {
                return Err(ServerSignatureError::Algorithm);
            }
            let (algorithm_id, signature) = rest.split_at(len);
            let oid = algorithm_oid(algorithm_id).ok_or(ServerSignatureError::Algorithm)?;
            let verifier: Verifier = match (key, oid) {
                (KeyKind::Rsa, OID_SHA256_RSA) => &sig::RSA_PKCS1_2048_8192_SHA256,
                (KeyKind::Rsa, OID_SHA384_RSA) => &sig::RSA_PKCS1_2048_8192_SHA384,
                (KeyKind::Rsa, OID_SHA512_RSA) => &sig::RSA_PKCS1_2048_8192_SHA512,
                (KeyKind::EcdsaP256, OID_ECDSA_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
                (KeyKind::EcdsaP256, OID_ECDSA_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
                (KeyKind::EcdsaP256, OID_ECDSA_SHA512) => &sig::ECDSA_P256_SHA512_ASN1,
                (KeyKind::EcdsaP384, OID_ECDSA_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
                (KeyKind::EcdsaP384, OID_ECDSA_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
                (KeyKind::EcdsaP384, OID_ECDSA_SHA512) => &sig::ECDSA_P384_SHA512_ASN1,
                (KeyKind::EcdsaP521, OID_ECDSA_SHA256) => &sig::ECDSA_P521_SHA256_ASN1,
                (KeyKind::EcdsaP521, OID_ECDSA_SHA384) => &sig::ECDSA_P521_SHA384_ASN1,
                (KeyKind::EcdsaP521, OID_ECDSA_SHA512) => &sig::ECDSA_P521_SHA512_ASN1,
                _ => return Err(ServerSignatureError::Algorithm),
            };
            Ok((verifier, signature))
        }
        other => Err(ServerSignatureError::Method(other)),
    }
}

/// The OID of a DER AlgorithmIdentifier (SEQUENCE { OID, parameters }),
/// short-form lengths only (all the identifiers above are short).
fn algorithm_oid(der: &[u8]) -> Option<&[u8]> {
    if der.len() < 4 || der[0] != 0x30 || der[1] as usize != der.len() - 2 || der[2] != 0x06 {
        return None;
    }
    let len = der[3] as usize;
    der.get(4..4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_identifiers_with_and_without_null_parameters() {
        let with_null = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ];
        assert_eq!(algorithm_oid(&with_null), Some(OID_SHA256_RSA));
        let ecdsa = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        assert_eq!(algorithm_oid(&ecdsa), Some(OID_ECDSA_SHA384));
        assert_eq!(algorithm_oid(&ecdsa[..11]), None);
        assert_eq!(algorithm_oid(&[0x31, 0x00]), None);
    }

    #[test]
    fn a_method_that_does_not_fit_the_key_is_refused() {
        assert!(matches!(
            signature_algorithm(KeyKind::EcdsaP256, auth_method::RSA_SIGNATURE, &[1, 2]),
            Err(ServerSignatureError::Method(1))
        ));
        assert!(matches!(
            signature_algorithm(
                KeyKind::Rsa,
                auth_method::DIGITAL_SIGNATURE,
                &[3, 0x30, 0x01, 0x00, 9]
            ),
            Err(ServerSignatureError::Algorithm)
        ));
        assert!(matches!(
            signature_algorithm(KeyKind::Rsa, auth_method::SHARED_KEY_MIC, &[1]),
            Err(ServerSignatureError::Method(2))
        ));
    }
}
