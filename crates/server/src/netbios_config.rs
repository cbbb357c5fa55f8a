//! `[netbios]`: the NetBIOS datagram gateway between remote clients and
//! the LAN (docs/NETBIOS.md). Off unless enabled; the knobs carry the
//! seed's names (ras-datagram-processing-q97559) in snake_case and its
//! defaults, and are checked against the seed's ranges by
//! [`netbios::Knobs::validate`].

use serde::Deserialize;

/// `[netbios]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetbiosConfig {
    /// Run the gateway. Default false.
    pub enabled: bool,
    /// The LAN interfaces whose NetBIOS name service (UDP 137) and
    /// datagram service (UDP 138) the gateway joins. Default `["eth0"]`.
    pub lan_interfaces: Vec<String>,
    /// EnableBroadcast: 1 forwards the LAN's broadcast datagrams to
    /// clients. Default 0.
    pub enable_broadcast: i64,
    /// MulticastForwardRate: -1 forwards no broadcast or group datagram,
    /// 0 every one, 1 to 32767 only while a gate open every that many
    /// seconds. Default 5.
    pub multicast_forward_rate: i64,
    /// DisableMcastFwdWhenSessionTraffic: 1 drops group datagrams for a
    /// client busy with session traffic, -1 broadcasts too, 0 never.
    /// Default 1.
    pub disable_mcast_fwd_when_session_traffic: i64,
    /// MaxDgBufferedPerGroupName: datagrams buffered per group name,
    /// 1 to 255. Default 10.
    pub max_dg_buffered_per_group_name: i64,
    /// RcvDgSubmittedperGroupName: datagrams per group name taken from
    /// one read of the LAN socket, 1 to 32. Default 3.
    pub rcv_dg_submitted_per_group_name: i64,
    /// NetbiosGatewayEnabled: 1 sends clients' datagrams out on every LAN
    /// interface, 0 only to names the server itself holds. Default 1.
    pub netbios_gateway_enabled: i64,
    /// MaxNames per client, 1 to 255. Default 255.
    pub max_names_per_client: i64,
    /// MaxNames in all (names the server holds for clients), 1 to 255.
    /// Default 255.
    pub max_names: i64,
    /// The NetBIOS names this host's own NetBIOS service (Samba's nmbd,
    /// for instance) holds, as `NAME<hh>`: with NetbiosGatewayEnabled 0
    /// a client's datagram to one of them is handed to the host's
    /// datagram service (UDP 138 on the first LAN interface's address),
    /// every other one is dropped. Default none.
    pub server_names: Vec<String>,
}

impl Default for NetbiosConfig {
    fn default() -> Self {
        let k = netbios::Knobs::default();
        NetbiosConfig {
            enabled: false,
            lan_interfaces: vec!["eth0".into()],
            enable_broadcast: k.enable_broadcast,
            multicast_forward_rate: k.multicast_forward_rate,
            disable_mcast_fwd_when_session_traffic: k.disable_mcast_fwd_when_session_traffic,
            max_dg_buffered_per_group_name: k.max_dg_buffered_per_group_name,
            rcv_dg_submitted_per_group_name: k.rcv_dg_submitted_per_group_name,
            netbios_gateway_enabled: k.netbios_gateway_enabled,
            max_names_per_client: k.max_names_per_client,
            max_names: k.max_names,
            server_names: Vec::new(),
        }
    }
}

/// A `[netbios]` value that is wrong: the key (`netbios.…`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetbiosConfigError {
    pub key: String,
    pub message: String,
}

impl NetbiosConfig {
    /// The knobs for the gateway core.
    pub fn knobs(&self) -> netbios::Knobs {
        netbios::Knobs {
            enable_broadcast: self.enable_broadcast,
            multicast_forward_rate: self.multicast_forward_rate,
            disable_mcast_fwd_when_session_traffic: self.disable_mcast_fwd_when_session_traffic,
            max_dg_buffered_per_group_name: self.max_dg_buffered_per_group_name,
            rcv_dg_submitted_per_group_name: self.rcv_dg_submitted_per_group_name,
            netbios_gateway_enabled: self.netbios_gateway_enabled,
            max_names_per_client: self.max_names_per_client,
            max_names: self.max_names,
        }
    }

    /// Checks the knobs (whether or not the gateway is enabled, so a typo
    /// shows before it matters) and, when enabled, the interfaces.
    pub fn validate(&self) -> Result<netbios::GatewayConfig, NetbiosConfigError> {
        let mut config = self.knobs().validate().map_err(|e| NetbiosConfigError {
            key: format!("netbios.{}", key_of(e.knob)),
            message: e.to_string(),
        })?;
        let at = |message: String| NetbiosConfigError {
            key: "netbios.lan_interfaces".into(),
            message,
        };
        if self.enabled && self.lan_interfaces.is_empty() {
            return Err(at(
                "the gateway needs at least one LAN interface (or set enabled = false)".into(),
            ));
        }
        for name in &self.lan_interfaces {
            // Linux interface names: 1 to 15 octets (IFNAMSIZ - 1), no '/'
            // or whitespace.
            if name.is_empty()
                || name.len() > 15
                || name.contains('/')
                || name.chars().any(char::is_whitespace)
            {
                return Err(at(format!("`{name}` is not an interface name")));
            }
        }
        for written in &self.server_names {
            let name = parse_name(written).map_err(|message| NetbiosConfigError {
                key: "netbios.server_names".into(),
                message: format!("`{written}`: {message}"),
            })?;
            config.server_names.push(name);
        }
        Ok(config)
    }
}

/// `NAME<hh>`: up to 15 characters and the suffix octet in hexadecimal,
/// as Windows (`nbtstat -n`) and Samba (`nmblookup`) print names.
fn parse_name(written: &str) -> Result<netbios::NetbiosName, String> {
    let malformed = || "write a name as NAME<hh>, for example RASSERVER<20>".to_string();
    let (name, rest) = written.split_once('<').ok_or_else(malformed)?;
    let hex = rest.strip_suffix('>').ok_or_else(malformed)?;
    if hex.len() != 2 {
        return Err(malformed());
    }
    let suffix = u8::from_str_radix(hex, 16).map_err(|_| malformed())?;
    netbios::NetbiosName::new(name, suffix).map_err(|e| e.to_string())
}

/// The `[netbios]` key of a knob the core names with the seed's name.
fn key_of(knob: &str) -> &'static str {
    match knob {
        "EnableBroadcast" => "enable_broadcast",
        "MulticastForwardRate" => "multicast_forward_rate",
        "DisableMcastFwdWhenSessionTraffic" => "disable_mcast_fwd_when_session_traffic",
        "MaxDgBufferedPerGroupName" => "max_dg_buffered_per_group_name",
        "RcvDgSubmittedperGroupName" => "rcv_dg_submitted_per_group_name",
        "NetbiosGatewayEnabled" => "netbios_gateway_enabled",
        "MaxNames (per client)" => "max_names_per_client",
        _ => "max_names",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_and_off() {
        let c = NetbiosConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.lan_interfaces, ["eth0"]);
        assert_eq!(c.validate().unwrap(), netbios::GatewayConfig::default());
    }

    #[test]
    fn every_knob_error_names_its_key() {
        type Setter = fn(&mut NetbiosConfig);
        let cases: [(Setter, &str); 8] = [
            (|c| c.enable_broadcast = 2, "netbios.enable_broadcast"),
            (
                |c| c.multicast_forward_rate = 40000,
                "netbios.multicast_forward_rate",
            ),
            (
                |c| c.disable_mcast_fwd_when_session_traffic = 2,
                "netbios.disable_mcast_fwd_when_session_traffic",
            ),
            (
                |c| c.max_dg_buffered_per_group_name = 256,
                "netbios.max_dg_buffered_per_group_name",
            ),
            (
                |c| c.rcv_dg_submitted_per_group_name = 0,
                "netbios.rcv_dg_submitted_per_group_name",
            ),
            (
                |c| c.netbios_gateway_enabled = -1,
                "netbios.netbios_gateway_enabled",
            ),
            (
                |c| c.max_names_per_client = 0,
                "netbios.max_names_per_client",
            ),
            (|c| c.max_names = 300, "netbios.max_names"),
        ];
        for (set, key) in cases {
            let mut c = NetbiosConfig::default();
            set(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.message.contains("is out of range"), "{}", e.message);
        }
    }

    #[test]
    fn server_names_are_parsed_and_errors_name_the_key() {
        let c = NetbiosConfig {
            server_names: vec!["rassrv<20>".into(), "WORKGROUP<1C>".into()],
            ..NetbiosConfig::default()
        };
        assert_eq!(
            c.validate().unwrap().server_names,
            vec![
                netbios::NetbiosName::new("RASSRV", 0x20).unwrap(),
                netbios::NetbiosName::new("WORKGROUP", 0x1c).unwrap(),
            ]
        );
        for bad in [
            "RASSRV",
            "RASSRV<2>",
            "RASSRV<zz>",
            "<20>",
            "SIXTEEN-LETTERS!<00>",
        ] {
            let c = NetbiosConfig {
                server_names: vec![bad.into()],
                ..NetbiosConfig::default()
            };
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, "netbios.server_names", "{bad}");
            assert!(e.message.starts_with(&format!("`{bad}`")), "{}", e.message);
        }
    }

    #[test]
    fn interfaces_are_checked() {
        let c = NetbiosConfig {
            enabled: true,
            lan_interfaces: vec![],
            ..NetbiosConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "netbios.lan_interfaces");
        let c = NetbiosConfig {
            lan_interfaces: vec!["a-very-long-interface".into()],
            ..NetbiosConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("is not an interface name"));
        let c = NetbiosConfig {
            enabled: true,
            lan_interfaces: vec!["veth-lan".into(), "eth1".into()],
            ..NetbiosConfig::default()
        };
        assert!(c.validate().is_ok());
    }
}
