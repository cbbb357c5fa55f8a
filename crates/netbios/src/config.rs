//! The gateway's knobs, named and ranged as in ras-datagram-processing-q97559
//! (the RAS NetbiosGateway parameters), and their checked, typed form.
//!
//! [`Knobs`] holds the raw integers a configuration file gives (defaults
//! are the seed's); [`Knobs::validate`] turns them into a
//! [`GatewayConfig`] or names the knob, the value and the allowed range.

use std::time::Duration;

use thiserror::Error;

use crate::name::NetbiosName;

/// A knob outside its range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{knob} = {value} is out of range: allowed {allowed}")]
pub struct ConfigError {
    /// The seed's name of the knob.
    pub knob: &'static str,
    /// The value given.
    pub value: i64,
    /// The allowed values, as text.
    pub allowed: &'static str,
}

/// The raw knobs, one field per parameter of the seed, defaults the seed's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// EnableBroadcast: 0 drops broadcast datagrams (default), 1 forwards.
    pub enable_broadcast: i64,
    /// MulticastForwardRate: -1 never, 0 always, 1..=32767 a gate that
    /// opens every that many seconds (default 5).
    pub multicast_forward_rate: i64,
    /// DisableMcastFwdWhenSessionTraffic: 1 (default) drops group
    /// datagrams for a client busy with session traffic, -1 broadcasts
    /// too, 0 never drops.
    pub disable_mcast_fwd_when_session_traffic: i64,
    /// MaxDgBufferedPerGroupName: 1..=255 (default 10).
    pub max_dg_buffered_per_group_name: i64,
    /// RcvDgSubmittedperGroupName: datagrams received per name at once,
    /// 1..=32 (default 3).
    pub rcv_dg_submitted_per_group_name: i64,
    /// NetbiosGatewayEnabled: 1 (default) forwards clients' datagrams to
    /// the LAN, 0 only to names the server itself holds.
    pub netbios_gateway_enabled: i64,
    /// MaxNames per client: 1..=255 (default 255).
    pub max_names_per_client: i64,
    /// MaxNames in all (distinct names the server holds for clients):
    /// 1..=255 (default 255, the seed's maximum).
    pub max_names: i64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            enable_broadcast: 0,
            multicast_forward_rate: 5,
            disable_mcast_fwd_when_session_traffic: 1,
            max_dg_buffered_per_group_name: 10,
            rcv_dg_submitted_per_group_name: 3,
            netbios_gateway_enabled: 1,
            max_names_per_client: 255,
            max_names: 255,
        }
    }
}

fn ranged(
    knob: &'static str,
    value: i64,
    lo: i64,
    hi: i64,
    allowed: &'static str,
) -> Result<i64, ConfigError> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            knob,
            value,
            allowed,
        })
    }
}

impl Knobs {
    /// Checks every knob against the seed's range.
    pub fn validate(&self) -> Result<GatewayConfig, ConfigError> {
        let enable_broadcast =
            ranged("EnableBroadcast", self.enable_broadcast, 0, 1, "0 or 1")? == 1;
        let multicast_forward_rate = match ranged(
            "MulticastForwardRate",
            self.multicast_forward_rate,
            -1,
            32767,
            "-1, 0 or 1 to 32767 seconds",
        )? {
            -1 => MulticastForwardRate::Never,
            0 => MulticastForwardRate::Always,
            // In 1..=32767 here.
            secs => MulticastForwardRate::Gate(secs as u16),
        };
        let session_traffic = match ranged(
            "DisableMcastFwdWhenSessionTraffic",
            self.disable_mcast_fwd_when_session_traffic,
            -1,
            1,
            "-1, 0 or 1",
        )? {
            0 => SessionTrafficRule::AlwaysForward,
            1 => SessionTrafficRule::DropGroup,
            _ => SessionTrafficRule::DropGroupAndBroadcast,
        };
        let max_buffered = ranged(
            "MaxDgBufferedPerGroupName",
            self.max_dg_buffered_per_group_name,
            1,
            255,
            "1 to 255",
        )? as usize;
        let receives = ranged(
            "RcvDgSubmittedperGroupName",
            self.rcv_dg_submitted_per_group_name,
            1,
            32,
            "1 to 32",
        )? as usize;
        let gateway_enabled = ranged(
            "NetbiosGatewayEnabled",
            self.netbios_gateway_enabled,
            0,
            1,
            "0 or 1",
        )? == 1;
        let per_client = ranged(
            "MaxNames (per client)",
            self.max_names_per_client,
            1,
            255,
            "1 to 255",
        )? as usize;
        let total = ranged("MaxNames", self.max_names, 1, 255, "1 to 255")? as usize;
        Ok(GatewayConfig {
            enable_broadcast,
            multicast_forward_rate,
            session_traffic,
            max_dg_buffered_per_group_name: max_buffered,
            rcv_dg_submitted_per_group_name: receives,
            netbios_gateway_enabled: gateway_enabled,
            max_names_per_client: per_client,
            max_names: total,
            ..GatewayConfig::default()
        })
    }
}

/// MulticastForwardRate, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MulticastForwardRate {
    /// -1: no broadcast or group datagram is forwarded.
    Never,
    /// 0: every one is forwarded.
    Always,
    /// 1..=32767: the gate opens every that many seconds.
    Gate(u16),
}

/// DisableMcastFwdWhenSessionTraffic, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTrafficRule {
    /// 0: datagrams are forwarded even to a busy client.
    AlwaysForward,
    /// 1: group datagrams are dropped for a busy client.
    DropGroup,
    /// -1: group and broadcast datagrams are dropped for a busy client,
    /// even with EnableBroadcast.
    DropGroupAndBroadcast,
}

/// The checked configuration of a [`crate::Gateway`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// EnableBroadcast.
    pub enable_broadcast: bool,
    /// MulticastForwardRate.
    pub multicast_forward_rate: MulticastForwardRate,
    /// DisableMcastFwdWhenSessionTraffic.
    pub session_traffic: SessionTrafficRule,
    /// MaxDgBufferedPerGroupName.
    pub max_dg_buffered_per_group_name: usize,
    /// RcvDgSubmittedperGroupName.
    pub rcv_dg_submitted_per_group_name: usize,
    /// NetbiosGatewayEnabled.
    pub netbios_gateway_enabled: bool,
    /// MaxNames per client.
    pub max_names_per_client: usize,
    /// MaxNames in all.
    pub max_names: usize,
    /// How long the MulticastForwardRate gate stays open once it opens.
    /// The seed says only that the gate "opens after the designated number
    /// of seconds" and forwards "all datagrams arriving"; we keep it open
    /// for this long (clamped to the gate period), enough for a burst.
    pub gate_open_for: Duration,
    /// Datagrams to a client's unique name are always buffered (seed:
    /// "there is no parameter to control this buffer"); this bound only
    /// keeps a flood from using unbounded memory.
    pub max_unique_buffered_per_client: usize,
    /// The names the server itself holds (its computer and workgroup
    /// names): with NetbiosGatewayEnabled 0, a client's datagram reaches
    /// the server only when addressed to one of these.
    pub server_names: Vec<NetbiosName>,
    /// TTL in seconds of the positive query responses for clients' names.
    pub answer_ttl: u32,
    /// TTL in seconds of the WACK sent to a client whose unicast
    /// registration waits for the LAN's answer (RFC 1002 §4.2.16).
    pub wack_ttl: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            enable_broadcast: false,
            multicast_forward_rate: MulticastForwardRate::Gate(5),
            session_traffic: SessionTrafficRule::DropGroup,
            max_dg_buffered_per_group_name: 10,
            rcv_dg_submitted_per_group_name: 3,
            netbios_gateway_enabled: true,
            max_names_per_client: 255,
            max_names: 255,
            gate_open_for: Duration::from_secs(1),
            max_unique_buffered_per_client: 255,
            server_names: Vec::new(),
            answer_ttl: 300,
            wack_ttl: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults() {
        assert_eq!(
            Knobs::default().validate().unwrap(),
            GatewayConfig::default()
        );
    }

    #[test]
    fn every_knob_range_is_checked() {
        type Setter = fn(&mut Knobs, i64);
        let cases: [(Setter, &str, i64, i64); 8] = [
            (|k, v| k.enable_broadcast = v, "EnableBroadcast", 0, 1),
            (
                |k, v| k.multicast_forward_rate = v,
                "MulticastForwardRate",
                -1,
                32767,
            ),
            (
                |k, v| k.disable_mcast_fwd_when_session_traffic = v,
                "DisableMcastFwdWhenSessionTraffic",
                -1,
                1,
            ),
            (
                |k, v| k.max_dg_buffered_per_group_name = v,
                "MaxDgBufferedPerGroupName",
                1,
                255,
            ),
            (
                |k, v| k.rcv_dg_submitted_per_group_name = v,
                "RcvDgSubmittedperGroupName",
                1,
                32,
            ),
            (
                |k, v| k.netbios_gateway_enabled = v,
                "NetbiosGatewayEnabled",
                0,
                1,
            ),
            (
                |k, v| k.max_names_per_client = v,
                "MaxNames (per client)",
                1,
                255,
            ),
            (|k, v| k.max_names = v, "MaxNames", 1, 255),
        ];
        for (set, name, lo, hi) in cases {
            for ok in [lo, hi] {
                let mut k = Knobs::default();
                set(&mut k, ok);
                assert!(k.validate().is_ok(), "{name} = {ok}");
            }
            for bad in [lo - 1, hi + 1] {
                let mut k = Knobs::default();
                set(&mut k, bad);
                let e = k.validate().unwrap_err();
                assert_eq!(e.knob, name);
                assert_eq!(e.value, bad);
                assert!(e
                    .to_string()
                    .starts_with(&format!("{name} = {bad} is out of range")));
            }
        }
    }

    #[test]
    fn typed_values() {
        let k = Knobs {
            multicast_forward_rate: -1,
            disable_mcast_fwd_when_session_traffic: -1,
            ..Knobs::default()
        };
        let c = k.validate().unwrap();
        assert_eq!(c.multicast_forward_rate, MulticastForwardRate::Never);
        assert_eq!(c.session_traffic, SessionTrafficRule::DropGroupAndBroadcast);
        let k = Knobs {
            multicast_forward_rate: 0,
            disable_mcast_fwd_when_session_traffic: 0,
            ..Knobs::default()
        };
        let c = k.validate().unwrap();
        assert_eq!(c.multicast_forward_rate, MulticastForwardRate::Always);
        assert_eq!(c.session_traffic, SessionTrafficRule::AlwaysForward);
    }
}
