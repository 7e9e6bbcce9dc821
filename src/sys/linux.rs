//! Every Linux system call of the project that needs `unsafe`, in one place.
//!
//! The jail init ([`spawn_jail_init`]) runs after `fork()` in a process that may have
//! other threads (a test harness, say). From the fork to its exit it therefore uses
//! only raw system calls on buffers prepared before the fork: no allocation, no locks.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::unix::pipe;
use std::path::Path;

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
}

/// A jail init that has finished its setup and waits for [`InitHandle::commit`].
pub struct InitHandle {
    /// Host pid of the jail's init (pid 1 inside the jail).
    pub pid: i32,
    commit: OwnedFd,
}

impl InitHandle {
    /// Let the init enter its main loop. Dropping the handle without committing makes
    /// the init exit, which tears down everything it set up (its mounts live only in
    /// the jail's own mount namespace).
    pub fn commit(self) -> io::Result<()> {
        let b = [b'C'];
        // SAFETY: writing one byte from a valid buffer to a pipe we own.
        let n = unsafe { libc::write(self.commit.as_raw_fd(), b.as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// One status record sent by the forked processes to the creator.
#[repr(C)]
#[derive(Clone, Copy)]
struct Msg {
    tag: u8,
    _pad: [u8; 3],
    value: i32,
    errno: i32,
    stage: [u8; 52],
}

const MSG_LEN: usize = std::mem::size_of::<Msg>();

fn send(fd: RawFd, tag: u8, value: i32, errno: i32, stage: &str) {
    let mut m = Msg {
        tag,
        _pad: [0; 3],
        value,
        errno,
        stage: [0; 52],
    };
    let n = stage.len().min(51);
    m.stage[..n].copy_from_slice(&stage.as_bytes()[..n]);
    // SAFETY: `m` is a plain repr(C) value of MSG_LEN bytes (< PIPE_BUF, so atomic).
    unsafe { libc::write(fd, (&m as *const Msg).cast(), MSG_LEN) };
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail(fd: RawFd, stage: &str) -> ! {
    send(fd, b'E', 0, errno(), stage);
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

const SIGNALS: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGCHLD,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Start the init of a new Linux jail: fork, new namespaces (mount, pid, uts, ipc,
/// cgroup, and net with `vnet`), a fork into the pid namespace, mounts, root and
/// hostname. Returns once the init reports its setup done, or the stage that failed.
pub fn spawn_jail_init(cfg: &InitConfig) -> Result<InitHandle, (String, io::Error)> {
    let root_is_slash = cfg.path.as_bytes() == b"/";
    let join = |s: &str| {
        let mut v = cfg.path.as_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        CString::new(v).expect("path has no NUL")
    };
    let path_proc = join("/proc");
    let path_dev = join("/dev");
    let devs: Vec<(CString, CString)> = ["null", "zero", "full", "random", "urandom", "tty"]
        .iter()
        .map(|d| {
            (
                CString::new(format!("/dev/{d}")).unwrap(),
                join(&format!("/dev/{d}")),
            )
        })
        .collect();
    let proc_exists = Path::new(path_proc.to_str().unwrap_or("")).is_dir();
    let dev_exists = !root_is_slash && Path::new(path_dev.to_str().unwrap_or("")).is_dir();

    let (ready_r, ready_w) = pipe().map_err(|e| ("pipe".to_string(), e))?;
    let (commit_r, commit_w) = pipe().map_err(|e| ("pipe".to_string(), e))?;
    let mut flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWCGROUP;
    if cfg.vnet {
        flags |= libc::CLONE_NEWNET;
    }

    // SAFETY: the child only makes raw system calls on memory prepared above and
    // leaves with _exit; see the module documentation.
    let a = unsafe { libc::fork() };
    if a < 0 {
        return Err(("fork".into(), io::Error::last_os_error()));
    }
    if a == 0 {
        // SAFETY: we are the freshly forked child; nothing returns from here.
        unsafe {
            let hw = libc::fcntl(ready_w.as_raw_fd(), libc::F_DUPFD, 100);
            let hc = libc::fcntl(commit_r.as_raw_fd(), libc::F_DUPFD, 100);
            let w = libc::dup2(hw, 3);
            let c = libc::dup2(hc, 4);
            if hw < 0 || hc < 0 || w != 3 || c != 4 {
                libc::_exit(1);
            }
            libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in SIGNALS {
                libc::sigaddset(&mut set, s);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::setsid();
            if libc::unshare(flags) != 0 {
                fail(3, "unshare namespaces");
            }
            let b = libc::fork();
            if b < 0 {
                fail(3, "fork into the pid namespace");
            }
            if b == 0 {
                init_main(
                    cfg,
                    root_is_slash,
                    proc_exists,
                    dev_exists,
                    &path_proc,
                    &path_dev,
                    &devs,
                    &set,
                );
            }
            send(3, b'P', b, 0, "");
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(commit_r);
    let mut pid = None;
    let mut result: Option<Result<(), (String, io::Error)>> = None;
    let mut buf = [0u8; MSG_LEN];
    while pid.is_none() || result.is_none() {
        match read_full(ready_r.as_raw_fd(), &mut buf) {
            Ok(true) => {}
            Ok(false) => {
                if result.is_none() {
                    result = Some(Err((
                        "jail init exited during setup".into(),
                        io::Error::from_raw_os_error(libc::ECHILD),
                    )));
                }
                break;
            }
            Err(e) => {
                result = Some(Err(("reading the jail init's status".into(), e)));
                break;
            }
        }
        // SAFETY: buf holds MSG_LEN bytes written as a Msg by the child.
        let m: Msg = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        match m.tag {
            b'P' => pid = Some(m.value),
            b'O' => result = Some(Ok(())),
            _ => {
                let end = m
                    .stage
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(m.stage.len());
                let stage = String::from_utf8_lossy(&m.stage[..end]).into_owned();
                result = Some(Err((stage, io::Error::from_raw_os_error(m.errno))));
            }
        }
    }
    let mut st = 0;
    // SAFETY: reaping our own direct child.
    unsafe { libc::waitpid(a, &mut st, 0) };
    match (result, pid) {
        (Some(Ok(())), Some(pid)) => Ok(InitHandle {
            pid,
            commit: commit_w,
        }),
        (Some(Err(e)), _) => Err(e),
        _ => Err((
            "jail init did not report".into(),
            io::Error::from_raw_os_error(libc::EIO),
        )),
    }
}

fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<bool> {
    let mut off = 0;
    while off < buf.len() {
        // SAFETY: reading into the unfilled tail of a valid buffer.
        let n = unsafe { libc::read(fd, buf[off..].as_mut_ptr().cast(), buf.len() - off) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(false);
        }
        off += n as usize;
    }
    Ok(true)
}

/// pid 1 of the jail. Raw system calls only (see the module documentation).
#[allow(clippy::too_many_arguments)]
unsafe fn init_main(
    cfg: &InitConfig,
    root_is_slash: bool,
    proc_exists: bool,
    dev_exists: bool,
    path_proc: &CStr,
    path_dev: &CStr,
    devs: &[(CString, CString)],
    set: &libc::sigset_t,
) -> ! {
    // SAFETY (whole function): raw system calls on valid NUL-terminated strings and
    // stack buffers; every failure is reported and ends the process with _exit.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        libc::prctl(libc::PR_SET_NAME, c"jail-init".as_ptr());
        libc::prctl(libc::PR_SET_PDEATHSIG, 0);
        let host_proc = libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if host_proc < 0 {
            fail(3, "open host /proc");
        }
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            fail(3, "make mounts private");
        }
        let pflags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            pflags,
            std::ptr::null(),
        ) != 0
        {
            fail(3, "mount the jail's procfs");
        }
        let jail_proc = libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if jail_proc < 0 {
            fail(3, "open the jail's procfs");
        }
        if !root_is_slash {
            if libc::mount(
                cfg.path.as_ptr(),
                cfg.path.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                fail(3, "bind-mount the jail path");
            }
            if proc_exists
                && libc::mount(
                    c"proc".as_ptr(),
                    path_proc.as_ptr(),
                    c"proc".as_ptr(),
                    pflags,
                    std::ptr::null(),
                ) != 0
            {
                fail(3, "mount procfs on PATH/proc");
            }
            if dev_exists {
                let opts = c"mode=0755,size=64k";
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    path_dev.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NOEXEC,
                    opts.as_ptr().cast(),
                ) != 0
                {
                    fail(3, "mount tmpfs on PATH/dev");
                }
                for (host, inside) in devs {
                    let fd = libc::open(
                        inside.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o666,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                        if libc::mount(
                            host.as_ptr(),
                            inside.as_ptr(),
                            null,
                            libc::MS_BIND,
                            std::ptr::null(),
                        ) != 0
                        {
                            libc::unlink(inside.as_ptr());
                        }
                    }
                }
            }
            if libc::chdir(cfg.path.as_ptr()) != 0 {
                fail(3, "chdir into the jail path");
            }
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0 {
                fail(3, "pivot_root into the jail path");
            }
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                fail(3, "detach the host root");
            }
            if libc::chdir(c"/".as_ptr()) != 0 {
                fail(3, "chdir /");
            }
        }
        if let Some(h) = &cfg.hostname {
            if libc::sethostname(h.as_ptr(), h.as_bytes().len()) != 0 {
                fail(3, "set host.hostname");
            }
        }
        if let Some(d) = &cfg.domainname {
            if libc::setdomainname(d.as_ptr(), d.as_bytes().len()) != 0 {
                fail(3, "set host.domainname");
            }
        }
        if cfg.vnet {
            loopback_up();
        }
        let mut own: libc::stat = std::mem::zeroed();
        if libc::fstatat(host_proc, c"self/ns/mnt".as_ptr(), &mut own, 0) != 0 {
            fail(3, "stat own mount namespace");
        }
        let mut selfbuf = [0u8; 32];
        let n = libc::readlinkat(
            host_proc,
            c"self".as_ptr(),
            selfbuf.as_mut_ptr().cast(),
            selfbuf.len(),
        );
        let self_host = if n > 0 {
            parse_u32(&selfbuf[..n as usize]).unwrap_or(0)
        } else {
            0
        };

        hide_cmdline(host_proc);
        send(3, b'O', 0, 0, "");
        let mut c = [0u8; 1];
        if libc::read(4, c.as_mut_ptr().cast(), 1) != 1 {
            libc::_exit(1);
        }
        // Keep only the two procfs handles, on fixed numbers, and /dev/null as stdio.
        let hp = libc::fcntl(host_proc, libc::F_DUPFD, 100);
        let jp = libc::fcntl(jail_proc, libc::F_DUPFD, 100);
        let dn = if devnull >= 0 {
            libc::fcntl(devnull, libc::F_DUPFD, 100)
        } else {
            -1
        };
        if dn >= 0 {
            libc::dup2(dn, 0);
            libc::dup2(dn, 1);
            libc::dup2(dn, 2);
        }
        libc::dup2(hp, 5);
        libc::dup2(jp, 6);
        libc::close(3);
        libc::close(4);
        libc::syscall(libc::SYS_close_range, 7u32, u32::MAX, 0u32);
        init_loop(cfg.persist, set, 5, 6, self_host, own.st_dev, own.st_ino)
    }
}

/// Reap, obey signals, and leave when told or (without persist) when alone.
/// SIGTERM/SIGINT/SIGQUIT/SIGHUP: kill everything in the jail and exit.
/// SIGUSR1 / SIGUSR2: persist on / off.
unsafe fn init_loop(
    mut persist: bool,
    set: &libc::sigset_t,
    host_proc: RawFd,
    jail_proc: RawFd,
    self_host: u32,
    dev: u64,
    ino: u64,
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
            if !persist && !others_alive(host_proc, jail_proc, self_host, dev, ino) {
                libc::_exit(0);
            }
        }
    }
}

/// Overwrite the inherited argv area so the creator's command line is not visible
/// inside the jail (`ps` shows `jail-init`).
unsafe fn hide_cmdline(host_proc: RawFd) {
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

fn parse_u64(s: &[u8]) -> Option<u64> {
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

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.len() > 10 {
        return None;
    }
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Walk a procfs directory with getdents64 into a stack buffer, calling `f` with each
/// numeric entry; stops early when `f` returns true (and then returns true).
unsafe fn any_pid(dirfd: RawFd, mut f: impl FnMut(u32, &[u8]) -> bool) -> bool {
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

unsafe fn others_alive(
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

unsafe fn loopback_up() {
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

/// Start time (clock ticks since boot) of a process, and whether it is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
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

const NAMESPACES: [&str; 6] = ["cgroup", "ipc", "uts", "net", "pid", "mnt"];

fn open_ns(pid: i32, which: &str) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/ns/{which}"))
}

fn setns(f: &impl AsRawFd, what: &str) -> io::Result<()> {
    // SAFETY: setns on a namespace descriptor we hold open.
    if unsafe { libc::setns(f.as_raw_fd(), 0) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("setns {what}: {e}")));
    }
    Ok(())
}

/// Enter every namespace and the root directory of the jail whose init is `pid`
/// (started at `start`). Children forked afterwards are in the jail's pid namespace.
/// The caller must be single-threaded (setns of a mount namespace requires it).
pub fn attach(pid: i32, start: u64) -> io::Result<()> {
    let fds: Vec<(std::fs::File, &str)> = NAMESPACES
        .iter()
        .map(|n| open_ns(pid, n).map(|f| (f, *n)))
        .collect::<Result<_, _>>()?;
    let root = std::fs::File::open(format!("/proc/{pid}/root"))?;
    if proc_start_time(pid).map(|t| t.0) != Some(start) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    for (f, n) in &fds {
        setns(f, n)?;
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
    Ok(())
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
