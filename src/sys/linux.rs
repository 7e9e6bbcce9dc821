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
    /// What the jail's processes may do (applied to the init, then to every attach).
    pub confine: Confinement,
    pub userns: UserNsMode,
    /// `cgroup.procs` of the jail's devices cgroup (v1), joined before the namespaces.
    pub cgroup_procs: Option<CString>,
}

/// The user namespace of a jail, as the system calls need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNsMode {
    None,
    /// uid/gid maps `0 0 4294967295`.
    Identity,
    /// uid/gid maps `0 BASE 65536`, the root directory mounted idmapped.
    Mapped {
        base: u32,
    },
}

/// Capabilities and system call filters of a jail, prepared before any fork.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Kept in the bounding, permitted and effective sets.
    pub caps: u64,
    /// seccomp programs, installed in order.
    pub filters: Vec<Vec<libc::sock_filter>>,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SYS_PTRACE: u32 = 19;

/// Set the effective and permitted capability sets (inheritable empty). Raw system
/// call only.
unsafe fn capset(effective: u64, permitted: u64) -> bool {
    let hdr = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: 0,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads one header and two data records from valid stack memory.
    unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) == 0 }
}

/// Confine the calling thread: non-dumpable, the seccomp filters (installed while
/// CAP_SYS_ADMIN is still held, so `no_new_privs` stays off and setuid programs in
/// the jail keep working), the bounding set, the ambient set, then permitted and
/// effective. `extra_permitted` stays in the permitted set only (the init keeps
/// CAP_SYS_PTRACE there to see processes attaching from the host). Raw system calls
/// only: usable between fork and exit. Returns the step that failed.
unsafe fn confine_raw(c: &Confinement, extra_permitted: u64) -> Result<(), &'static str> {
    // SAFETY (whole function): prctl/seccomp/capset on valid stack or heap memory
    // prepared before any fork; no allocation.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err("make the process non-dumpable");
        }
        for f in &c.filters {
            let prog = libc::sock_fprog {
                len: f.len() as libc::c_ushort,
                filter: f.as_ptr() as *mut libc::sock_filter,
            };
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err("install the seccomp filter");
            }
        }
        for cap in 0..64u32 {
            if c.caps & (1u64 << cap) != 0 {
                continue;
            }
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                && errno() != libc::EINVAL
            {
                return Err("drop from the capability bounding set");
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            && errno() != libc::EINVAL
        {
            return Err("clear the ambient capabilities");
        }
        if !capset(c.caps, c.caps | extra_permitted) {
            return Err("set the capabilities");
        }
        Ok(())
    }
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
struct Prepared {
    root_is_slash: bool,
    proc_exists: bool,
    dev_exists: bool,
    path_proc: CString,
    path_dev: CString,
    /// (host device, node inside the jail's /dev)
    devs: Vec<(CString, CString)>,
    /// Re-mounted read-only: PATH/proc/{sys,sysrq-trigger,irq,bus}.
    proc_ro: Vec<CString>,
    /// Covered with /dev/null: PATH/proc/{kcore,kmsg,keys,timer_list,...}.
    proc_masked_files: Vec<CString>,
    /// Covered with an empty read-only tmpfs.
    proc_masked_dirs: Vec<CString>,
    dev_pts: CString,
    /// (link inside the jail's /dev, target)
    dev_links: Vec<(CString, CString)>,
    /// uid_map and gid_map contents (user namespace jails).
    map_line: Vec<u8>,
}

/// Decimal digits of `n` into `buf`; returns the length.
fn fmt_u32(buf: &mut [u8], mut n: u32) -> usize {
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
unsafe fn make_userns(map: &[u8]) -> RawFd {
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
unsafe fn init_main(cfg: &InitConfig, prep: &Prepared, usfd: RawFd, set: &libc::sigset_t) -> ! {
    // SAFETY (whole function): raw system calls on valid NUL-terminated strings and
    // stack buffers; every failure is reported and ends the process with _exit.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        let nodata = std::ptr::null::<libc::c_void>();
        libc::prctl(libc::PR_SET_NAME, c"jail-init".as_ptr());
        libc::prctl(libc::PR_SET_PDEATHSIG, 0);
        // Nothing in the jail may open our /proc links (exe, map_files, fd, root).
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
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
            nodata,
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
            nodata,
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
        if !prep.root_is_slash {
            if let UserNsMode::Mapped { .. } = cfg.userns {
                idmap_root(&cfg.path, usfd);
            } else if libc::mount(
                cfg.path.as_ptr(),
                cfg.path.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                nodata,
            ) != 0
            {
                fail(3, "bind-mount the jail path");
            }
            // No device node in the jail's own files can be opened: only /dev's.
            let mut vfs: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(cfg.path.as_ptr(), &mut vfs) != 0 {
                fail(3, "statvfs the jail path");
            }
            let mut keep = 0;
            for (st, ms) in [
                (libc::ST_RDONLY, libc::MS_RDONLY),
                (libc::ST_NOSUID, libc::MS_NOSUID),
                (libc::ST_NOEXEC, libc::MS_NOEXEC),
                (libc::ST_NOATIME, libc::MS_NOATIME),
                (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                (libc::ST_RELATIME, libc::MS_RELATIME),
            ] {
                if vfs.f_flag & st != 0 {
                    keep |= ms;
                }
            }
            if libc::mount(
                null,
                cfg.path.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NODEV | keep,
                nodata,
            ) != 0
            {
                fail(3, "mount the jail path nodev");
            }
            if prep.proc_exists
                && libc::mount(
                    c"proc".as_ptr(),
                    prep.path_proc.as_ptr(),
                    c"proc".as_ptr(),
                    pflags,
                    nodata,
                ) != 0
            {
                fail(3, "mount procfs on PATH/proc");
            }
            if prep.dev_exists {
                make_dev(prep);
            }
        }
        if prep.proc_exists {
            mask_proc(prep);
        }
        if !prep.root_is_slash {
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
        let mut ptrace_extra = 1u64 << CAP_SYS_PTRACE;
        if usfd >= 0 {
            // Enter the jail's user namespace and make the namespaces it owns: its
            // mounts (copied, so every mount made above is locked), hostname, SysV
            // IPC, and with vnet its network stack.
            if libc::setns(usfd, libc::CLONE_NEWUSER) != 0 {
                fail(3, "enter the jail's user namespace");
            }
            libc::close(usfd);
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(0, 0, 0) != 0
                || libc::setresuid(0, 0, 0) != 0
            {
                fail(3, "become root of the jail's user namespace");
            }
            let mut own = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
            if cfg.vnet {
                own |= libc::CLONE_NEWNET;
            }
            if libc::unshare(own) != 0 {
                fail(3, "unshare the jail-owned namespaces");
            }
            ptrace_extra = 0;
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
        if let Err(step) = confine_raw(&cfg.confine, ptrace_extra) {
            fail(3, step);
        }
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
        let id = NsId {
            self_host,
            dev: own.st_dev,
            ino: own.st_ino,
        };
        init_loop(cfg.persist, set, 5, 6, id, cfg.confine.caps, ptrace_extra)
    }
}

/// Mount the jail path idmapped through the user namespace `usfd` (uids 0-65535 on
/// disk are the jail's 0-65535, which are BASE.. on the host).
unsafe fn idmap_root(path: &CStr, usfd: RawFd) {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: open_tree/mount_setattr/move_mount on a valid path, a stack struct and
    // descriptors we own.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        ) as RawFd;
        if fd < 0 {
            fail(3, "clone the jail path's mount (open_tree)");
        }
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: usfd as u64,
        };
        if libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) != 0
        {
            fail(
                3,
                "idmap the jail path (its file system must support idmapped mounts)",
            );
        }
        if libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) != 0
        {
            fail(3, "mount the idmapped jail path");
        }
        libc::close(fd);
    }
}

/// The jail's /dev: a small tmpfs with the nodes of FreeBSD's default devfs ruleset
/// (bind mounts of the host's null, zero, full, random, urandom, tty), a private devpts
/// for ptmx/pts, and the fd/stdin/stdout/stderr links.
unsafe fn make_dev(prep: &Prepared) {
    // SAFETY: raw system calls on prepared NUL-terminated strings.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        if libc::mount(
            c"tmpfs".as_ptr(),
            prep.path_dev.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            c"mode=0755,size=64k".as_ptr().cast(),
        ) != 0
        {
            fail(3, "mount tmpfs on PATH/dev");
        }
        for (host, inside) in &prep.devs {
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
        if libc::mkdir(prep.dev_pts.as_ptr(), 0o755) != 0
            || libc::mount(
                c"devpts".as_ptr(),
                prep.dev_pts.as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                c"newinstance,ptmxmode=0666,mode=0620".as_ptr().cast(),
            ) != 0
        {
            fail(3, "mount devpts on PATH/dev/pts");
        }
        for (link, target) in &prep.dev_links {
            libc::symlink(target.as_ptr(), link.as_ptr());
        }
    }
}

/// Read-only and masked parts of the jail's /proc (what a jail must not change or
/// read about the host kernel). Paths that this kernel lacks are skipped.
unsafe fn mask_proc(prep: &Prepared) {
    // SAFETY: raw system calls on prepared NUL-terminated strings.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        let nodata = std::ptr::null::<libc::c_void>();
        let skip = || matches!(errno(), libc::ENOENT | libc::ENOTDIR);
        for p in &prep.proc_ro {
            if libc::mount(
                p.as_ptr(),
                p.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                nodata,
            ) != 0
            {
                if skip() {
                    continue;
                }
                fail(3, "bind /proc read-only parts");
            }
            if libc::mount(
                null,
                p.as_ptr(),
                null,
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC,
                nodata,
            ) != 0
            {
                fail(3, "make /proc parts read-only");
            }
        }
        for p in &prep.proc_masked_files {
            if libc::mount(
                c"/dev/null".as_ptr(),
                p.as_ptr(),
                null,
                libc::MS_BIND,
                nodata,
            ) != 0
                && !skip()
            {
                fail(3, "mask /proc files");
            }
        }
        for p in &prep.proc_masked_dirs {
            if libc::mount(
                c"tmpfs".as_ptr(),
                p.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"size=0".as_ptr().cast(),
            ) != 0
                && !skip()
            {
                fail(3, "mask /proc directories");
            }
        }
    }
}

/// The init's own host pid and mount namespace, to recognise processes attached to
/// the jail from the host.
struct NsId {
    self_host: u32,
    dev: u64,
    ino: u64,
}

/// Reap, obey signals, and leave when told or (without persist) when alone.
/// SIGTERM/SIGINT/SIGQUIT/SIGHUP: kill everything in the jail and exit.
/// SIGUSR1 / SIGUSR2: persist on / off.
unsafe fn init_loop(
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

fn parse_stat(s: &str) -> Option<(u64, bool)> {
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
const NAMESPACES: [&str; 7] = ["pid", "cgroup", "net", "user", "ipc", "uts", "mnt"];

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

fn same_file(a: &std::fs::File, b: &std::fs::File) -> bool {
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
    cgroup_procs: Option<&Path>,
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
    if let Some(cg) = cgroup_procs {
        std::fs::write(cg, b"0").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("joining the devices cgroup {}: {e}", cg.display()),
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

// ------------------------------------------------------------------------------
// Host-side writes and mounts inside a jail's root, resolved inside that root.

/// A jail's root directory, held open: every path below it is resolved by the kernel
/// as if the root were `/` (`openat2` with `RESOLVE_IN_ROOT`), so a symlink or `..`
/// planted by the jail can never lead the host outside it.
pub struct RootDir {
    fd: OwnedFd,
    path: std::path::PathBuf,
}

use super::unix::{ctx, rel_of};

impl RootDir {
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: open on a valid C string; a non-negative result is ours.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(ctx(io::Error::last_os_error(), path.display().to_string()));
        }
        // SAFETY: fd is a new descriptor.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `rel` (relative to the root; a leading `/` is ignored) inside the root,
    /// without crossing into any other mount (`RESOLVE_NO_XDEV`): a symlink the jail
    /// planted cannot lead into a bind mount of a host directory either.
    pub fn open_at(&self, rel: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        self.open_resolved(rel, flags, mode, libc::RESOLVE_NO_XDEV)
    }

    fn open_resolved(&self, rel: &Path, flags: i32, mode: u32, extra: u64) -> io::Result<OwnedFd> {
        let c = rel_of(rel);
        let mut how: libc::open_how = unsafe_zeroed_open_how();
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            mode as u64
        } else {
            0
        };
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | extra;
        // SAFETY: openat2 reads `how` (its size passed) and a valid C string.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                format!("{} inside {}", rel.display(), self.path.display()),
            ));
        }
        // SAFETY: a new descriptor.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
    }

    /// Create `rel` and its missing parents inside the root (mode 0755).
    /// Is `rel` a directory beneath the root (links resolved inside it)?
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.open_at(rel, libc::O_DIRECTORY | libc::O_RDONLY, 0)
            .is_ok()
    }

    pub fn mkdir_all(&self, rel: &Path) -> io::Result<()> {
        super::unix::mkdir_all_with(rel, |cur| {
            self.open_at(cur, libc::O_PATH | libc::O_DIRECTORY, 0)
        })
        .map_err(|e| {
            ctx(
                e,
                format!("mkdir {} inside {}", rel.display(), self.path.display()),
            )
        })
    }

    /// Replace the file `rel` inside the root with `data`: a temporary file in the same
    /// (resolved) directory, fsync, then rename over the final name, which replaces a
    /// planted symlink instead of following it.
    pub fn write_atomic(&self, rel: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        let name = rel.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: no file name", rel.display()),
            )
        })?;
        let dir = self.open_at(
            rel.parent().unwrap_or(Path::new("")),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
        super::unix::replace_in_dir(&dir, name, data, mode).map_err(|e| {
            ctx(
                e,
                format!("{} inside {}", rel.display(), self.path.display()),
            )
        })
    }

    /// Mount onto the directory `rel` inside the root: a bind mount of `source`
    /// (`fstype` "bind" or "nullfs"), or a new file system of `fstype` with `opts`.
    /// The target is the directory the kernel resolved inside the root (a planted
    /// symlink cannot redirect it). Returns the new mount's id and where it is.
    pub fn mount_at(
        &self,
        source: &Path,
        rel: &Path,
        fstype: &str,
        opts: &str,
    ) -> io::Result<(u64, std::path::PathBuf)> {
        let target = self.open_at(rel, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let mut attrs = 0u64;
        let mut params: Vec<(String, Option<String>)> = Vec::new();
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => attrs |= MOUNT_ATTR_RDONLY,
                "rw" | "bind" | "defaults" => {}
                "nosuid" => attrs |= MOUNT_ATTR_NOSUID,
                "nodev" => attrs |= MOUNT_ATTR_NODEV,
                "noexec" => attrs |= MOUNT_ATTR_NOEXEC,
                "noatime" => attrs |= MOUNT_ATTR_NOATIME,
                "nodiratime" => attrs |= MOUNT_ATTR_NODIRATIME,
                "relatime" => {}
                other => match other.split_once('=') {
                    Some((k, v)) => params.push((k.into(), Some(v.into()))),
                    None => params.push((other.into(), None)),
                },
            }
        }
        let mnt = if matches!(fstype, "bind" | "nullfs") {
            let src = CString::new(source.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: open_tree on a valid C string.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
                )
            };
            if fd < 0 {
                return Err(ctx(
                    io::Error::last_os_error(),
                    format!("bind source {}", source.display()),
                ));
            }
            // SAFETY: a new descriptor.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) };
            if attrs != 0 {
                set_mount_attrs(&fd, attrs)?;
            }
            fd
        } else {
            new_fs(fstype, source, &params, attrs)?
        };
        // Private before it is attached: nothing mounted in or on it propagates to a
        // peer (the source's shared group on the host).
        set_mount_attrs_full(&mnt, 0, libc::MS_PRIVATE as u64, true)?;
        // SAFETY: move_mount between two descriptors we hold.
        if unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mnt.as_raw_fd(),
                c"".as_ptr(),
                target.as_raw_fd(),
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        } != 0
        {
            return Err(ctx(
                io::Error::last_os_error(),
                format!("mount on {} inside {}", rel.display(), self.path.display()),
            ));
        }
        let id = mount_id(&mnt)?;
        let at = std::fs::read_link(format!("/proc/self/fd/{}", target.as_raw_fd()))?;
        Ok((id, at))
    }

    /// Unmount the mount `id` made by [`RootDir::mount_at`], wherever inside the root
    /// the jail may have moved it since; a mount that is gone is not an error, one that
    /// is now outside the root is refused.
    pub fn unmount_id(&self, id: u64) -> io::Result<()> {
        let Some(point) = mount_point_of(id) else {
            return Ok(());
        };
        let rel = point.strip_prefix(&self.path).map_err(|_| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mount {id} is now at {}, outside {}: left alone",
                    point.display(),
                    self.path.display()
                ),
            )
        })?;
        // The mount point itself is another mount: resolved without RESOLVE_NO_XDEV,
        // then checked to be exactly mount `id`.
        let fd = self.open_resolved(
            rel,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            0,
        )?;
        if mount_id(&fd)? != id {
            return Err(io::Error::new(
                io::ErrorKind::Other,
                format!("{} is no longer mount {id}: left alone", point.display()),
            ));
        }
        let p = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
        // SAFETY: umount2 of the magic link naming exactly the mount verified above.
        if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                format!("unmount {}", point.display()),
            ));
        }
        Ok(())
    }
}

fn unsafe_zeroed_open_how() -> libc::open_how {
    // SAFETY: open_how is plain data; all-zero is its documented default.
    unsafe { std::mem::zeroed() }
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

fn set_mount_attrs(fd: &OwnedFd, attrs: u64) -> io::Result<()> {
    set_mount_attrs_full(fd, attrs, 0, false)
}

fn set_mount_attrs_full(
    fd: &OwnedFd,
    attrs: u64,
    propagation: u64,
    recursive: bool,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let a = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr reads a struct of the size passed.
    if unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    } != 0
    {
        return Err(ctx(io::Error::last_os_error(), "mount_setattr".into()));
    }
    Ok(())
}

/// A new, detached mount of `fstype` (fsopen/fsconfig/fsmount).
fn new_fs(
    fstype: &str,
    source: &Path,
    params: &[(String, Option<String>)],
    attrs: u64,
) -> io::Result<OwnedFd> {
    const FSCONFIG_SET_FLAG: u32 = 0;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let t = cstr(fstype)?;
    // SAFETY: fsopen on a valid C string.
    let fs = unsafe {
        libc::syscall(libc::SYS_fsopen, t.as_ptr(), 1u32 /* FSOPEN_CLOEXEC */)
    };
    if fs < 0 {
        return Err(ctx(
            io::Error::last_os_error(),
            format!("file system type {fstype}"),
        ));
    }
    // SAFETY: a new descriptor.
    let fs = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fs as RawFd) };
    let config = |cmd: u32, key: Option<&CStr>, val: Option<&CStr>| -> io::Result<()> {
        // SAFETY: fsconfig with valid C strings or nulls.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.map_or(std::ptr::null(), |k| k.as_ptr()),
                val.map_or(std::ptr::null(), |v| v.as_ptr()),
                0,
            )
        };
        if rc != 0 {
            let what = key
                .map(|k| k.to_string_lossy().into_owned())
                .unwrap_or_else(|| "create".into());
            return Err(ctx(
                io::Error::last_os_error(),
                format!("{fstype} option {what}"),
            ));
        }
        Ok(())
    };
    let src = cstr(&source.to_string_lossy())?;
    config(FSCONFIG_SET_STRING, Some(c"source"), Some(&src))?;
    for (k, v) in params {
        let kc = cstr(k)?;
        match v {
            Some(v) => config(FSCONFIG_SET_STRING, Some(&kc), Some(&cstr(v)?))?,
            None => config(FSCONFIG_SET_FLAG, Some(&kc), None)?,
        }
    }
    config(FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: fsmount on a configured context.
    let m = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            1u32, /* FSMOUNT_CLOEXEC */
            attrs,
        )
    };
    if m < 0 {
        return Err(ctx(io::Error::last_os_error(), format!("fsmount {fstype}")));
    }
    // SAFETY: a new descriptor.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(m as RawFd) })
}

/// The mount id of the mount a descriptor is on (statx `STATX_MNT_ID`).
fn mount_id(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: statx fills a zeroed local struct.
    unsafe {
        let mut stx: libc::statx = std::mem::zeroed();
        if libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(stx.stx_mnt_id)
    }
}

/// Where mount `id` is now (from /proc/self/mountinfo).
fn mount_point_of(id: u64) -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let mut f = l.split(' ');
        let mid: u64 = f.next()?.parse().ok()?;
        (mid == id).then(|| f.nth(3).map(unescape_mountinfo))?
    })
}

/// Every mount point of the host (this process's mount namespace), in mount order.
pub fn mount_points() -> Vec<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .collect()
}

fn unescape_mountinfo(s: &str) -> std::path::PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::path::PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out),
    ))
}
