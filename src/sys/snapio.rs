//! Host tools and calls of snapshots, clones and archives: a copy-on-write tree copy,
//! `tar` to write an archive, `gzip -dc` to read one, and the special files an
//! archive may hold (an overlay whiteout, a FIFO).

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::Child;

use super::tool::{run, ToolError};
use super::{Os, OS};

/// Copy a tree with `cp -a` (owners, modes, links kept), sharing blocks where the
/// file system can (Linux: `--reflink=auto`, a clone of the extents on btrfs and xfs,
/// a plain copy elsewhere; FreeBSD's cp has no such option: a plain copy).
pub fn cow_copy_tree(from: &Path, to: &Path) -> Result<(), ToolError> {
    let src = format!("{}/.", from.display());
    // -x: one file system (a running jail's devfs or procfs is not copied)
    let mut args: Vec<&OsStr> = vec![OsStr::new("-a"), OsStr::new("-x")];
    if OS == Os::Linux {
        args.push(OsStr::new("--reflink=auto"));
    }
    args.push(OsStr::new(&src));
    args.push(to.as_os_str());
    run("cp", &args).map(|_| ())
}

/// Write a gzip-compressed pax archive `out` of `members`, each `(directory, name)`:
/// `name` taken from `directory` (`tar -C DIR NAME`), links stored as links.
pub fn tar_create(out: &Path, members: &[(&Path, &str)]) -> Result<(), ToolError> {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("--format"),
        OsStr::new("pax"),
        OsStr::new("-czf"),
        out.as_os_str(),
    ];
    for (dir, name) in members {
        args.push(OsStr::new("-C"));
        args.push(dir.as_os_str());
        args.push(OsStr::new(name));
    }
    run("tar", &args).map(|_| ())
}

/// `gzip -dc FILE`, its output to be read from the child's stdout.
pub fn gunzip(file: &Path) -> io::Result<Child> {
    super::tool::spawn_reader("gzip", &[OsStr::new("-dc"), file.as_os_str()])
}

/// An overlay whiteout (a character device 0:0) at `path`: a file the jail deleted
/// from its release. Only the directory backend's thin jails on Linux have them.
pub fn make_whiteout(path: &Path) -> io::Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(io::Error::from)
}

/// A FIFO at `path` with `mode`.
pub fn make_fifo(path: &Path, mode: u32) -> io::Result<()> {
    use nix::sys::stat::Mode;
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode as _)).map_err(io::Error::from)
}

/// Bytes free for root on the file system holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let v = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok((v.blocks_free() as u64).saturating_mul(v.fragment_size() as u64))
}

/// Check that `path` (absolute) is a directory of the host that only root can
/// change or redirect: every component is opened without following a link, each
/// is owned by root, and no parent is writable by group or others unless sticky
/// (where a root-owned entry cannot be renamed by them); the directory itself is
/// not writable by group or others. Returns the path.
pub fn check_root_only_dir(path: &Path) -> io::Result<std::path::PathBuf> {
    use nix::fcntl::{openat, OFlag};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Component;
    let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    let mut cur = std::fs::File::open("/")?;
    let mut at = std::path::PathBuf::from("/");
    let mut parent_mode = cur.metadata()?.permissions().mode();
    for c in path.components() {
        let name = match c {
            Component::RootDir => continue,
            Component::Normal(n) => n,
            _ => {
                return Err(refuse(format!(
                    "{}: give a plain absolute path",
                    path.display()
                )))
            }
        };
        at.push(name);
        if parent_mode & 0o022 != 0 && parent_mode & 0o1000 == 0 {
            return Err(refuse(format!(
                "{}: its parent is writable by other users",
                at.display()
            )));
        }
        let fd = openat(
            &cur,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| {
            refuse(format!(
                "{}: not a directory reached without a link ({e})",
                at.display()
            ))
        })?;
        cur = std::fs::File::from(fd);
        let m = cur.metadata()?;
        if m.uid() != 0 {
            return Err(refuse(format!(
                "{}: owned by uid {}, not root",
                at.display(),
                m.uid()
            )));
        }
        parent_mode = m.mode();
    }
    if parent_mode & 0o022 != 0 {
        return Err(refuse(format!(
            "{}: writable by other users",
            path.display()
        )));
    }
    Ok(at)
}
