//! Every FreeBSD system and library call of the project that needs `unsafe`: libjail
//! (jail(3)), jail_attach(2), jail_remove(2), credentials.
//!
//! Parameters go through libjail, which converts them with the kernel's own
//! `security.jail.param` sysctl types.

pub mod net;
pub mod sysctl;

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;

mod flags;
mod kparam;
pub mod rctl;
pub use flags::clear_undeletable_flags;
pub use kparam::{boot_id, RUN_DIR};
pub use rctl as limits;

/// `struct jailparam` of `<jail.h>`.
#[repr(C)]
struct JailParamC {
    jp_name: *mut c_char,
    jp_value: *mut c_void,
    jp_valuelen: libc::size_t,
    jp_elemlen: libc::size_t,
    jp_ctltype: c_int,
    jp_structtype: c_int,
    jp_flags: c_uint,
}

const JAIL_ERRMSGLEN: usize = 1024;

#[link(name = "jail")]
extern "C" {
    /// Written by libjail on every failing call: mutable from Rust's point of view
    /// too, and only ever read through a raw pointer (no reference to it is made).
    static mut jail_errmsg: [c_char; JAIL_ERRMSGLEN];
    fn jail_getid(name: *const c_char) -> c_int;
    fn jail_getname(jid: c_int) -> *mut c_char;
    fn jailparam_init(jp: *mut JailParamC, name: *const c_char) -> c_int;
    fn jailparam_import(jp: *mut JailParamC, value: *const c_char) -> c_int;
    fn jailparam_set(jp: *mut JailParamC, njp: c_uint, flags: c_int) -> c_int;
    fn jailparam_get(jp: *mut JailParamC, njp: c_uint, flags: c_int) -> c_int;
    fn jailparam_export(jp: *mut JailParamC) -> *mut c_char;
    fn jailparam_free(jp: *mut JailParamC, njp: c_uint);
}

/// Serialises libjail: it keeps its last error in one process-wide buffer, and the
/// daemon calls the jail layer from several threads.
static LIBJAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn libjail_lock() -> std::sync::MutexGuard<'static, ()> {
    LIBJAIL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A failed libjail call: libjail's text and the errno it left (none when the call
/// failed before reaching libjail, e.g. a NUL in a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibjailError {
    pub errno: Option<i32>,
    pub message: String,
}

impl LibjailError {
    fn local(message: String) -> Self {
        LibjailError {
            errno: None,
            message,
        }
    }
}

/// The errno and libjail's message for the call that just failed (LIBJAIL held by
/// the caller); read before anything else can change errno.
fn failure() -> LibjailError {
    let errno = io::Error::last_os_error().raw_os_error();
    // SAFETY: jail_errmsg is a NUL-terminated buffer owned by libjail; `&raw const`
    // takes its address without creating a reference to the mutable static, and the
    // text is copied out at once. Every libjail call and this read happen under
    // LIBJAIL (the caller holds it), so no other thread writes the buffer meanwhile.
    let s = unsafe { CStr::from_ptr((&raw const jail_errmsg).cast::<c_char>()) };
    let m = s.to_string_lossy().into_owned();
    let message = if m.is_empty() {
        errno
            .map(|e| io::Error::from_raw_os_error(e).to_string())
            .unwrap_or_default()
    } else {
        m
    };
    LibjailError { errno, message }
}

/// A list of initialised libjail parameters, freed on drop.
struct Params(Vec<JailParamC>);

impl Params {
    fn new() -> Self {
        Params(Vec::new())
    }

    /// `jailparam_init` (+ `jailparam_import` when a value is given).
    fn push(&mut self, name: &str, value: Option<&str>) -> Result<(), LibjailError> {
        let cname =
            CString::new(name).map_err(|_| LibjailError::local(format!("{name}: NUL in name")))?;
        // SAFETY: a zeroed jailparam is what jailparam_init expects to fill.
        let mut jp: JailParamC = unsafe { std::mem::zeroed() };
        // SAFETY: jp is a valid jailparam; cname is NUL-terminated.
        if unsafe { jailparam_init(&mut jp, cname.as_ptr()) } != 0 {
            return Err(failure());
        }
        self.0.push(jp);
        if let Some(v) = value {
            let cv = CString::new(v)
                .map_err(|_| LibjailError::local(format!("{name}: NUL in value")))?;
            let last = self.0.last_mut().expect("just pushed");
            // SAFETY: `last` was initialised by jailparam_init; cv is NUL-terminated.
            if unsafe { jailparam_import(last, cv.as_ptr()) } != 0 {
                return Err(failure());
            }
        }
        Ok(())
    }

    fn export(&mut self, i: usize) -> Option<String> {
        // SAFETY: index i holds an initialised jailparam; the returned string is ours
        // to free.
        unsafe {
            let p = jailparam_export(&mut self.0[i]);
            if p.is_null() {
                return None;
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            Some(s)
        }
    }

    fn name(&self, i: usize) -> String {
        // SAFETY: jp_name was set by jailparam_init to a NUL-terminated string.
        unsafe {
            CStr::from_ptr(self.0[i].jp_name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        // SAFETY: every element was initialised by jailparam_init.
        unsafe { jailparam_free(self.0.as_mut_ptr(), self.0.len() as c_uint) };
    }
}

/// `jail_getid`.
pub fn getid(name: &str) -> Result<i32, LibjailError> {
    let c = CString::new(name).map_err(|_| LibjailError::local("NUL in jail name".into()))?;
    let _libjail = libjail_lock();
    // SAFETY: c is NUL-terminated.
    let jid = unsafe { jail_getid(c.as_ptr()) };
    if jid < 0 {
        Err(failure())
    } else {
        Ok(jid)
    }
}

/// `jail_getname`.
pub fn getname(jid: i32) -> Result<String, LibjailError> {
    let _libjail = libjail_lock();
    // SAFETY: jail_getname returns a malloc'd string or NULL.
    unsafe {
        let p = jail_getname(jid);
        if p.is_null() {
            return Err(failure());
        }
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        libc::free(p.cast());
        Ok(s)
    }
}

/// `jailparam_set` with string values.
pub fn set(values: &[(String, String)], flags: i32) -> Result<i32, LibjailError> {
    let _libjail = libjail_lock();
    let mut ps = Params::new();
    for (n, v) in values {
        ps.push(n, Some(v))?;
    }
    // SAFETY: all parameters were initialised and imported.
    let jid = unsafe { jailparam_set(ps.0.as_mut_ptr(), ps.0.len() as c_uint, flags) };
    if jid < 0 {
        Err(failure())
    } else {
        Ok(jid)
    }
}

/// `jailparam_get`: the key (`jid`, `name` or `lastjid`) with its value, then the
/// names to read; names the running kernel does not know are skipped.
pub fn get(
    key: (&str, &str),
    names: &[&str],
    flags: i32,
) -> Result<(i32, Vec<(String, String)>), LibjailError> {
    let _libjail = libjail_lock();
    let mut ps = Params::new();
    ps.push(key.0, Some(key.1))?;
    for n in names {
        if *n != key.0 {
            let _ = ps.push(n, None);
        }
    }
    // SAFETY: all parameters were initialised; the key was imported.
    let jid = unsafe { jailparam_get(ps.0.as_mut_ptr(), ps.0.len() as c_uint, flags) };
    if jid < 0 {
        return Err(failure());
    }
    let mut out = Vec::new();
    for i in 0..ps.0.len() {
        let name = ps.name(i);
        if let Some(v) = ps.export(i) {
            out.push((name, v));
        }
    }
    Ok((jid, out))
}

/// `jail_remove(2)`.
pub fn remove(jid: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::jail_remove(jid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `jail_attach(2)`.
pub fn attach(jid: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::jail_attach(jid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ------------------------------------------------------------------------------
// Host-side writes and mounts inside a jail's root, kept beneath that root.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A jail's root directory, held open: every path below it is opened with
/// `O_RESOLVE_BENEATH`, so a symlink or `..` that leads out of the root is refused.
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn cstr_of(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

use super::unix::{ctx, rel_of};

impl RootDir {
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let c = cstr_of(path)?;
        // SAFETY: open on a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(ctx(io::Error::last_os_error(), path.display().to_string()));
        }
        // SAFETY: a new descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // The path as the kernel knows it (links resolved), as mount points are kept.
        let path = fd_path(&fd)
            .or_else(|_| std::fs::canonicalize(path))
            .unwrap_or_else(|_| path.to_path_buf());
        Ok(RootDir { fd, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open_at(&self, rel: &Path, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let c = rel_of(rel);
        // SAFETY: openat relative to our directory descriptor.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_RESOLVE_BENEATH | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                format!("{} inside {}", rel.display(), self.path.display()),
            ));
        }
        // SAFETY: a new descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Is `rel` a directory beneath the root (links resolved inside it)?
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.open_at(rel, libc::O_DIRECTORY | libc::O_RDONLY, 0)
            .is_ok()
    }

    pub fn mkdir_all(&self, rel: &Path) -> io::Result<()> {
        super::unix::mkdir_all_with(rel, |cur| {
            self.open_at(cur, libc::O_DIRECTORY | libc::O_RDONLY, 0)
        })
    }

    pub fn write_atomic(&self, rel: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let dir = self.open_at(
            rel.parent().unwrap_or(Path::new("")),
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        )?;
        super::unix::replace_in_dir(&dir, name, data, mode)
    }

    /// Mount on the directory `rel` beneath the root: the directory is resolved
    /// beneath it, its path read back from the kernel (`F_KINFO`), and mount(8) is run
    /// on that path. Between the two a jail process could still swap a component for
    /// a symlink: stop the jail's processes first (jailctl mounts before start).
    /// Returns the mount's fsid and path.
    pub fn mount_at(
        &self,
        source: &Path,
        rel: &Path,
        fstype: &str,
        opts: &str,
        on_mount: Option<u64>,
    ) -> io::Result<(u64, PathBuf)> {
        let fd = self.open_at(
            rel,
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_NOFOLLOW,
            0,
        )?;
        // Not inside another mount (a nullfs of a host directory, say), but for the
        // one mount the caller names (dev/fd on the devfs this start mounted).
        if fstat_dev(&fd)? != fstat_dev(&self.fd)? && on_mount != Some(fsid_of_fd(&fd)?) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is on another mount than the jail's root: refused",
                    rel.display()
                ),
            ));
        }
        let path = fd_path(&fd)?;
        let fstype = if fstype == "bind" { "nullfs" } else { fstype };
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                fstype,
                "-o",
                if opts.is_empty() { "rw" } else { opts },
            ])
            .arg(source)
            .arg(&path)
            .status()?;
        if !st.success() {
            return Err(io::Error::other(format!(
                "mount -t {fstype} {} {}: {st}",
                source.display(),
                path.display()
            )));
        }
        Ok((fsid_of(&path)?, path))
    }

    pub fn unmount_id(&self, id: u64) -> io::Result<()> {
        let Some(point) = mount_point_of(id) else {
            return Ok(());
        };
        if !point.starts_with(&self.path) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mount {id} is at {}, outside {}: left alone",
                    point.display(),
                    self.path.display()
                ),
            ));
        }
        let c = cstr_of(&point)?;
        // SAFETY: unmount(2) on a valid C string.
        if unsafe { libc::unmount(c.as_ptr(), libc::MNT_FORCE) } != 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                format!("unmount {}", point.display()),
            ));
        }
        Ok(())
    }
}

/// The fsid (as [`fsid_key`]) of the file system an open file is on.
fn fsid_of_fd(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: fstatfs fills a zeroed local struct.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(fd.as_raw_fd(), &mut s) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fsid_key(&s))
    }
}

fn fstat_dev(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: fstat fills a zeroed local struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st.st_dev as u64)
    }
}

fn fd_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    // SAFETY: F_KINFO fills a kinfo_file whose kf_structsize we set.
    unsafe {
        let mut kf: libc::kinfo_file = std::mem::zeroed();
        kf.kf_structsize = std::mem::size_of::<libc::kinfo_file>() as c_int;
        if libc::fcntl(
            fd.as_raw_fd(),
            libc::F_KINFO,
            &mut kf as *mut libc::kinfo_file,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let p = CStr::from_ptr(kf.kf_path.as_ptr());
        Ok(PathBuf::from(p.to_string_lossy().into_owned()))
    }
}

fn fsid_key(f: &libc::statfs) -> u64 {
    // SAFETY: fsid_t is a repr(C) pair of i32 (its field is private in the libc crate).
    let v: [i32; 2] = unsafe { std::mem::transmute_copy(&f.f_fsid) };
    ((v[0] as u32 as u64) << 32) | (v[1] as u32 as u64)
}

fn fsid_of(path: &Path) -> io::Result<u64> {
    let c = cstr_of(path)?;
    // SAFETY: statfs fills a zeroed local struct.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fsid_key(&s))
    }
}

/// Every mounted file system, from getfsstat(2) into our own buffer (getmntinfo(3)'s
/// is shared by every thread), grown until the table fits.
fn fs_stats() -> io::Result<Vec<libc::statfs>> {
    let mut cap = 64usize;
    loop {
        // SAFETY: statfs is plain data; getfsstat writes at most `bufsize` bytes.
        let mut buf: Vec<libc::statfs> = vec![unsafe { std::mem::zeroed() }; cap];
        let bytes = (cap * std::mem::size_of::<libc::statfs>()) as libc::c_long;
        // SAFETY: as above.
        let n = unsafe { libc::getfsstat(buf.as_mut_ptr(), bytes, libc::MNT_NOWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < cap {
            buf.truncate(n);
            return Ok(buf);
        }
        cap *= 2;
    }
}

/// The bytes of a NUL-terminated name field of a `statfs`.
fn statfs_name(b: &[libc::c_char]) -> &[u8] {
    // SAFETY: the statfs name fields are NUL-terminated within the struct.
    unsafe { CStr::from_ptr(b.as_ptr()) }.to_bytes()
}

/// Every mounted file system: (fsid key, mount point).
fn mount_table() -> io::Result<Vec<(u64, PathBuf)>> {
    Ok(fs_stats()?
        .iter()
        .map(|s| {
            let on = std::ffi::OsStr::from_bytes(statfs_name(&s.f_mntonname));
            (fsid_key(s), PathBuf::from(on))
        })
        .collect())
}

fn mount_point_of(id: u64) -> Option<PathBuf> {
    mount_table()
        .ok()?
        .into_iter()
        .find(|(k, _)| *k == id)
        .map(|(_, p)| p)
}

/// Every file system of the given type (`zfs`) that root mounted: (what is mounted,
/// where), in mount order, from getfsstat(2).
pub fn mount_sources(fstype: &str) -> io::Result<Vec<(String, PathBuf)>> {
    Ok(fs_stats()?
        .iter()
        .filter(|s| statfs_name(&s.f_fstypename) == fstype.as_bytes() && s.f_owner == 0)
        .map(|s| {
            let from = String::from_utf8_lossy(statfs_name(&s.f_mntfromname)).into_owned();
            let on = std::ffi::OsStr::from_bytes(statfs_name(&s.f_mntonname));
            (from, PathBuf::from(on))
        })
        .collect())
}

/// Every mount point of the host, in mount order (getmntinfo(3)).
pub fn mount_points() -> io::Result<Vec<PathBuf>> {
    Ok(mount_table()?.into_iter().map(|(_, p)| p).collect())
}
