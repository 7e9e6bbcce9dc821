//! Host-side writes and mounts inside a jail's root, resolved inside that root.

use super::*;

// ------------------------------------------------------------------------------
// Host-side writes and mounts inside a jail's root, resolved inside that root.

/// A jail's root directory, held open: every path below it is resolved by the kernel
/// as if the root were `/` (`openat2` with `RESOLVE_IN_ROOT`), so a symlink or `..`
/// planted by the jail can never lead the host outside it.
pub struct RootDir {
    pub(super) fd: OwnedFd,
    pub(super) path: std::path::PathBuf,
}

use crate::sys::unix::{ctx, rel_of};

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
        // The path with its links resolved, as the kernel records mount points.
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(RootDir { fd, path })
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
        crate::sys::unix::mkdir_all_with(rel, |cur| {
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
        crate::sys::unix::replace_in_dir(&dir, name, data, mode).map_err(|e| {
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
        _on_mount: Option<u64>,
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

pub(super) fn unsafe_zeroed_open_how() -> libc::open_how {
    // SAFETY: open_how is plain data; all-zero is its documented default.
    unsafe { std::mem::zeroed() }
}

pub(super) const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(super) const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub(super) const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub(super) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(super) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(super) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(super) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub(super) const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub(super) const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

pub(super) fn set_mount_attrs(fd: &OwnedFd, attrs: u64) -> io::Result<()> {
    set_mount_attrs_full(fd, attrs, 0, false)
}

pub(super) fn set_mount_attrs_full(
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
pub(super) fn new_fs(
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
pub(super) fn mount_id(fd: &OwnedFd) -> io::Result<u64> {
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
pub(super) fn mount_point_of(id: u64) -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let mut f = l.split(' ');
        let mid: u64 = f.next()?.parse().ok()?;
        (mid == id).then(|| f.nth(3).map(unescape_mountinfo))?
    })
}

/// Every mount point of the host (this process's mount namespace), in mount order.
pub fn mount_points() -> io::Result<Vec<std::path::PathBuf>> {
    Ok(std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .collect())
}

/// Every file system of the given type (`zfs`; zfs-fuse's `fuse.zfs` counts) that root
/// mounted: (what is mounted, where), in mount order, from this process's mount table.
/// A FUSE mount counts only if root owns it (`user_id=0`): any user may name a FUSE
/// file system as they like.
pub fn mount_sources(fstype: &str) -> io::Result<Vec<(String, std::path::PathBuf)>> {
    let fuse = format!("fuse.{fstype}");
    Ok(std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split(' ');
            let (ty, src, opts) = (r.next()?, r.next()?, r.next().unwrap_or(""));
            let by_root = ty == fstype || (ty == fuse && opts.split(',').any(|o| o == "user_id=0"));
            by_root.then(|| {
                let at = left.split(' ').nth(4)?;
                Some((
                    unescape_mountinfo(src).to_string_lossy().into_owned(),
                    unescape_mountinfo(at),
                ))
            })?
        })
        .collect())
}

pub(super) fn unescape_mountinfo(s: &str) -> std::path::PathBuf {
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
