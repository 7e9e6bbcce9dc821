//! Spawning a jail init: the handle, the setup report pipe, what is prepared before
//! the fork, and the user namespace helper.

use super::*;

/// A jail init that has finished its setup and waits for [`InitHandle::commit`].
pub struct InitHandle {
    /// Host pid of the jail's init (pid 1 inside the jail).
    pub pid: i32,
    pub(super) commit: OwnedFd,
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
pub(super) struct Msg {
    pub(super) tag: u8,
    pub(super) _pad: [u8; 3],
    pub(super) value: i32,
    pub(super) errno: i32,
    pub(super) stage: [u8; 52],
}

pub(super) const MSG_LEN: usize = std::mem::size_of::<Msg>();

pub(super) fn send(fd: RawFd, tag: u8, value: i32, errno: i32, stage: &str) {
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

pub(super) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub(super) fn fail(fd: RawFd, stage: &str) -> ! {
    send(fd, b'E', 0, errno(), stage);
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

pub(super) const SIGNALS: [libc::c_int; 7] = [
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
    let under = |base: &CStr, names: &[&str]| -> Vec<CString> {
        names
            .iter()
            .map(|n| {
                let mut v = base.to_bytes().to_vec();
                v.push(b'/');
                v.extend_from_slice(n.as_bytes());
                CString::new(v).expect("no NUL")
            })
            .collect()
    };
    let map_line = match cfg.userns {
        UserNsMode::None => Vec::new(),
        UserNsMode::Identity => b"0 0 4294967295\n".to_vec(),
        UserNsMode::Mapped { base } => format!("0 {base} 65536\n").into_bytes(),
    };
    let prep = Prepared {
        root_is_slash,
        proc_exists,
        dev_exists,
        proc_ro: under(&path_proc, &["sys", "sysrq-trigger", "irq", "bus"]),
        proc_masked_files: under(
            &path_proc,
            &[
                "kcore",
                "kmsg",
                "keys",
                "timer_list",
                "sched_debug",
                "kallsyms",
            ],
        ),
        proc_masked_dirs: under(&path_proc, &["acpi", "scsi", "fs/nfsd"]),
        dev_pts: under(&path_dev, &["pts"]).remove(0),
        dev_links: ["ptmx", "fd", "stdin", "stdout", "stderr"]
            .iter()
            .zip([
                c"pts/ptmx",
                c"/proc/self/fd",
                c"/proc/self/fd/0",
                c"/proc/self/fd/1",
                c"/proc/self/fd/2",
            ])
            .map(|(n, target)| (under(&path_dev, &[n]).remove(0), target.to_owned()))
            .collect(),
        path_proc,
        path_dev,
        devs,
        map_line,
    };

    let (ready_r, ready_w) = pipe().map_err(|e| ("pipe".to_string(), e))?;
    let (commit_r, commit_w) = pipe().map_err(|e| ("pipe".to_string(), e))?;
    let mut flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWCGROUP;
    // In a user namespace, the network stack is made by the init once it is in there,
    // so that the jail owns it.
    if cfg.vnet && cfg.userns == UserNsMode::None {
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
            if let Some(cg) = &cfg.cgroup_procs {
                let fd = libc::open(cg.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    fail(3, "join the jail's devices cgroup");
                }
                libc::close(fd);
            }
            for cg in &cfg.limit_procs {
                let fd = libc::open(cg.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    fail(3, "join the jail's resource-limit cgroups");
                }
                libc::close(fd);
            }
            // The user namespace is made by a short-lived child whose maps we write
            // from here (the host's user namespace); the init joins it at the end of
            // its setup, through this descriptor.
            let usfd = if cfg.userns == UserNsMode::None {
                -1
            } else {
                make_userns(&prep.map_line)
            };
            if libc::unshare(flags) != 0 {
                fail(3, "unshare namespaces");
            }
            let b = libc::fork();
            if b < 0 {
                fail(3, "fork into the pid namespace");
            }
            if b == 0 {
                init_main(cfg, &prep, usfd, &set);
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

/// Paths and contents the init needs, prepared before the fork.
pub(super) struct Prepared {
    pub(super) root_is_slash: bool,
    pub(super) proc_exists: bool,
    pub(super) dev_exists: bool,
    pub(super) path_proc: CString,
    pub(super) path_dev: CString,
    /// (host device, node inside the jail's /dev)
    pub(super) devs: Vec<(CString, CString)>,
    /// Re-mounted read-only: PATH/proc/{sys,sysrq-trigger,irq,bus}.
    pub(super) proc_ro: Vec<CString>,
    /// Covered with /dev/null: PATH/proc/{kcore,kmsg,keys,timer_list,...}.
    pub(super) proc_masked_files: Vec<CString>,
    /// Covered with an empty read-only tmpfs.
    pub(super) proc_masked_dirs: Vec<CString>,
    pub(super) dev_pts: CString,
    /// (link inside the jail's /dev, target)
    pub(super) dev_links: Vec<(CString, CString)>,
    /// uid_map and gid_map contents (user namespace jails).
    pub(super) map_line: Vec<u8>,
}

/// Decimal digits of `n` into `buf`; returns the length.
pub(super) fn fmt_u32(buf: &mut [u8], mut n: u32) -> usize {
    let mut tmp = [0u8; 10];
    let mut i = 0;
    loop {
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        i += 1;
        if n == 0 {
            break;
        }
    }
    for j in 0..i {
        buf[j] = tmp[i - 1 - j];
    }
    i
}

/// Make a user namespace with `map` as its uid and gid maps and return a descriptor
/// of it (the caller's creds are unchanged). Raw system calls only; on failure the
/// error is reported on descriptor 3 and the process exits.
pub(super) unsafe fn make_userns(map: &[u8]) -> RawFd {
    // SAFETY (whole function): raw system calls on stack buffers and on `map`.
    unsafe {
        let host_proc = libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        let mut up = [0i32; 2];
        let mut down = [0i32; 2];
        if host_proc < 0
            || libc::pipe2(up.as_mut_ptr(), libc::O_CLOEXEC) != 0
            || libc::pipe2(down.as_mut_ptr(), libc::O_CLOEXEC) != 0
        {
            fail(3, "prepare the user namespace");
        }
        let u = libc::fork();
        if u < 0 {
            fail(3, "fork the user namespace holder");
        }
        if u == 0 {
            libc::close(up[0]);
            libc::close(down[1]);
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                libc::_exit(1);
            }
            libc::write(up[1], b"U".as_ptr().cast(), 1);
            let mut c = [0u8; 1];
            libc::read(down[0], c.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
        libc::close(up[1]);
        libc::close(down[0]);
        let mut c = [0u8; 1];
        if libc::read(up[0], c.as_mut_ptr().cast(), 1) != 1 {
            fail(3, "create a user namespace");
        }
        let mut path = [0u8; 32];
        let n = fmt_u32(&mut path, u as u32);
        let mut fd_of = |suffix: &[u8], flags: libc::c_int| {
            path[n..n + suffix.len()].copy_from_slice(suffix);
            path[n + suffix.len()] = 0;
            libc::openat(host_proc, path.as_ptr().cast(), flags | libc::O_CLOEXEC)
        };
        for file in [&b"/uid_map"[..], &b"/gid_map"[..]] {
            let fd = fd_of(file, libc::O_WRONLY);
            if fd < 0 || libc::write(fd, map.as_ptr().cast(), map.len()) != map.len() as isize {
                fail(3, "write the user namespace's id maps");
            }
            libc::close(fd);
        }
        let usfd = fd_of(b"/ns/user", libc::O_RDONLY);
        if usfd < 0 {
            fail(3, "open the user namespace");
        }
        libc::close(down[1]);
        let mut st = 0;
        libc::waitpid(u, &mut st, 0);
        libc::close(up[0]);
        libc::close(host_proc);
        usfd
    }
}

pub(super) fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<bool> {
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
