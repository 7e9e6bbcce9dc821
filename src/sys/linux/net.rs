//! A jail's network namespace, named by a kernel handle, and the `ip` tool run in it.
//!
//! The handle is `/proc/PID/ns/net` of the jail's init, opened from the pid the jail
//! layer recorded when it forked the init, and checked against the init's start time
//! *after* opening (a pid reused in between is refused). Nothing a jail says about
//! itself names the namespace.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;

use crate::sys::tool::{run_prepared, ToolError};

/// The descriptor a command gets the namespace on, for `ip link set X netns PATH`.
const NS_FD: i32 = 3;

/// A jail's network namespace.
#[derive(Debug)]
pub struct NetHandle(File);

impl NetHandle {
    /// The network namespace of the jail init `pid` started at `start` (clock ticks
    /// since boot, as recorded by the jail layer).
    pub fn of_init(pid: i32, start: u64) -> io::Result<NetHandle> {
        let f = super::process::open_ns(pid, "net")?;
        if super::proc_start_time(pid).map(|t| t.0) != Some(start) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(NetHandle(f))
    }

    /// Whether this is the namespace the calling process is in (a jail without a
    /// network stack of its own).
    pub fn is_host(&self) -> bool {
        File::open("/proc/self/ns/net")
            .map(|me| super::process::same_file(&self.0, &me))
            .unwrap_or(true)
    }
}

/// Run `program args...` inside the namespace: the child enters it before exec. The
/// program is the host's (resolved on the host's file system, which the child keeps).
pub fn run_in(h: &NetHandle, program: &str, args: &[String]) -> Result<String, ToolError> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.args(args);
    let fd = h.0.as_raw_fd();
    // SAFETY: setns is async-signal-safe; `fd` stays open in the parent until spawn
    // returns, and only the child's own network namespace changes.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
    run_prepared(cmd)
}

/// Run `program args...` on the host with the namespace on a descriptor; every
/// `{ns}` in `args` is replaced by a path to it (`ip link set X netns {ns}`).
pub fn run_with(h: &NetHandle, program: &str, args: &[String]) -> Result<String, ToolError> {
    let path = format!("/proc/self/fd/{NS_FD}");
    let mut cmd = Command::new(program);
    cmd.args(args.iter().map(|a| a.replace("{ns}", &path)));
    crate::sys::unix::command_pass_fd(&mut cmd, h.0.as_raw_fd(), NS_FD);
    run_prepared(cmd)
}

/// Write each `KEY=VALUE` of `kv` to `/proc/sys/KEY` as seen from inside the
/// namespace: a thread of ours enters it (only that thread's network namespace
/// changes) and writes the files, whose network part the kernel resolves by the
/// writing thread's namespace. KEY must be a relative path without `..`.
pub fn write_sysctls(h: &NetHandle, kv: &[String]) -> Result<String, ToolError> {
    let label = format!("sysctl {}", kv.join(" "));
    let err = |msg: String| ToolError {
        cmd: label.clone(),
        msg,
    };
    let mut writes = Vec::new();
    for e in kv {
        let (k, v) = e
            .split_once('=')
            .ok_or_else(|| err(format!("{e}: not KEY=VALUE")))?;
        if k.starts_with('/') || k.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(err(format!("{k}: not a plain relative key")));
        }
        writes.push((format!("/proc/sys/{k}"), v.to_string()));
    }
    let ns = h.0.try_clone().map_err(|e| err(e.to_string()))?;
    let r = std::thread::spawn(move || -> Result<(), String> {
        // SAFETY: setns on a descriptor we own, in this thread only, which exits
        // when done (nothing else runs on it).
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", io::Error::last_os_error()));
        }
        for (p, v) in &writes {
            std::fs::write(p, v).map_err(|e| format!("{p}: {e}"))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| err("the writing thread panicked".into()))?;
    r.map_err(err).map(|_| String::new())
}

/// The index of host interface `name` (if_nametoindex(3)); None when there is none.
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{FromRawFd, OwnedFd};

    #[test]
    fn a_descriptor_passed_on_its_own_number_stays_open() {
        let f = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: duplicating a descriptor we own onto a free number >= 900, owned
        // by the OwnedFd below.
        let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 900) };
        assert!(fd >= 900);
        // SAFETY: `fd` is new and nobody else owns it.
        let _own = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &format!("test -e /proc/self/fd/{fd}")]);
        crate::sys::unix::command_pass_fd(&mut c, fd, fd);
        assert!(c.status().unwrap().success(), "fd {fd} closed at exec");
    }

    use super::*;
}
