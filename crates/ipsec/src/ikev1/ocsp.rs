//! OCSP (RFC 6960) as a sans-IO core: the request for one certificate's
//! status and the check of the responder's answer. The server's driver
//! carries the octets over HTTP (RFC 6960 Appendix A.1) and caches the
//! answer until its nextUpdate.
//!
//! The ASN.1 is RustCrypto's `x509-ocsp` (on `der` 0.7, which the workspace
//! already had through `rsa`); the certificates stay x509-parser's, and the
//! signature is checked with aws-lc-rs through
//! [`crate::ike_crypto::x509_signature`], over the responder's own octets.

use aws_lc_rs::digest;
use der::{Decode, Encode, Reader, SliceReader};
use thiserror::Error;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest, Version,
};
use x509_parser::prelude::*;

use crate::ike_crypto::x509_signature::data_signed_by;

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
const OCSP_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
/// id-kp-OCSPSigning (RFC 6960 §4.2.2.2).
const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// id-ad-ocsp (RFC 5280 §4.2.2.1).
const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
/// SHA-1 (RFC 3279 §2.2.1): the CertID hash every responder knows (RFC
/// 5019 §2.1.1 makes it the one a lightweight responder must take).
const SHA1: &str = "1.3.14.3.2.26";

/// Clocks differ: a thisUpdate this far in the future, or a nextUpdate this
/// far in the past, still counts (RFC 5019 §4 leaves the margin to us).
pub const CLOCK_SKEW_SECS: i64 = 300;
/// The most certificates a response may carry for us to look at.
const MAX_RESPONSE_CERTS: usize = 4;

/// Why an OCSP request could not be made or its answer not be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OcspError {
    #[error("the certificate or its issuer is not valid DER")]
    Certificate,
    #[error("the answer is not a DER OCSP response")]
    Malformed,
    #[error("the responder answered \"{0}\"")]
    Status(&'static str),
    #[error("the answer is not a basic OCSP response")]
    NotBasic,
    #[error("the answer's signature is neither the issuer's nor a delegated responder's")]
    Signature,
    #[error("the answer says nothing about this certificate")]
    NotAnswered,
    #[error("the answer's thisUpdate is in the future")]
    NotYetValid,
    #[error("the answer is past its nextUpdate")]
    Expired,
    #[error("the answer's nonce is not ours")]
    Nonce,
}

/// A request for one certificate and what its answer must match.
#[derive(Debug, Clone)]
pub struct Query {
    /// The DER OCSPRequest to POST.
    pub der: Vec<u8>,
    /// Our CertID, DER (matched against each SingleResponse's).
    cert_id: Vec<u8>,
    nonce: Option<Vec<u8>>,
    /// The issuer's DER, whose key (or a responder it delegated to) must
    /// sign the answer.
    issuer: Vec<u8>,
}

/// RFC 6960 §4.1.1: the CertID of `cert` issued by `issuer` (SHA-1 of the
/// issuer's DN and of its public key's bits) and an OCSPRequest for it,
/// with `nonce` (RFC 8954: 1 to 32 octets) when given.
pub fn request(
    cert_der: &[u8],
    issuer_der: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Query, OcspError> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|_| OcspError::Certificate)?;
    let (_, issuer) = X509Certificate::from_der(issuer_der).map_err(|_| OcspError::Certificate)?;
    let cert_id = cert_id(&cert, &issuer)?;
    let extensions = match nonce {
        Some(n) => Some(vec![x509_cert::ext::Extension {
            extn_id: der::oid::ObjectIdentifier::new_unwrap(OCSP_NONCE),
            critical: false,
            extn_value: der::asn1::OctetString::new(
                der::asn1::OctetString::new(n)
                    .and_then(|o| o.to_der())
                    .map_err(|_| OcspError::Certificate)?,
            )
            .map_err(|_| OcspError::Certificate)?,
        }]),
        None => None,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id.clone(),
                single_request_extensions: None,
            }],
            request_extensions: extensions,
        },
        optional_signature: None,
    };
    Ok(Query {
        der: req.to_der().map_err(|_| OcspError::Certificate)?,
        cert_id: cert_id.to_der().map_err(|_| OcspError::Certificate)?,
        nonce: nonce.map(<[u8]>::to_vec),
        issuer: issuer_der.to_vec(),
    })
}

fn cert_id(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<CertId, OcspError> {
    let name_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert.issuer().as_raw());
    let key_hash = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        &issuer.public_key().subject_public_key.data,
    );
    let bad = |_| OcspError::Certificate;
    Ok(CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: der::oid::ObjectIdentifier::new_unwrap(SHA1),
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: der::asn1::OctetString::new(name_hash.as_ref()).map_err(bad)?,
        issuer_key_hash: der::asn1::OctetString::new(key_hash.as_ref()).map_err(bad)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(cert.raw_serial())
            .map_err(bad)?,
    })
}

/// A certificate's status as the responder gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateStatus {
    Good,
    Revoked {
        /// When (RFC 2822 text).
        time: String,
        /// RFC 5280 §5.3.1 reason name, when the responder gives one.
        reason: Option<&'static str>,
    },
    /// The responder does not know the certificate (§2.2).
    Unknown,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: CertificateStatus,
    /// Unix time of thisUpdate and nextUpdate (none: the responder has
    /// newer information at any time, §4.2.2.1).
    pub this_update: i64,
    pub next_update: Option<i64>,
}

/// RFC 6960 §3.2: the answer to `query` in `der`, at `unix_time`. The
/// signer is the issuer itself or a certificate in the answer that the
/// issuer signed for id-kp-OCSPSigning (§4.2.2.2), current at `unix_time`.
pub fn check(query: &Query, der: &[u8], unix_time: i64) -> Result<Answer, OcspError> {
    let response = OcspResponse::from_der(der).map_err(|_| OcspError::Malformed)?;
    match response.response_status {
        OcspResponseStatus::Successful => {}
        other => return Err(OcspError::Status(status_name(other))),
    }
    let bytes = response.response_bytes.ok_or(OcspError::Malformed)?;
    if bytes.response_type.to_string() != OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der).map_err(|_| OcspError::Malformed)?;
    // The signature covers the responder's octets of tbsResponseData; take
    // them as sent rather than re-encode (§4.2.1).
    let (tbs, algorithm, signature) = raw_parts(basic_der).ok_or(OcspError::Malformed)?;
    let (_, issuer) =
        X509Certificate::from_der(&query.issuer).map_err(|_| OcspError::Certificate)?;
    let now = ASN1Time::from_timestamp(unix_time).map_err(|_| OcspError::Malformed)?;
    let signed_by =
        |spki: &SubjectPublicKeyInfo<'_>| data_signed_by(spki, algorithm, signature, tbs);
    if !signed_by(issuer.public_key()) {
        let delegated = basic
            .certs
            .iter()
            .flatten()
            .take(MAX_RESPONSE_CERTS)
            .filter_map(|c| c.to_der().ok())
            .any(|der| {
                X509Certificate::from_der(&der).is_ok_and(|(_, c)| {
                    c.issuer().as_raw() == issuer.subject().as_raw()
                        && c.validity().is_valid_at(now)
                        && for_ocsp_signing(&c)
                        && crate::ike_crypto::x509_signature::certificate_signed_by(
                            &c,
                            issuer.public_key(),
                        )
                        && signed_by(c.public_key())
                })
            });
        if !delegated {
            return Err(OcspError::Signature);
        }
    }
    let data = &basic.tbs_response_data;
    if let Some(ours) = &query.nonce {
        // A responder may leave the nonce out (pre-produced answers, RFC
        // 5019 §2.2.1); one it puts in must be ours.
        let theirs = data
            .response_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id.to_string() == OCSP_NONCE);
        if let Some(e) = theirs {
            let value = e.extn_value.as_bytes();
            let inner = der::asn1::OctetString::from_der(value)
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or_else(|_| value.to_vec());
            if inner != *ours {
                return Err(OcspError::Nonce);
            }
        }
    }
    let single = data
        .responses
        .iter()
        .find(|s| s.cert_id.to_der().is_ok_and(|d| d == query.cert_id))
        .ok_or(OcspError::NotAnswered)?;
    let this_update = unix(&single.this_update);
    let next_update = single.next_update.as_ref().map(unix);
    if this_update > unix_time + CLOCK_SKEW_SECS {
        return Err(OcspError::NotYetValid);
    }
    if next_update.is_some_and(|n| n + CLOCK_SKEW_SECS < unix_time) {
        return Err(OcspError::Expired);
    }
    let status = match &single.cert_status {
        CertStatus::Good(_) => CertificateStatus::Good,
        CertStatus::Unknown(_) => CertificateStatus::Unknown,
        CertStatus::Revoked(info) => CertificateStatus::Revoked {
            time: revocation_time(&info.revocation_time),
            reason: info
                .revocation_reason
                .map(|r| super::revocation::reason_name(r as u32 as u8)),
        },
    };
    Ok(Answer {
        status,
        this_update,
        next_update,
    })
}

/// RFC 2822 text, as the CRL entries' dates are logged.
fn revocation_time(t: &x509_ocsp::OcspGeneralizedTime) -> String {
    ASN1Time::from_timestamp(unix(t))
        .ok()
        .and_then(|a| a.to_rfc2822().ok())
        .unwrap_or_else(|| t.0.to_date_time().to_string())
}

fn unix(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The three elements of a BasicOCSPResponse SEQUENCE as they were sent.
fn raw_parts(basic: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut outer = SliceReader::new(basic).ok()?;
    let header = der::Header::decode(&mut outer).ok()?;
    let body = outer.read_slice(header.length).ok()?;
    let mut inner = SliceReader::new(body).ok()?;
    let tbs = inner.tlv_bytes().ok()?;
    let algorithm = inner.tlv_bytes().ok()?;
    let signature = inner.tlv_bytes().ok()?;
    Some((tbs, algorithm, signature))
}

fn for_ocsp_signing(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.extended_key_usage(), Ok(Some(eku))
        if eku.value.ocsp_signing || eku.value.other.iter().any(|o| o.to_id_string() == OCSP_SIGNING))
}

fn status_name(status: OcspResponseStatus) -> &'static str {
    match status {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}

/// RFC 5280 §4.2.2.1: the http:// OCSP responders the certificate's
/// Authority Information Access names.
pub fn ocsp_urls(cert_der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method.to_id_string() == AD_OCSP {
                    if let GeneralName::URI(uri) = &desc.access_location {
                        if is_http(uri) {
                            out.push((*uri).to_owned());
                        }
                    }
                }
            }
        }
    }
    out
}

/// RFC 5280 §4.2.1.13: the http:// URLs of the certificate's CRL
/// distribution points (full names only; LDAP and relative names are not
/// fetched).
pub fn crl_urls(cert_der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            if is_http(uri) {
                                out.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn is_http(uri: &str) -> bool {
    uri.len() > 7 && uri[..7].eq_ignore_ascii_case("http://")
}

/// The serial number as `openssl` shows it (hex, colon separated), for
/// the log.
pub fn serial_of(cert_der: &[u8]) -> String {
    X509Certificate::from_der(cert_der)
        .map(|(_, c)| c.raw_serial_as_string())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
