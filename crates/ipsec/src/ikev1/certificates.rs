//! Certificates in Main Mode: the CERT and CR payloads (RFC 2408 §3.9,
//! §3.10), our own chain and key, the CAs we trust, and the checks of the
//! peer's certificates (RFC 4945: chain to a trusted CA, dates, and the ID
//! payload named by the end-entity certificate).

use std::net::IpAddr;
use std::sync::Arc;

use thiserror::Error;
use x509_parser::prelude::*;

use crate::ike_crypto::signature::{KeyKind, PrivateKey, PublicKey, SignatureError};
use crate::ike_crypto::x509_signature::certificate_signed_by;

use super::payloads::{id_type, notify, Identification};
use super::revocation::{CrlPolicy, Revocation, Revoked, Status};

/// RFC 2408 §3.9 certificate encodings: the one everybody sends.
pub const X509_SIGNATURE: u8 = 4;

/// A peer sends at most this many CERT payloads we look at: a chain longer
/// than any real deployment costs nothing more than this.
pub const MAX_PEER_CERTIFICATES: usize = 8;
/// And a chain is at most this deep from the end entity to a trusted CA.
const MAX_DEPTH: usize = 6;

/// Why certificates or a key could not be loaded (configuration).
#[derive(Debug, Error)]
pub enum CertificateError {
    #[error("no certificate in the PEM text")]
    NoCertificate,
    #[error("certificate {index} is not valid DER X.509: {reason}")]
    Unreadable { index: usize, reason: String },
    #[error("the private key: {0}")]
    Key(#[from] SignatureError),
    #[error("the private key does not belong to the first certificate")]
    KeyMismatch,
}

/// Why the peer's certificates were refused. Each maps to the RFC 2408
/// §3.14.1 notification that tells the peer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PeerCertificateError {
    #[error("it sent no X.509 certificate")]
    Missing,
    #[error("its certificate is not valid DER X.509")]
    Malformed,
    #[error("its certificate \"{0}\" is outside its validity dates")]
    Expired(String),
    #[error("no trusted CA issued \"{0}\"")]
    UntrustedIssuer(String),
    #[error("its identity {0} is not named by its certificate \"{1}\"")]
    IdMismatch(String, String),
    #[error("its certificate \"{0}\" is not for IKE: {1}")]
    WrongUsage(String, &'static str),
    #[error("its certificate key is unusable: {0}")]
    Key(SignatureError),
    #[error("its signature does not verify with the key of \"{0}\"")]
    BadSignature(String),
    #[error("its certificate \"{subject}\" is revoked: {revoked}")]
    Revoked { subject: String, revoked: Revoked },
    #[error("no current CRL covers its certificate \"{subject}\" (crl_policy \"strict\"): {why}")]
    RevocationUnknown { subject: String, why: &'static str },
    #[error("it signs with {theirs} but the proposal chosen is {method}")]
    WrongKeyType {
        theirs: &'static str,
        method: &'static str,
    },
}

impl PeerCertificateError {
    /// RFC 2408 §3.14.1.
    pub fn notify_type(&self) -> u16 {
        match self {
            PeerCertificateError::Missing => notify::AUTHENTICATION_FAILED,
            PeerCertificateError::Malformed => notify::INVALID_CERT_ENCODING,
            PeerCertificateError::Expired(_)
            | PeerCertificateError::WrongUsage(..)
            | PeerCertificateError::Revoked { .. }
            | PeerCertificateError::RevocationUnknown { .. } => notify::INVALID_CERTIFICATE,
            PeerCertificateError::UntrustedIssuer(_) => notify::INVALID_CERT_AUTHORITY,
            PeerCertificateError::IdMismatch(..) => notify::INVALID_ID_INFORMATION,
            PeerCertificateError::Key(_) | PeerCertificateError::WrongKeyType { .. } => {
                notify::INVALID_KEY_INFORMATION
            }
            PeerCertificateError::BadSignature(_) => notify::INVALID_SIGNATURE,
        }
    }
}

/// Our certificate chain (end entity first, then intermediates) and key.
pub struct LocalCertificate {
    chain: Vec<Vec<u8>>,
    key: PrivateKey,
    subject: Vec<u8>,
}

impl LocalCertificate {
    /// From DER certificates (end entity first) and a key that must be the
    /// end entity's.
    pub fn new(chain: Vec<Vec<u8>>, key: PrivateKey) -> Result<Self, CertificateError> {
        let leaf = chain.first().ok_or(CertificateError::NoCertificate)?;
        for (index, der) in chain.iter().enumerate() {
            X509Certificate::from_der(der).map_err(|e| CertificateError::Unreadable {
                index,
                reason: e.to_string(),
            })?;
        }
        let (_, cert) = X509Certificate::from_der(leaf).expect("checked above");
        let public = PublicKey::from_spki(cert.public_key())?;
        if !key_matches(&public, &key, cert.public_key()) {
            return Err(CertificateError::KeyMismatch);
        }
        let subject = cert.subject().as_raw().to_vec();
        Ok(LocalCertificate {
            chain,
            key,
            subject,
        })
    }

    /// From PEM texts: every certificate of `certs` (end entity first) and
    /// the first private key of `key`.
    pub fn from_pem(certs: &[u8], key: &[u8]) -> Result<Self, CertificateError> {
        let chain = pem_certificates(certs)?;
        LocalCertificate::new(chain, PrivateKey::from_pem(key)?)
    }

    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn kind(&self) -> KeyKind {
        self.key.kind()
    }

    /// Our ID payload: the subject DN (RFC 4945 §3.1.5; what Windows and
    /// strongSwan expect by default), with the protocol and port the peer
    /// used or 0/0.
    pub fn identification(&self, protocol: u8, port: u16) -> Identification {
        Identification {
            id_type: id_type::DER_ASN1_DN,
            protocol,
            port,
            data: self.subject.clone(),
        }
    }
}

fn key_matches(public: &PublicKey, key: &PrivateKey, spki: &SubjectPublicKeyInfo<'_>) -> bool {
    if public.kind() != key.kind() {
        return false;
    }
    match key.kind() {
        KeyKind::Rsa => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                strip_zeros(rsa.modulus) == strip_zeros(&key.public_key_bytes())
            }
            _ => false,
        },
        _ => spki.subject_public_key.data.as_ref() == key.public_key_bytes().as_slice(),
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Every certificate of a PEM text, as DER.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let Ok(block) = block else { break };
        if block.label == "CERTIFICATE" {
            X509Certificate::from_der(&block.contents).map_err(|e| {
                CertificateError::Unreadable {
                    index: out.len(),
                    reason: e.to_string(),
                }
            })?;
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(CertificateError::NoCertificate);
    }
    Ok(out)
}

/// The CAs whose certificates a peer's chain must end at.
pub struct TrustAnchors {
    cas: Vec<Vec<u8>>,
    /// The CRLs every certificate of a peer chain is looked up in.
    revocation: Revocation,
}

impl TrustAnchors {
    pub fn new(cas: Vec<Vec<u8>>) -> Result<Self, CertificateError> {
        if cas.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        for (index, der) in cas.iter().enumerate() {
            X509Certificate::from_der(der).map_err(|e| CertificateError::Unreadable {
                index,
                reason: e.to_string(),
            })?;
        }
        Ok(TrustAnchors {
            cas,
            revocation: Revocation::default(),
        })
    }

    /// These anchors with the CRLs of `revocation` (shared: a reload that
    /// replaces its CRLs reaches every verifier holding it).
    pub fn with_revocation(mut self, revocation: Revocation) -> Self {
        self.revocation = revocation;
        self
    }

    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        TrustAnchors::new(pem_certificates(pem)?)
    }

    fn parsed(&self) -> impl Iterator<Item = X509Certificate<'_>> {
        self.cas
            .iter()
            .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
    }

    /// The subject DNs for our CR payloads (RFC 2408 §3.10: "Certificate
    /// Authority" is the DN of an acceptable CA).
    pub fn subjects(&self) -> Vec<Vec<u8>> {
        self.parsed()
            .map(|c| c.subject().as_raw().to_vec())
            .collect()
    }

    /// The DER SubjectPublicKeyInfo of each CA (IKEv2 names a CA in a
    /// CERTREQ by the SHA-1 hash of it, RFC 7296 §3.7).
    pub fn public_key_infos(&self) -> Vec<Vec<u8>> {
        self.parsed().map(|c| c.public_key().raw.to_vec()).collect()
    }

    /// Checks the peer's certificates (`certs`: CERT payload bodies' DER,
    /// the end entity first) at `unix_time` against `id`, and returns the
    /// end entity's key and subject for the log.
    pub fn verify_peer(
        &self,
        certs: &[&[u8]],
        id: &Identification,
        unix_time: i64,
    ) -> Result<VerifiedPeer, PeerCertificateError> {
        self.verify(certs, id, unix_time, false)
    }

    /// [`Self::verify_peer`] for a caller whose driver checks the end
    /// entity online (OCSP, CRL distribution points) when the CRLs' online
    /// checks are on: an end entity no current CRL file covers is then
    /// left to it, with the policy (IKEv2's authorization step does this;
    /// IKEv1's responder after Main Mode, see `certificate_status.rs`; its
    /// initiator checks the server against CRL files only).
    pub fn verify_peer_deferring(
        &self,
        certs: &[&[u8]],
        id: &Identification,
        unix_time: i64,
    ) -> Result<VerifiedPeer, PeerCertificateError> {
        self.verify_peer_online(certs, id, unix_time)
            .map(|(peer, _)| peer)
    }

    /// [`Self::verify_peer_deferring`], also saying whether the online
    /// checks were on for it (read once, so a reload in between cannot
    /// leave an end entity neither checked here nor asked about online).
    pub fn verify_peer_online(
        &self,
        certs: &[&[u8]],
        id: &Identification,
        unix_time: i64,
    ) -> Result<(VerifiedPeer, bool), PeerCertificateError> {
        let online = self.revocation.current().online().enabled();
        self.verify(certs, id, unix_time, online)
            .map(|peer| (peer, online))
    }

    fn verify(
        &self,
        certs: &[&[u8]],
        id: &Identification,
        unix_time: i64,
        defer_leaf: bool,
    ) -> Result<VerifiedPeer, PeerCertificateError> {
        let parsed: Vec<X509Certificate<'_>> = certs
            .iter()
            .take(MAX_PEER_CERTIFICATES)
            .map(|der| {
                X509Certificate::from_der(der)
                    .map(|(_, c)| c)
                    .map_err(|_| PeerCertificateError::Malformed)
            })
            .collect::<Result<_, _>>()?;
        let leaf = parsed.first().ok_or(PeerCertificateError::Missing)?;
        let now =
            ASN1Time::from_timestamp(unix_time).map_err(|_| PeerCertificateError::Malformed)?;
        let leaf_name = leaf.subject().to_string();
        if !leaf.validity().is_valid_at(now) {
            return Err(PeerCertificateError::Expired(leaf_name));
        }
        if let Err(why) = usable_for_ike(leaf) {
            return Err(PeerCertificateError::WrongUsage(leaf_name, why));
        }
        if !id_matches(leaf, id) {
            return Err(PeerCertificateError::IdMismatch(
                id.display_long(),
                leaf_name,
            ));
        }
        let anchors: Vec<X509Certificate<'_>> = self.parsed().collect();
        let crls = self.revocation.current();
        let mut current = leaf;
        let mut depth = 0;
        // The leaf's issuer, as it verified the leaf (for online checks).
        let mut leaf_issuer: Option<Vec<u8>> = None;
        loop {
            // It is itself a CA we trust: nothing above it to ask.
            if anchors.iter().any(|ca| ca.as_raw() == current.as_raw()) {
                break;
            }
            let is_leaf = depth == 0;
            let defer = is_leaf && defer_leaf;
            // A trusted CA issued it.
            let trusted = anchors.iter().find(|ca| {
                ca.subject().as_raw() == current.issuer().as_raw()
                    && ca.validity().is_valid_at(now)
                    && certificate_signed_by(current, ca.public_key())
            });
            if let Some(ca) = trusted {
                self.check_revocation(&crls, current, ca, now, unix_time, defer)?;
                if is_leaf {
                    leaf_issuer = Some(ca.as_raw().to_vec());
                }
                break;
            }
            depth += 1;
            let issuer = parsed[1..].iter().find(|i| {
                i.subject().as_raw() == current.issuer().as_raw()
                    && is_ca(i)
                    && certificate_signed_by(current, i.public_key())
            });
            match issuer {
                Some(i) if depth < MAX_DEPTH && i.as_raw() != current.as_raw() => {
                    if !i.validity().is_valid_at(now) {
                        return Err(PeerCertificateError::Expired(i.subject().to_string()));
                    }
                    self.check_revocation(&crls, current, i, now, unix_time, defer)?;
                    if is_leaf {
                        leaf_issuer = Some(i.as_raw().to_vec());
                    }
                    current = i;
                }
                _ => {
                    return Err(PeerCertificateError::UntrustedIssuer(
                        current.subject().to_string(),
                    ))
                }
            }
        }
        let key = PublicKey::from_spki(leaf.public_key()).map_err(PeerCertificateError::Key)?;
        Ok(VerifiedPeer {
            key,
            subject: leaf_name,
            certificate: leaf_issuer.map(|issuer| PeerCertificate {
                der: leaf.as_raw().to_vec(),
                issuer,
            }),
        })
    }
}

impl TrustAnchors {
    /// RFC 5280 §6.3: `cert` (issued by `issuer`) against the CRLs, under
    /// their policy.
    fn check_revocation(
        &self,
        crls: &super::revocation::CrlSet,
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        now: ASN1Time,
        unix_time: i64,
        defer: bool,
    ) -> Result<(), PeerCertificateError> {
        let strict = crls.policy() == CrlPolicy::Strict;
        let status = crls.status(cert, issuer, now);
        // With OCSP or CRL fetching on, the driver asks about the end
        // entity after this check and applies the policy to what it gets;
        // a file's current CRL has answered already.
        if defer && matches!(status, Status::Stale | Status::Unknown) {
            return Ok(());
        }
        match status {
            Status::Good => Ok(()),
            Status::Revoked(revoked) => Err(PeerCertificateError::Revoked {
                subject: cert.subject().to_string(),
                revoked,
            }),
            Status::Stale if strict => Err(PeerCertificateError::RevocationUnknown {
                subject: cert.subject().to_string(),
                why: "its issuer's CRL is past its nextUpdate",
            }),
            Status::Stale => {
                self.revocation.warn_stale(issuer.subject(), unix_time);
                Ok(())
            }
            Status::Unknown if strict => Err(PeerCertificateError::RevocationUnknown {
                subject: cert.subject().to_string(),
                why: "no CRL signed by its issuer",
            }),
            Status::Unknown => Ok(()),
        }
    }
}

/// The end entity of a chain that checked out.
#[derive(Debug)]
pub struct VerifiedPeer {
    pub key: PublicKey,
    /// The subject DN as text, for the log.
    pub subject: String,
    /// The end entity and the certificate that issued it (none: the end
    /// entity is itself a trusted CA).
    pub certificate: Option<PeerCertificate>,
}

/// A verified end entity and its issuer (DER each), for an OCSP request
/// (RFC 6960 §4.1.1 names a certificate by its issuer) or a CRL
/// distribution point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    pub der: Vec<u8>,
    pub issuer: Vec<u8>,
}

/// RFC 4945 §5.1.3.2 and §5.1.3.12: what the end entity's key may do.
/// A keyUsage present must allow signatures (digitalSignature or
/// nonRepudiation). An extendedKeyUsage present must name IKE (ipsecIKE,
/// RFC 4945 §5.1.3.12), any purpose, or one of the purposes real clients'
/// certificates carry instead (clientAuth, serverAuth, Microsoft's IP
/// security IKE intermediate); one for e-mail or code signing only is a
/// certificate for something else.
fn usable_for_ike(cert: &X509Certificate<'_>) -> Result<(), &'static str> {
    if let Ok(Some(ku)) = cert.key_usage() {
        if !(ku.value.digital_signature() || ku.value.non_repudiation()) {
            return Err("its key usage does not allow signatures");
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let e = &eku.value;
        // 1.3.6.1.5.5.7.3.17 id-kp-ipsecIKE; 1.3.6.1.5.5.8.2.2 IP security
        // IKE intermediate.
        let named = e.other.iter().any(|oid| {
            let text = oid.to_id_string();
            text == "1.3.6.1.5.5.7.3.17" || text == "1.3.6.1.5.5.8.2.2"
        });
        if !(e.any || e.client_auth || e.server_auth || named) {
            return Err(
                "its extended key usage names neither IKE nor client or server authentication",
            );
        }
    }
    Ok(())
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// RFC 4945 §3.1: the ID payload must be the subject DN or one of the
/// subjectAltNames of the end-entity certificate.
fn id_matches(cert: &X509Certificate<'_>, id: &Identification) -> bool {
    if id.id_type == id_type::DER_ASN1_DN {
        return cert.subject().as_raw() == id.data.as_slice()
            || same_name(cert.subject(), &id.data);
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value
        .general_names
        .iter()
        .any(|name| match (id.id_type, name) {
            (id_type::FQDN, GeneralName::DNSName(n)) => n.as_bytes().eq_ignore_ascii_case(&id.data),
            (id_type::USER_FQDN, GeneralName::RFC822Name(n)) => {
                n.as_bytes().eq_ignore_ascii_case(&id.data)
            }
            (id_type::IPV4_ADDR | id_type::IPV6_ADDR, GeneralName::IPAddress(a)) => {
                id.as_address().is_some_and(|ip| match ip {
                    IpAddr::V4(v4) => *a == v4.octets(),
                    IpAddr::V6(v6) => *a == v6.octets(),
                })
            }
            _ => false,
        })
}

/// RFC 5280 §7.1: two names are the same when their RDNs hold the same
/// attribute types with the same values, whatever string type encodes
/// them (strongSwan encodes the DN of `id = "CN=…"` as PrintableString
/// where the certificate may hold a UTF8String) and ignoring ASCII case.
fn same_name(subject: &X509Name<'_>, der: &[u8]) -> bool {
    let Ok((_, other)) = X509Name::from_der(der) else {
        return false;
    };
    let attributes = |n: &X509Name<'_>| -> Option<Vec<(String, String)>> {
        n.iter_attributes()
            .map(|a| {
                let value = a.as_str().ok()?.trim().to_ascii_lowercase();
                Some((a.attr_type().to_id_string(), value))
            })
            .collect()
    };
    let ours = attributes(subject);
    ours.is_some()
        && ours == attributes(&other)
        && subject.iter_rdn().count() == other.iter_rdn().count()
}

/// What signature authentication needs: our chain and key, the CAs of
/// peers, and the date. The core owns no clock: `unix_time` is the driver's
/// wall clock (a test's fixed date), read only to check certificate dates.
#[derive(Clone)]
pub struct CertificateAuth {
    pub local: Arc<LocalCertificate>,
    pub trust: Arc<TrustAnchors>,
    pub unix_time: fn() -> i64,
}

impl std::fmt::Debug for CertificateAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("CertificateAuth")
            .field("key", &self.local.kind().name())
            .field("chain", &self.local.chain().len())
            .finish_non_exhaustive()
    }
}

impl CertificateAuth {
    /// From PEM files' contents: our chain (end entity first), its key,
    /// and the CAs the peer's certificate must chain to.
    pub fn from_pem(chain: &[u8], key: &[u8], cas: &[u8]) -> Result<Self, CertificateError> {
        Ok(CertificateAuth::new(
            LocalCertificate::from_pem(chain, key)?,
            TrustAnchors::from_pem(cas)?,
        ))
    }

    pub fn new(local: LocalCertificate, trust: TrustAnchors) -> Self {
        CertificateAuth {
            local: Arc::new(local),
            trust: Arc::new(trust),
            unix_time: system_unix_time,
        }
    }
}

/// The system's wall clock in seconds since 1970 (the default `unix_time`).
pub fn system_unix_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A CERT payload body (RFC 2408 §3.9).
pub fn cert_payload(der: &[u8]) -> Vec<u8> {
    let mut out = vec![X509_SIGNATURE];
    out.extend_from_slice(der);
    out
}

/// A CR payload body (RFC 2408 §3.10) naming one CA by its DN.
pub fn cert_request_payload(ca_subject: &[u8]) -> Vec<u8> {
    let mut out = vec![X509_SIGNATURE];
    out.extend_from_slice(ca_subject);
    out
}

/// The DER of a CERT payload body in the X.509 signature encoding; other
/// encodings (PKCS #7 wrapped, PGP, …) are skipped.
pub fn x509_from_cert_payload(body: &[u8]) -> Option<&[u8]> {
    match body.split_first() {
        Some((&X509_SIGNATURE, der)) if !der.is_empty() => Some(der),
        _ => None,
    }
}
