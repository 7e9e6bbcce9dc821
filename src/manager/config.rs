//! A jail's configuration, typed: parsed once from its effective properties (stored
//! values over the defaults), so the lifecycle never reads a property as a string.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{invalid, Result};
use super::props;

/// What a jail's root is made of (`type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JailType {
    /// Shares a fetched release read-only.
    Basejail,
    /// A full copy of a release.
    Thickjail,
    /// Made empty (`create -e`).
    Emptyjail,
    /// Anything else found stored (kept as is).
    Other(String),
}

/// `resolver`: what the jail's `/etc/resolv.conf` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolver {
    /// `none`: a copy of the host's.
    Host,
    /// The lines given, `;`-separated in the property.
    Lines(Vec<String>),
}

/// The commands run around start and stop (`exec_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    pub prestart: String,
    pub start: String,
    pub poststart: String,
    pub prestop: String,
    pub stop: String,
    pub poststop: String,
}

/// Every property the lifecycle, the boot order and the jail parameters use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailConfig {
    pub uuid: String,
    pub tag: String,
    pub jail_type: JailType,
    pub release: String,
    pub boot: bool,
    pub priority: u8,
    pub template: bool,
    pub host_hostname: String,
    pub host_hostuuid: String,
    /// `None` for `none`.
    pub host_domainname: Option<String>,
    pub vnet: bool,
    /// `ip4_addr` entries with an address (`[iface|]addr[/prefix]`); `none` and
    /// interface-only (`iface|`) entries are left out.
    pub ip4: Vec<String>,
    /// `dhcp=on`: vnet0 takes a lease at start (as `ip4_addr="vnet0|DHCP"`).
    pub dhcp: bool,
    /// `ip4`, `ip6`: `new`, `inherit` or `disable`.
    pub ip4_mode: String,
    pub ip6_mode: String,
    pub ip6: Vec<String>,
    /// `interfaces` (`vnet0:bridge0,...`), `defaultrouter(6)` (`None` for `none`),
    /// `vnet_default_interface` and `vnetN_mac`, as stored: `lifecycle::net` reads them.
    pub interfaces: String,
    pub defaultrouter: Option<String>,
    pub defaultrouter6: Option<String>,
    pub vnet_default_interface: Option<String>,
    pub vnet_macs: Vec<Option<String>>,
    pub securelevel: i32,
    pub children_max: u32,
    pub enforce_statfs: u8,
    pub devfs_ruleset: u32,
    /// Every `allow_*` property, in schema order.
    pub allow: Vec<(&'static str, bool)>,
    pub mount_devfs: bool,
    pub mount_fdescfs: bool,
    pub mount_procfs: bool,
    pub hooks: Hooks,
    pub exec_clean: bool,
    pub exec_timeout: Duration,
    pub stop_timeout: Duration,
    pub resolver: Resolver,
    pub login_flags: Vec<String>,
}

/// Reads typed values from an effective property map.
struct Reader<'a> {
    props: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn str(&self, k: &str) -> String {
        self.props.get(k).cloned().unwrap_or_default()
    }

    /// A boolean property, whichever word its type uses for true.
    fn flag(&self, k: &str) -> Result<bool> {
        let p = props::lookup(k)?;
        let yes = p
            .kind
            .true_word()
            .ok_or_else(|| invalid(format!("{k}: not a boolean property")))?;
        Ok(self.props.get(k).map(|v| v.trim()).unwrap_or(p.default) == yes)
    }

    /// A number; a value that does not parse (a bad host default, a file edited by
    /// hand) counts as the schema's default, as a stop must still work with it.
    fn int<T: std::str::FromStr>(&self, k: &str) -> Result<T> {
        let p = props::lookup(k)?;
        let v = self.props.get(k).map(|v| v.trim()).unwrap_or(p.default);
        v.parse().or_else(|_| p.default.parse()).map_err(|_| {
            invalid(format!(
                "{k}: the schema's default {} is not a number",
                p.default
            ))
        })
    }

    fn addrs(&self, k: &str) -> Vec<String> {
        self.str(k)
            .split(',')
            .filter(|e| !e.ends_with('|') && *e != "none" && !e.is_empty())
            .map(String::from)
            .collect()
    }

    fn word_or_none(&self, k: &str) -> Option<String> {
        match self.str(k).as_str() {
            "none" | "" => None,
            v => Some(v.to_string()),
        }
    }
}

impl JailConfig {
    /// Parse the effective properties of jail `uuid`.
    pub fn parse(uuid: &str, props: &BTreeMap<String, String>) -> Result<JailConfig> {
        let r = Reader { props };
        let allow = props::PROPS
            .iter()
            .filter(|p| p.name.starts_with("allow_") && p.kind.true_word().is_some())
            .map(|p| Ok((p.name, r.flag(p.name)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(JailConfig {
            uuid: uuid.to_string(),
            tag: r.str("tag"),
            jail_type: match r.str("type").as_str() {
                "basejail" => JailType::Basejail,
                "thickjail" => JailType::Thickjail,
                "emptyjail" => JailType::Emptyjail,
                other => JailType::Other(other.to_string()),
            },
            release: r.str("release"),
            boot: r.flag("boot")?,
            priority: r.int("priority")?,
            template: r.flag("istemplate")?,
            host_hostname: r.str("host_hostname"),
            host_hostuuid: r.str("host_hostuuid"),
            host_domainname: r.word_or_none("host_domainname"),
            vnet: r.flag("vnet")?,
            ip4: r.addrs("ip4_addr"),
            dhcp: r.flag("dhcp")?,
            ip4_mode: r.str("ip4"),
            ip6_mode: r.str("ip6"),
            ip6: r.addrs("ip6_addr"),
            interfaces: r.str("interfaces"),
            defaultrouter: r.word_or_none("defaultrouter"),
            defaultrouter6: r.word_or_none("defaultrouter6"),
            vnet_default_interface: r.word_or_none("vnet_default_interface"),
            vnet_macs: (0..4)
                .map(|i| r.word_or_none(&format!("vnet{i}_mac")))
                .collect(),
            securelevel: r.int("securelevel")?,
            children_max: r.int("children_max")?,
            enforce_statfs: r.int("enforce_statfs")?,
            devfs_ruleset: r.int("devfs_ruleset")?,
            allow,
            mount_devfs: r.flag("mount_devfs")?,
            mount_fdescfs: r.flag("mount_fdescfs")?,
            mount_procfs: r.flag("mount_procfs")?,
            hooks: Hooks {
                prestart: r.str("exec_prestart"),
                start: r.str("exec_start"),
                poststart: r.str("exec_poststart"),
                prestop: r.str("exec_prestop"),
                stop: r.str("exec_stop"),
                poststop: r.str("exec_poststop"),
            },
            exec_clean: r.flag("exec_clean")?,
            exec_timeout: Duration::from_secs(r.int("exec_timeout")?),
            stop_timeout: Duration::from_secs(r.int("stop_timeout")?),
            resolver: match r.word_or_none("resolver") {
                None => Resolver::Host,
                Some(v) => Resolver::Lines(v.split(';').map(|l| l.trim().to_string()).collect()),
            },
            login_flags: r
                .str("login_flags")
                .split_whitespace()
                .map(String::from)
                .collect(),
        })
    }

    /// `TAG (UUID)`, for messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.tag, self.uuid)
    }

    /// The kind of `name`'s value is boolean: is it true here?
    pub fn allowed(&self, name: &str) -> bool {
        self.allow.iter().any(|(n, v)| *n == name && *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> JailConfig {
        let mut p = props::schema_defaults();
        for (k, v) in pairs {
            p.insert(k.to_string(), v.to_string());
        }
        JailConfig::parse("u", &p).unwrap()
    }

    #[test]
    fn booleans_use_their_own_words() {
        let c = cfg(&[("boot", "on"), ("istemplate", "yes"), ("exec_clean", "1")]);
        assert!(c.boot && c.template && c.exec_clean);
        // the word of another boolean kind is not true
        let c = cfg(&[("boot", "1"), ("istemplate", "on"), ("exec_clean", "yes")]);
        assert!(!c.boot && !c.template && !c.exec_clean);
    }

    #[test]
    fn defaults_parse() {
        let c = cfg(&[]);
        assert_eq!(c.priority, 99);
        assert_eq!(c.exec_timeout, Duration::from_secs(60));
        assert_eq!(c.stop_timeout, Duration::from_secs(30));
        assert_eq!(c.resolver, Resolver::Host);
        assert_eq!(c.host_domainname, None);
        assert_eq!(c.login_flags, vec!["-f", "root"]);
        assert!(c.allow.iter().any(|(n, _)| *n == "allow_set_hostname"));
    }

    #[test]
    fn addresses_and_resolver() {
        let c = cfg(&[
            ("ip4_addr", "em0|10.0.0.5/24,lo0|,none"),
            ("resolver", "nameserver 10.0.0.1; search example.org"),
        ]);
        assert_eq!(c.ip4, vec!["em0|10.0.0.5/24"]);
        assert_eq!(
            c.resolver,
            Resolver::Lines(vec![
                "nameserver 10.0.0.1".into(),
                "search example.org".into()
            ])
        );
    }

    #[test]
    fn a_bad_number_counts_as_the_default() {
        let mut p = props::schema_defaults();
        p.insert("priority".into(), "high".into());
        p.insert("exec_timeout".into(), " 5".into());
        let c = JailConfig::parse("u", &p).unwrap();
        assert_eq!(c.priority, 99);
        assert_eq!(c.exec_timeout, Duration::from_secs(5));
    }
}
