//! The profile builder (the CMAK role): from an answer file (TOML) to the plain profile
//! files, which `package::create` then packs and signs.
//!
//! Generated files are plain ASCII when every value is ASCII (readable as ANSI by any
//! Windows tool) and UTF-16LE with a byte-order mark otherwise (the form
//! `GetPrivateProfileString` reads as Unicode).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ProfileError;
use crate::ini::IniDocument;
use crate::model::*;
use crate::parse::{self, action_flags_word, strategy_for_protocols};
use crate::text::TextEncoding;

/// The answer file. Every field is optional here so flags can fill in or override it;
/// [`build`] checks what is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// `ServiceName` (required).
    pub service_name: Option<String>,
    /// The eight-character short name (required).
    pub short_name: Option<String>,
    /// `ServiceMessage`.
    pub service_message: Option<String>,
    /// Offer dial-up (default false; with VPN servers this is double-dial).
    pub dialup: Option<bool>,
    /// Offer direct (default true).
    pub direct: Option<bool>,
    /// The default connection kind: `dial-up`, `direct`, `double-dial`.
    pub default_connection: Option<String>,
    /// `RedialCount`.
    pub redial_count: Option<u32>,
    /// `RedialDelay`, seconds.
    pub redial_delay: Option<u32>,
    /// `IdleTimeout`, minutes.
    pub idle_timeout: Option<u32>,
    /// Logon-screen parts to hide: `domain`, `user-name`, `password`, `remember-password`,
    /// `dial-automatically`, `advanced-tab`, `internet-user-name`, `internet-password`.
    #[serde(default)]
    pub hide: Vec<String>,
    /// Help file to copy in (`HelpFile`).
    pub help_file: Option<PathBuf>,
    /// Icon to copy in (`Icon`).
    pub icon: Option<PathBuf>,
    /// VPN servers and protocol order.
    #[serde(default)]
    pub vpn: VpnSpec,
    /// Realm.
    #[serde(default)]
    pub realm: RealmSpec,
    /// Phone book to include.
    pub phonebook: Option<PhoneBookSpec>,
    /// First-run values for the `.cmp`.
    #[serde(default)]
    pub user: UserSpec,
    /// Custom actions.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    /// Extra files to copy in (listed in the `.inf` `[Extra Files]`).
    #[serde(default)]
    pub extra_files: Vec<PathBuf>,
    /// Profile directories to merge (their phone books, POP filters, service types and
    /// networking entries).
    #[serde(default)]
    pub merge: Vec<PathBuf>,
    /// Advanced customization: `file ("cms"|"cmp"|"inf") → section → key → value`,
    /// written last, over anything generated.
    #[serde(default)]
    pub advanced: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
}

/// `[vpn]` of the answer file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnSpec {
    /// Servers, the default first.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// Protocol order: `sstp`, `pptp` (default `["sstp", "pptp"]`), or `l2tp` alone or
    /// first (`["l2tp", "sstp", "pptp"]`).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// `[Settings] UpdateUrl` of the server file.
    pub update_url: Option<String>,
    /// The IPsec pre-shared key for L2TP/IPsec (required with `l2tp`; 8 to 256
    /// characters), written as `PresharedKey` in the tunnel's networking section.
    pub preshared_key: Option<Secret>,
}

/// One VPN server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Display name (default: the address).
    pub name: Option<String>,
    /// Host or address, optionally `:port`.
    pub address: String,
}

/// `[realm]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmSpec {
    /// `UserNamePrefix`.
    pub prefix: Option<String>,
    /// `UserNameSuffix`.
    pub suffix: Option<String>,
    /// `UseSameUserName`.
    pub use_same_user_name: Option<bool>,
}

/// `[phonebook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneBookSpec {
    /// The `.pbk` to copy in.
    pub pbk: PathBuf,
    /// The `.pbr` to copy in.
    pub pbr: Option<PathBuf>,
    /// The Phone Book Service URL (`PBURL`).
    pub url: Option<String>,
}

/// `[user]`: first-run `.cmp` values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// `UserName`.
    pub user_name: Option<String>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `PhoneNumber0`.
    pub phone_number: Option<String>,
    /// `Device`.
    pub device: Option<String>,
}

/// One `[[actions]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// `pre-init` … `on-error`.
    pub point: String,
    /// The program. A relative path that exists beside the answer file is copied into the
    /// profile (unless `include = false`); anything else is written as given.
    pub program: String,
    /// Parameters (macros kept for the dialer).
    #[serde(default)]
    pub parameters: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `dial-up`, `direct`, `double-dial` (default: all).
    #[serde(default)]
    pub connection_types: Vec<String>,
    /// Program interacts with the user.
    #[serde(default)]
    pub interactive: bool,
    /// Copy the program into the profile.
    pub include: Option<bool>,
}

/// Builder errors.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The answer file is not valid TOML for this schema.
    #[error("{}:{line}: {message}", file.display())]
    AnswerFile {
        /// The answer file.
        file: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// What is wrong, starting with the key when the line has one.
        message: String,
    },
    /// A value of the answer file is invalid (or a required one is missing: no line).
    #[error("{}{}: {field}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    AnswerValue {
        /// The answer file.
        file: PathBuf,
        /// 1-based line of the value, when it is in the file.
        line: Option<usize>,
        /// The answer-file key, e.g. `redial_count` or `actions[2].point`.
        field: String,
        /// Why.
        reason: String,
    },
    /// A setting (from the answer file or a flag) is invalid.
    #[error("{field}: {reason}")]
    Setting {
        /// The answer-file key / flag, e.g. `short_name` or `actions[2].point`.
        field: String,
        /// Why.
        reason: String,
    },
    /// Reading an input or writing an output failed, or a merged profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

fn setting(field: impl Into<String>, reason: impl Into<String>) -> BuildError {
    BuildError::Setting {
        field: field.into(),
        reason: reason.into(),
    }
}

impl BuildSpec {
    /// Reads an answer file.
    pub fn read(path: &Path) -> Result<BuildSpec, BuildError> {
        Ok(BuildSpec::read_source(path)?.0)
    }

    /// Reads an answer file and keeps its text, so errors about its values can name
    /// their line ([`BuildError::in_answer_file`]).
    pub fn read_source(path: &Path) -> Result<(BuildSpec, AnswerSource), BuildError> {
        let text = fs::read_to_string(path).map_err(|e| ProfileError::io(path, e))?;
        let spec = toml::from_str(&text).map_err(|e| {
            let start = e.span().map_or(0, |s| s.start);
            let line = line_of(&text, start);
            // The key written on that line, when there is one: "redial_count: invalid type".
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim().trim_matches('"'))
                .filter(|k| !k.is_empty() && !k.starts_with('[') && !k.starts_with('#'));
            let message = e.message().trim().replace('\n', " ");
            BuildError::AnswerFile {
                file: path.to_path_buf(),
                line,
                message: match key {
                    Some(k) => format!("{k}: {message}"),
                    None => message,
                },
            }
        })?;
        Ok((
            spec,
            AnswerSource {
                path: path.to_path_buf(),
                text,
            },
        ))
    }
}

/// An answer file's path and text, to find the line of a setting.
#[derive(Debug, Clone)]
pub struct AnswerSource {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl AnswerSource {
    /// The line of the answer-file setting `field` (`redial_count`, `vpn.servers[1]`,
    /// `actions[0].point`): the deepest part of the path the file has, `None` when the
    /// file does not have even its first part.
    pub fn line(&self, field: &str) -> Option<usize> {
        use toml::de::{DeTable, DeValue};
        let doc = DeTable::parse(&self.text).ok()?;
        let mut table: &DeTable<'_> = doc.get_ref();
        let mut found = None;
        for part in field.split('.') {
            let (key, index) = match part.split_once('[') {
                Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
                break;
            };
            found = Some(k.span().start);
            let mut value = v;
            if let Some(i) = index {
                match value.get_ref() {
                    DeValue::Array(items) => match items.get(i) {
                        Some(item) => {
                            found = Some(item.span().start);
                            value = item;
                        }
                        None => break,
                    },
                    _ => break,
                }
            }
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        found.map(|at| line_of(&self.text, at))
    }
}

impl BuildError {
    /// A [`BuildError::Setting`] about a value that came from `source`, as an
    /// [`BuildError::AnswerValue`] naming the file and the line; other errors unchanged.
    pub fn in_answer_file(self, source: &AnswerSource) -> BuildError {
        match self {
            BuildError::Setting { field, reason } => BuildError::AnswerValue {
                file: source.path.clone(),
                line: source.line(&field),
                field,
                reason,
            },
            other => other,
        }
    }

    /// The answer-file key or flag the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            BuildError::Setting { field, .. } | BuildError::AnswerValue { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

/// What [`build`] produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The directory with the plain profile files.
    pub dir: PathBuf,
    /// The loaded (validated) profile.
    pub profile: ServiceProfile,
}

/// Files being assembled: name → bytes, with the source for error messages.
struct Files {
    /// name -> (bytes, where from, executable).
    files: BTreeMap<String, (Vec<u8>, PathBuf, bool)>,
}

impl Files {
    fn add_copy(&mut self, field: &str, source: &Path) -> Result<String, BuildError> {
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| setting(field, format!("{} is not a file", source.display())))?;
        if !crate::tar::is_safe_name(&name) {
            return Err(setting(
                field,
                format!("file name {name:?}: use only A-Z a-z 0-9 . _ - (not starting with .)"),
            ));
        }
        let bytes = fs::read(source).map_err(|e| ProfileError::io(source, e))?;
        // A program keeps its execute bit (custom actions run it directly).
        let executable = crate::package::is_executable(source)?;
        self.add(field, &name, bytes, source, executable)?;
        Ok(name)
    }

    fn add(
        &mut self,
        field: &str,
        name: &str,
        bytes: Vec<u8>,
        source: &Path,
        executable: bool,
    ) -> Result<(), BuildError> {
        if let Some((existing, from, _)) = self.files.get(name) {
            if *existing != bytes {
                return Err(setting(
                    field,
                    format!(
                        "{name} from {} clashes with a different {name} from {}",
                        source.display(),
                        from.display()
                    ),
                ));
            }
            return Ok(());
        }
        let key = name.to_ascii_lowercase();
        if self.files.keys().any(|k| k.to_ascii_lowercase() == key) {
            return Err(setting(
                field,
                format!("{name} differs only in case from another file"),
            ));
        }
        self.files
            .insert(name.to_owned(), (bytes, source.to_path_buf(), executable));
        Ok(())
    }
}

fn set(
    doc: &mut IniDocument,
    file: &str,
    section: &str,
    key: &str,
    value: &str,
) -> Result<(), BuildError> {
    doc.set(section, key, value)
        .map_err(|e| setting(format!("{file} [{section}] {key}"), e.to_string()))
}

fn bit(v: bool) -> &'static str {
    if v {
        "1"
    } else {
        "0"
    }
}

/// A GUID for `[Strings] DesktopGUID`, derived from the short name so rebuilds keep it.
fn desktop_guid(short: &str) -> String {
    let h = Sha256::digest(short.as_bytes());
    let x = hex::encode_upper(&h[..16]);
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Builds the plain profile files into `<out>/<short>/` (replacing an earlier build
/// there only once the new one is complete and loads), resolving relative paths in `spec`
/// against `base`.
pub fn build(spec: &BuildSpec, base: &Path, out: &Path) -> Result<BuildOutput, BuildError> {
    let service_name = spec.service_name.clone().ok_or_else(|| {
        setting(
            "service_name",
            "missing: every profile needs the name users see",
        )
    })?;
    parse::validate_service_name(&service_name).map_err(|r| setting("service_name", r))?;
    let short = spec.short_name.clone().ok_or_else(|| {
        setting(
            "short_name",
            format!("missing: every profile needs one ({})", cmname::RULE),
        )
    })?;
    parse::validate_short_name(&short).map_err(|r| setting("short_name", r))?;
    let path_of = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let mut files = Files {
        files: BTreeMap::new(),
    };
    let mut cms = IniDocument::new(TextEncoding::Utf8);
    const C: &str = "cms";
    set(&mut cms, C, "Profile Format", "Version", "4")?;
    let cm = sections::CONNECTION_MANAGER;
    set(&mut cms, C, cm, "ServiceName", &service_name)?;
    if let Some(m) = &spec.service_message {
        set(&mut cms, C, cm, "ServiceMessage", m)?;
    }

    // VPN.
    let protocols: Vec<VpnProtocol> = if spec.vpn.protocols.is_empty() {
        vec![VpnProtocol::Sstp, VpnProtocol::Pptp]
    } else {
        spec.vpn
            .protocols
            .iter()
            .map(|p| {
                VpnProtocol::from_name(&p.to_ascii_lowercase()).ok_or_else(|| {
                    setting(
                        "vpn.protocols",
                        format!("unknown protocol {p}: use sstp, pptp, l2tp or ikev2"),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    let strategy = strategy_for_protocols(&protocols).ok_or_else(|| {
        setting(
            "vpn.protocols",
            "give sstp, pptp, or both in the order to try, each once; or l2tp alone, or \
             l2tp, sstp, pptp (the VpnStrategy values 3 and 4); or ikev2 alone, or ikev2, \
             sstp, pptp (7 and 8)",
        )
    })?;
    let preshared_key =
        match (
            &spec.vpn.preshared_key,
            protocols.contains(&VpnProtocol::L2tp),
        ) {
            (Some(key), true) => {
                parse::check_preshared_key(&key.0)
                    .map_err(|reason| setting("vpn.preshared_key", reason))?;
                Some(key)
            }
            (None, true) => return Err(setting(
                "vpn.protocols",
                "l2tp needs the L2TP/IPsec pre-shared key (--psk-file, or preshared_key in [vpn])",
            )),
            (Some(_), false) => {
                return Err(setting(
                    "vpn.preshared_key",
                    "a pre-shared key is for L2TP/IPsec, which the profile does not try",
                ))
            }
            (None, false) => None,
        };
    let tunnel = !spec.vpn.servers.is_empty();
    let dialup = spec.dialup.unwrap_or(false);
    let direct = spec.direct.unwrap_or(true);
    if !dialup && !direct {
        return Err(setting(
            "dialup/direct",
            "at least one connection kind must be offered",
        ));
    }
    // A direct connection is a VPN tunnel over the network already there: without a
    // server it would connect nothing (and the dialer would have nothing to dial).
    if direct && !tunnel {
        return Err(setting(
            "vpn.servers",
            "no VPN server: a direct connection tunnels to one, so list at least one \
             ([vpn] servers = [...] or --vpn-server); for a dial-up-only profile set \
             dialup = true and direct = false",
        ));
    }
    let default_kind = match &spec.default_connection {
        None if direct => ConnectionKind::Direct,
        None if tunnel => ConnectionKind::DoubleDial,
        None => ConnectionKind::DialUp,
        Some(name) => ConnectionKind::from_name(name).ok_or_else(|| {
            setting(
                "default_connection",
                format!("{name:?}: use dial-up, direct or double-dial"),
            )
        })?,
    };
    let offered = match default_kind {
        ConnectionKind::Direct => direct,
        ConnectionKind::DialUp => dialup && !tunnel,
        ConnectionKind::DoubleDial => dialup && tunnel,
    };
    if !offered {
        return Err(setting(
            "default_connection",
            format!(
                "{} is not offered by this profile's dialup/direct/vpn settings",
                default_kind.name()
            ),
        ));
    }
    set(&mut cms, C, cm, "Dialup", bit(dialup))?;
    set(&mut cms, C, cm, "Direct", bit(direct))?;
    set(
        &mut cms,
        C,
        cm,
        "ConnectionType",
        &default_kind.macro_value().to_string(),
    )?;
    set(&mut cms, C, cm, "Tunnel", bit(tunnel))?;
    let tunnel_dun = format!("{service_name} Tunnel");
    set(&mut cms, C, cm, "DUN", &service_name)?;
    if tunnel {
        set(&mut cms, C, cm, "TunnelDUN", &tunnel_dun)?;
        let servers: Vec<(String, String)> = spec
            .vpn
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s.name.clone().unwrap_or_else(|| s.address.clone());
                let field = format!("vpn.servers[{i}]");
                let address = crate::endpoint::ServerAddress::parse(&s.address)
                    .map_err(|reason| setting(&field, reason))?;
                if let Some(only) = address.only.filter(|p| !protocols.contains(p)) {
                    return Err(setting(
                        field,
                        format!(
                            "{:?} is for {} but the profile tries only {}",
                            s.address,
                            only.name(),
                            protocols
                                .iter()
                                .map(|p| p.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if name.is_empty() || name.contains(['=', '[', ']', ';', '\n', '\r']) {
                    return Err(setting(
                        field,
                        format!("name {name:?} cannot be an INI key"),
                    ));
                }
                Ok((name, s.address.clone()))
            })
            .collect::<Result<_, _>>()?;
        // One unnamed server fits TunnelAddress; a name or an update URL needs the server file.
        if servers.len() == 1 && spec.vpn.update_url.is_none() && spec.vpn.servers[0].name.is_none()
        {
            set(&mut cms, C, cm, "TunnelAddress", &servers[0].1)?;
        } else {
            let mut list = IniDocument::new(TextEncoding::Utf8);
            const V: &str = "vpn server file";
            set(&mut list, V, sections::SETTINGS, "Default", &servers[0].0)?;
            if let Some(url) = &spec.vpn.update_url {
                set(&mut list, V, sections::SETTINGS, "UpdateUrl", url)?;
            }
            for (name, address) in &servers {
                if list.get(sections::VPN_SERVERS, name).is_some() {
                    return Err(setting(
                        "vpn.servers",
                        format!("two servers are named {name:?}"),
                    ));
                }
                set(&mut list, V, sections::VPN_SERVERS, name, address)?;
            }
            let name = format!("{short}vpn.txt");
            set(&mut cms, C, cm, "TunnelFile", &name)?;
            files.add(
                "vpn.servers",
                &name,
                encode(&mut list)?,
                Path::new("<vpn.servers>"),
                false,
            )?;
        }
        let networking = format!("{}{tunnel_dun}", sections::NETWORKING_PREFIX);
        set(
            &mut cms,
            C,
            &networking,
            "VpnStrategy",
            &strategy.to_string(),
        )?;
        if let Some(key) = preshared_key {
            set(&mut cms, C, &networking, "PresharedKey", &key.0)?;
        }
    }

    // Realm and logon.
    if let Some(p) = &spec.realm.prefix {
        set(&mut cms, C, cm, "UserNamePrefix", p)?;
    }
    if let Some(s) = &spec.realm.suffix {
        set(&mut cms, C, cm, "UserNameSuffix", s)?;
    }
    set(
        &mut cms,
        C,
        cm,
        "UseSameUserName",
        bit(spec.realm.use_same_user_name.unwrap_or(false)),
    )?;
    let ranged =
        |field: &str, v: Option<u32>, max: u32, default: u32| -> Result<String, BuildError> {
            let v = v.unwrap_or(default);
            if v > max {
                return Err(setting(field, format!("{v} is more than {max}")));
            }
            Ok(v.to_string())
        };
    set(
        &mut cms,
        C,
        cm,
        "RedialCount",
        &ranged("redial_count", spec.redial_count, 99, 3)?,
    )?;
    set(
        &mut cms,
        C,
        cm,
        "RedialDelay",
        &ranged("redial_delay", spec.redial_delay, 3600, 5)?,
    )?;
    set(
        &mut cms,
        C,
        cm,
        "IdleTimeout",
        &ranged("idle_timeout", spec.idle_timeout, 1440, 0)?,
    )?;
    for h in &spec.hide {
        let key = match h.as_str() {
            "domain" => "HideDomain",
            "user-name" => "HideUserName",
            "password" => "HidePassword",
            "remember-password" => "HideRememberPassword",
            "dial-automatically" => "HideDialAutomatically",
            "advanced-tab" => "HideAdvancedTab",
            "internet-user-name" => "HideInternetUserName",
            "internet-password" => "HideInternetPassword",
            other => {
                return Err(setting(
                    "hide",
                    format!("{other:?} is not a logon-screen part"),
                ))
            }
        };
        set(&mut cms, C, cm, key, "1")?;
    }
    let mut extra_listed = Vec::new();
    if let Some(help) = &spec.help_file {
        let name = files.add_copy("help_file", &path_of(help))?;
        set(&mut cms, C, cm, "HelpFile", &name)?;
        extra_listed.push(name);
    }
    if let Some(icon) = &spec.icon {
        let name = files.add_copy("icon", &path_of(icon))?;
        set(&mut cms, C, cm, "Icon", &name)?;
        extra_listed.push(name);
    }
    set(&mut cms, C, cm, "Version", "0")?;

    // Phone book.
    if let Some(pb) = &spec.phonebook {
        let name = files.add_copy("phonebook.pbk", &path_of(&pb.pbk))?;
        set(&mut cms, C, sections::ISP, "PBFile", &name)?;
        if let Some(pbr) = &pb.pbr {
            let name = files.add_copy("phonebook.pbr", &path_of(pbr))?;
            set(&mut cms, C, sections::ISP, "RegionFile", &name)?;
        }
        if let Some(url) = &pb.url {
            set(&mut cms, C, sections::ISP, "PBURL", url)?;
        }
    }

    // Custom actions.
    let mut next_index: BTreeMap<ActionPoint, u32> = BTreeMap::new();
    for (i, a) in spec.actions.iter().enumerate() {
        let field = format!("actions[{i}]");
        let point = ActionPoint::from_name(&a.point).ok_or_else(|| {
            setting(
                format!("{field}.point"),
                format!(
                    "{:?}: use one of {}",
                    a.point,
                    ActionPoint::ALL.map(|p| p.name()).join(", ")
                ),
            )
        })?;
        let mut types = ConnectionTypes::default();
        for t in &a.connection_types {
            match ConnectionKind::from_name(t) {
                Some(ConnectionKind::DialUp) => types.dial_up = true,
                Some(ConnectionKind::Direct) => types.direct = true,
                Some(ConnectionKind::DoubleDial) => types.double_dial = true,
                None => {
                    return Err(setting(
                        format!("{field}.connection_types"),
                        format!("{t:?}: use dial-up, direct or double-dial"),
                    ))
                }
            }
        }
        if a.connection_types.is_empty() {
            types = ConnectionTypes::ALL;
        }
        if a.program.trim().is_empty() || a.program.contains(['"', '\r', '\n']) {
            return Err(setting(
                format!("{field}.program"),
                "must be a program path without quotes",
            ));
        }
        let source = path_of(Path::new(&a.program));
        let include = a
            .include
            .unwrap_or(!Path::new(&a.program).is_absolute() && source.is_file());
        let program = if include {
            files.add_copy(&format!("{field}.program"), &source)?
        } else {
            a.program.clone()
        };
        let n = next_index.entry(point).or_insert(0);
        let key = n.to_string();
        *n += 1;
        let quoted = if program.contains(char::is_whitespace) {
            format!("\"{program}\"")
        } else {
            program
        };
        let command = if a.parameters.trim().is_empty() {
            quoted
        } else {
            format!("{quoted} {}", a.parameters.trim())
        };
        set(&mut cms, C, point.section(), &key, &command)?;
        if !a.description.is_empty() {
            set(
                &mut cms,
                C,
                point.section(),
                &format!("{key}&Description"),
                &a.description,
            )?;
        }
        let flags = action_flags_word(types, a.interactive);
        if flags != 0 {
            set(
                &mut cms,
                C,
                point.section(),
                &format!("{key}&Flags"),
                &format!("{flags:#06x}"),
            )?;
        }
    }

    // Extra files.
    for (i, extra) in spec.extra_files.iter().enumerate() {
        let name = files.add_copy(&format!("extra_files[{i}]"), &path_of(extra))?;
        extra_listed.push(name);
    }

    // Merged profiles.
    let mut merged = Vec::new();
    for (i, dir) in spec.merge.iter().enumerate() {
        let field = format!("merge[{i}]");
        let other = crate::load(&path_of(dir))?;
        if other.short_name.eq_ignore_ascii_case(&short) {
            return Err(setting(field, "a profile cannot merge itself"));
        }
        let other_doc = crate::load::read_ini(&other.files.cms)?;
        for pb in other
            .isp
            .phone_books
            .iter()
            .filter(|p| p.merged_from.is_none())
        {
            let section = format!("ISP&{}", other.short_name);
            for (key, name) in [("PBFile", Some(&pb.pbk)), ("RegionFile", pb.pbr.as_ref())] {
                if let Some(name) = name {
                    let src = parse::resolve_in_dir(&other.files.dir, name).ok_or_else(|| {
                        setting(&field, format!("{name}: not inside the profile"))
                    })?;
                    let copied = files.add_copy(&field, &src)?;
                    set(&mut cms, C, &section, key, &copied)?;
                }
            }
            if let Some(url) = &pb.url {
                set(&mut cms, C, &section, "PBURL", url)?;
            }
        }
        // Their POP filters, service types and networking entries, where ours has none.
        for e in other_doc.entries(sections::ISP) {
            if (e.key.starts_with("Mask&") || e.key.starts_with("Match&"))
                && cms.get(sections::ISP, e.key).is_none()
            {
                set(&mut cms, C, sections::ISP, e.key, e.value)?;
            }
        }
        for e in other_doc.entries(sections::SERVICE_TYPES) {
            if cms.get(sections::SERVICE_TYPES, e.key).is_none() {
                set(&mut cms, C, sections::SERVICE_TYPES, e.key, e.value)?;
            }
        }
        for (section, _) in other_doc.sections() {
            let is_entry = ["Server&", "TCP/IP&", sections::NETWORKING_PREFIX]
                .iter()
                .any(|p| section.starts_with(p));
            if is_entry && !cms.has_section(section) {
                for e in other_doc.entries(section) {
                    set(&mut cms, C, section, e.key, e.value)?;
                }
            }
        }
        merged.push(other.short_name.clone());
    }

    // Advanced customization, written last.
    let mut cmp = IniDocument::new(TextEncoding::Utf8);
    let mut inf = IniDocument::new(TextEncoding::Utf8);
    set(&mut cmp, "cmp", cm, "CMSFile", &format!("{short}.cms"))?;
    for (key, value) in [
        ("UserName", &spec.user.user_name),
        ("Domain", &spec.user.domain),
        ("PhoneNumber0", &spec.user.phone_number),
        ("Device", &spec.user.device),
    ] {
        if let Some(v) = value {
            set(&mut cmp, "cmp", cm, key, v)?;
        }
    }
    const I: &str = "inf";
    set(&mut inf, I, "Version", "Signature", "$chicago$")?;
    set(&mut inf, I, "Version", "AdvancedINF", "2.5")?;
    set(
        &mut inf,
        I,
        sections::STRINGS,
        "ServiceName",
        &format!("\"{service_name}\""),
    )?;
    set(
        &mut inf,
        I,
        sections::STRINGS,
        "ShortSvcName",
        &format!("\"{short}\""),
    )?;
    set(
        &mut inf,
        I,
        sections::STRINGS,
        "DesktopGUID",
        &format!("\"{}\"", desktop_guid(&short)),
    )?;
    set(&mut inf, I, "CMAK Status", "InfVersion", "1")?;
    set(
        &mut inf,
        I,
        "CMAK Status",
        "UpdatePhonebook",
        bit(spec.phonebook.is_some()),
    )?;
    for (i, name) in extra_listed.iter().enumerate() {
        set(&mut inf, I, sections::EXTRA_FILES, &i.to_string(), name)?;
    }
    for (i, name) in merged.iter().enumerate() {
        set(&mut inf, I, sections::MERGE_PROFILES, &i.to_string(), name)?;
    }
    for (file, by_section) in &spec.advanced {
        let doc = match file.as_str() {
            "cms" => &mut cms,
            "cmp" => &mut cmp,
            "inf" => &mut inf,
            other => return Err(setting(format!("advanced.{other}"), "use cms, cmp or inf")),
        };
        for (section, keys) in by_section {
            for (key, value) in keys {
                set(doc, &format!("advanced.{file}"), section, key, value)?;
            }
        }
    }
    for (name, doc) in [("cms", &mut cms), ("cmp", &mut cmp), ("inf", &mut inf)] {
        let file = format!("{short}.{name}");
        files.add(name, &file, encode(doc)?, Path::new(&file), false)?;
    }

    // Write into a staging directory, check it loads, then swap it in.
    fs::create_dir_all(out).map_err(|e| ProfileError::io(out, e))?;
    let staging = out.join(format!(".build-{short}-{}", std::process::id()));
    let target = out.join(&short);
    let _ = fs::remove_dir_all(&staging);
    let result = (|| -> Result<(), BuildError> {
        fs::create_dir(&staging).map_err(|e| ProfileError::io(&staging, e))?;
        for (name, (bytes, _, executable)) in &files.files {
            crate::package::write_file(&staging.join(name), bytes, *executable)?;
        }
        crate::load(&staging.join(format!("{short}.cms")))?;
        if target.exists() {
            fs::remove_dir_all(&target).map_err(|e| ProfileError::io(&target, e))?;
        }
        fs::rename(&staging, &target).map_err(|e| ProfileError::io(&target, e))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let profile = crate::load(&target)?;
    Ok(BuildOutput {
        dir: target,
        profile,
    })
}

/// ASCII stays ASCII; anything else becomes UTF-16LE with BOM (see the module docs).
fn encode(doc: &mut IniDocument) -> Result<Vec<u8>, BuildError> {
    if !doc.to_text().is_ascii() {
        doc.set_encoding(TextEncoding::Utf16LeBom);
    }
    doc.to_bytes()
        .map_err(|e| setting("encoding", e.to_string()))
}
