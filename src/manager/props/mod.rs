//! The typed property schema of iocage(8): every property with its type, default,
//! source (`jail(8)`, `local`, `rctl(8)`, `zfs(8)`, ...), whether changing it needs a
//! restart, and whether it has an effect on Linux.

use std::collections::BTreeMap;

/// Where a property comes from, as iocage(8) documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Jail,
    Local,
    Rctl,
    Zfs,
    Cpuset,
    Login,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Jail => "jail(8)",
            Source::Local => "local",
            Source::Rctl => "rctl(8)",
            Source::Zfs => "zfs(8)",
            Source::Cpuset => "cpuset(1)",
            Source::Login => "login(1)",
        }
    }
}

/// The type of a property value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `on` | `off`
    OnOff,
    /// `1` | `0`
    OneZero,
    /// `yes` | `no`
    YesNo,
    Int {
        min: i64,
        max: i64,
    },
    Str,
    /// One of a fixed set of words.
    Word(&'static [&'static str]),
    /// `none` or `[iface|]ip4[/prefix],...`
    Ip4List,
    Ip6List,
    /// `none` or an address.
    Ip4OrNone,
    Ip6OrNone,
    /// `none` or a ZFS size (`15G`).
    Size,
    /// `limit:action` or `off`.
    Rctl,
    /// `off` or a cpu list `1,2,4-6`.
    Cpuset,
    /// `none` or `nameserver IP;search domain;...`
    Resolver,
    /// A file path or `none`.
    PathOrNone,
    /// `none` or jail tags separated by spaces or commas (`depends`).
    TagList,
    /// Set by jailctl only.
    ReadOnly,
}

#[derive(Debug, Clone, Copy)]
pub struct Prop {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub source: Source,
    /// Changing it on a running jail takes effect only after a restart.
    pub restart: bool,
    /// Has an effect on Linux (otherwise stored and reported as such).
    pub linux: bool,
    pub descr: &'static str,
}

impl Kind {
    /// The word meaning "true" of a boolean kind (`on`, `1`, `yes`).
    pub fn true_word(self) -> Option<&'static str> {
        match self {
            Kind::OnOff => Some("on"),
            Kind::OneZero => Some("1"),
            Kind::YesNo => Some("yes"),
            _ => None,
        }
    }
}

mod schema;
mod validate;

pub use schema::PROPS;
pub use validate::{hostname_ok, validate, MAX_HOSTNAME, MAX_VALUE};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PropError {
    #[error("unknown property: {0} (`jailctl defaults` lists them all)")]
    Unknown(String),
    #[error("{name}: invalid value \"{value}\": expected {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
    #[error("{0}: read-only property, set by jailctl")]
    ReadOnly(String),
    #[error("\"{0}\" is not property=value")]
    NotAssignment(String),
    #[error("{name}: the value is {len} bytes long; at most {limit} are accepted")]
    TooLong {
        name: String,
        len: usize,
        limit: usize,
    },
}

pub fn lookup(name: &str) -> Result<&'static Prop, PropError> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static Prop>> =
        std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| PROPS.iter().map(|p| (p.name, p)).collect())
        .get(name)
        .copied()
        .ok_or_else(|| PropError::Unknown(name.to_string()))
}

/// Properties the FreeBSD code does not apply yet (stored, reported as such): the
/// network set-up beyond `ip4.addr`/`ip6.addr`/`vnet`, resource limits and cpusets,
/// the jailed dataset, and the `exec_*` users and FIB. (The dataset's own ZFS
/// properties are applied by the ZFS backend on both OSes.)
pub const NOT_YET_ON_FREEBSD: &[&str] = &[
    "bpf",
    "dhcp",
    "ip4_autostart",
    "ip4_autoend",
    "ip4_autosubnet",
    "ip4_saddrsel",
    "ip4",
    "ip6_saddrsel",
    "ip6",
    "defaultrouter",
    "defaultrouter6",
    "interfaces",
    "exec_fib",
    "exec_jail_user",
    "exec_system_jail_user",
    "exec_system_user",
    "mount_linprocfs",
    "jail_zfs",
    "jail_zfs_dataset",
];

/// What setting a property does on an OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// jailctl applies it (at the next start for a `restart` property).
    Enforced,
    /// Stored and shown, without effect on this OS (yet).
    StoredOnly,
}

/// The effect of property `p` on `os`: the one table behind `set`'s warnings and the
/// manual page's lists.
pub fn effect(p: &Prop, os: crate::sys::Os) -> Effect {
    let applied = match os {
        crate::sys::Os::Linux if p.source == Source::Rctl => {
            crate::sys::limits::linux_enforces(p.name)
        }
        crate::sys::Os::Linux => p.linux,
        crate::sys::Os::FreeBsd => !NOT_YET_ON_FREEBSD.contains(&p.name),
    };
    if applied {
        Effect::Enforced
    } else {
        Effect::StoredOnly
    }
}

/// Parse `name=value` arguments, validating each.
pub fn parse_assignments<S: AsRef<str>>(args: &[S]) -> Result<Vec<(String, String)>, PropError> {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            let (n, v) = a
                .split_once('=')
                .ok_or_else(|| PropError::NotAssignment(a.to_string()))?;
            Ok((n.to_string(), validate(n, v)?))
        })
        .collect()
}

/// The schema's defaults.
pub fn schema_defaults() -> BTreeMap<String, String> {
    PROPS
        .iter()
        .map(|p| (p.name.to_string(), p.default.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    #[test]
    fn every_property_has_an_effect_per_os() {
        use crate::sys::Os;
        for name in NOT_YET_ON_FREEBSD {
            assert!(lookup(name).is_ok(), "{name}");
        }
        let e = |n: &str, os| effect(lookup(n).unwrap(), os);
        // issue 14: rctl properties are applied (Linux: those with an equivalent)
        assert_eq!(e("memoryuse", Os::FreeBsd), Effect::Enforced);
        assert_eq!(e("memoryuse", Os::Linux), Effect::Enforced);
        assert_eq!(e("wallclock", Os::Linux), Effect::StoredOnly);
        assert_eq!(e("cpuset", Os::Linux), Effect::Enforced);
        assert_eq!(e("interfaces", Os::FreeBsd), Effect::StoredOnly);
        assert_eq!(e("allow_mount_zfs", Os::FreeBsd), Effect::Enforced);
        assert_eq!(e("allow_mount_zfs", Os::Linux), Effect::StoredOnly);
        assert_eq!(e("securelevel", Os::FreeBsd), Effect::Enforced);
        assert_eq!(e("boot", Os::Linux), Effect::Enforced);
    }

    #[test]
    fn schema_is_complete_and_unique() {
        let mut names: Vec<_> = PROPS.iter().map(|p| p.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(n, names.len());
        for required in [
            "vnet",
            "ip4_addr",
            "ip6_addr",
            "resolver",
            "exec_start",
            "exec_prestart",
            "exec_poststop",
            "stop_timeout",
            "boot",
            "priority",
            "allow_raw_sockets",
            "memoryuse",
            "wallclock",
            "quota",
            "compression",
            "tag",
            "release",
            "last_started",
            "host_hostname",
            "securelevel",
            "login_flags",
            "jail_zfs_dataset",
        ] {
            assert!(lookup(required).is_ok(), "{required} missing");
        }
        // every default is valid for its own type
        for p in PROPS {
            if p.kind != ReadOnly && !p.default.is_empty() {
                validate(p.name, p.default)
                    .unwrap_or_else(|e| panic!("default of {}: {e}", p.name));
            }
        }
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(validate("boot", "on").unwrap(), "on");
        assert!(validate("boot", "yes")
            .unwrap_err()
            .to_string()
            .contains("on or off"));
        assert!(validate("priority", "100")
            .unwrap_err()
            .to_string()
            .contains("0 to 99"));
        assert!(validate("priority", "-1").is_err());
        assert_eq!(validate("priority", "5").unwrap(), "5");
        assert!(validate("ip4_addr", "em0|198.18.0.10/24,198.18.0.11").is_ok());
        assert!(validate("ip4_addr", "198.18.0.300").is_err());
        assert!(validate("ip4_addr", "vnet0|DHCP").is_ok());
        assert!(validate("ip4_addr", "vnet0|dhcp,vnet1|198.18.0.5/24").is_ok());
        assert!(validate("ip4_addr", "vnet0|DHCP/24").is_err());
        assert!(validate("ip6_addr", "vnet0|DHCP").is_err());
        assert!(validate("ip4_addr", "em0|198.18.0.1/33").is_err());
        assert!(validate("ip6_addr", "em0|2001:db8::1/64").is_ok());
        assert!(validate("ip6_addr", "2001:db8::zz").is_err());
        assert!(validate("defaultrouter", "198.18.0.1").is_ok());
        assert!(validate("defaultrouter", "router").is_err());
        assert!(validate("memoryuse", "8G:log").is_ok());
        assert!(validate("memoryuse", "8G:explode").is_err());
        assert!(validate("maxproc", "100:sigterm").is_ok());
        assert!(validate("quota", "15G").is_ok());
        assert!(validate("quota", "lots").is_err());
        assert!(validate("cpuset", "0,2-3").is_ok());
        assert!(validate("cpuset", "3-1").is_err());
        assert!(validate("securelevel", "4").is_err());
        assert!(matches!(
            validate("release", "x"),
            Err(PropError::ReadOnly(_))
        ));
        assert!(matches!(
            validate("nosuch", "x"),
            Err(PropError::Unknown(_))
        ));
        assert!(validate("notes", "a\nb").is_err());
        assert!(parse_assignments(&["boot"]).is_err());
    }
}
