//! What a root inside a Linux jail may do: the capability set, the system call filter
//! and the user namespace, derived from the jail's parameters.
//!
//! A FreeBSD jail's root cannot load modules, change kernel settings, mount (unless
//! `allow.mount*`), use raw sockets (unless `allow.raw_sockets`), reach devices outside
//! its devfs ruleset or see anything outside the jail. A Linux jail gives the same
//! guarantee with four mechanisms, applied to every process that enters the jail (its
//! init, `jail exec`, the manager's hooks and console, jaildaemon probes):
//!
//! * **capabilities**: the bounding, permitted and effective sets are reduced to
//!   [`BASE_CAPS`] plus what the `allow.*` parameters grant ([`ALLOW_RULES`]); the
//!   inheritable and ambient sets are emptied. As the bounding set is reduced too, a
//!   setuid-root program inside gets no more (`no_new_privs` is *not* set: setuid
//!   programs work as in a FreeBSD jail).
//! * **a seccomp filter** ([`Policy::filters`]) refusing with `EPERM` what a FreeBSD
//!   jail cannot do (module loading, kexec, reboot, swap, accounting, the clock, BPF,
//!   perf, keyrings, file handles, userfaultfd, io_uring, namespaces, and mounting
//!   unless allowed), plus `ENOSYS` for `clone3` and the new mount API so that libc and
//!   mount tools fall back to the calls the filter can inspect. x32 system calls and
//!   foreign architectures are refused. The filter is built with the `seccompiler`
//!   crate (rust-vmm, Firecracker's): pure Rust, no C library to install, maintained.
//!   It is installed without `no_new_privs`, which the kernel allows to a process with
//!   CAP_SYS_ADMIN, before that capability is dropped.
//! * **non-dumpable processes**: every process of ours that lives in the jail is marked
//!   non-dumpable before it enters, so a jail root (without CAP_SYS_PTRACE) cannot open
//!   its `/proc/PID/exe`, `map_files`, `fd`, `root`, `mem` or `environ`: no host binary
//!   or library is reachable through /proc. We chose this over running from a sealed
//!   `memfd` copy because the memfd copy still maps the host's shared libraries (a
//!   `map_files` exposure of its own) and costs a copy of the binary per process; the
//!   kernel's own access check covers every /proc link at once.
//! * **mounts and devices** (set up by the init, see `sys::linux`): `/proc/sys`,
//!   `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus` read-only; `/proc/kcore`, `kmsg`,
//!   `keys`, `timer_list` masked; a small `/dev`; the jail root mounted `nodev`; a
//!   devices cgroup (v1) allowing only the nodes of FreeBSD's default devfs ruleset.
//!
//! A jail with `allow.mount.*` (or `linux.userns=identity`/`new`) gets its own user
//! namespace: its capabilities then count only for the namespaces it owns (its mounts,
//! hostname, SysV IPC), which is what lets it mount tmpfs or set its hostname without
//! any power over the host.

use std::collections::BTreeMap;

/// Linux capability numbers and names (linux/capability.h).
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability by name (`CAP_NET_RAW` → 13).
pub fn cap(name: &str) -> u32 {
    CAP_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

const fn bit(n: u32) -> u64 {
    1u64 << n
}

/// What root in every jail keeps: ownership and permission overrides, signals to its
/// own processes, credentials, binding ports below 1024, chroot, leases, audit writes
/// and file capabilities — what FreeBSD's `prison_priv_check` grants a jail's root.
pub const BASE_CAPS: u64 = bit(0) // CHOWN
    | bit(1) // DAC_OVERRIDE
    | bit(3) // FOWNER
    | bit(4) // FSETID
    | bit(5) // KILL
    | bit(6) // SETGID
    | bit(7) // SETUID
    | bit(8) // SETPCAP (can only lower the bounding set further)
    | bit(10) // NET_BIND_SERVICE
    | bit(15) // IPC_OWNER
    | bit(18) // SYS_CHROOT
    | bit(28) // LEASE
    | bit(29) // AUDIT_WRITE
    | bit(31); // SETFCAP

/// How one jail parameter changes a Linux jail's confinement (for `jail params` and the
/// manual page).
pub struct AllowRule {
    pub param: &'static str,
    /// Capabilities it adds to [`BASE_CAPS`].
    pub caps: &'static [&'static str],
    pub effect: &'static str,
}

/// Every `allow.*` (and related) parameter with what it controls on Linux.
pub const ALLOW_RULES: &[AllowRule] = &[
    AllowRule {
        param: "allow.raw_sockets",
        caps: &["CAP_NET_RAW"],
        effect: "CAP_NET_RAW: raw and packet sockets (ping)",
    },
    AllowRule {
        param: "allow.chflags",
        caps: &["CAP_LINUX_IMMUTABLE"],
        effect: "CAP_LINUX_IMMUTABLE: chattr +i/+a (withheld at securelevel >= 1)",
    },
    AllowRule {
        param: "allow.mlock",
        caps: &["CAP_IPC_LOCK"],
        effect: "CAP_IPC_LOCK: mlock(2) beyond RLIMIT_MEMLOCK",
    },
    AllowRule {
        param: "allow.read_msgbuf",
        caps: &["CAP_SYSLOG"],
        effect: "CAP_SYSLOG: read the kernel message buffer (dmesg)",
    },
    AllowRule {
        param: "vnet",
        caps: &["CAP_NET_ADMIN"],
        effect: "vnet=new: CAP_NET_ADMIN over the jail's own network stack only",
    },
    AllowRule {
        param: "allow.mount",
        caps: &[],
        effect: "with an allow.mount.* below: mount(2)/umount2(2) pass the filter, in the jail's own user namespace",
    },
    AllowRule {
        param: "allow.mount.tmpfs",
        caps: &["CAP_SYS_ADMIN"],
        effect: "own user namespace (identity map), CAP_SYS_ADMIN there only; mount(2) of tmpfs, devpts, mqueue, ramfs",
    },
    AllowRule {
        param: "allow.mount.devfs",
        caps: &["CAP_SYS_ADMIN"],
        effect: "as allow.mount.tmpfs (devpts instances)",
    },
    AllowRule {
        param: "allow.mount.fdescfs",
        caps: &["CAP_SYS_ADMIN"],
        effect: "as allow.mount.tmpfs",
    },
    AllowRule {
        param: "allow.mount.procfs",
        caps: &["CAP_SYS_ADMIN"],
        effect: "as allow.mount.tmpfs (the kernel refuses a second procfs: the pid namespace is the host's)",
    },
    AllowRule {
        param: "allow.mount.nullfs",
        caps: &["CAP_SYS_ADMIN"],
        effect: "own user namespace; mount(2) with MS_BIND (bind mounts of the jail's own files)",
    },
    AllowRule {
        param: "allow.set_hostname",
        caps: &[],
        effect: "works only with a user namespace (linux.userns=identity|new or allow.mount.*): CAP_SYS_ADMIN there; refused (EPERM) otherwise",
    },
    AllowRule {
        param: "allow.sysvipc",
        caps: &[],
        effect: "always on: every jail has its own SysV IPC namespace",
    },
    AllowRule {
        param: "allow.reserved_ports",
        caps: &["CAP_NET_BIND_SERVICE"],
        effect: "always on: CAP_NET_BIND_SERVICE is in the base set",
    },
    AllowRule {
        param: "linux.userns",
        caps: &[],
        effect: "disable (default): no user namespace (a vnet=new jail gets identity); identity: own user namespace, uids unchanged; new: uids 0-65535 mapped to an unprivileged host range, root idmapped",
    },
    AllowRule {
        param: "securelevel",
        caps: &[],
        effect: ">= 1 withholds CAP_LINUX_IMMUTABLE even with allow.chflags; the root stays writable (recorded otherwise)",
    },
];

/// The Linux rule of a parameter, if it has one.
pub fn rule(param: &str) -> Option<&'static AllowRule> {
    ALLOW_RULES.iter().find(|r| r.param == param)
}

/// The user namespace of a jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNs {
    /// None: the jail's processes are in the host's user namespace.
    Disabled,
    /// Its own user namespace with uids and gids mapped to themselves: files keep
    /// their owners; capabilities count only for the jail's own namespaces.
    Identity,
    /// Its own user namespace with uids/gids 0-65535 mapped to `base`..`base+65535`
    /// on the host; the root directory is mounted idmapped so files keep their owners.
    Mapped { base: u32 },
}

/// Size of the uid/gid range of a mapped jail.
pub const MAPPED_RANGE: u32 = 65536;

/// First host uid of jail `jid`'s range in `linux.userns=new` mode.
pub fn mapped_base(jid: i32) -> u32 {
    1_000_000u32.saturating_add((jid.max(0) as u32).saturating_mul(MAPPED_RANGE))
}

/// A jail's confinement, computed from its parameters (exported strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Capabilities kept in the bounding, permitted and effective sets.
    pub caps: u64,
    pub userns: UserNs,
    /// mount(2)/umount2(2) pass the filter (non-bind mounts).
    pub mount_fs: bool,
    /// mount(2) with MS_BIND passes the filter.
    pub mount_bind: bool,
    /// sethostname(2)/setdomainname(2) pass the filter (`allow.set_hostname`; the
    /// kernel still requires a user namespace).
    pub set_hostname: bool,
}

/// Parse a boolean parameter value as exported (`true`/`false`).
fn on(params: &BTreeMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .map(|v| matches!(v.as_str(), "true" | "1" | "on" | "yes"))
        .unwrap_or(false)
}

/// Problems with `linux.userns`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("linux.userns: \"{0}\" is not a user namespace mode: use disable, identity or new")]
    UserNs(String),
}

impl Policy {
    pub fn from_params(jid: i32, params: &BTreeMap<String, String>) -> Result<Policy, PolicyError> {
        let mut caps = BASE_CAPS;
        for r in ALLOW_RULES.iter().filter(|r| r.param.starts_with("allow.")) {
            if r.param.starts_with("allow.mount") || !on(params, r.param) {
                continue;
            }
            for c in r.caps {
                caps |= bit(cap(c));
            }
        }
        let vnet = params.get("vnet").map(String::as_str) == Some("new");
        if vnet {
            caps |= bit(cap("CAP_NET_ADMIN"));
        }
        let securelevel: i64 = params
            .get("securelevel")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        if securelevel >= 1 {
            caps &= !bit(cap("CAP_LINUX_IMMUTABLE"));
        }
        let mount_fs = ["tmpfs", "devfs", "fdescfs", "procfs"]
            .iter()
            .any(|fs| on(params, &format!("allow.mount.{fs}")));
        let mount_bind = on(params, "allow.mount.nullfs");
        let userns = match params.get("linux.userns").map(String::as_str) {
            None | Some("") | Some("disable") | Some("inherit") => {
                if mount_fs || mount_bind {
                    UserNs::Identity
                } else {
                    UserNs::Disabled
                }
            }
            Some("identity") => UserNs::Identity,
            Some("new") => UserNs::Mapped {
                base: mapped_base(jid),
            },
            Some(other) => return Err(PolicyError::UserNs(other.into())),
        };
        if userns != UserNs::Disabled {
            // Counts only for the namespaces the jail owns (mounts, hostname, IPC).
            caps |= bit(cap("CAP_SYS_ADMIN"));
        }
        // A VNET jail's network stack is always owned by a user namespace of the
        // jail, so that its CAP_NET_ADMIN counts there only: in a stack owned by the
        // host's, it would also count for any stack the jail can name by a netns id
        // (the host's, once a veth links them), through IFLA_TARGET_NETNSID.
        let userns = if vnet && userns == UserNs::Disabled {
            UserNs::Identity
        } else {
            userns
        };
        Ok(Policy {
            caps,
            userns,
            mount_fs,
            mount_bind,
            set_hostname: on(params, "allow.set_hostname"),
        })
    }

    /// Names of the kept capabilities.
    pub fn cap_names(&self) -> Vec<&'static str> {
        (0..CAP_NAMES.len())
            .filter(|&i| self.caps & bit(i as u32) != 0)
            .map(|i| CAP_NAMES[i])
            .collect()
    }
}

/// System calls refused with EPERM in every jail.
pub const DENIED_SYSCALLS: &[&str] = &[
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "setns",
    "unshare",
    "pivot_root",
    "iopl",
    "ioperm",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "vhangup",
    "fanotify_init",
    "syslog (unless allow.read_msgbuf)",
    "sethostname, setdomainname (unless allow.set_hostname)",
    "mount, umount2 (unless allow.mount.*)",
    "clone with CLONE_NEW* flags",
];

#[cfg(target_os = "linux")]
pub use super::linux::filter::{filters, SockFilter};

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_jail_keeps_only_the_base_set() {
        let p = Policy::from_params(1, &params(&[])).unwrap();
        assert_eq!(p.caps, BASE_CAPS);
        assert_eq!(p.userns, UserNs::Disabled);
        for dropped in [
            "CAP_SYS_ADMIN",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_PTRACE",
            "CAP_SYS_BOOT",
            "CAP_SYS_TIME",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYSLOG",
            "CAP_MAC_ADMIN",
            "CAP_MAC_OVERRIDE",
            "CAP_AUDIT_CONTROL",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_CHECKPOINT_RESTORE",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_MKNOD",
            "CAP_LINUX_IMMUTABLE",
            "CAP_IPC_LOCK",
            "CAP_DAC_READ_SEARCH",
        ] {
            assert_eq!(p.caps & bit(cap(dropped)), 0, "{dropped} must be dropped");
        }
        assert!(!p.cap_names().contains(&"CAP_SYS_ADMIN"));
    }

    #[test]
    fn allow_parameters_add_exactly_their_capability() {
        let p = Policy::from_params(1, &params(&[("allow.raw_sockets", "true")])).unwrap();
        assert_eq!(p.caps ^ BASE_CAPS, bit(cap("CAP_NET_RAW")));
        let p = Policy::from_params(1, &params(&[("allow.chflags", "true")])).unwrap();
        assert_eq!(p.caps ^ BASE_CAPS, bit(cap("CAP_LINUX_IMMUTABLE")));
        let p = Policy::from_params(
            1,
            &params(&[("allow.chflags", "true"), ("securelevel", "1")]),
        )
        .unwrap();
        assert_eq!(p.caps, BASE_CAPS);
        let p = Policy::from_params(1, &params(&[("vnet", "new")])).unwrap();
        assert_eq!(p.caps ^ BASE_CAPS, bit(cap("CAP_NET_ADMIN")));
        assert_eq!(p.userns, UserNs::Identity, "vnet: a stack the jail owns");
        let p =
            Policy::from_params(1, &params(&[("vnet", "new"), ("linux.userns", "new")])).unwrap();
        assert!(matches!(p.userns, UserNs::Mapped { .. }));
        let p = Policy::from_params(1, &params(&[("allow.raw_sockets", "false")])).unwrap();
        assert_eq!(p.caps, BASE_CAPS);
    }

    #[test]
    fn mounting_brings_a_user_namespace() {
        let p = Policy::from_params(1, &params(&[("allow.mount.tmpfs", "true")])).unwrap();
        assert_eq!(p.userns, UserNs::Identity);
        assert!(p.mount_fs && !p.mount_bind);
        assert_ne!(p.caps & bit(cap("CAP_SYS_ADMIN")), 0);
        let p = Policy::from_params(7, &params(&[("linux.userns", "new")])).unwrap();
        assert_eq!(
            p.userns,
            UserNs::Mapped {
                base: 1_000_000 + 7 * 65536
            }
        );
        assert!(!p.mount_fs);
        assert_eq!(
            Policy::from_params(1, &params(&[("linux.userns", "maybe")])),
            Err(PolicyError::UserNs("maybe".into()))
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn filters_compile_with_the_x32_guard() {
        let p = Policy::from_params(1, &params(&[])).unwrap();
        let f = filters(&p);
        assert_eq!(f.len(), 2);
        for prog in &f {
            assert!(prog.len() > 6 && prog.len() < 4096);
            assert_eq!(prog[4].k, 0x4000_0000);
            assert!(prog
                .iter()
                .all(|i| !(i.code == 0x06 && i.k == libc::SECCOMP_RET_KILL_PROCESS)));
        }
    }
}
