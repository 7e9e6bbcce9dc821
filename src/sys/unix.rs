//! POSIX calls common to FreeBSD and Linux (credentials, signals, descriptors, fork,
//! reaping, syslog), with the OS-specific pieces (subreaper, process title) selected
//! by `cfg` inside each function.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;

fn check(rc: c_int) -> io::Result<()> {
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

/// SIGKILL to every process of process group `pgid` (a group we made).
pub fn kill_group(pgid: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    signal(-pgid, libc::SIGKILL)
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
/// (dup2 clears close-on-exec there; every other descriptor stays close-on-exec).
pub fn command_pass_fd(cmd: &mut std::process::Command, fd: RawFd, target: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 is async-signal-safe; `fd` stays open in the parent until spawn
    // returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, target) < 0 {
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

/// Block SIGHUP in the calling thread (inherited across fork and exec), so a SIGHUP
/// that arrives during probe setup stays pending instead of killing the probe.
pub fn block_sighup() {
    // SAFETY: sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Reset every signal disposition to default and unblock all but SIGHUP (the probe
/// starts from a clean slate, whatever the daemon had).
pub fn probe_signals() {
    // SAFETY: signal-state system calls on local values.
    unsafe {
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

#[cfg(target_os = "linux")]
use libc::{SI_QUEUE, SI_USER};
// <sys/signal.h> of FreeBSD; not exported by the libc crate for that target.
#[cfg(target_os = "freebsd")]
const SI_USER: c_int = 0x10001;
#[cfg(target_os = "freebsd")]
const SI_QUEUE: c_int = 0x10002;

/// Wait for a SIGHUP sent by a process (kill(2), pkill): `si_code` SI_USER or
/// SI_QUEUE. A SIGHUP from the kernel (a terminal hangup) is ignored. Returns the
/// sender's pid.
pub fn wait_for_sighup_from_process() -> i32 {
    // SAFETY: sigwaitinfo fills a local siginfo_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            if libc::sigwaitinfo(&set, &mut info) != libc::SIGHUP {
                continue;
            }
            if info.si_code == SI_USER || info.si_code == SI_QUEUE {
                #[cfg(target_os = "linux")]
                let pid = info.si_pid();
                #[cfg(target_os = "freebsd")]
                let pid = info.si_pid;
                if sender_in_my_jail(pid) {
                    return pid;
                }
            }
        }
    }
}

/// Whether the sender of a signal is inside the caller's jail. Linux: a signal from
/// outside the caller's pid namespace (the host) arrives with `si_pid` 0. FreeBSD:
/// the sender must be visible from inside the jail and have the caller's jail id.
fn sender_in_my_jail(pid: i32) -> bool {
    #[cfg(target_os = "linux")]
    return pid > 0;
    #[cfg(target_os = "freebsd")]
    {
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        match (proc_jid(me), proc_jid(pid)) {
            (Some(a), Some(b)) => pid > 0 && a == b,
            _ => false,
        }
    }
}

/// The jail id of a process visible to the caller (FreeBSD `kern.proc.pid`).
#[cfg(target_os = "freebsd")]
fn proc_jid(pid: i32) -> Option<i32> {
    let mut mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, pid];
    // SAFETY: kinfo_proc is plain data; the kernel fills at most `len` bytes of it.
    unsafe {
        let mut kp: libc::kinfo_proc = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::kinfo_proc>();
        let rc = libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            (&mut kp as *mut libc::kinfo_proc).cast(),
            &mut len,
            std::ptr::null(),
            0,
        );
        (rc == 0 && len == std::mem::size_of::<libc::kinfo_proc>()).then_some(kp.ki_jid)
    }
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

/// A process the daemon spawned: its pid and, on Linux, a pidfd, so that a signal
/// reaches exactly that process even if its pid were reused.
#[derive(Debug)]
pub struct ProcessRef {
    pub pid: i32,
    #[cfg(target_os = "linux")]
    fd: Option<OwnedFd>,
}

impl ProcessRef {
    pub fn new(pid: i32) -> ProcessRef {
        #[cfg(target_os = "linux")]
        {
            ProcessRef {
                pid,
                fd: pidfd_open(pid).ok(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        ProcessRef { pid }
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
        Ok(ProcessRef { pid, fd: Some(fd) })
    }

    /// Whether the process is identified by a pidfd (Linux) rather than its pid alone.
    pub fn has_pidfd(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Send a signal to this very process; one that has exited is not an error.
    pub fn signal(&self, sig: c_int) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            return match pidfd_signal(fd, sig) {
                Err(e) if e.raw_os_error() != Some(libc::ESRCH) => Err(e),
                _ => Ok(()),
            };
        }
        signal(self.pid, sig)
    }
}

/// A connected pair of `SOCK_SEQPACKET` unix sockets (close-on-exec): one datagram
/// per message, with descriptors passed as `SCM_RIGHTS`.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Send one datagram with `fds` attached.
pub fn send_with_fds(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Receive one datagram (at most `max` bytes) and the descriptors attached to it,
/// waiting at most `timeout`. `Ok(None)` on timeout; an empty datagram means the
/// peer closed. A truncated datagram or control message is an error.
pub fn recv_with_fds(
    sock: &OwnedFd,
    max: usize,
    timeout: std::time::Duration,
) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::{AsFd, AsRawFd};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let (n, flags, got) = {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut got = Vec::new();
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: SCM_RIGHTS descriptors are new descriptors we now own.
                got.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, msg.flags, got)
    };
    if flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message or attached descriptors truncated",
        ));
    }
    buf.truncate(n);
    Ok(Some((buf, got)))
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

/// Write all of `data` to `fd`.
pub fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Read from `fd` until EOF or `max` bytes, waiting at most `timeout` in all.
/// `Ok(None)` when the time ran out.
pub fn read_with_timeout(
    fd: &OwnedFd,
    max: usize,
    timeout: std::time::Duration,
) -> io::Result<Option<Vec<u8>>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{AsFd, AsRawFd};
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 || out.len() + n as usize > max {
            out.extend_from_slice(&buf[..(n as usize).min(max - out.len())]);
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n as usize]);
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
fn pidfd_signal(fd: &OwnedFd, sig: c_int) -> io::Result<()> {
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

pub fn geteuid() -> u32 {
    // SAFETY: plain system call.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a connected unix socket (the kernel's
/// record, not anything it sent).
pub fn peer_uid(fd: RawFd) -> io::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED fills a ucred of `len` bytes.
        check(unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        })?;
        Ok(cred.uid)
    }
    #[cfg(target_os = "freebsd")]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: getpeereid writes two integers into locals.
        check(unsafe { libc::getpeereid(fd, &mut uid, &mut gid) })?;
        Ok(uid)
    }
}

/// Create `rel` and its missing parents, each with `mkdirat` in a parent directory
/// that `open_dir` opens (the caller's way of staying inside a root). `..` is refused.
pub fn mkdir_all_with(
    rel: &std::path::Path,
    open_dir: impl Fn(&std::path::Path) -> io::Result<OwnedFd>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::path::{Component, PathBuf};
    let mut cur = PathBuf::new();
    for comp in rel.components() {
        let name = match comp {
            Component::Normal(n) => n,
            Component::ParentDir => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: '..' is not allowed", rel.display()),
                ))
            }
            _ => continue,
        };
        let parent = open_dir(&cur)?;
        let c = CString::new(name.as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: mkdirat relative to a directory descriptor we hold.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        cur.push(name);
    }
    Ok(())
}

/// Replace `name` in the directory `dir` (a real, not O_PATH, descriptor) with
/// `data`: a temporary file made with `O_EXCL|O_NOFOLLOW`, fsync, then `renameat`
/// over `name`, which replaces a symlink there instead of following it.
pub fn replace_in_dir(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    data: &[u8],
    mode: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tmp = CString::new(format!(
        ".{}.jailctl-{}",
        name.to_string_lossy(),
        std::process::id()
    ))
    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fname = CString::new(name.as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: unlinkat/openat relative to the caller's directory descriptor.
    let fd = unsafe {
        libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0);
        libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let res = (|| {
        use std::io::Write;
        (&f).write_all(data)?;
        f.sync_all()?;
        // SAFETY: renameat within one directory; the final name is replaced.
        if unsafe {
            libc::renameat(
                dir.as_raw_fd(),
                tmp.as_ptr(),
                dir.as_raw_fd(),
                fname.as_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })();
    if res.is_err() {
        // SAFETY: as above.
        unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
    }
    res
}

/// `rel` as a path relative to a directory descriptor (a leading `/` dropped; `.`
/// for the directory itself).
pub(crate) fn rel_of(rel: &std::path::Path) -> CString {
    let s = rel.to_string_lossy();
    let t = s.trim_start_matches('/');
    CString::new(if t.is_empty() { "." } else { t }).unwrap_or_else(|_| c".".to_owned())
}

/// An error with what was being done in front of it.
pub(crate) fn ctx(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

// ---- daemon and probe helpers (the daemon split of issue #10) ----------------------

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

/// Threads of the calling process, when the OS tells (Linux: `/proc/self/task`);
/// `None` when it cannot be told.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|d| d.flatten().count())
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

/// Read a regular file of at most `max` bytes from an open descriptor; anything else
/// (a FIFO, a device, a directory) or a larger file is refused.
fn read_regular(fd: OwnedFd, what: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::from(fd);
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", what.display()),
        ));
    }
    let mut out = Vec::new();
    (&mut f).take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: larger than {max} bytes", what.display()),
        ));
    }
    Ok(out)
}

/// Read the regular file `path` (at most `max` bytes), opened without blocking, so a
/// FIFO or a device planted in its place cannot make the caller wait.
pub fn read_regular_file(path: &std::path::Path, max: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    read_regular(f.into(), path, max)
}

/// [`read_regular_file`] for `rel` resolved inside `root` (see `RootDir`).
pub fn read_regular_file_in(
    root: &super::os::RootDir,
    rel: &std::path::Path,
    max: u64,
) -> io::Result<Vec<u8>> {
    let fd = root.open_at(rel, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)?;
    read_regular(fd, rel, max)
}

/// close_range(2) of `lo..=hi`.
fn close_fd_range(lo: u32, hi: u32) {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range only closes descriptors; the caller no longer uses them.
    unsafe {
        libc::syscall(libc::SYS_close_range, lo, hi, 0u32);
    }
    #[cfg(target_os = "freebsd")]
    // SAFETY: as above.
    unsafe {
        libc::close_range(lo, hi, 0);
    }
}

/// Close every descriptor from 3 up but those in `keep` (a forked child dropping what
/// it inherited from its parent: locks, sockets, files).
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= 3)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = 3u32;
    for k in keep {
        if k > lo {
            close_fd_range(lo, k - 1);
        }
        lo = k + 1;
    }
    close_fd_range(lo, u32::MAX);
}
