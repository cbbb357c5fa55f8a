//! `ras cert issue`: a small CA and a server certificate it signs, made to
//! the rules of `cert_rules` so that Windows, macOS/iOS and Android accept
//! them for IKEv2 (and SSTP): Extended Key Usage Server Authentication and
//! IP security IKE intermediate, the host name and every address in the
//! Subject Alternative Name (an address also as a DNS name, which some
//! Windows versions compare against), RSA-2048 or ECDSA P-256 keys and
//! SHA-256 signatures. The CA goes into the clients' trusted roots.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rustls::pki_types::PrivatePkcs8KeyDer;
use zeroize::Zeroizing;

/// The key type of issued certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048 with SHA-256: what every client accepts.
    Rsa2048,
    /// ECDSA P-256 with SHA-256: smaller and faster; every current client.
    EcdsaP256,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no host name or address to put in the certificate")]
    NoNames,
    #[error("cannot make a key: {0}")]
    Key(String),
    #[error("cannot make the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// A CA to sign with: its certificate and key (PEM).
pub struct CaMaterial {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
}

/// What `issue` made.
pub struct Issued {
    /// The CA, when a new one was made.
    pub new_ca: Option<CaMaterial>,
    /// The server certificate followed by the CA certificate (the chain a
    /// server sends).
    pub chain_pem: String,
    pub key_pem: Zeroizing<String>,
}

fn new_key(key_type: KeyType) -> Result<KeyPair, IssueError> {
    match key_type {
        KeyType::EcdsaP256 => {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(IssueError::from)
        }
        KeyType::Rsa2048 => {
            // rcgen cannot generate RSA keys; aws-lc-rs can.
            use aws_lc_rs::encoding::AsDer;
            let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| IssueError::Key("RSA key generation failed".into()))?;
            let der = rsa
                .as_der()
                .map_err(|_| IssueError::Key("RSA key encoding failed".into()))?;
            let pkcs8 = PrivatePkcs8KeyDer::from(der.as_ref().to_vec());
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_RSA_SHA256)
                .map_err(IssueError::from)
        }
    }
}

fn serial() -> SerialNumber {
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    serial[0] &= 0x7f; // a positive INTEGER
    SerialNumber::from_slice(&serial)
}

/// Issues a server certificate for `names` (host names) and `addresses`,
/// valid for `days`, signed by `ca` or by a new CA named after the first
/// name.
pub fn issue(
    ca: Option<&CaMaterial>,
    names: &[String],
    addresses: &[IpAddr],
    key_type: KeyType,
    days: u32,
) -> Result<Issued, IssueError> {
    let first = names
        .first()
        .cloned()
        .or_else(|| addresses.first().map(|a| a.to_string()))
        .ok_or(IssueError::NoNames)?;
    let now = time::OffsetDateTime::now_utc();
    let (ca_cert_pem, ca_key, new_ca) = match ca {
        Some(ca) => (ca.cert_pem.clone(), KeyPair::from_pem(&ca.key_pem)?, None),
        None => {
            let key = new_key(key_type)?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{first} VPN CA"));
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.serial_number = Some(serial());
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(i64::from(days) + 365);
            let cert = params.self_signed(&key)?;
            let material = CaMaterial {
                cert_pem: cert.pem(),
                key_pem: Zeroizing::new(key.serialize_pem()),
            };
            (material.cert_pem.clone(), key, Some(material))
        }
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, &ca_key)?;
    let key = new_key(key_type)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, first);
    let mut sans = Vec::new();
    for name in names {
        sans.push(SanType::DnsName(name.as_str().try_into()?));
    }
    for address in addresses {
        sans.push(SanType::IpAddress(*address));
        // Windows compares an address the user dialled with DNS names too.
        sans.push(SanType::DnsName(address.to_string().as_str().try_into()?));
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        // RFC 4945 §5.1.3.12 id-kp-ipsecIKE, 1.3.6.1.5.5.8.2.2.
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 8, 2, 2]),
    ];
    params.key_usages = match key_type {
        KeyType::Rsa2048 => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        KeyType::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
    };
    params.serial_number = Some(serial());
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        new_ca,
        chain_pem: format!("{}{}", cert.pem(), ca_cert_pem),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}
