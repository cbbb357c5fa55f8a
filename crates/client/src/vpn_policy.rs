//! The VPN policy document of `ras client provision` (docs/MOBILE-CLIENT.md):
//! TOML with one `[[connection]]` table per provisioned connection. This is
//! the configuration-service-provider half of a mobile VPN client: it turns
//! a policy into checked, stored settings that the daemon (`ras client run`)
//! picks up.
//!
//! Every error names the file, the line and column, and the field
//! (``office.toml:7:12: field `connection[0].protocols[1]`: …``): `toml`
//! errors carry a byte span, and checks made after deserializing find the
//! field's span by re-parsing the document with spans.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::routes;
use crate::target::{Protocol, Target};
use crate::verify::Fingerprint;

/// The protocol order of a connection that names none: Windows' "Automatic"
/// order, the most robust and secure first.
pub const AUTOMATIC_ORDER: [Protocol; 4] = [
    Protocol::Ikev2,
    Protocol::Sstp,
    Protocol::L2tp,
    Protocol::Pptp,
];

/// Longest connection name (it becomes part of file and interface names).
const NAME_MAX: usize = 32;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;
/// Bounds that keep a hostile document from growing the daemon's state.
const CONNECTIONS_MAX: usize = 64;
const LIST_MAX: usize = 256;

/// A document that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {}{message}", path.display(), field.as_ref().map(|k| format!("field `{k}`: ")).unwrap_or_default())]
pub struct PolicyError {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    pub column: usize,
    /// The dotted path of the offending field, when it can be found (not for
    /// pure syntax errors).
    pub field: Option<String>,
    pub message: String,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default, rename = "connection")]
    pub connections: Vec<ConnectionPolicy>,
}

/// One connection, as provisioned.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPolicy {
    /// Letters, digits, `-` and `_`; unique in the document.
    pub name: String,
    /// `HOST` or `HOST:PORT` (`[V6]:PORT`), tried in order. A port, when
    /// given, is used for every protocol.
    pub servers: Vec<String>,
    /// Protocols in the order they are tried (default: [`AUTOMATIC_ORDER`]).
    #[serde(default)]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub auth: AuthPolicy,
    #[serde(default)]
    pub trust: TrustPolicy,
    /// Networks routed through the tunnel (split tunnelling).
    #[serde(default)]
    pub routes: Vec<String>,
    /// All IPv4 traffic through the tunnel.
    #[serde(default)]
    pub default_route: bool,
    /// Configure the DNS servers the server gives (false: only report them).
    #[serde(default = "yes")]
    pub dns: bool,
    /// DNS suffixes (search domains) of the tunnel.
    #[serde(default)]
    pub dns_suffixes: Vec<String>,
    /// Connect at daemon start and reconnect until told to stop.
    #[serde(default)]
    pub always_on: bool,
    /// Drop traffic outside the tunnel while the connection is wanted
    /// (stored; enforced by a later version of the daemon).
    #[serde(default)]
    pub lockdown: bool,
    /// Networks (CIDR) on which the VPN stays down (the daemon's way out,
    /// the default route's source address, inside one of them).
    #[serde(default)]
    pub trusted_networks: Vec<String>,
    /// The TUN device (default `ras-` and the name, cut to 15 bytes).
    #[serde(default)]
    pub interface: Option<String>,
}

impl fmt::Debug for ConnectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `auth` hides the password itself.
        f.debug_struct("ConnectionPolicy")
            .field("name", &self.name)
            .field("servers", &self.servers)
            .field("protocols", &self.protocols)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}

/// `[connection.auth]`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPolicy {
    pub user: Option<String>,
    /// The password itself (the stored document is readable by root only).
    pub password: Option<String>,
    /// Or the first line of this file.
    pub password_file: Option<PathBuf>,
    /// Our certificate (PEM) and its key: IKE certificate authentication
    /// for ikev2 and l2tp.
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The IPsec pre-shared key's file (l2tp; ikev2 instead of EAP).
    pub psk_file: Option<PathBuf>,
    /// IKEv2 identity (default: the user name).
    pub identity: Option<String>,
}

impl fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthPolicy")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_file", &self.password_file)
            .field("certificate", &self.certificate)
            .field("psk_file", &self.psk_file)
            .finish_non_exhaustive()
    }
}

/// `[connection.trust]`: how the server's certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// CA certificates (PEM).
    pub ca: Option<PathBuf>,
    /// Or exactly this certificate (SHA-256, hex; SSTP only).
    pub fingerprint: Option<String>,
    /// With `ca`, for IKE certificates (ikev2, l2tp with a certificate):
    /// certificate revocation lists (RFC 5280 §5, PEM or DER) the server's
    /// chain is checked against; a certificate they list is refused. Read
    /// at provisioning (a bad file is refused then) and at each attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl_files: Vec<PathBuf>,
    /// What to do with a certificate whose issuer has no current CRL.
    #[serde(default, skip_serializing_if = "CrlPolicyName::is_default")]
    pub crl_policy: CrlPolicyName,
}

/// `trust.crl_policy`: as `ras connect --crl-strict` and the server's
/// `crl_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrlPolicyName {
    /// No current CRL for the issuer: the certificate is accepted.
    #[default]
    IfAvailable,
    /// No current CRL for the issuer: the certificate is refused.
    Strict,
}

impl CrlPolicyName {
    fn is_default(&self) -> bool {
        *self == CrlPolicyName::IfAvailable
    }
}

impl ConnectionPolicy {
    /// The protocols in order, parsed (validated by [`parse`]).
    pub fn protocol_order(&self) -> Vec<Protocol> {
        if self.protocols.is_empty() {
            return AUTOMATIC_ORDER.to_vec();
        }
        self.protocols
            .iter()
            .filter_map(|p| protocol_named(p))
            .collect()
    }

    /// The targets to try for `protocol`, one per server.
    pub fn targets(&self, protocol: Protocol) -> Vec<Target> {
        self.servers
            .iter()
            .filter_map(|s| Target::parse(&format!("{}://{s}", protocol.scheme())).ok())
            .collect()
    }

    /// The TUN device name.
    pub fn interface_name(&self) -> String {
        match &self.interface {
            Some(name) => name.clone(),
            None => {
                let mut name = format!("ras-{}", self.name);
                name.truncate(IFNAME_MAX);
                name
            }
        }
    }
}

/// `ikev2`, `sstp`, `l2tp`, `pptp` (case-insensitive).
pub fn protocol_named(name: &str) -> Option<Protocol> {
    match name.to_ascii_lowercase().as_str() {
        "ikev2" => Some(Protocol::Ikev2),
        "sstp" => Some(Protocol::Sstp),
        "l2tp" => Some(Protocol::L2tp),
        "pptp" => Some(Protocol::Pptp),
        _ => None,
    }
}

/// Parses and checks a document; `path` only names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<PolicyDocument, PolicyError> {
    let doc: PolicyDocument = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = line_col(text, span.start);
        PolicyError {
            path: path.to_owned(),
            line,
            column,
            field: field_at(text, &span),
            message: e.message().trim().to_owned(),
        }
    })?;
    if let Err((field, message)) = check(&doc) {
        let span = find_field_span(text, &field).unwrap_or(0..0);
        let (line, column) = line_col(text, span.start);
        return Err(PolicyError {
            path: path.to_owned(),
            line,
            column,
            field: Some(field),
            message,
        });
    }
    Ok(doc)
}

/// Checks across fields: (dotted field, message) of the first problem.
fn check(doc: &PolicyDocument) -> Result<(), (String, String)> {
    if doc.connections.is_empty() {
        return Err((
            "connection".into(),
            "the document provisions no connection ([[connection]] tables)".into(),
        ));
    }
    if doc.connections.len() > CONNECTIONS_MAX {
        return Err((
            "connection".into(),
            format!("at most {CONNECTIONS_MAX} connections"),
        ));
    }
    for (i, c) in doc.connections.iter().enumerate() {
        let at = |field: &str| format!("connection[{i}].{field}");
        check_name(&c.name).map_err(|m| (at("name"), m))?;
        if doc.connections[..i].iter().any(|o| o.name == c.name) {
            return Err((at("name"), format!("{:?} is provisioned twice", c.name)));
        }
        check_connection(c, &at)?;
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(format!(
            "{name:?}: 1 to {NAME_MAX} letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

fn check_connection(
    c: &ConnectionPolicy,
    at: &dyn Fn(&str) -> String,
) -> Result<(), (String, String)> {
    if c.servers.is_empty() {
        return Err((at("servers"), "at least one server is needed".into()));
    }
    let lists = [
        ("servers", c.servers.len()),
        ("routes", c.routes.len()),
        ("dns_suffixes", c.dns_suffixes.len()),
        ("trusted_networks", c.trusted_networks.len()),
        ("trust.crl_files", c.trust.crl_files.len()),
    ];
    for (field, len) in lists {
        if len > LIST_MAX {
            return Err((at(field), format!("at most {LIST_MAX} entries")));
        }
    }
    for (j, s) in c.servers.iter().enumerate() {
        if s.contains("://") || s.contains('/') {
            return Err((
                at(&format!("servers[{j}]")),
                format!("{s:?}: HOST or HOST:PORT, without a scheme (the protocols come from `protocols`)"),
            ));
        }
        Target::parse(&format!("sstp://{s}")).map_err(|_| {
            (
                at(&format!("servers[{j}]")),
                format!("{s:?} is not HOST[:PORT]"),
            )
        })?;
    }
    let mut seen = Vec::new();
    for (j, p) in c.protocols.iter().enumerate() {
        let field = at(&format!("protocols[{j}]"));
        let protocol = protocol_named(p).ok_or_else(|| {
            (
                field.clone(),
                format!("unknown protocol {p:?} (ikev2, sstp, l2tp or pptp)"),
            )
        })?;
        if seen.contains(&protocol) {
            return Err((field, format!("{p:?} is listed twice")));
        }
        seen.push(protocol);
    }
    for (j, r) in c.routes.iter().enumerate() {
        routes::parse_cidr(r).map_err(|e| (at(&format!("routes[{j}]")), e.to_string()))?;
    }
    for (j, r) in c.trusted_networks.iter().enumerate() {
        parse_network(r).map_err(|m| (at(&format!("trusted_networks[{j}]")), m))?;
    }
    for (j, d) in c.dns_suffixes.iter().enumerate() {
        check_domain(d).map_err(|m| (at(&format!("dns_suffixes[{j}]")), m))?;
    }
    if let Some(name) = &c.interface {
        if name.is_empty() || name.len() > IFNAME_MAX || name.contains(['/', ' ', '\t', '\n', ':'])
        {
            return Err((
                at("interface"),
                format!("{name:?}: 1 to {IFNAME_MAX} characters, no '/', ':' or spaces"),
            ));
        }
    }
    check_files(c, at)?;
    check_crls(c, at)?;
    check_auth(c, at)
}

/// CRLs check the server's IKE certificate against `trust.ca`: without a
/// CA or an IKE protocol they would check nothing, which is said rather
/// than ignored.
fn check_crls(c: &ConnectionPolicy, at: &dyn Fn(&str) -> String) -> Result<(), (String, String)> {
    let t = &c.trust;
    if t.crl_files.is_empty() {
        if t.crl_policy == CrlPolicyName::Strict {
            return Err((
                at("trust.crl_policy"),
                "\"strict\" needs `crl_files` (without CRLs every certificate would be refused)"
                    .into(),
            ));
        }
        return Ok(());
    }
    if t.ca.is_none() {
        return Err((
            at("trust.crl_files"),
            "CRLs need `trust.ca` (they check the server's chain up to it)".into(),
        ));
    }
    let ike = c
        .protocol_order()
        .iter()
        .any(|p| *p == Protocol::Ikev2 || (*p == Protocol::L2tp && c.auth.certificate.is_some()));
    if !ike {
        return Err((
            at("trust.crl_files"),
            "CRLs apply to IKE certificates (ikev2, l2tp with a certificate) only".into(),
        ));
    }
    for (j, path) in t.crl_files.iter().enumerate() {
        if !path.is_absolute() {
            return Err((
                at(&format!("trust.crl_files[{j}]")),
                format!(
                    "{}: an absolute path is needed (the daemon does not run where the document was written)",
                    path.display()
                ),
            ));
        }
        if t.crl_files[..j].contains(path) {
            return Err((
                at(&format!("trust.crl_files[{j}]")),
                format!("{} is listed twice", path.display()),
            ));
        }
    }
    Ok(())
}

fn check_files(c: &ConnectionPolicy, at: &dyn Fn(&str) -> String) -> Result<(), (String, String)> {
    let files = [
        ("auth.password_file", &c.auth.password_file),
        ("auth.certificate", &c.auth.certificate),
        ("auth.key", &c.auth.key),
        ("auth.psk_file", &c.auth.psk_file),
        ("trust.ca", &c.trust.ca),
    ];
    for (field, path) in files {
        if let Some(path) = path {
            if !path.is_absolute() {
                return Err((
                    at(field),
                    format!(
                        "{}: an absolute path is needed (the daemon does not run where the document was written)",
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What each protocol in the order needs, so that a connection never fails
/// later for something provisioning could have said.
fn check_auth(c: &ConnectionPolicy, at: &dyn Fn(&str) -> String) -> Result<(), (String, String)> {
    let a = &c.auth;
    if a.password.is_some() && a.password_file.is_some() {
        return Err((
            at("auth.password_file"),
            "give `password` or `password_file`, not both".into(),
        ));
    }
    if a.certificate.is_some() != a.key.is_some() {
        let field = if a.certificate.is_some() {
            "auth.key"
        } else {
            "auth.certificate"
        };
        return Err((at(field), "`certificate` and `key` go together".into()));
    }
    if c.trust.ca.is_some() && c.trust.fingerprint.is_some() {
        return Err((
            at("trust.fingerprint"),
            "give `ca` or `fingerprint`, not both".into(),
        ));
    }
    if let Some(fp) = &c.trust.fingerprint {
        Fingerprint::parse(fp).map_err(|e| (at("trust.fingerprint"), e.to_string()))?;
    }
    let has_password = a.password.is_some() || a.password_file.is_some();
    let has_user = a.user.as_deref().is_some_and(|u| !u.is_empty());
    let has_cert = a.certificate.is_some();
    let password_login = |protocol: &str| -> Result<(), (String, String)> {
        if !has_user {
            return Err((
                at("auth.user"),
                format!("{protocol} needs a user name (MS-CHAPv2)"),
            ));
        }
        if !has_password {
            return Err((
                at("auth.password"),
                format!("{protocol} needs `password` or `password_file`"),
            ));
        }
        Ok(())
    };
    for protocol in c.protocol_order() {
        match protocol {
            Protocol::Sstp => {
                password_login("sstp")?;
                if c.trust.ca.is_none() && c.trust.fingerprint.is_none() {
                    return Err((
                        at("trust"),
                        "sstp needs `trust.ca` or `trust.fingerprint` to check the server".into(),
                    ));
                }
            }
            Protocol::Pptp => password_login("pptp")?,
            Protocol::L2tp => {
                password_login("l2tp")?;
                if a.psk_file.is_none() && !has_cert {
                    return Err((
                        at("auth.psk_file"),
                        "l2tp needs the IPsec pre-shared key (`psk_file`) or `certificate` and `key`"
                            .into(),
                    ));
                }
                if has_cert && c.trust.ca.is_none() {
                    return Err((
                        at("trust.ca"),
                        "l2tp with a certificate needs `trust.ca` (the CA of the server's IKE certificate)".into(),
                    ));
                }
            }
            Protocol::Ikev2 => {
                if a.psk_file.is_none() && c.trust.ca.is_none() {
                    return Err((
                        at("trust.ca"),
                        "ikev2 needs `trust.ca` (the CA of the server's IKE certificate), or `auth.psk_file`".into(),
                    ));
                }
                if a.psk_file.is_none() && !has_cert {
                    password_login("ikev2 with EAP")?;
                }
            }
            Protocol::Serial => {}
        }
    }
    Ok(())
}

/// A trusted network: `ADDR/PREFIX`.
fn parse_network(text: &str) -> Result<(IpAddr, u8), String> {
    if !text.contains('/') {
        return Err(format!("{text:?}: a network ADDR/PREFIX is expected"));
    }
    routes::parse_cidr(text).map_err(|e| e.to_string())
}

/// A DNS suffix: labels of letters, digits and `-`, at most 253 bytes.
pub fn check_domain(text: &str) -> Result<(), String> {
    let name = text.trim_end_matches('.');
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{text:?} is not a DNS name"))
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted path of the innermost field whose name or value contains the
/// start of `span`, found by re-parsing the document with spans.
fn field_at(text: &str, span: &Range<usize>) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<Vec<String>> = None;
    let mut path = Vec::new();
    walk_table(doc.get_ref(), span.start, &mut path, &mut best);
    best.map(|p| join_path(&p))
}

fn join_path(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        if !p.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

fn consider(path: &[String], best: &mut Option<Vec<String>>) {
    if best.as_ref().is_none_or(|b| path.len() > b.len()) {
        *best = Some(path.to_vec());
    }
}

fn walk_table(
    table: &toml::de::DeTable<'_>,
    pos: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    for (k, v) in table.iter() {
        path.push(k.get_ref().to_string());
        if k.span().contains(&pos) || v.span().contains(&pos) {
            consider(path, best);
        }
        walk_value(v.get_ref(), pos, path, best);
        path.pop();
    }
}

fn walk_value(
    value: &toml::de::DeValue<'_>,
    pos: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    match value {
        toml::de::DeValue::Table(t) => walk_table(t, pos, path, best),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                if item.span().contains(&pos) {
                    consider(path, best);
                }
                walk_value(item.get_ref(), pos, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The span of field `field` (`connection[0].auth.user`): the value's span,
/// or the closest enclosing one that exists (a missing field is reported at
/// its table).
fn find_field_span(text: &str, field: &str) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    let mut span: Option<Range<usize>> = None;
    let mut table = doc.get_ref();
    for part in field.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if let Some(v) = value {
            match v.as_table() {
                Some(t) => table = t,
                None => return span,
            }
        }
        let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
            return span;
        };
        span = Some(v.span());
        value = Some(v.get_ref());
        if let Some(i) = index {
            let toml::de::DeValue::Array(items) = v.get_ref() else {
                return span;
            };
            let Some(item) = items.get(i) else {
                return span;
            };
            span = Some(item.span());
            value = Some(item.get_ref());
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[connection]]
name = "office"
servers = ["vpn.example.com", "10.0.0.1:8443"]
protocols = ["ikev2", "sstp"]
always_on = true
routes = ["10.0.0.0/8"]
dns_suffixes = ["corp.example.com"]
trusted_networks = ["192.168.50.0/24"]

[connection.auth]
user = "alice"
password = "secret"

[connection.trust]
ca = "/etc/ras/client/office-ca.pem"
"#;

    fn err(text: &str) -> PolicyError {
        parse(text, Path::new("p.toml")).expect_err("must be refused")
    }

    #[test]
    fn a_good_document_parses_with_its_defaults() {
        let doc = parse(GOOD, Path::new("p.toml")).unwrap();
        let c = &doc.connections[0];
        assert_eq!(c.protocol_order(), vec![Protocol::Ikev2, Protocol::Sstp]);
        assert_eq!(c.interface_name(), "ras-office");
        let t = c.targets(Protocol::Sstp);
        assert_eq!(t[1].port, 8443);
        assert_eq!(c.targets(Protocol::Ikev2)[0].port, 500);
        assert!(c.always_on && !c.lockdown);
        // The password never shows in Debug output.
        assert!(!format!("{c:?}").contains("secret"));
        // The stored form reads back the same.
        let stored = toml::to_string(&doc).unwrap();
        assert_eq!(parse(&stored, Path::new("s.toml")).unwrap(), doc);
    }

    #[test]
    fn automatic_is_the_default_order() {
        let text = GOOD.replace("protocols = [\"ikev2\", \"sstp\"]\n", "") + "[connection.extra]\n";
        // Unknown tables are refused, with their name.
        let e = err(&text);
        assert_eq!(e.field.as_deref(), Some("connection[0].extra"));
        assert!(e.message.contains("extra"), "{e}");
        let text = GOOD
            .replace("protocols = [\"ikev2\", \"sstp\"]\n", "")
            .replace(
                "password = \"secret\"",
                "password = \"secret\"\npsk_file = \"/k\"",
            );
        let doc = parse(&text, Path::new("p.toml")).unwrap();
        assert_eq!(
            doc.connections[0].protocol_order(),
            AUTOMATIC_ORDER.to_vec()
        );
    }

    #[test]
    fn crls_belong_to_the_ca_of_ike_certificates() {
        let with = |trust_extra: &str| {
            GOOD.replace(
                "ca = \"/etc/ras/client/office-ca.pem\"",
                &format!("ca = \"/etc/ras/client/office-ca.pem\"\n{trust_extra}"),
            )
        };
        let doc = parse(
            &with("crl_files = [\"/etc/ras/client/office.crl\", \"/etc/ras/client/sub.crl\"]\ncrl_policy = \"strict\""),
            Path::new("p.toml"),
        )
        .unwrap();
        let t = &doc.connections[0].trust;
        assert_eq!(t.crl_files.len(), 2);
        assert_eq!(t.crl_policy, CrlPolicyName::Strict);
        // Stored and read back the same.
        let stored = toml::to_string(&doc).unwrap();
        assert!(stored.contains("crl_policy = \"strict\""), "{stored}");
        assert_eq!(parse(&stored, Path::new("s.toml")).unwrap(), doc);
        // The default policy is if-available, and not written out.
        let doc = parse(&with("crl_files = [\"/c.crl\"]"), Path::new("p.toml")).unwrap();
        assert_eq!(
            doc.connections[0].trust.crl_policy,
            CrlPolicyName::IfAvailable
        );
        assert!(!toml::to_string(&doc).unwrap().contains("crl_policy"));

        let e = err(&with("crl_files = [\"/c.crl\", \"c2.crl\"]"));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_files[1]"));
        assert!(e.message.contains("absolute"), "{e}");
        assert_eq!(e.line, 17, "{e}");
        let e = err(&with("crl_files = [\"/c.crl\", \"/c.crl\"]"));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_files[1]"));
        let e = err(&with("crl_policy = \"strict\""));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_policy"));
        assert!(e.message.contains("crl_files"), "{e}");
        let e = err(&with(
            "crl_files = [\"/c.crl\"]\ncrl_policy = \"sometimes\"",
        ));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_policy"));
        assert_eq!(e.line, 18, "{e}");
        // SSTP alone checks no IKE certificate.
        let e =
            err(&with("crl_files = [\"/c.crl\"]").replace("[\"ikev2\", \"sstp\"]", "[\"sstp\"]"));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_files"));
        assert!(e.message.contains("IKE"), "{e}");
        // No CA: refused (a fingerprint pins one certificate, no chain).
        let fp = "ab".repeat(32);
        let e = err(
            &GOOD.replace("[\"ikev2\", \"sstp\"]", "[\"sstp\"]").replace(
                "ca = \"/etc/ras/client/office-ca.pem\"",
                &format!("fingerprint = \"{fp}\"\ncrl_files = [\"/c.crl\"]"),
            ),
        );
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.crl_files"));
        assert!(e.message.contains("trust.ca"), "{e}");
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let e = err(&GOOD.replace("\"sstp\"]", "\"openvpn\"]"));
        assert_eq!(e.field.as_deref(), Some("connection[0].protocols[1]"));
        assert_eq!(e.line, 5);
        assert!(e.message.contains("openvpn"));
        assert!(e.to_string().starts_with("p.toml:5:"), "{e}");

        let e = err(&GOOD.replace("always_on = true", "always_on = \"yes\""));
        assert_eq!(e.field.as_deref(), Some("connection[0].always_on"));
        assert_eq!(e.line, 6);

        let e = err(&GOOD.replace("10.0.0.0/8", "10.0.0.0/99"));
        assert_eq!(e.field.as_deref(), Some("connection[0].routes[0]"));

        let e = err(&GOOD.replace("password = \"secret\"\n", ""));
        assert_eq!(e.field.as_deref(), Some("connection[0].auth.password"));
        // A missing field is reported at its table's line.
        assert_eq!(e.line, 11);

        let e = err(&GOOD.replace("ca = \"/etc", "fingerprint = \"zz\"\nca = \"/etc"));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.fingerprint"));

        let e = err(&GOOD.replace("ca = \"/etc/ras/client/", "ca = \""));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.ca"));
        assert!(e.message.contains("absolute"));

        let e = err(&GOOD.replace("\"vpn.example.com\"", "\"sstp://vpn.example.com\""));
        assert_eq!(e.field.as_deref(), Some("connection[0].servers[0]"));

        let e = err(&format!("{GOOD}{}", GOOD));
        assert_eq!(e.field.as_deref(), Some("connection[1].name"));
        assert!(e.message.contains("twice"));

        let e = err(&GOOD.replace("name = \"office\"", "name = \"../x\""));
        assert_eq!(e.field.as_deref(), Some("connection[0].name"));

        let e = err("");
        assert_eq!(e.field.as_deref(), Some("connection"));
        // A syntax error still names the line.
        let e = err("[[connection]]\nname = \n");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn each_protocol_gets_what_it_needs() {
        // ikev2 without a CA or a key: refused (the password must not go
        // to an unauthenticated server).
        let e = err(&GOOD.replace(
            "[connection.trust]\nca = \"/etc/ras/client/office-ca.pem\"",
            "",
        ));
        assert_eq!(e.field.as_deref(), Some("connection[0].trust.ca"));
        // sstp alone with a fingerprint is fine.
        let fp = "ab".repeat(32);
        let text = GOOD.replace("[\"ikev2\", \"sstp\"]", "[\"sstp\"]").replace(
            "ca = \"/etc/ras/client/office-ca.pem\"",
            &format!("fingerprint = \"{fp}\""),
        );
        parse(&text, Path::new("p.toml")).unwrap();
        // l2tp needs a key or a certificate.
        let e = err(&GOOD.replace("[\"ikev2\", \"sstp\"]", "[\"l2tp\"]"));
        assert_eq!(e.field.as_deref(), Some("connection[0].auth.psk_file"));
    }
}
