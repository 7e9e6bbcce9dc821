//! Every Linux system call of the project that needs `unsafe`, in one place.
//!
//! The jail init ([`spawn_jail_init`]) runs after `fork()` in a process that may have
//! other threads (a test harness, say). From the fork to its exit it therefore uses
//! only raw system calls on buffers prepared before the fork: no allocation, no locks.

pub mod cgroup;
pub mod cgroup_fs;
pub mod cgroup_read;
pub use cgroup_fs as limits;
mod init;
mod init_loop;
mod init_setup;
pub mod net;
mod process;
mod rootdir;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sys::unix::pipe;
use std::path::Path;

#[allow(unused_imports)]
use init::*;
pub use init::{spawn_jail_init, InitHandle};
#[allow(unused_imports)]
use init_loop::*;
#[allow(unused_imports)]
use init_setup::*;
#[allow(unused_imports)]
use process::*;
pub use process::{attach, hostname, mnt_ns_id, proc_start_time, proc_state, set_names_in};
#[allow(unused_imports)]
use rootdir::*;
pub use rootdir::{mount_points, mount_sources, RootDir};

/// What the jail init needs, prepared before the fork.
pub struct InitConfig {
    /// Root directory of the jail (absolute, an existing directory).
    pub path: CString,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    /// Own network namespace (`vnet`).
    pub vnet: bool,
    /// Keep the jail when nothing else runs in it.
    pub persist: bool,
    /// What the jail's processes may do (applied to the init, then to every attach).
    pub confine: Confinement,
    pub userns: UserNsMode,
    /// `cgroup.procs` of the jail's devices cgroup (v1), joined before the namespaces.
    pub cgroup_procs: Option<CString>,
    /// `cgroup.procs` of the jail's resource-limit cgroups (`jailctl/NAME`, one per
    /// hierarchy), joined before the namespaces too: every jail process is in them
    /// from the start and the jail's cgroup namespace is rooted there.
    pub limit_procs: Vec<CString>,
}

/// The user namespace of a jail, as the system calls need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNsMode {
    None,
    /// uid/gid maps `0 0 4294967295`.
    Identity,
    /// uid/gid maps `0 BASE 65536`, the root directory mounted idmapped.
    Mapped {
        base: u32,
    },
}

/// Capabilities and system call filters of a jail, prepared before any fork.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Kept in the bounding, permitted and effective sets.
    pub caps: u64,
    /// seccomp programs, installed in order.
    pub filters: Vec<Vec<libc::sock_filter>>,
}

#[repr(C)]
pub(super) struct CapHeader {
    pub(super) version: u32,
    pub(super) pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct CapData {
    pub(super) effective: u32,
    pub(super) permitted: u32,
    pub(super) inheritable: u32,
}

pub(super) const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
pub(super) const CAP_SYS_PTRACE: u32 = 19;

/// Set the effective and permitted capability sets (inheritable empty). Raw system
/// call only.
pub(super) unsafe fn capset(effective: u64, permitted: u64) -> bool {
    let hdr = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: 0,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads one header and two data records from valid stack memory.
    unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) == 0 }
}

/// Confine the calling thread: non-dumpable, the seccomp filters (installed while
/// CAP_SYS_ADMIN is still held, so `no_new_privs` stays off and setuid programs in
/// the jail keep working), the bounding set, the ambient set, then permitted and
/// effective. `extra_permitted` stays in the permitted set only (the init keeps
/// CAP_SYS_PTRACE there to see processes attaching from the host). Raw system calls
/// only: usable between fork and exit. Returns the step that failed.
pub(super) unsafe fn confine_raw(
    c: &Confinement,
    extra_permitted: u64,
) -> Result<(), &'static str> {
    // SAFETY (whole function): prctl/seccomp/capset on valid stack or heap memory
    // prepared before any fork; no allocation.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err("make the process non-dumpable");
        }
        for f in &c.filters {
            let prog = libc::sock_fprog {
                len: f.len() as libc::c_ushort,
                filter: f.as_ptr() as *mut libc::sock_filter,
            };
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err("install the seccomp filter");
            }
        }
        for cap in 0..64u32 {
            if c.caps & (1u64 << cap) != 0 {
                continue;
            }
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                && errno() != libc::EINVAL
            {
                return Err("drop from the capability bounding set");
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            && errno() != libc::EINVAL
        {
            return Err("clear the ambient capabilities");
        }
        if !capset(c.caps, c.caps | extra_permitted) {
            return Err("set the capabilities");
        }
        Ok(())
    }
}

/// Linux has no flags that tar restores and that stop a removal: nothing to do.
pub fn clear_undeletable_flags(_tree: &std::path::Path) -> io::Result<()> {
    Ok(())
}

/// Where jailctl keeps locks and run states (a tmpfs on Linux).
pub const RUN_DIR: &str = "/run/jailctl";

/// This boot's identity (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}
