//! Processes and namespaces seen from the host: /proc state, attaching to a jail,
//! its names.

use super::*;
use std::path::PathBuf;

/// Start time (clock ticks since boot) of a process, and whether it is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    proc_state(pid).ok().flatten()
}

/// As [`proc_start_time`], telling "no such process" (`Ok(None)`) from a failure to
/// find out (`Err`: out of descriptors, /proc unreadable, ...), which proves nothing.
pub fn proc_state(pid: i32) -> io::Result<Option<(u64, bool)>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => Ok(parse_stat(&s)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn parse_stat(s: &str) -> Option<(u64, bool)> {
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ", field 3 (state) is index 0 and field 22 (starttime) index 19.
    Some((fields.get(19)?.parse().ok()?, fields.first() == Some(&"Z")))
}

/// Identity of a process's mount namespace.
pub fn mnt_ns_id(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/mnt")).ok()?;
    Some((m.dev(), m.ino()))
}

/// The jail's namespaces in the order an attaching process joins them: those the
/// host's user namespace owns first (joining the jail's user namespace gives up the
/// host's capabilities), then the user namespace, then those it may own.
pub(super) const NAMESPACES: [&str; 7] = ["pid", "cgroup", "net", "user", "ipc", "uts", "mnt"];

pub(super) fn open_ns(pid: i32, which: &str) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/ns/{which}"))
}

pub(super) fn setns(f: &impl AsRawFd, what: &str) -> io::Result<()> {
    // SAFETY: setns on a namespace descriptor we hold open.
    if unsafe { libc::setns(f.as_raw_fd(), 0) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("setns {what}: {e}")));
    }
    Ok(())
}

pub(super) fn same_file(a: &std::fs::File, b: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Enter every namespace and the root directory of the jail whose init is `pid`
/// (started at `start`), join its devices cgroup, and take on its confinement
/// (non-dumpable, seccomp filters, capabilities). Children forked afterwards are in
/// the jail's pid namespace. The caller must be single-threaded (setns of a mount or
/// user namespace requires it).
pub fn attach(
    pid: i32,
    start: u64,
    confine: &Confinement,
    cgroup_procs: &[PathBuf],
) -> io::Result<()> {
    // First of all: nothing of ours may become readable through /proc in the jail,
    // and no descriptor from the host survives an exec inside it.
    // SAFETY: prctl and close_range with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
    }
    let mut fds = Vec::new();
    for n in NAMESPACES {
        let target = open_ns(pid, n)?;
        let mine = std::fs::File::open(format!("/proc/self/ns/{n}"))?;
        if !same_file(&target, &mine) {
            fds.push((target, n));
        }
    }
    let root = std::fs::File::open(format!("/proc/{pid}/root"))?;
    if proc_start_time(pid).map(|t| t.0) != Some(start) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // the init's resource limits, taken on only at the end, once inside: the jail can
    // lower them, so no host code of ours runs under them before that
    let rlimits = super::cgroup_fs::rlimits_of(pid);
    // its devices cgroup and resource-limit cgroups, as recorded at its creation
    for cg in cgroup_procs {
        std::fs::write(cg, b"0").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("joining the jail's cgroup {}: {e}", cg.display()),
            )
        })?;
    }
    for (f, n) in &fds {
        setns(f, n)?;
        if *n == "user" {
            // Become the jail's root (a mapped jail does not map the host's uid 0).
            // SAFETY: credential system calls with constant arguments.
            unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(0, 0, 0) != 0
                    || libc::setresuid(0, 0, 0) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    // SAFETY: fchdir to a directory descriptor we hold; chroot/chdir on static strings.
    unsafe {
        if libc::fchdir(root.as_raw_fd()) != 0
            || libc::chroot(c".".as_ptr()) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    drop(fds);
    drop(root);
    super::cgroup_fs::lower_rlimits(&rlimits)?;
    // SAFETY: confine_raw makes raw system calls on `confine`'s prepared programs.
    unsafe { confine_raw(confine, 0) }.map_err(|step| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{step}: {e}"))
    })
}

/// Set hostname and/or domain name inside the uts namespace of process `pid`, from a
/// short-lived child so the caller stays where it is.
pub fn set_names_in(
    pid: i32,
    hostname: Option<&CStr>,
    domainname: Option<&CStr>,
) -> io::Result<()> {
    let uts = open_ns(pid, "uts")?;
    // SAFETY: the child makes raw system calls only and leaves with _exit.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        // SAFETY: in the child: raw calls on valid strings, then _exit.
        unsafe {
            let mut rc = if libc::setns(uts.as_raw_fd(), libc::CLONE_NEWUTS) == 0 {
                0
            } else {
                2
            };
            if rc == 0 {
                if let Some(h) = hostname {
                    if libc::sethostname(h.as_ptr(), h.to_bytes().len()) != 0 {
                        rc = 3;
                    }
                }
                if let Some(d) = domainname {
                    if libc::setdomainname(d.as_ptr(), d.to_bytes().len()) != 0 {
                        rc = 4;
                    }
                }
            }
            libc::_exit(rc);
        }
    }
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(child, &mut st, 0) };
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "setting names in the jail failed (status {st})"
        )))
    }
}

/// The host's hostname.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}
