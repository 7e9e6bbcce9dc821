//! The jail init's life after setup: reaping, its end when the jail is empty,
//! and the loopback interface of a new network namespace.

use super::*;

/// The init's own host pid and mount namespace, to recognise processes attached to
/// the jail from the host.
pub(super) struct NsId {
    pub(super) self_host: u32,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

/// Reap, obey signals, and leave when told or (without persist) when alone.
/// SIGTERM/SIGINT/SIGQUIT/SIGHUP: kill everything in the jail and exit.
/// SIGUSR1 / SIGUSR2: persist on / off.
pub(super) unsafe fn init_loop(
    mut persist: bool,
    set: &libc::sigset_t,
    host_proc: RawFd,
    jail_proc: RawFd,
    id: NsId,
    caps: u64,
    ptrace_extra: u64,
) -> ! {
    // SAFETY (whole function): raw system calls on stack values only.
    unsafe {
        loop {
            let ts = if persist {
                libc::timespec {
                    tv_sec: 5,
                    tv_nsec: 0,
                }
            } else {
                libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                }
            };
            let sig = libc::sigtimedwait(set, std::ptr::null_mut(), &ts);
            let mut st = 0;
            while libc::waitpid(-1, &mut st, libc::WNOHANG) > 0 {}
            match sig {
                libc::SIGTERM | libc::SIGINT | libc::SIGQUIT | libc::SIGHUP => {
                    libc::kill(-1, libc::SIGKILL);
                    while libc::waitpid(-1, &mut st, 0) > 0 || errno() == libc::EINTR {}
                    libc::_exit(0);
                }
                libc::SIGUSR1 => persist = true,
                libc::SIGUSR2 => persist = false,
                _ => {}
            }
            if !persist {
                // CAP_SYS_PTRACE (kept in the permitted set only) is raised just for
                // the scan: processes attaching from the host are non-dumpable.
                capset(caps | ptrace_extra, caps | ptrace_extra);
                let alive = others_alive(host_proc, jail_proc, id.self_host, id.dev, id.ino);
                capset(caps, caps | ptrace_extra);
                if !alive {
                    libc::_exit(0);
                }
            }
        }
    }
}

/// Overwrite the inherited argv area so the creator's command line is not visible
/// inside the jail (`ps` shows `jail-init`).
pub(super) unsafe fn hide_cmdline(host_proc: RawFd) {
    // SAFETY: reads /proc/self/stat into a stack buffer, then writes within
    // [arg_start, arg_end), the argv area of our own address space.
    unsafe {
        let fd = libc::openat(
            host_proc,
            c"self/stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return;
        }
        let mut buf = [0u8; 1024];
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        if n <= 0 {
            return;
        }
        let s = &buf[..n as usize];
        let Some(rp) = s.iter().rposition(|&c| c == b')') else {
            return;
        };
        // Fields after the comm start at field 3; arg_start and arg_end are 48 and 49.
        let mut field = 2;
        let (mut start, mut end) = (0usize, 0usize);
        for tok in s[rp + 1..]
            .split(|&c| c == b' ' || c == b'\n')
            .filter(|t| !t.is_empty())
        {
            field += 1;
            if field == 48 {
                start = parse_u64(tok).unwrap_or(0) as usize;
            } else if field == 49 {
                end = parse_u64(tok).unwrap_or(0) as usize;
                break;
            }
        }
        let title = b"jail-init";
        if start == 0 || end <= start + title.len() {
            return;
        }
        let p = start as *mut u8;
        std::ptr::write_bytes(p, 0, end - start);
        std::ptr::copy_nonoverlapping(title.as_ptr(), p, title.len());
    }
}

pub(super) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

pub(super) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.len() > 10 {
        return None;
    }
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Walk a procfs directory with getdents64 into a stack buffer, calling `f` with each
/// numeric entry; stops early when `f` returns true (and then returns true).
pub(super) unsafe fn any_pid(dirfd: RawFd, mut f: impl FnMut(u32, &[u8]) -> bool) -> bool {
    // SAFETY: getdents64 fills `buf` with linux_dirent64 records, which we parse within
    // the returned length.
    unsafe {
        libc::lseek(dirfd, 0, libc::SEEK_SET);
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::syscall(libc::SYS_getdents64, dirfd, buf.as_mut_ptr(), buf.len());
            if n <= 0 {
                return false;
            }
            let mut off = 0usize;
            while off < n as usize {
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                let name = &buf[off + 19..off + reclen];
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                if let Some(pid) = parse_u32(&name[..end]) {
                    if f(pid, &name[..end]) {
                        return true;
                    }
                }
                off += reclen;
            }
        }
    }
}

pub(super) unsafe fn others_alive(
    host_proc: RawFd,
    jail_proc: RawFd,
    self_host: u32,
    dev: u64,
    ino: u64,
) -> bool {
    // SAFETY: see any_pid; fstatat on a NUL-terminated stack path.
    unsafe {
        if any_pid(jail_proc, |pid, _| pid != 1) {
            return true;
        }
        // Processes attached with setns that have not forked yet are in the jail's
        // mount namespace but not its pid namespace: look for them on the host.
        any_pid(host_proc, |pid, name| {
            if pid == self_host {
                return false;
            }
            let mut p = [0u8; 32];
            let suffix = b"/ns/mnt\0";
            if name.len() + suffix.len() > p.len() {
                return false;
            }
            p[..name.len()].copy_from_slice(name);
            p[name.len()..name.len() + suffix.len()].copy_from_slice(suffix);
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstatat(host_proc, p.as_ptr().cast(), &mut st, 0) == 0
                && st.st_dev == dev
                && st.st_ino == ino
        })
    }
}

pub(super) unsafe fn loopback_up() {
    // SAFETY: ioctl on a socket we open, with a zeroed ifreq naming "lo".
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        }
        libc::close(s);
    }
}
