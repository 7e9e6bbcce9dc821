//! Typed jail parameters: the table of known parameters, string import and export.
//!
//! This mirrors `jailparam_init`, `jailparam_import`, `jailparam_import_raw` and
//! `jailparam_export` of jail(3). The table is the same on every OS; what a given OS
//! does with a parameter is described by [`LinuxSupport`] (FreeBSD honours all of them
//! through the kernel).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::ParamError;

/// The native type of a jail parameter, as the kernel's `security.jail.param` sysctls
/// describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Signed 32-bit integer (`CTLTYPE_INT`).
    Int,
    /// Unsigned 32-bit integer (`CTLTYPE_UINT`, `CTLTYPE_U32`); kernel parameters only.
    UInt,
    /// Signed 64-bit integer (`CTLTYPE_LONG`, `CTLTYPE_S64`); kernel parameters only.
    Long,
    /// Unsigned long (`CTLTYPE_ULONG`).
    ULong,
    /// NUL-terminated string with a maximum length.
    Str(usize),
    /// Boolean; `name`, `noname`, `name=true|false|on|off|yes|no|1|0`.
    Bool,
    /// Jail system setting: `disable`, `new` or `inherit` (e.g. `vnet`, `host`, `ip4`).
    JailSys,
    /// Comma-separated list of IPv4 addresses.
    Ip4List,
    /// Comma-separated list of IPv6 addresses.
    Ip6List,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamType::Int => f.write_str("integer"),
            ParamType::UInt => f.write_str("unsigned 32-bit integer"),
            ParamType::Long => f.write_str("64-bit integer"),
            ParamType::ULong => f.write_str("unsigned integer"),
            ParamType::Str(n) => write!(f, "string of at most {} bytes", n - 1),
            ParamType::Bool => f.write_str("boolean (true/false, on/off, yes/no, 1/0)"),
            ParamType::JailSys => f.write_str("one of disable, new, inherit"),
            ParamType::Ip4List => f.write_str("comma-separated list of IPv4 addresses"),
            ParamType::Ip6List => f.write_str("comma-separated list of IPv6 addresses"),
        }
    }
}

/// What the Linux jail implementation does with a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinuxSupport {
    /// Honoured by the Linux jail (namespaces, hostname, root, lifetime).
    Enforced,
    /// Accepted and recorded in the registry, readable back, but not enforced by the
    /// Linux kernel (documented per parameter).
    Recorded,
    /// Maintained by the implementation; cannot be set.
    ReadOnly,
    /// FreeBSD has it; Linux cannot honour it: setting it is an error.
    Unsupported,
}

/// One entry of the parameter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub linux: LinuxSupport,
    /// Settable only at creation (path, vnet, ...).
    pub create_only: bool,
    pub descr: &'static str,
}

const MAXHOSTNAMELEN: usize = 256;
const MAXPATHLEN: usize = 1024;
const HOSTUUIDLEN: usize = 64;

macro_rules! p {
    ($name:expr, $ty:expr, $linux:ident, $co:expr, $d:expr) => {
        ParamSpec {
            name: $name,
            ty: $ty,
            linux: LinuxSupport::$linux,
            create_only: $co,
            descr: $d,
        }
    };
}

use ParamType::*;

/// Every known jail parameter (`jailparam_all`).
pub static PARAMS: &[ParamSpec] = &[
    p!(
        "jid",
        Int,
        Enforced,
        true,
        "jail identifier; chosen by the system when not given"
    ),
    p!(
        "name",
        Str(MAXHOSTNAMELEN),
        Enforced,
        false,
        "unique jail name; defaults to the jid"
    ),
    p!(
        "path",
        Str(MAXPATHLEN),
        Enforced,
        true,
        "root directory of the jail"
    ),
    p!(
        "host",
        JailSys,
        Recorded,
        true,
        "whether the jail has its own host.* values"
    ),
    p!(
        "host.hostname",
        Str(MAXHOSTNAMELEN),
        Enforced,
        false,
        "hostname inside the jail"
    ),
    p!(
        "host.domainname",
        Str(MAXHOSTNAMELEN),
        Enforced,
        false,
        "NIS domain name inside the jail"
    ),
    p!(
        "host.hostuuid",
        Str(HOSTUUIDLEN),
        Recorded,
        false,
        "host UUID of the jail"
    ),
    p!("host.hostid", ULong, Recorded, false, "host id of the jail"),
    p!(
        "persist",
        Bool,
        Enforced,
        false,
        "keep the jail when no process is left in it"
    ),
    p!("dying", Bool, ReadOnly, false, "the jail is being removed"),
    p!(
        "parent",
        Int,
        ReadOnly,
        false,
        "jid of the parent jail (0 for the host)"
    ),
    p!(
        "vnet",
        JailSys,
        Enforced,
        true,
        "own network stack (Linux: a network namespace)"
    ),
    p!("ip4", JailSys, Recorded, false, "IPv4 address restriction"),
    p!(
        "ip4.addr",
        Ip4List,
        Recorded,
        false,
        "IPv4 addresses of the jail"
    ),
    p!(
        "ip4.saddrsel",
        Bool,
        Recorded,
        false,
        "source address selection"
    ),
    p!("ip6", JailSys, Recorded, false, "IPv6 address restriction"),
    p!(
        "ip6.addr",
        Ip6List,
        Recorded,
        false,
        "IPv6 addresses of the jail"
    ),
    p!(
        "ip6.saddrsel",
        Bool,
        Recorded,
        false,
        "source address selection"
    ),
    p!(
        "children.max",
        Int,
        Recorded,
        false,
        "number of child jails allowed (0: none)"
    ),
    p!(
        "children.cur",
        Int,
        ReadOnly,
        false,
        "number of child jails"
    ),
    p!(
        "enforce_statfs",
        Int,
        Recorded,
        false,
        "mount points visible in the jail (0, 1, 2)"
    ),
    p!(
        "securelevel",
        Int,
        Recorded,
        false,
        "securelevel of the jail"
    ),
    p!("devfs_ruleset", Int, Unsupported, false, "devfs ruleset"),
    p!("osrelease", Str(32), Recorded, true, "reported OS release"),
    p!("osreldate", Int, Recorded, true, "reported OS release date"),
    p!("cpuset.id", Int, ReadOnly, false, "cpuset of the jail"),
    p!(
        "sysvmsg",
        JailSys,
        Unsupported,
        false,
        "SysV message queues"
    ),
    p!("sysvsem", JailSys, Unsupported, false, "SysV semaphores"),
    p!("sysvshm", JailSys, Unsupported, false, "SysV shared memory"),
    p!(
        "allow.set_hostname",
        Bool,
        Enforced,
        false,
        "the jail may change its hostname"
    ),
    p!(
        "allow.sysvipc",
        Bool,
        Enforced,
        false,
        "the jail may use SysV IPC"
    ),
    p!(
        "allow.raw_sockets",
        Bool,
        Enforced,
        false,
        "the jail may use raw sockets"
    ),
    p!(
        "allow.chflags",
        Bool,
        Enforced,
        false,
        "the jail may change file flags"
    ),
    p!(
        "allow.mount",
        Bool,
        Enforced,
        false,
        "the jail may mount file systems"
    ),
    p!(
        "allow.mount.devfs",
        Bool,
        Enforced,
        false,
        "the jail may mount devfs"
    ),
    p!(
        "allow.mount.fdescfs",
        Bool,
        Enforced,
        false,
        "the jail may mount fdescfs"
    ),
    p!(
        "allow.mount.nullfs",
        Bool,
        Enforced,
        false,
        "the jail may mount nullfs"
    ),
    p!(
        "allow.mount.procfs",
        Bool,
        Enforced,
        false,
        "the jail may mount procfs"
    ),
    p!(
        "allow.mount.tmpfs",
        Bool,
        Enforced,
        false,
        "the jail may mount tmpfs"
    ),
    p!(
        "allow.mount.zfs",
        Bool,
        Unsupported,
        false,
        "the jail may mount ZFS"
    ),
    p!(
        "allow.quotas",
        Bool,
        Unsupported,
        false,
        "the jail may manage quotas"
    ),
    p!(
        "allow.socket_af",
        Bool,
        Unsupported,
        false,
        "the jail may use any socket family"
    ),
    p!(
        "allow.mlock",
        Bool,
        Enforced,
        false,
        "the jail may lock memory"
    ),
    p!(
        "allow.reserved_ports",
        Bool,
        Enforced,
        false,
        "the jail may bind reserved ports"
    ),
    p!(
        "allow.read_msgbuf",
        Bool,
        Enforced,
        false,
        "the jail may read the kernel message buffer"
    ),
    p!(
        "allow.unprivileged_proc_debug",
        Bool,
        Unsupported,
        false,
        "unprivileged process debugging"
    ),
    p!(
        "allow.suser",
        Bool,
        Unsupported,
        false,
        "root in the jail is privileged"
    ),
    p!(
        "allow.nfsd",
        Bool,
        Unsupported,
        false,
        "the jail may run nfsd"
    ),
    p!(
        "allow.extattr",
        Bool,
        Unsupported,
        false,
        "the jail may manage system extended attributes"
    ),
    p!(
        "allow.adjtime",
        Bool,
        Unsupported,
        false,
        "the jail may adjust the clock"
    ),
    p!(
        "allow.settime",
        Bool,
        Unsupported,
        false,
        "the jail may set the clock"
    ),
    p!(
        "allow.routing",
        Bool,
        Unsupported,
        false,
        "the jail may change routing tables"
    ),
    p!(
        "linux.userns",
        Str(16),
        Enforced,
        true,
        "Linux only: user namespace of the jail: disable, identity or new"
    ),
    p!(
        "linux",
        JailSys,
        Unsupported,
        false,
        "Linux emulation settings"
    ),
    p!(
        "linux.osname",
        Str(16),
        Unsupported,
        false,
        "Linux emulation OS name"
    ),
    p!(
        "linux.osrelease",
        Str(16),
        Unsupported,
        false,
        "Linux emulation OS release"
    ),
];

/// Every parameter this OS knows (`jailparam_all`): the table on Linux; on FreeBSD
/// the table, typed by the running kernel where it knows a name, then every parameter
/// of the kernel's `security.jail.param` list the table lacks (see
/// [`super::kernel_params`]).
#[cfg(target_os = "freebsd")]
pub fn known() -> &'static [ParamSpec] {
    super::freebsd::known_params()
}

/// Every parameter this OS knows (`jailparam_all`): the table.
#[cfg(not(target_os = "freebsd"))]
pub fn known() -> &'static [ParamSpec] {
    PARAMS
}

/// Look a parameter up by name (`jailparam_init`) among [`known`]. Unknown names are
/// an error naming the parameter.
pub fn spec(name: &str) -> Result<&'static ParamSpec, ParamError> {
    known()
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ParamError::Unknown {
            name: name.to_string(),
        })
}

/// A parameter value in native form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i32),
    UInt(u32),
    Long(i64),
    ULong(u64),
    Str(String),
    Bool(bool),
    JailSys(JailSys),
    Ip4(Vec<Ipv4Addr>),
    Ip6(Vec<Ipv6Addr>),
}

/// `disable`/`new`/`inherit`, with the kernel's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailSys {
    Disable = 0,
    New = 1,
    Inherit = 2,
}

/// A named, typed parameter with an optional value (`struct jailparam`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailParam {
    pub spec: &'static ParamSpec,
    pub value: Option<Value>,
}

impl JailParam {
    /// `jailparam_init`: a parameter record without a value.
    pub fn new(name: &str) -> Result<Self, ParamError> {
        Ok(JailParam {
            spec: spec(name)?,
            value: None,
        })
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// `jailparam_import`: convert a string to the native value.
    pub fn import(&mut self, s: &str) -> Result<(), ParamError> {
        self.value = Some(import_value(self.spec, s)?);
        Ok(())
    }

    /// `jailparam_import_raw`: take a native value; its type must match the parameter.
    pub fn import_raw(&mut self, v: Value) -> Result<(), ParamError> {
        let ok = matches!(
            (&self.spec.ty, &v),
            (Int, Value::Int(_))
                | (UInt, Value::UInt(_))
                | (Long, Value::Long(_))
                | (ULong, Value::ULong(_))
                | (Bool, Value::Bool(_))
                | (JailSys, Value::JailSys(_))
                | (Ip4List, Value::Ip4(_))
                | (Ip6List, Value::Ip6(_))
        ) || matches!((&self.spec.ty, &v), (Str(n), Value::Str(s)) if s.len() < *n && !s.contains('\0'));
        if !ok {
            return Err(ParamError::BadValue {
                name: self.spec.name.to_string(),
                value: format!("{v:?}"),
                expected: self.spec.ty.to_string(),
            });
        }
        self.value = Some(v);
        Ok(())
    }

    /// `jailparam_export`: the string form of the value (empty when unset).
    pub fn export(&self) -> String {
        self.value.as_ref().map(export_value).unwrap_or_default()
    }
}

fn bad(spec: &ParamSpec, value: &str) -> ParamError {
    ParamError::BadValue {
        name: spec.name.to_string(),
        value: value.to_string(),
        expected: spec.ty.to_string(),
    }
}

/// Convert a string to a native value of the parameter's type.
pub fn import_value(spec: &ParamSpec, s: &str) -> Result<Value, ParamError> {
    Ok(match spec.ty {
        Int => Value::Int(s.trim().parse::<i32>().map_err(|_| bad(spec, s))?),
        UInt => Value::UInt(s.trim().parse::<u32>().map_err(|_| bad(spec, s))?),
        Long => Value::Long(s.trim().parse::<i64>().map_err(|_| bad(spec, s))?),
        ULong => Value::ULong(s.trim().parse::<u64>().map_err(|_| bad(spec, s))?),
        Str(max) => {
            if s.len() >= max || s.contains('\0') {
                return Err(bad(spec, s));
            }
            Value::Str(s.to_string())
        }
        Bool => Value::Bool(parse_bool(s).ok_or_else(|| bad(spec, s))?),
        JailSys => Value::JailSys(match s.trim().to_ascii_lowercase().as_str() {
            "disable" | "0" => JailSys::Disable,
            "new" | "1" => JailSys::New,
            "inherit" | "2" => JailSys::Inherit,
            _ => return Err(bad(spec, s)),
        }),
        Ip4List => Value::Ip4(
            split_list(s)
                .map(|a| strip_iface(a).parse::<Ipv4Addr>().map_err(|_| bad(spec, s)))
                .collect::<Result<_, _>>()?,
        ),
        Ip6List => Value::Ip6(
            split_list(s)
                .map(|a| strip_iface(a).parse::<Ipv6Addr>().map_err(|_| bad(spec, s)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|a| !a.is_empty())
}

/// jail(8) accepts `interface|address/prefix`; the kernel takes only the address.
fn strip_iface(a: &str) -> &str {
    let a = a.rsplit('|').next().unwrap_or(a);
    a.split('/').next().unwrap_or(a)
}

/// Boolean forms as libjail accepts them.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The string form of a native value.
pub fn export_value(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Long(l) => l.to_string(),
        Value::ULong(u) => u.to_string(),
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::JailSys(j) => match j {
            JailSys::Disable => "disable",
            JailSys::New => "new",
            JailSys::Inherit => "inherit",
        }
        .to_string(),
        Value::Ip4(a) => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
        Value::Ip6(a) => a
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Parse one `name=value` argument as jail(8) does: `name` alone sets a boolean true,
/// `noname` a boolean false.
pub fn parse_assignment(arg: &str) -> Result<JailParam, ParamError> {
    if let Some((name, value)) = arg.split_once('=') {
        let mut p = JailParam::new(name)?;
        p.import(value)?;
        return Ok(p);
    }
    if let Ok(spec) = spec(arg) {
        if spec.ty == Bool {
            return Ok(JailParam {
                spec,
                value: Some(Value::Bool(true)),
            });
        }
        return Err(ParamError::MissingValue {
            name: arg.to_string(),
            expected: spec.ty.to_string(),
        });
    }
    // libjail's form puts the "no" on the last component (`allow.noraw_sockets`,
    // `allow.mount.nozfs`); `noNAME` before the whole name is accepted too.
    for rest in [
        no_counterpart(arg),
        arg.strip_prefix("no").map(str::to_string),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(spec) = spec(&rest) {
            if spec.ty == Bool {
                return Ok(JailParam {
                    spec,
                    value: Some(Value::Bool(false)),
                });
            }
        }
    }
    Err(ParamError::Unknown {
        name: arg.to_string(),
    })
}

/// The boolean a "no" name negates, as libjail reads it: the "no" starts the last
/// dot-separated component (`allow.nomount` -> `allow.mount`, `nopersist` ->
/// `persist`). None when the last component does not start with "no".
pub fn no_counterpart(name: &str) -> Option<String> {
    let (head, last) = match name.rsplit_once('.') {
        Some((h, l)) => (Some(h), l),
        None => (None, name),
    };
    let rest = last.strip_prefix("no").filter(|r| !r.is_empty())?;
    Some(match head {
        Some(h) => format!("{h}.{rest}"),
        None => rest.to_string(),
    })
}

/// What this OS does with a parameter, as `jailctl jail params` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsSupport {
    /// `enforced`, `recorded, not enforced`, ... on Linux; `kernel` on FreeBSD.
    pub support: &'static str,
    /// What enforcing it means on this OS (Linux: the capability or filter rule).
    pub effect: Option<&'static str>,
}

/// What this OS does with `p`.
#[cfg(target_os = "linux")]
pub fn support_on_this_os(p: &ParamSpec) -> OsSupport {
    OsSupport {
        support: match p.linux {
            LinuxSupport::Enforced => "enforced",
            LinuxSupport::Recorded => "recorded, not enforced",
            LinuxSupport::ReadOnly => "read-only",
            LinuxSupport::Unsupported => "not supported on Linux",
        },
        effect: super::confine::rule(p.name).map(|r| r.effect),
    }
}

/// What this OS does with `p`: the kernel enforces what it knows; a table entry the
/// running kernel lacks (a module not loaded, another release) is said so.
#[cfg(not(target_os = "linux"))]
pub fn support_on_this_os(p: &ParamSpec) -> OsSupport {
    OsSupport {
        support: if super::freebsd::in_kernel(p.name) {
            "kernel"
        } else {
            "not in the running kernel"
        },
        effect: None,
    }
}

/// What every jail of this OS is held to beyond its parameters, as lines of text
/// (Linux: the capabilities kept and the system calls refused; nothing on FreeBSD).
#[cfg(target_os = "linux")]
pub fn confinement_summary() -> Vec<String> {
    let base = super::confine::Policy::from_params(0, &Default::default())
        .map(|p| p.cap_names().join(" "))
        .unwrap_or_default();
    vec![
        format!("Linux: every jail keeps only {base};"),
        format!(
            "its seccomp filter refuses (EPERM): {}.",
            super::confine::DENIED_SYSCALLS.join(", ")
        ),
    ]
}

/// What every jail of this OS is held to beyond its parameters (nothing on FreeBSD).
#[cfg(not(target_os = "linux"))]
pub fn confinement_summary() -> Vec<String> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_names_and_lookup_works() {
        let mut names: Vec<_> = PARAMS.iter().map(|p| p.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate parameter in the table");
        assert_eq!(spec("host.hostname").unwrap().ty, Str(MAXHOSTNAMELEN));
    }

    #[test]
    fn unknown_parameter_is_named() {
        let e = JailParam::new("host.nosuch").unwrap_err();
        assert!(e.to_string().contains("host.nosuch"), "{e}");
    }

    #[test]
    fn integers_convert_and_reject() {
        let mut p = JailParam::new("securelevel").unwrap();
        p.import("3").unwrap();
        assert_eq!(p.value, Some(Value::Int(3)));
        assert_eq!(p.export(), "3");
        let e = p.import("three").unwrap_err().to_string();
        assert!(
            e.contains("securelevel") && e.contains("three") && e.contains("integer"),
            "{e}"
        );
        assert!(JailParam::new("host.hostid").unwrap().import("-1").is_err());
    }

    #[test]
    fn booleans_all_forms() {
        for (s, v) in [
            ("true", true),
            ("ON", true),
            ("yes", true),
            ("1", true),
            ("false", false),
            ("off", false),
            ("No", false),
            ("0", false),
        ] {
            let mut p = JailParam::new("persist").unwrap();
            p.import(s).unwrap();
            assert_eq!(p.value, Some(Value::Bool(v)), "{s}");
        }
        assert_eq!(
            parse_assignment("persist").unwrap().value,
            Some(Value::Bool(true))
        );
        assert_eq!(
            parse_assignment("nopersist").unwrap().value,
            Some(Value::Bool(false))
        );
        assert_eq!(
            parse_assignment("persist=false").unwrap().value,
            Some(Value::Bool(false))
        );
        assert!(parse_assignment("persist=maybe").is_err());
        assert!(parse_assignment("nopath").is_err());
        assert!(parse_assignment("path")
            .unwrap_err()
            .to_string()
            .contains("path"));
    }

    #[test]
    fn jailsys_and_addresses() {
        assert_eq!(
            parse_assignment("vnet=new").unwrap().value,
            Some(Value::JailSys(JailSys::New))
        );
        assert_eq!(
            parse_assignment("vnet=INHERIT").unwrap().export(),
            "inherit"
        );
        assert!(parse_assignment("vnet=yes-please").is_err());
        let p = parse_assignment("ip4.addr=198.18.0.1, em0|198.18.0.2/24").unwrap();
        assert_eq!(p.export(), "198.18.0.1,198.18.0.2");
        assert!(parse_assignment("ip4.addr=198.18.0.300")
            .unwrap_err()
            .to_string()
            .contains("IPv4"));
        assert_eq!(
            parse_assignment("ip6.addr=2001:db8::1").unwrap().export(),
            "2001:db8::1"
        );
        assert!(parse_assignment("ip6.addr=198.18.0.1").is_err());
    }

    #[test]
    fn strings_have_limits() {
        let long = "x".repeat(300);
        let e = parse_assignment(&format!("host.hostname={long}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("host.hostname") && e.contains("255"), "{e}");
        assert!(parse_assignment("name=web01").is_ok());
    }

    #[test]
    fn libjail_no_forms() {
        // libjail puts "no" on the last component; the older whole-name form stays.
        for (arg, name) in [
            ("allow.noraw_sockets", "allow.raw_sockets"),
            ("allow.nomount", "allow.mount"),
            ("allow.mount.nodevfs", "allow.mount.devfs"),
            ("noallow.mount", "allow.mount"),
            ("nopersist", "persist"),
        ] {
            let p = parse_assignment(arg).unwrap();
            assert_eq!(
                (p.name(), p.value),
                (name, Some(Value::Bool(false))),
                "{arg}"
            );
        }
        // Only booleans have a "no" form.
        assert!(parse_assignment("host.nohostname").is_err());
        assert!(parse_assignment("allow.nosuch").is_err());
    }

    #[test]
    fn kernel_only_integer_types() {
        let spec = |ty| ParamSpec {
            name: "k",
            ty,
            linux: LinuxSupport::Unsupported,
            create_only: false,
            descr: "",
        };
        let u = spec(UInt);
        assert_eq!(
            import_value(&u, "4294967295").unwrap(),
            Value::UInt(u32::MAX)
        );
        assert!(import_value(&u, "-1").is_err());
        let l = spec(Long);
        assert_eq!(import_value(&l, "-5").unwrap(), Value::Long(-5));
        assert_eq!(export_value(&Value::Long(i64::MIN)), i64::MIN.to_string());
        assert!(import_value(&l, "1.5").is_err());
    }

    #[test]
    fn import_raw_checks_type() {
        let mut p = JailParam::new("jid").unwrap();
        assert!(p.import_raw(Value::Str("1".into())).is_err());
        p.import_raw(Value::Int(7)).unwrap();
        assert_eq!(p.export(), "7");
    }
}
