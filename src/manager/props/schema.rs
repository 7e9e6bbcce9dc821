//! The property table: every property of iocage(8) with its type, default and source.

use super::{Kind, Prop, Source};
use Kind::*;
use Source::{Jail, Local, Login, Zfs};

pub(super) const RCTL_ACTIONS: &[&str] = &["deny", "log", "devctl"];

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
        true,
        "configure vnet0 with DHCP"
    ),
    prop!(
        "ip4_addr",
        Ip4List,
        "none",
        Jail,
        true,
        true,
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
        true,
        "IPv4 restriction"
    ),
    prop!(
        "ip6_addr",
        Ip6List,
        "none",
        Jail,
        true,
        true,
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
        true,
        "IPv6 restriction"
    ),
    prop!(
        "defaultrouter",
        Ip4OrNone,
        "none",
        Local,
        true,
        true,
        "IPv4 default route of a vnet jail"
    ),
    prop!(
        "defaultrouter6",
        Ip6OrNone,
        "none",
        Local,
        true,
        true,
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
        true,
        "vnet interfaces and their bridges"
    ),
    prop!(
        "vnet_default_interface",
        Str,
        "none",
        Local,
        true,
        false,
        "host interface a vnet jail's bridge is joined to (none: no uplink)"
    ),
    prop!(
        "vnet0_mac",
        Str,
        "none",
        Local,
        true,
        true,
        "MACs of vnet0, host side then jail side (none: derived from the UUID)"
    ),
    prop!("vnet1_mac", Str, "none", Local, true, true, "MACs of vnet1"),
    prop!("vnet2_mac", Str, "none", Local, true, true, "MACs of vnet2"),
    prop!("vnet3_mac", Str, "none", Local, true, true, "MACs of vnet3"),
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
    prop!(
        "depends",
        TagList,
        "none",
        Local,
        false,
        true,
        "tags of jails rcboot starts first and rcshutdown stops last"
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
        "origin",
        ReadOnly,
        "none",
        Local,
        false,
        true,
        "UUID@SNAPSHOT the jail was cloned from (none: no clone)"
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
        true,
        "enforce the resource limits below"
    ),
    prop!(
        "cpuset",
        Kind::Cpuset,
        "off",
        Source::Cpuset,
        false,
        true,
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
