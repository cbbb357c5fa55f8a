//! The typed model of a service profile: what the dialer acts on.
//!
//! Built from the `.cms` (service settings), the `.cmp` (the user's first-run values),
//! the `.inf` (install information) and the VPN server file named by `TunnelFile`.
//! Keys we do not model stay in the files and survive every rewrite; see
//! `docs/CONNECTION-MANAGER.md` for each key, its accepted values and its source.

use std::fmt;
use std::path::PathBuf;

/// Section names exactly as CMAK writes them.
pub mod sections {
    /// Service settings in the `.cms`, user values in the `.cmp`.
    pub const CONNECTION_MANAGER: &str = "Connection Manager";
    /// Phone book and POP filters.
    pub const ISP: &str = "ISP";
    /// Display name → filter name.
    pub const SERVICE_TYPES: &str = "Service Types";
    /// Install strings of the `.inf`.
    pub const STRINGS: &str = "Strings";
    /// Extra files listed in the `.inf`.
    pub const EXTRA_FILES: &str = "Extra Files";
    /// Merged profiles listed in the `.inf`.
    pub const MERGE_PROFILES: &str = "Merge Profiles";
    /// The VPN server file's server list (our format, see the docs).
    pub const VPN_SERVERS: &str = "VPN Servers";
    /// The VPN server file's settings.
    pub const SETTINGS: &str = "Settings";
    /// Prefix of the per-entry networking section, `[Networking&<TunnelDUN>]`.
    pub const NETWORKING_PREFIX: &str = "Networking&";
}

/// The nine custom-action points, in the order the seed lists them (and in which a
/// connection meets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionPoint {
    /// When the dialer starts, before the logon prompt.
    PreInit,
    /// After the user clicks Connect, before anything is dialled.
    PreConnect,
    /// Before dialling (dial-up and double-dial only).
    PreDial,
    /// After the ISP link is up, before the tunnel (VPN connections only).
    PreTunnel,
    /// Post-connect: after the connection (and tunnel) is established.
    PostConnect,
    /// Monitored programs (`[Auto Applications]`): when the last exits, disconnect.
    Monitored,
    /// Before the connection is closed, also after an unexpected drop.
    Disconnect,
    /// When the user cancels a connection attempt.
    OnCancel,
    /// When a connection attempt fails.
    OnError,
}

impl ActionPoint {
    /// All points in the seed's order.
    pub const ALL: [ActionPoint; 9] = [
        ActionPoint::PreInit,
        ActionPoint::PreConnect,
        ActionPoint::PreDial,
        ActionPoint::PreTunnel,
        ActionPoint::PostConnect,
        ActionPoint::Monitored,
        ActionPoint::Disconnect,
        ActionPoint::OnCancel,
        ActionPoint::OnError,
    ];

    /// The `.cms` section that holds this point's actions.
    pub fn section(self) -> &'static str {
        match self {
            ActionPoint::PreInit => "Pre-Init Actions",
            ActionPoint::PreConnect => "Pre-Connect Actions",
            ActionPoint::PreDial => "Pre-Dial Actions",
            ActionPoint::PreTunnel => "Pre-Tunnel Actions",
            ActionPoint::PostConnect => "Connect Actions",
            ActionPoint::Monitored => "Auto Applications",
            ActionPoint::Disconnect => "Disconnect Actions",
            ActionPoint::OnCancel => "On-Cancel Actions",
            ActionPoint::OnError => "On-Error Actions",
        }
    }

    /// The short name used on the command line and in answer files
    /// (`pre-init`, `pre-connect`, `pre-dial`, `pre-tunnel`, `post-connect`, `monitored`,
    /// `disconnect`, `on-cancel`, `on-error`).
    pub fn name(self) -> &'static str {
        match self {
            ActionPoint::PreInit => "pre-init",
            ActionPoint::PreConnect => "pre-connect",
            ActionPoint::PreDial => "pre-dial",
            ActionPoint::PreTunnel => "pre-tunnel",
            ActionPoint::PostConnect => "post-connect",
            ActionPoint::Monitored => "monitored",
            ActionPoint::Disconnect => "disconnect",
            ActionPoint::OnCancel => "on-cancel",
            ActionPoint::OnError => "on-error",
        }
    }

    /// The point with that short name.
    pub fn from_name(name: &str) -> Option<ActionPoint> {
        ActionPoint::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for ActionPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a connection is made; the numbers are those of the `%ConnectionType%` macro
/// (seed: "0 = dial-up 1 = direct 2 = double-dial").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    /// PPP over a modem (a serial device).
    DialUp = 0,
    /// Over the network already there; a VPN tunnel when the profile has one.
    Direct = 1,
    /// Dial the ISP first, then the VPN tunnel through it.
    DoubleDial = 2,
}

impl ConnectionKind {
    /// The value `%ConnectionType%` expands to.
    pub fn macro_value(self) -> u8 {
        self as u8
    }

    /// Short name: `dial-up`, `direct`, `double-dial`.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionKind::DialUp => "dial-up",
            ConnectionKind::Direct => "direct",
            ConnectionKind::DoubleDial => "double-dial",
        }
    }

    /// The kind with that short name.
    pub fn from_name(name: &str) -> Option<ConnectionKind> {
        [
            ConnectionKind::DialUp,
            ConnectionKind::Direct,
            ConnectionKind::DoubleDial,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// The connection kinds a custom action runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionTypes {
    /// Runs on dial-up connections.
    pub dial_up: bool,
    /// Runs on direct connections.
    pub direct: bool,
    /// Runs on double-dial connections.
    pub double_dial: bool,
}

impl ConnectionTypes {
    /// Every kind.
    pub const ALL: ConnectionTypes = ConnectionTypes {
        dial_up: true,
        direct: true,
        double_dial: true,
    };

    /// Whether an action with these types runs on a `kind` connection.
    pub fn includes(self, kind: ConnectionKind) -> bool {
        match kind {
            ConnectionKind::DialUp => self.dial_up,
            ConnectionKind::Direct => self.direct,
            ConnectionKind::DoubleDial => self.double_dial,
        }
    }
}

/// Bits of the `<n>&Flags` key of a custom action. Our definition: the public record
/// does not give CMAK's flags word (CM-FORMATS.md §5).
pub mod action_flags {
    /// Runs on dial-up connections.
    pub const DIAL_UP: u32 = 0x0001;
    /// Runs on direct connections.
    pub const DIRECT: u32 = 0x0002;
    /// Runs on double-dial connections.
    pub const DOUBLE_DIAL: u32 = 0x0004;
    /// "Program interacts with the user": may show a user interface.
    pub const INTERACTIVE: u32 = 0x0100;
    /// Every bit we define; any other bit is an error.
    pub const KNOWN: u32 = DIAL_UP | DIRECT | DOUBLE_DIAL | INTERACTIVE;
}

/// One custom action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomAction {
    /// Where in the connection it runs.
    pub point: ActionPoint,
    /// Its number `n` in the section (actions of one point run in increasing `n`).
    pub index: u32,
    /// The program, as written: relative to the profile directory unless absolute;
    /// may contain `%Macro%`s and environment variables.
    pub program: String,
    /// For `x.dll,Function`, the entry point `Function`.
    pub entry_point: Option<String>,
    /// The parameters, unexpanded (macros such as `%ServiceName%` are expanded by the dialer).
    pub parameters: String,
    /// Shown as "Running custom action <description>".
    pub description: String,
    /// The connection kinds it runs for.
    pub connection_types: ConnectionTypes,
    /// "Program interacts with the user".
    pub interactive: bool,
    /// 1-based line of the `n=` entry in the `.cms`.
    pub line: usize,
}

/// A realm: text added before and after the user name when connecting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Realm {
    /// `UserNamePrefix`, e.g. `CONTOSO\`.
    pub prefix: String,
    /// `UserNameSuffix`, e.g. `@contoso.example`.
    pub suffix: String,
}

impl Realm {
    /// The name sent to the server: prefix + user name + suffix.
    pub fn apply(&self, user_name: &str) -> String {
        format!("{}{}{}", self.prefix, user_name, self.suffix)
    }
}

/// The `Hide*` keys of `[Connection Manager]`: parts of the logon screen not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HideOptions {
    /// `HideDomain`.
    pub domain: bool,
    /// `HideUserName`.
    pub user_name: bool,
    /// `HidePassword`.
    pub password: bool,
    /// `HideRememberPassword`.
    pub remember_password: bool,
    /// `HideDialAutomatically`.
    pub dial_automatically: bool,
    /// `HideAdvancedTab`.
    pub advanced_tab: bool,
    /// `HideInternetUserName`.
    pub internet_user_name: bool,
    /// `HideInternetPassword`.
    pub internet_password: bool,
}

/// `[Connection Manager]` of the `.cms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionManagerSettings {
    /// `ServiceName`: the long name users see (required).
    pub service_name: String,
    /// `ServiceMessage`: shown on the logon screen.
    pub service_message: Option<String>,
    /// `ConnectionType`: the kind selected by default (0 dial-up, 1 direct, 2 double-dial).
    pub default_connection: ConnectionKind,
    /// `Dialup=1`: dial-up is offered.
    pub dialup: bool,
    /// `Direct=1`: direct is offered.
    pub direct: bool,
    /// `Tunnel=1`: a VPN tunnel is made (directly or after dialling).
    pub tunnel: bool,
    /// `TunnelAddress`: the VPN server when there is no `TunnelFile`.
    pub tunnel_address: Option<String>,
    /// `TunnelFile`: the VPN server list file, relative to the profile directory.
    pub tunnel_file: Option<String>,
    /// `TunnelDUN`: the name of the tunnel's networking entry (`[Networking&<name>]`).
    pub tunnel_dun: Option<String>,
    /// `DUN`: the name of the dial-up entry.
    pub dun: Option<String>,
    /// `UserNamePrefix` / `UserNameSuffix`.
    pub realm: Realm,
    /// `UseSameUserName=1`: the ISP logon reuses the VPN credentials.
    pub use_same_user_name: bool,
    /// `RedialCount`: automatic redials after a failed attempt (0–99).
    pub redial_count: u32,
    /// `RedialDelay`: seconds between redials (0–3600).
    pub redial_delay_secs: u32,
    /// `IdleTimeout`: minutes without traffic before disconnecting, 0 = never (0–1440).
    pub idle_timeout_minutes: u32,
    /// `Hide*` keys.
    pub hide: HideOptions,
    /// `HelpFile`, relative to the profile directory.
    pub help_file: Option<String>,
    /// `Icon`.
    pub icon: Option<String>,
    /// `Version`: the phone book version last installed (0 forces a full update).
    pub phonebook_version: u32,
}

/// One POP filter of `[ISP]`: a POP matches when `(flags & mask) == value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTypeFilter {
    /// The name after `Mask&` / `Match&`.
    pub name: String,
    /// `Mask&<name>`.
    pub mask: u32,
    /// `Match&<name>`.
    pub value: u32,
}

impl ServiceTypeFilter {
    /// Whether a POP with these MS-CPSP §2.1 flag bits passes the filter.
    pub fn matches(&self, pop_flags: u32) -> bool {
        pop_flags & self.mask == self.value
    }
}

/// A phone book carried by the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneBookRef {
    /// `PBFile`: the `.pbk`, relative to the profile directory.
    pub pbk: String,
    /// `RegionFile`: the `.pbr`.
    pub pbr: Option<String>,
    /// `PBURL`: the Phone Book Service URL for updates.
    pub url: Option<String>,
    /// `None` for the profile's own phone book; the merged profile's short name otherwise
    /// (kept in `[ISP&<short>]`, our convention).
    pub merged_from: Option<String>,
}

/// `[ISP]` of the `.cms` (and the `[ISP&<short>]` sections of merged profiles).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IspSettings {
    /// Phone books: the profile's own first, then the merged ones.
    pub phone_books: Vec<PhoneBookRef>,
    /// `Mask&X` / `Match&X` pairs, in the file's order.
    pub filters: Vec<ServiceTypeFilter>,
}

/// One line of `[Service Types]`: display name = filter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceType {
    /// What the user sees.
    pub display_name: String,
    /// The `[ISP]` filter it selects.
    pub filter: String,
}

/// Tunnel protocols, in `[Networking&<TunnelDUN>] VpnStrategy` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VpnProtocol {
    /// MS-SSTP.
    Sstp,
    /// RFC 2637.
    Pptp,
    /// L2TP/IPsec with a pre-shared key (RFC 3193).
    L2tp,
    /// IKEv2 with EAP-MSCHAPv2 after the server's certificate (RFC 7296 §2.16), as
    /// Windows' "IKEv2" VPN type connects.
    Ikev2,
}

impl VpnProtocol {
    /// `sstp`, `pptp`, `l2tp`, `ikev2`.
    pub fn name(self) -> &'static str {
        match self {
            VpnProtocol::Sstp => "sstp",
            VpnProtocol::Pptp => "pptp",
            VpnProtocol::L2tp => "l2tp",
            VpnProtocol::Ikev2 => "ikev2",
        }
    }

    /// The protocol with that name.
    pub fn from_name(name: &str) -> Option<VpnProtocol> {
        [
            VpnProtocol::Sstp,
            VpnProtocol::Pptp,
            VpnProtocol::L2tp,
            VpnProtocol::Ikev2,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// One VPN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnServer {
    /// The name shown to the user.
    pub name: String,
    /// Host name or address, optionally `:port`.
    pub address: String,
}

/// Where and how to tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VpnSettings {
    /// Protocols to try, in order (from `VpnStrategy`; `[sstp, pptp]` when absent).
    pub protocols: Vec<VpnProtocol>,
    /// Servers, the default first: from the `TunnelFile`, else the one `TunnelAddress`.
    pub servers: Vec<VpnServer>,
    /// `[Settings] UpdateUrl` of the server file, if any.
    pub update_url: Option<String>,
    /// The IPsec pre-shared key for L2TP/IPsec: `PresharedKey` of the tunnel's
    /// `[Networking&<TunnelDUN>]` section (ours: docs/CONNECTION-MANAGER.md).
    pub preshared_key: Option<Secret>,
}

/// A secret kept as written; never printed.
#[derive(
    Clone, PartialEq, Eq, Default, zeroize::Zeroize, zeroize::ZeroizeOnDrop, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The user's values from the `.cmp` `[Connection Manager]`: pre-filled by the
/// administrator for the first run, then overwritten by the user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSettings {
    /// `UserName`, without realm.
    pub user_name: Option<String>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `InternetUserName` (the ISP logon of a double-dial connection).
    pub internet_user_name: Option<String>,
    /// `RememberPassword=1`.
    pub remember_password: bool,
    /// `DialAutomatically=1`: connect without showing the logon screen.
    pub dial_automatically: bool,
    /// `Password`, stored only when the user asked to remember it.
    pub password: Option<Secret>,
    /// `PhoneNumber0`: the number to dial.
    pub phone_number: Option<String>,
    /// `Device`: the serial device for dial-up (ours).
    pub device: Option<String>,
    /// `ConnectionType`: the kind the user chose last (overrides the `.cms` default).
    pub connection_kind: Option<ConnectionKind>,
}

/// What the `.inf` says about installation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallInfo {
    /// `[Strings] ServiceName`.
    pub service_name: Option<String>,
    /// `[Strings] ShortSvcName`.
    pub short_name: Option<String>,
    /// `[Strings] DesktopGUID`.
    pub desktop_guid: Option<String>,
    /// `[Extra Files]` values, in order.
    pub extra_files: Vec<String>,
    /// `[Merge Profiles]` values (short names), in order.
    pub merged_profiles: Vec<String>,
}

/// The files a profile was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFiles {
    /// The directory that holds the `.cms` (custom-action programs are relative to it;
    /// `%ServiceDir%`).
    pub dir: PathBuf,
    /// The `.cms`.
    pub cms: PathBuf,
    /// The `.cmp` (`%Profile%`), if present.
    pub cmp: Option<PathBuf>,
    /// The `.inf`, if present.
    pub inf: Option<PathBuf>,
    /// The VPN server file, if `TunnelFile` names one.
    pub tunnel_file: Option<PathBuf>,
}

/// A whole service profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProfile {
    /// The eight-character short name (the `.cms` file stem).
    pub short_name: String,
    /// Where it was read from.
    pub files: ProfileFiles,
    /// `[Connection Manager]`.
    pub connection_manager: ConnectionManagerSettings,
    /// `[ISP]`.
    pub isp: IspSettings,
    /// `[Service Types]`.
    pub service_types: Vec<ServiceType>,
    /// Every custom action, by point in the seed's order, then by number.
    pub actions: Vec<CustomAction>,
    /// Tunnel protocols and servers.
    pub vpn: VpnSettings,
    /// The user's values from the `.cmp`.
    pub user: UserSettings,
    /// The `.inf`, if present.
    pub install: Option<InstallInfo>,
}

impl ServiceProfile {
    /// The actions of one point, in the order they run.
    pub fn actions_at(&self, point: ActionPoint) -> impl Iterator<Item = &CustomAction> {
        self.actions.iter().filter(move |a| a.point == point)
    }

    /// The actions of one point that apply to a `kind` connection, in the order they run.
    pub fn actions_for(
        &self,
        point: ActionPoint,
        kind: ConnectionKind,
    ) -> impl Iterator<Item = &CustomAction> {
        self.actions_at(point)
            .filter(move |a| a.connection_types.includes(kind))
    }

    /// The connection kinds this profile offers, the default first.
    pub fn connection_kinds(&self) -> Vec<ConnectionKind> {
        let cm = &self.connection_manager;
        let mut kinds = Vec::new();
        if cm.direct {
            kinds.push(ConnectionKind::Direct);
        }
        if cm.dialup {
            kinds.push(if cm.tunnel {
                ConnectionKind::DoubleDial
            } else {
                ConnectionKind::DialUp
            });
        }
        if let Some(pos) = kinds.iter().position(|k| *k == cm.default_connection) {
            kinds[..=pos].rotate_right(1);
        }
        kinds
    }

    /// The user name sent to the server: the realm applied to `user_name`.
    pub fn full_user_name(&self, user_name: &str) -> String {
        self.connection_manager.realm.apply(user_name)
    }
}
