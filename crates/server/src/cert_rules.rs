//! What the built-in VPN clients require of a server certificate, checked
//! one rule at a time so that `ras cert check` can say which client will
//! refuse a certificate and why.
//!
//! Sources: Microsoft's "Configure certificates for IKEv2 and SSTP"
//! guidance for RRAS (Extended Key Usage Server Authentication, and the IP
//! security IKE intermediate usage that older Windows versions look for;
//! the name the client dials in the Subject Alternative Name; error 13801
//! when a rule is broken), RFC 4945 §5.1.3 (IKE peers check the identity
//! against subjectAltName), and the CA/Browser-era rules every current
//! client enforces (no SHA-1 or MD5 signatures, RSA keys of 2048 bits or
//! more).

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// id-kp-ipsecIKE (RFC 4945 §5.1.3.12), "IP security IKE intermediate".
pub const OID_IKE_INTERMEDIATE: &str = "1.3.6.1.5.5.8.2.2";

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    /// A client will refuse the certificate.
    Refused,
}

/// One rule's result, a line for the operator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub text: String,
}

impl Finding {
    fn ok(text: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Ok,
            text: text.into(),
        }
    }
    fn warning(text: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            text: text.into(),
        }
    }
    fn refused(text: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Refused,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Refused => "refused",
        };
        write!(f, "{tag}: {}", self.text)
    }
}

/// The certificate could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("not an X.509 certificate: {0}")]
pub struct NotACertificate(String);

/// Checks a server certificate (DER) against the rules. `name` is what the
/// clients dial (a host name or an address); `now` is Unix time.
pub fn check_server_certificate(
    der: &[u8],
    name: Option<&str>,
    now: i64,
) -> Result<Vec<Finding>, NotACertificate> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| NotACertificate(e.to_string()))?;
    let mut out = Vec::new();
    extended_key_usage(&cert, &mut out);
    let names = subject_alt_names(&cert, &mut out);
    if let Some(name) = name {
        dialled_name(name, &names, &mut out);
    }
    validity(&cert, now, &mut out);
    key(&cert, &mut out);
    signature(&cert, &mut out);
    ca_flag(&cert, &mut out);
    Ok(out)
}

fn extended_key_usage(cert: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            if eku.value.server_auth {
                out.push(Finding::ok("Extended Key Usage has Server Authentication"));
            } else {
                out.push(Finding::refused(
                    "Extended Key Usage lacks Server Authentication (1.3.6.1.5.5.7.3.1): Windows refuses it for IKEv2 and SSTP (error 13801), Apple and Android for IKEv2",
                ));
            }
            if eku.value.other.iter().any(|oid| oid.to_id_string() == OID_IKE_INTERMEDIATE) {
                out.push(Finding::ok("Extended Key Usage has IP security IKE intermediate"));
            } else {
                out.push(Finding::warning(format!(
                    "Extended Key Usage lacks IP security IKE intermediate ({OID_IKE_INTERMEDIATE}): older Windows versions require it for IKEv2"
                )));
            }
        }
        Ok(None) => out.push(Finding::refused(
            "no Extended Key Usage: Windows wants Server Authentication explicitly for IKEv2 and SSTP (error 13801)",
        )),
        Err(e) => out.push(Finding::refused(format!("Extended Key Usage unreadable: {e}"))),
    }
}

/// The DNS names and addresses of the subjectAltName.
fn subject_alt_names(cert: &X509Certificate<'_>, out: &mut Vec<Finding>) -> Vec<String> {
    let mut names = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for general in &san.value.general_names {
                match general {
                    GeneralName::DNSName(dns) => names.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => names.push(IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]).to_string()),
                        16 => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(bytes);
                            names.push(IpAddr::from(o).to_string());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
            // An address may stand both as an address and as a DNS name.
            let mut seen = std::collections::HashSet::new();
            names.retain(|n| seen.insert(n.clone()));
            if names.is_empty() {
                out.push(Finding::refused(
                    "the Subject Alternative Name holds no DNS name or address: Apple and Android match the server only against those",
                ));
            } else {
                out.push(Finding::ok(format!("names: {}", names.join(", "))));
            }
        }
        Ok(None) => out.push(Finding::refused(
            "no Subject Alternative Name: Apple and Android match the server's identity only against it (RFC 4945 §5.1.3), and Windows needs the dialled name there",
        )),
        Err(e) => out.push(Finding::refused(format!("Subject Alternative Name unreadable: {e}"))),
    }
    names
}

fn dialled_name(name: &str, names: &[String], out: &mut Vec<Finding>) {
    let wanted = name.trim_end_matches('.').to_ascii_lowercase();
    let matches = names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        n == wanted
            || n.strip_prefix("*.").is_some_and(|suffix| {
                wanted
                    .split_once('.')
                    .is_some_and(|(_, rest)| rest == suffix)
            })
    });
    if matches {
        out.push(Finding::ok(format!(
            "{name} is one of the certificate's names"
        )));
    } else if name.parse::<IpAddr>().is_ok() {
        out.push(Finding::refused(format!(
            "{name} is not among the certificate's names: clients dialling the address need it in the Subject Alternative Name (Windows as a DNS name too)"
        )));
    } else {
        out.push(Finding::refused(format!(
            "{name} is not among the certificate's names: Windows refuses the server it dials by that name (error 13801)"
        )));
    }
}

fn validity(cert: &X509Certificate<'_>, now: i64, out: &mut Vec<Finding>) {
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now < not_before {
        out.push(Finding::refused(format!(
            "not valid before {}: every client refuses it until then",
            validity.not_before
        )));
    } else if now > not_after {
        out.push(Finding::refused(format!(
            "expired on {}",
            validity.not_after
        )));
    } else {
        let days = (not_after - now) / 86_400;
        if days < 30 {
            out.push(Finding::warning(format!(
                "expires in {days} days, on {}",
                validity.not_after
            )));
        } else {
            out.push(Finding::ok(format!("valid until {}", validity.not_after)));
        }
    }
}

fn key(cert: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < 2048 {
                out.push(Finding::refused(format!(
                    "an RSA key of {bits} bits: current clients refuse keys under 2048 bits"
                )));
            } else {
                out.push(Finding::ok(format!("RSA key of {bits} bits")));
            }
        }
        Ok(PublicKey::EC(point)) => {
            let bits = point.key_size();
            if bits == 256 || bits == 384 {
                out.push(Finding::ok(format!("ECDSA key on P-{bits}")));
            } else {
                out.push(Finding::warning(format!(
                    "an EC key of {bits} bits: only P-256 and P-384 work with every client"
                )));
            }
        }
        Ok(_) => out.push(Finding::refused(
            "the key is neither RSA nor ECDSA: no built-in client uses it",
        )),
        Err(e) => out.push(Finding::refused(format!("public key unreadable: {e}"))),
    }
}

fn signature(cert: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    // sha1WithRSAEncryption, md5WithRSAEncryption, ecdsa-with-SHA1
    let weak = [
        "1.2.840.113549.1.1.5",
        "1.2.840.113549.1.1.4",
        "1.2.840.10045.4.1",
    ];
    if weak.contains(&oid.as_str()) {
        out.push(Finding::refused(
            "signed with SHA-1 or MD5: current Windows, Apple and Android clients refuse such signatures",
        ));
    } else {
        out.push(Finding::ok("signature algorithm is not SHA-1 or MD5"));
    }
}

fn ca_flag(cert: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    if let Ok(Some(bc)) = cert.basic_constraints() {
        if bc.value.ca {
            out.push(Finding::warning(
                "it is a CA certificate: use a server certificate issued by the CA, and install the CA in the clients' trusted roots",
            ));
        }
    }
}

#[cfg(test)]
#[path = "cert_rules_tests.rs"]
mod tests;
