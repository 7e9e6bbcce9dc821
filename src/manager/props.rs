//! The typed property schema of iocage(8): every property with its type, default,
//! source (`jail(8)`, `local`, `rctl(8)`, `zfs(8)`, ...), whether changing it needs a
//! restart, and whether it has an effect on Linux.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

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

use Kind::*;
use Source::{Jail, Local, Login, Zfs};

const RCTL_ACTIONS: &[&str] = &["deny", "log", "devctl"];

macro_rules! prop {
    ($n:expr, $k:expr, $d:expr, $s:expr, $r:expr, $l:expr, $descr:expr) => {
        Prop {
            name: $n,
            kind: $k,
            default: $d,
            source: $s,
            restart: $r,
            linux: $l,
            descr: $descr,
        }
    };
}

macro_rules! rctl {
    ($n:expr, $d:expr) => {
        prop!(
            $n,
            Kind::Rctl,
            $d,
            Source::Rctl,
            false,
            false,
            "resource limit (limit:action or off)"
        )
    };
}

macro_rules! allow {
    ($n:expr, $d:expr) => {
        allow!($n, $d, false)
    };
    ($n:expr, $d:expr, $linux:expr) => {
        prop!(
            $n,
            OneZero,
            $d,
            Jail,
            true,
            $linux,
            "jail(8) allow.* permission"
        )
    };
}

/// Every property of iocage(8).
pub static PROPS: &[Prop] = &[
    prop!(
        "uuid",
        ReadOnly,
        "",
        Local,
        false,
        true,
        "jail UUID (set at creation)"
    ),
    prop!(
        "tag",
        Str,
        "",
        Local,
        false,
        true,
        "unique name of the jail (default: creation time)"
    ),
    prop!(
        "pkglist",
        PathOrNone,
        "none",
        Local,
        false,
        false,
        "file of packages installed at creation (FreeBSD pkg)"
    ),
    prop!("vnet", OnOff, "off", Local, true, true, "own network stack"),
    prop!(
        "bpf",
        OnOff,
        "off",
        Local,
        true,
        false,
        "expose bpf devices"
    ),
    prop!(
        "dhcp",
        OnOff,
        "off",
        Local,
        true,
        false,
        "configure vnet0 with DHCP"
    ),
    prop!(
        "ip4_addr",
        Ip4List,
        "none",
        Jail,
        true,
        false,
        "IPv4 addresses: iface|ip/prefix,..."
    ),
    prop!(
        "ip4_autostart",
        Str,
        "none",
        Local,
        false,
        false,
        "first address of the AUTOIP4 range"
    ),
    prop!(
        "ip4_autoend",
        Str,
        "none",
        Local,
        false,
        false,
        "last address of the AUTOIP4 range"
    ),
    prop!(
        "ip4_autosubnet",
        Str,
        "none",
        Local,
        false,
        false,
        "netmask of the AUTOIP4 range"
    ),
    prop!(
        "ip4_saddrsel",
        OneZero,
        "1",
        Jail,
        true,
        false,
        "IPv4 source address selection"
    ),
    prop!(
        "ip4",
        Word(&["new", "disable", "inherit"]),
        "new",
        Jail,
        true,
        false,
        "IPv4 restriction"
    ),
    prop!(
        "ip6_addr",
        Ip6List,
        "none",
        Jail,
        true,
        false,
        "IPv6 addresses: iface|ip/prefix,..."
    ),
    prop!(
        "ip6_saddrsel",
        OneZero,
        "1",
        Jail,
        true,
        false,
        "IPv6 source address selection"
    ),
    prop!(
        "ip6",
        Word(&["new", "disable", "inherit"]),
        "new",
        Jail,
        true,
        false,
        "IPv6 restriction"
    ),
    prop!(
        "defaultrouter",
        Ip4OrNone,
        "none",
        Local,
        true,
        false,
        "IPv4 default route of a vnet jail"
    ),
    prop!(
        "defaultrouter6",
        Ip6OrNone,
        "none",
        Local,
        true,
        false,
        "IPv6 default route of a vnet jail"
    ),
    prop!(
        "resolver",
        Resolver,
        "none",
        Local,
        true,
        true,
        "resolv.conf lines separated by ';' (none: the host's)"
    ),
    prop!(
        "interfaces",
        Str,
        "vnet0:bridge0,vnet1:bridge1",
        Local,
        true,
        false,
        "vnet interfaces and their bridges"
    ),
    prop!(
        "host_domainname",
        Str,
        "none",
        Jail,
        false,
        true,
        "NIS domain name"
    ),
    prop!(
        "host_hostname",
        Str,
        "",
        Jail,
        false,
        true,
        "hostname (default: the UUID)"
    ),
    prop!(
        "host_hostuuid",
        Str,
        "",
        Jail,
        true,
        true,
        "host UUID of the jail (default: the UUID)"
    ),
    prop!(
        "exec_fib",
        Int { min: 0, max: 255 },
        "0",
        Jail,
        true,
        false,
        "routing table (FIB) of the jail"
    ),
    prop!(
        "devfs_ruleset",
        Int { min: 0, max: 65535 },
        "4",
        Jail,
        true,
        false,
        "devfs ruleset"
    ),
    prop!(
        "mount_devfs",
        OneZero,
        "1",
        Jail,
        true,
        true,
        "mount devfs (Linux: a small /dev)"
    ),
    prop!(
        "exec_start",
        Str,
        "/bin/sh /etc/rc",
        Jail,
        false,
        true,
        "run inside the jail at start"
    ),
    prop!(
        "exec_stop",
        Str,
        "/bin/sh /etc/rc.shutdown",
        Jail,
        false,
        true,
        "run inside the jail at stop"
    ),
    prop!(
        "exec_prestart",
        Str,
        "/usr/bin/true",
        Jail,
        false,
        true,
        "run on the host before start"
    ),
    prop!(
        "exec_poststart",
        Str,
        "/usr/bin/true",
        Jail,
        false,
        true,
        "run on the host after start"
    ),
    prop!(
        "exec_prestop",
        Str,
        "/usr/bin/true",
        Jail,
        false,
        true,
        "run on the host before stop"
    ),
    prop!(
        "exec_poststop",
        Str,
        "/usr/bin/true",
        Jail,
        false,
        true,
        "run on the host after stop"
    ),
    prop!(
        "exec_clean",
        OneZero,
        "1",
        Jail,
        false,
        false,
        "clean environment for exec_* commands"
    ),
    prop!(
        "exec_timeout",
        Int { min: 1, max: 86400 },
        "60",
        Jail,
        false,
        true,
        "seconds an exec_* command may run"
    ),
    prop!(
        "stop_timeout",
        Int { min: 0, max: 86400 },
        "30",
        Jail,
        false,
        true,
        "seconds processes get to exit after SIGTERM"
    ),
    prop!(
        "exec_jail_user",
        Str,
        "root",
        Jail,
        false,
        false,
        "user of exec_start/exec_stop inside the jail"
    ),
    prop!(
        "exec_system_jail_user",
        OneZero,
        "0",
        Jail,
        false,
        false,
        "look exec_jail_user up on the host"
    ),
    prop!(
        "exec_system_user",
        Str,
        "root",
        Jail,
        false,
        false,
        "user of the host-side exec_* commands"
    ),
    prop!(
        "mount_fdescfs",
        OneZero,
        "1",
        Jail,
        true,
        false,
        "mount fdescfs"
    ),
    prop!(
        "mount_procfs",
        OneZero,
        "0",
        Local,
        true,
        true,
        "mount procfs (Linux: the jail always has its own /proc)"
    ),
    prop!(
        "mount_linprocfs",
        OneZero,
        "0",
        Local,
        true,
        false,
        "mount linprocfs"
    ),
    prop!(
        "enforce_statfs",
        Int { min: 0, max: 2 },
        "2",
        Jail,
        true,
        false,
        "mount points visible in the jail"
    ),
    prop!(
        "children_max",
        Int {
            min: 0,
            max: 1_000_000
        },
        "0",
        Jail,
        true,
        false,
        "child jails allowed"
    ),
    prop!(
        "login_flags",
        Str,
        "-f root",
        Login,
        false,
        true,
        "flags of login(1) for console"
    ),
    prop!(
        "jail_zfs",
        OnOff,
        "off",
        Local,
        true,
        false,
        "delegate a ZFS dataset to the jail"
    ),
    prop!(
        "jail_zfs_dataset",
        Str,
        "",
        Local,
        true,
        false,
        "the delegated dataset"
    ),
    prop!(
        "securelevel",
        Int { min: -1, max: 3 },
        "2",
        Jail,
        true,
        false,
        "securelevel of the jail"
    ),
    allow!("allow_set_hostname", "1", true),
    allow!("allow_sysvipc", "0", true),
    allow!("allow_raw_sockets", "0", true),
    allow!("allow_chflags", "0", true),
    allow!("allow_mount", "0", true),
    allow!("allow_mount_devfs", "0", true),
    allow!("allow_mount_nullfs", "0", true),
    allow!("allow_mount_procfs", "0", true),
    allow!("allow_mount_tmpfs", "0", true),
    allow!("allow_mount_zfs", "0"),
    allow!("allow_quotas", "0"),
    allow!("allow_socket_af", "0"),
    prop!(
        "istemplate",
        YesNo,
        "no",
        Local,
        false,
        true,
        "the jail is a template"
    ),
    prop!(
        "boot",
        OnOff,
        "off",
        Local,
        false,
        true,
        "start at boot (rcboot)"
    ),
    prop!("notes", Str, "none", Local, false, true, "free text"),
    prop!(
        "owner",
        Str,
        "root",
        Local,
        false,
        true,
        "owner of the jail"
    ),
    prop!(
        "priority",
        Int { min: 0, max: 99 },
        "99",
        Local,
        false,
        true,
        "boot order: lower starts first, stops last"
    ),
    prop!(
        "last_started",
        ReadOnly,
        "none",
        Local,
        false,
        true,
        "time of the last start"
    ),
    prop!(
        "type",
        ReadOnly,
        "basejail",
        Local,
        false,
        true,
        "basejail, thickjail, emptyjail"
    ),
    prop!(
        "hostid",
        Str,
        "",
        Local,
        false,
        false,
        "host id the jail belongs to"
    ),
    prop!(
        "release",
        ReadOnly,
        "",
        Local,
        false,
        true,
        "release the jail is based on"
    ),
    prop!(
        "compression",
        Word(&[
            "on", "off", "lzjb", "gzip", "gzip-1", "gzip-2", "gzip-3", "gzip-4", "gzip-5",
            "gzip-6", "gzip-7", "gzip-8", "gzip-9", "zle", "lz4"
        ]),
        "lzjb",
        Zfs,
        false,
        true,
        "ZFS compression of the jail's datasets"
    ),
    prop!(
        "quota",
        Size,
        "none",
        Zfs,
        false,
        true,
        "ZFS quota of the jail"
    ),
    prop!(
        "dedup",
        Word(&["on", "off", "verify", "sha256", "sha256,verify"]),
        "off",
        Zfs,
        false,
        true,
        "ZFS deduplication"
    ),
    prop!(
        "reservation",
        Size,
        "none",
        Zfs,
        false,
        true,
        "ZFS reservation of the jail"
    ),
    prop!(
        "rlimits",
        OnOff,
        "off",
        Local,
        false,
        false,
        "enforce the resource limits below"
    ),
    prop!(
        "cpuset",
        Kind::Cpuset,
        "off",
        Source::Cpuset,
        true,
        false,
        "CPUs of the jail"
    ),
    rctl!("memoryuse", "8G:log"),
    rctl!("memorylocked", "off"),
    rctl!("vmemoryuse", "off"),
    rctl!("maxproc", "off"),
    rctl!("cputime", "off"),
    rctl!("pcpu", "off"),
    rctl!("datasize", "off"),
    rctl!("stacksize", "off"),
    rctl!("coredumpsize", "off"),
    rctl!("openfiles", "off"),
    rctl!("pseudoterminals", "off"),
    rctl!("swapuse", "off"),
    rctl!("nthr", "off"),
    rctl!("msgqqueued", "off"),
    rctl!("msgqsize", "off"),
    rctl!("nmsgq", "off"),
    rctl!("nsemop", "off"),
    rctl!("nshm", "off"),
    rctl!("shmsize", "off"),
    rctl!("wallclock", "off"),
];

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

/// Longest value of any property: what a ZFS user property can hold (8192 bytes with
/// its terminating NUL).
pub const MAX_VALUE: usize = 8191;
/// Longest host name (MAXHOSTNAMELEN - 1), and of one of its labels.
pub const MAX_HOSTNAME: usize = 255;
const MAX_LABEL: usize = 63;

/// A host or domain name: labels of letters, digits and '-', 1 to 63 bytes each, not
/// starting or ending with '-', at most 255 bytes in all.
pub fn hostname_ok(h: &str) -> bool {
    h.len() <= MAX_HOSTNAME
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A value shown in an error: long ones cut, with their length.
fn shown(v: &str) -> String {
    if v.len() <= 64 {
        v.to_string()
    } else {
        let mut end = 48;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &v[..end], v.len())
    }
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

fn expected(k: Kind) -> String {
    match k {
        OnOff => "on or off".into(),
        OneZero => "1 or 0".into(),
        YesNo => "yes or no".into(),
        Int { min, max } => format!("an integer from {min} to {max}"),
        Str => "a string".into(),
        Word(ws) => format!("one of {}", ws.join(", ")),
        Ip4List => "none or [interface|]IPv4[/prefix],... ".trim().into(),
        Ip6List => "none or [interface|]IPv6[/prefix],...".into(),
        Ip4OrNone => "none or an IPv4 address".into(),
        Ip6OrNone => "none or an IPv6 address".into(),
        Size => "none or a size such as 512M, 15G".into(),
        Kind::Rctl => format!(
            "off or limit:action (action: {}, or sigNAME)",
            RCTL_ACTIONS.join(", ")
        ),
        Kind::Cpuset => "off or a CPU list such as 0,2-3".into(),
        Resolver => "none or resolv.conf lines separated by ';'".into(),
        PathOrNone => "none or a file path".into(),
        ReadOnly => "nothing: it is read-only".into(),
    }
}

fn ip_entry<T: std::str::FromStr>(s: &str, max_prefix: u32) -> bool {
    let s = s.trim();
    let addr_part = match s.split_once('|') {
        Some((iface, rest)) => {
            if iface.is_empty()
                || !iface
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return false;
            }
            if rest.is_empty() {
                return true; // "vnet0|": an interface without address (vnet jails)
            }
            rest
        }
        None => s,
    };
    let (a, prefix) = match addr_part.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (addr_part, None),
    };
    if a == "AUTOIP4" && max_prefix == 32 {
        return true;
    }
    a.parse::<T>().is_ok()
        && prefix
            .map(|p| {
                p.parse::<u32>().map(|n| n <= max_prefix).unwrap_or(false)
                    || p.parse::<Ipv4Addr>().is_ok()
            })
            .unwrap_or(true)
}

fn size_ok(s: &str) -> bool {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && matches!(
            unit.to_ascii_uppercase().as_str(),
            "" | "B" | "K" | "M" | "G" | "T" | "P" | "KB" | "MB" | "GB" | "TB" | "PB"
        )
}

fn rctl_ok(s: &str) -> bool {
    let Some((limit, action)) = s.split_once(':') else {
        return false;
    };
    size_ok(limit)
        && (RCTL_ACTIONS.contains(&action)
            || (action.starts_with("sig")
                && action.len() > 3
                && action[3..].chars().all(|c| c.is_ascii_alphanumeric())))
}

fn cpuset_ok(s: &str) -> bool {
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(x), Ok(y)) if x <= y),
        None => part.parse::<u32>().is_ok(),
    })
}

/// Validate `value` for property `name` and return it normalised.
pub fn validate(name: &str, value: &str) -> Result<String, PropError> {
    let p = lookup(name)?;
    let bad = || PropError::Invalid {
        name: name.into(),
        value: shown(value),
        expected: expected(p.kind),
    };
    if value.len() > MAX_VALUE {
        return Err(PropError::TooLong {
            name: name.into(),
            len: value.len(),
            limit: MAX_VALUE,
        });
    }
    let v = value.trim();
    if matches!(name, "host_hostname" | "host_domainname") && !matches!(v, "" | "none") {
        if v.len() > MAX_HOSTNAME {
            return Err(PropError::TooLong {
                name: name.into(),
                len: v.len(),
                limit: MAX_HOSTNAME,
            });
        }
        if !hostname_ok(v) {
            return Err(PropError::Invalid {
                name: name.into(),
                value: shown(value),
                expected: "a host name: labels of letters, digits and '-' (1 to 63 bytes, not starting or ending with '-') joined by '.'".into(),
            });
        }
    }
    let ok = match p.kind {
        ReadOnly => return Err(PropError::ReadOnly(name.into())),
        OnOff => matches!(v, "on" | "off"),
        OneZero => matches!(v, "1" | "0"),
        YesNo => matches!(v, "yes" | "no"),
        Int { min, max } => v
            .parse::<i64>()
            .map(|n| n >= min && n <= max)
            .unwrap_or(false),
        Str => !value.contains('\0') && !value.contains('\n'),
        Word(ws) => ws.contains(&v),
        Ip4List => v == "none" || v.split(',').all(|e| ip_entry::<Ipv4Addr>(e, 32)),
        Ip6List => v == "none" || v.split(',').all(|e| ip_entry::<Ipv6Addr>(e, 128)),
        Ip4OrNone => v == "none" || v.parse::<Ipv4Addr>().is_ok(),
        Ip6OrNone => v == "none" || v.parse::<Ipv6Addr>().is_ok(),
        Size => v == "none" || size_ok(v),
        Kind::Rctl => v == "off" || rctl_ok(v),
        Kind::Cpuset => v == "off" || cpuset_ok(v),
        Resolver => !value.contains('\0') && !value.contains('\n'),
        PathOrNone => v == "none" || v.starts_with('/'),
    };
    if !ok {
        return Err(bad());
    }
    Ok(if matches!(p.kind, Str | Resolver) {
        value.to_string()
    } else {
        v.to_string()
    })
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
