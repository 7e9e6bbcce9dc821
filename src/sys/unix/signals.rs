//! Signals: the probe's SIGHUP, who sent it.

#[allow(unused_imports)]
use super::*;

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
pub(super) const SI_USER: c_int = 0x10001;

#[cfg(target_os = "freebsd")]
pub(super) const SI_QUEUE: c_int = 0x10002;

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
pub(super) fn sender_in_my_jail(pid: i32) -> bool {
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
pub(super) fn proc_jid(pid: i32) -> Option<i32> {
    kinfo(pid).map(|kp| kp.ki_jid)
}

/// The kernel's `kinfo_proc` of a process (sysctl kern.proc.pid).
#[cfg(target_os = "freebsd")]
pub(super) fn kinfo(pid: i32) -> Option<libc::kinfo_proc> {
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
        (rc == 0 && len == std::mem::size_of::<libc::kinfo_proc>()).then_some(kp)
    }
}
