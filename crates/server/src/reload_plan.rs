//! What a reload would change: the running configuration compared with
//! the file read again, as a [`ReloadPlan`] or a refusal naming the key
//! that cannot change without a restart. Pure (no files, sockets or
//! clock): `reload.rs` loads the files, builds the parts and swaps them.
//!
//! What a reload takes (docs/ADMIN.md, "Reload"):
//! - `[certificate]` (compared by the certificate itself, in `reload.rs`:
//!   the same paths may hold a renewed one), its CRLs (`crl_files`,
//!   `crl_policy`, compared by their contents); `[certificate.acme]` needs
//!   a restart;
//! - `[policies]` and `[[policy]]`;
//! - `addresses.dns` and `addresses.wins`;
//! - `radius.servers` (and `timeout_secs`, `tries`, `dead_time_secs`)
//!   while RADIUS stays on: new requests go to the new servers;
//! - `addresses.ipv4_pool`: ranges added after the existing ones. A
//!   range removed or changed is refused (sessions may hold its
//!   addresses, and the pool numbers addresses in configured order).
//!
//! Everything else needs a restart, and the reload is refused naming the
//! key: a key silently ignored would leave the operator believing a
//! setting is in force that is not.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::config::{
    error_at_key, AddressConfig, AddressSourceKind, Config, ConfigError, Ipv4Range,
};

/// What a reload changes, besides the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// The policies changed: their names in evaluation order.
    pub policies: Option<Vec<String>>,
    /// The DNS servers changed: the new list.
    pub dns: Option<Vec<Ipv4Addr>>,
    /// The WINS servers changed: the new list.
    pub wins: Option<Vec<Ipv4Addr>>,
    /// Pool ranges added after the existing ones.
    pub pool_added: Vec<Ipv4Range>,
    /// The RADIUS servers or their timers changed: the new servers'
    /// authentication addresses.
    pub radius: Option<Vec<SocketAddr>>,
}

impl ReloadPlan {
    /// One phrase per change, for the log line and the API's `changed`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(names) = &self.policies {
            out.push(match names.as_slice() {
                [] => "policies: none (the built-in grant-all)".to_owned(),
                names => format!("policies: {} ({})", names.len(), names.join(", ")),
            });
        }
        for r in &self.pool_added {
            out.push(format!("pool +{r}"));
        }
        if let Some(dns) = &self.dns {
            out.push(format!("DNS {}", addresses(dns)));
        }
        if let Some(wins) = &self.wins {
            out.push(format!("WINS {}", addresses(wins)));
        }
        if let Some(servers) = &self.radius {
            let shown: Vec<String> = servers.iter().map(ToString::to_string).collect();
            out.push(format!("RADIUS servers {}", shown.join(", ")));
        }
        out
    }
}

fn addresses(list: &[Ipv4Addr]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares `old` (running, loaded from `old_text`) with `new` (loaded
/// from `new_text` at `path`, already checked as `ras server --check`
/// checks it). A refusal is a [`ConfigError::Invalid`] at the key's line
/// in the new file.
pub fn plan(
    old: &Config,
    new: &Config,
    old_text: &str,
    new_text: &str,
    path: &Path,
) -> Result<ReloadPlan, ConfigError> {
    let restart = |section: &str| {
        let key = changed_key(old_text, new_text, section);
        error_at_key(
            new_text,
            path,
            &key,
            format!("{key} changed: needs a restart"),
        )
    };
    // Every top-level key is named here, so that a new one does not
    // compile until it is sorted into "reloadable" or "needs a restart".
    let Config {
        state_dir,
        server_name,
        sstp,
        pptp,
        l2tp,
        ipsec,
        ikev2,
        certificate:
            crate::config::CertificateConfig {
                chain: _,
                key: _,
                acme,
                // Reloadable: read again and swapped in reload.rs (the
                // same paths may hold a newer CRL).
                crl_files: _,
                crl_policy: _,
                // Reloadable: they travel with the CRLs (crl.rs) and
                // reach the next login.
                ocsp: _,
                ocsp_responder: _,
                fetch_crls: _,
            },
        addresses,
        auth,
        encryption,
        ppp,
        tun,
        radius,
        policies,
        policy,
        dialin,
        dhcp_relay,
        netbios,
        admin,
        user,
    } = new;
    let same = [
        ("state_dir", *state_dir == old.state_dir),
        ("server_name", *server_name == old.server_name),
        ("sstp", *sstp == old.sstp),
        ("pptp", *pptp == old.pptp),
        ("l2tp", *l2tp == old.l2tp),
        ("ipsec", *ipsec == old.ipsec),
        ("ikev2", *ikev2 == old.ikev2),
        ("auth", *auth == old.auth),
        ("encryption", *encryption == old.encryption),
        ("ppp", *ppp == old.ppp),
        ("tun", *tun == old.tun),
        ("dialin", *dialin == old.dialin),
        ("dhcp_relay", *dhcp_relay == old.dhcp_relay),
        ("netbios", *netbios == old.netbios),
        ("admin", *admin == old.admin),
        // The server gave up the privileges it would need to become
        // another user.
        ("user", *user == old.user),
        // The ACME task is set up at start (acme.rs); the chain and key
        // are compared by the certificate itself, in reload.rs.
        ("certificate.acme", *acme == old.certificate.acme),
    ];
    if let Some((section, _)) = same.iter().find(|(_, same)| !same) {
        return Err(restart(section));
    }

    let mut plan = ReloadPlan {
        radius: radius_plan(&old.radius, radius).map_err(&restart)?,
        ..ReloadPlan::default()
    };
    if *policies != old.policies || *policy != old.policy {
        plan.policies = Some(policy.iter().map(|p| p.name.clone()).collect());
    }

    let AddressConfig {
        ipv4_pool,
        ipv6_prefix,
        dns,
        wins,
        source,
        dhcp_interface,
        dhcp_block,
        dhcp_timeout_secs,
        dhcp_retry_secs,
    } = addresses;
    let was = &old.addresses;
    let same = [
        ("addresses.ipv6_prefix", *ipv6_prefix == was.ipv6_prefix),
        ("addresses.source", *source == was.source),
        (
            "addresses.dhcp_interface",
            *dhcp_interface == was.dhcp_interface,
        ),
        ("addresses.dhcp_block", *dhcp_block == was.dhcp_block),
        (
            "addresses.dhcp_timeout_secs",
            *dhcp_timeout_secs == was.dhcp_timeout_secs,
        ),
        (
            "addresses.dhcp_retry_secs",
            *dhcp_retry_secs == was.dhcp_retry_secs,
        ),
    ];
    if let Some((key, _)) = same.iter().find(|(_, same)| !same) {
        return Err(restart(key));
    }
    if *dns != was.dns {
        plan.dns = Some(dns.clone());
    }
    if *wins != was.wins {
        plan.wins = Some(wins.clone());
    }
    if *ipv4_pool != was.ipv4_pool {
        if *source == AddressSourceKind::Dhcp {
            // The static pool hands out nothing with DHCP; its routes are
            // not installed either.
            return Err(restart("addresses.ipv4_pool"));
        }
        let (old_ranges, new_ranges) = (was.ipv4_pool.ranges(), ipv4_pool.ranges());
        let kept =
            new_ranges.len() >= old_ranges.len() && new_ranges[..old_ranges.len()] == *old_ranges;
        if !kept {
            let gone: Vec<String> = old_ranges
                .iter()
                .filter(|r| !new_ranges.contains(r))
                .map(ToString::to_string)
                .collect();
            let what = if gone.is_empty() {
                "the ranges were reordered".to_owned()
            } else {
                format!("{} removed or changed", gone.join(", "))
            };
            return Err(error_at_key(
                new_text,
                path,
                "addresses.ipv4_pool",
                format!(
                    "{what}: a reload only adds ranges after the existing ones \
                     (sessions may hold their addresses); this needs a restart"
                ),
            ));
        }
        plan.pool_added = new_ranges[old_ranges.len()..].to_vec();
    }
    Ok(plan)
}

/// The new servers' authentication addresses if the servers or their
/// timers changed, or the key that needs a restart: turning RADIUS on or
/// off changes who authenticates (and the PPP settings: EAP pass-through),
/// and accounting, NAS identity and the dynamic authorization listener
/// are set up once.
fn radius_plan(
    old: &crate::radius_config::RadiusConfig,
    new: &crate::radius_config::RadiusConfig,
) -> Result<Option<Vec<SocketAddr>>, &'static str> {
    let crate::radius_config::RadiusConfig {
        servers,
        accounting,
        interim_interval_secs,
        nas_identifier,
        timeout_secs,
        tries,
        dead_time_secs,
        dynamic_authorization,
    } = new;
    let same = [
        (
            "radius.servers",
            servers.is_empty() == old.servers.is_empty(),
        ),
        ("radius.accounting", *accounting == old.accounting),
        (
            "radius.interim_interval_secs",
            *interim_interval_secs == old.interim_interval_secs,
        ),
        (
            "radius.nas_identifier",
            *nas_identifier == old.nas_identifier,
        ),
        (
            "radius.dynamic_authorization",
            *dynamic_authorization == old.dynamic_authorization,
        ),
    ];
    if let Some((key, _)) = same.iter().find(|(_, same)| !same) {
        return Err(key);
    }
    let changed = *servers != old.servers
        || *timeout_secs != old.timeout_secs
        || *tries != old.tries
        || *dead_time_secs != old.dead_time_secs;
    Ok(changed.then(|| servers.iter().map(|s| s.auth_addr()).collect()))
}

/// The dotted key under `section` whose value differs between the two
/// files (`sstp.listen` rather than `sstp`), for the refusal to name; the
/// section itself when the difference is not in the text (an environment
/// override, or a default written out).
fn changed_key(old_text: &str, new_text: &str, section: &str) -> String {
    let table = |text: &str| text.parse::<toml::Table>().ok();
    let (Some(old), Some(new)) = (table(old_text), table(new_text)) else {
        return section.to_owned();
    };
    let under = |t: &toml::Table| -> Option<toml::Value> {
        let mut value = toml::Value::Table(t.clone());
        for part in section.split('.') {
            value = value.as_table()?.get(part)?.clone();
        }
        Some(value)
    };
    // A section only one file has compares with an empty one.
    let empty = || Some(toml::Value::Table(toml::Table::new()));
    match (under(&old).or_else(empty), under(&new).or_else(empty)) {
        (Some(toml::Value::Table(o)), Some(toml::Value::Table(n))) => {
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.into_iter()
                .find(|k| o.get(*k) != n.get(*k))
                .map(|k| format!("{section}.{k}"))
                .unwrap_or_else(|| section.to_owned())
        }
        _ => section.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const BASE: &str = "state_dir = \"/tmp/ras-reload-test\"\n\
        [sstp]\nlisten = [\"127.0.0.1:443\"]\n\
        [addresses]\nipv4_pool = [\"10.0.10.20-10.0.10.29\"]\ndns = [\"10.0.0.53\"]\n";

    fn load(text: &str) -> Config {
        Config::from_toml(text, Path::new("ras.toml")).unwrap()
    }

    fn plan_for(new_text: &str) -> Result<ReloadPlan, ConfigError> {
        plan(
            &load(BASE),
            &load(new_text),
            BASE,
            new_text,
            Path::new("ras.toml"),
        )
    }

    fn refusal(e: ConfigError) -> (PathBuf, usize, String, String) {
        match e {
            ConfigError::Invalid {
                path,
                line,
                key,
                message,
                ..
            } => (path, line, key.unwrap_or_default(), message),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let plan = plan_for(BASE).unwrap();
        assert_eq!(plan, ReloadPlan::default());
        assert!(plan.describe().is_empty());
    }

    #[test]
    fn dns_wins_policies_and_an_added_range_are_taken() {
        let new = "state_dir = \"/tmp/ras-reload-test\"\n\
            [sstp]\nlisten = [\"127.0.0.1:443\"]\n\
            [addresses]\nipv4_pool = [\"10.0.10.20-10.0.10.29\", \"10.0.20.1-10.0.20.50\"]\n\
            dns = [\"10.0.0.54\", \"10.0.0.55\"]\nwins = [\"10.0.0.60\"]\n\
            [[policy]]\nname = \"Staff\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"staff\"]\n";
        let plan = plan_for(new).unwrap();
        assert_eq!(plan.policies, Some(vec!["Staff".to_owned()]));
        assert_eq!(
            plan.pool_added,
            vec!["10.0.20.1-10.0.20.50".parse::<Ipv4Range>().unwrap()]
        );
        assert_eq!(
            plan.describe(),
            vec![
                "policies: 1 (Staff)",
                "pool +10.0.20.1-10.0.20.50",
                "DNS 10.0.0.54, 10.0.0.55",
                "WINS 10.0.0.60",
            ]
        );
    }

    #[test]
    fn a_listen_address_needs_a_restart_named_with_its_line() {
        let new = BASE.replace("127.0.0.1:443", "127.0.0.2:443");
        let (path, line, key, message) = refusal(plan_for(&new).unwrap_err());
        assert_eq!(path, PathBuf::from("ras.toml"));
        assert_eq!((line, key.as_str()), (3, "sstp.listen"));
        assert_eq!(message, "sstp.listen changed: needs a restart");
    }

    #[test]
    fn a_section_added_to_the_file_is_named_by_its_key() {
        let new = format!("{BASE}[tun]\nname = \"ras9\"\n");
        let (_, line, key, message) = refusal(plan_for(&new).unwrap_err());
        assert_eq!((line, key.as_str()), (8, "tun.name"));
        assert!(message.ends_with("needs a restart"), "{message}");
    }

    #[test]
    fn acme_settings_need_a_restart_but_a_certificate_path_does_not() {
        // Turned on: the ACME task starts only at start.
        let new = format!("{BASE}[certificate.acme]\ndirectory = \"https://ca.test/dir\"\n");
        let (_, line, key, message) = refusal(plan_for(&new).unwrap_err());
        assert_eq!((line, key.as_str()), (8, "certificate.acme.directory"));
        assert!(message.ends_with("needs a restart"), "{message}");
        // Changed while on.
        let old_text = new.clone();
        let newer = new.replace("https://ca.test/dir", "https://ca.test/other");
        let e = plan(
            &load(&old_text),
            &load(&newer),
            &old_text,
            &newer,
            Path::new("ras.toml"),
        )
        .unwrap_err();
        assert_eq!(refusal(e).2, "certificate.acme.directory");
        // chain and key are compared by the certificate (reload.rs).
        let chain = format!("{BASE}[certificate]\nchain = \"/c.pem\"\nkey = \"/k.pem\"\n");
        assert_eq!(plan_for(&chain).unwrap(), ReloadPlan::default());
    }

    #[test]
    fn a_default_written_out_is_not_a_change() {
        let new = format!("{BASE}[tun]\nname = \"ras0\"\n");
        assert_eq!(plan_for(&new).unwrap(), ReloadPlan::default());
    }

    #[test]
    fn removing_or_reordering_a_range_is_refused() {
        let new = BASE.replace("10.0.10.20-10.0.10.29", "10.0.10.20-10.0.10.25");
        let (_, line, key, message) = refusal(plan_for(&new).unwrap_err());
        assert_eq!((line, key.as_str()), (5, "addresses.ipv4_pool"));
        assert!(
            message.starts_with("10.0.10.20-10.0.10.29 removed or changed"),
            "{message}"
        );

        let base2 = BASE.replace(
            "[\"10.0.10.20-10.0.10.29\"]",
            "[\"10.0.10.20-10.0.10.29\", \"10.0.20.1-10.0.20.9\"]",
        );
        let swapped = BASE.replace(
            "[\"10.0.10.20-10.0.10.29\"]",
            "[\"10.0.20.1-10.0.20.9\", \"10.0.10.20-10.0.10.29\"]",
        );
        let e = plan(
            &load(&base2),
            &load(&swapped),
            &base2,
            &swapped,
            Path::new("ras.toml"),
        )
        .unwrap_err();
        assert!(refusal(e).3.starts_with("the ranges were reordered"));
    }

    #[test]
    fn an_environment_override_is_named_by_its_section() {
        let old = load(BASE);
        let new = load(BASE)
            .with_env(|k| (k == crate::config::ADMIN_SOCKET_ENV).then(|| "/tmp/other.sock".into()));
        let (_, line, key, _) =
            refusal(plan(&old, &new, BASE, BASE, Path::new("ras.toml")).unwrap_err());
        assert_eq!((line, key.as_str()), (1, "admin"));
    }

    #[test]
    fn radius_servers_are_taken_but_turning_radius_off_or_accounting_is_not() {
        let with = |extra: &str| format!("{BASE}[radius]\ntries = 2\n{extra}");
        let one = "[[radius.servers]]\naddress = \"192.0.2.1\"\nsecret_file = \"s\"\n";
        let two = "[[radius.servers]]\naddress = \"192.0.2.2\"\nsecret_file = \"s\"\n";
        let old = with(one);
        let plan_from = |new: &str| plan(&load(&old), &load(new), &old, new, Path::new("ras.toml"));

        let plan = plan_from(&with(two)).unwrap();
        assert_eq!(plan.describe(), vec!["RADIUS servers 192.0.2.2:1812"]);
        let plan = plan_from(&with(one).replace("tries = 2", "tries = 3")).unwrap();
        assert_eq!(plan.radius, Some(vec!["192.0.2.1:1812".parse().unwrap()]));

        let (_, _, key, message) = refusal(plan_from(&with("")).unwrap_err());
        assert_eq!(key, "radius.servers");
        assert_eq!(message, "radius.servers changed: needs a restart");
        let (_, line, key, _) = refusal(
            plan_from(&with(one).replace("tries = 2", "tries = 2\naccounting = false"))
                .unwrap_err(),
        );
        assert_eq!((line, key.as_str()), (9, "radius.accounting"));
    }
}
