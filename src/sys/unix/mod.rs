//! POSIX calls common to FreeBSD and Linux (credentials, signals, descriptors, fork,
//! reaping, syslog), with the OS-specific pieces (subreaper, process title) selected
//! by `cfg` inside each function.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;

mod fds;
mod identity;
mod process;
mod signals;
mod spawn_io;

pub use fds::*;
pub use identity::*;
pub use process::*;
pub use signals::*;
pub use spawn_io::*;

pub(super) fn check(rc: c_int) -> io::Result<()> {
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Send a signal; a process that is gone is not an error.
pub fn signal(pid: i32, sig: c_int) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}

/// Replace supplementary groups, then gid, then uid, in that order.
pub fn drop_privileges(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: setgroups reads `groups.len()` gids from a valid slice.
    check(unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) })?;
    // SAFETY: plain credential system calls.
    check(unsafe { libc::setgid(gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::setuid(uid) })
}

/// Install a `pre_exec` hook that drops to uid/gid/groups in the child.
pub fn command_as(cmd: &mut std::process::Command, uid: u32, gid: u32, groups: Vec<u32>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs between fork and exec and makes only the credential system
    // calls of drop_privileges on an already-allocated Vec (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || drop_privileges(uid, gid, &groups));
    }
}

/// Install a `pre_exec` hook that places `fd` on descriptor `target` in the child
/// (dup2 clears close-on-exec there, and so does fcntl when `fd` is `target` already;
/// every other descriptor stays close-on-exec).
pub fn command_pass_fd(cmd: &mut std::process::Command, fd: RawFd, target: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl are async-signal-safe; `fd` stays open in the parent
    // until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Take ownership of an inherited descriptor (the probe helper's parameter pipe).
/// Returns None when `fd` is not open.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open and, by the helper protocol, ours alone.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Take (`exclusive`) or release an flock(2) lock on a descriptor, waiting for it.
pub fn flock(fd: RawFd, exclusive: bool) -> io::Result<()> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_UN
    };
    loop {
        // SAFETY: flock(2) on a descriptor the caller holds open.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Close every descriptor from `first` up (Firecracker-style hygiene at start-up and
/// in the probe).
pub fn close_fds_from(first: RawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range only closes descriptors; nothing else refers to them.
    unsafe {
        libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32);
    }
    #[cfg(target_os = "freebsd")]
    // SAFETY: as above.
    unsafe {
        libc::close_range(first as u32, u32::MAX, 0);
    }
}

/// Point descriptors 0, 1 and 2 at /dev/null (if it can be opened).
pub fn stdio_to_devnull() {
    // SAFETY: open/dup2/close on a static path and descriptors we own.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for t in 0..3 {
                if fd != t {
                    libc::dup2(fd, t);
                }
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// Result of [`fork`].
pub enum Forked {
    Parent(i32),
    Child,
}

/// fork(2). Only for single-threaded callers: the daemon before its runtime starts,
/// and the probe helper.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: callers are single-threaded (documented), so the child inherits no lock
    // held by another thread.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Leave at once without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn getpid() -> i32 {
    // SAFETY: plain system call.
    unsafe { libc::getpid() }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Reap one child that has ended, if any (waitpid(-1, WNOHANG)).
pub fn reap_one() -> Option<(i32, ExitStatus)> {
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes the status into a local.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid > 0 {
            let s = if libc::WIFEXITED(st) {
                ExitStatus::Code(libc::WEXITSTATUS(st))
            } else if libc::WIFSIGNALED(st) {
                ExitStatus::Signal(libc::WTERMSIG(st))
            } else {
                continue;
            };
            return Some((pid, s));
        }
        if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// Become the reaper of every descendant (Linux PR_SET_CHILD_SUBREAPER, FreeBSD
/// PROC_REAP_ACQUIRE), so orphaned probes and commands are ours to reap.
pub fn become_subreaper() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    #[cfg(target_os = "freebsd")]
    // SAFETY: procctl on our own pid with no data argument.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            libc::getpid() as _,
            libc::PROC_REAP_ACQUIRE,
            std::ptr::null_mut(),
        )
    };
    check(rc)
}

/// Show `title` as the process title. Linux: the title is argv[0] of the exec (done
/// by the daemon); here the short name (comm) is set too. FreeBSD: setproctitle(3)
/// with the leading `-` form, so no program name is prefixed.
pub fn set_title(title: &str) {
    let Ok(c) = CString::new(title) else { return };
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated string.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr());
    }
    #[cfg(target_os = "freebsd")]
    // SAFETY: format string "-%s" with one NUL-terminated string argument.
    unsafe {
        libc::setproctitle(c"-%s".as_ptr(), c.as_ptr());
    }
}

/// Write a line to syslog(3) at the given priority (facility LOG_DAEMON).
pub fn syslog(priority: Priority, msg: &str) {
    let prio = match priority {
        Priority::Err => libc::LOG_ERR,
        Priority::Warning => libc::LOG_WARNING,
        Priority::Info => libc::LOG_INFO,
        Priority::Debug => libc::LOG_DEBUG,
    };
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: format "%s" with one NUL-terminated string argument.
    unsafe { libc::syslog(libc::LOG_DAEMON | prio, c"%s".as_ptr(), c.as_ptr()) };
}

/// A syslog(3) priority (facility daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Err,
    Warning,
    Info,
    Debug,
}

/// openlog(3) with the program's identity and the pid.
pub fn openlog(ident: &'static std::ffi::CStr) {
    // SAFETY: `ident` is static, as openlog requires.
    unsafe {
        libc::openlog(
            ident.as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_DAEMON,
        )
    };
}

/// Broken-down local time (year, month, day, hour, minute, second) of a Unix time.
pub fn local_time(secs: i64) -> (i32, u32, u32, u32, u32, u32) {
    // SAFETY: localtime_r fills a zeroed local struct from a local time_t.
    unsafe {
        let t: libc::time_t = secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        (
            tm.tm_year + 1900,
            (tm.tm_mon + 1) as u32,
            tm.tm_mday as u32,
            tm.tm_hour as u32,
            tm.tm_min as u32,
            tm.tm_sec as u32,
        )
    }
}

/// Try to take an exclusive flock(2) without waiting; false when another process
/// holds it.
pub fn try_flock(fd: RawFd) -> io::Result<bool> {
    // SAFETY: flock(2) on a descriptor the caller holds open.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Whether descriptor 0 is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only queries a descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// Whether descriptor 2 is a terminal.
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only queries a descriptor.
    unsafe { libc::isatty(2) == 1 }
}
