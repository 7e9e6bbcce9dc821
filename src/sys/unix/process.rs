//! Processes: references by pidfd, reaping, parent-death signals, process groups,
//! resource limits.

#[allow(unused_imports)]
use super::*;

/// A process the daemon spawned: its pid and, on Linux, a pidfd, so that a signal
/// reaches exactly that process even if its pid were reused. Without a pidfd (FreeBSD,
/// or a Linux kernel without pidfds) it is signalled only through the [`ReapGate`] of
/// the one reaper of that pid, which refuses once the pid has been reaped; a pid-only
/// reference without a gate is never signalled.
#[derive(Debug)]
pub struct ProcessRef {
    pub pid: i32,
    #[cfg(target_os = "linux")]
    pub(super) fd: Option<OwnedFd>,
    gate: Option<Box<dyn ReapGate>>,
}

impl ProcessRef {
    pub fn new(pid: i32) -> ProcessRef {
        #[cfg(target_os = "linux")]
        {
            ProcessRef {
                pid,
                fd: pidfd_open(pid).ok(),
                gate: None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        ProcessRef { pid, gate: None }
    }

    /// A child known by its pid alone, vouched for by its reaper: every signal goes
    /// through `gate`, which sends it only while the pid has not been reaped.
    pub fn gated(pid: i32, gate: Box<dyn ReapGate>) -> ProcessRef {
        ProcessRef {
            pid,
            #[cfg(target_os = "linux")]
            fd: None,
            gate: Some(gate),
        }
    }

    /// A process named by a pidfd handed over to us (its pid read from the kernel's
    /// fdinfo, in our pid namespace). Anything but a pidfd of a live process is refused.
    #[cfg(target_os = "linux")]
    pub fn from_pidfd(fd: OwnedFd) -> io::Result<ProcessRef> {
        use std::os::fd::AsRawFd;
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse::<i32>().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the descriptor handed over is not a pidfd",
                )
            })?;
        if pid <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the process ended before it was handed over",
            ));
        }
        Ok(ProcessRef {
            pid,
            fd: Some(fd),
            gate: None,
        })
    }

    /// Whether the process is identified by a pidfd (Linux) rather than its pid alone.
    pub fn has_pidfd(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Send a signal to this very process; one that has exited is not an error. Without
    /// a pidfd the signal goes through the reaper's gate (nothing is sent to a reaped
    /// pid); a pid alone, with no gate, is refused rather than risk a reused pid.
    pub fn signal(&self, sig: c_int) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            return match pidfd_signal(fd, sig) {
                Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(e),
                _ => Ok(()),
            };
        }
        match &self.gate {
            Some(gate) => gate.signal_unless_reaped(sig),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "process {} is known by its pid alone, with no reaper to vouch for it: not signalled",
                    self.pid
                ),
            )),
        }
    }
}

/// Raise the soft limit of open descriptors to the hard limit; returns (old, new).
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) })?;
    let old = rl.rlim_cur as u64;
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        // SAFETY: as above.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) })?;
    }
    Ok((old, rl.rlim_cur as u64))
}

/// Install a `pre_exec` hook restoring the soft descriptor limit `soft` in the child
/// (host commands get the limit the daemon was started with, not the raised one).
pub fn command_nofile(cmd: &mut std::process::Command, soft: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getrlimit/setrlimit are async-signal-safe and touch only a local struct.
    unsafe {
        cmd.pre_exec(move || {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0
                && (soft as libc::rlim_t) < rl.rlim_cur
            {
                rl.rlim_cur = soft as libc::rlim_t;
                libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            }
            Ok(())
        });
    }
}

/// Make the calling process impossible to inspect or trace from the jail it is about
/// to enter: Linux `PR_SET_DUMPABLE 0` (its /proc links need CAP_SYS_PTRACE), FreeBSD
/// `PROC_TRACE_CTL_DISABLE` (no ptrace, no procfs access, no core).
pub fn make_untraceable() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    #[cfg(target_os = "freebsd")]
    let rc = {
        let mut arg: c_int = libc::PROC_TRACE_CTL_DISABLE;
        // SAFETY: procctl on our own pid with a pointer to a local int.
        unsafe {
            libc::procctl(
                libc::P_PID,
                libc::getpid() as _,
                libc::PROC_TRACE_CTL,
                (&mut arg as *mut c_int).cast(),
            )
        }
    };
    check(rc)
}

/// Ask for `sig` when the parent dies (Linux; a no-op elsewhere). Returns the parent
/// pid seen after the request, to detect a parent that died before it.
pub fn parent_death_signal(sig: c_int) -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0);
    }
    let _ = sig;
    // SAFETY: plain system call.
    unsafe { libc::getppid() }
}

/// Close a descriptor we do not own as an `OwnedFd` (a forked child's copy).
pub fn close_fd(fd: RawFd) {
    // SAFETY: closing a descriptor number; the caller no longer uses it.
    unsafe {
        libc::close(fd);
    }
}

/// A pidfd for process `pid` (Linux).
#[cfg(target_os = "linux")]
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative result is a descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// SIGKILL the process a pidfd names (Linux).
#[cfg(target_os = "linux")]
pub fn pidfd_kill(fd: &OwnedFd) -> io::Result<()> {
    pidfd_signal(fd, libc::SIGKILL)
}

/// Send `sig` to the process a pidfd names (Linux).
#[cfg(target_os = "linux")]
pub(super) fn pidfd_signal(fd: &OwnedFd, sig: c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal on a pidfd we own, with no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path a process execs to run its own binary again (the daemon's probe helper).
pub fn own_exe() -> std::path::PathBuf {
    #[cfg(target_os = "linux")]
    return std::path::PathBuf::from("/proc/self/exe");
    #[cfg(not(target_os = "linux"))]
    std::env::current_exe()
        .unwrap_or_else(|_| std::path::PathBuf::from("/usr/local/sbin/jaildaemon"))
}

/// Bind a unix socket private from the moment it exists: the umask is 077 around the
/// bind (through nix, no unsafe), then restored.
pub fn bind_private_socket(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o077));
    let l = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    l
}

/// Whether the process `pid` (a socket peer) shares our pid namespace. Linux: a
/// process in a jail is in another one; elsewhere there are none, so always true.
pub fn in_my_pid_namespace(pid: Option<i32>) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return false;
        };
        let mine = std::fs::read_link("/proc/self/ns/pid");
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
        matches!((mine, theirs), (Ok(a), Ok(b)) if a == b)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

/// SIGKILL to `pid`; a process that is gone is not an error.
pub fn kill_now(pid: i32) -> io::Result<()> {
    signal(pid, libc::SIGKILL)
}

/// Ask for SIGKILL when the parent dies (Linux; a no-op elsewhere); see
/// [`parent_death_signal`].
pub fn die_with_parent() -> i32 {
    parent_death_signal(libc::SIGKILL)
}

/// Cancel [`die_with_parent`].
pub fn live_on_parent_death() -> i32 {
    parent_death_signal(0)
}

impl ProcessRef {
    /// SIGKILL to this very process; one that has exited is not an error.
    pub fn kill(&self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }
}

// ------------------------------------------------------------------------------
// jexec in the jail layer (`jail::exec`, `jail::users`; issue #10, item 2).

/// Threads of the calling process (Linux: `/proc/self/task`; FreeBSD: the kernel's
/// `ki_numthreads`); `None` when it cannot be told.
pub fn thread_count() -> Option<usize> {
    #[cfg(target_os = "linux")]
    return std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|d| d.flatten().count());
    #[cfg(target_os = "freebsd")]
    return super::signals::kinfo(getpid()).map(|kp| kp.ki_numthreads as usize);
}

/// waitpid(2) on our own child `pid`: its status once it has ended (and is reaped),
/// `None` while it runs when `block` is false.
pub fn wait_child(pid: i32, block: bool) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut st = 0;
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: waitpid writes the status into a local.
        let rc = unsafe { libc::waitpid(pid, &mut st, flags) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(st) {
            return Ok(Some(ExitStatus::Code(libc::WEXITSTATUS(st))));
        }
        if libc::WIFSIGNALED(st) {
            return Ok(Some(ExitStatus::Signal(libc::WTERMSIG(st))));
        }
    }
}

/// Wait up to `timeout` for child `pid` (unreaped, so its pid is still ours) to end:
/// its status (reaped), or `None` at the timeout.
pub fn wait_child_for(pid: i32, timeout: std::time::Duration) -> io::Result<Option<ExitStatus>> {
    if !await_child_exit(pid, timeout)? {
        return Ok(None);
    }
    wait_child(pid, false)
}

/// Wait up to `timeout` for child `pid` (unreaped) to end, without reaping it: whether
/// it has. On Linux the wait sleeps on a pidfd and wakes the moment the child ends;
/// elsewhere it polls, 1 ms doubling to 20 ms.
pub fn await_child_exit(pid: i32, timeout: std::time::Duration) -> io::Result<bool> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + timeout;
    #[cfg(target_os = "linux")]
    let pidfd = pidfd_open(pid).ok();
    let mut next = Duration::from_millis(1);
    loop {
        if child_has_ended(pid)? {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &pidfd {
            use std::os::fd::AsRawFd;
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one pollfd that lives on the stack for the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            continue;
        }
        std::thread::sleep(next.min(left));
        next = (next * 2).min(Duration::from_millis(20));
    }
}

/// Has child `pid` ended (a zombie waiting to be reaped)? It is left unreaped.
fn child_has_ended(pid: i32) -> io::Result<bool> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes into the local siginfo; WNOWAIT leaves the child
        // unreaped, WNOHANG returns at once.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: si_pid is valid to read after a successful waitid (0 when no child
        // has changed state).
        return Ok(unsafe { info.si_pid() } != 0);
    }
}

/// setpgid(2): put process `pid` (0: the caller) in the group `pgid` (0: its own).
pub fn set_process_group(pid: i32, pgid: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::setpgid(pid, pgid) })
}

/// SIGKILL a process (a process that is gone is not an error).
pub fn kill_process(pid: i32) -> io::Result<()> {
    signal(pid, libc::SIGKILL)
}

/// SIGKILL every process of the process group `pgid` (an empty group is not an error).
pub fn kill_process_group(pgid: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    signal(-pgid, libc::SIGKILL)
}

// ------------------------------------------------------------------------------
// Pid-only references vouched for by their reaper (issue #11, item 7).

/// The one reaper of a child known by its pid alone (the daemon's reaper): it sends a
/// signal only while it has not reaped the pid, atomically with respect to reaping (a
/// reaped pid may be reused by an unrelated process). Dropping the gate tells the
/// reaper the reference is gone.
pub trait ReapGate: Send + Sync + std::fmt::Debug {
    /// Send `sig` to the child unless it has been reaped (then nothing is sent: Ok).
    fn signal_unless_reaped(&self, sig: c_int) -> io::Result<()>;
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    #[test]
    fn a_pid_alone_without_a_gate_is_never_signalled() {
        let p = ProcessRef {
            pid: std::process::id() as i32,
            #[cfg(target_os = "linux")]
            fd: None,
            gate: None,
        };
        assert!(!p.has_pidfd());
        assert_eq!(p.signal(0).unwrap_err().kind(), io::ErrorKind::Unsupported);
    }
}
