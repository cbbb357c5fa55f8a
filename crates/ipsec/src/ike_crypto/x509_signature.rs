//! The signatures on certificates and CRLs (RFC 5280 §4.1.1.3, §5.1.1.3),
//! checked with the issuer's public key.
//!
//! x509-parser's own check knows ECDSA only with SHA-256/384 on P-256 and
//! P-384; a P-521 CA (RFC 5480 §2.1.1.1 secp521r1) signs with
//! ecdsa-with-SHA512 (RFC 5758 §3.2), which it refuses. Those ECDSA cases
//! are checked here with aws-lc-rs; everything else goes to x509-parser.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// Whether `issuer`'s key signed `cert`.
pub fn certificate_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> bool {
    match ecdsa_verifier(issuer, &cert.signature_algorithm) {
        Some(alg) => UnparsedPublicKey::new(alg, &issuer.subject_public_key.data)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .is_ok(),
        None => cert.verify_signature(Some(issuer)).is_ok(),
    }
}

/// Whether `issuer`'s key signed `crl`.
pub fn crl_signed_by(
    crl: &CertificateRevocationList<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> bool {
    match ecdsa_verifier(issuer, &crl.signature_algorithm) {
        Some(alg) => UnparsedPublicKey::new(alg, &issuer.subject_public_key.data)
            .verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
            .is_ok(),
        None => crl.verify_signature(issuer).is_ok(),
    }
}

/// Whether `signer`'s key made `signature` (a DER BIT STRING, with the
/// DER AlgorithmIdentifier `algorithm`) over `data`: an OCSP response
/// (RFC 6960 §4.2.1), whose octets are not x509-parser's.
pub fn data_signed_by(
    signer: &SubjectPublicKeyInfo<'_>,
    algorithm: &[u8],
    signature: &[u8],
    data: &[u8],
) -> bool {
    use x509_parser::der_parser::asn1_rs::{BitString, FromDer};
    let Ok((_, algorithm)) = AlgorithmIdentifier::from_der(algorithm) else {
        return false;
    };
    let Ok((_, signature)) = BitString::from_der(signature) else {
        return false;
    };
    match ecdsa_verifier(signer, &algorithm) {
        Some(alg) => UnparsedPublicKey::new(alg, &signer.subject_public_key.data)
            .verify(data, &signature.data)
            .is_ok(),
        None => x509_parser::verify::verify_signature(signer, &algorithm, &signature, data).is_ok(),
    }
}

/// The aws-lc-rs check for an ECDSA signature x509-parser cannot make:
/// any hash on P-521, SHA-512 on P-256 and P-384. `None`: not such a case.
fn ecdsa_verifier(
    issuer: &SubjectPublicKeyInfo<'_>,
    signature: &AlgorithmIdentifier<'_>,
) -> Option<&'static dyn sig::VerificationAlgorithm> {
    if issuer.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return None;
    }
    let curve: Oid<'_> = issuer.algorithm.parameters.as_ref()?.as_oid().ok()?;
    let hash = &signature.algorithm;
    let p521 = curve == OID_NIST_EC_P521;
    if p521 {
        if *hash == OID_SIG_ECDSA_WITH_SHA512 {
            return Some(&sig::ECDSA_P521_SHA512_ASN1);
        }
        if *hash == OID_SIG_ECDSA_WITH_SHA384 {
            return Some(&sig::ECDSA_P521_SHA384_ASN1);
        }
        if *hash == OID_SIG_ECDSA_WITH_SHA256 {
            return Some(&sig::ECDSA_P521_SHA256_ASN1);
        }
        return None;
    }
    if *hash != OID_SIG_ECDSA_WITH_SHA512 {
        return None;
    }
    if curve == OID_EC_P256 {
        Some(&sig::ECDSA_P256_SHA512_ASN1)
    } else if curve == OID_NIST_EC_P384 {
        Some(&sig::ECDSA_P384_SHA512_ASN1)
    } else {
        None
    }
}
