//! The jail init after the fork: namespaces, root, /dev, /proc masks, id-mapped root.
//! Raw system calls only (see the module documentation of `sys::linux`).

use super::*;

/// pid 1 of the jail. Raw system calls only (see the module documentation).
pub(super) unsafe fn init_main(
    cfg: &InitConfig,
    prep: &Prepared,
    usfd: RawFd,
    set: &libc::sigset_t,
) -> ! {
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
pub(super) unsafe fn idmap_root(path: &CStr, usfd: RawFd) {
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
pub(super) unsafe fn make_dev(prep: &Prepared) {
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
pub(super) unsafe fn mask_proc(prep: &Prepared) {
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
