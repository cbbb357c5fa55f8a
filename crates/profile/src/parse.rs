//! From INI documents to the typed model, with errors that name file, line and key.
//!
//! Sans-IO: every function takes documents already read; `crate::load` does the reading.

use std::path::{Path, PathBuf};

use crate::error::ProfileError;
use crate::ini::{Entry, IniDocument};
use crate::model::*;

/// Validates a `.cms` document on its own (no other files): every modelled key of
/// `[Connection Manager]`, `[ISP]`, `[Service Types]`, the action sections and the
/// networking entry. For fuzzing and for tools that check a file before it is saved.
pub fn check_cms(doc: &IniDocument, file: &Path) -> Result<(), ProfileError> {
    let r = Reader::new(doc, file);
    let cm = connection_manager(&r)?;
    let isp = isp(&r)?;
    service_types(&r, &isp)?;
    for point in ActionPoint::ALL {
        actions(&r, point)?;
    }
    vpn_protocols(&r, cm.tunnel_dun.as_deref())?;
    user_settings(&r)?;
    install_info(&r);
    Ok(())
}

/// Typed reads of one document, each error naming the file.
pub(crate) struct Reader<'a> {
    pub doc: &'a IniDocument,
    pub file: &'a Path,
}

impl<'a> Reader<'a> {
    pub fn new(doc: &'a IniDocument, file: &'a Path) -> Self {
        Reader { doc, file }
    }

    pub fn invalid(&self, section: &str, e: &Entry<'_>, reason: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            file: self.file.to_path_buf(),
            line: e.line,
            section: section.to_owned(),
            key: e.key.to_owned(),
            reason: reason.into(),
        }
    }

    /// A non-empty value, or `None` when the key is absent or empty.
    pub fn string(&self, section: &str, key: &str) -> Option<String> {
        self.doc
            .get(section, key)
            .map(|e| e.value.to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, section: &str, key: &str, why: &str) -> Result<String, ProfileError> {
        self.string(section, key)
            .ok_or_else(|| ProfileError::Missing {
                file: self.file.to_path_buf(),
                section: section.to_owned(),
                key: key.to_owned(),
                reason: why.to_owned(),
            })
    }

    /// `0` or `1` (the Connection Manager keys are integers); absent or empty = `default`.
    pub fn bool(&self, section: &str, key: &str, default: bool) -> Result<bool, ProfileError> {
        match self.doc.get(section, key) {
            None => Ok(default),
            Some(e) if e.value.is_empty() => Ok(default),
            Some(e) => match e.value {
                "0" => Ok(false),
                "1" => Ok(true),
                other => Err(self.invalid(
                    section,
                    &e,
                    format!("{other:?} is not a boolean: use 0 or 1"),
                )),
            },
        }
    }

    /// A decimal integer in `min..=max`; absent or empty = `default`.
    pub fn number(
        &self,
        section: &str,
        key: &str,
        min: u32,
        max: u32,
        default: u32,
    ) -> Result<u32, ProfileError> {
        match self.doc.get(section, key) {
            None => Ok(default),
            Some(e) if e.value.is_empty() => Ok(default),
            Some(e) => match parse_u32(e.value) {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(self.invalid(
                    section,
                    &e,
                    format!("{:?} is not a whole number from {min} to {max}", e.value),
                )),
            },
        }
    }
}

/// Decimal, or hexadecimal with `0x` (as the `Mask&`/`Match&` keys are written).
pub(crate) fn parse_u32(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 8 {
            return None;
        }
        return u32::from_str_radix(hex, 16).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The short service name (also the file stem of `.cms`/`.cmp`/`.inf` and the profile's
/// directory name) follows the one rule it shares with phone book names (`cmname`: 1-8
/// characters from `A-Z a-z 0-9 _ -`, not all digits; the seed's phone-book name rule).
pub fn validate_short_name(name: &str) -> Result<(), String> {
    cmname::check(name).map_err(|e| e.to_string())
}

/// The service name is a file and registry name on Windows: no `\ / : * ? " < > |`, no
/// control characters, 1–128 characters.
pub fn validate_service_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(format!("{name:?} must have 1 to 128 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || r#"\/:*?"<>|"#.contains(*c))
    {
        return Err(format!("{name:?} must not contain {c:?}"));
    }
    Ok(())
}

/// A server address: `host`, `host:port`, `[IPv6]:port`, `sstp://…` or `pptp://…`
/// (`crate::endpoint` says which protocol a port belongs to).
fn validate_server_address(address: &str) -> Result<(), String> {
    crate::endpoint::ServerAddress::parse(address).map(|_| ())
}

const CM: &str = sections::CONNECTION_MANAGER;

/// `[Connection Manager]` of a `.cms`.
pub(crate) fn connection_manager(
    r: &Reader<'_>,
) -> Result<ConnectionManagerSettings, ProfileError> {
    let service_name = r.required(CM, "ServiceName", "every profile has a service name")?;
    if let Err(reason) = validate_service_name(&service_name) {
        let e = r.doc.get(CM, "ServiceName").expect("present");
        return Err(r.invalid(CM, &e, reason));
    }
    let default_connection = match r.number(CM, "ConnectionType", 0, 2, 1)? {
        0 => ConnectionKind::DialUp,
        1 => ConnectionKind::Direct,
        _ => ConnectionKind::DoubleDial,
    };
    let tunnel_address = r.string(CM, "TunnelAddress");
    if let (Some(addr), Some(e)) = (&tunnel_address, r.doc.get(CM, "TunnelAddress")) {
        validate_server_address(addr).map_err(|reason| r.invalid(CM, &e, reason))?;
    }
    let settings = ConnectionManagerSettings {
        service_name,
        service_message: r.string(CM, "ServiceMessage"),
        default_connection,
        dialup: r.bool(CM, "Dialup", false)?,
        direct: r.bool(CM, "Direct", true)?,
        tunnel: r.bool(CM, "Tunnel", false)?,
        tunnel_address,
        tunnel_file: r.string(CM, "TunnelFile"),
        tunnel_dun: r.string(CM, "TunnelDUN"),
        dun: r.string(CM, "DUN"),
        realm: Realm {
            prefix: r.string(CM, "UserNamePrefix").unwrap_or_default(),
            suffix: r.string(CM, "UserNameSuffix").unwrap_or_default(),
        },
        use_same_user_name: r.bool(CM, "UseSameUserName", false)?,
        redial_count: r.number(CM, "RedialCount", 0, 99, 3)?,
        redial_delay_secs: r.number(CM, "RedialDelay", 0, 3600, 5)?,
        idle_timeout_minutes: r.number(CM, "IdleTimeout", 0, 1440, 0)?,
        hide: HideOptions {
            domain: r.bool(CM, "HideDomain", false)?,
            user_name: r.bool(CM, "HideUserName", false)?,
            password: r.bool(CM, "HidePassword", false)?,
            remember_password: r.bool(CM, "HideRememberPassword", false)?,
            dial_automatically: r.bool(CM, "HideDialAutomatically", false)?,
            advanced_tab: r.bool(CM, "HideAdvancedTab", false)?,
            internet_user_name: r.bool(CM, "HideInternetUserName", false)?,
            internet_password: r.bool(CM, "HideInternetPassword", false)?,
        },
        help_file: r.string(CM, "HelpFile"),
        icon: r.string(CM, "Icon"),
        phonebook_version: r.number(CM, "Version", 0, u32::MAX, 0)?,
    };
    if !settings.dialup && !settings.direct {
        let e = r
            .doc
            .get(CM, "Direct")
            .or_else(|| r.doc.get(CM, "Dialup"))
            .expect("Direct defaults to 1, so one of them was written as 0");
        return Err(r.invalid(CM, &e, "Dialup and Direct are both 0: no way to connect"));
    }
    if settings.tunnel && settings.tunnel_address.is_none() && settings.tunnel_file.is_none() {
        let e = r.doc.get(CM, "Tunnel").expect("Tunnel=1 was read");
        return Err(r.invalid(
            CM,
            &e,
            "Tunnel=1 needs a TunnelAddress or a TunnelFile naming the VPN servers",
        ));
    }
    let kind_offered = match settings.default_connection {
        ConnectionKind::DialUp => settings.dialup && !settings.tunnel,
        ConnectionKind::Direct => settings.direct,
        ConnectionKind::DoubleDial => settings.dialup && settings.tunnel,
    };
    if !kind_offered {
        if let Some(e) = r.doc.get(CM, "ConnectionType") {
            return Err(r.invalid(
                CM,
                &e,
                format!(
                    "the default connection type {} is not offered by Dialup/Direct/Tunnel",
                    settings.default_connection.name()
                ),
            ));
        }
    }
    Ok(settings)
}

/// Most `[ISP&<short>]` sections a profile may have.
pub const MAX_MERGED_PHONE_BOOKS: usize = 64;

/// `[ISP]` and the merged profiles' `[ISP&<short>]` sections.
pub(crate) fn isp(r: &Reader<'_>) -> Result<IspSettings, ProfileError> {
    let mut out = IspSettings::default();
    let mut phone_book = |section: &str, merged_from: Option<String>| {
        if let Some(pbk) = r.string(section, "PBFile") {
            out.phone_books.push(PhoneBookRef {
                pbk,
                pbr: r.string(section, "RegionFile"),
                url: r.string(section, "PBURL"),
                merged_from,
            });
        }
    };
    phone_book(sections::ISP, None);
    let mut merged = 0;
    for (name, line) in r.doc.sections() {
        if let Some(short) = name.strip_prefix("ISP&") {
            merged += 1;
            // Each lookup scans the file: bound the work a crafted file can cause.
            if merged > MAX_MERGED_PHONE_BOOKS {
                return Err(ProfileError::Invalid {
                    file: r.file.to_path_buf(),
                    line,
                    section: name.to_owned(),
                    key: "PBFile".to_owned(),
                    reason: format!("more than {MAX_MERGED_PHONE_BOOKS} merged phone books"),
                });
            }
            phone_book(name, Some(short.to_owned()));
        }
    }
    let entries = r.doc.entries(sections::ISP);
    // Indexed by lower-case name so a file with many filters is checked in linear time.
    let mut matches: std::collections::HashMap<String, &Entry<'_>> =
        std::collections::HashMap::new();
    for m in &entries {
        if let Some(name) = m.key.strip_prefix("Match&") {
            matches.entry(name.to_ascii_lowercase()).or_insert(m);
        }
    }
    let mut masks = std::collections::HashSet::new();
    for e in &entries {
        let Some(name) = e.key.strip_prefix("Mask&") else {
            continue;
        };
        let mask = parse_u32(e.value).ok_or_else(|| {
            r.invalid(
                sections::ISP,
                e,
                format!("{:?} is not a number (e.g. 0x0004)", e.value),
            )
        })?;
        masks.insert(name.to_ascii_lowercase());
        let Some(m) = matches.get(&name.to_ascii_lowercase()).copied() else {
            return Err(r.invalid(sections::ISP, e, format!("no Match&{name} goes with it")));
        };
        let value = parse_u32(m.value).ok_or_else(|| {
            r.invalid(
                sections::ISP,
                m,
                format!("{:?} is not a number (e.g. 0x0004)", m.value),
            )
        })?;
        if value & !mask != 0 {
            return Err(r.invalid(
                sections::ISP,
                m,
                format!(
                    "bits {:#06x} are outside Mask&{name} {mask:#06x}: no POP could match",
                    value & !mask
                ),
            ));
        }
        out.filters.push(ServiceTypeFilter {
            name: name.to_owned(),
            mask,
            value,
        });
    }
    for m in &entries {
        if let Some(name) = m.key.strip_prefix("Match&") {
            if !masks.contains(&name.to_ascii_lowercase()) {
                return Err(r.invalid(sections::ISP, m, format!("no Mask&{name} goes with it")));
            }
        }
    }
    Ok(out)
}

/// `[Service Types]`; each must name a filter of `[ISP]`.
pub(crate) fn service_types(
    r: &Reader<'_>,
    isp: &IspSettings,
) -> Result<Vec<ServiceType>, ProfileError> {
    r.doc
        .entries(sections::SERVICE_TYPES)
        .into_iter()
        .map(|e| {
            if !isp
                .filters
                .iter()
                .any(|f| f.name.eq_ignore_ascii_case(e.value))
            {
                return Err(r.invalid(
                    sections::SERVICE_TYPES,
                    &e,
                    format!(
                        "{:?} is not a filter of [ISP] (Mask&{0}/Match&{0})",
                        e.value
                    ),
                ));
            }
            Ok(ServiceType {
                display_name: e.key.to_owned(),
                filter: e.value.to_owned(),
            })
        })
        .collect()
}

/// Splits `program parameters`: a quoted program may contain spaces; `x.dll,Fn` names a
/// DLL entry point (the form of the `cmroute.dll,SetRoutes ...` action seen in real
/// profiles, CM-FORMATS.md §5).
pub fn split_command(command: &str) -> (String, Option<String>, String) {
    let command = command.trim();
    let (program, rest) = if let Some(quoted) = command.strip_prefix('"') {
        match quoted.find('"') {
            Some(end) => (&quoted[..end], &quoted[end + 1..]),
            None => (quoted, ""),
        }
    } else {
        match command.find(char::is_whitespace) {
            Some(at) => (&command[..at], &command[at..]),
            None => (command, ""),
        }
    };
    let (mut program, mut entry_point) = (program.to_owned(), None);
    if let Some((dll, function)) = program.split_once(',') {
        if dll.to_ascii_lowercase().ends_with(".dll") && !function.is_empty() {
            entry_point = Some(function.to_owned());
            program = dll.to_owned();
        }
    }
    // A DLL entry point may also be written as the first parameter (the seed: "the first
    // token of the parameter string is the function entry point").
    (program, entry_point, rest.trim().to_owned())
}

/// The actions of one point: entries `n=command`, `n&Description=`, `n&Flags=`.
pub(crate) fn actions(
    r: &Reader<'_>,
    point: ActionPoint,
) -> Result<Vec<CustomAction>, ProfileError> {
    let section = point.section();
    let entries = r.doc.entries(section);
    let mut out: Vec<CustomAction> = Vec::new();
    // index -> position in `out`, so attribute lookups stay linear in the file size.
    let mut position = std::collections::HashMap::new();
    for e in &entries {
        if e.key.contains('&') {
            continue;
        }
        let index = parse_index(e.key).ok_or_else(|| {
            r.invalid(
                section,
                e,
                "custom action keys are numbers 0-999 (n=program parameters)",
            )
        })?;
        if position.contains_key(&index) {
            return Err(r.invalid(section, e, format!("action {index} is defined twice")));
        }
        let (program, entry_point, parameters) = split_command(e.value);
        if program.is_empty() {
            return Err(r.invalid(section, e, "no program given"));
        }
        position.insert(index, out.len());
        out.push(CustomAction {
            point,
            index,
            program,
            entry_point,
            parameters,
            description: String::new(),
            connection_types: ConnectionTypes::ALL,
            interactive: false,
            line: e.line,
        });
    }
    for e in &entries {
        let Some((n, attribute)) = e.key.split_once('&') else {
            continue;
        };
        let index = parse_index(n).ok_or_else(|| {
            r.invalid(
                section,
                e,
                "expected n&Description or n&Flags with n a number",
            )
        })?;
        let Some(action) = position.get(&index).map(|&i| &mut out[i]) else {
            return Err(r.invalid(
                section,
                e,
                format!("there is no action {index}={{program}}"),
            ));
        };
        if attribute.eq_ignore_ascii_case("Description") {
            action.description = e.value.to_owned();
        } else if attribute.eq_ignore_ascii_case("Flags") {
            let flags = parse_u32(e.value).filter(|f| f & !action_flags::KNOWN == 0).ok_or_else(|| {
                r.invalid(
                    section,
                    e,
                    format!(
                        "{:?} is not a flags word: 0x1 dial-up, 0x2 direct, 0x4 double-dial, 0x100 interactive",
                        e.value
                    ),
                )
            })?;
            let types = ConnectionTypes {
                dial_up: flags & action_flags::DIAL_UP != 0,
                direct: flags & action_flags::DIRECT != 0,
                double_dial: flags & action_flags::DOUBLE_DIAL != 0,
            };
            // No connection-type bit = every connection type.
            action.connection_types = if types == ConnectionTypes::default() {
                ConnectionTypes::ALL
            } else {
                types
            };
            action.interactive = flags & action_flags::INTERACTIVE != 0;
        }
        // Other n&Attribute keys are kept in the file and ignored here.
    }
    out.sort_by_key(|a| a.index);
    Ok(out)
}

fn parse_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 3 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// The flags word written for an action (inverse of what [`actions`] reads).
pub fn action_flags_word(types: ConnectionTypes, interactive: bool) -> u32 {
    let mut flags = 0;
    if types != ConnectionTypes::ALL {
        if types.dial_up {
            flags |= action_flags::DIAL_UP;
        }
        if types.direct {
            flags |= action_flags::DIRECT;
        }
        if types.double_dial {
            flags |= action_flags::DOUBLE_DIAL;
        }
    }
    if interactive {
        flags |= action_flags::INTERACTIVE;
    }
    flags
}

/// `VpnStrategy` values are those of the public RASENTRY `dwVpnStrategy` member
/// (VS_Default 0, VS_PptpOnly 1, VS_PptpFirst 2, VS_L2tpOnly 3, VS_L2tpFirst 4,
/// VS_SstpOnly 5, VS_SstpFirst 6, VS_Ikev2Only 7, VS_Ikev2First 8). "First" strategies
/// fall back to SSTP, then PPTP.
pub fn protocols_from_strategy(strategy: u32) -> Option<Vec<VpnProtocol>> {
    use VpnProtocol::*;
    Some(match strategy {
        0 | 6 => vec![Sstp, Pptp],
        1 => vec![Pptp],
        2 => vec![Pptp, Sstp],
        3 => vec![L2tp],
        4 => vec![L2tp, Sstp, Pptp],
        5 => vec![Sstp],
        7 => vec![Ikev2],
        8 => vec![Ikev2, Sstp, Pptp],
        _ => return None,
    })
}

/// The `VpnStrategy` for a protocol order of SSTP and/or PPTP, or L2TP or IKEv2 alone or first
/// (the order [`protocols_from_strategy`] reads back).
pub fn strategy_for_protocols(protocols: &[VpnProtocol]) -> Option<u32> {
    use VpnProtocol::*;
    match protocols {
        [L2tp] => Some(3),
        [L2tp, Sstp, Pptp] => Some(4),
        [Sstp] => Some(5),
        [Sstp, Pptp] => Some(6),
        [Pptp] => Some(1),
        [Pptp, Sstp] => Some(2),
        [Ikev2] => Some(7),
        [Ikev2, Sstp, Pptp] => Some(8),
        _ => None,
    }
}

/// The networking section of the tunnel entry: `[Networking&<TunnelDUN>]`, else the first
/// `[Networking&...]` section.
pub(crate) fn networking_section(r: &Reader<'_>, tunnel_dun: Option<&str>) -> Option<String> {
    let names: Vec<String> = r
        .doc
        .sections()
        .into_iter()
        .map(|(n, _)| n.to_owned())
        .filter(|n| n.starts_with(sections::NETWORKING_PREFIX))
        .collect();
    if let Some(dun) = tunnel_dun {
        let wanted = format!("{}{dun}", sections::NETWORKING_PREFIX);
        if let Some(n) = names.iter().find(|n| n.eq_ignore_ascii_case(&wanted)) {
            return Some(n.clone());
        }
    }
    names.into_iter().next()
}

pub(crate) fn vpn_protocols(
    r: &Reader<'_>,
    tunnel_dun: Option<&str>,
) -> Result<Vec<VpnProtocol>, ProfileError> {
    let Some(section) = networking_section(r, tunnel_dun) else {
        return Ok(vec![VpnProtocol::Sstp, VpnProtocol::Pptp]);
    };
    let Some(e) = r.doc.get(&section, "VpnStrategy") else {
        return Ok(vec![VpnProtocol::Sstp, VpnProtocol::Pptp]);
    };
    parse_u32(e.value)
        .and_then(protocols_from_strategy)
        .ok_or_else(|| {
            r.invalid(
                &section,
                &e,
                format!("{:?} is not a VpnStrategy (0-8)", e.value),
            )
        })
}

/// The shortest and longest pre-shared key CMAK accepts ("Including a Preshared
/// Key", Microsoft CMAK documentation: any non-null string of 8 to 256 characters).
pub const PRESHARED_KEY_LENGTH: std::ops::RangeInclusive<usize> = 8..=256;

/// Whether `key` can be a profile's pre-shared key: 8 to 256 characters, none of them
/// a control character (an INI value is one line). The error says why not.
pub fn check_preshared_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if !PRESHARED_KEY_LENGTH.contains(&n) {
        return Err(format!(
            "the pre-shared key has {n} characters; it must have {} to {}",
            PRESHARED_KEY_LENGTH.start(),
            PRESHARED_KEY_LENGTH.end()
        ));
    }
    if key.chars().any(char::is_control) {
        return Err("the pre-shared key must not contain control characters".into());
    }
    Ok(())
}

/// `PresharedKey` of the tunnel's networking section (ours): the IPsec pre-shared key
/// for L2TP/IPsec, kept in clear text in the `.cms`.
pub(crate) fn vpn_preshared_key(
    r: &Reader<'_>,
    tunnel_dun: Option<&str>,
) -> Result<Option<Secret>, ProfileError> {
    let Some(section) = networking_section(r, tunnel_dun) else {
        return Ok(None);
    };
    let Some(e) = r.doc.get(&section, "PresharedKey") else {
        return Ok(None);
    };
    check_preshared_key(e.value).map_err(|reason| r.invalid(&section, &e, reason))?;
    Ok(Some(Secret(e.value.to_owned())))
}

/// The VPN server file (our format; CM-FORMATS.md §1 marks its layout as unconfirmed):
/// `[VPN Servers]` name=address in order, `[Settings] Default=<name>` and `UpdateUrl=`.
pub(crate) fn vpn_server_file(
    r: &Reader<'_>,
) -> Result<(Vec<VpnServer>, Option<String>), ProfileError> {
    let mut servers = Vec::new();
    for e in r.doc.entries(sections::VPN_SERVERS) {
        validate_server_address(e.value)
            .map_err(|reason| r.invalid(sections::VPN_SERVERS, &e, reason))?;
        servers.push(VpnServer {
            name: e.key.to_owned(),
            address: e.value.to_owned(),
        });
    }
    if servers.is_empty() {
        return Err(ProfileError::Missing {
            file: r.file.to_path_buf(),
            section: sections::VPN_SERVERS.to_owned(),
            key: "<name>=<address>".to_owned(),
            reason: "a VPN server file lists at least one server".to_owned(),
        });
    }
    if let Some(e) = r.doc.get(sections::SETTINGS, "Default") {
        if !e.value.is_empty() {
            let Some(pos) = servers
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(e.value))
            else {
                return Err(r.invalid(
                    sections::SETTINGS,
                    &e,
                    format!("{:?} is not in [VPN Servers]", e.value),
                ));
            };
            servers[..=pos].rotate_right(1);
        }
    }
    Ok((servers, r.string(sections::SETTINGS, "UpdateUrl")))
}

/// The user's values of a `.cmp`.
pub(crate) fn user_settings(r: &Reader<'_>) -> Result<UserSettings, ProfileError> {
    let kind = match r.doc.get(CM, "ConnectionType") {
        Some(e) if !e.value.is_empty() => Some(match e.value {
            "0" => ConnectionKind::DialUp,
            "1" => ConnectionKind::Direct,
            "2" => ConnectionKind::DoubleDial,
            _ => return Err(r.invalid(CM, &e, "use 0 (dial-up), 1 (direct) or 2 (double-dial)")),
        }),
        _ => None,
    };
    Ok(UserSettings {
        user_name: r.string(CM, "UserName"),
        domain: r.string(CM, "Domain"),
        internet_user_name: r.string(CM, "InternetUserName"),
        remember_password: r.bool(CM, "RememberPassword", false)?,
        dial_automatically: r.bool(CM, "DialAutomatically", false)?,
        password: r.string(CM, "Password").map(Secret),
        phone_number: r.string(CM, "PhoneNumber0"),
        device: r.string(CM, "Device"),
        connection_kind: kind,
    })
}

/// The `.inf`.
pub(crate) fn install_info(r: &Reader<'_>) -> InstallInfo {
    let values = |section: &str| {
        r.doc
            .entries(section)
            .into_iter()
            .map(|e| e.value.to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    InstallInfo {
        service_name: r.string(sections::STRINGS, "ServiceName").map(unquote),
        short_name: r.string(sections::STRINGS, "ShortSvcName").map(unquote),
        desktop_guid: r.string(sections::STRINGS, "DesktopGUID").map(unquote),
        extra_files: values(sections::EXTRA_FILES),
        merged_profiles: values(sections::MERGE_PROFILES),
    }
}

/// `.inf` `[Strings]` values are quoted (`ServiceName="Contoso VPN"`).
fn unquote(s: String) -> String {
    match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.to_owned(),
        None => s,
    }
}

/// Resolves a file named in a profile (Windows separators allowed) inside `dir`; refuses
/// absolute paths and `..` so a profile cannot point outside its directory.
pub fn resolve_in_dir(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    let mut any = false;
    for part in name.split(['\\', '/']) {
        match part {
            "" if !any => return None, // leading separator: absolute
            "" | "." => continue,
            ".." => return None,
            p if p.contains(':') => return None, // drive letter
            p => {
                out.push(p);
                any = true;
            }
        }
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_forms() {
        assert_eq!(
            split_command("cmroute.dll,SetRoutes /STATIC_FILE_NAME add.txt"),
            (
                "cmroute.dll".into(),
                Some("SetRoutes".into()),
                "/STATIC_FILE_NAME add.txt".into()
            )
        );
        assert_eq!(
            split_command("\"C:\\Program Files\\x.exe\" -a %UserName%"),
            (
                "C:\\Program Files\\x.exe".into(),
                None,
                "-a %UserName%".into()
            )
        );
        assert_eq!(
            split_command("run.sh"),
            ("run.sh".into(), None, String::new())
        );
    }

    #[test]
    fn short_name_rules() {
        assert!(validate_short_name("contoso").is_ok());
        assert!(validate_short_name("c-vpn_1").is_ok());
        assert!(validate_short_name("toolongname").is_err());
        assert!(validate_short_name("12345").is_err());
        assert!(validate_short_name("a b").is_err());
        assert!(validate_short_name("a.b").is_err());
        assert!(validate_short_name("").is_err());
    }

    #[test]
    fn strategies_round_trip() {
        for order in [
            vec![VpnProtocol::Sstp],
            vec![VpnProtocol::Sstp, VpnProtocol::Pptp],
            vec![VpnProtocol::Pptp],
            vec![VpnProtocol::Pptp, VpnProtocol::Sstp],
            vec![VpnProtocol::L2tp],
            vec![VpnProtocol::L2tp, VpnProtocol::Sstp, VpnProtocol::Pptp],
            vec![VpnProtocol::Ikev2],
            vec![VpnProtocol::Ikev2, VpnProtocol::Sstp, VpnProtocol::Pptp],
        ] {
            let s = strategy_for_protocols(&order).unwrap();
            assert_eq!(protocols_from_strategy(s).unwrap(), order);
        }
        assert_eq!(protocols_from_strategy(9), None);
    }

    #[test]
    fn resolve_refuses_escapes() {
        let d = Path::new("/p");
        assert_eq!(
            resolve_in_dir(d, "a\\b.txt"),
            Some(PathBuf::from("/p/a/b.txt"))
        );
        assert_eq!(resolve_in_dir(d, "..\\x"), None);
        assert_eq!(resolve_in_dir(d, "/etc/passwd"), None);
        assert_eq!(resolve_in_dir(d, "C:\\x"), None);
        assert_eq!(resolve_in_dir(d, ""), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32("0x0024"), Some(0x24));
        assert_eq!(parse_u32("17"), Some(17));
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32("1.5"), None);
        assert_eq!(parse_u32("0x"), None);
    }
}
