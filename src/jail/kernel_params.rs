//! The FreeBSD kernel's own list of jail parameters, read the way libjail's
//! `jailparam_all` and `jailparam_type` read it, as pure functions over the raw
//! `security.jail.param` sysctl data (gathered by `sys::freebsd::sysctl` on FreeBSD),
//! so they are unit-tested on every OS.
//!
//! How the kernel describes a parameter:
//! * each is a leaf `security.jail.param.NAME`; its kind (`oid_kind & CTLTYPE`) is the
//!   C type and its format string refines it: `B` a boolean and `E,jailsys` a
//!   disable/new/inherit setting (both `CTLTYPE_INT`), `S,in_addr` / `S,in6_addr` an
//!   address (`,a`: an array of them), `A` a string whose sysctl value is its maximum
//!   length;
//! * a parameter that is also a node (`host`, `ip4`, `allow.mount`, `zfs`, ...) is
//!   described by an empty-named child, whose name ends in a dot
//!   (`security.jail.param.allow.mount.`);
//! * a boolean's "no" form (`allow.nomount`, `nopersist`) is not in the list: libjail
//!   derives it (see [`super::params::no_counterpart`]); a kernel that did list one
//!   beside its boolean has it dropped here as an alias;
//! * `CTLFLAG_RD` without `CTLFLAG_WR` is read-only (`dying`, `parent`), and with
//!   `CTLFLAG_TUN` settable only when the jail is created (`path`, `vnet`, `jid`).

use super::params::{LinuxSupport, ParamSpec, ParamType};

/// The sysctl prefix of every jail parameter.
pub const PREFIX: &str = "security.jail.param.";

/// `<sys/sysctl.h>` kinds and flags (FreeBSD values; checked against libc at compile
/// time on FreeBSD).
pub mod kind {
    pub const CTLTYPE: u32 = 0xf;
    pub const NODE: u32 = 1;
    pub const INT: u32 = 2;
    pub const STRING: u32 = 3;
    pub const S64: u32 = 4;
    pub const OPAQUE: u32 = 5;
    pub const UINT: u32 = 6;
    pub const LONG: u32 = 7;
    pub const ULONG: u32 = 8;
    pub const U64: u32 = 9;
    pub const U32: u32 = 0xf;
    pub const RD: u32 = 0x8000_0000;
    pub const WR: u32 = 0x4000_0000;
    pub const TUN: u32 = 0x0008_0000;
}

/// One leaf below `security.jail.param`, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawParam {
    /// The full sysctl name (`security.jail.param.allow.mount.`).
    pub name: String,
    /// `oid_kind`: type and flags.
    pub kind: u32,
    /// The format string (`I`, `IU`, `L`, `LU`, `B`, `E,jailsys`, `A`, `S,in_addr,a`).
    pub fmt: String,
    pub descr: String,
    /// For a string, the sysctl's value: the maximum length, in decimal.
    pub value: Option<String>,
}

/// A kernel parameter, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelParam {
    pub name: String,
    pub ty: ParamType,
    pub read_only: bool,
    pub create_only: bool,
    pub descr: String,
}

/// The parameter name of a sysctl name: the prefix and a node's trailing dot removed.
/// None outside `security.jail.param` or for an empty name.
pub fn param_name(sysctl_name: &str) -> Option<&str> {
    let rest = sysctl_name.strip_prefix(PREFIX)?;
    let rest = rest.strip_suffix('.').unwrap_or(rest);
    (!rest.is_empty()).then_some(rest)
}

/// Our type for a kernel kind and format (`value`: a string's sysctl value, its
/// maximum length). None for what libjail cannot convert either (other structs, the
/// small integer kinds, a node without its describing child).
pub fn param_type(kind_bits: u32, fmt: &str, value: Option<&str>) -> Option<ParamType> {
    let (fmt, array) = match fmt.strip_suffix(",a") {
        Some(f) => (f, true),
        None => (fmt, false),
    };
    let ty = match kind_bits & kind::CTLTYPE {
        kind::INT if fmt.starts_with('B') => ParamType::Bool,
        kind::INT if fmt == "E,jailsys" => ParamType::JailSys,
        kind::INT => ParamType::Int,
        // what libjail converts: INT, UINT, LONG, ULONG, QUAD (= S64), STRING, STRUCT
        kind::UINT => ParamType::UInt,
        kind::LONG | kind::S64 => ParamType::Long,
        kind::ULONG => ParamType::ULong,
        kind::STRING => {
            let max: usize = value?.trim().parse().ok()?;
            if max == 0 {
                return None;
            }
            ParamType::Str(max)
        }
        kind::OPAQUE if fmt == "S,in_addr" => ParamType::Ip4List,
        kind::OPAQUE if fmt == "S,in6_addr" => ParamType::Ip6List,
        _ => return None,
    };
    // Only addresses come as arrays; an array of anything else is not understood.
    if array && !matches!(ty, ParamType::Ip4List | ParamType::Ip6List) {
        return None;
    }
    Some(ty)
}

/// One raw leaf as a typed parameter, or None when it cannot be used.
pub fn classify(raw: &RawParam) -> Option<KernelParam> {
    let name = param_name(&raw.name)?;
    let ty = param_type(raw.kind, &raw.fmt, raw.value.as_deref())?;
    let writable = raw.kind & kind::WR != 0;
    let tunable = raw.kind & kind::TUN != 0;
    Some(KernelParam {
        name: name.to_string(),
        ty,
        read_only: !writable && !tunable,
        create_only: !writable && tunable,
        descr: raw.descr.clone(),
    })
}

/// The kernel's parameter list: every usable leaf, in the kernel's order, without
/// duplicates and without a boolean's "no" alias when the boolean itself is listed.
pub fn from_sysctl(raws: &[RawParam]) -> Vec<KernelParam> {
    let all: Vec<KernelParam> = raws.iter().filter_map(classify).collect();
    let is_bool = |n: &str| all.iter().any(|k| k.name == n && k.ty == ParamType::Bool);
    let mut out: Vec<KernelParam> = Vec::new();
    for k in &all {
        let alias = k.ty == ParamType::Bool
            && super::params::no_counterpart(&k.name).is_some_and(|b| is_bool(&b));
        if !alias && !out.iter().any(|o| o.name == k.name) {
            out.push(k.clone());
        }
    }
    out
}

/// A known parameter and whether the running kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub spec: ParamSpec,
    pub in_kernel: bool,
}

/// The parameters known on a FreeBSD host: the table first, in its order, each typed
/// by the kernel when the kernel has it (a table entry it lacks stays, so libjail can
/// still load its module or report it), then every kernel parameter the table lacks
/// with the kernel's type, flags and description. Names and descriptions of those are
/// leaked: this runs once per process.
pub fn merge(table: &[ParamSpec], kernel: &[KernelParam]) -> Vec<Known> {
    let mut out: Vec<Known> = table
        .iter()
        .map(|t| match kernel.iter().find(|k| k.name == t.name) {
            Some(k) => Known {
                spec: ParamSpec {
                    ty: k.ty,
                    create_only: t.create_only || k.create_only,
                    ..*t
                },
                in_kernel: true,
            },
            None => Known {
                spec: *t,
                in_kernel: false,
            },
        })
        .collect();
    for k in kernel {
        if table.iter().any(|t| t.name == k.name) {
            continue;
        }
        out.push(Known {
            spec: ParamSpec {
                name: Box::leak(k.name.clone().into_boxed_str()),
                ty: k.ty,
                linux: if k.read_only {
                    LinuxSupport::ReadOnly
                } else {
                    LinuxSupport::Unsupported
                },
                create_only: k.create_only,
                descr: Box::leak(k.descr.clone().into_boxed_str()),
            },
            in_kernel: true,
        });
    }
    out
}

/// When the kernel's list cannot be read: the table alone, as before.
pub fn table_only(table: &[ParamSpec]) -> Vec<Known> {
    table
        .iter()
        .map(|t| Known {
            spec: *t,
            in_kernel: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jail::params::PARAMS;

    const RW: u32 = 0xc000_0000;
    const RDTUN: u32 = 0x8008_0000;
    const MPSAFE: u32 = 0x0004_0000;

    fn raw(name: &str, kind: u32, fmt: &str, value: Option<&str>) -> RawParam {
        RawParam {
            name: format!("security.jail.param.{name}"),
            kind: kind | MPSAFE,
            fmt: fmt.into(),
            descr: format!("{name} (kernel)"),
            value: value.map(str::to_string),
        }
    }

    /// A FreeBSD 15 amd64 host with vmm and zfs loaded, as `sysctl.next` walks
    /// `security.jail.param` (the declarations of kern_jail.c, kern_jailmeta.c,
    /// vmm(4)'s prison_add_allow and OpenZFS's zfs node; `linux` from linux.ko).
    fn freebsd15() -> Vec<RawParam> {
        use kind::*;
        vec![
            raw("jid", INT | RDTUN, "I", None),
            raw("parent", INT | RD, "I", None),
            raw("name", STRING | RW, "A", Some("256")),
            raw("path", STRING | RDTUN, "A", Some("1024")),
            raw("securelevel", INT | RW, "I", None),
            raw("osreldate", INT | RDTUN, "I", None),
            raw("osrelease", STRING | RDTUN, "A", Some("32")),
            raw("enforce_statfs", INT | RW, "I", None),
            raw("devfs_ruleset", INT | RW, "I", None),
            raw("persist", INT | RW, "B", None),
            raw("vnet", INT | RDTUN, "E,jailsys", None),
            raw("dying", INT | RD, "B", None),
            raw("children.cur", INT | RD, "I", None),
            raw("children.max", INT | RW, "I", None),
            raw("host.", INT | RW, "E,jailsys", None),
            raw("host.hostname", STRING | RW, "A", Some("256")),
            raw("host.domainname", STRING | RW, "A", Some("256")),
            raw("host.hostuuid", STRING | RW, "A", Some("64")),
            raw("host.hostid", ULONG | RW, "LU", None),
            raw("cpuset.id", INT | RD, "I", None),
            raw("ip4.", INT | RDTUN, "E,jailsys", None),
            raw("ip4.addr", OPAQUE | RW, "S,in_addr,a", Some("4")),
            raw("ip4.saddrsel", INT | RW, "B", None),
            raw("ip6.", INT | RDTUN, "E,jailsys", None),
            raw("ip6.addr", OPAQUE | RW, "S,in6_addr,a", Some("16")),
            raw("ip6.saddrsel", INT | RW, "B", None),
            raw("allow.set_hostname", INT | RW, "B", None),
            raw("allow.sysvipc", INT | RW, "B", None),
            raw("allow.mount.", INT | RW, "B", None),
            raw("allow.mount.devfs", INT | RW, "B", None),
            raw("allow.mount.nullfs", INT | RW, "B", None),
            raw("allow.mount.zfs", INT | RW, "B", None),
            raw("allow.vmm", INT | RW, "B", None),
            raw("zfs.", INT | RW, "E,jailsys", None),
            raw("zfs.mount_snapshot", INT | RW, "I", None),
            raw("meta", STRING | RW, "A,keyvalue", Some("4096")),
            raw("env", STRING | RW, "A,keyvalue", Some("4096")),
            raw("linux.", INT | RW, "E,jailsys", None),
            raw("linux.osname", STRING | RW, "A", Some("65")),
            raw("linux.oss_version", INT | RW, "I", None),
        ]
    }

    fn by_name<'a>(ks: &'a [KernelParam], n: &str) -> &'a KernelParam {
        ks.iter()
            .find(|k| k.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    }

    #[test]
    fn names_lose_the_prefix_and_a_node_dot() {
        assert_eq!(
            param_name("security.jail.param.allow.mount."),
            Some("allow.mount")
        );
        assert_eq!(param_name("security.jail.param.host."), Some("host"));
        assert_eq!(param_name("security.jail.param.persist"), Some("persist"));
        assert_eq!(param_name("security.jail.param."), None);
        assert_eq!(param_name("security.jail.enforce_statfs"), None);
    }

    #[test]
    fn kinds_and_formats_become_types() {
        use kind::*;
        assert_eq!(param_type(INT | RW, "I", None), Some(ParamType::Int));
        assert_eq!(param_type(INT | RW, "B", None), Some(ParamType::Bool));
        assert_eq!(
            param_type(INT | RW, "E,jailsys", None),
            Some(ParamType::JailSys)
        );
        assert_eq!(param_type(UINT | RW, "IU", None), Some(ParamType::UInt));
        // kinds libjail does not convert are left out, not offered and then refused
        assert_eq!(param_type(U32 | RW, "IU", None), None);
        assert_eq!(param_type(LONG | RW, "L", None), Some(ParamType::Long));
        assert_eq!(param_type(S64 | RW, "Q", None), Some(ParamType::Long));
        assert_eq!(param_type(ULONG | RW, "LU", None), Some(ParamType::ULong));
        assert_eq!(param_type(U64 | RW, "QU", None), None);
        assert_eq!(
            param_type(STRING | RW, "A", Some("256")),
            Some(ParamType::Str(256))
        );
        assert_eq!(param_type(STRING | RW, "A", None), None);
        assert_eq!(
            param_type(OPAQUE | RW, "S,in_addr,a", None),
            Some(ParamType::Ip4List)
        );
        assert_eq!(
            param_type(OPAQUE | RW, "S,in6_addr,a", None),
            Some(ParamType::Ip6List)
        );
        assert_eq!(
            param_type(OPAQUE | RW, "S,in_addr", None),
            Some(ParamType::Ip4List)
        );
        assert_eq!(param_type(OPAQUE | RW, "S,timeval", None), None);
        assert_eq!(param_type(INT | RW, "I,a", None), None);
        assert_eq!(param_type(NODE | RW, "N", None), None);
    }

    #[test]
    fn the_kernel_list_is_read_as_libjail_reads_it() {
        let ks = from_sysctl(&freebsd15());
        assert_eq!(ks.len(), freebsd15().len());
        assert_eq!(by_name(&ks, "allow.mount").ty, ParamType::Bool);
        assert_eq!(by_name(&ks, "host").ty, ParamType::JailSys);
        assert_eq!(by_name(&ks, "zfs").ty, ParamType::JailSys);
        assert_eq!(by_name(&ks, "zfs.mount_snapshot").ty, ParamType::Int);
        assert_eq!(by_name(&ks, "allow.vmm").ty, ParamType::Bool);
        assert_eq!(by_name(&ks, "meta").ty, ParamType::Str(4096));
        assert_eq!(by_name(&ks, "ip6.addr").ty, ParamType::Ip6List);
        let dying = by_name(&ks, "dying");
        assert!(dying.read_only && !dying.create_only);
        let path = by_name(&ks, "path");
        assert!(path.create_only && !path.read_only);
        let persist = by_name(&ks, "persist");
        assert!(!persist.create_only && !persist.read_only);
        assert_eq!(by_name(&ks, "env").descr, "env (kernel)");
    }

    #[test]
    fn no_aliases_and_unusable_leaves_are_dropped() {
        use kind::*;
        let mut raws = freebsd15();
        raws.push(raw("nopersist", INT | RW, "B", None));
        raws.push(raw("allow.nomount", INT | RW, "B", None));
        raws.push(raw("ip4.addr", OPAQUE | RW, "S,in_addr,a", None));
        raws.push(raw("weird", OPAQUE | RW, "S,xucred", None));
        raws.push(raw("", NODE, "N", None));
        // A boolean whose name merely starts with "no" stays when nothing negates it.
        raws.push(raw("allow.nolimit", INT | RW, "B", None));
        let ks = from_sysctl(&raws);
        let names: Vec<&str> = ks.iter().map(|k| k.name.as_str()).collect();
        assert!(!names.contains(&"nopersist") && !names.contains(&"allow.nomount"));
        assert!(!names.contains(&"weird"));
        assert!(names.contains(&"allow.nolimit"));
        assert_eq!(names.iter().filter(|n| **n == "ip4.addr").count(), 1);
    }

    #[test]
    fn merge_keeps_the_table_and_adds_the_kernel_s_own() {
        let ks = from_sysctl(&freebsd15());
        let known = merge(PARAMS, &ks);
        // The table first, in its order, all of it.
        for (k, t) in known.iter().zip(PARAMS) {
            assert_eq!(k.spec.name, t.name);
            assert_eq!(k.spec.descr, t.descr);
        }
        let get = |n: &str| known.iter().find(|k| k.spec.name == n).unwrap();
        // Typed by the kernel where it differs from the table.
        assert_eq!(get("linux.osname").spec.ty, ParamType::Str(65));
        assert!(get("persist").in_kernel);
        // Table entries this kernel lacks stay, marked.
        assert!(!get("allow.mount.tmpfs").in_kernel);
        assert!(!get("linux.userns").in_kernel);
        // Kernel parameters the table lacks are added, typed by the kernel.
        let vmm = get("allow.vmm");
        assert!(vmm.in_kernel);
        assert_eq!(vmm.spec.ty, ParamType::Bool);
        assert_eq!(vmm.spec.linux, LinuxSupport::Unsupported);
        assert_eq!(get("zfs.mount_snapshot").spec.ty, ParamType::Int);
        assert_eq!(get("meta").spec.descr, "meta (kernel)");
        for n in ["zfs", "env", "linux.oss_version"] {
            assert!(known.iter().any(|k| k.spec.name == n), "{n}");
        }
        let mut names: Vec<&str> = known.iter().map(|k| k.spec.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(n, names.len(), "duplicates");
    }

    #[test]
    fn kernel_params_parse_as_assignments() {
        use crate::jail::params::{import_value, no_counterpart, Value};
        let ks = from_sysctl(&freebsd15());
        let known = merge(PARAMS, &ks);
        let get = |n: &str| &known.iter().find(|k| k.spec.name == n).unwrap().spec;
        assert_eq!(
            import_value(get("zfs.mount_snapshot"), "1").unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            import_value(get("allow.vmm"), "yes").unwrap(),
            Value::Bool(true)
        );
        assert!(import_value(get("meta"), &"x".repeat(5000)).is_err());
        assert_eq!(no_counterpart("allow.novmm").as_deref(), Some("allow.vmm"));
        assert_eq!(
            no_counterpart("allow.mount.nozfs").as_deref(),
            Some("allow.mount.zfs")
        );
        assert_eq!(no_counterpart("nopersist").as_deref(), Some("persist"));
        assert_eq!(no_counterpart("allow.mount"), None);
        assert_eq!(no_counterpart("no"), None);
    }

    #[test]
    fn table_only_is_the_table() {
        let t = table_only(PARAMS);
        assert_eq!(t.len(), PARAMS.len());
        assert!(t.iter().all(|k| k.in_kernel));
    }
}
