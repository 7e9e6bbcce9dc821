//! Jails on Linux.
//!
//! A jail is a set of namespaces (mount, pid, uts, ipc, cgroup, and net when `vnet` is
//! set) around a root directory `path`, held by a small init: pid 1 of the jail's pid
//! namespace. The init reaps orphans, exits when the jail is removed (SIGTERM), and,
//! without `persist`, when no other process is left in the jail. Every mount it makes
//! (its root, `/proc`, a small `/dev`) lives only in the jail's own mount namespace, so
//! nothing leaks to the host and nothing needs unmounting when the jail goes.
//!
//! Jails are recorded in a registry directory, one JSON file per jail named
//! `JID.json`, written atomically (temporary file, fsync, rename) under an exclusive
//! `flock` on `.lock`. The directory is `/run/jaildaemon/jails`, or
//! `$JAILDAEMON_REGISTRY` when set (tests use their own). An entry records the init's
//! host pid and start time; an entry whose init is gone (or whose pid was reused) is
//! stale: it is removed by the next call, never trusted.
//!
//! Attaching ([`attach`]) enters all the jail's namespaces and its root. As joining a
//! pid namespace applies to children only, a process attached this way is in the jail
//! for everything but its own pid; the processes it forks are members in full (visible
//! to `ps` and `pkill` inside the jail). The caller must be single-threaded.
//!
//! Parameters that FreeBSD enforces and Linux cannot (`allow.*`, `sysv*`,
//! `devfs_ruleset`, `linux.*`) are refused with an error. `ip4=new` or `ip6=new` give
//! the jail a network stack of its own (only `lo` up) without the right to configure
//! it, which the host fills with the jail's addresses (see `manager::lifecycle::net`);
//! `vnet=new` gives one the jail configures itself. `ip4.addr`, `ip6.addr`,
//! `enforce_statfs`, `securelevel`, `children.max`, `host.hostuuid`, `host.hostid`,
//! `osrelease`, `osreldate` are recorded and read back but not enforced.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::confine::Policy;
use super::params::{JailParam, LinuxSupport, Value};
use super::{decide, Existing, Flags, JailError, JailInfo, Key, SetAction};
use crate::sys::linux as sys;

pub(crate) mod filter;
mod registry;
mod set;

#[allow(unused_imports)]
pub use registry::*;
#[allow(unused_imports)]
pub use set::*;

/// Environment variable that overrides the registry directory.
pub const REGISTRY_ENV: &str = "JAILDAEMON_REGISTRY";

/// Default registry directory.
pub const REGISTRY_DEFAULT: &str = "/run/jaildaemon/jails";

/// How long `remove` waits for the init to go before leaving the jail dying.
pub(super) const REMOVE_WAIT: Duration = Duration::from_secs(10);

/// Remove a jail: every process in it is killed, then the init exits. If the init has
/// not gone after a while the jail stays dying (and is cleaned when it goes).
pub fn remove(jid: i32) -> Result<(), JailError> {
    let e = {
        let reg = Registry::open()?;
        let entries = reg.entries()?;
        let mut e = entries
            .into_iter()
            .find(|e| e.jid == jid && !e.dying)
            .ok_or(JailError::NotFound {
                jail: jid.to_string(),
            })?;
        e.dying = true;
        reg.write(&e)?;
        e
    };
    kill_members(&e);
    crate::sys::unix::signal(e.init_pid, libc::SIGTERM)
        .map_err(|err| JailError::os(format!("jail \"{}\": signal init", e.name), err))?;
    let deadline = Instant::now() + REMOVE_WAIT;
    let mut pace = crate::sys::tool::Pacer::new(Duration::from_millis(5));
    while e.alive() && Instant::now() < deadline {
        pace.pause();
    }
    let reg = Registry::open()?;
    if !e.alive() {
        reg.delete(jid);
        e.remove_cgroup();
    } else {
        tracing::warn!(jid, name = %e.name, "jail init still running after removal; the jail stays dying");
    }
    Ok(())
}

/// Kill what is left of the jail, from the host: the processes attached with setns
/// that are not in its pid namespace (the init takes care of those that are).
pub(super) fn kill_members(e: &Entry) {
    signal_members(e.init_pid, libc::SIGKILL);
}

/// Signal the members of the jail whose init is `init` (the caller excluded): each
/// through a pidfd opened *before* its membership is checked again, so a pid freed
/// and reused by a host process in between is never signalled.
pub(super) fn signal_members(init: i32, sig: i32) -> usize {
    let me = std::process::id() as i32;
    let Some(id) = JailNs::of(init) else {
        return 0;
    };
    let mut n = 0;
    for pid in members(init) {
        if pid == me {
            continue;
        }
        let p = crate::sys::unix::ProcessRef::new(pid);
        if p.has_pidfd() && id.holds(pid) && p.signal(sig).is_ok() {
            n += 1;
        }
    }
    n
}

/// Signal every process of a jail, each through a pidfd opened before its membership
/// is checked again; returns how many. The members come from the jail's cgroup (see
/// [`members_of`]).
pub fn signal_processes(key: Key<'_>, sig: i32) -> Result<usize, JailError> {
    let e = entry_of(key)?;
    let me = std::process::id() as i32;
    let Some(id) = JailNs::of(e.init_pid) else {
        return Ok(0);
    };
    let mut n = 0;
    for pid in members_of(&e) {
        let p = crate::sys::unix::ProcessRef::new(pid);
        if pid != me && p.has_pidfd() && id.holds(pid) && p.signal(sig).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

fn entry_of(key: Key<'_>) -> Result<Entry, JailError> {
    let reg = Registry::open()?;
    let entries = reg.entries()?;
    find(&entries, key, false)
        .cloned()
        .ok_or_else(|| JailError::NotFound {
            jail: key.to_string(),
        })
}

/// Enter the jail, confined as its own processes are (see [`super::confine`]).
pub fn attach(key: Key<'_>) -> Result<(), JailError> {
    let e = entry_of(key)?;
    let c = e.confinement()?;
    sys::attach(e.init_pid, e.init_start, &c, &e.cgroup_procs())
        .map_err(|err| JailError::os(format!("jail {key}: attach"), err))
}

/// Host pids of the processes in the jail's pid namespace, and of processes attached
/// to its mount namespace, its init excluded.
pub fn processes(key: Key<'_>) -> Result<Vec<i32>, JailError> {
    Ok(members_of(&entry_of(key)?))
}

/// The live members of a jail, read from its devices cgroup when it has one and no
/// cgroup below it: every process of the jail is in it (the init's descendants, and
/// each attached process, which joins it as it enters). Each is checked to be in the
/// jail's namespaces; zombies and the init excluded. Without a cgroup: one scan of
/// /proc ([`members`]). The removal of a jail always scans /proc ([`kill_members`]).
pub(super) fn members_of(e: &Entry) -> Vec<i32> {
    let Some(procs) = e.cgroup.as_ref().map(|c| Path::new(c).join("cgroup.procs")) else {
        return members(e.init_pid);
    };
    // a cgroup below the jail's (made by the jail) lists its processes elsewhere
    let nested = procs
        .parent()
        .and_then(|d| fs::read_dir(d).ok())
        .is_none_or(|mut rd| rd.any(|d| d.is_ok_and(|d| d.file_type().is_ok_and(|t| t.is_dir()))));
    let Some(text) = (!nested).then(|| fs::read_to_string(&procs).ok()).flatten() else {
        return members(e.init_pid);
    };
    let Some(id) = JailNs::of(e.init_pid) else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&pid| pid != e.init_pid && matches!(sys::proc_start_time(pid), Some((_, false))))
        .filter(|&pid| id.holds(pid))
        .collect()
}

/// The jail's init and [`processes`].
pub fn all_processes(key: Key<'_>) -> Result<Vec<i32>, JailError> {
    let (init, _) = init_of(key)?;
    let mut out = vec![init];
    out.extend(members(init));
    Ok(out)
}

/// One scan of /proc for the live members of the jail whose init is `init`: its pid
/// namespace, or its mount namespace (attached but not forked yet); zombies and the
/// init excluded.
pub(super) fn members(init: i32) -> Vec<i32> {
    let Some(id) = JailNs::of(init) else {
        return vec![];
    };
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|d| d.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&pid| pid != init && matches!(sys::proc_start_time(pid), Some((_, false))))
        .filter(|&pid| id.holds(pid))
        .collect()
}

/// The pid and mount namespaces of a jail's init.
pub(super) struct JailNs {
    pub(super) pid: std::path::PathBuf,
    pub(super) mnt: Option<(u64, u64)>,
}

impl JailNs {
    pub(super) fn of(init: i32) -> Option<JailNs> {
        Some(JailNs {
            pid: fs::read_link(format!("/proc/{init}/ns/pid")).ok()?,
            mnt: sys::mnt_ns_id(init),
        })
    }

    /// Whether `pid` is in the jail's pid namespace, or attached to its mount
    /// namespace. A process whose namespaces cannot be read is not.
    pub(super) fn holds(&self, pid: i32) -> bool {
        fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&self.pid)
            || (self.mnt.is_some() && sys::mnt_ns_id(pid) == self.mnt)
    }
}

/// The jail's network namespace, opened from the init the registry recorded (checked
/// against its start time after opening).
pub fn net_handle(key: Key<'_>) -> Result<sys::net::NetHandle, JailError> {
    let (pid, start) = init_of(key)?;
    sys::net::NetHandle::of_init(pid, start)
        .map_err(|e| JailError::os(format!("jail {key}: network namespace"), e))
}
